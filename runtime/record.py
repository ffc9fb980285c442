"""Animation out of the live loop: ``emo3d-run --script FILE`` and ``--record FILE``.

``--script FILE`` plays timed prompts: one ``SECONDS TEXT`` per line (``0.0 calm``, ``1.5 furious
scowl``), times from the start and non-decreasing; blank lines and ``#`` comments are skipped. The
run lasts until the last prompt's transition and hold are over (unless ``--duration`` says otherwise).

``--record FILE`` samples the loop's frames at a fixed rate (``--record-fps``, default 30) from the
first frame to the end of the run and writes, by the file's suffix:

* ``.csv``: a Live Link Face take (the iPhone app's CSV, importable into Unreal): header
  ``Timecode,BlendShapeCount,`` + the 61 Live Link names (``schema.LIVELINK_NAMES``: 52 ARKit shapes in
  Apple order, then head yaw/pitch/roll and left/right eye yaw/pitch/roll in RADIANS); one row per
  frame, ``Timecode`` = ``HH:MM:SS:FF.mmm`` (time of day at the start + frame / fps, FF the frame within
  the second, .mmm its fraction), ``BlendShapeCount`` = 61.
* ``.jsonl``: one JSON object per frame: ``{"frame", "t" (seconds), "timecode", "weights" {ARKit name:
  value, 52 names}, "head" [yaw, pitch, roll], "eyes" [6], "text"}`` (radians).
* ``.glb``: the rig (``--rig FILE.glb`` as given, else the default head) with one glTF animation
  ``emo3d`` that keys every mesh's morph-target ``weights`` at each frame (LINEAR), importable into
  Blender; target names resolve through :mod:`emo3d.names` (an unsided name of a sided pair takes
  the mean of both sides; unknown targets stay 0).

The file is written when the run ends, complete or not at all.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from emo3d import names, schema
from emo3d.errors import InvalidInputError
from emo3d.io import atomic_path
from emo3d.options import check_number

__all__ = ["add_arguments", "attach", "parse_script", "ScriptPlayer", "FrameRecorder", "timecode",
           "livelink_csv", "jsonl_lines", "add_morph_animation", "RECORD_SUFFIXES"]

RECORD_SUFFIXES = (".csv", ".jsonl", ".glb")
_LL_TONGUE = schema.LIVELINK_NAMES.index("TongueOut")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("animation out")
    g.add_argument("--script", metavar="FILE", default=None,
                   help="play timed prompts: one 'SECONDS TEXT' per line (e.g. '0.0 calm', '1.5 furious scowl')")
    g.add_argument("--record", metavar="FILE", default=None,
                   help="record the run at --record-fps: .csv (Live Link Face take), .jsonl (JSON lines) or "
                        ".glb (the rig with a morph-weight animation); head and eye angles in radians")


# --- script -----------------------------------------------------------------------------------
def parse_script(text: str, what: str = "--script") -> List[Tuple[float, str]]:
    """``SECONDS TEXT`` lines -> [(seconds, text)], checked (InvalidInputError names the line)."""
    out: List[Tuple[float, str]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, _, prompt = line.partition(" ")
        try:
            t = float(head)
        except ValueError:
            raise InvalidInputError(f"{what} line {n}: {head!r} is not a time in seconds "
                                    f"(each line is 'SECONDS TEXT', e.g. '1.5 furious scowl')") from None
        check_number(t, f"{what} line {n}: the time (seconds)", 0)
        if out and t < out[-1][0]:
            raise InvalidInputError(f"{what} line {n}: time {t} is before the previous line's {out[-1][0]} "
                                    f"(times must not decrease)")
        if not prompt.strip():
            raise InvalidInputError(f"{what} line {n}: no text after the time {head}")
        out.append((t, prompt.strip()))
    if not out:
        raise InvalidInputError(f"{what}: no prompts (each line is 'SECONDS TEXT')")
    return out


class ScriptPlayer:
    """Calls ``loop.set_text`` at each scripted time (seconds after :meth:`start`)."""

    def __init__(self, loop, cues: Sequence[Tuple[float, str]], *, on_error=None):
        self.loop, self.cues = loop, list(cues)
        self.played: List[Tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._on_error = on_error

    @property
    def end(self) -> float:
        return self.cues[-1][0] if self.cues else 0.0

    def start(self) -> "ScriptPlayer":
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True, name="emo3d-script")
        self._thread.start()
        return self

    def _run(self) -> None:
        for t, text in self.cues:
            if self._stop.wait(max(0.0, self._t0 + t - time.monotonic())):
                return
            try:
                self.loop.set_text(text)
                self.played.append((time.monotonic() - self._t0, text))
            except InvalidInputError as e:
                if self._on_error:
                    self._on_error(f"--script: {e}")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)


# --- recording --------------------------------------------------------------------------------
@dataclass
class _Sample:
    t: float
    weights: np.ndarray
    head: tuple
    eyes: tuple
    text: Optional[str]
    tongue: float = 0.0     # the extra tongueOut channel (Frame.extras)


def timecode(start: _dt.datetime, seconds: float, fps: float) -> str:
    """``HH:MM:SS:FF.mmm`` of ``start + seconds`` at ``fps`` (Live Link Face's take timecode)."""
    sod = start.hour * 3600 + start.minute * 60 + start.second + start.microsecond / 1e6 + float(seconds)
    whole = int(np.floor(sod + 1e-9))
    within = max((sod - whole) * fps, 0.0)
    ff = int(np.floor(within + 1e-6))
    sub = min(max(int(round((within - ff) * 1000)), 0), 999)
    h, m, s = (whole // 3600) % 24, (whole // 60) % 60, whole % 60
    return f"{h:02d}:{m:02d}:{s:02d}:{ff:02d}.{sub:03d}"


def resample(samples: Sequence[_Sample], fps: float) -> List[_Sample]:
    """The frames at exactly ``fps`` from the first sample on: each tick takes the latest frame at or
    before it (the loop runs faster than any sensible record rate)."""
    if not samples:
        return []
    t0 = samples[0].t
    n = int(np.floor((samples[-1].t - t0) * fps + 1e-9)) + 1
    ts = np.array([s.t - t0 for s in samples])
    out = []
    for k in range(n):
        i = int(np.searchsorted(ts, k / fps + 1e-9, side="right")) - 1
        s = samples[max(i, 0)]
        out.append(_Sample(k / fps, s.weights, s.head, s.eyes, s.text, s.tongue))
    return out


def livelink_csv(frames: Sequence[_Sample], fps: float, start: _dt.datetime) -> str:
    rows = ["Timecode,BlendShapeCount," + ",".join(schema.LIVELINK_NAMES)]
    for f in frames:
        vals = schema.mediapipe_to_livelink(f.weights, tuple(f.head) + tuple(f.eyes))
        vals[_LL_TONGUE] = f.tongue
        rows.append(f"{timecode(start, f.t, fps)},{schema.N_LIVELINK}," + ",".join(f"{v:.6g}" for v in vals))
    return "\n".join(rows) + "\n"


def jsonl_lines(frames: Sequence[_Sample], fps: float, start: _dt.datetime) -> str:
    lines = []
    for k, f in enumerate(frames):
        arkit = schema.mediapipe_to_arkit(f.weights)
        arkit[schema.ARKIT_INDEX["tongueOut"]] = f.tongue
        lines.append(json.dumps({"frame": k, "t": round(f.t, 6), "timecode": timecode(start, f.t, fps),
                                 "weights": {n: round(float(v), 6) for n, v in zip(schema.ARKIT_NAMES, arkit)},
                                 "head": [round(float(x), 6) for x in f.head],
                                 "eyes": [round(float(x), 6) for x in f.eyes], "text": f.text}))
    return "\n".join(lines) + "\n"


def _glb_parts(data: bytes) -> Tuple[dict, bytearray]:
    if len(data) < 20 or data[:4] != b"glTF":
        raise InvalidInputError("--record .glb needs a .glb rig (binary glTF); convert a .gltf with "
                                "`npx @gltf-transform/cli copy in.gltf out.glb`")
    jl = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + jl].decode("utf-8"))
    rest = data[20 + jl:]
    binc = bytearray()
    if len(rest) >= 8 and struct.unpack_from("<I", rest, 4)[0] == 0x004E4942:
        binc = bytearray(rest[8:8 + struct.unpack_from("<I", rest, 0)[0]])
    return doc, binc


