//! Reading gold and prediction files, validating them, and scoring what is valid.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use arabtag_records::{CharText, JsonlReader, Record, RecordsError};
use serde::Serialize;

use crate::entities::EntityTally;
use crate::issue::{Issue, IssueKind};
use crate::report::Report;
use crate::stance::{self, StanceTally};
use crate::validate::{Origin, check_record};
use crate::{EvalError, TypeSet};

/// The lines of one JSONL file of records, read to the end: each a record with
/// its 1-based line, or the error that line gave.
#[derive(Debug)]
pub struct RecordFile {
    /// The file's name in findings.
    pub name: String,
    pub items: Vec<Result<(usize, Record), RecordsError>>,
}

impl RecordFile {
    /// Reads `path`; only failing to open it is an error (bad lines are kept as findings).
    pub fn open(path: &Path) -> Result<Self, EvalError> {
        Ok(Self {
            name: path.display().to_string(),
            items: JsonlReader::open(path)?.collect(),
        })
    }

    /// Reads records from `reader`, naming it `name`.
    pub fn from_reader(name: impl Into<String>, reader: impl BufRead) -> Self {
        let name = name.into();
        Self {
            items: JsonlReader::new(name.clone(), reader).collect(),
            name,
        }
    }
}

/// Where the documents' texts come from.
#[derive(Debug, Clone, Default)]
pub enum Docs {
    /// No texts: spans are checked against their own `text` only.
    #[default]
    None,
    /// `DIR/<id>.txt`, read as UTF-8 exactly.
    Dir(PathBuf),
    /// Texts by id (tests, callers that hold them already).
    Memory(BTreeMap<String, String>),
}

impl Docs {
    /// The text of `id` (and its file): `Ok(None)` without texts, `Err` with
    /// what went wrong when it cannot be had.
    fn load(&self, id: &str) -> Result<Option<(String, Option<PathBuf>)>, String> {
        match self {
            Docs::None => Ok(None),
            Docs::Memory(texts) => match texts.get(id) {
                Some(t) => Ok(Some((t.clone(), None))),
                None => Err("no text for this document".into()),
            },
            Docs::Dir(dir) => {
                if id.is_empty() || id == "." || id == ".." || id.contains(['/', '\\', '\0']) {
                    return Err(format!(
                        "the id {id:?} is not a file name, so {} cannot hold its text",
                        dir.display()
                    ));
                }
                let path = dir.join(format!("{id}.txt"));
                let bytes =
                    fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let text = String::from_utf8(bytes)
                    .map_err(|e| format!("{} is not UTF-8: {e}", path.display()))?;
                Ok(Some((text, Some(path))))
            }
        }
    }
}

/// A gold document with no usable prediction; it is scored as all missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub id: String,
    pub reason: String,
}

/// A document text file that was read (for provenance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocFile {
    pub id: String,
    pub path: PathBuf,
}

/// The outcome of [`evaluate`]: the report, and the document files it read.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub report: Report,
    pub doc_files: Vec<DocFile>,
}

/// Reads `gold` and `pred` from disk and scores them; see [`evaluate`].
pub fn evaluate_files(
    gold: &Path,
    pred: &Path,
    docs: &Docs,
    types: &TypeSet,
) -> Result<Evaluation, EvalError> {
    let gold = RecordFile::open(gold)?;
    let pred = RecordFile::open(pred)?;
    Ok(evaluate(&gold, &pred, docs, types))
}

/// Validates both files and scores every valid gold document against its
/// prediction. Findings land in the report's `errors`; invalid gold documents
/// are left out (`excluded`), gold documents without a valid prediction count
/// as all missed (`missing`).
pub fn evaluate(gold: &RecordFile, pred: &RecordFile, docs: &Docs, types: &TypeSet) -> Evaluation {
    // Findings in input order: the gold file's by line, then the prediction file's.
    let mut issues = Vec::new();
    let valid_gold = validate_gold(gold, docs, &mut issues);
    issues.sort_by_key(|i| i.line);
    let mut pred_issues = Vec::new();
    let valid_pred = validate_pred(pred, &valid_gold, &gold.name, &mut pred_issues);
    pred_issues.sort_by_key(|i| i.line);
    issues.append(&mut pred_issues);

    let mut entities = EntityTally::new(types.clone());
    let mut segments = StanceTally::default();
    let mut documents = StanceTally::default();
    let mut missing = Vec::new();
    let mut unusable = valid_pred.unusable;
    for g in &valid_gold.kept {
        let id = g.id.as_str();
        let (p_entities, p_segments) = match valid_pred.preds.get(id) {
            Some(p) => (p.entities.as_slice(), p.segments.as_slice()),
            None => {
                let reason = unusable
                    .remove(id)
                    .unwrap_or_else(|| "no prediction".into());
                missing.push(Missing {
                    id: id.to_owned(),
                    reason,
                });
                (&[][..], &[][..])
            }
        };
        entities.add_document(&g.entities, p_entities);
        segments.merge(&stance::count_segments(&g.segments, p_segments));
        documents.merge(&stance::count_document(&g.segments, p_segments));
    }

    Evaluation {
        report: Report {
            types: types.clone(),
            scored_documents: valid_gold.kept.len(),
            entities: entities.report(),
            segments: segments.report(),
            documents: documents.report(),
            missing: missing.iter().map(|m| m.id.clone()).collect(),
            missing_detail: missing,
            excluded: valid_gold.excluded,
            errors: issues,
        },
        doc_files: valid_gold.doc_files,
    }
}

/// The gold file after validation.
struct ValidGold<'a> {
    /// Every id the file gives, valid or not.
    ids: BTreeSet<&'a str>,
    /// The documents to score, in file order.
    kept: Vec<&'a Record>,
    /// Ids left out, in file order.
    excluded: Vec<String>,
    /// The texts read, by id.
    texts: BTreeMap<&'a str, String>,
    doc_files: Vec<DocFile>,
}

