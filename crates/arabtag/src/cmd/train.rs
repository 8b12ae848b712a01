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
//! L (`arabtag_infer::train::finetune`): the state of layer `L-K` at every
//! position is cached once, checkpoints hold the layers, the head and the
//! optimiser, and the released `head.safetensors` carries the layers (f16).
//! The learning rate warms up and decays over `--epochs`, so resume a run
//! with the `--epochs` it started with.
//!
//! The training file's LAST 10% of sentences (in order) are the dev set
//! (`data/anercorp/SOURCE.md`); the rest trains. The features (each word's
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
//!   `arabtag_infer::train::head`): the epoch with the best dev F1 under
//!   BIO-constrained Viterbi;
//! - `history.json`: per epoch the train and dev loss, dev F1 (seqeval
//!   default mode) argmax and Viterbi, seconds; with the inputs' sha256.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use arabtag_eval::conll::seqeval::{classification, default_chunks};
use arabtag_eval::conll::{ConllFile, Scores};
use arabtag_infer::config::{FileRole, ModelConfig, ResolveOptions};
use arabtag_infer::models::BertModel;
use arabtag_infer::pipeline::LabelScheme;
use arabtag_infer::pipeline::Wrapping;
use arabtag_infer::pipeline::bio::{WordLabel, argmax_labels, viterbi_labels};
use arabtag_infer::train::features::WindowPlan;
use arabtag_infer::train::features::{CACHE_FORMAT, DEFAULT_BATCH_TOKENS, DEFAULT_STRIDE};
use arabtag_infer::train::finetune::{
    DEFAULT_BATCH_TOKENS as FT_BATCH_TOKENS, DEFAULT_DROPOUT, DEFAULT_ENCODER_LR,
    DEFAULT_TRAIN_WINDOW, DEFAULT_WARMUP, FinetuneOptions, FinetuneTrainer, LAYER_CACHE_FORMAT,
    build_layer_cache, load_layer_cache, save_layer_cache,
};
use arabtag_infer::train::head::{
    DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_SEED, DEFAULT_WEIGHT_DECAY,
};
use arabtag_infer::train::{
    AlignedSentence, CacheKey, EpochReport, FeatureSpec, HEAD_FORMAT, HeadTrainer, LayerHeadMeta,
    TaggedSentence, TrainOptions, align_sentence, extract_features, label_set, load_bert,
    load_cache, save_cache, write_json,
};
use arabtag_tokenizer::SubwordEncoder;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Status;
use crate::output::stderr_line;

/// Default model config.
pub const DEFAULT_MODEL: &str = "models/default.toml";
/// Default feature layers (MEASURED.md: the best frozen mix for e5-small).
pub const DEFAULT_LAYERS: &str = "6,8,10,12";
/// Default feature cache folder.
pub const DEFAULT_CACHE: &str = "target/arabtag-features";
/// Tenths of the training file's sentences (the last ones) kept for dev.
const DEV_TENTHS: usize = 1;

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
}

#[derive(Debug, Args)]
pub struct NerArgs {
    /// CoNLL training file (`token TAG` lines, IOB2, blank line between sentences).
    #[arg(long, value_name = "FILE")]
    pub train: PathBuf,
    /// The model config (TOML) naming the encoder (e5, BERT or XLM-RoBERTa).
    #[arg(long, value_name = "CONFIG", default_value = DEFAULT_MODEL)]
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
    }
}

/// What a run was made from, written beside the history.
#[derive(Debug, Serialize)]
struct Provenance<'a> {
    crate_version: &'static str,
    model_config: &'a Path,
    train_file: &'a Path,
    train_sha256: &'a str,
    encoder_sha256: &'a str,
    tokenizer_sha256: &'a str,
    train_sentences: usize,
    dev_sentences: usize,
    layers: &'a [usize],
    labels: &'a [String],
    history: &'a [EpochReport],
    /// The saved head's epoch and its dev scores with the counts behind
    /// them (argmax, then Viterbi).
    best: Option<&'a serde_json::Value>,
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

