//! A loaded model and how to run it: documents in, annotation records out.
//!
//! [`Tagger::load`] loads a [`VerifiedModel`] ([`LoadedModel`]);
//! [`Tagger::tag`] runs the NER and stance pipelines (and the date rules of
//! [`crate::pipeline::dates`]) over a batch of documents and gives one
//! [`Record`] per document, in input order — an error record for a document
//! that failed, so one bad document never sinks the others.

use arabtag_records::inputs::Input;
use arabtag_records::{Document, Record, Span, error_chain};
use arabtag_tokenizer::SubwordEncoder;
use candle_core::Tensor;

use crate::InferError;
use crate::config::VerifiedModel;
use crate::loaded::{LayerConcat, LoadOptions, LoadedModel, Precision};
use crate::models::Encoder;
pub use crate::pipeline::DEFAULT_BATCH_SIZE;
use crate::pipeline::shared::{SharedStates, Tap};
use crate::pipeline::spans::VocabularyScore;
use crate::pipeline::stance_scorer::SegmentEncoder;
use crate::pipeline::{
    Decoding, LabelMap, NerModel, NerOptions, Proclitics, StanceScores, Work, label_segments,
    merge_dates, stance::segment_spans, tag_ner,
};

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

/// One input's outcome ([`Tagger::tag_inputs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged {
    /// The document's record, or the error record of an unreadable input.
    pub record: Record,
    /// The document's text; `None` for an input that could not be read.
    pub text: Option<String>,
}

/// Which encoder states a segment vector pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentStates<'a> {
    /// The model's encoder after these layers (1-based), concatenated;
    /// none: its last hidden state.
    Encoder(&'a [usize]),
    /// The NER task's encoder (with its fine-tuned layers) at its head's
    /// layers: what the NER head reads.
    Ner,
}

/// A loaded model and the options it runs with.
#[derive(Debug)]
pub struct Tagger {
    model: LoadedModel,
    options: TagOptions,
}

impl Tagger {
    /// Loads everything `model` names, on the CPU.
    pub fn load(model: &VerifiedModel, options: TagOptions) -> Result<Self, InferError> {
        let loaded = LoadedModel::load(
            model,
            &LoadOptions {
                batch_size: options.batch_size,
                precision: Precision::Configured,
                stance: true,
            },
        )?;
        Ok(Self::new(loaded, options))
    }

    /// A tagger over a model already loaded.
    pub fn new(model: LoadedModel, options: TagOptions) -> Self {
        Self { model, options }
    }

    /// The loaded model.
    pub fn model(&self) -> &LoadedModel {
        &self.model
    }

    /// The subword encoder the tagger reads text with.
    pub fn tokenizer(&self) -> &SubwordEncoder {
        self.model.tokenizer()
    }

    /// The encoder's hidden width, feed-forward width and number of layers,
    /// for a BERT-family encoder (`None` for DeBERTa-v2).
    pub fn encoder_dims(&self) -> Option<(usize, usize, usize)> {
        self.model.encoder_dims()
    }

    /// Whether the model tags entities (by its NER head or by the date
    /// rules), and stance.
    pub fn tasks(&self) -> (bool, bool) {
        (
            self.model.ner().is_some() || self.model.dates(),
            self.model.stance().is_some(),
        )
    }

    /// The token-label names of the NER head, in logit order.
    pub fn ner_labels(&self) -> Option<&[String]> {
        self.model.ner().map(|n| n.labels().names())
    }

    /// Tags `docs`: one record per document, in order; a document that
    /// fails gets an error record saying why.
    pub fn tag(&self, docs: &[Document]) -> Result<Vec<Record>, InferError> {
        self.tag_counted(docs, None)
    }

