#!/usr/bin/env python3
"""Write the CoNLL fixtures of `arabtag eval --conll` and seqeval's numbers for them.

    pip install seqeval          # 1.2.2 made the committed numbers
    python3 eval/conll/make_fixtures.py

For every fixture, `eval/conll/fixtures/NAME.expected.json` holds the gold and
prediction paths (relative to the repository root) and what
`seqeval.metrics.classification_report(y_true, y_pred, output_dict=True)` gives
in its default mode and with `mode='strict', scheme=IOB2` (or the exception
seqeval raises there). NaN (seqeval's macro average when there is no entity
type at all) is written as null. The Rust test
`arabtag-eval conll::tests` compares every number to 1e-9.

Fixtures: small hand-made pairs covering ill-formed sequences (I- after O,
I-X after B-Y, E-/S- tags, odd tags, empty sentences, all-O), and the ANERcorp
test split scored against itself and against a seeded, deterministic
corruption of it (entities dropped, shifted, retagged, broken, added), written
to `fixtures/anercorp_test.corrupted.txt`.

Files are read as the Rust reader reads them: lines split at "\\n" (a final
"\\r" dropped), token = first and tag = last white-space separated column, a
blank line ends a sentence. Here every blank line ends one, so a run of blank
lines gives seqeval empty sentences, which the Rust reader drops: the fixtures
show that this changes no number.

This script installs nothing.
"""

import json
import math
import random
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

try:
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2
except ImportError:  # pragma: no cover
    sys.exit("seqeval is missing: pip install seqeval")

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "eval" / "conll" / "fixtures"
ANER_TEST = ROOT / "data" / "anercorp" / "ANERCorp_CamelLab_test.txt"
SEED = 20240917


def read(path):
    """Sentences of (token, tag); every blank line ends one (empty ones kept)."""
    sentences, current = [], []
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    for line in lines:
        line = line[:-1] if line.endswith("\r") else line
        cols = line.split()
        if not cols:
            sentences.append(current)
            current = []
            continue
        if len(cols) < 2:
            raise ValueError(f"{path}: {line!r}: expected a token and a tag")
        current.append((cols[0], cols[-1]))
    if current:
        sentences.append(current)
    return sentences


