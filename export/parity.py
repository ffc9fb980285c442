"""Parity is part of export: run the written ONNX file in onnxruntime and the reference (PyTorch, or
numpy for the torch-free builder) on the same inputs at several batch sizes and sequence lengths —
different from the shape used to trace — and fail naming the output and the largest difference."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import Emo3DError, InvalidInputError

Arrays = Dict[str, np.ndarray]
Reference = Callable[[Arrays], Mapping[str, np.ndarray]]
InputMaker = Callable[[int, int, np.random.Generator], Arrays]


class ParityError(Emo3DError, AssertionError):
    """The exported graph disagrees with its reference beyond the tolerance."""

    def __init__(self, message: str, report: "ParityReport"):
        super().__init__(message)
        self.report = report


@dataclass
class ParityCase:
    batch: int
    seq_len: int
    max_abs_diff: Dict[str, float]


@dataclass
class ParityReport:
    """Worst absolute difference per output over all cases; saved into the manifest's ``onnx.parity``."""

    atol: float
    ok: bool
    max_abs_diff: Dict[str, float]
    mean_abs_diff: Dict[str, float]
    worst_output: str
    worst_case: Tuple[int, int]           # (batch, seq_len) of the largest difference
    cases: List[ParityCase] = field(default_factory=list)
    reference: str = "torch"

    @property
    def max_diff(self) -> float:
        return max(self.max_abs_diff.values()) if self.max_abs_diff else 0.0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["worst_case"] = list(self.worst_case)
        return d

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v:.2e}" for k, v in self.max_abs_diff.items())
        return (f"parity vs {self.reference} over {len(self.cases)} cases: max |diff| {parts} "
                f"(atol {self.atol:g}) -> {'ok' if self.ok else 'FAIL'}")


def text_inputs(batch: int, seq_len: int, rng: np.random.Generator, *, vocab_size: int = 1000,
                low: int = 5, pad_id: int = 0) -> Arrays:
    """Random token ids with right padding of varied length per row (row 0 always full length)."""
    ids = rng.integers(low, vocab_size, size=(batch, seq_len), dtype=np.int64)
    lengths = rng.integers(1, seq_len + 1, size=batch)
    lengths[0] = seq_len
    mask = (np.arange(seq_len)[None, :] < lengths[:, None]).astype(np.int64)
    ids = np.where(mask == 1, ids, pad_id).astype(np.int64)
    return {"input_ids": ids, "attention_mask": mask}


def float_inputs(name: str, shape_tail: Sequence[int]) -> InputMaker:
    """An input maker for float inputs (embeddings [B,D], pixels [B,3,H,W]); ``seq_len`` is ignored."""
    def make(batch: int, seq_len: int, rng: np.random.Generator) -> Arrays:
        return {name: rng.standard_normal((batch, *shape_tail)).astype(np.float32)}
    return make


def check_parity(onnx_path: str | Path, reference: Reference, make_inputs: InputMaker, *,
                 batch_sizes: Sequence[int] = (1, 3, 8), seq_lengths: Sequence[int] = (4, 7, 16, 33, 64),
                 atol: float = 1e-4, outputs: Optional[Sequence[str]] = None, seed: int = 0,
                 raise_on_fail: bool = True, reference_name: str = "torch",
                 providers: Sequence[str] = ("CPUExecutionProvider",)) -> ParityReport:
    """Compare onnxruntime with ``reference`` on every (batch, seq_len); raise :class:`ParityError`
    naming the output and the largest difference when any exceeds ``atol``."""
    import onnxruntime as ort

    if not batch_sizes:
        raise InvalidInputError("check_parity needs at least one batch size")
    seq_lengths = tuple(seq_lengths) or (0,)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), so, providers=list(providers))
    names = list(outputs) if outputs else [o.name for o in sess.get_outputs()]
    input_names = {i.name for i in sess.get_inputs()}
    rng = np.random.default_rng(seed)
    worst: Dict[str, float] = {n: 0.0 for n in names}
    sums: Dict[str, float] = {n: 0.0 for n in names}
    counts: Dict[str, int] = {n: 0 for n in names}
    worst_case: Dict[str, Tuple[int, int]] = {n: (0, 0) for n in names}
    cases: List[ParityCase] = []
    for b in batch_sizes:
        for s in seq_lengths:
            feeds = make_inputs(int(b), int(s), rng)
            got = dict(zip(names, sess.run(names, {k: v for k, v in feeds.items() if k in input_names})))
            ref = reference(feeds)
            diffs = {}
            for n in names:
                if n not in ref:
                    raise InvalidInputError(f"parity reference gave no output {n!r} (it gave {sorted(ref)})")
                r = np.asarray(ref[n], dtype=np.float64)
                g = np.asarray(got[n], dtype=np.float64)
                if r.shape != g.shape:
                    raise ParityError(f"output {n!r}: ONNX shape {g.shape} != reference shape {r.shape} "
                                      f"at batch {b}, seq {s}", _empty_report(atol, reference_name))
                d = np.abs(g - r)
                if not np.all(np.isfinite(d)):
                    d = np.where(np.isfinite(d), d, np.inf)
                diffs[n] = float(d.max()) if d.size else 0.0
                sums[n] += float(d.sum())
                counts[n] += d.size
                if diffs[n] >= worst[n]:
                    worst[n], worst_case[n] = diffs[n], (int(b), int(s))
            cases.append(ParityCase(int(b), int(s), diffs))
    worst_output = max(names, key=lambda n: worst[n])
    report = ParityReport(atol=float(atol), ok=all(v <= atol for v in worst.values()),
                          max_abs_diff=worst, mean_abs_diff={n: sums[n] / max(counts[n], 1) for n in names},
                          worst_output=worst_output, worst_case=worst_case[worst_output], cases=cases,
                          reference=reference_name)
    if not report.ok and raise_on_fail:
        b, s = report.worst_case
        raise ParityError(f"{Path(onnx_path).name}: output {worst_output!r} differs from {reference_name} by "
                          f"{worst[worst_output]:.3e} (> atol {atol:g}) at batch {b}, seq {s}", report)
    return report


def _empty_report(atol: float, reference: str) -> ParityReport:
    return ParityReport(atol=atol, ok=False, max_abs_diff={}, mean_abs_diff={}, worst_output="",
                        worst_case=(0, 0), reference=reference)
