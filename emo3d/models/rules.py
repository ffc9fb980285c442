"""Reading rules of the default text model, on top of the learned head (torch-free, numpy only).

What a frozen sentence encoder reads poorly, said explicitly here:

* **intensity words** scale the face: "a hint of" < "slightly" < plain < "very" < "extremely" (English
  words, :data:`INTENSITY_LEVELS`). They are cut from the text before the encoder reads it (so "I love this
  so much." reads like "I love this.") and the face is scaled by the level's factor.
* **mixed feelings** blend two emotions: words such as "bittersweet" (:data:`MIXED_WORDS`), and two short
  feelings joined by "but" / "yet" / "and" ("angry but hurt"): each part is read and the two are blended.
* **named facial actions** move those shapes on top of the emotion (:data:`ACTIONS`): "raises her left
  eyebrow", "winks with the right eye", "puffs out his cheeks", "sticks out her tongue" (``tongueOut``: an
  extra channel, MediaPipe's 52 have no tongue) ...; combinable. Left/right is the character's own side,
  as ARKit defines it (``...Left`` shapes are the character's left).
* **emoji** are read (:data:`EMOJI`): 😡 anger, 😭 sadness, 🙂 happiness, 😱 fear, 🤢 disgust, 😏 contempt ...
* **unknown input** is said, not faked: text with nothing readable (no letters or emoji, or judged
  nonsense by the reader's unknown-text detector, or mostly words no shipped English word list holds and
  leaning to nonsense in the detector: :func:`unknown_word_share`) gets a calm face and a warning.

:func:`parse` finds the cues in a text; :func:`apply` puts them on the head's output.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from emo3d.schema import EMOTIONS, MEDIAPIPE_NAMES

_IDX = {n: i for i, n in enumerate(MEDIAPIPE_NAMES)}
EXTRA_CHANNELS = ("tongueOut",)        # carried beside the 52 for rigs that have them

# (level name, scale of the face, phrases). Longest phrases are matched first.
INTENSITY_LEVELS: Tuple[Tuple[str, float, Tuple[str, ...]], ...] = (
    ("a_hint_of", 0.3, ("a hint of", "a touch of", "a trace of", "a flicker of", "a tinge of", "a glimmer of",
                        "the faintest", "barely", "faintly", "a tiny bit", "hint of")),
    ("slightly", 0.6, ("slightly", "a little bit", "a little", "a bit", "somewhat", "mildly", "kind of", "kinda",
                       "sort of", "a tad", "rather", "faint", "mild", "subtle", "subtly")),
    ("very", 1.3, ("very", "really", "so much", "so", "quite", "truly", "deeply", "super", "highly",
                   "seriously", "terribly", "awfully", "very much")),
    ("extremely", 1.6, ("extremely", "incredibly", "utterly", "absolutely", "totally", "completely", "intensely",
                        "insanely", "unbelievably", "overwhelmingly", "beyond", "immensely", "enormously",
                        "so so", "hugely")),
)
PLAIN = ("plain", 1.0)

MIXED_WORDS: Dict[str, Tuple[str, str]] = {
    "bittersweet": ("happiness", "sadness"), "nervous excitement": ("fear", "happiness"),
    "happy tears": ("happiness", "sadness"), "tears of joy": ("happiness", "sadness"),
    "love-hate": ("happiness", "anger"), "mixed feelings": ("happiness", "sadness"),
    "pleasantly surprised": ("surprise", "happiness"), "horrified": ("fear", "disgust"),
    "nostalgic": ("happiness", "sadness"), "anxious excitement": ("fear", "happiness"),
    "angry tears": ("anger", "sadness"), "morbid curiosity": ("surprise", "disgust"),
}
_JOINERS = re.compile(r"\s*(?:,\s*)?\b(?:but|yet|and|while|though|although|mixed with)\b\s*")

EMOJI: Dict[str, str] = {
    "😡": "anger", "😠": "anger", "🤬": "anger", "👿": "anger", "💢": "anger",
    "😭": "sadness", "😢": "sadness", "😞": "sadness", "😔": "sadness", "☹": "sadness", "🙁": "sadness",
    "💔": "sadness", "😿": "sadness",
    "🙂": "happiness", "😀": "happiness", "😃": "happiness", "😄": "happiness", "😁": "happiness",
    "😊": "happiness", "😂": "happiness", "🤣": "happiness", "😍": "happiness", "🥰": "happiness",
    "😆": "happiness", "😻": "happiness", "❤": "happiness", "😺": "happiness", "🥳": "happiness",
    "😱": "fear", "😨": "fear", "😰": "fear", "😧": "fear", "🙀": "fear",
    "🤢": "disgust", "🤮": "disgust", "😖": "disgust",
    "😏": "contempt", "😒": "contempt", "🙄": "contempt",
    "😮": "surprise", "😲": "surprise", "😯": "surprise", "🤯": "surprise", "😳": "surprise",
    "😐": "neutral", "😑": "neutral", "😶": "neutral",
}

_PRON = r"(?:(?:his|her|their|its|my|your|the|one|a|both)\s+){0,2}"
_SIDE = r"(?:(?P<side>left|right)\s+)?"
_SIDE_AFTER = r"(?:\s+(?:on\s+the\s+|to\s+the\s+)?(?P<side2>left|right)(?:\s+side)?)?"


@dataclass(frozen=True)
class Action:
    """A named facial action: regex over lower-cased text; shapes (name -> weight) where ``{S}`` / ``{O}``
    stand for the named side / the other side ("Left"/"Right"), ``default_side`` where none is named
    (None: symmetric, both sides); ``suppress_other``: the other side's ``{S}`` shapes are held below the
    named side's."""
    name: str
    pattern: str
    shapes: Tuple[Tuple[str, float], ...]
    default_side: Optional[str] = None
    suppress_other: bool = True

    def regex(self) -> re.Pattern:
        return re.compile(self.pattern)


