"""How a 1,000-document HTML view opens and scrolls in headless Chromium.

    target/pyenv/bin/python eval/tools/html_perf.py [--docs N] [--corpus target/bench40.jsonl]

Makes N documents from the corpus (repeated under new ids), tags them with
`arabtag tag --format html` (the release binary, models/default.toml),
opens the page in Debian's chromium through Playwright and prints: the
file size, the time to DOMContentLoaded and load, the time to scroll the
whole page in 600-pixel steps one animation frame each (frame times:
median, 95th percentile, worst, frames over 50 ms), and how long a type
filter and the stance filter take to apply. Needs playwright in the
Python that runs it (`make test-python` installs it) and chromium.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

SCROLL_JS = """async () => {
  const times = []; let last = performance.now();
  const height = document.documentElement.scrollHeight;
  for (let y = 0; y < height; y += 600) {
    window.scrollTo(0, y);
    await new Promise(r => requestAnimationFrame(() => r()));
    const now = performance.now(); times.push(now - last); last = now;
  }
  return {height, times};
}"""

TOGGLE_JS = """async (sel) => {
  const t = performance.now();
  document.querySelector(sel).click();
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r())));
  return performance.now() - t;
}"""

FILTER_JS = """async () => {
  const t = performance.now();
  const pick = document.getElementById('label-filter');
  pick.value = 'energy'; pick.dispatchEvent(new Event('change'));
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r())));
  return performance.now() - t;
}"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--corpus", default=str(ROOT / "target" / "bench40.jsonl"))
    args = parser.parse_args()
    work = ROOT / "target" / "html-perf"
    work.mkdir(parents=True, exist_ok=True)
    corpus = [json.loads(l) for l in Path(args.corpus).read_text(encoding="utf-8").splitlines() if l.strip()]
    docs = [{"id": f"{i:04d}-{corpus[i % len(corpus)]['id']}", "text": corpus[i % len(corpus)]["text"]}
            for i in range(args.docs)]
    (work / "docs.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    page_path = work / "view.html"
    start = time.perf_counter()
    subprocess.run([str(ROOT / "target" / "release" / "arabtag"), "tag", "--model", str(ROOT / "models" / "default.toml"),
                    str(work / "docs.jsonl"), "--format", "html", "-o", str(page_path)], check=True)
    tagged = time.perf_counter() - start
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        t = time.perf_counter()
        page.goto(page_path.as_uri(), wait_until="load")
        wall = time.perf_counter() - t
        timing = page.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
            return {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd}; }""")
        marks = page.evaluate("document.querySelectorAll('article mark').length")
        scroll = page.evaluate(SCROLL_JS)
        toggle = page.evaluate(TOGGLE_JS, "input[data-type=LOC]")
        pick = page.evaluate(FILTER_JS)
        browser.close()
    times = sorted(scroll["times"])
    p95 = times[int(0.95 * (len(times) - 1))]
    print(f"documents {args.docs}, entity marks {marks}, file {page_path.stat().st_size / 1e6:.1f} MB (tagged in {tagged:.0f} s)")
    print(f"open: DOMContentLoaded {timing['dcl']:.0f} ms, load {timing['load']:.0f} ms (goto wall {wall * 1000:.0f} ms)")
    print(f"scroll {scroll['height']} px in {len(times)} frames of 600 px: total {sum(times):.0f} ms, "
          f"median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, worst {times[-1]:.1f} ms, "
          f"over 50 ms: {sum(t > 50 for t in times)}")
    print(f"type filter {toggle:.0f} ms, stance filter {pick:.0f} ms")


if __name__ == "__main__":
    main()
