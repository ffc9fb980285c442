"""The FACS emotion prototypes, owned here: emotion -> action units -> ARKit blendshapes (52, MediaPipe order).

The offline data builder mixes them into a prior (``emo3d.data.facs.prior``), the avatar calibration
renders them, and the default model's evaluation compares against them: all read this module.

Sources of the mapping
----------------------
* Action units and their names: P. Ekman & W. V. Friesen, *Facial Action Coding System: A
  Technique for the Measurement of Facial Movement*, Consulting Psychologists Press, 1978;
  P. Ekman, W. V. Friesen & J. C. Hager, *FACS Manual*, 2002 (intensity letters A..E).
* Emotion prototypes: the EMFACS-7 prototypes of W. V. Friesen & P. Ekman, *EMFACS-7: Emotional
  Facial Action Coding System*, unpublished manual, UCSF, 1983, as tabulated in
  P. Ekman & E. L. Rosenberg (eds.), *What the Face Reveals*, 2nd ed., Oxford UP, 2005, and
  for contempt (unilateral AU12+AU14) in P. Ekman & W. V. Friesen, "A new pan-cultural facial
  expression of emotion", *Motivation and Emotion* 10(2), 1986:
  happiness 6+12, sadness 1+4+15 (+17), surprise 1+2+5B+26, fear 1+2+4+5+7+20+26,
  anger 4+5+7+23 (+24), disgust 9+15+16 (+10, 17), contempt R12A+R14A.
* AU -> ARKit: Apple ``ARFaceAnchor.BlendShapeLocation`` documentation (each shape's description)
  and the widely used ARKit-to-FACS correspondence (M. Ozel, "ARKit to FACS: Blendshape
  Cheat Sheet", 2021); one AU may drive several shapes with the gains below.

Intensity letters map to weights as A 0.15 (trace), B 0.3 (slight), C 0.55 (marked), D 0.8
(severe), E 1.0 (maximum).
"""
from __future__ import annotations

import functools
from typing import Dict, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.options import check_number
from emo3d.schema import EMOTIONS, MEDIAPIPE_INDEX, N_MEDIAPIPE

__all__ = ["AU_NAMES", "AU_TO_ARKIT", "PROTOTYPES_AU", "INTENSITY_LETTERS", "SIDES", "au_vector", "prototype",
           "prototype_vector", "prototype_aus", "check_emotion", "check_intensity"]

INTENSITY_LETTERS: Dict[str, float] = {"A": 0.15, "B": 0.3, "C": 0.55, "D": 0.8, "E": 1.0}

AU_NAMES: Dict[int, str] = {
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser",
    12: "lip corner puller", 13: "cheek puffer", 14: "dimpler", 15: "lip corner depressor",
    16: "lower lip depressor", 17: "chin raiser", 18: "lip pucker", 20: "lip stretcher",
    22: "lip funneler", 23: "lip tightener", 24: "lip pressor", 25: "lips part", 26: "jaw drop",
    27: "mouth stretch", 28: "lip suck", 43: "eyes closed", 61: "eyes left", 62: "eyes right",
    63: "eyes up", 64: "eyes down",
}

SIDES = ("Left", "Right")


def _lr(stem: str, gain: float = 1.0) -> Dict[str, float]:
    return {stem + s: gain for s in SIDES}


# AU -> {ARKit shape: gain}; gains from the Apple shape descriptions / Ozel's cheat sheet.
AU_TO_ARKIT: Dict[int, Dict[str, float]] = {
    1: {"browInnerUp": 1.0},
    2: _lr("browOuterUp"),
    4: _lr("browDown"),
    5: _lr("eyeWide"),
    6: {**_lr("cheekSquint"), **_lr("eyeSquint", 0.35)},
    7: _lr("eyeSquint"),
    9: {**_lr("noseSneer"), **_lr("mouthUpperUp", 0.3)},
    10: _lr("mouthUpperUp"),
    12: _lr("mouthSmile"),
    13: {"cheekPuff": 1.0},
    14: _lr("mouthDimple"),
    15: _lr("mouthFrown"),
    16: _lr("mouthLowerDown"),
    17: {"mouthShrugLower": 1.0, "mouthShrugUpper": 0.4},
    18: {"mouthPucker": 1.0},
    20: _lr("mouthStretch"),
    22: {"mouthFunnel": 1.0},
    23: {**_lr("mouthPress", 0.6), "mouthRollLower": 0.2, "mouthRollUpper": 0.2},
    24: _lr("mouthPress"),
    25: {"jawOpen": 0.15, **_lr("mouthLowerDown", 0.25)},
    26: {"jawOpen": 0.6},
    27: {"jawOpen": 1.0, **_lr("mouthStretch", 0.3)},
    28: {"mouthRollLower": 1.0, "mouthRollUpper": 1.0},
    43: _lr("eyeBlink"),
    61: {"eyeLookOutLeft": 1.0, "eyeLookInRight": 1.0},
    62: {"eyeLookInLeft": 1.0, "eyeLookOutRight": 1.0},
    63: _lr("eyeLookUp"),
    64: _lr("eyeLookDown"),
}

