//! Frozen features: for every word, the hidden states of its first subtoken
//! at the chosen layers, concatenated (`layers.len() × hidden` values).
//!
//! A sentence longer than a window is cut by [`arabtag_tokenizer::windows`]
//! and each token's state is taken from the window that counts it; windows
//! are sorted by length and packed into padded batches of at most
//! `batch_tokens` positions.
//!
//! # Cache file
//!
//! `features-<first 16 hex of sha256(key JSON)>.safetensors`, with the key
//! ([`CacheKey`]) beside it as `….json`. Tensors: `features` f16
//! `[words, dim]` (words of all sentences in order), `offsets` u32
//! `[sentences + 1]` (sentence `i` owns rows `offsets[i]..offsets[i+1]`),
//! `present` u8 `[words]` (0 for a word without a token: its row is zero).
//! A cache is reused only when its JSON equals the key asked for.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arabtag_tokenizer::{SpecialTokens, Window, windows};
use candle_core::{DType, Device, Tensor};
use half::f16;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::align::AlignedSentence;
use crate::TrainError;
use arabtag_infer::models::BertModel;
use arabtag_infer::models::Encoder;
use arabtag_infer::pipeline::Wrapping;

/// Version of the cache layout, part of the key.
pub const CACHE_FORMAT: u32 = 1;
/// Default tokens two consecutive windows share.
pub const DEFAULT_STRIDE: usize = 128;
/// Default most positions (rows × longest window) in one batch.
pub const DEFAULT_BATCH_TOKENS: usize = 4096;

/// What to extract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Layers (0 = embeddings, 1-based transformer layers), in this order.
    pub layers: Vec<usize>,
    /// Content tokens per window at most (`None`: the encoder's positions
    /// less the special tokens).
    pub max_len: Option<usize>,
    /// Tokens consecutive windows share.
    pub stride: usize,
    /// Most padded positions in one batch.
    pub batch_tokens: usize,
}

/// First-subtoken features of a list of sentences.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Values per word.
    pub dim: usize,
    /// Sentence `i` owns words `offsets[i]..offsets[i + 1]`.
    pub offsets: Vec<usize>,
    /// `words × dim` values.
    pub values: Vec<f16>,
    /// Per word: whether it had a token (else its row is zero).
    pub present: Vec<bool>,
}

impl Features {
    /// Number of words.
    pub fn words(&self) -> usize {
        self.present.len()
    }

    /// Number of sentences.
    pub fn sentences(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Row `word` as f16 values.
    pub fn row(&self, word: usize) -> &[f16] {
        &self.values[word * self.dim..(word + 1) * self.dim]
    }
}

/// One window of one sentence, as [`run_windows`] runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowJob {
    /// Index of the sentence.
    pub sentence: usize,
    /// The window over its content tokens.
    pub window: Window,
}

/// How [`run_windows`] cuts and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPlan {
    /// Content tokens per window at most.
    pub max_len: usize,
    /// Tokens consecutive windows share (lowered to `max_len - 1`).
    pub stride: usize,
    /// Most padded positions in one batch.
    pub batch_tokens: usize,
}

impl WindowPlan {
    /// The plan for `bert`: `max_len` (or, when `None`, the encoder's
    /// positions less the special tokens) capped by the encoder.
    pub fn for_encoder(
        bert: &BertModel,
        wrapping: &Wrapping,
        max_len: Option<usize>,
        stride: usize,
        batch_tokens: usize,
    ) -> Result<Self, TrainError> {
        let room = bert.max_positions().saturating_sub(wrapping.specials());
        let max_len = max_len.unwrap_or(room).min(room);
        if max_len == 0 {
            return Err(TrainError::WindowTooLong {
                window: 1,
                specials: wrapping.specials(),
                max_positions: bert.max_positions(),
            });
        }
        Ok(Self {
            max_len,
            stride: stride.min(max_len.saturating_sub(1)),
            batch_tokens,
        })
    }

    /// Every window of `sentences`, sorted by length (then sentence and
    /// start).
    pub fn jobs(&self, sentences: &[AlignedSentence]) -> Result<Vec<WindowJob>, TrainError> {
        let mut jobs = Vec::new();
        for (i, s) in sentences.iter().enumerate() {
            if s.ids.is_empty() {
                continue;
            }
            for window in windows(s.ids.len(), self.max_len, self.stride)? {
                jobs.push(WindowJob {
                    sentence: i,
                    window,
                });
            }
        }
        jobs.sort_by_key(|j| (j.window.tokens.len(), j.sentence, j.window.tokens.start));
        Ok(jobs)
    }
}

