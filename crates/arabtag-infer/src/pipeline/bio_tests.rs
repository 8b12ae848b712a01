#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

fn bio() -> LabelScheme {
    LabelScheme::new(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]).unwrap()
}

fn bioes() -> LabelScheme {
    LabelScheme::new(["O", "B-X", "I-X", "E-X", "S-X", "B-Y", "I-Y", "E-Y", "S-Y"]).unwrap()
}

/// Word labels by name, each with probability `p`.
fn named(scheme: &LabelScheme, names: &[&str], p: f32) -> Vec<WordLabel> {
    names
        .iter()
        .map(|n| {
            if n.is_empty() {
                return None;
            }
            let i = scheme.names().iter().position(|x| x == n).unwrap();
            Some((i, p))
        })
        .collect()
}

fn spans(entities: &[WordEntity]) -> Vec<(Range<usize>, &str)> {
    entities
        .iter()
        .map(|e| (e.words.clone(), e.kind.as_str()))
        .collect()
}

fn grouped(scheme: &LabelScheme, names: &[&str]) -> Vec<(Range<usize>, String)> {
    spans(&group(scheme, &named(scheme, names, 1.0)))
        .into_iter()
        .map(|(r, k)| (r, k.to_string()))
        .collect()
}

fn owned(v: &[(Range<usize>, &str)]) -> Vec<(Range<usize>, String)> {
    v.iter().map(|(r, k)| (r.clone(), k.to_string())).collect()
}

#[test]
fn labels_are_parsed() {
    let parse = |n: &str| {
        let l = Label::parse(n);
        (l.tag, l.kind)
    };
    assert_eq!(parse("O"), (Tag::Outside, None));
    assert_eq!(parse("B-PER"), (Tag::Begin, Some("PER".into())));
    assert_eq!(parse("I_LOC"), (Tag::Inside, Some("LOC".into())));
    assert_eq!(parse("E-ORG"), (Tag::End, Some("ORG".into())));
    assert_eq!(parse("L-ORG"), (Tag::End, Some("ORG".into())));
    assert_eq!(parse("S-LOC"), (Tag::Single, Some("LOC".into())));
    assert_eq!(parse("U-PER"), (Tag::Single, Some("PER".into())));
    // No prefix: an IO label; a type that merely starts with B is not B-.
    assert_eq!(parse("PER"), (Tag::Inside, Some("PER".into())));
    assert_eq!(parse("BANK"), (Tag::Inside, Some("BANK".into())));
    assert!(matches!(
        LabelScheme::new(["B-PER", "I-PER"]),
        Err(InferError::NoOutsideLabel { .. })
    ));
    assert_eq!(bio().outside(), 0);
    assert_eq!(bio().len(), 5);
}

#[test]
fn bio_repair() {
    let s = bio();
    // An I- without B- starts an entity.
    assert_eq!(
        grouped(&s, &["O", "I-PER", "I-PER", "O"]),
        owned(&[(1..3, "PER")])
    );
    // B- after I- (or B-) of the same type starts a new one.
    assert_eq!(
        grouped(&s, &["B-PER", "I-PER", "B-PER"]),
        owned(&[(0..2, "PER"), (2..3, "PER")])
    );
    assert_eq!(
        grouped(&s, &["I-PER", "B-PER"]),
        owned(&[(0..1, "PER"), (1..2, "PER")])
    );
    // A type change ends one, even on I-.
    assert_eq!(
        grouped(&s, &["B-PER", "I-LOC", "I-LOC"]),
        owned(&[(0..1, "PER"), (1..3, "LOC")])
    );
    // A word without scores ends one; an entity at the end is closed.
    assert_eq!(
        grouped(&s, &["B-LOC", "", "I-LOC", "I-LOC"]),
        owned(&[(0..1, "LOC"), (2..4, "LOC")])
    );
    assert!(grouped(&s, &[]).is_empty());
}

