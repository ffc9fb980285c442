"""Offline builder: Emo3D-format data from parts that work without the hub.

Recipe (paper Section 3 with offline parts): emotion distribution first (Figure 9/10-like mix of
single emotions, blends and neutral-heavy faces) -> three descriptions (``textgen`` or an LLM) ->
FACS prior blendshapes (``facs.prior``) -> four renders of the default avatar with small pose/light
variations -> MediaPipe FaceLandmarker's 52 scores of each render (``blenshape_score_k``). Without
images, ``blenshape_score_1`` holds the prior so text->blendshape pairs exist.

Safe and resumable: samples are made in shards inside ``.<out>.build/`` beside the output; each shard
file is written atomically after its images, so a killed build reruns only the unfinished shard. The
finished folder replaces ``out`` in one rename. Sample ``i`` draws from ``default_rng([seed, i])``, so
a build is deterministic for a seed however it was interrupted.

Scale-out: shards are independent tasks (:mod:`emo3d.parallel`): a local process pool of
``workers`` processes (default: the core count; 1 = this process), or Ray tasks with ``ray="auto"``
or a cluster address. Each shard task makes its samples, renders and labels them, and writes its
shard file atomically, so the output is byte-identical whatever the backend, the worker count or
the order the shards finish in; a shard whose worker was killed is rerun (its files rewritten with
the same bytes) and no sample is lost or duplicated. One progress bar counts the finished work.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.options import check_int
from emo3d.io import atomic_write_json, swap_in_dir
from emo3d.parallel import ParallelOptions, run_tasks
from emo3d.schema import EMOTION_INDEX, EMOTIONS, N_EMOTIONS

from . import facs, textgen
from .reader import N_IMAGES, PARQUET, SPLITS, Sample, read_table, split_csv, write_table
from .validate import quantize

__all__ = ["BuildOptions", "BuildResult", "build", "sample_emotions", "make_sample", "PRIMITIVES_CSV"]

PRIMITIVES_CSV = "primitive_emotions.csv"
BUILDER_VERSION = 1

# Figure 9 / Table 3: prompts per dominant emotion (words / avg sentence length)
_DOMINANT_P = np.array([14805 / 13.56, 31405 / 12.38, 33690 / 12.15, 32878 / 12.63, 16097 / 11.84,
                        19917 / 12.53, 15120 / 11.32, 7535 / 12.96])
_DOMINANT_P = _DOMINANT_P / _DOMINANT_P.sum()
# Figure 10: emotions that co-occur (partner, weight)
_PARTNERS: Dict[str, Tuple[Tuple[str, float], ...]] = {
    "neutral": (("sadness", 1), ("surprise", 1), ("happiness", 1), ("fear", 0.5), ("contempt", 0.5)),
    "happiness": (("surprise", 3), ("neutral", 1)),
    "surprise": (("fear", 2), ("happiness", 2), ("neutral", 1)),
    "sadness": (("fear", 2), ("anger", 1), ("neutral", 1), ("disgust", 0.5)),
    "anger": (("disgust", 2), ("contempt", 1.5), ("sadness", 1)),
    "disgust": (("contempt", 3), ("anger", 2)),
    "fear": (("surprise", 2), ("sadness", 2), ("anger", 0.5)),
    "contempt": (("disgust", 3), ("anger", 2)),
}


@dataclass
class BuildOptions:
    """Options of ``build``; validated on creation."""
    out: Path
    samples: int = 2000
    seed: int = 0
    images: bool = True
    renders: int = N_IMAGES            # renders per sample (<= 4)
    image_size: int = 256
    ssaa: int = 1                      # supersampling of the renders (2: smoother edges, ~25% slower)
    workers: Optional[int] = None      # worker processes, each its own renderer + FaceLandmarker (None: cores)
    ray: Optional[str] = None          # "auto" or a Ray cluster address: shards run as Ray tasks
    shard_size: int = 100
    split: Tuple[float, float, float] = (0.8, 0.1, 0.1)
    text: str = "template"             # "template" | "llm"
    llm_base_url: Optional[str] = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: Optional[str] = None
    primitives: bool = True
    primitive_faces: Tuple[Tuple[str, str], ...] = ()   # (gender, texture name or .glb) heads of the primitive set
    card: bool = True
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self):
        self.out = Path(self.out).expanduser()
        check_int(self.samples, "BuildOptions.samples", 1)
        check_int(self.seed, "BuildOptions.seed", 0)
        check_int(self.renders, "BuildOptions.renders", 1, N_IMAGES)
        check_int(self.image_size, "BuildOptions.image_size", 32, 2048)
        check_int(self.ssaa, "BuildOptions.ssaa", 1, 4)
        self.parallel  # validates workers and ray
        check_int(self.shard_size, "BuildOptions.shard_size", 1)
        sp = tuple(float(x) for x in self.split)
        if len(sp) != 3 or any(x < 0 for x in sp) or abs(sum(sp) - 1) > 1e-6:
            raise InvalidInputError(f"split must be three fractions (train, val, test) summing to 1, "
                                    f"got {self.split!r}")
        self.split = sp
        self.primitive_faces = tuple((str(g), str(src)) for g, src in dict(self.primitive_faces).items())
        bad = [g for g, _ in self.primitive_faces if g not in ("male", "female")]
        if bad:
            raise InvalidInputError(f"primitive_faces genders {bad}: accepted male, female")
        if self.text not in ("template", "llm"):
            raise InvalidInputError(f"text must be 'template' or 'llm', got {self.text!r}")
        if self.text == "llm" and not self.llm_base_url:
            raise InvalidInputError("text='llm' needs llm_base_url (an OpenAI-compatible endpoint, e.g. "
                                    "http://127.0.0.1:8000/v1)")

    @property
    def parallel(self) -> ParallelOptions:
        return ParallelOptions(workers=self.workers, ray=self.ray)

    def fingerprint(self) -> Dict:
        """What decides the rows: a resumed build must match it."""
        keys = ("samples", "seed", "images", "renders", "image_size", "ssaa", "shard_size", "split", "text",
                "llm_base_url", "llm_model")
        d = {k: getattr(self, k) for k in keys}
        d["split"] = list(self.split)
        d["version"] = BUILDER_VERSION
        d["recipe"] = _recipe_hash()
        if self.images:
            from .render import available_textures
            d["textures"] = list(available_textures())
        return d


def _recipe_hash() -> str:
    """Hash of the modules that decide a row: resuming across a code change would mix two recipes."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in ("builder.py", "facs.py", "textgen.py", "vocabulary.py", "lexicon.py", "render.py", "validate.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


