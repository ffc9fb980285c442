"""The browser viewer's server: HTTP for the built page and the rig, and a WebSocket at ``/ws`` that
speaks the control protocol of ``docs/control-protocol.md`` (same JSON requests, replies, frames and
limits as ``--serve``; one JSON object per WebSocket text message instead of a length prefix).

One port serves both (the ``websockets`` library answers plain GETs through ``process_request``).
The asyncio loop runs in its own thread; ``send(frame)`` (the avatar-loop sink) only hands the newest
frame to that thread, and each page has a bounded frame queue that drops the oldest frame, so a slow
or vanished page never blocks the frame loop or the other pages.

Security: loopback by default (``allow_remote`` to bind anything else); the ``Host`` header must name
a loopback host unless ``allow_remote`` (no DNS rebinding); a WebSocket with an ``Origin`` header is
accepted only from the page's own origin; every response carries a Content-Security-Policy that
allows nothing but this server.
"""
from __future__ import annotations

import asyncio
import collections
import ipaddress
import json
import logging
import mimetypes
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Dict, Optional, Set

import numpy as np

from emo3d import schema
from emo3d.avatar.rig import EXTRA_TARGETS
from emo3d.errors import AssetError, InvalidInputError
from emo3d.options import check_int

from runtime.streaming.protocol import ClientErrorLog, error_reply, handle_message
from runtime.streaming.server import is_loopback
from runtime.streaming.service import FrameService
from runtime.streaming.wire import encode_frame, encode_message

from . import DEFAULT_HOST, DEFAULT_PORT

log = logging.getLogger(__name__)

WS_PATH = "/ws"
PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
FRONTEND_DIR = PACKAGE_DIR / "frontend"
BUILD_COMMAND = "bash scripts/build_web.sh"
RIG_FORMATS = {".glb": "gltf", ".gltf": "gltf", ".vrm": "vrm"}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self' blob: data:; media-src 'self' blob:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'")


class ViewerNotBuiltError(AssetError):
    """The page's static files are missing (the frontend was not built)."""


def require_built(static_dir: Path = STATIC_DIR) -> Path:
    """``static_dir`` when it holds a built viewer, else :class:`ViewerNotBuiltError` naming the build."""
    missing = [n for n in ("index.html", "app.js") if not (static_dir / n).is_file()]
    if missing:
        raise ViewerNotBuiltError(
            f"the browser viewer is not built ({', '.join(missing)} missing in {static_dir}); build it with "
            f"`{BUILD_COMMAND}` in the emo3d checkout (needs Node.js and npm; then reinstall if emo3d is "
            f"installed with pip)")
    return static_dir


@dataclass
class WebOptions:
    """Options of :class:`WebServer` (validated)."""
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT          # 0 = any free port (see ``WebServer.address``)
    allow_remote: bool = False        # needed to bind (and be reached by) anything but a loopback address
    max_message: int = 64 * 1024      # bytes of JSON per message, as for --serve
    max_clients: int = 64
    frame_queue: int = 8              # frames buffered per page (drop-oldest beyond)
    reply_queue: int = 64             # replies buffered per page before its requests stop being read
    send_buffer: int = 64 * 1024      # kernel send buffer per page (bounds a slow page's lag)
    digits: int = 5                   # significant digits of frame weights
    rig: Optional[Path] = None        # a .glb/.gltf/.vrm to show instead of the default head
    static_dir: Path = field(default_factory=lambda: STATIC_DIR)

    def __post_init__(self):
        check_int(self.port, "--web port", 0, 65535)
        for name in ("max_clients", "frame_queue", "reply_queue", "send_buffer"):
            check_int(getattr(self, name), f"WebOptions.{name}", 1)
        check_int(self.max_message, "--max-message (bytes)", 64)
        check_int(self.digits, "WebOptions.digits", 1, 9)
        if not self.allow_remote and not is_loopback(self.host):
            raise InvalidInputError(
                f"refusing to serve the viewer on {self.host!r}: it is not a loopback address; anyone on the "
                "network could drive the avatar. Pass --allow-remote to bind it anyway.")
        if self.rig is not None:
            self.rig = Path(self.rig)
            if self.rig.suffix.lower() not in RIG_FORMATS:
                raise InvalidInputError(f"--rig {str(self.rig)!r}: the viewer shows .glb, .gltf or .vrm files")
            if not self.rig.is_file():
                raise InvalidInputError(f"--rig {str(self.rig)!r} does not exist")
        self.static_dir = Path(self.static_dir)


