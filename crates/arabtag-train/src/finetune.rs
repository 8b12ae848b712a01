//! Fine-tuning the top encoder layers together with a token head.
//!
//! The layers below the first trained one never change, so their output is
//! computed once: [`build_layer_cache`] runs the encoder up to layer `from`
//! over every window of the training file and keeps that layer's state at
//! every position (special tokens included, padding dropped), f16. Training
//! then runs only the trained layers, from the cache, with gradients:
//! [`FinetuneTrainer`] holds copies of those layers' tensors (named as in a
//! checkpoint, `encoder.layer.{i}.…`, 0-based) and a fresh linear head over
//! the last one, trained with AdamW ([`super::optim`]), two learning rates
//! (encoder, head), linear warm-up then linear decay, dropout on the
//! hidden states as BERT has it (after each sublayer's output projection and
//! before the head), and cross-entropy on each word's first subtoken.
//! Deterministic for a seed: initialisation, shuffling and dropout masks all
//! come from one xorshift generator whose state is checkpointed.
//!
//! The layer computation is the one [`arabtag_infer::models::BertModel`] runs
//! (post-LayerNorm BERT), written with differentiable operations (candle's
//! fused softmax and LayerNorm have no backward); a unit test checks the two
//! agree.
//!
//! # Files
//!
//! A checkpoint folder: `params.safetensors` (trained layers, `weight`,
//! `bias`), `optimizer.safetensors` (their moments), `state.json`
//! ([`FinetuneState`]). A released head: `head.safetensors` with the head's
//! `weight` / `bias` (f32) and the trained layers' tensors (f16), and
//! `head.json` ([`super::LayerHeadMeta`], listing the replaced layers): the
//! tagger loads the encoder, puts these layers in place of its own and runs
//! the head on the last one.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::{Activation, Module};
use serde::{Deserialize, Serialize};

use super::files::{create_parent, read_json, write_json};
use super::head::EpochReport;
use super::optim::{AdamW, Rng, linear_head};
use crate::TrainError;
use crate::layer_cache::to_u32;
pub use crate::layer_cache::{
    CachedWindow, LAYER_CACHE_FORMAT, LayerCache, build_layer_cache, load_layer_cache,
    save_layer_cache,
};
use arabtag_infer::models::bert::LAYER_PREFIX;
use arabtag_infer::models::{BertModel, dequantize_rows, quantize_rows};

/// Default content tokens per training window.
pub const DEFAULT_TRAIN_WINDOW: usize = 254;
/// Default padded positions per training batch.
pub const DEFAULT_BATCH_TOKENS: usize = 1024;
/// Default encoder learning rate.
pub const DEFAULT_ENCODER_LR: f64 = 1e-4;
/// Default head learning rate.
pub const DEFAULT_HEAD_LR: f64 = 1e-3;
/// Default share of the steps spent warming up.
pub const DEFAULT_WARMUP: f64 = 0.1;
/// Default dropout probability.
pub const DEFAULT_DROPOUT: f32 = 0.1;

/// Fine-tuning settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneOptions {
    pub epochs: usize,
    /// Peak learning rate of the encoder layers.
    pub encoder_lr: f64,
    /// Peak learning rate of the head.
    pub head_lr: f64,
    pub weight_decay: f64,
    /// Share of all steps (counted in positions) spent warming up.
    pub warmup: f64,
    pub dropout: f32,
    /// Most padded positions per batch.
    pub batch_tokens: usize,
    pub seed: u64,
}

/// A fine-tuning checkpoint's `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneState {
    /// Epochs done.
    pub epoch: usize,
    /// Optimiser steps done.
    pub step: usize,
    /// The generator's state at the end of the last epoch.
    pub rng: u64,
    pub options: FinetuneOptions,
    pub labels: Vec<String>,
    /// The trained layers, 0-based, ascending and consecutive; the head
    /// reads the last one's output.
    pub trained: Vec<usize>,
    pub history: Vec<EpochReport>,
    /// What the head reads and is trained for.
    #[serde(default)]
    pub objective: Objective,
}

/// What a fine-tuned head reads and is trained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// One label per word, at its first subtoken, softmax cross-entropy
    /// (NER).
    #[default]
    Tokens,
    /// Independent labels per window, over the mean of the last trained
    /// layer's states (special tokens included, as e5 pools), L2-normalised;
    /// binary cross-entropy (stance, what `PooledClassifier` computes).
    Pooled,
}

