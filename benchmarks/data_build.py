"""Benchmark: the offline data build (text -> emotions -> FACS prior -> renders -> MediaPipe labels)
with 1 worker, all cores (local process pool) and a local Ray instance, in one run; then the wall time
of the paper's 150,000 samples projected on 1, 8 and 64 nodes from the measured per-sample cost.

Every run builds the same samples from scratch (same seed) into its own folder and the outputs are
checked to be byte-identical before any number is printed. Timings include each backend's start-up
(spawning workers, loading MediaPipe in each, starting Ray) — what a user waits for.

    python -m benchmarks.data_build [--quick] [--samples N] [--renders R] [--size PX] [--no-ray]

Projection: a node is this machine; its per-sample cost is 1 / (the best local rate measured: one
process — whose renderer and MediaPipe already use every core — or the process pool); shards are
independent, so N nodes are assumed to scale linearly (start-up and the final merge not projected).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

PAPER_SAMPLES = 150_000
NODES = (1, 8, 64)


def _build(out: Path, samples: int, renders: int, size: int, images: bool, **par) -> float:
    from emo3d.data.builder import BuildOptions, build
    t = time.perf_counter()
    build(BuildOptions(out=out, samples=samples, seed=0, images=images, renders=renders, image_size=size,
                       shard_size=max(1, samples // 24), primitives=False, card=False, progress=False, **par))
    return time.perf_counter() - t


def _files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "build.json"}


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.data_build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="12 samples, 2 renders each at 128 px")
    ap.add_argument("--samples", type=int, default=None, help="samples per run (default 48; 12 with --quick)")
    ap.add_argument("--renders", type=int, default=None, help="renders per sample (default 4; 2 with --quick)")
    ap.add_argument("--size", type=int, default=None, help="image size (default 256; 128 with --quick)")
    ap.add_argument("--no-images", action="store_true", help="rows only (no renders, no MediaPipe)")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray run")
    args = ap.parse_args(argv)
    from emo3d.parallel import default_workers
    n = args.samples or (12 if args.quick else 48)
    renders = args.renders or (2 if args.quick else 4)
    size = args.size or (128 if args.quick else 256)
    images = not args.no_images
    cores = default_workers()
    tmp = Path(tempfile.mkdtemp(prefix="emo3d-bench-build-"))
    try:
        runs = {}
        runs["1 worker"] = _build(tmp / "one" / "d", n, renders, size, images, workers=1)
        runs[f"{cores} workers"] = _build(tmp / "all" / "d", n, renders, size, images, workers=cores)
        ray_note = ""
        if not args.no_ray:
            try:
                import ray
            except ImportError:
                ray_note = "ray not installed (pip install 'emo3d[ray]'): Ray run skipped"
            else:
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")
                t = time.perf_counter()
                ray.init(num_cpus=cores, include_dashboard=False, _node_ip_address="127.0.0.1",
                         log_to_driver=False, configure_logging=False)
                t_init = time.perf_counter() - t
                try:
                    runs["Ray local"] = _build(tmp / "ray" / "d", n, renders, size, images, ray="auto") + t_init
                finally:
                    ray.shutdown()
                ray_note = f"Ray local includes ray.init ({t_init:.1f} s)"
        ref = _files(tmp / "one" / "d")
        for name in runs:
            folder = {"Ray local": "ray"}.get(name, "one" if name == "1 worker" else "all")
            got = _files(tmp / folder / "d")
            if got.keys() != ref.keys() or any(got[k] != ref[k] for k in ref):
                raise SystemExit(f"mismatch: the {name} build differs from the 1-worker build")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    what = f"{n} samples x {renders} renders at {size}px + MediaPipe" if images else f"{n} samples, rows only"
    print(f"data build: {what}; {cores} cores; outputs byte-identical across runs")
    rates = {k: n / v for k, v in runs.items()}
    for k, v in runs.items():
        print(f"  {k:>12}: {v:7.2f} s  {rates[k]:7.2f} samples/s")
    if ray_note:
        print(f"  ({ray_note})")
    one = rates["1 worker"]
    best = rates[f"{cores} workers"]
    node = max(one, best)
    cost = 1.0 / node
    print(f"per-sample cost on this {cores}-core machine: {cost * 1e3:.0f} ms (best local backend)")
    proj = ", ".join(f"{k} node{'s' if k > 1 else ''}: {_hours(PAPER_SAMPLES * cost / k)}" for k in NODES)
    print(f"projected {PAPER_SAMPLES:,} samples (nodes like this one, linear in nodes): {proj}")
    ray_part = f" ray={rates['Ray local']:.2f}/s" if "Ray local" in rates else ""
    print(f"data_build: ratio={best / one:.2f}x candidate={best:.2f}samples/s baseline={one:.2f}samples/s"
          f"{ray_part}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
