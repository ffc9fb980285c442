"""The calibration's reader: the default rig rendered and read by MediaPipe's FaceLandmarker (the
full path of every probe: rig -> render -> FaceLandmarker -> 52 scores), the probe batches (every
shape alone, random sparse vectors, the emotion prototypes of :mod:`emo3d.facs`) and the FER-2013
reading of the emotion faces. Used by :mod:`.calibrate_search` and :mod:`.calibrate_report`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from emo3d import facs, schema
from emo3d.errors import AssetError
from emo3d.options import check_int, check_number

from .fer import FerReader

__all__ = ["CalibrateOptions", "Probe", "unit_batch", "mirror", "random_sparse", "emotion_vectors",
           "EMOTION_PROTOTYPES", "fer_reading"]

# the EMFACS prototypes of the basic emotions by shape name (owned by emo3d.facs)
EMOTION_PROTOTYPES: Dict[str, Dict[str, float]] = {
    e: {n: float(v) for n, v in zip(schema.MEDIAPIPE_NAMES, facs.prototype(e)) if v > 0} for e in schema.EMOTIONS}


@dataclass
class CalibrateOptions:
    out: Path
    texture: str = "neutral"
    size: int = 256
    target: float = 0.85
    rounds: int = 7
    bias_rounds: int = 4
    neutral_max: float = 0.15
    gain_min: float = 0.3
    gain_max: float = 4.0
    n_random: int = 200
    seed: int = 0
    write: bool = False
    report_only: bool = False
    refine: bool = False
    refine_below: float = 0.4
    refine_passes: int = 2
    refine_amplify: float = 1.5

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        check_int(self.size, "--size", 64, 1024)
        check_number(self.target, "--target", 0.2, 1.0)
        check_int(self.rounds, "--rounds", 0)
        check_int(self.bias_rounds, "--bias-rounds", 0)
        check_int(self.n_random, "--n-random", 1)
        check_number(self.gain_min, "gain_min", 0.0, lo_open=True)
        check_number(self.gain_max, "--gain-max", self.gain_min, lo_open=True)


class Probe:
    """Render + score with the current calibration."""

    def __init__(self, texture: str, size: int, *, compose: bool = True):
        from .scorer import FaceScorer
        self.texture, self.size, self.compose = texture, size, compose
        self.scorer = FaceScorer("image")

    def rig(self, cal: dict):
        from .default import build_default_rig
        return build_default_rig(self.texture, calibration=cal, compose=self.compose)

    def images(self, cal: dict, W: np.ndarray) -> np.ndarray:
        from native.render import Renderer, RenderOptions
        r = Renderer(self.rig(cal), RenderOptions(width=self.size, height=self.size))
        out = []
        for i in range(0, len(W), 32):
            imgs = r.render(W[i:i + 32])
            out.append(imgs if imgs.ndim == 4 else imgs[None])
        return np.concatenate(out)

    def scores(self, imgs: np.ndarray) -> np.ndarray:
        out = np.full((len(imgs), schema.N_MEDIAPIPE), np.nan, np.float32)
        for i, im in enumerate(imgs):
            s = self.scorer.scores(im)
            if s is not None:
                out[i] = s
        return out

    def close(self):
        self.scorer.close()


def unit_batch() -> np.ndarray:
    W = np.zeros((schema.N_MEDIAPIPE, schema.N_MEDIAPIPE), np.float32)
    W[np.arange(1, schema.N_MEDIAPIPE), np.arange(1, schema.N_MEDIAPIPE)] = 1.0
    # mouthClose over jawOpen, as ARKit uses it (alone it pushes the lower lip through the upper)
    W[schema.MEDIAPIPE_INDEX["mouthClose"], schema.MEDIAPIPE_INDEX["jawOpen"]] = 1.0
    return W                      # row 0 = neutral, row i = shape i at 1.0


def mirror(name: str) -> Optional[str]:
    if name.endswith("Left"):
        return name[:-4] + "Right"
    if name.endswith("Right"):
        return name[:-5] + "Left"
    return None


def random_sparse(n: int, seed: int = 0) -> np.ndarray:
    """[n,52] sparse expression vectors: 1-4 random shapes each, weights uniform in [0.2, 1]."""
    rng = np.random.default_rng(seed)
    W = np.zeros((n, schema.N_MEDIAPIPE), np.float32)
    for i in range(n):
        k = rng.integers(1, 5)
        idx = rng.choice(np.arange(1, schema.N_MEDIAPIPE), size=k, replace=False)
        W[i, idx] = rng.uniform(0.2, 1.0, size=k)
    return W


def emotion_vectors() -> Dict[str, np.ndarray]:
    return {e: facs.prototype(e) for e in schema.EMOTIONS}


# --- what the emotion faces read as ----------------------------------------------------------
def fer_reading(images: Dict[str, np.ndarray]) -> Dict[str, object]:
    """{label: {top, FER class: p} | None (no face found)}, or {"error": why} when the FER model cannot be
    had here (``avatar.fer.FerReader``)."""
    try:
        reader = FerReader()
    except AssetError as e:   # reported, not fatal
        return {"error": f"{type(e).__name__}: {e}"}
    out: Dict[str, object] = {}
    for k, im in images.items():
        r = reader.read(im)
        out[k] = None if r is None else {"top": max(r, key=r.get), **{c: round(v, 3) for c, v in r.items()}}
    return out
