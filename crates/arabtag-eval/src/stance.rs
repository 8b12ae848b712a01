//! Stance scoring of segments and documents.

use std::collections::BTreeMap;

use arabtag_records::{STANCE_LABELS, Segment};
use serde::Serialize;

use crate::metrics::{LabelCounts, LabelScore, Prf};

/// A set of the guideline's labels, as flags in [`STANCE_LABELS`] order.
/// Labels outside the guideline are ignored here (validation reports them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelSet([bool; 3]);

impl LabelSet {
    pub fn of<S: AsRef<str>>(labels: &[S]) -> Self {
        let mut set = Self::default();
        set.extend(labels);
        set
    }

    pub fn extend<S: AsRef<str>>(&mut self, labels: &[S]) {
        for label in labels {
            if let Some(i) = STANCE_LABELS.iter().position(|l| *l == label.as_ref()) {
                self.0[i] = true;
            }
        }
    }

    pub fn contains(&self, index: usize) -> bool {
        self.0.get(index).copied().unwrap_or(false)
    }
}

/// Per-label TP/FP/FN, summed over units (segments or documents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StanceTally {
    counts: [LabelCounts; 3],
    units: u64,
}

impl StanceTally {
    /// Counts one unit with its gold and predicted labels.
    pub fn add(&mut self, gold: LabelSet, pred: LabelSet) {
        for (i, c) in self.counts.iter_mut().enumerate() {
            c.add(gold.contains(i), pred.contains(i));
        }
        self.units += 1;
    }

    pub fn merge(&mut self, other: &StanceTally) {
        for (c, o) in self.counts.iter_mut().zip(&other.counts) {
            c.merge(o);
        }
        self.units += other.units;
    }

    /// Counts of the label at `index` of [`STANCE_LABELS`].
    pub fn label(&self, index: usize) -> Option<&LabelCounts> {
        self.counts.get(index)
    }

    pub fn report(&self) -> StanceReport {
        let mut micro = LabelCounts::default();
        for c in &self.counts {
            micro.merge(c);
        }
        let per: Vec<LabelScore> = self.counts.iter().map(|&c| c.into()).collect();
        let macro_ = Prf::mean(&per.iter().map(LabelScore::prf).collect::<Vec<_>>());
        let micro = LabelScore::from(micro);
        StanceReport {
            micro_f1: micro.f1,
            macro_f1: macro_.f1,
            micro,
            macro_,
            per_label: STANCE_LABELS
                .iter()
                .map(|l| l.to_string())
                .zip(per)
                .collect(),
            units: self.units,
        }
    }
}

/// Segment pairing and counting for one document: each gold segment is paired
/// with the predicted segment that overlaps it by most characters (the earliest
/// in the prediction's order on ties; none when no overlap, i.e. no labels).
/// Predicted segments paired with no gold segment are ignored.
pub fn count_segments(gold: &[Segment], pred: &[Segment]) -> StanceTally {
    let mut tally = StanceTally::default();
    for g in gold {
        let mut best: Option<(usize, &Segment)> = None;
        for p in pred {
            let overlap = g.span().overlap(&p.span());
            if overlap > 0 && best.is_none_or(|(b, _)| overlap > b) {
                best = Some((overlap, p));
            }
        }
        let pred_labels = best.map_or_else(LabelSet::default, |(_, p)| LabelSet::of(&p.labels));
        tally.add(LabelSet::of(&g.labels), pred_labels);
    }
    tally
}

/// Document counting: the union of the gold segments' labels against the union
/// of all predicted segments' labels.
pub fn count_document(gold: &[Segment], pred: &[Segment]) -> StanceTally {
    let union = |segs: &[Segment]| {
        let mut set = LabelSet::default();
        for s in segs {
            set.extend(&s.labels);
        }
        set
    };
    let mut tally = StanceTally::default();
    tally.add(union(gold), union(pred));
    tally
}

