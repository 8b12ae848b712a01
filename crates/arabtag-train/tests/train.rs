//! Training infrastructure on tiny data: label alignment, intermediate
//! layers, feature extraction and its cache, the linear head's training.

#![allow(clippy::unwrap_used)]

#[path = "../../arabtag-infer/tests/it/common/mod.rs"]
mod common;

use std::path::Path;

use arabtag_infer::InferError;
use arabtag_infer::models::{BertConfig, BertModel, Encoder, HfConfig, TokenClassifier, TokenHead};
use arabtag_tokenizer::SubwordEncoder;
use arabtag_train::{
    CacheKey, FeatureSpec, Features, HeadTrainer, TaggedSentence, TrainOptions, align_sentence,
    extract_features, label_set, load_cache, save_cache,
};
use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use common::{Arch, Head, Rng, Tiny, max_abs_diff};
use half::f16;

/// Pieces after `<unk> <s> </s> <pad> ▁` (ids 0–4); all below the tiny
/// BERT's vocabulary of 100.
const PIECES: [&str; 10] = [
    "▁قال",
    "▁في",
    "▁موسكو",
    "▁و",
    "روسيا",
    "▁بوتين",
    "ال",
    "كرملين",
    "▁إن",
    "▁من",
];

fn tokenizer(dir: &Path) -> SubwordEncoder {
    common::unigram_tokenizer(dir, &PIECES)
}

fn bert(dir: &Path) -> BertModel {
    let (config, weights) = Tiny::new(Arch::Bert, Head::None).write(dir);
    let cfg: BertConfig = match HfConfig::from_file(&config).unwrap() {
        HfConfig::Bert(c) => c,
        other => panic!("{other:?}"),
    };
    let tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    BertModel::load(
        VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
        &cfg,
    )
    .unwrap()
}

fn sentence(pairs: &[(&str, &str)]) -> TaggedSentence {
    TaggedSentence {
        words: pairs.iter().map(|(w, _)| w.to_string()).collect(),
        tags: pairs.iter().map(|(_, t)| t.to_string()).collect(),
    }
}

fn sentences() -> Vec<TaggedSentence> {
    vec![
        sentence(&[
            ("قال", "O"),
            ("بوتين", "B-PERS"),
            ("في", "O"),
            ("موسكو", "B-LOC"),
        ]),
        sentence(&[
            ("قال", "O"),
            ("الكرملين", "B-ORG"),
            ("إن", "O"),
            ("وروسيا", "B-LOC"),
        ]),
        // 40 words: longer than the tiny model's 32 positions.
        TaggedSentence {
            words: (0..40)
                .map(|i| ["من", "موسكو", "وروسيا", "الكرملين"][i % 4].to_owned())
                .collect(),
            tags: (0..40)
                .map(|i| ["O", "B-LOC", "B-LOC", "B-ORG"][i % 4].to_owned())
                .collect(),
        },
    ]
}

#[test]
fn labels_go_to_first_subtokens_only() {
    let dir = tempfile::tempdir().unwrap();
    let enc = tokenizer(dir.path());
    let data = sentences();
    let scheme = label_set(&data).unwrap();
    assert_eq!(
        scheme.names(),
        ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PERS", "I-PERS"]
    );
    let a = align_sentence(&enc, &scheme, 1, &data[1]).unwrap();
    // ▁قال | ▁ ال كرملين | ▁إن | ▁و روسيا
    assert_eq!(a.ids, vec![5, 4, 11, 12, 13, 8, 9]);
    assert_eq!(a.first, vec![Some(0), Some(1), Some(4), Some(5)]);
    assert_eq!(
        a.token_labels,
        vec![Some(0), Some(3), None, None, Some(0), Some(1), None]
    );
    assert_eq!(a.labels, vec![0, 3, 0, 1]);

    let bad = sentence(&[("قال", "B-DATE")]);
    let err = align_sentence(&enc, &scheme, 7, &bad).unwrap_err();
    assert!(
        matches!(
            err,
            arabtag_train::TrainError::UnknownTag { sentence: 7, .. }
        ),
        "{err}"
    );
}

