"""Emotion vocabulary from NRC EmoLex (S. M. Mohammad & P. D. Turney, "Crowdsourcing a Word-Emotion
Association Lexicon", Computational Intelligence 29(3), 2013), read offline from the JSON bundled in
the ``nrclex`` package.

EmoLex has eight emotions (anger, anticipation, disgust, fear, joy, sadness, surprise, trust) and two
sentiments; emo3d's eight (``schema.EMOTIONS``) are mapped as joy -> happiness, the four shared
names as themselves, contempt <- words tagged both anger and disgust (or scorn-like seeds), and
neutral <- words with no emotion tag. Word lists start from seed words a face can show and keep
only those EmoLex agrees with (plus a few it lacks, listed in ``_UNLISTED_OK``).
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Dict, Tuple

import numpy as np

from emo3d.errors import AssetError, InvalidInputError
from emo3d.schema import EMOTIONS, EMOTION_INDEX, N_EMOTIONS

_EMOLEX_TO_OURS = {"joy": "happiness", "surprise": "surprise", "sadness": "sadness", "anger": "anger",
                   "disgust": "disgust", "fear": "fear"}

# seed adjectives / nouns per emotion (filtered through EmoLex below)
_ADJ = {
    "neutral": "calm composed impassive expressionless blank placid neutral serene unreadable still "
               "unbothered indifferent detached relaxed pensive",
    "happiness": "joyful happy cheerful delighted elated glad jubilant radiant merry amused pleased "
                 "content ecstatic gleeful blissful beaming",
    "surprise": "surprised astonished amazed stunned startled shocked dumbfounded astounded "
                "flabbergasted bewildered awestruck",
    "sadness": "sad sorrowful melancholy gloomy mournful miserable heartbroken despondent tearful "
               "dejected forlorn grieving wistful downcast",
    "anger": "angry furious enraged irate livid indignant resentful hostile incensed irritated "
             "annoyed fuming seething wrathful",
    "disgust": "disgusted revolted repulsed sickened nauseated appalled queasy repelled offended",
    "fear": "afraid frightened terrified scared anxious panicked horrified nervous fearful "
            "alarmed petrified uneasy",
    "contempt": "contemptuous scornful disdainful haughty arrogant smug condescending dismissive "
                "derisive sneering superior mocking",
}
_NOUN = {
    "neutral": "calm composure indifference neutrality stillness detachment reserve ease",
    "happiness": "joy happiness delight glee bliss cheer elation contentment amusement gladness "
                 "jubilation",
    "surprise": "surprise astonishment amazement shock disbelief bewilderment awe wonder",
    "sadness": "sadness sorrow grief melancholy despair misery heartache gloom anguish dejection",
    "anger": "anger fury rage wrath outrage indignation resentment hostility irritation annoyance",
    "disgust": "disgust revulsion repulsion distaste loathing nausea aversion abhorrence",
    "fear": "fear terror dread panic anxiety alarm horror fright apprehension",
    "contempt": "contempt scorn disdain derision mockery condescension arrogance superiority",
}
# seeds EmoLex does not list (or lists without the tag) that still clearly name the emotion
_UNLISTED_OK = set("""calm composed impassive expressionless blank placid neutral serene unreadable still
unbothered indifferent detached relaxed pensive composure indifference neutrality stillness detachment
reserve ease gleeful blissful beaming amazed startled dumbfounded astounded flabbergasted bewildered
awestruck astonished awe wonder disbelief sad heartbroken despondent forlorn grieving wistful downcast
irritated annoyed fuming seething disgusted revolted repulsed sickened nauseated appalled queasy repelled
scared panicked petrified fearful alarmed uneasy scornful disdainful dismissive derisive sneering
superior condescending smug contemptuous haughty arrogant mocking scorn disdain contempt derision
mockery condescension arrogance superiority distaste aversion""".split())


@lru_cache(maxsize=1)
def emolex() -> Dict[str, Tuple[str, ...]]:
    """{word: EmoLex tags}, from the JSON inside the ``nrclex`` package (offline)."""
    try:
        from importlib import resources
        with resources.files("nrclex.data").joinpath("nrc_en.json").open("r", encoding="utf-8") as f:
            data = json.load(f)
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise AssetError("NRC EmoLex not found: install the `nrclex` package (it bundles nrc_en.json)") from exc
    return {w: tuple(t) for w, t in data.items()}


def word_distribution(word: str) -> np.ndarray:
    """An 8-emotion distribution (``schema.EMOTIONS`` order, sums to 1) for one word from its EmoLex tags."""
    w = str(word).strip().lower()
    if not w:
        raise InvalidInputError("word_distribution needs a non-empty word")
    tags = set(emolex().get(w, ()))
    d = np.zeros(N_EMOTIONS, dtype=np.float64)
    for tag, ours in _EMOLEX_TO_OURS.items():
        if tag in tags:
            d[EMOTION_INDEX[ours]] = 1.0
    if {"anger", "disgust"} <= tags:
        d[EMOTION_INDEX["contempt"]] = 0.5
    for e in EMOTIONS:  # a seed word always carries its own emotion
        if w in _ADJ[e].split() or w in _NOUN[e].split():
            d[EMOTION_INDEX[e]] = max(d[EMOTION_INDEX[e]], 1.5)
    if d.sum() == 0:
        d[EMOTION_INDEX["neutral"]] = 1.0
    return (d / d.sum()).astype(np.float32)


def _filtered(table: Dict[str, str], emotion: str) -> Tuple[str, ...]:
    lex = emolex()
    tag = {v: k for k, v in _EMOLEX_TO_OURS.items()}.get(emotion)
    out = []
    for w in table[emotion].split():
        tags = lex.get(w)
        if w in _UNLISTED_OK or (tags is not None and (tag is None or tag in tags)):
            out.append(w)
    return tuple(out)


@lru_cache(maxsize=None)
def adjectives(emotion: str) -> Tuple[str, ...]:
    """Adjectives for ``emotion`` that EmoLex agrees with."""
    if emotion not in _ADJ:
        raise InvalidInputError(f"unknown emotion {emotion!r} (accepted: {', '.join(EMOTIONS)})")
    return _filtered(_ADJ, emotion)


@lru_cache(maxsize=None)
def nouns(emotion: str) -> Tuple[str, ...]:
    """Nouns for ``emotion`` that EmoLex agrees with."""
    if emotion not in _NOUN:
        raise InvalidInputError(f"unknown emotion {emotion!r} (accepted: {', '.join(EMOTIONS)})")
    return _filtered(_NOUN, emotion)


def primitive_words(emotion: str) -> Tuple[str, ...]:
    """Single emotion words for the primitive set (nouns first, then adjectives)."""
    return nouns(emotion) + adjectives(emotion)


MULTILINGUAL_FILE = "multilingual_emotion_words.json"


@lru_cache(maxsize=None)
def multilingual_words() -> Dict[str, Dict[str, Tuple[str, ...]]]:
    """Everyday emotion words in ten languages (fr es de it pt ru zh ja ar fa), emotion -> language -> words,
    from ``emo3d/data/multilingual_emotion_words.json`` (written for emo3d)."""
    from pathlib import Path
    path = Path(__file__).resolve().parent / MULTILINGUAL_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))["words"]
    except (OSError, ValueError, KeyError) as e:
        raise AssetError(f"{path} is missing or not the multilingual word list (emotion -> language -> words): {e}") \
            from None
    unknown = set(raw) - set(EMOTIONS)
    if unknown:
        raise AssetError(f"{path}: unknown emotions {sorted(unknown)} (accepted: {', '.join(EMOTIONS)})")
    return {e: {lang: tuple(ws) for lang, ws in langs.items()} for e, langs in raw.items()}
