//! Heads on tiny random checkpoints: every architecture's token and
//! sequence heads, parity with candle where candle has the head, the
//! DeBERTa-v2 bias, label checks, head files.

// Helpers outside #[test] functions unwrap too.

use crate::common;

use std::collections::HashMap;

use arabtag_infer::InferError;
use arabtag_infer::models::{
    HeadChoice, HubOptions, LabelProblem, PooledClassifier, Pooling, TokenClassifier,
    ensure_labels, load_hub, mean_pool,
};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{debertav2 as cdeberta, xlm_roberta as cxlmr};
use common::{Arch, Head, Rng, Tiny, max_abs_diff, pad_batch, random_rows};
use serde_json::Value;

const TOL: f32 = 1e-4;

fn vb_of(weights: &std::path::Path) -> VarBuilder<'static> {
    let tensors = candle_core::safetensors::load(weights, &Device::Cpu).unwrap();
    VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu)
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

fn inputs(pad: u32) -> (Tensor, Tensor) {
    pad_batch(&random_rows(&mut Rng::new(21), &[8, 13, 3], 3), pad)
}

#[test]
fn every_architecture_loads_both_heads_with_config_labels() {
    for (arch, pad) in [(Arch::Bert, 0), (Arch::XlmRoberta, 1), (Arch::DebertaV2, 0)] {
        for head in [Head::None, Head::Token, Head::Sequence] {
            let dir = tempfile::tempdir().unwrap();
            let tiny = Tiny::new(arch, head);
            let (config, weights) = tiny.write(dir.path());
            let model = load_hub(&config, &weights, &HubOptions::default()).unwrap();
            assert_eq!(model.config.task().labels().unwrap(), Some(tiny.labels()));
            let (ids, mask) = inputs(pad);
            let hidden = model.encoder.forward(&ids, &mask).unwrap();
            assert_eq!(hidden.dims(), &[3, 13, 64]);
            match head {
                Head::None => {
                    assert!(model.token_head.is_none() && model.sequence_head.is_none());
                }
                Head::Token => {
                    let h = model.token_head.as_ref().unwrap();
                    assert_eq!(h.labels(), tiny.labels());
                    assert_eq!(h.forward(&hidden).unwrap().dims(), &[3, 13, 5]);
                    assert!(model.sequence_head.is_none());
                }
                Head::Sequence => {
                    let h = model.sequence_head.as_ref().unwrap();
                    assert_eq!(h.labels(), tiny.labels());
                    assert_eq!(h.forward(&hidden, &mask).unwrap().dims(), &[3, 3]);
                    assert!(model.token_head.is_none());
                }
            }
        }
    }
}

/// candle's `DebertaV2NERModel` builds its classifier without a bias; ours
/// applies it. Two checkpoints that differ only in `classifier.bias` (zero,
/// then large) give logits that differ by exactly that bias, and candle's
/// model gives ours minus the bias.
#[test]
fn deberta_v2_token_head_applies_its_bias() {
    let bias = vec![40.0f32, -25.0, 3.5, 0.0, -7.25];
    let dir0 = tempfile::tempdir().unwrap();
    let dir1 = tempfile::tempdir().unwrap();
    let mut tiny = Tiny::new(Arch::DebertaV2, Head::Token);
    tiny.classifier_bias = Some(vec![0.0; 5]);
    let (c0, w0) = tiny.write(dir0.path());
    tiny.classifier_bias = Some(bias.clone());
    let (c1, w1) = tiny.write(dir1.path());
    let m0 = load_hub(&c0, &w0, &HubOptions::default()).unwrap();
    let m1 = load_hub(&c1, &w1, &HubOptions::default()).unwrap();
    let (ids, mask) = inputs(0);
    let logits = |m: &arabtag_infer::models::HubModel| {
        let hidden = m.encoder.forward(&ids, &mask).unwrap();
        m.token_head.as_ref().unwrap().forward(&hidden).unwrap()
    };
    let (l0, l1) = (logits(&m0), logits(&m1));
    let bias_t = Tensor::new(bias.as_slice(), &Device::Cpu).unwrap();
    let shifted = l0.broadcast_add(&bias_t).unwrap();
    let d = max_abs_diff(&l1, &shifted);
    assert!(d <= 1e-5, "logits minus bias differ by {d}");

    let text = std::fs::read_to_string(&c1).unwrap();
    let ccfg: cdeberta::Config = serde_json::from_str(&text).unwrap();
    let candle_ner =
        cdeberta::DebertaV2NERModel::load(vb_of(&w1).pp("deberta"), &ccfg, None).unwrap();
    let theirs = candle_ner.forward(&ids, None, Some(mask.clone())).unwrap();
    let d = max_abs_diff(&l1.broadcast_sub(&bias_t).unwrap(), &theirs);
    assert!(
        d <= TOL,
        "candle's bias-less head differs from ours minus the bias by {d}"
    );
}

