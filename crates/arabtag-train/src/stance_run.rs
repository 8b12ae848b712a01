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

use arabtag_eval::calibration::{self, Platt, Reliability, fit_platt, reliability};
use arabtag_eval::thresholds::{SegmentScores, fit_thresholds, score_thresholded};
use arabtag_infer::config::VerifiedModel;
use arabtag_infer::{TagOptions, Tagger};
use arabtag_records::STANCE_LABELS;
use serde::Serialize;

use crate::align::AlignedSentence;
use crate::features::WindowPlan;
use crate::files::{RunObserver, sha256_file};
use crate::finetune::{FinetuneOptions, FinetuneTrainer, build_layer_cache};
use crate::stance::StanceHead;
use crate::{TrainError, write_json};
use arabtag_infer::loaded::load_bert;
use arabtag_infer::pipeline::Wrapping;

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
    /// Fine-tune the top `finetune` encoder layers with the head (0: the
    /// head alone, on the frozen encoder), starting from the head trained
    /// alone.
    pub finetune: usize,
    /// Fine-tuning settings (`finetune` > 0).
    pub finetune_options: FinetuneOptions,
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
    /// The head's Platt parameters per label (thresholds apply after them).
    pub head_calibration: [(f64, f64); 3],
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
    /// The split's unit (rows without one are one topic).
    #[serde(default)]
    topic: String,
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

/// The tagger of `model` (the config at `config`), its default options.
fn load_tagger(config: &Path, model: &VerifiedModel) -> Result<Tagger, TrainError> {
    Tagger::load(model, TagOptions::default()).map_err(|source| TrainError::LoadModel {
        config: config.to_owned(),
        source,
    })
}

/// Trains and calibrates as [`StanceRun`] says, with `model`'s encoder
/// (loaded here) and its `[stance]` method.
pub fn run_stance(
    a: &StanceRun,
    model: &VerifiedModel,
    obs: &dyn RunObserver,
) -> Result<StanceOutcome, TrainError> {
    let tagger = load_tagger(&a.model, model)?;
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
    let mut train_probs = probs(&x_train)?;
    let mut dev_probs = probs(&x_dev)?;
    let mut finetune_report = None;
    if a.finetune > 0 {
        let texts_all: Vec<String> = texts(&train).into_iter().chain(texts(&dev)).collect();
        let (ft, report) = finetune(a, model, &tagger, &head, &texts_all, &y_train, &y_dev, obs)?;
        train_probs = ft[..train.len()].to_vec();
        dev_probs = ft[train.len()..].to_vec();
        finetune_report = Some(report);
    }
    // Platt scaling per label, fitted on dev; its reliability measured by
    // cross-fitting over dev's topics (each fold calibrated by the others).
    let topics: Vec<&str> = dev.iter().map(|r| r.topic.as_str()).collect();
    let (platt, reliability) = calibrate(&dev_probs, &y_dev, &topics);
    let calibrated = |probs: &[[f64; 3]]| -> Vec<[f64; 3]> {
        probs
            .iter()
            .map(|row| std::array::from_fn(|i| calibration::apply(platt[i], row[i])))
            .collect()
    };
    let (train_probs, dev_probs) = (calibrated(&train_probs), calibrated(&dev_probs));
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
    if a.finetune == 0 {
        head.save(&head_path)?;
    }
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
        "finetune": finetune_report,
        "head": {
            "epochs": a.epochs, "lr": a.lr, "weight_decay": a.weight_decay,
            "final_train_loss": loss_value,
            "head_sha256": sha256_file(&head_path)?,
            "calibration": STANCE_LABELS.iter().zip(platt)
                .map(|(l, (a, b))| ((*l).to_owned(), [a, b]))
                .collect::<std::collections::BTreeMap<_, _>>(),
            "reliability_dev_cross_fitted": reliability,
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
        head_calibration: platt,
        head_dev: head_report.dev,
        own: own_report.map(|(t, r)| (own_method, t, r.dev)),
        better,
    })
}

/// What `arabtag train calibrate` gave: the config's stance method's Platt
/// parameters and thresholds, fitted on a dev file, and its dev scores.
#[derive(Debug)]
pub struct CalibrateOutcome {
    pub method: &'static str,
    pub calibration: [(f64, f64); 3],
    pub thresholds: [f64; 3],
    /// Dev scores before calibration (thresholds fitted on the raw scores)
    /// and after (thresholds fitted on the calibrated ones).
    pub raw_dev: SegmentScores,
    pub dev: SegmentScores,
}

