"""Shared timing helpers of the benchmarks."""
from __future__ import annotations

import time
from typing import Callable, List

import numpy as np


class Timer:
    """Median wall time of a call in ms after one warm-up; keeps each measurement's minimum in ``minima``."""

    def __init__(self) -> None:
        self.minima: List[float] = []

    def median_ms(self, fn: Callable[[], object], repeats: int) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        self.minima.append(min(times) * 1e3)
        return float(np.median(times)) * 1e3

    @staticmethod
    def median_cpu_ms(fn: Callable[[], object], repeats: int) -> float:
        """Median CPU time (ms) of the calling thread per call: the intrinsic cost, unaffected by other
        processes on a shared machine (for 1-thread work, which runs entirely in the calling thread)."""
        fn()
        times = []
        for _ in range(repeats):
            t = time.thread_time()
            fn()
            times.append(time.thread_time() - t)
        return float(np.median(times)) * 1e3
