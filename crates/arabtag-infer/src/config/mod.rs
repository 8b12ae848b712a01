//! The model config: what a user edits to swap the transformer.
//!
//! One TOML file says where the encoder's files come from, their sha256, the
//! tasks (NER, stance) and the normalisation. Using it takes three steps,
//! each its own type:
//!
//! ```no_run
//! # fn main() -> Result<(), arabtag_infer::InferError> {
//! use arabtag_infer::config::{ModelConfig, ResolveOptions};
//!
//! let model = ModelConfig::from_file("models/default.toml".as_ref())? // parse + validate
//!     .resolve(&ResolveOptions::from_env())? // absolute paths, hub cache, config.json
//!     .verify()?; // every file's sha256, before anything loads
//! let weights = model.weights();
//! # Ok(()) }
//! ```
//!
//! 1. [`ModelConfig::from_file`] parses the TOML (errors with line and
//!    column; unknown keys are errors) and validates it at once, reporting
//!    every problem with what to change ([`ConfigProblem`]). Relative paths
//!    are relative to the config file's folder.
//! 2. [`ModelConfig::resolve`] finds every file as an absolute path (a local
//!    hub-layout folder, the e5 file, or a hub repository at a pinned commit
//!    fetched through `hf-hub` into its cache, [`ResolveOptions`]), reads the
//!    architecture from `config.json`'s `model_type` (the e5 file is BERT)
//!    and checks what needs the model to check (window against positions,
//!    labels against `id2label`): a [`ResolvedModel`].
//! 3. [`ResolvedModel::verify`] hashes every file and compares it with the
//!    pinned sha256: a [`VerifiedModel`], the only thing a loader takes. A
//!    file whose sha256 the config does not pin fails too, naming the sha256
//!    to paste.
//!
//! # The TOML
//!
//! ```toml
//! schema_version = 1                 # required; this crate reads 1
//! name = "multilingual-e5-small"     # optional, shown by `arabtag models show`
//! description = "…"                  # optional
//! dtype = "f32"                      # f32 | f16 | bf16 (DEFAULT_DTYPE)
//! int8 = true                        # the encoder layers' matrices as 8-bit integer products
//!                                    # (arabtag_kernels::int8; BERT, XLM-R and e5; AMX tiles or AVX-512
//!                                    # VNNI where the CPU has them, the same bits by a slow loop elsewhere;
//!                                    # takes precedence over source.e5.quantized) (DEFAULT_INT8)
//!
//! # The source: exactly one of [source.local], [source.hub], [source.e5].
//! [source.local]                     # a folder in the hub layout
//! dir = "minilm"                     # relative to this file's folder
//! config    = { file = "config.json",       sha256 = "…" }  # `file` defaults to
//! weights   = { file = "model.safetensors", sha256 = "…" }  # these names, inside
//! tokenizer = { file = "tokenizer.json",    sha256 = "…" }  # `dir`
//!
//! [source.hub]                       # a hub repository at a pinned commit
//! repo = "MoritzLaurer/mDeBERTa-v3-base-xnli-multilingual-nli-2mil7"
//! revision = "b5113eb38ab63efdd7f280f8c144ea8b13f978ce"     # 40 hex digits
//! weights = { sha256 = "…" }         # files as in [source.local]; a file may
//! tokenizer = { repo = "…", revision = "…", file = "tokenizer.json" }  # come from another repo
//!
//! [source.e5]                        # the e5 4-bit file (models/README.md)
//! weights   = { path = "e5-small/e5-small-q4.bin", sha256 = "…" }
//! tokenizer = { path = "e5-small/tokenizer.json",  sha256 = "…" }
//! quantized = true                   # matrices stay 4-bit (DEFAULT_QUANTIZED)
//!
//! [normalizer]                       # arabtag_tokenizer::NormalizerConfig; every key optional
//! unify_alef = false
//!
//! [ner]                              # optional
//! head = { path = "heads/ner.safetensors", sha256 = "…" }   # absent: the checkpoint's classifier
//! labels = ["O", "B-PER", "I-PER", "B-MISC", "I-MISC"]      # the model's labels, id order, IOB2
//! map = { PER = "PER" }              # model type → PER|ORG|LOC|DATE; unmapped types (MISC) dropped
//! aggregation = "first"              # first | max | average (DEFAULT_AGGREGATION)
//! context = "document"              # document | segment: what one window may hold; segment
//!                                    # windows each sentence apart (models trained on sentences)
//! names = { path = "heads/names.txt", sha256 = "…" }  # optional: names' first words, one a
//!                                    # line, evidence for the proclitic rule (pipeline::spans)
//! window = 512                       # positions per window, special tokens included (DEFAULT_WINDOW)
//! stride = 128                       # tokens shared by consecutive windows (DEFAULT_STRIDE)
//! layers = [6, 8, 10, 12]           # head file over these layers' states, concatenated
//!                                    # (0: embeddings; aggregation "first", Viterbi decoding);
//!                                    # absent: over the last hidden state. A head file that
//!                                    # also holds `encoder.layer.{i}.*` tensors (train ner
//!                                    # --finetune) replaces those layers, for NER only
//!
//! [dates]                            # optional: rule-based DATE entities (pipeline::dates)
//! enabled = true                     # merged with [ner]'s spans, which win (DEFAULT_DATES_ENABLED)
//!
//! [stance]                           # optional; at least one of [ner], [stance], [dates]
//! method = "prototypes"              # head | prototypes | nli
//! thresholds = { mediation = 0.8, conflict = 0.8, energy = 0.8 }   # every label, in [0, 1]
//! calibration = { mediation = [1.2, -0.3], … }   # optional, every label: Platt [a > 0, b];
//!                                    # scores become σ(a·logit(s) + b) before the thresholds
//! prefix = "query: "                 # prototypes: put before every text (DEFAULT_PROTOTYPE_PREFIX)
//! [stance.prototypes.energy]         # prototypes: per label, Arabic and English descriptions
//! ar = ["النفط والغاز وإمدادات الطاقة"]
//! en = ["oil, gas and energy supply"]
//! # head:  head = { path, sha256 }, labels = [the head's outputs in order] (default: the guideline's order),
//! #        trunk = "encoder" | "ner": what the head file's layers replace layers of: the model's
//! #        encoder (default), or the NER network; with "ner" they must be one run of layers and
//! #        NER's pass keeps the states below them, so stance runs only its own (pipeline::shared)
//! # nli:   hypothesis_template = "هذا النص عن {}.", entailment_label = "entailment",
//! #        candidate_labels = { mediation = "…", conflict = "…", energy = "…" }
//! ```

