"""The face: the default avatar rig, external glTF rigs, MediaPipe scoring and rendering helpers.

Public API (imported lazily, so ``import avatar`` is cheap)::

    avatar.default_rig(texture="neutral") -> Rig
    avatar.load_gltf(path) -> Rig
    avatar.render(weights, *, size=256, rig=None, pose=(0, 0, 0), light_dir=None) -> uint8 [H,W,3]
    avatar.face_landmarker_path(path=None) -> Path
    avatar.FaceScorer(mode="image" | "video").scores(rgb) -> [52] | None
    avatar.Rig
"""
from __future__ import annotations

import threading

from emo3d.lazy import lazy_exports

__all__ = ["default_rig", "load_gltf", "render", "face_landmarker_path", "FaceScorer", "Rig"]

_LAZY = {"default_rig": "default", "load_gltf": "gltf", "face_landmarker_path": "bundle",
         "FaceScorer": "scorer", "Rig": "rig"}
_RENDERERS: dict = {}
_LOCK = threading.Lock()


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


def render(weights, *, size: int = 256, rig=None, pose=(0.0, 0.0, 0.0), light_dir=None, extras=None):
    """Render ``weights`` ([52] | [51] | {name: v} | [F,52]) on ``rig`` (default: the default avatar)
    at ``size`` x ``size``; the Renderer is cached per (rig, size)."""
    from emo3d.options import check_int
    from native.render import Renderer, RenderOptions
    check_int(size, "size", 16, 4096)
    if rig is None:
        from .default import default_rig
        rig = default_rig()
    key = (id(rig), size)
    with _LOCK:
        entry = _RENDERERS.get(key)
        if entry is None or entry[0] is not rig:
            if len(_RENDERERS) > 8:
                _RENDERERS.clear()
            entry = (rig, Renderer(rig, RenderOptions(width=size, height=size)))
            _RENDERERS[key] = entry
    from .posing import posed_vertices, poses_bones
    if poses_bones(rig, pose):   # eye bones turn by the gaze; a head bone turns, the body stays
        import numpy as np
        verts, rest = posed_vertices(rig, weights, pose, extras=extras)
        out = entry[1].render_vertices(verts, pose=rest, light_dir=light_dir)
        return out[0] if np.ndim(weights) != 2 else out
    return entry[1].render(weights, pose=pose, light_dir=light_dir, extras=extras)
