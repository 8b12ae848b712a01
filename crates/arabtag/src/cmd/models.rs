//! `arabtag models`: look at and check a model config.
//!
//! ```text
//! arabtag models show CONFIG [--json] [--offline]
//! arabtag models verify CONFIG [--json] [--offline]
//! arabtag models export CONFIG --out DIR [--offline]
//! ```
//!
//! `show` prints the resolved config: every file as an absolute path with
//! its pinned sha256, the architecture, the tasks (one JSON object with
//! `--json`). `verify` hashes every file and compares it with its pin: exit 0
//! when all match, 2 otherwise, each problem named on stderr. Hub files come
//! from the Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME`), downloaded when
//! missing unless `--offline` or `HF_HUB_OFFLINE=1`.
//!
//! `export` writes the config's NER network (the encoder up to the layer the
//! head reads, a head file's fine-tuned layers in place, the token head) as
//! a Hugging Face hub-layout folder that `transformers` loads as
//! `AutoModelForTokenClassification` and `pipeline("token-classification")`:
//! `config.json`, `model.safetensors` (f32), the tokenizer files, a model
//! card with every source and written file's sha256, and `arabtag.toml`, a
//! model config over the folder ([`arabtag_infer::export`]).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use arabtag_infer::config::{FileCheck, FileProblem, ModelConfig, ResolveOptions, check_file};
use arabtag_infer::export::{ExportOptions, export_hub};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::Status;
use crate::output;

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Print the resolved model config: files (absolute paths, pinned
    /// sha256), architecture, normalisation, tasks.
    Show(ConfigArgs),
    /// Check that every file of a model config exists and has its pinned
    /// sha256 (exit 0 all good, 2 otherwise).
    Verify(ConfigArgs),
    /// Write the config's NER network in the Hugging Face hub layout
    /// (config.json, model.safetensors, tokenizer files, model card,
    /// arabtag.toml) for transformers.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The model config (TOML), e.g. models/default.toml.
    #[arg(value_name = "CONFIG")]
    pub config: PathBuf,

    /// The folder to write (created; files in it are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Take hub files from the cache only, as HF_HUB_OFFLINE=1 does.
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The model config (TOML), e.g. models/default.toml.
    #[arg(value_name = "CONFIG")]
    pub config: PathBuf,

    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,

    /// Take hub files from the cache only, as HF_HUB_OFFLINE=1 does.
    #[arg(long)]
    pub offline: bool,
}

pub fn run(args: &ModelsArgs) -> Result<Status> {
    match &args.command {
        ModelsCommand::Show(args) => show(args),
        ModelsCommand::Verify(args) => verify(args),
        ModelsCommand::Export(args) => export(args),
    }
}

fn export(args: &ExportArgs) -> Result<Status> {
    let mut options = ResolveOptions::from_env();
    options.offline |= args.offline;
    let model = ModelConfig::from_file(&args.config)
        .context("cannot read the model config")?
        .resolve(&options)
        .context("cannot resolve the model config")?
        .verify()
        .context("the model's files do not verify")?;
    let command = format!(
        "arabtag models export {} --out {}",
        args.config.display(),
        args.out.display()
    );
    let producer = format!(
        "arabtag {}, commit {}",
        env!("CARGO_PKG_VERSION"),
        env!("ARABTAG_GIT_COMMIT")
    );
    let done = export_hub(&model, &args.out, &ExportOptions { command, producer })
        .with_context(|| format!("cannot export {}", args.config.display()))?;
    let mut text = format!(
        "{}: {} for token classification, num_hidden_layers {}{}, {} tensors, labels {}\n",
        done.dir.display(),
        done.model_type,
        done.layers,
        if done.finetuned.is_empty() {
            String::new()
        } else {
            let layers: Vec<String> = done.finetuned.iter().map(|i| (i + 1).to_string()).collect();
            format!(" (layers {} from the NER head file)", layers.join(", "))
        },
        done.tensors,
        done.labels.join(" "),
    );
    for f in &done.files {
        let _ = writeln!(
            text,
            "  {:<24} {:>11} bytes  sha256 {}",
            f.name, f.bytes, f.sha256
        );
    }
    output::stdout(&text).context("cannot write to stdout")?;
    Ok(Status::Ok)
}

