//! Self-contained HTML views (inline CSS and script, no network, right to
//! left): `arabtag tag --format html` shows each document with its entities
//! and stance labels under a batch summary; `arabtag eval --html` shows gold
//! against prediction with every difference marked, under the score tables.
//!
//! The contract for scripts and tests (README, "Seeing it"): every entity
//! mark is `<mark data-type data-start data-end>`, offsets in characters of
//! the original text, its text content exactly that slice; every mark of
//! the eval view also has `data-diff`: `correct` (same boundaries and
//! type), `type` (same boundaries, another type), `boundary` (overlapping,
//! other boundaries; `data-gold-*` name the gold mention), `missed` (gold,
//! unmatched) or `spurious` (predicted, unmatched), from the scorer's own
//! one-to-one matching. A mark that would cross one already placed is
//! listed after its document's text (`class="unplaced"`), never dropped.
//! Each sentence is `<span class="seg" data-start data-end data-labels>`.
//!
//! The page is written as the documents come (the summary, placed last in
//! the file, is shown first by CSS), so memory does not grow with the batch
//! beyond the summary's counts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use arabtag_eval::entities::Mention;
use arabtag_eval::matching::{Tier, best_matching};
use arabtag_infer::pipeline::document_labels;
use arabtag_records::{Entity, Record, Segment};

/// The stance labels, in display order.
const LABELS: [&str; 3] = ["mediation", "conflict", "energy"];
/// Entity types with a colour of their own (others get a grey one).
const TYPES: [&str; 4] = ["PER", "ORG", "LOC", "DATE"];
/// Most frequent entities listed in the summary.
const TOP: usize = 20;

/// `s` escaped for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One mark over `[start, end)` characters.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub start: usize,
    pub end: usize,
    pub kind: String,
    /// The eval view's difference; `None` in the tag view.
    pub diff: Option<&'static str>,
    /// The gold mention a `type` or `boundary` mark was matched with.
    pub gold: Option<(usize, usize, String)>,
    pub score: Option<f64>,
}

impl Mark {
    fn of(e: &Entity) -> Self {
        Self {
            start: e.start,
            end: e.end,
            kind: e.kind.clone(),
            diff: None,
            gold: None,
            score: e.score,
        }
    }

    fn html(&self, text: &str) -> String {
        let mut attrs = format!(
            "data-type=\"{}\" data-start=\"{}\" data-end=\"{}\"",
            escape(&self.kind),
            self.start,
            self.end
        );
        let mut title = format!("{} [{}, {})", self.kind, self.start, self.end);
        if let Some(diff) = self.diff {
            let _ = write!(attrs, " data-diff=\"{diff}\"");
            let _ = write!(title, " {diff}");
        }
        if let Some((s, e, kind)) = &self.gold {
            let _ = write!(
                attrs,
                " data-gold-type=\"{}\" data-gold-start=\"{s}\" data-gold-end=\"{e}\"",
                escape(kind)
            );
            let _ = write!(title, "; gold {kind} [{s}, {e})");
        }
        if let Some(score) = self.score {
            let _ = write!(title, "; score {score:.3}");
        }
        let class = if TYPES.contains(&self.kind.as_str()) {
            self.kind.clone()
        } else {
            "OTHER".to_string()
        };
        format!(
            "<mark class=\"t-{class}\" {attrs} title=\"{}\">{}</mark>",
            escape(&title),
            escape(text)
        )
    }
}

/// A sentence as shown: its span and labels (the eval view: predicted and
/// gold).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentView {
    pub start: usize,
    pub end: usize,
    pub labels: Vec<String>,
    pub gold: Option<Vec<String>>,
}

impl SegmentView {
    fn of(s: &Segment) -> Self {
        Self {
            start: s.start,
            end: s.end,
            labels: s.labels.clone(),
            gold: None,
        }
    }

    fn badges(&self) -> String {
        let mut out = String::new();
        for label in &self.labels {
            let diff = match &self.gold {
                Some(gold) if gold.contains(label) => " data-diff=\"correct\"",
                Some(_) => " data-diff=\"spurious\"",
                None => "",
            };
            let _ = write!(
                out,
                "<span class=\"st\" data-label=\"{0}\"{diff}>{0}</span>",
                escape(label)
            );
        }
        for label in self.gold.iter().flatten() {
            if !self.labels.contains(label) {
                let _ = write!(
                    out,
                    "<span class=\"st\" data-label=\"{0}\" data-diff=\"missed\">{0}</span>",
                    escape(label)
                );
            }
        }
        out
    }
}

