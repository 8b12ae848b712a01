//! The encoder on tokenizers the tests build themselves: exact ids, spans
//! and word indices through NFKC expansions, removed marks and controls.

use std::path::Path;

use arabtag_records::{CharText, Span};
use arabtag_tokenizer::{
    EncodedDocument, NormalizerConfig, SubwordEncoder, TokenizerError, is_space, windows,
};
use tokenizers::models::unigram::Unigram;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

/// A Unigram model behind a Metaspace pre-tokenizer, `<s> $A </s>`, saved as
/// `tokenizer.json` in `dir`.
fn unigram_json(dir: &Path) -> std::path::PathBuf {
    let pieces = [
        "<unk>",
        "<s>",
        "</s>",
        "<pad>",
        "▁",
        "▁لا",
        "▁يزور",
        "▁بو",
        "تين",
        "▁ل",
        "أ",
        "جل",
        "▁عام",
        "2023",
        ".",
    ];
    let vocab = pieces.iter().map(|p| (p.to_string(), -1.0)).collect();
    let mut tokenizer = Tokenizer::new(Unigram::from(vocab, Some(0), false).unwrap());
    tokenizer.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::Always, true)));
    tokenizer.with_post_processor(Some(
        TemplateProcessing::builder()
            .try_single("<s> $A </s>")
            .unwrap()
            .special_tokens(vec![("<s>", 1), ("</s>", 2)])
            .build()
            .unwrap(),
    ));
    tokenizer.add_special_tokens(&[
        AddedToken::from("<s>", true),
        AddedToken::from("</s>", true),
        AddedToken::from("<pad>", true),
    ]);
    let path = dir.join("tokenizer.json");
    tokenizer.save(&path, true).unwrap();
    path
}

/// A BERT-style WordPiece tokenizer written as JSON by hand.
fn wordpiece_json(dir: &Path) -> std::path::PathBuf {
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 0},
        "padding": null,
        "added_tokens": [
            {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 1, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 2, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 3, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
        ],
        "normalizer": null,
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {
            "type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100,
            "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "بو": 4, "##تين": 5,
                      "في": 6, "باكو": 7, ".": 8}
        }
    });
    let path = dir.join("wordpiece.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    path
}

fn table(doc: &EncodedDocument) -> Vec<(u32, (usize, usize), Option<usize>)> {
    doc.tokens
        .iter()
        .map(|t| (t.id, (t.span.start, t.span.end), t.word))
        .collect()
}

#[test]
fn unigram_metaspace_with_ligatures_marks_and_controls() {
    let dir = tempfile::tempdir().unwrap();
    let enc =
        SubwordEncoder::from_file(unigram_json(dir.path()), NormalizerConfig::default()).unwrap();
    let path = unigram_json(dir.path());
    let special = enc.special_tokens();
    assert_eq!(
        (special.prefix.as_slice(), special.suffix.as_slice()),
        (&[1][..], &[2][..])
    );
    assert_eq!((special.bos(), special.eos()), (Some(1), Some(2)));
    assert_eq!((special.pad, special.unk), (Some(3), Some(0)));

    // ﻻ (U+FEFB) and ﻷ (U+FEF7) expand; the damma on بوتينُ and the RLM are
    // removed; the NBSP is white space; the digits become ASCII.
    let text = "ﻻ يزور بوتينُ ﻷ\u{200F}جل\u{A0}عام ٢٠٢٣.\n";
    assert_eq!(
        enc.normalizer().normalize(text).text(),
        "لا يزور بوتين لأجل عام 2023.\n"
    );
    let doc = enc.encode(text).unwrap();
    let words: Vec<(usize, usize)> = doc.words.iter().map(|w| (w.start, w.end)).collect();
    assert_eq!(
        words,
        [(0, 1), (2, 6), (7, 13), (14, 18), (19, 22), (23, 28)]
    );
    assert_eq!(
        table(&doc),
        [
            (5, (0, 1), Some(0)),    // ▁لا ← ﻻ
            (6, (2, 6), Some(1)),    // ▁يزور, without its space
            (7, (7, 9), Some(2)),    // ▁بو
            (8, (9, 13), Some(2)),   // تين with the damma after it
            (9, (14, 15), Some(3)),  // ▁ل ← ﻷ
            (10, (15, 15), Some(3)), // أ ← the same ﻷ: empty, after ▁ل
            (11, (16, 18), Some(3)), // جل: the RLM before it is left out
            (12, (19, 22), Some(4)), // ▁عام after the NBSP
            (4, (23, 23), Some(5)),  // a bare ▁: empty, at the next word
            (13, (23, 27), Some(5)), // 2023 ← ٢٠٢٣
            (14, (27, 28), Some(5)), // .
            (0, (29, 29), None),     // <unk> for the final newline
        ]
    );
    let ct = CharText::new(text);
    assert_eq!(ct.slice(9, 13), Some("تينُ"));
    // The same ids as `tokenizers` with its own Unigram model.
    let hf = tokenizers::Tokenizer::from_file(&path).unwrap();
    assert_eq!(
        doc.ids(),
        hf.encode(enc.normalizer().normalize(text).text(), false)
            .unwrap()
            .get_ids()
    );
}

