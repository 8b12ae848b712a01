//! Micro-benchmarks of the text side, in MB/s of Arabic news (the five seed
//! articles, repeated to 1 MB):
//!
//! - `normalize`: the normaliser with every step of `models/default.toml`
//!   (NFKC, tashkeel, tatweel, controls, NBSP, digits), offset map included;
//! - `segments`: the guideline's sentence segmenter;
//! - `words`: the word splitter;
//! - `subwords/arabtag`: `SubwordEncoder::encode` with e5's tokenizer, which
//!   is normaliser + `tokenizers` + the map of every token back to the
//!   original characters and words;
//! - `subwords/arabtag-raw`: the same pipeline on the already normalised
//!   text without the alignment: `tokenizers`' normaliser, pre-tokenizer and
//!   our compact Unigram model;
//! - `subwords/tokenizers`: the `tokenizers` crate alone, with its own
//!   Unigram model, on the same normalised text.
//!
//! ```text
//! cargo bench -p arabtag-tokenizer --bench tokenizer
//! ```
//!
//! The subword pair needs `models/e5-small/tokenizer.json` (`make models`);
//! without it only the first three run, and a line says why.

use std::path::{Path, PathBuf};

use arabtag_tokenizer::{NormalizerConfig, SubwordEncoder, segments, words};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The seed articles, each repeated until the whole is at least `bytes`.
fn corpus(bytes: usize) -> Vec<String> {
    let mut docs: Vec<String> = std::fs::read_dir(root().join("seeds"))
        .map(|dir| {
            let mut paths: Vec<PathBuf> = dir
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "txt"))
                .collect();
            paths.sort();
            paths
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !docs.is_empty(),
        "no seeds/*.txt under {}",
        root().display()
    );
    let one: usize = docs.iter().map(String::len).sum();
    let copies = bytes.div_ceil(one);
    docs = (0..copies).flat_map(|_| docs.clone()).collect();
    docs
}

/// The normaliser `models/default.toml` spells out.
fn default_normalizer() -> NormalizerConfig {
    NormalizerConfig::default()
}

fn text_side(c: &mut Criterion) {
    let docs = corpus(1 << 20);
    let bytes: usize = docs.iter().map(String::len).sum();
    let mut group = c.benchmark_group("text");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(10);
    let normalizer = default_normalizer();
    group.bench_function("normalize", |b| {
        b.iter(|| {
            docs.iter()
                .map(|d| normalizer.normalize(d).len())
                .sum::<usize>()
        })
    });
    group.bench_function("segments", |b| {
        b.iter(|| docs.iter().map(|d| segments(d).len()).sum::<usize>())
    });
    group.bench_function("words", |b| {
        b.iter(|| docs.iter().map(|d| words(d).len()).sum::<usize>())
    });
    group.finish();

    let path = root().join("models/e5-small/tokenizer.json");
    let Ok(encoder) = SubwordEncoder::from_file(&path, normalizer) else {
        eprintln!(
            "subwords: skipped, {} is missing (make models fetches it)",
            path.display()
        );
        return;
    };
    let normalized: Vec<String> = docs
        .iter()
        .map(|d| normalizer.normalize(d).text().to_owned())
        .collect();
    let mut group = c.benchmark_group("subwords");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(10);
    group.bench_function("arabtag", |b| {
        b.iter(|| {
            docs.iter()
                .map(|d| encoder.encode(d).map_or(0, |e| e.tokens.len()))
                .sum::<usize>()
        })
    });
    group.bench_function("arabtag-raw", |b| {
        b.iter(|| {
            normalized
                .iter()
                .map(|d| encoder.encode_raw(d.as_str()).map_or(0, |e| e.len()))
                .sum::<usize>()
        })
    });
    // The tokenizers crate with its own model, on the text our normaliser
    // gave (`SubwordEncoder` keeps a compact Unigram model instead).
    let hf = tokenizers::Tokenizer::from_file(&path).expect("tokenizer.json loads");
    group.bench_function("tokenizers", |b| {
        b.iter(|| {
            normalized
                .iter()
                .map(|d| {
                    hf.encode_char_offsets(d.as_str(), false)
                        .map_or(0, |e| e.len())
                })
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, text_side);
criterion_main!(benches);
