"""VRChat OSC avatar parameters: ``emo3d-run --vrchat [HOST:PORT]`` (default 127.0.0.1:9000).

Each frame goes out as ONE OSC bundle of float messages ``/avatar/parameters/v2/<Name>`` in the
naming of VRCFaceTracking's unified expressions ("v2" parameters), which face-tracking avatars
(VRCFT templates, Jerry's / Adjerry's face tracking prefabs) read. Ranges: 0..1, except the signed
ones (-1..1): ``EyeLeftX/Y``, ``EyeRightX/Y``, ``EyeX/Y``, ``JawX``, ``MouthX``, ``SmileFrownLeft/Right``,
``BrowExpressionLeft/Right``. Directions: X positive = toward the subject's RIGHT, Y positive = up.
``EyeLid*``: 0 closed, 0.75 open and relaxed, 1 wide (VRCFT's convention). Gaze comes from the
eyeLook* shapes (emo3d has no separate gaze angle); head rotation is not an avatar parameter
(VRChat moves the head from the headset).

:data:`PARAMETERS` is the table ``name -> ((shape, coefficient), ...), offset``: value =
``offset + sum(coefficient * score[shape])``, clamped to the parameter's range.
"""
from __future__ import annotations

import struct
from typing import Dict, Sequence, Tuple

import numpy as np

from emo3d import schema

from . import osc
from .vmc import UdpSink

__all__ = ["DEFAULT_PORT", "PREFIX", "PARAMETERS", "parameters", "build_bundle", "VRChatSink"]

DEFAULT_PORT = 9000
PREFIX = "/avatar/parameters/v2/"

# name: ((ARKit shape, coefficient), ...), offset
PARAMETERS: Dict[str, Tuple[Tuple[Tuple[str, float], ...], float]] = {
    "EyeLidLeft": ((("eyeBlinkLeft", -0.75), ("eyeWideLeft", 0.25)), 0.75),
    "EyeLidRight": ((("eyeBlinkRight", -0.75), ("eyeWideRight", 0.25)), 0.75),
    "EyeSquintLeft": ((("eyeSquintLeft", 1),), 0),
    "EyeSquintRight": ((("eyeSquintRight", 1),), 0),
    # the subject's left eye looking toward the subject's right = looking in
    "EyeLeftX": ((("eyeLookInLeft", 1), ("eyeLookOutLeft", -1)), 0),
    "EyeLeftY": ((("eyeLookUpLeft", 1), ("eyeLookDownLeft", -1)), 0),
    "EyeRightX": ((("eyeLookOutRight", 1), ("eyeLookInRight", -1)), 0),
    "EyeRightY": ((("eyeLookUpRight", 1), ("eyeLookDownRight", -1)), 0),
    "EyeX": ((("eyeLookInLeft", 0.5), ("eyeLookOutRight", 0.5), ("eyeLookOutLeft", -0.5),
              ("eyeLookInRight", -0.5)), 0),
    "EyeY": ((("eyeLookUpLeft", 0.5), ("eyeLookUpRight", 0.5), ("eyeLookDownLeft", -0.5),
              ("eyeLookDownRight", -0.5)), 0),
    "BrowDownLeft": ((("browDownLeft", 1),), 0),
    "BrowDownRight": ((("browDownRight", 1),), 0),
    "BrowInnerUp": ((("browInnerUp", 1),), 0),
    "BrowUpLeft": ((("browOuterUpLeft", 1),), 0),
    "BrowUpRight": ((("browOuterUpRight", 1),), 0),
    "BrowExpressionLeft": ((("browOuterUpLeft", 1), ("browInnerUp", 1), ("browDownLeft", -1)), 0),
    "BrowExpressionRight": ((("browOuterUpRight", 1), ("browInnerUp", 1), ("browDownRight", -1)), 0),
    "CheekPuffLeft": ((("cheekPuff", 1),), 0),
    "CheekPuffRight": ((("cheekPuff", 1),), 0),
    "CheekSquintLeft": ((("cheekSquintLeft", 1),), 0),
    "CheekSquintRight": ((("cheekSquintRight", 1),), 0),
    "NoseSneerLeft": ((("noseSneerLeft", 1),), 0),
    "NoseSneerRight": ((("noseSneerRight", 1),), 0),
    "JawOpen": ((("jawOpen", 1),), 0),
    "JawForward": ((("jawForward", 1),), 0),
    "JawX": ((("jawRight", 1), ("jawLeft", -1)), 0),
    "MouthClosed": ((("mouthClose", 1),), 0),
    "MouthX": ((("mouthRight", 1), ("mouthLeft", -1)), 0),
    "MouthUpperUpLeft": ((("mouthUpperUpLeft", 1),), 0),
    "MouthUpperUpRight": ((("mouthUpperUpRight", 1),), 0),
    "MouthLowerDownLeft": ((("mouthLowerDownLeft", 1),), 0),
    "MouthLowerDownRight": ((("mouthLowerDownRight", 1),), 0),
    "MouthStretchLeft": ((("mouthStretchLeft", 1),), 0),
    "MouthStretchRight": ((("mouthStretchRight", 1),), 0),
    "MouthDimpleLeft": ((("mouthDimpleLeft", 1),), 0),
    "MouthDimpleRight": ((("mouthDimpleRight", 1),), 0),
    "MouthPressLeft": ((("mouthPressLeft", 1),), 0),
    "MouthPressRight": ((("mouthPressRight", 1),), 0),
    "MouthFrownLeft": ((("mouthFrownLeft", 1),), 0),
    "MouthFrownRight": ((("mouthFrownRight", 1),), 0),
    "MouthRaiserUpper": ((("mouthShrugUpper", 1),), 0),
    "MouthRaiserLower": ((("mouthShrugLower", 1),), 0),
    "SmileFrownLeft": ((("mouthSmileLeft", 1), ("mouthFrownLeft", -1)), 0),
    "SmileFrownRight": ((("mouthSmileRight", 1), ("mouthFrownRight", -1)), 0),
    "LipSuckUpper": ((("mouthRollUpper", 1),), 0),
    "LipSuckLower": ((("mouthRollLower", 1),), 0),
    "LipFunnel": ((("mouthFunnel", 1),), 0),
    "LipPucker": ((("mouthPucker", 1),), 0),
    "TongueOut": ((), 0),      # from the frame's extras (the text model's tongueOut channel), see build_bundle
}
_SIGNED = {"EyeLeftX", "EyeLeftY", "EyeRightX", "EyeRightY", "EyeX", "EyeY", "JawX", "MouthX",
           "SmileFrownLeft", "SmileFrownRight", "BrowExpressionLeft", "BrowExpressionRight"}


