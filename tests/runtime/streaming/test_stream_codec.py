"""The control protocol without sockets: the wire codec (runtime.streaming.wire) and the request schema
(runtime.streaming.protocol), table-driven, plus a Hypothesis fuzz of ``handle_message`` (every malformed
message gets one typed error reply naming what was wrong; never a traceback, never ``internal``)."""
from __future__ import annotations

import json
import logging
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emo3d import schema
from runtime.streaming import protocol, wire
from runtime.streaming.protocol import RequestError, Session, handle_message, parse_request
from support.standin import StandInLoop

ERROR_CODES = {"bad_json", "bad_encoding", "bad_request", "invalid_input", "empty", "too_large", "truncated",
               "timeout", "server_full", "peer_limit", "internal"}

# --- wire codec ----------------------------------------------------------------------------------------------
DECODE_OK = [
    (b'{"type":"ping"}', {"type": "ping"}),
    ('{"text":"wütend 😠"}'.encode(), {"text": "wütend 😠"}),
    (b"[1,2]", [1, 2]),
    (b'"\\ud800"', "\ud800"),          # valid JSON text; the schema rejects the lone surrogate later
]
DECODE_BAD = [
    (b"\xff\xfe", "bad_encoding", None),
    (b'{"id": 7, "text": "hi"', "bad_json", 7),                  # broken JSON: the id is still read
    (b'{"id": "abc", "text": NaN}', "bad_json", "abc"),
    (b'{"text": "x", "id": "q\\"1", ', "bad_json", 'q"1'),
    (b'{"id": 1.5,', "bad_json", None),                          # not an accepted id: left out
    (b'{"id": [1],', "bad_json", None),
    (b"[" * 100000, "bad_json", None),                           # nesting deeper than the parser allows
    (b'{"weights": {"jawOpen": Infinity}, "id": 3}', "bad_json", 3),
    (b"", "bad_json", None),
]


@pytest.mark.parametrize("body,value", DECODE_OK)
def test_decode_body_ok(body, value):
    assert wire.decode_body(body) == value


@pytest.mark.parametrize("body,code,req_id", DECODE_BAD)
def test_decode_body_errors_keep_readable_id(body, code, req_id):
    with pytest.raises(wire.WireError) as e:
        wire.decode_body(body)
    assert e.value.code == code and e.value.id == req_id and str(e.value)


def test_encode_message_frames_and_survives_lone_surrogate():
    data = wire.encode_message({"type": "error", "message": "bad \ud800 here", "id": "ü"})
    (n,) = struct.unpack(">I", data[:4])
    assert n == len(data) - 4
    assert json.loads(data[4:]) == {"type": "error", "message": "bad \ud800 here", "id": "ü"}
    assert wire.encode_message({"a": "ü"})[4:] == '{"a":"ü"}'.encode()


# --- request schema ------------------------------------------------------------------------------------------
PARSE_OK = [
    ({"type": "ping", "id": 1}, dict(kind="ping", id=1)),
    ({"text": "furious scowl"}, dict(kind="text", text="furious scowl")),
    ({"text": "x", "intensity": 4, "transition_ms": 0}, dict(kind="text", intensity=4.0, transition_ms=0.0)),
    ({"type": "unsubscribe", "id": "u"}, dict(kind="unsubscribe", id="u")),
    ({"weights": {"JawOpen": 1.5, "mouthSmile_L": -0.5}},
     dict(kind="weights", clamped=("jawOpen=1.5", "mouthSmileLeft=-0.5"))),
    ({"weights": {"jawOpen": 10 ** 400}}, dict(kind="weights", clamped=("jawOpen=1e+400",))),  # huge int: clamped
]
PARSE_BAD = [  # (request, code, words the message must contain)
    ([1], "bad_request", ["JSON object", "list"]),
    ({"type": "ping", "id": True}, "bad_request", ["'id'"]),
    ({"type": "ping", "id": 2 ** 70}, "bad_request", ["'id'", "64-bit"]),
    ({"type": "ping", "id": "x" * 500}, "bad_request", ["'id'", "200"]),
    ({"type": "ping", "id": "\ud800"}, "bad_request", ["'id'", "surrogate"]),
    ({}, "invalid_input", ["no 'type'", "ping"]),
    ({"type": 5}, "invalid_input", ["unknown request type", "text, weights"]),
    ({"type": "dance"}, "invalid_input", ["'dance'", "accepted"]),
    ({"type": "ping", "x": 1}, "invalid_input", ["unknown field", "x", "accepted"]),
    ({"text": 5}, "invalid_input", ["'text'", "string", "int"]),
    ({"text": "  "}, "invalid_input", ["'text'", "empty"]),
    ({"text": "angry \ud800 face"}, "invalid_input", ["'text'", "surrogate", "U+D800", "character 6"]),
    ({"text": "x", "intensity": "max"}, "invalid_input", ["'intensity'", "number", "0..4"]),
    ({"text": "x", "intensity": 10 ** 400}, "invalid_input", ["'intensity'", "401 digits", "0..4"]),
    ({"text": "x", "intensity": -10 ** 400}, "invalid_input", ["'intensity'", "0..4"]),
    ({"text": "x", "transition_ms": 10 ** 400}, "invalid_input", ["'transition_ms'", "0..60000"]),
    ({"text": "x", "transition_ms": True}, "invalid_input", ["'transition_ms'"]),
    ({"weights": [0.1] * 52}, "invalid_input", ["'weights'", "object", "list"]),
    ({"weights": {"jawOpen": "x"}}, "invalid_input", ["jawOpen", "not a finite number"]),
    ({"weights": {"jawOpen": float("nan")}}, "invalid_input", ["jawOpen", "not a finite number"]),
    ({"weights": {"jawOpn": 0.5}}, "invalid_input", ["jawOpn", "jawOpen"]),
    ({"weights": {f"n{i}": 0 for i in range(300)}}, "invalid_input", ["300 entries"]),
    ({"weights": {"jawOpen": 0.1}, "transition_ms": -1}, "invalid_input", ["'transition_ms'"]),
]


