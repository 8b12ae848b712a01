#!/usr/bin/env python3
"""Build seeds/gold.jsonl from the human-edited annotation sources.

The sources live in seeds/annotation/:

* ``<id>.ann`` -- the article text with every entity mention wrapped in
  ``⟦TYPE|mention⟧`` (U+27E6, U+27E7). Removing the markup must give the
  article back byte for byte; the builder checks that.
* ``<id>.seg.tsv`` -- one row per segment (ANNOTATION.md's sentence rule):
  ``index<TAB>start<TAB>end<TAB>labels<TAB>text``; labels are a comma list of
  mediation, conflict, energy, or ``-`` for none.

Usage:
  build_gold.py skeleton   # write missing .ann/.seg.tsv files from seeds/*.txt
  build_gold.py build      # write seeds/gold.jsonl
  build_gold.py check      # exit 1 if seeds/gold.jsonl differs from the sources
  build_gold.py show ID    # validate one document's sources and list its spans
  build_gold.py counts     # Markdown table of mentions per type and segments per label

Standard library only, so it runs anywhere Python 3.8+ does.
"""

import json
import re
import sys
from pathlib import Path

SEEDS = Path(__file__).resolve().parent.parent
ANN = SEEDS / "annotation"
TYPES = ("PER", "ORG", "LOC", "DATE")
LABELS = ("mediation", "conflict", "energy")
OPEN, SEP, CLOSE = "\u27e6", "|", "\u27e7"
MARK = re.compile(OPEN + r"([A-Z]+)\|([^" + CLOSE + r"]*)" + CLOSE)
ENDERS = ".!?\u061f"


def segments(text):
    """Character spans of ANNOTATION.md's segments (half-open)."""
    out = []
    line_start = 0
    for line in text.split("\n"):
        line_end = line_start + len(line)
        piece = line_start
        for j in range(line_start, line_end):
            if text[j] in ENDERS and (j + 1 == line_end or text[j + 1].isspace()):
                out.append((piece, j + 1))
                piece = j + 1
        out.append((piece, line_end))
        line_start = line_end + 1
    trimmed = []
    for s, e in out:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            trimmed.append((s, e))
    return trimmed


def parse_ann(path, original):
    src = path.read_text(encoding="utf-8")
    plain = []
    entities = []
    pos = 0  # position in src
    out_len = 0  # characters emitted so far
    for m in MARK.finditer(src):
        chunk = src[pos : m.start()]
        if OPEN in chunk or CLOSE in chunk:
            raise SystemExit(f"{path}: stray markup before char {m.start()}")
        plain.append(chunk)
        out_len += len(chunk)
        typ, mention = m.group(1), m.group(2)
        if typ not in TYPES:
            raise SystemExit(f"{path}: unknown type {typ!r} at char {m.start()}")
        if not mention or mention != mention.strip():
            raise SystemExit(f"{path}: mention {mention!r} is empty or has outer spaces")
        entities.append({"start": out_len, "end": out_len + len(mention), "type": typ, "text": mention})
        plain.append(mention)
        out_len += len(mention)
        pos = m.end()
    tail = src[pos:]
    if OPEN in tail or CLOSE in tail:
        raise SystemExit(f"{path}: stray markup after char {pos}")
    plain.append(tail)
    text = "".join(plain)
    if text != original:
        for i, (a, b) in enumerate(zip(text, original)):
            if a != b:
                raise SystemExit(f"{path}: text differs from the article at char {i}: {text[i-20:i+20]!r} vs {original[i-20:i+20]!r}")
        raise SystemExit(f"{path}: text length {len(text)} differs from the article's {len(original)}")
    for e in entities:
        assert original[e["start"] : e["end"]] == e["text"]
    return entities


