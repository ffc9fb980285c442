"""Load a glTF 2.0 rig (``.glb`` or ``.gltf``) with ARKit-named morph targets into one :class:`Rig`.

* Every triangle primitive of every mesh node in the scene is merged, with node transforms applied
  (glTF's +y up, +z front, +x = the model's left is already emo3d's rig space; units are kept).
* Morph target names come from ``mesh.extras.targetNames`` (or ``primitive.extras.targetNames``) and
  match the ARKit names case-insensitively with ``_L``/``_R``/``.L``/``.R``/``Left``/``Right``;
  an exporter prefix such as ``blendShape1.`` is dropped; split unsided shapes
  (``browInnerUp_L`` + ``browInnerUp_R``) are summed. ``Rig.missing`` / ``Rig.unknown`` report the rest.
* Appearance: the base colour texture (embedded PNG/JPEG) when all primitives share one, else each
  material's base colour (x ``COLOR_0``) as vertex colours.
* Corrupt files raise :class:`InvalidInputError` naming what is wrong (bad magic, truncated chunk,
  accessor out of range, target count mismatch ...).
"""
from __future__ import annotations

import base64
import io
import json
import re
import struct
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from emo3d import schema
from emo3d.errors import AssetError, InvalidInputError

from .rig import Rig

__all__ = ["load_gltf"]

_COMPONENT = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_NCOMP = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_GLB_MAGIC = b"glTF"
_CHUNK_JSON, _CHUNK_BIN = 0x4E4F534A, 0x004E4942


