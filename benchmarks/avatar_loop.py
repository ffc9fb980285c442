"""Avatar loop frame time at 60 Hz with rendering at 256x256: p50/p99 per frame (loop step + render).

    python -m benchmarks.avatar_loop [--quick] [--seconds S] [--size N] [--rig default|ict|sketch|FILE.glb]
                                     [--no-vmc]

The loop runs on its fixed 60 Hz clock for ``--seconds`` (10 by default) with a new expression every
2 s (idle blinks and head sway on); each frame's time is ``AvatarLoop.step`` + rendering the face,
while a VMC sink (``runtime.streaming.vmc.VmcSink``, on its own thread as in ``emo3d-live``) streams
every frame to a UDP socket on 127.0.0.1 that this process drains at the end (``--no-vmc``: no stream).
Candidate: the native renderer (``native.render.Renderer``); baseline: the numpy reference renderer
(``native.reference_render``) on the same rig and frames (fewer of them: it is slow). Where no rig
loads, the 2D sketch face is timed alone. Last line: ``avatar_loop: ratio=R candidate=native p99
baseline=reference p99`` (floor p99 <= 4 ms with the VMC stream; the 60 Hz budget is 16.7 ms).
"""
from __future__ import annotations

import argparse
import os
import time
import warnings
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from emo3d.schema import N_MEDIAPIPE