mod describe;
mod hub;
mod parse;
mod resolve;
mod types;
mod verify;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use arabtag_tokenizer::NormalizerConfig;
use serde::Serialize;

use crate::InferError;

pub use hub::{HubMiss, ResolveOptions, hub_cache_dir, offline_from_env};
pub use resolve::{FileRole, ModelFile, ModelFiles, ResolvedModel, ResolvedSource};
pub use types::{
    DType, EntityType, InvalidRevision, InvalidSha256, Revision, Sha256, StanceLabel, WeightsFormat,
};

/// The architecture a resolved model has: the models' own type.
pub use crate::models::Architecture;
/// `ner.aggregation`: the pipeline's own type.
pub use crate::pipeline::Aggregation;
/// `ner.context`: the pipeline's own type.
pub use crate::pipeline::NerContext;
pub use verify::{
    FileCheck, FileDigest, FileProblem, VerifiedFile, VerifiedModel, check_file, digest,
};

/// The `schema_version` this crate reads.
pub const SCHEMA_VERSION: u32 = 1;
/// Default of `dtype`.
pub const DEFAULT_DTYPE: DType = DType::F32;
/// Default of `int8`: the matrices are multiplied in `dtype`.
pub const DEFAULT_INT8: bool = false;
/// Default of `source.e5.quantized`: the matrices stay 4-bit.
pub const DEFAULT_QUANTIZED: bool = true;
/// Default of `file` for a hub-layout checkpoint's config.
pub const DEFAULT_CONFIG_FILE: &str = "config.json";
/// Default of `file` for a hub-layout checkpoint's weights.
pub const DEFAULT_WEIGHTS_FILE: &str = "model.safetensors";
/// Default of `file` for a hub-layout checkpoint's tokenizer.
pub const DEFAULT_TOKENIZER_FILE: &str = "tokenizer.json";
/// Default of `ner.aggregation`.
pub const DEFAULT_AGGREGATION: Aggregation = Aggregation::First;
/// Default of `ner.window`: positions per window, special tokens included.
pub const DEFAULT_WINDOW: usize = 512;
/// Default of `ner.stride`: tokens shared by consecutive windows.
pub const DEFAULT_STRIDE: usize = 128;
/// Positions of a window that special tokens take (`[CLS]`/`[SEP]`,
/// `<s>`/`</s>`): `ner.stride` must stay below `ner.window` minus these.
pub const WINDOW_SPECIAL_TOKENS: usize = 2;
/// Default of `dates.enabled`: a `[dates]` table switches the recogniser on.
pub const DEFAULT_DATES_ENABLED: bool = true;
/// Default of `stance.prefix` (method `prototypes`).
pub const DEFAULT_PROTOTYPE_PREFIX: &str = "";
/// Default of `stance.entailment_label` (method `nli`).
pub const DEFAULT_ENTAILMENT_LABEL: &str = "entailment";
/// The placeholder of `stance.hypothesis_template` (method `nli`).
pub const HYPOTHESIS_PLACEHOLDER: &str = "{}";

