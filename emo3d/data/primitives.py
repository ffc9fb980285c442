"""The primitive emotions set (paper Section 3): single emotion words, each "paired with images that
portray males and females exhibiting three distinct intensity levels", labelled by MediaPipe.

``data/primitive_emotions.csv`` — the release layout, one row per word, its images in numbered-by-
slot columns like the main tables' ``img_i`` / ``blenshape_score_i``:

    word, emotion, neutral … contempt (8),
    img_male_1, img_male_2, img_male_3, img_female_1, img_female_2, img_female_3,
    blenshape_score_male_1 … blenshape_score_female_3      (52 MediaPipe-order values, sic "blenshape")
    [prior_1, prior_2, prior_3]                            (offline builds: the FACS prior per level)

Level 1/2/3 = slight/moderate/strong (intensity 0.35/0.65/1.0 in offline builds). Empty cells: no
image for that slot. The official notebooks list the file but never read it, and its columns are not
published anywhere we could read, so this layout follows the release's own conventions (one row per
item, numbered image/score pairs); :func:`read_primitives` also reads the long layout of earlier
offline builds (one row per word × level: ``word, emotion, level, intensity, 8 emotions, img,
blenshape_score, prior``).

Offline builds render a slot only for the identities they are given (``identities``: gender → a
default-avatar texture name or a .glb/.gltf head); the default avatar is one identity, so by default
the rows carry the priors and no images rather than one face labelled as both sexes.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from emo3d.errors import DataValidationError, InvalidInputError
from emo3d.io import atomic_write_text
from emo3d.schema import EMOTIONS

from . import facs, lexicon
from .validate import format_float, format_vector, is_empty, parse_emotion, parse_vector, quantize

__all__ = ["Primitive", "primitive_rows", "build_primitives", "read_primitives", "write_primitives",
           "LEVELS", "GENDERS", "SLOTS", "COLUMNS", "PRIMITIVES_CSV"]

PRIMITIVES_CSV = "primitive_emotions.csv"
LEVELS = (("slight", 0.35), ("moderate", 0.65), ("strong", 1.0))
GENDERS = ("male", "female")
SLOTS: Tuple[Tuple[str, int], ...] = tuple((g, i) for g in GENDERS for i in range(1, len(LEVELS) + 1))
IMG_COLS = tuple(f"img_{g}_{i}" for g, i in SLOTS)
BS_COLS = tuple(f"blenshape_score_{g}_{i}" for g, i in SLOTS)
PRIOR_COLS = tuple(f"prior_{i}" for i in range(1, len(LEVELS) + 1))
COLUMNS = ("word", "emotion") + EMOTIONS + IMG_COLS + BS_COLS
_LEVEL_NUMBER = {name: i for i, (name, _) in enumerate(LEVELS, start=1)}


@dataclass
class Primitive:
    """One (word, gender, level) slot. ``image``/``blendshapes`` None where the slot has no image;
    ``prior`` None where the file has none (the release); ``intensity`` the level's offline value."""
    word: str
    emotion: str
    level: str
    intensity: float
    emotions: np.ndarray                 # [8] the word's distribution
    prior: Optional[np.ndarray]          # [52]
    gender: Optional[str] = None         # "male" | "female" (None: the long layout's single slot)
    image: Optional[str] = None
    blendshapes: Optional[np.ndarray] = None

    @property
    def level_number(self) -> int:
        return _LEVEL_NUMBER[self.level]


def primitive_rows() -> List[Primitive]:
    """Every seed noun of every emotion × gender × level (no images), in file order."""
    out = []
    for e in EMOTIONS:
        for w in lexicon.nouns(e):
            dist = lexicon.word_distribution(w)
            priors = [quantize(facs.prior(dist, inten)) for _, inten in LEVELS]
            for g in GENDERS:
                for (level, inten), prior in zip(LEVELS, priors):
                    out.append(Primitive(w, e, level, inten, dist, prior, g))
    return out


def write_primitives(path: str | Path, rows: List[Primitive]) -> Path:
    """Write ``rows`` in the release layout (one line per word, in first-seen order), atomically.
    Adds ``prior_1..3`` when every row has a prior."""
    words: Dict[str, Dict] = {}
    for p in rows:
        if p.gender not in GENDERS or p.level not in _LEVEL_NUMBER:
            raise InvalidInputError(f"primitive {p.word!r}: gender must be one of {GENDERS} and level one of "
                                    f"{tuple(_LEVEL_NUMBER)}, got {p.gender!r}, {p.level!r}")
        w = words.setdefault(p.word, {"first": p, "slots": {}, "priors": {}})
        if (p.gender, p.level_number) in w["slots"]:
            raise InvalidInputError(f"primitive {p.word!r} has two rows for {p.gender} level {p.level}")
        w["slots"][(p.gender, p.level_number)] = p
        if p.prior is not None:
            w["priors"][p.level_number] = p.prior
    with_prior = all(len(w["priors"]) == len(LEVELS) for w in words.values()) and bool(words)
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(COLUMNS + (PRIOR_COLS if with_prior else ()))
    for word, w in words.items():
        first = w["first"]
        slots = [w["slots"].get(s) for s in SLOTS]
        out.writerow([word, first.emotion] + [format_float(x) for x in first.emotions]
                     + [(p.image or "") if p is not None else "" for p in slots]
                     + [format_vector(p.blendshapes) if p is not None and p.blendshapes is not None else ""
                        for p in slots]
                     + ([format_vector(w["priors"][i]) for i in range(1, len(LEVELS) + 1)] if with_prior else []))
    return atomic_write_text(Path(path), buf.getvalue())


