"""Request schema of the control protocol (spec: ``docs/control-protocol.md``), independent of the transport.

* :func:`parse_request` checks one decoded JSON value and returns a :class:`Request` (or raises
  :class:`RequestError` whose ``code`` is the protocol's error code and whose message names the field);
* :func:`apply` runs a parsed request against an avatar loop (``set_text``/``set_weights``) and a
  :class:`Session` (the connection's subscription) and returns the reply object;
* :func:`handle_message` does both for any transport: a decoded message (or raw body bytes) in, exactly one
  reply object out, never an exception (a bug in the loop becomes an ``internal`` error reply).

The TCP server (:mod:`runtime.streaming.server`) uses the pieces separately so it can schedule text
requests fairly; a WebSocket transport can call :func:`handle_message` directly.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from emo3d import names as name_map
from emo3d import schema
from emo3d.avatar.rig import EXTRA_TARGETS
from emo3d.errors import InvalidInputError, ProtocolError
from emo3d.weights import normalize

from .wire import WireError, decode_body

REQUEST_TYPES = ("text", "weights", "ping", "subscribe", "unsubscribe", "idle")
FIELDS = {
    "text": ("type", "id", "text", "intensity", "transition_ms"),
    "weights": ("type", "id", "weights", "transition_ms"),
    "ping": ("type", "id"),
    "subscribe": ("type", "id"),
    "unsubscribe": ("type", "id"),
    "idle": ("type", "id", "idle"),
}
INTENSITY_RANGE = (0.0, 4.0)
TRANSITION_RANGE = (0.0, 60_000.0)
MAX_ID_CHARS = 200


class RequestError(ProtocolError):
    """A request the server answers with an error reply: ``code`` (``bad_request``, ``invalid_input`` ...),
    the message (what was wrong, which field, what is accepted) and the request's ``id`` when readable."""

    def __init__(self, code: str, message: str, req_id=None):
        super().__init__(message)
        self.code, self.id = code, req_id


@dataclass(frozen=True)
class Request:
    """One checked request. ``weights`` is the 52-vector (MediaPipe order, clamped to 0..1); ``extras`` the
    channels beyond the 52 it sets (``{"tongueOut": v}``, clamped to 0..1); ``clamped`` lists the names whose
    values were outside 0..1."""
    kind: str
    id: object = None
    text: Optional[str] = None
    intensity: Optional[float] = None
    transition_ms: Optional[float] = None
    weights: Optional[np.ndarray] = field(default=None, compare=False)
    clamped: tuple = ()
    idle: Optional[bool] = None
    extras: dict = field(default_factory=dict, compare=False)


@dataclass
class Session:
    """Per-connection state a request can change."""
    subscribed: bool = True


def error_reply(code: str, message: str, req_id=None) -> dict:
    out = {"type": "error", "code": code, "message": message}
    if req_id is not None:
        out["id"] = req_id
    return out


def _with_id(req: Request, obj: dict) -> dict:
    """``obj`` with the request's id after ``type`` (and ``request``), where clients look for it."""
    if req.id is None:
        return obj
    head = {k: obj[k] for k in ("type", "request") if k in obj}
    return {**head, "id": req.id, **obj}


def _number(obj: dict, key: str, lo: float, hi: float, req_id) -> Optional[float]:
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RequestError("invalid_input", f"{key!r} must be a number in {lo:g}..{hi:g}, got "
                                            f"{type(v).__name__} {_short(v)}", req_id)
    # int/float comparisons are exact in Python and never overflow (float(10**400) would)
    if isinstance(v, float) and not math.isfinite(v) or not lo <= v <= hi:
        raise RequestError("invalid_input", f"{key!r}={_short(v)} is outside {lo:g}..{hi:g}", req_id)
    return float(v)


def _short(v, n: int = 40) -> str:
    s = repr(v) if not isinstance(v, int) or abs(v) < 10 ** 30 else f"an integer of {len(str(abs(v)))} digits"
    return s if len(s) <= n else s[:n] + "..."


