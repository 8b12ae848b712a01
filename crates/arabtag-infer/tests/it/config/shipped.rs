//! The configs shipped in `models/` and `models/hub/`: all parse and
//! validate; the two whose files `make models` fetches resolve and verify.

use std::path::{Path, PathBuf};

use arabtag_infer::config::{
    Architecture, ModelConfig, NerHead, ResolveOptions, Source, StanceLabel, StanceMethod,
    WeightsFormat,
};

use super::workspace;

/// Every `*.toml` of `models/` and `models/hub/`, sorted.
fn shipped() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["models", "models/hub"] {
        for entry in std::fs::read_dir(workspace().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn load(rel: &str) -> ModelConfig {
    ModelConfig::from_file(&workspace().join(rel)).unwrap()
}

#[test]
fn every_shipped_config_parses_and_validates() {
    let paths = shipped();
    assert!(paths.len() >= 5, "{paths:?}");
    for path in &paths {
        let config =
            ModelConfig::from_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(config.name.is_some(), "{}: give it a name", path.display());
    }
}

#[test]
fn the_default_is_the_e5_file_with_the_readmes_hashes_and_prototypes() {
    let c = load("models/default.toml");
    let Source::E5(e5) = &c.source else {
        panic!("{:?}", c.source)
    };
    assert!(
        !e5.quantized,
        "f32 is the faster default on CPU (models/default.toml)"
    );
    assert_eq!(
        e5.weights.sha256.unwrap().to_string(),
        "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
    );
    assert_eq!(
        e5.tokenizer.sha256.unwrap().to_string(),
        "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"
    );
    assert_eq!(
        e5.weights.path,
        workspace().join("models/e5-small/e5-small-q4.bin")
    );
    let ner = c
        .ner
        .as_ref()
        .expect("the default tags entities with its layer head");
    assert_eq!(ner.layers, [8]);
    assert_eq!(
        ner.context,
        arabtag_infer::config::NerContext::Segment,
        "the head was trained on single sentences"
    );
    assert_eq!(
        ner.names.as_ref().map(|n| n.path.clone()),
        Some(workspace().join("models/lexicon/names.txt"))
    );
    let arabtag_infer::config::NerHead::File(head) = &ner.head else {
        panic!("{:?}", ner.head)
    };
    assert_eq!(
        head.path,
        workspace().join("models/heads/e5-mt-ner.safetensors")
    );
    assert_eq!(
        head.sha256.unwrap().to_string(),
        "4dc3c1421b974f2b52528e574a15a87841cb778d8fccf384c0b59bb78de39aaa"
    );
    assert!(ner.dropped_types().is_empty());
    assert!(
        c.dates.is_some_and(|d| d.enabled),
        "the date rules are on in the shipped default"
    );
    assert!(load("models/minilm.toml").dates.is_some_and(|d| d.enabled));
    let stance = c.stance.unwrap();
    let StanceMethod::Head {
        head,
        labels,
        trunk,
    } = &stance.method
    else {
        panic!(
            "the default stance is the trained head: {:?}",
            stance.method
        )
    };
    assert_eq!(
        head.path,
        workspace().join("models/heads/e5-mt-stance.safetensors")
    );
    assert_eq!(
        *trunk,
        arabtag_infer::config::StanceTrunk::Ner,
        "one encoder pass for NER and stance"
    );
    let two = load("models/e5-two-pass.toml");
    let Some(StanceMethod::Head { head, trunk, .. }) = two.stance.map(|s| s.method) else {
        panic!("the two-pass release keeps its stance head")
    };
    assert_eq!(
        head.path,
        workspace().join("models/heads/e5-stance-ft.safetensors")
    );
    assert_eq!(trunk, arabtag_infer::config::StanceTrunk::Encoder);
    assert_eq!(labels.as_slice(), StanceLabel::ALL.as_slice());
    for label in StanceLabel::ALL {
        assert!((0.0..=1.0).contains(&stance.thresholds[&label]));
    }
    // The zero-shot alternative: the same model with prototypes.
    let p = load("models/e5-prototypes.toml");
    assert_eq!(p.source, c.source);
    let stance = p.stance.unwrap();
    let StanceMethod::Prototypes { prefix, prototypes } = &stance.method else {
        panic!()
    };
    assert_eq!(prefix, "query: ");
    for label in StanceLabel::ALL {
        let p = &prototypes[&label];
        assert!(!p.ar.is_empty() && !p.en.is_empty(), "{label}");
        assert!((0.0..=1.0).contains(&stance.thresholds[&label]));
    }
}

#[test]
fn hub_configs_pin_commits_and_say_they_need_a_network() {
    let mut kinds = Vec::new();
    for path in shipped() {
        let c = ModelConfig::from_file(&path).unwrap();
        let Source::Hub(hub) = &c.source else {
            continue;
        };
        assert_eq!(hub.revision.as_str().len(), 40, "{}", path.display());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("NEEDS A NETWORK"),
            "{}: say that it needs a network",
            path.display()
        );
        kinds.push((
            c.ner.as_ref().map(|n| n.head.clone()),
            c.stance.as_ref().map(|s| s.method.name()),
        ));
    }
    assert!(
        kinds.contains(&(Some(NerHead::Checkpoint), None)),
        "{kinds:?}"
    );
    assert!(kinds.contains(&(None, Some("nli"))), "{kinds:?}");
}

/// Resolves and verifies a shipped config whose files `make models` fetches;
/// `None` (with a note) when they are missing, unless
/// `ARABTAG_REQUIRE_MODELS=1`, which makes a missing file fail.
pub(crate) fn fetched(
    rel: &str,
    file: &str,
    test: &str,
) -> Option<arabtag_infer::config::VerifiedModel> {
    let required = std::env::var("ARABTAG_REQUIRE_MODELS").is_ok_and(|v| v == "1");
    let probe = workspace().join(file);
    if !probe.exists() {
        assert!(
            !required,
            "{} is missing and ARABTAG_REQUIRE_MODELS=1: run `make models`",
            probe.display()
        );
        eprintln!(
            "{test}: skipped: run `make models` ({} is missing)",
            probe.display()
        );
        return None;
    }
    let config = load(rel);
    let options = ResolveOptions {
        offline: true,
        hub_cache: Some(Path::new("/nonexistent").to_owned()),
        endpoint: None,
    };
    Some(config.resolve(&options).unwrap().verify().unwrap())
}

#[test]
fn the_default_model_verifies_after_make_models() {
    let Some(model) = fetched(
        "models/default.toml",
        "models/e5-small/e5-small-q4.bin",
        "the_default_model_verifies_after_make_models",
    ) else {
        return;
    };
    let m = model.model();
    assert_eq!(m.architecture, Architecture::Bert);
    assert_eq!(m.weights_format, WeightsFormat::E5Q4);
    assert_eq!(m.max_positions, 512, "from the file's own header");
    assert_eq!(
        model.files().len(),
        5,
        "weights, tokenizer, NER head, stance head, names list"
    );
    assert_eq!(model.files()[0].bytes, 71_622_400);
}

#[test]
fn the_minilm_swap_verifies_after_make_models() {
    let Some(model) = fetched(
        "models/minilm.toml",
        "models/minilm/model.safetensors",
        "the_minilm_swap_verifies_after_make_models",
    ) else {
        return;
    };
    let m = model.model();
    assert_eq!(m.architecture, Architecture::Bert);
    assert_eq!(m.weights_format, WeightsFormat::Safetensors);
    assert_eq!(m.max_positions, 512);
    assert_eq!(
        model.checkpoint_config(),
        Some(workspace().join("models/minilm/config.json").as_path())
    );
}
