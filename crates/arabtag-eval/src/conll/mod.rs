//! CoNLL mode: entity scores of token/tag files, as seqeval computes them.
//!
//! A file holds one `token TAG` a line (white-space separated; the first column
//! is the token, the last the tag), a blank line between sentences. A run of
//! blank lines is one boundary (an empty sentence holds no chunk in seqeval
//! either) and a missing final blank line is fine. Gold and prediction must
//! have the same sentences of the same tokens; a difference is an error naming
//! file and line.
//!
//! Both of seqeval's modes are scored (see [`seqeval`]): the default,
//! conlleval-like one, and `mode='strict', scheme=IOB2`.

pub mod seqeval;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::EvalError;
use crate::issue::{Issue, IssueKind};
pub use seqeval::{Row, Scores, TypeRow};

/// A token with its tag and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub tag: String,
    pub line: usize,
}

/// Whether `line` is a comment, as CoNLL-U writes them and `arabtag tag
/// --format conll` marks documents: `# key = value` (`# id = …`,
/// `# error = …`). Such lines are skipped.
pub fn is_comment(line: &str) -> bool {
    line.starts_with("# ") && line.contains(" = ")
}

/// A CoNLL file: its sentences, none of them empty.
#[derive(Debug, Clone)]
pub struct ConllFile {
    pub path: PathBuf,
    pub sentences: Vec<Vec<Token>>,
}

