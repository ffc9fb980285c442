"""Benchmark: the control server streaming avatar frames to 1, 8 and 16 TCP clients at 60 Hz.

Candidate: ``runtime.streaming.ControlServer`` (the frame loop only hands the frame over; an asyncio
thread serialises it once and fans it out through bounded per-client queues).
Baseline: a naive sink that, in the frame-loop thread, serialises the frame for each client and
``sendall``s it with blocking sockets.

Reported: frames per second each client sustains (min over clients), the frame-loop cost of one
``send`` (what the 60 Hz loop pays), and for the candidate the server thread's CPU per frame.
ratio = baseline loop-side send cost / candidate loop-side send cost at 16 clients.

    python -m benchmarks.stream [--quick] [--seconds S]
"""
from __future__ import annotations

import argparse
import selectors
import socket
import struct
import threading
import time

from runtime.streaming.server import ControlServer, ServerOptions, encode_message, frame_message
from runtime.streaming.standin import StandInLoop

CLIENTS = (1, 8, 16)


class Readers(threading.Thread):
    """One thread reading every client socket; counts length-prefixed messages (no JSON decode)."""

    def __init__(self, socks):
        super().__init__(daemon=True)
        self.sel = selectors.DefaultSelector()
        self.buf = {}
        self.count = {}
        for s in socks:
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
            self.buf[s], self.count[s] = bytearray(), 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for key, _ in self.sel.select(0.05):
                s = key.fileobj
                try:
                    data = s.recv(1 << 18)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.sel.unregister(s)
                    continue
                b = self.buf[s]
                b += data
                pos = 0
                while len(b) - pos >= 4:
                    (n,) = struct.unpack_from(">I", b, pos)
                    if len(b) - pos - 4 < n:
                        break
                    pos += 4 + n
                    self.count[s] += 1
                del b[:pos]

    def snapshot(self):
        return list(self.count.values())


class NaiveSink:
    """Baseline: per client, serialise and blocking-send in the caller's thread."""

    def __init__(self, socks):
        self.socks = socks

    def send(self, frame):
        for s in self.socks:
            s.sendall(encode_message(frame_message(frame)))

    def close(self):
        for s in self.socks:
            s.close()


def _thread_cpu(thread) -> float:
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (AttributeError, OSError):
        return float("nan")


def run_candidate(n_clients: int, seconds: float) -> dict:
    loop = StandInLoop(fps=60)
    srv = ControlServer(loop, ServerOptions(port=0, max_clients=max(64, n_clients))).start()
    socks = [socket.create_connection(srv.address) for _ in range(n_clients)]
    readers = Readers(socks)
    readers.start()
    time.sleep(0.2)
    loop.start()
    time.sleep(0.3)  # warm-up
    c0, f0, i0, s0 = readers.snapshot(), _thread_cpu(srv._thread), loop.index, loop.send_seconds
    t0 = time.perf_counter()
    time.sleep(seconds)
    c1, f1, i1, s1 = readers.snapshot(), _thread_cpu(srv._thread), loop.index, loop.send_seconds
    dt = time.perf_counter() - t0
    loop.close()
    readers.stop.set()
    srv.close()
    for s in socks:
        s.close()
    frames = max(i1 - i0, 1)
    return {"fps": min(b - a for a, b in zip(c0, c1)) / dt, "loop_fps": frames / dt,
            "send_us": (s1 - s0) / frames * 1e6, "server_ms": (f1 - f0) / frames * 1e3}


def run_baseline(n_clients: int, seconds: float) -> dict:
    lsock = socket.create_server(("127.0.0.1", 0))
    socks, accepted = [], []
    for _ in range(n_clients):
        socks.append(socket.create_connection(lsock.getsockname()))
        accepted.append(lsock.accept()[0])
    lsock.close()
    readers = Readers(socks)
    readers.start()
    loop = StandInLoop(fps=60)
    loop.add_sink(NaiveSink(accepted))
    loop.start()
    time.sleep(0.3)
    c0, i0, s0 = readers.snapshot(), loop.index, loop.send_seconds
    t0 = time.perf_counter()
    time.sleep(seconds)
    c1, i1, s1 = readers.snapshot(), loop.index, loop.send_seconds
    dt = time.perf_counter() - t0
    loop.close()
    readers.stop.set()
    for s in socks + accepted:
        s.close()
    frames = max(i1 - i0, 1)
    return {"fps": min(b - a for a, b in zip(c0, c1)) / dt, "loop_fps": frames / dt,
            "send_us": (s1 - s0) / frames * 1e6}


def _plot(cand, base, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from emo3d.io import atomic_path
    x = np.arange(len(CLIENTS))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    ax1.bar(x - 0.2, [cand[n]["send_us"] / 1e3 for n in CLIENTS], 0.4, label="server (candidate)")
    ax1.bar(x + 0.2, [base[n]["send_us"] / 1e3 for n in CLIENTS], 0.4, label="blocking sendall (baseline)")
    ax1.set_ylabel("frame-loop cost per frame (ms)")
    ax2.bar(x - 0.2, [cand[n]["fps"] for n in CLIENTS], 0.4, label="candidate")
    ax2.bar(x + 0.2, [base[n]["fps"] for n in CLIENTS], 0.4, label="baseline")
    ax2.set_ylabel("frames/s per client (min)")
    for ax in (ax1, ax2):
        ax.set_xticks(x, [f"{n} clients" for n in CLIENTS])
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("emo3d control server at 60 Hz")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1.5 s per configuration instead of 5 s")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--png", help="also write a chart of the results here")
    a = ap.parse_args(argv)
    seconds = a.seconds or (1.5 if a.quick else 5.0)
    cand, base = {}, {}
    for n in CLIENTS:
        cand[n] = run_candidate(n, seconds)
        base[n] = run_baseline(n, seconds)
        print(f"{n:2d} clients  candidate: {cand[n]['fps']:5.1f} fps/client (loop {cand[n]['loop_fps']:5.1f}), "
              f"send {cand[n]['send_us']:7.1f} us/frame in the loop, server {cand[n]['server_ms']:.3f} ms CPU/frame"
              f" | baseline: {base[n]['fps']:5.1f} fps/client, send {base[n]['send_us']:7.1f} us/frame in the loop",
              flush=True)
    n = CLIENTS[-1]
    ratio = base[n]["send_us"] / max(cand[n]["send_us"], 1e-9)
    fps = "/".join(f"{cand[k]['fps']:.1f}" for k in CLIENTS)
    srv = "/".join(f"{cand[k]['server_ms']:.2f}" for k in CLIENTS)
    bfps = "/".join(f"{base[k]['fps']:.1f}" for k in CLIENTS)
    bsend = "/".join(f"{base[k]['send_us']:.0f}" for k in CLIENTS)
    csend = "/".join(f"{cand[k]['send_us']:.1f}" for k in CLIENTS)
    if a.png:
        _plot(cand, base, a.png)
    print(f"stream: ratio={ratio:.2f}x candidate=fps {fps} @1/8/16 clients (60 Hz), loop send {csend} us/frame, "
          f"server CPU {srv} ms/frame baseline=blocking per-client sendall fps {bfps}, loop send {bsend} us/frame")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
