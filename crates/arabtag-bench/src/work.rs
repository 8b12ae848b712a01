//! The work `arabtag bench` times, counted the way the tagger does it:
//! subword tokens, and the FLOPs of the matrix products and attention of
//! each pass.

use arabtag_infer::Tagger;
use arabtag_infer::config::VerifiedModel;
use arabtag_infer::pipeline::stance::segment_spans;
use arabtag_records::{CharText, Document};

use crate::BenchError;

/// FLOPs of `layers` encoder layers over a sequence of `len` positions.
fn flops(len: usize, layers: usize, h: f64, ff: f64) -> f64 {
    let per_token = 2.0 * (4.0 * h * h + 2.0 * h * ff) + 4.0 * len as f64 * h;
    per_token * len as f64 * layers as f64
}

/// The work the tagger does on the corpus, counted the way it does it: the
/// NER task's windows (overlaps left out) through the layers its head
/// reads, each segment a sequence through every layer for stance (through
/// its own layers only where it branches off the NER network); and the
/// segments of one copy of the corpus for the encoder-alone pass.
#[derive(Debug)]
pub(crate) struct Work {
    /// Subword tokens of every document.
    pub(crate) tokens: usize,
    /// FLOPs of the whole pipeline and of NER alone.
    pub(crate) tag_flops: f64,
    pub(crate) ner_flops: f64,
    /// One copy's segments, with e5's `query: ` prefix; their tokens
    /// (special tokens included) and FLOPs.
    pub(crate) segments: Vec<String>,
    pub(crate) segment_tokens: usize,
    pub(crate) segment_flops: f64,
}

impl Work {
    pub(crate) fn count(
        tagger: &Tagger,
        model: &VerifiedModel,
        docs: &[Document],
        per_copy: usize,
    ) -> Result<Self, BenchError> {
        let resolved = model.model();
        // The tagger's own tokenizer and sizes: a second tokenizer, or an f32
        // copy of the encoder to read its sizes, would count in the peak RSS.
        let tokenizer = tagger.tokenizer();
        let (h, ff, depth) = tagger.encoder_dims().ok_or(BenchError::NotBertFamily)?;
        let (h, ff) = (h as f64, ff as f64);
        let ner_layers = resolved
            .ner
            .as_ref()
            .map(|n| n.layers.iter().copied().max().unwrap_or(depth));
        // Stance on the NER network (`stance.trunk = "ner"`) runs only
        // its own layers, from the states NER's pass kept.
        let stance_layers = tagger
            .model()
            .stance()
            .and_then(|(scorer, _)| scorer.branch())
            .map_or(depth, |(from, to)| to - from);
        let specials = tagger.model().wrapping().specials();
        let room = tagger
            .model()
            .ner()
            .map_or(usize::MAX, |task| task.window().0)
            .max(1);
        let (mut tokens, mut stance_flops, mut ner_flops) = (0usize, 0.0f64, 0.0f64);
        let mut segments: Vec<String> = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            let n = tokenizer.encode(&d.text)?.ids().len();
            tokens += n;
            if let Some(layers) = ner_layers {
                let mut left = n;
                while left > 0 {
                    let len = left.min(room);
                    ner_flops += flops(len + specials, layers, h, ff);
                    left -= len;
                }
            }
            let chars = CharText::new(&d.text);
            for s in segment_spans(&d.text) {
                let text = chars.slice(s.start, s.end).unwrap_or_default();
                let m = tokenizer.encode(text)?.ids().len();
                if resolved.stance.is_some() {
                    stance_flops += flops(m + specials, stance_layers, h, ff);
                }
                if i < per_copy {
                    segments.push(format!("query: {text}"));
                }
            }
        }
        let segment_lens: Vec<usize> = segments
            .iter()
            .map(|s| tokenizer.encode(s).map(|e| e.ids().len() + specials))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            tokens,
            tag_flops: stance_flops + ner_flops,
            ner_flops,
            segment_tokens: segment_lens.iter().sum(),
            segment_flops: segment_lens.iter().map(|&n| flops(n, depth, h, ff)).sum(),
            segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::flops;

    #[test]
    fn flops_count_products_and_attention() {
        // One layer, one position, h = 1, ff = 1: 2·(4 + 2) + 4·1·1.
        assert_eq!(flops(1, 1, 1.0, 1.0), 16.0);
        // Linear in layers; attention grows with the length.
        assert_eq!(
            flops(10, 3, 384.0, 1536.0),
            3.0 * flops(10, 1, 384.0, 1536.0)
        );
        let per_token = |len: usize| flops(len, 1, 384.0, 1536.0) / len as f64;
        assert!(per_token(512) > per_token(64));
    }
}
