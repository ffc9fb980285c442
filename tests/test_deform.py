"""Rig deformation: native sparse kernel vs numpy (dense and sparse references) to 1e-5."""
from __future__ import annotations

import numpy as np
import pytest

from avatar.rig import Rig
from emo3d import schema
from native import _core, reference


def _synthetic(V=3000, seed=0):
    rng = np.random.default_rng(seed)
    verts = rng.normal(0, 0.1, (V, 3)).astype(np.float32)
    tris = rng.integers(0, V, (2 * V, 3)).astype(np.int32)
    deltas = np.zeros((schema.N_MODEL, V, 3), np.float32)
    for t in range(schema.N_MODEL):
        moved = rng.choice(V, V // 10, replace=False)
        deltas[t, moved] = rng.normal(0, 0.01, (moved.size, 3))
    return Rig.from_dense("synthetic", verts, tris, schema.MODEL_NAMES, deltas), deltas


def test_sparse_storage_and_dense_roundtrip():
    rig, deltas = _synthetic()
    assert rig.n_targets == 51 and len(rig.indices) == 51 * 300
    np.testing.assert_array_equal(rig.dense_deltas(), deltas)


@pytest.mark.parametrize("frames", [1, 7])
def test_native_deform_matches_numpy(frames):
    rig, deltas = _synthetic()
    rng = np.random.default_rng(1)
    w52 = rng.uniform(0, 1, (frames, 52)).astype(np.float32)
    w52[:, 1::3] = 0.0
    out = rig.deform(w52, threads=2)
    assert out.shape == (frames, rig.n_vertices, 3) and out.dtype == np.float32
    w = rig.weights_for(w52)
    dense = reference.deform_dense(rig.vertices, deltas, w)
    sparse = reference.deform_sparse(rig.vertices, rig.offsets, rig.indices, rig.values, w)
    np.testing.assert_allclose(out, dense, atol=1e-5, rtol=0)
    np.testing.assert_allclose(out, sparse, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(out, rig.deform(w52, threads=1))


def test_deform_by_name_moves_only_that_target():
    rig, deltas = _synthetic()
    out = rig.deform({"jawOpen": 0.5})[0]
    np.testing.assert_allclose(out, rig.vertices + 0.5 * deltas[schema.MODEL_INDEX["jawOpen"]], atol=1e-6)


def test_sparse_deformer_rejects_bad_indices():
    rig, _ = _synthetic(100)
    bad = rig.indices.copy()
    bad[5] = 100
    with pytest.raises(ValueError, match="indices"):
        _core.SparseDeformer(rig.vertices, rig.offsets, bad, rig.values)
    with pytest.raises(ValueError, match="offsets"):
        _core.SparseDeformer(rig.vertices, rig.offsets[:-1], rig.indices, rig.values)
    d = _core.SparseDeformer(rig.vertices, rig.offsets, rig.indices, rig.values)
    with pytest.raises(ValueError, match="weights"):
        d.deform(np.zeros((1, 50), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        d.deform(np.zeros((1, 51), np.float64))


def test_ict_deform_matches_numpy(ict_rig_path):
    from avatar.gltf import load_gltf
    rig = load_gltf(ict_rig_path)
    rng = np.random.default_rng(2)
    w52 = rng.uniform(0, 1, (3, 52)).astype(np.float32)
    out = rig.deform(w52)
    w = rig.weights_for(w52)
    D = rig.dense_deltas().reshape(rig.n_targets, -1).astype(np.float64)
    dense = (rig.vertices.reshape(1, -1).astype(np.float64) + w.astype(np.float64) @ D).reshape(out.shape)
    np.testing.assert_allclose(out, dense, atol=1e-5, rtol=0)


def test_batched_kernel_with_unsorted_entries_matches_reference():
    rig, deltas = _synthetic(2000)
    rng = np.random.default_rng(3)
    idx, val = rig.indices.copy(), rig.values.copy()
    for t in range(rig.n_targets):  # shuffle each target's entries: the deformer must sort them
        sl = slice(rig.offsets[t], rig.offsets[t + 1])
        p = rng.permutation(sl.stop - sl.start)
        idx[sl], val[sl] = idx[sl][p], val[sl][p]
    d = _core.SparseDeformer(rig.vertices, rig.offsets, idx, val)
    w = rng.uniform(0, 1, (9, rig.n_targets)).astype(np.float32)
    w[w < 0.5] = 0
    out = np.empty((9, rig.n_vertices, 3), np.float32)
    res = d.deform(w, 2, out)
    assert res is out or np.shares_memory(res, out)
    np.testing.assert_allclose(out, reference.deform_dense(rig.vertices, deltas, w), atol=1e-5, rtol=0)
    single = np.stack([d.deform(w[f:f + 1])[0] for f in range(9)])
    np.testing.assert_array_equal(out, single)
    with pytest.raises(ValueError, match="out"):
        d.deform(w, 1, np.empty((9, rig.n_vertices, 2), np.float32))