#[test]
fn iob1_io_and_bioes_sets() {
    // IOB1: I- starts, B- only separates adjacent entities of a type.
    assert_eq!(
        grouped(&bio(), &["I-PER", "I-PER", "B-PER", "I-PER", "O", "I-LOC"]),
        owned(&[(0..2, "PER"), (2..4, "PER"), (5..6, "LOC")])
    );
    let io = LabelScheme::new(["O", "PER", "LOC"]).unwrap();
    assert_eq!(
        grouped(&io, &["PER", "PER", "LOC", "O", "PER"]),
        owned(&[(0..2, "PER"), (2..3, "LOC"), (4..5, "PER")])
    );
    let s = bioes();
    assert_eq!(
        grouped(
            &s,
            &["B-X", "I-X", "E-X", "S-X", "S-X", "E-Y", "B-Y", "I-Y"]
        ),
        owned(&[
            (0..3, "X"),
            (3..4, "X"),
            (4..5, "X"),
            (5..6, "Y"),
            (6..8, "Y")
        ])
    );
}

#[test]
fn entity_score_is_the_mean_of_its_words() {
    let s = bio();
    let labels = vec![
        Some((1, 0.9)),
        Some((2, 0.5)),
        Some((0, 0.99)),
        Some((3, 0.7)),
    ];
    let e = group(&s, &labels);
    assert_eq!(spans(&e), [(0..2, "PER"), (3..4, "LOC")]);
    assert!((e[0].score - 0.7).abs() < 1e-6, "{}", e[0].score);
    assert!((e[1].score - 0.7).abs() < 1e-6, "{}", e[1].score);
}

#[test]
fn transitions() {
    let s = bio();
    assert!(allowed(&s, None, 0) && allowed(&s, None, 1) && allowed(&s, None, 3));
    assert!(!allowed(&s, None, 2), "I-PER cannot start");
    assert!(!allowed(&s, Some(0), 2), "O → I-PER");
    assert!(!allowed(&s, Some(3), 2), "B-LOC → I-PER");
    assert!(allowed(&s, Some(1), 2) && allowed(&s, Some(2), 2));
    assert!(allowed(&s, Some(2), 1) && allowed(&s, Some(2), 0));
    assert!((0..5).all(|j| may_end(&s, j)));
    let e = bioes();
    assert!(!allowed(&e, Some(1), 0), "B-X must end with E-X");
    assert!(!allowed(&e, Some(2), 4), "I-X → S-X");
    assert!(allowed(&e, Some(2), 3) && allowed(&e, Some(3), 0));
    assert!(!may_end(&e, 1) && !may_end(&e, 2) && may_end(&e, 3));
    let io = LabelScheme::new(["O", "PER", "LOC"]).unwrap();
    assert!((0..3).all(|i| (0..3).all(|j| allowed(&io, Some(i), j))));
}

fn probs(rows: &[[f32; 5]]) -> Vec<Option<Vec<f32>>> {
    rows.iter().map(|r| Some(r.to_vec())).collect()
}

#[test]
fn viterbi_fixes_an_invalid_argmax() {
    let s = bio();
    // Argmax: O, I-PER — not allowed. Best allowed: O, B-PER (.9 × .35).
    let scores = probs(&[[0.9, 0.05, 0.03, 0.01, 0.01], [0.2, 0.35, 0.4, 0.03, 0.02]]);
    let v = viterbi_labels(&s, &scores).unwrap();
    assert_eq!(v, vec![Some((0, 0.9)), Some((1, 0.35))]);
    // Here the model is sure of I-PER: B-PER, I-PER beats O, B-PER.
    let scores = probs(&[[0.5, 0.45, 0.03, 0.01, 0.01], [0.02, 0.03, 0.9, 0.03, 0.02]]);
    let v = viterbi_labels(&s, &scores).unwrap();
    assert_eq!(v, vec![Some((1, 0.45)), Some((2, 0.9))]);
    let ents = decode(&s, &scores, Decoding::Viterbi).unwrap();
    assert_eq!(spans(&ents), [(0..2, "PER")]);
    // Argmax with repair: O, then I-PER starts an entity of one word.
    let ents = decode(&s, &scores, Decoding::Argmax).unwrap();
    assert_eq!(spans(&ents), [(1..2, "PER")]);
}

