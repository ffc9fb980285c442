"""Read a glTF 2.0 face or avatar (``.glb`` / ``.gltf``, VRM 0.x / 1.0 included) into one :class:`Rig`.

Geometry: every triangle primitive of every mesh node of the scene, placed by the node hierarchy
(a VRM 0.x avatar, which faces -z, is turned to face +z like every other glTF);
skinned meshes in their BIND pose (each vertex by its joints' world matrix x inverse bind matrix,
blended by ``WEIGHTS_0``/``JOINTS_0``); glTF's +y up, +z front, +x = the model's left is rig space.
Accessors: every component type, ``KHR_mesh_quantization`` (normalised or integer positions,
targets, UVs), sparse accessors, ``EXT_meshopt_compression`` buffer views (decoded with the
``meshoptimizer`` package: attributes, triangles, indices and the octahedral / quaternion /
exponential filters). Any other extension in ``extensionsRequired`` (Draco, KTX2 ...) raises
:class:`InvalidInputError` naming it and what to do.

Morph targets: names from ``mesh.extras.targetNames`` (or the primitive's) resolve through the one
name map :mod:`emo3d.names` (ARKit, FaceCap, CC4, MetaHuman, Blender suffixes ...); one-sided parts
of unsided shapes are summed; an unsided source of a sided pair (``mouthSmile``) is split by the
sign of x; ``tongueOut`` is kept as an extra target (driven by name or a prediction's ``extras``).
Unknown names: ``Rig.unknown`` and one :class:`emo3d.names.UnknownNameWarning`. A VRM
without ARKit shapes drives its expression presets through :mod:`emo3d.avatar.vrm`'s retarget
(with ARKit shapes present, those win).

Appearance: each material's base-colour texture (or ``KHR_materials_pbrSpecularGlossiness``'s
diffuse texture; PNG, JPEG, WebP through ``EXT_texture_webp``; ``KHR_texture_transform`` applied)
times its ``baseColorFactor``; several textures are packed into one atlas (UVs remapped) so the
renderer samples one image; untextured materials become solid tiles. The renderer is opaque, so of
a MASK/BLEND primitive only the triangles whose texture is mostly opaque there are kept (an iris
disc, lash strokes; not the see-through card around them). Without any texture, each material's
base colour (x ``COLOR_0``) becomes vertex colours. A material's ``doubleSided`` (false by default,
as glTF says) becomes ``Rig.single_sided``: the back faces of single-sided triangles are not drawn.

Framing: ``Rig.face_box`` (vertices the face targets move), ``Rig.head_box`` (vertices skinned to
the head bone - VRM humanoid ``head`` or a joint named Head - or the face grown) and the default
``Rig.frame_box`` (:func:`emo3d.avatar.framing.frame_box`: the face when the model is much taller
than its head). A head on a body also gets ``Rig.head_weights`` (each vertex's skin weight on the
head bone and its children) and ``Rig.head_pivot`` (the head bone), so a head pose turns the head
on the neck (:mod:`emo3d.avatar.posing`). A VRM whose ``lookAt`` is of type bone (0.x:
``lookAtTypeName`` Bone) and that has no eye-look shapes gets ``Rig.eye_weights`` / ``Rig.eye_pivots``
(its humanoid ``leftEye`` / ``rightEye`` bones), so the gaze turns the eye bones; its look presets are
then left out of the retarget. A lookAt of type expression turns the eyes through the look presets
(``lookUp/Down/Left/Right``, :mod:`emo3d.avatar.vrm`'s retarget of the eye-look scores).

Corrupt files raise :class:`InvalidInputError` naming what is wrong (bad magic, truncated chunk,
accessor out of range, target count mismatch ...).
"""
from __future__ import annotations

import base64
import io
import json
import re
import struct
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from emo3d import names, schema
from emo3d.errors import AssetError, InvalidInputError

from . import framing as _framing
from . import vrm as _vrm
from .rig import EXTRA_TARGETS, Rig

__all__ = ["load_gltf", "match_target", "SUPPORTED_EXTENSIONS"]

