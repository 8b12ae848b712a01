//! `arabtag eval`: score predictions against gold.
//!
//! ```text
//! arabtag eval --gold G.jsonl --pred P.jsonl [--docs DIR] [--types PER,ORG,LOC] [--json] [--report R.json] [--html OUT.html]
//! arabtag eval --conll --gold GOLD.txt --pred PRED.txt [--json] [--report R.json]
//! ```
//!
//! Markdown tables go to stdout, or one JSON object with `--json`; `--report`
//! also writes that JSON with provenance (sha256 of every input file, the
//! version, the git commit, the type set). Validation errors go to stderr and
//! into the report; the valid rest is still scored, and the exit code is 2.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use arabtag_eval::conll::{self, ConllReport};
use arabtag_eval::{DEFAULT_TYPES, Docs, Evaluation, Issue, TypeSet};
use clap::Args;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Status;
use crate::output;

/// The git commit the binary was built from.
const GIT_COMMIT: &str = env!("ARABTAG_GIT_COMMIT");

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Gold annotations: JSONL records (ANNOTATION.md), or a token/tag file with --conll.
    #[arg(long, value_name = "FILE")]
    pub gold: PathBuf,

    /// Predictions, in the same format as --gold.
    #[arg(long, value_name = "FILE")]
    pub pred: PathBuf,

    /// Directory of the documents' texts (DIR/<id>.txt): every span's text is
    /// checked against the document's characters [start, end).
    #[arg(long, value_name = "DIR", conflicts_with = "conll")]
    pub docs: Option<PathBuf>,

    /// Entity types of the micro and macro scores; other types get per-type rows only.
    #[arg(
        long,
        value_name = "TYPES",
        value_delimiter = ',',
        default_values = DEFAULT_TYPES,
        conflicts_with = "conll"
    )]
    pub types: Vec<String>,

    /// Print one JSON object instead of Markdown tables.
    #[arg(long)]
    pub json: bool,

    /// Also write the JSON report with provenance (inputs' sha256, version, commit) here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Also write an HTML page: every gold document with the prediction
    /// marked against it (correct, missed, spurious, wrong type, wrong
    /// boundary), segment labels compared, under the score tables.
    #[arg(long, value_name = "FILE", requires = "docs", conflicts_with = "conll")]
    pub html: Option<PathBuf>,

    /// Score CoNLL files (token and tag a line, blank line between sentences)
    /// as seqeval does, in its default and strict IOB2 modes.
    #[arg(long)]
    pub conll: bool,
}

pub fn run(args: &EvalArgs) -> Result<Status> {
    if args.conll {
        run_conll(args)
    } else {
        run_records(args)
    }
}

fn run_records(args: &EvalArgs) -> Result<Status> {
    let types = TypeSet::new(&args.types).context("--types")?;
    let docs = match &args.docs {
        Some(dir) => {
            anyhow::ensure!(dir.is_dir(), "--docs {}: not a directory", dir.display());
            Docs::Dir(dir.clone())
        }
        None => Docs::None,
    };
    let Evaluation { report, doc_files } =
        arabtag_eval::evaluate_files(&args.gold, &args.pred, &docs, &types)
            .context("cannot score")?;
    report_issues(&report.errors);

    if let Some(path) = &args.report {
        let mut provenance = Provenance::new(args)?;
        provenance.types = Some(types.clone());
        for doc in &doc_files {
            provenance.docs.push(DocHash {
                id: doc.id.clone(),
                input: InputHash::of(&doc.path)?,
            });
        }
        write_report(path, &report, &provenance)?;
    }
    if let (Some(path), Some(dir)) = (&args.html, &args.docs) {
        let markdown = report.to_markdown();
        write_html(
            path,
            (&args.gold, &args.pred),
            dir,
            types.as_slice(),
            &markdown,
        )?;
    }
    let text = if args.json {
        json(&report)?
    } else {
        report.to_markdown()
    };
    output::stdout(&text).context("cannot write to stdout")?;
    Ok(status(&report.errors))
}

