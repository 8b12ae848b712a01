//! Hub files through `hf-hub` and its cache.
//!
//! The cache has the hub's own layout, shared with Python's
//! `huggingface_hub`: `CACHE/models--ORG--NAME/snapshots/COMMIT/FILE`
//! (usually a symlink into `blobs/`), and `refs/BRANCH` files holding a
//! commit. A pinned commit is looked up with `hf-hub`'s
//! [`Cache::repo`](hf_hub::Cache::repo)`(`[`Repo::with_revision`]`).get(file)`,
//! which reads `refs/COMMIT` as `hf-hub` writes it; Python writes no ref for a
//! commit, so the snapshot path itself is tried next. What is missing is
//! downloaded with `hf_hub::api::sync` unless resolving offline.
//!
//! The cache folder: `HF_HUB_CACHE`, else `HF_HOME/hub`, else
//! `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`, as
//! `huggingface_hub` does. (`hf-hub` 0.4's own `Cache::from_env` reads
//! `HF_HOME` only, so the folder is given to it explicitly.) The endpoint is
//! `HF_ENDPOINT` or `https://huggingface.co`; `HF_TOKEN`, else the token file
//! beside the cache, authenticates.

use std::fmt;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};
use serde::Serialize;

use super::HubFile;
use crate::InferError;

/// How [`ModelConfig::resolve`](super::ModelConfig::resolve) reaches the Hugging Face hub.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveOptions {
    /// Take hub files from the cache only; never touch the network.
    /// `HF_HUB_OFFLINE=1` in the environment does the same, whatever this
    /// says.
    pub offline: bool,
    /// The hub cache folder (`models--ORG--NAME/…` inside); `None`: the
    /// environment's ([`hub_cache_dir`]).
    pub hub_cache: Option<PathBuf>,
    /// The hub's address; `None`: `HF_ENDPOINT`, else `https://huggingface.co`.
    pub endpoint: Option<String>,
}

impl ResolveOptions {
    /// Offline when `HF_HUB_OFFLINE` says so; cache and endpoint from the
    /// environment.
    pub fn from_env() -> Self {
        Self {
            offline: offline_from_env(),
            ..Self::default()
        }
    }
}

/// A hub file that is not in the cache while resolving offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubMiss {
    pub repo: String,
    pub revision: String,
    pub file: String,
    /// Where the file would lie in the cache.
    pub target: PathBuf,
}

impl HubMiss {
    /// The message of [`InferError::HubNotCached`].
    pub(crate) fn list(cache: &Path, misses: &[HubMiss]) -> String {
        let mut s = format!(
            "resolving offline (HF_HUB_OFFLINE or --offline): nothing is downloaded, and the hub cache {} lacks",
            cache.display()
        );
        for miss in misses {
            s.push_str(&format!("\n  - {miss}"));
        }
        s.push_str(
            "\nrun once with network access (without HF_HUB_OFFLINE or --offline) to download \
             them, or copy the files to the paths named",
        );
        s
    }
}

impl fmt::Display for HubMiss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} at revision {} (expected at {})",
            self.file,
            self.repo,
            self.revision,
            self.target.display()
        )
    }
}

/// Whether `HF_HUB_OFFLINE` asks for offline mode (`1`, `true`, `yes`, `on`,
/// any case, as `huggingface_hub` reads it).
pub fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// The hub cache folder the environment names (`HF_HUB_CACHE`, `HF_HOME/hub`,
/// `XDG_CACHE_HOME/huggingface/hub`, `~/.cache/huggingface/hub`), made
/// absolute; `None` when none of them is set.
pub fn hub_cache_dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let dir = if let Some(dir) = var("HF_HUB_CACHE") {
        PathBuf::from(dir)
    } else if let Some(home) = var("HF_HOME") {
        PathBuf::from(home).join("hub")
    } else if let Some(xdg) = var("XDG_CACHE_HOME") {
        PathBuf::from(xdg).join("huggingface").join("hub")
    } else {
        PathBuf::from(var("HOME")?)
            .join(".cache")
            .join("huggingface")
            .join("hub")
    };
    std::path::absolute(&dir).ok()
}

