"""Textures of the default avatar, painted in the head's UV atlas (face in the left half, eyeball,
mouth, teeth and tongue swatches in the right half; see ``avatar.mesh``).

* ``"photo"``: the public-domain astronaut photo (Eileen Collins, NASA) warped onto the canonical UVs
  through FaceLandmarker's landmarks on the photo, then made neutral: low-frequency shading (smile cheeks, folds) is flattened out, the lips are repainted at
  rest, brows are kept.
  The photo ships as ``data/astronaut_face.png``: the 256x256 face crop (rows 0:256, columns 100:356)
  of scikit-image's ``astronaut.png``, so this texture needs no scikit-image (a test-only dependency).
* ``"neutral"`` (default): painted from landmark UVs only (skin tone, brows, lips, eye sockets,
  nostrils); no photo, nothing of a smile baked in.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from emo3d.errors import InvalidInputError

from . import mesh as M

__all__ = ["build_texture", "TEXTURES", "ATLAS_SIZE"]

TEXTURES = ("neutral", "photo")
PHOTO = Path(__file__).resolve().parent / "data" / "astronaut_face.png"
ATLAS_SIZE = (512, 1024)      # H, W
SKIN = np.array([206, 160, 135], np.float32)
BROW = np.array([70, 52, 42], np.float32)
LIP = np.array([172, 96, 92], np.float32)

# brow polygons (upper edge right->left, lower edge back) per side
BROW_RIGHT = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
BROW_LEFT = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)


def _px(uv: np.ndarray) -> np.ndarray:
    """Canonical face uv -> atlas pixel coordinates (x, y)."""
    H, W = ATLAS_SIZE
    return np.stack([uv[:, 0] * 0.5 * (W - 1), uv[:, 1] * (H - 1)], 1)


def _fill(img, pts, color, blur=0.0):
    import cv2
    mask = np.zeros(img.shape[:2], np.float32)
    cv2.fillPoly(mask, [np.round(pts * 4).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=2)
    if blur:
        mask = cv2.GaussianBlur(mask, (0, 0), blur)
    img[:] = img * (1 - mask[..., None]) + np.asarray(color, np.float32) * mask[..., None]
    return mask


def _extras(img: np.ndarray) -> None:
    """Eyeball (sclera, iris, pupil), mouth cavity, teeth and tongue swatches (right half)."""
    H, W = ATLAS_SIZE
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    cu, cv, cr = M.ATLAS_EYE
    # the eye map: u offset is halved (see mesh._sphere), so scale x back
    dx = (xx / (W - 1) - cu) * 2.0
    dy = yy / (H - 1) - cv
    rho = np.sqrt(dx ** 2 + dy ** 2) / (cr * 2.0) * np.pi        # polar angle from the front pole
    region = (xx >= W // 2) & (xx < 3 * W // 4) & (yy < H // 2)
    sclera = np.array([232, 228, 222], np.float32) * (1 - 0.25 * np.clip(rho / 1.6, 0, 1))[..., None]
    iris = np.array([92, 64, 40], np.float32) * (0.8 + 0.4 * np.clip((rho - M.PUPIL_ANGLE) /
                                                                   (M.IRIS_ANGLE - M.PUPIL_ANGLE), 0, 1))[..., None]
    col = np.where((rho < M.IRIS_ANGLE)[..., None], iris, sclera)
    col = np.where((rho < M.PUPIL_ANGLE)[..., None], np.array([12, 10, 10], np.float32), col)
    ring = np.abs(rho - M.IRIS_ANGLE) < 0.03
    col = np.where(ring[..., None], np.array([40, 30, 22], np.float32), col)
    img[region] = col[region]
    img[:H // 2, 3 * W // 4:] = (48, 16, 18)          # mouth cavity
    img[H // 2:, W // 2:3 * W // 4] = _teeth_swatch(H // 2, W // 4)
    img[H // 2:, 3 * W // 4:] = _tongue_swatch(H // 2, W // 4)


TONGUE = np.array([196, 92, 100], np.float32)   # pinker and redder than the lips


def _tongue_swatch(h: int, w: int) -> np.ndarray:
    """The tongue swatch [h,w,3]: a darker groove down the middle (u 0.5), a little lighter at the tip (top)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx / (w - 1), yy / (h - 1)
    groove = 1 - 0.22 * np.exp(-((u - 0.5) / 0.05) ** 2) * np.clip(v / 0.3, 0, 1)
    tip = 1 + 0.08 * np.clip(1 - v / 0.35, 0, 1)
    return (TONGUE[None, None] * (groove * tip)[..., None]).astype(np.float32)


