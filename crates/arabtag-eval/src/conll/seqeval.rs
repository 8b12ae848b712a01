//! A port of seqeval 1.2.2's chunking and metrics.
//!
//! * Default mode is `seqeval.metrics.sequence_labeling.get_entities`: the
//!   sentences are joined into one sequence with an `O` after each, and chunks
//!   are found by `start_of_chunk`/`end_of_chunk` (conlleval's rules: an I-
//!   after O starts a chunk, a change of type ends one, E-/S- prefixes are
//!   understood). A tag's prefix is its first character and its type what
//!   follows the first `-` after it (the rest when there is no `-`; `_` when
//!   empty), exactly as seqeval splits it.
//! * Strict mode is `seqeval.scheme.Entities` with `IOB2` (what
//!   `classification_report(mode='strict', scheme=IOB2)` uses): a chunk starts at
//!   a B- and runs over the I- of the same type; an I- that starts nothing is
//!   dropped. Its type is the tag without its prefix, `-` trimmed from both ends.
//!   seqeval refuses any tag whose first character is not B, I or O there
//!   (`ValueError`/`KeyError`); so does [`strict_chunks`].
//! * Metrics are `precision_recall_fscore_support` per type (sorted), micro,
//!   macro (`np.average`; NaN when there is no type at all, as numpy gives) and
//!   weighted by support (0 when the support is 0), with `zero_division` 0.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// A chunk: type, sentence (0 in default mode, whose offsets run over the
/// joined sequence), first token and end (inclusive in default mode, exclusive
/// in strict mode, as in seqeval; only equality matters).
pub type Chunk = (String, usize, usize, usize);

/// seqeval's `chunk[0]` and `chunk[1:].split('-', maxsplit=1)[-1] or '_'`.
fn split_default(tag: &str) -> (char, &str) {
    let mut chars = tag.chars();
    let prefix = chars.next().unwrap_or('O');
    let rest = chars.as_str();
    let kind = match rest.split_once('-') {
        Some((_, after)) => after,
        None => rest,
    };
    (prefix, if kind.is_empty() { "_" } else { kind })
}

fn end_of_chunk(prev_tag: char, tag: char, prev_type: &str, kind: &str) -> bool {
    matches!(prev_tag, 'E' | 'S')
        || (matches!(prev_tag, 'B' | 'I') && matches!(tag, 'B' | 'S' | 'O'))
        || (prev_tag != 'O' && prev_tag != '.' && prev_type != kind)
}

fn start_of_chunk(prev_tag: char, tag: char, prev_type: &str, kind: &str) -> bool {
    matches!(tag, 'B' | 'S')
        || (matches!(prev_tag, 'E' | 'S') && matches!(tag, 'E' | 'I'))
        || (prev_tag == 'O' && matches!(tag, 'E' | 'I'))
        || (tag != 'O' && tag != '.' && prev_type != kind)
}

/// seqeval's default-mode chunks of a list of sentences.
pub fn default_chunks<S: AsRef<str>>(sentences: &[Vec<S>]) -> BTreeSet<Chunk> {
    let joined = sentences
        .iter()
        .flat_map(|s| s.iter().map(AsRef::as_ref).chain(std::iter::once("O")));
    let mut chunks = BTreeSet::new();
    let mut prev_tag = 'O';
    let mut prev_type = String::new();
    let mut begin = 0;
    // seqeval appends one more 'O' to the (already O-terminated) sequence.
    for (i, chunk) in joined.chain(std::iter::once("O")).enumerate() {
        let (tag, kind) = split_default(chunk);
        if end_of_chunk(prev_tag, tag, &prev_type, kind) {
            chunks.insert((prev_type.clone(), 0, begin, i.saturating_sub(1)));
        }
        if start_of_chunk(prev_tag, tag, &prev_type, kind) {
            begin = i;
        }
        prev_tag = tag;
        prev_type = kind.to_owned();
    }
    chunks
}

/// An IOB2 token of seqeval's scheme module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Iob2<'a> {
    prefix: char,
    kind: &'a str,
}

