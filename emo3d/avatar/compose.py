"""The default avatar's shapes compose without folds: a joint fit of the deltas over sampled combinations,
applied when the rig is built (after :mod:`.stretch`, never at render time).

The stretch limits keep every shape clean on its own, but a linear rig adds deltas: two shapes that each
compress the same lip triangle by half turn it over together, and mouthClose (ARKit: the lips closed
over jawOpen) pushes the lower lip through the upper one on its own. Here the deltas change as little
and as smoothly as they can (a Laplacian term over the skin) until every skin triangle keeps a projected
area of at least ``margin`` of its rest area, in its rest plane, in every pose of a fixed training set:
every shape alone, every pair at full weight, the basic-emotion prototypes up to intensity 2 (weights
clipped to [0, 1]) and ``n_random`` random sparse combinations (1..``max_active`` shapes, weights in
[0, 1]). The margin keeps poses between the training ones unfolded (the fold test uses other seeds).

Only the face's skin vertices change; the eyeballs and the mouth interior keep their deltas.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import numpy as np
from scipy import optimize, sparse

from emo3d import facs, schema
from emo3d.options import check_int, check_number

from . import mesh as M
from .mesh import Head

__all__ = ["ComposeOptions", "ComposeResult", "training_poses", "compose_shapes", "skin_triangles", "compose_default",
           "write_fit", "fingerprint", "COMPOSE_PATH",
           "area_ratios"]


@dataclass(frozen=True)
class ComposeOptions:
    margin: float = 0.08        # smallest projected area / rest area of a skin triangle in a training pose
    n_random: int = 20000
    max_active: int = 6
    seed: int = 1414
    iters: int = 80             # L-BFGS iterations per round at most
    rounds: int = 8             # active-set rounds at most
    max_fit_poses: int = 2000   # poses below the margin fitted per round at most
    triples: bool = True        # every triple of shapes at full weight
    smooth: float = 20.0        # weight of the Laplacian of the change against its size
    stiffness: float = 3e3      # weight of the margin violations in the first round
    frozen: Tuple[str, ...] = ("eyeBlinkLeft", "eyeBlinkRight")   # shapes kept as they are (a blink covers the eye)
    pin: float = 100.0          # how much harder the lid loops' vertices resist a change
    stiffen: float = 3.0        # ... times this each further round

    def __post_init__(self) -> None:
        check_number(self.margin, "ComposeOptions.margin", 0.0, 0.5)
        check_int(self.n_random, "ComposeOptions.n_random", 0)
        check_int(self.max_active, "ComposeOptions.max_active", 1, schema.N_MODEL)
        check_int(self.seed, "ComposeOptions.seed", 0)
        check_int(self.iters, "ComposeOptions.iters", 0)
        check_int(self.rounds, "ComposeOptions.rounds", 1)
        check_int(self.max_fit_poses, "ComposeOptions.max_fit_poses", 2)
        check_number(self.smooth, "ComposeOptions.smooth", 0.0)
        check_number(self.stiffness, "ComposeOptions.stiffness", 0.0, lo_open=True)
        check_number(self.stiffen, "ComposeOptions.stiffen", 1.0)
        check_number(self.pin, "ComposeOptions.pin", 1.0)


@dataclass(frozen=True)
class ComposeResult:
    deltas: np.ndarray          # [T,V,3] float32
    folded_before: int          # training poses with a turned-over skin triangle, before / after
    folded_after: int
    min_ratio: float            # smallest area ratio over the training poses after the fit
    iterations: int


def skin_triangles(head: Head) -> np.ndarray:
    """The face's skin triangles (face vertices only) [F,3] int64."""
    return head.triangles[(head.triangles < head.n_face).all(1)].astype(np.int64)


