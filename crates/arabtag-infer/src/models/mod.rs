//! Encoders and heads.

use candle_core::Tensor;

use crate::InferError;

/// A transformer encoder: token ids in, hidden states out.
///
/// `input_ids` and `attention_mask` are `[batch, seq]` `u32` tensors (mask 1
/// for a real token, 0 for padding); the result is `[batch, seq, hidden]`
/// `f32`. A padded batch must give each row the same states as that row alone.
pub trait Encoder: std::fmt::Debug + Send + Sync {
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError>;
    /// Width of the hidden states.
    fn hidden_size(&self) -> usize;
    /// Most positions one window may hold, special tokens included.
    fn max_positions(&self) -> usize;
}
