"""Shared test fixtures. Tests import the *installed* packages (no conftest at the repo root, so
the source tree is not put on sys.path ahead of site-packages)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from support.assets import MACHINE_LACKS, machine_lacks, missing_asset, require_module

# Fuzz suites (Hypothesis): deterministic, no example database written into the checkout (.hypothesis/)
settings.register_profile("emo3d", database=None, derandomize=True, deadline=None)
settings.load_profile("emo3d")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMO3D_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout (paper text, ICT-FaceKit rig); skip where it is absent."""
    if not SHARED.is_dir():
        machine_lacks("../shared beside the checkout", f"looked in {SHARED}; a user's checkout has none")
    return SHARED


@pytest.fixture(scope="session")
def ict_rig_path(shared_dir: Path) -> Path:
    p = shared_dir / "rigs" / "ict_facekit_arkit.glb"
    if not p.is_file():
        machine_lacks(f"{p}", "the ICT-FaceKit rig from ../shared")
    return p


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """Opt-in: point emo3d's cache at an empty folder for this test (resolver and cache tests)."""
    root = tmp_path / "emo3d-cache"
    monkeypatch.setenv("EMO3D_CACHE", str(root))
    return root


@pytest.fixture(scope="session")
def face_landmarker():
    """The path of MediaPipe's ``face_landmarker.task`` (mesh and blendshape model); skip where none
    of its sources (path, cache, URL, registry packages) resolves."""
    from emo3d.avatar.bundle import face_landmarker_path
    from emo3d.errors import AssetError
    try:
        return face_landmarker_path()
    except AssetError as e:
        missing_asset("MediaPipe's face_landmarker.task", str(e))


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray instance on loopback with 2 CPUs, started by the test session (no dashboard). Its
    workers (started by the raylet, which inherits this environment at init) also see tests/ for the
    test doubles; PYTHONPATH is restored right after, so later subprocesses import what they did."""
    ray = require_module("ray", "pip install 'emo3d[ray]'")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests")] + ([old] if old else []))
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                 configure_logging=False)
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    yield ray
    ray.shutdown()


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (``CI=true``) every asset resolves from the registries or ``.ci/run``: a skip other than
    ``machine_lacks`` (GPU, Mono, LAN, ../shared) fails the test instead of hiding it."""
    outcome = yield
    report = outcome.get_result()
    if not (_ci() and report.skipped and call.excinfo is not None):
        return
    reason = str(getattr(call.excinfo.value, "msg", "") or call.excinfo.value)
    if reason.startswith(MACHINE_LACKS) or getattr(report, "wasxfail", None) is not None:
        return
    report.outcome = "failed"
    report.longrepr = f"skipped in CI (CI=true), where every asset must resolve: {reason}"
