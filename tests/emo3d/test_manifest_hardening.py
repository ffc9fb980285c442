"""Issue #17, model folders: manifest keys are checked (each error names the key and what is accepted), files
never leave the folder, and a fuzz of >= 1,000 malformed manifests gives only ModelFileError."""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emo3d.errors import ModelFileError
from emo3d.manifest import MAX_LENGTH, ModelManifest
from runtime.engine import Engine, EngineOptions
from support.tiny import make_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def folder(tmp_path, tiny):
    """A copy of the tiny model folder whose manifest the test may rewrite."""
    dst = tmp_path / "model"
    dst.mkdir()
    for p in tiny.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def _rewrite(folder, change):
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _set(*keys_value):
    *keys, value = keys_value

    def change(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return change


def _delete(key):
    return lambda d: d.pop(key)


CASES = [  # (change, words the ModelFileError must contain)
    (_set("files", "onnx", "/etc/passwd"), ["files.onnx", "'/etc/passwd'", "no absolute path"]),
    (_set("files", "onnx", "../../../etc/passwd"), ["files.onnx", "no '..'"]),
    (_set("files", "tokenizer", "a/../../x.json"), ["files.tokenizer", "no '..'"]),
    (_set("files", ["model.onnx"]), ["'files'", "list", "JSON object"]),
    (_set("files", "onnx", 5), ["files.onnx", "int", "file name"]),
    (_set("backbone", "max_length", "abc"), ["backbone.max_length", "'abc'", f"1..{MAX_LENGTH}"]),
    (_set("backbone", "max_length", -1), ["backbone.max_length", f"1..{MAX_LENGTH}"]),
    (_set("backbone", "max_length", 100000), ["backbone.max_length", "100000", f"1..{MAX_LENGTH}"]),
    (_set("backbone", "max_length", True), ["backbone.max_length"]),
    (_set("format_version", "1"), ["format_version", "'1'", "an integer"]),
    (_set("format_version", 99), ["format_version 99", "newer"]),
    (_set("kind", ["lm_mlp"]), ["'kind'", "lm_mlp, emotion"]),
    (_set("backbone", "tiny"), ["'backbone'", "JSON object"]),
    (_set("backbone", {"pooling": "mean"}), ["backbone.name"]),
    (_set("extra", 5), ["'extra'", "JSON object"]),
    (lambda d: d.update(extra=[1], surprise={"x": 1}), ["'extra'", "JSON object"]),   # unknown key + bad extra
    (_set("metrics", "good"), ["'metrics'", "JSON object"]),
    (_set("emotion_order", "neutral"), ["'emotion_order'", "list"]),
    (_set("name", 7), ["'name'", "string"]),
    (_delete("kind"), ["missing key 'kind'", "lm_mlp"]),
    (_delete("backbone"), ["missing key 'backbone'"]),
]


@pytest.mark.parametrize("change,words", CASES)
def test_bad_manifest_names_the_key(folder, change, words):
    _rewrite(folder, change)
    with pytest.raises(ModelFileError) as e:
        ModelManifest.load(folder)
    for w in words:
        assert w in str(e.value), (w, str(e.value))
    with pytest.raises(ModelFileError):                     # and the runtime refuses the folder the same way
        Engine.create(EngineOptions(model=folder, device="cpu"))


def test_deep_nesting_is_a_model_file_error(folder):
    (folder / "manifest.json").write_text('{"kind": "emotion", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ModelFileError, match="nested"):
        ModelManifest.load(folder)
    (folder / "manifest.json").write_text('{"kind": "emotion", "x": ' + "[" * 40 + "]" * 40 + "}")
    with pytest.raises(ModelFileError, match="nested more than 32"):
        ModelManifest.load(folder)


def test_unknown_keys_are_kept_in_extra(folder):
    _rewrite(folder, lambda d: d.update(surprise={"any": ["shape", 1]}, other=3))
    m = ModelManifest.load(folder)
    assert m.extra["surprise"] == {"any": ["shape", 1]} and m.extra["other"] == 3


def test_symlink_out_of_the_folder_is_refused(folder, tmp_path):
    outside = tmp_path / "elsewhere.onnx"
    outside.write_bytes((folder / "model.onnx").read_bytes())
    (folder / "model.onnx").unlink()
    os.symlink(outside, folder / "model.onnx")
    with pytest.raises(ModelFileError, match="outside the model folder"):
        ModelManifest.load(folder).file(folder, "onnx")


def test_the_tiny_model_still_loads(folder):
    eng = Engine.create(EngineOptions(model=folder, device="cpu"))
    assert len(eng.predict("furious scowl").scores) == 52


# --- fuzz ------------------------------------------------------------------------------------------------------
N_MANIFESTS = 1200
_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20), st.floats(allow_nan=False),
                  st.text(max_size=12), st.sampled_from(["/etc/passwd", "../x", "model.onnx", "1", "emotion"]))
_value = st.recursive(_leaf, lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(max_size=6), ch,
                                                                                   max_size=3), max_leaves=8)
_keys = st.sampled_from(["kind", "backbone", "files", "blendshape_order", "emotion_order", "head", "onnx",
                         "versions", "metrics", "data_hash", "name", "extra", "format", "format_version",
                         "unknown", "files.onnx", "files.tokenizer", "backbone.max_length", "backbone.name"])
_edits = st.lists(st.tuples(st.sampled_from(["set", "delete"]), _keys, _value), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory, tiny):
    d = tmp_path_factory.mktemp("fuzzmodel")
    base = json.loads((tiny / "manifest.json").read_text())
    return d, base


@settings(max_examples=N_MANIFESTS, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(edits=_edits)
def test_fuzz_malformed_manifests(fuzz_folder, edits):
    d, base = fuzz_folder
    data = json.loads(json.dumps(base))
    for op, key, value in edits:
        parent, _, leaf = key.rpartition(".")
        target = data.get(parent) if parent else data
        if not isinstance(target, dict):
            continue
        if op == "delete":
            target.pop(leaf, None)
        else:
            target[leaf] = value
    (d / "manifest.json").write_text(json.dumps(data))
    try:
        m = ModelManifest.load(d)
    except ModelFileError as e:
        assert "manifest.json" in str(e) and len(str(e)) > 30
        return
    for key in list(m.files):                               # every named file resolves inside, or is refused
        try:
            p = m.file(d, key)
            assert d.resolve() in p.resolve().parents
        except ModelFileError:
            pass
