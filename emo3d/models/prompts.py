"""Extra training prompts generated from word lists (no corpus needed): short prompts ("furious",
"a glad face") and templated word prompts with FACS-prior targets.

The default recipe's words are emo3d's own (the formal words of ``emo3d.data.vocabulary``, written for this
project, plus ``EXTRA_WORDS`` below): :func:`word_vocabulary` / :func:`with_word_prompts`. Its slang, idioms and
typed reactions are an opt-in: :func:`everyday_vocabulary` / :func:`with_everyday_prompts`. The NRC EmoLex prompts
(:func:`emolex_vocabulary` / :func:`with_emolex_prompts`, read through the ``nrclex`` package) are a
research-only opt-in: EmoLex's terms allow research use only, so no shipped model is trained on them.

The key words of the hand-written evaluation probes (:mod:`.probes`) are never used, nor is a whole prompt of
those sets written, so the out-of-vocabulary probe stays out of vocabulary.
"""
from __future__ import annotations

import re
from functools import lru_cache
from types import SimpleNamespace
from typing import Dict, List, Optional, Tuple

import numpy as np

from emo3d.schema import EMOTIONS, mediapipe_to_model

from .probes import OOV_PROMPTS, description_dev, multilingual_training_rows



def anchor_words() -> Tuple[List[str], List[int]]:
    """Emotion words of the data lexicon (``dataset.lexicon.adjectives``) and their emotion index."""
    from emo3d.data import lexicon
    texts, index = [], []
    for k, e in enumerate(EMOTIONS):
        for adj in lexicon.adjectives(e):
            texts.append(adj)
            index.append(k)
    return texts, index


SHORT_TEMPLATES = ("{adj}", "a {adj} face", "looking {adj}", "{adj} expression", "feeling {adj}")


def with_short_prompts(pairs, rate: float, seed: int):
    """Append short prompts ("furious", "a glad face") for rows with one clearly dominant emotion (>= 0.6):
    an adjective of that emotion (:func:`short_words`: emo3d's own word lists) in a short template, with the row's target.
    Teaches the head that terse everyday prompts deserve the full expression."""
    rng = np.random.default_rng(seed + 7)
    emotions = np.asarray(pairs.emotions, np.float32)
    words = short_words()
    rows = np.flatnonzero(emotions.max(1) >= 0.6)
    n = int(round(len(rows) * rate / 3))       # ~3 texts per sample already share one target
    if n == 0 or not len(rows):
        return pairs
    pick = rng.choice(rows, size=n, replace=n > len(rows))
    texts = []
    for r in pick:
        adj = str(rng.choice(words[EMOTIONS[int(emotions[r].argmax())]]))
        texts.append(str(rng.choice(SHORT_TEMPLATES)).format(adj=adj))
    return SimpleNamespace(texts=list(pairs.texts) + texts,
                           targets=np.concatenate([np.asarray(pairs.targets, np.float32),
                                                   np.asarray(pairs.targets, np.float32)[pick]]),
                           emotions=np.concatenate([emotions, emotions[pick]]))


