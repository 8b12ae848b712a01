//! `arabtag train stance`: a multi-label stance head on e5 segment
//! embeddings, and per-label thresholds calibrated on dev for it and for the
//! model's own `[stance]` method (prototypes).
//!
//! ```text
//! arabtag train stance --train data/stance/train.jsonl --dev data/stance/dev.jsonl \
//!     --model models/default.toml --out DIR [--epochs N] [--lr X] [--seed S]
//! ```
//!
//! Data: JSONL rows `{"id", "topic", "text", "labels"}` (labels a subset of
//! mediation, conflict, energy). Features: each segment's mean-pooled,
//! L2-normalised last hidden state ([`Tagger::segment_embeddings`]), what the
//! `head` method reads at tagging time. The head: one logistic output per
//! label (`weight` `[3, hidden]`, `bias` `[3]`), full-batch AdamW on the
//! summed binary cross-entropy, weights from zero (so deterministic).
//!
//! Thresholds: for each label and method, the cut on dev scores with the
//! best F1 (midpoints between consecutive distinct scores; ties go to the
//! higher cut). They are fitted on dev, so the dev figures printed are
//! optimistic; the seeds are the test.
//!
//! Output in `--out`: `head.safetensors`; `stance.json` with the settings,
//! the inputs' sha256, per method the thresholds and dev scores (per label
//! P/R/F1, micro, macro), and which method is better on dev (macro-F1); the
//! `[stance]` TOML for each method is printed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use arabtag_infer::config::{ModelConfig, ResolveOptions};
use arabtag_infer::train::stance::StanceHead;
use arabtag_infer::{TagOptions, Tagger};
use arabtag_records::STANCE_LABELS;
use clap::Args;
use serde::Serialize;

use super::Status;
use crate::output::stderr_line;

#[derive(Debug, Args)]
pub struct StanceArgs {
    /// Training segments (JSONL: id, topic, text, labels).
    #[arg(long, value_name = "FILE")]
    pub train: PathBuf,
    /// Dev segments (same format), for the thresholds and the choice.
    #[arg(long, value_name = "FILE")]
    pub dev: PathBuf,
    /// The model config (its encoder, and its [stance] method to calibrate).
    #[arg(long, value_name = "CONFIG", default_value = super::train::DEFAULT_MODEL)]
    pub model: PathBuf,
    /// Folder for the head and the report.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Full-batch AdamW steps.
    #[arg(long, default_value_t = 2000)]
    pub epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Never touch the network (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
}

/// One labelled segment.
#[derive(Debug, Clone, serde::Deserialize)]
struct Row {
    id: String,
    text: String,
    labels: Vec<String>,
}

fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read (UTF-8 expected)", path.display()))?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a segment row", path.display(), n + 1))?;
        if let Some(bad) = row
            .labels
            .iter()
            .find(|l| !STANCE_LABELS.contains(&l.as_str()))
        {
            bail!(
                "{}:{}: label {bad:?} is not one of {STANCE_LABELS:?}",
                path.display(),
                n + 1
            );
        }
        ensure!(
            !row.text.trim().is_empty(),
            "{}:{}: empty text (id {})",
            path.display(),
            n + 1,
            row.id
        );
        rows.push(row);
    }
    ensure!(!rows.is_empty(), "{}: no segments", path.display());
    Ok(rows)
}

fn targets(rows: &[Row]) -> Vec<[bool; 3]> {
    rows.iter()
        .map(|r| STANCE_LABELS.map(|l| r.labels.iter().any(|x| x == l)))
        .collect()
}

/// Precision, recall, F1 and counts of one label or an aggregate.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub tp: usize,
    pub predicted: usize,
    pub support: usize,
}

fn prf(tp: usize, predicted: usize, support: usize) -> Prf {
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (p, r) = (ratio(tp, predicted), ratio(tp, support));
    Prf {
        precision: p,
        recall: r,
        f1: if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        },
        tp,
        predicted,
        support,
    }
}

