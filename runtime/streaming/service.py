"""What every frame transport shares (the TCP control server, the browser viewer's WebSocket server).

* an asyncio loop in its own thread: :meth:`FrameService.start` binds (the subclass's ``_bind``) and returns
  once the socket listens, or raises the bind error; :meth:`FrameService.close` resolves the stop future the
  subclass's ``_serve`` awaits and joins the thread;
* the avatar-loop sink: ``send(frame)`` never blocks the frame loop; it hands the newest frame to the service
  thread (at most ``PENDING`` frames behind; older unsent frames are dropped and counted as
  ``frames_coalesced``), which encodes it once and appends it to every subscribed client's drop-oldest queue
  (``frames_dropped`` when a slow client's queue is full).
"""
from __future__ import annotations

import asyncio
import collections
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Optional

from emo3d.errors import InvalidInputError

__all__ = ["FrameService"]


class FrameService:
    """Base of the frame transports. A subclass implements ``_bind`` (start listening, return the bound
    ``(host, port)``), ``_serve(stop)`` (run until ``stop`` resolves, then close its clients),
    ``_encode(frame)`` (one frame as the transport's payload) and ``_subscribers()`` (the clients that take
    frames: objects with ``frames`` (a bounded deque), ``wake`` (an asyncio.Event) and ``closed``). Its
    ``stats`` has ``frames``, ``frames_coalesced`` and ``frames_dropped``."""

    PENDING = 8          # frames the service thread may fall behind the frame loop
    THREAD_NAME = "emo3d-service"
    BIND_ERROR = "cannot listen on"   # start of the InvalidInputError when binding fails

    def __init__(self, loop, *, host: str, port: int, request_threads: int, thread_prefix: str):
        self.loop = loop
        self.address: Optional[tuple] = None
        self._host, self._port = host, port
        self._aloop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._stop: Optional[asyncio.Future] = None
        self._pending: collections.deque = collections.deque(maxlen=self.PENDING)
        self._scheduled = False
        self._closed = False
        self._executor = ThreadPoolExecutor(request_threads, thread_name_prefix=thread_prefix)

    # --- subclass hooks ------------------------------------------------------------------------
    async def _bind(self) -> tuple:
        raise NotImplementedError

    async def _serve(self, stop: asyncio.Future) -> None:
        raise NotImplementedError

    def _encode(self, frame) -> Any:
        raise NotImplementedError

    def _subscribers(self) -> Iterable:
        raise NotImplementedError

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self):
        ready = threading.Event()
        error: list = []

        async def main():
            self._stop = asyncio.get_running_loop().create_future()
            try:
                self.address = tuple((await self._bind())[:2])
            except BaseException as e:  # bind failed
                error.append(e)
                ready.set()
                return
            ready.set()
            await self._serve(self._stop)

        def run():
            aloop = asyncio.new_event_loop()
            self._aloop = aloop
            try:
                aloop.run_until_complete(main())
            finally:
                aloop.close()

        self._thread = threading.Thread(target=run, name=self.THREAD_NAME, daemon=True)
        self._thread.start()
        ready.wait()
        if error:
            self._executor.shutdown(wait=False)
            raise InvalidInputError(f"{self.BIND_ERROR} {self._host}:{self._port}: {error[0]}")
        if self.loop is not None and hasattr(self.loop, "add_sink"):
            self.loop.add_sink(self)
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.loop is not None and hasattr(self.loop, "remove_sink"):
            try:
                self.loop.remove_sink(self)
            except ValueError:  # already removed
                pass
        aloop, stop = self._aloop, self._stop
        if aloop is not None and stop is not None and self._thread is not None and self._thread.is_alive():
            aloop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
            self._thread.join(5)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def _tune_socket(sock, send_buffer: int) -> None:
        """A client's socket: a bounded kernel send buffer (bounds a slow client's lag) and no Nagle delay."""
        if sock is None:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    # --- sink (frame-loop thread) --------------------------------------------------------------
    def send(self, frame) -> None:
        """Hand ``frame`` to the service thread; never blocks."""
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
            payload = self._encode(self._pending.popleft())
            self.stats.frames += 1
            for c in self._subscribers():
                if not c.closed:
                    if len(c.frames) == c.frames.maxlen:
                        self.stats.frames_dropped += 1
                    c.frames.append(payload)
                    c.wake.set()
