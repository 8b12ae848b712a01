//! `arabtag models export`: the NER network in the Hugging Face hub layout,
//! written from a config with a fine-tuned head file, read back, and its
//! logits checked against the tagger's network.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::models::{models, stderr, stdout};

/// Writes `dir/head.safetensors` as `arabtag train ner --finetune` releases
/// one: a token head `[3, 32]` over layer 1 of the tiny BERT of the training
/// tests, and that layer (`encoder.layer.0.*`) fine-tuned, its matrices 8-bit
/// with a scale per row and its vectors f16. Returns the dequantised query
/// matrix, which the export must carry in place of the encoder's own.
fn write_finetuned_head(dir: &Path) -> Vec<Vec<f32>> {
    use candle_core::{DType, Device, Tensor};
    let dev = Device::Cpu;
    let (h, ff) = (32usize, 64usize);
    let mut tensors = std::collections::HashMap::new();
    let mut seed = 7u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut query = Vec::new();
    let p = "encoder.layer.0";
    for (name, out, inp) in crate::support::layer_matrices(h, ff) {
        let q: Vec<u8> = (0..out * inp).map(|_| (next() % 255 + 1) as u8).collect();
        let scale: Vec<f32> = (0..out).map(|r| 0.001 + r as f32 * 1e-4).collect();
        if name == "attention.self.query" {
            query = q
                .chunks(inp)
                .zip(&scale)
                .map(|(row, s)| row.iter().map(|&v| (f32::from(v) - 128.0) * s).collect())
                .collect();
        }
        let bias = (Tensor::randn(0f32, 0.1, out, &dev).unwrap())
            .to_dtype(DType::F16)
            .unwrap();
        tensors.insert(
            format!("{p}.{name}.weight.q8"),
            Tensor::from_vec(q, (out, inp), &dev).unwrap(),
        );
        tensors.insert(
            format!("{p}.{name}.weight.scale"),
            Tensor::from_vec(scale, out, &dev).unwrap(),
        );
        tensors.insert(format!("{p}.{name}.bias"), bias);
    }
    for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
        let ones = Tensor::ones(h, DType::F16, &dev).unwrap();
        let bias = Tensor::randn(0f32, 0.1, h, &dev)
            .unwrap()
            .to_dtype(DType::F16)
            .unwrap();
        tensors.insert(format!("{p}.{norm}.weight"), ones);
        tensors.insert(format!("{p}.{norm}.bias"), bias);
    }
    let weight = Tensor::randn(0f32, 1.0, (3, h), &dev).unwrap();
    tensors.insert("weight".to_owned(), weight.to_dtype(DType::F16).unwrap());
    let bias = Tensor::new(&[0.5f32, -0.2, 0.1], &dev).unwrap();
    tensors.insert("bias".to_owned(), bias.to_dtype(DType::F16).unwrap());
    candle_core::safetensors::save(&tensors, dir.join("head.safetensors")).unwrap();
    query
}

/// The tiny BERT's config from the training tests with `ner` as its `[ner]`.
fn with_ner(config: &Path, ner: &str, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(config).unwrap();
    let at = text.find("[ner]").unwrap();
    let path = config.with_file_name(name);
    std::fs::write(&path, format!("{}{ner}", &text[..at])).unwrap();
    path
}

/// Logits of the NER network of `config` on `contents` (token ids without
/// the special tokens), wrapped in `[CLS]` 2 … `[SEP]` 3 and padded with 0
/// by the tagger's own `pack` (library, not CLI).
fn ner_logits(config: &Path, contents: &[Vec<u32>]) -> Vec<Vec<Vec<f32>>> {
    use arabtag_infer::config::{ModelConfig, ResolveOptions};
    use arabtag_infer::pipeline::batch::{WindowRef, WindowedDoc, Wrapping, pack};
    let mut options = ResolveOptions::from_env();
    options.offline = true;
    let model = ModelConfig::from_file(config)
        .unwrap()
        .resolve(&options)
        .unwrap()
        .verify()
        .unwrap();
    let whole: Vec<Vec<arabtag_tokenizer::Window>> = contents
        .iter()
        .map(|c| {
            vec![arabtag_tokenizer::Window {
                tokens: 0..c.len(),
                counted: 0..c.len(),
            }]
        })
        .collect();
    let docs: Vec<WindowedDoc<'_>> = contents
        .iter()
        .zip(&whole)
        .map(|(ids, windows)| WindowedDoc { ids, windows })
        .collect();
    let refs: Vec<WindowRef> = (0..docs.len())
        .map(|doc| WindowRef { doc, window: 0 })
        .collect();
    let wrapping = Wrapping {
        prefix: vec![2],
        suffix: vec![3],
        pad: 0,
    };
    arabtag_infer::loaded::NerNetwork::load(&model)
        .unwrap()
        .packed_logits(&pack(&docs, &refs, &wrapping))
        .unwrap()
}

