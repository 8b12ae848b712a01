//! Classification heads over an encoder's hidden states, each its own type
//! behind [`TokenHead`] or [`SequenceHead`].
//!
//! | head | tensors | upstream |
//! |---|---|---|
//! | [`TokenClassifier`] (all three) | `classifier.{weight,bias}` | `*ForTokenClassification` |
//! | [`BertSequenceClassifier`] | `bert.pooler.dense.*`, `classifier.*` | `BertForSequenceClassification` |
//! | [`XlmRobertaSequenceClassifier`] | `classifier.dense.*`, `classifier.out_proj.*` | `XLMRobertaClassificationHead` |
//! | [`DebertaV2SequenceClassifier`] | `pooler.dense.*`, `classifier.*` | `ContextPooler` + `classifier` |
//! | [`PooledClassifier`] | a head file: `weight`, `bias` | ours |
//!
//! A classifier's rows must match its labels (`id2label` of the config or
//! the labels a caller gives with a head file); a mismatch is an error that
//! names the tensor and both counts. Dropout is inference-off everywhere.
//! Heads run in f32, as the encoders' outputs are.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Activation, VarBuilder};

use super::base_model;
use super::deberta_v2::HiddenAct;
use super::embed::mean_pool;
use super::layers::Linear;
use crate::InferError;

/// A head that labels every token.
pub trait TokenHead: std::fmt::Debug + Send + Sync {
    /// The labels, in class-id order.
    fn labels(&self) -> &[String];
    /// `[batch, seq, hidden]` f32 → logits `[batch, seq, labels]` f32.
    fn forward(&self, hidden: &Tensor) -> Result<Tensor, InferError>;
    /// The weight `[labels, hidden]` and bias of a head that is one dense
    /// layer (what an export writes as `classifier.*`); `None` otherwise.
    fn dense(&self) -> Option<(&Tensor, Option<&Tensor>)> {
        None
    }
}

/// A head that labels a whole sequence.
pub trait SequenceHead: std::fmt::Debug + Send + Sync {
    /// The labels, in class-id order.
    fn labels(&self) -> &[String];
    /// `[batch, seq, hidden]` f32 and the `[batch, seq]` u32 mask → logits
    /// `[batch, labels]` f32.
    fn forward(&self, hidden: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError>;
}

/// Errors unless `found` equals `expected` (same labels, same order).
pub fn ensure_labels(found: &[String], expected: &[String]) -> Result<(), InferError> {
    if found == expected {
        Ok(())
    } else {
        Err(InferError::LabelsDisagree {
            expected: expected.to_vec(),
            found: found.to_vec(),
        })
    }
}

/// Rows per matrix product in [`Classifier::forward`]: every call has
/// this many, so that the product is blocked the same way for each.
pub const HEAD_ROWS: usize = 64;

/// A linear layer `[labels, in]` + bias whose rows are named.
#[derive(Debug, Clone)]
pub struct Classifier {
    linear: Linear,
    labels: Vec<String>,
}

impl Classifier {
    /// Loads `weight` and `bias` under `vb` (in f32) and checks that the
    /// weight has one row per label and `in_features` columns.
    pub fn load(
        vb: VarBuilder,
        in_features: usize,
        labels: Vec<String>,
    ) -> Result<Self, InferError> {
        let vb = vb.to_dtype(DType::F32);
        let weight = vb.get_unchecked("weight")?;
        let rows = weight.dim(0)?;
        if weight.rank() != 2 || rows != labels.len() {
            return Err(InferError::ClassifierRows {
                tensor: format!("{}.weight", vb.prefix()),
                rows,
                labels: labels.len(),
                names: labels,
            });
        }
        let weight = vb.get((labels.len(), in_features), "weight")?;
        let bias = vb.get(labels.len(), "bias")?;
        Ok(Self {
            linear: Linear::dense(weight, Some(bias)),
            labels,
        })
    }

    /// The labels, in row order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The bias, `[labels]`.
    pub fn bias(&self) -> Option<&Tensor> {
        self.linear.bias()
    }

