"""``python -m eval.alpha_study --bank BANK.json``: what the official metric's α does, on a real bank.

Three retrievals that need no model and no CLIP bracket any real one: ``best`` (each prompt retrieves
itself and the k−1 prompts with the nearest emotion distributions, L1), ``random`` (k prompts drawn
uniformly, seeded) and ``worst`` (the k farthest distributions). Each is scored with the official
definition at every α asked for, and with the paper's eq. 5–6; every number with its bootstrap 95%
interval over the prompts. With α = 1 all three score 1.000: the official score only ranks models
once α brings the sigmoid's argument to O(1).
"""
from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from emo3d.options import check_int

from .bootstrap import BootstrapOptions, Interval, mean_interval, sigmoid_mean_interval
from .metric import MetricOptions, SaturationWarning, emo3d_from_topk

__all__ = ["AlphaRow", "retrievals", "alpha_study", "markdown", "main"]


@dataclass
class AlphaRow:
    """One retrieval: the official sigmoid argument at α = 1, the official score per α, the paper's."""
    retrieval: str
    argument: Interval
    official: Dict[float, Interval] = field(default_factory=dict)
    paper: Optional[Interval] = None


def retrievals(emotions, k: int, seed: int = 0) -> Dict[str, np.ndarray]:
    """{"best", "random", "worst"} → [M,k] retrieved indices for a bank of distributions [M,8]."""
    e = np.asarray(emotions, dtype=np.float64)
    m = len(e)
    check_int(k, "k (at most the bank size)", 1, m)
    p = e / np.where(e.sum(1, keepdims=True) > 0, e.sum(1, keepdims=True), 1.0)
    d = np.abs(p[:, None, :] - p[None, :, :]).sum(-1)
    own = d.copy()
    np.fill_diagonal(own, -1.0)                        # the prompt itself first
    rng = np.random.default_rng(seed)
    return {"best": np.argsort(own, axis=1, kind="stable")[:, :k],
            "random": np.stack([rng.permutation(m)[:k] for _ in range(m)]),
            "worst": np.argsort(-d, axis=1, kind="stable")[:, :k]}


def alpha_study(emotions, *, k: int = 10, alphas: Sequence[float] = (1.0, 30.0),
                options: BootstrapOptions = BootstrapOptions(), seed: int = 0) -> List[AlphaRow]:
    rows = []
    for name, topk in retrievals(emotions, k, seed).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SaturationWarning)
            off = emo3d_from_topk(topk, emotions, options=MetricOptions(k=k, compat="official", alpha=1.0))
            pap = emo3d_from_topk(topk, emotions, options=MetricOptions(k=k))
        row = AlphaRow(name, mean_interval(off.kl, options), paper=sigmoid_mean_interval(pap.kl, 1.0, options))
        row.official = {float(a): sigmoid_mean_interval(off.kl, float(a), options) for a in alphas}
        rows.append(row)
    return rows


def markdown(rows: List[AlphaRow], *, k: int, n: int) -> str:
    alphas = list(rows[0].official)
    head = (["Retrieval", "official argument at α=1"] + [f"official α={a:g}" for a in alphas]
            + ["paper eq. 5–6"])
    lines = [f"k = {k}, {n} prompts; value [95% bootstrap interval over prompts]", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([r.retrieval, r.argument.format(1)]
                                       + [r.official[a].format(4 if a == 1 else 3) for a in alphas]
                                       + [r.paper.format(3)]) + " |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.alpha_study", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bank", required=True, type=Path, help="bank.json written by python -m eval.emo3d")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--alpha", type=float, nargs="+", default=[1.0, 30.0, 40.0])
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    emotions = np.asarray(json.loads(args.bank.read_text())["emotions"], dtype=np.float64)
    rows = alpha_study(emotions, k=args.k, alphas=args.alpha,
                       options=BootstrapOptions(resamples=args.resamples, seed=args.seed), seed=args.seed)
    print(markdown(rows, k=args.k, n=len(emotions)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
