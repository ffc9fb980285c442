"""glTF loader: small files written here (.glb / .gltf, textured, transformed), corrupt files, ICT."""
from __future__ import annotations

import base64
import io
import json
import struct

import numpy as np
import pytest
from PIL import Image

from emo3d.avatar.gltf import load_gltf, match_target
from emo3d import schema
from emo3d.errors import AssetError, InvalidInputError
from emo3d.names import UnknownNameWarning

# a unit quad facing +z, split in two triangles (CCW from the front)
QUAD = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
QUAD_IDX = np.array([0, 1, 2, 0, 2, 3], np.uint16)
QUAD_UV = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
TARGETS = {  # name -> delta of vertex 2
    "JawOpen": (0, -0.5, 0),
    "browInnerUp_L": (0, 0.1, 0),
    "browInnerUp_R": (0, 0.2, 0),
    "eyeBlink_L": (0.3, 0, 0),
    "blendShape1.mouthSmileRight": (0, 0, 0.25),
    "wrinkleForehead": (1, 1, 1),
}


def _doc(*, texture=False, node=None, names=None, extra_target=False):
    """(json dict, bin bytes) of the quad with morph targets."""
    blobs, views, accs = [], [], []

    def add(arr, ctype, atype, target=None):
        off = sum(len(b) for b in blobs)
        data = np.ascontiguousarray(arr).tobytes()
        data += b"\0" * (-len(data) % 4)
        blobs.append(data)
        views.append({"buffer": 0, "byteOffset": off, "byteLength": arr.nbytes})
        acc = {"bufferView": len(views) - 1, "componentType": ctype, "count": len(arr), "type": atype}
        if atype == "VEC3" and ctype == 5126:
            acc["min"], acc["max"] = arr.min(0).tolist(), arr.max(0).tolist()
        accs.append(acc)
        return len(accs) - 1

    attrs = {"POSITION": add(QUAD, 5126, "VEC3")}
    idx = add(QUAD_IDX, 5123, "SCALAR")
    targets = []
    for d in TARGETS.values():
        delta = np.zeros((4, 3), np.float32)
        delta[2] = d
        targets.append({"POSITION": add(delta, 5126, "VEC3")})
    if extra_target:
        targets.append(dict(targets[0]))
    prim = {"attributes": attrs, "indices": idx, "targets": targets, "material": 0}
    mat = {"pbrMetallicRoughness": {"baseColorFactor": [0.8, 0.5, 0.4, 1.0]}}
    doc = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}],
           "nodes": [node or {"mesh": 0}],
           "meshes": [{"primitives": [prim], "extras": {"targetNames": names or list(TARGETS)}}],
           "materials": [mat], "accessors": accs, "bufferViews": views, "buffers": [{}]}
    if texture:
        attrs["TEXCOORD_0"] = add(QUAD_UV, 5126, "VEC2")
        buf = io.BytesIO()
        Image.fromarray(_texture()).save(buf, format="PNG")
        png = np.frombuffer(buf.getvalue(), np.uint8)
        off = sum(len(b) for b in blobs)
        blobs.append(png.tobytes() + b"\0" * (-png.size % 4))
        views.append({"buffer": 0, "byteOffset": off, "byteLength": png.size})
        doc["images"] = [{"bufferView": len(views) - 1, "mimeType": "image/png"}]
        doc["textures"] = [{"source": 0}]
        mat["pbrMetallicRoughness"]["baseColorTexture"] = {"index": 0}
    binary = b"".join(blobs)
    doc["buffers"][0]["byteLength"] = len(binary)
    return doc, binary


def _texture():
    yy, xx = np.mgrid[0:16, 0:24]
    return np.stack([xx * 10, yy * 15, (xx + yy) * 5], -1).astype(np.uint8)


def _glb(doc, binary) -> bytes:
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    body = struct.pack("<II", len(js), 0x4E4F534A) + js + struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def _write_glb(tmp_path, name="quad.glb", **kw):
    p = tmp_path / name
    p.write_bytes(_glb(*_doc(**kw)))
    return p