    /// `[.., in]` → `[.., labels]`, each row's logits bit-identical
    /// whatever rows share its call: the rows go through the matrix product
    /// in blocks of [`HEAD_ROWS`] (the last padded with zero rows), because
    /// gemm chooses how to run a product by its row count and its choices
    /// round differently: a batch's rows moved entity scores in their
    /// seventh decimal with `--batch-size` (seen on the seeds).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor, InferError> {
        let dims = xs.dims().to_vec();
        let Some((&in_features, lead)) = dims.split_last() else {
            return Ok(self.linear.forward(xs)?);
        };
        let rows: usize = lead.iter().product();
        if rows == 0 || in_features == 0 {
            return Ok(self.linear.forward(xs)?);
        }
        let flat = xs.reshape((rows, in_features))?;
        let mut blocks = Vec::with_capacity(rows.div_ceil(HEAD_ROWS));
        for start in (0..rows).step_by(HEAD_ROWS) {
            let n = HEAD_ROWS.min(rows - start);
            let mut block = flat.narrow(0, start, n)?;
            if n < HEAD_ROWS {
                block = block.pad_with_zeros(0, 0, HEAD_ROWS - n)?;
            }
            blocks.push(self.linear.forward(&block)?.narrow(0, 0, n)?);
        }
        let mut out_dims = lead.to_vec();
        out_dims.push(self.labels.len());
        Ok(Tensor::cat(&blocks, 0)?.reshape(out_dims)?)
    }

    /// The weight and bias, when the layer is dense.
    pub fn dense(&self) -> Option<(&Tensor, Option<&Tensor>)> {
        match &self.linear {
            Linear::Dense(linear) => Some((linear.weight(), linear.bias())),
            _ => None,
        }
    }
}

/// Reads a head file (safetensors holding `weight` `[labels, in]` and `bias`
/// `[labels]`) as a classifier over `in_features`.
fn classifier_from_file(
    path: &Path,
    in_features: usize,
    labels: Vec<String>,
    device: &Device,
) -> Result<Classifier, InferError> {
    let tensors =
        candle_core::safetensors::load(path, device).map_err(|source| InferError::Checkpoint {
            path: path.to_owned(),
            source: Box::new(source.into()),
        })?;
    classifier_from_tensors(tensors, in_features, labels, path, device)
}

