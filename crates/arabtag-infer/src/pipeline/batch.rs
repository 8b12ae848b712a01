//! Windows to per-token logits: batching, padding, running the model, and
//! merging the windows back.
//!
//! Every window of every document is one row of a batch. Rows are sorted by
//! length (longest first, ties in input order) so that a batch pads little,
//! cut into batches of at most `batch_size` rows, wrapped in the model's
//! special tokens (`<s> … </s>`, `[CLS] … [SEP]`) and padded on the right
//! with the pad id; the attention mask is 1 on real tokens (specials
//! included) and 0 on padding. The encoder gives hidden states, the head
//! turns them into logits, and each token's row is taken from the one window
//! that *counts* it ([`arabtag_tokenizer::Window::counted`]: the window where
//! it is most central). The result is in input order, whatever the sort did.
//!
//! One document's failure does not sink the others: a batch that fails is
//! run again window by window, and an error is charged only to the document
//! whose own window fails.

use std::ops::Range;

use arabtag_tokenizer::{SpecialTokens, Window};
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use crate::InferError;
use crate::models::Encoder;
use crate::pipeline::work::{self, Work};

/// The special tokens put around each window and the padding id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapping {
    /// Ids before the window's tokens (`<s>`, `[CLS]`).
    pub prefix: Vec<u32>,
    /// Ids after the window's tokens (`</s>`, `[SEP]`).
    pub suffix: Vec<u32>,
    /// The id padded rows are filled with (masked out).
    pub pad: u32,
}

impl Wrapping {
    /// The tokenizer's wrapping; errors when it names no padding token.
    pub fn from_special(special: &SpecialTokens) -> Result<Self, InferError> {
        Ok(Self {
            prefix: special.prefix.clone(),
            suffix: special.suffix.clone(),
            pad: special.pad.ok_or(InferError::MissingPad)?,
        })
    }

    /// How many special tokens one window carries.
    pub fn specials(&self) -> usize {
        self.prefix.len() + self.suffix.len()
    }
}

/// One document's token ids and the windows planned over them.
#[derive(Debug, Clone, Copy)]
pub struct WindowedDoc<'a> {
    pub ids: &'a [u32],
    /// Windows whose `counted` ranges partition `0..ids.len()`, as
    /// [`arabtag_tokenizer::windows`] plans them.
    pub windows: &'a [Window],
}

/// A window of a document: indices into the input of [`token_logits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowRef {
    pub doc: usize,
    pub window: usize,
}

/// How windows are batched and what the head must give.
#[derive(Debug, Clone, Copy)]
pub struct Batching<'a> {
    pub wrapping: &'a Wrapping,
    /// Most windows in one batch (at least 1).
    pub batch_size: usize,
    /// Labels the head gives per position (its last dimension).
    pub num_labels: usize,
    /// Where the id and mask tensors are made.
    pub device: &'a Device,
    /// Counts the windows planned and run, when given.
    pub work: Option<&'a Work>,
}

/// Logit rows of one document: one `Vec` of `num_labels` values per token,
/// in token order.
pub type TokenRows = Vec<Vec<f32>>;

/// Every window of the valid documents, sorted by length (longest first,
/// ties in document then window order), cut into batches of at most
/// `batch_size` windows and [`MAX_BATCH_TOKENS`] content tokens (a longer
/// window is a batch of its own). Documents with `skip[doc]` set are left out.
pub fn plan_batches(
    docs: &[WindowedDoc<'_>],
    skip: &[bool],
    batch_size: usize,
) -> Result<Vec<Vec<WindowRef>>, InferError> {
    if batch_size == 0 {
        return Err(InferError::ZeroBatchSize);
    }
    let mut refs: Vec<(usize, WindowRef)> = Vec::new();
    for (doc, d) in docs.iter().enumerate() {
        if skip.get(doc).copied().unwrap_or(false) {
            continue;
        }
        for (window, w) in d.windows.iter().enumerate() {
            refs.push((w.tokens.len(), WindowRef { doc, window }));
        }
    }
    // Stable: equal lengths keep input order.
    refs.sort_by_key(|&(len, _)| std::cmp::Reverse(len));
    let runs = budget_runs(refs.iter().map(|&(len, _)| len), batch_size);
    Ok(runs
        .into_iter()
        .map(|run| refs[run].iter().map(|&(_, r)| r).collect())
        .collect())
}

/// Rows of `lengths` (sorted longest first) cut into consecutive runs of at
/// most `batch_size` rows and [`MAX_BATCH_TOKENS`] padded positions, the
/// run's first (longest) row setting its width; a row longer than the budget
/// is a run of its own. The NER windows' batches and the stance segments'
/// both follow it.
pub(crate) fn budget_runs(
    lengths: impl IntoIterator<Item = usize>,
    batch_size: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    let mut longest = 0;
    for (i, len) in lengths.into_iter().enumerate() {
        match runs.last_mut() {
            Some(run)
                if run.len() < batch_size
                    && (run.len() + 1) * longest <= MAX_BATCH_TOKENS.max(longest) =>
            {
                run.end = i + 1;
            }
            _ => {
                longest = len;
                runs.push(i..i + 1);
            }
        }
    }
    runs
}

/// Most padded positions (rows × longest window) in one batch. The attention
/// scores of a batch take `rows × heads × seq²` floats: 16 windows of 510
/// tokens with 12 heads are 200 MB a tensor, one window 12.5 MB. With the
/// 8-bit products, small batches lose nothing: the ANERcorp test file
/// tagged in 4.7-4.8 s with 256, 5.3-5.5 s with 512 and 7.1-8.3 s with
/// 1,024, and the seeds at 300-313 MB of peak RSS against 329 MB with
/// 1,024 (`/usr/bin/time arabtag tag`, 2 cores). A longer window is a batch
/// of its own.
pub const MAX_BATCH_TOKENS: usize = 256;

/// A padded batch as flat `[rows, seq]` id and mask buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedBatch {
    pub ids: Vec<u32>,
    pub mask: Vec<u32>,
    pub rows: usize,
    pub seq: usize,
}

