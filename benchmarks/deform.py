"""Blendshape deformation: numpy dense (``base + weights @ deltas``) vs the native kernels.

    python -m benchmarks.deform [--quick]

Rigs: a synthetic 24,591-vertex x 51-target rig and, where ``../shared`` exists, the ICT-FaceKit rig.
Weights: "expression" frames (6 active shapes each, like a FACS prototype or a model output
thresholded by the runtime) and "dense" frames (all 51 shapes active, the worst case for a sparse
kernel). 1 frame and 64 frames. Native = the rig's ``SparseDeformer`` (deltas in run-length form,
``native/src/deform_runs.hpp``: contiguous SIMD multiply-adds over runs of moved vertices, blocked
over vertices for batches) and ``deform_dense``; numpy and the native kernel write into
preallocated outputs. Times are medians over repeats (minima printed alongside; this machine is
shared), plus "cold" medians with the caches flushed before each call.

Bounds printed with each rig, from the same run: a frame's memory traffic (numpy's GEMV reads every
target's dense deltas; the native kernel at least reads the active targets' stored deltas plus the
base and writes the output) bounds the ratio at equal bandwidth, and at 64 frames the time to just
write the 64 outputs (``np.copyto`` of the base) bounds it again. Last line: the ICT (else synthetic)
rig, expression weights, 1 frame (the per-frame runtime case) with cold caches, the warm and
64-frame numbers and both bounds alongside.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from emo3d.avatar.rig import Rig
from emo3d import schema
from benchmarks.timing import Timer
from native import _core

N_V = 24591


_TIMER = Timer()
_best = _TIMER.median_ms
_MINS = _TIMER.minima
_FLUSH = np.ones(16 << 20, np.float32)  # 64 MiB: streaming it evicts the caches


def _cold(fn, repeats: int) -> float:
    """Median wall time in ms with the caches flushed before each call (the deltas come from DRAM,
    as in an app that renders, runs a model and streams between two deformations)."""
    times = []
    for _ in range(repeats):
        np.add(_FLUSH, 1.0, out=_FLUSH)
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def synthetic_rig(seed: int = 0) -> Rig:
    """24,591 vertices on a sphere cap; each target moves a smooth region of 10-40 % of them."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(N_V, 3)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    deltas = np.zeros((schema.N_MODEL, N_V, 3), np.float32)
    for t in range(schema.N_MODEL):
        c = rng.normal(size=3)
        c /= np.linalg.norm(c)
        frac = rng.uniform(0.1, 0.4)
        cos = v @ c
        thr = np.quantile(cos, 1 - frac)
        moved = cos > thr
        fall = ((cos[moved] - thr) / (1 - thr))[:, None]
        deltas[t, moved] = (fall * rng.normal(0, 0.01, 3)).astype(np.float32)
    tris = rng.integers(0, N_V, (2 * N_V, 3))
    return Rig.from_dense("synthetic", v, tris, schema.MODEL_NAMES, deltas)


def _weights(F: int, kind: str, rng) -> np.ndarray:
    if kind == "dense":
        return rng.uniform(0, 1, (F, schema.N_MODEL)).astype(np.float32)
    w = np.zeros((F, schema.N_MODEL), np.float32)
    for f in range(F):
        w[f, rng.choice(schema.N_MODEL, 6, replace=False)] = rng.uniform(0.2, 1.0, 6)
    return w


