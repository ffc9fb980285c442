"""What the paper trains on: (text, blendshapes) and (image, blendshapes) pairs, with the paper's
mirror augmentation (swap Left/Right shapes, swap the words left/right in the text, flip the image).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.schema import N_EMOTIONS, N_MEDIAPIPE, mirror

from .reader import Sample, resolve_image

__all__ = ["TextPairs", "ImagePairs", "mirror_text", "mirror_image", "text_pairs", "image_pairs"]

_LR = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def _swap(m: re.Match) -> str:
    w = m.group(0)
    out = "right" if w.lower() == "left" else "left"
    if w.isupper():
        return out.upper()
    if w[0].isupper():
        return out.capitalize()
    return out


def mirror_text(text: str) -> str:
    """Swap the words left/right (case kept); an involution."""
    return _LR.sub(_swap, str(text))


def mirror_image(rgb: np.ndarray) -> np.ndarray:
    """Flip an [H,W,C] image left-right (the subject's left becomes their right)."""
    return np.ascontiguousarray(np.asarray(rgb)[:, ::-1])


@dataclass
class TextPairs:
    texts: List[str]
    targets: np.ndarray     # [N,52] float32 MediaPipe order
    emotions: np.ndarray    # [N,8] float32
    sample_ids: np.ndarray  # [N] int64

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class ImagePairs:
    paths: List[Path]
    targets: np.ndarray     # [N,52]
    emotions: np.ndarray    # [N,8]
    flip: np.ndarray        # [N] bool: flip the image when loading (mirror augmentation)
    sample_ids: np.ndarray  # [N] int64

    def __len__(self) -> int:
        return len(self.paths)


def text_pairs(samples: Sequence[Sample], *, mirror: bool = False, target: str = "scores") -> TextPairs:
    """Every text of a sample with every present blendshape vector (``target="scores"``) or with the
    sample's FACS prior (``target="prior"``). ``mirror`` appends the mirrored copy of every pair."""
    if target not in ("scores", "prior"):
        raise InvalidInputError(f"target must be 'scores' or 'prior', got {target!r}")
    texts: List[str] = []
    vecs: List[np.ndarray] = []
    emos: List[np.ndarray] = []
    ids: List[int] = []
    for s in samples:
        if target == "prior":
            if s.prior is None:
                raise InvalidInputError(f"sample {s.sample_id} has no prior column (only offline builds have "
                                        "one); use target='scores'")
            tv = [s.prior]
        else:
            tv = [b for b in s.blendshapes if b is not None]
        for t in s.texts:
            for v in tv:
                texts.append(t)
                vecs.append(v)
                emos.append(s.emotions)
                ids.append(s.sample_id)
    targets = np.asarray(vecs, dtype=np.float32).reshape(-1, N_MEDIAPIPE)
    emotions = np.asarray(emos, dtype=np.float32).reshape(-1, N_EMOTIONS)
    sid = np.asarray(ids, dtype=np.int64)
    if mirror:
        texts = texts + [mirror_text(t) for t in texts]
        targets = np.concatenate([targets, _mirror(targets)])
        emotions = np.concatenate([emotions, emotions])
        sid = np.concatenate([sid, sid])
    return TextPairs(texts, targets, emotions, sid)


def _mirror(vecs: np.ndarray) -> np.ndarray:
    return mirror(vecs).astype(np.float32)


def image_pairs(samples: Sequence[Sample], root, *, mirror: bool = False) -> ImagePairs:
    """Every present image that has its blendshape vector (paths resolved with
    ``reader.resolve_image``); ``mirror`` appends flipped copies."""
    root = Path(root)
    paths: List[Path] = []
    vecs: List[np.ndarray] = []
    emos: List[np.ndarray] = []
    ids: List[int] = []
    for s in samples:
        for img, bs in zip(s.images, s.blendshapes):
            if img is None or bs is None:
                continue
            paths.append(resolve_image(root, img))
            vecs.append(bs)
            emos.append(s.emotions)
            ids.append(s.sample_id)
    targets = np.asarray(vecs, dtype=np.float32).reshape(-1, N_MEDIAPIPE)
    emotions = np.asarray(emos, dtype=np.float32).reshape(-1, N_EMOTIONS)
    sid = np.asarray(ids, dtype=np.int64)
    flip = np.zeros(len(paths), dtype=bool)
    if mirror:
        paths = paths + list(paths)
        targets = np.concatenate([targets, _mirror(targets)])
        emotions = np.concatenate([emotions, emotions])
        flip = np.concatenate([flip, np.ones_like(flip)])
        sid = np.concatenate([sid, sid])
    return ImagePairs(paths, targets, emotions, flip, sid)
