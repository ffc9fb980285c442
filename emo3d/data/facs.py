"""A documented FACS prior: emotion -> action units -> ARKit blendshapes (52, MediaPipe order).

The offline builder needs blendshape weights *before* it renders a face (the paper got them from
MediaPipe on DALL-E images; we render our avatar with these weights and read MediaPipe back).

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
(severe), E 1.0 (maximum). The prior mixes emotions with a probabilistic OR so a blend never
leaves [0, 1]: ``w = 1 - prod_e(1 - a_e * I * proto_e)``, ``a_e = d_e / max(d)``.
"""
from __future__ import annotations

import re
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.schema import EMOTIONS, MEDIAPIPE_INDEX, N_EMOTIONS, N_MEDIAPIPE, mirror_name

__all__ = ["AU_NAMES", "AU_TO_ARKIT", "PROTOTYPES_AU", "CUES", "INTENSITY_LETTERS",
           "au_vector", "prototype", "prior", "cue_shapes", "find_cues"]

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

_BOTH = ("Left", "Right")


def _lr(stem: str, gain: float = 1.0) -> Dict[str, float]:
    return {stem + s: gain for s in _BOTH}


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
            if side and shape.endswith(_BOTH) and not shape.endswith("Left" if side == "L" else "Right"):
                continue
            i = MEDIAPIPE_INDEX[shape]
            out[i] = max(out[i], float(weight) * gain)
    return np.clip(out, 0.0, 1.0)


def _proto_aus(emotion: str, side: str = "R") -> list:
    return [(au, INTENSITY_LETTERS[letter], side if s else "") for au, letter, s in PROTOTYPES_AU[emotion]]


def _check_emotion(emotion: str) -> str:
    e = str(emotion).strip().lower()
    if e not in PROTOTYPES_AU:
        raise InvalidInputError(f"unknown emotion {emotion!r} (accepted: {', '.join(EMOTIONS)})")
    return e


def prototype(emotion: str, intensity: float = 1.0, *, side: str = "R") -> np.ndarray:
    """The EMFACS prototype of ``emotion`` as [52] MediaPipe-order weights, scaled by ``intensity``.

    ``side`` ("L"/"R") is the subject's side of unilateral actions (contempt).
    """
    e = _check_emotion(emotion)
    intensity = _check_intensity(intensity)
    if side not in ("L", "R"):
        raise InvalidInputError(f"side must be 'L' or 'R', got {side!r}")
    return np.clip(au_vector(_proto_aus(e, side)) * intensity, 0.0, 1.0).astype(np.float32)


def _check_intensity(intensity: float) -> float:
    try:
        v = float(intensity)
    except (TypeError, ValueError):
        raise InvalidInputError(f"intensity must be a number in [0, 1], got {intensity!r}") from None
    if not np.isfinite(v) or v < 0 or v > 1:
        raise InvalidInputError(f"intensity must be in [0, 1], got {intensity!r}")
    return v


