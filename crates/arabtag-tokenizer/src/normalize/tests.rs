//! Exact alignment tables for every normalisation step, both ways.

#![allow(clippy::unwrap_used)]

use super::*;

fn only(step: impl FnOnce(&mut NormalizerConfig)) -> NormalizerConfig {
    let mut config = NormalizerConfig::none();
    step(&mut config);
    config
}

/// Character ranges as `(start, end)`, one per character.
type Table = Vec<(usize, usize)>;

/// The alignment of every normalised character to the original, and of
/// every original character to the normalised text.
fn tables(n: &Normalized) -> (Table, Table) {
    let to_orig = (0..n.len())
        .map(|i| n.to_original(Span::new(i, i + 1)).unwrap())
        .map(|s| (s.start, s.end))
        .collect();
    let to_norm = (0..n.original_len())
        .map(|j| n.to_normalized(Span::new(j, j + 1)).unwrap())
        .map(|s| (s.start, s.end))
        .collect();
    (to_orig, to_norm)
}

fn check(
    config: NormalizerConfig,
    text: &str,
    expected: &str,
    to_orig: &[(usize, usize)],
    to_norm: &[(usize, usize)],
) -> Normalized {
    let n = config.normalize(text);
    assert_eq!(n.text(), expected, "{text:?}");
    assert_eq!(n.len(), expected.chars().count());
    assert_eq!(n.original_len(), text.chars().count());
    let (o, m) = tables(&n);
    assert_eq!(o, to_orig, "normalised → original of {text:?}");
    assert_eq!(m, to_norm, "original → normalised of {text:?}");
    n
}

fn pieces(n: &Normalized) -> Vec<((usize, usize), (usize, usize))> {
    n.pieces()
        .map(|p| {
            (
                (p.original.start, p.original.end),
                (p.normalized.start, p.normalized.end),
            )
        })
        .collect()
}

#[test]
fn tashkeel_is_removed_and_kept_with_its_letter() {
    // كَتَبَ: every fatha is removed, its span stays with the letter before it.
    let n = check(
        only(|c| c.remove_tashkeel = true),
        "كَتَبَ",
        "كتب",
        &[(0, 2), (2, 4), (4, 6)],
        &[(0, 1), (1, 1), (1, 2), (2, 2), (2, 3), (3, 3)],
    );
    assert_eq!(
        pieces(&n),
        [
            ((0, 1), (0, 1)),
            ((1, 2), (1, 1)),
            ((2, 3), (1, 2)),
            ((3, 4), (2, 2)),
            ((4, 5), (2, 3)),
            ((5, 6), (3, 3)),
        ]
    );
    // Shadda + damma, dagger alef (U+0670) and a Quranic mark (U+06D6).
    check(
        only(|c| c.remove_tashkeel = true),
        "مُّ هٰذا\u{06D6}",
        "م هذا",
        &[(0, 3), (3, 4), (4, 6), (6, 7), (7, 9)],
        &[
            (0, 1),
            (1, 1),
            (1, 1),
            (1, 2),
            (2, 3),
            (3, 3),
            (3, 4),
            (4, 5),
            (5, 5),
        ],
    );
}

#[test]
fn a_mark_after_white_space_goes_with_the_next_letter() {
    check(
        only(|c| c.remove_tashkeel = true),
        "ب َب",
        "ب ب",
        &[(0, 1), (1, 2), (2, 4)],
        &[(0, 1), (1, 2), (2, 2), (2, 3)],
    );
    // At the text's start too.
    check(
        only(|c| c.remove_tashkeel = true),
        "\u{064B}ا",
        "ا",
        &[(0, 2)],
        &[(0, 0), (0, 1)],
    );
    // Alone, a mark belongs to nothing.
    check(
        only(|c| c.remove_tashkeel = true),
        "\u{064E}",
        "",
        &[],
        &[(0, 0)],
    );
}

#[test]
fn tatweel_is_removed() {
    check(
        only(|c| c.remove_tatweel = true),
        "بـــاب",
        "باب",
        &[(0, 4), (4, 5), (5, 6)],
        &[(0, 1), (1, 1), (1, 1), (1, 1), (1, 2), (2, 3)],
    );
}

#[test]
fn alef_forms_unify_one_to_one() {
    let identity: Vec<(usize, usize)> = (0..9).map(|i| (i, i + 1)).collect();
    check(
        only(|c| c.unify_alef = true),
        "أ إ آ ٱ ا",
        "ا ا ا ا ا",
        &identity,
        &identity,
    );
}

