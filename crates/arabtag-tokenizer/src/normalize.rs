//! Arabic normalisation that keeps an exact character alignment to the original.
//!
//! [`NormalizerConfig::normalize`] returns a [`Normalized`] text: the
//! normalised string and an alignment made of [`AlignedPiece`]s. The pieces
//! cut both texts into consecutive runs; each run of original characters
//! became the paired run of normalised characters:
//!
//! * most characters are their own piece, one character to one (`أ` → `ا`,
//!   `٣` → `3`, NBSP → space);
//! * a removed character (tashkeel, tatweel, a bidi control) is a piece whose
//!   normalised side is empty;
//! * an NFKC expansion (`ﻻ` → `لا`) is one original character paired with
//!   every character it produced;
//! * an NFKC composition (`ا` + U+0654 → `أ`) pairs several original
//!   characters with one.
//!
//! NFKC runs first (it can produce tashkeel, e.g. U+FE70 → space + fathatan),
//! then every other step maps one character to one or to none. Pieces are cut
//! only where normalising the two sides separately gives the same result as
//! normalising them together, so a slice of the original cut at piece
//! boundaries normalises to exactly the paired normalised slice.
//!
//! All offsets are characters (Unicode scalar values), half-open.

use std::iter;

use arabtag_records::Span;
use serde::{Deserialize, Serialize};
use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

use crate::segment::is_space;

/// Default of [`NormalizerConfig::nfkc`].
pub const DEFAULT_NFKC: bool = true;
/// Default of [`NormalizerConfig::remove_tashkeel`].
pub const DEFAULT_REMOVE_TASHKEEL: bool = true;
/// Default of [`NormalizerConfig::remove_tatweel`].
pub const DEFAULT_REMOVE_TATWEEL: bool = true;
/// Default of [`NormalizerConfig::strip_controls`].
pub const DEFAULT_STRIP_CONTROLS: bool = true;
/// Default of [`NormalizerConfig::nbsp_to_space`].
pub const DEFAULT_NBSP_TO_SPACE: bool = true;
/// Default of [`NormalizerConfig::ascii_digits`].
pub const DEFAULT_ASCII_DIGITS: bool = true;
/// Default of [`NormalizerConfig::unify_alef`].
pub const DEFAULT_UNIFY_ALEF: bool = false;
/// Default of [`NormalizerConfig::alef_maqsura_to_ya`].
pub const DEFAULT_ALEF_MAQSURA_TO_YA: bool = false;
/// Default of [`NormalizerConfig::ta_marbuta_to_ha`].
pub const DEFAULT_TA_MARBUTA_TO_HA: bool = false;

/// U+0640 ARABIC TATWEEL.
pub const TATWEEL: char = '\u{0640}';

/// Chunks longer than this many characters (a letter under a pile of
/// combining marks) are aligned as one piece instead of being searched for
/// finer cuts.
const MAX_FINE_CHUNK: usize = 16;

/// Which normalisation steps run. Every field can be left out of a TOML or
/// JSON model config; a missing field takes its default.
///
/// The default keeps letters as they are written and removes only what does
/// not change a word: NFKC, tashkeel, tatweel, bidi and zero-width controls,
/// NBSP and Arabic-Indic or Persian digits are normalised; the three letter
/// unifications (alef forms, alef maqsura, ta marbuta) are opt-in. Multilingual
/// encoders such as XLM-R and e5 were pretrained on text that keeps `أ`/`ا`,
/// `ى`/`ي` and `ة`/`ه` apart, so folding them moves the input away from what
/// the model saw and merges different words (`مدرسة`/`مدرسه`); switch them on
/// for a model trained on folded text. Digits map one to one, so folding them
/// costs nothing in offsets and gives the tokenizer the far more frequent
/// ASCII forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormalizerConfig {
    /// Unicode NFKC (runs first): presentation forms and the lam-alef
    /// ligatures expand, `ا` + U+0654 composes to `أ`.
    pub nfkc: bool,
    /// Remove tashkeel: U+064B–U+065F, U+0670 and the Quranic marks
    /// U+06D6–U+06ED.
    pub remove_tashkeel: bool,
    /// Remove tatweel (U+0640).
    pub remove_tatweel: bool,
    /// Remove bidi and zero-width controls: U+200B–U+200F, U+202A–U+202E,
    /// U+2066–U+2069, U+061C and U+FEFF.
    pub strip_controls: bool,
    /// Turn the no-break space (U+00A0) into a space.
    pub nbsp_to_space: bool,
    /// Turn Arabic-Indic (U+0660–U+0669) and Persian (U+06F0–U+06F9) digits
    /// into ASCII digits.
    pub ascii_digits: bool,
    /// Turn `أ` `إ` `آ` `ٱ` into `ا`.
    pub unify_alef: bool,
    /// Turn alef maqsura `ى` into ya `ي`.
    pub alef_maqsura_to_ya: bool,
    /// Turn ta marbuta `ة` into ha `ه`.
    pub ta_marbuta_to_ha: bool,
}

