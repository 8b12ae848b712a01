//! Properties of the normaliser's alignment on random text: random Unicode,
//! Arabic with marks and presentation forms, emoji and mixed directions.

use arabtag_records::{CharText, Span};
use arabtag_tokenizer::{Normalized, NormalizerConfig};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

fn from_ranges(ranges: &'static [(u32, u32)]) -> impl Strategy<Value = char> {
    proptest::sample::select(ranges)
        .prop_flat_map(|(lo, hi)| lo..=hi)
        .prop_filter_map("not a scalar value", char::from_u32)
}

/// Arabic letters, tashkeel, Quranic marks, tatweel, digits, presentation
/// forms (ligatures included), hamza above/below, punctuation, spaces and
/// controls.
fn arabic() -> impl Strategy<Value = char> {
    from_ranges(&[
        (0x0621, 0x064A),
        (0x064B, 0x065F),
        (0x0654, 0x0655),
        (0x0670, 0x0671),
        (0x06D6, 0x06ED),
        (0x0640, 0x0640),
        (0x0660, 0x0669),
        (0x06F0, 0x06F9),
        (0x06CC, 0x06CC),
        (0xFB50, 0xFDFF),
        (0xFE70, 0xFEFC),
        (0x060C, 0x060C),
        (0x061F, 0x061F),
        (0x0020, 0x0020),
        (0x00A0, 0x00A0),
        (0x000A, 0x000A),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2066, 0x2069),
        (0x061C, 0x061C),
        (0xFEFF, 0xFEFF),
    ])
}

/// Emoji (with ZWJ, variation selectors and skin tones), Latin with
/// combining marks, Hebrew, Hangul jamo and syllables, CJK compatibility,
/// full-width forms, bidi overrides.
fn mixed() -> impl Strategy<Value = char> {
    from_ranges(&[
        (0x1F300, 0x1F64F),
        (0x1F900, 0x1F9FF),
        (0x1F3FB, 0x1F3FF),
        (0x200D, 0x200D),
        (0xFE0F, 0xFE0F),
        (0x0041, 0x007A),
        (0x0300, 0x036F),
        (0x0590, 0x05FF),
        (0x1100, 0x11FF),
        (0xAC00, 0xAC40),
        (0x3300, 0x33FF),
        (0xFF01, 0xFF5E),
        (0x202A, 0x202E),
        (0x00C0, 0x00FF),
        (0x1E00, 0x1EFF),
        (0x0F70, 0x0F85),
        (0x2460, 0x24FF),
    ])
}

fn text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        3 => arabic(),
        2 => mixed(),
        1 => any::<char>(),
    ];
    prop_oneof![
        proptest::collection::vec(c, 0..40),
        proptest::collection::vec(arabic(), 0..40),
        proptest::collection::vec(mixed(), 0..40),
        proptest::collection::vec(any::<char>(), 0..40),
    ]
    .prop_map(|v| v.into_iter().collect())
}

fn config() -> impl Strategy<Value = NormalizerConfig> {
    prop_oneof![
        Just(NormalizerConfig::default()),
        Just(NormalizerConfig::all()),
        any::<[bool; 9]>().prop_map(|b| {
            let mut c = NormalizerConfig::none();
            c.nfkc = b[0];
            c.remove_tashkeel = b[1];
            c.remove_tatweel = b[2];
            c.strip_controls = b[3];
            c.nbsp_to_space = b[4];
            c.ascii_digits = b[5];
            c.unify_alef = b[6];
            c.alef_maqsura_to_ya = b[7];
            c.ta_marbuta_to_ha = b[8];
            c
        }),
    ]
}

