//! A model config's NER network in the Hugging Face hub layout, for
//! `transformers` (`arabtag models export`).
//!
//! What the tagger runs for NER is one BERT and a token head: the encoder's
//! embeddings, its layers up to the one the head reads (a head file's
//! fine-tuned layers in place of the encoder's own, as
//! [`crate::Tagger`] puts them), and the head on that layer's output.
//! [`NerNetwork`] is that network, taken from the loaded model
//! ([`crate::loaded`]); [`export_hub`] writes it as a
//! `BertForTokenClassification` (`XLMRobertaForTokenClassification` for an
//! XLM-R encoder) folder that `AutoModelForTokenClassification` and
//! `pipeline("token-classification")` load without missing or unused
//! weights:
//!
//! | file | what |
//! |---|---|
//! | `config.json` | architecture, sizes, `num_hidden_layers` = the layer the head reads, `id2label` / `label2id` from `[ner].labels` |
//! | `model.safetensors` | every tensor in f32 (4-bit and 8-bit matrices dequantised: the values the tagger computes with) |
//! | `tokenizer.json` | the config's, copied byte for byte |
//! | `tokenizer_config.json`, `special_tokens_map.json` | what `AutoTokenizer` needs (the fast tokenizer of `tokenizer.json`, its special tokens, `model_max_length` = the NER window) |
//! | `arabtag.toml` | a model config over this folder (`[source.local]`, every file pinned, the source's normaliser, `[ner]` on the checkpoint's head, `[dates]` as the source has it) |
//! | `README.md` | the model card: the command, the source files and the written files with their sha256 |
//!
//! Refused, naming why: a config without `[ner]`, a head over several
//! layers' states concatenated (no `…ForTokenClassification` reads that),
//! DeBERTa-v2 (our encoder cannot give its layers).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use arabtag_tokenizer::SubwordEncoder;
use candle_core::{DType, Tensor};
use candle_nn::Activation;

use crate::InferError;
use crate::config::{VerifiedFile, VerifiedModel};
use crate::loaded::NerNetwork;
use crate::loaded::network::not_exportable;
use crate::models::Positions;

/// The model config [`export_hub`] writes beside the checkpoint.
pub const EXPORT_CONFIG: &str = "arabtag.toml";

/// Writing the network in the hub layout.
impl NerNetwork {
    /// `(model_type, architecture, tensor prefix)` of the exported checkpoint.
    fn hub_names(&self) -> (&'static str, &'static str, &'static str) {
        match self.bert.positions() {
            Positions::Absolute => ("bert", "BertForTokenClassification", "bert"),
            Positions::FromMask { .. } => {
                ("xlm-roberta", "XLMRobertaForTokenClassification", "roberta")
            }
        }
    }

    /// Every tensor of the checkpoint under its transformers name, f32.
    fn hub_tensors(&self) -> Result<Vec<(String, Tensor)>, InferError> {
        let (_, _, prefix) = self.hub_names();
        let mut out: Vec<(String, Tensor)> = self
            .bert
            .embedding_tensors()?
            .into_iter()
            .map(|(name, t)| (format!("{prefix}.{name}"), t))
            .collect();
        for i in 0..self.depth {
            out.extend(
                self.bert
                    .layer_tensors(i)?
                    .into_iter()
                    .map(|(name, t)| (format!("{prefix}.{name}"), t)),
            );
        }
        out.push(("classifier.weight".to_owned(), self.weight.clone()));
        out.push(("classifier.bias".to_owned(), self.bias.clone()));
        Ok(out)
    }

