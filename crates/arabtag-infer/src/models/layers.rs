//! Building blocks shared by the encoders: a linear layer that is dense,
//! 4-bit or 8-bit ([`Int8Linear`]), an embedding table that is dense or
//! 4-bit, and the input checks. The CPU ops the layers run (attention,
//! LayerNorm, GELU, softmax, 8-bit products) are `arabtag-kernels`'.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Module, Tensor};
use candle_nn::VarBuilder;

use crate::InferError;
use arabtag_kernels::Int8Linear;

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
    /// 8-bit weights run as integer products ([`Int8Linear`]); f32 in and
    /// out.
    Int8 {
        /// The layer (weights, scales, bias).
        layer: Arc<Int8Linear>,
        /// The bias again as a tensor, for [`Linear::bias`].
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
            Self::Int8 { .. } => self.dequantize()?.quantize(dtype),
        }
    }

    /// An 8-bit layer.
    pub fn int8(layer: Int8Linear) -> Result<Self, InferError> {
        let bias = layer
            .bias()
            .map(|b| Tensor::from_slice(b, b.len(), &candle_core::Device::Cpu))
            .transpose()?;
        Ok(Self::Int8 {
            layer: Arc::new(layer),
            bias,
        })
    }

    /// This layer with its weight quantized to 8 bits a row
    /// ([`Int8Linear::from_f32`]); a 4-bit weight is dequantized first. An
    /// 8-bit layer is returned as it is.
    pub fn to_int8(&self) -> Result<Self, InferError> {
        if matches!(self, Self::Int8 { .. }) {
            return Ok(self.clone());
        }
        let Self::Dense(dense) = self.dequantize()? else {
            unreachable!("dequantize gives a dense layer");
        };
        let (out, in_) = dense.weight().dims2()?;
        let weight: Vec<f32> = dense
            .weight()
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        let bias: Option<Vec<f32>> = dense
            .bias()
            .map(|b| b.to_dtype(DType::F32)?.to_vec1())
            .transpose()?;
        Self::int8(Int8Linear::from_f32(&weight, out, in_, bias.as_deref()))
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
            Self::Int8 { layer, bias } => {
                let weight = Tensor::from_vec(
                    layer.weight_f32(),
                    (layer.out_features(), layer.in_features()),
                    &candle_core::Device::Cpu,
                )?;
                Ok(Self::dense(weight, bias.clone()))
            }
        }
    }

    /// Width of the output.
    pub fn out_features(&self) -> Result<usize, InferError> {
        Ok(match self {
            Self::Dense(linear) => linear.weight().dim(0)?,
            Self::Quantized { out_features, .. } => *out_features,
            Self::Int8 { layer, .. } => layer.out_features(),
        })
    }

    /// The bias, when there is one.
    pub fn bias(&self) -> Option<&Tensor> {
        match self {
            Self::Dense(linear) => linear.bias(),
            Self::Quantized { bias, .. } | Self::Int8 { bias, .. } => bias.as_ref(),
        }
    }

    /// Whether the weight is quantized (4-bit or 8-bit).
    pub fn is_quantized(&self) -> bool {
        matches!(self, Self::Quantized { .. } | Self::Int8 { .. })
    }

    /// Whether the weight is 8-bit ([`Int8Linear`]).
    pub fn is_int8(&self) -> bool {
        matches!(self, Self::Int8 { .. })
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
            Self::Int8 { layer, .. } => {
                let dtype = xs.dtype();
                let xs = if dtype == DType::F32 {
                    xs.contiguous()?
                } else {
                    xs.to_dtype(DType::F32)?
                };
                xs.apply_op1_no_bwd(layer.as_ref())?.to_dtype(dtype)
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
    /// A Q4_0 table held as the file's blocks ([`Q4Rows`]).
    Q4Rows(Arc<Q4Rows>),
}

/// Bytes of a GGML `Q4_0` block: an f16 scale and 32 nibbles.
const Q4_BLOCK_BYTES: usize = 18;

/// A `Q4_0` table `[rows, hidden]` as GGML lays it out (per row, blocks of 32
/// values: a little-endian f16 scale `d`, then 16 bytes whose low nibbles
/// are values 0-15 and high nibbles 16-31, each `(nibble - 8) · d`). Rows
/// are dequantised when looked up, to the values candle's `QTensor` gives.
#[derive(Clone)]
pub struct Q4Rows {
    blocks: Vec<u8>,
    rows: usize,
    hidden: usize,
}

impl std::fmt::Debug for Q4Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Q4Rows")
            .field("rows", &self.rows)
            .field("hidden", &self.hidden)
            .finish_non_exhaustive()
    }
}