def _is_unicode(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(text, req_id=None) -> str:
    if not isinstance(text, str):
        raise RequestError("invalid_input", f"'text' must be a string, got {type(text).__name__}", req_id)
    if not text.strip():
        raise RequestError("invalid_input", "'text' is empty; send a description such as 'furious scowl'", req_id)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RequestError("invalid_input", f"'text' contains a lone UTF-16 surrogate "
                                            f"(U+{ord(text[e.start]):04X} at character {e.start}); send valid "
                                            "Unicode text (surrogates only come in \\uD8xx\\uDCxx pairs)",
                           req_id) from None
    return text


def weights_vector(weights, req_id=None) -> tuple[np.ndarray, tuple, dict]:
    """A request's ``weights`` object -> (52-vector clamped to 0..1, ``name=value`` of each clamped value,
    the extra channels beyond the 52 it names as ``{"tongueOut": v}`` clamped to 0..1), through the one
    normaliser (:func:`emo3d.weights.normalize`) and the one name map (:func:`emo3d.names.resolve`)."""
    if not isinstance(weights, dict):
        raise RequestError("invalid_input", "'weights' must be an object {name: value} of ARKit blendshape "
                                            f"names, got {type(weights).__name__}", req_id)
    if len(weights) > 4 * schema.N_MEDIAPIPE:
        raise RequestError("invalid_input", f"'weights' has {len(weights)} entries; at most "
                                            f"{schema.N_MEDIAPIPE} names", req_id)
    values, huge = {}, []
    for k, v in weights.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or isinstance(v, float) and not math.isfinite(v):
            raise RequestError("invalid_input", f"weight {_short(k)}: value {_short(v)} is not a finite number",
                               req_id)
        if isinstance(v, int) and not -2 <= v <= 2:   # float(10**400) overflows: clamp exactly here
            digits = str(abs(v))
            huge.append(f"{k}={'-' if v < 0 else ''}{digits[0]}e+{len(digits) - 1}")
            v = min(max(v, 0), 1)
        values[k] = v
    extras = {}
    for k, v in values.items():   # tongueOut under any spelling: a channel beyond the 52
        m = name_map.resolve(str(k))
        if m is not None and m.targets[0] in EXTRA_TARGETS:
            extras[m.targets[0]] = float(min(max(v, 0.0), 1.0))
    try:
        checked = normalize(values, what="'weights'")   # the one normaliser: names, numbers, clamping report
    except InvalidInputError as e:  # unknown name (with close matches) ...
        raise RequestError("invalid_input", str(e)[:500], req_id) from None
    return checked.vector, tuple(huge) + tuple(checked.clamped), extras


def parse_request(obj) -> Request:
    """One decoded JSON value -> :class:`Request`; raises :class:`RequestError`."""
    if not isinstance(obj, dict):
        raise RequestError("bad_request", f"request must be a JSON object, got {type(obj).__name__}")
    req_id = obj.get("id")
    if req_id is not None and (isinstance(req_id, bool) or not isinstance(req_id, (str, int))
                               or isinstance(req_id, str) and len(req_id) > MAX_ID_CHARS
                               or isinstance(req_id, int) and abs(req_id) >= 2 ** 63):
        raise RequestError("bad_request", f"'id' must be a string of at most {MAX_ID_CHARS} characters or a "
                                          f"64-bit integer, got {type(req_id).__name__} {_short(req_id)}")
    if isinstance(req_id, str) and not _is_unicode(req_id):
        raise RequestError("bad_request", "'id' contains a lone UTF-16 surrogate; send valid Unicode text")
    kind = obj.get("type")
    if kind is None:  # infer from the payload
        kind = "text" if "text" in obj else "weights" if "weights" in obj else None
        if kind is None:
            raise RequestError("invalid_input", f"request has no 'type' (accepted: {', '.join(REQUEST_TYPES)})",
                               req_id)
    if not isinstance(kind, str) or kind not in FIELDS:
        raise RequestError("invalid_input", f"unknown request type {_short(kind)} (accepted: "
                                            f"{', '.join(REQUEST_TYPES)})", req_id)
    extra = [k for k in obj if k not in FIELDS[kind]]
    if extra:
        raise RequestError("invalid_input", f"unknown field(s) {_short(', '.join(sorted(extra)), 200)} for a "
                                            f"{kind!r} request (accepted: {', '.join(FIELDS[kind])})", req_id)
    if kind in ("ping", "subscribe", "unsubscribe"):
        return Request(kind, req_id)
    if kind == "idle":
        on = obj.get("idle")
        if not isinstance(on, bool):
            raise RequestError("invalid_input", f"'idle' must be true or false, got {_short(on)}", req_id)
        return Request(kind, req_id, idle=on)
    transition = _number(obj, "transition_ms", *TRANSITION_RANGE, req_id)
    if kind == "text":
        return Request(kind, req_id, text=check_text(obj.get("text"), req_id),
                       intensity=_number(obj, "intensity", *INTENSITY_RANGE, req_id), transition_ms=transition)
    vec, clamped, extras = weights_vector(obj.get("weights"), req_id)
    return Request(kind, req_id, transition_ms=transition, weights=vec, clamped=clamped, extras=extras)


def decode_request(body: bytes) -> Request:
    """Raw message body -> :class:`Request` (wire errors become :class:`RequestError` with the same code)."""
    try:
        obj = decode_body(body)
    except WireError as e:
        raise RequestError(e.code, str(e), e.id) from None
    return parse_request(obj)


def apply(req: Request, target, session: Session) -> dict:
    """Run ``req`` against the avatar loop ``target`` and ``session``; returns the reply object. The loop's
    own rejections (``InvalidInputError``, ``ValueError``, ``OverflowError``) become :class:`RequestError`;
    anything else propagates (the caller reports it as ``internal``)."""
    if req.kind == "ping":
        return _with_id(req, {"type": "pong", "time": time.time()})
    if req.kind in ("subscribe", "unsubscribe"):
        session.subscribed = req.kind == "subscribe"
        return _with_id(req, {"type": "ack", "request": req.kind})
    if target is None:
        raise RequestError("invalid_input", f"this server drives no avatar loop; a {req.kind!r} request cannot "
                                            "be applied", req.id)
    try:
        if req.kind == "idle":
            if not callable(getattr(target, "set_idle", None)):
                raise RequestError("invalid_input", "this avatar loop has no idle motion to switch", req.id)
            target.set_idle(req.idle)
            return _with_id(req, {"type": "ack", "request": "idle", "idle": req.idle})
        if req.kind == "text":
            t0 = time.perf_counter()
            pred = target.set_text(req.text, intensity=req.intensity, transition_ms=req.transition_ms)
            out = _with_id(req, {"type": "ack", "request": "text",
                                 "latency_ms": round((time.perf_counter() - t0) * 1e3, 3)})
            emotions = getattr(pred, "emotions", None) if pred is not None else None
            if emotions:
                out["emotions"] = {k: round(float(v), 5) for k, v in emotions.items()}
            if getattr(pred, "truncated", False):
                out["truncated"] = True
            return out
        if req.extras:   # the loop takes the extra channels from a {name: value} mapping
            target.set_weights({**dict(zip(schema.MEDIAPIPE_NAMES, req.weights.tolist())), **req.extras},
                               transition_ms=req.transition_ms)
        else:
            target.set_weights(req.weights, transition_ms=req.transition_ms)
    except (InvalidInputError, ValueError, OverflowError) as e:
        raise RequestError("invalid_input", str(e)[:500], req.id) from None
    out = _with_id(req, {"type": "ack", "request": "weights"})
    if req.clamped:
        out["warning"] = f"clamped to [0, 1]: {', '.join(_short(k) for k in req.clamped[:10])}"
    return out


def superseded_reply(req: Request) -> dict:
    """The reply to a text request that a newer text from the same client replaced before it was applied."""
    return _with_id(req, {"type": "ack", "request": "text", "superseded": True})


def handle_message(message, target, session: Session, errors: "ClientErrorLog | None" = None,
                   peer: str = "client") -> dict:
    """Any transport: one message (raw body ``bytes`` or an already decoded JSON value) -> one reply object.
    Never raises for a bad message or a failing loop; ``errors`` (optional) logs the error replies."""
    req_id = None
    try:
        req = decode_request(message) if isinstance(message, (bytes, bytearray, memoryview)) \
            else parse_request(message)
        req_id = req.id
        return apply(req, target, session)
    except RequestError as e:
        if errors is not None:
            errors.client_error(peer, e.code, str(e))
        return error_reply(e.code, str(e), e.id)
    except Exception as e:  # noqa: BLE001  (a bug in the loop must not take the transport down)
        if errors is not None:
            errors.internal(peer, e)
        return error_reply("internal", f"{type(e).__name__}: {str(e)[:300]}", req_id)


class ClientErrorLog:
    """Rate-limited log of error replies: at most ``burst`` lines per ``window`` seconds (internal errors with
    a traceback, client errors at INFO), then one line saying how many were suppressed. A flood of bad
    requests therefore produces a bounded log."""

    def __init__(self, logger: logging.Logger, burst: int = 10, window: float = 10.0):
        self.logger, self.burst, self.window = logger, burst, window
        self._lock = threading.Lock()
        self._start, self._count, self.suppressed = -math.inf, 0, 0
        self.lines = 0

    def _allow(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._start >= self.window:
                if self._count > self.burst:
                    self.logger.warning("%d more error replies not logged in the last %.0f s",
                                        self._count - self.burst, self.window)
                    self.lines += 1
                self._start, self._count = now, 0
            self._count += 1
            if self._count > self.burst:
                self.suppressed += 1
                return False
            self.lines += 1
            return True

    def client_error(self, peer: str, code: str, message: str) -> None:
        if self.logger.isEnabledFor(logging.INFO) and self._allow():
            self.logger.info("%s: %s: %s", peer, code, message[:200])

    def internal(self, peer: str, exc: BaseException) -> None:
        if self._allow():
            self.logger.error("%s: request failed (internal error)", peer, exc_info=exc)
