"""A tiny avatar-loop stand-in (no model) for tests and ``benchmarks.stream``.

It has the parts of ``runtime.AvatarLoop`` the streaming code uses: ``set_text`` (raises
``InvalidInputError`` for empty text, like the real loop), ``set_weights``, ``set_live``,
``add_sink``/``remove_sink`` and a ``run`` thread that emits frames at ``fps``.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from emo3d import schema
from emo3d.errors import InvalidInputError
from emo3d.weights import normalize
from runtime.loop import Frame


@dataclass
class StandInPrediction:
    text: str
    vector: np.ndarray
    emotions: dict | None = None
    truncated: bool = False


class StandInLoop:
    """Emits frames at ``fps`` from a background thread to every sink; records what it was told."""

    def __init__(self, fps: float = 60.0):
        self.fps = fps
        self.sinks: list = []
        self.current = np.zeros(schema.N_MEDIAPIPE, np.float32)
        self.texts: list = []
        self.live: list = []
        self.heads: list = []
        self.send_seconds = 0.0   # time spent inside sink.send
        self.index = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def set_text(self, text, *, intensity=None, transition_ms=None):
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("text is empty; send a description such as 'furious scowl'")
        if len(text) > 2000:
            raise InvalidInputError(f"text has {len(text)} characters, at most 2000")
        vec = np.zeros(schema.N_MEDIAPIPE, np.float32)
        vec[schema.MEDIAPIPE_INDEX["jawOpen"]] = (len(text) % 10) / 10
        with self._lock:
            self.texts.append((text, intensity, transition_ms))
            self.current = vec
        return StandInPrediction(text, vec, {e: 1.0 / len(schema.EMOTIONS) for e in schema.EMOTIONS})

    def set_weights(self, weights, *, transition_ms=None):
        vec = normalize(weights).vector
        with self._lock:
            self.current = np.asarray(vec, np.float32).copy()

    def set_live(self, vec, *, head=None):
        with self._lock:
            self.live.append(np.asarray(vec, np.float32).copy())
            self.heads.append(head)
            self.current = self.live[-1]

    def add_sink(self, sink):
        with self._lock:
            self.sinks.append(sink)

    def remove_sink(self, sink):
        with self._lock:
            self.sinks.remove(sink)

    def step(self, now: float | None = None) -> Frame:
        with self._lock:
            frame = Frame(self.index, time.monotonic() if now is None else now, self.current.copy(),
                          (0.1, -0.05, 0.02), (0.01, 0.02, 0.0, -0.01, 0.02, 0.0))
            sinks = list(self.sinks)
            self.index += 1
        t0 = time.perf_counter()
        for s in sinks:
            s.send(frame)
        self.send_seconds += time.perf_counter() - t0
        return frame

    def start(self) -> "StandInLoop":
        self._thread = threading.Thread(target=self._run, daemon=True, name="standin-loop")
        self._thread.start()
        return self

    def _run(self):
        period = 1.0 / self.fps
        nxt = time.monotonic()
        while not self._stop.is_set():
            self.step()
            nxt += period
            delay = nxt - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                nxt = time.monotonic()

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
