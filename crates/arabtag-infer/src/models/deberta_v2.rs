//! DeBERTa-v2 (and v3, which shares the code): candle-transformers'
//! `debertav2` encoder behind our [`Encoder`] trait. Its heads are ours
//! ([`super::heads`]): candle's `DebertaV2NERModel` builds its classifier
//! without the bias the checkpoints carry.
//!
//! Upstream: `modeling_deberta_v2.py` in transformers
//! (<https://github.com/huggingface/transformers/blob/main/src/transformers/models/deberta_v2/modeling_deberta_v2.py>).

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::debertav2 as upstream;
use serde::Deserialize;

use super::hf_config::{DEFAULT_MAX_POSITION_EMBEDDINGS, TaskConfig};
use super::layers::check_inputs;
use super::{Encoder, base_model};
use crate::InferError;

pub use upstream::HiddenAct;

/// `pos_att_type`: `"p2c|c2p"` in old configs, `["p2c", "c2p"]` in new ones.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PosAttType {
    /// `"p2c|c2p"`.
    Joined(String),
    /// `["p2c", "c2p"]`.
    List(Vec<String>),
}

impl PosAttType {
    /// The attention types, split.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::Joined(s) => s
                .split('|')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Self::List(v) => v.clone(),
        }
    }
}

/// DeBERTa-v2's `config.json`.
///
/// Mirror of `DebertaV2Config`
/// (<https://github.com/huggingface/transformers/blob/main/src/transformers/models/deberta_v2/configuration_deberta_v2.py>);
/// missing keys take transformers' defaults when converted to candle's
/// config ([`DebertaV2Config::to_upstream`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DebertaV2Config {
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
    /// Feed-forward activation (`gelu`).
    pub hidden_act: Option<HiddenAct>,
    /// Absolute positions (512).
    pub max_position_embeddings: Option<usize>,
    /// Token types (0: none).
    pub type_vocab_size: Option<usize>,
    /// LayerNorm epsilon (1e-7).
    pub layer_norm_eps: Option<f64>,
    /// Disentangled relative attention (false).
    pub relative_attention: Option<bool>,
    /// Relative distance range (-1: `max_position_embeddings`).
    pub max_relative_positions: Option<isize>,
    /// Padding id (0).
    pub pad_token_id: Option<usize>,
    /// Whether absolute position embeddings are added (true).
    pub position_biased_input: Option<bool>,
    /// `c2p` / `p2c` relative attention terms.
    pub pos_att_type: Option<PosAttType>,
    /// Log buckets of relative positions (-1: none).
    pub position_buckets: Option<isize>,
    /// Whether relative embeddings use the content projections (false).
    pub share_att_key: Option<bool>,
    /// Width of one head (`hidden_size / num_attention_heads`).
    pub attention_head_size: Option<usize>,
    /// Width of the word embeddings when projected (`hidden_size`).
    pub embedding_size: Option<usize>,
    /// `layer_norm` to normalise the relative embeddings.
    pub norm_rel_ebd: Option<String>,
    /// Convolution after the first layer: not supported (candle has no
    /// forward for it).
    pub conv_kernel_size: Option<usize>,
    /// Convolution groups.
    pub conv_groups: Option<usize>,
    /// Convolution activation.
    pub conv_act: Option<String>,
    /// Width of the sequence-classification pooler (`hidden_size`).
    pub pooler_hidden_size: Option<usize>,
    /// The pooler's activation (`gelu`).
    pub pooler_hidden_act: Option<HiddenAct>,
    /// Head keys (`architectures`, `id2label`, …).
    #[serde(flatten)]
    pub task: TaskConfig,
}

impl DebertaV2Config {
    /// Rows of the absolute position table (also the longest window).
    pub fn max_position_embeddings(&self) -> usize {
        self.max_position_embeddings
            .unwrap_or(DEFAULT_MAX_POSITION_EMBEDDINGS)
    }

    /// Width of the pooler.
    pub fn pooler_hidden_size(&self) -> usize {
        self.pooler_hidden_size.unwrap_or(self.hidden_size)
    }

    /// The pooler's activation.
    pub fn pooler_hidden_act(&self) -> HiddenAct {
        self.pooler_hidden_act.unwrap_or(HiddenAct::Gelu)
    }

