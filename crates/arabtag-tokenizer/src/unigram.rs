//! A compact Unigram (SentencePiece) model for the `tokenizers` pipeline.
//!
//! `tokenizers`' own `Unigram` keeps its pieces in a byte trie whose every
//! node owns a hash map: for e5's 250,002 pieces that is about 240 MB of
//! memory and 0.4 s of building at every start, most of what `arabtag tag`
//! spent before its first record. [`CompactUnigram`] keeps the same pieces
//! in a trie of four flat arrays (first child, next sibling, byte, piece;
//! about 13 bytes a node, a direct table under the root) built in one pass
//! over the pieces sorted by their bytes, and encodes exactly as
//! `tokenizers` does (its `encode_optimized`: best-scoring path, ties to the
//! first found, unknown characters scored `min − 10` and fused): the tests
//! compare both on Arabic and mixed text, id for id and offset for offset.
//! It plugs into `tokenizers::TokenizerImpl` as its model, so the
//! normaliser, pre-tokenizer, post-processor and added tokens are
//! `tokenizers`' own, read from the same `tokenizer.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tokenizers::models::unigram::UnigramTrainer;
use tokenizers::{
    AddedToken, DecoderWrapper, Model, NormalizerWrapper, PostProcessorWrapper,
    PreTokenizerWrapper, Token, TokenizerImpl,
};

/// The tokenizer with a [`CompactUnigram`] model.
pub type UnigramTokenizer = TokenizerImpl<
    CompactUnigram,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// No piece at this node / no such node.
const NONE: u32 = u32::MAX;

/// What `tokenizers` subtracts from the lowest piece score to score an
/// unknown character (`K_UNK_PENALTY`).
const UNK_PENALTY: f64 = 10.0;

/// Unigram pieces with their scores, searchable by common prefix.
#[derive(Clone)]
pub struct CompactUnigram {
    /// `(piece, score)` in id order.
    pieces: Vec<(String, f64)>,
    /// Child of the root for each first byte.
    root: [u32; 256],
    first_child: Vec<u32>,
    next_sibling: Vec<u32>,
    byte: Vec<u8>,
    /// The piece id ending at each node (the last of equal pieces, as a map
    /// from piece to id keeps it).
    piece: Vec<u32>,
    min_score: f64,
    unk_id: Option<u32>,
}

impl std::fmt::Debug for CompactUnigram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactUnigram")
            .field("pieces", &self.pieces.len())
            .field("nodes", &self.piece.len())
            .field("unk_id", &self.unk_id)
            .finish()
    }
}

/// Why a vocabulary cannot make a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnigramError {
    #[error("the Unigram vocabulary is empty")]
    Empty,
    #[error("unk_id {0} is not in the vocabulary")]
    UnkOutOfRange(usize),
    #[error("the Unigram vocabulary has more than 2^32 - 1 pieces")]
    TooLarge,
    #[error("no piece covers a character and the model has no unk_id")]
    MissingUnk,
}

