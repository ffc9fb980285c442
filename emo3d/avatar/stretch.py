"""Stretch limits of the default avatar's skin, applied when the rig is authored (never at render time).

Every skin triangle of the face keeps its orientation (no fold, no tear) and its principal stretches
within per-region limits (lips, lids, brows, the rest of the skin) for every shape at its shipped
gain. The triangles that span the eye and mouth openings (the canonical mesh's, dropped from the
head) may collapse (a blink, closed lips) but never turn over (further than the rest pose's closed lips
already turn a few of them), so the lids and the lips never cross.

The projection is position-based strain limiting: each violating triangle is replaced by the nearest
triangle with clamped singular values (turned back over when folded) and the vertices move to the
average of their triangles' goals (Jacobi), until no triangle violates its limits.
Combinations of shapes are linear blends of the limited shapes and are not projected (see the
integrity tests for what they measure).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.options import check_int

from . import mesh as M
from .authoring import BROW, LID2, LID3, LOWLID2
from .mesh import Head

__all__ = ["StretchLimits", "SkinConstraints", "limit_shapes", "skin_regions", "opening_triangles"]

REGIONS = ("lips", "lids", "brows", "skin")


@dataclass(frozen=True)
class StretchLimits:
    """Per region (lo, hi): the smallest and largest principal stretch a skin triangle may take.

    Lips and lids sit between an opening and the skin and fold first, so they may compress less.
    """

    regions: Dict[str, Tuple[float, float]] = field(default_factory=lambda: {
        "lips": (0.5, 2.4), "lids": (0.4, 3.2), "brows": (0.55, 2.0), "skin": (0.45, 2.6)})
    iters: int = 1500

    def __post_init__(self) -> None:
        if set(self.regions) != set(REGIONS):
            raise InvalidInputError(f"StretchLimits.regions must name exactly {', '.join(REGIONS)}; "
                                    f"got {', '.join(sorted(self.regions))}")
        for k, (lo, hi) in self.regions.items():
            if not 0.0 < lo < 1.0 < hi:
                raise InvalidInputError(f"StretchLimits.regions[{k!r}] must be (lo, hi) with 0 < lo < 1 < hi, "
                                        f"got {(lo, hi)}")
        check_int(self.iters, "StretchLimits.iters", 0)


def skin_regions(head: Head) -> Dict[str, np.ndarray]:
    """The head's skin triangles (face vertices only) by region: {region: bool [F]}."""
    tris = head.triangles
    skin = (tris < head.n_face).all(1)
    lips = {i for r in M.LIP_UPPER_RINGS + M.LIP_LOWER_RINGS for i in r}
    lids = set(M.EYE_LEFT_UPPER + M.EYE_LEFT_LOWER + M.EYE_RIGHT_UPPER + M.EYE_RIGHT_LOWER
               + LID2["left"] + LID2["right"] + LOWLID2["left"] + LOWLID2["right"])
    brows = {i for s in BROW.values() for part in s.values() for i in part} | set(LID3["left"] + LID3["right"])
    touches = lambda s: np.isin(tris, sorted(s)).any(1) & skin  # noqa: E731
    out = {"lips": touches(lips)}
    out["lids"] = touches(lids) & ~out["lips"]
    out["brows"] = touches(brows) & ~out["lids"] & ~out["lips"]
    out["skin"] = skin & ~out["lips"] & ~out["lids"] & ~out["brows"]
    return out


def opening_triangles(head: Head, mesh=None) -> Tuple[np.ndarray, np.ndarray]:
    """The canonical mesh's triangles across the eye and mouth openings (not in the head) and their
    orientation in the image plane on the canonical mesh (+1/-1)."""
    m = mesh or M.canonical_mesh()
    have = {tuple(sorted(t)) for t in head.triangles[(head.triangles < head.n_face).all(1)].tolist()}
    t = np.asarray([t for t in m.triangles.tolist() if tuple(sorted(t)) not in have], np.int64).reshape(-1, 3)
    P = m.vertices[t][:, :, :2].astype(np.float64)
    return t, np.sign(_cross2(P[:, 1] - P[:, 0], P[:, 2] - P[:, 0]))


def _cross2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z of the cross product of 2-D vectors [..., 2]."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _edges_normals(P: np.ndarray):
    """[..., 3(corners), 3] -> edge matrix [..., 3, 2] and unit normal [..., 3]."""
    e = np.stack([P[..., 1, :] - P[..., 0, :], P[..., 2, :] - P[..., 0, :]], -1)
    n = np.cross(e[..., 0], e[..., 1])
    return e, n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


