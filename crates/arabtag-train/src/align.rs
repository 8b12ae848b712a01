//! Label alignment: the words of a sentence joined by single spaces are
//! encoded whole; a word's label goes to the first subtoken whose span
//! starts inside the word (a bare `▁` token, whose span is empty at the
//! word's start, counts as that first subtoken). Other subtokens carry no
//! label (`None`, the `-100` of transformers' recipes).

use arabtag_tokenizer::SubwordEncoder;

use crate::TrainError;
use arabtag_infer::pipeline::LabelScheme;

/// One sentence of a training file: whitespace tokens and their tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedSentence {
    pub words: Vec<String>,
    pub tags: Vec<String>,
}

/// A sentence encoded for training.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlignedSentence {
    /// Content token ids (no special tokens).
    pub ids: Vec<u32>,
    /// Per token: the label id when it is a word's first subtoken.
    pub token_labels: Vec<Option<u32>>,
    /// Per word: the index of its first subtoken (`None` for a word the
    /// tokenizer gave no token, e.g. one made only of removed marks).
    pub first: Vec<Option<usize>>,
    /// Per word: its label id.
    pub labels: Vec<u32>,
}

/// The label set of the sentences: `O`, then `B-`/`I-` of every type in
/// alphabetical order (both prefixes for a type that occurs with either).
pub fn label_set(sentences: &[TaggedSentence]) -> Result<LabelScheme, TrainError> {
    let mut types = std::collections::BTreeSet::new();
    for s in sentences {
        for tag in &s.tags {
            if let Some(kind) = tag.strip_prefix("B-").or_else(|| tag.strip_prefix("I-")) {
                types.insert(kind.to_owned());
            }
        }
    }
    let names = std::iter::once("O".to_owned()).chain(
        types
            .iter()
            .flat_map(|t| [format!("B-{t}"), format!("I-{t}")]),
    );
    Ok(LabelScheme::new(names)?)
}

/// Encodes sentence number `index` (for messages) and aligns its labels.
pub fn align_sentence(
    encoder: &SubwordEncoder,
    scheme: &LabelScheme,
    index: usize,
    sentence: &TaggedSentence,
) -> Result<AlignedSentence, TrainError> {
    if sentence.words.len() != sentence.tags.len() {
        return Err(TrainError::TagCount {
            sentence: index,
            words: sentence.words.len(),
            tags: sentence.tags.len(),
        });
    }
    let labels = sentence
        .tags
        .iter()
        .map(|tag| {
            scheme
                .names()
                .iter()
                .position(|n| n == tag)
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| TrainError::UnknownTag {
                    sentence: index,
                    tag: tag.clone(),
                    labels: scheme.names().to_vec(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Character ranges of the words in the joined text.
    let mut ranges = Vec::with_capacity(sentence.words.len());
    let mut at = 0;
    for word in &sentence.words {
        let len = word.chars().count();
        ranges.push(at..at + len);
        at += len + 1;
    }
    let text = sentence.words.join(" ");
    let doc = encoder.encode(&text)?;
    let mut first = vec![None; sentence.words.len()];
    let mut token_labels = vec![None; doc.tokens.len()];
    let mut word = 0;
    for (t, token) in doc.tokens.iter().enumerate() {
        let start = token.span.start;
        while ranges.get(word).is_some_and(|r| r.end <= start) {
            word += 1;
        }
        let Some(range) = ranges.get(word) else { break };
        if range.contains(&start) && first[word].is_none() {
            first[word] = Some(t);
            token_labels[t] = Some(labels[word]);
        }
    }
    Ok(AlignedSentence {
        ids: doc.ids(),
        token_labels,
        first,
        labels,
    })
}