@dataclass
class BuildResult:
    out: Path
    samples: int
    images: int
    faces_missed: int
    distinct_texts: int
    seconds: float
    resumed_shards: int
    splits: Dict[str, int] = field(default_factory=dict)


# --- the recipe --------------------------------------------------------------------------------
def _round_dist(d: np.ndarray) -> np.ndarray:
    """Normalise to 1 and round to the paper's one-decimal grid (largest remainder)."""
    d = d / d.sum() * 10
    fl = np.floor(d)
    rest = int(round(10 - fl.sum()))
    order = np.argsort(-(d - fl), kind="stable")
    fl[order[:rest]] += 1
    if fl.sum() == 0:
        fl[int(np.argmax(d))] = 10
    return (fl / 10).astype(np.float32)


def sample_emotions(rng: np.random.Generator) -> Tuple[np.ndarray, float]:
    """An 8-emotion distribution (one-decimal grid, sums to 1) and an intensity in [0.3, 1].

    The dominant emotion follows Figure 9's class sizes; the mix is a single emotion (30%), the
    emotion with some neutral (25%) or a blend with an emotion Figure 10 shows it co-occurring with
    (45%). Neutral-class faces are plain (40%) or neutral-heavy with a trace of another emotion.
    """
    dom = EMOTIONS[int(rng.choice(N_EMOTIONS, p=_DOMINANT_P))]
    d = np.zeros(N_EMOTIONS)
    if dom == "neutral":
        if rng.random() < 0.6:
            trace = ("happiness", "surprise", "sadness", "contempt", "fear")[int(rng.integers(5))]
            d[EMOTION_INDEX["neutral"]] = rng.uniform(0.6, 0.85)
            d[EMOTION_INDEX[trace]] = 1 - d[EMOTION_INDEX["neutral"]]
        else:
            d[EMOTION_INDEX["neutral"]] = 1.0
    else:
        kind = int(rng.choice(3, p=[0.3, 0.25, 0.45]))
        if kind == 0:
            d[EMOTION_INDEX[dom]] = 1.0
        elif kind == 1:
            d[EMOTION_INDEX[dom]] = rng.uniform(0.6, 0.9)
            d[EMOTION_INDEX["neutral"]] = 1 - d[EMOTION_INDEX[dom]]
        else:
            names, w = zip(*_PARTNERS[dom])
            partner = names[int(rng.choice(len(names), p=np.array(w) / sum(w)))]
            d[EMOTION_INDEX[dom]] = rng.uniform(0.6, 0.85)
            d[EMOTION_INDEX[partner]] += 1 - d[EMOTION_INDEX[dom]]
            if rng.random() < 0.3:  # a faint third emotion
                d[int(rng.integers(N_EMOTIONS))] += 0.1
    level = int(rng.choice(3, p=[0.3, 0.4, 0.3]))
    intensity = float(rng.uniform(*((0.3, 0.5), (0.5, 0.8), (0.8, 1.0))[level]))
    return _round_dist(d), round(intensity, 3)


