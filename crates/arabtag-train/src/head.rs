//! A softmax linear head trained on cached features (see [`super::features`]).
//!
//! Training is deterministic for a seed: the weights start uniform in
//! `±1/sqrt(dim)` (PyTorch's `nn.Linear` bound) from a xorshift64* generator
//! seeded with `seed`, and the same generator shuffles the training words
//! before every epoch. Mini-batches of words minimise the mean cross-entropy
//! with AdamW. The update is candle's `candle_nn::AdamW`, written out here
//! because candle keeps its moments private: a checkpoint has to hold them
//! for `--resume` to continue exactly where a run stopped.
//!
//! # Files
//!
//! A checkpoint folder holds `head.safetensors` (`weight` f32
//! `[labels, dim]`, `bias` f32 `[labels]`), `optimizer.safetensors`
//! (`m.weight`, `m.bias`, `v.weight`, `v.bias`) and `state.json`
//! ([`TrainState`]: epoch, step, generator state, options, history).
//!
//! A released head is `head.safetensors` (the same two tensors, so
//! [`arabtag_infer::models::TokenClassifier::from_file`] reads it with
//! `hidden_size = dim`) plus `head.json` ([`LayerHeadMeta`]): the layers
//! whose first-subtoken hidden states are concatenated, in order, to make
//! its input.

use std::path::Path;

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::features::Features;
use super::files::{create_parent, read_json, write_json};
use super::optim::{AdamW, Rng, linear_head};
use crate::TrainError;

/// Defaults, shared with the CLI.
pub const DEFAULT_EPOCHS: usize = 10;
pub const DEFAULT_LR: f64 = 1e-3;
pub const DEFAULT_WEIGHT_DECAY: f64 = 0.01;
pub const DEFAULT_BATCH_SIZE: usize = 256;
pub const DEFAULT_SEED: u64 = 17;

/// The head file's description, `head.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerHeadMeta {
    /// `"arabtag-layer-head"`.
    pub format: String,
    pub version: u32,
    /// Hidden-state layers (0 = embeddings, 1-based), concatenated in this
    /// order; the input width is `layers.len() × hidden_size`.
    pub layers: Vec<usize>,
    pub hidden_size: usize,
    /// Labels in row order.
    pub labels: Vec<String>,
    /// Which subtoken of a word is classified: `"first"`.
    pub subtoken: String,
    /// sha256 of the encoder weights the head was trained on.
    pub encoder_sha256: String,
    /// Encoder layers (1-based) the head file replaces with fine-tuned ones
    /// (its `encoder.layer.{i-1}.…` tensors); empty for a head over frozen
    /// layers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finetuned: Vec<usize>,
}

/// The head file format's name.
pub const HEAD_FORMAT: &str = "arabtag-layer-head";

/// Training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: DEFAULT_EPOCHS,
            lr: DEFAULT_LR,
            weight_decay: DEFAULT_WEIGHT_DECAY,
            batch_size: DEFAULT_BATCH_SIZE,
            seed: DEFAULT_SEED,
        }
    }
}

/// What one epoch gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub dev_loss: Option<f64>,
    /// Dev entity F1 (seqeval default mode), argmax decoding.
    pub dev_f1_argmax: Option<f64>,
    /// The same with BIO-constrained Viterbi.
    pub dev_f1_viterbi: Option<f64>,
    pub seconds: f64,
}

/// A checkpoint's `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs done.
    pub epoch: usize,
    /// Optimiser steps done.
    pub step: usize,
    /// The generator's state after the last shuffle.
    pub rng: u64,
    pub options: TrainOptions,
    pub labels: Vec<String>,
    pub dim: usize,
    pub history: Vec<EpochReport>,
}

/// A linear head and its optimiser state.
#[derive(Debug)]
pub struct HeadTrainer {
    /// `weight` and `bias`, one learning-rate group.
    opt: AdamW,
    state: TrainState,
}

fn rows(features: &Features, words: &[usize]) -> Result<Tensor, TrainError> {
    let mut values = Vec::with_capacity(words.len() * features.dim);
    for &w in words {
        values.extend(features.row(w).iter().map(|x| x.to_f32()));
    }
    Ok(Tensor::from_vec(
        values,
        (words.len(), features.dim),
        &Device::Cpu,
    )?)
}

impl HeadTrainer {
    /// A fresh head over `dim` features for `labels`, initialised from the
    /// options' seed.
    pub fn new(labels: Vec<String>, dim: usize, options: TrainOptions) -> Result<Self, TrainError> {
        let mut rng = Rng::new(options.seed);
        let n = labels.len();
        let params = linear_head(&mut rng, n, dim, 0)?.to_vec();
        Ok(Self {
            opt: AdamW::new(params, options.weight_decay)?,
            state: TrainState {
                epoch: 0,
                step: 0,
                rng: rng.0,
                options,
                labels,
                dim,
                history: Vec::new(),
            },
        })
    }

