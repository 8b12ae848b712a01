//! BERT, written here so that every linear layer can be dense or 4-bit
//! ([`Linear`]). XLM-RoBERTa ([`super::xlm_roberta`]) is this model with
//! other position ids; the e5 file ([`super::e5`]) is this model with
//! quantized matrices.
//!
//! Upstream: `modeling_bert.py` in transformers
//! (<https://github.com/huggingface/transformers/blob/main/src/transformers/models/bert/modeling_bert.py>);
//! candle's `candle_transformers::models::bert` is the parity reference in
//! the tests.

use std::sync::Arc;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Activation, LayerNorm, VarBuilder};
use serde::Deserialize;

use arabtag_kernels::{
    FusedAttention, Int8FeedForward, Int8Linear, activate, add_layer_norm, attention_bias,
    avx512_available, masked_softmax,
};

use super::hf_config::{DEFAULT_MAX_POSITION_EMBEDDINGS, TaskConfig};
use super::layers::{Embedding, Linear, check_inputs};
use super::{Encoder, base_model};
use crate::InferError;

/// BERT's `config.json` (also XLM-RoBERTa's, which has the same keys).
///
/// Mirror of `BertConfig`
/// (<https://github.com/huggingface/transformers/blob/main/src/transformers/models/bert/configuration_bert.py>)
/// and `XLMRobertaConfig`
/// (<https://github.com/huggingface/transformers/blob/main/src/transformers/models/xlm_roberta/configuration_xlm_roberta.py>).
/// Keys that `save_pretrained` always writes are required; the others take
/// transformers' defaults through the accessor methods.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Rows of the word embeddings.
    pub vocab_size: usize,
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Feed-forward activation (`gelu` = erf GELU when missing).
    pub hidden_act: Option<Activation>,
    /// Rows of the position embeddings (512 when missing).
    pub max_position_embeddings: Option<usize>,
    /// Rows of the token-type embeddings (2 when missing); only row 0 is used.
    pub type_vocab_size: Option<usize>,
    /// LayerNorm epsilon (1e-12 when missing).
    pub layer_norm_eps: Option<f64>,
    /// The padding id: XLM-R's position ids start after it.
    pub pad_token_id: Option<u32>,
    /// Only `absolute` is supported.
    pub position_embedding_type: Option<String>,
    /// Head keys (`architectures`, `id2label`, …).
    #[serde(flatten)]
    pub task: TaskConfig,
}

impl BertConfig {
    /// The feed-forward activation.
    pub fn activation(&self) -> Activation {
        self.hidden_act.unwrap_or(Activation::Gelu)
    }

    /// Rows of the position table.
    pub fn max_position_embeddings(&self) -> usize {
        self.max_position_embeddings
            .unwrap_or(DEFAULT_MAX_POSITION_EMBEDDINGS)
    }

    /// LayerNorm epsilon.
    pub fn layer_norm_eps(&self) -> f64 {
        self.layer_norm_eps.unwrap_or(1e-12)
    }

    fn check(&self, model: &'static str) -> Result<(), InferError> {
        let unsupported = |field, value: String| InferError::UnsupportedConfig {
            model,
            field,
            value,
        };
        match self.position_embedding_type.as_deref() {
            None | Some("absolute") => {}
            Some(other) => return Err(unsupported("position_embedding_type", other.to_owned())),
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(unsupported(
                "num_attention_heads",
                format!(
                    "{} (hidden_size {})",
                    self.num_attention_heads, self.hidden_size
                ),
            ));
        }
        if self.type_vocab_size == Some(0) {
            return Err(unsupported("type_vocab_size", "0".to_owned()));
        }
        Ok(())
    }
}

/// Checkpoint prefix of the transformer layers.
pub const LAYER_PREFIX: &str = "encoder.layer";

/// How position ids are made from the attention mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    /// BERT: `0, 1, 2, …` on every row.
    Absolute,
    /// RoBERTa / XLM-R (`create_position_ids_from_input_ids`): real tokens
    /// count from `padding_idx + 1`, padding gets `padding_idx`. Counted over
    /// the attention mask.
    FromMask {
        /// The padding id.
        padding_idx: u32,
    },
}

