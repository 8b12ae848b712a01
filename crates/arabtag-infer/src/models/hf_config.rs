//! `config.json` of a hub-layout checkpoint: the architecture, chosen by
//! `model_type` (TEI's `backends/candle/src/lib.rs` does the same), and the
//! head keys every transformers config shares.
//!
//! Two readings of the one file: [`HfConfig`], everything the loader needs,
//! and [`HfConfigHeader`], only the keys every architecture shares (the
//! architecture, positions, labels), which the model config's resolution
//! reads to check a checkpoint before anything loads. Both check `model_type`
//! the same way and count positions the same way.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::bert::BertConfig;
use super::deberta_v2::DebertaV2Config;
use super::xlm_roberta;
use crate::InferError;

/// `max_position_embeddings` when `config.json` omits it (the transformers
/// default of all three architectures).
pub const DEFAULT_MAX_POSITION_EMBEDDINGS: usize = 512;

/// The encoder architecture, from `config.json`'s `model_type` (the e5 file
/// is always BERT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// `bert`; multilingual-e5 is one.
    Bert,
    /// `xlm-roberta`.
    XlmRoberta,
    /// `deberta-v2` (DeBERTa-v2 and v3, mDeBERTa).
    DebertaV2,
}

impl Architecture {
    /// Every architecture, in the order messages list them.
    pub const ALL: [Architecture; 3] = [
        Architecture::Bert,
        Architecture::XlmRoberta,
        Architecture::DebertaV2,
    ];

    /// Every supported `model_type`, in the order messages list them.
    pub const MODEL_TYPES: [&'static str; 3] = [
        Self::ALL[0].model_type(),
        Self::ALL[1].model_type(),
        Self::ALL[2].model_type(),
    ];

    /// The architecture of a `config.json` `model_type`, if supported.
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.model_type() == model_type)
    }

    /// The `model_type` that names it.
    pub const fn model_type(self) -> &'static str {
        match self {
            Architecture::Bert => "bert",
            Architecture::XlmRoberta => "xlm-roberta",
            Architecture::DebertaV2 => "deberta-v2",
        }
    }

    /// Positions one window may hold, special tokens included, from
    /// `config.json`'s `max_position_embeddings` and `pad_token_id` (`None`
    /// when missing): the whole table, except for XLM-R, whose position ids
    /// start after the padding id ([`xlm_roberta::positions`]; 514 rows and
    /// padding id 1 give 512). The encoders' [`max_positions`] agree.
    ///
    /// [`max_positions`]: super::Encoder::max_positions
    pub fn max_positions(
        self,
        max_position_embeddings: Option<usize>,
        pad_token_id: Option<u32>,
    ) -> usize {
        let rows = max_position_embeddings.unwrap_or(DEFAULT_MAX_POSITION_EMBEDDINGS);
        match self {
            Architecture::XlmRoberta => xlm_roberta::positions(pad_token_id).usable(rows),
            Architecture::Bert | Architecture::DebertaV2 => rows,
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.model_type())
    }
}

/// The `model_type`s we run.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &Architecture::MODEL_TYPES;

/// A checkpoint's `config.json`, by architecture.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "model_type")]
#[non_exhaustive]
pub enum HfConfig {
    /// `bert` (multilingual-e5 on the hub is one).
    #[serde(rename = "bert")]
    Bert(BertConfig),
    /// `xlm-roberta`.
    #[serde(rename = "xlm-roberta")]
    XlmRoberta(BertConfig),
    /// `deberta-v2` (DeBERTa-v3 checkpoints say so too).
    #[serde(rename = "deberta-v2")]
    DebertaV2(DebertaV2Config),
}

/// Just the tag, read first so that a missing or unknown architecture gets
/// its own error.
#[derive(Deserialize)]
struct ModelType {
    model_type: Option<String>,
}

