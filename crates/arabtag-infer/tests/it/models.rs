//! Encoders on tiny random checkpoints the tests write in the hub layout:
//! parity with candle-transformers, padded batches against single rows,
//! the quantized path, dtypes, input checks.

// Helpers outside #[test] functions unwrap too.

use crate::common;

use arabtag_infer::InferError;
use arabtag_infer::models::{
    BertConfig, BertModel, Encoder, HeadChoice, HfConfig, HfConfigHeader, HubOptions, Linear,
    load_hub, sentence_embeddings,
};
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{bert as cbert, xlm_roberta as cxlmr};
use common::{Arch, Head, Rng, Tiny, max_abs, max_abs_diff, pad_batch, random_rows, row};

const TOL: f32 = 1e-4;

fn vb_of(weights: &std::path::Path, dtype: DType) -> VarBuilder<'static> {
    let tensors = candle_core::safetensors::load(weights, &Device::Cpu).unwrap();
    VarBuilder::from_tensors(tensors, dtype, &Device::Cpu)
}

fn load(arch: Arch, head: Head, dir: &std::path::Path) -> arabtag_infer::models::HubModel {
    let (config, weights) = Tiny::new(arch, head).write(dir);
    load_hub(&config, &weights, &HubOptions::default()).unwrap()
}

/// A batch with rows of different lengths (ids from 3, so never a special
/// or the padding id).
fn batch(seed: u64, lens: &[usize], pad: u32) -> (Vec<Vec<u32>>, Tensor, Tensor) {
    let rows = random_rows(&mut Rng::new(seed), lens, 3);
    let (ids, mask) = pad_batch(&rows, pad);
    (rows, ids, mask)
}

#[test]
fn bert_matches_candle_bert() {
    for head in [Head::None, Head::Token] {
        let dir = tempfile::tempdir().unwrap();
        let (config, weights) = Tiny::new(Arch::Bert, head).write(dir.path());
        let model = load_hub(&config, &weights, &HubOptions::default()).unwrap();
        let text = std::fs::read_to_string(&config).unwrap();
        let ccfg: cbert::Config = serde_json::from_str(&text).unwrap();
        let reference = cbert::BertModel::load(vb_of(&weights, DType::F32), &ccfg).unwrap();

        let (_, ids, mask) = batch(1, &[9, 17, 4], 0);
        let ours = model.encoder.forward(&ids, &mask).unwrap();
        let theirs = reference
            .forward(&ids, &ids.zeros_like().unwrap(), Some(&mask))
            .unwrap();
        let diff = max_abs_diff(&ours, &theirs);
        assert!(diff <= TOL, "{head:?}: max abs diff {diff}");
        assert!(max_abs(&ours) > 0.5, "hidden states should not be trivial");
    }
}

#[test]
fn xlm_roberta_matches_candle_xlm_roberta() {
    for head in [Head::None, Head::Sequence] {
        let dir = tempfile::tempdir().unwrap();
        let (config, weights) = Tiny::new(Arch::XlmRoberta, head).write(dir.path());
        let model = load_hub(&config, &weights, &HubOptions::default()).unwrap();
        let text = std::fs::read_to_string(&config).unwrap();
        let ccfg: cxlmr::Config = serde_json::from_str(&text).unwrap();
        let vb = vb_of(&weights, DType::F32);
        let vb = if head == Head::None {
            vb
        } else {
            vb.pp("roberta")
        };
        let reference = cxlmr::XLMRobertaModel::new(&ccfg, vb).unwrap();

        // candle counts positions over ids != pad; ours over the mask: the
        // same when no real token is the padding id.
        let (_, ids, mask) = batch(2, &[12, 5, 30, 1], 1);
        let ours = model.encoder.forward(&ids, &mask).unwrap();
        let theirs = reference
            .forward(&ids, &mask, &ids.zeros_like().unwrap(), None, None, None)
            .unwrap();
        let diff = max_abs_diff(&ours, &theirs);
        assert!(diff <= TOL, "{head:?}: max abs diff {diff}");
    }
}

