//! Entity scoring: SemEval-2013 task 9.1 counts in four modes, plus the
//! clitic-tolerant strict mode of the guideline. See the crate docs for the
//! exact procedure.

use std::collections::BTreeMap;

use arabtag_records::{ENTITY_TYPES, Entity};
use serde::Serialize;

use crate::TypeSet;
use crate::metrics::{Prf, ratio};

/// A scoring mode: the four of SemEval-2013 task 9.1 and the clitic-tolerant strict one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Same boundaries and same type.
    Strict,
    /// Same boundaries, any type.
    Exact,
    /// Overlap counts half, same boundaries count whole; any type.
    Partial,
    /// Overlap and same type.
    Type,
    /// Strict, on spans whose leading proclitics are removed.
    Clitic,
}

impl Mode {
    /// Every mode, in report order.
    pub const ALL: [Mode; 5] = [
        Mode::Strict,
        Mode::Exact,
        Mode::Partial,
        Mode::Type,
        Mode::Clitic,
    ];

    /// The mode's name in reports and JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Exact => "exact",
            Mode::Partial => "partial",
            Mode::Type => "type",
            Mode::Clitic => "clitic",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The proclitics that clitic mode strips: و ف ب ل ك.
pub const PROCLITICS: [char; 5] = ['\u{0648}', '\u{0641}', '\u{0628}', '\u{0644}', '\u{0643}'];

/// SemEval counts: correct, incorrect, partial, missed, spurious.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub cor: u64,
    pub inc: u64,
    pub par: u64,
    pub mis: u64,
    pub spu: u64,
}

impl Counts {
    /// Gold mentions: COR + INC + PAR + MIS.
    pub fn pos(&self) -> u64 {
        self.cor + self.inc + self.par + self.mis
    }

    /// Predicted mentions: COR + INC + PAR + SPU.
    pub fn act(&self) -> u64 {
        self.cor + self.inc + self.par + self.spu
    }

    pub fn merge(&mut self, other: &Counts) {
        self.cor += other.cor;
        self.inc += other.inc;
        self.par += other.par;
        self.mis += other.mis;
        self.spu += other.spu;
    }

    /// P = COR/ACT and R = COR/POS; in partial mode COR + 0.5·PAR replaces COR.
    pub fn prf(&self, mode: Mode) -> Prf {
        let mut hit = self.cor as f64;
        if mode == Mode::Partial {
            hit += 0.5 * self.par as f64;
        }
        Prf::new(ratio(hit, self.act() as f64), ratio(hit, self.pos() as f64))
    }
}

/// Counts in every [`Mode`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModeCounts([Counts; 5]);

impl ModeCounts {
    pub fn get(&self, mode: Mode) -> &Counts {
        &self.0[mode.index()]
    }

    fn get_mut(&mut self, mode: Mode) -> &mut Counts {
        &mut self.0[mode.index()]
    }

    pub fn merge(&mut self, other: &ModeCounts) {
        for mode in Mode::ALL {
            self.get_mut(mode).merge(other.get(mode));
        }
    }
}

/// A mention reduced to what matching looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mention<'a> {
    pub start: usize,
    pub end: usize,
    pub kind: &'a str,
}

impl<'a> Mention<'a> {
    pub fn of(e: &'a Entity) -> Self {
        Self {
            start: e.start,
            end: e.end,
            kind: &e.kind,
        }
    }

    /// The mention with `start` moved past the longest prefix of the entity's
    /// `text` made of [`PROCLITICS`] (possibly all of it).
    pub fn stripped(e: &'a Entity) -> Self {
        let skip = e
            .text
            .chars()
            .take_while(|c| PROCLITICS.contains(c))
            .count();
        Self {
            start: (e.start + skip).min(e.end.max(e.start)),
            ..Self::of(e)
        }
    }

    pub(crate) fn same_bounds(&self, other: &Mention<'_>) -> bool {
        self.start == other.start && self.end == other.end
    }

    /// Half-open overlap: `max(start) < min(end)`.
    pub(crate) fn overlaps(&self, other: &Mention<'_>) -> bool {
        self.start.max(other.start) < self.end.min(other.end)
    }
}