#[test]
fn viterbi_forces_o_on_words_without_scores_and_closes_bioes() {
    let s = bioes();
    // B-X is likelier than S-X on word 0, E-X than S-X on word 2; the
    // middle word has no scores and is O, so neither B-X (it must end with
    // E-X) nor E-X (it must follow B-X/I-X) fits: S-X, O, S-X.
    let row = |top: usize, second: usize| {
        let mut v = vec![0.01f32; 9];
        v[top] = 0.6;
        v[second] = 0.33;
        Some(v)
    };
    let scores = vec![row(1, 4), None, row(3, 4)];
    let v = viterbi_labels(&s, &scores).unwrap();
    assert_eq!(v, vec![Some((4, 0.33)), None, Some((4, 0.33))]);
    assert!(viterbi_labels(&s, &[]).unwrap().is_empty());
    assert!(matches!(
        decode(&s, &[Some(vec![1.0])], Decoding::Viterbi),
        Err(InferError::ScoreWidth {
            expected: 9,
            got: 1
        })
    ));
}

/// Every label sequence of `n` words over `l` labels.
fn all_paths(n: usize, l: usize) -> Vec<Vec<usize>> {
    (0..l.pow(n as u32))
        .map(|mut code| {
            (0..n)
                .map(|_| {
                    let j = code % l;
                    code /= l;
                    j
                })
                .collect()
        })
        .collect()
}

fn valid(s: &LabelScheme, path: &[usize]) -> bool {
    let mut prev = None;
    for &j in path {
        if !allowed(s, prev, j) {
            return false;
        }
        prev = Some(j);
    }
    path.last().is_none_or(|&j| may_end(s, j))
}

fn log_score(scores: &[Option<Vec<f32>>], path: &[usize]) -> f64 {
    path.iter()
        .zip(scores)
        .map(|(&j, row)| f64::from(row.as_ref().unwrap()[j]).ln())
        .sum()
}

fn rows(l: usize, max_words: usize) -> impl Strategy<Value = Vec<Option<Vec<f32>>>> {
    prop::collection::vec(prop::collection::vec(0.001f32..1.0, l), 0..=max_words).prop_map(|rows| {
        rows.into_iter()
            .map(|r| {
                let sum: f32 = r.iter().sum();
                Some(r.into_iter().map(|x| x / sum).collect())
            })
            .collect()
    })
}

fn path_of(v: &[WordLabel]) -> Vec<usize> {
    v.iter().map(|x| x.map_or(usize::MAX, |(i, _)| i)).collect()
}

proptest! {
    #[test]
    fn viterbi_is_the_best_valid_path_bio(scores in rows(5, 4)) {
        let s = bio();
        let path = path_of(&viterbi_labels(&s, &scores).unwrap());
        prop_assert!(valid(&s, &path));
        let best = all_paths(scores.len(), 5)
            .into_iter()
            .filter(|p| valid(&s, p))
            .map(|p| log_score(&scores, &p))
            .fold(f64::NEG_INFINITY, f64::max);
        prop_assert!((log_score(&scores, &path) - best).abs() < 1e-9);
    }

    #[test]
    fn viterbi_never_leaves_bioes(scores in rows(9, 12)) {
        let s = bioes();
        let path = path_of(&viterbi_labels(&s, &scores).unwrap());
        prop_assert!(valid(&s, &path), "{:?}", path);
    }

    #[test]
    fn viterbi_equals_a_valid_argmax(mut scores in rows(5, 12)) {
        let s = bio();
        // Make the argmax valid: where it is not, swap its score with O's.
        let mut prev = None;
        for row in scores.iter_mut().flatten() {
            let (mut j, _) = argmax(row).unwrap();
            if !allowed(&s, prev, j) {
                row.swap(0, j);
                j = 0;
            }
            prev = Some(j);
        }
        let arg = path_of(&argmax_labels(&scores));
        prop_assert!(valid(&s, &arg));
        let vit = viterbi_labels(&s, &scores).unwrap();
        prop_assert_eq!(vit, argmax_labels(&scores));
        prop_assert_eq!(
            decode(&s, &scores, Decoding::Viterbi).unwrap(),
            decode(&s, &scores, Decoding::Argmax).unwrap()
        );
    }
}
