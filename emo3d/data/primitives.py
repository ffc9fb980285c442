"""The primitive emotions set (paper Section 3): single emotion words at three intensities, each with an
EmoLex-derived 8-emotion distribution, the FACS prior and (with images) a render + MediaPipe scores.

``data/primitive_emotions.csv`` columns: ``word``, ``emotion`` (the word's seed emotion), ``level``
(slight/moderate/strong), ``intensity``, the 8 emotions, ``img``, ``blenshape_score``, ``prior``.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from emo3d.errors import DataValidationError
from emo3d.io import atomic_write_text
from emo3d.schema import EMOTIONS

from . import facs, lexicon
from .validate import format_float, format_vector, parse_emotion, parse_vector, quantize, is_empty

__all__ = ["Primitive", "primitive_rows", "build_primitives", "read_primitives", "LEVELS"]

LEVELS = (("slight", 0.35), ("moderate", 0.65), ("strong", 1.0))
COLUMNS = ("word", "emotion", "level", "intensity") + EMOTIONS + ("img", "blenshape_score", "prior")


@dataclass
class Primitive:
    word: str
    emotion: str
    level: str
    intensity: float
    emotions: np.ndarray                 # [8] EmoLex-derived distribution
    prior: np.ndarray                    # [52]
    image: Optional[str] = None
    blendshapes: Optional[np.ndarray] = None


def primitive_rows() -> List[Primitive]:
    """Every seed noun of every emotion at three intensities (no images)."""
    out = []
    for e in EMOTIONS:
        for w in lexicon.nouns(e):
            dist = lexicon.word_distribution(w)
            for level, inten in LEVELS:
                out.append(Primitive(w, e, level, inten, dist, quantize(facs.prior(dist, inten))))
    return out


def build_primitives(root: Path, *, images: bool = False, size: int = 256, ssaa: int = 2) -> Path:
    """Write ``root/data/primitive_emotions.csv`` (and renders under ``root/primitive_images``)."""
    rows = primitive_rows()
    if images:
        from .render import Imager
        imager = Imager(size=size, ssaa=ssaa)
        try:
            for k, p in enumerate(rows):
                p.image = f"primitive_images/{p.word}_{p.level}.jpeg"
                scores = imager.render_and_score(p.prior, root / p.image)
                p.blendshapes = None if scores is None else quantize(scores)
        finally:
            imager.close()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for p in rows:
        w.writerow([p.word, p.emotion, p.level, format_float(p.intensity)]
                   + [format_float(x) for x in p.emotions]
                   + [p.image or "", "" if p.blendshapes is None else format_vector(p.blendshapes),
                      format_vector(p.prior)])
    return atomic_write_text(Path(root) / "data" / "primitive_emotions.csv", buf.getvalue())


def read_primitives(root) -> List[Primitive]:
    """Read ``data/primitive_emotions.csv`` of an offline build."""
    path = Path(root) / "data" / "primitive_emotions.csv"
    if not path.is_file():
        raise DataValidationError(f"no primitive set at {path}", file=str(path))
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for i, r in enumerate(csv.DictReader(f), start=1):
            kw = dict(file=str(path), row=i)
            emo = np.array([parse_emotion(r.get(e), column=e, **kw) for e in EMOTIONS], dtype=np.float32)
            out.append(Primitive(r["word"], r["emotion"], r["level"],
                                 parse_emotion(r.get("intensity"), column="intensity", **kw), emo,
                                 parse_vector(r.get("prior"), column="prior", **kw),
                                 None if is_empty(r.get("img")) else r["img"],
                                 parse_vector(r.get("blenshape_score"), column="blenshape_score", **kw)))
    return out
