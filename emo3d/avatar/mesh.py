"""MediaPipe's canonical face mesh (468 vertices with UVs, 898 triangles), decoded from the
``geometry_pipeline_metadata_landmarks.binarypb`` inside ``face_landmarker.task``.

The file is a ``GeometryPipelineMetadata`` protobuf: field 1 ``canonical_mesh`` (a ``Mesh3d``: field
3 packed float ``vertex_buffer`` of x,y,z,u,v per vertex, field 4 packed uint32 ``index_buffer``).
A tiny hand-written wire-format reader decodes it; no generated code.
"""
from __future__ import annotations

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


# --- the default head: canonical face + eyeballs + mouth interior -------------------------------
# MediaPipe landmark indices (FaceMesh topology). Right = the subject's right (-x).
EYE_RIGHT_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
EYE_RIGHT_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
EYE_LEFT_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
EYE_LEFT_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
# lips, right corner -> left corner: four rings from the outside in
LIP_UPPER_RINGS = ((61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291),
                   (76, 184, 74, 73, 72, 11, 302, 303, 304, 408, 306),
                   (62, 183, 42, 41, 38, 12, 268, 271, 272, 407, 292),
                   (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308))
LIP_LOWER_RINGS = ((61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291),
                   (76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306),
                   (62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292),
                   (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308))

# texture atlas: the face occupies the left half (u/2), extras the right half
ATLAS_EYE = (0.625, 0.25, 0.12)        # centre u, v, radius of the iris disc map
ATLAS_MOUTH = (0.875, 0.25)
ATLAS_TEETH = (0.625, 0.75)
ATLAS_TONGUE = (0.875, 0.75)
EYE_RADIUS = 1.6
EYE_INSET = 0.30                       # cm from the front of the lid loop back to the front of the eyeball
IRIS_ANGLE = 0.40                       # radians (angular radius of the iris on the eyeball)
PUPIL_ANGLE = 0.17
EYE_OPEN_UP = 0.30                     # cm the upper lids are raised at rest
EYE_OPEN_LOW = 0.08
SOCKET_SHRINK = 0.95                   # the eye socket's back ring, relative to the lid loop
SOCKET_DEPTH = -0.3                    # cm in front of the eyeball's centre (behind it: hidden at rest)
SOCKET_UV_SCALE = 1.7                  # the socket's texture: the lid loop's uv ring scaled out to skin
EYE_PITCH = 3.5                        # degrees the eyeballs look up at rest


@dataclass(frozen=True)
class Head:
    """The default avatar's geometry (rig space, centimetres) and part labels."""
    vertices: np.ndarray     # [V,3] float32
    uvs: np.ndarray          # [V,2] float32 in the atlas
    triangles: np.ndarray    # [F,3] int32
    n_face: int              # the first n_face vertices are MediaPipe's canonical mesh
    parts: Dict[str, np.ndarray]      # name -> vertex indices (eye_left, eye_right, teeth_upper, ...)
    eye_centers: Dict[str, np.ndarray]  # "left"/"right" -> [3]


