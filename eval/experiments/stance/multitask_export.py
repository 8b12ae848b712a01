"""Writes a multitask.py run as the tagger's two head files.

- NER: the trunk's eight layers and the token head, as `arabtag train ner`
  writes them (`encoder.layer.0-7.*`, matrices 8-bit with an f32 scale per
  row, vectors f16; `weight`/`bias` f32; the labels in the metadata);
- stance: its own layers, named by the places they take in the NER network
  (`encoder.layer.B.*` …), and the pooled head (`weight`/`bias`).

    python3 eval/experiments/stance/multitask_export.py target/mt/release/best.pt \
        --branch 7 --own 1 --ner models/heads/e5-mt-ner.safetensors \
        --stance models/heads/e5-mt-stance.safetensors \
        --config-from models/default.toml --config target/mt/release/mt.toml

`--config` writes a model config: `--config-from`'s, its file paths made
absolute, naming the two files (with their sha256) and `stance.trunk =
"ner"`, without `stance.calibration` (for `arabtag train calibrate`).
"""

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "target" / "bench-peers" / "torch"))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

NER_LABELS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PERS", "I-PERS"]
STANCE_LABELS = ["mediation", "conflict", "energy"]


def q8(w):
    """Rows as `round(w / scale) + 128`, scale `max |w| / 127` (the format
    of crates/arabtag-infer/src/models/head_file.rs)."""
    w = w.float()
    scale = w.abs().amax(1) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = (w / scale[:, None])
    q = torch.sign(q) * torch.floor(q.abs() + 0.5)  # half away from zero, as Rust's round
    return (q.clamp(-127, 127) + 128).to(torch.uint8), scale.float()


def layer_tensors(state, src, dst):
    out = {}
    for name, t in state.items():
        if not name.startswith(src):
            continue
        rest = name[len(src):]
        key = dst + rest
        if rest.endswith(".weight") and t.dim() == 2:
            q, s = q8(t)
            out[key + ".q8"] = q.contiguous()
            out[key + ".scale"] = s.contiguous()
        else:
            out[key] = t.to(torch.float16).contiguous()
    return out


def write_config(src, dst, ner, stance):
    """`src` (a model config) naming `ner` and `stance` as its heads."""
    sha = lambda p: hashlib.sha256(Path(p).read_bytes()).hexdigest()
    text = Path(src).read_text(encoding="utf-8")
    base = Path(src).resolve().parent
    text = re.sub(r'path = "([^"/][^"]*)"', lambda m: f'path = "{base / m.group(1)}"', text)
    head = r'head = \{ path = "[^"]*"(, sha256 = "[0-9a-f]*")? \}'
    sections = re.split(r"(?m)^(?=\[)", text)
    for i, sec in enumerate(sections):
        if sec.startswith("[ner]"):
            sec = re.sub(head, f'head = {{ path = "{Path(ner).resolve()}", sha256 = "{sha(ner)}" }}', sec)
        elif sec.startswith("[stance]"):
            sec = re.sub(head, f'head = {{ path = "{Path(stance).resolve()}", sha256 = "{sha(stance)}" }}', sec)
            sec = re.sub(r'(?m)^(trunk|calibration) = .*\n', "", sec)
            sec = re.sub(r'(?m)^(head = .*\n)', r'\1trunk = "ner"\n', sec)
        sections[i] = sec
    Path(dst).write_text("".join(sections), encoding="utf-8")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--branch", type=int, required=True)
    ap.add_argument("--own", type=int, required=True)
    ap.add_argument("--ner", required=True)
    ap.add_argument("--stance", required=True)
    ap.add_argument("--config-from", help="a model config to write --config from")
    ap.add_argument("--config", help="the model config to write")
    a = ap.parse_args()
    state = torch.load(a.checkpoint, map_location="cpu")
    ner = {}
    for i in range(8):
        ner |= layer_tensors(state, f"ner.bert.encoder.layer.{i}.", f"encoder.layer.{i}.")
    ner["weight"] = state["ner.classifier.weight"].float().contiguous()
    ner["bias"] = state["ner.classifier.bias"].float().contiguous()
    save_file(ner, a.ner, metadata={"labels": json.dumps(NER_LABELS)})
    stance = {}
    for i in range(a.own):
        stance |= layer_tensors(state, f"own.{i}.", f"encoder.layer.{a.branch + i}.")
    stance["weight"] = state["head.weight"].float().contiguous()
    stance["bias"] = state["head.bias"].float().contiguous()
    save_file(stance, a.stance, metadata={"labels": json.dumps(STANCE_LABELS)})
    print(f"{a.ner}: {len(ner)} tensors; {a.stance}: {len(stance)} tensors")
    if a.config:
        write_config(a.config_from or ROOT / "models/default.toml", a.config, a.ner, a.stance)
        print(f"{a.config}: the config naming them")


if __name__ == "__main__":
    main()
