//! Helpers of the model tests: tiny random checkpoints in the hub layout,
//! padded batches, comparisons.
#![allow(dead_code, clippy::unwrap_used)]

pub mod e5_writer;

use std::path::{Path, PathBuf};

use arabtag_tokenizer::{NormalizerConfig, SubwordEncoder};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use serde_json::{Value, json};

/// A deterministic generator (xorshift64*), so every run writes the same
/// checkpoints.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Approximately normal (sum of uniforms), mean 0, std 1.
    pub fn normal(&mut self) -> f32 {
        (0..12).map(|_| self.uniform()).sum::<f32>() - 6.0
    }

    pub fn values(&mut self, n: usize, mean: f32, std: f32) -> Vec<f32> {
        (0..n).map(|_| mean + std * self.normal()).collect()
    }

    pub fn below(&mut self, n: u32) -> u32 {
        (self.next_u64() % u64::from(n)) as u32
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Bert,
    XlmRoberta,
    DebertaV2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    None,
    Token,
    Sequence,
}

pub const HIDDEN: usize = 64;
pub const HEADS: usize = 4;
pub const FFN: usize = 128;
pub const LAYERS: usize = 2;
pub const VOCAB: usize = 100;
pub const LABELS: [&str; 5] = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"];
pub const STANCES: [&str; 3] = ["favor", "against", "none"];

/// Which tensors and values a tiny checkpoint gets.
#[derive(Debug, Clone)]
pub struct Tiny {
    pub arch: Arch,
    pub head: Head,
    pub seed: u64,
    /// Written into `classifier.bias` (token head) when set.
    pub classifier_bias: Option<Vec<f32>>,
}

impl Tiny {
    pub fn new(arch: Arch, head: Head) -> Self {
        Self {
            arch,
            head,
            seed: 7,
            classifier_bias: None,
        }
    }

