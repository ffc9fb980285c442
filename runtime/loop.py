"""The avatar loop: a fixed 60 Hz clock that turns prompts and live input into a moving face.

Each frame composes, in this order:

1. the *text layer*: an eased transition from the face of the latest frame to the newest target
   (``set_text`` -> the engine's scores, or ``set_weights``), scaled by the prompt's intensity;
2. the *live layer* (``set_live``, e.g. a webcam tracker): neutral-calibrated
   (``(x - neutral) / (1 - neutral)``, clamped), One Euro filtered, mixed in with ``live_mix``;
   when live input stops for ``live_timeout_s`` the face eases back to the text target;
3. the global ``intensity`` scale, clamped to [0, 1];
4. idle motion (optional): blinks at random intervals and a small head sway.

Sinks get every frame through their own thread and a bounded queue, so a slow sink never delays
the clock (when one falls a queue behind, its oldest frames are dropped and counted).
"""
from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Deque, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from emo3d import names
from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number
from emo3d.pose import eyes_from_weights
from emo3d.weights import normalize
from emo3d.schema import MEDIAPIPE_INDEX, N_MEDIAPIPE, NEUTRAL

from .filters import EASINGS, OneEuroFilter, Transition

#: Channels a prediction may carry beyond MediaPipe's 52 (rigs with these targets use them).
from emo3d.avatar.rig import EXTRA_TARGETS as EXTRA_CHANNELS  # noqa: E402  (one list, the rig's)

log = logging.getLogger("emo3d.runtime")

_BLINK = (MEDIAPIPE_INDEX["eyeBlinkLeft"], MEDIAPIPE_INDEX["eyeBlinkRight"])
_NEUTRAL_I = MEDIAPIPE_INDEX[NEUTRAL]


@dataclass
class LoopOptions:
    """Options of :class:`AvatarLoop` (all validated).

    fps: the fixed clock rate. transition_ms / easing: the default prompt transition.
    intensity: global expression scale (1 = as predicted). idle: blinks + head sway.
    blink_every_s: (min, max) seconds between blinks. blink_ms: one blink's length.
    sway_deg: head-sway amplitude. live_mix: weight of live input against the text layer (0..1).
    live_timeout_s: live input older than this is stale. one_euro_*: the live filter (Hz, beta).
    neutral: the user's neutral face (52 vector or {name: value}) subtracted from live input.
    seed: idle-motion randomness (None = random). sink_queue: frames a sink may fall behind.
    """
    fps: float = 60.0
    transition_ms: float = 400.0
    easing: str = "ease_in_out_cubic"
    intensity: float = 1.0
    idle: bool = True
    blink_every_s: Tuple[float, float] = (2.0, 6.0)
    blink_ms: float = 160.0
    sway_deg: float = 1.5
    live_mix: float = 1.0
    live_timeout_s: float = 0.5
    one_euro_min_cutoff: float = 1.5
    one_euro_beta: float = 0.3
    one_euro_d_cutoff: float = 1.0
    neutral: Optional[Union[Sequence[float], Mapping[str, float], np.ndarray]] = None
    seed: Optional[int] = None
    sink_queue: int = 256

    def __post_init__(self) -> None:
        def num(name: str, lo: float, hi: float | None = None, lo_open: bool = False) -> None:
            check_number(getattr(self, name), f"LoopOptions.{name}", lo, hi, lo_open=lo_open)
        num("fps", 0, 1000, lo_open=True)
        num("transition_ms", 0, 60_000)
        num("intensity", 0, 4)
        num("blink_ms", 0, 2000, lo_open=True)
        num("sway_deg", 0, 45)
        num("live_mix", 0, 1)
        num("live_timeout_s", 0, 3600, lo_open=True)
        num("one_euro_min_cutoff", 0, lo_open=True)
        num("one_euro_beta", 0)
        num("one_euro_d_cutoff", 0, lo_open=True)
        if self.easing not in EASINGS:
            raise InvalidInputError(f"LoopOptions.easing {self.easing!r} is not one of {', '.join(EASINGS)}")
        lo_hi = tuple(self.blink_every_s)
        if len(lo_hi) != 2 or not all(isinstance(x, (int, float)) and x > 0 for x in lo_hi) or lo_hi[0] > lo_hi[1]:
            raise InvalidInputError(f"LoopOptions.blink_every_s must be (min, max) seconds > 0, got {self.blink_every_s!r}")
        self.blink_every_s = (float(lo_hi[0]), float(lo_hi[1]))
        check_int(self.sink_queue, "LoopOptions.sink_queue", 1)
        if self.neutral is not None:
            self.neutral = normalize(self.neutral, what="LoopOptions.neutral").warn().vector


