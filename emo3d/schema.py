"""The one blendshape schema of emo3d: every name and order lives here (a name from a user, in any vendor's
spelling, resolves in :mod:`emo3d.names`).

Orders
------
* ``MEDIAPIPE_NAMES`` (52): MediaPipe FaceLandmarker's score order, ``_neutral`` first and then
  51 ARKit names alphabetically. This is the order of the Emo3D release's ``blenshape_score_*``
  columns, and the order of every 52-vector inside emo3d.
* ``MODEL_NAMES`` (51): what the paper's models predict, ``MEDIAPIPE_NAMES`` without ``_neutral``.
* ``ARKIT_NAMES`` (52): Apple's ``ARFaceAnchor.BlendShapeLocation`` order, with ``tongueOut``
  (MediaPipe has no tongue).
* ``VMC_NAMES`` (52): the VMC protocol "perfect sync" clip names (ARKit names, first letter upper).
* ``LIVELINK_NAMES`` (61): Epic's Live Link Face order, the 52 ARKit shapes in Apple order,
  then head yaw/pitch/roll and left/right eye yaw/pitch/roll.
* ``EMOTIONS`` (8): the release's emotion column order.

This module imports nothing but numpy and the standard library, so the C++ build can run it
(``python emo3d/schema.py --header OUT``) to generate ``emo3d_schema.h``: C++ never carries a second,
hand-typed list.
"""
from __future__ import annotations

import functools
import sys
from typing import Dict, Iterable, Mapping, Sequence, Tuple

import numpy as np

# --- the 51 ARKit shapes MediaPipe predicts, in MediaPipe's (alphabetical) order --------------
_MP_SHAPES: Tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)

NEUTRAL = "_neutral"
MEDIAPIPE_NAMES: Tuple[str, ...] = (NEUTRAL,) + _MP_SHAPES
MODEL_NAMES: Tuple[str, ...] = _MP_SHAPES

# Apple's documented order (eyes, jaw, mouth, brows, cheeks, nose, tongue).
ARKIT_NAMES: Tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)


def _upper_first(name: str) -> str:
    return name[:1].upper() + name[1:]


VMC_NAMES: Tuple[str, ...] = tuple(_upper_first(n) for n in ARKIT_NAMES)
LIVELINK_POSE_NAMES: Tuple[str, ...] = (
    "HeadYaw", "HeadPitch", "HeadRoll",
    "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)
LIVELINK_NAMES: Tuple[str, ...] = VMC_NAMES + LIVELINK_POSE_NAMES

EMOTIONS: Tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
)

N_MEDIAPIPE = len(MEDIAPIPE_NAMES)   # 52
N_MODEL = len(MODEL_NAMES)           # 51
N_ARKIT = len(ARKIT_NAMES)           # 52
N_LIVELINK = len(LIVELINK_NAMES)     # 61
N_EMOTIONS = len(EMOTIONS)           # 8

MEDIAPIPE_INDEX: Dict[str, int] = {n: i for i, n in enumerate(MEDIAPIPE_NAMES)}
MODEL_INDEX: Dict[str, int] = {n: i for i, n in enumerate(MODEL_NAMES)}
ARKIT_INDEX: Dict[str, int] = {n: i for i, n in enumerate(ARKIT_NAMES)}
EMOTION_INDEX: Dict[str, int] = {n: i for i, n in enumerate(EMOTIONS)}


# --- mirror (the subject's Left <-> Right) --------------------------------------------------
def mirror_name(name: str) -> str:
    """``eyeBlinkLeft`` -> ``eyeBlinkRight``; names without a side map to themselves."""
    if name.endswith("Left"):
        return name[:-4] + "Right"
    if name.endswith("Right"):
        return name[:-5] + "Left"
    return name


def mirror_permutation(names: Sequence[str]) -> np.ndarray:
    """Index array ``p`` with ``mirrored = vec[..., p]`` for vectors laid out in ``names``."""
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[mirror_name(n)] for n in names], dtype=np.int64)


