//! The segmenter and the word splitter: spans in order, disjoint, inside
//! the text, trimmed.
#![no_main]
use arabtag_tokenizer::{segments, words};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let chars: Vec<char> = text.chars().collect();
    for spans in [segments(text), words(text)] {
        let mut at = 0;
        for s in &spans {
            assert!(s.start >= at && s.start < s.end && s.end <= chars.len(), "{s:?}");
            assert!(!chars[s.start].is_whitespace() && !chars[s.end - 1].is_whitespace());
            at = s.end;
        }
    }
});