impl Positions {
    /// Positions one window may hold with a table of `rows` position
    /// embeddings: every row for absolute positions; for RoBERTa's, the rows
    /// after the padding id (ids `0..=padding_idx` are never used).
    pub fn usable(self, rows: usize) -> usize {
        match self {
            Positions::Absolute => rows,
            Positions::FromMask { padding_idx } => {
                let reserved = usize::try_from(padding_idx).map_or(usize::MAX, |p| p + 1);
                rows.saturating_sub(reserved)
            }
        }
    }
}

/// Sizes of a BERT encoder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BertDims {
    /// Rows of the word embeddings.
    pub vocab_size: usize,
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Rows of the position table.
    pub max_position_embeddings: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
}

/// Word + position + token-type(0) embeddings, then LayerNorm.
#[derive(Debug, Clone)]
pub(crate) struct BertEmbeddings {
    pub(crate) word: Embedding,
    pub(crate) position: Embedding,
    /// Row 0 of the token-type table, `[hidden]`.
    pub(crate) token_type: Tensor,
    pub(crate) layer_norm: LayerNorm,
}

impl BertEmbeddings {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        let type_rows = cfg.type_vocab_size.unwrap_or(2);
        let token_type = vb
            .pp("token_type_embeddings")
            .get((type_rows, h), "weight")?
            .get(0)?;
        Ok(Self {
            word: Embedding::load(vb.pp("word_embeddings"), cfg.vocab_size, h)?,
            position: Embedding::load(
                vb.pp("position_embeddings"),
                cfg.max_position_embeddings(),
                h,
            )?,
            token_type,
            layer_norm: candle_nn::layer_norm(h, cfg.layer_norm_eps(), vb.pp("LayerNorm"))?,
        })
    }
}

/// One transformer layer (post-LayerNorm, as BERT).
#[derive(Debug, Clone)]
pub(crate) struct BertLayer {
    pub(crate) query: Linear,
    pub(crate) key: Linear,
    pub(crate) value: Linear,
    pub(crate) attention_out: Linear,
    pub(crate) attention_norm: LayerNorm,
    pub(crate) intermediate: Linear,
    pub(crate) activation: Activation,
    pub(crate) output: Linear,
    pub(crate) output_norm: LayerNorm,
    /// With 8-bit query, key and value: the three as one product (their
    /// rows stacked), so the input is quantised once and the kernel runs
    /// 1,152 columns instead of three times 384. Built by
    /// [`BertLayer::fuse_qkv`]; the three layers stay for reading back.
    pub(crate) qkv: Option<Arc<Int8Linear>>,
}

