//! `arabtag._arabtag`: the Python extension module behind the `arabtag`
//! package (`python/arabtag/__init__.py` re-exports it; the type stubs are
//! `python/arabtag/_arabtag.pyi`).
//!
//! - `Tagger(config_path=None, threads=None, batch_size=16, offline=False)`
//!   loads a model config once; `Tagger.tag(docs)` gives the records
//!   `arabtag tag` writes, as dicts (the same JSON, parsed by Python's
//!   `json`), one per document in order, an error record for a document
//!   that cannot be tagged. The GIL is released while tagging; the work
//!   runs on the tagger's own thread pool.
//! - `evaluate(gold, pred, docs=None, types=None)` gives the object
//!   `arabtag eval --json` prints.
//!
//! Failures that stop a call (a missing or wrong config, unreadable gold)
//! raise `ArabtagError` (`FileNotFoundError` for a missing config file)
//! with the CLI's message, the whole chain of causes joined by `: `.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use arabtag_eval::{DEFAULT_TYPES, Docs, TypeSet};
use arabtag_infer::config::ModelConfig;
use arabtag_infer::{TagOptions, Tagger};
use arabtag_records::inputs::{DuplicateIds, Input};
use arabtag_records::{Document, Record, error_chain};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyMapping, PyString};

create_exception!(
    _arabtag,
    ArabtagError,
    PyException,
    "A model, a config or an input that arabtag cannot use; the message is the CLI's."
);

/// Documents handed to the model at a time (as `arabtag tag` does).
const CHUNK: usize = 32;

/// The `ARABTAG_MODEL` variable, as the CLI reads it.
const MODEL_VAR: &str = "ARABTAG_MODEL";

fn arabtag_error(err: &(dyn std::error::Error + 'static)) -> PyErr {
    ArabtagError::new_err(error_chain(err))
}

/// A loaded model and the thread pool it runs on.
#[pyclass(module = "arabtag._arabtag", name = "Tagger", frozen)]
struct PyTagger {
    tagger: Tagger,
    pool: rayon::ThreadPool,
    config: PathBuf,
}

impl std::fmt::Debug for PyTagger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tagger")
            .field("config", &self.config)
            .field("threads", &self.pool.current_num_threads())
            .finish_non_exhaustive()
    }
}

/// The config to load: `config_path`, else `ARABTAG_MODEL`; refused with
/// the CLI's message when there is no such file.
fn config_path(given: Option<PathBuf>) -> PyResult<PathBuf> {
    let path = match given.or_else(|| std::env::var_os(MODEL_VAR).map(PathBuf::from)) {
        Some(path) => path,
        None => {
            return Err(ArabtagError::new_err(format!(
                "no model config: pass config_path or set {MODEL_VAR}"
            )));
        }
    };
    if !path.exists() {
        return Err(PyFileNotFoundError::new_err(format!(
            "model config {}: no such file (a relative path counts from the working folder \
             {}); pass config_path or set {MODEL_VAR}",
            path.display(),
            std::env::current_dir().map_or_else(|_| "?".to_owned(), |d| d.display().to_string())
        )));
    }
    Ok(path)
}

fn load(path: &Path, batch_size: usize, offline: bool) -> Result<Tagger, String> {
    let model = ModelConfig::verified(path, offline)
        .map_err(|e| format!("model config {}: {}", path.display(), error_chain(&e)))?;
    Tagger::load(
        &model,
        TagOptions {
            batch_size,
            ..TagOptions::default()
        },
    )
    .map_err(|e| {
        format!(
            "cannot load the model of {}: {}",
            path.display(),
            error_chain(&e)
        )
    })
}

