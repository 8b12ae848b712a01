//! Subword rows to word rows.
//!
//! The strategies are those of Hugging Face's `TokenClassificationPipeline`
//! (`aggregate_word`), on the softmax of each token's logits:
//!
//! - [`Aggregation::First`]: the word takes its first subword's scores.
//! - [`Aggregation::Max`]: the word takes the scores of the subword whose
//!   highest score is highest (the first such subword on a tie).
//! - [`Aggregation::Average`]: the word takes the mean of its subwords'
//!   scores; its label is the argmax of that mean.
//!
//! Tokens with an empty span (a bare `▁`, the second half of a ligature) or
//! no word carry no text and are skipped. A word no token reaches (a word of
//! removed marks only, such as a lone tatweel) gets `None`.

use std::fmt;

use arabtag_tokenizer::Token;
use serde::{Deserialize, Serialize};

use crate::InferError;

/// How a word's score vector is made from its subwords' (also the model
/// config's `ner.aggregation`, spelled `first`, `max` or `average`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// The first subword's scores (the default: token-classification models
    /// are trained with the label on the first subword).
    #[default]
    First,
    /// The scores of the most confident subword.
    Max,
    /// The mean of the subwords' scores.
    Average,
}

impl Aggregation {
    /// The lower-case name, as the model config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::First => "first",
            Aggregation::Max => "max",
            Aggregation::Average => "average",
        }
    }
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Softmax of one logit row, computed stably (the maximum subtracted) in
/// `f64`. An empty row gives an empty row.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&x| f64::from(x - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}

/// Index and value of the first maximum (as numpy's `argmax`); `None` for an
/// empty row.
pub fn argmax(scores: &[f32]) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &s) in scores.iter().enumerate() {
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best
}

/// Word score vectors (probabilities) from token logits.
///
/// `logits[i]` is token `i`'s row; every row must have the same length.
/// The result has one entry per word of `0..words`.
pub fn aggregate(
    tokens: &[Token],
    logits: &[Vec<f32>],
    words: usize,
    strategy: Aggregation,
) -> Result<Vec<Option<Vec<f32>>>, InferError> {
    if tokens.len() != logits.len() {
        return Err(InferError::RowCount {
            rows: logits.len(),
            tokens: tokens.len(),
        });
    }
    let width = logits.first().map_or(0, Vec::len);
    // Probabilities of each word's subwords, in token order.
    let mut members: Vec<Vec<Vec<f32>>> = vec![Vec::new(); words];
    for (token, row) in tokens.iter().zip(logits) {
        if row.len() != width {
            return Err(InferError::ScoreWidth {
                expected: width,
                got: row.len(),
            });
        }
        let Some(word) = token.word else { continue };
        if token.span.is_empty() {
            continue;
        }
        let slot = members
            .get_mut(word)
            .ok_or(InferError::WordIndex { word, words })?;
        slot.push(softmax(row));
    }
    Ok(members
        .into_iter()
        .map(|subwords| combine(subwords, strategy))
        .collect())
}

