//! The crate's one error type.

use std::path::PathBuf;

use arabtag_infer::InferError;

/// Errors of training heads and fine-tuning layers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    // -- below us ---------------------------------------------------------
    /// Loading or running the model (`arabtag-infer`).
    #[error(transparent)]
    Infer(#[from] InferError),
    /// The model a config names could not be loaded.
    #[error("cannot load the model of {}", config.display())]
    LoadModel {
        config: PathBuf,
        #[source]
        source: InferError,
    },
    #[error("tensor operation failed")]
    Candle(#[from] candle_core::Error),
    #[error("tokenizer")]
    Tokenizer(#[from] arabtag_tokenizer::TokenizerError),
    /// Reading a training file, or scoring dev (`arabtag-eval`).
    #[error(transparent)]
    Eval(#[from] arabtag_eval::EvalError),
    // -- files ------------------------------------------------------------
    #[error("{}: cannot read", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot write", path.display())]
    Write {
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
    /// A feature cache or checkpoint that does not fit what is asked of it.
    #[error("{}: {reason}", path.display())]
    BadCheckpoint { path: PathBuf, reason: String },
    /// A cache whose contents do not fit the data it is keyed by.
    #[error("the cache {} does not fit the data; delete it", path.display())]
    CacheMismatch { path: PathBuf },
    /// `--resume` from a checkpoint of another run.
    #[error("the checkpoint in {} was {reason}", dir.display())]
    CheckpointMismatch { dir: PathBuf, reason: &'static str },
    // -- training data (align.rs) -------------------------------------------
    /// A training file's tag outside the label set.
    #[error("sentence {sentence}: tag {tag:?} is not one of the labels {labels:?}")]
    UnknownTag {
        sentence: usize,
        tag: String,
        labels: Vec<String>,
    },
    /// A training file too small to hold out a tenth as dev.
    #[error("{}: too few sentences ({sentences}) for a train/dev split", path.display())]
    TooFewSentences { path: PathBuf, sentences: usize },
    /// A training file's sentence that cannot be aligned to subtokens.
    #[error("cannot align {}", path.display())]
    Align {
        path: PathBuf,
        #[source]
        source: Box<TrainError>,
    },
    /// A sentence whose words and tags differ in number.
    #[error("sentence {sentence}: {words} words but {tags} tags")]
    TagCount {
        sentence: usize,
        words: usize,
        tags: usize,
    },
    /// A stance segment row that is not JSON of `{id, text, labels}`.
    #[error("{}:{line}: not a segment row", path.display())]
    SegmentRow {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    /// A stance label outside the guideline's.
    #[error("{}:{line}: label {label:?} is not one of {:?}", path.display(), arabtag_records::STANCE_LABELS)]
    StanceLabel {
        path: PathBuf,
        line: usize,
        label: String,
    },
    /// A stance segment without text.
    #[error("{}:{line}: empty text (id {id})", path.display())]
    EmptySegment {
        path: PathBuf,
        line: usize,
        id: String,
    },
    /// `train calibrate` with a config that has no `[stance]` task.
    #[error("{}: the config has no [stance] task to calibrate", config.display())]
    NoStance { config: PathBuf },
    /// A stance file without segments.
    #[error("{}: no segments", path.display())]
    NoSegments { path: PathBuf },
    // -- the model being trained -------------------------------------------
    /// No room for one content token between the special tokens.
    #[error(
        "a window of {window} tokens plus {specials} special tokens exceeds the encoder's {max_positions} positions"
    )]
    WindowTooLong {
        window: usize,
        specials: usize,
        max_positions: usize,
    },
    /// Layers asked of an encoder that does not have them.
    #[error("layer {layer} asked, the encoder has layers 0..={layers} (0 = embeddings)")]
    LayerOutOfRange { layer: usize, layers: usize },
    /// Fine-tuning asked with no layer to fine-tune.
    #[error("fine-tuning needs at least one layer")]
    NoLayersToFinetune,
    /// A trained parameter the optimiser does not hold (a bug, not input).
    #[error("the optimiser holds no parameter `{name}`")]
    MissingParameter { name: String },
}