/// One item of `docs`: a string (its index is its id) or a mapping with
/// string `id` and `text`; anything else is an error record.
fn document(index: usize, item: &Bound<'_, PyAny>) -> Input {
    let error = |id: String, message: String| Input::Error { id, message };
    if item.is_instance_of::<PyString>() {
        return match item.extract::<String>() {
            Ok(text) => Input::Doc(Document {
                id: index.to_string(),
                text,
            }),
            Err(e) => error(index.to_string(), format!("docs[{index}]: {e}")),
        };
    }
    let Ok(mapping) = item.cast::<PyMapping>() else {
        let kind = item
            .get_type()
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        return error(
            index.to_string(),
            format!("docs[{index}]: expected a str or a {{\"id\", \"text\"}} mapping, got {kind}"),
        );
    };
    let field = |key: &str| -> Result<String, String> {
        match mapping.get_item(key) {
            Ok(value) => value
                .extract::<String>()
                .map_err(|_| format!("docs[{index}]: `{key}` is not a string")),
            Err(_) => Err(format!("docs[{index}]: missing field `{key}`")),
        }
    };
    let id = match field("id") {
        Ok(id) if id.trim().is_empty() => {
            return error(
                index.to_string(),
                format!("docs[{index}]: `id` is empty; give each document an id"),
            );
        }
        Ok(id) => id,
        Err(message) => return error(index.to_string(), message),
    };
    match field("text") {
        Ok(text) => Input::Doc(Document { id, text }),
        Err(message) => error(id, message),
    }
}

/// Records as Python objects: serialised as `arabtag tag` writes them and
/// parsed by Python's `json`, so that they equal the CLI's records read
/// with `json.loads`.
fn to_python<'py, T: serde::Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| arabtag_error(&e))?;
    py.import("json")?.call_method1("loads", (text,))
}

#[pymethods]
impl PyTagger {
    /// Loads the model config at `config_path` (else `$ARABTAG_MODEL`),
    /// every file checked against its sha256. `threads`: the threads this
    /// tagger's work runs on (default: every core, or `RAYON_NUM_THREADS`);
    /// `batch_size`: windows or segments per encoder call; `offline`:
    /// never touch the network (also `HF_HUB_OFFLINE=1`).
    #[new]
    #[pyo3(signature = (config_path=None, threads=None, batch_size=16, offline=false))]
    fn new(
        py: Python<'_>,
        config_path: Option<PathBuf>,
        threads: Option<usize>,
        batch_size: usize,
        offline: bool,
    ) -> PyResult<Self> {
        if threads == Some(0) {
            return Err(PyValueError::new_err(
                "threads must be at least 1 (leave it out to use every core)",
            ));
        }
        if batch_size == 0 {
            return Err(PyValueError::new_err("batch_size must be at least 1"));
        }
        let config = self::config_path(config_path)?;
        let mut pool = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("arabtag-{i}"));
        if let Some(n) = threads {
            pool = pool.num_threads(n);
        }
        let pool = pool.build().map_err(|e| arabtag_error(&e))?;
        let tagger = py
            .detach(|| load(&config, batch_size, offline))
            .map_err(ArabtagError::new_err)?;
        Ok(Self {
            tagger,
            pool,
            config,
        })
    }

    /// Tags `docs` (strings, whose index is their id, or `{"id", "text"}`
    /// mappings): one record per document, in order, equal to what
    /// `arabtag tag` writes for it. A document that cannot be tagged (not a
    /// string, no `id`, a repeated id, a failure in the model) gets an
    /// error record `{"id", "error"}`; the others are tagged.
    fn tag<'py>(&self, py: Python<'py>, docs: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let records = self.records(py, docs)?;
        let out = PyList::empty(py);
        for record in &records {
            out.append(to_python(py, record)?)?;
        }
        Ok(out)
    }

    /// As [`Self::tag`], but each record as the JSON line `arabtag tag`
    /// writes (no line break): the CLI's bytes, for writing JSONL or a
    /// string column.
    fn tag_jsonl(&self, py: Python<'_>, docs: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let records = self.records(py, docs)?;
        records
            .iter()
            .map(|r| serde_json::to_string(r).map_err(|e| arabtag_error(&e)))
            .collect()
    }

    /// The model config this tagger loaded.
    #[getter]
    fn config_path(&self) -> String {
        self.config.display().to_string()
    }

    /// The threads this tagger's work runs on.
    #[getter]
    fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    fn __repr__(&self) -> String {
        format!(
            "Tagger({:?}, threads={})",
            self.config.display().to_string(),
            self.pool.current_num_threads()
        )
    }
}