    /// `config.json`.
    fn hub_config(&self, pad: Option<u32>) -> Result<serde_json::Value, InferError> {
        let (model_type, architecture, _) = self.hub_names();
        let dims = self.bert.dims();
        let activation = match self.bert.activation().unwrap_or(Activation::Gelu) {
            Activation::Gelu => "gelu",
            Activation::NewGelu => "gelu_new",
            Activation::GeluPytorchTanh => "gelu_pytorch_tanh",
            Activation::Relu => "relu",
            Activation::Silu => "silu",
            Activation::Sigmoid => "sigmoid",
            Activation::Mish => "mish",
            other => {
                return Err(not_exportable(format!(
                    "the activation {other:?} has no transformers name"
                )));
            }
        };
        let pad = match self.bert.positions() {
            Positions::FromMask { padding_idx } => Some(padding_idx),
            Positions::Absolute => pad,
        };
        let id2label: BTreeMap<String, &str> = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), l.as_str()))
            .collect();
        let label2id: BTreeMap<&str, usize> = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i))
            .collect();
        Ok(serde_json::json!({
            "architectures": [architecture],
            "model_type": model_type,
            "vocab_size": dims.vocab_size,
            "hidden_size": dims.hidden_size,
            "num_hidden_layers": self.depth,
            "num_attention_heads": dims.num_heads,
            "intermediate_size": self.bert.intermediate_size(),
            "hidden_act": activation,
            "max_position_embeddings": dims.max_position_embeddings,
            // The encoder keeps token type 0 only, and only it is exported.
            "type_vocab_size": 1,
            "layer_norm_eps": shortest(dims.layer_norm_eps),
            "position_embedding_type": "absolute",
            "pad_token_id": pad,
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "classifier_dropout": null,
            "initializer_range": 0.02,
            "dtype": "float32",
            "id2label": id2label,
            "label2id": label2id,
        }))
    }
}

/// `x`, written with as few digits as read back the same: an f32 value
/// (the e5 file's 1e-12) as the f32 prints it, not as its f64 widening.
fn shortest(x: f64) -> f64 {
    let narrow = x as f32;
    if f64::from(narrow) == x {
        narrow.to_string().parse().unwrap_or(x)
    } else {
        x
    }
}

/// One file [`export_hub`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFile {
    /// Its name in the folder.
    pub name: String,
    /// sha256, hex.
    pub sha256: String,
    pub bytes: u64,
}

/// What [`export_hub`] wrote.
#[derive(Debug, Clone)]
pub struct Export {
    /// The folder.
    pub dir: PathBuf,
    /// `bert` or `xlm-roberta`.
    pub model_type: &'static str,
    /// `num_hidden_layers`: the layer the head reads.
    pub layers: usize,
    /// 0-based indices of the layers a head file replaced.
    pub finetuned: Vec<usize>,
    pub labels: Vec<String>,
    /// Tensors in `model.safetensors`.
    pub tensors: usize,
    /// Every file written, README last.
    pub files: Vec<ExportedFile>,
}

/// Who made the export, for the model card (`arabtag models export …`,
/// the version and commit).
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// The command line as the card shows it.
    pub command: String,
    /// The program and its version (and commit).
    pub producer: String,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), InferError> {
    std::fs::write(path, bytes).map_err(|source| InferError::Write {
        path: path.to_owned(),
        source,
    })
}

fn exported(dir: &Path, name: &str) -> Result<ExportedFile, InferError> {
    let path = dir.join(name);
    let digest = crate::config::digest(&path).map_err(|source| InferError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(ExportedFile {
        name: name.to_owned(),
        sha256: digest.sha256.to_hex(),
        bytes: digest.bytes,
    })
}

/// Writes `tensors` (f32) as a safetensors file with `__metadata__`
/// `format = pt` (what transformers' own files carry), names sorted.
fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), InferError> {
    let mut order: Vec<&(String, Tensor)> = tensors.iter().collect();
    order.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".to_owned(),
        serde_json::json!({"format": "pt", "producer": "arabtag models export"}),
    );
    let mut offset = 0usize;
    for (name, t) in &order {
        let bytes = t.elem_count() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.dims(), "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut head = serde_json::to_vec(&header).map_err(|source| InferError::Json {
        path: path.to_owned(),
        source,
    })?;
    // The data starts 8-byte aligned.
    while (head.len() + 8) % 8 != 0 {
        head.push(b' ');
    }
    let io = |source| InferError::Write {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    w.write_all(&(head.len() as u64).to_le_bytes())
        .map_err(io)?;
    w.write_all(&head).map_err(io)?;
    let mut buf = Vec::with_capacity(1 << 20);
    for (_, t) in order {
        // A few rows at a time: the 250k-row word table is not copied whole.
        let t = t.to_dtype(DType::F32)?;
        let rows = t.dims().first().copied().unwrap_or(1).max(1);
        let per_row = t.elem_count() / rows;
        let step = ((1 << 18) / per_row.max(1)).max(1);
        let mut start = 0;
        while start < rows && t.elem_count() > 0 {
            let n = step.min(rows - start);
            let part = if t.rank() == 0 {
                t.flatten_all()?
            } else {
                t.narrow(0, start, n)?.flatten_all()?
            };
            buf.clear();
            buf.extend(part.to_vec1::<f32>()?.iter().flat_map(|x| x.to_le_bytes()));
            w.write_all(&buf).map_err(io)?;
            start += n;
        }
    }
    w.flush().map_err(io)
}