#[test]
fn xlm_roberta_positions_count_over_the_mask() {
    // A real token equal to the padding id still gets its own position: our
    // positions come from the mask, so the row equals itself shifted by
    // nothing and differs from BERT's absolute positions.
    let dir = tempfile::tempdir().unwrap();
    let model = load(Arch::XlmRoberta, Head::None, dir.path());
    assert_eq!(model.encoder.max_positions(), 32);
    let ids = Tensor::new(&[[5u32, 1, 7, 9]], &Device::Cpu).unwrap();
    let mask = ids.ones_like().unwrap();
    let out = model.encoder.forward(&ids, &mask).unwrap();
    let (padded, pmask) = pad_batch(&[vec![5, 1, 7, 9], vec![4]], 1);
    let both = model.encoder.forward(&padded, &pmask).unwrap();
    assert!(max_abs_diff(&out.get(0).unwrap(), &both.get(0).unwrap()) <= TOL);
    // 33 tokens need position 34 of 34 rows: too long.
    let long = Tensor::ones((1, 33), DType::U32, &Device::Cpu).unwrap();
    match model.encoder.forward(&long, &long) {
        Err(InferError::SequenceTooLong { len: 33, max: 32 }) => {}
        other => panic!("expected SequenceTooLong, got {other:?}"),
    }
}

#[test]
fn padded_batch_equals_single_rows_for_every_architecture() {
    let lens = [7, 19, 1, 12];
    for (arch, pad) in [(Arch::Bert, 0), (Arch::XlmRoberta, 1), (Arch::DebertaV2, 0)] {
        for head in [Head::Token, Head::Sequence] {
            let dir = tempfile::tempdir().unwrap();
            let model = load(arch, head, dir.path());
            let (rows, ids, mask) = batch(3, &lens, pad);
            let hidden = model.encoder.forward(&ids, &mask).unwrap();
            let token_logits = model
                .token_head
                .as_ref()
                .map(|h| h.forward(&hidden).unwrap());
            let seq_logits = model
                .sequence_head
                .as_ref()
                .map(|h| h.forward(&hidden, &mask).unwrap());
            for (i, r) in rows.iter().enumerate() {
                let (one, one_mask) = pad_batch(std::slice::from_ref(r), pad);
                let alone = model.encoder.forward(&one, &one_mask).unwrap();
                let d = max_abs_diff(&row(&hidden, i, r.len()), &row(&alone, 0, r.len()));
                assert!(d <= TOL, "{arch:?} row {i}: hidden differs by {d}");
                if let (Some(head), Some(batched)) = (&model.token_head, &token_logits) {
                    let l = head.forward(&alone).unwrap();
                    let d = max_abs_diff(&row(batched, i, r.len()), &row(&l, 0, r.len()));
                    assert!(d <= TOL, "{arch:?} row {i}: token logits differ by {d}");
                }
                if let (Some(head), Some(batched)) = (&model.sequence_head, &seq_logits) {
                    let l = head.forward(&alone, &one_mask).unwrap();
                    let d = max_abs_diff(&batched.get(i).unwrap(), &l.get(0).unwrap());
                    assert!(d <= TOL, "{arch:?} row {i}: sequence logits differ by {d}");
                }
            }
            let emb = sentence_embeddings(model.encoder.as_ref(), &ids, &mask).unwrap();
            let norms = emb.sqr().unwrap().sum(1).unwrap().to_vec1::<f32>().unwrap();
            assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-5), "{norms:?}");
        }
    }
}

#[test]
fn deberta_v2_runs_and_refuses_what_candle_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let (config, weights) = Tiny::new(Arch::DebertaV2, Head::None).write(dir.path());
    let options = HubOptions {
        dtype: DType::F16,
        ..HubOptions::default()
    };
    let err = load_hub(&config, &weights, &options).unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(
        chain.contains("deberta-v2") && chain.contains("F16"),
        "{chain}"
    );
    let options = HubOptions {
        quantize: Some(GgmlDType::Q4_0),
        ..HubOptions::default()
    };
    assert!(load_hub(&config, &weights, &options).is_err());

    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    cfg["conv_kernel_size"] = 3.into();
    std::fs::write(&config, cfg.to_string()).unwrap();
    let err = load_hub(&config, &weights, &HubOptions::default()).unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(chain.contains("conv_kernel_size"), "{chain}");
}

#[test]
fn config_json_positions_are_the_encoders() {
    for arch in [Arch::Bert, Arch::XlmRoberta, Arch::DebertaV2] {
        let dir = tempfile::tempdir().unwrap();
        let (config, weights) = Tiny::new(arch, Head::None).write(dir.path());
        let model = load_hub(&config, &weights, &HubOptions::default()).unwrap();
        let header = HfConfigHeader::from_file(&config).unwrap();
        assert_eq!(header.architecture, model.config.architecture(), "{arch:?}");
        // 32 usable positions each (XLM-R: 34 rows, padding id 1)
        assert_eq!(
            (model.config.max_positions(), header.max_positions()),
            (32, 32),
            "{arch:?}"
        );
        assert_eq!(model.encoder.max_positions(), 32, "{arch:?}");
    }
}

