"""Offline emotion descriptions in the paper's style (Figure 7, Tables 3-4).

A description names a subject with age and gender, the dominant emotion (and a blended second one)
with EmoLex vocabulary (``dataset.lexicon``), an intensity word, and facial-feature phrases taken
from ``emo3d.data.facs.CUES`` (so ``facs.prior(text=...)`` can read them back). Many sentence shapes,
subject phrasings and word choices keep templates from showing; ``describe`` returns three different
texts for one face. Everything is drawn from the given ``numpy`` Generator: same seed, same texts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.schema import EMOTIONS, N_EMOTIONS

from . import lexicon
from .facs import CUES

__all__ = ["Subject", "describe", "intensity_level", "INTENSITY_NAMES"]

INTENSITY_NAMES = ("slight", "moderate", "strong")

_ADV = (("slightly", "faintly", "mildly", "a little", "somewhat", "quietly", "subtly", "vaguely"),
        ("clearly", "visibly", "noticeably", "plainly", "openly", "evidently", "obviously", "rather"),
        ("deeply", "intensely", "utterly", "overwhelmingly", "thoroughly", "completely", "fiercely",
         "extremely", "profoundly", "wildly"))
_IADJ = (("faint", "mild", "subtle", "quiet", "slight", "muted", "gentle", "restrained", "fleeting"),
         ("clear", "evident", "obvious", "visible", "open", "plain", "unmistakable", "genuine", "marked"),
         ("intense", "overwhelming", "raw", "profound", "sheer", "fierce", "utter", "powerful", "extreme",
          "unbridled", "consuming"))
_NEUTRAL_ADV = ("", "", "quietly", "perfectly", "entirely", "calmly")
_BLEND_NOUN = ("tinged with {n}", "mixed with {n}", "laced with {n}", "shading into {n}", "touched by {n}",
               "and {n}")
_BLEND_ADJ = ("and a little {a}", "yet somewhat {a}", "and faintly {a}", "but also {a}", "and slightly {a}")

_AGES = {
    "child": (("a little {g}", "a young {g}", "a small {g}", "a {g} of about eight", "a {g} of six or seven"),
              {"f": "girl", "m": "boy", "p": "child"}),
    "teen": (("a teenage {g}", "a {g} in {p} teens", "a young teenage {g}", "a {g} of about fifteen"),
             {"f": "girl", "m": "boy", "p": "teenager"}),
    "young": (("a young {g}", "a {g} in {p} twenties", "a {g} in {p} early thirties", "a youthful {g}"),
              {"f": "woman", "m": "man", "p": "person"}),
    "middle": (("a middle-aged {g}", "a {g} in {p} forties", "a {g} in {p} fifties", "a {g} of about forty-five"),
               {"f": "woman", "m": "man", "p": "person"}),
    "old": (("an elderly {g}", "an old {g}", "a grey-haired {g}", "a {g} in {p} seventies", "an aging {g}"),
            {"f": "woman", "m": "man", "p": "person"}),
}
_POSS = {"f": "her", "m": "his", "p": "their"}


_LOOKS = {  # visible traits of the same face, any gender / age unless listed
    "any": ("freckled", "dark-haired", "curly-haired", "red-haired", "blonde", "brown-eyed", "blue-eyed",
            "pale", "tanned", "round-faced", "thin-faced", "bespectacled", "black-haired"),
    "m_adult": ("bearded", "mustached", "stubbled", "clean-shaven"),
    "m_older": ("bald", "balding"),
    "older": ("grey-haired", "wrinkled", "white-haired"),
}


@dataclass(frozen=True)
class Subject:
    """Who the description is about: age group, gender ("f", "m" or "p" for unspecified) and an
    optional visible trait ("freckled", "bearded" ...)."""
    age: str
    gender: str
    look: str = ""

    def __post_init__(self):
        if self.age not in _AGES:
            raise InvalidInputError(f"age must be one of {', '.join(_AGES)}, got {self.age!r}")
        if self.gender not in _POSS:
            raise InvalidInputError(f"gender must be 'f', 'm' or 'p', got {self.gender!r}")

    @property
    def poss(self) -> str:
        return _POSS[self.gender]

    def phrase(self, rng: np.random.Generator, *, definite: bool = False, short: bool = False) -> str:
        forms, nouns = _AGES[self.age]
        k = 0 if short or rng.random() < 0.5 else int(rng.integers(len(forms)))  # short forms half the time
        s = forms[k].format(g=nouns[self.gender], p=self.poss)
        rest = s.split(" ", 1)[1]
        if self.look and self.look not in rest and rng.random() < 0.5:
            rest = f"{self.look} {rest}"
        return f"the {rest}" if definite else f"{_article(rest)} {rest}"

    @staticmethod
    def sample(rng: np.random.Generator) -> "Subject":
        age = ("child", "teen", "young", "middle", "old")[int(rng.choice(5, p=[0.08, 0.12, 0.35, 0.28, 0.17]))]
        gender = ("f", "m", "p")[int(rng.choice(3, p=[0.47, 0.45, 0.08]))]
        looks = list(_LOOKS["any"])
        if gender == "m" and age in ("young", "middle", "old"):
            looks += _LOOKS["m_adult"]
        if gender == "m" and age in ("middle", "old"):
            looks += _LOOKS["m_older"]
        if age in ("middle", "old"):
            looks += _LOOKS["older"]
        look = looks[int(rng.integers(len(looks)))] if rng.random() < 0.6 else ""
        return Subject(age, gender, look)


def intensity_level(intensity: float) -> int:
    """0 slight (< 0.5), 1 moderate (< 0.8), 2 strong."""
    return 0 if intensity < 0.5 else (1 if intensity < 0.8 else 2)


def _pick(rng: np.random.Generator, seq: Sequence[str]) -> str:
    return seq[int(rng.integers(len(seq)))]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


_CUES_BY_EMOTION = {e: tuple(c for c, (emos, _, _) in CUES.items() if e in emos) for e in EMOTIONS}


class _Writer:
    """One text: picks words for a sample's emotions and fills one sentence shape."""

    def __init__(self, rng, subject: Subject, e1: str, e2: Optional[str], level: int, side: str):
        self.rng, self.subject, self.e1, self.e2, self.level, self.side = rng, subject, e1, e2, level, side

    def subj(self, definite: Optional[bool] = None, *, possessive: bool = False) -> str:
        if definite is None:
            definite = bool(self.rng.random() < 0.3)
        s = self.subject.phrase(self.rng, definite=definite, short=possessive)
        return s + "'s" if possessive else s

    def adv(self) -> str:
        if self.e1 == "neutral":
            return _pick(self.rng, _NEUTRAL_ADV)
        return _pick(self.rng, _ADV[self.level])

    def adj(self) -> str:
        a = f"{self.adv()} {_pick(self.rng, lexicon.adjectives(self.e1))}".strip()
        if self.e2:
            a += " " + _pick(self.rng, _BLEND_ADJ).format(a=_pick(self.rng, lexicon.adjectives(self.e2)))
        return a

    def noun(self) -> str:
        n = _pick(self.rng, lexicon.nouns(self.e1))
        if self.e1 != "neutral":
            n = f"{_pick(self.rng, _IADJ[self.level])} {n}"
        if self.e2:
            n += " " + _pick(self.rng, _BLEND_NOUN).format(n=_pick(self.rng, lexicon.nouns(self.e2)))
        return n

    def features(self, k: int) -> List[str]:
        cues = list(_CUES_BY_EMOTION[self.e1])
        picked = [cues[i] for i in self.rng.permutation(len(cues))[:k]]
        if self.e2 and self.rng.random() < 0.5 and _CUES_BY_EMOTION[self.e2]:
            extra = [c for c in _CUES_BY_EMOTION[self.e2] if c not in picked]
            if extra:
                picked[-1:] = [_pick(self.rng, extra)]
        out = []
        for cue in picked:
            p = _pick(self.rng, CUES[cue][2])
            if cue == "smirk" and self.rng.random() < 0.6:
                p += _pick(self.rng, (" on the {s} side", " tugging at the {s} corner of the mouth",
                                      " raised on the {s}")).format(s=self.side)
            out.append(p)
        return out

    def feats(self, k: int) -> str:
        if k == 2 and self.rng.random() < 0.6:  # keep texts near the paper's ~12 words
            k = 1
        f = self.features(k)
        return f[0] if len(f) == 1 else ", ".join(f[:-1]) + " and " + f[-1]

    def write(self, shape: int) -> str:
        p = self.subject.poss
        if shape == 0:
            return f"{_cap(self.subj())} looks {self.adj()}, with {self.feats(2)}."
        if shape == 1:
            return f"{_cap(p)} face shows {self.noun()}: {self.feats(2)}."
        if shape == 2:
            return f"{_cap(self.feats(2))} give {self.subj()} a look of {self.noun()}."
        if shape == 3:
            return f"{_cap(self.subj())} is {self.adj()}; {p} face has {self.feats(1)}."
        if shape == 4:
            return f"{_cap(self.noun())} is written across {p} face, with {self.feats(2)}."
        if shape == 5:
            return f"With {self.feats(2)}, {self.subj()} appears {self.adj()}."
        if shape == 6:
            return f"{_cap(self.subj(possessive=True))} face conveys {self.noun()}, with {self.feats(1)}."
        if shape == 7:
            return f"{_cap(self.subj())} stares in {self.noun()}, {self.feats(1)}."
        if shape == 8:
            return f"{_cap(self.subj(possessive=True))} expression is one of {self.noun()}, with {self.feats(1)}."
        if shape == 9:
            return f"{_cap(self.subj())} reacts with {self.noun()}, showing {self.feats(2)}."
        if shape == 10:
            a = self.adj()
            return f"{_cap(self.subj())} wears {_article(a)} {a} expression, with {self.feats(1)}."
        if shape == 11:
            return f"The human face expresses {self.noun()} through {self.feats(2)}."
        if shape == 12:
            return f"The emotion of {self.noun()} shows in {p} face: {self.feats(1)}."
        if shape == 13:
            return f"{_cap(self.subj())} cannot hide {p} {self.noun()}: {self.feats(2)}."
        if shape == 14:
            return f"Up close, {self.subj()} seems {self.adj()}, with {self.feats(1)}."
        if shape == 15:
            return f"{_cap(self.subj(True))} has {self.feats(1)}, a face of {self.noun()}."
        if shape == 16:
            return f"{_cap(self.adj())}, {self.subj()} shows {self.feats(2)}."
        if shape == 17:
            return f"There is {self.noun()} in {p} face, with {self.feats(2)}."
        if shape == 18:
            return f"{_pick(self.rng, ('Overcome by', 'Full of', 'Gripped by', 'Caught in'))} {self.noun()}, " \
                   f"{self.subj()} shows {self.feats(1)}."
        return f"In {p} face, {self.feats(2)} speak of {self.noun()}."


