"""Hand-written evaluation probes of the text reading (prompt vocabulary, no corpus): out-of-vocabulary
everyday prompts, paraphrase groups and the intensity-word templates.

Owned here so that both the evaluation (:mod:`.evaluate_default`) and the prompt generators
(:mod:`.prompts`, which must avoid the OOV key words) read them without importing each other.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

# (prompt, emotion, key words that carry the emotion: checked against the training vocabulary)
OOV_PROMPTS: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = (
    ("over the moon", "happiness", ("moon",)),
    ("thrilled to bits", "happiness", ("thrilled", "bits")),
    ("totally stoked", "happiness", ("stoked",)),
    ("chuffed", "happiness", ("chuffed",)),
    ("on cloud nine", "happiness", ("cloud", "nine")),
    ("gutted", "sadness", ("gutted",)),
    ("devastated after the breakup", "sadness", ("devastated", "breakup")),
    ("bummed out", "sadness", ("bummed",)),
    ("sobbing uncontrollably", "sadness", ("sobbing", "uncontrollably")),
    ("feeling blue", "sadness", ("blue",)),
    ("incensed", "anger", ("incensed",)),
    ("absolutely enraged", "anger", ("enraged",)),
    ("hopping mad", "anger", ("hopping", "mad")),
    ("pissed off", "anger", ("pissed",)),
    ("outraged", "anger", ("outraged",)),
    ("gobsmacked", "surprise", ("gobsmacked",)),
    ("completely floored", "surprise", ("floored",)),
    ("whoa, no way!", "surprise", ("whoa",)),
    ("blindsided by the news", "surprise", ("blindsided",)),
    ("mind blown", "surprise", ("mind", "blown")),
    ("grossed out", "disgust", ("grossed",)),
    ("yuck, that stinks", "disgust", ("yuck", "stinks")),
    ("eww, gross", "disgust", ("eww", "gross")),
    ("about to puke", "disgust", ("puke",)),
    ("icky", "disgust", ("icky",)),
    ("absolutely terrified", "fear", ("terrified",)),
    ("spooked", "fear", ("spooked",)),
    ("freaked out", "fear", ("freaked",)),
    ("scared out of my wits", "fear", ("wits",)),
    ("creeped out", "fear", ("creeped",)),
    ("snide", "contempt", ("snide",)),
    ("smirking at the loser", "contempt", ("smirking", "loser")),
    ("patronizing", "contempt", ("patronizing",)),
    ("holier-than-thou", "contempt", ("holier-than-thou",)),
    ("scoffing", "contempt", ("scoffing",)),
    ("deadpan", "neutral", ("deadpan",)),
    ("poker-faced", "neutral", ("poker-faced",)),
    ("zoned out", "neutral", ("zoned",)),
    ("unfazed", "neutral", ("unfazed",)),
    ("matter-of-fact", "neutral", ("matter-of-fact",)),
)

PARAPHRASES: Dict[str, Tuple[str, ...]] = {
    "happiness": ("she is really happy", "a big joyful smile", "grinning with delight", "so glad to see you"),
    "sadness": ("he looks really sad", "on the verge of tears", "feeling down and miserable", "sorrowful"),
    "anger": ("she is very angry", "furious and shouting", "red in the face with rage", "mad at everyone"),
    "surprise": ("totally surprised", "caught completely off guard", "astonished", "eyes wide in amazement"),
    "disgust": ("disgusted by the smell", "revolted", "nauseated by the food", "repulsed"),
    "fear": ("scared to death", "terrified of the dark", "frightened", "afraid of what comes next"),
    "contempt": ("looking down on them with contempt", "full of disdain", "a scornful smirk", "sneering"),
    "neutral": ("a calm neutral face", "no expression at all", "relaxed and composed", "a blank stare"),
}

# (emotion, adjective, noun) for the intensity templates; neutral ("calm") must stay calm at every level
INTENSITY_WORDS: Tuple[Tuple[str, str, str], ...] = (
    ("happiness", "happy", "joy"), ("sadness", "sad", "sadness"), ("anger", "angry", "anger"),
    ("surprise", "surprised", "surprise"), ("disgust", "disgusted", "disgust"), ("fear", "scared", "fear"),
    ("contempt", "contemptuous", "contempt"), ("neutral", "calm", "calm"),
)
INTENSITY_TEMPLATES: Tuple[Tuple[str, str], ...] = (
    ("a_hint_of", "a face with a hint of {noun}"), ("slightly", "a slightly {adj} face"),
    ("plain", "an {adj} face"), ("very", "a very {adj} face"), ("extremely", "an extremely {adj} face"),
)
CALM_MAX_L2 = 0.3      # neutral: every level's face within this L2 of the neutral reference

# Nonsense and empty-of-meaning inputs: the default must show a calm face and warn
NONSENSE_PROMPTS: Tuple[str, ...] = (
    "xyzzy", "asdfgh", "qwerty uiop", "blorp zindle", "zxcvbnm", "fhqwhgads", "lorem ipsum dolor", "grzlbx",
    "kkkkkkk", "jjjj jjjj", "plonk wibble frumious", "???", "...", "12345", "#$%&", "vbnm ghjk", "xqzt pflm",
    "ooga booga zorp", "hjkl;", "mmmmmm mmm")
# Everyday sentences with no emotion: neutral is a real answer (calm face)
NEUTRAL_SENTENCES: Tuple[str, ...] = (
    "The meeting starts at ten.", "I'm reading the manual.", "She walked to the bus stop.",
    "Turn left at the second street.", "The report is on the table.", "He is wearing a blue shirt.",
    "We need two more chairs.", "The package arrived this morning.", "It's going to rain tomorrow.",
    "Please close the window.")
# Emoji (alone): the emotion each one must read as
EMOJI_PROMPTS: Tuple[Tuple[str, str], ...] = (
    ("😡", "anger"), ("😭", "sadness"), ("🙂", "happiness"), ("😱", "fear"), ("🤢", "disgust"), ("😏", "contempt"),
    ("😂", "happiness"), ("😮", "surprise"))
# Mixed feelings: both emotions must be among the two strongest
MIXED_PROMPTS: Tuple[Tuple[str, Tuple[str, str]], ...] = (
    ("bittersweet", ("happiness", "sadness")), ("nervous excitement", ("fear", "happiness")),
    ("angry but hurt", ("anger", "sadness")), ("happy but scared", ("happiness", "fear")))
NEUTRAL_REFERENCE = "a neutral face"


def _article(s: str) -> str:
    return re.sub(r"\ban ([^aeiou])", r"a \1", s)


# Hand-written sets of the reader's development (``emo3d/models/text_sets``): read by training, never by the
# runtime. ``description_dev.json``: short out-of-vocabulary descriptions that select the short-text neutral
# offset (their key words are kept out of training like the OOV probe's); ``multilingual_dev.json``: a second
# parallel set (design choices were compared on it; tests/data/multilingual_prompts.json was held out);
# ``multilingual_sentences*.json``: training sentences in English + ten languages (one or more files of the same
# shape, read together by :func:`multilingual_training_rows`).
TEXT_SETS = Path(__file__).resolve().parent / "text_sets"


@lru_cache(maxsize=None)
def text_set(name: str) -> dict:
    """One of the hand-written sets of ``text_sets/`` (``name`` without ``.json``)."""
    from emo3d.errors import AssetError
    path = TEXT_SETS / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise AssetError(f"{path}: cannot read the reader's text set {name!r} ({e})") from None


def multilingual_training_rows() -> Tuple[Tuple[str, ...], Tuple[dict, ...]]:
    """(languages, rows) of every ``text_sets/multilingual_sentences*.json`` (sorted by file name): the
    parallel training sentences, each row ``{"emotion": ..., "en": ..., <language>: ...}``. Raises
    :class:`emo3d.errors.AssetError` naming a file whose languages differ from the first file's or whose row
    lacks one of them or names an unknown emotion."""
    from emo3d.errors import AssetError
    from emo3d.schema import EMOTIONS
    langs: Tuple[str, ...] = ()
    rows = []
    for path in sorted(TEXT_SETS.glob("multilingual_sentences*.json")):
        d = text_set(path.stem)
        if not langs:
            langs = tuple(d["languages"])
        elif tuple(d["languages"]) != langs:
            raise AssetError(f"{path}: languages {d['languages']} differ from {list(langs)} of the first "
                             "multilingual_sentences file; every file lists the same languages in the same order")
        for i, r in enumerate(d["rows"]):
            missing = [x for x in langs if not str(r.get(x, "")).strip()]
            if missing or r.get("emotion") not in EMOTIONS:
                raise AssetError(f"{path}: row {i} has no text for {missing} or an unknown emotion "
                                 f"{r.get('emotion')!r}; accepted emotions: {', '.join(EMOTIONS)}")
            rows.append(r)
    return langs, tuple(rows)


def description_dev() -> Tuple[Tuple[str, str, Tuple[str, ...]], ...]:
    """(text, emotion, key words) of ``description_dev.json`` (same shape as :data:`OOV_PROMPTS`)."""
    return tuple((p["text"], p["emotion"], tuple(p["keys"])) for p in text_set("description_dev")["prompts"])


# The OOV measure: a face counts as the emotion of the nearest FACS prototype
def prototypes() -> Tuple[np.ndarray, List[str]]:
    """[K,51] prototypes at intensity 1 and their emotion labels (contempt on either side)."""
    from emo3d import facs
    from emo3d.schema import EMOTIONS, MEDIAPIPE_NAMES, MODEL_NAMES
    cols = [MEDIAPIPE_NAMES.index(n) for n in MODEL_NAMES]
    vecs, labels = [], []
    for e in EMOTIONS:
        sides = ("R", "L") if e == "contempt" else ("R",)
        for side in sides:
            vecs.append(facs.prototype(e, 1.0, side=side)[cols])
            labels.append(e)
    return np.array(vecs, np.float32), labels


def nearest_emotion(pred: np.ndarray) -> List[str]:
    P, labels = prototypes()
    d = ((pred[:, None, :] - P[None]) ** 2).sum(-1)
    return [labels[i] for i in d.argmin(1)]
