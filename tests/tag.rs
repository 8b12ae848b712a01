//! `arabtag tag` end to end: the real binary with a tiny NER checkpoint that
//! the test writes in the hub layout (loaded through the same code as any
//! hub model), with the real e5 default model on the seeds, and with the
//! English MiniLM config (a model swap by config alone).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

#[path = "../crates/arabtag-infer/tests/it/common/mod.rs"]
mod common;

use crate::support::{self, sha256};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn arabtag(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arabtag"))
        .args(args.iter().map(|a| a.as_ref()))
        .current_dir(root())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn records(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Words of the tiny WordPiece vocabulary (ids 4..), all below the tiny
/// checkpoint's 100-token vocabulary.
const WORDS: &[&str] = &[
    "قال",
    "بوتين",
    "في",
    "باكو",
    "إن",
    "روسيا",
    "و",
    "أرمينيا",
    "أذربيجان",
    "موسكو",
    "يريفان",
    "السلام",
    "اتفاق",
    "بين",
    "الرئيس",
    "زيارة",
    "إلى",
    "من",
    "على",
    "مع",
    ".",
    "،",
    "##ا",
    "##ن",
    "##ي",
    "##ة",
];

/// Writes a tiny random BERT token classifier, its tokenizer and a config
/// naming them with their sha256; returns the config's path.
fn tiny_ner_model(dir: &Path) -> PathBuf {
    common::Tiny::new(common::Arch::Bert, common::Head::Token).write(dir);
    write_config(
        dir,
        "[ner]\nlabels = [\"O\", \"B-PER\", \"I-PER\", \"B-LOC\", \"I-LOC\"]\n\
         map = { PER = \"PER\", LOC = \"LOC\" }\nwindow = 16\nstride = 4\n",
    )
}

/// The tiny vocabulary's tokenizer and a config pinning it, then `tasks`.
fn write_config(dir: &Path, tasks: &str) -> PathBuf {
    support::write_wordpiece_config(dir, WORDS, tasks)
}

/// A text of `n` sentences built from the tiny vocabulary.
fn text(n: usize, shift: usize) -> String {
    (0..n)
        .map(|i| {
            let w = |k: usize| WORDS[(i * 7 + k * 3 + shift) % 20];
            format!("{} {} {} {}، و{} {}.", w(0), w(1), w(2), w(3), w(4), w(5))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every entity's `text` is the slice of `text` it names, and spans are in bounds.
fn assert_spans_are_slices(record: &Value, text: &str) {
    let chars: Vec<char> = text.chars().collect();
    for e in record["entities"].as_array().unwrap() {
        let (s, t) = (
            e["start"].as_u64().unwrap() as usize,
            e["end"].as_u64().unwrap() as usize,
        );
        assert!(s < t && t <= chars.len(), "{e}");
        let slice: String = chars[s..t].iter().collect();
        assert_eq!(e["text"].as_str().unwrap(), slice, "{e}");
        // PER and LOC from the tiny heads, ORG too from the default model's
        // head, DATE from the date rules.
        assert!(
            ["PER", "ORG", "LOC", "DATE"].contains(&e["type"].as_str().unwrap()),
            "{e}"
        );
    }
}

#[test]
fn every_input_yields_a_record_in_order_and_errors_name_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_ner_model(dir.path());
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    std::fs::write(corpus.join("a.txt"), text(3, 0)).unwrap();
    std::fs::write(corpus.join("b.txt"), b"\xd9\x82\xff broken").unwrap();
    let jsonl = dir.path().join("more.jsonl");
    let long = text(40, 1);
    std::fs::write(
        &jsonl,
        format!(
            "{}\nnot json\n{}\n",
            serde_json::json!({"id": "long", "text": long}),
            serde_json::json!({"id": "short", "text": text(1, 2)})
        ),
    )
    .unwrap();
    let out = arabtag(&[&"tag", &"--model", &model, &corpus, &jsonl]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let recs = records(&out);
    let ids: Vec<&str> = recs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let bad_line = format!("{}:2", jsonl.display());
    assert_eq!(ids, ["a", "b", "long", bad_line.as_str(), "short"]);
    assert!(
        recs[1]["error"]
            .as_str()
            .unwrap()
            .contains("b.txt: not valid UTF-8 at byte 2")
    );
    assert!(
        recs[3]["error"]
            .as_str()
            .unwrap()
            .contains(":2: not a JSON object")
    );
    assert!(stderr(&out).contains("b.txt"), "{}", stderr(&out));
    for (rec, t) in [
        (&recs[0], text(3, 0)),
        (&recs[2], long.clone()),
        (&recs[4], text(1, 2)),
    ] {
        assert!(rec.get("error").is_none(), "{rec}");
        assert_spans_are_slices(rec, &t);
    }
    // A random head over 40 sentences finds something to tag.
    assert!(!recs[2]["entities"].as_array().unwrap().is_empty());
}

#[test]
fn batch_size_and_threads_do_not_change_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_ner_model(dir.path());
    let jsonl = dir.path().join("docs.jsonl");
    let docs: String = (0..6)
        .map(|i| {
            format!(
                "{}\n",
                serde_json::json!({"id": format!("d{i}"), "text": text(2 + 9 * i, i)})
            )
        })
        .collect();
    std::fs::write(&jsonl, docs).unwrap();
    let run = |batch: &str, threads: &str| {
        let out = arabtag(&[
            &"tag",
            &"--model",
            &model,
            &"--batch-size",
            &batch,
            &"--threads",
            &threads,
            &jsonl,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        out.stdout
    };
    let one = run("1", "1");
    assert_eq!(
        records(&arabtag(&[&"tag", &"--model", &model, &jsonl])).len(),
        6
    );
    for (batch, threads) in [("3", "1"), ("64", "1"), ("1", "2"), ("64", "2")] {
        assert!(
            one == run(batch, threads),
            "--batch-size {batch} --threads {threads} changed the output"
        );
    }
}

/// The seed articles, sorted.
fn seed_articles() -> Vec<PathBuf> {
    let mut articles: Vec<PathBuf> = std::fs::read_dir(root().join("seeds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    articles.sort();
    articles
}

/// The released model's records are the same bytes whatever the batch
/// size and thread count (entity scores once moved in their seventh
/// decimal with the batch size).
#[test]
fn the_default_model_gives_the_same_bytes_for_every_batch_size() {
    if real("models/e5-small/e5-small-q4.bin").is_none() {
        return;
    }
    // Two articles, two runs: `make test` runs this in a debug build (about
    // 20 s an article). The first article's scores were among those that
    // moved with the batch size.
    let articles: Vec<PathBuf> = seed_articles().into_iter().take(2).collect();
    let run = |batch: &str, threads: &str| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"tag", &"--batch-size", &batch, &"--threads", &threads];
        for a in &articles {
            args.push(a);
        }
        let out = arabtag(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        out.stdout
    };
    let reference = run("16", "2");
    assert_eq!(reference.iter().filter(|&&b| b == b'\n').count(), 2);
    assert!(
        reference == run("1", "1"),
        "--batch-size 1 --threads 1 changed the output"
    );
}

#[test]
fn conll_in_tags_every_token_and_eval_reads_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_ner_model(dir.path());
    let gold = dir.path().join("gold.txt");
    std::fs::write(
        &gold,
        "قال O\nبوتين B-PER\nفي O\nباكو B-LOC\n.\tO\n\nو O\nأرمينيا B-LOC\nمع O\nروسيا B-LOC\n",
    )
    .unwrap();
    let pred = dir.path().join("pred.txt");
    let out = arabtag(&[
        &"tag",
        &"--model",
        &model,
        &"--conll-in",
        &gold,
        &"--output",
        &pred,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let written = std::fs::read_to_string(&pred).unwrap();
    let tokens: Vec<&str> = written
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        tokens,
        [
            "قال",
            "بوتين",
            "في",
            "باكو",
            ".",
            "",
            "و",
            "أرمينيا",
            "مع",
            "روسيا",
            ""
        ]
    );
    for line in written.lines().filter(|l| !l.is_empty()) {
        let tag = line.split(' ').nth(1).unwrap();
        assert!(
            ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"].contains(&tag),
            "{line}"
        );
    }
    let scored = arabtag(&[
        &"eval", &"--conll", &"--gold", &gold, &"--pred", &pred, &"--json",
    ]);
    assert_eq!(scored.status.code(), Some(0), "{}", stderr(&scored));
}

#[test]
fn a_config_with_a_wrong_hash_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_ner_model(dir.path());
    std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
    let doc = dir.path().join("d.txt");
    std::fs::write(&doc, "قال بوتين").unwrap();
    let out = arabtag(&[&"tag", &"--model", &model, &doc]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tokenizer.json"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

/// The real model files, or `None` (skipped) unless `ARABTAG_REQUIRE_MODELS=1`.
fn real(path: &str) -> Option<PathBuf> {
    let p = root().join(path);
    if p.exists() {
        return Some(p);
    }
    let required = std::env::var("ARABTAG_REQUIRE_MODELS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{} is missing and ARABTAG_REQUIRE_MODELS=1: run `make models`",
        p.display()
    );
    eprintln!("skipped: run `make models` ({} is missing)", p.display());
    None
}

#[test]
fn the_default_model_tags_the_seed_folder_and_eval_accepts_it() {
    if real("models/e5-small/e5-small-q4.bin").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pred = dir.path().join("pred.jsonl");
    // The articles by name: the folder also holds notes, annotation files
    // and the gold file, which a folder input would report as untagged.
    let articles = seed_articles();
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"tag"];
    for a in &articles {
        args.push(a);
    }
    args.extend([&"--output" as &dyn AsRef<std::ffi::OsStr>, &pred]);
    let out = arabtag(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let recs: Vec<Value> = std::fs::read_to_string(&pred)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = recs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "000_36d2250b324388a0",
            "001_1ccab73b4a93dd1f",
            "002_6107825d045773fa",
            "003_01905a19e0db79cb",
            "004_ead28f816987a158"
        ]
    );
    let counts: Vec<usize> = recs
        .iter()
        .map(|r| r["segments"].as_array().unwrap().len())
        .collect();
    assert_eq!(counts, [19, 20, 26, 24, 46]);
    for rec in &recs {
        let text = std::fs::read_to_string(
            root().join(format!("seeds/{}.txt", rec["id"].as_str().unwrap())),
        )
        .unwrap();
        assert_spans_are_slices(rec, &text);
        for seg in rec["segments"].as_array().unwrap() {
            for label in seg["labels"].as_array().unwrap() {
                assert!(["mediation", "conflict", "energy"].contains(&label.as_str().unwrap()));
            }
            let scores = seg["score"].as_object().unwrap();
            assert_eq!(scores.len(), 3, "{seg}");
        }
    }
    let scored = arabtag(&[
        &"eval",
        &"--gold",
        &"seeds/gold.jsonl",
        &"--pred",
        &pred,
        &"--docs",
        &"seeds",
        &"--json",
    ]);
    assert_eq!(scored.status.code(), Some(0), "{}", stderr(&scored));
}

#[test]
fn the_minilm_config_swaps_the_model_without_code() {
    if real("models/minilm/model.safetensors").is_none() {
        return;
    }
    let out = arabtag(&[
        &"tag",
        &"--model",
        &"models/minilm.toml",
        &"seeds/000_36d2250b324388a0.txt",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let recs = records(&out);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["segments"].as_array().unwrap().len(), 19);
}

/// Writes `dir/ner.safetensors`: a linear head over `width` features whose
/// bias makes every word `B-LOC`; returns its sha256.
fn write_loc_head(dir: &Path, width: usize) -> String {
    use candle_core::{Device, Tensor};
    let weight = Tensor::zeros((5, width), candle_core::DType::F32, &Device::Cpu).unwrap();
    // O, B-PER, I-PER, B-LOC, I-LOC.
    let bias = Tensor::new(&[-8.0f32, -8.0, -8.0, 8.0, -8.0], &Device::Cpu).unwrap();
    let head = dir.join("ner.safetensors");
    candle_core::safetensors::save(
        &std::collections::HashMap::from([
            ("weight".to_string(), weight),
            ("bias".to_string(), bias),
        ]),
        &head,
    )
    .unwrap();
    sha256(&head)
}

#[test]
fn a_ner_head_over_concatenated_layers_loads_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    common::Tiny::new(common::Arch::Bert, common::Head::None).write(dir.path());
    let doc = dir.path().join("d.txt");
    let body = text(3, 2);
    std::fs::write(&doc, &body).unwrap();
    let tasks = |sha: &str| {
        format!(
            "[ner]\nhead = {{ path = \"ner.safetensors\", sha256 = \"{sha}\" }}\n\
             layers = [0, 2]\nlabels = [\"O\", \"B-PER\", \"I-PER\", \"B-LOC\", \"I-LOC\"]\n\
             map = {{ PER = \"PER\", LOC = \"LOC\" }}\nwindow = 16\nstride = 4\n"
        )
    };
    // Two layers of the tiny encoder: the head reads 2 × HIDDEN features.
    let config = write_config(
        dir.path(),
        &tasks(&write_loc_head(dir.path(), 2 * common::HIDDEN)),
    );
    let out = arabtag(&[&"tag", &"--model", &config, &doc]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let recs = records(&out);
    assert_eq!(recs.len(), 1);
    assert!(recs[0]["error"].is_null(), "{}", recs[0]);
    let entities = recs[0]["entities"].as_array().unwrap();
    assert!(!entities.is_empty(), "{}", recs[0]);
    assert_spans_are_slices(&recs[0], &body);
    assert!(entities.iter().all(|e| e["type"] == "LOC"), "{}", recs[0]);

    // A head as wide as one layer does not fit two.
    let config = write_config(
        dir.path(),
        &tasks(&write_loc_head(dir.path(), common::HIDDEN)),
    );
    let out = arabtag(&[&"tag", &"--model", &config, &doc]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "a 64-wide head over two layers loaded"
    );
}

#[test]
fn stance_by_a_head_file_maps_its_outputs_to_the_labels() {
    use candle_core::{Device, Tensor};
    let dir = tempfile::tempdir().unwrap();
    common::Tiny::new(common::Arch::Bert, common::Head::None).write(dir.path());
    // Outputs in the order energy, mediation, conflict: only energy's bias is high.
    let weight = Tensor::zeros((3, common::HIDDEN), candle_core::DType::F32, &Device::Cpu).unwrap();
    let bias = Tensor::new(&[8.0f32, -8.0, -8.0], &Device::Cpu).unwrap();
    let head = dir.path().join("stance.safetensors");
    candle_core::safetensors::save(
        &std::collections::HashMap::from([
            ("weight".to_string(), weight),
            ("bias".to_string(), bias),
        ]),
        &head,
    )
    .unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[stance]\nmethod = \"head\"\nhead = {{ path = \"stance.safetensors\", sha256 = \"{}\" }}\n\
             labels = [\"energy\", \"mediation\", \"conflict\"]\n\
             thresholds = {{ mediation = 0.5, conflict = 0.5, energy = 0.5 }}\n",
            sha256(&head)
        ),
    );
    let doc = dir.path().join("d.txt");
    std::fs::write(&doc, text(4, 3)).unwrap();
    let out = arabtag(&[&"tag", &"--model", &config, &doc]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let recs = records(&out);
    let segments = recs[0]["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 4);
    for seg in segments {
        assert_eq!(seg["labels"], serde_json::json!(["energy"]), "{seg}");
        assert!(seg["score"]["energy"].as_f64().unwrap() > 0.99, "{seg}");
    }
    assert!(
        recs[0]["entities"].as_array().unwrap().is_empty(),
        "no [ner] in this config"
    );
}

#[test]
fn stance_by_nli_scores_every_label_as_an_entailment_probability() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = common::Tiny::new(common::Arch::Bert, common::Head::Sequence);
    tiny.write(dir.path());
    // Name the tiny sequence head's three outputs as an NLI checkpoint does.
    let config_json = dir.path().join("config.json");
    let text_json = std::fs::read_to_string(&config_json)
        .unwrap()
        .replace("favor", "entailment")
        .replace("against", "neutral")
        .replace("\"none\"", "\"contradiction\"");
    std::fs::write(&config_json, text_json).unwrap();
    let config = write_config(
        dir.path(),
        "[stance]\nmethod = \"nli\"\nhypothesis_template = \"هذا النص عن {}.\"\n\
         entailment_label = \"entailment\"\n\
         candidate_labels = { mediation = \"السلام\", conflict = \"روسيا\", energy = \"موسكو\" }\n\
         thresholds = { mediation = 0.0, conflict = 0.0, energy = 1.0 }\n",
    );
    let doc = dir.path().join("d.txt");
    std::fs::write(&doc, text(3, 5)).unwrap();
    let out = arabtag(&[&"tag", &"--model", &config, &doc]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let recs = records(&out);
    for seg in recs[0]["segments"].as_array().unwrap() {
        for label in ["mediation", "conflict", "energy"] {
            let p = seg["score"][label].as_f64().unwrap();
            assert!((0.0..1.0).contains(&p), "{seg}");
        }
        assert_eq!(
            seg["labels"],
            serde_json::json!(["mediation", "conflict"]),
            "{seg}"
        );
    }
}

#[test]
fn conll_output_and_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_ner_model(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_arabtag"))
        .args(["tag", "--format", "conll", "--model"])
        .arg(&model)
        .arg("-")
        .current_dir(root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all("قال بوتين في باكو. و روسيا مع أرمينيا!\n".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let written = String::from_utf8(out.stdout).unwrap();
    // The document is marked by its id (standard input's is `stdin`).
    assert!(written.starts_with("# id = stdin\n"), "{written}");
    let tokens: Vec<&str> = written
        .lines()
        .skip(1)
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        tokens,
        [
            "قال",
            "بوتين",
            "في",
            "باكو.",
            "",
            "و",
            "روسيا",
            "مع",
            "أرمينيا!",
            ""
        ]
    );
}

#[test]
fn dates_alone_and_beside_the_ner_head_are_slices_of_the_text() {
    let text = "قال بوتين يوم الاثنين في باكو إن اتفاق ٢٣ نوفمبر/ تشرين الثاني ٢٠٢٣ \
                صمد منذ عام 2020، وَسِبْتَمْبَرَ الماضي كان حاسما.";
    let expected = [
        "يوم الاثنين",
        "٢٣ نوفمبر/ تشرين الثاني ٢٠٢٣",
        "عام 2020",
        "سِبْتَمْبَرَ الماضي",
    ];
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    std::fs::write(corpus.join("d.txt"), text).unwrap();
    let chars: Vec<char> = text.chars().collect();
    let dates = |record: &Value| -> Vec<String> {
        let mut out = Vec::new();
        for e in record["entities"].as_array().unwrap() {
            let (s, t) = (
                e["start"].as_u64().unwrap() as usize,
                e["end"].as_u64().unwrap() as usize,
            );
            let slice: String = chars[s..t].iter().collect();
            assert_eq!(e["text"].as_str().unwrap(), slice, "{e}");
            if e["type"] == "DATE" {
                out.push(slice);
            }
        }
        out
    };

    // Only [dates]: a valid config, and every date comes out.
    common::Tiny::new(common::Arch::Bert, common::Head::Token).write(dir.path());
    let only = write_config(dir.path(), "[dates]\nenabled = true\n");
    let out = arabtag(&[&"tag", &"--model", &only, &corpus]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let recs = records(&out);
    assert_eq!(dates(&recs[0]), expected);

    // Beside a (random) NER head: dates that overlap no model span are
    // added, entities stay ordered by start.
    let both = write_config(
        dir.path(),
        "[ner]\nlabels = [\"O\", \"B-PER\", \"I-PER\", \"B-LOC\", \"I-LOC\"]\n\
         map = { PER = \"PER\", LOC = \"LOC\" }\nwindow = 16\nstride = 4\n\n\
         [dates]\nenabled = true\n",
    );
    let out = arabtag(&[&"tag", &"--model", &both, &corpus]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let recs = records(&out);
    let entities = recs[0]["entities"].as_array().unwrap();
    let starts: Vec<u64> = entities
        .iter()
        .map(|e| e["start"].as_u64().unwrap())
        .collect();
    assert!(starts.is_sorted(), "{starts:?}");
    for date in dates(&recs[0]) {
        assert!(expected.contains(&date.as_str()), "{date}");
    }
}

/// `--resume` keeps the whole records of an interrupted run, cuts a torn
/// last line, skips the ids already written and appends the rest: the file
/// ends as one uninterrupted run writes it.
#[test]
fn resume_continues_an_interrupted_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_ner_model(dir.path());
    let input = dir.path().join("docs.jsonl");
    let lines: String = (0..5)
        .map(|i| serde_json::json!({"id": format!("d{i}"), "text": text(2, i)}).to_string() + "\n")
        .collect();
    std::fs::write(&input, lines).unwrap();
    let full = dir.path().join("full.jsonl");
    let out = arabtag(&[&"tag", &"--model", &model, &input, &"-o", &full]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let whole = std::fs::read_to_string(&full).unwrap();
    let first_two: String = whole.lines().take(2).map(|l| format!("{l}\n")).collect();
    // What a killed run could leave: two records and half of a third.
    let part = dir.path().join("part.jsonl");
    let third = whole.lines().nth(2).unwrap();
    std::fs::write(&part, format!("{first_two}{}", &third[..third.len() / 2])).unwrap();
    let out = arabtag(&[
        &"tag",
        &"--model",
        &model,
        &input,
        &"-o",
        &part,
        &"--resume",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cut a torn last line"), "{err}");
    assert!(
        err.contains("resuming: 2 inputs already written were skipped, 3 written now"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&part).unwrap(), whole);
    // Nothing left to do: the file stays as it is.
    let out = arabtag(&[
        &"tag",
        &"--model",
        &model,
        &input,
        &"-o",
        &part,
        &"--resume",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&part).unwrap(), whole);
    // Resuming needs an output file, and JSONL.
    let out = arabtag(&[&"tag", &"--model", &model, &input, &"--resume"]);
    assert!(!out.status.success());
    let out = arabtag(&[
        &"tag",
        &"--model",
        &model,
        &input,
        &"-o",
        &part,
        &"--resume",
        &"--format",
        &"conll",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("JSONL output only"),
        "{}",
        stderr(&out)
    );
}

/// `--threads 0` is refused with a message, not taken as 1.
#[test]
fn zero_threads_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("d.txt");
    std::fs::write(&doc, "قال").unwrap();
    let out = arabtag(&[&"tag", &"--threads", &"0", &doc]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--threads must be at least 1"),
        "{}",
        stderr(&out)
    );
}

/// `ARABTAG_MODEL` names the model config when `--model` is not given; a
/// missing config names itself, the working folder and both remedies.
#[test]
fn the_model_config_comes_from_arabtag_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_ner_model(dir.path());
    let doc = dir.path().join("d.txt");
    std::fs::write(&doc, text(1, 0)).unwrap();
    // `arabtag tag DOC` in the temporary folder, ARABTAG_MODEL set or not.
    let tag = |config: Option<&std::path::Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_arabtag"));
        cmd.arg("tag").arg(&doc).current_dir(dir.path());
        match config {
            Some(path) => cmd.env("ARABTAG_MODEL", path),
            None => cmd.env_remove("ARABTAG_MODEL"),
        };
        cmd.output().unwrap()
    };
    let out = tag(Some(&model));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = tag(None);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("ARABTAG_MODEL") && err.contains("--model"),
        "{err}"
    );
}

/// A filter in a pipe (Spark's `RDD.pipe`, a shell pipeline): each JSONL
/// line on standard input gets its record on standard output before the
/// next line is written, in input order, and the run ends when the input does.
#[test]
fn standard_input_is_tagged_as_it_arrives() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_ner_model(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_arabtag"))
        .args(["tag", "--model"])
        .arg(&model)
        .arg("-")
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if send.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    for i in 0..3 {
        let doc = serde_json::json!({"id": format!("s{i}"), "text": text(2, i)});
        writeln!(stdin, "{doc}").unwrap();
        stdin.flush().unwrap();
        // The record comes while standard input is still open.
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no record for s{i} while the input stays open: {e}"));
        let rec: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(rec["id"], format!("s{i}"));
        assert!(rec.get("error").is_none(), "{rec}");
    }
    drop(stdin);
    assert!(lines.recv_timeout(Duration::from_secs(60)).is_err());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// `RAYON_NUM_THREADS` sizes the tagger's pool when `--threads` is not
/// given (a Spark executor sets it per task), and `--threads` wins over
/// it: counted as the process's threads once it has tagged a document.
#[cfg(target_os = "linux")]
#[test]
fn rayon_num_threads_and_threads_size_the_pool() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_ner_model(dir.path());
    let threads_of = |env: &str, flag: Option<&str>| -> usize {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_arabtag"));
        cmd.args(["tag", "--model"]).arg(&model);
        if let Some(n) = flag {
            cmd.args(["--threads", n]);
        }
        let mut child = cmd
            .arg("-")
            .env("RAYON_NUM_THREADS", env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let doc = serde_json::json!({"id": "a", "text": text(3, 0)});
        writeln!(stdin, "{doc}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("\"id\":\"a\""), "{line}");
        // The pool is up (it tagged); the input is still open.
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        drop(stdin);
        child.wait().unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let one = threads_of("1", None);
    assert_eq!(threads_of("4", None), one + 3);
    assert_eq!(threads_of("4", Some("2")), one + 1);
}