#[test]
fn alef_maqsura_and_ta_marbuta() {
    let identity: Vec<(usize, usize)> = (0..9).map(|i| (i, i + 1)).collect();
    check(
        only(|c| {
            c.alef_maqsura_to_ya = true;
            c.ta_marbuta_to_ha = true;
        }),
        "مدرسة على",
        "مدرسه علي",
        &identity,
        &identity,
    );
    // Each step alone touches only its letter.
    assert_eq!(
        only(|c| c.ta_marbuta_to_ha = true)
            .normalize("مدرسة على")
            .text(),
        "مدرسه على"
    );
}

#[test]
fn digits_become_ascii() {
    let identity: Vec<(usize, usize)> = (0..9).map(|i| (i, i + 1)).collect();
    check(
        only(|c| c.ascii_digits = true),
        "٢٠٢٣ و۱۴۹",
        "2023 و149",
        &identity,
        &identity,
    );
    check(
        only(|c| c.ascii_digits = true),
        "٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹",
        "01234567890123456789",
        &(0..20).map(|i| (i, i + 1)).collect::<Vec<_>>(),
        &(0..20).map(|i| (i, i + 1)).collect::<Vec<_>>(),
    );
}

#[test]
fn controls_are_removed_and_belong_to_nothing() {
    // LRM, RLE, ZWNJ, ALM, BOM, LRI.
    let n = check(
        only(|c| c.strip_controls = true),
        "a\u{200E}b\u{202B}c\u{200C}d\u{061C}\u{FEFF}e\u{2066}",
        "abcde",
        &[(0, 1), (2, 3), (4, 5), (6, 7), (9, 10)],
        &[
            (0, 1),
            (1, 1),
            (1, 2),
            (2, 2),
            (2, 3),
            (3, 3),
            (3, 4),
            (4, 4),
            (4, 4),
            (4, 5),
            (5, 5),
        ],
    );
    // A word's span leaves the controls around it out.
    assert_eq!(n.to_original(Span::new(1, 4)), Some(Span::new(2, 7)));
}

#[test]
fn nbsp_becomes_a_space() {
    check(
        only(|c| c.nbsp_to_space = true),
        "a\u{00A0}b",
        "a b",
        &[(0, 1), (1, 2), (2, 3)],
        &[(0, 1), (1, 2), (2, 3)],
    );
}

#[test]
fn nfkc_expands_lam_alef_to_one_original_character() {
    // ﻻ (U+FEFB) → ل ا; both come from the one ligature.
    let n = check(
        only(|c| c.nfkc = true),
        "ﻻ بد",
        "لا بد",
        &[(0, 1), (0, 1), (1, 2), (2, 3), (3, 4)],
        &[(0, 2), (2, 3), (3, 4), (4, 5)],
    );
    assert_eq!(
        pieces(&n),
        [
            ((0, 1), (0, 2)),
            ((1, 2), (2, 3)),
            ((2, 3), (3, 4)),
            ((3, 4), (4, 5))
        ]
    );
    // ﷲ (U+FDF2) → الله, four characters from one.
    check(
        only(|c| c.nfkc = true),
        "ﷲ",
        "الله",
        &[(0, 1); 4],
        &[(0, 4)],
    );
    // Presentation forms map one to one: ﺑﻮﺗﻴﻦ → بوتين.
    let identity: Vec<(usize, usize)> = (0..5).map(|i| (i, i + 1)).collect();
    check(
        only(|c| c.nfkc = true),
        "ﺑﻮﺗﻴﻦ",
        "بوتين",
        &identity,
        &identity,
    );
}

#[test]
fn nfkc_composes_many_to_one() {
    // ا + U+0654 (hamza above) → أ.
    let n = check(
        only(|c| c.nfkc = true),
        "ا\u{0654}ب",
        "أب",
        &[(0, 2), (2, 3)],
        &[(0, 1), (0, 1), (1, 2)],
    );
    assert_eq!(pieces(&n), [((0, 2), (0, 1)), ((2, 3), (1, 2))]);
    // With a fatha between, NFKC reorders the marks and still composes: no
    // cut inside normalises on its own, so the three are one piece.
    let n = check(
        NormalizerConfig::default(),
        "ا\u{064E}\u{0654}",
        "أ",
        &[(0, 3)],
        &[(0, 1), (0, 1), (0, 1)],
    );
    assert_eq!(pieces(&n), [((0, 3), (0, 1))]);
    // After the hamza, the fatha is its own piece and is then removed.
    let n = check(
        NormalizerConfig::default(),
        "ا\u{0654}\u{064E}",
        "أ",
        &[(0, 3)],
        &[(0, 1), (0, 1), (1, 1)],
    );
    assert_eq!(pieces(&n), [((0, 2), (0, 1)), ((2, 3), (1, 1))]);
}

