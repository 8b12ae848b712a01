"""One trunk for NER and stance (issue 18): how the default model was trained.

The NER network (`arabtag models export`: e5 layers 1-8 fine-tuned for NER,
and its token head) is trained further, jointly, for NER and for stance:
stance gets K layers of its own on top of trunk layer B (initialised as
copies of the trunk's layers B+1..B+K) and a pooled head (mean over the
window's positions, L2-normalised, one logistic output per label), as the
released stance head reads. The whole tag would then run 8 + K layers a
segment instead of 8 + 12.

Losses, every batch a mix of both data sets:
- NER: cross-entropy against the gold tags (data/ner-news train + ANERcorp,
  the NER release's training file), and KL to the frozen NER network's own
  distribution on every sentence of both sets (so that NER stays itself);
- stance: binary cross-entropy against the gold labels (data/stance train),
  and against the released stance model's calibrated scores on the NER
  sentences (`arabtag tag`, sentences that are one segment).

Measured on the dev sets only (data/ner-news dev: strict span F1 on words,
argmax; data/stance dev: macro-F1 with per-label thresholds fitted on dev,
the release's recipe). The seeds are not read.

Usage (torch from bench/peers.py's folder; `make train-mt` runs the
released recipe, models/heads/e5-mt.md):
    python3 eval/experiments/stance/multitask.py --branch 7 --own 1 --epochs 2 --evals 2
"""

import argparse
import copy
import json
import math
import random
import sys
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "target" / "bench-peers" / "torch"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import BertForTokenClassification  # noqa: E402

LABELS = ["mediation", "conflict", "energy"]
TASHKEEL = {chr(c) for c in range(0x064B, 0x0660)} | {"\u0670", "\u0640"}
DIGITS = {chr(0x0660 + i): str(i) for i in range(10)} | {chr(0x06F0 + i): str(i) for i in range(10)}


def normalise(word):
    word = unicodedata.normalize("NFKC", word)
    return "".join(DIGITS.get(c, c) for c in word if c not in TASHKEEL)


def read_conll(path):
    sents, cur = [], []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            if cur:
                sents.append(cur)
                cur = []
            continue
        parts = line.split(" ")
        cur.append((parts[0], parts[-1]))
    if cur:
        sents.append(cur)
    return sents


class Encoder:
    def __init__(self, path, tags, max_len):
        self.tok = Tokenizer.from_file(str(path))
        self.tok.no_truncation()
        self.tags = {t: i for i, t in enumerate(tags)}
        self.max_len = max_len

    def encode(self, words, tags=None):
        words = [normalise(w) for w in words]
        words = [w for w in words if w] or ["."]
        enc = self.tok.encode(words, is_pretokenized=True)
        ids, wid = enc.ids, enc.word_ids
        ids, wid = ids[: self.max_len - 1] + [ids[-1]], wid[: self.max_len - 1] + [None]
        first, seen = [], set()
        labels = []
        for pos, w in enumerate(wid):
            if w is not None and w not in seen:
                seen.add(w)
                first.append(pos)
                if tags is not None:
                    labels.append(self.tags.get(tags[w], 0))
        return ids, first, labels


def batches(items, tokens_per_batch, rng):
    order = sorted(range(len(items)), key=lambda i: (len(items[i]["ids"]), rng.random()))
    out, cur, longest = [], [], 0
    for i in order:
        n = len(items[i]["ids"])
        if cur and max(longest, n) * (len(cur) + 1) > tokens_per_batch:
            out.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, n)
    if cur:
        out.append(cur)
    rng.shuffle(out)
    return out


def pad(items, idx):
    n = max(len(items[i]["ids"]) for i in idx)
    ids = torch.ones(len(idx), n, dtype=torch.long)  # pad id 1
    mask = torch.zeros(len(idx), n, dtype=torch.long)
    for r, i in enumerate(idx):
        x = items[i]["ids"]
        ids[r, : len(x)] = torch.tensor(x)
        mask[r, : len(x)] = 1
    return ids, mask


