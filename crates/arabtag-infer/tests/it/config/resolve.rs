//! Resolution of local and e5 sources (architecture, positions, labels
//! against the checkpoint) and verification of every file's sha256.

use std::path::Path;

use arabtag_infer::InferError;
use arabtag_infer::config::{
    Architecture, FileProblem, FileRole, ModelConfig, ResolveOptions, ResolvedSource, WeightsFormat,
};

use super::{PROTOTYPES, assert_message, checkpoint_json, e5_file, offline, parse_in, sha, write};

const WEIGHTS: &[u8] = b"not really safetensors";
const TOKENIZER: &[u8] = b"{\"model\": {}}";
const NER_LABELS: [&str; 5] = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"];

/// A hub-layout folder `dir/ckpt` and a config pinning its files.
fn local_model(dir: &Path, model_type: &str, positions: usize, ner: &str) -> ModelConfig {
    let json = checkpoint_json(model_type, positions, &NER_LABELS);
    write(dir, "ckpt/config.json", &json);
    write(dir, "ckpt/model.safetensors", WEIGHTS);
    write(dir, "ckpt/tokenizer.json", TOKENIZER);
    let toml = format!(
        r#"schema_version = 1
[source.local]
dir = "ckpt"
config = {{ sha256 = "{}" }}
weights = {{ sha256 = "{}" }}
tokenizer = {{ sha256 = "{}" }}
[ner]
labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
map = {{ PER = "PER", LOC = "LOC" }}
{ner}
"#,
        sha(&json),
        sha(WEIGHTS),
        sha(TOKENIZER)
    );
    parse_in(dir, &toml).unwrap()
}

fn no_hub() -> ResolveOptions {
    offline(Path::new("/nonexistent/hub-cache"))
}

fn resolve_problems(config: &ModelConfig) -> Vec<arabtag_infer::config::ConfigProblem> {
    match config.resolve(&no_hub()) {
        Err(InferError::ConfigInvalid { problems, .. }) => problems,
        other => panic!("expected ConfigInvalid, got {other:?}"),
    }
}

#[test]
fn a_local_folder_resolves_to_absolute_paths_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let model = local_model(dir.path(), "bert", 512, "")
        .resolve(&no_hub())
        .unwrap();
    assert_eq!(model.architecture, Architecture::Bert);
    assert_eq!(model.max_positions, 512);
    assert_eq!(model.weights_format, WeightsFormat::Safetensors);
    assert_eq!(
        model.source,
        ResolvedSource::Local {
            dir: dir.path().join("ckpt")
        }
    );
    assert_eq!(model.config_path, dir.path().join("model.toml"));
    let roles: Vec<FileRole> = model.files.iter().map(|f| f.role).collect();
    assert_eq!(
        roles,
        [FileRole::Config, FileRole::Weights, FileRole::Tokenizer]
    );
    assert!(model.files.iter().all(|f| f.path.is_absolute()));
    assert_eq!(
        model.checkpoint_labels.as_deref(),
        Some(&NER_LABELS.map(String::from)[..])
    );
    let verified = model.verify().unwrap();
    assert_eq!(
        verified.weights(),
        dir.path().join("ckpt/model.safetensors")
    );
    assert_eq!(verified.tokenizer(), dir.path().join("ckpt/tokenizer.json"));
    assert_eq!(
        verified.checkpoint_config(),
        Some(dir.path().join("ckpt/config.json").as_path())
    );
    let weights = &verified.files()[1];
    assert_eq!(weights.sha256.to_string(), sha(WEIGHTS));
    assert_eq!(weights.bytes, WEIGHTS.len() as u64);
}

#[test]
fn positions_come_from_config_json_per_architecture() {
    for (model_type, positions, arch, usable) in [
        ("bert", 512, Architecture::Bert, 512),
        // RoBERTa's first pad_token_id + 1 positions are unused: 514 → 512
        ("xlm-roberta", 514, Architecture::XlmRoberta, 512),
        ("deberta-v2", 512, Architecture::DebertaV2, 512),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let model = local_model(dir.path(), model_type, positions, "")
            .resolve(&no_hub())
            .unwrap();
        assert_eq!(
            (model.architecture, model.max_positions),
            (arch, usable),
            "{model_type}"
        );
    }
}

