//! The NER runner: documents in, entity records out, for any encoder and
//! token head.

use arabtag_records::{CharText, Entity};
use arabtag_tokenizer::{EncodedDocument, NormalizerConfig, SubwordEncoder, windows};
use candle_core::{Device, Tensor};

use crate::InferError;
use crate::models::Encoder;
use crate::pipeline::aggregate::{Aggregation, aggregate};
use crate::pipeline::batch::{Batching, TokenRows, WindowedDoc, Wrapping, token_logits};
use crate::pipeline::bio::{Decoding, LabelScheme, decode};
use crate::pipeline::labels::{LabelMap, entity};
use crate::pipeline::spans::{Proclitics, SpanMaker};
use crate::pipeline::stance::segment_spans;
use crate::pipeline::work::Work;
use serde::{Deserialize, Serialize};

/// Default overlap of consecutive windows, in tokens.
pub const DEFAULT_STRIDE: usize = 128;

/// Default number of windows per batch.
pub const DEFAULT_BATCH_SIZE: usize = 16;

/// The model side of NER: tokenizer, encoder, token head and its labels.
#[derive(Debug, Clone, Copy)]
pub struct NerModel<'a, H> {
    pub tokenizer: &'a SubwordEncoder,
    pub encoder: &'a dyn Encoder,
    /// Hidden states `[b, s, h]` to logits `[b, s, labels.len()]`.
    pub head: H,
    /// The head's labels, in logit order.
    pub labels: &'a LabelScheme,
    /// Where the batches are run.
    pub device: &'a Device,
}

/// How documents are windowed, batched and decoded.
#[derive(Debug, Clone)]
pub struct NerOptions<'a> {
    /// Content tokens per window (special tokens not counted); `None`: as
    /// many as the encoder's positions hold.
    pub window: Option<usize>,
    /// Tokens shared by consecutive windows; must be smaller than the window.
    pub stride: usize,
    /// Windows per batch.
    pub batch_size: usize,
    pub aggregation: Aggregation,
    pub decoding: Decoding,
    pub label_map: LabelMap,
    pub proclitics: Proclitics<'a>,
    /// What one window may hold: the whole document, or one segment
    /// (`ANNOTATION.md`'s sentences) for models trained on single
    /// sentences.
    pub context: NerContext,
    /// Counts the windows planned and run, when given.
    pub work: Option<&'a Work>,
}

/// What one NER window may hold (the model config's `ner.context`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NerContext {
    /// Windows run over the whole document (the default).
    #[default]
    Document,
    /// Each segment's tokens are windowed on their own: no window crosses a
    /// sentence end or a line break.
    Segment,
}

impl NerContext {
    /// The lower-case name, as the model config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            NerContext::Document => "document",
            NerContext::Segment => "segment",
        }
    }
}

impl std::fmt::Display for NerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Default for NerOptions<'_> {
    fn default() -> Self {
        Self {
            window: None,
            stride: DEFAULT_STRIDE,
            batch_size: DEFAULT_BATCH_SIZE,
            aggregation: Aggregation::default(),
            decoding: Decoding::default(),
            label_map: LabelMap::default(),
            proclitics: Proclitics::default(),
            context: NerContext::default(),
            work: None,
        }
    }
}

/// A document's tokens and the logit row of each.
#[derive(Debug, Clone, PartialEq)]
pub struct DocLogits {
    pub encoded: EncodedDocument,
    pub logits: TokenRows,
}

/// The window length `options` ask for with this encoder, checked: at least
/// one token, longer than the stride, fitting the encoder's positions with
/// the special tokens; and a batch size of at least 1.
pub fn window_len(
    options: &NerOptions<'_>,
    encoder: &dyn Encoder,
    wrapping: &Wrapping,
) -> Result<usize, InferError> {
    let max_positions = encoder.max_positions();
    let window = options
        .window
        .unwrap_or_else(|| max_positions.saturating_sub(wrapping.specials()));
    // Plans nothing; checks the window and the stride.
    windows(0, window, options.stride)?;
    if window + wrapping.specials() > max_positions {
        return Err(InferError::WindowTooLong {
            window,
            specials: wrapping.specials(),
            max_positions,
        });
    }
    if options.batch_size == 0 {
        return Err(InferError::ZeroBatchSize);
    }
    Ok(window)
}