/// One word's scores from its subwords' probabilities.
fn combine(mut subwords: Vec<Vec<f32>>, strategy: Aggregation) -> Option<Vec<f32>> {
    match strategy {
        Aggregation::First => subwords.into_iter().next(),
        Aggregation::Max => {
            let mut best: Option<(usize, f32)> = None;
            for (i, probs) in subwords.iter().enumerate() {
                let top = argmax(probs).map_or(f32::NEG_INFINITY, |(_, p)| p);
                if best.is_none_or(|(_, b)| top > b) {
                    best = Some((i, top));
                }
            }
            let (i, _) = best?;
            Some(subwords.swap_remove(i))
        }
        Aggregation::Average => {
            let first = subwords.first()?;
            let mut sum = vec![0f64; first.len()];
            for probs in &subwords {
                for (s, &p) in sum.iter_mut().zip(probs) {
                    *s += f64::from(p);
                }
            }
            let n = subwords.len() as f64;
            Some(sum.into_iter().map(|s| (s / n) as f32).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use arabtag_records::Span;

    use super::*;

    fn tok(start: usize, end: usize, word: Option<usize>) -> Token {
        Token {
            id: 0,
            span: Span::new(start, end),
            word,
        }
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn softmax_and_argmax() {
        let p = softmax(&[0.0, (2f32).ln(), 1000.0 - 1000.0]);
        assert!(close(&p, &[0.25, 0.5, 0.25]), "{p:?}");
        // Large logits do not overflow.
        let p = softmax(&[1000.0, 1000.0]);
        assert!(close(&p, &[0.5, 0.5]), "{p:?}");
        assert!(softmax(&[]).is_empty());
        assert_eq!(argmax(&[0.1, 0.7, 0.7]), Some((1, 0.7)), "the first max");
        assert_eq!(argmax(&[]), None);
    }

    /// Word 0 has subwords with probabilities A = [.5 .3 .2] and
    /// B = [.1 .1 .8]; word 1 has one subword C = [.2 .6 .2] after a bare ▁.
    /// HF: first → A (label 0); max → B (its max .8 > .5); average →
    /// [.3 .2 .5] (label 2).
    #[test]
    fn strategies_follow_hugging_face() {
        let ln = |p: [f32; 3]| p.iter().map(|x| x.ln()).collect::<Vec<f32>>();
        let tokens = [
            tok(0, 2, Some(0)),
            tok(2, 5, Some(0)),
            tok(6, 6, Some(1)), // bare ▁: skipped
            tok(6, 9, Some(1)),
        ];
        let logits = vec![
            ln([0.5, 0.3, 0.2]),
            ln([0.1, 0.1, 0.8]),
            ln([0.9, 0.05, 0.05]),
            ln([0.2, 0.6, 0.2]),
        ];
        let run = |s| aggregate(&tokens, &logits, 3, s).unwrap();

        let first = run(Aggregation::First);
        assert!(close(first[0].as_ref().unwrap(), &[0.5, 0.3, 0.2]));
        assert!(close(first[1].as_ref().unwrap(), &[0.2, 0.6, 0.2]));
        assert_eq!(first[2], None, "a word without tokens");

        let max = run(Aggregation::Max);
        assert!(close(max[0].as_ref().unwrap(), &[0.1, 0.1, 0.8]));
        assert!(close(max[1].as_ref().unwrap(), &[0.2, 0.6, 0.2]));

        let avg = run(Aggregation::Average);
        assert!(close(avg[0].as_ref().unwrap(), &[0.3, 0.2, 0.5]));
        assert_eq!(argmax(avg[0].as_ref().unwrap()).unwrap().0, 2);
        assert!(close(avg[1].as_ref().unwrap(), &[0.2, 0.6, 0.2]));
    }

    #[test]
    fn max_keeps_the_first_on_a_tie_and_no_word_tokens_are_skipped() {
        let tokens = [tok(0, 1, Some(0)), tok(1, 2, Some(0)), tok(3, 3, None)];
        let logits = vec![vec![2.0, 0.0], vec![0.0, 2.0], vec![9.0, 0.0]];
        let max = aggregate(&tokens, &logits, 1, Aggregation::Max).unwrap();
        assert_eq!(argmax(max[0].as_ref().unwrap()).unwrap().0, 0);
    }

    #[test]
    fn mismatches_are_errors() {
        let tokens = [tok(0, 1, Some(0))];
        assert!(matches!(
            aggregate(&tokens, &[], 1, Aggregation::First),
            Err(InferError::RowCount { rows: 0, tokens: 1 })
        ));
        assert!(matches!(
            aggregate(&tokens, &[vec![0.0]], 0, Aggregation::First),
            Err(InferError::WordIndex { word: 0, words: 0 })
        ));
        let two = [tok(0, 1, Some(0)), tok(1, 2, Some(0))];
        assert!(matches!(
            aggregate(&two, &[vec![0.0], vec![0.0, 1.0]], 1, Aggregation::First),
            Err(InferError::ScoreWidth {
                expected: 1,
                got: 2
            })
        ));
    }
}
