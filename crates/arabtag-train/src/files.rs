//! What a run shares: how it reports as it goes ([`RunObserver`]), the
//! files it writes and reads back (JSON, pretty, a final newline, and the
//! folders they go in) and the sha256 of its inputs.

use std::path::Path;

use serde::Serialize;

use crate::TrainError;

/// Creates the folder `path` goes in.
pub fn create_parent(path: &Path) -> Result<(), TrainError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| TrainError::Write {
            path: dir.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Reads a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| TrainError::Json {
        path: path.to_owned(),
        source,
    })
}

/// Writes `value` as pretty JSON.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value).map_err(|source| TrainError::Json {
        path: path.to_owned(),
        source,
    })?;
    std::fs::write(path, text + "\n").map_err(|source| TrainError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The hex sha256 of a file's bytes (read in blocks, as the model files
/// are verified).
pub fn sha256_file(path: &Path) -> Result<String, TrainError> {
    arabtag_infer::config::digest(path)
        .map(|d| d.sha256.to_hex())
        .map_err(|source| TrainError::Read {
            path: path.to_owned(),
            source,
        })
}

/// How a run reports as it goes: log lines, and progress over counted
/// work.
pub trait RunObserver {
    /// One line for the user (an epoch's figures, a cache used or written).
    fn line(&self, text: &str);
    /// Progress over `len` units of `what`; the returned callback gets each
    /// step's count, and is dropped when the work is done.
    fn progress(&self, len: u64, what: &str) -> Box<dyn FnMut(usize) + '_>;
}

/// Writes a head file: `tensors`, with the head's output labels in the
/// file's metadata (`"labels"`: a JSON array, row order), which the tagger
/// and `arabtag models verify` check against the model config's labels.
pub fn save_head_file(
    tensors: &std::collections::HashMap<String, candle_core::Tensor>,
    labels: &[String],
    path: &Path,
) -> Result<(), TrainError> {
    create_parent(path)?;
    let metadata = std::collections::HashMap::from([(
        arabtag_infer::models::HEAD_LABELS_KEY.to_owned(),
        serde_json::to_string(labels).map_err(|source| TrainError::Json {
            path: path.to_owned(),
            source,
        })?,
    )]);
    let mut named: Vec<(&String, &candle_core::Tensor)> = tensors.iter().collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    safetensors::serialize_to_file(named, Some(metadata), path).map_err(|e| TrainError::Write {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })
}