/// Piece boundaries: (original position, normalised position).
fn boundaries(n: &Normalized) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = n
        .pieces()
        .map(|p| (p.original.start, p.normalized.start))
        .collect();
    out.push((n.original_len(), n.len()));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The pieces cut both texts into consecutive runs without gaps.
    #[test]
    fn pieces_cover_both_texts(text in text(), config in config()) {
        let n = config.normalize(&text);
        prop_assert_eq!(n.original_len(), text.chars().count());
        prop_assert_eq!(n.len(), n.text().chars().count());
        let (mut orig, mut norm) = (0, 0);
        for p in n.pieces() {
            prop_assert_eq!(p.original.start, orig);
            prop_assert_eq!(p.normalized.start, norm);
            prop_assert!(p.original.start < p.original.end);
            prop_assert!(p.normalized.start <= p.normalized.end);
            orig = p.original.end;
            norm = p.normalized.end;
        }
        prop_assert_eq!(orig, n.original_len());
        prop_assert_eq!(norm, n.len());
    }

    /// Every normalised character maps to a non-empty original range on
    /// character boundaries, monotonically, without overlapping the ranges of
    /// other pieces, and maps back onto itself.
    #[test]
    fn normalised_to_original(text in text(), config in config()) {
        let n = config.normalize(&text);
        let orig = CharText::new(&text);
        let norm = CharText::new(n.text());
        let mut prev: Option<(Span, Span)> = None;
        for i in 0..n.len() {
            let r = n.to_original(Span::new(i, i + 1)).unwrap();
            prop_assert!(r.start < r.end);
            prop_assert!(orig.slice(r.start, r.end).is_some());
            let back = n.to_normalized(r).unwrap();
            prop_assert!(back.start <= i && i < back.end, "{:?} → {:?} → {:?}", i, r, back);
            prop_assert!(norm.slice(back.start, back.end).is_some());
            if let Some((p, pback)) = prev {
                prop_assert!(p.start <= r.start && p.end <= r.end);
                // Characters of different pieces never share original ones.
                prop_assert!(pback == back || p.end <= r.start);
            }
            prev = Some((r, back));
        }
        for i in 0..=n.len() {
            let e = n.to_original(Span::new(i, i)).unwrap();
            prop_assert!(e.is_empty() && e.end <= n.original_len());
        }
        prop_assert!(n.to_original(Span::new(0, n.len() + 1)).is_none());
    }

    /// Every original character maps to a (possibly empty) normalised range,
    /// monotonically; a character that is kept maps back onto itself.
    #[test]
    fn original_to_normalised(text in text(), config in config()) {
        let n = config.normalize(&text);
        let norm = CharText::new(n.text());
        let mut prev = Span::new(0, 0);
        for j in 0..n.original_len() {
            let r = n.to_normalized(Span::new(j, j + 1)).unwrap();
            prop_assert!(norm.slice(r.start, r.end).is_some());
            prop_assert!(prev.start <= r.start && prev.end <= r.end);
            if !r.is_empty() {
                let back = n.to_original(r).unwrap();
                prop_assert!(back.start <= j && j < back.end);
            }
            prev = r;
        }
        let all = n.to_normalized(Span::new(0, n.original_len())).unwrap();
        prop_assert_eq!(all, Span::new(0, n.len()));
        for j in 0..=n.original_len() {
            let e = n.to_normalized(Span::new(j, j)).unwrap();
            prop_assert!(e.is_empty() && e.end <= n.len());
        }
        prop_assert!(n.to_normalized(Span::new(0, n.original_len() + 1)).is_none());
    }

    /// Normalising a slice of the original cut at piece boundaries gives the
    /// paired slice of the normalised text.
    #[test]
    fn slices_normalise_to_their_aligned_slices(text in text(), config in config()) {
        let n = config.normalize(&text);
        let orig = CharText::new(&text);
        let norm = CharText::new(n.text());
        let bounds = boundaries(&n);
        for (i, &(a, na)) in bounds.iter().enumerate() {
            for &(b, nb) in &bounds[i..] {
                let slice = orig.slice(a, b).unwrap();
                let expected = norm.slice(na, nb).unwrap();
                let got = config.normalize(slice);
                prop_assert_eq!(got.text(), expected, "{}..{}", a, b);
            }
        }
    }

    /// Our chunked NFKC equals NFKC of the whole text.
    #[test]
    fn nfkc_alone_is_unicode_nfkc(text in text()) {
        let mut config = NormalizerConfig::none();
        config.nfkc = true;
        let whole: String = text.nfkc().collect();
        let got = config.normalize(&text);
        prop_assert_eq!(got.text(), whole.as_str());
    }

    /// With every step off the text comes back unchanged, one to one.
    #[test]
    fn no_step_is_the_identity(text in text()) {
        let n = NormalizerConfig::none().normalize(&text);
        prop_assert_eq!(n.text(), text.as_str());
        for (i, p) in n.pieces().enumerate() {
            prop_assert_eq!(p.original, Span::new(i, i + 1));
            prop_assert_eq!(p.normalized, p.original);
        }
    }
}
