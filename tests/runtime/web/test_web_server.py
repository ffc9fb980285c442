"""The viewer server without a browser: HTTP routes and their guards, the WebSocket control protocol
(real sockets on 127.0.0.1, independent clients), the rig it serves, and the not-built error."""
from __future__ import annotations

import asyncio
import http.client
import json
import time
from pathlib import Path

import numpy as np
import pytest

from emo3d import schema
from emo3d.avatar.gltf import load_gltf
from emo3d.errors import InvalidInputError
from runtime.web import BUILD_COMMAND, ViewerNotBuiltError, WebOptions, WebServer, rig_eye_nodes, rig_target_map, \
    vrm_preset_recipes
from runtime.web.server import require_built
from support.standin import StandInLoop


@pytest.fixture
def static(tmp_path) -> Path:
    """A stand-in built viewer (the server only needs index.html and app.js to exist)."""
    d = tmp_path / "static"
    d.mkdir()
    (d / "index.html").write_text("<!doctype html><title>emo3d</title>")
    (d / "app.js").write_text("console.log('emo3d');")
    (d / ".secret").write_text("hidden")
    (tmp_path / "outside.txt").write_text("outside")
    return d


@pytest.fixture
def served(static):
    loop = StandInLoop(fps=60.0)
    loop.start()
    server = WebServer(loop, WebOptions(port=0, static_dir=static, max_message=1024)).start()
    yield loop, server
    server.close()
    loop.close()


def _get(server, path: str, host: str | None = None):
    c = http.client.HTTPConnection(*server.address, timeout=10)
    headers = {} if host is None else {"Host": host}
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict(r.getheaders()), body


def _ws_url(server) -> str:
    return "ws://%s:%d/ws" % tuple(server.address)


async def _recv_reply(ws, timeout: float = 10.0) -> dict:
    """The next message that is not a frame."""
    end = time.monotonic() + timeout
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, end - time.monotonic())))
        if msg["type"] != "frame":
            return msg


def test_http_serves_the_page_config_and_rig_and_nothing_else(served, tmp_path):
    loop, server = served
    status, headers, body = _get(server, "/")
    assert status == 200 and body.startswith(b"<!doctype html>")
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"] and "script-src 'self'" in \
        headers["Content-Security-Policy"]
    status, headers, body = _get(server, "/config.json")
    cfg = json.loads(body)
    assert status == 200 and cfg["ws"] == "/ws" and cfg["names"] == list(schema.MEDIAPIPE_NAMES)
    assert cfg["emotions"] == list(schema.EMOTIONS) and cfg["rig"]["format"] == "gltf"
    head = schema.MODEL_NAMES + ("tongueOut",)          # the default head: the 51 shapes and tongueOut
    assert cfg["rig"]["targets"] == {n: n for n in head}
    status, headers, body = _get(server, cfg["rig"]["url"])
    assert status == 200 and headers["Content-Type"] == "model/gltf-binary" and body[:4] == b"glTF"
    f = tmp_path / "served.glb"
    f.write_bytes(body)
    assert load_gltf(f).target_names == head
    for bad in ("/.secret", "/../outside.txt", "/%2e%2e/outside.txt", "/nope.js", "/rig.vrm"):
        assert _get(server, bad)[0] == 404, bad
    # DNS rebinding: a page served under another host name is refused
    status, _, body = _get(server, "/", host="evil.example:8787")
    assert status == 403 and b"not a loopback name" in body
    assert _get(server, "/", host="localhost:%d" % server.address[1])[0] == 200


def test_websocket_speaks_the_control_protocol(served):
    from websockets.asyncio.client import connect
    loop, server = served

    async def run():
        async with connect(_ws_url(server)) as a, connect(_ws_url(server)) as b:
            await a.send(json.dumps({"type": "ping", "id": 7}))
            pong = await _recv_reply(a)
            assert pong["type"] == "pong" and pong["id"] == 7
            await a.send(json.dumps({"type": "text", "id": "t1", "text": "furious scowl", "intensity": 0.5}))
            ack = await _recv_reply(a)
            assert ack == {**ack, "type": "ack", "request": "text", "id": "t1"}
            await a.send(json.dumps({"weights": {"jawOpen": 1.5}}))
            ack = await _recv_reply(a)
            assert ack["request"] == "weights" and "jawOpen" in ack["warning"]
            # malformed messages: an error reply each, the connection stays open
            for raw, code in (("{not json", "bad_json"), ("[1, 2]", "bad_request"),
                              (json.dumps({"type": "dance"}), "invalid_input"),
                              (json.dumps({"text": "x", "colour": 1}), "invalid_input"),
                              (b"\xff\xfe", "bad_encoding"), ("", "empty")):
                await a.send(raw)
                err = await _recv_reply(a)
                assert err["type"] == "error" and err["code"] == code, (raw, err)
            await a.send(json.dumps({"type": "ping"}))
            assert (await _recv_reply(a))["type"] == "pong"
            # the other page kept receiving frames all along, in order
            frames = [json.loads(await asyncio.wait_for(b.recv(), 5)) for _ in range(10)]
            assert all(f["type"] == "frame" and len(f["weights"]) == 52 for f in frames)
            assert [f["index"] for f in frames] == list(range(frames[0]["index"], frames[0]["index"] + 10))
            # too large: an error, then the server closes that connection only
            await a.send("x" * 2000)
            err = await _recv_reply(a)
            assert err["code"] == "too_large" and "1024 bytes" in err["message"]
            await asyncio.wait_for(a.wait_closed(), 5)
            await b.send(json.dumps({"type": "unsubscribe"}))
            assert (await _recv_reply(b))["request"] == "unsubscribe"
            await b.send(json.dumps({"type": "ping"}))
            assert (await _recv_reply(b, 2.0))["type"] == "pong"

    asyncio.run(run())
    assert ("furious scowl", 0.5, None) in loop.texts
    assert loop.current[schema.MEDIAPIPE_INDEX["jawOpen"]] == 1.0


