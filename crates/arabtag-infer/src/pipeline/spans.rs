//! Word-range entities to character spans of the original text: trimming
//! and the proclitic rule.
//!
//! A span runs from its first word's start to its last word's end; then
//! white space, punctuation (any Unicode `P*` category: `،` `«` `»` `“`
//! `”` brackets, dashes…), bidi/zero-width controls and other invisible
//! characters (format `Cf`, control `Cc`) are trimmed at both ends; then
//! the proclitic rule may move its start.
//!
//! # The proclitic rule
//! Models trained on ANERcorp tag whole clitic-attached words (`وإسرائيل`
//! is `B-LOC`), while the guideline's spans never include a proclitic. The
//! rule looks at the span's first word `w` (trimmed), in the model
//! normaliser's form (NFKC, tashkeel and tatweel removed; the letters as
//! written), and tries the candidate prefixes `p`, longest first:
//! a conjunction and a preposition or the future marker (`وب` `ول` `وك`
//! `وس` `فب` `فل` `فك` `فس`), then one of `و` `ف` `ب` `ل` `ك` `س`. The
//! remainder `r` is `w` without `p` (and without punctuation that `p` was
//! glued to, as in `و«روسيا`); it must keep at least two letters. `p` is
//! stripped when, for the first candidate in that order:
//!
//! 0. **veto** — never when the vocabulary knows `w` as a whole word and not
//!    `r` (`score(w).is_some() && score(r).is_none()`);
//! 1. **article** (a) — `r` starts with the article `ال` followed by at
//!    least two letters and `p` ends in `و` `ف` `ب` `ك` (`والقاهرة`,
//!    `بالعاصمة`, `وبالعاصمة`); or `p` ends in `ل` and `r` starts with `ل`:
//!    `ل` + `ال` is written `لل`, and the guideline starts the span after the
//!    first `ل` (`للاتحاد` → `لاتحاد`, `وللاتحاد` → `لاتحاد`). The future
//!    marker `س` never precedes the article (`سالزبورغ` stays);
//! 2. **vocabulary** (b) — `score(f)` is the unigram log-probability of `▁f`
//!    as a whole-word piece of the model's vocabulary (`None`: no piece);
//!    `r` is a piece and `w` is none (`بموسكو`: `▁موسكو` is a piece,
//!    `▁بموسكو` is not) or a piece at least ten times rarer (e5 learnt
//!    `▁وكندا`, far rarer than `▁كندا`), and `r` has at
//!    least four letters: a large vocabulary holds short fragments as words
//!    (e5 has `▁وتن`, which would cut the spelling `بوتن`);
//! 3. **names** (d) — with a names list (`ner.names`: the first words of
//!    the names of a training set, as the guideline spans them), `r` is on
//!    the list and `w` is not, and `r` has at least three letters
//!    (`وأنقرة`: `أنقرة` is a listed name, `وأنقرة` is none). A word that is
//!    itself on the list and whose remainder is not keeps its letter
//!    (`واشنطن`), as with the vocabulary's veto;
//! 4. **document** (c) — `r` stands alone as a word (punctuation trimmed,
//!    same normalised form) somewhere in the same document (`وأرمينيا`
//!    where the text also says `أرمينيا`).
//!
//! Beyond the names list, nothing lists names. Names that begin with a
//! clitic letter
//! (`واشنطن` `فلاديمير` `باكو` `لبنان` `كوريا` `بوتين`) keep it because no
//! evidence holds: their remainders (`اشنطن`, `لاديمير`, `اكو`, `بنان`,
//! `وريا`, `وتين`) are neither article forms, nor vocabulary words, nor words
//! of a news text. Known weakness: a transliterated name whose second and
//! third letters are `ال` after `و` `ف` `ب` `ك` (`كالينينغراد`, `فالداي`)
//! passes (a) unless the veto holds.
//!
//! The cut is made in the original text at the first character of `r`
//! (marks on the clitic letter go with it); when the clitic and `r` share one
//! original character (a lam-alef ligature `ﻻ`) nothing is stripped.

use std::collections::HashSet;
use std::ops::Range;

use arabtag_records::Span;
use arabtag_tokenizer::{NormalizerConfig, is_control, is_space, words};

use crate::pipeline::punct::{is_format, is_punctuation};

/// The proclitic letters of the guideline.
pub const PROCLITICS: [char; 6] = ['و', 'ف', 'ب', 'ل', 'ك', 'س'];

/// Conjunctions that can come before another proclitic.
const CONJUNCTIONS: [char; 2] = ['و', 'ف'];

/// Prepositions and the future marker that can follow a conjunction.
const SECOND: [char; 4] = ['ب', 'ل', 'ك', 'س'];

/// Fewest letters a remainder may have.
const MIN_REMAINDER: usize = 2;

/// Fewest letters a remainder needs for the vocabulary evidence (b).
const MIN_VOCABULARY_REMAINDER: usize = 4;

