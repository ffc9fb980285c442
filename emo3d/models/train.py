"""Training: official splits through the ``dataset`` reader, mirror augmentation, early stopping on the
validation MSE, seeded, with a progress bar.

Two modes:

* frozen encoder (default): every text (and image, CLIP kinds) is embedded once and cached on disk
  under ``cache_dir("embeddings")``; only the head trains. Fast.
* fine-tune (``finetune=True``): text embeddings are recomputed every step and the encoder trains
  too (lower learning rate); image embeddings stay cached.

``train(options)`` reads ``options.data``; ``train_from_pairs(options, train, val, test)`` takes
in-memory pairs (anything with ``texts``, ``targets`` [N,52] and ``emotions`` [N,8]). All options of a
run live in one dataclass, :class:`TrainOptions`.

This module is the training loop only: the embedding cache is :mod:`.embeddings`, the generated extra
prompts :mod:`.prompts`, the evaluation probes :mod:`.probes`.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number
from emo3d.manifest import KINDS, ModelManifest
from emo3d.parallel import ParallelOptions
from emo3d.schema import EMOTIONS, mediapipe_to_model

from .backbones import PAPER_BERT, PAPER_CLIP, PAPER_GLOT500, BackboneSpec, resolve_backbone
from .baselines import HeadConfig, TextModel, build_head
from .embeddings import embed_images, embed_texts
from .encoders import load_encoder
from .prompts import anchor_words, with_emolex_prompts, with_short_prompts

log = logging.getLogger("emo3d.models.train")

ALIASES = {"lm": "lm_mlp", "lm_mlp": "lm_mlp", "bert": "lm_mlp", "emotion": "emotion", "emotion_xlm": "emotion",
           "emotion-xlm": "emotion", "clip": "clip_mlp", "clip_mlp": "clip_mlp", "vae": "vae_clip",
           "vae_clip": "vae_clip", "vae-clip": "vae_clip", "lm-mlp": "lm_mlp", "clip-mlp": "clip_mlp"}
PAPER_BACKBONE = {"lm_mlp": PAPER_BERT, "emotion": PAPER_GLOT500, "clip_mlp": PAPER_CLIP, "vae_clip": PAPER_CLIP}
TARGETS = ("scores", "prior")


def canonical_kind(name: str) -> str:
    key = str(name).strip().lower()
    if key not in ALIASES:
        raise InvalidInputError(f"unknown model {name!r} (accepted: {', '.join(KINDS)}; aliases "
                                f"{', '.join(sorted(set(ALIASES) - set(KINDS)))})")
    return ALIASES[key]


@dataclass
class TrainOptions:
    """Options of one training run. ``backbone=None`` means the paper's backbone for the kind."""
    model: str = "lm_mlp"
    data: Optional[str] = None
    out: Optional[str] = None
    backbone: Optional[str] = None
    target: str = "scores"
    epochs: int = 200
    batch_size: int = 64
    lr: float = 1e-3
    encoder_lr: float = 2e-5
    weight_decay: float = 1e-4
    patience: int = 15
    seed: int = 0
    finetune: bool = False
    mirror: bool = True
    hidden: Tuple[int, ...] = (256,)
    dropout: float = 0.1
    teacher_forcing: float = 0.5
    lambda_blendshape: float = 1.0
    lambda_emotion: float = 1.0
    max_steps: Optional[int] = None      # stop after this many optimiser steps (tests, smoke runs)
    val_fraction: float = 0.1            # used only where the data has no val split
    use_images: bool = True              # CLIP kinds: also train on image embeddings where images exist
    progress: bool = True
    cache_embeddings: bool = True
    embed_batch: int = 128
    anchors: bool = False                # lm_mlp/emotion: emotion-word anchor features (dataset.lexicon)
    short_prompts: float = 0.0           # extra short lexicon prompts per training row (0: paper setup)
    emolex_prompts: float = 0.0          # short prompts per NRC EmoLex word + calm/contempt words (0: off)
    threads: int = 1                     # torch intra-op threads (0 = torch's default); 1 is fastest for heads
    name: str = ""
    preset: str = "ours"                 # which preset the values came from (.presets.preset_values)
    optimizer: str = "adamw"             # adamw | adam (the official notebooks: Adam, no weight decay)
    vae_loss: str = "paper"              # vae_clip: paper (eq. 2-4, per-row cosine) | official (notebook)
    lambda_text: float = 0.004           # vae_clip λ_text / λ_image (paper and official: 0.004 / 0.002)
    lambda_image: float = 0.002
    workers: int = 1                     # text-embedding processes (frozen encoder; 1: this process)
    ray: Optional[str] = None            # "auto" or a Ray address: text embedding as Ray tasks

    def __post_init__(self) -> None:
        self.model = canonical_kind(self.model)
        if self.target not in TARGETS:
            raise InvalidInputError(f"target {self.target!r} is not one of {', '.join(TARGETS)}")
        for name in ("epochs", "batch_size", "patience", "embed_batch"):
            check_int(getattr(self, name), f"TrainOptions.{name}", 1)
        check_number(self.lr, "TrainOptions.lr", 0, lo_open=True)
        check_number(self.encoder_lr, "TrainOptions.encoder_lr", 0, lo_open=True)
        check_number(self.weight_decay, "TrainOptions.weight_decay", 0)
        if self.max_steps is not None:
            check_int(self.max_steps, "TrainOptions.max_steps", 1)
        check_number(self.short_prompts, "TrainOptions.short_prompts", 0, 4)
        check_number(self.emolex_prompts, "TrainOptions.emolex_prompts", 0, 4)
        check_int(self.threads, "TrainOptions.threads", 0)
        check_number(self.val_fraction, "TrainOptions.val_fraction", 0, 0.5, lo_open=True, hi_open=True)
        if self.optimizer not in ("adam", "adamw"):
            raise InvalidInputError(f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        if self.vae_loss not in ("paper", "official"):
            raise InvalidInputError(f"vae_loss must be 'paper' or 'official', got {self.vae_loss!r}")
        if self.vae_loss == "official" and (self.model != "vae_clip" or self.finetune or not self.use_images):
            raise InvalidInputError("--vae-loss official trains VAE-CLIP on (text, image, scores) triples: it needs "
                                    "--model vae_clip with images and a frozen encoder (no --finetune/--no-images)")
        ParallelOptions(workers=self.workers, ray=self.ray)   # validates --workers / --ray
        check_number(self.lambda_text, "TrainOptions.lambda_text", 0)
        check_number(self.lambda_image, "TrainOptions.lambda_image", 0)
        self.hidden = tuple(int(h) for h in self.hidden)
        # HeadConfig validates dropout, teacher forcing and widths
        HeadConfig(self.model, 1, self.hidden, self.dropout, teacher_forcing=self.teacher_forcing)

    @property
    def backbone_name(self) -> str:
        return self.backbone or PAPER_BACKBONE[self.model]


@dataclass
class TrainResult:
    out: Optional[Path]
    model: TextModel
    manifest: ModelManifest
    metrics: Dict[str, Any]
    history: List[Dict[str, float]] = field(default_factory=list)


@dataclass
class _Rows:
    """Training rows: embeddings (or texts to embed), targets [N,51], emotions [N,8], modality 0 text 1 image."""
    x: torch.Tensor
    y: torch.Tensor
    e: torch.Tensor
    m: torch.Tensor
    texts: List[Optional[str]]

    def __len__(self) -> int:
        return int(self.y.shape[0])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _to51(targets: np.ndarray) -> np.ndarray:
    t = np.asarray(targets, dtype=np.float32)
    if t.ndim != 2 or t.shape[1] not in (51, 52):
        raise InvalidInputError(f"targets must be [N,52] (MediaPipe order) or [N,51], got {t.shape}")
    if not np.isfinite(t).all():
        raise InvalidInputError("targets hold NaN or inf")
    return np.clip(mediapipe_to_model(t) if t.shape[1] == 52 else t, 0.0, 1.0)


def _check_pairs(pairs: Any, what: str) -> None:
    for attr in ("texts", "targets", "emotions"):
        if not hasattr(pairs, attr):
            raise InvalidInputError(f"{what} pairs need .texts, .targets and .emotions (missing {attr})")
    n = len(pairs.texts)
    if n == 0:
        raise InvalidInputError(f"{what} split is empty")
    if len(pairs.targets) != n or len(pairs.emotions) != n:
        raise InvalidInputError(f"{what}: {n} texts but {len(pairs.targets)} targets / {len(pairs.emotions)} emotions")
    if np.asarray(pairs.emotions).shape[1:] != (len(EMOTIONS),):
        raise InvalidInputError(f"{what}: emotions must be [N,{len(EMOTIONS)}] in order {list(EMOTIONS)}")


# --------------------------------------------------------------------------- core loop
def _data_hash(splits: Dict[str, Any]) -> str:
    h = hashlib.sha256()
    for name in sorted(splits):
        p = splits[name]
        if p is None:
            continue
        h.update(name.encode())
        h.update("\x00".join(p.texts).encode())
        h.update(np.ascontiguousarray(np.asarray(p.targets, np.float32)).tobytes())
    return h.hexdigest()


def _rows(pairs, emb: Optional[torch.Tensor], modality: int) -> _Rows:
    y = torch.from_numpy(_to51(pairs.targets))
    e = torch.from_numpy(np.clip(np.asarray(pairs.emotions, np.float32), 0, 1))
    x = emb if emb is not None else torch.zeros(len(y), 1)
    texts = list(pairs.texts) if modality == 0 else [None] * len(y)
    return _Rows(x, y, e, torch.full((len(y),), modality, dtype=torch.long), texts)


def _cat(a: _Rows, b: _Rows) -> _Rows:
    return _Rows(torch.cat([a.x, b.x]), torch.cat([a.y, b.y]), torch.cat([a.e, b.e]), torch.cat([a.m, b.m]),
                 a.texts + b.texts)


def _batch_loss(model: TextModel, rows: _Rows, idx: torch.Tensor, opts: TrainOptions, tokenizer, spec):
    x = rows.x[idx]
    if opts.finetune:
        text_pos = [i for i, j in enumerate(idx.tolist()) if rows.texts[j] is not None]
        if text_pos:
            tok = tokenizer([rows.texts[idx[i]] for i in text_pos], padding=True, truncation=True,
                            max_length=spec.max_length, return_tensors="pt")
            emb = model.encoder(tok["input_ids"], tok["attention_mask"])
            x = x.clone() if x.shape[1] == emb.shape[1] else torch.zeros(len(idx), emb.shape[1])
            x[text_pos] = emb
    y, e, m = rows.y[idx], rows.e[idx], rows.m[idx]
    head = model.head
    kind = head.cfg.kind
    if kind == "vae_clip" and opts.vae_loss == "official":      # rows are triples: x = [text | image]
        d = x.shape[1] // 2
        return head.vae_loss_official(y, x[:, :d], x[:, d:])
    if kind == "vae_clip":
        text = x[m == 0] if (m == 0).any() else None
        image = x[m == 1] if (m == 1).any() else None
        losses, parts = [], {}
        if text is not None:
            lt, pt = head.vae_loss(y[m == 0], text, None)
            losses.append(lt * text.shape[0])
            parts.update(pt)
        if image is not None:
            li, pi = head.vae_loss(y[m == 1], None, image)
            losses.append(li * image.shape[0])
            parts.update({k: v for k, v in pi.items() if k != "recon"})
        return sum(losses) / len(idx), parts
    out = head(x, e) if kind == "emotion" else head(x)
    return head.loss(out, y, e if kind == "emotion" else None)


@torch.no_grad()
def _evaluate(model: TextModel, rows: _Rows, opts: TrainOptions, tokenizer, spec) -> Dict[str, float]:
    """Blendshape MSE on text rows (VAE-CLIP: decoding the text embedding); emotion MSE for that kind."""
    model.eval()
    sel = torch.nonzero(rows.m == 0).flatten()
    preds, emos = [], []
    for i in range(0, len(sel), 256):
        idx = sel[i:i + 256]
        if opts.finetune:
            tok = tokenizer([rows.texts[j] for j in idx.tolist()], padding=True, truncation=True,
                            max_length=spec.max_length, return_tensors="pt")
            out = model(tok["input_ids"], tok["attention_mask"])
        else:
            out = model.head(rows.x[idx])
        preds.append(out["blendshapes"])
        if "emotions" in out:
            emos.append(out["emotions"])
    pred = torch.cat(preds)
    res = {"mse": float(((pred - rows.y[sel]) ** 2).mean())}
    if emos:
        res["emotion_mse"] = float(((torch.cat(emos) - rows.e[sel]) ** 2).mean())
    return res


def _official_triples(rows: _Rows) -> _Rows:
    """The official VAE-CLIP dataset: every text row paired with the image row of the same blendshape
    vector (same sample, same image; mirrored with mirrored), x = [text emb | image emb], modality 2.
    Text rows without an image are dropped, as the official notebook only builds triples."""
    from .official import pair_rows_by_target
    ti, ii = pair_rows_by_target(rows.y, rows.m)
    if len(ti) == 0:
        raise InvalidInputError("--vae-loss official found no (text, image, scores) triple: the training "
                                "split has no images with blendshape scores")
    return _Rows(torch.cat([rows.x[ti], rows.x[ii]], dim=1), rows.y[ti], rows.e[ti],
                 torch.full((len(ti),), 2, dtype=torch.long), [rows.texts[i] for i in ti.tolist()])


def train_from_pairs(opts: TrainOptions, train_pairs, val_pairs=None, test_pairs=None, *,
                     train_images=None, val_images=None, spec: Optional[BackboneSpec] = None,
                     encoder=None, tokenizer=None) -> TrainResult:
    """Train on in-memory pairs; save to ``opts.out`` when set. ``val_pairs=None`` splits off
    ``opts.val_fraction`` of the training rows (by text). ``*_images``: ``ImagePairs`` (CLIP kinds)."""
    from tqdm.auto import tqdm
    from .io import save_model

    seed_everything(opts.seed)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    _check_pairs(train_pairs, "train")
    if val_pairs is None:
        train_pairs, val_pairs = _split_off(train_pairs, opts.val_fraction, opts.seed)
    if opts.short_prompts > 0:
        train_pairs = with_short_prompts(train_pairs, opts.short_prompts, opts.seed)
    if opts.emolex_prompts > 0:
        train_pairs = with_emolex_prompts(train_pairs, opts.emolex_prompts, opts.seed)
    _check_pairs(val_pairs, "val")
    if test_pairs is not None:
        _check_pairs(test_pairs, "test")
    if spec is None:
        spec = resolve_backbone(opts.backbone_name)
    if opts.model in ("clip_mlp", "vae_clip") and spec.family != "clip":
        raise InvalidInputError(f"model {opts.model} needs a CLIP backbone, got {spec.name!r} "
                                f"(for example {PAPER_CLIP!r} or a local CLIP folder)")
    if opts.model in ("lm_mlp", "emotion") and spec.family != "text":
        raise InvalidInputError(f"model {opts.model} needs a text backbone (BERT/XLM-R/MiniLM), got CLIP {spec.name!r}")
    parallel = None                      # workers rebuild the encoder from spec: only when we built it too
    if encoder is None:
        encoder, tokenizer = load_encoder(spec)
        parallel = ParallelOptions(workers=opts.workers, ray=opts.ray)
    t0 = time.perf_counter()
    t_embed = 0.0
    # embeddings (cached) for every split; in fine-tune mode only as the initial values
    def text_rows(p):
        if opts.finetune:
            return _rows(p, torch.zeros(len(p.texts), encoder.out_dim), 0)
        return _rows(p, embed_texts(encoder, tokenizer, list(p.texts), spec, batch=opts.embed_batch,
                                    progress=opts.progress, cache=opts.cache_embeddings,
                                    parallel=parallel), 0)
    tr, va = text_rows(train_pairs), text_rows(val_pairs)
    te = text_rows(test_pairs) if test_pairs is not None else None
    n_images = 0
    if spec.family == "clip" and opts.use_images and train_images is not None and len(train_images.paths):
        img = embed_images(encoder, spec, train_images.paths, train_images.flip, progress=opts.progress)
        tr = _cat(tr, _rows(train_images, img, 1))
        n_images = len(train_images.paths)
    if opts.vae_loss == "official":
        tr = _official_triples(tr)
    t_embed = time.perf_counter() - t0

    anchor_texts, anchor_index = anchor_words() if opts.anchors else ([], [])
    cfg = HeadConfig(opts.model, encoder.out_dim, opts.hidden, opts.dropout, teacher_forcing=opts.teacher_forcing,
                     lambda_blendshape=opts.lambda_blendshape, lambda_emotion=opts.lambda_emotion,
                     anchors=len(anchor_texts), lambda_text=opts.lambda_text, lambda_image=opts.lambda_image)
    model = TextModel(encoder, build_head(cfg))
    if anchor_texts:
        model.head.set_anchors(embed_texts(encoder, tokenizer, anchor_texts, spec, progress=False,
                                           cache=opts.cache_embeddings), anchor_index)
    if opts.finetune:
        for p in model.encoder.parameters():
            p.requires_grad_(True)
        params = [{"params": model.head.parameters(), "lr": opts.lr},
                  {"params": model.encoder.parameters(), "lr": opts.encoder_lr}]
    else:
        for p in model.encoder.parameters():
            p.requires_grad_(False)
        params = [{"params": model.head.parameters(), "lr": opts.lr}]
    adam = torch.optim.Adam if opts.optimizer == "adam" else torch.optim.AdamW
    optim = adam(params, weight_decay=opts.weight_decay)
    gen = torch.Generator().manual_seed(opts.seed)

    best, best_epoch, bad, steps = math.inf, -1, 0, 0
    best_state = copy.deepcopy(model.state_dict() if opts.finetune else model.head.state_dict())
    history: List[Dict[str, float]] = []
    bar = tqdm(range(opts.epochs), desc=f"train {opts.model}", unit="epoch", disable=not opts.progress)
    for epoch in bar:
        model.train()
        if not opts.finetune:
            model.encoder.eval()
        perm = torch.randperm(len(tr), generator=gen)
        total, count = 0.0, 0
        for i in range(0, len(tr), opts.batch_size):
            idx = perm[i:i + opts.batch_size]
            loss, _ = _batch_loss(model, tr, idx, opts, tokenizer, spec)
            optim.zero_grad()
            loss.backward()
            optim.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            steps += 1
            if opts.max_steps is not None and steps >= opts.max_steps:
                break
        val = _evaluate(model, va, opts, tokenizer, spec)
        history.append({"epoch": epoch, "train_loss": total / max(count, 1), "val_mse": val["mse"]})
        bar.set_postfix(loss=f"{total / max(count, 1):.4f}", val_mse=f"{val['mse']:.4f}")
        if val["mse"] < best - 1e-7:
            best, best_epoch, bad = val["mse"], epoch, 0
            best_state = copy.deepcopy(model.state_dict() if opts.finetune else model.head.state_dict())
        else:
            bad += 1
        if bad >= opts.patience or (opts.max_steps is not None and steps >= opts.max_steps):
            break
    bar.close()
    (model if opts.finetune else model.head).load_state_dict(best_state)
    model.eval()
    metrics: Dict[str, Any] = {"val_mse": best, "best_epoch": best_epoch, "epochs_run": len(history),
                               "steps": steps, "n_train_rows": len(tr), "n_train_images": n_images,
                               "n_val": len(va), "embed_seconds": round(t_embed, 2),
                               "train_seconds": round(time.perf_counter() - t0, 2)}
    val_full = _evaluate(model, va, opts, tokenizer, spec)
    if "emotion_mse" in val_full:
        metrics["val_emotion_mse"] = val_full["emotion_mse"]
    if te is not None:
        test = _evaluate(model, te, opts, tokenizer, spec)
        metrics["test_mse"] = test["mse"]
        metrics["n_test"] = len(te)
        if "emotion_mse" in test:
            metrics["test_emotion_mse"] = test["emotion_mse"]
    manifest = ModelManifest(kind=opts.model, backbone=spec.manifest_dict(), metrics=metrics,
                             data_hash=_data_hash({"train": train_pairs, "val": val_pairs, "test": test_pairs}),
                             name=opts.name or f"{opts.model}-{spec.name.replace('/', '_')}",
                             extra={"target": opts.target, "finetune": opts.finetune, "mirror": opts.mirror,
                                    "seed": opts.seed, "data": opts.data,
                                    "options": {k: (list(v) if isinstance(v, tuple) else v)
                                                for k, v in asdict(opts).items() if k not in ("data", "out")}})
    out = None
    if opts.out:
        out = save_model(model, manifest, opts.out, save_encoder=opts.finetune)
    return TrainResult(out, model, manifest, metrics, history)


def _split_off(pairs, fraction: float, seed: int):
    """Split pairs by unique text into (train, val)."""
    from types import SimpleNamespace
    texts = list(pairs.texts)
    uniq = sorted(set(texts))
    if len(uniq) < 2:
        raise InvalidInputError("need at least 2 distinct texts to split off a validation set")
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(len(uniq) * fraction)))
    val_texts = set(rng.permutation(uniq)[:n_val].tolist())
    mask = np.array([t in val_texts for t in texts])

    def take(sel):
        return SimpleNamespace(texts=[t for t, s in zip(texts, sel) if s], targets=np.asarray(pairs.targets)[sel],
                               emotions=np.asarray(pairs.emotions)[sel])
    return take(~mask), take(mask)