def _inside(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon in 2-D."""
    x, y = pts[:, 0], pts[:, 1]
    inside = np.zeros(len(pts), bool)
    n = len(poly)
    for i in range(n):
        (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % n]
        cond = (y1 > y) != (y2 > y)
        xi = x1 + (y - y1) * (x2 - x1) / np.where(y2 - y1 == 0, 1e-12, y2 - y1)
        inside ^= cond & (x < xi)
    return inside


def _loop(upper, lower) -> list:
    return list(upper) + list(lower[-2:0:-1])


def _sphere(center, radius, n_lat=14, n_lon=20):
    """A lat-long sphere around the z axis (poles at +-z); uv = polar-disc map of the front pole."""
    verts, uvs, tris = [], [], []
    cu, cv, cr = ATLAS_EYE
    verts.append(center + [0, 0, radius]); uvs.append((cu, cv))
    for i in range(1, n_lat):
        th = np.pi * i / n_lat
        for j in range(n_lon):
            ph = 2 * np.pi * j / n_lon
            d = np.array([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)])
            verts.append(center + radius * d)
            rho = cr * th / np.pi * 2.0   # front hemisphere fills the disc radius cr
            uvs.append((cu + min(rho, cr * 1.9) * np.cos(ph) * 0.5, cv - min(rho, cr * 1.9) * np.sin(ph)))
    verts.append(center - [0, 0, radius]); uvs.append((cu + cr * 0.95, cv))
    last = len(verts) - 1
    ring = lambda i, j: 1 + (i - 1) * n_lon + (j % n_lon)  # noqa: E731
    for j in range(n_lon):
        tris.append((0, ring(1, j), ring(1, j + 1)))
        tris.append((last, ring(n_lat - 1, j + 1), ring(n_lat - 1, j)))
    for i in range(1, n_lat - 1):
        for j in range(n_lon):
            a, b, c, d = ring(i, j), ring(i, j + 1), ring(i + 1, j), ring(i + 1, j + 1)
            tris += [(a, c, b), (b, c, d)]
    return np.asarray(verts, np.float32), np.asarray(uvs, np.float32), np.asarray(tris, np.int32)


TEETH_PER_ARCH = 10        # teeth across an arch (and across the teeth swatch)
TOOTH_COLS = 4             # arch columns per tooth
TOOTH_UPPER_H = 0.95       # cm from the biting edge to the top of the gum (upper arch)
TOOTH_LOWER_H = 0.85
ARCH_DEPTH = 1.1           # cm the arch curves back from the middle to its ends
TOOTH_THICK = 0.55         # cm from the labial face to the lingual face at the biting edge
TOOTH_BUMP = 0.05          # cm a tooth's middle stands out of the arch (its gaps sink by as much)
GUM_REACH = {1: 0.8, -1: 0.5}   # cm the gum runs on past the gum top (upper, lower arch), back into the lip's fold:
#                                 a lip lifted over the teeth (mouthUpperUp) shows gum, not the dark mouth behind it
OVERBITE = 0.2             # cm the upper incisors come down over the lower ones (they show when the lips part)
TONGUE_ROWS, TONGUE_COLS = 7, 9


def _arch(half_w, z_front, y_edge, height, up, uv_centre=ATLAS_TEETH, uv_half=0.1):
    """One dental arch ``up`` = +1 (upper: the gum above the edge) or -1 (lower) -> (verts, uvs, tris).
    Rows: the gum's reach (``GUM_REACH``), gum top, gum line (higher over a tooth's middle), the biting
    edge, the lingual edge, the lingual gum; the swatch's v runs gum (0.3) -> edge (0.7) as the texture paints it."""
    n = TEETH_PER_ARCH * TOOTH_COLS + 1
    s = np.linspace(-1, 1, n)
    phase = (s + 1) / 2 * TEETH_PER_ARCH % 1.0          # 0 / 1 at a gap, 0.5 mid-tooth
    mid = np.sin(np.pi * phase)                           # 1 mid-tooth, 0 at a gap
    x = half_w * s
    z = z_front - ARCH_DEPTH * s ** 2
    # the arch's outward normal in xz (for the bumps and the thickness)
    nx, nz = 2 * ARCH_DEPTH * s / half_w, np.ones(n)
    ln = np.hypot(nx, nz)
    nx, nz = nx / ln, nz / ln
    bump = TOOTH_BUMP * (2 * mid - 1)
    back = 1 - 0.35 * s ** 2                                         # the side teeth are shorter
    rows_y = [y_edge + up * (height + GUM_REACH[int(up)]) * back,      # the gum's reach, up into the lip's fold
              y_edge + up * height * back,                           # gum top
              y_edge + up * height * back * (0.30 + 0.14 * mid),     # gum line: arched over each tooth
              y_edge + up * 0.04 * (1 - mid),                        # biting edge: the corners rounded
              y_edge + up * 0.04 * (1 - mid),                        # lingual edge
              y_edge + up * height * back * 0.8]                     # lingual gum
    rows_out = [-0.15, 0.05, bump, bump * 0.6, -TOOTH_THICK, -TOOTH_THICK - 0.1]
    rows_v = [0.3, 0.3, 0.36, 0.7, 0.7, 0.34]
    verts, uvs = [], []
    uu = uv_centre[0] + np.linspace(-uv_half, uv_half, n)
    for y, o, v in zip(rows_y, rows_out, rows_v):
        yy = np.broadcast_to(y, (n,))
        oo = np.broadcast_to(o, (n,))
        verts.append(np.stack([x + nx * oo, yy, z + nz * oo], 1))
        vv = np.broadcast_to(v, (n,))
        uvs.append(np.stack([uu, uv_centre[1] - uv_half + 2 * uv_half * (vv - 0.3) / 0.4], 1))
    tris = []
    for r in range(len(rows_y) - 1):
        for j in range(n - 1):
            a, b, c, d = r * n + j, r * n + j + 1, (r + 1) * n + j, (r + 1) * n + j + 1
            tris += [(a, c, b), (b, c, d)] if up > 0 else [(a, b, c), (b, d, c)]
    return np.concatenate(verts).astype(np.float32), np.concatenate(uvs).astype(np.float32), np.asarray(tris, np.int32)