# Everyday words EmoLex has no tag for: calm / blank faces (neutral) and looking down on someone
# (contempt; EmoLex has no contempt emotion). Generic vocabulary, not paraphrases of the OOV test prompts.
EXTRA_WORDS: Dict[str, Tuple[str, ...]] = {
    "neutral": tuple("""calm composed impassive expressionless blank placid serene unreadable still relaxed
neutral stoic stony vacant unmoved unemotional unperturbed nonchalant collected level-headed businesslike
dispassionate detached indifferent unconcerned unflappable cool-headed even-tempered tranquil serious sober
earnest focused attentive thoughtful reserved quiet motionless inscrutable stolid phlegmatic imperturbable
unaffected untroubled unbothered emotionless distant bored sleepy drowsy tired pensive contemplative
daydreaming mellow idle ordinary flat numb dull apathetic listless steady poised self-possessed laid-back
easygoing unexcited sedate staid absent-minded distracted unresponsive glazed""".split()) + (
        "at ease", "at rest", "lost in thought", "resting face", "plain face", "blank stare",
        "empty stare", "steady gaze", "no reaction", "keeping cool"),
    "contempt": tuple("""contemptuous scornful disdainful haughty arrogant smug condescending dismissive derisive
sneering superior mocking supercilious sardonic sarcastic belittling disparaging snobbish snooty stuck-up
self-satisfied lofty imperious jeering taunting cynical pompous conceited vain uppity disrespectful
insolent mocking""".split()) + ("looking down on others", "rolling the eyes", "a sneer", "unimpressed"),
}
EMOLEX_TEMPLATES = ("{w}", "feeling {w}", "looking {w}", "a {w} expression")
EMOLEX_LEVELS = ((0.25, 0.5), (0.55, 0.9), (0.9, 1.0))   # intensity ranges: weak / plain / strong prompts
PHRASE_LEVEL = (0.75, 1.0)    # idioms and typed reactions ("on top of the world", "yikes") are emphatic
EMOLEX_MODIFIERS = (("slightly", "faintly", "a little", "mildly"), ("extremely", "deeply", "utterly", "intensely"))
EMOLEX_MIN_SHARE = 0.4     # keep words whose dominant emotion holds at least this share
_EMOLEX_EMOTIONS = {"anger", "disgust", "fear", "joy", "sadness", "surprise"}


def _stem(word: str) -> str:
    w = word.lower()
    for suf in ("ing", "ed", "es", "s", "ly", "y", "d"):
        if len(w) > len(suf) + 3 and w.endswith(suf):
            return w[:-len(suf)]
    return w


def oov_excluded_words() -> set:
    """Key words of the hand-written OOV evaluation prompts (``probes.OOV_PROMPTS``) and of the short
    description development set (``probes.description_dev``), with their inflections: never used for training
    texts, so both stay real out-of-vocabulary sets."""
    return {_stem(k) for _, _, keys in OOV_PROMPTS + description_dev() for k in keys}


def mentions_oov_word(text: str, banned: Optional[set] = None) -> bool:
    """Whether ``text`` holds a key word of the OOV evaluation prompts (or an inflection of one): such texts
    are kept out of training so that the OOV probe stays out of vocabulary."""
    banned = oov_excluded_words() if banned is None else banned
    return any(_stem(t) in banned for t in re.findall(r"[a-z][a-z'\-]*", text.lower()))


def _tokens(text: str) -> str:
    return " ".join(re.findall(r"[a-z][a-z'\-]*", text.lower()))


@lru_cache(maxsize=1)
def _evaluation_texts() -> Tuple[str, ...]:
    return tuple(f" {_tokens(t)} " for t, _, _ in OOV_PROMPTS + description_dev() if _tokens(t))


def holds_evaluation_prompt(text: str) -> bool:
    """Whether ``text`` holds a whole prompt of the OOV probe or of the description dev set (word for word,
    case and punctuation aside: "a blank expression"): such word prompts are not written, so that prompts
    without key words ("walking on air") stay unseen too."""
    t = f" {_tokens(text)} "
    return any(e in t for e in _evaluation_texts())


def emolex_vocabulary() -> List[Tuple[str, np.ndarray]]:
    """(word, 8-emotion distribution) for the EmoLex words tagged with at least one of joy, sadness, anger,
    fear, disgust, surprise whose dominant emotion holds >= 40 % (``dataset.lexicon.word_distribution``:
    joy -> happiness, anger+disgust adds contempt; trust/anticipation-only words skipped), plus
    ``EXTRA_WORDS``; OOV evaluation key words (and inflections) excluded."""
    from emo3d.data import lexicon
    banned = oov_excluded_words()

    def ok(text: str) -> bool:
        return not any(_stem(t) in banned for t in re.findall(r"[a-z][a-z'\-]*", text.lower()))
    out = []
    for w, tags in sorted(lexicon.emolex().items()):
        if not (set(tags) & _EMOLEX_EMOTIONS) or not ok(w):
            continue
        d = lexicon.word_distribution(w)
        if d.max() >= EMOLEX_MIN_SHARE:
            out.append((w, d))
    for e, words in EXTRA_WORDS.items():
        d = np.zeros(len(EMOTIONS), np.float32)
        d[EMOTIONS.index(e)] = 1.0
        out += [(w, d) for w in dict.fromkeys(words) if ok(w)]
    return out


