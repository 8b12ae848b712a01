use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::*;
use crate::align::AlignedSentence;
use crate::features::{CacheKey, WindowPlan};
use arabtag_infer::models::{BertConfig, dequantize_head};
use arabtag_kernels::attention_bias;
use arabtag_tokenizer::SpecialTokens;

/// A random 3-layer BERT (hidden 32, 4 heads).
fn tiny_bert(seed: u64) -> BertModel {
    let device = Device::Cpu;
    let cfg: BertConfig = serde_json::from_value(serde_json::json!({
        "vocab_size": 40, "hidden_size": 32, "num_hidden_layers": 3,
        "num_attention_heads": 4, "intermediate_size": 64,
        "max_position_embeddings": 64, "layer_norm_eps": 1e-12,
    }))
    .unwrap();
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &device);
    BertModel::load(vb, &cfg).unwrap();
    // Every tensor from our generator (candle's CPU generator takes no
    // seed), LayerNorms around 1 / 0 but not equal to them.
    let mut rng = Rng::new(seed);
    let mut names: Vec<_> = map.data().lock().unwrap().keys().cloned().collect();
    names.sort();
    for name in names {
        let data = map.data().lock().unwrap();
        let var = &data[&name];
        let t = var.as_tensor();
        let centre = if name.contains("LayerNorm") && name.ends_with("weight") {
            1.0
        } else {
            0.0
        };
        let values: Vec<f32> = (0..t.elem_count())
            .map(|_| centre + 0.3 * rng.symmetric())
            .collect();
        var.set(&Tensor::from_vec(values, t.shape(), &device).unwrap())
            .unwrap();
    }
    // Loaded again from the values just set (the first load copied none).
    let vb = VarBuilder::from_varmap(&map, DType::F32, &device);
    BertModel::load(vb, &cfg).unwrap()
}

fn special() -> SpecialTokens {
    SpecialTokens {
        prefix: vec![1],
        suffix: vec![2],
        pad: Some(0),
        unk: Some(3),
    }
}

/// Sentences of ids 4.. with labels: 0 (O) for even ids, 1 for odd ones;
/// every token is its own word.
fn sentences(n: usize, seed: u64) -> Vec<AlignedSentence> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let len = 3 + rng.below(20);
            let ids: Vec<u32> = (0..len).map(|_| 4 + rng.below(36) as u32).collect();
            let labels: Vec<u32> = ids.iter().map(|id| id % 2).collect();
            AlignedSentence {
                token_labels: labels.iter().map(|&l| Some(l)).collect(),
                first: (0..len).map(Some).collect(),
                labels,
                ids,
            }
        })
        .collect()
}

fn options(seed: u64) -> FinetuneOptions {
    FinetuneOptions {
        epochs: 8,
        encoder_lr: 3e-3,
        head_lr: 3e-2,
        weight_decay: 0.01,
        warmup: 0.1,
        dropout: 0.1,
        batch_tokens: 48,
        seed,
    }
}

fn plan() -> WindowPlan {
    WindowPlan {
        max_len: 12,
        stride: 4,
        batch_tokens: 256,
    }
}

#[test]
fn trained_layers_compute_what_the_encoder_computes() {
    let bert = tiny_bert(1);
    let trainer =
        FinetuneTrainer::new(&bert, vec![1, 2], vec!["O".into(), "X".into()], options(1)).unwrap();
    let device = Device::Cpu;
    let ids = Tensor::new(&[[1u32, 5, 9, 7, 2], [1, 11, 2, 0, 0]], &device).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &device).unwrap();
    let states = bert.forward_layers(&ids, &mask, &[1, 3]).unwrap();
    let bias = attention_bias(&mask, DType::F32).unwrap();
    let ours = trainer.forward_layers(&states[0], &bias).unwrap();
    let diff: f32 = (ours - &states[1])
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(diff < 1e-5, "max difference {diff}");
}

