"""The everyday emotion language of emo3d's word lists (slang, informal words, idioms, reactions): enough of it
per emotion, one emotion per entry, none of it from the reader's out-of-vocabulary evaluation sets, and both
the description builder and the reader's word prompts use it."""
from __future__ import annotations

import re

import numpy as np
import pytest

from emo3d.data import builder, textgen, vocabulary
from emo3d.errors import InvalidInputError
from emo3d.schema import EMOTIONS

POSSESSIVES = ("her", "his", "their", "my")


def _new_entries(e: str):
    """The informal additions of emotion ``e`` (idioms filled with every possessive)."""
    words = vocabulary._words(vocabulary._ADJ_INFORMAL[e]) + vocabulary._words(vocabulary._NOUN_INFORMAL[e])
    idioms = tuple(vocabulary.fill(i, p) for i in vocabulary.IDIOMS[e] for p in POSSESSIVES)
    return words + idioms + vocabulary.REACTIONS[e]


def _tokens(text: str):
    return re.findall(r"[a-z][a-z'\-]*", text.lower())


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_each_emotion_has_a_wide_everyday_vocabulary(emotion):
    w = vocabulary.emotion_words(emotion)
    n_new = (len(vocabulary._words(vocabulary._ADJ_INFORMAL[emotion])) + len(vocabulary._words(
        vocabulary._NOUN_INFORMAL[emotion])) + len(w.idioms) + len(w.reactions))
    assert n_new >= 90, (emotion, n_new)
    assert len(w.idioms) >= 28 and len(w.reactions) >= 15, (emotion, len(w.idioms), len(w.reactions))
    # the informal words join the lists the descriptions and the short prompts draw from
    assert set(vocabulary._words(vocabulary._ADJ_INFORMAL[emotion])) <= set(w.adjectives)
    assert set(vocabulary._words(vocabulary._NOUN_INFORMAL[emotion])) <= set(w.nouns)
    for x in w.idioms + w.reactions:
        assert x == " ".join(x.split()) and x and ";" not in x, (emotion, x)
        assert set(re.findall(r"{(\w*)}", x)) <= {"p", "r"}, (emotion, x)


def test_a_few_known_entries_sit_under_their_emotion():
    owner = {}
    for e in EMOTIONS:
        w = vocabulary.emotion_words(e)
        for x in w.synonyms + w.idioms + w.reactions:
            owner[x] = e
    expected = {"on top of the world": "happiness", "in a funk": "sadness", "hot under the collar": "anger",
                "pfft": "contempt", "full of {r}": "contempt", "self-righteous": "contempt", "spaced-out": "neutral",
                "cool as a cucumber": "neutral", "yikes": "fear", "rancid": "disgust", "dumbstruck": "surprise",
                "peeved": "anger", "downbeat": "sadness", "psyched": "happiness", "shaking like a leaf": "fear"}
    assert {k: owner.get(k) for k in expected} == expected


def test_no_entry_belongs_to_two_emotions():
    """The owner rule of the word prompts (an entry under two emotions is dropped) must drop nothing: every
    word, idiom and reaction of the lists (and ``prompts.EXTRA_WORDS``) has one emotion."""
    from emo3d.models.prompts import EXTRA_WORDS, PROMPT_POSSESSIVE, everyday_vocabulary, word_vocabulary
    owner = {}
    for e in EMOTIONS:
        w = vocabulary.emotion_words(e)
        for x in (w.synonyms + w.reactions + EXTRA_WORDS.get(e, ())
                  + tuple(vocabulary.fill(i, PROMPT_POSSESSIVE) for i in w.idioms)):
            owner.setdefault(x.lower(), set()).add(e)
    assert len(owner) > 1700
    shared = {x: sorted(es) for x, es in owner.items() if len(es) > 1}
    assert not shared, shared
    used = {w.lower() for w, _ in word_vocabulary() + everyday_vocabulary()}
    assert len(used) > 0.95 * len(owner)      # only entries naming an evaluation key word are left out


