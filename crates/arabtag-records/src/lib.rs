//! Records shared by the arabtag tagger and scorer.
//!
//! These are the serde types of `ANNOTATION.md`: a [`Document`] to tag, and an
//! annotation [`Record`] holding [`Entity`] and [`Segment`] spans. Every offset
//! is a half-open range of Unicode scalar values (characters) of the original
//! document text, never bytes. [`CharText`] slices a text by such offsets.
//!
//! [`JsonlReader`] and [`JsonlWriter`] read and write one record per line;
//! reading errors name the file and the line. [`inputs`] reads what a user
//! gives to tag (text files, folders, JSONL, standard input) into documents
//! or error records, in order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub mod inputs;
pub mod platt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The entity types of the guideline, in the order reports list them.
pub const ENTITY_TYPES: [&str; 4] = ["PER", "ORG", "LOC", "DATE"];

/// The stance labels of the guideline, in the order reports list them.
pub const STANCE_LABELS: [&str; 3] = ["mediation", "conflict", "energy"];

/// A document to tag: its id and its text, exactly as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    pub text: String,
}

/// A half-open character range `[start, end)` of a document's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// Number of characters covered.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Number of characters two spans share.
    pub fn overlap(&self, other: &Span) -> usize {
        self.end
            .min(other.end)
            .saturating_sub(self.start.max(other.start))
    }
}

/// A named-entity mention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub start: usize,
    pub end: usize,
    /// PER, ORG, LOC or DATE in this project's output; any string is read.
    #[serde(rename = "type")]
    pub kind: String,
    /// Must equal the document's characters `[start, end)`.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

impl Entity {
    pub fn span(&self) -> Span {
        Span::new(self.start, self.end)
    }
}

/// A segment's score: one number, or one per label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Score {
    Single(f64),
    PerLabel(BTreeMap<String, f64>),
}

/// A sentence of a document with its stance labels (possibly none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Optional; when present it must equal the document's slice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<Score>,
}

impl Segment {
    pub fn span(&self) -> Span {
        Span::new(self.start, self.end)
    }
}

/// One line of a gold or prediction file. A record with `error` set says that
/// the document could not be processed; it carries no annotations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    #[serde(default)]
    pub entities: Vec<Entity>,
    #[serde(default)]
    pub segments: Vec<Segment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Record {
    /// An empty annotation for `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            entities: Vec::new(),
            segments: Vec::new(),
            error: None,
        }
    }

    /// An error record: the document `id` yielded no annotation because of `message`.
    pub fn error(id: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: Some(message.into()),
            ..Self::new(id)
        }
    }
}

/// A text indexed by character, for slicing by the offsets of the records.
#[derive(Debug, Clone)]
pub struct CharText<'a> {
    text: &'a str,
    /// Byte offset of every character, plus the text's length at the end.
    bytes: Vec<usize>,
}

impl<'a> CharText<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut bytes: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        bytes.push(text.len());
        Self { text, bytes }
    }

    /// The whole text.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.bytes.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Characters `[start, end)`, or `None` when the range is reversed or out of bounds.
    pub fn slice(&self, start: usize, end: usize) -> Option<&'a str> {
        if start > end || end > self.len() {
            return None;
        }
        Some(&self.text[self.bytes[start]..self.bytes[end]])
    }

    /// Byte offset of character `index` (`index == len()` gives the text's byte length).
    pub fn byte_offset(&self, index: usize) -> Option<usize> {
        self.bytes.get(index).copied()
    }

    /// Character index of a byte offset that falls on a character boundary.
    pub fn char_index(&self, byte: usize) -> Option<usize> {
        self.bytes.binary_search(&byte).ok()
    }
}

/// Errors of reading and writing records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordsError {
    #[error("{}: cannot open", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}: cannot read", path.display())]
    Read {
        path: PathBuf,
        line: usize,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}: not valid UTF-8", path.display())]
    Utf8 {
        path: PathBuf,
        line: usize,
        #[source]
        source: std::str::Utf8Error,
    },
    #[error("{}:{line}: invalid record", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    /// A line that is JSON but not an object (`["id", "text"]`).
    #[error("{}:{line}: not a JSON object (one `{{...}}` record a line)", path.display())]
    NotAnObject { path: PathBuf, line: usize },
    #[error("cannot write a record")]
    Write(#[source] io::Error),
}

