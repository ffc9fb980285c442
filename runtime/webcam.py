"""Drive the avatar from a camera or a video file.

OpenCV capture (a camera index or a video file) -> MediaPipe FaceLandmarker in VIDEO mode
(``avatar.FaceScorer(mode="video")``) -> 52 blendshape scores -> :class:`LiveFace` (neutral
calibration, ``--mix`` overlay, hold-and-fade when the face is lost) -> ``loop.set_live(vec)``
(the loop applies One Euro smoothing).

Calibration: the first ``calibrate_frames`` frames with a face are averaged as the user's resting
face ``n``; afterwards every shape is rescaled ``clip((s - n) / (1 - n), 0, 1)``, so a resting face
reads 0 and a full activation still reaches 1.

Mix rule (``--mix TEXT``): the text decides the *upper face* -- brows, eye squint/wide, cheeks, nose
sneer (:data:`TEXT_REGION`); the camera keeps the mouth, jaw, blinks and gaze. So "furious scowl"
puts a scowl on a face that still talks and blinks with the user.

No face: the last expression is held for ``hold_s`` seconds, then fades linearly to neutral over
``fade_s`` seconds.

Head pose: (yaw, pitch, roll) from the tracked landmarks (:func:`head_pose`), calibrated like the
scores and passed as ``set_live(vec, head=...)`` where the loop accepts it.

This module is the tracker; the plot of a tracked video is :mod:`runtime.webcam_plot`, the command
(``emo3d webcam VIDEO``) :mod:`runtime.webcam_cli`.
"""
from __future__ import annotations

import inspect
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from emo3d import schema
from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number
from emo3d.weights import normalize

log = logging.getLogger(__name__)

_TEXT_PREFIXES = ("brow", "eyeSquint", "eyeWide", "cheek", "noseSneer")
TEXT_REGION: tuple[str, ...] = tuple(n for n in schema.MODEL_NAMES if n.startswith(_TEXT_PREFIXES))
CAMERA_REGION: tuple[str, ...] = tuple(n for n in schema.MODEL_NAMES if n not in TEXT_REGION)
_TEXT_MASK = np.array([n in TEXT_REGION for n in schema.MEDIAPIPE_NAMES])
_NEUTRAL = schema.MEDIAPIPE_INDEX[schema.NEUTRAL]


def mix(tracked: np.ndarray, text: np.ndarray) -> np.ndarray:
    """The ``--mix`` rule: :data:`TEXT_REGION` from ``text``, everything else from ``tracked`` ([52] each)."""
    tracked, text = normalize(tracked, what="tracked scores").vector, normalize(text, what="text scores").vector
    return np.where(_TEXT_MASK, text, tracked).astype(np.float32)


# MediaPipe face-mesh landmarks used for the head pose
_EYE_OUTER_RIGHT, _EYE_OUTER_LEFT, _FOREHEAD, _CHIN = 33, 263, 10, 152