def test_new_entries_stay_clear_of_the_out_of_vocabulary_sets():
    """No informal entry holds a key word of the OOV probe or of the description dev set, an inflection of one
    (the trainer's rule, ``prompts.mentions_oov_word``) or a longer word built on one ("frightening" from
    "fright"), nor a whole key-free prompt of those sets ("walking on air")."""
    from emo3d.models.probes import OOV_PROMPTS, description_dev
    from emo3d.models.prompts import mentions_oov_word, oov_excluded_words
    banned = oov_excluded_words()
    prompts = OOV_PROMPTS + description_dev()
    keys = {k.lower() for _, _, ks in prompts for k in ks if len(k) >= 4} | {"patronis"}   # + British spelling
    texts = [" ".join(_tokens(t)) for t, _, _ in prompts]
    for e in EMOTIONS:
        for x in _new_entries(e):
            assert not mentions_oov_word(x, banned), (e, x)
            assert not [t for t in _tokens(x) for k in keys if t.startswith(k)], (e, x)
            assert not [t for t in texts if f" {t} " in f" {' '.join(_tokens(x))} "], (e, x)


def test_the_word_prompts_never_write_a_prompt_of_the_evaluation_sets():
    from emo3d.models.probes import OOV_PROMPTS, description_dev
    from emo3d.models.prompts import everyday_texts, word_texts
    texts = {" ".join(_tokens(t)) for t, _, _ in OOV_PROMPTS + description_dev()}
    written = " || ".join(" ".join(_tokens(t)) for t in word_texts() + everyday_texts())
    assert not [t for t in texts if re.search(rf"(^| ){re.escape(t)}( |$)", written.replace(" || ", " |  | "))]


def test_fill_names_the_possessive_and_the_reflexive():
    assert vocabulary.fill("full of {r}", "her") == "full of herself"
    assert vocabulary.fill("losing {p} cool", "their") == "losing their cool"
    assert vocabulary.fill("crying {p} eyes out", "my") == "crying my eyes out"
    with pytest.raises(InvalidInputError, match="accepted: her, his"):
        vocabulary.fill("full of {r}", "its")


def test_descriptions_use_the_idioms():
    """The builder writes idioms as what a person "looks" / "is" / "seems" / "appears" (moderate single-emotion
    and calm faces: an idiom takes no intensity word), with the subject's own possessive."""
    ms = [builder.make_sample(i, 0).sample for i in range(600)]
    found = {}
    for s in ms:
        phrases = {vocabulary.fill(i, p) for i in vocabulary.emotion_words(s.dominant).idioms
                   for p in ("her", "his", "their")}
        for t in s.texts:
            if any(re.search(rf"\b(looks|is|seems|appears) {re.escape(x)}\b", t) for x in phrases):
                found.setdefault(s.dominant, []).append(t)
    assert len(found) >= 7 and sum(map(len, found.values())) >= 40, {e: len(v) for e, v in found.items()}
    rng = np.random.default_rng(0)
    she = textgen.Subject("young", "f")
    moderate = [textgen._Writer(rng, she, "anger", None, 1, "right").pred() for _ in range(300)]
    idioms = [x for x in moderate if x in {vocabulary.fill(i, "her") for i in vocabulary.IDIOMS["anger"]}]
    assert len(idioms) > 40 and not [x for x in moderate if "{" in x or " his " in f" {x} " or "their" in x]
    assert any(" her " in f" {x} " or "herself" in x for x in idioms)
    strong = {textgen._Writer(rng, she, "anger", None, 2, "right").pred() for _ in range(200)}
    blend = {textgen._Writer(rng, she, "anger", "sadness", 1, "right").pred() for _ in range(200)}
    anger_idioms = {vocabulary.fill(i, "her") for i in vocabulary.IDIOMS["anger"]}
    assert not (strong | blend) & anger_idioms


