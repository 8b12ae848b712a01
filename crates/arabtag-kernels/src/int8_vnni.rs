//! The AVX-512 VNNI kernels of [`super`]: activations and weight rows
//! quantised with AVX-512, and the 8-bit product in blocks of [`MR`] rows
//! by [`NR`] columns.

// The group scale below reads a group as two 16-float registers.
const _: () = assert!(super::GROUP == 32);

use std::arch::x86_64::*;

use super::{GROUP, Int8Linear, MR, NR, row_scale};

/// [`super::quantise_weight_row`] with AVX-512, 16 weights at a time,
/// the last ones masked.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn quantise_weight_row(row: &[f32], q: &mut [i8]) -> f32 {
    assert!(q.len() >= row.len());
    let n = row.len();
    let mask = |i: usize| -> __mmask16 {
        let lanes = (n - i).min(16);
        if lanes == 16 {
            0xffff
        } else {
            (1u16 << lanes) - 1
        }
    };
    let mut max = _mm512_setzero_ps();
    for i in (0..n).step_by(16) {
        // SAFETY: the masked load reads lanes i..min(i + 16, n) of `row`.
        let x = unsafe { _mm512_maskz_loadu_ps(mask(i), row.as_ptr().add(i)) };
        max = _mm512_max_ps(max, _mm512_abs_ps(x));
    }
    let max = _mm512_reduce_max_ps(max);
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    let inv = _mm512_set1_ps(1.0 / scale);
    let (lo, hi) = (_mm512_set1_ps(-127.0), _mm512_set1_ps(127.0));
    let magic = _mm512_set1_ps(12_582_912.0);
    for i in (0..n).step_by(16) {
        let m = mask(i);
        // SAFETY: the masked load and store touch lanes
        // i..min(i + 16, n) of `row` and `q`.
        unsafe {
            let x = _mm512_maskz_loadu_ps(m, row.as_ptr().add(i));
            let v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, inv), lo), hi);
            let v = _mm512_sub_ps(_mm512_add_ps(v, magic), magic);
            let b = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v));
            _mm_mask_storeu_epi8(q.as_mut_ptr().add(i).cast(), m, b);
        }
    }
    scale
}

/// [`super::quantise_row`] with AVX-512: the same scales (the max of
/// |x| is exact whatever the order; inputs are finite; the divisions
/// are IEEE's, one lane or sixteen), the same rounding (`vcvtps2dq`
/// rounds to nearest even) and saturation. Full groups go sixteen at a
/// time: their maxima first, then both divisions (`max / 127`, its
/// reciprocal) in one instruction each, then the bytes; one group after
/// another, each waited on its two scalar divisions (6% of NER tagging).
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn quantise_row(row: &[f32], q: &mut [u8], scales: &mut [f32]) {
    const BATCH: usize = 16;
    // What the unchecked loads and stores below rely on.
    assert!(q.len() >= row.len().div_ceil(GROUP) * GROUP);
    assert!(scales.len() >= row.len().div_ceil(GROUP));
    let offset = _mm_set1_epi8(-128);
    let full = row.len() / GROUP;
    let (one, d127, zero) = (
        _mm512_set1_ps(1.0),
        _mm512_set1_ps(127.0),
        _mm512_setzero_ps(),
    );
    let mut g0 = 0;
    while g0 < full {
        let n = (full - g0).min(BATCH);
        let lanes: __mmask16 = if n == BATCH { 0xffff } else { (1u16 << n) - 1 };
        let mut maxes = [0f32; BATCH];
        for (j, max) in maxes.iter_mut().enumerate().take(n) {
            // SAFETY: group g0 + j < full holds 32 floats of `row`.
            *max = unsafe {
                let p = row.as_ptr().add((g0 + j) * GROUP);
                let a = _mm512_abs_ps(_mm512_loadu_ps(p));
                let b = _mm512_abs_ps(_mm512_loadu_ps(p.add(16)));
                _mm512_reduce_max_ps(_mm512_max_ps(a, b))
            };
        }
        let mut inverse = [0f32; BATCH];
        // SAFETY: `maxes` and `inverse` hold 16 floats; `scales` holds an
        // entry per group of `row` (the caller's sizes), so lanes 0..n at
        // g0 are in bounds.
        unsafe {
            let max = _mm512_loadu_ps(maxes.as_ptr());
            let positive = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(max, zero);
            let scale = _mm512_mask_div_ps(one, positive, max, d127);
            _mm512_mask_storeu_ps(scales.as_mut_ptr().add(g0), lanes, scale);
            _mm512_storeu_ps(inverse.as_mut_ptr(), _mm512_div_ps(one, scale));
        }
        for (j, &inv) in inverse.iter().enumerate().take(n) {
            let inv = _mm512_set1_ps(inv);
            let at = (g0 + j) * GROUP;
            for half in [0, 16] {
                // SAFETY: the group's 32 floats are in `row`, its 32
                // bytes in `q` (k4 ≥ row.len()).
                unsafe {
                    let x = _mm512_loadu_ps(row.as_ptr().add(at + half));
                    let v = _mm512_cvtps_epi32(_mm512_mul_ps(x, inv));
                    let b = _mm_xor_si128(_mm512_cvtsepi32_epi8(v), offset);
                    _mm_storeu_si128(q.as_mut_ptr().add(at + half).cast(), b);
                }
            }
        }
        g0 += n;
    }
    // A last, partial group, and the padding up to k4 (128 is 0).
    let done = full * GROUP;
    q[done..].fill(128);
    if done < row.len() {
        let group = &row[done..];
        scales[full] = row_scale(group);
        let inv_s = 1.0 / scales[full];
        for (q, &x) in q[done..].iter_mut().zip(group) {
            *q = (super::round_even((x * inv_s).clamp(-128.0, 127.0)) as i32 + 128) as u8;
        }
    }
}