def add_morph_animation(glb: bytes, times: np.ndarray, weights: np.ndarray, name: str = "emo3d",
                        tongue: Optional[np.ndarray] = None) -> bytes:
    """``glb`` with one animation keying every morph-targeted mesh node's ``weights`` at ``times``
    (seconds) from ``weights`` ([F,52] MediaPipe order) and ``tongue`` ([F], the tongueOut channel),
    target names resolved by :mod:`emo3d.names`."""
    doc, binc = _glb_parts(glb)
    times = np.asarray(times, np.float32)
    W = np.asarray(weights, np.float32)
    bufs = doc.setdefault("buffers", [])
    if not bufs or "uri" in bufs[0]:
        bufs.insert(0, {"byteLength": 0})
        for v in doc.get("bufferViews", []):
            v["buffer"] += 1
            ext = (v.get("extensions") or {}).get("EXT_meshopt_compression")
            if ext:
                ext["buffer"] += 1
    views, accs = doc.setdefault("bufferViews", []), doc.setdefault("accessors", [])

    def add(arr: np.ndarray, extra: Optional[dict] = None) -> int:
        while len(binc) % 4:
            binc.append(0)
        views.append({"buffer": 0, "byteOffset": len(binc), "byteLength": int(arr.nbytes)})
        binc.extend(np.ascontiguousarray(arr, "<f4").tobytes())
        accs.append({"bufferView": len(views) - 1, "componentType": 5126, "count": int(arr.size),
                     "type": "SCALAR", **(extra or {})})
        return len(accs) - 1

    t_acc = add(times, {"min": [float(times.min())], "max": [float(times.max())]})
    channels, samplers = [], []
    for ni, node in enumerate(doc.get("nodes", [])):
        if "mesh" not in node:
            continue
        mesh = doc["meshes"][node["mesh"]]
        prims = mesh.get("primitives", [])
        n_t = len(prims[0].get("targets", [])) if prims else 0
        if not n_t:
            continue
        tnames = (mesh.get("extras") or {}).get("targetNames") or \
            (prims[0].get("extras") or {}).get("targetNames") or [""] * n_t
        cols = np.zeros((len(times), n_t), np.float32)
        for k, tn in enumerate(tnames[:n_t]):
            m = names.resolve(str(tn))
            idx = [schema.MEDIAPIPE_INDEX[t] for t in (m.targets if m else ()) if t in schema.MEDIAPIPE_INDEX]
            if idx:
                cols[:, k] = W[:, idx].mean(axis=1)
            elif m is not None and m.targets == ("tongueOut",) and tongue is not None:
                cols[:, k] = np.asarray(tongue, np.float32)
        samplers.append({"input": t_acc, "output": add(cols.reshape(-1)), "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": ni, "path": "weights"}})
    if not channels:
        raise InvalidInputError("--record .glb: the rig has no mesh with morph targets to animate")
    doc.setdefault("animations", []).append({"name": name, "channels": channels, "samplers": samplers})
    while len(binc) % 4:
        binc.append(0)
    doc["buffers"][0]["byteLength"] = len(binc)
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    total = 12 + 8 + len(js) + 8 + len(binc)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<II", len(js), 0x4E4F534A) + js
            + struct.pack("<II", len(binc), 0x004E4942) + bytes(binc))


