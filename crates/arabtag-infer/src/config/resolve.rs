//! A validated config to a [`ResolvedModel`]: every file as an absolute path,
//! the architecture, and the checks that need the checkpoint's own
//! `config.json` (or the e5 file's header).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use arabtag_tokenizer::NormalizerConfig;
use serde::Serialize;

use super::hub::{self, ResolveOptions};
use super::{
    Architecture, ConfigProblem, DType, DatesConfig, FileRef, HubFile, ModelConfig, NerConfig,
    NerHead, Revision, Sha256, Source, StanceConfig, StanceMethod, WeightsFormat,
};
use crate::InferError;
use crate::models::{HfConfigHeader, LabelProblem};

/// What a file is to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    /// The checkpoint's `config.json`.
    Config,
    /// The encoder's weights (`model.safetensors`, the e5 file).
    Weights,
    /// `tokenizer.json`.
    Tokenizer,
    /// A separate NER head.
    NerHead,
    /// A trained stance head.
    StanceHead,
    /// The NER names list (`ner.names`).
    NerNames,
}

impl FileRole {
    /// Lower-case words, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            FileRole::Config => "config",
            FileRole::Weights => "weights",
            FileRole::Tokenizer => "tokenizer",
            FileRole::NerHead => "ner head",
            FileRole::StanceHead => "stance head",
            FileRole::NerNames => "ner names",
        }
    }
}

impl fmt::Display for FileRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file the model needs: where it is and the sha256 the config pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelFile {
    pub role: FileRole,
    /// The TOML key that names it (`source.e5.weights`); its `sha256` goes there.
    pub key: String,
    /// Absolute (for a hub file: inside the cache's snapshot folder).
    pub path: PathBuf,
    /// `None` when the config pins none.
    pub sha256: Option<Sha256>,
}

/// Where a resolved model's files came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ResolvedSource {
    /// A hub-layout folder.
    Local { dir: PathBuf },
    /// A hub repository at a commit, through the cache folder `cache`.
    Hub {
        repo: String,
        revision: Revision,
        cache: PathBuf,
    },
    /// The e5 4-bit file.
    E5,
}

/// A model config with every file found: what [`ResolvedModel::verify`]
/// checks and a loader, once verified, consumes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedModel {
    /// The TOML file, absolute.
    pub config_path: PathBuf,
    pub name: Option<String>,
    pub description: Option<String>,
    pub source: ResolvedSource,
    pub architecture: Architecture,
    /// Positions one window may hold, special tokens included.
    pub max_positions: usize,
    pub weights_format: WeightsFormat,
    /// The e5 file's matrices stay 4-bit (always `false` for safetensors).
    pub quantized: bool,
    pub dtype: DType,
    /// The encoder layers' matrices run as 8-bit integer products.
    pub int8: bool,
    /// `config.json`'s `id2label` in id order, when it has one.
    pub checkpoint_labels: Option<Vec<String>>,
    pub files: ModelFiles,
    pub normalizer: NormalizerConfig,
    pub ner: Option<NerConfig>,
    pub dates: Option<DatesConfig>,
    pub stance: Option<StanceConfig>,
}

/// Every file of a model, by role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelFiles {
    /// `config.json` (hub-layout checkpoints only).
    pub config: Option<ModelFile>,
    pub weights: ModelFile,
    pub tokenizer: ModelFile,
    pub ner_head: Option<ModelFile>,
    pub stance_head: Option<ModelFile>,
    pub ner_names: Option<ModelFile>,
}

impl ModelFiles {
    /// Every file in role order: config, weights, tokenizer, heads.
    pub fn iter(&self) -> impl Iterator<Item = &ModelFile> {
        self.config
            .iter()
            .chain([&self.weights, &self.tokenizer])
            .chain(self.ner_head.iter())
            .chain(self.stance_head.iter())
            .chain(self.ner_names.iter())
    }

    /// The file of `role`, if the model has one.
    pub fn get(&self, role: FileRole) -> Option<&ModelFile> {
        self.iter().find(|f| f.role == role)
    }
}

/// Bytes of the `E5S1` header up to and including the max positions field:
/// magic, version, then hidden, layers, heads, ffn, vocab, max positions.
const E5_HEADER_LEN: usize = 32;

/// The source's files, found.
enum Located {
    Checkpoint {
        config: ModelFile,
        weights: ModelFile,
        tokenizer: ModelFile,
        source: ResolvedSource,
    },
    E5 {
        weights: ModelFile,
        tokenizer: ModelFile,
        quantized: bool,
    },
}

