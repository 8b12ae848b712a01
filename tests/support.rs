//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// A file's sha256 in hex.
/// A BERT layer's matrices (relative to `encoder.layer.{i}.`) with their
/// `[out, in]` shapes for hidden size `h` and feed-forward size `ff`.
pub fn layer_matrices(h: usize, ff: usize) -> [(&'static str, usize, usize); 6] {
    [
        ("attention.self.query", h, h),
        ("attention.self.key", h, h),
        ("attention.self.value", h, h),
        ("attention.output.dense", h, h),
        ("intermediate.dense", ff, h),
        ("output.dense", h, ff),
    ]
}

pub fn sha256(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a WordPiece tokenizer (`[PAD]` `[UNK]` `[CLS]` `[SEP]`, then
/// `words` from id 4) beside the checkpoint in `dir`, and `dir/tiny.toml`: a
/// local hub-layout source pinning the three files, then `tasks`.
pub fn write_wordpiece_config(dir: &Path, words: &[&str], tasks: &str) -> PathBuf {
    let mut vocab = serde_json::Map::new();
    for (i, special) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].iter().enumerate() {
        vocab.insert(special.to_string(), i.into());
    }
    for (i, w) in words.iter().enumerate() {
        vocab.insert(w.to_string(), (i + 4).into());
    }
    let added: Vec<Value> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let pin = |file: &str| sha256(&dir.join(file));
    let toml = format!(
        "schema_version = 1\nname = \"tiny random BERT (test)\"\n\n[source.local]\ndir = \".\"\n\
         config = {{ file = \"config.json\", sha256 = \"{}\" }}\n\
         weights = {{ file = \"model.safetensors\", sha256 = \"{}\" }}\n\
         tokenizer = {{ file = \"tokenizer.json\", sha256 = \"{}\" }}\n\n{tasks}",
        pin("config.json"),
        pin("model.safetensors"),
        pin("tokenizer.json"),
    );
    let path = dir.join("tiny.toml");
    std::fs::write(&path, toml).unwrap();
    path
}