#[test]
fn xlm_roberta_sequence_head_matches_candle() {
    let dir = tempfile::tempdir().unwrap();
    let (config, weights) = Tiny::new(Arch::XlmRoberta, Head::Sequence).write(dir.path());
    let model = load_hub(&config, &weights, &HubOptions::default()).unwrap();
    let (ids, mask) = inputs(1);
    let hidden = model.encoder.forward(&ids, &mask).unwrap();
    let ours = model
        .sequence_head
        .as_ref()
        .unwrap()
        .forward(&hidden, &mask)
        .unwrap();
    let ccfg: cxlmr::Config =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let reference =
        cxlmr::XLMRobertaForSequenceClassification::new(3, &ccfg, vb_of(&weights)).unwrap();
    let theirs = reference
        .forward(&ids, &mask, &ids.zeros_like().unwrap())
        .unwrap();
    let d = max_abs_diff(&ours, &theirs);
    assert!(d <= TOL, "max abs diff {d}");
}

#[test]
fn deberta_v2_sequence_head_matches_candle() {
    let dir = tempfile::tempdir().unwrap();
    let (config, weights) = Tiny::new(Arch::DebertaV2, Head::Sequence).write(dir.path());
    let model = load_hub(&config, &weights, &HubOptions::default()).unwrap();
    let (ids, mask) = inputs(0);
    let hidden = model.encoder.forward(&ids, &mask).unwrap();
    let ours = model
        .sequence_head
        .as_ref()
        .unwrap()
        .forward(&hidden, &mask)
        .unwrap();
    let ccfg: cdeberta::Config =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let reference =
        cdeberta::DebertaV2SeqClassificationModel::load(vb_of(&weights).pp("deberta"), &ccfg, None)
            .unwrap();
    let theirs = reference.forward(&ids, None, Some(mask.clone())).unwrap();
    let d = max_abs_diff(&ours, &theirs);
    assert!(d <= TOL, "max abs diff {d}");
}

/// candle has no BERT sequence head: check ours against the formula,
/// `classifier(tanh(pooler.dense(h[:, 0])))`, from the raw tensors.
#[test]
fn bert_sequence_head_is_pooler_then_classifier() {
    let dir = tempfile::tempdir().unwrap();
    let (config, weights) = Tiny::new(Arch::Bert, Head::Sequence).write(dir.path());
    let model = load_hub(&config, &weights, &HubOptions::default()).unwrap();
    let (ids, mask) = inputs(0);
    let hidden = model.encoder.forward(&ids, &mask).unwrap();
    let ours = model
        .sequence_head
        .as_ref()
        .unwrap()
        .forward(&hidden, &mask)
        .unwrap();
    let t: HashMap<String, Tensor> =
        candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let lin = |x: &Tensor, name: &str| {
        x.matmul(&t[&format!("{name}.weight")].t().unwrap())
            .unwrap()
            .broadcast_add(&t[&format!("{name}.bias")])
            .unwrap()
    };
    let first = hidden.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
    let pooled = lin(&first, "bert.pooler.dense").tanh().unwrap();
    let expected = lin(&pooled, "classifier");
    let d = max_abs_diff(&ours, &expected);
    assert!(d <= TOL, "max abs diff {d}");
}

/// Rewrites `config.json` through `edit`.
fn edit_config(config: &std::path::Path, edit: impl FnOnce(&mut Value)) {
    let mut cfg: Value = serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(config, cfg.to_string()).unwrap();
}

#[test]
fn classifier_refuses_labels_that_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let (config, weights) = Tiny::new(Arch::XlmRoberta, Head::Token).write(dir.path());

    // id2label with 4 labels, classifier.weight with 5 rows.
    edit_config(&config, |c| {
        c["id2label"].as_object_mut().unwrap().remove("4");
        c["label2id"].as_object_mut().unwrap().remove("I-LOC");
    });
    let err = load_hub(&config, &weights, &HubOptions::default()).unwrap_err();
    let msg = chain(&err);
    assert!(msg.contains("model.safetensors"), "{msg}");
    assert!(
        msg.contains("classifier.weight") && msg.contains("5 rows") && msg.contains("4 labels"),
        "{msg}"
    );

    // label2id not the inverse of id2label.
    let (config, weights) = Tiny::new(Arch::XlmRoberta, Head::Token).write(dir.path());
    edit_config(&config, |c| c["label2id"]["B-PER"] = 3.into());
    let err = load_hub(&config, &weights, &HubOptions::default()).unwrap_err();
    let msg = chain(&err);
    assert!(msg.contains("label2id") && msg.contains("B-PER"), "{msg}");
    assert!(
        find_problem(&err).is_some_and(|p| matches!(p, LabelProblem::Label2Id { .. })),
        "{msg}"
    );

    // num_labels disagreeing with id2label.
    let (config, weights) = Tiny::new(Arch::Bert, Head::Token).write(dir.path());
    edit_config(&config, |c| c["num_labels"] = 7.into());
    let err = load_hub(&config, &weights, &HubOptions::default()).unwrap_err();
    assert!(
        find_problem(&err)
            .is_some_and(|p| matches!(p, LabelProblem::NumLabels { num_labels: 7, .. }))
    );

    // Ids with a gap.
    let (config, weights) = Tiny::new(Arch::Bert, Head::Token).write(dir.path());
    edit_config(&config, |c| {
        let m = c["id2label"].as_object_mut().unwrap();
        let v = m.remove("4").unwrap();
        m.insert("9".into(), v);
        c.as_object_mut().unwrap().remove("label2id");
    });
    let err = load_hub(&config, &weights, &HubOptions::default()).unwrap_err();
    assert!(
        find_problem(&err).is_some_and(|p| matches!(p, LabelProblem::NotDense(_))),
        "{}",
        chain(&err)
    );

    // A head without id2label.
    let (config, weights) = Tiny::new(Arch::Bert, Head::Token).write(dir.path());
    edit_config(&config, |c| {
        c.as_object_mut().unwrap().remove("id2label");
        c.as_object_mut().unwrap().remove("label2id");
    });
    let err = load_hub(&config, &weights, &HubOptions::default()).unwrap_err();
    assert!(chain(&err).contains("id2label"), "{}", chain(&err));
}

