//! Building blocks shared by the encoders: a linear layer that is dense,
//! 4-bit or 8-bit ([`Int8Linear`]), an embedding table that is dense or 4-bit, input checks and the
//! additive attention mask.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Module, Tensor};
use candle_nn::VarBuilder;

use super::int8::Int8Linear;
use super::simd::{self, Fused, Madd, Unfused, lanes_fold};
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
        let mut out = vec![0f32; src.len()];
        let fast = simd::avx512_available();
        out.par_chunks_mut(GELU_CHUNK)
            .zip(src.par_chunks(GELU_CHUNK))
            .for_each(|(out, src)| {
                if fast {
                    #[allow(unsafe_code)]
                    // SAFETY: `avx512_available` checked that the CPU has the
                    // features `gelu_avx512` is built for.
                    unsafe {
                        gelu_avx512(out, src)
                    }
                } else {
                    gelu(out, src)
                }
            });
        Ok((candle_core::CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[inline(always)]
fn gelu(out: &mut [f32], src: &[f32]) {
    for (o, &x) in out.iter_mut().zip(src) {
        *o = 0.5 * x * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// [`gelu`] built for AVX-512 ([`simd`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn gelu_avx512(out: &mut [f32], src: &[f32]) {
    gelu(out, src)
}

#[cfg(not(target_arch = "x86_64"))]
fn gelu_avx512(out: &mut [f32], src: &[f32]) {
    gelu(out, src)
}

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
pub(crate) const EXP_MIN: f32 = -87.0;
pub(crate) const EXP_MAX: f32 = 88.0;
pub(crate) const EXP_LN2_HI: f32 = 0.693_359_4;
pub(crate) const EXP_LN2_LO: f32 = 2.121_944_4e-4;
pub(crate) const EXP_POLY: [f32; 6] = [
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
pub(crate) mod tests {
    use super::*;

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

    pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
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
        let mut portable = vec![0f32; xs.len()];
        gelu(&mut portable, &xs);
        let t = Tensor::new(xs.as_slice(), &candle_core::Device::Cpu).unwrap();
        let want = t.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in portable.iter().zip(&want) {
            assert!((a - b).abs() < 2e-6, "{a} {b}");
        }
    }

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