EXPRESSIONS = [
    {"browDownLeft": 0.9, "browDownRight": 0.9, "noseSneerLeft": 0.6, "noseSneerRight": 0.6, "mouthPressLeft": 0.5,
     "mouthPressRight": 0.5, "eyeSquintLeft": 0.5, "eyeSquintRight": 0.5},
    {"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9, "cheekSquintLeft": 0.6, "cheekSquintRight": 0.6, "jawOpen": 0.2},
    {"browInnerUp": 0.9, "browOuterUpLeft": 0.8, "browOuterUpRight": 0.8, "eyeWideLeft": 0.9, "eyeWideRight": 0.9,
     "jawOpen": 0.7},
    {"mouthFrownLeft": 0.8, "mouthFrownRight": 0.8, "browInnerUp": 0.7, "mouthShrugLower": 0.4},
]


def _load_rig(which: str):
    if which == "sketch":
        return None, "sketch"
    from pathlib import Path

    from emo3d.avatar.default import default_rig
    from emo3d.avatar.gltf import load_gltf
    from emo3d.errors import Emo3DError
    errors = []
    if which in ("auto", "default"):
        try:
            return default_rig(), "default rig"
        except (Emo3DError, OSError) as e:   # the MediaPipe bundle cannot be resolved here
            errors.append(f"default rig: {type(e).__name__}: {e}")
    if which not in ("auto", "default", "ict"):      # a file: the user's own glTF/VRM avatar
        try:
            return load_gltf(which), Path(which).name
        except (Emo3DError, OSError) as e:
            errors.append(f"rig {which}: {type(e).__name__}: {e}")
    if which in ("auto", "ict"):
        p = Path(__file__).resolve().parents[2] / "shared" / "rigs" / "ict_facekit_arkit.glb"
        try:
            return load_gltf(p), "ICT-FaceKit"
        except (Emo3DError, OSError) as e:   # ../shared is absent from a user's checkout
            errors.append(f"ICT rig: {type(e).__name__}: {e}")
    print("no 3D rig: " + "; ".join(errors))
    return None, "sketch"


def run_clock(render: Callable, seconds: float, fps: float = 60.0, seed: int = 0,
              sinks: Sequence = ()) -> Tuple[np.ndarray, int]:
    """Drive an AvatarLoop on the wall clock (``sinks`` added to it); returns per-frame times (ms) and the
    missed deadlines."""
    from runtime.loop import AvatarLoop, LoopOptions
    loop = AvatarLoop(None, LoopOptions(fps=fps, transition_ms=400, idle=True, seed=seed))
    for sink in sinks:
        loop.add_sink(sink)
    dt = 1.0 / fps
    n = int(round(seconds * fps))
    times = np.zeros(n)
    cpu = np.zeros(n)
    proc = np.zeros(n)
    missed = 0
    wall0 = time.perf_counter()
    for k in range(n):
        deadline = wall0 + k * dt
        now = time.perf_counter()
        if now < deadline:
            time.sleep(deadline - now)
        if k % int(2 * fps) == 0:
            loop.set_weights(EXPRESSIONS[(k // int(2 * fps)) % len(EXPRESSIONS)])
        c0, p0 = time.thread_time(), time.process_time()
        t0 = time.perf_counter()
        frame = loop.step(k * dt)
        render(frame)
        times[k] = (time.perf_counter() - t0) * 1e3
        cpu[k] = (time.thread_time() - c0) * 1e3
        proc[k] = (time.process_time() - p0) * 1e3
        if times[k] > dt * 1e3:
            missed += 1
    loop.close()
    CPU[:] = [cpu, proc]
    return times, missed


CPU: List[np.ndarray] = []   # CPU ms per frame of the last run_clock: this thread's, then the whole process's
                             # (the renderer's worker threads included; waiting for a core excluded)


def _report(name: str, times: np.ndarray, missed: int) -> Tuple[float, float]:
    p50, p99 = float(np.percentile(times, 50)), float(np.percentile(times, 99))
    c = CPU[0] if CPU else np.zeros(1)
    pc = CPU[1] if len(CPU) > 1 else c
    print(f"{name:<28} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  max {times.max():7.2f} ms  "
          f"over 16.7 ms: {missed}/{len(times)}  | cpu p50 {np.percentile(c, 50):6.2f} p99 {np.percentile(c, 99):6.2f} ms"
          f" (all threads p50 {np.percentile(pc, 50):6.2f} p99 {np.percentile(pc, 99):6.2f})")
    return p50, p99


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.avatar_loop", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 s instead of 10")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rig", default="auto", metavar="auto|default|ict|sketch|FILE",
                    help="the rig: the default head, ICT-FaceKit from ../shared, the 2D sketch, or a .glb/.gltf/.vrm")
    ap.add_argument("--threads", type=int, default=0, help="native renderer threads (0 = all cores)")
    ap.add_argument("--ssaa", type=int, default=2, help="supersampling of the renderer (default 2)")
    ap.add_argument("--no-vmc", action="store_true", help="no VMC stream alongside the loop")
    args = ap.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    warnings.simplefilter("ignore")
    times, missed = run_clock(lambda f: None, min(seconds, 3.0))
    _report("loop step alone", times, missed)
    rig, rig_name = _load_rig(args.rig)
    if rig is None:
        from runtime.preview import sketch_face
        times, missed = run_clock(lambda f: sketch_face(f.weights, args.size, f.head), seconds)
        _, p99 = _report(f"sketch face {args.size}^2", times, missed)
        print(f"avatar_loop: ratio={16.667 / p99:.2f}x candidate=sketch p99 {p99:.2f}ms baseline=budget 16.7ms")
        return 0
    from native.render import RenderOptions, Renderer
    from native import reference_render
    opts = RenderOptions(width=args.size, height=args.size, threads=args.threads, ssaa=args.ssaa)
    renderer = Renderer(rig, opts)
    deg = lambda h: tuple(float(np.degrees(x)) for x in h)  # noqa: E731
    native_render = lambda f: renderer.render(f.weights, pose=deg(f.head))  # noqa: E731
    ref_render = lambda f: reference_render.render(rig, f.weights, opts, pose=deg(f.head))  # noqa: E731
    native_render(type("F", (), {"weights": np.zeros(N_MEDIAPIPE, np.float32), "head": (0, 0, 0)})())  # warm-up
    print(f"rig {rig_name}: {len(rig.vertices)} vertices, {len(rig.triangles)} triangles, "
          f"{len(rig.target_names)} targets; {args.size}^2 ssaa {opts.ssaa}; native={renderer.native}")
    receiver = sink = None
    if not args.no_vmc:
        import socket

        from runtime.streaming.vmc import VmcSink
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        receiver.bind(("127.0.0.1", 0))
        sink = VmcSink("127.0.0.1", receiver.getsockname()[1])
    times, missed = run_clock(native_render, seconds, sinks=[sink] if sink else [])
    stream = ""
    if receiver is not None:
        receiver.setblocking(False)
        got = 0
        while True:
            try:
                receiver.recv(65536)
            except BlockingIOError:
                break
            got += 1
        receiver.close()
        stream = f" + VMC stream ({got} bundles received)"
    c50, c99 = _report("loop + native render" + (" + VMC" if sink else ""), times, missed)
    ncpu99, pcpu50 = float(np.percentile(CPU[0], 99)), float(np.percentile(CPU[1], 50))
    rtimes, rmissed = run_clock(ref_render, 20 / 60)     # 20 frames: the reference takes ~0.5 s each
    b50, b99 = _report("loop + numpy reference", rtimes, rmissed)
    print(f"avatar_loop: ratio={b99 / c99:.2f}x candidate=native{stream} p99 {c99:.2f}ms (p50 {c50:.2f}, cpu p99 {ncpu99:.2f}, all threads cpu p50 {pcpu50:.2f}) "
          f"baseline=numpy reference p99 {b99:.2f}ms (floor p99 <= 4 ms, budget 16.7 ms; load {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
