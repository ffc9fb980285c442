"""VMC protocol (Virtual Motion Capture over OSC/UDP): one bundle per avatar frame.

Each frame becomes ONE OSC bundle (time tag "immediately") holding, in order:

1. ``/VMC/Ext/OK (int 1)`` when ``ok=True`` (model loaded; optional),
2. ``/VMC/Ext/T (float seconds)`` when ``time=True`` (optional),
3. ``/VMC/Ext/Bone/Pos`` for ``Head``, ``LeftEye`` and ``RightEye`` (local rotations from the frame's
   head and eye angles; :mod:`runtime.streaming.vmc_bones`) when ``bones=True``,
4. ``/VMC/Ext/Blend/Val (string name, float value)`` for every name of ``schema.VMC_NAMES``
   (ARKit "perfect sync" clip names, e.g. ``JawOpen``),
5. ``/VMC/Ext/Blend/Apply``.

Receivers such as EVMC4U (Unity) or VSeeFace apply the values without custom code.
"""
from __future__ import annotations

import socket
import struct

import numpy as np

from emo3d import schema
from emo3d.errors import InvalidInputError
from emo3d.options import check_int
from emo3d.weights import normalize

from . import osc, vmc_bones

DEFAULT_PORT = 39539
BLEND_VAL = "/VMC/Ext/Blend/Val"
BLEND_APPLY = "/VMC/Ext/Blend/Apply"
OK = "/VMC/Ext/OK"
TIME = "/VMC/Ext/T"

# Pre-encoded prefix (size, address, ",sf", name) of every Blend/Val element; only the float changes.
_VAL_PREFIX = tuple(
    (lambda body: struct.pack(">i", len(body) + 4) + body)(
        osc.encode_string(BLEND_VAL) + osc.encode_string(",sf") + osc.encode_string(name))
    for name in schema.VMC_NAMES
)
_APPLY = osc.encode_message(BLEND_APPLY)
_APPLY_EL = struct.pack(">i", len(_APPLY)) + _APPLY
_OK = osc.encode_message(OK, (1,))
_OK_EL = struct.pack(">i", len(_OK)) + _OK
_HEADER = osc.BUNDLE_TAG + osc.encode_timetag(osc.IMMEDIATELY)
_ARKIT_FROM_MP = np.array([schema.MEDIAPIPE_INDEX.get(n, -1) for n in schema.ARKIT_NAMES])


def _arkit_values(weights) -> np.ndarray:
    """[52] MediaPipe vector or {name: value} -> 52 floats in VMC_NAMES (ARKit) order."""
    vec = normalize(weights, what="VMC frame weights", model_order=False).vector
    out = np.where(_ARKIT_FROM_MP >= 0, vec[np.maximum(_ARKIT_FROM_MP, 0)], 0.0)
    return out.astype(">f4")


def build_frame_bundle(weights, *, ok: bool = False, t: float | None = None, head=None, eyes=None,
                       extras=None) -> bytes:
    """One VMC bundle for a frame. ``weights``: [52] MediaPipe order or {name: value};
    ``ok`` adds ``/VMC/Ext/OK 1``; ``t`` (seconds) adds ``/VMC/Ext/T``; ``head`` (yaw, pitch, roll) and
    ``eyes`` (6 values), radians, add the Head/LeftEye/RightEye ``/VMC/Ext/Bone/Pos`` messages
    (:mod:`runtime.streaming.vmc_bones`)."""
    arkit = _arkit_values(weights)
    if extras and "tongueOut" in extras:   # the text model's extra channel (MediaPipe's 52 have no tongue)
        arkit[schema.ARKIT_INDEX["tongueOut"]] = min(max(float(extras["tongueOut"]), 0.0), 1.0)
    vals = arkit.tobytes()
    parts = [_HEADER]
    if ok:
        parts.append(_OK_EL)
    if t is not None:
        msg = osc.encode_message(TIME, (float(t),))
        parts.append(struct.pack(">i", len(msg)) + msg)
    if head is not None:
        parts.append(vmc_bones.bone_elements(head, eyes if eyes is not None else (0.0,) * 6))
    for i, prefix in enumerate(_VAL_PREFIX):
        parts.append(prefix)
        parts.append(vals[4 * i:4 * i + 4])
    parts.append(_APPLY_EL)
    return b"".join(parts)