/// Byte offsets of every character boundary of `text` (one past the last
/// character included).
fn boundaries(text: &str) -> Vec<usize> {
    let mut b: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    b.push(text.len());
    b
}

/// The body of one document: its text with the sentences as spans and the
/// marks inside them, then the marks that could not be placed inline.
pub fn render_text(text: &str, segments: &[SegmentView], marks: &[Mark]) -> String {
    let at = boundaries(text);
    let n = at.len() - 1;
    let slice = |a: usize, b: usize| &text[at[a.min(n)]..at[b.min(n)]];
    // Marks in text order; one crossing a mark already placed goes below.
    let mut sorted: Vec<&Mark> = marks
        .iter()
        .filter(|m| m.start < m.end && m.end <= n)
        .collect();
    sorted.sort_by(|a, b| (a.start, b.end, &a.kind).cmp(&(b.start, a.end, &b.kind)));
    let (mut inline, mut unplaced) = (Vec::new(), Vec::new());
    let mut last = 0;
    for m in sorted {
        if m.start >= last {
            last = m.end;
            inline.push(m);
        } else {
            unplaced.push(m);
        }
    }
    unplaced.extend(marks.iter().filter(|m| !(m.start < m.end && m.end <= n)));
    // Sentences widened so that no inline mark crosses their ends.
    let mut segs: Vec<(usize, usize, &SegmentView)> = Vec::new();
    let mut next = 0;
    let mut sorted_segs: Vec<&SegmentView> = segments.iter().collect();
    sorted_segs.sort_by_key(|s| (s.start, s.end));
    for s in sorted_segs {
        let mut start = s.start.max(next).min(n);
        // A mark running into the sentence from before it stays outside.
        if let Some(m) = inline.iter().find(|m| m.start < start && m.end > start) {
            start = m.end;
        }
        let mut end = s.end.max(start).min(n);
        // A mark starting inside the sentence ends inside it.
        if let Some(m) = inline
            .iter()
            .find(|m| m.start >= start && m.start < end && m.end > end)
        {
            end = m.end;
        }
        segs.push((start, end, s));
        next = end;
    }
    let emit = |out: &mut String, a: usize, b: usize, inline: &[&Mark]| {
        let mut p = a;
        for m in inline.iter().filter(|m| m.start >= a && m.end <= b) {
            out.push_str(&escape(slice(p, m.start)));
            out.push_str(&m.html(slice(m.start, m.end)));
            p = m.end;
        }
        out.push_str(&escape(slice(p, b)));
    };
    let mut out = String::new();
    let mut p = 0;
    for (start, end, s) in segs {
        emit(&mut out, p, start, &inline);
        let _ = write!(
            out,
            "<span class=\"seg\" data-start=\"{}\" data-end=\"{}\" data-labels=\"{}\">{}",
            s.start,
            s.end,
            escape(&s.labels.join(" ")),
            s.badges()
        );
        emit(&mut out, start, end, &inline);
        out.push_str("</span>");
        p = end;
    }
    emit(&mut out, p, n, &inline);
    if !unplaced.is_empty() {
        out.push_str("<div class=\"unplaced\" dir=\"rtl\">");
        for m in unplaced {
            let body = if m.end <= n && m.start < m.end {
                slice(m.start, m.end).to_string()
            } else {
                String::new()
            };
            out.push_str(&m.html(&body));
        }
        out.push_str("</div>");
    }
    out
}

