"""The default avatar rig, avatar.render, the FaceScorer round trip and the calibration data."""
from __future__ import annotations

import json

import numpy as np
import pytest

from emo3d import schema
from emo3d.errors import InvalidInputError


@pytest.fixture(scope="module")
def rig(face_landmarker):
    from emo3d import avatar
    return avatar.default_rig()


def test_default_rig_has_51_targets_and_texture(rig):
    from emo3d import avatar
    assert rig.target_names == schema.MODEL_NAMES + ("tongueOut",)         # the 51 shapes, then tongueOut
    assert rig.texture is not None and rig.texture.dtype == np.uint8 and rig.uvs.shape == (rig.n_vertices, 2)
    assert avatar.default_rig() is rig            # cached
    d = rig.dense_deltas()
    moved = (np.abs(d).max(axis=2) > 1e-6).sum(axis=1)
    assert (moved > 0).all(), "every target moves something"
    assert (moved < 0.6 * rig.n_vertices).all(), "targets are sparse"


def test_left_right_sides_by_vertex_x(rig):
    d = rig.dense_deltas()
    mag = np.linalg.norm(d, axis=2)                # [T,V]
    x = rig.vertices[:, 0]
    for t, name in enumerate(rig.target_names):
        if name in ("jawLeft", "jawRight", "mouthLeft", "mouthRight"):
            dx = float(d[t, :, 0].sum())     # these move toward the subject's named side
            assert (dx > 0) == name.endswith("Left"), f"{name} moves x by {dx:.2f}"
        elif name.endswith(("Left", "Right")):
            cx = float((mag[t] * x).sum() / mag[t].sum())
            if name.endswith("Left"):
                assert cx > 0.5, f"{name} moves the subject's left (+x), centroid x={cx:.2f}"
            else:
                assert cx < -0.5, f"{name} moves the subject's right (-x), centroid x={cx:.2f}"


def test_calibration_file_is_small_and_valid():
    from emo3d.avatar.default import CALIBRATION_PATH, load_calibration
    assert CALIBRATION_PATH.is_file() and CALIBRATION_PATH.stat().st_size < 100_000
    cal = load_calibration()
    assert set(cal["gains"]) <= set(schema.MODEL_NAMES)
    assert all(0 < g <= 10 for g in cal["gains"].values())


def test_calibration_rejects_unknown_names(tmp_path):
    from emo3d.avatar.default import load_calibration
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"gains": {"jawOpn": 1.0}}))
    with pytest.raises(InvalidInputError, match="jawOpn"):
        load_calibration(p)


def test_render_and_scorer_round_trip(rig):
    from emo3d import avatar
    img = avatar.render(np.zeros(52), size=256)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    assert img[128, 128].sum() > 100 and img[2, 2].sum() == 0       # face in the middle, black corner
    with pytest.raises(InvalidInputError):
        avatar.render({"jawOpen": float("nan")})
    with pytest.raises(InvalidInputError, match="jawOpen"):
        avatar.render({"jawOpn": 1.0})
    with avatar.FaceScorer("image") as s:
        sc = s.scores(img)
        assert sc is not None and sc.shape == (52,), "FaceLandmarker finds the neutral default face"
        assert float(sc[1:].max()) <= 0.3, {n: float(v) for n, v in zip(schema.MEDIAPIPE_NAMES, sc) if v > 0.3}
        assert s.scores(np.zeros((256, 256, 3), np.uint8)) is None      # no face
        with pytest.raises(InvalidInputError):
            s.scores(np.zeros((8, 8), np.float32))
        opened = s.scores(avatar.render({"jawOpen": 1.0}, size=256))
        assert opened[schema.MEDIAPIPE_INDEX["jawOpen"]] > sc[schema.MEDIAPIPE_INDEX["jawOpen"]] + 0.25
    with avatar.FaceScorer("video") as v:
        assert v.scores(img) is not None and v.scores(img) is not None
    with pytest.raises(InvalidInputError):
        avatar.FaceScorer("stream")


def test_lazy_api():
    from emo3d import avatar
    with pytest.raises(AttributeError):
        avatar.nope  # noqa: B018
    assert callable(avatar.face_landmarker_path) and callable(avatar.load_gltf)


def test_calibrate_options_and_helpers(tmp_path):
    from emo3d.avatar.calibrate_probe import CalibrateOptions, EMOTION_PROTOTYPES, random_sparse
    from emo3d.weights import normalize
    from emo3d.avatar.cli import contact_sheet
    with pytest.raises(InvalidInputError, match="size"):
        CalibrateOptions(out=tmp_path, size=10)
    with pytest.raises(InvalidInputError, match="target"):
        CalibrateOptions(out=tmp_path, target=3.0)
    W = random_sparse(50, seed=1)
    assert W.shape == (50, 52) and (W[:, 0] == 0).all()
    nz = (W > 0).sum(1)
    assert nz.min() >= 1 and nz.max() <= 4 and W.max() <= 1.0
    assert np.array_equal(W, random_sparse(50, seed=1))
    for e, m in EMOTION_PROTOTYPES.items():
        assert e in schema.EMOTIONS
        normalize(m)                             # every prototype name is a real shape
    from emo3d.avatar.cli import label_height
    sheet = contact_sheet([np.zeros((20, 30, 3), np.uint8)] * 5, list("abcde"), cols=2)
    assert sheet.shape == (3 * (20 + label_height()), 60, 3)
    assert (sheet[20:20 + label_height(), :30] < 128).any()        # the label is drawn


def test_refine_correction_field_keeps_lips_apart(face_landmarker):
    from emo3d.avatar.mesh import LIP_LOWER_RINGS, LIP_UPPER_RINGS, build_head
    from emo3d.avatar.refine import correction_field
    h = build_head()
    up = LIP_UPPER_RINGS[3][5]        # landmark 13, inner upper lip
    d = correction_field(h.vertices, h.n_face, {up: np.array([0.0, 0.3])})
    assert d[up, 1] == pytest.approx(0.3)
    assert abs(d[LIP_LOWER_RINGS[3][5], 1]) < 1e-9      # the lower lip (14) does not follow
    assert np.abs(d[h.n_face:]).max() == 0            # eyes, teeth untouched


def test_proxy_blendshape_model_matches_full_path(rig):
    """The landmark-only inner loop (face_blendshapes.tflite on FaceLandmarker's 146 landmarks)
    reproduces FaceLandmarker's own scores."""
    from emo3d import avatar
    from emo3d.avatar.refine import BLENDSHAPE_SUBSET, ProxyScorer
    img = avatar.render({"jawOpen": 1.0, "mouthSmileLeft": 0.5}, size=256)
    with avatar.FaceScorer() as s:
        full = s.scores(img)
        lm = s.last_landmarks
    assert full is not None and lm.shape == (478, 3)
    proxy = ProxyScorer()(lm[list(BLENDSHAPE_SUBSET), :2] * 256)
    np.testing.assert_allclose(proxy, full, atol=1e-3)
