//! The report of an evaluation: JSON through serde, Markdown for people.

use std::fmt::Write as _;

use arabtag_records::{ENTITY_TYPES, STANCE_LABELS};
use serde::Serialize;

use crate::TypeSet;
use crate::entities::{EntityReport, Mode};
use crate::evaluate::Missing;
use crate::issue::Issue;
use crate::metrics::{LabelScore, Prf};
use crate::stance::StanceReport;

/// Everything `arabtag eval --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The type set of micro and macro entity scores.
    pub types: TypeSet,
    /// Gold documents scored (missing ones included, excluded ones not).
    pub scored_documents: usize,
    pub entities: EntityReport,
    pub segments: StanceReport,
    pub documents: StanceReport,
    /// Ids of gold documents without a usable prediction, in gold order.
    pub missing: Vec<String>,
    /// The same with the reason for each.
    pub missing_detail: Vec<Missing>,
    /// Ids of gold documents left out because they failed validation.
    pub excluded: Vec<String>,
    /// Every validation finding.
    pub errors: Vec<Issue>,
}

fn num(x: f64) -> String {
    if x.is_nan() {
        "–".to_owned()
    } else {
        format!("{x:.4}")
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

impl Report {
    /// Entity types in report order: the type set, the guideline's other
    /// types, then any other type seen.
    pub fn type_order(&self) -> Vec<&str> {
        let mut order: Vec<&str> = self.types.iter().map(String::as_str).collect();
        for t in ENTITY_TYPES {
            if !order.contains(&t) && self.entities.per_type.contains_key(t) {
                order.push(t);
            }
        }
        for t in self.entities.per_type.keys() {
            if !order.contains(&t.as_str()) {
                order.push(t);
            }
        }
        order
    }

    /// Markdown tables: entities by mode, per type, segments, documents, then
    /// the missing and excluded documents and the findings.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        self.write_markdown(&mut out);
        out
    }

    fn write_markdown(&self, out: &mut String) {
        let types = self.types.as_slice().join(", ");
        let _ = writeln!(out, "# Evaluation\n");
        let _ = writeln!(
            out,
            "{} gold documents scored; {} missing, {} excluded, {} errors.\n",
            self.scored_documents,
            self.missing.len(),
            self.excluded.len(),
            self.errors.len()
        );

        let _ = writeln!(
            out,
            "## Entities ({types}; micro over the set, macro = mean of its types)\n"
        );
        let _ = writeln!(
            out,
            "| mode | P | R | F1 | macro P | macro R | macro F1 | COR | INC | PAR | MIS | SPU | POS | ACT |"
        );
        let _ = writeln!(out, "|---|{}", "--:|".repeat(13));
        for mode in Mode::ALL {
            let s = self.entities.mode(mode);
            let m = s.macro_.unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                mode.name(),
                num(s.precision),
                num(s.recall),
                num(s.f1),
                num(m.precision),
                num(m.recall),
                num(m.f1),
                s.cor,
                s.inc,
                s.par,
                s.mis,
                s.spu,
                s.pos,
                s.act
            );
        }

        let _ = writeln!(out, "\n## Entities per type (strict)\n");
        let _ = writeln!(out, "| type | P | R | F1 | TP | FP | FN | in micro |");
        let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|---|");
        let order = self.type_order();
        for t in &order {
            if let Some(r) = self.entities.per_type.get(*t) {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    cell(t),
                    num(r.precision),
                    num(r.recall),
                    num(r.f1),
                    r.tp,
                    r.fp,
                    r.fn_,
                    if r.in_micro { "yes" } else { "no" }
                );
            }
        }

        let _ = writeln!(out, "\n## Entities per type, F1 by mode\n");
        let _ = writeln!(out, "| type | strict | exact | partial | type | clitic |");
        let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
        for t in &order {
            if let Some(r) = self.entities.per_type.get(*t) {
                let f: Vec<String> = Mode::ALL.iter().map(|&m| num(r.mode(m).f1)).collect();
                let _ = writeln!(out, "| {} | {} |", cell(t), f.join(" | "));
            }
        }

        let _ = writeln!(
            out,
            "\n## Segments ({} gold segments, each paired with the prediction overlapping it most)\n",
            self.segments.units
        );
        stance_table(out, &self.segments);
        let _ = writeln!(
            out,
            "\n## Documents ({}, union of segment labels)\n",
            self.documents.units
        );
        stance_table(out, &self.documents);

        if !self.missing_detail.is_empty() {
            let _ = writeln!(
                out,
                "\n## Missing documents ({}, scored as all missed)\n",
                self.missing_detail.len()
            );
            for m in &self.missing_detail {
                let _ = writeln!(out, "- `{}`: {}", m.id, m.reason);
            }
        }
        if !self.excluded.is_empty() {
            let _ = writeln!(
                out,
                "\n## Excluded gold documents ({}, failed validation)\n",
                self.excluded.len()
            );
            for id in &self.excluded {
                let _ = writeln!(out, "- `{id}`");
            }
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\n## Errors ({})\n", self.errors.len());
            for e in &self.errors {
                let _ = writeln!(out, "- {}", cell(&e.to_string()));
            }
        }
    }
}

fn stance_table(out: &mut String, r: &StanceReport) {
    let _ = writeln!(out, "| label | P | R | F1 | TP | FP | FN |");
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|");
    let row = |out: &mut String, name: &str, s: &LabelScore| {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            num(s.precision),
            num(s.recall),
            num(s.f1),
            s.tp,
            s.fp,
            s.fn_
        );
    };
    for label in STANCE_LABELS {
        if let Some(s) = r.per_label.get(label) {
            row(out, label, s);
        }
    }
    row(out, "micro", &r.micro);
    let Prf {
        precision,
        recall,
        f1,
    } = r.macro_;
    let _ = writeln!(
        out,
        "| macro | {} | {} | {} | | | |",
        num(precision),
        num(recall),
        num(f1)
    );
}
