//! The network a config's NER task runs, as one piece: one BERT up to the
//! layer the head reads, and the head. What `arabtag models export` writes
//! in the hub layout ([`crate::export`]) and what `arabtag bench` compares
//! with transformers, taken from the [`LoadedModel`] the tagger runs.

use candle_core::{DType, Device, Module, Tensor};

use super::{LoadOptions, LoadedModel, Precision};
use crate::InferError;
use crate::config::VerifiedModel;
use crate::models::{Architecture, BertModel, Encoder, Linear};
use crate::pipeline::batch::PackedBatch;

/// The network a config's NER task runs: one BERT up to the layer the head
/// reads, and the head.
#[derive(Debug, Clone)]
pub struct NerNetwork {
    pub(crate) bert: BertModel,
    /// The 1-based layer whose output the head reads (0: the embeddings).
    pub(crate) depth: usize,
    /// `[labels, hidden]` and `[labels]`, f32.
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
    pub(crate) labels: Vec<String>,
    /// 0-based indices of the layers a head file replaced.
    pub(crate) finetuned: Vec<usize>,
    /// Content tokens per window and their overlap, as the tagger plans
    /// them.
    window: (usize, usize),
}

pub(crate) fn not_exportable(reason: impl Into<String>) -> InferError {
    InferError::NotExportable {
        reason: reason.into(),
    }
}

/// The one layer a head reads (`None`: the last); a head over several
/// layers' states, concatenated, is refused.
fn head_layer(layers: &[usize]) -> Result<Option<usize>, InferError> {
    match layers {
        [] => Ok(None),
        [layer] => Ok(Some(*layer)),
        layers => Err(not_exportable(format!(
            "ner.layers = {layers:?}: a head over several layers' states, concatenated, \
             has no …ForTokenClassification equivalent (one layer or none can be exported)"
        ))),
    }
}

impl NerNetwork {
    /// The NER network of `model` in f32 (its 4-bit layers, if the config
    /// has them, kept), on the CPU: [`LoadedModel::load`] with
    /// [`Precision::F32`] and no stance, then [`LoadedModel::ner_network`].
    pub fn load(model: &VerifiedModel) -> Result<Self, InferError> {
        let resolved = model.model();
        let Some(ner) = &resolved.ner else {
            return Err(not_exportable("the config has no [ner] task"));
        };
        head_layer(&ner.layers)?;
        if resolved.architecture == Architecture::DebertaV2 {
            return Err(not_exportable(
                "DeBERTa-v2: our encoder cannot give its layers (export the hub checkpoint itself)",
            ));
        }
        let loaded = LoadedModel::load(
            model,
            &LoadOptions {
                precision: Precision::F32,
                stance: false,
                ..LoadOptions::default()
            },
        )?;
        loaded.ner_network()
    }

    /// The NER network of a loaded model: its NER encoder (fine-tuned layers
    /// in place) as our BERT, the depth the head reads, the head's weight
    /// and bias.
    pub(crate) fn from_loaded(loaded: &LoadedModel) -> Result<Self, InferError> {
        let task = loaded
            .ner()
            .ok_or_else(|| not_exportable("the config has no [ner] task"))?;
        let bert = task
            .encoder(loaded.encoder())
            .as_bert()
            .ok_or_else(|| {
                not_exportable(
                    "DeBERTa-v2: our encoder cannot give its layers (export the hub checkpoint itself)",
                )
            })?
            .clone();
        // `NerTask::load` refused a layer past the encoder's.
        let depth = head_layer(task.layers())?.unwrap_or(bert.num_layers());
        let (weight, bias) = task
            .head()
            .dense()
            .ok_or_else(|| not_exportable("the token head is not one dense layer"))?;
        let bias = match bias {
            Some(b) => b.to_dtype(DType::F32)?,
            None => Tensor::zeros(weight.dim(0)?, DType::F32, &Device::Cpu)?,
        };
        Ok(Self {
            weight: weight.to_dtype(DType::F32)?,
            bias,
            labels: task.labels().names().to_vec(),
            finetuned: task.finetuned().to_vec(),
            window: task.window(),
            bert,
            depth,
        })
    }

    /// Logits `[batch, seq, labels]` f32 of `[batch, seq]` u32 ids and mask:
    /// what the tagger's NER head sees, before windows are merged.
    pub fn logits(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<Tensor, InferError> {
        let states = self
            .bert
            .forward_layers(input_ids, attention_mask, &[self.depth])?;
        let hidden = states
            .into_iter()
            .next()
            .ok_or(InferError::LayerOutOfRange {
                layer: self.depth,
                layers: self.bert.num_layers(),
            })?;
        // The tagger's token head: the same dense layer.
        Ok(Linear::dense(self.weight.clone(), Some(self.bias.clone())).forward(&hidden)?)
    }

    /// The logits `[rows][seq][labels]` of a batch the tagger's own
    /// [`pack`](crate::pipeline::batch::pack) wrapped and padded: what a
    /// caller without candle compares with another implementation.
    pub fn packed_logits(&self, batch: &PackedBatch) -> Result<Vec<Vec<Vec<f32>>>, InferError> {
        let (ids, mask) = batch.tensors(&Device::Cpu)?;
        Ok(self.logits(&ids, &mask)?.to_vec3::<f32>()?)
    }

    /// This network with its layers' matrices as 8-bit integer products
    /// ([`BertModel::to_int8`]), as the tagger runs it with `int8 = true`.
    pub fn to_int8(&self) -> Result<Self, InferError> {
        Ok(Self {
            bert: self.bert.to_int8()?,
            ..self.clone()
        })
    }

    /// The token labels, in logit order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The layer the head reads (1-based; 0: the embeddings): the exported
    /// checkpoint's `num_hidden_layers`.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// 0-based indices of the encoder layers a head file replaced.
    pub fn finetuned(&self) -> &[usize] {
        &self.finetuned
    }

    /// Most positions one window may hold, special tokens included.
    pub fn max_positions(&self) -> usize {
        self.bert.max_positions()
    }

    /// Content tokens per window (special tokens not counted) and the
    /// overlap between windows: the tagger's plan.
    pub fn window(&self) -> (usize, usize) {
        self.window
    }
}
