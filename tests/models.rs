//! `arabtag models show|verify` end to end: output, JSON, exit codes, every
//! problem named; hub configs through a cache written in the hub's layout
//! (nothing downloads).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Runs `arabtag models ARGS` in the workspace root with `env` set and
/// `HF_HUB_OFFLINE` unset unless `env` sets it.
pub(crate) fn models(
    args: &[&dyn AsRef<std::ffi::OsStr>],
    env: &[(&str, &dyn AsRef<std::ffi::OsStr>)],
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_arabtag"));
    cmd.arg("models")
        .args(args.iter().map(|a| a.as_ref()))
        .current_dir(root())
        .env_remove("HF_HUB_OFFLINE");
    for (k, v) in env {
        cmd.env(k, v.as_ref());
    }
    cmd.output().unwrap()
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(out), stderr(out)))
}

fn sha(bytes: impl AsRef<[u8]>) -> String {
    Sha256::digest(bytes.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

const CONFIG_JSON: &str = r#"{"model_type": "bert", "max_position_embeddings": 512,
  "id2label": {"0": "O", "1": "B-PER", "2": "I-PER", "3": "B-MISC", "4": "I-MISC"}}"#;
const WEIGHTS: &[u8] = b"safetensors stand-in";
const TOKENIZER: &[u8] = b"{\"version\": \"1.0\"}";

fn tasks() -> &'static str {
    r#"
[ner]
labels = ["O", "B-PER", "I-PER", "B-MISC", "I-MISC"]
map = { PER = "PER" }
"#
}

/// `dir/ckpt` in the hub layout and `dir/model.toml` pinning it.
fn local(dir: &Path) -> PathBuf {
    write(&dir.join("ckpt/config.json"), CONFIG_JSON);
    write(&dir.join("ckpt/model.safetensors"), WEIGHTS);
    write(&dir.join("ckpt/tokenizer.json"), TOKENIZER);
    let toml = format!(
        "schema_version = 1\nname = \"tiny\"\n[source.local]\ndir = \"ckpt\"\n\
         config = {{ sha256 = \"{}\" }}\nweights = {{ sha256 = \"{}\" }}\n\
         tokenizer = {{ sha256 = \"{}\" }}\n{}",
        sha(CONFIG_JSON),
        sha(WEIGHTS),
        sha(TOKENIZER),
        tasks()
    );
    let path = dir.join("model.toml");
    write(&path, toml);
    path
}

#[test]
fn show_prints_every_file_with_its_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let config = local(dir.path());
    let out = models(&[&"show", &config], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let weights = dir.path().join("ckpt/model.safetensors");
    for expected in [
        "name          tiny".to_owned(),
        "architecture  bert, 512 positions".to_owned(),
        format!("  weights     {}", weights.display()),
        format!("              sha256 {}", sha(WEIGHTS)),
        "ner           the checkpoint's classifier; aggregation first; windows of 512 positions, \
         stride 128"
            .to_owned(),
        "  map         PER → PER; dropped: MISC".to_owned(),
        "stance        none".to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in\n{text}");
    }
}

