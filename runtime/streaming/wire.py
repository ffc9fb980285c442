"""Wire codec of the control protocol (spec: ``docs/control-protocol.md``): pure bytes <-> objects, no I/O
policy. Every message in both directions is ``uint32 big-endian length`` + that many bytes of UTF-8 JSON
(one object).

The transport (:mod:`runtime.streaming.server`) frames the stream with :data:`HEADER`; this module turns a
message body into a JSON value (:func:`decode_body`, raising :class:`WireError` with the protocol's error
code) and replies and frames into bytes (:func:`encode_message`, :func:`encode_frame`).
``read_message`` is a small blocking helper for clients and tests.
"""
from __future__ import annotations

import json
import re
import socket
import struct

import numpy as np

from emo3d import schema
from emo3d.avatar.rig import EXTRA_TARGETS
from emo3d.errors import ProtocolError

HEADER = struct.Struct(">I")
MAX_MESSAGE_LIMIT = 16 * 1024 * 1024   # the largest --max-message accepted (a frame is ~1.5 KB)

# A request's "id" read from text that is not valid JSON (so a bad_json reply can still carry it).
_ID_RE = re.compile(r'"id"\s*:\s*(-?\d{1,18}(?![\d.eE])|"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]){0,200}")')


class WireError(ProtocolError):
    """A message body that is not one JSON value: ``code`` is the protocol's error code
    (``bad_encoding``, ``bad_json``), ``id`` the request id when it could still be read."""

    def __init__(self, code: str, message: str, req_id=None):
        super().__init__(message)
        self.code, self.id = code, req_id


def encode_message(obj) -> bytes:
    """One wire message: 4-byte big-endian length + compact UTF-8 JSON (a string with a lone surrogate, e.g.
    echoed from a bad request, is written as a JSON \\u escape)."""
    try:
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")
    return HEADER.pack(len(body)) + body


def _reject_constant(name):
    raise ValueError(f"{name} is not allowed (numbers must be finite)")


def readable_id(text: str):
    """The ``"id"`` of a request whose JSON is broken, when it can still be read (string or integer)."""
    m = _ID_RE.search(text)
    if m is None:
        return None
    try:
        return json.loads(m.group(1))
    except ValueError:
        return None


def decode_body(body: bytes):
    """A message body -> its JSON value. Raises :class:`WireError` (``bad_encoding`` for bytes that are not
    UTF-8, ``bad_json`` for text that is not JSON, NaN/Infinity and nesting deeper than Python can parse)."""
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as e:
        raise WireError("bad_encoding", f"message is not UTF-8 text (byte {e.start}: {e.reason}); "
                                        "send UTF-8 JSON") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise WireError("bad_json", "invalid JSON: nested too deeply; send one flat JSON object",
                        readable_id(text[:4096])) from None
    except ValueError as e:
        raise WireError("bad_json", f"invalid JSON: {str(e)[:200]}", readable_id(text[:4096])) from None


_FRAME_TEMPLATES: dict = {}


def encode_frame(frame, digits: int = 5) -> bytes:
    """One wire message for an avatar frame (same JSON as :func:`frame_message`, ~4x faster)."""
    tmpl = _FRAME_TEMPLATES.get(digits)
    if tmpl is None:
        w = ",".join('"%s":%%.%dg' % (n, digits) for n in schema.MEDIAPIPE_NAMES)
        x = ",".join('"%s":%%.%dg' % (n, digits) for n in EXTRA_TARGETS)
        tmpl = _FRAME_TEMPLATES[digits] = (
            '{"type":"frame","index":%d,"t":%.6f,"weights":{' + w + '},"extras":{' + x + '},'
            '"head":[%.6g,%.6g,%.6g],"eyes":[%.6g,%.6g,%.6g,%.6g,%.6g,%.6g]}')
    w = np.nan_to_num(np.asarray(frame.weights, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    x = np.nan_to_num(np.asarray(_extras(frame), dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    pose = np.nan_to_num(np.asarray(tuple(frame.head) + tuple(frame.eyes), dtype=np.float64))
    body = (tmpl % ((int(frame.index), float(frame.t)) + tuple(w.tolist()) + tuple(x.tolist())
                    + tuple(pose.tolist()))).encode()
    return HEADER.pack(len(body)) + body


def _extras(frame) -> list:
    """The frame's channels beyond the 52 (``EXTRA_TARGETS``: tongueOut) in order, 0 where it has none."""
    ex = getattr(frame, "extras", None) or {}
    return [float(ex.get(n, 0.0)) for n in EXTRA_TARGETS]


def frame_message(frame, decimals: int = 5) -> dict:
    """The JSON object sent for one avatar frame."""
    w = np.round(np.asarray(frame.weights, dtype=np.float64), decimals).tolist()
    x = np.round(np.asarray(_extras(frame), dtype=np.float64), decimals).tolist()
    return {"type": "frame", "index": int(frame.index), "t": round(float(frame.t), 6),
            "weights": dict(zip(schema.MEDIAPIPE_NAMES, w)), "extras": dict(zip(EXTRA_TARGETS, x)),
            "head": [round(float(x), 6) for x in frame.head],
            "eyes": [round(float(x), 6) for x in frame.eyes]}


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