impl CompactUnigram {
    /// The model over `pieces` (in id order) with the unknown piece `unk_id`.
    pub fn new(pieces: Vec<(String, f64)>, unk_id: Option<usize>) -> Result<Self, UnigramError> {
        if pieces.is_empty() {
            return Err(UnigramError::Empty);
        }
        if pieces.len() >= NONE as usize {
            return Err(UnigramError::TooLarge);
        }
        let unk_id = match unk_id {
            Some(id) if id >= pieces.len() => return Err(UnigramError::UnkOutOfRange(id)),
            Some(id) => Some(id as u32),
            None => None,
        };
        let min_score = pieces.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        // By bytes, equal pieces in id order (so the last one wins below):
        // (bytes, id) pairs sorted unstably, the order a stable sort by bytes
        // gives, with each comparison reading its pair instead of looking the
        // piece up (the sort of 250k pieces was the tokenizer's slowest step).
        let mut keyed: Vec<(&[u8], u32)> = pieces
            .iter()
            .enumerate()
            .map(|(id, (piece, _))| (piece.as_bytes(), id as u32))
            .collect();
        keyed.sort_unstable();
        let order: Vec<u32> = keyed.into_iter().map(|(_, id)| id).collect();
        let mut model = Self {
            pieces,
            root: [NONE; 256],
            first_child: Vec::new(),
            next_sibling: Vec::new(),
            byte: Vec::new(),
            piece: Vec::new(),
            min_score,
            unk_id,
        };
        // `path[d]`: the node for the first d+1 bytes of the previous piece;
        // `last[d]`: the last child made under `path[d]`.
        let mut path: Vec<u32> = Vec::new();
        let mut last: Vec<u32> = Vec::new();
        let mut previous: &[u8] = &[];
        for &id in &order {
            let bytes = model.pieces[id as usize].0.as_bytes();
            if bytes.is_empty() {
                continue;
            }
            let common = bytes
                .iter()
                .zip(previous)
                .take_while(|(a, b)| a == b)
                .count();
            path.truncate(common);
            last.truncate(common);
            for depth in common..bytes.len() {
                let node = model.byte.len() as u32;
                model.first_child.push(NONE);
                model.next_sibling.push(NONE);
                model.byte.push(bytes[depth]);
                model.piece.push(NONE);
                if depth == 0 {
                    model.root[bytes[0] as usize] = node;
                } else {
                    let parent = path[depth - 1] as usize;
                    match last.get(depth - 1).copied() {
                        // Sorted input: a new child comes after its siblings.
                        Some(sibling) if sibling != NONE => {
                            model.next_sibling[sibling as usize] = node;
                        }
                        _ => model.first_child[parent] = node,
                    }
                    last[depth - 1] = node;
                }
                path.push(node);
                last.push(NONE);
            }
            if let Some(&end) = path.get(bytes.len() - 1) {
                model.piece[end as usize] = id;
            }
            previous = bytes;
        }
        Ok(model)
    }

    /// `(piece, score)` in id order.
    pub fn pieces(&self) -> &[(String, f64)] {
        &self.pieces
    }

    /// The unknown piece's id.
    pub fn unk_id(&self) -> Option<u32> {
        self.unk_id
    }

    fn child(&self, node: u32, b: u8) -> u32 {
        if node == NONE {
            return self.root[b as usize];
        }
        let mut c = self.first_child[node as usize];
        while c != NONE {
            let cb = self.byte[c as usize];
            if cb == b {
                return c;
            }
            if cb > b {
                return NONE;
            }
            c = self.next_sibling[c as usize];
        }
        NONE
    }

    /// Every piece that starts `bytes`, shortest first: `(length, id)`.
    fn prefixes<'a>(&'a self, bytes: &'a [u8]) -> impl Iterator<Item = (usize, u32)> + 'a {
        let mut node = NONE;
        bytes
            .iter()
            .enumerate()
            .map_while(move |(i, &b)| {
                node = self.child(node, b);
                (node != NONE).then(|| (i + 1, self.piece[node as usize]))
            })
            .filter(|&(_, id)| id != NONE)
    }

    /// The id of exactly `piece`.
    fn find(&self, piece: &str) -> Option<u32> {
        let mut node = NONE;
        for &b in piece.as_bytes() {
            node = self.child(node, b);
            if node == NONE {
                return None;
            }
        }
        (node != NONE && self.piece[node as usize] != NONE).then(|| self.piece[node as usize])
    }

