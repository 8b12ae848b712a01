//! Writes small `E5S1` files the way the wheel's converter lays them out
//! (`models/README.md`), with a Q4_0 encoder and decoder of our own (GGML's
//! `quantize_row_q4_0` and the engine's `deq_row`), so the tests do not take
//! the layout from candle.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use half::f16;
use serde_json::{Value, json};

use super::Rng;

/// Sizes of a tiny e5 model.
#[derive(Debug, Clone, Copy)]
pub struct E5Spec {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub type_rows: usize,
    pub eps: f32,
}

impl Default for E5Spec {
    fn default() -> Self {
        Self {
            hidden: 64,
            layers: 2,
            heads: 4,
            ffn: 128,
            vocab: 60,
            max_positions: 24,
            type_rows: 2,
            eps: 1e-12,
        }
    }
}

/// One tensor to write.
#[derive(Debug, Clone)]
pub struct E5Tensor {
    pub name: String,
    /// 1 = Q4_0, 0 = f32 (any other code is written as given).
    pub dtype: u8,
    pub values: Vec<f32>,
    /// Bytes written for the tensor; `None` = encode `values`.
    pub raw: Option<Vec<u8>>,
}

/// GGML `quantize_row_q4_0` → (bytes, the values the engine's `deq_row`
/// reads back).
pub fn q4_0_encode(xs: &[f32]) -> (Vec<u8>, Vec<f32>) {
    assert_eq!(xs.len() % 32, 0);
    let mut bytes = Vec::with_capacity(xs.len() / 32 * 18);
    let mut back = Vec::with_capacity(xs.len());
    for block in xs.chunks_exact(32) {
        let max = block
            .iter()
            .copied()
            .fold(0f32, |m, x| if x.abs() > m.abs() { x } else { m });
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let d16 = f16::from_f32(d);
        bytes.extend_from_slice(&d16.to_bits().to_le_bytes());
        let q = |x: f32| ((x * id + 8.5) as i8).clamp(0, 15) as u8;
        let mut qs = [0u8; 16];
        for j in 0..16 {
            qs[j] = q(block[j]) | (q(block[j + 16]) << 4);
        }
        bytes.extend_from_slice(&qs);
        let d = d16.to_f32();
        let mut out = [0f32; 32];
        for j in 0..16 {
            out[j] = (f32::from(qs[j] & 0x0F) - 8.0) * d;
            out[j + 16] = (f32::from(qs[j] >> 4) - 8.0) * d;
        }
        back.extend_from_slice(&out);
    }
    (bytes, back)
}

/// Random tensors of a tiny e5 model (matrices Q4_0, the rest f32), in the
/// engine's names.
pub fn tiny_tensors(spec: &E5Spec, seed: u64) -> Vec<E5Tensor> {
    let mut rng = Rng::new(seed);
    let (h, ff) = (spec.hidden, spec.ffn);
    let mut out = Vec::new();
    let mut add = |name: String, n: usize, q4: bool, mean: f32, std: f32| {
        out.push(E5Tensor {
            name,
            dtype: u8::from(q4),
            values: rng.values(n, mean, std),
            raw: None,
        })
    };
    add("emb.word".into(), spec.vocab * h, true, 0.0, 0.5);
    add("emb.pos".into(), spec.max_positions * h, false, 0.0, 0.5);
    add("emb.type".into(), spec.type_rows * h, false, 0.0, 0.2);
    add("emb.ln.w".into(), h, false, 1.0, 0.1);
    add("emb.ln.b".into(), h, false, 0.0, 0.05);
    for l in 0..spec.layers {
        for (part, n) in [("q", h * h), ("k", h * h), ("v", h * h), ("ao", h * h)] {
            add(format!("l{l}.{part}.w"), n, true, 0.0, 0.08);
            add(format!("l{l}.{part}.b"), h, false, 0.0, 0.05);
        }
        add(format!("l{l}.aln.w"), h, false, 1.0, 0.1);
        add(format!("l{l}.aln.b"), h, false, 0.0, 0.05);
        add(format!("l{l}.fi.w"), ff * h, true, 0.0, 0.08);
        add(format!("l{l}.fi.b"), ff, false, 0.0, 0.05);
        add(format!("l{l}.fo.w"), h * ff, true, 0.0, 0.08);
        add(format!("l{l}.fo.b"), h, false, 0.0, 0.05);
        add(format!("l{l}.oln.w"), h, false, 1.0, 0.1);
        add(format!("l{l}.oln.b"), h, false, 0.0, 0.05);
    }
    out
}

