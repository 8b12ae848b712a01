//! Building blocks shared by the encoders: a linear layer that is dense or
//! 4-bit, an embedding table that is dense or 4-bit, input checks and the
//! additive attention mask.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Module, Tensor};
use candle_nn::VarBuilder;

use crate::InferError;

/// A linear layer `y = x Wᵀ + b` whose weight `[out, in]` is either a dense
/// tensor or a quantized one run through candle's quantized matmul (which
/// quantizes the activations to 8 bits per block of 32 on the fly, as GGML
/// does).
#[derive(Debug, Clone)]
pub enum Linear {
    /// A dense weight in the model's dtype.
    Dense(candle_nn::Linear),
    /// A quantized weight (`QTensor` of shape `[out, in]`) and a dense bias.
    Quantized {
        /// The weight, kept quantized in memory.
        weight: QMatMul,
        /// Rows of the weight (the output width).
        out_features: usize,
        /// The bias, `[out]`, f32.
        bias: Option<Tensor>,
    },
}

impl Linear {
    /// Loads `weight` `[out, in]` and `bias` `[out]` under `vb` (dense).
    pub fn load(
        vb: VarBuilder,
        in_features: usize,
        out_features: usize,
    ) -> candle_core::Result<Self> {
        candle_nn::linear(in_features, out_features, vb).map(Self::Dense)
    }

    /// A dense layer from its tensors.
    pub fn dense(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self::Dense(candle_nn::Linear::new(weight, bias))
    }

    /// A quantized layer from a `[out, in]` quantized weight.
    pub fn quantized(weight: QTensor, bias: Option<Tensor>) -> Result<Self, InferError> {
        let (out_features, _) = weight.shape().dims2()?;
        Ok(Self::Quantized {
            weight: QMatMul::from_arc(Arc::new(weight))?,
            out_features,
            bias,
        })
    }

    /// This layer with its weight quantized to `dtype` (a dense weight's last
    /// dimension must be a multiple of the block size, 32 for `Q4_0`). An
    /// already quantized layer is returned as it is.
    pub fn quantize(&self, dtype: GgmlDType) -> Result<Self, InferError> {
        match self {
            Self::Dense(linear) => {
                let weight = QTensor::quantize(&linear.weight().to_dtype(DType::F32)?, dtype)?;
                let bias = linear.bias().map(|b| b.to_dtype(DType::F32)).transpose()?;
                Self::quantized(weight, bias)
            }
            Self::Quantized { .. } => Ok(self.clone()),
        }
    }

    /// This layer with its weight dequantized to a dense f32 tensor.
    pub fn dequantize(&self) -> Result<Self, InferError> {
        match self {
            Self::Dense(_) => Ok(self.clone()),
            Self::Quantized { weight, bias, .. } => {
                let weight = match weight {
                    QMatMul::QTensor(q) => q.dequantize(&q.device())?,
                    QMatMul::Tensor(t) | QMatMul::TensorF16(t) => t.to_dtype(DType::F32)?,
                };
                Ok(Self::dense(weight, bias.clone()))
            }
        }
    }

    /// Width of the output.
    pub fn out_features(&self) -> Result<usize, InferError> {
        Ok(match self {
            Self::Dense(linear) => linear.weight().dim(0)?,
            Self::Quantized { out_features, .. } => *out_features,
        })
    }

    /// The bias, when there is one.
    pub fn bias(&self) -> Option<&Tensor> {
        match self {
            Self::Dense(linear) => linear.bias(),
            Self::Quantized { bias, .. } => bias.as_ref(),
        }
    }

    /// Whether the weight is quantized.
    pub fn is_quantized(&self) -> bool {
        matches!(self, Self::Quantized { .. })
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Dense(linear) => linear.forward(xs),
            Self::Quantized { weight, bias, .. } => {
                let ys = weight.forward(&xs.contiguous()?)?;
                match bias {
                    Some(bias) => ys.broadcast_add(&bias.to_dtype(ys.dtype())?),
                    None => Ok(ys),
                }
            }
        }
    }
}

/// An embedding table `[rows, hidden]`, dense or quantized. A quantized table
/// dequantizes only the rows looked up, so a 250k-row vocabulary stays 4-bit
/// in memory and costs `ids × hidden` floats per call.
#[derive(Debug, Clone)]
pub enum Embedding {
    /// A dense table.
    Dense(candle_nn::Embedding),
    /// A quantized table (f32 rows out).
    Quantized(Arc<QTensor>),
}

impl Embedding {
    /// Loads `weight` `[rows, hidden]` under `vb`.
    pub fn load(vb: VarBuilder, rows: usize, hidden: usize) -> candle_core::Result<Self> {
        candle_nn::embedding(rows, hidden, vb).map(Self::Dense)
    }

    /// A dense table.
    pub fn dense(table: Tensor) -> Result<Self, InferError> {
        let (_, hidden) = table.dims2()?;
        Ok(Self::Dense(candle_nn::Embedding::new(table, hidden)))
    }

    /// Number of rows.
    pub fn rows(&self) -> Result<usize, InferError> {
        Ok(match self {
            Self::Dense(e) => e.embeddings().dim(0)?,
            Self::Quantized(q) => q.shape().dims2()?.0,
        })
    }

    /// `ids` of any shape → `ids.shape + [hidden]`.
    pub fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Dense(e) => e.forward(ids),
            Self::Quantized(q) => q.embedding(ids),
        }
    }
}

/// Checks the encoder inputs (`[batch, seq]` u32, equal shapes, at most
/// `max_positions` long, ids below `vocab`) and returns `(batch, seq)`.
pub fn check_inputs(
    input_ids: &Tensor,
    attention_mask: &Tensor,
    vocab: usize,
    max_positions: usize,
) -> Result<(usize, usize), InferError> {
    let shape_error = || InferError::InputShape {
        ids: input_ids.dims().to_vec(),
        ids_dtype: input_ids.dtype(),
        mask: attention_mask.dims().to_vec(),
        mask_dtype: attention_mask.dtype(),
    };
    if input_ids.rank() != 2
        || input_ids.dims() != attention_mask.dims()
        || input_ids.dtype() != DType::U32
        || attention_mask.dtype() != DType::U32
    {
        return Err(shape_error());
    }
    let (batch, seq) = input_ids.dims2()?;
    if seq > max_positions {
        return Err(InferError::SequenceTooLong {
            len: seq,
            max: max_positions,
        });
    }
    if batch * seq > 0 {
        let max_id = input_ids.flatten_all()?.max(0)?.to_scalar::<u32>()?;
        if usize::try_from(max_id).map_or(true, |id| id >= vocab) {
            return Err(InferError::TokenOutOfVocab { id: max_id, vocab });
        }
    }
    Ok((batch, seq))
}

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
pub fn attention_bias(attention_mask: &Tensor, dtype: DType) -> Result<Tensor, InferError> {
    let mask = attention_mask
        .to_dtype(DType::F32)?
        .unsqueeze(1)?
        .unsqueeze(1)?;
    let bias = ((1.0 - mask)? * mask_min(dtype))?;
    Ok(bias.to_dtype(dtype)?)
}
