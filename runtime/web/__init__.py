"""The browser viewer: ``emo3d-run --web [HOST:PORT]`` serves a three.js page that shows the avatar
(the default head as glTF, or ``--rig FILE.glb|.gltf|.vrm``) driven over a WebSocket at the loop's rate.

The page's source is ``runtime/web/frontend/`` (npm, esbuild); ``bash scripts/build_web.sh`` builds it
into ``runtime/web/static/``. The WebSocket speaks the control protocol (``docs/control-protocol.md``).
The runtime CLI calls :func:`add_arguments` on its parser and :func:`attach` with the parsed args and
its ``AvatarLoop``.
"""
from __future__ import annotations

import argparse

from emo3d.lazy import lazy_exports

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
_LAZY = {n: "server" for n in ("WebServer", "WebOptions", "WebStats", "ViewerNotBuiltError", "require_built",
                               "rig_target_map", "rig_eye_nodes", "vrm_preset_recipes", "BUILD_COMMAND", "STATIC_DIR")}
__all__ = ["add_arguments", "attach", "DEFAULT_HOST", "DEFAULT_PORT", *sorted(_LAZY)]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--web`` to ``parser`` (``emo3d-run``; ``--rig FILE`` is the CLI's own and picks the rig shown)."""
    g = parser.add_argument_group("browser viewer")
    g.add_argument("--web", nargs="?", const=f"{DEFAULT_HOST}:{DEFAULT_PORT}", metavar="HOST:PORT",
                   help=f"serve the face in a browser page (WebGL) at http://HOST:PORT/ (default "
                        f"{DEFAULT_HOST}:{DEFAULT_PORT}); --allow-remote to bind a non-loopback address")


def attach(args: argparse.Namespace, loop) -> list:
    """Start the viewer when ``args.web`` is set; returns the started objects (each has ``close()``)."""
    spec = getattr(args, "web", None)
    if not spec:
        return []
    from runtime.streaming.vmc import parse_hostport

    from .server import WebOptions, WebServer
    host, port = parse_hostport(spec, DEFAULT_PORT, "--web")
    opts = WebOptions(host=host, port=port, allow_remote=bool(getattr(args, "allow_remote", False)),
                      max_message=int(getattr(args, "max_message", 64 * 1024)), rig=getattr(args, "rig", None))
    server = WebServer(loop, opts).start()
    print(f"emo3d-run: browser viewer at {server.url}", flush=True)
    return [server]
