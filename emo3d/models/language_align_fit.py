"""Fitting the language alignment (:mod:`.language_align`): training only (``train_reader``; torch for the
language identifier). The runtime reads the fitted file through :mod:`.language_align` and never imports this."""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError

from .language_align import ENGLISH, LanguageAlignment

__all__ = ["fit", "ridge_map", "Pairs", "corpus_pairs"]

# (translations [N,D], their English originals [N,D], weight of each pair): pairs of one language from a corpus
Pairs = Tuple[np.ndarray, np.ndarray, float]


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


def ridge_map(src: np.ndarray, dst: np.ndarray, ridge: float, weight: Optional[np.ndarray] = None) -> np.ndarray:
    """[D,D] ``W`` = argmin ``sum_i weight_i ||src_i W - dst_i||^2 + ridge ||W - I||^2`` (``src``, ``dst``:
    centred [N,D]; ``weight`` [N], default all 1)."""
    d = src.shape[1]
    eye = np.eye(d)
    src = src.astype(np.float64)
    ws = src if weight is None else src * np.asarray(weight, np.float64)[:, None]
    return np.linalg.solve(ws.T @ src + ridge * eye, ws.T @ dst + ridge * eye).astype(np.float32)


def _weighted_map(src: np.ndarray, dst: np.ndarray, w: np.ndarray, ridge: float):
    """(source mean, target mean, map) of the weighted pairs ``src`` -> ``dst``."""
    w = w.astype(np.float64)
    ms, mt = (w @ src) / w.sum(), (w @ dst) / w.sum()
    return ms, mt, ridge_map(src - ms, dst - mt, ridge, w)


def fit(parallel: Mapping[str, np.ndarray], english: np.ndarray, words: Optional[Mapping[str, np.ndarray]] = None,
        *, ridge: float = 0.1, temperature: float = 1.0, seed: int = 0,
        extra: Optional[Mapping[str, Sequence[Pairs]]] = None) -> LanguageAlignment:
    """Fit the alignment. ``parallel``: language -> [N,D] embeddings of the same N sentences (``"en"`` and
    the others, row i a translation of row i); ``english``: [M,D] more English embeddings (the identifier's
    English class); ``words``: language -> [K,D] embeddings of single words in that language (more identifier
    rows; optional). ``ridge`` > 0; ``temperature`` > 0: the identifier's logits are divided by it (stored so;
    below 1 sharpens its probabilities). ``extra``: language -> more pairs of that language (translations,
    their English originals, a weight per pair relative to the parallel sentences' 1; e.g. a translated corpus
    of :mod:`.parallel_corpora`): they join the language's ridge map (which then sends the weighted mean of its
    translations to the weighted mean of their originals) and its identifier class (their English side joins
    the English class); a language of ``extra`` absent from ``parallel`` is an error."""
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
    extra = {l: list(v) for l, v in (extra or {}).items() if len(v)}
    unknown = sorted(set(extra) - set(langs[1:]))
    if unknown:
        raise InvalidInputError(f"language alignment: extra pairs for {unknown}, which the parallel sentences lack; "
                                f"accepted: {list(langs[1:])}")
    par = {l: np.asarray(parallel[l], np.float64) for l in langs}
    dim = par[ENGLISH].shape[1]
    for l, sets in extra.items():
        for src, dst, w in sets:
            if np.shape(src) != np.shape(dst) or np.ndim(src) != 2 or np.shape(src)[1] != dim or not w > 0:
                raise InvalidInputError(f"language alignment: extra pairs of {l!r} have shapes {np.shape(src)} / "
                                        f"{np.shape(dst)} and weight {w}; expected two [N,{dim}] arrays, weight > 0")
    means, targets, maps = [par[ENGLISH].mean(0)], [], []
    for l in langs[1:]:
        src = np.concatenate([par[l]] + [np.asarray(a, np.float64) for a, _, _ in extra.get(l, [])])
        dst = np.concatenate([par[ENGLISH]] + [np.asarray(b, np.float64) for _, b, _ in extra.get(l, [])])
        w = np.concatenate([np.ones(n)] + [np.full(len(a), float(wt)) for a, _, wt in extra.get(l, [])])
        ms, mt, m = _weighted_map(src, dst, w, ridge)
        means.append(ms)
        targets.append(mt)
        maps.append(m)
    means = np.stack(means).astype(np.float32)
    maps = np.stack(maps).astype(np.float16).astype(np.float32)
    words = dict(words or {})
    xs = [np.asarray(english, np.float32), par[ENGLISH].astype(np.float32)]
    xs += [np.asarray(b, np.float32) for sets in extra.values() for _, b, _ in sets]
    ys = [np.zeros(len(x), np.int64) for x in xs]
    for i, l in enumerate(langs[1:], 1):
        more = np.asarray(words.get(l, np.zeros((0, dim))), np.float32)
        xs.append(np.concatenate([par[l].astype(np.float32), more]
                                 + [np.asarray(a, np.float32) for a, _, _ in extra.get(l, [])]))
        ys.append(np.full(len(xs[-1]), i, np.int64))
    lid_w, lid_b = _fit_identifier(np.concatenate(xs), np.concatenate(ys), len(langs), seed=seed)
    return LanguageAlignment(langs, lid_w / np.float32(temperature), lid_b / np.float32(temperature), means, maps,
                             float(ridge), np.stack(targets).astype(np.float32))


def corpus_pairs(specs: Sequence[str], embed, weight: float = 1.0, goemotions=None,
                 counts: Optional[Dict[str, int]] = None) -> Dict[str, List[Pairs]]:
    """``fit``'s ``extra``: the pairs of the public parallel corpora ``specs`` (NAME=PATH, read by
    :mod:`.parallel_corpora`; ``goemotions``: the GoEmotions folder the translated rows are matched in), embedded
    by ``embed`` (texts -> [N,D]), each of weight ``weight``. ``counts``, when given, gets the number of pairs per
    ``"<corpus>/<language>"``."""
    from . import parallel_corpora
    out: Dict[str, List[Pairs]] = {}
    for part in parallel_corpora.load(parallel_corpora.parse_specs(specs), goemotions):
        if not len(part):
            continue
        out.setdefault(part.language, []).append((embed(list(part.texts)), embed(list(part.english)), float(weight)))
        if counts is not None:
            counts[f"{part.corpus}/{part.language}"] = len(part)
    return out
