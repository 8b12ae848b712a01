//! The encoder's CPU ops, as candle custom ops.
//!
//! Each op has a portable reference build and, where the CPU has AVX-512
//! (or AVX-512 VNNI for the 8-bit products), a fast build chosen at run
//! time; the tests hold both to candle's own ops. This crate depends on
//! candle alone: the encoders (`arabtag-infer`) call these ops, nothing
//! here knows about models.
//!
//! - [`attention`]: BERT self-attention from stacked q/k/v states to the
//!   context, without `[b, heads, s, s]` tensors ([`FusedAttention`]).
//! - [`int8`]: linear layers as 8-bit integer products ([`Int8Linear`]), on
//!   AMX tiles, AVX-512 VNNI or a portable loop ([`int8_kernel`]).
//! - [`norm`]: residual + LayerNorm in one sweep ([`add_layer_norm`]).
//! - [`gelu`]: the erf GELU with a rational erf ([`activate`]).
//! - [`softmax`]: softmax with the padding bias added on the way
//!   ([`masked_softmax`]), the additive bias of a mask ([`attention_bias`]),
//!   the Cephes `exp` ([`exp_f32`]).
//! - [`simd`]: the one-body-two-builds helpers the loops share, and the CPU
//!   feature checks ([`avx512_available`], [`vnni_available`]).
//!
//! Criterion benches at multilingual-e5-small's sizes:
//! `cargo bench -p arabtag-kernels --bench kernels`.

pub mod attention;
pub mod gelu;
pub mod int8;
pub mod norm;
pub mod simd;
pub mod softmax;

pub use attention::FusedAttention;
pub use gelu::{GeluErf, activate, erf_f32};
pub use int8::{
    Int8FeedForward, Int8Linear, KernelTiming, int8_kernel, time_kernels, vnni_available,
};
pub use norm::{AddLayerNorm, add_layer_norm};
pub use simd::avx512_available;
pub use softmax::{MaskedSoftmax, attention_bias, exp_f32, masked_softmax};

/// The f32 values of a contiguous CPU tensor, for custom ops (`name` in
/// the errors).
pub(crate) fn contiguous_f32<'a>(
    name: &str,
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
) -> candle_core::Result<&'a [f32]> {
    let candle_core::CpuStorage::F32(data) = storage else {
        candle_core::bail!("{name}: f32 only");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{name}: the inputs must be contiguous");
    };
    Ok(&data[start..end])
}

/// The largest absolute difference between two tensors of one shape (tests).
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>())
        .expect("same shapes")
}
