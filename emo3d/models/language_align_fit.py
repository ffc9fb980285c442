"""Fitting the language alignment (:mod:`.language_align`): training only (``train_reader``; torch for the
language identifier). The runtime reads the fitted file through :mod:`.language_align` and never imports this."""
from __future__ import annotations

from typing import Mapping, Optional, Tuple

import numpy as np

from emo3d.errors import InvalidInputError

from .language_align import ENGLISH, LanguageAlignment

__all__ = ["fit", "ridge_map"]


def _fit_identifier(x: np.ndarray, y: np.ndarray, n_classes: int, *, seed: int, l2: float = 1e-3,
                    steps: int = 300) -> Tuple[np.ndarray, np.ndarray]:
    """Class-balanced multinomial logistic regression (LBFGS): [D,L] weights and [L] bias."""
    import torch
    torch.manual_seed(seed)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = (len(y) / (n_classes * np.maximum(counts, 1)))[y].astype(np.float32)
    xt, yt, wt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64)), torch.from_numpy(w)
    lin = torch.nn.Linear(x.shape[1], n_classes)
    opt = torch.optim.LBFGS(lin.parameters(), lr=0.5, max_iter=steps)

    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.cross_entropy(lin(xt), yt, reduction="none") * wt).mean() \
            + l2 * (lin.weight ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return lin.weight.detach().numpy().T.astype(np.float32).copy(), lin.bias.detach().numpy().astype(np.float32)


def ridge_map(src: np.ndarray, dst: np.ndarray, ridge: float) -> np.ndarray:
    """[D,D] ``W`` = argmin ``||src W - dst||^2 + ridge ||W - I||^2`` (``src``, ``dst``: centred [N,D])."""
    d = src.shape[1]
    eye = np.eye(d)
    return np.linalg.solve(src.T.astype(np.float64) @ src + ridge * eye,
                           src.T.astype(np.float64) @ dst + ridge * eye).astype(np.float32)


def fit(parallel: Mapping[str, np.ndarray], english: np.ndarray, words: Optional[Mapping[str, np.ndarray]] = None,
        *, ridge: float = 0.1, temperature: float = 1.0, seed: int = 0) -> LanguageAlignment:
    """Fit the alignment. ``parallel``: language -> [N,D] embeddings of the same N sentences (``"en"`` and
    the others, row i a translation of row i); ``english``: [M,D] more English embeddings (the identifier's
    English class); ``words``: language -> [K,D] embeddings of single words in that language (more identifier
    rows; optional). ``ridge`` > 0; ``temperature`` > 0: the identifier's logits are divided by it (stored so;
    below 1 sharpens its probabilities)."""
    if ENGLISH not in parallel or len(parallel) < 2:
        raise InvalidInputError(f"language alignment: the parallel sentences need English ('en') and at least one "
                                f"other language; got {sorted(parallel)}")
    if not ridge > 0:
        raise InvalidInputError(f"language alignment ridge is {ridge}; expected a number > 0")
    if not temperature > 0:
        raise InvalidInputError(f"language alignment temperature is {temperature}; expected a number > 0")
    langs = (ENGLISH,) + tuple(sorted(l for l in parallel if l != ENGLISH))
    n = len(parallel[ENGLISH])
    if any(len(parallel[l]) != n for l in langs) or n < 2:
        raise InvalidInputError(f"language alignment: every language needs the same >= 2 parallel sentences; got "
                                f"{ {l: len(parallel[l]) for l in langs} }")
    par = {l: np.asarray(parallel[l], np.float64) for l in langs}
    means = np.stack([par[l].mean(0) for l in langs]).astype(np.float32)
    maps = np.stack([ridge_map(par[l] - means[i], par[ENGLISH] - means[0], ridge)
                     for i, l in enumerate(langs) if i]).astype(np.float16).astype(np.float32)
    words = dict(words or {})
    xs = [np.asarray(english, np.float32), par[ENGLISH].astype(np.float32)]
    ys = [np.zeros(len(xs[0]), np.int64), np.zeros(n, np.int64)]
    for i, l in enumerate(langs[1:], 1):
        extra = np.asarray(words.get(l, np.zeros((0, means.shape[1]))), np.float32)
        xs.append(np.concatenate([par[l].astype(np.float32), extra]))
        ys.append(np.full(len(xs[-1]), i, np.int64))
    lid_w, lid_b = _fit_identifier(np.concatenate(xs), np.concatenate(ys), len(langs), seed=seed)
    return LanguageAlignment(langs, lid_w / np.float32(temperature), lid_b / np.float32(temperature), means, maps,
                             float(ridge))
