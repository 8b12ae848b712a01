#!/usr/bin/env python3
"""Agreement of the second annotation (second-annotation.jsonl, labels of
the segments in segments.jsonl: 304 segments of 26 round-2 articles drawn at
random, seed 5) with the writers' labels in raw/news-*.jsonl: per label F1
(either side as reference gives the same F1) and Cohen's kappa, macro-F1,
and the share of segments with the same label set.

Usage: python3 data/stance/agreement/agreement.py
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = ["mediation", "conflict", "energy"]


def main():
    first = {}
    for path in sorted((HERE.parent / "raw").glob("news-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            first[r["id"]] = set(r["labels"])
    second = [json.loads(l) for l in (HERE / "second-annotation.jsonl").read_text(encoding="utf-8").splitlines()]
    ids = [json.loads(l)["id"] for l in (HERE / "segments.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in second] == ids, "second annotation and segments differ"
    n = len(second)
    f1s = []
    for label in LABELS:
        a = [label in first[r["id"]] for r in second]
        b = [label in r["labels"] for r in second]
        tp = sum(x and y for x, y in zip(a, b))
        f1 = 2 * tp / max(sum(a) + sum(b), 1)
        f1s.append(f1)
        po = sum(x == y for x, y in zip(a, b)) / n
        pa, pb = sum(a) / n, sum(b) / n
        pe = pa * pb + (1 - pa) * (1 - pb)
        kappa = (po - pe) / (1 - pe) if pe < 1 else 1.0
        print(f"{label:10} writer {sum(a):3}  second {sum(b):3}  both {tp:3}  F1 {f1:.3f}  kappa {kappa:.3f}")
    same = sum(set(r["labels"]) == first[r["id"]] for r in second)
    print(f"{n} segments: macro-F1 {sum(f1s) / 3:.3f}, same label set {same} ({same / n:.3f})")


if __name__ == "__main__":
    main()