impl PackedBatch {
    /// The `[rows, seq]` `u32` id and mask tensors.
    pub fn tensors(&self, device: &Device) -> Result<(Tensor, Tensor), InferError> {
        let shape = (self.rows, self.seq);
        let ids = Tensor::from_slice(&self.ids, shape, device)?;
        let mask = Tensor::from_slice(&self.mask, shape, device)?;
        Ok((ids, mask))
    }
}

/// Wraps each window of `refs` in the special tokens and pads every row to
/// the longest. The refs must name existing windows inside their documents
/// ([`check_windows`]).
pub fn pack(docs: &[WindowedDoc<'_>], refs: &[WindowRef], wrapping: &Wrapping) -> PackedBatch {
    let content = |r: &WindowRef| -> &[u32] {
        docs.get(r.doc)
            .and_then(|d| {
                let w = d.windows.get(r.window)?;
                d.ids.get(w.tokens.clone())
            })
            .unwrap_or_default()
    };
    pack_rows(&refs.iter().map(content).collect::<Vec<_>>(), wrapping)
}

/// Wraps each row of content ids in the special tokens and pads every row
/// to the longest: the one batch builder, for NER windows ([`pack`]) and
/// stance segments alike. The mask is 1 on real tokens (specials included)
/// and 0 on padding.
pub fn pack_rows(rows: &[&[u32]], wrapping: &Wrapping) -> PackedBatch {
    let seq = rows
        .iter()
        .map(|row| row.len() + wrapping.specials())
        .max()
        .unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len() * seq);
    let mut mask = Vec::with_capacity(rows.len() * seq);
    for row in rows {
        let real = row.len() + wrapping.specials();
        ids.extend_from_slice(&wrapping.prefix);
        ids.extend_from_slice(row);
        ids.extend_from_slice(&wrapping.suffix);
        ids.extend(std::iter::repeat_n(wrapping.pad, seq - real));
        mask.extend(std::iter::repeat_n(1, real));
        mask.extend(std::iter::repeat_n(0, seq - real));
    }
    PackedBatch {
        ids,
        mask,
        rows: rows.len(),
        seq,
    }
}

/// Runs the encoder and the head on a packed batch: logits
/// `[rows][seq][num_labels]` as `f32`, whatever dtype the head gives.
pub fn run_batch<H>(
    batch: &PackedBatch,
    batching: &Batching<'_>,
    model: &dyn Encoder,
    head: &H,
) -> Result<Vec<Vec<Vec<f32>>>, InferError>
where
    H: Fn(&Tensor) -> Result<Tensor, InferError> + ?Sized,
{
    let (ids, mask) = batch.tensors(batching.device)?;
    let hidden = model.forward(&ids, &mask)?;
    let expected = vec![batch.rows, batch.seq, model.hidden_size()];
    if hidden.dims() != expected.as_slice() {
        return Err(InferError::Shape {
            what: "the encoder's hidden states",
            expected,
            got: hidden.dims().to_vec(),
        });
    }
    let logits = head(&hidden)?;
    let expected = vec![batch.rows, batch.seq, batching.num_labels];
    if logits.dims() != expected.as_slice() {
        return Err(InferError::Shape {
            what: "the head's logits",
            expected,
            got: logits.dims().to_vec(),
        });
    }
    Ok(logits.to_dtype(DType::F32)?.to_vec3::<f32>()?)
}

