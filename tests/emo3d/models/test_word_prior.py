"""The word prior of short descriptions (emo3d.models.word_prior): the softmax regression, its file, its
vocabulary, and how the reader mixes its FACS face into short descriptions (and only those)."""
import numpy as np
import pytest

from emo3d.errors import InvalidInputError, ModelFileError
from emo3d.models import word_prior
from emo3d.models.word_prior import WordPrior
from emo3d.schema import EMOTIONS
from support.tiny_reader import Spelling, tiny_reader


def _clusters(n_per: int = 30, dim: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (len(EMOTIONS), dim))
    labels = np.repeat(np.arange(len(EMOTIONS)), n_per)
    return centres[labels] + rng.normal(0, 0.35, (len(labels), dim)) + 5.0, labels, centres


def test_fit_reads_separable_clusters_and_is_a_distribution():
    x, y, centres = _clusters()
    prior = word_prior.fit(x, y)
    assert np.mean(prior.logits(x).argmax(1) == y) >= 0.97
    lp = prior.log_probs(centres + 5.0)
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, atol=1e-5)
    assert list(lp.argmax(1)) == list(range(len(EMOTIONS)))
    # class-balanced: an emotion with 5x the rows does not swallow the others
    keep = np.concatenate([np.flatnonzero(y == 0), np.flatnonzero(y != 0)[::5]])
    skew = word_prior.fit(x[keep], y[keep])
    assert np.mean(skew.logits(x).argmax(1) == y) >= 0.9


def test_save_load_round_trip_and_bad_files(tmp_path):
    x, y, _ = _clusters()
    prior = word_prior.fit(x, y)
    path = prior.save(tmp_path / word_prior.WORD_PRIOR_FILE)
    back = WordPrior.load(path)
    for name in ("mean", "weight", "bias"):
        np.testing.assert_array_equal(getattr(back, name), getattr(prior, name))
    with pytest.raises(ValueError):         # results are read-only: no one edits a loaded prior in place
        back.weight[0, 0] = 1.0
    np.savez(tmp_path / "nobias.npz", mean=prior.mean, weight=prior.weight)
    with pytest.raises(ModelFileError, match="lacks bias"):
        WordPrior.load(tmp_path / "nobias.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable word prior"):
        WordPrior.load(tmp_path / "junk.npz")
    with pytest.raises(ModelFileError, match="expected"):
        WordPrior(prior.mean, prior.weight[:5], prior.bias)
    with pytest.raises(ModelFileError, match="non-finite"):
        WordPrior(prior.mean, prior.weight, np.full(len(EMOTIONS), np.nan))
    with pytest.raises(InvalidInputError, match=r"\[N,24\]"):
        prior.logits(np.zeros((2, 7)))


def test_fit_rejects_bad_input():
    x, y, _ = _clusters()
    with pytest.raises(InvalidInputError, match="index schema.EMOTIONS"):
        word_prior.fit(x, np.full(len(x), len(EMOTIONS)))
    with pytest.raises(InvalidInputError, match="N labels"):
        word_prior.fit(x, y[:-1])
    with pytest.raises(InvalidInputError, match="l2 >= 0"):
        word_prior.fit(x, y, l2=-1.0)


def test_vocabulary_keeps_the_evaluation_words_out():
    from emo3d.models.prompts import mentions_oov_word
    texts, labels = word_prior.vocabulary()
    assert len(texts) == len(labels) == len({t.lower() for t in texts})
    counts = np.bincount(labels, minlength=len(EMOTIONS))
    assert counts.min() >= 100, dict(zip(EMOTIONS, counts))
    assert not [t for t in texts if mentions_oov_word(t)]


def test_reader_mixes_the_prior_face_into_short_descriptions_only(tmp_path):
    """A reader folder with a word prior: a short description's face is (1 - mix) x the head's + mix x the
    FACS face of what the prior reads; a sentence's face is the head's alone."""
    import json
    from emo3d.data import facs
    from emo3d.models import reader as reader_mod
    from emo3d.models.reader import TextReader
    from emo3d.schema import MEDIAPIPE_NAMES, MODEL_NAMES
    enc = Spelling()
    folder = tiny_reader(tmp_path / "reader", enc.dim)
    x, y, _ = _clusters(dim=enc.dim)
    word_prior.fit(x, y).save(folder / word_prior.WORD_PRIOR_FILE)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["word_prior"] = word_prior.WORD_PRIOR_FILE
    manifest["extra"].setdefault("reader", {})[word_prior.FACE_MIX_KEY] = 0.6
    (folder / "manifest.json").write_text(json.dumps(manifest))
    r = TextReader(folder, encoder=enc)
    assert r.word_prior_mix == 0.6
    texts = ["gobsmacked", "The bus leaves at noon."]
    emb = enc(texts)
    blend, _ = r.head(emb, r.row_bias(texts))
    mixed = r.word_prior_faces(texts, emb, blend)
    lp = r.word_prior.log_probs(emb[:1]) * reader_mod.WORD_PRIOR_SHARPEN
    p = np.exp(lp - lp.max())
    cols = [MEDIAPIPE_NAMES.index(n) for n in MODEL_NAMES]
    want = 0.4 * blend[0] + 0.6 * facs.prior((p / p.sum())[0], reader_mod.WORD_PRIOR_INTENSITY)[cols]
    np.testing.assert_allclose(mixed[0], want, atol=1e-6)
    np.testing.assert_array_equal(mixed[1], blend[1])
    # a bad share in the manifest is named
    manifest["extra"]["reader"][word_prior.FACE_MIX_KEY] = 1.5
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="word_prior_face_mix.*\\[0, 1\\]"):
        TextReader(folder, encoder=enc)
