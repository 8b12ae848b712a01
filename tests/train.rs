//! `arabtag train ner` end to end on a tiny random BERT (hub layout, local
//! source) and a hand-written CoNLL file: checkpoints, the feature cache's
//! reuse, `--resume`, and the same seed giving the same head.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support;
use serde_json::Value;

/// Width of the tiny BERT's hidden states.
const HIDDEN: usize = 32;

/// A tiny random BERT (2 layers, 32 positions) in the hub layout.
fn tiny_bert(dir: &Path) {
    use candle_core::{DType, Device, Tensor};
    let (h, ff, vocab, positions) = (HIDDEN, 64, 20, 32);
    let mut tensors = std::collections::HashMap::new();
    let mut put = |name: String, shape: &[usize], norm: bool| {
        let t = if norm {
            Tensor::ones(shape, DType::F32, &Device::Cpu).unwrap()
        } else {
            (Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap() * 0.1).unwrap()
        };
        tensors.insert(name, t);
    };
    let e = "bert.embeddings";
    put(format!("{e}.word_embeddings.weight"), &[vocab, h], false);
    put(
        format!("{e}.position_embeddings.weight"),
        &[positions, h],
        false,
    );
    put(format!("{e}.token_type_embeddings.weight"), &[2, h], false);
    put(format!("{e}.LayerNorm.weight"), &[h], true);
    put(format!("{e}.LayerNorm.bias"), &[h], false);
    for l in 0..2 {
        let p = format!("bert.encoder.layer.{l}");
        for (name, out, inp) in support::layer_matrices(h, ff) {
            put(format!("{p}.{name}.weight"), &[out, inp], false);
            put(format!("{p}.{name}.bias"), &[out], false);
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            put(format!("{p}.{norm}.weight"), &[h], true);
            put(format!("{p}.{norm}.bias"), &[h], false);
        }
    }
    // A token classifier, so that the config has a task ([ner]).
    put("classifier.weight".to_owned(), &[3, h], false);
    put("classifier.bias".to_owned(), &[3], false);
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    let config = serde_json::json!({
        "architectures": ["BertForTokenClassification"],
        "id2label": {"0": "O", "1": "B-PER", "2": "I-PER"},
        "label2id": {"O": 0, "B-PER": 1, "I-PER": 2}, "model_type": "bert", "vocab_size": vocab,
        "hidden_size": h, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": ff, "hidden_act": "gelu", "max_position_embeddings": positions,
        "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "position_embedding_type": "absolute",
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

const WORDS: [&str; 8] = [
    "قال",
    "في",
    "موسكو",
    "بوتين",
    "روسيا",
    "إن",
    "من",
    "الكرملين",
];
const TAGS: [&str; 8] = ["O", "O", "B-LOC", "B-PERS", "B-LOC", "O", "O", "B-ORG"];

fn arabtag(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arabtag"))
        .args(args.iter().map(|a| a.as_ref()))
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap()
}

/// A tiny BERT, a WordPiece tokenizer of `WORDS`, the config pinning them,
/// and a CoNLL file of 20 sentences (the last 2 are dev), one of them longer
/// than the model's 32 positions.
pub(crate) fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    tiny_bert(dir);
    let mut words = WORDS.to_vec();
    words.extend(["و", "##روسيا"]);
    let config = support::write_wordpiece_config(
        dir,
        &words,
        "[ner]\nlabels = [\"O\", \"B-PER\", \"I-PER\"]\nmap = { PER = \"PER\" }\n\
         window = 16\nstride = 4\n",
    );
    let mut conll = String::new();
    for s in 0..20 {
        let len = if s == 3 { 40 } else { 3 + s % 5 };
        for k in 0..len {
            let i = (s * 3 + k * 5) % WORDS.len();
            conll.push_str(&format!("{} {}\n", WORDS[i], TAGS[i]));
        }
        conll.push_str("ووروسيا B-LOC\n\n");
    }
    let train = dir.join("train.txt");
    std::fs::write(&train, conll).unwrap();
    (config, train)
}

fn train(config: &Path, data: &Path, out: &Path, cache: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"train",
        &"ner",
        &"--train",
        &data,
        &"--model",
        &config,
        &"--out",
        &out,
        &"--cache",
        &cache,
        &"--layers",
        &"1,2",
        &"--lr",
        &"0.01",
        &"--batch-size",
        &"8",
    ];
    args.extend(extra.iter().map(|e| e as &dyn AsRef<std::ffi::OsStr>));
    let output = arabtag(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn history(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("history.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["history"].as_array().unwrap().clone()
}

#[test]
fn train_ner_checkpoints_caches_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = setup(dir.path());
    let cache = dir.path().join("cache");
    let out = dir.path().join("out");
    let first = train(&config, &data, &out, &cache, &["--epochs", "2"]);
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(err.contains("cached in"), "{err}");
    assert!(err.contains("epoch 2:"), "{err}");
    assert_eq!(history(&out).len(), 2);
    for f in [
        "head.safetensors",
        "head.json",
        "latest.json",
        "checkpoints/epoch-002/state.json",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("head.json")).unwrap()).unwrap();
    assert_eq!(meta["format"], "arabtag-layer-head");
    assert_eq!(meta["layers"], serde_json::json!([1, 2]));
    assert_eq!(meta["hidden_size"], HIDDEN);

    // Resumed to 3 epochs: the cache is reused, epoch 3 only runs.
    let resumed = train(&config, &data, &out, &cache, &["--epochs", "3", "--resume"]);
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(err.contains("features: cache"), "{err}");
    assert!(err.contains("resuming after epoch 2"), "{err}");
    assert!(
        !err.contains("epoch 2:") && err.contains("epoch 3:"),
        "{err}"
    );
    assert_eq!(history(&out).len(), 3);

    // Three epochs straight, same seed: the same checkpoint bytes.
    let straight = dir.path().join("straight");
    train(&config, &data, &straight, &cache, &["--epochs", "3"]);
    let ckpt = "checkpoints/epoch-003/head.safetensors";
    assert_eq!(
        std::fs::read(out.join(ckpt)).unwrap(),
        std::fs::read(straight.join(ckpt)).unwrap()
    );
}

/// `--dev FILE`: every sentence of the train file trains, the dev file's
/// are scored; an empty dev file is refused, naming it.
#[test]
fn train_ner_takes_a_dev_file() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = setup(dir.path());
    let text = std::fs::read_to_string(&data).unwrap();
    let dev_text: String = text
        .split("\n\n")
        .take(4)
        .map(|s| format!("{s}\n\n"))
        .collect();
    let dev = dir.path().join("dev.txt");
    std::fs::write(&dev, dev_text).unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("out");
    let dev_arg = dev.to_str().unwrap();
    train(
        &config,
        &data,
        &out,
        &cache,
        &["--epochs", "1", "--dev", dev_arg],
    );
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("history.json")).unwrap()).unwrap();
    assert_eq!(v["train_sentences"], 20);
    assert_eq!(v["dev_sentences"], 4);
    assert_eq!(v["dev_file"], dev_arg);
    assert!(v["train_sha256"].as_str().unwrap().contains("+dev:"));

    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let output = arabtag(&[
        &"train",
        &"ner",
        &"--train",
        &data,
        &"--dev",
        &empty,
        &"--model",
        &config,
        &"--out",
        &dir.path().join("out2"),
        &"--cache",
        &cache,
    ]);
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("empty.txt"), "{err}");
}