/// `out[m, n] = a[m, k4] · packed`, scaled (see the module docs), [`MR`] rows by [`NR`]
/// columns at a time.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn matmul(
    layer: &Int8Linear,
    a: &[u8],
    a_scales: &[f32],
    out: &mut [std::mem::MaybeUninit<f32>],
    m: usize,
) {
    let (n, k4) = (layer.out_features, layer.k4);
    assert!(a.len() >= m * k4 && a_scales.len() >= m * (k4 / GROUP) && out.len() >= m * n);
    for panel in 0..n.div_ceil(NR) {
        let b = &layer.packed[panel * NR * k4..(panel + 1) * NR * k4];
        let col0 = panel * NR;
        let mut r = 0;
        while r + MR <= m {
            // SAFETY: rows r..r + MR exist (checked above).
            unsafe { block::<MR>(layer, a, a_scales, b, out, r, col0) };
            r += MR;
        }
        // SAFETY: as above, for the last rows.
        unsafe {
            match m - r {
                5 => block::<5>(layer, a, a_scales, b, out, r, col0),
                4 => block::<4>(layer, a, a_scales, b, out, r, col0),
                3 => block::<3>(layer, a, a_scales, b, out, r, col0),
                2 => block::<2>(layer, a, a_scales, b, out, r, col0),
                1 => block::<1>(layer, a, a_scales, b, out, r, col0),
                _ => {}
            }
        }
    }
}

