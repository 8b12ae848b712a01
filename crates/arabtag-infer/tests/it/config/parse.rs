//! Parsing and validation: defaults, relative paths, TOML errors with line
//! and column, and a message that says what to change for every mistake.

use std::path::Path;

use arabtag_infer::InferError;
use arabtag_infer::config::{
    Aggregation, DEFAULT_STRIDE, DEFAULT_WINDOW, DType, EntityType, ModelConfig, NerHead, Source,
    StanceLabel, StanceMethod, StanceTrunk,
};
use arabtag_tokenizer::NormalizerConfig;

use super::{PROTOTYPES, assert_message, messages, parse_in, problems};

const SHA: &str = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f";

fn e5_source() -> String {
    format!(
        r#"schema_version = 1
[source.e5]
weights = {{ path = "e5/e5-small-q4.bin", sha256 = "{SHA}" }}
tokenizer = {{ path = "e5/tokenizer.json", sha256 = "{SHA}" }}
"#
    )
}

fn local_ner(extra: &str) -> String {
    format!(
        r#"schema_version = 1
[source.local]
dir = "ckpt"
[ner]
labels = ["O", "B-PER", "I-PER", "B-MISC", "I-MISC"]
map = {{ PER = "PER" }}
{extra}
"#
    )
}

#[test]
fn defaults_apply_and_paths_are_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("configs");
    std::fs::create_dir_all(&sub).unwrap();
    let c = parse_in(&sub, &local_ner("")).unwrap();
    let Source::Local(local) = &c.source else {
        panic!("{:?}", c.source)
    };
    assert_eq!(local.dir, sub.join("ckpt"));
    assert!(local.dir.is_absolute());
    assert_eq!(local.config.path, sub.join("ckpt/config.json"));
    assert_eq!(local.weights.path, sub.join("ckpt/model.safetensors"));
    assert_eq!(local.tokenizer.path, sub.join("ckpt/tokenizer.json"));
    assert_eq!(local.weights.sha256, None);
    assert_eq!(c.dtype, DType::F32);
    assert_eq!(c.normalizer, NormalizerConfig::default());
    let ner = c.ner.unwrap();
    assert_eq!(ner.head, NerHead::Checkpoint);
    assert_eq!(ner.aggregation, Aggregation::First);
    assert_eq!((ner.window, ner.stride), (DEFAULT_WINDOW, DEFAULT_STRIDE));
    assert_eq!(ner.map.get("PER"), Some(&EntityType::Per));
    assert_eq!(ner.dropped_types(), vec!["MISC"]);
    assert!(c.stance.is_none());
}

#[test]
fn relative_paths_do_not_depend_on_the_working_directory() {
    // `parse` anchors paths at the config's folder even when named relatively.
    let c = ModelConfig::parse(
        &format!("{}{PROTOTYPES}", e5_source()),
        Path::new("models/x/../default.toml"),
    )
    .unwrap();
    let Source::E5(e5) = &c.source else { panic!() };
    let expected = std::env::current_dir()
        .unwrap()
        .join("models/e5/e5-small-q4.bin");
    assert_eq!(e5.weights.path, expected);
    assert!(e5.quantized, "quantized is the default");
    assert_eq!(e5.weights.sha256.unwrap().to_string(), SHA);
}