#: Extensions this reader implements (any may be in ``extensionsRequired``).
SUPPORTED_EXTENSIONS = frozenset({
    "KHR_mesh_quantization", "KHR_texture_transform", "EXT_meshopt_compression", "EXT_texture_webp",
    "KHR_materials_unlit", "KHR_materials_emissive_strength", "KHR_materials_ior", "KHR_materials_specular",
    "KHR_materials_pbrSpecularGlossiness",
    "VRM", "VRMC_vrm", "VRMC_materials_mtoon", "VRMC_springBone", "VRMC_node_constraint",
})
_ADVICE = {
    "KHR_draco_mesh_compression": "Draco-compressed geometry is not supported: re-export without Draco "
                                  "(Blender glTF export: Compression off) or convert it to meshopt, which "
                                  "emo3d reads: `npx @gltf-transform/cli meshopt in.glb out.glb`",
    "KHR_texture_basisu": "KTX2/Basis textures are not supported: convert them to PNG/JPEG/WebP, e.g. "
                          "`npx @gltf-transform/cli png in.glb out.glb`",
    "EXT_texture_avif": "AVIF textures are not supported: convert them with `npx @gltf-transform/cli png in.glb out.glb`",
}
_MESHOPT_FILTERS = ("NONE", "OCTAHEDRAL", "QUATERNION", "EXPONENTIAL")

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
        self._check_required()
        self._decoded: Dict[int, bytes] = {}
        for i, b in enumerate(self.json.get("buffers", [])):
            uri = b.get("uri")
            if uri is None and ((b.get("extensions") or {}).get("EXT_meshopt_compression") or {}).get("fallback"):
                self.buffers.append(b"")   # placeholder: every view into it is meshopt-compressed
                continue
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

    def _check_required(self) -> None:
        req = self.json.get("extensionsRequired") or []
        bad = [e for e in req if e not in SUPPORTED_EXTENSIONS]
        if bad:
            tips = "; ".join(_ADVICE.get(e, f"{e}: emo3d's glTF reader does not implement it; re-export the "
                                            f"model without it") for e in bad)
            raise InvalidInputError(f"{self.path}: requires unsupported glTF extension(s) {', '.join(bad)} "
                                    f"(supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}). {tips}")

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
            chunks.append((ctype, memoryview(data)[pos + 8:pos + 8 + clen]))
            pos += 8 + clen
        if not chunks or chunks[0][0] != _CHUNK_JSON:
            raise InvalidInputError(f"{p}: the first GLB chunk must be JSON")
        try:
            doc = json.loads(bytes(chunks[0][1]).decode("utf-8"))
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
        mo = (v.get("extensions") or {}).get("EXT_meshopt_compression")
        if mo is not None:
            if vi not in self._decoded:
                self._decoded[vi] = self._meshopt(vi, v, mo)
            data = self._decoded[vi]
            return data, 0, len(data), v.get("byteStride")
        buf = self.buffers[v["buffer"]] if 0 <= v.get("buffer", -1) < len(self.buffers) else None
        if buf is None:
            raise InvalidInputError(f"{self.path}: bufferView {vi} names a missing buffer {v.get('buffer')!r}")
        off, ln = int(v.get("byteOffset", 0)), int(v["byteLength"])
        if off < 0 or off + ln > len(buf):
            raise InvalidInputError(f"{self.path}: bufferView {vi} out of range ({off}+{ln} > {len(buf)} bytes)")
        return buf, off, ln, v.get("byteStride")

    def _meshopt(self, vi: int, view: dict, ext: dict) -> bytes:
        """Decode one EXT_meshopt_compression buffer view to its plain bytes."""
        import meshoptimizer
        what = f"{self.path}: bufferView {vi} (EXT_meshopt_compression)"
        bi = ext.get("buffer")
        if not isinstance(bi, int) or not 0 <= bi < len(self.buffers):
            raise InvalidInputError(f"{what} names a missing buffer {bi!r}")
        src = self.buffers[bi]
        off, ln = int(ext.get("byteOffset", 0)), int(ext["byteLength"])
        count, stride = int(ext["count"]), int(ext["byteStride"])
        mode, filt = ext.get("mode"), ext.get("filter", "NONE")
        if off < 0 or off + ln > len(src):
            raise InvalidInputError(f"{what} is out of range ({off}+{ln} > {len(src)} bytes)")
        if filt not in _MESHOPT_FILTERS:
            raise InvalidInputError(f"{what} has unknown filter {filt!r} (accepted: {', '.join(_MESHOPT_FILTERS)})")
        data = src[off:off + ln]
        try:
            if mode == "ATTRIBUTES":
                out = meshoptimizer.decode_vertex_buffer(count, stride, data, dtype=np.dtype(("V", stride)))
                raw = np.frombuffer(out.tobytes(), np.uint8).copy()
                dec = {"OCTAHEDRAL": meshoptimizer.decode_filter_oct, "QUATERNION": meshoptimizer.decode_filter_quat,
                       "EXPONENTIAL": meshoptimizer.decode_filter_exp}.get(filt)
                if dec is not None:
                    raw = dec(raw, count, stride)
                result = raw.tobytes()
            elif mode in ("TRIANGLES", "INDICES"):
                if stride not in (2, 4):
                    raise InvalidInputError(f"{what}: index byteStride must be 2 or 4, got {stride}")
                fn = meshoptimizer.decode_index_buffer if mode == "TRIANGLES" else meshoptimizer.decode_index_sequence
                out = np.asarray(fn(count, stride, data))
                result = out.view(np.uint8)[:count * stride].tobytes() if stride == 2 else out.astype("<u4").tobytes()
            else:
                raise InvalidInputError(f"{what} has unknown mode {mode!r} (accepted: ATTRIBUTES, TRIANGLES, INDICES)")
        except (RuntimeError, ValueError) as e:
            if isinstance(e, InvalidInputError):
                raise
            raise InvalidInputError(f"{what} could not be decoded ({e})") from None
        if len(result) < int(view.get("byteLength", 0)):
            raise InvalidInputError(f"{what} decoded to {len(result)} bytes, the view declares {view['byteLength']}")
        return result

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
        """Image ``ii`` as [H, W, 4] uint8 RGBA (PNG, JPEG or WebP)."""
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
                return np.asarray(pic.convert("RGBA"), dtype=np.uint8).copy()
        except Exception as e:  # PIL raises many types for corrupt images
            raise InvalidInputError(f"{self.path}: image {ii} could not be decoded ({e}); "
                                    f"expected PNG, JPEG or WebP") from None


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