def short_words() -> Dict[str, Tuple[str, ...]]:
    """{emotion: adjectives} of the short prompts: ``emo3d.data.vocabulary.emotion_words(e).adjectives``
    (written for emo3d; the everyday ones are :func:`with_everyday_prompts`') without the OOV evaluation key
    words (and their inflections)."""
    from emo3d.data.vocabulary import emotion_words
    banned = oov_excluded_words()
    return {e: tuple(w for w in emotion_words(e).adjectives if w not in emotion_words(e).informal
                     and not any(_stem(t) in banned for t in re.findall(r"[a-z][a-z'\-]*", w.lower())))
            for e in EMOTIONS}


def _one_owner(entries: Dict[str, Tuple[str, ...]]) -> List[Tuple[str, np.ndarray]]:
    """(entry, one-hot 8-emotion distribution) of ``{emotion: entries}``: an entry listed under two emotions is
    dropped, and none that mentions an OOV evaluation key word (or an inflection) or holds a whole evaluation
    prompt (:func:`holds_evaluation_prompt`) is used."""
    banned = oov_excluded_words()
    owner: Dict[str, set] = {}
    form: Dict[str, str] = {}
    for e, words in entries.items():
        for w in words:
            owner.setdefault(w.lower(), set()).add(e)
            form.setdefault(w.lower(), w)
    out = []
    for w, es in owner.items():
        if len(es) != 1 or mentions_oov_word(w, banned) or holds_evaluation_prompt(w):
            continue
        d = np.zeros(len(EMOTIONS), np.float32)
        d[EMOTIONS.index(next(iter(es)))] = 1.0
        out.append((form[w], d))
    return out


def word_vocabulary() -> List[Tuple[str, np.ndarray]]:
    """(word, one-hot 8-emotion distribution) of the default recipe's word prompts: the emotion-naming words of
    emo3d's own word lists (``emo3d.data.vocabulary.emotion_words(e).formal``) plus ``EXTRA_WORDS``
    (:func:`_one_owner` rules). No third-party lexicon."""
    from emo3d.data.vocabulary import emotion_words
    return _one_owner({e: emotion_words(e).formal + EXTRA_WORDS.get(e, ()) for e in EMOTIONS})


PROMPT_POSSESSIVE = "my"       # idioms in the prompts read as typed: "losing my cool", "full of myself"


def everyday_vocabulary() -> List[Tuple[str, np.ndarray]]:
    """(entry, one-hot 8-emotion distribution) of the everyday-language prompts: the informal / slang words of
    emo3d's word lists ("peeved", "psyched"), their idioms in the first person ("losing my cool") and the typed
    reactions ("pfft", "yikes"), by the :func:`_one_owner` rules (none is also a :func:`word_vocabulary` word)."""
    from emo3d.data.vocabulary import emotion_words, fill
    formal = {w.lower() for w, _ in word_vocabulary()}
    return [(w, d) for w, d in _one_owner({e: emotion_words(e).informal
                                           + tuple(fill(i, PROMPT_POSSESSIVE) for i in emotion_words(e).idioms)
                                           + emotion_words(e).reactions for e in EMOTIONS})
            if w.lower() not in formal]


PHRASE_TEMPLATES = ("{w}", "feeling {w}", "looking {w}")


