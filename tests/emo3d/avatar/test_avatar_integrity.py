"""No tears, folds or holes on the default face: every shape at 1.0, random sparse combinations and
the basic-emotion faces at intensity 1.5 are rendered and checked

* for holes: background showing through inside the face's silhouette (a pure magenta background,
  the enclosed background pixels of the coverage mask), and
* for folds: a skin triangle whose normal turns more than 90 degrees from its rest normal.

Zero holes and zero folds in every case: the shapes are stretch-limited one by one (avatar.stretch) and
their combinations fitted jointly (avatar.compose) when the rig is built. The random combinations here use
other seeds than the fit's training poses.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from emo3d import schema

BG = (255, 0, 255)
SIZE = 256


@pytest.fixture(scope="module")
def rig(face_landmarker):
    from emo3d.avatar.default import default_rig
    return default_rig()


@pytest.fixture(scope="module")
def renderer(rig):
    """Renders the face without the scalp, ears and neck behind it, so a hole shows the background."""
    from emo3d.avatar.head import face_only
    from native.render import Renderer, RenderOptions
    return Renderer(face_only(rig), RenderOptions(width=SIZE, height=SIZE, background=BG))


def _skin(rig) -> np.ndarray:
    """The face's own triangles (MediaPipe's canonical mesh vertices only: no eyeball, teeth, mouth bag)."""
    from emo3d.avatar.mesh import canonical_mesh
    n_face = len(canonical_mesh().vertices)
    return rig.triangles[(rig.triangles < n_face).all(1)].astype(np.int64)


def _normals(V: np.ndarray, tris: np.ndarray) -> np.ndarray:
    V = V.astype(np.float64)
    return np.cross(V[..., tris[:, 1], :] - V[..., tris[:, 0], :], V[..., tris[:, 2], :] - V[..., tris[:, 0], :])


def holes(images: np.ndarray) -> np.ndarray:
    """[F,H,W,3] -> [F] number of background pixels enclosed by the rendered face."""
    out = []
    for im in images:
        bg = (im == np.array(BG, np.uint8)).all(-1)
        out.append(int((ndimage.binary_fill_holes(~bg) & bg).sum()))
    return np.asarray(out)


def folds(rig, W: np.ndarray) -> np.ndarray:
    """[F,52] weights -> [F] number of skin triangles whose normal turned over (> 90 deg from rest)."""
    tris = _skin(rig)
    n0 = _normals(rig.vertices, tris)
    n1 = _normals(rig.deform(W), tris)
    return ((n1 * n0[None]).sum(-1) < 0).sum(1)


def _measure(rig, renderer, W: np.ndarray):
    imgs = renderer.render(W)
    return holes(imgs if imgs.ndim == 4 else imgs[None]), folds(rig, W)


def _report(h, f, labels) -> dict:
    return {labels[i]: {"hole_px": int(h[i]), "folded_triangles": int(f[i])} for i in np.nonzero((h > 0) | (f > 0))[0]}


def _unit() -> np.ndarray:
    """Neutral, then every shape at 1.0; mouthClose over jawOpen at 1.0 (ARKit: the lips closed while
    the jaw is open; alone it pushes the lower lip through the upper one in every ARKit rig)."""
    W = np.zeros((schema.N_MODEL + 1, schema.N_MEDIAPIPE), np.float32)
    for k, n in enumerate(schema.MODEL_NAMES):
        W[k + 1, schema.MEDIAPIPE_INDEX[n]] = 1.0
    W[1 + schema.MODEL_INDEX["mouthClose"], schema.MEDIAPIPE_INDEX["jawOpen"]] = 1.0
    return W


def test_the_checks_catch_a_hole_and_a_fold(rig, renderer):
    """The detectors themselves: a rig whose chin is pushed through the mouth folds; a face with a
    triangle removed shows the background through the hole."""
    from emo3d.avatar.head import face_only
    from emo3d.avatar.rig import Rig
    from native.render import Renderer, RenderOptions
    tris = _skin(rig)
    face = face_only(rig)
    # a hole: drop the skin triangles around the nose tip (landmarks 4 and 1)
    keep = ~np.isin(face.triangles, (4, 1)).any(1)
    holed = Rig(rig.name, rig.vertices, face.triangles[keep], rig.target_names, rig.offsets, rig.indices,
                rig.values, uvs=rig.uvs, texture=rig.texture)
    img = Renderer(holed, RenderOptions(width=SIZE, height=SIZE, background=BG)).render(np.zeros(52))
    assert holes(img[None])[0] > 20
    assert holes(renderer.render(np.zeros(52))[None])[0] == 0
    # a fold: mirror the face's vertices top to bottom (every triangle turns over)
    flipped = rig.vertices.copy()
    flipped[:, 1] *= -1
    n0, n1 = _normals(rig.vertices, tris), _normals(flipped, tris)
    assert ((n0 * n1).sum(-1) < 0).mean() > 0.5


def test_every_shape_at_full_weight_has_no_hole_or_fold(rig, renderer):
    h, f = _measure(rig, renderer, _unit())
    bad = _report(h, f, ["neutral"] + list(schema.MODEL_NAMES))
    assert not bad, f"{len(bad)} shapes at 1.0 tear or fold: {bad}"


def test_basic_emotion_faces_at_intensity_1_5_have_no_hole_or_fold(rig, renderer):
    """The prototypes at 1.5 (weights clipped to [0, 1], the domain of the shapes)."""
    from emo3d import facs
    W = np.stack([np.clip(1.5 * np.asarray(facs.prototype(e), np.float32), 0, 1) for e in schema.EMOTIONS])
    assert len(W) == 8 and W.max() == 1.0
    h, f = _measure(rig, renderer, W.astype(np.float32))
    bad = _report(h, f, list(schema.EMOTIONS))
    assert not bad, f"emotion faces at 1.5 tear or fold: {bad}"


@pytest.mark.parametrize("seed", [11, 12])
def test_random_sparse_combinations_have_no_hole_or_fold(rig, renderer, seed):
    """200 random vectors of 1-4 shapes each at weights in [0.2, 1] per seed."""
    from emo3d.avatar.calibrate_probe import random_sparse
    W = random_sparse(200, seed=seed)
    labels = [", ".join(f"{schema.MEDIAPIPE_NAMES[j]}={W[i, j]:.2f}" for j in np.nonzero(W[i])[0])
              for i in range(len(W))]
    h, f = _measure(rig, renderer, W)
    bad = _report(h, f, labels)
    assert not bad, f"{len(bad)}/{len(W)} combinations tear or fold: {dict(list(bad.items())[:6])}"


def test_no_fold_in_many_more_combinations(rig):
    """Geometry only (no render): 2000 vectors of 1-4 shapes, half of the weights at 1.0, and every
    pair at full weight."""
    rng = np.random.default_rng(77)
    W = np.zeros((2000, schema.N_MEDIAPIPE), np.float32)
    for r in range(len(W)):
        idx = rng.choice(np.arange(1, schema.N_MEDIAPIPE), size=rng.integers(1, 5), replace=False)
        W[r, idx] = np.where(rng.random(len(idx)) < 0.5, 1.0, rng.uniform(0.0, 1.0, len(idx)))
    i, j = np.triu_indices(schema.N_MEDIAPIPE - 1, 1)
    P = np.zeros((len(i), schema.N_MEDIAPIPE), np.float32)
    P[np.arange(len(i)), i + 1] = P[np.arange(len(i)), j + 1] = 1.0
    for block in (W, P):
        f = folds(rig, block)
        assert (f == 0).all(), f"{int((f > 0).sum())}/{len(block)} fold, e.g. " + ", ".join(
            "+".join(schema.MEDIAPIPE_NAMES[k] for k in np.nonzero(block[r])[0]) for r in np.nonzero(f)[0][:4])


def test_the_shipped_combination_fit_matches_the_shapes():
    """The rig build applies data/compose.npz as shipped (a stale fit with a warning): re-authoring a
    shape or a new calibration must re-run ``python -m emo3d.avatar.default``."""
    from emo3d.avatar.compose import COMPOSE_PATH, _FINGERPRINT_TOL, fingerprint
    from emo3d.avatar.default import limited_shapes
    head, base, limited = limited_shapes()
    z = np.load(COMPOSE_PATH)
    err = float(np.sqrt(np.mean((z["fingerprint"] - fingerprint(base, limited, head.n_face)) ** 2)))
    assert err < _FINGERPRINT_TOL, f"{COMPOSE_PATH} is stale (fingerprint off by {err:.2g}): run python -m emo3d.avatar.default"
    assert z["change"].shape == (schema.N_MODEL, head.n_face, 3)
    assert 0 < np.abs(z["change"]).max() < 1.0          # cm: a correction, not a re-authoring


def test_compose_unfolds_two_shapes_that_fold_together():
    """A flat strip: shape 0 pushes column 1 right, shape 1 pushes column 2 left, each by 0.6 of the
    spacing: alone each squeezes the triangles between them to 40 %, together they turn them over.
    The fit keeps both shapes (still squeezing) and unfolds the pair."""
    from emo3d.avatar.compose import ComposeOptions, area_ratios, compose_shapes, skin_triangles
    from emo3d.avatar.mesh import Head
    nx, ny = 5, 3
    xs, ys = np.meshgrid(np.arange(nx, dtype=np.float32), np.arange(ny, dtype=np.float32))
    V = np.stack([xs.ravel(), ys.ravel(), np.zeros(nx * ny, np.float32)], 1)
    q = [(y * nx + x, y * nx + x + 1, (y + 1) * nx + x + 1, (y + 1) * nx + x) for y in range(ny - 1) for x in range(nx - 1)]
    F = np.asarray([t for a, b, c, d in q for t in ((a, b, c), (a, c, d))], np.int32)
    head = Head(V, np.zeros((len(V), 2), np.float32), F, len(V), {}, {})
    D = np.zeros((schema.N_MODEL, len(V), 3), np.float32)
    D[0, V[:, 0] == 1, 0] = 0.6
    D[1, V[:, 0] == 2, 0] = -0.6
    tris = skin_triangles(head)
    both = lambda D: area_ratios(V, tris, V[None] + D[0] + D[1])[0]   # noqa: E731
    assert both(D).min() < 0
    res = compose_shapes(head, V, D, ComposeOptions(n_random=200, triples=False, iters=60))
    assert res.folded_before > 0 and res.folded_after == 0
    assert both(res.deltas).min() > 0
    assert res.deltas[0, V[:, 0] == 1, 0].min() > 0.2 and res.deltas[1, V[:, 0] == 2, 0].max() < -0.2


def test_stretch_limits_are_validated():
    from emo3d.avatar.stretch import StretchLimits
    from emo3d.errors import InvalidInputError
    assert StretchLimits().regions["lips"][0] > 0
    with pytest.raises(InvalidInputError, match="lips"):
        StretchLimits(regions={"lips": (1.2, 2.0), "lids": (0.4, 3.0), "brows": (0.5, 2.0), "skin": (0.5, 2.0)})
    with pytest.raises(InvalidInputError, match="exactly"):
        StretchLimits(regions={"lips": (0.5, 2.0)})
    with pytest.raises(InvalidInputError, match="iters"):
        StretchLimits(iters=-1)


def test_the_rest_pose_needs_no_stretch_correction_and_far_shapes_leave_the_lips_still():
    """The rest pose closes the lips, which turns a few of the mouth's opening triangles over already;
    the limits take that as the floor, so they correct nothing at rest (before, every shape "repaired"
    the rest pose: a brow or gaze shape moved the inner lip 0.2-0.3 cm sideways). A rest pose whose
    lips cross further is still corrected."""
    from emo3d.avatar import mesh as M
    from emo3d.avatar.default import limited_shapes
    from emo3d.avatar.stretch import SkinConstraints, StretchLimits
    head, base, limited = limited_shapes()
    c = SkinConstraints(head, base, StretchLimits())
    corr, n_bad = c.corrections(base[None].astype(np.float64))
    assert int(n_bad[0]) == 0 and float(np.abs(corr).max()) == 0.0
    crossed = base.astype(np.float64).copy()
    crossed[list(M.LIP_LOWER_RINGS[3][1:-1]), 1] += 0.4          # the lower lip's inner edge through the upper one
    assert int(c.corrections(crossed[None])[1][0]) > 0
    lips = sorted({i for r in M.LIP_UPPER_RINGS + M.LIP_LOWER_RINGS for i in r})
    for name in ("browInnerUp", "browDownLeft", "eyeLookOutRight", "eyeBlinkLeft", "eyeWideRight"):
        moved = float(np.abs(limited[schema.MODEL_INDEX[name]][lips]).max())
        assert moved < 1e-6, f"{name} moves the lips by {moved:.3f} cm"
