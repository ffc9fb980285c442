"""Open Sound Control 1.0 messages and bundles: pure build/parse functions (no sockets).

Wire format (all big-endian, every field padded with NULs to a multiple of 4 bytes):

* message = address string, type-tag string (``","`` + one tag per argument), arguments;
* string ``s`` = UTF-8 bytes + 1..4 NULs; blob ``b`` = int32 size + bytes + pad;
  ``i`` int32; ``f`` float32; ``d`` float64; ``h`` int64; ``T``/``F``/``N`` carry no bytes;
* bundle = ``"#bundle\\0"`` + 64-bit NTP time tag + elements, each an int32 size + packet.

Errors raise :class:`emo3d.errors.ProtocolError` naming what was wrong.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence, Tuple, Union

from emo3d.errors import ProtocolError

BUNDLE_TAG = b"#bundle\x00"
IMMEDIATELY = 1  # the OSC time tag meaning "now"
_NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01


@dataclass(frozen=True)
class Message:
    """One OSC message: an address and typed arguments (``typetags`` without the comma)."""
    address: str
    args: Tuple[Any, ...] = ()
    typetags: str = ""


@dataclass(frozen=True)
class Bundle:
    """An OSC bundle: NTP time tag (``IMMEDIATELY`` = 1) and its elements (messages or bundles)."""
    timetag: int = IMMEDIATELY
    elements: Tuple[Union[Message, "Bundle"], ...] = field(default_factory=tuple)


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


def encode_string(s: str | bytes) -> bytes:
    """OSC string: bytes + at least one NUL, padded to 4."""
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    if b"\x00" in b:
        raise ProtocolError(f"OSC string {s!r} contains a NUL byte (not allowed)")
    return b + b"\x00" * (4 - len(b) % 4)


def encode_blob(b: bytes) -> bytes:
    return struct.pack(">i", len(b)) + bytes(b) + b"\x00" * _pad(len(b))


def _tag_of(value: Any) -> str:
    if value is True:
        return "T"
    if value is False:
        return "F"
    if value is None:
        return "N"
    if isinstance(value, int):
        return "i" if -2**31 <= value < 2**31 else "h"
    if isinstance(value, float):
        return "f"
    if isinstance(value, str):
        return "s"
    if isinstance(value, (bytes, bytearray)):
        return "b"
    try:  # numpy scalars
        import numpy as np
        if isinstance(value, np.floating):
            return "f"
        if isinstance(value, np.integer):
            return "i"
    except ImportError:  # pragma: no cover
        pass
    raise ProtocolError(f"cannot encode OSC argument {value!r} of type {type(value).__name__} "
                        "(accepted: int, float, str, bytes, bool, None)")


def encode_message(address: str, args: Sequence[Any] = (), typetags: str | None = None) -> bytes:
    """Encode one message; ``typetags`` (without ',') is inferred from the Python types if omitted."""
    if not isinstance(address, str) or not address.startswith("/"):
        raise ProtocolError(f"OSC address {address!r} must be a string starting with '/'")
    tags = typetags if typetags is not None else "".join(_tag_of(a) for a in args)
    payload = [encode_string(address), encode_string("," + tags)]
    vals = iter(args)
    for t in tags:
        if t in "TFN":
            next(vals, None)
            continue
        v = next(vals)
        try:
            if t == "i":
                payload.append(struct.pack(">i", int(v)))
            elif t == "f":
                payload.append(struct.pack(">f", float(v)))
            elif t == "d":
                payload.append(struct.pack(">d", float(v)))
            elif t == "h":
                payload.append(struct.pack(">q", int(v)))
            elif t == "s":
                payload.append(encode_string(v))
            elif t == "b":
                payload.append(encode_blob(v))
            else:
                raise ProtocolError(f"unsupported OSC type tag {t!r} (accepted: i f d h s b T F N)")
        except struct.error as e:
            raise ProtocolError(f"OSC argument {v!r} does not fit type {t!r}: {e}") from None
    return b"".join(payload)


def encode_timetag(timetag: int | float) -> bytes:
    """An int is a raw 64-bit NTP tag (1 = immediately); a float is UNIX time in seconds."""
    if isinstance(timetag, float):
        secs = int(timetag) + _NTP_EPOCH_OFFSET
        frac = int((timetag - int(timetag)) * 2**32) & 0xFFFFFFFF
        return struct.pack(">II", secs & 0xFFFFFFFF, frac)
    return struct.pack(">Q", int(timetag))


def encode_bundle(elements: Iterable[bytes | Message | Bundle], timetag: int | float = IMMEDIATELY) -> bytes:
    """Encode a bundle of already-encoded packets (bytes) or Message/Bundle objects."""
    parts = [BUNDLE_TAG, encode_timetag(timetag)]
    for el in elements:
        b = encode_packet(el) if not isinstance(el, (bytes, bytearray)) else bytes(el)
        if len(b) % 4:
            raise ProtocolError(f"bundle element of {len(b)} bytes is not 4-byte aligned")
        parts.append(struct.pack(">i", len(b)))
        parts.append(b)
    return b"".join(parts)


def encode_packet(packet: Message | Bundle) -> bytes:
    if isinstance(packet, Message):
        return encode_message(packet.address, packet.args, packet.typetags or None)
    if isinstance(packet, Bundle):
        return encode_bundle(packet.elements, packet.timetag)
    raise ProtocolError(f"not an OSC packet: {type(packet).__name__}")


# --- parsing ---------------------------------------------------------------------------------
def _read_string(data: bytes, pos: int) -> Tuple[str, int]:
    end = data.find(b"\x00", pos)
    if end < 0:
        raise ProtocolError(f"OSC string at byte {pos} has no NUL terminator (truncated packet?)")
    nxt = end + 1 + _pad(end + 1 - pos)
    if nxt > len(data):
        raise ProtocolError(f"OSC string at byte {pos} is not padded to 4 bytes (truncated packet)")
    try:
        return data[pos:end].decode("utf-8"), nxt
    except UnicodeDecodeError:
        raise ProtocolError(f"OSC string at byte {pos} is not valid UTF-8") from None


_FIXED = {"i": (">i", 4), "f": (">f", 4), "d": (">d", 8), "h": (">q", 8)}


def parse_message(data: bytes) -> Message:
    """Parse one OSC message (``ProtocolError`` on malformed or truncated bytes)."""
    data = bytes(data)
    if len(data) % 4:
        raise ProtocolError(f"OSC packet size {len(data)} is not a multiple of 4")
    address, pos = _read_string(data, 0)
    if not address.startswith("/"):
        raise ProtocolError(f"OSC address {address!r} does not start with '/'")
    if pos >= len(data):
        return Message(address, (), "")  # old-style message without type tags
    tags, pos = _read_string(data, pos)
    if not tags.startswith(","):
        raise ProtocolError(f"OSC type tag string {tags!r} does not start with ','")
    args = []
    for t in tags[1:]:
        if t in _FIXED:
            fmt, n = _FIXED[t]
            if pos + n > len(data):
                raise ProtocolError(f"OSC argument {t!r} at byte {pos} is truncated")
            args.append(struct.unpack_from(fmt, data, pos)[0])
            pos += n
        elif t == "s":
            s, pos = _read_string(data, pos)
            args.append(s)
        elif t == "b":
            if pos + 4 > len(data):
                raise ProtocolError(f"OSC blob size at byte {pos} is truncated")
            n = struct.unpack_from(">i", data, pos)[0]
            if n < 0 or pos + 4 + n > len(data):
                raise ProtocolError(f"OSC blob of {n} bytes at byte {pos} runs past the packet")
            args.append(data[pos + 4:pos + 4 + n])
            pos += 4 + n + _pad(n)
        elif t in "TFN":
            args.append({"T": True, "F": False, "N": None}[t])
        else:
            raise ProtocolError(f"unsupported OSC type tag {t!r} (accepted: i f d h s b T F N)")
    if pos != len(data):
        raise ProtocolError(f"OSC message has {len(data) - pos} trailing bytes")
    return Message(address, tuple(args), tags[1:])


def parse_bundle(data: bytes) -> Bundle:
    data = bytes(data)
    if not data.startswith(BUNDLE_TAG):
        raise ProtocolError("OSC bundle does not start with '#bundle'")
    if len(data) < 16:
        raise ProtocolError("OSC bundle is shorter than its 16-byte header")
    timetag = struct.unpack_from(">Q", data, 8)[0]
    pos, elements = 16, []
    while pos < len(data):
        if pos + 4 > len(data):
            raise ProtocolError(f"OSC bundle element size at byte {pos} is truncated")
        n = struct.unpack_from(">i", data, pos)[0]
        if n <= 0 or n % 4 or pos + 4 + n > len(data):
            raise ProtocolError(f"OSC bundle element of {n} bytes at byte {pos} is invalid or truncated")
        elements.append(parse_packet(data[pos + 4:pos + 4 + n]))
        pos += 4 + n
    return Bundle(timetag, tuple(elements))


def parse_packet(data: bytes) -> Message | Bundle:
    """Parse a datagram: a bundle or a single message."""
    if bytes(data[:8]) == BUNDLE_TAG:
        return parse_bundle(data)
    return parse_message(data)


def iter_messages(packet: Message | Bundle):
    """Every message of a packet, depth first."""
    if isinstance(packet, Message):
        yield packet
    else:
        for el in packet.elements:
            yield from iter_messages(el)
