"""The Emo3D metric (paper Section 4.2, eq. 5–6) and the official ``metric.py`` behaviour.

Notation: a bank of M prompts with emotion distributions Ψ [M,8]; N rendered images, image r made
from prompt ``targets[r]`` whose distribution is φ_r; ``idx[r]`` = the k prompts whose CLIP text
embedding is nearest (cosine) to image r's CLIP image embedding.

``compat="paper"`` (default; the paper's definition)
    ψ̄_r  = MEAN of the k retrieved prompts' distributions (each row a distribution)
    KL_r = Σ_i φ_r(i) · log(φ_r(i) / ψ̄_r(i))                       (eq. 5, 0·log 0 = 0)
    Emo3D = 1 / (1 + e^(−mean_r KL_r))                               (eq. 6 over the bank)
    Lower is better; 0.5 is perfect (KL = 0).
    ε smoothing: every distribution (φ and each bank row) is first normalised to sum 1 and then
    smoothed as (p + ε) / (1 + C·ε), C = 8 classes, ε = ``EPS_PAPER`` = 1e-3 (below the 0.01
    resolution of the release's LLM-written distributions). A row of zeros becomes uniform. So no
    ψ̄ bin is 0 and a single missed emotion costs at most ≈ log(1/ε).

``compat="official"`` (the public ``metric/metric.py`` of the Emo3D repository)
    φ_r  = raw row / its sum (no ε);  B_r = the k retrieved RAW rows as one [k,8] block, B_r / ΣB_r
    KL_r = Σ_j Σ_i [φ_r(i) ≠ 0] φ_r(i) · log(φ_r(i) / (B_r(j,i) + ε)),   ε = ``EPS_OFFICIAL`` = 0.01
    score = 1 / (1 + e^(−Σ_r KL_r / (N·α)))
    N is the number of IMAGES scored (the official ``calculate`` divides by ``len(metric_df)``, one
    image ``i.jpeg`` per bank row, so there images = prompts; here several images may share a
    prompt through ``targets`` and N counts the images). α is the official ``calculate(image_dir,
    alpha, eps)`` argument, which has NO default there and no value in the paper: it is REQUIRED
    here (``MetricOptions(alpha=…)``, ``--alpha``). With α = 1 the argument is ≈ 30 for perfect,
    hard and random retrieval alike (each of the k block rows contributes ≈ KL + log k) and every
    model scores 1.000; a score ≥ ``SATURATED`` raises :class:`SaturationWarning`.
    Since each block row sums to ≈1/k, this measures k·(KL + log k)-ish, not eq. 5. Zero-sum
    rows/blocks count as uniform here (the official code yields NaN).

Both report R@k (exact match: ``targets[r]`` among ``idx[r]``). NaN/inf or negative inputs raise
:class:`InvalidInputError` (a ValueError); k larger than the bank raises it too.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, Optional

import warnings

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number

from . import kernels

__all__ = ["EPS_PAPER", "EPS_OFFICIAL", "SATURATED", "SaturationWarning", "MetricOptions", "MetricResult",
           "normalize", "sigmoid", "emo3d_from_topk", "emo3d_metric", "recall_at_k", "retrieval_hits", "mse", "kl_divergence"]

EPS_PAPER = 1e-3
EPS_OFFICIAL = 0.01
SATURATED = 0.999          # a score this close to 1 no longer ranks models (sigmoid argument >= 6.9)
Compat = Literal["paper", "official"]


class SaturationWarning(UserWarning):
    """The Emo3D score is so close to 1 that it cannot tell models apart (official mode, small α)."""


@dataclass(frozen=True)
class MetricOptions:
    """k nearest prompts, definition (``paper``|``official``), ε (None = the definition's default),
    α (required with ``official``, refused with ``paper``), ``block`` image rows per similarity block."""
    k: int = 10
    compat: Compat = "paper"
    eps: Optional[float] = None
    alpha: Optional[float] = None
    block: int = kernels.DEFAULT_BLOCK

    def __post_init__(self):
        check_int(self.k, "MetricOptions.k", 1)
        if self.compat not in ("paper", "official"):
            raise InvalidInputError(f"compat must be 'paper' or 'official', got {self.compat!r}")
        if self.eps is not None:
            check_number(self.eps, "MetricOptions.eps", 0)
        if self.compat == "official" and self.alpha is None:
            raise InvalidInputError(
                "compat='official' needs alpha (--alpha): the official calculate(image_dir, alpha, eps) "
                "has no default and the paper states no value; with alpha=1 every model scores 1.000 "
                "(sigmoid of ~30). Pass the alpha you report, e.g. --alpha 30")
        if self.compat == "paper" and self.alpha is not None:
            raise InvalidInputError(f"alpha={self.alpha!r} applies to compat='official' only "
                                    f"(the paper's eq. 6 has no alpha); drop --alpha or use --compat official")
        if self.alpha is not None:
            check_number(self.alpha, "MetricOptions.alpha", 0, lo_open=True)
        check_int(self.block, "MetricOptions.block", 1)

    @property
    def epsilon(self) -> float:
        if self.eps is not None:
            return float(self.eps)
        return EPS_PAPER if self.compat == "paper" else EPS_OFFICIAL


@dataclass
class MetricResult:
    """``score`` = Emo3D (sigmoid); ``mean_kl`` = the sigmoid's argument (official: ΣKL/(N·α), N
    images); ``kl`` per image; ``recall_at_k`` = exact-match rate; ``topk`` [N,k] retrieved bank
    indices; ``hits`` [N] 1.0 where the image's own prompt was retrieved; ``alpha`` None in paper mode."""
    score: float
    mean_kl: float
    recall_at_k: float
    k: int
    compat: str
    eps: float
    alpha: Optional[float]
    n: int
    kl: np.ndarray = field(repr=False)
    topk: np.ndarray = field(repr=False)
    hits: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def saturated(self) -> bool:
        """True where the score is >= ``SATURATED`` (it no longer separates models)."""
        return bool(self.score >= SATURATED)

    @property
    def scale(self) -> float:
        """Divisor of the mean KL inside the sigmoid (α in official mode, 1 in paper mode)."""
        return 1.0 if self.alpha is None else float(self.alpha)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kl"] = [float(x) for x in self.kl]
        d["topk"] = self.topk.tolist()
        d["hits"] = None if self.hits is None else [float(x) for x in self.hits]
        d["saturated"] = self.saturated
        return d


def sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _check_dist(x, name: str, *, ndim: int = 2) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1 and ndim == 2:
        a = a[None, :]
    if a.ndim != ndim:
        raise InvalidInputError(f"{name} must be a [rows, classes] array, got shape {a.shape}")
    if a.size and not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise InvalidInputError(f"{name} contains NaN/inf (first at {tuple(int(i) for i in bad)}); "
                                f"distributions must be finite and >= 0")
    if a.size and np.any(a < 0):
        bad = np.argwhere(a < 0)[0]
        raise InvalidInputError(f"{name} has a negative value at {tuple(int(i) for i in bad)}; "
                                f"distributions must not be negative")
    return a


def normalize(x, eps: float = EPS_PAPER) -> np.ndarray:
    """Rows → distributions: p = x/Σx (zero row → uniform), then (p + ε)/(1 + C·ε).
    NaN/inf/negative → InvalidInputError."""
    a = _check_dist(x, "distribution")
    s = a.sum(axis=1, keepdims=True)
    c = a.shape[1]
    p = np.where(s > 0, a / np.where(s > 0, s, 1.0), 1.0 / c)
    return (p + eps) / (1.0 + c * eps)


def kl_divergence(phi, psi, eps: float = EPS_PAPER) -> np.ndarray:
    """Row-wise D_KL(φ‖ψ) with the paper's ε smoothing on both sides. [N] float64."""
    p = normalize(phi, eps)
    q = normalize(psi, eps)
    if p.shape != q.shape:
        raise InvalidInputError(f"phi and psi shapes differ: {p.shape} vs {q.shape}")
    return kernels.kl_paper(p, q, np.arange(len(q))[:, None])