impl Q4Rows {
    /// A table from its blocks; `hidden` must be a multiple of 32 and
    /// `blocks` exactly `rows · hidden / 32` blocks long.
    pub fn new(blocks: Vec<u8>, rows: usize, hidden: usize) -> Result<Self, InferError> {
        let expected = rows * (hidden / 32) * Q4_BLOCK_BYTES;
        if !hidden.is_multiple_of(32) || blocks.len() != expected {
            return Err(InferError::Candle(candle_core::Error::Msg(format!(
                "a Q4_0 table of {rows} × {hidden} needs {expected} bytes (hidden a multiple \
                 of 32), not {}",
                blocks.len()
            ))));
        }
        Ok(Self {
            blocks,
            rows,
            hidden,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn row_into(&self, row: usize, out: &mut [f32]) {
        let per_row = (self.hidden / 32) * Q4_BLOCK_BYTES;
        let blocks = &self.blocks[row * per_row..(row + 1) * per_row];
        for (b, out) in blocks
            .chunks_exact(Q4_BLOCK_BYTES)
            .zip(out.chunks_exact_mut(32))
        {
            let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            let (low, high) = out.split_at_mut(16);
            for ((q, lo), hi) in b[2..].iter().zip(low).zip(high) {
                *lo = f32::from(i16::from(q & 0x0f) - 8) * d;
                *hi = f32::from(i16::from(q >> 4) - 8) * d;
            }
        }
    }

    /// `ids` of any shape → `ids.shape + [hidden]`, f32.
    pub fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let flat: Vec<u32> = ids.flatten_all()?.to_vec1()?;
        let mut out = vec![0f32; flat.len() * self.hidden];
        for (&id, row) in flat.iter().zip(out.chunks_exact_mut(self.hidden.max(1))) {
            let id = id as usize;
            if id >= self.rows {
                candle_core::bail!("id {id} is past the table's {} rows", self.rows);
            }
            self.row_into(id, row);
        }
        let mut dims = ids.dims().to_vec();
        dims.push(self.hidden);
        Tensor::from_vec(out, dims, ids.device())
    }

    /// The whole table, f32 `[rows, hidden]`.
    pub fn dequantize(&self) -> candle_core::Result<Tensor> {
        let mut out = vec![0f32; self.rows * self.hidden];
        for (r, row) in out.chunks_exact_mut(self.hidden.max(1)).enumerate() {
            self.row_into(r, row);
        }
        Tensor::from_vec(out, (self.rows, self.hidden), &candle_core::Device::Cpu)
    }
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
            Self::Q4Rows(q) => q.rows(),
        })
    }

    /// `ids` of any shape → `ids.shape + [hidden]`.
    pub fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Dense(e) => e.forward(ids),
            Self::Quantized(q) => q.embedding(ids),
            Self::Q4Rows(q) => q.forward(ids),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>())
            .expect("same shapes")
    }

    #[test]
    fn q4_rows_look_up_what_candle_s_q4_tensor_gives() {
        let dev = candle_core::Device::Cpu;
        let values: Vec<f32> = (0..7 * 64)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
            .collect();
        let table = Tensor::from_vec(values, (7, 64), &dev).unwrap();
        let q = QTensor::quantize(&table, GgmlDType::Q4_0).unwrap();
        let rows = Q4Rows::new(q.data().unwrap().into_owned(), 7, 64).unwrap();
        let ids = Tensor::new(&[[6u32, 0, 3], [3, 1, 5]], &dev).unwrap();
        let ours = rows.forward(&ids).unwrap();
        let theirs = q.embedding(&ids).unwrap();
        assert_eq!(ours.dims(), &[2, 3, 64]);
        assert_eq!(max_abs_diff(&ours, &theirs), 0.0);
        assert_eq!(
            max_abs_diff(&rows.dequantize().unwrap(), &q.dequantize(&dev).unwrap()),
            0.0
        );
        // An id past the table, and a table of the wrong size, are errors.
        assert!(rows.forward(&Tensor::new(&[7u32], &dev).unwrap()).is_err());
        assert!(Q4Rows::new(vec![0; 17], 1, 32).is_err());
    }
}
