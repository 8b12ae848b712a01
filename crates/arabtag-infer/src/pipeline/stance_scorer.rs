//! Segment stance scores, one scorer for the three methods a model config
//! may name: prototypes (the best cosine to each label's descriptions), a
//! trained head over the segment's pooled states, or zero-shot NLI. What
//! [`super::stance`] then thresholds.
//!
//! Segments are encoded by a [`SegmentEncoder`]: each text's subword ids,
//! split into parts that fit one window (nothing is cut off), sorted by
//! length and packed into batches by [`pack_rows`], the batch builder NER
//! uses too.

use arabtag_records::{CharText, Span};
use arabtag_tokenizer::SubwordEncoder;
use candle_core::{D, DType, Device, Tensor};
use rayon::prelude::*;

use super::batch::{PackedBatch, Wrapping, budget_runs, pack_rows};
use super::shared::{Branch, SharedStates};
use super::stance::StanceScores;
use super::work::{self, Work};
use crate::InferError;
use crate::models::{Encoder, PooledClassifier, SequenceHead, sentence_embeddings};

/// An encoder with the tokenizer and wrapping its segments go through.
#[derive(Debug, Clone, Copy)]
pub struct SegmentEncoder<'a> {
    pub tokenizer: &'a SubwordEncoder,
    pub encoder: &'a dyn Encoder,
    pub wrapping: &'a Wrapping,
    pub device: &'a Device,
    /// Most segment parts in one batch.
    pub batch_size: usize,
    /// Counts the segment parts planned and run, when given.
    pub work: Option<&'a Work>,
    /// States NER kept this run, for a head on the NER network
    /// (`stance.trunk = "ner"`).
    pub shared: Option<&'a SharedStates>,
}

/// A padded batch of segment parts, and per row its text index and
/// content-token count.
#[derive(Debug)]
struct Batch {
    ids: Tensor,
    mask: Tensor,
    rows: Vec<(usize, usize)>,
}

impl SegmentEncoder<'_> {
    /// Unit sentence embeddings of `texts` (the e5 recipe: mean-pooled,
    /// L2-normalised last hidden state), in order. A text longer than one
    /// window is embedded in parts, and the parts' mean (weighted by their
    /// tokens) is normalised again: nothing is cut off.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, InferError> {
        let mut sums: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        // The batches side by side on rayon's threads; their rows added up
        // in batch order.
        let batches = self.batches(texts)?;
        let embedded = batches
            .par_iter()
            .map(|batch| {
                let rows =
                    sentence_embeddings(self.encoder, &batch.ids, &batch.mask)?.to_vec2::<f32>()?;
                work::finish(self.work, batch.rows.len());
                Ok(rows)
            })
            .collect::<Result<Vec<_>, InferError>>()?;
        for (batch, embeddings) in batches.iter().zip(embedded) {
            for (row, (text, weight)) in embeddings.into_iter().zip(&batch.rows) {
                let sum = &mut sums[*text];
                if sum.is_empty() {
                    sum.resize(row.len(), 0.0);
                }
                for (s, x) in sum.iter_mut().zip(row) {
                    *s += x * *weight as f32;
                }
            }
        }
        Ok(sums
            .into_iter()
            .map(|mut v| {
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|x| *x /= norm);
                v
            })
            .collect())
    }

    /// `texts` encoded, split into parts that fit one window with the
    /// special tokens, sorted by length and packed into batches.
    fn batches(&self, texts: &[String]) -> Result<Vec<Batch>, InferError> {
        let room = self
            .encoder
            .max_positions()
            .saturating_sub(self.wrapping.specials())
            .max(1);
        let mut parts: Vec<(usize, Vec<u32>)> = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let ids = self.tokenizer.encode(text)?.ids();
            if ids.is_empty() {
                parts.push((i, Vec::new()));
            }
            for chunk in ids.chunks(room) {
                parts.push((i, chunk.to_vec()));
            }
        }
        parts.sort_by_key(|(_, ids)| std::cmp::Reverse(ids.len()));
        // At most `batch_size` rows and MAX_BATCH_TOKENS padded positions a
        // batch (a longer part alone), as for NER: 16 segments of 175 tokens
        // had 23 MB attention tensors, three alive at once.
        let runs = budget_runs(
            parts
                .iter()
                .map(|(_, ids)| ids.len() + self.wrapping.specials()),
            self.batch_size.max(1),
        );
        work::plan(self.work, parts.len());
        let mut batches = Vec::with_capacity(runs.len());
        for group in runs.into_iter().map(|run| &parts[run]) {
            let rows: Vec<&[u32]> = group.iter().map(|(_, ids)| ids.as_slice()).collect();
            let packed: PackedBatch = pack_rows(&rows, self.wrapping);
            let (ids, mask) = packed.tensors(self.device)?;
            batches.push(Batch {
                ids,
                mask,
                rows: group
                    .iter()
                    .map(|(text, content)| (*text, content.len().max(1)))
                    .collect(),
            });
        }
        Ok(batches)
    }
}

