"""Rendering: the native C++ renderer vs the numpy reference renderer (same conventions, same images).

    python -m benchmarks.render [--quick]

Scenes: the default head (``avatar.default_rig()``; a synthetic sphere-face where it cannot be built)
at 256^2, and the ICT-FaceKit rig (where ``../shared`` exists) at 512^2, ssaa 2, an expression with a
few active shapes and a small head turn. Native with every core (threads=0) and with 1 thread; frames
per second on 1 and 2 threads for single frames (row bands split over threads from 2^19 samples up, so
the 512^2 ICT scene; the 256^2 head is drawn on the calling thread either way) and for batches of 16
(frames split over threads). Times are medians over repeats (this machine is shared); the 1-thread
native and the reference are timed in alternation so that a slow spell hits both. Last line: the
default head at 256^2, native on ONE thread vs the reference (wall medians), with all cores and the
1-thread CPU times alongside; floor 50x.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from benchmarks.timing import Timer, timed
from emo3d.errors import AssetError
from native import _core, reference_render
from native.render import Renderer, RenderOptions

WEIGHTS = {"jawOpen": 0.4, "mouthSmileLeft": 0.6, "mouthSmileRight": 0.5, "browInnerUp": 0.3, "eyeBlinkRight": 0.2}
POSE = (8.0, -4.0, 2.0)


_TIMER = Timer()
_best = _TIMER.median_ms
_MINS = _TIMER.minima


_cpu = Timer.median_cpu_ms


def sphere_face():
    """Fallback head: a 64x32 UV sphere with a vertex-colour face and a few synthetic targets."""
    from emo3d.avatar.rig import Rig
    from emo3d import schema
    n, m = 48, 64
    th = np.linspace(0.02, np.pi - 0.02, n)
    ph = np.linspace(0, 2 * np.pi, m, endpoint=False)
    V = np.array([[0.8 * np.sin(t) * np.sin(p), np.cos(t), 0.9 * np.sin(t) * np.cos(p)] for t in th for p in ph],
                 np.float32)
    F = []
    for i in range(n - 1):
        for j in range(m):
            a, b, c, d = i * m + j, i * m + (j + 1) % m, (i + 1) * m + j, (i + 1) * m + (j + 1) % m
            F += [[a, c, b], [b, c, d]]
    col = np.tile([0.85, 0.65, 0.55], (len(V), 1)).astype(np.float32)
    col[(V[:, 1] > 0.25) & (V[:, 1] < 0.35) & (V[:, 2] > 0.5)] = [0.3, 0.2, 0.15]  # brows
    col[(np.abs(V[:, 1] + 0.45) < 0.06) & (V[:, 2] > 0.6)] = [0.7, 0.3, 0.3]       # lips
    rng = np.random.default_rng(0)
    deltas = np.zeros((schema.N_MODEL, len(V), 3), np.float32)
    for t in range(schema.N_MODEL):
        c = V[rng.integers(len(V))]
        w = np.exp(-np.sum((V - c) ** 2, 1) / 0.05)
        deltas[t] = (w[:, None] * rng.normal(0, 0.05, 3)).astype(np.float32) * (w[:, None] > 0.01)
    return Rig.from_dense("sphere-face", V, np.array(F), schema.MODEL_NAMES, deltas, colors=col)


def _head():
    from emo3d import avatar
    try:
        return avatar.default_rig(), "default head"
    except AssetError as e:  # the default rig needs the MediaPipe bundle
        print(f"(avatar.default_rig() unavailable: {type(e).__name__}: {e}; using a synthetic sphere-face)")
        return sphere_face(), "sphere-face"


def _interleaved(native_fn, ref_fn, rounds: int, per_round: int) -> tuple:
    """Median wall times (ms) of the native and reference calls measured in alternation (rounds of one
    reference call then ``per_round`` native calls), so a slow spell of this shared machine hits both."""
    native_fn()
    ref_fn()
    tn, tr = [], []
    for _ in range(rounds):
        tr.append(timed(ref_fn))
        tn.extend(timed(native_fn) for _ in range(per_round))
    return float(np.median(tn)) * 1e3, float(np.median(tr)) * 1e3


def bench(rig, label: str, size: int, repeats: int, ref_repeats: int) -> tuple:
    opts = RenderOptions(width=size, height=size)
    r_all = Renderer(rig, opts)
    r1 = Renderer(rig, RenderOptions(width=size, height=size, threads=1))
    r2 = Renderer(rig, RenderOptions(width=size, height=size, threads=2))
    native = _best(lambda: r_all.render(WEIGHTS, pose=POSE), repeats)
    native1, ref = _interleaved(lambda: r1.render(WEIGHTS, pose=POSE),
                                lambda: reference_render.render(rig, WEIGHTS, opts, pose=POSE), ref_repeats, repeats)
    cpu_native = _cpu(lambda: r1.render(WEIGHTS, pose=POSE), repeats)
    cpu_ref = _cpu(lambda: reference_render.render(rig, WEIGHTS, opts, pose=POSE), ref_repeats)
    a = r_all.render(WEIGHTS, pose=POSE)
    b = reference_render.render(rig, WEIGHTS, opts, pose=POSE)
    differ = float((np.abs(a.astype(int) - b.astype(int)).max(-1) > 2).mean())
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 0.6, (16, 52)).astype(np.float32)
    fps = {}
    for th, r in ((1, r1), (2, r2)):
        fps[f"single{th}"] = 1e3 / _best(lambda: r.render(WEIGHTS, pose=POSE), repeats)
        fps[f"batch{th}"] = 16e3 / _best(lambda: r.render(batch, pose=POSE), max(2, repeats // 8))
    print(f"{label} ({rig.n_vertices} vertices, {rig.triangles.shape[0]} triangles) {size}^2 ssaa {opts.ssaa}: "
          f"numpy reference {ref:8.1f} ms | native {native:6.2f} ms (all cores), {native1:6.2f} ms (1 thread) | "
          f"ratio {ref / native:5.1f}x (1 thread {ref / native1:5.1f}x) | pixels differing {differ:.2%}")
    print(f"    CPU time (1 thread): numpy reference {cpu_ref:8.1f} ms | native {cpu_native:6.2f} ms | "
          f"ratio {cpu_ref / cpu_native:5.1f}x")
    print(f"    frames/s: single frames 1 thr {fps['single1']:6.1f}, 2 thr {fps['single2']:6.1f}; "
          f"batches of 16: 1 thr {fps['batch1']:6.1f}, 2 thr {fps['batch2']:6.1f}")
    return ref, native, native1, cpu_ref, cpu_native


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.render", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--png", type=Path, default=None,
                    help="also write native | reference | |difference| x8 of the head as a PNG here")
    args = ap.parse_args(argv)
    repeats, ref_repeats = (8, 2) if args.quick else (30, 5)
    rig, label = _head()
    ref, native, native1, cpu_ref, cpu_native = bench(rig, label, 256, repeats, ref_repeats)
    if args.png is not None:
        from PIL import Image
        from emo3d.io import atomic_path
        opts = RenderOptions()
        a = Renderer(rig, opts).render(WEIGHTS, pose=POSE)
        b = reference_render.render(rig, WEIGHTS, opts, pose=POSE)
        diff = np.clip(np.abs(a.astype(int) - b.astype(int)) * 8, 0, 255).astype(np.uint8)
        with atomic_path(args.png) as tmp:
            Image.fromarray(np.concatenate([a, b, diff], axis=1)).save(tmp, format="PNG")
        print(f"wrote {args.png} (native | numpy reference | difference x8)")
    shared = Path(os.environ.get("EMO3D_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
    ict = shared / "rigs" / "ict_facekit_arkit.glb"
    if ict.is_file():
        from emo3d.avatar.gltf import load_gltf
        bench(load_gltf(ict), "ICT-FaceKit", 512, max(3, repeats // 3), max(1, ref_repeats // 2))
    else:
        print(f"(no ICT rig at {ict}: skipped the 512^2 scene)")
    print(f"render: ratio={ref / native1:.2f}x candidate=native {native1:.2f}ms on 1 thread (all cores {native:.2f}ms "
          f"= {ref / native:.1f}x; 1-thread CPU time {cpu_native:.2f}ms = {cpu_ref / cpu_native:.1f}x) "
          f"baseline=numpy reference {ref:.1f}ms (CPU {cpu_ref:.1f}ms) ({label} 256^2 ssaa 2, wall medians measured "
          f"in alternation, {_core.kernel_isa()} kernels; floor 50x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
