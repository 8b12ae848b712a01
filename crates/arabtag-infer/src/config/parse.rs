//! TOML to a validated [`ModelConfig`]: the file's serde mirror (every table
//! `deny_unknown_fields`), then one pass that checks everything and collects
//! every problem with what to change.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use arabtag_tokenizer::NormalizerConfig;
use serde::Deserialize;

use super::{
    Aggregation, ConfigProblem, DEFAULT_AGGREGATION, DEFAULT_CONFIG_FILE, DEFAULT_DATES_ENABLED,
    DEFAULT_DTYPE, DEFAULT_ENTAILMENT_LABEL, DEFAULT_INT8, DEFAULT_PROTOTYPE_PREFIX,
    DEFAULT_QUANTIZED, DEFAULT_STRIDE, DEFAULT_TOKENIZER_FILE, DEFAULT_WEIGHTS_FILE,
    DEFAULT_WINDOW, DType, DatesConfig, E5Source, EntityType, FileRef, HYPOTHESIS_PLACEHOLDER,
    HubFile, HubSource, LocalSource, ModelConfig, NerConfig, NerContext, NerHead, Prototype,
    Revision, SCHEMA_VERSION, Sha256, Source, StanceConfig, StanceLabel, StanceMethod, StanceTrunk,
    WINDOW_SPECIAL_TOKENS, label_type,
};
use crate::InferError;

// ---------------------------------------------------------------------------
// The file's mirror.

