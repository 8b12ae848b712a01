//! Tests of the AMX kernel (`int8_amx.rs`): its tile program run on a
//! software tile unit on every CPU with AVX-512 VNNI, and on the CPU's own
//! tiles where it has AMX, each bit for bit against the VNNI kernel.

use super::super::amx::{self, CONFIG, TileUnit};
use super::super::vnni;
use super::*;

/// A tile unit in software, after the pseudo-code of `LDTILECFG`,
/// `TILEZERO`, `TILELOADD`, `TDPBUSD` and `TILESTORED` in Intel's Software
/// Developer's Manual: tiles of up to 16 rows of 64 bytes, the rows and
/// bytes a row from the configuration, the rest of a tile zero after a
/// load, and `TDPBUSD`'s shape rules asserted.
struct Emulated {
    rows: [usize; 8],
    bytes: [usize; 8],
    data: [[u8; 1024]; 8],
    configured: bool,
    products: usize,
}

impl Emulated {
    fn new() -> Self {
        Self {
            rows: [0; 8],
            bytes: [0; 8],
            data: [[0; 1024]; 8],
            configured: false,
            products: 0,
        }
    }

    fn tile(&self, t: u8) -> usize {
        assert!(self.configured, "tile {t} used before LDTILECFG");
        let t = usize::from(t);
        assert!(self.rows[t] > 0, "tile {t} is not configured");
        t
    }

    fn dword(&self, t: usize, row: usize, i: usize) -> [u8; 4] {
        let at = row * 64 + 4 * i;
        [0, 1, 2, 3].map(|b| self.data[t][at + b])
    }
}

// SAFETY: reads and writes exactly the rows and bytes the configuration
// gives each tile, at `ptr + row · stride`, as the instructions do.
unsafe impl TileUnit for Emulated {
    unsafe fn configure(&mut self) {
        let c = &CONFIG.0;
        assert_eq!(c[0], 1, "palette 1");
        assert!(
            c[1..16].iter().all(|&b| b == 0),
            "start row and reserved bytes"
        );
        for t in 0..8 {
            self.bytes[t] = usize::from(u16::from_le_bytes([c[16 + 2 * t], c[17 + 2 * t]]));
            self.rows[t] = usize::from(c[48 + t]);
            assert!(
                self.rows[t] <= 16 && self.bytes[t] <= 64,
                "tile {t} too large"
            );
        }
        self.data = [[0; 1024]; 8];
        self.configured = true;
    }

    unsafe fn zero<const T: u8>(&mut self) {
        let t = self.tile(T);
        self.data[t] = [0; 1024];
    }

    unsafe fn load<const T: u8>(&mut self, ptr: *const u8, stride: usize) {
        let t = self.tile(T);
        self.data[t] = [0; 1024];
        for r in 0..self.rows[t] {
            for b in 0..self.bytes[t] {
                // SAFETY: the trait's contract.
                self.data[t][r * 64 + b] = unsafe { *ptr.add(r * stride + b) };
            }
        }
    }

    unsafe fn dot<const C: u8, const A: u8, const B: u8>(&mut self) {
        let (c, a, b) = (self.tile(C), self.tile(A), self.tile(B));
        assert!(c != a && c != b && a != b, "TDPBUSD needs three tiles");
        assert_eq!(self.bytes[a] % 4, 0);
        assert_eq!(
            self.bytes[a] / 4,
            self.rows[b],
            "A's bytes a row / 4 = B's rows"
        );
        assert_eq!(self.rows[a], self.rows[c], "A's rows = C's rows");
        assert_eq!(self.bytes[b], self.bytes[c], "B's bytes a row = C's");
        for m in 0..self.rows[c] {
            for n in 0..self.bytes[c] / 4 {
                let mut sum = i32::from_le_bytes(self.dword(c, m, n));
                for k in 0..self.bytes[a] / 4 {
                    let (x, w) = (self.dword(a, m, k), self.dword(b, k, n));
                    for i in 0..4 {
                        sum = sum.wrapping_add(i32::from(x[i]) * i32::from(w[i] as i8));
                    }
                }
                self.data[c][m * 64 + 4 * n..m * 64 + 4 * n + 4]
                    .copy_from_slice(&sum.to_le_bytes());
            }
        }
        self.products += 1;
    }

    unsafe fn store<const T: u8>(&mut self, ptr: *mut u8, stride: usize) {
        let t = self.tile(T);
        for r in 0..self.rows[t] {
            for b in 0..self.bytes[t] {
                // SAFETY: the trait's contract.
                unsafe { *ptr.add(r * stride + b) = self.data[t][r * 64 + b] };
            }
        }
    }

    unsafe fn release(&mut self) {
        self.configured = false;
    }
}

