#!/usr/bin/env python3
"""Check and count the marked-up news NER sentences (data/ner-news/raw/).

File format (UTF-8 text):
  # topic: <slug>          sets the topic of the lines below it
  # anything else          a comment, ignored
  <blank>                  ignored
  any other line           one sentence (or headline, dateline, caption...),
                           entities marked inline as [[TYPE|mention]]

TYPE is PER, ORG, LOC or DATE. A proclitic (و ف ب ل ك س) stays outside the
brackets: و[[LOC|روسيا]], ب[[LOC|موسكو]], ل[[ORG|لاتحاد الأوروبي]].

  python3 data/ner-news/tools/check.py FILE...   errors, warnings and counts
Exit status 1 when a file has errors.
"""
import re
import sys
import unicodedata

TYPES = {"PER", "ORG", "LOC", "DATE"}
MARK = re.compile(r"\[\[([A-Z]+)\|([^\[\]|]+)\]\]")
PROCLITICS = set("وفبلكس")
SUSPECT_STARTS = ("وال", "بال", "فال", "كال", "لل", "ولل", "وبال", "فبال")


def parse_line(line):
    """Returns (text, [(start, end, type, mention)], [errors])."""
    out, spans, errors = [], [], []
    pos = 0
    n = 0
    for m in MARK.finditer(line):
        out.append(line[pos:m.start()])
        n += sum(len(s) for s in out[-1:])
        start = sum(len(s) for s in out)
        kind, mention = m.group(1), m.group(2)
        if kind not in TYPES:
            errors.append(f"unknown type {kind!r}")
        if mention != mention.strip():
            errors.append(f"mention {mention!r} has spaces at its ends")
        if mention and (unicodedata.category(mention[0])[0] == "P" or unicodedata.category(mention[-1])[0] == "P"):
            if not mention.endswith("."):
                errors.append(f"mention {mention!r} starts or ends with punctuation")
        out.append(mention)
        spans.append((start, start + len(mention), kind, mention))
        pos = m.end()
    out.append(line[pos:])
    text = "".join(out)
    if "[[" in text or "]]" in text:
        errors.append("unbalanced or malformed [[...]] mark")
    return text, spans, errors


def warnings_for(text, spans):
    warns = []
    for s, e, kind, mention in spans:
        if kind != "DATE" and mention.startswith(SUSPECT_STARTS):
            warns.append(f"{mention!r}: a proclitic inside the span? (e.g. و[[LOC|القاهرة]], ل[[ORG|لاتحاد ...]])")
        # the letters glued before the mark must be proclitics only
        i = s
        while i > 0 and not text[i - 1].isspace() and text[i - 1].isalpha():
            i -= 1
        glued = text[i:s]
        glued = glued.replace("\u0640", "")  # a tatweel after the proclitic (لـ)
        if glued and (not set(glued) <= PROCLITICS or len(glued) > 2):
            warns.append(f"{mention!r}: glued to {glued!r}, which is not a proclitic")
        if e < len(text) and text[e].isalpha() and kind != "DATE":
            warns.append(f"{mention!r}: the mark ends inside a word ({text[e:e+6]!r})")
    return warns


def main(paths):
    total = {t: 0 for t in sorted(TYPES)}
    lines_total = 0
    bad = False
    for path in paths:
        counts = {t: 0 for t in sorted(TYPES)}
        n_lines = 0
        topic = None
        with open(path, encoding="utf-8") as f:
            for no, raw in enumerate(f, 1):
                line = raw.rstrip("\n")
                if not line.strip():
                    continue
                if line.startswith("#"):
                    m = re.match(r"#\s*topic:\s*(\S+)", line)
                    if m:
                        topic = m.group(1)
                    continue
                if topic is None:
                    print(f"{path}:{no}: error: sentence before any '# topic:' line")
                    bad = True
                text, spans, errors = parse_line(line)
                for e in errors:
                    print(f"{path}:{no}: error: {e}")
                    bad = True
                for w in warnings_for(text, spans):
                    print(f"{path}:{no}: warning: {w}")
                n_lines += 1
                for _, _, k, _ in spans:
                    if k in counts:
                        counts[k] += 1
        lines_total += n_lines
        for k in counts:
            total[k] += counts[k]
        print(f"{path}: {n_lines} sentences, " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f", mentions {sum(counts.values())}")
    if len(paths) > 1:
        print(f"TOTAL: {lines_total} sentences, " + ", ".join(f"{k} {v}" for k, v in total.items()) + f", mentions {sum(total.values())}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