impl BertLayer {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        Self::load_sized(
            vb,
            (cfg.hidden_size, cfg.intermediate_size),
            cfg.layer_norm_eps(),
            cfg.activation(),
        )
    }

    /// Loads a layer of widths `(hidden, intermediate)` under `vb` (the
    /// checkpoint's `encoder.layer.{i}` prefix).
    pub(crate) fn load_sized(
        vb: VarBuilder,
        (h, ff): (usize, usize),
        eps: f64,
        activation: Activation,
    ) -> candle_core::Result<Self> {
        let attention = vb.pp("attention");
        let this = attention.pp("self");
        let out = attention.pp("output");
        Ok(Self {
            query: Linear::load(this.pp("query"), h, h)?,
            key: Linear::load(this.pp("key"), h, h)?,
            value: Linear::load(this.pp("value"), h, h)?,
            attention_out: Linear::load(out.pp("dense"), h, h)?,
            attention_norm: candle_nn::layer_norm(h, eps, out.pp("LayerNorm"))?,
            intermediate: Linear::load(vb.pp("intermediate").pp("dense"), h, ff)?,
            activation,
            output: Linear::load(vb.pp("output").pp("dense"), ff, h)?,
            output_norm: candle_nn::layer_norm(h, eps, vb.pp("output").pp("LayerNorm"))?,
            qkv: None,
        })
    }

    /// `xs` `[b, s, h]`, `bias` `[b, 1, 1, s]` (`None`: no padding).
    fn forward(
        &self,
        xs: &Tensor,
        bias: Option<&Tensor>,
        num_heads: usize,
    ) -> candle_core::Result<Tensor> {
        // Fused ([`FusedAttention`]) for f32 on a CPU with AVX-512; elsewhere
        // candle's ops: the portable build of the fused loops compiles to
        // scalar code (a first, scalar version of them, with a slower key
        // transpose since replaced, took 26.5 s on 98 bench documents where
        // candle's ops took 11.7 s).
        let fused = xs.dtype() == DType::F32 && xs.device().is_cpu() && avx512_available();
        let stacked = match &self.qkv {
            Some(qkv) => Some(xs.contiguous()?.apply_op1_no_bwd(qkv.as_ref())?),
            None => None,
        };
        let context = if fused {
            let qkv = match stacked {
                Some(qkv) => qkv,
                None => Tensor::cat(
                    &[
                        self.query.forward(xs)?,
                        self.key.forward(xs)?,
                        self.value.forward(xs)?,
                    ],
                    2,
                )?,
            };
            let op = FusedAttention { heads: num_heads };
            match bias {
                Some(bias) => qkv.apply_op2_no_bwd(&bias.contiguous()?, &op)?,
                None => qkv.apply_op1_no_bwd(&op)?,
            }
        } else {
            let h = xs.dim(2)?;
            let (q, k, v) = match stacked {
                Some(all) => (
                    all.narrow(2, 0, h)?,
                    all.narrow(2, h, h)?,
                    all.narrow(2, 2 * h, h)?,
                ),
                None => (
                    self.query.forward(xs)?,
                    self.key.forward(xs)?,
                    self.value.forward(xs)?,
                ),
            };
            attention_unfused(&q, &k, &v, bias, num_heads)?
        };
        let attended = add_layer_norm(
            &self.attention_norm,
            &self.attention_out.forward(&context)?,
            Some(xs),
        )?;
        let fed = match (&self.intermediate, &self.output) {
            // The whole feed-forward as one op on 8-bit layers: the erf GELU
            // and the output layer's quantisation on each task's rows while
            // they are in cache (the same bits as the products apart, with
            // `activate` between them; no `[b, s, ff]` tensor).
            (Linear::Int8 { layer: inner, .. }, Linear::Int8 { layer: output, .. })
                if self.activation == Activation::Gelu && attended.dtype() == DType::F32 =>
            {
                attended.contiguous()?.apply_op1_no_bwd(&Int8FeedForward {
                    inner: inner.as_ref(),
                    output: output.as_ref(),
                })?
            }
            _ => self.output.forward(&activate(
                self.activation,
                &self.intermediate.forward(&attended)?,
            )?)?,
        };
        add_layer_norm(&self.output_norm, &fed, Some(&attended))
    }
}

/// Attention by candle's ops (where [`FusedAttention`] does not run): `q`,
/// `k`, `v` `[b, s, h]` split into heads, the scores, their softmax with the
/// key bias, the weighted sum, the heads joined; `[b, s, h]`.
fn attention_unfused(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    num_heads: usize,
) -> candle_core::Result<Tensor> {
    let (b, s, h) = q.dims3()?;
    let head_dim = h / num_heads;
    let heads = |t: &Tensor| -> candle_core::Result<Tensor> {
        t.reshape((b, s, num_heads, head_dim))?
            .transpose(1, 2)?
            .contiguous()
    };
    // The 1/√d scale goes on the queries (s·h values), not on the scores
    // (s² per head).
    let q = heads(&(q / (head_dim as f64).sqrt())?)?;
    let scores = q.matmul(&heads(k)?.t()?)?;
    let probs = masked_softmax(&scores, bias)?;
    probs
        .matmul(&heads(v)?)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b, s, h))
}

/// A BERT encoder (no pooler: heads own theirs).
#[derive(Debug, Clone)]
pub struct BertModel {
    pub(super) embeddings: BertEmbeddings,
    pub(super) layers: Vec<BertLayer>,
    pub(super) positions: Positions,
    pub(super) dims: BertDims,
    pub(super) dtype: DType,
    pub(super) device: Device,
}