def test_everyday_prompts_use_idioms_and_reactions_as_people_type_them():
    from types import SimpleNamespace
    from emo3d.models.prompts import (PHRASE_TEMPLATES, PROMPT_POSSESSIVE, everyday_vocabulary, with_everyday_prompts,
                                      word_vocabulary)
    words, phrases = dict(word_vocabulary()), dict(everyday_vocabulary())
    assert phrases["peeved"].argmax() == EMOTIONS.index("anger") and "peeved" not in words
    assert phrases["psyched"].argmax() == EMOTIONS.index("happiness") and words["furious"].argmax() == 4
    assert phrases["pfft"].argmax() == EMOTIONS.index("contempt")
    assert phrases[f"full of {vocabulary.REFLEXIVE[PROMPT_POSSESSIVE]}"].argmax() == EMOTIONS.index("contempt")
    assert phrases["in a funk"].argmax() == EMOTIONS.index("sadness")
    assert not set(words) & set(phrases)
    empty = SimpleNamespace(texts=[], targets=np.zeros((0, 52), np.float32), emotions=np.zeros((0, 8), np.float32))
    out = with_everyday_prompts(empty, 2.0, seed=0)
    texts = list(out.texts)
    counts = np.bincount(np.asarray(out.emotions).argmax(1), minlength=len(EMOTIONS))
    assert counts.min() == counts.max() and counts.min() > 50      # balanced over the eight emotions
    reactions = {r for e in EMOTIONS for r in vocabulary.emotion_words(e).reactions}
    idioms = {vocabulary.fill(i, PROMPT_POSSESSIVE) for e in EMOTIONS for i in vocabulary.emotion_words(e).idioms}
    wrapped = {t.format(w=i) for i in idioms for t in PHRASE_TEMPLATES}
    informal = {w for e in EMOTIONS for w in vocabulary.emotion_words(e).informal}
    # an idiom appears bare or as "feeling ..." / "looking ..."; a reaction only as typed; a slang word as the
    # word prompts write words ("slightly peeved", "feeling psyched")
    assert all(t in reactions or t in wrapped or informal & {t.split(" ", 1)[-1], t.rsplit(" ", 1)[-1], t}
               or any(w in t for w in informal) for t in texts)
    assert sum(t in reactions for t in texts) > 50 and sum(t in wrapped for t in texts) > 50
    assert not [t for t in texts if t in wrapped and t.split()[0] in ("slightly", "extremely", "deeply", "mildly")]


def test_idioms_and_reactions_train_emphatic_faces():
    """An idiom or a typed reaction ("on top of the world", "yikes") is emphatic: its target face is drawn at
    ``prompts.PHRASE_LEVEL``, stronger on average than a plain word's of the same emotion."""
    from types import SimpleNamespace
    from emo3d.models.prompts import (EMOLEX_LEVELS, EMOLEX_MODIFIERS, PHRASE_LEVEL, PHRASE_TEMPLATES,
                                      with_everyday_prompts, with_word_prompts)
    assert PHRASE_LEVEL[0] > EMOLEX_LEVELS[1][0] and PHRASE_LEVEL[1] <= 1.0
    empty = SimpleNamespace(texts=[], targets=np.zeros((0, 52), np.float32), emotions=np.zeros((0, 8), np.float32))
    words, phrases = with_word_prompts(empty, 1.0, seed=3), with_everyday_prompts(empty, 2.0, seed=3)
    mods = {m for ms in EMOLEX_MODIFIERS for m in ms}
    for e in ("happiness", "anger", "contempt", "fear"):
        k = EMOTIONS.index(e)
        w = vocabulary.emotion_words(e)
        said = set(w.reactions) | {t.format(w=vocabulary.fill(i, "my")) for i in w.idioms for t in PHRASE_TEMPLATES}
        strong = [np.linalg.norm(t) for x, t, d in zip(phrases.texts, phrases.targets, phrases.emotions)
                  if d.argmax() == k and x in said]
        plain = [np.linalg.norm(t) for x, t, d in zip(words.texts, words.targets, words.emotions)    # no intensity word
                 if d.argmax() == k and not any(x.startswith(m + " ") for m in mods)]
        assert len(strong) > 10 and len(plain) > 10, (e, len(strong), len(plain))
        assert np.mean(strong) > 1.05 * np.mean(plain), (e, np.mean(strong), np.mean(plain))


def test_the_reader_recipe_reads_the_everyday_prompts_when_asked():
    """``--everyday-prompts RATE`` adds the everyday rows to the reader's training ("everyday_prompt" rows); off
    by default (measured on the shipped encoder: no held-out gain, lower cross-lingual agreement)."""
    from emo3d.models.prompts import mentions_oov_word
    from emo3d.models.train_reader import ReaderTrainOptions, description_rows
    assert ReaderTrainOptions().everyday_prompts == 0
    base = dict(real_per_class=0, synthetic_samples=2, word_prompts=0.0, short_prompts=0.0, multilingual_prompts=0.0,
                multilingual_sentences=0.0)
    off = description_rows(ReaderTrainOptions(**base))
    on = description_rows(ReaderTrainOptions(everyday_prompts=0.5, **base))
    assert "everyday_prompt" not in off.source
    everyday = [t for t, s in zip(on.texts, on.source) if s == "everyday_prompt"]
    assert len(everyday) == len(on) - len(off) and len(everyday) >= 8 * 40
    assert not [t for t in everyday if mentions_oov_word(t)]
    with pytest.raises(InvalidInputError, match="everyday_prompts"):
        ReaderTrainOptions(everyday_prompts=-1)
