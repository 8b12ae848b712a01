//! `arabtag`: tag Arabic news with entities and stance, and score any output
//! against gold. `main` only parses, runs the subcommand and maps the outcome
//! to an exit code: 0 ok, 1 a score regression (when reproducing), 2 errors.

mod cmd;
mod html;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// glibc's `malloc`, told to keep the encoder's activation buffers: by
/// default blocks from 128 KB up (the threshold rising as they are freed)
/// are `mmap`ed and unmapped each time, and the heap is trimmed when 128 KB
/// are free at its top, so layer after layer paid the kernel for fresh
/// zeroed pages. Blocks below 32 MB (the most glibc allows) now come from
/// the heap, which is never trimmed. Measured with `/usr/bin/time arabtag
/// tag` (same code, 2 cores): the seeds in 2.55 s and 213 MB of peak RSS,
/// against 3.34 s and 211 MB with glibc's defaults and 2.99 s and 274 MB
/// with mimalloc (the allocator before); the 1 MB bench corpus in 95 s and
/// 214 MB, against 90 s and 290 MB with mimalloc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_memory() -> bool {
    // SAFETY: `mallopt` sets one of glibc's allocator parameters; it takes
    // no pointers, and runs first thing in `main`, before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
    }
}

/// Other C libraries keep their allocator's defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() -> bool {
    true
}

/// candle runs its elementwise ops on large tensors (the embeddings' sums,
/// the stance pooling) on a pool of its own threads beside rayon's, and
/// those threads spin 25,000 times waiting for the next op. On two cores a
/// spinning thread takes a core from rayon's workers: `arabtag tag` on the
/// bench corpus's first 98 documents took 10-15% less time with the spin
/// limit at 0 (NER only 3.3-3.6 s against 3.7-4.0 s, stance only 3.2-3.5 s
/// against 3.8-3.9 s). A limit the user set is kept.
#[allow(unsafe_code)]
fn calm_candle_pool() {
    const SPIN: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(SPIN).is_none() {
        // SAFETY: called from `main` after parsing the arguments and before
        // any thread is started, so nothing reads the environment meanwhile.
        unsafe { std::env::set_var(SPIN, "0") };
    }
}

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
    if !keep_freed_memory() {
        eprintln!("warning: the allocator refused its settings; tagging may be slower");
    }
    let cli = Cli::parse();
    if matches!(cli.command, Command::Tag(_) | Command::Bench(_)) {
        calm_candle_pool();
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// glibc takes both settings (it refuses an mmap threshold above 32 MB).
    #[test]
    fn the_allocator_takes_its_settings() {
        assert!(keep_freed_memory());
    }
}
