"""The mip level of a rig's texture the renderers sample (native.texture_level, RenderOptions.texture_level)."""
from __future__ import annotations

import numpy as np
import pytest

from emo3d.avatar.rig import Rig
from emo3d.errors import InvalidInputError
from native import reference_render
from native.camera import framing
from native.render import Renderer, RenderOptions
from native.texture_level import auto_level, max_level, mip, texture_for


def _quad(tex_side: int, seed: int = 0):
    """A flat square facing the camera, uv (0,0)..(1,1) over a random tex_side^2 texture."""
    V = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    F = np.array([[0, 1, 2], [0, 2, 3]], np.int32)          # CCW seen from +z: front faces
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    tex = np.random.default_rng(seed).integers(0, 256, (tex_side, tex_side, 3)).astype(np.uint8)
    d = np.zeros((1, 4, 3), np.float32)
    return Rig.from_dense("quad", V, F, ["jawOpen"], d, uvs=uv, texture=tex)


def _cam(rig, opts):
    return framing(rig.vertices, opts)


def test_mip_is_the_rounded_mean_of_2x2_blocks():
    t = np.array([[[0, 10, 255], [1, 10, 255], [7, 0, 9]],
                  [[0, 11, 254], [2, 10, 255], [8, 0, 9]],
                  [[5, 5, 5], [6, 6, 6], [9, 9, 9]]], np.uint8)          # 3x3: odd sides
    one = mip(t, 1)
    assert one.shape == (2, 2, 3) and one.dtype == np.uint8
    # (0+1+0+2+2)//4 = 1, (10+10+11+10+2)//4 = 10, (255+255+254+255+2)//4 = 255 (254.75 rounds up)
    assert one[0, 0].tolist() == [1, 10, 255]
    assert one[0, 1].tolist() == [8, 0, 9]            # the last column repeated: (7+7+8+8+2)//4 = 8
    assert one[1, 0].tolist() == [6, 6, 6]            # the last row repeated: (5+6+5+6+2)//4 = 6
    assert one[1, 1].tolist() == [9, 9, 9]
    assert mip(t, 0) is t
    assert mip(t, 2).shape == (1, 1, 3)


def test_max_level_keeps_both_sides_at_least_two_texels():
    assert max_level((1024, 1536, 3)) == 9              # 2 x 3 texels
    assert max_level((4, 4, 3)) == 1
    assert max_level((3, 64, 3)) == 1                   # an odd side halves rounding up: 3 -> 2 -> 1 rows
    assert max_level((5, 64, 3)) == 2                   # 5 -> 3 -> 2 -> 1
    assert max_level((1, 64, 3)) == 0


@pytest.mark.parametrize("side,tex,want", [(32, 65, 1), (32, 257, 3), (64, 257, 2), (256, 65, 0), (32, 33, 0)])
def test_auto_level_keeps_at_least_one_texel_per_pixel(side, tex, want):
    """The quad fills 84 % of the frame (margin 0.08): texels per pixel = ((tex-1) / (0.84 side))^2, and the
    level is floor(log2 of that / 2): the coarsest level with >= 1 texel per output pixel."""
    rig = _quad(tex)
    opts = RenderOptions(width=side, height=side)
    texels_per_pixel = ((tex - 1) / (0.84 * side)) ** 2
    assert want == max(int(np.floor(np.log2(texels_per_pixel) / 2)), 0)
    assert auto_level(rig, opts, _cam(rig, opts)) == want
    assert Renderer(rig, opts).texture_level == want
    # ssaa does not change it: the level is chosen per output pixel
    assert auto_level(rig, RenderOptions(width=side, height=side, ssaa=4), _cam(rig, opts)) == want


def test_explicit_level_is_clamped_and_level_zero_is_the_texture():
    rig = _quad(65)
    cam = _cam(rig, RenderOptions(width=32, height=32))
    tex0, lv0 = texture_for(rig, RenderOptions(width=32, height=32, texture_level=0), cam)
    assert lv0 == 0 and tex0 is rig.texture
    tex2, lv2 = texture_for(rig, RenderOptions(width=32, height=32, texture_level=2), cam)
    assert lv2 == 2 and tex2.shape == (17, 17, 3)
    np.testing.assert_array_equal(tex2, mip(mip(rig.texture, 1), 1))
    _, top = texture_for(rig, RenderOptions(width=32, height=32, texture_level=16), cam)
    assert top == max_level(rig.texture.shape) == 6   # 65 -> 33 -> 17 -> 9 -> 5 -> 3 -> 2
    colours = Rig.from_dense("c", rig.vertices, rig.triangles, ["jawOpen"], np.zeros((1, 4, 3), np.float32),
                             colors=np.full((4, 3), 0.5, np.float32))
    assert texture_for(colours, RenderOptions(), cam) == (None, 0)


@pytest.mark.parametrize("bad", [-2, 17, 1.5, True])
def test_texture_level_option_is_validated(bad):
    with pytest.raises(InvalidInputError, match="texture_level"):
        RenderOptions(texture_level=bad)


@pytest.mark.parametrize("level", [-1, 0, 1, 2])
def test_native_samples_the_same_level_as_the_reference(level):
    rig = _quad(257, seed=3)
    opts = RenderOptions(width=48, height=48, ssaa=2, texture_level=level, background=(0, 0, 90))
    r = Renderer(rig, opts)
    pose = (12, -8, 5)
    a = r.render(np.zeros(52), pose=pose)
    b = reference_render.render(rig, np.zeros(52), opts, pose=pose)
    differ = (np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > 2).mean()
    assert differ <= 0.01
    # the level is really used: the image is not the one sampled from the full texture (except at level 0)
    full = Renderer(rig, RenderOptions(width=48, height=48, ssaa=2, texture_level=0, background=(0, 0, 90)))
    diff0 = np.abs(a.astype(int) - full.render(np.zeros(52), pose=pose).astype(int)).mean()
    assert (diff0 == 0) == (r.texture_level == 0)
    assert r.texture_level == (2 if level == -1 else level)   # auto: (256 / (0.84 * 48))^2 = 40 texels a pixel
