//! `arabtag train ner`: a NER head over the frozen encoder's features, or
//! the top encoder layers fine-tuned with it (`--finetune K`).
//!
//! ```text
//! arabtag train ner --train data/anercorp/ANERCorp_CamelLab_train.txt \
//!     --model models/default.toml --out DIR [--layers 6,8,10,12] \
//!     [--epochs N] [--lr X] [--seed S] [--batch-size B] [--cache DIR] [--resume]
//! arabtag train ner ... --layers L --finetune K [--encoder-lr X] [--warmup F]
//!     [--dropout P] [--batch-tokens N] [--window N]
//! ```
//!
//! With `--finetune K`, layers `L-K+1..=L` are trained with a head on layer
//! L (`arabtag_train::finetune`): the state of layer `L-K` at every
//! position is cached once, checkpoints hold the layers, the head and the
//! optimiser, and the released `head.safetensors` carries the layers (f16).
//! The learning rate warms up and decays over `--epochs`, so resume a run
//! with the `--epochs` it started with.
//!
//! `--dev FILE` names the dev set; without it the training file's LAST 10%
//! of sentences (in order) are the dev set (`data/anercorp/SOURCE.md`) and
//! the rest trains. The features (each word's
//! first subtoken, the chosen layers concatenated) are extracted once into
//! `--cache` (default `target/arabtag-features`), keyed by the encoder's and
//! tokenizer's sha256, the normaliser, the layers, the windowing and the
//! training file's sha256; a later run with the same key reuses them.
//!
//! Output in `--out`:
//! - `checkpoints/epoch-NNN/` after every epoch (`head.safetensors`,
//!   `optimizer.safetensors`, `state.json`) and `latest.json` naming the last
//!   one; `--resume` continues from it (with `--epochs` the new total);
//! - `head.safetensors` + `head.json` (format `arabtag-layer-head`, see
//!   `arabtag_train::head`): the epoch with the best dev F1 under
//!   BIO-constrained Viterbi;
//! - `history.json`: per epoch the train and dev loss, dev F1 (seqeval
//!   default mode) argmax and Viterbi, seconds; with the inputs' sha256.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use arabtag_train::finetune::{
    DEFAULT_BATCH_TOKENS as FT_BATCH_TOKENS, DEFAULT_DROPOUT, DEFAULT_ENCODER_LR,
    DEFAULT_TRAIN_WINDOW, DEFAULT_WARMUP,
};
use arabtag_train::head::{
    DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_SEED, DEFAULT_WEIGHT_DECAY,
};
use arabtag_train::{NerRun, run_ner};
use clap::{Args, Subcommand};

use super::Status;
use crate::output::Terminal;

/// Default feature layers (MEASURED.md: the best frozen mix for e5-small).
pub const DEFAULT_LAYERS: &str = "6,8,10,12";
/// Default feature cache folder.
pub const DEFAULT_CACHE: &str = "target/arabtag-features";

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(subcommand)]
    pub task: TrainTask,
}

#[derive(Debug, Subcommand)]
pub enum TrainTask {
    /// A token head on frozen encoder features (first subtoken of each word,
    /// chosen layers concatenated), dev = the last 10% of --train.
    Ner(NerArgs),
    /// A multi-label stance head on segment embeddings, and thresholds for
    /// it and the config's own method calibrated on dev.
    Stance(super::train_stance::StanceArgs),
    /// Platt calibration and thresholds for the config's own `[stance]`
    /// method (whatever it is), fitted on a dev file; prints the TOML lines.
    Calibrate(super::train_stance::CalibrateArgs),
}