#[test]
fn an_unsupported_architecture_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let err = local_model(dir.path(), "roberta", 514, "")
        .resolve(&no_hub())
        .unwrap_err();
    assert!(
        matches!(&err, InferError::UnsupportedModel { model_type, .. } if model_type == "roberta"),
        "{err:?}"
    );
    assert!(
        err.to_string().ends_with(
            "config.json: model_type `roberta` is not supported (supported: bert, xlm-roberta, \
             deberta-v2); choose a checkpoint of one of these"
        ),
        "{err}"
    );
    write(dir.path(), "ckpt/config.json", "{\"hidden_size\": 8}");
    let config = ModelConfig::from_file(&dir.path().join("model.toml")).unwrap();
    let err = config.resolve(&no_hub()).unwrap_err();
    assert!(
        matches!(err, InferError::MissingModelType { .. }),
        "{err:?}"
    );
    write(dir.path(), "ckpt/config.json", "{\"model_type\": ");
    let err = config.resolve(&no_hub()).unwrap_err();
    assert!(matches!(err, InferError::Json { .. }), "{err:?}");
}

#[test]
fn a_window_longer_than_the_positions_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = local_model(dir.path(), "bert", 512, "window = 600");
    assert_message(
        &resolve_problems(&config),
        "ner.window = 600 exceeds the model's 512 positions (config.json); give at most 512",
    );
}

#[test]
fn a_checkpoint_head_must_have_the_configs_labels() {
    let dir = tempfile::tempdir().unwrap();
    let config = local_model(dir.path(), "bert", 512, "");
    write(
        dir.path(),
        "ckpt/config.json",
        checkpoint_json("bert", 512, &["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]),
    );
    let p = resolve_problems(&config);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "ner.labels");
    assert!(
        p[0].message.ends_with(
            "differ from config.json's id2label [\"O\", \"B-LOC\", \"I-LOC\", \"B-PER\", \
             \"I-PER\"]: copy the checkpoint's labels, in id order"
        ),
        "{}",
        p[0].message
    );
    // a separate head file is not compared with id2label
    let dir = tempfile::tempdir().unwrap();
    let config = local_model(
        dir.path(),
        "bert",
        512,
        "head = { path = \"ner-head.safetensors\" }",
    );
    write(dir.path(), "ckpt/config.json", "{\"model_type\": \"bert\"}");
    let model = config.resolve(&no_hub()).unwrap();
    assert_eq!(
        model.files.ner_head.as_ref().unwrap().path,
        dir.path().join("ner-head.safetensors")
    );
    assert!(model.files.ner_names.is_none());
}

#[test]
fn a_names_list_is_one_of_the_model_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = local_model(
        dir.path(),
        "bert",
        512,
        "head = { path = \"ner-head.safetensors\" }\nnames = { path = \"lists/names.txt\" }",
    );
    write(dir.path(), "ckpt/config.json", "{\"model_type\": \"bert\"}");
    let model = config.resolve(&no_hub()).unwrap();
    let names = model.files.ner_names.as_ref().unwrap();
    assert_eq!(names.path, dir.path().join("lists/names.txt"));
    assert_eq!(names.key, "ner.names");
    assert!(
        model
            .files
            .iter()
            .any(|f| f.role == FileRole::NerNames && f.path == names.path)
    );
}

#[test]
fn inconsistent_checkpoint_labels_fail_only_a_config_that_uses_them() {
    // label2id is not id2label's inverse: the loader refuses these labels
    let json = r#"{"model_type": "bert", "id2label": {"0": "O", "1": "B-PER"},
                   "label2id": {"O": 1, "B-PER": 0}}"#;
    let dir = tempfile::tempdir().unwrap();
    let config = local_model(dir.path(), "bert", 512, "");
    write(dir.path(), "ckpt/config.json", json);
    let p = resolve_problems(&config);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "ner.head");
    assert!(
        p[0].message
            .starts_with("ner.head: the checkpoint's token classifier cannot be used, as config.json's labels are invalid (label2id ")
            && p[0]
                .message
                .ends_with("give ner.head = { path = \"…\", sha256 = \"…\" }"),
        "{}",
        p[0].message
    );
    // a separate head file does not need them
    let dir = tempfile::tempdir().unwrap();
    let config = local_model(
        dir.path(),
        "bert",
        512,
        "head = { path = \"ner-head.safetensors\" }",
    );
    write(dir.path(), "ckpt/config.json", json);
    let model = config.resolve(&no_hub()).unwrap();
    assert_eq!(model.checkpoint_labels, None);
}

