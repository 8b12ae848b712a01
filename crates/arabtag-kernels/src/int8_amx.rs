//! The AMX kernel of [`super`] (Intel Advanced Matrix Extensions, int8):
//! the VNNI kernel's integer dot products, one group of [`GROUP`] inputs
//! for a 16 × 16 tile per `tdpbusd`, and the same f32 steps after them, so
//! the same bits.
//!
//! A block is 32 rows by 32 columns: four 16 × 16 sum tiles (`tmm0`-`tmm3`),
//! two tiles of 16 input rows × one group (`tmm4`, `tmm5`) and two tiles of
//! one group × 16 weight columns (`tmm6`, `tmm7`), read straight from the
//! VNNI kernel's packed panels (a group's 8 steps of 4 inputs are 8 rows of
//! 256 bytes there, 64 of them a tile row). For each group the tiles are
//! zeroed, multiplied and stored, and AVX-512 adds each row's sums to its
//! f32 sums as the VNNI kernel does: `fma(f32(dot + shift), scale, sum)`.
//! The integer sums are exact, whichever unit adds them. Rows past the last
//! whole block go to the VNNI kernel.
//!
//! The tile instructions go through [`TileUnit`]: [`Hardware`] issues them
//! (`asm!`; Linux lends the tile state to a process that asks,
//! [`permission`]), and a software tile unit in the tests follows the
//! instruction set's pseudo-code, so that the kernel's addressing is
//! checked bit for bit on every CPU with AVX-512 VNNI, while the hardware
//! path runs, and is checked against the VNNI kernel, only where the CPU has
//! AMX (`int8_choice.rs`).

use std::arch::asm;
use std::arch::x86_64::*;

use super::{GROUP, Int8Linear, NR};

// A group is one tile row of inputs (32 bytes) and 8 rows of weights.
const _: () = assert!(GROUP == 32 && NR.is_multiple_of(COLS) && ROWS == 32);

/// Input rows per block: two tiles of 16.
pub(super) const ROWS: usize = 32;
/// Output columns per block: two tiles of 16.
const COLS: usize = 32;

/// The tile configuration (palette 1): `tmm0`-`tmm3` 16 rows × 64 bytes
/// (16 × 16 32-bit sums), `tmm4`-`tmm5` 16 rows × 32 bytes (one group of
/// 16 input rows), `tmm6`-`tmm7` 8 rows × 64 bytes (one group of 16 weight
/// columns, 4 bytes a column a row). Bytes 16-47: bytes per row of each
/// tile; bytes 48-63: rows.
#[repr(C, align(64))]
pub(super) struct TileConfig(pub(super) [u8; 64]);

pub(super) static CONFIG: TileConfig = {
    let mut c = [0u8; 64];
    c[0] = 1;
    let mut t = 0;
    while t < 8 {
        let (rows, bytes): (u8, u16) = match t {
            0..=3 => (16, 64),
            4 | 5 => (16, GROUP as u16),
            _ => ((GROUP / 4) as u8, 64),
        };
        let b = bytes.to_le_bytes();
        c[16 + 2 * t] = b[0];
        c[17 + 2 * t] = b[1];
        c[48 + t] = rows;
        t += 1;
    }
    TileConfig(c)
};

/// The tile instructions the kernel uses, by tile number.
///
/// # Safety
/// Implementations read and write the memory the pointers and strides
/// name, as the instructions do; callers pass pointers valid for the
/// configured rows and bytes.
pub(super) unsafe trait TileUnit {
    /// `ldtilecfg`: the configuration [`CONFIG`].
    unsafe fn configure(&mut self);
    /// `tilezero`.
    unsafe fn zero<const T: u8>(&mut self);
    /// `tileloadd`: row `r` from `ptr + r · stride`.
    unsafe fn load<const T: u8>(&mut self, ptr: *const u8, stride: usize);
    /// `tdpbusd`: `C += A (unsigned bytes) · B (signed bytes)`, 32-bit sums.
    unsafe fn dot<const C: u8, const A: u8, const B: u8>(&mut self);
    /// `tilestored`: row `r` to `ptr + r · stride`.
    unsafe fn store<const T: u8>(&mut self, ptr: *mut u8, stride: usize);
    /// `tilerelease`.
    unsafe fn release(&mut self);
}

/// The CPU's tile unit.
#[derive(Debug)]
pub(super) struct Hardware;