/// The keys of [`HfConfigHeader`] besides `model_type`.
#[derive(Deserialize)]
struct CommonKeys {
    max_position_embeddings: Option<usize>,
    pad_token_id: Option<u32>,
    #[serde(flatten)]
    task: TaskConfig,
}

fn read_text(path: &Path) -> Result<String, InferError> {
    std::fs::read_to_string(path).map_err(|source| InferError::Read {
        path: path.to_owned(),
        source,
    })
}

fn json_error(path: &Path) -> impl Fn(serde_json::Error) -> InferError + '_ {
    move |source| InferError::Json {
        path: path.to_owned(),
        source,
    }
}

/// The architecture `model_type` names; the errors list the supported ones.
fn architecture_of(text: &str, path: &Path) -> Result<Architecture, InferError> {
    let tag: ModelType = serde_json::from_str(text).map_err(json_error(path))?;
    let Some(model_type) = tag.model_type else {
        return Err(InferError::MissingModelType {
            path: path.to_owned(),
            supported: SUPPORTED_MODEL_TYPES,
        });
    };
    Architecture::from_model_type(&model_type).ok_or_else(|| InferError::UnsupportedModel {
        path: path.to_owned(),
        model_type,
        supported: SUPPORTED_MODEL_TYPES,
    })
}

impl HfConfig {
    /// Reads and parses `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, InferError> {
        Self::from_json(&read_text(path)?, path)
    }

    /// Parses the text of a `config.json`; `path` is named in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, InferError> {
        architecture_of(text, path)?;
        serde_json::from_str(text).map_err(json_error(path))
    }

    /// The architecture.
    pub fn architecture(&self) -> Architecture {
        match self {
            Self::Bert(_) => Architecture::Bert,
            Self::XlmRoberta(_) => Architecture::XlmRoberta,
            Self::DebertaV2(_) => Architecture::DebertaV2,
        }
    }

    /// The `model_type` as we name it.
    pub fn model_type(&self) -> &'static str {
        self.architecture().model_type()
    }

    /// The head keys.
    pub fn task(&self) -> &TaskConfig {
        match self {
            Self::Bert(c) | Self::XlmRoberta(c) => &c.task,
            Self::DebertaV2(c) => &c.task,
        }
    }

    /// Width of the hidden states.
    pub fn hidden_size(&self) -> usize {
        match self {
            Self::Bert(c) | Self::XlmRoberta(c) => c.hidden_size,
            Self::DebertaV2(c) => c.hidden_size,
        }
    }

    /// Positions one window may hold, special tokens included
    /// ([`Architecture::max_positions`]): what the loaded encoder's
    /// [`max_positions`](super::Encoder::max_positions) says.
    pub fn max_positions(&self) -> usize {
        let arch = self.architecture();
        match self {
            Self::Bert(c) | Self::XlmRoberta(c) => {
                arch.max_positions(c.max_position_embeddings, c.pad_token_id)
            }
            Self::DebertaV2(c) => arch.max_positions(c.max_position_embeddings, None),
        }
    }
}

/// What a `config.json` says whatever its architecture: the architecture,
/// the position table and the head keys. It needs none of the
/// architecture's own keys (sizes, activations), so it reads configs
/// [`HfConfig`] would refuse for want of them; `model_type` is checked as
/// [`HfConfig::from_json`] checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct HfConfigHeader {
    /// From `model_type`.
    pub architecture: Architecture,
    /// Rows of the position table, when written.
    pub max_position_embeddings: Option<usize>,
    /// The padding id, when written.
    pub pad_token_id: Option<u32>,
    /// The head keys.
    pub task: TaskConfig,
}