def parse_frame_bundle(data: bytes) -> dict:
    """Decode a VMC datagram -> ``{"blend": {name: value}, "applied": bool, "ok": int|None, "t": float|None,
    "bones": {name: (px, py, pz, qx, qy, qz, qw)}}``."""
    out = {"blend": {}, "applied": False, "ok": None, "t": None, "bones": {}}
    for m in osc.iter_messages(osc.parse_packet(data)):
        if m.address == BLEND_VAL and m.typetags == "sf":
            out["blend"][m.args[0]] = m.args[1]
        elif m.address == vmc_bones.BONE_POS and m.typetags == "sfffffff":
            out["bones"][m.args[0]] = tuple(m.args[1:])
        elif m.address == BLEND_APPLY:
            out["applied"] = True
        elif m.address == OK and m.args:
            out["ok"] = m.args[0]
        elif m.address == TIME and m.args:
            out["t"] = m.args[0]
    return out


def parse_hostport(text: str, default_port: int, what: str = "address", *, allow_port0: bool = True
                   ) -> tuple[str, int]:
    """``"HOST:PORT"``, ``"HOST"``, ``":PORT"`` or ``"[IPV6]:PORT"`` -> (host, port); host defaults to
    127.0.0.1. ``allow_port0=False`` for destinations (port 0 is "any free port" only when listening)."""
    text = (text or "").strip()
    host, port = text, default_port
    accepted = "accepted: HOST:PORT, HOST, :PORT or [IPV6]:PORT"
    if text.startswith("["):  # [ipv6]:port
        end = text.find("]")
        if end < 0:
            raise InvalidInputError(f"{what} {text!r}: an IPv6 address in [ ] is missing its ']' ({accepted})")
        host, rest = text[1:end], text[end + 1:]
        if rest.startswith(":"):
            port = rest[1:]
        elif rest:
            raise InvalidInputError(f"{what} {text!r}: unexpected {rest!r} after ']' ({accepted})")
        if not host:
            raise InvalidInputError(f"{what} {text!r}: empty IPv6 address in [ ] ({accepted})")
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif text.count(":") > 1:
        raise InvalidInputError(f"{what} {text!r}: put an IPv6 address in brackets, e.g. [::1]:{default_port} "
                                f"({accepted})")
    try:
        port = int(port)
    except ValueError:
        raise InvalidInputError(f"{what} {text!r}: port {port!r} is not a number ({accepted})") from None
    try:
        check_int(port, f"{what} {text!r}: the port", 0 if allow_port0 else 1, 65535)
    except InvalidInputError as e:
        raise InvalidInputError(str(e) + ("" if allow_port0 else " (port 0 cannot receive anything)")) from None
    return host or "127.0.0.1", port


class UdpSink:
    """Non-blocking UDP sender sink: ``send(frame)`` encodes and fires one datagram, never waits.

    A full socket buffer or an unreachable receiver drops the datagram and counts it in ``dropped``.
    """

    def __init__(self, host: str, port: int, encode):
        self.address = (host, port)
        self._encode = encode
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except (socket.gaierror, UnicodeError) as e:
            raise InvalidInputError(f"cannot resolve host {host!r} ({e}); give an IP address or a known host "
                                    "name") from None
        self._sock = socket.socket(info[0], socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._target = info[4]
        self.sent = 0
        self.dropped = 0

    def send(self, frame) -> None:
        data = self._encode(frame)
        try:
            self._sock.sendto(data, self._target)
            self.sent += 1
        except OSError:  # EAGAIN, ECONNREFUSED from an earlier ICMP error, network down
            self.dropped += 1

    def close(self) -> None:
        self._sock.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address[0]}:{self.address[1]})"


class VmcSink(UdpSink):
    """Sends each frame as one VMC bundle to ``host:port`` (default 127.0.0.1:39539)."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, ok: bool = True,
                 time: bool = True, bones: bool = True):
        self.ok, self.time, self.bones = ok, time, bones
        super().__init__(host, port, self._frame_bytes)

    def _frame_bytes(self, frame) -> bytes:
        return build_frame_bundle(frame.weights, ok=self.ok, t=float(frame.t) if self.time else None,
                                  head=frame.head if self.bones else None, eyes=frame.eyes if self.bones else None,
                                  extras=getattr(frame, "extras", None))
