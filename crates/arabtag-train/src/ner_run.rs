//! NER training runs, as `arabtag train ner` drives them: the training
//! file split into train and dev (its last tenth, in order, unless a dev
//! file is given), features or
//! layer states extracted once and cached, epochs run, a checkpoint saved
//! per epoch (`--resume` continues from the last, exactly), the epoch best
//! on dev (Viterbi) saved as the head, and the history with its provenance.
//!
//! Output in `out`:
//! - `checkpoints/epoch-NNN/` after every epoch and `latest.json` naming the
//!   last one;
//! - `head.safetensors` + `head.json` (format `arabtag-layer-head`): the
//!   epoch with the best dev F1 under BIO-constrained Viterbi;
//! - `history.json`: per epoch the train and dev loss, dev F1 (seqeval
//!   default mode) argmax and Viterbi, seconds; with the inputs' sha256.

use std::path::{Path, PathBuf};
use std::time::Instant;

use arabtag_eval::conll::seqeval::{classification, default_chunks};
use arabtag_eval::conll::{ConllFile, Scores};
use arabtag_infer::config::{FileRole, VerifiedModel};
use arabtag_infer::loaded::load_bert;
use arabtag_infer::models::BertModel;
use arabtag_infer::pipeline::bio::{WordLabel, argmax_labels, viterbi_labels};
use arabtag_infer::pipeline::{LabelScheme, Wrapping};
use arabtag_tokenizer::SubwordEncoder;
use serde::Serialize;

use crate::features::{CACHE_FORMAT, DEFAULT_BATCH_TOKENS, DEFAULT_STRIDE, WindowPlan};
use crate::files::{RunObserver, sha256_file};
use crate::finetune::{
    FinetuneOptions, FinetuneTrainer, LAYER_CACHE_FORMAT, build_layer_cache, load_layer_cache,
    save_layer_cache,
};
use crate::{
    AlignedSentence, CacheKey, EpochReport, FeatureSpec, HEAD_FORMAT, HeadTrainer, LayerHeadMeta,
    TaggedSentence, TrainError, TrainOptions, align_sentence, extract_features, label_set,
    load_cache, save_cache, write_json,
};

/// Tenths of the training file's sentences (its last ones) held out as dev.
const DEV_TENTHS: usize = 1;

/// What a NER training run is asked to do (`arabtag train ner`'s options,
/// checked by the caller).
#[derive(Debug, Clone)]
pub struct NerRun {
    /// The CoNLL training file (its last tenth is dev when `dev` is `None`).
    pub train: PathBuf,
    /// A CoNLL dev file; `None`: the training file's last tenth.
    pub dev: Option<PathBuf>,
    /// The model config's path, for the provenance.
    pub model: PathBuf,
    /// The output folder.
    pub out: PathBuf,
    /// Frozen: the layers whose states the head reads, concatenated;
    /// fine-tuning: the one layer L the head reads.
    pub layers: Vec<usize>,
    pub epochs: usize,
    /// The head's learning rate.
    pub lr: f64,
    pub weight_decay: f64,
    /// Words per step (frozen features).
    pub batch_size: usize,
    pub seed: u64,
    /// The feature and layer-state cache folder.
    pub cache: PathBuf,
    /// Layers `L-K+1..=L` fine-tuned (0: a head on frozen layers).
    pub finetune: usize,
    pub encoder_lr: f64,
    /// Fraction of the steps the learning rate warms up over.
    pub warmup: f64,
    pub dropout: f32,
    /// Positions per fine-tuning step.
    pub batch_tokens: usize,
    /// Content tokens per training window (fine-tuning).
    pub window: usize,
    /// Continue from the last checkpoint in `out`.
    pub resume: bool,
}

/// What a run was made from, written beside the history.
#[derive(Debug, Serialize)]
struct Provenance<'a> {
    crate_version: &'static str,
    model_config: &'a Path,
    train_file: &'a Path,
    dev_file: Option<&'a Path>,
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

