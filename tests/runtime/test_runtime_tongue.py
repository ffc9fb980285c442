"""tongueOut end to end: a prediction's extra channel eases through the loop's frames to the rig's
tongueOut target, VMC, Live Link, VRChat and the recorded takes."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np
import pytest

from emo3d import schema
from emo3d.avatar.gltf import load_gltf
from runtime import record
from runtime.loop import AvatarLoop, LoopOptions
from runtime.preview import FaceView
from runtime.streaming import livelink, vmc, vrchat
from support.glb import face_rig
from support.rigs import CC4


@dataclass
class _Pred:
    vector: np.ndarray
    extras: dict = field(default_factory=dict)


class _TongueEngine:
    def predict(self, text):
        v = np.zeros(schema.N_MEDIAPIPE, np.float32)
        v[schema.MEDIAPIPE_INDEX["jawOpen"]] = 0.3
        return _Pred(v, {"tongueOut": 1.0} if "tongue" in text else {})


def _loop(ms=0.0):
    return AvatarLoop(_TongueEngine(), LoopOptions(transition_ms=ms, idle=False))


def test_frames_carry_the_eased_tongue_channel():
    loop = _loop(100.0)
    loop.step(0.0)
    loop.set_text("sticks out her tongue")
    mid = loop.step(0.05).extras["tongueOut"]
    end = loop.step(0.2).extras["tongueOut"]
    assert 0.0 < mid < 1.0 and end == 1.0
    loop.set_text("calm")
    assert "tongueOut" not in loop.step(1.0).extras           # eased back to 0 (absent = 0)
    loop.set_weights({"Tongue_Out": 0.7, "jawOpen": 0.2}, transition_ms=0)
    assert loop.step(2.0).extras["tongueOut"] == pytest.approx(0.7)
    loop.close()


def test_sinks_send_the_tongue():
    loop = _loop()
    loop.set_text("tongue out")
    frame = loop.step(0.0)
    loop.close()
    got = vmc.parse_frame_bundle(vmc.build_frame_bundle(frame.weights, extras=frame.extras))["blend"]
    assert got["TongueOut"] == 1.0 and got["JawOpen"] == pytest.approx(0.3)
    values = livelink.packet_for_frame(frame).values
    assert values[schema.LIVELINK_NAMES.index("TongueOut")] == 1.0
    from pythonosc.osc_bundle import OscBundle
    params = {m.address.rsplit("/", 1)[1]: m.params[0] for m in OscBundle(vrchat.build_bundle(frame.weights,
                                                                                             frame.extras))}
    assert params["TongueOut"] == 1.0


def test_rig_and_takes_show_the_tongue(tmp_path):
    rig = load_gltf(face_rig(tmp_path / "cc4.glb", names=CC4))
    loop = _loop()
    loop.set_text("tongue out")
    frames = [loop.step(i / 30) for i in range(4)]
    loop.close()
    view = FaceView(96, backend="rig", rig=rig)
    with_tongue = view.render(frames[-1].weights, frames[-1].head, frames[-1].extras).astype(int)
    without = view.render(frames[-1].weights, frames[-1].head).astype(int)
    assert (np.abs(with_tongue - without).sum(-1) > 40).sum() >= 4
    rec = record.FrameRecorder(tmp_path / "take.csv", 30)
    for f in frames:
        rec.send(f)
    rec.write()
    rows = list(csv.reader(io.StringIO((tmp_path / "take.csv").read_text())))
    assert float(rows[-1][rows[0].index("TongueOut")]) == 1.0