@dataclass
class _Made:
    sample: Sample
    poses: List[Tuple[Tuple[float, float, float], Tuple[float, float, float], int]]  # pose, light, texture


def make_sample(i: int, seed: int, *, prompt_type: str = "offline",
                text_fn: Optional[Callable] = None) -> _Made:
    """Sample ``i`` of a build with ``seed``: emotions, texts, prior, render variations (no images)."""
    rng = np.random.default_rng([seed, i])
    dist, intensity = sample_emotions(rng)
    subject = textgen.Subject.sample(rng)
    side = ("left", "right")[int(rng.integers(2))]
    if text_fn is None:
        texts = textgen.describe(dist, intensity, rng, subject=subject, side=side)
    else:
        texts, dist = text_fn(dist, intensity, subject, side, rng)
    prior = quantize(facs.prior(dist, intensity, rng=rng, text=" ".join(texts), side=side[0].upper()))
    poses = []
    for _ in range(N_IMAGES):
        pose = (float(rng.normal(0, 6)), float(rng.normal(0, 4)), float(rng.normal(0, 2.5)))
        light = (float(0.3 + rng.normal(0, 0.25)), float(0.4 + rng.normal(0, 0.2)), 1.0)
        tex = int(rng.integers(1 << 16))  # texture identity: index modulo the textures available
        poses.append((tuple(round(x, 3) for x in pose), tuple(round(x, 3) for x in light), tex))
    s = Sample(sample_id=i, prompt_type=prompt_type, texts=texts, emotions=dist,
               images=(None,) * N_IMAGES, blendshapes=(None,) * N_IMAGES, prior=prior,
               intensity=intensity)
    return _Made(s, poses)


def image_folder(i: int) -> str:
    """Release-style image folder of sample ``i`` (``images_0_1000`` ...)."""
    lo = (i // 1000) * 1000
    return f"images_{lo}_{lo + 1000}"


def _assign_splits(n: int, seed: int, fractions: Sequence[float]) -> Dict[str, List[int]]:
    perm = np.random.default_rng([seed, 2**31 - 1]).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    parts = (perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:])
    return {name: sorted(int(x) for x in p) for name, p in zip(SPLITS, parts)}


# --- the build ---------------------------------------------------------------------------------
def _progress(total: int, initial: int, enabled: bool, desc: str, unit: str = "sample"):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit=unit,
                file=sys.stderr, dynamic_ncols=True)


def _work_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.build"


def _open_work(opts: BuildOptions) -> Tuple[Path, int]:
    work = _work_dir(opts.out)
    fp = opts.fingerprint()
    meta = work / "build.json"
    if work.is_dir() and meta.is_file():
        old = json.loads(meta.read_text())
        if old.get("fingerprint") != fp:
            if not opts.overwrite:
                raise InvalidInputError(
                    f"an unfinished build with other options is in {work} ({old.get('fingerprint')}); "
                    "rerun with the same options to resume it, or pass --overwrite to start over")
            shutil.rmtree(work)
    if not work.is_dir() or not meta.is_file():
        shutil.rmtree(work, ignore_errors=True)
        (work / "shards").mkdir(parents=True)
        atomic_write_json(meta, {"fingerprint": fp, "started": time.time()})
    done = len(list((work / "shards").glob("shard_*.csv")))
    return work, done