#[test]
fn every_key_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let c = parse_in(
        dir.path(),
        &format!(
            r#"schema_version = 1
name = "tiny"
description = "a test"
dtype = "bf16"
[source.hub]
repo = "org/model"
revision = "B5113EB38AB63EFDD7F280F8C144EA8B13F978CE"
config = {{ sha256 = "{SHA}" }}
weights = {{ file = "pytorch/model.safetensors" }}
tokenizer = {{ repo = "org/base", revision = "c23d21b0620b635a76227c604d44e43a9f0ee389", file = "tokenizer.json" }}
[normalizer]
unify_alef = true
[ner]
head = {{ path = "heads/ner.safetensors", sha256 = "{SHA}" }}
labels = ["O", "B-PERSON", "I-PERSON", "B-GPE", "I-GPE"]
map = {{ PERSON = "PER", GPE = "LOC" }}
aggregation = "average"
window = 256
stride = 32
[stance]
method = "nli"
hypothesis_template = "هذا النص عن {{}}."
entailment_label = "ENTAILMENT"
thresholds = {{ mediation = 0.5, conflict = 0.6, energy = 1 }}
candidate_labels = {{ mediation = "الوساطة", conflict = "الحرب", energy = "الطاقة" }}
"#
        ),
    )
    .unwrap();
    assert_eq!(c.name.as_deref(), Some("tiny"));
    assert_eq!(c.dtype, DType::Bf16);
    assert!(c.normalizer.unify_alef);
    let Source::Hub(hub) = &c.source else {
        panic!()
    };
    assert_eq!(
        hub.revision.as_str(),
        "b5113eb38ab63efdd7f280f8c144ea8b13f978ce"
    );
    assert_eq!(hub.weights.file, "pytorch/model.safetensors");
    assert_eq!(hub.weights.repo, "org/model");
    assert_eq!(hub.config.file, "config.json");
    assert_eq!(hub.tokenizer.repo, "org/base");
    assert_eq!(
        hub.tokenizer.revision.as_str(),
        "c23d21b0620b635a76227c604d44e43a9f0ee389"
    );
    let ner = c.ner.unwrap();
    let NerHead::File(head) = &ner.head else {
        panic!()
    };
    assert_eq!(head.path, dir.path().join("heads/ner.safetensors"));
    assert_eq!(ner.aggregation, Aggregation::Average);
    assert_eq!((ner.window, ner.stride), (256, 32));
    assert_eq!(ner.map.get("GPE"), Some(&EntityType::Loc));
    let stance = c.stance.unwrap();
    assert_eq!(stance.thresholds[&StanceLabel::Energy], 1.0);
    let StanceMethod::Nli {
        entailment_label,
        candidate_labels,
        ..
    } = &stance.method
    else {
        panic!()
    };
    assert_eq!(entailment_label, "ENTAILMENT");
    assert_eq!(candidate_labels[&StanceLabel::Conflict], "الحرب");
}

#[test]
fn a_threshold_outside_0_1_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("{}{PROTOTYPES}", e5_source()).replace("energy = 0.8", "energy = 1.7");
    let p = problems(parse_in(dir.path(), &toml));
    assert_eq!(
        messages(&p),
        ["stance.thresholds.energy = 1.7: a threshold is between 0 and 1"]
    );
    assert_eq!(p[0].key, "stance.thresholds.energy");
}

#[test]
fn calibration_is_every_label_with_a_positive_slope() {
    let dir = tempfile::tempdir().unwrap();
    let with = |line: &str| {
        format!("{}{PROTOTYPES}", e5_source()).replace(
            "thresholds = { mediation = 0.8, conflict = 0.8, energy = 0.8 }",
            &format!("thresholds = {{ mediation = 0.8, conflict = 0.8, energy = 0.8 }}\n{line}"),
        )
    };
    let c = parse_in(
        dir.path(),
        &with(
            "calibration = { mediation = [0.5, -0.1], conflict = [1.0, 0.0], energy = [2.0, 0.3] }",
        ),
    )
    .unwrap();
    let calibration = c.stance.unwrap().calibration.unwrap();
    assert_eq!(calibration[&StanceLabel::Mediation], [0.5, -0.1]);
    assert_eq!(calibration[&StanceLabel::Energy], [2.0, 0.3]);
    // Without the key, scores are used as they come.
    let plain = parse_in(dir.path(), &with("")).unwrap();
    assert!(plain.stance.unwrap().calibration.is_none());
    let p = problems(parse_in(
        dir.path(),
        &with("calibration = { mediation = [0.0, 0.1], conflict = [1.0, 0.0] }"),
    ));
    assert_eq!(
        messages(&p),
        [
            "stance.calibration.mediation = [0, 0.1]: Platt parameters [a, b] need a finite a > 0 \
             (so that higher scores stay higher) and a finite b",
            "stance.calibration.energy: missing; calibrate every label (mediation, conflict, \
             energy) or none",
        ]
    );
}

#[test]
fn the_source_is_exactly_one_of_three() {
    let dir = tempfile::tempdir().unwrap();
    let none = format!("schema_version = 1\n{PROTOTYPES}");
    assert_message(
        &problems(parse_in(dir.path(), &none)),
        "source: give exactly one of `local`, `hub`, `e5` ([source.local], [source.hub] or \
         [source.e5]); none is given",
    );
    let two = format!("{}[source.local]\ndir = \"x\"\n{PROTOTYPES}", e5_source());
    assert_message(
        &problems(parse_in(dir.path(), &two)),
        "source: give exactly one of `local`, `hub`, `e5` ([source.local], [source.hub] or \
         [source.e5]); found `local` and `e5`",
    );
}

#[test]
fn an_unknown_key_is_a_toml_error_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("{}{PROTOTYPES}", e5_source()).replace("prefix =", "prefx =");
    let err = parse_in(dir.path(), &toml).unwrap_err();
    let InferError::ConfigToml { position, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*position, Some((8, 1)));
    let shown = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(
        shown.contains("model.toml:8:1: not a valid model config"),
        "{shown}"
    );
    assert!(shown.contains("unknown field `prefx`"), "{shown}");
}