impl Located {
    /// The source's files and the config's head files.
    fn into_files(self, config: &ModelConfig) -> ModelFiles {
        let (checkpoint_config, weights, tokenizer) = match self {
            Located::Checkpoint {
                config,
                weights,
                tokenizer,
                ..
            } => (Some(config), weights, tokenizer),
            Located::E5 {
                weights, tokenizer, ..
            } => (None, weights, tokenizer),
        };
        let ner_head = match &config.ner {
            Some(NerConfig {
                head: NerHead::File(head),
                ..
            }) => Some(model_file(FileRole::NerHead, "ner.head", head)),
            _ => None,
        };
        let stance_head = match &config.stance {
            Some(StanceConfig {
                method: StanceMethod::Head { head, .. },
                ..
            }) => Some(model_file(FileRole::StanceHead, "stance.head", head)),
            _ => None,
        };
        let ner_names = config
            .ner
            .as_ref()
            .and_then(|n| n.names.as_ref())
            .map(|names| model_file(FileRole::NerNames, "ner.names", names));
        ModelFiles {
            config: checkpoint_config,
            weights,
            tokenizer,
            ner_head,
            stance_head,
            ner_names,
        }
    }
}

impl ModelConfig {
    /// Every file the model needs, as an absolute path with its pinned
    /// sha256. Hub files are taken from the cache, or downloaded into it
    /// unless offline. Nothing is read or hashed.
    pub fn locate(&self, options: &ResolveOptions) -> Result<ModelFiles, InferError> {
        Ok(self.locate_source(options)?.into_files(self))
    }

    fn locate_source(&self, options: &ResolveOptions) -> Result<Located, InferError> {
        Ok(match &self.source {
            Source::Local(local) => Located::Checkpoint {
                config: model_file(FileRole::Config, "source.local.config", &local.config),
                weights: model_file(FileRole::Weights, "source.local.weights", &local.weights),
                tokenizer: model_file(
                    FileRole::Tokenizer,
                    "source.local.tokenizer",
                    &local.tokenizer,
                ),
                source: ResolvedSource::Local {
                    dir: local.dir.clone(),
                },
            },
            Source::Hub(h) => {
                let [config, weights, tokenizer] =
                    hub::fetch([&h.config, &h.weights, &h.tokenizer], options)?;
                let file = |role, key: &str, path, pin: &HubFile| ModelFile {
                    role,
                    key: key.to_owned(),
                    path,
                    sha256: pin.sha256,
                };
                Located::Checkpoint {
                    config: file(FileRole::Config, "source.hub.config", config, &h.config),
                    weights: file(FileRole::Weights, "source.hub.weights", weights, &h.weights),
                    tokenizer: file(
                        FileRole::Tokenizer,
                        "source.hub.tokenizer",
                        tokenizer,
                        &h.tokenizer,
                    ),
                    source: ResolvedSource::Hub {
                        repo: h.repo.clone(),
                        revision: h.revision.clone(),
                        cache: hub::cache_dir(options)?,
                    },
                }
            }
            Source::E5(e5) => Located::E5 {
                weights: model_file(FileRole::Weights, "source.e5.weights", &e5.weights),
                tokenizer: model_file(FileRole::Tokenizer, "source.e5.tokenizer", &e5.tokenizer),
                quantized: e5.quantized,
            },
        })
    }

    /// Finds every file ([`ModelConfig::locate`]), reads the architecture
    /// and positions from `config.json` (or the e5 file's header), and checks
    /// the config against them: `ner.window` fits the positions, a
    /// checkpoint NER head's `id2label` equals `ner.labels`, an NLI
    /// checkpoint has `stance.entailment_label`.
    pub fn resolve(&self, options: &ResolveOptions) -> Result<ResolvedModel, InferError> {
        let _span = tracing::info_span!("resolve", config = %self.path.display()).entered();
        let located = self.locate_source(options)?;
        let config_path = std::path::absolute(&self.path).map_err(|source| InferError::Read {
            path: self.path.clone(),
            source,
        })?;
        let (source, architecture, max_positions, labels, weights_format, quantized) =
            match &located {
                Located::E5 {
                    weights, quantized, ..
                } => {
                    let max = e5_max_positions(&weights.path)?;
                    let (arch, format) = (Architecture::Bert, WeightsFormat::E5Q4);
                    (ResolvedSource::E5, arch, max, Ok(None), format, *quantized)
                }
                Located::Checkpoint { config, source, .. } => {
                    let header = HfConfigHeader::from_file(&config.path)?;
                    // As the loader reads them; an empty id2label is none.
                    // Inconsistent labels fail only a config that uses them.
                    let labels = header.task.ordered_labels();
                    let labels = labels.map(|l| l.filter(|l| !l.is_empty()));
                    let format = WeightsFormat::Safetensors;
                    let (arch, max) = (header.architecture, header.max_positions());
                    (source.clone(), arch, max, labels, format, false)
                }
            };
        let problems =
            self.check_against_checkpoint(max_positions, labels.as_ref().map(|l| l.as_deref()));
        if !problems.is_empty() {
            return Err(InferError::ConfigInvalid {
                path: self.path.clone(),
                problems,
            });
        }
        Ok(ResolvedModel {
            config_path,
            name: self.name.clone(),
            description: self.description.clone(),
            source,
            architecture,
            max_positions,
            weights_format,
            quantized,
            dtype: self.dtype,
            int8: self.int8,
            checkpoint_labels: labels.ok().flatten(),
            files: located.into_files(self),
            normalizer: self.normalizer,
            ner: self.ner.clone(),
            dates: self.dates,
            stance: self.stance.clone(),
        })
    }