// SAFETY: each method is the one instruction, on the pointers given.
unsafe impl TileUnit for Hardware {
    #[inline(always)]
    unsafe fn configure(&mut self) {
        // SAFETY: CONFIG is a valid palette-1 configuration, 64 bytes.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) CONFIG.0.as_ptr(), options(nostack, readonly, preserves_flags))
        };
    }
    #[inline(always)]
    unsafe fn zero<const T: u8>(&mut self) {
        // SAFETY: tile state only.
        unsafe { asm!("tilezero tmm{t}", t = const T, options(nostack, nomem, preserves_flags)) };
    }
    #[inline(always)]
    unsafe fn load<const T: u8>(&mut self, ptr: *const u8, stride: usize) {
        // SAFETY: the caller's rows of `ptr` are readable.
        unsafe {
            asm!("tileloadd tmm{t}, [{p} + {s} * 1]", t = const T, p = in(reg) ptr, s = in(reg) stride,
                options(nostack, readonly, preserves_flags))
        };
    }
    #[inline(always)]
    unsafe fn dot<const C: u8, const A: u8, const B: u8>(&mut self) {
        // SAFETY: tile state only.
        unsafe {
            asm!("tdpbusd tmm{c}, tmm{a}, tmm{b}", c = const C, a = const A, b = const B,
                options(nostack, nomem, preserves_flags))
        };
    }
    #[inline(always)]
    unsafe fn store<const T: u8>(&mut self, ptr: *mut u8, stride: usize) {
        // SAFETY: the caller's rows of `ptr` are writable.
        unsafe {
            asm!("tilestored [{p} + {s} * 1], tmm{t}", t = const T, p = in(reg) ptr, s = in(reg) stride,
                options(nostack, preserves_flags))
        };
    }
    #[inline(always)]
    unsafe fn release(&mut self) {
        // SAFETY: tile state only.
        unsafe { asm!("tilerelease", options(nostack, nomem, preserves_flags)) };
    }
}

/// Asks Linux for the tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM,
/// XFEATURE_XTILEDATA)`); without it the first tile instruction faults.
/// The grant is the process's; asking again is harmless. `Err` holds the
/// OS error.
pub(super) fn permission() -> Result<(), std::io::Error> {
    #[cfg(target_os = "linux")]
    {
        const ARCH_REQ_XCOMP_PERM: usize = 0x1023;
        const XFEATURE_XTILEDATA: usize = 18;
        const SYS_ARCH_PRCTL: usize = 158;
        let ret: isize;
        // SAFETY: arch_prctl with these arguments reads and writes no user
        // memory; the syscall instruction clobbers rcx and r11.
        unsafe {
            asm!("syscall", inlateout("rax") SYS_ARCH_PRCTL as isize => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM, in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _, lateout("r11") _, options(nostack))
        };
        if ret < 0 {
            Err(std::io::Error::from_raw_os_error(-ret as i32))
        } else {
            Ok(())
        }
    }
    #[cfg(not(target_os = "linux"))]
    Err(std::io::Error::other("AMX is only used on Linux"))
}

/// Whether the CPU reports AMX tiles and their 8-bit products (CPUID leaf
/// 7: EDX bits 24 and 25), and AVX-512 VNNI for the rest of the kernel.
pub(super) fn cpu_has_amx() -> bool {
    let leaf7 = __cpuid_count(7, 0);
    super::vnni_available() && leaf7.edx & (1 << 24) != 0 && leaf7.edx & (1 << 25) != 0
}

/// `out[m, n] = a[m, k4] · packed`, scaled (see the module docs): whole
/// blocks of [`ROWS`] rows on the tile unit, the rest by the VNNI kernel.
///
/// # Safety
/// The CPU has AVX-512 F, BW and VNNI; `unit` can run (for [`Hardware`]:
/// the CPU has AMX and the process has [`permission`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn matmul<U: TileUnit>(
    unit: &mut U,
    layer: &Int8Linear,
    a: &[u8],
    a_scales: &[f32],
    out: &mut [std::mem::MaybeUninit<f32>],
    m: usize,
) {
    let (n, k4) = (layer.out_features, layer.k4);
    let groups = k4 / GROUP;
    assert!(a.len() >= m * k4 && a_scales.len() >= m * groups && out.len() >= m * n);
    let whole = m / ROWS * ROWS;
    if whole > 0 {
        // SAFETY: the caller's CPU and unit; the blocks' bounds are
        // checked above (rows < whole ≤ m) and in `block`.
        unsafe {
            unit.configure();
            for col0 in (0..n).step_by(COLS) {
                for r0 in (0..whole).step_by(ROWS) {
                    block(unit, layer, a, a_scales, out, r0, col0);
                }
            }
            unit.release();
        }
    }
    if whole < m {
        // SAFETY: the caller's CPU; the rows from `whole` on, in bounds
        // (checked above).
        unsafe {
            super::vnni::matmul(
                layer,
                &a[whole * k4..],
                &a_scales[whole * groups..],
                &mut out[whole * n..],
                m - whole,
            )
        };
    }
}