class _Doc:
    """A parsed glTF document: JSON plus its buffers, with checked accessor reads."""

    def __init__(self, path: Path):
        self.path = path
        data = path.read_bytes()
        if data[:4] == _GLB_MAGIC or path.suffix.lower() == ".glb":
            self.json, glb_bin = self._parse_glb(data)
        else:
            glb_bin = None
            try:
                self.json = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise InvalidInputError(f"{path}: not a glTF file (bad JSON: {e}); expected .glb or .gltf") from None
        if not isinstance(self.json, dict) or not isinstance(self.json.get("asset"), dict):
            raise InvalidInputError(f"{path}: glTF JSON has no 'asset' object")
        ver = str(self.json["asset"].get("version", ""))
        if not ver.startswith("2."):
            raise InvalidInputError(f"{path}: glTF version {ver!r} is not supported (need 2.x)")
        self.buffers: List[bytes] = []
        for i, b in enumerate(self.json.get("buffers", [])):
            uri = b.get("uri")
            if uri is None:
                if glb_bin is None:
                    raise InvalidInputError(f"{path}: buffer {i} has no uri and the file has no BIN chunk")
                buf = glb_bin
            elif uri.startswith("data:"):
                try:
                    buf = base64.b64decode(uri.split(",", 1)[1], validate=True)
                except (IndexError, ValueError) as e:
                    raise InvalidInputError(f"{path}: buffer {i} has a bad data URI ({e})") from None
            else:
                f = path.parent / uri
                if not f.is_file():
                    raise InvalidInputError(f"{path}: buffer {i} file {uri!r} is missing")
                buf = f.read_bytes()
            need = int(b.get("byteLength", 0))
            if len(buf) < need:
                raise InvalidInputError(f"{path}: buffer {i} is truncated ({len(buf)} of {need} bytes)")
            self.buffers.append(buf)

    def _parse_glb(self, data: bytes):
        p = self.path
        if len(data) < 12:
            raise InvalidInputError(f"{p}: truncated GLB header ({len(data)} bytes, need 12)")
        magic, version, length = struct.unpack_from("<4sII", data, 0)
        if magic != _GLB_MAGIC:
            raise InvalidInputError(f"{p}: bad magic {magic!r} (a .glb starts with b'glTF')")
        if version != 2:
            raise InvalidInputError(f"{p}: GLB version {version} is not supported (need 2)")
        if length > len(data):
            raise InvalidInputError(f"{p}: truncated file: header says {length} bytes, file has {len(data)}")
        pos, chunks = 12, []
        while pos < length:
            if pos + 8 > length:
                raise InvalidInputError(f"{p}: truncated chunk header at byte {pos}")
            clen, ctype = struct.unpack_from("<II", data, pos)
            if pos + 8 + clen > length:
                raise InvalidInputError(f"{p}: truncated chunk {len(chunks)} (type 0x{ctype:08x}): "
                                        f"{clen} bytes declared, {length - pos - 8} present")
            chunks.append((ctype, data[pos + 8:pos + 8 + clen]))
            pos += 8 + clen
        if not chunks or chunks[0][0] != _CHUNK_JSON:
            raise InvalidInputError(f"{p}: the first GLB chunk must be JSON")
        try:
            doc = json.loads(chunks[0][1].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InvalidInputError(f"{p}: bad JSON chunk ({e})") from None
        binc = next((c for t, c in chunks[1:] if t == _CHUNK_BIN), None)
        return doc, binc

    def _item(self, kind: str, i) -> dict:
        items = self.json.get(kind, [])
        if not isinstance(i, int) or not 0 <= i < len(items):
            raise InvalidInputError(f"{self.path}: {kind} index {i!r} out of range (have {len(items)})")
        return items[i]

    def view_bytes(self, vi: int) -> Tuple[bytes, int, int, Optional[int]]:
        v = self._item("bufferViews", vi)
        buf = self.buffers[v["buffer"]] if 0 <= v.get("buffer", -1) < len(self.buffers) else None
        if buf is None:
            raise InvalidInputError(f"{self.path}: bufferView {vi} names a missing buffer {v.get('buffer')!r}")
        off, ln = int(v.get("byteOffset", 0)), int(v["byteLength"])
        if off < 0 or off + ln > len(buf):
            raise InvalidInputError(f"{self.path}: bufferView {vi} out of range ({off}+{ln} > {len(buf)} bytes)")
        return buf, off, ln, v.get("byteStride")

    def _dense(self, dtype, ncomp: int, count: int, vi: int, acc_off: int, what: str) -> np.ndarray:
        buf, off, ln, stride = self.view_bytes(vi)
        item = np.dtype(dtype).itemsize * ncomp
        stride = int(stride or item)
        end = acc_off + stride * (count - 1) + item if count else acc_off
        if acc_off < 0 or end > ln:
            raise InvalidInputError(f"{self.path}: {what} out of range: needs bytes {acc_off}..{end} of "
                                    f"bufferView {vi} ({ln} bytes)")
        raw = np.frombuffer(buf, np.uint8, count=ln, offset=off)[acc_off:end]
        if stride == item:
            return np.frombuffer(raw.tobytes(), dtype).reshape(count, ncomp)
        rows = np.lib.stride_tricks.as_strided(raw, (count, item), (stride, 1))
        return np.frombuffer(np.ascontiguousarray(rows).tobytes(), dtype).reshape(count, ncomp)

    def accessor(self, ai: int) -> np.ndarray:
        a = self._item("accessors", ai)
        what = f"accessor {ai}"
        dtype = _COMPONENT.get(a.get("componentType"))
        ncomp = _NCOMP.get(a.get("type"))
        if dtype is None or ncomp is None:
            raise InvalidInputError(f"{self.path}: {what} has unknown componentType/type "
                                    f"{a.get('componentType')!r}/{a.get('type')!r}")
        count = int(a.get("count", -1))
        if count < 0:
            raise InvalidInputError(f"{self.path}: {what} has no valid count")
        if "bufferView" in a:
            out = self._dense(dtype, ncomp, count, a["bufferView"], int(a.get("byteOffset", 0)), what)
        else:
            out = np.zeros((count, ncomp), dtype)
        sp = a.get("sparse")
        if sp:
            n = int(sp["count"])
            idt = _COMPONENT.get(sp["indices"].get("componentType"))
            if idt is None:
                raise InvalidInputError(f"{self.path}: {what} sparse indices have a bad componentType")
            idx = self._dense(idt, 1, n, sp["indices"]["bufferView"], int(sp["indices"].get("byteOffset", 0)),
                              f"{what} sparse indices")[:, 0].astype(np.int64)
            val = self._dense(dtype, ncomp, n, sp["values"]["bufferView"], int(sp["values"].get("byteOffset", 0)),
                              f"{what} sparse values")
            if n and (idx.min() < 0 or idx.max() >= count):
                raise InvalidInputError(f"{self.path}: {what} sparse index out of range (count {count})")
            out = out.copy()
            out[idx] = val
        if a.get("normalized") and np.dtype(dtype).kind in "iu":
            info = np.iinfo(dtype)
            out = np.maximum(out.astype(np.float32) / info.max, -1.0)
        return out

    def image(self, ii: int) -> np.ndarray:
        from PIL import Image
        im = self._item("images", ii)
        if "bufferView" in im:
            buf, off, ln, _ = self.view_bytes(im["bufferView"])
            data = buf[off:off + ln]
        elif str(im.get("uri", "")).startswith("data:"):
            data = base64.b64decode(im["uri"].split(",", 1)[1])
        elif "uri" in im:
            f = self.path.parent / im["uri"]
            if not f.is_file():
                raise InvalidInputError(f"{self.path}: image {ii} file {im['uri']!r} is missing")
            data = f.read_bytes()
        else:
            raise InvalidInputError(f"{self.path}: image {ii} has neither bufferView nor uri")
        try:
            with Image.open(io.BytesIO(data)) as pic:
                return np.asarray(pic.convert("RGB"), dtype=np.uint8).copy()
        except Exception as e:  # PIL raises many types for corrupt images
            raise InvalidInputError(f"{self.path}: image {ii} could not be decoded ({e}); "
                                    f"expected embedded PNG or JPEG") from None


def _node_matrix(node: dict) -> np.ndarray:
    if "matrix" in node:
        return np.asarray(node["matrix"], np.float64).reshape(4, 4).T  # glTF is column-major
    t = np.asarray(node.get("translation", (0, 0, 0)), np.float64)
    x, y, z, w = np.asarray(node.get("rotation", (0, 0, 0, 1)), np.float64)
    s = np.asarray(node.get("scale", (1, 1, 1)), np.float64)
    R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    M = np.eye(4)
    M[:3, :3] = R * s[None, :]
    M[:3, 3] = t
    return M


_UNSIDED = {n.lower(): n for n in schema.MODEL_NAMES if not n.endswith(("Left", "Right"))}


def match_target(name: str) -> Tuple[Optional[str], float]:
    """Source morph-target name -> (canonical ARKit name or None, scale). Split halves of unsided
    shapes (``browInnerUp_L``) map to the unsided shape (summed by the loader)."""
    raw = str(name).strip()
    cands = [raw]
    m = re.match(r"^.*[.:|](?!(?:l|r|L|R)$)([^.:|]+)$", raw)  # drop exporter prefixes "blendShape1.x"
    if m:
        cands.append(m.group(1))
    for c in cands:
        try:
            canon = schema.canonical_name(c)
        except KeyError:
            canon = None
        if canon in schema.MODEL_INDEX:
            return canon, 1.0
        side = re.match(r"^(.*?)[_.]?(l|r|left|right)$", re.sub(r"[\s\-]", "", c), re.IGNORECASE)
        if side and side.group(1).lower() in _UNSIDED:
            return _UNSIDED[side.group(1).lower()], 1.0
    return None, 0.0


def load_gltf(path) -> Rig:
    """Load ``path`` (.glb/.gltf) into one :class:`Rig` (see the module doc for the rules)."""
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"glTF rig {path} does not exist (expected a .glb or .gltf file)")
    try:
        return _load(path)
    except (KeyError, TypeError, IndexError, AttributeError, struct.error) as e:
        what = f"missing field {e.args[0]!r}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        raise InvalidInputError(f"{path}: malformed glTF ({what})") from None