/// What [`run_windows`] hands each batch to: the windows and their states
/// `[row][position][value]`.
pub type BatchStates<'a> =
    dyn FnMut(&[WindowJob], Vec<Vec<Vec<f16>>>) -> Result<(), TrainError> + 'a;

/// Runs `bert` over every window of `sentences` (see [`WindowPlan`]), in
/// length-sorted padded batches, and hands `each` the batch's windows and
/// the states of `layers` (concatenated, f16) as `[row][position][value]`,
/// position 0 being the window's first special token.
pub fn run_windows(
    bert: &BertModel,
    wrapping: &Wrapping,
    sentences: &[AlignedSentence],
    layers: &[usize],
    plan: &WindowPlan,
    each: &mut BatchStates<'_>,
) -> Result<(), TrainError> {
    let jobs = plan.jobs(sentences)?;
    let device = Device::Cpu;
    let mut start = 0;
    while start < jobs.len() {
        let mut end = start + 1;
        while end < jobs.len()
            && (end + 1 - start) * (jobs[end].window.tokens.len() + wrapping.specials())
                <= plan.batch_tokens
        {
            end += 1;
        }
        let batch = &jobs[start..end];
        let seq = batch
            .iter()
            .map(|j| j.window.tokens.len())
            .max()
            .unwrap_or(0)
            + wrapping.specials();
        let mut ids = Vec::with_capacity(batch.len() * seq);
        let mut mask = Vec::with_capacity(batch.len() * seq);
        for j in batch {
            let row: Vec<u32> = wrapping
                .prefix
                .iter()
                .chain(&sentences[j.sentence].ids[j.window.tokens.clone()])
                .chain(&wrapping.suffix)
                .copied()
                .collect();
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            mask.extend(std::iter::repeat_n(0u32, seq - row.len()));
            ids.extend(row.iter().copied());
            ids.extend(std::iter::repeat_n(wrapping.pad, seq - row.len()));
        }
        let ids = Tensor::from_vec(ids, (batch.len(), seq), &device)?;
        let mask = Tensor::from_vec(mask, (batch.len(), seq), &device)?;
        let states = bert.forward_layers(&ids, &mask, layers)?;
        let states = Tensor::cat(&states, 2)?.to_dtype(DType::F16)?;
        each(batch, states.to_vec3()?)?;
        start = end;
    }
    Ok(())
}

/// Extracts the features of `sentences`; `progress` is called with the
/// number of content tokens done after each batch.
pub fn extract_features(
    bert: &BertModel,
    special: &SpecialTokens,
    sentences: &[AlignedSentence],
    spec: &FeatureSpec,
    progress: &mut dyn FnMut(usize),
) -> Result<Features, TrainError> {
    let wrapping = Wrapping::from_special(special)?;
    let hidden = bert.hidden_size();
    let dim = hidden * spec.layers.len();
    let plan = WindowPlan::for_encoder(
        bert,
        &wrapping,
        spec.max_len,
        spec.stride,
        spec.batch_tokens,
    )?;
    let mut offsets = Vec::with_capacity(sentences.len() + 1);
    offsets.push(0);
    let mut present = Vec::new();
    for s in sentences {
        present.extend(s.first.iter().map(Option::is_some));
        offsets.push(present.len());
    }
    let mut values = vec![f16::ZERO; present.len() * dim];
    // Where each (sentence, token) first-subtoken feature goes.
    let mut target: Vec<HashMap<usize, usize>> = Vec::with_capacity(sentences.len());
    for (i, s) in sentences.iter().enumerate() {
        let map = s
            .first
            .iter()
            .enumerate()
            .filter_map(|(w, t)| t.map(|t| (t, offsets[i] + w)))
            .collect();
        target.push(map);
    }
    let prefix = wrapping.prefix.len();
    run_windows(
        bert,
        &wrapping,
        sentences,
        &spec.layers,
        &plan,
        &mut |batch, states| {
            let mut done = 0;
            for (job, rows) in batch.iter().zip(&states) {
                let w = &job.window;
                for t in w.counted.clone() {
                    if let Some(&word) = target[job.sentence].get(&t) {
                        let pos = t - w.tokens.start + prefix;
                        values[word * dim..(word + 1) * dim].copy_from_slice(&rows[pos]);
                    }
                }
                done += w.counted.len();
            }
            progress(done);
            Ok(())
        },
    )?;
    Ok(Features {
        dim,
        offsets,
        values,
        present,
    })
}