impl Default for NormalizerConfig {
    fn default() -> Self {
        Self {
            nfkc: DEFAULT_NFKC,
            remove_tashkeel: DEFAULT_REMOVE_TASHKEEL,
            remove_tatweel: DEFAULT_REMOVE_TATWEEL,
            strip_controls: DEFAULT_STRIP_CONTROLS,
            nbsp_to_space: DEFAULT_NBSP_TO_SPACE,
            ascii_digits: DEFAULT_ASCII_DIGITS,
            unify_alef: DEFAULT_UNIFY_ALEF,
            alef_maqsura_to_ya: DEFAULT_ALEF_MAQSURA_TO_YA,
            ta_marbuta_to_ha: DEFAULT_TA_MARBUTA_TO_HA,
        }
    }
}

/// What a character becomes after NFKC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep(char),
    /// A mark or tatweel: removed, and belongs to the letter it sits on.
    DropMark,
    /// A control: removed, and belongs to no word.
    DropControl,
}

/// Whether `c` is tashkeel as [`NormalizerConfig::remove_tashkeel`] defines it.
pub fn is_tashkeel(c: char) -> bool {
    matches!(c, '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{06D6}'..='\u{06ED}')
}

/// Whether `c` is a bidi or zero-width control as
/// [`NormalizerConfig::strip_controls`] defines it.
pub fn is_control(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{061C}'
            | '\u{FEFF}'
    )
}

impl NormalizerConfig {
    /// Every step off: normalising gives the text back unchanged.
    pub fn none() -> Self {
        Self {
            nfkc: false,
            remove_tashkeel: false,
            remove_tatweel: false,
            strip_controls: false,
            nbsp_to_space: false,
            ascii_digits: false,
            unify_alef: false,
            alef_maqsura_to_ya: false,
            ta_marbuta_to_ha: false,
        }
    }

    /// Every step on, the letter unifications included.
    pub fn all() -> Self {
        Self {
            nfkc: true,
            remove_tashkeel: true,
            remove_tatweel: true,
            strip_controls: true,
            nbsp_to_space: true,
            ascii_digits: true,
            unify_alef: true,
            alef_maqsura_to_ya: true,
            ta_marbuta_to_ha: true,
        }
    }

    /// The steps after NFKC, on one character.
    fn fate(&self, c: char) -> Fate {
        if self.strip_controls && is_control(c) {
            return Fate::DropControl;
        }
        if (self.remove_tashkeel && is_tashkeel(c)) || (self.remove_tatweel && c == TATWEEL) {
            return Fate::DropMark;
        }
        Fate::Keep(match c {
            'أ' | 'إ' | 'آ' | 'ٱ' if self.unify_alef => 'ا',
            'ى' if self.alef_maqsura_to_ya => 'ي',
            'ة' if self.ta_marbuta_to_ha => 'ه',
            '\u{0660}'..='\u{0669}' if self.ascii_digits => {
                char::from_digit(u32::from(c) - 0x0660, 10).unwrap_or(c)
            }
            '\u{06F0}'..='\u{06F9}' if self.ascii_digits => {
                char::from_digit(u32::from(c) - 0x06F0, 10).unwrap_or(c)
            }
            '\u{00A0}' if self.nbsp_to_space => ' ',
            _ => c,
        })
    }

    /// Normalises `text` and aligns the result with it.
    pub fn normalize(&self, text: &str) -> Normalized {
        let chars: Vec<char> = text.chars().collect();
        let mut builder = Builder::new(self, chars.len());
        if self.nfkc {
            let mut start = 0;
            for end in 1..=chars.len() {
                if end == chars.len() || starts_chunk(chars[end]) {
                    push_chunk(&mut builder, &chars[start..end]);
                    start = end;
                }
            }
        } else {
            for &c in &chars {
                builder.push(1, &[c]);
            }
        }
        builder.finish()
    }
}

/// A boundary before `c` never changes NFKC: `c` is a starter that cannot
/// compose with what precedes it (NFKC_QC=Yes, ccc=0).
fn starts_chunk(c: char) -> bool {
    canonical_combining_class(c) == 0 && is_nfkc_quick(iter::once(c)) == IsNormalized::Yes
}

fn nfkc(chars: &[char]) -> Vec<char> {
    chars.iter().copied().nfkc().collect()
}

