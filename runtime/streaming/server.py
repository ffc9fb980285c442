"""Control-and-frames server: the TCP transport of the control protocol (spec: ``docs/control-protocol.md``).

Framing and JSON are :mod:`runtime.streaming.wire`; the request schema and how a request is applied are
:mod:`runtime.streaming.protocol`. This module owns the connections:

* an asyncio loop in its own thread; ``send(frame)`` (the avatar-loop sink) only hands the newest frame to
  that thread; each client has a bounded frame queue that drops the oldest frame, so a slow or vanished
  client never blocks the frame loop or the other clients;
* admission: at most ``max_clients`` connections, at most ``max_per_peer`` from one remote address, and the
  last ``loopback_reserve`` slots only for loopback clients (a remote flood cannot lock the local user out);
* timeouts: a message must be finished within ``message_timeout``; a connection that neither sends requests
  nor takes its frames (unsubscribed, or not reading) is closed after ``handshake_timeout`` when it never
  sent a request, else after ``idle_timeout``;
* fair text serving: text requests (the slow ones) wait in one slot per client -- a newer text from the same
  client replaces a waiting one (answered ``"superseded": true``) -- and the client that sent the fewest
  texts lately (decayed over ``DEMAND_TAU`` seconds) goes first, so a flood from some clients delays another
  client's text by about one request;
* replies go out in request order; error replies are logged rate-limited.
"""
from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import math
import socket
import time
from dataclasses import dataclass
from typing import Optional

from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number

from . import protocol
from .protocol import ClientErrorLog, Request, RequestError, Session, error_reply
from .service import FrameService
from .wire import HEADER, MAX_MESSAGE_LIMIT, encode_frame, encode_message, frame_message, read_message

