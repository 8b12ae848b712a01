//! The crate's one error type.

use std::path::PathBuf;

/// Errors of loading models and tagging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    // -- shared ---------------------------------------------------------
    #[error("tensor operation failed")]
    Candle(#[from] candle_core::Error),
    #[error("tokenizer")]
    Tokenizer(#[from] arabtag_tokenizer::TokenizerError),
    #[error("{}: cannot read", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid JSON", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    // -- config (config/) -------------------------------------------------
    /// A model config that is not TOML, or not of the schema (unknown key,
    /// wrong type); `position` is the line and column, from 1.
    #[error("{}{}: not a valid model config", path.display(), crate::config::position_suffix(position))]
    ConfigToml {
        path: PathBuf,
        position: Option<(usize, usize)>,
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A model config that parses but asks for something wrong or
    /// impossible; each problem says what to change.
    #[error("{}: {}", path.display(), crate::config::problem_list(problems))]
    ConfigInvalid {
        path: PathBuf,
        problems: Vec<crate::config::ConfigProblem>,
    },
    /// A `[source.e5]` weights file whose header is not an `E5S1` header.
    #[error("{}: not an e5 `E5S1` weights file: {problem}", path.display())]
    ConfigE5Header {
        path: PathBuf,
        problem: &'static str,
    },
    /// No folder for the Hugging Face hub cache can be named.
    #[error("cannot find the Hugging Face hub cache: set HF_HUB_CACHE (or HF_HOME)")]
    HubCacheDir,
    /// Resolving offline, and hub files are not in the cache.
    #[error("{}", crate::config::HubMiss::list(cache, misses))]
    HubNotCached {
        cache: PathBuf,
        misses: Vec<crate::config::HubMiss>,
    },
    /// A hub file could not be downloaded; `miss` names it and where it
    /// would lie in the cache.
    #[error(
        "cannot download {} of {} at revision {} into the hub cache {}; without network, copy it to {} (and set HF_HUB_OFFLINE=1)",
        miss.file,
        miss.repo,
        miss.revision,
        cache.display(),
        miss.target.display()
    )]
    HubDownload {
        miss: Box<crate::config::HubMiss>,
        cache: PathBuf,
        #[source]
        source: Box<hf_hub::api::sync::ApiError>,
    },
    /// The hub client could not be built.
    #[error("cannot set up the Hugging Face hub client")]
    HubClient {
        #[source]
        source: Box<hf_hub::api::sync::ApiError>,
    },
    /// Model files that are missing, unreadable, or not the pinned ones.
    #[error("{}", crate::config::FileProblem::list(problems))]
    ModelFiles {
        problems: Vec<crate::config::FileProblem>,
    },
    // -- models (models/) -------------------------------------------------
    /// A checkpoint (hub-layout folder, head file) could not be loaded; the
    /// source says which tensor or value was wrong.
    #[error("{}: cannot load the model", path.display())]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: Box<InferError>,
    },
    /// A checkpoint's `config.json` names no `model_type` (the model
    /// config's resolution and the loader both say so).
    #[error(
        "{}: no `model_type`, so the architecture is unknown (supported: {})",
        path.display(),
        supported.join(", ")
    )]
    MissingModelType {
        path: PathBuf,
        supported: &'static [&'static str],
    },
    /// A checkpoint's `config.json` names an architecture we do not
    /// implement.
    #[error(
        "{}: model_type `{model_type}` is not supported (supported: {}); choose a checkpoint of one of these",
        path.display(),
        supported.join(", ")
    )]
    UnsupportedModel {
        path: PathBuf,
        model_type: String,
        supported: &'static [&'static str],
    },
    /// A `config.json` value we cannot run.
    #[error("{model}: unsupported `{field}` = {value}")]
    UnsupportedConfig {
        model: &'static str,
        field: &'static str,
        value: String,
    },
    /// The model cannot run in the requested dtype.
    #[error("{model}: dtype {dtype:?} is not supported ({supported:?} are)")]
    UnsupportedDtype {
        model: &'static str,
        dtype: candle_core::DType,
        supported: &'static [candle_core::DType],
    },
    /// `id2label` / `label2id` / `num_labels` in `config.json` are inconsistent.
    #[error("labels: {reason}")]
    InvalidLabels { reason: crate::models::LabelProblem },
    /// A classifier's weight has another number of rows than its labels.
    #[error("`{tensor}` has {rows} rows but {labels} labels are given ({names:?})")]
    ClassifierRows {
        tensor: String,
        rows: usize,
        labels: usize,
        names: Vec<String>,
    },
    /// A head's labels are not the ones the caller expects.
    /// A head file's header could not be read.
    #[error("{problem}")]
    HeadHeader { problem: String },
    /// A head file stores labels in another order (or others) than the
    /// config gives.
    #[error(
        "{}: the head's own labels (stored with it) are {head:?}, but `{key}` says {config:?}; \
         give `{key}` the head's labels in its order",
        path.display()
    )]
    HeadLabels {
        path: PathBuf,
        key: &'static str,
        head: Vec<String>,
        config: Vec<String>,
    },
    #[error("the head's labels {found:?} disagree with the expected {expected:?}")]
    LabelsDisagree {
        expected: Vec<String>,
        found: Vec<String>,
    },
    /// The checkpoint holds no head of the requested kind.
    #[error("no {kind} head: {reason}")]
    NoHead {
        kind: crate::models::HeadKind,
        reason: &'static str,
    },
    /// Encoder inputs of the wrong shape or dtype.
    #[error(
        "input_ids {ids:?} ({ids_dtype:?}) and attention_mask {mask:?} ({mask_dtype:?}) must both be [batch, seq] u32"
    )]
    InputShape {
        ids: Vec<usize>,
        ids_dtype: candle_core::DType,
        mask: Vec<usize>,
        mask_dtype: candle_core::DType,
    },
    /// A window longer than the model's positions.
    #[error("sequence of {len} tokens is longer than the model's {max} positions")]
    SequenceTooLong { len: usize, max: usize },
    /// A token id outside the embedding table.
    #[error("token id {id} is outside the vocabulary of {vocab}")]
    TokenOutOfVocab { id: u32, vocab: usize },
    /// A malformed `E5S1` file; `field` names the header field or tensor.
    #[error("{}: E5S1 `{field}`: {problem}", path.display())]
    E5Format {
        path: PathBuf,
        field: String,
        problem: crate::models::E5Problem,
    },
    // -- pipeline (pipeline/) ---------------------------------------------
    /// A window of content tokens plus the special tokens around it does not
    /// fit the encoder's positions.
    #[error(
        "a window of {window} tokens plus {specials} special tokens exceeds the encoder's {max_positions} positions"
    )]
    WindowTooLong {
        window: usize,
        specials: usize,
        max_positions: usize,
    },
    /// Batches must hold at least one window.
    #[error("the batch size must be at least 1")]
    ZeroBatchSize,
    /// Windows are padded, and the tokenizer names no padding token.
    #[error("the tokenizer has no padding token (no padding setting, no <pad> or [PAD])")]
    MissingPad,
    /// A window's token range does not lie inside its document's tokens.
    #[error("window {start}..{end} lies outside a document of {tokens} tokens")]
    WindowOutOfRange {
        start: usize,
        end: usize,
        tokens: usize,
    },
    /// Windows whose counted ranges do not cover every token exactly once.
    #[error("the windows count token {token} of {tokens} zero or several times")]
    WindowCoverage { token: usize, tokens: usize },
    /// The tagger gave another number of records than it had documents.
    #[error("the tagger gave {records} records for {documents} documents")]
    RecordCount { documents: usize, records: usize },
    /// The encoder or the head gave a tensor of an unexpected shape.
    #[error("{what} has shape {got:?}, expected {expected:?}")]
    Shape {
        what: &'static str,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    /// Logit rows do not match the tokens they belong to.
    #[error("{rows} logit rows for {tokens} tokens")]
    RowCount { rows: usize, tokens: usize },
    /// A row of scores has the wrong number of labels.
    #[error("a score row has {got} labels, the label set has {expected}")]
    ScoreWidth { expected: usize, got: usize },
    /// A token names a word the document does not have.
    #[error("a token names word {word} of a document of {words} words")]
    WordIndex { word: usize, words: usize },
    /// A label set must have the outside label `O`.
    #[error("the label set {labels:?} has no outside label \"O\"")]
    NoOutsideLabel { labels: Vec<String> },
    /// A label map must map to the guideline's entity types only.
    #[error("the label map maps {from:?} to {to:?}, which is not one of PER, ORG, LOC, DATE")]
    UnknownEntityType { from: String, to: String },
    /// A character span does not lie inside its document.
    #[error("span {start}..{end} lies outside a document of {len} characters")]
    SpanOutOfRange {
        start: usize,
        end: usize,
        len: usize,
    },
    /// Stance scores must come one row per segment.
    #[error("{scores} stance score rows for {segments} segments")]
    SegmentCount { segments: usize, scores: usize },
    /// A score or threshold that is NaN or infinite.
    #[error("{what} {index} is not a finite number")]
    NonFinite { what: &'static str, index: usize },
    // -- loading (loaded/) ---------------------------------------------------
    /// A hub-layout model without its `config.json`.
    #[error("a hub-layout model has no config.json")]
    NoCheckpointConfig,
    /// The thread loading the tokenizer beside the weights panicked.
    #[error("the thread loading the tokenizer panicked")]
    LoaderPanicked,
    /// Something only our BERT family (BERT, XLM-RoBERTa, e5) can do.
    #[error("{what}: only a BERT, XLM-RoBERTa or e5 encoder can do this")]
    NotBertFamily { what: &'static str },
    /// `ner.aggregation` that is none of the strategies.
    #[error("ner.aggregation {value} is not first, max or average")]
    UnknownAggregation { value: String },
    /// `stance.trunk = "ner"` that the model cannot honour.
    #[error("{}: stance.trunk = \"ner\" needs {reason}", path.display())]
    StanceTrunk {
        path: std::path::PathBuf,
        reason: &'static str,
    },
    /// `stance.labels` that do not name the guideline's three.
    #[error("stance.labels {labels:?} must name mediation, conflict and energy")]
    StanceLabels { labels: Vec<String> },
    /// `stance.entailment_label` that the NLI checkpoint does not have.
    #[error("stance.entailment_label {label:?} is not a label of the checkpoint ({labels:?})")]
    EntailmentLabel { label: String, labels: Vec<String> },
    /// Hidden states asked of a layer the encoder does not have.
    #[error("layer {layer} asked, the encoder has layers 0..={layers} (0 = embeddings)")]
    LayerOutOfRange { layer: usize, layers: usize },
    // -- files (models/head_file.rs, export.rs) ------------------------------
    /// A file could not be written.
    #[error("{}: cannot write", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A head file or checkpoint that does not fit what is asked of it.
    #[error("{}: {reason}", path.display())]
    BadCheckpoint { path: PathBuf, reason: String },
    /// A model config that has no Hugging Face hub-layout equivalent.
    #[error("cannot export this model to the hub layout: {reason}")]
    NotExportable { reason: String },
}
