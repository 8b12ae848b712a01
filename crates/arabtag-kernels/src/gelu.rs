//! The erf GELU of the feed-forward layers ([`GeluErf`], behind
//! [`activate`]).

use candle_core::{DType, Tensor};

use crate::contiguous_f32;
use crate::simd;

/// The feed-forward activation. The erf GELU of an f32 CPU tensor runs as
/// [`GeluErf`] (a rational erf, both cores); everything else as candle does it.
pub fn activate(activation: candle_nn::Activation, xs: &Tensor) -> candle_core::Result<Tensor> {
    match activation {
        candle_nn::Activation::Gelu if xs.dtype() == DType::F32 && xs.device().is_cpu() => {
            xs.contiguous()?.apply_op1_no_bwd(&GeluErf)
        }
        _ => xs.apply(&activation),
    }
}

/// GELU with the exact erf form, `x/2 · (1 + erf(x/√2))`, where erf is
/// Eigen's rational approximation for f32 (`generic_fast_erf_float`, within
/// 5e-7 of erf everywhere, checked below) instead of libm's `erff`: no
/// branches, no `exp`, so it vectorises, and the rows are split across
/// threads. candle's own `gelu_erf` calls the scalar `erff` on one thread,
/// which took a sixth of the tagging time.
#[derive(Debug, Clone, Copy)]
pub struct GeluErf;

/// erf on f32 by Eigen's rational approximation (odd numerator of degree 13
/// over an even denominator of degree 8, inputs clamped to [-4, 4]). Plain
/// multiply-adds, not `mul_add`: without FMA in the build's target features
/// `mul_add` is a call to the software `fmaf`, which cost more than `erff`.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p - 2.101_024_1e-6;
    p = x2 * p - 5.692_506_4e-5;
    p = x2 * p - 7.349_906_3e-4;
    p = x2 * p - 2.954_600_1e-3;
    p = x2 * p - 1.609_603_3e-2;
    let p = x * p;
    let mut q = x2 * -1.456_607_2e-5 - 2.133_740_6e-4;
    q = x2 * q - 1.682_827e-3;
    q = x2 * q - 7.373_329e-3;
    q = x2 * q - 1.426_474e-2;
    p / q
}

/// Elements per task when splitting across threads.
const GELU_CHUNK: usize = 16 * 1024;

impl candle_core::CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf-rational"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        use rayon::prelude::*;
        let src = contiguous_f32(self.name(), storage, layout)?;
        // A copy of the input, then the GELU in place: the one body the
        // 8-bit product's epilogue runs too.
        let mut out = src.to_vec();
        out.par_chunks_mut(GELU_CHUNK).for_each(gelu_in_place);
        Ok((candle_core::CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// The erf GELU over `xs` in place, with AVX-512 where the CPU has it:
/// [`GeluErf`]'s body, and what the 8-bit products apply to their rows
/// ([`crate::int8::Int8Linear::forward_rows_gelu`],
/// [`crate::int8::Int8Linear::feed_forward`]), so all give the same bits.
pub fn gelu_in_place(xs: &mut [f32]) {
    if simd::avx512_available() {
        #[allow(unsafe_code)]
        // SAFETY: `avx512_available` checked that the CPU has the features
        // `gelu_in_place_avx512` is built for.
        unsafe {
            gelu_in_place_avx512(xs)
        }
    } else {
        gelu_each(xs)
    }
}

#[inline(always)]
fn gelu_each(xs: &mut [f32]) {
    for x in xs {
        *x = 0.5 * *x * (1.0 + erf_f32(*x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn gelu_in_place_avx512(xs: &mut [f32]) {
    gelu_each(xs)
}

#[cfg(not(target_arch = "x86_64"))]
fn gelu_in_place_avx512(xs: &mut [f32]) {
    gelu_each(xs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::max_abs_diff;

    #[test]
    fn rational_erf_is_within_a_few_ulp_of_libm() {
        let mut worst = 0f64;
        for i in -60_000..=60_000 {
            let x = i as f32 * 1e-4;
            let exact = libm_erf(f64::from(x));
            worst = worst.max((f64::from(erf_f32(x)) - exact).abs());
        }
        eprintln!("max |erf error| {worst:e}");
        assert!(worst < 5e-7, "max |erf error| {worst:e}");
        assert!((erf_f32(9.0) - 1.0).abs() <= 2.0 * f32::EPSILON);
        assert!((erf_f32(-9.0) + 1.0).abs() <= 2.0 * f32::EPSILON);
        assert_eq!(erf_f32(0.0), 0.0);
    }

    /// erf in f64 by its series (|x| ≤ 3) or continued fraction (beyond),
    /// accurate far past f32 for the test's range.
    fn libm_erf(x: f64) -> f64 {
        let a = x.abs();
        let v = if a <= 3.0 {
            // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
            let (mut term, mut sum, mut n) = (a, a, 0.0);
            loop {
                n += 1.0;
                term *= -a * a / n;
                let add = term / (2.0 * n + 1.0);
                sum += add;
                if add.abs() < 1e-17 {
                    break;
                }
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc(x) = e^{-x²}/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …))))
            let mut f = a;
            for k in (1..60).rev() {
                f = a + f64::from(k) / 2.0 / f;
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / f
        };
        v.copysign(x)
    }

    #[test]
    fn gelu_op_matches_candle_gelu_erf() {
        let xs: Vec<f32> = (0..40_000).map(|i| (i as f32 - 20_000.0) * 4e-4).collect();
        let t = Tensor::from_vec(xs, (200, 200), &candle_core::Device::Cpu).unwrap();
        let ours = activate(candle_nn::Activation::Gelu, &t).unwrap();
        let diff = max_abs_diff(&ours, &t.gelu_erf().unwrap());
        assert!(diff < 2e-6, "max |difference| {diff:e}");
        // A strided input is made contiguous first.
        let strided = t.t().unwrap();
        let ours = activate(candle_nn::Activation::Gelu, &strided).unwrap();
        assert!(max_abs_diff(&ours, &strided.gelu_erf().unwrap()) < 2e-6);
    }

    #[test]
    fn the_portable_gelu_matches_the_avx512_build() {
        let xs: Vec<f32> = (0..1_000).map(|i| (i as f32 - 500.0) * 1.3e-2).collect();
        let mut portable = xs.clone();
        gelu_each(&mut portable);
        let t = Tensor::new(xs.as_slice(), &candle_core::Device::Cpu).unwrap();
        let want = t.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in portable.iter().zip(&want) {
            assert!((a - b).abs() < 2e-6, "{a} {b}");
        }
    }
}
