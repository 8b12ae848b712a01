#!/usr/bin/env python3
"""Differential test of `arabtag eval` against nervaluate 1.2.1 on random
documents where every prediction overlaps at most one gold mention and
every gold mention at most one prediction (there the two procedures agree;
where mentions overlap several, nervaluate's result depends on their order
and ours does not: see crates/arabtag-eval/src/matching.rs).

Counts (COR, INC, PAR, MIS, SPU) are compared in every mode, summed over
the documents and per type, and P/R/F1 to 1e-9.

Usage: python3 eval/tools/nervaluate_diff.py [--bin target/release/arabtag] [--docs 2000] [--seed 1]
Installs nervaluate==1.2.1 with pip when it is missing.
"""

import argparse
import importlib
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

TYPES = ["PER", "ORG", "LOC"]
MODES = {"strict": "strict", "exact": "exact", "partial": "partial", "ent_type": "type"}


def nervaluate():
    try:
        return importlib.import_module("nervaluate")
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "nervaluate==1.2.1"], check=True)
        return importlib.import_module("nervaluate")


def document(rng):
    """Gold and predictions over [0, 200): disjoint slots, each holding a
    gold mention, a prediction, both (same or moved boundaries, same or
    other type) or nothing, so that overlaps are one to one."""
    gold, pred = [], []
    at = 0
    while at < 190:
        width = rng.randint(3, 9)
        lo, hi = at, at + width
        g = (rng.randint(lo, hi - 2), 0)
        g = (g[0], rng.randint(g[0] + 1, hi))
        kind = rng.choice(TYPES)
        roll = rng.random()
        if roll < 0.25:
            gold.append((g[0], g[1], kind))
            pred.append((g[0], g[1], kind))
        elif roll < 0.4:
            gold.append((g[0], g[1], kind))
            pred.append((g[0], g[1], rng.choice([t for t in TYPES if t != kind])))
        elif roll < 0.6:
            gold.append((g[0], g[1], kind))
            s = rng.randint(lo, g[1] - 1)
            e = rng.randint(max(s + 1, g[0] + 1), hi)
            pred.append((s, e, rng.choice(TYPES)))
        elif roll < 0.75:
            gold.append((g[0], g[1], kind))
        elif roll < 0.9:
            pred.append((g[0], g[1], kind))
        at = hi + 1
    return gold, pred


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/release/arabtag")
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    nv = nervaluate()
    rng = random.Random(a.seed)
    docs = [document(rng) for _ in range(a.docs)]
    with tempfile.TemporaryDirectory() as tmp:
        gold_path, pred_path = Path(tmp, "gold.jsonl"), Path(tmp, "pred.jsonl")
        for path, side in ((gold_path, 0), (pred_path, 1)):
            with path.open("w", encoding="utf-8") as f:
                for i, d in enumerate(docs):
                    ents = [{"start": s, "end": e, "type": t, "text": "x" * (e - s)} for s, e, t in d[side]]
                    f.write(json.dumps({"id": f"d{i:05d}", "entities": ents, "segments": []}) + "\n")
        out = subprocess.run([a.bin, "eval", "--gold", gold_path, "--pred", pred_path, "--json"],
                             check=True, capture_output=True, text=True)
    ours = json.loads(out.stdout)["entities"]
    # nervaluate: inclusive ends.
    conv = lambda side: [[{"label": t, "start": s, "end": e - 1} for s, e, t in d[side]] for d in docs]
    theirs = nv.Evaluator(conv(0), conv(1), tags=TYPES).evaluate()
    failed = 0
    checked = 0

    def compare(where, o, t):
        nonlocal failed, checked
        pairs = [("cor", t.correct), ("inc", t.incorrect), ("par", t.partial), ("mis", t.missed),
                 ("spu", t.spurious)]
        for key, value in pairs:
            checked += 1
            if o[key] != value:
                failed += 1
                print(f"{where} {key}: arabtag {o[key]}, nervaluate {value}")
        for key, value in (("precision", t.precision), ("recall", t.recall), ("f1", t.f1)):
            checked += 1
            if abs(o[key] - value) > 1e-9:
                failed += 1
                print(f"{where} {key}: arabtag {o[key]}, nervaluate {value}")

    for nv_mode, mode in MODES.items():
        compare(f"micro {mode}", ours[mode], theirs["overall"][nv_mode])
        for t in TYPES:
            compare(f"{t} {mode}", ours["per_type"][t][mode], theirs["entities"][t][nv_mode])
    mentions = sum(len(g) + len(p) for g, p in docs)
    print(f"{a.docs} documents, {mentions} mentions: {checked - failed} of {checked} figures agree")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