# --- facial-feature phrases ("cues") ---------------------------------------------------------
# cue -> (emotions it belongs to, AUs it adds, surface noun phrases). Phrases are what the text
# generator writes and what ``find_cues`` reads back, so texts and priors agree.
CUES: Dict[str, Tuple[Tuple[str, ...], Tuple[Tuple[int, str, str], ...], Tuple[str, ...]]] = {
    "smile": (("happiness",), ((12, "D", ""), (6, "B", "")),
              ("a broad smile", "a wide smile", "a beaming smile", "a bright grin", "a wide grin",
               "a warm smile", "a toothy grin",
               "an ear-to-ear grin", "a radiant smile", "an upturned mouth")),
    "raised_cheeks": (("happiness",), ((6, "D", ""),),
                      ("raised cheeks", "lifted cheeks", "round, raised cheeks")),
    "crinkled_eyes": (("happiness",), ((6, "C", ""), (7, "B", "")),
                      ("crinkled eyes", "eyes crinkled at the corners", "smiling eyes",
                       "crow's feet around the eyes")),
    "sparkling_eyes": (("happiness", "surprise"), ((5, "A", ""),),
                       ("sparkling eyes", "bright eyes", "shining eyes", "eyes alight")),
    "laughing_mouth": (("happiness",), ((12, "D", ""), (26, "B", "")),
                       ("a laughing open mouth", "lips parted in laughter")),
    "dimples": (("happiness",), ((14, "C", ""), (12, "B", "")), ("dimpled cheeks", "deep dimples")),
    "wide_eyes": (("surprise", "fear"), ((5, "D", ""),),
                  ("wide eyes", "wide-open eyes", "eyes wide open", "staring eyes", "saucer-like eyes",
                   "bulging eyes", "startled eyes")),
    "raised_brows": (("surprise", "fear"), ((1, "D", ""), (2, "D", "")),
                     ("raised eyebrows", "arched brows", "lifted eyebrows", "high-arched eyebrows",
                      "eyebrows shot up", "brows raised high")),
    "open_mouth": (("surprise", "fear"), ((26, "C", ""), (25, "B", "")),
                   ("an open mouth", "a gaping mouth", "a mouth agape", "a slack jaw")),
    "dropped_jaw": (("surprise",), ((27, "C", ""),), ("a dropped jaw", "a jaw hanging open")),
    "round_mouth": (("surprise",), ((22, "C", ""), (26, "B", "")),
                    ("a round O-shaped mouth", "lips rounded into an O")),
    "parted_lips": (("surprise", "fear", "sadness"), ((25, "C", ""),),
                    ("parted lips", "slightly parted lips", "a slightly open mouth")),
    "downturned_mouth": (("sadness", "disgust"), ((15, "D", ""),),
                         ("a downturned mouth", "drooping mouth corners", "down-turned lips",
                          "a sagging mouth", "a turned-down mouth", "lips that droop at the corners")),
    "heavy_lids": (("sadness",), ((43, "B", ""), (64, "B", "")),
                   ("heavy eyelids", "drooping eyelids", "half-closed eyes", "tired, heavy eyes",
                    "weary, hooded eyes")),
    "inner_brows": (("sadness", "fear"), ((1, "D", ""), (4, "A", "")),
                    ("upturned inner brows", "brows drawn up in the middle", "a pained brow")),
    "trembling_chin": (("sadness",), ((17, "D", ""),),
                       ("a trembling chin", "a quivering chin", "a puckered chin")),
    "downcast_eyes": (("sadness",), ((64, "D", ""), (43, "A", "")),
                      ("downcast eyes", "eyes cast down", "a lowered gaze")),
    "pout": (("sadness",), ((17, "C", ""), (18, "B", ""), (15, "B", "")),
             ("a pouting lower lip", "a quivering lower lip", "a slight pout")),
    "teary_eyes": (("sadness",), ((43, "A", ""),), ("teary eyes", "glistening, wet eyes",
                                                    "red-rimmed eyes")),
    "furrowed_brow": (("anger", "fear", "disgust"), ((4, "D", ""),),
                      ("a furrowed brow", "knitted brows", "a deep frown line", "lowered brows",
                       "a creased forehead", "a scowl", "drawn-together brows", "a heavy frown")),
    "narrowed_eyes": (("anger", "disgust", "contempt"), ((7, "D", ""),),
                      ("narrowed eyes", "squinting eyes", "slitted eyes", "eyes narrowed to slits")),
    "glare": (("anger",), ((4, "C", ""), (5, "C", ""), (7, "B", "")),
              ("a hard glare", "a piercing stare", "burning eyes")),
    "clenched_jaw": (("anger",), ((24, "D", ""), (17, "B", "")),
                     ("a clenched jaw", "a tight jaw", "a set jaw", "gritted teeth", "a jutting jaw")),
    "pressed_lips": (("anger", "contempt"), ((24, "D", ""), (23, "C", "")),
                     ("tightly pressed lips", "thin, pressed lips", "lips pressed into a line")),
    "flared_nostrils": (("anger", "disgust"), ((9, "B", ""),),
                        ("flared nostrils", "flaring nostrils")),
    "bared_teeth": (("anger",), ((10, "D", ""), (16, "C", ""), (25, "C", "")),
                    ("bared teeth", "teeth bared in a snarl")),
    "wrinkled_nose": (("disgust",), ((9, "E", ""),),
                      ("a wrinkled nose", "a scrunched nose", "a crinkled nose", "a nose wrinkled in revulsion")),
    "curled_lip": (("disgust", "contempt"), ((10, "D", ""),),
                   ("a curled upper lip", "a raised upper lip", "a lip curled in distaste")),
    "grimace": (("disgust", "fear"), ((20, "C", ""), (10, "B", "")),
                ("a grimace", "a pained grimace", "a tight grimace")),
    "stretched_lips": (("fear",), ((20, "D", ""),),
                       ("stretched lips", "lips pulled back tightly", "a tense, stretched mouth",
                        "a mouth stretched sideways", "trembling lips")),
    "smirk": (("contempt",), ((12, "C", "S"), (14, "C", "S")),
              ("a smirk", "a lopsided smirk", "a half smile", "a one-sided smirk", "a crooked sneer",
               "an asymmetrical smirk")),
    "rolled_eyes": (("contempt",), ((63, "C", ""),), ("rolling eyes", "eyes rolled upward")),
    "raised_chin": (("contempt",), ((17, "B", ""),), ("a raised chin", "a lifted chin")),
    "relaxed_face": (("neutral",), (), ("a relaxed brow", "a still face", "soft, steady eyes",
                                        "a closed, relaxed mouth", "an even gaze", "smooth features",
                                        "a calm forehead", "resting lips", "a straight mouth")),
    "blank_stare": (("neutral",), (), ("a blank stare", "a level gaze", "an unmoving mouth")),
}