__all__ = ["ControlServer", "ServerOptions", "ServerStats", "admission_error", "is_loopback", "DEFAULT_PORT",
           "MAX_MESSAGE_LIMIT",
           "encode_message", "encode_frame", "frame_message", "read_message"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 7878
DEMAND_TAU = 2.0   # seconds over which a client's recent text requests count against it (fair scheduling)


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address."""
    if host in ("localhost",):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError, ValueError):
        return False
    addrs = {ipaddress.ip_address(i[4][0].split("%")[0]) for i in infos}
    return bool(addrs) and all(a.is_loopback for a in addrs)


def _peer_is_loopback(ip: str) -> bool:
    try:
        a = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return False  # e.g. a Unix socket peer: treat as remote
    mapped = getattr(a, "ipv4_mapped", None)
    return (mapped or a).is_loopback


@dataclass
class ServerOptions:
    """Options of :class:`ControlServer` (validated)."""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT          # 0 = any free port (see ``ControlServer.address``)
    allow_remote: bool = False        # needed to bind anything but a loopback address
    max_message: int = 64 * 1024      # bytes of JSON per message, both directions (at most 16 MiB)
    max_clients: int = 64
    max_per_peer: int = 8             # connections from one remote address (loopback: only max_clients)
    loopback_reserve: int = 4         # of max_clients, slots that only loopback clients may take (< max_clients)
    frame_queue: int = 8              # frames buffered per client (drop-oldest beyond)
    reply_queue: int = 64             # replies buffered per client before its reads pause
    message_timeout: float = 10.0     # seconds to finish a started message
    handshake_timeout: float = 10.0   # seconds a new, idle connection may wait before its first request
    idle_timeout: float = 120.0       # seconds an idle connection may stay after its last request
    request_threads: int = 1          # threads running set_text / set_weights
    digits: int = 5                   # significant digits of frame weights
    send_buffer: int = 64 * 1024      # kernel + asyncio send buffer per client (bounds a slow client's lag)

    def __post_init__(self):
        check_int(self.port, "ServerOptions.port", 0, 65535)
        for name in ("max_clients", "max_per_peer", "frame_queue", "reply_queue", "request_threads", "send_buffer"):
            check_int(getattr(self, name), f"ServerOptions.{name}", 1)
        check_int(self.loopback_reserve, "ServerOptions.loopback_reserve", 0)
        check_int(self.digits, "ServerOptions.digits", 1, 9)
        check_int(self.max_message, "ServerOptions.max_message (--max-message, bytes)", 64, MAX_MESSAGE_LIMIT)
        for name in ("message_timeout", "handshake_timeout", "idle_timeout"):
            check_number(getattr(self, name), f"ServerOptions.{name} (seconds)", 0, lo_open=True)
        if not self.allow_remote and not is_loopback(self.host):
            raise InvalidInputError(
                f"refusing to bind {self.host!r}: it is not a loopback address; anyone on the network could "
                "drive the avatar. Pass --allow-remote (allow_remote=True) to bind it anyway.")


def admission_error(peer_ip: str, open_from_peer: int, open_total: int, opts: ServerOptions) -> Optional[dict]:
    """The error reply refusing a new connection from ``peer_ip`` (``None``: admit it), given how many
    connections are open from that address and in all."""
    if open_total >= opts.max_clients:
        return error_reply("server_full", f"server has {opts.max_clients} clients, the maximum; try later")
    if _peer_is_loopback(peer_ip):
        return None
    reserve = min(opts.loopback_reserve, opts.max_clients - 1)  # remote clients always get one slot
    if open_total >= opts.max_clients - reserve:
        return error_reply("server_full", f"server has {open_total} clients; the remaining {reserve} slots "
                                          "are kept for local (loopback) clients")
    if open_from_peer >= opts.max_per_peer:
        return error_reply("peer_limit", f"{peer_ip} already has {open_from_peer} connections, the maximum per "
                                         "address; close one first")
    return None


@dataclass
class ServerStats:
    clients: int = 0
    connections: int = 0
    refused: int = 0            # connections refused (server_full, peer_limit)
    timed_out: int = 0          # connections closed by the handshake/idle timeouts
    requests: int = 0
    errors: int = 0             # error replies sent (bad requests)
    superseded: int = 0         # text requests replaced by a newer one from the same client
    frames: int = 0             # frames broadcast
    frames_coalesced: int = 0   # frames dropped because the server thread fell 8 frames behind
    frames_dropped: int = 0     # frames dropped from slow clients' queues
    bytes_sent: int = 0


class _Client:
    __slots__ = ("writer", "frames", "replies", "wake", "room", "session", "closed", "peer", "task",
                 "requests", "last_active", "last_served", "demand", "demand_t")

    def __init__(self, writer, frame_queue: int):
        self.writer = writer
        self.frames = collections.deque(maxlen=frame_queue)
        self.replies = collections.deque()   # bytes, or a Future of bytes (a text request being served)
        self.wake = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.session = Session()
        self.closed = False
        peer = writer.get_extra_info("peername")
        self.peer = peer if isinstance(peer, tuple) else ("?", 0)
        self.task = None
        self.requests = 0
        self.last_active = time.monotonic()   # last request, or last frame/reply the client took
        self.last_served = -math.inf          # when its last text request started (fair scheduling)
        self.demand, self.demand_t = 0.0, 0.0  # text requests sent, decayed with DEMAND_TAU (fair scheduling)

    def add_demand(self, now: float) -> None:
        self.demand = self.recent_demand(now) + 1.0
        self.demand_t = now

    def recent_demand(self, now: float) -> float:
        return self.demand * math.exp(-(now - self.demand_t) / DEMAND_TAU)

    @property
    def name(self) -> str:
        return f"{self.peer[0]}:{self.peer[1]}"


class ControlServer(FrameService):
    """TCP control-and-frames server for an avatar loop (``set_text``, ``set_weights``, ``add_sink``).

    ``start()`` binds and registers the server as a sink of ``loop``; ``close()`` undoes both.
    """

    THREAD_NAME = "emo3d-serve"
    BIND_ERROR = "cannot listen on"

    def __init__(self, loop, options: ServerOptions | None = None):
        self.options = options or ServerOptions()
        super().__init__(loop, host=self.options.host, port=self.options.port,
                         request_threads=self.options.request_threads, thread_prefix="emo3d-req")
        self.stats = ServerStats()
        self.error_log = ClientErrorLog(log)
        self._server = None
        self._clients: set[_Client] = set()
        self._texts: dict = {}             # client -> (Request, Future): the one waiting text per client
        self._text_ready: asyncio.Event | None = None

    # --- lifecycle (FrameService) --------------------------------------------------------------
    def start(self) -> "ControlServer":
        super().start()
        log.info("control server listening on %s:%d", *self.address)
        return self

    async def _bind(self) -> tuple:
        self._server = await asyncio.start_server(self._handle, self.options.host, self.options.port,
                                                  limit=2 ** 16)
        return self._server.sockets[0].getsockname()

    async def _serve(self, stop: asyncio.Future) -> None:
        aloop = asyncio.get_running_loop()
        self._text_ready = asyncio.Event()
        for _ in range(self.options.request_threads):
            aloop.create_task(self._text_worker())
        aloop.create_task(self._reaper())
        try:
            await stop
        finally:
            await self._shutdown()

    async def _shutdown(self):
        self._server.close()
        for c in list(self._clients):
            self._drop(c)
        tasks = [t for t in asyncio.all_tasks(self._aloop) if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _encode(self, frame) -> bytes:
        return encode_frame(frame, self.options.digits)

    def _subscribers(self):
        return (c for c in self._clients if c.session.subscribed)

    # --- per connection (server thread) --------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.stats.connections += 1
        self._tune_socket(writer.get_extra_info("socket"), self.options.send_buffer)
        writer.transport.set_write_buffer_limits(high=self.options.send_buffer)
        c = _Client(writer, self.options.frame_queue)
        refusal = admission_error(c.peer[0], sum(1 for o in self._clients if o.peer[0] == c.peer[0]),
                                  len(self._clients), self.options)
        if refusal is not None:
            self.stats.refused += 1
            self._log_error(c, refusal)
            c.replies.append(encode_message(refusal))
            c.session.subscribed = False
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
            c.session.subscribed = False
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

    def _drop(self, c: _Client, abort: bool = False):
        if not c.closed:
            c.closed = True
            c.wake.set()
            c.room.set()
            try:
                if abort:  # a client that does not read would keep a closing transport open forever
                    c.writer.transport.abort()
                else:
                    c.writer.close()
            except (OSError, RuntimeError, AttributeError):
                pass
        waiting = self._texts.pop(c, None)
        if waiting is not None and not waiting[1].done():
            waiting[1].cancel()
        self._clients.discard(c)
        self.stats.clients = len(self._clients)

    async def _writer(self, c: _Client, close_when_empty: bool = False):
        try:
            while not c.closed:
                head = c.replies[0] if c.replies else None
                if head is not None and (isinstance(head, bytes) or head.done()):
                    c.replies.popleft()
                    data = head if isinstance(head, bytes) else (None if head.cancelled() else head.result())
                    if len(c.replies) < self.options.reply_queue:
                        c.room.set()
                    if data is None:
                        continue
                elif c.frames:
                    data = c.frames.popleft()
                elif close_when_empty and not c.replies:
                    break
                else:
                    await c.wake.wait()
                    c.wake.clear()
                    continue
                c.writer.write(data)
                self.stats.bytes_sent += len(data)
                await c.writer.drain()
                c.last_active = time.monotonic()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self._drop(c)

    def _log_error(self, c: _Client, reply: dict) -> None:
        self.stats.errors += 1
        self.error_log.client_error(c.name, reply["code"], reply["message"])

    async def _queue_reply(self, c: _Client, item) -> None:
        """Queue a reply (bytes, or a Future of bytes) in request order; pause reading while the client
        does not take its replies."""
        if c.closed:
            return
        if isinstance(item, bytes) and not c.replies and \
                c.writer.transport.get_write_buffer_size() < self.options.send_buffer:
            c.writer.write(item)  # nothing queued before it: send now, without a round through the writer task
            self.stats.bytes_sent += len(item)
            return
        c.replies.append(item)
        c.wake.set()
        if len(c.replies) >= self.options.reply_queue:
            c.room.clear()
            await c.room.wait()

    async def _reply(self, c: _Client, obj: dict) -> None:
        if obj.get("type") == "error":
            self._log_error(c, obj)
        await self._queue_reply(c, encode_message(obj))

    async def _reader(self, reader: asyncio.StreamReader, c: _Client):
        opts = self.options
        while not c.closed:
            try:
                first = await reader.readexactly(1)  # idle connections are closed by the reaper
            except asyncio.IncompleteReadError:
                return  # clean close between messages
            try:
                header = first + await asyncio.wait_for(reader.readexactly(3), opts.message_timeout)
            except asyncio.IncompleteReadError as e:
                await self._reply(c, error_reply("truncated", f"connection ended inside the 4-byte length "
                                                 f"header after {1 + len(e.partial)} bytes"))
                return
            except asyncio.TimeoutError:
                await self._reply(c, error_reply("timeout", f"length header not completed within "
                                                 f"{opts.message_timeout:g} s"))
                return
            (n,) = HEADER.unpack(header)
            if n == 0:
                self._count_request(c)
                await self._reply(c, error_reply("empty", "empty message (length 0); send a JSON object"))
                continue
            if n > opts.max_message:
                await self._reply(c, error_reply("too_large", f"message of {n} bytes exceeds the maximum of "
                                                 f"{opts.max_message} bytes; closing the connection"))
                return
            try:
                body = await asyncio.wait_for(reader.readexactly(n), opts.message_timeout)
            except asyncio.IncompleteReadError as e:
                await self._reply(c, error_reply("truncated", f"header announced {n} bytes but the "
                                                 f"connection ended after {len(e.partial)}"))
                return
            except asyncio.TimeoutError:
                await self._reply(c, error_reply("timeout", f"message of {n} bytes not completed within "
                                                 f"{opts.message_timeout:g} s; closing the connection"))
                return
            self._count_request(c)
            await self._request(c, body)
            await asyncio.sleep(0)  # one message per turn: a client with a full buffer cannot starve the others

    def _count_request(self, c: _Client) -> None:
        self.stats.requests += 1
        c.requests += 1
        c.last_active = time.monotonic()

    # --- requests ------------------------------------------------------------------------------
    async def _request(self, c: _Client, body: bytes) -> None:
        try:
            req = protocol.decode_request(body)
        except RequestError as e:
            await self._reply(c, error_reply(e.code, str(e), e.id))
            return
        if req.kind == "text":
            await self._submit_text(c, req)
            return
        if req.kind == "weights":
            reply = await asyncio.get_running_loop().run_in_executor(self._executor, self._apply, c, req)
        else:
            reply = self._apply(c, req)
            if req.kind == "unsubscribe":
                c.frames.clear()
        await self._reply(c, reply)

    def _apply(self, c: _Client, req: Request) -> dict:
        """protocol.apply, with every failure turned into an error reply (may run on a request thread)."""
        try:
            return protocol.apply(req, self.loop, c.session)
        except RequestError as e:
            return error_reply(e.code, str(e), e.id)
        except Exception as e:  # noqa: BLE001  (a bug in the loop must not take the server down)
            self.error_log.internal(c.name, e)
            return error_reply("internal", f"{type(e).__name__}: {str(e)[:300]}", req.id)

    async def _submit_text(self, c: _Client, req: Request) -> None:
        fut = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda _f: c.wake.set())
        c.add_demand(time.monotonic())
        old = self._texts.pop(c, None)
        if old is not None:  # the latest text of a client wins
            self.stats.superseded += 1
            old[1].set_result(encode_message(protocol.superseded_reply(old[0])))
        self._texts[c] = (req, fut)
        self._text_ready.set()
        await self._queue_reply(c, fut)

    async def _text_worker(self) -> None:
        aloop = asyncio.get_running_loop()
        while True:
            if not self._texts:
                self._text_ready.clear()
                await self._text_ready.wait()
                continue
            now = time.monotonic()  # lightest recent demand first, then least recently served
            c = min(self._texts, key=lambda k: (k.recent_demand(now), k.last_served))
            req, fut = self._texts.pop(c)
            c.last_served = time.monotonic()
            reply = await aloop.run_in_executor(self._executor, self._apply, c, req)
            if reply.get("type") == "error":
                self._log_error(c, reply)
            if not fut.done():
                fut.set_result(encode_message(reply))

    async def _reaper(self) -> None:
        """Close connections that neither send requests nor take their frames (handshake/idle timeouts)."""
        opts = self.options
        period = min(1.0, opts.handshake_timeout / 4, opts.idle_timeout / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for c in list(self._clients):
                limit = opts.handshake_timeout if c.requests == 0 else opts.idle_timeout
                if now - c.last_active > limit:
                    self.stats.timed_out += 1
                    what = "no request" if c.requests == 0 else "no request since the last one"
                    reply = error_reply("timeout", f"{what} and no frames taken for {limit:g} s; closing the "
                                                   "connection (send a request, e.g. ping, to stay connected)")
                    self._log_error(c, reply)
                    try:  # tell it if it still reads; a client that does not read is cut off a second later
                        c.writer.write(encode_message(reply))
                    except (OSError, RuntimeError):
                        pass
                    self._clients.discard(c)
                    self.stats.clients = len(self._clients)
                    asyncio.get_running_loop().call_later(1.0, self._drop, c, True)