MIRROR_PAIRS: Tuple[Tuple[str, str], ...] = tuple(
    (n, mirror_name(n)) for n in MODEL_NAMES if n.endswith("Left")
)


def mirror(vec: np.ndarray, names: Sequence[str] = MEDIAPIPE_NAMES) -> np.ndarray:
    """Swap every Left/Right pair along the last axis of ``vec`` (an involution)."""
    vec = np.asarray(vec)
    if vec.shape[-1] != len(names):
        raise ValueError(f"mirror: last axis has {vec.shape[-1]} values, expected {len(names)}")
    return vec[..., mirror_permutation(names)]


# --- conversions ----------------------------------------------------------------------------
def _perm(src: Sequence[str], dst: Sequence[str]) -> np.ndarray:
    """For each name of ``dst``, its index in ``src`` (-1 where ``src`` lacks it); read-only."""
    return _perm_of(tuple(src), tuple(dst))


@functools.lru_cache(maxsize=64)
def _perm_of(src: Tuple[str, ...], dst: Tuple[str, ...]) -> np.ndarray:
    index = {n.lower(): i for i, n in enumerate(src)}
    out = np.array([index.get(n.lower(), -1) for n in dst], dtype=np.int64)
    out.setflags(write=False)
    return out


def _convert(vec: np.ndarray, src: Sequence[str], dst: Sequence[str], what: str) -> np.ndarray:
    vec = np.asarray(vec, dtype=np.float32)
    if vec.shape[-1] != len(src):
        raise ValueError(f"{what}: last axis has {vec.shape[-1]} values, expected {len(src)}")
    perm = _perm(src, dst)
    out = np.zeros(vec.shape[:-1] + (len(dst),), dtype=np.float32)
    have = perm >= 0
    out[..., have] = vec[..., perm[have]]
    return out


def model_to_mediapipe(vec51: np.ndarray) -> np.ndarray:
    """51 model outputs -> 52 MediaPipe scores (``_neutral`` = 0)."""
    return _convert(vec51, MODEL_NAMES, MEDIAPIPE_NAMES, "model_to_mediapipe")


def mediapipe_to_model(vec52: np.ndarray) -> np.ndarray:
    """52 MediaPipe scores -> 51 model outputs (drops ``_neutral``)."""
    return _convert(vec52, MEDIAPIPE_NAMES, MODEL_NAMES, "mediapipe_to_model")


def mediapipe_to_arkit(vec52: np.ndarray) -> np.ndarray:
    """52 MediaPipe scores -> 52 ARKit values in Apple order (``tongueOut`` = 0)."""
    return _convert(vec52, MEDIAPIPE_NAMES, ARKIT_NAMES, "mediapipe_to_arkit")


def arkit_to_mediapipe(vec52: np.ndarray) -> np.ndarray:
    """52 ARKit values -> 52 MediaPipe scores (``tongueOut`` dropped, ``_neutral`` = 0)."""
    return _convert(vec52, ARKIT_NAMES, MEDIAPIPE_NAMES, "arkit_to_mediapipe")


def mediapipe_to_livelink(vec52: np.ndarray, pose: Sequence[float] | None = None) -> np.ndarray:
    """52 MediaPipe scores (+ 9 pose values in ``LIVELINK_POSE_NAMES`` order) -> 61 Live Link values."""
    out = _convert(vec52, MEDIAPIPE_NAMES, LIVELINK_NAMES, "mediapipe_to_livelink")
    if pose is not None:
        pose = np.asarray(pose, dtype=np.float32)
        if pose.shape[-1] != len(LIVELINK_POSE_NAMES):
            raise ValueError(f"pose has {pose.shape[-1]} values, expected {len(LIVELINK_POSE_NAMES)} "
                             f"({', '.join(LIVELINK_POSE_NAMES)})")
        out[..., len(VMC_NAMES):] = pose
    return out