/// [`classifier_from_file`] of tensors already read from `path`.
fn classifier_from_tensors(
    tensors: std::collections::HashMap<String, Tensor>,
    in_features: usize,
    labels: Vec<String>,
    path: &Path,
    device: &Device,
) -> Result<Classifier, InferError> {
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    Classifier::load(vb, in_features, labels).map_err(|source| InferError::Checkpoint {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

/// The first token's hidden state, `[batch, hidden]`.
fn first_token(hidden: &Tensor) -> Result<Tensor, InferError> {
    Ok(hidden.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?)
}

/// Token classification: `classifier` on every hidden state (BERT, XLM-R
/// and DeBERTa-v2 alike; the bias is applied, unlike candle's
/// `DebertaV2NERModel`).
#[derive(Debug, Clone)]
pub struct TokenClassifier {
    classifier: Classifier,
}

impl TokenClassifier {
    /// Loads `classifier.*` from a checkpoint's root.
    pub fn load(
        vb: VarBuilder,
        hidden_size: usize,
        labels: Vec<String>,
    ) -> Result<Self, InferError> {
        Ok(Self {
            classifier: Classifier::load(vb.root().pp("classifier"), hidden_size, labels)?,
        })
    }

    /// Loads a head file (`weight`, `bias`) with the caller's labels.
    pub fn from_file(
        path: &Path,
        hidden_size: usize,
        labels: Vec<String>,
        device: &Device,
    ) -> Result<Self, InferError> {
        Ok(Self {
            classifier: classifier_from_file(path, hidden_size, labels, device)?,
        })
    }

    /// A head file's tensors, already read (`weight`, `bias`; other
    /// tensors are ignored), with the caller's labels; `path` names the
    /// file in errors.
    pub fn from_tensors(
        tensors: std::collections::HashMap<String, Tensor>,
        hidden_size: usize,
        labels: Vec<String>,
        path: &Path,
        device: &Device,
    ) -> Result<Self, InferError> {
        Ok(Self {
            classifier: classifier_from_tensors(tensors, hidden_size, labels, path, device)?,
        })
    }

    /// The linear layer.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }
}

impl TokenHead for TokenClassifier {
    fn labels(&self) -> &[String] {
        self.classifier.labels()
    }

    fn forward(&self, hidden: &Tensor) -> Result<Tensor, InferError> {
        self.classifier.forward(hidden)
    }

    fn dense(&self) -> Option<(&Tensor, Option<&Tensor>)> {
        self.classifier.dense()
    }
}

/// BERT: `tanh(pooler.dense(first token))` then `classifier`.
#[derive(Debug, Clone)]
pub struct BertSequenceClassifier {
    pooler: Linear,
    classifier: Classifier,
}

impl BertSequenceClassifier {
    /// Loads `bert.pooler.dense.*` (or `pooler.dense.*`) and `classifier.*`.
    pub fn load(
        vb: VarBuilder,
        hidden_size: usize,
        labels: Vec<String>,
    ) -> Result<Self, InferError> {
        let vb = vb.root().to_dtype(DType::F32);
        let pooler = Linear::load(
            base_model(vb.clone()).pp("pooler").pp("dense"),
            hidden_size,
            hidden_size,
        )?;
        Ok(Self {
            pooler,
            classifier: Classifier::load(vb.pp("classifier"), hidden_size, labels)?,
        })
    }
}

impl SequenceHead for BertSequenceClassifier {
    fn labels(&self) -> &[String] {
        self.classifier.labels()
    }

    fn forward(&self, hidden: &Tensor, _attention_mask: &Tensor) -> Result<Tensor, InferError> {
        let pooled = self.pooler.forward(&first_token(hidden)?)?.tanh()?;
        self.classifier.forward(&pooled)
    }
}

/// XLM-R: `classifier.out_proj(tanh(classifier.dense(first token)))`.
#[derive(Debug, Clone)]
pub struct XlmRobertaSequenceClassifier {
    dense: Linear,
    out_proj: Classifier,
}

impl XlmRobertaSequenceClassifier {
    /// Loads `classifier.dense.*` and `classifier.out_proj.*`.
    pub fn load(
        vb: VarBuilder,
        hidden_size: usize,
        labels: Vec<String>,
    ) -> Result<Self, InferError> {
        let vb = vb.root().to_dtype(DType::F32).pp("classifier");
        Ok(Self {
            dense: Linear::load(vb.pp("dense"), hidden_size, hidden_size)?,
            out_proj: Classifier::load(vb.pp("out_proj"), hidden_size, labels)?,
        })
    }
}

impl SequenceHead for XlmRobertaSequenceClassifier {
    fn labels(&self) -> &[String] {
        self.out_proj.labels()
    }

    fn forward(&self, hidden: &Tensor, _attention_mask: &Tensor) -> Result<Tensor, InferError> {
        let x = self.dense.forward(&first_token(hidden)?)?.tanh()?;
        self.out_proj.forward(&x)
    }
}

/// DeBERTa-v2: `act(pooler.dense(first token))` then `classifier`
/// (`ContextPooler`; `act` is `pooler_hidden_act`).
#[derive(Debug, Clone)]
pub struct DebertaV2SequenceClassifier {
    pooler: Linear,
    activation: Activation,
    classifier: Classifier,
}

impl DebertaV2SequenceClassifier {
    /// Loads `pooler.dense.*` and `classifier.*` from the checkpoint's root.
    pub fn load(
        vb: VarBuilder,
        hidden_size: usize,
        pooler_hidden_size: usize,
        pooler_hidden_act: HiddenAct,
        labels: Vec<String>,
    ) -> Result<Self, InferError> {
        let vb = vb.root().to_dtype(DType::F32);
        let activation = match pooler_hidden_act {
            HiddenAct::Gelu => Activation::Gelu,
            HiddenAct::GeluApproximate => Activation::NewGelu,
            HiddenAct::Relu => Activation::Relu,
        };
        Ok(Self {
            pooler: Linear::load(vb.pp("pooler").pp("dense"), hidden_size, pooler_hidden_size)?,
            activation,
            classifier: Classifier::load(vb.pp("classifier"), pooler_hidden_size, labels)?,
        })
    }
}

impl SequenceHead for DebertaV2SequenceClassifier {
    fn labels(&self) -> &[String] {
        self.classifier.labels()
    }

    fn forward(&self, hidden: &Tensor, _attention_mask: &Tensor) -> Result<Tensor, InferError> {
        let pooled = self.pooler.forward(&first_token(hidden)?)?;
        self.classifier.forward(&self.activation.forward(&pooled)?)
    }
}

/// How [`PooledClassifier`] reduces the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The first token (`<s>` / `[CLS]`).
    First,
    /// The mean over the attention mask (e5's recipe).
    Mean,
}

/// A linear classifier from a head file over pooled hidden states (e.g. a
/// stance classifier trained on e5 sentence embeddings).
#[derive(Debug, Clone)]
pub struct PooledClassifier {
    pooling: Pooling,
    normalize: bool,
    classifier: Classifier,
}

impl PooledClassifier {
    /// Loads a head file (`weight` `[labels, hidden]`, `bias` `[labels]`)
    /// with the caller's labels; with `normalize` the pooled vector is L2
    /// normalised first.
    pub fn from_file(
        path: &Path,
        hidden_size: usize,
        labels: Vec<String>,
        pooling: Pooling,
        normalize: bool,
        device: &Device,
    ) -> Result<Self, InferError> {
        Ok(Self {
            pooling,
            normalize,
            classifier: classifier_from_file(path, hidden_size, labels, device)?,
        })
    }
}

impl PooledClassifier {
    /// [`Self::from_file`] of tensors already read from `path` (a head file
    /// whose encoder layers were taken out).
    pub fn from_tensors(
        tensors: std::collections::HashMap<String, Tensor>,
        hidden_size: usize,
        labels: Vec<String>,
        pooling: Pooling,
        normalize: bool,
        path: &Path,
        device: &Device,
    ) -> Result<Self, InferError> {
        Ok(Self {
            pooling,
            normalize,
            classifier: classifier_from_tensors(tensors, hidden_size, labels, path, device)?,
        })
    }
}

impl SequenceHead for PooledClassifier {
    fn labels(&self) -> &[String] {
        self.classifier.labels()
    }

    fn forward(&self, hidden: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError> {
        let pooled = match self.pooling {
            Pooling::First => first_token(hidden)?,
            Pooling::Mean => mean_pool(hidden, attention_mask)?,
        };
        let pooled = if self.normalize {
            super::embed::l2_normalize(&pooled)?
        } else {
            pooled
        };
        self.classifier.forward(&pooled)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_rows_logits_do_not_depend_on_the_rows_beside_it() {
        let device = Device::Cpu;
        let (labels, width) = (9, 384);
        let weight = Tensor::randn(0f32, 1.0, (labels, width), &device).unwrap();
        let bias = Tensor::randn(0f32, 1.0, labels, &device).unwrap();
        let head = Classifier {
            linear: Linear::dense(weight, Some(bias)),
            labels: (0..labels).map(|i| format!("L{i}")).collect(),
        };
        let rows = Tensor::randn(0f32, 1.0, (3, 70, width), &device).unwrap();
        let all: Vec<Vec<Vec<f32>>> = head.forward(&rows).unwrap().to_vec3().unwrap();
        for (b, s) in [(0, 0), (1, 33), (2, 69)] {
            let alone = rows.narrow(0, b, 1).unwrap().narrow(1, s, 1).unwrap();
            let one: Vec<Vec<Vec<f32>>> = head.forward(&alone).unwrap().to_vec3().unwrap();
            // Bit for bit, not within a tolerance.
            assert_eq!(one[0][0], all[b][s], "row {b},{s}");
        }
    }
}