/// How much likelier (log-probability, nats) the remainder must be than the
/// whole word when both are vocabulary pieces: ln 10, ten times as frequent.
const VOCABULARY_MARGIN: f64 = std::f64::consts::LN_10;

/// Fewest letters a remainder needs for the names evidence (d).
const MIN_NAME_REMAINDER: usize = 3;

/// Which evidence the proclitic rule may use (see the module documentation).
#[derive(Clone, Copy)]
pub struct Proclitics<'a> {
    /// Apply the rule at all; `false` keeps the model's spans.
    pub strip: bool,
    /// Evidence (a): the article after the clitic.
    pub article: bool,
    /// Evidence (c): the remainder stands alone in the document.
    pub document: bool,
    /// Evidence (b) and the veto: the log-probability of `▁` + a form as a
    /// whole-word piece of the model's vocabulary (the SentencePiece unigram
    /// score), `None` when it is no piece. `None` here: neither is used.
    pub vocabulary: Option<&'a VocabularyScore<'a>>,
    /// Evidence (d) and its veto: the names list; `None`: neither is used.
    pub names: Option<&'a NameForms>,
}

/// The unigram log-probability of `▁` + a form as a whole-word vocabulary
/// piece, `None` when it is no piece.
pub type VocabularyScore<'a> = dyn Fn(&str) -> Option<f64> + Send + Sync + 'a;

impl Default for Proclitics<'_> {
    /// Every evidence but the vocabulary, which the caller supplies.
    fn default() -> Self {
        Self {
            strip: true,
            article: true,
            document: true,
            vocabulary: None,
            names: None,
        }
    }
}

impl std::fmt::Debug for Proclitics<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proclitics")
            .field("strip", &self.strip)
            .field("article", &self.article)
            .field("document", &self.document)
            .field("vocabulary", &self.vocabulary.map(|_| "score(..)"))
            .field("names", &self.names.map(NameForms::len))
            .finish()
    }
}

/// Why a proclitic was stripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    Article,
    Vocabulary,
    Names,
    Document,
}

/// Whether an entity's span may not begin or end with `c`: white space,
/// punctuation, a bidi/zero-width control, any other invisible format
/// character (`Cf`: the soft hyphen, the word joiner…) or a C0/C1 control
/// character (NUL, BEL…).
pub fn is_trimmed(c: char) -> bool {
    is_space(c) || is_punctuation(c) || is_control(c) || is_format(c) || c.is_control()
}

/// `span` without [`is_trimmed`] characters at either end, or `None` when
/// nothing is left (or the span is out of bounds).
pub fn trim(chars: &[char], span: Span) -> Option<Span> {
    let inner = chars.get(span.start..span.end)?;
    let first = inner.iter().position(|&c| !is_trimmed(c))?;
    let last = inner.iter().rposition(|&c| !is_trimmed(c))?;
    Some(Span::new(span.start + first, span.start + last + 1))
}

/// The standalone words of a document in normalised form, for evidence (c).
#[derive(Debug, Clone, Default)]
pub struct DocumentForms {
    forms: HashSet<String>,
}

impl DocumentForms {
    /// Every white-space word of `text`, trimmed, normalised by `normalizer`.
    pub fn new(text: &str, normalizer: &NormalizerConfig) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let normalized = normalizer.normalize(text);
        let nchars: Vec<char> = normalized.text().chars().collect();
        let forms = words(text)
            .into_iter()
            .filter_map(|w| trim(&chars, w))
            .filter_map(|w| normalized.to_normalized(w))
            .filter_map(|n| nchars.get(n.start..n.end))
            .map(|f| f.iter().collect::<String>())
            .filter(|f| !f.is_empty())
            .collect();
        Self { forms }
    }

    /// Whether `form` (normalised) is a word of the document.
    pub fn contains(&self, form: &str) -> bool {
        self.forms.contains(form)
    }
}

/// A names list in normalised form, for evidence (d).
#[derive(Debug, Clone, Default)]
pub struct NameForms {
    forms: HashSet<String>,
}

impl NameForms {
    /// One name's first word a line (blank lines and lines starting with
    /// `#` skipped; punctuation at either end trimmed), normalised by
    /// `normalizer`.
    pub fn from_lines(text: &str, normalizer: &NormalizerConfig) -> Self {
        let forms = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| l.trim_matches(is_trimmed))
            .filter(|l| !l.is_empty())
            .map(|l| normalizer.normalize(l).text().to_owned())
            .filter(|f| !f.is_empty())
            .collect();
        Self { forms }
    }

    /// Whether `form` (normalised) is on the list.
    pub fn contains(&self, form: &str) -> bool {
        self.forms.contains(form)
    }

    /// How many forms the list holds.
    pub fn len(&self) -> usize {
        self.forms.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }
}

/// Candidate proclitics of a normalised word, longest first: their lengths.
fn candidates(word: &[char]) -> Vec<usize> {
    let mut out = Vec::with_capacity(2);
    if let [a, b, ..] = word
        && CONJUNCTIONS.contains(a)
        && SECOND.contains(b)
    {
        out.push(2);
    }
    if word.first().is_some_and(|c| PROCLITICS.contains(c)) {
        out.push(1);
    }
    out
}

