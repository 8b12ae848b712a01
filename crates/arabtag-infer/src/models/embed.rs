//! Sentence embeddings, the e5 recipe: the caller prefixes each text with
//! `query: ` (or `passage: `), the encoder runs, the hidden states are
//! averaged over the attention mask and the mean is L2-normalised.

use candle_core::{D, DType, Tensor};

use super::Encoder;
use crate::InferError;

/// Mean of `hidden` `[b, s, h]` over the tokens whose `attention_mask`
/// `[b, s]` is 1 → `[b, h]` (a row with no token gives zeros).
pub fn mean_pool(hidden: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError> {
    let mask = attention_mask
        .to_dtype(hidden.dtype())?
        .unsqueeze(D::Minus1)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::INFINITY)?;
    Ok(summed.broadcast_div(&counts)?)
}

/// Rows of `xs` `[b, h]` divided by their L2 norm (at least 1e-12, as
/// `torch.nn.functional.normalize`).
pub fn l2_normalize(xs: &Tensor) -> Result<Tensor, InferError> {
    let norms = xs
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::INFINITY)?;
    Ok(xs.broadcast_div(&norms)?)
}

/// Unit-length sentence embeddings `[b, hidden]` f32 of a padded batch:
/// `encoder` → mean over the mask → L2 normalisation.
pub fn sentence_embeddings(
    encoder: &dyn Encoder,
    input_ids: &Tensor,
    attention_mask: &Tensor,
) -> Result<Tensor, InferError> {
    let _span = tracing::trace_span!("sentence_embeddings").entered();
    let hidden = encoder.forward(input_ids, attention_mask)?;
    let pooled = mean_pool(&hidden.to_dtype(DType::F32)?, attention_mask)?;
    l2_normalize(&pooled)
}
