//! A verified model config, loaded once: the tokenizer, the encoder, the
//! NER task's network and the stance scorer, built here and nowhere else.
//!
//! [`LoadedModel::load`] reads everything a [`VerifiedModel`] names, on
//! the CPU: the encoder (the e5 file, or a hub-layout checkpoint, 8-bit
//! where the config says `int8 = true`), the NER head with any fine-tuned
//! layers its head file carries ([`NerTask`]), and the stance scorer the
//! `[stance]` method asks for. The [`crate::Tagger`] runs it over
//! documents; [`LoadedModel::ner_network`] hands its NER network to the
//! exporter and the benchmark; [`load_bert`] gives trainers the encoder
//! alone.

mod ner;
pub(crate) mod network;

use std::collections::HashMap;

use arabtag_records::STANCE_LABELS;
use arabtag_tokenizer::SubwordEncoder;
use candle_core::Device;

pub(crate) use self::ner::LayerConcat;
pub use self::ner::NerTask;
pub use self::network::NerNetwork;
use crate::InferError;
use crate::config::{
    Architecture, DType, NerHead, ResolvedSource, StanceConfig, StanceMethod, StanceTrunk,
    VerifiedModel,
};
use crate::models::{
    BertModel, E5Model, E5Precision, Encoder, HeadChoice, HeadKind, HubOptions, PooledClassifier,
    Pooling, SequenceHead, TokenHead, load_e5, load_head_file, load_hub,
};
use crate::pipeline::stance_scorer::{SegmentEncoder, StanceScorer};
use crate::pipeline::{StanceScores, Wrapping};

use crate::pipeline::DEFAULT_BATCH_SIZE;

/// In what precision the encoder's layers are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// As the config says (`int8`, `quantized`, `dtype`).
    #[default]
    Configured,
    /// f32 layers (or the config's 4-bit ones) whatever `int8` and `dtype`
    /// say: the network an export holds, and what training reads.
    F32,
}

impl Precision {
    /// Whether the encoder's layers run as 8-bit products: the config's
    /// `int8` in [`Precision::Configured`], never in [`Precision::F32`].
    fn int8(self, model: &VerifiedModel) -> bool {
        model.model().int8 && self == Precision::Configured
    }
}

/// How to load a model.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Segments per encoder batch (the stance prototypes are embedded at
    /// load time in batches of this size).
    pub batch_size: usize,
    pub precision: Precision,
    /// Set the stance scorer up (`false`: NER only, as the export needs).
    pub stance: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH_SIZE,
            precision: Precision::Configured,
            stance: true,
        }
    }
}

/// A loaded model: tokenizer, encoder and the tasks' heads.
#[derive(Debug)]
pub struct LoadedModel {
    tokenizer: SubwordEncoder,
    /// Unigram log-probability of each whole-word vocabulary piece (without
    /// `▁`), for the proclitic rule.
    vocabulary: HashMap<String, f64>,
    encoder: Box<dyn Encoder>,
    device: Device,
    wrapping: Wrapping,
    ner: Option<NerTask>,
    /// Rule-based dates are merged with the NER spans (`[dates]`).
    dates: bool,
    stance: Option<(StanceScorer, StanceScores)>,
    /// `stance.calibration`, per label in the guideline's order.
    calibration: Option<[(f64, f64); 3]>,
    batch_size: usize,
}

/// The encoder of a config, and the checkpoint's heads the tasks asked of
/// a hub-layout model.
struct Encoded {
    encoder: Box<dyn Encoder>,
    token_head: Option<Box<dyn TokenHead>>,
    sequence_head: Option<Box<dyn SequenceHead>>,
}

/// The checkpoint head the tasks read of a hub-layout model: the token
/// head for `ner.head = "checkpoint"`, else the sequence head for NLI
/// stance (when `stance` is loaded), else none.
fn checkpoint_head(model: &VerifiedModel, stance: bool) -> HeadChoice {
    let resolved = model.model();
    match (&resolved.ner, &resolved.stance) {
        (Some(ner), _) if ner.head == NerHead::Checkpoint => HeadChoice::Token,
        (
            _,
            Some(StanceConfig {
                method: StanceMethod::Nli { .. },
                ..
            }),
        ) if stance => HeadChoice::Sequence,
        _ => HeadChoice::None,
    }
}

