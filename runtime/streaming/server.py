"""Control-and-frames server: length-prefixed JSON over TCP (spec: ``docs/control-protocol.md``).

Every message in both directions is ``uint32 big-endian length`` + that many bytes of UTF-8 JSON
(one object). Clients send requests (text, weights, ping, subscribe/unsubscribe) and get one reply
each (``ack``/``pong``/``error``); subscribed clients (all, by default) also get every avatar frame.

The server runs an asyncio loop in its own thread. ``send(frame)`` (the avatar-loop sink) only hands
the newest frame to that thread and returns; each client has a bounded frame queue that drops the
oldest frame, so a slow or vanished client never blocks the frame loop or the other clients.
"""
from __future__ import annotations

import asyncio
import collections
import ipaddress
import json
import logging
import math
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from emo3d import schema
from emo3d.errors import InvalidInputError, ProtocolError
from emo3d.weights import normalize

log = logging.getLogger(__name__)

DEFAULT_PORT = 7878
HEADER = struct.Struct(">I")
REQUEST_TYPES = ("text", "weights", "ping", "subscribe", "unsubscribe")
_KEYS = {
    "text": {"type", "id", "text", "intensity", "transition_ms"},
    "weights": {"type", "id", "weights", "transition_ms"},
    "ping": {"type", "id"},
    "subscribe": {"type", "id"},
    "unsubscribe": {"type", "id"},
}


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address."""
    if host in ("localhost",):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    addrs = {ipaddress.ip_address(i[4][0].split("%")[0]) for i in infos}
    return bool(addrs) and all(a.is_loopback for a in addrs)


@dataclass
class ServerOptions:
    """Options of :class:`ControlServer` (validated)."""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT          # 0 = any free port (see ``ControlServer.address``)
    allow_remote: bool = False        # needed to bind anything but a loopback address
    max_message: int = 64 * 1024      # bytes of JSON per message, both directions
    max_clients: int = 64
    frame_queue: int = 8              # frames buffered per client (drop-oldest beyond)
    reply_queue: int = 64             # replies buffered per client before its reads pause
    message_timeout: float = 10.0     # seconds to finish a started message
    request_threads: int = 1          # threads running set_text / set_weights
    digits: int = 5                   # significant digits of frame weights
    send_buffer: int = 64 * 1024      # kernel + asyncio send buffer per client (bounds a slow client's lag)

    def __post_init__(self):
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise InvalidInputError(f"port {self.port!r} must be an integer in 0..65535")
        for name in ("max_message", "max_clients", "frame_queue", "reply_queue", "request_threads", "send_buffer"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise InvalidInputError(f"{name}={v!r} must be a positive integer")
        if not isinstance(self.digits, int) or not 1 <= self.digits <= 9:
            raise InvalidInputError(f"digits={self.digits!r} must be an integer in 1..9")
        if self.max_message < 64:
            raise InvalidInputError(f"max_message={self.max_message} is too small (at least 64 bytes)")
        if not self.message_timeout > 0:
            raise InvalidInputError(f"message_timeout={self.message_timeout!r} must be > 0 seconds")
        if not self.allow_remote and not is_loopback(self.host):
            raise InvalidInputError(
                f"refusing to bind {self.host!r}: it is not a loopback address; anyone on the network could "
                "drive the avatar. Pass --allow-remote (allow_remote=True) to bind it anyway.")


@dataclass
class ServerStats:
    clients: int = 0
    connections: int = 0
    requests: int = 0
    errors: int = 0             # error replies sent (bad requests)
    frames: int = 0             # frames broadcast
    frames_coalesced: int = 0   # frames dropped because the server thread fell 8 frames behind
    frames_dropped: int = 0     # frames dropped from slow clients' queues
    bytes_sent: int = 0


class _Client:
    __slots__ = ("writer", "frames", "replies", "wake", "room", "subscribed", "closed", "peer", "task")

    def __init__(self, writer, frame_queue: int):
        self.writer = writer
        self.frames = collections.deque(maxlen=frame_queue)
        self.replies = collections.deque()
        self.wake = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.subscribed = True
        self.closed = False
        self.peer = writer.get_extra_info("peername")
        self.task = None


def encode_message(obj) -> bytes:
    """One wire message: 4-byte big-endian length + compact UTF-8 JSON."""
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    return HEADER.pack(len(body)) + body


_FRAME_TEMPLATES: dict = {}


def encode_frame(frame, digits: int = 5) -> bytes:
    """One wire message for an avatar frame (same JSON as :func:`frame_message`, ~4x faster)."""
    tmpl = _FRAME_TEMPLATES.get(digits)
    if tmpl is None:
        w = ",".join('"%s":%%.%dg' % (n, digits) for n in schema.MEDIAPIPE_NAMES)
        tmpl = _FRAME_TEMPLATES[digits] = (
            '{"type":"frame","index":%d,"t":%.6f,"weights":{' + w + '},"head":[%.6g,%.6g,%.6g],'
            '"eyes":[%.6g,%.6g,%.6g,%.6g,%.6g,%.6g]}')
    w = np.nan_to_num(np.asarray(frame.weights, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    pose = np.nan_to_num(np.asarray(tuple(frame.head) + tuple(frame.eyes), dtype=np.float64))
    body = (tmpl % ((int(frame.index), float(frame.t)) + tuple(w.tolist()) + tuple(pose.tolist()))).encode()
    return HEADER.pack(len(body)) + body


def frame_message(frame, decimals: int = 5) -> dict:
    """The JSON object sent for one avatar frame."""
    w = np.round(np.asarray(frame.weights, dtype=np.float64), decimals).tolist()
    return {"type": "frame", "index": int(frame.index), "t": round(float(frame.t), 6),
            "weights": dict(zip(schema.MEDIAPIPE_NAMES, w)),
            "head": [round(float(x), 6) for x in frame.head],
            "eyes": [round(float(x), 6) for x in frame.eyes]}


class ControlServer:
    """TCP control-and-frames server for an avatar loop (``set_text``, ``set_weights``, ``add_sink``).

    ``start()`` binds and registers the server as a sink of ``loop``; ``close()`` undoes both.
    """

    PENDING = 8  # frames the server thread may fall behind the frame loop

    def __init__(self, loop, options: ServerOptions | None = None):
        self.options = options or ServerOptions()
        self.loop = loop
        self.stats = ServerStats()
        self.address: tuple[str, int] | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server = None
        self._clients: set[_Client] = set()
        self._pending: collections.deque = collections.deque(maxlen=self.PENDING)
        self._scheduled = False
        self._closed = False
        self._executor = ThreadPoolExecutor(self.options.request_threads, thread_name_prefix="emo3d-req")

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "ControlServer":
        ready = threading.Event()
        error: list[BaseException] = []

        def run():
            aloop = asyncio.new_event_loop()
            self._aloop = aloop
            try:
                self._server = aloop.run_until_complete(asyncio.start_server(
                    self._handle, self.options.host, self.options.port, limit=2 ** 16))
                self.address = self._server.sockets[0].getsockname()[:2]
            except BaseException as e:  # bind failed
                error.append(e)
                ready.set()
                aloop.close()
                return
            ready.set()
            try:
                aloop.run_forever()
            finally:
                aloop.run_until_complete(self._shutdown())
                aloop.close()

        self._thread = threading.Thread(target=run, name="emo3d-serve", daemon=True)
        self._thread.start()
        ready.wait()
        if error:
            self._executor.shutdown(wait=False)
            raise InvalidInputError(f"cannot listen on {self.options.host}:{self.options.port}: {error[0]}")
        if self.loop is not None and hasattr(self.loop, "add_sink"):
            self.loop.add_sink(self)
        log.info("control server listening on %s:%d", *self.address)
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.loop is not None and hasattr(self.loop, "remove_sink"):
            try:
                self.loop.remove_sink(self)
            except Exception:  # already removed
                pass
        if self._aloop is not None and self._thread is not None and self._thread.is_alive():
            self._aloop.call_soon_threadsafe(self._aloop.stop)
            self._thread.join(5)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    async def _shutdown(self):
        self._server.close()
        for c in list(self._clients):
            self._drop(c)
        tasks = [t for t in asyncio.all_tasks(self._aloop) if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- sink (frame-loop thread) -------------------------------------------------------------
    def send(self, frame) -> None:
        """Hand ``frame`` to the server thread; never blocks. If that thread falls more than
        ``PENDING`` frames behind, the oldest unsent frames are dropped (``frames_coalesced``)."""
        aloop = self._aloop
        if self._closed or aloop is None:
            return
        if len(self._pending) == self._pending.maxlen:
            self.stats.frames_coalesced += 1
        self._pending.append(frame)  # deque.append/popleft are atomic: no lock needed
        if not self._scheduled:
            self._scheduled = True
            try:
                aloop.call_soon_threadsafe(self._broadcast)
            except RuntimeError:  # loop closed
                pass

    def _broadcast(self) -> None:
        self._scheduled = False  # clear before draining, so a racing send() reschedules
        while self._pending:
            frame = self._pending.popleft()
            data = encode_frame(frame, self.options.digits)
            self.stats.frames += 1
            for c in self._clients:
                if c.subscribed and not c.closed:
                    if len(c.frames) == c.frames.maxlen:
                        self.stats.frames_dropped += 1
                    c.frames.append(data)
                    c.wake.set()

    # --- per connection (server thread) --------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.stats.connections += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.options.send_buffer)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        writer.transport.set_write_buffer_limits(high=self.options.send_buffer)
        c = _Client(writer, self.options.frame_queue)
        if len(self._clients) >= self.options.max_clients:
            c.replies.append(encode_message(self._error(
                None, "server_full", f"server has {self.options.max_clients} clients, the maximum; try later")))
            c.subscribed = False
            await self._writer(c, close_when_empty=True)
            return
        self._clients.add(c)
        self.stats.clients = len(self._clients)
        c.task = asyncio.ensure_future(self._writer(c))
        try:
            await self._reader(reader, c)
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:  # server shutting down
            self._drop(c)
            return
        finally:
            c.subscribed = False
            # let queued replies (e.g. the last error) go out, then close
            c.frames.clear()
            c.wake.set()
            try:
                await asyncio.wait_for(self._flush_replies(c), 2.0)
            except (asyncio.TimeoutError, asyncio.CancelledError, ConnectionError, OSError):
                pass  # (cancelled = server shutting down: the connection is dropped below)
            self._drop(c)

    async def _flush_replies(self, c: _Client):
        while c.replies and not c.closed:
            await asyncio.sleep(0.005)

    def _drop(self, c: _Client):
        if not c.closed:
            c.closed = True
            c.wake.set()
            c.room.set()
            try:
                c.writer.close()
            except Exception:
                pass
        self._clients.discard(c)
        self.stats.clients = len(self._clients)

    async def _writer(self, c: _Client, close_when_empty: bool = False):
        try:
            while not c.closed:
                if not (c.replies or c.frames):
                    if close_when_empty:
                        break
                    await c.wake.wait()
                    c.wake.clear()
                    continue
                data = c.replies.popleft() if c.replies else c.frames.popleft()
                if len(c.replies) < self.options.reply_queue:
                    c.room.set()
                c.writer.write(data)
                self.stats.bytes_sent += len(data)
                await c.writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self._drop(c)

    async def _reply(self, c: _Client, obj: dict):
        if c.closed:
            return
        try:
            data = encode_message(obj)
        except (TypeError, ValueError):
            data = encode_message(self._error(obj.get("id"), "internal", "reply could not be encoded"))
        c.replies.append(data)
        c.wake.set()
        if len(c.replies) >= self.options.reply_queue:  # client does not read: stop reading from it
            c.room.clear()
            await c.room.wait()

    def _error(self, req_id, code: str, message: str) -> dict:
        self.stats.errors += 1
        out = {"type": "error", "code": code, "message": message}
        if req_id is not None:
            out["id"] = req_id
        return out

    async def _reader(self, reader: asyncio.StreamReader, c: _Client):
        opts = self.options
        while not c.closed:
            try:
                first = await reader.readexactly(1)  # idle clients may wait here forever
            except asyncio.IncompleteReadError:
                return  # clean close between messages
            try:
                header = first + await asyncio.wait_for(reader.readexactly(3), opts.message_timeout)
            except asyncio.IncompleteReadError as e:
                await self._reply(c, self._error(None, "truncated", f"connection ended inside the 4-byte length "
                                                 f"header after {1 + len(e.partial)} bytes"))
                return
            except asyncio.TimeoutError:
                await self._reply(c, self._error(None, "timeout", f"length header not completed within "
                                                 f"{opts.message_timeout:g} s"))
                return
            (n,) = HEADER.unpack(header)
            if n == 0:
                self.stats.requests += 1
                await self._reply(c, self._error(None, "empty", "empty message (length 0); send a JSON object"))
                continue
            if n > opts.max_message:
                await self._reply(c, self._error(None, "too_large", f"message of {n} bytes exceeds the maximum of "
                                                 f"{opts.max_message} bytes; closing the connection"))
                return
            try:
                body = await asyncio.wait_for(reader.readexactly(n), opts.message_timeout)
            except asyncio.IncompleteReadError as e:
                await self._reply(c, self._error(None, "truncated", f"header announced {n} bytes but the "
                                                 f"connection ended after {len(e.partial)}"))
                return
            except asyncio.TimeoutError:
                await self._reply(c, self._error(None, "timeout", f"message of {n} bytes not completed within "
                                                 f"{opts.message_timeout:g} s; closing the connection"))
                return
            self.stats.requests += 1
            await self._reply(c, await self._request(c, body))

    # --- requests ------------------------------------------------------------------------------
    async def _request(self, c: _Client, body: bytes) -> dict:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            return self._error(None, "bad_encoding", f"message is not UTF-8 text (byte {e.start}); send UTF-8 JSON")
        try:
            req = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as e:
            return self._error(None, "bad_json", f"invalid JSON: {str(e)[:200]}")
        if not isinstance(req, dict):
            return self._error(None, "bad_request", f"request must be a JSON object, got {type(req).__name__}")
        req_id = req.get("id")
        if req_id is not None and not isinstance(req_id, (str, int)) or isinstance(req_id, bool):
            return self._error(None, "bad_request", "'id' must be a string or an integer")
        try:
            kind = _request_type(req)
            return await self._dispatch(c, kind, req)
        except (InvalidInputError, ProtocolError, ValueError, KeyError, TypeError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            return self._error(req_id, "invalid_input", str(msg)[:500])
        except Exception as e:  # a bug in the loop must not take the server down
            log.exception("request failed")
            return self._error(req_id, "internal", f"{type(e).__name__}: {str(e)[:300]}")

    async def _dispatch(self, c: _Client, kind: str, req: dict) -> dict:
        rid = {"id": req["id"]} if "id" in req else {}
        if kind == "ping":
            return {"type": "pong", **rid, "time": time.time()}
        if kind in ("subscribe", "unsubscribe"):
            c.subscribed = kind == "subscribe"
            if not c.subscribed:
                c.frames.clear()
            return {"type": "ack", "request": kind, **rid}
        transition = _number(req, "transition_ms", 0.0, 60_000.0)
        aloop = asyncio.get_running_loop()
        if kind == "text":
            text = req.get("text")
            if not isinstance(text, str):
                raise InvalidInputError(f"'text' must be a string, got {type(text).__name__}")
            intensity = _number(req, "intensity", 0.0, 4.0)
            t0 = time.perf_counter()
            pred = await aloop.run_in_executor(
                self._executor, lambda: self.loop.set_text(text, intensity=intensity, transition_ms=transition))
            out = {"type": "ack", "request": "text", **rid,
                   "latency_ms": round((time.perf_counter() - t0) * 1e3, 3)}
            if pred is not None:
                emotions = getattr(pred, "emotions", None)
                if emotions:
                    out["emotions"] = {k: round(float(v), 5) for k, v in emotions.items()}
                if getattr(pred, "truncated", False):
                    out["truncated"] = True
            return out
        weights = req.get("weights")
        if not isinstance(weights, dict):
            raise InvalidInputError("'weights' must be an object {name: value} of ARKit blendshape names")
        if len(weights) > 4 * schema.N_MEDIAPIPE:
            raise InvalidInputError(f"'weights' has {len(weights)} entries; at most {schema.N_MEDIAPIPE} names")
        for k, v in weights.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InvalidInputError(f"weight {k!r}: value {v!r} is not a number")
        checked = normalize(weights, what="'weights'")   # the one normaliser: names, numbers, clamping report
        vec, clamped = checked.vector, checked.clamped
        await aloop.run_in_executor(self._executor, lambda: self.loop.set_weights(vec, transition_ms=transition))
        out = {"type": "ack", "request": "weights", **rid}
        if clamped:
            out["warning"] = f"clamped to [0, 1]: {', '.join(map(str, clamped[:10]))}"
        return out


def _reject_constant(name):
    raise ValueError(f"{name} is not allowed (numbers must be finite)")


def _request_type(req: dict) -> str:
    kind = req.get("type")
    if kind is None:  # infer from the payload
        kind = "text" if "text" in req else "weights" if "weights" in req else None
        if kind is None:
            raise InvalidInputError(f"request has no 'type' (accepted: {', '.join(REQUEST_TYPES)})")
    if kind not in _KEYS:
        raise InvalidInputError(f"unknown request type {str(kind)[:50]!r} (accepted: {', '.join(REQUEST_TYPES)})")
    extra = set(req) - _KEYS[kind]
    if extra:
        raise InvalidInputError(f"unknown field(s) {', '.join(sorted(map(str, extra)))[:200]} for a {kind!r} "
                                f"request (accepted: {', '.join(sorted(_KEYS[kind]))})")
    return kind


def _number(req: dict, key: str, lo: float, hi: float):
    v = req.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InvalidInputError(f"{key!r} must be a number, got {v!r}")
    if not lo <= v <= hi:
        raise InvalidInputError(f"{key!r}={v} is outside {lo:g}..{hi:g}")
    return float(v)


def read_message(sock: socket.socket, max_message: int = 1 << 24) -> dict:
    """Blocking helper for clients and tests: read one length-prefixed JSON message."""
    header = _recv_exact(sock, 4)
    (n,) = HEADER.unpack(header)
    if n > max_message:
        raise ProtocolError(f"message of {n} bytes exceeds {max_message}")
    return json.loads(_recv_exact(sock, n).decode("utf-8"))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)