/// What an epoch gave, printed as one line.
fn epoch_report(
    epoch: usize,
    (train_loss, dev_loss): (f64, f64),
    (by_argmax, by_viterbi): (&Scores, &Scores),
    started: Instant,
) -> EpochReport {
    let (f1_argmax, f1_viterbi) = (by_argmax.micro.f1, by_viterbi.micro.f1);
    let seconds = started.elapsed().as_secs_f64();
    stderr_line(&format!(
        "epoch {epoch}: train loss {train_loss:.4}, dev loss {dev_loss:.4}, dev F1 argmax {:.2} / Viterbi {:.2} ({seconds:.1} s)",
        100.0 * f1_argmax,
        100.0 * f1_viterbi,
    ));
    EpochReport {
        epoch,
        train_loss,
        dev_loss: Some(dev_loss),
        dev_f1_argmax: Some(f1_argmax),
        dev_f1_viterbi: Some(f1_viterbi),
        seconds,
    }
}

/// The hex sha256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn bar(len: u64, what: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let template = format!("{{bar:40}} {{pos}}/{{len}} {what}, {{per_sec}}, {{eta}} left");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

fn ner(a: &NerArgs) -> Result<Status> {
    validate(a)?;
    let mut options = ResolveOptions::from_env();
    options.offline |= a.offline;
    let model = ModelConfig::from_file(&a.model)
        .and_then(|config| config.resolve(&options))
        .and_then(|resolved| resolved.verify())
        .with_context(|| format!("model config {}", a.model.display()))?;
    let resolved = model.model();
    let sha = |role| {
        model
            .files()
            .iter()
            .find(|f| f.role == role)
            .map(|f| f.sha256.to_hex())
            .unwrap_or_default()
    };
    let (encoder_sha, tokenizer_sha) = (sha(FileRole::Weights), sha(FileRole::Tokenizer));
    let bert = &load_bert(&model).context("cannot load the encoder")?;
    let hidden = bert.dims().hidden_size;
    let tokenizer = SubwordEncoder::from_file(model.tokenizer(), resolved.normalizer)
        .context("cannot load the tokenizer")?;

    let conll = ConllFile::read(&a.train)?;
    let sentences: Vec<TaggedSentence> = conll
        .sentences
        .iter()
        .map(|s| TaggedSentence {
            words: s.iter().map(|t| t.text.clone()).collect(),
            tags: s.iter().map(|t| t.tag.clone()).collect(),
        })
        .collect();
    let n_train = sentences.len() * (10 - DEV_TENTHS) / 10;
    ensure!(
        n_train > 0 && n_train < sentences.len(),
        "{}: too few sentences for a train/dev split",
        a.train.display()
    );
    let scheme = label_set(&sentences)?;
    let aligned = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| align_sentence(&tokenizer, &scheme, i, s))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot align {}", a.train.display()))?;

    let train_sha = sha256_file(&a.train)?;
    if a.finetune > 0 {
        return finetune(
            a,
            &Setup {
                bert,
                tokenizer: &tokenizer,
                normalizer: format!("{:?}", resolved.normalizer),
                encoder_sha: &encoder_sha,
                tokenizer_sha: &tokenizer_sha,
                train_sha: &train_sha,
                sentences: &sentences,
                aligned: &aligned,
                scheme: &scheme,
                n_train,
            },
        );
    }
    let spec = FeatureSpec {
        layers: a.layers.clone(),
        max_len: None,
        stride: DEFAULT_STRIDE,
        batch_tokens: DEFAULT_BATCH_TOKENS,
    };
    let key = CacheKey {
        format: CACHE_FORMAT,
        model_sha256: encoder_sha.clone(),
        tokenizer_sha256: tokenizer_sha.clone(),
        normalizer: format!("{:?}", resolved.normalizer),
        data_sha256: train_sha.clone(),
        layers: spec.layers.clone(),
        max_len: spec.max_len,
        stride: spec.stride,
    };
    let features = match load_cache(&a.cache, &key)? {
        Some(f) => {
            stderr_line(&format!("features: cache {}", key.path(&a.cache).display()));
            f
        }
        None => {
            let tokens: usize = aligned.iter().map(|s| s.ids.len()).sum();
            let progress = bar(tokens as u64, "tokens");
            let started = Instant::now();
            let f = extract_features(
                bert,
                tokenizer.special_tokens(),
                &aligned,
                &spec,
                &mut |n| progress.inc(n as u64),
            )?;
            progress.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            let path = save_cache(&a.cache, &key, &f)?;
            stderr_line(&format!(
                "features: {tokens} subtokens of {} sentences in {secs:.1} s ({:.0} subtokens/s), cached in {}",
                aligned.len(),
                tokens as f64 / secs.max(1e-9),
                path.display()
            ));
            f
        }
    };
    ensure!(
        features.sentences() == aligned.len() && features.dim == hidden * a.layers.len(),
        "the feature cache does not fit the data; delete {}",
        key.path(&a.cache).display()
    );

    let labels: Vec<u32> = aligned.iter().flat_map(|s| s.labels.clone()).collect();
    let words_of = |range: std::ops::Range<usize>| -> Vec<usize> {
        (features.offsets[range.start]..features.offsets[range.end])
            .filter(|&w| features.present[w])
            .collect()
    };
    let train_words = words_of(0..n_train);
    let dev_words = words_of(n_train..sentences.len());

    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut trainer = if let Some(dir) = latest_checkpoint(&a.out)?.filter(|_| a.resume) {
        let t = HeadTrainer::load_checkpoint(&dir)?;
        ensure!(
            t.state().labels == scheme.names() && t.state().dim == features.dim,
            "the checkpoint in {} was trained on other labels or features",
            a.out.display()
        );
        stderr_line(&format!("resuming after epoch {}", t.state().epoch));
        t
    } else {
        if a.resume {
            stderr_line(&format!(
                "nothing to resume in {} (no latest.json): starting at epoch 1",
                a.out.display()
            ));
        }
        let options = TrainOptions {
            epochs: a.epochs,
            lr: a.lr,
            weight_decay: a.weight_decay,
            batch_size: a.batch_size,
            seed: a.seed,
        };
        HeadTrainer::new(scheme.names().to_vec(), features.dim, options)?
    };
    trainer.set_epochs(a.epochs);

    let dev_sentences = &aligned[n_train..];
    let dev_gold: Vec<Vec<String>> = sentences[n_train..]
        .iter()
        .map(|s| s.tags.clone())
        .collect();
    let mut best = best_viterbi(&trainer.state().history);
    // The saved head's epoch and scores (a resumed run keeps the earlier).
    let mut best_scores = resumed_best(&a.out, a.resume);
    while trainer.state().epoch < a.epochs {
        let started = Instant::now();
        let progress = bar(train_words.len() as u64, "words");
        let train_loss = trainer.train_epoch(&features, &labels, &train_words, &mut |n| {
            progress.inc(n as u64)
        })?;
        progress.finish_and_clear();
        let (dev_loss, probs) = trainer.evaluate(&features, &labels, &dev_words)?;
        let row_of: std::collections::HashMap<usize, usize> =
            dev_words.iter().enumerate().map(|(r, &w)| (w, r)).collect();
        let (by_argmax, by_viterbi) = dev_scores(
            &scheme,
            &features.offsets,
            n_train,
            dev_sentences.len(),
            &|w| row_of.get(&w).map(|&r| probs[r].clone()),
            &dev_gold,
        )?;
        let epoch = trainer.state().epoch;
        let f1_viterbi = by_viterbi.micro.f1;
        trainer.record(epoch_report(
            epoch,
            (train_loss, dev_loss),
            (&by_argmax, &by_viterbi),
            started,
        ));
        save_epoch(&a.out, epoch, |dir| Ok(trainer.save_checkpoint(dir)?))?;
        if f1_viterbi > best {
            best = f1_viterbi;
            best_scores = Some(serde_json::json!({
                "epoch": epoch, "dev_argmax": by_argmax, "dev_viterbi": by_viterbi,
            }));
            trainer.save_head(&a.out.join("head.safetensors"))?;
            let meta = LayerHeadMeta {
                format: HEAD_FORMAT.to_owned(),
                version: 1,
                layers: a.layers.clone(),
                hidden_size: hidden,
                labels: scheme.names().to_vec(),
                subtoken: "first".to_owned(),
                encoder_sha256: encoder_sha.clone(),
                finetuned: Vec::new(),
            };
            write_json(&a.out.join("head.json"), &meta)?;
        }
        write_json(
            &a.out.join("history.json"),
            &Provenance {
                crate_version: env!("CARGO_PKG_VERSION"),
                model_config: &a.model,
                train_file: &a.train,
                train_sha256: &train_sha,
                encoder_sha256: &encoder_sha,
                tokenizer_sha256: &tokenizer_sha,
                train_sentences: n_train,
                dev_sentences: dev_sentences.len(),
                layers: &a.layers,
                labels: scheme.names(),
                history: &trainer.state().history,
                best: best_scores.as_ref(),
            },
        )?;
    }
    Ok(Status::Ok)
}

