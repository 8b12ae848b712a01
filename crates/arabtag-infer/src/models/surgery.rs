//! Weight surgery on our BERT, apart from the architecture ([`super::bert`]):
//! layers converted to 8-bit integer products or to 4-bit, or dequantised;
//! layers replaced by a head file's fine-tuned ones (f32, or its 8-bit rows
//! as stored); every tensor read back under its checkpoint name (what an
//! export writes).

use std::sync::Arc;

use arabtag_kernels::Int8Linear;
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use super::bert::{BertLayer, BertModel, LAYER_PREFIX};
use super::layers::{Embedding, Linear};
use crate::InferError;

/// The 0-based layer indices of the `encoder.layer.{i}.…` tensors among
/// `tensors`, ascending.
pub(crate) fn layer_indices(tensors: &std::collections::HashMap<String, Tensor>) -> Vec<usize> {
    let indices: std::collections::BTreeSet<usize> = tensors
        .keys()
        .filter_map(|name| {
            let rest = name.strip_prefix(LAYER_PREFIX)?.strip_prefix('.')?;
            rest.split('.').next()?.parse().ok()
        })
        .collect();
    indices.into_iter().collect()
}

impl BertLayer {
    fn map_linear(
        &self,
        f: &dyn Fn(&Linear) -> Result<Linear, InferError>,
    ) -> Result<Self, InferError> {
        Ok(Self {
            query: f(&self.query)?,
            key: f(&self.key)?,
            value: f(&self.value)?,
            attention_out: f(&self.attention_out)?,
            attention_norm: self.attention_norm.clone(),
            intermediate: f(&self.intermediate)?,
            activation: self.activation,
            output: f(&self.output)?,
            output_norm: self.output_norm.clone(),
            qkv: None,
        }
        .fuse_qkv())
    }

    /// Whether all six matrices are 8-bit.
    fn is_int8(&self) -> bool {
        [
            &self.query,
            &self.key,
            &self.value,
            &self.attention_out,
            &self.intermediate,
            &self.output,
        ]
        .iter()
        .all(|l| l.is_int8())
    }

    /// This layer with [`BertLayer::qkv`] set when its query, key and value
    /// are all 8-bit, and unset otherwise.
    pub(crate) fn fuse_qkv(mut self) -> Self {
        self.qkv = match (&self.query, &self.key, &self.value) {
            (
                Linear::Int8 { layer: q, .. },
                Linear::Int8 { layer: k, .. },
                Linear::Int8 { layer: v, .. },
            ) => Int8Linear::stack(&[q, k, v]).map(Arc::new),
            _ => None,
        };
        self
    }

    /// The layer's tensors under their checkpoint names (relative to
    /// `encoder.layer.{i}.`), f32, 4-bit matrices dequantised.
    pub(crate) fn named_tensors(&self) -> Result<Vec<(String, Tensor)>, InferError> {
        let mut out = Vec::with_capacity(16);
        let linears = [
            ("attention.self.query", &self.query),
            ("attention.self.key", &self.key),
            ("attention.self.value", &self.value),
            ("attention.output.dense", &self.attention_out),
            ("intermediate.dense", &self.intermediate),
            ("output.dense", &self.output),
        ];
        for (name, linear) in linears {
            let Linear::Dense(dense) = linear.dequantize()? else {
                unreachable!("dequantize gives a dense layer");
            };
            out.push((
                format!("{name}.weight"),
                dense.weight().to_dtype(DType::F32)?,
            ));
            if let Some(b) = dense.bias() {
                out.push((format!("{name}.bias"), b.to_dtype(DType::F32)?));
            }
        }
        for (name, norm) in [
            ("attention.output.LayerNorm", &self.attention_norm),
            ("output.LayerNorm", &self.output_norm),
        ] {
            out.push((
                format!("{name}.weight"),
                norm.weight().to_dtype(DType::F32)?,
            ));
            if let Some(b) = norm.bias() {
                out.push((format!("{name}.bias"), b.to_dtype(DType::F32)?));
            }
        }
        Ok(out)
    }
}

impl BertModel {
    /// The tensors of transformer layer `index` (0-based) under their
    /// checkpoint names, `encoder.layer.{index}.…`, f32.
    pub fn layer_tensors(&self, index: usize) -> Result<Vec<(String, Tensor)>, InferError> {
        let layer = self.layers.get(index).ok_or(InferError::LayerOutOfRange {
            layer: index + 1,
            layers: self.layers.len(),
        })?;
        Ok(layer
            .named_tensors()?
            .into_iter()
            .map(|(name, t)| (format!("{LAYER_PREFIX}.{index}.{name}"), t))
            .collect())
    }

