"""Head and eye poses on a skinned avatar: bones carry the rotations, the rest stays.

For a rig with ``head_weights`` and ``head_pivot`` (a glTF/VRM avatar with a head bone), each vertex
moves by its head weight w: ``v' = v + w (R (v - pivot) + pivot - v)`` (linear blend skinning with
the head bone rotated by ``R`` and every other bone at rest), after the blendshapes. Rigs without a
head bone (a head alone, the default avatar) turn as a whole, as the renderer's ``pose`` does.

For a rig with ``eye_weights`` and ``eye_pivots`` (a VRM whose lookAt turns the eye bones), each eye
bone turns the same way about its pivot by the gaze of the frame's eye-look scores
(:func:`emo3d.pose.eyes_from_weights`: yaw toward the subject's left, pitch down, radians), before the
head turn (the eyes ride on the head).
"""
from __future__ import annotations

import math

import numpy as np

from emo3d.pose import eyes_from_weights, pose_matrix
from emo3d.weights import normalize

__all__ = ["turns_head_only", "turns_eye_bones", "poses_bones", "head_posed_vertices", "posed_vertices"]


def turns_head_only(rig) -> bool:
    return getattr(rig, "head_weights", None) is not None and getattr(rig, "head_pivot", None) is not None


def turns_eye_bones(rig) -> bool:
    return getattr(rig, "eye_weights", None) is not None and getattr(rig, "eye_pivots", None) is not None


def poses_bones(rig, pose_deg) -> bool:
    """True when rendering ``rig`` at ``pose_deg`` needs :func:`posed_vertices` (eye bones, or a head
    bone that turns)."""
    return turns_eye_bones(rig) or (turns_head_only(rig) and any(float(x) != 0.0 for x in pose_deg))


def _turn(v: np.ndarray, weights: np.ndarray, pivot: np.ndarray, R: np.ndarray) -> np.ndarray:
    turned = (v - pivot) @ R.T + pivot
    return v + weights[:, None] * (turned - v)


def posed_vertices(rig, weights, pose_deg, *, extras=None) -> tuple:
    """(deformed vertices [F,V,3] with the eye bones turned by the gaze and, on a rig with a head bone,
    the head turned by ``pose_deg``; the pose left for the renderer: ``pose_deg`` for a rig that turns
    as a whole, else (0, 0, 0)). ``pose_deg``: yaw, pitch, roll in DEGREES (emo3d's convention)."""
    v = rig.deform(weights, extras=extras)
    if turns_eye_bones(rig):
        w52 = normalize(weights, batch=True).values
        for f in range(v.shape[0]):
            gaze = eyes_from_weights(w52[f])
            for k in range(2):
                yaw, pitch, roll = gaze[3 * k:3 * k + 3]
                if yaw or pitch or roll:
                    R = pose_matrix((math.degrees(yaw), math.degrees(pitch), math.degrees(roll))).astype(np.float32)
                    v[f] = _turn(v[f], rig.eye_weights[k], rig.eye_pivots[k], R)
    if turns_head_only(rig):
        if any(float(x) != 0.0 for x in pose_deg):
            R = pose_matrix(pose_deg).astype(np.float32)
            for f in range(v.shape[0]):
                v[f] = _turn(v[f], rig.head_weights, rig.head_pivot, R)
        return v.astype(np.float32), (0.0, 0.0, 0.0)
    return v.astype(np.float32), tuple(float(x) for x in pose_deg)


def head_posed_vertices(rig, weights, pose_deg, *, extras=None) -> np.ndarray:
    """Deformed vertices [F,V,3] of ``rig`` for ``weights`` with the head bone turned by ``pose_deg``
    (yaw, pitch, roll in DEGREES, emo3d's convention) and the eye bones by the gaze."""
    return posed_vertices(rig, weights, pose_deg, extras=extras)[0]
