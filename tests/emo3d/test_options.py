"""emo3d.options: the one range checker's values and messages (name, range, value)."""
import math

import numpy as np
import pytest

from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number, describe_range


def test_check_number_returns_a_float_in_range():
    assert check_number(3, "x", 0, 4) == 3.0 and isinstance(check_number(np.float32(0.5), "x", 0, 1), float)
    assert check_number(0, "x", 0, 1) == 0.0                 # closed bound
    assert check_number(1e9, "x", 0) == 1e9


@pytest.mark.parametrize("value,kw,message", [
    (5, dict(lo=0, hi=4), "x must be a number in [0, 4], got 5"),
    (0, dict(lo=0, hi=1000, lo_open=True), "x must be a number in (0, 1000], got 0"),
    (0.0, dict(lo=0, lo_open=True), "x must be a number > 0, got 0.0"),
    (-1, dict(lo=0), "x must be a number >= 0, got -1"),
    (math.nan, dict(), "x must be a finite number, got nan"),
    (math.inf, dict(lo=0), "x must be a number >= 0, got inf"),
    (True, dict(lo=0, hi=4), "x must be a number in [0, 4], got True"),
    ("3", dict(lo=0, hi=4), "x must be a number in [0, 4], got '3'"),
    (10 ** 400, dict(lo=0, hi=4), "x must be a number in [0, 4], got 1000000000000000000000000000000000000..."),
])
def test_check_number_refuses_with_name_range_and_value(value, kw, message):
    with pytest.raises(InvalidInputError) as e:
        check_number(value, "x", **kw)
    assert str(e.value) == message


def test_check_int():
    assert check_int(np.int64(7), "n", 1, 8) == 7 and isinstance(check_int(np.int64(7), "n"), int)
    for bad in (0, 9, 2.0, True, None):
        with pytest.raises(InvalidInputError, match=r"^n must be an integer in \[1, 8\], got "):
            check_int(bad, "n", 1, 8)


def test_describe_range():
    assert describe_range(0, 1) == "in [0, 1]" and describe_range(None, 4) == "<= 4"
    assert describe_range(0, None, lo_open=True) == "> 0" and describe_range(None, None) == "finite"
    assert describe_range(0, math.inf) == ">= 0"