/// Evidence (a) for stripping `clitic` from a word whose remainder is `rest`.
fn article(clitic: &[char], rest: &[char]) -> bool {
    match clitic.last() {
        Some('ل') => rest.first() == Some(&'ل') && rest.len() > MIN_REMAINDER,
        Some('و' | 'ف' | 'ب' | 'ك') => {
            rest.starts_with(&['ا', 'ل']) && rest.len() >= 2 + MIN_REMAINDER
        }
        _ => false,
    }
}

/// How many leading characters of `word` (original text: one word, trimmed)
/// are a proclitic to strip, and why; `None` when nothing is stripped.
pub fn proclitic(
    word: &str,
    rule: &Proclitics<'_>,
    normalizer: &NormalizerConfig,
    forms: &DocumentForms,
) -> Option<(usize, Evidence)> {
    if !rule.strip {
        return None;
    }
    let normalized = normalizer.normalize(word);
    let n: Vec<char> = normalized.text().chars().collect();
    let whole: String = n.iter().collect();
    for k in candidates(&n) {
        // The remainder, without punctuation the clitic was glued to.
        let skip = n[k..].iter().take_while(|&&c| is_trimmed(c)).count();
        let rest = &n[k + skip..];
        let letters = rest.iter().filter(|c| c.is_alphanumeric()).count();
        if letters < MIN_REMAINDER {
            continue;
        }
        let r: String = rest.iter().collect();
        let score = |f: &str| rule.vocabulary.and_then(|v| v(f));
        let (whole_score, rest_score) = (score(&whole), score(&r));
        if whole_score.is_some() && rest_score.is_none() {
            continue;
        }
        let listed = |f: &str| rule.names.is_some_and(|names| names.contains(f));
        let (whole_listed, rest_listed) = (listed(&whole), listed(&r));
        if whole_listed && !rest_listed {
            continue;
        }
        // The remainder is a piece, and the whole word is none or a far
        // rarer one: a clitic the vocabulary happened to learn attached.
        let vocabulary = rest_score
            .is_some_and(|rest| whole_score.is_none_or(|whole| rest - whole >= VOCABULARY_MARGIN));
        let evidence = if rule.article && skip == 0 && article(&n[..k], rest) {
            Evidence::Article
        } else if letters >= MIN_VOCABULARY_REMAINDER && vocabulary {
            Evidence::Vocabulary
        } else if letters >= MIN_NAME_REMAINDER && rest_listed && !whole_listed {
            Evidence::Names
        } else if rule.document && forms.contains(&r) {
            Evidence::Document
        } else {
            continue;
        };
        // The cut: where the remainder's first character comes from, unless
        // it shares an original character with the clitic.
        let cut = normalized.to_original(Span::new(k + skip, k + skip + 1))?;
        let clitic = normalized.to_original(Span::new(k - 1, k))?;
        if cut.start < clitic.end || cut.start == 0 {
            return None;
        }
        return Some((cut.start, evidence));
    }
    None
}

/// Turns word-range entities of one document into character spans.
#[derive(Debug)]
pub struct SpanMaker<'a> {
    chars: Vec<char>,
    words: &'a [Span],
    normalizer: &'a NormalizerConfig,
    rule: &'a Proclitics<'a>,
    forms: DocumentForms,
}

impl<'a> SpanMaker<'a> {
    /// For `text`, whose white-space words are `words`.
    pub fn new(
        text: &str,
        words: &'a [Span],
        normalizer: &'a NormalizerConfig,
        rule: &'a Proclitics<'a>,
    ) -> Self {
        let forms = if rule.strip && rule.document {
            DocumentForms::new(text, normalizer)
        } else {
            DocumentForms::default()
        };
        Self {
            chars: text.chars().collect(),
            words,
            normalizer,
            rule,
            forms,
        }
    }

    /// The span of the words `range`: joined, trimmed, proclitic stripped;
    /// `None` when nothing is left or the range names no words.
    pub fn span(&self, range: Range<usize>) -> Option<Span> {
        let first = self.words.get(range.start)?;
        let last = self.words.get(range.end.checked_sub(1)?)?;
        let span = trim(&self.chars, Span::new(first.start, last.end))?;
        // The first word of the trimmed span, trimmed.
        let word_end = self.chars[span.start..span.end]
            .iter()
            .position(|&c| is_space(c))
            .map_or(span.end, |i| span.start + i);
        let Some(word) = trim(&self.chars, Span::new(span.start, word_end)) else {
            return Some(span);
        };
        let text: String = self.chars[word.start..word.end].iter().collect();
        match proclitic(&text, self.rule, self.normalizer, &self.forms) {
            Some((cut, _)) => trim(&self.chars, Span::new(word.start + cut, span.end)),
            None => Some(span),
        }
    }
}

#[cfg(test)]
#[path = "spans_tests.rs"]
mod tests;
