//! A rule-based recogniser of calendar dates in Arabic news, merged with
//! the model's entities.
//!
//! [`find_dates`] scans the words of a text normalised with every step of
//! [`NormalizerConfig::all`] (tashkeel, tatweel, alef forms, ى/ي, ة/ه,
//! Arabic-Indic digits) and maps each match back to the original
//! characters, so a span keeps the diacritics of its words and its text is
//! always the original slice. The rules follow `ANNOTATION.md`:
//!
//! - Month names: the transliterated series (يناير … ديسمبر, with variants
//!   such as إبريل/أفريل, يونيه, يوليه, جانفي, شتنبر), the Levantine series
//!   (كانون الثاني … كانون الأول; كانون and تشرين need الأول/الثاني), the
//!   Hijri months (ربيع الأول, جمادى الآخرة, ذو الحجة …) and English names
//!   (September). Names that are also ordinary words or given names
//!   (مارس, آب, أوت, محرم, صفر, رجب, شعبان, رمضان, شوال) count only with
//!   a date around them: a day before, a year, a paired month or
//!   الماضي/المقبل after, or شهر/في/منذ/خلال/حتى/مطلع/أواخر… before
//!   (آب/أوت only with a day, a year, a pair or a deictic word).
//! - A month takes a day before it, in digits or as an ordinal word, with
//!   or without من (23 نوفمبر, 3 من أكتوبر, الخامس عشر من يناير, الحادي
//!   والعشرين من مارس), a paired month after `/`, `-` or in brackets
//!   (23 نوفمبر/ تشرين الثاني is one date; after `/` the pair may continue
//!   on the next line), a year (سبتمبر 2023, with هـ/م, or من عام 2023)
//!   and, without a year, a deictic word (سبتمبر الماضي, أكتوبر الفائت) or
//!   the year named relatively (مارس من العام الماضي, يونيو من هذا العام).
//!   English: November 1, 2024.
//! - A day of the current, past or next month: 22 من الشهر الجاري, الخامس
//!   من الشهر الماضي.
//! - Weekdays (الأحد … السبت), with يوم/اليوم when present, a deictic word
//!   after (الأحد الماضي), and a following day-month date: a full dateline
//!   (الجمعة 1 نوفمبر / November 2024) is one date.
//! - Years with a head word (عام/العام/سنة/السنة/عامي + 3-4 digits), and a
//!   bare 4-digit year in 1900–2099 that is no part of a larger number
//!   (2,020, 20.20, 2020%, 15/2020) and counts nothing (2020 شخص).
//! - Hijri years with their mark (1445 هـ).
//! - Numeric dates d/m/y, d-m-y, d.m.y and y-m-d, also after a weekday.
//! - A range gives two dates: in من 3 إلى 5 يونيو the lone day `3` is one
//!   date and `5 يونيو` the other (connectors إلى, حتى, و, `-`).
//! - Proclitics stay outside (والأحد → الأحد, وفي 2020 → 2020; و ف ب ل ك
//!   and their pairs); head words are kept (شهر رمضان, يوم الاثنين).
//! - Durations and vague expressions have no month, weekday or year in
//!   them and are never matched (يومين, ثلاثة أيام, قبل عامين, أواخر الشهر
//!   الجاري, منذ سنوات).
//! - الاثنين after بين is "the two", not Monday.
//!
//! A date never crosses a line break, except a month pair split after its
//! `/` (a web page's line wrapped inside 23 نوفمبر/ تشرين الثاني). [`merge_dates`] adds the dates that
//! overlap no model entity to a record's entities.

use arabtag_records::{CharText, Entity, Span};
use arabtag_tokenizer::{Normalized, NormalizerConfig};

use super::labels;
use crate::InferError;

/// The entity type dates get.
pub const DATE_TYPE: &str = "DATE";

