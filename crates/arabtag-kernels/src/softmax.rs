//! Softmax over attention scores with the padding bias added on the way
//! ([`MaskedSoftmax`]), the additive bias of a padding mask
//! ([`attention_bias`]), and the Cephes `exp` ([`exp_f32`]) it and the
//! fused attention use.

use candle_core::{DType, Tensor};

use crate::contiguous_f32;
use crate::simd::{self, lanes_fold};

/// The most negative finite value of `dtype`, added to the scores of masked
/// keys.
fn mask_min(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => half::f16::MIN.to_f64(),
        DType::BF16 => half::bf16::MIN.to_f64(),
        DType::F64 => f64::MIN,
        _ => f64::from(f32::MIN),
    }
}

/// `[batch, seq]` 0/1 mask → `[batch, 1, 1, seq]` additive bias in `dtype`:
/// 0 for a real key, the dtype's most negative value for padding.
pub fn attention_bias(attention_mask: &Tensor, dtype: DType) -> candle_core::Result<Tensor> {
    let mask = attention_mask
        .to_dtype(DType::F32)?
        .unsqueeze(1)?
        .unsqueeze(1)?;
    let bias = ((1.0 - mask)? * mask_min(dtype))?;
    bias.to_dtype(dtype)
}

/// `e^x` on f32 by Cephes' `expf` (x = n·ln 2 + r, |r| ≤ ln 2 / 2, a
/// degree-5 polynomial in r, 2ⁿ put in the exponent bits): within 2e-7 of
/// `exp` relative on [-87, 88], checked below; 0 below -87 (e⁻⁸⁷ is
/// 1.6e-38), as masked keys need; e⁸⁸ above 88. No branches and no calls, so it vectorises, where
/// libm's `expf` was a twelfth of the NER time.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    let below = x < EXP_MIN;
    let x = x.clamp(EXP_MIN, EXP_MAX);
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = x - n * EXP_LN2_HI + n * EXP_LN2_LO;
    let mut p = EXP_POLY[0];
    for c in &EXP_POLY[1..] {
        p = p * r + c;
    }
    let y = p * (r * r) + r + 1.0;
    let e = y * f32::from_bits(((n as i32 + 127) as u32) << 23);
    if below { 0.0 } else { e }
}

/// Cephes' `expf` constants, shared by [`exp_f32`] and the fused attention's
/// 16-lane exp: the clamp, ln 2 in two parts (`r = x - n·HI + n·LO`), and the
/// polynomial's coefficients, highest degree first (Cephes' last,
/// 5.0000001201e-1, is 0.5 in f32).
pub const EXP_MIN: f32 = -87.0;
pub const EXP_MAX: f32 = 88.0;
pub const EXP_LN2_HI: f32 = 0.693_359_4;
pub const EXP_LN2_LO: f32 = 2.121_944_4e-4;
pub const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// Rows per task when splitting a softmax across threads.
const SOFTMAX_ROWS: usize = 64;

/// Softmax over the last dimension of attention scores `[b, heads, q, k]`
/// with the additive key bias `[b, 1, 1, k]` of padded batches
/// ([`attention_bias`]) added on the way: one pass, no scores-plus-bias
/// tensor, [`exp_f32`] instead of libm's, rows split across threads.
#[derive(Debug, Clone, Copy)]
pub struct MaskedSoftmax;

impl MaskedSoftmax {
    fn rows(scores: &[f32], bias: Option<&[f32]>, k: usize, rows_per_bias: usize) -> Vec<f32> {
        use rayon::prelude::*;
        let mut out = vec![0f32; scores.len()];
        let k = k.max(1);
        out.par_chunks_mut(SOFTMAX_ROWS * k)
            .zip(scores.par_chunks(SOFTMAX_ROWS * k))
            .enumerate()
            .for_each(|(chunk, (out, scores))| {
                for (i, (out, row)) in out.chunks_mut(k).zip(scores.chunks(k)).enumerate() {
                    let r = chunk * SOFTMAX_ROWS + i;
                    match bias {
                        Some(bias) => {
                            let b = &bias[(r / rows_per_bias.max(1)) * k..][..k];
                            for ((o, &x), &b) in out.iter_mut().zip(row).zip(b) {
                                *o = x + b;
                            }
                        }
                        None => out.copy_from_slice(row),
                    }
                    // Max, exp and sum as separate passes, the reductions
                    // over 16 lanes: a loop carrying one running sum (or
                    // `f32::max`'s NaN rules) stays scalar.
                    let max = lanes_fold(out, f32::NEG_INFINITY, simd::max);
                    for o in out.iter_mut() {
                        *o = exp_f32(*o - max);
                    }
                    let sum = lanes_fold(out, 0.0, |s, x| s + x);
                    let inv = 1.0 / sum;
                    for o in out.iter_mut() {
                        *o *= inv;
                    }
                }
            });
        out
    }
}