ACTIONS: Tuple[Action, ...] = (
    Action("raise_eyebrow", rf"\b(?:rais|lift|arch|quirk|cock)\w*\s+{_PRON}{_SIDE}(?:eye)?brows?\b{_SIDE_AFTER}",
           (("browOuterUp{S}", 0.85), ("browInnerUp", 0.35))),
    Action("eyebrow_raised", r"\b(?:(?P<side>left|right)\s+)?(?:eye)?brows?\s+(?:raised|arched|lifted|up|cocked)\b",
           (("browOuterUp{S}", 0.85), ("browInnerUp", 0.35))),
    Action("lower_brows", rf"\b(?:furrow|knit|lower|draw)\w*\s+{_PRON}{_SIDE}(?:eye)?brows?\b{_SIDE_AFTER}",
           (("browDown{S}", 0.8),)),
    Action("wink", rf"\bwink\w*(?:\s+(?:with|at\s+\w+\s+with)\s+{_PRON}{_SIDE}eye)?{_SIDE_AFTER}",
           (("eyeBlink{S}", 1.0), ("cheekSquint{S}", 0.45), ("mouthSmile{S}", 0.3)), default_side="Right"),
    Action("close_eye", rf"\b(?:clos|shut)\w*\s+{_PRON}{_SIDE}eyes?\b{_SIDE_AFTER}", (("eyeBlink{S}", 1.0),)),
    Action("squint", r"\bsquint\w*", (("eyeSquint{S}", 0.8), ("cheekSquint{S}", 0.35))),
    Action("narrow_eyes", rf"\bnarrow\w*\s+{_PRON}eyes\b", (("eyeSquint{S}", 0.75),)),
    Action("widen_eyes", rf"\b(?:widen\w*\s+{_PRON}eyes|eyes\s+wide)\b", (("eyeWide{S}", 0.85),)),
    Action("roll_eyes", rf"\broll\w*\s+{_PRON}eyes\b", (("eyeLookUp{S}", 0.85),)),
    Action("puff_cheeks", rf"\b(?:puff|blow)\w*\s+(?:out\s+)?{_PRON}cheeks?\b|\bpuffed[- ]out cheeks\b",
           (("cheekPuff", 0.9),)),
    Action("purse_lips", rf"\b(?:purs|pucker)\w*\s+{_PRON}lips\b|\bpursed lips\b", (("mouthPucker", 0.85),)),
    Action("pout", r"\bpout\w*", (("mouthPucker", 0.5), ("mouthShrugLower", 0.45))),
    Action("press_lips", rf"\bpress\w*\s+{_PRON}lips(?:\s+together)?\b|\blips pressed together\b",
           (("mouthPress{S}", 0.8), ("mouthClose", 0.25))),
    Action("bite_lip", rf"\bbit(?:e|es|ing)\s+{_PRON}(?:lower\s+)?lip\b", (("mouthRollLower", 0.75),)),
    Action("wrinkle_nose", rf"\b(?:wrinkl|scrunch|crinkl)\w*\s+(?:up\s+)?{_PRON}nose\b", (("noseSneer{S}", 0.85),)),
    Action("jut_jaw", rf"\b(?:jut|thrust|push)\w*\s+(?:out\s+|forward\s+)?{_PRON}(?:jaw|chin)\b|\bjaw juts\b",
           (("jawForward", 0.85),)),
    Action("jaw_side", rf"\b(?:shift|mov|slid|push)\w*\s+{_PRON}jaw\s+to\s+the\s+(?P<side>left|right)\b",
           (("jaw{S}", 0.8),)),
    Action("open_mouth", rf"\bopen\w*\s+{_PRON}mouth\b|\bjaw drops\b|\bdrops {_PRON}jaw\b", (("jawOpen", 0.7),)),
    Action("bare_teeth", rf"\bbar(?:e|es|ed|ing)\s+{_PRON}teeth\b", (("mouthUpperUp{S}", 0.8),
                                                                   ("mouthStretch{S}", 0.4))),
    Action("smirk", rf"\b(?:one-sided|lopsided|half|crooked|sideways)?\s*smirk\w*{_SIDE_AFTER}",
           (("mouthSmile{S}", 0.7), ("mouthDimple{S}", 0.45)), default_side="Right"),
    Action("tongue_out", rf"\b(?:stick|poke|put)\w*\s+(?:out\s+)?{_PRON}tongue(?:\s+out)?\b|\btongue out\b",
           (("tongueOut", 1.0), ("jawOpen", 0.3))),
    Action("smile", rf"\b(?:grin(?:s|ning)?|smil(?:es|ing))\b(?:\s+with\s+{_PRON}{_SIDE}(?:side|corner)\b)?",
           (("mouthSmile{S}", 0.55),)),
    Action("raise_chin", rf"\brais\w*\s+{_PRON}chin\b", (("mouthShrugLower", 0.6),)),
    Action("look", r"\blook\w*\s+(?P<dir>up|down)(?:\s+(?:and\s+)?(?:to\s+the\s+)?(?P<side2>left|right))?\b"
                   r"|\blook\w*\s+to\s+the\s+(?P<side>left|right)\b", ()),
    Action("mouth_side", r"\b(?:pull|twist|shift)\w*\s+" + _PRON + r"mouth\s+to\s+the\s+(?P<side>left|right)\b",
           (("mouth{S}", 0.75),)),
)
_ACTION_RX = [(a, a.regex()) for a in ACTIONS]
_SIDE_WORD = {"left": "Left", "right": "Right"}
_OTHER = {"Left": "Right", "Right": "Left"}