def cue_shapes(cue: str, *, side: str = "R", weight: float = 1.0) -> np.ndarray:
    """[52] shapes a facial-feature cue adds (unilateral ``S`` actions go to ``side``)."""
    if cue not in CUES:
        raise InvalidInputError(f"unknown cue {cue!r} (accepted: {', '.join(CUES)})")
    aus = [(au, INTENSITY_LETTERS[letter] * weight, side if s else "") for au, letter, s in CUES[cue][1]]
    return au_vector(aus)


_PHRASE_RE = [(cue, re.compile(r"\b" + re.escape(p.split(" ", 1)[1] if p.startswith(("a ", "an "))
                                                 else p) + r"\b"))
              for cue, (_, _, phrases) in CUES.items() for p in phrases]
_SIDE_RE = re.compile(r"\b(left|right)\b")


def find_cues(text: str) -> list:
    """The cue names whose phrases occur in ``text`` (case-insensitive), in CUES order, no repeats."""
    low = str(text).lower()
    seen = []
    for cue, rx in _PHRASE_RE:
        if cue not in seen and rx.search(low):
            seen.append(cue)
    return seen


def _side_of(text: Optional[str]) -> Optional[str]:
    if not text:
        return None
    m = _SIDE_RE.search(str(text).lower())
    return None if m is None else ("L" if m.group(1) == "left" else "R")


def _as_dist(dist8) -> np.ndarray:
    if isinstance(dist8, Mapping):
        d = np.zeros(N_EMOTIONS, dtype=np.float64)
        for k, v in dist8.items():
            d[EMOTIONS.index(_check_emotion(k))] = float(v)
    else:
        d = np.asarray(dist8, dtype=np.float64).reshape(-1)
    if d.shape != (N_EMOTIONS,):
        raise InvalidInputError(f"emotion distribution needs {N_EMOTIONS} values ({', '.join(EMOTIONS)}), "
                                f"got {d.shape[0]}")
    if not np.all(np.isfinite(d)) or np.any(d < 0) or d.sum() <= 0:
        raise InvalidInputError(f"emotion distribution must be finite, >= 0 and not all zero, got {d.tolist()}")
    return d


def prior(dist8, intensity: float = 1.0, *, rng: Optional[np.random.Generator] = None,
          text: Optional[str] = None, side: Optional[str] = None) -> np.ndarray:
    """FACS prior for an 8-emotion distribution: [52] MediaPipe-order weights in [0, 1].

    Each emotion's EMFACS prototype is scaled by ``intensity`` and by its share relative to the
    dominant emotion, and the emotions are combined with a probabilistic OR. With ``rng``: per-sample
    style noise (per-AU gain, small left/right asymmetry, a random side for contempt). With
    ``text``: facial-feature phrases in it (``find_cues``) add their shapes ("wide eyes" -> eyeWide,
    "clenched jaw" -> mouthPress ...); the words left/right choose the side of one-sided actions.
    """
    d = _as_dist(dist8)
    intensity = _check_intensity(intensity)
    side = side or _side_of(text) or (("L", "R")[int(rng.integers(2))] if rng is not None else "R")
    a = d / d.max()
    keep = np.ones(N_MEDIAPIPE, dtype=np.float64)
    for e, share in zip(EMOTIONS, a):
        if share <= 0 or not PROTOTYPES_AU[e]:
            continue
        aus = _proto_aus(e, side)
        if rng is not None:  # style: each AU's gain varies per sample
            aus = [(au, w * float(np.clip(rng.normal(1.0, 0.18), 0.5, 1.5)), s) for au, w, s in aus]
        keep *= 1.0 - np.clip(au_vector(aus) * share * intensity, 0, 1)
    if text:
        for cue in find_cues(text):
            keep *= 1.0 - np.clip(cue_shapes(cue, side=side, weight=0.5 + 0.5 * intensity), 0, 1)
    out = 1.0 - keep
    if rng is not None:
        # left/right asymmetry: a small gain difference between the two sides of every pair
        asym = float(rng.normal(0.0, 0.04))
        for name, i in MEDIAPIPE_INDEX.items():
            if name.endswith("Left"):
                j = MEDIAPIPE_INDEX[mirror_name(name)]
                out[i] *= 1.0 + asym
                out[j] *= 1.0 - asym
        # faint idle activity (blinks, gaze) so no two faces are identical
        idle = rng.random(N_MEDIAPIPE) < 0.08
        out = out + idle * rng.uniform(0.0, 0.08, N_MEDIAPIPE)
    out[MEDIAPIPE_INDEX["_neutral"]] = 0.0
    return np.clip(out, 0.0, 1.0).astype(np.float32)
