//! Hub sources resolved through `hf-hub` from caches that these tests write
//! in the hub's own layout:
//!
//! ```text
//! CACHE/models--ORG--NAME/blobs/<etag>              the bytes
//! CACHE/models--ORG--NAME/snapshots/<commit>/<file> → ../../blobs/<etag>
//! CACHE/models--ORG--NAME/refs/main                 <commit>
//! ```
//!
//! (`huggingface_hub` writes `refs/<branch>` only; `hf-hub` also writes
//! `refs/<commit>` for a commit it was asked for.) Nothing here downloads.

use std::path::{Path, PathBuf};

use arabtag_infer::InferError;
use arabtag_infer::config::{ResolveOptions, ResolvedSource, offline_from_env};

use super::{PROTOTYPES, checkpoint_json, offline, parse_in, sha, write};

const REPO: &str = "Org/tiny-bert";
const REV: &str = "0123456789abcdef0123456789abcdef01234567";
const OLD_REV: &str = "fedcba9876543210fedcba9876543210fedcba98";
const WEIGHTS: &[u8] = b"weights of the tiny bert";
const TOKENIZER: &[u8] = b"{\"tokenizer\": true}";

/// Puts `file` (with `bytes`) into the cache as `huggingface_hub` does: a
/// blob named by its hash and a relative symlink from the snapshot.
fn cache_file(cache: &Path, repo: &str, rev: &str, file: &str, bytes: &[u8]) -> PathBuf {
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    let blob = write(&repo_dir, &format!("blobs/{}", sha(bytes)), bytes);
    let link = repo_dir.join("snapshots").join(rev).join(file);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    let depth = file.split('/').count() + 1; // snapshots/<rev>/<file parts>
    let target = PathBuf::from("../".repeat(depth))
        .join("blobs")
        .join(blob.file_name().unwrap());
    std::os::unix::fs::symlink(target, &link).unwrap();
    assert!(link.exists(), "{} resolves", link.display());
    link
}

fn set_ref(cache: &Path, repo: &str, name: &str, rev: &str) {
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    write(&repo_dir, &format!("refs/{name}"), rev);
}

fn json() -> String {
    checkpoint_json("bert", 512, &["O", "B-PER", "I-PER"])
}

/// A config for `REPO` at `REV` pinning every file.
fn hub_toml() -> String {
    format!(
        r#"schema_version = 1
[source.hub]
repo = "{REPO}"
revision = "{REV}"
config = {{ sha256 = "{}" }}
weights = {{ sha256 = "{}" }}
tokenizer = {{ file = "onnx/tokenizer.json", sha256 = "{}" }}
{PROTOTYPES}"#,
        sha(json()),
        sha(WEIGHTS),
        sha(TOKENIZER)
    )
}

/// A cache holding every file of `hub_toml`.
fn full_cache(cache: &Path) {
    cache_file(cache, REPO, REV, "config.json", json().as_bytes());
    cache_file(cache, REPO, REV, "model.safetensors", WEIGHTS);
    cache_file(cache, REPO, REV, "onnx/tokenizer.json", TOKENIZER);
}

#[test]
fn a_cache_written_by_huggingface_hub_resolves_offline_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    full_cache(&cache);
    set_ref(&cache, REPO, "main", REV);
    let config = parse_in(dir.path(), &hub_toml()).unwrap();
    let model = config.resolve(&offline(&cache)).unwrap();
    let snapshot = cache.join("models--Org--tiny-bert/snapshots").join(REV);
    let paths: Vec<PathBuf> = model.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(
        paths,
        [
            snapshot.join("config.json"),
            snapshot.join("model.safetensors"),
            snapshot.join("onnx/tokenizer.json"),
        ]
    );
    assert_eq!(
        model.source,
        ResolvedSource::Hub {
            repo: REPO.into(),
            revision: REV.parse().unwrap(),
            cache: cache.clone(),
        }
    );
    let verified = model.verify().unwrap();
    assert_eq!(verified.files()[1].sha256.to_string(), sha(WEIGHTS));
}

#[test]
fn a_cache_written_by_hf_hub_resolves_through_its_commit_ref() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    full_cache(&cache);
    // hf-hub's `download` records the commit it was asked for as a ref
    set_ref(&cache, REPO, REV, REV);
    let model = parse_in(dir.path(), &hub_toml())
        .unwrap()
        .resolve(&offline(&cache))
        .unwrap();
    model.verify().unwrap();
}

