//! One body of code, two builds: the f32 loops of the fused CPU ops
//! ([`crate::attention`], [`crate::norm::add_layer_norm`], the GELU) are
//! written once, generic over how a multiply-add is done (`Madd`), and run
//! either inside a `#[target_feature(enable = "avx512f,fma")]` function,
//! where LLVM turns them into 16-lane AVX-512 FMAs, or as they are, for
//! CPUs without AVX-512 (baseline x86-64 has no FMA, and a fused
//! `f32::mul_add` there is a call to the software `fmaf`). The two builds
//! may differ in the last bits (fused or unfused rounding); the tests check
//! both against candle.

/// How `a · b + c` is computed.
pub(crate) trait Madd {
    fn madd(a: f32, b: f32, c: f32) -> f32;
}

/// One rounding: a hardware FMA inside AVX-512 builds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fused;

impl Madd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// Multiply, then add: the portable build.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unfused;

impl Madd for Unfused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Whether this CPU has AVX-512 F and FMA (checked once, cached by std).
pub fn avx512_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `f` folded over `xs` in 16 interleaved lanes, then across them: the same
/// value for max, a reassociated one for sums, in a form that vectorises (a
/// loop carrying one running sum, or `f32::max`'s NaN rules, stays scalar).
#[inline(always)]
pub(crate) fn lanes_fold(xs: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 16];
    let (chunks, rest) = xs.as_chunks::<16>();
    for chunk in chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = f(*a, x);
        }
    }
    let mut out = init;
    for &x in rest {
        out = f(out, x);
    }
    acc.into_iter().fold(out, &f)
}

/// The larger of two floats, as `maxps` does it (no NaN rules), so that
/// folds over it vectorise.
#[inline(always)]
pub(crate) fn max(a: f32, b: f32) -> f32 {
    if b > a { b } else { a }
}

/// `Σ x²` over `xs` in 16 lanes.
#[inline(always)]
pub(crate) fn sum_squares<M: Madd>(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (chunks, rest) = xs.as_chunks::<16>();
    for chunk in chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = M::madd(x, x, *a);
        }
    }
    let mut out = 0.0;
    for &x in rest {
        out = M::madd(x, x, out);
    }
    acc.into_iter().fold(out, |a, b| a + b)
}