@dataclass
class WebStats:
    pages: int = 0              # WebSocket connections now
    connections: int = 0        # WebSocket connections ever
    http_requests: int = 0
    frames: int = 0             # frames broadcast
    frames_coalesced: int = 0   # frames dropped because the server thread fell 8 frames behind
    frames_dropped: int = 0     # frames dropped from slow pages' queues
    requests: int = 0           # control requests received


class _Page:
    """One WebSocket connection; ``subscribed``/``frames`` are what the shared dispatch uses."""
    __slots__ = ("ws", "frames", "replies", "wake", "room", "subscribed", "closed")

    def __init__(self, ws, frame_queue: int):
        self.ws = ws
        self.frames: collections.deque = collections.deque(maxlen=frame_queue)
        self.replies: collections.deque = collections.deque()
        self.wake = asyncio.Event()
        self.room = asyncio.Event()     # set while the reply queue has room
        self.room.set()
        self.subscribed = True
        self.closed = False


def _gltf_json(path: Path) -> dict:
    """The JSON document of a .glb/.gltf/.vrm file (InvalidInputError naming --rig when it is none)."""
    data = path.read_bytes()
    try:
        if data[:4] == b"glTF":
            n = int.from_bytes(data[12:16], "little")
            doc = json.loads(data[20:20 + n].decode("utf-8"))
        else:
            doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidInputError(f"--rig {path}: not a glTF/VRM file ({e})") from None
    if not isinstance(doc, dict):
        raise InvalidInputError(f"--rig {path}: not a glTF/VRM file (its JSON is not an object)")
    return doc


def rig_target_map(path: Path) -> Dict[str, str]:
    """{source name: ARKit name} for every morph target and VRM expression name in a glTF/VRM file that
    matches one ARKit shape (the one name map, :func:`emo3d.names.resolve`; names of both sides such as
    ``mouthSmile`` are left out)."""
    return _target_map(_gltf_json(path))


def _target_map(doc: dict) -> Dict[str, str]:
    from emo3d import names as name_map
    names = []
    for mesh in doc.get("meshes", []) or []:
        names += list((mesh.get("extras") or {}).get("targetNames") or [])
        for prim in mesh.get("primitives", []) or []:
            names += list((prim.get("extras") or {}).get("targetNames") or [])
    names += list(_vrm_expressions(doc))
    out = {}
    for n in names:
        m = name_map.resolve(str(n))
        if m is not None and not m.split and m.targets[0] != "_neutral":
            out[str(n)] = m.targets[0]
    return out


def _vrm_expressions(doc: dict) -> Dict[str, Optional[str]]:
    """{the name three-vrm gives each VRM expression: its VRM 1.0 preset or None}. three-vrm names a 0.x group
    by the 1.0 name of its ``presetName`` when that is a preset, else by its ``name``; a 1.0 expression by its key.
    The preset is :func:`emo3d.names.vrm_preset` of the presetName, else of the name (as emo3d's reader)."""
    from emo3d import names as name_map
    ext = doc.get("extensions") or {}
    out: Dict[str, Optional[str]] = {}
    v1 = (ext.get("VRMC_vrm") or {}).get("expressions") or {}
    for key in list((v1.get("preset") or {}).keys()) + list((v1.get("custom") or {}).keys()):
        out[str(key)] = name_map.vrm_preset(str(key))
    for group in ((ext.get("VRM") or {}).get("blendShapeMaster") or {}).get("blendShapeGroups") or []:
        preset = name_map.vrm_preset(str(group.get("presetName") or ""))
        name = preset or str(group.get("name", ""))
        out[name] = preset or name_map.vrm_preset(name)
    return out