/// Whether `run` normalises to `expected`.
fn normalizes_to(run: &[char], expected: &[char]) -> bool {
    if run == expected && is_nfkc_quick(run.iter().copied()) == IsNormalized::Yes {
        return true;
    }
    nfkc(run) == expected
}

/// Aligns one NFKC chunk (a starter and what may combine with it).
fn push_chunk(builder: &mut Builder<'_>, chunk: &[char]) {
    if let [c] = chunk
        && is_nfkc_quick(iter::once(*c)) == IsNormalized::Yes
    {
        builder.push(1, chunk);
        return;
    }
    for (len, out) in split_chunk(chunk) {
        builder.push(len, &out);
    }
}

/// Cuts a chunk into the finest pieces (original length, NFKC output) such
/// that every run of consecutive pieces normalises, on its own, to the
/// concatenation of their outputs. Falls back to one piece.
fn split_chunk(chunk: &[char]) -> Vec<(usize, Vec<char>)> {
    let full = nfkc(chunk);
    if chunk.len() == 1 || chunk.len() > MAX_FINE_CHUNK {
        return vec![(chunk.len(), full)];
    }
    let mut pieces: Vec<(usize, Vec<char>)> = Vec::new();
    if full == chunk {
        pieces.extend(chunk.iter().map(|&c| (1, vec![c])));
    } else {
        let (mut start, mut pos) = (0, 0);
        while start < chunk.len() {
            let rest = &full[pos..];
            let cut = (start + 1..=chunk.len()).find_map(|end| {
                let head = nfkc(&chunk[start..end]);
                let fits = rest.starts_with(&head)
                    && (end == chunk.len() || normalizes_to(&chunk[end..], &rest[head.len()..]));
                fits.then_some((end, head))
            });
            let Some((end, head)) = cut else {
                return vec![(chunk.len(), full)];
            };
            pos += head.len();
            pieces.push((end - start, head));
            start = end;
        }
        if pos != full.len() {
            return vec![(chunk.len(), full)];
        }
    }
    // Every run of consecutive pieces must normalise on its own.
    let mut from = 0;
    for i in 0..pieces.len() {
        let mut to = from;
        let mut expected = Vec::new();
        for (len, out) in &pieces[i..] {
            to += len;
            expected.extend_from_slice(out);
            if !normalizes_to(&chunk[from..to], &expected) {
                return vec![(chunk.len(), full)];
            }
        }
        from += pieces[i].0;
    }
    pieces
}

/// What an aligned piece is, for attaching removed characters to words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Some normalised characters; `space` when all of them are white space.
    Kept { space: bool },
    /// Only removed marks or tatweel.
    RemovedMark,
    /// Removed characters, at least one of them a control.
    RemovedControl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Atom {
    orig: Span,
    norm: Span,
    /// `orig` widened over the removed marks that belong to it.
    ext: Span,
    kind: Kind,
}

struct Builder<'a> {
    config: &'a NormalizerConfig,
    text: String,
    atoms: Vec<Atom>,
    orig_len: usize,
    norm_len: usize,
}

impl<'a> Builder<'a> {
    fn new(config: &'a NormalizerConfig, capacity: usize) -> Self {
        Self {
            config,
            text: String::with_capacity(capacity * 2),
            atoms: Vec::with_capacity(capacity),
            orig_len: 0,
            norm_len: 0,
        }
    }

    /// The next `orig_len` original characters became `produced` (after NFKC).
    fn push(&mut self, orig_len: usize, produced: &[char]) {
        let (mut kept, mut controls, mut space) = (0, 0, true);
        for &c in produced {
            match self.config.fate(c) {
                Fate::Keep(k) => {
                    self.text.push(k);
                    kept += 1;
                    space &= is_space(k);
                }
                Fate::DropMark => {}
                Fate::DropControl => controls += 1,
            }
        }
        let kind = match (kept, controls) {
            (0, 0) if !produced.is_empty() => Kind::RemovedMark,
            (0, _) => Kind::RemovedControl,
            _ => Kind::Kept { space },
        };
        let orig = Span::new(self.orig_len, self.orig_len + orig_len);
        let norm = Span::new(self.norm_len, self.norm_len + kept);
        self.atoms.push(Atom {
            orig,
            norm,
            ext: orig,
            kind,
        });
        self.orig_len = orig.end;
        self.norm_len = norm.end;
    }

