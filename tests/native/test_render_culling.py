"""Back-face culling of single-sided triangles (glTF ``doubleSided``), native and reference alike;
the renderer's persistent worker threads."""
from __future__ import annotations

import os

import numpy as np
import pytest

from emo3d.avatar.rig import Rig
from emo3d.errors import InvalidInputError
from native import reference_render
from native.render import Renderer, RenderOptions
from support.assets import machine_lacks

BG = (10, 20, 30)


def _cut_sphere(n=24, m=32, cut=0.8):
    """A UV sphere (CCW seen from outside) about the z axis with the cap facing the camera (+z,
    z > cut) removed: through the hole the camera sees the inside, i.e. back faces only."""
    th = np.linspace(0.0, np.pi, n)
    ph = np.linspace(0, 2 * np.pi, m, endpoint=False)
    # the poles on +-z; rings of constant z
    V = np.array([[np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)] for t in th for p in ph], np.float32)
    F = []
    for i in range(n - 1):
        for j in range(m):
            a, b, c, d = i * m + j, i * m + (j + 1) % m, (i + 1) * m + j, (i + 1) * m + (j + 1) % m
            if min(V[a, 2], V[b, 2], V[c, 2], V[d, 2]) > cut:
                continue
            F += [[a, b, c], [b, d, c]]
    F = np.array(F, np.int32)
    e1, e2 = V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]]
    out = (np.cross(e1, e2) * V[F].mean(axis=1)).sum(axis=1)
    F = np.where((out < 0)[:, None], F[:, ::-1], F)       # CCW seen from outside, whatever the pole rows did
    return V, F


def _rig(single_sided):
    V, F = _cut_sphere()
    d = np.zeros((1, len(V), 3), np.float32)
    d[0, V[:, 1] < -0.3, 1] = -0.2
    ss = None if single_sided is None else np.broadcast_to(np.asarray(single_sided, bool), (len(F),)).copy()
    return Rig.from_dense("cut sphere", V, F, ["jawOpen"], d, colors=np.clip(V * 0.4 + 0.5, 0, 1), single_sided=ss)


def _covered(img):
    return (img != np.array(BG, np.uint8)).any(axis=-1)


def _differ(a, b, tol=2):
    return float((np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > tol).mean())


@pytest.mark.parametrize("ssaa", [1, 2, 3])
def test_single_sided_back_faces_are_not_drawn(ssaa):
    opts = RenderOptions(width=72, height=64, ssaa=ssaa, background=BG)
    both, one = _rig(None), _rig(True)
    w = {"jawOpen": 0.5}
    a_both, a_one = Renderer(both, opts).render(w), Renderer(one, opts).render(w)
    r_both, r_one = reference_render.render(both, w, opts), reference_render.render(one, w, opts)
    assert _differ(a_both, r_both) <= 0.01 and _differ(a_one, r_one) <= 0.01
    # the hole: double-sided shows the inside, single-sided shows the background through it
    hole = _covered(a_both) & ~_covered(a_one)
    assert hole.mean() > 0.05
    cy, cx = np.argwhere(hole).mean(axis=0)
    assert abs(cy - 32) < 4 and abs(cx - 36) < 4                 # centred: the cut faces the camera
    assert not (_covered(a_one) & ~_covered(a_both)).any()       # culling only removes
    near = hole.copy()                    # the hole grown by a pixel: rim pixels mix inside and background
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= np.roll(np.roll(hole, dy, 0), dx, 1)
    ring = _covered(a_one) & ~near
    assert ring.mean() > 0.1
    np.testing.assert_array_equal(a_one[ring], a_both[ring])    # the outside is untouched
    # turned around (yaw 180) the camera sees the closed back: every visible face is a front face
    np.testing.assert_array_equal(Renderer(one, opts).render(w, pose=(180, 0, 0)),
                                  Renderer(both, opts).render(w, pose=(180, 0, 0)))


