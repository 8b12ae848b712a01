//! A model config, loaded: documents in, annotation records out.
//!
//! [`Tagger::load`] turns a [`VerifiedModel`] into the encoder, the
//! tokenizer and the heads its tasks need; [`Tagger::tag`] runs the NER and
//! stance pipelines (and the date rules of [`crate::pipeline::dates`]) over a
//! batch of documents and gives one
//! [`Record`] per document, in input order — an error record for a document
//! that failed, so one bad document never sinks the others.

use std::collections::HashMap;

use arabtag_records::{CharText, Document, Record, STANCE_LABELS, Span, error_chain};
use arabtag_tokenizer::SubwordEncoder;
use candle_core::{D, DType as CandleDType, Device, Tensor};
use rayon::prelude::*;

use crate::InferError;
use crate::config::{DType, NerHead, ResolvedSource, StanceConfig, StanceMethod, VerifiedModel};
use crate::models::bert::LAYER_PREFIX;
use crate::models::{
    E5Model, E5Precision, Encoder, HeadChoice, HubOptions, PooledClassifier, Pooling, SequenceHead,
    TokenClassifier, TokenHead, load_e5, load_hub, sentence_embeddings,
};
use crate::pipeline::batch::budget_runs;
use crate::pipeline::spans::VocabularyScore;
use crate::pipeline::{
    Decoding, LabelMap, LabelScheme, NerModel, NerOptions, Proclitics, StanceScores, Wrapping,
    label_segments, merge_dates, stance::segment_spans, tag_ner,
};

/// Documents per encoder batch when the caller does not say.
pub const DEFAULT_BATCH_SIZE: usize = 16;

/// How to run a loaded model.
#[derive(Debug, Clone)]
pub struct TagOptions {
    /// Windows or segments per encoder call.
    pub batch_size: usize,
    /// BIO decoding of the token labels.
    pub decoding: Decoding,
    /// Benchmark output: the NER head's own entity types (`PERS`, `MISC`…,
    /// no label map), spans over whole tokens (proclitics kept, as ANERcorp
    /// tags them), no rule-based dates and no stance.
    pub raw: bool,
}

impl Default for TagOptions {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH_SIZE,
            decoding: Decoding::default(),
            raw: false,
        }
    }
}

/// The NER task of a config, loaded.
#[derive(Debug)]
struct NerTask {
    head: Box<dyn TokenHead>,
    labels: LabelScheme,
    label_map: LabelMap,
    aggregation: crate::pipeline::Aggregation,
    /// Content tokens per window (special tokens not counted).
    window: usize,
    stride: usize,
    /// A head over these encoder layers, concatenated (`ner.layers`); empty:
    /// over the last hidden state.
    layers: Vec<usize>,
    /// The encoder with the head file's fine-tuned layers in place of its
    /// own (other tasks keep the original); `None`: the shared encoder.
    encoder: Option<Box<dyn Encoder>>,
}

/// The encoder seen through a layer head's eyes: the states of `layers`,
/// concatenated on the last dimension, as its hidden states.
#[derive(Debug)]
struct LayerConcat<'a> {
    encoder: &'a dyn Encoder,
    layers: &'a [usize],
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

/// The stance task of a config, loaded.
#[derive(Debug)]
enum StanceTask {
    /// Per label (guideline order), the unit embeddings `[n, h]` of its
    /// descriptions; a segment's score is its best cosine to them.
    Prototypes {
        prefix: String,
        prototypes: Vec<Tensor>,
    },
    /// A trained head over the segment's mean-pooled, normalised states;
    /// `order[i]` is the head output of the guideline's i-th label.
    Head {
        head: PooledClassifier,
        order: [usize; 3],
    },
    /// Zero-shot NLI: the segment entails the label's hypothesis.
    Nli {
        head: Box<dyn SequenceHead>,
        hypotheses: Vec<String>,
        entailment: usize,
        contradiction: Option<usize>,
    },
}