#[test]
fn show_json_is_the_resolved_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = local(dir.path());
    let out = models(&[&"show", &config, &"--json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["architecture"], "bert");
    assert_eq!(v["max_positions"], 512);
    assert_eq!(v["weights_format"], "safetensors");
    assert_eq!(v["source"]["kind"], "local");
    assert_eq!(v["config_path"], config.display().to_string());
    assert_eq!(
        v["files"]["weights"]["path"],
        dir.path()
            .join("ckpt/model.safetensors")
            .display()
            .to_string()
    );
    assert_eq!(v["files"]["weights"]["sha256"], sha(WEIGHTS));
    assert_eq!(v["files"]["weights"]["key"], "source.local.weights");
    assert_eq!(v["ner"]["map"]["PER"], "PER");
    assert_eq!(v["ner"]["head"]["kind"], "checkpoint");
    assert_eq!(v["normalizer"]["unify_alef"], false);
}

#[test]
fn verify_passes_when_every_file_matches() {
    let dir = tempfile::tempdir().unwrap();
    let config = local(dir.path());
    let out = models(&[&"verify", &config], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().all(|l| l.starts_with("ok ")), "{text}");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn verify_names_each_bad_file_expected_and_actual_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = local(dir.path());
    write(&dir.path().join("ckpt/model.safetensors"), b"other weights");
    std::fs::remove_file(dir.path().join("ckpt/tokenizer.json")).unwrap();
    let out = models(&[&"verify", &config], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let weights = dir.path().join("ckpt/model.safetensors");
    assert!(
        err.contains(&format!(
            "error: weights {}: sha256 is {}, expected {} (source.local.weights.sha256)",
            weights.display(),
            sha(b"other weights"),
            sha(WEIGHTS)
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "error: tokenizer {}: missing",
            dir.path().join("ckpt/tokenizer.json").display()
        )),
        "{err}"
    );
    assert!(
        err.ends_with("arabtag models verify: 2 of 3 files failed\n"),
        "{err}"
    );
    let text = stdout(&out);
    assert!(text.contains("mismatch   weights"), "{text}");
    assert!(text.contains("missing    tokenizer"), "{text}");

    let out = models(&[&"verify", &config, &"--json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let v = json(&out);
    assert_eq!(v["ok"], false);
    let statuses: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "mismatch", "missing"]);
    assert_eq!(v["files"][1]["sha256"], sha(b"other weights"));
    assert_eq!(v["files"][1]["expected_sha256"], sha(WEIGHTS));
}

#[test]
fn verify_refuses_an_unpinned_file_and_names_its_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let config = local(dir.path());
    let toml = std::fs::read_to_string(&config).unwrap();
    let unpinned: String = toml
        .lines()
        .filter(|l| !l.starts_with("weights ="))
        .map(|l| format!("{l}\n"))
        .collect();
    write(&config, unpinned);
    let out = models(&[&"verify", &config], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "no sha256 pinned; this file's is {0}: if it is the file you mean, pin it with \
             sha256 = \"{0}\" in source.local.weights",
            sha(WEIGHTS)
        )),
        "{}",
        stderr(&out)
    );
    let out = models(&[&"show", &config], &[]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("sha256 not pinned (add sha256 to source.local.weights)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn verify_checks_the_config_against_verified_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = local(dir.path());
    let toml = std::fs::read_to_string(&config).unwrap() + "window = 600\n";
    write(&config, toml);
    let out = models(&[&"verify", &config], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("error: the files verify, but the config does not fit them: ")
            && stderr(&out).contains(
                "ner.window = 600 exceeds the model's 512 positions (config.json); give at most 512"
            ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_config_is_exit_2_with_line_and_column_or_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let config = local(dir.path());
    let toml = std::fs::read_to_string(&config).unwrap();
    write(&config, toml.replace("name =", "nam ="));
    let out = models(&[&"show", &config], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "error: cannot read the model config: {}:2:1: not a valid model config: TOML parse \
             error at line 2, column 1",
            config.display()
        )),
        "{err}"
    );
    assert!(err.contains("unknown field `nam`"), "{err}");

    write(
        &config,
        toml.replace("map = { PER = \"PER\" }", "map = { PER = \"PERSON\" }"),
    );
    let out = models(&[&"verify", &config], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "ner.map.PER = \"PERSON\": map to one of PER, ORG, LOC, DATE (leave a type out to \
             drop it)"
        ),
        "{}",
        stderr(&out)
    );
}

/// A hub cache in the layout `huggingface_hub` writes, holding `files`.
fn hub_cache(cache: &Path, repo: &str, rev: &str, files: &[(&str, &[u8])]) {
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    for (name, bytes) in files {
        let blob = repo_dir.join("blobs").join(sha(bytes));
        write(&blob, bytes);
        let link = repo_dir.join("snapshots").join(rev).join(name);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/{}", sha(bytes)), &link).unwrap();
    }
    write(&repo_dir.join("refs/main"), rev);
}

const REPO: &str = "Org/tiny-bert";
const REV: &str = "0123456789abcdef0123456789abcdef01234567";