/// What an epoch gave, printed as one line.
fn epoch_report(
    obs: &dyn RunObserver,
    epoch: usize,
    (train_loss, dev_loss): (f64, f64),
    (by_argmax, by_viterbi): (&Scores, &Scores),
    started: Instant,
) -> EpochReport {
    let (f1_argmax, f1_viterbi) = (by_argmax.micro.f1, by_viterbi.micro.f1);
    let seconds = started.elapsed().as_secs_f64();
    obs.line(&format!(
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

/// Runs `run` on `model` (whose encoder must be a BERT-family one):
/// a head on frozen layers, or fine-tuning when `run.finetune > 0`.
pub fn run_ner(a: &NerRun, model: &VerifiedModel, obs: &dyn RunObserver) -> Result<(), TrainError> {
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
    let bert = &load_bert(model)?;
    let hidden = bert.dims().hidden_size;
    let tokenizer = SubwordEncoder::from_file(model.tokenizer(), resolved.normalizer)?;

    let mut sentences = read_tagged(&a.train)?;
    let n_train = match &a.dev {
        Some(dev) => {
            let n = sentences.len();
            let dev_sentences = read_tagged(dev)?;
            if dev_sentences.is_empty() {
                return Err(TrainError::TooFewSentences {
                    path: dev.clone(),
                    sentences: 0,
                });
            }
            sentences.extend(dev_sentences);
            n
        }
        None => sentences.len() * (10 - DEV_TENTHS) / 10,
    };
    if n_train == 0 || n_train >= sentences.len() {
        return Err(TrainError::TooFewSentences {
            path: a.train.clone(),
            sentences: sentences.len(),
        });
    }
    let scheme = label_set(&sentences)?;
    let aligned = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| align_sentence(&tokenizer, &scheme, i, s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TrainError::Align {
            path: a.train.clone(),
            source: Box::new(source),
        })?;

    // The caches and the provenance name the data: the training file's
    // sha256, then the dev file's when there is one.
    let train_sha = match &a.dev {
        Some(dev) => format!("{}+dev:{}", sha256_file(&a.train)?, sha256_file(dev)?),
        None => sha256_file(&a.train)?,
    };
    if a.finetune > 0 {
        return finetune(
            a,
            obs,
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
    let features = cached(
        obs,
        "features",
        &key.path(&a.cache),
        &aligned,
        || load_cache(&a.cache, &key),
        |progress| extract_features(bert, tokenizer.special_tokens(), &aligned, &spec, progress),
        |f| save_cache(&a.cache, &key, f),
    )?;
    if features.sentences() != aligned.len() || features.dim != hidden * a.layers.len() {
        return Err(TrainError::CacheMismatch {
            path: key.path(&a.cache),
        });
    }

    let labels: Vec<u32> = aligned.iter().flat_map(|s| s.labels.clone()).collect();
    let words_of = |range: std::ops::Range<usize>| -> Vec<usize> {
        (features.offsets[range.start]..features.offsets[range.end])
            .filter(|&w| features.present[w])
            .collect()
    };
    let train_words = words_of(0..n_train);
    let dev_words = words_of(n_train..sentences.len());

    create_dir(&a.out)?;
    let mut trainer = if let Some(dir) = latest_checkpoint(&a.out)?.filter(|_| a.resume) {
        let t = HeadTrainer::load_checkpoint(&dir)?;
        if t.state().labels != scheme.names() || t.state().dim != features.dim {
            return Err(TrainError::CheckpointMismatch {
                dir,
                reason: "trained on other labels or features",
            });
        }
        obs.line(&format!("resuming after epoch {}", t.state().epoch));
        t
    } else {
        if a.resume {
            obs.line(&format!(
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
        let mut progress = obs.progress(train_words.len() as u64, "words");
        let train_loss = trainer.train_epoch(&features, &labels, &train_words, &mut *progress)?;
        drop(progress);
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
            obs,
            epoch,
            (train_loss, dev_loss),
            (&by_argmax, &by_viterbi),
            started,
        ));
        save_epoch(&a.out, epoch, |dir| trainer.save_checkpoint(dir))?;
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
                dev_file: a.dev.as_deref(),
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
    Ok(())
}

/// What `load` finds in the cache at `path`, or else what `build` makes of
/// `aligned` (progress in subtokens), saved by `save`; `what` names it in
/// the lines said on the way.
fn cached<T>(
    obs: &dyn RunObserver,
    what: &str,
    path: &Path,
    aligned: &[AlignedSentence],
    load: impl FnOnce() -> Result<Option<T>, TrainError>,
    build: impl FnOnce(&mut dyn FnMut(usize)) -> Result<T, TrainError>,
    save: impl FnOnce(&T) -> Result<PathBuf, TrainError>,
) -> Result<T, TrainError> {
    if let Some(found) = load()? {
        obs.line(&format!("{what}: cache {}", path.display()));
        return Ok(found);
    }
    let tokens: usize = aligned.iter().map(|s| s.ids.len()).sum();
    let mut progress = obs.progress(tokens as u64, "tokens");
    let started = Instant::now();
    let built = build(&mut *progress)?;
    drop(progress);
    let secs = started.elapsed().as_secs_f64();
    let path = save(&built)?;
    obs.line(&format!(
        "{what}: {tokens} subtokens of {} sentences in {secs:.1} s ({:.0} subtokens/s), cached in {}",
        aligned.len(),
        tokens as f64 / secs.max(1e-9),
        path.display()
    ));
    Ok(built)
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
) -> Result<(Scores, Scores), TrainError> {
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

/// The sentences of the CoNLL file at `path`.
fn read_tagged(path: &Path) -> Result<Vec<TaggedSentence>, TrainError> {
    let conll = ConllFile::read(path)?;
    Ok(conll
        .sentences
        .iter()
        .map(|s| TaggedSentence {
            words: s.iter().map(|t| t.text.clone()).collect(),
            tags: s.iter().map(|t| t.tag.clone()).collect(),
        })
        .collect())
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
fn save_epoch(
    out: &Path,
    epoch: usize,
    save: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let rel = format!("checkpoints/epoch-{epoch:03}");
    let dir = out.join(&rel);
    create_dir(&dir)?;
    save(&dir)?;
    write_json(
        &out.join("latest.json"),
        &serde_json::json!({ "epoch": epoch, "checkpoint": rel }),
    )?;
    Ok(())
}

/// The checkpoint folder `latest.json` in `out` names, if any.
fn latest_checkpoint(out: &Path) -> Result<Option<PathBuf>, TrainError> {
    let latest = out.join("latest.json");
    if !latest.exists() {
        return Ok(None);
    }
    let value: serde_json::Value = crate::files::read_json(&latest)?;
    let dir = value
        .get("checkpoint")
        .and_then(|c| c.as_str())
        .ok_or_else(|| TrainError::BadCheckpoint {
            path: latest.clone(),
            reason: "no `checkpoint`".to_owned(),
        })?;
    Ok(Some(out.join(dir)))
}

/// `dir` and its parents, created.
fn create_dir(dir: &Path) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(|source| TrainError::Write {
        path: dir.to_owned(),
        source,
    })
}

/// Fine-tunes layers `L-K+1..=L` (`--layers L --finetune K`) with a head on
/// layer L. The state of layer `L-K` at every position is cached once.
fn finetune(a: &NerRun, obs: &dyn RunObserver, s: &Setup<'_>) -> Result<(), TrainError> {
    let bert = s.bert;
    let head_layer = a.layers[0];
    if head_layer > bert.num_layers() || head_layer < a.finetune {
        return Err(TrainError::LayerOutOfRange {
            layer: head_layer,
            layers: bert.num_layers(),
        });
    }
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
    let cache = cached(
        obs,
        &format!("layer {from} states"),
        &key.path(&a.cache),
        s.aligned,
        || load_layer_cache(&a.cache, &key),
        |progress| {
            build_layer_cache(
                bert,
                s.tokenizer.special_tokens(),
                s.aligned,
                from,
                &plan,
                progress,
            )
        },
        |c| save_layer_cache(&a.cache, &key, c),
    )?;
    if cache.word_offsets.len() != s.aligned.len() + 1 {
        return Err(TrainError::CacheMismatch {
            path: key.path(&a.cache),
        });
    }
    let labels: Vec<u32> = s.aligned.iter().flat_map(|x| x.labels.clone()).collect();
    let (train_windows, dev_windows): (Vec<usize>, Vec<usize>) =
        (0..cache.windows.len()).partition(|&w| cache.windows[w].sentence < s.n_train);
    let train_positions: usize = train_windows.iter().map(|&w| cache.windows[w].len).sum();

    create_dir(&a.out)?;
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
            if t.state().labels != s.scheme.names() || t.state().trained != trained {
                return Err(TrainError::CheckpointMismatch {
                    dir,
                    reason: "trained on other labels or layers",
                });
            }
            obs.line(&format!("resuming after epoch {}", t.state().epoch));
            t
        }
        None => {
            if a.resume {
                obs.line(&format!(
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
        let mut progress = obs.progress(train_positions as u64, "positions");
        let train_loss = trainer.train_epoch(&cache, &labels, &train_windows, &mut *progress)?;
        drop(progress);
        let (dev_loss, probs) = trainer.evaluate(&cache, &labels, &dev_windows, false)?;
        let (by_argmax, by_viterbi) = score(&probs)?;
        let epoch = trainer.state().epoch;
        let f1_viterbi = by_viterbi.micro.f1;
        trainer.record(epoch_report(
            obs,
            epoch,
            (train_loss, dev_loss),
            (&by_argmax, &by_viterbi),
            started,
        ));
        save_epoch(&a.out, epoch, |dir| trainer.save_checkpoint(dir))?;
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
                "dev_file": a.dev,
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
    Ok(())
}
