"""Ambient occlusion of the whole head at rest, per vertex, for baking into the texture
(:func:`avatar.head_texture.whole_texture`): from each vertex, rays over the hemisphere about its
normal (cosine-weighted, the same fixed set for every vertex) are tested against every triangle
(Moller-Trumbore, in numpy); a ray that hits within ``AO_REACH`` occludes, the nearer the more.
Creases (the nostrils, the lid folds, the corners of the mouth, under the chin beside the neck)
come out darker; open skin stays 1.
"""
from __future__ import annotations

import numpy as np

__all__ = ["vertex_ao", "spare_eyes", "AO_RAYS", "AO_REACH", "EYE_SPARE"]

AO_RAYS = 32           # rays per vertex
AO_REACH = 3.0         # cm: a hit further away does not occlude
AO_SEED = 14
EYE_SPARE = (2.0, 3.2)  # cm from an eye's centre: no occlusion inside the first, all of it beyond the second
_EPS_ORIGIN = 0.02     # cm the ray starts above the surface (no self hits)


def _hemisphere(n: int, seed: int) -> np.ndarray:
    """n cosine-weighted directions about +z [n,3] (stratified, fixed by the seed)."""
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    u1 = (k + rng.uniform(0, 1, n)) / n
    u2 = rng.permutation(n) / n + rng.uniform(0, 1.0 / n, n)
    r, phi = np.sqrt(u1), 2 * np.pi * u2
    return np.stack([r * np.cos(phi), r * np.sin(phi), np.sqrt(np.maximum(1 - u1, 0))], 1)


def _frames(normals: np.ndarray) -> np.ndarray:
    """Orthonormal frames [V,3,3] (rows: tangent, bitangent, normal)."""
    n = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    helper = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    t = np.cross(helper, n)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    b = np.cross(n, t)
    return np.stack([t, b, n], 1)


def _nearest_hits(O: np.ndarray, D: np.ndarray, v0: np.ndarray, e1: np.ndarray, e2: np.ndarray) -> np.ndarray:
    """Distance to the nearest triangle along each ray (inf: none within AO_REACH)."""
    pvec = np.cross(D[:, None, :], e2[None])                         # [R,F,3]
    det = (e1[None] * pvec).sum(-1)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    tvec = O[:, None, :] - v0[None]
    u = (tvec * pvec).sum(-1) * inv
    qvec = np.cross(tvec, e1[None])
    v = (D[:, None, :] * qvec).sum(-1) * inv
    t = (e2[None] * qvec).sum(-1) * inv
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-4) & (t < AO_REACH)
    return np.where(hit, t, np.inf).min(1)


def vertex_ao(vertices: np.ndarray, triangles: np.ndarray, normals: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Occlusion-free share [len(which)] in 0..1 (1 = open) of the vertices ``which``."""
    V = vertices.astype(np.float64)
    tri = triangles.astype(np.int64)
    v0 = V[tri[:, 0]]
    e1, e2 = V[tri[:, 1]] - v0, V[tri[:, 2]] - v0
    dirs_local = _hemisphere(AO_RAYS, AO_SEED)
    F = _frames(normals[which].astype(np.float64))                  # [N,3,3]
    D = np.einsum("kj,njd->nkd", dirs_local, F)                     # [N,K,3]
    O = V[which] + _EPS_ORIGIN * F[:, 2]
    # only triangles whose bounding sphere comes within reach of the vertex can occlude it
    cen = (v0 + V[tri[:, 1]] + V[tri[:, 2]]) / 3
    rad = np.sqrt(np.maximum(((V[tri] - cen[:, None]) ** 2).sum(-1).max(1), 0))
    out = np.ones(len(which), np.float32)
    for i in range(len(which)):
        near = np.nonzero(np.linalg.norm(cen - O[i], axis=1) < AO_REACH + rad)[0]
        if not near.size:
            continue
        dist = _nearest_hits(np.broadcast_to(O[i], (AO_RAYS, 3)), D[i], v0[near], e1[near], e2[near])
        occ = np.where(np.isfinite(dist), 1.0 - dist / AO_REACH, 0.0)
        out[i] = 1.0 - occ.mean()
    return out


def spare_eyes(ao: np.ndarray, vertices: np.ndarray, eye_centers) -> np.ndarray:
    """``ao`` with the lids and the skin around the eyes left open (a shadow on the lids reads as a squint
    to people and to MediaPipe alike; the eye socket's own darkening is painted by ``avatar.texture``)."""
    V = vertices.astype(np.float64)
    d = np.min([np.linalg.norm(V - np.asarray(c, np.float64), axis=1) for c in eye_centers], axis=0)
    x = np.clip((d - EYE_SPARE[0]) / (EYE_SPARE[1] - EYE_SPARE[0]), 0, 1)
    keep = x * x * (3 - 2 * x)
    return (1.0 - keep * (1.0 - ao)).astype(np.float32)