def test_small_glb_targets_matched_summed_and_reported(tmp_path):
    with pytest.warns(UnknownNameWarning, match="wrinkleForehead"):
        rig = load_gltf(_write_glb(tmp_path))
    assert rig.n_vertices == 4 and rig.triangles.shape == (2, 3)
    np.testing.assert_allclose(rig.vertices, QUAD)
    assert set(rig.target_names) == {"jawOpen", "browInnerUp", "eyeBlinkLeft", "mouthSmileRight"}
    assert rig.unknown == ("wrinkleForehead",)
    assert set(rig.missing) == set(schema.MODEL_NAMES) - set(rig.target_names)
    d = rig.dense_deltas()
    t = rig.target_names.index
    np.testing.assert_allclose(d[t("browInnerUp"), 2], [0, 0.3, 0], atol=1e-7)  # _L + _R summed
    np.testing.assert_allclose(d[t("eyeBlinkLeft"), 2], [0.3, 0, 0])
    np.testing.assert_allclose(d[t("mouthSmileRight"), 2], [0, 0, 0.25])
    np.testing.assert_allclose(rig.colors, np.tile([0.8, 0.5, 0.4], (4, 1)), atol=1e-6)
    assert rig.texture is None
    out = rig.deform({"jawOpen": 1.0})[0]
    np.testing.assert_allclose(out[2], [1, 0.5, 0])


def test_node_transform_applied_to_positions_and_deltas(tmp_path):
    # rotate 90 degrees about +y, scale 2, translate: x -> -z*2, z -> x*2 (quaternion (0, s, 0, c))
    s = np.sin(np.pi / 4)
    node = {"mesh": 0, "translation": [0, 0, 5], "rotation": [0, s, 0, s], "scale": [2, 2, 2]}
    rig = load_gltf(_write_glb(tmp_path, node=node))
    np.testing.assert_allclose(rig.vertices[2], [0, 2, 3], atol=1e-5)  # (1,1,0) -> (0, 2, 5-2)
    d = rig.dense_deltas()[rig.target_names.index("eyeBlinkLeft"), 2]
    np.testing.assert_allclose(d, [0, 0, -0.6], atol=1e-6)


def test_gltf_json_with_data_uri_and_texture(tmp_path):
    doc, binary = _doc(texture=True)
    doc["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(binary).decode()
    p = tmp_path / "quad.gltf"
    p.write_text(json.dumps(doc))
    rig = load_gltf(p)
    # the texture times the material's baseColorFactor (0.8, 0.5, 0.4)
    want = np.round(_texture() * np.array([0.8, 0.5, 0.4])).astype(np.uint8)
    np.testing.assert_allclose(rig.texture, want, atol=1)
    np.testing.assert_allclose(rig.uvs, QUAD_UV)
    assert rig.colors is None
    from native.render import Renderer, RenderOptions
    img = Renderer(rig, RenderOptions(width=32, height=32, ambient=1.0, diffuse=0.0, margin=0.0)).render({})
    # u grows to the right (red channel), v grows downward (green channel)
    assert img[16, 28, 0] > img[16, 3, 0] + 100 and img[28, 16, 1] > img[3, 16, 1] + 60


def test_match_target_spellings():
    assert match_target("browInnerUp_R").targets == ("browInnerUp",)
    assert match_target("CheekPuffLeft").part == "Left"
    assert match_target("eyeBlink_L").targets == ("eyeBlinkLeft",)
    assert match_target("EYELOOKUPRIGHT").targets == ("eyeLookUpRight",)
    assert match_target("mouthSmile.L").targets == ("mouthSmileLeft",)
    assert match_target("jawLeft").targets == ("jawLeft",)
    assert match_target("tongueOut").targets == ("tongueOut",) and match_target("foo") is None


# --- corrupt and truncated files -----------------------------------------------------------------
def test_bad_magic(tmp_path):
    p = tmp_path / "bad.glb"
    p.write_bytes(b"gLTF" + _glb(*_doc())[4:])
    with pytest.raises(InvalidInputError, match="bad magic"):
        load_gltf(p)


@pytest.mark.parametrize("cut", [8, 30, 200, -5])
def test_truncated_glb(tmp_path, cut):
    data = _glb(*_doc())
    p = tmp_path / "cut.glb"
    p.write_bytes(data[:cut])
    with pytest.raises(InvalidInputError, match="truncated"):
        load_gltf(p)


def test_truncated_chunk(tmp_path):
    data = bytearray(_glb(*_doc()))
    js_len = struct.unpack_from("<I", data, 12)[0]
    struct.pack_into("<I", data, 12 + 8 + js_len, 10_000_000)  # BIN chunk claims far more bytes
    p = tmp_path / "chunk.glb"
    p.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match="truncated chunk"):
        load_gltf(p)