/// A validated model config, as [`ModelConfig::from_file`] makes it. Local
/// paths are already absolute; hub files are found by
/// [`ModelConfig::resolve`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelConfig {
    /// The TOML file, as it was named (messages use it).
    pub path: PathBuf,
    pub name: Option<String>,
    pub description: Option<String>,
    pub source: Source,
    pub dtype: DType,
    /// The encoder layers' matrices run as 8-bit integer products
    /// ([`arabtag_kernels::int8`]).
    pub int8: bool,
    pub normalizer: NormalizerConfig,
    pub ner: Option<NerConfig>,
    pub dates: Option<DatesConfig>,
    pub stance: Option<StanceConfig>,
}

impl ModelConfig {
    /// Reads, parses and validates a model config. Paths in it are relative
    /// to the file's folder.
    pub fn from_file(path: &Path) -> Result<Self, InferError> {
        let text = std::fs::read_to_string(path).map_err(|source| InferError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// The config at `path` read, resolved (offline when `offline` or
    /// `HF_HUB_OFFLINE` says so) and every file it names verified against
    /// its sha256: what a tagger loads, from the CLI or from Python.
    pub fn verified(path: &Path, offline: bool) -> Result<VerifiedModel, InferError> {
        let mut options = ResolveOptions::from_env();
        options.offline |= offline;
        Self::from_file(path)?.resolve(&options)?.verify()
    }

    /// Parses and validates the TOML `text` of a config that lives at `path`
    /// (the file need not exist: `path` names it in messages and anchors its
    /// relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Self, InferError> {
        parse::parse(text, path)
    }
}

/// Where the encoder's files come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// A folder in the hub layout (`[source.local]`).
    Local(LocalSource),
    /// A hub repository at a pinned commit (`[source.hub]`).
    Hub(HubSource),
    /// The e5 4-bit file and its tokenizer (`[source.e5]`).
    E5(E5Source),
}

impl Source {
    /// `local`, `hub` or `e5`, the TOML table's name.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Local(_) => "local",
            Source::Hub(_) => "hub",
            Source::E5(_) => "e5",
        }
    }
}

/// A file on disk with its pinned sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRef {
    /// Absolute.
    pub path: PathBuf,
    /// `None` when the config pins none: verification then fails and names
    /// the file's sha256.
    pub sha256: Option<Sha256>,
}

/// `[source.local]`: a hub-layout folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalSource {
    /// Absolute.
    pub dir: PathBuf,
    pub config: FileRef,
    pub weights: FileRef,
    pub tokenizer: FileRef,
}

/// One file of a hub repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubFile {
    /// The source's repository unless the file names its own.
    pub repo: String,
    /// The source's revision unless the file names its own.
    pub revision: Revision,
    /// Path inside the repository, `/`-separated.
    pub file: String,
    pub sha256: Option<Sha256>,
}

/// `[source.hub]`: a hub repository at a pinned commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubSource {
    pub repo: String,
    pub revision: Revision,
    pub config: HubFile,
    pub weights: HubFile,
    pub tokenizer: HubFile,
}

/// `[source.e5]`: the e5 4-bit `E5S1` file and its `tokenizer.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct E5Source {
    pub weights: FileRef,
    pub tokenizer: FileRef,
    /// The matrices stay 4-bit (candle's quantized matmul); `false`
    /// dequantises them to `dtype`.
    pub quantized: bool,
}

/// `[ner]`: token classification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NerConfig {
    pub head: NerHead,
    /// The model's labels in id order: `O`, `B-TYPE`, `I-TYPE`.
    pub labels: Vec<String>,
    /// The model's entity types (the `TYPE` of its labels) that are kept,
    /// and what each becomes; the others are dropped.
    pub map: BTreeMap<String, EntityType>,
    pub aggregation: Aggregation,
    /// Positions per window, special tokens included.
    pub window: usize,
    /// Tokens shared by consecutive windows.
    pub stride: usize,
    /// For a head file over intermediate layers: the encoder layers (0: the
    /// embeddings) whose states, concatenated on the last dimension, the
    /// head reads; empty: the last hidden state.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<usize>,
    /// `ner.names`: a list of name spellings (one per line, each the first
    /// word of a name as the guideline spans it), evidence for the
    /// proclitic rule (`pipeline::spans`); `None`: no such evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<FileRef>,
    /// `ner.context`: what one window may hold (`document`, the default, or
    /// `segment`: no window crosses a sentence end or a line break).
    pub context: NerContext,
}