def head_pose(landmarks: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
    """(yaw, pitch, roll) radians of a face from MediaPipe's normalised landmarks [478,3].

    The convention of :mod:`emo3d.pose` (the renderer's) for an unmirrored camera image. Built from the
    eye-corner line and the chin-to-forehead line, so a resting face reads a few degrees of pitch:
    calibration removes that offset."""
    lm = np.asarray(landmarks, dtype=np.float64)
    p = lm[:, :3] * np.array([width, height, width], dtype=np.float64)
    p[:, 1:] *= -1.0                                   # image y down / z away -> rig y up / z toward viewer
    x = p[_EYE_OUTER_LEFT] - p[_EYE_OUTER_RIGHT]
    y = p[_FOREHEAD] - p[_CHIN]
    x /= max(np.linalg.norm(x), 1e-9)
    y = y - (y @ x) * x
    y /= max(np.linalg.norm(y), 1e-9)
    z = np.cross(x, y)
    m = np.stack([x, y, z], axis=1)
    pitch = float(np.arcsin(np.clip(-m[1, 2], -1.0, 1.0)))
    return float(np.arctan2(m[0, 2], m[2, 2])), pitch, float(np.arctan2(m[1, 0], m[1, 1]))


@dataclass
class WebcamOptions:
    """Options of the webcam path (validated)."""
    source: str | int = 0             # camera index or video file path
    calibrate_frames: int = 30        # resting frames averaged as neutral (0 = no calibration)
    mix_text: str | None = None       # --mix text (needs the loop's engine)
    mix_vector: np.ndarray | None = None  # or the [52] vector to overlay directly
    hold_s: float = 0.5               # keep the last expression this long when the face is lost
    fade_s: float = 1.0               # then fade to neutral over this long
    loop_video: bool = False          # restart a video file at its end
    realtime: bool = True             # pace video files at their frame rate

    def __post_init__(self):
        if isinstance(self.source, str) and self.source.strip().isdigit():
            self.source = int(self.source.strip())
        if isinstance(self.source, bool) or not isinstance(self.source, (int, str, Path)):
            raise InvalidInputError(f"webcam source {self.source!r} must be a camera index or a video file path")
        if isinstance(self.source, (str, Path)):
            if not Path(self.source).is_file():
                raise InvalidInputError(f"webcam source {str(self.source)!r} is neither a camera index nor an "
                                        "existing video file")
            self.source = str(self.source)
        else:
            check_int(self.source, "camera index", 0)
        check_int(self.calibrate_frames, "WebcamOptions.calibrate_frames", 0)
        for name in ("hold_s", "fade_s"):
            check_number(getattr(self, name), f"WebcamOptions.{name}", 0)
        if self.mix_text is not None and not str(self.mix_text).strip():
            raise InvalidInputError("--mix text is empty")
        if self.mix_vector is not None:
            self.mix_vector = normalize(self.mix_vector, what="mix scores").vector


class LiveFace:
    """Per-frame post-processing of tracked scores: calibration, mix, hold-and-fade. No I/O."""

    def __init__(self, calibrate_frames: int = 30, mix_vector: np.ndarray | None = None,
                 hold_s: float = 0.5, fade_s: float = 1.0):
        self.calibrate_frames = calibrate_frames
        self.mix_vector = None if mix_vector is None else normalize(mix_vector, what="mix scores").vector
        self.hold_s, self.fade_s = hold_s, fade_s
        self.neutral: np.ndarray | None = None if calibrate_frames else np.zeros(schema.N_MEDIAPIPE, np.float32)
        self._calib: list[np.ndarray] = []
        self._calib_head: list[np.ndarray] = []
        self.neutral_head = np.zeros(3)
        self._last = np.zeros(schema.N_MEDIAPIPE, np.float32)
        self._last_head = np.zeros(3)
        self._last_face_t: float | None = None
        self.head: tuple[float, float, float] | None = None   # head pose to show with the last update

    @property
    def calibrated(self) -> bool:
        return self.neutral is not None

    def update(self, scores: np.ndarray | None, t: float, head=None) -> np.ndarray:
        """Scores of one frame (``None`` = no face) at time ``t`` seconds -> the [52] vector to show.
        ``head``: tracked (yaw, pitch, roll) radians or None; the pose to show lands in ``self.head``."""
        if scores is None:
            if self._last_face_t is None:
                self.head = None
                return np.zeros(schema.N_MEDIAPIPE, np.float32)
            lost = t - self._last_face_t
            k = 1.0 if lost <= self.hold_s else \
                0.0 if self.fade_s <= 0 else max(0.0, 1.0 - (lost - self.hold_s) / self.fade_s)
            self.head = tuple(float(v) for v in self._last_head * k)
            return (self._last * k).astype(np.float32)
        raw = np.clip(normalize(scores, what="tracked scores").vector, 0.0, 1.0)
        h = None if head is None else np.asarray(head, dtype=np.float64).reshape(3)
        if h is not None and not np.all(np.isfinite(h)):
            h = None
        if self.neutral is None:
            self._calib.append(raw)
            if h is not None:
                self._calib_head.append(h)
            if len(self._calib) >= self.calibrate_frames:
                self.neutral = np.mean(self._calib, axis=0).astype(np.float32)
                self.neutral[_NEUTRAL] = 0.0
                if self._calib_head:
                    self.neutral_head = np.mean(self._calib_head, axis=0)
                self._calib, self._calib_head = [], []
            out = raw
        else:
            n = self.neutral
            out = np.clip((raw - n) / np.maximum(1.0 - n, 1e-3), 0.0, 1.0)
            out[_NEUTRAL] = raw[_NEUTRAL]
        if self.mix_vector is not None:
            out = mix(out, self.mix_vector)
        self._last = out.astype(np.float32)
        self._last_head = np.zeros(3) if h is None else h - self.neutral_head
        self.head = None if h is None else tuple(float(v) for v in self._last_head)
        self._last_face_t = t
        return self._last.copy()


def default_scorer():
    """``avatar.FaceScorer(mode="video")``: MediaPipe FaceLandmarker on the avatar package's face bundle."""
    from emo3d.avatar import FaceScorer
    return FaceScorer(mode="video")


def _open_capture(source):
    import cv2
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        kind = "camera" if isinstance(source, int) else "video file"
        raise InvalidInputError(f"cannot open {kind} {source!r} with OpenCV")
    return cap


def _tracked_head(scorer, scores, rgb):
    """Head pose from the scorer's last landmarks (None without a face or landmarks)."""
    lm = getattr(scorer, "last_landmarks", None) if scores is not None else None
    if lm is None or len(lm) <= _CHIN:
        return None
    return head_pose(lm, rgb.shape[1], rgb.shape[0])


def _takes_timestamp(scorer) -> bool:
    try:
        return "timestamp_ms" in inspect.signature(scorer.scores).parameters
    except (TypeError, ValueError):
        return False


@dataclass
class TrackResult:
    """Scores tracked from a video: ``scores`` [N,52] raw MediaPipe scores (NaN rows = no face),
    ``shown`` [N,52] after calibration/mix/hold-fade, ``face`` [N] bool, ``fps`` of the file,
    ``head`` [N,3] tracked (yaw, pitch, roll) radians, NaN without a face or landmarks."""
    scores: np.ndarray
    shown: np.ndarray
    face: np.ndarray
    fps: float
    head: np.ndarray | None = None


def track_video(path, *, scorer=None, face: LiveFace | None = None, max_frames: int | None = None,
                progress: bool = False) -> TrackResult:
    """Run the webcam pipeline over a video file as fast as possible (no avatar loop)."""
    opts = WebcamOptions(source=str(path), calibrate_frames=0)
    cap = _open_capture(opts.source)
    fps = cap.get(5) or 30.0  # CAP_PROP_FPS
    total = int(cap.get(7) or 0)  # CAP_PROP_FRAME_COUNT
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=min(total, max_frames or total) or None, unit="frame", desc="tracking")
    own = scorer is None
    scorer = scorer or default_scorer()
    face = face or LiveFace(calibrate_frames=0)
    raw, shown, found, heads = [], [], [], []
    stamped = _takes_timestamp(scorer)
    try:
        i = 0
        while max_frames is None or i < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = bgr[:, :, ::-1].copy()
            s = scorer.scores(rgb, timestamp_ms=int(round(i * 1000 / fps)) + 1) if stamped else scorer.scores(rgb)
            raw.append(np.full(schema.N_MEDIAPIPE, np.nan, np.float32) if s is None else np.asarray(s, np.float32))
            found.append(s is not None)
            h = _tracked_head(scorer, s, rgb)
            heads.append((np.nan,) * 3 if h is None else h)
            shown.append(face.update(s, i / fps, head=h))
            i += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        cap.release()
        if own and hasattr(scorer, "close"):
            scorer.close()
    if not raw:
        raise InvalidInputError(f"video file {str(path)!r} has no readable frames")
    return TrackResult(np.stack(raw), np.stack(shown), np.array(found), float(fps), np.array(heads, np.float32))