const STYLE: &str = r#"
:root{--per:#ffd6a5;--org:#caffbf;--loc:#9bf6ff;--date:#e4c1f9;--other:#ddd}
body{font:17px/1.9 "Noto Naskh Arabic","Amiri","Segoe UI",Tahoma,sans-serif;margin:0;display:flex;flex-direction:column;background:#fafafa;color:#111}
header{order:-2;background:#fff;border-bottom:1px solid #ccc;padding:.5em 1.5em}
nav.docs{order:-1;padding:.3em 1.5em;font-size:.8em;max-height:8em;overflow:auto;border-bottom:1px solid #ddd;background:#fff}
nav.docs a{margin-inline-end:.8em}
main{padding:0 1.5em}
article{background:#fff;border:1px solid #ddd;border-radius:6px;margin:1em 0;padding:.5em 1em;content-visibility:auto;contain-intrinsic-size:auto 20em}
article h2{font-size:1em;margin:.2em 0;direction:ltr;text-align:right;font-family:monospace}
.text{white-space:pre-wrap}
mark{unicode-bidi:isolate;border-radius:3px;padding:0 .15em;background:var(--other)}
mark::after{content:attr(data-type);font:bold .6em monospace;vertical-align:super;margin-inline-start:.2em;color:#333}
mark.t-PER{background:var(--per)}mark.t-ORG{background:var(--org)}mark.t-LOC{background:var(--loc)}mark.t-DATE{background:var(--date)}
mark[data-diff]::after{content:attr(data-type) " " attr(data-diff)}
mark[data-diff=correct]{outline:2px solid #2a2}
mark[data-diff=missed]{background:none;outline:2px dashed #d22}
mark[data-diff=spurious]{outline:2px dotted #d22;text-decoration:line-through}
mark[data-diff=type]{outline:3px double #e80}
mark[data-diff=boundary]{outline:2px solid #e80;text-decoration:underline wavy #e80}
.st{font:.65em sans-serif;border:1px solid #888;border-radius:8px;padding:0 .4em;margin-inline-end:.2em;vertical-align:middle}
.st[data-label=mediation]{background:#e0f0ff}.st[data-label=conflict]{background:#ffe0e0}.st[data-label=energy]{background:#fff4c0}
.st[data-diff=missed]{border-style:dashed;opacity:.7}.st[data-diff=spurious]{text-decoration:line-through}
.unplaced{font-size:.85em;border-top:1px dashed #ccc;margin-top:.4em}
.error{color:#b00;direction:ltr;text-align:left}
table{border-collapse:collapse;margin:.3em 0;font-size:.85em}td,th{border:1px solid #ccc;padding:.1em .5em}
.summary{display:flex;flex-wrap:wrap;gap:1.5em}
.filters label{margin-inline-end:1em}
.variants{color:#666;font-size:.85em}
body.hide-PER mark.t-PER,body.hide-ORG mark.t-ORG,body.hide-LOC mark.t-LOC,body.hide-DATE mark.t-DATE,body.hide-OTHER mark.t-OTHER{background:none;outline:none}
body.hide-PER mark.t-PER::after,body.hide-ORG mark.t-ORG::after,body.hide-LOC mark.t-LOC::after,body.hide-DATE mark.t-DATE::after,body.hide-OTHER mark.t-OTHER::after{content:none}
article.filtered{display:none}
"#;

const SCRIPT: &str = r#"
document.querySelectorAll('input[data-type]').forEach(function(box){
  box.addEventListener('change',function(){document.body.classList.toggle('hide-'+box.dataset.type,!box.checked);});
});
var pick=document.getElementById('label-filter');
if(pick){pick.addEventListener('change',function(){
  var want=pick.value;
  document.querySelectorAll('article').forEach(function(a){
    var labels=(a.dataset.labels||'').split(' ');
    a.classList.toggle('filtered',want!==''&&labels.indexOf(want)<0);
  });
});}
"#;

/// The page's head and opening tags.
pub fn page_start(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"ar\" dir=\"rtl\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width\">\n<title>{}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(title)
    )
}

/// The type checkboxes and the label filter.
fn filters(types: &[String]) -> String {
    let mut out = String::from("<div class=\"filters\">");
    for t in types {
        let _ = write!(
            out,
            "<label><input type=\"checkbox\" checked data-type=\"{0}\"><mark class=\"t-{1}\" \
             data-role=\"legend\">{0}</mark></label>",
            escape(t),
            if TYPES.contains(&t.as_str()) {
                t.as_str()
            } else {
                "OTHER"
            }
        );
    }
    out.push_str(
        "<label>stance <select id=\"label-filter\"><option value=\"\">all documents</option>",
    );
    for l in LABELS {
        let _ = write!(out, "<option value=\"{l}\">{l}</option>");
    }
    out.push_str("</select></label></div>");
    out
}

/// A name's form for grouping spelling variants: no tashkeel or tatweel,
/// alef forms as bare alef, alef maqsura as ya, ta marbuta as ha, spaces
/// collapsed.
fn variant_key(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}' => {}
            'أ' | 'إ' | 'آ' | 'ٱ' => out.push('ا'),
            'ى' => out.push('ي'),
            'ة' => out.push('ه'),
            c if c.is_whitespace() => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            c => out.push(c),
        }
    }
    out.trim().to_string()
}

/// A name's spellings and how often each was seen.
type Spellings = BTreeMap<String, usize>;

/// The batch summary, counted as documents are added.
#[derive(Debug, Default)]
pub struct Summary {
    documents: usize,
    errors: usize,
    per_type: BTreeMap<String, usize>,
    /// (type, variant key) → spelling → count.
    names: HashMap<(String, String), Spellings>,
    docs_per_label: BTreeMap<String, usize>,
    segments_per_label: BTreeMap<String, usize>,
    segments: usize,
    /// Document ids and their anchors, for the links.
    links: Vec<(String, String)>,
}

impl Summary {
    fn add(&mut self, record: &Record, anchor: &str) {
        self.documents += 1;
        self.links.push((record.id.clone(), anchor.to_string()));
        if record.error.is_some() {
            self.errors += 1;
            return;
        }
        for e in &record.entities {
            *self.per_type.entry(e.kind.clone()).or_default() += 1;
            *self
                .names
                .entry((e.kind.clone(), variant_key(&e.text)))
                .or_default()
                .entry(e.text.clone())
                .or_default() += 1;
        }
        for s in &record.segments {
            self.segments += 1;
            for l in &s.labels {
                *self.segments_per_label.entry(l.clone()).or_default() += 1;
            }
        }
        for l in document_labels(&record.segments) {
            *self.docs_per_label.entry(l).or_default() += 1;
        }
    }

    /// The header (summary, filters) and the document links.
    fn html(&self, title: &str, extra: &str) -> String {
        let mut out = format!("<header>\n<h1>{}</h1>\n{extra}", escape(title));
        let _ = write!(
            out,
            "<div class=\"summary\"><div><table><tr><th>documents</th><td>{}</td></tr>\
             <tr><th>errors</th><td>{}</td></tr><tr><th>sentences</th><td>{}</td></tr>",
            self.documents, self.errors, self.segments
        );
        for (t, n) in &self.per_type {
            let _ = write!(out, "<tr><th>{} entities</th><td>{n}</td></tr>", escape(t));
        }
        out.push_str("</table></div><div><table><tr><th>stance</th><th>documents</th><th>sentences</th></tr>");
        for l in LABELS {
            let _ = write!(
                out,
                "<tr><th>{l}</th><td>{}</td><td>{}</td></tr>",
                self.docs_per_label.get(l).copied().unwrap_or(0),
                self.segments_per_label.get(l).copied().unwrap_or(0)
            );
        }
        out.push_str("</table></div><div><table><tr><th>entity</th><th>type</th><th>mentions</th><th>spellings</th></tr>");
        let mut names: Vec<(&(String, String), usize, &Spellings)> = self
            .names
            .iter()
            .map(|(k, v)| (k, v.values().sum(), v))
            .collect();
        names.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        for ((kind, _), total, spellings) in names.into_iter().take(TOP) {
            let mut forms: Vec<(&String, &usize)> = spellings.iter().collect();
            forms.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            let shown = forms.first().map_or("", |f| f.0.as_str());
            let variants: Vec<String> = forms
                .iter()
                .map(|(f, n)| format!("{} ×{n}", escape(f)))
                .collect();
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{total}</td><td class=\"variants\">{}</td></tr>",
                escape(shown),
                escape(kind),
                variants.join("، ")
            );
        }
        out.push_str("</table></div></div>\n");
        let mut types: Vec<String> = TYPES.iter().map(|t| (*t).to_string()).collect();
        for t in self.per_type.keys() {
            if !types.contains(t) {
                types.push(t.clone());
            }
        }
        out.push_str(&filters(&types));
        out.push_str("\n</header>\n<nav class=\"docs\">");
        for (id, anchor) in &self.links {
            let _ = write!(out, "<a dir=\"ltr\" href=\"#{anchor}\">{}</a> ", escape(id));
        }
        out.push_str("</nav>\n");
        out
    }
}

/// One document's article: its id, its stance labels (the union of its
/// sentences', as the records' document labels are), and `body`.
fn article(anchor: &str, record: &Record, body: &str) -> String {
    format!(
        "<article id=\"{anchor}\" data-id=\"{0}\" data-labels=\"{1}\">\n<h2>{0}</h2>\n{body}\n</article>\n",
        escape(&record.id),
        escape(&document_labels(&record.segments).join(" ")),
    )
}

/// A document's rendered text, or `message` when there is none.
fn text_or(body: Option<String>, message: &str) -> String {
    match body {
        Some(body) => format!("<div class=\"text\" dir=\"rtl\">{body}</div>"),
        None => format!("<p class=\"error\">{}</p>", escape(message)),
    }
}

/// The tag view, written as the documents come.
#[derive(Debug, Default)]
pub struct TagPage {
    summary: Summary,
}

impl TagPage {
    /// The article of one tagged document (`text`: `None` for an input
    /// that could not be read).
    pub fn document(&mut self, record: &Record, text: Option<&str>) -> String {
        let anchor = format!("doc-{}", self.summary.documents + 1);
        self.summary.add(record, &anchor);
        let body = match &record.error {
            Some(message) => text_or(None, &format!("error: {message}")),
            None => text_or(
                text.map(|t| {
                    let marks: Vec<Mark> = record.entities.iter().map(Mark::of).collect();
                    let segs: Vec<SegmentView> =
                        record.segments.iter().map(SegmentView::of).collect();
                    render_text(t, &segs, &marks)
                }),
                "no text for this document",
            ),
        };
        article(&anchor, record, &body)
    }

    /// The summary, links, script and closing tags.
    pub fn finish(&self) -> String {
        format!(
            "</main>\n{}<script>{SCRIPT}</script>\n</body>\n</html>\n",
            self.summary.html("arabtag tag", "")
        )
    }
}

/// The eval view's marks of one document: each predicted mention with its
/// difference, and the missed gold mentions. Mentions whose type `in_set`
/// accepts are matched together, as the scorer's micro counts match them
/// (so the marks count what the score table counts); the others among
/// themselves.
pub fn diff_marks(gold: &[Entity], pred: &[Entity], in_set: &dyn Fn(&str) -> bool) -> Vec<Mark> {
    let mut gold_matched = vec![false; gold.len()];
    let mut pred_pair: Vec<Option<(usize, Tier)>> = vec![None; pred.len()];
    for side in [true, false] {
        let gi: Vec<usize> = (0..gold.len())
            .filter(|&i| in_set(&gold[i].kind) == side)
            .collect();
        let pi: Vec<usize> = (0..pred.len())
            .filter(|&i| in_set(&pred[i].kind) == side)
            .collect();
        let g: Vec<Mention<'_>> = gi.iter().map(|&i| Mention::of(&gold[i])).collect();
        let p: Vec<Mention<'_>> = pi.iter().map(|&i| Mention::of(&pred[i])).collect();
        for (a, b, tier) in best_matching(&g, &p) {
            gold_matched[gi[a]] = true;
            pred_pair[pi[b]] = Some((gi[a], tier));
        }
    }
    let mut marks = Vec::new();
    for (e, pair) in pred.iter().zip(pred_pair) {
        let mut m = Mark::of(e);
        match pair {
            None => m.diff = Some("spurious"),
            Some((_, Tier::Exact)) => m.diff = Some("correct"),
            Some((gi, tier)) => {
                m.diff = Some(if tier == Tier::Boundaries {
                    "type"
                } else {
                    "boundary"
                });
                let ge = &gold[gi];
                m.gold = Some((ge.start, ge.end, ge.kind.clone()));
            }
        }
        marks.push(m);
    }
    for (e, matched) in gold.iter().zip(gold_matched) {
        if !matched {
            let mut m = Mark::of(e);
            m.diff = Some("missed");
            m.score = None;
            marks.push(m);
        }
    }
    marks
}

/// The eval view: `report` (the text report's Markdown) above every gold
/// document with its prediction; `types`: the scorer's type set; `text`
/// gives a document's text.
pub fn eval_page(
    report_markdown: &str,
    types: &[String],
    gold: &[Record],
    pred: &HashMap<String, Record>,
    text: &dyn Fn(&str) -> Option<String>,
) -> String {
    let mut out = page_start("arabtag eval");
    let mut summary = Summary::default();
    for (i, g) in gold.iter().enumerate() {
        let anchor = format!("doc-{}", i + 1);
        let empty = Record::new(g.id.clone());
        let p = pred.get(&g.id).unwrap_or(&empty);
        summary.add(p, &anchor);
        // A failed or missing prediction: every gold mention shows as
        // missed, as the scorer counts it, under a line that says why.
        let note = match (pred.get(&g.id), &p.error) {
            (None, _) => Some("no prediction for this document".to_string()),
            (Some(_), Some(message)) => Some(format!("prediction error: {message}")),
            _ => None,
        };
        let body = text(&g.id).map(|t| {
            let marks = diff_marks(&g.entities, &p.entities, &|t| types.iter().any(|x| x == t));
            let text = render_text(&t, &segment_diffs(&g.segments, &p.segments), &marks);
            match &note {
                Some(note) => format!("<p class=\"error\">{}</p>{text}", escape(note)),
                None => text,
            }
        });
        out.push_str(&article(
            &anchor,
            p,
            &text_or(body, "no text for this document"),
        ));
    }
    let tables = format!(
        "<details open><summary>scores</summary>{}</details>",
        markdown_html(report_markdown)
    );
    out.push_str("</main>\n");
    out.push_str(&summary.html("arabtag eval", &tables));
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out
}

/// Each predicted segment with the labels of the gold segment of the same
/// span; a gold segment no prediction has is shown with its gold labels
/// alone.
fn segment_diffs(gold: &[Segment], pred: &[Segment]) -> Vec<SegmentView> {
    let by_span: HashMap<(usize, usize), &Segment> =
        gold.iter().map(|s| ((s.start, s.end), s)).collect();
    let mut out: Vec<SegmentView> = pred
        .iter()
        .map(|s| SegmentView {
            gold: Some(
                by_span
                    .get(&(s.start, s.end))
                    .map(|g| g.labels.clone())
                    .unwrap_or_default(),
            ),
            ..SegmentView::of(s)
        })
        .collect();
    let predicted: HashSet<(usize, usize)> = pred.iter().map(|s| (s.start, s.end)).collect();
    for g in gold {
        if !predicted.contains(&(g.start, g.end)) {
            out.push(SegmentView {
                start: g.start,
                end: g.end,
                labels: Vec::new(),
                gold: Some(g.labels.clone()),
            });
        }
    }
    out
}

/// The text report's Markdown as HTML: headings, pipe tables, paragraphs.
pub fn markdown_html(md: &str) -> String {
    let mut out = String::from("<div class=\"report\" dir=\"ltr\">");
    let mut in_table = false;
    for line in md.lines() {
        let t = line.trim();
        if t.starts_with('|') {
            let cells: Vec<&str> = t.trim_matches('|').split('|').map(str::trim).collect();
            if cells
                .iter()
                .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
            {
                continue;
            }
            let tag = if in_table { "td" } else { "th" };
            if !in_table {
                out.push_str("<table>");
                in_table = true;
            }
            out.push_str("<tr>");
            for c in cells {
                let _ = write!(out, "<{tag}>{}</{tag}>", escape(c));
            }
            out.push_str("</tr>");
            continue;
        }
        if in_table {
            out.push_str("</table>");
            in_table = false;
        }
        if let Some(h) = t.strip_prefix("## ") {
            let _ = write!(out, "<h3>{}</h3>", escape(h));
        } else if let Some(h) = t.strip_prefix("# ") {
            let _ = write!(out, "<h2>{}</h2>", escape(h));
        } else if !t.is_empty() {
            let _ = write!(out, "<p>{}</p>", escape(t));
        }
    }
    if in_table {
        out.push_str("</table>");
    }
    out.push_str("</div>");
    out
}

#[cfg(test)]
#[path = "html_tests.rs"]
mod tests;