/// How to lay the file out.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub version: u32,
    /// Tensor data starts on multiples of this (the wheel uses 256).
    pub align: usize,
    /// Add one byte before every tensor, so Q4_0 blocks start at odd offsets.
    pub misalign: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            version: 1,
            align: 64,
            misalign: false,
        }
    }
}

/// Byte offsets of the fields a test may corrupt.
#[derive(Debug, Clone, Default)]
pub struct Offsets {
    /// Start of the vocabulary section (the piece count).
    pub vocab: usize,
    /// Start of the tensor directory (its count).
    pub directory: usize,
    /// Start of each directory entry (its name length).
    pub entries: BTreeMap<String, usize>,
    /// Start of each tensor's data.
    pub data: BTreeMap<String, usize>,
}

/// The bytes of an `E5S1` file.
pub fn write_e5(spec: &E5Spec, tensors: &[E5Tensor], layout: Layout) -> (Vec<u8>, Offsets) {
    let mut b = Vec::new();
    let mut offsets = Offsets::default();
    b.extend_from_slice(b"E5S1");
    b.extend_from_slice(&layout.version.to_le_bytes());
    for v in [
        spec.hidden,
        spec.layers,
        spec.heads,
        spec.ffn,
        spec.vocab,
        spec.max_positions,
        spec.type_rows,
    ] {
        b.extend_from_slice(&(v as i32).to_le_bytes());
    }
    b.extend_from_slice(&spec.eps.to_le_bytes());
    b.extend_from_slice(&32i32.to_le_bytes());
    // vocabulary: <s> <pad> </s> <unk>
    offsets.vocab = b.len();
    let pieces = ["<s>", "<pad>", "</s>", "<unk>"];
    b.extend_from_slice(&(pieces.len() as i32).to_le_bytes());
    for id in [0i32, 2, 1, 3] {
        b.extend_from_slice(&id.to_le_bytes());
    }
    let blob: String = pieces.concat();
    b.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    let mut off = 0u32;
    b.extend_from_slice(&off.to_le_bytes());
    for p in pieces {
        off += p.len() as u32;
        b.extend_from_slice(&off.to_le_bytes());
    }
    for i in 0..pieces.len() {
        b.extend_from_slice(&(-(i as f32)).to_le_bytes());
    }
    b.extend_from_slice(blob.as_bytes());
    // normaliser: one entry (U+00A0 → U+0020)
    b.extend_from_slice(&1i32.to_le_bytes());
    let mut norm = Vec::new();
    norm.extend_from_slice(&0xA0u32.to_le_bytes());
    norm.push(1);
    norm.extend_from_slice(&0x20u32.to_le_bytes());
    b.extend_from_slice(&(norm.len() as u32).to_le_bytes());
    b.extend_from_slice(&norm);

    // payloads first, to know their lengths
    let payloads: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| match (&t.raw, t.dtype) {
            (Some(raw), _) => raw.clone(),
            (None, 1) => q4_0_encode(&t.values).0,
            (None, _) => t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        })
        .collect();
    offsets.directory = b.len();
    let dir_len: usize = 4 + tensors
        .iter()
        .map(|t| 2 + t.name.len() + 1 + 4 + 8 + 8)
        .sum::<usize>();
    let mut cursor = b.len() + dir_len;
    let mut places = Vec::new();
    for p in &payloads {
        cursor = cursor.div_ceil(layout.align) * layout.align + usize::from(layout.misalign);
        places.push(cursor);
        cursor += p.len();
    }
    b.extend_from_slice(&(tensors.len() as i32).to_le_bytes());
    for ((t, p), &at) in tensors.iter().zip(&payloads).zip(&places) {
        offsets.entries.insert(t.name.clone(), b.len());
        offsets.data.insert(t.name.clone(), at);
        b.extend_from_slice(&(t.name.len() as u16).to_le_bytes());
        b.extend_from_slice(t.name.as_bytes());
        b.push(t.dtype);
        b.extend_from_slice(&(t.values.len() as u32).to_le_bytes());
        b.extend_from_slice(&(at as u64).to_le_bytes());
        b.extend_from_slice(&(p.len() as u64).to_le_bytes());
    }
    for (p, &at) in payloads.iter().zip(&places) {
        b.resize(at, 0);
        b.extend_from_slice(p);
    }
    (b, offsets)
}

