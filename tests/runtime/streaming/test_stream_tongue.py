"""tongueOut on the control protocol: a weights request sets it (any spelling), and every frame on the
TCP and WebSocket transports carries it under "extras"; real sockets on 127.0.0.1, independent clients,
the real avatar loop."""
from __future__ import annotations

import asyncio
import http.client
import json
import socket
import time

import numpy as np
import pytest

from emo3d import schema
from runtime.loop import AvatarLoop, Frame, LoopOptions
from runtime.streaming.protocol import parse_request
from runtime.streaming.server import ControlServer, ServerOptions
from runtime.streaming.wire import encode_frame, encode_message, frame_message, read_message


@pytest.fixture
def loop():
    lp = AvatarLoop(None, LoopOptions(fps=60.0, idle=False, transition_ms=0.0))
    lp.start()
    yield lp
    lp.close()


def _frames_until(next_message, pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        msg = next_message()
        if msg["type"] == "frame" and pred(msg):
            return msg
    raise AssertionError("no frame met the condition in time")


def test_weights_request_takes_tongue_out_in_any_spelling_clamped():
    for name in ("tongueOut", "Tongue_Out", "CTRL_expressions_tongueOut", "TongueOut"):
        req = parse_request({"weights": {"jawOpen": 0.4, name: 0.6}})
        assert req.extras == {"tongueOut": 0.6}, name
        assert req.weights[schema.MEDIAPIPE_INDEX["jawOpen"]] == pytest.approx(0.4)
    assert parse_request({"weights": {"tongueOut": 1.7}}).extras == {"tongueOut": 1.0}
    assert parse_request({"weights": {"jawOpen": 0.2}}).extras == {}


def test_frame_encodings_carry_the_extras():
    f = Frame(7, 1.5, np.full(52, 0.25, np.float32), (0.1, 0.0, 0.0), (0.0,) * 6, extras={"tongueOut": 0.625})
    fast, ref = json.loads(encode_frame(f)[4:]), frame_message(f)
    assert fast == ref and fast["extras"] == {"tongueOut": 0.625}
    bare = Frame(8, 1.6, np.zeros(52, np.float32), (0.0,) * 3, (0.0,) * 6)   # no extras: 0
    assert json.loads(encode_frame(bare)[4:])["extras"] == {"tongueOut": 0}


def test_tcp_frames_carry_tongue_out(loop):
    srv = ControlServer(loop, ServerOptions(port=0)).start()
    try:
        with socket.create_connection(srv.address, timeout=10) as driver, \
                socket.create_connection(srv.address, timeout=10) as watcher:
            first = _frames_until(lambda: read_message(watcher), lambda m: True)
            assert first["extras"] == {"tongueOut": 0}
            driver.sendall(encode_message({"type": "weights", "id": 1, "transition_ms": 0,
                                           "weights": {"jawOpen": 0.7, "Tongue_Out": 0.8}}))
            while True:
                ack = read_message(driver)
                if ack["type"] != "frame":
                    break
            assert ack == {"type": "ack", "request": "weights", "id": 1}
            # the other client sees it on its frames, with the jaw that came with it
            got = _frames_until(lambda: read_message(watcher), lambda m: m["extras"]["tongueOut"] > 0.79)
            assert got["extras"]["tongueOut"] == pytest.approx(0.8, abs=1e-4)
            assert got["weights"]["jawOpen"] == pytest.approx(0.7, abs=1e-4)
            driver.sendall(encode_message({"type": "weights", "transition_ms": 0, "weights": {"jawOpen": 0.1}}))
            gone = _frames_until(lambda: read_message(watcher), lambda m: m["weights"]["jawOpen"] < 0.11)
            assert gone["extras"]["tongueOut"] == 0     # a request without it sets it back to 0
    finally:
        srv.close()


def test_websocket_frames_and_config_carry_tongue_out(loop, tmp_path):
    from websockets.asyncio.client import connect

    from runtime.web import WebOptions, WebServer
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>emo3d</title>")
    (static / "app.js").write_text("console.log('emo3d');")
    server = WebServer(loop, WebOptions(port=0, static_dir=static)).start()
    try:
        c = http.client.HTTPConnection(*server.address, timeout=10)
        c.request("GET", "/config.json")
        cfg = json.loads(c.getresponse().read())
        c.close()
        assert cfg["names"] == list(schema.MEDIAPIPE_NAMES) and cfg["extras"] == ["tongueOut"]

        async def run():
            url = "ws://%s:%d/ws" % tuple(server.address)
            async with connect(url) as a, connect(url) as b:
                await a.send(json.dumps({"weights": {"tongueOut": 0.5, "mouthFunnel": 0.3}, "transition_ms": 0}))
                end = time.monotonic() + 10
                while time.monotonic() < end:
                    m = json.loads(await asyncio.wait_for(b.recv(), 5))
                    if m["type"] == "frame" and m["extras"]["tongueOut"] > 0.49:
                        return m
                raise AssertionError("tongueOut never reached the other page")

        m = asyncio.run(run())
        assert m["extras"] == {"tongueOut": pytest.approx(0.5, abs=1e-4)}
        assert m["weights"]["mouthFunnel"] == pytest.approx(0.3, abs=1e-4) and len(m["weights"]) == 52
    finally:
        server.close()
