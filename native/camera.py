"""The renderer's options and camera maths, shared by the C++ renderer (``native.render``) and its numpy
reference (``native.reference_render``): the options, the light vector, the pose matrix and the framing
fitted to the neutral mesh. The pose convention is ``emo3d.pose``'s; the rendering conventions are listed in
``native.reference_render``'s docstring.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number
from emo3d.pose import pose_matrix

__all__ = ["RenderOptions", "SPECULAR_POWER", "half_vector", "framing", "pose_matrix", "light_vector", "vertices_batch"]


SPECULAR_POWER = 16    # the highlight's exponent (fixed: the C++ shader raises to it by four squarings)


def half_vector(light: np.ndarray) -> np.ndarray:
    """Blinn-Phong half vector of a unit light direction and a distant viewer on +z (zero if they oppose)."""
    h = np.asarray(light, np.float64) + (0.0, 0.0, 1.0)
    n = np.linalg.norm(h)
    return h / n if n > 1e-12 else np.zeros(3)


@dataclass(frozen=True)
class RenderOptions:
    """Image size, supersampling, camera and light. ``background`` is RGB in 0..255;
    ``threads`` = 0 uses every core. Light: ``ambient + diffuse * max(n.l, 0)`` times the albedo plus a
    white Blinn-Phong highlight ``specular * diffuse * max(n.h, 0) ** SPECULAR_POWER`` (``diffuse`` is the
    key light's strength, so ``diffuse=0`` renders unlit colours). ``texture_level``: which mip level of the
    rig's texture is sampled (``native.texture_level``): -1 (default) chosen from the framing (level 1 for the
    default head at 256^2, the full texture at 512^2), 0 the full texture, k the texture halved k times."""

    width: int = 256
    height: int = 256
    ssaa: int = 2
    fov_deg: float = 20.0
    margin: float = 0.08
    light_dir: Tuple[float, float, float] = (0.3, 0.4, 1.0)
    ambient: float = 0.35
    diffuse: float = 0.75
    specular: float = 0.12
    background: Tuple[int, int, int] = (0, 0, 0)
    threads: int = 0
    texture_level: int = -1

    def __post_init__(self) -> None:
        for k in ("width", "height"):
            check_int(getattr(self, k), f"RenderOptions.{k}", 8, 8192)
        check_int(self.ssaa, "RenderOptions.ssaa", 1, 8)
        if self.width * self.height * self.ssaa ** 2 > 1 << 26:
            raise InvalidInputError(f"RenderOptions: {self.width}x{self.height} at ssaa {self.ssaa} is "
                                    f"{self.width * self.height * self.ssaa ** 2} samples; at most {1 << 26} "
                                    f"(about 4096x4096 at ssaa 2)")
        check_number(self.fov_deg, "RenderOptions.fov_deg (degrees)", 1, 120)
        check_number(self.margin, "RenderOptions.margin", 0, 0.45, hi_open=True)
        light_vector(self.light_dir)
        for k in ("ambient", "diffuse", "specular"):
            check_number(getattr(self, k), f"RenderOptions.{k}", 0, 4)
        bg = tuple(self.background)
        if len(bg) != 3 or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in bg):
            raise InvalidInputError(f"RenderOptions.background must be 3 integers in 0..255, got {self.background!r}")
        object.__setattr__(self, "background", tuple(int(c) for c in bg))
        object.__setattr__(self, "light_dir", tuple(float(c) for c in self.light_dir))
        check_int(self.threads, "RenderOptions.threads", 0)
        check_int(self.texture_level, "RenderOptions.texture_level (-1: automatic, 0: the full texture, "
                  "k: the texture halved k times)", -1, 16)


def light_vector(light_dir) -> np.ndarray:
    """Normalised light direction (camera space, +z toward the viewer) as float32 [3]."""
    v = np.asarray(light_dir, dtype=np.float64).reshape(-1)
    if v.shape != (3,) or not np.isfinite(v).all() or np.linalg.norm(v) < 1e-9:
        raise InvalidInputError(f"light_dir must be 3 finite numbers, not all zero; got {light_dir!r}")
    return (v / np.linalg.norm(v)).astype(np.float32)


def framing(vertices: np.ndarray, options: RenderOptions):
    """Camera fitted to the bounds of ``vertices`` (the neutral mesh): (centre [3] float64,
    distance from the centre, tan(fov/2)). The bounding box's front face fills the frame less
    ``margin`` on each side."""
    v = np.asarray(vertices, dtype=np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    center = (lo + hi) / 2
    hx, hy, hz = np.maximum((hi - lo) / 2, 1e-6)
    aspect = options.width / options.height
    tan_half = math.tan(math.radians(options.fov_deg) / 2)
    extent = max(hy, hx / aspect) / (1.0 - 2.0 * options.margin)
    dist = extent / tan_half + hz
    # round through float32 so the C++ renderer and the reference use identical numbers
    return center.astype(np.float32).astype(np.float64), float(np.float32(dist)), float(np.float32(tan_half))


def vertices_batch(vertices, n_vertices: int):
    v = np.asarray(vertices)
    if v.dtype.kind not in "fiu":
        raise InvalidInputError(f"vertices must be a numeric array, got dtype {v.dtype}")
    single = v.ndim == 2
    if single:
        v = v[None]
    if v.ndim != 3 or v.shape[1:] != (n_vertices, 3):
        raise InvalidInputError(f"vertices must be [V,3] or [F,V,3] with V={n_vertices}; got {np.shape(vertices)}")
    v = np.ascontiguousarray(v, dtype=np.float32)
    if not np.isfinite(v).all():
        raise InvalidInputError("vertices contain NaN or inf")
    return v, single