#[test]
fn a_miss_offline_names_repo_revision_file_and_where_to_put_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    cache_file(&cache, REPO, REV, "config.json", json().as_bytes());
    // the weights exist only in another commit's snapshot, and main points there
    cache_file(&cache, REPO, OLD_REV, "model.safetensors", WEIGHTS);
    set_ref(&cache, REPO, "main", OLD_REV);
    let config = parse_in(dir.path(), &hub_toml()).unwrap();
    let err = config.resolve(&offline(&cache)).unwrap_err();
    let InferError::HubNotCached { misses, cache: c } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(c, &cache);
    let files: Vec<&str> = misses.iter().map(|m| m.file.as_str()).collect();
    assert_eq!(files, ["model.safetensors", "onnx/tokenizer.json"]);
    let snapshot = cache.join("models--Org--tiny-bert/snapshots").join(REV);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "resolving offline (HF_HUB_OFFLINE or --offline): nothing is downloaded, and the hub cache {} lacks\n",
            cache.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  - model.safetensors of {REPO} at revision {REV} (expected at {})\n",
            snapshot.join("model.safetensors").display()
        )),
        "{text}"
    );
    assert!(
        text.ends_with(
            "run once with network access (without HF_HUB_OFFLINE or --offline) to download them, \
             or copy the files to the paths named"
        ),
        "{text}"
    );
}

#[test]
fn a_dangling_snapshot_link_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    full_cache(&cache);
    std::fs::remove_file(
        cache
            .join("models--Org--tiny-bert/blobs")
            .join(sha(WEIGHTS)),
    )
    .unwrap();
    let err = parse_in(dir.path(), &hub_toml())
        .unwrap()
        .resolve(&offline(&cache))
        .unwrap_err();
    assert!(
        matches!(&err, InferError::HubNotCached { misses, .. } if misses.len() == 1 && misses[0].file == "model.safetensors"),
        "{err:?}"
    );
}

#[test]
fn a_file_can_come_from_another_repository() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let base_rev = "c23d21b0620b635a76227c604d44e43a9f0ee389";
    cache_file(&cache, REPO, REV, "config.json", json().as_bytes());
    cache_file(&cache, REPO, REV, "model.safetensors", WEIGHTS);
    let tokenizer = cache_file(
        &cache,
        "FacebookAI/xlm-roberta-large",
        base_rev,
        "tokenizer.json",
        TOKENIZER,
    );
    let toml = hub_toml().replace(
        "tokenizer = { file = \"onnx/tokenizer.json\",",
        &format!(
            "tokenizer = {{ repo = \"FacebookAI/xlm-roberta-large\", revision = \"{base_rev}\","
        ),
    );
    let model = parse_in(dir.path(), &toml)
        .unwrap()
        .resolve(&offline(&cache))
        .unwrap();
    assert_eq!(model.files.tokenizer.path, tokenizer);
    model.verify().unwrap();
}

#[test]
fn a_tampered_blob_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    full_cache(&cache);
    std::fs::write(
        cache
            .join("models--Org--tiny-bert/blobs")
            .join(sha(WEIGHTS)),
        b"tampered",
    )
    .unwrap();
    let err = parse_in(dir.path(), &hub_toml())
        .unwrap()
        .resolve(&offline(&cache))
        .unwrap()
        .verify()
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "sha256 is {}, expected {} (source.hub.weights.sha256)",
            sha(b"tampered"),
            sha(WEIGHTS)
        )),
        "{err}"
    );
}

#[test]
fn online_a_miss_is_downloaded_and_a_failure_says_what_to_do() {
    if offline_from_env() {
        eprintln!("skipped: HF_HUB_OFFLINE is set, so resolving never goes online");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    cache_file(&cache, REPO, REV, "config.json", json().as_bytes());
    cache_file(&cache, REPO, REV, "onnx/tokenizer.json", TOKENIZER);
    // Port 1 on the loopback refuses at once: the download is tried, and fails.
    let options = ResolveOptions {
        offline: false,
        hub_cache: Some(cache.clone()),
        endpoint: Some("http://127.0.0.1:1".into()),
    };
    let err = parse_in(dir.path(), &hub_toml())
        .unwrap()
        .resolve(&options)
        .unwrap_err();
    let InferError::HubDownload { miss, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(miss.file, "model.safetensors");
    assert_eq!(
        &miss.target,
        &cache
            .join("models--Org--tiny-bert/snapshots")
            .join(REV)
            .join("model.safetensors")
    );
    assert!(
        err.to_string().starts_with(&format!(
            "cannot download model.safetensors of {REPO} at revision {REV} into the hub cache {}; \
             without network, copy it to ",
            cache.display()
        )),
        "{err}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );
}