/// A loaded model: encoder, tokenizer and the heads of its tasks.
#[derive(Debug)]
pub struct Tagger {
    tokenizer: SubwordEncoder,
    encoder: Box<dyn Encoder>,
    device: Device,
    wrapping: Wrapping,
    ner: Option<NerTask>,
    /// Rule-based dates are merged with the NER spans (`[dates]`).
    dates: bool,
    stance: Option<(StanceTask, StanceScores)>,
    /// Unigram log-probability of each whole-word vocabulary piece (without
    /// `▁`), for the proclitic rule.
    vocabulary: HashMap<String, f64>,
    options: TagOptions,
}

/// When the head file at `path` carries encoder layers, the encoder with
/// those layers in place of its own ([`crate::models::load_head_file`]).
fn finetuned_encoder(
    encoder: &dyn Encoder,
    path: &std::path::Path,
    device: &Device,
) -> Result<Option<Box<dyn Encoder>>, InferError> {
    let Some(bert) = encoder.as_bert() else {
        // Only fail when the file does hold layers a non-BERT cannot take.
        let tensors = candle_core::safetensors::load(path, device).map_err(|source| {
            InferError::Checkpoint {
                path: path.to_owned(),
                source: Box::new(source.into()),
            }
        })?;
        if tensors.keys().any(|k| k.starts_with(LAYER_PREFIX)) {
            return Err(InferError::TaggerSetup {
                what: "ner.head holds fine-tuned encoder layers, which only a BERT, XLM-RoBERTa or e5 encoder can take",
            });
        }
        return Ok(None);
    };
    let head = crate::models::load_head_file(bert, path, device)?;
    Ok(head
        .layers
        .map(|(replaced, _)| Box::new(replaced) as Box<dyn Encoder>))
}

/// `encoder` with its layers' matrices as 8-bit integer products
/// (`int8 = true`): BERT, XLM-RoBERTa and e5 only.
fn int8_encoder(encoder: &dyn Encoder) -> Result<Box<dyn Encoder>, InferError> {
    let bert = encoder.as_bert().ok_or(InferError::TaggerSetup {
        what: "int8 = true: only a BERT, XLM-RoBERTa or e5 encoder has 8-bit layers; set int8 = false",
    })?;
    Ok(Box::new(bert.to_int8()?))
}

impl Tagger {
    /// Loads everything `model` names, on the CPU.
    pub fn load(model: &VerifiedModel, options: TagOptions) -> Result<Self, InferError> {
        let resolved = model.model();
        std::thread::scope(|scope| {
            // The tokenizer (a 250k-piece tokenizer.json: 0.4 s, most of the
            // start-up) loads on a second thread while the weights load here.
            let tokenizer = scope.spawn(|| {
                let tokenizer = SubwordEncoder::from_file(model.tokenizer(), resolved.normalizer)?;
                let vocabulary = tokenizer.whole_word_pieces();
                Ok::<_, InferError>((tokenizer, vocabulary))
            });
            let loaded = Self::load_weights(model, options);
            let (tokenizer, vocabulary) =
                tokenizer.join().map_err(|_| InferError::TaggerSetup {
                    what: "the thread loading the tokenizer panicked",
                })??;
            loaded?.finish(tokenizer, vocabulary)
        })
    }