#[test]
fn nfkc_runs_before_the_other_steps() {
    // ﹰ (U+FE70) → space + fathatan; the fathatan is then removed.
    check(
        NormalizerConfig::default(),
        "ب\u{FE70}",
        "ب ",
        &[(0, 1), (1, 2)],
        &[(0, 1), (1, 2)],
    );
    // ﹱ (U+FE71) → tatweel + fathatan: both removed, kept with the letter.
    check(
        NormalizerConfig::default(),
        "ب\u{FE71}",
        "ب",
        &[(0, 2)],
        &[(0, 1), (1, 1)],
    );
    // ﻷ (U+FEF7) → ل أ → ل ا with alef unification.
    check(
        NormalizerConfig::all(),
        "ﻷ",
        "لا",
        &[(0, 1), (0, 1)],
        &[(0, 2)],
    );
    // Without NFKC the ligature is left alone.
    check(
        only(|c| c.remove_tashkeel = true),
        "ﻻ",
        "ﻻ",
        &[(0, 1)],
        &[(0, 1)],
    );
}

#[test]
fn the_default_pipeline_on_a_sentence() {
    // Every default step at once: NFKC (ﻻ), tashkeel, tatweel, a control,
    // NBSP, digits; letters kept (أ, ة, ى).
    let text = "ﻻ أحـمدُ\u{200F}\u{00A0}٢٠ مدرسة على";
    let n = NormalizerConfig::default().normalize(text);
    assert_eq!(n.text(), "لا أحمد 20 مدرسة على");
    // أحمد: the tatweel inside and the damma after it are part of the word;
    // the RLM after it is not.
    assert_eq!(n.to_original(Span::new(3, 7)), Some(Span::new(2, 8)));
    assert_eq!(n.to_normalized(Span::new(2, 8)), Some(Span::new(3, 7)));
    assert_eq!(n.to_normalized(Span::new(8, 9)), Some(Span::new(7, 7)));
    assert_eq!(n.to_original(Span::new(7, 8)), Some(Span::new(9, 10)));
}

#[test]
fn empty_and_invalid_ranges() {
    let n = NormalizerConfig::default().normalize("ﻻ َب\u{200F}");
    assert_eq!(n.text(), "لا ب");
    // Empty ranges sit where the next character's span starts.
    assert_eq!(n.to_original(Span::new(0, 0)), Some(Span::new(0, 0)));
    assert_eq!(n.to_original(Span::new(3, 3)), Some(Span::new(2, 2)));
    assert_eq!(n.to_original(Span::new(4, 4)), Some(Span::new(5, 5)));
    assert_eq!(n.to_normalized(Span::new(2, 2)), Some(Span::new(3, 3)));
    assert_eq!(n.to_normalized(Span::new(5, 5)), Some(Span::new(4, 4)));
    // The mark after the space belongs to the next letter.
    assert_eq!(n.to_original(Span::new(3, 4)), Some(Span::new(2, 4)));
    assert_eq!(n.to_original(Span::new(0, 5)), None);
    assert_eq!(n.to_original(Span::new(2, 1)), None);
    assert_eq!(n.to_normalized(Span::new(0, 6)), None);
    assert_eq!(n.to_normalized(Span::new(3, 2)), None);
    let empty = NormalizerConfig::default().normalize("");
    assert!(empty.is_empty());
    assert_eq!(empty.to_original(Span::new(0, 0)), Some(Span::new(0, 0)));
    assert_eq!(empty.to_normalized(Span::new(0, 0)), Some(Span::new(0, 0)));
}

#[test]
fn no_step_is_the_identity() {
    let text = "ﻻ أحـمدُ\u{200F}\u{00A0}٢٠ 😀";
    let n = NormalizerConfig::none().normalize(text);
    assert_eq!(n.text(), text);
    assert!(
        n.pieces()
            .enumerate()
            .all(|(i, p)| p.original == Span::new(i, i + 1) && p.normalized == p.original)
    );
}

#[test]
fn config_defaults_and_serde() {
    let config = NormalizerConfig::default();
    assert!(config.nfkc && config.remove_tashkeel && config.remove_tatweel);
    assert!(config.strip_controls && config.nbsp_to_space && config.ascii_digits);
    assert!(!config.unify_alef && !config.alef_maqsura_to_ya && !config.ta_marbuta_to_ha);
    let parsed: NormalizerConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(parsed, config);
    let parsed: NormalizerConfig =
        serde_json::from_str(r#"{"unify_alef": true, "nfkc": false}"#).unwrap();
    assert!(parsed.unify_alef && !parsed.nfkc && parsed.remove_tashkeel);
    assert!(serde_json::from_str::<NormalizerConfig>(r#"{"unify_alif": true}"#).is_err());
}