def _identity_renderer(imager, gender: str, source: str):
    """Register ``source`` (a default texture name or a .glb/.gltf path) under ``gender``."""
    from .render import available_textures
    if source in available_textures():
        return source
    p = Path(source)
    if p.suffix.lower() in (".glb", ".gltf") and p.is_file():
        from emo3d.avatar.gltf import load_gltf
        imager.add_identity(f"{gender}:{p}", load_gltf(p))
        return f"{gender}:{p}"
    raise InvalidInputError(f"primitive identity {gender}={source!r}: accepted a default texture "
                            f"({', '.join(available_textures())}) or an existing .glb/.gltf head")


def build_primitives(root: Path, *, images: bool = False, identities: Optional[Mapping[str, str]] = None,
                     size: int = 256, ssaa: int = 2) -> Path:
    """Write ``root/data/primitive_emotions.csv``; with ``images``, render each slot whose gender has
    an identity (``{"male": SOURCE, "female": SOURCE}``) under ``root/primitive_images`` and label
    it with MediaPipe."""
    identities = dict(identities or {})
    bad = [g for g in identities if g not in GENDERS]
    if bad:
        raise InvalidInputError(f"primitive identities {bad}: accepted genders {', '.join(GENDERS)}")
    rows = primitive_rows()
    if images and identities:
        from .render import Imager
        imager = Imager(size=size, ssaa=ssaa)
        try:
            names = {g: _identity_renderer(imager, g, s) for g, s in identities.items()}
            for p in rows:
                if p.gender not in names:
                    continue
                p.image = f"primitive_images/{p.word}_{p.gender}_{p.level_number}.jpeg"
                scores = imager.render_and_score(p.prior, Path(root) / p.image, texture=names[p.gender])
                p.blendshapes = None if scores is None else quantize(scores)
        finally:
            imager.close()
    return write_primitives(Path(root) / "data" / PRIMITIVES_CSV, rows)


def _read_wide(r: dict, kw: dict, emo: np.ndarray, has_prior: bool) -> List[Primitive]:
    priors = [parse_vector(r.get(c), column=c, **kw) if has_prior else None for c in PRIOR_COLS]
    out = []
    for (g, i), img_col, bs_col in zip(SLOTS, IMG_COLS, BS_COLS):
        level, inten = LEVELS[i - 1]
        img = None if is_empty(r.get(img_col)) else str(r[img_col])
        out.append(Primitive(r["word"], r.get("emotion") or EMOTIONS[int(np.argmax(emo))], level, inten, emo,
                             priors[i - 1], g, img, parse_vector(r.get(bs_col), column=bs_col, **kw)))
    return out


def read_primitives(root) -> List[Primitive]:
    """Read ``ROOT/data/primitive_emotions.csv`` (the release layout, or an earlier offline build's long
    layout): one :class:`Primitive` per (word, gender, level) slot."""
    path = Path(root) / "data" / PRIMITIVES_CSV
    if not path.is_file():
        raise DataValidationError(f"no primitive set at {path}", file=str(path))
    out: List[Primitive] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = tuple(reader.fieldnames or ())
        wide = all(c in header for c in ("word",) + EMOTIONS + IMG_COLS + BS_COLS)
        long_ = all(c in header for c in ("word", "level", "img", "blenshape_score") + EMOTIONS)
        if not (wide or long_):
            need = sorted(set(("word",) + EMOTIONS + IMG_COLS + BS_COLS) - set(header))
            raise DataValidationError(f"not a primitive-emotions table: missing columns {need[:8]}"
                                      f"{' ...' if len(need) > 8 else ''} (release layout: {', '.join(COLUMNS[:12])} ...)",
                                      file=str(path))
        has_prior = all(c in header for c in PRIOR_COLS)
        for i, r in enumerate(reader, start=1):
            kw = dict(file=str(path), row=i)
            emo = np.array([parse_emotion(r.get(e), column=e, **kw) for e in EMOTIONS], dtype=np.float32)
            if wide:
                out.extend(_read_wide(r, kw, emo, has_prior))
                continue
            if r["level"] not in _LEVEL_NUMBER:
                raise DataValidationError(f"level {r['level']!r} (accepted: {', '.join(_LEVEL_NUMBER)})",
                                          column="level", **kw)
            out.append(Primitive(r["word"], r.get("emotion") or "", r["level"],
                                 parse_emotion(r.get("intensity"), column="intensity", **kw), emo,
                                 parse_vector(r.get("prior"), column="prior", **kw), None,
                                 None if is_empty(r.get("img")) else r["img"],
                                 parse_vector(r.get("blenshape_score"), column="blenshape_score", **kw)))
    return out
