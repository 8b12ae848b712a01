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
    // -- models (models/) -------------------------------------------------
    // -- pipeline (pipeline/) ---------------------------------------------
}