/// The tokenizer's special tokens as `special_tokens_map.json` names them.
fn special_tokens(tokenizer: &SubwordEncoder) -> BTreeMap<&'static str, String> {
    let special = tokenizer.special_tokens();
    let name = |id: Option<u32>| id.and_then(|id| tokenizer.id_to_token(id));
    let mut out = BTreeMap::new();
    let cls = name(special.bos());
    let sep = name(special.eos());
    // SentencePiece models call them <s> and </s>, and use them as BOS/EOS.
    if let (Some(cls), Some(sep)) = (&cls, &sep)
        && cls.starts_with('<')
    {
        out.insert("bos_token", cls.clone());
        out.insert("eos_token", sep.clone());
    }
    for (key, value) in [
        ("cls_token", cls),
        ("sep_token", sep),
        ("pad_token", name(special.pad)),
        ("unk_token", name(special.unk)),
    ] {
        if let Some(v) = value {
            out.insert(key, v);
        }
    }
    let mask = tokenizer
        .added_tokens()
        .into_iter()
        .map(|(_, a)| a)
        .filter(|a| a.special && a.content.to_lowercase().contains("mask"))
        .map(|a| a.content)
        .min();
    if let Some(mask) = mask {
        out.insert("mask_token", mask);
    }
    out
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `arabtag.toml` over the exported folder.
fn export_config(
    model: &VerifiedModel,
    net: &NerNetwork,
    files: &[ExportedFile],
) -> Result<String, InferError> {
    let resolved = model.model();
    let pin = |name: &str| {
        files
            .iter()
            .find(|f| f.name == name)
            .map_or_else(String::new, |f| f.sha256.clone())
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Written by `arabtag models export` from {}: the NER network of that\n\
         # config in the hub layout, loaded back through [source.local].\n\
         schema_version = {}",
        shown(&resolved.config_path),
        crate::config::SCHEMA_VERSION
    );
    let name = resolved.name.as_deref().unwrap_or("model");
    let _ = writeln!(
        s,
        "name = {}\ndtype = \"f32\"\n",
        toml_str(&format!("{name}: NER, exported"))
    );
    let _ = writeln!(s, "[source.local]\ndir = \".\"");
    for (key, file) in [
        ("config", "config.json"),
        ("weights", "model.safetensors"),
        ("tokenizer", "tokenizer.json"),
    ] {
        let _ = writeln!(
            s,
            "{key} = {{ file = \"{file}\", sha256 = \"{}\" }}",
            pin(file)
        );
    }
    let normalizer = toml::to_string(&resolved.normalizer).map_err(|e| {
        not_exportable(format!(
            "the normaliser settings cannot be written as TOML: {e}"
        ))
    })?;
    let _ = writeln!(s, "\n[normalizer]\n{}", normalizer.trim_end());
    let ner = resolved
        .ner
        .as_ref()
        .ok_or_else(|| not_exportable("the config has no [ner] task"))?;
    let labels: Vec<String> = net.labels.iter().map(|l| toml_str(l)).collect();
    let map: Vec<String> = ner
        .map
        .iter()
        .map(|(from, to)| format!("{} = \"{to}\"", toml_str(from)))
        .collect();
    let _ = writeln!(
        s,
        "\n# The checkpoint's classifier on the last of its {} layers.\n[ner]\nlabels = [{}]\n\
         map = {{ {} }}\naggregation = \"{}\"\nwindow = {}\nstride = {}",
        net.depth,
        labels.join(", "),
        map.join(", "),
        ner.aggregation,
        ner.window,
        ner.stride
    );
    if let Some(dates) = resolved.dates {
        let _ = writeln!(s, "\n[dates]\nenabled = {}", dates.enabled);
    }
    Ok(s)
}