fn options(args: &ConfigArgs) -> ResolveOptions {
    let mut options = ResolveOptions::from_env();
    options.offline |= args.offline;
    options
}

fn load(args: &ConfigArgs) -> Result<ModelConfig> {
    ModelConfig::from_file(&args.config).context("cannot read the model config")
}

fn show(args: &ConfigArgs) -> Result<Status> {
    let model = load(args)?
        .resolve(&options(args))
        .context("cannot resolve the model config")?;
    let text = if args.json {
        json(&model)?
    } else {
        model.describe()
    };
    output::stdout(&text).context("cannot write to stdout")?;
    Ok(Status::Ok)
}

fn verify(args: &ConfigArgs) -> Result<Status> {
    let config = load(args)?;
    let options = options(args);
    let files = config
        .locate(&options)
        .context("cannot find the model's files")?;
    let checks: Vec<FileCheck> = files.iter().map(check_file).collect();
    let failed = checks.iter().filter(|c| c.result.is_err()).count();
    for check in &checks {
        if let Err(problem) = &check.result {
            let cause = std::error::Error::source(problem)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            output::stderr_line(&format!("error: {problem}{cause}"));
        }
    }
    if failed == 0 {
        // The files are the pinned ones: now what they say must fit the config.
        config
            .resolve(&options)
            .and_then(|resolved| resolved.check_head_labels())
            .context("the files verify, but the config does not fit them")?;
    }
    let text = if args.json {
        json(&VerifyReport::new(&args.config, &checks))?
    } else {
        verify_table(&checks)
    };
    output::stdout(&text).context("cannot write to stdout")?;
    if failed == 0 {
        Ok(Status::Ok)
    } else {
        output::stderr_line(&format!(
            "arabtag models verify: {failed} of {} files failed",
            checks.len()
        ));
        Ok(Status::Errors)
    }
}

fn json<T: Serialize>(value: &T) -> Result<String> {
    let mut s = serde_json::to_string_pretty(value).context("cannot serialise to JSON")?;
    s.push('\n');
    Ok(s)
}

/// `models verify --json`.
#[derive(Debug, Serialize)]
struct VerifyReport {
    config: String,
    ok: bool,
    files: Vec<FileReport>,
}

#[derive(Debug, Serialize)]
struct FileReport {
    role: String,
    key: String,
    path: String,
    expected_sha256: Option<String>,
    /// `ok`, `missing`, `unreadable`, `mismatch` or `unpinned`.
    status: &'static str,
    /// The file's sha256 when it could be read.
    sha256: Option<String>,
    bytes: Option<u64>,
    problem: Option<String>,
}

impl VerifyReport {
    fn new(config: &std::path::Path, checks: &[FileCheck]) -> Self {
        let files: Vec<FileReport> = checks.iter().map(FileReport::new).collect();
        Self {
            config: std::path::absolute(config)
                .unwrap_or_else(|_| config.to_owned())
                .display()
                .to_string(),
            ok: files.iter().all(|f| f.status == "ok"),
            files,
        }
    }
}

impl FileReport {
    fn new(check: &FileCheck) -> Self {
        let f = &check.file;
        let (status, sha256, bytes, problem) = match &check.result {
            Ok(d) => ("ok", Some(d.sha256.to_string()), Some(d.bytes), None),
            Err(p) => {
                let actual = match p {
                    FileProblem::Mismatch { actual, .. } | FileProblem::Unpinned { actual, .. } => {
                        Some(actual.to_string())
                    }
                    _ => None,
                };
                (p.kind(), actual, None, Some(p.to_string()))
            }
        };
        Self {
            role: f.role.to_string(),
            key: f.key.clone(),
            path: f.path.display().to_string(),
            expected_sha256: f.sha256.map(|s| s.to_string()),
            status,
            sha256,
            bytes,
            problem,
        }
    }
}

/// One line a file: status, role, path, and the sha256 for a good one.
fn verify_table(checks: &[FileCheck]) -> String {
    let mut out = String::new();
    for check in checks {
        let (status, detail) = match &check.result {
            Ok(d) => ("ok", format!("  sha256 {} ({} bytes)", d.sha256, d.bytes)),
            Err(p) => (p.kind(), String::new()),
        };
        let _ = writeln!(
            out,
            "{status:<10} {:<11} {}{detail}",
            check.file.role.to_string(),
            check.file.path.display()
        );
    }
    out
}