def match_target(name: str) -> Optional[names.NameMatch]:
    """A morph-target name -> its :class:`emo3d.names.NameMatch` (None when unknown)."""
    return names.resolve(name)


def load_gltf(path, *, framing: str = "auto") -> Rig:
    """Load ``path`` (.glb/.gltf/.vrm) into one :class:`Rig` (see the module doc for the rules);
    ``framing`` = auto | face | head | full sets ``Rig.frame_box`` (:mod:`emo3d.avatar.framing`)."""
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"glTF rig {path} does not exist (expected a .glb, .gltf or .vrm file)")
    _framing.check_mode(framing)
    try:
        rig, duplicates = _load(path)
    except (KeyError, TypeError, IndexError, AttributeError, struct.error) as e:
        what = f"missing field {e.args[0]!r}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        raise InvalidInputError(f"{path}: malformed glTF ({what})") from None
    if rig.unknown:
        names.warn_unknown(rig.unknown, f"rig {path.name}", stacklevel=2)
    if duplicates:
        warnings.warn(names.UnknownNameWarning(
            f"rig {path.name}: {len(duplicates)} morph target(s) name a shape another target of the same "
            f"mesh already drives, ignored: {', '.join(duplicates[:12])}"), stacklevel=2)
    return _framing.with_framing(rig, framing)


class _World:
    """World matrices of every node (parents from ``children``), memoised, cycle-checked."""

    def __init__(self, doc: _Doc, root: Optional[np.ndarray] = None):
        self.doc = doc
        self.root = np.eye(4) if root is None else root   # applied above every scene root
        nodes = doc.json.get("nodes", [])
        self.parent: Dict[int, int] = {}
        for i, n in enumerate(nodes):
            for c in n.get("children", []):
                doc._item("nodes", c)
                self.parent[c] = i
        self._m: Dict[int, np.ndarray] = {}

    def __call__(self, ni: int) -> np.ndarray:
        if ni in self._m:
            return self._m[ni]
        chain, n = [], ni
        while n is not None and n not in self._m:
            chain.append(n)
            if len(chain) > 256:
                raise InvalidInputError(f"{self.doc.path}: node hierarchy deeper than 256 (a cycle?)")
            n = self.parent.get(n)
        M = self._m[n] if n is not None else self.root
        for c in reversed(chain):
            M = M @ _node_matrix(self.doc._item("nodes", c))
            self._m[c] = M
        return self._m[ni]


def _scene_mesh_nodes(doc: _Doc) -> List[int]:
    J = doc.json
    scenes = J.get("scenes") or []
    nodes = J.get("nodes", [])
    if scenes:
        si = J.get("scene", 0)
        roots = scenes[si if isinstance(si, int) and 0 <= si < len(scenes) else 0].get("nodes", [])
    else:
        children = {c for n in nodes for c in n.get("children", [])}
        roots = [i for i in range(len(nodes)) if i not in children]
    out, stack, seen = [], list(reversed(roots)), set()
    while stack:
        ni = stack.pop()
        if ni in seen:
            raise InvalidInputError(f"{doc.path}: node {ni} is reached twice (a cycle in the node hierarchy?)")
        seen.add(ni)
        node = doc._item("nodes", ni)
        if "mesh" in node:
            out.append(ni)
        stack.extend(reversed(node.get("children", [])))
    return out