#[test]
fn an_unknown_normalizer_key_is_refused_too() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{}[normalizer]\nunify_alif = true\n{PROTOTYPES}",
        e5_source()
    );
    let err = parse_in(dir.path(), &toml).unwrap_err();
    assert!(
        matches!(
            err,
            InferError::ConfigToml {
                position: Some((6, 1)),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_syntax_error_has_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let err = parse_in(dir.path(), "schema_version = 1\n[source.e5\n").unwrap_err();
    assert!(
        matches!(
            err,
            InferError::ConfigToml {
                position: Some((2, _)),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("model.toml:2:"), "{err}");
}

#[test]
fn a_wrong_type_is_a_toml_error_at_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let err = parse_in(dir.path(), &local_ner("window = -5")).unwrap_err();
    assert!(
        matches!(
            err,
            InferError::ConfigToml {
                position: Some((7, 10)),
                ..
            }
        ),
        "{err:?}"
    );
    let err = parse_in(dir.path(), &local_ner("aggregation = \"mean\"")).unwrap_err();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("`first`, `max`"), "{source}");
}

#[test]
fn the_schema_version_is_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let p = problems(parse_in(dir.path(), "[source.e5]\n"));
    assert_eq!(
        messages(&p),
        ["schema_version: missing; put `schema_version = 1` at the top"]
    );
    // a newer file's new keys do not hide the version
    let p = problems(parse_in(dir.path(), "schema_version = 2\nnew_key = 1\n"));
    assert_eq!(
        messages(&p),
        ["schema_version = 2: this arabtag reads schema_version 1; use a config written for it"]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{}{PROTOTYPES}",
        local_ner("window = 100\nstride = 99")
            .replace("map = { PER = \"PER\" }", "map = { PERS = \"PERSON\" }")
    )
    .replace("mediation = 0.8", "mediation = -0.1");
    let p = problems(parse_in(dir.path(), &toml));
    assert_message(
        &p,
        "ner.map.PERS: no label B-PERS or I-PERS in ner.labels; the labels' types are PER, MISC",
    );
    assert_message(
        &p,
        "ner.map.PERS = \"PERSON\": map to one of PER, ORG, LOC, DATE (leave a type out to drop it)",
    );
    assert_message(
        &p,
        "ner.stride = 99: the overlap must be smaller than a window's text (ner.window − 2 = 98); \
         the default is 128",
    );
    assert_message(
        &p,
        "stance.thresholds.mediation = -0.1: a threshold is between 0 and 1",
    );
    assert_eq!(p.len(), 4, "{:#?}", messages(&p));
    // and the error lists them, one a line
    let err = parse_in(dir.path(), &toml).unwrap_err().to_string();
    assert!(err.contains("model.toml: 4 problems:\n  - "), "{err}");
}

#[test]
fn ner_labels_must_be_iob2_with_an_outside_label() {
    let dir = tempfile::tempdir().unwrap();
    let toml = local_ner("").replace(
        r#"labels = ["O", "B-PER", "I-PER", "B-MISC", "I-MISC"]"#,
        r#"labels = ["B-PER", "E-PER", "B-PER", "I-"]"#,
    );
    let p = problems(parse_in(dir.path(), &toml));
    assert_message(
        &p,
        "ner.labels[1] = \"E-PER\": a label is `O`, `B-TYPE` or `I-TYPE` (IOB2)",
    );
    assert_message(&p, "ner.labels[2] = \"B-PER\" repeats ner.labels[0]");
    assert_message(
        &p,
        "ner.labels[3] = \"I-\": a label is `O`, `B-TYPE` or `I-TYPE` (IOB2)",
    );
    assert_message(&p, "ner.labels: the outside label \"O\" is missing");
    let empty = local_ner("").replace(
        r#"labels = ["O", "B-PER", "I-PER", "B-MISC", "I-MISC"]"#,
        "",
    );
    let p = problems(parse_in(dir.path(), &empty));
    assert!(p.iter().any(|p| p.key == "ner.labels"), "{p:?}");
}

#[test]
fn the_e5_file_needs_a_separate_ner_head_and_cannot_do_nli() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{}[ner]\nlabels = [\"O\", \"B-PER\", \"I-PER\"]\nmap = {{ PER = \"PER\" }}\n\
         [stance]\nmethod = \"nli\"\nhypothesis_template = \"{{}}\"\n\
         thresholds = {{ mediation = 0.5, conflict = 0.5, energy = 0.5 }}\n\
         candidate_labels = {{ mediation = \"a\", conflict = \"b\", energy = \"c\" }}\n",
        e5_source()
    );
    let p = problems(parse_in(dir.path(), &toml));
    assert!(
        p.iter().any(|p| p.key == "ner.head"
            && p.message
                .starts_with("ner: the e5 file has no token classifier")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|p| p.key == "stance.method"
            && p.message
                .starts_with("stance.method = \"nli\" needs a sequence-classification")),
        "{p:?}"
    );
}