/// The same model in the hub layout (`config.json` value and tensors named
/// as `BertModel` saves them), with every Q4_0 matrix as the engine
/// dequantises it.
pub fn as_hub_bert(spec: &E5Spec, tensors: &[E5Tensor]) -> (Value, BTreeMap<String, Tensor>) {
    let dev = Device::Cpu;
    let h = spec.hidden;
    let mut out = BTreeMap::new();
    for t in tensors {
        let values = if t.dtype == 1 {
            q4_0_encode(&t.values).1
        } else {
            t.values.clone()
        };
        let (name, shape): (String, Vec<usize>) = match t.name.as_str() {
            "emb.word" => (
                "embeddings.word_embeddings.weight".into(),
                vec![spec.vocab, h],
            ),
            "emb.pos" => (
                "embeddings.position_embeddings.weight".into(),
                vec![spec.max_positions, h],
            ),
            "emb.type" => (
                "embeddings.token_type_embeddings.weight".into(),
                vec![spec.type_rows, h],
            ),
            "emb.ln.w" => ("embeddings.LayerNorm.weight".into(), vec![h]),
            "emb.ln.b" => ("embeddings.LayerNorm.bias".into(), vec![h]),
            other => {
                let (layer, rest) = other.split_once('.').unwrap();
                let l: usize = layer[1..].parse().unwrap();
                let p = format!("encoder.layer.{l}");
                let (module, kind) = rest.split_once('.').unwrap();
                let module = match module {
                    "q" => "attention.self.query",
                    "k" => "attention.self.key",
                    "v" => "attention.self.value",
                    "ao" => "attention.output.dense",
                    "aln" => "attention.output.LayerNorm",
                    "fi" => "intermediate.dense",
                    "fo" => "output.dense",
                    "oln" => "output.LayerNorm",
                    m => panic!("unknown module {m}"),
                };
                let suffix = if kind == "w" { "weight" } else { "bias" };
                let shape = match (module, kind) {
                    ("intermediate.dense", "w") => vec![spec.ffn, h],
                    ("intermediate.dense", "b") => vec![spec.ffn],
                    ("output.dense", "w") => vec![h, spec.ffn],
                    (_, "w") if !module.ends_with("LayerNorm") => vec![h, h],
                    _ => vec![h],
                };
                (format!("{p}.{module}.{suffix}"), shape)
            }
        };
        out.insert(name, Tensor::from_vec(values, shape, &dev).unwrap());
    }
    let config = json!({
        "model_type": "bert",
        "architectures": ["BertModel"],
        "vocab_size": spec.vocab,
        "hidden_size": h,
        "num_hidden_layers": spec.layers,
        "num_attention_heads": spec.heads,
        "intermediate_size": spec.ffn,
        "hidden_act": "gelu",
        "max_position_embeddings": spec.max_positions,
        "type_vocab_size": spec.type_rows,
        "layer_norm_eps": spec.eps,
        "pad_token_id": 1,
    });
    (config, out)
}