def _faces(idx: np.ndarray, mode: int) -> np.ndarray:
    if mode == 4:
        return idx[: idx.size // 3 * 3].reshape(-1, 3)
    if mode == 5:
        k = np.arange(max(idx.size - 2, 0))
        return np.stack([idx[k], idx[k + 1 + (k % 2)], idx[k + 2 - (k % 2)]], axis=1)
    k = np.arange(1, max(idx.size - 1, 1))
    return np.stack([np.full(k.size, idx[0]), idx[k], idx[k + 1]], axis=1)


def _skin_matrices(doc: _Doc, world: _World, skin_i: int, attrs: dict, V: int, where: str):
    """Per-vertex bind-pose matrices [V,4,4] of a skinned primitive, or None without weights."""
    skin = doc._item("skins", skin_i)
    joints = skin.get("joints", [])
    if not joints or "JOINTS_0" not in attrs or "WEIGHTS_0" not in attrs:
        return None
    if "inverseBindMatrices" in skin:
        ibm = doc.accessor(skin["inverseBindMatrices"]).astype(np.float64)
        if ibm.shape != (len(joints), 16):
            raise InvalidInputError(f"{doc.path}: skin {skin_i} has {ibm.shape[0]} inverse bind matrices for "
                                    f"{len(joints)} joints")
        ibm = ibm.reshape(-1, 4, 4).transpose(0, 2, 1)
    else:
        ibm = np.repeat(np.eye(4)[None], len(joints), axis=0)
    J = np.stack([world(j) for j in joints]) @ ibm                    # [nJ,4,4]
    B = np.zeros((V, 4, 4))
    total = np.zeros(V)
    k = 0
    while f"JOINTS_{k}" in attrs and f"WEIGHTS_{k}" in attrs:
        jj = doc.accessor(attrs[f"JOINTS_{k}"]).astype(np.int64)
        ww = doc.accessor(attrs[f"WEIGHTS_{k}"]).astype(np.float64)
        if jj.shape != (V, 4) or ww.shape != (V, 4):
            raise InvalidInputError(f"{where}: JOINTS_{k}/WEIGHTS_{k} must be [V, 4] for {V} vertices")
        if jj.size and (jj.min() < 0 or jj.max() >= len(joints)):
            raise InvalidInputError(f"{where}: JOINTS_{k} names joint {int(jj.max())}, skin {skin_i} has "
                                    f"{len(joints)}")
        for c in range(4):
            B += ww[:, c, None, None] * J[jj[:, c]]
        total += ww.sum(axis=1)
        k += 1
    unweighted = total < 1e-8
    if unweighted.any():
        B[unweighted] = np.eye(4)
    B[~unweighted] /= total[~unweighted, None, None]
    return B


def _head_joints(doc: _Doc, world: _World) -> Tuple[Optional[int], set]:
    """The head node (VRM humanoid head, else a node named Head) and its subtree."""
    head = _vrm.head_node(doc.json)
    nodes = doc.json.get("nodes", [])
    if head is None:
        for i, n in enumerate(nodes):
            nm = re.sub(r"[^a-z]", "", str(n.get("name", "")).lower())
            if re.fullmatch(r"(mixamorig|j?bip[c0-9]*|cc?base|def|b)?head(jnt|bone)?", nm):
                head = i
                break
    return head, _subtree(nodes, head)


def _subtree(nodes: list, root: Optional[int]) -> set:
    """``root`` and every node below it (empty for None)."""
    sub: set = set()
    stack = [] if root is None else [root]
    while stack:
        n = stack.pop()
        if n in sub:
            continue
        sub.add(n)
        stack.extend(nodes[n].get("children", []) if 0 <= n < len(nodes) else [])
    return sub


class _Prim:
    """One placed primitive: vertices, faces, targets and appearance, before merging."""

    __slots__ = ("start", "V", "uv", "color", "image", "factor", "alpha_cut", "head_w", "eye_w")


def _texture_transform(uv: np.ndarray, info: dict) -> np.ndarray:
    ext = (info.get("extensions") or {}).get("KHR_texture_transform")
    if not ext:
        return uv
    ox, oy = ext.get("offset", (0.0, 0.0))
    r = float(ext.get("rotation", 0.0))
    sx, sy = ext.get("scale", (1.0, 1.0))
    c, s = np.cos(r), np.sin(r)
    M = np.array([[c, s], [-s, c]]) @ np.diag([sx, sy])   # the extension's T R S
    return (uv.astype(np.float64) @ M.T + (ox, oy)).astype(np.float32)


def _load(path: Path) -> Tuple[Rig, Tuple[str, ...]]:
    doc = _Doc(path)
    J = doc.json
    # VRM 0.x avatars face -z (UniVRM's convention); VRM 1.0 and plain glTF face +z: turn 0.x around
    world = _World(doc, np.diag([-1.0, 1.0, -1.0, 1.0]) if _vrm.faces_minus_z(J) else None)
    mesh_nodes = _scene_mesh_nodes(doc)
    if not mesh_nodes:
        mesh_nodes = []
    placed = [(doc._item("nodes", ni)["mesh"], ni) for ni in mesh_nodes]
    if not placed and J.get("meshes"):
        placed = [(i, None) for i in range(len(J["meshes"]))]
    if not placed:
        raise InvalidInputError(f"{path}: the file has no meshes")
    head_node, head_set = _head_joints(doc, world)
    look = _vrm.look_at(J)
    eyes = _vrm.eye_nodes(J) if look is not None and look["type"] == "bone" else None
    eye_sets = [_subtree(J.get("nodes", []), n) for n in eyes] if eyes else []

    verts, tris, prims, one_sided = [], [], [], []
    deltas: Dict[str, List[Tuple[int, np.ndarray]]] = {}
    split: Dict[str, List[Tuple[int, np.ndarray]]] = {}
    raw: Dict[Tuple[int, int], List[Tuple[int, np.ndarray]]] = {}   # (mesh, target) -> deltas, for VRM
    tname_of: Dict[Tuple[int, int], str] = {}
    unknown: List[str] = []
    duplicates: List[str] = []
    n_v = 0
    for mi, ni in placed:
        mesh = doc._item("meshes", mi)
        node = doc._item("nodes", ni) if ni is not None else {}
        M = world(ni) if ni is not None else world.root
        mesh_names = (mesh.get("extras") or {}).get("targetNames")
        for pi, prim in enumerate(mesh.get("primitives", [])):
            where = f"{path}: mesh {mi} primitive {pi}"
            mode = prim.get("mode", 4)
            if mode not in (4, 5, 6):
                continue  # points / lines carry no surface
            attrs = prim.get("attributes", {})
            if "POSITION" not in attrs:
                raise InvalidInputError(f"{where} has no POSITION")
            pos = doc.accessor(attrs["POSITION"]).astype(np.float64)
            if pos.shape[1] != 3:
                raise InvalidInputError(f"{where} POSITION is not VEC3")
            V = pos.shape[0]
            mat = doc._item("materials", prim["material"]) if "material" in prim else {}
            pbr = mat.get("pbrMetallicRoughness", {})
            factor = np.asarray(pbr.get("baseColorFactor", (1, 1, 1, 1)), np.float64)
            image, uv = None, None
            info = pbr.get("baseColorTexture")
            sg = (mat.get("extensions") or {}).get("KHR_materials_pbrSpecularGlossiness")
            if sg is not None and info is None:   # older exports: the diffuse texture is the base colour
                factor = np.asarray(sg.get("diffuseFactor", (1, 1, 1, 1)), np.float64)
                info = sg.get("diffuseTexture")
            if info is not None:
                tex = doc._item("textures", info["index"])
                src = ((tex.get("extensions") or {}).get("EXT_texture_webp") or {}).get("source", tex.get("source"))
                tc = ((info.get("extensions") or {}).get("KHR_texture_transform") or {}).get(
                    "texCoord", info.get("texCoord", 0))
                if src is not None and f"TEXCOORD_{tc}" in attrs:
                    image = int(src)
                    uv = doc.accessor(attrs[f"TEXCOORD_{tc}"]).astype(np.float32)
                    if uv.shape != (V, 2):
                        raise InvalidInputError(f"{where} TEXCOORD_{tc} is not [V, 2]")
                    uv = _texture_transform(uv, info)
            alpha_mode = mat.get("alphaMode", "OPAQUE")
            cutoff = float(mat.get("alphaCutoff", 0.5)) if alpha_mode == "MASK" else 0.5
            if alpha_mode in ("MASK", "BLEND") and image is None and factor[3] < cutoff:
                continue   # an untextured see-through surface: the renderer is opaque
            if "indices" in prim:
                idx = doc.accessor(prim["indices"])[:, 0].astype(np.int64)
            else:
                idx = np.arange(V, dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= V):
                raise InvalidInputError(f"{where} index out of range (max {idx.max()}, {V} vertices)")
            f = _faces(idx, mode)
            if alpha_mode in ("MASK", "BLEND") and image is not None:
                # the renderer is opaque: keep the triangles whose texture is mostly opaque there (an iris
                # disc, lash strokes), drop the see-through ones (the card around them, highlights' halo)
                f = f[_triangle_alpha(doc.image(image)[..., 3], uv, f) * factor[3] >= cutoff]
                if not len(f):
                    continue
            B = _skin_matrices(doc, world, node["skin"], attrs, V, where) if "skin" in node else None
            head_w = eye_w = None
            if B is not None:
                p4 = np.concatenate([pos, np.ones((V, 1))], axis=1)
                world_pos = np.einsum("vij,vj->vi", B, p4)[:, :3]
                lin = B[:, :3, :3]
                flip = np.linalg.det(lin[f[:, 0]]) < 0 if len(f) else np.zeros(0, bool)
                f = np.where(flip[:, None], f[:, ::-1], f)
                if head_set:
                    head_w = _head_weights(doc, node["skin"], attrs, V, head_set)
                if eye_sets:
                    eye_w = np.stack([_head_weights(doc, node["skin"], attrs, V, es) for es in eye_sets])
                move = lambda d, lin=lin: np.einsum("vij,vj->vi", lin, d)  # noqa: E731
            else:
                lin = M[:3, :3]
                if np.linalg.det(lin) < 0:
                    f = f[:, ::-1]
                world_pos = pos @ lin.T + M[:3, 3]
                if ni is not None and ni in head_set:
                    head_w = np.ones(V)
                if eye_sets and ni is not None and any(ni in es for es in eye_sets):
                    eye_w = np.array([[float(ni in es)] * V for es in eye_sets])
                move = lambda d, lin=lin: d @ lin.T  # noqa: E731
            verts.append(world_pos)
            tris.append(f + n_v)
            one_sided.append(np.full(len(f), not mat.get("doubleSided", False)))
            # morph targets
            targets = prim.get("targets") or []
            tnames = (prim.get("extras") or {}).get("targetNames") or mesh_names
            if targets:
                if tnames is None:
                    tnames = [f"target{i}" for i in range(len(targets))]
                if len(tnames) != len(targets):
                    raise InvalidInputError(f"{where} has {len(targets)} morph targets but {len(tnames)} "
                                            f"targetNames (unknown target count)")
                matched: List[Tuple[str, names.NameMatch, np.ndarray]] = []
                for ti, (tname, tgt) in enumerate(zip(tnames, targets)):
                    if "POSITION" not in tgt:
                        continue
                    d = doc.accessor(tgt["POSITION"]).astype(np.float64)
                    if d.shape != (V, 3):
                        raise InvalidInputError(f"{where} target {tname!r} has {d.shape[0]} deltas for {V} vertices")
                    d = move(d)
                    raw.setdefault((mi, ti), []).append((n_v, d))
                    tname_of[(mi, ti)] = str(tname)
                    m = match_target(tname)
                    if m is None:
                        if str(tname) not in unknown:
                            unknown.append(str(tname))
                        continue
                    matched.append((str(tname), m, d))
                for kind, name, d in _choose(matched, duplicates):
                    (split if kind == "split" else deltas).setdefault(name, []).append((n_v, d))
            color = np.repeat(factor[None, :3], V, axis=0)
            if "COLOR_0" in attrs:
                c = doc.accessor(attrs["COLOR_0"]).astype(np.float64)[:, :3]
                if c.shape[0] != V:
                    raise InvalidInputError(f"{where} COLOR_0 has {c.shape[0]} rows")
                color = color * c
            p = _Prim()
            p.start, p.V, p.uv, p.color, p.image, p.factor = n_v, V, uv, color, image, factor[:3]
            p.head_w, p.eye_w = head_w, eye_w
            prims.append(p)
            n_v += V
    if n_v == 0:
        raise InvalidInputError(f"{path}: no triangle primitives found")

    vertices = np.concatenate(verts).astype(np.float32)
    triangles = np.concatenate(tris).astype(np.int32)
    single_sided = np.concatenate(one_sided)
    for stem, parts in split.items():   # unsided source of a sided pair: split at the middle of what it moves
        xs = np.concatenate([vertices[st:st + d.shape[0], 0][np.linalg.norm(d, axis=1) > 1e-6] for st, d in parts])
        mid, soft = ((float(xs.min() + xs.max()) / 2, max(float(np.ptp(xs)) * 0.05, 1e-6)) if xs.size
                     else (0.0, 1e-6))
        for start, d in parts:
            x = vertices[start:start + d.shape[0], 0]
            left = np.clip(0.5 + (x - mid) / (2 * soft), 0, 1)[:, None]   # +x is the subject's left
            deltas.setdefault(stem + "Left", []).append((start, d * left))
            deltas.setdefault(stem + "Right", []).append((start, d * (1 - left)))
    target_names = tuple(n for n in schema.MODEL_NAMES + EXTRA_TARGETS if n in deltas)
    dense = np.zeros((len(target_names), n_v, 3), np.float32)
    for t, n in enumerate(target_names):
        for start, d in deltas[n]:
            dense[t, start:start + d.shape[0]] += d.astype(np.float32)
    vrm_exprs, bound = _vrm.expressions(J, raw)
    if eyes is not None:   # lookAt turns bones: the look presets are not how this VRM looks around
        vrm_exprs = {k: v for k, v in vrm_exprs.items() if k not in _vrm.LOOK_PRESETS}
    if vrm_exprs and len(target_names) < _vrm.MIN_ARKIT_SHAPES:
        # few or no ARKit shapes: the VRM presets drive the ARKit shapes the rig lacks (its own win)
        extra_names, extra = _vrm.retarget(vrm_exprs, vertices, skip=target_names)
        if extra_names:
            order = {n: i for i, n in enumerate(schema.MODEL_NAMES + EXTRA_TARGETS)}
            merged = sorted(zip(target_names + extra_names, list(dense) + list(extra)), key=lambda t: order[t[0]])
            target_names = tuple(n for n, _ in merged)
            dense = np.stack([d for _, d in merged]).astype(np.float32)
        bound_names = {tname_of[k] for k in bound if k in tname_of}
        unknown = [u for u in unknown if u not in bound_names]
    missing = tuple(n for n in schema.MODEL_NAMES if n not in target_names)
    uv_all, texture, colors = _appearance(doc, prims, n_v)
    head_w = None
    if any(p.head_w is not None for p in prims):
        head_w = np.zeros(n_v)
        for p in prims:
            if p.head_w is not None:
                head_w[p.start:p.start + p.V] = p.head_w
    face_box, head_box = _framing.regions(vertices, target_names, dense, head_w)
    head_weights = head_pivot = None
    if head_w is not None and head_node is not None and (head_w < 0.5).any():   # a head on a body
        head_weights = np.clip(head_w, 0, 1).astype(np.float32)
        head_pivot = world(head_node)[:3, 3].astype(np.float32)
    eye_weights = eye_pivots = None
    if eyes is not None and not any(n.startswith("eyeLook") for n in target_names):
        # a VRM whose lookAt turns the eye bones (and no eye-look shapes turn the eyes already)
        ew = np.zeros((2, n_v))
        for p in prims:
            if p.eye_w is not None:
                ew[:, p.start:p.start + p.V] = p.eye_w
        if (ew > 0).any(axis=1).all():
            eye_weights = np.clip(ew, 0, 1).astype(np.float32)
            eye_pivots = np.stack([world(n)[:3, 3] for n in eyes]).astype(np.float32)
    rig = Rig.from_dense(path.stem, vertices, triangles, target_names, dense, uvs=uv_all, texture=texture,
                         colors=colors, missing=missing, unknown=tuple(unknown), face_box=face_box,
                         head_box=head_box, head_weights=head_weights, head_pivot=head_pivot,
                         eye_weights=eye_weights, eye_pivots=eye_pivots,
                         single_sided=single_sided if single_sided.any() else None)
    return rig, tuple(dict.fromkeys(duplicates))


def _exact(tname: str, canonical: str) -> bool:
    """True when ``tname`` spells ``canonical`` itself (any case/separator, exporter prefix, Blender suffix)."""
    return "".join(names.tokens(tname)) == canonical.lower()


def _choose(matched, duplicates: List[str]):
    """One primitive's resolved targets -> [(kind 'one'|'split', canonical or stem, deltas)]. Several
    sources of one ARKit shape in a primitive: its own spelling wins (``mouthSmileLeft`` over an alias
    such as CC's ``Mouth_Smile_L``; ``jawOpen`` over ``mouthOpen``), else the first; one-sided parts
    (``browInnerUp_L``) are summed unless the shape itself is there; an unsided source of a sided pair
    (``mouthSmile``) is split unless both sides are there. Names left out go to ``duplicates``."""
    direct: Dict[str, List[Tuple[str, np.ndarray]]] = {}
    for tname, m, d in matched:
        if not m.split and m.part is None:
            direct.setdefault(m.targets[0], []).append((tname, d))
    out = []
    for canon, srcs in direct.items():
        best = next((x for x in srcs if _exact(x[0], canon)), srcs[0])
        duplicates.extend(t for t, _ in srcs if t != best[0])
        if canon in schema.MODEL_INDEX or canon in EXTRA_TARGETS:   # (_neutral: nothing to drive)
            out.append(("one", canon, best[1]))
    for tname, m, d in matched:
        if m.part is not None:
            if m.targets[0] in direct:
                duplicates.append(tname)
            else:
                out.append(("one", m.targets[0], d))
        elif m.split:
            if m.targets[0] in direct and m.targets[1] in direct:
                duplicates.append(tname)
            else:
                out.append(("split", m.name, d))
    return out


def _triangle_alpha(alpha: np.ndarray, uv: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Each triangle's mean texture alpha (0..1) at its three corners and its centroid (nearest texel,
    UVs wrapped)."""
    h, w = alpha.shape
    pts = np.concatenate([uv[f], uv[f].mean(axis=1, keepdims=True)], axis=1)      # [F,4,2]
    pts = pts - np.floor(pts)
    x = np.clip((pts[..., 0] * w).astype(np.int64), 0, w - 1)
    y = np.clip((pts[..., 1] * h).astype(np.int64), 0, h - 1)
    return alpha[y, x].mean(axis=1) / 255.0


def _head_weights(doc: _Doc, skin_i: int, attrs: dict, V: int, head_set: set) -> np.ndarray:
    joints = doc._item("skins", skin_i).get("joints", [])
    is_head = np.array([j in head_set for j in joints], bool)
    w = np.zeros(V)
    k = 0
    while f"JOINTS_{k}" in attrs and f"WEIGHTS_{k}" in attrs:
        jj = doc.accessor(attrs[f"JOINTS_{k}"]).astype(np.int64)
        ww = doc.accessor(attrs[f"WEIGHTS_{k}"]).astype(np.float64)
        w += (ww * is_head[jj]).sum(axis=1)
        k += 1
    return w


_TILE_MAX = 1024        # a material's texture is scaled down to at most this many texels a side
_ATLAS_MAX = 4096       # the renderer's limit (W*H <= 2^24)
_PAD = 2


def _appearance(doc: _Doc, prims: List[_Prim], n_v: int):
    """(uvs, texture, colors) for the merged rig: one texture as is, several packed into an atlas,
    or vertex colours when nothing is textured."""
    textured = [p for p in prims if p.image is not None]
    if not textured:
        has_colour = any("material" in pr or "COLOR_0" in pr.get("attributes", {})
                         for m in doc.json.get("meshes", []) for pr in m.get("primitives", []))
        if not has_colour:
            return None, None, None
        return None, None, np.clip(np.concatenate([p.color for p in prims]), 0, 1).astype(np.float32)
    single = (len(textured) == len(prims) and len({p.image for p in prims}) == 1
              and all(np.allclose(p.factor, prims[0].factor) for p in prims))
    if single:
        uv = np.concatenate([p.uv for p in prims]).astype(np.float32)
        if uv.min() >= -1e-6 and uv.max() <= 1 + 1e-6:
            img = doc.image(prims[0].image)[..., :3]
            if not np.allclose(prims[0].factor, 1.0):
                img = np.clip(np.round(img * prims[0].factor[None, None, :]), 0, 255).astype(np.uint8)
            return uv, np.ascontiguousarray(img), None
    # one tile per (image, factor) and per solid colour
    tiles: Dict[tuple, np.ndarray] = {}
    keys = []
    for p in prims:
        if p.image is not None:
            key = ("img", p.image, tuple(np.round(p.factor, 4)))
            if key not in tiles:
                img = doc.image(p.image)[..., :3].astype(np.float32) * p.factor[None, None, :]
                tiles[key] = _fit(np.clip(np.round(img), 0, 255).astype(np.uint8), _TILE_MAX)
        else:
            col = np.clip(p.color.mean(axis=0), 0, 1)
            key = ("col", tuple(np.round(col, 3)))
            if key not in tiles:
                tiles[key] = np.full((4, 4, 3), np.round(col * 255), np.uint8)
        keys.append(key)
    atlas, place = _pack(tiles)
    H, W = atlas.shape[:2]
    uv = np.zeros((n_v, 2), np.float32)
    for p, key in zip(prims, keys):
        y0, x0, h, w = place[key]
        if p.image is not None:
            u = p.uv.astype(np.float64)
            shift = np.floor(u.min(axis=0))
            if (np.floor(u.max(axis=0) - 1e-6) == shift).all():
                u = u - shift            # a repeated texture used within one period
            u = np.clip(u, 0, 1)
        else:
            u = np.full((p.V, 2), 0.5)
        uv[p.start:p.start + p.V, 0] = (x0 + u[:, 0] * (w - 1)) / (W - 1)
        uv[p.start:p.start + p.V, 1] = (y0 + u[:, 1] * (h - 1)) / (H - 1)
    return uv, atlas, None


def _fit(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) <= side:
        return img
    from PIL import Image
    k = side / max(h, w)
    return np.asarray(Image.fromarray(img).resize((max(1, round(w * k)), max(1, round(h * k))), Image.LANCZOS))


def _pack(tiles: Dict[tuple, np.ndarray]):
    """Shelf-pack tiles (edge-padded) into one image <= 4096 a side, shrinking all if needed:
    (atlas, {key: (y0, x0, h, w)}) with (y0, x0) the tile's first texel."""
    scale = 1.0
    while True:
        sized = {k: (_fit(t, max(4, int(max(t.shape[:2]) * scale))) if scale < 1 else t) for k, t in tiles.items()}
        order = sorted(sized, key=lambda k: -sized[k].shape[0])
        area = sum((t.shape[0] + 2 * _PAD) * (t.shape[1] + 2 * _PAD) for t in sized.values())
        width = int(min(_ATLAS_MAX, max(max(t.shape[1] + 2 * _PAD for t in sized.values()), np.sqrt(area) * 1.2)))
        place, x, y, shelf = {}, 0, 0, 0
        for k in order:
            h, w = sized[k].shape[:2]
            if x + w + 2 * _PAD > width:
                x, y, shelf = 0, y + shelf, 0
            place[k] = (y + _PAD, x + _PAD, h, w)
            x += w + 2 * _PAD
            shelf = max(shelf, h + 2 * _PAD)
        height = y + shelf
        if height <= _ATLAS_MAX and width <= _ATLAS_MAX:
            break
        scale *= 0.7
    atlas = np.zeros((height, width, 3), np.uint8)
    for k, (y0, x0, h, w) in place.items():
        atlas[y0 - _PAD:y0 + h + _PAD, x0 - _PAD:x0 + w + _PAD] = np.pad(sized[k], ((_PAD, _PAD), (_PAD, _PAD), (0, 0)),
                                                                         mode="edge")
    return atlas, place