/// Every document's tokens and logits, in input order. The outer error is a
/// setting that fails every document; a document's own failure (encoding,
/// the model on its windows) is its entry's error.
pub fn ner_logits<H>(
    docs: &[&str],
    model: &NerModel<'_, H>,
    options: &NerOptions<'_>,
) -> Result<Vec<Result<DocLogits, InferError>>, InferError>
where
    H: Fn(&Tensor) -> Result<Tensor, InferError> + Sync,
{
    let wrapping = Wrapping::from_special(model.tokenizer.special_tokens())?;
    let window = window_len(options, model.encoder, &wrapping)?;
    let encoded: Vec<Result<EncodedDocument, InferError>> = docs
        .iter()
        .map(|text| Ok(model.tokenizer.encode(text)?))
        .collect();
    let plans: Vec<Vec<arabtag_tokenizer::Window>> = encoded
        .iter()
        .zip(docs)
        .map(|(e, text)| match e {
            Ok(e) => plan_windows(text, e, window, options.stride, options.context),
            Err(_) => Ok(Vec::new()),
        })
        .collect::<Result<_, _>>()?;
    let ids: Vec<Vec<u32>> = encoded
        .iter()
        .map(|e| e.as_ref().map(EncodedDocument::ids).unwrap_or_default())
        .collect();
    // Documents that failed to encode have no windows and no tokens: they
    // cost nothing below and their error is kept.
    let windowed: Vec<WindowedDoc<'_>> = ids
        .iter()
        .zip(&plans)
        .map(|(ids, windows)| WindowedDoc { ids, windows })
        .collect();
    let batching = Batching {
        wrapping: &wrapping,
        batch_size: options.batch_size,
        num_labels: model.labels.len(),
        device: model.device,
        work: options.work,
    };
    let logits = token_logits(&windowed, &batching, model.encoder, &model.head)?;
    Ok(encoded
        .into_iter()
        .zip(logits)
        .map(|(encoded, logits)| {
            Ok(DocLogits {
                encoded: encoded?,
                logits: logits?,
            })
        })
        .collect())
}

/// The windows over a document's tokens: over all of them, or (`Segment`)
/// over each segment's tokens apart, so that the counted ranges still
/// partition the tokens. A token belongs to the segment its span starts in
/// (or the next one, for a token between segments).
pub fn plan_windows(
    text: &str,
    encoded: &EncodedDocument,
    window: usize,
    stride: usize,
    context: NerContext,
) -> Result<Vec<arabtag_tokenizer::Window>, InferError> {
    let n = encoded.tokens.len();
    if context == NerContext::Document {
        return Ok(windows(n, window, stride)?);
    }
    let segments = segment_spans(text);
    let mut out = Vec::new();
    let mut seg = 0;
    let mut start = 0;
    for i in 0..=n {
        let boundary = match encoded.tokens.get(i) {
            None => true,
            Some(token) => {
                let mut next = seg;
                while next + 1 < segments.len() && token.span.start >= segments[next].end {
                    next += 1;
                }
                let changed = next != seg;
                seg = next;
                changed && i > start
            }
        };
        if boundary && i > start {
            for w in windows(i - start, window, stride)? {
                out.push(arabtag_tokenizer::Window {
                    tokens: w.tokens.start + start..w.tokens.end + start,
                    counted: w.counted.start + start..w.counted.end + start,
                });
            }
            start = i;
        }
    }
    Ok(out)
}

