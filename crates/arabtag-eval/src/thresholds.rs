//! Multi-label stance scores against per-label thresholds, and the
//! thresholds fitted to a labelled set: what `arabtag train stance`
//! reports and calibrates with. Scores and gold are per segment, in the
//! guideline's label order ([`STANCE_LABELS`]).

use arabtag_records::STANCE_LABELS;
use serde::Serialize;

use crate::metrics::{f1, ratio};

/// Precision, recall, F1 ([`crate::metrics`]) and the counts behind them,
/// of one label or an aggregate.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct CountedPrf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub tp: usize,
    pub predicted: usize,
    pub support: usize,
}

/// P, R and F1 of `tp` true positives among `predicted` predictions and
/// `support` gold items (every `0/0` is 0).
pub fn counted_prf(tp: usize, predicted: usize, support: usize) -> CountedPrf {
    let (p, r) = (
        ratio(tp as f64, predicted as f64),
        ratio(tp as f64, support as f64),
    );
    CountedPrf {
        precision: p,
        recall: r,
        f1: f1(p, r),
        tp,
        predicted,
        support,
    }
}

/// Per-label, micro and macro scores of thresholded predictions.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentScores {
    pub per_label: std::collections::BTreeMap<String, CountedPrf>,
    pub micro: CountedPrf,
    /// Mean of the per-label F1.
    pub macro_f1: f64,
}

pub fn score_thresholded(
    scores: &[[f64; 3]],
    gold: &[[bool; 3]],
    thresholds: &[f64; 3],
) -> SegmentScores {
    let mut per_label = std::collections::BTreeMap::new();
    let (mut tp, mut pred, mut sup) = (0, 0, 0);
    let mut f1_sum = 0.0;
    for (i, label) in STANCE_LABELS.iter().enumerate() {
        let (mut t, mut p, mut s) = (0, 0, 0);
        for (x, g) in scores.iter().zip(gold) {
            let yes = x[i] >= thresholds[i];
            t += usize::from(yes && g[i]);
            p += usize::from(yes);
            s += usize::from(g[i]);
        }
        let one = counted_prf(t, p, s);
        f1_sum += one.f1;
        per_label.insert((*label).to_owned(), one);
        (tp, pred, sup) = (tp + t, pred + p, sup + s);
    }
    SegmentScores {
        per_label,
        micro: counted_prf(tp, pred, sup),
        macro_f1: f1_sum / 3.0,
    }
}

/// Per label, the threshold with the best F1 on `scores` against `gold`:
/// the midpoints between consecutive distinct scores, and one cut below
/// and one above them all; ties go to the higher cut.
pub fn fit_thresholds(scores: &[[f64; 3]], gold: &[[bool; 3]]) -> [f64; 3] {
    let mut out = [0.5; 3];
    for (i, slot) in out.iter_mut().enumerate() {
        let mut values: Vec<f64> = scores.iter().map(|s| s[i]).collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        let mut cuts: Vec<f64> = values.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
        if let (Some(first), Some(last)) = (values.first(), values.last()) {
            cuts.push(first - 1e-6);
            cuts.push(last + 1e-6);
        }
        let f1 = |cut: f64| {
            let (mut t, mut p, mut s) = (0usize, 0usize, 0usize);
            for (x, g) in scores.iter().zip(gold) {
                let yes = x[i] >= cut;
                t += usize::from(yes && g[i]);
                p += usize::from(yes);
                s += usize::from(g[i]);
            }
            counted_prf(t, p, s).f1
        };
        let mut best = (f64::NEG_INFINITY, 0.5);
        for cut in cuts {
            let v = f1(cut);
            if v > best.0 || (v == best.0 && cut > best.1) {
                best = (v, cut);
            }
        }
        *slot = best.1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ratios() {
        let p = counted_prf(2, 4, 3);
        assert_eq!((p.precision, p.recall), (0.5, 2.0 / 3.0));
        assert!((p.f1 - 4.0 / 7.0).abs() < 1e-12);
        assert_eq!(counted_prf(0, 0, 0).f1, 0.0);
    }

    #[test]
    fn fitted_thresholds_separate_what_they_can() {
        let scores = [[0.9, 0.1, 0.4], [0.8, 0.7, 0.6], [0.2, 0.6, 0.5]];
        let gold = [
            [true, false, false],
            [true, true, true],
            [false, true, true],
        ];
        let t = fit_thresholds(&scores, &gold);
        assert_eq!(t, [0.5, 0.35, 0.45]);
        let s = score_thresholded(&scores, &gold, &t);
        assert_eq!(s.micro.tp, 6);
        assert_eq!(s.micro.predicted, 6);
        assert_eq!(s.macro_f1, 1.0);
        assert_eq!(s.per_label["conflict"].support, 2);
    }
}
