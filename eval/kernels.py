"""Batched scoring kernels of the Emo3D metric (Numba), with numpy references beside them.

* :func:`topk_similar` — cosine similarity image × prompt, computed in row blocks with BLAS, each
  block reduced to its top-k by a parallel Numba kernel (``topk_similar_ref`` is plain numpy).
  Order: descending similarity, ties broken by the LOWER prompt index (``argsort(-s, 'stable')``).
* :func:`kl_paper` / :func:`kl_official` — D_KL for all rows at once given the retrieved indices
  (``*_ref`` numpy twins). Inputs are prepared by :mod:`eval.metric` (normalised / validated);
  the kernels themselves do no validation.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from emo3d.errors import InvalidInputError
from emo3d.options import check_int

__all__ = ["topk_similar", "topk_similar_ref", "kl_paper", "kl_paper_ref",
           "kl_official", "kl_official_ref", "DEFAULT_BLOCK"]

DEFAULT_BLOCK = 1024


@njit(parallel=True, cache=True, fastmath=False)
def _topk_block(sim, k, out_idx, out_val):  # pragma: no cover - compiled
    rows, cols = sim.shape
    for r in prange(rows):
        vals = np.full(k, -np.inf, dtype=np.float32)
        idx = np.full(k, -1, dtype=np.int64)
        filled = 0
        for j in range(cols):
            v = sim[r, j]
            if filled == k and not (v > vals[k - 1]):
                continue  # ties with the k-th keep the earlier (lower) index
            # insertion position: after every kept value >= v (stable for ties)
            pos = filled if filled < k else k - 1
            while pos > 0 and vals[pos - 1] < v:
                pos -= 1
            last = filled if filled < k else k - 1
            m = last
            while m > pos:
                vals[m] = vals[m - 1]
                idx[m] = idx[m - 1]
                m -= 1
            vals[pos] = v
            idx[pos] = j
            if filled < k:
                filled += 1
        for t in range(k):
            out_idx[r, t] = idx[t]
            out_val[r, t] = vals[t]


def topk_similar(images: np.ndarray, prompts: np.ndarray, k: int, *,
                 block: int = DEFAULT_BLOCK, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Top-k prompts per image by cosine similarity. Returns (indices [N,k] int64, sims [N,k] f32).

    ``images`` [N,D], ``prompts`` [M,D]; rows are L2-normalised here unless ``normalize=False``.
    The [N,M] similarity matrix is never held whole: ``block`` image rows at a time.
    """
    img = np.ascontiguousarray(images, dtype=np.float32)
    txt = np.ascontiguousarray(prompts, dtype=np.float32)
    if img.ndim != 2 or txt.ndim != 2 or img.shape[1] != txt.shape[1]:
        raise InvalidInputError(f"embeddings must be [N,D] and [M,D]; got {img.shape}, {txt.shape}")
    check_int(k, "k (at most the prompt bank size)", 1, txt.shape[0])
    if normalize:
        img = img / np.maximum(np.linalg.norm(img, axis=1, keepdims=True), 1e-12)
        txt = txt / np.maximum(np.linalg.norm(txt, axis=1, keepdims=True), 1e-12)
    n = img.shape[0]
    out_idx = np.empty((n, k), dtype=np.int64)
    out_val = np.empty((n, k), dtype=np.float32)
    txt_t = np.ascontiguousarray(txt.T)
    for b0 in range(0, n, block):
        b1 = min(n, b0 + block)
        sim = img[b0:b1] @ txt_t
        _topk_block(sim, k, out_idx[b0:b1], out_val[b0:b1])
    return out_idx, out_val


