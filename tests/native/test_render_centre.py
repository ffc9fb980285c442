"""Supersampling: a pixel whose samples all lie on one triangle is shaded once, at its centre
(native.reference_render's conventions); the others are the mean of their samples."""
from __future__ import annotations

import numpy as np
import pytest

from emo3d.avatar.rig import Rig
from native import reference_render
from native.render import Renderer, RenderOptions


def _noise_quad():
    """A flat square facing the camera (two triangles along the diagonal) over 96x96 texels of noise."""
    V = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    F = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    tex = np.random.default_rng(7).integers(0, 256, (96, 96, 3)).astype(np.uint8)
    return Rig.from_dense("noise", V, F, ["jawOpen"], np.zeros((1, 4, 3), np.float32), uvs=uv, texture=tex)


@pytest.mark.parametrize("wide", [True, False])
def test_a_pixel_inside_one_triangle_is_its_centre_colour(wide):
    """At ssaa 1 the one sample of a pixel is its centre, so inside a triangle the ssaa-2 image equals the
    ssaa-1 image; the mean of the four samples (about a texel apart on this noise) would not."""
    rig = _noise_quad()
    o = dict(width=48, height=48, texture_level=0, margin=0.02, diffuse=0.0, ambient=1.0, specular=0.0)
    r2 = Renderer(rig, RenderOptions(ssaa=2, **o))
    if not wide:   # the SSE kernels every x86-64 CPU has (else the AVX2 ones where the CPU has them)
        assert r2._native._set_wide_kernels(False) is False
    two = r2.render(np.zeros(52)).astype(int)
    one = Renderer(rig, RenderOptions(ssaa=1, **o)).render(np.zeros(52)).astype(int)
    yy, xx = np.mgrid[0:48, 0:48]
    # pixels well inside one triangle: inside the quad, away from its border and from the diagonal
    # (vertex 0 at the bottom left to vertex 2 at the top right on the y-down screen)
    inside = (np.abs(xx + yy - 47) > 2) & (xx > 2) & (xx < 45) & (yy > 2) & (yy < 45)
    assert inside.sum() > 1500
    assert np.abs(two - one)[inside].max() <= 1
    # the mean of the four samples is a different image: what the centre rule changes
    # (96^2 at ssaa 1: one sample at each of the 48^2 frame's ssaa-2 sample positions)
    four = Renderer(rig, RenderOptions(ssaa=1, **dict(o, width=96, height=96))).render(np.zeros(52)).astype(int)
    mean4 = four.reshape(48, 2, 48, 2, 3).mean(axis=(1, 3))
    assert np.abs(mean4 - two)[inside].mean() > 5 and np.abs(mean4 - one)[inside].mean() > 5
    ref = reference_render.render(rig, np.zeros(52), RenderOptions(ssaa=2, **o)).astype(int)
    assert (np.abs(ref - two).max(axis=-1) > 1).mean() <= 0.01