impl RecordsError {
    /// The 1-based line the error is on, when it is on one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Read { line, .. }
            | Self::Utf8 { line, .. }
            | Self::Json { line, .. }
            | Self::NotAnObject { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// An error and every cause under it on one line, `: `-separated: what an
/// error record says.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Reads JSON values one per line. Blank lines are skipped; each item is the
/// 1-based line number and the value, or an error naming the file and line.
/// A bad line does not stop the reader: the next call goes on after it.
#[derive(Debug)]
pub struct JsonlReader<R, T> {
    path: PathBuf,
    reader: R,
    line: usize,
    buf: Vec<u8>,
    done: bool,
    _marker: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> JsonlReader<BufReader<File>, T> {
    /// Opens `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RecordsError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| RecordsError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::new(path, BufReader::new(file)))
    }
}

impl<R: BufRead, T: DeserializeOwned> JsonlReader<R, T> {
    /// Reads from `reader`; `path` is the name used in errors.
    pub fn new(path: impl Into<PathBuf>, reader: R) -> Self {
        Self {
            path: path.into(),
            reader,
            line: 0,
            buf: Vec::new(),
            done: false,
            _marker: std::marker::PhantomData,
        }
    }
}

impl<R: BufRead, T: DeserializeOwned> Iterator for JsonlReader<R, T> {
    type Item = Result<(usize, T), RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            self.line += 1;
            let line = self.line;
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    let text = match std::str::from_utf8(&self.buf) {
                        Ok(t) => t,
                        Err(source) => {
                            let path = self.path.clone();
                            return Some(Err(RecordsError::Utf8 { path, line, source }));
                        }
                    };
                    // A byte-order mark before the first record is no content.
                    let text = if line == 1 {
                        text.strip_prefix('\u{feff}').unwrap_or(text)
                    } else {
                        text
                    };
                    if text.trim().is_empty() {
                        continue;
                    }
                    if !text.trim_start().starts_with('{') {
                        // serde reads a struct from an array too: refuse
                        // anything but an object before it can.
                        let path = self.path.clone();
                        return Some(Err(RecordsError::NotAnObject { path, line }));
                    }
                    return Some(
                        serde_json::from_str(text)
                            .map(|v| (line, v))
                            .map_err(|source| RecordsError::Json {
                                path: self.path.clone(),
                                line,
                                source,
                            }),
                    );
                }
                Err(source) => {
                    self.done = true;
                    let path = self.path.clone();
                    return Some(Err(RecordsError::Read { path, line, source }));
                }
            }
        }
        None
    }
}

/// Reads every record of a JSONL file, stopping at the first error.
pub fn read_jsonl<T: DeserializeOwned>(path: impl AsRef<Path>) -> Result<Vec<T>, RecordsError> {
    JsonlReader::open(path)?
        .map(|item| item.map(|(_, value)| value))
        .collect()
}