/// `x` quantised as `task` does, then the product by `kernel`.
fn product(
    layer: &Int8Linear,
    x: &[f32],
    kernel: impl FnOnce(&[u8], &[f32], &mut [std::mem::MaybeUninit<f32>], usize),
) -> Vec<f32> {
    let (k, n, k4) = (layer.in_features, layer.out_features, layer.k4);
    let m = x.len() / k;
    let groups = k4 / GROUP;
    let (mut q, mut scales) = (vec![0u8; m * k4], vec![0f32; m * groups]);
    for ((row, q), s) in x
        .chunks_exact(k)
        .zip(q.chunks_exact_mut(k4))
        .zip(scales.chunks_exact_mut(groups))
    {
        quantise_row(row, q, s, true);
    }
    let mut out = Vec::with_capacity(m * n);
    kernel(&q, &scales, &mut out.spare_capacity_mut()[..m * n], m);
    // SAFETY: both kernels write every element.
    unsafe { out.set_len(m * n) };
    out
}

/// Asserts that `a` and `b` hold the same floats bit for bit, naming the
/// first that differs (not the whole vectors).
fn same_bits(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let differ = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count();
    if let Some(i) = a
        .iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
    {
        panic!(
            "{what}: {differ} of {} differ, the first at {i}: {} against {}",
            a.len(),
            a[i],
            b[i]
        );
    }
}

/// Rows: one block, blocks and rows left over, too few for a block;
/// inputs: a partial group (551 = 17 groups and 7), one group, 1536;
/// outputs: a partial panel, a panel's first half only (40), several
/// panels, an odd width.
const SHAPES: [(usize, usize, usize); 7] = [
    (32, 384, 384),
    (69, 551, 80),
    (96, 30, 130),
    (33, 1536, 40),
    (31, 64, 64),
    (64, 96, 65),
    (40, 384, 1152),
];

#[test]
fn the_tile_program_gives_the_vnni_kernels_bits() {
    if !vnni_available() {
        eprintln!("no AVX-512 VNNI on this CPU: the AMX kernel's AVX-512 steps cannot run");
        return;
    }
    for (m, k, n) in SHAPES {
        let layer = Int8Linear::from_f32(
            &noise(n * k, 31),
            n,
            k,
            (n % 2 == 0).then_some(&noise(n, 32)[..]),
        );
        let x = noise(m * k, 33);
        let mut unit = Emulated::new();
        // SAFETY: the CPU has AVX-512 VNNI (checked above); the buffers
        // have the kernels' sizes (`product`).
        let tiles = product(&layer, &x, |q, s, out, m| unsafe {
            amx::matmul(&mut unit, &layer, q, s, out, m)
        });
        // SAFETY: as above.
        let vnni = product(&layer, &x, |q, s, out, m| unsafe {
            vnni::matmul(&layer, q, s, out, m)
        });
        same_bits(&tiles, &vnni, &format!("{m}×{k}×{n}, VNNI"));
        let portable = layer.forward_with(&x, Kernel::Portable, Epilogue::None);
        same_bits(&tiles, &portable, &format!("{m}×{k}×{n}, portable"));
        // Every whole block of 32 rows by 32 columns, one product per
        // group per sum tile, went through the tile unit.
        let blocks = (m / 32) * n.div_ceil(32);
        assert_eq!(
            unit.products,
            blocks * 4 * (k.div_ceil(GROUP)),
            "{m}×{k}×{n}"
        );
        assert!(!unit.configured, "the tiles were released");
    }
}

#[test]
fn the_cpus_tiles_give_the_vnni_kernels_bits() {
    if !amx::cpu_has_amx() {
        eprintln!("the CPU reports no AMX: only the software tile unit runs the AMX kernel");
        return;
    }
    amx::permission().expect("Linux grants the AMX tile state");
    for (m, k, n) in SHAPES {
        let layer = Int8Linear::from_f32(&noise(n * k, 41), n, k, Some(&noise(n, 42)));
        let x = noise(m * k, 43);
        for epilogue in [Epilogue::None, Epilogue::Gelu] {
            same_bits(
                &layer.forward_with(&x, Kernel::Amx, epilogue),
                &layer.forward_with(&x, Kernel::Vnni, epilogue),
                &format!("{m}×{k}×{n} {epilogue:?}"),
            );
        }
    }
    assert!(int8_kernel().starts_with("amx"), "{}", int8_kernel());
}

#[test]
fn the_choice_names_the_kernel_and_why() {
    let chosen = int8_kernel();
    let expected = if !vnni_available() {
        "portable"
    } else if !amx::cpu_has_amx() || std::env::var_os("ARABTAG_AMX").is_some_and(|v| v == "0") {
        "vnni"
    } else {
        // AMX, unless Linux refused the tile state (said in the text).
        if chosen.contains("refused") {
            "vnni"
        } else {
            "amx"
        }
    };
    assert!(chosen.starts_with(expected), "{chosen}");
    assert!(chosen.contains('('), "{chosen}: says why");
}