TOOTH = np.array([222, 216, 200], np.float32)
GUM = np.array([186, 104, 110], np.float32)


def _teeth_swatch(h: int, w: int) -> np.ndarray:
    """The teeth swatch [h,w,3]: a gum band on top, then teeth, each rounded by shading and parted by a
    dark gap, greying toward the biting edge (the arches map v 0.3..0.7 of it, u 0.1..0.9)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    v = yy / (h - 1)
    u = (xx / (w - 1) - 0.1) / 0.8                     # 0..1 across the strip
    t = (u * M.TEETH_PER_ARCH) % 1.0                     # position within a tooth
    round_ = 0.78 + 0.22 * np.sin(np.pi * np.clip(t, 0, 1)) ** 0.6
    gap = np.clip(np.minimum(t, 1 - t) / 0.06, 0, 1)   # dark seam between teeth
    edge = np.clip((v - 0.62) / 0.08, 0, 1)            # the biting edge greys a little
    tooth = TOOTH[None, None] * (round_ * (0.45 + 0.55 * gap))[..., None] * (1 - 0.18 * edge)[..., None]
    gum = np.clip((0.36 - v) / 0.03, 0, 1)[..., None]  # gum above v 0.36 (the arches' top rows)
    deep = (1 - 0.6 * np.clip(np.abs(2 * u - 1), 0, 1) ** 2)[..., None]   # the back teeth lie in the mouth's shade
    return ((tooth * (1 - gum) + GUM * gum) * deep).astype(np.float32)


def _lips(img: np.ndarray, uv: np.ndarray, strength: float = 1.0) -> None:
    outer = np.array(M._loop(M.LIP_UPPER_RINGS[0], M.LIP_LOWER_RINGS[0]))
    mask = _fill(np.zeros_like(img), _px(uv[outer]), (1, 1, 1), blur=1.5)[..., None] * strength
    img[:] = img * (1 - mask) + LIP * mask


def procedural(uv: np.ndarray) -> np.ndarray:
    """Skin, soft shading cues, brows and lips painted from the canonical UVs [468,2]."""
    import cv2
    H, W = ATLAS_SIZE
    img = np.tile(SKIN, (H, W, 1)).astype(np.float32)
    face = img[:, :W // 2]
    p = _px(uv)
    # eye sockets a little darker, lids slightly pink, nostrils dark, brows
    for up, lo in ((M.EYE_RIGHT_UPPER, M.EYE_RIGHT_LOWER), (M.EYE_LEFT_UPPER, M.EYE_LEFT_LOWER)):
        c = p[list(up) + list(lo)].mean(0)
        ring = (p[list(up) + list(lo)] - c) * 1.9 + c
        _fill(face, ring, SKIN * 0.82, blur=6)
        _fill(face, (p[list(up) + list(lo)] - c) * 1.15 + c, SKIN * 0.6, blur=1.5)
    for poly in (BROW_RIGHT, BROW_LEFT):
        _fill(face, p[list(poly)], BROW, blur=1.2)
    for idx in ((64, 98, 240, 75, 60), (294, 327, 460, 305, 290)):
        _fill(face, p[list(idx)], SKIN * 0.45, blur=1.5)
    _lips(face, uv)
    img[:, :W // 2] = face
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    _extras(img)
    return np.clip(img, 0, 255).astype(np.uint8)


def _astronaut_face(uv: np.ndarray) -> np.ndarray:
    """The astronaut photo warped to the canonical UV layout (left half of the atlas)."""
    import cv2
    from PIL import Image

    from .scorer import FaceScorer
    with Image.open(PHOTO) as im:
        photo = np.asarray(im.convert("RGB"))
    with FaceScorer("image") as s:
        if s.scores(photo) is None:
            raise InvalidInputError("FaceLandmarker found no face on the astronaut photo")
        lm = s.last_landmarks[:468, :2] * [photo.shape[1], photo.shape[0]]
    H, W = ATLAS_SIZE
    dst = _px(uv)
    tris = M.canonical_mesh().triangles
    out = np.zeros((H, W // 2, 3), np.float32)
    for t in tris:
        s_tri = lm[t].astype(np.float32)
        d_tri = dst[t].astype(np.float32)
        x0, y0 = np.floor(d_tri.min(0)).astype(int) - 1
        x1, y1 = np.ceil(d_tri.max(0)).astype(int) + 2
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, W // 2), min(y1, H)
        if x1 <= x0 or y1 <= y0:
            continue
        A = cv2.getAffineTransform((d_tri - [x0, y0]).astype(np.float32), s_tri)
        patch = cv2.warpAffine(photo.astype(np.float32), A, (x1 - x0, y1 - y0),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.fillConvexPoly(mask, np.round((d_tri - [x0, y0]) * 4).astype(np.int32), 1.0, shift=2)
        mask = np.maximum(mask, cv2.dilate(mask, np.ones((3, 3), np.uint8)))
        sub = out[y0:y1, x0:x1]
        sub[:] = np.where(mask[..., None] > 0, patch, sub)
    return out


def neutral_photo(uv: np.ndarray) -> np.ndarray:
    """The astronaut photo texture with its smile removed: shading flattened, lips repainted."""
    import cv2
    H, W = ATLAS_SIZE
    face = _astronaut_face(uv)
    valid = face.sum(-1) > 0
    # flatten low-frequency shading: divide by a large blur, multiply by the mean skin colour
    fill = face.copy()
    fill[~valid] = face[valid].mean(0)
    low = cv2.GaussianBlur(fill, (0, 0), 14)
    skin = np.median(face[valid], axis=0)
    flat = np.clip(fill / np.maximum(low, 1.0) * skin, 0, 255)
    # keep high-frequency detail but soften it (smile lines are high-frequency too)
    detail = flat - cv2.GaussianBlur(flat, (0, 0), 2.0)
    base = cv2.GaussianBlur(flat, (0, 0), 2.0)
    face = base + 0.5 * detail
    # cheeks / nasolabial region: smooth heavily
    p = _px(uv)
    for idx in ((50, 101, 36, 203, 165, 57, 212, 214, 192, 213, 147, 123, 116, 117, 118),
                (280, 330, 266, 423, 391, 287, 432, 434, 416, 433, 376, 352, 345, 346, 347)):
        m = _fill(np.zeros_like(face), p[list(idx)], (1, 1, 1), blur=8)[..., None]
        face = face * (1 - m) + cv2.GaussianBlur(face, (0, 0), 6) * m
    _lips(face, uv, strength=0.55)
    img = np.tile(skin, (H, W, 1)).astype(np.float32)
    img[:, :W // 2] = face
    _extras(img)
    return np.clip(img, 0, 255).astype(np.uint8)


def build_texture(kind: str = "neutral", uv: np.ndarray | None = None) -> np.ndarray:
    """[512,1024,3] uint8 atlas for the head built by ``avatar.mesh.build_head``."""
    if kind not in TEXTURES:
        raise InvalidInputError(f"unknown texture {kind!r}; accepted: {', '.join(TEXTURES)}")
    uv = M.canonical_mesh().uvs if uv is None else uv
    return neutral_photo(uv) if kind == "photo" else procedural(uv)
