#!/usr/bin/env python3
"""An independent scorer of ANNOTATION.md's Scoring section, written from the
specification (not from the Rust code), to cross-check `arabtag eval --json`.

    python3 eval/reference/score.py GOLD.jsonl PRED.jsonl [--types PER,ORG,LOC]
        prints the JSON keys of `arabtag eval --json` that it computes
    python3 eval/reference/score.py --fuzz 200 [--bin target/debug/arabtag]
        scores random gold/prediction pairs with both and compares to 1e-9

Standard library only. Validation is not reimplemented: inputs must be valid.
"""

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

LABELS = ["mediation", "conflict", "energy"]
ALL_TYPES = ["PER", "ORG", "LOC", "DATE"]
CLITICS = set("\u0648\u0641\u0628\u0644\u0643")
MODES = ["strict", "exact", "partial", "type"]


def div(a, b):
    return a / b if b else 0.0


def prf(p, r):
    return {"precision": p, "recall": r, "f1": div(2 * p * r, p + r)}


def tier(g, p):
    """0: same bounds and type, 1: same bounds, 2: overlap and type, 3:
    overlap; None: no overlap (an empty span only meets its equal)."""
    if g[0] == p[0] and g[1] == p[1]:
        return 0 if g[2] == p[2] else 1
    if max(g[0], p[0]) < min(g[1], p[1]):
        return 2 if g[2] == p[2] else 3
    return None


def best_tiers(gold, pred):
    """The tier counts of the best one-to-one matching (most pairs of tier
    0, then 1, 2, 3): exhaustive search, gold by gold, over the unused
    predictions that overlap it, with the tallies compared as tuples."""
    best = [(0, 0, 0, 0)]

    def go(i, used, tally):
        if i == len(gold):
            best[0] = max(best[0], tally)
            return
        go(i + 1, used, tally)
        for j, p in enumerate(pred):
            t = None if j in used else tier(gold[i], p)
            if t is not None:
                nxt = list(tally)
                nxt[t] += 1
                go(i + 1, used | {j}, tuple(nxt))

    go(0, frozenset(), (0, 0, 0, 0))
    return best[0]