fn find_problem(err: &InferError) -> Option<&LabelProblem> {
    match err {
        InferError::InvalidLabels { reason } => Some(reason),
        InferError::Checkpoint { source, .. } => find_problem(source),
        _ => None,
    }
}

#[test]
fn head_choice_overrides_architectures() {
    let dir = tempfile::tempdir().unwrap();
    let (config, weights) = Tiny::new(Arch::Bert, Head::Token).write(dir.path());
    let none = HubOptions {
        head: HeadChoice::None,
        ..HubOptions::default()
    };
    let m = load_hub(&config, &weights, &none).unwrap();
    assert!(m.token_head.is_none() && m.sequence_head.is_none());

    // A base checkpoint asked for a token head: no classifier tensors.
    let (config, weights) = Tiny::new(Arch::Bert, Head::None).write(dir.path());
    let token = HubOptions {
        head: HeadChoice::Token,
        ..HubOptions::default()
    };
    let err = load_hub(&config, &weights, &token).unwrap_err();
    assert!(chain(&err).contains("classifier.weight"), "{}", chain(&err));
}

#[test]
fn expected_labels_are_checked() {
    let labels: Vec<String> = ["O", "B-PER"].iter().map(|s| s.to_string()).collect();
    ensure_labels(&labels, &labels).unwrap();
    let other: Vec<String> = ["O", "B-LOC"].iter().map(|s| s.to_string()).collect();
    let err = ensure_labels(&labels, &other).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("B-PER") && msg.contains("B-LOC"), "{msg}");
}

#[test]
fn head_files_load_with_the_callers_labels() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::Cpu;
    let mut rng = Rng::new(5);
    let weight = Tensor::from_vec(rng.values(3 * 64, 0.0, 0.2), (3, 64), &dev).unwrap();
    let bias = Tensor::new(&[0.5f32, -1.0, 2.0], &dev).unwrap();
    let path = dir.path().join("stance-head.safetensors");
    let tensors = HashMap::from([
        ("weight".to_string(), weight.clone()),
        ("bias".to_string(), bias.clone()),
    ]);
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let labels: Vec<String> = common::STANCES.iter().map(|s| s.to_string()).collect();

    let hidden = Tensor::from_vec(rng.values(2 * 4 * 64, 0.0, 1.0), (2, 4, 64), &dev).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 0], [1, 1, 1, 1]], &dev).unwrap();

    let token = TokenClassifier::from_file(&path, 64, labels.clone(), &dev).unwrap();
    use arabtag_infer::models::{SequenceHead, TokenHead};
    let logits = token.forward(&hidden).unwrap();
    let expected = hidden
        .broadcast_matmul(&weight.t().unwrap())
        .unwrap()
        .broadcast_add(&bias)
        .unwrap();
    assert!(max_abs_diff(&logits, &expected) <= TOL);

    let pooled =
        PooledClassifier::from_file(&path, 64, labels.clone(), Pooling::Mean, true, &dev).unwrap();
    let logits = pooled.forward(&hidden, &mask).unwrap();
    let mean = mean_pool(&hidden, &mask).unwrap();
    let unit = mean
        .broadcast_div(
            &mean
                .sqr()
                .unwrap()
                .sum_keepdim(D::Minus1)
                .unwrap()
                .sqrt()
                .unwrap(),
        )
        .unwrap();
    let expected = unit
        .matmul(&weight.t().unwrap())
        .unwrap()
        .broadcast_add(&bias)
        .unwrap();
    assert!(max_abs_diff(&logits, &expected) <= TOL);
    assert_eq!(pooled.labels(), labels.as_slice());

    // Two labels for a three-row head: refused, naming the file and both.
    let err = TokenClassifier::from_file(&path, 64, labels[..2].to_vec(), &dev).unwrap_err();
    let msg = chain(&err);
    assert!(
        msg.contains("stance-head.safetensors")
            && msg.contains("3 rows")
            && msg.contains("2 labels"),
        "{msg}"
    );
    // A head for another width.
    let err = TokenClassifier::from_file(&path, 32, labels, &dev).unwrap_err();
    assert!(chain(&err).contains("stance-head.safetensors"));
}
