#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use super::*;

fn chars(s: &str) -> Vec<char> {
    s.chars().collect()
}

fn slice(text: &str, span: Span) -> String {
    text.chars().skip(span.start).take(span.len()).collect()
}

#[test]
fn trimming_removes_punctuation_quotes_brackets_spaces_and_controls() {
    for (text, want) in [
        ("«بوتين»،", "بوتين"),
        ("(روسيا)", "روسيا"),
        ("“موسكو”.", "موسكو"),
        ("\"Le Figaro\",", "Le Figaro"),
        ("\u{200F}باكو؟", "باكو"),
        (" - الكرملين: ", "الكرملين"),
        ("بوتينُ", "بوتينُ"),
        ("عام 2022", "عام 2022"),
        // Invisible characters a scraped page carries: NUL, BEL, the soft
        // hyphen, the word joiner; kept inside the span.
        ("بوتين\u{0}", "بوتين"),
        ("\u{7}روسيا\u{7}", "روسيا"),
        ("باكو\u{ad}", "باكو"),
        ("\u{2060}فلاديمير\u{ad}بوتين\u{2060}", "فلاديمير\u{ad}بوتين"),
    ] {
        let c = chars(text);
        let span = trim(&c, Span::new(0, c.len())).unwrap();
        assert_eq!(slice(text, span), want, "{text:?}");
    }
    assert_eq!(trim(&chars("«،» "), Span::new(0, 4)), None);
    assert_eq!(trim(&chars("ab"), Span::new(1, 5)), None);
}

/// The vocabulary as the e5 tokenizer has it for these forms (`▁` + form is
/// a piece): checked against `models/e5-small/tokenizer.json`.
fn e5_like(form: &str) -> Option<f64> {
    let known = [
        "روسيا",
        "موسكو",
        "لبنان",
        "القاهرة",
        "الاتحاد",
        "العاصمة",
        "إسرائيل",
        "سوريا",
        "في",
        "قال",
    ]
    .contains(&form);
    known.then_some(-10.0)
}

/// A text that mentions every name standalone too.
const DOC: &str = "قال بوتين في باكو إن روسيا وأرمينيا وأذربيجان؛ أرمينيا وموسكو. \
    واشنطن فلاديمير لبنان كوريا والقاهرة بالعاصمة.";

fn strip(word: &str, vocab: Option<&VocabularyScore<'_>>, doc: &str) -> Option<(usize, Evidence)> {
    let rule = Proclitics {
        vocabulary: vocab,
        ..Proclitics::default()
    };
    let n = NormalizerConfig::default();
    proclitic(word, &rule, &n, &DocumentForms::new(doc, &n))
}

#[test]
fn the_guideline_examples_lose_their_proclitic() {
    let v: &VocabularyScore<'_> = &e5_like;
    // (a) the article.
    assert_eq!(strip("والقاهرة", None, ""), Some((1, Evidence::Article)));
    assert_eq!(strip("بالعاصمة", None, ""), Some((1, Evidence::Article)));
    assert_eq!(strip("وبالعاصمة", None, ""), Some((2, Evidence::Article)));
    assert_eq!(strip("للاتحاد", None, ""), Some((1, Evidence::Article)));
    assert_eq!(strip("وللاتحاد", None, ""), Some((2, Evidence::Article)));
    // (b) the vocabulary: ▁روسيا and ▁موسكو are pieces, ▁لروسيا and ▁بموسكو not.
    assert_eq!(
        strip("لروسيا", Some(v), ""),
        Some((1, Evidence::Vocabulary))
    );
    assert_eq!(
        strip("بموسكو", Some(v), ""),
        Some((1, Evidence::Vocabulary))
    );
    // (c) the document: أرمينيا stands alone in DOC (and is no e5 piece).
    assert_eq!(
        strip("وأرمينيا", Some(v), DOC),
        Some((1, Evidence::Document))
    );
    assert_eq!(strip("وأرمينيا", None, ""), None, "no evidence, no strip");
    assert_eq!(strip("لروسيا", None, DOC), Some((1, Evidence::Document)));
    let only: &VocabularyScore<'_> = &|f: &str| (f == "أرمينيا").then_some(-10.0);
    assert_eq!(
        strip("وأرمينيا", Some(only), ""),
        Some((1, Evidence::Vocabulary))
    );
}

#[test]
fn names_that_begin_with_a_clitic_letter_keep_it() {
    let v: &VocabularyScore<'_> = &e5_like;
    for name in [
        "واشنطن",
        "فلاديمير",
        "باكو",
        "لبنان",
        "كوريا",
        "بوتين",
        "سوريا",
        "بالي",
    ] {
        for vocab in [None, Some(v)] {
            assert_eq!(strip(name, vocab, DOC), None, "{name}");
        }
    }
    // A short remainder is no vocabulary evidence: e5 has ▁وتن.
    let vtn: &VocabularyScore<'_> = &|f: &str| (f == "وتن").then_some(-10.0);
    assert_eq!(strip("بوتن", Some(vtn), ""), None);
    // The document evidence has no such floor (a text with وتن alone).
    assert_eq!(strip("بوتن", None, "وتن"), Some((1, Evidence::Document)));
    // س (the future marker) never goes before the article.
    assert_eq!(strip("سالزبورغ", None, ""), None);
    // The veto: the vocabulary knows the whole word and not the remainder.
    let knows: &VocabularyScore<'_> = &|f: &str| (f == "كالينينغراد").then_some(-10.0);
    assert_eq!(strip("كالينينغراد", None, ""), Some((1, Evidence::Article)));
    assert_eq!(strip("كالينينغراد", Some(knows), ""), None);
    // The remainder must keep two letters.
    assert_eq!(strip("وأ", None, "أ"), None);
    // Off means off.
    let n = NormalizerConfig::default();
    let off = Proclitics {
        strip: false,
        ..Proclitics::default()
    };
    assert_eq!(
        proclitic("والقاهرة", &off, &n, &DocumentForms::default()),
        None
    );
}

