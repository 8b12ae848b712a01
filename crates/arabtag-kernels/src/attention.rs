//! BERT self-attention fused for f32 on the CPU.
//!
//! From the stacked query-key-value states `[b, s, 3h]` (queries, then keys,
//! then values, each `heads × d` wide) to the context `[b, s, h]`, without
//! the tensors candle's path makes: no per-head copies of q, k and v, no
//! `[b, heads, s, s]` scores and probabilities, no transposes back. Each task
//! takes one sequence, one head and up to `TASK_ROWS` (256) query rows:
//!
//! 1. the head's keys transposed to `[d, keys]` and its values copied to
//!    `[keys, d]` (a few tens of kB, in L2);
//! 2. for each `MR` (8) query rows, the scores against all keys in blocks of
//!    `NC` (32) keys (the block's sums stay in registers over `d`), scaled by
//!    `1/√d` on the queries, the padding bias added and each row's largest
//!    kept on the way;
//! 3. the exponentials ([`exp_f32`]) and their sum, one pass;
//! 4. the rows' weighted sums of the values, `MR` (8) rows × 32 (or 16)
//!    columns at a time, divided by the rows' sums as they are stored.
//!
//! Keys past the last unmasked one are skipped (their weight would be
//! `exp(-3.4e38) = 0`); masked keys before it get the bias as candle's path
//! adds it. Tasks run on every rayon thread; the loops are `simd`'s, built
//! for AVX-512 where the CPU has it. Their portable build is the reference
//! the tests hold the AVX-512 kernels to; the encoder
//! (`BertLayer`) runs this op only where the CPU has AVX-512,
//! and candle's ops elsewhere: LLVM leaves the portable build scalar.

use rayon::prelude::*;

use crate::contiguous_f32;
use crate::simd::{self, Fused, Madd, Unfused, lanes_fold};
use crate::softmax::exp_f32;

/// Query rows per task.
const TASK_ROWS: usize = 256;
/// Query rows per pass of the inner loops.
const MR: usize = 8;
/// Keys per block of scores (two 16-lane registers per row).
const NC: usize = 32;

/// The attention op: `heads` heads over `[b, s, 3h]` stacked states, an
/// optional additive key bias `[b, 1, 1, s]` (or `[b, s]`).
#[derive(Debug, Clone, Copy)]
pub struct FusedAttention {
    pub heads: usize,
}

/// One task's inputs.
#[derive(Debug, Clone, Copy)]
struct Job<'a> {
    /// One sequence's stacked states, `[s, 3h]`.
    seq: &'a [f32],
    /// Its key bias, `[s]`.
    bias: Option<&'a [f32]>,
    s: usize,
    h: usize,
    d: usize,
    head: usize,
    rows: (usize, usize),
}