class SkinConstraints:
    """The rest frames of the skin triangles and the openings; :meth:`corrections` projects poses."""

    def __init__(self, head: Head, rest: np.ndarray, limits: StretchLimits):
        regions = skin_regions(head)
        mask = np.zeros(len(head.triangles), bool)
        lo = np.zeros(len(head.triangles))
        hi = np.zeros(len(head.triangles))
        for name, m in regions.items():
            mask |= m
            lo[m], hi[m] = limits.regions[name]
        self.tris = head.triangles[mask].astype(np.int64)
        self.lo, self.hi = lo[mask], hi[mask]
        self.n_vertices = len(rest)
        X = rest.astype(np.float64)
        E0, self.N0 = _edges_normals(X[self.tris])
        t1 = E0[:, :, 0] / np.maximum(np.linalg.norm(E0[:, :, 0], axis=1, keepdims=True), 1e-12)
        t2 = np.cross(self.N0, t1)
        Dm = np.stack([np.einsum("fk,fkj->fj", t1, E0), np.einsum("fk,fkj->fj", t2, E0)], 1)   # [F,2,2]
        self.Dm_inv = np.linalg.inv(Dm)
        C0 = np.stack([np.zeros((len(self.tris), 2)), Dm[:, :, 0], Dm[:, :, 1]], 1)
        self.C0 = C0 - C0.mean(1, keepdims=True)                                               # [F,3,2]
        self.open_tris, self.open_sign = opening_triangles(head)
        # the rest pose closes the lips, which turns a few of the mouth's opening triangles over already: each may
        # not turn over further than it is at rest (else every shape would "repair" the rest pose's inner lip)
        self.open_floor = np.minimum(self._open_areas(X[None])[0], 0.0) - 1e-4

    def _open_areas(self, x: np.ndarray) -> np.ndarray:
        """Poses [B,V,3] -> [B,O] the opening triangles' areas in the image plane (< 0: turned over)."""
        Q = x[:, self.open_tris][..., :2]                                     # [B,O,3,2]
        return _cross2(Q[..., 1, :] - Q[..., 0, :], Q[..., 2, :] - Q[..., 0, :]) * self.open_sign

    def corrections(self, x: np.ndarray):
        """Poses [B,V,3] -> (vertex corrections [B,V,3] (Jacobi averages), number violating [B])."""
        B = len(x)
        lo = self.lo
        P = x[:, self.tris]                                                   # [B,F,3,3]
        E, N = _edges_normals(P)
        F = E @ self.Dm_inv                                                   # [B,F,3,2]
        U, s, Vt = np.linalg.svd(F, full_matrices=False)
        flipped = (N * self.N0).sum(-1) < 0
        bad = flipped | (s[..., 1] < lo - 1e-4) | (s[..., 0] > self.hi + 1e-4)
        acc = np.zeros_like(x)
        cnt = np.zeros(x.shape[:2])
        bi, fi = np.nonzero(bad)
        if len(bi):
            Ub, sb = U[bi, fi].copy(), s[bi, fi]
            Ub[flipped[bi, fi], :, 1] *= -1                  # turn a folded triangle back over
            sb = np.clip(sb, lo[fi, None], self.hi[fi, None])
            Fp = Ub @ (sb[:, :, None] * Vt[bi, fi])                           # [K,3,2]
            Pk = P[bi, fi]
            goal = Pk.mean(1)[:, None, :] + np.einsum("kij,kcj->kci", Fp, self.C0[fi])
            flat = (bi[:, None] * self.n_vertices + self.tris[fi]).ravel()
            np.add.at(acc.reshape(-1, 3), flat, (goal - Pk).reshape(-1, 3))
            np.add.at(cnt.reshape(-1), flat, 1)
        n_bad = bad.sum(1)
        bi, oi = np.nonzero(self._open_areas(x) < self.open_floor[None])
        if len(bi):
            # a turned-over opening triangle collapses toward its centroid in the image plane
            Pk = x[bi[:, None], self.open_tris[oi]]
            goal = Pk + 0.5 * (Pk.mean(1, keepdims=True) - Pk) * np.array([1.0, 1.0, 0.0])
            flat = (bi[:, None] * self.n_vertices + self.open_tris[oi]).ravel()
            np.add.at(acc.reshape(-1, 3), flat, (goal - Pk).reshape(-1, 3))
            np.add.at(cnt.reshape(-1), flat, 1)
            n_bad = n_bad + np.bincount(bi, minlength=B)
        m = cnt > 0
        acc[m] /= cnt[m][:, None]
        return acc, n_bad


def _singles(c: SkinConstraints, rest: np.ndarray, D: np.ndarray, iters: int, under: np.ndarray) -> np.ndarray:
    """Project every shape on its own (on top of ``under`` [T,V,3], the pose it is used over), all
    shapes as one batch (a converged shape leaves it)."""
    x = rest[None] + under + D
    active = np.arange(len(D))
    for _ in range(iters):
        corr, n_bad = c.corrections(x[active])
        keep = n_bad > 0
        if not keep.any():
            break
        active = active[keep]
        x[active] += corr[keep]
    return x - rest[None] - under


def limit_shapes(head: Head, rest: np.ndarray, deltas: np.ndarray, limits: StretchLimits | None = None,
                 *, names=(), used_over: Dict[str, str] | None = None) -> np.ndarray:
    """Deltas [T,V,3] (at their shipped gains) -> stretch-limited deltas (see module doc).

    ``used_over`` {shape: base} (shape names from ``names``): a shape that only makes sense on top
    of another at the same weight (ARKit's mouthClose over jawOpen) is limited in that pose.

    The eyeballs and the mouth interior are rigid parts with no skin triangle: left as they are."""
    limits = limits or StretchLimits()
    c = SkinConstraints(head, rest, limits)
    X = rest.astype(np.float64)
    D = deltas.astype(np.float64)
    used_over = used_over or {}
    dep = [list(names).index(s) for s in used_over]
    solo = [t for t in range(len(D)) if t not in dep]
    D[solo] = _singles(c, X, D[solo], limits.iters, np.zeros_like(D[solo]))
    if dep:
        under = np.stack([D[list(names).index(b)] for b in used_over.values()])
        D[dep] = _singles(c, X, D[dep], limits.iters, under)
    return D.astype(np.float32)
