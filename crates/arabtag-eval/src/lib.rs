//! Scores arabtag output against hand-labelled gold, as `ANNOTATION.md`'s
//! Scoring section says, and scores CoNLL files as seqeval does.
//!
//! Gold and predictions are JSONL files of [`arabtag_records::Record`]; all
//! offsets are half-open character ranges. [`evaluate_files`] (or
//! [`evaluate`]) validates both files, scores every valid gold document and
//! returns a [`Report`] (JSON through serde, Markdown through
//! [`Report::to_markdown`]). [`conll`] scores token/tag files.
//!
//! # Entities
//!
//! Per document, after restricting gold and predictions to the type set
//! ([`TypeSet`], by default PER, ORG, LOC), gold and predicted mentions are
//! matched one to one ([`matching`]). A pair must overlap
//! (`max(start) < min(end)`) and is of one of four kinds, which give the
//! counts of the SemEval-2013 task 9.1 scenarios (as nervaluate names them):
//!
//! 1. same start, end and type: COR in all four modes (strict, exact,
//!    partial, type);
//! 2. same start and end, another type: strict INC, exact COR, partial COR,
//!    type INC;
//! 3. overlap, same type: strict INC, exact INC, partial PAR, type COR;
//! 4. overlap, another type: strict INC, exact INC, partial PAR, type INC.
//!
//! Of all one-to-one matchings, the one kept has the most pairs of kind 1,
//! then of kind 2, 3 and 4: a function of the two sets, so the counts never
//! depend on the order of the mentions or the names of the types (a
//! prediction that matches a gold exactly is COR even when a wrong-type or
//! overlapping twin could claim that gold first). Every prediction left
//! unmatched is SPU in all modes.
//!
//! Every gold mention left unmatched is MIS in all modes. With
//! POS = COR+INC+PAR+MIS and ACT = COR+INC+PAR+SPU: strict, exact and type
//! modes have P = COR/ACT, R = COR/POS; partial mode has
//! P = (COR+0.5·PAR)/ACT, R = (COR+0.5·PAR)/POS; F1 = 2PR/(P+R); any 0/0 is 0.
//! Counts are summed over documents *before* P, R and F1 are computed.
//! Where each prediction overlaps at most one gold mention and the reverse,
//! this is nervaluate's procedure (`eval/tools/nervaluate_diff.py` checks it
//! against nervaluate 1.2.1); where mentions overlap several, nervaluate's
//! result depends on their order and ours does not.
//!
//! *Micro* is that over the whole type set. *Per type* T is the same procedure
//! on gold and predictions restricted to T alone; it also gives strict
//! `tp = COR`, `fp = ACT − COR`, `fn = POS − COR`. *Macro* is the unweighted
//! mean, over every type of the set (also one with no gold and no prediction,
//! which scores 0), of the per-type P, R and F1. Types outside the set (DATE by
//! default, or a tagger's own label) get a per-type row but count in neither
//! micro nor macro.
//!
//! *Clitic* mode: in every gold and predicted span, `start` moves past the
//! longest prefix of the span's `text` made of the proclitics و ف ب ل ك
//! ([`entities::PROCLITICS`]); then the strict counts of the procedure above
//! are taken on these spans (P = COR/ACT, R = COR/POS), micro, per type and
//! macro. The prefix is stripped as far as it goes: لبنان and بوتين lose two
//! letters each, in gold and prediction alike, so equal names still match.
//!
//! # Segments and documents
//!
//! Each gold segment is paired with the predicted segment that shares most
//! characters with it (ties go to the earliest in the prediction's order; no
//! shared character means no pair, i.e. no predicted labels). For each of the
//! three labels: TP when gold and pair carry it, FP when only the pair, FN when
//! only gold. Predicted segments paired with no gold segment are ignored.
//! A document's gold labels are the union of its gold segments' labels, its
//! predicted labels the union of *all* its predicted segments'; TP/FP/FN are
//! counted over documents the same way. Micro sums the counts over the three
//! labels; macro is the mean of the three labels' P, R and F1 (0/0 is 0).
//!
//! # Validation
//!
//! Findings ([`Issue`]) name file, line, document and offsets; scoring goes on
//! with what is valid:
//!
//! * a line that is not a record (file:line);
//! * an id given twice in one file (the id is then left out of scoring when in
//!   gold, and counts as missing when in predictions);
//! * a prediction for an id the gold file lacks;
//! * a gold record with `error` set;
//! * a span with `start > end`;
//! * with the texts ([`Docs::Dir`], `DIR/<id>.txt` read as UTF-8 exactly): a
//!   text that cannot be read, a span that ends beyond the text, a span whose
//!   `text` differs from the text's characters `[start, end)` (a segment's
//!   `text` only when it has one);
//! * without the texts ([`Docs::None`]): only what the record itself shows, a
//!   span whose `text` has not `end − start` characters; ranges beyond the text
//!   cannot be seen;
//! * overlapping gold entities (any types);
//! * a stance label other than mediation, conflict, energy.
//!
//! A gold document with a finding is left out of scoring and listed in
//! `excluded`. A gold document whose prediction is absent, an error record
//! (`error` set), invalid or duplicated counts as all missed (every gold entity
//! MIS, no predicted segment or document label) and is listed in `missing`.
//!
//! # CoNLL
//!
//! See [`conll`]: seqeval's default (conlleval-like) chunking and its strict
//! IOB2 mode, with the numbers of `classification_report(output_dict=True)`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod calibration;
pub mod conll;
pub mod entities;
mod evaluate;
mod issue;
pub mod matching;
pub mod metrics;
mod report;
pub mod stance;
pub mod thresholds;
mod validate;