#[test]
fn model_type_picks_the_architecture_and_names_unknown_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = Tiny::new(Arch::Bert, Head::None).write(dir.path());
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert!(matches!(
        HfConfig::from_file(&config).unwrap(),
        HfConfig::Bert(_)
    ));

    cfg["model_type"] = "distilbert".into();
    std::fs::write(&config, cfg.to_string()).unwrap();
    let err = HfConfig::from_file(&config).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, InferError::UnsupportedModel { .. }),
        "{err:?}"
    );
    assert!(
        msg.contains("distilbert") && msg.contains("config.json") && msg.contains("deberta-v2"),
        "{msg}"
    );

    cfg.as_object_mut().unwrap().remove("model_type");
    std::fs::write(&config, cfg.to_string()).unwrap();
    let err = HfConfig::from_file(&config).unwrap_err();
    assert!(
        matches!(err, InferError::MissingModelType { .. }),
        "{err:?}"
    );

    cfg["model_type"] = "bert".into();
    cfg["position_embedding_type"] = "relative_key".into();
    std::fs::write(&config, cfg.to_string()).unwrap();
    let cfg: BertConfig = match HfConfig::from_file(&config).unwrap() {
        HfConfig::Bert(c) => c,
        other => panic!("{other:?}"),
    };
    let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
    let err = BertModel::load(vb, &cfg).unwrap_err();
    assert!(err.to_string().contains("relative_key"), "{err}");
}

#[test]
fn missing_tensor_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (config, weights) = Tiny::new(Arch::Bert, Head::None).write(dir.path());
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    tensors.remove("encoder.layer.1.output.dense.weight");
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let err = load_hub(&config, &weights, &HubOptions::default()).unwrap_err();
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(chain.contains("model.safetensors"), "{chain}");
    assert!(
        chain.contains("encoder.layer.1.output.dense.weight"),
        "{chain}"
    );
}

#[test]
fn inputs_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let model = load(Arch::Bert, Head::None, dir.path());
    let dev = Device::Cpu;
    let ids = Tensor::new(&[[3u32, 100]], &dev).unwrap();
    let mask = ids.ones_like().unwrap();
    assert!(matches!(
        model.encoder.forward(&ids, &mask),
        Err(InferError::TokenOutOfVocab {
            id: 100,
            vocab: 100
        })
    ));
    let ids = Tensor::new(&[[3i64, 4]], &dev).unwrap();
    assert!(matches!(
        model.encoder.forward(&ids, &mask),
        Err(InferError::InputShape { .. })
    ));
    let ids = Tensor::new(&[[3u32, 4, 5]], &dev).unwrap();
    assert!(matches!(
        model.encoder.forward(&ids, &mask),
        Err(InferError::InputShape { .. })
    ));
    let long = Tensor::ones((1, 33), DType::U32, &dev).unwrap();
    assert!(matches!(
        model.encoder.forward(&long, &long),
        Err(InferError::SequenceTooLong { len: 33, max: 32 })
    ));
    // An empty batch is fine.
    let empty = Tensor::zeros((0, 4), DType::U32, &dev).unwrap();
    let out = model.encoder.forward(&empty, &empty).unwrap();
    assert_eq!(out.dims(), &[0, 4, 64]);
}

#[test]
fn half_precision_bert_is_close_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    let (config, weights) = Tiny::new(Arch::XlmRoberta, Head::None).write(dir.path());
    let f32_model = load_hub(&config, &weights, &HubOptions::default()).unwrap();
    let (_, ids, mask) = batch(4, &[10, 6], 1);
    let reference = f32_model.encoder.forward(&ids, &mask).unwrap();
    for dtype in [DType::F16, DType::BF16] {
        let options = HubOptions {
            dtype,
            ..HubOptions::default()
        };
        let model = load_hub(&config, &weights, &options).unwrap();
        let out = model.encoder.forward(&ids, &mask).unwrap();
        assert_eq!(out.dtype(), DType::F32);
        let d = max_abs_diff(&out, &reference);
        // LayerNorm outputs of magnitude ~1-4; bf16 keeps 8 bits of mantissa.
        assert!(d < 0.25, "{dtype:?}: max abs diff {d}");
    }
}

