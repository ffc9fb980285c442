"""Landmark-space refinement of authored shapes through MediaPipe's blendshape model
(``face_blendshapes.tflite``, input [1,146,2] landmark pixels): the fast inner loop of
``avatar.calibrate``.

For a shape whose authored field reads weakly, a small 2-D correction of the landmarks inside the
shape's own region is found by finite-difference ascent on the proxy score (own score up, other
shapes held down, small corrections preferred). The correction is stored per MediaPipe landmark in
rig units (``calibration.json`` → ``corrections``) and spread to the mesh with a Gaussian falloff
that never mixes the upper and lower lip or lid (see :func:`correction_field`).
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from emo3d import schema

from . import mesh as M

__all__ = ["BLENDSHAPE_SUBSET", "ProxyScorer", "correction_field", "refine_shape"]

# the 146 landmark indices MediaPipe's blendshape model reads (face_blendshapes_graph.cc)
BLENDSHAPE_SUBSET = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67,
    70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148,
    149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191,
    195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297,
    300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374,
    375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415,
    454, 466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477)
MESH_SUBSET = np.array([i for i in BLENDSHAPE_SUBSET if i < 468])
_POS = {i: k for k, i in enumerate(BLENDSHAPE_SUBSET)}


class ProxyScorer:
    """MediaPipe's blendshape model on landmark pixels [146,2] -> [52] scores."""

    def __init__(self, bundle=None):
        from ai_edge_litert.interpreter import Interpreter

        from .bundle import BLENDSHAPES_MEMBER, read_member
        self.interp = Interpreter(model_content=read_member(BLENDSHAPES_MEMBER, bundle))
        self.interp.allocate_tensors()
        self.i = self.interp.get_input_details()[0]["index"]
        self.o = self.interp.get_output_details()[0]["index"]

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        self.interp.set_tensor(self.i, np.asarray(pts, np.float32).reshape(1, 146, 2))
        self.interp.invoke()
        return np.array(self.interp.get_tensor(self.o)).reshape(-1)


def _groups(n_face: int) -> np.ndarray:
    """Per face vertex: 1 upper lip, 2 lower lip, 3/4 right upper/lower lid, 5/6 left upper/lower lid, 0 other."""
    g = np.zeros(n_face, np.int64)
    for r in M.LIP_UPPER_RINGS:
        g[list(r[1:-1])] = 1
    for r in M.LIP_LOWER_RINGS:
        g[list(r[1:-1])] = 2
    g[list(M.EYE_RIGHT_UPPER[1:-1]) + [247, 30, 29, 27, 28, 56, 190]] = 3
    g[list(M.EYE_RIGHT_LOWER[1:-1])] = 4
    g[list(M.EYE_LEFT_UPPER[1:-1]) + [467, 260, 259, 257, 258, 286, 414]] = 5
    g[list(M.EYE_LEFT_LOWER[1:-1])] = 6
    return g


def correction_field(vertices: np.ndarray, n_face: int, corr: Dict[int, np.ndarray], sigma: float = 0.45):
    """Spread per-landmark corrections {mesh index: [dx, dy]} (rig units) to [V,3] deltas."""
    d = np.zeros((len(vertices), 3), np.float64)
    if not corr:
        return d
    src = np.array(sorted(corr))
    val = np.array([corr[i] for i in src], np.float64)
    F = vertices[:n_face].astype(np.float64)
    g = _groups(n_face)
    d2 = ((F[:, None, :] - F[src][None]) ** 2).sum(-1)
    w = np.exp(-0.5 * d2 / sigma ** 2)
    same = (g[:, None] == g[src][None]) | (g[:, None] == 0) & (g[src][None] == 0)
    lipish = (g[:, None] == 0) & (g[src][None] > 0)
    w = np.where(same, w, np.where(lipish, 0.5 * w, 0.0))
    tot = w.sum(1, keepdims=True)
    interp = (w @ val) / np.maximum(tot, 1e-9)
    reach = np.clip(tot, 0, 1)                         # fades out away from every source
    d[:n_face, :2] = interp * reach
    d[src, :2] = val
    return d


def refine_shape(proxy: ProxyScorer, base_px: np.ndarray, shape_px: np.ndarray, name: str, region: np.ndarray,
                 *, steps: int = 12, step_px: float = 1.5, max_px: float = 6.0, amplify: float = 1.0,
                 log=None) -> Optional[np.ndarray]:
    """Finite-difference ascent of a 2-D correction [146,2] on landmarks in ``region`` (bool [146]).

    ``base_px``: neutral landmarks (pixels), ``shape_px``: landmarks of the authored shape at weight 1.
    Returns the correction in pixels (zeros outside the region) times ``amplify`` (FaceLandmarker
    follows a mesh displacement only partly), or None when nothing improved.
    """
    i = schema.MEDIAPIPE_INDEX[name]
    mirror = None
    if name.endswith("Left"):
        mirror = schema.MEDIAPIPE_INDEX[name[:-4] + "Right"]
    elif name.endswith("Right"):
        mirror = schema.MEDIAPIPE_INDEX[name[:-5] + "Left"]
    s_base = proxy(base_px)
    others = np.ones(schema.N_MEDIAPIPE, bool)
    others[[0, i]] = False

    def objective(c):
        s = proxy(shape_px + c)
        pen = np.maximum(s[others] - np.maximum(s_base[others], 0.1) - 0.15, 0).sum()
        if mirror is not None:
            pen += 2 * max(s[mirror] - s[i] + 0.1, 0)
        return min(s[i], 0.95) - 0.5 * pen - 0.002 * float((c ** 2).sum()) / max(region.sum(), 1), s[i]

    idx = np.nonzero(region)[0]
    c = np.zeros((146, 2), np.float32)
    f0, s0 = objective(c)
    best = (f0, c.copy(), s0)
    h = 0.5
    for step in range(steps):
        f, _ = objective(c)
        grad = np.zeros_like(c)
        for k in idx:
            for ax in (0, 1):
                c[k, ax] += h
                fp, _ = objective(c)
                c[k, ax] -= h
                grad[k, ax] = (fp - f) / h
        gn = np.abs(grad).max()
        if gn < 1e-6:
            break
        c = np.clip(c + step_px * grad / gn, -max_px, max_px)
        f, s = objective(c)
        if f > best[0]:
            best = (f, c.copy(), s)
        if s >= 0.95:
            break
    if log:
        log(f"refine {name}: proxy {s0:.2f} -> {best[2]:.2f}")
    return best[1] * amplify if best[2] > s0 + 0.05 else None