/// `--finetune`: layer 2 of the tiny BERT trained from the cached layer-1
/// states; resuming gives the bytes of a straight run; the released head
/// file (classifier + layer 2) tags through a config, and a config whose
/// layers the encoder lacks is refused at load.
#[test]
fn train_ner_finetunes_resumes_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = setup(dir.path());
    let cache = dir.path().join("cache");
    let run = |out: &Path, epochs: &str, resume: bool| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"train",
            &"ner",
            &"--train",
            &data,
            &"--model",
            &config,
            &"--out",
            &out,
            &"--cache",
            &cache,
            &"--layers",
            &"2",
            &"--finetune",
            &"1",
            &"--lr",
            &"0.01",
            &"--encoder-lr",
            &"0.001",
            &"--batch-tokens",
            &"64",
            &"--window",
            &"12",
            &"--epochs",
            &epochs,
        ];
        if resume {
            args.push(&"--resume");
        }
        let output = arabtag(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let out = dir.path().join("ft");
    let err = run(&out, "3", false);
    assert!(
        err.contains("layer 1 states:") && err.contains("cached in"),
        "{err}"
    );
    assert!(err.contains("epoch 3:"), "{err}");
    let params = "checkpoints/epoch-003/params.safetensors";
    let straight = std::fs::read(out.join(params)).unwrap();
    // As if the run had stopped after epoch 2: resuming redoes epoch 3 to
    // the same bytes (the schedule spans the same 3 epochs).
    std::fs::remove_dir_all(out.join("checkpoints/epoch-003")).unwrap();
    std::fs::write(
        out.join("latest.json"),
        r#"{"epoch": 2, "checkpoint": "checkpoints/epoch-002"}"#,
    )
    .unwrap();
    let err = run(&out, "3", true);
    assert!(err.contains("layer 1 states: cache"), "{err}");
    assert!(
        err.contains("resuming after epoch 2")
            && err.contains("epoch 3:")
            && !err.contains("epoch 2:"),
        "{err}"
    );
    assert!(
        std::fs::read(out.join(params)).unwrap() == straight,
        "the resumed epoch 3 differs from the straight one"
    );
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("head.json")).unwrap()).unwrap();
    assert_eq!(meta["layers"], serde_json::json!([2]));
    assert_eq!(meta["finetuned"], serde_json::json!([2]));
    let head_path = out.join("head.safetensors");
    let names: Vec<String> = candle_core::safetensors::load(&head_path, &candle_core::Device::Cpu)
        .unwrap()
        .into_keys()
        .collect();
    assert!(
        names.contains(&"encoder.layer.1.output.dense.weight.q8".to_owned()),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("encoder.layer.0.")),
        "{names:?}"
    );

    let labels = meta["labels"].to_string();
    let text = std::fs::read_to_string(&config).unwrap();
    let ner_at = text.find("[ner]").unwrap();
    let with_head = |layers: &str| {
        format!(
            "{}[ner]\nhead = {{ path = \"ft/head.safetensors\", sha256 = \"{}\" }}\n\
             layers = {layers}\nlabels = {labels}\nmap = {{ PERS = \"PER\", LOC = \"LOC\", ORG = \"ORG\" }}\n\
             window = 16\nstride = 4\n",
            &text[..ner_at],
            support::sha256(&head_path)
        )
    };
    let good = dir.path().join("ft.toml");
    std::fs::write(&good, with_head("[2]")).unwrap();
    // The head stores its labels: a config that lists them in another
    // order is refused by `models verify` and by `tag`, naming both.
    let head_labels = arabtag_infer::models::head_file_labels(&head_path)
        .unwrap()
        .unwrap();
    assert_eq!(head_labels.first().map(String::as_str), Some("O"));
    let mut swapped = head_labels.clone();
    swapped.swap(1, 2);
    let swapped_toml = dir.path().join("swapped.toml");
    std::fs::write(
        &swapped_toml,
        with_head("[2]").replace(&labels, &serde_json::to_string(&swapped).unwrap()),
    )
    .unwrap();
    let doc = dir.path().join("swapped-doc.txt");
    std::fs::write(&doc, "قال بوتين").unwrap();
    for cmd in [vec!["models", "verify"], vec!["tag", "--model"]] {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = cmd.iter().map(|c| c as _).collect();
        args.push(&swapped_toml);
        if cmd[0] == "tag" {
            args.push(&doc);
        }
        let out = arabtag(&args);
        assert!(!out.status.success(), "{cmd:?} accepted swapped labels");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the head's own labels") && err.contains("ner.labels"),
            "{err}"
        );
    }
    let input = dir.path().join("doc.txt");
    std::fs::write(&input, "قال بوتين في موسكو إن روسيا").unwrap();
    let tagged = arabtag(&[&"tag", &"--model", &good, &input]);
    assert!(
        tagged.status.success(),
        "{}",
        String::from_utf8_lossy(&tagged.stderr)
    );
    let record: Value = serde_json::from_slice(&tagged.stdout).unwrap();
    assert!(record["entities"].is_array(), "{record}");
    assert!(record.get("error").is_none(), "{record}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, with_head("[3]")).unwrap();
    let refused = arabtag(&[&"tag", &"--model", &bad, &input]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains('3') && err.contains("layers"), "{err}");
}

