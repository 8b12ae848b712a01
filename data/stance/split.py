#!/usr/bin/env python3
"""Builds data/stance/{train,dev}.jsonl from the hand-written raw/*.jsonl.

The split is by TOPIC (never at random): every segment of a topic listed in
DEV_TOPICS goes to dev, the rest to train, so dev measures how well a method
carries to conflicts, deals and news it has not seen. Rows keep their raw
order (file name order, then line order). `--check` fails when the files on
disk differ from what this script would write (run by `make test`).

Usage: python3 data/stance/split.py [--check]
"""

import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = ["mediation", "conflict", "energy"]
# Two topics from each raw file but caucasus-a: a mix of conflicts,
# mediations, energy and no-label news.
DEV_TOPICS = {
    "yemen", "western-sahara",          # mena
    "serbia-kosovo", "moldova-transnistria",  # eurasia
    "korea", "qatar-lng",               # world
    "sport", "renewables-grid",         # none
    "georgia-politics", "iran-caucasus",  # caucasus-b
}

# The news-form files (raw/news-*.jsonl, round 2) name their own topics: a
# topic goes to dev when the first byte of sha256(topic) is below 64 (about
# a quarter), unless it continues a topic of the first round (FOLLOWS),
# whose side it then takes, so that no conflict is on both sides.
FOLLOWS = {
    "a-sudan-talks": "sudan-war", "a-gaza-ceasefire": "gaza", "a-libya-oil": "libya",
    "b-serbia-kosovo-2025": "serbia-kosovo", "b-georgia-protests": "georgia-politics",
    "b-armenia-azerbaijan-peace": "armenia-azerbaijan-talks",
    "b-russia-azerbaijan-tension": "azerbaijan-russia-relations",
    "b-ukraine-talks": "ukraine-war", "b-ukraine-energy": "ukraine-war",
    "c-korea-2025": "korea", "c-lng-asia": "qatar-lng", "c-venezuela-guyana": "venezuela",
    "c-haiti-colombia": "colombia-farc", "c-iran-us-talks": "iran-nuclear",
    "c-india-pakistan": "kashmir", "c-opec-oil-market": "opec-plus",
    "d-renewables-power": "renewables-grid", "d-culture-sport": "sport",
    "d-economy-markets": "economy", "d-state-visits": "diplomatic-visits",
    "d-humanitarian": "weather-disasters",
}


def is_dev(topic):
    """Whether `topic` belongs to dev (see DEV_TOPICS and FOLLOWS)."""
    if topic in FOLLOWS:
        return FOLLOWS[topic] in DEV_TOPICS
    if topic in DEV_TOPICS:
        return True
    news = topic[:2] in {"a-", "b-", "c-", "d-"}
    return news and hashlib.sha256(topic.encode("utf-8")).digest()[0] < 64


def rows():
    seen = set()
    for path in sorted((HERE / "raw").glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{path.relative_to(HERE.parent.parent)}:{n}"
            r = json.loads(line)
            keys = {"id", "topic", "text", "labels"}
            assert set(r) in (keys, keys | {"doc"}), f"{where}: keys {sorted(r)}"
            assert r["id"] not in seen, f"{where}: duplicate id {r['id']}"
            seen.add(r["id"])
            assert r["text"].strip() and "\n" not in r["text"], f"{where}: empty or multi-line text"
            assert r["labels"] == [l for l in LABELS if l in r["labels"]], f"{where}: labels {r['labels']}"
            yield r


def render(rs):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rs)


def main():
    check = "--check" in sys.argv[1:]
    all_rows = list(rows())
    topics = {r["topic"] for r in all_rows}
    missing = DEV_TOPICS - topics
    assert not missing, f"dev topics with no rows: {sorted(missing)}"
    split = {
        "train": [r for r in all_rows if not is_dev(r["topic"])],
        "dev": [r for r in all_rows if is_dev(r["topic"])],
    }
    failed = False
    for name, rs in split.items():
        path = HERE / f"{name}.jsonl"
        text = render(rs)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                print(f"{path}: out of date; run python3 data/stance/split.py", file=sys.stderr)
                failed = True
        else:
            path.write_text(text, encoding="utf-8")
        counts = Counter(l for r in rs for l in r["labels"])
        none = sum(1 for r in rs if not r["labels"])
        multi = sum(1 for r in rs if len(r["labels"]) > 1)
        print(f"{name}: {len(rs)} segments, {len({r['topic'] for r in rs})} topics, "
              + ", ".join(f"{l} {counts[l]}" for l in LABELS)
              + f", no label {none} ({100 * none / len(rs):.1f}%), 2+ labels {multi}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
