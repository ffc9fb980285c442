"""Offline emotion descriptions in the paper's style (Figure 7, Tables 3-4).

A description names a subject (age, gender or a role such as "plumber", a visible trait, sometimes
clothing), the dominant emotion (and a blended second one) with the words of ``emo3d.data.vocabulary``,
an intensity word, facial-feature phrases taken from ``emo3d.data.facs.CUES`` (so ``facs.prior(text=...)``
can read them back) and, in some sentence shapes, a body clause, what happened, or where the person is.
Many sentence shapes and word choices keep templates from showing and bring the per-emotion word
statistics near the paper's Table 3 (``emo3d.data.stats``); ``describe`` returns three different texts
for one face. Everything is drawn from the given ``numpy`` Generator: same seed, same texts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.schema import EMOTIONS, N_EMOTIONS

from . import vocabulary as voc
from .facs import CUES

__all__ = ["Subject", "describe", "intensity_level", "INTENSITY_NAMES"]

INTENSITY_NAMES = ("slight", "moderate", "strong")

_BLEND_NOUN = ("tinged with {n}", "mixed with {n}", "laced with {n}", "shading into {n}", "touched by {n}",
               "and {n}", "edged with {n}", "with an undercurrent of {n}", "blended with {n}")
_BLEND_ADJ = ("and a little {a}", "yet somewhat {a}", "and faintly {a}", "but also {a}", "and slightly {a}",
              "though partly {a}", "and a touch {a}")
_OVERCOME = ("Overcome by", "Full of", "Gripped by", "Caught in", "Seized by", "Lost in", "Consumed by",
             "Awash with")
IDIOM_SHARE = 0.5      # share of "looks / is / seems ..." predicates that are an idiom (moderate or calm faces)
_NEUTRAL_OPENERS = ("With an air of", "In a state of", "Wrapped in", "With quiet", "Settled in")

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


@dataclass(frozen=True)
class Subject:
    """Who the description is about: age group, gender ("f", "m" or "p" for unspecified), an optional
    visible trait ("freckled", "bearded" ...), an optional role ("plumber", one of
    ``vocabulary.ROLES[age]``) and optional clothing ("in a yellow raincoat")."""
    age: str
    gender: str
    look: str = ""
    role: str = ""
    clothing: str = ""

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
        noun = self.role if self.role and rng.random() < 0.6 else nouns[self.gender]
        s = forms[k].format(g=noun, p=self.poss)
        rest = s.split(" ", 1)[1]
        if self.look and self.look not in rest and rng.random() < 0.5:
            rest = f"{self.look} {rest}"
        if self.clothing and not short and rng.random() < 0.35:
            rest = f"{rest} {self.clothing}"
        return f"the {rest}" if definite else f"{_article(rest)} {rest}"

    @staticmethod
    def sample(rng: np.random.Generator) -> "Subject":
        age = ("child", "teen", "young", "middle", "old")[int(rng.choice(5, p=[0.08, 0.12, 0.35, 0.28, 0.17]))]
        gender = ("f", "m", "p")[int(rng.choice(3, p=[0.47, 0.45, 0.08]))]
        looks = list(voc.LOOKS["any"])
        if gender == "m" and age in ("young", "middle", "old"):
            looks += voc.LOOKS["m_adult"]
        if gender == "m" and age in ("middle", "old"):
            looks += voc.LOOKS["m_older"]
        if age in ("middle", "old"):
            looks += voc.LOOKS["older"]
        look = looks[int(rng.integers(len(looks)))] if rng.random() < 0.6 else ""
        role = _pick(rng, voc.ROLES[age]) if rng.random() < 0.55 else ""
        clothing = _pick(rng, voc.CLOTHING) if rng.random() < 0.4 else ""
        return Subject(age, gender, look, role, clothing)


def intensity_level(intensity: float) -> int:
    """0 slight (< 0.5), 1 moderate (< 0.8), 2 strong."""
    return 0 if intensity < 0.5 else (1 if intensity < 0.8 else 2)


def _pick(rng: np.random.Generator, seq: Sequence[str]) -> str:
    return seq[int(rng.integers(len(seq)))]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


# face parts a facial phrase is about ("a slack jaw" -> jaw)
_PARTS = frozenset("""mouth lips lip jaw eyes eye brow brows eyebrows forehead chin nose nostrils cheeks
cheekbones lids eyelids teeth gaze stare dimples""".split())
_CUES_BY_EMOTION = {e: tuple(c for c, (emos, _, _) in CUES.items() if e in emos) for e in EMOTIONS}


class _Writer:
    """One text: picks words for a sample's emotions and fills one sentence shape."""

    def __init__(self, rng, subject: Subject, e1: str, e2: Optional[str], level: int, side: str):
        self.rng, self.subject, self.e1, self.e2, self.level, self.side = rng, subject, e1, e2, level, side
        self.w1 = voc.emotion_words(e1)
        self.w2 = voc.emotion_words(e2) if e2 else None

    def _p(self, clause: str) -> str:
        return voc.fill(clause, self.subject.poss)

    def subj(self, definite: Optional[bool] = None, *, possessive: bool = False) -> str:
        if definite is None:
            definite = bool(self.rng.random() < 0.3)
        s = self.subject.phrase(self.rng, definite=definite, short=possessive)
        return s + "'s" if possessive else s

    def adv(self) -> str:
        if self.e1 == "neutral":
            return _pick(self.rng, voc.NEUTRAL_ADVERBS) if self.rng.random() < 0.5 else ""
        return _pick(self.rng, voc.INTENSITY_ADVERBS[self.level])

    def adj(self) -> str:
        a = f"{self.adv()} {_pick(self.rng, self.w1.adjectives)}".strip()
        if self.w2:
            a += " " + _pick(self.rng, _BLEND_ADJ).format(a=_pick(self.rng, self.w2.adjectives))
        return a

    def pred(self) -> str:
        """What follows "looks" / "is" / "seems": an idiom of the emotion ("in a funk", "losing her cool") for
        some moderate single-emotion and calm faces (an idiom carries no intensity word), else :meth:`adj`."""
        if self.w2 is None and (self.level == 1 or self.e1 == "neutral") and self.rng.random() < IDIOM_SHARE:
            return self._p(_pick(self.rng, self.w1.idioms))
        return self.adj()

    def noun(self) -> str:
        n = _pick(self.rng, self.w1.nouns)
        if self.e1 != "neutral":
            n = f"{_pick(self.rng, voc.INTENSITY_ADJECTIVES[self.level])} {n}"
        if self.w2:
            n += " " + _pick(self.rng, _BLEND_NOUN).format(n=_pick(self.rng, self.w2.nouns))
        return n

    def verb(self) -> str:
        return self._p(_pick(self.rng, self.w1.verbs))

    def body(self) -> str:
        """A posture clause of the emotion ("{p} fists clenched"), or what the person holds (a quarter)."""
        if self.rng.random() < 0.25:
            return f"{_pick(self.rng, voc.HELD)} {_pick(self.rng, voc.OBJECTS)}"
        return self._p(_pick(self.rng, self.w1.body))

    def why(self, p: float = 0.45) -> str:
        """`` after hearing the good news`` (what happened) with probability ``p``, else nothing."""
        return " " + self._p(_pick(self.rng, self.w1.contexts)) if self.rng.random() < p else ""

    def where(self, p: float = 0.4) -> str:
        """`` in a cluttered workshop at dawn`` (where, sometimes when) with probability ``p``, else nothing."""
        if self.rng.random() >= p:
            return ""
        if self.rng.random() < 0.2:
            s = _pick(self.rng, voc.SCENES)
        else:
            prep, noun = voc.PLACES[int(self.rng.integers(len(voc.PLACES)))]
            adj = _pick(self.rng, voc.PLACE_ADJECTIVES)
            s = f"{prep} {_article(adj)} {adj} {noun}"
        if self.rng.random() < 0.3:
            s += " " + _pick(self.rng, voc.TIMES)
        return " " + s

    def and_body(self, sep: str = ", ", p: float = 0.5) -> str:
        return sep + self.body() if self.rng.random() < p else ""

    def features(self, k: int) -> List[str]:
        cues = list(_CUES_BY_EMOTION[self.e1])
        picked = [cues[i] for i in self.rng.permutation(len(cues))[:k]]
        if self.e2 and self.rng.random() < 0.5 and _CUES_BY_EMOTION[self.e2]:
            extra = [c for c in _CUES_BY_EMOTION[self.e2] if c not in picked]
            if extra:
                picked[-1:] = [_pick(self.rng, extra)]
        out: List[str] = []
        used: set = set()
        for cue in picked:
            # one phrase per face part: not "a slack jaw and a slackened jaw"
            fresh = [q for q in CUES[cue][2] if not _PARTS.intersection(q.replace(",", "").split()) & used]
            if not fresh:
                continue
            p = _pick(self.rng, fresh)
            used |= _PARTS.intersection(p.replace(",", "").split())
            if cue == "smirk" and self.rng.random() < 0.6:
                p += _pick(self.rng, (" on the {s} side", " tugging at the {s} corner of the mouth",
                                      " raised on the {s}")).format(s=self.side)
            out.append(p)
        return out

    def feats(self, k: int) -> str:
        if k == 2 and self.rng.random() < 0.25:   # one to three features: lengths vary as in Figure 8
            k = 1 if self.rng.random() < 0.5 else 3
        f = self.features(k)
        # verb agreement: "a smirk gives", "wide eyes give", "a smirk and wide eyes give"
        self.plural = len(f) > 1 or not f[0].startswith(("a ", "an "))
        return f[0] if len(f) == 1 else ", ".join(f[:-1]) + " and " + f[-1]

    def write(self, shape: int) -> str:
        p = self.subject.poss
        if shape == 0:
            return f"{_cap(self.subj())}{self.where()} looks {self.pred()}{self.why()}, with {self.feats(2)}."
        if shape == 1:
            return f"{_cap(p)} face shows {self.noun()}{self.why()}: {self.feats(2)}{self.and_body()}."
        if shape == 2:
            f = self.feats(2)
            give = "give" if self.plural else "gives"
            return f"{_cap(f)} {give} {self.subj()}{self.where()} a look of {self.noun()}."
        if shape == 3:
            return (f"{_cap(self.subj())}{self.where(0.3)} is {self.pred()}{self.why()}; {p} face has "
                    f"{self.feats(1)}{self.and_body()}.")
        if shape == 4:
            return f"{_cap(self.noun())} is written across {p} face{self.why()}, with {self.feats(2)}."
        if shape == 5:
            return f"With {self.feats(2)} and {self.body()}, {self.subj()} appears {self.pred()}."
        if shape == 6:
            return f"{_cap(self.subj(possessive=True))} face conveys {self.noun()}{self.where()}, with {self.feats(1)}."
        if shape == 7:
            return f"{_cap(self.subj())}{self.where()} stares in {self.noun()}{self.why()}, {self.feats(1)}."
        if shape == 8:
            return (f"{_cap(self.subj(possessive=True))} expression is one of {self.noun()}, with "
                    f"{self.feats(2)}{self.and_body('; ')}.")
        if shape == 9:
            return f"{_cap(self.subj())}{self.where()} reacts with {self.noun()}{self.why()}, showing {self.feats(2)}."
        if shape == 10:
            a = self.adj()
            return f"{_cap(self.subj())} wears {_article(a)} {a} expression, with {self.feats(1)} and {self.body()}."
        if shape == 11:
            return f"The human face expresses {self.noun()} through {self.feats(2)}."
        if shape == 12:
            why = self.why(1.0).strip()
            return f"{_cap(why)}, {self.subj()} {self.verb()}, {self.adj()}, with {self.feats(2)}."
        if shape == 13:
            return f"{_cap(self.subj())} cannot hide {p} {self.noun()}{self.why()}: {self.feats(2)}."
        if shape == 14:
            return (f"Up close, {self.subj()}{self.where(0.3)} seems {self.pred()}, with "
                    f"{self.feats(1)}{self.and_body()}.")
        if shape == 15:
            return f"{_cap(self.subj(True))} has {self.feats(1)}, a face of {self.noun()}{self.where()}."
        if shape == 16:
            return f"{_cap(self.adj())}, {self.subj()}{self.where(0.3)} shows {self.feats(2)}{self.why()}."
        if shape == 17:
            return f"There is {self.noun()} in {p} face, with {self.feats(2)}{self.and_body()}."
        if shape == 18:
            opener = _pick(self.rng, _NEUTRAL_OPENERS if self.e1 == "neutral" else _OVERCOME)
            return f"{opener} {self.noun()}, {self.subj()} {self.verb()}, showing {self.feats(1)}."
        if shape == 19:
            f = self.feats(2)
            speak = "speak" if self.plural else "speaks"
            return f"In {p} face, {f} {speak} of {self.noun()}{self.why()}."
        if shape == 20:
            return (f"{_cap(self.subj())}{self.where()} {self.verb()}{self.why()}, {self.body()}, "
                    f"{self.feats(1)} betraying {p} {self.noun()}.")
        if shape == 21:
            return f"A portrait of {self.noun()}: {self.subj()}{self.where(0.5)} with {self.feats(2)}{self.and_body()}."
        if shape == 22:
            return f"{_cap(self.body())}, {self.subj()} {self.verb()}, {self.adj()}, with {self.feats(1)}."
        return f"{_cap(self.why(1.0).strip())}, {p} face turns {self.adj()}: {self.feats(2)}."


N_SHAPES = 24


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