@pytest.mark.parametrize("obj,expect", PARSE_OK)
def test_parse_request_ok(obj, expect):
    req = parse_request(obj)
    for k, v in expect.items():
        assert getattr(req, k) == v, k
    if req.kind == "weights":
        assert req.weights.shape == (schema.N_MEDIAPIPE,) and 0 <= req.weights.min() and req.weights.max() <= 1


@pytest.mark.parametrize("obj,code,words", PARSE_BAD)
def test_parse_request_errors_name_the_field(obj, code, words):
    with pytest.raises(RequestError) as e:
        parse_request(obj)
    assert e.value.code == code
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_handle_message_any_transport():
    loop = StandInLoop()
    s = Session()
    assert handle_message({"type": "ping", "id": 3}, loop, s)["id"] == 3
    r = handle_message(b'{"text": "furious scowl", "id": "t"}', loop, s)
    assert r["type"] == "ack" and r["id"] == "t" and loop.texts[-1][0] == "furious scowl"
    assert handle_message({"type": "unsubscribe"}, loop, s)["type"] == "ack" and not s.subscribed
    r = handle_message({"weights": {"jawOpen": 0.6}}, loop, s)
    assert r == {"type": "ack", "request": "weights"}
    assert loop.current[schema.MEDIAPIPE_INDEX["jawOpen"]] == pytest.approx(0.6)
    r = handle_message(b'{"id": 9, "text": ', loop, s)
    assert r["code"] == "bad_json" and r["id"] == 9           # the id survives broken JSON
    assert handle_message({"text": "x" * 3000}, loop, s)["code"] == "invalid_input"   # the loop's own refusal


class _Broken(StandInLoop):
    def set_text(self, text, **kw):
        raise RuntimeError("boom")


def test_internal_errors_are_replies_and_the_log_is_rate_limited(caplog):
    errors = protocol.ClientErrorLog(logging.getLogger("test.ratelog"), burst=5, window=60)
    with caplog.at_level(logging.INFO, logger="test.ratelog"):
        for i in range(2000):
            r = handle_message({"text": "hi", "id": i}, _Broken(), Session(), errors)
            assert r["code"] == "internal" and r["id"] == i and "boom" in r["message"]
            r = handle_message({"text": "x", "intensity": 10 ** 400}, None, Session(), errors)
            assert r["code"] == "invalid_input"
    assert len(caplog.records) == 5 and errors.suppressed == 3995
    assert sum(r.exc_info is not None for r in caplog.records) <= 5


# --- fuzz: Hypothesis, in process ----------------------------------------------------------------------------
N_FUZZ = 2000   # Hypothesis examples (the socket fuzz in test_stream_fuzz sends 10,300 more)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10 ** 30, max_value=10 ** 30),
                     st.integers(min_value=10 ** 300, max_value=10 ** 310), st.floats(allow_nan=True),
                     st.text(max_size=30), st.sampled_from(["jawOpen", "furious scowl", "\ud800", "", "ping"]))
_json = st.recursive(_scalars, lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.text(max_size=8), ch,
                                                                                     max_size=4), max_leaves=12)
_field = st.sampled_from(["type", "id", "text", "weights", "intensity", "transition_ms", "junk"])
_kinds = st.sampled_from(["text", "weights", "ping", "subscribe", "unsubscribe", "dance", None])
_names = st.sampled_from(list(schema.MEDIAPIPE_NAMES[:8]) + ["jawOpn", "JAW_OPEN", "eyeBlink_L", ""])
_requests = st.one_of(
    _json,
    st.fixed_dictionaries({"type": _kinds}, optional={"id": _scalars, "text": _scalars, "intensity": _scalars,
                                                      "transition_ms": _scalars,
                                                      "weights": st.one_of(_json, st.dictionaries(
                                                          _names, _scalars, max_size=5))}),
    st.dictionaries(_field, _json, max_size=5),
)
_bodies = st.one_of(st.binary(max_size=200), _requests.map(lambda o: json.dumps(o).encode("utf-8", "surrogatepass")),
                    _requests.map(lambda o: json.dumps(o)[:-1].encode("utf-8", "surrogatepass")))


def _check_reply(r):
    assert isinstance(r, dict) and r["type"] in ("error", "ack", "pong"), r
    if r["type"] == "error":
        assert r["code"] in ERROR_CODES and r["code"] != "internal", r
        assert isinstance(r["message"], str) and len(r["message"]) > 10
    wire.encode_message(r)   # every reply can be sent


@settings(max_examples=N_FUZZ // 2, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(_requests)
def test_fuzz_decoded_messages(obj):
    _check_reply(handle_message(obj, StandInLoop(), Session()))


@settings(max_examples=N_FUZZ // 2, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(_bodies)
def test_fuzz_raw_bodies(body):
    _check_reply(handle_message(body, StandInLoop(), Session()))


def test_weights_vector_order():
    vec, clamped, extras = protocol.weights_vector({"jawOpen": 0.25, "browInnerUp": 1})
    expect = np.zeros(schema.N_MEDIAPIPE, np.float32)
    expect[schema.MEDIAPIPE_INDEX["jawOpen"]] = 0.25
    expect[schema.MEDIAPIPE_INDEX["browInnerUp"]] = 1
    assert np.array_equal(vec, expect) and clamped == () and extras == {}