    /// Tags the documents among `inputs` and gives one [`Tagged`] per
    /// input, in order: a document's record and text, or the error record
    /// of an input that could not be read. `work`, when given, counts the
    /// encoder rows (NER windows, stance segment parts) as they are planned
    /// and run: progress within a long document.
    pub fn tag_inputs(
        &self,
        inputs: Vec<Input>,
        work: Option<&Work>,
    ) -> Result<Vec<Tagged>, InferError> {
        let mut docs = Vec::new();
        let mut slots = Vec::with_capacity(inputs.len());
        for input in inputs {
            match input {
                Input::Doc(doc) => {
                    docs.push(doc);
                    slots.push(None);
                }
                Input::Error { id, message } => slots.push(Some(Record::error(id, message))),
            }
        }
        let records = self.tag_counted(&docs, work)?;
        if records.len() != docs.len() {
            return Err(InferError::RecordCount {
                documents: docs.len(),
                records: records.len(),
            });
        }
        let mut tagged = records.into_iter().zip(docs);
        Ok(slots
            .into_iter()
            .filter_map(|slot| match slot {
                Some(record) => Some(Tagged { record, text: None }),
                None => tagged.next().map(|(record, doc)| Tagged {
                    record,
                    text: Some(doc.text),
                }),
            })
            .collect())
    }

