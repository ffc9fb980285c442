"""The shipped default face meets issue 14's MediaPipe floors on the full path (rig -> 256² render ->
FaceLandmarker), as ``python -m emo3d.avatar.calibrate --report-only`` measures them: the neutral face reads
every shape <= 0.25, at least 42 of the 51 shapes rise >= 0.25 from neutral when alone at 1.0 (mouthClose over
jawOpen), and the sided shapes read their own side higher than the other for at least 38 of 40 (cheekSquint and
noseSneer are unreadable by MediaPipe: ~1e-7 either way)."""
from __future__ import annotations

import numpy as np
import pytest

from emo3d import schema


@pytest.fixture(scope="module")
def readings(face_landmarker):
    from emo3d.avatar.calibrate_probe import unit_batch
    from emo3d.avatar.default import default_rig
    from emo3d.avatar.scorer import FaceScorer
    from native.render import Renderer, RenderOptions
    W = unit_batch()
    r = Renderer(default_rig(), RenderOptions(width=256, height=256))
    imgs = np.concatenate([r.render(W[i:i + 32]) for i in range(0, len(W), 32)])
    with FaceScorer("image") as s:
        S = [s.scores(im) for im in imgs]
    assert all(x is not None for x in S), "FaceLandmarker found no face in a render"
    return np.asarray(S)


def test_the_neutral_face_reads_neutral(readings):
    base = readings[0, 1:]
    worst = schema.MEDIAPIPE_NAMES[1 + int(base.argmax())]
    assert base.max() <= 0.25, f"the neutral face reads {worst} {base.max():.3f}"


def test_at_least_42_shapes_rise_and_their_own_side_reads_higher(readings):
    from emo3d.avatar.calibrate_probe import mirror
    rise = {n: float(readings[i, i] - readings[0, i]) for n, i in
            ((n, schema.MEDIAPIPE_INDEX[n]) for n in schema.MODEL_NAMES)}
    low = {n: round(v, 3) for n, v in rise.items() if v < 0.25}
    assert len(rise) - len(low) >= 42, f"only {len(rise) - len(low)}/51 rise >= 0.25; below: {low}"
    ix = schema.MEDIAPIPE_INDEX
    wrong = [n for n in schema.MODEL_NAMES if mirror(n) and readings[ix[n], ix[n]] <= readings[ix[n], ix[mirror(n)]]]
    assert len(wrong) <= 2, f"the other side reads higher for {wrong}"
