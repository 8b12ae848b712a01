//! Word labels to entities: label sets, argmax with repair, constrained
//! Viterbi.
//!
//! # Label sets
//! [`LabelScheme::new`] reads a model's labels (its `id2label` in order):
//! `O` is outside; `B-X`/`B_X` begins an entity of type `X`; `I-X` is
//! inside; `E-X` and `L-X` end one; `S-X` and `U-X` are a one-word entity
//! (BIOES/BILOU). A label with no such prefix (`PER`) is read as `I-PER`,
//! which makes an IO label set work. IOB1, where `I-` starts entities and
//! `B-` only separates two adjacent ones of a type, is read by the same
//! rules. The set must contain `O`.
//!
//! # Decoding ([`Decoding`])
//! - `Argmax`: each word takes its most probable label, then the sequence is
//!   repaired while grouping ([`group`]): an `I-X` or `E-X` that does not
//!   continue an `X` starts one; a `B-X` always starts a new entity, even
//!   after `I-X`; `O`, a type change or an `S-` ends the current one.
//! - `Viterbi`: the most probable label sequence, summing the log of each
//!   word's probabilities, among the sequences with allowed transitions
//!   only ([`allowed`]). When the argmax sequence is allowed it is the
//!   result.
//!
//! An entity's score is the mean of its words' probabilities of their
//! labels. A word without scores (no token reached it) is `O`.

use std::collections::BTreeSet;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::InferError;
use crate::pipeline::aggregate::argmax;

/// A label's role in an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tag {
    Outside,
    Begin,
    Inside,
    End,
    Single,
}

/// One label of a model: its role and the entity type it names (`None` for
/// `O`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub tag: Tag,
    pub kind: Option<String>,
}

impl Label {
    /// Reads one label as the module documentation says.
    pub fn parse(name: &str) -> Self {
        if name == "O" {
            return Self {
                tag: Tag::Outside,
                kind: None,
            };
        }
        let mut chars = name.chars();
        let tag = match chars.next() {
            Some('B') => Some(Tag::Begin),
            Some('I') => Some(Tag::Inside),
            Some('E' | 'L') => Some(Tag::End),
            Some('S' | 'U') => Some(Tag::Single),
            _ => None,
        };
        match (tag, chars.next()) {
            (Some(tag), Some('-' | '_')) => Self {
                tag,
                kind: Some(chars.as_str().to_string()),
            },
            _ => Self {
                tag: Tag::Inside,
                kind: Some(name.to_string()),
            },
        }
    }
}

/// A model's labels, in the order of its logits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelScheme {
    names: Vec<String>,
    labels: Vec<Label>,
    outside: usize,
    /// Types that have a `B-` label: their `I-` must follow `B-`/`I-`.
    begun: BTreeSet<String>,
    /// Types that have an `E-` label: once open they must end with it.
    closed: BTreeSet<String>,
}

impl LabelScheme {
    /// Reads a model's labels; errors when there is no `O`.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Result<Self, InferError> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        let labels: Vec<Label> = names.iter().map(|n| Label::parse(n)).collect();
        let outside = labels
            .iter()
            .position(|l| l.tag == Tag::Outside)
            .ok_or_else(|| InferError::NoOutsideLabel {
                labels: names.clone(),
            })?;
        let kinds_with = |tag: Tag| {
            labels
                .iter()
                .filter(|l| l.tag == tag)
                .filter_map(|l| l.kind.clone())
                .collect()
        };
        Ok(Self {
            begun: kinds_with(Tag::Begin),
            closed: kinds_with(Tag::End),
            names,
            labels,
            outside,
        })
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The labels' names, in logit order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Label `i`.
    pub fn label(&self, i: usize) -> Option<&Label> {
        self.labels.get(i)
    }

    /// Index of `O`.
    pub fn outside(&self) -> usize {
        self.outside
    }

    /// Whether label `prev` is an entity that must end with `E-` before
    /// anything else comes.
    fn must_close(&self, prev: &Label) -> bool {
        matches!(prev.tag, Tag::Begin | Tag::Inside)
            && prev.kind.as_ref().is_some_and(|k| self.closed.contains(k))
    }
}

/// Whether label `next` may follow label `prev` (`None`: the sequence's
/// start) in a well-formed sequence:
/// - `I-X` and `E-X` only continue `B-X` or `I-X` (an `I-X` of a type with
///   no `B-X` label, as in IO sets, may come anywhere);
/// - `O`, `B-`, `S-` may not follow `B-X`/`I-X` of a type that has `E-X`
///   (BIOES entities end with `E-`).
///
/// [`may_end`] tells whether a sequence may end with a label.
pub fn allowed(scheme: &LabelScheme, prev: Option<usize>, next: usize) -> bool {
    let Some(n) = scheme.label(next) else {
        return false;
    };
    let p = prev.and_then(|p| scheme.label(p));
    match n.tag {
        Tag::Inside | Tag::End => {
            let continues =
                p.is_some_and(|p| matches!(p.tag, Tag::Begin | Tag::Inside) && p.kind == n.kind);
            let free = n.tag == Tag::Inside
                && n.kind.as_ref().is_some_and(|k| !scheme.begun.contains(k))
                && p.is_none_or(|p| !scheme.must_close(p));
            continues || free
        }
        Tag::Outside | Tag::Begin | Tag::Single => p.is_none_or(|p| !scheme.must_close(p)),
    }
}

/// Whether a sequence may end with label `last`.
pub fn may_end(scheme: &LabelScheme, last: usize) -> bool {
    scheme.label(last).is_some_and(|l| !scheme.must_close(l))
}

