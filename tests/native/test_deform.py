"""Rig deformation: native sparse kernel vs numpy (dense and sparse references) to 1e-5."""
from __future__ import annotations

import numpy as np
import pytest

from emo3d.avatar.rig import Rig
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
    from emo3d.avatar.gltf import load_gltf
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


def _csr_with_duplicates(V=700, T=5, seed=4):
    """CSR deltas in arbitrary order, with repeated (target, vertex) entries, clustered and isolated
    moved vertices and an empty target; the dense equivalent sums the repeats."""
    rng = np.random.default_rng(seed)
    dense = np.zeros((T, V, 3), np.float32)
    offsets, indices, values = [0], [], []
    for t in range(T):
        if t == 2:  # a target that moves nothing
            offsets.append(offsets[-1])
            continue
        start = int(rng.integers(0, V - 200))
        idx = np.concatenate([np.arange(start, start + 150),               # one dense cluster
                              rng.choice(V, 40, replace=False),             # scattered vertices
                              np.arange(start + 10, start + 20)])          # repeats inside the cluster
        val = rng.normal(0, 0.01, (idx.size, 3)).astype(np.float32)
        perm = rng.permutation(idx.size)
        idx, val = idx[perm], val[perm]
        np.add.at(dense[t], idx, val)
        indices.append(idx)
        values.append(val)
        offsets.append(offsets[-1] + idx.size)
    base = rng.normal(0, 0.1, (V, 3)).astype(np.float32)
    return (base, np.array(offsets, np.int64), np.concatenate(indices).astype(np.int32),
            np.concatenate(values).astype(np.float32), dense)


@pytest.mark.parametrize("max_gap", [0, 1, 8, 1024])
def test_run_length_deltas_match_dense_for_any_gap(max_gap):
    base, off, idx, val, dense = _csr_with_duplicates()
    d = _core.SparseDeformer(base, off, idx, val, max_gap=max_gap)
    rng = np.random.default_rng(5)
    w = rng.uniform(0, 1, (6, off.size - 1)).astype(np.float32)
    w[w < 0.3] = 0
    want = reference.deform_dense(base, dense, w)
    np.testing.assert_allclose(d.deform(w, 2), want, atol=1e-6, rtol=0)
    for f in range(6):  # a frame alone gives the same bits as in the batch
        np.testing.assert_array_equal(d.deform(w[f:f + 1], 1)[0], d.deform(w, 2)[f])
    distinct = sum(np.unique(idx[off[t]:off[t + 1]]).size for t in range(off.size - 1))
    assert d.stored_vertices >= distinct
    if max_gap == 0:  # runs of strictly consecutive vertices: nothing but the moved vertices is stored
        assert d.stored_vertices == distinct


def test_run_length_gap_trades_runs_for_zero_fill():
    base, off, idx, val, _ = _csr_with_duplicates()
    stats = [(_core.SparseDeformer(base, off, idx, val, max_gap=g).n_runs,
              _core.SparseDeformer(base, off, idx, val, max_gap=g).stored_vertices) for g in (0, 4, 64, 1024)]
    runs, stored = zip(*stats)
    assert list(runs) == sorted(runs, reverse=True) and runs[0] > runs[-1]
    assert list(stored) == sorted(stored) and stored[0] < stored[-1]
    assert runs[-1] == 4  # one run per non-empty target once every gap is bridged


def test_sparse_deformer_rejects_bad_gap():
    base, off, idx, val, _ = _csr_with_duplicates()
    with pytest.raises(ValueError, match="max_gap"):
        _core.SparseDeformer(base, off, idx, val, max_gap=-1)


def test_rigs_with_more_targets_than_the_stack_scratch():
    """Over 64 targets the kernel's scratch moves to the heap; results are unchanged."""
    rng = np.random.default_rng(6)
    V, T = 400, 70
    dense = np.zeros((T, V, 3), np.float32)
    for t in range(T):
        moved = rng.choice(V, 50, replace=False)
        dense[t, moved] = rng.normal(0, 0.01, (50, 3))
    base = rng.normal(0, 0.1, (V, 3)).astype(np.float32)
    off, idx, val = reference.dense_to_sparse(dense)
    w = rng.uniform(0, 1, (3, T)).astype(np.float32)
    out = _core.SparseDeformer(base, off, idx, val).deform(w, 2)
    np.testing.assert_allclose(out, reference.deform_dense(base, dense, w), atol=1e-6, rtol=0)