def _phrase_kinds() -> Tuple[set, set]:
    """(idioms as the word prompts write them, reactions) of emo3d's word lists: idioms take
    ``PHRASE_TEMPLATES`` ("feeling in a funk"), reactions stay as typed ("pfft"); neither takes intensity
    words."""
    from emo3d.data.vocabulary import emotion_words, fill
    idioms = {fill(i, PROMPT_POSSESSIVE) for e in EMOTIONS for i in emotion_words(e).idioms}
    reactions = {r for e in EMOTIONS for r in emotion_words(e).reactions}
    return idioms, reactions


def _prompt_forms(w: str, idioms: set, reactions: set) -> List[str]:
    """Every text the word prompts write for entry ``w`` before an intensity word (none that holds a prompt of
    the evaluation sets, :func:`holds_evaluation_prompt`)."""
    if w in reactions:
        forms = [w]
    elif w in idioms:
        forms = [t.format(w=w) for t in PHRASE_TEMPLATES]
    else:
        forms = [w] if " " in w else [_an(t.format(w=w)) for t in EMOLEX_TEMPLATES]
    return [f for f in forms if not holds_evaluation_prompt(f)] or [w]


def vocabulary_texts(vocab: List[Tuple[str, np.ndarray]]) -> List[str]:
    """Every text the word prompts of ``vocab`` can produce (for vocabulary checks)."""
    idioms, reactions = _phrase_kinds()
    texts = []
    for w, _ in vocab:
        forms = _prompt_forms(w, idioms, reactions)
        texts += forms
        if w not in idioms and w not in reactions:
            texts += [f"{m} {f}" for mods in EMOLEX_MODIFIERS for m in mods for f in forms]
    return texts


def emolex_texts() -> List[str]:
    """Every text ``with_emolex_prompts`` can produce (for vocabulary checks)."""
    return vocabulary_texts(emolex_vocabulary())


def word_texts() -> List[str]:
    """Every text ``with_word_prompts`` can produce (for vocabulary checks)."""
    return vocabulary_texts(word_vocabulary())


def everyday_texts() -> List[str]:
    """Every text ``with_everyday_prompts`` can produce (for vocabulary checks)."""
    return vocabulary_texts(everyday_vocabulary())


def _an(text: str) -> str:
    return re.sub(r"\ba ([aeiou])", r"an \1", text)


def with_emolex_prompts(pairs, rate: float, seed: int):
    """Research-only opt-in: :func:`vocabulary_prompts` of the NRC EmoLex words (``emolex_vocabulary``;
    EmoLex's terms allow research use only, so the shipped default does not use this)."""
    return vocabulary_prompts(pairs, emolex_vocabulary(), rate, seed)


def with_word_prompts(pairs, rate: float, seed: int):
    """The default recipe's word prompts: :func:`vocabulary_prompts` of emo3d's own words
    (:func:`word_vocabulary`)."""
    return vocabulary_prompts(pairs, word_vocabulary(), rate, seed)


def with_everyday_prompts(pairs, rate: float, seed: int):
    """The everyday-language prompts: :func:`vocabulary_prompts` of the informal words, idioms and typed
    reactions of emo3d's word lists (:func:`everyday_vocabulary`): "feeling peeved", "in a funk", "pfft"."""
    return vocabulary_prompts(pairs, everyday_vocabulary(), rate, seed + 2)