@dataclass(frozen=True)
class FoundAction:
    name: str
    side: Optional[str]          # "Left" / "Right" (the character's own), None: both sides
    shapes: Tuple[Tuple[str, float], ...]
    opposite: Tuple[Tuple[str, str], ...]    # (named-side shape, its other-side twin held below it)


@dataclass(frozen=True)
class TextCues:
    """What :func:`parse` found. ``core``: the text the encoder reads (intensity words cut); ``parts``: the
    texts to read and blend (mixed feelings), else ``(core,)``."""
    text: str
    core: str
    parts: Tuple[str, ...]
    intensity: str
    scale: float
    actions: Tuple[FoundAction, ...]
    emoji: Tuple[str, ...]
    mixed: Tuple[str, ...]
    readable: bool


def _strip_emoji(text: str) -> Tuple[str, List[str]]:
    found, out = [], []
    for ch in text:
        if ch in EMOJI:
            found.append(EMOJI[ch])
            out.append(" ")
        elif unicodedata.category(ch) in ("So", "Sk", "Cs") or ch in "\ufe0f\u200d":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out), found


@functools.lru_cache(maxsize=1)
def _intensity_patterns() -> Tuple[Tuple[str, float, Tuple["re.Pattern[str]", ...]], ...]:
    """:data:`INTENSITY_LEVELS` with each phrase compiled once, longest first (built on first use)."""
    return tuple((name, scale, tuple(re.compile(r"(?<![\w-])" + re.escape(p) + r"(?![\w-])", re.IGNORECASE)
                                     for p in sorted(phrases, key=len, reverse=True)))
                 for name, scale, phrases in INTENSITY_LEVELS)


