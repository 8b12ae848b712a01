//! The model config: parsing and validation, resolution (local folder, e5
//! file, hub cache), sha256 verification, and the configs shipped in
//! `models/`. Alone: `cargo test -p arabtag-infer --test it config::`.

mod hub;
mod parse;
mod resolve;
pub(crate) mod shipped;

use std::path::{Path, PathBuf};

use arabtag_infer::InferError;
use arabtag_infer::config::{ConfigProblem, ModelConfig, ResolveOptions};
use sha2::{Digest, Sha256};

/// The workspace root, absolute and without `..`.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Writes `bytes` to `dir/rel`, creating folders.
pub fn write(dir: &Path, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// sha256 of `bytes` in hex.
pub fn sha(bytes: impl AsRef<[u8]>) -> String {
    Sha256::digest(bytes.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses `toml` as the config `dir/model.toml` (which is also written).
pub fn parse_in(dir: &Path, toml: &str) -> Result<ModelConfig, InferError> {
    let path = write(dir, "model.toml", toml);
    ModelConfig::from_file(&path)
}

/// The problems of an invalid config; panics on anything else.
pub fn problems(result: Result<ModelConfig, InferError>) -> Vec<ConfigProblem> {
    match result {
        Err(InferError::ConfigInvalid { problems, .. }) => problems,
        Err(other) => panic!("expected ConfigInvalid, got {other:?}: {other}"),
        Ok(c) => panic!("expected problems, got a valid config {c:?}"),
    }
}

/// The messages of `problems`.
pub fn messages(problems: &[ConfigProblem]) -> Vec<&str> {
    problems.iter().map(|p| p.message.as_str()).collect()
}

/// Asserts that one message equals `expected`.
#[track_caller]
pub fn assert_message(problems: &[ConfigProblem], expected: &str) {
    assert!(
        problems.iter().any(|p| p.message == expected),
        "no problem says {expected:?}; got {:#?}",
        messages(problems)
    );
}

/// Resolution with a given hub cache and no network (nothing in these tests
/// downloads).
pub fn offline(cache: &Path) -> ResolveOptions {
    ResolveOptions {
        offline: true,
        hub_cache: Some(cache.to_owned()),
        endpoint: None,
    }
}

/// A tiny `config.json` of `model_type` with `id2label`.
pub fn checkpoint_json(model_type: &str, positions: usize, labels: &[&str]) -> String {
    let id2label: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), serde_json::Value::from(*l)))
        .collect();
    serde_json::json!({
        "model_type": model_type,
        "max_position_embeddings": positions,
        "pad_token_id": 1,
        "id2label": id2label,
    })
    .to_string()
}

/// The stance table every test config can use.
pub const PROTOTYPES: &str = r#"
[stance]
method = "prototypes"
prefix = "query: "
thresholds = { mediation = 0.8, conflict = 0.8, energy = 0.8 }
[stance.prototypes.mediation]
ar = ["وساطة ومفاوضات سلام"]
en = ["mediation and peace talks"]
[stance.prototypes.conflict]
ar = ["حرب واشتباكات"]
en = ["war and clashes"]
[stance.prototypes.energy]
ar = ["النفط والغاز"]
en = ["oil and gas"]
"#;

/// An `E5S1` header (the fields up to max positions) followed by `rest`.
pub fn e5_file(max_positions: i32, rest: &[u8]) -> Vec<u8> {
    let mut out = b"E5S1".to_vec();
    out.extend(1u32.to_le_bytes()); // version
    for v in [384i32, 12, 12, 1536, 250_037, max_positions] {
        out.extend(v.to_le_bytes());
    }
    out.extend(rest);
    out
}
