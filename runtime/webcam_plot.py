"""The picture of a tracked video: the most active blendshapes over time (``emo3d webcam VIDEO --png``)."""
from __future__ import annotations

import numpy as np

from emo3d import schema
from emo3d.io import atomic_path

from .webcam import TrackResult

__all__ = ["plot_tracking"]


def plot_tracking(result: TrackResult, path, *, top: int = 6) -> None:
    """PNG of the ``top`` most active tracked shapes over time (gaps = no face)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = np.arange(len(result.scores)) / result.fps
    act = np.nan_to_num(result.scores[:, 1:]).max(axis=0)
    names = [schema.MEDIAPIPE_NAMES[1 + i] for i in np.argsort(-act)[:top]]
    fig, ax = plt.subplots(figsize=(9, 3.5), dpi=110)
    for n in names:
        ax.plot(t, result.scores[:, schema.MEDIAPIPE_INDEX[n]], label=n)
    ax.set_xlabel("seconds")
    ax.set_ylabel("MediaPipe score")
    ax.set_ylim(0, 1)
    ax.set_title(f"tracked blendshapes ({result.face.mean():.0%} of frames with a face)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