/// Per-label, micro and macro scores of thresholded predictions.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentScores {
    pub per_label: std::collections::BTreeMap<String, Prf>,
    pub micro: Prf,
    /// Mean of the per-label P, R and F1.
    pub macro_f1: f64,
}

fn score(scores: &[[f64; 3]], gold: &[[bool; 3]], thresholds: &[f64; 3]) -> SegmentScores {
    let mut per_label = std::collections::BTreeMap::new();
    let (mut tp, mut pred, mut sup) = (0, 0, 0);
    let mut f1_sum = 0.0;
    for (i, label) in STANCE_LABELS.iter().enumerate() {
        let (mut t, mut p, mut s) = (0, 0, 0);
        for (x, g) in scores.iter().zip(gold) {
            let yes = x[i] >= thresholds[i];
            t += usize::from(yes && g[i]);
            p += usize::from(yes);
            s += usize::from(g[i]);
        }
        let one = prf(t, p, s);
        f1_sum += one.f1;
        per_label.insert((*label).to_owned(), one);
        (tp, pred, sup) = (tp + t, pred + p, sup + s);
    }
    SegmentScores {
        per_label,
        micro: prf(tp, pred, sup),
        macro_f1: f1_sum / 3.0,
    }
}

/// Per label, the threshold with the best dev F1.
fn calibrate(scores: &[[f64; 3]], gold: &[[bool; 3]]) -> [f64; 3] {
    let mut out = [0.5; 3];
    for (i, slot) in out.iter_mut().enumerate() {
        let mut values: Vec<f64> = scores.iter().map(|s| s[i]).collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        let mut cuts: Vec<f64> = values.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
        if let (Some(first), Some(last)) = (values.first(), values.last()) {
            cuts.push(first - 1e-6);
            cuts.push(last + 1e-6);
        }
        let f1 = |cut: f64| {
            let (mut t, mut p, mut s) = (0usize, 0usize, 0usize);
            for (x, g) in scores.iter().zip(gold) {
                let yes = x[i] >= cut;
                t += usize::from(yes && g[i]);
                p += usize::from(yes);
                s += usize::from(g[i]);
            }
            prf(t, p, s).f1
        };
        let mut best = (f64::NEG_INFINITY, 0.5);
        for cut in cuts {
            let v = f1(cut);
            if v > best.0 || (v == best.0 && cut > best.1) {
                best = (v, cut);
            }
        }
        *slot = best.1;
    }
    out
}

/// What one method gave on dev.
#[derive(Debug, Serialize)]
struct MethodReport {
    thresholds: std::collections::BTreeMap<String, f64>,
    dev: SegmentScores,
}

fn method_report(scores: &[[f64; 3]], gold: &[[bool; 3]]) -> ([f64; 3], MethodReport) {
    let thresholds = calibrate(scores, gold);
    let report = MethodReport {
        thresholds: STANCE_LABELS
            .iter()
            .zip(thresholds)
            .map(|(l, t)| ((*l).to_owned(), t))
            .collect(),
        dev: score(scores, gold, &thresholds),
    };
    (thresholds, report)
}

fn toml_thresholds(t: &[f64; 3]) -> String {
    format!(
        "thresholds = {{ mediation = {:.4}, conflict = {:.4}, energy = {:.4} }}",
        t[0], t[1], t[2]
    )
}

