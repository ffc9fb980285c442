"""The native blendshape renderer: ``Renderer(rig, RenderOptions()).render(weights) -> uint8 RGB``.

The C++ side (``native/src/render*.cpp``) holds the rig, the camera and per-thread frame buffers,
so rendering a frame allocates nothing but the output array; it deforms with the sparse kernel,
computes vertex normals, rasterises with a z-buffer (the back faces of triangles the rig marks
single-sided, ``Rig.single_sided`` from glTF ``doubleSided``, are culled), perspective-correct
textures (the mip level ``native.texture_level`` picks for the framing) and Lambert + ambient light,
supersamples (coverage and depth per sample; a pixel whose samples all lie on one triangle is shaded
once, at its centre), splits batches of frames over threads and
releases the GIL (one frame of at least 2^19 samples, e.g. 512^2 at ssaa 2: bands of rows each taken by
whichever thread is free and drawn from that band's own triangle list, and on a rig of at least 8192
vertices or triangles deformation, projection and triangle setup split too; a smaller frame, such as
the live loop's 256^2, is drawn on the calling thread alone, where sharing it cost more than it saved on
the quiet 2-core machine).
The threads are the renderer's own, started on its first split render and joined when it is
dropped. ``native.reference_render`` is the numpy reference with the same conventions
(its module docstring lists them); geometry, coverage and depth are computed in double precision
on both sides, and the C++ shades the four samples of a pixel (ssaa 2) in single precision (two
pixels at a time with AVX2 on an x86-64-v3 CPU, one with SSE elsewhere: the same image), so the
images agree to within a level or two except at rare edge/depth ties. One render runs at a
time per ``Renderer`` (concurrent calls are serialised); make one per thread for parallel work.
"""
from __future__ import annotations

import numpy as np

from emo3d.errors import InvalidInputError

from . import _core
from .camera import RenderOptions, framing, light_vector, pose_matrix, vertices_batch
from .texture_level import texture_for

__all__ = ["RenderOptions", "Renderer", "framing", "pose_matrix", "light_vector"]


def _single_sided(rig):
    """The rig's per-triangle single-sided flags as uint8 [F] (1: back face not drawn), or None."""
    ss = getattr(rig, "single_sided", None)
    return None if ss is None else np.ascontiguousarray(ss, np.uint8)


class Renderer:
    """Renders one rig; the framing is fixed from the rig's NEUTRAL mesh at construction."""

    def __init__(self, rig, options: RenderOptions = RenderOptions()):
        if not isinstance(options, RenderOptions):
            raise InvalidInputError(f"options must be a RenderOptions, got {type(options).__name__}")
        self.rig, self.options = rig, options
        self._options_light = light_vector(options.light_dir)   # normalised once, not per frame
        box = getattr(rig, "frame_box", None)   # a rig may ask to frame a region (its face), else all of it
        self._center, self._dist, self._tan = framing(rig.vertices if box is None else box, options)
        o = options
        # the mip level of the texture sampled at this framing (native.texture_level; the reference's too)
        texture, self.texture_level = texture_for(rig, options, (self._center, self._dist, self._tan))
        self._native = _core.Renderer(
            rig.vertices, rig.triangles, rig.offsets, rig.indices, rig.values,
            rig.uvs if texture is not None else None, texture,
            rig.colors if rig.texture is None else None,
            int(o.width), int(o.height), int(o.ssaa),
            np.asarray(self._center, np.float32), float(self._dist), float(self._tan),
            float(o.ambient), float(o.diffuse), float(o.specular), np.asarray(o.background, np.float32) / 255.0,
            int(o.threads), _single_sided(rig))

    @property
    def native(self) -> bool:
        """Always True: ``Renderer`` is the C++ renderer (``native.reference_render`` is the numpy reference)."""
        return True

    def _light(self, light_dir) -> np.ndarray:
        return self._options_light if light_dir is None else light_vector(light_dir)

    def render(self, weights, *, pose=(0.0, 0.0, 0.0), light_dir=None, extras=None) -> np.ndarray:
        """weights: [52] MediaPipe order | [51] | {name: v} | [F,52] -> uint8 [H,W,3] or [F,H,W,3].
        pose = (yaw, pitch, roll) degrees (the convention of ``emo3d.pose``); ``extras``: channels beyond
        the 52 (``{"tongueOut": v}``) for a rig with those targets."""
        w = self.rig.weights_for(weights, extras=extras) if extras else self.rig.weights_for(weights)
        single = np.ndim(weights) != 2
        R, L = pose_matrix(pose), self._light(light_dir)
        out = self._native.render(w, R, L)
        return out[0] if single else out

    def render_vertices(self, vertices, *, pose=(0.0, 0.0, 0.0), light_dir=None) -> np.ndarray:
        """Render given vertex positions: [V,3] -> [H,W,3], [F,V,3] -> [F,H,W,3] uint8."""
        v, single = vertices_batch(vertices, self.rig.n_vertices)
        R, L = pose_matrix(pose), self._light(light_dir)
        out = self._native.render_vertices(v, R, L)
        return out[0] if single else out
