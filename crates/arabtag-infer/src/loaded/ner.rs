//! The NER task of a config, loaded: the token head, and the encoder it
//! reads (the shared one, or one with the head file's fine-tuned layers in
//! place of its own), with the label scheme, map and windowing.

use candle_core::{D, Device, Tensor};

use crate::InferError;
use crate::config::{NerConfig, NerHead};
use crate::models::bert::LAYER_PREFIX;
use crate::models::{Encoder, TokenClassifier, TokenHead, load_head_file};
use crate::pipeline::{Aggregation, LabelMap, LabelScheme, NameForms, Wrapping};
use arabtag_tokenizer::NormalizerConfig;

/// The NER task of a config, loaded.
#[derive(Debug)]
pub struct NerTask {
    pub(crate) head: Box<dyn TokenHead>,
    pub(crate) labels: LabelScheme,
    pub(crate) label_map: LabelMap,
    pub(crate) aggregation: Aggregation,
    /// Content tokens per window (special tokens not counted, once
    /// [`NerTask::less_specials`] took them off).
    pub(crate) window: usize,
    pub(crate) stride: usize,
    /// A head over these encoder layers, concatenated (`ner.layers`); empty:
    /// over the last hidden state.
    pub(crate) layers: Vec<usize>,
    /// The encoder with the head file's fine-tuned layers in place of its
    /// own (other tasks keep the original); `None`: the shared encoder.
    pub(crate) encoder: Option<Box<dyn Encoder>>,
    /// 0-based indices of the encoder layers the head file replaced.
    pub(crate) finetuned: Vec<usize>,
    /// `ner.names`, normalised: evidence for the proclitic rule.
    pub(crate) names: Option<NameForms>,
    /// `ner.context`: what one window may hold.
    pub(crate) context: crate::pipeline::NerContext,
}

impl NerTask {
    /// The task `cfg` describes over `encoder`; `token_head` is the hub
    /// checkpoint's head (`ner.head = "checkpoint"`); `int8`: fine-tuned
    /// layers run as 8-bit products; the names list is normalised by
    /// `normalizer` (the model's).
    pub(crate) fn load(
        cfg: &NerConfig,
        encoder: &dyn Encoder,
        token_head: Option<Box<dyn TokenHead>>,
        int8: bool,
        normalizer: &NormalizerConfig,
    ) -> Result<Self, InferError> {
        let names = match &cfg.names {
            None => None,
            Some(file) => {
                let text =
                    std::fs::read_to_string(&file.path).map_err(|source| InferError::Read {
                        path: file.path.clone(),
                        source,
                    })?;
                Some(NameForms::from_lines(&text, normalizer))
            }
        };
        let device = Device::Cpu;
        if let Some(bert) = encoder.as_bert()
            && let Some(&layer) = cfg.layers.iter().find(|&&l| l > bert.num_layers())
        {
            return Err(InferError::LayerOutOfRange {
                layer,
                layers: bert.num_layers(),
            });
        }
        let width = encoder.hidden_size() * cfg.layers.len().max(1);
        let mut ner_encoder: Option<Box<dyn Encoder>> = None;
        let mut finetuned = Vec::new();
        let head: Box<dyn TokenHead> = match &cfg.head {
            NerHead::Checkpoint => token_head.ok_or(InferError::NoHead {
                kind: crate::models::HeadKind::Token,
                reason: "ner.head = \"checkpoint\" needs the checkpoint's token-classification head",
            })?,
            NerHead::File(file) => match encoder.as_bert() {
                Some(bert) => {
                    let head = load_head_file(bert, &file.path, &device)?;
                    if let Some((replaced, indices)) = head.layers {
                        // Layers read as 8-bit from the file stay as they
                        // are; f32 ones are quantised.
                        ner_encoder = Some(if int8 {
                            Box::new(replaced.to_int8()?)
                        } else {
                            Box::new(replaced)
                        });
                        finetuned = indices;
                    }
                    Box::new(TokenClassifier::from_tensors(
                        head.tensors,
                        width,
                        cfg.labels.clone(),
                        &file.path,
                        &device,
                    )?)
                }
                None => {
                    // Only fail when the file does hold layers a non-BERT
                    // cannot take.
                    let tensors =
                        candle_core::safetensors::load(&file.path, &device).map_err(|source| {
                            InferError::Checkpoint {
                                path: file.path.clone(),
                                source: Box::new(source.into()),
                            }
                        })?;
                    if tensors.keys().any(|k| k.starts_with(LAYER_PREFIX)) {
                        return Err(InferError::NotBertFamily {
                            what: "ner.head holds fine-tuned encoder layers",
                        });
                    }
                    Box::new(TokenClassifier::from_tensors(
                        tensors,
                        width,
                        cfg.labels.clone(),
                        &file.path,
                        &device,
                    )?)
                }
            },
        };
        Ok(Self {
            labels: LabelScheme::new(head.labels().to_vec())?,
            head,
            label_map: LabelMap::new(cfg.map.iter().map(|(from, to)| (from.clone(), to.as_str())))?,
            aggregation: serde_json::to_value(cfg.aggregation)
                .and_then(serde_json::from_value)
                .map_err(|_| InferError::UnknownAggregation {
                    value: format!("{:?}", cfg.aggregation),
                })?,
            // Less the special tokens once the tokenizer is there.
            window: cfg.window.min(encoder.max_positions()),
            stride: cfg.stride,
            layers: cfg.layers.clone(),
            encoder: ner_encoder,
            finetuned,
            names,
            context: cfg.context,
        })
    }