/// The four SemEval modes' counts for one document (strict, exact, partial,
/// type; the clitic slot is left at zero), from the best one-to-one
/// matching of [`crate::matching`]: a function of the two sets, whatever
/// their order and type names.
pub fn count_semeval(gold: &[Mention<'_>], pred: &[Mention<'_>]) -> ModeCounts {
    use crate::matching::{Tier, best_matching};
    let mut c = ModeCounts::default();
    let matched = best_matching(gold, pred);
    for &(_, _, tier) in &matched {
        match tier {
            Tier::Exact => {
                for mode in [Mode::Strict, Mode::Exact, Mode::Partial, Mode::Type] {
                    c.get_mut(mode).cor += 1;
                }
            }
            Tier::Boundaries => {
                c.get_mut(Mode::Strict).inc += 1;
                c.get_mut(Mode::Exact).cor += 1;
                c.get_mut(Mode::Partial).cor += 1;
                c.get_mut(Mode::Type).inc += 1;
            }
            Tier::OverlapSameType | Tier::Overlap => {
                c.get_mut(Mode::Strict).inc += 1;
                c.get_mut(Mode::Exact).inc += 1;
                c.get_mut(Mode::Partial).par += 1;
                if tier == Tier::OverlapSameType {
                    c.get_mut(Mode::Type).cor += 1;
                } else {
                    c.get_mut(Mode::Type).inc += 1;
                }
            }
        }
    }
    let matched = matched.len() as u64;
    let missed = gold.len() as u64 - matched;
    let spurious = pred.len() as u64 - matched;
    for mode in [Mode::Strict, Mode::Exact, Mode::Partial, Mode::Type] {
        c.get_mut(mode).mis += missed;
        c.get_mut(mode).spu += spurious;
    }
    c
}

/// Counts in all five modes for one document's entities, all of which are scored
/// (restrict them to a type set first).
pub fn count_document<'a, G, P>(gold: G, pred: P) -> ModeCounts
where
    G: IntoIterator<Item = &'a Entity> + Clone,
    P: IntoIterator<Item = &'a Entity> + Clone,
{
    let g: Vec<Mention<'_>> = gold.clone().into_iter().map(Mention::of).collect();
    let p: Vec<Mention<'_>> = pred.clone().into_iter().map(Mention::of).collect();
    let mut counts = count_semeval(&g, &p);
    let g: Vec<Mention<'_>> = gold.into_iter().map(Mention::stripped).collect();
    let p: Vec<Mention<'_>> = pred.into_iter().map(Mention::stripped).collect();
    *counts.get_mut(Mode::Clitic) = *count_semeval(&g, &p).get(Mode::Strict);
    counts
}

/// Entity counts summed over documents: over the type set (micro) and per type.
#[derive(Debug, Clone)]
pub struct EntityTally {
    types: TypeSet,
    micro: ModeCounts,
    per_type: BTreeMap<String, ModeCounts>,
}

impl EntityTally {
    /// An empty tally; every type of the set and of the guideline gets a row.
    pub fn new(types: TypeSet) -> Self {
        let per_type = types
            .iter()
            .map(String::as_str)
            .chain(ENTITY_TYPES)
            .map(|t| (t.to_string(), ModeCounts::default()))
            .collect();
        Self {
            types,
            micro: ModeCounts::default(),
            per_type,
        }
    }

    /// Adds one document's counts. Types outside the set and the guideline
    /// (a tagger's own labels) get their own row.
    pub fn add_document(&mut self, gold: &[Entity], pred: &[Entity]) {
        let types = &self.types;
        let in_set = |e: &&Entity| types.contains(&e.kind);
        self.micro.merge(&count_document(
            gold.iter().filter(in_set),
            pred.iter().filter(in_set),
        ));
        for e in gold.iter().chain(pred) {
            if !self.per_type.contains_key(&e.kind) {
                self.per_type.insert(e.kind.clone(), ModeCounts::default());
            }
        }
        for (kind, counts) in &mut self.per_type {
            let of_kind = |e: &&Entity| e.kind == *kind;
            counts.merge(&count_document(
                gold.iter().filter(of_kind),
                pred.iter().filter(of_kind),
            ));
        }
    }