/// `arabtag train stance` on the tiny BERT: a head `[3, hidden]`, thresholds
/// and dev scores in `stance.json`; a bad label names its file and line.
#[test]
fn train_stance_writes_a_head_and_calibrated_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = setup(dir.path());
    let row = |i: usize, text: &str, labels: &[&str]| {
        serde_json::json!({"id": format!("s{i}"), "topic": "t", "text": text, "labels": labels})
            .to_string()
    };
    let mut train = String::new();
    let mut dev = String::new();
    for i in 0..24 {
        let (text, labels): (&str, &[&str]) = match i % 3 {
            0 => ("قال بوتين في موسكو", &["mediation"]),
            1 => ("روسيا الكرملين من", &["conflict", "energy"]),
            _ => ("إن في من", &[]),
        };
        let target = if i < 18 { &mut train } else { &mut dev };
        target.push_str(&row(i, text, labels));
        target.push('\n');
    }
    let (train_path, dev_path) = (dir.path().join("train.jsonl"), dir.path().join("dev.jsonl"));
    std::fs::write(&train_path, &train).unwrap();
    std::fs::write(&dev_path, &dev).unwrap();
    let out = dir.path().join("stance");
    let args = |dev: &Path| -> Vec<std::ffi::OsString> {
        ["train", "stance", "--train"]
            .iter()
            .map(Into::into)
            .chain([train_path.clone().into_os_string()])
            .chain(["--dev".into(), dev.as_os_str().to_owned()])
            .chain(["--model".into(), config.clone().into_os_string()])
            .chain(["--out".into(), out.clone().into_os_string()])
            .chain(["--epochs".into(), "300".into()])
            .collect()
    };
    let done = Command::new(env!("CARGO_BIN_EXE_arabtag"))
        .args(args(&dev_path))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{err}");
    assert!(err.contains("better on dev: head"), "{err}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stance.json")).unwrap()).unwrap();
    assert_eq!(report["train_segments"], 18);
    assert_eq!(report["head"]["dev"]["macro_f1"], 1.0, "{report}");
    let head =
        candle_core::safetensors::load(out.join("head.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    assert_eq!(head["weight"].dims(), &[3, HIDDEN]);
    assert!(String::from_utf8_lossy(&done.stdout).contains("method = \"head\""));

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        format!("{}\n{}\n", row(0, "في", &[]), row(1, "من", &["peace"])),
    )
    .unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_arabtag"))
        .args(args(&bad))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("bad.jsonl:2") && err.contains("peace"),
        "{err}"
    );
}

