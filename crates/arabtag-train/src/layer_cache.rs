//! The layer-state cache fine-tuning trains from: the layers below the
//! first trained one never change, so [`build_layer_cache`] runs the
//! encoder up to layer `from` over every window of the training file once
//! and keeps that layer's state at every position (special tokens
//! included, padding dropped), f16, on disk under a [`CacheKey`].

use std::collections::HashMap;
use std::path::Path;

use arabtag_infer::models::BertModel;
use arabtag_infer::pipeline::Wrapping;
use arabtag_tokenizer::SpecialTokens;
use candle_core::{Device, Tensor};
use half::f16;

use crate::TrainError;
use crate::align::AlignedSentence;
use crate::features::{CacheKey, WindowPlan, run_windows};

/// `CacheKey::format` of a layer-state cache (features caches are 1).
pub const LAYER_CACHE_FORMAT: u32 = 2;

/// One cached window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedWindow {
    /// Index of its sentence.
    pub sentence: usize,
    /// Its first row in [`LayerCache::states`] (rows are positions).
    pub row: usize,
    /// Positions, special tokens included.
    pub len: usize,
    /// `(position, word)`: the first subtokens this window counts, with the
    /// global index of their word (words of all sentences in order).
    pub targets: Vec<(usize, usize)>,
}

/// The state of one layer at every position of every window.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerCache {
    pub hidden: usize,
    pub windows: Vec<CachedWindow>,
    /// `rows × hidden` values.
    pub states: Vec<f16>,
    /// Sentence `i` owns words `word_offsets[i]..word_offsets[i + 1]`.
    pub word_offsets: Vec<usize>,
}

impl LayerCache {
    /// Number of words.
    pub fn words(&self) -> usize {
        self.word_offsets.last().copied().unwrap_or(0)
    }
}

/// Runs `bert` up to layer `from` (0: the embeddings) over every window of
/// `sentences` and keeps that layer's states; `progress` gets the content
/// tokens done after each batch.
pub fn build_layer_cache(
    bert: &BertModel,
    special: &SpecialTokens,
    sentences: &[AlignedSentence],
    from: usize,
    plan: &WindowPlan,
    progress: &mut dyn FnMut(usize),
) -> Result<LayerCache, TrainError> {
    let wrapping = Wrapping::from_special(special)?;
    let hidden = bert.dims().hidden_size;
    let prefix = wrapping.prefix.len();
    let mut word_offsets = Vec::with_capacity(sentences.len() + 1);
    word_offsets.push(0);
    for s in sentences {
        word_offsets.push(word_offsets[word_offsets.len() - 1] + s.first.len());
    }
    let mut first_of: Vec<HashMap<usize, usize>> = Vec::with_capacity(sentences.len());
    for (i, s) in sentences.iter().enumerate() {
        first_of.push(
            s.first
                .iter()
                .enumerate()
                .filter_map(|(w, t)| t.map(|t| (t, word_offsets[i] + w)))
                .collect(),
        );
    }
    let (mut windows, mut states) = (Vec::new(), Vec::new());
    run_windows(
        bert,
        &wrapping,
        sentences,
        &[from],
        plan,
        &mut |batch, rows| {
            for (job, positions) in batch.iter().zip(rows) {
                let w = &job.window;
                let len = w.tokens.len() + wrapping.specials();
                let targets = w
                    .counted
                    .clone()
                    .filter_map(|t| {
                        first_of[job.sentence]
                            .get(&t)
                            .map(|&word| (t - w.tokens.start + prefix, word))
                    })
                    .collect();
                windows.push(CachedWindow {
                    sentence: job.sentence,
                    row: states.len() / hidden,
                    len,
                    targets,
                });
                for p in positions.into_iter().take(len) {
                    states.extend(p);
                }
            }
            progress(batch.iter().map(|j| j.window.counted.len()).sum());
            Ok(())
        },
    )?;
    Ok(LayerCache {
        hidden,
        windows,
        states,
        word_offsets,
    })
}

pub(crate) fn to_u32(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// Writes `cache` under `key` in `dir` (through a temporary file); returns
/// the path.
pub fn save_layer_cache(
    dir: &Path,
    key: &CacheKey,
    cache: &LayerCache,
) -> Result<std::path::PathBuf, TrainError> {
    let device = Device::Cpu;
    let rows = cache.states.len() / cache.hidden.max(1);
    let mut windows = Vec::with_capacity(cache.windows.len() * 3);
    let mut targets = Vec::new();
    for (i, w) in cache.windows.iter().enumerate() {
        windows.extend([to_u32(w.sentence), to_u32(w.row), to_u32(w.len)]);
        for &(pos, word) in &w.targets {
            targets.extend([to_u32(i), to_u32(pos), to_u32(word)]);
        }
    }
    let n_targets = targets.len() / 3;
    let offsets: Vec<u32> = cache.word_offsets.iter().map(|&o| to_u32(o)).collect();
    let tensors = HashMap::from([
        (
            "states".to_owned(),
            Tensor::from_slice(&cache.states, (rows, cache.hidden), &device)?,
        ),
        (
            "windows".to_owned(),
            Tensor::from_vec(windows, (cache.windows.len(), 3), &device)?,
        ),
        (
            "targets".to_owned(),
            Tensor::from_vec(targets, (n_targets, 3), &device)?,
        ),
        (
            "word_offsets".to_owned(),
            Tensor::from_vec(offsets, cache.word_offsets.len(), &device)?,
        ),
    ]);
    key.store(dir, &tensors)
}

/// The cache stored under `key` in `dir`, or `None` when there is none (or
/// the key beside it differs).
pub fn load_layer_cache(dir: &Path, key: &CacheKey) -> Result<Option<LayerCache>, TrainError> {
    let Some((path, mut tensors)) = key.stored(dir)? else {
        return Ok(None);
    };
    let bad = |reason: &str| TrainError::BadCheckpoint {
        path: path.clone(),
        reason: reason.to_owned(),
    };
    let mut take = |name: &str| tensors.remove(name).ok_or_else(|| bad(name));
    let states = take("states")?;
    let windows: Vec<Vec<u32>> = take("windows")?.to_vec2()?;
    let targets: Vec<Vec<u32>> = take("targets")?.to_vec2()?;
    let word_offsets: Vec<u32> = take("word_offsets")?.to_vec1()?;
    let (rows, hidden) = states.dims2()?;
    let mut windows: Vec<CachedWindow> = windows
        .iter()
        .map(|w| CachedWindow {
            sentence: w[0] as usize,
            row: w[1] as usize,
            len: w[2] as usize,
            targets: Vec::new(),
        })
        .collect();
    for t in &targets {
        let w = windows
            .get_mut(t[0] as usize)
            .ok_or_else(|| bad("a target names no window"))?;
        w.targets.push((t[1] as usize, t[2] as usize));
    }
    if windows.iter().any(|w| w.row + w.len > rows) {
        return Err(bad("a window runs past the states"));
    }
    Ok(Some(LayerCache {
        hidden,
        windows,
        states: states.flatten_all()?.to_vec1()?,
        word_offsets: word_offsets.into_iter().map(|o| o as usize).collect(),
    }))
}
