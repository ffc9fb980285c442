"""The FACS prior of the offline data builder: a mix of the EMFACS emotion prototypes (owned by
:mod:`emo3d.facs`) plus facial-feature phrases ("cues") that the text generator writes and
:func:`find_cues` reads back.

The offline builder needs blendshape weights *before* it renders a face (the paper got them from
MediaPipe on DALL-E images; we render our avatar with these weights and read MediaPipe back).
The prior mixes emotions with a probabilistic OR so a blend never leaves [0, 1]:
``w = 1 - prod_e(1 - a_e * I * proto_e)``, ``a_e = d_e / max(d)``.
"""
from __future__ import annotations

import re
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.facs import (INTENSITY_LETTERS, PROTOTYPES_AU, au_vector, check_emotion, check_intensity, prototype_aus,
                        prototype_vector)
from emo3d.schema import EMOTIONS, MEDIAPIPE_INDEX, N_EMOTIONS, N_MEDIAPIPE, mirror_name

__all__ = ["CUES", "cue_shapes", "find_cues", "prior"]


# --- facial-feature phrases ("cues") ---------------------------------------------------------
# cue -> (emotions it belongs to, AUs it adds, surface noun phrases). Phrases are what the text
# generator writes and what ``find_cues`` reads back, so texts and priors agree.
CUES: Dict[str, Tuple[Tuple[str, ...], Tuple[Tuple[int, str, str], ...], Tuple[str, ...]]] = {
    "smile": (("happiness",), ((12, "D", ""), (6, "B", "")),
              ("a broad smile", "a wide smile", "a beaming smile", "a bright grin", "a wide grin", "a warm smile",
               "a toothy grin", "an ear-to-ear grin", "a radiant smile", "an upturned mouth", "a dazzling smile",
               "a huge grin", "a big, open smile", "a sunny smile", "a delighted grin", "an irrepressible grin",
               "a megawatt smile", "a cheek-to-cheek grin", "a generous smile", "upturned lips",
               "mouth corners pulled up high", "a contagious grin")),
    "raised_cheeks": (("happiness",), ((6, "D", ""),),
                      ("raised cheeks", "lifted cheeks", "round, raised cheeks", "plumped cheeks",
                       "cheeks pushed high", "cheeks bunched up under the eyes", "rounded, lifted cheekbones",
                       "apple-round cheeks")),
    "crinkled_eyes": (("happiness",), ((6, "C", ""), (7, "B", "")),
                      ("crinkled eyes", "eyes crinkled at the corners", "smiling eyes",
                       "crow's feet around the eyes", "laughter lines fanning from the eyes",
                       "eyes narrowed into happy crescents", "creased, merry eyes",
                       "eyes squeezed into half-moons")),
    "sparkling_eyes": (("happiness", "surprise"), ((5, "A", ""),),
                       ("sparkling eyes", "bright eyes", "shining eyes", "eyes alight", "twinkling eyes",
                        "glittering eyes", "gleaming eyes", "luminous eyes", "eyes full of light")),
    "laughing_mouth": (("happiness",), ((12, "D", ""), (26, "B", "")),
                       ("a laughing open mouth", "lips parted in laughter", "a mouth open in laughter",
                        "lips pulled wide in a laugh", "teeth flashing in laughter")),
    "dimples": (("happiness",), ((14, "C", ""), (12, "B", "")),
                ("dimpled cheeks", "deep dimples", "dimples showing in both cheeks", "deep-set dimples")),
    "wide_eyes": (("surprise", "fear"), ((5, "D", ""),),
                  ("wide eyes", "wide-open eyes", "eyes wide open", "staring eyes", "saucer-like eyes",
                   "bulging eyes", "startled eyes", "eyes stretched wide", "round, staring eyes", "enormous eyes",
                   "eyes like dinner plates", "widened eyes", "eyes as wide as saucers", "huge, unblinking eyes",
                   "popping eyes", "white showing all around the irises", "fully opened eyes")),
    "raised_brows": (("surprise", "fear"), ((1, "D", ""), (2, "D", "")),
                     ("raised eyebrows", "arched brows", "lifted eyebrows", "high-arched eyebrows",
                      "eyebrows shot up", "brows raised high", "brows shooting toward the hairline",
                      "eyebrows climbing the forehead", "sharply lifted brows", "eyebrows hiked high",
                      "elevated eyebrows", "brows arched toward the hairline")),
    "open_mouth": (("surprise", "fear"), ((26, "C", ""), (25, "B", "")),
                   ("an open mouth", "a gaping mouth", "a mouth agape", "a slack jaw", "a wide-open mouth",
                    "a mouth hanging open", "lips fallen open", "an open, silent mouth")),
    "dropped_jaw": (("surprise",), ((27, "C", ""),),
                    ("a dropped jaw", "a jaw hanging open", "a jaw dropped in shock", "a slackened jaw",
                     "a loosened, hanging jaw")),
    "round_mouth": (("surprise",), ((22, "C", ""), (26, "B", "")),
                    ("a round O-shaped mouth", "lips rounded into an O", "an O-shaped mouth",
                     "a mouth shaped like an O", "rounded lips")),
    "parted_lips": (("surprise", "fear", "sadness"), ((25, "C", ""),),
                    ("parted lips", "slightly parted lips", "a slightly open mouth", "lips slightly apart",
                     "a small gap between the lips", "lips barely apart")),
    "downturned_mouth": (("sadness", "disgust"), ((15, "D", ""),),
                         ("a downturned mouth", "drooping mouth corners", "down-turned lips", "a sagging mouth",
                          "a turned-down mouth", "lips that droop at the corners",
                          "a mouth pulled down at the corners", "downward-curving lips", "a frowning mouth",
                          "corners of the mouth tugged downward", "an inverted smile",
                          "a mouth set in a sorrowful curve", "a mouth sagging at the corners",
                          "lips curved sadly downward")),
    "heavy_lids": (("sadness",), ((43, "B", ""), (64, "B", "")),
                   ("heavy eyelids", "drooping eyelids", "half-closed eyes", "tired, heavy eyes",
                    "weary, hooded eyes", "hooded, heavy lids", "eyelids at half-mast", "sleepy, drooping lids",
                    "weighted eyelids", "lowered eyelids", "low, heavy lids", "puffy, heavy eyelids",
                    "swollen lids")),
    "inner_brows": (("sadness", "fear"), ((1, "D", ""), (4, "A", "")),
                    ("upturned inner brows", "brows drawn up in the middle", "a pained brow",
                     "brows pinched upward in the middle", "a worried, tented brow",
                     "inner eyebrows raised in distress", "slanted, upturned brows", "an oblique, sorrowful brow",
                     "brows knitted upward in sorrow", "a forehead creased with worry")),
    "trembling_chin": (("sadness",), ((17, "D", ""),),
                       ("a trembling chin", "a quivering chin", "a puckered chin", "a wobbling chin",
                        "a chin crumpling with emotion", "a shaking chin")),
    "downcast_eyes": (("sadness",), ((64, "D", ""), (43, "A", "")),
                      ("downcast eyes", "eyes cast down", "a lowered gaze", "eyes fixed on the ground",
                       "a downward gaze", "eyes lowered to the floor", "an averted, downward look",
                       "eyes staring at the floor", "eyes turned away", "a gaze dropped to the hands")),
    "pout": (("sadness",), ((17, "C", ""), (18, "B", ""), (15, "B", "")),
             ("a pouting lower lip", "a quivering lower lip", "a slight pout", "a protruding lower lip",
              "a sulky pout", "a trembling bottom lip")),
    "teary_eyes": (("sadness",), ((43, "A", ""),),
                   ("teary eyes", "glistening, wet eyes", "red-rimmed eyes", "tear-filled eyes", "watery eyes",
                    "eyes brimming with tears", "tear-streaked cheeks", "bloodshot, tearful eyes", "moist eyes",
                    "eyes swimming with tears", "eyes glazed with tears", "damp eyelashes",
                    "tears pooling in the eyes")),
    "furrowed_brow": (("anger", "fear", "disgust"), ((4, "D", ""),),
                      ("a furrowed brow", "knitted brows", "a deep frown line", "lowered brows",
                       "a creased forehead", "a scowl", "drawn-together brows", "a heavy frown",
                       "a deeply furrowed forehead", "beetled brows", "brows drawn low", "a knotted brow",
                       "a lined, furrowed forehead", "brows slammed together", "a thunderous frown",
                       "vertical creases between the brows", "a pinched forehead")),
    "narrowed_eyes": (("anger", "disgust", "contempt"), ((7, "D", ""),),
                      ("narrowed eyes", "squinting eyes", "slitted eyes", "eyes narrowed to slits",
                       "eyes reduced to slits", "narrow, suspicious eyes", "tightened eyes",
                       "eyes narrowing sharply")),
    "glare": (("anger",), ((4, "C", ""), (5, "C", ""), (7, "B", "")),
              ("a hard glare", "a piercing stare", "burning eyes", "a fiery glare", "a smouldering stare",
               "a fixed, hostile stare", "blazing eyes")),
    "clenched_jaw": (("anger",), ((24, "D", ""), (17, "B", "")),
                     ("a clenched jaw", "a tight jaw", "a set jaw", "gritted teeth", "a jutting jaw",
                      "a jaw clenched tight", "a rigid jaw", "clenched teeth", "a locked jaw",
                      "bunched jaw muscles", "a tensed jawline", "grinding teeth")),
    "pressed_lips": (("anger", "contempt"), ((24, "D", ""), (23, "C", "")),
                     ("tightly pressed lips", "thin, pressed lips", "lips pressed into a line",
                      "lips pressed tightly together", "a compressed mouth", "a hard, thin mouth",
                      "lips drawn into a tight line", "a tight-lipped mouth")),
    "flared_nostrils": (("anger", "disgust"), ((9, "B", ""),),
                        ("flared nostrils", "flaring nostrils", "nostrils flared wide", "dilated nostrils",
                         "nostrils flaring with each breath")),
    "bared_teeth": (("anger",), ((10, "D", ""), (16, "C", ""), (25, "C", "")),
                    ("bared teeth", "teeth bared in a snarl", "teeth showing in a snarl", "a snarling mouth",
                     "a vicious snarl")),
    "wrinkled_nose": (("disgust",), ((9, "E", ""),),
                      ("a wrinkled nose", "a scrunched nose", "a crinkled nose", "a nose wrinkled in revulsion",
                       "a crumpled nose", "a nose scrunched in disgust", "a puckered nose",
                       "creases across the bridge of the nose")),
    "curled_lip": (("disgust", "contempt"), ((10, "D", ""),),
                   ("a curled upper lip", "a raised upper lip", "a lip curled in distaste",
                    "an upper lip curled back", "a lifted upper lip", "a sneering upper lip",
                    "an upper lip twisted in distaste", "a lip curled in scorn",
                    "a contemptuous curl of the upper lip", "a raised, twisted lip")),
    "grimace": (("disgust", "fear"), ((20, "C", ""), (10, "B", "")),
                ("a grimace", "a pained grimace", "a tight grimace", "a wincing grimace", "a tense grimace",
                 "a strained grimace", "a contorted mouth")),
    "stretched_lips": (("fear",), ((20, "D", ""),),
                       ("stretched lips", "lips pulled back tightly", "a tense, stretched mouth",
                        "a mouth stretched sideways", "trembling lips", "lips stretched thin",
                        "lips drawn back in terror", "a tense, trembling mouth", "lips stretched toward the ears",
                        "a taut mouth")),
    "smirk": (("contempt",), ((12, "C", "S"), (14, "C", "S")),
              ("a smirk", "a lopsided smirk", "a half smile", "a one-sided smirk", "a crooked sneer",
               "an asymmetrical smirk", "a sly smirk", "a superior smirk", "a twisted half smile",
               "a thin, mocking smile", "a sardonic half smile", "a smug little smirk", "a knowing smirk",
               "a self-satisfied smirk", "a cold half smile", "a faint, superior smirk",
               "a mouth twisted to one side", "a lopsided, sneering grin", "a tight, one-sided smile")),
    "rolled_eyes": (("contempt",), ((63, "C", ""),),
                    ("rolling eyes", "eyes rolled upward", "an eye roll", "eyes turned skyward",
                     "eyes rolling toward the ceiling", "eyes rolled toward the heavens",
                     "a slow, deliberate eye roll", "eyes flicked upward in exasperation")),
    "raised_chin": (("contempt",), ((17, "B", ""),),
                    ("a raised chin", "a lifted chin", "a chin held high", "an uptilted chin",
                     "a haughtily lifted chin", "a tilted-up chin", "an elevated chin", "a chin jutting upward",
                     "a head held haughtily high")),
    "relaxed_face": (("neutral",), (),
                     ("a relaxed brow", "a still face", "soft, steady eyes", "a closed, relaxed mouth",
                      "an even gaze", "smooth features", "a calm forehead", "resting lips", "a straight mouth",
                      "a smooth, unlined forehead", "loose, resting cheeks", "softly closed lips",
                      "a neutral mouth", "level eyebrows", "an unhurried gaze", "a relaxed jaw", "unfurrowed brows",
                      "quiet, attentive eyes", "an untroubled face", "evenly set lips", "an open, unguarded face",
                      "a composed mouth", "loose facial muscles", "a still, even brow", "gently closed lips",
                      "an untensed jaw", "calm, level eyes", "a placid mouth")),
    "blank_stare": (("neutral",), (),
                    ("a blank stare", "a level gaze", "an unmoving mouth", "a vacant stare", "an unblinking gaze",
                     "a flat, unreadable gaze", "a distant look", "an expressionless gaze",
                     "a neutral, steady look", "an impassive stare", "a faraway look", "a noncommittal gaze")),
}