def _tongue(half_w, z_tip, y_floor):
    """The tongue's upper surface: a blade, domed across and rounded at the tip (row 0 = tip)."""
    gx, gz = np.meshgrid(np.linspace(-1, 1, TONGUE_COLS), np.linspace(0, 1, TONGUE_ROWS))
    y = y_floor + 0.35 * (1 - gx ** 2) * (1 - 0.3 * gz)
    x = gx * half_w * (1 - 0.2 * gz) * (0.55 + 0.45 * np.sqrt(np.clip(gz * 3, 0, 1)))
    z = z_tip - 1.6 * gz - 0.45 * gx ** 2 * (1 - gz)
    tv = np.stack([x, y, z], -1).reshape(-1, 3)
    tuv = np.stack([ATLAS_TONGUE[0] + 0.1 * gx, ATLAS_TONGUE[1] + 0.1 * (gz * 2 - 1)], -1).reshape(-1, 2)
    tt = []
    for i in range(TONGUE_ROWS - 1):
        for j in range(TONGUE_COLS - 1):
            a, b = i * TONGUE_COLS + j, i * TONGUE_COLS + j + 1
            c, d = a + TONGUE_COLS, b + TONGUE_COLS
            tt += [(a, b, c), (b, d, c)]
    return tv.astype(np.float32), tuv.astype(np.float32), np.asarray(tt, np.int32)