/// Quantized path, layer level: Q4_0 weights through candle's quantized
/// matmul (activations quantized to Q8_0 on the fly) against the same
/// weights dequantized to f32 and run dense. The difference is the Q8_0
/// rounding of the activations alone: a relative error of well under 1%.
#[test]
fn quantized_linear_is_close_to_its_dequantized_twin() {
    let mut rng = Rng::new(11);
    let dev = Device::Cpu;
    let w = Tensor::from_vec(rng.values(96 * 64, 0.0, 0.1), (96, 64), &dev).unwrap();
    let b = Tensor::from_vec(rng.values(96, 0.0, 0.1), 96, &dev).unwrap();
    let x = Tensor::from_vec(rng.values(3 * 5 * 64, 0.0, 1.0), (3, 5, 64), &dev).unwrap();
    let dense = Linear::dense(w, Some(b));
    let q = dense.quantize(GgmlDType::Q4_0).unwrap();
    assert!(q.is_quantized());
    let dq = q.dequantize().unwrap();
    assert!(!dq.is_quantized());
    let yq = q.forward(&x).unwrap();
    let yd = dq.forward(&x).unwrap();
    let rel = max_abs_diff(&yq, &yd) / max_abs(&yd);
    assert!(rel < 0.01, "relative difference {rel}");
    // And 4-bit weights themselves are a coarse copy of the original ones.
    let y = dense.forward(&x).unwrap();
    let rel = max_abs_diff(&yd, &y) / max_abs(&y);
    assert!(rel < 0.2, "4-bit weights moved the output by {rel}");
}

/// A tiny BERT or XLM-R checkpoint without a head written under `dir`:
/// its config.json, its weights and its parsed config.
fn tiny_bert(
    arch: Arch,
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    arabtag_infer::models::BertConfig,
) {
    let (config, weights) = Tiny::new(arch, Head::None).write(dir);
    let cfg = match HfConfig::from_file(&config).unwrap() {
        HfConfig::Bert(c) | HfConfig::XlmRoberta(c) => c,
        other => panic!("{other:?}"),
    };
    (config, weights, cfg)
}

/// Hidden states of a quantized model against its f32 twin: max abs diff
/// ≤ 0.05 on LayerNorm-scaled states, cosine ≥ 0.999 per token.
fn assert_states_close(ours: &Tensor, reference: &Tensor, arch: Arch) {
    let diff = max_abs_diff(ours, reference);
    assert!(diff <= 0.05, "{arch:?}: max abs diff {diff}");
    let a = ours.flatten_to(1).unwrap().to_vec2::<f32>().unwrap();
    let b = reference.flatten_to(1).unwrap().to_vec2::<f32>().unwrap();
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| common::cosine(x, y))
        .fold(1f32, f32::min);
    assert!(worst >= 0.999, "{arch:?}: worst token cosine {worst}");
}

/// 8-bit path, model level: a tiny BERT and XLM-R with every layer matrix as
/// 8-bit integer products (`BertModel::to_int8`), against the f32 model.
/// Tolerance as for 4 bits: max abs diff ≤ 0.05 on LayerNorm-scaled hidden
/// states, cosine ≥ 0.999 per token; padding still changes nothing.
#[test]
fn int8_model_is_close_to_f32() {
    for arch in [Arch::Bert, Arch::XlmRoberta] {
        let dir = tempfile::tempdir().unwrap();
        let (_, weights, cfg) = tiny_bert(arch, dir.path());
        let f32_model = BertModel::load(vb_of(&weights, DType::F32), &cfg).unwrap();
        let int8 = f32_model.to_int8().unwrap();
        assert!(int8.is_quantized() && !f32_model.is_quantized());
        let pad = if arch == Arch::Bert { 0 } else { 1 };
        let (rows, ids, mask) = batch(5, &[16, 9], pad);
        let y8 = int8.forward(&ids, &mask).unwrap();
        let y = f32_model.forward(&ids, &mask).unwrap();
        assert_states_close(&y8, &y, arch);
        // The second row alone gives the states it had in the padded batch.
        let (ids1, mask1) = pad_batch(&rows[1..], pad);
        let alone = int8.forward(&ids1, &mask1).unwrap();
        let padded = y8.get(1).unwrap().narrow(0, 0, 9).unwrap();
        let diff = max_abs_diff(&alone.get(0).unwrap(), &padded);
        assert!(diff <= 1e-5, "{arch:?}: padding moved the states by {diff}");
        // Back to f32: the 8-bit weights, dequantised.
        let back = int8.dequantize().unwrap();
        assert!(!back.is_quantized());
    }
}