/// The trained layers and the head, with their optimiser.
#[derive(Debug)]
pub struct FinetuneTrainer {
    opt: AdamW,
    state: FinetuneState,
    num_heads: usize,
    eps: f64,
    activation: Activation,
}

/// A parameter by name (the trained variables, or a frozen copy of them).
type Params<'a> = dyn Fn(&str) -> Result<Tensor, TrainError> + 'a;

/// A training batch's mean loss and the number of targets it is over, from
/// the trainer, the batch, its windows and the dropout generator; `None`
/// for a batch with nothing to learn.
type BatchLoss<'a> = dyn Fn(&FinetuneTrainer, &Batch, &[usize], &mut Rng) -> Result<Option<(Tensor, usize)>, TrainError>
    + 'a;

/// Dropout with `p` from `rng`: `xs` times a mask of 0 and `1/(1-p)`.
fn dropout(xs: &Tensor, p: f32, rng: &mut Rng) -> Result<Tensor, TrainError> {
    if p <= 0.0 {
        return Ok(xs.clone());
    }
    let keep = 1.0 / (1.0 - p);
    let threshold = (f64::from(p) * (1u64 << 24) as f64) as u64;
    let mask: Vec<f32> = (0..xs.elem_count())
        .map(|_| {
            if (rng.next_u64() >> 40) < threshold {
                0.0
            } else {
                keep
            }
        })
        .collect();
    Ok((xs * Tensor::from_vec(mask, xs.shape(), xs.device())?)?)
}

