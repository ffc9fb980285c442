"""Bootstrap 95% intervals for every number of an evaluation report (percentile bootstrap over the
bank's prompts, vectorised and seeded).

A statistic is written as a function of the per-item COLUMN SUMS of a resample, so that all ``B``
resamples are one matrix product: ``counts`` [B,N] (how often each item is drawn; one multinomial
draw per resample, ``numpy.random.default_rng(seed)``) times ``columns`` [N,m] gives the resampled
sums [B,m]. Memory stays bounded by doing ``chunk`` resamples at a time; the result does not depend
on ``chunk`` (the counts are drawn in one fixed order).

Statistics used by the report (:data:`STATISTICS`):

* ``mean``      Σx / Σ1 over the items that are finite (NaN items are left out of every resample)
* ``sigmoid``   1 / (1 + exp(−mean / scale)) — Emo3D and Emo3D-FER (scale = α in official mode)
* ``pearson``   Pearson r over all pairs pooled across items, from per-item moment sums
                (Σa, Σb, Σa², Σb², Σab, count) — the round trip's r
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number

__all__ = ["Interval", "BootstrapOptions", "bootstrap", "mean_interval", "sigmoid_mean_interval",
           "pearson_interval", "pearson_moments", "resample_counts"]


@dataclass(frozen=True)
class BootstrapOptions:
    """``resamples`` B, ``level`` of the two-sided percentile interval, ``seed``, ``chunk`` resamples
    per matrix product."""
    resamples: int = 2000
    level: float = 0.95
    seed: int = 0
    chunk: int = 256

    def __post_init__(self):
        check_int(self.resamples, "BootstrapOptions.resamples", 10)
        check_number(self.level, "BootstrapOptions.level", 0.5, 1.0, hi_open=True)
        check_int(self.chunk, "BootstrapOptions.chunk", 1)


@dataclass(frozen=True)
class Interval:
    """Point estimate on the full sample and its percentile interval [lo, hi]."""
    value: float
    lo: float
    hi: float
    level: float = 0.95
    resamples: int = 0

    def to_dict(self) -> dict:
        return {"value": self.value, "lo": self.lo, "hi": self.hi, "level": self.level,
                "resamples": self.resamples}

    def format(self, digits: int = 3) -> str:
        if not np.isfinite(self.value):
            return "—"
        return f"{self.value:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def resample_counts(n: int, options: BootstrapOptions = BootstrapOptions()):
    """Yield [b,N] float64 draw counts, ``chunk`` resamples at a time (B in total, seeded)."""
    rng = np.random.default_rng(options.seed)
    p = np.full(n, 1.0 / n)
    done = 0
    while done < options.resamples:
        b = min(options.chunk, options.resamples - done)
        yield rng.multinomial(n, p, size=b).astype(np.float64)
        done += b


def bootstrap(columns, statistic: Callable[[np.ndarray], np.ndarray],
              options: BootstrapOptions = BootstrapOptions()) -> Interval:
    """Percentile interval of ``statistic(sums)`` where ``sums`` [B,m] are resampled column sums of
    ``columns`` [N,m] (``statistic`` must accept any leading batch size, e.g. [1,m] for the point)."""
    cols = np.asarray(columns, dtype=np.float64)
    if cols.ndim == 1:
        cols = cols[:, None]
    if cols.ndim != 2 or cols.shape[0] == 0:
        raise InvalidInputError(f"bootstrap needs a non-empty [items, columns] array, got shape {cols.shape}")
    if not np.all(np.isfinite(cols)):
        raise InvalidInputError("bootstrap columns contain NaN/inf (drop or mask missing items first)")
    point = float(np.asarray(statistic(cols.sum(axis=0, keepdims=True))).reshape(-1)[0])
    stats = np.concatenate([np.asarray(statistic(c @ cols), dtype=np.float64).reshape(-1)
                            for c in resample_counts(cols.shape[0], options)])
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return Interval(point, float("nan"), float("nan"), options.level, options.resamples)
    tail = (1.0 - options.level) / 2.0
    lo, hi = np.quantile(stats, [tail, 1.0 - tail])
    return Interval(point, float(lo), float(hi), options.level, options.resamples)


def _masked(values) -> np.ndarray:
    """[N] values → [N,2] (value or 0, finite indicator) so NaN items drop out of each resample."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    ok = np.isfinite(v)
    return np.stack([np.where(ok, v, 0.0), ok.astype(np.float64)], axis=1)


def _ratio(s: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return s[:, 0] / s[:, 1]


def mean_interval(values, options: BootstrapOptions = BootstrapOptions()) -> Interval:
    """Mean of the finite items (MSE, R@k hits, detection rate, top-1 agreement ...)."""
    cols = _masked(values)
    if cols[:, 1].sum() == 0:
        return Interval(float("nan"), float("nan"), float("nan"), options.level, options.resamples)
    return bootstrap(cols, _ratio, options)


def sigmoid_mean_interval(kl, scale: float = 1.0, options: BootstrapOptions = BootstrapOptions()) -> Interval:
    """Emo3D-style score 1/(1+exp(−mean(kl)/scale)); the interval maps through the monotone sigmoid."""
    check_number(scale, "scale", 0, lo_open=True)

    def stat(s):
        return 1.0 / (1.0 + np.exp(-_ratio(s) / scale))
    cols = _masked(kl)
    if cols[:, 1].sum() == 0:
        return Interval(float("nan"), float("nan"), float("nan"), options.level, options.resamples)
    return bootstrap(cols, stat, options)


def pearson_moments(a, b) -> np.ndarray:
    """[N,P] pairs per item (NaN rows = missing items) → [N,6] moment sums Σa Σb Σa² Σb² Σab count."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise InvalidInputError(f"pearson_moments needs two [items, pairs] arrays of one shape; got {a.shape}, {b.shape}")
    ok = np.all(np.isfinite(a), axis=1) & np.all(np.isfinite(b), axis=1)
    a = np.where(ok[:, None], a, 0.0)
    b = np.where(ok[:, None], b, 0.0)
    return np.stack([a.sum(1), b.sum(1), (a * a).sum(1), (b * b).sum(1), (a * b).sum(1),
                     ok * float(a.shape[1])], axis=1)


def _pearson_from_sums(s: np.ndarray) -> np.ndarray:
    sa, sb, saa, sbb, sab, n = s.T
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sab - sa * sb / n
        va = saa - sa * sa / n
        vb = sbb - sb * sb / n
        return cov / np.sqrt(va * vb)


def pearson_interval(a, b, options: BootstrapOptions = BootstrapOptions()) -> Interval:
    """Pearson r of all pairs pooled over items (a, b: [items, pairs]); items resampled whole."""
    m = pearson_moments(a, b)
    if m[:, 5].sum() < 2:
        return Interval(float("nan"), float("nan"), float("nan"), options.level, options.resamples)
    return bootstrap(m, _pearson_from_sums, options)
