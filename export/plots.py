"""``export_report.png``: parity per (batch, seq) case against the tolerance, and int8 vs fp32 scores."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from emo3d.io import atomic_path

from .parity import ParityReport


def save_report_png(path: str | Path, parity: ParityReport, int8: Optional[dict] = None) -> Path:
    """Left: max |ONNX - reference| per case and output (log scale) with the atol line. Right (when
    ``int8`` holds ``fp32``/``int8`` score arrays): int8 vs fp32 scatter with its MAE."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = 2 if int8 else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6 * ncols, 4), squeeze=False)
    ax = axes[0, 0]
    labels = [f"{c.batch}x{c.seq_len}" for c in parity.cases]
    x = np.arange(len(labels))
    names = list(parity.max_abs_diff)
    width = 0.8 / max(len(names), 1)
    for i, n in enumerate(names):
        vals = [max(c.max_abs_diff.get(n, 0.0), 1e-12) for c in parity.cases]
        ax.bar(x + i * width, vals, width, label=n)
    ax.axhline(parity.atol, color="red", linestyle="--", label=f"atol {parity.atol:g}")
    ax.set_yscale("log")
    ax.set_xticks(x + 0.4 - width / 2, labels, rotation=60, fontsize=7)
    ax.set_xlabel("batch x sequence length")
    ax.set_ylabel(f"max |ONNX - {parity.reference}|")
    ax.set_title("fp32 parity " + ("ok" if parity.ok else "FAILED"))
    ax.legend(fontsize=8)
    if int8:
        ax = axes[0, 1]
        a, b = np.asarray(int8["fp32"]).ravel(), np.asarray(int8["int8"]).ravel()
        ax.scatter(a, b, s=2, alpha=0.4)
        ax.plot([0, 1], [0, 1], color="gray", linewidth=0.8)
        ax.set_xlabel("fp32 score")
        ax.set_ylabel("int8 score")
        ax.set_title(f"int8 vs fp32: MAE {np.abs(a - b).mean():.4f}")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