    fn tag_counted(
        &self,
        docs: &[Document],
        work: Option<&Work>,
    ) -> Result<Vec<Record>, InferError> {
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let mut records: Vec<Record> = docs.iter().map(|d| Record::new(d.id.clone())).collect();
        // A stance head on the NER network starts from the states NER's
        // pass kept (`stance.trunk = "ner"`).
        let shared = self
            .model
            .stance()
            .and_then(|(scorer, _)| scorer.branch())
            .filter(|_| !self.options.raw)
            .map(|(from, _)| SharedStates::new(from, self.model.encoder().hidden_size()));
        if let Some(task) = self.model.ner() {
            let vocabulary = self.model.vocabulary();
            let score = |f: &str| vocabulary.get(f).copied();
            let score: &VocabularyScore<'_> = &score;
            let (window, stride) = task.window();
            let options = NerOptions {
                window: Some(window),
                stride,
                batch_size: self.options.batch_size,
                aggregation: task.aggregation,
                // A layer head was trained and scored with Viterbi decoding
                // (`arabtag train ner`), so it is decoded that way.
                decoding: if task.layers().is_empty() {
                    self.options.decoding
                } else {
                    Decoding::Viterbi
                },
                label_map: if self.options.raw {
                    LabelMap::identity(task.labels())
                } else {
                    task.label_map.clone()
                },
                proclitics: Proclitics {
                    strip: !self.options.raw,
                    vocabulary: Some(score),
                    names: task.names.as_ref(),
                    ..Proclitics::default()
                },
                context: task.context,
                work,
            };
            let head = |hidden: &Tensor| task.head().forward(hidden);
            let base = task.encoder(self.model.encoder());
            let layered = LayerConcat {
                encoder: base,
                layers: task.layers(),
            };
            let read_last = [base.as_bert().map_or(0, |b| b.num_layers())];
            let tap;
            let encoder: &dyn Encoder = match (&shared, base.as_bert()) {
                (Some(shared), Some(network)) => {
                    tap = Tap {
                        network,
                        layers: if task.layers().is_empty() {
                            &read_last
                        } else {
                            task.layers()
                        },
                        shared,
                    };
                    &tap
                }
                _ if task.layers().is_empty() => base,
                _ => &layered,
            };
            let model = NerModel {
                tokenizer: self.model.tokenizer(),
                encoder,
                head,
                labels: task.labels(),
                device: self.model.device(),
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
        if self.model.dates() {
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
        if let Some((scorer, thresholds)) = self.model.stance() {
            let enc = SegmentEncoder {
                work,
                shared: shared.as_ref(),
                ..self.segment_encoder()
            };
            // Every document's segments scored together, batched across
            // documents as NER's windows are (`scores_documents`).
            let todo: Vec<(usize, Vec<Span>)> = records
                .iter()
                .zip(&texts)
                .enumerate()
                .filter(|(_, (record, _))| record.error.is_none())
                .map(|(i, (_, text))| (i, segment_spans(text)))
                .collect();
            let inputs: Vec<(&str, &[Span])> = todo
                .iter()
                .map(|(i, spans)| (texts[*i], spans.as_slice()))
                .collect();
            let results = scorer.scores_documents(&enc, &inputs);
            if let Some(shared) = &shared {
                let (started, whole) = shared.counts();
                tracing::debug!(
                    started,
                    whole,
                    "stance batches started from NER's states, and run whole"
                );
            }
            for ((i, spans), result) in todo.iter().zip(results) {
                let record = &mut records[*i];
                let result = result.and_then(|mut scores| {
                    self.model.calibrate(&mut scores);
                    label_segments(spans, &scores, thresholds)
                });
                match result {
                    Ok(segments) => record.segments = segments,
                    Err(e) => {
                        record.entities.clear();
                        record.error = Some(error_chain(&e));
                    }
                }
            }
        }
        Ok(records)
    }

    /// The model's segment encoder, batching as these options say.
    fn segment_encoder(&self) -> SegmentEncoder<'_> {
        SegmentEncoder {
            batch_size: self.options.batch_size,
            ..self.model.segment_encoder()
        }
    }

    /// What the stance head reads: each text's mean-pooled, L2-normalised
    /// last hidden state (a text longer than one window: the token-weighted
    /// mean of its parts, normalised again). `arabtag train stance` trains
    /// on these.
    pub fn segment_embeddings(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, InferError> {
        self.segment_encoder().embed(texts)
    }

    /// Each text's mean-pooled, L2-normalised states from `states` (see
    /// [`SegmentStates`]); as [`Self::segment_embeddings`] otherwise.
    pub fn segment_states(
        &self,
        texts: &[String],
        states: SegmentStates<'_>,
    ) -> Result<Vec<Vec<f32>>, InferError> {
        let enc = self.segment_encoder();
        let base = self.model.encoder();
        match states {
            SegmentStates::Encoder([]) => enc.embed(texts),
            SegmentStates::Encoder(layers) => SegmentEncoder {
                encoder: &LayerConcat {
                    encoder: base,
                    layers,
                },
                ..enc
            }
            .embed(texts),
            SegmentStates::Ner => {
                let task = self.model.ner().ok_or(InferError::NoHead {
                    kind: crate::models::HeadKind::Token,
                    reason: "the model has no [ner] task whose states a segment could pool",
                })?;
                let ner = task.encoder(base);
                if task.layers().is_empty() {
                    SegmentEncoder {
                        encoder: ner,
                        ..enc
                    }
                    .embed(texts)
                } else {
                    SegmentEncoder {
                        encoder: &LayerConcat {
                            encoder: ner,
                            layers: task.layers(),
                        },
                        ..enc
                    }
                    .embed(texts)
                }
            }
        }
    }

    /// The stance scores of each text taken as one segment, by the model's
    /// `[stance]` method (guideline label order), calibrated as the config
    /// says, before thresholds; `None`
    /// when the model has no stance task.
    pub fn segment_scores(
        &self,
        texts: &[String],
    ) -> Result<Option<Vec<StanceScores>>, InferError> {
        let mut out = self.segment_scores_uncalibrated(texts)?;
        if let Some(out) = &mut out {
            self.model.calibrate(out);
        }
        Ok(out)
    }

    /// As [`Self::segment_scores`], without the config's
    /// `stance.calibration`: what `arabtag train calibrate` fits it on.
    pub fn segment_scores_uncalibrated(
        &self,
        texts: &[String],
    ) -> Result<Option<Vec<StanceScores>>, InferError> {
        let Some((scorer, _)) = self.model.stance() else {
            return Ok(None);
        };
        let enc = self.segment_encoder();
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            let span = Span {
                start: 0,
                end: text.chars().count(),
            };
            out.extend(scorer.scores(&enc, text, &[span])?);
        }
        Ok(Some(out))
    }
}
