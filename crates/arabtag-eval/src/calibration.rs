//! Score calibration for stance: Platt scaling per label (a score `s`
//! becomes `σ(a · logit(s) + b)`, `a` and `b` fitted by maximum likelihood
//! on a labelled set) and reliability: how far predicted probabilities are
//! from observed frequencies (expected calibration error over equal-width
//! bins, and the bins themselves).

use serde::Serialize;

pub use arabtag_records::platt::{logit, sigmoid};

/// Platt parameters `(a, b)`.
pub type Platt = (f64, f64);

/// `s` calibrated by `(a, b)`.
pub fn apply(p: Platt, s: f64) -> f64 {
    arabtag_records::platt::platt(p.0, p.1, s)
}

/// The `(a, b)` of Platt (1999): maximum likelihood of
/// `σ(a · logit(score) + b)` against smoothed targets (`(n₊ + 1) / (n₊ + 2)` for a positive,
/// `1 / (n₋ + 2)` for a negative, which keeps separable or saturated scores
/// finite), by Newton's method with step halving; `(1, 0)` (the identity)
/// is the start, and the answer for data with one class only.
pub fn fit_platt(scores: &[f64], gold: &[bool]) -> Platt {
    let positives = gold.iter().filter(|&&g| g).count();
    let negatives = gold.len() - positives;
    if positives == 0 || negatives == 0 {
        return (1.0, 0.0);
    }
    let high = (positives as f64 + 1.0) / (positives as f64 + 2.0);
    let low = 1.0 / (negatives as f64 + 2.0);
    let data: Vec<(f64, f64)> = scores
        .iter()
        .zip(gold)
        .map(|(&s, &g)| (logit(s), if g { high } else { low }))
        .collect();
    // Negative log-likelihood, written to stay finite for large |z|.
    let loss = |a: f64, b: f64| -> f64 {
        data.iter()
            .map(|&(x, t)| {
                let z = a * x + b;
                z.max(0.0) - z * t + (-z.abs()).exp().ln_1p()
            })
            .sum()
    };
    let (mut a, mut b) = (1.0, 0.0);
    let mut current = loss(a, b);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-12, 0.0, 1e-12);
        for &(x, t) in &data {
            let p = sigmoid(a * x + b);
            let d = p - t;
            let w = p * (1.0 - p);
            ga += d * x;
            gb += d;
            haa += w * x * x;
            hab += w * x;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det <= 0.0 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        let mut step = 1.0;
        let mut moved = false;
        while step > 1e-10 {
            let (na, nb) = (a - step * da, b - step * db);
            let next = loss(na, nb);
            if next < current {
                (a, b, current) = (na, nb, next);
                moved = true;
                break;
            }
            step /= 2.0;
        }
        if !moved || (step * da).abs().max((step * db).abs()) < 1e-10 {
            break;
        }
    }
    (a, b)
}

/// One reliability bin: predictions in `[low, high)` (the last bin
/// includes 1).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Bin {
    pub low: f64,
    pub high: f64,
    pub count: usize,
    /// Mean predicted probability in the bin.
    pub predicted: f64,
    /// Share of positives in the bin.
    pub observed: f64,
}

/// Reliability of probabilities against gold.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reliability {
    /// Expected calibration error: the count-weighted mean of
    /// `|predicted - observed|` over the bins.
    pub ece: f64,
    /// Mean squared error of the probabilities (Brier score).
    pub brier: f64,
    pub bins: Vec<Bin>,
}

/// Reliability over `bins` equal-width bins (empty bins left out).
pub fn reliability(probs: &[f64], gold: &[bool], bins: usize) -> Reliability {
    let bins = bins.max(1);
    let mut acc = vec![(0usize, 0.0f64, 0usize); bins];
    let mut brier = 0.0;
    for (&p, &g) in probs.iter().zip(gold) {
        let i = ((p * bins as f64) as usize).min(bins - 1);
        acc[i].0 += 1;
        acc[i].1 += p;
        acc[i].2 += usize::from(g);
        brier += (p - f64::from(u8::from(g))).powi(2);
    }
    let n = probs.len().max(1) as f64;
    let mut ece = 0.0;
    let mut out = Vec::new();
    for (i, &(count, sum, pos)) in acc.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let predicted = sum / count as f64;
        let observed = pos as f64 / count as f64;
        ece += count as f64 / n * (predicted - observed).abs();
        out.push(Bin {
            low: i as f64 / bins as f64,
            high: (i + 1) as f64 / bins as f64,
            count,
            predicted,
            observed,
        });
    }
    Reliability {
        ece,
        brier: brier / n,
        bins: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_recovers_a_known_mapping() {
        // Gold drawn so that P(y | s) = σ(2 logit(s) - 1): with many
        // evenly spread scores and expected counts, the fit finds (2, -1).
        let mut scores = Vec::new();
        let mut gold = Vec::new();
        for i in 1..200 {
            let s = f64::from(i) / 200.0;
            let p = sigmoid(2.0 * logit(s) - 1.0);
            let positives = (p * 100.0).round() as usize;
            for k in 0..100 {
                scores.push(s);
                gold.push(k < positives);
            }
        }
        let (a, b) = fit_platt(&scores, &gold);
        assert!((a - 2.0).abs() < 0.05 && (b + 1.0).abs() < 0.05, "{a} {b}");
        // Calibrated scores are better calibrated than the raw ones.
        let calibrated: Vec<f64> = scores.iter().map(|&s| apply((a, b), s)).collect();
        let before = reliability(&scores, &gold, 10);
        let after = reliability(&calibrated, &gold, 10);
        assert!(after.ece < before.ece / 4.0, "{} {}", after.ece, before.ece);
        assert!(after.brier < before.brier);
    }

    #[test]
    fn platt_is_monotone_and_one_class_is_the_identity() {
        assert_eq!(fit_platt(&[0.2, 0.9], &[true, true]), (1.0, 0.0));
        let p = fit_platt(
            &[0.1, 0.4, 0.6, 0.9, 0.3, 0.8],
            &[false, true, false, true, false, true],
        );
        assert!(p.0 > 0.0);
        assert!(apply(p, 0.3) < apply(p, 0.7));
        // Separable data stays finite.
        let p = fit_platt(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]);
        assert!(p.0.is_finite() && p.1.is_finite() && p.0 < 10.0, "{p:?}");
        // Saturated scores (an over-confident model) are pulled in, not out.
        let scores = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.3];
        let gold = [
            true, true, true, false, false, false, true, true, false, false,
        ];
        let p = fit_platt(&scores, &gold);
        assert!(p.0 > 0.0 && p.0 < 1.0, "{p:?}");
        assert!(apply(p, 1.0) < 0.95 && apply(p, 0.0) > 0.05, "{p:?}");
    }

    #[test]
    fn reliability_bins_and_error() {
        let r = reliability(&[0.05, 0.15, 0.95, 0.95], &[false, true, true, true], 10);
        assert_eq!(r.bins.len(), 3);
        assert_eq!(r.bins[2].count, 2);
        assert!((r.bins[2].observed - 1.0).abs() < 1e-12);
        // |0.05-0| + |0.15-1| + 2 |0.95-1|, over 4.
        assert!((r.ece - (0.05 + 0.85 + 0.1) / 4.0).abs() < 1e-12);
    }
}
