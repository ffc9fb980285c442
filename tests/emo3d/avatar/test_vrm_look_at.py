"""VRM lookAt in the Python render path: type bone turns the humanoid eye bones by the gaze of the
eye-look scores; type expression drives the lookUp/Down/Left/Right presets. VRM 0.x and 1.0 rigs
built in-test (support.glb.eyed_vrm: a face with two eyeballs under leftEye/rightEye bones)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from emo3d import avatar
from emo3d.avatar.gltf import load_gltf
from emo3d.avatar.posing import posed_vertices, poses_bones
from support.glb import EYE_R, EYE_Z, EYES, eyed_vrm

LOOK_LEFT = {"eyeLookOutLeft": 1.0, "eyeLookInRight": 1.0}     # both eyes to the subject's left (+x)
LOOK_UP = {"eyeLookUpLeft": 1.0, "eyeLookUpRight": 1.0}
SIZE = 192


@pytest.fixture(scope="module")
def rigs(tmp_path_factory):
    d = tmp_path_factory.mktemp("vrm_eyes")
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # the pupils' own target names are not ARKit names
        for version in ("0", "1"):
            for look in ("bone", "expression"):
                out[version, look] = load_gltf(eyed_vrm(d / f"eyes{version}{look}.glb", version=version, look=look))
    return out


def _pupils(img: np.ndarray) -> np.ndarray:
    """(x, y) centroids of the dark pupil pixels in the image's left and right halves (viewer's sides)."""
    dark = (img.max(axis=2) < 70) & (img.max(axis=2) > 0)     # the background is exactly black
    h, w = dark.shape
    out = []
    for half in (slice(0, w // 2), slice(w // 2, w)):
        ys, xs = np.nonzero(dark[:, half])
        assert xs.size > 5, "no pupil drawn"
        out.append((xs.mean() + half.start, ys.mean()))
    return np.array(out)


@pytest.mark.parametrize("version", ["0", "1"])
def test_bone_look_at_reads_the_eye_bones_and_leaves_the_look_presets(rigs, version):
    rig = rigs[version, "bone"]
    assert rig.eye_weights is not None and rig.eye_weights.shape == (2, rig.n_vertices)
    # rig space: +x is the subject's left, whichever way the file faced (VRM 0.x faces -z)
    np.testing.assert_allclose(rig.eye_pivots, [[EYES[0][0], EYES[0][1], EYE_Z], [EYES[1][0], EYES[1][1], EYE_Z]],
                               atol=1e-6)
    for k in range(2):   # each bone carries its own eyeball, whole, and nothing else
        moving = rig.vertices[rig.eye_weights[k] > 0]
        assert np.all(rig.eye_weights[k][rig.eye_weights[k] > 0] == 1.0)
        np.testing.assert_allclose(np.linalg.norm(moving - rig.eye_pivots[k], axis=1), EYE_R, rtol=1e-5)
    assert not (rig.eye_weights.sum(axis=0) > 1).any()
    assert not any(n.startswith("eyeLook") for n in rig.target_names)   # look presets not retargeted
    assert poses_bones(rig, (0, 0, 0))


@pytest.mark.parametrize("version", ["0", "1"])
def test_expression_look_at_drives_the_look_presets(rigs, version):
    rig = rigs[version, "expression"]
    assert rig.eye_weights is None and not poses_bones(rig, (0, 0, 0))
    assert {"eyeLookOutLeft", "eyeLookInRight", "eyeLookUpLeft", "eyeLookUpRight"} <= set(rig.target_names)


@pytest.mark.parametrize("version", ["0", "1"])
def test_gaze_turns_the_eyeballs_about_their_pivots(rigs, version):
    rig = rigs[version, "bone"]
    rest = posed_vertices(rig, {}, (0, 0, 0))[0][0]
    np.testing.assert_array_equal(rest, rig.deform({})[0])             # no gaze: the bind pose
    turned, left_for_renderer = posed_vertices(rig, LOOK_LEFT, (10.0, 0.0, 0.0))
    assert left_for_renderer == (10.0, 0.0, 0.0)      # no head bone on the body: the renderer turns it all
    for k in range(2):
        on = rig.eye_weights[k] > 0
        a, b = rest[on], turned[0][on]
        np.testing.assert_allclose(np.linalg.norm(b - rig.eye_pivots[k], axis=1), EYE_R, rtol=1e-5)   # a turn
        front = a[:, 2] > rig.eye_pivots[k][2] + 0.9 * EYE_R           # the pupil cap
        assert b[front, 0].mean() > a[front, 0].mean() + 0.3 * EYE_R     # toward the subject's left
    off = rig.eye_weights.sum(axis=0) == 0
    np.testing.assert_array_equal(turned[0][off], rest[off])          # the face does not move


@pytest.mark.parametrize("look", ["bone", "expression"])
@pytest.mark.parametrize("version", ["0", "1"])
def test_rendered_pupils_follow_the_gaze(rigs, version, look):
    rig = rigs[version, look]
    still = avatar.render({}, rig=rig, size=SIZE)
    if look == "bone":   # with no gaze the posed path draws exactly what the plain renderer draws
        from native.render import Renderer, RenderOptions
        np.testing.assert_array_equal(still, Renderer(rig, RenderOptions(width=SIZE, height=SIZE)).render({}))
    p0 = _pupils(still)
    left, up = _pupils(avatar.render(LOOK_LEFT, rig=rig, size=SIZE)), _pupils(avatar.render(LOOK_UP, rig=rig, size=SIZE))
    # the subject's left is the viewer's right (+x in the image); up is -y in the image
    assert np.all(left[:, 0] - p0[:, 0] > 1.5), (p0, left)
    assert np.all(np.abs(left[:, 1] - p0[:, 1]) < 1.0)
    assert np.all(p0[:, 1] - up[:, 1] > 1.5), (p0, up)
    assert np.all(np.abs(up[:, 0] - p0[:, 0]) < 1.0)
