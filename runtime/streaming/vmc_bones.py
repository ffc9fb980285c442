"""VMC head and eye bones (``/VMC/Ext/Bone/Pos``), the way VSeeFace and other VMC receivers move a
humanoid's head and eyes.

One message per bone: ``/VMC/Ext/Bone/Pos name px py pz qx qy qz qw`` for ``Head``, ``LeftEye`` and
``RightEye`` (Unity humanoid bone names). Rotations are LOCAL (head relative to the neck, eyes
relative to the head), in Unity's left-handed space (+x = the avatar's right, +y up, +z the avatar's
forward), from emo3d's pose convention (radians; the signs are stated in :mod:`emo3d.pose`):
``R_unity = S R S`` with ``S = diag(-1, 1, 1)``. Positions are sent as 0: VMC
receivers take the rotation of these bones and keep the model's own bone offsets.
"""
from __future__ import annotations

import math
import struct
from typing import Sequence, Tuple

import numpy as np

from emo3d.pose import rotation

from . import osc

__all__ = ["BONE_POS", "BONES", "unity_quaternion", "bone_elements"]

BONE_POS = "/VMC/Ext/Bone/Pos"
BONES = ("Head", "LeftEye", "RightEye")
_S = np.diag([-1.0, 1.0, 1.0])


def unity_quaternion(yaw: float, pitch: float, roll: float) -> Tuple[float, float, float, float]:
    """emo3d (yaw, pitch, roll) radians -> Unity quaternion (x, y, z, w) of the same rotation."""
    m = _S @ rotation(yaw, pitch, roll) @ _S
    w = math.sqrt(max(0.0, 1.0 + m[0, 0] + m[1, 1] + m[2, 2])) / 2
    x = math.sqrt(max(0.0, 1.0 + m[0, 0] - m[1, 1] - m[2, 2])) / 2
    y = math.sqrt(max(0.0, 1.0 - m[0, 0] + m[1, 1] - m[2, 2])) / 2
    z = math.sqrt(max(0.0, 1.0 - m[0, 0] - m[1, 1] + m[2, 2])) / 2
    x = math.copysign(x, m[2, 1] - m[1, 2])
    y = math.copysign(y, m[0, 2] - m[2, 0])
    z = math.copysign(z, m[1, 0] - m[0, 1])
    return x, y, z, w


def bone_elements(head: Sequence[float], eyes: Sequence[float]) -> bytes:
    """Size-prefixed OSC messages (bundle elements) for the Head, LeftEye and RightEye bones."""
    poses = (tuple(head), tuple(eyes[:3]), tuple(eyes[3:6]))
    out = []
    for name, pose in zip(BONES, poses):
        q = unity_quaternion(*[float(v) for v in pose])
        msg = osc.encode_message(BONE_POS, (name, 0.0, 0.0, 0.0) + q, "sfffffff")
        out.append(struct.pack(">i", len(msg)) + msg)
    return b"".join(out)
