"""glTF export: the default head and an in-test rig round-trip through load_gltf with identical renders;
the file passes the Khronos validator (npm gltf-validator) where the viewer's node_modules are installed."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from emo3d import schema
from emo3d.avatar.default import default_rig
from emo3d.avatar.gltf import load_gltf
from emo3d.avatar.gltf_export import export_glb, glb_bytes, main, vertex_normals
from emo3d.avatar.rig import Rig
from emo3d.errors import InvalidInputError
from native.render import Renderer, RenderOptions

from support.gltf_validator import validate

def _json_chunk(data: bytes) -> dict:
    magic, version, total = struct.unpack_from("<4sII", data, 0)
    assert (magic, version, total) == (b"glTF", 2, len(data))
    n, kind = struct.unpack_from("<II", data, 12)
    assert kind == 0x4E4F534A
    return json.loads(data[20:20 + n])


def _poses():
    rng = np.random.default_rng(3)
    out = [np.zeros(52, np.float32)]
    for _ in range(3):
        w = np.zeros(52, np.float32)
        w[1:] = rng.uniform(0, 1, 51) * (rng.uniform(0, 1, 51) < 0.3)
        out.append(w)
    one = np.zeros(52, np.float32)
    one[schema.MEDIAPIPE_INDEX["jawOpen"]] = 1.0
    out.append(one)
    return np.stack(out)


def _same_renders(a: Rig, b: Rig, pose=(0.0, 0.0, 0.0)):
    opts = RenderOptions(width=128, height=128, threads=1)
    ra, rb = Renderer(a, opts), Renderer(b, opts)
    w = _poses()
    ia, ib = ra.render(w, pose=pose), rb.render(w, pose=pose)
    assert ia.shape == (len(w), 128, 128, 3)
    assert ia.std() > 5, "the renders are blank: the comparison would prove nothing"
    assert not np.array_equal(ia[0], ia[-1]), "jawOpen=1 must change the picture"
    np.testing.assert_array_equal(ia, ib)


def test_default_head_round_trips_with_identical_renders(tmp_path):
    rig = default_rig()
    path = export_glb(rig, tmp_path / "face.glb")
    back = load_gltf(path)
    names = schema.MODEL_NAMES + ("tongueOut",)
    assert back.target_names == names and len(back.target_names) == 52
    assert back.missing == () and back.unknown == ()
    np.testing.assert_array_equal(back.vertices, rig.vertices)
    np.testing.assert_array_equal(back.triangles, rig.triangles)
    np.testing.assert_array_equal(back.uvs, rig.uvs)
    np.testing.assert_array_equal(back.texture, rig.texture)
    np.testing.assert_array_equal(back.dense_deltas(), rig.dense_deltas())
    # a glTF file carries no camera: the default rig frames its face as the mask did, so the loaded
    # head is rendered through the same frame box
    back.frame_box = rig.frame_box
    _same_renders(rig, back)
    _same_renders(rig, back, pose=(20.0, -10.0, 5.0))

    doc = _json_chunk(path.read_bytes())
    mesh = doc["meshes"][0]
    assert mesh["extras"]["targetNames"] == list(names)
    assert mesh["weights"] == [0.0] * 52
    prim = mesh["primitives"][0]
    assert set(prim["attributes"]) == {"POSITION", "NORMAL", "TEXCOORD_0"}
    assert len(prim["targets"]) == 52 and all(set(t) == {"POSITION", "NORMAL"} for t in prim["targets"])
    assert doc["images"][0]["mimeType"] == "image/png"
    # sparse targets: a shape stores only the vertices it moves
    jaw = doc["accessors"][prim["targets"][schema.MODEL_INDEX["jawOpen"]]["POSITION"]]
    assert 0 < jaw["sparse"]["count"] < rig.n_vertices


def test_vertex_coloured_rig_with_some_targets_round_trips(tmp_path):
    # a small tetrahedron-like patch: 5 vertices, 4 triangles, 2 ARKit targets, vertex colours
    v = np.array([[0, 0, 0.2], [-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    f = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]], np.int32)
    d = np.zeros((2, 5, 3), np.float32)
    d[0, 0] = (0, 0, 0.5)
    d[1, 3] = (0.2, 0.1, 0)
    cols = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0.5, 0.5, 0.5]], np.float32)
    rig = Rig.from_dense("patch", v, f, ("jawOpen", "browInnerUp"), d, colors=cols)
    back = load_gltf(export_glb(rig, tmp_path / "patch.glb"))
    assert back.target_names == ("browInnerUp", "jawOpen")   # the loader keeps ARKit (model) order
    np.testing.assert_array_equal(back.colors, cols)
    np.testing.assert_array_equal(back.dense_deltas(), rig.dense_deltas()[::-1])
    opts = RenderOptions(width=64, height=64, threads=1)
    w = {"jawOpen": 0.7, "browInnerUp": 0.4}
    a, b = Renderer(rig, opts).render(w), Renderer(back, opts).render(w)
    assert a.std() > 5
    np.testing.assert_array_equal(a, b)


def test_vertex_normals_of_a_flat_patch_face_the_viewer():
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [5, 5, 5]], np.float32)
    n = vertex_normals(v, np.array([[0, 1, 2], [0, 2, 3]]))
    np.testing.assert_allclose(n[:4], np.tile([0, 0, 1], (4, 1)), atol=1e-7)
    np.testing.assert_allclose(n[4], [0, 0, 1])   # unused vertex: +z, not NaN


def test_cli_writes_a_complete_file_or_none(tmp_path, capsys):
    out = tmp_path / "sub" / "face.glb"
    assert main(["--out", str(out)]) == 0
    assert out.read_bytes() == glb_bytes(default_rig())
    assert "52 morph targets" in capsys.readouterr().out      # the 51 ARKit shapes and tongueOut
    bad = tmp_path / "face.gltf"
    assert main(["--out", str(bad)]) == 2
    assert "must end in .glb" in capsys.readouterr().err
    assert not bad.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["sub"]
    with pytest.raises(InvalidInputError, match="needs an emo3d.avatar.Rig"):
        glb_bytes("face")


def test_khronos_validator_finds_no_issue(tmp_path):
    report = validate(export_glb(default_rig(), tmp_path / "face.glb"))
    assert report["numErrors"] == 0 and report["numWarnings"] == 0, report