@dataclass
class WebcamStats:
    frames: int = 0
    faces: int = 0
    calibrated: bool = False
    error: str | None = None
    fps: float = 0.0
    started: float = field(default_factory=time.monotonic)


class WebcamTracker:
    """Background thread: capture -> scorer -> :class:`LiveFace` -> ``loop.set_live``. ``close()`` stops it."""

    def __init__(self, loop, options: WebcamOptions | None = None, *, scorer_factory: Callable | None = None):
        self.loop = loop
        self.options = options or WebcamOptions()
        self.stats = WebcamStats()
        self._scorer_factory = scorer_factory or default_scorer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live_head = False
        self.done = threading.Event()

    def _mix_vector(self):
        o = self.options
        if o.mix_vector is not None:
            return o.mix_vector
        if o.mix_text is None:
            return None
        engine = getattr(self.loop, "engine", None)
        if engine is None:
            raise InvalidInputError("--mix needs a text model: the avatar loop has no engine")
        return normalize(engine.predict(o.mix_text).vector, what="mix scores").vector

    def start(self) -> "WebcamTracker":
        face = LiveFace(self.options.calibrate_frames, self._mix_vector(), self.options.hold_s, self.options.fade_s)
        cap = _open_capture(self.options.source)  # fail now, in the caller, if the source is bad
        try:
            scorer = self._scorer_factory()
        except BaseException:
            cap.release()
            raise
        if self.options.calibrate_frames:
            log.info("webcam: calibrating on the first %d frames with a face - keep a relaxed, neutral face",
                     self.options.calibrate_frames)
        try:
            self._live_head = "head" in inspect.signature(self.loop.set_live).parameters
        except (TypeError, ValueError):
            self._live_head = False
        self._thread = threading.Thread(target=self._run, args=(cap, scorer, face), name="emo3d-webcam",
                                        daemon=True)
        self._thread.start()
        return self

    def _run(self, cap, scorer, face: LiveFace):
        o = self.options
        is_file = isinstance(o.source, str)
        fps = (cap.get(5) or 30.0) if is_file else 0.0
        t0 = time.monotonic()
        i = 0
        stamped = _takes_timestamp(scorer)
        last_ms = 0
        try:
            while not self._stop.is_set():
                ok, bgr = cap.read()
                if not ok:
                    if is_file and o.loop_video:
                        cap.set(1, 0)  # CAP_PROP_POS_FRAMES
                        continue
                    if not is_file:
                        self.stats.error = "camera stopped delivering frames"
                    break
                t = i / fps if is_file else time.monotonic() - t0
                rgb = bgr[:, :, ::-1].copy()
                if stamped:  # MediaPipe VIDEO mode needs strictly increasing timestamps (also across loops)
                    last_ms = max(last_ms + 1, int(round(t * 1000)))
                    s = scorer.scores(rgb, timestamp_ms=last_ms)
                else:
                    s = scorer.scores(rgb)
                self.stats.frames += 1
                self.stats.faces += s is not None
                vec = face.update(s, t, head=_tracked_head(scorer, s, rgb))
                if face.head is not None and self._live_head:
                    self.loop.set_live(vec, head=face.head)
                else:
                    self.loop.set_live(vec)
                self.stats.calibrated = face.calibrated
                i += 1
                if is_file and o.realtime:
                    delay = t0 + i / fps - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)
        except Exception as e:  # report, never kill the process from this thread
            log.exception("webcam stopped")
            self.stats.error = f"{type(e).__name__}: {e}"
        finally:
            self.stats.fps = self.stats.frames / max(time.monotonic() - t0, 1e-9)
            cap.release()
            if hasattr(scorer, "close"):
                scorer.close()
            self.done.set()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
