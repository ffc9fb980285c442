"""Pure-numpy reference of the native renderer (tests compare the C++ renderer against it).

Conventions (the C++ renderer follows them exactly):

* Framing from the NEUTRAL mesh bounds (``native.camera.framing``): centre ``c`` of the bounding
  box, camera on +z at distance ``D`` from ``c`` looking down -z, vertical field of view ``fov_deg``.
* Pose (yaw, pitch, roll, degrees) rotates the mesh about ``c`` by ``emo3d.pose.pose_matrix``
  (``R = Ry(yaw) Rx(pitch) Rz(roll)``; the signs are stated in ``emo3d.pose``).
* Camera-space point ``p = R (v - c)``; depth ``z = D - p.z``; screen ``sx = (p.x / (z t a) + 1) Ws / 2``,
  ``sy = (1 - p.y / (z t)) Hs / 2`` (``t = tan(fov/2)``, ``a = W/H``, ``Ws = W*ssaa``). Pixel centres
  at ``i + 0.5``; a sample is covered when it is inside all three edges (either winding: both sides
  are drawn), watertight: each edge's function ``dx (y - py) - dy (x - px)`` is evaluated from its
  endpoints in a canonical order (the lexicographically smaller (x, y) first) as a comparison of the
  two products, so the triangles sharing an edge take exactly opposite sides of it, and a sample ON an
  edge belongs to the triangle whose inward normal points to +x (for a horizontal edge: +y), the
  top-left rule. Triangles with a vertex at depth <= 1e-6 (behind the camera) are skipped, and so are
  the back faces (clockwise on the y-down screen: signed area > 0) of triangles the rig marks
  single-sided (``Rig.single_sided``, a glTF material without ``doubleSided``). Depth
  test on the screen-linear ``1/z``; nearer wins, ties keep the earlier triangle.
* Attributes (uv or colour, normal) are interpolated perspective-correctly. Vertex normals: area
  weighted face normals of the deformed mesh, rotated by ``R``; flipped on back-facing triangles.
* Shade: ``albedo * (ambient + diffuse * max(0, n . L)) + specular * diffuse * max(0, n . H) ** 16``
  clipped to [0,1], ``L`` = normalised light direction in camera space (+z toward the viewer), ``H`` the
  Blinn-Phong half vector of ``L`` and a distant viewer on +z (``camera.half_vector``; exponent
  ``camera.SPECULAR_POWER``). Albedo: bilinear texture lookup at
  ``(u (Wt-1), v (Ht-1))`` with clamped edges in the mip level that ``native.texture_level.texture_for``
  picks (``RenderOptions.texture_level``; ``Wt, Ht`` the size of that level), else vertex colours, else grey 0.75.
* Supersampling: coverage and depth per sample; a pixel whose ``ssaa x ssaa`` samples all lie on one
  triangle (most of the face) is shaded once, at the pixel's centre (``(i + 1/2) ssaa`` in samples);
  any other pixel (a silhouette or a triangle edge) is the box mean of its samples, each shaded at its
  own position. Then ``uint8(floor(x * 255 + 0.5))``.
"""
from __future__ import annotations

import numpy as np

from . import reference
from .camera import SPECULAR_POWER, RenderOptions, framing, half_vector, light_vector, pose_matrix, vertices_batch
from .texture_level import texture_for

__all__ = ["render", "render_vertices", "vertex_normals"]

_GREY = 0.75


