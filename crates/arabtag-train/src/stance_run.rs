//! Stance head training, as `arabtag train stance` drives it: the
//! segments of a train and a dev file embedded by the model's encoder
//! (each segment's mean-pooled, L2-normalised last hidden state, what the
//! `head` stance method reads at tagging time), a logistic head trained on
//! them ([`StanceHead`]), and per-label thresholds fitted on dev for it and
//! for the config's own `[stance]` method
//! ([`arabtag_eval::thresholds::fit_thresholds`]).
//!
//! Output in `out`: `head.safetensors`; `stance.json` with the settings,
//! the inputs' sha256, per method the thresholds and dev scores (per label
//! P/R/F1, micro, macro), and which method is better on dev (macro-F1).

use std::path::{Path, PathBuf};

use arabtag_eval::thresholds::{SegmentScores, fit_thresholds, score_thresholded};
use arabtag_infer::config::VerifiedModel;
use arabtag_infer::{TagOptions, Tagger};
use arabtag_records::STANCE_LABELS;
use serde::Serialize;

use crate::files::{RunObserver, sha256_file};
use crate::stance::StanceHead;
use crate::{TrainError, write_json};

/// What a stance training run is asked to do.
#[derive(Debug, Clone)]
pub struct StanceRun {
    /// Training segments (JSONL: id, topic, text, labels).
    pub train: PathBuf,
    /// Dev segments (same format), for the thresholds and the choice.
    pub dev: PathBuf,
    /// The model config's path, for the report.
    pub model: PathBuf,
    /// Folder for the head and the report.
    pub out: PathBuf,
    /// Full-batch AdamW steps.
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
}

/// What a run gave: the head's and the config method's thresholds and dev
/// scores.
#[derive(Debug)]
pub struct StanceOutcome {
    /// Where the head was written.
    pub head_path: PathBuf,
    /// The head's final training loss.
    pub loss: f64,
    pub head_thresholds: [f64; 3],
    pub head_dev: SegmentScores,
    /// The config's own method (its name), when it has one.
    pub own: Option<(&'static str, [f64; 3], SegmentScores)>,
    /// `head`, or the config's method when that is better on dev.
    pub better: &'static str,
}

/// One labelled segment.
#[derive(Debug, Clone, serde::Deserialize)]
struct Row {
    id: String,
    text: String,
    labels: Vec<String>,
}

fn read_rows(path: &Path) -> Result<Vec<Row>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(line).map_err(|source| TrainError::SegmentRow {
            path: path.to_owned(),
            line: n + 1,
            source,
        })?;
        if let Some(bad) = row
            .labels
            .iter()
            .find(|l| !STANCE_LABELS.contains(&l.as_str()))
        {
            return Err(TrainError::StanceLabel {
                path: path.to_owned(),
                line: n + 1,
                label: bad.clone(),
            });
        }
        if row.text.trim().is_empty() {
            return Err(TrainError::EmptySegment {
                path: path.to_owned(),
                line: n + 1,
                id: row.id,
            });
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(TrainError::NoSegments {
            path: path.to_owned(),
        });
    }
    Ok(rows)
}

fn targets(rows: &[Row]) -> Vec<[bool; 3]> {
    rows.iter()
        .map(|r| STANCE_LABELS.map(|l| r.labels.iter().any(|x| x == l)))
        .collect()
}

/// What one method gave on dev.
#[derive(Debug, Serialize)]
struct MethodReport {
    thresholds: std::collections::BTreeMap<String, f64>,
    dev: SegmentScores,
}

fn method_report(scores: &[[f64; 3]], gold: &[[bool; 3]]) -> ([f64; 3], MethodReport) {
    let thresholds = fit_thresholds(scores, gold);
    let report = MethodReport {
        thresholds: STANCE_LABELS
            .iter()
            .zip(thresholds)
            .map(|(l, t)| ((*l).to_owned(), t))
            .collect(),
        dev: score_thresholded(scores, gold, &thresholds),
    };
    (thresholds, report)
}