/// How a model scores a segment's stance labels (guideline order).
#[derive(Debug)]
pub enum StanceScorer {
    /// Per label, the unit embeddings `[n, h]` of its descriptions; a
    /// segment's score is its best cosine to them.
    Prototypes {
        prefix: String,
        prototypes: Vec<Tensor>,
    },
    /// A trained head over the segment's mean-pooled, normalised states;
    /// `order[i]` is the head output of the guideline's i-th label;
    /// `encoder`: the encoder with the layers the head file fine-tuned (in
    /// place of the model's own), when it carries any; `branch`: on the NER
    /// network (`stance.trunk = "ner"`), the layers `(from, to)` it shares
    /// up to and reads at (`encoder` is then that network).
    Head {
        head: PooledClassifier,
        order: [usize; 3],
        encoder: Option<Box<dyn Encoder>>,
        branch: Option<(usize, usize)>,
    },
    /// Zero-shot NLI: the segment entails the label's hypothesis.
    Nli {
        head: Box<dyn SequenceHead>,
        hypotheses: Vec<String>,
        entailment: usize,
        contradiction: Option<usize>,
    },
}

impl StanceScorer {
    /// For a head on the NER network (`stance.trunk = "ner"`), the layers
    /// `(from, to)` it shares up to and reads at.
    pub fn branch(&self) -> Option<(usize, usize)> {
        match self {
            Self::Head { branch, .. } => *branch,
            _ => None,
        }
    }

    /// The prototypes scorer: `descriptions[i]` are the texts of the
    /// guideline's i-th label, embedded here with `prefix` before each.
    pub fn prototypes(
        enc: &SegmentEncoder<'_>,
        prefix: &str,
        descriptions: &[Vec<String>],
    ) -> Result<Self, InferError> {
        let mut prototypes = Vec::with_capacity(descriptions.len());
        for texts in descriptions {
            let texts: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
            prototypes.push(Tensor::new(enc.embed(&texts)?, enc.device)?);
        }
        Ok(Self::Prototypes {
            prefix: prefix.to_owned(),
            prototypes,
        })
    }

    /// The scores of `text`'s segments `spans`, one row each.
    pub fn scores(
        &self,
        enc: &SegmentEncoder<'_>,
        text: &str,
        spans: &[Span],
    ) -> Result<Vec<StanceScores>, InferError> {
        self.score_segments(enc, &segment_texts(text, spans))
    }

    /// [`Self::scores`] of several documents, `(text, spans)` each, in
    /// order. The head scores every document's segments together: one sort
    /// by length and one set of batches across the documents, as NER
    /// batches its windows, instead of a few small, padded batches a
    /// document; a segment's rows do not depend on the rows beside them, so
    /// the scores are the same bits. Should that fail anywhere, each
    /// document is scored on its own, so that an error is charged only to
    /// the document that causes it. The prototypes and NLI score document
    /// by document, side by side: the prototypes' cosines come from one
    /// product over a document's segments, whose last bits depend on how
    /// many there are.
    pub fn scores_documents(
        &self,
        enc: &SegmentEncoder<'_>,
        docs: &[(&str, &[Span])],
    ) -> Vec<Result<Vec<StanceScores>, InferError>> {
        let each = || {
            docs.par_iter()
                .map(|(text, spans)| self.scores(enc, text, spans))
                .collect()
        };
        if !matches!(self, Self::Head { .. }) || docs.len() < 2 {
            return each();
        }
        let mut all = Vec::new();
        for (text, spans) in docs {
            all.extend(segment_texts(text, spans));
        }
        match self.score_segments(enc, &all) {
            Ok(scores) => {
                let mut scores = scores.into_iter();
                docs.iter()
                    .map(|(_, spans)| Ok(scores.by_ref().take(spans.len()).collect()))
                    .collect()
            }
            Err(err) => {
                tracing::debug!(error = %err, docs = docs.len(), "stance across documents failed; scoring them one by one");
                each()
            }
        }
    }

