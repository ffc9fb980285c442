"""Numpy references of the native kernels. Tests compare the C++ core against these."""
from __future__ import annotations

import numpy as np


def deform_dense(base: np.ndarray, deltas: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[V,3] + [F,T] @ [T,V,3] -> [F,V,3] (float32, accumulated in float64 then rounded)."""
    T, V, _ = deltas.shape
    flat = deltas.reshape(T, V * 3).astype(np.float64)
    out = base.reshape(1, V * 3).astype(np.float64) + weights.astype(np.float64) @ flat
    return out.reshape(-1, V, 3).astype(np.float32)


def dense_to_sparse(deltas: np.ndarray, tol: float = 0.0):
    """[T,V,3] dense deltas -> CSR (offsets [T+1] int64, indices [K] int32, values [K,3] float32),
    keeping the vertices whose delta has some |component| > tol."""
    T = deltas.shape[0]
    offsets = np.zeros(T + 1, dtype=np.int64)
    idx, val = [], []
    for t in range(T):
        moved = np.nonzero(np.abs(deltas[t]).max(axis=1) > tol)[0].astype(np.int32)
        idx.append(moved)
        val.append(deltas[t, moved].astype(np.float32))
        offsets[t + 1] = offsets[t] + moved.size
    indices = np.concatenate(idx) if idx else np.zeros(0, np.int32)
    values = np.concatenate(val) if val else np.zeros((0, 3), np.float32)
    return offsets, indices.astype(np.int32), values.reshape(-1, 3)


def deform_sparse(base, offsets, indices, values, weights) -> np.ndarray:
    F, T = weights.shape
    out = np.repeat(base[None].astype(np.float64), F, axis=0)
    for t in range(T):
        sl = slice(offsets[t], offsets[t + 1])
        out[:, indices[sl]] += weights[:, t, None, None] * values[sl][None].astype(np.float64)
    return out.astype(np.float32)