/// Train and dev rows of the tiny stance task (`n` rows, the last 9 dev),
/// written beside the tiny model.
fn stance_rows(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let mut train = String::new();
    let mut dev = String::new();
    for i in 0..n {
        let (text, labels): (&str, &[&str]) = match i % 3 {
            0 => ("قال بوتين في موسكو", &["mediation"]),
            1 => ("روسيا الكرملين من", &["conflict", "energy"]),
            _ => ("إن في من", &[]),
        };
        let row = serde_json::json!({"id": format!("s{i}"), "topic": format!("t{}", i % 4),
            "text": text, "labels": labels});
        let target = if i < n - 9 { &mut train } else { &mut dev };
        target.push_str(&row.to_string());
        target.push('\n');
    }
    let (train_path, dev_path) = (dir.join("train.jsonl"), dir.join("dev.jsonl"));
    std::fs::write(&train_path, &train).unwrap();
    std::fs::write(&dev_path, &dev).unwrap();
    (train_path, dev_path)
}

/// `arabtag train stance` on the tiny model into `out`, with `extra`
/// options; it must succeed.
fn train_stance(config: &Path, train: &Path, dev: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"train", &"stance", &"--train", &train, &"--dev", &dev, &"--model", &config, &"--out",
        &out,
    ];
    args.extend(extra.iter().map(|e| e as &dyn AsRef<std::ffi::OsStr>));
    let done = arabtag(&args);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    done
}

