"""``emo3d-run --serve --vmc`` end to end in a subprocess: a real engine (the runtime's tiny ONNX
model, built in-test) and AvatarLoop, a real client on 127.0.0.1 and a VMC receiver."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from typing import Iterator

import pytest
from support.assets import require_module

from runtime.streaming import vmc
from runtime.streaming.server import encode_message, read_message


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serving(tmp_path, model, *extra: str, timeout_s: float = 120.0) -> Iterator[socket.socket]:
    """Run `emo3d-run --serve` (headless, on ``model``, plus ``extra`` flags) as a child process and yield a
    client socket connected once it listens; fail if the child exits first. The child is always stopped."""
    port = _free_tcp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "--headless", "--no-idle", "--out", str(tmp_path / "out"),
         "--duration", "60", "--model", str(model), "--serve", f"127.0.0.1:{port}", *extra, "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"emo3d-run exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("emo3d-run --serve never started listening")
                time.sleep(0.3)
        with sock:
            yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


def read_after(sock, req):
    sock.sendall(encode_message(req))
    while True:
        m = read_message(sock)
        if m["type"] != "frame":
            return m


@pytest.mark.slow
def test_emo3d_run_serve_and_vmc(tmp_path):
    from support import tiny
    model = tmp_path / "tiny"
    tiny.make_tiny_model(model, emotions=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(10)
        with _serving(tmp_path, model, "--vmc", f"127.0.0.1:{rx.getsockname()[1]}") as sock:
            sock.sendall(encode_message({"text": "furious scowl", "intensity": 1.0, "transition_ms": 0, "id": 1}))
            ack, frames = None, []
            while ack is None or len(frames) < 30:
                m = read_message(sock)
                if m["type"] == "frame":
                    frames.append(m)
                else:
                    ack = m
            assert ack["type"] == "ack" and ack["id"] == 1, ack
            assert [f["index"] for f in frames] == sorted(f["index"] for f in frames)
            last = frames[-1]["weights"]
            assert max(last.values()) > 0.05  # the face shows an expression
            got = vmc.parse_frame_bundle(rx.recv(65536))
            assert got["applied"] and len(got["blend"]) == 52
            bad = read_after(sock, {"text": "", "id": 2})
            assert bad["type"] == "error" and bad["id"] == 2


@pytest.mark.slow
def test_emo3d_run_webcam_video_drives_frames(tmp_path, face_landmarker):
    """``emo3d-run --webcam VIDEO``: a clip of the default avatar with its jaw open drives the
    streamed frames through MediaPipe and the loop."""
    import numpy as np
    cv2 = require_module("cv2", "OpenCV: opencv-contrib-python, a MediaPipe dependency")
    from support import tiny
    from emo3d import schema
    from emo3d import avatar
    render = lambda w: avatar.render(w, size=256)  # noqa: E731
    w = np.zeros(schema.N_MEDIAPIPE, np.float32)
    w[schema.MEDIAPIPE_INDEX["jawOpen"]] = 1.0
    img = render(w)
    video = tmp_path / "jaw.avi"
    wr = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, img.shape[1::-1])
    for _ in range(15):
        wr.write(np.ascontiguousarray(img[:, :, ::-1]))
    wr.release()
    model = tmp_path / "tiny"
    tiny.make_tiny_model(model)
    with _serving(tmp_path, model, "--webcam", str(video), "--webcam-loop", "--calibrate", "0") as sock:
        best = 0.0
        for _ in range(600):  # up to ~10 s of frames
            m = read_message(sock)
            if m["type"] == "frame":
                best = max(best, m["weights"]["jawOpen"])
                if best > 0.3:
                    break
        assert best > 0.3, best   # the tracked open jaw reaches the streamed frames
