"""emo3d's C++ core (``native._core``) behind checked Python entry points.

Each function validates its inputs first (shapes, finite weights) and converts dtype/layout where
that is safe (float64 -> float32, non-contiguous -> contiguous copy); anything else is a
``ValueError`` naming the argument. The kernels release the GIL. ``native.reference`` holds the
numpy references that the tests compare against.
"""
from __future__ import annotations

import pkgutil
from typing import Tuple

import numpy as np

from emo3d.errors import InvalidInputError

# Run from a checkout (``python -m eval.emo3d`` at the repository root), this source folder shadows the
# installed ``native``, which alone holds the compiled ``_core``: search every ``native`` folder on sys.path.
__path__ = pkgutil.extend_path(__path__, __name__)

try:
    from . import _core
except ImportError as e:  # pragma: no cover - only on a broken install
    raise ImportError(
        "emo3d's compiled core native._core is missing: install the project with "
        "`pip install .` (or `pip install -e .`) so that CMake builds it") from e

__all__ = ["deform", "deform_sparse", "as_f32", "_core"]


def as_f32(a, name: str, ndim: int, shape: Tuple = ()) -> np.ndarray:
    """Convert ``a`` to a C-contiguous float32 array with ``ndim`` dims; check fixed dims in ``shape``
    (None = any). Refuses non-numeric dtypes and non-finite values."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiu":
        raise InvalidInputError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise InvalidInputError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    for i, want in enumerate(shape):
        if want is not None and arr.shape[i] != want:
            raise InvalidInputError(f"{name} has shape {arr.shape}; dimension {i} must be {want}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise InvalidInputError(f"{name} contains NaN or inf")
    return arr


def _weights(weights, n_targets: int) -> np.ndarray:
    w = np.asarray(weights)
    if w.ndim == 1:
        w = w[None]
    return as_f32(w, "weights", 2, (None, n_targets))


def deform(base, deltas, weights, *, threads: int = 0) -> np.ndarray:
    """Dense blendshape deformation: ``base + weights @ deltas``.

    base [V,3]; deltas [T,V,3]; weights [T] or [F,T] -> [F,V,3] float32 (F=1 for 1-D weights).
    """
    base = as_f32(base, "base", 2, (None, 3))
    deltas = as_f32(deltas, "deltas", 3, (None, base.shape[0], 3))
    w = _weights(weights, deltas.shape[0])
    return _core.deform_dense(base, deltas, w, int(threads))


def deform_sparse(base, offsets, indices, values, weights, *, threads: int = 0) -> np.ndarray:
    """Sparse blendshape deformation with per-target CSR deltas (see ``reference.dense_to_sparse``)."""
    base = as_f32(base, "base", 2, (None, 3))
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    values = as_f32(values, "values", 2, (None, 3))
    if offsets.ndim != 1 or offsets.size < 1:
        raise InvalidInputError("offsets must be a 1-D array of T+1 entries")
    w = _weights(weights, offsets.size - 1)
    return _core.deform_sparse(base, offsets, indices, values, w, int(threads))