/// Writes one JSON value per line.
#[derive(Debug)]
pub struct JsonlWriter<W: Write> {
    out: W,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }

    /// Writes `value` as one line. The line is serialised first and handed
    /// to the writer in one `write_all`, so that a buffered writer holds or
    /// flushes whole records only: a run stopped between records leaves no
    /// torn line.
    pub fn write<T: Serialize>(&mut self, value: &T) -> Result<(), RecordsError> {
        let mut line =
            serde_json::to_vec(value).map_err(|e| RecordsError::Write(io::Error::other(e)))?;
        line.push(b'\n');
        self.out.write_all(&line).map_err(RecordsError::Write)
    }

    pub fn flush(&mut self) -> Result<(), RecordsError> {
        self.out.flush().map_err(RecordsError::Write)
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// The underlying writer, for output that is not a record.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLD_LINE: &str = r#"{"id": "000_36d2250b324388a0", "entities": [{"start": 0, "end": 5, "type": "PER", "text": "بوتين"}], "segments": [{"start": 0, "end": 88, "labels": ["mediation"]}]}"#;

    #[test]
    fn reads_the_guideline_example() {
        let rec: Record = serde_json::from_str(GOLD_LINE).unwrap();
        assert_eq!(rec.id, "000_36d2250b324388a0");
        assert_eq!(rec.entities[0].kind, "PER");
        assert_eq!(rec.entities[0].span(), Span::new(0, 5));
        assert_eq!(rec.segments[0].labels, vec!["mediation"]);
        assert_eq!(rec.segments[0].score, None);
        assert_eq!(rec.error, None);
    }

    #[test]
    fn scores_are_optional_and_round_trip() {
        let mut rec: Record = serde_json::from_str(GOLD_LINE).unwrap();
        rec.entities[0].score = Some(0.75);
        rec.segments[0].score = Some(Score::PerLabel(BTreeMap::from([(
            "mediation".to_string(),
            0.5,
        )])));
        let json = serde_json::to_string(&rec).unwrap();
        assert!(json.contains(r#""score":0.75"#), "{json}");
        assert!(json.contains(r#""score":{"mediation":0.5}"#), "{json}");
        assert!(!json.contains("error"), "{json}");
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rec);
        let single: Segment =
            serde_json::from_str(r#"{"start":1,"end":2,"labels":[],"score":0.25}"#).unwrap();
        assert_eq!(single.score, Some(Score::Single(0.25)));
    }

    #[test]
    fn error_records_serialise_without_annotations_lost() {
        let rec = Record::error("doc", "invalid UTF-8 at byte 7");
        let json = serde_json::to_string(&rec).unwrap();
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back.error.as_deref(), Some("invalid UTF-8 at byte 7"));
    }

    #[test]
    fn char_text_slices_by_characters_not_bytes() {
        let t = CharText::new("بوتين في باكو");
        assert_eq!(t.len(), 13);
        assert_eq!(t.slice(0, 5), Some("بوتين"));
        assert_eq!(t.slice(9, 13), Some("باكو"));
        assert_eq!(t.slice(9, 14), None);
        assert_eq!(t.slice(5, 4), None);
        assert_eq!(t.slice(13, 13), Some(""));
        assert_eq!(t.byte_offset(1), Some(2));
        assert_eq!(t.char_index(2), Some(1));
        assert_eq!(t.char_index(3), None);
    }

    #[test]
    fn span_overlap() {
        assert_eq!(Span::new(0, 5).overlap(&Span::new(3, 9)), 2);
        assert_eq!(Span::new(0, 5).overlap(&Span::new(5, 9)), 0);
        assert_eq!(Span::new(4, 6).overlap(&Span::new(0, 9)), 2);
    }

    #[test]
    fn reader_names_file_and_line_and_goes_on() {
        let data = "\n{\"id\":\"a\"}\n{\"id\": 3}\n{\"id\":\"b\",\"entities\":[]}\n";
        let reader = JsonlReader::<_, Record>::new("pred.jsonl", data.as_bytes());
        let items: Vec<_> = reader.collect();
        assert_eq!(items.len(), 3, "the blank line is skipped");
        assert_eq!(items[0].as_ref().unwrap().0, 2);
        let err = items[1].as_ref().unwrap_err();
        assert_eq!(err.line(), Some(3));
        assert!(err.to_string().starts_with("pred.jsonl:3:"), "{err}");
        assert_eq!(items[2].as_ref().unwrap().0, 4);
        assert_eq!(items[2].as_ref().unwrap().1.id, "b");

        let bytes: &[u8] = b"{\"id\":\"a\"}\n\xff\xfe\n{\"id\":\"c\"}";
        let items: Vec<_> = JsonlReader::<_, Record>::new("x.jsonl", bytes).collect();
        assert_eq!(items.len(), 3);
        assert!(matches!(items[1], Err(RecordsError::Utf8 { line: 2, .. })));
        assert_eq!(items[2].as_ref().unwrap().1.id, "c", "no final newline");
    }

    #[test]
    fn missing_field_is_named() {
        let items: Vec<_> =
            JsonlReader::<_, Record>::new("g.jsonl", "{\"entities\":[]}\n".as_bytes()).collect();
        let err = items[0].as_ref().unwrap_err();
        let chain = format!("{err}: {}", std::error::Error::source(err).unwrap());
        assert!(
            chain.contains("g.jsonl:1") && chain.contains("`id`"),
            "{chain}"
        );
    }

    #[test]
    fn writer_round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut w = JsonlWriter::new(File::create(&path).unwrap());
        let rec: Record = serde_json::from_str(GOLD_LINE).unwrap();
        w.write(&rec).unwrap();
        w.write(&Record::new("second")).unwrap();
        w.flush().unwrap();
        let back: Vec<Record> = read_jsonl(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0], rec);
        assert_eq!(back[1].id, "second");
        let err = read_jsonl::<Record>(dir.path().join("missing.jsonl")).unwrap_err();
        assert!(
            err.to_string().contains("missing.jsonl: cannot open"),
            "{err}"
        );
    }
}