def bench_rig(rig: Rig, label: str, repeats: int) -> dict:
    rng = np.random.default_rng(1)
    T = rig.n_targets
    dense = rig.dense_deltas()
    flat = dense.reshape(T, -1)
    base = rig.vertices.reshape(1, -1)
    deformer = _core.SparseDeformer(rig.vertices, rig.offsets, rig.indices, rig.values)
    density = len(rig.indices) / (T * rig.n_vertices)
    print(f"{label}: {rig.n_vertices} vertices x {T} targets, {len(rig.indices)} sparse deltas "
          f"({density:.0%} of dense) in {deformer.n_runs} runs storing {deformer.stored_vertices} vertex deltas")
    stored_per_target = deformer.stored_vertices / T
    out = {}
    for kind in ("expression", "dense"):
        for F in (1, 64):
            w = _weights(F, kind, rng)[:, :T]
            reps = repeats if F == 1 else max(3, repeats // 5)
            buf = np.empty((F, flat.shape[1]), np.float32)   # both sides write into preallocated outputs
            out3 = np.empty((F, rig.n_vertices, 3), np.float32)

            def numpy_dense():
                np.matmul(w, flat, out=buf)
                np.add(buf, base, out=buf)

            t_np = _best(numpy_dense, reps)
            m_np = _MINS[-1]
            res, mins = {}, {}
            for th in (1, 2):
                res[f"sparse{th}"] = _best(lambda: deformer.deform(w, th, out3), reps)
                mins[th] = _MINS[-1]
            res["dense"] = _best(lambda: _core.deform_dense(rig.vertices, dense, w, 0), reps)
            numpy_dense()
            err = np.abs(deformer.deform(w, 0) - buf.reshape(F, -1, 3)).max()
            best = min(res["sparse1"], res["sparse2"])
            cold_np = _cold(numpy_dense, max(3, reps // 2))
            cold_sp = _cold(lambda: deformer.deform(w, 1, out3), max(3, reps // 2))
            print(f"  {kind:10s} F={F:2d}: numpy dense {t_np:8.3f} ms | native sparse 1 thr {res['sparse1']:7.3f} ms, "
                  f"2 thr {res['sparse2']:7.3f} ms, native dense {res['dense']:7.3f} ms | "
                  f"ratio sparse {t_np / best:6.1f}x dense {t_np / res['dense']:5.1f}x | max err {err:.1e}")
            print(f"  {'':10s}       minima: numpy dense {m_np:8.3f} ms | native sparse {min(mins.values()):7.3f} ms | "
                  f"ratio of minima {m_np / min(mins.values()):6.1f}x")
            print(f"  {'':10s}       cold caches: numpy dense {cold_np:8.3f} ms | native sparse (1 thr) {cold_sp:7.3f} ms | "
                  f"ratio {cold_np / cold_sp:6.1f}x")
            # memory traffic of one frame (bytes): numpy reads all dense deltas, base and writes out;
            # the native kernel reads the active targets' stored deltas, the base, and writes out
            frame_io = 2 * 12 * rig.n_vertices
            active = float((w != 0).sum(1).mean())
            traffic_bound = (flat.nbytes + frame_io) / (active * stored_per_target * 12 + frame_io)
            base_flat = rig.vertices.reshape(-1)
            write_ms = _best(lambda: np.copyto(out3.reshape(F, -1), base_flat), reps)
            print(f"  {'':10s}       bounds: memory traffic {traffic_bound:5.1f}x; writing the {F} output(s) "
                  f"alone {write_ms:7.3f} ms = {t_np / write_ms:5.1f}x")
            out[(kind, F)] = (t_np, best, cold_np, cold_sp, m_np, min(mins.values()), traffic_bound, write_ms)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.deform", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args(argv)
    repeats = 10 if args.quick else 40
    results = {"synthetic": bench_rig(synthetic_rig(), "synthetic", repeats)}
    shared = Path(os.environ.get("EMO3D_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
    ict = shared / "rigs" / "ict_facekit_arkit.glb"
    if ict.is_file():
        from emo3d.avatar.gltf import load_gltf
        results["ict"] = bench_rig(load_gltf(ict), "ICT-FaceKit", repeats)
    else:
        print(f"(no ICT rig at {ict}: synthetic only)")
    key = "ict" if "ict" in results else "synthetic"
    r = results[key]
    b1, c1, cb1, cc1, mb1, mc1, bound1, _ = r[("expression", 1)]
    b64, c64, _, _, _, _, _, write64 = r[("expression", 64)]
    print(f"deform: ratio={cb1 / cc1:.2f}x candidate=native runs {cc1:.3f}ms cold "
          f"(warm median {c1:.3f}ms = {b1 / c1:.1f}x, warm minima {mb1 / mc1:.1f}x; 64 frames warm {c64:.2f}ms "
          f"= {b64 / c64:.1f}x) baseline=numpy dense {cb1:.3f}ms cold (warm median {b1:.3f}ms; 64 frames warm "
          f"{b64:.2f}ms) bounds: memory traffic {bound1:.1f}x at 1 frame, writing 64 outputs {write64:.2f}ms "
          f"= {b64 / write64:.1f}x ({key} rig, expression weights, 1 frame, caches flushed, {_core.kernel_isa()} "
          f"kernels; floor 10x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