/// The model card.
fn model_card(
    model: &VerifiedModel,
    net: &NerNetwork,
    options: &ExportOptions,
    files: &[ExportedFile],
) -> String {
    let resolved = model.model();
    let (model_type, architecture, _) = net.hub_names();
    let name = resolved.name.as_deref().unwrap_or("model");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "---\nlibrary_name: transformers\npipeline_tag: token-classification\n---\n\n\
         # {name}: NER as `{architecture}`\n"
    );
    if let Some(d) = &resolved.description {
        let _ = writeln!(s, "{d}\n");
    }
    let _ = writeln!(
        s,
        "Written by `{}` ({}) from the model config `{}`. It is the network \
         arabtag's NER task runs: the encoder's embeddings and layers 1-{} \
         (`num_hidden_layers` = {}, the layer the token head reads; the \
         encoder's later layers are not part of NER), the token head on that \
         layer's output, labels {}. `model_type` is `{model_type}`.\n",
        options.command,
        options.producer,
        shown(&resolved.config_path),
        net.depth,
        net.depth,
        net.labels.join(" "),
    );
    if !net.finetuned.is_empty() {
        let layers: Vec<String> = net.finetuned.iter().map(|i| (i + 1).to_string()).collect();
        let _ = writeln!(
            s,
            "Layers {} are the NER head file's fine-tuned ones, in place of the \
             encoder's own.\n",
            layers.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "Every tensor is f32: 4-bit (Q4_0) and 8-bit matrices are dequantised, so \
         the values are the ones arabtag computes with. The token-type table has \
         the one row arabtag uses (`type_vocab_size` 1).\n\n\
         Not in this folder: arabtag normalises Arabic text before the tokenizer \
         ({}), decodes a layer head's labels with BIO-constrained Viterbi, \
         strips proclitics and maps the entity types; `tokenizer.json` is the \
         source's, unchanged, and the transformers pipeline does none of that. \
         The same token ids give the same logits (up to float rounding).\n",
        enabled_steps(&resolved.normalizer),
    );
    let _ = writeln!(
        s,
        "```python\nfrom transformers import pipeline\n\
         ner = pipeline(\"token-classification\", model=\"DIR\", aggregation_strategy=\"first\", stride=128)\n```\n\n\
         `{EXPORT_CONFIG}` is an arabtag model config over this folder \
         (`arabtag tag --model DIR/{EXPORT_CONFIG}`).\n\n\
         The weights derive from the source model's; its licence applies.\n\n\
         ## Source files\n\nEvery file the config pins (a stance head is not part of the \
         export).\n\n| role | file | sha256 |\n|---|---|---|"
    );
    for VerifiedFile {
        role, path, sha256, ..
    } in model.files()
    {
        let _ = writeln!(s, "| {role} | `{}` | `{sha256}` |", shown(path));
    }
    let _ = writeln!(
        s,
        "\n## Files written\n\n| file | bytes | sha256 |\n|---|--:|---|"
    );
    for f in files {
        let _ = writeln!(s, "| `{}` | {} | `{}` |", f.name, f.bytes, f.sha256);
    }
    s
}

/// `path` relative to the working folder when it lies inside it (the card
/// and the config say `models/default.toml`, not where the clone is).
fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_owned))
        .unwrap_or_else(|| path.to_owned())
        .display()
        .to_string()
}