/// Checks that a document's windows lie inside it, fit the model, and count
/// every token exactly once.
pub fn check_windows(
    doc: &WindowedDoc<'_>,
    wrapping: &Wrapping,
    max_positions: usize,
) -> Result<(), InferError> {
    let n = doc.ids.len();
    let mut next = 0;
    for w in doc.windows {
        let inside = |r: &Range<usize>| r.start <= r.end && r.end <= n;
        let holds = w.tokens.start <= w.counted.start && w.counted.end <= w.tokens.end;
        if !inside(&w.tokens) || !inside(&w.counted) || !holds {
            return Err(InferError::WindowOutOfRange {
                start: w.tokens.start,
                end: w.tokens.end,
                tokens: n,
            });
        }
        if w.tokens.len() + wrapping.specials() > max_positions {
            return Err(InferError::WindowTooLong {
                window: w.tokens.len(),
                specials: wrapping.specials(),
                max_positions,
            });
        }
        if w.counted.start != next {
            return Err(InferError::WindowCoverage {
                token: next.min(w.counted.start),
                tokens: n,
            });
        }
        next = w.counted.end;
    }
    if next != n {
        return Err(InferError::WindowCoverage {
            token: next,
            tokens: n,
        });
    }
    Ok(())
}

/// Per-document logit rows of every token, in token order and in input
/// order, each row from the window that counts the token.
///
/// The outer error is a setting that fails every document (a zero batch
/// size); each document's own result is inside. A document whose windows are
/// invalid ([`check_windows`]) or whose window fails in the model gets that
/// error; the others are unaffected.
pub fn token_logits<H>(
    docs: &[WindowedDoc<'_>],
    batching: &Batching<'_>,
    model: &dyn Encoder,
    head: &H,
) -> Result<Vec<Result<TokenRows, InferError>>, InferError>
where
    H: Fn(&Tensor) -> Result<Tensor, InferError> + Sync + ?Sized,
{
    let mut errors: Vec<Option<InferError>> = docs
        .iter()
        .map(|d| check_windows(d, batching.wrapping, model.max_positions()).err())
        .collect();
    let skip: Vec<bool> = errors.iter().map(Option::is_some).collect();
    let batches = plan_batches(docs, &skip, batching.batch_size)?;
    work::plan(batching.work, batches.iter().map(Vec::len).sum());
    let _span =
        tracing::debug_span!("token_logits", docs = docs.len(), batches = batches.len()).entered();
    let mut rows: Vec<Vec<Option<Vec<f32>>>> =
        docs.iter().map(|d| vec![None; d.ids.len()]).collect();
    // The batches run side by side on rayon's threads (each batch's own ops
    // split across them too): a thread done with its share of one product
    // takes up another batch instead of waiting.
    let outs: Vec<_> = batches
        .par_iter()
        .map(|refs| {
            let out = run_batch(&pack(docs, refs, batching.wrapping), batching, model, head);
            work::finish(batching.work, refs.len());
            out
        })
        .collect();
    for (refs, out) in batches.iter().zip(outs) {
        match out {
            Ok(out) => scatter(docs, refs, out, batching.wrapping, &mut rows),
            Err(err) => {
                tracing::debug!(error = %err, rows = refs.len(), "batch failed; retrying its windows one by one");
                for r in refs {
                    if errors[r.doc].is_some() {
                        continue;
                    }
                    let one = std::slice::from_ref(r);
                    let packed = pack(docs, one, batching.wrapping);
                    match run_batch(&packed, batching, model, head) {
                        Ok(out) => scatter(docs, one, out, batching.wrapping, &mut rows),
                        Err(err) => errors[r.doc] = Some(err),
                    }
                }
            }
        }
    }
    Ok(rows
        .into_iter()
        .zip(errors)
        .map(|(doc_rows, error)| match error {
            Some(err) => Err(err),
            None => {
                let tokens = doc_rows.len();
                doc_rows
                    .into_iter()
                    .enumerate()
                    .map(|(token, row)| row.ok_or(InferError::WindowCoverage { token, tokens }))
                    .collect()
            }
        })
        .collect())
}

/// Moves the counted positions of each row of `out` to their documents.
fn scatter(
    docs: &[WindowedDoc<'_>],
    refs: &[WindowRef],
    out: Vec<Vec<Vec<f32>>>,
    wrapping: &Wrapping,
    rows: &mut [Vec<Option<Vec<f32>>>],
) {
    for (r, mut positions) in refs.iter().zip(out) {
        let Some(w) = docs.get(r.doc).and_then(|d| d.windows.get(r.window)) else {
            continue;
        };
        let Some(doc_rows) = rows.get_mut(r.doc) else {
            continue;
        };
        for token in w.counted.clone() {
            let pos = wrapping.prefix.len() + token - w.tokens.start;
            if let (Some(slot), Some(row)) = (doc_rows.get_mut(token), positions.get_mut(pos)) {
                *slot = Some(std::mem::take(row));
            }
        }
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
