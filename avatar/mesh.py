"""MediaPipe's canonical face mesh (468 vertices with UVs, 898 triangles), decoded from the
``geometry_pipeline_metadata_landmarks.binarypb`` inside ``face_landmarker.task``.

The file is a ``GeometryPipelineMetadata`` protobuf: field 1 ``canonical_mesh`` (a ``Mesh3d``: field
3 packed float ``vertex_buffer`` of x,y,z,u,v per vertex, field 4 packed uint32 ``index_buffer``).
A tiny hand-written wire-format reader decodes it; no generated code.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from emo3d.errors import AssetError


@dataclass(frozen=True)
class CanonicalMesh:
    vertices: np.ndarray    # [468,3] float32, centimetres, +x = subject's left, +y up, +z toward viewer
    uvs: np.ndarray         # [468,2] float32, u right, v down (MediaPipe texture convention)
    triangles: np.ndarray   # [898,3] int32, counter-clockwise seen from outside


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise AssetError("truncated protobuf varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise AssetError("malformed protobuf varint (more than 10 bytes)")


def parse_fields(buf: bytes) -> Dict[int, List[object]]:
    """Wire-format message -> {field number: [values]}; varints as int, fixed as bytes, LEN as bytes."""
    out: Dict[int, List[object]] = {}
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise AssetError(f"truncated protobuf: field {field} wants {n} bytes, {len(buf) - pos} left")
            val, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise AssetError(f"unsupported protobuf wire type {wire} (field {field})")
        if pos > len(buf):
            raise AssetError("truncated protobuf")
        out.setdefault(field, []).append(val)
    return out


def _packed_floats(vals: List[object]) -> np.ndarray:
    parts = []
    for v in vals:
        b = bytes(v)  # packed (LEN) or a single fixed32
        parts.append(np.frombuffer(b, dtype="<f4"))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _packed_varints(vals: List[object]) -> np.ndarray:
    out: List[int] = []
    for v in vals:
        if isinstance(v, int):
            out.append(v)
            continue
        b, pos = bytes(v), 0
        while pos < len(b):
            x, pos = _varint(b, pos)
            out.append(x)
    return np.asarray(out, dtype=np.int64)


def decode_canonical_mesh(data: bytes) -> CanonicalMesh:
    """Decode the binarypb bytes; ``AssetError`` if the layout is not the expected one."""
    top = parse_fields(data)
    if 1 not in top:
        raise AssetError("geometry metadata has no canonical_mesh (field 1)")
    mesh = parse_fields(bytes(top[1][0]))
    vb = _packed_floats(mesh.get(3, []))
    ib = _packed_varints(mesh.get(4, []))
    if vb.size == 0 or vb.size % 5 or ib.size == 0 or ib.size % 3:
        raise AssetError(f"canonical mesh has {vb.size} vertex floats / {ib.size} indices "
                         "(expected multiples of 5 and 3)")
    vb = vb.reshape(-1, 5)
    tri = ib.reshape(-1, 3)
    if tri.max() >= vb.shape[0]:
        raise AssetError("canonical mesh index out of range")
    return CanonicalMesh(vertices=np.ascontiguousarray(vb[:, :3], np.float32),
                         uvs=np.ascontiguousarray(vb[:, 3:5], np.float32),
                         triangles=np.ascontiguousarray(tri, np.int32))


def canonical_mesh(bundle: str | Path | None = None) -> CanonicalMesh:
    """The canonical mesh from the resolved bundle (see :func:`avatar.bundle.face_landmarker_path`)."""
    from .bundle import MESH_MEMBER, read_member
    return decode_canonical_mesh(read_member(MESH_MEMBER, bundle))
