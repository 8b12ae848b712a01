//! `arabtag`: tag Arabic news with entities and stance, and score any output
//! against gold. `main` only parses, runs the subcommand and maps the outcome
//! to an exit code: 0 ok, 1 a score regression (when reproducing), 2 errors.

mod cmd;
mod inputs;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the encoder allocates and frees
/// large activation buffers for every operation, and glibc's malloc hands
/// those back to the kernel each time (a third of the CPU time went to page
/// faults and unmapping when tagging the seeds with it).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "arabtag", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score predictions against gold: entities (SemEval-2013 modes and
    /// clitic-tolerant strict), segment and document stance; or CoNLL files as
    /// seqeval does (--conll).
    Eval(cmd::eval::EvalArgs),
    /// Show or verify a model config (the TOML that picks the transformer):
    /// its files with their sha256, the architecture, the tasks.
    Models(cmd::models::ModelsArgs),
    /// Tag documents with the model a config names: entities and segment
    /// stance as JSONL records (or CoNLL), one per document, in input order.
    Tag(cmd::tag::TagArgs),
    /// Train a head: `train ner` a NER head on frozen encoder layers or with
    /// the top layers fine-tuned; `train stance` a stance head and thresholds.
    Train(cmd::train::TrainArgs),
    /// Tagging speed on 1 MB of Arabic news, beside peers run on the same
    /// text: tokens and documents per second, cold start, peak RSS, GFLOP/s.
    Bench(cmd::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Eval(args) => cmd::eval::run(args),
        Command::Models(args) => cmd::models::run(args),
        Command::Tag(args) => cmd::tag::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    };
    match outcome {
        Ok(status) => status.exit_code(),
        Err(err) => {
            output::print_error(&err);
            cmd::Status::Errors.exit_code()
        }
    }
}