/// `arabtag models export` on a tiny random BERT (2 layers) whose NER head
/// file fine-tuned layer 1 and reads its output: the folder holds a
/// one-layer `BertForTokenClassification` with the head file's layer (not
/// the encoder's), the tokenizer copied, the files `AutoTokenizer` reads, a
/// card naming every sha256, and `arabtag.toml`, which verifies, gives the
/// source's logits and tags. Configs it cannot export are refused, saying why.
#[test]
fn export_writes_the_ner_network_in_the_hub_layout_and_it_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _) = crate::train::setup(dir.path());
    let query = write_finetuned_head(dir.path());
    let head_sha = crate::support::sha256(&dir.path().join("head.safetensors"));
    let source = with_ner(
        &base,
        &format!(
            "[ner]\nhead = {{ path = \"head.safetensors\", sha256 = \"{head_sha}\" }}\n\
             layers = [1]\nlabels = [\"O\", \"B-PER\", \"I-PER\"]\nmap = {{ PER = \"PER\" }}\n\
             window = 16\nstride = 4\n\n[dates]\nenabled = true\n"
        ),
        "ft.toml",
    );
    let out_dir = dir.path().join("export");
    let out = models(&[&"export", &source, &"--out", &out_dir], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("num_hidden_layers 1 (layers 1 from the NER head file)"),
        "{text}"
    );

    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        config["architectures"],
        serde_json::json!(["BertForTokenClassification"])
    );
    assert_eq!(config["model_type"], "bert");
    assert_eq!(config["num_hidden_layers"], 1);
    assert_eq!(config["hidden_size"], 32);
    assert_eq!(config["intermediate_size"], 64);
    assert_eq!(config["vocab_size"], 20);
    assert_eq!(config["max_position_embeddings"], 32);
    assert_eq!(config["type_vocab_size"], 1);
    assert_eq!(config["layer_norm_eps"], 1e-12);
    assert_eq!(config["id2label"]["2"], "I-PER");
    assert_eq!(config["label2id"]["B-PER"], 1);

    let tensors = candle_core::safetensors::load(
        out_dir.join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let mut names: Vec<&str> = tensors.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names.len(), 5 + 16 + 2, "{names:?}");
    assert!(
        names.iter().all(|n| n.starts_with("bert.embeddings.")
            || n.starts_with("bert.encoder.layer.0.")
            || n.starts_with("classifier.")),
        "{names:?}"
    );
    assert!(
        tensors
            .values()
            .all(|t| t.dtype() == candle_core::DType::F32)
    );
    let exported = tensors["bert.encoder.layer.0.attention.self.query.weight"]
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(
        exported, query,
        "the head file's layer is not the one exported"
    );
    assert_eq!(tensors["classifier.weight"].dims(), [3, 32]);
    assert_eq!(
        tensors["bert.embeddings.token_type_embeddings.weight"].dims(),
        [1, 32]
    );

    assert_eq!(
        std::fs::read(out_dir.join("tokenizer.json")).unwrap(),
        std::fs::read(dir.path().join("tokenizer.json")).unwrap()
    );
    let tok: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(tok["tokenizer_class"], "PreTrainedTokenizerFast");
    assert_eq!(tok["cls_token"], "[CLS]");
    assert_eq!(tok["sep_token"], "[SEP]");
    assert_eq!(tok["pad_token"], "[PAD]");
    assert_eq!(tok["unk_token"], "[UNK]");
    assert_eq!(tok["model_max_length"], 16);
    let special: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("special_tokens_map.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(special["cls_token"], "[CLS]");
    let card = std::fs::read_to_string(out_dir.join("README.md")).unwrap();
    let weights_sha = crate::support::sha256(&out_dir.join("model.safetensors"));
    for needle in [
        "arabtag models export",
        head_sha.as_str(),
        weights_sha.as_str(),
        "pipeline_tag: token-classification",
    ] {
        assert!(card.contains(needle), "{needle} missing:\n{card}");
    }

    // Back through arabtag's own hub-layout path: the pins hold, the
    // logits are the source's, and it tags.
    let exported_config = out_dir.join("arabtag.toml");
    let out = models(&[&"verify", &exported_config], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<Vec<u32>> = vec![vec![4, 7, 5, 9], vec![10, 11], vec![]];
    let (a, b) = (
        ner_logits(&source, &rows),
        ner_logits(&exported_config, &rows),
    );
    let worst = a
        .iter()
        .flatten()
        .flatten()
        .zip(b.iter().flatten().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst <= 1e-5, "logits differ by {worst}");
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, "قال بوتين في موسكو إن روسيا").unwrap();
    let tagged = Command::new(env!("CARGO_BIN_EXE_arabtag"))
        .args(["tag", "--model"])
        .arg(&exported_config)
        .arg(&doc)
        .output()
        .unwrap();
    assert!(tagged.status.success(), "{}", stderr(&tagged));
    let record: Value = serde_json::from_slice(&tagged.stdout).unwrap();
    assert!(record.get("error").is_none(), "{record}");

    // What has no token-classification equivalent is refused, saying why.
    let dates_only = with_ner(&base, "[dates]\nenabled = true\n", "dates.toml");
    let out = models(
        &[&"export", &dates_only, &"--out", &dir.path().join("x")],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no [ner] task"), "{}", stderr(&out));
    let concat = with_ner(
        &base,
        &format!(
            "[ner]\nhead = {{ path = \"head.safetensors\", sha256 = \"{head_sha}\" }}\n\
             layers = [1, 2]\nlabels = [\"O\", \"B-PER\", \"I-PER\"]\nmap = {{ PER = \"PER\" }}\n\
             window = 16\nstride = 4\n"
        ),
        "concat.toml",
    );
    let out = models(&[&"export", &concat, &"--out", &dir.path().join("y")], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("several layers"), "{}", stderr(&out));
}