/// Rows `r0..r0 + R` by the panel's 64 columns starting at `col0`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn block<const R: usize>(
    layer: &Int8Linear,
    a: &[u8],
    a_scales: &[f32],
    b: &[i8],
    out: &mut [std::mem::MaybeUninit<f32>],
    r0: usize,
    col0: usize,
) {
    let (n, k4) = (layer.out_features, layer.k4);
    let groups = k4 / GROUP;
    let width = n.div_ceil(NR) * NR;
    // The tile's f32 sums, kept in memory (`black_box` keeps LLVM from
    // promoting them to registers: with the 24 integer sums, the weights
    // and the broadcasts they would not fit, and it spilled them in the
    // inner loop instead). Each group adds `x_scale · (dot + shift)` by
    // one FMA.
    let mut tile = [[_mm512_setzero_ps(); 4]; R];
    let tile_ptr = std::hint::black_box(tile.as_mut_ptr());
    let a_ptr = a.as_ptr();
    let b_ptr = b.as_ptr();
    // Steps of 4 inputs per group, opaque to LLVM: knowing it is 8, it
    // unrolled the loop, hoisted all 32 weight vectors and ran the rows
    // one after the other, 4 dependent chains at a time instead of 24.
    let steps = std::hint::black_box(GROUP / 4);
    for g in 0..groups {
        // SAFETY: `shift` has `groups · width` entries and the panel's
        // 64 columns start at col0 < width.
        let start = unsafe {
            let sp = layer.shift.as_ptr().add(g * width + col0);
            [
                _mm512_loadu_si512(sp.cast()),
                _mm512_loadu_si512(sp.add(16).cast()),
                _mm512_loadu_si512(sp.add(32).cast()),
                _mm512_loadu_si512(sp.add(48).cast()),
            ]
        };
        let mut acc = [start; R];
        for step in g * steps..(g + 1) * steps {
            // SAFETY: the panel holds k4 / 4 steps of 256 bytes; row
            // r0 + r of `a` holds k4 bytes (the caller's bounds).
            unsafe {
                let bp = b_ptr.add(step * NR * 4);
                let w = [
                    _mm512_loadu_si512(bp.cast()),
                    _mm512_loadu_si512(bp.add(64).cast()),
                    _mm512_loadu_si512(bp.add(128).cast()),
                    _mm512_loadu_si512(bp.add(192).cast()),
                ];
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = a_ptr
                        .add((r0 + r) * k4 + step * 4)
                        .cast::<i32>()
                        .read_unaligned();
                    let x = _mm512_set1_epi32(x);
                    for (acc, w) in acc.iter_mut().zip(&w) {
                        *acc = _mm512_dpbusd_epi32(*acc, x, *w);
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let x_scale = _mm512_set1_ps(a_scales[(r0 + r) * groups + g]);
            for (c, acc) in acc.iter().enumerate() {
                // SAFETY: `tile_ptr` points at the R × 4 vectors of `tile`.
                unsafe {
                    let sum = tile_ptr.add(r).cast::<__m512>().add(c);
                    *sum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(*acc), x_scale, *sum);
                }
            }
        }
    }
    for (r, sums) in tile.iter().enumerate() {
        // SAFETY: row r0 + r of `out` exists (the caller's bounds).
        unsafe { store_row(layer, sums, out, r0 + r, col0) };
    }
}

/// Row `row`'s f32 sums for the columns from `col0` (16 a vector) scaled by
/// the weight rows' scales and biased, `y = sum · scale + bias`, into `out`
/// (columns past `out_features` left alone). Both kernels end with it.
///
/// # Safety
/// The CPU has AVX-512 F; `out` holds row `row` of `out_features` floats.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn store_row(
    layer: &Int8Linear,
    sums: &[__m512],
    out: &mut [std::mem::MaybeUninit<f32>],
    row: usize,
    col0: usize,
) {
    let n = layer.out_features;
    assert!(out.len() >= (row + 1) * n);
    for (c, sum) in sums.iter().enumerate() {
        let col = col0 + c * 16;
        if col >= n {
            break;
        }
        let lanes = (n - col).min(16);
        let mask: __mmask16 = if lanes == 16 {
            0xffff
        } else {
            (1u16 << lanes) - 1
        };
        // SAFETY: the masked loads and the store touch columns
        // col..col + lanes of vectors of length n, and row `row` of
        // `out`, all in bounds (asserted above).
        unsafe {
            let w_scale = _mm512_maskz_loadu_ps(mask, layer.scales.as_ptr().add(col));
            let bias = _mm512_maskz_loadu_ps(mask, layer.bias.as_ptr().add(col));
            let y = _mm512_add_ps(_mm512_mul_ps(*sum, w_scale), bias);
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(row * n + col).cast(), mask, y);
        }
    }
}
