//! Stance scoring across documents (`StanceScorer::scores_documents`): the
//! segments of several documents batched together score as each document
//! scored alone, and a document whose segment fails in the encoder gets the
//! error while the others keep their scores.

use arabtag_infer::InferError;
use arabtag_infer::models::{Encoder, PooledClassifier, heads::Pooling};
use arabtag_infer::pipeline::Wrapping;
use arabtag_infer::pipeline::stance::segment_spans;
use arabtag_infer::pipeline::stance_scorer::{SegmentEncoder, StanceScorer};
use arabtag_records::Span;
use arabtag_tokenizer::SubwordEncoder;
use candle_core::{Device, Tensor};

use super::pipeline::{Lexicon, VOCAB, random_words, tiny_bert, tokenizer};
use crate::common;

/// A stance head over `hidden`-wide states: mean pooling, normalised, three
/// labels with seeded random weights.
fn head(hidden: usize) -> StanceScorer {
    let mut rng = common::Rng::new(7);
    let tensors = [
        (
            "weight",
            Tensor::from_vec(rng.values(3 * hidden, 0.0, 1.0), (3, hidden), &Device::Cpu),
        ),
        (
            "bias",
            Tensor::from_vec(rng.values(3, 0.0, 1.0), 3, &Device::Cpu),
        ),
    ]
    .into_iter()
    .map(|(k, t)| (k.to_owned(), t.unwrap()))
    .collect();
    let labels = ["mediation", "conflict", "energy"]
        .map(String::from)
        .to_vec();
    let head = PooledClassifier::from_tensors(
        tensors,
        hidden,
        labels,
        Pooling::Mean,
        true,
        std::path::Path::new("head.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    StanceScorer::Head {
        head,
        order: [0, 1, 2],
        encoder: None,
        branch: None,
    }
}

fn segment_encoder<'a>(
    tokenizer: &'a SubwordEncoder,
    encoder: &'a dyn Encoder,
    wrapping: &'a Wrapping,
) -> SegmentEncoder<'a> {
    SegmentEncoder {
        tokenizer,
        encoder,
        wrapping,
        device: &Device::Cpu,
        batch_size: 3,
        work: None,
        shared: None,
    }
}

/// Documents of sentences of random words ("." after each), with their
/// segments.
fn documents(lengths: &[&[usize]]) -> Vec<(String, Vec<Span>)> {
    lengths
        .iter()
        .enumerate()
        .map(|(d, sentences)| {
            let text = sentences
                .iter()
                .enumerate()
                .map(|(s, &n)| format!("{} .", random_words(n, (10 * d + s) as u64).join(" ")))
                .collect::<Vec<_>>()
                .join(" ");
            let spans = segment_spans(&text);
            (text, spans)
        })
        .collect()
}

#[test]
fn documents_scored_together_score_as_each_alone() {
    let dir = tempfile::tempdir().unwrap();
    let enc = tokenizer(dir.path());
    let wrapping = Wrapping::from_special(enc.special_tokens()).unwrap();
    // Windows of 32 positions: the 45-word sentence goes in two parts.
    let (bert, _) = tiny_bert(32);
    let scorer = head(32);
    let segments = segment_encoder(&enc, &bert, &wrapping);
    let docs = documents(&[&[5, 12], &[3], &[45, 2, 7, 7], &[], &[20, 1, 9]]);
    let inputs: Vec<(&str, &[Span])> = docs
        .iter()
        .map(|(t, s)| (t.as_str(), s.as_slice()))
        .collect();
    assert!(
        inputs.iter().map(|(_, s)| s.len()).sum::<usize>() >= 10,
        "{docs:?}"
    );
    let together = scorer.scores_documents(&segments, &inputs);
    assert_eq!(together.len(), docs.len());
    for (i, ((text, spans), scores)) in inputs.iter().zip(together).enumerate() {
        let alone = scorer.scores(&segments, text, spans).unwrap();
        let scores = scores.unwrap();
        assert_eq!(scores.len(), spans.len(), "document {i}");
        for (a, b) in alone.iter().zip(&scores) {
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() <= 1e-6,
                    "document {i}: {a:?} alone, {b:?} together"
                );
            }
        }
    }
}

#[test]
fn a_failing_document_does_not_sink_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let enc = tokenizer(dir.path());
    let wrapping = Wrapping::from_special(enc.special_tokens()).unwrap();
    let poison = enc.encode("رويترز").unwrap().tokens[0].id;
    let model = Lexicon {
        poison: Some(poison),
    };
    let scorer = head(VOCAB);
    let segments = segment_encoder(&enc, &model, &wrapping);
    let docs = [
        "قال بوتين في موسكو . زيارة الرئيس",
        "رويترز في موسكو .",
        "باكو مع أرمينيا . النفط والغاز .",
    ];
    let spans: Vec<Vec<Span>> = docs.iter().map(|d| segment_spans(d)).collect();
    let inputs: Vec<(&str, &[Span])> = docs
        .iter()
        .zip(&spans)
        .map(|(t, s)| (*t, s.as_slice()))
        .collect();
    let out = scorer.scores_documents(&segments, &inputs);
    assert!(matches!(out[1], Err(InferError::Candle(_))), "{:?}", out[1]);
    for i in [0, 2] {
        let alone = scorer.scores(&segments, docs[i], &spans[i]).unwrap();
        assert_eq!(out[i].as_ref().unwrap(), &alone, "document {i}");
        assert_eq!(alone.len(), 2);
    }
}