def _intensity(text: str) -> Tuple[str, float, str]:
    """(level, scale, text without the intensity words). The strongest level found wins."""
    best: Optional[Tuple[str, float]] = None
    core = text
    for name, scale, patterns in _intensity_patterns():
        for rx in patterns:
            if rx.search(core):
                rest = rx.sub(" ", core)
                if not re.search(r"[^\W\d_]", rest):      # the word is the whole text ("very"): keep it
                    continue
                core = rest
                if best is None or abs(np.log(scale)) > abs(np.log(best[1])):
                    best = (name, scale)
    if best is None:
        return PLAIN[0], PLAIN[1], text
    core = re.sub(r"\s+([.,!?;:])", r"\1", re.sub(r"\s+", " ", core)).strip(" ,")
    core = re.sub(r"\b([Aa]) ([aeiouAEIOU])", r"\1n \2", re.sub(r"\b([Aa])n ([^aeiouAEIOU\W])", r"\1 \2", core))
    return best[0], best[1], core


def _actions(low: str) -> List[FoundAction]:
    found = []
    for a, rx in _ACTION_RX:
        for m in rx.finditer(low):
            groups = m.groupdict()
            word = groups.get("side") or groups.get("side2")
            side = _SIDE_WORD[word] if word else a.default_side
            if a.name == "look":
                shapes, opposite = _gaze(groups.get("dir"), side)
            else:
                shapes, opposite = _expand(a.shapes, side), (
                    tuple((s.format(S=side), s.format(S=_OTHER[side])) for s, _ in a.shapes if "{S}" in s)
                    if side and a.suppress_other else ())
            found.append(FoundAction(a.name, side, shapes, opposite))
    return found


def _expand(shapes, side: Optional[str]) -> Tuple[Tuple[str, float], ...]:
    out = []
    for s, w in shapes:
        if "{S}" in s:
            for sd in ((side,) if side else ("Left", "Right")):
                out.append((s.format(S=sd), w))
        else:
            out.append((s, w))
    return tuple(out)


def _gaze(direction: Optional[str], side: Optional[str]):
    """Looking up/down and to the character's left/right: ARKit eye shapes (looking to the character's
    right is the right eye looking out and the left eye looking in)."""
    shapes: List[Tuple[str, float]] = []
    opposite: List[Tuple[str, str]] = []
    if direction:
        d = "Up" if direction == "up" else "Down"
        shapes += [(f"eyeLook{d}Left", 0.8), (f"eyeLook{d}Right", 0.8)]
    if side:
        other = _OTHER[side]
        shapes += [(f"eyeLookOut{side}", 0.75), (f"eyeLookIn{other}", 0.75)]
        opposite += [(f"eyeLookOut{side}", f"eyeLookOut{other}"), (f"eyeLookIn{other}", f"eyeLookIn{side}")]
    return tuple(shapes), tuple(opposite)


