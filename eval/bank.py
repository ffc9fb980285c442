"""The prompt bank: test prompts with their 8-emotion distributions, with a balanced emotion mix.

From an Emo3D-format folder's ``test`` split (``dataset.read_release``): one prompt per sample (its
first text), grouped by dominant emotion; the groups are shuffled with ``seed`` and drawn
round-robin, so every emotion gets ``size // 8`` prompts where it has them and the rest is filled
from the larger groups. Ground truth for MSE: the mean of the sample's available MediaPipe score
vectors (NaN row where it has none).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from emo3d import schema
from emo3d.errors import DataValidationError, InvalidInputError
from emo3d.options import check_int
from emo3d.io import atomic_write_json

__all__ = ["BankOptions", "PromptBank", "build_bank", "bank_from_samples"]


@dataclass(frozen=True)
class BankOptions:
    size: int = 160
    split: str = "test"
    seed: int = 0

    def __post_init__(self):
        check_int(self.size, "BankOptions.size (bank size)", 1)
        check_int(self.seed, "BankOptions.seed", 0)
        if self.split not in ("train", "val", "test"):
            raise InvalidInputError(f"split must be train, val or test, got {self.split!r}")


@dataclass
class PromptBank:
    texts: list[str]
    emotions: np.ndarray            # [M,8] schema.EMOTIONS order
    truth: np.ndarray               # [M,52] MediaPipe order, NaN rows where the sample has none
    sample_ids: np.ndarray          # [M]
    source: str = ""

    def __post_init__(self):
        m = len(self.texts)
        self.emotions = np.asarray(self.emotions, dtype=np.float32).reshape(m, schema.N_EMOTIONS)
        self.truth = np.asarray(self.truth, dtype=np.float32).reshape(m, schema.N_MEDIAPIPE)
        self.sample_ids = np.asarray(self.sample_ids, dtype=np.int64).reshape(m)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def dominant(self) -> list[str]:
        return [schema.EMOTIONS[int(i)] for i in self.emotions.argmax(axis=1)]

    def mix(self) -> dict[str, int]:
        d = self.dominant
        return {e: d.count(e) for e in schema.EMOTIONS}

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, {
            "source": self.source, "texts": self.texts, "emotions": self.emotions.tolist(),
            "truth": [None if not np.all(np.isfinite(t)) else t.tolist() for t in self.truth],
            "sample_ids": self.sample_ids.tolist()})

    @classmethod
    def load(cls, path: str | Path) -> "PromptBank":
        d = json.loads(Path(path).read_text())
        truth = [t if t is not None else [np.nan] * schema.N_MEDIAPIPE for t in d["truth"]]
        return cls(d["texts"], np.array(d["emotions"]), np.array(truth, dtype=np.float32),
                   np.array(d["sample_ids"]), d.get("source", ""))


def bank_from_samples(samples: Sequence, options: BankOptions = BankOptions(), source: str = "") -> PromptBank:
    """Balanced bank from ``dataset.Sample``s (see module doc)."""
    groups: dict[int, list] = {i: [] for i in range(schema.N_EMOTIONS)}
    for s in samples:
        text = next((t for t in s.texts if t and str(t).strip()), None)
        if text is None:
            continue
        e = np.asarray(s.emotions, dtype=np.float64)
        if not np.all(np.isfinite(e)) or np.any(e < 0):
            raise DataValidationError(f"sample {s.sample_id}: emotions must be finite and >= 0, got {e}")
        groups[int(np.argmax(e))].append((s, text))
    rng = np.random.default_rng(options.seed)
    for g in groups.values():
        g.sort(key=lambda st: st[0].sample_id)
        order = rng.permutation(len(g))
        g[:] = [g[i] for i in order]
    total = sum(len(g) for g in groups.values())
    if total == 0:
        raise DataValidationError(f"no usable prompts in the {options.split} split of {source or 'the data'}")
    picked = []
    pos = {i: 0 for i in groups}
    while len(picked) < min(options.size, total):
        for i in range(schema.N_EMOTIONS):
            if pos[i] < len(groups[i]) and len(picked) < options.size:
                picked.append(groups[i][pos[i]])
                pos[i] += 1
    texts, emos, truth, ids = [], [], [], []
    for s, text in picked:
        bs = [np.asarray(b, dtype=np.float32) for b in s.blendshapes if b is not None]
        texts.append(str(text))
        emos.append(np.asarray(s.emotions, dtype=np.float32))
        truth.append(np.mean(bs, axis=0) if bs else np.full(schema.N_MEDIAPIPE, np.nan, np.float32))
        ids.append(s.sample_id)
    return PromptBank(texts, np.stack(emos), np.stack(truth), np.array(ids), source)


def build_bank(data: str | Path, options: BankOptions = BankOptions(), *,
               samples: Optional[Sequence] = None) -> PromptBank:
    """Read ``data`` (an Emo3D-format folder) and build its balanced bank."""
    if samples is None:
        if not Path(data).is_dir():
            raise DataValidationError(f"--data {data}: no such folder (expected an Emo3D-format "
                                      f"release folder holding data/test_data.csv)")
        from emo3d import data as dataset
        release = dataset.read_release(data, check_images=False)
        samples = release.split(options.split)
    return bank_from_samples(samples, options, source=str(data))
