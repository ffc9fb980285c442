"""Control-and-frames server on real 127.0.0.1 sockets: requests, errors, several concurrent clients,
slow and vanished clients, limits, remote-bind refusal, and ``attach`` from CLI arguments."""
from __future__ import annotations

import argparse
import json
import socket
import struct
import threading
import time

import numpy as np
import pytest

from emo3d import schema
from emo3d.errors import InvalidInputError
from runtime import streaming
from runtime.streaming.server import ControlServer, ServerOptions, encode_message, read_message
from support.standin import StandInLoop


@pytest.fixture
def running():
    loop = StandInLoop(fps=60).start()
    servers = []

    def make(**kw):
        srv = ControlServer(loop, ServerOptions(port=0, **kw)).start()
        servers.append(srv)
        return srv
    yield loop, make
    for s in servers:
        s.close()
    loop.close()


def connect(srv, timeout=10.0):
    s = socket.create_connection(srv.address, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def reply(sock, skip_frames=True):
    """Next non-frame message."""
    while True:
        m = read_message(sock)
        if not (skip_frames and m.get("type") == "frame"):
            return m


def request(sock, obj):
    sock.sendall(encode_message(obj) if not isinstance(obj, bytes) else obj)
    return reply(sock)


def test_requests_and_acks(running):
    loop, make = running
    srv = make()
    s = connect(srv)
    assert request(s, {"type": "ping", "id": 7})["type"] == "pong"
    r = request(s, {"text": "furious scowl", "intensity": 0.8, "transition_ms": 300, "id": "t1"})
    assert r["type"] == "ack" and r["request"] == "text" and r["id"] == "t1"
    assert set(r["emotions"]) == set(schema.EMOTIONS)
    assert loop.texts[-1] == ("furious scowl", 0.8, 300.0)
    r = request(s, {"type": "weights", "weights": {"JawOpen": 0.75, "mouthSmile_L": 1.5}, "id": 2})
    assert r["type"] == "ack" and "clamped" in r["warning"]
    assert loop.current[schema.MEDIAPIPE_INDEX["jawOpen"]] == 0.75
    assert loop.current[schema.MEDIAPIPE_INDEX["mouthSmileLeft"]] == 1.0
    # frames now carry the weights, by name, with a timestamp
    for _ in range(100):
        m = read_message(s)
        if m["type"] == "frame" and m["weights"]["jawOpen"] == 0.75:
            break
    else:
        pytest.fail("no frame with the new weights")
    assert list(m["weights"]) == list(schema.MEDIAPIPE_NAMES)
    assert isinstance(m["t"], float) and len(m["head"]) == 3 and len(m["eyes"]) == 6
    s.close()


def raw(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


BAD_REQUESTS = [
    (b"\x00\x00\x00\x03abc", "bad_json"),
    (b"\x00\x00\x00\x02\xff\xfe", "bad_encoding"),
    (b"\x00\x00\x00\x00", "empty"),
    (encode_message([1, 2]), "bad_request"),
    (encode_message({"type": "dance"}), "invalid_input"),
    (encode_message({"hello": 1}), "invalid_input"),
    (encode_message({"type": "ping", "extra": 1}), "invalid_input"),
    (encode_message({"text": ""}), "invalid_input"),                     # the loop's InvalidInputError
    (encode_message({"text": 42}), "invalid_input"),
    (encode_message({"text": "hi", "intensity": "lots"}), "invalid_input"),
    (encode_message({"text": "hi", "transition_ms": -5}), "invalid_input"),
    (raw(b'{"text": "hi", "intensity": 1e999}'), "invalid_input"),
    (raw(b'{"weights": {"jawOpen": NaN}}'), "bad_json"),
    (raw(b'{"text": "hi", "transition_ms": Infinity}'), "bad_json"),
    (raw(b"[" * 30000 + b"]" * 30000), "bad_json"),
    (encode_message({"weights": {"jawOpn": 0.5}}), "invalid_input"),
    (encode_message({"weights": {"jawOpen": "x"}}), "invalid_input"),
    (encode_message({"weights": [0.1] * 52}), "invalid_input"),
    (encode_message({"type": "ping", "id": [1]}), "bad_request"),
]


@pytest.mark.parametrize("data,code", BAD_REQUESTS)
def test_bad_request_gets_error_and_connection_survives(running, data, code):
    _, make = running
    srv = make()
    s = connect(srv)
    r = request(s, data)
    assert r["type"] == "error" and r["code"] == code and r["message"]
    assert request(s, {"type": "ping"})["type"] == "pong"  # same connection still served
    s.close()


def test_unknown_name_error_suggests(running):
    _, make = running
    s = connect(make())
    r = request(s, {"weights": {"jawOpn": 0.5}, "id": "w"})
    assert "jawOpen" in r["message"] and r["id"] == "w"


def _drain_until_closed(s):
    msgs = []
    while True:
        try:
            msgs.append(read_message(s))
        except (ConnectionError, OSError):
            return [m for m in msgs if m["type"] != "frame"]


def test_oversized_message_rejected_and_closed(running):
    _, make = running
    srv = make(max_message=1024)
    s = connect(srv)
    s.sendall(struct.pack(">I", 5000) + b"x" * 100)
    msgs = _drain_until_closed(s)
    assert msgs[-1]["code"] == "too_large" and "1024" in msgs[-1]["message"]
    assert srv.stats.clients == 0 or _eventually(lambda: srv.stats.clients == 0)


@pytest.mark.parametrize("data,match", [
    (struct.pack(">I", 100) + b'{"type": "pi', "after 12"),   # truncated body, then half-close
    (b"\x00\x00", "header"),                                   # truncated length header
])
def test_truncated_half_open_gets_error(running, data, match):
    _, make = running
    srv = make()
    s = connect(srv)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)  # half-open: we can still read the server's answer
    msgs = _drain_until_closed(s)
    assert msgs[-1]["code"] == "truncated" and match in msgs[-1]["message"]


def test_stalled_message_times_out(running):
    _, make = running
    srv = make(message_timeout=0.3)
    s = connect(srv)
    s.sendall(struct.pack(">I", 50) + b'{"type"')
    msgs = _drain_until_closed(s)
    assert msgs[-1]["code"] == "timeout"


def test_max_clients(running):
    _, make = running
    srv = make(max_clients=2)
    a, b = connect(srv), connect(srv)
    assert request(a, {"type": "ping"})["type"] == "pong"
    assert request(b, {"type": "ping"})["type"] == "pong"
    c = connect(srv)
    assert _drain_until_closed(c)[-1]["code"] == "server_full"
    a.close()
    assert _eventually(lambda: srv.stats.clients == 1)
    d = connect(srv)
    assert request(d, {"type": "ping"})["type"] == "pong"


def _eventually(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_concurrent_clients(running):
    """Eight clients at once, each sending its own requests while receiving frames."""
    loop, make = running
    srv = make()
    results: dict = {}

    def client(k):
        s = connect(srv)
        acks, frames, last = 0, 0, -1
        for j in range(10):
            req = [{"type": "ping"}, {"text": f"client {k} says {j}"},
                   {"weights": {"browInnerUp": (k + 1) / 10}}][j % 3]
            s.sendall(encode_message({**req, "id": f"{k}-{j}"}))
            while True:
                m = read_message(s)
                if m["type"] == "frame":
                    assert m["index"] > last
                    last, frames = m["index"], frames + 1
                    continue
                assert m["type"] in ("ack", "pong") and m["id"] == f"{k}-{j}", m
                acks += 1
                break
        while frames < 20:
            m = read_message(s)
            if m["type"] == "frame":
                assert m["index"] > last
                last, frames = m["index"], frames + 1
        s.close()
        results[k] = (acks, frames)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == list(range(8))
    assert all(a == 10 and f >= 20 for a, f in results.values())
    assert sum(1 for t in loop.texts if t[0].startswith("client")) == 8 * 3


def test_unsubscribe_stops_frames(running):
    _, make = running
    s = connect(make())
    assert request(s, {"type": "unsubscribe"})["type"] == "ack"
    time.sleep(0.1)
    s.sendall(encode_message({"type": "ping", "id": "p"}))
    # nothing but the pong may arrive (a frame queued before the ack is flushed first)
    while True:
        m = read_message(s)
        if m["type"] == "pong":
            break
    s.settimeout(0.3)
    with pytest.raises(socket.timeout):
        read_message(s)


def test_slow_and_vanished_clients_never_block_the_loop(running):
    loop, make = running
    loop.close()  # drive frames by hand, as fast as possible
    srv = make(frame_queue=4)
    slow = socket.socket()                    # never reads, tiny receive window
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(srv.address)
    gone = connect(srv)
    gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    gone.close()                              # vanishes with a reset
    good = connect(srv)
    assert request(good, {"type": "ping"})["type"] == "pong"
    big = np.linspace(0, 1, schema.N_MEDIAPIPE)
    loop.current = big.astype(np.float32)
    done = threading.Event()

    def drive():
        for _ in range(3000):
            loop.step()
            time.sleep(0.0002)
        done.set()
    t = threading.Thread(target=drive)
    t.start()
    assert done.wait(60), "frame loop blocked"
    last = -1
    good.settimeout(10)
    while last < loop.index - 1:
        m = read_message(good)
        last = m.get("index", last)
    assert last == loop.index - 1             # the reading client gets the newest frame
    assert srv.stats.frames_dropped > 0       # the slow one lost old frames instead of blocking
    assert _eventually(lambda: srv.stats.clients == 2)  # the vanished one is gone
    slow.close()
    good.close()


def test_remote_bind_needs_flag():
    with pytest.raises(InvalidInputError, match="allow-remote"):
        ServerOptions(host="0.0.0.0")
    assert ServerOptions(host="0.0.0.0", allow_remote=True).allow_remote  # constructing only, no bind
    assert ServerOptions(host="localhost").host == "localhost"


@pytest.mark.parametrize("kw,match", [
    (dict(port=70000), "port"), (dict(max_message=10), "max_message"), (dict(frame_queue=0), "frame_queue"),
    (dict(message_timeout=0), "message_timeout"),
])
def test_server_options_validated(kw, match):
    with pytest.raises(InvalidInputError, match=match):
        ServerOptions(**kw)


def test_port_in_use_is_clear_error(running):
    _, make = running
    srv = make()
    with pytest.raises(InvalidInputError, match="cannot listen"):
        ControlServer(None, ServerOptions(port=srv.address[1])).start()


def _args(*argv):
    p = argparse.ArgumentParser()
    streaming.add_arguments(p)
    return p.parse_args(list(argv))


def test_attach_from_cli_arguments():
    loop = StandInLoop()
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    rx2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx2.bind(("127.0.0.1", 0))
    rx2.settimeout(5)
    args = _args("--vmc", f"127.0.0.1:{rx.getsockname()[1]}", "--livelink", f"127.0.0.1:{rx2.getsockname()[1]}",
                 "--serve", "127.0.0.1:0")
    started = streaming.attach(args, loop)
    try:
        assert len(started) == 3 and len(loop.sinks) == 3
        srv = started[2]
        s = connect(srv)
        assert request(s, {"type": "ping"})["type"] == "pong"
        loop.step()
        assert rx.recvfrom(65536)[0].startswith(b"#bundle")
        assert len(rx2.recvfrom(65536)[0]) == 311
        assert read_message(s)["type"] == "frame"
        s.close()
    finally:
        for x in started:
            x.close()
        rx.close()
        rx2.close()
    assert loop.sinks == []
    assert _args("--vmc").vmc == "127.0.0.1:39539" and _args("--livelink").livelink == "127.0.0.1:11111"
    assert _args("--webcam").webcam == "0"


@pytest.mark.parametrize("argv,match", [
    (("--serve", "0.0.0.0:0"), "allow-remote"), (("--vmc", "127.0.0.1:notaport"), "port"),
    (("--mix", "furious scowl"), "--webcam"), (("--webcam", "/no/such/video.mp4"), "video file"),
])
def test_attach_rejects(argv, match):
    loop = StandInLoop()
    with pytest.raises(InvalidInputError, match=match):
        streaming.attach(_args(*argv), loop)
    assert loop.sinks == []


def test_frame_encoding_matches_reference_json():
    from runtime.streaming.server import encode_frame, frame_message
    from support.standin import Frame
    rng = np.random.default_rng(0)
    for i in range(20):
        f = Frame(i, float(rng.uniform(0, 1e4)), rng.random(schema.N_MEDIAPIPE).astype(np.float32),
                  tuple(rng.normal(size=3)), tuple(rng.normal(size=6)))
        data = encode_frame(f)
        assert struct.unpack(">I", data[:4])[0] == len(data) - 4
        fast, ref = json.loads(data[4:]), frame_message(f)
        assert fast.keys() == ref.keys() and fast["index"] == ref["index"] and list(fast["weights"]) == list(ref["weights"])
        assert np.allclose(list(fast["weights"].values()), list(ref["weights"].values()), atol=1e-4)
        assert np.allclose(fast["head"] + fast["eyes"], ref["head"] + ref["eyes"], atol=1e-5)
        assert fast["t"] == pytest.approx(ref["t"], abs=1e-6)
    nan = Frame(0, 0.0, np.full(schema.N_MEDIAPIPE, np.nan, np.float32))
    assert all(v == 0 for v in json.loads(encode_frame(nan)[4:])["weights"].values())  # always valid JSON


def test_with_real_avatar_loop():
    """The runtime's AvatarLoop (no engine): weights requests drive the streamed frames; a text
    request gets the loop's own InvalidInputError back as an error reply."""
    import runtime.loop as loop_mod
    loop = loop_mod.AvatarLoop(None, loop_mod.LoopOptions(fps=60, idle=False, transition_ms=0))
    srv = ControlServer(loop, ServerOptions(port=0)).start()
    loop.start()
    try:
        s = connect(srv)
        r = request(s, {"text": "furious scowl", "id": 1})
        assert r["type"] == "error" and r["code"] == "invalid_input" and "engine" in r["message"]
        assert request(s, {"weights": {"jawOpen": 0.6, "browInnerUp": 0.3}, "transition_ms": 0})["type"] == "ack"
        for _ in range(300):
            m = read_message(s)
            if m["type"] == "frame" and abs(m["weights"]["jawOpen"] - 0.6) < 1e-3:
                break
        else:
            pytest.fail("frames never showed the requested weights")
        assert m["weights"]["browInnerUp"] == pytest.approx(0.3, abs=1e-3)
        s.close()
    finally:
        loop.close()
        srv.close()
