"""The head and eye pose convention of emo3d, stated once. The renderer (``native``), the avatar loop's frames,
the webcam tracker, the preview, the control server's frames, VMC and Live Link all follow it.

Rig space: +x = the subject's LEFT (the viewer's right), +y up, +z toward the viewer; the camera sits on +z
looking down -z, so in an image +x is to the right and +y is up (image rows grow downward).

Head pose ``(yaw, pitch, roll)`` rotates the head about its centre by ``R = Ry(yaw) Rx(pitch) Rz(roll)``
(right-handed rotations about the rig axes):

* +yaw   turns the face toward the subject's own left (in the image: toward the viewer's right);
* +pitch tips the chin down: the face looks DOWN (in the image: the nose moves down);
* +roll  tilts the head toward the subject's right shoulder (in the image: the top of the head moves to the
  viewer's left).

Eyes ``(yaw, pitch, roll)`` per eye use the same signs: +yaw looks toward the subject's left, +pitch looks down.

Units: radians in frames and on the wire (``Frame.head``/``Frame.eyes``, ``AvatarLoop.set_live(head=)``, the
webcam tracker, Live Link, the control server); degrees where a person types them (the renderer's ``pose=``
argument, ``--pose YAW PITCH ROLL``). Convert with :func:`to_degrees` / :func:`to_radians`.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.schema import MEDIAPIPE_INDEX

__all__ = ["rotation", "pose_matrix", "to_degrees", "to_radians", "eyes_from_weights", "EYE_YAW_DEG",
           "EYE_PITCH_DEG"]

EYE_YAW_DEG = 30.0     # eyeLookIn/Out = 1 -> this many degrees of eye yaw
EYE_PITCH_DEG = 25.0   # eyeLookUp/Down = 1 -> this many degrees of eye pitch


def _three(pose, what: str) -> np.ndarray:
    p = np.asarray(pose, dtype=np.float64).reshape(-1)
    if p.shape != (3,) or not np.isfinite(p).all():
        raise InvalidInputError(f"{what} must be (yaw, pitch, roll), 3 finite numbers; got {pose!r}")
    return p


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """``R = Ry(yaw) Rx(pitch) Rz(roll)`` (radians) as float64 [3,3]; rotated point = ``R @ v``."""
    cy, sy, cx, sx, cz, sz = (math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch),
                              math.cos(roll), math.sin(roll))
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return ry @ rx @ rz


def pose_matrix(pose_deg) -> np.ndarray:
    """(yaw, pitch, roll) in DEGREES (the renderer's ``pose=``) -> R as float32 [3,3]."""
    return rotation(*np.radians(_three(pose_deg, "pose (degrees)"))).astype(np.float32)


def to_degrees(head_rad: Sequence[float]) -> Tuple[float, float, float]:
    """A head pose in radians (frames, the wire) -> degrees (the renderer's ``pose=``)."""
    return tuple(float(math.degrees(v)) for v in _three(head_rad, "head pose (radians)"))


def to_radians(pose_deg: Sequence[float]) -> Tuple[float, float, float]:
    """A pose in degrees -> radians."""
    return tuple(float(math.radians(v)) for v in _three(pose_deg, "pose (degrees)"))


def eyes_from_weights(w: np.ndarray) -> Tuple[float, ...]:
    """Eye rotations (radians: left yaw, pitch, roll, right yaw, pitch, roll) from the [52] eyeLook* shapes.
    'Out' of the left eye and 'In' of the right eye look toward the subject's left (+yaw); Down is +pitch."""
    g = lambda n: float(w[MEDIAPIPE_INDEX[n]])  # noqa: E731
    yaw_s, pitch_s = math.radians(EYE_YAW_DEG), math.radians(EYE_PITCH_DEG)
    ly = (g("eyeLookOutLeft") - g("eyeLookInLeft")) * yaw_s
    lp = (g("eyeLookDownLeft") - g("eyeLookUpLeft")) * pitch_s
    ry = (g("eyeLookInRight") - g("eyeLookOutRight")) * yaw_s
    rp = (g("eyeLookDownRight") - g("eyeLookUpRight")) * pitch_s
    return (ly, lp, 0.0, ry, rp, 0.0)