def test_accessor_out_of_range(tmp_path):
    doc, binary = _doc()
    doc["accessors"][0]["count"] = 1000
    p = tmp_path / "acc.glb"
    p.write_bytes(_glb(doc, binary))
    with pytest.raises(InvalidInputError, match="accessor 0 out of range"):
        load_gltf(p)


def test_index_out_of_range(tmp_path):
    doc, binary = _doc()
    binary = bytearray(binary)
    struct.pack_into("<H", binary, doc["bufferViews"][1]["byteOffset"], 77)
    p = tmp_path / "idx.glb"
    p.write_bytes(_glb(doc, bytes(binary)))
    with pytest.raises(InvalidInputError, match="index out of range"):
        load_gltf(p)


def test_target_count_mismatch(tmp_path):
    p = _write_glb(tmp_path, extra_target=True)
    with pytest.raises(InvalidInputError, match="unknown target count"):
        load_gltf(p)


def test_bad_json_missing_file_and_no_meshes(tmp_path):
    p = tmp_path / "x.gltf"
    p.write_text("{not json")
    with pytest.raises(InvalidInputError, match="bad JSON"):
        load_gltf(p)
    with pytest.raises(AssetError, match="does not exist"):
        load_gltf(tmp_path / "nope.glb")
    p.write_text(json.dumps({"asset": {"version": "2.0"}}))
    with pytest.raises(InvalidInputError, match="no meshes"):
        load_gltf(p)
    p.write_text(json.dumps({"asset": {"version": "1.0"}}))
    with pytest.raises(InvalidInputError, match="version"):
        load_gltf(p)


def test_corrupt_embedded_image(tmp_path):
    doc, binary = _doc(texture=True)
    binary = bytearray(binary)
    v = doc["bufferViews"][doc["images"][0]["bufferView"]]
    binary[v["byteOffset"]:v["byteOffset"] + 16] = b"\0" * 16
    p = tmp_path / "img.glb"
    p.write_bytes(_glb(doc, bytes(binary)))
    with pytest.raises(InvalidInputError, match="image 0"):
        load_gltf(p)


# --- the real rig ------------------------------------------------------------------------------
def test_ict_rig(ict_rig_path):
    rig = load_gltf(ict_rig_path)
    assert rig.n_vertices == 24591 and rig.triangles.shape == (48836, 3) and rig.n_targets == 51
    assert rig.missing == () and rig.unknown == ()
    assert set(rig.target_names) == set(schema.MODEL_NAMES)
    # jawOpen moves the chin down; eyeBlinkLeft moves vertices on the subject's left (+x)
    d = rig.dense_deltas()
    jaw = d[rig.target_names.index("jawOpen")]
    assert jaw[:, 1].min() < -0.005
    blink = d[rig.target_names.index("eyeBlinkLeft")]
    moved = np.abs(blink).max(axis=1) > 1e-4
    assert rig.vertices[moved, 0].mean() > 0.01


def test_malformed_structure_names_the_field(tmp_path):
    doc, binary = _doc()
    del doc["bufferViews"][0]["byteLength"]
    p = tmp_path / "field.glb"
    p.write_bytes(_glb(doc, binary))
    with pytest.raises(InvalidInputError, match="byteLength"):
        load_gltf(p)
    doc, binary = _doc()
    doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"] = 99
    p.write_bytes(_glb(doc, binary))
    with pytest.raises(InvalidInputError, match="accessors index 99 out of range"):
        load_gltf(p)
