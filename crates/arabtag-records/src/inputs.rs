//! The documents a user gives `arabtag tag` (or a library caller): `.txt` files, folders (recursive),
//! JSONL files of `{"id", "text"}` records, and `-` for standard input.
//!
//! Every input yields documents or error records, in the order given (a
//! folder's files sorted by path), so that nothing a user gave is lost
//! silently: a file that cannot be read, a text that is not UTF-8 or a bad
//! JSONL line becomes an [`Input::Error`] naming it, and the others go on.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};

use crate::{Document, JsonlReader, error_chain};
use serde::Deserialize;

/// The id of the document read from standard input as text.
pub const STDIN_ID: &str = "stdin";

/// How to read an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// By extension, in any case: `.jsonl`/`.json` are JSONL, anything else
    /// named on the command line is text (in a folder, only `.txt` is; other
    /// files there become error records); standard input is JSONL when its
    /// first line is a JSON object with `id` and `text`, else text.
    Auto,
    /// Each file is one document (its id: the file name without `.txt`).
    Txt,
    /// Each line is a `{"id": ..., "text": ...}` record.
    Jsonl,
}

/// One document to tag, or the reason one could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Doc(Document),
    Error { id: String, message: String },
}

impl Input {
    /// The document's id, or the id its error record takes.
    pub fn id(&self) -> &str {
        match self {
            Input::Doc(doc) => &doc.id,
            Input::Error { id, .. } => id,
        }
    }
}

/// A JSONL input line: `id` and `text` are required, other keys are ignored.
#[derive(Debug, Deserialize)]
struct JsonDoc {
    id: String,
    text: String,
}

/// Reads every input in order, all at once: [`inputs`] collected.
pub fn read_inputs(paths: &[PathBuf], format: InputFormat) -> Vec<Input> {
    inputs(paths, format).collect()
}

/// The inputs one by one, in order, read as they are asked for: a folder is
/// listed when reached, a JSONL file or standard input is read a line at a
/// time, a text file when its turn comes. Memory holds the input in hand
/// and the ids seen so far. Duplicate ids are errors for every document
/// after the first with that id.
pub fn inputs(paths: &[PathBuf], format: InputFormat) -> Inputs {
    Inputs {
        pending: paths.iter().cloned().map(Pending::Named).collect(),
        current: None,
        format,
        ids: DuplicateIds::new(),
    }
}

/// The iterator of [`inputs`].
pub struct Inputs {
    pending: VecDeque<Pending>,
    /// The JSONL lines being read (a file's, or standard input's).
    current: Option<Box<dyn Iterator<Item = Input> + Send>>,
    format: InputFormat,
    ids: DuplicateIds,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("pending", &self.pending)
            .field("reading", &self.current.is_some())
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

/// An input still to read.
#[derive(Debug)]
enum Pending {
    /// As the user named it: `-`, a folder or a file.
    Named(PathBuf),
    /// A file found in the folder `root`.
    InFolder { root: PathBuf, file: PathBuf },
}

impl Iterator for Inputs {
    type Item = Input;