impl BertModel {
    /// Loads a BERT checkpoint. `vb` is the checkpoint root or the base
    /// model's prefix; `bert.` (or `roberta.`) is found by itself.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self, InferError> {
        Self::load_with_positions(vb, cfg, Positions::Absolute, "bert")
    }

    pub(crate) fn load_with_positions(
        vb: VarBuilder,
        cfg: &BertConfig,
        positions: Positions,
        model: &'static str,
    ) -> Result<Self, InferError> {
        let _span = tracing::debug_span!("load", model).entered();
        cfg.check(model)?;
        let vb = base_model(vb);
        let embeddings = BertEmbeddings::load(vb.pp("embeddings"), cfg)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| BertLayer::load(vb.pp("encoder").pp("layer").pp(i), cfg))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let dims = BertDims {
            vocab_size: cfg.vocab_size,
            hidden_size: cfg.hidden_size,
            num_heads: cfg.num_attention_heads,
            max_position_embeddings: cfg.max_position_embeddings(),
            layer_norm_eps: cfg.layer_norm_eps(),
        };
        Self::from_parts(embeddings, layers, positions, dims, vb.dtype(), vb.device())
    }

    pub(crate) fn from_parts(
        embeddings: BertEmbeddings,
        layers: Vec<BertLayer>,
        positions: Positions,
        dims: BertDims,
        dtype: DType,
        device: &Device,
    ) -> Result<Self, InferError> {
        // RoBERTa positions that leave no row for a real token.
        if let Positions::FromMask { padding_idx } = positions
            && positions.usable(dims.max_position_embeddings) == 0
        {
            return Err(InferError::UnsupportedConfig {
                model: "xlm-roberta",
                field: "pad_token_id",
                value: format!(
                    "{padding_idx} (max_position_embeddings {})",
                    dims.max_position_embeddings
                ),
            });
        }
        Ok(Self {
            embeddings,
            layers,
            positions,
            dims,
            dtype,
            device: device.clone(),
        })
    }

    /// The encoder's sizes.
    pub fn dims(&self) -> BertDims {
        self.dims
    }

    /// How position ids are made.
    pub fn positions(&self) -> Positions {
        self.positions
    }

    /// Number of transformer layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Width of the feed-forward layer (0 for an encoder without layers).
    pub fn intermediate_size(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.intermediate.out_features().ok())
            .unwrap_or(0)
    }

    /// The feed-forward activation of the layers.
    pub fn activation(&self) -> Option<Activation> {
        self.layers.first().map(|l| l.activation)
    }

    /// Whether any linear layer is quantized.
    pub fn is_quantized(&self) -> bool {
        self.layers.iter().any(|l| l.query.is_quantized())
    }

    /// Position ids `[b, s]` (or `[s]` for absolute positions, broadcast).
    fn position_ids(&self, attention_mask: &Tensor, seq: usize) -> Result<Tensor, InferError> {
        let seq = u32::try_from(seq).map_err(|_| InferError::SequenceTooLong {
            len: seq,
            max: self.max_positions(),
        })?;
        Ok(match self.positions {
            Positions::Absolute => Tensor::arange(0u32, seq, &self.device)?,
            Positions::FromMask { padding_idx } => {
                let mask = attention_mask.to_dtype(DType::F32)?;
                let counted = (mask.cumsum(1)? * &mask)?;
                (counted + f64::from(padding_idx))?.to_dtype(DType::U32)?
            }
        })
    }
}

impl BertModel {
    /// The hidden states after the chosen layers, in the order asked:
    /// layer `0` is the embeddings' output, layer `i` (1-based) the output of
    /// the `i`-th transformer layer, so `num_layers` is what
    /// [`Encoder::forward`] returns (same computation, same values). Each is
    /// `[batch, seq, hidden]` f32. Layers after the highest one asked are not
    /// run.
    pub fn forward_layers(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        layers: &[usize],
    ) -> Result<Vec<Tensor>, InferError> {
        let _span = tracing::trace_span!("bert_forward").entered();
        if let Some(&layer) = layers.iter().find(|&&l| l > self.layers.len()) {
            return Err(InferError::LayerOutOfRange {
                layer,
                layers: self.layers.len(),
            });
        }
        let (batch, seq) = check_inputs(
            input_ids,
            attention_mask,
            self.dims.vocab_size,
            self.max_positions(),
        )?;
        if batch * seq == 0 {
            let shape = (batch, seq, self.dims.hidden_size);
            let zeros = Tensor::zeros(shape, DType::F32, &self.device)?;
            return Ok(vec![zeros; layers.len()]);
        }
        let emb = &self.embeddings;
        let words = emb.word.forward(input_ids)?.to_dtype(self.dtype)?;
        let positions = emb
            .position
            .forward(&self.position_ids(attention_mask, seq)?)?
            .to_dtype(self.dtype)?;
        let token_type = emb.token_type.to_dtype(self.dtype)?;
        let summed = words
            .broadcast_add(&positions)?
            .broadcast_add(&token_type)?;
        let mut xs = add_layer_norm(&emb.layer_norm, &summed, None)?;
        let mut kept: Vec<Option<Tensor>> = vec![None; layers.len()];
        let mut keep = |index: usize, xs: &Tensor| -> candle_core::Result<()> {
            for (slot, _) in kept.iter_mut().zip(layers).filter(|(_, l)| **l == index) {
                *slot = Some(xs.to_dtype(DType::F32)?);
            }
            Ok(())
        };
        keep(0, &xs)?;
        let last = layers.iter().copied().max().unwrap_or(0);
        let bias = self.padding_bias(attention_mask)?;
        for (i, layer) in self.layers.iter().take(last).enumerate() {
            xs = layer.forward(&xs, bias.as_ref(), self.dims.num_heads)?;
            keep(i + 1, &xs)?;
        }
        // Every slot was filled: each asked layer is in 0..=last.
        Ok(kept.into_iter().flatten().collect())
    }

