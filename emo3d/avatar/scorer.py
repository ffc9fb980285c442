"""``FaceScorer``: MediaPipe FaceLandmarker with blendshape output, on RGB uint8 images.

``scores(rgb)`` returns the 52 blendshape scores in MediaPipe order (``schema.MEDIAPIPE_NAMES``)
or ``None`` when no face is found. ``mode="video"`` uses MediaPipe's tracking mode (monotonic
timestamps are generated unless given).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from emo3d import schema
from emo3d.errors import InvalidInputError

__all__ = ["FaceScorer"]


class FaceScorer:
    """MediaPipe FaceLandmarker (Tasks API) returning 52 blendshape scores per image.

    Use it as a context manager or call :meth:`close`: a graph still open at interpreter exit makes
    MediaPipe print a harmless traceback from its own ``__del__``."""

    def __init__(self, mode: str = "image", *, model_path: str | Path | None = None,
                 min_detection_confidence: float = 0.3, min_presence_confidence: float = 0.3,
                 landmarks: bool = False):
        if mode not in ("image", "video"):
            raise InvalidInputError(f"FaceScorer mode must be 'image' or 'video', got {mode!r}")
        from mediapipe.tasks.python import BaseOptions
        from mediapipe.tasks.python.vision import FaceLandmarker, FaceLandmarkerOptions, RunningMode

        from .bundle import face_landmarker_path
        self.mode = mode
        self.model_path = face_landmarker_path(model_path)
        opts = FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=RunningMode.IMAGE if mode == "image" else RunningMode.VIDEO,
            num_faces=1, output_face_blendshapes=True,
            min_face_detection_confidence=min_detection_confidence,
            min_face_presence_confidence=min_presence_confidence)
        self._lm = FaceLandmarker.create_from_options(opts)
        self._t_ms = 0
        self.last_landmarks: Optional[np.ndarray] = None   # [478,3] normalised x,y,z of the last face

    def _detect(self, rgb, timestamp_ms: Optional[int]):
        import mediapipe as mp
        if self._lm is None:
            raise InvalidInputError("FaceScorer is closed")
        a = np.asarray(rgb)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in (3, 4):
            raise InvalidInputError(f"FaceScorer needs an RGB(A) uint8 image [H,W,3|4], got {a.dtype} {a.shape}")
        a = np.ascontiguousarray(a[..., :3])
        img = mp.Image(image_format=mp.ImageFormat.SRGB, data=a)
        if self.mode == "image":
            return self._lm.detect(img)
        t = self._t_ms + 33 if timestamp_ms is None else int(timestamp_ms)
        if t <= self._t_ms and self._t_ms:
            raise InvalidInputError(f"video timestamps must increase: {t} ms after {self._t_ms} ms")
        self._t_ms = t
        return self._lm.detect_for_video(img, t)

    def scores(self, rgb, *, timestamp_ms: Optional[int] = None) -> Optional[np.ndarray]:
        """[52] float32 in MediaPipe order, or None when no face is detected."""
        res = self._detect(rgb, timestamp_ms)
        if not res.face_blendshapes:
            self.last_landmarks = None
            return None
        self.last_landmarks = np.array([[p.x, p.y, p.z] for p in res.face_landmarks[0]], np.float32)
        out = np.zeros(schema.N_MEDIAPIPE, np.float32)
        for c in res.face_blendshapes[0]:
            if c.category_name in schema.MEDIAPIPE_INDEX:
                out[schema.MEDIAPIPE_INDEX[c.category_name]] = c.score
        return out

    def close(self) -> None:
        """Release the MediaPipe graph (idempotent)."""
        if self._lm is not None:
            self._lm.close()
            self._lm = None

    def __enter__(self) -> "FaceScorer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