def cue_shapes(cue: str, *, side: str = "R", weight: float = 1.0) -> np.ndarray:
    """[52] shapes a facial-feature cue adds (unilateral ``S`` actions go to ``side``)."""
    if cue not in CUES:
        raise InvalidInputError(f"unknown cue {cue!r} (accepted: {', '.join(CUES)})")
    aus = [(au, INTENSITY_LETTERS[letter] * weight, side if s else "") for au, letter, s in CUES[cue][1]]
    return au_vector(aus)


def _phrase_core(p: str) -> str:
    """A phrase without its leading article: "a furrowed brow" is read in "a deeply furrowed brow"."""
    return p.split(" ", 1)[1] if p.startswith(("a ", "an ")) else p


# one alternation per cue (longest phrases first): find_cues runs once per sample in the builder
_CUE_RE = [(cue, re.compile(r"\b(?:" + "|".join(re.escape(_phrase_core(p).lower()) for p in
                                                 sorted(phrases, key=len, reverse=True)) + r")\b"))
           for cue, (_, _, phrases) in CUES.items()]
_SIDE_RE = re.compile(r"\b(left|right)\b")


def find_cues(text: str) -> list:
    """The cue names whose phrases occur in ``text`` (case-insensitive), in CUES order, no repeats."""
    low = str(text).lower()
    return [cue for cue, rx in _CUE_RE if rx.search(low)]


def _side_of(text: Optional[str]) -> Optional[str]:
    if not text:
        return None
    m = _SIDE_RE.search(str(text).lower())
    return None if m is None else ("L" if m.group(1) == "left" else "R")


def _as_dist(dist8) -> np.ndarray:
    if isinstance(dist8, Mapping):
        d = np.zeros(N_EMOTIONS, dtype=np.float64)
        for k, v in dist8.items():
            d[EMOTIONS.index(check_emotion(k))] = float(v)
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
    intensity = check_intensity(intensity)
    side = side or _side_of(text) or (("L", "R")[int(rng.integers(2))] if rng is not None else "R")
    a = d / d.max()
    keep = np.ones(N_MEDIAPIPE, dtype=np.float64)
    for e, share in zip(EMOTIONS, a):
        if share <= 0 or not PROTOTYPES_AU[e]:
            continue
        if rng is None:
            vec = prototype_vector(e, side)
        else:       # style: each AU's gain varies per sample
            vec = au_vector([(au, w * float(np.clip(rng.normal(1.0, 0.18), 0.5, 1.5)), s)
                             for au, w, s in prototype_aus(e, side)])
        keep *= 1.0 - np.clip(vec * share * intensity, 0, 1)
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