impl HfConfigHeader {
    /// Reads `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, InferError> {
        Self::from_json(&read_text(path)?, path)
    }

    /// Parses the text of a `config.json`; `path` is named in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, InferError> {
        let architecture = architecture_of(text, path)?;
        let keys: CommonKeys = serde_json::from_str(text).map_err(json_error(path))?;
        Ok(Self {
            architecture,
            max_position_embeddings: keys.max_position_embeddings,
            pad_token_id: keys.pad_token_id,
            task: keys.task,
        })
    }

    /// Positions one window may hold, special tokens included
    /// ([`Architecture::max_positions`]), as [`HfConfig::max_positions`]
    /// counts them.
    pub fn max_positions(&self) -> usize {
        self.architecture
            .max_positions(self.max_position_embeddings, self.pad_token_id)
    }
}

/// Keys of `PretrainedConfig` that describe the head
/// (<https://github.com/huggingface/transformers/blob/main/src/transformers/configuration_utils.py>).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TaskConfig {
    /// e.g. `["XLMRobertaForTokenClassification"]`.
    pub architectures: Option<Vec<String>>,
    /// Label of every class id; keys are decimal strings.
    pub id2label: Option<BTreeMap<String, String>>,
    /// The inverse of `id2label`.
    pub label2id: Option<BTreeMap<String, i64>>,
    /// Number of classes, when written.
    pub num_labels: Option<usize>,
    /// Number of classes, as older configs write it.
    #[serde(rename = "_num_labels")]
    pub legacy_num_labels: Option<usize>,
}

/// What is wrong with a config's labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelProblem {
    /// An `id2label` key that is no class id.
    #[error("id2label key `{0}` is not a non-negative integer")]
    BadId(String),
    /// Ids with gaps (`{"0": .., "2": ..}`).
    #[error("id2label ids {0:?} are not 0..{len}", len = .0.len())]
    NotDense(Vec<usize>),
    /// `label2id` is not the inverse of `id2label`.
    #[error("label2id {label2id:?} disagrees with id2label {id2label:?}")]
    Label2Id {
        /// `id2label` in id order.
        id2label: Vec<String>,
        /// `label2id` as written.
        label2id: BTreeMap<String, i64>,
    },
    /// `num_labels` is not the size of `id2label`.
    #[error("num_labels {num_labels} disagrees with id2label's {id2label:?}")]
    NumLabels {
        /// `num_labels` as written.
        num_labels: usize,
        /// `id2label` in id order.
        id2label: Vec<String>,
    },
}

/// The two kinds of heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeadKind {
    /// One label per token: `[b, s, h]` → `[b, s, labels]`.
    Token,
    /// One label per sequence: `[b, s, h]` → `[b, labels]`.
    Sequence,
}

impl std::fmt::Display for HeadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Token => "token-classification",
            Self::Sequence => "sequence-classification",
        })
    }
}

impl TaskConfig {
    /// The labels in id order, checked against `label2id` and `num_labels`;
    /// `None` when there is no `id2label`.
    pub fn labels(&self) -> Result<Option<Vec<String>>, InferError> {
        self.ordered_labels()
            .map_err(|reason| InferError::InvalidLabels { reason })
    }