    /// candle's config, with transformers' defaults for missing keys.
    pub fn to_upstream(&self) -> Result<upstream::Config, InferError> {
        if let Some(k) = self.conv_kernel_size.filter(|&k| k > 0) {
            return Err(InferError::UnsupportedConfig {
                model: "deberta-v2",
                field: "conv_kernel_size",
                value: k.to_string(),
            });
        }
        let heads_ok = self.num_attention_heads > 0
            && self.hidden_size.is_multiple_of(self.num_attention_heads);
        if !heads_ok {
            return Err(InferError::UnsupportedConfig {
                model: "deberta-v2",
                field: "num_attention_heads",
                value: format!(
                    "{} (hidden_size {})",
                    self.num_attention_heads, self.hidden_size
                ),
            });
        }
        Ok(upstream::Config {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act: self.hidden_act.unwrap_or(HiddenAct::Gelu),
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            max_position_embeddings: self.max_position_embeddings(),
            type_vocab_size: self.type_vocab_size.unwrap_or(0),
            initializer_range: 0.02,
            layer_norm_eps: self.layer_norm_eps.unwrap_or(1e-7),
            relative_attention: self.relative_attention.unwrap_or(false),
            max_relative_positions: self.max_relative_positions.unwrap_or(-1),
            pad_token_id: Some(self.pad_token_id.unwrap_or(0)),
            position_biased_input: self.position_biased_input.unwrap_or(true),
            pos_att_type: self
                .pos_att_type
                .as_ref()
                .map(PosAttType::to_vec)
                .unwrap_or_default(),
            position_buckets: self.position_buckets,
            share_att_key: self.share_att_key,
            attention_head_size: self.attention_head_size,
            embedding_size: self.embedding_size,
            norm_rel_ebd: self.norm_rel_ebd.clone(),
            conv_kernel_size: self.conv_kernel_size,
            conv_groups: self.conv_groups,
            conv_act: self.conv_act.clone(),
            id2label: None,
            label2id: None,
            pooler_dropout: Some(0.0),
            pooler_hidden_act: Some(self.pooler_hidden_act()),
            pooler_hidden_size: Some(self.pooler_hidden_size()),
            cls_dropout: None,
        })
    }
}

/// The dtypes candle's DeBERTa-v2 runs in (its masked softmax builds f32
/// constants).
const SUPPORTED_DTYPES: &[DType] = &[DType::F32];

/// A DeBERTa-v2 encoder.
pub struct DebertaV2Model {
    inner: upstream::DebertaV2Model,
    vocab_size: usize,
    hidden_size: usize,
    max_positions: usize,
}

impl std::fmt::Debug for DebertaV2Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebertaV2Model")
            .field("vocab_size", &self.vocab_size)
            .field("hidden_size", &self.hidden_size)
            .field("max_positions", &self.max_positions)
            .finish_non_exhaustive()
    }
}

impl DebertaV2Model {
    /// Loads a DeBERTa-v2 checkpoint (f32 only); `deberta.` is found by
    /// itself.
    pub fn load(vb: VarBuilder, cfg: &DebertaV2Config) -> Result<Self, InferError> {
        let _span = tracing::debug_span!("load", model = "deberta-v2").entered();
        if !SUPPORTED_DTYPES.contains(&vb.dtype()) {
            return Err(InferError::UnsupportedDtype {
                model: "deberta-v2",
                dtype: vb.dtype(),
                supported: SUPPORTED_DTYPES,
            });
        }
        let upstream_cfg = cfg.to_upstream()?;
        let inner = upstream::DebertaV2Model::load(base_model(vb), &upstream_cfg)?;
        Ok(Self {
            inner,
            vocab_size: cfg.vocab_size,
            hidden_size: cfg.hidden_size,
            max_positions: cfg.max_position_embeddings(),
        })
    }
}

impl Encoder for DebertaV2Model {
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError> {
        let _span = tracing::trace_span!("deberta_v2_forward").entered();
        let (batch, seq) = check_inputs(
            input_ids,
            attention_mask,
            self.vocab_size,
            self.max_positions,
        )?;
        if batch * seq == 0 {
            let shape = (batch, seq, self.hidden_size);
            return Ok(Tensor::zeros(shape, DType::F32, input_ids.device())?);
        }
        let hidden = self
            .inner
            .forward(input_ids, None, Some(attention_mask.clone()))?;
        Ok(hidden.to_dtype(DType::F32)?)
    }

    fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    fn max_positions(&self) -> usize {
        self.max_positions
    }
}
