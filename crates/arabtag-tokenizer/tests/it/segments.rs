//! The segmenter on the seed articles, against `build_gold.py`'s `segments()`.

use std::collections::BTreeMap;

use arabtag_records::{CharText, Record, read_jsonl};
use arabtag_tokenizer::{is_space, segments};
use proptest::prelude::*;

use crate::common::{seeds, workspace};

/// Spans from `seeds/tools/build_gold.py`'s `segments()`, captured with:
///
/// ```text
/// python3 -c 'import sys, json, glob, os; sys.path.insert(0, "seeds/tools")
/// from build_gold import segments
/// print(json.dumps({os.path.basename(f)[:-4]: segments(open(f, encoding="utf-8",
///     newline="").read()) for f in sorted(glob.glob("seeds/*.txt"))}))'
/// ```
const EXPECTED: &str = include_str!("../data/seed_segments.json");

#[test]
fn seed_segments_match_the_python_reference() {
    let expected: BTreeMap<String, Vec<(usize, usize)>> = serde_json::from_str(EXPECTED).unwrap();
    let seeds = seeds();
    let ids: Vec<&str> = seeds.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, expected.keys().map(String::as_str).collect::<Vec<_>>());
    let mut counts = Vec::new();
    for (id, text) in &seeds {
        let ours: Vec<(usize, usize)> = segments(text).iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(ours, expected[id], "{id}");
        counts.push(ours.len());
    }
    assert_eq!(counts, [19, 20, 26, 24, 46]);
    assert_eq!(counts.iter().sum::<usize>(), 135);
}

#[test]
fn seed_segments_match_the_gold_file_when_it_exists() {
    let path = workspace().join("seeds/gold.jsonl");
    if !path.exists() {
        eprintln!("skipped: {} does not exist yet", path.display());
        return;
    }
    let gold: Vec<Record> = read_jsonl(&path).unwrap();
    for (id, text) in seeds() {
        let Some(record) = gold.iter().find(|r| r.id == id) else {
            continue;
        };
        let theirs: Vec<_> = record.segments.iter().map(|s| s.span()).collect();
        assert_eq!(segments(&text), theirs, "{id}");
    }
}

fn text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        Just('.'),
        Just('!'),
        Just('?'),
        Just('\u{61F}'),
        Just(' '),
        Just('\n'),
        Just('\r'),
        Just('\u{a0}'),
        Just('\u{1c}'),
        Just('ب'),
        Just('3'),
        any::<char>(),
    ];
    proptest::collection::vec(c, 0..60).prop_map(|v| v.into_iter().collect())
}

proptest! {
    /// Segments are ordered, trimmed, non-empty, within one line, and every
    /// non-space character is in one.
    #[test]
    fn segments_are_trimmed_lines_pieces(text in text()) {
        let chars: Vec<char> = text.chars().collect();
        let spans = segments(&text);
        let ct = CharText::new(&text);
        let mut covered = vec![false; chars.len()];
        let mut prev_end = 0;
        for s in &spans {
            prop_assert!(s.start < s.end && s.start >= prev_end);
            prop_assert!(ct.slice(s.start, s.end).is_some());
            prop_assert!(!is_space(chars[s.start]) && !is_space(chars[s.end - 1]));
            prop_assert!(!chars[s.start..s.end].contains(&'\n'));
            covered[s.start..s.end].fill(true);
            prev_end = s.end;
        }
        for (i, &c) in chars.iter().enumerate() {
            prop_assert!(covered[i] || is_space(c), "char {} {:?} not in a segment", i, c);
        }
    }
}
