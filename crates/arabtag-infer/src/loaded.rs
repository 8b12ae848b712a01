//! Loading a verified model config's encoder for the trainers and the
//! exporter.

use crate::InferError;
use crate::config::{ResolvedSource, VerifiedModel};
use crate::models::{BertModel, E5Model, E5Precision, HfConfig, XlmRobertaModel};

/// The encoder of a verified model as our BERT, on the CPU, so that its
/// layers can be read ([`BertModel::forward_layers`]): the e5
/// file (4-bit when the config says `quantized`), or a BERT / XLM-RoBERTa
/// checkpoint in the hub layout. DeBERTa-v2 is refused (candle's encoder
/// does not give its intermediate layers).
pub fn load_bert(model: &VerifiedModel) -> Result<BertModel, InferError> {
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
    let config = model.checkpoint_config().ok_or(InferError::TaggerSetup {
        what: "a hub-layout model has no config.json",
    })?;
    let weights = model.weights();
    let vb = || -> Result<candle_nn::VarBuilder<'static>, InferError> {
        let tensors = candle_core::safetensors::load(weights, &device).map_err(|source| {
            InferError::Checkpoint {
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
        HfConfig::DebertaV2(_) => Err(InferError::UnsupportedConfig {
            model: "deberta-v2",
            field: "model_type",
            value: "deberta-v2 (no intermediate layers for training features)".to_owned(),
        }),
    }
}