def semeval(gold, pred):
    """SemEval counts of one document from the best one-to-one matching of
    ANNOTATION.md's scorer: a function of the two sets. Mentions that
    overlap nothing of the other side are missed or spurious at once; the
    rest is searched exhaustively within each group of mentions linked by
    overlaps."""
    c = {m: dict(cor=0, inc=0, par=0, mis=0, spu=0) for m in MODES}
    # Groups: union-find over overlapping (or equal empty) pairs.
    nodes = [("g", i) for i in range(len(gold))] + [("p", j) for j in range(len(pred))]
    parent = {n: n for n in nodes}

    def find(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for i, g in enumerate(gold):
        for j, p in enumerate(pred):
            if tier(g, p) is not None:
                parent[find(("g", i))] = find(("p", j))
    groups = {}
    for n in nodes:
        groups.setdefault(find(n), []).append(n)
    matched = 0
    for members in groups.values():
        gs = [gold[i] for side, i in members if side == "g"]
        ps = [pred[j] for side, j in members if side == "p"]
        t = best_tiers(gs, ps)
        matched += sum(t)
        for m in MODES:
            c[m]["cor"] += t[0]
        c["strict"]["inc"] += t[1] + t[2] + t[3]
        c["exact"]["cor"] += t[1]
        c["exact"]["inc"] += t[2] + t[3]
        c["partial"]["cor"] += t[1]
        c["partial"]["par"] += t[2] + t[3]
        c["type"]["inc"] += t[1] + t[3]
        c["type"]["cor"] += t[2]
    for m in MODES:
        c[m]["mis"] += len(gold) - matched
        c[m]["spu"] += len(pred) - matched
    return c


def strip(e):
    start, end, kind, text = e
    n = 0
    while n < len(text) and text[n] in CLITICS:
        n += 1
    return (start + n, end, kind)


def add(total, c):
    for m, counts in c.items():
        for k, v in counts.items():
            total[m][k] += v


def scores(c, mode):
    pos = c["cor"] + c["inc"] + c["par"] + c["mis"]
    act = c["cor"] + c["inc"] + c["par"] + c["spu"]
    hit = c["cor"] + (0.5 * c["par"] if mode == "partial" else 0)
    out = prf(div(hit, act), div(hit, pos))
    out.update(c, pos=pos, act=act)
    return out


def entity_counts(docs, keep):
    total = {m: dict(cor=0, inc=0, par=0, mis=0, spu=0) for m in MODES + ["clitic"]}
    for gold, pred in docs:
        g = [e for e in gold if keep(e[2])]
        p = [e for e in pred if keep(e[2])]
        add(total, semeval([e[:3] for e in g], [e[:3] for e in p]))
        add(total, {"clitic": semeval([strip(e) for e in g], [strip(e) for e in p])["strict"]})
    return total


def label_scores(units):
    """units: list of (gold label set, pred label set)."""
    per = {}
    for l in LABELS:
        tp = sum(1 for g, p in units if l in g and l in p)
        fp = sum(1 for g, p in units if l not in g and l in p)
        fn = sum(1 for g, p in units if l in g and l not in p)
        per[l] = dict(prf(div(tp, tp + fp), div(tp, tp + fn)), tp=tp, fp=fp, fn=fn)
    tp, fp, fn = (sum(per[l][k] for l in LABELS) for k in ("tp", "fp", "fn"))
    micro = prf(div(tp, tp + fp), div(tp, tp + fn))
    macro = {k: sum(per[l][k] for l in LABELS) / 3 for k in ("precision", "recall", "f1")}
    return {"micro_f1": micro["f1"], "macro_f1": macro["f1"], "per_label": per, "macro": macro}


def score(gold_recs, pred_recs, types):
    preds = {r["id"]: r for r in pred_recs if not r.get("error")}
    ents = lambda r: [(e["start"], e["end"], e["type"], e["text"]) for e in r.get("entities", [])]
    docs, seg_units, doc_units, missing = [], [], [], []
    for g in gold_recs:
        p = preds.get(g["id"])
        if p is None:
            missing.append(g["id"])
            p = {"id": g["id"]}
        docs.append((ents(g), ents(p)))
        psegs = p.get("segments", [])
        for s in g.get("segments", []):
            best, best_ov = None, 0
            for q in psegs:
                ov = min(s["end"], q["end"]) - max(s["start"], q["start"])
                if ov > best_ov:
                    best, best_ov = q, ov
            seg_units.append((set(s.get("labels", [])), set(best.get("labels", [])) if best else set()))
        gl = set(l for s in g.get("segments", []) for l in s.get("labels", []))
        pl = set(l for s in psegs for l in s.get("labels", []))
        doc_units.append((gl, pl))

    micro = entity_counts(docs, lambda t: t in types)
    seen = sorted(set(ALL_TYPES) | set(types) | {e[2] for g, p in docs for e in g + p})
    per_type = {}
    for t in seen:
        c = entity_counts(docs, lambda k, t=t: k == t)
        row = {m: scores(c[m], m) for m in MODES + ["clitic"]}
        s = row["strict"]
        row.update(precision=s["precision"], recall=s["recall"], f1=s["f1"],
                   tp=s["cor"], fp=s["act"] - s["cor"], fn=s["pos"] - s["cor"])
        per_type[t] = row
    entities = {"per_type": per_type}
    for m in MODES + ["clitic"]:
        entities[m] = scores(micro[m], m)
        entities[m]["macro"] = {
            k: sum(per_type[t][m][k] for t in types) / len(types) for k in ("precision", "recall", "f1")
        }
    return {
        "entities": entities,
        "segments": label_scores(seg_units),
        "documents": label_scores(doc_units),
        "missing": missing,
    }


def compare(ref, got, path="", tol=1e-9):
    """Every number and list in `ref` must be in `got`."""
    bad = []
    if isinstance(ref, dict):
        for k, v in ref.items():
            if k not in got:
                bad.append(f"{path}.{k}: missing")
            else:
                bad += compare(v, got[k], f"{path}.{k}", tol)
    elif isinstance(ref, (int, float)):
        if abs(ref - got) > tol:
            bad.append(f"{path}: reference {ref}, arabtag {got}")
    elif ref != got:
        bad.append(f"{path}: reference {ref}, arabtag {got}")
    return bad


def random_pair(rng):
    """Random documents, gold without overlaps, predictions anything."""
    letters = "وفبلكابتثجحخدرزسشصضطظعغمنهي "
    kinds = ["PER", "ORG", "LOC", "DATE"]
    gold, pred, texts = [], [], {}
    for d in range(rng.randint(1, 5)):
        doc_id = f"d{d}"
        n = rng.randint(20, 80)
        text = "".join(rng.choice(letters) for _ in range(n))
        texts[doc_id] = text
        g_ents, pos = [], 0
        while pos < n - 2:
            pos += rng.randint(0, 6)
            length = rng.randint(1, 6)
            if pos + length > n:
                break
            g_ents.append((pos, pos + length, rng.choice(kinds)))
            pos += length + rng.choice([0, 1, 2])
        p_ents = []
        for s, e, k in g_ents:
            r = rng.random()
            if r < 0.3:
                p_ents.append((s, e, k))
            elif r < 0.45:
                p_ents.append((s, e, rng.choice(kinds)))
            elif r < 0.7:
                s2 = min(n - 1, max(0, s + rng.randint(-2, 2)))
                e2 = min(n, max(s2 + 1, e + rng.randint(-2, 2)))
                p_ents.append((s2, e2, rng.choice([k, k, rng.choice(kinds)])))
        for _ in range(rng.randint(0, 4)):
            s = rng.randint(0, n - 1)
            p_ents.append((s, min(n, s + rng.randint(1, 8)), rng.choice(kinds)))
        rng.shuffle(p_ents)

        def segs(cuts):
            out, prev = [], 0
            for c in sorted(set(cuts)) + [n]:
                if c > prev:
                    out.append({"start": prev, "end": c,
                                "labels": sorted(rng.sample(LABELS, rng.randint(0, 2)))})
                    prev = c
            return out

        g_segs = segs([rng.randint(1, n - 1) for _ in range(rng.randint(0, 4))])
        p_segs = segs([rng.randint(1, n - 1) for _ in range(rng.randint(0, 4))])
        mk = lambda es: [{"start": s, "end": e, "type": k, "text": text[s:e]} for s, e, k in es]
        gold.append({"id": doc_id, "entities": mk(g_ents), "segments": g_segs})
        if rng.random() < 0.9:
            pred.append({"id": doc_id, "entities": mk(p_ents), "segments": p_segs})
    return gold, pred, texts


def fuzz(n, binary, seed):
    rng = random.Random(seed)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i in range(n):
            gold, pred, texts = random_pair(rng)
            types = rng.choice([["PER", "ORG", "LOC"], ["PER"], ["LOC", "DATE", "ORG", "PER"]])
            for doc_id, text in texts.items():
                (tmp / f"{doc_id}.txt").write_text(text, encoding="utf-8")
            for p in tmp.glob("d*.txt"):
                if p.stem not in texts:
                    p.unlink()
            for name, recs in (("gold.jsonl", gold), ("pred.jsonl", pred)):
                with open(tmp / name, "w", encoding="utf-8") as f:
                    for r in recs:
                        f.write(json.dumps(r, ensure_ascii=False) + "\n")
            out = subprocess.run(
                [binary, "eval", "--gold", tmp / "gold.jsonl", "--pred", tmp / "pred.jsonl",
                 "--docs", tmp, "--json", "--types", ",".join(types)],
                capture_output=True, text=True)
            if out.returncode != 0:
                print(f"case {i}: exit {out.returncode}: {out.stderr}")
                failures += 1
                continue
            bad = compare(score(gold, pred, types), json.loads(out.stdout))
            if bad:
                failures += 1
                print(f"case {i}: " + "; ".join(bad[:5]))
    print(f"{n} cases, {failures} failures")
    return failures == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gold", nargs="?")
    ap.add_argument("pred", nargs="?")
    ap.add_argument("--types", default="PER,ORG,LOC")
    ap.add_argument("--fuzz", type=int, metavar="N")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bin", default="target/debug/arabtag")
    args = ap.parse_args()
    if args.fuzz:
        sys.exit(0 if fuzz(args.fuzz, args.bin, args.seed) else 1)
    if not (args.gold and args.pred):
        ap.error("GOLD and PRED, or --fuzz N")
    read = lambda p: [json.loads(l) for l in open(p, encoding="utf-8") if l.strip()]
    print(json.dumps(score(read(args.gold), read(args.pred), args.types.split(",")), indent=1))


if __name__ == "__main__":
    main()