/// Softmax over the last dimension from differentiable operations.
fn softmax(xs: &Tensor) -> Result<Tensor, TrainError> {
    let max = xs.max_keepdim(D::Minus1)?.detach();
    let e = xs.broadcast_sub(&max)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// LayerNorm over the last dimension of `xs` `[n, h]`.
fn layer_norm(xs: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor, TrainError> {
    let mean = xs.mean_keepdim(D::Minus1)?;
    let centred = xs.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    Ok(normed.broadcast_mul(weight)?.broadcast_add(bias)?)
}

/// A padded batch of cached windows: inputs `[b, s, h]`, the additive mask
/// `[b, 1, 1, s]`, the flat positions (`row × s + position`) of the targets
/// and their words.
struct Batch {
    inputs: Tensor,
    bias: Tensor,
    positions: Tensor,
    words: Vec<usize>,
}

fn make_batch(cache: &LayerCache, windows: &[usize]) -> Result<Batch, TrainError> {
    let h = cache.hidden;
    let seq = windows
        .iter()
        .map(|&w| cache.windows[w].len)
        .max()
        .unwrap_or(0);
    let mut values = vec![0f32; windows.len() * seq * h];
    let mut mask = vec![f32::MIN; windows.len() * seq];
    let (mut positions, mut words) = (Vec::new(), Vec::new());
    for (r, &w) in windows.iter().enumerate() {
        let win = &cache.windows[w];
        let src = &cache.states[win.row * h..(win.row + win.len) * h];
        for (dst, x) in values[r * seq * h..].iter_mut().zip(src) {
            *dst = x.to_f32();
        }
        mask[r * seq..r * seq + win.len].fill(0.0);
        for &(pos, word) in &win.targets {
            positions.push(to_u32(r * seq + pos));
            words.push(word);
        }
    }
    let device = Device::Cpu;
    let n = positions.len();
    Ok(Batch {
        inputs: Tensor::from_vec(values, (windows.len(), seq, h), &device)?,
        bias: Tensor::from_vec(mask, (windows.len(), 1, 1, seq), &device)?,
        positions: Tensor::from_vec(positions, n, &device)?,
        words,
    })
}

impl FinetuneTrainer {
    /// Trains layers `trained` (0-based, consecutive, ascending) of `bert`,
    /// starting from its weights, with a fresh head for `labels` initialised
    /// from the options' seed.
    pub fn new(
        bert: &BertModel,
        trained: Vec<usize>,
        labels: Vec<String>,
        options: FinetuneOptions,
    ) -> Result<Self, TrainError> {
        let consecutive = trained.windows(2).all(|w| w[1] == w[0] + 1);
        let Some(&last) = trained.last() else {
            return Err(TrainError::NoLayersToFinetune);
        };
        if !consecutive || last >= bert.num_layers() {
            return Err(TrainError::LayerOutOfRange {
                layer: last + 1,
                layers: bert.num_layers(),
            });
        }
        let mut params = Vec::new();
        for &i in &trained {
            for (name, t) in bert.layer_tensors(i)? {
                params.push((name, 0, t));
            }
        }
        let dims = bert.dims();
        let (n, dim) = (labels.len(), dims.hidden_size);
        let mut rng = Rng::new(options.seed);
        params.extend(linear_head(&mut rng, n, dim, 1)?);
        Ok(Self {
            opt: AdamW::new(params, options.weight_decay)?,
            num_heads: dims.num_heads,
            eps: dims.layer_norm_eps,
            activation: bert.activation().unwrap_or(Activation::Gelu),
            state: FinetuneState {
                epoch: 0,
                step: 0,
                rng: rng.0,
                options,
                labels,
                trained,
                history: Vec::new(),
                objective: Objective::Tokens,
            },
        })
    }

    /// As [`Self::new`], for [`Objective::Pooled`]: a head over the pooled
    /// last trained layer, initialised with `head` (`weight` `[labels, h]`,
    /// `bias` `[labels]`, e.g. a logistic head trained on the frozen
    /// encoder's pooled states) when given.
    pub fn new_pooled(
        bert: &BertModel,
        trained: Vec<usize>,
        labels: Vec<String>,
        options: FinetuneOptions,
        head: Option<(&Tensor, &Tensor)>,
    ) -> Result<Self, TrainError> {
        let mut trainer = Self::new(bert, trained, labels, options)?;
        trainer.state.objective = Objective::Pooled;
        if let Some((weight, bias)) = head {
            for (name, value) in [("weight", weight), ("bias", bias)] {
                let var = trainer
                    .opt
                    .var(name)
                    .ok_or_else(|| TrainError::MissingParameter {
                        name: name.to_owned(),
                    })?;
                var.set(value)?;
            }
        }
        Ok(trainer)
    }

    /// The training state.
    pub fn state(&self) -> &FinetuneState {
        &self.state
    }

    /// Sets the total number of epochs (a resumed run may raise it).
    pub fn set_epochs(&mut self, epochs: usize) {
        self.state.options.epochs = epochs;
    }

    /// Records what an epoch gave.
    pub fn record(&mut self, report: EpochReport) {
        self.state.history.push(report);
    }

    fn var(&self, name: &str) -> Result<Tensor, TrainError> {
        self.opt
            .var(name)
            .map(|v| v.as_tensor().clone())
            .ok_or_else(|| TrainError::BadCheckpoint {
                path: std::path::PathBuf::from(name),
                reason: "no such parameter".to_owned(),
            })
    }

    /// One trained layer over `xs` `[b, s, h]`.
    fn layer(
        &self,
        p: &Params<'_>,
        index: usize,
        xs: &Tensor,
        bias: &Tensor,
        mut rng: Option<&mut Rng>,
    ) -> Result<Tensor, TrainError> {
        let (b, s, h) = xs.dims3()?;
        let (nh, hd) = (self.num_heads, h / self.num_heads);
        let name = |n: &str| format!("{LAYER_PREFIX}.{index}.{n}");
        let linear = |x: &Tensor, n: &str| -> Result<Tensor, TrainError> {
            let w = p(&name(&format!("{n}.weight")))?;
            let bias = p(&name(&format!("{n}.bias")))?;
            Ok(x.matmul(&w.t()?)?.broadcast_add(&bias)?)
        };
        let norm = |x: &Tensor, n: &str| -> Result<Tensor, TrainError> {
            layer_norm(
                x,
                &p(&name(&format!("{n}.weight")))?,
                &p(&name(&format!("{n}.bias")))?,
                self.eps,
            )
        };
        let mut drop = |x: Tensor| -> Result<Tensor, TrainError> {
            match rng.as_deref_mut() {
                Some(r) => dropout(&x, self.state.options.dropout, r),
                None => Ok(x),
            }
        };
        let flat = xs.reshape((b * s, h))?;
        let heads = |t: Tensor| -> Result<Tensor, TrainError> {
            Ok(t.reshape((b, s, nh, hd))?.transpose(1, 2)?.contiguous()?)
        };
        let q = heads(linear(&flat, "attention.self.query")?)?;
        let k = heads(linear(&flat, "attention.self.key")?)?;
        let v = heads(linear(&flat, "attention.self.value")?)?;
        let scores = (q.matmul(&k.t()?.contiguous()?)? / (hd as f64).sqrt())?;
        let probs = softmax(&scores.broadcast_add(bias)?)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * s, h))?;
        let attended = drop(linear(&context, "attention.output.dense")?)?;
        let attended = norm(&(attended + &flat)?, "attention.output.LayerNorm")?;
        let inner = self
            .activation
            .forward(&linear(&attended, "intermediate.dense")?)?;
        let out = drop(linear(&inner, "output.dense")?)?;
        let out = norm(&(out + attended)?, "output.LayerNorm")?;
        Ok(out.reshape((b, s, h))?)
    }

    /// Logits `[targets, labels]` of a batch.
    fn logits(
        &self,
        p: &Params<'_>,
        batch: &Batch,
        mut rng: Option<&mut Rng>,
    ) -> Result<Tensor, TrainError> {
        let xs = self.trained_states(p, &batch.inputs, &batch.bias, rng.as_deref_mut())?;
        let (b, s, h) = xs.dims3()?;
        let mut picked = xs.reshape((b * s, h))?.index_select(&batch.positions, 0)?;
        if let Some(r) = rng {
            picked = dropout(&picked, self.state.options.dropout, r)?;
        }
        Ok(picked
            .matmul(&p("weight")?.t()?)?
            .broadcast_add(&p("bias")?)?)
    }

    /// Logits `[b, labels]` of a batch of windows of lengths `lens`: the
    /// last trained layer mean-pooled over each window's positions,
    /// L2-normalised, then the head.
    fn pooled_logits(
        &self,
        p: &Params<'_>,
        batch: &Batch,
        lens: &[usize],
        mut rng: Option<&mut Rng>,
    ) -> Result<Tensor, TrainError> {
        let xs = self.trained_states(p, &batch.inputs, &batch.bias, rng.as_deref_mut())?;
        let (b, s, _) = xs.dims3()?;
        let mut mask = vec![0f32; b * s];
        for (r, &len) in lens.iter().enumerate() {
            mask[r * s..r * s + len].fill(1.0);
        }
        let device = Device::Cpu;
        let mask = Tensor::from_vec(mask, (b, s, 1), &device)?;
        let counts: Vec<f32> = lens.iter().map(|&l| l.max(1) as f32).collect();
        let counts = Tensor::from_vec(counts, (b, 1), &device)?;
        let pooled = xs.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&counts)?;
        let norm = (pooled.sqr()?.sum_keepdim(1)? + 1e-24)?.sqrt()?;
        let mut unit = pooled.broadcast_div(&norm)?;
        if let Some(r) = rng {
            unit = dropout(&unit, self.state.options.dropout, r)?;
        }
        Ok(unit
            .matmul(&p("weight")?.t()?)?
            .broadcast_add(&p("bias")?)?)
    }

    /// The last trained layer's states `[b, s, h]` for inputs `[b, s, h]`
    /// (the layer before the first trained one) and an additive mask, no
    /// dropout: what the encoder computes, for checks.
    pub fn forward_layers(&self, inputs: &Tensor, bias: &Tensor) -> Result<Tensor, TrainError> {
        let p = |n: &str| self.var(n);
        self.trained_states(&p, inputs, bias, None)
    }

    /// The trained layers, in order, over `inputs` `[b, s, h]` with the
    /// additive mask `bias`; dropout when `rng` is given.
    fn trained_states(
        &self,
        p: &Params<'_>,
        inputs: &Tensor,
        bias: &Tensor,
        mut rng: Option<&mut Rng>,
    ) -> Result<Tensor, TrainError> {
        let mut xs = inputs.clone();
        for &i in &self.state.trained {
            xs = self.layer(p, i, &xs, bias, rng.as_deref_mut())?;
        }
        Ok(xs)
    }

    /// Training batches of `windows` for one epoch: shuffled, then in
    /// groups of 64 sorted by length and cut at `batch_tokens` padded
    /// positions, the batches shuffled again.
    fn plan(&self, cache: &LayerCache, windows: &[usize], rng: &mut Rng) -> Vec<Vec<usize>> {
        let mut order = windows.to_vec();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let budget = self.state.options.batch_tokens.max(1);
        let mut batches = Vec::new();
        for group in order.chunks_mut(64) {
            group.sort_by_key(|&w| cache.windows[w].len);
            let mut batch: Vec<usize> = Vec::new();
            for &w in group.iter() {
                let len = cache.windows[w].len;
                if !batch.is_empty() && (batch.len() + 1) * len > budget {
                    batches.push(std::mem::take(&mut batch));
                }
                batch.push(w);
            }
            if !batch.is_empty() {
                batches.push(batch);
            }
        }
        for i in (1..batches.len()).rev() {
            batches.swap(i, rng.below(i + 1));
        }
        batches
    }

    /// The learning-rate factor after `done` of `total` positions: linear
    /// warm-up over the first `warmup` share, then linear decay to 0.
    fn schedule(&self, done: f64, total: f64) -> f64 {
        let warmup = self.state.options.warmup.clamp(0.0, 1.0) * total;
        if done < warmup {
            done / warmup
        } else {
            ((total - done) / (total - warmup).max(1.0)).clamp(0.0, 1.0)
        }
    }

    /// One epoch over `windows` (indices into `cache.windows`); `labels`
    /// holds each word's label. `progress` gets the positions done after
    /// each batch. Returns the mean loss per target.
    pub fn train_epoch(
        &mut self,
        cache: &LayerCache,
        labels: &[u32],
        windows: &[usize],
        progress: &mut dyn FnMut(usize),
    ) -> Result<f64, TrainError> {
        self.run_epoch(cache, windows, progress, &|t, batch, _, rng| {
            if batch.words.is_empty() {
                return Ok(None);
            }
            let vars = |n: &str| t.var(n);
            let logits = t.logits(&vars, batch, Some(rng))?;
            let ys: Vec<u32> = batch.words.iter().map(|&w| labels[w]).collect();
            let ys = Tensor::from_vec(ys, batch.words.len(), &Device::Cpu)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &ys)?;
            Ok(Some((loss, batch.words.len())))
        })
    }

    /// One epoch of the planned batches of `windows`: `loss` gives a
    /// batch's mean loss and the number of targets it is over (`None`: a
    /// batch with nothing to learn, skipped); each is a step of AdamW at the
    /// scheduled learning rates. Returns the mean loss per target.
    fn run_epoch(
        &mut self,
        cache: &LayerCache,
        windows: &[usize],
        progress: &mut dyn FnMut(usize),
        loss: &BatchLoss<'_>,
    ) -> Result<f64, TrainError> {
        let mut rng = Rng(self.state.rng);
        let batches = self.plan(cache, windows, &mut rng);
        let per_epoch: usize = windows.iter().map(|&w| cache.windows[w].len).sum();
        let total = (per_epoch * self.state.options.epochs.max(1)) as f64;
        let mut done = (per_epoch * self.state.epoch) as f64;
        let (mut loss_sum, mut count) = (0.0, 0usize);
        for windows in &batches {
            let batch = make_batch(cache, windows)?;
            let positions: usize = windows.iter().map(|&w| cache.windows[w].len).sum();
            done += positions as f64;
            let Some((loss, targets)) = loss(self, &batch, windows, &mut rng)? else {
                progress(positions);
                continue;
            };
            let grads = loss.backward()?;
            let factor = self.schedule(done, total);
            let o = &self.state.options;
            let lrs = [o.encoder_lr * factor, o.head_lr * factor];
            self.opt.step(&grads, &lrs)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?) * targets as f64;
            count += targets;
            progress(positions);
        }
        self.state.rng = rng.0;
        self.state.step = self.opt.steps();
        self.state.epoch += 1;
        Ok(if count == 0 {
            0.0
        } else {
            loss_sum / count as f64
        })
    }

    /// `windows` sorted by length and cut into evaluation batches of at
    /// most 8 × `batch_tokens` padded positions (a longer window alone).
    fn eval_groups(&self, cache: &LayerCache, windows: &[usize]) -> Vec<Vec<usize>> {
        let mut order = windows.to_vec();
        order.sort_by_key(|&w| cache.windows[w].len);
        let budget = 8 * self.state.options.batch_tokens.max(1);
        let mut groups = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            while end < order.len() && (end + 1 - start) * cache.windows[order[end]].len <= budget {
                end += 1;
            }
            groups.push(order[start..end].to_vec());
            start = end;
        }
        groups
    }

    /// Mean loss over the targets of `windows` and each target word's label
    /// probabilities (by word). With `rounded`, the encoder layers are
    /// rounded first as a released head stores them ([`save_head`]: 8-bit
    /// matrices, f16 vectors).
    ///
    /// [`save_head`]: Self::save_head
    pub fn evaluate(
        &self,
        cache: &LayerCache,
        labels: &[u32],
        windows: &[usize],
        rounded: bool,
    ) -> Result<(f64, BTreeMap<usize, Vec<f32>>), TrainError> {
        let frozen = self.frozen(rounded)?;
        let p = |n: &str| lookup(&frozen, n);
        let (mut loss_sum, mut count) = (0.0, 0usize);
        let mut probs = BTreeMap::new();
        for group in self.eval_groups(cache, windows) {
            let batch = make_batch(cache, &group)?;
            if batch.words.is_empty() {
                continue;
            }
            let logits = self.logits(&p, &batch, None)?;
            let ys: Vec<u32> = batch.words.iter().map(|&w| labels[w]).collect();
            let ys = Tensor::from_vec(ys, batch.words.len(), &Device::Cpu)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &ys)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?) * batch.words.len() as f64;
            count += batch.words.len();
            let rows: Vec<Vec<f32>> = candle_nn::ops::softmax_last_dim(&logits)?.to_vec2()?;
            for (&w, row) in batch.words.iter().zip(rows) {
                probs.insert(w, row);
            }
        }
        let mean = if count == 0 {
            0.0
        } else {
            loss_sum / count as f64
        };
        Ok((mean, probs))
    }

    /// One epoch of [`Objective::Pooled`] over `windows` (indices into
    /// `cache.windows`); `targets[sentence]` holds each sentence's label
    /// flags (0 or 1), which every window of it is trained on. Returns the
    /// mean loss per window and label.
    pub fn train_epoch_pooled(
        &mut self,
        cache: &LayerCache,
        targets: &[Vec<f32>],
        windows: &[usize],
        progress: &mut dyn FnMut(usize),
    ) -> Result<f64, TrainError> {
        self.run_epoch(cache, windows, progress, &|t, batch, windows, rng| {
            let lens: Vec<usize> = windows.iter().map(|&w| cache.windows[w].len).collect();
            let vars = |n: &str| t.var(n);
            let logits = t.pooled_logits(&vars, batch, &lens, Some(rng))?;
            let ys = pooled_targets(cache, targets, windows)?;
            Ok(Some((bce_with_logits(&logits, &ys)?, windows.len())))
        })
    }

    /// [`Objective::Pooled`]: mean loss over `windows` and each window's
    /// label probabilities (by window index). `rounded` as in
    /// [`Self::evaluate`].
    pub fn evaluate_pooled(
        &self,
        cache: &LayerCache,
        targets: &[Vec<f32>],
        windows: &[usize],
        rounded: bool,
    ) -> Result<(f64, BTreeMap<usize, Vec<f32>>), TrainError> {
        let frozen = self.frozen(rounded)?;
        let p = |n: &str| lookup(&frozen, n);
        let (mut loss_sum, mut count) = (0.0, 0usize);
        let mut probs = BTreeMap::new();
        for group in self.eval_groups(cache, windows) {
            let group = group.as_slice();
            let batch = make_batch(cache, group)?;
            let lens: Vec<usize> = group.iter().map(|&w| cache.windows[w].len).collect();
            let logits = self.pooled_logits(&p, &batch, &lens, None)?;
            let ys = pooled_targets(cache, targets, group)?;
            let loss = bce_with_logits(&logits, &ys)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?) * group.len() as f64;
            count += group.len();
            let rows: Vec<Vec<f32>> = candle_nn::ops::sigmoid(&logits)?.to_vec2()?;
            for (&w, row) in group.iter().zip(rows) {
                probs.insert(w, row);
            }
        }
        let mean = if count == 0 {
            0.0
        } else {
            loss_sum / count as f64
        };
        Ok((mean, probs))
    }

    /// The parameters as they are now, the encoder layers rounded as a
    /// released head stores them when `rounded`.
    fn frozen(&self, rounded: bool) -> Result<HashMap<String, Tensor>, TrainError> {
        self.opt
            .values()
            .into_iter()
            .map(|(name, t)| {
                let t = if rounded && name.starts_with(LAYER_PREFIX) {
                    stored(&name, &t)?
                } else {
                    t
                };
                Ok((name, t))
            })
            .collect()
    }

    /// Writes `params.safetensors`, `optimizer.safetensors` and
    /// `state.json` into `dir`.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), TrainError> {
        std::fs::create_dir_all(dir).map_err(|source| TrainError::Write {
            path: dir.to_owned(),
            source,
        })?;
        self.opt.save(
            &dir.join("params.safetensors"),
            &dir.join("optimizer.safetensors"),
        )?;
        write_json(&dir.join("state.json"), &self.state)
    }

    /// Continues from a checkpoint folder written by
    /// [`Self::save_checkpoint`] of a run over the same `bert`.
    pub fn load_checkpoint(bert: &BertModel, dir: &Path) -> Result<Self, TrainError> {
        let state: FinetuneState = read_json(&dir.join("state.json"))?;
        let mut trainer = Self::new(
            bert,
            state.trained.clone(),
            state.labels.clone(),
            state.options.clone(),
        )?;
        trainer.opt.restore(
            &dir.join("params.safetensors"),
            &dir.join("optimizer.safetensors"),
            state.step,
        )?;
        trainer.state = state;
        Ok(trainer)
    }

    /// Writes the released head: `weight` and `bias` f32; of the trained
    /// layers, each matrix 8-bit with a scale per row (`NAME.q8` u8, the
    /// value + 128, and `NAME.scale` f32, see [`quantize_rows`]) and each
    /// vector (biases, LayerNorms) f16. [`dequantize_head`](arabtag_infer::models::dequantize_head) reads it back.
    pub fn save_head(&self, path: &Path) -> Result<(), TrainError> {
        create_parent(path)?;
        let mut tensors = HashMap::new();
        for (name, t) in self.opt.values() {
            if !name.starts_with(LAYER_PREFIX) {
                tensors.insert(name, t);
            } else if t.rank() == 2 {
                let (q, scale) = quantize_rows(&t)?;
                tensors.insert(format!("{name}.q8"), q);
                tensors.insert(format!("{name}.scale"), scale);
            } else {
                tensors.insert(name, t.to_dtype(DType::F16)?);
            }
        }
        crate::files::save_head_file(&tensors, &self.state.labels, path)
    }
}