def vrm_preset_recipes(path: Path) -> Dict[str, list]:
    """{VRM expression name (three-vrm's): [[ARKit name, weight], ...]} driving a VRM's expression presets from
    the 52 scores as emo3d's renderer does (:func:`emo3d.avatar.vrm.preset_weights`, the one retarget), for a VRM
    with fewer than ``MIN_ARKIT_SHAPES`` ARKit-named expressions; ARKit shapes the rig has (``bound``) drive only
    themselves. The look presets are left to the VRM's lookAt (the page's eyes). Empty for other rigs."""
    doc = _gltf_json(path)
    return _preset_recipes(doc, set(_target_map(doc).values()))


def _preset_recipes(doc: dict, bound: Set[str]) -> Dict[str, list]:
    from emo3d.avatar import vrm
    exprs = {n: p for n, p in _vrm_expressions(doc).items() if p and not p.startswith("look") and p != "neutral"}
    if not exprs or len(bound) >= vrm.MIN_ARKIT_SHAPES:
        return {}
    have = tuple(sorted(set(exprs.values())))
    recipes: Dict[str, list] = {}
    for arkit in schema.MODEL_NAMES:   # preset_weights is linear in the scores: read it column by column
        if arkit in bound:
            continue
        unit = np.zeros(len(schema.MEDIAPIPE_NAMES), np.float32)
        unit[schema.MEDIAPIPE_INDEX[arkit]] = 1.0
        for preset, w in vrm.preset_weights(unit, have).items():
            if w > 0:
                recipes.setdefault(preset, []).append([arkit, round(float(w), 6)])
    return {n: recipes[p] for n, p in exprs.items() if p in recipes}


# Eye node names of plain glTF rigs, lower-cased and split at non-alphanumerics: "LeftEye",
# "mixamorig:LeftEye", "eye.L", "Eye_R", "eye_left", "EyeRight", "CC_Base_L_Eye", "J_Adj_L_FaceEye".
_EYE_WORDS = {"eye", "faceeye", "lefteye", "righteye", "eyeleft", "eyeright"}
_SIDE_WORDS = {"left": {"l", "left", "lefteye", "eyeleft"}, "right": {"r", "right", "righteye", "eyeright"}}


def rig_eye_nodes(path: Path) -> Optional[Dict[str, int]]:
    """``{"left": node index, "right": node index}`` of a plain glTF rig's eye bones, found by name (see
    ``_EYE_WORDS``; a joint of a skin wins over a plain node, a node without a mesh over one with a mesh),
    or None when the file has not exactly one best candidate for each eye, or is a VRM (three-vrm's humanoid
    names a VRM's eyes). Left is the subject's left."""
    return _eye_nodes(_gltf_json(path))


def _eye_nodes(doc: dict) -> Optional[Dict[str, int]]:
    ext = doc.get("extensions") or {}
    if "VRM" in ext or "VRMC_vrm" in ext:
        return None
    joints = {j for skin in doc.get("skins", []) or [] for j in skin.get("joints", []) or []}
    found: Dict[str, list] = {"left": [], "right": []}
    for i, node in enumerate(doc.get("nodes", []) or []):
        words = set(re.split(r"[^a-z0-9]+", str(node.get("name", "")).lower())) - {""}
        if not words & _EYE_WORDS:
            continue
        sides = [side for side, w in _SIDE_WORDS.items() if words & w]
        if len(sides) == 1:
            found[sides[0]].append((i not in joints, "mesh" in node, i))
    out = {}
    for side, cands in found.items():
        cands.sort()
        if not cands or (len(cands) > 1 and cands[0][:2] == cands[1][:2]):
            return None
        out[side] = cands[0][2]
    return out