#[test]
fn forward_layers_last_equals_forward() {
    let dir = tempfile::tempdir().unwrap();
    let model = bert(dir.path());
    let ids = Tensor::new(&[[1u32, 5, 6, 7, 2], [1, 8, 2, 3, 3]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &Device::Cpu).unwrap();
    let full = model.forward(&ids, &mask).unwrap();
    let states = model.forward_layers(&ids, &mask, &[2, 0, 1, 2]).unwrap();
    assert_eq!(states.len(), 4);
    assert_eq!(max_abs_diff(&states[0], &full), 0.0);
    assert_eq!(max_abs_diff(&states[3], &full), 0.0);
    assert!(max_abs_diff(&states[2], &full) > 1e-3);
    let err = model.forward_layers(&ids, &mask, &[3]).unwrap_err();
    assert!(
        matches!(
            err,
            InferError::LayerOutOfRange {
                layer: 3,
                layers: 2
            }
        ),
        "{err}"
    );
}

fn spec(layers: Vec<usize>) -> FeatureSpec {
    FeatureSpec {
        layers,
        max_len: Some(10),
        stride: 4,
        batch_tokens: 64,
    }
}

#[test]
fn features_are_first_subtoken_states_windowed_and_cached() {
    let dir = tempfile::tempdir().unwrap();
    let enc = tokenizer(dir.path());
    let model = bert(dir.path());
    let data = sentences();
    let scheme = label_set(&data).unwrap();
    let aligned: Vec<_> = data
        .iter()
        .enumerate()
        .map(|(i, s)| align_sentence(&enc, &scheme, i, s).unwrap())
        .collect();
    let mut done = 0;
    let spec = spec(vec![1, 2]);
    let feats = extract_features(&model, enc.special_tokens(), &aligned, &spec, &mut |n| {
        done += n
    })
    .unwrap();
    assert_eq!(done, aligned.iter().map(|a| a.ids.len()).sum::<usize>());
    assert_eq!(feats.dim, 2 * common::HIDDEN);
    assert_eq!(feats.offsets, vec![0, 4, 8, 48]);
    assert!(feats.present.iter().all(|&p| p));
    // Every word of the long sentence got a row.
    for w in 8..48 {
        assert!(feats.row(w).iter().any(|x| x.to_f32() != 0.0), "word {w}");
    }
    // The short sentence's rows are its first subtokens' states, layers 1
    // then 2, as one window `<s> … </s>` gives them.
    let a = &aligned[1];
    let ids: Vec<u32> = [1].iter().chain(&a.ids).chain(&[2]).copied().collect();
    let n = ids.len();
    let ids = Tensor::from_vec(ids, (1, n), &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, n), DType::U32, &Device::Cpu).unwrap();
    let states = model.forward_layers(&ids, &mask, &[1, 2]).unwrap();
    for (w, t) in a.first.iter().enumerate() {
        let t = t.unwrap() + 1;
        let expected = Tensor::cat(
            &[states[0].i((0, t)).unwrap(), states[1].i((0, t)).unwrap()],
            0,
        )
        .unwrap();
        let got: Vec<f32> = feats.row(4 + w).iter().map(|x| x.to_f32()).collect();
        let got = Tensor::new(got, &Device::Cpu).unwrap();
        assert!(max_abs_diff(&got, &expected) < 1e-2, "word {w}");
    }

    // The cache round-trips; another key finds nothing.
    let key = CacheKey {
        format: 1,
        model_sha256: "m".into(),
        tokenizer_sha256: "t".into(),
        normalizer: "n".into(),
        data_sha256: "d".into(),
        layers: spec.layers.clone(),
        max_len: spec.max_len,
        stride: spec.stride,
    };
    let cache = dir.path().join("cache");
    assert!(load_cache(&cache, &key).unwrap().is_none());
    save_cache(&cache, &key, &feats).unwrap();
    assert_eq!(load_cache(&cache, &key).unwrap().unwrap(), feats);
    let other = CacheKey {
        layers: vec![2],
        ..key
    };
    assert!(load_cache(&cache, &other).unwrap().is_none());
}

/// Four well separated clusters in 16 dimensions, 30 words each.
fn toy() -> (Features, Vec<u32>) {
    let mut rng = Rng::new(3);
    let dim = 16;
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for i in 0..120 {
        let label = (i % 4) as u32;
        for d in 0..dim {
            let centre = if d % 4 == label as usize { 3.0 } else { 0.0 };
            values.push(f16::from_f32(centre + 0.5 * rng.normal()));
        }
        labels.push(label);
    }
    let features = Features {
        dim,
        offsets: vec![0, 60, 120],
        values,
        present: vec![true; 120],
    };
    (features, labels)
}