/// Mean binary cross-entropy of `logits` against 0/1 `targets`, computed
/// as `max(z, 0) - z y + ln(1 + e^-|z|)`: finite for any logit (candle's
/// `binary_cross_entropy_with_logit` takes the log of a sigmoid that rounds
/// to 0 or 1 for large logits, giving NaN).
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor, TrainError> {
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let loss = ((logits.relu()? - (logits * targets)?)? + softplus)?;
    Ok(loss.mean_all()?)
}

/// Parameter `name` of `params`.
fn lookup(params: &HashMap<String, Tensor>, name: &str) -> Result<Tensor, TrainError> {
    params
        .get(name)
        .cloned()
        .ok_or_else(|| TrainError::BadCheckpoint {
            path: std::path::PathBuf::from(name),
            reason: "no such parameter".to_owned(),
        })
}

/// The label flags `[windows, labels]` of `windows`: their sentences'.
fn pooled_targets(
    cache: &LayerCache,
    targets: &[Vec<f32>],
    windows: &[usize],
) -> Result<Tensor, TrainError> {
    let width = targets.first().map_or(0, Vec::len);
    let flat: Vec<f32> = windows
        .iter()
        .flat_map(|&w| targets[cache.windows[w].sentence].iter().copied())
        .collect();
    Ok(Tensor::from_vec(
        flat,
        (windows.len(), width),
        &Device::Cpu,
    )?)
}

/// A parameter as the released head stores it, back in f32: matrices
/// through 8 bits, vectors through f16.
fn stored(name: &str, t: &Tensor) -> Result<Tensor, TrainError> {
    if t.rank() == 2 && name.starts_with(LAYER_PREFIX) {
        let (q, scale) = quantize_rows(t)?;
        Ok(dequantize_rows(&q, &scale)?)
    } else {
        Ok(t.to_dtype(DType::F16)?.to_dtype(DType::F32)?)
    }
}

#[cfg(test)]
#[path = "finetune_tests.rs"]
mod tests;