#[test]
fn wordpiece_bert_processing_and_no_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let enc =
        SubwordEncoder::from_file(wordpiece_json(dir.path()), NormalizerConfig::default()).unwrap();
    let special = enc.special_tokens();
    assert_eq!((special.bos(), special.eos()), (Some(2), Some(3)));
    assert_eq!((special.pad, special.unk), (Some(0), Some(1)));
    // The file asks for truncation at 4 tokens; a document is never cut.
    let text = "بوتينُ في باكو. ؟؟ بوتين";
    let doc = enc.encode(text).unwrap();
    assert_eq!(
        table(&doc),
        [
            (4, (0, 2), Some(0)),
            (5, (2, 6), Some(0)),
            (6, (7, 9), Some(1)),
            (7, (10, 14), Some(2)),
            (8, (14, 15), Some(2)),
            (1, (16, 17), Some(3)),
            (1, (17, 18), Some(3)),
            (4, (19, 21), Some(4)),
            (5, (21, 24), Some(4)),
        ]
    );
}

#[test]
fn a_twenty_thousand_word_document_is_covered_by_windows() {
    let dir = tempfile::tempdir().unwrap();
    let enc =
        SubwordEncoder::from_file(unigram_json(dir.path()), NormalizerConfig::default()).unwrap();
    let text = "ﻻ يزور بوتينُ ﻷ\u{200F}جل عام ٢٠٢٣.\n".repeat(3400);
    let doc = enc.encode(&text).unwrap();
    assert!(doc.words.len() >= 20_000, "{}", doc.words.len());
    let n = doc.tokens.len();
    assert!(n > doc.words.len());
    let ws = windows(n, 510, 128).unwrap();
    assert_eq!(ws.iter().map(|w| w.counted.len()).sum::<usize>(), n);
    assert_eq!(ws.last().unwrap().tokens.end, n);
    // Spans stay ordered and trimmed to the very end.
    let chars: Vec<char> = text.chars().collect();
    let mut cursor = 0;
    for t in &doc.tokens {
        assert!(cursor <= t.span.start && t.span.start <= t.span.end);
        if !t.span.is_empty() {
            assert!(!is_space(chars[t.span.start]) && !is_space(chars[t.span.end - 1]));
        }
        cursor = t.span.end;
    }
    assert_eq!(
        doc.tokens.last().unwrap().span,
        Span::new(chars.len(), chars.len())
    );
}

#[test]
fn a_missing_file_is_a_load_error_with_its_cause() {
    let err = SubwordEncoder::from_file("/nonexistent/tokenizer.json", NormalizerConfig::default())
        .unwrap_err();
    assert!(matches!(err, TokenizerError::Load { .. }));
    assert!(err.to_string().contains("/nonexistent/tokenizer.json"));
    assert!(std::error::Error::source(&err).is_some());
}