def training_poses(opts: ComposeOptions) -> np.ndarray:
    """[P,51] weights in MODEL_NAMES order (see module doc); deterministic."""
    T = schema.N_MODEL
    rows = [np.eye(T, dtype=np.float32)]
    i, j = np.triu_indices(T, 1)
    pairs = np.zeros((len(i), T), np.float32)
    pairs[np.arange(len(i)), i] = 1.0
    pairs[np.arange(len(i)), j] = 1.0
    rows.append(pairs)
    if opts.triples:
        i, j, k = np.array([c for c in _triples(T)]).T
        tri = np.zeros((len(i), T), np.float32)
        for a in (i, j, k):
            tri[np.arange(len(i)), a] = 1.0
        rows.append(tri)
    emo = [np.clip(k * facs.prototype(e)[1:], 0.0, 1.0) for e in schema.EMOTIONS for k in (1.0, 1.5, 2.0)]
    rows.append(np.asarray(emo, np.float32))
    rng = np.random.default_rng(opts.seed)
    R = np.zeros((opts.n_random, T), np.float32)
    for r in range(opts.n_random):
        k = rng.integers(1, opts.max_active + 1)
        idx = rng.choice(T, size=k, replace=False)
        R[r, idx] = rng.uniform(0.0, 1.0, size=k)
        if rng.random() < 0.5:                      # half at full weight: the corners of the box fold first
            R[r, idx] = np.where(rng.random(k) < 0.5, 1.0, R[r, idx])
    rows.append(R)
    return np.concatenate(rows)


def _triples(n: int):
    from itertools import combinations
    return combinations(range(n), 3)