def retrieval_hits(topk: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """[N] 1.0 where row r's target index is among its retrieved indices, else 0.0."""
    topk = np.asarray(topk)
    targets = np.asarray(targets).reshape(-1, 1)
    return np.any(topk == targets, axis=1).astype(np.float64)


def recall_at_k(topk: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of rows whose target index is among their retrieved indices."""
    return float(np.mean(retrieval_hits(topk, targets))) if len(np.asarray(topk)) else float("nan")


def mse(pred, truth) -> float:
    """Mean squared error over all entries (NaN/inf → InvalidInputError)."""
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if p.shape != t.shape:
        raise InvalidInputError(f"prediction shape {p.shape} != ground-truth shape {t.shape}")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(t))):
        raise InvalidInputError("MSE inputs contain NaN/inf")
    return float(np.mean((p - t) ** 2))


def emo3d_from_topk(topk, emotions, targets=None, options: MetricOptions = MetricOptions()
                    ) -> MetricResult:
    """Emo3D given the retrieved indices ``topk`` [N,k] into the bank ``emotions`` [M,8].
    ``targets`` [N]: the bank index each image was made from (default 0..N-1)."""
    psi_raw = _check_dist(emotions, "bank emotions")
    topk = np.asarray(topk)
    if topk.ndim != 2 or not np.issubdtype(topk.dtype, np.integer):
        raise InvalidInputError(f"topk must be an [N,k] array of integer indices, got {topk.dtype} {topk.shape}")
    n, k = topk.shape
    m = psi_raw.shape[0]
    if k > m:
        raise InvalidInputError(f"k={k} is larger than the prompt bank ({m} prompts); use k <= {m}")
    if n and (topk.min() < 0 or topk.max() >= m):
        raise InvalidInputError(f"topk indices must lie in [0, {m})")
    targets = np.arange(n) if targets is None else np.asarray(targets, dtype=np.int64)
    if targets.shape != (n,) or (n and (targets.min() < 0 or targets.max() >= m)):
        raise InvalidInputError(f"targets must be {n} bank indices in [0, {m})")
    if n == 0:
        raise InvalidInputError("no images to score (empty bank or no renders)")
    eps = options.epsilon
    if options.compat == "paper":
        bank = normalize(psi_raw, eps)
        kl = kernels.kl_paper(bank[targets], bank, topk)
        mean_kl = float(kl.mean())
    else:
        phi = psi_raw[targets]
        s = phi.sum(axis=1, keepdims=True)
        phi = np.where(s > 0, phi / np.where(s > 0, s, 1.0), 1.0 / phi.shape[1])
        kl = kernels.kl_official(phi, psi_raw, topk, eps)
        mean_kl = float(kl.sum() / (n * options.alpha))      # n = images, as len(metric_df) there
    hits = retrieval_hits(topk, targets)
    result = MetricResult(score=sigmoid(mean_kl), mean_kl=mean_kl, recall_at_k=float(hits.mean()),
                          k=k, compat=options.compat, eps=eps, alpha=options.alpha, n=n, kl=kl,
                          topk=topk, hits=hits)
    if result.saturated:
        warnings.warn(f"Emo3D score {result.score:.4f} is saturated (sigmoid of {mean_kl:.1f}): it cannot "
                      f"separate models; " + (f"raise alpha (now {options.alpha:g}) so that the argument "
                      f"is O(1)" if options.compat == "official" else "the retrieval is near random"),
                      SaturationWarning, stacklevel=2)
    return result


def emo3d_metric(image_embeds, text_embeds, emotions, targets=None,
                 options: MetricOptions = MetricOptions()) -> MetricResult:
    """Emo3D from CLIP embeddings: images [N,D] (image r rendered from prompt ``targets[r]``),
    the bank's text embeddings [M,D] and distributions [M,8]."""
    img = np.asarray(image_embeds, dtype=np.float32)
    txt = np.asarray(text_embeds, dtype=np.float32)
    if img.ndim != 2 or txt.ndim != 2 or img.shape[1] != txt.shape[1]:
        raise InvalidInputError(f"embeddings must be [N,D] and [M,D], got {img.shape} and {txt.shape}")
    if not (np.all(np.isfinite(img)) and np.all(np.isfinite(txt))):
        raise InvalidInputError("embeddings contain NaN/inf")
    emo = _check_dist(emotions, "bank emotions")
    if emo.shape[0] != txt.shape[0]:
        raise InvalidInputError(f"{txt.shape[0]} text embeddings but {emo.shape[0]} distributions")
    if options.k > txt.shape[0]:
        raise InvalidInputError(f"k={options.k} is larger than the prompt bank ({txt.shape[0]} "
                                f"prompts); use k <= {txt.shape[0]}")
    idx, _ = kernels.topk_similar(img, txt, options.k, block=options.block)
    return emo3d_from_topk(idx, emo, targets, options)
