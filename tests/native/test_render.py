"""Native renderer vs the numpy reference, rig validation and bad weights."""
from __future__ import annotations

from dataclasses import replace

import warnings

import numpy as np
import pytest

from emo3d.avatar.rig import Rig, WeightClampWarning
from emo3d import schema
from emo3d.errors import InvalidInputError
from native import reference_render
from native.render import Renderer, RenderOptions
from support.assets import machine_lacks


def _sphere(n=14, m=24):
    """A closed UV sphere (CCW seen from outside) with its uv = (longitude, latitude)."""
    th = np.linspace(0.05, np.pi - 0.05, n)
    ph = np.linspace(0, 2 * np.pi, m, endpoint=False)
    V = np.array([[np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)] for t in th for p in ph], np.float32)
    uv = np.array([[p / (2 * np.pi), t / np.pi] for t in th for p in ph], np.float32)
    F = []
    for i in range(n - 1):
        for j in range(m):
            a, b, c, d = i * m + j, i * m + (j + 1) % m, (i + 1) * m + j, (i + 1) * m + (j + 1) % m
            F += [[a, c, b], [b, c, d]]
    return V, np.array(F, np.int32), uv


def _rig(kind="colors"):
    V, F, uv = _sphere()
    d = np.zeros((3, len(V), 3), np.float32)
    d[0, V[:, 1] < -0.3, 1] = -0.4          # jawOpen: the bottom drops
    d[1, V[:, 0] > 0.3, 0] = 0.3            # mouthSmileLeft: the subject's left (+x) side moves out
    d[2, V[:, 1] > 0.5, 1] = 0.2            # browInnerUp
    names = ["jawOpen", "mouthSmileLeft", "browInnerUp"]
    if kind == "colors":
        return Rig.from_dense("sphere", V, F, names, d, colors=np.clip(V * 0.4 + 0.5, 0, 1))
    if kind == "texture":
        yy, xx = np.mgrid[0:32, 0:64]
        tex = np.stack([(xx * 4) % 256, (yy * 8) % 256, ((xx // 8 + yy // 8) % 2) * 200 + 40], -1).astype(np.uint8)
        return Rig.from_dense("sphere", V, F, names, d, uvs=uv, texture=tex)
    return Rig.from_dense("sphere", V, F, names, d)


def _differ(a, b, tol=2):
    """Fraction of pixels whose channels differ by more than ``tol`` levels."""
    return float((np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > tol).mean())


@pytest.mark.parametrize("kind", ["colors", "texture", "plain"])
@pytest.mark.parametrize("pose", [(0, 0, 0), (35, -15, 10), (180, 0, 0)])
def test_native_matches_reference(kind, pose):
    rig = _rig(kind)
    opts = RenderOptions(width=80, height=64, ssaa=2, background=(10, 20, 30))
    r = Renderer(rig, opts)
    assert r.native
    w = {"jawOpen": 0.6, "mouthSmileLeft": 0.5, "browInnerUp": 0.3}
    a = r.render(w, pose=pose)
    b = reference_render.render(rig, w, opts, pose=pose)
    assert a.shape == b.shape == (64, 80, 3) and a.dtype == np.uint8
    assert _differ(a, b) <= 0.01
    assert (a != np.array([10, 20, 30], np.uint8)).any(axis=-1).mean() > 0.2  # the face is there


@pytest.mark.parametrize("ssaa", [1, 3])
def test_native_matches_reference_ssaa_and_light(ssaa):
    rig = _rig("colors")
    opts = RenderOptions(width=48, height=48, ssaa=ssaa, fov_deg=35, margin=0.2, ambient=0.2, diffuse=1.0)
    r = Renderer(rig, opts)
    a = r.render(np.zeros(52), light_dir=(-1, 0.2, 0.5))
    b = reference_render.render(rig, np.zeros(52), opts, light_dir=(-1, 0.2, 0.5))
    assert _differ(a, b) <= 0.01


@pytest.mark.parametrize("kind", ["colors", "texture", "plain"])
def test_wide_kernels_match_the_sse_ones(kind):
    """On an x86-64-v3 CPU an ssaa-2 frame is shaded eight samples (two pixels) at a time and a narrow
    triangle's coverage tested four samples at a time; the SSE paths every other x86-64 CPU runs must give
    the same image (an odd width: a lone last pixel)."""
    r = Renderer(_rig(kind), RenderOptions(width=67, height=50, background=(10, 20, 30)))
    if not r._native._set_wide_kernels(True):
        machine_lacks("an x86-64-v3 CPU (AVX2 + FMA)", "the eight-sample shader runs only there")
    W = np.zeros((2, 52), np.float32)
    W[1, schema.MEDIAPIPE_NAMES.index("jawOpen")] = 0.7
    wide = [r.render(W, pose=(35, -15, 10)), r.render(W[1], pose=(-20, 5, 0))]
    assert r._native._set_wide_kernels(False) is False
    four = [r.render(W, pose=(35, -15, 10)), r.render(W[1], pose=(-20, 5, 0))]
    for a, b in zip(wide, four):
        assert (a != np.array([10, 20, 30], np.uint8)).any(axis=-1).mean() > 0.2   # the sphere is there
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
        assert _differ(a, b, tol=0) <= 0.002


def test_avx512_narrow_kernel_gives_the_same_bits():
    """On an x86-64-v4 CPU a narrow triangle's coverage is tested eight samples per compare and its row's
    depth test is one masked 16-lane store; it must give exactly the 256-bit kernel's image (the same
    double products and comparisons), here on a dense sphere whose triangles are nearly all narrow, at
    an odd width (rows that end inside a 16-lane window) and with a head turn (back faces, silhouettes)."""
    V, F, uv = _sphere(48, 80)
    d = np.zeros((1, len(V), 3), np.float32)
    d[0, V[:, 1] < -0.3, 1] = -0.3
    rig = Rig.from_dense("dense sphere", V, F, ["jawOpen"], d, colors=np.clip(V * 0.4 + 0.5, 0, 1))
    r = Renderer(rig, RenderOptions(width=67, height=50, background=(10, 20, 30)))
    r._native._set_wide_kernels(True)
    if not r._native._avx512_kernels():
        machine_lacks("an x86-64-v4 CPU (AVX-512)", "the 512-bit narrow-triangle kernel runs only there")
    W = np.zeros((2, 52), np.float32)
    W[1, schema.MEDIAPIPE_NAMES.index("jawOpen")] = 0.8
    poses = [(0, 0, 0), (35, -15, 10), (-60, 20, 5)]
    wide512 = [r.render(W, pose=p) for p in poses]
    assert r._native._set_wide_kernels(True, avx512=False) is True and not r._native._avx512_kernels()
    wide256 = [r.render(W, pose=p) for p in poses]
    for a, b in zip(wide512, wide256):
        assert (a != np.array([10, 20, 30], np.uint8)).any(axis=-1).mean() > 0.3   # the sphere is there
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("size", [67, 96])
def test_wide_triangles_cut_by_the_frame_match_the_reference(size):
    """Triangles far wider than a narrow one's 16 samples, overlapping in depth and cut by the image's
    right and bottom edges: their spans are depth-tested eight samples at a time, the last samples of a
    row one by one, so no lane beyond the row is touched; the image is the reference's (unlit, flat
    colours: any coverage or depth difference would show)."""
    V = np.array([[-1.0, -1.0, 0.0], [3.0, -0.6, 0.0], [-0.2, 3.0, 0.0],     # near, reaches past right and top
                  [-0.8, 0.9, -0.4], [2.5, 1.2, 0.3], [0.4, -3.0, 0.1],      # crosses the first in depth
                  [-1.0, 1.0, -0.8], [1.0, 1.0, -0.8], [1.0, -1.0, -0.8]], np.float32)  # behind both
    F = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]], np.int32)
    colors = np.repeat(np.array([[0.9, 0.2, 0.1], [0.1, 0.8, 0.2], [0.2, 0.3, 0.9]], np.float32), 3, axis=0)
    rig = Rig.from_dense("slabs", V, F, ["jawOpen"], np.zeros((1, 9, 3), np.float32), colors=colors)
    rig.frame_box = np.array([[-1.0, -1.0, -0.8], [1.0, 1.0, 0.3]], np.float32)   # frame the middle only
    opts = RenderOptions(width=size, height=size, ambient=1.0, diffuse=0.0, background=(10, 20, 30), threads=1)
    for pose in ((0, 0, 0), (10, -20, 15)):
        a = Renderer(rig, opts).render({}, pose=pose)
        b = reference_render.render(rig, {}, opts, pose=pose)
        assert len(np.unique(a.reshape(-1, 3), axis=0)) >= 4          # three slabs and the background
        on = (a != np.array([10, 20, 30], np.uint8)).any(axis=-1)
        assert on.mean() > 0.6 and on[:, -1].mean() > 0.5 and on[-1].mean() > 0.3   # cut by the frame
        assert _differ(a, b, tol=1) <= 0.002


def test_batch_threads_and_render_vertices_agree():
    rig = _rig("texture")
    rng = np.random.default_rng(0)
    W = rng.uniform(0, 1, (5, 52)).astype(np.float32)
    one = Renderer(rig, RenderOptions(width=40, height=40, threads=1))
    two = Renderer(rig, RenderOptions(width=40, height=40, threads=2))
    batch = two.render(W)
    assert batch.shape == (5, 40, 40, 3)
    for f in range(5):
        np.testing.assert_array_equal(batch[f], one.render(W[f]))
    verts = rig.deform(W)
    np.testing.assert_array_equal(one.render_vertices(verts), batch)
    np.testing.assert_array_equal(one.render_vertices(verts[2]), batch[2])
    ref = reference_render.render(rig, W[:2], one.options)
    assert ref.shape == (2, 40, 40, 3) and _differ(ref[1], batch[1]) <= 0.01


def test_framing_lighting_and_sides():
    rig = _rig("plain")
    opts = RenderOptions(width=64, height=64, ssaa=1, margin=0.1)
    r = Renderer(rig, opts)
    img = r.render(np.zeros(52))
    ys, xs = np.nonzero(img.max(axis=-1) > 0)
    # the neutral mesh fills the frame less the margin, centred
    assert ys.min() >= 3 and ys.max() <= 60 and xs.min() >= 3 and xs.max() <= 60
    assert ys.max() - ys.min() > 40 and abs((xs.min() + xs.max()) / 2 - 31.5) < 2
    front = r.render(np.zeros(52), light_dir=(0, 0, 1))[32, 32].astype(int)
    back = r.render(np.zeros(52), light_dir=(0, 0, -1))[32, 32].astype(int)
    assert front[0] > back[0] + 100  # Lambert: lit from the viewer vs ambient only
    assert abs(back[0] - round(0.75 * 0.35 * 255)) <= 2
    # mouthSmileLeft moves the subject's left (+x) = the viewer's right of the image
    moved = r.render({"mouthSmileLeft": 1.0})
    diff = np.abs(moved.astype(int) - img).max(axis=-1) > 0
    cols = np.nonzero(diff)[1]
    assert cols.size and cols.mean() > 40


@pytest.mark.parametrize("ssaa", [2, 3])
def test_single_frame_bands_match_the_batch_path(ssaa):
    # one frame on two threads: deformation and projection split (>= 8192 vertices), rows drawn in
    # bands that threads take in turn from per-band triangle lists (a frame of >= 2^19 samples); a
    # batch of frames draws each frame on one thread over all triangles. Both must give the same image,
    # bit for bit, also with a height (450) that is not a whole number of bands; one thread draws the
    # frame in one pass, and so does two threads' renderer for a small frame.
    V, F, uv = _sphere(n=96, m=96)
    assert len(V) >= 8192
    d = np.zeros((1, len(V), 3), np.float32)
    d[0, V[:, 1] < -0.3, 1] = -0.4
    rig = Rig.from_dense("big sphere", V, F, ["jawOpen"], d, colors=np.clip(V * 0.4 + 0.5, 0, 1))
    W = np.zeros((2, 52), np.float32)
    W[:, schema.MEDIAPIPE_NAMES.index("jawOpen")] = [0.0, 0.8]
    opts = RenderOptions(width=390, height=450, ssaa=ssaa, threads=2)
    assert opts.width * opts.height * ssaa ** 2 >= 1 << 19   # split over the threads
    r = Renderer(rig, opts)
    r1 = Renderer(rig, replace(opts, threads=1))
    batch = r.render(W, pose=(25, -10, 5))
    for f in range(2):
        single = r.render(W[f], pose=(25, -10, 5))
        np.testing.assert_array_equal(single, batch[f])
        np.testing.assert_array_equal(r1.render(W[f], pose=(25, -10, 5)), batch[f])
    assert not np.array_equal(batch[0], batch[1])   # the jaw moved
    small = RenderOptions(width=130, height=150, ssaa=ssaa, threads=2)  # drawn on the calling thread
    one = Renderer(rig, small).render(W[1], pose=(25, -10, 5))
    np.testing.assert_array_equal(one, Renderer(rig, small).render(W, pose=(25, -10, 5))[1])
    np.testing.assert_array_equal(one, Renderer(rig, replace(small, threads=1)).render(W[1], pose=(25, -10, 5)))
    ref = reference_render.render(rig, W[1], small, pose=(25, -10, 5))
    assert _differ(ref, one) <= 0.01


def test_ict_rig_native_matches_reference(ict_rig_path):
    from emo3d.avatar.gltf import load_gltf
    rig = load_gltf(ict_rig_path)
    opts = RenderOptions(width=64, height=64)
    w = {"jawOpen": 0.7, "eyeBlinkLeft": 1.0, "mouthSmileRight": 0.5}
    a = Renderer(rig, opts).render(w, pose=(10, 5, 0))
    b = reference_render.render(rig, w, opts, pose=(10, 5, 0))
    assert _differ(a, b) <= 0.01


# --- bad weights ------------------------------------------------------------------------------
def test_nan_and_inf_weights_raise():
    rig = _rig()
    r = Renderer(rig, RenderOptions(width=16, height=16))
    for bad in (float("nan"), float("inf"), -float("inf")):
        w = np.zeros(52, np.float32)
        w[schema.MEDIAPIPE_INDEX["jawOpen"]] = bad
        with pytest.raises(InvalidInputError, match="NaN or inf"):
            r.render(w)
        with pytest.raises(InvalidInputError):
            r.render({"jawOpen": bad})
        with pytest.raises(InvalidInputError):
            reference_render.render(rig, w, r.options)
    with pytest.raises(InvalidInputError):
        rig.deform(np.full(51, np.nan))


def test_out_of_range_weights_clamped_and_reported():
    rig = _rig()
    r = Renderer(rig, RenderOptions(width=24, height=24))
    with pytest.warns(WeightClampWarning, match="jawOpen=1.7"):
        high = r.render({"jawOpen": 1.7, "browInnerUp": -0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = r.render({"jawOpen": 1.0, "browInnerUp": 0.0})
    np.testing.assert_array_equal(high, ok)
    with pytest.warns(WeightClampWarning):
        w = rig.weights_for(np.full((2, 51), 2.0))
    assert w.shape == (2, 3) and (w == 1.0).all()


def test_unknown_names_list_close_matches():
    rig = _rig()
    with pytest.raises(InvalidInputError, match="jawOpen"):
        rig.weights_for({"jawOpn": 1.0})
    with pytest.raises(InvalidInputError, match="did you mean"):
        Renderer(rig, RenderOptions(width=16, height=16)).render({"mouthSmileLeftt": 0.5})


def test_weight_forms_agree():
    rig = _rig()
    v52 = np.zeros(52, np.float32)
    v52[schema.MEDIAPIPE_INDEX["jawOpen"]] = 0.5
    v51 = schema.mediapipe_to_model(v52)
    a = rig.weights_for(v52)
    np.testing.assert_array_equal(a, rig.weights_for(v51))
    np.testing.assert_array_equal(a, rig.weights_for({"JawOpen": 0.5}))
    np.testing.assert_array_equal(a, rig.weights_for(v52[None]))
    assert a.shape == (1, 3) and a[0, rig.target_names.index("jawOpen")] == 0.5
    with pytest.raises(InvalidInputError, match="52"):
        rig.weights_for(np.zeros(7))
    with pytest.raises(InvalidInputError):
        rig.weights_for(np.array(["a"] * 52))


# --- options, pose, rig validation --------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(width=0), dict(height=5.5), dict(ssaa=0), dict(fov_deg=0.0),
                                dict(margin=0.5), dict(light_dir=(0, 0, 0)), dict(ambient=-1.0),
                                dict(background=(0, 0, 300)), dict(background=(0, 0)), dict(threads=-1),
                                dict(width=8192, height=8192, ssaa=4)])
def test_render_options_validated(kw):
    with pytest.raises(InvalidInputError):
        RenderOptions(**kw)


def test_bad_pose_light_and_vertices():
    rig = _rig()
    r = Renderer(rig, RenderOptions(width=16, height=16))
    with pytest.raises(InvalidInputError, match="pose"):
        r.render(np.zeros(52), pose=(0, float("nan"), 0))
    with pytest.raises(InvalidInputError, match="pose"):
        r.render(np.zeros(52), pose=(0, 0))
    with pytest.raises(InvalidInputError, match="light_dir"):
        r.render(np.zeros(52), light_dir=(0, 0, 0))
    with pytest.raises(InvalidInputError, match="V="):
        r.render_vertices(np.zeros((5, 3)))
    with pytest.raises(InvalidInputError, match="NaN"):
        r.render_vertices(np.full((rig.n_vertices, 3), np.nan))


def _parts():
    V, F, _ = _sphere(6, 8)
    d = np.zeros((1, len(V), 3), np.float32)
    d[0, :4, 1] = 0.1
    from native.reference import dense_to_sparse
    off, idx, val = dense_to_sparse(d)
    return dict(name="x", vertices=V, triangles=F, target_names=("jawOpen",), offsets=off, indices=idx, values=val)


@pytest.mark.parametrize("change,match", [
    (dict(vertices=np.zeros((10, 2), np.float32)), "vertices"),
    (dict(triangles=np.array([[0, 1, 999]])), "out of range"),
    (dict(triangles=np.array([[0, 1, -1]])), "out of range"),
    (dict(triangles=np.array([[0.0, 1.0, 2.0]])), "triangles"),
    (dict(target_names=("jawOpn",)), "jawOpen"),
    (dict(target_names=("_neutral",)), "51 ARKit"),   # tongueOut is an allowed extra target
    (dict(offsets=np.array([0, 3], np.int64)), "offsets"),
    (dict(indices=np.array([0, 1, 2, 10_000], np.int32)), "indices"),
    (dict(values=np.full((4, 3), np.nan, np.float32)), "NaN"),
    (dict(texture=np.zeros((4, 4, 3), np.uint8)), "uvs"),
    (dict(colors=np.full((48, 3), 2.0, np.float32)), "colors"),
])
def test_rig_validation(change, match):
    parts = _parts()
    Rig(**parts)  # the unchanged parts are valid
    parts.update(change)
    with pytest.raises(InvalidInputError, match=match):
        Rig(**parts)


def test_rig_canonicalises_names_and_rejects_duplicates():
    parts = _parts()
    parts["target_names"] = ("JAWOPEN",)
    assert Rig(**parts).target_names == ("jawOpen",)
    V, F, _ = _sphere(6, 8)
    with pytest.raises(InvalidInputError, match="twice"):
        Rig.from_dense("x", V, F, ["eyeBlink_L", "eyeBlinkLeft"], np.zeros((2, len(V), 3)))


def test_concurrent_calls_on_one_renderer_are_safe():
    from concurrent.futures import ThreadPoolExecutor
    rig = _rig("texture")
    r = Renderer(rig, RenderOptions(width=48, height=48, threads=2))
    W = np.random.default_rng(5).uniform(0, 1, (8, 52)).astype(np.float32)
    want = [r.render(w) for w in W]
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(r.render, W))
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_texture_beyond_the_sampler_limit_is_refused():
    """The SIMD sampler indexes texels in float: more than 2^24 texels is a clear error, not garbage."""
    V, F, uv = _sphere(6, 8)
    d = np.zeros((1, len(V), 3), np.float32)
    big = np.zeros((4097, 4096, 3), np.uint8)
    rig = Rig.from_dense("big", V, F, ["jawOpen"], d, uvs=uv, texture=big)
    full = RenderOptions(width=16, height=16, texture_level=0)   # the full texture, not a mip level of it
    with pytest.raises(ValueError, match="texture too large: 4096x4097"):
        Renderer(rig, full)
    ok = Rig.from_dense("ok", V, F, ["jawOpen"], d, uvs=uv, texture=big[:4096])
    assert Renderer(ok, full).render(np.zeros(52)).shape == (16, 16, 3)
    # at the automatic level the 16x16 frame samples a small mip level of the too-large texture
    assert Renderer(rig, RenderOptions(width=16, height=16)).texture_level > 0
