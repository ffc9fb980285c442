"""VMC head/eye bones (/VMC/Ext/Bone/Pos, VSeeFace's convention): Unity-space local rotations of
Head, LeftEye, RightEye from the frame's radians, over real UDP, decoded with python-osc."""
from __future__ import annotations

import math
import socket

import numpy as np
import pytest
from pythonosc.osc_packet import OscPacket

from emo3d import schema
from runtime.loop import Frame
from runtime.streaming import vmc, vmc_bones


def _rotate(q, v):
    """Rotate v by unit quaternion q = (x, y, z, w) (the standard formula Unity also uses)."""
    x, y, z, w = q
    u = np.array([x, y, z])
    v = np.asarray(v, float)
    return 2 * u.dot(v) * u + (w * w - u.dot(u)) * v + 2 * w * np.cross(u, v)


@pytest.mark.parametrize("pose,forward", [
    ((0.0, 0.0, 0.0), (0, 0, 1)),
    ((0.3, 0.0, 0.0), (-math.sin(0.3), 0, math.cos(0.3))),      # +yaw: toward the subject's left = Unity -x
    ((0.0, 0.2, 0.0), (0, -math.sin(0.2), math.cos(0.2))),      # +pitch: looking down
])
def test_unity_quaternion_turns_forward_the_right_way(pose, forward):
    q = vmc_bones.unity_quaternion(*pose)
    assert sum(c * c for c in q) == pytest.approx(1.0)
    np.testing.assert_allclose(_rotate(q, (0, 0, 1)), forward, atol=1e-9)


def test_roll_tilts_toward_the_right_shoulder():
    # +roll: the top of the head moves toward the subject's right = Unity +x
    up = _rotate(vmc_bones.unity_quaternion(0.0, 0.0, 0.25), (0, 1, 0))
    assert up[0] > 0.2 and up[1] > 0.9


def test_bones_in_the_vmc_bundle_over_udp():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    sink = vmc.VmcSink(*rx.getsockname())
    w = np.zeros(schema.N_MEDIAPIPE, np.float32)
    frame = Frame(0, 1.0, w, (0.3, 0.0, 0.0), (0.0, 0.2, 0.0, 0.1, 0.0, 0.0))
    try:
        sink.send(frame)
        data = rx.recv(65536)
    finally:
        sink.close()
        rx.close()
    msgs = [m.message for m in OscPacket(data).messages]
    bones = {m.params[0]: m.params[1:] for m in msgs if m.address == "/VMC/Ext/Bone/Pos"}
    assert list(bones) == ["Head", "LeftEye", "RightEye"]
    for name, pose in (("Head", (0.3, 0, 0)), ("LeftEye", (0, 0.2, 0)), ("RightEye", (0.1, 0, 0))):
        assert bones[name][:3] == [0.0, 0.0, 0.0]
        np.testing.assert_allclose(bones[name][3:], vmc_bones.unity_quaternion(*pose), atol=1e-6)
    assert vmc.parse_frame_bundle(data)["bones"]["Head"][3:] == pytest.approx(bones["Head"][3:])
    assert "/VMC/Ext/Bone/Pos" not in [m.address for m in OscPacket(
        vmc.build_frame_bundle(w)).messages for m in [m.message]]   # no head given: no bones
