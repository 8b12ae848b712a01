//! Encoders and heads.
//!
//! - Encoders, one file per architecture, all behind [`Encoder`]:
//!   [`bert::BertModel`], [`xlm_roberta::XlmRobertaModel`] (BERT's layers,
//!   RoBERTa's positions), [`deberta_v2::DebertaV2Model`] (candle's), and
//!   [`e5::E5Model`] (the `E5S1` 4-bit file on our BERT; its format in
//!   [`e5_file`]). Linear layers are dense, 4-bit or 8-bit
//!   ([`layers::Linear`]); the CPU ops they run are `arabtag-kernels`'.
//! - Weight surgery apart from the architectures ([`surgery`]): layers to
//!   8-bit or 4-bit, a head file's fine-tuned layers in place of the
//!   encoder's, every tensor read back under its checkpoint name.
//! - Heads ([`heads`]): token classification for all three, sequence
//!   classification per architecture, and classifiers from head files; the
//!   head file format ([`head_file`]).
//! - [`embed`]: e5 sentence embeddings over any encoder.
//! - Entry points: [`load_hub`] (`config.json` + `model.safetensors`,
//!   architecture by `model_type`) and [`load_e5`].

use candle_core::Tensor;
use candle_nn::VarBuilder;

use crate::InferError;

pub mod bert;
pub mod deberta_v2;
pub mod e5;
pub mod e5_file;
pub mod embed;
pub mod head_file;
pub mod heads;
pub mod hf_config;
pub mod hub;
pub mod layers;
pub mod surgery;
pub mod xlm_roberta;

pub use bert::{BertConfig, BertModel, Positions};
pub use deberta_v2::{DebertaV2Config, DebertaV2Model};
pub use e5::{E5File, E5Header, E5Model, E5Precision, E5Problem, load_e5};
pub use embed::{l2_normalize, mean_pool, sentence_embeddings};
pub use head_file::{
    HEAD_LABELS_KEY, HeadFile, dequantize_head, dequantize_rows, head_file_labels, load_head_file,
    quantize_rows,
};
pub use heads::{
    BertSequenceClassifier, Classifier, DebertaV2SequenceClassifier, PooledClassifier, Pooling,
    SequenceHead, TokenClassifier, TokenHead, XlmRobertaSequenceClassifier, ensure_labels,
};
pub use hf_config::{
    Architecture, DEFAULT_MAX_POSITION_EMBEDDINGS, HeadKind, HfConfig, HfConfigHeader,
    LabelProblem, SUPPORTED_MODEL_TYPES, TaskConfig,
};
pub use hub::{HeadChoice, HubModel, HubOptions, load_hub};
pub use layers::{Embedding, Linear, Q4Rows};
pub use xlm_roberta::{XlmRobertaConfig, XlmRobertaModel};

/// A transformer encoder: token ids in, hidden states out.
///
/// `input_ids` and `attention_mask` are `[batch, seq]` `u32` tensors (mask 1
/// for a real token, 0 for padding); the result is `[batch, seq, hidden]`
/// `f32`. A padded batch must give each row the same states as that row alone.
pub trait Encoder: std::fmt::Debug + Send + Sync {
    /// Runs the encoder (see the trait's contract).
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError>;
    /// Width of the hidden states.
    fn hidden_size(&self) -> usize;
    /// Most positions one window may hold, special tokens included.
    fn max_positions(&self) -> usize;
    /// The hidden states after each of `layers` (0: the embeddings), each
    /// `[batch, seq, hidden]` f32; encoders that cannot give intermediate
    /// layers refuse.
    fn forward_layers(
        &self,
        _input_ids: &Tensor,
        _attention_mask: &Tensor,
        _layers: &[usize],
    ) -> Result<Vec<Tensor>, InferError> {
        Err(InferError::NotBertFamily {
            what: "reading intermediate layers",
        })
    }
    /// The encoder as our BERT (BERT, XLM-RoBERTa, e5), whose layers can be
    /// read and replaced; `None` for other architectures.
    fn as_bert(&self) -> Option<&BertModel> {
        None
    }
}

/// The prefixes transformers puts before the base model's tensors in a
/// checkpoint with a head.
pub const BASE_MODEL_PREFIXES: &[&str] = &["bert", "roberta", "deberta"];

/// `vb` moved under the base model's prefix (`bert.`, `roberta.`,
/// `deberta.`) when the checkpoint has one there, else `vb` as it is.
pub fn base_model(vb: VarBuilder) -> VarBuilder {
    BASE_MODEL_PREFIXES
        .iter()
        .find(|p| vb.contains_tensor(&format!("{p}.embeddings.word_embeddings.weight")))
        .map_or_else(|| vb.clone(), |p| vb.pp(p))
}
