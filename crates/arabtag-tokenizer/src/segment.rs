//! The guideline's sentence segmenter and white space.
//!
//! `ANNOTATION.md`: split each line at `.` `!` `?` `؟` that is followed by
//! white space or the line's end; drop empty pieces; trim white space. The
//! reference is `segments()` in `seeds/tools/build_gold.py`; [`segments`]
//! gives the same spans.

use arabtag_records::Span;

/// The marks that can end a segment.
pub const SENTENCE_ENDERS: [char; 4] = ['.', '!', '?', '\u{061F}'];

/// White space exactly as Python's `str.isspace()` sees it: Unicode
/// White_Space (the no-break space U+00A0 included) plus the information
/// separators U+001C–U+001F.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c)
}

/// The guideline's segments of `text`, as half-open character spans of it,
/// in order.
///
/// Lines are split at `'\n'` only (a `'\r'` before it is white space and is
/// trimmed). A piece ends after an ender that is followed by white space or
/// by the line's end, so `3.5` and `...word` do not split; the ender stays
/// in the piece. Pieces are trimmed of white space and empty ones dropped.
pub fn segments(text: &str) -> Vec<Span> {
    let chars: Vec<char> = text.chars().collect();
    let mut pieces = Vec::new();
    let mut line_start = 0;
    for line in chars.split(|&c| c == '\n') {
        let line_end = line_start + line.len();
        let mut piece = line_start;
        for (j, &c) in line.iter().enumerate() {
            let at = line_start + j;
            let ends = match line.get(j + 1) {
                None => true,
                Some(&next) => is_space(next),
            };
            if SENTENCE_ENDERS.contains(&c) && ends {
                pieces.push((piece, at + 1));
                piece = at + 1;
            }
        }
        pieces.push((piece, line_end));
        line_start = line_end + 1;
    }
    pieces
        .into_iter()
        .filter_map(|(start, end)| trim(&chars, Span::new(start, end)))
        .collect()
}

/// `span` without white space at either end, or `None` when nothing is left.
fn trim(chars: &[char], span: Span) -> Option<Span> {
    let inner = &chars[span.start..span.end];
    let start = inner.iter().position(|&c| !is_space(c))?;
    let end = inner.iter().rposition(|&c| !is_space(c))? + 1;
    Some(Span::new(span.start + start, span.start + end))
}

/// The white-space-separated words of `text` (maximal runs of characters
/// that are not [`is_space`]), as character spans, in order. This is
/// Python's `str.split()` with spans.
pub fn words(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut start = None;
    let mut len = 0;
    for (i, c) in text.chars().enumerate() {
        match (is_space(c), start) {
            (true, Some(s)) => {
                out.push(Span::new(s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
        len = i + 1;
    }
    if let Some(s) = start {
        out.push(Span::new(s, len));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<(usize, usize)> {
        segments(text).iter().map(|s| (s.start, s.end)).collect()
    }

    /// Expected values are those of `build_gold.segments()` on the same input.
    #[test]
    fn edge_cases_agree_with_the_python_reference() {
        let cases: &[(&str, &[(usize, usize)])] = &[
            ("", &[]),
            ("   ", &[]),
            ("\n\n", &[]),
            ("  \n  lone  \n", &[(5, 9)]),
            ("a. b", &[(0, 2), (3, 4)]),
            ("Wait... what?! Yes", &[(0, 7), (8, 14), (15, 18)]),
            ("كيف؟\nجيد", &[(0, 4), (5, 8)]),
            ("كيف؟", &[(0, 4)]),
            ("؟؟ ok", &[(0, 2), (3, 5)]),
            ("x\u{a0}.\u{a0}y", &[(0, 3), (4, 5)]),
            ("a.\u{a0}b", &[(0, 2), (3, 4)]),
            ("3.5 and 4.5. Done", &[(0, 12), (13, 17)]),
            ("a.b. c", &[(0, 4), (5, 6)]),
            ("e.g.\tfoo", &[(0, 4), (5, 8)]),
            ("one.\r\ntwo!\r\n", &[(0, 4), (6, 10)]),
            // ZWSP is not white space; U+001C and U+2028 are.
            ("a.\u{200b}b", &[(0, 4)]),
            ("end.\u{1c}next", &[(0, 4), (5, 9)]),
            ("x.\u{2028}y", &[(0, 2), (3, 4)]),
            (".", &[(0, 1)]),
        ];
        for (text, expected) in cases {
            assert_eq!(spans(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn is_space_is_python_isspace() {
        // ''.join(c for c in map(chr, range(0x110000)) if c.isspace())
        let python = "\t\n\u{b}\u{c}\r\u{1c}\u{1d}\u{1e}\u{1f} \u{85}\u{a0}\u{1680}\
            \u{2000}\u{2001}\u{2002}\u{2003}\u{2004}\u{2005}\u{2006}\u{2007}\u{2008}\
            \u{2009}\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}";
        let ours: String = (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|&c| is_space(c))
            .collect();
        assert_eq!(ours, python);
    }

    #[test]
    fn words_split_on_white_space() {
        let w: Vec<(usize, usize)> = words("  بوتين\u{a0}في\tباكو. ")
            .iter()
            .map(|s| (s.start, s.end))
            .collect();
        assert_eq!(w, [(2, 7), (8, 10), (11, 16)]);
        assert!(words("").is_empty());
        assert!(words(" \n ").is_empty());
        assert_eq!(words("x"), [Span::new(0, 1)]);
    }
}
