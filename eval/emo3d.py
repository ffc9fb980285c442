"""``python -m eval.emo3d``: evaluate text-to-expression models on one Emo3D prompt bank.

    python -m eval.emo3d --models default runs/bert --data /work/data/offline-5k \\
        --judge fer roundtrip --out out/eval

For each model: predict the 52 scores of every bank prompt (``runtime.Engine`` for ``default`` or a
folder with an ONNX model, else ``models.load_model``), render each face (``avatar.render``), then
score with the chosen judges: ``clip`` (the paper's Emo3D metric + R@k, see :mod:`eval.metric`),
``fer`` and ``roundtrip`` (offline judges, :mod:`eval.judges`). MSE against the bank's ground-truth
scores over the 51 model shapes. Writes ``report.md``, ``results.json``, ``bars.png`` and
``contact_sheet.png`` under ``--out``; predictions, renders and CLIP embeddings are cached under
``--out/cache`` so an interrupted run resumes. The renders run on ``--workers`` processes (default:
the core count) or ``--ray auto|ADDRESS`` (:mod:`emo3d.parallel`), byte-identical to one process.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from emo3d import schema
from emo3d.errors import Emo3DError, InvalidInputError, ModelFileError
from emo3d.options import check_int
from emo3d.io import atomic_path
from emo3d.parallel import ParallelOptions, run_tasks

from .bank import BankOptions, PromptBank, build_bank
from .bootstrap import (BootstrapOptions, Interval, mean_interval, pearson_interval,
                        sigmoid_mean_interval)
from .judges import JudgeResult
from .metric import MetricOptions, SaturationWarning, emo3d_metric, mse

__all__ = ["EvalOptions", "ModelResult", "EvalResult", "run", "main", "model_intervals", "JUDGES"]
log = logging.getLogger("emo3d.eval")
JUDGES = ("clip", "fer", "roundtrip")
GROUND_TRUTH = "groundtruth"   # --models word: the bank's ground-truth scores as a reference row

PredictFn = Callable[[List[str]], np.ndarray]        # texts -> [N,52] MediaPipe order
RenderFn = Callable[[np.ndarray], np.ndarray]        # [52] -> uint8 [H,W,3]


@dataclass(frozen=True)
class EvalOptions:
    models: tuple
    data: str
    out: str
    judges: tuple = ("clip",)
    clip: Optional[str] = None
    k: int = 10
    compat: str = "paper"
    alpha: Optional[float] = None
    eps: Optional[float] = None
    bank_size: int = 160
    seed: int = 0
    size: int = 256
    progress: bool = True
    resamples: int = 2000
    workers: Optional[int] = None      # render processes (None: the core count; 1: this process)
    ray: Optional[str] = None          # "auto" or a Ray address: renders as Ray tasks

    def __post_init__(self):
        object.__setattr__(self, "models", tuple(str(m) for m in self.models))
        object.__setattr__(self, "judges", tuple(dict.fromkeys(self.judges)))
        if not self.models:
            raise InvalidInputError("give at least one model folder (or 'default') with --models")
        bad = [j for j in self.judges if j not in JUDGES]
        if bad or not self.judges:
            raise InvalidInputError(f"unknown judge(s) {bad}; accepted: {', '.join(JUDGES)}")
        check_int(self.size, "--size (render size)", 32)
        MetricOptions(k=self.k, compat=self.compat, eps=self.eps, alpha=self.alpha)  # validates
        BankOptions(size=self.bank_size, seed=self.seed)
        self.bootstrap  # validates
        self.parallel   # validates
        if "clip" in self.judges and self.k > self.bank_size:   # k only matters for CLIP retrieval
            raise InvalidInputError(f"k={self.k} is larger than the bank size {self.bank_size}")

    @property
    def metric(self) -> MetricOptions:
        return MetricOptions(k=self.k, compat=self.compat, eps=self.eps, alpha=self.alpha)

    @property
    def parallel(self) -> ParallelOptions:
        return ParallelOptions(workers=self.workers, ray=self.ray)

    @property
    def bootstrap(self) -> BootstrapOptions:
        return BootstrapOptions(resamples=self.resamples, seed=self.seed)


@dataclass
class ModelResult:
    name: str
    path: str
    mse: Optional[float]
    emo3d: Optional[float] = None
    recall_at_k: Optional[float] = None
    mean_kl: Optional[float] = None
    judges: Dict[str, JudgeResult] = field(default_factory=dict)
    seconds: float = 0.0
    saturated: bool = False                                   # Emo3D >= metric.SATURATED
    intervals: Dict[str, Interval] = field(default_factory=dict)   # report column -> 95% interval

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "mse": self.mse, "emo3d": self.emo3d,
                "recall_at_k": self.recall_at_k, "mean_kl": self.mean_kl, "seconds": self.seconds,
                "saturated": self.saturated,
                "intervals": {k: v.to_dict() for k, v in self.intervals.items()},
                "judges": {k: v.to_dict() for k, v in self.judges.items()}}


@dataclass
class EvalResult:
    options: EvalOptions
    bank: PromptBank
    models: List[ModelResult]
    out: Path
    clip_name: Optional[str] = None
    files: Dict[str, str] = field(default_factory=dict)


# --- predictions -------------------------------------------------------------------------------
def _has_onnx(folder: Path) -> bool:
    if (folder / "model.onnx").is_file():
        return True
    man = folder / "manifest.json"
    if man.is_file():
        try:
            return "onnx" in (json.loads(man.read_text()).get("files") or {})
        except (ValueError, OSError):
            return False
    return False


def make_predictor(model: str) -> PredictFn:
    """texts → [N,52] for ``default`` / an ONNX folder (runtime.Engine) / a torch folder."""
    folder = Path(model)
    if model == "default" or _has_onnx(folder):
        from runtime import Engine, EngineOptions
        engine = Engine.create(EngineOptions(model=model))

        def predict(texts):
            return np.stack([p.vector for p in engine.predict(list(texts))]).astype(np.float32)
        return predict
    if not (folder / "manifest.json").is_file():
        raise ModelFileError(f"{folder}: not a model folder (no manifest.json); pass a folder made by "
                             f"`emo3d models train`/`export`, or 'default'")
    import torch
    from emo3d import models
    module, manifest, tokenizer = models.load_model(folder)
    max_len = int(manifest.backbone.get("max_length") or 128)

    def predict(texts):
        outs = []
        for b in range(0, len(texts), 32):
            tok = tokenizer(list(texts[b:b + 32]), padding=True, truncation=True, max_length=max_len,
                            return_tensors="pt")
            with torch.no_grad():
                y = module(tok["input_ids"], tok["attention_mask"])["blendshapes"]
            outs.append(y.float().cpu().numpy())
        return np.stack([schema.model_to_mediapipe(v) for v in np.concatenate(outs)]).astype(np.float32)
    return predict


def _default_render(size: int) -> RenderFn:
    from emo3d import avatar

    def render(w):
        return avatar.render(w, size=size)
    return render


# --- caching -----------------------------------------------------------------------------------
def _key(*parts) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:12]


def _model_name(model: str, taken: set) -> str:
    base = "default" if model == "default" else (Path(model).name or "model")
    name, i = base, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    taken.add(name)
    return name


def _model_signature(model: str) -> str:
    """Changes when the model folder is retrained in place (manifest + weight file sizes/mtimes)."""
    if model == GROUND_TRUTH:
        return GROUND_TRUTH
    folder = Path(model)
    if model == "default":
        from emo3d import models
        folder = models.default_model_dir()
    parts = [str(folder.resolve())]
    for f in sorted(folder.glob("*")) if folder.is_dir() else []:
        if f.is_file():
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{int(st.st_mtime)}")
    return _key(*parts)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)[:40]


def _load_png(path: Path) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")


def _predictions(cache: Path, bank: PromptBank, predictor_factory: Callable[[], PredictFn]) -> np.ndarray:
    f = cache / f"pred_{_key(*bank.texts)}.npy"
    if f.is_file():
        return np.load(f)
    pred = np.asarray(predictor_factory()(list(bank.texts)), dtype=np.float32)
    if pred.shape != (len(bank), schema.N_MEDIAPIPE):
        raise ModelFileError(f"model predictions have shape {pred.shape}, expected [{len(bank)}, 52]")
    if not np.all(np.isfinite(pred)):
        raise ModelFileError("model predicted NaN/inf scores")
    with atomic_path(f) as tmp:          # the temp name ends in .npy: np.save keeps it
        np.save(tmp, pred)
    return pred


def _render_file(rdir: Path, i: int, w: np.ndarray) -> Path:
    return rdir / f"{i:05d}_{_key(np.round(w, 5).tobytes())}.png"


def _check_render(img) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise InvalidInputError(f"render function returned {img.dtype} {img.shape}; need uint8 [H,W,3]")
    return img


def _render_chunk(task) -> int:
    """Worker task: render the default avatar for (index, weights, path) rows; PNGs written atomically."""
    size, rows = task
    from emo3d import avatar
    for _, w, path in rows:
        _save_png(Path(path), _check_render(avatar.render(np.asarray(w, np.float32), size=size)))
    return len(rows)


def _renders(cache: Path, pred: np.ndarray, render: Optional[RenderFn], desc: str, progress: bool,
             *, size: int = 256, parallel: Optional[ParallelOptions] = None):
    """Every prediction rendered (cached as PNG). ``render=None``: the default avatar at ``size``,
    on ``parallel`` (worker processes or Ray; byte-identical PNGs to one process). Returns
    (images, their PNG files)."""
    rdir = cache / "renders"
    rdir.mkdir(parents=True, exist_ok=True)
    files = [_render_file(rdir, i, pred[i]) for i in range(len(pred))]
    todo = [i for i, f in enumerate(files) if not f.is_file()]
    with tqdm(total=len(pred), initial=len(pred) - len(todo), desc=desc, unit="face", disable=not progress,
              leave=False) as bar:
        if render is None and parallel is not None and parallel.backend != "inline" and len(todo) > 1:
            n = parallel.n_workers * 4
            chunks = [[(i, pred[i].tolist(), str(files[i])) for i in todo[c::n]] for c in range(n)]
            run_tasks(_render_chunk, [(size, c) for c in chunks if c], parallel,
                      on_done=lambda _i, k: bar.update(k))
        else:
            fn = render or _default_render(size)
            for i in todo:
                _save_png(files[i], _check_render(fn(pred[i])))
                bar.update(1)
    return [_load_png(f) for f in files], files


_WORKER_CLIP: Dict[str, object] = {}     # per worker process: the CLIP encoder it loaded


def _clip_chunk(task) -> np.ndarray:
    """Worker task: CLIP image embeddings of the PNGs ``paths`` with the encoder at ``source``."""
    source, paths = task
    clip = _WORKER_CLIP.get(source)
    if clip is None:
        from .clip import load_clip
        clip = _WORKER_CLIP[source] = load_clip(source)
    return np.asarray(clip.encode_images([_load_png(Path(p)) for p in paths]), dtype=np.float32)


def _clip_images(cache: Path, clip, clip_key: str, images, render_keys: Sequence[str], *,
                 files: Sequence[Path] = (), source: Optional[str] = None,
                 parallel: Optional[ParallelOptions] = None) -> np.ndarray:
    """CLIP embeddings of the renders (cached). With a CLIP ``source`` folder and a parallel backend,
    chunks of the render files are embedded by workers that each load that CLIP once."""
    f = cache / f"clip_{clip_key}_{_key(*render_keys)}.npy"
    if f.is_file():
        return np.load(f)
    if source is not None and parallel is not None and parallel.backend != "inline" and len(files) > 1:
        n = min(len(files), parallel.n_workers)
        bounds = np.linspace(0, len(files), n + 1).astype(int)
        parts = run_tasks(_clip_chunk, [(str(source), [str(p) for p in files[a:b]])
                                        for a, b in zip(bounds[:-1], bounds[1:]) if b > a], parallel)
        emb = np.concatenate(parts, axis=0)
    else:
        emb = clip.encode_images(images)
    with atomic_path(f) as tmp:
        np.save(tmp, emb)
    return emb


# --- the run -----------------------------------------------------------------------------------
def run(options: EvalOptions, *, bank: Optional[PromptBank] = None,
        predictors: Optional[Dict[str, PredictFn]] = None, render: Optional[RenderFn] = None,
        judges: Optional[Dict[str, object]] = None, clip=None) -> EvalResult:
    """Evaluate every model on one bank and write the report. ``predictors`` (model → fn),
    ``render``, ``judges`` (name → object with ``evaluate(images, emotions=, vectors=)``; injected
    names run in addition to ``options.judges``) and ``clip`` (an encoder) may be injected; the
    rest is built from ``options``."""
    from . import report
    out = Path(options.out)
    judges = dict(judges or {})
    names = list(options.judges) + [n for n in judges if n not in options.judges]
    clip_name = None
    clip_source = None                                 # a CLIP folder workers can load (not an injected encoder)
    if "clip" in options.judges:                       # fail at once when CLIP is unreachable
        if clip is None:
            from .clip import load_clip
            clip = load_clip(options.clip)
            clip_source = options.clip
        clip_name = getattr(clip, "name", "clip")
    if bank is None:
        bank = build_bank(options.data, BankOptions(size=options.bank_size, seed=options.seed))
    if clip is not None and len(bank) < options.k:
        raise InvalidInputError(f"the bank has {len(bank)} prompts, fewer than k={options.k} "
                                f"(--k applies to --judge clip; use --k {len(bank)} or a larger --bank-size)")
    out.mkdir(parents=True, exist_ok=True)
    bank.save(out / "bank.json")
    for name in options.judges:
        if name == "clip" or name in judges:
            continue
        if name == "fer":
            from .judges import FerJudge
            judges[name] = FerJudge()
        elif name == "roundtrip":
            from .judges import RoundTripJudge
            judges[name] = RoundTripJudge()
    text_emb = None
    if clip is not None:
        tf = out / "cache" / f"clip_text_{_key(clip_name, *bank.texts)}.npy"
        if tf.is_file():
            text_emb = np.load(tf)
        else:
            text_emb = clip.encode_text(bank.texts)
            with atomic_path(tf) as tmp:
                np.save(tmp, text_emb)
    has_truth = np.all(np.isfinite(bank.truth), axis=1)
    cols = [schema.MEDIAPIPE_INDEX[n] for n in schema.MODEL_NAMES]
    results, taken, sheet = [], set(), {}
    try:
        for model in tqdm(options.models, desc="models", unit="model", disable=not options.progress):
            t0 = time.perf_counter()
            name = _model_name(model, taken)
            cache = out / "cache" / f"{_slug(name)}_{_model_signature(model)}"
            cache.mkdir(parents=True, exist_ok=True)
            if predictors and model in predictors:
                factory = (lambda m=model: predictors[m])
            elif model == GROUND_TRUTH:         # reference row: the bank's own scores
                factory = (lambda: lambda texts: np.nan_to_num(bank.truth))
            else:
                factory = (lambda m=model: make_predictor(m))
            pred = _predictions(cache, bank, factory)
            images, files = _renders(cache, pred, render, f"render {name}", options.progress, size=options.size,
                              parallel=options.parallel)
            sheet[name] = images
            res = ModelResult(name=name, path=str(model),
                              mse=mse(pred[has_truth][:, cols], bank.truth[has_truth][:, cols])
                              if has_truth.any() else None)
            if clip is not None:
                keys = [_key(np.round(p, 5).tobytes()) for p in pred]
                img_emb = _clip_images(cache, clip, _key(clip_name), images, keys, files=files,
                                       source=clip_source, parallel=options.parallel)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", SaturationWarning)   # reported below, per model
                    m = emo3d_metric(img_emb, text_emb, bank.emotions, options=options.metric)
                res.emo3d, res.recall_at_k, res.mean_kl = m.score, m.recall_at_k, m.mean_kl
                res.saturated = m.saturated
                if m.saturated:
                    log.warning("%s: Emo3D %.4f is saturated (sigmoid of %.1f; compat=%s, alpha=%s): "
                                "it cannot rank models%s", name, m.score, m.mean_kl, m.compat, m.alpha,
                                "; raise --alpha" if m.compat == "official" else "")
                res.judges["clip"] = JudgeResult("clip", m.score, m.kl,
                                                 {"mean_kl": m.mean_kl, "recall_at_k": m.recall_at_k,
                                                  "k": m.k, "compat": m.compat, "eps": m.eps,
                                                  "alpha": m.alpha, "saturated": m.saturated,
                                                  "hits": m.hits.tolist(), "topk": m.topk.tolist()})
            for jname in names:
                if jname == "clip":
                    continue
                res.judges[jname] = judges[jname].evaluate(images, emotions=bank.emotions, vectors=pred)
            res.intervals = model_intervals(res, pred, bank, options)
            res.seconds = time.perf_counter() - t0
            results.append(res)
    finally:
        for j in judges.values():
            if hasattr(j, "close"):
                j.close()
    result = EvalResult(options, bank, results, out, clip_name)
    result.files = report.write_report(result, sheet)
    return result


def model_intervals(res: ModelResult, pred: np.ndarray, bank: PromptBank,
                    options: EvalOptions) -> Dict[str, Interval]:
    """Bootstrap 95% intervals (over the bank's prompts) of every report column of one model."""
    boot = options.bootstrap
    out: Dict[str, Interval] = {}
    cols = [schema.MEDIAPIPE_INDEX[n] for n in schema.MODEL_NAMES]
    truth = np.asarray(bank.truth, dtype=np.float64)
    per_mse = np.mean((np.asarray(pred, np.float64)[:, cols] - truth[:, cols]) ** 2, axis=1)  # NaN: no truth
    if np.isfinite(per_mse).any():
        out["mse"] = mean_interval(per_mse, boot)
    for name, j in res.judges.items():
        if name == "clip":
            scale = 1.0 if j.extra.get("alpha") is None else float(j.extra["alpha"])
            out["emo3d"] = sigmoid_mean_interval(j.values, scale, boot)
            out["recall_at_k"] = mean_interval(np.asarray(j.extra["hits"], dtype=np.float64), boot)
        elif name == "fer":
            out["fer"] = sigmoid_mean_interval(j.values, 1.0, boot)
            if "top1_hits" in j.extra:
                out["fer_top1"] = mean_interval(np.asarray(j.extra["top1_hits"], dtype=np.float64), boot)
        elif name == "roundtrip":
            out["roundtrip"] = mean_interval(j.values, boot)
            out["rt_detect"] = mean_interval(np.isfinite(np.asarray(j.values, np.float64)).astype(float), boot)
            got = np.array([[np.nan] * len(cols) if g is None else np.asarray(g, np.float64)[cols]
                            for g in j.extra.get("recovered", [])]).reshape(-1, len(cols))
            if len(got) == len(pred):
                out["rt_r"] = pearson_interval(got, np.asarray(pred, np.float64)[:, cols], boot)
        else:                                   # injected judges: the mean of their per-prompt values
            v = np.asarray(j.values, dtype=np.float64)
            if v.ndim == 1 and len(v) and np.isfinite(v).any():
                out[name] = mean_interval(v, boot)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.emo3d", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", required=True, metavar="DIR",
                    help="model folders; the word 'default' names the shipped offline default, "
                         "'groundtruth' the bank's own ground-truth scores (a reference row)")
    ap.add_argument("--data", required=True, metavar="DIR", help="Emo3D-format folder; its test split is the bank")
    ap.add_argument("--out", required=True, metavar="DIR", help="report folder (cache inside: resumable)")
    ap.add_argument("--judge", nargs="+", default=["clip"], choices=JUDGES,
                    help="clip = the paper's Emo3D metric (needs CLIP); fer, roundtrip = offline judges")
    ap.add_argument("--clip", metavar="PATH", default=None,
                    help="CLIP folder (transformers, or ONNX towers from `emo3d export --clip`); "
                         "default openai/clip-vit-base-patch32 from the HF cache/hub")
    ap.add_argument("--k", type=int, default=10,
                    help="nearest prompts retrieved per image (default 10; --judge clip only)")
    ap.add_argument("--compat", choices=("paper", "official"), default="paper",
                    help="paper: eq. 5-6 (mean of k distributions); official: the repo's metric.py "
                         "(needs --alpha)")
    ap.add_argument("--alpha", type=float, default=None,
                    help="REQUIRED with --compat official (refused otherwise): the score is "
                         "sigmoid(ΣKL / (N_images·alpha)); the official code has no default and with "
                         "alpha=1 every model saturates at 1.000. The report states the value")
    ap.add_argument("--eps", type=float, default=None, help="ε smoothing (default: 1e-3 paper, 0.01 official)")
    ap.add_argument("--bank-size", type=int, default=160, help="prompts in the balanced bank (default 160)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=256, help="render size in pixels")
    ap.add_argument("--resamples", type=int, default=2000,
                    help="bootstrap resamples of the 95%% intervals (seeded with --seed; default 2000)")
    ap.add_argument("--workers", type=int, default=None,
                    help="render processes (default: the core count; 1 = this process)")
    ap.add_argument("--ray", default=None, metavar="auto|ADDRESS", help="render on a Ray cluster")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    fresh_out = not Path(args.out).exists()
    try:
        opts = EvalOptions(models=tuple(args.models), data=args.data, out=args.out,
                           judges=tuple(args.judge), clip=args.clip, k=args.k, compat=args.compat,
                           alpha=args.alpha, eps=args.eps, bank_size=args.bank_size, seed=args.seed,
                           size=args.size, progress=not args.no_progress, resamples=args.resamples,
                           workers=args.workers, ray=args.ray)
        result = run(opts)
    except Emo3DError as e:
        print(f"error: {e}", file=sys.stderr)
        if fresh_out and Path(args.out).is_dir() and not any(Path(args.out).iterdir()):
            Path(args.out).rmdir()   # a failed run leaves no empty --out folder behind
        return 2
    print((result.out / "report.md").read_text())
    print(f"wrote {', '.join(sorted(result.files.values()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
