"""OSC / VMC / Live Link encoders: golden bytes, independent decoders (python-osc, vmcp,
pylivelinkface), real UDP sockets on 127.0.0.1, malformed packets."""
from __future__ import annotations

import hashlib
import socket
import struct
import time

import numpy as np
import pytest
from support.assets import require_module

from emo3d import schema
from emo3d.errors import InvalidInputError, ProtocolError
from runtime.streaming import livelink as ll
from runtime.streaming import osc, vmc
from support.standin import Frame


# --- OSC golden bytes (hand-derived from the OSC 1.0 spec) ----------------------------------
OSC_GOLDEN = [
    # (address, args, typetags or None, expected hex)
    ("/a", (), None, "2f610000" "2c000000"),
    ("/a", (1,), None, "2f610000" "2c690000" "00000001"),
    ("/a", (-2,), None, "2f610000" "2c690000" "fffffffe"),
    ("/a", (1.0,), None, "2f610000" "2c660000" "3f800000"),
    ("/a", (0.5,), "d", "2f610000" "2c640000" "3fe0000000000000"),
    ("/abc", ("hi",), None, "2f616263" "00000000" "2c730000" "68690000"),
    ("/abc", ("four",), None, "2f616263" "00000000" "2c730000" "666f7572" "00000000"),
    ("/b", (b"\x01\x02\x03",), None, "2f620000" "2c620000" "00000003" "01020300"),
    ("/t", (True, False, None), None, "2f740000" "2c54464e" "00000000"),
    ("/h", (2 ** 40,), None, "2f680000" "2c680000" "0000010000000000"),
    ("/VMC/Ext/Blend/Val", ("JawOpen", 0.5), None,
     "2f564d432f4578742f426c656e642f56616c0000" "2c736600" "4a61774f70656e00" "3f000000"),
]


@pytest.mark.parametrize("address,args,tags,hexed", OSC_GOLDEN)
def test_osc_message_golden(address, args, tags, hexed):
    data = osc.encode_message(address, args, tags)
    assert data.hex() == hexed
    m = osc.parse_message(data)
    assert m.address == address
    assert m.args == tuple(args)


@pytest.mark.parametrize("address,args,tags,hexed", [g for g in OSC_GOLDEN if g[2] is None])
def test_osc_message_python_osc(address, args, tags, hexed):
    from pythonosc.osc_message import OscMessage
    m = OscMessage(bytes.fromhex(hexed))
    assert m.address == address
    assert [p for p in m.params] == list(args)


def test_osc_bundle_golden():
    data = osc.encode_bundle([osc.encode_message("/a", (1,)), osc.Message("/b", ())])
    assert data.hex() == ("2362756e646c6500" "0000000000000001"
                          "0000000c" "2f610000" "2c690000" "00000001"
                          "00000008" "2f620000" "2c000000")
    b = osc.parse_packet(data)
    assert isinstance(b, osc.Bundle) and b.timetag == osc.IMMEDIATELY
    assert [m.address for m in osc.iter_messages(b)] == ["/a", "/b"]
    # UNIX time -> NTP seconds since 1900
    assert osc.encode_timetag(0.5).hex() == "83aa7e8080000000"


BAD_PACKETS = [
    (b"", "NUL"),
    (b"/a\x00", "multiple of 4"),
    (b"/a\x00\x00,i\x00\x00", "truncated"),
    (b"/a\x00\x00,s\x00\x00abcd", "NUL"),
    (b"a\x00\x00\x00,\x00\x00\x00", "start with '/'"),
    (b"/a\x00\x00x\x00\x00\x00", "','"),
    (b"/a\x00\x00,q\x00\x00", "unsupported"),
    (b"/a\x00\x00,b\x00\x00\x00\x00\x00\x10", "runs past"),
    (b"/a\x00\x00,i\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00", "trailing"),
    (b"#bundle\x00\x00\x00", "shorter"),
    (b"#bundle\x00" + bytes(8) + b"\x00\x00\x01\x00", "invalid or truncated"),
    (b"/\xff\x00\x00,\x00\x00\x00", "UTF-8"),
]


@pytest.mark.parametrize("data,match", BAD_PACKETS)
def test_osc_parse_rejects(data, match):
    with pytest.raises(ProtocolError, match=match):
        osc.parse_packet(data)