    /// The scores of `segments`, one row each.
    fn score_segments(
        &self,
        enc: &SegmentEncoder<'_>,
        segments: &[String],
    ) -> Result<Vec<StanceScores>, InferError> {
        match self {
            Self::Prototypes { prefix, prototypes } => {
                let texts: Vec<String> = segments.iter().map(|s| format!("{prefix}{s}")).collect();
                let rows = enc.embed(&texts)?;
                let mut scores = vec![[0.0; 3]; rows.len()];
                if rows.is_empty() {
                    return Ok(scores);
                }
                // All segments at once: [descriptions, h] x [h, segments],
                // then the best description per segment.
                let segments_t = Tensor::new(rows, enc.device)?.t()?;
                for (i, protos) in prototypes.iter().enumerate() {
                    let best = protos.matmul(&segments_t)?.max(0)?.to_vec1::<f32>()?;
                    for (s, cos) in scores.iter_mut().zip(best) {
                        s[i] = f64::from(cos);
                    }
                }
                Ok(scores)
            }
            Self::Head {
                head,
                order,
                encoder,
                branch,
            } => {
                let own = encoder.as_deref().unwrap_or(enc.encoder);
                let on_ner = match (branch, own.as_bert()) {
                    (Some((from, to)), Some(network)) => Some(Branch {
                        network,
                        from: *from,
                        to: *to,
                        shared: enc.shared,
                    }),
                    _ => None,
                };
                let enc = SegmentEncoder {
                    encoder: on_ner.as_ref().map_or(own, |b| b as &dyn Encoder),
                    ..*enc
                };
                // Per segment, the token-weighted mean of its parts' outputs,
                // added up in batch order. The batches run side by side on
                // rayon's threads, as NER's do.
                let mut sums = vec![([0.0f64; 3], 0usize); segments.len()];
                let batches = enc.batches(segments)?;
                let probs = batches
                    .par_iter()
                    .map(|batch| {
                        let hidden = enc.encoder.forward(&batch.ids, &batch.mask)?;
                        let probs = candle_nn::ops::sigmoid(&head.forward(&hidden, &batch.mask)?)?
                            .to_vec2::<f32>()?;
                        work::finish(enc.work, batch.rows.len());
                        Ok(probs)
                    })
                    .collect::<Result<Vec<_>, InferError>>()?;
                for (batch, probs) in batches.iter().zip(probs) {
                    for (row, (text, weight)) in probs.iter().zip(&batch.rows) {
                        let (sum, total) = &mut sums[*text];
                        for (s, o) in sum.iter_mut().zip(order) {
                            *s += f64::from(row[*o]) * *weight as f64;
                        }
                        *total += weight;
                    }
                }
                Ok(sums
                    .into_iter()
                    .map(|(sum, total)| sum.map(|s| s / total.max(1) as f64))
                    .collect())
            }
            Self::Nli {
                head,
                hypotheses,
                entailment,
                contradiction,
            } => {
                let mut scores = Vec::with_capacity(segments.len());
                for segment in segments {
                    let mut s = [0.0; 3];
                    for (i, hypothesis) in hypotheses.iter().enumerate() {
                        s[i] = entailment_probability(
                            enc,
                            head.as_ref(),
                            segment,
                            hypothesis,
                            *entailment,
                            *contradiction,
                        )?;
                    }
                    scores.push(s);
                }
                Ok(scores)
            }
        }
    }
}

/// The text of each of `spans` (characters of `text`; an out-of-range span
/// gives "").
fn segment_texts(text: &str, spans: &[Span]) -> Vec<String> {
    let chars = CharText::new(text);
    spans
        .iter()
        .map(|s| chars.slice(s.start, s.end).unwrap_or_default().to_owned())
        .collect()
}

/// The probability that `premise` entails `hypothesis` (HF's zero-shot
/// multi-label rule: softmax over entailment and contradiction when the
/// checkpoint has both, else over every label). A premise too long for
/// one window is split at word boundaries and the best part counts.
fn entailment_probability(
    enc: &SegmentEncoder<'_>,
    head: &dyn SequenceHead,
    premise: &str,
    hypothesis: &str,
    entailment: usize,
    contradiction: Option<usize>,
) -> Result<f64, InferError> {
    let normalize = |t: &str| enc.tokenizer.normalizer().normalize(t).text().to_string();
    let hypothesis = normalize(hypothesis);
    let words: Vec<&str> = premise.split_whitespace().collect();
    let max = enc.encoder.max_positions();
    let mut best: f64 = 0.0;
    let mut start = 0;
    while start < words.len() || start == 0 {
        let mut end = words.len();
        let ids = loop {
            let part = normalize(&words[start..end].join(" "));
            let ids = enc.tokenizer.encode_pair(&part, &hypothesis)?;
            if ids.len() <= max || end <= start + 1 {
                break ids[..ids.len().min(max)].to_vec();
            }
            end = start + (end - start).div_ceil(2);
        };
        let n = ids.len();
        let ids = Tensor::new(ids, enc.device)?.unsqueeze(0)?;
        let mask = Tensor::ones((1, n), DType::U32, enc.device)?;
        let hidden = enc.encoder.forward(&ids, &mask)?;
        let logits = head.forward(&hidden, &mask)?.squeeze(0)?;
        let logits = match contradiction {
            Some(c) => Tensor::new(
                &[
                    logits.get(c)?.to_scalar::<f32>()?,
                    logits.get(entailment)?.to_scalar::<f32>()?,
                ],
                enc.device,
            )?,
            None => logits,
        };
        let probs = candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec1::<f32>()?;
        let p = if contradiction.is_some() {
            probs[1]
        } else {
            probs[entailment]
        };
        best = best.max(f64::from(p));
        if end >= words.len() {
            break;
        }
        start = end;
    }
    Ok(best)
}