/// Dev entity scores (seqeval default mode) with argmax and with
/// BIO-constrained Viterbi decoding. Sentence `i` owns words
/// `offsets[i]..offsets[i + 1]`; `probs` gives a word's label
/// probabilities (`None`: no prediction, read as `O`).
fn dev_scores(
    scheme: &LabelScheme,
    offsets: &[usize],
    first_sentence: usize,
    sentences: usize,
    probs: &dyn Fn(usize) -> Option<Vec<f32>>,
    gold: &[Vec<String>],
) -> Result<(Scores, Scores)> {
    let names = |labels: &[WordLabel]| -> Vec<String> {
        labels
            .iter()
            .map(|l| {
                l.and_then(|(i, _)| scheme.names().get(i).cloned())
                    .unwrap_or_else(|| "O".to_owned())
            })
            .collect()
    };
    let (mut by_argmax, mut by_viterbi) = (Vec::new(), Vec::new());
    for s in first_sentence..first_sentence + sentences {
        let scores: Vec<Option<Vec<f32>>> = (offsets[s]..offsets[s + 1]).map(probs).collect();
        by_argmax.push(names(&argmax_labels(&scores)));
        by_viterbi.push(names(&viterbi_labels(scheme, &scores)?));
    }
    let gold = default_chunks(gold);
    let score = |pred: &[Vec<String>]| classification(&gold, &default_chunks(pred));
    Ok((score(&by_argmax), score(&by_viterbi)))
}