    pub fn labels(&self) -> Vec<String> {
        let names: &[&str] = match self.head {
            Head::Sequence => &STANCES,
            _ => &LABELS,
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    pub fn max_positions(&self) -> usize {
        match self.arch {
            Arch::XlmRoberta => 34, // 32 usable positions after padding_idx 1
            _ => 32,
        }
    }

    /// The `config.json` text, as `save_pretrained` writes it.
    pub fn config(&self) -> Value {
        let labels = self.labels();
        let id2label: serde_json::Map<String, Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), json!(l)))
            .collect();
        let label2id: serde_json::Map<String, Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), json!(i)))
            .collect();
        let (model_type, class) = match self.arch {
            Arch::Bert => ("bert", "Bert"),
            Arch::XlmRoberta => ("xlm-roberta", "XLMRoberta"),
            Arch::DebertaV2 => ("deberta-v2", "DebertaV2"),
        };
        let architecture = match self.head {
            Head::None => format!("{class}Model"),
            Head::Token => format!("{class}ForTokenClassification"),
            Head::Sequence => format!("{class}ForSequenceClassification"),
        };
        let mut cfg = json!({
            "architectures": [architecture],
            "model_type": model_type,
            "vocab_size": VOCAB,
            "hidden_size": HIDDEN,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS,
            "intermediate_size": FFN,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": self.max_positions(),
            "initializer_range": 0.02,
            "id2label": id2label,
            "label2id": label2id,
            "torch_dtype": "float32",
        });
        let extra = match self.arch {
            Arch::Bert => json!({
                "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0,
                "position_embedding_type": "absolute", "classifier_dropout": null,
            }),
            Arch::XlmRoberta => json!({
                "type_vocab_size": 1, "layer_norm_eps": 1e-5, "pad_token_id": 1,
                "bos_token_id": 0, "eos_token_id": 2, "position_embedding_type": "absolute",
            }),
            Arch::DebertaV2 => json!({
                "type_vocab_size": 0, "layer_norm_eps": 1e-7, "pad_token_id": 0,
                "relative_attention": true, "max_relative_positions": -1,
                "position_buckets": 16, "pos_att_type": ["p2c", "c2p"],
                "share_att_key": true, "norm_rel_ebd": "layer_norm",
                "position_biased_input": false, "pooler_hidden_size": HIDDEN,
                "pooler_hidden_act": "gelu", "pooler_dropout": 0,
            }),
        };
        if let (Some(cfg), Some(extra)) = (cfg.as_object_mut(), extra.as_object()) {
            cfg.extend(extra.clone());
        }
        cfg
    }

    /// Every tensor: name, shape, and how to draw it.
    fn tensors(&self) -> Vec<(String, Vec<usize>, Init)> {
        let (h, f) = (HIDDEN, FFN);
        let n_labels = self.labels().len();
        let mut out: Vec<(String, Vec<usize>, Init)> = Vec::new();
        let mut push = |name: String, shape: Vec<usize>, init: Init| out.push((name, shape, init));
        let base = match (self.arch, self.head) {
            (_, Head::None) => String::new(),
            (Arch::Bert, _) => "bert.".into(),
            (Arch::XlmRoberta, _) => "roberta.".into(),
            (Arch::DebertaV2, _) => "deberta.".into(),
        };
        let ln = |push: &mut dyn FnMut(String, Vec<usize>, Init), name: String| {
            push(format!("{name}.weight"), vec![h], Init::Norm(1.0, 0.1));
            push(format!("{name}.bias"), vec![h], Init::Norm(0.0, 0.05));
        };
        let linear = |push: &mut dyn FnMut(String, Vec<usize>, Init), name: String, o, i| {
            push(format!("{name}.weight"), vec![o, i], Init::Norm(0.0, 0.08));
            push(format!("{name}.bias"), vec![o], Init::Norm(0.0, 0.05));
        };
        let e = format!("{base}embeddings");
        push(
            format!("{e}.word_embeddings.weight"),
            vec![VOCAB, h],
            Init::Norm(0.0, 0.5),
        );
        ln(&mut push, format!("{e}.LayerNorm"));
        match self.arch {
            Arch::Bert | Arch::XlmRoberta => {
                let types = if self.arch == Arch::Bert { 2 } else { 1 };
                push(
                    format!("{e}.position_embeddings.weight"),
                    vec![self.max_positions(), h],
                    Init::Norm(0.0, 0.5),
                );
                push(
                    format!("{e}.token_type_embeddings.weight"),
                    vec![types, h],
                    Init::Norm(0.0, 0.2),
                );
                for l in 0..LAYERS {
                    let p = format!("{base}encoder.layer.{l}");
                    for part in ["query", "key", "value"] {
                        linear(&mut push, format!("{p}.attention.self.{part}"), h, h);
                    }
                    linear(&mut push, format!("{p}.attention.output.dense"), h, h);
                    ln(&mut push, format!("{p}.attention.output.LayerNorm"));
                    linear(&mut push, format!("{p}.intermediate.dense"), f, h);
                    linear(&mut push, format!("{p}.output.dense"), h, f);
                    ln(&mut push, format!("{p}.output.LayerNorm"));
                }
                if self.arch == Arch::Bert {
                    linear(&mut push, format!("{base}pooler.dense"), h, h);
                }
            }
            Arch::DebertaV2 => {
                for l in 0..LAYERS {
                    let p = format!("{base}encoder.layer.{l}");
                    for part in ["query_proj", "key_proj", "value_proj"] {
                        linear(&mut push, format!("{p}.attention.self.{part}"), h, h);
                    }
                    linear(&mut push, format!("{p}.attention.output.dense"), h, h);
                    ln(&mut push, format!("{p}.attention.output.LayerNorm"));
                    linear(&mut push, format!("{p}.intermediate.dense"), f, h);
                    linear(&mut push, format!("{p}.output.dense"), h, f);
                    ln(&mut push, format!("{p}.output.LayerNorm"));
                }
                push(
                    format!("{base}encoder.rel_embeddings.weight"),
                    vec![32, h],
                    Init::Norm(0.0, 0.5),
                );
                ln(&mut push, format!("{base}encoder.LayerNorm"));
            }
        }
        match (self.arch, self.head) {
            (_, Head::None) => {}
            (_, Head::Token) => {
                push(
                    "classifier.weight".into(),
                    vec![n_labels, h],
                    Init::Norm(0.0, 0.3),
                );
                let bias = match &self.classifier_bias {
                    Some(b) => Init::Values(b.clone()),
                    None => Init::Norm(0.0, 0.3),
                };
                push("classifier.bias".into(), vec![n_labels], bias);
            }
            (Arch::Bert, Head::Sequence) => {
                linear(&mut push, "classifier".into(), n_labels, h);
            }
            (Arch::XlmRoberta, Head::Sequence) => {
                linear(&mut push, "classifier.dense".into(), h, h);
                linear(&mut push, "classifier.out_proj".into(), n_labels, h);
            }
            (Arch::DebertaV2, Head::Sequence) => {
                linear(&mut push, "pooler.dense".into(), h, h);
                linear(&mut push, "classifier".into(), n_labels, h);
            }
        }
        out
    }

    /// Writes `config.json` and `model.safetensors` (through a `VarMap`)
    /// into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let mut rng = Rng::new(self.seed);
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().unwrap();
            for (name, shape, init) in self.tensors() {
                let n = shape.iter().product();
                let values = match init {
                    Init::Norm(mean, std) => rng.values(n, mean, std),
                    Init::Values(v) => v,
                };
                let t = Tensor::from_vec(values, shape, &Device::Cpu).unwrap();
                data.insert(name, Var::from_tensor(&t).unwrap());
            }
        }
        let config = dir.join("config.json");
        let weights = dir.join("model.safetensors");
        std::fs::write(
            &config,
            serde_json::to_string_pretty(&self.config()).unwrap(),
        )
        .unwrap();
        varmap.save(&weights).unwrap();
        (config, weights)
    }
}