def vocabulary_prompts(pairs, vocab: List[Tuple[str, np.ndarray]], rate: float, seed: int):
    """Append short prompts from a word list ``vocab`` ((word, emotion distribution) pairs), balanced over the
    dominant emotions: each emotion gets about ``rate`` x (mean words per emotion) templated texts
    ("gloomy", "feeling gloomy"; a third with "slightly ..." and a third with "extremely ..." at lower /
    higher intensity, neutral words plain; an idiom of the word lists bare or as "feeling / looking ...", a
    reaction as typed, both plain), its words drawn in turn; targets = FACS prior of the word's emotion
    distribution at a random intensity 0.55-1 with style noise (``emo3d.data.facs.prior``). Broadens the
    everyday emotion language the head sees beyond the data's templates."""
    from emo3d.data import facs
    rng = np.random.default_rng(seed + 11)
    idioms, reactions = _phrase_kinds()
    groups: Dict[int, List[Tuple[str, np.ndarray]]] = {}
    for w, d in vocab:
        groups.setdefault(int(d.argmax()), []).append((w, d))
    per_emotion = int(round(rate * np.mean([len(g) for g in groups.values()])))
    texts, targets, emos = [], [], []
    for k in sorted(groups):
        words = groups[k]
        for j in range(per_emotion):
            if j % len(words) == 0:
                order = rng.permutation(len(words))
            w, d = words[order[j % len(words)]]
            forms = _prompt_forms(w, idioms, reactions)
            t = forms[(j // len(words) + int(rng.integers(4))) % len(forms)]
            phrase = w in idioms or w in reactions
            level = 1 if phrase or k == EMOTIONS.index("neutral") else int(rng.integers(3))
            lo, hi = PHRASE_LEVEL if phrase else EMOLEX_LEVELS[level]
            if level != 1:      # intensity words of the data's descriptions (dataset.textgen)
                t = f"{EMOLEX_MODIFIERS[level // 2][int(rng.integers(len(EMOLEX_MODIFIERS[0])))]} {t}"
            texts.append(t)
            targets.append(facs.prior(d, float(rng.uniform(lo, hi)), rng=rng))
            emos.append(d)
    return _appended(pairs, texts, targets, emos)


def with_multilingual_prompts(pairs, rate: float, seed: int):
    """Append the ten-language emotion words (``data.lexicon.multilingual_words``: "furieux", "悲しい" ...),
    each ``round(rate)`` times (at least once), with the FACS prior of its emotion at a random intensity
    0.55-0.9 as the target: teaches the head where those words sit in the multilingual encoder's space."""
    from emo3d.data import facs, lexicon
    rng = np.random.default_rng(seed + 13)
    texts, targets, emos = [], [], []
    for e, langs in sorted(lexicon.multilingual_words().items()):
        d = np.zeros(len(EMOTIONS), np.float32)
        d[EMOTIONS.index(e)] = 1.0
        for words in langs.values():
            for w in words:
                for _ in range(max(1, int(round(rate)))):
                    texts.append(w)
                    targets.append(facs.prior(d, float(rng.uniform(0.55, 0.9)), rng=rng))
                    emos.append(d)
    return _appended(pairs, texts, targets, emos)


def with_multilingual_sentences(pairs, rate: float, seed: int):
    """Append the hand-written sentences of ``text_sets/multilingual_sentences*.json`` (English + ten
    translations of each), each ``round(rate)`` times (at least once), with the FACS prior of its emotion at
    a random intensity 0.55-0.9: real sentences in every language the reader claims, not only words."""
    from emo3d.data import facs
    rng = np.random.default_rng(seed + 17)
    langs, rows = multilingual_training_rows()
    texts, targets, emos = [], [], []
    for row in rows:
        e = np.zeros(len(EMOTIONS), np.float32)
        e[EMOTIONS.index(row["emotion"])] = 1.0
        for lang in langs:
            for _ in range(max(1, int(round(rate)))):
                texts.append(row[lang])
                targets.append(facs.prior(e, float(rng.uniform(0.55, 0.9)), rng=rng))
                emos.append(e)
    return _appended(pairs, texts, targets, emos)


def _appended(pairs, texts, targets, emos):
    """``pairs`` with the generated ``texts`` (FACS targets [n, 52] and emotions [n, 8]) appended; targets are
    cut to the model's 51 columns when ``pairs`` has 51."""
    t0 = np.asarray(pairs.targets, np.float32)
    tg = np.stack(targets).astype(np.float32)
    if t0.shape[1] == 51:
        tg = mediapipe_to_model(tg)
    return SimpleNamespace(texts=list(pairs.texts) + texts, targets=np.concatenate([t0, tg]),
                           emotions=np.concatenate([np.asarray(pairs.emotions, np.float32), np.stack(emos)]))
