"""The whole default head around MediaPipe's face: skull with a short haircut, ears and a neck.

:func:`build_whole_head` takes the face-and-mouth head of :func:`avatar.mesh.build_head` (the mask,
on which the 51 shapes are authored) and appends, after its vertices, so that every existing index
keeps its meaning:

* the **scalp**: rings of columns grown from the face mesh's outer boundary loop (the boundary
  vertices themselves are the first ring, shared with the face: no seam) over a skull ellipsoid to
  a pole at the back of the head; where the hairline says so, the rings stand out by the hair's
  thickness (a sculpted short haircut, painted as hair);
* two **ears** (a dished sheet with a rolled rim and a concha bowl, its front edge sunk into the
  skull);
* a **neck**: an elliptic tube rising into the head from below, flaring toward the shoulders.

Deformation: the scalp's first rings follow the face boundary's displacement with a smooth falloff
(:func:`follow_deltas`), so no crack opens at any expression and the new triangles never turn over;
ears and neck are static.

UV atlas (``ATLAS_SIZE``): the face chart of the mask's atlas sits at the centre of a square "head
chart" (the same texel scale), and the scalp's UVs extend the face chart radially outward across
its boundary (continuous, so the boundary vertices need one UV only); the mask atlas's eye, mouth,
teeth and tongue swatches sit to the right; ear and neck charts below them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from . import mesh as M
from .mesh import Head

__all__ = ["WholeHead", "build_whole_head", "follow_deltas", "boundary_loop", "mask_uv_to_atlas", "face_px",
           "hair_cover", "face_only", "tongue_out", "ATLAS_SIZE", "MASK_ATLAS_SIZE", "EAR_CHART", "NECK_CHART",
           "HEAD_CHART"]

MASK_ATLAS_SIZE = (512, 1024)        # H, W of avatar.texture's atlas for the mask (face left, swatches right)
ATLAS_SIZE = (1024, 1536)            # H, W of the whole head's atlas
FACE_CHART_OFFSET = (256, 256)       # (x, y) pixel offset of the mask's face chart inside the head chart
SWATCH_OFFSET = (512, 0)             # (x, y) pixel offset of the mask's swatches (eye, mouth, teeth, tongue)
HEAD_CHART = (0, 0, 1024, 1024)      # x0, y0, x1, y1 in atlas pixels: the face and the scalp
EAR_CHART = (1024, 512, 1280, 768)   # both ears share it (mirrored)
NECK_CHART = (1280, 512, 1536, 1024)

# skull: an ellipsoid about SKULL_CENTER with semi-axes (x, y up, z back); the scalp's columns run
# from the face boundary to the back pole along great circles about the centre
SKULL_CENTER = np.array([0.0, 2.0, -4.2])
SKULL_RADII = np.array([8.1, 10.4, 10.2])
SKULL_POWER = 2.4                    # a superellipsoid: a fuller crown than an ellipsoid
SCALP_RINGS = 14                     # rings after the boundary; the last is the back pole
SCALP_BLEND_RINGS = 4.0              # over these rings the radius goes from the boundary's to the skull's
SCALP_UV_GROW = 0.98                 # the pole ring's UV radius is (1 + this) x the boundary's, from the chart centre
FOLLOW_RINGS = 4.0                   # the scalp follows the boundary's displacement, fading over these rings
# hair: thickness (cm) over the skull where the elevation (degrees above the skull centre's horizon)
# is above the hairline, the hairline depending on the azimuth (0 = front, 180 = back)
HAIR_TOP = 1.3
HAIR_SIDE = 0.55
HAIRLINE_AZ = (0.0, 35.0, 62.0, 80.0, 100.0, 135.0, 180.0)
HAIRLINE_EL = (44.0, 42.0, 30.0, 12.0, 10.0, -22.0, -42.0)
HAIRLINE_SOFT = 7.0                  # degrees over which the hair thins to nothing at the hairline
# ears: centre on the skull's side, size (cm), how far the rim stands out, tilt back (degrees)
EAR_CENTER = np.array([7.95, 1.3, -5.4])
EAR_HEIGHT, EAR_WIDTH = 6.4, 3.6
EAR_OUT = 1.9
EAR_TILT = 12.0
EAR_RINGS, EAR_SEGMENTS = 7, 28
# neck: an elliptic tube, centre line from (top) to (bottom), radii (x, z); flares toward the shoulders
NECK_TOP = np.array([0.0, -3.0, -4.2])
NECK_BOTTOM = np.array([0.0, -24.0, -6.8])
NECK_RADII = (5.3, 5.6)
NECK_FLARE = (3.2, 1.2)              # extra radii (x, z) at the bottom
NECK_RINGS, NECK_SEGMENTS = 10, 28
# tongueOut: the mouth opens by this share of jawOpen and the tongue's tip comes forward, up between
# the teeth and out over the lower lip (its root stays)
TONGUE_OUT_JAW = 0.35
TONGUE_OUT_REACH = 3.2               # cm forward at the tip
TONGUE_OUT_LIFT = 1.0                # cm up where the tongue passes the lower teeth
TONGUE_OUT_DROOP = 1.6               # cm the tip then curls down over the lower lip (its top faces the camera)
TONGUE_OUT_NARROW = 0.15             # the tip narrows by this share


@dataclass(frozen=True)
class WholeHead:
    """The whole head (a :class:`mesh.Head` with parts scalp, ear_left, ear_right, neck added) and how the
    scalp follows the face: ``follow_src[j]`` is the boundary vertex whose displacement scalp vertex
    ``follow_dst[j]`` takes, times ``follow_w[j]``."""
    head: Head
    follow_dst: np.ndarray
    follow_src: np.ndarray
    follow_w: np.ndarray
    hair: np.ndarray            # [V] 0..1 hair cover per vertex
    skull_dir: np.ndarray       # [V,3] direction from SKULL_CENTER (face and scalp; the texture's hairline)
    boundary: np.ndarray        # the face mesh's outer boundary loop (vertex indices, forehead first)


def boundary_loop(triangles: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """The outer boundary loop of a triangle mesh (edges used once): the loop through its highest boundary
    vertex (inner loops, the eye and mouth openings, are left out), ordered along the triangles' winding
    and starting there. Raises ValueError if the boundary does not close into a loop."""
    nxt: Dict[int, int] = {}
    edges = {}
    for t in triangles:
        for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])):
            edges[(int(a), int(b))] = edges.get((int(a), int(b)), 0) + 1
    for (a, b) in edges:
        if (b, a) not in edges:
            nxt[a] = b          # along the winding of the triangle that owns the edge
    if not nxt:
        raise ValueError("mesh has no boundary")
    start = max(nxt, key=lambda i: vertices[i, 1])
    loop, cur = [start], nxt[start]
    while cur != start:
        loop.append(cur)
        cur = nxt.get(cur, -1)
        if len(loop) > len(nxt) or cur not in nxt:
            raise ValueError("the mesh's boundary does not close into a loop")
    return np.asarray(loop, np.int64)


def face_px(uv: np.ndarray) -> np.ndarray:
    """Canonical face uv (0..1, may extend beyond) -> whole-atlas pixel coordinates (x, y)."""
    H, W = MASK_ATLAS_SIZE
    return np.stack([FACE_CHART_OFFSET[0] + uv[:, 0] * 0.5 * (W - 1), FACE_CHART_OFFSET[1] + uv[:, 1] * (H - 1)], 1)


def _px_to_uv(px: np.ndarray) -> np.ndarray:
    H, W = ATLAS_SIZE
    return np.stack([px[:, 0] / (W - 1), px[:, 1] / (H - 1)], 1).astype(np.float32)


def mask_uv_to_atlas(uv: np.ndarray) -> np.ndarray:
    """UVs in the mask's atlas (``MASK_ATLAS_SIZE``) -> the same texels in the whole head's atlas."""
    H, W = MASK_ATLAS_SIZE
    px = np.stack([uv[:, 0] * (W - 1), uv[:, 1] * (H - 1)], 1).astype(np.float64)
    face = px[:, 0] < W // 2
    px[face] += FACE_CHART_OFFSET
    px[~face] += SWATCH_OFFSET
    return _px_to_uv(px)


def _skull_radius(d: np.ndarray) -> np.ndarray:
    return 1.0 / (np.abs(d / SKULL_RADII) ** SKULL_POWER).sum(-1) ** (1.0 / SKULL_POWER)


def _slerp_to_back(d0: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Directions along the great circle from unit d0 [N,3] to the back pole (0,0,-1), t in 0..1 -> [K,N,3]."""
    back = np.array([0.0, 0.0, -1.0])
    om = np.arccos(np.clip(d0 @ back, -1, 1))[None, :, None]
    tt = t[:, None, None]
    s = np.sin(om)
    return (np.sin((1 - tt) * om) * d0[None] + np.sin(tt * om) * back) / s