def write(path, sentences):
    """One `token TAG` a line, a blank line after every sentence."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for sent in sentences:
            for token, tag in sent:
                f.write(f"{token} {tag}\n")
            f.write("\n")


def clean(report):
    out = {}
    for name, row in report.items():
        out[name] = {}
        for key, value in row.items():
            value = value.item() if hasattr(value, "item") else value
            if isinstance(value, float) and math.isnan(value):
                value = None
            out[name][key] = value
    return out


def score(gold_path, pred_path):
    gold = [[tag for _, tag in s] for s in read(gold_path)]
    pred = [[tag for _, tag in s] for s in read(pred_path)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = clean(classification_report(gold, pred, output_dict=True))
        try:
            strict = clean(
                classification_report(gold, pred, output_dict=True, mode="strict", scheme=IOB2)
            )
        except (ValueError, KeyError) as e:
            strict = {"error": f"{type(e).__name__}: {e}"}
    return default, strict


def fixture(name, gold_path, pred_path, note):
    default, strict = score(gold_path, pred_path)
    expected = {
        "note": note,
        "seqeval": version("seqeval"),
        "gold": gold_path.relative_to(ROOT).as_posix(),
        "pred": pred_path.relative_to(ROOT).as_posix(),
        "default": default,
        "strict": strict,
    }
    path = OUT / f"{name}.expected.json"
    path.write_text(json.dumps(expected, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{path.relative_to(ROOT)}: micro F1 default {default.get('micro avg', {}).get('f1-score')}")


def hand_made(name, pairs, note, blank_runs=()):
    """`pairs`: sentences of (token, gold tag, pred tag). `blank_runs`: indexes
    of sentences after which an empty sentence (a second blank line) follows."""
    gold = OUT / f"{name}.gold.txt"
    pred = OUT / f"{name}.pred.txt"
    for path, col in ((gold, 1), (pred, 2)):
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for i, sent in enumerate(pairs):
                for row in sent:
                    f.write(f"{row[0]} {row[col]}\n")
                f.write("\n")
                if i in blank_runs:
                    f.write("\n")
    fixture(name, gold, pred, note)


def sent(text):
    """'tok gold pred; tok gold pred' -> [(tok, gold, pred), ...]"""
    return [tuple(part.split()) for part in text.split(";") if part.strip()]


def corrupt(sentences, rng):
    """A prediction from gold IOB2: entities dropped, shifted, retagged,
    broken (B- turned I-), and spurious ones added."""
    types = ["LOC", "PERS", "ORG", "MISC"]
    out = []
    for s in sentences:
        tags = [tag for _, tag in s]
        chunks, i = [], 0
        while i < len(tags):
            if tags[i].startswith("B-"):
                kind, j = tags[i][2:], i + 1
                while j < len(tags) and tags[j] == "I-" + kind:
                    j += 1
                chunks.append((i, j, kind))
                i = j
            else:
                i += 1
        new = list(tags)
        for start, end, kind in chunks:
            r = rng.random()
            if r < 0.08:  # drop
                for k in range(start, end):
                    new[k] = "O"
            elif r < 0.16:  # shift the end by one token
                if end < len(new) and new[end] == "O":
                    new[end] = "I-" + kind
                elif end - start > 1:
                    new[end - 1] = "O"
            elif r < 0.24:  # retag
                other = rng.choice([t for t in types if t != kind])
                new[start] = "B-" + other
                for k in range(start + 1, end):
                    new[k] = "I-" + other
            elif r < 0.28:  # break: I- after O (default mode keeps it, strict drops it)
                new[start] = "I-" + kind
            elif r < 0.31 and end - start > 1:  # type change inside
                new[end - 1] = "I-" + rng.choice([t for t in types if t != kind])
        for k in range(len(new)):
            if new[k] == "O" and tags[k] == "O" and rng.random() < 0.01:  # spurious
                new[k] = "B-" + rng.choice(types)
        out.append([(tok, tag) for (tok, _), tag in zip(s, new)])
    return out


def main():
    OUT.mkdir(parents=True, exist_ok=True)

    hand_made(
        "ill_formed",
        [
            sent("a B-PER B-PER; b I-PER I-PER; c O O; d B-LOC I-LOC; e O O"),
            # I- after O starts a chunk in default mode only
            sent("f O O; g I-ORG I-ORG; h I-ORG I-ORG; i O B-ORG; j I-ORG I-ORG"),
            # I-X after B-Y: a type change ends a chunk
            sent("k B-PER B-PER; l I-PER I-LOC; m I-PER I-LOC; n O O"),
            # all O
            sent("o O O; p O O"),
            # a chunk at the end of a sentence does not run into the next one
            sent("q O O; r B-LOC B-LOC"),
            sent("s I-LOC I-LOC; t O B-MISC"),
            # B- after B- of the same type: two chunks
            sent("u B-LOC B-LOC; v B-LOC I-LOC; w I-ORG O"),
        ],
        "I- after O, I-X after B-Y, B-X B-X, sentence ends, an all-O sentence, empty sentences",
        blank_runs=(0, 3),
    )
    hand_made(
        "iobes",
        [
            sent("a B-PER B-PER; b E-PER E-PER; c S-LOC S-LOC; d O O"),
            sent("e S-ORG B-ORG; f B-ORG E-ORG; g I-ORG O; h E-ORG S-ORG; i E-ORG E-ORG"),
            sent("j E-LOC I-LOC; k I-LOC E-LOC; l S-PER S-LOC; m I-PER I-PER"),
        ],
        "E- and S- prefixes: default mode reads them as conlleval does; strict IOB2 refuses them",
    )
    hand_made(
        "odd_tags",
        [
            sent("a B B; b I I; c O O; d B-PER- B-PER; e I-PER I-PER-"),
            sent("f Bfoo Bfoo; g Ifoo I-foo; h B--LOC B--LOC; i I--LOC I-LOC; j O O"),
            sent("k B-A-B B-A-B; l I-A-B I-A; m O O"),
        ],
        "tags without a type, with trailing or doubled '-', without a '-', with a '-' in the type",
    )
    hand_made(
        "all_o",
        [sent("a O O; b O O"), sent("c O O")],
        "no entity anywhere: seqeval's macro average is NaN (null here), the rest 0",
        blank_runs=(0,),
    )
    hand_made(
        "pred_only_types",
        [
            sent("a B-PER B-PER; b O B-ORG; c O I-ORG"),
            sent("d B-LOC O; e O B-MISC"),
        ],
        "types that only the prediction has (support 0), a missed LOC",
    )

    rng = random.Random(SEED)
    for name, alphabet, note in (
        (
            "random_iob2",
            ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "B-ORG"],
            "random B-/I-/O sequences of three types (ill-formed ones included)",
        ),
        (
            "random_any",
            ["O", "O", "B-X", "I-X", "E-X", "S-X", "B-Y", "I-Y", "E-Y", "S-Y", "I", "B", ".", "X", "I-", "B-Y-", "Z-X"],
            "random sequences of every prefix seqeval's default mode knows, and odd tags",
        ),
    ):
        pairs = []
        for _ in range(60):
            n = rng.randint(0, 12)
            pairs.append([(f"t{k}", rng.choice(alphabet), rng.choice(alphabet)) for k in range(n)])
        pairs = [p for p in pairs if p]
        hand_made(name, pairs, f"{note} (random.Random({SEED}))")

    gold = read(ANER_TEST)
    fixture(
        "anercorp_test_self",
        ANER_TEST,
        ANER_TEST,
        "ANERcorp test split (CAMeL Lab) against itself",
    )
    corrupted = OUT / "anercorp_test.corrupted.txt"
    write(corrupted, corrupt(gold, random.Random(SEED)))
    fixture(
        "anercorp_test_corrupted",
        ANER_TEST,
        corrupted,
        f"ANERcorp test split against a corruption of it (random.Random({SEED}))",
    )


if __name__ == "__main__":
    main()