    /// Everything but the tokenizer: the encoder, the NER head (and its
    /// layers), whose window still counts the special tokens.
    fn load_weights(model: &VerifiedModel, options: TagOptions) -> Result<Weights<'_>, InferError> {
        let resolved = model.model();
        let device = Device::Cpu;
        let mut token_head = None;
        let mut sequence_head = None;
        if resolved.int8 && !arabtag_kernels::vnni_available() {
            tracing::warn!(
                "int8 = true on a CPU without AVX-512 VNNI: the 8-bit products run in a \
                 portable loop (same results, many times slower); int8 = false runs f32"
            );
        }
        let encoder: Box<dyn Encoder> = match &resolved.source {
            // Straight from 4 bits to 8, without an f32 copy of the layers.
            ResolvedSource::E5 if resolved.int8 => {
                Box::new(E5Model::load(model.weights(), E5Precision::Int8, &device)?)
            }
            ResolvedSource::E5 => load_e5(model.weights(), resolved.quantized, &device)?,
            _ => {
                let config_json = model.checkpoint_config().ok_or(InferError::TaggerSetup {
                    what: "a hub-layout model has no config.json",
                })?;
                let head = match (&resolved.ner, &resolved.stance) {
                    (Some(ner), _) if ner.head == NerHead::Checkpoint => HeadChoice::Token,
                    (
                        _,
                        Some(StanceConfig {
                            method: StanceMethod::Nli { .. },
                            ..
                        }),
                    ) => HeadChoice::Sequence,
                    _ => HeadChoice::None,
                };
                let hub = load_hub(
                    config_json,
                    model.weights(),
                    &HubOptions {
                        dtype: candle_dtype(resolved.dtype),
                        device: device.clone(),
                        head,
                        ..HubOptions::default()
                    },
                )?;
                token_head = hub.token_head;
                sequence_head = hub.sequence_head;
                if resolved.int8 {
                    int8_encoder(hub.encoder.as_ref())?
                } else {
                    hub.encoder
                }
            }
        };
        let hidden = encoder.hidden_size();
        let ner = match &resolved.ner {
            None => None,
            Some(cfg) => {
                if let Some(bert) = encoder.as_bert()
                    && let Some(&layer) = cfg.layers.iter().find(|&&l| l > bert.num_layers())
                {
                    return Err(InferError::LayerOutOfRange {
                        layer,
                        layers: bert.num_layers(),
                    });
                }
                let mut ner_encoder: Option<Box<dyn Encoder>> = None;
                let head: Box<dyn TokenHead> = match &cfg.head {
                    NerHead::Checkpoint => token_head.ok_or(InferError::TaggerSetup {
                        what: "ner.head: the checkpoint has no token-classification head",
                    })?,
                    NerHead::File(file) => {
                        ner_encoder = finetuned_encoder(encoder.as_ref(), &file.path, &device)?;
                        if resolved.int8 {
                            // Layers read as 8-bit from the file stay as
                            // they are; f32 ones are quantised.
                            ner_encoder =
                                ner_encoder.map(|e| int8_encoder(e.as_ref())).transpose()?;
                        }
                        Box::new(TokenClassifier::from_file(
                            &file.path,
                            hidden * cfg.layers.len().max(1),
                            cfg.labels.clone(),
                            &device,
                        )?)
                    }
                };
                // Less the special tokens once the tokenizer is there.
                let window = cfg.window.min(encoder.max_positions());
                Some(NerTask {
                    labels: LabelScheme::new(head.labels().to_vec())?,
                    head,
                    label_map: LabelMap::new(
                        cfg.map.iter().map(|(from, to)| (from.clone(), to.as_str())),
                    )?,
                    aggregation: serde_json::to_value(cfg.aggregation)
                        .and_then(serde_json::from_value)
                        .map_err(|_| InferError::TaggerSetup {
                            what: "ner.aggregation is not first, max or average",
                        })?,
                    window,
                    stride: cfg.stride,
                    layers: cfg.layers.clone(),
                    encoder: ner_encoder,
                })
            }
        };
        Ok(Weights {
            model,
            encoder,
            device,
            ner,
            sequence_head,
            options,
        })
    }
}

/// What [`Tagger::load`] loads beside the tokenizer.
struct Weights<'a> {
    model: &'a VerifiedModel,
    encoder: Box<dyn Encoder>,
    device: Device,
    ner: Option<NerTask>,
    sequence_head: Option<Box<dyn SequenceHead>>,
    options: TagOptions,
}

impl Weights<'_> {
    /// The tagger, with the tokenizer: NER windows less its special tokens,
    /// the stance task set up.
    fn finish(
        self,
        tokenizer: SubwordEncoder,
        vocabulary: HashMap<String, f64>,
    ) -> Result<Tagger, InferError> {
        let resolved = self.model.model();
        let wrapping = Wrapping::from_special(tokenizer.special_tokens())?;
        let mut ner = self.ner;
        if let Some(task) = &mut ner {
            task.window = task.window.saturating_sub(wrapping.specials());
        }
        let mut tagger = Tagger {
            vocabulary,
            tokenizer,
            encoder: self.encoder,
            device: self.device,
            wrapping,
            ner,
            dates: resolved.dates.is_some_and(|d| d.enabled),
            stance: None,
            options: self.options,
        };
        if let Some(cfg) = &resolved.stance {
            let task = tagger.stance_task(cfg, self.sequence_head)?;
            let mut thresholds = [0.0; 3];
            for (i, label) in STANCE_LABELS.iter().enumerate() {
                thresholds[i] = cfg
                    .thresholds
                    .iter()
                    .find(|(l, _)| l.as_str() == *label)
                    .map_or(0.5, |(_, t)| *t);
            }
            tagger.stance = Some((task, thresholds));
        }
        Ok(tagger)
    }
}