/// Per-label, micro and macro scores of segments or documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StanceReport {
    pub micro_f1: f64,
    pub macro_f1: f64,
    /// Counts summed over the three labels.
    pub micro: LabelScore,
    /// Unweighted mean of the three labels' P, R and F1.
    #[serde(rename = "macro")]
    pub macro_: Prf,
    pub per_label: BTreeMap<String, LabelScore>,
    /// Gold segments (or documents) scored.
    pub units: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: usize, end: usize, labels: &[&str]) -> Segment {
        Segment {
            start,
            end,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            text: None,
            score: None,
        }
    }

    #[test]
    fn pairs_each_gold_segment_with_the_largest_overlap() {
        let gold = [
            seg(0, 10, &["mediation"]),
            seg(11, 20, &["conflict"]),
            seg(21, 30, &[]),
        ];
        let pred = [
            // overlaps gold 0 by 4 characters
            seg(0, 4, &["conflict"]),
            // overlaps gold 0 by 6 and gold 1 by 3: gold 0's pair
            seg(4, 14, &["mediation", "energy"]),
            // overlaps gold 1 by 6: gold 1's pair
            seg(14, 21, &["conflict"]),
            // overlaps gold 2 by 5 (and no other gold segment)
            seg(25, 40, &["energy"]),
            // a segment no gold segment is paired with: ignored
            seg(50, 60, &["mediation"]),
        ];
        let t = count_segments(&gold, &pred);
        // gold 0 {mediation} vs {mediation, energy}: mediation TP, energy FP
        // gold 1 {conflict} vs {conflict}: conflict TP
        // gold 2 {} vs {energy} (overlap 5 with [25,40), 0 with [14,21)): energy FP
        assert_eq!(
            t.label(0),
            Some(&LabelCounts {
                tp: 1,
                fp: 0,
                fn_: 0
            })
        );
        assert_eq!(
            t.label(1),
            Some(&LabelCounts {
                tp: 1,
                fp: 0,
                fn_: 0
            })
        );
        assert_eq!(
            t.label(2),
            Some(&LabelCounts {
                tp: 0,
                fp: 2,
                fn_: 0
            })
        );
        let r = t.report();
        assert_eq!(r.units, 3);
        // micro: TP 2, FP 2, FN 0 → P = 2/4, R = 2/2, F1 = 2·0.5·1/1.5 = 2/3
        assert!((r.micro.precision - 0.5).abs() < 1e-12);
        assert!((r.micro.recall - 1.0).abs() < 1e-12);
        assert!((r.micro_f1 - 2.0 / 3.0).abs() < 1e-12);
        // macro: P = (1 + 1 + 0)/3, R = (1 + 1 + 0)/3, F1 = (1 + 1 + 0)/3
        assert!((r.macro_.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.macro_f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.per_label["energy"].fp, 2);
    }

    #[test]
    fn ties_go_to_the_earliest_prediction_and_no_overlap_means_no_labels() {
        let gold = [seg(0, 10, &["conflict"]), seg(20, 30, &["energy"])];
        // both overlap gold 0 by 5; the first in the prediction's order wins,
        // even though it starts later
        let pred = [seg(5, 15, &["mediation"]), seg(0, 5, &["conflict"])];
        let t = count_segments(&gold, &pred);
        // gold 0 {conflict} vs {mediation}: conflict FN, mediation FP
        // gold 1 {energy} vs nothing: energy FN
        assert_eq!(
            t.label(0),
            Some(&LabelCounts {
                tp: 0,
                fp: 1,
                fn_: 0
            })
        );
        assert_eq!(
            t.label(1),
            Some(&LabelCounts {
                tp: 0,
                fp: 0,
                fn_: 1
            })
        );
        assert_eq!(
            t.label(2),
            Some(&LabelCounts {
                tp: 0,
                fp: 0,
                fn_: 1
            })
        );
    }

    #[test]
    fn documents_use_the_union_of_all_segments() {
        let gold = [seg(0, 10, &["conflict"]), seg(20, 30, &["energy"])];
        // the unpaired prediction still counts for the document
        let pred = [seg(0, 10, &["conflict"]), seg(40, 50, &["mediation"])];
        let t = count_document(&gold, &pred);
        assert_eq!(
            t.label(0),
            Some(&LabelCounts {
                tp: 0,
                fp: 1,
                fn_: 0
            })
        );
        assert_eq!(
            t.label(1),
            Some(&LabelCounts {
                tp: 1,
                fp: 0,
                fn_: 0
            })
        );
        assert_eq!(
            t.label(2),
            Some(&LabelCounts {
                tp: 0,
                fp: 0,
                fn_: 1
            })
        );
        assert_eq!(t.report().units, 1);
    }
}
