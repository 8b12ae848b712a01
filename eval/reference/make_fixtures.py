#!/usr/bin/env python3
"""Write perturbed predictions of the seed gold and the reference scorer's numbers.

For each seed of the random generator, the seed gold is perturbed the way
taggers err: entities dropped, retyped, shifted at either boundary, widened
over a proclitic, duplicated, spurious spans added; segments relabelled,
split and merged; one document left out and one given an error record. Every
span's `text` stays the document's slice, so the files pass validation.

Output, in eval/reference/fixtures/: perturbed-<n>.jsonl and
perturbed-<n>.expected.json: score.py's numbers (in the shape of
`arabtag eval --json`) for the default types and with DATE added. The
end-to-end tests check that `arabtag eval` gives every one of them to 1e-9.
Run from anywhere: python3 eval/reference/make_fixtures.py
"""

import json
import random
from pathlib import Path

import score

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SEEDS = ROOT / "seeds"
OUT = HERE / "fixtures"
TYPES = ["PER", "ORG", "LOC", "DATE"]


def perturb(rng, gold, texts):
    out = []
    ids = sorted(gold)
    missing, errored = rng.sample(ids, 2)
    for doc in ids:
        if doc == missing:
            continue
        if doc == errored:
            out.append({"id": doc, "error": "could not read the document"})
            continue
        text = texts[doc]
        ents = []

        def ent(s, e, t):
            s, e = max(0, s), min(len(text), e)
            if s < e:
                ents.append({"start": s, "end": e, "type": t, "text": text[s:e]})

        for g in gold[doc]["entities"]:
            s, e, t = g["start"], g["end"], g["type"]
            roll = rng.random()
            if roll < 0.12:
                continue  # missed
            if roll < 0.22:
                t = rng.choice([x for x in TYPES if x != t])
            elif roll < 0.32:
                s += rng.choice([-3, -1, 1, 2])
            elif roll < 0.42:
                e += rng.choice([-2, -1, 1, 4])
            elif roll < 0.50 and s > 0 and text[s - 1] in score.CLITICS:
                s -= 1  # tagger kept the proclitic
            elif roll < 0.54:
                ent(s, e, t)  # duplicate
            ent(s, e, t)
        for _ in range(rng.randint(0, 6)):  # spurious
            s = rng.randrange(len(text))
            ent(s, s + rng.randint(2, 12), rng.choice(TYPES))
        segs = []
        for g in gold[doc]["segments"]:
            labels = set(g["labels"])
            for lab in score.LABELS:
                if rng.random() < 0.15:
                    labels ^= {lab}
            s, e = g["start"], g["end"]
            if rng.random() < 0.1 and e - s > 10:
                mid = rng.randrange(s + 1, e - 1)
                segs.append({"start": s, "end": mid, "labels": sorted(labels)})
                segs.append({"start": mid, "end": e, "labels": sorted(labels ^ {"energy"})})
            elif rng.random() < 0.08 and segs:
                segs[-1]["end"] = e
                segs[-1]["labels"] = sorted(set(segs[-1]["labels"]) | labels)
            else:
                segs.append({"start": s, "end": e, "labels": sorted(labels)})
        out.append({"id": doc, "entities": ents, "segments": segs})
    return out


def main():
    gold_recs = [json.loads(line) for line in (SEEDS / "gold.jsonl").read_text(encoding="utf-8").splitlines()]
    gold = {r["id"]: r for r in gold_recs}
    texts = {doc: (SEEDS / f"{doc}.txt").read_text(encoding="utf-8") for doc in gold}
    OUT.mkdir(exist_ok=True)
    for n in (1, 2, 3):
        rng = random.Random(n)
        pred_path = OUT / f"perturbed-{n}.jsonl"
        pred = perturb(rng, gold, texts)
        with open(pred_path, "w", encoding="utf-8") as f:
            for rec in pred:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        expected = {
            "default": score.score(gold_recs, pred, ["PER", "ORG", "LOC"]),
            "with_date": score.score(gold_recs, pred, TYPES),
        }
        (OUT / f"perturbed-{n}.expected.json").write_text(
            json.dumps(expected, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
        d = expected["default"]
        print(f"perturbed-{n}: strict F1 {d['entities']['strict']['f1']:.4f}, "
              f"clitic {d['entities']['clitic']['f1']:.4f}, "
              f"segments macro {d['segments']['macro_f1']:.4f}, missing {d['missing']}")


if __name__ == "__main__":
    main()