def test_culling_is_per_triangle():
    V, F = _cut_sphere()
    opts = RenderOptions(width=64, height=64, background=BG)
    # the lower half single-sided, the upper half double-sided: the inside shows only above
    lower = V[F].mean(axis=1)[:, 1] < 0
    mixed = _rig(lower)
    img = Renderer(mixed, opts).render(np.zeros(52))
    ref = reference_render.render(mixed, np.zeros(52), opts)
    assert _differ(img, ref) <= 0.01
    hole = _covered(Renderer(_rig(None), opts).render(np.zeros(52))) & ~_covered(img)
    ys = np.nonzero(hole)[0]
    assert ys.size > 20 and ys.min() >= 30        # culled inside faces are in the image's lower half (y down)
    # threads and batches cull alike
    W = np.zeros((3, 52), np.float32)
    two = Renderer(mixed, RenderOptions(width=64, height=64, background=BG, threads=2)).render(W)
    for f in range(3):
        np.testing.assert_array_equal(two[f], img)


@pytest.mark.parametrize("bad, match", [
    (np.ones(5, bool), r"single_sided must be a bool array with one flag per triangle"),
    ("u8", r"single_sided must be a bool array"),
])
def test_single_sided_validated(bad, match):
    V, F = _cut_sphere(8, 8)
    if isinstance(bad, str):
        bad = np.ones(len(F), np.uint8)
    with pytest.raises(InvalidInputError, match=match):
        Rig.from_dense("x", V, F, ["jawOpen"], np.zeros((1, len(V), 3)), single_sided=bad)


def test_gltf_double_sided_per_material(tmp_path):
    from emo3d.avatar.gltf import load_gltf
    from support.glb import GlbBuilder, U16
    V, F = _cut_sphere(10, 12)
    half = len(F) // 2

    def write(name, sided):
        b = GlbBuilder()
        pos = b.accessor(V)
        prims = []
        for k, faces in enumerate((F[:half], F[half:])):
            mat = b.material((0.8, 0.6, 0.5, 1), double_sided=sided[k])
            prims.append({"attributes": {"POSITION": pos}, "indices": b.accessor(faces.reshape(-1), U16, index=True),
                          "material": mat})
        return load_gltf(b.write(tmp_path / name, [b.node(mesh=b.mesh(prims))]))

    assert write("both.glb", (True, True)).single_sided is None          # nothing culled: no flags
    one = write("default.glb", (None, None))                             # glTF's default: single-sided
    assert one.single_sided is not None and one.single_sided.all() and len(one.single_sided) == len(F)
    mixed = write("mixed.glb", (False, True))
    np.testing.assert_array_equal(mixed.single_sided, np.arange(len(F)) < half)


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_worker_threads_persist_and_are_joined():
    if not os.path.isdir("/proc/self/task"):
        machine_lacks("/proc/self/task", "Linux lists a process's threads there")
    rig = _rig(True)
    base = _threads()
    r = Renderer(rig, RenderOptions(width=96, height=96, threads=3))
    np.testing.assert_array_equal(r.render(np.zeros(52)), r.render(np.zeros(52)))
    assert _threads() == base                     # a small single frame is drawn on the calling thread
    first = r.render(np.zeros((3, 52)))           # started on the first render that splits work
    assert _threads() == base + 2                 # the caller plus two workers
    for _ in range(5):
        np.testing.assert_array_equal(r.render(np.zeros((3, 52))), first)
        assert _threads() == base + 2             # the same workers, batch after batch
    del r
    assert _threads() == base                     # joined with the renderer
    for _ in range(20):                           # renderers made and dropped leave no thread behind
        Renderer(rig, RenderOptions(width=96, height=96, threads=2)).render(np.zeros((2, 52)))
    assert _threads() == base


def test_a_forked_child_renders_with_its_own_workers():
    """fork copies only the calling thread: a child of a process whose renderer has started its workers
    must start its own, not wait for the parent's (the pool used to hang here)."""
    if not hasattr(os, "fork"):
        machine_lacks("os.fork", "POSIX only")
    rig = _rig(True)
    r = Renderer(rig, RenderOptions(width=96, height=96, threads=2))
    want = r.render(np.zeros((2, 52)))[0]   # a batch: the workers start
    pid = os.fork()
    if pid == 0:   # the child: exit 0 only if it renders the same image, in time
        import signal
        signal.alarm(20)
        try:
            ok = np.array_equal(r.render(np.zeros(52)), want) and np.array_equal(r.render(np.zeros((3, 52)))[1], want)
            del r
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    np.testing.assert_array_equal(r.render(np.zeros(52)), want)   # the parent's workers are still there
