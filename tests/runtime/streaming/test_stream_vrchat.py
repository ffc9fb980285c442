"""--vrchat: VRChat OSC avatar parameters (VRCFaceTracking v2 names) over real UDP on 127.0.0.1,
decoded with an independent OSC library (python-osc)."""
from __future__ import annotations

import argparse
import socket

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage

from emo3d import schema
from runtime import streaming
from runtime.streaming import vrchat
from support.standin import StandInLoop


def _weights(**kw) -> np.ndarray:
    w = np.zeros(schema.N_MEDIAPIPE, np.float32)
    for k, v in kw.items():
        w[schema.MEDIAPIPE_INDEX[k]] = v
    return w


def _decode(data: bytes) -> dict:
    assert OscBundle.dgram_is_bundle(data)
    b = OscBundle(data)
    out = {}
    for m in b:
        assert isinstance(m, OscMessage) and m.address.startswith("/avatar/parameters/v2/")
        assert len(m.params) == 1 and isinstance(m.params[0], float)
        out[m.address[len("/avatar/parameters/v2/"):]] = m.params[0]
    return out


@pytest.fixture
def rx():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    yield s
    s.close()


@pytest.mark.parametrize("shapes,expect", [
    ({}, {"JawOpen": 0.0, "EyeLidLeft": 0.75, "EyeLidRight": 0.75, "EyeLeftX": 0.0, "SmileFrownLeft": 0.0}),
    ({"jawOpen": 0.8}, {"JawOpen": 0.8}),
    ({"eyeBlinkLeft": 1.0}, {"EyeLidLeft": 0.0, "EyeLidRight": 0.75}),
    ({"eyeWideRight": 1.0}, {"EyeLidRight": 1.0}),
    ({"eyeLookOutLeft": 1.0, "eyeLookInRight": 1.0}, {"EyeLeftX": -1.0, "EyeRightX": -1.0, "EyeX": -1.0}),
    ({"eyeLookUpLeft": 0.5, "eyeLookUpRight": 0.5}, {"EyeLeftY": 0.5, "EyeY": 0.5}),
    ({"mouthSmileLeft": 1.0, "mouthFrownRight": 0.5}, {"SmileFrownLeft": 1.0, "SmileFrownRight": -0.5}),
    ({"jawLeft": 1.0, "mouthRight": 0.4}, {"JawX": -1.0, "MouthX": 0.4}),
    ({"browDownLeft": 0.6, "browInnerUp": 0.3}, {"BrowDownLeft": 0.6, "BrowInnerUp": 0.3,
                                                  "BrowExpressionLeft": pytest.approx(-0.3)}),
    ({"cheekPuff": 0.7}, {"CheekPuffLeft": 0.7, "CheekPuffRight": 0.7}),
])
def test_parameters_over_udp_decoded_by_python_osc(rx, shapes, expect):
    sink = vrchat.VRChatSink("127.0.0.1", rx.getsockname()[1])
    try:
        class F:
            weights = _weights(**shapes)
        sink.send(F())
        got = _decode(rx.recv(65536))
    finally:
        sink.close()
    assert set(got) == set(vrchat.PARAMETERS)
    for k, v in expect.items():
        assert got[k] == pytest.approx(v, abs=1e-6), k
    assert got == pytest.approx(vrchat.parameters(_weights(**shapes)), abs=1e-6)


def test_values_stay_in_range():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = vrchat.parameters(rng.random(schema.N_MEDIAPIPE).astype(np.float32) * 1.5 - 0.2)
        for k, v in p.items():
            lo = -1.0 if k in vrchat._SIGNED else 0.0
            assert lo <= v <= 1.0, (k, v)
    with pytest.raises(ValueError, match="52"):
        vrchat.build_bundle(np.zeros(51))


def test_attach_streams_loop_frames(rx):
    ap = argparse.ArgumentParser()
    streaming.add_arguments(ap)
    args = ap.parse_args(["--vrchat", f"127.0.0.1:{rx.getsockname()[1]}"])
    loop = StandInLoop()
    started = streaming.attach(args, loop)
    try:
        loop.set_weights({"jawOpen": 0.5, "Eye_Blink_R": 1.0})
        loop.step()
        got = _decode(rx.recv(65536))
    finally:
        for s in started:
            s.close()
    assert got["JawOpen"] == pytest.approx(0.5) and got["EyeLidRight"] == pytest.approx(0.0)
    assert loop.sinks == []
    assert ap.parse_args(["--vrchat"]).vrchat == "127.0.0.1:9000"
