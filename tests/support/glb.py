"""A small glTF 2.0 (.glb) writer for tests, and a synthetic test face built with it.

``GlbBuilder`` writes exactly what a test asks for: float / quantized (KHR_mesh_quantization) /
sparse accessors, EXT_meshopt_compression buffer views (encoded with the ``meshoptimizer``
package), PNG/JPEG/WebP images, materials with KHR_texture_transform and alpha modes, nodes,
skins, VRM 0.x / 1.0 extensions. ``face_rig(...)`` builds the test head in any of those forms:
a curved face plane (x in [-1, 1] = the subject's right..left, y in [-1.25, 1.25], facing +z)
with painted eyes, brows and lips, and morph targets that move the jaw, the mouth corners, the
upper lids and the brows of the side their name says.
"""
from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image

FLOAT, U8, U16, I8, I16, U32 = 5126, 5121, 5123, 5120, 5122, 5125
_DT = {FLOAT: np.float32, U8: np.uint8, U16: np.uint16, I8: np.int8, I16: np.int16, U32: np.uint32}
_TYPE = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}


class GlbBuilder:
    def __init__(self, *, meshopt: bool = False, exp_filter: bool = False):
        self.doc: dict = {"asset": {"version": "2.0", "generator": "emo3d tests"}, "buffers": [],
                          "bufferViews": [], "accessors": [], "meshes": [], "nodes": [], "materials": [],
                          "textures": [], "images": [], "samplers": [], "skins": []}
        self.bin = bytearray()
        self.meshopt = meshopt
        self.exp_filter = exp_filter   # meshopt: float VEC3 streams stored with the EXPONENTIAL filter
        self.comp = bytearray()        # meshopt-compressed bytes (buffer 1) when meshopt
        self.used: set = set()
        self.required: set = set()

    # --- raw storage --------------------------------------------------------------------------
    def view(self, data: bytes, *, stride: Optional[int] = None, target: Optional[int] = None,
             meshopt_mode: Optional[str] = None, count: int = 0, meshopt_filter: Optional[str] = None) -> int:
        while len(self.bin) % 4:
            self.bin.append(0)
        v = {"buffer": 0, "byteOffset": len(self.bin), "byteLength": len(data)}
        if stride:
            v["byteStride"] = stride
        if target:
            v["target"] = target
        self.bin += data
        if self.meshopt and meshopt_mode:
            import meshoptimizer
            size = stride or (2 if meshopt_mode != "ATTRIBUTES" else len(data) // count)
            if meshopt_mode == "ATTRIBUTES":
                raw = data
                if meshopt_filter == "EXPONENTIAL":   # each float -> int32: exponent (8 bits) | mantissa (24)
                    f = np.frombuffer(data, np.float32)
                    e = -20
                    m = np.round(f * 2.0 ** -e).astype(np.int64) & 0xFFFFFF
                    raw = ((np.int64(e) & 0xFF) << 24 | m).astype(np.uint32).tobytes()
                enc = meshoptimizer.encode_vertex_buffer(np.frombuffer(raw, np.uint8).reshape(count, size),
                                                         count, size)
            else:
                idx = np.frombuffer(data, np.uint16 if size == 2 else np.uint32).astype(np.uint32)
                enc = meshoptimizer.encode_index_buffer(idx, count, int(idx.max()) + 1)
            while len(self.comp) % 4:
                self.comp.append(0)
            v["extensions"] = {"EXT_meshopt_compression": {
                "buffer": 1, "byteOffset": len(self.comp), "byteLength": len(enc), "byteStride": size,
                "count": count, "mode": meshopt_mode}}
            if meshopt_filter:
                v["extensions"]["EXT_meshopt_compression"]["filter"] = meshopt_filter
            self.comp += enc
            self.used.add("EXT_meshopt_compression")
            self.required.add("EXT_meshopt_compression")
        self.doc["bufferViews"].append(v)
        return len(self.doc["bufferViews"]) - 1

    def accessor(self, arr, ctype: int = FLOAT, *, normalized: bool = False, sparse: bool = False,
                 index: bool = False, target: Optional[int] = 34962) -> int:
        a = np.asarray(arr)
        a2 = a.reshape(len(a), -1)
        ncomp = a2.shape[1]
        data = np.ascontiguousarray(a2.astype(_DT[ctype]))
        acc = {"componentType": ctype, "count": len(a2), "type": _TYPE[ncomp]}
        if normalized:
            acc["normalized"] = True
        if sparse:
            nz = np.nonzero(np.abs(a2).sum(axis=1) > 0)[0].astype(np.uint32)
            acc["sparse"] = {"count": int(len(nz)),
                             "indices": {"bufferView": self.view(nz.tobytes()), "componentType": U32},
                             "values": {"bufferView": self.view(data[nz].tobytes())}}
        else:
            if index:
                acc["bufferView"] = self.view(data.tobytes(), target=34963, meshopt_mode="TRIANGLES",
                                              count=len(a2))
            else:
                row = data.itemsize * ncomp
                if row % 4:   # vertex attributes are 4-byte aligned: pad each element, stride says so
                    pad = np.zeros((len(a2), (4 - row % 4) // data.itemsize), data.dtype)
                    data = np.ascontiguousarray(np.concatenate([data, pad], axis=1))
                padded = data.shape[1] * data.itemsize
                exp = self.meshopt and self.exp_filter and ctype == FLOAT and ncomp == 3
                acc["bufferView"] = self.view(data.tobytes(), target=target, meshopt_mode="ATTRIBUTES",
                                              count=len(a2), stride=padded if (self.meshopt or padded != row)
                                              and target else None,
                                              meshopt_filter="EXPONENTIAL" if exp else None)
        if ncomp == 3:   # bounds of the stored values (required for POSITION)
            dense = a2.astype(_DT[ctype])
            acc["min"], acc["max"] = dense.min(0).tolist(), dense.max(0).tolist()
        self.doc["accessors"].append(acc)
        return len(self.doc["accessors"]) - 1

    def image(self, rgb: np.ndarray, fmt: str = "PNG") -> int:
        buf = io.BytesIO()
        Image.fromarray(np.asarray(rgb, np.uint8)).save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[fmt]
        self.doc["images"].append({"bufferView": self.view(buf.getvalue()), "mimeType": mime})
        return len(self.doc["images"]) - 1

    def texture(self, rgb: np.ndarray, fmt: str = "PNG") -> int:
        img = self.image(rgb, fmt)
        if fmt == "WEBP":
            self.used.add("EXT_texture_webp")
            self.required.add("EXT_texture_webp")
            tex = {"extensions": {"EXT_texture_webp": {"source": img}}}
        else:
            tex = {"source": img}
        self.doc["textures"].append(tex)
        return len(self.doc["textures"]) - 1

    def material(self, color=(1, 1, 1, 1), texture: Optional[int] = None, *, transform: Optional[dict] = None,
                 alpha_mode: Optional[str] = None, name: str = "", double_sided: Optional[bool] = None) -> int:
        pbr: dict = {"baseColorFactor": list(map(float, color))}
        if texture is not None:
            info: dict = {"index": texture}
            if transform:
                info["extensions"] = {"KHR_texture_transform": transform}
                self.used.add("KHR_texture_transform")
            pbr["baseColorTexture"] = info
        m = {"name": name, "pbrMetallicRoughness": pbr}
        if alpha_mode:
            m["alphaMode"] = alpha_mode
        if double_sided is not None:
            m["doubleSided"] = double_sided
        self.doc["materials"].append(m)
        return len(self.doc["materials"]) - 1

    def mesh(self, prims: List[dict], target_names: Sequence[str] = ()) -> int:
        m: dict = {"primitives": prims}
        if target_names:
            m["extras"] = {"targetNames": list(target_names)}
            m["weights"] = [0.0] * len(target_names)
        self.doc["meshes"].append(m)
        return len(self.doc["meshes"]) - 1

    def node(self, **kw) -> int:
        self.doc["nodes"].append(kw)
        return len(self.doc["nodes"]) - 1

    def skin(self, joints: Sequence[int], inverse_bind: np.ndarray) -> int:
        ibm = np.asarray(inverse_bind, np.float32).transpose(0, 2, 1).reshape(len(joints), 16)  # column-major
        self.doc["skins"].append({"joints": list(joints), "inverseBindMatrices": self.accessor(ibm, target=None)})
        return len(self.doc["skins"]) - 1

    def write(self, path, roots: Sequence[int], *, extensions: Optional[dict] = None,
              required: Sequence[str] = (), used: Sequence[str] = ()) -> Path:
        d = self.doc
        d["scene"], d["scenes"] = 0, [{"nodes": list(roots)}]
        for k in [k for k in ("materials", "textures", "images", "samplers", "skins") if not d[k]]:
            del d[k]
        while len(self.bin) % 4:
            self.bin.append(0)
        if self.meshopt:
            # buffer 0 (the BIN chunk): the meshopt streams plus every uncompressed view (images, sparse);
            # buffer 1: the fallback, the uncompressed layout with no data (never read by a decoder)
            blob = bytearray(self.comp)
            for v in d["bufferViews"]:
                ext = v.get("extensions", {}).get("EXT_meshopt_compression")
                if ext:
                    v["buffer"], ext["buffer"] = 1, 0
                else:
                    while len(blob) % 4:
                        blob.append(0)
                    start = len(blob)
                    blob += self.bin[v["byteOffset"]:v["byteOffset"] + v["byteLength"]]
                    v["buffer"], v["byteOffset"] = 0, start
            d["buffers"] = [{"byteLength": len(blob)},
                            {"byteLength": len(self.bin), "extensions": {"EXT_meshopt_compression": {"fallback": True}}}]
            payload = bytes(blob)
        else:
            d["buffers"] = [{"byteLength": len(self.bin)}]
            payload = bytes(self.bin)
        if extensions:
            d["extensions"] = extensions
        u = sorted(self.used | set(used) | set(required) | set(extensions or {}))
        r = sorted(self.required | set(required))
        if u:
            d["extensionsUsed"] = u
        if r:
            d["extensionsRequired"] = r
        js = json.dumps(d).encode()
        js += b" " * (-len(js) % 4)
        payload += b"\0" * (-len(payload) % 4)
        total = 12 + 8 + len(js) + 8 + len(payload)
        out = struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<II", len(js), 0x4E4F534A) + js
        out += struct.pack("<II", len(payload), 0x004E4942) + payload
        path = Path(path)
        path.write_bytes(out)
        return path


# --- the synthetic test face ------------------------------------------------------------------
NX, NY = 33, 41
SKIN = (225, 185, 155)
EYES = ((0.4, 0.3), (-0.4, 0.3))        # (x, y) of the subject's left and right eye
BROWS = ((0.4, 0.62), (-0.4, 0.62))
MOUTH_Y = -0.6


def face_grid():
    """(vertices [V,3], triangles [F,3] CCW from +z, uvs [V,2]) of the curved face plane."""
    xs = np.linspace(-1, 1, NX)
    ys = np.linspace(-1.25, 1.25, NY)
    X, Y = np.meshgrid(xs, ys)
    Z = 0.45 * (1 - X ** 2) + 0.1 * (1 - (Y / 1.25) ** 2)
    v = np.stack([X, Y, Z], -1).reshape(-1, 3).astype(np.float32)
    uv = np.stack([(X + 1) / 2, (1.25 - Y) / 2.5], -1).reshape(-1, 2).astype(np.float32)
    tris = []
    for j in range(NY - 1):
        for i in range(NX - 1):
            a, b, c, d = j * NX + i, j * NX + i + 1, (j + 1) * NX + i + 1, (j + 1) * NX + i
            tris += [(a, b, c), (a, c, d)]
    return v, np.array(tris, np.int32), uv


def _gauss(v, cx, cy, sx, sy):
    return np.exp(-(((v[:, 0] - cx) / sx) ** 2 + ((v[:, 1] - cy) / sy) ** 2))[:, None]


def face_deltas(v: np.ndarray) -> Dict[str, np.ndarray]:
    """ARKit-named deltas [V,3] of the test face (plus tongueOut)."""
    out = {}
    t = np.clip((-0.42 - v[:, 1]) / 0.35, 0, 1)[:, None]
    out["jawOpen"] = t * np.array([0, -0.4, -0.05])
    for side, s in (("Left", 1), ("Right", -1)):
        out[f"mouthSmile{side}"] = _gauss(v, 0.33 * s, MOUTH_Y, 0.14, 0.12) * np.array([0.08 * s, 0.16, 0])
        out[f"eyeBlink{side}"] = _gauss(v, 0.4 * s, 0.4, 0.2, 0.09) * np.array([0, -0.16, 0.02])
        out[f"browDown{side}"] = _gauss(v, 0.4 * s, 0.62, 0.2, 0.1) * np.array([0, -0.14, 0.01])
    out["tongueOut"] = _gauss(v, 0, MOUTH_Y, 0.1, 0.05) * np.array([0, 0, 0.2])
    return {k: d.astype(np.float32) for k, d in out.items()}


def face_texture(h: int = 160, w: int = 128, *, eyes: bool = True, mouth: bool = True) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    x = xx / (w - 1) * 2 - 1
    y = 1.25 - yy / (h - 1) * 2.5
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = SKIN
    for (ex, ey), (bx, by) in zip(EYES, BROWS):
        if eyes:
            img[((x - ex) / 0.2) ** 2 + ((y - ey) / 0.09) ** 2 < 1] = (250, 250, 250)
            img[((x - ex) / 0.07) ** 2 + ((y - ey) / 0.07) ** 2 < 1] = (40, 60, 160)
        img[(np.abs(x - bx) < 0.2) & (np.abs(y - by) < 0.035)] = (70, 40, 20)
    if mouth:
        img[(np.abs(x) < 0.33) & (np.abs(y - MOUTH_Y) < 0.05)] = (180, 40, 50)
    return img


def face_rig(path, *, names: Optional[Dict[str, str]] = None, multi_material: bool = False,
             quantized: bool = False, sparse: bool = False, meshopt: bool = False, skinned: bool = False,
             body: bool = False, vrm: Optional[str] = None, image_format: str = "PNG",
             extra_required: Sequence[str] = (), unsided_smile: bool = False, meshopt_exp: bool = False) -> Path:
    """Write the test face to ``path`` (.glb). ``names`` renames the ARKit targets (vendor styles);
    ``multi_material``: skin / eyes (own WebP-or-PNG texture behind a KHR_texture_transform) / lips
    (untextured) primitives plus a transparent lash card; ``quantized``: int16/uint16 normalized
    attributes (KHR_mesh_quantization); ``sparse``: sparse target accessors; ``meshopt``:
    EXT_meshopt_compression; ``skinned``: a joint chain Hips > Neck > Head with the face skinned to
    Head and the body to Hips (the mesh node's own transform must be ignored); ``body``: a tall body
    below the face (framing); ``vrm`` = '0' or '1': no ARKit shapes, VRM expression presets instead (a VRM
    0.x avatar is written facing -z, as UniVRM 0.x exports it);
    ``unsided_smile``: one ``mouthSmile`` target moving both corners; ``meshopt_exp``: with ``meshopt``,
    float positions and deltas stored with the EXPONENTIAL filter (as ``gltfpack -vpf`` writes them)."""
    b = GlbBuilder(meshopt=meshopt, exp_filter=meshopt_exp)
    v, tris, uv = face_grid()
    deltas = face_deltas(v)
    if vrm:
        vrm_shapes = {
            "Fcl_MTH_A": deltas["jawOpen"],
            "Fcl_ALL_Joy": deltas["mouthSmileLeft"] + deltas["mouthSmileRight"],
            "Fcl_EYE_Close_L": deltas["eyeBlinkLeft"], "Fcl_EYE_Close_R": deltas["eyeBlinkRight"],
            "Fcl_ALL_Angry": deltas["browDownLeft"] + deltas["browDownRight"],
        }
        tnames, tdeltas = list(vrm_shapes), list(vrm_shapes.values())
    else:
        if unsided_smile:
            deltas["mouthSmile"] = deltas.pop("mouthSmileLeft") + deltas.pop("mouthSmileRight")
        tnames = [(names or {}).get(k, k) for k in deltas]
        tdeltas = list(deltas.values())
    parts = []       # (vertex ids, triangles local, material)
    if multi_material:
        cen = v[tris].mean(axis=1)
        in_eye = np.zeros(len(tris), bool)
        for ex, ey in EYES:
            in_eye |= ((cen[:, 0] - ex) / 0.24) ** 2 + ((cen[:, 1] - ey) / 0.13) ** 2 < 1
        in_mouth = (np.abs(cen[:, 0]) < 0.36) & (np.abs(cen[:, 1] - MOUTH_Y) < 0.07) & ~in_eye
        skin_t = b.texture(face_texture(eyes=False, mouth=False), image_format if image_format != "WEBP" else "PNG")
        eye_t = b.texture(face_texture(), image_format)
        m_skin = b.material((1, 1, 1, 1), skin_t, name="skin")
        # the eye primitive's stored UVs are (uv - offset) / scale: the transform must be applied
        m_eye = b.material((1, 1, 1, 1), eye_t, transform={"offset": [0.25, 0.1], "scale": [0.5, 0.5]}, name="eyes")
        m_lip = b.material((0.75, 0.12, 0.15, 1), None, name="lips")
        parts = [(tris[~in_eye & ~in_mouth], m_skin, None), (tris[in_eye], m_eye, ((0.25, 0.1), (0.5, 0.5))),
                 (tris[in_mouth], m_lip, None)]
    else:
        t = b.texture(face_texture(), image_format)
        parts = [(tris, b.material((1, 1, 1, 1), t, name="face"), None)]
    prims = []
    pos_scale = 2.0 if quantized else 1.0
    F = np.array([-1, 1, -1], np.float32) if vrm == "0" else np.ones(3, np.float32)   # VRM 0.x faces -z
    for ptris, mat, tr in parts:
        ids, local = np.unique(ptris, return_inverse=True)
        local = local.reshape(-1, 3)
        pv, puv = v[ids] * F, uv[ids]
        if tr is not None:
            puv = (puv - np.array(tr[0], np.float32)) / np.array(tr[1], np.float32)
        attrs = {}
        if quantized:
            attrs["POSITION"] = b.accessor(np.round(pv / pos_scale * 32767), I16, normalized=True)
            attrs["TEXCOORD_0"] = b.accessor(np.round(np.clip(puv, 0, 1) * 65535), U16, normalized=True) \
                if tr is None else b.accessor(puv)
        else:
            attrs["POSITION"] = b.accessor(pv)
            attrs["TEXCOORD_0"] = b.accessor(puv)
        targets = []
        for d in tdeltas:
            pd = d[ids] * F
            if quantized:
                targets.append({"POSITION": b.accessor(np.round(pd / pos_scale * 32767), I16, normalized=True,
                                                       sparse=sparse)})
            else:
                targets.append({"POSITION": b.accessor(pd, sparse=sparse)})
        if skinned:
            attrs["JOINTS_0"] = b.accessor(np.tile([[2, 0, 0, 0]], (len(ids), 1)), U8)
            attrs["WEIGHTS_0"] = b.accessor(np.tile([[1.0, 0, 0, 0]], (len(ids), 1)))
        prims.append({"attributes": attrs, "indices": b.accessor(local.reshape(-1).astype(np.uint16), U16,
                                                                 index=True),
                      "material": mat, "targets": targets})
    if multi_material:   # a transparent lash card in front of the eyes: left out by the reader
        card = np.array([[-0.7, 0.45, 0.7], [0.7, 0.45, 0.7], [0.7, 0.55, 0.7], [-0.7, 0.55, 0.7]],
                        np.float32) * F
        rgba = np.zeros((8, 8, 4), np.uint8)
        rgba[3, :, 3] = 255                        # one opaque stroke on a see-through card
        lash = b.material((0, 0, 0, 1), b.texture(rgba), alpha_mode="MASK", name="lashes")
        cprim = {"attributes": {"POSITION": b.accessor(card / pos_scale if quantized else card),
                                "TEXCOORD_0": b.accessor(np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32))},
                 "indices": b.accessor(np.array([0, 1, 2, 0, 2, 3], np.uint16), U16, index=True),
                 "material": lash, "targets": [{"POSITION": b.accessor(np.zeros((4, 3), np.float32))}
                                               for _ in tdeltas]}
        if skinned:
            cprim["attributes"]["JOINTS_0"] = b.accessor(np.tile([[2, 0, 0, 0]], (4, 1)), U8)
            cprim["attributes"]["WEIGHTS_0"] = b.accessor(np.tile([[1.0, 0, 0, 0]], (4, 1)))
        prims.append(cprim)
    mesh = b.mesh(prims, tnames)
    roots = []
    mesh_node_kw = {"mesh": mesh, "name": "Face"}
    if quantized:
        mesh_node_kw["scale"] = [pos_scale] * 3
        b.used.add("KHR_mesh_quantization")
        b.required.add("KHR_mesh_quantization")
    head = None
    if skinned:
        # joints: Hips at y=-6, Neck at y=-1.6, Head at y=-1.4 (world); bind = inverse of world
        hips = b.node(name="Hips", translation=[0, -6, 0])
        neck = b.node(name="Neck", translation=[0, 4.4, 0])
        head = b.node(name="Head", translation=[0, 0.2, 0])
        b.doc["nodes"][hips]["children"] = [neck]
        b.doc["nodes"][neck]["children"] = [head]
        worlds = [np.eye(4), np.eye(4), np.eye(4)]
        for i, y in enumerate((-6, -1.6, -1.4)):
            worlds[i][1, 3] = y
        ibm = np.stack([np.linalg.inv(w) for w in worlds])
        skin = b.skin([hips, neck, head], ibm)
        mesh_node_kw.update(skin=skin, translation=[100, 100, 100])   # ignored for a skinned mesh
        roots.append(hips)
    roots.append(b.node(**mesh_node_kw))
    if body:
        bv = np.array([[x, y, z] for y in (-9, -1.3) for z in (-0.6, 0.3) for x in (-1.6, 1.6)], np.float32) * F
        bt = np.array([[0, 1, 5], [0, 5, 4], [2, 6, 7], [2, 7, 3], [1, 3, 7], [1, 7, 5], [0, 4, 6], [0, 6, 2],
                       [2, 3, 1], [2, 1, 0], [4, 5, 7], [4, 7, 6]], np.uint16)
        # front face of the box is z=0.3 (indices 2,3,6,7)
        bm = b.material((0.3, 0.45, 0.7, 1), name="shirt")
        bprim = {"attributes": {"POSITION": b.accessor(bv)}, "indices": b.accessor(bt.reshape(-1), U16, index=True),
                 "material": bm}
        roots.append(b.node(mesh=b.mesh([bprim]), name="Body"))
    ext = None
    if vrm == "0":
        presets = {"Fcl_MTH_A": "a", "Fcl_ALL_Joy": "joy", "Fcl_EYE_Close_L": "blink_l", "Fcl_EYE_Close_R": "blink_r",
                   "Fcl_ALL_Angry": "angry"}
        groups = [{"name": n.split("_")[-1], "presetName": p, "binds": [{"mesh": mesh, "index": i, "weight": 100}]}
                  for i, (n, p) in enumerate(presets.items())]
        ext = {"VRM": {"specVersion": "0.0", "blendShapeMaster": {"blendShapeGroups": groups},
                       "humanoid": {"humanBones": [{"bone": "head", "node": head}] if head is not None else []},
                       "firstPerson": {"lookAtTypeName": "BlendShape"}}}
    elif vrm == "1":
        presets = {"Fcl_MTH_A": "aa", "Fcl_ALL_Joy": "happy", "Fcl_EYE_Close_L": "blinkLeft",
                   "Fcl_EYE_Close_R": "blinkRight", "Fcl_ALL_Angry": "angry"}
        face_node = roots[-1] if not body else roots[-2]
        pre = {p: {"morphTargetBinds": [{"node": face_node, "index": i, "weight": 1.0}]}
               for i, p in enumerate(presets.values())}
        ext = {"VRMC_vrm": {"specVersion": "1.0", "expressions": {"preset": pre},
                            "humanoid": {"humanBones": {"head": {"node": head}} if head is not None else {}},
                            "lookAt": {"type": "expression", "offsetFromHeadBone": [0, 0.06, 0]}}}
    return b.write(path, roots, extensions=ext, required=extra_required)


# --- EXT_meshopt_compression filters, encoded as the extension's specification describes --------
def _snorm(v, bits: int) -> np.ndarray:
    """meshopt_quantizeSnorm: round(v * (2^(bits-1) - 1)), v clamped to [-1, 1]."""
    scale = (1 << (bits - 1)) - 1
    v = np.clip(np.asarray(v, np.float64), -1.0, 1.0) * scale
    return (v + np.where(v >= 0, 0.5, -0.5)).astype(np.int64)


def encode_filter_oct(normals: np.ndarray, bits: int) -> np.ndarray:
    """Unit vectors [N,3] -> the OCTAHEDRAL filter's [N,4] int8 (bits <= 8) or int16 (bits <= 16):
    octahedral (u, v), then 1.0 at the same bit count (the decoder's scale), then 0."""
    n = np.asarray(normals, np.float64)
    ln = np.abs(n).sum(axis=1, keepdims=True)
    p = n / np.where(ln == 0, 1, ln)
    sx, sy = np.where(p[:, 0] >= 0, 1.0, -1.0), np.where(p[:, 1] >= 0, 1.0, -1.0)
    u = np.where(p[:, 2] >= 0, p[:, 0], (1 - np.abs(p[:, 1])) * sx)
    v = np.where(p[:, 2] >= 0, p[:, 1], (1 - np.abs(p[:, 0])) * sy)
    out = np.stack([_snorm(u, bits), _snorm(v, bits), np.full(len(n), _snorm(1.0, bits)), np.zeros(len(n), np.int64)], 1)
    return out.astype(np.int8 if bits <= 8 else np.int16)


def encode_filter_quat(quats: np.ndarray, bits: int = 16) -> np.ndarray:
    """Unit quaternions [N,4] (x, y, z, w) -> the QUATERNION filter's [N,4] int16: the three smaller
    components (cyclically after the largest, times sqrt 2, sign of the largest dropped), then the
    decoder's scale with the largest component's index in its two low bits."""
    q = np.asarray(quats, np.float64)
    qc = np.abs(q).argmax(axis=1)
    sign = np.where(q[np.arange(len(q)), qc] < 0, -1.0, 1.0)
    rows = np.arange(len(q))
    comp = [_snorm(q[rows, (qc + k) & 3] * np.sqrt(2.0) * sign, bits) for k in (1, 2, 3)]
    last = (_snorm(1.0, bits) & ~3) | qc
    return np.stack(comp + [last], axis=1).astype(np.int16)


# --- a VRM with eyes: eye-bone lookAt or look expressions ---------------------------------------
EYE_R, EYE_Z = 0.13, 0.40      # the eyeballs' radius and their centres' depth (the face surface is at ~0.47)


def uv_sphere(rings: int, segments: int):
    """A unit-radius UV sphere about the origin (poles on +-y), wound counter-clockwise seen from outside:
    (vertices [N,3] float32, triangles [M,3] int64)."""
    th = np.linspace(0, np.pi, rings + 1)
    ph = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    v = np.array([[np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)] for t in th for p in ph], np.float32)
    tris = []
    for r in range(rings):
        for s in range(segments):
            a, b = r * segments + s, r * segments + (s + 1) % segments
            c, d = a + segments, b + segments
            tris += [[a, c, d], [a, d, b]]
    return v, np.array(tris, np.int64)


def _eyeball(rings: int = 10, segments: int = 16):
    """A unit-radius UV sphere about its centre (poles on +-y), CCW from outside: (vertices, sclera
    triangles, pupil triangles) - the pupil is the cap facing +z."""
    v, tris = uv_sphere(rings, segments)
    front = v[tris].mean(axis=1)[:, 2] > 0.8
    return v, tris[~front], tris[front]


def eyed_vrm(path, *, version: str, look: str) -> Path:
    """The test face as a VRM ``version`` '0' or '1' with a Head node and two eyeballs (white, with a
    black pupil facing forward), each a mesh under its humanoid ``leftEye`` / ``rightEye`` bone.
    ``look``: 'bone' (lookAt turns the eye bones) or 'expression' (lookAt uses the look presets).
    Either way the VRM has lookLeft/Right/Up/Down presets moving the pupils (+-0.05 across the eye),
    as exporters write them; with lookAt 'bone' the reader must leave them out."""
    F = np.array([-1, 1, -1], np.float32) if version == "0" else np.ones(3, np.float32)   # 0.x faces -z
    b = GlbBuilder()
    v, tris, uv = face_grid()
    deltas = face_deltas(v)
    face_shapes = {"Fcl_MTH_A": deltas["jawOpen"], "Fcl_ALL_Joy": deltas["mouthSmileLeft"] + deltas["mouthSmileRight"]}
    t = b.texture(face_texture(eyes=False))
    face_prim = {"attributes": {"POSITION": b.accessor(v * F), "TEXCOORD_0": b.accessor(uv)},
                 "indices": b.accessor(tris.reshape(-1).astype(np.uint16), U16, index=True),
                 "material": b.material((1, 1, 1, 1), t, name="face"),
                 "targets": [{"POSITION": b.accessor(d * F)} for d in face_shapes.values()]}
    face_mesh = b.mesh([face_prim], list(face_shapes))
    ev, sclera, pupil = _eyeball()
    white, black = b.material((0.95, 0.95, 0.95, 1), name="sclera"), b.material((0.05, 0.05, 0.08, 1), name="pupil")
    looks = {"lookLeft": (0.05, 0, 0), "lookRight": (-0.05, 0, 0), "lookUp": (0, 0.05, 0), "lookDown": (0, -0.05, 0)}
    in_pupil = np.zeros(len(ev), bool)
    in_pupil[np.unique(pupil)] = True
    eye_meshes = []
    for _ in range(2):
        pos = b.accessor(ev * EYE_R * F)
        targets = [{"POSITION": b.accessor((in_pupil[:, None] * np.array(d, np.float32)) * F)} for d in looks.values()]
        prims = [{"attributes": {"POSITION": pos}, "indices": b.accessor(part.reshape(-1).astype(np.uint16), U16,
                                                                          index=True),
                  "material": m, "targets": targets} for part, m in ((sclera, white), (pupil, black))]
        eye_meshes.append(b.mesh(prims, [f"Pupil{i + 1}" for i in range(len(looks))]))
    head = b.node(name="Head", translation=[0.0, 0.0, 0.0])
    face = b.node(mesh=face_mesh, name="Face")
    eyes = []
    for (ex, ey), m in zip(EYES, eye_meshes):     # EYES: (subject's left, subject's right)
        eyes.append(b.node(name="Eye", translation=(np.array([ex, ey, EYE_Z], np.float32) * F).tolist(), mesh=m))
    b.doc["nodes"][head]["children"] = [face] + eyes
    if version == "0":
        groups = [{"name": "A", "presetName": "a", "binds": [{"mesh": face_mesh, "index": 0, "weight": 100}]},
                  {"name": "Joy", "presetName": "joy", "binds": [{"mesh": face_mesh, "index": 1, "weight": 100}]}]
        groups += [{"name": k, "presetName": k.lower(), "binds": [{"mesh": m, "index": i, "weight": 100}
                                                                  for m in eye_meshes]}
                   for i, k in enumerate(looks)]
        ext = {"VRM": {"specVersion": "0.0", "blendShapeMaster": {"blendShapeGroups": groups},
                       "humanoid": {"humanBones": [{"bone": "head", "node": head}, {"bone": "leftEye", "node": eyes[0]},
                                                   {"bone": "rightEye", "node": eyes[1]}]},
                       "firstPerson": {"lookAtTypeName": "Bone" if look == "bone" else "BlendShape"}}}
    else:
        pre = {"aa": {"morphTargetBinds": [{"node": face, "index": 0, "weight": 1.0}]},
               "happy": {"morphTargetBinds": [{"node": face, "index": 1, "weight": 1.0}]}}
        pre.update({k: {"morphTargetBinds": [{"node": e, "index": i, "weight": 1.0} for e in eyes]}
                    for i, k in enumerate(looks)})
        ext = {"VRMC_vrm": {"specVersion": "1.0", "expressions": {"preset": pre},
                            "humanoid": {"humanBones": {"head": {"node": head}, "leftEye": {"node": eyes[0]},
                                                        "rightEye": {"node": eyes[1]}}},
                            "lookAt": {"type": look, "offsetFromHeadBone": [0, 0.06, 0]}}}
    return b.write(path, [head], extensions=ext)