def hair_cover(d: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(cover 0..1, thickness cm) of hair on skull directions d [...,3]."""
    el = np.degrees(np.arcsin(np.clip(d[..., 1], -1, 1)))
    az = np.degrees(np.abs(np.arctan2(d[..., 0], d[..., 2])))
    line = np.interp(az, HAIRLINE_AZ, HAIRLINE_EL)
    x = np.clip((el - line) / HAIRLINE_SOFT + 0.5, 0, 1)
    cover = x * x * (3 - 2 * x)
    top = np.clip(d[..., 1], 0, 1)
    return cover, cover * (HAIR_SIDE + (HAIR_TOP - HAIR_SIDE) * top)


def _grid_tris(rows: int, cols: int, base: int, wrap: bool) -> list:
    tris = []
    span = cols if wrap else cols - 1
    for r in range(rows - 1):
        for c in range(span):
            a, b = base + r * cols + c, base + r * cols + (c + 1) % cols
            d, e = a + cols, b + cols
            tris += [(a, d, b), (b, d, e)]
    return tris


def _scalp(V: np.ndarray, uvs: np.ndarray, loop: np.ndarray, n0: int):
    """Scalp vertices/uvs/triangles (indices from n0; ring 0 = the boundary itself) + follow + hair."""
    B = V[loop].astype(np.float64)
    N = len(loop)
    rel = B - SKULL_CENTER
    r0 = np.linalg.norm(rel, axis=1)
    d0 = rel / r0[:, None]
    t = np.arange(1, SCALP_RINGS + 1) / SCALP_RINGS
    dirs = _slerp_to_back(d0, t)                                  # [K,N,3]
    k = np.arange(1, SCALP_RINGS + 1)[:, None]
    s = np.clip(k / SCALP_BLEND_RINGS, 0, 1)
    s = s * s * (3 - 2 * s)
    radius = (1 - s) * r0[None] + s * _skull_radius(dirs)
    cover, thick = hair_cover(dirs)
    ramp = np.clip(k / 1.5, 0, 1)                                 # no hair on the boundary ring itself
    radius = radius + thick * ramp
    pts = SKULL_CENTER + dirs * radius[..., None]                 # [K,N,3]
    pts[-1] = SKULL_CENTER + np.array([0, 0, -1.0]) * (SKULL_RADII[2] + HAIR_SIDE)   # the pole (one point)
    # uvs: the face chart continued radially from its centre
    fuv = np.stack([uvs[loop, 0] * 2.0, uvs[loop, 1]], 1).astype(np.float64)   # back to canonical face uv
    c = np.array([0.5, 0.5])
    grow = 1 + SCALP_UV_GROW * t[:, None, None]
    ring_uv = c + (fuv[None] - c) * grow                          # [K,N,2]
    verts = pts.reshape(-1, 3)
    uv_new = _px_to_uv(face_px(ring_uv.reshape(-1, 2)))
    tris = []
    ring = lambda r, i: int(loop[i % N]) if r == 0 else n0 + (r - 1) * N + (i % N)   # noqa: E731
    for r in range(SCALP_RINGS):
        for i in range(N):
            a, b, d, e = ring(r, i), ring(r, i + 1), ring(r + 1, i), ring(r + 1, i + 1)
            if r == SCALP_RINGS - 1:
                tris.append((a, d, b))            # fan into the pole column's own copy
            else:
                tris += [(a, d, b), (b, d, e)]
    fk = np.clip(1 - k / FOLLOW_RINGS, 0, 1)
    fk = fk * fk * (3 - 2 * fk)
    follow_w = np.broadcast_to(fk, (SCALP_RINGS, N)).reshape(-1)
    follow_src = np.broadcast_to(loop[None], (SCALP_RINGS, N)).reshape(-1)
    follow_dst = n0 + np.arange(SCALP_RINGS * N)
    keep = follow_w > 0
    hair = (cover * (k > 0)).reshape(-1)
    return (verts.astype(np.float32), uv_new, np.asarray(tris, np.int32), follow_dst[keep], follow_src[keep],
            follow_w[keep], hair)


def _ear(side: float, n0: int):
    """One ear (side +1 = subject's left, +x): a dished sheet, polar grid about the concha."""
    rho = np.linspace(0, 1, EAR_RINGS + 1)[1:]
    th = np.linspace(0, 2 * np.pi, EAR_SEGMENTS, endpoint=False)
    R, T = np.meshgrid(rho, th, indexing="ij")                    # [rings, segs]
    # outline: taller than wide, wider at the top (helix) than at the lobe; th = 0 points back
    up = np.sin(T)
    width = EAR_WIDTH * 0.5 * (1 + 0.18 * up)
    a = R * width * np.cos(T)                                     # back (+) / front (-) in the ear plane
    b = R * EAR_HEIGHT * 0.5 * np.sin(T) * (1 - 0.08 * (up < 0))  # up
    # out of the head: the rim stands out most at the back-top, the front edge sits on the skull
    flare = np.clip(0.55 + 0.45 * np.cos(T - 0.6), 0, 1)
    bowl = -0.35 * np.exp(-((R - 0.15) / 0.3) ** 2)               # the concha
    ridge = 0.18 * np.exp(-((R - 0.62) / 0.12) ** 2)              # the antihelix
    rim = 0.35 * np.clip((R - 0.82) / 0.18, 0, 1) ** 1.5          # the helix
    h = EAR_OUT * flare * R ** 1.3 + bowl + ridge - 0.1 - 0.5 * rim   # its edge rolls back in toward the head
    tilt = np.radians(EAR_TILT)
    # ear frame: out = +x*side, back = -z, up = +y, tilted back about x
    back_v = np.array([0, -np.sin(tilt), -np.cos(tilt)])
    up_v = np.array([0, np.cos(tilt), -np.sin(tilt)])
    out_v = np.array([side, 0, 0.0])
    c = EAR_CENTER * np.array([side, 1, 1])
    P = c + a[..., None] * back_v + b[..., None] * up_v + h[..., None] * out_v
    verts = np.concatenate([[c + (bowl.max() - 0.55) * out_v], P.reshape(-1, 3)])
    x0, y0, x1, y1 = EAR_CHART
    cx, cy, rr = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 - 4
    pu = np.concatenate([[cx], (cx + rr * R * np.cos(T)).reshape(-1)])
    pv = np.concatenate([[cy], (cy - rr * R * np.sin(T)).reshape(-1)])
    uv = _px_to_uv(np.stack([pu, pv], 1))
    tris = [(0, 1 + (j + 1) % EAR_SEGMENTS, 1 + j) for j in range(EAR_SEGMENTS)]
    tris += [(a_ + 1, b_ + 1, c_ + 1) for a_, b_, c_ in _grid_tris(EAR_RINGS, EAR_SEGMENTS, 0, True)]
    tris = np.asarray(tris, np.int32)
    if side < 0:
        tris = tris[:, ::-1]
    # orient so the outward side faces out of the head (+x*side)
    return verts.astype(np.float32), uv, tris + n0


def _neck(n0: int):
    t = np.linspace(0, 1, NECK_RINGS)
    th = np.linspace(0, 2 * np.pi, NECK_SEGMENTS, endpoint=False)
    cen = NECK_TOP[None] + (NECK_BOTTOM - NECK_TOP)[None] * t[:, None]
    fl = np.clip((t - 0.55) / 0.45, 0, 1) ** 2
    rx = NECK_RADII[0] + NECK_FLARE[0] * fl
    rz = NECK_RADII[1] + NECK_FLARE[1] * fl
    P = np.stack([cen[:, None, 0] + rx[:, None] * np.sin(th)[None],
                  np.broadcast_to(cen[:, None, 1], (NECK_RINGS, NECK_SEGMENTS)),
                  cen[:, None, 2] + rz[:, None] * np.cos(th)[None]], -1)
    x0, y0, x1, y1 = NECK_CHART
    # uv: columns across the chart (the seam at the back, th = pi), rows down it
    col = ((th / (2 * np.pi) + 0.5) % 1.0)
    pu = x0 + 4 + (x1 - x0 - 8) * np.broadcast_to(col[None], P.shape[:2])
    pv = y0 + 4 + (y1 - y0 - 8) * np.broadcast_to(t[:, None], P.shape[:2])
    uv = _px_to_uv(np.stack([pu.reshape(-1), pv.reshape(-1)], 1))
    tris = np.asarray(_grid_tris(NECK_RINGS, NECK_SEGMENTS, 0, True), np.int32)
    return P.reshape(-1, 3).astype(np.float32), uv, tris + n0


def build_whole_head(mask: Head) -> WholeHead:
    """The whole head around ``mask`` (from :func:`avatar.mesh.build_head`, rest lids already set): the
    mask's vertices and triangles first, unchanged, then scalp, ears and neck; UVs moved into the whole
    atlas (``ATLAS_SIZE``)."""
    V = mask.vertices
    face_tris = mask.triangles[(mask.triangles < mask.n_face).all(1)]
    loop = boundary_loop(face_tris, V)
    uvs = [mask_uv_to_atlas(mask.uvs)]
    verts, tris = [V], [mask.triangles]
    parts = dict(mask.parts)
    n = len(V)
    sv, suv, st, fd, fs, fw, hair_s = _scalp(V, mask.uvs, loop, n)
    verts.append(sv); uvs.append(suv); tris.append(st)
    parts["scalp"] = np.arange(n, n + len(sv))
    n += len(sv)
    for name, side in (("ear_left", 1.0), ("ear_right", -1.0)):
        ev, euv, et = _ear(side, n)
        verts.append(ev); uvs.append(euv); tris.append(et)
        parts[name] = np.arange(n, n + len(ev))
        n += len(ev)
    nv, nuv, nt = _neck(n)
    verts.append(nv); uvs.append(nuv); tris.append(nt)
    parts["neck"] = np.arange(n, n + len(nv))
    n += len(nv)
    hair = np.zeros(n, np.float32)
    hair[parts["scalp"]] = hair_s
    allv = np.concatenate(verts).astype(np.float64) - SKULL_CENTER
    skull_dir = (allv / np.linalg.norm(allv, axis=1, keepdims=True)).astype(np.float32)
    head = Head(vertices=np.concatenate(verts).astype(np.float32), uvs=np.clip(np.concatenate(uvs), 0, 1),
                triangles=np.concatenate(tris).astype(np.int32), n_face=mask.n_face, parts=parts,
                eye_centers=mask.eye_centers)
    return WholeHead(head=head, follow_dst=fd, follow_src=fs, follow_w=fw.astype(np.float32), hair=hair,
                     skull_dir=skull_dir, boundary=loop)


def follow_deltas(whole: WholeHead, deltas: np.ndarray) -> np.ndarray:
    """Displacements on the mask ([..., V_mask, 3]) -> on the whole head ([..., V, 3]): the mask's own,
    the scalp's first rings following the face boundary (smooth falloff), ears and neck still."""
    V = whole.head.vertices.shape[0]
    out = np.zeros(deltas.shape[:-2] + (V, 3), np.float32)
    nm = deltas.shape[-2]
    out[..., :nm, :] = deltas
    out[..., whole.follow_dst, :] = deltas[..., whole.follow_src, :] * whole.follow_w[:, None]
    return out


def tongue_out(mask: Head, jaw_open: np.ndarray) -> np.ndarray:
    """The tongueOut target on the mask [V_mask,3] from jawOpen's final displacement (gain applied)."""
    d = TONGUE_OUT_JAW * jaw_open.astype(np.float64)
    idx = mask.parts["tongue"]
    local = np.arange(len(idx))
    tip = 1.0 - (local // M.TONGUE_COLS) / (M.TONGUE_ROWS - 1)      # 1 at the tip row, 0 at the root
    reach = tip ** 0.8
    x = mask.vertices[idx, 0].astype(np.float64)
    d[idx, 2] += TONGUE_OUT_REACH * reach
    d[idx, 1] += TONGUE_OUT_LIFT * reach - TONGUE_OUT_DROOP * tip ** 2.5   # up between the teeth, the tip down
    d[idx, 0] += -TONGUE_OUT_NARROW * x * reach
    return d.astype(np.float32)


def face_only(rig):
    """A copy of the default rig without the scalp, ear and neck triangles (all vertices kept): what a
    check that looks through the face renders (a hole shows the background, not the inside of the head).
    The whole head's own vertices come after the mask's (:func:`avatar.mesh.build_head`)."""
    import dataclasses
    n_mask = M.build_head().vertices.shape[0]
    keep = (rig.triangles < n_mask).all(1)
    sided = None if rig.single_sided is None else rig.single_sided[keep]
    return dataclasses.replace(rig, triangles=rig.triangles[keep], single_sided=sided)