#[test]
fn cache_keeps_every_position_and_one_target_per_word() {
    let bert = tiny_bert(2);
    let data = sentences(6, 3);
    let cache = build_layer_cache(&bert, &special(), &data, 1, &plan(), &mut |_| {}).unwrap();
    let words: usize = data.iter().map(|s| s.first.len()).sum();
    assert_eq!(cache.words(), words);
    let mut seen: Vec<usize> = cache
        .windows
        .iter()
        .flat_map(|w| w.targets.iter().map(|t| t.1))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..words).collect::<Vec<_>>());
    // A window's first row is the state of its first special token at
    // layer 1, as the encoder gives it for that window alone.
    let w = &cache.windows[0];
    let s = &data[w.sentence];
    let content = w.len - 2;
    let start = (0..=s.ids.len() - content)
        .find(|&st| {
            w.targets
                .iter()
                .all(|&(pos, word)| cache.word_offsets[w.sentence] + st + pos - 1 == word)
        })
        .unwrap();
    let row: Vec<u32> = std::iter::once(1)
        .chain(s.ids[start..start + content].iter().copied())
        .chain([2])
        .collect();
    let n = row.len();
    let ids = Tensor::from_vec(row, (1, n), &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, n), DType::U32, &Device::Cpu).unwrap();
    let states: Vec<Vec<f32>> = bert.forward_layers(&ids, &mask, &[1]).unwrap()[0]
        .get(0)
        .unwrap()
        .to_vec2()
        .unwrap();
    for (p, state) in states.iter().enumerate() {
        for (j, x) in state.iter().enumerate() {
            let cached = cache.states[(w.row + p) * cache.hidden + j].to_f32();
            assert!((cached - x).abs() < 1e-2, "position {p}: {cached} vs {x}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let key = CacheKey {
        format: LAYER_CACHE_FORMAT,
        model_sha256: "m".into(),
        tokenizer_sha256: "t".into(),
        normalizer: "n".into(),
        data_sha256: "d".into(),
        layers: vec![1],
        max_len: Some(12),
        stride: 4,
    };
    save_layer_cache(dir.path(), &key, &cache).unwrap();
    assert_eq!(
        load_layer_cache(dir.path(), &key).unwrap().as_ref(),
        Some(&cache)
    );
    let other = CacheKey {
        data_sha256: "e".into(),
        ..key
    };
    assert_eq!(load_layer_cache(dir.path(), &other).unwrap(), None);
}

fn train(
    bert: &BertModel,
    cache: &LayerCache,
    labels: &[u32],
    epochs: usize,
    seed: u64,
) -> FinetuneTrainer {
    let windows: Vec<usize> = (0..cache.windows.len()).collect();
    let mut t = FinetuneTrainer::new(
        bert,
        vec![1, 2],
        vec!["O".into(), "X".into()],
        options(seed),
    )
    .unwrap();
    for _ in 0..epochs {
        t.train_epoch(cache, labels, &windows, &mut |_| {}).unwrap();
    }
    t
}

fn values(t: &FinetuneTrainer) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<(String, Vec<f32>)> = t
        .opt
        .values()
        .into_iter()
        .map(|(n, x)| (n, x.flatten_all().unwrap().to_vec1().unwrap()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn training_learns_is_deterministic_and_resumes_exactly() {
    let bert = tiny_bert(4);
    let data = sentences(40, 5);
    let cache = build_layer_cache(&bert, &special(), &data, 1, &plan(), &mut |_| {}).unwrap();
    let labels: Vec<u32> = data.iter().flat_map(|s| s.labels.clone()).collect();
    let all: Vec<usize> = (0..cache.windows.len()).collect();

    let fresh = train(&bert, &cache, &labels, 0, 9);
    let (before, _) = fresh.evaluate(&cache, &labels, &all, false).unwrap();
    let a = train(&bert, &cache, &labels, 8, 9);
    let (after, probs) = a.evaluate(&cache, &labels, &all, false).unwrap();
    assert!(after < 0.5 * before, "loss {before} -> {after}");
    let correct = probs
        .iter()
        .filter(|(w, p)| (p[1] > p[0]) == (labels[**w] == 1))
        .count();
    assert!(correct * 10 >= probs.len() * 8, "{correct}/{}", probs.len());

    let b = train(&bert, &cache, &labels, 8, 9);
    assert!(values(&a) == values(&b), "same seed, other weights");
    let c = train(&bert, &cache, &labels, 8, 10);
    assert!(values(&a) != values(&c), "other seed, same weights");

    let dir = tempfile::tempdir().unwrap();
    let mut first = train(&bert, &cache, &labels, 7, 9);
    first.save_checkpoint(dir.path()).unwrap();
    let mut resumed = FinetuneTrainer::load_checkpoint(&bert, dir.path()).unwrap();
    resumed
        .train_epoch(&cache, &labels, &all, &mut |_| {})
        .unwrap();
    assert!(values(&a) == values(&resumed), "resumed run differs");
    first
        .train_epoch(&cache, &labels, &all, &mut |_| {})
        .unwrap();
    assert!(values(&a) == values(&first), "continued run differs");
}

#[test]
fn a_released_head_replaces_the_encoder_layers() {
    let bert = tiny_bert(6);
    let data = sentences(20, 7);
    let cache = build_layer_cache(&bert, &special(), &data, 1, &plan(), &mut |_| {}).unwrap();
    let labels: Vec<u32> = data.iter().flat_map(|s| s.labels.clone()).collect();
    let trainer = train(&bert, &cache, &labels, 1, 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("head.safetensors");
    trainer.save_head(&path).unwrap();
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    assert_eq!(tensors["weight"].dtype(), DType::F32);
    assert_eq!(
        tensors["encoder.layer.1.attention.self.query.weight.q8"].dtype(),
        DType::U8
    );
    assert_eq!(
        tensors["encoder.layer.1.attention.self.query.bias"].dtype(),
        DType::F16
    );
    let tensors = dequantize_head(tensors).unwrap();
    assert_eq!(
        tensors["encoder.layer.1.attention.self.query.weight"].dtype(),
        DType::F32
    );
    let (replaced, indices) = bert.with_layers_from(&tensors).unwrap();
    assert_eq!(indices, vec![1, 2]);
    let device = Device::Cpu;
    let ids = Tensor::new(&[[1u32, 5, 9, 7, 2]], &device).unwrap();
    let mask = Tensor::ones((1, 5), DType::U32, &device).unwrap();
    let input = bert.forward_layers(&ids, &mask, &[1]).unwrap().remove(0);
    let bias = attention_bias(&mask, DType::F32).unwrap();
    let ours = trainer.forward_layers(&input, &bias).unwrap();
    let theirs = replaced
        .forward_layers(&ids, &mask, &[3])
        .unwrap()
        .remove(0);
    let diff: f32 = (ours - theirs)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(diff < 5e-2, "8-bit layers differ by {diff}");
    // And the original encoder is untouched.
    let again = bert.forward_layers(&ids, &mask, &[1]).unwrap().remove(0);
    assert_eq!(
        again.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        input.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
}

#[test]
fn eight_bit_rows_round_trip_within_half_a_step() {
    let t = Tensor::new(
        &[[0.5f32, -1.0, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0]],
        &Device::Cpu,
    )
    .unwrap();
    let (q, scale) = quantize_rows(&t).unwrap();
    assert_eq!(q.dtype(), DType::U8);
    let back: Vec<Vec<f32>> = dequantize_rows(&q, &scale).unwrap().to_vec2().unwrap();
    let step = 1.0 / 127.0;
    for (a, b) in [0.5f32, -1.0, 0.25, 0.0].iter().zip(&back[0]) {
        assert!((a - b).abs() <= step / 2.0 + 1e-7, "{a} vs {b}");
    }
    assert_eq!(back[1], vec![0.0; 4]);
}

/// Two labels per sentence: whether it holds id 5, and whether its first
/// content id is odd.
fn pooled_targets_of(data: &[AlignedSentence]) -> Vec<Vec<f32>> {
    data.iter()
        .map(|s| {
            vec![
                f32::from(u8::from(s.ids.contains(&5))),
                f32::from(u8::from(s.ids[0] % 2 == 1)),
            ]
        })
        .collect()
}

/// Layer 1's states of `data`, one window a sentence, as stance segments
/// are.
fn whole_sentence_cache(bert: &BertModel, data: &[AlignedSentence]) -> LayerCache {
    let whole = WindowPlan {
        max_len: 32,
        stride: 0,
        batch_tokens: 256,
    };
    build_layer_cache(bert, &special(), data, 1, &whole, &mut |_| {}).unwrap()
}

fn train_pooled(
    bert: &BertModel,
    cache: &LayerCache,
    targets: &[Vec<f32>],
    epochs: usize,
    seed: u64,
) -> FinetuneTrainer {
    let windows: Vec<usize> = (0..cache.windows.len()).collect();
    let mut t = FinetuneTrainer::new_pooled(
        bert,
        vec![1, 2],
        vec!["a".into(), "b".into()],
        options(seed),
        None,
    )
    .unwrap();
    for _ in 0..epochs {
        t.train_epoch_pooled(cache, targets, &windows, &mut |_| {})
            .unwrap();
    }
    t
}

#[test]
fn pooled_training_learns_and_is_deterministic() {
    let bert = tiny_bert(11);
    let data = sentences(60, 12);
    let cache = whole_sentence_cache(&bert, &data);
    assert_eq!(cache.windows.len(), data.len());
    let targets = pooled_targets_of(&data);
    let all: Vec<usize> = (0..cache.windows.len()).collect();
    let fresh = train_pooled(&bert, &cache, &targets, 0, 3);
    assert_eq!(fresh.state().objective, Objective::Pooled);
    let (before, _) = fresh
        .evaluate_pooled(&cache, &targets, &all, false)
        .unwrap();
    let a = train_pooled(&bert, &cache, &targets, 8, 3);
    let (after, probs) = a.evaluate_pooled(&cache, &targets, &all, false).unwrap();
    assert!(
        after.is_finite() && after < 0.9 * before,
        "loss {before} -> {after}"
    );
    assert_eq!(probs.len(), data.len());
    let b = train_pooled(&bert, &cache, &targets, 8, 3);
    assert!(values(&a) == values(&b), "same seed, other weights");
}

#[test]
fn bce_stays_finite_for_large_logits() {
    let device = Device::Cpu;
    let logits = Tensor::new(&[[80f32, -80.0], [0.0, 3.0]], &device).unwrap();
    let ys = Tensor::new(&[[1f32, 0.0], [1.0, 0.0]], &device).unwrap();
    let loss: f32 = bce_with_logits(&logits, &ys).unwrap().to_scalar().unwrap();
    // ln 2 and 3 + ln(1 + e^-3) over four entries; the two saturated ones ~0.
    let expected = (2f32.ln() + 3.0 + (-3f32).exp().ln_1p()) / 4.0;
    assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    let wrong = Tensor::new(&[[-80f32, 80.0], [0.0, 3.0]], &device).unwrap();
    let loss: f32 = bce_with_logits(&wrong, &ys).unwrap().to_scalar().unwrap();
    assert!(loss.is_finite() && loss > 39.0, "{loss}");
}

#[test]
fn a_released_pooled_head_gives_the_trainers_probabilities() {
    use arabtag_infer::models::{Encoder, PooledClassifier, Pooling, SequenceHead};

    let bert = tiny_bert(13);
    let data = sentences(20, 14);
    let cache = whole_sentence_cache(&bert, &data);
    let targets = pooled_targets_of(&data);
    let trainer = train_pooled(&bert, &cache, &targets, 2, 5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("head.safetensors");
    trainer.save_head(&path).unwrap();
    // What the tagger does with it: the layers replaced, the pooled head.
    let file = arabtag_infer::models::load_head_file(&bert, &path, &Device::Cpu).unwrap();
    let (replaced, indices) = file.layers.unwrap();
    assert_eq!(indices, vec![1, 2]);
    let head = PooledClassifier::from_tensors(
        file.tensors,
        32,
        vec!["a".into(), "b".into()],
        Pooling::Mean,
        true,
        &path,
        &Device::Cpu,
    )
    .unwrap();
    let (_, ours) = trainer
        .evaluate_pooled(&cache, &targets, &[0], true)
        .unwrap();
    let mut ids = vec![1u32];
    ids.extend(&data[0].ids);
    ids.push(2);
    let n = ids.len();
    let ids = Tensor::from_vec(ids, (1, n), &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, n), DType::U32, &Device::Cpu).unwrap();
    let hidden = replaced.forward(&ids, &mask).unwrap();
    let theirs: Vec<Vec<f32>> = candle_nn::ops::sigmoid(&head.forward(&hidden, &mask).unwrap())
        .unwrap()
        .to_vec2()
        .unwrap();
    // The trainer reads layer 1's states from the f16 cache, the encoder
    // computes them in f32.
    for (a, b) in ours[&0].iter().zip(&theirs[0]) {
        assert!((a - b).abs() < 5e-3, "{a} vs {b}");
    }
}