/// The calendar dates of `text`: half-open character spans of the original
/// text, sorted and non-overlapping.
pub fn find_dates(text: &str) -> Vec<Span> {
    let normalized = NormalizerConfig::all().normalize(text);
    let scan = Scan::new(text, &normalized);
    let mut out: Vec<Span> = Vec::new();
    let mut i = 0;
    while i < scan.toks.len() {
        match scan.date_at(i) {
            Some((start, last)) => {
                let span = Span::new(start, scan.toks[last].end);
                if let Some(original) = normalized.to_original(span)
                    && !original.is_empty()
                    && out.last().is_none_or(|p| p.end <= original.start)
                {
                    out.push(original);
                }
                i = last + 1;
            }
            None => i += 1,
        }
    }
    out
}

/// Adds a DATE entity for every date of `text` that overlaps none of
/// `entities` (the model's spans win), keeping the entities ordered by
/// start.
pub fn merge_dates(text: &str, entities: &mut Vec<Entity>) -> Result<(), InferError> {
    let chars = CharText::new(text);
    let mut added = Vec::new();
    for span in find_dates(text) {
        if entities.iter().all(|e| e.span().overlap(&span) == 0) {
            added.push(labels::entity(&chars, span, DATE_TYPE, None)?);
        }
    }
    if !added.is_empty() {
        entities.extend(added);
        entities.sort_by_key(|e| e.start);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Num,
    Punct(char),
}

/// A token of the normalised text: `[start, end)` in normalised characters.
#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
    /// A line break lies between it and the token before.
    newline_before: bool,
}

/// How much context a month name needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Strength {
    Strong,
    /// Also an ordinary word or a name: needs a date or a temporal word
    /// around it.
    Weak,
    /// آب/أوت: needs a day, a year, a pair or a deictic word.
    VeryWeak,
}

enum MonthWord {
    Single(Strength),
    /// The first word of a two-word name; the second is one of these.
    Needs(&'static [&'static str]),
}

/// The month a normalised word names (without proclitics).
fn month_word(w: &str) -> Option<MonthWord> {
    use MonthWord::{Needs, Single};
    use Strength::{Strong, VeryWeak, Weak};
    const FIRST_SECOND: &[&str] = &["الاول", "الثاني"];
    const RABI: &[&str] = &["الاول", "الاخر", "الثاني"];
    const JUMADA: &[&str] = &["الاولي", "الاول", "الاخره", "الاخر", "الثانيه", "الثاني"];
    const DHU: &[&str] = &["القعده", "الحجه"];
    Some(match w {
        "يناير" | "جانفي" | "فبراير" | "فبرير" | "فيفري" | "ابريل" | "افريل" | "مايو" | "يونيو"
        | "يونيه" | "جوان" | "يوليو" | "يوليه" | "جويليه" | "اغسطس" | "اغسطوس" | "سبتمبر"
        | "سيبتمبر" | "شتنبر" | "اكتوبر" | "اوكتوبر" | "نوفمبر" | "نونبر" | "ديسمبر" | "دسمبر"
        | "دجنبر" => Single(Strong),
        "شباط" | "اذار" | "نيسان" | "ايار" | "حزيران" | "تموز" | "ايلول" => {
            Single(Strong)
        }
        "مارس" | "محرم" | "المحرم" | "صفر" | "رجب" | "شعبان" | "رمضان" | "شوال" => {
            Single(Weak)
        }
        "اب" | "اوت" => Single(VeryWeak),
        "كانون" | "تشرين" => Needs(FIRST_SECOND),
        "ربيع" => Needs(RABI),
        "جمادي" => Needs(JUMADA),
        "ذو" | "ذي" => Needs(DHU),
        // English names, capitalised (not the verb "may").
        _ if w.starts_with(|c: char| c.is_ascii_uppercase()) => {
            let lower = w.to_ascii_lowercase();
            return matches!(
                lower.as_str(),
                "january"
                    | "february"
                    | "march"
                    | "april"
                    | "may"
                    | "june"
                    | "july"
                    | "august"
                    | "september"
                    | "october"
                    | "november"
                    | "december"
            )
            .then_some(Single(Strong));
        }
        _ => return None,
    })
}

fn is_latin(w: &str) -> bool {
    w.chars().all(|c| c.is_ascii_alphabetic())
}

fn is_weekday(w: &str) -> bool {
    matches!(
        w,
        "الاحد"
            | "الاثنين"
            | "الثلاثاء"
            | "الاربعاء"
            | "الخميس"
            | "الجمعه"
            | "السبت"
    )
}

