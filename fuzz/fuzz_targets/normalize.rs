//! The normaliser and its alignment: for every setting, the pieces cut both
//! texts without gaps, and ranges map back into bounds.
#![no_main]
use arabtag_tokenizer::NormalizerConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for config in [NormalizerConfig::default(), NormalizerConfig::all(), NormalizerConfig::none()] {
        let n = config.normalize(text);
        assert_eq!(n.original_len(), text.chars().count());
        assert_eq!(n.len(), n.text().chars().count());
        let (mut o, mut m) = (0, 0);
        for piece in n.pieces() {
            assert_eq!(piece.original.start, o, "gap in the original");
            assert_eq!(piece.normalized.start, m, "gap in the normalised text");
            assert!(piece.original.end >= piece.original.start);
            assert!(piece.normalized.end >= piece.normalized.start);
            o = piece.original.end;
            m = piece.normalized.end;
        }
        assert_eq!((o, m), (n.original_len(), n.len()));
        let len = n.len();
        for (s, e) in [(0, len), (0, len / 2), (len / 3, len), (len / 2, len / 2)] {
            let back = n.to_original(arabtag_records::Span::new(s, e)).expect("in bounds");
            assert!(back.start <= back.end && back.end <= n.original_len());
        }
        let olen = n.original_len();
        let fwd = n.to_normalized(arabtag_records::Span::new(0, olen)).expect("in bounds");
        assert!(fwd.end <= len);
        assert!(n.to_original(arabtag_records::Span::new(0, len + 1)).is_none());
    }
});