N_SHAPES = 20


def describe(dist8, intensity: float, rng: np.random.Generator, *, subject: Optional[Subject] = None,
             side: str = "right", n: int = 3) -> Tuple[str, ...]:
    """``n`` different descriptions of one face with emotion distribution ``dist8`` (8 floats)."""
    d = np.asarray(dist8, dtype=np.float64).reshape(-1)
    if d.shape != (N_EMOTIONS,) or not np.all(np.isfinite(d)) or np.any(d < 0) or d.sum() <= 0:
        raise InvalidInputError(f"describe needs 8 finite non-negative emotion values, not all zero; got {d.tolist()}")
    if side not in ("left", "right"):
        raise InvalidInputError(f"side must be 'left' or 'right', got {side!r}")
    order = np.argsort(-d, kind="stable")
    e1 = EMOTIONS[int(order[0])]
    e2 = EMOTIONS[int(order[1])] if d[order[1]] >= 0.2 and d[order[1]] > 0 else None
    if e1 != "neutral" and e2 == "neutral":  # "a touch of calm" reads oddly: neutral only dampens
        e2 = None
    subject = subject or Subject.sample(rng)
    level = intensity_level(float(intensity))
    shapes = rng.permutation(N_SHAPES)[:n]
    texts: List[str] = []
    for s in shapes:
        for _ in range(8):  # a different sentence each time
            t = _Writer(rng, subject, e1, e2, level, side).write(int(s))
            if t not in texts:
                break
        texts.append(t)
    return tuple(texts)
