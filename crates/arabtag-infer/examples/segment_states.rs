//! Dumps segment vectors for stance experiments: for each line of JSONL
//! files with `id` and `text`, one JSON line with the id and the pooled
//! states the stance head may read (the encoder's last layer `e`, its
//! layer 8 `e8`, the NER task's states `ner`).
//!
//! cargo run --release -p arabtag-infer --example segment_states -- MODEL.toml OUT.jsonl IN.jsonl...

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use arabtag_infer::config::{ModelConfig, ResolveOptions};
use arabtag_infer::tagger::SegmentStates;
use arabtag_infer::{TagOptions, Tagger};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = ModelConfig::from_file(std::path::Path::new(&args[0]))
        .and_then(|c| c.resolve(&ResolveOptions::from_env()))
        .and_then(|r| r.verify())
        .expect("model");
    let tagger = Tagger::load(&model, TagOptions::default()).expect("load");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args[1]).unwrap());
    for path in &args[2..] {
        let rows: Vec<serde_json::Value> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let texts: Vec<String> = rows
            .iter()
            .map(|r| r["text"].as_str().unwrap().to_owned())
            .collect();
        let e = tagger
            .segment_states(&texts, SegmentStates::Encoder(&[]))
            .unwrap();
        let e8 = tagger
            .segment_states(&texts, SegmentStates::Encoder(&[8]))
            .unwrap();
        let ner = tagger.segment_states(&texts, SegmentStates::Ner).unwrap();
        for (i, r) in rows.iter().enumerate() {
            let line = serde_json::json!({"id": r["id"], "e": e[i], "e8": e8[i], "ner": ner[i]});
            writeln!(out, "{line}").unwrap();
        }
        eprintln!("{path}: {} rows", rows.len());
    }
}