    /// The training state.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// Options for the epochs still to run (a resumed run may raise
    /// `epochs`).
    pub fn set_epochs(&mut self, epochs: usize) {
        self.state.options.epochs = epochs;
    }

    /// Records what an epoch gave (after [`Self::train_epoch`]).
    pub fn record(&mut self, report: EpochReport) {
        self.state.history.push(report);
    }

    /// The weight `[labels, dim]` and bias `[labels]`.
    pub fn tensors(&self) -> (&Tensor, &Tensor) {
        (
            self.param("weight").as_tensor(),
            self.param("bias").as_tensor(),
        )
    }

    fn param(&self, name: &str) -> &Var {
        self.opt
            .var(name)
            .unwrap_or_else(|| unreachable!("the head has `{name}`"))
    }

    /// Logits `[n, labels]` of features `[n, dim]`.
    fn logits(&self, xs: &Tensor) -> Result<Tensor, TrainError> {
        let (weight, bias) = self.tensors();
        Ok(xs.matmul(&weight.t()?)?.broadcast_add(bias)?)
    }

    /// One epoch over `words` (rows of `features`, each with its label in
    /// `labels`, indexed by word); `progress` gets the words done after each
    /// batch. Returns the mean training loss.
    pub fn train_epoch(
        &mut self,
        features: &Features,
        labels: &[u32],
        words: &[usize],
        progress: &mut dyn FnMut(usize),
    ) -> Result<f64, TrainError> {
        let mut order = words.to_vec();
        let mut rng = Rng(self.state.rng);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        self.state.rng = rng.0;
        let batch = self.state.options.batch_size.max(1);
        let (mut total, mut count) = (0.0, 0usize);
        for chunk in order.chunks(batch) {
            let xs = rows(features, chunk)?;
            let ys: Vec<u32> = chunk.iter().map(|&w| labels[w]).collect();
            let ys = Tensor::from_vec(ys, chunk.len(), &Device::Cpu)?;
            let loss = candle_nn::loss::cross_entropy(&self.logits(&xs)?, &ys)?;
            let grads = loss.backward()?;
            self.step(&grads)?;
            total += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
            count += chunk.len();
            progress(chunk.len());
        }
        self.state.epoch += 1;
        Ok(if count == 0 {
            0.0
        } else {
            total / count as f64
        })
    }

    fn step(&mut self, grads: &candle_core::backprop::GradStore) -> Result<(), TrainError> {
        self.opt.step(grads, &[self.state.options.lr])?;
        self.state.step = self.opt.steps();
        Ok(())
    }

    /// Mean loss over `words` and each word's label probabilities, in the
    /// order of `words`.
    pub fn evaluate(
        &self,
        features: &Features,
        labels: &[u32],
        words: &[usize],
    ) -> Result<(f64, Vec<Vec<f32>>), TrainError> {
        let (mut total, mut probs) = (0.0, Vec::with_capacity(words.len()));
        for chunk in words.chunks(4096) {
            let logits = self.logits(&rows(features, chunk)?)?;
            let ys: Vec<u32> = chunk.iter().map(|&w| labels[w]).collect();
            let ys = Tensor::from_vec(ys, chunk.len(), &Device::Cpu)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &ys)?;
            total += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
            probs.extend(candle_nn::ops::softmax_last_dim(&logits)?.to_vec2::<f32>()?);
        }
        let mean = if words.is_empty() {
            0.0
        } else {
            total / words.len() as f64
        };
        Ok((mean, probs))
    }

    /// Writes `head.safetensors`, `optimizer.safetensors` and `state.json`
    /// into `dir`.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), TrainError> {
        self.opt.save(
            &dir.join("head.safetensors"),
            &dir.join("optimizer.safetensors"),
        )?;
        write_json(&dir.join("state.json"), &self.state)
    }

    /// Writes the head's `weight` and `bias` (creating the folder).
    pub fn save_head(&self, path: &Path) -> Result<(), TrainError> {
        create_parent(path)?;
        let (weight, bias) = self.tensors();
        let tensors = std::collections::HashMap::from([
            ("weight".to_owned(), weight.clone()),
            ("bias".to_owned(), bias.clone()),
        ]);
        crate::files::save_head_file(&tensors, &self.state.labels, path)
    }

    /// Reads a checkpoint folder written by [`Self::save_checkpoint`].
    pub fn load_checkpoint(dir: &Path) -> Result<Self, TrainError> {
        let state: TrainState = read_json(&dir.join("state.json"))?;
        let mut head = Self::new(state.labels.clone(), state.dim, state.options.clone())?;
        head.opt.restore(
            &dir.join("head.safetensors"),
            &dir.join("optimizer.safetensors"),
            state.step,
        )?;
        head.state = state;
        Ok(head)
    }
}