    /// The attention bias of `attention_mask`, or `None` for a batch
    /// without padding (one window, or windows of one length), which needs
    /// no mask.
    fn padding_bias(&self, attention_mask: &Tensor) -> Result<Option<Tensor>, InferError> {
        let padded = attention_mask.flatten_all()?.min(0)?.to_scalar::<u32>()? == 0;
        Ok(padded
            .then(|| attention_bias(attention_mask, self.dtype))
            .transpose()?)
    }

    /// Layers `from + 1..=to` (1-based) on `hidden`, the output of layer
    /// `from` for these inputs' `attention_mask`: the same computation, so
    /// the same values, as [`Self::forward_layers`] asked for layer `to`
    /// would run after it. `[batch, seq, hidden]` f32.
    pub fn forward_from(
        &self,
        hidden: &Tensor,
        attention_mask: &Tensor,
        from: usize,
        to: usize,
    ) -> Result<Tensor, InferError> {
        if to > self.layers.len() || from > to {
            return Err(InferError::LayerOutOfRange {
                layer: if from > to { from } else { to },
                layers: self.layers.len(),
            });
        }
        let (batch, seq, width) = hidden.dims3()?;
        let expected = vec![batch, seq, self.dims.hidden_size];
        if width != self.dims.hidden_size || attention_mask.dims() != [batch, seq] {
            return Err(InferError::Shape {
                what: "the hidden states a layer range starts from",
                expected,
                got: hidden.dims().to_vec(),
            });
        }
        let mut xs = hidden.to_dtype(self.dtype)?;
        if batch * seq == 0 || from == to {
            return Ok(xs.to_dtype(DType::F32)?);
        }
        let bias = self.padding_bias(attention_mask)?;
        for layer in &self.layers[from..to] {
            xs = layer.forward(&xs, bias.as_ref(), self.dims.num_heads)?;
        }
        Ok(xs.to_dtype(DType::F32)?)
    }
}

impl Encoder for BertModel {
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError> {
        let mut states = self.forward_layers(input_ids, attention_mask, &[self.layers.len()])?;
        states.pop().ok_or(InferError::LayerOutOfRange {
            layer: self.layers.len(),
            layers: self.layers.len(),
        })
    }

    fn hidden_size(&self) -> usize {
        self.dims.hidden_size
    }

    fn max_positions(&self) -> usize {
        self.positions.usable(self.dims.max_position_embeddings)
    }

    fn forward_layers(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        layers: &[usize],
    ) -> Result<Vec<Tensor>, InferError> {
        BertModel::forward_layers(self, input_ids, attention_mask, layers)
    }

    fn as_bert(&self) -> Option<&BertModel> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback (candle's ops on q, k, v narrowed from the stacked
    /// states, as CPUs without AVX-512 run it) and the fused op give the same
    /// context on a padded batch.
    #[test]
    fn candle_s_attention_and_the_fused_op_agree() {
        let dev = Device::Cpu;
        let (heads, h) = (4, 64);
        let stacked = Tensor::randn(0f32, 1.5, (2, 9, 3 * h), &dev).unwrap();
        let mask = Tensor::new(&[[1u32; 9], [1, 1, 1, 1, 1, 0, 0, 0, 0]], &dev).unwrap();
        let bias = attention_bias(&mask, DType::F32).unwrap();
        let part = |i: usize| stacked.narrow(2, i * h, h).unwrap();
        let theirs = attention_unfused(&part(0), &part(1), &part(2), Some(&bias), heads).unwrap();
        let ours = stacked
            .apply_op2_no_bwd(&bias, &FusedAttention { heads })
            .unwrap();
        let diff = (&ours - &theirs)
            .and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>())
            .unwrap();
        assert!(diff < 1e-5, "max |difference| {diff}");
    }
}
