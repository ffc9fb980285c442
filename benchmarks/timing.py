"""Shared timing helpers of the benchmarks."""
from __future__ import annotations

import time
from typing import Callable, List

import numpy as np


def timed(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds that one call of ``fn`` takes by ``clock``."""
    t = clock()
    fn()
    return clock() - t


def _call_times(fn: Callable[[], object], repeats: int, clock: Callable[[], float]) -> List[float]:
    fn()  # warm-up
    return [timed(fn, clock) for _ in range(repeats)]


class Timer:
    """Median wall time of a call in ms after one warm-up; keeps each measurement's minimum in ``minima``."""

    def __init__(self) -> None:
        self.minima: List[float] = []

    def median_ms(self, fn: Callable[[], object], repeats: int) -> float:
        times = _call_times(fn, repeats, time.perf_counter)
        self.minima.append(min(times) * 1e3)
        return float(np.median(times)) * 1e3

    @staticmethod
    def median_cpu_ms(fn: Callable[[], object], repeats: int) -> float:
        """Median CPU time (ms) of the calling thread per call (for 1-thread work, which runs entirely
        in the calling thread): unaffected by other processes' CPU use, but on a virtual machine it
        includes time the hypervisor stole from this vCPU, so in busy spells it can exceed wall time."""
        return float(np.median(_call_times(fn, repeats, time.thread_time))) * 1e3