#[derive(Debug, Args)]
pub struct NerArgs {
    /// CoNLL training file (`token TAG` lines, IOB2, blank line between sentences).
    #[arg(long, value_name = "FILE")]
    pub train: PathBuf,
    /// CoNLL dev file (the epoch kept is the best on it); without it, the
    /// last 10% of --train's sentences are dev.
    #[arg(long, value_name = "FILE")]
    pub dev: Option<PathBuf>,
    /// The model config (TOML) naming the encoder (e5, BERT or XLM-RoBERTa).
    #[arg(long, value_name = "CONFIG", default_value = super::DEFAULT_MODEL, env = "ARABTAG_MODEL")]
    pub model: PathBuf,
    /// Folder for checkpoints and the trained head.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Hidden-state layers to concatenate (0 = embeddings, 1-based).
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_LAYERS)]
    pub layers: Vec<usize>,
    /// Total epochs (with --resume: the total, counting those done).
    #[arg(long, default_value_t = DEFAULT_EPOCHS)]
    pub epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = DEFAULT_LR)]
    pub lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = DEFAULT_WEIGHT_DECAY)]
    pub weight_decay: f64,
    /// Words per mini-batch.
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
    /// Seed of the initialisation and the shuffling.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Feature cache folder.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CACHE)]
    pub cache: PathBuf,
    /// Fine-tune the top K encoder layers up to the single layer named by
    /// --layers (its output feeds the head); 0 trains a head on frozen
    /// features.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub finetune: usize,
    /// Fine-tuning: peak learning rate of the encoder layers (--lr is the head's).
    #[arg(long, default_value_t = DEFAULT_ENCODER_LR)]
    pub encoder_lr: f64,
    /// Fine-tuning: share of the steps with a linear warm-up (then linear decay).
    #[arg(long, default_value_t = DEFAULT_WARMUP)]
    pub warmup: f64,
    /// Fine-tuning: dropout on the hidden states.
    #[arg(long, default_value_t = DEFAULT_DROPOUT)]
    pub dropout: f32,
    /// Fine-tuning: padded positions per batch.
    #[arg(long, default_value_t = FT_BATCH_TOKENS)]
    pub batch_tokens: usize,
    /// Fine-tuning: content tokens per training window.
    #[arg(long, default_value_t = DEFAULT_TRAIN_WINDOW)]
    pub window: usize,
    /// Continue from the last checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Never touch the network (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
}

pub fn run(args: &TrainArgs) -> Result<Status> {
    match &args.task {
        TrainTask::Ner(a) => ner(a),
        TrainTask::Stance(a) => super::train_stance::run(a),
        TrainTask::Calibrate(a) => super::train_stance::calibrate(a),
    }
}

fn validate(a: &NerArgs) -> Result<()> {
    ensure!(
        !a.layers.is_empty(),
        "--layers must name at least one layer"
    );
    ensure!(a.epochs >= 1, "--epochs must be at least 1");
    ensure!(
        a.lr > 0.0 && a.lr.is_finite(),
        "--lr must be a positive number"
    );
    ensure!(
        a.weight_decay >= 0.0 && a.weight_decay.is_finite(),
        "--weight-decay must be 0 or more"
    );
    ensure!(a.batch_size >= 1, "--batch-size must be at least 1");
    if a.finetune > 0 {
        ensure!(
            a.layers.len() == 1 && a.layers[0] >= a.finetune,
            "--finetune {k} needs --layers to name one layer L >= {k} (layers L-{k}+1..L are trained, the head reads L)",
            k = a.finetune
        );
        ensure!(
            a.encoder_lr >= 0.0 && a.encoder_lr.is_finite(),
            "--encoder-lr must be 0 or more"
        );
        ensure!((0.0..1.0).contains(&a.warmup), "--warmup must be in [0, 1)");
        ensure!(
            (0.0..1.0).contains(&a.dropout),
            "--dropout must be in [0, 1)"
        );
        ensure!(a.batch_tokens >= 1, "--batch-tokens must be at least 1");
        ensure!(a.window >= 2, "--window must be at least 2");
    }
    Ok(())
}

fn ner(a: &NerArgs) -> Result<Status> {
    validate(a)?;
    let model = super::verified_model(&a.model, a.offline)?;
    let run = NerRun {
        train: a.train.clone(),
        dev: a.dev.clone(),
        model: a.model.clone(),
        out: a.out.clone(),
        layers: a.layers.clone(),
        epochs: a.epochs,
        lr: a.lr,
        weight_decay: a.weight_decay,
        batch_size: a.batch_size,
        seed: a.seed,
        cache: a.cache.clone(),
        finetune: a.finetune,
        encoder_lr: a.encoder_lr,
        warmup: a.warmup,
        dropout: a.dropout,
        batch_tokens: a.batch_tokens,
        window: a.window,
        resume: a.resume,
    };
    run_ner(&run, &model, &Terminal)?;
    Ok(Status::Ok)
}
