"""Head pose on a skinned avatar: the head bone carries the rotation, the body stays.

For a rig with ``head_weights`` and ``head_pivot`` (a glTF/VRM avatar with a head bone), each vertex
moves by its head weight w: ``v' = v + w (R (v - pivot) + pivot - v)`` (linear blend skinning with
the head bone rotated by ``R`` and every other bone at rest), after the blendshapes. Rigs without a
head bone (a head alone, the default avatar) turn as a whole, as the renderer's ``pose`` does.
"""
from __future__ import annotations

import numpy as np

from emo3d.pose import pose_matrix

__all__ = ["turns_head_only", "head_posed_vertices"]


def turns_head_only(rig) -> bool:
    return getattr(rig, "head_weights", None) is not None and getattr(rig, "head_pivot", None) is not None


def head_posed_vertices(rig, weights, pose_deg, *, extras=None) -> np.ndarray:
    """Deformed vertices [F,V,3] of ``rig`` for ``weights`` with the head bone turned by ``pose_deg``
    (yaw, pitch, roll in DEGREES, emo3d's convention)."""
    v = rig.deform(weights, extras=extras)
    R = pose_matrix(pose_deg).astype(np.float32)
    p = rig.head_pivot.astype(np.float32)
    w = rig.head_weights[None, :, None]
    turned = (v - p) @ R.T + p
    return (v + w * (turned - v)).astype(np.float32)