fn validate_gold<'a>(gold: &'a RecordFile, docs: &Docs, issues: &mut Vec<Issue>) -> ValidGold<'a> {
    let recs = records(gold, issues);
    let dups = duplicates(gold, &recs, issues);
    let mut out = ValidGold {
        ids: recs.iter().map(|(_, r)| r.id.as_str()).collect(),
        kept: Vec::new(),
        excluded: Vec::new(),
        texts: BTreeMap::new(),
        doc_files: Vec::new(),
    };
    for &(line, rec) in &recs {
        let id = rec.id.as_str();
        if dups.contains(id) {
            if !out.excluded.iter().any(|x| x == id) {
                out.excluded.push(id.to_owned());
            }
            continue;
        }
        let finding = |kind, msg: String| Issue::new(kind, &gold.name, msg).at(line).doc(id);
        if let Some(msg) = &rec.error {
            let msg = format!("a gold record with `error` set ({msg:?})");
            issues.push(finding(IssueKind::ErrorRecord, msg));
            out.excluded.push(id.to_owned());
            continue;
        }
        match docs.load(id) {
            Ok(None) => {}
            Ok(Some((text, path))) => {
                if let Some(path) = path {
                    out.doc_files.push(DocFile {
                        id: id.to_owned(),
                        path,
                    });
                }
                out.texts.insert(id, text);
            }
            Err(msg) => {
                issues.push(finding(IssueKind::DocText, msg));
                out.excluded.push(id.to_owned());
                continue;
            }
        }
        let chars = out.texts.get(id).map(|t| CharText::new(t));
        let origin = Origin {
            file: &gold.name,
            line,
            id,
        };
        let found = check_record(origin, rec, chars.as_ref(), true);
        if found.is_empty() {
            out.kept.push(rec);
        } else {
            issues.extend(found);
            out.excluded.push(id.to_owned());
        }
    }
    out
}

/// The prediction file after validation.
struct ValidPred<'a> {
    /// Valid predictions of the gold documents that are scored.
    preds: BTreeMap<&'a str, &'a Record>,
    /// Why a scored gold document's prediction cannot be used.
    unusable: BTreeMap<&'a str, String>,
}

fn validate_pred<'a>(
    pred: &'a RecordFile,
    gold: &ValidGold<'_>,
    gold_name: &str,
    issues: &mut Vec<Issue>,
) -> ValidPred<'a> {
    let recs = records(pred, issues);
    let dups = duplicates(pred, &recs, issues);
    let kept: BTreeSet<&str> = gold.kept.iter().map(|r| r.id.as_str()).collect();
    let mut out = ValidPred {
        preds: BTreeMap::new(),
        unusable: BTreeMap::new(),
    };
    for &(line, rec) in &recs {
        let id = rec.id.as_str();
        if !gold.ids.contains(id) {
            let msg = format!("a prediction for {id:?}, which is not in {gold_name}");
            let issue = Issue::new(IssueKind::UnknownDocument, &pred.name, msg);
            issues.push(issue.at(line).doc(id));
            continue;
        }
        if !kept.contains(id) {
            continue; // the gold document is excluded; its findings say why
        }
        if dups.contains(id) {
            out.unusable.insert(id, "more than one prediction".into());
            continue;
        }
        if let Some(msg) = &rec.error {
            out.unusable.insert(id, format!("an error record: {msg}"));
            continue;
        }
        let chars = gold.texts.get(id).map(|t| CharText::new(t));
        let origin = Origin {
            file: &pred.name,
            line,
            id,
        };
        let found = check_record(origin, rec, chars.as_ref(), false);
        if found.is_empty() {
            out.preds.insert(id, rec);
        } else {
            issues.extend(found);
            out.unusable.insert(id, "an invalid prediction".into());
        }
    }
    out
}

/// The file's records with their lines; unreadable lines become findings.
fn records<'a>(file: &'a RecordFile, issues: &mut Vec<Issue>) -> Vec<(usize, &'a Record)> {
    let mut out = Vec::new();
    for item in &file.items {
        match item {
            Ok((line, rec)) => out.push((*line, rec)),
            Err(e) => {
                // "path:line: invalid record" without the path and line, which
                // the finding holds, then the causes.
                let head = e.to_string();
                let mut message = match e.line() {
                    Some(line) => head
                        .strip_prefix(&format!("{}:{line}: ", file.name))
                        .unwrap_or(&head)
                        .to_owned(),
                    None => head.clone(),
                };
                let mut cause = std::error::Error::source(e);
                while let Some(c) = cause {
                    message.push_str(": ");
                    message.push_str(&c.to_string());
                    cause = c.source();
                }
                let mut issue = Issue::new(IssueKind::Parse, &file.name, message);
                issue.line = e.line();
                issues.push(issue);
            }
        }
    }
    out
}

/// Ids given more than once; every repeat is a finding.
fn duplicates<'a>(
    file: &RecordFile,
    recs: &[(usize, &'a Record)],
    issues: &mut Vec<Issue>,
) -> BTreeSet<&'a str> {
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dups = BTreeSet::new();
    for &(line, rec) in recs {
        match first.get(rec.id.as_str()) {
            Some(&at) => {
                let msg = format!("the id {:?} is given again (first on line {at})", rec.id);
                issues.push(
                    Issue::new(IssueKind::DuplicateId, &file.name, msg)
                        .at(line)
                        .doc(&rec.id),
                );
                dups.insert(rec.id.as_str());
            }
            None => {
                first.insert(&rec.id, line);
            }
        }
    }
    dups
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
