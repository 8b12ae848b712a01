#!/usr/bin/env python3
"""Agreement between the writers' marks and an independent second annotation.

  python3 data/ner-news/tools/agreement.py [--json]

Reads agreement/plain.txt (ID, unmarked sentence), agreement/second.txt (the
same lines marked by a second annotator who saw only the brief and the plain
text) and the first annotation from train.jsonl/dev.jsonl. Prints strict
(same boundaries and type) precision, recall and F1 of the second against
the first, per type, micro over PER/ORG/LOC and over all four types; and
Cohen-free raw counts. Fails if a second-annotation line does not give back
its sentence when the marks are removed.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check import parse_line  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TYPES = ("PER", "ORG", "LOC", "DATE")


def prf(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return round(p, 4), round(r, 4), round(f, 4)


def main():
    first = {}
    for name in ("train.jsonl", "dev.jsonl"):
        for line in open(ROOT / name, encoding="utf-8"):
            r = json.loads(line)
            first[r["id"]] = r
    plain = [l.rstrip("\n").split("\t", 1) for l in open(ROOT / "agreement/plain.txt", encoding="utf-8")]
    second = [l.rstrip("\n").split("\t", 1) for l in open(ROOT / "agreement/second.txt", encoding="utf-8")]
    if [i for i, _ in plain] != [i for i, _ in second]:
        sys.exit("agreement/second.txt does not list plain.txt's ids in order")
    counts = {t: [0, 0, 0] for t in TYPES}
    for (sid, text), (_, marked) in zip(plain, second):
        got_text, spans, errors = parse_line(marked)
        if errors or got_text != text or first[sid]["text"] != text:
            sys.exit(f"{sid}: the second annotation does not give back the sentence ({errors})")
        a = {(e["start"], e["end"], e["type"]) for e in first[sid]["entities"]}
        b = {(s, e, k) for s, e, k, _ in spans}
        for t in TYPES:
            at = {x for x in a if x[2] == t}
            bt = {x for x in b if x[2] == t}
            counts[t][0] += len(at & bt)
            counts[t][1] += len(bt - at)
            counts[t][2] += len(at - bt)
    out = {"sentences": len(plain), "per_type": {}, "micro": {}}
    for t in TYPES:
        tp, fp, fn = counts[t]
        out["per_type"][t] = dict(zip(("p", "r", "f1"), prf(tp, fp, fn)), tp=tp, fp=fp, fn=fn,
                                  first=tp + fn, second=tp + fp)
    for name, types in (("PER ORG LOC", TYPES[:3]), ("all four", TYPES)):
        tp, fp, fn = (sum(counts[t][k] for t in types) for k in range(3))
        out["micro"][name] = dict(zip(("p", "r", "f1"), prf(tp, fp, fn)), tp=tp, fp=fp, fn=fn)
    if "--json" in sys.argv:
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return
    print(f"{out['sentences']} sentences; strict agreement, second annotation scored against the first")
    print("| type | first | second | both | P | R | F1 |\n|---|--:|--:|--:|--:|--:|--:|")
    for t, v in out["per_type"].items():
        print(f"| {t} | {v['first']} | {v['second']} | {v['tp']} | {v['p']:.3f} | {v['r']:.3f} | {v['f1']:.3f} |")
    for name, v in out["micro"].items():
        print(f"| micro {name} | {v['tp'] + v['fn']} | {v['tp'] + v['fp']} | {v['tp']} | {v['p']:.3f} | {v['r']:.3f} | {v['f1']:.3f} |")


if __name__ == "__main__":
    main()