def test_frames_arrive_at_the_loop_rate(served):
    from websockets.asyncio.client import connect
    loop, server = served

    async def run():
        async with connect(_ws_url(server)) as ws:
            await asyncio.wait_for(ws.recv(), 5)
            t0, n = time.perf_counter(), 0
            while time.perf_counter() - t0 < 2.0:
                n += json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "frame"
            return n / (time.perf_counter() - t0)

    rate = asyncio.run(run())
    assert rate >= 50.0, f"{rate:.1f} frames/s over the WebSocket"


def test_cross_site_pages_cannot_open_the_websocket(served):
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus
    loop, server = served
    host = "%s:%d" % tuple(server.address)

    async def run():
        with pytest.raises(InvalidStatus) as e:
            async with connect(_ws_url(server), origin="http://evil.example"):
                pass
        assert e.value.response.status_code == 403
        async with connect(_ws_url(server), origin=f"http://{host}") as ws:   # the page's own origin
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "frame"

    asyncio.run(run())


def test_options_refuse_remote_hosts_and_bad_rigs(tmp_path):
    with pytest.raises(InvalidInputError, match="--allow-remote"):
        WebOptions(host="0.0.0.0")
    assert WebOptions(host="0.0.0.0", allow_remote=True).allow_remote
    with pytest.raises(InvalidInputError, match="does not exist"):
        WebOptions(rig=tmp_path / "missing.glb")
    (tmp_path / "face.obj").write_text("v 0 0 0")
    with pytest.raises(InvalidInputError, match=r"\.glb, \.gltf or \.vrm"):
        WebOptions(rig=tmp_path / "face.obj")
    with pytest.raises(InvalidInputError, match="0..65535"):
        WebOptions(port=70000)


def test_a_missing_build_names_the_command(tmp_path):
    with pytest.raises(ViewerNotBuiltError) as e:
        require_built(tmp_path)
    assert BUILD_COMMAND in str(e.value) and "index.html" in str(e.value)
    loop = StandInLoop()
    with pytest.raises(ViewerNotBuiltError, match="scripts/build_web.sh"):
        WebServer(loop, WebOptions(port=0, static_dir=tmp_path)).start()
    assert loop.sinks == []


def test_rig_target_map_matches_morph_and_vrm_expression_names(tmp_path):
    doc = {"asset": {"version": "2.0"},
           "meshes": [{"extras": {"targetNames": ["JawOpen", "blendShape1.mouthSmile_L", "hairWiggle"]},
                       "primitives": []}],
           "extensions": {"VRMC_vrm": {"expressions": {"preset": {"happy": {}},
                                                       "custom": {"browInnerUp_R": {}, "EyeBlinkLeft": {}}}}}}
    f = tmp_path / "x.gltf"
    f.write_text(json.dumps(doc))
    assert rig_target_map(f) == {"JawOpen": "jawOpen", "blendShape1.mouthSmile_L": "mouthSmileLeft",
                                 "browInnerUp_R": "browInnerUp", "EyeBlinkLeft": "eyeBlinkLeft"}


@pytest.mark.parametrize("left,right", [("LeftEye", "RightEye"), ("mixamorig:LeftEye", "mixamorig:RightEye"),
                                        ("eye.L", "eye.R"), ("Eye_L", "Eye_R"), ("eye_left", "eye_right"),
                                        ("EyeLeft", "EyeRight"), ("CC_Base_L_Eye", "CC_Base_R_Eye"),
                                        ("J_Adj_L_FaceEye", "J_Adj_R_FaceEye")])