@dataclass
class Frame:
    """One tick of the loop, the one frame type every sink receives. ``weights``: [52] MediaPipe order in
    [0, 1]; ``head``: yaw, pitch, roll in radians and ``eyes``: left yaw, pitch, roll, right yaw, pitch, roll
    (radians, derived from the eyeLook* shapes), both in the convention of :mod:`emo3d.pose`."""
    index: int
    t: float
    weights: np.ndarray
    head: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    eyes: Tuple[float, ...] = (0.0,) * 6
    text: Optional[str] = None
    # channels beyond the 52 (``EXTRA_CHANNELS``: ``tongueOut``) from the text model, eased like the weights
    extras: Dict[str, float] = field(default_factory=dict)


class _SinkWorker:
    """Feeds one sink from its own thread; ``put`` never blocks the loop."""

    _STOP = object()

    def __init__(self, sink: Any, maxsize: int) -> None:
        self.sink = sink
        self.send = sink.send if hasattr(sink, "send") else sink
        if not callable(self.send):
            raise InvalidInputError(f"a sink needs a send(frame) method (or is callable); got {type(sink).__name__}")
        self.q: "queue.Queue[Any]" = queue.Queue(maxsize=maxsize)
        self.dropped = 0
        self.errors = 0
        self.thread = threading.Thread(target=self._run, name=f"emo3d-sink-{type(sink).__name__}", daemon=True)
        self.thread.start()

    def put(self, item: Any) -> None:
        while True:
            try:
                self.q.put_nowait(item)
                return
            except queue.Full:
                try:
                    self.q.get_nowait()
                    self.dropped += 1
                    if self.dropped == 1:
                        log.warning("sink %s is falling behind the loop; dropping its oldest frames",
                                    type(self.sink).__name__)
                except queue.Empty:
                    pass

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is self._STOP:
                return
            try:
                self.send(item)
            except Exception as e:  # a broken sink must not take the loop down
                self.errors += 1
                if self.errors == 1:
                    log.warning("sink %s raised %s: %s (further errors are counted, not logged)",
                                type(self.sink).__name__, type(e).__name__, e)

    def close(self, timeout: float = 2.0) -> None:
        self.put(self._STOP)
        self.thread.join(timeout)
        close = getattr(self.sink, "close", None)
        if callable(close):
            try:
                close()
            except Exception as e:
                log.warning("closing sink %s failed: %s", type(self.sink).__name__, e)


@dataclass
class LoopStats:
    frames: int = 0
    skipped: int = 0           # clock ticks skipped because the loop fell > 2 frames behind
    step_ms: Deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


