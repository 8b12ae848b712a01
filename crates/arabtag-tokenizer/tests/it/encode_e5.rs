//! The encoder with the real e5 tokenizer on every seed article.

use arabtag_records::CharText;
use arabtag_tokenizer::{METASPACE, is_control, is_space, windows};
use tokenizers::{NormalizedString, Normalizer};

use crate::common::{e5, seeds};

#[test]
fn e5_tokens_map_exactly_onto_the_seed_articles() {
    let Some(enc) = e5("e5_tokens_map_exactly_onto_the_seed_articles") else {
        return;
    };
    let tokenizer = enc.tokenizer();
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