/// يوم/اليوم before a weekday or a day-month date.
fn is_day_head(w: &str) -> bool {
    matches!(w, "يوم" | "اليوم")
}

/// Head words of a year.
fn is_year_head(w: &str) -> bool {
    matches!(w, "عام" | "العام" | "عامي" | "سنه" | "السنه")
}

/// Deictic words that belong to a month or weekday.
fn is_deictic(w: &str) -> bool {
    matches!(
        w,
        "الماضي"
            | "الماضيه"
            | "المقبل"
            | "المقبله"
            | "القادم"
            | "القادمه"
            | "الحالي"
            | "الجاري"
            | "المنصرم"
            | "المنصرمه"
            | "الفائت"
            | "الفائته"
    )
}

/// Words before a weak month name that make it a month.
fn is_month_context(w: &str) -> bool {
    matches!(
        w,
        "في" | "منذ"
            | "خلال"
            | "حتي"
            | "قبل"
            | "بعد"
            | "مطلع"
            | "منتصف"
            | "اواخر"
            | "اوائل"
            | "اواسط"
            | "نهايه"
            | "بدايه"
            | "شهر"
            | "شهري"
    )
}

/// Ordinal words of days 1-10 (and the units of 11-19, 21-29 and 31).
fn is_ordinal_unit(w: &str) -> bool {
    matches!(
        w,
        "الاول"
            | "الحادي"
            | "الثاني"
            | "الثالث"
            | "الرابع"
            | "الخامس"
            | "السادس"
            | "السابع"
            | "الثامن"
            | "التاسع"
            | "العاشر"
    )
}

/// Connectors of a range of days.
fn is_range_word(w: &str) -> bool {
    matches!(w, "الي" | "حتي" | "و")
}

/// Words before a number that make it a quantity.
fn is_quantity_before(w: &str) -> bool {
    matches!(
        w,
        "نحو" | "حوالي" | "قرابه" | "زهاء" | "رقم" | "اكثر" | "اقل"
    )
}

/// Nouns after a number that make it a quantity.
fn is_quantity_after(w: &str) -> bool {
    matches!(
        w,
        "شخص"
            | "شخصا"
            | "قتيل"
            | "قتيلا"
            | "جندي"
            | "جنديا"
            | "عسكري"
            | "مدني"
            | "لاجئ"
            | "نازح"
            | "اسير"
            | "منزل"
            | "دولار"
            | "يورو"
            | "روبل"
            | "مليون"
            | "مليار"
            | "الف"
            | "كيلومتر"
            | "كيلومترا"
            | "كم"
            | "متر"
            | "مترا"
            | "طن"
            | "برميل"
            | "ميغاواط"
    )
}

/// Proclitics a span leaves out, longest first.
const PROCLITICS: &[&str] = &["وب", "ول", "وك", "فب", "فل", "فك", "و", "ف", "ب", "ل", "ك"];

struct Scan {
    /// Normalised characters.
    norm: Vec<char>,
    toks: Vec<Tok>,
    /// The text of every token (empty for punctuation).
    words: Vec<String>,
    /// Per token, whether its original text has an alef with madda (آب
    /// is the month, أب "father").
    madda: Vec<bool>,
}