/// Rows `r0..r0 + 32` by columns `col0..col0 + 32` (those below `n`
/// written).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn block<U: TileUnit>(
    unit: &mut U,
    layer: &Int8Linear,
    a: &[u8],
    a_scales: &[f32],
    out: &mut [std::mem::MaybeUninit<f32>],
    r0: usize,
    col0: usize,
) {
    #[repr(C, align(64))]
    struct Sums([[i32; 256]; 4]);
    let (n, k4) = (layer.out_features, layer.k4);
    let groups = k4 / GROUP;
    let width = n.div_ceil(NR) * NR;
    assert!((r0 + ROWS) * k4 <= a.len() && col0 < n);
    // The packed panel holding the block's columns, and where they start
    // in its 256-byte rows (4 bytes a column).
    let (panel, within) = (col0 / NR, col0 % NR);
    let b = &layer.packed[panel * NR * k4..(panel + 1) * NR * k4];
    let mut dots = Sums([[0; 256]; 4]);
    let mut sums = [[_mm512_setzero_ps(); 2]; ROWS];
    for g in 0..groups {
        // SAFETY: rows r0..r0 + 32 of `a` hold k4 bytes each, of which
        // the group's 32 at g · 32; the panel holds k4 / 4 rows of 256
        // bytes, of which the group's 8 at g · 8, 128 bytes from `within`
        // · 4 ≤ 128. `dots` holds four 1 KiB tiles.
        unsafe {
            let ap = a.as_ptr().add(r0 * k4 + g * GROUP);
            let bp = b
                .as_ptr()
                .add(g * (GROUP / 4) * NR * 4 + within * 4)
                .cast::<u8>();
            unit.zero::<0>();
            unit.zero::<1>();
            unit.zero::<2>();
            unit.zero::<3>();
            unit.load::<4>(ap, k4);
            unit.load::<5>(ap.add(16 * k4), k4);
            unit.load::<6>(bp, NR * 4);
            unit.load::<7>(bp.add(64), NR * 4);
            unit.dot::<0, 4, 6>();
            unit.dot::<1, 4, 7>();
            unit.dot::<2, 5, 6>();
            unit.dot::<3, 5, 7>();
            let dp = dots.0.as_mut_ptr().cast::<u8>();
            unit.store::<0>(dp, 64);
            unit.store::<1>(dp.add(1024), 64);
            unit.store::<2>(dp.add(2048), 64);
            unit.store::<3>(dp.add(3072), 64);
        }
        // SAFETY: `shift` has `groups · width` entries and the block's 32
        // columns start at col0 < width − 31.
        let shift = unsafe {
            let sp = layer.shift.as_ptr().add(g * width + col0);
            [
                _mm512_loadu_si512(sp.cast()),
                _mm512_loadu_si512(sp.add(16).cast()),
            ]
        };
        for (r, sums) in sums.iter_mut().enumerate() {
            let x_scale = _mm512_set1_ps(a_scales[(r0 + r) * groups + g]);
            for (c, sum) in sums.iter_mut().enumerate() {
                // Tile 2 · (r / 16) + c holds rows 16 · (r / 16).. by
                // columns 16 · c..; row r % 16 of it.
                let tile = &dots.0[2 * (r / 16) + c];
                // SAFETY: 16 sums from (r % 16) · 16 < 256.
                let dot = unsafe { _mm512_loadu_si512(tile.as_ptr().add((r % 16) * 16).cast()) };
                let dot = _mm512_add_epi32(dot, shift[c]);
                *sum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), x_scale, *sum);
            }
        }
    }
    for (r, sums) in sums.iter().enumerate() {
        // SAFETY: the CPU has AVX-512 F (the caller's); row r0 + r < m of
        // `out` exists.
        unsafe { super::vnni::store_row(layer, sums, out, r0 + r, col0) };
    }
}
