//! Validation and the document-level flow on JSONL fixtures.

use std::collections::BTreeMap;

use super::*;

const TEXT_A: &str = "التقى بوتين في باكو. وأرمينيا تتفاوض.";
const TEXT_B: &str = "قصف في ناغورنو كاراباخ. نفط من بحر قزوين.";

fn texts() -> Docs {
    Docs::Memory(BTreeMap::from([
        ("a".to_string(), TEXT_A.to_string()),
        ("b".to_string(), TEXT_B.to_string()),
    ]))
}

/// Gold for both documents, offsets in characters:
/// a: بوتين [6,11) PER, باكو [15,19) LOC, أرمينيا [22,29) LOC;
///    segments [0,20) mediation, [21,37) mediation
/// b: ناغورنو كاراباخ [7,22) LOC, بحر قزوين [31,40) LOC;
///    segments [0,23) conflict, [24,41) energy
const GOLD: &str = r#"{"id":"a","entities":[{"start":6,"end":11,"type":"PER","text":"بوتين"},{"start":15,"end":19,"type":"LOC","text":"باكو"},{"start":22,"end":29,"type":"LOC","text":"أرمينيا"}],"segments":[{"start":0,"end":20,"labels":["mediation"]},{"start":21,"end":37,"labels":["mediation"]}]}
{"id":"b","entities":[{"start":7,"end":22,"type":"LOC","text":"ناغورنو كاراباخ"},{"start":31,"end":40,"type":"LOC","text":"بحر قزوين"}],"segments":[{"start":0,"end":23,"labels":["conflict"]},{"start":24,"end":41,"labels":["energy"]}]}
"#;

fn file(name: &str, text: &str) -> RecordFile {
    RecordFile::from_reader(name, text.as_bytes())
}

fn run(gold: &str, pred: &str, docs: &Docs) -> Report {
    evaluate(
        &file("gold.jsonl", gold),
        &file("pred.jsonl", pred),
        docs,
        &TypeSet::default(),
    )
    .report
}

fn only(report: &Report) -> &Issue {
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    &report.errors[0]
}

#[test]
fn the_fixture_offsets_are_right() {
    let a = CharText::new(TEXT_A);
    assert_eq!(a.slice(6, 11), Some("بوتين"));
    assert_eq!(a.slice(22, 29), Some("أرمينيا"));
    assert_eq!(a.len(), 37);
    let b = CharText::new(TEXT_B);
    assert_eq!(b.slice(7, 22), Some("ناغورنو كاراباخ"));
    assert_eq!(b.slice(31, 40), Some("بحر قزوين"));
    assert_eq!(b.len(), 41);
}

#[test]
fn gold_against_itself_is_perfect() {
    for docs in [Docs::None, texts()] {
        let r = run(GOLD, GOLD, &docs);
        assert!(r.errors.is_empty(), "{:#?}", r.errors);
        assert_eq!(r.scored_documents, 2);
        for mode in crate::entities::Mode::ALL {
            assert_eq!(r.entities.mode(mode).f1, 1.0);
        }
        assert_eq!((r.segments.micro_f1, r.segments.units), (1.0, 4));
        assert_eq!((r.documents.micro_f1, r.documents.units), (1.0, 2));
        // energy is in gold (doc b), so its per-label F1 is 1; all three count in macro
        assert_eq!(r.segments.macro_f1, 1.0);
    }
}