impl Scan {
    fn new(original: &str, normalized: &Normalized) -> Self {
        let norm: Vec<char> = normalized.text().chars().collect();
        let orig: Vec<char> = original.chars().collect();
        let mut toks = Vec::new();
        let mut newline = false;
        let mut i = 0;
        while i < norm.len() {
            let c = norm[i];
            if c.is_whitespace() {
                newline |= matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}');
                i += 1;
                continue;
            }
            let start = i;
            let kind = if c.is_ascii_digit() {
                while i < norm.len() && norm[i].is_ascii_digit() {
                    i += 1;
                }
                Kind::Num
            } else if c.is_alphabetic() {
                while i < norm.len() && norm[i].is_alphabetic() && !norm[i].is_ascii_digit() {
                    i += 1;
                }
                Kind::Word
            } else {
                i += 1;
                Kind::Punct(c)
            };
            toks.push(Tok {
                kind,
                start,
                end: i,
                newline_before: newline,
            });
            newline = false;
        }
        let words = toks
            .iter()
            .map(|t| match t.kind {
                Kind::Punct(_) => String::new(),
                _ => norm[t.start..t.end].iter().collect(),
            })
            .collect();
        let madda = toks
            .iter()
            .map(|t| {
                normalized
                    .to_original(Span::new(t.start, t.end))
                    .and_then(|s| orig.get(s.start..s.end))
                    .is_some_and(|cs| cs.contains(&'آ'))
            })
            .collect();
        Self {
            norm,
            toks,
            words,
            madda,
        }
    }

    /// The token after `i` on the same line.
    fn next(&self, i: usize) -> Option<usize> {
        let j = i + 1;
        (j < self.toks.len() && !self.toks[j].newline_before).then_some(j)
    }

    /// The token after `i`, on this line or the next.
    fn next_any(&self, i: usize) -> Option<usize> {
        (i + 1 < self.toks.len()).then_some(i + 1)
    }

    /// The token before `i` on the same line.
    fn prev(&self, i: usize) -> Option<usize> {
        (i > 0 && !self.toks[i].newline_before).then(|| i - 1)
    }

    fn word(&self, i: usize) -> Option<&str> {
        (self.toks.get(i)?.kind == Kind::Word).then(|| self.words[i].as_str())
    }

    fn is_punct(&self, i: usize, set: &[char]) -> bool {
        matches!(self.toks.get(i).map(|t| t.kind), Some(Kind::Punct(c)) if set.contains(&c))
    }

    /// The word `i` as `f` accepts it, bare or after a proclitic: the
    /// normalised start of what is kept.
    fn stripped<T>(&self, i: usize, f: impl Fn(&str) -> Option<T>) -> Option<(usize, T)> {
        let w = self.word(i)?;
        if let Some(v) = f(w) {
            return Some((self.toks[i].start, v));
        }
        PROCLITICS.iter().find_map(|p| {
            let rest = w.strip_prefix(p)?;
            if rest.chars().count() < 2 {
                return None;
            }
            f(rest).map(|v| (self.toks[i].start + p.chars().count(), v))
        })
    }

    /// The word `i`, without proclitics, when `pred` holds for it.
    fn stripped_is(&self, i: usize, pred: fn(&str) -> bool) -> Option<usize> {
        self.stripped(i, |w| pred(w).then_some(())).map(|(s, ())| s)
    }

    /// The number token `i` and its value, when it stands alone: no digit
    /// group, decimal, fraction or percentage around it, no Latin letter
    /// touching it.
    fn number(&self, i: usize, max_digits: usize) -> Option<u32> {
        let t = self.toks.get(i)?;
        if t.kind != Kind::Num || t.end - t.start > max_digits {
            return None;
        }
        let at = |k: usize| self.norm.get(k).copied();
        let joins = |c: char| matches!(c, '.' | ',' | '٫' | '٬' | '/' | ':');
        if t.start > 0 {
            let before = self.norm[t.start - 1];
            if before.is_ascii_alphabetic()
                || (joins(before) && t.start > 1 && self.norm[t.start - 2].is_ascii_digit())
            {
                return None;
            }
        }
        if let Some(after) = at(t.end)
            && (after.is_ascii_alphabetic()
                || matches!(after, '%' | '٪')
                || (joins(after) && at(t.end + 1).is_some_and(|c| c.is_ascii_digit())))
        {
            return None;
        }
        self.words[i].parse().ok()
    }

    fn day(&self, i: usize) -> Option<u32> {
        self.number(i, 2).filter(|d| (1..=31).contains(d))
    }

    /// A year after a head word or a month: 3 or 4 digits up to 2099.
    fn year(&self, i: usize) -> Option<u32> {
        self.number(i, 4)
            .filter(|y| (100..=2099).contains(y) && self.toks[i].end - self.toks[i].start >= 3)
    }

    /// An era mark after a year (هـ, م): the last token of the year.
    fn era(&self, i: usize) -> usize {
        match self.next(i) {
            Some(j) if matches!(self.word(j), Some("ه" | "م")) => j,
            _ => i,
        }
    }

    /// A month name at `i`: its normalised start (proclitics left out when
    /// `proclitic`), its last token and its strength.
    fn month(&self, i: usize, proclitic: bool) -> Option<(usize, usize, Strength)> {
        let (start, m) = if proclitic {
            self.stripped(i, month_word)?
        } else {
            (self.toks.get(i)?.start, month_word(self.word(i)?)?)
        };
        match m {
            MonthWord::Single(strength) => Some((start, i, strength)),
            MonthWord::Needs(second) => {
                let j = self.next(i)?;
                second
                    .contains(&self.word(j)?)
                    .then_some((start, j, Strength::Strong))
            }
        }
    }

    /// What follows a month ending at token `e`: a paired month, a year,
    /// or a deictic word. Returns the last token and whether anything
    /// followed.
    fn month_tail(&self, mut e: usize, latin: bool) -> (usize, bool) {
        let mut more = false;
        // A paired month: نوفمبر/ تشرين الثاني, أغسطس (آب); after `/` the
        // second name may be on the next line.
        if let Some(p) = self.next(e) {
            let after_slash = if self.is_punct(p, &['/']) {
                self.next_any(p)
            } else {
                self.next(p)
            };
            if self.is_punct(p, &['/', '-'])
                && let Some((_, last, _)) = after_slash.and_then(|j| self.month(j, false))
            {
                e = last;
                more = true;
            } else if self.is_punct(p, &['('])
                && let Some((_, last, _)) = self.next(p).and_then(|j| self.month(j, false))
                && let Some(close) = self.next(last).filter(|&c| self.is_punct(c, &[')']))
            {
                e = close;
                more = true;
            }
        }
        // English order: November 1, 2024.
        if latin && let Some(d) = self.next(e).filter(|&d| self.day(d).is_some()) {
            e = d;
            more = true;
            if let Some(comma) = self.next(e).filter(|&c| self.is_punct(c, &[',', '،']))
                && let Some(y) = self.next(comma).filter(|&y| self.year(y).is_some())
            {
                return (self.era(y), true);
            }
        }
        if let Some(y) = self.next(e).filter(|&y| self.year(y).is_some()) {
            return (self.era(y), true);
        }
        if let Some(d) = self
            .next(e)
            .filter(|&d| self.word(d).is_some_and(is_deictic))
        {
            return (d, true);
        }
        if let Some(last) = self.of_year(e) {
            return (last, true);
        }
        (e, more)
    }

    /// The year of a month ending at token `e` given after من: من عام 2023,
    /// من العام الماضي, من السنة المقبلة, من هذا العام. Returns the last token.
    fn of_year(&self, e: usize) -> Option<usize> {
        let from = self.next(e).filter(|&m| self.word(m) == Some("من"))?;
        let head = self.next(from)?;
        let w = self.word(head)?;
        if matches!(w, "عام" | "سنه") {
            return self
                .next(head)
                .filter(|&y| self.year(y).is_some())
                .map(|y| self.era(y));
        }
        if matches!(w, "العام" | "السنه") {
            return self
                .next(head)
                .filter(|&d| self.word(d).is_some_and(is_deictic));
        }
        if matches!(w, "هذا" | "هذه") {
            return self
                .next(head)
                .filter(|&k| matches!(self.word(k), Some("العام" | "السنه")));
        }
        None
    }

    /// An ordinal day word at `i` (الخامس, الخامس عشر, الحادي والعشرين,
    /// الثلاثين; its first word may carry a proclitic): its last token.
    fn ordinal_day(&self, i: usize) -> Option<usize> {
        let ordinal = |w: &str| {
            (is_ordinal_unit(w) || matches!(w, "العشرين" | "الثلاثين")).then(|| w.to_owned())
        };
        let (_, w) = self.stripped(i, ordinal)?;
        let w = w.as_str();
        if matches!(w, "العشرين" | "الثلاثين") {
            return Some(i);
        }
        if !is_ordinal_unit(w) {
            return None;
        }
        let second = self.next(i).and_then(|j| self.word(j).map(|x| (j, x)));
        match second {
            Some((j, "عشر")) if !matches!(w, "الاول" | "العاشر") => Some(j),
            Some((j, "والعشرين")) if w != "العاشر" => Some(j),
            Some((j, "والثلاثين")) if matches!(w, "الحادي" | "الاول") => {
                Some(j)
            }
            _ => (w != "الحادي").then_some(i),
        }
    }

    /// A day and a month at `i` (23 نوفمبر, 3 من أكتوبر, الخامس عشر من
    /// يناير, 22 من الشهر الجاري …): the last token.
    fn day_month(&self, i: usize) -> Option<usize> {
        let day = match self.day(i) {
            Some(_) => i,
            None => self.ordinal_day(i)?,
        };
        let mut j = self.next(day)?;
        let from = self.word(j) == Some("من");
        if from {
            j = self.next(j)?;
        }
        if let Some((_, last, _)) = self.month(j, false) {
            return Some(self.month_tail(last, false).0);
        }
        // 22 من الشهر الجاري, الخامس من هذا الشهر.
        if !from {
            return None;
        }
        match self.word(j)? {
            "الشهر" => self
                .next(j)
                .filter(|&d| self.word(d).is_some_and(is_deictic)),
            "هذا" => self.next(j).filter(|&k| self.word(k) == Some("الشهر")),
            _ => None,
        }
    }

    /// A weekday at `i` (proclitics left out), its deictic word and a
    /// dateline after it: start and last token.
    fn weekday(&self, i: usize) -> Option<(usize, usize)> {
        let start = self.stripped_is(i, is_weekday)?;
        // بين الاثنين is "between the two".
        if self.word(i) == Some("الاثنين")
            && self
                .prev(i)
                .is_some_and(|p| self.stripped_is(p, |w| w == "بين").is_some())
        {
            return None;
        }
        let mut e = i;
        if let Some(d) = self
            .next(e)
            .filter(|&d| self.word(d).is_some_and(is_deictic))
        {
            e = d;
        }
        let mut j = self.next(e);
        if let Some(p) = j.filter(|&p| self.is_punct(p, &['،', ',', '-']))
            && e == i
        {
            j = self.next(p);
        }
        if let Some(last) = j.and_then(|j| self.day_month(j).or_else(|| self.numeric(j))) {
            e = last;
        }
        Some((start, e))
    }

    /// A numeric date at `i`: d/m/y, d-m-y, d.m.y or y-m-d.
    fn numeric(&self, i: usize) -> Option<usize> {
        let parts = [i, i + 2, i + 4];
        let (a, s1, b, s2, c) = (i, i + 1, i + 2, i + 3, i + 4);
        let t = |k: usize| self.toks.get(k);
        let sep = match t(s1)?.kind {
            Kind::Punct(ch @ ('/' | '-' | '.')) => ch,
            _ => return None,
        };
        if t(s2)?.kind != Kind::Punct(sep) {
            return None;
        }
        for w in [a, s1, b, s2] {
            if t(w)?.end != t(w + 1)?.start {
                return None;
            }
        }
        if parts.iter().any(|&k| self.toks[k].kind != Kind::Num) {
            return None;
        }
        let value = |k: usize| self.words[k].parse::<u32>().ok();
        let len = |k: usize| self.toks[k].end - self.toks[k].start;
        let (d, m, y) = if len(a) == 4 {
            (value(c)?, value(b)?, value(a)?)
        } else {
            (value(a)?, value(b)?, value(c)?)
        };
        let year_ok = match len(if len(a) == 4 { a } else { c }) {
            4 => (1900..=2099).contains(&y),
            2 => true,
            _ => false,
        };
        let at = |k: usize| self.norm.get(k).copied();
        let end = self.toks[c].end;
        let longer = at(end).is_some_and(|ch| ch.is_ascii_digit())
            || (at(end).is_some_and(|ch| matches!(ch, '/' | '-' | '.'))
                && at(end + 1).is_some_and(|ch| ch.is_ascii_digit()));
        let day_len_ok = len(if len(a) == 4 { c } else { a }) <= 2 && len(b) <= 2;
        ((1..=31).contains(&d) && (1..=12).contains(&m) && year_ok && day_len_ok && !longer)
            .then_some(c)
    }

    /// The date that starts at token `i`: its normalised start and its last
    /// token.
    fn date_at(&self, i: usize) -> Option<(usize, usize)> {
        let tok = self.toks[i];
        match tok.kind {
            Kind::Punct(_) => None,
            Kind::Num => self.number_date(i),
            Kind::Word => self.word_date(i),
        }
    }

    fn number_date(&self, i: usize) -> Option<(usize, usize)> {
        let start = self.toks[i].start;
        if let Some(last) = self.numeric(i) {
            return Some((start, last));
        }
        if self.toks[i].end - self.toks[i].start <= 2 {
            if let Some(last) = self.day_month(i) {
                return Some((start, last));
            }
            // The first day of a range: من 3 إلى 5 يونيو.
            self.day(i)?;
            let c = self.next(i)?;
            let connector = self.is_punct(c, &['-']) || self.word(c).is_some_and(is_range_word);
            let second = self.next(c)?;
            return (connector && self.day_month(second).is_some()).then_some((start, i));
        }
        // A bare year: four digits in 1900-2099 that count nothing, or a
        // Hijri year with its mark (1445 هـ).
        let year = self.number(i, 4)?;
        if self.toks[i].end - self.toks[i].start != 4 {
            return None;
        }
        let hijri = (1300..=1500).contains(&year) && self.era(i) != i;
        if !(1900..=2099).contains(&year) && !hijri {
            return None;
        }
        let quantity_before = self
            .prev(i)
            .and_then(|p| self.stripped_is(p, is_quantity_before))
            .is_some();
        let quantity_after = self
            .next(i)
            .and_then(|n| self.stripped_is(n, is_quantity_after))
            .is_some();
        (!quantity_before && !quantity_after).then(|| (start, self.era(i)))
    }

    fn word_date(&self, i: usize) -> Option<(usize, usize)> {
        // يوم الاثنين, يوم 5 يونيو.
        if let Some(start) = self.stripped_is(i, is_day_head)
            && let Some(j) = self.next(i)
        {
            if self.word(j).is_some_and(is_weekday) {
                let (_, last) = self.weekday(j)?;
                return Some((start, last));
            }
            if let Some(last) = self.day_month(j) {
                return Some((start, last));
            }
        }
        if let Some(found) = self.weekday(i) {
            return Some(found);
        }
        // الخامس عشر من يناير (a proclitic left out: والعاشر من مارس).
        if self.ordinal_day(i).is_some()
            && let Some(last) = self.day_month(i)
            && let Some((start, ())) = self.stripped(i, |w| {
                (is_ordinal_unit(w) || matches!(w, "العشرين" | "الثلاثين")).then_some(())
            })
        {
            return Some((start, last));
        }
        // عام 2022.
        if let Some(start) = self.stripped_is(i, is_year_head)
            && let Some(y) = self.next(i).filter(|&y| self.year(y).is_some())
        {
            return Some((start, self.era(y)));
        }
        // شهر رمضان.
        if let Some(start) = self.stripped_is(i, |w| w == "شهر")
            && let Some((_, last, _)) = self.next(i).and_then(|j| self.month(j, false))
        {
            let latin = self.word(last).is_some_and(is_latin);
            return Some((start, self.month_tail(last, latin).0));
        }
        let (start, last, strength) = self.month(i, true)?;
        let latin = self.word(last).is_some_and(is_latin);
        let (end, more) = self.month_tail(last, latin);
        let context_before = self
            .prev(i)
            .and_then(|p| self.stripped_is(p, is_month_context))
            .is_some();
        let accepted = match strength {
            Strength::Strong => true,
            Strength::Weak => more || context_before,
            // آب written with madda is the month; أب/اب ("father") needs more.
            Strength::VeryWeak => more || (context_before && self.madda[i]),
        };
        accepted.then_some((start, end))
    }
}

#[cfg(test)]
#[path = "dates_tests.rs"]
mod tests;
