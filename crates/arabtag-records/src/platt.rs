//! Platt scaling of a score, shared by the tagger (which applies a model
//! config's `stance.calibration`) and the scorer (which fits it).

/// Scores are clamped this far from 0 and 1 before their logit.
pub const LOGIT_EPS: f64 = 1e-6;

/// `ln(s / (1 - s))` of `s` clamped to `[LOGIT_EPS, 1 - LOGIT_EPS]`.
pub fn logit(s: f64) -> f64 {
    let s = s.clamp(LOGIT_EPS, 1.0 - LOGIT_EPS);
    (s / (1.0 - s)).ln()
}

/// `1 / (1 + e^-z)`.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// `s` calibrated by Platt parameters `(a, b)`: `σ(a · logit(s) + b)`.
pub fn platt(a: f64, b: f64, s: f64) -> f64 {
    sigmoid(a * logit(s) + b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_monotone() {
        for s in [0.01, 0.3, 0.5, 0.9] {
            assert!((platt(1.0, 0.0, s) - s).abs() < 1e-12);
        }
        assert!(platt(2.0, -1.0, 0.4) < platt(2.0, -1.0, 0.6));
        assert!(platt(1.0, 0.0, 0.0) > 0.0 && platt(1.0, 0.0, 1.0) < 1.0);
    }
}
