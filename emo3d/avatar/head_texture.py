"""The whole head's texture atlas (``avatar.head.ATLAS_SIZE``): the mask's atlas (``avatar.texture``)
moved into place, the scalp's skin and hair, the ears and the neck, with ambient occlusion baked in
(:mod:`avatar.head_ao` computes it per vertex; here it is painted through the UVs).
"""
from __future__ import annotations

import numpy as np

from . import head as HD

__all__ = ["whole_texture", "raster_uv"]

HAIR = np.array([58, 40, 30], np.float32)        # dark brown
HAIR_SHEEN = 0.35                                # strand contrast (fraction of the colour)
EAR_TINT = np.array([1.03, 0.95, 0.93], np.float32)   # ears a little pinker than the face
AO_STRENGTH = 0.6                                # how much of the occlusion darkens the skin
BOUNDARY_FEATHER = 8.0                           # px inside the face outline over which the face chart fades into
                                                 # the scalp's skin (a photo's edge texels never reach the seam)
SEED = 14


def raster_uv(px: np.ndarray, tris: np.ndarray, values: np.ndarray, shape) -> tuple:
    """Rasterise per-vertex ``values`` [V,C] over triangles in texture space (``px`` [V,2] pixel
    coordinates) with barycentric interpolation -> (image [H,W,C] float32, coverage [H,W] bool).
    Where triangles overlap the later one wins."""
    H, W = shape
    C = values.shape[1]
    img = np.zeros((H, W, C), np.float32)
    cov = np.zeros((H, W), bool)
    for t in tris:
        p = px[t]
        x0, y0 = np.maximum(np.floor(p.min(0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(p.max(0)).astype(int) + 1, (W - 1, H - 1))
        if x1 < x0 or y1 < y0:
            continue
        yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
        qx, qy = xx + 0.0, yy + 0.0
        (ax, ay), (bx, by), (cx, cy) = p
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < 1e-12:
            continue
        w0 = ((bx - qx) * (cy - qy) - (by - qy) * (cx - qx)) / area
        w1 = ((cx - qx) * (ay - qy) - (cy - qy) * (ax - qx)) / area
        w2 = 1 - w0 - w1
        eps = -0.02                                   # a hair outside, so neighbouring triangles leave no gaps
        inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
        if not inside.any():
            continue
        val = w0[..., None] * values[t[0]] + w1[..., None] * values[t[1]] + w2[..., None] * values[t[2]]
        sub = img[y0:y1 + 1, x0:x1 + 1]
        sub[inside] = val[inside]
        cov[y0:y1 + 1, x0:x1 + 1] |= inside
    return img, cov


def _strands(shape, center) -> np.ndarray:
    """[H,W] strand pattern in -1..1 running radially from the head chart's centre (front to back)."""
    import cv2
    H, W = shape
    rng = np.random.default_rng(SEED)
    NT, NR = 2048, 256
    polar = rng.standard_normal((NR, NT)).astype(np.float32)
    polar = cv2.GaussianBlur(polar, (0, 0), sigmaX=0.8, sigmaY=6.0, borderType=cv2.BORDER_REFLECT)
    polar /= polar.std() + 1e-6
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    th = (np.arctan2(yy - center[1], xx - center[0]) / (2 * np.pi) + 0.5) * (NT - 1)
    rr = np.clip(np.hypot(xx - center[0], yy - center[1]) / (0.75 * W) * (NR - 1), 0, NR - 1)
    out = cv2.remap(polar, th.astype(np.float32), rr.astype(np.float32), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_WRAP)
    return np.clip(out / 2.0, -1, 1)


def _ear_paint(size: int, skin: np.ndarray) -> np.ndarray:
    """The ear chart: skin, the concha and the groove under the rim darker (occlusion), the rim lighter."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c, rr = size / 2, size / 2 - 4
    rho = np.hypot(xx - c, yy - c) / rr
    ao = 1.0 - 0.45 * np.exp(-((rho - 0.1) / 0.28) ** 2) - 0.22 * np.exp(-((rho - 0.76) / 0.07) ** 2)
    ao += 0.06 * np.exp(-((rho - 0.93) / 0.06) ** 2)
    return skin * EAR_TINT * ao[..., None]


def _neck_paint(h: int, w: int, skin: np.ndarray) -> np.ndarray:
    """The neck chart (rows top -> bottom, columns around with the front in the middle): the throat under
    the jaw in the jaw's shadow, the sides and the back a little darker than the front."""
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    col = np.linspace(0, 1, w, dtype=np.float32)[None]
    front = np.cos((col - 0.5) * 2 * np.pi) * 0.5 + 0.5          # 1 at the front, 0 at the back
    jaw = HD.NECK_TOP[1] + (HD.NECK_BOTTOM[1] - HD.NECK_TOP[1]) * t   # y of the row
    shadow = 1 - 0.35 * np.clip(1 - (-jaw - 9.0) / 4.0, 0, 1) * (0.4 + 0.6 * front)
    return skin * (shadow * (0.93 + 0.07 * front))[..., None]


def whole_texture(mask_tex: np.ndarray, whole: "HD.WholeHead", vertex_ao: np.ndarray | None = None) -> np.ndarray:
    """The whole head's atlas [ATLAS_SIZE,3] uint8 from the mask's atlas [MASK_ATLAS_SIZE,3] uint8.
    ``vertex_ao`` [V] (1 = open, 0 = fully occluded) darkens the face chart and the scalp."""
    import cv2
    H, W = HD.ATLAS_SIZE
    mh, mw = HD.MASK_ATLAS_SIZE
    if mask_tex.shape[:2] != (mh, mw):
        raise ValueError(f"mask texture must be {mh}x{mw}, got {mask_tex.shape[:2]}")
    head = whole.head
    px = head.uvs.astype(np.float64) * [W - 1, H - 1]
    out = np.zeros((H, W, 3), np.float32)
    # the face chart's skin along its boundary sets the scalp's skin (the photo texture has its own tone)
    fx0, fy0 = HD.FACE_CHART_OFFSET
    face = mask_tex[:, :mw // 2].astype(np.float32)
    bpx = px[whole.boundary]
    c = bpx.mean(0)
    inner = c + (bpx - c) * 0.8
    skin = np.median(face[np.clip(np.round(inner[:, 1] - fy0).astype(int), 0, mh - 1),
                          np.clip(np.round(inner[:, 0] - fx0).astype(int), 0, mw // 2 - 1)], axis=0)
    x0, y0, x1, y1 = HD.HEAD_CHART
    out[y0:y1, x0:x1] = skin
    # the face chart inside its boundary polygon, feathered into the scalp's skin
    poly = np.zeros((H, W), np.float32)
    cv2.fillPoly(poly, [np.round(bpx * 4).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=2)
    k = int(BOUNDARY_FEATHER) | 1
    poly = cv2.GaussianBlur(cv2.erode(poly, np.ones((k, k), np.uint8)), (0, 0), BOUNDARY_FEATHER / 3)
    sub = out[fy0:fy0 + mh, fx0:fx0 + mw // 2]
    m = poly[fy0:fy0 + mh, fx0:fx0 + mw // 2, None]
    sub[:] = face * m + sub * (1 - m)
    # ambient occlusion (per vertex, through the UVs) over the face chart and the scalp
    skin_tris = head.triangles[np.isin(head.triangles, np.concatenate(
        [np.arange(head.n_face), head.parts["scalp"]])).all(1)]
    if vertex_ao is not None:
        ao, cov = raster_uv(px, skin_tris, vertex_ao[:, None].astype(np.float32), (H, W))
        ao = 1.0 - AO_STRENGTH * (1.0 - np.where(cov, ao[..., 0], 1.0))
        ao = cv2.GaussianBlur(ao, (0, 0), 1.5)
        out[y0:y1, x0:x1] *= ao[y0:y1, x0:x1, None]
    # hair over the scalp, with strands running front to back
    scalp_tris = head.triangles[np.isin(head.triangles, head.parts["scalp"]).any(1)]
    dirs, cov = raster_uv(px, scalp_tris, whole.skull_dir, (H, W))
    dirs /= np.maximum(np.linalg.norm(dirs, axis=-1, keepdims=True), 1e-6)
    hair = np.where(cov, HD.hair_cover(dirs)[0], 0.0)
    strands = _strands((H, W), c)
    edge = np.clip((hair - 0.5) * 2.5 + 0.5 + 0.35 * strands, 0, 1)
    hair_col = HAIR[None, None] * (1 + HAIR_SHEEN * strands)[..., None]
    m = edge[..., None]
    out[:, :x1] = (out * (1 - m) + hair_col * m)[:, :x1]
    # the mask's swatches (eye, mouth, teeth, tongue)
    sx, sy = HD.SWATCH_OFFSET
    out[sy:sy + mh, sx + mw // 2:sx + mw] = mask_tex[:, mw // 2:]
    ex0, ey0, ex1, ey1 = HD.EAR_CHART
    out[ey0:ey1, ex0:ex1] = _ear_paint(ex1 - ex0, skin)
    nx0, ny0, nx1, ny1 = HD.NECK_CHART
    out[ny0:ny1, nx0:nx1] = _neck_paint(ny1 - ny0, nx1 - nx0, skin)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