/// The eval view of `gold` against `pred` (their valid records; the
/// findings are in the report above it) with the texts of `dir`.
fn write_html(
    path: &Path,
    (gold, pred): (&Path, &Path),
    dir: &Path,
    types: &[String],
    markdown: &str,
) -> Result<()> {
    let read = |p: &Path| -> Result<Vec<arabtag_records::Record>> {
        Ok(arabtag_records::JsonlReader::open(p)
            .with_context(|| format!("{}: cannot read", p.display()))?
            .filter_map(|item| item.ok().map(|(_, record)| record))
            .collect())
    };
    let gold = read(gold)?;
    let pred: std::collections::HashMap<String, arabtag_records::Record> =
        read(pred)?.into_iter().map(|r| (r.id.clone(), r)).collect();
    let text = |id: &str| fs::read_to_string(dir.join(format!("{id}.txt"))).ok();
    let page = crate::html::eval_page(markdown, types, &gold, &pred, &text);
    fs::write(path, page).with_context(|| format!("{}: cannot write", path.display()))
}

fn run_conll(args: &EvalArgs) -> Result<Status> {
    let report: ConllReport =
        conll::evaluate_files(&args.gold, &args.pred).context("cannot score CoNLL files")?;
    report_issues(&report.errors);
    if let Some(path) = &args.report {
        write_report(path, &report, &Provenance::new(args)?)?;
    }
    let text = if args.json {
        json(&report)?
    } else {
        report.to_markdown()
    };
    output::stdout(&text).context("cannot write to stdout")?;
    Ok(status(&report.errors))
}

fn report_issues(issues: &[Issue]) {
    for issue in issues {
        output::stderr_line(&format!("error: {issue}"));
    }
    if !issues.is_empty() {
        output::stderr_line(&format!(
            "arabtag eval: {} errors; the scores cover what is valid",
            issues.len()
        ));
    }
}

fn status(issues: &[Issue]) -> Status {
    if issues.is_empty() {
        Status::Ok
    } else {
        Status::Errors
    }
}

fn json<T: Serialize>(value: &T) -> Result<String> {
    let mut s = serde_json::to_string_pretty(value).context("cannot serialise the report")?;
    s.push('\n');
    Ok(s)
}

/// A file and its sha256.
#[derive(Debug, Serialize)]
struct InputHash {
    path: String,
    sha256: String,
}

impl InputHash {
    fn of(path: &Path) -> Result<Self> {
        let mut file =
            File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let sha256 = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            path: path.display().to_string(),
            sha256,
        })
    }
}

#[derive(Debug, Serialize)]
struct DocHash {
    id: String,
    #[serde(flatten)]
    input: InputHash,
}

/// What made a report.
#[derive(Debug, Serialize)]
struct Provenance {
    tool: &'static str,
    version: &'static str,
    git_commit: &'static str,
    /// "records" or "conll".
    mode: &'static str,
    gold: InputHash,
    pred: InputHash,
    /// Each document text read (--docs), in gold order.
    docs: Vec<DocHash>,
    #[serde(skip_serializing_if = "Option::is_none")]
    types: Option<TypeSet>,
}

impl Provenance {
    fn new(args: &EvalArgs) -> Result<Self> {
        Ok(Self {
            tool: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            git_commit: GIT_COMMIT,
            mode: if args.conll { "conll" } else { "records" },
            gold: InputHash::of(&args.gold)?,
            pred: InputHash::of(&args.pred)?,
            docs: Vec::new(),
            types: None,
        })
    }
}

/// Writes the report's JSON with a `provenance` key added.
fn write_report<T: Serialize>(path: &Path, report: &T, provenance: &Provenance) -> Result<()> {
    let mut value = serde_json::to_value(report).context("cannot serialise the report")?;
    if let serde_json::Value::Object(map) = &mut value {
        map.insert(
            "provenance".into(),
            serde_json::to_value(provenance).context("cannot serialise the provenance")?,
        );
    }
    let text = json(&value)?;
    fs::write(path, text).with_context(|| format!("--report {}: cannot write", path.display()))
}