@pytest.mark.parametrize("address,args,match", [
    ("noslash", (), "start"), ("/a", (object(),), "cannot encode"), ("/a", ("x\x00y",), "NUL"),
])
def test_osc_encode_rejects(address, args, match):
    with pytest.raises(ProtocolError, match=match):
        osc.encode_message(address, args)


# --- VMC ------------------------------------------------------------------------------------
def _weights():
    w = np.zeros(schema.N_MEDIAPIPE, np.float32)
    w[schema.MEDIAPIPE_INDEX["jawOpen"]] = 0.5
    w[schema.MEDIAPIPE_INDEX["mouthSmileLeft"]] = 0.25
    return w


VMC_GOLDEN = [
    # (ok, t, total bytes, sha256, hex of the bytes at the start, hex at the end)
    (True, 1.5, 2572, "4f69cc8aff34d6ed594b4ca30b7008e3e2fa3f05a4f1db7c4775d507a2a3087b",
     "2362756e646c65000000000000000001" "00000014" "2f564d432f4578742f4f4b00" "2c690000" "00000001"
     "00000014" "2f564d432f4578742f540000" "2c660000" "3fc00000",
     "0000001c" "2f564d432f4578742f426c656e642f4170706c7900000000" "2c000000"),
    (False, None, 2524, "647eb91bda5d9b2d999dd7fd80b42c2d1aa112c2f4117a91a8eb9302cbc7c678",
     "2362756e646c65000000000000000001" "0000002c" "2f564d432f4578742f426c656e642f56616c0000" "2c736600"
     "457965426c696e6b4c65667400000000" "00000000",
     "0000001c" "2f564d432f4578742f426c656e642f4170706c7900000000" "2c000000"),
]


