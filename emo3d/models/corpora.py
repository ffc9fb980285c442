"""Real, human-labelled emotion text for the default's emotion reading: GoEmotions (Ekman grouping).

GoEmotions (Demszky et al., ACL 2020; google-research/google-research ``goemotions/data``, Apache-2.0):
58k English Reddit comments labelled by raters with 27 emotions + neutral. The published splits are
``train.tsv`` (43,410), ``dev.tsv`` (5,426) and ``test.tsv`` (5,427); columns: text, comma-separated
emotion ids (order of ``emotions.txt``), comment id; no header.

Rules of use in this project: ``train`` and ``dev`` may be trained on / used for model selection;
``test`` is for evaluation only (``python -m emo3d.models.evaluate_default``). Nothing is committed: the
files are read from a folder given by ``$EMO3D_GOEMOTIONS`` or ``cache_dir("corpora", "goemotions")``
(see :func:`goemotions_dir`).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from emo3d.errors import AssetError, InvalidInputError
from emo3d.io import cache_dir
from emo3d.schema import EMOTIONS

GOEMOTIONS_LABELS: Tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral")
# The dataset authors' Ekman grouping (goemotions/data/ekman_mapping.json); joy is our "happiness".
EKMAN_GROUPS: Dict[str, Tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "happiness": ("joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism", "relief", "pride",
                  "admiration", "desire", "caring"),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}
EKMAN_CLASSES: Tuple[str, ...] = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear")
SPLITS = ("train", "dev", "test")
TRAINABLE_SPLITS = ("train", "dev")
SPLIT_ROWS = {"train": 43410, "dev": 5426, "test": 5427}
CARD = {"name": "GoEmotions", "source": "google-research/google-research goemotions/data/{train,dev,test}.tsv",
        "licence": "Apache-2.0 (repository licence; the dataset card says apache-2.0)", "language": "English",
        "rows": SPLIT_ROWS, "use": "train: training; dev: model selection; test: evaluation only"}
ENV = "EMO3D_GOEMOTIONS"

_TO_EKMAN = np.zeros((len(GOEMOTIONS_LABELS), len(EMOTIONS)), np.float32)
for _e, _names in EKMAN_GROUPS.items():
    for _n in _names:
        _TO_EKMAN[GOEMOTIONS_LABELS.index(_n), EMOTIONS.index(_e)] = 1.0


@dataclass(frozen=True)
class LabelledText:
    """One split in the Ekman grouping. ``labels`` [N,8] (order ``schema.EMOTIONS``; contempt always 0) is
    the share of the row's Ekman classes; ``single`` marks rows with exactly one Ekman class; ``target`` is
    that class's index into ``EMOTIONS`` (the dominant one for mixed rows)."""
    split: str
    texts: Tuple[str, ...]
    labels: np.ndarray
    single: np.ndarray
    target: np.ndarray
    ids: Tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, index: np.ndarray) -> "LabelledText":
        index = np.asarray(index, dtype=np.int64)
        return LabelledText(self.split, tuple(self.texts[i] for i in index), self.labels[index],
                            self.single[index], self.target[index], tuple(self.ids[i] for i in index))


def goemotions_dir(root: Optional[str | Path] = None) -> Path:
    """The folder holding ``train.tsv``/``dev.tsv``/``test.tsv``: ``root``, else ``$EMO3D_GOEMOTIONS``,
    else ``cache_dir("corpora", "goemotions")``. Raises ``AssetError`` naming what to put where."""
    folder = Path(root or os.environ.get(ENV) or cache_dir("corpora", "goemotions")).expanduser()
    missing = [f"{s}.tsv" for s in SPLITS if not (folder / f"{s}.tsv").is_file()]
    if missing:
        raise AssetError(f"GoEmotions not found in {folder} (missing {', '.join(missing)}): copy "
                         f"goemotions/data/{{train,dev,test}}.tsv of google-research/google-research there, or "
                         f"set ${ENV} / pass --goemotions DIR")
    return folder


def load_goemotions(split: str, root: Optional[str | Path] = None) -> LabelledText:
    """One GoEmotions split mapped to the Ekman classes (rows without a label are dropped)."""
    if split not in SPLITS:
        raise InvalidInputError(f"GoEmotions split {split!r} is not one of {', '.join(SPLITS)}")
    path = goemotions_dir(root) / f"{split}.tsv"
    texts, labels, ids = [], [], []
    with open(path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if len(row) != 3:
                raise AssetError(f"{path}:{n}: expected 3 tab-separated columns (text, label ids, id), got {len(row)}")
            try:
                raw = [int(x) for x in row[1].split(",") if x.strip()]
            except ValueError:
                raise AssetError(f"{path}:{n}: label ids {row[1]!r} are not comma-separated integers") from None
            if any(not 0 <= i < len(GOEMOTIONS_LABELS) for i in raw):
                raise AssetError(f"{path}:{n}: label id out of range 0..{len(GOEMOTIONS_LABELS) - 1}: {row[1]!r}")
            ek = (_TO_EKMAN[raw].sum(0) > 0).astype(np.float32)
            if ek.sum() == 0:
                continue
            texts.append(row[0])
            labels.append(ek / ek.sum())
            ids.append(row[2])
    lab = np.stack(labels).astype(np.float32)
    single = (lab > 0).sum(1) == 1
    return LabelledText(split, tuple(texts), lab, single, lab.argmax(1).astype(np.int64), tuple(ids))


def balanced_subset(data: LabelledText, per_class: int, *, seed: int = 0,
                    classes: Tuple[str, ...] = EKMAN_CLASSES) -> LabelledText:
    """Single-label rows, ``per_class`` of each class (all of a class that has fewer), seeded."""
    rng = np.random.default_rng(seed)
    pick = []
    for e in classes:
        rows = np.flatnonzero(data.single & (data.target == EMOTIONS.index(e)))
        pick.append(rng.permutation(rows)[:per_class])
    return data.take(np.sort(np.concatenate(pick)))


__all__ = ["GOEMOTIONS_LABELS", "EKMAN_GROUPS", "EKMAN_CLASSES", "CARD", "LabelledText", "goemotions_dir",
           "load_goemotions", "balanced_subset"]
