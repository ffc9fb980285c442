"""The word prior of short descriptions: a softmax regression on the encoder's embedding of emo3d's own
emotion vocabulary (words, slang, idioms, typed reactions: :func:`.prompts.word_vocabulary` and
:func:`.prompts.everyday_vocabulary`). For a text that reads as a short description
(:func:`.rules.is_short_description`: "gobsmacked", "feeling blue") the reader mixes the FACS face of the
emotion it reads into the head's face (:meth:`.reader.TextReader.word_prior_faces`).

Why: the head learns mostly from real sentences, where short plain text is neutral; on single rare words it
loses what the encoder knows about them. A classifier trained on words alone keeps more of it (the model card
has the numbers on the description development set, ``probes.description_dev``).

A reader folder holds it as ``word_prior.npz`` (``mean`` [D], ``weight`` [8,D], ``bias`` [8], in
``schema.EMOTIONS`` order) and its share of the face in ``manifest.json`` →
``extra.reader.word_prior_face_mix`` (selected by ``train_reader.calibrate_word_prior``)::

    prior = WordPrior.load(folder / WORD_PRIOR_FILE)
    prior.log_probs(embeddings)          # [N,8]
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError, ModelFileError
from emo3d.io import atomic_write_npz
from emo3d.schema import EMOTIONS

WORD_PRIOR_FILE = "word_prior.npz"
FACE_MIX_KEY = "word_prior_face_mix"   # manifest extra.reader.<key>: the prior's share of short faces (0: off)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class WordPrior:
    """Softmax regression on centred, unit-length embeddings: ``mean`` [D], ``weight`` [8,D], ``bias`` [8]."""
    mean: np.ndarray
    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        d = np.asarray(self.mean).shape
        if len(d) != 1 or np.asarray(self.weight).shape != (len(EMOTIONS), d[0]) \
                or np.asarray(self.bias).shape != (len(EMOTIONS),):
            raise ModelFileError(f"word prior shapes mean {np.asarray(self.mean).shape}, weight "
                                 f"{np.asarray(self.weight).shape}, bias {np.asarray(self.bias).shape}; expected "
                                 f"[D], [{len(EMOTIONS)},D], [{len(EMOTIONS)}]")
        for name in ("mean", "weight", "bias"):
            a = np.array(getattr(self, name), np.float32)      # a copy: the caller's arrays stay writable
            if not np.isfinite(a).all():
                raise ModelFileError(f"word prior {name} holds a non-finite value")
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def logits(self, emb: np.ndarray) -> np.ndarray:
        emb = np.asarray(emb, np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise InvalidInputError(f"word prior reads [N,{self.dim}] embeddings, got shape {emb.shape}")
        return _unit(emb - self.mean) @ self.weight.T + self.bias

    def log_probs(self, emb: np.ndarray) -> np.ndarray:
        z = self.logits(emb)
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    def save(self, path: str | Path) -> Path:
        return atomic_write_npz(Path(path), mean=self.mean, weight=self.weight, bias=self.bias)

    @staticmethod
    def load(path: str | Path) -> "WordPrior":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = {"mean", "weight", "bias"} - set(z.files)
                if missing:
                    raise ModelFileError(f"{path} lacks {', '.join(sorted(missing))} (a word prior holds mean, "
                                         f"weight, bias)")
                return WordPrior(z["mean"], z["weight"], z["bias"])
        except (OSError, ValueError) as e:
            raise ModelFileError(f"{path} is not a readable word prior (.npz): {e}") from None


def vocabulary() -> Tuple[List[str], np.ndarray]:
    """(entries, emotion index) the prior learns: emo3d's word prompts' vocabulary and its everyday vocabulary
    (one emotion per entry; the OOV and description-dev key words are excluded by :mod:`.prompts`)."""
    from .prompts import everyday_vocabulary, word_vocabulary
    pairs = word_vocabulary() + everyday_vocabulary()
    return [w for w, _ in pairs], np.array([int(np.argmax(d)) for _, d in pairs], np.int64)


def fit(emb: np.ndarray, labels: np.ndarray, *, l2: float = 1e-4, steps: int = 500, lr: float = 0.5) -> WordPrior:
    """Softmax regression (full-batch gradient descent with momentum, L2 ``l2`` on the weights) on centred,
    unit-length ``emb`` [N,D] with ``labels`` [N] (indices into ``schema.EMOTIONS``)."""
    emb = np.asarray(emb, np.float64)
    labels = np.asarray(labels, np.int64)
    if emb.ndim != 2 or len(emb) != len(labels) or not len(emb):
        raise InvalidInputError(f"word prior needs [N,D] embeddings and N labels, got {emb.shape} and "
                                f"{labels.shape}")
    if labels.min() < 0 or labels.max() >= len(EMOTIONS):
        raise InvalidInputError(f"word prior labels must index schema.EMOTIONS (0..{len(EMOTIONS) - 1})")
    if l2 < 0 or steps < 1 or lr <= 0:
        raise InvalidInputError(f"word prior fit: l2 >= 0, steps >= 1 and lr > 0 required, got {l2}, {steps}, {lr}")
    mean = emb.mean(0)
    x = _unit(emb - mean)
    n, k = len(x), len(EMOTIONS)
    # balanced classes: each emotion weighs the same whatever its number of entries
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    w_row = (1.0 / np.maximum(counts, 1))[labels]
    w_row *= n / w_row.sum()
    y = np.eye(k)[labels]
    w, b = np.zeros((k, x.shape[1])), np.zeros(k)
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    for _ in range(steps):
        z = x @ w.T + b
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        g = (p - y) * w_row[:, None] / n
        gw, gb = g.T @ x + l2 * w, g.sum(0)
        vw = 0.9 * vw + gw
        vb = 0.9 * vb + gb
        w -= lr * vw
        b -= lr * vb
    return WordPrior(mean.astype(np.float32), w.astype(np.float32), b.astype(np.float32))


def fit_vocabulary(embed: Callable[[Sequence[str]], np.ndarray], *, l2: float = 1e-4) -> WordPrior:
    """:func:`fit` on :func:`vocabulary` embedded with ``embed`` (texts -> [N,D])."""
    texts, labels = vocabulary()
    return fit(embed(texts), labels, l2=l2)
