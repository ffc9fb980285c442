"""Which part of a rig the camera frames: ``--framing auto|face|head|full``.

Regions (boxes [2,3] = (lo, hi) in rig space, found by the glTF reader and kept on the :class:`Rig`):

* face: the vertices the core face targets move (``FACE_CORE``: brows, lids, smile, jaw), i.e. brows
  to chin;
* head: the vertices skinned to the head bone and its children (VRM humanoid ``head`` or a joint
  named Head), else the face box grown upward and sideways (forehead, hair, ears).

Modes: ``face`` frames the face box grown by ``FACE_GROW`` each side (the face box fills 35-60%
of the image); ``head`` frames the head box; ``full`` frames the whole mesh; ``auto`` (the default)
frames the whole mesh when the face would still fill at least ``MIN_FACE_FRACTION`` of the image,
else the face (a bust or a full-body avatar).
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError

__all__ = ["FRAMING_MODES", "check_mode", "regions", "frame_box", "with_framing", "face_fraction"]

FRAMING_MODES: Tuple[str, ...] = ("auto", "face", "head", "full")
FACE_GROW = 0.06            # the face box grows by this share of its size on each side
#: The shapes whose moved vertices make the face box (brows to chin, cheek to cheek); shapes such as
#: mouthStretch or cheekSquint also move the neck on some rigs, so they do not count.
FACE_CORE = frozenset({"browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
                       "eyeBlinkLeft", "eyeBlinkRight", "jawOpen", "mouthSmileLeft", "mouthSmileRight"})
MIN_FACE_FRACTION = 0.30    # auto: the face must fill at least this share of the image
_MARGIN_SHARE = (1 - 2 * 0.08) ** 2   # RenderOptions' default margin leaves this share of the frame


def check_mode(mode: str) -> str:
    if mode not in FRAMING_MODES:
        raise InvalidInputError(f"framing {mode!r} is not one of {', '.join(FRAMING_MODES)} (--framing)")
    return mode


def regions(vertices: np.ndarray, target_names: Sequence[str], dense: np.ndarray,
            head_weight: Optional[np.ndarray]) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """(face_box, head_box) of a rig from its dense deltas [T,V,3] and per-vertex head skin weight."""
    face = None
    core = [i for i, n in enumerate(target_names) if n in FACE_CORE]
    rows = core if core else list(range(len(target_names)))
    if rows:
        mag = np.linalg.norm(dense[rows], axis=2)                         # [T,V]
        peak = mag.max(axis=1, keepdims=True)
        moved = (mag > np.maximum(peak * 0.05, 1e-9)).any(axis=0)
        if moved.sum() >= 3:
            v = vertices[moved]
            face = np.stack([v.min(axis=0), v.max(axis=0)])
    head = None
    if head_weight is not None and (head_weight > 0.5).sum() >= 3:
        v = vertices[head_weight > 0.5]
        head = np.stack([v.min(axis=0), v.max(axis=0)])
    elif face is not None:
        lo, hi = face
        size = hi - lo
        head = np.stack([lo - size * (0.25, 0.2, 0.5), hi + size * (0.25, 0.6, 0.1)])
    return face, head


def _grow(box: np.ndarray, k: float) -> np.ndarray:
    size = box[1] - box[0]
    return np.stack([box[0] - size * k, box[1] + size * k]).astype(np.float32)


def face_fraction(face_box: np.ndarray, frame: np.ndarray, aspect: float = 1.0) -> float:
    """The share of the image the face box's front fills when the camera frames ``frame``."""
    fw, fh = np.maximum(face_box[1, :2] - face_box[0, :2], 1e-9)
    W, H = np.maximum(frame[1, :2] - frame[0, :2], 1e-9)
    extent = max(H, W / aspect)                 # the frame's half-height in box units (x2)
    return float(min(fw, extent * aspect) * min(fh, extent) / (extent * extent * aspect) * _MARGIN_SHARE)


def frame_box(rig, mode: str = "auto") -> Optional[np.ndarray]:
    """The box the camera should frame for ``mode`` (None = the whole mesh)."""
    check_mode(mode)
    face, head = rig.face_box, rig.head_box
    if mode == "full" or (face is None and head is None):
        return None
    if mode == "head":
        return np.asarray(head if head is not None else _grow(face, 0.4), np.float32)
    if face is None:
        return np.asarray(head, np.float32)
    if mode == "auto":
        full = np.stack([rig.vertices.min(axis=0), rig.vertices.max(axis=0)])
        if face_fraction(face, full) >= MIN_FACE_FRACTION:
            return None
    return _grow(face, FACE_GROW)


def with_framing(rig, mode: str = "auto"):
    """A copy of ``rig`` whose ``frame_box`` frames ``mode``."""
    return dataclasses.replace(rig, frame_box=frame_box(rig, mode))
