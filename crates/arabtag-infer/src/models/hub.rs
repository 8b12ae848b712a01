//! Loading a hub-layout checkpoint (`config.json` + `model.safetensors`):
//! the architecture from `model_type`, the head from `architectures`.

use std::path::Path;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use super::Encoder;
use super::bert::BertModel;
use super::deberta_v2::DebertaV2Model;
use super::heads::{
    BertSequenceClassifier, DebertaV2SequenceClassifier, SequenceHead, TokenClassifier, TokenHead,
    XlmRobertaSequenceClassifier,
};
use super::hf_config::{HeadKind, HfConfig};
use super::xlm_roberta::XlmRobertaModel;
use crate::InferError;

/// Which head to load with the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeadChoice {
    /// The head `architectures` names (`…ForTokenClassification`,
    /// `…ForSequenceClassification`), or none.
    #[default]
    Auto,
    /// The encoder only.
    None,
    /// A token-classification head; an error when there is none.
    Token,
    /// A sequence-classification head; an error when there is none.
    Sequence,
}

/// How to load a hub checkpoint.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// The encoder's dtype (f32; f16/bf16 for BERT and XLM-R). Heads run in
    /// f32.
    pub dtype: DType,
    /// Where the tensors live.
    pub device: Device,
    /// Quantize the layers' matrices (BERT and XLM-R; widths must be
    /// multiples of the block size).
    pub quantize: Option<GgmlDType>,
    /// Which head to load.
    pub head: HeadChoice,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            dtype: DType::F32,
            device: Device::Cpu,
            quantize: None,
            head: HeadChoice::Auto,
        }
    }
}

/// A loaded hub checkpoint.
#[derive(Debug)]
pub struct HubModel {
    /// The encoder.
    pub encoder: Box<dyn Encoder>,
    /// Its `config.json`.
    pub config: HfConfig,
    /// The token-classification head, when loaded.
    pub token_head: Option<Box<dyn TokenHead>>,
    /// The sequence-classification head, when loaded.
    pub sequence_head: Option<Box<dyn SequenceHead>>,
}

/// Loads `config.json` and the safetensors `weights` beside it.
pub fn load_hub(
    config_json: &Path,
    weights: &Path,
    options: &HubOptions,
) -> Result<HubModel, InferError> {
    let _span = tracing::debug_span!("load_hub", weights = %weights.display()).entered();
    let config = HfConfig::from_file(config_json)?;
    let bytes = std::fs::read(weights).map_err(|source| InferError::Read {
        path: weights.to_owned(),
        source,
    })?;
    let in_file = |source: InferError| InferError::Checkpoint {
        path: weights.to_owned(),
        source: Box::new(source),
    };
    let tensors = candle_core::safetensors::load_buffer(&bytes, &options.device)
        .map_err(|e| in_file(e.into()))?;
    drop(bytes);
    let vb = VarBuilder::from_tensors(tensors, options.dtype, &options.device);
    let (encoder, token_head, sequence_head) = build(&config, vb, options).map_err(in_file)?;
    Ok(HubModel {
        encoder,
        config,
        token_head,
        sequence_head,
    })
}

type Built = (
    Box<dyn Encoder>,
    Option<Box<dyn TokenHead>>,
    Option<Box<dyn SequenceHead>>,
);

fn build(config: &HfConfig, vb: VarBuilder, options: &HubOptions) -> Result<Built, InferError> {
    let encoder: Box<dyn Encoder> = match (config, options.quantize) {
        (HfConfig::Bert(c), None) => Box::new(BertModel::load(vb.clone(), c)?),
        (HfConfig::Bert(c), Some(q)) => Box::new(BertModel::load(vb.clone(), c)?.quantize(q)?),
        (HfConfig::XlmRoberta(c), None) => Box::new(XlmRobertaModel::load(vb.clone(), c)?),
        (HfConfig::XlmRoberta(c), Some(q)) => {
            Box::new(XlmRobertaModel::load(vb.clone(), c)?.quantize(q)?)
        }
        (HfConfig::DebertaV2(c), None) => Box::new(DebertaV2Model::load(vb.clone(), c)?),
        (HfConfig::DebertaV2(_), Some(q)) => {
            return Err(InferError::UnsupportedConfig {
                model: "deberta-v2",
                field: "quantize",
                value: format!("{q:?}"),
            });
        }
    };
    let kind = match options.head {
        HeadChoice::None => None,
        HeadChoice::Auto => config.task().head_kind(),
        HeadChoice::Token => Some(HeadKind::Token),
        HeadChoice::Sequence => Some(HeadKind::Sequence),
    };
    let Some(kind) = kind else {
        return Ok((encoder, None, None));
    };
    let labels = config.task().labels()?.ok_or(InferError::NoHead {
        kind,
        reason: "config.json has no id2label",
    })?;
    let hidden = config.hidden_size();
    Ok(match kind {
        HeadKind::Token => {
            let head = TokenClassifier::load(vb, hidden, labels)?;
            (encoder, Some(Box::new(head)), None)
        }
        HeadKind::Sequence => {
            let head: Box<dyn SequenceHead> = match config {
                HfConfig::Bert(_) => Box::new(BertSequenceClassifier::load(vb, hidden, labels)?),
                HfConfig::XlmRoberta(_) => {
                    Box::new(XlmRobertaSequenceClassifier::load(vb, hidden, labels)?)
                }
                HfConfig::DebertaV2(c) => Box::new(DebertaV2SequenceClassifier::load(
                    vb,
                    hidden,
                    c.pooler_hidden_size(),
                    c.pooler_hidden_act(),
                    labels,
                )?),
            };
            (encoder, None, Some(head))
        }
    })
}