    fn next(&mut self) -> Option<Input> {
        let input = self.next_raw()?;
        Some(self.ids.check(input))
    }
}

/// The duplicate-id rule of every input stream: a document whose id an
/// earlier one had becomes an error record naming that input.
#[derive(Debug, Default)]
pub struct DuplicateIds {
    /// Each id and the input number (0-based) that had it first.
    first: HashMap<String, usize>,
    count: usize,
}

impl DuplicateIds {
    /// No ids seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `input`, or an error record when it is a document whose id came
    /// before; counts it either way.
    pub fn check(&mut self, input: Input) -> Input {
        let index = self.count;
        self.count += 1;
        match input {
            Input::Doc(doc) => match self.first.get(&doc.id) {
                Some(&j) => Input::Error {
                    message: format!(
                        "duplicate document id `{}` (input {} has it already); give each document its own id",
                        doc.id,
                        j + 1
                    ),
                    id: doc.id,
                },
                None => {
                    self.first.insert(doc.id.clone(), index);
                    Input::Doc(doc)
                }
            },
            err => err,
        }
    }
}

impl Inputs {
    /// The next input, before duplicate ids are marked.
    fn next_raw(&mut self) -> Option<Input> {
        loop {
            if let Some(lines) = &mut self.current {
                match lines.next() {
                    Some(input) => return Some(input),
                    None => self.current = None,
                }
            }
            match self.pending.pop_front()? {
                Pending::Named(path) if path.as_os_str() == "-" => match read_stdin(self.format) {
                    Stdin::Lines(lines) => self.current = Some(lines),
                    Stdin::One(input) => return Some(input),
                },
                Pending::Named(path) if path.is_dir() => match folder_files(&path) {
                    Ok(files) if files.is_empty() => {
                        return Some(Input::Error {
                            id: path.display().to_string(),
                            message: format!(
                                "{}: the folder holds no files to tag",
                                path.display()
                            ),
                        });
                    }
                    Ok(files) => {
                        for file in files.into_iter().rev() {
                            self.pending.push_front(Pending::InFolder {
                                root: path.clone(),
                                file,
                            });
                        }
                    }
                    Err(e) => {
                        return Some(Input::Error {
                            id: path.display().to_string(),
                            message: format!("{}: cannot list the folder: {e}", path.display()),
                        });
                    }
                },
                Pending::Named(path) => {
                    if is_jsonl(&path, self.format) {
                        self.current = Some(read_jsonl_file(path));
                    } else {
                        let id = file_id(&path);
                        return Some(read_text_file(&path, id));
                    }
                }
                Pending::InFolder { root, file } => {
                    if is_jsonl(&file, self.format) {
                        self.current = Some(read_jsonl_file(file));
                    } else if self.format == InputFormat::Txt || has_extension(&file, &["txt"]) {
                        let id = folder_id(&root, &file);
                        return Some(read_text_file(&file, id));
                    } else {
                        return Some(Input::Error {
                            id: folder_id(&root, &file),
                            message: format!(
                                "{}: not a .txt or .jsonl file, so not tagged; rename it, or \
                                 pass it by name (or --input-format txt) to tag it as text",
                                file.display()
                            ),
                        });
                    }
                }
            }
        }
    }
}

fn is_jsonl(path: &Path, format: InputFormat) -> bool {
    match format {
        InputFormat::Jsonl => true,
        InputFormat::Txt => false,
        InputFormat::Auto => has_extension(path, &["jsonl", "json"]),
    }
}

/// Whether `path`'s extension is one of `extensions` (lower case), in any
/// case.
fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// A text file's id: its name without the `.txt` extension.
fn file_id(path: &Path) -> String {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    strip_txt(&name).to_string()
}

/// `name` without a final `.txt` (in any case).
fn strip_txt(name: &str) -> &str {
    match name.len().checked_sub(4) {
        Some(cut) if name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(".txt") => {
            &name[..cut]
        }
        _ => name,
    }
}

/// A file found in a folder: its path below the folder, `/`-separated,
/// without `.txt` (so `seeds/000_x.txt` under `seeds` is `000_x`).
fn folder_id(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let joined = parts.join("/");
    strip_txt(&joined).to_string()
}

/// Every file below `dir`, recursively, sorted by path.
fn folder_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn read_text_file(path: &Path, id: String) -> Input {
    match std::fs::read(path) {
        Ok(bytes) => from_bytes(id, bytes, &path.display().to_string()),
        Err(e) => Input::Error {
            id,
            message: format!("{}: cannot read: {e}", path.display()),
        },
    }
}

fn from_bytes(id: String, bytes: Vec<u8>, name: &str) -> Input {
    match String::from_utf8(bytes) {
        // A byte-order mark is no content: offsets count from after it.
        Ok(text) => Input::Doc(Document {
            id,
            text: match text.strip_prefix('\u{feff}') {
                Some(rest) => rest.to_owned(),
                None => text,
            },
        }),
        Err(e) => Input::Error {
            id,
            message: format!(
                "{name}: not valid UTF-8 at byte {}",
                e.utf8_error().valid_up_to()
            ),
        },
    }
}

/// Standard input: a stream of JSONL lines, or one text document.
enum Stdin {
    Lines(Box<dyn Iterator<Item = Input> + Send>),
    One(Input),
}

/// Reads standard input up to its first non-blank line to tell JSONL
/// from text (`Auto`); JSONL is then read a line at a time, text whole.
fn read_stdin(format: InputFormat) -> Stdin {
    // `Stdin`, not its lock, so that the lines can be read on another
    // thread (`arabtag tag` reads ahead while it tags).
    let mut stdin = io::BufReader::new(io::stdin());
    let mut head = Vec::new();
    let failed = |e: io::Error| {
        Stdin::One(Input::Error {
            id: STDIN_ID.to_string(),
            message: format!("standard input: cannot read: {e}"),
        })
    };
    if format != InputFormat::Txt {
        loop {
            let start = head.len();
            match stdin.read_until(b'\n', &mut head) {
                Ok(0) => break,
                Ok(_) if head[start..].iter().all(u8::is_ascii_whitespace) => {}
                Ok(_) => break,
                Err(e) => return failed(e),
            }
        }
    }
    if format == InputFormat::Jsonl || (format == InputFormat::Auto && looks_like_jsonl(&head)) {
        let reader = io::BufReader::new(io::Cursor::new(head).chain(stdin));
        Stdin::Lines(read_jsonl(Path::new("<stdin>"), reader))
    } else {
        match stdin.read_to_end(&mut head) {
            Ok(_) => Stdin::One(from_bytes(STDIN_ID.to_string(), head, "standard input")),
            Err(e) => failed(e),
        }
    }
}

/// Whether standard input's first non-blank line is a JSON object with
/// string `id` and `text` (BOM allowed): then it is read as JSONL.
fn looks_like_jsonl(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let Some(first) = bytes
        .split(|&b| b == b'\n')
        .find(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
    else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(first).is_ok_and(|v| {
        v.get("id").is_some_and(serde_json::Value::is_string)
            && v.get("text").is_some_and(serde_json::Value::is_string)
    })
}

fn read_jsonl_file(path: PathBuf) -> Box<dyn Iterator<Item = Input> + Send> {
    match std::fs::File::open(&path) {
        Ok(file) => read_jsonl(&path, io::BufReader::new(file)),
        Err(e) => Box::new(std::iter::once(Input::Error {
            id: path.display().to_string(),
            message: format!("{}: cannot open: {e}", path.display()),
        })),
    }
}

/// The documents of JSONL `reader` (named `path` in errors), a line at a
/// time.
fn read_jsonl(
    path: &Path,
    reader: impl io::BufRead + Send + 'static,
) -> Box<dyn Iterator<Item = Input> + Send> {
    let name = path.display().to_string();
    Box::new(
        JsonlReader::<_, JsonDoc>::new(path, reader).map(move |item| match item {
            Ok((line, doc)) if doc.id.trim().is_empty() => Input::Error {
                id: format!("{name}:{line}"),
                message: format!("{name}:{line}: `id` is empty; give each document an id"),
            },
            Ok((_, doc)) => Input::Doc(Document {
                id: doc.id,
                text: doc.text,
            }),
            Err(e) => Input::Error {
                id: e
                    .line()
                    .map_or_else(|| name.clone(), |line| format!("{name}:{line}")),
                message: error_chain(&e),
            },
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(inputs: &[Input]) -> Vec<(&str, Option<&str>)> {
        inputs
            .iter()
            .map(|i| match i {
                Input::Doc(d) => (d.id.as_str(), Some(d.text.as_str())),
                Input::Error { id, .. } => (id.as_str(), None),
            })
            .collect()
    }

    #[test]
    fn files_folders_and_jsonl_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("corpus/sub")).unwrap();
        std::fs::write(root.join("corpus/b.txt"), "باكو").unwrap();
        std::fs::write(root.join("corpus/a.txt"), "موسكو").unwrap();
        std::fs::write(root.join("corpus/sub/c.txt"), "يريفان").unwrap();
        std::fs::write(root.join("corpus/notes.md"), "not a document").unwrap();
        std::fs::write(root.join("one.txt"), "روسيا").unwrap();
        std::fs::write(
            root.join("more.jsonl"),
            "{\"id\":\"j1\",\"text\":\"أرمينيا\",\"extra\":1}\n\n{\"text\":\"no id\"}\n{\"id\":\"j3\",\"text\":\"x\"}\n",
        )
        .unwrap();
        let got = read_inputs(
            &[
                root.join("one.txt"),
                root.join("corpus"),
                root.join("more.jsonl"),
            ],
            InputFormat::Auto,
        );
        let more = root.join("more.jsonl").display().to_string();
        assert_eq!(
            docs(&got),
            vec![
                ("one", Some("روسيا")),
                ("a", Some("موسكو")),
                ("b", Some("باكو")),
                // Not a .txt: named in an error record, not skipped.
                ("notes.md", None),
                ("sub/c", Some("يريفان")),
                ("j1", Some("أرمينيا")),
                (format!("{more}:3").as_str(), None),
                ("j3", Some("x")),
            ]
        );
        let Input::Error { message, .. } = &got[3] else {
            panic!("{:?}", got[3])
        };
        assert!(message.contains("not a .txt or .jsonl file"), "{message}");
        let Input::Error { message, .. } = &got[6] else {
            panic!("{:?}", got[6])
        };
        assert!(
            message.contains(":3: invalid record") && message.contains("`id`"),
            "{message}"
        );
    }

    #[test]
    fn unreadable_and_invalid_utf8_become_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, b"ok \xff\xfe").unwrap();
        let missing = dir.path().join("missing.txt");
        let got = read_inputs(&[bad.clone(), missing.clone()], InputFormat::Auto);
        let Input::Error { id, message } = &got[0] else {
            panic!("{:?}", got[0])
        };
        assert_eq!(id, "bad");
        assert!(
            message.contains("bad.txt: not valid UTF-8 at byte 3"),
            "{message}"
        );
        let Input::Error { id, message } = &got[1] else {
            panic!("{:?}", got[1])
        };
        assert_eq!(id, "missing");
        assert!(message.contains("missing.txt: cannot read"), "{message}");
    }

    #[test]
    fn duplicate_ids_after_the_first_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("x.jsonl");
        std::fs::write(
            &a,
            "{\"id\":\"d\",\"text\":\"1\"}\n{\"id\":\"d\",\"text\":\"2\"}\n",
        )
        .unwrap();
        let got = read_inputs(&[a], InputFormat::Auto);
        assert_eq!(
            got[0],
            Input::Doc(Document {
                id: "d".into(),
                text: "1".into()
            })
        );
        let Input::Error { id, message } = &got[1] else {
            panic!("{:?}", got[1])
        };
        assert_eq!(id, "d");
        assert!(
            message.contains("duplicate document id `d` (input 1"),
            "{message}"
        );
    }