impl Tagger {
    fn stance_task(
        &self,
        cfg: &StanceConfig,
        sequence_head: Option<Box<dyn SequenceHead>>,
    ) -> Result<StanceTask, InferError> {
        Ok(match &cfg.method {
            StanceMethod::Prototypes { prefix, prototypes } => {
                let mut per_label = Vec::with_capacity(3);
                for label in STANCE_LABELS {
                    let texts: Vec<String> = prototypes
                        .iter()
                        .filter(|(l, _)| l.as_str() == label)
                        .flat_map(|(_, p)| p.ar.iter().chain(&p.en))
                        .map(|t| format!("{prefix}{t}"))
                        .collect();
                    let rows = self.embed(&texts)?;
                    per_label.push(Tensor::new(rows, &self.device)?);
                }
                StanceTask::Prototypes {
                    prefix: prefix.clone(),
                    prototypes: per_label,
                }
            }
            StanceMethod::Head { head, labels } => {
                let names: Vec<String> = labels.iter().map(|l| l.as_str().to_string()).collect();
                let mut order = [0; 3];
                for (i, label) in STANCE_LABELS.iter().enumerate() {
                    order[i] =
                        names
                            .iter()
                            .position(|n| n == label)
                            .ok_or(InferError::TaggerSetup {
                                what: "stance.labels must name mediation, conflict and energy",
                            })?;
                }
                let head = PooledClassifier::from_file(
                    &head.path,
                    self.encoder.hidden_size(),
                    names,
                    Pooling::Mean,
                    true,
                    &self.device,
                )?;
                StanceTask::Head { head, order }
            }
            StanceMethod::Nli {
                hypothesis_template,
                entailment_label,
                candidate_labels,
            } => {
                let head = sequence_head.ok_or(InferError::TaggerSetup {
                    what: "stance.method = nli: the checkpoint has no sequence-classification head",
                })?;
                let position = |name: &str| {
                    head.labels()
                        .iter()
                        .position(|l| l.eq_ignore_ascii_case(name))
                };
                let entailment = position(entailment_label).ok_or(InferError::TaggerSetup {
                    what: "stance.entailment_label is not a label of the checkpoint",
                })?;
                let contradiction = position("contradiction");
                let mut hypotheses = Vec::with_capacity(3);
                for label in STANCE_LABELS {
                    let text = candidate_labels
                        .iter()
                        .find(|(l, _)| l.as_str() == label)
                        .map_or(label, |(_, t)| t.as_str());
                    hypotheses.push(hypothesis_template.replacen("{}", text, 1));
                }
                StanceTask::Nli {
                    head,
                    hypotheses,
                    entailment,
                    contradiction,
                }
            }
        })
    }

    /// The subword encoder the tagger reads text with.
    pub fn tokenizer(&self) -> &SubwordEncoder {
        &self.tokenizer
    }

    /// The encoder's hidden width, feed-forward width and number of layers,
    /// for a BERT-family encoder (`None` for DeBERTa-v2).
    pub fn encoder_dims(&self) -> Option<(usize, usize, usize)> {
        let bert = self.encoder.as_bert()?;
        Some((
            bert.dims().hidden_size,
            bert.intermediate_size(),
            bert.num_layers(),
        ))
    }

    /// Whether the model tags entities (by its NER head or by the date
    /// rules), and stance.
    pub fn tasks(&self) -> (bool, bool) {
        (self.ner.is_some() || self.dates, self.stance.is_some())
    }

