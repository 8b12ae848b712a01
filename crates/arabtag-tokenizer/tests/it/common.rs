//! Paths of the workspace's seeds and models.

use std::path::{Path, PathBuf};

use arabtag_tokenizer::{NormalizerConfig, SubwordEncoder};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The seed articles, sorted by id: (id, text exactly as read).
pub fn seeds() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(workspace().join("seeds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .map(|p| {
            let id = p.file_stem().unwrap().to_string_lossy().into_owned();
            (id, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// The e5 tokenizer fetched by `make models`, or `None` (with a note) when
/// it is missing. With `ARABTAG_REQUIRE_MODELS=1` (CI) a missing file fails.
pub fn e5(test: &str) -> Option<SubwordEncoder> {
    let required = std::env::var("ARABTAG_REQUIRE_MODELS").is_ok_and(|v| v == "1");
    load_or_skip(
        &workspace().join("models/e5-small/tokenizer.json"),
        required,
        test,
    )
}

/// Loads `path`, or, when it does not exist, fails if `required` and
/// otherwise prints why `test` is skipped and gives `None`.
pub fn load_or_skip(path: &Path, required: bool, test: &str) -> Option<SubwordEncoder> {
    if !path.exists() {
        assert!(
            !required,
            "{} is missing and ARABTAG_REQUIRE_MODELS=1: run `make models`",
            path.display()
        );
        eprintln!(
            "{test}: skipped: run `make models` ({} is missing)",
            path.display()
        );
        return None;
    }
    Some(SubwordEncoder::from_file(path, NormalizerConfig::default()).unwrap())
}

#[test]
fn a_missing_model_skips_unless_required() {
    let missing = Path::new("/nonexistent/models/e5-small/tokenizer.json");
    assert!(load_or_skip(missing, false, "a_missing_model_skips_unless_required").is_none());
}

#[test]
#[should_panic(expected = "ARABTAG_REQUIRE_MODELS=1: run `make models`")]
fn a_missing_model_fails_when_required() {
    load_or_skip(Path::new("/nonexistent/tokenizer.json"), true, "required");
}