def _render_shard(made: List[_Made], imager, textures: tuple, work: Path, renders: int) -> int:
    """Render + score every image of a shard; fills the samples' ``images``/``blendshapes``. Returns
    how many images MediaPipe found no face in."""
    missed = 0
    for m in made:
        i = m.sample.sample_id
        got = []
        for r in range(renders):
            pose, light, tex = m.poses[r]
            scores = imager.render_and_score(m.sample.prior, work / f"{image_folder(i)}/{i}_{r}.jpeg", pose=pose,
                                             light_dir=light, texture=textures[tex % len(textures)])
            got.append(None if scores is None else quantize(scores))
        m.sample.images = tuple(f"{image_folder(i)}/{i}_{r}.jpeg" if r < renders else None for r in range(N_IMAGES))
        m.sample.blendshapes = tuple(got[r] if r < renders else None for r in range(N_IMAGES))
        missed += sum(g is None for g in got)
    return missed


@dataclass(frozen=True)
class _ShardTask:
    """Everything a worker needs to make shard ``k`` (picklable; no open handles)."""
    k: int
    start: int
    stop: int
    path: str
    work: str
    seed: int
    prompt_type: str
    images: bool
    renders: int
    image_size: int
    ssaa: int
    render_threads: int
    llm: Optional[Tuple[str, str, Optional[str]]]     # (base_url, model, api_key) for text="llm"


_WORKER_STATE: Dict[Tuple, object] = {}     # per worker process: its Imager and text function


def _worker_state(task: _ShardTask):
    key = (task.images, task.image_size, task.ssaa, task.render_threads, task.llm)
    state = _WORKER_STATE.get(key)
    if state is None:
        imager, textures, text_fn = None, (), None
        if task.images:
            from .render import Imager, available_textures
            imager = Imager(size=task.image_size, ssaa=task.ssaa, threads=task.render_threads)
            textures = available_textures()
        if task.llm is not None:
            from .llm import LLMOptions, make_text_fn
            text_fn = make_text_fn(LLMOptions(base_url=task.llm[0], model=task.llm[1], api_key=task.llm[2]))
        state = _WORKER_STATE[key] = (imager, textures, text_fn)
    return state


def _make_shard(task: _ShardTask) -> Tuple[int, int, int]:
    """One shard, start to finish (idempotent): (k, samples, images without a detected face)."""
    imager, textures, text_fn = _worker_state(task)
    made = [make_sample(i, task.seed, prompt_type=task.prompt_type, text_fn=text_fn)
            for i in range(task.start, task.stop)]
    missed = 0
    if imager is not None:
        missed = _render_shard(made, imager, textures, Path(task.work), task.renders)
    else:
        for m in made:
            m.sample.blendshapes = (m.sample.prior,) + (None,) * (N_IMAGES - 1)
    write_table([m.sample for m in made], Path(task.path))   # the shard is complete only now
    return task.k, len(made), missed


def _close_worker_state() -> None:
    for imager, _, _ in _WORKER_STATE.values():
        if imager is not None:
            imager.close()
    _WORKER_STATE.clear()


class _Lock:
    """An exclusive ``flock`` beside the output: two builds never write one folder (released by the OS
    when a build dies, so a killed build never blocks its rerun)."""

    def __init__(self, out: Path):
        self.path = out.parent / f".{out.name}.lock"

    def __enter__(self):
        import fcntl
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            raise InvalidInputError(f"another emo3d data build is writing {self.path.parent / self.path.name[1:-5]}"
                                    f" (lock {self.path}); wait for it or choose another --out") from None
        return self

    def __exit__(self, *exc):
        try:
            self.path.unlink()
        except OSError:
            pass
        self.fh.close()


def build(opts: BuildOptions) -> BuildResult:
    """Build (or resume) an Emo3D-format folder at ``opts.out``; see the module docstring."""
    with _Lock(opts.out):
        return _build(opts)


