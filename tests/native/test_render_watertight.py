"""The rasteriser is watertight: a sample on an edge shared by two triangles belongs to exactly one of
them (canonical edge functions + the top-left rule), so meshes show no background cracks along their
diagonals; the native renderer and the numpy reference follow the same rule."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from emo3d.avatar.rig import Rig
from native import reference_render
from native.render import Renderer, RenderOptions
from support.glb import face_grid

BG = (255, 0, 255)
FACE = (0.2, 0.6, 0.4)
# unlit, one colour: a sample is either FACE or BG, so a pixel is FACE exactly when all its samples are covered
UNLIT = dict(background=BG, ambient=1.0, diffuse=0.0)


def _grid(n, *, split=False, jitter=0.0, seed=0):
    """A flat n x n quad grid in z = 0 facing +z, two triangles per quad sharing one diagonal.
    split: every triangle gets its own vertices (a seam on every edge, as at uv seams);
    jitter: moves inner vertices in the plane (an irregular triangulation, still one convex outline)."""
    t = np.linspace(-1, 1, n + 1)
    X, Y = np.meshgrid(t, t)
    V = np.stack([X, Y, np.zeros_like(X)], -1).reshape(-1, 3)
    if jitter:
        inner = (np.abs(V[:, 0]) < 1) & (np.abs(V[:, 1]) < 1)
        V[inner, :2] += np.random.default_rng(seed).uniform(-jitter, jitter, (inner.sum(), 2)) / n
    F = []
    for j in range(n):
        for i in range(n):
            a, b, c, d = j * (n + 1) + i, j * (n + 1) + i + 1, (j + 1) * (n + 1) + i + 1, (j + 1) * (n + 1) + i
            F += [(a, b, c), (a, c, d)] if (i + j) % 2 == 0 or not jitter else [(a, b, d), (b, c, d)]
    F = np.array(F, np.int32)
    if split:
        V, F = V[F.reshape(-1)], np.arange(F.size, dtype=np.int32).reshape(-1, 3)
    V = V.astype(np.float32)
    return Rig.from_dense("grid", V, F, ["jawOpen"], np.zeros((1, len(V), 3), np.float32),
                          colors=np.tile(np.float32(FACE), (len(V), 1)))


def _full(img):
    """Pixels whose samples are all on the surface (exactly the face colour)."""
    face = np.floor(np.asarray(FACE) * 255 + 0.5).astype(np.uint8)
    return (img == face).all(axis=-1)


def _gaps(mask):
    """Pixels off ``mask`` lying between two pixels on it in the same row or the same column. The
    projection of a planar convex grid is convex, and so is the set of its fully covered pixels: any
    such pixel is a crack."""
    def rows(m):
        on = m.any(axis=1)
        first = np.where(on, m.argmax(axis=1), m.shape[1])
        last = np.where(on, m.shape[1] - 1 - m[:, ::-1].argmax(axis=1), -1)
        cols = np.arange(m.shape[1])
        return (cols >= first[:, None]) & (cols <= last[:, None]) & ~m
    return rows(mask) | rows(mask.T).T


CASES = [  # (n, pose, size, ssaa, split, jitter)
    (2, (0, 0, 0), 64, 1, False, 0.0),
    (2, (0, 0, 0), 63, 1, False, 0.0),         # odd size: grid lines run through sample centres (horizontal
    (4, (0, 0, 90), 129, 1, True, 0.0),        # edges along a row of samples)
    (7, (0, 0, 0), 97, 1, False, 0.0),
    (16, (0, 0, 0), 192, 2, False, 0.0),
    (33, (0, 0, 0), 128, 1, True, 0.0),
    (16, (0, 0, 45), 160, 1, False, 0.0),
    (12, (25, -15, 30), 144, 2, False, 0.0),
    (10, (180, 0, 0), 96, 1, False, 0.0),      # the back side
    (9, (-30, 20, -10), 120, 1, True, 0.3),
    (24, (10, 5, 0), 256, 2, False, 0.35),
]


@pytest.mark.parametrize("n,pose,size,ssaa,split,jitter", CASES)
def test_flat_grid_has_no_cracks(n, pose, size, ssaa, split, jitter):
    rig = _grid(n, split=split, jitter=jitter, seed=n)
    opts = RenderOptions(width=size, height=size, ssaa=ssaa, **UNLIT)
    img = Renderer(rig, opts).render({}, pose=pose)
    full = _full(img)
    assert full.mean() > 0.15                      # the grid is there
    gaps = _gaps(full)
    assert not gaps.any(), f"{gaps.sum()} cracked pixels, e.g. (row, col) {np.argwhere(gaps)[:5].tolist()}"


@pytest.mark.parametrize("n,pose,size,ssaa,split,jitter", [c for c in CASES if c[2] <= 144])
def test_reference_is_watertight_and_agrees(n, pose, size, ssaa, split, jitter):
    rig = _grid(n, split=split, jitter=jitter, seed=n)
    opts = RenderOptions(width=size, height=size, ssaa=ssaa, **UNLIT)
    a = Renderer(rig, opts).render({}, pose=pose)
    b = reference_render.render(rig, {}, opts, pose=pose)
    assert not _gaps(_full(b)).any()
    assert (a != b).any(axis=-1).mean() <= 0.002


def test_curved_face_grid_diagonal():
    """The case that showed the crack in docs/rigs: the test rigs' symmetric curved face grid, whose quad
    diagonals fall exactly on sample centres along the image's anti-diagonal."""
    V, F, _ = face_grid()
    rig = Rig.from_dense("face", V, F, ["jawOpen"], np.zeros((1, len(V), 3), np.float32),
                         colors=np.tile(np.float32(FACE), (len(V), 1)))
    for size, ssaa in ((192, 1), (384, 1), (192, 2)):
        img = Renderer(rig, RenderOptions(width=size, height=size, ssaa=ssaa, **UNLIT)).render({})
        full = _full(img)
        assert full.mean() > 0.3 and not _gaps(full).any()


def _pinholes(img, bg):
    """Background pixels whose 4 neighbours are all on the surface (ssaa 1: one sample per pixel)."""
    m = (img == np.asarray(bg, np.uint8)).all(axis=-1)
    inner = m[1:-1, 1:-1] & ~m[:-2, 1:-1] & ~m[2:, 1:-1] & ~m[1:-1, :-2] & ~m[1:-1, 2:]
    return int(inner.sum())


@pytest.mark.parametrize("pose", [(0, 0, 0), (20, -8, 5), (-15, 6, -4)])
def test_default_head_has_no_pinholes(pose):
    from emo3d.avatar.default import default_rig
    rig = default_rig()
    bg = (255, 0, 255)
    for size in (160, 256):
        img = Renderer(rig, RenderOptions(width=size, height=size, ssaa=1, background=bg)).render({}, pose=pose)
        assert _pinholes(img, bg) == 0


def test_ict_rig_has_no_pinholes(ict_rig_path):
    from emo3d.avatar.gltf import load_gltf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rig = load_gltf(ict_rig_path)
    bg = (255, 0, 255)
    r = Renderer(rig, RenderOptions(width=256, height=256, ssaa=1, background=bg))
    for pose in [(0, 0, 0), (25, -10, 0)]:
        assert _pinholes(r.render({}, pose=pose), bg) == 0
