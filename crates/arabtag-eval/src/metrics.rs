//! Precision, recall and F1 from counts; every `0/0` is 0.

use serde::Serialize;

/// `num / den`, or 0 when `den` is 0.
pub fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 { 0.0 } else { num / den }
}

/// The harmonic mean of `p` and `r`, or 0 when both are 0.
pub fn f1(p: f64, r: f64) -> f64 {
    let den = p + r;
    if den == 0.0 { 0.0 } else { 2.0 * p * r / den }
}

/// Precision, recall and F1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Prf {
    /// F1 from a precision and a recall.
    pub fn new(precision: f64, recall: f64) -> Self {
        Self {
            precision,
            recall,
            f1: f1(precision, recall),
        }
    }

    /// The unweighted mean of each of P, R and F1 (all 0 for no items).
    pub fn mean(items: &[Prf]) -> Self {
        if items.is_empty() {
            return Self::default();
        }
        let n = items.len() as f64;
        Self {
            precision: items.iter().map(|x| x.precision).sum::<f64>() / n,
            recall: items.iter().map(|x| x.recall).sum::<f64>() / n,
            f1: items.iter().map(|x| x.f1).sum::<f64>() / n,
        }
    }
}

/// True positives, false positives and false negatives of one label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LabelCounts {
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl LabelCounts {
    /// Counts one unit where the label is in gold (`gold`) and/or predicted (`pred`).
    pub fn add(&mut self, gold: bool, pred: bool) {
        match (gold, pred) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => {}
        }
    }

    pub fn merge(&mut self, other: &LabelCounts) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.fn_ += other.fn_;
    }

    /// P = TP/(TP+FP), R = TP/(TP+FN).
    pub fn prf(&self) -> Prf {
        let tp = self.tp as f64;
        Prf::new(
            ratio(tp, (self.tp + self.fp) as f64),
            ratio(tp, (self.tp + self.fn_) as f64),
        )
    }
}

/// Scores and the counts they come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LabelScore {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl From<LabelCounts> for LabelScore {
    fn from(c: LabelCounts) -> Self {
        let Prf {
            precision,
            recall,
            f1,
        } = c.prf();
        Self {
            precision,
            recall,
            f1,
            tp: c.tp,
            fp: c.fp,
            fn_: c.fn_,
        }
    }
}

impl LabelScore {
    pub fn prf(&self) -> Prf {
        Prf {
            precision: self.precision,
            recall: self.recall,
            f1: self.f1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_over_zero_is_zero() {
        assert_eq!(ratio(0.0, 0.0), 0.0);
        assert_eq!(f1(0.0, 0.0), 0.0);
        assert_eq!(LabelCounts::default().prf(), Prf::default());
        assert_eq!(Prf::mean(&[]), Prf::default());
    }

    #[test]
    fn label_counts() {
        let mut c = LabelCounts::default();
        c.add(true, true);
        c.add(true, true);
        c.add(false, true);
        c.add(true, false);
        c.add(true, false);
        c.add(false, false);
        assert_eq!((c.tp, c.fp, c.fn_), (2, 1, 2));
        let s = c.prf();
        // P = 2/3, R = 2/4, F1 = 2·(2/3)(1/2)/(2/3+1/2) = (2/3)/(7/6) = 4/7
        assert!((s.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.recall - 0.5).abs() < 1e-12);
        assert!((s.f1 - 4.0 / 7.0).abs() < 1e-12);
    }
}