    /// Summed counts over the type set.
    pub fn micro(&self) -> &ModeCounts {
        &self.micro
    }

    /// Summed counts of one type.
    pub fn per_type(&self, kind: &str) -> Option<&ModeCounts> {
        self.per_type.get(kind)
    }

    /// Scores from the summed counts.
    pub fn report(&self) -> EntityReport {
        let per_type: BTreeMap<String, TypeScore> = self
            .per_type
            .iter()
            .map(|(kind, counts)| {
                let score = |mode| ModeScore::new(counts.get(mode), mode, None);
                let strict = score(Mode::Strict);
                let row = TypeScore {
                    precision: strict.precision,
                    recall: strict.recall,
                    f1: strict.f1,
                    tp: strict.cor,
                    fp: strict.act - strict.cor,
                    fn_: strict.pos - strict.cor,
                    in_micro: self.types.contains(kind),
                    strict,
                    exact: score(Mode::Exact),
                    partial: score(Mode::Partial),
                    type_: score(Mode::Type),
                    clitic: score(Mode::Clitic),
                };
                (kind.clone(), row)
            })
            .collect();
        let overall = |mode: Mode| {
            let rows: Vec<Prf> = self
                .types
                .iter()
                .map(|t| {
                    per_type
                        .get(t)
                        .map_or_else(Prf::default, |r| r.mode(mode).prf())
                })
                .collect();
            ModeScore::new(self.micro.get(mode), mode, Some(Prf::mean(&rows)))
        };
        EntityReport {
            strict: overall(Mode::Strict),
            exact: overall(Mode::Exact),
            partial: overall(Mode::Partial),
            type_: overall(Mode::Type),
            clitic: overall(Mode::Clitic),
            per_type,
        }
    }
}

/// One mode's scores, from the counts stored beside them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModeScore {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub cor: u64,
    pub inc: u64,
    pub par: u64,
    pub mis: u64,
    pub spu: u64,
    pub pos: u64,
    pub act: u64,
    /// Unweighted mean over the type set of the per-type scores (micro rows only).
    #[serde(rename = "macro", skip_serializing_if = "Option::is_none")]
    pub macro_: Option<Prf>,
}

impl ModeScore {
    fn new(c: &Counts, mode: Mode, macro_: Option<Prf>) -> Self {
        let Prf {
            precision,
            recall,
            f1,
        } = c.prf(mode);
        Self {
            precision,
            recall,
            f1,
            cor: c.cor,
            inc: c.inc,
            par: c.par,
            mis: c.mis,
            spu: c.spu,
            pos: c.pos(),
            act: c.act(),
            macro_,
        }
    }

    pub fn prf(&self) -> Prf {
        Prf {
            precision: self.precision,
            recall: self.recall,
            f1: self.f1,
        }
    }
}

/// One type's scores: strict at the top (with TP/FP/FN), then every mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeScore {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// Whether the type is in the type set, so counts in micro and macro.
    pub in_micro: bool,
    pub strict: ModeScore,
    pub exact: ModeScore,
    pub partial: ModeScore,
    #[serde(rename = "type")]
    pub type_: ModeScore,
    pub clitic: ModeScore,
}

impl TypeScore {
    pub fn mode(&self, mode: Mode) -> &ModeScore {
        match mode {
            Mode::Strict => &self.strict,
            Mode::Exact => &self.exact,
            Mode::Partial => &self.partial,
            Mode::Type => &self.type_,
            Mode::Clitic => &self.clitic,
        }
    }
}

/// Entity scores over the type set (micro, with macro inside) and per type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityReport {
    pub strict: ModeScore,
    pub exact: ModeScore,
    pub partial: ModeScore,
    #[serde(rename = "type")]
    pub type_: ModeScore,
    pub clitic: ModeScore,
    pub per_type: BTreeMap<String, TypeScore>,
}

impl EntityReport {
    pub fn mode(&self, mode: Mode) -> &ModeScore {
        match mode {
            Mode::Strict => &self.strict,
            Mode::Exact => &self.exact,
            Mode::Partial => &self.partial,
            Mode::Type => &self.type_,
            Mode::Clitic => &self.clitic,
        }
    }
}

#[cfg(test)]
#[path = "entities_tests.rs"]
mod tests;