impl FusedAttention {
    /// The context `[b, s, h]` of `qkv` `[b, s, 3h]`, row-major.
    pub fn context(&self, qkv: &[f32], bias: Option<&[f32]>, b: usize, s: usize) -> Vec<f32> {
        let h = qkv.len() / (3 * b * s).max(1);
        let d = h / self.heads.max(1);
        let blocks = s.div_ceil(TASK_ROWS);
        let tasks: Vec<(usize, usize, usize)> = (0..b)
            .flat_map(|i| {
                (0..self.heads).flat_map(move |head| (0..blocks).map(move |k| (i, head, k)))
            })
            .collect();
        let fast = simd::avx512_available();
        let parts: Vec<Vec<f32>> = tasks
            .par_iter()
            .map(|&(i, head, k)| {
                let job = Job {
                    seq: &qkv[i * s * 3 * h..(i + 1) * s * 3 * h],
                    bias: bias.map(|bias| &bias[i * s..(i + 1) * s]),
                    s,
                    h,
                    d,
                    head,
                    rows: (k * TASK_ROWS, ((k + 1) * TASK_ROWS).min(s)),
                };
                if fast {
                    #[allow(unsafe_code)]
                    // SAFETY: `avx512_available` checked that the CPU has
                    // the features `job_avx512` is built for.
                    unsafe {
                        job_avx512(&job)
                    }
                } else {
                    job.run::<Unfused, false>()
                }
            })
            .collect();
        let mut out = vec![0f32; b * s * h];
        for (&(i, head, k), part) in tasks.iter().zip(&parts) {
            for (r, row) in part.chunks_exact(d).enumerate() {
                let at = (i * s + k * TASK_ROWS + r) * h + head * d;
                out[at..at + d].copy_from_slice(row);
            }
        }
        out
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn job_avx512(job: &Job<'_>) -> Vec<f32> {
    job.run::<Fused, true>()
}

#[cfg(not(target_arch = "x86_64"))]
fn job_avx512(job: &Job<'_>) -> Vec<f32> {
    job.run::<Unfused, false>()
}

/// Keys `0..end` take part: those after the last unmasked one have weight 0.
fn key_end(bias: Option<&[f32]>, s: usize) -> usize {
    let masked = f32::MIN / 2.0;
    match bias {
        Some(bias) => match bias.iter().rposition(|&x| x > masked) {
            Some(last) => last + 1,
            // Every key masked: candle's path gives equal weights to all.
            None => s,
        },
        None => s,
    }
}

impl Job<'_> {
    /// The context rows `rows` of this head, `[rows, d]`. `AVX512`: the
    /// loops by [`avx512`]'s kernels, which only [`job_avx512`] may ask.
    #[inline(always)]
    fn run<M: Madd, const AVX512: bool>(&self) -> Vec<f32> {
        let Job {
            seq, s, h, d, head, ..
        } = *self;
        let width = 3 * h;
        let keys = key_end(self.bias, s);
        let padded = keys.div_ceil(NC) * NC;
        // Keys transposed, `[d, padded]` (zeros past `keys`); values `[keys, d]`.
        let mut kt = vec![0f32; d * padded];
        let mut v = vec![0f32; keys * d];
        // The transpose 16 keys at a time: 16 rows of `d` read, `d` runs of
        // 16 written (a key at a time, the writes `padded` apart would all
        // fall in the same few cache sets).
        for (block, rows) in seq[..keys * width].chunks(16 * width).enumerate() {
            let j0 = block * 16;
            let mut tile = [[0f32; 16]; 64];
            for c0 in (0..d).step_by(64) {
                let cols = (d - c0).min(64);
                for (jj, row) in rows.chunks_exact(width).enumerate() {
                    let k = &row[h + head * d + c0..h + head * d + c0 + cols];
                    for (t, &x) in tile.iter_mut().zip(k) {
                        t[jj] = x;
                    }
                }
                let n = rows.len() / width;
                for (c, t) in tile.iter().take(cols).enumerate() {
                    let at = (c0 + c) * padded + j0;
                    kt[at..at + n].copy_from_slice(&t[..n]);
                }
            }
            for (jj, row) in rows.chunks_exact(width).enumerate() {
                let j = j0 + jj;
                v[j * d..(j + 1) * d]
                    .copy_from_slice(&row[2 * h + head * d..2 * h + (head + 1) * d]);
            }
        }
        // The bias of each padded key: the mask's (0 without one), -∞ past
        // `keys`, so the padding's zero scores drop out of the softmax.
        let mut bias = vec![f32::NEG_INFINITY; padded];
        for (j, b) in bias.iter_mut().take(keys).enumerate() {
            *b = self.bias.map_or(0.0, |bias| bias[j]);
        }
        let scale = 1.0 / (d as f32).sqrt();
        let (first, last) = self.rows;
        let mut out = vec![0f32; (last - first) * d];
        // The pass's queries `[MR][d]` (scaled) and scores `[MR][padded]`.
        let mut q = vec![0f32; MR * d];
        let mut p = vec![0f32; MR * padded];
        for r0 in (first..last).step_by(MR) {
            let m = MR.min(last - r0);
            q.fill(0.0);
            for (q, row) in q
                .chunks_exact_mut(d)
                .zip(seq[r0 * width..].chunks(width).take(m))
            {
                for (q, &x) in q.iter_mut().zip(&row[head * d..(head + 1) * d]) {
                    *q = x * scale;
                }
            }
            let max = if AVX512 {
                #[allow(unsafe_code)]
                // SAFETY: `AVX512` is true only in `job_avx512`, which runs
                // after `avx512_available`.
                unsafe {
                    avx512::scores(&q, d, &kt, &bias, &mut p, padded)
                }
            } else {
                scores::<M>(&q, d, &kt, &bias, &mut p, padded)
            };
            // The softmax's exponentials; its division goes on the sums.
            let mut inv = [0f32; MR];
            for ((row, inv), max) in p.chunks_exact_mut(padded).zip(&mut inv).zip(max).take(m) {
                let sum = if AVX512 {
                    #[allow(unsafe_code)]
                    // SAFETY: as for the scores.
                    unsafe {
                        avx512::exp_sum(row, max)
                    }
                } else {
                    exp_sum(row, max)
                };
                *inv = 1.0 / sum;
            }
            let at = (r0 - first) * d;
            let rows = &mut out[at..at + m * d];
            // Columns 32 at a time (two registers a row), then 16, then one.
            let mut c0 = 0;
            for lanes in [32, 16] {
                while c0 + lanes <= d {
                    match (AVX512, lanes) {
                        #[allow(unsafe_code)]
                        // SAFETY: as for the scores.
                        (true, 32) => unsafe {
                            avx512::weighted::<2>(&p, padded, keys, &v, d, c0, &inv, rows)
                        },
                        #[allow(unsafe_code)]
                        // SAFETY: as for the scores.
                        (true, _) => unsafe {
                            avx512::weighted::<1>(&p, padded, keys, &v, d, c0, &inv, rows)
                        },
                        (false, 32) => weighted::<M, 32>(&p, padded, keys, &v, d, c0, &inv, rows),
                        (false, _) => weighted::<M, 16>(&p, padded, keys, &v, d, c0, &inv, rows),
                    }
                    c0 += lanes;
                }
            }
            for c in c0..d {
                for ((o, prow), &inv) in rows
                    .chunks_exact_mut(d)
                    .zip(p.chunks_exact(padded))
                    .zip(&inv)
                {
                    let mut sum = 0.0;
                    for (&x, vrow) in prow[..keys].iter().zip(v.chunks_exact(d)) {
                        sum = M::madd(x, vrow[c], sum);
                    }
                    o[c] = sum * inv;
                }
            }
        }
        out
    }
}

/// `p[r][j] = Σ_c q[r][c] · kt[c][j] + bias[j]` for the [`MR`] rows and all
/// `padded` keys, [`NC`] keys at a time with the sums in registers; returns
/// each row's largest.
#[inline(always)]
fn scores<M: Madd>(
    q: &[f32],
    d: usize,
    kt: &[f32],
    bias: &[f32],
    p: &mut [f32],
    padded: usize,
) -> [f32; MR] {
    let mut max = [f32::NEG_INFINITY; MR];
    for j0 in (0..padded).step_by(NC) {
        let mut acc = [[0f32; NC]; MR];
        for (c, krow) in kt.chunks_exact(padded).take(d).enumerate() {
            let k = &krow[j0..j0 + NC];
            for (r, a) in acc.iter_mut().enumerate() {
                let x = q[r * d + c];
                for (a, &y) in a.iter_mut().zip(k) {
                    *a = M::madd(x, y, *a);
                }
            }
        }
        for ((row, a), max) in p.chunks_exact_mut(padded).zip(&acc).zip(&mut max) {
            for ((o, &a), &b) in row[j0..j0 + NC].iter_mut().zip(a).zip(&bias[j0..j0 + NC]) {
                *o = a + b;
                *max = simd::max(*max, *o);
            }
        }
    }
    max
}

/// `row = exp(row - max)` in place; returns the sum.
#[inline(always)]
fn exp_sum(row: &mut [f32], max: f32) -> f32 {
    for x in row.iter_mut() {
        *x = exp_f32(*x - max);
    }
    lanes_fold(row, 0.0, |a, b| a + b)
}

/// Columns `c0..c0 + W` of the rows' weighted sums of the values, each row
/// scaled by its `inv`: `rows[r][c] = inv[r] · Σ_j p[r][j] · v[j][c]` over
/// `keys` keys (`p`'s rows are `padded` long).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn weighted<M: Madd, const W: usize>(
    p: &[f32],
    padded: usize,
    keys: usize,
    v: &[f32],
    d: usize,
    c0: usize,
    inv: &[f32; MR],
    rows: &mut [f32],
) {
    let mut acc = [[0f32; W]; MR];
    for (j, vrow) in v.chunks_exact(d).take(keys).enumerate() {
        let vv = &vrow[c0..c0 + W];
        for (r, a) in acc.iter_mut().enumerate() {
            let x = p[r * padded + j];
            for (a, &y) in a.iter_mut().zip(vv) {
                *a = M::madd(x, y, *a);
            }
        }
    }
    for ((row, a), &inv) in rows.chunks_exact_mut(d).zip(&acc).zip(inv) {
        for (o, &a) in row[c0..c0 + W].iter_mut().zip(a) {
            *o = a * inv;
        }
    }
}

