"""Webcam path: calibration, --mix rule, hold-and-fade, capture from a video file (a stub scorer on a
synthetic clip), the tracker driving a loop, and MediaPipe on a clip rendered from the default avatar."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
from support.assets import require_module

from emo3d import schema
from emo3d.errors import InvalidInputError
from runtime import streaming
from support.standin import StandInLoop
from runtime.webcam import (CAMERA_REGION, TEXT_REGION, LiveFace, WebcamOptions, WebcamTracker, mix,
                            track_video)

JAW = schema.MEDIAPIPE_INDEX["jawOpen"]
BROW = schema.MEDIAPIPE_INDEX["browDownLeft"]
BLINK = schema.MEDIAPIPE_INDEX["eyeBlinkLeft"]


def vec(**kw):
    v = np.zeros(schema.N_MEDIAPIPE, np.float32)
    for k, x in kw.items():
        v[schema.MEDIAPIPE_INDEX[k]] = x
    return v


def test_mix_rule_regions():
    assert set(TEXT_REGION) | set(CAMERA_REGION) == set(schema.MODEL_NAMES)
    assert not set(TEXT_REGION) & set(CAMERA_REGION)
    assert "browDownLeft" in TEXT_REGION and "noseSneerRight" in TEXT_REGION and "eyeSquintLeft" in TEXT_REGION
    assert "jawOpen" in CAMERA_REGION and "eyeBlinkLeft" in CAMERA_REGION and "mouthSmileLeft" in CAMERA_REGION
    tracked = vec(jawOpen=0.7, browDownLeft=0.1, eyeBlinkLeft=0.9)
    text = vec(jawOpen=0.0, browDownLeft=0.8, mouthFrownLeft=0.6)
    out = mix(tracked, text)
    assert out[JAW] == pytest.approx(0.7) and out[BROW] == pytest.approx(0.8) and out[BLINK] == pytest.approx(0.9)
    assert out[schema.MEDIAPIPE_INDEX["mouthFrownLeft"]] == 0.0  # mouth stays the camera's


def test_calibration_subtracts_resting_face():
    face = LiveFace(calibrate_frames=3)
    rest = vec(jawOpen=0.2, browDownLeft=0.1)
    for i in range(3):
        face.update(rest, i / 30)
    assert face.calibrated and face.neutral[JAW] == pytest.approx(0.2)
    assert face.update(rest, 0.2)[JAW] == pytest.approx(0.0)
    assert face.update(vec(jawOpen=0.6), 0.3)[JAW] == pytest.approx(0.5)   # (0.6-0.2)/(1-0.2)
    assert face.update(vec(jawOpen=1.0), 0.4)[JAW] == pytest.approx(1.0)


def test_no_face_holds_then_fades():
    face = LiveFace(calibrate_frames=0, hold_s=0.5, fade_s=1.0)
    face.update(vec(jawOpen=0.8), 0.0)
    assert face.update(None, 0.4)[JAW] == pytest.approx(0.8)    # held
    assert face.update(None, 1.0)[JAW] == pytest.approx(0.4)    # half faded
    assert face.update(None, 1.6)[JAW] == 0.0                   # neutral
    assert face.update(vec(jawOpen=0.3), 1.7)[JAW] == pytest.approx(0.3)
    assert LiveFace(0).update(None, 0.0).sum() == 0.0           # no face ever: neutral


@pytest.mark.parametrize("kw,match", [
    (dict(source="/no/such/file.mp4"), "video file"), (dict(source=-1), "camera index"),
    (dict(source=1.5), "camera index"), (dict(calibrate_frames=-2), "calibrate_frames"),
    (dict(hold_s=float("nan")), "hold_s"), (dict(mix_text="  "), "empty"),
    (dict(mix_vector=np.zeros(10)), "52"), (dict(mix_vector=np.full(52, np.nan)), "NaN"),
])
def test_options_validated(kw, match):
    with pytest.raises(InvalidInputError, match=match):
        WebcamOptions(**kw)


def test_bad_scores_rejected():
    with pytest.raises(InvalidInputError, match="52"):
        LiveFace(0).update(np.zeros(7), 0.0)


# --- capture from a video file (stub scorer: brightness -> jawOpen, black -> no face) ---------
class BrightnessScorer:
    def __init__(self):
        self.closed = False

    def scores(self, rgb):
        m = float(rgb.mean()) / 255.0
        return None if m < 0.05 else vec(jawOpen=m, browDownLeft=0.1)

    def close(self):
        self.closed = True


def _write_video(path, frames, fps=30.0):
    cv2 = require_module("cv2", "OpenCV: opencv-contrib-python, a MediaPipe dependency")
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert wr.isOpened()
    for f in frames:
        wr.write(np.ascontiguousarray(f[:, :, ::-1]))
    wr.release()


@pytest.fixture
def synthetic_clip(tmp_path):
    levels = [0.3] * 10 + list(np.linspace(0.3, 0.9, 10)) + [0.0] * 30   # rest, open, no face
    frames = [np.full((48, 64, 3), int(round(l * 255)), np.uint8) for l in levels]
    p = tmp_path / "clip.avi"
    _write_video(p, frames)
    return p, np.array(levels)


def test_track_video_follows_scores_and_fades(synthetic_clip):
    path, levels = synthetic_clip
    scorer = BrightnessScorer()
    res = track_video(path, scorer=scorer, face=LiveFace(0, hold_s=0.2, fade_s=0.5))
    assert res.scores.shape == (50, 52) and res.fps == pytest.approx(30.0)
    assert res.face.tolist() == [True] * 20 + [False] * 30
    assert np.allclose(res.scores[:20, JAW], levels[:20], atol=0.03)
    shown = res.shown[:, JAW]
    assert shown[20] == pytest.approx(shown[19])          # held right after the face is lost
    assert shown[26] < shown[19] and shown[-1] == 0.0      # then fades to neutral


def test_tracker_drives_loop_with_calibration_and_mix(synthetic_clip):
    path, levels = synthetic_clip
    loop = StandInLoop()
    text = vec(browDownLeft=0.9, jawOpen=0.0)
    scorer = BrightnessScorer()
    tr = WebcamTracker(loop, WebcamOptions(source=str(path), calibrate_frames=5, mix_vector=text, realtime=False),
                       scorer_factory=lambda: scorer).start()
    assert tr.done.wait(30)
    tr.close()
    assert tr.stats.error is None and tr.stats.frames == 50 and tr.stats.faces == 20 and tr.stats.calibrated
    live = np.stack(loop.live)
    assert len(live) == 50
    assert np.allclose(live[5:10, JAW], 0.0, atol=0.03)   # resting face after calibration reads 0
    assert live[19, JAW] > 0.7                             # (0.9 - 0.3) / 0.7
    assert np.allclose(live[:20, BROW], 0.9)               # the brows come from the --mix text
    assert scorer.closed


def test_tracker_mix_needs_engine(synthetic_clip):
    path, _ = synthetic_clip
    with pytest.raises(InvalidInputError, match="engine"):
        WebcamTracker(StandInLoop(), WebcamOptions(source=str(path), mix_text="furious scowl"),
                      scorer_factory=BrightnessScorer).start()


def test_tracker_mix_text_uses_engine(synthetic_clip):
    path, _ = synthetic_clip

    class Engine:
        def predict(self, text):
            return type("P", (), {"vector": vec(browDownLeft=0.66)})()
    loop = StandInLoop()
    loop.engine = Engine()
    tr = WebcamTracker(loop, WebcamOptions(source=str(path), calibrate_frames=0, mix_text="furious scowl",
                                           realtime=False), scorer_factory=BrightnessScorer).start()
    assert tr.done.wait(30)
    tr.close()
    assert np.allclose(np.stack(loop.live)[:20, BROW], 0.66)


def test_attach_webcam_from_args(synthetic_clip, monkeypatch):
    path, _ = synthetic_clip
    import runtime.webcam as wc
    monkeypatch.setattr(wc, "default_scorer", BrightnessScorer)
    p = argparse.ArgumentParser()
    streaming.add_arguments(p)
    args = p.parse_args(["--webcam", str(path), "--calibrate", "0"])
    loop = StandInLoop()
    started = streaming.attach(args, loop)
    try:
        assert isinstance(started[0], WebcamTracker)
        assert started[0].done.wait(30)
    finally:
        for s in started:
            s.close()
    assert len(loop.live) == 50


# --- MediaPipe on a clip rendered from the default avatar -------------------------------------
def _avatar_renderer():
    from emo3d import avatar
    return lambda w, pose=(0, 0, 0): avatar.render(w, size=256, pose=pose)


def test_webcam_tracks_rendered_avatar(tmp_path, face_landmarker):
    render = _avatar_renderer()
    from runtime.webcam import default_scorer
    scorer = default_scorer()
    jaw = np.concatenate([np.zeros(6), np.linspace(0, 1, 6), np.ones(6), np.linspace(1, 0, 6), np.zeros(4)])
    frames = [render(vec(jawOpen=j)) for j in jaw] + [np.zeros((256, 256, 3), np.uint8)] * 4
    p = tmp_path / "avatar.avi"
    _write_video(p, frames, fps=30.0)
    res = track_video(p, scorer=scorer)
    scorer.close()
    n = len(jaw)
    assert res.face[:n].all() and not res.face[n:].any()
    tracked = res.scores[:n, JAW]
    closed, opened = tracked[jaw == 0].mean(), tracked[jaw == 1].mean()
    assert opened > closed + 0.2, (closed, opened)        # jawOpen rises where the rendered jaw opens
    assert np.corrcoef(tracked, jaw)[0, 1] > 0.8


def test_webcam_cli_writes_plot(synthetic_clip, monkeypatch, tmp_path, capsys):
    import runtime.webcam as wc
    from runtime import webcam_cli
    path, _ = synthetic_clip
    monkeypatch.setattr(wc, "default_scorer", BrightnessScorer)
    png = tmp_path / "plot.png"
    assert webcam_cli.main([str(path), "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "50 frames" in out and "face in 40%" in out and "jawOpen" in out
    assert webcam_cli.main([str(tmp_path / "missing.mp4")]) == 2


def test_head_calibrated_held_and_faded():
    face = LiveFace(calibrate_frames=2, hold_s=0.5, fade_s=1.0)
    face.update(vec(), 0.0, head=(0.0, 0.1, 0.0))
    face.update(vec(), 0.1, head=(0.0, 0.1, 0.0))                 # resting pitch offset 0.1
    face.update(vec(), 0.2, head=(0.2, 0.1, -0.1))
    assert face.head == pytest.approx((0.2, 0.0, -0.1))
    face.update(None, 0.6)
    assert face.head == pytest.approx((0.2, 0.0, -0.1))           # held
    face.update(None, 1.2)
    assert face.head == pytest.approx((0.1, 0.0, -0.05))          # fading
    face.update(vec(), 1.3, head=(np.nan, 0, 0))
    assert face.head is None                                       # non-finite pose ignored


def test_head_pose_from_rendered_avatar(tmp_path, face_landmarker):
    """Rendered with known (yaw, pitch, roll), the tracked head pose follows: signs and size."""
    render = _avatar_renderer()
    from runtime.webcam import default_scorer
    scorer = default_scorer()
    poses = [(0, 0, 0), (15, 0, 0), (-15, 0, 0), (0, 10, 0), (0, 0, 15), (0, 0, -15)]
    frames = [render(vec(), pose=p) for p in poses for _ in range(2)]
    p = tmp_path / "poses.avi"
    _write_video(p, frames)
    res = track_video(p, scorer=scorer)
    scorer.close()
    assert res.face.all()
    est = np.degrees(res.head[1::2] - res.head[1])   # relative to the frontal frame (removes the resting offset)
    want = np.array(poses, dtype=float)
    assert np.abs(est - want).max() < 5.0, np.round(est, 1)
