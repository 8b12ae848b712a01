#!/usr/bin/env python3
"""Build the news NER set from the marked-up files in data/ner-news/raw/.

  python3 data/ner-news/tools/build.py build      write data/ner-news/{train,dev}.jsonl
  python3 data/ner-news/tools/build.py check      fail unless those files are what build writes
  python3 data/ner-news/tools/build.py conll OUT  write OUT/news-{train,dev}.conll and
                                                  OUT/news-dev.{docs,gold}.jsonl (a document
                                                  per dev topic)
  python3 data/ner-news/tools/build.py mix ANER OUT   OUT/mix-train.conll: news train +
                                                  ANERcorp train (its MISC becomes O)
  python3 data/ner-news/tools/build.py names FILE  the first words of train.jsonl's PER, ORG
                                                  and LOC mentions, one a line (ner.names)
  python3 data/ner-news/tools/build.py stats      counts per split and type

The split is by topic: a topic is dev when the first byte of the sha256 of
its slug is below 32 (an eighth of the topics), so every sentence of a story
lands on the same side. Sentence records:
  {"id": "w1-0001", "topic": "w1-...", "text": "...",
   "entities": [{"start", "end", "type", "text"}]}
with offsets in characters (Python str indexes). In the CoNLL files a word
(white-space token, punctuation attached, as the tagger splits words) gets
B-/I- of the entity its first letter (or, for a proclitic-attached word, its
rest) belongs to, PER written PERS as in ANERcorp; DATE becomes O (dates
come from the rules).
"""
import hashlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check import MARK, parse_line  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "raw"
MODEL_TYPES = ("PER", "ORG", "LOC")
# The CoNLL files name types as ANERcorp does (PERS), so that the trained head's
# own labels (`arabtag tag --conll-in`) score against ANERcorp's test file.
CONLL_TYPE = {"PER": "PERS"}


def is_dev(topic):
    return hashlib.sha256(topic.encode("utf-8")).digest()[0] < 32


def read_raw():
    records = []
    for path in sorted(RAW.glob("w*/*.txt")):
        topic = None
        writer = path.parent.name
        with open(path, encoding="utf-8") as f:
            for no, raw in enumerate(f, 1):
                line = raw.rstrip("\n")
                if not line.strip():
                    continue
                if line.startswith("#"):
                    if line.lstrip("# ").startswith("topic:"):
                        topic = line.split(":", 1)[1].strip()
                    continue
                text, spans, errors = parse_line(line)
                if errors or topic is None:
                    sys.exit(f"{path}:{no}: {errors or 'no topic'} (run tools/check.py)")
                records.append({
                    "id": f"{writer}-{path.stem}-{no:04d}",
                    "topic": topic,
                    "text": text,
                    "entities": [{"start": s, "end": e, "type": k, "text": m} for s, e, k, m in spans],
                })
    return records


def splits():
    train, dev = [], []
    for r in read_raw():
        (dev if is_dev(r["topic"]) else train).append(r)
    return train, dev


def dump(records):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def words(text):
    """White-space words with their character spans (str.split with spans)."""
    out, i, n = [], 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        j = i
        while j < n and not text[j].isspace():
            j += 1
        out.append((i, j))
        i = j
    return out


def conll_sentence(record):
    lines = []
    prev = None  # the entity index of the previous word
    for s, e in words(record["text"]):
        tag, cur = "O", None
        for k, ent in enumerate(record["entities"]):
            if ent["start"] < e and s < ent["end"] and ent["type"] in MODEL_TYPES:
                cur = k
                tag = ("I-" if prev == k else "B-") + CONLL_TYPE.get(ent["type"], ent["type"])
                break
        prev = cur
        lines.append(f"{record['text'][s:e]} {tag}")
    return "\n".join(lines) + "\n\n"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def names_text():
    """The names list: the first words of train.jsonl's PER, ORG and LOC mentions."""
    train = [json.loads(l) for l in open(ROOT / "train.jsonl", encoding="utf-8")]
    firsts = set()
    for r in train:
        for e in r["entities"]:
            if e["type"] in MODEL_TYPES:
                word = e["text"].split()[0].strip("\"'«»“”()[]،,.:;!؟?-")
                if word:
                    firsts.add(word)
    head = ("# The first words of the PER, ORG and LOC mentions of data/ner-news/train.jsonl\n"
            "# (the guideline's spans: no proclitic), one a line: evidence for the tagger's\n"
            "# proclitic rule (ner.names). Written by data/ner-news/tools/build.py names.\n")
    return head + "".join(w + "\n" for w in sorted(firsts))


