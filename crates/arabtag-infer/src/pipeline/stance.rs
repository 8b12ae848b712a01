//! Segment stance: the guideline's segments, per-label decisions, document
//! labels.
//!
//! The scores may come from any method (a classifier's sigmoid, a cosine
//! similarity to label descriptions); this module only decides. A segment
//! gets every label whose score reaches its threshold (`score >= threshold`),
//! possibly none; a document's labels are the union of its segments'.

use std::collections::BTreeMap;

use arabtag_records::{STANCE_LABELS, Segment, Span};

use crate::InferError;

/// Scores or thresholds in the order of [`STANCE_LABELS`]: mediation,
/// conflict, energy.
pub type StanceScores = [f64; 3];

/// The guideline's segments of `text` (sentences), as original character
/// spans in order.
pub fn segment_spans(text: &str) -> Vec<Span> {
    arabtag_tokenizer::segments(text)
}

/// Segments with labels and per-label scores: `scores[i]` belongs to
/// `spans[i]`. Errors when the counts differ or a score or threshold is not
/// finite.
pub fn label_segments(
    spans: &[Span],
    scores: &[StanceScores],
    thresholds: &StanceScores,
) -> Result<Vec<Segment>, InferError> {
    if spans.len() != scores.len() {
        return Err(InferError::SegmentCount {
            segments: spans.len(),
            scores: scores.len(),
        });
    }
    if let Some(index) = thresholds.iter().position(|t| !t.is_finite()) {
        return Err(InferError::NonFinite {
            what: "stance threshold",
            index,
        });
    }
    spans
        .iter()
        .zip(scores)
        .enumerate()
        .map(|(index, (span, row))| {
            if row.iter().any(|s| !s.is_finite()) {
                return Err(InferError::NonFinite {
                    what: "stance scores of segment",
                    index,
                });
            }
            let labels = STANCE_LABELS
                .iter()
                .zip(row.iter().zip(thresholds))
                .filter(|(_, (s, t))| s >= t)
                .map(|(l, _)| l.to_string())
                .collect();
            let per_label: BTreeMap<String, f64> = STANCE_LABELS
                .iter()
                .zip(row)
                .map(|(l, &s)| (l.to_string(), s))
                .collect();
            Ok(Segment {
                start: span.start,
                end: span.end,
                labels,
                text: None,
                score: Some(arabtag_records::Score::PerLabel(per_label)),
            })
        })
        .collect()
}

/// Segments `text` and labels each segment with the scores `score` gives
/// its text (the original slice).
pub fn tag_stance<F>(
    text: &str,
    mut score: F,
    thresholds: &StanceScores,
) -> Result<Vec<Segment>, InferError>
where
    F: FnMut(&str) -> Result<StanceScores, InferError>,
{
    let spans = segment_spans(text);
    let chars = arabtag_records::CharText::new(text);
    let scores = spans
        .iter()
        .map(|s| score(chars.slice(s.start, s.end).unwrap_or_default()))
        .collect::<Result<Vec<_>, _>>()?;
    label_segments(&spans, &scores, thresholds)
}

/// The union of the segments' labels: the guideline's labels in
/// [`STANCE_LABELS`] order, then any other label in sorted order.
pub fn document_labels(segments: &[Segment]) -> Vec<String> {
    let mut known = [false; 3];
    let mut other = std::collections::BTreeSet::new();
    for label in segments.iter().flat_map(|s| &s.labels) {
        match STANCE_LABELS.iter().position(|l| l == label) {
            Some(i) => known[i] = true,
            None => {
                other.insert(label.clone());
            }
        }
    }
    STANCE_LABELS
        .iter()
        .zip(known)
        .filter(|(_, k)| *k)
        .map(|(l, _)| l.to_string())
        .chain(other)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use arabtag_records::Score;

    use super::*;

    const TEXT: &str = "بوتين يعرض التوسط في باكو.  القتال مستمر! صادرات النفط؟\nشارك القصة";

    #[test]
    fn segments_get_labels_at_or_above_their_thresholds() {
        let spans = segment_spans(TEXT);
        let got: Vec<(usize, usize)> = spans.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(got, [(0, 26), (28, 41), (42, 55), (56, 66)]);
        let scores = [
            [0.9, 0.5, 0.1],
            [0.2, 0.8, 0.0],
            [0.1, 0.6, 0.7],
            [0.0, 0.0, 0.0],
        ];
        let segs = label_segments(&spans, &scores, &[0.5, 0.6, 0.5]).unwrap();
        let labels: Vec<Vec<String>> = segs.iter().map(|s| s.labels.clone()).collect();
        assert_eq!(
            labels,
            [
                vec!["mediation".to_string()],
                vec!["conflict".to_string()],
                vec!["conflict".to_string(), "energy".to_string()],
                vec![],
            ]
        );
        assert_eq!(
            (segs[1].start, segs[1].end, segs[1].text.as_ref()),
            (28, 41, None)
        );
        let Some(Score::PerLabel(s)) = &segs[2].score else {
            panic!("per-label scores");
        };
        assert_eq!(s.get("energy"), Some(&0.7));
        assert_eq!(s.len(), 3);
        assert_eq!(document_labels(&segs), ["mediation", "conflict", "energy"]);
        assert!(document_labels(&segs[3..]).is_empty());
    }

    #[test]
    fn tag_stance_scores_each_segment_text() {
        let mut seen = Vec::new();
        let segs = tag_stance(
            TEXT,
            |s| {
                seen.push(s.to_string());
                Ok(if s.contains("النفط") {
                    [0.0, 0.0, 1.0]
                } else {
                    [0.0; 3]
                })
            },
            &[0.5; 3],
        )
        .unwrap();
        assert_eq!(seen[0], "بوتين يعرض التوسط في باكو.");
        assert_eq!(seen[3], "شارك القصة");
        assert_eq!(document_labels(&segs), ["energy"]);
    }

    #[test]
    fn bad_inputs_are_errors_and_unknown_labels_sort_last() {
        let spans = segment_spans("أ. ب.");
        assert!(matches!(
            label_segments(&spans, &[[0.0; 3]], &[0.5; 3]),
            Err(InferError::SegmentCount {
                segments: 2,
                scores: 1
            })
        ));
        assert!(matches!(
            label_segments(&spans, &[[0.0; 3], [f64::NAN, 0.0, 0.0]], &[0.5; 3]),
            Err(InferError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            label_segments(&spans, &[[0.0; 3]; 2], &[0.5, f64::INFINITY, 0.5]),
            Err(InferError::NonFinite { index: 1, .. })
        ));
        let mut segs = label_segments(&spans, &[[0.0, 0.9, 0.0]; 2], &[0.5; 3]).unwrap();
        segs[0].labels.push("zeta".into());
        segs[1].labels.push("alpha".into());
        assert_eq!(document_labels(&segs), ["conflict", "alpha", "zeta"]);
    }
}
