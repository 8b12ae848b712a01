//! Training a NER head over frozen encoder features.
//!
//! - [`align`]: CoNLL sentences (words + IOB2 tags) encoded with the
//!   [`SubwordEncoder`](arabtag_tokenizer::SubwordEncoder); each word's label
//!   goes to its FIRST subtoken, the other subtokens carry none.
//! - [`features`]: the first-subtoken hidden states of chosen layers,
//!   concatenated, over windows (long sentences are windowed, never
//!   truncated), and their cache file (f16, keyed by the model, the layers
//!   and the data).
//! - [`head`]: a softmax linear head trained on those features with AdamW,
//!   deterministic for a seed, checkpointed and resumable; the head file
//!   format ([`head::LayerHeadMeta`]) a tagger loads.

pub mod align;
pub mod features;
pub mod finetune;
pub mod head;
pub mod optim;
pub mod stance;

pub use align::{AlignedSentence, TaggedSentence, align_sentence, label_set};
pub use features::{CacheKey, FeatureSpec, Features, extract_features, load_cache, save_cache};
pub use head::{
    EpochReport, HEAD_FORMAT, HeadTrainer, LayerHeadMeta, TrainOptions, TrainState, write_json,
};

/// The encoder of a verified model as our BERT, on the CPU, so that its
/// layers can be read ([`crate::models::BertModel::forward_layers`]): the e5
/// file (4-bit when the config says `quantized`), or a BERT / XLM-RoBERTa
/// checkpoint in the hub layout. DeBERTa-v2 is refused (candle's encoder
/// does not give its intermediate layers).
pub fn load_bert(
    model: &crate::config::VerifiedModel,
) -> Result<crate::models::BertModel, crate::InferError> {
    use crate::config::ResolvedSource;
    use crate::models::{BertModel, E5Model, E5Precision, HfConfig, XlmRobertaModel};
    let device = candle_core::Device::Cpu;
    let resolved = model.model();
    if matches!(resolved.source, ResolvedSource::E5) {
        let precision = if resolved.quantized {
            E5Precision::Q4
        } else {
            E5Precision::F32
        };
        return Ok(E5Model::load(model.weights(), precision, &device)?
            .bert()
            .clone());
    }
    let config = model
        .checkpoint_config()
        .ok_or(crate::InferError::TaggerSetup {
            what: "a hub-layout model has no config.json",
        })?;
    let weights = model.weights();
    let vb = || -> Result<candle_nn::VarBuilder<'static>, crate::InferError> {
        let tensors = candle_core::safetensors::load(weights, &device).map_err(|source| {
            crate::InferError::Checkpoint {
                path: weights.to_owned(),
                source: Box::new(source.into()),
            }
        })?;
        Ok(candle_nn::VarBuilder::from_tensors(
            tensors,
            candle_core::DType::F32,
            &device,
        ))
    };
    match HfConfig::from_file(config)? {
        HfConfig::Bert(cfg) => BertModel::load(vb()?, &cfg),
        HfConfig::XlmRoberta(cfg) => Ok(XlmRobertaModel::load(vb()?, &cfg)?.bert().clone()),
        HfConfig::DebertaV2(_) => Err(crate::InferError::UnsupportedConfig {
            model: "deberta-v2",
            field: "model_type",
            value: "deberta-v2 (no intermediate layers for training features)".to_owned(),
        }),
    }
}