    fn finish(mut self) -> Normalized {
        attach_marks(&mut self.atoms);
        let mut norm_atom = Vec::with_capacity(self.norm_len);
        let mut orig_atom = Vec::with_capacity(self.orig_len);
        for (i, atom) in self.atoms.iter().enumerate() {
            norm_atom.extend(iter::repeat_n(i, atom.norm.len()));
            orig_atom.extend(iter::repeat_n(i, atom.orig.len()));
        }
        Normalized {
            text: self.text,
            atoms: self.atoms,
            norm_atom,
            orig_atom,
        }
    }
}

/// Removed marks belong to the letter before them, or, after white space or
/// at the start, to the letter after them. Controls belong to nothing.
fn attach_marks(atoms: &mut [Atom]) {
    let is_word = |kind: Kind| matches!(kind, Kind::Kept { space: false });
    let mut attached = vec![false; atoms.len()];
    let mut prev: Option<usize> = None;
    for i in 0..atoms.len() {
        match atoms[i].kind {
            Kind::Kept { .. } => prev = Some(i),
            Kind::RemovedMark => {
                if let Some(p) = prev.filter(|&p| is_word(atoms[p].kind)) {
                    atoms[p].ext.end = atoms[i].orig.end;
                    attached[i] = true;
                }
            }
            Kind::RemovedControl => {}
        }
    }
    let mut next: Option<usize> = None;
    for i in (0..atoms.len()).rev() {
        match atoms[i].kind {
            Kind::Kept { .. } => next = Some(i),
            Kind::RemovedMark if !attached[i] => {
                if let Some(n) = next.filter(|&n| is_word(atoms[n].kind)) {
                    atoms[n].ext.start = atoms[i].orig.start;
                }
            }
            _ => {}
        }
    }
}

/// One step of an alignment: the original characters `original` became the
/// normalised characters `normalized` (empty when they were removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlignedPiece {
    pub original: Span,
    pub normalized: Span,
}

/// A normalised text and its alignment with the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    text: String,
    atoms: Vec<Atom>,
    /// Atom of every normalised character.
    norm_atom: Vec<usize>,
    /// Atom of every original character.
    orig_atom: Vec<usize>,
}

impl Normalized {
    /// The normalised text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Number of normalised characters.
    pub fn len(&self) -> usize {
        self.norm_atom.len()
    }

    /// Whether the normalised text is empty.
    pub fn is_empty(&self) -> bool {
        self.norm_atom.is_empty()
    }

    /// Number of original characters.
    pub fn original_len(&self) -> usize {
        self.orig_atom.len()
    }

    /// The alignment, in order: consecutive pieces that cut both texts
    /// without gaps. Any slice of the original cut at piece boundaries
    /// normalises to the slice of the normalised text between the paired
    /// boundaries.
    pub fn pieces(&self) -> impl ExactSizeIterator<Item = AlignedPiece> + '_ {
        self.atoms.iter().map(|a| AlignedPiece {
            original: a.orig,
            normalized: a.norm,
        })
    }

    /// The original characters a normalised range `[start, end)` comes from,
    /// or `None` when the range is reversed or out of bounds.
    ///
    /// A non-empty range maps to the pieces that produced its first and last
    /// characters and everything between; a character produced by an
    /// expansion maps to the whole original character. Removed marks and
    /// tatweel count with the letter they sit on (the one before them, or the
    /// one after them when white space or the text's start precedes them), so
    /// a word's span keeps its diacritics; removed controls belong to no
    /// character and are left out at the edges. An empty range maps to an
    /// empty range where the next character's span would start.
    pub fn to_original(&self, range: Span) -> Option<Span> {
        if range.start > range.end || range.end > self.len() {
            return None;
        }
        if range.start == range.end {
            let pos = match self.norm_atom.get(range.start) {
                Some(&a) => self.atoms[a].ext.start,
                None => self.original_len(),
            };
            return Some(Span::new(pos, pos));
        }
        let first = self.atoms[self.norm_atom[range.start]];
        let last = self.atoms[self.norm_atom[range.end - 1]];
        Some(Span::new(first.ext.start, last.ext.end))
    }

    /// The normalised characters an original range `[start, end)` became, or
    /// `None` when the range is reversed or out of bounds. Removed characters
    /// map to an empty range; a character that took part in a composition
    /// maps to the composed character.
    pub fn to_normalized(&self, range: Span) -> Option<Span> {
        if range.start > range.end || range.end > self.original_len() {
            return None;
        }
        if range.start == range.end {
            let pos = match self.orig_atom.get(range.start) {
                Some(&a) => self.atoms[a].norm.start,
                None => self.len(),
            };
            return Some(Span::new(pos, pos));
        }
        let first = self.atoms[self.orig_atom[range.start]];
        let last = self.atoms[self.orig_atom[range.end - 1]];
        Some(Span::new(first.norm.start, last.norm.end))
    }
}

#[cfg(test)]
mod tests;
