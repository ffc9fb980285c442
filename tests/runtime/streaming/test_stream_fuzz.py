"""Fuzz the control server with >= 10,000 malformed, oversized, binary, truncated and half-open
requests (bounded in count and time) while two clients watch the frame stream."""
from __future__ import annotations

import json
import multiprocessing
import random
import socket
import struct
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from runtime.streaming.server import ControlServer, ServerOptions, encode_message, read_message
from support.standin import StandInLoop

N_INBAND = 10_000      # bad requests on kept-open connections
N_CLOSING = 300        # oversized / truncated / half-open requests, one connection each
MAX_MESSAGE = 4096
BATCH = 50


def _rss_mb() -> float:
    """This process's resident memory (the server runs in it), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _raw(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def _bad_body(rng: random.Random) -> bytes:
    """One request body the server must answer with an error (never a valid request)."""
    kind = rng.randrange(12)
    if kind == 0:   # binary noise
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if kind == 1:   # truncated JSON of a valid request
        full = json.dumps({"text": "furious scowl", "intensity": 0.8, "transition_ms": 300})
        return full[:rng.randrange(1, len(full) - 1)].encode()
    if kind == 2:   # valid JSON, not an object
        return json.dumps(rng.choice([1, "text", [1, 2], None, True, 3.5, []])).encode()
    if kind == 3:   # wrong field types
        return json.dumps(rng.choice([
            {"text": rng.choice([5, None, [], {}, True])}, {"weights": rng.choice([[0.1] * 52, "jawOpen", 1])},
            {"weights": {"jawOpen": rng.choice(["x", None, [1], True])}}, {"text": "hi", "intensity": "max"},
            {"text": "hi", "transition_ms": -rng.random() - 0.1}, {"text": "hi", "intensity": 10 + rng.random()},
        ])).encode()
    if kind == 4:   # unknown type / fields
        return json.dumps(rng.choice([
            {"type": "".join(rng.choice("abcxyz") for _ in range(rng.randrange(1, 20)))},
            {"type": "ping", "junk": rng.random()}, {"unknown": 1}, {},
        ])).encode()
    if kind == 5:   # unknown blendshape names
        return json.dumps({"weights": {"".join(rng.choice("jawOpenxq") for _ in range(8)) + "Z": 0.5}}).encode()
    if kind == 6:   # invalid UTF-8
        return b'{"text": "' + bytes([0xC3, 0x28, 0xFF]) + b'"}'
    if kind == 7:   # non-finite numbers
        return rng.choice([b'{"text": "hi", "intensity": NaN}', b'{"weights": {"jawOpen": Infinity}}',
                           b'{"text": "hi", "intensity": 1e400}'])
    if kind == 8:   # deep nesting
        d = rng.randrange(1000, 2000)
        return b"[" * d + b"]" * d
    if kind == 9:   # empty text (the loop rejects it)
        return json.dumps({"text": rng.choice(["", "   ", "\n"])}).encode()
    if kind == 10:  # bad id
        return json.dumps({"type": "ping", "id": rng.choice([[1], {"a": 1}, 1.5])}).encode()
    return b""      # zero-length message


def _closing_request(rng: random.Random) -> tuple[bytes, bool]:
    """(bytes, half_close): requests after which the server answers and closes the connection."""
    kind = rng.randrange(3)
    if kind == 0:   # oversized (declared length over the limit), maybe with some payload
        return struct.pack(">I", rng.randrange(MAX_MESSAGE + 1, 2 ** 32)) + b"x" * rng.randrange(200), False
    if kind == 1:   # truncated body, then half-close
        n = rng.randrange(10, MAX_MESSAGE)
        return struct.pack(">I", n) + b"{" * rng.randrange(0, n), True
    return struct.pack(">I", 7)[: rng.randrange(1, 4)], True   # truncated header, then half-close


class Watcher(threading.Thread):
    """A subscribed client counting the frames it receives."""

    def __init__(self, address):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(address, timeout=10)
        self.frames, self.first, self.last, self.stop = 0, None, None, threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                m = read_message(self.sock)
                if m["type"] == "frame":
                    self.frames += 1
                    self.first = m["index"] if self.first is None else self.first
                    self.last = m["index"]
        except Exception as e:  # noqa: BLE001
            if not self.stop.is_set():
                self.error = e


def _inband_process(address, seed, n):
    """A fuzzing client in its own process (the fuzzers must not share the test process's interpreter lock with
    the loop and the server they attack): (errors answered, the first things received or raised instead)."""
    out, errors = [], []
    try:
        _inband(tuple(address), random.Random(seed), n, out, errors)
    except Exception as e:  # noqa: BLE001  (reported by the test, not lost in the worker)
        errors.append(repr(e))
    return len(out), [repr(e) for e in errors[:20]]


def _closing_process(address, seed, n):
    """``n`` requests after which the server answers once and closes (one connection each), in its own
    process: how many got exactly one too_large / truncated error."""
    rng = random.Random(seed)
    answered = 0
    for _ in range(n):
        data, half = _closing_request(rng)
        s = socket.create_connection(tuple(address), timeout=10)
        s.sendall(encode_message({"type": "unsubscribe"}) + data)
        if half:
            s.shutdown(socket.SHUT_WR)
        msgs = []
        try:
            while True:
                msgs.append(read_message(s))
        except (ConnectionError, OSError):
            pass
        s.close()
        codes = [m.get("code") for m in msgs if m["type"] == "error"]
        answered += len(codes) == 1 and codes[0] in ("too_large", "truncated")
    return answered


def _inband(address, rng, n, out, errors):
    s = socket.create_connection(address, timeout=20)
    s.sendall(encode_message({"type": "unsubscribe"}))
    m = read_message(s)
    while m["type"] == "frame":  # frames queued before the unsubscribe was read
        m = read_message(s)
    assert m["type"] == "ack"
    done = 0
    while done < n:
        k = min(BATCH, n - done)
        s.sendall(b"".join(_raw(_bad_body(rng)) for _ in range(k)))
        for _ in range(k):
            m = read_message(s)
            if m["type"] == "error" and m["message"]:
                out.append(1)
            else:
                errors.append(m)
        done += k
    s.sendall(encode_message({"type": "ping"}))
    assert read_message(s)["type"] == "pong"  # still served after all that
    s.close()


@pytest.mark.slow
def test_fuzz_control_server():
    loop = StandInLoop(fps=60).start()
    srv = ControlServer(loop, ServerOptions(port=0, max_message=MAX_MESSAGE, message_timeout=5.0)).start()
    watchers = [Watcher(srv.address) for _ in range(2)]
    for w in watchers:
        w.start()
    time.sleep(0.2)
    b0, tb = loop.index, time.monotonic()
    time.sleep(1.0)                                           # the frame rate this machine gives without fuzz
    baseline_fps = (loop.index - b0) / (time.monotonic() - tb)
    rss0 = _rss_mb()
    try:
        # the fuzzers run in their own processes, as real ones would: in this process they would take the
        # interpreter lock from the 60 Hz loop and the server, and the test would measure itself
        with ProcessPoolExecutor(max_workers=5, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(abs, range(5)))                     # the workers are up before the clock starts
            t0 = time.monotonic()
            i0, f0 = loop.index, [w.frames for w in watchers]
            inband = [pool.submit(_inband_process, srv.address, k, N_INBAND // 4) for k in range(4)]
            closing = pool.submit(_closing_process, srv.address, 99, N_CLOSING)
            results = [f.result(timeout=180) for f in inband]
            closing_answered = closing.result(timeout=180)
        elapsed = time.monotonic() - t0
        emitted, f1 = loop.index - i0, [w.frames for w in watchers]
        rss1 = _rss_mb()
    finally:
        for w in watchers:
            w.stop.set()
        alive = srv._thread.is_alive()
        stats = srv.stats
        srv.close()
        loop.close()
    total = N_INBAND + N_CLOSING
    answered = sum(n for n, _ in results)
    wrong = [w for _, ws in results for w in ws]
    got = [b - a for a, b in zip(f0, f1)]
    rates = [g / max(emitted, 1) for g in got]
    print(f"\nfuzz: {total} bad requests in {elapsed:.1f}s ({total / elapsed:.0f}/s), "
          f"errors answered {answered + closing_answered}/{total}, watcher frames "
          f"{got} of {emitted} emitted ({min(rates):.1%} min, {min(got) / elapsed:.1f} fps; "
          f"{baseline_fps:.1f} fps before the fuzz), "
          f"RSS {rss0:.0f} -> {rss1:.0f} MiB, server stats {stats}")
    assert alive
    assert not wrong, wrong[:5]
    assert answered == N_INBAND
    assert closing_answered == N_CLOSING
    assert all(w.error is None for w in watchers)
    # frames kept flowing to the other clients: they saw (nearly) every frame the loop emitted
    assert min(rates) > 0.9, rates
    # good clients keep their frame rate (60 fps; measured against this machine's rate just before)
    assert min(got) / elapsed > 0.8 * min(baseline_fps, 60), (got, elapsed, baseline_fps)
    assert rss1 - rss0 < 64, (rss0, rss1)                     # server memory stays bounded