    /// The best segmentation of `sentence`: `(start, end, id)` byte ranges,
    /// runs of unknown characters fused into one unknown token.
    fn segment(&self, sentence: &str) -> Result<Vec<(usize, usize, u32)>, UnigramError> {
        #[derive(Clone, Copy)]
        struct Best {
            id: u32,
            score: f64,
            from: usize,
        }
        let bytes = sentence.as_bytes();
        let size = bytes.len();
        let unk_score = self.min_score - UNK_PENALTY;
        let mut best: Vec<Option<Best>> = vec![None; size + 1];
        best[0] = Some(Best {
            id: NONE,
            score: 0.0,
            from: 0,
        });
        let offer = |best: &mut Vec<Option<Best>>, at: usize, candidate: Best| match best[at] {
            Some(b) if candidate.score <= b.score => {}
            _ => best[at] = Some(candidate),
        };
        let mut start = 0;
        while start < size {
            let here = best[start].map_or(0.0, |b| b.score);
            let char_len = sentence[start..].chars().next().map_or(1, char::len_utf8);
            let mut single = false;
            for (len, id) in self.prefixes(&bytes[start..]) {
                let candidate = Best {
                    id,
                    score: here + self.pieces[id as usize].1,
                    from: start,
                };
                offer(&mut best, start + len, candidate);
                single |= len == char_len;
            }
            if !single {
                let unk = self.unk_id.ok_or(UnigramError::MissingUnk)?;
                let candidate = Best {
                    id: unk,
                    score: here + unk_score,
                    from: start,
                };
                offer(&mut best, start + char_len, candidate);
            }
            start += char_len;
        }
        let mut out: Vec<(usize, usize, u32)> = Vec::new();
        let mut end = size;
        while end > 0 {
            let Some(node) = best[end] else {
                break;
            };
            match out.last_mut() {
                Some(next) if Some(node.id) == self.unk_id && Some(next.2) == self.unk_id => {
                    next.0 = node.from;
                }
                _ => out.push((node.from, end, node.id)),
            }
            end = node.from;
        }
        out.reverse();
        Ok(out)
    }
}

impl Model for CompactUnigram {
    type Trainer = UnigramTrainer;

    fn tokenize(&self, sentence: &str) -> tokenizers::Result<Vec<Token>> {
        let spans = self.segment(sentence)?;
        Ok(spans
            .into_iter()
            .map(|(start, end, id)| {
                let value = &sentence[start..end];
                // A piece's id is the id its text maps to (the last of equal
                // pieces); fused unknown runs keep the unknown id.
                let id = if Some(id) == self.unk_id {
                    self.find(value).unwrap_or(id)
                } else {
                    id
                };
                Token::new(id, value.to_owned(), (start, end))
            })
            .collect())
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.find(token)
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        self.pieces.get(id as usize).map(|p| p.0.clone())
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        self.pieces
            .iter()
            .enumerate()
            .map(|(id, (piece, _))| (piece.clone(), id as u32))
            .collect()
    }

    fn get_vocab_size(&self) -> usize {
        self.pieces.len()
    }

    fn save(&self, folder: &Path, prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        let name = match prefix {
            Some(p) => format!("{p}-unigram.json"),
            None => "unigram.json".to_owned(),
        };
        let path = folder.join(name);
        let json = serde_json::json!({
            "type": "Unigram",
            "unk_id": self.unk_id,
            "vocab": self.pieces,
            "byte_fallback": false,
        });
        std::fs::write(&path, serde_json::to_vec(&json)?)?;
        Ok(vec![path])
    }

    fn get_trainer(&self) -> UnigramTrainer {
        UnigramTrainer::default()
    }
}

/// The parts of `tokenizer.json` read here; the pipeline's own parts are
/// handed to `tokenizers`.
#[derive(serde::Deserialize)]
struct TokenizerFile {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    added_tokens: Vec<AddedTokenEntry>,
    #[serde(default)]
    padding: Option<tokenizers::PaddingParams>,
    #[serde(default)]
    normalizer: Option<NormalizerWrapper>,
    #[serde(default)]
    pre_tokenizer: Option<PreTokenizerWrapper>,
    #[serde(default)]
    post_processor: Option<PostProcessorWrapper>,
    #[serde(default)]
    decoder: Option<DecoderWrapper>,
    model: UnigramFile,
}

#[derive(serde::Deserialize)]
struct AddedTokenEntry {
    content: String,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
    #[serde(default = "yes")]
    normalized: bool,
    #[serde(default)]
    special: bool,
}

fn yes() -> bool {
    true
}

#[derive(serde::Deserialize)]
struct UnigramFile {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    unk_id: Option<usize>,
    vocab: Vec<(String, f64)>,
    #[serde(default)]
    byte_fallback: bool,
}

