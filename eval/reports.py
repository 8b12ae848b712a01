#!/usr/bin/env python3
"""Recorded evaluation reports: make them, or re-run them and compare.

    python3 eval/reports.py run   [--bin target/release/arabtag] [NAME ...]
    python3 eval/reports.py check [--bin target/release/arabtag] [NAME ...]

`run` tags and scores, then writes eval/reports/NAME.json: the command lines,
the model config and the sha256 of every file behind it (config, the files
it names, the data), the git commit, and the `arabtag eval` report with every
count. `check` does the same into a temporary folder and fails (exit 1)
naming each count that differs from the recorded report; provenance fields
(commit, time) are not compared. With no NAME, every report.

Reports:
- anercorp-test: `arabtag tag --conll-in` on the ANERcorp test file (the
  head's own labels, whole tokens), scored in seqeval's default and strict
  IOB2 modes, four types; plus three types (MISC left out), computed from
  the per-type counts.
- seeds-ner / seeds-stance: `arabtag tag` on the seed articles against
  seeds/gold.jsonl: every entity mode of the eval crate (strict, exact,
  partial, type, clitic-tolerant; per type, micro, macro), segments and
  documents. Both come from one tagging run.
- stance-dev, stance-dev-prototypes: `arabtag tag` on data/stance/dev.jsonl
  (one segment a record) against its labels, with models/default.toml (the
  trained head) and models/e5-prototypes.toml: per label, segment micro and
  macro. Their thresholds were fitted on this dev set.
- stance-dev-articles: the dev set's whole round-2 articles (rows with a
  `doc`: headlines, datelines, boilerplate, broken sentences), each
  segment a line of one document, tagged with models/default.toml:
  segments and documents (the union of a document's labels).
"""

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "eval" / "reports"
MODEL = Path("models/default.toml")
PROTOTYPES = Path("models/e5-prototypes.toml")
ANER_TEST = Path("data/anercorp/ANERCorp_CamelLab_test.txt")
SEEDS = Path("seeds")
GOLD = SEEDS / "gold.jsonl"
STANCE_DEV = Path("data/stance/dev.jsonl")


def sha256(path):
    return hashlib.sha256((ROOT / path).read_bytes()).hexdigest()


def model_files(config):
    """The config and every `path = "..."` it names (relative to its folder)."""
    text = (ROOT / config).read_text(encoding="utf-8")
    files = {str(config): sha256(config)}
    for rel in re.findall(r'path\s*=\s*"([^"]+)"', text):
        p = (config.parent / rel)
        files[str(p)] = sha256(p)
    return files


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


WORK = {"dir": None}


def run(cmd):
    shown = " ".join(str(c) for c in cmd).replace(f"{ROOT}/", "")
    if WORK["dir"]:
        shown = shown.replace(str(WORK["dir"]), "$WORK")
    print(f"$ {shown}", file=sys.stderr)
    done = subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True)
    if done.returncode not in (0, 2):
        sys.exit(f"failed ({done.returncode}): {shown}\n{done.stderr}")
    return done, shown


def micro_without(scores, dropped):
    """Micro P/R/F1 from the per-type counts, leaving out `dropped` types."""
    tp = pred = gold = 0
    for kind, s in scores["per_type"].items():
        if kind in dropped:
            continue
        tp, pred, gold = tp + s["tp"], pred + s["predicted"], gold + s["support"]
    p = tp / pred if pred else 0.0
    r = tp / gold if gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "tp": tp, "predicted": pred, "support": gold}


def anercorp_test(binary, work):
    pred = work / "anercorp-test.pred.txt"
    _, tag = run([binary, "tag", "--model", MODEL, "--conll-in", ANER_TEST, "-o", pred])
    done, score = run([binary, "eval", "--conll", "--gold", ANER_TEST, "--pred", pred, "--json"])
    report = json.loads(done.stdout)
    three = {mode: micro_without(report[mode], {"MISC"}) for mode in ("default", "strict")
             if report.get(mode)}
    return {"commands": [tag, score], "data": {str(ANER_TEST): sha256(ANER_TEST)},
            "report": report, "three_types_micro": three}


def seeds(binary, work):
    pred = work / "seeds.pred.jsonl"
    articles = [p.relative_to(ROOT) for p in sorted((ROOT / SEEDS).glob("*.txt"))]
    _, tag = run([binary, "tag", "--model", MODEL, *articles, "-o", pred])
    done, score = run([binary, "eval", "--gold", GOLD, "--pred", pred, "--docs", SEEDS, "--json"])
    report = json.loads(done.stdout)
    data = {str(GOLD): sha256(GOLD)}
    data.update({str(p.relative_to(ROOT)): sha256(p.relative_to(ROOT))
                 for p in sorted((ROOT / SEEDS).glob("*.txt"))})
    ner = {k: v for k, v in report.items() if k not in ("segments", "documents")}
    stance = {k: report[k] for k in ("segments", "documents") if k in report}
    common = {"commands": [tag, score], "data": data}
    return {"seeds-ner": dict(common, report=ner), "seeds-stance": dict(common, report=stance)}


