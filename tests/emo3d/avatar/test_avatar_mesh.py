"""Canonical face mesh decoding from the MediaPipe bundle, and the hand-written protobuf reader."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from emo3d.errors import AssetError


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _fake_metadata(verts5: np.ndarray, tris: np.ndarray) -> bytes:
    vb = np.asarray(verts5, "<f4").tobytes()
    ib = b"".join(_varint(int(i)) for i in np.asarray(tris).reshape(-1))
    mesh = _varint(1 << 3 | 0) + _varint(0) + _len_field(3, vb) + _len_field(4, ib)
    return _len_field(1, mesh) + _varint(3 << 3 | 0) + _varint(1)


def test_decode_handwritten_protobuf():
    from emo3d.avatar.mesh import decode_canonical_mesh, parse_fields
    v5 = np.array([[0, 0, 0, 0.1, 0.2], [1, 0, 0, 0.3, 0.4], [0, 1, 0, 0.5, 0.6]], np.float32)
    data = _fake_metadata(v5, [[0, 1, 2]])
    m = decode_canonical_mesh(data)
    assert m.vertices.shape == (3, 3) and m.triangles.tolist() == [[0, 1, 2]]
    np.testing.assert_allclose(m.uvs, v5[:, 3:])
    assert parse_fields(data)[3] == [1]


def test_decode_rejects_truncated_and_bad_layout():
    from emo3d.avatar.mesh import decode_canonical_mesh
    v5 = np.zeros((3, 5), np.float32)
    data = _fake_metadata(v5, [[0, 1, 2]])
    with pytest.raises(AssetError, match="truncated"):
        decode_canonical_mesh(data[:-7])
    with pytest.raises(AssetError, match="index out of range"):
        decode_canonical_mesh(_fake_metadata(v5, [[0, 1, 5]]))
    with pytest.raises(AssetError, match="canonical_mesh"):
        decode_canonical_mesh(_varint(2 << 3 | 0) + _varint(5))
    with pytest.raises(AssetError, match="multiples"):
        decode_canonical_mesh(_len_field(1, _len_field(3, struct.pack("<4f", 0, 0, 0, 0))))


@pytest.fixture(scope="module")
def canonical(face_landmarker):
    from emo3d.avatar.mesh import canonical_mesh
    return canonical_mesh()


def test_canonical_mesh_from_bundle(canonical):
    m = canonical
    assert m.vertices.shape == (468, 3) and m.triangles.shape == (898, 3) and m.uvs.shape == (468, 2)
    assert m.triangles.min() == 0 and m.triangles.max() == 467
    assert (m.uvs >= 0).all() and (m.uvs <= 1).all()
    # rig space: landmark 263 (subject's left eye corner) at +x, forehead (10) above chin (152)
    assert m.vertices[263, 0] > 0 > m.vertices[33, 0]
    assert m.vertices[10, 1] > m.vertices[152, 1]
    # most triangles face the viewer (+z) when wound as given (counter-clockwise from outside)
    v, t = m.vertices, m.triangles
    n = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    assert (n[:, 2] > 0).mean() > 0.9


def test_head_has_openings_eyes_and_mouth(canonical):
    from emo3d.avatar.mesh import build_head
    h = build_head(canonical)
    assert h.n_face == 468
    assert len(h.triangles) > 898  # eyeballs, mouth bag, teeth, tongue added; openings removed
    for part in ("eye_left", "eye_right", "teeth_upper", "teeth_lower", "tongue"):
        assert len(h.parts[part]) > 0
    assert h.eye_centers["left"][0] > 0 > h.eye_centers["right"][0]
    assert (h.uvs >= 0).all() and (h.uvs <= 1).all()
