"""Module-level task functions for emo3d.parallel tests (spawned workers and Ray import them)."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def square(x):
    return x * x


def fail_on_three(x):
    if x == 3:
        raise ValueError("task three fails on purpose")
    return x


def die_once(arg):
    """(marker_dir, i, victim): the victim task SIGKILLs its own worker the first time it runs."""
    marker_dir, i, victim = arg
    marker = Path(marker_dir) / f"died_{i}"
    if i == victim and not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)
    return i * i


def always_die(arg):
    os.kill(os.getpid(), signal.SIGKILL)
