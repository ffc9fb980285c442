"""``emo3d webcam VIDEO [--png plot.png]`` (also ``python -m runtime.webcam_cli``): track a video file with
the webcam path (:mod:`runtime.webcam`), print the frame count, face coverage and the most active shapes,
optionally write the plot (:mod:`runtime.webcam_plot`). The live camera path runs inside ``emo3d-run --webcam``.
"""
from __future__ import annotations

import argparse

import numpy as np

from emo3d import schema
from emo3d.errors import AssetError, InvalidInputError

from .webcam import track_video
from .webcam_plot import plot_tracking

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``emo3d webcam VIDEO [--png plot.png]``: track a video file, print a summary."""
    ap = argparse.ArgumentParser(prog="emo3d webcam", description=main.__doc__)
    ap.add_argument("video", help="video file to track")
    ap.add_argument("--png", help="write a plot of the most active shapes here")
    ap.add_argument("--max-frames", type=int)
    a = ap.parse_args(argv)
    try:
        res = track_video(a.video, max_frames=a.max_frames, progress=True)
    except (InvalidInputError, AssetError) as e:
        print(f"error: {e}")
        return 2
    mean = np.nanmean(res.scores, axis=0) if res.face.any() else np.zeros(schema.N_MEDIAPIPE)
    print(f"{len(res.scores)} frames at {res.fps:.1f} fps, face in {res.face.mean():.0%}")
    for i in np.argsort(-np.nan_to_num(mean))[:8]:
        print(f"  {schema.MEDIAPIPE_NAMES[i]:<20} mean {mean[i]:.3f}")
    if a.png:
        plot_tracking(res, a.png)
        print(f"wrote {a.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