#[test]
fn four_bit_matrices_run_in_f32() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("dtype = \"f16\"\n{}{PROTOTYPES}", e5_source());
    assert_message(
        &problems(parse_in(dir.path(), &toml)),
        "dtype = \"f16\" with source.e5.quantized = true: 4-bit matrices run in f32; set dtype = \
         \"f32\", or quantized = false to dequantise them into f16",
    );
    let ok = toml.replace("[source.e5]", "[source.e5]\nquantized = false");
    let c = parse_in(dir.path(), &ok).unwrap();
    assert_eq!(c.dtype, DType::F16);
}

#[test]
fn int8_layers_take_and_give_f32() {
    let dir = tempfile::tempdir().unwrap();
    let f32_toml = format!("int8 = true\n{}{PROTOTYPES}", e5_source());
    assert!(parse_in(dir.path(), &f32_toml).unwrap().int8);
    let without = format!("{}{PROTOTYPES}", e5_source());
    assert!(!parse_in(dir.path(), &without).unwrap().int8);
    let toml = format!("dtype = \"bf16\"\nint8 = true\n{}{PROTOTYPES}", e5_source())
        .replace("[source.e5]", "[source.e5]\nquantized = false");
    assert_message(
        &problems(parse_in(dir.path(), &toml)),
        "int8 = true with dtype = \"bf16\": the 8-bit layers take and give f32; set dtype = \
         \"f32\", or int8 = false",
    );
}

#[test]
fn keys_of_another_method_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("{}{PROTOTYPES}", e5_source()).replace(
        "prefix = \"query: \"",
        "prefix = \"query: \"\nentailment_label = \"entailment\"",
    );
    assert_message(
        &problems(parse_in(dir.path(), &toml)),
        "stance.entailment_label: only for method = \"nli\", and this config says method = \
         \"prototypes\"; remove it or change the method",
    );
}

#[test]
fn prototypes_need_every_label_in_both_languages() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("{}{PROTOTYPES}", e5_source())
        .replace("en = [\"oil and gas\"]", "en = []")
        .replace("[stance.prototypes.conflict]", "[stance.prototypes.war]")
        .replace("ar = [\"وساطة ومفاوضات سلام\"]", "ar = [\" \"]");
    let p = problems(parse_in(dir.path(), &toml));
    assert_message(
        &p,
        "stance.prototypes.energy.en: give at least one English description",
    );
    assert_message(
        &p,
        "stance.prototypes.war: `war` is no stance label; the labels are mediation, conflict, \
         energy",
    );
    assert_message(
        &p,
        "stance.prototypes.conflict: missing; describe the label in Arabic and English \
         ([stance.prototypes.conflict] ar = [\"…\"], en = [\"…\"])",
    );
    assert_message(
        &p,
        "stance.prototypes.mediation.ar[0] is empty; write a description or remove it",
    );
}

#[test]
fn every_label_needs_a_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("{}{PROTOTYPES}", e5_source()).replace(", energy = 0.8", "");
    assert_message(
        &problems(parse_in(dir.path(), &toml)),
        "stance.thresholds.energy: missing; give every label a threshold between 0 and 1 \
         (mediation, conflict, energy)",
    );
}

#[test]
fn a_stance_head_needs_its_file_and_each_label_once() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{}[stance]\nmethod = \"head\"\nlabels = [\"energy\", \"energy\", \"conflict\"]\n\
         thresholds = {{ mediation = 0.5, conflict = 0.5, energy = 0.5 }}\n",
        e5_source()
    );
    let p = problems(parse_in(dir.path(), &toml));
    assert!(p.iter().any(|p| p.key == "stance.head"), "{p:?}");
    assert_message(
        &p,
        "stance.labels: name each of mediation, conflict, energy once, in the order of the \
         head's outputs",
    );
    let ok = toml
        .replace(
            "[\"energy\", \"energy\", \"conflict\"]",
            "[\"energy\", \"mediation\", \"conflict\"]",
        )
        .replace(
            "method = \"head\"",
            "method = \"head\"\nhead = { path = \"h.safetensors\" }",
        );
    let c = parse_in(dir.path(), &ok).unwrap();
    let StanceMethod::Head { labels, head, .. } = c.stance.unwrap().method else {
        panic!()
    };
    assert_eq!(
        labels,
        [
            StanceLabel::Energy,
            StanceLabel::Mediation,
            StanceLabel::Conflict
        ]
    );
    assert_eq!(head.path, dir.path().join("h.safetensors"));
}