/// The cache folder of `options`, or the environment's.
pub(super) fn cache_dir(options: &ResolveOptions) -> Result<PathBuf, InferError> {
    match &options.hub_cache {
        Some(dir) => std::path::absolute(dir).map_err(|source| InferError::Read {
            path: dir.clone(),
            source,
        }),
        None => hub_cache_dir().ok_or(InferError::HubCacheDir),
    }
}

fn repo(file: &HubFile) -> Repo {
    Repo::with_revision(
        file.repo.clone(),
        RepoType::Model,
        file.revision.as_str().to_owned(),
    )
}

/// `CACHE/models--ORG--NAME/snapshots/COMMIT/FILE`.
fn snapshot_path(cache: &Path, file: &HubFile) -> PathBuf {
    let mut path = cache
        .join(repo(file).folder_name())
        .join("snapshots")
        .join(file.revision.as_str());
    for part in file.file.split('/') {
        path.push(part);
    }
    path
}

fn miss(cache: &Path, file: &HubFile) -> HubMiss {
    HubMiss {
        repo: file.repo.clone(),
        revision: file.revision.to_string(),
        file: file.file.clone(),
        target: snapshot_path(cache, file),
    }
}

/// The cached copy of `file`, if there is one (a dangling link is none).
fn cached(cache: &Path, file: &HubFile) -> Option<PathBuf> {
    let by_ref = Cache::new(cache.to_owned())
        .repo(repo(file))
        .get(&file.file);
    // `get` follows refs/COMMIT; insist that it led to the pinned snapshot.
    let expected = snapshot_path(cache, file);
    match by_ref {
        Some(path) if path == expected => Some(path),
        _ => expected.exists().then_some(expected),
    }
}

/// The local path of every requested file, in order: from the cache, else
/// downloaded into it (unless offline, when every miss is reported at once).
pub(super) fn fetch<const N: usize>(
    files: [&HubFile; N],
    options: &ResolveOptions,
) -> Result<[PathBuf; N], InferError> {
    let cache = cache_dir(options)?;
    let offline = options.offline || offline_from_env();
    let mut found: [Option<PathBuf>; N] = files.map(|f| cached(&cache, f));
    let missing: Vec<usize> = (0..N).filter(|i| found[*i].is_none()).collect();
    if offline && !missing.is_empty() {
        let misses = missing.iter().map(|i| miss(&cache, files[*i])).collect();
        return Err(InferError::HubNotCached { cache, misses });
    }
    if !missing.is_empty() {
        download(&missing, &files, &mut found, &cache, options)?;
    }
    // Every miss was downloaded into `found` or returned an error.
    Ok(found.map(Option::unwrap_or_default))
}

/// Downloads `files[i]` for every `i` in `missing` into `found[i]`.
fn download(
    missing: &[usize],
    files: &[&HubFile],
    found: &mut [Option<PathBuf>],
    cache: &Path,
    options: &ResolveOptions,
) -> Result<(), InferError> {
    let mut builder = ApiBuilder::from_cache(Cache::new(cache.to_owned())).with_progress(false);
    if let Some(endpoint) = options
        .endpoint
        .clone()
        .or_else(|| std::env::var("HF_ENDPOINT").ok())
    {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(token) = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()) {
        builder = builder.with_token(Some(token));
    }
    let api = builder.build().map_err(|source| InferError::HubClient {
        source: Box::new(source),
    })?;
    for &i in missing {
        let file = files[i];
        let _span = tracing::info_span!("download", repo = %file.repo, file = %file.file).entered();
        let path = api
            .repo(repo(file))
            .download(&file.file)
            .map_err(|source| InferError::HubDownload {
                miss: Box::new(miss(cache, file)),
                cache: cache.to_owned(),
                source: Box::new(source),
            })?;
        found[i] = Some(path);
    }
    Ok(())
}