#[test]
fn a_missing_document_is_listed_and_all_missed() {
    let pred = GOLD.lines().next().unwrap();
    let r = run(GOLD, pred, &texts());
    assert!(r.errors.is_empty());
    assert_eq!(r.missing, ["b"]);
    assert_eq!(r.missing_detail[0].reason, "no prediction");
    // entities: a's 3 COR, b's 2 LOC MIS → P = 3/3, R = 3/5, F1 = 2·0.6/1.6 = 0.75
    let s = &r.entities.strict;
    assert_eq!((s.cor, s.mis, s.pos, s.act), (3, 2, 5, 3));
    assert!((s.recall - 0.6).abs() < 1e-12 && (s.f1 - 0.75).abs() < 1e-12);
    // segments: mediation TP 2; conflict FN 1; energy FN 1 → micro P = 2/2,
    // R = 2/4, F1 = 2/3; macro P = (1 + 0 + 0)/3, R = (1 + 0 + 0)/3, F1 = 1/3
    assert!((r.segments.micro_f1 - 2.0 / 3.0).abs() < 1e-12);
    assert!((r.segments.macro_f1 - 1.0 / 3.0).abs() < 1e-12);
    // documents: a {mediation} TP; b {conflict, energy} FN 2 → micro F1 = 2·1·(1/3)/(4/3) = 1/2
    assert!((r.documents.micro_f1 - 0.5).abs() < 1e-12);
    assert!(r.to_markdown().contains("- `b`: no prediction"));
}

#[test]
fn an_error_record_counts_as_missing() {
    let pred = format!(
        "{}\n{{\"id\":\"b\",\"error\":\"invalid UTF-8\"}}\n",
        GOLD.lines().next().unwrap()
    );
    let r = run(GOLD, &pred, &texts());
    assert!(r.errors.is_empty());
    assert_eq!(r.missing, ["b"]);
    assert_eq!(r.missing_detail[0].reason, "an error record: invalid UTF-8");
}

