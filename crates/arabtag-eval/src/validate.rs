//! Checks of one record against its document (or, without it, against itself).

use arabtag_records::{CharText, Record, STANCE_LABELS};

use crate::issue::{Issue, IssueKind};

/// Where a record comes from, for the findings' names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    pub file: &'a str,
    pub line: usize,
    pub id: &'a str,
}

impl Origin<'_> {
    fn issue(&self, kind: IssueKind, message: String) -> Issue {
        Issue::new(kind, self.file, message)
            .at(self.line)
            .doc(self.id)
    }
}

/// Checks every span and label of `rec`; `gold` adds the overlap check.
/// Returns the findings (none when the record is valid).
pub(crate) fn check_record(
    origin: Origin<'_>,
    rec: &Record,
    text: Option<&CharText<'_>>,
    gold: bool,
) -> Vec<Issue> {
    let mut issues = Vec::new();
    for e in &rec.entities {
        let what = format!("entity {} [{}, {})", e.kind, e.start, e.end);
        check_span(
            origin,
            &what,
            (e.start, e.end),
            Some(&e.text),
            text,
            &mut issues,
        );
    }
    for s in &rec.segments {
        let what = format!("segment [{}, {})", s.start, s.end);
        check_span(
            origin,
            &what,
            (s.start, s.end),
            s.text.as_deref(),
            text,
            &mut issues,
        );
        for label in &s.labels {
            if !STANCE_LABELS.contains(&label.as_str()) {
                let msg = format!(
                    "{what}: unknown label {label:?} (the guideline's are {})",
                    STANCE_LABELS.join(", ")
                );
                issues.push(
                    origin
                        .issue(IssueKind::UnknownLabel, msg)
                        .span(s.start, s.end),
                );
            }
        }
    }
    if gold {
        check_overlaps(origin, rec, &mut issues);
    }
    issues
}

fn check_span(
    origin: Origin<'_>,
    what: &str,
    (start, end): (usize, usize),
    claimed: Option<&str>,
    text: Option<&CharText<'_>>,
    issues: &mut Vec<Issue>,
) {
    let issue = |kind, msg: String| {
        origin
            .issue(kind, format!("{what}: {msg}"))
            .span(start, end)
    };
    if start > end {
        issues.push(issue(IssueKind::SpanOrder, "start is after end".into()));
        return;
    }
    match text {
        Some(doc) => match doc.slice(start, end) {
            None => issues.push(issue(
                IssueKind::SpanRange,
                format!("ends beyond the text ({} characters)", doc.len()),
            )),
            Some(actual) => {
                if let Some(claimed) = claimed
                    && claimed != actual
                {
                    issues.push(issue(
                        IssueKind::TextMismatch,
                        format!("text {claimed:?} differs from the document's {actual:?}"),
                    ));
                }
            }
        },
        None => {
            if let Some(claimed) = claimed {
                let n = claimed.chars().count();
                if n != end - start {
                    issues.push(issue(
                        IssueKind::TextMismatch,
                        format!(
                            "text {claimed:?} has {n} characters, the span {}",
                            end - start
                        ),
                    ));
                }
            }
        }
    }
}

/// Two gold entities overlap when `max(start) < min(end)`; each entity that
/// overlaps an earlier one (by start) is reported once.
fn check_overlaps(origin: Origin<'_>, rec: &Record, issues: &mut Vec<Issue>) {
    let mut order: Vec<usize> = (0..rec.entities.len())
        .filter(|&i| rec.entities[i].start <= rec.entities[i].end)
        .collect();
    order.sort_by_key(|&i| (rec.entities[i].start, rec.entities[i].end));
    let mut reach: Option<usize> = None;
    for &i in &order {
        let e = &rec.entities[i];
        if let Some(r) = reach {
            let a = &rec.entities[r];
            if e.start.max(a.start) < e.end.min(a.end) {
                let msg = format!(
                    "gold entities {} [{}, {}) and {} [{}, {}) overlap",
                    a.kind, a.start, a.end, e.kind, e.start, e.end
                );
                issues.push(
                    origin
                        .issue(IssueKind::OverlappingGold, msg)
                        .span(e.start, e.end),
                );
            }
        }
        if reach.is_none_or(|r| e.end > rec.entities[r].end) {
            reach = Some(i);
        }
    }
}
