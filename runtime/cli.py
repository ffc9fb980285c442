"""``emo3d-run "furious scowl"``: text in, a moving face and 52 scores out.

* with a display: a preview window (face + top blendshapes); type new prompts in the terminal
  (``q`` or Ctrl-D quits, so do Esc/q in the window);
* ``--headless`` or no display: prints the top blendshapes and writes each transition as PNG
  frames + a GIF under ``--out``;
* ``--json``: prints the 52 scores by name as one JSON object and exits (fast path: no renderer);
* ``--stdin``: one prompt per line (non-UTF-8 lines are skipped with a message; a line ``q``, ``quit``
  or ``exit`` stops reading, in every mode; exit status 2 when no line could be used).

Every bad value is refused before anything starts, with a message naming the flag (``--intensity must
be ...``), never an internal class; arguments that are not UTF-8 are refused the same way.

Streaming options (``--vmc``, ``--livelink``, ``--serve`` ...) come from :mod:`runtime.streaming`.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import queue
import re
import sys
import threading
import time
import warnings
from typing import Iterator, List, Optional

import numpy as np

from emo3d.avatar.framing import FRAMING_MODES

PROG = "emo3d-run"
_EOF = object()
QUIT_LINES = ("q", "quit", "exit")


def _say(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def _showwarning(message, category, filename, lineno, file=None, line=None) -> None:
    _say(f"warning: {message}")


def build_parser(streaming=None) -> argparse.ArgumentParser:
    from emo3d.models.e5 import LANGUAGE_NAMES
    p = argparse.ArgumentParser(prog=PROG, description="Emotion text -> 52 blendshapes -> a live face. The default "
                                f"model reads {LANGUAGE_NAMES}; intensity words, named facial actions "
                                "(\"raises her left eyebrow\", \"sticks out his tongue\") and emoji are read in "
                                "English; unreadable text gets a calm face and a warning.")
    p.add_argument("text", nargs="*", help="the emotion description, e.g. \"furious scowl\"")
    p.add_argument("--json", action="store_true",
                   help="print the 52 scores by name as one JSON object and exit (with --stdin: one per line)")
    p.add_argument("--stdin", action="store_true",
                   help="read one prompt per line from stdin (a line q, quit or exit stops)")
    p.add_argument("--headless", action="store_true", help="no window: print scores, write PNG frames + GIF")
    p.add_argument("--out", default="out", help="folder for headless PNG frames and GIFs (default: out)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument("--model", default="default", metavar="DIR", help="model folder (default: the offline default)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "tensorrt"))
    p.add_argument("--strict-device", action="store_true", help="fail instead of falling back to another provider")
    p.add_argument("--int8", action="store_true", help="use the model's int8 graph (onnx_int8)")
    from runtime.engine import MAX_THREADS_PER_CORE
    p.add_argument("--threads", type=int, default=0,
                   help=f"onnxruntime threads (0 = default; at most {MAX_THREADS_PER_CORE} per CPU core)")
    p.add_argument("--intensity", type=float, default=1.0,
                   help="expression scale 0..4 (default 1.0; also applied to --json scores)")
    p.add_argument("--transition-ms", type=float, default=400.0, help="prompt transition length (default 400)")
    p.add_argument("--hold-ms", type=float, default=300.0, help="headless: frames kept after the transition")
    p.add_argument("--size", type=int, default=256, help="face image size in pixels (default 256)")
    p.add_argument("--record-fps", type=float, default=30.0,
                   help="headless PNGs/GIF and --record: frames per second (default 30)")
    p.add_argument("--fps", type=float, default=60.0, help="loop clock (default 60)")
    p.add_argument("--top", type=int, default=8, help="how many blendshapes to print/show (default 8)")
    p.add_argument("--no-idle", action="store_true", help="no blinks or head sway")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    p.add_argument("--rig", metavar="FILE", default=None,
                   help="drive your own glTF 2.0 / VRM avatar (.glb/.gltf/.vrm: ARKit-named morph targets in any "
                        "vendor spelling, or VRM expression presets) in the preview, headless frames and --web")
    p.add_argument("--framing", default="auto", choices=FRAMING_MODES,
                   help="with --rig: what the camera frames (auto: the face of a bust or full-body avatar)")
    if streaming is not None:
        streaming.add_arguments(p)
    from runtime import record, web
    web.add_arguments(p)
    record.add_arguments(p)
    return p


def _import_streaming():
    from runtime import streaming   # imported here: the --json fast path does not load the streams
    return streaming


def _has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def stdin_lines(stream=None) -> Iterator[str]:
    """Prompts from a binary stream, one per line; non-UTF-8 and empty lines are skipped with a message;
    a line ``q``, ``quit`` or ``exit`` ends the prompts (the same in every mode)."""
    stream = stream if stream is not None else sys.stdin.buffer
    for n, raw in enumerate(stream, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            _say(f"skipped stdin line {n}: not valid UTF-8 ({e.reason} at byte {e.start})")
            continue
        line = line.rstrip("\r\n")
        if not line.strip():
            _say(f"skipped stdin line {n}: empty (give an emotion description)")
            continue
        if line.strip().lower() in QUIT_LINES:
            return
        yield line


def _reader(q: "queue.Queue", stream=None) -> None:
    try:
        for line in stdin_lines(stream):
            q.put(line)
    finally:
        q.put(_EOF)


def _not_utf8(argv: List[str]) -> Optional[str]:
    """The error for the first argument that is not valid UTF-8 (Python hands such bytes over as lone
    surrogates), else None."""
    for i, a in enumerate(argv, 1):
        try:
            a.encode("utf-8")
        except UnicodeEncodeError as e:
            raw = a.encode("utf-8", "surrogateescape") if isinstance(a, str) else a
            return (f"argument {i} ({raw[:40]!r}) is not valid UTF-8 (byte {e.start}); pass UTF-8 text, e.g. "
                    "set a UTF-8 locale")
    return None


def flag_message(e: BaseException) -> str:
    """An options error as the user typed it: ``LoopOptions.intensity must ...`` -> ``--intensity must ...``."""
    return re.sub(r"\b(?:LoopOptions|EngineOptions)\.([a-z_]+)", lambda m: "--" + m.group(1).replace("_", "-"),
                  str(e))


def check_args(args) -> Optional[str]:
    """The first bad value among the options, as an error message naming the flag (through the one range
    checker, ``emo3d.options``: ``--size must be an integer in [32, 4096], got 5``); None when all are fine."""
    from emo3d.errors import InvalidInputError
    from emo3d.options import check_int, check_number
    from runtime.engine import MAX_THREADS_PER_CORE, max_threads
    try:
        check_int(args.threads, "--threads", 0, max_threads())
    except InvalidInputError as e:
        return (f"{e} ({MAX_THREADS_PER_CORE} per CPU core, {os.cpu_count() or 1} cores here; "
                "0 = onnxruntime's default)")
    try:
        check_int(args.size, "--size", 32, 4096)
        check_number(args.record_fps, "--record-fps", 1, 240)
        check_number(args.intensity, "--intensity", 0, 4)
        check_number(args.transition_ms, "--transition-ms", 0, 60_000)
        check_number(args.fps, "--fps", 1, 1000)
        check_int(args.top, "--top", 0, 52)
        check_number(args.hold_ms, "--hold-ms (milliseconds)", 0)
        if args.duration is not None:
            check_number(args.duration, "--duration (seconds)", 0, lo_open=True)
    except InvalidInputError as e:
        return str(e)
    return None


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    bad = _not_utf8(argv)
    if bad:
        _say(f"error: {bad}")
        return 2
    fast = "--json" in argv
    streaming = None if fast else _import_streaming()
    args = build_parser(streaming).parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    warnings.showwarning = _showwarning
    text = " ".join(args.text).strip() if args.text else None
    if args.text and not text:
        _say("error: the text is empty; give an emotion description such as \"furious scowl\"")
        return 2
    driven = (getattr(args, "webcam", None) is not None or bool(getattr(args, "serve", None)) or bool(args.web)
              or bool(args.script))
    if not args.text and not args.stdin and (args.json or ((args.headless or not _has_display()) and not driven)):
        _say("error: give a text (emo3d-run \"furious scowl\") or --stdin")
        return 2
    bad = check_args(args)
    if bad:
        _say(f"error: {bad}")
        return 2

    from emo3d.errors import Emo3DError, InvalidInputError
    from runtime.engine import Engine, EngineOptions
    try:
        engine = Engine.create(EngineOptions(model=args.model, device=args.device, threads=args.threads,
                                             strict_device=args.strict_device,
                                             precision="int8" if args.int8 else "fp32",
                                             fast_load=args.json and not args.stdin))
    except Emo3DError as e:
        _say(f"error: {flag_message(e)}")
        return 2 if isinstance(e, InvalidInputError) else 1

    if args.json:
        return _run_json(engine, text, args)
    return _run_live(engine, text, args, streaming)


def scaled_scores(pred, intensity: float) -> dict:
    """The prediction's 52 scores scaled by ``--intensity`` and clamped to [0, 1], as the avatar loop
    shows them (``_neutral`` is not scaled)."""
    from emo3d.schema import MEDIAPIPE_NAMES
    vec = np.asarray(pred.vector, np.float64)
    out = np.clip(vec * intensity, 0.0, 1.0)
    out[0] = vec[0]
    return {n: float(v) for n, v in zip(MEDIAPIPE_NAMES, out)}


def _run_json(engine, text: Optional[str], args) -> int:
    from emo3d.errors import InvalidInputError
    prompts = ([text] if text else [])
    rc, done = 0, 0
    for p in (prompts if not args.stdin else itertools.chain(prompts, stdin_lines())):
        try:
            pred = engine.predict(p)
        except InvalidInputError as e:
            _say(f"error: {e}")
            rc = 2
            continue
        try:
            print(json.dumps(scaled_scores(pred, args.intensity) if args.intensity != 1.0 else pred.scores),
                  flush=True)
        except BrokenPipeError:  # the reader went away (| head): stop quietly
            sys.stderr.close()
            return rc
        done += 1
    if done == 0 and args.stdin and rc == 0:
        _say("error: no prompt could be read from stdin (every line was skipped); give UTF-8 lines")
        return 2
    return rc


def _print_top(pred, k: int) -> None:
    print(f"{pred.text!r}  ({pred.provider}, {pred.latency_ms:.1f} ms{', truncated' if pred.truncated else ''})")
    for name, v in pred.top(k):
        print(f"  {name:<20} {v:5.3f}  {'#' * int(round(v * 30))}")
    sys.stdout.flush()


def _run_live(engine, text: Optional[str], args, streaming) -> int:
    from emo3d.errors import Emo3DError, InvalidInputError
    from runtime.loop import AvatarLoop, LoopOptions
    try:
        opts = LoopOptions(fps=args.fps, transition_ms=args.transition_ms, intensity=args.intensity,
                           idle=not args.no_idle)
    except InvalidInputError as e:
        _say(f"error: {flag_message(e)}")
        return 2
    rig = None
    if args.rig:
        from emo3d.avatar.gltf import load_gltf
        try:
            rig = load_gltf(args.rig, framing=args.framing)
        except Emo3DError as e:
            _say(f"error: --rig: {e}")
            return 2
    loop = AvatarLoop(engine, opts)
    closeables: list = []
    headless = args.headless or not _has_display()
    if not args.headless and headless:
        _say("no display found: running headless (frames go to --out)")
    window = None
    if not headless:
        from runtime.preview import FaceView, PreviewWindow
        try:
            window = PreviewWindow(f"emo3d - {args.model}", args.size, face=FaceView(args.size, rig=rig))
        except Exception as e:
            _say(f"no preview window ({type(e).__name__}: {e}); running headless")
            headless = True
    try:
        if streaming is not None:
            try:
                closeables = list(streaming.attach(args, loop) or [])
            except Emo3DError as e:
                _say(f"error: {e}")
                return 2
        if args.web:
            from runtime import web
            try:
                closeables += web.attach(args, loop)
            except Emo3DError as e:
                _say(f"error: {e}")
                return 2
        keep_alive = bool(closeables) or bool(args.script)   # streams and scripts run until --duration
        from runtime import record
        try:
            closeables += record.attach(args, loop, rig=rig, say=_say)
        except Emo3DError as e:
            _say(f"error: {e}")
            return 2
        prompts: "queue.Queue" = queue.Queue()
        if text:
            prompts.put(text)
        if args.stdin or (not headless and not text) or (not headless and sys.stdin.isatty()):
            if not headless and sys.stdin.isatty():
                _say("type a new prompt and Enter (q or Ctrl-D quits)")
            threading.Thread(target=_reader, args=(prompts,), daemon=True).start()
        else:
            prompts.put(_EOF)
        loop.start()
        if headless:
            return _headless(loop, prompts, args, keep_alive, rig, closeables)
        return _windowed(loop, prompts, args, window)
    except KeyboardInterrupt:
        return 130
    finally:
        loop.close()
        for c in closeables:
            try:
                c.close()
            except Exception as e:
                _say(f"warning: closing {type(c).__name__} failed: {e}")
        if window is not None:
            window.close()


def _apply(loop, prompt: str, args) -> bool:
    """Show ``prompt``; False when the loop refused it (the message says why)."""
    from emo3d.errors import InvalidInputError
    try:
        pred = loop.set_text(prompt)
    except InvalidInputError as e:
        _say(f"error: {e}")
        return False
    _print_top(pred, args.top)
    return True


def _headless(loop, prompts: "queue.Queue", args, streaming: bool, rig=None, closeables=()) -> int:
    from runtime.preview import FaceView, Recorder
    t0 = time.monotonic()
    left = lambda: None if args.duration is None else args.duration - (time.monotonic() - t0)  # noqa: E731
    face = FaceView(args.size, rig=rig)
    rec = Recorder()
    loop.add_sink(rec)
    clip_s = (args.transition_ms + args.hold_ms) / 1e3
    n = applied = 0
    while True:
        rem = left()
        if rem is not None and rem <= 0:
            break
        try:
            p = prompts.get(timeout=0.1 if rem is None else min(0.1, rem))
        except queue.Empty:
            continue
        if p is _EOF:
            break
        done = rec.record(clip_s)
        if not _apply(loop, p, args):
            continue
        applied += 1
        rem = left()
        done.wait(clip_s + 5.0 if rem is None else max(0.0, min(clip_s + 5.0, rem)))  # --duration wins
        rec.close()
        n += _write_clip(rec.frames, face, p, f"{n:03d}", args)
    tracker = _video_tracker(closeables)
    if tracker is not None:  # headless --webcam FILE: record until the file ends, write it, summarise
        return _record_video(loop, tracker, rec, face, left, n, args)
    if streaming:  # keep streaming to the sinks for the rest of --duration (or until Ctrl-C)
        while (rem := left()) is None or rem > 0:
            time.sleep(0.1 if rem is None else min(0.1, rem))
    if args.stdin and applied == 0:
        _say("error: no prompt could be used from stdin (every line was skipped or refused)")
        return 2
    return 0


def _write_clip(frames, face, label: str, prefix: str, args) -> int:
    """Render the recorded frames at --record-fps into --out; 1 when a clip was written, else 0."""
    from runtime.preview import compose, slug, write_clip
    stride = max(1, int(round(args.fps / args.record_fps)))
    frames = frames[::stride]
    if not frames:
        return 0
    images = [compose(face.render(f.weights, f.head, f.extras), f.weights, text=label, top_k=args.top)
              for f in frames]
    fps = args.fps / stride
    frames_dir, gif = write_clip(images, args.out, f"{prefix}_{slug(label)}", fps=fps, gif_fps=fps)
    print(f"  wrote {len(images)} frames to {frames_dir}/ and {gif}  (face: {face.backend})", flush=True)
    return 1


def _video_tracker(closeables):
    """The webcam tracker reading a video file that ends (not --webcam-loop), if one was started."""
    from runtime.webcam import WebcamTracker
    for c in closeables:
        if isinstance(c, WebcamTracker) and isinstance(c.options.source, str) and not c.options.loop_video:
            return c
    return None


def _record_video(loop, tracker, rec, face, left, n: int, args) -> int:
    rec.record(math.inf)
    while not tracker.done.wait(0.1):
        rem = left()
        if rem is not None and rem <= 0:
            break
    rec.close()
    st = tracker.stats
    name = os.path.basename(str(tracker.options.source))
    wrote = _write_clip(rec.frames, face, f"webcam {os.path.splitext(name)[0]}", f"{n:03d}", args)
    share = st.faces / st.frames if st.frames else 0.0
    end = "end of file" if tracker.done.is_set() else "--duration"
    print(f"webcam {name}: {st.frames} frames read ({st.fps:.1f}/s) until {end}, a face in {st.faces} "
          f"({share:.0%}), calibrated: {'yes' if st.calibrated else 'no'}"
          + (f", error: {st.error}" if st.error else ""), flush=True)
    if st.error or st.frames == 0 or not wrote:
        _say(f"error: the video gave no usable frames{': ' + st.error if st.error else ''}")
        return 1
    return 0


def _windowed(loop, prompts: "queue.Queue", args, window) -> int:
    t0 = time.monotonic()
    eof = False
    while True:
        if args.duration is not None and time.monotonic() - t0 >= args.duration:
            return 0
        while not eof:
            try:
                p = prompts.get_nowait()
            except queue.Empty:
                break
            if p is _EOF:
                eof = True
                if sys.stdin.isatty():
                    return 0
                break
            _apply(loop, p, args)
        if loop.last_frame is not None:
            key = window.show(loop.last_frame, top_k=args.top)
            if key in (27, ord("q")) or window.closed:
                return 0
        time.sleep(1.0 / max(args.fps, 1.0))


if __name__ == "__main__":
    raise SystemExit(main())