def load_splits(data: str | Path, *, target: str = "scores", mirror: bool = True, images: bool = False):
    """Official splits through the ``dataset`` reader: (train, val|None, test|None, train_images|None)."""
    from emo3d import data as dataset
    root = Path(data)
    if not root.exists():
        raise InvalidInputError(f"data folder {root} does not exist (expected an Emo3D release folder)")
    release = dataset.read_release(root)
    out = []
    for name in ("train", "val", "test"):
        samples = release.split(name)
        if not samples:
            if name == "train":
                raise InvalidInputError(f"{root}: the train split is empty")
            out.append(None)
            continue
        out.append(dataset.text_pairs(samples, mirror=(mirror and name == "train"), target=target))
    train_images = None
    if images:
        try:
            train_images = dataset.image_pairs(release.split("train"), release.root, mirror=mirror)
            keep = [i for i, p in enumerate(train_images.paths) if p is not None and Path(p).is_file()]
            if len(keep) < len(train_images.paths):
                log.warning("%d of %d training images are missing; training on the %d present",
                            len(train_images.paths) - len(keep), len(train_images.paths), len(keep))
            if not keep:
                train_images = None
            elif len(keep) < len(train_images.paths):
                from types import SimpleNamespace
                train_images = SimpleNamespace(paths=[train_images.paths[i] for i in keep],
                                               targets=np.asarray(train_images.targets)[keep],
                                               emotions=np.asarray(train_images.emotions)[keep],
                                               flip=np.asarray(train_images.flip)[keep])
        except (FileNotFoundError, ValueError) as e:
            log.warning("no training images (%s); CLIP trains on text embeddings only", e)
            train_images = None
    return (*out, train_images)


def train(opts: TrainOptions) -> TrainResult:
    """Train ``opts.model`` on the release at ``opts.data`` and save to ``opts.out``."""
    if not opts.data:
        raise InvalidInputError("TrainOptions.data is required (an Emo3D release folder)")
    train_p, val_p, test_p, images = load_splits(opts.data, target=opts.target, mirror=opts.mirror,
                                                 images=opts.model in ("clip_mlp", "vae_clip") and opts.use_images)
    return train_from_pairs(opts, train_p, val_p, test_p, train_images=images)