def main(argv):
    cmd = argv[1] if len(argv) > 1 else "stats"
    train, dev = splits()
    if cmd == "build":
        write(ROOT / "train.jsonl", dump(train))
        write(ROOT / "dev.jsonl", dump(dev))
    elif cmd == "check":
        for name, recs in (("train.jsonl", train), ("dev.jsonl", dev)):
            if (ROOT / name).read_text(encoding="utf-8") != dump(recs):
                sys.exit(f"data/ner-news/{name} is not what raw/ builds: run tools/build.py build")
        names = ROOT.parent.parent / "models/heads/e5-ner-names.txt"
        if names.read_text(encoding="utf-8") != names_text():
            sys.exit("models/heads/e5-ner-names.txt is not what train.jsonl gives: run "
                     "tools/build.py names models/heads/e5-ner-names.txt (and re-pin it in models/fetch.py)")
        print(f"data/ner-news: train {len(train)} and dev {len(dev)} sentences match raw/; the names list is current")
    elif cmd == "conll":
        out = Path(argv[2])
        train = [json.loads(l) for l in open(ROOT / "train.jsonl", encoding="utf-8")]
        dev = [json.loads(l) for l in open(ROOT / "dev.jsonl", encoding="utf-8")]
        write(out / "news-train.conll", "".join(conll_sentence(r) for r in train))
        write(out / "news-dev.conll", "".join(conll_sentence(r) for r in dev))
        # The dev documents for the whole tagger: one per topic, its lines
        # joined by line breaks, as an article reads.
        docs = {}
        for r in dev:
            docs.setdefault(r["topic"], []).append(r)
        doc_lines, gold_lines = [], []
        for topic in sorted(docs):
            text, entities = "", []
            for r in docs[topic]:
                if text:
                    text += "\n"
                base = len(text)
                entities += [dict(e, start=e["start"] + base, end=e["end"] + base) for e in r["entities"]]
                text += r["text"]
            doc_lines.append(json.dumps({"id": topic, "text": text}, ensure_ascii=False) + "\n")
            gold_lines.append(json.dumps({"id": topic, "entities": entities, "segments": []}, ensure_ascii=False) + "\n")
        write(out / "news-dev.docs.jsonl", "".join(doc_lines))
        write(out / "news-dev.gold.jsonl", "".join(gold_lines))
    elif cmd == "mix":
        aner, out = Path(argv[2]), Path(argv[3])
        train = [json.loads(l) for l in open(ROOT / "train.jsonl", encoding="utf-8")]
        parts = [conll_sentence(r) for r in train]
        sent = []
        for line in open(aner, encoding="utf-8"):
            line = line.strip()
            if not line:
                if sent:
                    parts.append("\n".join(sent) + "\n\n")
                    sent = []
                continue
            tok, tag = line.rsplit(None, 1)
            if tag.endswith("MISC"):
                tag = "O"
            sent.append(f"{tok} {tag}")
        if sent:
            parts.append("\n".join(sent) + "\n\n")
        write(out / "mix-train.conll", "".join(parts))
    elif cmd == "names":
        write(Path(argv[2]), names_text())
    elif cmd == "stats":

        for name, recs in (("train", train), ("dev", dev)):
            counts = {}
            for r in recs:
                for e in r["entities"]:
                    counts[e["type"]] = counts.get(e["type"], 0) + 1
            topics = len({r["topic"] for r in recs})
            print(f"{name}: {len(recs)} sentences, {topics} topics, {sum(counts.values())} mentions: "
                  + ", ".join(f"{k} {counts.get(k, 0)}" for k in ("PER", "ORG", "LOC", "DATE")))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