pub fn run(a: &StanceArgs) -> Result<Status> {
    ensure!(a.epochs >= 1, "--epochs must be at least 1");
    ensure!(
        a.lr > 0.0 && a.lr.is_finite(),
        "--lr must be a positive number"
    );
    let mut options = ResolveOptions::from_env();
    options.offline |= a.offline;
    let model = ModelConfig::from_file(&a.model)
        .and_then(|config| config.resolve(&options))
        .and_then(|resolved| resolved.verify())
        .with_context(|| format!("model config {}", a.model.display()))?;
    let tagger = Tagger::load(&model, TagOptions::default())
        .with_context(|| format!("cannot load the model of {}", a.model.display()))?;
    let (train, dev) = (read_rows(&a.train)?, read_rows(&a.dev)?);
    let texts = |rows: &[Row]| rows.iter().map(|r| r.text.clone()).collect::<Vec<_>>();
    let started = std::time::Instant::now();
    let x_train = tagger.segment_embeddings(&texts(&train))?;
    let x_dev = tagger.segment_embeddings(&texts(&dev))?;
    stderr_line(&format!(
        "embedded {} train and {} dev segments in {:.1} s",
        train.len(),
        dev.len(),
        started.elapsed().as_secs_f64()
    ));
    let (y_train, y_dev) = (targets(&train), targets(&dev));

    // The head.
    let (head, loss_value) = StanceHead::train(&x_train, &y_train, a.epochs, a.lr, a.weight_decay)?;
    let probs = |x: &[Vec<f32>]| -> Result<Vec<[f64; 3]>> {
        Ok(head
            .probabilities(x)?
            .iter()
            .map(|r| [r[0], r[1], r[2]])
            .collect())
    };
    let train_probs = probs(&x_train)?;
    let dev_probs = probs(&x_dev)?;
    let (head_thresholds, head_report) = method_report(&dev_probs, &y_dev);
    let head_train = score(&train_probs, &y_train, &head_thresholds);

    // The config's own method, calibrated on the same dev segments.
    let own = tagger.segment_scores(&texts(&dev))?;
    let own_report = own.as_ref().map(|s| method_report(s, &y_dev));
    let own_method = model
        .model()
        .stance
        .as_ref()
        .map(|s| s.method.name())
        .unwrap_or("none");

    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let head_path = a.out.join("head.safetensors");
    head.save(&head_path)?;
    let better = match &own_report {
        Some((_, r)) if r.dev.macro_f1 > head_report.dev.macro_f1 => own_method,
        _ => "head",
    };
    let report = serde_json::json!({
        "crate_version": env!("CARGO_PKG_VERSION"),
        "model_config": a.model,
        "train_file": a.train, "train_sha256": super::train::sha256_file(&a.train)?,
        "dev_file": a.dev, "dev_sha256": super::train::sha256_file(&a.dev)?,
        "train_segments": train.len(), "dev_segments": dev.len(),
        "features": "mean-pooled, L2-normalised last hidden state, no prefix",
        "head": {
            "epochs": a.epochs, "lr": a.lr, "weight_decay": a.weight_decay,
            "final_train_loss": loss_value,
            "head_sha256": super::train::sha256_file(&head_path)?,
            "thresholds": head_report.thresholds, "dev": head_report.dev,
            "train_at_dev_thresholds": head_train,
        },
        "config_method": own_report.as_ref().map(|(_, r)| serde_json::json!({
            "method": own_method, "thresholds": r.thresholds, "dev": r.dev,
        })),
        "better_on_dev": better,
        "seconds": started.elapsed().as_secs_f64(),
    });
    super::train::write_report(&a.out.join("stance.json"), &report)?;
    stderr_line(&format!(
        "head: train loss {loss_value:.4}; dev macro-F1 {:.3}, micro-F1 {:.3} (thresholds fitted on dev)",
        head_report.dev.macro_f1, head_report.dev.micro.f1
    ));
    println!(
        "# [stance] with the trained head ({}):",
        head_path.display()
    );
    println!("method = \"head\"\n{}", toml_thresholds(&head_thresholds));
    if let Some((t, r)) = &own_report {
        stderr_line(&format!(
            "{own_method}: dev macro-F1 {:.3}, micro-F1 {:.3} (thresholds fitted on dev)",
            r.dev.macro_f1, r.dev.micro.f1
        ));
        println!(
            "# [stance] method \"{own_method}\" of {}:",
            a.model.display()
        );
        println!("{}", toml_thresholds(t));
    }
    stderr_line(&format!("better on dev: {better}"));
    Ok(Status::Ok)
}