    #[test]
    fn folders_take_any_case_jsonl_and_say_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("corpus");
        std::fs::create_dir_all(&corpus).unwrap();
        std::fs::write(corpus.join("A.TXT"), "باكو").unwrap();
        std::fs::write(corpus.join("b.JSONL"), "{\"id\":\"j\",\"text\":\"x\"}\n").unwrap();
        let got = read_inputs(std::slice::from_ref(&corpus), InputFormat::Auto);
        assert_eq!(docs(&got), vec![("A", Some("باكو")), ("j", Some("x"))]);
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(empty.join("sub")).unwrap();
        let got = read_inputs(std::slice::from_ref(&empty), InputFormat::Auto);
        let [Input::Error { message, .. }] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert!(message.contains("holds no files to tag"), "{message}");
    }

    #[test]
    fn byte_order_marks_arrays_and_empty_ids() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("t.txt");
        std::fs::write(&text, "\u{feff}باكو").unwrap();
        let lines = dir.path().join("x.jsonl");
        std::fs::write(
            &lines,
            "\u{feff}{\"id\":\"a\",\"text\":\"1\"}\n[\"b\",\"2\"]\n{\"id\":\"\",\"text\":\"3\"}\n{\"id\":\"d\",\"text\":\"4\"}\n",
        )
        .unwrap();
        let got = read_inputs(&[text, lines.clone()], InputFormat::Auto);
        let x = lines.display().to_string();
        assert_eq!(
            docs(&got),
            vec![
                ("t", Some("باكو")),
                ("a", Some("1")),
                (format!("{x}:2").as_str(), None),
                (format!("{x}:3").as_str(), None),
                ("d", Some("4")),
            ]
        );
        let messages: Vec<&str> = got
            .iter()
            .filter_map(|i| match i {
                Input::Error { message, .. } => Some(message.as_str()),
                Input::Doc(_) => None,
            })
            .collect();
        assert!(
            messages[0].contains(":2: not a JSON object"),
            "{messages:?}"
        );
        assert!(messages[1].contains(":3: `id` is empty"), "{messages:?}");
    }

    #[test]
    fn standard_input_is_jsonl_when_its_first_line_is_a_record() {
        assert!(looks_like_jsonl(b"\n{\"id\": \"a\", \"text\": \"b\"}\n"));
        assert!(looks_like_jsonl(
            "\u{feff}{\"id\":\"a\",\"text\":\"b\"}".as_bytes()
        ));
        assert!(!looks_like_jsonl("قال بوتين".as_bytes()));
        assert!(!looks_like_jsonl(b"{\"id\": 1, \"text\": \"b\"}"));
        assert!(!looks_like_jsonl(b"{not json"));
        assert!(!looks_like_jsonl(b""));
    }

    #[test]
    fn format_overrides_the_extension() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("doc.jsonl");
        std::fs::write(&p, "{\"id\":\"d\"}").unwrap();
        let got = read_inputs(std::slice::from_ref(&p), InputFormat::Txt);
        assert_eq!(
            got,
            vec![Input::Doc(Document {
                id: "doc.jsonl".into(),
                text: "{\"id\":\"d\"}".into()
            })]
        );
    }
}
