//! Residual + LayerNorm as one op ([`add_layer_norm`]).

use candle_core::{DType, Module, Tensor};

use crate::contiguous_f32;
use crate::simd::{self, Fused, Madd, Unfused, lanes_fold};

/// Rows per task when splitting a LayerNorm across threads.
const NORM_ROWS: usize = 32;

/// `LayerNorm(xs + residual)` over the last dimension (`residual` `None`:
/// of `xs` alone). For f32 on the CPU one op ([`AddLayerNorm`]): the sum,
/// the mean, the variance about the mean and the affine map in one sweep of
/// each row while it is in L1, 16 lanes wide, rows split across threads.
/// candle's LayerNorm summed each row in scalar code, one rayon task a row.
/// Other dtypes and devices: candle's add and LayerNorm.
pub fn add_layer_norm(
    norm: &candle_nn::LayerNorm,
    xs: &Tensor,
    residual: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let f32_cpu = |t: &Tensor| t.dtype() == DType::F32 && t.device().is_cpu();
    let fused = f32_cpu(xs)
        && residual.is_none_or(|r| f32_cpu(r) && r.dims() == xs.dims())
        && norm.remove_mean()
        && f32_cpu(norm.weight())
        && norm.bias().is_none_or(f32_cpu);
    if !fused {
        return match residual {
            Some(r) => norm.forward(&(xs + r)?),
            None => norm.forward(xs),
        };
    }
    let weight = norm.weight().to_vec1::<f32>()?;
    let bias = match norm.bias() {
        Some(b) => b.to_vec1::<f32>()?,
        None => vec![0.0; weight.len()],
    };
    let op = AddLayerNorm {
        weight,
        bias,
        eps: norm.eps() as f32,
    };
    let xs = xs.contiguous()?;
    match residual {
        Some(r) => xs.apply_op2_no_bwd(&r.contiguous()?, &op),
        None => xs.apply_op1_no_bwd(&op),
    }
}

/// The op behind [`add_layer_norm`].
#[derive(Debug, Clone)]
pub struct AddLayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl AddLayerNorm {
    fn rows(&self, xs: &[f32], residual: Option<&[f32]>) -> candle_core::Result<Vec<f32>> {
        use rayon::prelude::*;
        let n = self.weight.len();
        if n == 0 || !xs.len().is_multiple_of(n) {
            candle_core::bail!("layer-norm: {} values for rows of {n}", xs.len());
        }
        let mut out = xs.to_vec();
        let fast = simd::avx512_available();
        out.par_chunks_mut(NORM_ROWS * n)
            .enumerate()
            .for_each(|(i, out)| {
                let residual = residual.map(|r| &r[i * NORM_ROWS * n..][..out.len()]);
                if fast {
                    #[allow(unsafe_code)]
                    // SAFETY: `avx512_available` checked that the CPU has the
                    // features `norm_avx512` is built for.
                    unsafe {
                        norm_avx512(self, out, residual)
                    }
                } else {
                    self.norm::<Unfused>(out, residual)
                }
            });
        Ok(out)
    }

    /// Rows of `out` (holding `xs`) replaced by `LayerNorm(xs + residual)`.
    #[inline(always)]
    fn norm<M: Madd>(&self, out: &mut [f32], residual: Option<&[f32]>) {
        let n = self.weight.len();
        for (i, row) in out.chunks_exact_mut(n).enumerate() {
            if let Some(r) = residual {
                for (o, &r) in row.iter_mut().zip(&r[i * n..(i + 1) * n]) {
                    *o += r;
                }
            }
            let mean = lanes_fold(row, 0.0, |a, b| a + b) / n as f32;
            for o in row.iter_mut() {
                *o -= mean;
            }
            let var = simd::sum_squares::<M>(row) / n as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((o, &w), &b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *o = M::madd(*o * inv, w, b);
            }
        }
    }
}

/// [`AddLayerNorm::norm`] built for AVX-512 ([`simd`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn norm_avx512(op: &AddLayerNorm, out: &mut [f32], residual: Option<&[f32]>) {
    op.norm::<Fused>(out, residual)
}

#[cfg(not(target_arch = "x86_64"))]
fn norm_avx512(op: &AddLayerNorm, out: &mut [f32], residual: Option<&[f32]>) {
    op.norm::<Unfused>(out, residual)
}

impl candle_core::CustomOp1 for AddLayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let xs = contiguous_f32(self.name(), storage, layout)?;
        let out = self.rows(xs, None)?;
        Ok((candle_core::CpuStorage::F32(out), layout.shape().clone()))
    }
}

impl candle_core::CustomOp2 for AddLayerNorm {
    fn name(&self) -> &'static str {
        "add-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let name = candle_core::CustomOp2::name(self);
        let xs = contiguous_f32(name, s1, l1)?;
        let residual = contiguous_f32(name, s2, l2)?;
        if xs.len() != residual.len() {
            candle_core::bail!("{name}: {:?} and {:?}", l1.dims(), l2.dims());
        }
        let out = self.rows(xs, Some(residual))?;
        Ok((candle_core::CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::max_abs_diff;

    #[test]
    fn add_layer_norm_matches_candle_s_both_builds() {
        let dev = candle_core::Device::Cpu;
        // 70 rows: more than one task's worth, and a last task short.
        let xs = Tensor::randn(0f32, 3.0, (2, 35, 48), &dev).unwrap();
        let res = (Tensor::randn(0f32, 1.0, (2, 35, 48), &dev).unwrap() + 5.0).unwrap();
        let weight = Tensor::randn(1f32, 0.2, 48, &dev).unwrap();
        let bias = Tensor::randn(0f32, 0.2, 48, &dev).unwrap();
        let norm = candle_nn::LayerNorm::new(weight.clone(), bias.clone(), 1e-12);
        let want = candle_nn::Module::forward(&norm, &(&xs + &res).unwrap()).unwrap();
        let ours = add_layer_norm(&norm, &xs, Some(&res)).unwrap();
        assert!(max_abs_diff(&ours, &want) < 1e-5);
        let alone = add_layer_norm(&norm, &xs, None).unwrap();
        let want_alone = candle_nn::Module::forward(&norm, &xs).unwrap();
        assert!(max_abs_diff(&alone, &want_alone) < 1e-5);
        // The portable build, whatever this CPU has.
        let op = AddLayerNorm {
            weight: weight.to_vec1().unwrap(),
            bias: bias.to_vec1().unwrap(),
            eps: 1e-12,
        };
        let mut out = xs.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let res = res.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        op.norm::<Unfused>(&mut out, Some(&res));
        let portable = Tensor::from_vec(out, (2, 35, 48), &dev).unwrap();
        assert!(max_abs_diff(&portable, &want) < 1e-5);
        // Rows that do not divide the data are an error, not a panic.
        assert!(op.rows(&[0.0; 47], None).is_err());
    }
}