    /// The token-label names of the NER head, in logit order.
    pub fn ner_labels(&self) -> Option<&[String]> {
        self.ner.as_ref().map(|n| n.labels.names())
    }

    /// Tags `docs`: one record per document, in order; a document that
    /// fails gets an error record saying why.
    pub fn tag(&self, docs: &[Document]) -> Result<Vec<Record>, InferError> {
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let mut records: Vec<Record> = docs.iter().map(|d| Record::new(d.id.clone())).collect();
        if let Some(task) = &self.ner {
            let score = |f: &str| self.vocabulary.get(f).copied();
            let score: &VocabularyScore<'_> = &score;
            let options = NerOptions {
                window: Some(task.window),
                stride: task.stride,
                batch_size: self.options.batch_size,
                aggregation: task.aggregation,
                // A layer head was trained and scored with Viterbi decoding
                // (`arabtag train ner`), so it is decoded that way.
                decoding: if task.layers.is_empty() {
                    self.options.decoding
                } else {
                    Decoding::Viterbi
                },
                label_map: if self.options.raw {
                    LabelMap::identity(&task.labels)
                } else {
                    task.label_map.clone()
                },
                proclitics: Proclitics {
                    strip: !self.options.raw,
                    vocabulary: Some(score),
                    ..Proclitics::default()
                },
            };
            let head = |hidden: &Tensor| task.head.forward(hidden);
            let base = task.encoder.as_deref().unwrap_or(self.encoder.as_ref());
            let layered = LayerConcat {
                encoder: base,
                layers: &task.layers,
            };
            let encoder: &dyn Encoder = if task.layers.is_empty() {
                base
            } else {
                &layered
            };
            let model = NerModel {
                tokenizer: &self.tokenizer,
                encoder,
                head,
                labels: &task.labels,
                device: &self.device,
            };
            for (record, result) in records.iter_mut().zip(tag_ner(&texts, &model, &options)?) {
                match result {
                    Ok(entities) => record.entities = entities,
                    Err(e) => record.error = Some(error_chain(&e)),
                }
            }
        }
        if self.options.raw {
            return Ok(records);
        }
        if self.dates {
            for (record, text) in records.iter_mut().zip(&texts) {
                if record.error.is_some() {
                    continue;
                }
                if let Err(e) = merge_dates(text, &mut record.entities) {
                    record.entities.clear();
                    record.error = Some(error_chain(&e));
                }
            }
        }
        if let Some((task, thresholds)) = &self.stance {
            // Documents side by side on rayon's threads, as the NER batches.
            records
                .par_iter_mut()
                .zip(&texts)
                .for_each(|(record, text)| {
                    if record.error.is_some() {
                        return;
                    }
                    let spans = segment_spans(text);
                    let result = self
                        .stance_scores(task, text, &spans)
                        .and_then(|scores| label_segments(&spans, &scores, thresholds));
                    match result {
                        Ok(segments) => record.segments = segments,
                        Err(e) => {
                            record.entities.clear();
                            record.error = Some(error_chain(&e));
                        }
                    }
                });
        }
        Ok(records)
    }