#[derive(Debug, Clone)]
enum Init {
    Norm(f32, f32),
    Values(Vec<f32>),
}

/// Right-padded `[b, s]` ids and mask.
pub fn pad_batch(rows: &[Vec<u32>], pad: u32) -> (Tensor, Tensor) {
    let len = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len() * len);
    let mut mask = Vec::with_capacity(rows.len() * len);
    for row in rows {
        ids.extend(row.iter().copied().chain(std::iter::repeat(pad)).take(len));
        mask.extend((0..len).map(|i| u32::from(i < row.len())));
    }
    let dev = Device::Cpu;
    (
        Tensor::from_vec(ids, (rows.len(), len), &dev).unwrap(),
        Tensor::from_vec(mask, (rows.len(), len), &dev).unwrap(),
    )
}

/// Random token rows of the given lengths with ids in `[lo, VOCAB)`.
pub fn random_rows(rng: &mut Rng, lens: &[usize], lo: u32) -> Vec<Vec<u32>> {
    lens.iter()
        .map(|&n| (0..n).map(|_| lo + rng.below(VOCAB as u32 - lo)).collect())
        .collect()
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

pub fn max_abs(a: &Tensor) -> f32 {
    a.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Cosine of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Row `i` of a `[b, s, ..]` batch, cut to its first `len` positions.
pub fn row(t: &Tensor, i: usize, len: usize) -> Tensor {
    t.get(i).unwrap().narrow(0, 0, len).unwrap()
}

/// A Unigram tokenizer behind a Metaspace pre-tokenizer with `<s> $A </s>`:
/// `<unk> <s> </s> <pad> ▁` (ids 0–4), then `pieces`, written into `dir`.
pub fn unigram_tokenizer(dir: &Path, pieces: &[&str]) -> SubwordEncoder {
    let mut vocab = vec![
        serde_json::json!(["<unk>", 0.0]),
        serde_json::json!(["<s>", 0.0]),
        serde_json::json!(["</s>", 0.0]),
        serde_json::json!(["<pad>", 0.0]),
        serde_json::json!(["▁", -1.0]),
    ];
    vocab.extend(pieces.iter().map(|p| serde_json::json!([p, -1.0])));
    let special = |id: u32, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(1, "<s>"), special(2, "</s>"), special(3, "<pad>")],
        "normalizer": null,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
        "post_processor": {"type": "BertProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1]},
        "decoder": null,
        "model": {"type": "Unigram", "unk_id": 0, "vocab": vocab, "byte_fallback": false}
    });
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    SubwordEncoder::from_file(&path, NormalizerConfig::default()).unwrap()
}
