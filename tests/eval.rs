//! `arabtag eval` end to end: exit codes, messages, JSON, reports.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::sha256;
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data(rel: &str) -> PathBuf {
    root().join("tests/data/eval").join(rel)
}

fn arabtag(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arabtag"))
        .args(args.iter().map(|a| a.as_ref()))
        .current_dir(root())
        .output()
        .unwrap()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn gold_records() -> Vec<Value> {
    std::fs::read_to_string(data("gold.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_jsonl(path: &Path, records: &[Value]) {
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// Every mode's counts show a perfect match (F1 1, or nothing to find at all).
fn assert_perfect(v: &Value) {
    for mode in ["strict", "exact", "partial", "type", "clitic"] {
        let m = &v["entities"][mode];
        assert_eq!(m["cor"], m["pos"], "{mode}: {m}");
        assert_eq!(m["cor"], m["act"], "{mode}: {m}");
        if m["pos"].as_u64().unwrap() > 0 {
            assert_eq!(m["f1"], 1.0, "{mode}");
        }
    }
    for unit in ["segments", "documents"] {
        let micro = &v[unit]["micro"];
        assert_eq!(
            (micro["fp"].as_u64(), micro["fn"].as_u64()),
            (Some(0), Some(0)),
            "{unit}"
        );
        if micro["tp"].as_u64().unwrap() > 0 {
            assert_eq!(v[unit]["micro_f1"], 1.0, "{unit}");
        }
    }
    assert_eq!(v["errors"], json!([]));
    assert_eq!(v["missing"], json!([]));
}

#[test]
fn gold_against_itself_scores_one_with_every_promised_key() {
    let gold = data("gold.jsonl");
    let out = arabtag(&[
        &"eval",
        &"--gold",
        &gold,
        &"--pred",
        &gold,
        &"--docs",
        &data("docs"),
        &"--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    for mode in ["strict", "exact", "partial", "type", "clitic"] {
        for k in ["precision", "recall", "f1"] {
            assert_eq!(v["entities"][mode][k], 1.0, "entities.{mode}.{k}");
            assert_eq!(
                v["entities"][mode]["macro"][k], 1.0,
                "entities.{mode}.macro.{k}"
            );
        }
    }
    for t in ["PER", "ORG", "LOC", "DATE"] {
        let row = &v["entities"]["per_type"][t];
        for k in ["precision", "recall", "f1"] {
            assert_eq!(row[k], 1.0, "per_type.{t}.{k}");
        }
        assert_eq!(row["fp"], 0);
        assert_eq!(row["fn"], 0);
        assert!(row["tp"].as_u64().unwrap() > 0);
    }
    assert_eq!(v["segments"]["macro_f1"], 1.0);
    assert_eq!(v["segments"]["micro_f1"], 1.0);
    for label in ["mediation", "conflict", "energy"] {
        assert_eq!(v["segments"]["per_label"][label]["f1"], 1.0, "{label}");
    }
    assert_eq!(v["documents"]["micro_f1"], 1.0);
    assert_eq!(v["types"], json!(["PER", "ORG", "LOC"]));
    assert_perfect(&v);
}

#[test]
fn the_seed_gold_validates_and_scores_one() {
    let gold = root().join("seeds/gold.jsonl");
    let out = arabtag(&[
        &"eval",
        &"--gold",
        &gold,
        &"--pred",
        &gold,
        &"--docs",
        &root().join("seeds"),
        &"--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_perfect(&v);
    assert!(v["scored_documents"].as_u64().unwrap() > 0);
}

/// Every number and list in `expected` is in `got` (numbers to 1e-9).
fn assert_contains(expected: &Value, got: &Value, path: &str) {
    match (expected, got) {
        (Value::Object(e), Value::Object(g)) => {
            for (k, v) in e {
                let sub = format!("{path}.{k}");
                let g = g.get(k).unwrap_or_else(|| panic!("{sub}: missing"));
                assert_contains(v, g, &sub);
            }
        }
        (Value::Number(e), Value::Number(g)) => {
            let (e, g) = (e.as_f64().unwrap(), g.as_f64().unwrap());
            assert!((e - g).abs() <= 1e-9, "{path}: expected {e}, got {g}");
        }
        _ => assert_eq!(expected, got, "{path}"),
    }
}

/// The seed gold against tagger-like perturbations of it: `arabtag eval`
/// gives every number of the independent Python scorer
/// (`eval/reference/score.py`, fixtures by `eval/reference/make_fixtures.py`).
#[test]
fn perturbed_seed_predictions_match_the_independent_scorer() {
    let dir = root().join("eval/reference/fixtures");
    for n in 1..=3 {
        let pred = dir.join(format!("perturbed-{n}.jsonl"));
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("perturbed-{n}.expected.json"))).unwrap(),
        )
        .unwrap();
        for (variant, types) in [
            ("default", "PER,ORG,LOC"),
            ("with_date", "PER,ORG,LOC,DATE"),
        ] {
            let out = arabtag(&[
                &"eval",
                &"--gold",
                &"seeds/gold.jsonl",
                &"--pred",
                &pred,
                &"--docs",
                &"seeds",
                &"--types",
                &types,
                &"--json",
            ]);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let got = stdout_json(&out);
            assert_contains(
                &expected[variant],
                &got,
                &format!("perturbed-{n}/{variant}"),
            );
            // The fixtures are not trivial: they miss, confuse and add.
            let strict = &got["entities"]["strict"];
            assert!(strict["f1"].as_f64().unwrap() < 0.9, "{strict}");
            assert!(strict["spu"].as_u64().unwrap() > 0, "{strict}");
            assert!(got["entities"]["partial"]["par"].as_u64().unwrap() > 0);
        }
    }
}

#[test]
fn markdown_is_the_default() {
    let gold = data("gold.jsonl");
    let out = arabtag(&[&"eval", &"--gold", &gold, &"--pred", &gold]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("| strict | 1.0000 | 1.0000 | 1.0000 |"),
        "{text}"
    );
    assert!(
        text.contains("| DATE | 1.0000 | 1.0000 | 1.0000 | 1 | 0 | 0 | no |"),
        "{text}"
    );
    assert!(text.contains("| mediation |"), "{text}");
}

#[test]
fn a_wrong_span_text_is_exit_2_naming_document_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut pred = gold_records();
    // باكو moved one character left: [14, 18) is " باك" in the document
    pred[0]["entities"][1]["start"] = json!(14);
    pred[0]["entities"][1]["end"] = json!(18);
    let path = dir.path().join("pred.jsonl");
    write_jsonl(&path, &pred);
    let out = arabtag(&[
        &"eval",
        &"--gold",
        &data("gold.jsonl"),
        &"--pred",
        &path,
        &"--docs",
        &data("docs"),
        &"--json",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("pred.jsonl:1: document a: entity LOC [14, 18): text \"باكو\" differs from the document's \" باك\""),
        "{err}"
    );
    // still scored: document a counts as missing
    let v = stdout_json(&out);
    assert_eq!(v["missing"], json!(["a"]));
    assert_eq!(v["errors"][0]["document"], "a");
    assert_eq!(
        (
            v["errors"][0]["start"].as_u64(),
            v["errors"][0]["end"].as_u64()
        ),
        (Some(14), Some(18))
    );
    assert_eq!(v["errors"][0]["kind"], "text_mismatch");
}

#[test]
fn a_prediction_for_an_unknown_document_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut pred = gold_records();
    pred.push(json!({"id": "nope", "entities": [], "segments": []}));
    let path = dir.path().join("pred.jsonl");
    write_jsonl(&path, &pred);
    let out = arabtag(&[
        &"eval",
        &"--gold",
        &data("gold.jsonl"),
        &"--pred",
        &path,
        &"--docs",
        &data("docs"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("pred.jsonl:4: document nope: a prediction for \"nope\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_document_is_listed_and_recall_drops() {
    let dir = tempfile::tempdir().unwrap();
    let pred: Vec<Value> = gold_records()
        .into_iter()
        .filter(|r| r["id"] != "b")
        .collect();
    let path = dir.path().join("pred.jsonl");
    write_jsonl(&path, &pred);
    let out = arabtag(&[
        &"eval",
        &"--gold",
        &data("gold.jsonl"),
        &"--pred",
        &path,
        &"--docs",
        &data("docs"),
        &"--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_eq!(v["missing"], json!(["b"]));
    // PER/ORG/LOC: 8 gold, b's 2 LOC missed → P = 6/6, R = 6/8
    let s = &v["entities"]["strict"];
    assert_eq!(
        (s["precision"].as_f64(), s["recall"].as_f64()),
        (Some(1.0), Some(0.75))
    );
    assert_eq!(s["mis"], 2);
    assert_eq!(v["documents"]["per_label"]["energy"]["fn"], 1);
}

#[test]
fn a_malformed_line_names_file_and_line_and_the_rest_is_scored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pred.jsonl");
    let gold = std::fs::read_to_string(data("gold.jsonl")).unwrap();
    let mut lines: Vec<&str> = gold.lines().collect();
    lines[1] = "{\"id\": \"b\", \"entities\": [";
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = arabtag(&[
        &"eval",
        &"--gold",
        &data("gold.jsonl"),
        &"--pred",
        &path,
        &"--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("pred.jsonl:2: invalid record: EOF while parsing"),
        "{err}"
    );
    let v = stdout_json(&out);
    assert_eq!(v["missing"], json!(["b"]));
    assert_eq!(v["errors"][0]["line"], 2);
    assert_eq!(v["entities"]["strict"]["cor"], 6);
}

#[test]
fn report_records_every_input_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let gold = data("gold.jsonl");
    let out = arabtag(&[
        &"eval",
        &"--gold",
        &gold,
        &"--pred",
        &gold,
        &"--docs",
        &data("docs"),
        &"--report",
        &report,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let p = &r["provenance"];
    assert_eq!(p["gold"]["sha256"], sha256(&gold));
    assert_eq!(p["pred"]["sha256"], sha256(&gold));
    let docs = p["docs"].as_array().unwrap();
    assert_eq!(docs.len(), 3);
    for d in docs {
        let id = d["id"].as_str().unwrap();
        assert_eq!(
            d["sha256"],
            sha256(&data(&format!("docs/{id}.txt"))),
            "{id}"
        );
    }
    assert_eq!(p["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        p["git_commit"]
            .as_str()
            .is_some_and(|c| c == "unknown" || c.len() == 40)
    );
    assert_eq!(p["types"], json!(["PER", "ORG", "LOC"]));
    // the same scores as --json
    assert_eq!(r["entities"]["strict"]["f1"], 1.0);
}

#[test]
fn types_choose_the_micro_set() {
    let gold = data("gold.jsonl");
    let out = arabtag(&[
        &"eval",
        &"--gold",
        &gold,
        &"--pred",
        &gold,
        &"--types",
        &"PER,DATE",
        &"--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_eq!(v["types"], json!(["PER", "DATE"]));
    assert_eq!(v["entities"]["strict"]["pos"], 2);
    assert_eq!(v["entities"]["per_type"]["LOC"]["in_micro"], false);

    let out = arabtag(&[
        &"eval", &"--gold", &gold, &"--pred", &gold, &"--types", &"per",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--types: unknown entity type \"per\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_file_is_exit_2_with_the_cause() {
    let out = arabtag(&[
        &"eval",
        &"--gold",
        &"nowhere.jsonl",
        &"--pred",
        &"nowhere.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: cannot score: nowhere.jsonl: cannot open: "),
        "{err}"
    );
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    // Thousands of unknown documents make a Markdown report far larger than a
    // pipe's buffer, so writing it must meet the closed pipe. The exit code
    // stays 2 (the input's errors): no panic (101), no other failure.
    let dir = tempfile::tempdir().unwrap();
    let mut pred = gold_records();
    pred.extend((0..3000).map(|i| json!({"id": format!("unknown-{i}")})));
    let path = dir.path().join("pred.jsonl");
    write_jsonl(&path, &pred);
    let mut child = Command::new(env!("CARGO_BIN_EXE_arabtag"))
        .args(["eval", "--gold"])
        .arg(data("gold.jsonl"))
        .arg("--pred")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{status}");

    // and a clean run whose reader goes away early exits 0
    let gold = data("gold.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_arabtag"))
        .args(["eval", "--gold"])
        .arg(&gold)
        .arg("--pred")
        .arg(&gold)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(err.is_empty(), "{err}");
}

const ANER_TEST: &str = "data/anercorp/ANERCorp_CamelLab_test.txt";

#[test]
fn conll_anercorp_test_against_itself_is_one() {
    let gold = root().join(ANER_TEST);
    let out = arabtag(&[
        &"eval", &"--conll", &"--gold", &gold, &"--pred", &gold, &"--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    for mode in ["default", "strict"] {
        for avg in ["micro", "macro", "weighted"] {
            assert_eq!(v[mode][avg]["f1"], 1.0, "{mode} {avg}");
        }
        assert_eq!(v[mode]["per_type"]["PERS"]["f1"], 1.0);
    }
    assert_eq!(
        (v["sentences"].as_u64(), v["tokens"].as_u64()),
        (Some(925), Some(25_008))
    );
}

#[test]
fn conll_anercorp_test_against_the_corruption_gives_seqeval_numbers() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(
            root().join("eval/conll/fixtures/anercorp_test_corrupted.expected.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let gold = root().join(expected["gold"].as_str().unwrap());
    let pred = root().join(expected["pred"].as_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let out = arabtag(&[
        &"eval",
        &"--conll",
        &"--gold",
        &gold,
        &"--pred",
        &pred,
        &"--json",
        &"--report",
        &report,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    for mode in ["default", "strict"] {
        for (name, row) in expected[mode].as_object().unwrap() {
            let got = match name.as_str() {
                "micro avg" => &v[mode]["micro"],
                "macro avg" => &v[mode]["macro"],
                "weighted avg" => &v[mode]["weighted"],
                kind => &v[mode]["per_type"][kind],
            };
            for (theirs, ours) in [
                ("precision", "precision"),
                ("recall", "recall"),
                ("f1-score", "f1"),
            ] {
                let (e, g) = (row[theirs].as_f64().unwrap(), got[ours].as_f64().unwrap());
                assert!(
                    (e - g).abs() <= 1e-9,
                    "{mode} {name} {ours}: seqeval {e}, arabtag {g}"
                );
            }
            assert_eq!(row["support"], got["support"], "{mode} {name}");
        }
    }
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["provenance"]["gold"]["sha256"], sha256(&gold));
    assert_eq!(r["provenance"]["pred"]["sha256"], sha256(&pred));
    assert_eq!(r["provenance"]["mode"], "conll");
    // the committed copy is the one SOURCE.md and SHA256SUMS describe
    assert_eq!(
        sha256(&gold),
        "0eac2e38f4e8e3059cb58b9691b92d7720499a595b10919326b6a512d297ffe9"
    );
}

#[test]
fn conll_misaligned_files_are_exit_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let gold = dir.path().join("g.txt");
    let pred = dir.path().join("p.txt");
    std::fs::write(&gold, "a B-PER\nb O\n\nc O\n").unwrap();
    std::fs::write(&pred, "a B-PER\nx O\n\nc O\n").unwrap();
    let out = arabtag(&[&"eval", &"--conll", &"--gold", &gold, &"--pred", &pred]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("p.txt:2: token \"x\" differs from \"b\" in "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn conll_strict_mode_refuses_non_iob2_tags_like_seqeval() {
    let dir = tempfile::tempdir().unwrap();
    let gold = dir.path().join("g.txt");
    std::fs::write(&gold, "a B-PER\nb E-PER\n\nc S-LOC\n").unwrap();
    let out = arabtag(&[
        &"eval", &"--conll", &"--gold", &gold, &"--pred", &gold, &"--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("g.txt:2: tag \"E-PER\" is not IOB2"),
        "{}",
        stderr(&out)
    );
    let v = stdout_json(&out);
    assert_eq!(v["strict"], Value::Null);
    assert_eq!(v["default"]["micro"]["f1"], 1.0);
}

#[test]
fn conll_takes_no_docs() {
    let out = arabtag(&[
        &"eval", &"--conll", &"--gold", &"g", &"--pred", &"p", &"--docs", &"d",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
}
