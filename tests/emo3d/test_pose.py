"""The pose convention (emo3d.pose) is what the renderer does: render a tiny rig at +yaw, +pitch, +roll and
check that its 'nose' and 'crown' move in the image the way emo3d.pose says. No assets: the rig is built here."""
from __future__ import annotations

import math

import numpy as np
import pytest

from emo3d import pose, schema
from emo3d.avatar.rig import Rig
from native.render import Renderer, RenderOptions

RED, GREEN, GREY = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.5, 0.5, 0.5)


def _quad(cx, cy, z, h):
    return [(cx - h, cy - h, z), (cx + h, cy - h, z), (cx + h, cy + h, z), (cx - h, cy + h, z)]


def _head() -> Rig:
    """A grey back plate (z = -0.5), a red 'nose' square in front of its centre (z = +0.6) and a green
    'crown' square at its top (y = +0.7, z = 0)."""
    quads = [(_quad(0, 0, -0.5, 1.0), GREY), (_quad(0, 0, 0.6, 0.15), RED), (_quad(0, 0.7, 0.0, 0.15), GREEN)]
    verts, tris, cols = [], [], []
    for q, c in quads:
        k = len(verts)
        verts += q
        cols += [c] * 4
        tris += [(k, k + 1, k + 2), (k, k + 2, k + 3)]
    zero = np.zeros((schema.N_MODEL, len(verts), 3), np.float32)
    return Rig.from_dense("pose-probe", np.array(verts, np.float32), np.array(tris, np.int32), schema.MODEL_NAMES,
                          zero, colors=np.array(cols, np.float32))


def _centroid(img: np.ndarray, colour) -> np.ndarray:
    """(column, row) mean of the pixels of one flat colour (the light changes brightness, not the hue)."""
    c = np.asarray(colour) > 0.5
    mask = (img[..., c].min(axis=-1) > 40) & (img[..., ~c].max(axis=-1) < 20)
    assert mask.sum() > 10, "the probe is not visible"
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean(), rows.mean()])


@pytest.fixture(scope="module")
def render():
    r = Renderer(_head(), RenderOptions(width=96, height=96, ssaa=1, ambient=0.9, diffuse=0.1))
    return lambda p: r.render(np.zeros(schema.N_MEDIAPIPE, np.float32), pose=p)


def test_renderer_follows_the_stated_convention(render):
    nose0, crown0 = _centroid(render((0, 0, 0)), RED), _centroid(render((0, 0, 0)), GREEN)
    d = _centroid(render((0, 20, 0)), RED) - nose0
    assert d[1] > 3 and abs(d[0]) < 1          # +pitch looks down: the nose moves down the image
    d = _centroid(render((20, 0, 0)), RED) - nose0
    assert d[0] > 3 and abs(d[1]) < 1          # +yaw turns toward the subject's left = the viewer's right
    d = _centroid(render((0, 0, 20)), GREEN) - crown0
    assert d[0] < -3                           # +roll: the top of the head moves to the viewer's left


def test_pose_helpers():
    R = pose.pose_matrix((0, 90, 0))
    assert np.allclose(R @ np.array([0, 0, 1.0]), [0, -1, 0], atol=1e-6)     # the nose (+z) points down
    assert np.allclose(pose.rotation(*pose.to_radians((10, 20, 30))), pose.pose_matrix((10, 20, 30)), atol=1e-6)
    assert pose.to_degrees((math.pi, 0, -math.pi / 2)) == pytest.approx((180.0, 0.0, -90.0))
    w = np.zeros(schema.N_MEDIAPIPE, np.float32)
    w[schema.MEDIAPIPE_INDEX["eyeLookDownLeft"]] = w[schema.MEDIAPIPE_INDEX["eyeLookDownRight"]] = 1.0
    ly, lp, _, ry, rp, _ = pose.eyes_from_weights(w)
    assert lp == rp == pytest.approx(math.radians(pose.EYE_PITCH_DEG)) and ly == ry == 0   # down = +pitch
    from emo3d.errors import InvalidInputError
    with pytest.raises(InvalidInputError, match="pose"):
        pose.pose_matrix((0, float("nan"), 0))
