"""Write a :class:`Rig` as a binary glTF 2.0 (``.glb``) with its ARKit morph targets.

``emo3d export-rig --out face.glb`` (this module's :func:`main`) exports the default head; the
browser viewer (``emo3d-run --web``) serves the same bytes (:func:`glb_bytes`).

What the file holds (one mesh, one primitive, one node at the origin):

* ``POSITION`` (the neutral pose, rig space = glTF space: +y up, +z toward the viewer, +x = the
  subject's left; triangles counter-clockwise from outside), ``NORMAL`` (area-weighted vertex
  normals), ``TEXCOORD_0`` + the texture as an embedded PNG (u right, v down, as in glTF), or
  ``COLOR_0`` for a vertex-coloured rig;
* one morph target per rig target, named by its ARKit name in ``mesh.extras.targetNames``, with
  ``POSITION`` and ``NORMAL`` deltas stored as sparse accessors (only the vertices a shape moves);
* ``mesh.weights`` all 0 (the neutral face).

:func:`emo3d.avatar.gltf.load_gltf` reads the file back into a rig that renders identically.
"""
from __future__ import annotations

import argparse
import io
import json
import struct
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

from emo3d.errors import Emo3DError, InvalidInputError
from emo3d.io import atomic_path

from .rig import Rig

__all__ = ["glb_bytes", "export_glb", "vertex_normals", "main"]

