//! Overlapping windows over a long token sequence.
//!
//! A document of any length is cut into windows of at most `max_len`
//! content tokens (special tokens such as `<s>`/`</s>` are not counted: the
//! caller adds them around each window, so a model with 512 positions and
//! two specials takes `max_len = 510`). Consecutive windows share `stride`
//! tokens, as `stride` means in Hugging Face's overflowing tokens. Nothing is
//! truncated: the windows cover every token.
//!
//! Each token is *counted* in exactly one window, the one where it is most
//! central: an overlap is split in its middle, its first half counted in the
//! earlier window and its second half in the later one. Merging the counted
//! part of every window's logits gives one logit row per token.

use std::ops::Range;

use crate::error::TokenizerError;

/// One window: the tokens it holds and the tokens whose outputs it owns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Window {
    /// The content tokens fed to the model, `tokens.len() <= max_len`.
    pub tokens: Range<usize>,
    /// The tokens whose outputs are taken from this window; inside
    /// `tokens`. The counted ranges of all windows partition `0..n`.
    pub counted: Range<usize>,
}

/// Plans windows over `n` tokens: windows of `max_len` content tokens (the
/// last one, or the only one, shorter only when `n < max_len`), each starting
/// `max_len - stride` tokens after the previous one; the last window is
/// moved back to end at `n` with its full length, so its overlap with the
/// one before may exceed `stride`. No tokens (`n == 0`) give no windows.
///
/// Errors when `max_len` is 0 or `stride >= max_len` (windows would not
/// advance).
pub fn windows(n: usize, max_len: usize, stride: usize) -> Result<Vec<Window>, TokenizerError> {
    if max_len == 0 {
        return Err(TokenizerError::EmptyWindow);
    }
    if stride >= max_len {
        return Err(TokenizerError::StrideTooLarge { stride, max_len });
    }
    let step = max_len - stride;
    let mut spans: Vec<Range<usize>> = Vec::new();
    let mut start = 0;
    while start < n {
        if start + max_len >= n {
            let start = n.saturating_sub(max_len);
            spans.push(start..n);
            break;
        }
        spans.push(start..start + max_len);
        start += step;
    }
    let mut out = Vec::with_capacity(spans.len());
    let mut counted_from = 0;
    for (i, span) in spans.iter().enumerate() {
        let counted_to = match spans.get(i + 1) {
            // Tokens up to the middle of the overlap stay here (ties too).
            Some(next) => (span.end + next.start).div_ceil(2),
            None => n,
        };
        out.push(Window {
            tokens: span.clone(),
            counted: counted_from..counted_to,
        });
        counted_from = counted_to;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn plan(n: usize, max_len: usize, stride: usize) -> Vec<(Range<usize>, Range<usize>)> {
        windows(n, max_len, stride)
            .unwrap()
            .into_iter()
            .map(|w| (w.tokens, w.counted))
            .collect()
    }

    #[test]
    fn no_tokens_no_windows() {
        assert!(plan(0, 8, 2).is_empty());
    }

    #[test]
    fn fewer_tokens_than_a_window() {
        assert_eq!(plan(5, 8, 2), [(0..5, 0..5)]);
        assert_eq!(plan(8, 8, 2), [(0..8, 0..8)]);
        assert_eq!(plan(1, 1, 0), [(0..1, 0..1)]);
    }

    #[test]
    fn exact_multiples() {
        // No overlap: windows tile the tokens.
        assert_eq!(plan(12, 4, 0), [(0..4, 0..4), (4..8, 4..8), (8..12, 8..12)]);
        // Step 6 over 4 + 2 * 6 tokens: overlaps of 2 split in the middle.
        assert_eq!(
            plan(20, 8, 2),
            [(0..8, 0..7), (6..14, 7..13), (12..20, 13..20)]
        );
    }

    #[test]
    fn the_last_window_is_pulled_back_to_full_length() {
        // Windows at 0, 6; the third would be 12..20 but there are 17 tokens.
        assert_eq!(
            plan(17, 8, 2),
            [(0..8, 0..7), (6..14, 7..12), (9..17, 12..17)]
        );
    }

    #[test]
    fn odd_overlap_goes_to_the_earlier_window_on_a_tie() {
        // Overlap 6..9: token 7 is 1 from either edge and stays in the first.
        assert_eq!(plan(15, 9, 3), [(0..9, 0..8), (6..15, 8..15)]);
        // A pulled-back last window widens the overlap (3..9), split at 6.
        assert_eq!(plan(12, 9, 3), [(0..9, 0..6), (3..12, 6..12)]);
    }

    #[test]
    fn invalid_plans_are_errors() {
        assert!(matches!(
            windows(10, 0, 0),
            Err(TokenizerError::EmptyWindow)
        ));
        assert!(matches!(
            windows(10, 4, 4),
            Err(TokenizerError::StrideTooLarge {
                stride: 4,
                max_len: 4
            })
        ));
    }
}
