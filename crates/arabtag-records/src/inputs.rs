//! The documents a user gives `arabtag tag` (or a library caller): `.txt` files, folders (recursive),
//! JSONL files of `{"id", "text"}` records, and `-` for standard input.
//!
//! Every input yields documents or error records, in the order given (a
//! folder's files sorted by path), so that nothing a user gave is lost
//! silently: a file that cannot be read, a text that is not UTF-8 or a bad
//! JSONL line becomes an [`Input::Error`] naming it, and the others go on.

use std::collections::HashMap;
use std::io::{self, Read};
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

/// A JSONL input line: `id` and `text` are required, other keys are ignored.
#[derive(Debug, Deserialize)]
struct JsonDoc {
    id: String,
    text: String,
}

/// Reads every input in order. Duplicate ids are errors for every document
/// after the first with that id.
pub fn read_inputs(paths: &[PathBuf], format: InputFormat) -> Vec<Input> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            out.extend(read_stdin(format));
        } else if path.is_dir() {
            match folder_files(path) {
                Ok(files) if files.is_empty() => out.push(Input::Error {
                    id: path.display().to_string(),
                    message: format!("{}: the folder holds no files to tag", path.display()),
                }),
                Ok(files) => {
                    for file in files {
                        if is_jsonl(&file, format) {
                            out.extend(read_jsonl_file(&file));
                        } else if format == InputFormat::Txt || has_extension(&file, &["txt"]) {
                            let id = folder_id(path, &file);
                            out.push(read_text_file(&file, id));
                        } else {
                            out.push(Input::Error {
                                id: folder_id(path, &file),
                                message: format!(
                                    "{}: not a .txt or .jsonl file, so not tagged; rename it, or \
                                     pass it by name (or --input-format txt) to tag it as text",
                                    file.display()
                                ),
                            });
                        }
                    }
                }
                Err(e) => out.push(Input::Error {
                    id: path.display().to_string(),
                    message: format!("{}: cannot list the folder: {e}", path.display()),
                }),
            }
        } else if is_jsonl(path, format) {
            out.extend(read_jsonl_file(path));
        } else {
            let id = file_id(path);
            out.push(read_text_file(path, id));
        }
    }
    mark_duplicates(out)
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

fn read_stdin(format: InputFormat) -> Vec<Input> {
    let mut bytes = Vec::new();
    if let Err(e) = io::stdin().lock().read_to_end(&mut bytes) {
        return vec![Input::Error {
            id: STDIN_ID.to_string(),
            message: format!("standard input: cannot read: {e}"),
        }];
    }
    if format == InputFormat::Jsonl || (format == InputFormat::Auto && looks_like_jsonl(&bytes)) {
        read_jsonl(Path::new("<stdin>"), &bytes[..])
    } else {
        vec![from_bytes(STDIN_ID.to_string(), bytes, "standard input")]
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

fn read_jsonl_file(path: &Path) -> Vec<Input> {
    match std::fs::File::open(path) {
        Ok(file) => read_jsonl(path, io::BufReader::new(file)),
        Err(e) => vec![Input::Error {
            id: path.display().to_string(),
            message: format!("{}: cannot open: {e}", path.display()),
        }],
    }
}

fn read_jsonl(path: &Path, reader: impl io::BufRead) -> Vec<Input> {
    JsonlReader::<_, JsonDoc>::new(path, reader)
        .map(|item| match item {
            Ok((line, doc)) if doc.id.trim().is_empty() => Input::Error {
                id: format!("{}:{line}", path.display()),
                message: format!(
                    "{}:{line}: `id` is empty; give each document an id",
                    path.display()
                ),
            },
            Ok((_, doc)) => Input::Doc(Document {
                id: doc.id,
                text: doc.text,
            }),
            Err(e) => Input::Error {
                id: e.line().map_or_else(
                    || path.display().to_string(),
                    |line| format!("{}:{line}", path.display()),
                ),
                message: error_chain(&e),
            },
        })
        .collect()
}

fn mark_duplicates(inputs: Vec<Input>) -> Vec<Input> {
    let mut first: HashMap<String, usize> = HashMap::new();
    inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| match input {
            Input::Doc(doc) => match first.get(&doc.id) {
                Some(&j) => Input::Error {
                    message: format!(
                        "duplicate document id `{}` (input {} has it already); give each document its own id",
                        doc.id,
                        j + 1
                    ),
                    id: doc.id,
                },
                None => {
                    first.insert(doc.id.clone(), i);
                    Input::Doc(doc)
                }
            },
            err => err,
        })
        .collect()
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