impl candle_core::CustomOp1 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let scores = contiguous_f32(self.name(), storage, layout)?;
        let k = layout.shape().dims().last().copied().unwrap_or(1);
        let out = Self::rows(scores, None, k, 1);
        Ok((candle_core::CpuStorage::F32(out), layout.shape().clone()))
    }
}

impl candle_core::CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let scores = contiguous_f32(candle_core::CustomOp2::name(self), s1, l1)?;
        let bias = contiguous_f32(candle_core::CustomOp2::name(self), s2, l2)?;
        let (b, h, q, k) = l1.shape().dims4()?;
        if l2.shape().dims() != [b, 1, 1, k] {
            candle_core::bail!(
                "masked-softmax: bias {:?} for scores {:?}",
                l2.shape().dims(),
                l1.shape().dims()
            );
        }
        let out = Self::rows(scores, Some(bias), k, h * q);
        Ok((candle_core::CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `softmax(scores + bias)` over the last dimension: [`MaskedSoftmax`] for
/// f32 on the CPU, candle's ops otherwise.
pub fn masked_softmax(scores: &Tensor, bias: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let fused = scores.dtype() == DType::F32
        && scores.device().is_cpu()
        && bias.is_none_or(|b| b.dtype() == DType::F32);
    if !fused {
        let scores = match bias {
            Some(bias) => scores.broadcast_add(bias)?,
            None => scores.clone(),
        };
        return candle_nn::ops::softmax_last_dim(&scores);
    }
    let scores = scores.contiguous()?;
    match bias {
        Some(bias) => scores.apply_op2_no_bwd(&bias.contiguous()?, &MaskedSoftmax),
        None => scores.apply_op1_no_bwd(&MaskedSoftmax),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::max_abs_diff;

    #[test]
    fn cephes_exp_is_within_2e7_of_exp() {
        let mut worst = 0f64;
        // Inside the clamp, [-87, 88].
        for i in -86_999..=87_999 {
            let x = i as f32 * 1e-3;
            let exact = f64::from(x).exp();
            worst = worst.max(((f64::from(exp_f32(x)) - exact) / exact).abs());
        }
        assert!(worst < 2e-7, "max relative error {worst:e}");
        assert_eq!(exp_f32(f32::MIN), 0.0);
        assert_eq!(exp_f32(-87.5), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn masked_softmax_matches_candle_s() {
        let dev = candle_core::Device::Cpu;
        let (b, h, q, k) = (2, 3, 5, 70);
        let xs: Vec<f32> = (0..b * h * q * k)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.02)
            .collect();
        let scores = Tensor::from_vec(xs, (b, h, q, k), &dev).unwrap();
        let mut mask = vec![1u32; b * k];
        mask[k + 60..].fill(0);
        let mask = Tensor::from_vec(mask, (b, k), &dev).unwrap();
        let bias = attention_bias(&mask, DType::F32).unwrap();
        let ours = masked_softmax(&scores, Some(&bias)).unwrap();
        let theirs =
            candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&bias).unwrap()).unwrap();
        assert!(max_abs_diff(&ours, &theirs) < 1e-6);
        // Masked keys get nothing.
        let row: Vec<f32> = ours
            .get(1)
            .unwrap()
            .get(2)
            .unwrap()
            .get(4)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(row[60..].iter().all(|&p| p == 0.0));
        let plain = masked_softmax(&scores, None).unwrap();
        let theirs = candle_nn::ops::softmax_last_dim(&scores).unwrap();
        assert!(max_abs_diff(&plain, &theirs) < 1e-6);
    }
}