def _rest_frame(X: np.ndarray, tris: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    n0 = np.cross(X[tris[:, 1]] - X[tris[:, 0]], X[tris[:, 2]] - X[tris[:, 0]])
    a0 = np.linalg.norm(n0, axis=1)
    return n0 / np.maximum(a0, 1e-12)[:, None], np.maximum(a0, 1e-12)


def area_ratios(rest: np.ndarray, tris: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """[P,V,3] posed vertices -> [P,F] projected area in the rest plane / rest area (< 0: turned over)."""
    u0, a0 = _rest_frame(rest.astype(np.float64), tris)
    x = poses.astype(np.float64)
    n = np.cross(x[:, tris[:, 1]] - x[:, tris[:, 0]], x[:, tris[:, 2]] - x[:, tris[:, 0]])
    return (n * u0).sum(-1) / a0


def _laplacian(tris: np.ndarray, n: int) -> sparse.csr_matrix:
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    e = np.unique(np.sort(e, 1), axis=0)
    A = sparse.coo_matrix((np.ones(2 * len(e)), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), (n, n)).tocsr()
    A.data[:] = 1.0
    deg = np.asarray(A.sum(1)).ravel()
    return (sparse.identity(n) - sparse.diags(1.0 / np.maximum(deg, 1.0)) @ A).tocsr()


def _screen(X, D, W, tris, u0, a0, chunk: int = 2048) -> np.ndarray:
    """[P,F] area ratios of the poses W [P,T] (chunked)."""
    T, nf = D.shape[:2]
    out = np.empty((len(W), len(tris)))
    flat = D.reshape(T, -1)
    for s in range(0, len(W), chunk):
        x = (X.reshape(1, -1) + W[s:s + chunk] @ flat).reshape(-1, nf, 3)
        n = np.cross(x[:, tris[:, 1]] - x[:, tris[:, 0]], x[:, tris[:, 2]] - x[:, tris[:, 0]])
        out[s:s + chunk] = (n * u0).sum(-1) / a0
    return out


def compose_shapes(head: Head, rest: np.ndarray, deltas: np.ndarray,
                   opts: ComposeOptions | None = None, log=lambda s: None,
                   start: np.ndarray | None = None) -> ComposeResult:
    """Deltas [51,V,3] (MODEL_NAMES order, gains applied, stretch-limited) -> the jointly fitted deltas.

    Active set: each round screens all training poses and fits on the poses and triangles near the
    margin (the others cannot fold from a small change); rounds end when no pose is below it."""
    opts = opts or ComposeOptions()
    nf = head.n_face
    tris = skin_triangles(head)
    X = rest[:nf].astype(np.float64)
    D0 = deltas[:, :nf].astype(np.float64)
    T = len(D0)
    W_all = training_poses(opts).astype(np.float64)
    u0_all, a0_all = _rest_frame(X, tris)
    L = _laplacian(tris, nf)
    LtL = (L.T @ L).tocsr()
    m = opts.margin
    pin = np.ones((1, nf, 1))
    pin[0, [i for i in M.EYE_LEFT_UPPER + M.EYE_LEFT_LOWER + M.EYE_RIGHT_UPPER + M.EYE_RIGHT_LOWER if i < nf]] = opts.pin
    before = int((_screen(X, D0, W_all, tris, u0_all, a0_all) < 0).any(1).sum())
    dD = np.zeros_like(D0) if start is None else start.astype(np.float64)   # e.g. an older fit's change
    frozen = [schema.MODEL_INDEX[n] for n in opts.frozen]
    dD[frozen] = 0.0
    g = _screen(X, D0 + dD, W_all, tris, u0_all, a0_all)
    nit = 0
    for rnd in range(opts.rounds):
        gmin = g.min(1)
        below = np.nonzero(gmin < m)[0]
        if not len(below):
            break
        rng = np.random.default_rng(opts.seed + rnd)
        if len(below) > opts.max_fit_poses:      # the worst half and a random half of the rest
            worst = below[np.argsort(gmin[below])[:opts.max_fit_poses // 2]]
            rest_ = np.setdiff1d(below, worst)
            below = np.r_[worst, rng.choice(rest_, opts.max_fit_poses - len(worst), replace=False)]
        near = np.nonzero(gmin < 2.5 * m)[0]
        near = rng.choice(near, min(len(near), opts.max_fit_poses // 4), replace=False)
        near_p = np.zeros(len(g), bool)
        near_p[below] = True
        near_p[near] = True
        W = W_all[near_p]
        near_f = (g[near_p] < 0.5).any(0)
        tr = tris[near_f]
        verts = np.unique(tr)
        remap = np.full(nf, -1)
        remap[verts] = np.arange(len(verts))
        ta, tb, tc = remap[tr[:, 0]], remap[tr[:, 1]], remap[tr[:, 2]]
        u0, a0 = u0_all[near_f], a0_all[near_f]
        log(f"compose round {rnd}: {int((g < 0).any(1).sum())} poses fold, {int((g < m).any(1).sum())} below the "
            f"margin; fitting {len(W)} poses x {len(tr)} triangles")
        Xs = X[verts]
        Ds = D0[:, verts]

        k = opts.stiffness * opts.stiffen ** rnd          # the margin weighs more each round

        def fun(z: np.ndarray):
            d = z.reshape(T, nf, 3)
            x = (Xs.reshape(1, -1) + W @ (Ds + d[:, verts]).reshape(T, -1)).reshape(len(W), len(verts), 3)
            xa, xb, xc = x[:, ta], x[:, tb], x[:, tc]
            gg = (np.cross(xb - xa, xc - xa) * u0).sum(-1) / a0                  # [P,F]
            v = np.maximum(m - gg, 0.0)
            pi, fi = np.nonzero(v)
            f = k * float((v[pi, fi] ** 2).sum())
            G = np.zeros_like(x)
            if len(pi):
                c = (-2.0 * k * v[pi, fi] / a0[fi])[:, None]       # d f / d (n . u0)
                u = u0[fi]
                gb = np.cross(xc[pi, fi] - xa[pi, fi], u)
                gc = np.cross(u, xb[pi, fi] - xa[pi, fi])
                np.add.at(G, (pi, tb[fi]), c * gb)
                np.add.at(G, (pi, tc[fi]), c * gc)
                np.add.at(G, (pi, ta[fi]), -c * (gb + gc))
            grad = np.zeros((T, nf, 3))
            grad[:, verts] = (W.T @ G.reshape(len(W), -1)).reshape(T, len(verts), 3)
            # the change: small (the lid loops pinned: a blink still closes the eye) and smooth
            f += float((pin * d ** 2).sum())
            grad += 2.0 * pin * d
            Ld = np.stack([LtL @ d[t] for t in range(T)])
            f += opts.smooth * float((d * Ld).sum())
            grad += 2.0 * opts.smooth * Ld
            grad[frozen] = 0.0
            return f, grad.ravel()

        res = optimize.minimize(fun, dD.ravel(), jac=True, method="L-BFGS-B",
                                options={"maxiter": opts.iters, "maxcor": 20})
        dD = res.x.reshape(T, nf, 3)
        nit += int(res.nit)
        g = _screen(X, D0 + dD, W_all, tris, u0_all, a0_all)
    out = deltas.astype(np.float32).copy()
    out[:, :nf] = (D0 + dD).astype(np.float32)
    return ComposeResult(out, before, int((g < 0).any(1).sum()), float(g.min()), nit)


# --- the shipped fit -------------------------------------------------------------------------------
# The fit takes minutes, so the rig build applies a shipped one (``data/compose.npz``: the change of the
# face's deltas and a fingerprint of the deltas it was fitted on); ``python -m emo3d.avatar.default`` (and
# ``calibrate --write``) refit it, warm-started from the last one.
COMPOSE_PATH = Path(__file__).with_name("data") / "compose.npz"
_FINGERPRINT_DIM = 64
_FINGERPRINT_TOL = 1e-3          # cm (rms of a random unit projection); any real re-authoring moves it more


def fingerprint(rest: np.ndarray, deltas: np.ndarray, n_face: int) -> np.ndarray:
    """[64] random projections of the face's rest pose and deltas (seeded, float64)."""
    z = np.concatenate([rest[:n_face].ravel(), deltas[:, :n_face].ravel()]).astype(np.float64)
    R = np.random.default_rng(20141).standard_normal((_FINGERPRINT_DIM, z.size)) / np.sqrt(z.size)
    return R @ z


def compose_default(head: Head, rest: np.ndarray, deltas: np.ndarray, path: Path | None = None,
                    log=lambda s: None) -> np.ndarray:
    """The default rig's composed deltas: the shipped change (``data/compose.npz``); when it was fitted on
    other deltas (a new calibration or authoring without ``python -m emo3d.avatar.default``) it is still
    applied, with a warning (the integrity tests fail on a stale fit); with no shipped fit of this shape,
    :func:`compose_shapes` now (minutes)."""
    import warnings
    p = Path(path) if path else COMPOSE_PATH
    if p.is_file():
        z = np.load(p, allow_pickle=False)
        change = z["change"]
        if change.shape == (len(deltas), head.n_face, 3):
            err = float(np.sqrt(np.mean((z["fingerprint"] - fingerprint(rest, deltas, head.n_face)) ** 2)))
            if err >= _FINGERPRINT_TOL:
                warnings.warn(f"{p} was fitted on other shapes (fingerprint off by {err:.2g}); applied as is: "
                              "run python -m emo3d.avatar.default", RuntimeWarning, stacklevel=2)
            out = deltas.astype(np.float32).copy()
            out[:, :head.n_face] += change.astype(np.float32)
            return out
    log(f"no fit of these shapes in {p}; fitting the combinations now (minutes)")
    return compose_shapes(head, rest, deltas, log=log).deltas


def write_fit(head: Head, rest: np.ndarray, deltas: np.ndarray, path: Path | None = None,
              opts: ComposeOptions | None = None, log=print) -> ComposeResult:
    """Fit and write ``data/compose.npz`` (complete or absent)."""
    from emo3d.io import atomic_path
    p = Path(path) if path else COMPOSE_PATH
    old = np.load(p)["change"] if p.is_file() else None       # warm start from the last fit
    if old is not None and old.shape != (len(deltas), head.n_face, 3):
        old = None
    res = compose_shapes(head, rest, deltas, opts, log=log, start=old)
    change = (res.deltas[:, :head.n_face] - deltas[:, :head.n_face]).astype(np.float32)
    change[np.abs(change) < 1e-5] = 0.0
    with atomic_path(p) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, change=change, fingerprint=fingerprint(rest, deltas, head.n_face))
    return res