# EMFACS-7 prototypes: emotion -> ((AU, intensity letter, side), ...); side "" = both, "R"/"L" = unilateral.
PROTOTYPES_AU: Dict[str, Tuple[Tuple[int, str, str], ...]] = {
    "neutral": (),
    "happiness": ((6, "C", ""), (12, "D", ""), (25, "A", "")),
    "surprise": ((1, "D", ""), (2, "D", ""), (5, "B", ""), (26, "C", "")),
    "sadness": ((1, "C", ""), (4, "B", ""), (15, "C", ""), (17, "B", ""), (64, "A", "")),
    "anger": ((4, "D", ""), (5, "B", ""), (7, "C", ""), (23, "C", ""), (24, "B", "")),
    "disgust": ((9, "D", ""), (10, "B", ""), (15, "B", ""), (16, "A", ""), (17, "B", "")),
    "fear": ((1, "D", ""), (2, "C", ""), (4, "B", ""), (5, "D", ""), (7, "A", ""), (20, "C", ""),
             (26, "B", "")),
    "contempt": ((12, "B", "R"), (14, "C", "R"), (63, "A", "")),
}


def au_vector(aus: Sequence[Tuple[int, float, str]]) -> np.ndarray:
    """[(AU, weight, side)] -> [52] MediaPipe-order weights (max over contributions, clipped to [0, 1])."""
    out = np.zeros(N_MEDIAPIPE, dtype=np.float32)
    for au, weight, side in aus:
        if au not in AU_TO_ARKIT:
            raise InvalidInputError(f"unknown action unit AU{au} (accepted: {sorted(AU_TO_ARKIT)})")
        for shape, gain in AU_TO_ARKIT[au].items():
            if side and shape.endswith(SIDES) and not shape.endswith("Left" if side == "L" else "Right"):
                continue
            i = MEDIAPIPE_INDEX[shape]
            out[i] = max(out[i], float(weight) * gain)
    return np.clip(out, 0.0, 1.0)


def prototype_aus(emotion: str, side: str = "R") -> list:
    return [(au, INTENSITY_LETTERS[letter], side if s else "") for au, letter, s in PROTOTYPES_AU[emotion]]


@functools.lru_cache(maxsize=None)
def prototype_vector(emotion: str, side: str = "R") -> np.ndarray:
    """``au_vector(prototype_aus(emotion, side))``, computed once per (emotion, side); read-only."""
    if side not in ("L", "R"):
        raise InvalidInputError(f"prototype_vector: side {side!r} is not 'L' or 'R' (the character's own side)")
    v = au_vector(prototype_aus(check_emotion(emotion), side))
    v.setflags(write=False)
    return v


def check_emotion(emotion: str) -> str:
    e = str(emotion).strip().lower()
    if e not in PROTOTYPES_AU:
        raise InvalidInputError(f"unknown emotion {emotion!r} (accepted: {', '.join(EMOTIONS)})")
    return e


def prototype(emotion: str, intensity: float = 1.0, *, side: str = "R") -> np.ndarray:
    """The EMFACS prototype of ``emotion`` as [52] MediaPipe-order weights, scaled by ``intensity``.

    ``side`` ("L"/"R") is the subject's side of unilateral actions (contempt).
    """
    e = check_emotion(emotion)
    intensity = check_intensity(intensity)
    if side not in ("L", "R"):
        raise InvalidInputError(f"side must be 'L' or 'R', got {side!r}")
    return np.clip(au_vector(prototype_aus(e, side)) * intensity, 0.0, 1.0).astype(np.float32)


def check_intensity(intensity: float) -> float:
    return check_number(intensity, "intensity", 0, 1)