def stance_dev(binary, work, model=MODEL):
    rows = [json.loads(l) for l in (ROOT / STANCE_DEV).read_text(encoding="utf-8").splitlines()]
    docs = work / "stance-dev.docs.jsonl"
    gold = work / "stance-dev.gold.jsonl"
    with docs.open("w", encoding="utf-8") as d, gold.open("w", encoding="utf-8") as g:
        for r in sorted(rows, key=lambda r: r["id"]):
            d.write(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n")
            seg = {"start": 0, "end": len(r["text"]), "labels": r["labels"]}
            g.write(json.dumps({"id": r["id"], "entities": [], "segments": [seg]},
                               ensure_ascii=False) + "\n")
    pred = work / f"stance-dev.{model.stem}.pred.jsonl"
    return stance_report(binary, model, docs, gold, pred, "gold and docs written from the dev file")


def stance_report(binary, model, docs, gold, pred, how):
    """Tags `docs` with `model`, scores against `gold`: the report of the
    stance parts (segments, documents) of the dev file."""
    _, tag = run([binary, "tag", "--model", model, docs, "-o", pred])
    done, score = run([binary, "eval", "--gold", gold, "--pred", pred, "--json"])
    report = json.loads(done.stdout)
    stance = {k: report[k] for k in ("segments", "documents") if k in report}
    return {"commands": [tag, f"{score}  ({how})"],
            "data": {str(STANCE_DEV): sha256(STANCE_DEV)}, "report": stance,
            "model_config": str(model), "model_files": model_files(model)}


def stance_dev_articles(binary, work, model=MODEL):
    rows = [json.loads(l) for l in (ROOT / STANCE_DEV).read_text(encoding="utf-8").splitlines()]
    articles = {}
    for r in rows:
        if "doc" in r:
            articles.setdefault(r["doc"], []).append(r)
    docs = work / "stance-articles.docs.jsonl"
    gold = work / "stance-articles.gold.jsonl"
    with docs.open("w", encoding="utf-8") as d, gold.open("w", encoding="utf-8") as g:
        for doc_id in sorted(articles):
            segments, at = [], 0
            for r in articles[doc_id]:
                segments.append({"start": at, "end": at + len(r["text"]), "labels": r["labels"]})
                at += len(r["text"]) + 1
            text = "\n".join(r["text"] for r in articles[doc_id]) + "\n"
            d.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")
            g.write(json.dumps({"id": doc_id, "entities": [], "segments": segments},
                               ensure_ascii=False) + "\n")
    pred = work / "stance-articles.pred.jsonl"
    return stance_report(binary, model, docs, gold, pred,
                         "articles rebuilt from the dev file, a segment a line")


def make_all(binary, names, work):
    out = {}
    if "anercorp-test" in names:
        out["anercorp-test"] = anercorp_test(binary, work)
    if names & {"seeds-ner", "seeds-stance"}:
        out.update({k: v for k, v in seeds(binary, work).items() if k in names})
    if "stance-dev" in names:
        out["stance-dev"] = stance_dev(binary, work)
    if "stance-dev-prototypes" in names:
        out["stance-dev-prototypes"] = stance_dev(binary, work, PROTOTYPES)
    if "stance-dev-articles" in names:
        out["stance-dev-articles"] = stance_dev_articles(binary, work)
    for value in out.values():
        value.setdefault("model_files", model_files(MODEL))
        value.setdefault("model_config", str(MODEL))
        value["commit"] = git_commit()
    return out


def strip_provenance(value):
    """The report with the fields that vary between runs removed."""
    if isinstance(value, dict):
        return {k: strip_provenance(v) for k, v in value.items()
                if k not in ("commit", "git_commit", "created", "time", "version", "crate_version")}
    if isinstance(value, list):
        return [strip_provenance(v) for v in value]
    return value


def differences(old, new, path=""):
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            if k not in old or k not in new:
                yield f"{path}/{k}: only in {'recorded' if k in old else 'new'}"
            else:
                yield from differences(old[k], new[k], f"{path}/{k}")
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            yield from differences(a, b, f"{path}[{i}]")
    elif isinstance(old, float) or isinstance(new, float):
        if not (isinstance(old, (int, float)) and isinstance(new, (int, float))
                and abs(old - new) <= 1e-12):
            yield f"{path}: recorded {old}, now {new}"
    elif old != new:
        yield f"{path}: recorded {old}, now {new}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["run", "check"])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--bin", default="target/release/arabtag")
    args = parser.parse_args()
    known = {"anercorp-test", "seeds-ner", "seeds-stance", "stance-dev", "stance-dev-prototypes",
             "stance-dev-articles"}
    names = set(args.names) or known
    if names - known:
        sys.exit(f"unknown report(s): {sorted(names - known)}; known: {sorted(known)}")
    binary = ROOT / args.bin
    with tempfile.TemporaryDirectory() as tmp:
        WORK["dir"] = Path(tmp)
        made = make_all(binary, names, Path(tmp))
    failed = False
    for name, value in sorted(made.items()):
        path = OUT / f"{name}.json"
        text = json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
        if args.action == "run":
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
            continue
        if not path.exists():
            print(f"{name}: no recorded report {path.relative_to(ROOT)}", file=sys.stderr)
            failed = True
            continue
        recorded = json.loads(path.read_text(encoding="utf-8"))
        diffs = list(differences(strip_provenance(recorded), strip_provenance(value)))
        if diffs:
            failed = True
            print(f"{name}: {len(diffs)} difference(s) from {path.relative_to(ROOT)}",
                  file=sys.stderr)
            for d in diffs[:40]:
                print(f"  {d}", file=sys.stderr)
        else:
            print(f"{name}: same as recorded")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