use std::path::PathBuf;

use arabtag_records::{ENTITY_TYPES, RecordsError};
use serde::Serialize;

pub use evaluate::{DocFile, Docs, Evaluation, Missing, RecordFile, evaluate, evaluate_files};
pub use issue::{Issue, IssueKind};
pub use report::Report;

/// The default type set of micro and macro entity scores.
pub const DEFAULT_TYPES: [&str; 3] = ["PER", "ORG", "LOC"];

/// The entity types that micro and macro scores cover, in report order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TypeSet(Vec<String>);

impl TypeSet {
    /// A set of the guideline's types ([`ENTITY_TYPES`]); repeats are dropped,
    /// an empty set or another type is an error.
    pub fn new<S: AsRef<str>>(types: impl IntoIterator<Item = S>) -> Result<Self, EvalError> {
        let mut set: Vec<String> = Vec::new();
        for t in types {
            let t = t.as_ref().trim();
            if !ENTITY_TYPES.contains(&t) {
                return Err(EvalError::UnknownType(t.to_owned()));
            }
            if !set.iter().any(|x| x == t) {
                set.push(t.to_owned());
            }
        }
        if set.is_empty() {
            return Err(EvalError::NoTypes);
        }
        Ok(Self(set))
    }

    pub fn contains(&self, kind: &str) -> bool {
        self.0.iter().any(|t| t == kind)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl Default for TypeSet {
    fn default() -> Self {
        Self(DEFAULT_TYPES.iter().map(|t| t.to_string()).collect())
    }
}

/// Errors that stop an evaluation (validation findings do not: see [`Issue`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    #[error("unknown entity type {0:?} (the guideline's are {types})", types = ENTITY_TYPES.join(", "))]
    UnknownType(String),
    #[error("the type set is empty")]
    NoTypes,
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error("{}: cannot read", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: expected a token and a tag separated by white space", path.display())]
    ConllLine { path: PathBuf, line: usize },
    #[error(
        "{}: {pred_count} sentences, but {} has {gold_count}",
        pred.display(),
        gold.display()
    )]
    ConllSentences {
        gold: PathBuf,
        gold_count: usize,
        pred: PathBuf,
        pred_count: usize,
    },
    #[error(
        "{}:{pred_line}: sentence {sentence} has {pred_len} tokens here, {gold_len} in {}:{gold_line}",
        pred.display(),
        gold.display()
    )]
    ConllSentenceLength {
        gold: PathBuf,
        gold_line: usize,
        gold_len: usize,
        pred: PathBuf,
        pred_line: usize,
        pred_len: usize,
        sentence: usize,
    },
    #[error(
        "{}:{pred_line}: token {pred_token:?} differs from {gold_token:?} in {}:{gold_line}",
        pred.display(),
        gold.display()
    )]
    ConllToken {
        gold: PathBuf,
        gold_line: usize,
        gold_token: String,
        pred: PathBuf,
        pred_line: usize,
        pred_token: String,
    },
}