@pytest.mark.parametrize("ok,t,size,digest,head,tail", VMC_GOLDEN)
def test_vmc_bundle_golden(ok, t, size, digest, head, tail):
    data = vmc.build_frame_bundle(_weights(), ok=ok, t=t)
    assert len(data) == size
    assert data[:len(head) // 2].hex() == head
    assert data[-len(tail) // 2:].hex() == tail
    assert hashlib.sha256(data).hexdigest() == digest


def _udp_receiver():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    return s


def _frame(weights=None, t=1.25, index=3):
    return Frame(index, t, _weights() if weights is None else weights, (0.1, -0.2, 0.3),
                 (0.01, 0.02, 0.03, -0.01, -0.02, -0.03))


def test_vmc_over_udp_decoded_by_python_osc():
    from pythonosc.osc_bundle import OscBundle
    from pythonosc.osc_packet import OscPacket
    rx = _udp_receiver()
    sink = vmc.VmcSink(*rx.getsockname())
    try:
        sink.send(_frame())
        data, _ = rx.recvfrom(65536)
    finally:
        sink.close()
        rx.close()
    assert OscBundle.dgram_is_bundle(data)  # ONE bundle per frame
    msgs = [m.message for m in OscPacket(data).messages]
    addrs = [m.address for m in msgs]
    assert addrs[:2] == ["/VMC/Ext/OK", "/VMC/Ext/T"]
    assert addrs[-1] == "/VMC/Ext/Blend/Apply"
    vals = {m.params[0]: m.params[1] for m in msgs if m.address == "/VMC/Ext/Blend/Val"}
    assert list(vals) == list(schema.VMC_NAMES)  # every perfect-sync name, in order
    assert vals["JawOpen"] == 0.5 and vals["MouthSmileLeft"] == 0.25 and vals["TongueOut"] == 0.0
    assert sum(v != 0 for v in vals.values()) == 2
    assert msgs[1].params == [1.25]
    assert vmc.parse_frame_bundle(data)["blend"] == vals


def test_vmc_decoded_by_vmcp_events():
    """vmcp's own event constructors accept every message; vmcp.protocol builds the same messages."""
    from vmcp import protocol
    from vmcp.events import BlendShapeApplyEvent, BlendShapeEvent, RelativeTimeEvent, StateEvent
    from vmcp.typing import BlendShapeKey
    kinds = {"/VMC/Ext/Blend/Val": BlendShapeEvent, "/VMC/Ext/Blend/Apply": BlendShapeApplyEvent,
             "/VMC/Ext/OK": StateEvent, "/VMC/Ext/T": RelativeTimeEvent}
    packet = osc.parse_packet(vmc.build_frame_bundle(_weights(), ok=True, t=2.0))
    events = [kinds[m.address].from_message_data("ch", m.address, m.args) for m in osc.iter_messages(packet)]
    assert isinstance(events[-1], BlendShapeApplyEvent)
    shapes = {e.key: e.value for e in events if isinstance(e, BlendShapeEvent)}
    assert shapes["JawOpen"] == 0.5 and len(shapes) == 52
    assert events[1].delta == 2.0
    # vmcp's reference builder for the same values gives the same (address, tags, args)
    Key = BlendShapeKey("Key", {"JAW_OPEN": "JawOpen"})  # a perfect-sync key set of one
    ref = protocol.blendshape(Key.JAW_OPEN, 0.5)
    ours = next(m for m in osc.iter_messages(packet) if m.args[:1] == ("JawOpen",))
    assert (ours.address, "," + ours.typetags, ours.args) == ref
    assert protocol.blendshape_apply() == ("/VMC/Ext/Blend/Apply", ",", ())


def test_vmc_over_udp_decoded_by_vmcp_receiver():
    """A full vmcp OSC receiver (osc4py3 backend) on a real UDP port decodes the bundle."""
    require_module("osc4py3", "vmcp's OSC receiver; pip install 'osc4py3<1.0.4' (the [test] extra)")
    from vmcp.events import BlendShapeApplyEvent, BlendShapeEvent, RelativeTimeEvent, StateEvent
    from vmcp.facades import on_receive
    from vmcp.osc import OSC
    from vmcp.osc.backend.osc4py3 import as_eventloop as backend
    probe = _udp_receiver()
    port = probe.getsockname()[1]
    probe.close()
    got: list = []
    with OSC(backend) as system:
        rec = system.create_receiver("127.0.0.1", port, "emo3d-test").open()
        for ev in (BlendShapeEvent, BlendShapeApplyEvent, StateEvent, RelativeTimeEvent):
            on_receive(rec, ev, got.append)
        sink = vmc.VmcSink("127.0.0.1", port)
        sink.send(_frame(t=0.75))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(got) < 55:
            system.run()
            time.sleep(0.005)
        sink.close()
    assert len(got) == 55
    assert isinstance(got[0], StateEvent) and got[0].model_state.value == 1
    assert isinstance(got[1], RelativeTimeEvent) and got[1].delta == 0.75
    shapes = {e.key: e.value for e in got if isinstance(e, BlendShapeEvent)}
    assert shapes["JawOpen"] == 0.5 and shapes["MouthSmileLeft"] == 0.25
    assert isinstance(got[-1], BlendShapeApplyEvent)


@pytest.mark.parametrize("weights,match", [
    (np.zeros(51), "52"), (np.full(52, np.nan), "NaN"), ({"jawOpenn": 1.0}, "jawOpen"),
])
def test_vmc_rejects_bad_weights(weights, match):
    with pytest.raises((InvalidInputError, KeyError), match=match):
        vmc.build_frame_bundle(weights)


def test_vmc_sink_never_blocks_without_receiver():
    sink = vmc.VmcSink("127.0.0.1", 9)  # discard port, nobody listening
    try:
        for _ in range(200):
            sink.send(_frame())
    finally:
        sink.close()
    assert sink.sent + sink.dropped == 200


@pytest.mark.parametrize("text,expect", [
    ("127.0.0.1:4000", ("127.0.0.1", 4000)), ("localhost", ("localhost", 39539)), (":5", ("127.0.0.1", 5)),
    ("[::1]:7", ("::1", 7)),
])
def test_parse_hostport(text, expect):
    assert vmc.parse_hostport(text, 39539) == expect


@pytest.mark.parametrize("text", ["host:port", "h:70000"])
def test_parse_hostport_rejects(text):
    with pytest.raises(InvalidInputError):
        vmc.parse_hostport(text, 1)


# --- Live Link Face -------------------------------------------------------------------------
DEVICE = "00000000-0000-0000-0000-000000000000"
LL_HEADER_HEX = ("06" "00000024" + DEVICE.encode().hex() + "00000005" + b"emo3d".hex()
                 + "0000000c" "3f000000" "0000003c" "00000001" "3d")


def _ll_values():
    v = np.zeros(schema.N_LIVELINK, np.float32)
    v[schema.LIVELINK_NAMES.index("JawOpen")] = 0.5
    v[schema.LIVELINK_NAMES.index("HeadYaw")] = 0.25
    v[schema.LIVELINK_NAMES.index("RightEyeRoll")] = -1.0
    return v


def test_livelink_golden():
    data = ll.encode(ll.LiveLinkPacket(_ll_values(), "emo3d", DEVICE, 12, 0.5, 60, 1))
    assert len(data) == 311
    assert data[:67].hex() == LL_HEADER_HEX
    floats = data[67:]
    assert floats[17 * 4:18 * 4].hex() == "3f000000"      # JawOpen (Apple index 17)
    assert floats[52 * 4:53 * 4].hex() == "3e800000"      # HeadYaw
    assert floats[60 * 4:].hex() == "bf800000"            # RightEyeRoll
    assert hashlib.sha256(data).hexdigest() == "57f7770d296bf00c15c81057febc33a76edef5dc75cadb1c78864f51479542cb"
    back = ll.decode(data)
    assert back.subject == "emo3d" and back.device_id == DEVICE and back.frame_number == 12
    assert back.sub_frame == 0.5 and back.fps == 60 and np.array_equal(back.values, _ll_values())


def test_livelink_over_udp_decoded_by_pylivelinkface():
    from pylivelinkface import FaceBlendShape, PyLiveLinkFace
    rx = _udp_receiver()
    sink = ll.LiveLinkSink(*rx.getsockname(), subject="unit-face", fps=60)
    try:
        sink.send(_frame(t=2.5))
        data, _ = rx.recvfrom(65536)
    finally:
        sink.close()
        rx.close()
    ok, face = PyLiveLinkFace.decode(data)
    assert ok
    # pylivelinkface reads the id's length byte 0x24 as a leading "$"
    assert face.name == "unit-face" and face.uuid == "$" + sink.device_id and face.fps == 60
    assert face._frames == 150  # 2.5 s at 60 fps
    assert face.get_blendshape(FaceBlendShape.JawOpen) == 0.5
    assert face.get_blendshape(FaceBlendShape.MouthSmileLeft) == 0.25
    assert face.get_blendshape(FaceBlendShape.TongueOut) == 0.0
    assert face.get_blendshape(FaceBlendShape.HeadYaw) == pytest.approx(0.1)
    assert face.get_blendshape(FaceBlendShape.HeadRoll) == pytest.approx(0.3)
    assert face.get_blendshape(FaceBlendShape.RightEyeRoll) == pytest.approx(-0.03)
    # every one of the 61 values lands where pylivelinkface's enum says
    mine = ll.decode(data)
    for i, name in enumerate(schema.LIVELINK_NAMES):
        assert face._blend_shapes[FaceBlendShape[name].value] == pytest.approx(float(mine.values[i]))


def test_livelink_decode_rejects():
    good = ll.encode(ll.LiveLinkPacket(_ll_values(), "emo3d", DEVICE))
    bad_count = bytearray(good)
    bad_count[66] = 60
    cases = [(good[:3], "shorter"), (good[:-4], "value bytes"), (bytes(bad_count), "count"),
             (good[:41] + struct.pack(">i", 9999) + good[45:], "subject name length"),
             (good[:1] + struct.pack(">i", 5000) + good[5:], "device id length")]
    for data, match in cases:
        with pytest.raises(ProtocolError, match=match):
            ll.decode(data)


@pytest.mark.parametrize("kwargs,match", [
    (dict(values=np.zeros(60)), "61"), (dict(values=np.full(61, np.inf)), "NaN or inf"),
    (dict(values=np.zeros(61), device_id="x" * 2000), "1024 bytes"), (dict(values=np.zeros(61), fps=0), "frame rate"),
])
def test_livelink_packet_validates(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        ll.LiveLinkPacket(**kwargs)
