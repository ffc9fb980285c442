"""VRM 0.x (``extensions.VRM``) and 1.0 (``extensions.VRMC_vrm``): humanoid head, expressions, lookAt,
and the retarget that drives a VRM's expression presets from emo3d's ARKit scores.

Expressions are read from 0.x ``blendShapeMaster.blendShapeGroups`` (``presetName``/``name``, bind
weights 0..100) and 1.0 ``expressions.preset`` (``morphTargetBinds``, weights 0..1); both become
VRM 1.0 preset names (:func:`emo3d.names.vrm_preset`) with their summed morph deltas.

Retarget (used when a rig has fewer than ``MIN_ARKIT_SHAPES`` ARKit shapes; ARKit shapes present in
the rig always win): each ARKit shape the rig lacks becomes a weighted sum of preset deltas,
``delta[arkit] = sum(w * delta[preset] for preset, w in RETARGET[arkit])``, except that a sided
ARKit shape made from an unsided preset takes that preset's deltas on its own side of the face only
(a smooth split at the middle of what the preset moves; +x is the subject's left), so
``mouthSmileLeft`` alone lifts the left corner and both smiles together are exactly ``happy``.
Deformation is linear, so for symmetric scores driving the ARKit shapes equals driving the presets
with ``preset_weight = sum(w * score[arkit])`` (:func:`preset_weights`, for VRM runtimes) - e.g.
both smiles at 1 give ``happy`` = 1, ``jawOpen`` gives ``aa``, both blinks give ``blink`` (or
``blinkLeft``/``blinkRight`` where the rig has them), the eye-look shapes give ``lookUp/Down/Left/Right``. Emotions reach the presets through the
shapes they produce (happiness -> smiles -> happy; anger -> browDown -> angry; sadness -> frown and
inner brow -> sad; surprise -> eyeWide/browOuterUp -> surprised).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple

import numpy as np

from emo3d import names, schema

__all__ = ["RETARGET", "MIN_ARKIT_SHAPES", "LOOK_PRESETS", "faces_minus_z", "head_node", "eye_nodes", "look_at",
           "expressions", "retarget", "preset_weights"]

MIN_ARKIT_SHAPES = 40

#: ARKit shape -> ((VRM 1.0 preset, weight), ...). Sided pairs share a preset half each.
RETARGET: Dict[str, Tuple[Tuple[str, float], ...]] = {
    "jawOpen": (("aa", 1.0),),
    "mouthFunnel": (("oh", 1.0),),
    "mouthPucker": (("ou", 1.0),),
    "mouthStretchLeft": (("ih", 0.5),), "mouthStretchRight": (("ih", 0.5),),
    "mouthUpperUpLeft": (("ee", 0.5),), "mouthUpperUpRight": (("ee", 0.5),),
    "mouthSmileLeft": (("happy", 0.5),), "mouthSmileRight": (("happy", 0.5),),
    "mouthFrownLeft": (("sad", 0.5),), "mouthFrownRight": (("sad", 0.5),),
    "browDownLeft": (("angry", 0.5),), "browDownRight": (("angry", 0.5),),
    "eyeWideLeft": (("surprised", 0.5),), "eyeWideRight": (("surprised", 0.5),),
    "eyeSquintLeft": (("relaxed", 0.5),), "eyeSquintRight": (("relaxed", 0.5),),
    "eyeBlinkLeft": (("blinkLeft", 1.0),), "eyeBlinkRight": (("blinkRight", 1.0),),
    "eyeLookUpLeft": (("lookUp", 0.5),), "eyeLookUpRight": (("lookUp", 0.5),),
    "eyeLookDownLeft": (("lookDown", 0.5),), "eyeLookDownRight": (("lookDown", 0.5),),
    # the subject's left eye looking out and the right eye looking in both look to the subject's left
    "eyeLookOutLeft": (("lookLeft", 0.5),), "eyeLookInRight": (("lookLeft", 0.5),),
    "eyeLookInLeft": (("lookRight", 0.5),), "eyeLookOutRight": (("lookRight", 0.5),),
}
_BLINK_FALLBACK = {"blinkLeft": ("blink", 0.5), "blinkRight": ("blink", 0.5)}


def _ext(doc: dict) -> Tuple[Optional[dict], Optional[dict]]:
    ex = doc.get("extensions") or {}
    return ex.get("VRM"), ex.get("VRMC_vrm")


def faces_minus_z(doc: dict) -> bool:
    """True for a VRM 0.x document: UniVRM 0.x exports the avatar looking down -z (VRM 1.0 and glTF: +z)."""
    v0, v1 = _ext(doc)
    return bool(v0) and not v1


def head_node(doc: dict) -> Optional[int]:
    """The humanoid head node of a VRM 0.x/1.0 document, or None."""
    v0, v1 = _ext(doc)
    if v1:
        n = (((v1.get("humanoid") or {}).get("humanBones") or {}).get("head") or {}).get("node")
        return int(n) if isinstance(n, int) else None
    if v0:
        for b in (v0.get("humanoid") or {}).get("humanBones") or []:
            if b.get("bone") == "head" and isinstance(b.get("node"), int):
                return int(b["node"])
    return None


def eye_nodes(doc: dict) -> Optional[Tuple[int, int]]:
    """The humanoid (leftEye, rightEye) nodes of a VRM 0.x/1.0 document, or None unless it has both."""
    v0, v1 = _ext(doc)
    found: Dict[str, int] = {}
    if v1:
        bones = (v1.get("humanoid") or {}).get("humanBones") or {}
        for b in ("leftEye", "rightEye"):
            n = (bones.get(b) or {}).get("node")
            if isinstance(n, int):
                found[b] = n
    elif v0:
        for b in (v0.get("humanoid") or {}).get("humanBones") or []:
            if b.get("bone") in ("leftEye", "rightEye") and isinstance(b.get("node"), int):
                found[b["bone"]] = int(b["node"])
    return (found["leftEye"], found["rightEye"]) if len(found) == 2 else None


#: The expression presets a VRM's lookAt of type "expression" turns the eyes with.
LOOK_PRESETS = ("lookUp", "lookDown", "lookLeft", "lookRight")


def look_at(doc: dict) -> Optional[dict]:
    """{'type': 'bone'|'expression', 'offset': [3]} of a VRM, or None."""
    v0, v1 = _ext(doc)
    if v1 and v1.get("lookAt"):
        la = v1["lookAt"]
        return {"type": la.get("type", "bone"), "offset": list(la.get("offsetFromHeadBone", (0, 0, 0)))}
    if v0:
        fp = v0.get("firstPerson") or {}
        kind = {"Bone": "bone", "BlendShape": "expression"}.get(fp.get("lookAtTypeName"), "bone")
        off = fp.get("firstPersonBoneOffset") or {}
        return {"type": kind, "offset": [off.get("x", 0.0), off.get("y", 0.0), off.get("z", 0.0)]}
    return None


def expressions(doc: dict, raw: Dict[Tuple[int, int], List[Tuple[int, np.ndarray]]]
                ) -> Tuple[Dict[str, List[Tuple[int, np.ndarray]]], Set[Tuple[int, int]]]:
    """({VRM 1.0 preset: [(vertex start, delta [n,3])]}, {(mesh, target) bound by an expression}).
    ``raw`` maps (mesh index, target index) to that target's placed deltas."""
    v0, v1 = _ext(doc)
    binds: Dict[str, List[Tuple[int, int, float]]] = {}
    if v1:
        nodes = doc.get("nodes", [])
        for name, ex in ((v1.get("expressions") or {}).get("preset") or {}).items():
            p = names.vrm_preset(name)
            for b in (ex or {}).get("morphTargetBinds") or []:
                ni = b.get("node")
                if p and isinstance(ni, int) and 0 <= ni < len(nodes) and "mesh" in nodes[ni]:
                    binds.setdefault(p, []).append((nodes[ni]["mesh"], int(b.get("index", -1)),
                                                    float(b.get("weight", 1.0))))
    elif v0:
        for g in (v0.get("blendShapeMaster") or {}).get("blendShapeGroups") or []:
            p = names.vrm_preset(g.get("presetName", "")) or names.vrm_preset(g.get("name", ""))
            for b in g.get("binds") or []:
                if p:
                    binds.setdefault(p, []).append((int(b.get("mesh", -1)), int(b.get("index", -1)),
                                                    float(b.get("weight", 100.0)) / 100.0))
    out: Dict[str, List[Tuple[int, np.ndarray]]] = {}
    bound: Set[Tuple[int, int]] = set()
    for p, bl in binds.items():
        for mi, ti, w in bl:
            for start, d in raw.get((mi, ti), ()):
                out.setdefault(p, []).append((start, d * w))
                bound.add((mi, ti))
    return {p: v for p, v in out.items() if p != "neutral" and v}, bound


