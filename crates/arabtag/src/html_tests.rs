//! Tests of the HTML views ([`super`]).

use super::*;

fn entity(start: usize, end: usize, kind: &str, text: &str) -> Entity {
    Entity {
        start,
        end,
        kind: kind.into(),
        text: text.into(),
        score: None,
    }
}

#[test]
fn text_and_ids_are_escaped() {
    let text = "قال <script>alert(1)</script> و</mark> بوتين";
    let start = text.chars().position(|c| c == 'ب').unwrap_or(0);
    let e = entity(start, start + 5, "PER", "بوتين");
    let mut page = TagPage::default();
    let record = Record {
        id: "<b>x</b>".into(),
        entities: vec![e],
        segments: Vec::new(),
        error: None,
    };
    let html = page.document(&record, Some(text));
    assert!(!html.contains("<script>") && !html.contains("<b>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("و&lt;/mark&gt;"));
    assert_eq!(html.matches("<mark").count(), 1);
    assert!(html.contains(&format!(
        "data-type=\"PER\" data-start=\"{start}\" data-end=\"{}\"",
        start + 5
    )));
}

#[test]
fn marks_hold_exactly_their_characters_and_crossing_ones_go_below() {
    // Characters, not bytes: Arabic letters are two bytes each.
    let text = "أ بوتين في باكو.";
    let segs = [SegmentView {
        start: 0,
        end: 16,
        labels: vec!["mediation".into()],
        gold: None,
    }];
    let marks = [
        Mark::of(&entity(2, 7, "PER", "")),
        Mark::of(&entity(11, 15, "LOC", "")),
        Mark::of(&entity(5, 9, "ORG", "")),
    ];
    let html = render_text(text, &segs, &marks);
    assert!(html.contains("data-start=\"2\" data-end=\"7\" title=\"PER [2, 7)\">بوتين</mark>"));
    assert!(html.contains(">باكو</mark>"));
    // The ORG mark crosses the PER one: listed after the text, whole.
    let below = &html[html.find("unplaced").unwrap_or(0)..];
    assert!(below.contains("data-type=\"ORG\" data-start=\"5\" data-end=\"9\""));
    assert!(below.contains(">ين ف</mark>"));
    assert!(html.contains("<span class=\"st\" data-label=\"mediation\">mediation</span>"));
}

#[test]
fn a_mark_running_past_its_sentence_keeps_the_sentence_around_it() {
    let text = "بوتين. موسكو";
    let segs = [
        SegmentView {
            start: 0,
            end: 6,
            labels: vec![],
            gold: None,
        },
        SegmentView {
            start: 7,
            end: 12,
            labels: vec![],
            gold: None,
        },
    ];
    let marks = [Mark::of(&entity(0, 9, "ORG", ""))];
    let html = render_text(text, &segs, &marks);
    assert!(html.contains(">بوتين. مو</mark>"), "{html}");
    assert_eq!(html.matches("<span class=\"seg\"").count(), 2);
    // Every character is there once.
    let stripped: String = {
        let mut s = String::new();
        let mut tag = false;
        for c in html.chars() {
            match c {
                '<' => tag = true,
                '>' => tag = false,
                c if !tag => s.push(c),
                _ => {}
            }
        }
        s
    };
    assert_eq!(stripped, text);
}

#[test]
fn diff_marks_follow_the_scorers_matching() {
    let gold = [
        entity(0, 5, "PER", ""),
        entity(10, 14, "LOC", ""),
        entity(20, 25, "ORG", ""),
        entity(30, 35, "LOC", ""),
    ];
    let pred = [
        entity(0, 5, "PER", ""),
        entity(10, 14, "ORG", ""),
        entity(19, 25, "ORG", ""),
        entity(40, 44, "DATE", ""),
    ];
    let marks = diff_marks(&gold, &pred, &|_| true);
    let diffs: Vec<(usize, &str)> = marks
        .iter()
        .map(|m| (m.start, m.diff.unwrap_or("")))
        .collect();
    assert_eq!(
        diffs,
        [
            (0, "correct"),
            (10, "type"),
            (19, "boundary"),
            (40, "spurious"),
            (30, "missed")
        ]
    );
    assert_eq!(marks[2].gold, Some((20, 25, "ORG".into())));
}

#[test]
fn a_failed_or_missing_prediction_shows_every_gold_mention_missed() {
    let gold = |id: &str| Record {
        id: id.into(),
        entities: vec![entity(0, 5, "PER", "بوتين")],
        segments: Vec::new(),
        error: None,
    };
    let mut pred = HashMap::new();
    pred.insert("a".to_string(), Record::error("a", "boom <x>"));
    let types = ["PER".to_string()];
    let page = eval_page("", &types, &[gold("a"), gold("b")], &pred, &|_| {
        Some("بوتين قال".to_string())
    });
    assert!(page.contains("prediction error: boom &lt;x&gt;"));
    assert!(page.contains("no prediction for this document"));
    assert_eq!(page.matches("data-diff=\"missed\"").count(), 2);
}

#[test]
fn variants_group_spellings() {
    assert_eq!(variant_key("أرْدوغان"), variant_key("اردوغان"));
    assert_eq!(variant_key("الكرملين  "), "الكرملين");
    assert_eq!(variant_key("موسكـو"), "موسكو");
}

#[test]
fn markdown_tables_become_html_tables() {
    let html = markdown_html("# E\n\n| a | b |\n|---|--:|\n| 1 | <2> |\n\ntext");
    assert_eq!(
        html,
        "<div class=\"report\" dir=\"ltr\"><h2>E</h2><table><tr><th>a</th><th>b</th></tr>\
         <tr><td>1</td><td>&lt;2&gt;</td></tr></table><p>text</p></div>"
    );
}