def vertex_normals(verts: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals [V,3] (unit length; zero where a vertex has no area)."""
    v = verts.astype(np.float64)
    a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
    fn = np.cross(b - a, c - a)
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, tris[:, k], fn)
    ln = np.linalg.norm(n, axis=1, keepdims=True)
    return np.where(ln > 0, n / np.where(ln > 0, ln, 1.0), 0.0)


def _bilinear(tex: np.ndarray, uv: np.ndarray) -> np.ndarray:
    H, W = tex.shape[:2]
    x = np.clip(uv[:, 0] * (W - 1), 0, W - 1)
    y = np.clip(uv[:, 1] * (H - 1), 0, H - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), max(W - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.int64), max(H - 2, 0))
    x1, y1 = np.minimum(x0 + 1, W - 1), np.minimum(y0 + 1, H - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    t = tex.astype(np.float64) / 255.0
    top = t[y0, x0] * (1 - fx) + t[y0, x1] * fx
    bot = t[y1, x0] * (1 - fx) + t[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def _edges(sx, sy, tris, area):
    """Per triangle and edge e (vertex e+1 -> e+2): canonical start (x, y), (dx, dy), inside sign, tie rule."""
    px, py = sx[tris[:, [1, 2, 0]]], sy[tris[:, [1, 2, 0]]]
    qx, qy = sx[tris[:, [2, 0, 1]]], sy[tris[:, [2, 0, 1]]]
    swap = (qx < px) | ((qx == px) & (qy < py))
    x0, y0 = np.where(swap, qx, px), np.where(swap, qy, py)
    dx, dy = np.where(swap, px, qx) - x0, np.where(swap, py, qy) - y0
    pos = (area > 0)[:, None] != swap            # inside: dx (y - y0) > dy (x - x0)
    s = np.where(pos, 1.0, -1.0)
    tie = (-s * dy > 0) | ((dy == 0) & (s * dx > 0))   # on the edge: the inward normal points to +x (+y)
    return x0, y0, dx, dy, pos, tie


def _covered(edges, t, qx, qy):
    """The watertight coverage of samples (qx, qy) by triangles t (the rule in the module docstring)."""
    x0, y0, dx, dy, pos, tie = (a[t] for a in edges)
    r = dx * (qy[:, None] - y0)
    c = dy * (qx[:, None] - x0)
    return (np.where(pos, r > c, r < c) | ((r == c) & tie)).all(axis=1)


def _frame(rig, verts: np.ndarray, opts, cam, R: np.ndarray, light: np.ndarray, texture) -> np.ndarray:
    center, dist, tan_half = cam
    S = opts.ssaa
    Ws, Hs = opts.width * S, opts.height * S
    aspect = opts.width / opts.height
    tris = rig.triangles.astype(np.int64)
    p = (verts.astype(np.float64) - center) @ R.T
    z = dist - p[:, 2]
    ok_v = z > 1e-6
    zs = np.where(ok_v, z, 1.0)
    sx = (p[:, 0] / (zs * tan_half * aspect) + 1.0) * 0.5 * Ws
    sy = (1.0 - p[:, 1] / (zs * tan_half)) * 0.5 * Hs
    normals = vertex_normals(verts, tris) @ R.T

    ax, ay = sx[tris[:, 0]], sy[tris[:, 0]]
    bx, by = sx[tris[:, 1]], sy[tris[:, 1]]
    cx, cy = sx[tris[:, 2]], sy[tris[:, 2]]
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    x0 = np.maximum(np.ceil(np.minimum(np.minimum(ax, bx), cx) - 0.5), 0).astype(np.int64)
    x1 = np.minimum(np.floor(np.maximum(np.maximum(ax, bx), cx) - 0.5), Ws - 1).astype(np.int64)
    y0 = np.maximum(np.ceil(np.minimum(np.minimum(ay, by), cy) - 0.5), 0).astype(np.int64)
    y1 = np.minimum(np.floor(np.maximum(np.maximum(ay, by), cy) - 0.5), Hs - 1).astype(np.int64)
    live = ok_v[tris].all(axis=1) & (area != 0) & (x1 >= x0) & (y1 >= y0)
    single = getattr(rig, "single_sided", None)
    if single is not None:
        live &= ~(single & (area > 0))   # y-down screen: back faces have area > 0
    edges = _edges(sx, sy, tris, area)
    tid = np.nonzero(live)[0]

    best_iz = np.full(Ws * Hs, -np.inf)
    best_t = np.full(Ws * Hs, -1, np.int64)
    best_l = np.zeros((Ws * Hs, 3))
    bw, bh = (x1 - x0 + 1), (y1 - y0 + 1)
    cost = np.where(live, bw * bh, 0)
    chunk, start = [], 0
    groups = []
    budget = 2_000_000
    acc = 0
    for t in tid:  # group triangles into chunks of ~budget candidate samples, in triangle order
        chunk.append(t)
        acc += cost[t]
        if acc >= budget:
            groups.append(np.array(chunk, np.int64))
            chunk, acc = [], 0
    if chunk:
        groups.append(np.array(chunk, np.int64))
    del start
    for g in groups:
        cnt = cost[g]
        rep = np.repeat(g, cnt)
        first = np.repeat(np.cumsum(cnt) - cnt, cnt)
        local = np.arange(rep.size) - first
        px = x0[rep] + local % bw[rep]
        py = y0[rep] + local // bw[rep]
        qx, qy = px + 0.5, py + 0.5
        A = area[rep]
        w0 = ((cx[rep] - bx[rep]) * (qy - by[rep]) - (cy[rep] - by[rep]) * (qx - bx[rep])) / A
        w1 = ((ax[rep] - cx[rep]) * (qy - cy[rep]) - (ay[rep] - cy[rep]) * (qx - cx[rep])) / A
        w2 = ((bx[rep] - ax[rep]) * (qy - ay[rep]) - (by[rep] - ay[rep]) * (qx - ax[rep])) / A
        inside = _covered(edges, rep, qx, qy)
        rep, px, py, w0, w1, w2 = rep[inside], px[inside], py[inside], w0[inside], w1[inside], w2[inside]
        tr = tris[rep]
        iz = w0 / z[tr[:, 0]] + w1 / z[tr[:, 1]] + w2 / z[tr[:, 2]]
        pix = py * Ws + px
        # per pixel: nearest (largest 1/z), ties -> lowest triangle index
        order = np.lexsort((rep, -iz, pix))
        pix_o = pix[order]
        keep = np.ones(order.size, bool)
        keep[1:] = pix_o[1:] != pix_o[:-1]
        sel = order[keep]
        pp = pix[sel]
        better = iz[sel] > best_iz[pp]
        sel, pp = sel[better], pp[better]
        best_iz[pp] = iz[sel]
        best_t[pp] = rep[sel]
        best_l[pp] = np.stack([w0[sel], w1[sel], w2[sel]], axis=1)

    def shade(t, lam):
        """Colours in [0, 1] of the points with screen barycentrics ``lam`` [N, 3] on triangles ``t`` [N]."""
        tr = tris[t]
        lz = lam / z[tr]
        q = lz / lz.sum(axis=1, keepdims=True)
        n = (q[:, :, None] * normals[tr]).sum(axis=1)
        n = np.where((area[t] > 0)[:, None], -n, n)  # y-down screen: front faces have area < 0
        ln = np.linalg.norm(n, axis=1)
        ndl = np.where(ln > 0, (n @ light) / np.where(ln > 0, ln, 1.0), 0.0)
        shade = opts.ambient + opts.diffuse * np.maximum(ndl, 0.0)
        ndh = np.where(ln > 0, (n @ half_vector(light)) / np.where(ln > 0, ln, 1.0), 0.0)
        spec = opts.specular * opts.diffuse * np.maximum(ndh, 0.0) ** SPECULAR_POWER
        if texture is not None:
            uv = (q[:, :, None] * rig.uvs.astype(np.float64)[tr]).sum(axis=1)
            albedo = _bilinear(texture, uv)
        elif rig.colors is not None:
            albedo = (q[:, :, None] * rig.colors.astype(np.float64)[tr]).sum(axis=1)
        else:
            albedo = np.full((len(t), 3), _GREY)
        return np.clip(albedo * shade[:, None] + spec[:, None], 0.0, 1.0)

    img = np.empty((Ws * Hs, 3))
    img[:] = np.asarray(opts.background, np.float64) / 255.0
    cov = np.nonzero(best_t >= 0)[0]
    if cov.size:
        img[cov] = shade(best_t[cov], best_l[cov])
    img = img.reshape(opts.height, S, opts.width, S, 3).mean(axis=(1, 3))
    # a pixel whose S x S samples all lie on one triangle is shaded once, at the pixel's centre
    per_pixel = best_t.reshape(opts.height, S, opts.width, S).transpose(0, 2, 1, 3).reshape(opts.height, opts.width, S * S)
    one = (per_pixel[..., 0] >= 0) & (per_pixel == per_pixel[..., :1]).all(axis=-1)
    if S > 1 and one.any():
        yy, xx = np.nonzero(one)
        t = per_pixel[yy, xx, 0]
        qx, qy = xx * S + S / 2.0, yy * S + S / 2.0
        A = area[t]
        lam = np.stack([((cx[t] - bx[t]) * (qy - by[t]) - (cy[t] - by[t]) * (qx - bx[t])) / A,
                        ((ax[t] - cx[t]) * (qy - cy[t]) - (ay[t] - cy[t]) * (qx - cx[t])) / A,
                        ((bx[t] - ax[t]) * (qy - ay[t]) - (by[t] - ay[t]) * (qx - ax[t])) / A], axis=1)
        img[yy, xx] = shade(t, lam)
    return np.floor(img * 255.0 + 0.5).astype(np.uint8)


def render_vertices(rig, vertices, options=None, *, pose=(0.0, 0.0, 0.0), light_dir=None) -> np.ndarray:
    """Render given vertices ([V,3] -> [H,W,3], [F,V,3] -> [F,H,W,3] uint8) with ``rig``'s topology."""
    opts = options or RenderOptions()
    verts, single = vertices_batch(vertices, rig.n_vertices)
    box = getattr(rig, "frame_box", None)
    cam = framing(rig.vertices if box is None else box, opts)
    R = pose_matrix(pose).astype(np.float64)
    L = light_vector(opts.light_dir if light_dir is None else light_dir).astype(np.float64)
    texture, _ = texture_for(rig, opts, cam)   # the mip level the C++ renderer samples too
    out = np.stack([_frame(rig, v, opts, cam, R, L, texture) for v in verts])
    return out[0] if single else out


def render(rig, weights, options=None, *, pose=(0.0, 0.0, 0.0), light_dir=None) -> np.ndarray:
    """Deform ``rig`` by ``weights`` (numpy) and render; one frame -> [H,W,3], a batch -> [F,H,W,3]."""
    w = rig.weights_for(weights)
    single = not (np.ndim(weights) == 2)
    verts = reference.deform_sparse(rig.vertices, rig.offsets, rig.indices, rig.values, w)
    out = render_vertices(rig, verts, options, pose=pose, light_dir=light_dir)
    return out[0] if single else out