    fn stance_scores(
        &self,
        task: &StanceTask,
        text: &str,
        spans: &[Span],
    ) -> Result<Vec<StanceScores>, InferError> {
        let chars = CharText::new(text);
        let segments: Vec<&str> = spans
            .iter()
            .map(|s| chars.slice(s.start, s.end).unwrap_or_default())
            .collect();
        match task {
            StanceTask::Prototypes { prefix, prototypes } => {
                let texts: Vec<String> = segments.iter().map(|s| format!("{prefix}{s}")).collect();
                let rows = self.embed(&texts)?;
                let mut scores = vec![[0.0; 3]; rows.len()];
                if rows.is_empty() {
                    return Ok(scores);
                }
                // All segments at once: [descriptions, h] x [h, segments],
                // then the best description per segment.
                let segments_t = Tensor::new(rows, &self.device)?.t()?;
                for (i, protos) in prototypes.iter().enumerate() {
                    let best = protos.matmul(&segments_t)?.max(0)?.to_vec1::<f32>()?;
                    for (s, cos) in scores.iter_mut().zip(best) {
                        s[i] = f64::from(cos);
                    }
                }
                Ok(scores)
            }
            StanceTask::Head { head, order } => {
                // Per segment, the token-weighted mean of its parts' outputs.
                let texts: Vec<String> = segments.iter().map(|s| s.to_string()).collect();
                let mut sums = vec![([0.0f64; 3], 0usize); texts.len()];
                for batch in self.batches(&texts)? {
                    let hidden = self.encoder.forward(&batch.ids, &batch.mask)?;
                    let probs = candle_nn::ops::sigmoid(&head.forward(&hidden, &batch.mask)?)?
                        .to_vec2::<f32>()?;
                    for (row, (text, weight)) in probs.iter().zip(&batch.rows) {
                        let (sum, total) = &mut sums[*text];
                        for (s, o) in sum.iter_mut().zip(order) {
                            *s += f64::from(row[*o]) * *weight as f64;
                        }
                        *total += weight;
                    }
                }
                Ok(sums
                    .into_iter()
                    .map(|(sum, total)| sum.map(|s| s / total.max(1) as f64))
                    .collect())
            }
            StanceTask::Nli {
                head,
                hypotheses,
                entailment,
                contradiction,
            } => {
                let mut scores = Vec::with_capacity(segments.len());
                for segment in &segments {
                    let mut s = [0.0; 3];
                    for (i, hypothesis) in hypotheses.iter().enumerate() {
                        s[i] = self.entailment(
                            head.as_ref(),
                            segment,
                            hypothesis,
                            *entailment,
                            *contradiction,
                        )?;
                    }
                    scores.push(s);
                }
                Ok(scores)
            }
        }
    }

    /// The probability that `premise` entails `hypothesis` (HF's zero-shot
    /// multi-label rule: softmax over entailment and contradiction when the
    /// checkpoint has both, else over every label). A premise too long for
    /// one window is split at word boundaries and the best part counts.
    fn entailment(
        &self,
        head: &dyn SequenceHead,
        premise: &str,
        hypothesis: &str,
        entailment: usize,
        contradiction: Option<usize>,
    ) -> Result<f64, InferError> {
        let normalize = |t: &str| self.tokenizer.normalizer().normalize(t).text().to_string();
        let hypothesis = normalize(hypothesis);
        let words: Vec<&str> = premise.split_whitespace().collect();
        let max = self.encoder.max_positions();
        let mut best: f64 = 0.0;
        let mut start = 0;
        while start < words.len() || start == 0 {
            let mut end = words.len();
            let ids = loop {
                let part = normalize(&words[start..end].join(" "));
                let encoding = self
                    .tokenizer
                    .encode_pair(part, hypothesis.clone())
                    .map_err(|source| InferError::NliEncode { source })?;
                if encoding.get_ids().len() <= max || end <= start + 1 {
                    break encoding.get_ids()[..encoding.get_ids().len().min(max)].to_vec();
                }
                end = start + (end - start).div_ceil(2);
            };
            let n = ids.len();
            let ids = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
            let mask = Tensor::ones((1, n), CandleDType::U32, &self.device)?;
            let hidden = self.encoder.forward(&ids, &mask)?;
            let logits = head.forward(&hidden, &mask)?.squeeze(0)?;
            let logits = match contradiction {
                Some(c) => Tensor::new(
                    &[
                        logits.get(c)?.to_scalar::<f32>()?,
                        logits.get(entailment)?.to_scalar::<f32>()?,
                    ],
                    &self.device,
                )?,
                None => logits,
            };
            let probs = candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec1::<f32>()?;
            let p = if contradiction.is_some() {
                probs[1]
            } else {
                probs[entailment]
            };
            best = best.max(f64::from(p));
            if end >= words.len() {
                break;
            }
            start = end;
        }
        Ok(best)
    }