class FrameRecorder:
    """A loop sink that keeps every frame and writes ``path`` at the record rate on :meth:`close`."""

    def __init__(self, path, fps: float = 30.0, *, rig_path=None, rig=None):
        self.path = Path(path)
        if self.path.suffix.lower() not in RECORD_SUFFIXES:
            raise InvalidInputError(f"--record {str(path)!r}: the file must end in {', '.join(RECORD_SUFFIXES)}")
        self.fps = check_number(fps, "--record-fps", 1, 240)
        self.rig_path, self.rig = rig_path, rig
        self.samples: List[_Sample] = []
        self.start = _dt.datetime.now()
        self._lock = threading.Lock()
        self.written: Optional[Path] = None

    def send(self, frame) -> None:
        s = _Sample(float(frame.t), np.asarray(frame.weights, np.float32).copy(), tuple(frame.head),
                    tuple(frame.eyes), getattr(frame, "text", None),
                    float((getattr(frame, "extras", None) or {}).get("tongueOut", 0.0)))
        with self._lock:
            self.samples.append(s)

    def frames(self) -> List[_Sample]:
        with self._lock:
            return resample(list(self.samples), self.fps)

    def write(self) -> Optional[Path]:
        frames = self.frames()
        if not frames:
            return None
        suffix = self.path.suffix.lower()
        if suffix == ".glb":
            data = add_morph_animation(self._rig_glb(), np.array([f.t for f in frames]),
                                       np.stack([f.weights for f in frames]),
                                       tongue=np.array([f.tongue for f in frames], np.float32))
            with atomic_path(self.path) as tmp:
                tmp.write_bytes(data)
        else:
            text = (livelink_csv if suffix == ".csv" else jsonl_lines)(frames, self.fps, self.start)
            with atomic_path(self.path) as tmp:
                tmp.write_text(text, encoding="utf-8")
        self.written = self.path
        return self.path

    def _rig_glb(self) -> bytes:
        if self.rig_path is not None and Path(self.rig_path).suffix.lower() in (".glb", ".vrm"):
            return Path(self.rig_path).read_bytes()
        from emo3d.avatar.gltf_export import glb_bytes
        rig = self.rig
        if rig is None:
            from emo3d.avatar.default import default_rig
            rig = default_rig()
        return glb_bytes(rig)

    def close(self) -> None:
        self.write()