/// `arabtag train stance --finetune 1` on the tiny model: its output folder.
fn finetune_stance(dir: &Path, config: &Path, train: &Path, dev: &Path) -> (PathBuf, Output) {
    let out = dir.join("stance-ft");
    let extra = [
        "--epochs",
        "200",
        "--finetune",
        "1",
        "--finetune-epochs",
        "2",
        "--encoder-lr",
        "1e-3",
    ];
    let done = train_stance(config, train, dev, &out, &extra);
    (out, done)
}

/// `arabtag train stance --finetune 1`: the head file carries the top
/// layer, `stance.json` the fine-tuning epochs, the Platt parameters and
/// the reliability; a config naming that head (with the printed
/// calibration) tags with it.
#[test]
fn train_stance_finetunes_the_top_layer_and_the_tagger_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = setup(dir.path());
    let (train_path, dev_path) = stance_rows(dir.path(), 30);
    let (out, done) = finetune_stance(dir.path(), &config, &train_path, &dev_path);
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(err.contains("fine-tune epoch 2"), "{err}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stance.json")).unwrap()).unwrap();
    assert_eq!(report["finetune"]["layers"], serde_json::json!([2]));
    assert_eq!(report["finetune"]["epochs"].as_array().unwrap().len(), 2);
    for label in ["mediation", "conflict", "energy"] {
        let platt = &report["head"]["calibration"][label];
        assert!(platt[0].as_f64().unwrap() > 0.0, "{report}");
        assert!(
            report["head"]["reliability_dev_cross_fitted"][label]["calibrated"]["ece"]
                .as_f64()
                .is_some()
        );
    }
    let head_path = out.join("head.safetensors");
    let head = candle_core::safetensors::load(&head_path, &candle_core::Device::Cpu).unwrap();
    assert_eq!(head["weight"].dims(), &[3, HIDDEN]);
    assert!(head.contains_key("encoder.layer.1.attention.self.query.weight.q8"));
    assert!(!head.keys().any(|k| k.starts_with("encoder.layer.0.")));

    // The printed [stance] lines, with the head pinned, make a config.
    let stdout = String::from_utf8_lossy(&done.stdout);
    let printed: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("method = \"head\""))
        .take(3)
        .collect();
    assert!(printed[2].starts_with("calibration = {"), "{stdout}");
    let base = std::fs::read_to_string(&config).unwrap();
    let base = base.split("[ner]").next().unwrap();
    let digest = support::sha256(&head_path);
    let tagging = dir.path().join("stance.toml");
    std::fs::write(
        &tagging,
        format!(
            "{base}[stance]\nhead = {{ path = \"stance-ft/head.safetensors\", sha256 = \"{digest}\" }}\n{}\n",
            printed.join("\n")
        ),
    )
    .unwrap();
    let input = dir.path().join("doc.txt");
    std::fs::write(&input, "قال بوتين في موسكو. روسيا الكرملين من.\n").unwrap();
    let tagged = arabtag(&[&"tag", &"--model", &tagging, &input]);
    assert!(
        tagged.status.success(),
        "{}",
        String::from_utf8_lossy(&tagged.stderr)
    );
    let record: Value = serde_json::from_slice(&tagged.stdout).unwrap();
    let segments = record["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2, "{record}");
}

