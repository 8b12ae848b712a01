//! Window plans: counted ranges partition the tokens, nothing is truncated.

use arabtag_tokenizer::{TokenizerError, Window, windows};
use proptest::prelude::*;

fn centrality(w: &Window, t: usize) -> usize {
    (t - w.tokens.start).min(w.tokens.end - 1 - t)
}

fn plan() -> impl Strategy<Value = (usize, usize, usize)> {
    (0usize..3000, 1usize..600).prop_flat_map(|(n, max_len)| (Just(n), Just(max_len), 0..max_len))
}

proptest! {
    #[test]
    fn windows_cover_and_count_every_token_once((n, max_len, stride) in plan()) {
        let ws = windows(n, max_len, stride).unwrap();
        prop_assert_eq!(ws.is_empty(), n == 0);
        let mut next = 0;
        for (k, w) in ws.iter().enumerate() {
            // Inside the text, at most max_len, full unless the text is shorter.
            prop_assert!(w.tokens.start < w.tokens.end && w.tokens.end <= n);
            prop_assert_eq!(w.tokens.len(), max_len.min(n));
            // Counted ranges partition 0..n and lie inside their windows.
            prop_assert_eq!(w.counted.start, next);
            prop_assert!(w.counted.start <= w.counted.end);
            prop_assert!(w.tokens.start <= w.counted.start && w.counted.end <= w.tokens.end);
            next = w.counted.end;
            if let Some(v) = ws.get(k + 1) {
                prop_assert!(v.tokens.start > w.tokens.start);
                let overlap = w.tokens.end - v.tokens.start;
                if k + 2 < ws.len() {
                    prop_assert_eq!(overlap, stride);
                } else {
                    prop_assert!(overlap >= stride);
                }
            }
        }
        prop_assert_eq!(next, n);
        if let Some(last) = ws.last() {
            prop_assert_eq!(last.tokens.end, n);
        }
        // Each token is counted where it is most central (window centres are
        // ordered, so the nearest ones are the neighbours).
        for (k, w) in ws.iter().enumerate() {
            let near = &ws[k.saturating_sub(2)..(k + 3).min(ws.len())];
            for t in w.counted.clone() {
                for v in near.iter().filter(|v| v.tokens.contains(&t)) {
                    prop_assert!(centrality(w, t) >= centrality(v, t));
                }
            }
        }
    }
}

#[test]
fn a_huge_document_is_never_truncated() {
    let n = 1_000_003;
    let ws = windows(n, 510, 128).unwrap();
    assert_eq!(ws.first().unwrap().tokens.start, 0);
    assert_eq!(ws.last().unwrap().tokens.end, n);
    assert_eq!(ws.iter().map(|w| w.counted.len()).sum::<usize>(), n);
}

#[test]
fn invalid_parameters_are_errors() {
    assert!(matches!(windows(5, 0, 0), Err(TokenizerError::EmptyWindow)));
    assert!(matches!(
        windows(5, 3, 7),
        Err(TokenizerError::StrideTooLarge { .. })
    ));
}