/// What a cache file was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    pub format: u32,
    /// sha256 of the encoder's weights file.
    pub model_sha256: String,
    /// sha256 of the tokenizer file.
    pub tokenizer_sha256: String,
    /// The normaliser settings, as they print.
    pub normalizer: String,
    /// sha256 of the data file.
    pub data_sha256: String,
    pub layers: Vec<usize>,
    pub max_len: Option<usize>,
    pub stride: usize,
}

impl CacheKey {
    /// The cache file's path in `dir`.
    pub fn path(&self, dir: &Path) -> PathBuf {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&json);
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        dir.join(format!("features-{hex}.safetensors"))
    }
}

/// Tensors by name, as a safetensors file holds them.
pub type NamedTensors = HashMap<String, Tensor>;

impl CacheKey {
    /// Writes `tensors` as this key's cache file in `dir` (through a
    /// temporary file, so a cache is never half-written) and the key beside
    /// it as JSON; returns the cache file's path.
    pub fn store(&self, dir: &Path, tensors: &NamedTensors) -> Result<PathBuf, TrainError> {
        std::fs::create_dir_all(dir).map_err(|source| TrainError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let path = self.path(dir);
        let tmp = path.with_extension("safetensors.tmp");
        candle_core::safetensors::save(tensors, &tmp)?;
        std::fs::rename(&tmp, &path).map_err(|source| TrainError::Write {
            path: path.clone(),
            source,
        })?;
        crate::files::write_json(&path.with_extension("json"), self)?;
        Ok(path)
    }

    /// This key's cache file in `dir` and its tensors, or `None` when there
    /// is none or the key stored beside it differs.
    pub fn stored(&self, dir: &Path) -> Result<Option<(PathBuf, NamedTensors)>, TrainError> {
        let path = self.path(dir);
        let json_path = path.with_extension("json");
        if !json_path.exists() || !path.exists() {
            return Ok(None);
        }
        let stored: CacheKey = crate::files::read_json(&json_path)?;
        if &stored != self {
            return Ok(None);
        }
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu)?;
        Ok(Some((path, tensors)))
    }
}

/// Writes `features` under `key` in `dir` (through a temporary file, so a
/// cache is never half-written); returns the path.
pub fn save_cache(dir: &Path, key: &CacheKey, features: &Features) -> Result<PathBuf, TrainError> {
    let device = Device::Cpu;
    let words = features.words();
    let to_u32 = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    let tensors = HashMap::from([
        (
            "features".to_owned(),
            Tensor::from_slice(&features.values, (words, features.dim), &device)?,
        ),
        (
            "offsets".to_owned(),
            Tensor::from_vec(
                features
                    .offsets
                    .iter()
                    .map(|&o| to_u32(o))
                    .collect::<Vec<_>>(),
                features.offsets.len(),
                &device,
            )?,
        ),
        (
            "present".to_owned(),
            Tensor::from_vec(
                features
                    .present
                    .iter()
                    .map(|&p| u8::from(p))
                    .collect::<Vec<_>>(),
                words,
                &device,
            )?,
        ),
    ]);
    key.store(dir, &tensors)
}

/// The cached features for `key` in `dir`, or `None` when there are none
/// (or the key beside them differs).
pub fn load_cache(dir: &Path, key: &CacheKey) -> Result<Option<Features>, TrainError> {
    let Some((path, mut tensors)) = key.stored(dir)? else {
        return Ok(None);
    };
    let bad = |reason: &str| TrainError::BadCheckpoint {
        path: path.clone(),
        reason: reason.to_owned(),
    };
    let mut take = |name: &str| tensors.remove(name).ok_or_else(|| bad(name));
    let features = take("features")?;
    let offsets: Vec<u32> = take("offsets")?.to_vec1()?;
    let present: Vec<u8> = take("present")?.to_vec1()?;
    let (words, dim) = features.dims2()?;
    let offsets: Vec<usize> = offsets.into_iter().map(|o| o as usize).collect();
    if present.len() != words || offsets.last().copied() != Some(words) {
        return Err(bad("offsets, present and features disagree"));
    }
    Ok(Some(Features {
        dim,
        offsets,
        values: features.flatten_all()?.to_vec1()?,
        present: present.into_iter().map(|p| p != 0).collect(),
    }))
}