def livelink_to_mediapipe(vec61: np.ndarray) -> np.ndarray:
    """61 Live Link values -> 52 MediaPipe scores (pose and ``TongueOut`` dropped)."""
    return _convert(vec61, LIVELINK_NAMES, MEDIAPIPE_NAMES, "livelink_to_mediapipe")


def mediapipe_to_vmc(vec52: np.ndarray) -> Dict[str, float]:
    """52 MediaPipe scores -> {VMC perfect-sync name: value} for all 52 VMC names."""
    arkit = mediapipe_to_arkit(vec52)
    if arkit.ndim != 1:
        raise ValueError("mediapipe_to_vmc takes one 52-vector")
    return {n: float(v) for n, v in zip(VMC_NAMES, arkit)}


def vmc_to_mediapipe(values: Mapping[str, float]) -> np.ndarray:
    """{VMC name: value} -> 52 MediaPipe scores (exact VMC names; unknown names raise ``KeyError``, missing
    ones are 0). Names from users go through ``emo3d.weights.normalize`` instead."""
    index = {n: i for i, n in enumerate(VMC_NAMES)}
    arkit = np.zeros(N_ARKIT, dtype=np.float32)
    for name, value in values.items():
        if name not in index:
            raise KeyError(f"unknown VMC blendshape name {name!r} (accepted: the 52 VMC perfect-sync names)")
        arkit[index[name]] = float(value)
    return arkit_to_mediapipe(arkit)


# Names from users (any vendor spelling) resolve in emo3d.names (canonical_name, resolve), the one name map.


def to_mapping(vec: np.ndarray, names: Sequence[str] = MEDIAPIPE_NAMES) -> Dict[str, float]:
    """A vector laid out in ``names`` -> {name: float}."""
    vec = np.asarray(vec, dtype=np.float32).reshape(-1)
    if vec.shape[0] != len(names):
        raise ValueError(f"to_mapping: got {vec.shape[0]} values, expected {len(names)}")
    return {n: float(v) for n, v in zip(names, vec)}


def as_mediapipe(vec: np.ndarray) -> np.ndarray:
    """Accept a 51 (model) or 52 (MediaPipe) vector on the last axis; return 52 MediaPipe order."""
    vec = np.asarray(vec, dtype=np.float32)
    if vec.shape[-1] == N_MEDIAPIPE:
        return vec
    if vec.shape[-1] == N_MODEL:
        return model_to_mediapipe(vec)
    raise ValueError(f"expected {N_MODEL} (model order) or {N_MEDIAPIPE} (MediaPipe order) values, "
                     f"got {vec.shape[-1]}")


# --- C++ header -----------------------------------------------------------------------------
def cpp_header() -> str:
    def arr(cname: str, names: Iterable[str]) -> str:
        names = list(names)
        body = ",\n    ".join(f'"{n}"' for n in names)
        return (f"inline constexpr int k{cname}Count = {len(names)};\n"
                f"inline constexpr const char* k{cname}Names[{len(names)}] = {{\n    {body}\n}};\n")
    mp = mirror_permutation(MODEL_NAMES)
    lines = [
        "// Generated by emo3d/schema.py at build time. Do not edit.",
        "#pragma once",
        "namespace emo3d {",
        arr("MediaPipe", MEDIAPIPE_NAMES),
        arr("Model", MODEL_NAMES),
        arr("ARKit", ARKIT_NAMES),
        arr("LiveLink", LIVELINK_NAMES),
        arr("Emotion", EMOTIONS),
        f"inline constexpr int kModelMirror[{len(mp)}] = {{{', '.join(str(int(i)) for i in mp)}}};",
        "}  // namespace emo3d",
        "",
    ]
    return "\n".join(lines)


def _main(argv: Sequence[str]) -> int:
    if len(argv) == 2 and argv[0] == "--header":
        text = cpp_header()
        import os
        os.makedirs(os.path.dirname(os.path.abspath(argv[1])), exist_ok=True)
        tmp = argv[1] + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, argv[1])
        return 0
    print("usage: python emo3d/schema.py --header OUT.h", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
