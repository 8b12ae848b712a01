//! Subword encoding of whole documents with spans in the original text.
//!
//! [`SubwordEncoder::encode`] normalises a document with our
//! [`NormalizerConfig`], encodes the normalised text with a Hugging Face
//! tokenizer (without special tokens, with character offsets: `encode`
//! would give bytes), and maps every token back to the original
//! characters through the normaliser's alignment. Spans never cover the
//! `▁`/space a token carries; a token that is only `▁` gets an empty span at
//! the start of the word that follows it. Nothing is truncated.

use std::collections::HashMap;
use std::path::Path;

use arabtag_records::Span;
use tokenizers::models::ModelWrapper;
use tokenizers::{AddedToken, Encoding, Model, Token as HfToken, Tokenizer, TokenizerImpl};

use crate::error::TokenizerError;
use crate::normalize::{Normalized, NormalizerConfig};
use crate::segment::{is_space, words};
use crate::unigram::{UnigramTokenizer, load_unigram};

/// The SentencePiece word-boundary mark.
pub const METASPACE: char = '\u{2581}';

/// Names tried, in order, for the padding token when the tokenizer sets no
/// padding.
const PAD_NAMES: [&str; 3] = ["<pad>", "[PAD]", "<|pad|>"];

/// The special tokens a model expects around each window.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpecialTokens {
    /// Ids the post-processor puts before a single sequence (`<s>` / `[CLS]`).
    pub prefix: Vec<u32>,
    /// Ids the post-processor puts after a single sequence (`</s>` / `[SEP]`).
    pub suffix: Vec<u32>,
    /// The padding id: the tokenizer's padding setting, else an added token
    /// named `<pad>`, `[PAD]` or `<|pad|>`.
    pub pad: Option<u32>,
    /// The model's unknown token.
    pub unk: Option<u32>,
}

impl SpecialTokens {
    /// CLS / BOS: the first prefix token.
    pub fn bos(&self) -> Option<u32> {
        self.prefix.first().copied()
    }

    /// SEP / EOS: the last suffix token.
    pub fn eos(&self) -> Option<u32> {
        self.suffix.last().copied()
    }
}

/// One subword token of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token {
    /// The vocabulary id.
    pub id: u32,
    /// Original characters, never starting or ending with white space. Empty
    /// for a bare `▁` token (at the start of the following word) and for a
    /// token that shares a single original character with the token before
    /// it (a ligature cut in two, e.g. `ﻻ` read as `ل` + `ا`), placed at the
    /// end of that token's span. Spans are in order and never overlap.
    pub span: Span,
    /// Index into [`EncodedDocument::words`] of the word the token belongs
    /// to; `None` only for a bare `▁` after the last word.
    pub word: Option<usize>,
}

/// A document's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedDocument {
    /// Tokens in order, without special tokens.
    pub tokens: Vec<Token>,
    /// The white-space-separated words of the original text.
    pub words: Vec<Span>,
}

impl EncodedDocument {
    /// The token ids in order.
    pub fn ids(&self) -> Vec<u32> {
        self.tokens.iter().map(|t| t.id).collect()
    }
}

/// A Hugging Face tokenizer behind our normaliser.
#[derive(Debug, Clone)]
pub struct SubwordEncoder {
    tokenizer: Pipeline,
    normalizer: NormalizerConfig,
    special: SpecialTokens,
}

/// The `tokenizers` pipeline: with its own model, or with a
/// [`CompactUnigram`](crate::CompactUnigram) for SentencePiece vocabularies.
#[derive(Debug, Clone)]
enum Pipeline {
    Hf(Box<Tokenizer>),
    Unigram(Box<UnigramTokenizer>),
}

/// `$body` with `$t` bound to the pipeline's tokenizer, whichever it is.
macro_rules! with_tokenizer {
    ($pipeline:expr, $t:ident => $body:expr) => {
        match $pipeline {
            Pipeline::Hf($t) => $body,
            Pipeline::Unigram($t) => $body,
        }
    };
}

