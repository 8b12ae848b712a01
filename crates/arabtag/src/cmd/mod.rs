//! One module per subcommand.

pub mod bench;
pub mod eval;
pub mod models;
pub mod tag;
pub mod train;
pub mod train_stance;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use arabtag_infer::config::{ModelConfig, VerifiedModel};

/// The model config a command uses when `--model` is not given.
pub const DEFAULT_MODEL: &str = "models/default.toml";

/// The model config at `path`, resolved (offline when `offline` or
/// `HF_HUB_OFFLINE` says so) and every file verified against its sha256.
pub fn verified_model(path: &Path, offline: bool) -> Result<VerifiedModel> {
    if !path.exists() {
        anyhow::bail!(
            "model config {}: no such file (a relative path counts from the working folder \
             {}); pass --model PATH or set ARABTAG_MODEL",
            path.display(),
            std::env::current_dir().map_or_else(|_| "?".to_owned(), |d| d.display().to_string())
        );
    }
    ModelConfig::verified(path, offline).with_context(|| format!("model config {}", path.display()))
}

/// How a subcommand ended, beyond a hard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // `Regression` comes with reproducing published scores.
pub enum Status {
    /// Done, nothing wrong.
    Ok,
    /// Reproducing: a score fell below what it should be.
    Regression,
    /// Done, but the input had errors (they were reported).
    Errors,
    /// Stopped by SIGINT or SIGTERM after the last whole record.
    Interrupted,
}

impl Status {
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Status::Ok => 0,
            Status::Regression => 1,
            Status::Errors => 2,
            Status::Interrupted => 130,
        })
    }
}