/// Trains and calibrates as [`StanceRun`] says, with `model`'s encoder
/// (loaded here) and its `[stance]` method.
pub fn run_stance(
    a: &StanceRun,
    model: &VerifiedModel,
    obs: &dyn RunObserver,
) -> Result<StanceOutcome, TrainError> {
    let tagger =
        Tagger::load(model, TagOptions::default()).map_err(|source| TrainError::LoadModel {
            config: a.model.clone(),
            source,
        })?;
    let (train, dev) = (read_rows(&a.train)?, read_rows(&a.dev)?);
    let texts = |rows: &[Row]| rows.iter().map(|r| r.text.clone()).collect::<Vec<_>>();
    let started = std::time::Instant::now();
    let x_train = tagger.segment_embeddings(&texts(&train))?;
    let x_dev = tagger.segment_embeddings(&texts(&dev))?;
    obs.line(&format!(
        "embedded {} train and {} dev segments in {:.1} s",
        train.len(),
        dev.len(),
        started.elapsed().as_secs_f64()
    ));
    let (y_train, y_dev) = (targets(&train), targets(&dev));

    // The head.
    let (head, loss_value) = StanceHead::train(&x_train, &y_train, a.epochs, a.lr, a.weight_decay)?;
    let probs = |x: &[Vec<f32>]| -> Result<Vec<[f64; 3]>, TrainError> {
        Ok(head
            .probabilities(x)?
            .iter()
            .map(|r| [r[0], r[1], r[2]])
            .collect())
    };
    let train_probs = probs(&x_train)?;
    let dev_probs = probs(&x_dev)?;
    let (head_thresholds, head_report) = method_report(&dev_probs, &y_dev);
    let head_train = score_thresholded(&train_probs, &y_train, &head_thresholds);

    // The config's own method, calibrated on the same dev segments.
    let own = tagger.segment_scores(&texts(&dev))?;
    let own_report = own.as_ref().map(|s| method_report(s, &y_dev));
    let own_method = model
        .model()
        .stance
        .as_ref()
        .map(|s| s.method.name())
        .unwrap_or("none");

    std::fs::create_dir_all(&a.out).map_err(|source| TrainError::Write {
        path: a.out.clone(),
        source,
    })?;
    let head_path = a.out.join("head.safetensors");
    head.save(&head_path)?;
    let better = match &own_report {
        Some((_, r)) if r.dev.macro_f1 > head_report.dev.macro_f1 => own_method,
        _ => "head",
    };
    let report = serde_json::json!({
        "crate_version": env!("CARGO_PKG_VERSION"),
        "model_config": a.model,
        "train_file": a.train, "train_sha256": sha256_file(&a.train)?,
        "dev_file": a.dev, "dev_sha256": sha256_file(&a.dev)?,
        "train_segments": train.len(), "dev_segments": dev.len(),
        "features": "mean-pooled, L2-normalised last hidden state, no prefix",
        "head": {
            "epochs": a.epochs, "lr": a.lr, "weight_decay": a.weight_decay,
            "final_train_loss": loss_value,
            "head_sha256": sha256_file(&head_path)?,
            "thresholds": head_report.thresholds, "dev": head_report.dev,
            "train_at_dev_thresholds": head_train,
        },
        "config_method": own_report.as_ref().map(|(_, r)| serde_json::json!({
            "method": own_method, "thresholds": r.thresholds, "dev": r.dev,
        })),
        "better_on_dev": better,
        "seconds": started.elapsed().as_secs_f64(),
    });
    write_json(&a.out.join("stance.json"), &report)?;
    Ok(StanceOutcome {
        head_path,
        loss: loss_value,
        head_thresholds,
        head_dev: head_report.dev,
        own: own_report.map(|(t, r)| (own_method, t, r.dev)),
        better,
    })
}