/// The encoder `model` names, in `precision`, with the hub checkpoint's
/// `head` (ignored for the e5 file, which has none).
fn load_encoder(
    model: &VerifiedModel,
    precision: Precision,
    head: HeadChoice,
) -> Result<Encoded, InferError> {
    let resolved = model.model();
    let device = Device::Cpu;
    let int8 = precision.int8(model);
    if int8 && !arabtag_kernels::vnni_available() {
        tracing::warn!(
            "int8 = true on a CPU without AVX-512 VNNI: the 8-bit products run in a \
             portable loop (same results, many times slower); int8 = false runs f32"
        );
    }
    let (mut token_head, mut sequence_head) = (None, None);
    let encoder: Box<dyn Encoder> = match &resolved.source {
        // Straight from 4 bits to 8, without an f32 copy of the layers.
        ResolvedSource::E5 if int8 => {
            Box::new(E5Model::load(model.weights(), E5Precision::Int8, &device)?)
        }
        ResolvedSource::E5 => load_e5(model.weights(), resolved.quantized, &device)?,
        _ => {
            let config_json = model
                .checkpoint_config()
                .ok_or(InferError::NoCheckpointConfig)?;
            let dtype = match precision {
                Precision::Configured => candle_dtype(resolved.dtype),
                Precision::F32 => candle_core::DType::F32,
            };
            let hub = load_hub(
                config_json,
                model.weights(),
                &HubOptions {
                    dtype,
                    device: device.clone(),
                    head,
                    ..HubOptions::default()
                },
            )?;
            token_head = hub.token_head;
            sequence_head = hub.sequence_head;
            if int8 {
                ner::int8_encoder(hub.encoder.as_ref())?
            } else {
                hub.encoder
            }
        }
    };
    Ok(Encoded {
        encoder,
        token_head,
        sequence_head,
    })
}

/// The encoder of a verified model as our BERT, on the CPU, f32 (or the
/// config's 4-bit layers), so that its layers can be read
/// ([`BertModel::forward_layers`]) and trained: the e5 file, or a BERT /
/// XLM-RoBERTa checkpoint in the hub layout, without any head. DeBERTa-v2
/// is refused before anything is read (candle's encoder does not give its
/// intermediate layers).
pub fn load_bert(model: &VerifiedModel) -> Result<BertModel, InferError> {
    if model.model().architecture == Architecture::DebertaV2 {
        return Err(InferError::UnsupportedConfig {
            model: "deberta-v2",
            field: "model_type",
            value: "deberta-v2 (no intermediate layers for training features)".to_owned(),
        });
    }
    let encoded = load_encoder(model, Precision::F32, HeadChoice::None)?;
    encoded
        .encoder
        .as_bert()
        .cloned()
        .ok_or(InferError::NotBertFamily {
            what: "reading intermediate layers (training features, export)",
        })
}

impl LoadedModel {
    /// Loads everything `model` names, on the CPU.
    pub fn load(model: &VerifiedModel, options: &LoadOptions) -> Result<Self, InferError> {
        let resolved = model.model();
        std::thread::scope(|scope| {
            // The tokenizer (a 250k-piece tokenizer.json: 0.4 s, most of the
            // start-up) loads on a second thread while the weights load here.
            let tokenizer = scope.spawn(|| {
                let tokenizer = SubwordEncoder::from_file(model.tokenizer(), resolved.normalizer)?;
                let vocabulary = tokenizer.whole_word_pieces();
                Ok::<_, InferError>((tokenizer, vocabulary))
            });
            let head = checkpoint_head(model, options.stance);
            let weights = load_encoder(model, options.precision, head).and_then(|encoded| {
                let ner = match &resolved.ner {
                    None => None,
                    Some(cfg) => Some(NerTask::load(
                        cfg,
                        encoded.encoder.as_ref(),
                        encoded.token_head,
                        options.precision.int8(model),
                        &resolved.normalizer,
                    )?),
                };
                Ok((encoded.encoder, encoded.sequence_head, ner))
            });
            let (tokenizer, vocabulary) =
                tokenizer.join().map_err(|_| InferError::LoaderPanicked)??;
            let (encoder, sequence_head, ner) = weights?;
            let wrapping = Wrapping::from_special(tokenizer.special_tokens())?;
            let mut loaded = Self {
                vocabulary,
                tokenizer,
                encoder,
                device: Device::Cpu,
                ner: ner.map(|task| task.less_specials(&wrapping)),
                wrapping,
                dates: resolved.dates.is_some_and(|d| d.enabled),
                stance: None,
                calibration: None,
                batch_size: options.batch_size,
            };
            if options.stance
                && let Some(cfg) = &resolved.stance
            {
                let scorer = loaded.stance_scorer(cfg, sequence_head)?;
                let mut thresholds = [0.0; 3];
                for (i, label) in STANCE_LABELS.iter().enumerate() {
                    thresholds[i] = cfg
                        .thresholds
                        .iter()
                        .find(|(l, _)| l.as_str() == *label)
                        .map_or(0.5, |(_, t)| *t);
                }
                loaded.stance = Some((scorer, thresholds));
                loaded.calibration = cfg.calibration.as_ref().map(|c| {
                    STANCE_LABELS.map(|label| {
                        c.iter()
                            .find(|(l, _)| l.as_str() == label)
                            .map_or((1.0, 0.0), |(_, [a, b])| (*a, *b))
                    })
                });
            }
            Ok(loaded)
        })
    }