/// Only `schema_version`, read before the strict parse so that a file of
/// another version gets that message, not one about its keys.
#[derive(Deserialize)]
struct VersionProbe {
    schema_version: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[allow(dead_code)] // checked through `VersionProbe`
    schema_version: toml::Value,
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    source: RawSource,
    dtype: Option<DType>,
    int8: Option<bool>,
    normalizer: Option<NormalizerConfig>,
    ner: Option<RawNer>,
    dates: Option<RawDates>,
    stance: Option<RawStance>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDates {
    enabled: Option<bool>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    local: Option<RawLocal>,
    hub: Option<RawHub>,
    e5: Option<RawE5>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocal {
    dir: PathBuf,
    config: Option<RawLocalFile>,
    weights: Option<RawLocalFile>,
    tokenizer: Option<RawLocalFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocalFile {
    file: Option<String>,
    sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHub {
    repo: String,
    revision: String,
    config: Option<RawHubFile>,
    weights: Option<RawHubFile>,
    tokenizer: Option<RawHubFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHubFile {
    file: Option<String>,
    sha256: Option<String>,
    repo: Option<String>,
    revision: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawE5 {
    weights: RawPath,
    tokenizer: RawPath,
    quantized: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPath {
    path: PathBuf,
    sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNer {
    head: Option<RawPath>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    map: BTreeMap<String, String>,
    aggregation: Option<Aggregation>,
    window: Option<usize>,
    stride: Option<usize>,
    #[serde(default)]
    layers: Vec<usize>,
    names: Option<RawPath>,
    context: Option<NerContext>,
}

#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum MethodName {
    Head,
    Prototypes,
    Nli,
}

impl MethodName {
    fn as_str(self) -> &'static str {
        match self {
            MethodName::Head => "head",
            MethodName::Prototypes => "prototypes",
            MethodName::Nli => "nli",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStance {
    method: MethodName,
    #[serde(default)]
    thresholds: BTreeMap<String, f64>,
    calibration: Option<BTreeMap<String, [f64; 2]>>,
    // method = "head"
    head: Option<RawPath>,
    labels: Option<Vec<String>>,
    trunk: Option<String>,
    // method = "prototypes"
    prefix: Option<String>,
    prototypes: Option<BTreeMap<String, RawPrototype>>,
    // method = "nli"
    hypothesis_template: Option<String>,
    entailment_label: Option<String>,
    candidate_labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrototype {
    #[serde(default)]
    ar: Vec<String>,
    #[serde(default)]
    en: Vec<String>,
}

// ---------------------------------------------------------------------------
// Parsing.

pub(super) fn parse(text: &str, path: &Path) -> Result<ModelConfig, InferError> {
    let toml_error = |source: toml::de::Error| InferError::ConfigToml {
        path: path.to_owned(),
        position: source.span().map(|span| line_column(text, span.start)),
        source: Box::new(source),
    };
    let probe: VersionProbe = toml::from_str(text).map_err(toml_error)?;
    let invalid = |problems: Vec<ConfigProblem>| InferError::ConfigInvalid {
        path: path.to_owned(),
        problems,
    };
    let version_problem = match &probe.schema_version {
        None => Some(format!(
            "schema_version: missing; put `schema_version = {SCHEMA_VERSION}` at the top"
        )),
        Some(toml::Value::Integer(v)) if *v == i64::from(SCHEMA_VERSION) => None,
        Some(toml::Value::Integer(v)) => Some(format!(
            "schema_version = {v}: this arabtag reads schema_version {SCHEMA_VERSION}; \
             use a config written for it"
        )),
        Some(other) => Some(format!(
            "schema_version = {other}: the version is a whole number, {SCHEMA_VERSION}"
        )),
    };
    if let Some(message) = version_problem {
        return Err(invalid(vec![ConfigProblem {
            key: "schema_version".into(),
            message,
        }]));
    }
    let raw: RawConfig = toml::from_str(text).map_err(toml_error)?;
    let dir = config_dir(path).map_err(|source| InferError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut v = Validator {
        dir,
        problems: Vec::new(),
    };
    let config = v.config(raw, path);
    match config {
        Some(config) if v.problems.is_empty() => Ok(config),
        _ => Err(invalid(v.problems)),
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The absolute folder of the config file at `path`.
fn config_dir(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    Ok(absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf))
}

/// `base/rel` with `.` and `..` folded away (lexically: nothing need exist).
pub(super) fn join_clean(base: &Path, rel: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in base.join(rel).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(component);
                }
            }
            other => out.push(other),
        }
    }
    out
}

struct Validator {
    /// The config file's folder, absolute.
    dir: PathBuf,
    problems: Vec<ConfigProblem>,
}

impl Validator {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn config(&mut self, raw: RawConfig, path: &Path) -> Option<ModelConfig> {
        let dtype = raw.dtype.unwrap_or(DEFAULT_DTYPE);
        let source = self.source(raw.source, dtype);
        let int8 = raw.int8.unwrap_or(DEFAULT_INT8);
        if int8 && dtype != DType::F32 {
            self.problem(
                "int8",
                format!(
                    "int8 = true with dtype = \"{dtype}\": the 8-bit layers take and give f32; \
                     set dtype = \"f32\", or int8 = false"
                ),
            );
        }
        let has_ner = raw.ner.is_some();
        let ner = raw.ner.and_then(|ner| self.ner(ner, source.as_ref()));
        let stance = raw
            .stance
            .and_then(|stance| self.stance(stance, source.as_ref(), has_ner));
        let dates = raw.dates.map(|d| DatesConfig {
            enabled: d.enabled.unwrap_or(DEFAULT_DATES_ENABLED),
        });
        if ner.is_none() && stance.is_none() && self.problems.is_empty() {
            match dates {
                None => self.problem(
                    "ner",
                    "no task: give [ner], [stance] or both (see models/default.toml)",
                ),
                Some(DatesConfig { enabled: false }) => self.problem(
                    "dates.enabled",
                    "dates.enabled = false and no [ner] or [stance]: no task is left; set \
                     enabled = true or give [ner] or [stance]",
                ),
                Some(_) => {}
            }
        }
        Some(ModelConfig {
            path: path.to_owned(),
            name: raw.name,
            description: raw.description,
            source: source?,
            dtype,
            int8,
            normalizer: raw.normalizer.unwrap_or_default(),
            ner,
            dates,
            stance,
        })
    }

    // -- source ---------------------------------------------------------------

    fn source(&mut self, raw: RawSource, dtype: DType) -> Option<Source> {
        let given: Vec<&str> = [
            raw.local.as_ref().map(|_| "`local`"),
            raw.hub.as_ref().map(|_| "`hub`"),
            raw.e5.as_ref().map(|_| "`e5`"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() != 1 {
            let found = if given.is_empty() {
                "none is given".to_owned()
            } else {
                format!("found {}", given.join(" and "))
            };
            self.problem(
                "source",
                format!(
                    "source: give exactly one of `local`, `hub`, `e5` ([source.local], \
                     [source.hub] or [source.e5]); {found}"
                ),
            );
            return None;
        }
        if let Some(local) = raw.local {
            return self.local(local).map(Source::Local);
        }
        if let Some(hub) = raw.hub {
            return self.hub(hub).map(Source::Hub);
        }
        raw.e5.and_then(|e5| self.e5(e5, dtype)).map(Source::E5)
    }

    fn local(&mut self, raw: RawLocal) -> Option<LocalSource> {
        let dir = join_clean(&self.dir, &raw.dir);
        let mut file = |key: &str, raw: Option<RawLocalFile>, default: &str| {
            let key = format!("source.local.{key}");
            let (file, sha256) = match raw {
                Some(f) => (f.file, f.sha256),
                None => (None, None),
            };
            let file = file.unwrap_or_else(|| default.to_owned());
            let ok = self.repo_path(&format!("{key}.file"), &file);
            let sha256 = self.sha256(&key, sha256);
            ok.then(|| FileRef {
                path: join_clean(&dir, Path::new(&file)),
                sha256,
            })
        };
        let config = file("config", raw.config, DEFAULT_CONFIG_FILE);
        let weights = file("weights", raw.weights, DEFAULT_WEIGHTS_FILE);
        let tokenizer = file("tokenizer", raw.tokenizer, DEFAULT_TOKENIZER_FILE);
        Some(LocalSource {
            dir: dir.clone(),
            config: config?,
            weights: weights?,
            tokenizer: tokenizer?,
        })
    }

    fn hub(&mut self, raw: RawHub) -> Option<HubSource> {
        let repo_ok = self.repo_id("source.hub.repo", &raw.repo);
        let revision = self.revision("source.hub.revision", &raw.revision);
        let config = self.hub_file(
            "config",
            raw.config,
            DEFAULT_CONFIG_FILE,
            &raw.repo,
            &revision,
        );
        let weights = self.hub_file(
            "weights",
            raw.weights,
            DEFAULT_WEIGHTS_FILE,
            &raw.repo,
            &revision,
        );
        let tokenizer = self.hub_file(
            "tokenizer",
            raw.tokenizer,
            DEFAULT_TOKENIZER_FILE,
            &raw.repo,
            &revision,
        );
        if !repo_ok {
            return None;
        }
        Some(HubSource {
            repo: raw.repo,
            revision: revision?,
            config: config?,
            weights: weights?,
            tokenizer: tokenizer?,
        })
    }

    fn hub_file(
        &mut self,
        name: &str,
        raw: Option<RawHubFile>,
        default: &str,
        source_repo: &str,
        source_revision: &Option<Revision>,
    ) -> Option<HubFile> {
        let key = format!("source.hub.{name}");
        let raw = raw.unwrap_or(RawHubFile {
            file: None,
            sha256: None,
            repo: None,
            revision: None,
        });
        let file = raw.file.unwrap_or_else(|| default.to_owned());
        let file_ok = self.repo_path(&format!("{key}.file"), &file);
        let sha256 = self.sha256(&key, raw.sha256);
        let repo = match raw.repo {
            Some(repo) => {
                if raw.revision.is_none() {
                    self.problem(
                        format!("{key}.revision"),
                        format!(
                            "{key}.repo = \"{repo}\" needs its own pinned commit: add \
                             revision = \"<40 hex digits>\" beside it"
                        ),
                    );
                }
                self.repo_id(&format!("{key}.repo"), &repo).then_some(repo)
            }
            None => Some(source_repo.to_owned()),
        };
        let revision = match raw.revision {
            Some(r) => self.revision(&format!("{key}.revision"), &r),
            None => source_revision.clone(),
        };
        if !file_ok {
            return None;
        }
        Some(HubFile {
            repo: repo?,
            revision: revision?,
            file,
            sha256,
        })
    }

    fn e5(&mut self, raw: RawE5, dtype: DType) -> Option<E5Source> {
        let weights = self.path_file("source.e5.weights", raw.weights);
        let tokenizer = self.path_file("source.e5.tokenizer", raw.tokenizer);
        let quantized = raw.quantized.unwrap_or(DEFAULT_QUANTIZED);
        if quantized && dtype != DType::F32 {
            self.problem(
                "dtype",
                format!(
                    "dtype = \"{dtype}\" with source.e5.quantized = true: 4-bit matrices run \
                     in f32; set dtype = \"f32\", or quantized = false to dequantise them \
                     into {dtype}"
                ),
            );
        }
        Some(E5Source {
            weights,
            tokenizer,
            quantized,
        })
    }

    fn path_file(&mut self, key: &str, raw: RawPath) -> FileRef {
        FileRef {
            path: join_clean(&self.dir, &raw.path),
            sha256: self.sha256(key, raw.sha256),
        }
    }

    fn sha256(&mut self, key: &str, text: Option<String>) -> Option<Sha256> {
        let text = text?;
        match text.parse() {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(
                    format!("{key}.sha256"),
                    format!("{key}.sha256 = \"{text}\": {e}"),
                );
                None
            }
        }
    }

    fn revision(&mut self, key: &str, text: &str) -> Option<Revision> {
        match text.parse() {
            Ok(r) => Some(r),
            Err(e) => {
                self.problem(
                    key,
                    format!(
                        "{key} = \"{text}\": {e}; the repository's commit history on the hub \
                         lists them"
                    ),
                );
                None
            }
        }
    }

    /// `owner/name` (or a legacy `name`) of letters, digits, `-`, `_`, `.`.
    fn repo_id(&mut self, key: &str, repo: &str) -> bool {
        let parts: Vec<&str> = repo.split('/').collect();
        let ok = (1..=2).contains(&parts.len())
            && parts.iter().all(|p| {
                !p.is_empty()
                    && !p.starts_with(['-', '.'])
                    && !p.contains("--")
                    && !p.contains("..")
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            });
        if !ok {
            self.problem(
                key,
                format!(
                    "{key} = \"{repo}\": a repository is named `owner/name` (letters, digits, \
                     `-`, `_`, `.`), as in its hub address"
                ),
            );
        }
        ok
    }

    /// A relative, `/`-separated path inside a folder or repository.
    fn repo_path(&mut self, key: &str, file: &str) -> bool {
        let ok = !file.is_empty()
            && !file.starts_with('/')
            && !file.contains('\\')
            && file
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !ok {
            self.problem(
                key,
                format!(
                    "{key} = \"{file}\": name a file inside the folder or repository, \
                     `/`-separated, without `..` (e.g. \"onnx/tokenizer.json\")"
                ),
            );
        }
        ok
    }

    // -- ner ------------------------------------------------------------------

    fn ner(&mut self, raw: RawNer, source: Option<&Source>) -> Option<NerConfig> {
        let before = self.problems.len();
        let head = match raw.head {
            Some(head) => NerHead::File(self.path_file("ner.head", head)),
            None => {
                if let Some(Source::E5(_)) = source {
                    self.problem(
                        "ner.head",
                        "ner: the e5 file has no token classifier; give \
                         ner.head = { path = \"…\", sha256 = \"…\" }, a head trained on its \
                         hidden states (or leave [ner] out)",
                    );
                }
                NerHead::Checkpoint
            }
        };
        if !raw.layers.is_empty() && !matches!(head, NerHead::File(_)) {
            self.problem(
                "ner.layers",
                "ner.layers: only a head file (ner.head = { path = \"…\", sha256 = \"…\" }) \
                 reads intermediate layers; leave ner.layers out for the checkpoint's head",
            );
        }
        if let Some(i) = (1..raw.layers.len()).find(|&i| raw.layers[..i].contains(&raw.layers[i])) {
            self.problem(
                format!("ner.layers[{i}]"),
                format!(
                    "ner.layers[{i}] = {} repeats an earlier layer",
                    raw.layers[i]
                ),
            );
        }
        let types = self.ner_labels(&raw.labels);
        let mut map = BTreeMap::new();
        if raw.map.is_empty() && !raw.labels.is_empty() {
            self.problem(
                "ner.map",
                format!(
                    "ner.map: map at least one of the labels' types ({}) to PER, ORG, LOC or \
                     DATE, e.g. map = {{ PER = \"PER\" }}",
                    types.join(", ")
                ),
            );
        }
        for (from, to) in raw.map {
            if !types.contains(&from) {
                self.problem(
                    format!("ner.map.{from}"),
                    format!(
                        "ner.map.{from}: no label B-{from} or I-{from} in ner.labels; the \
                         labels' types are {}",
                        types.join(", ")
                    ),
                );
            }
            match EntityType::from_name(&to) {
                Some(t) => {
                    map.insert(from, t);
                }
                None => self.problem(
                    format!("ner.map.{from}"),
                    format!(
                        "ner.map.{from} = \"{to}\": map to one of PER, ORG, LOC, DATE (leave a \
                         type out to drop it)"
                    ),
                ),
            }
        }
        let window = raw.window.unwrap_or(DEFAULT_WINDOW);
        let stride = raw.stride.unwrap_or(DEFAULT_STRIDE);
        if window <= WINDOW_SPECIAL_TOKENS {
            self.problem(
                "ner.window",
                format!(
                    "ner.window = {window}: a window holds {WINDOW_SPECIAL_TOKENS} special \
                     tokens and text; give more (the default is {DEFAULT_WINDOW})"
                ),
            );
        } else if stride >= window - WINDOW_SPECIAL_TOKENS {
            self.problem(
                "ner.stride",
                format!(
                    "ner.stride = {stride}: the overlap must be smaller than a window's text \
                     (ner.window − {WINDOW_SPECIAL_TOKENS} = {}); the default is \
                     {DEFAULT_STRIDE}",
                    window - WINDOW_SPECIAL_TOKENS
                ),
            );
        }
        let names = raw.names.map(|n| self.path_file("ner.names", n));
        (self.problems.len() == before).then_some(NerConfig {
            head,
            labels: raw.labels,
            map,
            aggregation: raw.aggregation.unwrap_or(DEFAULT_AGGREGATION),
            window,
            stride,
            layers: raw.layers,
            names,
            context: raw.context.unwrap_or_default(),
        })
    }

    /// Checks the IOB2 labels; returns their types in first-seen order.
    fn ner_labels(&mut self, labels: &[String]) -> Vec<String> {
        if labels.is_empty() {
            self.problem(
                "ner.labels",
                "ner.labels: list the model's labels in id order, e.g. \
                 [\"O\", \"B-PER\", \"I-PER\", \"B-LOC\", \"I-LOC\"]",
            );
            return Vec::new();
        }
        let mut types: Vec<String> = Vec::new();
        for (i, label) in labels.iter().enumerate() {
            if let Some(j) = labels[..i].iter().position(|l| l == label) {
                self.problem(
                    format!("ner.labels[{i}]"),
                    format!("ner.labels[{i}] = \"{label}\" repeats ner.labels[{j}]"),
                );
            }
            if label == "O" {
                continue;
            }
            match label_type(label) {
                Some(t) => {
                    if !types.iter().any(|seen| seen == t) {
                        types.push(t.to_owned());
                    }
                }
                None => self.problem(
                    format!("ner.labels[{i}]"),
                    format!(
                        "ner.labels[{i}] = \"{label}\": a label is `O`, `B-TYPE` or `I-TYPE` \
                         (IOB2)"
                    ),
                ),
            }
        }
        if !labels.iter().any(|l| l == "O") {
            self.problem(
                "ner.labels",
                "ner.labels: the outside label \"O\" is missing",
            );
        }
        types
    }

    // -- stance ---------------------------------------------------------------

    fn stance(
        &mut self,
        raw: RawStance,
        source: Option<&Source>,
        has_ner: bool,
    ) -> Option<StanceConfig> {
        let before = self.problems.len();
        let method = raw.method;
        let thresholds = self.thresholds(raw.thresholds);
        let calibration = raw.calibration.map(|c| self.calibration(c));
        let foreign: [(&str, bool, MethodName); 8] = [
            ("head", raw.head.is_some(), MethodName::Head),
            ("labels", raw.labels.is_some(), MethodName::Head),
            ("trunk", raw.trunk.is_some(), MethodName::Head),
            ("prefix", raw.prefix.is_some(), MethodName::Prototypes),
            (
                "prototypes",
                raw.prototypes.is_some(),
                MethodName::Prototypes,
            ),
            (
                "hypothesis_template",
                raw.hypothesis_template.is_some(),
                MethodName::Nli,
            ),
            (
                "entailment_label",
                raw.entailment_label.is_some(),
                MethodName::Nli,
            ),
            (
                "candidate_labels",
                raw.candidate_labels.is_some(),
                MethodName::Nli,
            ),
        ];
        for (key, present, owner) in foreign {
            if present && owner != method {
                self.problem(
                    format!("stance.{key}"),
                    format!(
                        "stance.{key}: only for method = \"{}\", and this config says method = \
                         \"{}\"; remove it or change the method",
                        owner.as_str(),
                        method.as_str()
                    ),
                );
            }
        }
        let method = match method {
            MethodName::Head => self.stance_head(raw.head, raw.labels, raw.trunk, has_ner),
            MethodName::Prototypes => self.prototypes(raw.prefix, raw.prototypes),
            MethodName::Nli => self.nli(
                raw.hypothesis_template,
                raw.entailment_label,
                raw.candidate_labels,
                source,
            ),
        };
        if self.problems.len() != before {
            return None;
        }
        Some(StanceConfig {
            method: method?,
            thresholds,
            calibration,
        })
    }

    fn calibration(&mut self, raw: BTreeMap<String, [f64; 2]>) -> BTreeMap<StanceLabel, [f64; 2]> {
        let mut out = BTreeMap::new();
        for (name, [a, b]) in raw {
            let key = format!("stance.calibration.{name}");
            let Some(label) = self.label(&key, &name) else {
                continue;
            };
            if !(a.is_finite() && a > 0.0 && b.is_finite()) {
                self.problem(
                    key.clone(),
                    format!(
                        "{key} = [{a}, {b}]: Platt parameters [a, b] need a finite a > 0 (so \
                         that higher scores stay higher) and a finite b"
                    ),
                );
            }
            out.insert(label, [a, b]);
        }
        for label in StanceLabel::ALL {
            if !out.contains_key(&label) {
                self.problem(
                    format!("stance.calibration.{label}"),
                    format!(
                        "stance.calibration.{label}: missing; calibrate every label \
                         (mediation, conflict, energy) or none"
                    ),
                );
            }
        }
        out
    }

    fn thresholds(&mut self, raw: BTreeMap<String, f64>) -> BTreeMap<StanceLabel, f64> {
        let mut out = BTreeMap::new();
        for (name, value) in raw {
            let key = format!("stance.thresholds.{name}");
            let Some(label) = self.label(&key, &name) else {
                continue;
            };
            if !(0.0..=1.0).contains(&value) {
                self.problem(
                    key.clone(),
                    format!("{key} = {value}: a threshold is between 0 and 1"),
                );
            }
            out.insert(label, value);
        }
        for label in StanceLabel::ALL {
            if !out.contains_key(&label) {
                self.problem(
                    format!("stance.thresholds.{label}"),
                    format!(
                        "stance.thresholds.{label}: missing; give every label a threshold \
                         between 0 and 1 (mediation, conflict, energy)"
                    ),
                );
            }
        }
        out
    }

    fn label(&mut self, key: &str, name: &str) -> Option<StanceLabel> {
        let label = StanceLabel::from_name(name);
        if label.is_none() {
            self.problem(
                key,
                format!(
                    "{key}: `{name}` is no stance label; the labels are mediation, conflict, energy"
                ),
            );
        }
        label
    }

    fn stance_head(
        &mut self,
        head: Option<RawPath>,
        labels: Option<Vec<String>>,
        trunk: Option<String>,
        has_ner: bool,
    ) -> Option<StanceMethod> {
        let trunk = match trunk.as_deref() {
            None | Some("encoder") => StanceTrunk::Encoder,
            Some("ner") if has_ner => StanceTrunk::Ner,
            Some("ner") => {
                self.problem(
                    "stance.trunk",
                    "stance.trunk = \"ner\" puts the stance layers on the NER network, and this \
                     config has no [ner]; add it or remove stance.trunk",
                );
                StanceTrunk::Encoder
            }
            Some(other) => {
                self.problem(
                    "stance.trunk",
                    format!(
                        "stance.trunk: `{other}` is not a trunk; give \"encoder\" (the default: \
                         the model's encoder) or \"ner\" (the NER network's layers)"
                    ),
                );
                StanceTrunk::Encoder
            }
        };
        let head = match head {
            Some(head) => Some(self.path_file("stance.head", head)),
            None => {
                self.problem(
                    "stance.head",
                    "stance.head: method = \"head\" needs the trained head: \
                     head = { path = \"…\", sha256 = \"…\" }",
                );
                None
            }
        };
        let labels = match labels {
            None => StanceLabel::ALL.to_vec(),
            Some(names) => {
                let mut out = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    if let Some(l) = self.label(&format!("stance.labels[{i}]"), name) {
                        out.push(l);
                    }
                }
                let complete = StanceLabel::ALL
                    .iter()
                    .all(|l| out.iter().filter(|o| *o == l).count() == 1);
                if out.len() != StanceLabel::ALL.len() || !complete {
                    self.problem(
                        "stance.labels",
                        "stance.labels: name each of mediation, conflict, energy once, in the \
                         order of the head's outputs",
                    );
                }
                out
            }
        };
        Some(StanceMethod::Head {
            head: head?,
            labels,
            trunk,
        })
    }

    fn prototypes(
        &mut self,
        prefix: Option<String>,
        raw: Option<BTreeMap<String, RawPrototype>>,
    ) -> Option<StanceMethod> {
        let Some(raw) = raw else {
            self.problem(
                "stance.prototypes",
                "stance.prototypes: method = \"prototypes\" needs descriptions of every label \
                 in Arabic and English: [stance.prototypes.mediation] ar = [\"…\"], en = [\"…\"] \
                 (and so for conflict and energy)",
            );
            return None;
        };
        let mut prototypes = BTreeMap::new();
        for (name, p) in raw {
            let key = format!("stance.prototypes.{name}");
            let Some(label) = self.label(&key, &name) else {
                continue;
            };
            for (lang, texts, language) in [("ar", &p.ar, "Arabic"), ("en", &p.en, "English")] {
                if texts.is_empty() {
                    self.problem(
                        format!("{key}.{lang}"),
                        format!("{key}.{lang}: give at least one {language} description"),
                    );
                }
                if let Some(i) = texts.iter().position(|t| t.trim().is_empty()) {
                    self.problem(
                        format!("{key}.{lang}[{i}]"),
                        format!("{key}.{lang}[{i}] is empty; write a description or remove it"),
                    );
                }
            }
            prototypes.insert(label, Prototype { ar: p.ar, en: p.en });
        }
        for label in StanceLabel::ALL {
            if !prototypes.contains_key(&label) {
                self.problem(
                    format!("stance.prototypes.{label}"),
                    format!(
                        "stance.prototypes.{label}: missing; describe the label in Arabic and \
                         English ([stance.prototypes.{label}] ar = [\"…\"], en = [\"…\"])"
                    ),
                );
            }
        }
        Some(StanceMethod::Prototypes {
            prefix: prefix.unwrap_or_else(|| DEFAULT_PROTOTYPE_PREFIX.to_owned()),
            prototypes,
        })
    }

    fn nli(
        &mut self,
        template: Option<String>,
        entailment: Option<String>,
        candidates: Option<BTreeMap<String, String>>,
        source: Option<&Source>,
    ) -> Option<StanceMethod> {
        if let Some(Source::E5(_)) = source {
            self.problem(
                "stance.method",
                "stance.method = \"nli\" needs a sequence-classification checkpoint with an \
                 entailment label (source.local or source.hub, e.g. an XNLI model); the e5 file \
                 has none: use method = \"prototypes\" or \"head\" with it",
            );
        }
        let template = match template {
            None => {
                self.problem(
                    "stance.hypothesis_template",
                    format!(
                        "stance.hypothesis_template: method = \"nli\" needs the hypothesis, \
                         with `{HYPOTHESIS_PLACEHOLDER}` where a label's text goes, e.g. \
                         \"هذا النص عن {HYPOTHESIS_PLACEHOLDER}.\""
                    ),
                );
                None
            }
            Some(t) if t.matches(HYPOTHESIS_PLACEHOLDER).count() != 1 => {
                self.problem(
                    "stance.hypothesis_template",
                    format!(
                        "stance.hypothesis_template = \"{t}\": put `{HYPOTHESIS_PLACEHOLDER}` \
                         once, where a label's text goes"
                    ),
                );
                None
            }
            Some(t) => Some(t),
        };
        let entailment = entailment.unwrap_or_else(|| DEFAULT_ENTAILMENT_LABEL.to_owned());
        if entailment.trim().is_empty() {
            self.problem(
                "stance.entailment_label",
                "stance.entailment_label is empty; name the checkpoint's entailment label \
                 (as in its config.json id2label)",
            );
        }
        let mut texts = BTreeMap::new();
        for (name, text) in candidates.unwrap_or_default() {
            let key = format!("stance.candidate_labels.{name}");
            let Some(label) = self.label(&key, &name) else {
                continue;
            };
            if text.trim().is_empty() {
                self.problem(
                    key.clone(),
                    format!("{key} is empty; write what the label is about"),
                );
            }
            texts.insert(label, text);
        }
        for label in StanceLabel::ALL {
            if !texts.contains_key(&label) {
                self.problem(
                    format!("stance.candidate_labels.{label}"),
                    format!(
                        "stance.candidate_labels.{label}: missing; give the text the hypothesis \
                         puts in for it"
                    ),
                );
            }
        }
        Some(StanceMethod::Nli {
            hypothesis_template: template?,
            entailment_label: entailment,
            candidate_labels: texts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters_from_one() {
        let text = "a = 1\nبب = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // after the two Arabic letters (4 bytes) and a space
        assert_eq!(line_column(text, 11), (2, 4));
    }

    const E5: &str = "schema_version = 1\n[source.e5]\n\
        weights = { path = \"e5/w.bin\" }\ntokenizer = { path = \"e5/t.json\" }\n";

    #[test]
    fn dates_alone_are_a_task_and_enabled_defaults_on() {
        let path = Path::new("/models/x.toml");
        let config = parse(&format!("{E5}[dates]\nenabled = true\n"), path).unwrap();
        assert_eq!(config.dates, Some(DatesConfig { enabled: true }));
        assert!(config.ner.is_none() && config.stance.is_none());
        let config = parse(&format!("{E5}[dates]\n"), path).unwrap();
        assert_eq!(
            config.dates,
            Some(DatesConfig {
                enabled: DEFAULT_DATES_ENABLED
            })
        );
        let none = parse(E5, path).unwrap_err();
        assert!(format!("{none}").contains("no task"), "{none}");
        let off = parse(&format!("{E5}[dates]\nenabled = false\n"), path).unwrap_err();
        assert!(
            matches!(&off, InferError::ConfigInvalid { problems, .. }
                if problems.len() == 1 && problems[0].key == "dates.enabled"),
            "{off}"
        );
        let unknown = parse(&format!("{E5}[dates]\nenabled = true\nrules = 1\n"), path);
        assert!(
            matches!(unknown, Err(InferError::ConfigToml { .. })),
            "{unknown:?}"
        );
    }

    #[test]
    fn join_clean_folds_dots() {
        assert_eq!(
            join_clean(Path::new("/a/b"), Path::new("../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(
            join_clean(Path::new("/a"), Path::new("/abs/x")),
            PathBuf::from("/abs/x")
        );
    }
}