class _Attached:
    def __init__(self, loop, rec: FrameRecorder, say):
        self.loop, self.rec, self.say = loop, rec, say

    def close(self) -> None:
        try:
            self.loop.remove_sink(self.rec)
        except Exception:
            pass
        p = self.rec.write()
        if p is not None:
            self.say(f"recorded {len(self.rec.frames())} frames at {self.rec.fps:g} fps to {p}")


def attach(args: argparse.Namespace, loop, *, rig=None, say=print) -> list:
    """Start ``--script`` / ``--record`` on ``loop``; returns the started objects (each has ``close()``).
    Sets ``args.duration`` to the script's end plus one transition and hold when none was given."""
    started: list = []
    if getattr(args, "record", None):
        rec = FrameRecorder(args.record, float(getattr(args, "record_fps", 30.0)),
                            rig_path=getattr(args, "rig", None), rig=rig)
        loop.add_sink(rec)
        started.append(_Attached(loop, rec, say))
    if getattr(args, "script", None):
        p = Path(args.script)
        if not p.is_file():
            raise InvalidInputError(f"--script: file {str(p)!r} does not exist")
        player = ScriptPlayer(loop, parse_script(p.read_text(encoding="utf-8"), f"--script {p}"), on_error=say)
        if getattr(args, "duration", None) is None:
            args.duration = player.end + (float(getattr(args, "transition_ms", 400.0))
                                          + float(getattr(args, "hold_ms", 300.0))) / 1e3
        started.append(player.start())
    return started
