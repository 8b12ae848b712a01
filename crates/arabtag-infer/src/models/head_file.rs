//! The head file: what `arabtag train ner` writes and the tagger reads.
//!
//! A safetensors file with the token head (`weight`, `bias`) and, for a
//! head trained with `--finetune`, the encoder layers it fine-tuned
//! (`encoder.layer.{i}.…`). Matrices are stored as 8 bits a row
//! (`NAME.q8`, u8 `round(w / scale) + 128`, and `NAME.scale`, f32
//! `max |w| / 127`: [`quantize_rows`]), vectors as f16. [`load_head_file`]
//! reads it back onto an encoder.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use super::BertModel;
use super::bert::LAYER_PREFIX;
use crate::InferError;

/// A matrix `[rows, cols]` as 8-bit values (u8, `round(w / scale) + 128`,
/// in 1..=255) and a scale per row (f32, `max |w| / 127`).
pub fn quantize_rows(t: &Tensor) -> Result<(Tensor, Tensor), InferError> {
    let rows: Vec<Vec<f32>> = t.to_dtype(DType::F32)?.to_vec2()?;
    let (mut q, mut scales) = (Vec::new(), Vec::with_capacity(rows.len()));
    for row in &rows {
        let max = row.iter().fold(0f32, |m, x| m.max(x.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(scale);
        q.extend(
            row.iter()
                .map(|x| ((x / scale).round().clamp(-127.0, 127.0) as i16 + 128) as u8),
        );
    }
    let device = Device::Cpu;
    Ok((
        Tensor::from_vec(q, t.shape(), &device)?,
        Tensor::from_vec(scales, rows.len(), &device)?,
    ))
}

/// The f32 matrix [`quantize_rows`] stored.
pub fn dequantize_rows(q: &Tensor, scale: &Tensor) -> Result<Tensor, InferError> {
    let values = (q.to_dtype(DType::F32)? - 128.0)?;
    Ok(values.broadcast_mul(&scale.to_dtype(DType::F32)?.unsqueeze(1)?)?)
}

/// A head file's tensors with every `NAME.q8` / `NAME.scale` pair
/// (`arabtag_train::FinetuneTrainer::save_head`) replaced by the f32 matrix `NAME`.
pub fn dequantize_head(
    mut tensors: HashMap<String, Tensor>,
) -> Result<HashMap<String, Tensor>, InferError> {
    let names: Vec<String> = tensors
        .keys()
        .filter_map(|k| k.strip_suffix(".q8").map(str::to_owned))
        .collect();
    for name in names {
        let q = tensors.remove(&format!("{name}.q8"));
        let scale = tensors.remove(&format!("{name}.scale"));
        let (Some(q), Some(scale)) = (q, scale) else {
            return Err(InferError::BadCheckpoint {
                path: std::path::PathBuf::from(&name),
                reason: "an 8-bit matrix without its `.scale`".to_owned(),
            });
        };
        tensors.insert(name, dequantize_rows(&q, &scale)?);
    }
    Ok(tensors)
}

/// A head file's tensors, 8-bit matrices dequantised (but for the layers an
/// 8-bit encoder takes, [`BertModel::with_int8_layers_from`], which are left
/// out), and, when it carries encoder layers (`encoder.layer.{i}.…`, written by `arabtag train ner
/// --finetune`), `bert` with those layers in place of its own and their
/// indices.
pub fn load_head_file(
    bert: &BertModel,
    path: &std::path::Path,
    device: &Device,
) -> Result<HeadFile, InferError> {
    let checkpoint = |source: InferError| InferError::Checkpoint {
        path: path.to_owned(),
        source: Box::new(source),
    };
    let mut tensors =
        candle_core::safetensors::load(path, device).map_err(|source| checkpoint(source.into()))?;
    // An 8-bit encoder takes the file's 8-bit layers as they are stored: no
    // f32 copy (57 MB for e5's eight layers), the same integers.
    let mut layers = None;
    if bert.is_int8()
        && tensors
            .keys()
            .any(|k| k.starts_with(LAYER_PREFIX) && k.ends_with(".q8"))
    {
        let indices = super::surgery::layer_indices(&tensors);
        let model = bert
            .with_int8_layers_from(&tensors, &indices)
            .map_err(checkpoint)?;
        tensors.retain(|k, _| !k.starts_with(LAYER_PREFIX));
        layers = Some((model, indices));
    }
    let tensors = dequantize_head(tensors).map_err(checkpoint)?;
    if layers.is_none() && tensors.keys().any(|k| k.starts_with(LAYER_PREFIX)) {
        layers = Some(bert.with_layers_from(&tensors).map_err(checkpoint)?);
    }
    Ok(HeadFile { tensors, layers })
}

/// What [`load_head_file`] reads.
#[derive(Debug)]
pub struct HeadFile {
    pub tensors: HashMap<String, candle_core::Tensor>,
    /// The encoder with the file's layers, and their indices.
    pub layers: Option<(BertModel, Vec<usize>)>,
}

/// The metadata key under which a head file stores its output labels (a
/// JSON array, row order), written by `arabtag train`.
pub const HEAD_LABELS_KEY: &str = "labels";

/// The labels a head file stores in its safetensors metadata
/// ([`HEAD_LABELS_KEY`]); `None` for a file without them (written before
/// they were stored, or by another tool). Only the header is read.
pub fn head_file_labels(path: &std::path::Path) -> Result<Option<Vec<String>>, InferError> {
    use std::io::Read;
    let bad = |problem: String| InferError::Checkpoint {
        path: path.to_owned(),
        source: Box::new(InferError::HeadHeader { problem }),
    };
    let mut file = std::fs::File::open(path).map_err(|source| InferError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| bad(format!("no safetensors header: {e}")))?;
    let len = u64::from_le_bytes(len);
    if len > 100_000_000 {
        return Err(bad(format!("a header of {len} bytes")));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|e| bad(format!("a header cut short: {e}")))?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("a header that is not JSON: {e}")))?;
    let Some(labels) = header
        .get("__metadata__")
        .and_then(|m| m.get(HEAD_LABELS_KEY))
        .and_then(|l| l.as_str())
    else {
        return Ok(None);
    };
    serde_json::from_str(labels).map(Some).map_err(|e| {
        bad(format!(
            "metadata `{HEAD_LABELS_KEY}` is not a JSON list of strings: {e}"
        ))
    })
}