/// Calibrates the `[stance]` method of `model` (whatever it is, its own
/// `stance.calibration` not applied) on `dev`: Platt scaling per label and
/// then per-label thresholds, both fitted on dev, as `arabtag train stance`
/// fits them for the head it trains. Writes `calibration.json` into `out`
/// (the inputs' sha256, the parameters, the cross-fitted reliability, the
/// dev scores).
pub fn run_calibrate(
    config: &Path,
    model: &VerifiedModel,
    dev: &Path,
    out: &Path,
    obs: &dyn RunObserver,
) -> Result<CalibrateOutcome, TrainError> {
    let tagger = load_tagger(config, model)?;
    let rows = read_rows(dev)?;
    let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
    let started = std::time::Instant::now();
    let Some(raw) = tagger.segment_scores_uncalibrated(&texts)? else {
        return Err(TrainError::NoStance {
            config: config.to_owned(),
        });
    };
    obs.line(&format!(
        "scored {} dev segments in {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    ));
    let gold = targets(&rows);
    let (_, raw_report) = method_report(&raw, &gold);
    let topics: Vec<&str> = rows.iter().map(|r| r.topic.as_str()).collect();
    let (platt, reliability) = calibrate(&raw, &gold, &topics);
    let calibrated: Vec<[f64; 3]> = raw
        .iter()
        .map(|row| std::array::from_fn(|i| calibration::apply(platt[i], row[i])))
        .collect();
    let (thresholds, report) = method_report(&calibrated, &gold);
    let method = model
        .model()
        .stance
        .as_ref()
        .map_or("none", |s| s.method.name());
    std::fs::create_dir_all(out).map_err(|source| TrainError::Write {
        path: out.to_owned(),
        source,
    })?;
    let json = serde_json::json!({
        "crate_version": env!("CARGO_PKG_VERSION"),
        "model_config": config, "model_config_sha256": sha256_file(config)?,
        "method": method,
        "dev_file": dev, "dev_sha256": sha256_file(dev)?,
        "dev_segments": rows.len(),
        "calibration": STANCE_LABELS.iter().zip(platt)
            .map(|(l, (a, b))| ((*l).to_owned(), [a, b]))
            .collect::<std::collections::BTreeMap<_, _>>(),
        "reliability_dev_cross_fitted": reliability,
        "uncalibrated": raw_report,
        "thresholds": report.thresholds, "dev": report.dev,
        "seconds": started.elapsed().as_secs_f64(),
    });
    write_json(&out.join("calibration.json"), &json)?;
    Ok(CalibrateOutcome {
        method,
        calibration: platt,
        thresholds,
        raw_dev: raw_report.dev,
        dev: report.dev,
    })
}

/// Fine-tunes the top `a.finetune` layers with a pooled head started from
/// `probe` (the head trained on the frozen encoder): the state of the layer
/// below them cached once for every segment (`texts`: train, then dev), each
/// epoch scored on dev (thresholds fitted there), the best epoch's layers
/// and head written to `out/head.safetensors`. Returns every segment's
/// probabilities under the kept epoch, and the report.
#[allow(clippy::too_many_arguments)]
fn finetune(
    a: &StanceRun,
    model: &VerifiedModel,
    tagger: &Tagger,
    probe: &StanceHead,
    texts: &[String],
    y_train: &[[bool; 3]],
    y_dev: &[[bool; 3]],
    obs: &dyn RunObserver,
) -> Result<(Vec<[f64; 3]>, serde_json::Value), TrainError> {
    let bert = load_bert(model).map_err(|source| TrainError::LoadModel {
        config: a.model.clone(),
        source,
    })?;
    let layers = bert.num_layers();
    if a.finetune > layers {
        return Err(TrainError::LayerOutOfRange {
            layer: a.finetune,
            layers,
        });
    }
    let from = layers - a.finetune;
    let tokenizer = tagger.tokenizer();
    let wrapping = Wrapping::from_special(tokenizer.special_tokens())?;
    let mut aligned = Vec::with_capacity(texts.len());
    for text in texts {
        aligned.push(AlignedSentence {
            ids: tokenizer.encode(text)?.ids(),
            token_labels: Vec::new(),
            first: Vec::new(),
            labels: Vec::new(),
        });
    }
    // Segments as the tagger reads them: one window each (a longer one in
    // windows that each carry its labels), special tokens around.
    let plan = WindowPlan::for_encoder(&bert, &wrapping, None, 0, a.finetune_options.batch_tokens)?;
    let started = std::time::Instant::now();
    let cache = build_layer_cache(
        &bert,
        tokenizer.special_tokens(),
        &aligned,
        from,
        &plan,
        &mut |_| {},
    )?;
    obs.line(&format!(
        "layer {from} states of {} segments cached in {:.1} s",
        texts.len(),
        started.elapsed().as_secs_f64()
    ));
    let n_train = y_train.len();
    let targets: Vec<Vec<f32>> = y_train
        .iter()
        .chain(y_dev)
        .map(|y| y.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect())
        .collect();
    let train_windows: Vec<usize> = (0..cache.windows.len())
        .filter(|&w| cache.windows[w].sentence < n_train)
        .collect();
    let all_windows: Vec<usize> = (0..cache.windows.len()).collect();
    let (weight, bias) = probe.tensors()?;
    let mut trainer = FinetuneTrainer::new_pooled(
        &bert,
        (from..layers).collect(),
        STANCE_LABELS.iter().map(|l| (*l).to_owned()).collect(),
        a.finetune_options.clone(),
        Some((&weight, &bias)),
    )?;
    // Per segment, the window-length-weighted mean of its windows' probabilities.
    let per_segment = |probs: &std::collections::BTreeMap<usize, Vec<f32>>| {
        let mut sums = vec![([0.0f64; 3], 0usize); texts.len()];
        for (&w, row) in probs {
            let win = &cache.windows[w];
            let (sum, n) = &mut sums[win.sentence];
            for (s, p) in sum.iter_mut().zip(row) {
                *s += f64::from(*p) * win.len as f64;
            }
            *n += win.len;
        }
        sums.into_iter()
            .map(|(s, n)| s.map(|x| x / n.max(1) as f64))
            .collect::<Vec<[f64; 3]>>()
    };
    let mut epochs = Vec::new();
    let mut best: Option<(f64, usize, Vec<[f64; 3]>)> = None;
    let head_path = a.out.join("head.safetensors");
    std::fs::create_dir_all(&a.out).map_err(|source| TrainError::Write {
        path: a.out.clone(),
        source,
    })?;
    for epoch in 1..=a.finetune_options.epochs {
        let t0 = std::time::Instant::now();
        let loss = trainer.train_epoch_pooled(&cache, &targets, &train_windows, &mut |_| {})?;
        let (_, probs) = trainer.evaluate_pooled(&cache, &targets, &all_windows, true)?;
        let all = per_segment(&probs);
        let dev = &all[n_train..];
        let thresholds = fit_thresholds(dev, y_dev);
        let scores = score_thresholded(dev, y_dev, &thresholds);
        obs.line(&format!(
            "fine-tune epoch {epoch}: train loss {loss:.4}, dev macro-F1 {:.3} ({:.0} s)",
            scores.macro_f1,
            t0.elapsed().as_secs_f64()
        ));
        epochs.push(serde_json::json!({
            "epoch": epoch, "train_loss": loss, "dev_macro_f1": scores.macro_f1,
            "dev_micro_f1": scores.micro.f1, "seconds": t0.elapsed().as_secs_f64(),
        }));
        if best.as_ref().is_none_or(|(f, _, _)| scores.macro_f1 > *f) {
            trainer.save_head(&head_path)?;
            best = Some((scores.macro_f1, epoch, all));
        }
    }
    let Some((f1, epoch, probs)) = best else {
        return Err(TrainError::NoSegments {
            path: a.train.clone(),
        });
    };
    let report = serde_json::json!({
        "layers": (from + 1..=layers).collect::<Vec<_>>(),
        "options": a.finetune_options,
        "epochs": epochs,
        "best_epoch": epoch,
        "best_dev_macro_f1": f1,
    });
    Ok((probs, report))
}

/// Folds of the cross-fitted reliability.
const CALIBRATION_FOLDS: u64 = 5;

/// Per label, Platt parameters fitted on all of `probs`, and the
/// reliability (10 bins) of raw and calibrated probabilities, the
/// calibrated ones cross-fitted: the rows of each fold (a topic's rows stay
/// together, folds by a hash of the topic) calibrated by parameters fitted
/// on the other folds.
fn calibrate(
    probs: &[[f64; 3]],
    gold: &[[bool; 3]],
    topics: &[&str],
) -> ([Platt; 3], serde_json::Value) {
    let fold = |t: &str| {
        // FNV-1a: stable across runs and platforms.
        t.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        }) % CALIBRATION_FOLDS
    };
    let folds: Vec<u64> = topics.iter().map(|t| fold(t)).collect();
    let mut params = [(1.0, 0.0); 3];
    let mut report = serde_json::Map::new();
    for (i, label) in STANCE_LABELS.iter().enumerate() {
        let scores: Vec<f64> = probs.iter().map(|p| p[i]).collect();
        let ys: Vec<bool> = gold.iter().map(|g| g[i]).collect();
        params[i] = fit_platt(&scores, &ys);
        let mut crossed = vec![0.0; scores.len()];
        for k in 0..CALIBRATION_FOLDS {
            let (xs, gs): (Vec<f64>, Vec<bool>) = scores
                .iter()
                .zip(&ys)
                .zip(&folds)
                .filter(|(_, f)| **f != k)
                .map(|((s, g), _)| (*s, *g))
                .unzip();
            let p = fit_platt(&xs, &gs);
            for ((c, s), f) in crossed.iter_mut().zip(&scores).zip(&folds) {
                if *f == k {
                    *c = calibration::apply(p, *s);
                }
            }
        }
        let raw: Reliability = reliability(&scores, &ys, 10);
        let cal: Reliability = reliability(&crossed, &ys, 10);
        report.insert(
            (*label).to_owned(),
            serde_json::json!({ "raw": raw, "calibrated": cal, "platt": params[i] }),
        );
    }
    (params, serde_json::Value::Object(report))
}