def build_head(mesh: CanonicalMesh | None = None) -> Head:
    """Canonical face with eye and mouth openings, lips closed at rest, eyeballs, a dark mouth bag,
    upper/lower teeth and a tongue. Deterministic: the same bundle gives the same head."""
    m = mesh or canonical_mesh()
    V = m.vertices.astype(np.float64).copy()
    # close the lips at rest: the inner rings meet halfway (rings 3 half as much)
    for ring_i, frac in ((3, 1.0), (2, 0.5)):
        for u, l in zip(LIP_UPPER_RINGS[ring_i][1:-1], LIP_LOWER_RINGS[ring_i][1:-1]):
            mid_y = 0.5 * (V[u, 1] + V[l, 1])
            V[u, 1] += frac * (mid_y - V[u, 1])
            V[l, 1] += frac * (mid_y - V[l, 1])
    # open the eyes a little at rest (the canonical lids read as squinting / looking down)
    for up, lo, up2 in ((EYE_RIGHT_UPPER, EYE_RIGHT_LOWER, (247, 30, 29, 27, 28, 56, 190)),
                        (EYE_LEFT_UPPER, EYE_LEFT_LOWER, (467, 260, 259, 257, 258, 286, 414))):
        for k in range(1, len(up) - 1):
            bump = np.sin(np.pi * k / (len(up) - 1))
            V[up[k], 1] += EYE_OPEN_UP * bump
            V[lo[k], 1] -= EYE_OPEN_LOW * bump
        for k, i in enumerate(up2):
            V[i, 1] += 0.5 * EYE_OPEN_UP * np.sin(np.pi * (k + 1) / 8)
    tris = m.triangles
    # openings: drop triangles whose centroid lies inside the eye / inner-lip contours (in UV)
    holes = [_loop(EYE_RIGHT_UPPER, EYE_RIGHT_LOWER), _loop(EYE_LEFT_UPPER, EYE_LEFT_LOWER),
             _loop(LIP_UPPER_RINGS[3], LIP_LOWER_RINGS[3])]
    cen = m.uvs[tris].mean(axis=1)
    keep = np.ones(len(tris), bool)
    for loop in holes:
        on = np.isin(tris, loop).all(axis=1)
        keep &= ~(on & _inside(m.uvs[loop], cen))
    verts = [V.astype(np.float32)]
    uvs = [np.stack([m.uvs[:, 0] * 0.5, m.uvs[:, 1]], 1).astype(np.float32)]
    all_tris = [tris[keep]]
    parts: Dict[str, np.ndarray] = {}
    n = len(V)

    def add(name, v, uv, t):
        nonlocal n
        verts.append(v.astype(np.float32)); uvs.append(uv.astype(np.float32)); all_tris.append(t + n)
        parts[name] = np.arange(n, n + len(v))
        n += len(v)

    centers = {}
    for side, up, lo in (("right", EYE_RIGHT_UPPER, EYE_RIGHT_LOWER), ("left", EYE_LEFT_UPPER, EYE_LEFT_LOWER)):
        ring = V[list(up) + list(lo)]
        c = ring.mean(axis=0)
        c[2] = ring[:, 2].max() - EYE_INSET - EYE_RADIUS
        centers[side] = c.astype(np.float32)
        ev, euv, et = _sphere(c, EYE_RADIUS)
        th = np.radians(EYE_PITCH)      # rest gaze tilted up a little (+ = up)
        rot = np.array([[1, 0, 0], [0, np.cos(th), -np.sin(th)], [0, np.sin(th), np.cos(th)]])
        add("eye_" + side, (ev - c) @ rot + c, euv, et)

    # eye sockets: a cup behind each lid loop (a wall down to a ring behind the eyeball's centre and a
    # floor), so a lid raised past the eyeball (wide eyes under raised brows) shows the socket, never
    # the background; hidden behind the eyeball at rest, painted with the skin around the lids
    for side, up, lo in (("right", EYE_RIGHT_UPPER, EYE_RIGHT_LOWER), ("left", EYE_LEFT_UPPER, EYE_LEFT_LOWER)):
        loop = _loop(up, lo)
        front = V[loop]
        c = front.mean(axis=0)
        back = c + (front - c) * np.array([SOCKET_SHRINK, SOCKET_SHRINK, 0.0])
        back[:, 2] = centers[side][2] + SOCKET_DEPTH
        L = len(loop)
        sock_t = []
        for i in range(L):
            a_f, b_f = loop[i], loop[(i + 1) % L]
            a_b, b_b = n + i, n + (i + 1) % L
            sock_t += [(a_f, a_b, b_f), (b_f, a_b, b_b), (a_b, n + L, b_b)]   # wall, then the cup's floor
        floor = [c[0], c[1], centers[side][2] + SOCKET_DEPTH - 0.5]
        verts.append(np.concatenate([back, [floor]]).astype(np.float32))
        uv_c = m.uvs[loop].mean(axis=0)
        sock_uv = uv_c + (m.uvs[loop] - uv_c) * SOCKET_UV_SCALE
        sock_uv = np.concatenate([sock_uv, sock_uv[:1]])
        uvs.append(np.stack([sock_uv[:, 0] * 0.5, sock_uv[:, 1]], 1).astype(np.float32))
        all_tris.append(np.asarray(sock_t, np.int32))
        parts["socket_" + side] = np.arange(n, n + L + 1)
        n += L + 1

    # mouth bag: the inner lip loop joined to a shrunk copy pushed back, closed by a fan
    loop = _loop(LIP_UPPER_RINGS[3], LIP_LOWER_RINGS[3])
    front = V[loop]
    mc = front.mean(axis=0)
    back = mc + (front - mc) * np.array([0.75, 1.0, 1.0])
    back[:, 1] = mc[1] + (front[:, 1] - mc[1]) * 1.0
    back[:, 2] = front[:, 2] - 2.2
    # give the back ring some height so the cavity is visible when the jaw opens
    nup = len(LIP_UPPER_RINGS[3])
    back[:nup, 1] += 0.6
    back[nup:, 1] -= 0.6
    bag_v = np.concatenate([back, [mc + [0, 0, -2.6]]])
    bag_uv = np.tile(np.asarray(ATLAS_MOUTH, np.float32), (len(bag_v), 1))
    L = len(loop)
    bag_t = []
    for i in range(L):
        a_f, b_f = loop[i], loop[(i + 1) % L]
        a_b, b_b = n + i, n + (i + 1) % L
        bag_t += [(a_f, a_b, b_f), (b_f, a_b, b_b), (a_b, n + L, b_b)]
    verts.append(bag_v.astype(np.float32)); uvs.append(bag_uv); all_tris.append(np.asarray(bag_t, np.int32))
    parts["bag_upper"] = np.arange(n, n + nup)
    parts["bag_lower"] = np.arange(n + nup, n + L + 1)
    n += L + 1

    # teeth: an upper and a lower arch (a labial face with a scalloped gum line and one bump per tooth,
    # the biting edge, a lingual face); tongue: a rounded blade on the floor of the mouth
    half_w = 0.78 * abs(V[308, 0] - V[78, 0]) / 2
    zc = V[13, 2] - 0.6
    y0 = V[13, 1]
    add("teeth_upper", *_arch(half_w, zc, y0 - OVERBITE, TOOTH_UPPER_H, +1.0))
    add("teeth_lower", *_arch(half_w * 0.92, zc - TOOTH_THICK * 0.8, y0, TOOTH_LOWER_H, -1.0))
    add("tongue", *_tongue(0.8 * half_w, zc - 0.4, y0 - 0.75))

    return Head(vertices=np.concatenate(verts).astype(np.float32),
                uvs=np.clip(np.concatenate(uvs), 0, 1).astype(np.float32),
                triangles=np.concatenate(all_tris).astype(np.int32), n_face=len(V),
                parts=parts, eye_centers=centers)