#[test]
fn a_wrong_span_text_is_an_error_naming_document_and_offsets() {
    // باكو claimed at [14,18) (one character early)
    let pred = GOLD.replacen(r#""start":15,"end":19"#, r#""start":14,"end":18"#, 1);
    let r = run(GOLD, &pred, &texts());
    let e = only(&r);
    assert_eq!(e.kind, IssueKind::TextMismatch);
    assert_eq!(
        (e.line, e.document.as_deref(), e.start, e.end),
        (Some(1), Some("a"), Some(14), Some(18))
    );
    assert_eq!(
        e.to_string(),
        "pred.jsonl:1: document a: entity LOC [14, 18): text \"باكو\" differs from the document's \" باك\""
    );
    // the prediction is unusable: document a counts as missing, b is scored
    assert_eq!(r.missing, ["a"]);
    assert_eq!(r.missing_detail[0].reason, "an invalid prediction");
    assert_eq!(r.entities.strict.cor, 2);
    assert_eq!(r.entities.strict.mis, 3);

    // Without the texts only the length can be checked: [14,18) has 4
    // characters like باكو, so it passes (and scores as an overlap).
    let r = run(GOLD, &pred, &Docs::None);
    assert!(r.errors.is_empty());
    assert_eq!(r.entities.partial.par, 1);
    // a length that disagrees is caught
    let pred = GOLD.replacen(r#""start":15,"end":19"#, r#""start":15,"end":20"#, 1);
    let e = only(&run(GOLD, &pred, &Docs::None)).to_string();
    assert_eq!(
        e,
        "pred.jsonl:1: document a: entity LOC [15, 20): text \"باكو\" has 4 characters, the span 5"
    );
}

#[test]
fn spans_out_of_order_or_beyond_the_text() {
    let pred = GOLD.replacen(r#""start":0,"end":20,"#, r#""start":20,"end":0,"#, 1);
    let e = only(&run(GOLD, &pred, &Docs::None)).clone();
    assert_eq!(e.kind, IssueKind::SpanOrder);
    assert_eq!(
        e.to_string(),
        "pred.jsonl:1: document a: segment [20, 0): start is after end"
    );

    let pred = GOLD.replacen(r#""start":24,"end":41"#, r#""start":24,"end":45"#, 1);
    let r = run(GOLD, &pred, &texts());
    let e = only(&r);
    assert_eq!(e.kind, IssueKind::SpanRange);
    assert_eq!(
        e.to_string(),
        "pred.jsonl:2: document b: segment [24, 45): ends beyond the text (41 characters)"
    );
    // without the texts nothing can be seen (the segment has no text)
    assert!(run(GOLD, &pred, &Docs::None).errors.is_empty());
}

#[test]
fn a_segment_text_is_checked_when_present() {
    let pred = GOLD.replacen(
        r#"{"start":0,"end":20,"labels":["mediation"]}"#,
        r#"{"start":0,"end":20,"labels":["mediation"],"text":"التقى بوتين في باكو!"}"#,
        1,
    );
    let e = only(&run(GOLD, &pred, &texts())).clone();
    assert_eq!(e.kind, IssueKind::TextMismatch);
    assert!(e.message.starts_with("segment [0, 20): text"), "{e}");
    let good = pred.replace("باكو!", "باكو.");
    assert!(run(GOLD, &good, &texts()).errors.is_empty());
}

#[test]
fn a_prediction_for_an_unknown_document_is_an_error() {
    let pred = format!("{GOLD}{{\"id\":\"zzz\"}}\n");
    let r = run(GOLD, &pred, &texts());
    let e = only(&r);
    assert_eq!(e.kind, IssueKind::UnknownDocument);
    assert_eq!(
        e.to_string(),
        "pred.jsonl:3: document zzz: a prediction for \"zzz\", which is not in gold.jsonl"
    );
    // the rest is scored
    assert_eq!(r.entities.strict.f1, 1.0);
}

#[test]
fn overlapping_gold_entities_exclude_the_document() {
    // بوتين في [6,14) ORG overlaps بوتين [6,11) PER
    let gold = GOLD.replacen(
        r#"{"start":15,"end":19,"type":"LOC","text":"باكو"}"#,
        r#"{"start":15,"end":19,"type":"LOC","text":"باكو"},{"start":6,"end":14,"type":"ORG","text":"بوتين في"}"#,
        1,
    );
    let r = run(&gold, GOLD, &texts());
    let e = only(&r);
    assert_eq!(e.kind, IssueKind::OverlappingGold);
    assert_eq!(
        e.to_string(),
        "gold.jsonl:1: document a: gold entities PER [6, 11) and ORG [6, 14) overlap"
    );
    assert_eq!(r.excluded, ["a"]);
    assert_eq!(r.scored_documents, 1);
    // only b is scored, and its prediction for a is no "unknown document"
    assert_eq!(r.entities.strict.pos, 2);
    assert_eq!(r.entities.strict.f1, 1.0);
}

#[test]
fn duplicate_ids() {
    let a = GOLD.lines().next().unwrap();
    let gold = format!("{GOLD}{a}\n");
    let r = run(&gold, GOLD, &texts());
    let e = only(&r);
    assert_eq!(e.kind, IssueKind::DuplicateId);
    assert_eq!(
        e.to_string(),
        "gold.jsonl:3: document a: the id \"a\" is given again (first on line 1)"
    );
    assert_eq!(r.excluded, ["a"]);

    let pred = format!("{GOLD}{a}\n");
    let r = run(GOLD, &pred, &texts());
    assert_eq!(only(&r).file, "pred.jsonl");
    assert_eq!(r.missing, ["a"]);
    assert_eq!(r.missing_detail[0].reason, "more than one prediction");
}

#[test]
fn unknown_stance_labels() {
    let pred = GOLD.replacen(r#"["energy"]"#, r#"["energy","peace"]"#, 1);
    let r = run(GOLD, &pred, &texts());
    let e = only(&r);
    assert_eq!(e.kind, IssueKind::UnknownLabel);
    assert_eq!(
        e.to_string(),
        "pred.jsonl:2: document b: segment [24, 41): unknown label \"peace\" (the guideline's are mediation, conflict, energy)"
    );
    assert_eq!(r.missing, ["b"]);
}

#[test]
fn a_malformed_line_names_file_and_line_and_the_rest_is_scored() {
    let mut lines: Vec<&str> = GOLD.lines().collect();
    lines.insert(1, r#"{"id": "c", "entities": [{"start": 1}]}"#);
    let pred = lines.join("\n");
    let r = run(GOLD, &pred, &texts());
    let e = only(&r);
    assert_eq!(e.kind, IssueKind::Parse);
    assert_eq!(e.line, Some(2));
    assert!(
        e.to_string()
            .starts_with("pred.jsonl:2: invalid record: missing field `end`"),
        "{e}"
    );
    assert!(r.missing.is_empty());
    assert_eq!(r.entities.strict.f1, 1.0);
}

#[test]
fn a_gold_error_record_is_excluded() {
    let gold = format!("{GOLD}{{\"id\":\"c\",\"error\":\"boom\"}}\n");
    let r = run(&gold, GOLD, &texts());
    assert_eq!(only(&r).kind, IssueKind::ErrorRecord);
    assert_eq!(r.excluded, ["c"]);
}

#[test]
fn document_texts_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), TEXT_A).unwrap();
    std::fs::write(dir.path().join("b.txt"), [0xff, 0xfe]).unwrap();
    let gold = format!("{GOLD}{{\"id\":\"../a\"}}\n{{\"id\":\"c\"}}\n");
    let ev = evaluate(
        &file("gold.jsonl", &gold),
        &file("pred.jsonl", GOLD),
        &Docs::Dir(dir.path().to_owned()),
        &TypeSet::default(),
    );
    let r = &ev.report;
    let kinds: Vec<_> = r
        .errors
        .iter()
        .map(|e| (e.kind, e.document.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            (IssueKind::DocText, Some("b")),
            (IssueKind::DocText, Some("../a")),
            (IssueKind::DocText, Some("c")),
        ]
    );
    assert!(
        r.errors[0]
            .message
            .ends_with("is not UTF-8: invalid utf-8 sequence of 1 bytes from index 0"),
        "{}",
        r.errors[0]
    );
    assert_eq!(r.excluded, ["b", "../a", "c"]);
    assert_eq!(
        ev.doc_files,
        [DocFile {
            id: "a".into(),
            path: dir.path().join("a.txt")
        }]
    );
    assert_eq!(r.entities.strict.f1, 1.0);
}

#[test]
fn json_has_the_promised_keys() {
    let r = run(GOLD, GOLD, &texts());
    let v = serde_json::to_value(&r).unwrap();
    for mode in ["strict", "exact", "partial", "type", "clitic"] {
        for k in [
            "precision",
            "recall",
            "f1",
            "cor",
            "inc",
            "par",
            "mis",
            "spu",
            "pos",
            "act",
        ] {
            assert!(v["entities"][mode][k].is_number(), "entities.{mode}.{k}");
        }
        for k in ["precision", "recall", "f1"] {
            assert!(
                v["entities"][mode]["macro"][k].is_number(),
                "entities.{mode}.macro.{k}"
            );
        }
    }
    for t in ["PER", "ORG", "LOC", "DATE"] {
        for k in ["precision", "recall", "f1", "tp", "fp", "fn"] {
            assert!(
                v["entities"]["per_type"][t][k].is_number(),
                "per_type.{t}.{k}"
            );
        }
        for mode in ["strict", "exact", "partial", "type", "clitic"] {
            assert!(v["entities"]["per_type"][t][mode]["f1"].is_number());
        }
    }
    assert!(v["segments"]["macro_f1"].is_number() && v["segments"]["micro_f1"].is_number());
    for label in ["mediation", "conflict", "energy"] {
        assert!(v["segments"]["per_label"][label]["f1"].is_number());
        assert!(v["documents"]["per_label"][label]["fn"].is_number());
    }
    assert!(v["documents"]["micro_f1"].is_number());
    assert_eq!(v["types"], serde_json::json!(["PER", "ORG", "LOC"]));
    assert!(v["missing"].is_array() && v["errors"].is_array() && v["excluded"].is_array());
}