/// A head file's 8-bit layers (`.q8` / `.scale`, as `train ner --finetune`
/// stores them) read straight into an 8-bit encoder give the bits of the
/// long way round: dequantised to f32, put in place, requantised.
#[test]
fn int8_layers_from_a_head_file_equal_the_requantised_f32_ones() {
    use arabtag_infer::models::quantize_rows;
    let dir = tempfile::tempdir().unwrap();
    let (config, weights) = Tiny::new(Arch::Bert, Head::None).write(dir.path());
    let HfConfig::Bert(cfg) = HfConfig::from_file(&config).unwrap() else {
        panic!("a BERT config");
    };
    let base = BertModel::load(vb_of(&weights, DType::F32), &cfg).unwrap();
    // Layer 1 of a second random model, as a head file holds it.
    let other_dir = tempfile::tempdir().unwrap();
    let mut tiny = Tiny::new(Arch::Bert, Head::None);
    tiny.seed = 99;
    let (_, other_weights) = tiny.write(other_dir.path());
    let other = BertModel::load(vb_of(&other_weights, DType::F32), &cfg).unwrap();
    let mut file = std::collections::HashMap::new();
    for (name, t) in other.layer_tensors(1).unwrap() {
        if t.rank() == 2 {
            let (q, scale) = quantize_rows(&t).unwrap();
            file.insert(format!("{name}.q8"), q);
            file.insert(format!("{name}.scale"), scale);
        } else {
            file.insert(name, t.to_dtype(DType::F16).unwrap());
        }
    }
    let direct = base
        .to_int8()
        .unwrap()
        .with_int8_layers_from(&file, &[1])
        .unwrap();
    assert!(direct.is_int8());
    let dequantised = arabtag_infer::models::dequantize_head(file).unwrap();
    let (long_way, replaced) = base.with_layers_from(&dequantised).unwrap();
    assert_eq!(replaced, vec![1]);
    let long_way = long_way.to_int8().unwrap();
    let (_, ids, mask) = batch(3, &[12, 7], 0);
    let a = direct.forward(&ids, &mask).unwrap();
    let b = long_way.forward(&ids, &mask).unwrap();
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    // And the layer did change.
    let before = base.to_int8().unwrap().forward(&ids, &mask).unwrap();
    assert!(max_abs_diff(&a, &before) > 1e-3);
}

/// Quantized path, model level: a tiny BERT and XLM-R with every layer
/// matrix quantized to Q4_0, against the same model with those matrices
/// dequantized to f32. Tolerance: max abs diff ≤ 0.05 on LayerNorm-scaled
/// hidden states (observed ~0.01), cosine ≥ 0.999 per token.
#[test]
fn quantized_model_is_close_to_dequantized_f32() {
    for arch in [Arch::Bert, Arch::XlmRoberta] {
        let dir = tempfile::tempdir().unwrap();
        let (config, weights, cfg) = tiny_bert(arch, dir.path());
        let options = HubOptions {
            quantize: Some(GgmlDType::Q4_0),
            head: HeadChoice::None,
            ..HubOptions::default()
        };
        let quantized = load_hub(&config, &weights, &options).unwrap();
        let (_, ids, mask) = batch(5, &[16, 9], if arch == Arch::Bert { 0 } else { 1 });
        let yq = quantized.encoder.forward(&ids, &mask).unwrap();
        let dequantized = if arch == Arch::Bert {
            let m = BertModel::load(vb_of(&weights, DType::F32), &cfg).unwrap();
            let m = m.quantize(GgmlDType::Q4_0).unwrap();
            assert!(m.is_quantized());
            m.dequantize().unwrap().forward(&ids, &mask).unwrap()
        } else {
            let m = arabtag_infer::models::XlmRobertaModel::load(vb_of(&weights, DType::F32), &cfg)
                .unwrap();
            let m = m.quantize(GgmlDType::Q4_0).unwrap();
            // XLM-R's BERT underneath keeps its positions when dequantized.
            let d = m.bert().dequantize().unwrap();
            assert_eq!(d.positions(), m.bert().positions());
            d.forward(&ids, &mask).unwrap()
        };
        assert_states_close(&yq, &dequantized, arch);
    }
}