_FLOAT, _UINT16, _UINT32 = 5126, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_TRIANGLES = 4
_LINEAR, _LINEAR_MIPMAP_LINEAR, _CLAMP = 9729, 9987, 33071
_GLB_MAGIC, _GLB_VERSION = b"glTF", 2
_CHUNK_JSON, _CHUNK_BIN = 0x4E4F534A, 0x004E4942
_NORMAL_TOL = 1e-6   # a normal delta smaller than this in every component is left out of the sparse target
GENERATOR = "emo3d gltf_export"


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals [V,3] float32 (an unused vertex gets +z)."""
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles, np.int64)
    fn = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])   # length = 2 x area
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, t[:, k], fn)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    out = np.where(length > 1e-20, n / np.maximum(length, 1e-20), np.array([0.0, 0.0, 1.0]))
    return out.astype(np.float32)


class _Bin:
    """The BIN chunk under construction: 4-byte aligned buffer views."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: List[dict] = []
        self.accessors: List[dict] = []

    def view(self, raw: bytes, target: Optional[int] = None) -> int:
        while len(self.data) % 4:
            self.data += b"\0"
        v = {"buffer": 0, "byteOffset": len(self.data), "byteLength": len(raw)}
        if target is not None:
            v["target"] = target
        self.data += raw
        self.views.append(v)
        return len(self.views) - 1

    def accessor(self, arr: np.ndarray, kind: str, target: Optional[int], *, bounds: bool = False) -> int:
        a = np.ascontiguousarray(arr)
        comp = {np.dtype(np.float32): _FLOAT, np.dtype(np.uint16): _UINT16, np.dtype(np.uint32): _UINT32}[a.dtype]
        acc = {"bufferView": self.view(a.tobytes(), target), "componentType": comp,
               "count": int(a.shape[0]), "type": kind}
        if bounds:
            acc["min"] = [float(x) for x in a.reshape(a.shape[0], -1).min(axis=0)]
            acc["max"] = [float(x) for x in a.reshape(a.shape[0], -1).max(axis=0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1

    def sparse_vec3(self, count: int, idx: np.ndarray, values: np.ndarray) -> int:
        """A VEC3 float accessor of ``count`` zeros with ``values`` at the strictly increasing ``idx``."""
        acc = {"componentType": _FLOAT, "count": int(count), "type": "VEC3"}
        full_min = full_max = np.zeros(3, np.float32)
        if idx.size:
            itype = np.uint16 if count <= 0xFFFF else np.uint32
            vals = np.ascontiguousarray(values, np.float32)
            acc["sparse"] = {
                "count": int(idx.size),
                "indices": {"bufferView": self.view(idx.astype(itype).tobytes()),
                            "componentType": _UINT16 if itype is np.uint16 else _UINT32},
                "values": {"bufferView": self.view(vals.tobytes())},
            }
            full_min, full_max = vals.min(axis=0), vals.max(axis=0)
            if idx.size < count:   # the vertices left out are zeros
                full_min, full_max = np.minimum(full_min, 0), np.maximum(full_max, 0)
        acc["min"] = [float(x) for x in full_min]
        acc["max"] = [float(x) for x in full_max]
        self.accessors.append(acc)
        return len(self.accessors) - 1


def _png(texture: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(texture, np.uint8), "RGB").save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def glb_bytes(rig: Rig) -> bytes:
    """The complete ``.glb`` file for ``rig`` (see the module doc)."""
    if not isinstance(rig, Rig):
        raise InvalidInputError(f"glb_bytes needs an emo3d.avatar.Rig, got {type(rig).__name__}")
    V = rig.n_vertices
    b = _Bin()
    normals = vertex_normals(rig.vertices, rig.triangles)
    attrs = {"POSITION": b.accessor(rig.vertices, "VEC3", _ARRAY_BUFFER, bounds=True),
             "NORMAL": b.accessor(normals, "VEC3", _ARRAY_BUFFER)}
    has_texture = rig.texture is not None
    if has_texture:
        attrs["TEXCOORD_0"] = b.accessor(rig.uvs, "VEC2", _ARRAY_BUFFER)
    elif rig.colors is not None:
        attrs["COLOR_0"] = b.accessor(rig.colors, "VEC3", _ARRAY_BUFFER)
    itype = np.uint16 if V <= 0xFFFF else np.uint32
    indices = b.accessor(rig.triangles.reshape(-1).astype(itype), "SCALAR", _ELEMENT_ARRAY_BUFFER)

    targets = []
    for t in range(rig.n_targets):
        sl = slice(int(rig.offsets[t]), int(rig.offsets[t + 1]))
        idx = rig.indices[sl].astype(np.int64)
        val = rig.values[sl]
        order = np.argsort(idx, kind="stable")
        idx, val = idx[order], val[order]
        if idx.size > 1 and (np.diff(idx) == 0).any():   # repeated vertices: sum them (the rig's meaning)
            uniq, inv = np.unique(idx, return_inverse=True)
            summed = np.zeros((uniq.size, 3), np.float64)
            np.add.at(summed, inv, val.astype(np.float64))
            idx, val = uniq, summed.astype(np.float32)
        moved = rig.vertices.copy()
        np.add.at(moved, idx, val)
        dn = vertex_normals(moved, rig.triangles) - normals
        nidx = np.nonzero(np.abs(dn).max(axis=1) > _NORMAL_TOL)[0]
        targets.append({"POSITION": b.sparse_vec3(V, idx, val), "NORMAL": b.sparse_vec3(V, nidx, dn[nidx])})

    primitive = {"attributes": attrs, "indices": indices, "mode": _TRIANGLES, "material": 0}
    if targets:
        primitive["targets"] = targets
    # our renderer draws both sides of a triangle unless the rig marks it single-sided
    one_sided = rig.single_sided is not None and bool(rig.single_sided.all())
    material = {"name": "skin", "doubleSided": not one_sided,
                "pbrMetallicRoughness": {"baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0,
                                         "roughnessFactor": 0.8}}
    doc = {"asset": {"version": "2.0", "generator": GENERATOR},
           "scene": 0, "scenes": [{"name": rig.name, "nodes": [0]}],
           "nodes": [{"name": rig.name, "mesh": 0}],
           "meshes": [{"name": rig.name, "primitives": [primitive]}],
           "materials": [material]}
    if targets:
        doc["meshes"][0]["weights"] = [0.0] * len(targets)
        doc["meshes"][0]["extras"] = {"targetNames": list(rig.target_names)}
    if has_texture:
        image_view = b.view(_png(rig.texture))
        doc["images"] = [{"name": "albedo", "mimeType": "image/png", "bufferView": image_view}]
        doc["samplers"] = [{"magFilter": _LINEAR, "minFilter": _LINEAR_MIPMAP_LINEAR, "wrapS": _CLAMP,
                            "wrapT": _CLAMP}]
        doc["textures"] = [{"sampler": 0, "source": 0}]
        material["pbrMetallicRoughness"]["baseColorTexture"] = {"index": 0}
    while len(b.data) % 4:
        b.data += b"\0"
    doc["buffers"] = [{"byteLength": len(b.data)}]
    doc["bufferViews"] = b.views
    doc["accessors"] = b.accessors
    js = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    js += b" " * (-len(js) % 4)
    total = 12 + 8 + len(js) + 8 + len(b.data)
    return b"".join([struct.pack("<4sII", _GLB_MAGIC, _GLB_VERSION, total),
                     struct.pack("<II", len(js), _CHUNK_JSON), js,
                     struct.pack("<II", len(b.data), _CHUNK_BIN), bytes(b.data)])


def export_glb(rig: Rig, path) -> Path:
    """Write ``rig`` to ``path`` (.glb), complete or not at all; returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise InvalidInputError(f"--out {str(path)!r} must end in .glb (binary glTF)")
    data = glb_bytes(rig)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def main(argv: Optional[List[str]] = None) -> int:
    """``emo3d export-rig --out face.glb [--texture neutral|photo]``."""
    from .texture import TEXTURES
    p = argparse.ArgumentParser(prog="emo3d export-rig",
                                description="Write the default head as binary glTF with its 51 ARKit morph targets and tongueOut.")
    p.add_argument("--out", required=True, metavar="FILE.glb", help="the .glb file to write")
    p.add_argument("--texture", default="neutral", choices=tuple(TEXTURES), help="default-head texture")
    args = p.parse_args(argv)
    try:
        from .default import default_rig
        rig = default_rig(args.texture)
        out = export_glb(rig, args.out)
    except Emo3DError as e:
        print(f"emo3d export-rig: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, InvalidInputError) else 1
    print(f"wrote {out} ({out.stat().st_size} bytes: {rig.n_vertices} vertices, {rig.triangles.shape[0]} "
          f"triangles, {rig.n_targets} morph targets)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
