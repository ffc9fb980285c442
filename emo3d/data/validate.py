"""Cell parsers of the Emo3D release: every problem becomes a ``DataValidationError`` naming file,
row and column. ``row`` is the 1-based data row (the CSV line number minus one for the header).
"""
from __future__ import annotations

import math
import re
from typing import Optional

import numpy as np

from emo3d.errors import DataValidationError
from emo3d.schema import N_MEDIAPIPE

__all__ = ["is_empty", "parse_vector", "parse_emotion", "parse_int", "format_vector", "format_float"]

_SPLIT = re.compile(r"[\s,]+")


def is_empty(cell) -> bool:
    """True for a missing cell: None, NaN (pandas' empty) or a blank string."""
    if cell is None:
        return True
    if isinstance(cell, float) and math.isnan(cell):
        return True
    return isinstance(cell, str) and not cell.strip()


def parse_vector(cell, *, file: str, row: int, column: str, n: int = N_MEDIAPIPE) -> Optional[np.ndarray]:
    """``"[0.    0.271 ...]"`` -> float32 [n] in [0, 1]; an empty cell -> None."""
    if is_empty(cell):
        return None
    if isinstance(cell, (list, tuple, np.ndarray)):
        tokens = [str(t) for t in np.asarray(cell).reshape(-1)]
    else:
        s = str(cell).strip()
        if s.startswith("["):
            s = s[1:]
        if s.endswith("]"):
            s = s[:-1]
        tokens = [t for t in _SPLIT.split(s) if t]
    if len(tokens) != n:
        raise DataValidationError(f"expected {n} blendshape values (MediaPipe order), found {len(tokens)}",
                                  file=file, row=row, column=column)
    try:  # fast path: every token a number in [0, 1]
        arr = np.array(tokens, dtype=np.float64)
        if np.all((arr >= 0.0) & (arr <= 1.0)):
            return arr.astype(np.float32)
    except ValueError:
        pass
    out = np.empty(n, dtype=np.float32)  # slow path: find and name the bad value
    for i, tok in enumerate(tokens):
        try:
            v = float(tok)
        except ValueError:
            raise DataValidationError(f"value {i + 1} is {tok!r}, not a number", file=file, row=row,
                                      column=column) from None
        if math.isnan(v):
            raise DataValidationError(f"value {i + 1} is NaN (accepted: numbers in [0, 1])", file=file,
                                      row=row, column=column)
        if not 0.0 <= v <= 1.0:
            raise DataValidationError(f"value {i + 1} is {tok}, outside [0, 1]", file=file, row=row,
                                      column=column)
        out[i] = v
    return out


def parse_emotion(cell, *, file: str, row: int, column: str) -> float:
    """One emotion float: a finite number >= 0."""
    if is_empty(cell):
        raise DataValidationError("empty emotion value (accepted: a number >= 0)", file=file, row=row,
                                  column=column)
    try:
        v = float(cell)
    except (TypeError, ValueError):
        raise DataValidationError(f"{cell!r} is not a number", file=file, row=row, column=column) from None
    if not math.isfinite(v):
        raise DataValidationError(f"{cell!r} is not finite (accepted: a number >= 0)", file=file, row=row,
                                  column=column)
    if v < 0:
        raise DataValidationError(f"{cell!r} is negative (accepted: a number >= 0)", file=file, row=row,
                                  column=column)
    return v


def parse_int(cell, *, file: str, row: int, column: str) -> int:
    if is_empty(cell):
        raise DataValidationError("empty (accepted: an integer)", file=file, row=row, column=column)
    try:
        f = float(cell)
        if not f.is_integer():
            raise ValueError
        return int(f)
    except (TypeError, ValueError, OverflowError):
        raise DataValidationError(f"{cell!r} is not an integer", file=file, row=row, column=column) from None


def format_float(x: float) -> str:
    """Shortest positional form with at most 6 decimals (``0.2``, ``1``, ``0``)."""
    return np.format_float_positional(float(x), precision=6, unique=True, trim="-")


def format_vector(vec) -> str:
    """[52] floats -> the release's numpy-style cell ``"[0. 0.271 ...]"`` (6 decimals at most)."""
    v = np.asarray(vec, dtype=np.float64).reshape(-1)
    return "[" + " ".join(np.format_float_positional(x, precision=6, unique=True, trim=".") for x in v) + "]"


def quantize(vec) -> np.ndarray:
    """What ``format_vector`` + ``parse_vector`` give back: float32 rounded to 6 decimals."""
    return np.round(np.asarray(vec, dtype=np.float64), 6).astype(np.float32)