def test_rig_eye_nodes_finds_eye_bones_by_name(tmp_path, left, right):
    nodes = [{"name": "Head"}, {"name": "LeftEyelid"}, {"name": "eyebrow.L"}, {"name": right}, {"name": left},
             {"name": left, "mesh": 0}]
    f = tmp_path / "x.gltf"
    f.write_text(json.dumps({"asset": {"version": "2.0"}, "nodes": nodes}))
    assert rig_eye_nodes(f) == {"left": 4, "right": 3}        # the node without a mesh wins over the mesh's
    f.write_text(json.dumps({"asset": {"version": "2.0"}, "nodes": nodes, "skins": [{"joints": [5, 3]}]}))
    assert rig_eye_nodes(f) == {"left": 5, "right": 3}        # a skin's joint wins over a plain node


def test_rig_eye_nodes_is_none_when_ambiguous_one_sided_or_vrm(tmp_path):
    f = tmp_path / "x.gltf"
    for nodes, ext in (([{"name": "LeftEye"}, {"name": "eye.L"}, {"name": "RightEye"}], None),   # two left eyes
                       ([{"name": "LeftEye"}], None),                                          # no right eye
                       ([{"name": "Eye"}, {"name": "Eye.001"}], None),                          # no sides
                       ([{"name": "LeftEye"}, {"name": "RightEye"}], {"VRM": {}})):            # three-vrm's job
        f.write_text(json.dumps({"asset": {"version": "2.0"}, "nodes": nodes, **({"extensions": ext} if ext else {})}))
        assert rig_eye_nodes(f) is None, nodes


def test_vrm_preset_recipes_are_emo3ds_retarget_for_vrms_without_arkit_names(tmp_path):
    f = tmp_path / "x.vrm"
    groups = [{"name": "A", "presetName": "a"}, {"name": "Joy", "presetName": "joy"},
              {"name": "Blink_L", "presetName": "blink_l"}, {"name": "LookUp", "presetName": "lookup"},
              {"name": "Fun", "presetName": "unknown"}, {"name": "jawOpen", "presetName": "unknown"}]
    f.write_text(json.dumps({"asset": {"version": "2.0"},
                             "extensions": {"VRM": {"blendShapeMaster": {"blendShapeGroups": groups}}}}))
    # keyed by three-vrm's expression names ("blinkLeft" for presetName blink_l, "Fun" for an unknown preset);
    # jawOpen is the rig's own ARKit expression, so "aa" has nothing left to drive; the look presets are lookAt's
    assert vrm_preset_recipes(f) == {"happy": [["mouthSmileLeft", 0.5], ["mouthSmileRight", 0.5]],
                                     "blinkLeft": [["eyeBlinkLeft", 1.0]],
                                     "Fun": [["eyeSquintLeft", 0.5], ["eyeSquintRight", 0.5]]}
    assert rig_target_map(f) == {"jawOpen": "jawOpen"}
    from emo3d import schema
    perfect_sync = [{"name": n, "presetName": "unknown"} for n in schema.MODEL_NAMES] + groups[:2]
    f.write_text(json.dumps({"asset": {"version": "2.0"},
                             "extensions": {"VRM": {"blendShapeMaster": {"blendShapeGroups": perfect_sync}}}}))
    assert vrm_preset_recipes(f) == {}         # 51 ARKit expressions: the presets are left alone


def test_external_rig_is_served_as_is(static, ict_rig_path):
    loop = StandInLoop()
    with WebServer(loop, WebOptions(port=0, static_dir=static, rig=ict_rig_path)) as server:
        cfg = json.loads(_get(server, "/config.json")[2])
        assert cfg["rig"]["url"] == "/rig.glb" and cfg["rig"]["name"] == ict_rig_path.name
        assert len(set(cfg["rig"]["targets"].values())) >= 50
        assert cfg["rig"]["eyes"] is None          # its eyes turn with its eyeLook* targets; it has no bones
        assert cfg["rig"]["presets"] == {}
        assert _get(server, "/rig.glb")[2] == ict_rig_path.read_bytes()
    assert np.isfinite(loop.current).all()


