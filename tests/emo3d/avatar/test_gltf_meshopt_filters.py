"""EXT_meshopt_compression's OCTAHEDRAL (normals) and QUATERNION (rotations) filters: rigs built
in-test whose normals and an animation's rotations are stored filtered and meshopt-compressed."""
from __future__ import annotations

import numpy as np
import pytest

from emo3d.avatar.gltf import _Doc, load_gltf
from support.assets import require_module
from support.glb import I8, I16, U16, GlbBuilder, encode_filter_oct, encode_filter_quat, face_deltas, face_grid

require_module("meshoptimizer", "pip install 'meshoptimizer>=0.2.30a0' (an install requirement)")


def _normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    n = np.zeros_like(v, dtype=np.float64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _rotations(n=24):
    """A head turn: unit quaternions (x, y, z, w) about a tilted axis, some with w < 0."""
    ang = np.linspace(-2.5, 2.5, n)
    axis = np.array([0.2, 0.95, 0.24]) / np.linalg.norm([0.2, 0.95, 0.24])
    return np.concatenate([np.sin(ang / 2)[:, None] * axis, np.cos(ang / 2)[:, None]], axis=1) * \
        np.where(np.arange(n) % 3 == 0, -1.0, 1.0)[:, None]   # q and -q are one rotation


def _filtered_view(b: GlbBuilder, enc: np.ndarray, ctype: int, kind: str, filt: str, target=34962) -> int:
    stride = enc.shape[1] * enc.itemsize
    vi = b.view(enc.tobytes(), stride=stride if target else None, target=target, meshopt_mode="ATTRIBUTES",
                count=len(enc), meshopt_filter=filt)
    b.doc["accessors"].append({"bufferView": vi, "componentType": ctype, "normalized": True, "count": len(enc),
                               "type": kind})
    return len(b.doc["accessors"]) - 1


def _rig_file(path, *, meshopt: bool, bits: int):
    """The test face (jawOpen, smile, blink targets) with octahedral NORMALs and a rotation animation."""
    v, f, _ = face_grid()
    b = GlbBuilder(meshopt=meshopt)
    normals = _normals(v, f)
    deltas = face_deltas(v)
    names = ["jawOpen", "mouthSmileLeft", "eyeBlinkRight"]
    attrs = {"POSITION": b.accessor(v)}
    if meshopt:
        enc = encode_filter_oct(normals, bits)
        attrs["NORMAL"] = _filtered_view(b, enc, I8 if bits <= 8 else I16, "VEC3", "OCTAHEDRAL")
    else:
        attrs["NORMAL"] = b.accessor(normals.astype(np.float32))
    prim = {"attributes": attrs, "indices": b.accessor(f.reshape(-1), U16, index=True),
            "targets": [{"POSITION": b.accessor(deltas[n].astype(np.float32))} for n in names]}
    node = b.node(mesh=b.mesh([prim], names), name="head")
    q = _rotations()
    times = b.accessor(np.linspace(0, 1, len(q))[:, None].astype(np.float32), target=None)
    if meshopt:
        rot = _filtered_view(b, encode_filter_quat(q), I16, "VEC4", "QUATERNION", target=None)
    else:
        rot = b.accessor(q.astype(np.float32), target=None)
    b.doc["accessors"][times].update(min=[0.0], max=[1.0])
    b.doc["animations"] = [{"name": "turn", "samplers": [{"input": times, "output": rot}],
                            "channels": [{"sampler": 0, "target": {"node": node, "path": "rotation"}}]}]
    return b.write(path, [node]), normals, q, attrs["NORMAL"], rot


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_octahedral_normals_decode_to_unit_normals(tmp_path, bits):
    path, normals, _, nacc, _ = _rig_file(tmp_path / "oct.glb", meshopt=True, bits=bits)
    ext = _Doc(path).json["bufferViews"][_Doc(path).json["accessors"][nacc]["bufferView"]]["extensions"]
    assert ext["EXT_meshopt_compression"]["filter"] == "OCTAHEDRAL"
    dec = _Doc(path).accessor(nacc)
    assert dec.shape == normals.shape
    # octahedral quantisation: ~1.5 steps of 2^(1-bits) per component, decoded to unit length
    step = 2.0 ** (1 - bits)
    assert np.abs(dec - normals).max() <= 2.5 * step + (1 / 127 if bits <= 8 else 1 / 32767)
    np.testing.assert_allclose(np.linalg.norm(dec, axis=1), 1.0, atol=2.0 / (127 if bits <= 8 else 32767))
    # not a constant or a raw read of the filtered bytes: the directions vary like the surface's
    assert (dec[:, 2] > 0.5).mean() > 0.5 and dec[:, 0].min() < -0.3 and dec[:, 0].max() > 0.3


def test_quaternion_rotations_decode_up_to_sign(tmp_path):
    path, _, q, _, racc = _rig_file(tmp_path / "quat.glb", meshopt=True, bits=16)
    doc = _Doc(path)
    assert doc.json["bufferViews"][doc.json["accessors"][racc]["bufferView"]]["extensions"][
        "EXT_meshopt_compression"]["filter"] == "QUATERNION"
    dec = doc.accessor(racc)
    assert dec.shape == q.shape
    sign = np.sign((dec * q).sum(axis=1, keepdims=True))      # the filter keeps one of q, -q
    np.testing.assert_allclose(dec, sign * q, atol=2e-4)
    np.testing.assert_allclose(np.linalg.norm(dec, axis=1), 1.0, atol=2e-4)
    assert len(set(np.abs(dec).argmax(axis=1).tolist())) >= 2   # the largest component moves (w, then y)


@pytest.mark.parametrize("bits", [8, 16])
def test_rig_with_filtered_streams_loads_like_the_plain_one(tmp_path, bits):
    plain = load_gltf(_rig_file(tmp_path / "plain.glb", meshopt=False, bits=bits)[0])
    packed = load_gltf(_rig_file(tmp_path / "packed.glb", meshopt=True, bits=bits)[0])
    assert packed.target_names == plain.target_names
    assert set(plain.target_names) == {"eyeBlinkRight", "jawOpen", "mouthSmileLeft"}
    np.testing.assert_array_equal(packed.vertices, plain.vertices)
    # meshopt's index codec may start a triangle at another corner (same winding): compare rotated
    # so that each triangle starts at its smallest index
    def canon(t):
        r = np.argmin(t, axis=1)[:, None]
        return np.take_along_axis(t, (r + np.arange(3)) % 3, axis=1)
    np.testing.assert_array_equal(canon(packed.triangles), canon(plain.triangles))
    np.testing.assert_allclose(packed.dense_deltas(), plain.dense_deltas(), atol=0)
