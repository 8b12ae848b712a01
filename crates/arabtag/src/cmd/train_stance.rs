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
//! L2-normalised last hidden state (`Tagger::segment_embeddings`), what the
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
//!
//! `arabtag train calibrate --model CONFIG --dev FILE --out DIR` fits the
//! same Platt calibration and thresholds for the config's own `[stance]`
//! method, as it is (its `stance.calibration` not applied): for a stance
//! head trained elsewhere (the one on the NER network, `stance.trunk =
//! "ner"`), or a swapped transformer. `DIR/calibration.json` holds the
//! parameters, the cross-fitted reliability and the dev scores.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use arabtag_train::finetune::{
    DEFAULT_BATCH_TOKENS, DEFAULT_DROPOUT, DEFAULT_WARMUP, FinetuneOptions,
};
use arabtag_train::stance_run::{StanceRun, run_calibrate, run_stance};
use clap::Args;

use super::Status;
use crate::output::{Terminal, stderr_line};

#[derive(Debug, Args)]
pub struct StanceArgs {
    /// Training segments (JSONL: id, topic, text, labels).
    #[arg(long, value_name = "FILE")]
    pub train: PathBuf,
    /// Dev segments (same format), for the thresholds and the choice.
    #[arg(long, value_name = "FILE")]
    pub dev: PathBuf,
    /// The model config (its encoder, and its [stance] method to calibrate).
    #[arg(long, value_name = "CONFIG", default_value = super::DEFAULT_MODEL, env = "ARABTAG_MODEL")]
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
    /// Fine-tune the encoder's top N layers with the head (0: the head
    /// alone on the frozen encoder). The head trained alone is the start.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub finetune: usize,
    /// Fine-tuning epochs (with --finetune).
    #[arg(long, default_value_t = 4)]
    pub finetune_epochs: usize,
    /// Peak learning rate of the fine-tuned layers.
    #[arg(long, default_value_t = 5e-5)]
    pub encoder_lr: f64,
    /// Peak learning rate of the head while fine-tuning.
    #[arg(long, default_value_t = 1e-3)]
    pub head_lr: f64,
    /// Seed of the fine-tuning's shuffling and dropout.
    #[arg(long, default_value_t = 17)]
    pub seed: u64,
    /// Never touch the network (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// The model config whose `[stance]` method is calibrated.
    #[arg(long, value_name = "CONFIG", default_value = super::DEFAULT_MODEL, env = "ARABTAG_MODEL")]
    pub model: PathBuf,
    /// Dev segments (JSONL: id, topic, text, labels), each scored as one
    /// segment.
    #[arg(long, value_name = "FILE")]
    pub dev: PathBuf,
    /// Folder for calibration.json.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Never touch the network (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
}

fn toml_calibration(c: &[(f64, f64); 3]) -> String {
    format!(
        "calibration = {{ mediation = [{:.4}, {:.4}], conflict = [{:.4}, {:.4}], energy = [{:.4}, {:.4}] }}",
        c[0].0, c[0].1, c[1].0, c[1].1, c[2].0, c[2].1
    )
}

pub fn calibrate(a: &CalibrateArgs) -> Result<Status> {
    let model = super::verified_model(&a.model, a.offline)?;
    let outcome = run_calibrate(&a.model, &model, &a.dev, &a.out, &Terminal)?;
    stderr_line(&format!(
        "{}: dev macro-F1 {:.3} uncalibrated, {:.3} calibrated (thresholds fitted on dev)",
        outcome.method, outcome.raw_dev.macro_f1, outcome.dev.macro_f1
    ));
    println!(
        "# [stance] method \"{}\" of {}, calibrated on {}:",
        outcome.method,
        a.model.display(),
        a.dev.display()
    );
    println!(
        "{}\n{}",
        toml_thresholds(&outcome.thresholds),
        toml_calibration(&outcome.calibration)
    );
    Ok(Status::Ok)
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
        a.finetune == 0 || a.finetune_epochs >= 1,
        "--finetune-epochs must be at least 1"
    );
    ensure!(
        a.lr > 0.0 && a.lr.is_finite(),
        "--lr must be a positive number"
    );
    let model = super::verified_model(&a.model, a.offline)?;
    let run = StanceRun {
        train: a.train.clone(),
        dev: a.dev.clone(),
        model: a.model.clone(),
        out: a.out.clone(),
        epochs: a.epochs,
        lr: a.lr,
        weight_decay: a.weight_decay,
        finetune: a.finetune,
        finetune_options: FinetuneOptions {
            epochs: a.finetune_epochs,
            encoder_lr: a.encoder_lr,
            head_lr: a.head_lr,
            weight_decay: a.weight_decay,
            warmup: DEFAULT_WARMUP,
            dropout: DEFAULT_DROPOUT,
            batch_tokens: DEFAULT_BATCH_TOKENS,
            seed: a.seed,
        },
    };
    let outcome = run_stance(&run, &model, &Terminal)?;
    stderr_line(&format!(
        "head: train loss {:.4}; dev macro-F1 {:.3}, micro-F1 {:.3} (thresholds fitted on dev)",
        outcome.loss, outcome.head_dev.macro_f1, outcome.head_dev.micro.f1
    ));
    println!(
        "# [stance] with the trained head ({}):",
        outcome.head_path.display()
    );
    println!(
        "method = \"head\"\n{}\n{}",
        toml_thresholds(&outcome.head_thresholds),
        toml_calibration(&outcome.head_calibration)
    );
    if let Some((own_method, t, dev)) = &outcome.own {
        stderr_line(&format!(
            "{own_method}: dev macro-F1 {:.3}, micro-F1 {:.3} (thresholds fitted on dev)",
            dev.macro_f1, dev.micro.f1
        ));
        println!(
            "# [stance] method \"{own_method}\" of {}:",
            a.model.display()
        );
        println!("{}", toml_thresholds(t));
    }
    stderr_line(&format!("better on dev: {}", outcome.better));
    Ok(Status::Ok)
}