class WebServer(FrameService):
    """HTTP + WebSocket viewer server for an avatar loop (``set_text``, ``set_weights``, ``add_sink``).

    ``start()`` builds the rig bytes, binds, and registers the server as a sink of ``loop``;
    ``close()`` undoes all three.
    """

    THREAD_NAME = "emo3d-web"
    BIND_ERROR = "cannot serve the viewer on"

    def __init__(self, loop, options: WebOptions | None = None):
        self.options = options or WebOptions()
        # The control protocol's request handling (validation, dispatch to the loop, error replies) is
        # runtime.streaming.protocol's, as for the TCP server; this transport only frames messages differently.
        super().__init__(loop, host=self.options.host, port=self.options.port, request_threads=1,
                         thread_prefix="emo3d-web-req")
        self.stats = WebStats()
        self._pages: set[_Page] = set()
        self._server = None
        self._rig_bytes = b""
        self._config = b""
        self._errors = ClientErrorLog(log)

    # --- lifecycle ---------------------------------------------------------------------------
    def _prepare(self) -> None:
        o = self.options
        require_built(o.static_dir)
        if o.rig is None:
            from emo3d.avatar.default import default_rig
            from emo3d.avatar.gltf_export import glb_bytes
            rig = default_rig()
            self._rig_bytes = glb_bytes(rig)
            fmt, url, targets, name = "gltf", "/rig.glb", {n: n for n in rig.target_names}, "default head"
            eyes, presets = None, {}   # its eyes turn with its eyeLook* targets
        else:
            fmt = RIG_FORMATS[o.rig.suffix.lower()]
            doc = _gltf_json(o.rig)
            targets, eyes = _target_map(doc), _eye_nodes(doc)
            presets = _preset_recipes(doc, set(targets.values()))
            self._rig_bytes = o.rig.read_bytes()
            url, name = f"/rig{o.rig.suffix.lower()}", o.rig.name
            if o.rig.suffix.lower() == ".gltf" and b'"uri"' in self._rig_bytes and b"data:" not in self._rig_bytes:
                raise InvalidInputError(f"--rig {o.rig}: a .gltf with external files cannot be served; "
                                        f"convert it to .glb")
        fps = float(getattr(getattr(self.loop, "options", None), "fps", 60.0) or 60.0)
        self._config = json.dumps({
            "rig": {"url": url, "format": fmt, "name": name, "targets": targets, "eyes": eyes,
                    "presets": presets},
            "ws": WS_PATH, "fps": fps, "names": list(schema.MEDIAPIPE_NAMES),
            "extras": list(EXTRA_TARGETS), "emotions": list(schema.EMOTIONS),
            "max_message": o.max_message,
            "idle": bool(getattr(getattr(self.loop, "options", None), "idle", True)),
        }).encode()

    def start(self) -> "WebServer":
        self._prepare()
        super().start()
        log.info("browser viewer on %s", self.url)
        return self

    async def _bind(self) -> tuple:
        from websockets.asyncio.server import serve
        o = self.options
        self._server = await serve(self._handle, o.host, o.port, process_request=self._http,
                                   max_size=max(4 * o.max_message, 1 << 20), compression=None,
                                   ping_interval=20, ping_timeout=20, server_header="emo3d")
        return self._server.sockets[0].getsockname()

    async def _serve(self, stop: asyncio.Future) -> None:
        async with self._server:
            await stop
            for p in list(self._pages):
                p.closed = True
                p.wake.set()
                await p.ws.close(1001, "server shutting down")

    @property
    def url(self) -> str:
        host, port = self.address or (self.options.host, self.options.port)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"

    def _encode(self, frame) -> str:
        return encode_frame(frame, self.options.digits)[4:].decode("utf-8")

    def _subscribers(self):
        return (p for p in self._pages if p.subscribed)

    # --- HTTP ---------------------------------------------------------------------------------
    def _host_ok(self, host_header: Optional[str]) -> bool:
        if self.options.allow_remote:
            return True
        if not host_header:
            return False
        host = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
        host = host.strip("[]")
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def _respond(self, status: HTTPStatus, body: bytes, ctype: str):
        from websockets.datastructures import Headers
        from websockets.http11 import Response
        headers = Headers()
        headers["Content-Type"] = ctype
        headers["Content-Length"] = str(len(body))
        headers["Cache-Control"] = "no-cache"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Content-Security-Policy"] = _CSP
        headers["Referrer-Policy"] = "no-referrer"
        headers["Connection"] = "close"
        return Response(status.value, status.phrase, headers, body)

    def _http(self, connection, request):
        host = request.headers.get("Host")
        if not self._host_ok(host):
            return self._respond(HTTPStatus.FORBIDDEN, f"Host {host!r} is not a loopback name; the viewer answers "
                                 f"only http://127.0.0.1 or http://localhost (or pass --allow-remote)\n".encode(),
                                 "text/plain; charset=utf-8")
        path = request.path.split("?", 1)[0]
        upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        if path == WS_PATH and upgrade:
            origin = request.headers.get("Origin")
            if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
                return self._respond(HTTPStatus.FORBIDDEN, f"Origin {origin!r} is not this page's origin "
                                     f"(http://{host}); cross-site pages may not drive the avatar\n".encode(),
                                     "text/plain; charset=utf-8")
            return None  # go on with the handshake
        self.stats.http_requests += 1
        if path == "/config.json":
            return self._respond(HTTPStatus.OK, self._config, "application/json")
        if path.startswith("/rig.") and path == json.loads(self._config)["rig"]["url"]:
            ctype = "model/gltf-binary" if not path.endswith(".gltf") else "model/gltf+json"
            return self._respond(HTTPStatus.OK, self._rig_bytes, ctype)
        name = "index.html" if path == "/" else path.lstrip("/")
        root = self.options.static_dir.resolve()
        f = (root / name).resolve()
        if name.startswith(".") or "/." in name or root not in f.parents or not f.is_file():
            return self._respond(HTTPStatus.NOT_FOUND, f"not found: {path}\n".encode(), "text/plain; charset=utf-8")
        ctype = mimetypes.guess_type(f.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        return self._respond(HTTPStatus.OK, f.read_bytes(), ctype)

    # --- WebSocket ------------------------------------------------------------------------------
    async def _handle(self, ws):
        from websockets.exceptions import ConnectionClosed
        self.stats.connections += 1
        if len(self._pages) >= self.options.max_clients:
            await ws.send(json.dumps(error_reply(
                "server_full", f"server has {self.options.max_clients} clients, the maximum; try later")))
            await ws.close(1013, "server full")
            return
        self._tune_socket(ws.transport.get_extra_info("socket"), self.options.send_buffer)
        page = _Page(ws, self.options.frame_queue)
        self._pages.add(page)
        self.stats.pages = len(self._pages)
        writer = asyncio.ensure_future(self._writer(page))
        try:
            async for message in ws:
                body = message.encode("utf-8") if isinstance(message, str) else bytes(message)
                if len(body) > self.options.max_message:
                    await self._reply(page, error_reply(
                        "too_large", f"message of {len(body)} bytes exceeds the maximum of "
                        f"{self.options.max_message} bytes; closing the connection"))
                    break
                if not body:
                    await self._reply(page, error_reply("empty", "empty message; send a JSON object"))
                    continue
                self.stats.requests += 1
                reply = await asyncio.get_running_loop().run_in_executor(
                    self._executor, handle_message, body, self.loop, page, self._errors, "web page")
                if not page.subscribed:
                    page.frames.clear()
                await self._reply(page, reply)
        except ConnectionClosed:
            pass
        finally:
            page.subscribed = False
            page.frames.clear()
            page.wake.set()
            try:
                await asyncio.wait_for(self._flush(page), 2.0)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
            page.closed = True
            page.wake.set()
            writer.cancel()
            self._pages.discard(page)
            self.stats.pages = len(self._pages)

    async def _flush(self, page: _Page):
        while page.replies and not page.closed:
            await asyncio.sleep(0.005)

    async def _reply(self, page: _Page, obj: dict):
        try:
            text = encode_message(obj)[4:].decode("utf-8")
        except (TypeError, ValueError):
            text = json.dumps(error_reply("internal", "reply could not be encoded", obj.get("id")))
        page.replies.append(text)
        page.wake.set()
        if len(page.replies) >= self.options.reply_queue:   # the page does not read: stop reading from it
            page.room.clear()
            await page.room.wait()

    async def _writer(self, page: _Page):
        from websockets.exceptions import ConnectionClosed
        try:
            while not page.closed:
                if not (page.replies or page.frames):
                    await page.wake.wait()
                    page.wake.clear()
                    continue
                text = page.replies.popleft() if page.replies else page.frames.popleft()
                if len(page.replies) < self.options.reply_queue:
                    page.room.set()
                await page.ws.send(text)
        except (ConnectionClosed, asyncio.CancelledError):
            pass
        finally:
            page.closed = True
            page.room.set()
