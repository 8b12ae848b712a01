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
    /// By extension: `.jsonl`/`.json` are JSONL, anything else is text;
    /// standard input is text.
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
            match text_files(path) {
                Ok(files) => {
                    for file in files {
                        let id = folder_id(path, &file);
                        out.push(read_text_file(&file, id));
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
        InputFormat::Auto => matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("jsonl" | "json")
        ),
    }
}

/// A text file's id: its name without the `.txt` extension.
fn file_id(path: &Path) -> String {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    name.strip_suffix(".txt").unwrap_or(&name).to_string()
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
    joined.strip_suffix(".txt").unwrap_or(&joined).to_string()
}

/// The `.txt` files below `dir`, recursively, sorted by path.
fn text_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "txt") {
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
        Ok(text) => Input::Doc(Document { id, text }),
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
    if format == InputFormat::Jsonl {
        read_jsonl(Path::new("<stdin>"), &bytes[..])
    } else {
        vec![from_bytes(STDIN_ID.to_string(), bytes, "standard input")]
    }
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
                ("sub/c", Some("يريفان")),
                ("j1", Some("أرمينيا")),
                (format!("{more}:3").as_str(), None),
                ("j3", Some("x")),
            ]
        );
        let Input::Error { message, .. } = &got[5] else {
            panic!("{:?}", got[5])
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