class AvatarLoop:
    """Drive a face from prompts and live input at a fixed clock; see the module docstring."""

    def __init__(self, engine: Any = None, options: Optional[LoopOptions] = None) -> None:
        self.engine = engine
        self.options = options or LoopOptions()
        o = self.options
        self._lock = threading.RLock()
        self._rng = np.random.default_rng(o.seed)
        self._phase = self._rng.uniform(0, 2 * math.pi, size=6)
        self._face = np.zeros(N_MEDIAPIPE, np.float32)      # composed face (pre intensity/idle) of the last frame
        self._target = np.zeros(N_MEDIAPIPE, np.float32)
        self._transition: Optional[Transition] = None
        self._extras = np.zeros(len(EXTRA_CHANNELS), np.float32)        # shown (pre intensity)
        self._extras_from = self._extras.copy()
        self._extras_to = self._extras.copy()
        self._filter = OneEuroFilter(o.one_euro_min_cutoff, o.one_euro_beta, o.one_euro_d_cutoff)
        self._neutral = None if o.neutral is None else np.asarray(o.neutral, np.float32)
        self._live: Optional[np.ndarray] = None
        self._live_head: Optional[Tuple[float, float, float]] = None
        self._live_wall: Optional[float] = None
        self._live_active = False
        self._t_last = 0.0
        self._index = 0
        self._next_blink = self._draw_blink(0.0)
        self._sinks: Dict[int, _SinkWorker] = {}
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self.intensity = o.intensity
        self.text: Optional[str] = None
        self.last_frame: Optional[Frame] = None
        self.stats = LoopStats()

    # --- inputs -----------------------------------------------------------------------------
    def set_text(self, text: str, *, intensity: Optional[float] = None,
                 transition_ms: Optional[float] = None):
        """Predict ``text`` with the engine and ease to it; returns the engine's Prediction."""
        if self.engine is None:
            raise InvalidInputError("this AvatarLoop has no engine: pass one, or use set_weights()")
        pred = self.engine.predict(text)
        self._retarget(pred.vector, intensity, transition_ms, getattr(pred, "extras", None) or {})
        with self._lock:
            self.text = text
        return pred

    def set_weights(self, weights: Any, *, transition_ms: Optional[float] = None,
                    intensity: Optional[float] = None) -> None:
        """Ease to explicit weights ({name: value} or a [52]/[51] vector)."""
        extras = {}
        if isinstance(weights, Mapping):   # {"tongueOut": v} under any spelling drives the extra channel
            for k, v in weights.items():
                m = names.resolve(k)
                if m is not None and m.targets[0] in EXTRA_CHANNELS:
                    extras[m.targets[0]] = float(v)
        self._retarget(normalize(weights).warn().vector, intensity, transition_ms, extras)
        with self._lock:
            self.text = None

    def set_idle(self, on: bool) -> None:
        """Switch the idle motion (blinks, head sway) on or off from the next frame."""
        if not isinstance(on, bool):
            raise InvalidInputError(f"idle must be true or false, got {on!r}")
        with self._lock:
            self.options = replace(self.options, idle=on)

    def _retarget(self, vec: np.ndarray, intensity: Optional[float], transition_ms: Optional[float],
                  extras: Mapping[str, float] = {}) -> None:
        scale = 1.0 if intensity is None else check_number(intensity, "intensity", 0, 4)
        ms = self.options.transition_ms if transition_ms is None else check_number(transition_ms, "transition_ms", 0, 60_000)
        target = np.clip(np.asarray(vec, np.float32) * scale, 0, 1)
        ex = np.clip(np.array([float(extras.get(n, 0.0)) for n in EXTRA_CHANNELS], np.float32) * scale, 0, 1)
        with self._lock:
            self._extras_from, self._extras_to = self._extras.copy(), np.nan_to_num(ex)
            self._target = target.astype(np.float32)
            self._transition = Transition(self._face.copy(), self._target.copy(), self._t_last, ms / 1e3,
                                          self.options.easing)

    def set_live(self, vec52: Any, *, head: Optional[Sequence[float]] = None, t: Optional[float] = None) -> None:
        """Tracked input (webcam): [52]/[51]/{name: v}; ``head`` = (yaw, pitch, roll) radians; One Euro filtered."""
        vec = normalize(vec52, what="live weights").vector
        if head is not None:
            head = tuple(float(x) for x in head)
            if len(head) != 3 or not all(math.isfinite(x) for x in head):
                raise InvalidInputError("live head pose must be 3 finite numbers (yaw, pitch, roll radians)")
        with self._lock:
            if self._neutral is not None:
                n = self._neutral
                vec = np.clip((vec - n) / np.maximum(1.0 - n, 1e-3), 0.0, 1.0).astype(np.float32)
            tt = self._t_last if t is None else float(t)
            self._live = self._filter(vec, tt).astype(np.float32)
            self._live_head = head
            self._live_wall = time.perf_counter()

    def calibrate(self, neutral: Any = None) -> np.ndarray:
        """Set the neutral offset for live input: the given face, or the last raw-ish live value."""
        with self._lock:
            if neutral is None:
                if self._live is None:
                    raise InvalidInputError("calibrate(): no live input yet; look neutral at the camera first "
                                            "or pass a neutral face")
                neutral = self._live
            self._neutral = normalize(neutral, what="neutral").warn().vector
            self._filter.reset()
            return self._neutral.copy()

    # --- sinks ------------------------------------------------------------------------------
    def add_sink(self, sink: Any) -> None:
        """``sink.send(frame)`` gets every frame on the sink's own thread; ``sink.close()`` at the end."""
        with self._lock:
            if id(sink) not in self._sinks:
                self._sinks[id(sink)] = _SinkWorker(sink, self.options.sink_queue)

    def remove_sink(self, sink: Any) -> None:
        with self._lock:
            worker = self._sinks.pop(id(sink), None)
        if worker is not None:
            worker.close()

    @property
    def sinks(self) -> list:
        with self._lock:
            return [w.sink for w in self._sinks.values()]

    # --- the clock --------------------------------------------------------------------------
    def _draw_blink(self, t: float) -> float:
        lo, hi = self.options.blink_every_s
        return t + float(self._rng.uniform(lo, hi))

    def step(self, now: Optional[float] = None) -> Frame:
        """Compute (and send to the sinks) the frame at time ``now`` (seconds on the loop's clock;
        default: one frame after the previous one)."""
        t0 = time.perf_counter()
        o = self.options
        with self._lock:
            t = self._t_last + (1.0 / o.fps if self._index else 0.0) if now is None else float(now)
            tr = self._transition
            text_face = tr.value(t) if tr is not None else self._target
            p = tr.progress(t) if tr is not None else 1.0
            self._extras = self._extras_from + (self._extras_to - self._extras_from) * np.float32(p)
            if tr is not None and tr.done(t):
                self._transition = None
            live_fresh = (self._live is not None and self._live_wall is not None
                          and time.perf_counter() - self._live_wall <= o.live_timeout_s)
            if live_fresh:
                face = (1.0 - o.live_mix) * text_face + o.live_mix * self._live
            else:
                face = text_face
                if self._live_active:  # live input just went stale: ease back to the text target
                    self._transition = Transition(self._face.copy(), self._target.copy(), t,
                                                  o.transition_ms / 1e3, o.easing)
                    face = self._transition.value(t)
            self._live_active = live_fresh
            self._face = np.asarray(face, np.float32)
            out = self._face.copy()
            keep = out[_NEUTRAL_I]
            out = np.clip(out * self.intensity, 0.0, 1.0)
            out[_NEUTRAL_I] = keep
            head = self._live_head if (live_fresh and self._live_head is not None) else (0.0, 0.0, 0.0)
            if o.idle:
                out, head = self._idle(t, out, head)
            extras = {n: float(min(max(v * self.intensity, 0.0), 1.0)) for n, v in zip(EXTRA_CHANNELS, self._extras)
                      if v > 0}
            frame = Frame(index=self._index, t=t, weights=out.astype(np.float32), head=tuple(head),
                          eyes=eyes_from_weights(out), text=self.text, extras=extras)
            self._index += 1
            self._t_last = t
            self.last_frame = frame
            workers = list(self._sinks.values())
        for w in workers:
            w.put(frame)
        self.stats.frames += 1
        self.stats.step_ms.append((time.perf_counter() - t0) * 1e3)
        return frame

    def _idle(self, t: float, w: np.ndarray, head: Tuple[float, float, float]):
        o = self.options
        if t >= self._next_blink + o.blink_ms / 1e3:
            self._next_blink = self._draw_blink(t)
        u = (t - self._next_blink) / (o.blink_ms / 1e3)
        if 0.0 <= u <= 1.0:
            b = math.sin(math.pi * u)
            for i in _BLINK:
                w[i] = max(w[i], b)
        a = math.radians(o.sway_deg)
        p = self._phase
        sway = (a * (0.6 * math.sin(2 * math.pi * 0.11 * t + p[0]) + 0.4 * math.sin(2 * math.pi * 0.27 * t + p[1])),
                a * 0.6 * (0.6 * math.sin(2 * math.pi * 0.13 * t + p[2]) + 0.4 * math.sin(2 * math.pi * 0.31 * t + p[3])),
                a * 0.4 * (0.6 * math.sin(2 * math.pi * 0.07 * t + p[4]) + 0.4 * math.sin(2 * math.pi * 0.19 * t + p[5])))
        return w, tuple(h + s for h, s in zip(head, sway))

    def run(self, duration: Optional[float] = None, stop_event: Optional[threading.Event] = None) -> LoopStats:
        """Tick at ``fps`` on the wall clock until ``duration`` seconds pass or ``stop_event`` is set.

        Frame times stay on the fixed grid k/fps; a loop more than 2 frames late skips ticks (counted).
        """
        stop = stop_event or self._stop
        dt = 1.0 / self.options.fps
        start_t = self._t_last + (dt if self._index else 0.0)
        wall0 = time.perf_counter()
        k = 0
        while not stop.is_set():
            deadline = wall0 + k * dt
            late = time.perf_counter() - deadline
            if late < 0:
                if stop.wait(-late):
                    break
            elif late > 2 * dt:
                skip = int(late / dt)
                k += skip
                self.stats.skipped += skip
            if duration is not None and k * dt >= duration:
                break
            self.step(start_t + k * dt)
            k += 1
        return self.stats

    def start(self, duration: Optional[float] = None) -> threading.Thread:
        """Run the clock on a background thread (``stop()`` ends it)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("AvatarLoop is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, kwargs={"duration": duration},
                                        name="emo3d-avatar-loop", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        """Stop the clock and close every sink (each drains its queue first)."""
        self.stop()
        with self._lock:
            workers = list(self._sinks.values())
            self._sinks.clear()
        for w in workers:
            w.close()

    def __enter__(self) -> "AvatarLoop":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