/// [`scores`], [`exp_sum`] and [`weighted`] in AVX-512 registers: LLVM
/// left the portable loops scalar, sums on the stack.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{MR, NC};
    use crate::softmax::{EXP_LN2_HI, EXP_LN2_LO, EXP_MAX, EXP_MIN, EXP_POLY};

    /// As [`super::scores`]: for each block of 32 keys, the [`MR`] × 2
    /// sums in registers over `d` steps of two key loads, [`MR`] query
    /// broadcasts and 2·[`MR`] FMAs, by pointers (indexing kept the row
    /// addresses on the stack).
    #[target_feature(enable = "avx512f,fma")]
    pub(super) fn scores(
        q: &[f32],
        d: usize,
        kt: &[f32],
        bias: &[f32],
        p: &mut [f32],
        padded: usize,
    ) -> [f32; MR] {
        assert!(
            padded.is_multiple_of(NC)
                && q.len() >= MR * d
                && kt.len() >= d * padded
                && bias.len() >= padded
                && p.len() >= MR * padded
        );
        let mut max = [_mm512_set1_ps(f32::NEG_INFINITY); MR];
        let (q, kt, bias, p) = (q.as_ptr(), kt.as_ptr(), bias.as_ptr(), p.as_mut_ptr());
        for j0 in (0..padded).step_by(NC) {
            let mut acc = [[_mm512_setzero_ps(); 2]; MR];
            // SAFETY: every read is inside the slices asserted above: key
            // `c · padded + j0 + 0..32` with c < d and j0 + 32 ≤ padded,
            // query `r · d + c` with r < MR, bias and scores `j0 + 0..32`
            // of rows below MR.
            unsafe {
                let mut k = kt.add(j0);
                for c in 0..d {
                    let (k0, k1) = (_mm512_loadu_ps(k), _mm512_loadu_ps(k.add(16)));
                    for (r, a) in acc.iter_mut().enumerate() {
                        let x = _mm512_set1_ps(*q.add(r * d + c));
                        a[0] = _mm512_fmadd_ps(x, k0, a[0]);
                        a[1] = _mm512_fmadd_ps(x, k1, a[1]);
                    }
                    k = k.add(padded);
                }
                let (b0, b1) = (
                    _mm512_loadu_ps(bias.add(j0)),
                    _mm512_loadu_ps(bias.add(j0 + 16)),
                );
                for (r, (a, max)) in acc.iter().zip(&mut max).enumerate() {
                    let (s0, s1) = (_mm512_add_ps(a[0], b0), _mm512_add_ps(a[1], b1));
                    *max = _mm512_max_ps(*max, _mm512_max_ps(s0, s1));
                    let out = p.add(r * padded + j0);
                    _mm512_storeu_ps(out, s0);
                    _mm512_storeu_ps(out.add(16), s1);
                }
            }
        }
        max.map(|m| _mm512_reduce_max_ps(m))
    }

    /// As [`super::exp_sum`], on rows of a multiple of 16.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) fn exp_sum(row: &mut [f32], max: f32) -> f32 {
        let max = _mm512_set1_ps(max);
        let mut sum = _mm512_setzero_ps();
        let (chunks, rest) = row.as_chunks_mut::<16>();
        for chunk in chunks {
            // SAFETY: `chunk` holds 16 floats.
            unsafe {
                let e = exp(_mm512_sub_ps(_mm512_loadu_ps(chunk.as_ptr()), max));
                sum = _mm512_add_ps(sum, e);
                _mm512_storeu_ps(chunk.as_mut_ptr(), e);
            }
        }
        let mut total = _mm512_reduce_add_ps(sum);
        for x in rest {
            *x = super::exp_f32(*x - _mm512_cvtss_f32(max));
            total += *x;
        }
        total
    }

    /// [`super::exp_f32`] on 16 lanes (2ⁿ by `scalef`).
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    fn exp(x: __m512) -> __m512 {
        let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(EXP_MIN));
        let x = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(EXP_MIN)),
            _mm512_set1_ps(EXP_MAX),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_HI), x);
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(EXP_LN2_LO), r);
        let mut p = _mm512_set1_ps(EXP_POLY[0]);
        for &c in &EXP_POLY[1..] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let y = _mm512_add_ps(
            _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r),
            _mm512_set1_ps(1.0),
        );
        _mm512_maskz_mov_ps(!below, _mm512_scalef_ps(y, n))
    }

    /// As [`super::weighted`] with `W = 16 · V`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,fma")]
    pub(super) fn weighted<const V: usize>(
        p: &[f32],
        padded: usize,
        keys: usize,
        v: &[f32],
        d: usize,
        c0: usize,
        inv: &[f32; MR],
        rows: &mut [f32],
    ) {
        assert!(
            c0 + 16 * V <= d
                && keys <= padded
                && p.len() >= MR * padded
                && v.len() >= keys * d
                && rows.len().is_multiple_of(d)
        );
        // The pass's rows: MR, or fewer at the end of a task.
        let m = (rows.len() / d).min(MR);
        let mut acc = [[_mm512_setzero_ps(); V]; MR];
        // SAFETY: every access is inside the slices asserted above: value
        // `j · d + c0 + 0..16·V` with j < keys, probability `r · padded + j`
        // and output `r · d + c0 + 0..16·V` with r < m.
        unsafe {
            let (p, mut vrow) = (p.as_ptr(), v.as_ptr().add(c0));
            for j in 0..keys {
                let mut y = [_mm512_setzero_ps(); V];
                for (i, y) in y.iter_mut().enumerate() {
                    *y = _mm512_loadu_ps(vrow.add(16 * i));
                }
                for (r, a) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*p.add(r * padded + j));
                    for (a, &y) in a.iter_mut().zip(&y) {
                        *a = _mm512_fmadd_ps(x, y, *a);
                    }
                }
                vrow = vrow.add(d);
            }
            let out = rows.as_mut_ptr().add(c0);
            for (r, (a, &inv)) in acc.iter().zip(inv).enumerate().take(m) {
                let inv = _mm512_set1_ps(inv);
                for (i, &a) in a.iter().enumerate() {
                    _mm512_storeu_ps(out.add(r * d + 16 * i), _mm512_mul_ps(a, inv));
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    use super::{MR, Unfused};

    pub(super) fn scores(
        q: &[f32],
        d: usize,
        kt: &[f32],
        bias: &[f32],
        p: &mut [f32],
        padded: usize,
    ) -> [f32; MR] {
        super::scores::<Unfused>(q, d, kt, bias, p, padded)
    }

    pub(super) fn exp_sum(row: &mut [f32], max: f32) -> f32 {
        super::exp_sum(row, max)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn weighted<const V: usize>(
        p: &[f32],
        padded: usize,
        keys: usize,
        v: &[f32],
        d: usize,
        c0: usize,
        inv: &[f32; MR],
        rows: &mut [f32],
    ) {
        match V {
            2 => super::weighted::<Unfused, 32>(p, padded, keys, v, d, c0, inv, rows),
            _ => super::weighted::<Unfused, 16>(p, padded, keys, v, d, c0, inv, rows),
        }
    }
}

impl candle_core::CustomOp1 for FusedAttention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let qkv = contiguous_f32(self.name(), storage, layout)?;
        let (b, s, w) = layout.shape().dims3()?;
        check(self.heads, w)?;
        let out = self.context(qkv, None, b, s);
        Ok((candle_core::CpuStorage::F32(out), (b, s, w / 3).into()))
    }
}

impl candle_core::CustomOp2 for FusedAttention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let name = candle_core::CustomOp2::name(self);
        let qkv = contiguous_f32(name, s1, l1)?;
        let bias = contiguous_f32(name, s2, l2)?;
        let (b, s, w) = l1.shape().dims3()?;
        check(self.heads, w)?;
        if bias.len() != b * s {
            candle_core::bail!(
                "{name}: bias {:?} for states {:?}",
                l2.shape().dims(),
                l1.shape().dims()
            );
        }
        let out = self.context(qkv, Some(bias), b, s);
        Ok((candle_core::CpuStorage::F32(out), (b, s, w / 3).into()))
    }
}

fn check(heads: usize, width: usize) -> candle_core::Result<()> {
    if heads == 0 || !width.is_multiple_of(3 * heads) {
        candle_core::bail!("fused-attention: {width} stacked columns for {heads} heads");
    }
    Ok(())
}

#[cfg(test)]
#[path = "attention_tests.rs"]
mod tests;