def topk_similar_ref(images: np.ndarray, prompts: np.ndarray, k: int, *,
                     normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """numpy reference of :func:`topk_similar` (full matrix, stable argsort)."""
    img = np.asarray(images, dtype=np.float32)
    txt = np.asarray(prompts, dtype=np.float32)
    if normalize:
        img = img / np.maximum(np.linalg.norm(img, axis=1, keepdims=True), 1e-12)
        txt = txt / np.maximum(np.linalg.norm(txt, axis=1, keepdims=True), 1e-12)
    sim = img @ txt.T
    idx = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return idx.astype(np.int64), np.take_along_axis(sim, idx, axis=1)


def _check_kl_shapes(phi, bank, idx):
    """Cheap guards so the compiled loops never read out of bounds."""
    if phi.ndim != 2 or bank.ndim != 2 or idx.ndim != 2 or phi.shape[1] != bank.shape[1] \
            or idx.shape[0] != phi.shape[0] or idx.shape[1] < 1:
        raise InvalidInputError(f"KL inputs must be phi [N,C], bank [M,C], idx [N,k>=1]; got "
                                f"{phi.shape}, {bank.shape}, {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= bank.shape[0]):
        raise InvalidInputError(f"retrieved indices must lie in [0, {bank.shape[0]})")


@njit(parallel=True, cache=True)
def _kl_paper(phi, bank, idx, out):  # pragma: no cover - compiled
    n, c = phi.shape
    k = idx.shape[1]
    for r in prange(n):
        acc = 0.0
        for i in range(c):
            p = phi[r, i]
            if p == 0.0:
                continue
            q = 0.0
            for j in range(k):
                q += bank[idx[r, j], i]
            q /= k
            acc += p * np.log(p / q)
        out[r] = acc


def kl_paper(phi: np.ndarray, bank: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Paper eq. 5 for all rows: D_KL(phi_r ‖ mean_j bank[idx[r, j]]), 0·log 0 = 0. [N] float64.

    ``phi`` [N,C] and ``bank`` [M,C] must already be distributions (see ``metric.normalize``).
    """
    phi = np.ascontiguousarray(phi, dtype=np.float64)
    bank = np.ascontiguousarray(bank, dtype=np.float64)
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    _check_kl_shapes(phi, bank, idx)
    out = np.empty(phi.shape[0], dtype=np.float64)
    _kl_paper(phi, bank, idx, out)
    return out


def kl_paper_ref(phi: np.ndarray, bank: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """numpy reference of :func:`kl_paper`."""
    phi = np.asarray(phi, dtype=np.float64)
    psi = np.asarray(bank, dtype=np.float64)[np.asarray(idx)].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(phi > 0, phi * np.log(phi / psi), 0.0)
    return terms.sum(axis=1)


@njit(parallel=True, cache=True)
def _kl_official(phi, bank, idx, eps, out):  # pragma: no cover - compiled
    n, c = phi.shape
    k = idx.shape[1]
    for r in prange(n):
        total = 0.0
        for j in range(k):
            for i in range(c):
                total += bank[idx[r, j], i]
        acc = 0.0
        for j in range(k):
            for i in range(c):
                p = phi[r, i]
                if p == 0.0:
                    continue
                b = (bank[idx[r, j], i] / total if total > 0 else 1.0 / (k * c)) + eps
                acc += p * np.log(p / b)
        out[r] = acc


def kl_official(phi: np.ndarray, bank: np.ndarray, idx: np.ndarray, eps: float) -> np.ndarray:
    """The official metric.py's per-image KL for all rows: the k retrieved RAW rows normalised as
    one [k,C] block B (B / ΣB), then Σ_j Σ_i φ_i log(φ_i / (B_ji + ε)) over φ_i ≠ 0. [N] float64.
    A block summing to 0 counts as uniform (the official code would produce NaN)."""
    phi = np.ascontiguousarray(phi, dtype=np.float64)
    bank = np.ascontiguousarray(bank, dtype=np.float64)
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    _check_kl_shapes(phi, bank, idx)
    out = np.empty(phi.shape[0], dtype=np.float64)
    _kl_official(phi, bank, idx, float(eps), out)
    return out


def kl_official_ref(phi: np.ndarray, bank: np.ndarray, idx: np.ndarray, eps: float) -> np.ndarray:
    """numpy reference of :func:`kl_official`."""
    phi = np.asarray(phi, dtype=np.float64)
    block = np.asarray(bank, dtype=np.float64)[np.asarray(idx)]          # [N,k,C]
    total = block.sum(axis=(1, 2), keepdims=True)
    k, c = block.shape[1:]
    safe = np.where(total > 0, total, 1.0)
    block = np.where(total > 0, block / safe, 1.0 / (k * c)) + eps
    p = phi[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p != 0, p * np.log(p / block), 0.0)
    return terms.sum(axis=(1, 2))