impl PyTagger {
    /// The records of `docs` (see `tag`), tagged without the GIL.
    fn records(&self, py: Python<'_>, docs: &Bound<'_, PyAny>) -> PyResult<Vec<Record>> {
        if docs.is_instance_of::<PyString>() || docs.is_instance_of::<PyDict>() {
            return Err(PyTypeError::new_err(
                "docs: expected a list of documents (str or {\"id\", \"text\"}), not one document",
            ));
        }
        let mut ids = DuplicateIds::new();
        let mut inputs = Vec::new();
        for (index, item) in docs.try_iter()?.enumerate() {
            inputs.push(ids.check(document(index, &item?)));
        }
        py.detach(|| self.pool.install(|| tag_inputs(&self.tagger, inputs)))
    }
}

/// Tags the documents among `inputs` in chunks (as `arabtag tag` does);
/// one record per input, in order.
fn tag_inputs(tagger: &Tagger, inputs: Vec<Input>) -> PyResult<Vec<Record>> {
    let mut records = Vec::with_capacity(inputs.len());
    let mut inputs = inputs.into_iter().peekable();
    while inputs.peek().is_some() {
        let chunk: Vec<Input> = inputs.by_ref().take(CHUNK).collect();
        let tagged = tagger
            .tag_inputs(chunk, None)
            .map_err(|e| arabtag_error(&e))?;
        records.extend(tagged.into_iter().map(|t| t.record));
    }
    Ok(records)
}

/// Gold or predictions: a JSONL file's path, or records (dicts) in memory.
fn record_file(what: &str, value: &Bound<'_, PyAny>) -> PyResult<arabtag_eval::RecordFile> {
    if let Ok(path) = value.extract::<PathBuf>() {
        return arabtag_eval::RecordFile::open(&path).map_err(|e| arabtag_error(&e));
    }
    let dumps = value.py().import("json")?.getattr("dumps")?;
    let mut lines = String::new();
    for item in value.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what}: expected a JSONL file's path or a list of records"
        ))
    })? {
        let line: String = dumps.call1((item?,))?.extract()?;
        lines.push_str(&line);
        lines.push('\n');
    }
    Ok(arabtag_eval::RecordFile::from_reader(
        format!("<{what}>"),
        Cursor::new(lines.into_bytes()),
    ))
}

/// Scores `pred` against `gold` as `arabtag eval --json` does and returns
/// that object. `gold`, `pred`: a JSONL file's path or a list of records;
/// `docs`: the documents' texts, a folder of `<id>.txt` files or a mapping
/// id → text (every span is checked against them); `types`: the entity
/// types of the micro and macro scores. Problems in the records are listed
/// under `"errors"` and the valid rest is scored, as the CLI does.
#[pyfunction]
#[pyo3(signature = (gold, pred, docs=None, types=None))]
fn evaluate<'py>(
    py: Python<'py>,
    gold: &Bound<'py, PyAny>,
    pred: &Bound<'py, PyAny>,
    docs: Option<&Bound<'py, PyAny>>,
    types: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyAny>> {
    let types = match types {
        Some(t) => TypeSet::new(&t),
        None => TypeSet::new(DEFAULT_TYPES),
    }
    .map_err(|e| PyValueError::new_err(format!("types: {}", error_chain(&e))))?;
    let docs = match docs {
        None => Docs::None,
        Some(d) if d.is_none() => Docs::None,
        Some(d) => {
            if let Ok(dir) = d.extract::<PathBuf>() {
                if !dir.is_dir() {
                    return Err(ArabtagError::new_err(format!(
                        "docs {}: not a directory",
                        dir.display()
                    )));
                }
                Docs::Dir(dir)
            } else {
                let texts: BTreeMap<String, String> = d.extract().map_err(|_| {
                    PyTypeError::new_err("docs: expected a folder's path or a mapping id -> text")
                })?;
                Docs::Memory(texts)
            }
        }
    };
    let gold = record_file("gold", gold)?;
    let pred = record_file("pred", pred)?;
    let evaluation = py.detach(|| arabtag_eval::evaluate(&gold, &pred, &docs, &types));
    to_python(py, &evaluation.report)
}

#[pymodule]
fn _arabtag(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTagger>()?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add("ArabtagError", m.py().get_type::<ArabtagError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