/// What both training paths start from.
struct Setup<'a> {
    bert: &'a BertModel,
    tokenizer: &'a SubwordEncoder,
    normalizer: String,
    encoder_sha: &'a str,
    tokenizer_sha: &'a str,
    train_sha: &'a str,
    sentences: &'a [TaggedSentence],
    aligned: &'a [AlignedSentence],
    scheme: &'a LabelScheme,
    /// Sentences before this one train; the rest are dev.
    n_train: usize,
}

/// The best dev F1 (Viterbi) of the epochs in `history`.
fn best_viterbi(history: &[EpochReport]) -> f64 {
    history
        .iter()
        .filter_map(|r| r.dev_f1_viterbi)
        .fold(f64::NEG_INFINITY, f64::max)
}

/// A resumed run's saved-head epoch and scores (`best` of `history.json`
/// in `out`); `None` for a fresh run.
fn resumed_best(out: &Path, resume: bool) -> Option<serde_json::Value> {
    if !resume {
        return None;
    }
    std::fs::read_to_string(out.join("history.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("best").cloned())
        .filter(|b| !b.is_null())
}

/// Writes epoch `epoch`'s checkpoint into `out/checkpoints/epoch-NNN` with
/// `save`, then points `latest.json` at it.
fn save_epoch(out: &Path, epoch: usize, save: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let rel = format!("checkpoints/epoch-{epoch:03}");
    let dir = out.join(&rel);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    save(&dir)?;
    write_json(
        &out.join("latest.json"),
        &serde_json::json!({ "epoch": epoch, "checkpoint": rel }),
    )?;
    Ok(())
}

/// The checkpoint folder `latest.json` in `out` names, if any.
fn latest_checkpoint(out: &Path) -> Result<Option<PathBuf>> {
    let latest = out.join("latest.json");
    if !latest.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&latest)?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid JSON", latest.display()))?;
    let dir = value
        .get("checkpoint")
        .and_then(|c| c.as_str())
        .with_context(|| format!("{}: no `checkpoint`", latest.display()))?;
    Ok(Some(out.join(dir)))
}

/// Fine-tunes layers `L-K+1..=L` (`--layers L --finetune K`) with a head on
/// layer L. The state of layer `L-K` at every position is cached once.
fn finetune(a: &NerArgs, s: &Setup<'_>) -> Result<Status> {
    let bert = s.bert;
    let head_layer = a.layers[0];
    ensure!(
        head_layer <= bert.num_layers(),
        "--layers {head_layer}: the encoder has {} layers",
        bert.num_layers()
    );
    let from = head_layer - a.finetune;
    let trained: Vec<usize> = (from..head_layer).collect();
    let wrapping = Wrapping::from_special(s.tokenizer.special_tokens())?;
    let plan = WindowPlan::for_encoder(
        bert,
        &wrapping,
        Some(a.window),
        DEFAULT_STRIDE.min(a.window / 2),
        DEFAULT_BATCH_TOKENS,
    )?;
    let key = CacheKey {
        format: LAYER_CACHE_FORMAT,
        model_sha256: s.encoder_sha.to_owned(),
        tokenizer_sha256: s.tokenizer_sha.to_owned(),
        normalizer: s.normalizer.clone(),
        data_sha256: s.train_sha.to_owned(),
        layers: vec![from],
        max_len: Some(plan.max_len),
        stride: plan.stride,
    };
    let cache = match load_layer_cache(&a.cache, &key)? {
        Some(c) => {
            stderr_line(&format!(
                "layer {from} states: cache {}",
                key.path(&a.cache).display()
            ));
            c
        }
        None => {
            let tokens: usize = s.aligned.iter().map(|x| x.ids.len()).sum();
            let progress = bar(tokens as u64, "tokens");
            let started = Instant::now();
            let c = build_layer_cache(
                bert,
                s.tokenizer.special_tokens(),
                s.aligned,
                from,
                &plan,
                &mut |n| progress.inc(n as u64),
            )?;
            progress.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            let path = save_layer_cache(&a.cache, &key, &c)?;
            stderr_line(&format!(
                "layer {from} states: {tokens} subtokens of {} sentences in {secs:.1} s ({:.0} subtokens/s), cached in {}",
                s.aligned.len(),
                tokens as f64 / secs.max(1e-9),
                path.display()
            ));
            c
        }
    };
    ensure!(
        cache.word_offsets.len() == s.aligned.len() + 1,
        "the layer cache does not fit the data; delete {}",
        key.path(&a.cache).display()
    );
    let labels: Vec<u32> = s.aligned.iter().flat_map(|x| x.labels.clone()).collect();
    let (train_windows, dev_windows): (Vec<usize>, Vec<usize>) =
        (0..cache.windows.len()).partition(|&w| cache.windows[w].sentence < s.n_train);
    let train_positions: usize = train_windows.iter().map(|&w| cache.windows[w].len).sum();

    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let options = FinetuneOptions {
        epochs: a.epochs,
        encoder_lr: a.encoder_lr,
        head_lr: a.lr,
        weight_decay: a.weight_decay,
        warmup: a.warmup,
        dropout: a.dropout,
        batch_tokens: a.batch_tokens,
        seed: a.seed,
    };
    let mut trainer = match latest_checkpoint(&a.out)?.filter(|_| a.resume) {
        Some(dir) => {
            let t = FinetuneTrainer::load_checkpoint(bert, &dir)?;
            ensure!(
                t.state().labels == s.scheme.names() && t.state().trained == trained,
                "the checkpoint in {} trained other labels or layers",
                a.out.display()
            );
            stderr_line(&format!("resuming after epoch {}", t.state().epoch));
            t
        }
        None => {
            if a.resume {
                stderr_line(&format!(
                    "nothing to resume in {} (no latest.json): starting at epoch 1",
                    a.out.display()
                ));
            }
            FinetuneTrainer::new(bert, trained.clone(), s.scheme.names().to_vec(), options)?
        }
    };
    trainer.set_epochs(a.epochs);
    let dev_gold: Vec<Vec<String>> = s.sentences[s.n_train..]
        .iter()
        .map(|x| x.tags.clone())
        .collect();
    let dev_count = s.sentences.len() - s.n_train;
    let score = |probs: &std::collections::BTreeMap<usize, Vec<f32>>| {
        dev_scores(
            s.scheme,
            &cache.word_offsets,
            s.n_train,
            dev_count,
            &|w| probs.get(&w).cloned(),
            &dev_gold,
        )
    };
    let history_path = a.out.join("history.json");
    let mut best_scores = resumed_best(&a.out, a.resume);
    let mut best = best_viterbi(&trainer.state().history);
    let finetuned: Vec<usize> = trained.iter().map(|i| i + 1).collect();
    while trainer.state().epoch < a.epochs {
        let started = Instant::now();
        let progress = bar(train_positions as u64, "positions");
        let train_loss = trainer.train_epoch(&cache, &labels, &train_windows, &mut |n| {
            progress.inc(n as u64)
        })?;
        progress.finish_and_clear();
        let (dev_loss, probs) = trainer.evaluate(&cache, &labels, &dev_windows, false)?;
        let (by_argmax, by_viterbi) = score(&probs)?;
        let epoch = trainer.state().epoch;
        let f1_viterbi = by_viterbi.micro.f1;
        trainer.record(epoch_report(
            epoch,
            (train_loss, dev_loss),
            (&by_argmax, &by_viterbi),
            started,
        ));
        save_epoch(&a.out, epoch, |dir| Ok(trainer.save_checkpoint(dir)?))?;
        if f1_viterbi > best {
            best = f1_viterbi;
            // The released file stores the layers in 8 and 16 bits: score that too.
            let (_, rounded) = trainer.evaluate(&cache, &labels, &dev_windows, true)?;
            let (_, rounded_viterbi) = score(&rounded)?;
            best_scores = Some(serde_json::json!({
                "epoch": epoch, "dev_argmax": by_argmax, "dev_viterbi": by_viterbi,
                "dev_viterbi_stored": rounded_viterbi,
            }));
            trainer.save_head(&a.out.join("head.safetensors"))?;
            let meta = LayerHeadMeta {
                format: HEAD_FORMAT.to_owned(),
                version: 2,
                layers: vec![head_layer],
                hidden_size: bert.dims().hidden_size,
                labels: s.scheme.names().to_vec(),
                subtoken: "first".to_owned(),
                encoder_sha256: s.encoder_sha.to_owned(),
                finetuned: finetuned.clone(),
            };
            write_json(&a.out.join("head.json"), &meta)?;
        }
        write_json(
            &history_path,
            &serde_json::json!({
                "crate_version": env!("CARGO_PKG_VERSION"),
                "model_config": a.model,
                "train_file": a.train,
                "train_sha256": s.train_sha,
                "encoder_sha256": s.encoder_sha,
                "tokenizer_sha256": s.tokenizer_sha,
                "train_sentences": s.n_train,
                "dev_sentences": dev_count,
                "layers": [head_layer],
                "finetuned": finetuned,
                "window": plan.max_len,
                "stride": plan.stride,
                "labels": s.scheme.names(),
                "options": trainer.state().options,
                "history": trainer.state().history,
                "best": best_scores,
            }),
        )?;
    }
    Ok(Status::Ok)
}

/// Writes a JSON report (pretty, with a final newline).
pub fn write_report(path: &Path, value: &serde_json::Value) -> Result<()> {
    Ok(write_json(path, value)?)
}
