//! CoNLL mode against seqeval's own numbers (`eval/conll/make_fixtures.py`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const ANER_TEST: &str = "data/anercorp/ANERCorp_CamelLab_test.txt";

fn close(name: &str, key: &str, expected: &Value, actual: f64) {
    match expected {
        // seqeval's NaN (macro average of no types), written as null
        Value::Null => assert!(actual.is_nan(), "{name} {key}: expected NaN, got {actual}"),
        v => {
            let e = v.as_f64().unwrap();
            assert!(
                (e - actual).abs() <= 1e-9,
                "{name} {key}: seqeval {e}, arabtag {actual}"
            );
        }
    }
}

fn compare(name: &str, expected: &Value, actual: &Scores) {
    let rows = expected.as_object().unwrap();
    let mut types = 0;
    for (row_name, row) in rows {
        let (p, r, f, support) = match row_name.as_str() {
            "micro avg" => (
                actual.micro.precision,
                actual.micro.recall,
                actual.micro.f1,
                actual.micro.support,
            ),
            "macro avg" => (
                actual.macro_.precision,
                actual.macro_.recall,
                actual.macro_.f1,
                actual.macro_.support,
            ),
            "weighted avg" => (
                actual.weighted.precision,
                actual.weighted.recall,
                actual.weighted.f1,
                actual.weighted.support,
            ),
            kind => {
                types += 1;
                let t = actual.per_type.get(kind).unwrap_or_else(|| {
                    panic!("{name}: no type {kind} in {:?}", actual.per_type.keys())
                });
                (t.precision, t.recall, t.f1, t.support)
            }
        };
        let what = format!("{name} [{row_name}]");
        close(&what, "precision", &row["precision"], p);
        close(&what, "recall", &row["recall"], r);
        close(&what, "f1-score", &row["f1-score"], f);
        assert_eq!(row["support"].as_u64(), Some(support), "{what} support");
    }
    assert_eq!(types, actual.per_type.len(), "{name}: the same types");
}

#[test]
fn every_fixture_matches_seqeval() {
    let dir = root().join("eval/conll/fixtures");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".expected.json"))
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let gold = root().join(expected["gold"].as_str().unwrap());
        let pred = root().join(expected["pred"].as_str().unwrap());
        let report = evaluate_files(&gold, &pred).unwrap();
        compare(
            &format!("{name} default"),
            &expected["default"],
            &report.default,
        );
        match (&report.strict, expected["strict"].get("error")) {
            (Some(strict), None) => {
                compare(&format!("{name} strict"), &expected["strict"], strict);
                assert!(report.errors.is_empty(), "{name}: {:?}", report.errors);
            }
            (None, Some(_)) => {
                assert_eq!(report.errors.len(), 1, "{name}");
                assert_eq!(report.errors[0].kind, IssueKind::NotIob2);
            }
            (got, want) => panic!("{name}: strict {got:?}, seqeval {want:?}"),
        }
    }
}

#[test]
fn anercorp_test_against_itself_is_perfect() {
    let path = root().join(ANER_TEST);
    let report = evaluate_files(&path, &path).unwrap();
    assert_eq!((report.sentences, report.tokens), (925, 25_008));
    for scores in [&report.default, report.strict.as_ref().unwrap()] {
        for row in [&scores.micro, &scores.macro_, &scores.weighted] {
            assert_eq!((row.precision, row.recall, row.f1), (1.0, 1.0, 1.0));
        }
        assert_eq!(
            scores.per_type.keys().collect::<Vec<_>>(),
            ["LOC", "MISC", "ORG", "PERS"]
        );
    }
    // SOURCE.md's counts are seqeval's default mode; strict IOB2 drops the
    // chunks that start with I-.
    let support: Vec<u64> = report
        .default
        .per_type
        .values()
        .map(|r| r.support)
        .collect();
    assert_eq!(support, [676, 243, 459, 907]);
    let strict = report.strict.unwrap();
    assert!(strict.micro.support < report.default.micro.support);
}

#[test]
fn reading_takes_first_and_last_columns_and_blank_runs() {
    let text = "a x B-PER\nb\tI-PER\r\n\n\n \nc O\n";
    let f = ConllFile::parse(Path::new("t.txt"), text).unwrap();
    assert_eq!(f.sentences.len(), 2);
    assert_eq!(f.sentences[0][0].tag, "B-PER");
    assert_eq!(f.sentences[0][1].tag, "I-PER");
    assert_eq!(f.sentences[1][0].line, 6);
    let err = ConllFile::parse(Path::new("t.txt"), "a O\nlonely\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.txt:2: expected a token and a tag separated by white space"
    );
}

#[test]
fn document_marks_are_comments() {
    // What `arabtag tag --format conll` writes around documents.
    let text = "# id = d1\na B-PER\n\n# id = d2\n# error = d2: cannot read\n\n# id = d3\nb O\n";
    let f = ConllFile::parse(Path::new("t.txt"), text).unwrap();
    assert_eq!(f.sentences.len(), 2);
    assert_eq!(f.sentences[1][0].text, "b");
    // A token that is only `#` is a token.
    let f = ConllFile::parse(Path::new("t.txt"), "# O\n").unwrap();
    assert_eq!(f.sentences[0][0].text, "#");
}

#[test]
fn misaligned_files_are_errors_naming_file_and_line() {
    let gold = ConllFile::parse(Path::new("g.txt"), "a O\nb O\n\nc O\n").unwrap();
    let short = ConllFile::parse(Path::new("p.txt"), "a O\n\nb O\n\nc O\n").unwrap();
    let err = evaluate(&gold, &short).unwrap_err().to_string();
    assert_eq!(err, "p.txt:1: sentence 1 has 1 tokens here, 2 in g.txt:1");
    let other = ConllFile::parse(Path::new("p.txt"), "a O\nB O\n\nc O\n").unwrap();
    let err = evaluate(&gold, &other).unwrap_err().to_string();
    assert_eq!(err, "p.txt:2: token \"B\" differs from \"b\" in g.txt:2");
    let fewer = ConllFile::parse(Path::new("p.txt"), "a O\nb O\n").unwrap();
    let err = evaluate(&gold, &fewer).unwrap_err().to_string();
    assert_eq!(err, "p.txt: 1 sentences, but g.txt has 2");
}