    /// Unit sentence embeddings of `texts` (the e5 recipe), in order. A text
    /// longer than one window is embedded in parts, and the parts' mean
    /// (weighted by their tokens) is normalised again: nothing is cut off.
    /// What the stance head reads: each text's mean-pooled, L2-normalised
    /// last hidden state (a text longer than one window: the token-weighted
    /// mean of its parts, normalised again). `arabtag train stance` trains
    /// on these.
    pub fn segment_embeddings(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, InferError> {
        self.embed(texts)
    }

    /// The stance scores of each text taken as one segment, by the model's
    /// `[stance]` method (guideline label order), before thresholds; `None`
    /// when the model has no stance task.
    pub fn segment_scores(
        &self,
        texts: &[String],
    ) -> Result<Option<Vec<StanceScores>>, InferError> {
        let Some((task, _)) = &self.stance else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            let span = Span {
                start: 0,
                end: text.chars().count(),
            };
            out.extend(self.stance_scores(task, text, &[span])?);
        }
        Ok(Some(out))
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, InferError> {
        let mut sums: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for batch in self.batches(texts)? {
            let embeddings = sentence_embeddings(self.encoder.as_ref(), &batch.ids, &batch.mask)?
                .to_vec2::<f32>()?;
            for (row, (text, weight)) in embeddings.into_iter().zip(&batch.rows) {
                let sum = &mut sums[*text];
                if sum.is_empty() {
                    sum.resize(row.len(), 0.0);
                }
                for (s, x) in sum.iter_mut().zip(row) {
                    *s += x * *weight as f32;
                }
            }
        }
        Ok(sums
            .into_iter()
            .map(|mut v| {
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|x| *x /= norm);
                v
            })
            .collect())
    }

    /// `texts` encoded, wrapped in the special tokens, split into parts
    /// that fit one window, sorted by length and padded into batches.
    fn batches(&self, texts: &[String]) -> Result<Vec<Batch>, InferError> {
        let room = self
            .encoder
            .max_positions()
            .saturating_sub(self.wrapping.specials())
            .max(1);
        let mut parts: Vec<(usize, Vec<u32>)> = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let ids = self.tokenizer.encode(text)?.ids();
            if ids.is_empty() {
                parts.push((i, Vec::new()));
            }
            for chunk in ids.chunks(room) {
                parts.push((i, chunk.to_vec()));
            }
        }
        parts.sort_by_key(|(_, ids)| std::cmp::Reverse(ids.len()));
        // At most `batch_size` rows and MAX_BATCH_TOKENS padded positions a
        // batch (a longer part alone), as for NER: 16 segments of 175 tokens
        // had 23 MB attention tensors, three alive at once.
        let runs = budget_runs(
            parts
                .iter()
                .map(|(_, ids)| ids.len() + self.wrapping.specials()),
            self.options.batch_size.max(1),
        );
        let mut batches = Vec::new();
        for group in runs.into_iter().map(|run| &parts[run]) {
            let len = group[0].1.len() + self.wrapping.specials();
            let mut ids = Vec::with_capacity(group.len() * len);
            let mut mask = Vec::with_capacity(group.len() * len);
            let mut rows = Vec::with_capacity(group.len());
            for (text, content) in group {
                let row: Vec<u32> = self
                    .wrapping
                    .prefix
                    .iter()
                    .chain(content)
                    .chain(&self.wrapping.suffix)
                    .copied()
                    .collect();
                mask.extend(std::iter::repeat_n(1u32, row.len()));
                mask.extend(std::iter::repeat_n(0u32, len - row.len()));
                ids.extend(&row);
                ids.extend(std::iter::repeat_n(self.wrapping.pad, len - row.len()));
                rows.push((*text, content.len().max(1)));
            }
            let shape = (group.len(), len);
            batches.push(Batch {
                ids: Tensor::from_vec(ids, shape, &self.device)?,
                mask: Tensor::from_vec(mask, shape, &self.device)?,
                rows,
            });
        }
        Ok(batches)
    }
}

/// A padded batch: ids and mask `[b, s]`, and per row its text index and
/// content-token count.
#[derive(Debug)]
struct Batch {
    ids: Tensor,
    mask: Tensor,
    rows: Vec<(usize, usize)>,
}

fn candle_dtype(dtype: DType) -> CandleDType {
    match dtype {
        DType::F32 => CandleDType::F32,
        DType::F16 => CandleDType::F16,
        DType::Bf16 => CandleDType::BF16,
    }
}