def _recipe(arkit: str, have: Set[str]) -> Tuple[Tuple[str, float], ...]:
    out = []
    for preset, w in RETARGET.get(arkit, ()):
        if preset not in have and preset in _BLINK_FALLBACK:
            preset, w = _BLINK_FALLBACK[preset]
        if preset in have:
            out.append((preset, w))
    return tuple(out)


def _side(vertices: np.ndarray, d: np.ndarray) -> np.ndarray:
    """[V,1] weight of the subject's LEFT side (+x) of what ``d`` moves, a smooth 5% ramp at its middle."""
    moved = np.linalg.norm(d, axis=1) > 1e-6
    xs = vertices[moved, 0]
    mid, soft = ((xs.min() + xs.max()) / 2, max(float(np.ptp(xs)) * 0.05, 1e-6)) if xs.size else (0.0, 1e-6)
    return np.clip(0.5 + (vertices[:, 0] - mid) / (2 * soft), 0, 1)[:, None].astype(np.float32)


def retarget(exprs: Dict[str, List[Tuple[int, np.ndarray]]], vertices: np.ndarray,
             skip: Tuple[str, ...] = ()) -> Tuple[Tuple[str, ...], np.ndarray]:
    """ARKit targets built from VRM preset deltas: (names, dense [T,V,3]) for every ARKit shape of
    :data:`RETARGET` whose presets the rig has, except those in ``skip`` (the rig's own)."""
    have = set(exprs)
    n_vertices = len(vertices)
    dense_p: Dict[str, np.ndarray] = {}
    for p, parts in exprs.items():
        d = np.zeros((n_vertices, 3), np.float32)
        for start, delta in parts:
            d[start:start + delta.shape[0]] += delta.astype(np.float32)
        dense_p[p] = d
    out_names, out = [], []
    for n in schema.MODEL_NAMES:
        r = _recipe(n, have)
        if n in skip or not r:
            continue
        acc = np.zeros((n_vertices, 3), np.float32)
        for p, w in r:
            side = n.endswith(("Left", "Right")) and not p.endswith(("Left", "Right"))
            if side and w == 0.5:
                left = _side(vertices, dense_p[p])
                acc += dense_p[p] * (left if n.endswith("Left") else 1 - left)
            else:
                acc += w * dense_p[p]
        out_names.append(n)
        out.append(acc)
    return tuple(out_names), (np.stack(out) if out else np.zeros((0, n_vertices, 3), np.float32))


def preset_weights(scores, have: Tuple[str, ...] = tuple(p for p in names.VRM_PRESETS if p != "neutral")
                   ) -> Dict[str, float]:
    """The VRM preset weights that :func:`retarget` realises for 52 MediaPipe-order ``scores``
    (for streaming to a VRM runtime, and to document the retarget)."""
    s = np.asarray(scores, np.float32).reshape(-1)
    out: Dict[str, float] = {}
    for n in schema.MODEL_NAMES:
        for p, w in _recipe(n, set(have)):
            out[p] = out.get(p, 0.0) + w * float(s[schema.MEDIAPIPE_INDEX[n]])
    return {p: min(v, 1.0) for p, v in out.items()}
