//! Validation findings: each names the file, the line, the document and the
//! offsets it is about. They are collected, reported, and scoring goes on.

use std::fmt;

use serde::Serialize;

/// What a validation finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IssueKind {
    /// A JSONL line that is not a record (or not UTF-8).
    Parse,
    /// A document id given twice in one file.
    DuplicateId,
    /// A prediction for a document the gold file does not have.
    UnknownDocument,
    /// A gold record with `error` set.
    ErrorRecord,
    /// `--docs`: the document's text cannot be read, or its id is no file name.
    DocText,
    /// A span whose start is after its end.
    SpanOrder,
    /// A span that ends beyond the document's text.
    SpanRange,
    /// A span whose `text` is not the document's slice (or, without the
    /// documents, not as long as the span).
    TextMismatch,
    /// Two gold entities that share characters.
    OverlappingGold,
    /// A stance label outside the guideline's.
    UnknownLabel,
    /// CoNLL strict mode: a tag that is not B-, I- or O.
    NotIob2,
}

/// One validation finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub kind: IssueKind,
    /// The file the finding is in, as given.
    pub file: String,
    /// 1-based line of the record, when known.
    pub line: Option<usize>,
    /// The document id, when known.
    pub document: Option<String>,
    /// The offending span's offsets, when it is about a span.
    pub start: Option<usize>,
    pub end: Option<usize>,
    /// What is wrong (offsets included).
    pub message: String,
}

impl Issue {
    pub(crate) fn new(kind: IssueKind, file: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            file: file.to_owned(),
            line: None,
            document: None,
            start: None,
            end: None,
            message: message.into(),
        }
    }

    pub(crate) fn at(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    pub(crate) fn doc(mut self, id: &str) -> Self {
        self.document = Some(id.to_owned());
        self
    }

    pub(crate) fn span(mut self, start: usize, end: usize) -> Self {
        self.start = Some(start);
        self.end = Some(end);
        self
    }
}

impl fmt::Display for Issue {
    /// `file:line: document ID: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(doc) = &self.document {
            write!(f, ": document {doc}")?;
        }
        write!(f, ": {}", self.message)
    }
}
