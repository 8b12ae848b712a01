//! The encoder with the real e5 tokenizer on every seed article.

use arabtag_records::CharText;
use arabtag_tokenizer::{METASPACE, is_control, is_space, windows};
use tokenizers::{NormalizedString, Normalizer};

use crate::common::{e5, seeds, workspace};

#[test]
fn e5_tokens_map_exactly_onto_the_seed_articles() {
    let Some(enc) = e5("e5_tokens_map_exactly_onto_the_seed_articles") else {
        return;
    };
    // `tokenizers` with its own Unigram model: our compact one must give
    // the same tokens.
    let tokenizer =
        tokenizers::Tokenizer::from_file(workspace().join("models/e5-small/tokenizer.json"))
            .unwrap();
    let hf_normalizer = tokenizer.get_normalizer().unwrap();
    let unk = enc.special_tokens().unk.unwrap();
    for (id, text) in seeds() {
        let doc = enc.encode(&text).unwrap();
        let ct = CharText::new(&text);
        let chars: Vec<char> = text.chars().collect();
        // The same ids as the tokenizer gives for our normalised text.
        let normalized = enc.normalizer().normalize(&text);
        let hf = tokenizer.encode(normalized.text(), false).unwrap();
        assert_eq!(doc.ids(), hf.get_ids(), "{id}");

        let mut covered = vec![false; chars.len()];
        let mut cursor = 0;
        let mut checked = 0;
        for (i, t) in doc.tokens.iter().enumerate() {
            let where_ = format!("{id} token {i} {:?} {:?}", hf.get_tokens()[i], t.span);
            // In order, never overlapping, on the article's characters.
            assert!(
                cursor <= t.span.start && t.span.start <= t.span.end,
                "{where_}"
            );
            cursor = t.span.end;
            let slice = ct.slice(t.span.start, t.span.end).unwrap();
            // Never the ▁ / white space.
            assert!(
                !slice.starts_with(is_space) && !slice.ends_with(is_space),
                "{where_}"
            );
            covered[t.span.start..t.span.end].fill(true);
            // Inside the word it belongs to.
            if !t.span.is_empty() {
                let w = doc.words[t.word.unwrap()];
                assert!(w.start <= t.span.start && t.span.end <= w.end, "{where_}");
            }
            // The piece is what the tokenizer's own normaliser makes of our
            // normalisation of the article's slice.
            let piece = tokenizer.id_to_token(t.id).unwrap();
            let piece = piece.trim_start_matches(METASPACE);
            if t.id != unk && !piece.is_empty() {
                let mut ours = NormalizedString::from(enc.normalizer().normalize(slice).text());
                hf_normalizer.normalize(&mut ours).unwrap();
                assert_eq!(piece, ours.get(), "{where_}: {slice:?}");
                checked += 1;
            } else {
                assert!(t.id == unk || t.span.is_empty(), "{where_}");
            }
        }
        assert!(
            checked * 10 >= doc.tokens.len() * 9,
            "{id}: {checked} checked"
        );
        // Every character but white space (and removed controls) is in a token.
        for (j, &c) in chars.iter().enumerate() {
            assert!(
                covered[j] || is_space(c) || is_control(c),
                "{id}: char {j} {c:?} is in no token"
            );
        }
        // A window plan for a 512-position model covers every token.
        let ws = windows(doc.tokens.len(), 510, 128).unwrap();
        assert_eq!(
            ws.iter().map(|w| w.counted.len()).sum::<usize>(),
            doc.tokens.len()
        );
    }
}

#[test]
fn e5_special_tokens() {
    let Some(enc) = e5("e5_special_tokens") else {
        return;
    };
    let special = enc.special_tokens();
    assert_eq!(special.prefix, [0]);
    assert_eq!(special.suffix, [2]);
    assert_eq!((special.bos(), special.eos()), (Some(0), Some(2)));
    assert_eq!((special.pad, special.unk), (Some(1), Some(3)));
}

#[test]
fn e5_a_twenty_thousand_word_document() {
    let Some(enc) = e5("e5_a_twenty_thousand_word_document") else {
        return;
    };
    let seeds = seeds();
    let mut text = String::new();
    while text.split_whitespace().count() < 20_000 {
        for (_, t) in &seeds {
            text.push_str(t);
        }
    }
    let doc = enc.encode(&text).unwrap();
    let n = doc.tokens.len();
    assert!(doc.words.len() >= 20_000);
    let ws = windows(n, 510, 128).unwrap();
    assert_eq!(ws.last().unwrap().tokens.end, n);
    assert_eq!(ws.iter().map(|w| w.counted.len()).sum::<usize>(), n);
    // Every word has a token.
    let mut seen = vec![false; doc.words.len()];
    for t in &doc.tokens {
        if let Some(w) = t.word {
            seen[w] |= !t.span.is_empty();
        }
    }
    assert!(seen.iter().all(|&s| s));
}

/// The compact Unigram model against `tokenizers`' own on e5's vocabulary:
/// the same ids and offsets on the seeds, the ANERcorp test sentences, and
/// text built to stress it (unknown characters in runs, Latin, digits,
/// emoji, symbols, added tokens, empty and space-only strings).
#[test]
fn compact_unigram_tokenizes_as_tokenizers_does() {
    let path = workspace().join("models/e5-small/tokenizer.json");
    let Some(enc) = e5("compact_unigram_tokenizes_as_tokenizers_does") else {
        return;
    };
    let hf = tokenizers::Tokenizer::from_file(&path).unwrap();
    let mut texts: Vec<String> = seeds().into_iter().map(|(_, t)| t).collect();
    let conll = workspace().join("data/anercorp/ANERCorp_CamelLab_test.txt");
    if let Ok(conll) = std::fs::read_to_string(&conll) {
        let mut sentence = Vec::new();
        for line in conll.lines() {
            match line.split_whitespace().next() {
                Some(token) => sentence.push(token.to_owned()),
                None if !sentence.is_empty() => texts.push(std::mem::take(&mut sentence).join(" ")),
                None => {}
            }
        }
    }
    texts.extend(
        [
            "",
            "   ",
            "\u{10fffd}\u{10fffd}\u{e000} غير معروف \u{10fffd}",
            "<s> قال </s> <mask> <pad> <unk>",
            "Putin met Erdoğan in Sochi on 2024-03-05 😀 at 10:30 — «حوار» ،؛؟",
            "ﻻ ﻷجل الـــــسلام ٢٠٢٣ 𝔸𝔹 ⅷ ½ ﷺ",
        ]
        .map(str::to_owned),
    );
    let mut compared = 0;
    for text in &texts {
        let ours = enc.encode_raw(text).unwrap();
        let theirs = hf.encode_char_offsets(text.as_str(), false).unwrap();
        assert_eq!(ours.get_ids(), theirs.get_ids(), "{text:?}");
        assert_eq!(ours.get_offsets(), theirs.get_offsets(), "{text:?}");
        assert_eq!(ours.get_tokens(), theirs.get_tokens(), "{text:?}");
        let ours = enc.encode_pair(text, "نص ثان").unwrap();
        let theirs = hf.encode((text.as_str(), "نص ثان"), true).unwrap();
        assert_eq!(ours, theirs.get_ids(), "{text:?}");
        compared += 1;
    }
    assert!(compared > 900 || !conll.exists(), "{compared} texts");
    // The vocabulary reads the same.
    for id in [0, 1, 2, 3, 5, 6, 1000, 250_001] {
        assert_eq!(enc.id_to_token(id), hf.id_to_token(id), "{id}");
    }
    assert_eq!(enc.id_to_token(250_002), None);
}
