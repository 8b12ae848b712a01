//! Arabic text handling for arabtag: normalisation with an exact offset map,
//! the guideline's sentence segmenter, subword encoding with spans in the
//! original text, and overlapping windows for long documents.
//!
//! Every offset at this crate's boundary is a half-open range of characters
//! (Unicode scalar values) of the ORIGINAL text, as
//! [`arabtag_records::Span`] holds it; never bytes, never normalised text.
//!
//! * [`NormalizerConfig::normalize`] → [`Normalized`]: the normalised text
//!   and its alignment ([`Normalized::to_original`],
//!   [`Normalized::to_normalized`], [`Normalized::pieces`]).
//! * [`segments`]: `ANNOTATION.md`'s sentence rule; [`is_space`] is Python's
//!   `str.isspace()`; [`words`] is `str.split()` with spans.
//! * [`SubwordEncoder`]: a `tokenizer.json` behind our normaliser; gives
//!   [`Token`]s with original spans and word indices, and the
//!   [`SpecialTokens`] to wrap windows with. A SentencePiece (Unigram)
//!   vocabulary is held by [`CompactUnigram`], a flat-array trie in place of
//!   `tokenizers`' own model (same tokens, a small part of its memory and
//!   start-up time).
//! * [`windows`]: overlapping [`Window`]s where every token is counted once.

mod encode;
mod error;
mod normalize;
mod segment;
mod unigram;
mod window;

pub use encode::{EncodedDocument, METASPACE, SpecialTokens, SubwordEncoder, Token};
pub use error::TokenizerError;
pub use normalize::{
    AlignedPiece, DEFAULT_ALEF_MAQSURA_TO_YA, DEFAULT_ASCII_DIGITS, DEFAULT_NBSP_TO_SPACE,
    DEFAULT_NFKC, DEFAULT_REMOVE_TASHKEEL, DEFAULT_REMOVE_TATWEEL, DEFAULT_STRIP_CONTROLS,
    DEFAULT_TA_MARBUTA_TO_HA, DEFAULT_UNIFY_ALEF, Normalized, NormalizerConfig, TATWEEL,
    is_control, is_tashkeel,
};
pub use segment::{SENTENCE_ENDERS, is_space, segments, words};
pub use unigram::{CompactUnigram, UnigramError, UnigramTokenizer, load_unigram};
pub use window::{Window, windows};