/// A document's entities from its logits: subwords aggregated to words,
/// labels decoded, spans made in the original `text` (trimmed, proclitics
/// handled with `normalizer`, the tokenizer's), types mapped. Entities are
/// in text order; their `text` is always the original slice.
pub fn decode_entities(
    text: &str,
    doc: &DocLogits,
    labels: &LabelScheme,
    normalizer: &NormalizerConfig,
    options: &NerOptions<'_>,
) -> Result<Vec<Entity>, InferError> {
    let words = &doc.encoded.words;
    let scores = aggregate(
        &doc.encoded.tokens,
        &doc.logits,
        words.len(),
        options.aggregation,
    )?;
    let found = decode(labels, &scores, options.decoding)?;
    let spans = SpanMaker::new(text, words, normalizer, &options.proclitics);
    let chars = CharText::new(text);
    let mut out = Vec::with_capacity(found.len());
    for e in found {
        let Some(kind) = options.label_map.get(&e.kind) else {
            continue;
        };
        let Some(span) = spans.span(e.words.clone()) else {
            continue;
        };
        out.push(entity(&chars, span, kind, Some(e.score))?);
    }
    Ok(out)
}

/// Tags every document: per-document entities in input order. The outer
/// error is a setting that fails every document (window, stride, batch
/// size, no padding token); one document's failure does not affect the
/// others.
pub fn tag_ner<H>(
    docs: &[&str],
    model: &NerModel<'_, H>,
    options: &NerOptions<'_>,
) -> Result<Vec<Result<Vec<Entity>, InferError>>, InferError>
where
    H: Fn(&Tensor) -> Result<Tensor, InferError> + Sync,
{
    let _span = tracing::debug_span!("tag_ner", docs = docs.len()).entered();
    let logits = ner_logits(docs, model, options)?;
    let normalizer = model.tokenizer.normalizer();
    Ok(docs
        .iter()
        .zip(logits)
        .map(|(text, doc)| decode_entities(text, &doc?, model.labels, normalizer, options))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::ops::Range;

    use arabtag_records::Span;
    use arabtag_tokenizer::Token;

    use super::*;

    /// One token a white-space word of `text`.
    fn one_token_a_word(text: &str) -> EncodedDocument {
        let words = arabtag_tokenizer::words(text);
        let tokens = words
            .iter()
            .enumerate()
            .map(|(i, w)| Token {
                id: i as u32,
                span: Span::new(w.start, w.end),
                word: Some(i),
            })
            .collect();
        EncodedDocument { tokens, words }
    }

    fn ranges(ws: &[arabtag_tokenizer::Window]) -> Vec<(Range<usize>, Range<usize>)> {
        ws.iter()
            .map(|w| (w.tokens.clone(), w.counted.clone()))
            .collect()
    }

    #[test]
    fn segment_windows_never_cross_a_sentence_or_a_line() {
        // Segments: "أ ب." | "ج د" (ends at the line break) | "ه و ز ح".
        let text = "أ ب. ج د\nه و ز ح";
        let doc = one_token_a_word(text);
        let seg = plan_windows(text, &doc, 8, 2, NerContext::Segment).unwrap();
        assert_eq!(ranges(&seg), [(0..2, 0..2), (2..4, 2..4), (4..8, 4..8)]);
        // A segment longer than a window is windowed inside itself.
        let seg = plan_windows(text, &doc, 3, 1, NerContext::Segment).unwrap();
        assert_eq!(
            ranges(&seg),
            [(0..2, 0..2), (2..4, 2..4), (4..7, 4..6), (5..8, 6..8)]
        );
        // The counted ranges partition the tokens.
        let counted: Vec<usize> = seg.iter().flat_map(|w| w.counted.clone()).collect();
        assert_eq!(counted, (0..8).collect::<Vec<_>>());
        // The whole document: one window.
        let whole = plan_windows(text, &doc, 8, 2, NerContext::Document).unwrap();
        assert_eq!(ranges(&whole), [(0..8, 0..8)]);
        // No tokens, no windows.
        let empty = plan_windows("", &one_token_a_word(""), 8, 2, NerContext::Segment).unwrap();
        assert!(empty.is_empty());
    }
}