    /// [`TaskConfig::labels`], with what is wrong as a [`LabelProblem`].
    pub fn ordered_labels(&self) -> Result<Option<Vec<String>>, LabelProblem> {
        let Some(id2label) = &self.id2label else {
            return Ok(None);
        };
        let mut by_id = id2label
            .iter()
            .map(|(k, v)| {
                k.trim()
                    .parse::<usize>()
                    .map(|id| (id, v.clone()))
                    .map_err(|_| LabelProblem::BadId(k.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        by_id.sort_by_key(|(id, _)| *id);
        if by_id.iter().enumerate().any(|(i, (id, _))| i != *id) {
            return Err(LabelProblem::NotDense(
                by_id.iter().map(|(id, _)| *id).collect(),
            ));
        }
        let labels: Vec<String> = by_id.into_iter().map(|(_, l)| l).collect();
        if let Some(label2id) = &self.label2id {
            let inverse = label2id.len() == labels.len()
                && labels.iter().enumerate().all(|(i, l)| {
                    label2id
                        .get(l)
                        .is_some_and(|&id| usize::try_from(id).is_ok_and(|id| id == i))
                });
            if !inverse {
                return Err(LabelProblem::Label2Id {
                    id2label: labels,
                    label2id: label2id.clone(),
                });
            }
        }
        for num_labels in [self.num_labels, self.legacy_num_labels]
            .into_iter()
            .flatten()
        {
            if num_labels != labels.len() {
                return Err(LabelProblem::NumLabels {
                    num_labels,
                    id2label: labels,
                });
            }
        }
        Ok(Some(labels))
    }

    /// The head `architectures` names (`…ForTokenClassification`,
    /// `…ForSequenceClassification`), if any.
    pub fn head_kind(&self) -> Option<HeadKind> {
        self.architectures.iter().flatten().find_map(|a| {
            if a.ends_with("ForTokenClassification") {
                Some(HeadKind::Token)
            } else if a.ends_with("ForSequenceClassification") {
                Some(HeadKind::Sequence)
            } else {
                None
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A `config.json` of `arch` with every key the loader needs.
    fn full_json(arch: Architecture, extra: &str) -> String {
        format!(
            r#"{{"model_type": "{arch}", "vocab_size": 10, "hidden_size": 8,
                "num_hidden_layers": 1, "num_attention_heads": 2,
                "intermediate_size": 16{extra}}}"#
        )
    }

    #[test]
    fn every_architecture_reads_as_itself() {
        let path = Path::new("config.json");
        for arch in Architecture::ALL {
            let full = HfConfig::from_json(&full_json(arch, ""), path).unwrap();
            assert_eq!(full.architecture(), arch);
            assert_eq!(full.model_type(), arch.model_type());
            let header = HfConfigHeader::from_json(&full_json(arch, ""), path).unwrap();
            assert_eq!(header.architecture, arch);
            assert_eq!(Architecture::from_model_type(arch.model_type()), Some(arch));
        }
        assert_eq!(SUPPORTED_MODEL_TYPES, ["bert", "xlm-roberta", "deberta-v2"]);
    }

    #[test]
    fn the_header_counts_positions_as_the_full_config() {
        let path = Path::new("config.json");
        for (arch, extra, usable) in [
            (Architecture::Bert, "", 512),
            (Architecture::Bert, r#", "max_position_embeddings": 40"#, 40),
            (
                Architecture::XlmRoberta,
                r#", "max_position_embeddings": 514"#,
                512,
            ),
            (
                Architecture::XlmRoberta,
                r#", "max_position_embeddings": 40, "pad_token_id": 3"#,
                36,
            ),
            (Architecture::XlmRoberta, "", 510),
            (Architecture::DebertaV2, r#", "pad_token_id": 0"#, 512),
        ] {
            let json = full_json(arch, extra);
            let full = HfConfig::from_json(&json, path).unwrap();
            let header = HfConfigHeader::from_json(&json, path).unwrap();
            assert_eq!(
                (full.max_positions(), header.max_positions()),
                (usable, usable),
                "{json}"
            );
        }
    }

    #[test]
    fn the_header_needs_no_sizes_but_the_same_model_type() {
        let path = Path::new("config.json");
        let header = HfConfigHeader::from_json(r#"{"model_type": "bert"}"#, path).unwrap();
        assert_eq!(header.architecture, Architecture::Bert);
        assert_eq!(header.max_positions(), DEFAULT_MAX_POSITION_EMBEDDINGS);
        assert_eq!(header.task, TaskConfig::default());
        for text in [r#"{"model_type": "roberta"}"#, r#"{"hidden_size": 8}"#] {
            let header = HfConfigHeader::from_json(text, path).unwrap_err();
            let full = HfConfig::from_json(text, path).unwrap_err();
            assert_eq!(header.to_string(), full.to_string());
        }
    }
}