#[test]
fn nli_needs_a_template_with_one_placeholder() {
    let dir = tempfile::tempdir().unwrap();
    let toml = local_ner("").replace("[ner]", "[stance]\nmethod = \"nli\"\nhypothesis_template = \"no placeholder\"\nthresholds = { mediation = 0.5, conflict = 0.5, energy = 0.5 }\ncandidate_labels = { mediation = \"a\", conflict = \"b\" }\n[ner]");
    let p = problems(parse_in(dir.path(), &toml));
    assert_message(
        &p,
        "stance.hypothesis_template = \"no placeholder\": put `{}` once, where a label's text goes",
    );
    assert_message(
        &p,
        "stance.candidate_labels.energy: missing; give the text the hypothesis puts in for it",
    );
}

#[test]
fn hub_revisions_are_pinned_commits_and_names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let toml = local_ner("").replace(
        "[source.local]\ndir = \"ckpt\"",
        "[source.hub]\nrepo = \"org/bad name\"\nrevision = \"main\"\n\
         weights = { file = \"../model.safetensors\", sha256 = \"abc\" }\n\
         tokenizer = { repo = \"org/base\" }",
    );
    let p = problems(parse_in(dir.path(), &toml));
    assert_message(
        &p,
        "source.hub.revision = \"main\": pin a commit: its full hash, 40 hex digits (a branch or \
         tag can move); the repository's commit history on the hub lists them",
    );
    assert_message(
        &p,
        "source.hub.repo = \"org/bad name\": a repository is named `owner/name` (letters, \
         digits, `-`, `_`, `.`), as in its hub address",
    );
    assert_message(
        &p,
        "source.hub.weights.file = \"../model.safetensors\": name a file inside the folder or \
         repository, `/`-separated, without `..` (e.g. \"onnx/tokenizer.json\")",
    );
    assert_message(
        &p,
        "source.hub.weights.sha256 = \"abc\": a sha256 is 64 hex digits",
    );
    assert_message(
        &p,
        "source.hub.tokenizer.repo = \"org/base\" needs its own pinned commit: add revision = \
         \"<40 hex digits>\" beside it",
    );
}

#[test]
fn a_config_without_tasks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_message(
        &problems(parse_in(dir.path(), &e5_source())),
        "no task: give [ner], [stance] or both (see models/default.toml)",
    );
}

#[test]
fn a_missing_file_names_it() {
    let err = ModelConfig::from_file(Path::new("/nonexistent/model.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/model.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn a_stance_head_on_the_ner_network_needs_ner() {
    let dir = tempfile::tempdir().unwrap();
    let stance = "[stance]\nmethod = \"head\"\nhead = { path = \"h.safetensors\" }\ntrunk = \"ner\"\n\
                  thresholds = { mediation = 0.5, conflict = 0.5, energy = 0.5 }\n";
    let with_ner = local_ner("").replace("[ner]", &format!("{stance}[ner]"));
    let c = parse_in(dir.path(), &with_ner).unwrap();
    let StanceMethod::Head { trunk, .. } = c.stance.unwrap().method else {
        panic!()
    };
    assert_eq!(trunk, StanceTrunk::Ner);
    // The default, and what a config without the key says.
    let plain = with_ner.replace("trunk = \"ner\"\n", "");
    let StanceMethod::Head { trunk, .. } =
        parse_in(dir.path(), &plain).unwrap().stance.unwrap().method
    else {
        panic!()
    };
    assert_eq!(trunk, StanceTrunk::Encoder);
    let p = problems(parse_in(dir.path(), &format!("{}{stance}", e5_source())));
    assert_message(
        &p,
        "stance.trunk = \"ner\" puts the stance layers on the NER network, and this config has \
         no [ner]; add it or remove stance.trunk",
    );
    let p = problems(parse_in(
        dir.path(),
        &with_ner.replace("\"ner\"\nthr", "\"top\"\nthr"),
    ));
    assert_message(
        &p,
        "stance.trunk: `top` is not a trunk; give \"encoder\" (the default: the model's encoder) \
         or \"ner\" (the NER network's layers)",
    );
}