    /// The problems of the config against the checkpoint's positions and
    /// labels (`Err`: its `id2label` is there but invalid).
    fn check_against_checkpoint(
        &self,
        max_positions: usize,
        labels: Result<Option<&[String]>, &LabelProblem>,
    ) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let what = match self.source {
            Source::E5(_) => "the e5 file's header",
            _ => "config.json",
        };
        if let Some(ner) = &self.ner {
            if ner.window > max_positions {
                problems.push(ConfigProblem {
                    key: "ner.window".into(),
                    message: format!(
                        "ner.window = {} exceeds the model's {max_positions} positions \
                         ({what}); give at most {max_positions}",
                        ner.window
                    ),
                });
            }
            if ner.head == NerHead::Checkpoint {
                match labels {
                    Err(problem) => problems.push(ConfigProblem {
                        key: "ner.head".into(),
                        message: format!(
                            "ner.head: the checkpoint's token classifier cannot be used, as \
                             config.json's labels are invalid ({problem}); fix config.json, or \
                             give ner.head = {{ path = \"…\", sha256 = \"…\" }}"
                        ),
                    }),
                    Ok(None) => problems.push(ConfigProblem {
                        key: "ner.head".into(),
                        message: "ner.head: config.json has no id2label, so the checkpoint has \
                                  no token classifier; give ner.head = { path = \"…\", \
                                  sha256 = \"…\" }"
                            .into(),
                    }),
                    Ok(Some(labels)) if labels != ner.labels.as_slice() => {
                        problems.push(ConfigProblem {
                            key: "ner.labels".into(),
                            message: format!(
                                "ner.labels = {:?} differ from config.json's id2label {:?}: \
                                 copy the checkpoint's labels, in id order",
                                ner.labels, labels
                            ),
                        });
                    }
                    Ok(Some(_)) => {}
                }
            }
        }
        if let Some(StanceConfig {
            method: StanceMethod::Nli {
                entailment_label, ..
            },
            ..
        }) = &self.stance
        {
            match labels {
                Err(problem) => problems.push(ConfigProblem {
                    key: "stance.method".into(),
                    message: format!(
                        "stance.method = \"nli\": config.json's labels are invalid \
                         ({problem}), so the entailment label cannot be found; fix \
                         config.json, or choose another NLI (XNLI, MNLI) checkpoint"
                    ),
                }),
                Ok(None) => problems.push(ConfigProblem {
                    key: "stance.method".into(),
                    message: "stance.method = \"nli\": config.json has no id2label, so the \
                              checkpoint is no NLI classifier; choose an NLI (XNLI, MNLI) \
                              checkpoint"
                        .into(),
                }),
                Ok(Some(labels)) if !labels.contains(entailment_label) => {
                    problems.push(ConfigProblem {
                        key: "stance.entailment_label".into(),
                        message: format!(
                            "stance.entailment_label = \"{entailment_label}\" is not among \
                             config.json's labels ({}); name the one that means entailment",
                            labels.join(", ")
                        ),
                    });
                }
                Ok(Some(_)) => {}
            }
        }
        problems
    }
}

fn model_file(role: FileRole, key: &str, file: &FileRef) -> ModelFile {
    ModelFile {
        role,
        key: key.to_owned(),
        path: file.path.clone(),
        sha256: file.sha256,
    }
}

/// The max positions field of an `E5S1` header (`models/README.md`): the
/// sixth little-endian `i32` after the magic and the `u32` version.
fn e5_max_positions(path: &Path) -> Result<usize, InferError> {
    let read_error = |source| InferError::Read {
        path: path.to_owned(),
        source,
    };
    let mut header = [0u8; E5_HEADER_LEN];
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut filled = 0;
    while filled < header.len() {
        match file.read(&mut header[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(e)),
        }
    }
    let bad = |problem| InferError::ConfigE5Header {
        path: path.to_owned(),
        problem,
    };
    if filled < header.len() {
        return Err(bad("shorter than its header"));
    }
    if &header[..4] != b"E5S1" {
        return Err(bad("it does not start with the magic `E5S1`"));
    }
    let field = [header[28], header[29], header[30], header[31]];
    let max = i32::from_le_bytes(field);
    usize::try_from(max)
        .ok()
        .filter(|m| *m > 0)
        .ok_or_else(|| bad("its max positions field is not positive"))
}
