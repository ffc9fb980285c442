"""Streams out of the avatar loop (VMC, Live Link Face, the control server) and the webcam input.

The runtime CLI calls :func:`add_arguments` on its parser and :func:`attach` with the parsed args and
its ``AvatarLoop``; ``attach`` returns the started objects, each with ``close()``.
"""
from __future__ import annotations

import argparse
import logging
import sys

from emo3d.errors import InvalidInputError
from emo3d.options import check_int

from .livelink import LiveLinkSink
from .server import ControlServer, ServerOptions
from .vmc import VmcSink, parse_hostport
from . import livelink, osc, protocol, server, vmc, vrchat, wire

__all__ = ["add_arguments", "attach", "VmcSink", "LiveLinkSink", "ControlServer", "ServerOptions",
           "osc", "vmc", "livelink", "server", "protocol", "wire", "vrchat"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the streaming and webcam options to ``parser`` (``emo3d-run``)."""
    g = parser.add_argument_group("streaming")
    g.add_argument("--vmc", nargs="?", const=f"127.0.0.1:{vmc.DEFAULT_PORT}", metavar="HOST:PORT",
                   help=f"send each frame as a VMC/OSC bundle over UDP (default 127.0.0.1:{vmc.DEFAULT_PORT}): "
                        "perfect-sync blendshapes 0..1 and Head/LeftEye/RightEye bones (/VMC/Ext/Bone/Pos, "
                        "Unity local rotations as quaternions)")
    g.add_argument("--vmc-no-ok", action="store_true", help="leave /VMC/Ext/OK and /VMC/Ext/T out of VMC bundles")
    g.add_argument("--livelink", nargs="?", const=f"127.0.0.1:{livelink.DEFAULT_PORT}", metavar="HOST:PORT",
                   help=f"send Live Link Face packets over UDP (default 127.0.0.1:{livelink.DEFAULT_PORT}): 52 "
                        "blendshapes 0..1, head and eye yaw/pitch/roll in RADIANS")
    g.add_argument("--livelink-subject", default="emo3d", metavar="NAME", help="Live Link subject name")
    g.add_argument("--vrchat", nargs="?", const=f"127.0.0.1:{vrchat.DEFAULT_PORT}", metavar="HOST:PORT",
                   help=f"send the face as VRChat OSC avatar parameters (VRCFaceTracking unified expressions, "
                        f"/avatar/parameters/v2/*; default 127.0.0.1:{vrchat.DEFAULT_PORT})")
    g.add_argument("--serve", nargs="?", const=f"127.0.0.1:{server.DEFAULT_PORT}", metavar="HOST:PORT",
                   help=f"run the control-and-frames server (default 127.0.0.1:{server.DEFAULT_PORT}; "
                        "protocol: docs/control-protocol.md)")
    g.add_argument("--allow-remote", action="store_true",
                   help="allow --serve to bind a non-loopback address (anyone who reaches it can drive the avatar)")
    g.add_argument("--max-message", type=int, default=64 * 1024, metavar="BYTES",
                   help=f"largest control message accepted (default 65536, at most {server.MAX_MESSAGE_LIMIT})")
    w = parser.add_argument_group("webcam")
    w.add_argument("--webcam", nargs="?", const="0", metavar="INDEX|VIDEO_FILE",
                   help="drive the face from a camera index (default 0) or a video file")
    w.add_argument("--mix", metavar="TEXT",
                   help="overlay TEXT's expression on the tracked face: brows, eye squint/wide, cheeks and nose "
                        "from the text; mouth, jaw, blinks and gaze from the camera")
    w.add_argument("--calibrate", type=int, default=30, metavar="N",
                   help="average the first N tracked frames as the neutral face and subtract it (0 = off)")
    w.add_argument("--webcam-loop", action="store_true", help="restart a video file when it ends")


def attach(args: argparse.Namespace, loop) -> list:
    """Start what ``args`` asks for on ``loop``; returns the started objects (each has ``close()``).

    On an error everything started so far is closed again and the error is raised.
    """
    started: list = []
    if getattr(args, "allow_remote", False) and not getattr(args, "serve", None) and not getattr(args, "web", None):
        raise InvalidInputError("--allow-remote only applies to --serve (the control server) and --web; add "
                                "--serve HOST:PORT or drop --allow-remote")
    try:
        if getattr(args, "vmc", None):
            host, port = parse_hostport(args.vmc, vmc.DEFAULT_PORT, "--vmc", allow_port0=False)
            ok = not getattr(args, "vmc_no_ok", False)
            sink = _named("--vmc", lambda: VmcSink(host, port, ok=ok, time=ok))
            loop.add_sink(sink)
            started.append(_Detach(loop, sink))
            log.info("VMC -> %s:%d", host, port)
        if getattr(args, "livelink", None):
            host, port = parse_hostport(args.livelink, livelink.DEFAULT_PORT, "--livelink", allow_port0=False)
            fps = int(getattr(getattr(loop, "options", None), "fps", 60) or 60)
            sink = _named("--livelink", lambda: LiveLinkSink(
                host, port, subject=getattr(args, "livelink_subject", "emo3d"), fps=fps))
            loop.add_sink(sink)
            started.append(_Detach(loop, sink))
            log.info("Live Link -> %s:%d", host, port)
        if getattr(args, "vrchat", None):
            host, port = parse_hostport(args.vrchat, vrchat.DEFAULT_PORT, "--vrchat")
            sink = vrchat.VRChatSink(host, port)
            loop.add_sink(sink)
            started.append(_Detach(loop, sink))
            log.info("VRChat OSC -> %s:%d", host, port)
        if getattr(args, "serve", None):
            host, port = parse_hostport(args.serve, server.DEFAULT_PORT, "--serve")
            max_message = check_int(int(getattr(args, "max_message", 64 * 1024)), "--max-message (bytes)", 64,
                                    server.MAX_MESSAGE_LIMIT)
            remote = bool(getattr(args, "allow_remote", False))
            opts = ServerOptions(host=host, port=port, allow_remote=remote, max_message=max_message)
            srv = ControlServer(loop, opts).start()
            started.append(srv)
            if remote and not server.is_loopback(host):
                # printed, not logged: -q must not hide it
                print(f"warning: --allow-remote: the control server listens on {host}:{srv.address[1]}; anyone "
                      "who can reach this port can drive the avatar (the protocol has no authentication)",
                      file=sys.stderr, flush=True)
        if getattr(args, "webcam", None) is not None:
            from ..webcam import WebcamOptions, WebcamTracker
            mix = getattr(args, "mix", None)
            try:
                opts = WebcamOptions(source=args.webcam, calibrate_frames=int(getattr(args, "calibrate", 30)),
                                     mix_text=mix, loop_video=bool(getattr(args, "webcam_loop", False)))
            except InvalidInputError as e:  # named as the user typed it
                msg = str(e)
                for field, flag in _WEBCAM_FLAGS:
                    msg = msg.replace(field, flag)
                raise InvalidInputError(msg) from None
            started.append(WebcamTracker(loop, opts).start())
        elif getattr(args, "mix", None):
            raise InvalidInputError("--mix needs --webcam (it overlays text on the tracked face)")
    except BaseException:
        for s in reversed(started):
            s.close()
        raise
    return started


_WEBCAM_FLAGS = (("WebcamOptions.calibrate_frames", "--calibrate"), ("calibrate_frames=", "--calibrate "),
                 ("WebcamOptions.mix_text", "--mix"), ("WebcamOptions.source", "--webcam"))


def _named(flag: str, make):
    """``make()``, with a refusal (e.g. a host that does not resolve) prefixed by the flag it came from."""
    try:
        return make()
    except InvalidInputError as e:
        raise InvalidInputError(f"{flag}: {e}") from None


class _Detach:
    """Closes a sink and removes it from the loop."""

    def __init__(self, loop, sink):
        self.loop, self.sink = loop, sink

    def send(self, frame):
        self.sink.send(frame)

    def close(self):
        try:
            self.loop.remove_sink(self.sink)
        except Exception:
            pass
        self.sink.close()

    def __repr__(self):
        return f"attached {self.sink!r}"