def parse(text: str) -> TextCues:
    """The cues of one text (see the module doc)."""
    plain, emoji = _strip_emoji(str(text))
    plain = re.sub(r"\s+", " ", plain).strip()
    low = plain.lower()
    level, scale, core = _intensity(plain)
    actions = _actions(low)
    mixed: List[str] = []
    for w, pair in MIXED_WORDS.items():
        if re.search(r"(?<![\w-])" + re.escape(w) + r"(?![\w-])", core.lower()):
            mixed += [e for e in pair if e not in mixed]
    parts: Tuple[str, ...] = (core,)
    pieces = [p.strip(" ,.;!") for p in _JOINERS.split(core)]
    pieces = [p for p in pieces if p]
    if not mixed and not actions and len(pieces) == 2 and all(1 <= len(p.split()) <= 4 for p in pieces):
        parts = tuple(pieces)              # "angry but hurt": read both feelings
    readable = bool(re.search(r"[^\W\d_]", core)) or bool(emoji)
    return TextCues(str(text), core or plain, parts, level, scale, tuple(actions), tuple(emoji), tuple(mixed),
                    readable)


_WORD = re.compile(r"[a-z]{2,}")

# The commonest function words (articles, pronouns, prepositions, conjunctions, auxiliaries) of the Latin-script
# languages the reader reads besides English (ASCII spellings only: text with accents is not judged). A text
# holding one is language, whatever the English word list says; written for emo3d from general knowledge of
# the languages, not from any evaluation set.
FUNCTION_WORDS = frozenset("""
le la les un une des du de au aux et ou mais donc car ni que qui quoi dont je tu il elle on nous vous ils elles
me te se moi toi lui leur leurs mon ton son ma ta sa mes tes ses notre votre nos vos ce cet cette ces dans sur
sous avec sans pour par en ne pas plus est suis es sont sommes etes ai as avons avez ont etait fait tres bien
el los las una unos unas del al lo yo ella ellos ellas nosotros mi mis tu tus su sus nuestro por para con sin
sobre entre pero como cuando donde porque muy mas ya no si es soy eres somos son estoy esta estas estan fue
hay ha he has han este esto eso ese esa
der die das den dem des ein eine einen einem einer und oder aber denn dass ich du er sie es wir ihr mich dich
sich mir dir uns euch mein dein sein ihr unser euer mit von zu zum zur bei nach aus auf fur um an im am ist
bin bist sind seid war hat habe hast haben nicht kein keine wie was wer wo wann warum sehr auch noch schon so
il lo gli le uno una di da in con su per tra fra che chi cui io tu lui lei noi voi loro mi ti ci vi si mio
tuo suo nostro vostro del dello della dei degli delle al allo alla ai agli alle dal dalla nel nella sul
sulla ma non sono sei siamo siete ho hai abbiamo avete hanno era molto piu anche come quando dove perche cosa
questo questa quello quella
os as um uma uns umas da das dos na nas no nos num numa eu ele ela eles elas voce meu minha teu tua seu sua
nosso nossa com sem para pelo pela mas nao sim muito mais estou esta estamos estao sou somos foi tem tenho
temos isso isto esse essa este nesta neste nessa nesse desta deste que quem onde quando porque
""".split())


SHORT_MAX_WORDS = 4
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def is_short_description(text: str) -> bool:
    """Whether a text reads as a short description ("gobsmacked", "feeling blue", "eww, gross") rather than a
    sentence: at most :data:`SHORT_MAX_WORDS` words (two CJK characters count as one word) and no full stop
    or question mark at its end. The reader reads such texts with their own neutral offset (real sentences
    taught the head that short, plain text is neutral; a bare emotion word is not)."""
    t = text.strip()
    if not t or t.endswith((".", "?", "\u3002", "\uff1f", "\u061f")):
        return False
    cjk = len(_CJK.findall(t))
    words = len(re.findall(r"\w+", _CJK.sub(" ", t)))
    return 0 < words + cjk / 2 <= SHORT_MAX_WORDS