    /// This model with the layers `indices` read from a head file's 8-bit
    /// rows (`encoder.layer.{i}.….weight.q8` and `.scale`, as
    /// `arabtag train ner --finetune` writes them) as 8-bit layers, the
    /// integers as stored, with no f32 copy on the way.
    pub fn with_int8_layers_from(
        &self,
        tensors: &std::collections::HashMap<String, Tensor>,
        indices: &[usize],
    ) -> Result<Self, InferError> {
        let mut layers = self.layers.clone();
        for &i in indices {
            let Some(old) = layers.get(i) else {
                return Err(InferError::LayerOutOfRange {
                    layer: i + 1,
                    layers: layers.len(),
                });
            };
            let get = |name: &str| {
                let key = format!("{LAYER_PREFIX}.{i}.{name}");
                tensors.get(&key).ok_or_else(|| {
                    InferError::Candle(candle_core::Error::CannotFindTensor { path: key })
                })
            };
            let f32s = |t: &Tensor| -> Result<Vec<f32>, InferError> {
                Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
            };
            let linear = |name: &str| -> Result<Linear, InferError> {
                let q = get(&format!("{name}.weight.q8"))?;
                let (out, in_) = q.dims2()?;
                let rows: Vec<i8> = q
                    .flatten_all()?
                    .to_vec1::<u8>()?
                    .into_iter()
                    .map(|v| (i16::from(v) - 128) as i8)
                    .collect();
                let scales = f32s(get(&format!("{name}.weight.scale"))?)?;
                let bias = get(&format!("{name}.bias")).ok().map(f32s).transpose()?;
                Linear::int8(Int8Linear::from_i8(rows, scales, out, in_, bias.as_deref()))
            };
            let norm = |name: &str| -> Result<LayerNorm, InferError> {
                Ok(LayerNorm::new(
                    get(&format!("{name}.weight"))?.to_dtype(DType::F32)?,
                    get(&format!("{name}.bias"))?.to_dtype(DType::F32)?,
                    self.dims.layer_norm_eps,
                ))
            };
            layers[i] = BertLayer {
                query: linear("attention.self.query")?,
                key: linear("attention.self.key")?,
                value: linear("attention.self.value")?,
                attention_out: linear("attention.output.dense")?,
                attention_norm: norm("attention.output.LayerNorm")?,
                intermediate: linear("intermediate.dense")?,
                activation: old.activation,
                output: linear("output.dense")?,
                output_norm: norm("output.LayerNorm")?,
                qkv: None,
            }
            .fuse_qkv();
        }
        Ok(Self {
            layers,
            ..self.clone()
        })
    }

    /// Whether the layers' matrices are 8-bit ([`BertModel::to_int8`]).
    pub fn is_int8(&self) -> bool {
        self.layers.iter().all(BertLayer::is_int8)
    }

    /// This model with the layers found in `tensors` (checkpoint names
    /// `encoder.layer.{i}.…`, every tensor of a layer present) in place of
    /// its own, and the 0-based indices replaced, ascending. Other tensors
    /// are ignored; a layer index past the encoder's depth is an error.
    pub fn with_layers_from(
        &self,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<(Self, Vec<usize>), InferError> {
        let indices = layer_indices(tensors);
        let mut layers = self.layers.clone();
        for &i in &indices {
            let Some(old) = layers.get(i) else {
                return Err(InferError::LayerOutOfRange {
                    layer: i + 1,
                    layers: layers.len(),
                });
            };
            let vb = VarBuilder::from_tensors(tensors.clone(), self.dtype, &self.device);
            let ff = old.intermediate.out_features()?;
            let layer = BertLayer::load_sized(
                vb.pp(LAYER_PREFIX).pp(i),
                (self.dims.hidden_size, ff),
                self.dims.layer_norm_eps,
                old.activation,
            )?;
            layers[i] = layer;
        }
        Ok((
            Self {
                layers,
                ..self.clone()
            },
            indices.into_iter().collect(),
        ))
    }

    /// This model with every matrix of the layers quantized to `dtype`
    /// (`GgmlDType::Q4_0` keeps 4 bits a weight plus an f16 scale per 32).
    /// The hidden and feed-forward widths must be multiples of 32. Embeddings
    /// and LayerNorms stay as they are.
    pub fn quantize(&self, dtype: GgmlDType) -> Result<Self, InferError> {
        self.map_linear(&|l| l.quantize(dtype))
    }

    /// This model with every matrix of the layers as 8-bit rows run as
    /// integer products ([`Linear::to_int8`]). Layers already 8-bit are
    /// kept as they are (their stacked query-key-value product too).
    pub fn to_int8(&self) -> Result<Self, InferError> {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                if l.is_int8() {
                    Ok(l.clone())
                } else {
                    l.map_linear(&Linear::to_int8)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            layers,
            ..self.clone()
        })
    }

    /// This model with every quantized matrix dequantized to f32.
    pub fn dequantize(&self) -> Result<Self, InferError> {
        self.map_linear(&Linear::dequantize)
    }

    fn map_linear(
        &self,
        f: &dyn Fn(&Linear) -> Result<Linear, InferError>,
    ) -> Result<Self, InferError> {
        let layers = self
            .layers
            .iter()
            .map(|l| l.map_linear(f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            layers,
            ..self.clone()
        })
    }

    /// The embeddings' tensors under their checkpoint names
    /// (`embeddings.word_embeddings.weight`, …), f32, a 4-bit word table
    /// dequantised whole. The token-type table is the one row the encoder
    /// keeps, `[1, hidden]`.
    pub fn embedding_tensors(&self) -> Result<Vec<(String, Tensor)>, InferError> {
        let table = |e: &Embedding| -> Result<Tensor, InferError> {
            Ok(match e {
                Embedding::Dense(e) => e.embeddings().to_dtype(DType::F32)?,
                Embedding::Quantized(q) => q.dequantize(&self.device)?,
                Embedding::Q4Rows(q) => q.dequantize()?,
            })
        };
        let emb = &self.embeddings;
        let mut out = vec![
            (
                "embeddings.word_embeddings.weight".to_owned(),
                table(&emb.word)?,
            ),
            (
                "embeddings.position_embeddings.weight".to_owned(),
                table(&emb.position)?,
            ),
            (
                "embeddings.token_type_embeddings.weight".to_owned(),
                emb.token_type.to_dtype(DType::F32)?.unsqueeze(0)?,
            ),
            (
                "embeddings.LayerNorm.weight".to_owned(),
                emb.layer_norm.weight().to_dtype(DType::F32)?,
            ),
        ];
        if let Some(b) = emb.layer_norm.bias() {
            out.push((
                "embeddings.LayerNorm.bias".to_owned(),
                b.to_dtype(DType::F32)?,
            ));
        }
        Ok(out)
    }
}
