"""Which mip level of a rig's texture the renderers sample, shared by the C++ renderer (``native.render``)
and its numpy reference (``native.reference_render``), so both draw from the same texels.

A face framed at 256^2 shows the default head's 1536x1024 atlas minified: about 8 texels per output
pixel. Sampling the full atlas then reads ~1.5 MB of it per frame, scattered, and at 60 Hz each frame
starts after 13 ms idle with that atlas out of the caches (the cost the live loop's p99 measured). Level
``k`` is the texture box-filtered ``k`` times (each texel the rounded mean of a 2x2 block of the level
above); ``RenderOptions.texture_level`` picks it, ``-1`` (the default) automatically per renderer: the
coarsest level that still has at least one texel per output pixel on average over the neutral face,
``floor(log2(texel area per pixel) / 2)`` (``auto_level``). At 512^2 that is the full texture (level 0),
at 256^2 level 1 (768x512 for the default head: a quarter of the bytes), at 128^2 level 2. The level is
fixed by the framing of the neutral mesh (like the camera), not chosen per frame or per triangle.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from .camera import RenderOptions

__all__ = ["auto_level", "max_level", "mip", "texture_for"]


def max_level(shape: Tuple[int, ...]) -> int:
    """The coarsest level of a texture of ``shape`` [H, W, ...] whose sides are both still >= 2 texels."""
    h, w = int(shape[0]), int(shape[1])
    k = 0
    while min(-(-h // 2 ** (k + 1)), -(-w // 2 ** (k + 1))) >= 2:
        k += 1
    return k


def mip(texture: np.ndarray, level: int) -> np.ndarray:
    """``texture`` [H, W, 3] uint8 halved ``level`` times: each texel the mean of a 2x2 block, rounded
    half up (an odd side repeats its last row or column first); level 0 is ``texture`` itself."""
    t = np.asarray(texture)
    if level <= 0:
        return t
    a = t.astype(np.uint16)
    for _ in range(level):
        if a.shape[0] % 2:
            a = np.concatenate([a, a[-1:]], axis=0)
        if a.shape[1] % 2:
            a = np.concatenate([a, a[:, -1:]], axis=1)
        a = (a[0::2, 0::2] + a[0::2, 1::2] + a[1::2, 0::2] + a[1::2, 1::2] + 2) // 4
    return np.ascontiguousarray(a.astype(np.uint8))


def auto_level(rig, options: RenderOptions, cam) -> int:
    """The automatic level for ``rig`` framed by ``cam`` = (centre, distance, tan(fov/2)) at ``options``'
    size (before supersampling): ``floor(log2(A) / 2)`` with ``A`` the texels per output pixel, the
    texture area of the neutral mesh's front-facing triangles inside the frame over their screen area;
    0 where there is no such triangle or no texture."""
    tex = getattr(rig, "texture", None)
    if tex is None or rig.uvs is None:
        return 0
    center, dist, tan_half = cam
    W, H = options.width, options.height
    p = np.asarray(rig.vertices, np.float64) - center
    z = dist - p[:, 2]
    if not (z > 1e-6).all():
        return 0
    sx = (p[:, 0] / (z * tan_half * (W / H)) + 1.0) * 0.5 * W
    sy = (1.0 - p[:, 1] / (z * tan_half)) * 0.5 * H
    t = np.asarray(rig.triangles, np.int64)
    th, tw = tex.shape[:2]
    u, v = rig.uvs[:, 0].astype(np.float64) * (tw - 1), rig.uvs[:, 1].astype(np.float64) * (th - 1)

    def area(x, y):
        return (x[t[:, 1]] - x[t[:, 0]]) * (y[t[:, 2]] - y[t[:, 0]]) - (y[t[:, 1]] - y[t[:, 0]]) * (x[t[:, 2]] - x[t[:, 0]])

    screen = area(sx, sy)
    inside = ((sx[t].min(axis=1) >= 0) & (sx[t].max(axis=1) <= W) & (sy[t].min(axis=1) >= 0)
              & (sy[t].max(axis=1) <= H) & (screen < 0))   # y-down screen: front faces have area < 0
    pixels = -screen[inside].sum()
    if pixels <= 0:
        return 0
    texels = np.abs(area(u, v)[inside]).sum()
    if texels <= pixels:
        return 0
    return min(int(math.floor(math.log2(texels / pixels) / 2)), max_level(tex.shape))


def texture_for(rig, options: RenderOptions, cam) -> Tuple[Optional[np.ndarray], int]:
    """The texture the renderers sample for ``rig`` at ``options`` framed by ``cam``, and its level
    (``options.texture_level``, or ``auto_level`` where that is -1; at most ``max_level``);
    (None, 0) for a rig without a texture."""
    tex = getattr(rig, "texture", None)
    if tex is None:
        return None, 0
    want = options.texture_level
    level = auto_level(rig, options, cam) if want < 0 else min(want, max_level(tex.shape))
    return mip(tex, level), level
