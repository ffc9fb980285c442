"""Signal helpers of the avatar loop: the One Euro filter and easing curves.

One Euro filter (Casiez, Roussel, Vogel, CHI 2012): an adaptive low-pass whose cutoff rises with the
signal's speed, so slow jitter is smoothed and fast motion keeps little lag::

    alpha(fc, dt) = 1 / (1 + tau / dt),  tau = 1 / (2 pi fc)
    dx      = (x - x_prev_raw) / dt              (x_prev_raw: the previous RAW sample, as in the paper's code)
    dx_hat  = dx_hat + alpha(d_cutoff, dt) * (dx - dx_hat)
    fc      = min_cutoff + beta * |dx_hat|
    x_hat   = x_hat + alpha(fc, dt) * (x - x_hat)

The first sample passes through unchanged (``dx_hat = 0``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.options import check_number


def smoothing_alpha(cutoff: float | np.ndarray, dt: float) -> float | np.ndarray:
    """Exponential-smoothing factor of a first-order low-pass with ``cutoff`` Hz at step ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroFilter:
    """Vectorised One Euro filter over numpy arrays (each element filtered independently).

    ``min_cutoff`` (Hz) lowers jitter at rest; ``beta`` raises the cutoff with speed (less lag);
    ``d_cutoff`` (Hz) smooths the derivative estimate.
    """
    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "d_cutoff"):
            check_number(getattr(self, name), f"OneEuroFilter.{name} (Hz)", 0, lo_open=True)
        check_number(self.beta, "OneEuroFilter.beta", 0)
        self.reset()

    def reset(self) -> None:
        self._t: Optional[float] = None
        self._x_raw: Optional[np.ndarray] = None
        self._x_hat: Optional[np.ndarray] = None
        self._dx_hat: Optional[np.ndarray] = None

    @property
    def value(self) -> Optional[np.ndarray]:
        """The last filtered value (None before the first sample)."""
        return None if self._x_hat is None else self._x_hat.copy()

    def __call__(self, x, t: float) -> np.ndarray:
        """Filter sample ``x`` taken at time ``t`` (seconds, increasing)."""
        x = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise InvalidInputError("OneEuroFilter: sample contains NaN or inf")
        if self._x_hat is None or self._x_hat.shape != x.shape:
            self._t, self._x_raw, self._x_hat = float(t), x.copy(), x.copy()
            self._dx_hat = np.zeros_like(x)
            return x.copy()
        dt = float(t) - self._t
        if dt <= 0:  # same timestamp (or clock went back): keep the state, return the last value
            return self._x_hat.copy()
        dx = (x - self._x_raw) / dt
        self._dx_hat = self._dx_hat + smoothing_alpha(self.d_cutoff, dt) * (dx - self._dx_hat)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx_hat)
        self._x_hat = self._x_hat + smoothing_alpha(cutoff, dt) * (x - self._x_hat)
        self._x_raw, self._t = x.copy(), float(t)
        return self._x_hat.copy()


# --- easing curves: f(0) = 0, f(1) = 1, t clamped to [0, 1] ----------------------------------
def linear(t: float) -> float:
    return t


def smoothstep(t: float) -> float:
    """3t^2 - 2t^3 (zero slope at both ends)."""
    return t * t * (3.0 - 2.0 * t)


def ease_in_out_cubic(t: float) -> float:
    """4t^3 for t < 1/2, else 1 - (-2t + 2)^3 / 2."""
    return 4.0 * t * t * t if t < 0.5 else 1.0 - (-2.0 * t + 2.0) ** 3 / 2.0


def ease_out_cubic(t: float) -> float:
    """1 - (1 - t)^3 (fast start, soft landing)."""
    return 1.0 - (1.0 - t) ** 3


def ease_in_out_sine(t: float) -> float:
    """(1 - cos(pi t)) / 2."""
    return (1.0 - math.cos(math.pi * t)) / 2.0


EASINGS: Dict[str, Callable[[float], float]] = {
    "linear": linear,
    "smoothstep": smoothstep,
    "ease_in_out_cubic": ease_in_out_cubic,
    "ease_out_cubic": ease_out_cubic,
    "ease_in_out_sine": ease_in_out_sine,
}


def ease(name: str, t: float) -> float:
    """Evaluate easing curve ``name`` at ``t`` (clamped to [0, 1])."""
    try:
        fn = EASINGS[name]
    except KeyError:
        raise InvalidInputError(f"unknown easing {name!r} (accepted: {', '.join(EASINGS)})") from None
    t = 0.0 if t <= 0 else 1.0 if t >= 1 else float(t)
    return float(fn(t))


@dataclass
class Transition:
    """An eased blend from ``start`` to ``end`` over ``duration`` seconds beginning at ``t0``."""
    start: np.ndarray
    end: np.ndarray
    t0: float
    duration: float
    easing: str = "ease_in_out_cubic"

    def progress(self, t: float) -> float:
        if self.duration <= 0:
            return 1.0
        return ease(self.easing, (t - self.t0) / self.duration)

    def value(self, t: float) -> np.ndarray:
        p = self.progress(t)
        return (self.start + (self.end - self.start) * p).astype(np.float32)

    def done(self, t: float) -> bool:
        return self.duration <= 0 or t >= self.t0 + self.duration
