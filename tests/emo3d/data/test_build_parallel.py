"""The data build on a process pool and on Ray: byte-identical to the single-process build; a worker
killed mid-build is retried with no lost or duplicated sample."""
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from emo3d.data.builder import BuildOptions, build
from emo3d.data.reader import read_table

BASE = dict(seed=3, images=False, primitives=True, card=True, progress=False)


def _files(root: Path) -> dict:
    """Every file's bytes except build.json (start/finish times). Builds compared share their folder
    name (the card names it): ``A/d`` vs ``B/d``."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "build.json"}


def test_process_pool_build_is_byte_identical(tmp_path):
    a = build(BuildOptions(out=tmp_path / "one" / "d", samples=40, shard_size=4, workers=1, **BASE))
    b = build(BuildOptions(out=tmp_path / "pool" / "d", samples=40, shard_size=4, workers=2, **BASE))
    assert a.samples == b.samples == 40
    fa, fb = _files(tmp_path / "one" / "d"), _files(tmp_path / "pool" / "d")
    assert fa.keys() == fb.keys() and len(fa) >= 5
    assert [k for k in fa if fa[k] != fb[k]] == []


def test_images_are_byte_identical_across_workers(tmp_path, face_landmarker):
    opts = dict(seed=1, images=True, renders=2, image_size=96, shard_size=1, primitives=False, card=False,
                progress=False)
    build(BuildOptions(out=tmp_path / "one" / "d", samples=3, workers=1, **opts))
    build(BuildOptions(out=tmp_path / "pool" / "d", samples=3, workers=2, **opts))
    fa, fb = _files(tmp_path / "one" / "d"), _files(tmp_path / "pool" / "d")
    assert sum(k.endswith(".jpeg") for k in fa) == 6
    assert [k for k in fa if fa[k] != fb[k]] == []


def _worker_pids(parent: int) -> list:
    """Live spawned pool workers of ``parent`` (not the resource tracker)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and "spawn_main" in cmd and "resource_tracker" not in cmd:
            out.append(int(d.name))
    return out


def test_worker_killed_mid_build_is_retried(tmp_path):
    n = 400
    ref = build(BuildOptions(out=tmp_path / "ref" / "d", samples=n, shard_size=1, workers=1, **BASE))
    shards = tmp_path / "killed" / ".d.build" / "shards"
    state = {}

    def killer():
        deadline = time.time() + 120
        while time.time() < deadline and "pid" not in state:
            done = len(list(shards.glob("shard_*.csv"))) if shards.is_dir() else 0
            pids = _worker_pids(os.getpid())
            if done >= 5 and pids:
                os.kill(pids[0], signal.SIGKILL)
                state.update(pid=pids[0], done_at_kill=done)
            time.sleep(0.005)

    t = threading.Thread(target=killer)
    t.start()
    res = build(BuildOptions(out=tmp_path / "killed" / "d", samples=n, shard_size=1, workers=2, **BASE))
    t.join()
    assert "pid" in state and 5 <= state["done_at_kill"] < n, state   # killed while shards remained
    assert res.samples == ref.samples == n
    ids = [s.sample_id for s in read_table(tmp_path / "killed" / "d" / "data" / "emo3d_data.parquet",
                                           root=tmp_path / "killed" / "d", check_images=False)]
    assert ids == list(range(n))                                      # none lost, none duplicated
    fa, fb = _files(tmp_path / "ref" / "d"), _files(tmp_path / "killed" / "d")
    assert [k for k in fa if fa[k] != fb[k]] == [] and fa.keys() == fb.keys()


@pytest.mark.slow
def test_ray_build_is_byte_identical(tmp_path, local_ray):
    build(BuildOptions(out=tmp_path / "one" / "d", samples=24, shard_size=4, workers=1, **BASE))
    build(BuildOptions(out=tmp_path / "ray" / "d", samples=24, shard_size=4, ray="auto", **BASE))
    fa, fb = _files(tmp_path / "one" / "d"), _files(tmp_path / "ray" / "d")
    assert fa.keys() == fb.keys() and [k for k in fa if fa[k] != fb[k]] == []