#[test]
fn nli_needs_the_entailment_label_of_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let json = checkpoint_json("xlm-roberta", 514, &["contradiction", "neutral", "entail"]);
    write(dir.path(), "ckpt/config.json", &json);
    let config = parse_in(
        dir.path(),
        r#"schema_version = 1
[source.local]
dir = "ckpt"
[stance]
method = "nli"
hypothesis_template = "This text is about {}."
thresholds = { mediation = 0.5, conflict = 0.5, energy = 0.5 }
candidate_labels = { mediation = "mediation", conflict = "war", energy = "energy" }
"#,
    )
    .unwrap();
    assert_message(
        &resolve_problems(&config),
        "stance.entailment_label = \"entailment\" is not among config.json's labels \
         (contradiction, neutral, entail); name the one that means entailment",
    );
}

#[test]
fn the_e5_file_is_bert_with_its_headers_positions() {
    let dir = tempfile::tempdir().unwrap();
    let weights = e5_file(512, b"tensors");
    write(dir.path(), "e5/e5-small-q4.bin", &weights);
    write(dir.path(), "e5/tokenizer.json", TOKENIZER);
    let toml = format!(
        "schema_version = 1\n[source.e5]\n\
         weights = {{ path = \"e5/e5-small-q4.bin\", sha256 = \"{}\" }}\n\
         tokenizer = {{ path = \"e5/tokenizer.json\", sha256 = \"{}\" }}\n{PROTOTYPES}",
        sha(&weights),
        sha(TOKENIZER)
    );
    let config = parse_in(dir.path(), &toml).unwrap();
    let model = config.resolve(&no_hub()).unwrap();
    assert_eq!(model.architecture, Architecture::Bert);
    assert_eq!(model.weights_format, WeightsFormat::E5Q4);
    assert_eq!(model.max_positions, 512);
    assert!(model.quantized);
    assert!(model.files.config.is_none());
    assert_eq!(model.source, ResolvedSource::E5);
    model.verify().unwrap();

    write(
        dir.path(),
        "e5/e5-small-q4.bin",
        b"GGUF and more bytes than a header has....",
    );
    let err = config.resolve(&no_hub()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("e5-small-q4.bin: not an e5 `E5S1` weights file: it does not start with the magic `E5S1`"),
        "{err}"
    );
}

#[test]
fn verification_names_every_bad_file_with_expected_and_actual() {
    let dir = tempfile::tempdir().unwrap();
    let model = local_model(dir.path(), "bert", 512, "")
        .resolve(&no_hub())
        .unwrap();
    write(dir.path(), "ckpt/model.safetensors", b"another checkpoint");
    std::fs::remove_file(dir.path().join("ckpt/tokenizer.json")).unwrap();
    let checks = model.check_files();
    assert_eq!(checks.len(), 3);
    assert!(checks[0].result.is_ok(), "config.json is intact");
    let err = model.verify().unwrap_err();
    let InferError::ModelFiles { problems } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(problems.len(), 2);
    let weights = dir.path().join("ckpt/model.safetensors");
    assert_eq!(
        problems[0].to_string(),
        format!(
            "weights {}: sha256 is {}, expected {} (source.local.weights.sha256)",
            weights.display(),
            sha(b"another checkpoint"),
            sha(WEIGHTS)
        )
    );
    assert!(
        matches!(
            &problems[1],
            FileProblem::Missing {
                role: FileRole::Tokenizer,
                ..
            }
        ),
        "{:?}",
        problems[1]
    );
    assert!(
        err.to_string()
            .starts_with("2 model files failed verification:\n  - weights "),
        "{err}"
    );
}

#[test]
fn an_unpinned_file_fails_and_names_the_sha256_to_pin() {
    let dir = tempfile::tempdir().unwrap();
    local_model(dir.path(), "bert", 512, "");
    let toml = std::fs::read_to_string(dir.path().join("model.toml")).unwrap();
    let unpinned: String = toml
        .lines()
        .filter(|l| !l.starts_with("tokenizer ="))
        .map(|l| format!("{l}\n"))
        .collect();
    let model = parse_in(dir.path(), &unpinned)
        .unwrap()
        .resolve(&no_hub())
        .unwrap();
    let err = model.verify().unwrap_err();
    let path = dir.path().join("ckpt/tokenizer.json");
    assert_eq!(
        err.to_string(),
        format!(
            "model file failed verification: tokenizer {}: no sha256 pinned; this file's is {}: \
             if it is the file you mean, pin it with sha256 = \"{}\" in source.local.tokenizer",
            path.display(),
            sha(TOKENIZER),
            sha(TOKENIZER)
        )
    );
}