def _load(path: Path) -> Rig:
    doc = _Doc(path)
    J = doc.json
    scenes = J.get("scenes") or []
    if scenes:
        roots = scenes[int(J.get("scene", 0)) if 0 <= int(J.get("scene", 0)) < len(scenes) else 0].get("nodes", [])
    else:
        children = {c for n in J.get("nodes", []) for c in n.get("children", [])}
        roots = [i for i in range(len(J.get("nodes", []))) if i not in children]
    placed: List[Tuple[int, np.ndarray]] = []
    stack = [(r, np.eye(4), 0) for r in roots]
    while stack:
        ni, parent, depth = stack.pop()
        if depth > 64:
            raise InvalidInputError(f"{path}: node hierarchy deeper than 64 (a cycle?)")
        node = doc._item("nodes", ni)
        M = parent @ _node_matrix(node)
        if "mesh" in node:
            placed.append((node["mesh"], M))
        stack.extend((c, M, depth + 1) for c in node.get("children", []))
    if not placed:
        placed = [(i, np.eye(4)) for i in range(len(J.get("meshes", [])))]
    if not placed:
        raise InvalidInputError(f"{path}: the file has no meshes")

    verts, tris, uvs, cols, prim_tex = [], [], [], [], []
    deltas: Dict[str, List[Tuple[int, np.ndarray]]] = {}
    unknown: List[str] = []
    n_v = 0
    for mi, M in placed:
        mesh = doc._item("meshes", mi)
        mesh_names = (mesh.get("extras") or {}).get("targetNames")
        for pi, prim in enumerate(mesh.get("primitives", [])):
            mode = prim.get("mode", 4)
            if mode not in (4, 5, 6):
                continue  # points / lines carry no surface
            attrs = prim.get("attributes", {})
            if "POSITION" not in attrs:
                raise InvalidInputError(f"{path}: mesh {mi} primitive {pi} has no POSITION")
            pos = doc.accessor(attrs["POSITION"]).astype(np.float64)
            if pos.shape[1] != 3:
                raise InvalidInputError(f"{path}: mesh {mi} primitive {pi} POSITION is not VEC3")
            V = pos.shape[0]
            if "indices" in prim:
                idx = doc.accessor(prim["indices"])[:, 0].astype(np.int64)
            else:
                idx = np.arange(V, dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= V):
                raise InvalidInputError(f"{path}: mesh {mi} primitive {pi} index out of range "
                                        f"(max {idx.max()}, {V} vertices)")
            if mode == 4:
                f = idx[: idx.size // 3 * 3].reshape(-1, 3)
            elif mode == 5:
                k = np.arange(max(idx.size - 2, 0))
                f = np.stack([idx[k], idx[k + 1 + (k % 2)], idx[k + 2 - (k % 2)]], axis=1)
            else:
                k = np.arange(1, max(idx.size - 1, 1))
                f = np.stack([np.full(k.size, idx[0]), idx[k], idx[k + 1]], axis=1)
            lin = M[:3, :3]
            if np.linalg.det(lin) < 0:
                f = f[:, ::-1]
            verts.append(pos @ lin.T + M[:3, 3])
            tris.append(f + n_v)
            # morph targets
            targets = prim.get("targets") or []
            names = (prim.get("extras") or {}).get("targetNames") or mesh_names
            if targets:
                if names is None:
                    names = [f"target{i}" for i in range(len(targets))]
                if len(names) != len(targets):
                    raise InvalidInputError(f"{path}: mesh {mi} primitive {pi} has {len(targets)} morph targets "
                                            f"but {len(names)} targetNames (unknown target count)")
                for tname, tgt in zip(names, targets):
                    canon, _ = match_target(tname)
                    if canon is None:
                        if tname not in unknown:
                            unknown.append(str(tname))
                        continue
                    if "POSITION" not in tgt:
                        continue
                    d = doc.accessor(tgt["POSITION"]).astype(np.float64)
                    if d.shape != (V, 3):
                        raise InvalidInputError(f"{path}: mesh {mi} primitive {pi} target {tname!r} has "
                                                f"{d.shape[0]} deltas for {V} vertices")
                    deltas.setdefault(canon, []).append((n_v, d @ lin.T))
            # appearance
            mat = doc._item("materials", prim["material"]) if "material" in prim else {}
            pbr = mat.get("pbrMetallicRoughness", {})
            factor = np.asarray(pbr.get("baseColorFactor", (1, 1, 1, 1)), np.float64)[:3]
            tex_img = None
            if "baseColorTexture" in pbr and "TEXCOORD_0" in attrs:
                tex = doc._item("textures", pbr["baseColorTexture"]["index"])
                if "source" in tex:
                    tex_img = tex["source"]
            uv = doc.accessor(attrs["TEXCOORD_0"]).astype(np.float32) if "TEXCOORD_0" in attrs else None
            if uv is not None and uv.shape != (V, 2):
                raise InvalidInputError(f"{path}: mesh {mi} primitive {pi} TEXCOORD_0 is not [V, 2]")
            col = np.repeat(factor[None], V, axis=0)
            if "COLOR_0" in attrs:
                c = doc.accessor(attrs["COLOR_0"]).astype(np.float64)[:, :3]
                if c.shape[0] != V:
                    raise InvalidInputError(f"{path}: mesh {mi} primitive {pi} COLOR_0 has {c.shape[0]} rows")
                col = col * c
            uvs.append(uv)
            cols.append(col)
            prim_tex.append(tex_img)
            n_v += V
    if n_v == 0:
        raise InvalidInputError(f"{path}: no triangle primitives found")

    vertices = np.concatenate(verts).astype(np.float32)
    triangles = np.concatenate(tris).astype(np.int32)
    texture = uv_all = colors = None
    distinct = set(prim_tex)
    if len(distinct) == 1 and None not in distinct:
        texture = doc.image(prim_tex[0])
        uv_all = np.concatenate(uvs).astype(np.float32)
    else:
        cache: Dict[int, np.ndarray] = {}
        for k, ti in enumerate(prim_tex):
            if ti is not None:  # mixed materials: a texture contributes its mean colour
                if ti not in cache:
                    cache[ti] = doc.image(ti).reshape(-1, 3).mean(axis=0) / 255.0
                cols[k] = cols[k] * cache[ti]
        has_material = any("material" in p for mi, _ in placed for p in doc._item("meshes", mi).get("primitives", []))
        if has_material or any("COLOR_0" in p.get("attributes", {}) for mi, _ in placed
                               for p in doc._item("meshes", mi).get("primitives", [])):
            colors = np.clip(np.concatenate(cols), 0, 1).astype(np.float32)
    target_names = tuple(n for n in schema.MODEL_NAMES if n in deltas)
    dense = np.zeros((len(target_names), n_v, 3), np.float32)
    for t, n in enumerate(target_names):
        for start, d in deltas[n]:
            dense[t, start:start + d.shape[0]] += d.astype(np.float32)
    missing = tuple(n for n in schema.MODEL_NAMES if n not in deltas)
    return Rig.from_dense(path.stem, vertices, triangles, target_names, dense, uvs=uv_all, texture=texture,
                          colors=colors, missing=missing, unknown=tuple(unknown))