impl SubwordEncoder {
    /// Loads a `tokenizer.json`. A Unigram (SentencePiece) model is kept in
    /// a [`CompactUnigram`](crate::CompactUnigram) (same tokens; for e5,
    /// `arabtag tag` on one sentence went from 560 to 330 MB and 0.8 to
    /// 0.5 s with it); any other model is `tokenizers`'.
    pub fn from_file(
        path: impl AsRef<Path>,
        normalizer: NormalizerConfig,
    ) -> Result<Self, TokenizerError> {
        let path = path.as_ref();
        let load = |source| TokenizerError::Load {
            path: path.to_owned(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(|e| load(e.into()))?;
        let pipeline = match load_unigram(&text) {
            Some(tokenizer) => Pipeline::Unigram(Box::new(tokenizer.map_err(load)?)),
            None => Pipeline::Hf(Box::new(text.parse::<Tokenizer>().map_err(load)?)),
        };
        Self::setup(pipeline, normalizer)
    }

    /// Wraps a tokenizer. Its truncation and padding are switched off: a
    /// document is encoded whole, and windows are cut by [`crate::windows`].
    pub fn new(tokenizer: Tokenizer, normalizer: NormalizerConfig) -> Result<Self, TokenizerError> {
        Self::setup(Pipeline::Hf(Box::new(tokenizer)), normalizer)
    }

    fn setup(
        mut tokenizer: Pipeline,
        normalizer: NormalizerConfig,
    ) -> Result<Self, TokenizerError> {
        with_tokenizer!(&mut tokenizer, t => t
        .with_truncation(None)
        .map(|_| ())
        .map_err(|source| TokenizerError::Configure {
            what: "switching truncation off",
            source,
        }))?;
        let pad = with_tokenizer!(&tokenizer, t => t.get_padding().map(|p| p.pad_id).or_else(|| {
            PAD_NAMES.iter().find_map(|name| t.token_to_id(name))
        }));
        with_tokenizer!(&mut tokenizer, t => {
            t.with_padding(None);
        });
        let (prefix, suffix) = with_tokenizer!(&tokenizer, t => wrapping(t))?;
        let unk = match &tokenizer {
            Pipeline::Hf(t) => unk_id(t),
            Pipeline::Unigram(t) => t.get_model().unk_id(),
        };
        let special = SpecialTokens {
            prefix,
            suffix,
            pad,
            unk,
        };
        Ok(Self {
            tokenizer,
            normalizer,
            special,
        })
    }

    /// The normaliser that runs before the tokenizer.
    pub fn normalizer(&self) -> &NormalizerConfig {
        &self.normalizer
    }

    /// The special tokens for wrapping windows.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    /// `text` as the tokenizer alone encodes it (no normaliser of ours, no
    /// special tokens), offsets in characters.
    pub fn encode_raw(&self, text: &str) -> Result<Encoding, tokenizers::Error> {
        with_tokenizer!(&self.tokenizer, t => t.encode_char_offsets(text, false))
    }

    /// The ids of a pair of texts with the special tokens, as an NLI model
    /// reads them.
    pub fn encode_pair(&self, first: &str, second: &str) -> Result<Vec<u32>, TokenizerError> {
        let encoding = with_tokenizer!(&self.tokenizer, t => t.encode((first, second), true))
            .map_err(|source| TokenizerError::EncodePair { source })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of vocabulary id `id`.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        with_tokenizer!(&self.tokenizer, t => t.id_to_token(id))
    }

    /// The tokenizer's added tokens (specials among them), by id.
    pub fn added_tokens(&self) -> Vec<(u32, AddedToken)> {
        let mut out: Vec<(u32, AddedToken)> = with_tokenizer!(&self.tokenizer, t => t.get_added_tokens_decoder().into_iter().collect());
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// Every whole-word piece (`▁form`, without the mark) of a SentencePiece
    /// vocabulary with its unigram score; for WordPiece, every piece that is
    /// no `##` continuation, scored 0 (no frequencies are known); nothing for
    /// other models.
    pub fn whole_word_pieces(&self) -> HashMap<String, f64> {
        let scored = |pieces: &mut dyn Iterator<Item = &(String, f64)>| {
            pieces
                .filter_map(|(piece, score)| {
                    Some((piece.strip_prefix(METASPACE)?.to_string(), *score))
                })
                .collect()
        };
        match &self.tokenizer {
            Pipeline::Unigram(t) => scored(&mut t.get_model().pieces().iter()),
            Pipeline::Hf(t) => match t.get_model() {
                ModelWrapper::Unigram(model) => scored(&mut model.iter()),
                ModelWrapper::WordPiece(model) => model
                    .get_vocab()
                    .into_keys()
                    .filter(|piece| !piece.starts_with("##"))
                    .map(|piece| (piece, 0.0))
                    .collect(),
                _ => HashMap::new(),
            },
        }
    }

    /// Encodes a whole document; spans are characters of `text`.
    pub fn encode(&self, text: &str) -> Result<EncodedDocument, TokenizerError> {
        let normalized = self.normalizer.normalize(text);
        let encoding =
            self.encode_raw(normalized.text())
                .map_err(|source| TokenizerError::Encode {
                    chars: normalized.original_len(),
                    source,
                })?;
        align(text, &normalized, &encoding)
    }
}

/// The ids the post-processor puts before and after one sequence.
fn wrapping<M, N, PT, PP, D>(
    tokenizer: &TokenizerImpl<M, N, PT, PP, D>,
) -> Result<(Vec<u32>, Vec<u32>), TokenizerError>
where
    M: Model,
    N: tokenizers::Normalizer,
    PT: tokenizers::PreTokenizer,
    PP: tokenizers::PostProcessor,
    D: tokenizers::Decoder,
{
    let probe = Encoding::from_tokens(vec![HfToken::new(0, String::new(), (0, 0))], 0);
    let wrapped = tokenizer
        .post_process(probe, None, true)
        .map_err(|source| TokenizerError::Configure {
            what: "reading the special tokens of the post-processor",
            source,
        })?;
    let ids = wrapped.get_ids();
    let mask = wrapped.get_special_tokens_mask();
    let content = mask.iter().position(|&m| m == 0).unwrap_or(ids.len());
    let prefix = ids[..content].to_vec();
    let suffix = ids.get(content + 1..).unwrap_or_default().to_vec();
    Ok((prefix, suffix))
}

/// A private-use character no vocabulary has a piece for.
const UNSEEN: &str = "\u{10fffd}";

/// The model's unknown-token id.
fn unk_id(tokenizer: &Tokenizer) -> Option<u32> {
    match tokenizer.get_model() {
        ModelWrapper::BPE(m) => m.get_unk_token().as_ref().and_then(|t| m.token_to_id(t)),
        ModelWrapper::WordPiece(m) => m.token_to_id(&m.unk_token),
        ModelWrapper::WordLevel(m) => m.token_to_id(&m.unk_token),
        // The id a character outside every piece gets (the model keeps its
        // `unk_id` private; serialising the 250k-piece model to read it cost
        // a tenth of a second at every start).
        ModelWrapper::Unigram(m) if !m.byte_fallback() => {
            match tokenizers::Model::tokenize(m, UNSEEN).ok()?.as_slice() {
                [token] => Some(token.id),
                _ => None,
            }
        }
        ModelWrapper::Unigram(_) => None,
    }
}

/// Whether a token's text is only word-boundary marks or white space.
fn is_bare(piece: &str) -> bool {
    piece.chars().all(|c| c == METASPACE || is_space(c))
}

/// Maps the tokens of `encoding` (character offsets in the normalised text)
/// to spans of the original `text`.
fn align(
    text: &str,
    normalized: &Normalized,
    encoding: &Encoding,
) -> Result<EncodedDocument, TokenizerError> {
    let chars: Vec<char> = text.chars().collect();
    let words = words(text);
    // Word of every original character (None for white space).
    let mut word_of = vec![None; chars.len()];
    for (w, span) in words.iter().enumerate() {
        word_of[span.start..span.end].fill(Some(w));
    }
    // An empty span at `pos`, or, when `pos` is not inside a word, at the
    // start of the next word (the text's end when there is none).
    let word_start = |pos: usize| match word_of.get(pos).copied().flatten() {
        Some(_) => pos,
        None => {
            let next = words.partition_point(|w| w.start < pos);
            words.get(next).map_or(chars.len(), |w| w.start)
        }
    };

    let mut tokens = Vec::with_capacity(encoding.len());
    let mut cursor = 0;
    let pieces = encoding.get_tokens();
    for (index, (&id, &(start, end))) in encoding
        .get_ids()
        .iter()
        .zip(encoding.get_offsets())
        .enumerate()
    {
        let mapped = normalized.to_original(Span::new(start, end)).ok_or(
            TokenizerError::OffsetOutOfRange {
                index,
                start,
                end,
                len: normalized.len(),
            },
        )?;
        let bare = pieces.get(index).is_some_and(|p| is_bare(p));
        let trimmed = trim(&chars, mapped);
        let word_at = |pos: usize| word_of.get(pos).copied().flatten();
        let (span, word) = if bare || trimmed.is_empty() {
            let pos = word_start(mapped.start.max(cursor));
            (Span::new(pos, pos), word_at(pos))
        } else if trimmed.start < cursor {
            // Shares characters with the previous token: keep the rest.
            let rest = trim(&chars, Span::new(cursor, trimmed.end.max(cursor)));
            if rest.is_empty() {
                let word = tokens.last().and_then(|t: &Token| t.word);
                (Span::new(cursor, cursor), word)
            } else {
                (rest, word_at(rest.start))
            }
        } else {
            (trimmed, word_at(trimmed.start))
        };
        cursor = span.end;
        tokens.push(Token { id, span, word });
    }
    Ok(EncodedDocument { tokens, words })
}

/// `span` without white space at either end; empty at its start when only
/// white space is in it.
fn trim(chars: &[char], span: Span) -> Span {
    let inner = &chars[span.start..span.end];
    match inner.iter().position(|&c| !is_space(c)) {
        None => Span::new(span.start, span.start),
        Some(first) => {
            let last = inner.iter().rposition(|&c| !is_space(c)).unwrap_or(first);
            Span::new(span.start + first, span.start + last + 1)
        }
    }
}