/// How word labels are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decoding {
    /// Each word's most probable label, repaired while grouping.
    #[default]
    Argmax,
    /// The most probable sequence with allowed transitions only.
    Viterbi,
}

/// A word's chosen label and its probability; `None` for a word without
/// scores.
pub type WordLabel = Option<(usize, f32)>;

/// An entity as a range of words.
#[derive(Debug, Clone, PartialEq)]
pub struct WordEntity {
    pub words: Range<usize>,
    /// The model's type (`PERS`, `LOC`, …), before any label map.
    pub kind: String,
    /// Mean of the words' label probabilities.
    pub score: f64,
}

/// Each word's most probable label.
pub fn argmax_labels(scores: &[Option<Vec<f32>>]) -> Vec<WordLabel> {
    scores
        .iter()
        .map(|s| s.as_deref().and_then(argmax))
        .collect()
}

/// The most probable allowed label sequence (see [`allowed`]). Words
/// without scores are forced to `O`; probabilities are floored at the
/// smallest positive `f64` before the log so that every word has a label.
pub fn viterbi_labels(
    scheme: &LabelScheme,
    scores: &[Option<Vec<f32>>],
) -> Result<Vec<WordLabel>, InferError> {
    let l = scheme.len();
    let emit = |row: &Option<Vec<f32>>| -> Result<Vec<f64>, InferError> {
        match row {
            None => Ok((0..l)
                .map(|j| {
                    if j == scheme.outside() {
                        0.0
                    } else {
                        f64::NEG_INFINITY
                    }
                })
                .collect()),
            Some(p) if p.len() != l => Err(InferError::ScoreWidth {
                expected: l,
                got: p.len(),
            }),
            Some(p) => Ok(p
                .iter()
                .map(|&x| f64::from(x).max(f64::MIN_POSITIVE).ln())
                .collect()),
        }
    };
    let trans: Vec<Vec<bool>> = (0..l)
        .map(|i| (0..l).map(|j| allowed(scheme, Some(i), j)).collect())
        .collect();
    let mut back: Vec<Vec<usize>> = Vec::with_capacity(scores.len());
    let mut best: Vec<f64> = Vec::new();
    for (w, row) in scores.iter().enumerate() {
        let e = emit(row)?;
        let mut next = vec![f64::NEG_INFINITY; l];
        let mut from = vec![0; l];
        for j in 0..l {
            if w == 0 {
                if allowed(scheme, None, j) {
                    next[j] = e[j];
                }
                continue;
            }
            for i in 0..l {
                if trans[i][j] && best[i] + e[j] > next[j] {
                    next[j] = best[i] + e[j];
                    from[j] = i;
                }
            }
        }
        best = next;
        back.push(from);
    }
    let mut last = None;
    for (j, &s) in best.iter().enumerate() {
        if may_end(scheme, j) && s > f64::NEG_INFINITY && last.is_none_or(|(_, b)| s > b) {
            last = Some((j, s));
        }
    }
    let mut path = vec![scheme.outside(); scores.len()];
    if let Some((mut j, _)) = last {
        for w in (0..scores.len()).rev() {
            path[w] = j;
            j = back[w][j];
        }
    }
    Ok(path
        .into_iter()
        .zip(scores)
        .map(|(j, row)| {
            let row = row.as_ref()?;
            Some((j, row.get(j).copied().unwrap_or(0.0)))
        })
        .collect())
}

/// Groups word labels into entities, repairing ill-formed sequences as the
/// module documentation says.
pub fn group(scheme: &LabelScheme, labels: &[WordLabel]) -> Vec<WordEntity> {
    struct Open {
        start: usize,
        kind: String,
        sum: f64,
    }
    let mut out = Vec::new();
    let mut open: Option<Open> = None;
    let close = |open: &mut Option<Open>, end: usize, out: &mut Vec<WordEntity>| {
        if let Some(o) = open.take() {
            let n = (end - o.start) as f64;
            out.push(WordEntity {
                words: o.start..end,
                kind: o.kind,
                score: o.sum / n,
            });
        }
    };
    for (w, wl) in labels.iter().enumerate() {
        let label = wl.and_then(|(i, p)| Some((scheme.label(i)?, f64::from(p))));
        let Some((
            Label {
                tag,
                kind: Some(kind),
            },
            p,
        )) = label
        else {
            close(&mut open, w, &mut out);
            continue;
        };
        let continues = open.as_ref().is_some_and(|o| &o.kind == kind);
        match tag {
            Tag::Inside | Tag::End if continues => {
                if let Some(o) = open.as_mut() {
                    o.sum += p;
                }
            }
            _ => {
                close(&mut open, w, &mut out);
                open = Some(Open {
                    start: w,
                    kind: kind.clone(),
                    sum: p,
                });
            }
        }
        if matches!(tag, Tag::End | Tag::Single) {
            close(&mut open, w + 1, &mut out);
        }
    }
    close(&mut open, labels.len(), &mut out);
    out
}

/// Word scores to entities with the chosen decoding.
pub fn decode(
    scheme: &LabelScheme,
    scores: &[Option<Vec<f32>>],
    decoding: Decoding,
) -> Result<Vec<WordEntity>, InferError> {
    for row in scores.iter().flatten() {
        if row.len() != scheme.len() {
            return Err(InferError::ScoreWidth {
                expected: scheme.len(),
                got: row.len(),
            });
        }
    }
    let labels = match decoding {
        Decoding::Argmax => argmax_labels(scores),
        Decoding::Viterbi => viterbi_labels(scheme, scores)?,
    };
    Ok(group(scheme, &labels))
}

#[cfg(test)]
#[path = "bio_tests.rs"]
mod tests;