fn options(seed: u64) -> TrainOptions {
    TrainOptions {
        epochs: 4,
        lr: 0.05,
        weight_decay: 0.0,
        batch_size: 16,
        seed,
    }
}

fn labels4() -> Vec<String> {
    ["O", "B-LOC", "I-LOC", "B-PERS"].map(String::from).to_vec()
}

fn weights(t: &HeadTrainer) -> Vec<f32> {
    let (w, b) = t.tensors();
    let mut v = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v.extend(b.to_vec1::<f32>().unwrap());
    v
}

#[test]
fn head_learns_a_separable_toy_set() {
    let (features, labels) = toy();
    let words: Vec<usize> = (0..features.words()).collect();
    let mut trainer = HeadTrainer::new(labels4(), features.dim, options(1)).unwrap();
    let (before, _) = trainer.evaluate(&features, &labels, &words).unwrap();
    let mut losses = Vec::new();
    for _ in 0..4 {
        losses.push(
            trainer
                .train_epoch(&features, &labels, &words, &mut |_| {})
                .unwrap(),
        );
    }
    let (after, probs) = trainer.evaluate(&features, &labels, &words).unwrap();
    assert!(after < before / 4.0, "{before} -> {after}, {losses:?}");
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    let correct = probs
        .iter()
        .zip(&labels)
        .filter(|&(p, &y)| {
            let best = p
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            best == y as usize
        })
        .count();
    assert_eq!(correct, labels.len());
    assert_eq!(trainer.state().epoch, 4);
}

#[test]
fn same_seed_same_weights_and_resume_continues() {
    let (features, labels) = toy();
    let words: Vec<usize> = (0..features.words()).collect();
    let run = |seed: u64, epochs: usize| {
        let mut t = HeadTrainer::new(labels4(), features.dim, options(seed)).unwrap();
        for _ in 0..epochs {
            t.train_epoch(&features, &labels, &words, &mut |_| {})
                .unwrap();
        }
        t
    };
    let a = run(5, 2);
    assert_eq!(weights(&a), weights(&run(5, 2)));
    assert_ne!(weights(&a), weights(&run(6, 2)));

    // One epoch, a checkpoint, a fresh process's load, one more epoch.
    let dir = tempfile::tempdir().unwrap();
    let first = run(5, 1);
    first.save_checkpoint(dir.path()).unwrap();
    let mut resumed = HeadTrainer::load_checkpoint(dir.path()).unwrap();
    assert_eq!(resumed.state(), first.state());
    assert_eq!(resumed.state().epoch, 1);
    resumed
        .train_epoch(&features, &labels, &words, &mut |_| {})
        .unwrap();
    assert_eq!(resumed.state().epoch, 2);
    assert_eq!(resumed.state(), a.state());
    assert_eq!(weights(&resumed), weights(&a));
}

#[test]
fn saved_head_loads_as_a_token_classifier() {
    let (features, labels) = toy();
    let words: Vec<usize> = (0..features.words()).collect();
    let mut trainer = HeadTrainer::new(labels4(), features.dim, options(2)).unwrap();
    trainer
        .train_epoch(&features, &labels, &words, &mut |_| {})
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("head.safetensors");
    trainer.save_head(&path).unwrap();
    let head = TokenClassifier::from_file(&path, features.dim, labels4(), &Device::Cpu).unwrap();
    let (_, probs) = trainer.evaluate(&features, &labels, &words[..3]).unwrap();
    let rows: Vec<f32> = (0..3)
        .flat_map(|w| {
            features
                .row(w)
                .iter()
                .map(|x| x.to_f32())
                .collect::<Vec<_>>()
        })
        .collect();
    let xs = Tensor::from_vec(rows, (1, 3, features.dim), &Device::Cpu).unwrap();
    let logits = head.forward(&xs).unwrap();
    let p = candle_nn::ops::softmax_last_dim(&logits)
        .unwrap()
        .squeeze(0)
        .unwrap();
    let expected = Tensor::new(probs, &Device::Cpu).unwrap();
    assert!(max_abs_diff(&p, &expected) < 1e-5);
}