impl<'a> Iob2<'a> {
    const OUTSIDE: Iob2<'static> = Iob2 {
        prefix: 'O',
        kind: "_",
    };

    /// `None` for a tag seqeval refuses in IOB2.
    fn parse(tag: &'a str) -> Option<Self> {
        let mut chars = tag.chars();
        let prefix = chars.next()?;
        if !matches!(prefix, 'B' | 'I' | 'O') {
            return None;
        }
        let kind = chars.as_str().trim_matches('-');
        Some(Self {
            prefix,
            kind: if kind.is_empty() { "_" } else { kind },
        })
    }

    /// start_patterns: `(ANY, B, ANY)`.
    fn is_start(self, _prev: Self) -> bool {
        self.prefix == 'B'
    }

    /// inside_patterns: `(B, I, SAME)`, `(I, I, SAME)`.
    fn is_inside(self, prev: Self) -> bool {
        matches!(prev.prefix, 'B' | 'I') && self.prefix == 'I' && prev.kind == self.kind
    }

    /// end_patterns: `(I, O, ANY)`, `(I, I, DIFF)`, `(I, B, ANY)`, `(B, O, ANY)`,
    /// `(B, I, DIFF)`, `(B, B, ANY)`.
    fn is_end(self, prev: Self) -> bool {
        matches!(prev.prefix, 'B' | 'I')
            && match self.prefix {
                'O' | 'B' => true,
                'I' => prev.kind != self.kind,
                _ => false,
            }
    }
}

/// seqeval's strict IOB2 chunks (`Tokens.entities` per sentence), or the
/// sentence and token index of the first tag it refuses.
pub fn strict_chunks<S: AsRef<str>>(
    sentences: &[Vec<S>],
) -> Result<BTreeSet<Chunk>, (usize, usize)> {
    let mut chunks = BTreeSet::new();
    for (sent, tags) in sentences.iter().enumerate() {
        let mut tokens = Vec::with_capacity(tags.len() + 1);
        for (i, tag) in tags.iter().enumerate() {
            tokens.push(Iob2::parse(tag.as_ref()).ok_or((sent, i))?);
        }
        tokens.push(Iob2::OUTSIDE);
        let mut i = 0;
        let mut prev = Iob2::OUTSIDE;
        while i < tokens.len() {
            let token = tokens[i];
            if token.is_start(prev) {
                // _forward
                let mut end = tags.len().saturating_sub(1);
                let mut inner = token;
                for (j, t) in tokens.iter().enumerate().skip(i + 1) {
                    if t.is_inside(inner) {
                        inner = *t;
                    } else {
                        end = j;
                        break;
                    }
                }
                // _is_end
                if end > 0 && tokens[end].is_end(tokens[end - 1]) {
                    chunks.insert((token.kind.to_owned(), sent, i, end));
                }
                i = end;
            } else {
                i += 1;
            }
            // seqeval's `prev = self.extended_tokens[i - 1]` (index -1 wraps).
            prev = if i == 0 {
                tokens[tokens.len() - 1]
            } else {
                tokens[i - 1]
            };
        }
    }
    Ok(chunks)
}

/// One row of seqeval's `classification_report(output_dict=True)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Row {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Gold chunks.
    pub support: u64,
}

/// A type's row with the counts behind it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TypeRow {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
    /// Chunks in both.
    pub tp: u64,
    /// Predicted chunks.
    pub predicted: u64,
}

/// Per type (sorted, as seqeval sorts them), micro, macro and weighted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    pub per_type: BTreeMap<String, TypeRow>,
    pub micro: Row,
    #[serde(rename = "macro")]
    pub macro_: Row,
    pub weighted: Row,
}

