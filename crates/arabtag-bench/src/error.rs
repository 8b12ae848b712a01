//! The crate's one error type.

use std::path::PathBuf;
use std::process::ExitStatus;

use arabtag_infer::InferError;

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    // -- below us ---------------------------------------------------------
    /// Loading or running the model.
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error("tokenizer")]
    Tokenizer(#[from] arabtag_tokenizer::TokenizerError),
    /// Reading the CoNLL part of the corpus.
    #[error(transparent)]
    Eval(#[from] arabtag_eval::EvalError),
    // -- files and processes ------------------------------------------------
    #[error("{}: cannot read or write", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialise a record")]
    Serialize(#[source] serde_json::Error),
    #[error("cannot start {what}")]
    Spawn {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Talking to a started process (its pipes, its exit).
    #[error("cannot talk to a started process")]
    Pipe {
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed ({status}){}", if stderr.is_empty() { String::new() } else { format!(":\n{stderr}") })]
    Failed {
        what: &'static str,
        status: ExitStatus,
        stderr: String,
    },
    /// The cold-start process wrote something other than a record.
    #[error("arabtag tag printed no record: {line:?}")]
    NoRecord { line: String },
    // -- the corpus and the model -------------------------------------------
    #[error("the bench corpus is empty")]
    EmptyCorpus,
    /// FLOPs are counted for BERT-family encoders only.
    #[error("the bench needs a BERT-family encoder")]
    NotBertFamily,
    #[error("{failed} documents failed to tag")]
    Untagged { failed: usize },
    #[error("{id}: {error}")]
    Document { id: String, error: String },
    // -- the peers ----------------------------------------------------------
    #[error("{}: not the JSON the peer script writes", path.display())]
    PeerJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the {peer} peer returned {got} items where {expected} were expected")]
    PeerCount {
        peer: &'static str,
        got: usize,
        expected: usize,
    },
}