    /// The task with its window less the special tokens `wrapping` puts
    /// around each.
    pub(crate) fn less_specials(mut self, wrapping: &Wrapping) -> Self {
        self.window = self.window.saturating_sub(wrapping.specials());
        self
    }

    /// The token head.
    pub fn head(&self) -> &dyn TokenHead {
        self.head.as_ref()
    }

    /// The head's label scheme (its labels in logit order).
    pub fn labels(&self) -> &LabelScheme {
        &self.labels
    }

    /// Content tokens per window and the overlap between windows.
    pub fn window(&self) -> (usize, usize) {
        (self.window, self.stride)
    }

    /// The layers the head reads, concatenated (empty: the last).
    pub fn layers(&self) -> &[usize] {
        &self.layers
    }

    /// The encoder NER reads: `base` (the model's), or the one with the
    /// head file's fine-tuned layers.
    pub fn encoder<'a>(&'a self, base: &'a dyn Encoder) -> &'a dyn Encoder {
        self.encoder.as_deref().unwrap_or(base)
    }

    /// 0-based indices of the encoder layers the head file replaced.
    pub fn finetuned(&self) -> &[usize] {
        &self.finetuned
    }
}

/// `encoder` with its layers' matrices as 8-bit integer products
/// (`int8 = true`): BERT, XLM-RoBERTa and e5 only.
pub(crate) fn int8_encoder(encoder: &dyn Encoder) -> Result<Box<dyn Encoder>, InferError> {
    let bert = encoder.as_bert().ok_or(InferError::NotBertFamily {
        what: "int8 = true (set int8 = false for this encoder)",
    })?;
    Ok(Box::new(bert.to_int8()?))
}

/// The encoder seen through a layer head's eyes: the states of `layers`,
/// concatenated on the last dimension, as its hidden states.
#[derive(Debug)]
pub(crate) struct LayerConcat<'a> {
    pub(crate) encoder: &'a dyn Encoder,
    pub(crate) layers: &'a [usize],
}

impl Encoder for LayerConcat<'_> {
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError> {
        let states = self
            .encoder
            .forward_layers(input_ids, attention_mask, self.layers)?;
        Ok(Tensor::cat(&states, D::Minus1)?)
    }

    fn hidden_size(&self) -> usize {
        self.encoder.hidden_size() * self.layers.len()
    }

    fn max_positions(&self) -> usize {
        self.encoder.max_positions()
    }
}
