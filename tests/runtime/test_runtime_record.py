"""--script and --record: timed prompts, and takes written as Live Link Face CSV, JSON lines and a glTF
morph-weight animation (read back by our loader and by pygltflib, an independent parser)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import warnings

import numpy as np
import pytest

from emo3d import schema
from emo3d.avatar.gltf import load_gltf
from emo3d.errors import InvalidInputError
from runtime import record
from runtime.loop import Frame
from support.glb import face_rig
from support.rigs import CC4
from support.tiny import make_tiny_model

START = dt.datetime(2026, 1, 2, 13, 14, 15, 0)


def _frames(n=20, dt_s=1 / 60):
    out = []
    for i in range(n):
        w = np.zeros(schema.N_MEDIAPIPE, np.float32)
        w[schema.MEDIAPIPE_INDEX["jawOpen"]] = i / (n - 1)
        w[schema.MEDIAPIPE_INDEX["mouthSmileLeft"]] = 0.5
        out.append(Frame(i, 100.0 + i * dt_s, w, (0.1, -0.2, 0.0), (0.01, 0.0, 0.0, 0.02, 0.0, 0.0), "t"))
    return out


def _recorder(path, frames, fps=30.0, **kw):
    rec = record.FrameRecorder(path, fps, **kw)
    rec.start = START
    for f in frames:
        rec.send(f)
    return rec


def test_parse_script_and_its_errors():
    cues = record.parse_script("# a take\n0.0 calm\n\n1.5 furious scowl\n1.5  then a gasp \n")
    assert cues == [(0.0, "calm"), (1.5, "furious scowl"), (1.5, "then a gasp")]
    for bad, msg in [("soon calm", "line 1: 'soon' is not a time"), ("1 a\n0.5 b", "line 2: time 0.5 is before"),
                     ("-1 a", "the time (seconds) must be a number >= 0"), ("2", "no text"), ("# only\n", "no prompts")]:
        with pytest.raises(InvalidInputError, match=re.escape(msg)):
            record.parse_script(bad)


@pytest.mark.parametrize("sec,tc", [(0.0, "13:14:15:00.000"), (0.5, "13:14:15:15.000"),
                                    (1.25, "13:14:16:07.500"), (45.0, "13:15:00:00.000")])
def test_timecode(sec, tc):
    assert record.timecode(START, sec, 30.0) == tc


def test_live_link_face_csv(tmp_path):
    rec = _recorder(tmp_path / "take.csv", _frames())
    assert rec.write() == tmp_path / "take.csv"
    rows = list(csv.reader(io.StringIO((tmp_path / "take.csv").read_text())))
    assert rows[0] == ["Timecode", "BlendShapeCount"] + list(schema.LIVELINK_NAMES)
    assert len(rows[0]) == 2 + 61 and rows[0][2] == "EyeBlinkLeft" and rows[0][-1] == "RightEyeRoll"
    body = rows[1:]
    assert len(body) == 10                                   # 19/60 s at 30 fps: ticks 0..9
    assert [r[0] for r in body[:3]] == ["13:14:15:00.000", "13:14:15:01.000", "13:14:15:02.000"]
    jaw = rows[0].index("JawOpen")
    vals = np.array([[float(x) for x in r[1:]] for r in body])
    assert (vals[:, 0] == 61).all()
    np.testing.assert_allclose(vals[:, jaw - 1], [np.floor(k * 2) / 19 for k in range(10)], atol=1e-5)
    assert vals[0, rows[0].index("MouthSmileLeft") - 1] == 0.5 and vals[0, rows[0].index("HeadPitch") - 1] == -0.2


def test_json_lines(tmp_path):
    rec = _recorder(tmp_path / "take.jsonl", _frames(), fps=60)
    rec.write()
    lines = [json.loads(x) for x in (tmp_path / "take.jsonl").read_text().splitlines()]
    assert len(lines) == 20 and lines[3]["frame"] == 3 and lines[3]["t"] == pytest.approx(0.05)
    assert set(lines[0]["weights"]) == set(schema.ARKIT_NAMES)
    assert lines[19]["weights"]["jawOpen"] == 1.0 and lines[0]["head"] == [0.1, -0.2, 0.0]


def test_glb_animation_loads_back(tmp_path):
    rig_path = face_rig(tmp_path / "cc4.glb", names=CC4, multi_material=True)
    rec = _recorder(tmp_path / "anim.glb", _frames(), rig_path=rig_path)
    rec.write()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rig = load_gltf(tmp_path / "anim.glb")               # our loader reads the animated file
    assert "jawOpen" in rig.target_names
    import pygltflib
    g = pygltflib.GLTF2.load_binary(str(tmp_path / "anim.glb"))
    assert len(g.animations) == 1
    anim = g.animations[0]
    ch = anim.channels[0]
    assert ch.target.path == "weights" and g.nodes[ch.target.node].mesh is not None
    blob = g.binary_blob()

    def read(ai):
        a = g.accessors[ai]
        v = g.bufferViews[a.bufferView]
        return np.frombuffer(blob, np.float32, a.count, v.byteOffset + (a.byteOffset or 0))

    times = read(anim.samplers[ch.sampler].input)
    np.testing.assert_allclose(times, np.arange(10) / 30, atol=1e-6)
    names = g.meshes[g.nodes[ch.target.node].mesh].extras["targetNames"]
    out = read(anim.samplers[ch.sampler].output).reshape(10, len(names))
    np.testing.assert_allclose(out[:, names.index("Jaw_Open")], [np.floor(k * 2) / 19 for k in range(10)], atol=1e-6)
    assert (out[:, names.index("Mouth_Smile_L")] == 0.5).all() and (out[:, names.index("Mouth_Smile_R")] == 0).all()


def test_glb_of_a_rig_without_a_file_uses_the_exporter(tmp_path):
    rig = load_gltf(face_rig(tmp_path / "r.glb"))
    rec = _recorder(tmp_path / "a.glb", _frames(), rig=rig)
    rec.write()
    import pygltflib
    g = pygltflib.GLTF2.load_binary(str(tmp_path / "a.glb"))
    assert g.animations and load_gltf(tmp_path / "a.glb").n_targets == rig.n_targets


def test_bad_record_path_and_nothing_recorded(tmp_path):
    with pytest.raises(InvalidInputError, match=r"\.csv, \.jsonl, \.glb"):
        record.FrameRecorder(tmp_path / "x.mp4")
    rec = record.FrameRecorder(tmp_path / "empty.csv")
    assert rec.write() is None and not (tmp_path / "empty.csv").exists()


def test_emo3d_run_script_and_record(tmp_path, monkeypatch, capsys):
    from runtime import cli
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    model = make_tiny_model(tmp_path / "model")
    script = tmp_path / "take.txt"
    script.write_text("0.0 calm\n0.4 furious scowl\n")
    out = tmp_path / "take.csv"
    rc = cli.main(["--headless", "--model", str(model), "--script", str(script), "--record", str(out),
                   "--transition-ms", "150", "--hold-ms", "150", "--no-idle", "-q"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "recorded" in err
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert 18 <= len(rows) - 1 <= 40                         # ~0.7 s at 30 fps
    vals = np.array([[float(x) for x in r[2:]] for r in rows[1:]])
    assert np.abs(vals[-1] - vals[len(vals) // 4]).max() > 1e-3   # the second prompt changed the face


@pytest.mark.parametrize("kw", [{"skinned": True, "body": True, "multi_material": True},
                                {"meshopt": True, "names": CC4}, {"quantized": True, "sparse": True}])
def test_recorded_animation_passes_the_khronos_validator(tmp_path, kw):
    from support.gltf_validator import validate
    rig_path = face_rig(tmp_path / "rig.glb", **kw)
    before = validate(rig_path)
    rec = _recorder(tmp_path / "anim.glb", _frames(), rig_path=rig_path)
    rec.write()
    after = validate(tmp_path / "anim.glb")
    assert after["numErrors"] == 0 and after["numWarnings"] == before["numWarnings"], after
