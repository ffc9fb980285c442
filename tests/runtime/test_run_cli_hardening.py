"""Issue #17, ``emo3d-run``: no tracebacks, no hangs, every refusal names the flag; a fuzz of >= 1,000
argument vectors run in-process (one shared tiny engine) -> only exit codes 0/1/2, never an exception."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support.assets import require_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emo3d import schema
from emo3d.errors import InvalidInputError
from runtime import cli
from runtime.engine import Engine, EngineOptions
from support.tiny import make_tiny_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def shared_engine(tiny):
    return Engine.create(EngineOptions(model=tiny, device="cpu"))


@pytest.fixture
def fast_engine(monkeypatch, shared_engine):
    """Engine.create returns the one engine built for the module (argument checks still run first)."""
    monkeypatch.setattr(Engine, "create", classmethod(lambda cls, options=None, **kw: shared_engine))
    return shared_engine


def _run(argv, stdin: bytes = b"", timeout=120):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests"),
                                                        os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "runtime.cli", *argv], input=stdin, capture_output=True,
                          timeout=timeout, env=env)


def _main(capsys, argv, stdin: bytes = b"", monkeypatch=None):
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    try:
        rc = cli.main(argv)
    except SystemExit as e:       # argparse's own usage errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


# --- tracebacks ------------------------------------------------------------------------------------------------
def test_non_utf8_argument_is_refused_not_a_traceback(tiny):
    r = _run(["--json", "--model", str(tiny), b"\xff\xfe angry"])
    assert r.returncode == 2 and b"Traceback" not in r.stderr
    assert b"argument 4" in r.stderr and b"not valid UTF-8" in r.stderr


@pytest.mark.parametrize("flag,value,words", [
    ("--vmc", "no-such-host.invalid:39539", ["--vmc", "cannot resolve host"]),
    ("--vmc", "[::1", ["--vmc", "missing its ']'"]),
    ("--livelink", "127.0.0.1:0", ["--livelink", "port 0"]),
    ("--serve", "127.0.0.1:0", ["--max-message"]),            # with --max-message 4294967296 below
])
def test_bad_stream_destinations_are_named(capsys, tmp_path, fast_engine, flag, value, words):
    extra = ["--max-message", "4294967296"] if flag == "--serve" else []
    rc, out, err = _main(capsys, ["--headless", "--out", str(tmp_path), flag, value, *extra, "furious scowl"])
    assert rc == 2 and "Traceback" not in err
    for w in words:
        assert w in err, err


# --- values named by their flag --------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,words", [
    (["--threads", "100000"], ["--threads must be an integer in [0, ", "per CPU core"]),
    (["--threads", "-1"], ["--threads"]),
    (["--intensity", "9"], ["--intensity must be a number in [0, 4], got 9.0"]),
    (["--intensity", "nan"], ["--intensity"]),
    (["--transition-ms", "-5"], ["--transition-ms"]),
    (["--fps", "0"], ["--fps"]),
    (["--hold-ms", "-1"], ["--hold-ms"]),
    (["--hold-ms", "inf"], ["--hold-ms"]),
    (["--duration", "nan"], ["--duration"]),
    (["--size", "5"], ["--size must be an integer in [32, 4096], got 5"]),
    (["--record-fps", "0"], ["--record-fps must be a number in [1, 240], got 0.0"]),
    (["--duration", "0"], ["--duration (seconds) must be a number > 0, got 0.0"]),
])
def test_bad_values_name_the_flag(capsys, fast_engine, argv, words):
    for mode in (["--json"], ["--headless"]):
        rc, out, err = _main(capsys, [*mode, *argv, "furious scowl"])
        assert rc == 2 and out == "", err
        for w in words:
            assert w in err
        assert "Options" not in err                      # never LoopOptions.x / EngineOptions.x


def test_flag_message_maps_option_classes():
    e = InvalidInputError("LoopOptions.transition_ms must be a number in [0, 60000], got -1")
    assert cli.flag_message(e) == "--transition-ms must be a number in [0, 60000], got -1"
    assert cli.flag_message(InvalidInputError("EngineOptions.threads bad")) == "--threads bad"


# --- hangs -----------------------------------------------------------------------------------------------------
def test_headless_duration_wins_over_a_huge_hold(capsys, tmp_path, fast_engine):
    t0 = time.monotonic()
    rc, out, err = _main(capsys, ["--headless", "--no-idle", "--duration", "1.5", "--hold-ms", "1e7",
                                  "--record-fps", "10", "--size", "64", "--out", str(tmp_path), "furious scowl"])
    elapsed = time.monotonic() - t0
    assert rc == 0, err
    assert elapsed < 1.5 + 8, elapsed                         # was: runs for 10,000 s
    assert "wrote" in out and list(tmp_path.glob("*.gif"))   # the clip so far is written


def test_headless_webcam_file_writes_summarises_and_exits(tmp_path, tiny, face_landmarker):
    cv2 = require_module("cv2", "OpenCV: opencv-contrib-python, a MediaPipe dependency")
    from emo3d import avatar
    w = np.zeros(schema.N_MEDIAPIPE, np.float32)
    w[schema.MEDIAPIPE_INDEX["jawOpen"]] = 1.0
    img = avatar.render(w, size=192)
    video = tmp_path / "jaw.avi"
    wr = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, img.shape[1::-1])
    for _ in range(20):
        wr.write(np.ascontiguousarray(img[:, :, ::-1]))
    wr.release()
    out = tmp_path / "out"
    t0 = time.monotonic()
    r = _run(["--headless", "--no-idle", "--webcam", str(video), "--calibrate", "0", "--model", str(tiny),
              "--size", "64", "--record-fps", "10", "--out", str(out)], timeout=240)
    text = r.stdout.decode()
    assert r.returncode == 0, text + r.stderr.decode()[-2000:]
    assert "webcam jaw.avi: 20 frames read" in text and "until end of file" in text and "a face in" in text
    assert list(out.glob("*webcam*.gif")) and list(out.glob("*webcam*/frame_0000.png"))
    assert time.monotonic() - t0 < 200


# --- stdin -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [["--json"], ["--headless", "--transition-ms", "0", "--hold-ms", "30"]])
def test_stdin_with_nothing_usable_exits_nonzero(capsys, monkeypatch, tmp_path, fast_engine, mode):
    rc, out, err = _main(capsys, [*mode, "--stdin", "--out", str(tmp_path)], b"\xff\xfe\n\xc3\x28\n\n",
                         monkeypatch)
    assert rc == 2 and "not valid UTF-8" in err and "no prompt" in err


@pytest.mark.parametrize("mode", [["--json"], ["--headless", "--transition-ms", "0", "--hold-ms", "30",
                                               "--size", "64", "--record-fps", "10"]])
def test_q_line_stops_in_every_mode(capsys, monkeypatch, tmp_path, fast_engine, mode):
    rc, out, err = _main(capsys, [*mode, "--stdin", "--out", str(tmp_path)],
                         b"happy smile\nq\nsad frown\n", monkeypatch)
    assert rc == 0, err
    if mode == ["--json"]:
        assert len(out.strip().splitlines()) == 1
    else:
        assert out.count("wrote") == 1 and "sad frown" not in out


def test_intensity_applies_to_json(capsys, fast_engine):
    outs = {}
    for k in ("1", "0.5", "0"):
        rc, out, err = _main(capsys, ["--json", "--intensity", k, "furious scowl"])
        assert rc == 0, err
        outs[k] = json.loads(out)
    names = [n for n in schema.MEDIAPIPE_NAMES if n != "_neutral"]
    full, half, zero = (np.array([outs[k][n] for n in names]) for k in ("1", "0.5", "0"))
    assert full.max() > 0.05 and np.allclose(half, full * 0.5, atol=1e-6) and not zero.any()
    assert outs["0"]["_neutral"] == outs["1"]["_neutral"]


# --- fuzz ------------------------------------------------------------------------------------------------------
N_ARGV = 1000
_values = st.one_of(st.sampled_from(["0", "1", "-1", "1e9", "nan", "inf", "-inf", "4.5", "abc", "", "0x10",
                                     "1e400", "100000", "2", "0.5"]),
                    st.integers(-10 ** 6, 10 ** 6).map(str), st.text(max_size=8))
_valued = st.sampled_from(["--threads", "--intensity", "--transition-ms", "--hold-ms", "--size", "--record-fps",
                           "--fps", "--top", "--duration", "--device", "--model"])
_plain = st.sampled_from(["--json", "--strict-device", "--no-idle", "-q", "--int8", "--bogus", "-x", "--", "q"])
_words = st.one_of(st.sampled_from(["furious scowl", "happy", "   ", "\udcff\udcfe angry", "a" * 3000, "😠"]),
                   st.text(max_size=20))
_argv = st.lists(st.one_of(st.tuples(_valued, _values).map(list), _plain.map(lambda f: [f]),
                           _words.map(lambda w: [w])), max_size=6).map(lambda parts: sum(parts, []))


@settings(max_examples=N_ARGV, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(argv=_argv, stdin=st.one_of(st.just(b""), st.binary(max_size=40)), use_stdin=st.booleans())
def test_fuzz_argument_vectors(fast_engine, tiny, argv, stdin, use_stdin):
    argv = ["--json", *(["--stdin"] if use_stdin else []), *argv]
    argv = [a if a != "--model" else a for a in argv]
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr, sys.stdin = out, err, io.TextIOWrapper(io.BytesIO(stdin))
    try:
        try:
            rc = cli.main(argv)
        except SystemExit as e:                               # argparse: usage + "error: argument ..."
            rc = e.code
            assert rc in (0, 2) and ("error: argument" in err.getvalue() or "error: unrecognized" in
                                     err.getvalue() or "error: the following" in err.getvalue() or rc == 0)
    finally:
        sys.stdout, sys.stderr, sys.stdin = old
    assert rc in (0, 1, 2), (argv, rc)
    assert "Traceback" not in err.getvalue()
    if rc != 0:
        assert "error" in err.getvalue(), (argv, err.getvalue())
    for line in out.getvalue().splitlines():
        if line.startswith("{"):
            assert len(json.loads(line)) == schema.N_MEDIAPIPE