class Student(torch.nn.Module):
    def __init__(self, ner, branch, own):
        super().__init__()
        self.ner = ner
        self.branch = branch
        self.own = torch.nn.ModuleList(
            copy.deepcopy(ner.bert.encoder.layer[branch + i]) for i in range(own)
        )
        self.head = torch.nn.Linear(ner.config.hidden_size, len(LABELS))

    def forward(self, ids, mask):
        out = self.ner.bert(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        top = out.last_hidden_state
        ner_logits = self.ner.classifier(self.ner.dropout(top))
        h = out.hidden_states[self.branch]
        ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.own:
            h = layer(h, attention_mask=ext)
            h = h[0] if isinstance(h, tuple) else h
        return ner_logits, self.pooled(h, mask)

    @staticmethod
    def pooled(h, mask):
        m = mask[..., None].float()
        v = (h * m).sum(1) / m.sum(1)
        return F.normalize(v, dim=-1)


def ner_f1(pred_tags, gold_tags):
    def spans(tags):
        out, start, typ = set(), None, None
        for i, t in enumerate(tags + ["O"]):
            if t.startswith("B-") or t == "O" or (t.startswith("I-") and t[2:] != typ):
                if start is not None:
                    out.add((start, i, typ))
                start, typ = (i, t[2:]) if t != "O" else (None, None)
        return out

    tp = fp = fn = 0
    for p, g in zip(pred_tags, gold_tags):
        ps, gs = spans(p), spans(g)
        tp += len(ps & gs)
        fp += len(ps - gs)
        fn += len(gs - ps)
    return 2 * tp / max(1, 2 * tp + fp + fn)


def macro_f1_fitted(probs, gold):
    """Per label, the threshold (grid of 0.01) with the best F1 on these
    rows; the mean of the three F1s."""
    f1s, ths = [], []
    for j in range(len(LABELS)):
        best = (0.0, 0.5)
        for k in range(1, 100):
            t = k / 100
            tp = sum(1 for p, g in zip(probs, gold) if p[j] >= t and g[j])
            fp = sum(1 for p, g in zip(probs, gold) if p[j] >= t and not g[j])
            fn = sum(1 for p, g in zip(probs, gold) if p[j] < t and g[j])
            f = 2 * tp / max(1, 2 * tp + fp + fn)
            best = max(best, (f, t))
        f1s.append(best[0])
        ths.append(best[1])
    return sum(f1s) / len(f1s), f1s, ths


@torch.no_grad()
def evaluate(model, ner_dev, stance_dev, tags, bsz=4096):
    model.eval()
    preds = []
    rng = random.Random(0)
    for idx in batches(ner_dev, bsz, rng):
        ids, mask = pad(ner_dev, idx)
        logits, _ = model(ids, mask)
        for r, i in enumerate(idx):
            am = logits[r].argmax(-1).tolist()
            preds.append((i, [tags[am[p]] for p in ner_dev[i]["first"]]))
    preds.sort()
    f1 = ner_f1([p for _, p in preds], [it["gold_tags"] for it in ner_dev])
    probs = [None] * len(stance_dev)
    for idx in batches(stance_dev, bsz, rng):
        ids, mask = pad(stance_dev, idx)
        _, pooled = model(ids, mask)
        p = torch.sigmoid(model.head(pooled)).tolist()
        for r, i in enumerate(idx):
            probs[i] = p[r]
    macro, per, ths = macro_f1_fitted(probs, [it["stance"] for it in stance_dev])
    model.train()
    return f1, macro, per, ths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", default=str(ROOT / "target/bench/export"))
    ap.add_argument("--branch", type=int, default=7)
    ap.add_argument("--own", type=int, default=1)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--trunk-lr", type=float, default=5e-5)
    ap.add_argument("--own-lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--kd", type=float, default=1.0, help="weight of the NER teacher's KL")
    ap.add_argument("--stance-kd", type=float, default=1.0, help="weight of the stance teacher's BCE")
    ap.add_argument("--stance-repeat", type=int, default=2, help="stance gold rows per epoch, times")
    ap.add_argument("--tokens-per-batch", type=int, default=2048)
    ap.add_argument("--evals", type=int, default=4, help="evaluations per epoch")
    ap.add_argument("--limit", type=int, default=0, help="at most this many NER sentences (a quick run)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--out", default=str(ROOT / "target/mt/run"))
    ap.add_argument("--ner-train", default=str(ROOT / "target/ner-news/mix-train.conll"))
    ap.add_argument("--teacher", default=str(ROOT / "target/mt/ner-train-teacher.jsonl"),
                    help="`arabtag tag` output on --write-docs's documents (the stance teacher)")
    ap.add_argument("--write-docs", metavar="JSONL",
                    help="write the NER sentences as documents to tag (ids s0, s1, ...) and stop")
    a = ap.parse_args()
    if a.write_docs:
        with open(a.write_docs, "w", encoding="utf-8") as f:
            for i, s in enumerate(read_conll(a.ner_train)):
                f.write(json.dumps({"id": f"s{i}", "text": " ".join(w for w, _ in s)},
                                   ensure_ascii=False) + "\n")
        return
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    torch.set_num_threads(2)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    ner = BertForTokenClassification.from_pretrained(a.export, attn_implementation="eager")
    teacher = copy.deepcopy(ner).eval()
    tags = [ner.config.id2label[i] for i in range(ner.config.num_labels)]
    enc = Encoder(Path(a.export) / "tokenizer.json", tags, 256)

    # NER sentences, with the released stance model's scores where the
    # sentence is one segment.
    ner_train = read_conll(a.ner_train)
    teacher_stance = {}
    for line in open(a.teacher, encoding="utf-8"):
        r = json.loads(line)
        if len(r["segments"]) == 1:
            teacher_stance[int(r["id"][1:])] = [r["segments"][0]["score"][k] for k in LABELS]
    items = []
    for i, s in enumerate(ner_train[: a.limit or None]):
        ids, first, labels = enc.encode([w for w, _ in s], [t for _, t in s])
        items.append({"ids": ids, "first": first, "ner": labels, "soft": teacher_stance.get(i)})
    n_ner = len(items)
    stance_rows = [json.loads(l) for l in open(ROOT / "data/stance/train.jsonl", encoding="utf-8")]
    for _ in range(a.stance_repeat):
        for r in stance_rows:
            ids, first, _ = enc.encode(r["text"].split())
            items.append({"ids": ids, "first": first, "ner": None,
                          "stance": [float(k in r["labels"]) for k in LABELS]})
    ner_dev = []
    for s in read_conll(ROOT / "target/ner-news/news-dev.conll"):
        ids, first, _ = enc.encode([w for w, _ in s])
        ner_dev.append({"ids": ids, "first": first, "gold_tags": [t for _, t in s]})
    stance_dev = []
    for l in open(ROOT / "data/stance/dev.jsonl", encoding="utf-8"):
        r = json.loads(l)
        ids, first, _ = enc.encode(r["text"].split())
        stance_dev.append({"ids": ids, "first": first, "stance": [k in r["labels"] for k in LABELS]})
    tokens = sum(len(it["ids"]) for it in items)
    print(f"{n_ner} NER sentences, {len(items) - n_ner} stance rows, {tokens} tokens an epoch", flush=True)

    # The NER teacher's distribution at each word's first subtoken, once.
    t0 = time.time()
    with torch.no_grad():
        for idx in batches(items, 8192, rng):
            ids, mask = pad(items, idx)
            logits = teacher(input_ids=ids, attention_mask=mask).logits
            for r, i in enumerate(idx):
                items[i]["kd"] = F.log_softmax(logits[r, items[i]["first"]], -1)
    print(f"teacher NER pass {time.time() - t0:.0f} s", flush=True)

    model = Student(ner, a.branch, a.own)
    model.train()
    # The stance head's start: a logistic fit on the untrained branch's
    # pooled states of the gold stance rows.
    with torch.no_grad():
        gold_idx = [i for i in range(n_ner, len(items)) if "stance" in items[i]][: len(stance_rows)]
        feats, ys = [], []
        model.eval()
        for idx in batches([items[i] for i in gold_idx], 8192, rng):
            sub = [items[gold_idx[i]] for i in idx]
            ids, mask = pad(sub, list(range(len(sub))))
            _, pooled = model(ids, mask)
            feats.append(pooled)
            ys.append(torch.tensor([it["stance"] for it in sub]))
        model.train()
        X, Y = torch.cat(feats), torch.cat(ys)
    w = torch.zeros(len(LABELS), X.shape[1], requires_grad=True)
    b = torch.zeros(len(LABELS), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200)

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(X @ w.T + b, Y) + 1e-4 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        model.head.weight.copy_(w)
        model.head.bias.copy_(b)

    base = evaluate(model, ner_dev, stance_dev, tags)
    print(f"start: NER dev F1 {base[0]:.4f}; stance dev macro-F1 {base[1]:.4f} {[round(x, 3) for x in base[2]]}", flush=True)

    groups = [
        {"params": [p for n, p in model.ner.named_parameters() if not n.startswith("bert.embeddings.")],
         "lr": a.trunk_lr},
        {"params": list(model.own.parameters()), "lr": a.own_lr},
        {"params": list(model.head.parameters()), "lr": a.head_lr},
    ]
    # The embeddings stay e5's (the head files carry layers and heads only).
    for p in model.ner.bert.embeddings.parameters():
        p.requires_grad_(False)
    optim = torch.optim.AdamW(groups, weight_decay=0.01)
    for g in optim.param_groups:
        g["base"] = g["lr"]
    plan = []
    for e in range(math.ceil(a.epochs)):
        bs = batches(items, a.tokens_per_batch, rng)
        if e + 1 > a.epochs:
            bs = bs[: int(len(bs) * (a.epochs - e))]
        plan.extend(bs)
    total = len(plan)
    every = max(1, int(total / (a.epochs * a.evals)))
    history = [{"step": 0, "ner_f1": base[0], "stance_macro": base[1]}]
    best = (-1.0, None)
    t0 = time.time()
    for step, idx in enumerate(plan, 1):
        frac = step / total
        scale = frac / 0.1 if frac < 0.1 else (1 - frac) / 0.9
        for g in optim.param_groups:
            g["lr"] = g["base"] * scale
        ids, mask = pad(items, idx)
        ner_logits, pooled = model(ids, mask)
        loss = torch.zeros(())
        gold_ner, kd_terms, st_logits, st_targets = [], [], [], []
        stance_logits = model.head(pooled)
        for r, i in enumerate(idx):
            it = items[i]
            lp = F.log_softmax(ner_logits[r, it["first"]], -1)
            if it["ner"] is not None:
                gold_ner.append(F.nll_loss(lp, torch.tensor(it["ner"]), reduction="sum"))
            kd_terms.append(F.kl_div(lp, it["kd"], log_target=True, reduction="sum"))
            if "stance" in it:
                st_logits.append(stance_logits[r])
                st_targets.append(torch.tensor(it["stance"]))
            elif it.get("soft") is not None:
                st_logits.append(stance_logits[r])
                st_targets.append(torch.tensor(it["soft"]) * 1.0)
        words = sum(len(items[i]["first"]) for i in idx)
        if gold_ner:
            loss = loss + torch.stack(gold_ner).sum() / words
        loss = loss + a.kd * torch.stack(kd_terms).sum() / words
        if st_logits:
            weights = torch.tensor([1.0 if "stance" in items[i] else a.stance_kd for i in idx
                                    if "stance" in items[i] or items[i].get("soft") is not None])
            bce = F.binary_cross_entropy_with_logits(torch.stack(st_logits), torch.stack(st_targets),
                                                     reduction="none").sum(-1)
            loss = loss + (bce * weights).sum() / len(idx)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        if step % 50 == 0:
            print(f"step {step}/{total} loss {loss.item():.4f} {time.time() - t0:.0f} s", flush=True)
        if step % every == 0 or step == total:
            f1, macro, per, ths = evaluate(model, ner_dev, stance_dev, tags)
            print(f"step {step}: NER dev F1 {f1:.4f}; stance dev macro-F1 {macro:.4f} "
                  f"{[round(x, 3) for x in per]} thresholds {ths}; {time.time() - t0:.0f} s", flush=True)
            history.append({"step": step, "ner_f1": f1, "stance_macro": macro, "per_label": per,
                            "thresholds": ths, "seconds": time.time() - t0})
            score = min(f1 - base[0], 0) + macro
            if score > best[0]:
                best = (score, step)
                torch.save(model.state_dict(), out / "best.pt")
            (out / "history.json").write_text(json.dumps({"args": vars(a), "history": history}, indent=1))
    print(f"best at step {best[1]}", flush=True)


if __name__ == "__main__":
    main()