/// The normaliser steps that are on, by name.
fn enabled_steps(normalizer: &arabtag_tokenizer::NormalizerConfig) -> String {
    match serde_json::to_value(normalizer) {
        Ok(serde_json::Value::Object(map)) => {
            let on: Vec<&str> = map
                .iter()
                .filter(|(_, v)| v.as_bool() == Some(true))
                .map(|(k, _)| k.as_str())
                .collect();
            if on.is_empty() {
                "no step on".to_owned()
            } else {
                on.join(", ")
            }
        }
        _ => format!("{normalizer:?}"),
    }
}

/// Writes the NER network of `model` into `out` in the hub layout (see the
/// module's table); `out` is created, files in it are replaced.
pub fn export_hub(
    model: &VerifiedModel,
    out: &Path,
    options: &ExportOptions,
) -> Result<Export, InferError> {
    let _span = tracing::info_span!("export_hub", out = %out.display()).entered();
    let resolved = model.model();
    let net = NerNetwork::load(model)?;
    let ner = resolved
        .ner
        .as_ref()
        .ok_or_else(|| not_exportable("the config has no [ner] task"))?;
    let tokenizer = SubwordEncoder::from_file(model.tokenizer(), resolved.normalizer)?;
    std::fs::create_dir_all(out).map_err(|source| InferError::Write {
        path: out.to_owned(),
        source,
    })?;
    let json = |value: &serde_json::Value| -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
        text.push('\n');
        text.into_bytes()
    };

    let tensors = net.hub_tensors()?;
    let count = tensors.len();
    write_safetensors(&out.join("model.safetensors"), &tensors)?;
    drop(tensors);
    let special = special_tokens(&tokenizer);
    let config = net.hub_config(tokenizer.special_tokens().pad)?;
    write_file(&out.join("config.json"), &json(&config))?;
    let tokenizer_bytes = std::fs::read(model.tokenizer()).map_err(|source| InferError::Read {
        path: model.tokenizer().to_owned(),
        source,
    })?;
    write_file(&out.join("tokenizer.json"), &tokenizer_bytes)?;
    drop(tokenizer_bytes);
    let mut tokenizer_config = serde_json::json!({
        // The fast tokenizer of tokenizer.json as it is (transformers 5:
        // TokenizersBackend), not a class that rebuilds its pre-tokenizer.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": ner.window.min(net.max_positions()),
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": false,
    });
    for (key, value) in &special {
        tokenizer_config[*key] = serde_json::Value::String(value.clone());
    }
    write_file(&out.join("tokenizer_config.json"), &json(&tokenizer_config))?;
    write_file(
        &out.join("special_tokens_map.json"),
        &json(&serde_json::to_value(&special).unwrap_or_default()),
    )?;
    let mut files = Vec::new();
    for name in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        files.push(exported(out, name)?);
    }
    write_file(
        &out.join(EXPORT_CONFIG),
        export_config(model, &net, &files)?.as_bytes(),
    )?;
    files.push(exported(out, EXPORT_CONFIG)?);
    write_file(
        &out.join("README.md"),
        model_card(model, &net, options, &files).as_bytes(),
    )?;
    files.push(exported(out, "README.md")?);
    let (model_type, _, _) = net.hub_names();
    Ok(Export {
        dir: out.to_owned(),
        model_type,
        layers: net.depth,
        finetuned: net.finetuned.clone(),
        labels: net.labels.clone(),
        tensors: count,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn safetensors_written_here_load_back_in_candle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let a = Tensor::arange(0f32, 6.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        let b = Tensor::new(&[1.5f32, -2.0], &Device::Cpu).unwrap();
        write_safetensors(&path, &[("z.b".to_owned(), b), ("a".to_owned(), a)]).unwrap();
        let back = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(
            back["a"].to_vec2::<f32>().unwrap(),
            [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
        );
        assert_eq!(back["z.b"].to_vec1::<f32>().unwrap(), [1.5, -2.0]);
        let bytes = std::fs::read(&path).unwrap();
        let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!((8 + len) % 8, 0);
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
        assert_eq!(header["__metadata__"]["format"], "pt");
    }
}
