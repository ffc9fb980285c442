"""Filters, easing, the avatar loop and the preview pictures, against hand-computed values."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from emo3d.errors import InvalidInputError
from emo3d.schema import MEDIAPIPE_INDEX
from runtime.filters import OneEuroFilter, Transition, ease, smoothing_alpha
from emo3d.weights import normalize
from emo3d.pose import eyes_from_weights
from runtime.loop import AvatarLoop, Frame, LoopOptions

JAW, SMILE_L = MEDIAPIPE_INDEX["jawOpen"], MEDIAPIPE_INDEX["mouthSmileLeft"]


def vec(**kw) -> np.ndarray:
    v = np.zeros(52, np.float32)
    for k, x in kw.items():
        v[MEDIAPIPE_INDEX[k]] = x
    return v


# --- One Euro and easing (values computed by hand from the formulas) ------------------------
def test_smoothing_alpha_by_hand():
    # tau = 1 / (2 pi 1 Hz) = 0.1591549; alpha = 1 / (1 + tau / 0.1) = 0.3858695
    assert smoothing_alpha(1.0, 0.1) == pytest.approx(0.3858695450950375, abs=1e-12)


def test_one_euro_beta_zero_is_a_fixed_low_pass():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0, d_cutoff=1.0)
    assert f(0.0, 0.0) == pytest.approx(0.0)                     # first sample passes through
    assert f(1.0, 0.1) == pytest.approx(0.3858695450950375)       # 0 + a (1 - 0)
    assert f(1.0, 0.2) == pytest.approx(0.6228437843582239)       # a + a (1 - a)


def test_one_euro_beta_raises_cutoff_with_speed():
    f = OneEuroFilter(min_cutoff=1.0, beta=1.0, d_cutoff=1.0)
    f(np.array([0.0, 0.0]), 0.0)
    out = f(np.array([1.0, 0.0]), 0.1)
    # dx = 10, dx_hat = a * 10 = 3.8586955, fc = 4.8586955, alpha(fc) = 0.7532575
    np.testing.assert_allclose(out, [0.7532575181149229, 0.0], atol=1e-12)


def test_one_euro_same_timestamp_and_reset():
    f = OneEuroFilter()
    f(1.0, 0.0)
    assert f(5.0, 0.0) == pytest.approx(1.0)      # dt = 0: state kept
    f.reset()
    assert f(5.0, 1.0) == pytest.approx(5.0)
    with pytest.raises(InvalidInputError):
        f(np.nan, 2.0)
    with pytest.raises(InvalidInputError):
        OneEuroFilter(min_cutoff=0)


@pytest.mark.parametrize("name,t,expected", [
    ("linear", 0.3, 0.3), ("smoothstep", 0.25, 0.15625), ("ease_in_out_cubic", 0.25, 0.0625),
    ("ease_in_out_cubic", 0.75, 0.9375), ("ease_out_cubic", 0.5, 0.875), ("ease_in_out_sine", 0.5, 0.5),
    ("ease_in_out_sine", 1 / 3, 0.25), ("smoothstep", -1.0, 0.0), ("ease_in_out_cubic", 7.0, 1.0),
])
def test_easing_values(name, t, expected):
    assert ease(name, t) == pytest.approx(expected, abs=1e-12)


def test_unknown_easing():
    with pytest.raises(InvalidInputError, match="linear"):
        ease("bouncy", 0.5)


def test_transition_midpoints():
    tr = Transition(np.zeros(2, np.float32), np.array([1.0, 0.5], np.float32), t0=1.0, duration=0.4,
                    easing="ease_in_out_cubic")
    np.testing.assert_allclose(tr.value(1.1), [0.0625, 0.03125])
    np.testing.assert_allclose(tr.value(1.3), [0.9375, 0.46875])
    assert not tr.done(1.3) and tr.done(1.4)
    np.testing.assert_allclose(tr.value(9.0), [1.0, 0.5])


# --- the loop -------------------------------------------------------------------------------
def quiet(**kw) -> LoopOptions:
    return LoopOptions(idle=False, **kw)


def test_eased_transition_from_the_current_face():
    loop = AvatarLoop(None, quiet(transition_ms=400, easing="linear"))
    assert loop.step(0.0).weights.max() == 0
    loop.set_weights({"jawOpen": 0.8})
    assert loop.step(0.1).weights[JAW] == pytest.approx(0.2)
    assert loop.step(0.2).weights[JAW] == pytest.approx(0.4)
    loop.set_weights({"mouthSmileLeft": 1.0}, transition_ms=200)   # new prompt mid-way: starts from 0.4
    f = loop.step(0.3)
    assert f.weights[JAW] == pytest.approx(0.2) and f.weights[SMILE_L] == pytest.approx(0.5)
    f = loop.step(0.4)
    assert f.weights[JAW] == pytest.approx(0.0) and f.weights[SMILE_L] == pytest.approx(1.0)
    assert loop.step(1.0).weights[SMILE_L] == pytest.approx(1.0)


def test_default_step_advances_one_frame_and_cubic_easing():
    loop = AvatarLoop(None, quiet(fps=10, transition_ms=400))
    loop.step()
    loop.set_weights(vec(jawOpen=1.0))
    frames = [loop.step() for _ in range(4)]
    assert [f.index for f in frames] == [1, 2, 3, 4]
    np.testing.assert_allclose([f.t for f in frames], [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose([f.weights[JAW] for f in frames], [0.0625, 0.5, 0.9375, 1.0], atol=1e-6)


def test_intensity_global_and_per_prompt():
    loop = AvatarLoop(None, quiet(transition_ms=0, intensity=0.5))
    loop.set_weights({"jawOpen": 0.8, "mouthSmileLeft": 0.3})
    f = loop.step(0.0)
    assert f.weights[JAW] == pytest.approx(0.4) and f.weights[SMILE_L] == pytest.approx(0.15)
    loop.intensity = 1.0
    loop.set_weights({"jawOpen": 0.8}, intensity=2.0)
    assert loop.step(0.1).weights[JAW] == pytest.approx(1.0)          # clamped to [0, 1]


def test_set_text_uses_the_engine(tmp_path):
    from runtime.engine import Engine
    from support.tiny import make_tiny_model
    engine = Engine.create(model=make_tiny_model(tmp_path / "m"), device="cpu")
    loop = AvatarLoop(engine, quiet(transition_ms=0))
    pred = loop.set_text("happy smile")
    f = loop.step(0.0)
    np.testing.assert_allclose(f.weights, pred.vector, atol=1e-6)
    assert f.text == "happy smile"
    with pytest.raises(InvalidInputError):
        loop.set_text("   ")
    with pytest.raises(InvalidInputError, match="no engine"):
        AvatarLoop(None).set_text("happy")


def test_live_input_calibrated_and_filtered():
    loop = AvatarLoop(None, quiet(neutral={"jawOpen": 0.2}, one_euro_min_cutoff=1.0, one_euro_beta=0.0,
                                  live_timeout_s=60))
    loop.step(0.0)
    loop.set_live(vec(jawOpen=0.6), t=0.0)           # (0.6 - 0.2) / (1 - 0.2) = 0.5, first sample passes
    assert loop.step(0.0).weights[JAW] == pytest.approx(0.5)
    loop.set_live(vec(jawOpen=1.0), t=0.1)           # raw 1.0 -> low-passed: 0.5 + a (1 - 0.5)
    assert loop.step(0.1).weights[JAW] == pytest.approx(0.5 + 0.3858695450950375 * 0.5)


def test_live_mix_and_stale_live_eases_back():
    loop = AvatarLoop(None, quiet(live_mix=0.5, live_timeout_s=30, transition_ms=0))
    loop.set_weights({"jawOpen": 0.2})
    loop.step(0.0)
    loop.set_live({"jawOpen": 1.0}, head=(0.1, 0.0, 0.0))
    f = loop.step(0.1)
    assert f.weights[JAW] == pytest.approx(0.6) and f.head == (0.1, 0.0, 0.0)
    loop._live_wall -= 60                              # live input goes stale (last sample 60 s ago)
    assert loop.step(0.2).weights[JAW] == pytest.approx(0.2)
    assert loop.step(0.3).head == (0.0, 0.0, 0.0)


def test_calibrate_from_live():
    loop = AvatarLoop(None, quiet(live_timeout_s=60))
    with pytest.raises(InvalidInputError, match="no live input"):
        loop.calibrate()
    loop.set_live({"jawOpen": 0.3})
    n = loop.calibrate()
    assert n[JAW] == pytest.approx(0.3)
    loop.set_live({"jawOpen": 0.3})
    assert loop.step(0.0).weights[JAW] == pytest.approx(0.0)


def test_idle_blinks_and_sway():
    loop = AvatarLoop(None, LoopOptions(idle=True, seed=0, blink_every_s=(0.2, 0.2), blink_ms=100, sway_deg=2.0))
    frames = [loop.step(i / 60) for i in range(60)]
    blink = np.array([f.weights[MEDIAPIPE_INDEX["eyeBlinkLeft"]] for f in frames])
    assert blink.max() > 0.95 and blink.min() == 0.0
    np.testing.assert_array_equal(blink, [f.weights[MEDIAPIPE_INDEX["eyeBlinkRight"]] for f in frames])
    yaws = [f.head[0] for f in frames]
    assert max(abs(y) for y in yaws) <= math.radians(2.0) + 1e-9 and np.ptp(yaws) > 0
    assert all(0 <= f.weights.min() and f.weights.max() <= 1 for f in frames)


def test_set_idle_switches_blinks_and_sway_off_and_on():
    loop = AvatarLoop(None, LoopOptions(idle=True, seed=0, blink_every_s=(0.2, 0.2), blink_ms=100, sway_deg=2.0))
    loop.set_idle(False)
    quiet_frames = [loop.step(i / 60) for i in range(60)]
    assert all(f.head == (0.0, 0.0, 0.0) and f.weights[MEDIAPIPE_INDEX["eyeBlinkLeft"]] == 0.0 for f in quiet_frames)
    loop.set_idle(True)
    frames = [loop.step(1 + i / 60) for i in range(60)]
    assert np.ptp([f.head[0] for f in frames]) > 0 and max(f.weights[MEDIAPIPE_INDEX["eyeBlinkLeft"]] for f in frames) > 0.9
    assert loop.options.blink_ms == 100 and loop.options.idle is True
    with pytest.raises(InvalidInputError, match="true or false"):
        loop.set_idle("off")


def test_eyes_follow_look_shapes():
    ly, lp, lr, ry, rp, rr = eyes_from_weights(vec(eyeLookOutLeft=1.0, eyeLookInRight=1.0, eyeLookUpLeft=0.5))
    assert ly == pytest.approx(math.radians(30)) and ry == pytest.approx(math.radians(30))   # both look to the subject's left
    assert lp == pytest.approx(-math.radians(12.5)) and rp == 0.0   # looking up is -pitch (emo3d.pose: +pitch looks down)


def test_bad_weights():
    loop = AvatarLoop(None, quiet())
    with pytest.raises(InvalidInputError, match="NaN"):
        loop.set_weights(np.full(52, np.nan))
    with pytest.raises(InvalidInputError, match="jawOpen"):
        loop.set_weights({"jawOpn": 0.5})                 # close match offered
    with pytest.raises(InvalidInputError):
        loop.set_weights(np.zeros(10))
    with pytest.warns(UserWarning, match="clamped"):
        assert normalize({"jawOpen": 1.7}).warn().vector[JAW] == 1.0
    assert normalize(np.ones(51) * 0.5).vector[0] == 0.0        # 51 model-order values accepted


@pytest.mark.parametrize("kw", [{"fps": 0}, {"transition_ms": -1}, {"intensity": float("nan")}, {"live_mix": 2},
                                {"easing": "boing"}, {"blink_every_s": (3, 1)}, {"neutral": {"nope": 1}}])
def test_loop_options_validated(kw):
    with pytest.raises(InvalidInputError):
        LoopOptions(**kw)


class ListSink:
    def __init__(self, gate: threading.Event | None = None):
        self.frames: list = []
        self.gate = gate
        self.closed = False

    def send(self, frame: Frame) -> None:
        if self.gate is not None:
            self.gate.wait()
        self.frames.append(frame.index)

    def close(self) -> None:
        self.closed = True


def test_sinks_get_every_frame_and_a_blocked_sink_does_not_block_the_loop():
    gate = threading.Event()
    fast, blocked = ListSink(), ListSink(gate)

    def broken(frame):
        raise RuntimeError("boom")

    loop = AvatarLoop(None, quiet())
    for s in (fast, blocked, broken):
        loop.add_sink(s)
    for i in range(30):                      # would hang here if a sink could block the loop
        loop.step(i / 60)
    assert blocked.frames == []
    gate.set()
    loop.close()
    assert fast.frames == list(range(30)) and blocked.frames == list(range(30))
    assert fast.closed and blocked.closed


def test_remove_sink_and_run_for_a_duration():
    sink = ListSink()
    loop = AvatarLoop(None, LoopOptions(fps=100, seed=1))
    loop.add_sink(sink)
    stats = loop.run(duration=0.1)
    loop.remove_sink(sink)
    assert sink.closed and stats.frames >= 1 and stats.frames + stats.skipped >= 10
    assert sink.frames == list(range(stats.frames))
    assert loop.sinks == []


def test_start_stop_background_thread():
    loop = AvatarLoop(None, LoopOptions(fps=200))
    loop.start()
    deadline = time.monotonic() + 5
    while loop.last_frame is None and time.monotonic() < deadline:
        time.sleep(0.01)
    loop.close()
    assert loop.last_frame is not None and loop._thread is None


# --- preview pictures ------------------------------------------------------------------------
def test_sketch_face_and_panel():
    from runtime.preview import compose, sketch_face, top_blendshapes
    neutral = sketch_face(np.zeros(52, np.float32), 128)
    smile = sketch_face(vec(mouthSmileLeft=1, mouthSmileRight=1, jawOpen=0.6), 128)
    assert neutral.shape == (128, 128, 3) and neutral.dtype == np.uint8
    assert np.abs(neutral.astype(int) - smile).sum() > 0
    blink_l = sketch_face(vec(eyeBlinkLeft=1.0), 128)
    diff = np.abs(neutral.astype(int) - blink_l).sum(axis=(0, 2))
    assert diff[64:].sum() > diff[:64].sum()          # the subject's left eye is on the image's right
    assert top_blendshapes(vec(jawOpen=0.9, browInnerUp=0.4), 2) == [("jawOpen", pytest.approx(0.9)),
                                                                      ("browInnerUp", pytest.approx(0.4))]
    panel = compose(smile, vec(jawOpen=0.6), text="x")
    assert panel.shape == (128, 128 + 220, 3)


def test_write_clip(tmp_path):
    from PIL import Image
    from runtime.preview import write_clip
    imgs = [np.full((32, 48, 3), i * 20, np.uint8) for i in range(7)]
    frames_dir, gif = write_clip(imgs, tmp_path, "clip", fps=60, gif_fps=30)
    assert len(list(frames_dir.glob("frame_*.png"))) == 7
    with Image.open(gif) as g:
        assert g.n_frames == 4                          # frames 0, 2, 4, 6
    with pytest.raises(InvalidInputError):
        write_clip([], tmp_path, "empty")
