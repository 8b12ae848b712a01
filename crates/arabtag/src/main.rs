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

/// `mi_option_purge_delay` in mimalloc's `mi_option_e`: the entry before
/// `mi_option_use_numa_nodes` in v3's `mimalloc.h` (`libmimalloc-sys`
/// names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t =
    libmimalloc_sys::mi_option_use_numa_nodes - 1;

/// Tells mimalloc never to return freed pages to the kernel. By default it
/// purges them a second after they are freed, and the encoder, which frees
/// and allocates the same activation sizes again every layer, then pays for
/// the kernel zeroing fresh pages: tagging the seeds took 8.2 s with the
/// default and 6.9 s with this (`MIMALLOC_PURGE_DELAY=-1`, the same setting
/// from the environment). Peak RSS is unchanged: nothing beyond the peak is
/// kept.
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: `mi_option_set` stores a value in mimalloc's option table; it
    // takes no pointers and checks the option index itself, which is
    // `mi_option_purge_delay` in the v3 mimalloc libmimalloc-sys 0.1 builds
    // (checked by the test below).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
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
    keep_freed_memory();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The index names the purge delay: before it is set it holds v3's
    /// default of 1,000 ms (no other option defaults to 1,000), after it -1.
    #[test]
    #[allow(unsafe_code)]
    fn the_option_set_is_the_purge_delay() {
        // SAFETY: reads an option value; no pointers.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(before, 1000);
        keep_freed_memory();
        // SAFETY: as above.
        let after = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(after, -1);
    }
}
