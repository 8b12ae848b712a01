//! The crate's error type.

use std::path::PathBuf;

/// Errors of loading a tokenizer, encoding a document and planning windows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizerError {
    /// `tokenizer.json` could not be read or parsed.
    #[error("{}: cannot load the tokenizer", path.display())]
    Load {
        path: PathBuf,
        #[source]
        source: tokenizers::Error,
    },
    /// The tokenizer could not be set up for whole-document encoding
    /// (switching truncation off, reading its special tokens).
    #[error("cannot prepare the tokenizer: {what}")]
    Configure {
        what: &'static str,
        #[source]
        source: tokenizers::Error,
    },
    /// The Hugging Face tokenizer failed on a document.
    #[error("cannot encode a document of {chars} characters")]
    Encode {
        chars: usize,
        #[source]
        source: tokenizers::Error,
    },
    /// The Hugging Face tokenizer failed on a premise and hypothesis pair.
    #[error("cannot encode a premise and hypothesis pair")]
    EncodePair {
        #[source]
        source: tokenizers::Error,
    },
    /// The Hugging Face tokenizer gave a token offsets that do not lie in the
    /// text it was given (a bug or an unsupported tokenizer, never silently
    /// clipped).
    #[error(
        "token {index} has offsets {start}..{end} outside the normalised text of {len} characters"
    )]
    OffsetOutOfRange {
        index: usize,
        start: usize,
        end: usize,
        len: usize,
    },
    /// A window must hold at least one content token.
    #[error("the window length must be at least 1 token")]
    EmptyWindow,
    /// Consecutive windows must advance: the overlap must be shorter than a window.
    #[error("the stride (overlap) {stride} must be smaller than the window length {max_len}")]
    StrideTooLarge { stride: usize, max_len: usize },
}