fn hub_config(dir: &Path) -> PathBuf {
    let toml = format!(
        "schema_version = 1\n[source.hub]\nrepo = \"{REPO}\"\nrevision = \"{REV}\"\n\
         config = {{ sha256 = \"{}\" }}\nweights = {{ sha256 = \"{}\" }}\n\
         tokenizer = {{ sha256 = \"{}\" }}\n{}",
        sha(CONFIG_JSON),
        sha(WEIGHTS),
        sha(TOKENIZER),
        tasks()
    );
    let path = dir.join("hub.toml");
    write(&path, toml);
    path
}

#[test]
fn a_hub_config_resolves_offline_from_the_cache_the_environment_names() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hf/hub");
    hub_cache(
        &cache,
        REPO,
        REV,
        &[
            ("config.json", CONFIG_JSON.as_bytes()),
            ("model.safetensors", WEIGHTS),
            ("tokenizer.json", TOKENIZER),
        ],
    );
    let config = hub_config(dir.path());
    // HF_HOME names the cache as HF_HOME/hub
    let hf_home = dir.path().join("hf");
    let out = models(
        &[&"verify", &config],
        &[("HF_HOME", &hf_home), ("HF_HUB_OFFLINE", &"1")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let snapshot = cache.join("models--Org--tiny-bert/snapshots").join(REV);
    assert!(
        stdout(&out).contains(&snapshot.join("model.safetensors").display().to_string()),
        "{}",
        stdout(&out)
    );
    // HF_HUB_CACHE names it directly; --offline does what HF_HUB_OFFLINE does
    let out = models(
        &[&"show", &config, &"--offline", &"--json"],
        &[("HF_HUB_CACHE", &cache)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["source"]["kind"], "hub");
    assert_eq!(v["source"]["repo"], REPO);
    assert_eq!(v["source"]["revision"], REV);
    assert_eq!(v["source"]["cache"], cache.display().to_string());
}

#[test]
fn a_hub_file_missing_offline_names_repo_revision_file_and_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    hub_cache(
        &cache,
        REPO,
        REV,
        &[
            ("config.json", CONFIG_JSON.as_bytes()),
            ("tokenizer.json", TOKENIZER),
        ],
    );
    let config = hub_config(dir.path());
    let out = models(
        &[&"verify", &config],
        &[("HF_HUB_CACHE", &cache), ("HF_HUB_OFFLINE", &"1")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let target = cache
        .join("models--Org--tiny-bert/snapshots")
        .join(REV)
        .join("model.safetensors");
    assert!(
        err.starts_with(&format!(
            "error: cannot find the model's files: resolving offline (HF_HUB_OFFLINE or \
             --offline): nothing is downloaded, and the hub cache {} lacks\n  - model.safetensors \
             of {REPO} at revision {REV} (expected at {})\n",
            cache.display(),
            target.display()
        )),
        "{err}"
    );
    assert!(err.contains("run once with network access"), "{err}");
}

/// A shipped config whose files `make models` fetches verifies; skipped
/// (with a note) when they are missing, unless `ARABTAG_REQUIRE_MODELS=1`.
fn verify_fetched(config: &str, probe: &str, test: &str) {
    let required = std::env::var("ARABTAG_REQUIRE_MODELS").is_ok_and(|v| v == "1");
    if !root().join(probe).exists() {
        assert!(
            !required,
            "{probe} is missing and ARABTAG_REQUIRE_MODELS=1: run `make models`"
        );
        eprintln!("{test}: skipped: run `make models` ({probe} is missing)");
        return;
    }
    let out = models(&[&"verify", &config], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).lines().all(|l| l.starts_with("ok ")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn models_verify_default_passes_after_make_models() {
    verify_fetched(
        "models/default.toml",
        "models/e5-small/e5-small-q4.bin",
        "models_verify_default_passes_after_make_models",
    );
}

#[test]
fn models_verify_minilm_passes_after_make_models() {
    verify_fetched(
        "models/minilm.toml",
        "models/minilm/model.safetensors",
        "models_verify_minilm_passes_after_make_models",
    );
}