def parse_seg(path, original):
    spans = segments(original)
    rows = [r for r in path.read_text(encoding="utf-8").split("\n") if r.strip()]
    if len(rows) != len(spans):
        raise SystemExit(f"{path}: {len(rows)} rows but the article has {len(spans)} segments")
    out = []
    for lineno, (row, (s, e)) in enumerate(zip(rows, spans), 1):
        cols = row.split("\t")
        if len(cols) != 5:
            raise SystemExit(f"{path}:{lineno}: expected 5 tab-separated columns, got {len(cols)}")
        if (int(cols[1]), int(cols[2])) != (s, e) or cols[4] != original[s:e]:
            raise SystemExit(f"{path}:{lineno}: segment span/text does not match the segmenter ({s},{e})")
        labels = [] if cols[3].strip() in ("", "-") else [x.strip() for x in cols[3].split(",")]
        for lab in labels:
            if lab not in LABELS:
                raise SystemExit(f"{path}:{lineno}: unknown label {lab!r}")
        labels = sorted(set(labels), key=LABELS.index)
        out.append({"start": s, "end": e, "labels": labels})
    return out


def doc_ids():
    return sorted(p.stem for p in SEEDS.glob("*.txt"))


def skeleton():
    ANN.mkdir(exist_ok=True)
    for doc in doc_ids():
        text = (SEEDS / f"{doc}.txt").read_text(encoding="utf-8")
        ann = ANN / f"{doc}.ann"
        if not ann.exists():
            ann.write_text(text, encoding="utf-8")
        seg = ANN / f"{doc}.seg.tsv"
        if not seg.exists():
            lines = []
            for i, (s, e) in enumerate(segments(text)):
                if "\t" in text[s:e]:
                    raise SystemExit(f"{doc}: segment {i} contains a tab")
                lines.append(f"{i}\t{s}\t{e}\t-\t{text[s:e]}")
            seg.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_records():
    records = []
    for doc in doc_ids():
        text = (SEEDS / f"{doc}.txt").read_bytes().decode("utf-8")
        entities = parse_ann(ANN / f"{doc}.ann", text)
        ents_sorted = sorted(entities, key=lambda x: (x["start"], x["end"]))
        for a, b in zip(ents_sorted, ents_sorted[1:]):
            if b["start"] < a["end"]:
                raise SystemExit(f"{doc}: overlapping entities {a} {b}")
        records.append({"id": doc, "entities": ents_sorted, "segments": parse_seg(ANN / f"{doc}.seg.tsv", text)})
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def counts_table(jsonl):
    head = ["document", *TYPES, "mentions", "segments", *LABELS, "unlabelled", "document labels"]
    rows = [head, ["---"] * len(head)]
    total = [0] * (len(head) - 2)
    for line in jsonl.splitlines():
        r = json.loads(line)
        types = [sum(e["type"] == t for e in r["entities"]) for t in TYPES]
        labels = [sum(lab in s["labels"] for s in r["segments"]) for lab in LABELS]
        unlabelled = sum(not s["labels"] for s in r["segments"])
        nums = [*types, len(r["entities"]), len(r["segments"]), *labels, unlabelled]
        total = [a + b for a, b in zip(total, nums)]
        doc_labels = [lab for lab, n in zip(LABELS, labels) if n]
        rows.append([r["id"], *map(str, nums), ", ".join(doc_labels) or "-"])
    rows.append(["**total**", *map(str, total), ""])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else "build"
    if cmd == "skeleton":
        skeleton()
    elif cmd == "build":
        (SEEDS / "gold.jsonl").write_text(build_records(), encoding="utf-8")
    elif cmd == "check":
        current = (SEEDS / "gold.jsonl").read_text(encoding="utf-8")
        if current != build_records():
            print("seeds/gold.jsonl is out of date: run seeds/tools/build_gold.py build", file=sys.stderr)
            return 1
        print("seeds/gold.jsonl matches seeds/annotation/")
    elif cmd == "counts":
        print(counts_table(build_records()))
    elif cmd == "show" and len(argv) > 2:
        doc = argv[2]
        text = (SEEDS / f"{doc}.txt").read_bytes().decode("utf-8")
        for e in parse_ann(ANN / f"{doc}.ann", text):
            print(f"{e['type']}\t{e['start']}\t{e['end']}\t{e['text']}")
        for i, s in enumerate(parse_seg(ANN / f"{doc}.seg.tsv", text)):
            print(f"SEG {i}\t{s['start']}\t{s['end']}\t{','.join(s['labels']) or '-'}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