/// `_prf_divide` with zero_division 0.
fn divide(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// `(1 + β²)·P·R / (β²·P + R)` with β = 1, a zero denominator counting as 1.
fn fscore(p: f64, r: f64) -> f64 {
    let denom = p + r;
    2.0 * p * r / if denom == 0.0 { 1.0 } else { denom }
}

/// seqeval's metrics of two chunk sets.
pub fn classification(gold: &BTreeSet<Chunk>, pred: &BTreeSet<Chunk>) -> Scores {
    let mut per: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new(); // (tp, pred, true)
    for c in gold {
        per.entry(c.0.clone()).or_default().2 += 1;
        if pred.contains(c) {
            per.entry(c.0.clone()).or_default().0 += 1;
        }
    }
    for c in pred {
        per.entry(c.0.clone()).or_default().1 += 1;
    }
    let per_type: BTreeMap<String, TypeRow> = per
        .into_iter()
        .map(|(kind, (tp, predicted, support))| {
            let precision = divide(tp, predicted);
            let recall = divide(tp, support);
            let row = TypeRow {
                precision,
                recall,
                f1: fscore(precision, recall),
                support,
                tp,
                predicted,
            };
            (kind, row)
        })
        .collect();
    let rows: Vec<&TypeRow> = per_type.values().collect();
    let tp: u64 = rows.iter().map(|r| r.tp).sum();
    let predicted: u64 = rows.iter().map(|r| r.predicted).sum();
    let support: u64 = rows.iter().map(|r| r.support).sum();
    let (mp, mr) = (divide(tp, predicted), divide(tp, support));
    let micro = Row {
        precision: mp,
        recall: mr,
        f1: fscore(mp, mr),
        support,
    };
    let n = rows.len() as f64;
    let mean = |f: fn(&TypeRow) -> f64| {
        if rows.is_empty() {
            f64::NAN
        } else {
            rows.iter().map(|r| f(r)).sum::<f64>() / n
        }
    };
    let macro_ = Row {
        precision: mean(|r| r.precision),
        recall: mean(|r| r.recall),
        f1: mean(|r| r.f1),
        support,
    };
    let weighted_mean = |f: fn(&TypeRow) -> f64| {
        rows.iter().map(|r| f(r) * r.support as f64).sum::<f64>() / support as f64
    };
    let weighted = if support == 0 {
        Row {
            precision: 0.0,
            recall: 0.0,
            f1: 0.0,
            support,
        }
    } else {
        Row {
            precision: weighted_mean(|r| r.precision),
            recall: weighted_mean(|r| r.recall),
            f1: weighted_mean(|r| r.f1),
            support,
        }
    };
    Scores {
        per_type,
        micro,
        macro_,
        weighted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sents(s: &[&[&str]]) -> Vec<Vec<String>> {
        s.iter()
            .map(|x| x.iter().map(|t| t.to_string()).collect())
            .collect()
    }

    fn kinds(c: &BTreeSet<Chunk>) -> Vec<(&str, usize, usize)> {
        c.iter().map(|(k, _, s, e)| (k.as_str(), *s, *e)).collect()
    }

    #[test]
    fn default_mode_follows_get_entities() {
        // seqeval's docstring: get_entities(['B-PER', 'I-PER', 'O', 'B-LOC'])
        // == [('PER', 0, 1), ('LOC', 3, 3)]
        let c = default_chunks(&sents(&[&["B-PER", "I-PER", "O", "B-LOC"]]));
        assert_eq!(kinds(&c), vec![("LOC", 3, 3), ("PER", 0, 1)]);
        // I- after O starts a chunk; I-X after B-Y ends one and starts another
        let c = default_chunks(&sents(&[&["O", "I-PER", "I-PER", "B-LOC", "I-ORG"]]));
        assert_eq!(kinds(&c), vec![("LOC", 3, 3), ("ORG", 4, 4), ("PER", 1, 2)]);
        // sentences are joined with an O: no chunk crosses them
        let c = default_chunks(&sents(&[&["B-PER"], &["I-PER"]]));
        assert_eq!(kinds(&c), vec![("PER", 0, 0), ("PER", 2, 2)]);
        // E- and S-
        let c = default_chunks(&sents(&[&["B-PER", "E-PER", "S-LOC", "E-LOC"]]));
        assert_eq!(kinds(&c), vec![("LOC", 2, 2), ("LOC", 3, 3), ("PER", 0, 1)]);
    }

    #[test]
    fn strict_mode_drops_ill_formed_chunks() {
        let c = strict_chunks(&sents(&[&[
            "O", "I-PER", "I-PER", "B-LOC", "I-ORG", "B-ORG", "I-ORG",
        ]]))
        .unwrap();
        assert_eq!(kinds(&c), vec![("LOC", 3, 4), ("ORG", 5, 7)]);
        assert_eq!(
            strict_chunks(&sents(&[&["O"], &["B-PER", "E-PER"]])),
            Err((1, 1))
        );
    }

    #[test]
    fn metrics_follow_the_docstring() {
        // seqeval's f1_score docstring: micro 2/3, macro 0.75, per type [0.5, 1]
        let gold = sents(&[
            &["O", "O", "B-MISC", "I-MISC", "B-MISC", "O", "O"],
            &["B-PER", "I-PER", "O"],
        ]);
        let pred = sents(&[
            &["O", "O", "B-MISC", "I-MISC", "B-MISC", "I-MISC", "O"],
            &["B-PER", "I-PER", "O"],
        ]);
        let s = classification(&default_chunks(&gold), &default_chunks(&pred));
        assert!((s.micro.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.macro_.f1 - 0.75).abs() < 1e-12);
        assert!((s.weighted.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.per_type["MISC"].f1, 0.5);
        assert_eq!(s.per_type["PER"].f1, 1.0);
        let empty = classification(&BTreeSet::new(), &BTreeSet::new());
        assert!(empty.macro_.f1.is_nan());
        assert_eq!(empty.weighted.f1, 0.0);
        assert_eq!(empty.micro.f1, 0.0);
    }
}
