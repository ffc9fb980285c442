"""Numeric option checks: the one helper every options dataclass calls in ``__post_init__`` (and the CLIs for
their flags), so that every range error reads the same way and names the option, the range and the value::

    LoopOptions.fps must be a number in (0, 1000], got 0
    RenderOptions.ssaa must be an integer in [1, 8], got 9
    OneEuroFilter.beta must be a number >= 0, got -1
"""
from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np

from emo3d.errors import InvalidInputError

__all__ = ["check_number", "check_int", "describe_range"]

Number = Union[int, float]


def describe_range(lo: Optional[Number], hi: Optional[Number], *, lo_open: bool = False,
                   hi_open: bool = False) -> str:
    """``"in [0, 1]"``, ``"in (0, 1000]"``, ``">= 0"``, ``"> 0"``, ``"<= 4"`` or ``"finite"``."""
    if lo is not None and hi is not None and not (isinstance(hi, float) and math.isinf(hi)):
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi}"
    return "finite"


def _in_range(v: float, lo, hi, lo_open: bool, hi_open: bool) -> bool:
    if lo is not None and (v <= lo if lo_open else v < lo):
        return False
    if hi is not None and (v >= hi if hi_open else v > hi):
        return False
    return True


def _shown(value) -> str:
    r = repr(value)
    return r if len(r) <= 40 else r[:37] + "..."


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:      # an int beyond float's range (10**400)
        return False


def check_number(value, name: str, lo: Optional[Number] = None, hi: Optional[Number] = None, *,
                 lo_open: bool = False, hi_open: bool = False) -> float:
    """``value`` as a float when it is a finite real number (not a bool) in the range; else
    ``InvalidInputError("<name> must be a number <range>, got <value>")``."""
    ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
          and _finite(value) and _in_range(float(value), lo, hi, lo_open, hi_open))
    if not ok:
        rng = describe_range(lo, hi, lo_open=lo_open, hi_open=hi_open)
        what = "a finite number" if rng == "finite" else f"a number {rng}"
        raise InvalidInputError(f"{name} must be {what}, got {_shown(value)}")
    return float(value)


def check_int(value, name: str, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
    """``value`` as an int when it is an integer (not a bool) in [lo, hi]; else ``InvalidInputError``."""
    ok = (isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
          and _in_range(int(value), lo, hi, False, False))
    if not ok:
        raise InvalidInputError(f"{name} must be an integer {describe_range(lo, hi)}, got {_shown(value)}")
    return int(value)