def test_cli_web_without_a_built_viewer_names_the_build_command(tmp_path, monkeypatch, capsys):
    import runtime.web.server as web_server
    from runtime.cli import main
    from support.tiny import make_tiny_model
    monkeypatch.setattr(web_server, "STATIC_DIR", tmp_path / "nothing-built")
    model = make_tiny_model(tmp_path / "model")
    rc = main(["--web", "127.0.0.1:0", "--headless", "--model", str(model), "--duration", "1", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and BUILD_COMMAND in err and "not built" in err, err


def test_cli_web_serves_the_loop(static, tmp_path, monkeypatch):
    """`emo3d-run --web` wires the viewer to the CLI's loop: config, rig, frames, a text request."""
    import socket
    import subprocess
    import sys
    import os
    from support.tiny import make_tiny_model
    model = make_tiny_model(tmp_path / "model", emotions=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    code = ("import sys, runtime.web.server as w, pathlib; w.STATIC_DIR = pathlib.Path(sys.argv[1]); "
            "from runtime.cli import main; raise SystemExit(main(sys.argv[2:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(static), "--web", f"127.0.0.1:{port}", "--headless",
                             "--model", str(model), "--duration", "60", "--no-idle"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "browser viewer at" not in line:
            assert proc.poll() is None and time.monotonic() < deadline, f"emo3d-run --web did not start: {line}"
            line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line

        class Addr:
            address = ("127.0.0.1", port)
        cfg = json.loads(_get(Addr, "/config.json")[2])
        assert cfg["fps"] == 60.0 and cfg["idle"] is False

        from websockets.asyncio.client import connect

        async def run():
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "frame"
                await ws.send(json.dumps({"type": "text", "text": "happy smile", "id": 1}))
                ack = await _recv_reply(ws, 30)
                assert ack["type"] == "ack" and set(ack["emotions"]) == set(schema.EMOTIONS)
                end = time.monotonic() + 5
                while time.monotonic() < end:   # the loop eases toward the prediction
                    f = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if f["type"] == "frame" and max(f["weights"].values()) > 0.05:
                        return f
                raise AssertionError("the frames never left the neutral face")

        assert asyncio.run(run())["index"] > 0
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


def test_idle_request_switches_the_loops_idle_motion_on_both_transports(static):
    """`{"type": "idle"}` is part of the one protocol: the WebSocket and the TCP server both apply it."""
    import socket
    from runtime.loop import AvatarLoop, LoopOptions
    from runtime.streaming.server import ControlServer, ServerOptions
    from runtime.streaming.wire import encode_message, read_message
    from websockets.asyncio.client import connect
    loop = AvatarLoop(None, LoopOptions(idle=True))
    with WebServer(loop, WebOptions(port=0, static_dir=static)) as web:
        async def run():
            async with connect(_ws_url(web)) as ws:
                await ws.send(json.dumps({"type": "idle", "idle": False, "id": 3}))
                ack = await _recv_reply(ws)
                assert ack == {"type": "ack", "request": "idle", "id": 3, "idle": False}
                assert loop.options.idle is False
                await ws.send(json.dumps({"type": "idle", "idle": "no"}))
                err = await _recv_reply(ws)
                assert err["code"] == "invalid_input" and "true or false" in err["message"]
                await ws.send(json.dumps({"type": "idle"}))
                assert (await _recv_reply(ws))["code"] == "invalid_input"
        asyncio.run(run())
    assert loop.options.idle is False
    with ControlServer(loop, ServerOptions(port=0)) as tcp, socket.create_connection(tcp.address, timeout=10) as s:
        s.sendall(encode_message({"type": "idle", "idle": True}))
        msg = read_message(s)
        while msg["type"] == "frame":
            msg = read_message(s)
        assert msg == {"type": "ack", "request": "idle", "idle": True}
    assert loop.options.idle is True
    with WebServer(StandInLoop(), WebOptions(port=0, static_dir=static)) as web:   # a loop without idle motion
        async def run_standin():
            async with connect(_ws_url(web)) as ws:
                await ws.send(json.dumps({"type": "idle", "idle": True}))
                err = await _recv_reply(ws)
                assert err["code"] == "invalid_input" and "no idle motion" in err["message"]
        asyncio.run(run_standin())


def test_a_page_that_never_reads_cannot_queue_replies_without_bound(static):
    """Requests from a page that reads nothing stop being read once `reply_queue` replies wait; other pages go on."""
    from websockets.asyncio.client import connect
    loop = StandInLoop(fps=60.0).start()
    try:
        with WebServer(loop, WebOptions(port=0, static_dir=static, reply_queue=16)) as server:
            import socket
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # a small window: the page's backlog shows
            raw.connect(tuple(server.address))

            async def run():
                mute = await connect(_ws_url(server), sock=raw, max_queue=1)

                async def flood():   # TCP buffers fill with frames the mute page never reads; then pings pile up
                    for i in range(3000):
                        await mute.send(json.dumps({"type": "ping", "id": i}))

                sender = asyncio.ensure_future(flood())
                try:
                    async with connect(_ws_url(server)) as other:
                        await asyncio.sleep(2.0)
                        queued = [len(p.replies) for p in server._pages]
                        assert max(queued) <= 16, queued
                        await other.send(json.dumps({"type": "ping", "id": "other"}))
                        assert (await _recv_reply(other))["id"] == "other"
                finally:
                    sender.cancel()
                    mute.transport.abort()
            asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        loop.close()