#[test]
fn marks_tatweel_ligatures_and_glued_punctuation() {
    // The fatha on the clitic goes with it.
    assert_eq!(strip("وَالقاهرة", None, ""), Some((2, Evidence::Article)));
    // The tatweel after ب belongs to ب.
    let v: &VocabularyScore<'_> = &e5_like;
    assert_eq!(
        strip("بـموسكو", Some(v), ""),
        Some((2, Evidence::Vocabulary))
    );
    // Tashkeel in the remainder still matches the document's bare form.
    assert_eq!(strip("وأرمينيَا", None, DOC), Some((1, Evidence::Document)));
    // لل written with presentation forms: ﻟ + the ligature ﻼ + تحاد; the cut
    // falls before the ligature, which holds the remainder's ل and ا.
    assert_eq!(
        strip("\u{FEDF}\u{FEFC}تحاد", None, ""),
        Some((1, Evidence::Article))
    );
    // A clitic inside a ligature cannot be cut: ﻻ is ل + ا.
    assert_eq!(strip("\u{FEFB}تحاد", None, "اتحاد"), None);
    // Punctuation after the clitic is skipped to reach the remainder.
    assert_eq!(strip("و«روسيا", None, DOC), Some((2, Evidence::Document)));
}

#[test]
fn span_maker_joins_trims_and_strips() {
    let text = "قال «فلاديمير بوتين»، إن للاتحاد الأوروبي (وأرمينيا) دورا. أرمينيا والقاهرة\u{a0}ـ";
    let words = arabtag_tokenizer::words(text);
    let n = NormalizerConfig::default();
    let rule = Proclitics::default();
    let maker = SpanMaker::new(text, &words, &n, &rule);
    let got = |r: Range<usize>| maker.span(r).map(|s| slice(text, s));
    assert_eq!(got(1..3).as_deref(), Some("فلاديمير بوتين"));
    assert_eq!(got(4..6).as_deref(), Some("لاتحاد الأوروبي"));
    assert_eq!(got(6..7).as_deref(), Some("أرمينيا"));
    assert_eq!(got(9..10).as_deref(), Some("القاهرة"));
    // The lone tatweel is a word of its own; nothing is trimmed from it.
    assert_eq!(got(10..11).as_deref(), Some("ـ"));
    assert_eq!(got(3..3), None);
    assert_eq!(got(11..12), None);
    let keep = Proclitics {
        strip: false,
        ..Proclitics::default()
    };
    let maker = SpanMaker::new(text, &words, &n, &keep);
    assert_eq!(
        maker.span(4..6).map(|s| slice(text, s)).as_deref(),
        Some("للاتحاد الأوروبي")
    );
}

#[test]
fn document_forms_are_trimmed_and_normalised() {
    let n = NormalizerConfig::default();
    let forms = DocumentForms::new("«أرمينيَا»، وروسيا\u{a0}ﻻ", &n);
    let set: HashSet<&str> = ["أرمينيا", "وروسيا", "لا"].into_iter().collect();
    for f in &set {
        assert!(forms.contains(f), "{f}");
    }
    assert!(!forms.contains("روسيا"));
    assert_eq!(forms.forms.len(), 3);
}

#[test]
fn a_clitic_form_the_vocabulary_learnt_is_stripped_only_when_far_rarer() {
    let rarer: &VocabularyScore<'_> = &|f: &str| match f {
        "وكندا" => Some(-15.0),
        "كندا" => Some(-10.0),
        _ => None,
    };
    let n = NormalizerConfig::default();
    let alone = DocumentForms::default();
    let rule = |vocabulary| Proclitics {
        document: false,
        vocabulary: Some(vocabulary),
        ..Proclitics::default()
    };
    assert_eq!(
        proclitic("وكندا", &rule(rarer), &n, &alone),
        Some((1, Evidence::Vocabulary))
    );
    let close: &VocabularyScore<'_> = &|f: &str| match f {
        "وكندا" => Some(-11.0),
        "كندا" => Some(-10.0),
        _ => None,
    };
    assert_eq!(proclitic("وكندا", &rule(close), &n, &alone), None);
}

#[test]
fn a_names_list_strips_listed_remainders_and_keeps_listed_words() {
    let n = NormalizerConfig::default();
    let names = NameForms::from_lines("# a comment\nأنقرة\n«واشنطن»\nوزارة\n\nمجلس\nكين\n", &n);
    assert_eq!(names.len(), 5);
    let alone = DocumentForms::default();
    let rule = Proclitics {
        document: false,
        names: Some(&names),
        ..Proclitics::default()
    };
    // (d): the remainder is listed, the word is not.
    assert_eq!(
        proclitic("وأنقرة", &rule, &n, &alone),
        Some((1, Evidence::Names))
    );
    assert_eq!(
        proclitic("ومجلس", &rule, &n, &alone),
        Some((1, Evidence::Names))
    );
    // The veto: listed words whose remainder is not listed keep their letter.
    assert_eq!(proclitic("واشنطن", &rule, &n, &alone), None);
    assert_eq!(proclitic("وزارة", &rule, &n, &alone), None);
    // Too short a remainder, and no list at all.
    let short = NameForms::from_lines("مو\n", &n);
    let short_rule = Proclitics {
        names: Some(&short),
        ..rule
    };
    assert_eq!(proclitic("ومو", &short_rule, &n, &alone), None);
    let none = Proclitics {
        names: None,
        ..rule
    };
    assert_eq!(proclitic("وأنقرة", &none, &n, &alone), None);
}