/// `stance.trunk = "ner"`: a stance head file whose layers continue the NER
/// network starts from the states NER's pass kept, and tags as the same
/// head on its own network does (`trunk = "encoder"`; the tiny model's NER
/// network is the encoder itself, so the two networks are one);
/// `arabtag train calibrate` fits its calibration and thresholds on dev; a
/// head file without layers is refused, naming it.
#[test]
fn stance_on_the_ner_network_tags_as_alone_and_calibrates() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = setup(dir.path());
    let (train, dev) = stance_rows(dir.path(), 30);
    let (out, _) = finetune_stance(dir.path(), &config, &train, &dev);
    let full = std::fs::read_to_string(&config).unwrap();
    let write = |name: &str, head: &Path, trunk: &str| -> PathBuf {
        let path = dir.path().join(name);
        let text = format!(
            "{full}[stance]\nmethod = \"head\"\nhead = {{ path = \"{}\", sha256 = \"{}\" }}\n{trunk}\
             thresholds = {{ mediation = 0.5, conflict = 0.5, energy = 0.5 }}\n",
            head.display(),
            support::sha256(head)
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let head = out.join("head.safetensors");
    let shared = write("shared.toml", &head, "trunk = \"ner\"\n");
    let alone = write("alone.toml", &head, "");

    // Documents of one and of several segments, one repeated.
    let input = dir.path().join("docs.jsonl");
    let docs = [
        "قال بوتين في موسكو. روسيا الكرملين من.",
        "إن في من",
        "قال بوتين في موسكو. روسيا الكرملين من.",
        "الكرملين قال إن روسيا في موسكو. من بوتين.\nإن في من روسيا.",
    ];
    let lines: Vec<String> = docs
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": format!("d{i}"), "text": t}).to_string())
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let tag = |config: &Path| -> Vec<Value> {
        let done = arabtag(&[
            &"tag",
            &"--model",
            &config,
            &"--input-format",
            &"jsonl",
            &input,
        ]);
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        String::from_utf8_lossy(&done.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (a, b) = (tag(&shared), tag(&alone));
    assert_eq!(a.len(), docs.len());
    let mut segments = 0;
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(a["entities"], b["entities"]);
        let (sa, sb) = (
            a["segments"].as_array().unwrap(),
            b["segments"].as_array().unwrap(),
        );
        assert_eq!(sa.len(), sb.len(), "{a} {b}");
        for (x, y) in sa.iter().zip(sb) {
            segments += 1;
            assert_eq!((&x["start"], &x["end"]), (&y["start"], &y["end"]));
            for label in ["mediation", "conflict", "energy"] {
                let (p, q) = (
                    x["score"][label].as_f64().unwrap(),
                    y["score"][label].as_f64().unwrap(),
                );
                assert!((p - q).abs() < 1e-4, "{label}: {p} vs {q}");
            }
        }
    }
    assert!(segments >= 6, "{a:?}");

    // Calibrated on dev, whatever the trunk.
    let cal = dir.path().join("cal");
    let done = arabtag(&[
        &"train",
        &"calibrate",
        &"--model",
        &shared,
        &"--dev",
        &dev,
        &"--out",
        &cal,
    ]);
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{err}");
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(stdout.contains("thresholds = { mediation = "), "{stdout}");
    assert!(stdout.contains("calibration = { mediation = ["), "{stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(cal.join("calibration.json")).unwrap())
            .unwrap();
    assert_eq!(report["method"], "head");
    assert_eq!(report["dev_segments"], 9);
    assert!(
        report["dev"]["macro_f1"].as_f64().unwrap() > 0.0,
        "{report}"
    );

    // A head trained on the frozen encoder has no layers to branch with.
    let probe = dir.path().join("probe");
    train_stance(&config, &train, &dev, &probe, &["--epochs", "50"]);
    let layerless = write(
        "layerless.toml",
        &probe.join("head.safetensors"),
        "trunk = \"ner\"\n",
    );
    let done = arabtag(&[&"tag", &"--model", &layerless, &input]);
    assert!(!done.status.success());
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(
        err.contains("probe/head.safetensors") && err.contains("carries encoder layers"),
        "{err}"
    );
}