def _matrix() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    names = list(PARAMETERS)
    M = np.zeros((len(names), schema.N_MEDIAPIPE), np.float32)
    offset = np.zeros(len(names), np.float32)
    lo = np.array([-1.0 if n in _SIGNED else 0.0 for n in names], np.float32)
    for i, n in enumerate(names):
        terms, offset[i] = PARAMETERS[n]
        for shape, c in terms:
            M[i, schema.MEDIAPIPE_INDEX[shape]] += c
    return M, offset, lo


_M, _OFFSET, _LO = _matrix()
_TONGUE = list(PARAMETERS).index("TongueOut")
_PREFIXES = tuple(osc.encode_string(PREFIX + n) + osc.encode_string(",f") for n in PARAMETERS)


def parameters(weights: Sequence[float]) -> Dict[str, float]:
    """52 MediaPipe-order weights -> {v2 parameter name: value} (see :data:`PARAMETERS`)."""
    w = np.asarray(weights, np.float32).reshape(-1)
    if w.shape[0] != schema.N_MEDIAPIPE:
        raise ValueError(f"VRChat parameters need {schema.N_MEDIAPIPE} MediaPipe-order weights, got {w.shape[0]}")
    v = np.clip(_OFFSET + _M @ np.clip(w, 0, 1), _LO, 1.0)
    return {n: float(x) for n, x in zip(PARAMETERS, v)}


def build_bundle(weights: Sequence[float], extras=None) -> bytes:
    """One OSC bundle (time tag 'immediately') with a float message per v2 parameter; ``extras``
    (``{"tongueOut": v}``) sets ``TongueOut``."""
    w = np.asarray(weights, np.float32).reshape(-1)
    if w.shape[0] != schema.N_MEDIAPIPE or not np.isfinite(w).all():
        raise ValueError(f"VRChat frame needs {schema.N_MEDIAPIPE} finite MediaPipe-order weights")
    v = np.clip(_OFFSET + _M @ np.clip(w, 0, 1), _LO, 1.0)
    if extras and "tongueOut" in extras:
        v[_TONGUE] = min(max(float(extras["tongueOut"]), 0.0), 1.0)
    vals = v.astype(">f4").tobytes()
    parts = [osc.BUNDLE_TAG, osc.encode_timetag(osc.IMMEDIATELY)]
    for i, prefix in enumerate(_PREFIXES):
        parts.append(struct.pack(">i", len(prefix) + 4))
        parts.append(prefix)
        parts.append(vals[4 * i:4 * i + 4])
    return b"".join(parts)


class VRChatSink(UdpSink):
    """Sends each loop frame as one VRChat OSC bundle to ``host:port`` (default 127.0.0.1:9000)."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
        super().__init__(host, port, lambda frame: build_bundle(frame.weights, getattr(frame, "extras", None)))

