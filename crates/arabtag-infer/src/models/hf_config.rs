//! `config.json` of a hub-layout checkpoint: the architecture, chosen by
//! `model_type` (TEI's `backends/candle/src/lib.rs` does the same), and the
//! head keys every transformers config shares.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::bert::BertConfig;
use super::deberta_v2::DebertaV2Config;
use crate::InferError;

/// The `model_type`s we run.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["bert", "xlm-roberta", "deberta-v2"];

/// A checkpoint's `config.json`, by architecture.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "model_type")]
#[non_exhaustive]
pub enum HfConfig {
    /// `bert` (multilingual-e5 on the hub is one).
    #[serde(rename = "bert")]
    Bert(BertConfig),
    /// `xlm-roberta` (`roberta` reads the same).
    #[serde(rename = "xlm-roberta", alias = "roberta")]
    XlmRoberta(BertConfig),
    /// `deberta-v2` (DeBERTa-v3 checkpoints say so too).
    #[serde(rename = "deberta-v2")]
    DebertaV2(DebertaV2Config),
}

/// Just the tag, read first so that an unknown architecture gets its own
/// error.
#[derive(Deserialize)]
struct ModelType {
    model_type: Option<String>,
}

impl HfConfig {
    /// Reads and parses `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, InferError> {
        let text = std::fs::read_to_string(path).map_err(|source| InferError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Parses the text of a `config.json`; `path` is named in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, InferError> {
        let json = |source| InferError::Json {
            path: path.to_owned(),
            source,
        };
        let tag: ModelType = serde_json::from_str(text).map_err(json)?;
        match tag.model_type.as_deref() {
            None => Err(InferError::MissingModelType {
                path: path.to_owned(),
                supported: SUPPORTED_MODEL_TYPES,
            }),
            Some(t) if !SUPPORTED_MODEL_TYPES.contains(&t) && t != "roberta" => {
                Err(InferError::UnsupportedModel {
                    path: path.to_owned(),
                    model_type: t.to_owned(),
                    supported: SUPPORTED_MODEL_TYPES,
                })
            }
            Some(_) => serde_json::from_str(text).map_err(json),
        }
    }

    /// The `model_type` as we name it.
    pub fn model_type(&self) -> &'static str {
        match self {
            Self::Bert(_) => "bert",
            Self::XlmRoberta(_) => "xlm-roberta",
            Self::DebertaV2(_) => "deberta-v2",
        }
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
        let bad = |reason| InferError::InvalidLabels { reason };
        let Some(id2label) = &self.id2label else {
            return Ok(None);
        };
        let mut by_id = id2label
            .iter()
            .map(|(k, v)| {
                k.trim()
                    .parse::<usize>()
                    .map(|id| (id, v.clone()))
                    .map_err(|_| bad(LabelProblem::BadId(k.clone())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        by_id.sort_by_key(|(id, _)| *id);
        if by_id.iter().enumerate().any(|(i, (id, _))| i != *id) {
            return Err(bad(LabelProblem::NotDense(
                by_id.iter().map(|(id, _)| *id).collect(),
            )));
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
                return Err(bad(LabelProblem::Label2Id {
                    id2label: labels,
                    label2id: label2id.clone(),
                }));
            }
        }
        for num_labels in [self.num_labels, self.legacy_num_labels]
            .into_iter()
            .flatten()
        {
            if num_labels != labels.len() {
                return Err(bad(LabelProblem::NumLabels {
                    num_labels,
                    id2label: labels,
                }));
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
