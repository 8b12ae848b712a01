"""The HTML views in a real browser (Debian's chromium, headless, through
Playwright): the DOM's marks equal the records, the page is right to left,
text is escaped, mixed Arabic and Latin lines keep their order, the eval
view's diff marks count what the score table counts, and a screenshot is
not blank (the screenshots are kept in target/html-shots/ to look at)."""

import json
import shutil
import subprocess

import pytest

from conftest import MODEL, ROOT, required, write_jsonl

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if required("ARABTAG_REQUIRE_BROWSER"):
        raise RuntimeError("chromium is missing and ARABTAG_REQUIRE_BROWSER=1 (apt-get install chromium)")
    pytest.skip("no chromium", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api")

ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SHOTS = ROOT / "target" / "html-shots"

MARKS_JS = """() => [...document.querySelectorAll('article mark[data-type]')].map(m => ({
  id: m.closest('article').dataset.id, type: m.dataset.type,
  start: +m.dataset.start, end: +m.dataset.end, text: m.textContent,
  diff: m.dataset.diff || null}))"""


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with playwright.sync_playwright() as p:
        # Playwright gives the browser a fresh profile (--user-data-dir) of its own.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
        yield page
        browser.close()


def not_blank(png_path):
    from PIL import Image

    img = Image.open(png_path).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, f"{png_path}: {len(colours)} colours"
    whites = sum(n for n, c in colours if c == (255, 255, 255))
    assert whites < 0.99 * img.width * img.height, f"{png_path}: almost all white"


def run(cli, *args):
    out = subprocess.run([str(cli), *map(str, args)], cwd=ROOT, capture_output=True, check=False)
    assert out.returncode == 0, out.stderr.decode()
    return out


@pytest.fixture(scope="module")
def seed_runs(cli, model, seeds, tmp_path_factory):
    d = tmp_path_factory.mktemp("seeds")
    articles = sorted((ROOT / "seeds").glob("*.txt"))
    run(cli, "tag", "--model", model, *articles, "-o", d / "pred.jsonl")
    run(cli, "tag", "--model", model, *articles, "--format", "html", "-o", d / "tag.html")
    out = run(cli, "eval", "--gold", ROOT / "seeds" / "gold.jsonl", "--pred", d / "pred.jsonl",
              "--docs", ROOT / "seeds", "--json", "--html", d / "eval.html")
    records = [json.loads(l) for l in (d / "pred.jsonl").read_text(encoding="utf-8").splitlines()]
    return d, records, json.loads(out.stdout)


def test_the_tag_view_marks_every_entity_of_the_records(page, seed_runs):
    d, records, _ = seed_runs
    page.goto((d / "tag.html").as_uri())
    assert page.evaluate("document.documentElement.dir") == "rtl"
    got = page.evaluate(MARKS_JS)
    want = [
        {"id": r["id"], "type": e["type"], "start": e["start"], "end": e["end"], "text": e["text"], "diff": None}
        for r in records for e in r["entities"]
    ]
    key = lambda m: (m["id"], m["start"], m["end"], m["type"])
    assert sorted(got, key=key) == sorted(want, key=key)
    # Each sentence's labels, as the records have them.
    segs = page.evaluate("""() => [...document.querySelectorAll('article .seg')].map(s =>
        [s.closest('article').dataset.id, +s.dataset.start, +s.dataset.end, s.dataset.labels])""")
    assert segs == [[r["id"], s["start"], s["end"], " ".join(s["labels"])] for r in records for s in r["segments"]]
    # One link per document, and the type filter hides a type's colour.
    assert page.locator("nav.docs a").count() == len(records)
    page.locator("input[data-type=LOC]").uncheck()
    assert "hide-LOC" in page.evaluate("document.body.className")
    page.locator("input[data-type=LOC]").check()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "tag.png"))
    not_blank(SHOTS / "tag.png")
    page.select_option("#label-filter", "energy")
    shown = page.evaluate("[...document.querySelectorAll('article')].filter(a => a.offsetParent !== null).length")
    assert shown == sum(any("energy" in s["labels"] for s in r["segments"]) for r in records)


def test_the_eval_view_marks_count_what_the_scores_count(page, seed_runs):
    d, _, report = seed_runs
    page.goto((d / "eval.html").as_uri())
    assert page.evaluate("document.documentElement.dir") == "rtl"
    marks = page.evaluate(MARKS_JS)
    in_set = [m for m in marks if m["type"] in report["types"]]
    count = lambda diff: sum(m["diff"] == diff for m in in_set)
    strict = report["entities"]["strict"]
    assert count("correct") == strict["cor"]
    assert count("missed") == strict["mis"]
    assert count("spurious") == strict["spu"]
    assert count("type") + count("boundary") == strict["inc"]
    assert all(m["diff"] in {"correct", "missed", "spurious", "type", "boundary"} for m in marks)
    # The score tables are there.
    assert page.locator(".report table").count() >= 3
    page.screenshot(path=str(SHOTS / "eval.png"), full_page=False)
    not_blank(SHOTS / "eval.png")
    page.locator("article").first.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "eval-document.png"))
    not_blank(SHOTS / "eval-document.png")


def test_text_is_escaped_and_mixed_lines_keep_their_order(page, cli, tmp_path):
    # Hand-made records scored against themselves: every mark correct.
    text = "قال بوتين لصحيفة Le Figaro إن <script>window.pwned=1</script> و</mark> باكو."
    def span(s):
        start = text.index(s)
        return {"start": start, "end": start + len(s), "text": s}
    ents = [dict(span("بوتين"), type="PER"), dict(span("Le Figaro"), type="ORG"), dict(span("باكو"), type="LOC")]
    record = {"id": "mixed <b>", "entities": ents, "segments": [{"start": 0, "end": len(text), "labels": ["mediation"]}]}
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "mixed <b>.txt").write_text(text, encoding="utf-8")
    write_jsonl(tmp_path / "g.jsonl", [record])
    run(cli, "eval", "--gold", tmp_path / "g.jsonl", "--pred", tmp_path / "g.jsonl", "--docs", docs,
        "--html", tmp_path / "e.html")
    page.goto((tmp_path / "e.html").as_uri())
    assert page.evaluate("window.pwned === undefined")
    body = page.locator("article .text").inner_text()
    assert "<script>window.pwned=1</script>" in body and "</mark>" in body
    assert page.locator("article h2").inner_text() == "mixed <b>"
    marks = page.evaluate(MARKS_JS)
    assert [(m["text"], m["diff"]) for m in marks] == [(e["text"], "correct") for e in ents]
    # Right to left: the earlier Arabic name sits right of the Latin one on
    # the same line, and the Latin name reads left to right inside.
    boxes = page.evaluate("""() => [...document.querySelectorAll('article mark')].map(m => {
        const r = m.getBoundingClientRect(); return [r.left, r.right, r.top]; })""")
    putin, figaro, baku = boxes
    assert putin[0] > figaro[1] - 1 and abs(putin[2] - figaro[2]) < 5
    assert figaro[0] > baku[1] - 1 or baku[2] > figaro[2]
    le = page.evaluate("""() => { const m = document.querySelectorAll('article mark')[1];
        const r = document.createRange(); r.setStart(m.firstChild, 0); r.setEnd(m.firstChild, 2);
        const f = document.createRange(); f.setStart(m.firstChild, 3); f.setEnd(m.firstChild, 9);
        return [r.getBoundingClientRect().left, f.getBoundingClientRect().left]; }""")
    assert le[0] < le[1], "`Le` is left of `Figaro`"
    page.locator("article").first.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "mixed.png"))
