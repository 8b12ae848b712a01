//! One module per subcommand.

pub mod bench;
pub mod eval;
pub mod models;
pub mod tag;
pub mod train;
pub mod train_stance;

use std::process::ExitCode;

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
}

impl Status {
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Status::Ok => 0,
            Status::Regression => 1,
            Status::Errors => 2,
        })
    }
}