/// `tokenizer.json` text with a Unigram model (no byte fallback) as a
/// tokenizer with a [`CompactUnigram`]; `None` for any other model (or a
/// file this reading does not take), which `tokenizers` loads itself.
/// Truncation is not read (the encoder switches it off).
pub fn load_unigram(json: &str) -> Option<tokenizers::Result<UnigramTokenizer>> {
    let file: TokenizerFile = match serde_json::from_str(json) {
        Ok(file) => file,
        // Not ours to judge: `tokenizers` gives the error or reads it.
        Err(_) => return None,
    };
    if file.model.kind != "Unigram" || file.model.byte_fallback {
        return None;
    }
    if file.version.as_deref().is_some_and(|v| v != "1.0") {
        return None;
    }
    Some((|| {
        let model = CompactUnigram::new(file.model.vocab, file.model.unk_id)?;
        let mut tokenizer = TokenizerImpl::new(model);
        tokenizer
            .with_normalizer(file.normalizer)
            .with_pre_tokenizer(file.pre_tokenizer)
            .with_post_processor(file.post_processor)
            .with_decoder(file.decoder)
            .with_padding(file.padding);
        let added: Vec<AddedToken> = file
            .added_tokens
            .into_iter()
            .map(|t| {
                AddedToken::from(t.content, t.special)
                    .single_word(t.single_word)
                    .lstrip(t.lstrip)
                    .rstrip(t.rstrip)
                    .normalized(t.normalized)
            })
            .collect();
        tokenizer.add_tokens(&added);
        Ok(tokenizer)
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(pieces: &[(&str, f64)], unk: Option<usize>) -> CompactUnigram {
        let pieces = pieces.iter().map(|(p, s)| ((*p).to_owned(), *s)).collect();
        CompactUnigram::new(pieces, unk).expect("a model")
    }

    fn tokens(m: &CompactUnigram, s: &str) -> Vec<(String, u32, (usize, usize))> {
        m.tokenize(s)
            .expect("tokenizes")
            .into_iter()
            .map(|t| (t.value, t.id, t.offsets))
            .collect()
    }

    #[test]
    fn best_path_with_fused_unknowns_as_tokenizers_documents_it() {
        // The example of `tokenizers::models::unigram::Unigram::encode`.
        let m = model(
            &[
                ("<unk>", 0.0),
                ("a", 0.0),
                ("b", 0.0),
                ("c", 0.0),
                ("d", 0.0),
                ("cd", 1.0),
                ("ab", 2.0),
                ("abc", 5.0),
                ("abcd", 10.0),
            ],
            Some(0),
        );
        let got = tokens(&m, "abcdacdxx");
        let want = [
            ("abcd", 8, (0, 4)),
            ("a", 1, (4, 5)),
            ("cd", 5, (5, 7)),
            ("xx", 0, (7, 9)),
        ];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0.as_str(), g.1, g.2), w);
        }
        assert!(tokens(&m, "").is_empty());
        assert_eq!(m.token_to_id("abc"), Some(7));
        assert_eq!(m.token_to_id("abcx"), None);
        assert_eq!(m.id_to_token(5).as_deref(), Some("cd"));
    }

    #[test]
    fn multibyte_text_equal_pieces_and_no_unk() {
        // A repeated piece maps to its last id, as a piece-to-id map keeps it.
        let m = model(
            &[
                ("<unk>", 0.0),
                ("سلا", -1.0),
                ("م", -2.0),
                ("سلام", -1.5),
                ("م", -2.0),
            ],
            Some(0),
        );
        let got = tokens(&m, "سلامم؟");
        assert_eq!(got[0], ("سلام".to_owned(), 3, (0, 8)));
        assert_eq!(got[1], ("م".to_owned(), 4, (8, 10)));
        assert_eq!(got[2], ("؟".to_owned(), 0, (10, 12)));
        let no_unk = model(&[("a", 0.0)], None);
        assert!(no_unk.tokenize("b").is_err());
        assert_eq!(
            CompactUnigram::new(Vec::new(), None).err(),
            Some(UnigramError::Empty)
        );
        assert_eq!(
            CompactUnigram::new(vec![("a".to_owned(), 0.0)], Some(1)).err(),
            Some(UnigramError::UnkOutOfRange(1))
        );
    }
}
