"""Blendshape weights in, checked: the one normaliser every entry point calls (the renderer's rig, the avatar
loop, the webcam tracker, the control server, ``emo3d render --weights``, the VMC sink).

Accepted forms:

* a ``{name: value}`` mapping; names go through the one name map (:mod:`emo3d.names`: any vendor spelling,
  any case; ``tongueOut`` accepted and dropped); values must be real numbers (not bool, str, None);
* a [52] vector in MediaPipe order (``schema.MEDIAPIPE_NAMES``) or a [51] vector in model order
  (``schema.MODEL_NAMES``);
* with ``batch=True`` also [F,52] / [F,51] batches.

Anything else is an :class:`~emo3d.errors.InvalidInputError` that names ``what`` (the flag, key or argument),
the offending name or position, and what is accepted. NaN/inf are refused. Values outside [0, 1] (the ARKit
convention) are clamped and *reported*: :attr:`Weights.clamped` lists ``name=value`` of each, and
:meth:`Weights.warn` turns the report into one :class:`WeightClampWarning`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Tuple

import numpy as np

from emo3d import names, schema
from emo3d.errors import InvalidInputError

__all__ = ["Weights", "WeightClampWarning", "normalize", "ACCEPTED"]

ACCEPTED = (f"a {{name: value}} mapping of ARKit blendshape names, [{schema.N_MEDIAPIPE}] values in MediaPipe "
            f"order or [{schema.N_MODEL}] in model order")


class WeightClampWarning(UserWarning):
    """Blendshape weights outside [0, 1] were clamped (ARKit convention)."""


@dataclass(frozen=True)
class Weights:
    """Checked weights: ``values`` [F,52] float32 in MediaPipe order, every value in [0, 1]; ``clamped``
    the ``name=value`` of each input value that was outside [0, 1]; ``batch`` whether the input was [F,...]."""

    values: np.ndarray
    clamped: Tuple[str, ...] = ()
    batch: bool = False

    @property
    def vector(self) -> np.ndarray:
        """The first (for a single input: the only) [52] vector."""
        return self.values[0]

    def clamp_message(self, shown: int = 6) -> str:
        """``"2 blendshape weight(s) outside [0, 1] clamped (ARKit convention): jawOpen=1.7, ..."``, or ''."""
        if not self.clamped:
            return ""
        more = f" (+{len(self.clamped) - shown} more)" if len(self.clamped) > shown else ""
        return (f"{len(self.clamped)} blendshape weight(s) outside [0, 1] clamped (ARKit convention): "
                f"{', '.join(self.clamped[:shown])}{more}")

    def warn(self, stacklevel: int = 3) -> "Weights":
        """Emit one :class:`WeightClampWarning` when anything was clamped; returns ``self``."""
        if self.clamped:
            warnings.warn(WeightClampWarning(self.clamp_message()), stacklevel=stacklevel)
        return self


def _from_mapping(weights: Mapping, what: str) -> np.ndarray:
    for k, v in weights.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise InvalidInputError(f"{what}: value of {k!r} is not a number ({v!r}); weights are numbers in [0, 1]")
        if not np.isfinite(float(v)):
            raise InvalidInputError(f"{what}: value of {k!r} is {v}, not finite (NaN or inf are not accepted; "
                                    "weights are numbers in [0, 1])")
    try:
        return names.weights_from_mapping(weights)[None]
    except (KeyError, ValueError) as e:
        raise InvalidInputError(f"{what}: {e.args[0] if e.args else e}") from None


def _from_array(weights: Any, what: str, batch: bool, model_order: bool) -> np.ndarray:
    try:
        w = np.asarray(weights)
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"{what}: could not be read as numbers ({e}); expected {ACCEPTED}") from None
    if w.dtype.kind not in "fiub":
        raise InvalidInputError(f"{what}: must be numbers, got dtype {w.dtype}; expected {ACCEPTED}")
    if w.ndim == 1:
        w = w[None]
    elif not (batch and w.ndim == 2):
        shapes = " or [F, 52]/[F, 51] batches" if batch else " (one vector)"
        raise InvalidInputError(f"{what}: got shape {np.shape(weights)}; expected {ACCEPTED}{shapes}")
    if w.shape[1] not in ((schema.N_MEDIAPIPE, schema.N_MODEL) if model_order else (schema.N_MEDIAPIPE,)):
        also = f" or [{schema.N_MODEL}] (model order)" if model_order else ""
        raise InvalidInputError(f"{what}: got {w.shape[1]} values; expected [{schema.N_MEDIAPIPE}] (MediaPipe "
                                f"order){also}")
    w = w.astype(np.float32)
    if not np.isfinite(w).all():
        f, i = np.argwhere(~np.isfinite(w))[0]
        order = schema.MEDIAPIPE_NAMES if w.shape[1] == schema.N_MEDIAPIPE else schema.MODEL_NAMES
        where = f"frame {f}, {order[i]}" if w.shape[0] > 1 else order[i]
        raise InvalidInputError(f"{what}: contains NaN or inf (first at {where}); weights are finite, in [0, 1]")
    return np.ascontiguousarray(schema.as_mediapipe(w), dtype=np.float32)


def normalize(weights: Any, *, what: str = "weights", batch: bool = False, model_order: bool = True) -> Weights:
    """Check ``weights`` (see the module doc) and return them as :class:`Weights` ([F,52], clamped, reported).
    ``batch``: also accept [F,52]/[F,51]; ``model_order=False``: vectors must be [52] (MediaPipe order)."""
    if isinstance(weights, Weights):
        return weights
    single = isinstance(weights, Mapping) or np.ndim(weights) == 1
    w = _from_mapping(weights, what) if isinstance(weights, Mapping) else _from_array(weights, what, batch, model_order)
    bad = (w < 0) | (w > 1)
    clamped: Tuple[str, ...] = ()
    if bad.any():
        f, i = np.nonzero(bad)
        clamped = tuple(f"{schema.MEDIAPIPE_NAMES[j]}={w[k, j]:.3g}" for k, j in zip(f, i))
        w = np.clip(w, 0.0, 1.0)
    return Weights(w, clamped, not single)
