"""The primitive-emotions table: the release layout (one row per word, male/female × three levels),
round trip, the earlier long layout, rendering only the identities given."""
import csv

import numpy as np
import pytest

from emo3d.errors import DataValidationError, InvalidInputError
from emo3d.data.primitives import (COLUMNS, PRIOR_COLS, Primitive, build_primitives,
                                   primitive_rows, read_primitives, write_primitives)
from emo3d.schema import EMOTIONS


def _header(path):
    with open(path, newline="") as f:
        return next(csv.reader(f))


def test_release_layout_round_trip(tmp_path):
    rows = primitive_rows()
    rng = np.random.default_rng(0)
    for p in rows[:6]:                          # the first word: every slot with an image and scores
        p.image = f"primitive_images/{p.word}_{p.gender}_{p.level_number}.jpeg"
        p.blendshapes = np.round(rng.random(52), 6).astype(np.float32)
    path = write_primitives(tmp_path / "data" / "primitive_emotions.csv", rows)
    head = _header(path)
    assert tuple(head) == COLUMNS + PRIOR_COLS
    assert head[10:16] == ["img_male_1", "img_male_2", "img_male_3", "img_female_1", "img_female_2",
                           "img_female_3"]
    n_words = len({p.word for p in rows})
    assert sum(1 for _ in open(path)) == n_words + 1            # one line per word
    back = read_primitives(tmp_path)
    assert len(back) == len(rows) == 6 * n_words
    for a, b in zip(rows, back):
        assert (a.word, a.gender, a.level, a.image) == (b.word, b.gender, b.level, b.image)
        np.testing.assert_allclose(a.emotions, b.emotions, atol=1e-6)
        np.testing.assert_array_equal(a.prior, b.prior)
        assert (a.blendshapes is None) == (b.blendshapes is None)
        if a.blendshapes is not None:
            np.testing.assert_array_equal(a.blendshapes, b.blendshapes)
    # the release has no priors: those columns are optional
    for p in rows:
        p.prior = None
    write_primitives(tmp_path / "data" / "primitive_emotions.csv", rows)
    assert tuple(_header(path)) == COLUMNS
    assert all(p.prior is None for p in read_primitives(tmp_path))


def test_write_refuses_bad_slots(tmp_path):
    p = primitive_rows()[0]
    with pytest.raises(InvalidInputError, match="two rows"):
        write_primitives(tmp_path / "x.csv", [p, p])
    q = Primitive(p.word, p.emotion, p.level, p.intensity, p.emotions, p.prior, None)
    with pytest.raises(InvalidInputError, match="gender"):
        write_primitives(tmp_path / "x.csv", [q])
    assert not (tmp_path / "x.csv").exists()


def test_reads_the_earlier_long_layout_and_rejects_others(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    emo = ["0"] * 8
    emo[EMOTIONS.index("anger")] = "1"
    vec = "[" + " ".join(["0.1"] * 52) + "]"
    with open(d / "primitive_emotions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["word", "emotion", "level", "intensity", *EMOTIONS, "img", "blenshape_score", "prior"])
        w.writerow(["rage", "anger", "strong", "1", *emo, "primitive_images/rage.jpeg", vec, vec])
    (p,) = read_primitives(tmp_path)
    assert (p.word, p.level, p.gender, p.image) == ("rage", "strong", None, "primitive_images/rage.jpeg")
    assert p.blendshapes[0] == pytest.approx(0.1)
    with open(d / "primitive_emotions.csv", "w") as f:
        f.write("word,foo\nrage,1\n")
    with pytest.raises(DataValidationError, match="missing columns"):
        read_primitives(tmp_path)


def test_images_only_for_the_identities_given(tmp_path, monkeypatch):
    calls = []

    class FakeImager:                           # stands in for render + MediaPipe
        def __init__(self, **kw):
            pass

        def render_and_score(self, weights, path, *, texture):
            calls.append((texture, path.name))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"jpeg")
            return np.full(52, 0.25, np.float32)

        def close(self):
            pass

    import emo3d.data.render as render
    monkeypatch.setattr(render, "Imager", FakeImager)
    build_primitives(tmp_path, images=True, identities={"female": "photo"})
    rows = read_primitives(tmp_path)
    female = [p for p in rows if p.gender == "female"]
    assert all(p.image and p.blendshapes[0] == pytest.approx(0.25) for p in female)
    assert all(p.image is None and p.blendshapes is None for p in rows if p.gender == "male")
    assert {t for t, _ in calls} == {"photo"} and len(calls) == len(female)
    assert (tmp_path / female[0].image).is_file()
    with pytest.raises(InvalidInputError, match="accepted genders"):
        build_primitives(tmp_path, images=True, identities={"robot": "photo"})
    with pytest.raises(InvalidInputError, match="default texture"):
        build_primitives(tmp_path, images=True, identities={"male": str(tmp_path / "none.glb")})
