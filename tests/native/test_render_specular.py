"""The renderer's soft Blinn-Phong highlight: where it lands, how strong it is, and that the C++ shader
(SSE ssaa-2 path and scalar path) agrees with the numpy reference."""
from __future__ import annotations

import numpy as np
import pytest

from emo3d.avatar.rig import Rig
from emo3d.errors import InvalidInputError
from native import reference_render
from native.camera import SPECULAR_POWER, half_vector
from native.render import Renderer, RenderOptions


def _ball(n=24, m=36):
    th = np.linspace(0.02, np.pi - 0.02, n)
    ph = np.linspace(0, 2 * np.pi, m, endpoint=False)
    V = np.array([[np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)] for t in th for p in ph], np.float32)
    F = []
    for i in range(n - 1):
        for j in range(m):
            a, b, c, d = i * m + j, i * m + (j + 1) % m, (i + 1) * m + j, (i + 1) * m + (j + 1) % m
            F += [[a, c, b], [b, c, d]]
    grey = np.full((len(V), 3), 0.4, np.float32)
    return Rig.from_dense("ball", V, np.array(F, np.int32), ["jawOpen"], np.zeros((1, len(V), 3), np.float32),
                          colors=grey)


def _opts(**kw):
    base = dict(width=64, height=64, ssaa=2, margin=0.05, light_dir=(0.5, 0.5, 1.0), ambient=0.3, diffuse=0.6)
    base.update(kw)
    return RenderOptions(**base)


def test_half_vector_bisects_light_and_viewer():
    L = np.array([0.6, 0.0, 0.8])
    h = half_vector(L)
    assert np.isclose(np.linalg.norm(h), 1.0)
    assert np.isclose(h @ L, h @ [0, 0, 1])          # equal angles to the light and the viewer
    assert np.allclose(half_vector(np.array([0.0, 0.0, -1.0])), 0.0)   # opposed: no highlight


def test_highlight_sits_on_the_half_vector_and_scales_with_strength():
    rig = _ball()
    dull = Renderer(rig, _opts(specular=0.0)).render({}).astype(int)
    shiny = Renderer(rig, _opts(specular=0.5)).render({}).astype(int)
    gain = (shiny - dull)[..., 0]
    assert (shiny >= dull).all()                      # the highlight only adds light
    y, x = np.unravel_index(np.argmax(gain), gain.shape)
    # on a unit sphere the normal equals the position: the peak is where the normal is the half vector
    h = half_vector(np.array([0.5, 0.5, 1.0]) / np.linalg.norm([0.5, 0.5, 1.0]))
    assert x > 32 and y < 32                          # upper right (+x right, +y up)
    peak = 0.5 * 0.6 * 255                            # specular * diffuse, at n = h
    assert gain.max() == pytest.approx(peak, abs=6)
    # far from the highlight (n.h = 0.5 -> 0.5^16) the term is negligible
    assert gain[60, 4] <= 1
    assert SPECULAR_POWER == 16 and h[2] > 0


def test_unlit_render_has_no_highlight():
    """diffuse = 0 is the unlit setting: the highlight scales with the key light, so none shows."""
    rig = _ball()
    img = Renderer(rig, _opts(ambient=1.0, diffuse=0.0, specular=1.0)).render({})
    assert img.max() == round(0.4 * 255)


@pytest.mark.parametrize("ssaa", [1, 2, 3])
def test_native_highlight_matches_reference(ssaa):
    rig = _ball()
    opts = _opts(specular=0.4, ssaa=ssaa, background=(30, 40, 50))
    a = Renderer(rig, opts).render({}, pose=(20, -10, 0)).astype(int)
    b = reference_render.render(rig, {}, opts, pose=(20, -10, 0)).astype(int)
    assert (np.abs(a - b).max(axis=-1) > 2).mean() < 0.01


def test_specular_strength_is_validated():
    with pytest.raises(InvalidInputError, match="specular"):
        RenderOptions(specular=-0.1)