def _build(opts: BuildOptions) -> BuildResult:
    t0 = time.time()
    out = opts.out
    if out.exists() and not opts.overwrite:
        raise InvalidInputError(f"{out} exists; pass --overwrite to replace it (or choose another --out)")
    work, resumed = _open_work(opts)
    if json.loads((work / "build.json").read_text()).get("finished"):
        return _publish(work, out, opts, t0, resumed, missed=0)   # killed just before the final rename
    prompt_type = "offline_llm" if opts.text == "llm" else "offline"
    llm = (opts.llm_base_url, opts.llm_model, opts.llm_api_key) if opts.text == "llm" else None
    par = opts.parallel
    n_shards = (opts.samples + opts.shard_size - 1) // opts.shard_size
    shard_paths = [work / "shards" / f"shard_{k:05d}.csv" for k in range(n_shards)]
    tasks = [_ShardTask(k, k * opts.shard_size, min((k + 1) * opts.shard_size, opts.samples), str(path), str(work),
                        opts.seed, prompt_type, opts.images, opts.renders, opts.image_size, opts.ssaa,
                        0 if par.backend == "inline" else 1, llm)
             for k, path in enumerate(shard_paths) if not path.is_file()]
    done_samples = opts.samples - sum(t.stop - t.start for t in tasks)
    per = opts.renders if opts.images else 1
    missed = 0
    try:
        with _progress(opts.samples * per, done_samples * per, opts.progress, f"emo3d data build {out.name}",
                       "image" if opts.images else "sample") as bar:
            outs = run_tasks(_make_shard, tasks, par, on_done=lambda i, r: bar.update(r[1] * per))
        missed = sum(r[2] for r in outs)
    finally:
        _close_worker_state()            # the in-process backend keeps its Imager here
    lost = [str(p) for p in shard_paths if not p.is_file()]
    if lost:
        raise InvalidInputError(f"build incomplete: {len(lost)} shard file(s) missing after the run "
                                f"(first: {lost[0]}); rerun the same command to resume")
    samples: List[Sample] = []
    for p in shard_paths:
        samples.extend(read_table(p, root=work, check_images=False))
    _finish(work, samples, opts, imager_size=opts.image_size)
    return _publish(work, out, opts, t0, resumed, missed)


def _publish(work: Path, out: Path, opts: BuildOptions, t0: float, resumed: int, missed: int) -> BuildResult:
    """Drop the shards and move the finished folder onto ``out`` in one rename."""
    shards = work / "shards"
    if shards.exists():
        gone = out.parent / f".{out.name}.shards.old"
        shutil.rmtree(gone, ignore_errors=True)
        os.replace(shards, gone)
        shutil.rmtree(gone, ignore_errors=True)
    swap_in_dir(work, out)  # overwrite: the old folder goes in one rename
    samples = read_table(out / "data" / PARQUET, root=out, check_images=False)
    n_img = sum(1 for s in samples for x in s.images if x)
    distinct = len({t for s in samples for t in s.texts})
    splits = {k: len(v) for k, v in _assign_splits(len(samples), opts.seed, opts.split).items()}
    return BuildResult(out, len(samples), n_img, missed, distinct, round(time.time() - t0, 2), resumed, splits)


def _finish(work: Path, samples: List[Sample], opts: BuildOptions, *, imager_size: int) -> None:
    data = work / "data"
    data.mkdir(exist_ok=True)
    write_table(samples, data / PARQUET)
    by_id = {s.sample_id: s for s in samples}
    for name, ids in _assign_splits(len(samples), opts.seed, opts.split).items():
        write_table([by_id[i] for i in ids], data / split_csv(name))
    if opts.primitives:
        from .primitives import build_primitives
        build_primitives(work, images=opts.images, identities=dict(opts.primitive_faces), size=imager_size,
                         ssaa=opts.ssaa)
    for tmp in work.rglob(".*.tmp"):  # temp files a killed run left behind (atomic writes never finished)
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink()
    if opts.card:
        from .card import write_card
        try:
            write_card(work, samples=samples, name=opts.out.name)
        except Exception as exc:  # the card must never lose a finished build
            print(f"emo3d data: dataset card failed: {exc!r}", file=sys.stderr)
    for dirpath, _, files in os.walk(work):  # temp files are 0600; a dataset is for everyone to read
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    meta = json.loads((work / "build.json").read_text())
    meta.update(finished=time.time(), samples=len(samples),
                distinct_texts=len({t for s in samples for t in s.texts}))
    atomic_write_json(work / "build.json", meta)   # written last: the folder is complete
    os.chmod(work / "build.json", 0o644)