def unknown_word_share(text: str, vocabulary) -> Optional[float]:
    """The share of a text's words (runs of two or more ASCII letters, lower-cased) that are not in
    ``vocabulary`` (a set of lower-case English words); 0 when one of them is a function word of another
    Latin-script language (:data:`FUNCTION_WORDS`: the text is language the English list cannot judge);
    ``None`` when the text has no such word."""
    words = _WORD.findall(text.lower())
    if not words:
        return None
    if any(w in FUNCTION_WORDS for w in words):
        return 0.0
    return sum(w not in vocabulary for w in words) / len(words)


def emotion_vector(names: Sequence[str]) -> np.ndarray:
    v = np.zeros(len(EMOTIONS), np.float32)
    for n in names:
        v[EMOTIONS.index(n)] += 1.0
    return v / max(v.sum(), 1.0)


def apply(cues: TextCues, blend52: np.ndarray, emotions8: np.ndarray, *, unknown: bool = False,
          calm52: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray, Dict[str, float], List[str]]:
    """Put the cues on one text's head output (``blend52`` MediaPipe order, ``emotions8``): returns (face,
    emotions, extra channels, warnings). ``unknown``: the reader judged the text unreadable -> ``calm52``
    (default: all zero) with neutral emotions and a warning, unless named actions or emoji were found."""
    face = np.asarray(blend52, np.float32).copy()
    emo = np.asarray(emotions8, np.float32).copy()
    warnings: List[str] = []
    extras = {c: 0.0 for c in EXTRA_CHANNELS}
    if cues.emoji or cues.mixed:
        from emo3d.data import facs      # only here: the FACS prior of an emoji's / a mixed feeling's emotions
    if cues.emoji:
        ev = emotion_vector(cues.emoji)
        only = not re.search(r"[^\W\d_]", cues.core) or unknown
        emo = ev if only else 0.5 * emo + 0.5 * ev
        prior = facs.prior(ev, 0.85).astype(np.float32)
        face = prior if only else np.maximum(face, 0.8 * prior)
        unknown = False
    if cues.mixed:
        ev = emotion_vector(cues.mixed)
        emo = 0.4 * emo + 0.6 * ev
        face = 1.0 - (1.0 - face) * (1.0 - 0.8 * facs.prior(ev, 0.8).astype(np.float32))
    if (unknown or not cues.readable) and not cues.actions and not cues.emoji:
        face = np.zeros_like(face) if calm52 is None else np.asarray(calm52, np.float32).copy()
        emo = emotion_vector(["neutral"])
        warnings.append(f"could not read {cues.text[:60]!r}: no known words, showing a calm face "
                        f"(describe a feeling or a face, e.g. 'a furious scowl')")
    if cues.scale != 1.0:
        face = np.clip(face * cues.scale, 0.0, 1.0)
    gain = float(min(1.0, np.sqrt(cues.scale)))      # "slightly raises ..." raises less
    for act in cues.actions:
        for name, w in act.shapes:
            w = w * gain
            if name in extras:
                extras[name] = max(extras[name], w)
            else:
                face[_IDX[name]] = max(face[_IDX[name]], w)
        for named, twin in act.opposite:     # the other side stays well below the named one
            face[_IDX[twin]] = min(face[_IDX[twin]], max(0.0, face[_IDX[named]] - 0.45))
    face[_IDX[MEDIAPIPE_NAMES[0]]] = 0.0
    return np.clip(face, 0.0, 1.0), emo, extras, warnings


__all__ = ["INTENSITY_LEVELS", "MIXED_WORDS", "EMOJI", "ACTIONS", "EXTRA_CHANNELS", "Action", "FoundAction",
           "TextCues", "parse", "apply", "emotion_vector"]