impl NerConfig {
    /// The model's entity types that no map entry keeps, in label order.
    pub fn dropped_types(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for label in &self.labels {
            if let Some(kind) = label_type(label)
                && !self.map.contains_key(kind)
                && !out.contains(&kind)
            {
                out.push(kind);
            }
        }
        out
    }
}

/// The `TYPE` of an IOB2 label `B-TYPE` or `I-TYPE`; `None` for `O` or
/// anything else.
pub fn label_type(label: &str) -> Option<&str> {
    label
        .strip_prefix("B-")
        .or_else(|| label.strip_prefix("I-"))
        .filter(|t| !t.is_empty())
}

/// `[dates]`: the rule-based date recogniser ([`crate::pipeline::dates`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DatesConfig {
    /// Add the dates that overlap no NER entity as DATE entities.
    pub enabled: bool,
}

/// Which classifier tags tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum NerHead {
    /// The checkpoint's own token-classification head (its `config.json`
    /// `id2label` must equal `ner.labels`).
    Checkpoint,
    /// A separate head file over the encoder's hidden states.
    File(FileRef),
}

/// `[stance]`: segment stance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StanceConfig {
    #[serde(flatten)]
    pub method: StanceMethod,
    /// Per label: the score at or above which the label is given.
    pub thresholds: BTreeMap<StanceLabel, f64>,
    /// Per label, Platt scaling `[a, b]` of the method's scores: a score
    /// `s` becomes `σ(a · logit(s) + b)` before the thresholds apply and is
    /// written out so (`arabtag train stance` fits them on dev). None: the
    /// scores as the method gives them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<BTreeMap<StanceLabel, [f64; 2]>>,
}

/// How a segment's stance scores are computed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum StanceMethod {
    /// A trained head over the segment's embedding; its outputs are `labels`
    /// in order.
    Head {
        head: FileRef,
        labels: Vec<StanceLabel>,
        /// What the head file's encoder layers sit on (`stance.trunk`).
        #[serde(skip_serializing_if = "StanceTrunk::is_encoder")]
        trunk: StanceTrunk,
    },
    /// Similarity of the segment's embedding to each label's descriptions.
    Prototypes {
        /// Put before every text embedded (`query: ` for e5).
        prefix: String,
        prototypes: BTreeMap<StanceLabel, Prototype>,
    },
    /// Zero-shot by natural-language inference: the segment is the premise,
    /// `hypothesis_template` with a label's text the hypothesis.
    Nli {
        hypothesis_template: String,
        /// The checkpoint's label (in `id2label`) that means entailment.
        entailment_label: String,
        candidate_labels: BTreeMap<StanceLabel, String>,
    },
}

impl StanceMethod {
    /// `head`, `prototypes` or `nli`.
    pub fn name(&self) -> &'static str {
        match self {
            StanceMethod::Head { .. } => "head",
            StanceMethod::Prototypes { .. } => "prototypes",
            StanceMethod::Nli { .. } => "nli",
        }
    }
}

/// What a stance head file's encoder layers sit on (`stance.trunk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StanceTrunk {
    /// The model's encoder: the head file's layers take their places in it.
    #[default]
    Encoder,
    /// The NER network (the model's encoder with the NER head file's
    /// layers): the stance head file's layers take the places they name in
    /// it, and stance reads the last of them. The layers below the first
    /// are NER's: the tagger computes them once for both tasks.
    Ner,
}

impl StanceTrunk {
    /// The default: the model's own encoder.
    pub fn is_encoder(&self) -> bool {
        *self == StanceTrunk::Encoder
    }
}

/// One label's descriptions, for method `prototypes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prototype {
    pub ar: Vec<String>,
    pub en: Vec<String>,
}

/// One thing to change in a model config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    /// The TOML key it is about, dotted (`stance.thresholds.energy`).
    pub key: String,
    /// What is wrong and what to do, naming the key.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One problem as it stands, several one a line (for error messages).
pub(crate) fn problem_list(problems: &[ConfigProblem]) -> String {
    match problems {
        [one] => one.message.clone(),
        many => {
            let mut s = format!("{} problems:", many.len());
            for p in many {
                s.push_str("\n  - ");
                s.push_str(&p.message);
            }
            s
        }
    }
}

/// `:LINE:COLUMN` of a TOML error, or nothing.
pub(crate) fn position_suffix(position: &Option<(usize, usize)>) -> String {
    match position {
        Some((line, column)) => format!(":{line}:{column}"),
        None => String::new(),
    }
}