    /// The stance scorer `cfg`'s method asks for.
    fn stance_scorer(
        &self,
        cfg: &StanceConfig,
        sequence_head: Option<Box<dyn SequenceHead>>,
    ) -> Result<StanceScorer, InferError> {
        Ok(match &cfg.method {
            StanceMethod::Prototypes { prefix, prototypes } => {
                let descriptions: Vec<Vec<String>> = STANCE_LABELS
                    .iter()
                    .map(|label| {
                        prototypes
                            .iter()
                            .filter(|(l, _)| l.as_str() == *label)
                            .flat_map(|(_, p)| p.ar.iter().chain(&p.en))
                            .cloned()
                            .collect()
                    })
                    .collect();
                StanceScorer::prototypes(&self.segment_encoder(), prefix, &descriptions)?
            }
            StanceMethod::Head {
                head,
                labels,
                trunk,
            } => {
                let names: Vec<String> = labels.iter().map(|l| l.as_str().to_string()).collect();
                let mut order = [0; 3];
                for (i, label) in STANCE_LABELS.iter().enumerate() {
                    order[i] = names.iter().position(|n| n == label).ok_or_else(|| {
                        InferError::StanceLabels {
                            labels: names.clone(),
                        }
                    })?;
                }
                // The network the head file's layers go into: the model's
                // encoder, or (`stance.trunk = "ner"`) the NER network.
                let network: &dyn Encoder = match (trunk, &self.ner) {
                    (StanceTrunk::Ner, Some(ner)) => ner.encoder(self.encoder.as_ref()),
                    (StanceTrunk::Ner, None) => {
                        return Err(InferError::StanceTrunk {
                            path: head.path.clone(),
                            reason: "a [ner] task",
                        });
                    }
                    (StanceTrunk::Encoder, _) => self.encoder.as_ref(),
                };
                // A head file from `arabtag train stance --finetune` carries
                // the encoder layers it was trained with.
                let (head, encoder, branch) = match network.as_bert() {
                    Some(bert) => {
                        let file = load_head_file(bert, &head.path, &self.device)?;
                        let branch = match (&file.layers, trunk) {
                            (_, StanceTrunk::Encoder) => None,
                            (Some((_, replaced)), StanceTrunk::Ner) => {
                                Some(branch_layers(replaced, &head.path)?)
                            }
                            (None, StanceTrunk::Ner) => {
                                return Err(InferError::StanceTrunk {
                                    path: head.path.clone(),
                                    reason: "a head file that carries encoder layers",
                                });
                            }
                        };
                        let encoder: Option<Box<dyn Encoder>> = match file.layers {
                            None => None,
                            // The encoder runs 8-bit products: so do the
                            // head's layers (kept as stored when 8-bit).
                            Some((replaced, _)) if bert.is_int8() => {
                                Some(Box::new(replaced.to_int8()?))
                            }
                            Some((replaced, _)) => Some(Box::new(replaced)),
                        };
                        let head = PooledClassifier::from_tensors(
                            file.tensors,
                            self.encoder.hidden_size(),
                            names,
                            Pooling::Mean,
                            true,
                            &head.path,
                            &self.device,
                        )?;
                        (head, encoder, branch)
                    }
                    None if *trunk == StanceTrunk::Ner => {
                        return Err(InferError::StanceTrunk {
                            path: head.path.clone(),
                            reason: "a BERT-family encoder (BERT, XLM-RoBERTa, e5)",
                        });
                    }
                    None => (
                        PooledClassifier::from_file(
                            &head.path,
                            self.encoder.hidden_size(),
                            names,
                            Pooling::Mean,
                            true,
                            &self.device,
                        )?,
                        None,
                        None,
                    ),
                };
                StanceScorer::Head {
                    head,
                    order,
                    encoder,
                    branch,
                }
            }
            StanceMethod::Nli {
                hypothesis_template,
                entailment_label,
                candidate_labels,
            } => {
                let head = sequence_head.ok_or(InferError::NoHead {
                    kind: HeadKind::Sequence,
                    reason: "stance.method = nli needs the checkpoint's sequence-classification head",
                })?;
                let position = |name: &str| {
                    head.labels()
                        .iter()
                        .position(|l| l.eq_ignore_ascii_case(name))
                };
                let entailment =
                    position(entailment_label).ok_or_else(|| InferError::EntailmentLabel {
                        label: entailment_label.clone(),
                        labels: head.labels().to_vec(),
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
                StanceScorer::Nli {
                    head,
                    hypotheses,
                    entailment,
                    contradiction,
                }
            }
        })
    }

    /// The encoder with its tokenizer, as segments go through it.
    pub fn segment_encoder(&self) -> SegmentEncoder<'_> {
        SegmentEncoder {
            tokenizer: &self.tokenizer,
            encoder: self.encoder.as_ref(),
            wrapping: &self.wrapping,
            device: &self.device,
            batch_size: self.batch_size,
            work: None,
            shared: None,
        }
    }

    /// The subword encoder the model reads text with.
    pub fn tokenizer(&self) -> &SubwordEncoder {
        &self.tokenizer
    }

    /// Unigram log-probability of each whole-word vocabulary piece.
    pub fn vocabulary(&self) -> &HashMap<String, f64> {
        &self.vocabulary
    }

    /// The encoder (the one stance and embeddings read; NER may read one
    /// with fine-tuned layers, [`NerTask::encoder`]).
    pub fn encoder(&self) -> &dyn Encoder {
        self.encoder.as_ref()
    }

    /// Where the tensors live.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The special tokens around each window, and the padding id.
    pub fn wrapping(&self) -> &Wrapping {
        &self.wrapping
    }

    /// The NER task, when the config has `[ner]`.
    pub fn ner(&self) -> Option<&NerTask> {
        self.ner.as_ref()
    }

    /// Whether rule-based dates are merged with the NER spans.
    pub fn dates(&self) -> bool {
        self.dates
    }

    /// The stance scorer and its per-label thresholds (guideline order).
    pub fn stance(&self) -> Option<(&StanceScorer, &StanceScores)> {
        self.stance.as_ref().map(|(s, t)| (s, t))
    }

    /// `scores` calibrated as the config's `stance.calibration` says (Platt
    /// scaling per label); unchanged without one.
    pub fn calibrate(&self, scores: &mut [StanceScores]) {
        if let Some(c) = &self.calibration {
            for row in scores {
                for (s, &(a, b)) in row.iter_mut().zip(c) {
                    *s = arabtag_records::platt::platt(a, b, *s);
                }
            }
        }
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

    /// The network the NER task runs, as one BERT up to the layer its head
    /// reads and the head ([`NerNetwork`]).
    pub fn ner_network(&self) -> Result<NerNetwork, InferError> {
        NerNetwork::from_loaded(self)
    }
}

fn candle_dtype(dtype: DType) -> candle_core::DType {
    match dtype {
        DType::F32 => candle_core::DType::F32,
        DType::F16 => candle_core::DType::F16,
        DType::Bf16 => candle_core::DType::BF16,
    }
}

/// The layers a stance head file on the NER network shares and reads,
/// `(from, to)` (1-based: NER's layers 1..=from, then the file's up to
/// layer `to`), from the 0-based places its layers took: one run of them.
fn branch_layers(replaced: &[usize], path: &std::path::Path) -> Result<(usize, usize), InferError> {
    let (Some(&first), Some(&last)) = (replaced.iter().min(), replaced.iter().max()) else {
        return Err(InferError::StanceTrunk {
            path: path.to_path_buf(),
            reason: "a head file that carries encoder layers",
        });
    };
    if last + 1 - first != replaced.len() {
        return Err(InferError::StanceTrunk {
            path: path.to_path_buf(),
            reason: "the head file's layers to be one run (say layers 7 and 8), not scattered",
        });
    }
    Ok((first, last + 1))
}
