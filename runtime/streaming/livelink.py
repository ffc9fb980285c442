"""Live Link Face UDP packets (Unreal Engine / MetaHuman), encoder + decoder + sink.

Layout (the one the Live Link Face app sends, packet version 6)::

    uint8       version (6)
    int32 BE    device id length in bytes (36 for a UUID), then the UTF-8 device id
    int32 BE    subject name length in bytes, then the UTF-8 name
    int32 BE    frame number          \\
    float32 BE  sub-frame (0..1)       |  frame time (frame number at fps_num/fps_den)
    int32 BE    frame rate numerator   |
    int32 BE    frame rate denominator/
    uint8       value count (61)
    61 x float32 BE in schema.LIVELINK_NAMES order: the 52 ARKit shapes (Apple order, TongueOut = 0),
                head yaw, pitch, roll, left eye yaw, pitch, roll, right eye yaw, pitch, roll (radians,
                the convention of emo3d.pose).

``pylivelinkface`` reads the same bytes as a little-endian uint32 version and a 37-byte id
``"$" + UUID`` (0x24 = '$' is the low byte of the length 36), so sent device ids are kept at 36 bytes;
received ones may have any length (Unreal's receiver reads the length prefix).
"""
from __future__ import annotations

import struct
import uuid as _uuid
from dataclasses import dataclass, field

import numpy as np

from emo3d import schema
from emo3d.errors import InvalidInputError, ProtocolError
from emo3d.options import check_int

from .vmc import UdpSink

DEFAULT_PORT = 11111
VERSION = 6
DEVICE_ID_BYTES = 36
_TAIL = struct.Struct(">ifiiB")  # frame number, sub-frame, fps num, fps den, count
_VALUES = struct.Struct(">%df" % schema.N_LIVELINK)


def new_device_id() -> str:
    return str(_uuid.uuid4()).upper()


@dataclass(frozen=True)
class LiveLinkPacket:
    """One decoded (or to-be-encoded) Live Link Face packet."""
    values: np.ndarray                      # [61] float32, schema.LIVELINK_NAMES order
    subject: str = "emo3d"
    device_id: str = field(default_factory=new_device_id)
    frame_number: int = 0
    sub_frame: float = 0.0
    fps: int = 60
    fps_denominator: int = 1
    version: int = VERSION

    def __post_init__(self):
        v = np.asarray(self.values, dtype=np.float32).reshape(-1)
        if v.shape[0] != schema.N_LIVELINK:
            raise InvalidInputError(f"Live Link packet needs {schema.N_LIVELINK} values, got {v.shape[0]}")
        if not np.all(np.isfinite(v)):
            raise InvalidInputError("Live Link values contain NaN or inf")
        object.__setattr__(self, "values", v)
        if not isinstance(self.device_id, str) or len(self.device_id.encode("utf-8")) > 1024:
            raise InvalidInputError("Live Link device id must be a string of at most 1024 bytes")
        check_int(self.version, "LiveLinkPacket.version (one byte)", 0, 255)
        check_int(self.fps, "LiveLinkPacket.fps (frame rate numerator)", 1)
        check_int(self.fps_denominator, "LiveLinkPacket.fps_denominator", 1)
        if len(self.subject.encode("utf-8")) > 1024:
            raise InvalidInputError("Live Link subject name is longer than 1024 bytes")

    def scores(self) -> dict:
        """{Live Link name: value} for all 61 values."""
        return schema.to_mapping(self.values, schema.LIVELINK_NAMES)


def encode(packet: LiveLinkPacket) -> bytes:
    """Bytes of ``packet``. The device id must be 36 bytes (a UUID) when sending: some receivers
    (pylivelinkface) assume that length; :func:`decode` accepts any length, as Unreal does."""
    name = packet.subject.encode("utf-8")
    dev = packet.device_id.encode("utf-8")
    if len(dev) != DEVICE_ID_BYTES:
        raise InvalidInputError(f"Live Link device id {packet.device_id!r} must be {DEVICE_ID_BYTES} bytes to "
                                "send (a UUID such as 0E4B5C8A-...; receivers expect that length)")
    return b"".join((
        struct.pack(">Bi", packet.version, len(dev)), dev,
        struct.pack(">i", len(name)), name,
        _TAIL.pack(int(packet.frame_number), float(packet.sub_frame), int(packet.fps),
                   int(packet.fps_denominator), schema.N_LIVELINK),
        _VALUES.pack(*packet.values.tolist()),
    ))


def decode(data: bytes) -> LiveLinkPacket:
    """Parse a Live Link Face datagram (``ProtocolError`` when malformed or truncated)."""
    data = bytes(data)
    if len(data) < 5:
        raise ProtocolError(f"Live Link packet of {len(data)} bytes is shorter than its header")
    version, n_dev = struct.unpack_from(">Bi", data, 0)
    if n_dev < 0 or 5 + n_dev + 4 > len(data):
        raise ProtocolError(f"Live Link device id length {n_dev} runs past the {len(data)}-byte packet")
    try:
        device = data[5:5 + n_dev].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("Live Link device id is not UTF-8") from None
    head = 5 + n_dev + 4
    n = struct.unpack_from(">i", data, head - 4)[0]
    if n < 0 or head + n + _TAIL.size > len(data):
        raise ProtocolError(f"Live Link subject name length {n} runs past the {len(data)}-byte packet")
    try:
        subject = data[head:head + n].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("Live Link subject name is not UTF-8") from None
    pos = head + n
    frame, sub, fps, den, count = _TAIL.unpack_from(data, pos)
    pos += _TAIL.size
    if count != schema.N_LIVELINK:
        raise ProtocolError(f"Live Link value count is {count}, expected {schema.N_LIVELINK}")
    if len(data) - pos != _VALUES.size:
        raise ProtocolError(f"Live Link packet has {len(data) - pos} value bytes, expected {_VALUES.size}")
    values = np.frombuffer(data, dtype=">f4", count=schema.N_LIVELINK, offset=pos).astype(np.float32)
    try:
        return LiveLinkPacket(values, subject, device, frame, sub, fps, den, version)
    except InvalidInputError as e:
        raise ProtocolError(f"Live Link packet: {e}") from None


def packet_for_frame(frame, *, subject: str = "emo3d", device_id: str | None = None, fps: int = 60) -> LiveLinkPacket:
    """A Live Link packet for an avatar ``Frame`` (weights [52] MediaPipe order, head, eyes in radians)."""
    pose = tuple(frame.head) + tuple(frame.eyes)
    values = schema.mediapipe_to_livelink(np.asarray(frame.weights, dtype=np.float32), pose)
    tongue = float((getattr(frame, "extras", None) or {}).get("tongueOut", 0.0))   # the text model's extra channel
    values[schema.LIVELINK_NAMES.index("TongueOut")] = min(max(tongue, 0.0), 1.0)
    t = max(float(frame.t), 0.0) * fps
    return LiveLinkPacket(values, subject, device_id or new_device_id(), int(t) & 0x7FFFFFFF,
                          t - int(t), fps, 1)


class LiveLinkSink(UdpSink):
    """Sends each frame as one Live Link Face packet to ``host:port`` (default 127.0.0.1:11111)."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, subject: str = "emo3d",
                 fps: int = 60):
        self.subject, self.fps, self.device_id = subject, fps, new_device_id()
        LiveLinkPacket(np.zeros(schema.N_LIVELINK), subject, self.device_id, fps=fps)  # validate now
        super().__init__(host, port, self._frame_bytes)

    def _frame_bytes(self, frame) -> bytes:
        return encode(packet_for_frame(frame, subject=self.subject, device_id=self.device_id, fps=self.fps))