impl ConllFile {
    /// Reads `path` as UTF-8.
    pub fn read(path: &Path) -> Result<Self, EvalError> {
        let text = fs::read_to_string(path).map_err(|source| EvalError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text`; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, EvalError> {
        let mut sentences = Vec::new();
        let mut current = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if is_comment(line) {
                continue;
            }
            let mut cols = line.split_whitespace();
            let Some(first) = cols.next() else {
                if !current.is_empty() {
                    sentences.push(std::mem::take(&mut current));
                }
                continue;
            };
            let Some(last) = cols.next_back() else {
                return Err(EvalError::ConllLine {
                    path: path.to_owned(),
                    line: i + 1,
                });
            };
            current.push(Token {
                text: first.to_owned(),
                tag: last.to_owned(),
                line: i + 1,
            });
        }
        if !current.is_empty() {
            sentences.push(current);
        }
        Ok(Self {
            path: path.to_owned(),
            sentences,
        })
    }

    pub fn tokens(&self) -> usize {
        self.sentences.iter().map(Vec::len).sum()
    }

    fn tags(&self) -> Vec<Vec<&str>> {
        self.sentences
            .iter()
            .map(|s| s.iter().map(|t| t.tag.as_str()).collect())
            .collect()
    }
}

/// Checks that `pred` has the sentences and tokens of `gold`.
pub fn align(gold: &ConllFile, pred: &ConllFile) -> Result<(), EvalError> {
    for (n, (g, p)) in gold.sentences.iter().zip(&pred.sentences).enumerate() {
        let line = |s: &[Token]| s.first().map_or(0, |t| t.line);
        if g.len() != p.len() {
            return Err(EvalError::ConllSentenceLength {
                gold: gold.path.clone(),
                gold_line: line(g),
                gold_len: g.len(),
                pred: pred.path.clone(),
                pred_line: line(p),
                pred_len: p.len(),
                sentence: n + 1,
            });
        }
        if let Some((gt, pt)) = g.iter().zip(p).find(|(a, b)| a.text != b.text) {
            return Err(EvalError::ConllToken {
                gold: gold.path.clone(),
                gold_line: gt.line,
                gold_token: gt.text.clone(),
                pred: pred.path.clone(),
                pred_line: pt.line,
                pred_token: pt.text.clone(),
            });
        }
    }
    if gold.sentences.len() != pred.sentences.len() {
        return Err(EvalError::ConllSentences {
            gold: gold.path.clone(),
            gold_count: gold.sentences.len(),
            pred: pred.path.clone(),
            pred_count: pred.sentences.len(),
        });
    }
    Ok(())
}

/// Scores of both modes. `strict` is `None` when a tag is not IOB2 (the
/// finding is in `errors`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConllReport {
    pub sentences: usize,
    pub tokens: usize,
    /// seqeval's default mode (conlleval-like).
    pub default: Scores,
    /// seqeval's `mode='strict', scheme=IOB2`.
    pub strict: Option<Scores>,
    pub errors: Vec<Issue>,
}

/// Reads, aligns and scores two files.
pub fn evaluate_files(gold: &Path, pred: &Path) -> Result<ConllReport, EvalError> {
    let gold = ConllFile::read(gold)?;
    let pred = ConllFile::read(pred)?;
    evaluate(&gold, &pred)
}

/// Aligns and scores two parsed files.
pub fn evaluate(gold: &ConllFile, pred: &ConllFile) -> Result<ConllReport, EvalError> {
    align(gold, pred)?;
    let (g, p) = (gold.tags(), pred.tags());
    let default =
        seqeval::classification(&seqeval::default_chunks(&g), &seqeval::default_chunks(&p));
    let mut errors = Vec::new();
    let strict = match (seqeval::strict_chunks(&g), seqeval::strict_chunks(&p)) {
        (Ok(g), Ok(p)) => Some(seqeval::classification(&g, &p)),
        (Err((s, i)), _) => {
            errors.push(not_iob2(gold, s, i));
            None
        }
        (_, Err((s, i))) => {
            errors.push(not_iob2(pred, s, i));
            None
        }
    };
    Ok(ConllReport {
        sentences: gold.sentences.len(),
        tokens: gold.tokens(),
        default,
        strict,
        errors,
    })
}

fn not_iob2(file: &ConllFile, sentence: usize, index: usize) -> Issue {
    let name = file.path.display().to_string();
    let token = file.sentences.get(sentence).and_then(|s| s.get(index));
    let tag = token.map_or("", |t| t.tag.as_str());
    let mut issue = Issue::new(
        IssueKind::NotIob2,
        &name,
        format!(
            "tag {tag:?} is not IOB2; strict mode takes B-, I- and O tags only, as seqeval does (no strict scores)"
        ),
    );
    issue.line = token.map(|t| t.line);
    issue
}

fn num(x: f64) -> String {
    if x.is_nan() {
        "–".to_owned()
    } else {
        format!("{x:.4}")
    }
}

fn table(out: &mut String, s: &Scores) {
    let _ = writeln!(out, "| type | P | R | F1 | support |");
    let _ = writeln!(out, "|---|--:|--:|--:|--:|");
    for (kind, r) in &s.per_type {
        let kind = kind.replace('|', "\\|");
        let _ = writeln!(
            out,
            "| {kind} | {} | {} | {} | {} |",
            num(r.precision),
            num(r.recall),
            num(r.f1),
            r.support
        );
    }
    for (name, r) in [
        ("micro avg", &s.micro),
        ("macro avg", &s.macro_),
        ("weighted avg", &s.weighted),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} |",
            num(r.precision),
            num(r.recall),
            num(r.f1),
            r.support
        );
    }
}

impl ConllReport {
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# CoNLL evaluation (seqeval)\n");
        let _ = writeln!(
            out,
            "{} sentences, {} tokens.\n",
            self.sentences, self.tokens
        );
        let _ = writeln!(out, "## Default mode (seqeval's default, conlleval-like)\n");
        table(&mut out, &self.default);
        let _ = writeln!(out, "\n## Strict mode (IOB2)\n");
        match &self.strict {
            Some(s) => table(&mut out, s),
            None => {
                let _ = writeln!(out, "Not scored: the tags are not all IOB2.");
            }
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\n## Errors ({})\n", self.errors.len());
            for e in &self.errors {
                let _ = writeln!(out, "- {e}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
