"""The native deformation kernels against the numpy reference, and every bad input."""
from pathlib import Path

import numpy as np
import pytest
from support.assets import machine_lacks

import native
from native import reference as ref

REPO = Path(__file__).resolve().parents[2]


def _rig(V, T, F, seed=0, sparsity=0.0):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((V, 3)).astype(np.float32)
    deltas = rng.standard_normal((T, V, 3)).astype(np.float32)
    if sparsity:
        deltas[rng.random((T, V)) < sparsity] = 0
    weights = rng.random((F, T)).astype(np.float32)
    weights[rng.random((F, T)) < 0.3] = 0
    return base, deltas, weights


def test_extension_is_compiled_and_loaded(tmp_path):
    """`import native` (run outside the checkout) loads the compiled core from the installed package; only an
    editable install (`pip install -e .`, which builds in place) may load it from the source tree."""
    import json
    import subprocess
    import sys
    code = ("import json, importlib.metadata as md, native; "
            "print(json.dumps([native._core.__file__, native.__file__, "
            "md.distribution('emo3d').read_text('direct_url.json') or '{}']))")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    core, init, direct = json.loads(r.stdout)
    core, init = Path(core), Path(init)
    assert core.suffix in (".so", ".pyd") and core.parent == init.parent
    editable = json.loads(direct).get("dir_info", {}).get("editable", False)
    if not editable:
        assert core.resolve().parent != (REPO / "native").resolve(), f"native._core loaded from the source tree: {core}"


@pytest.mark.parametrize("V,T,F", [(1, 1, 1), (7, 3, 1), (468, 51, 1), (468, 51, 5), (5000, 51, 3), (24591, 51, 2)])
@pytest.mark.parametrize("threads", [1, 2])
def test_dense_matches_numpy(V, T, F, threads):
    base, deltas, weights = _rig(V, T, F, seed=V + T + F)
    got = native.deform(base, deltas, weights, threads=threads)
    assert got.shape == (F, V, 3) and got.dtype == np.float32
    assert np.abs(got - ref.deform_dense(base, deltas, weights)).max() <= 1e-5


@pytest.mark.parametrize("V,T,F", [(10, 2, 1), (468, 51, 4), (24591, 51, 3)])
def test_sparse_matches_dense(V, T, F):
    base, deltas, weights = _rig(V, T, F, seed=1, sparsity=0.9)
    offsets, indices, values = ref.dense_to_sparse(deltas)
    assert indices.size < deltas.shape[0] * V  # really sparse
    got = native.deform_sparse(base, offsets, indices, values, weights)
    assert np.abs(got - ref.deform_dense(base, deltas, weights)).max() <= 1e-5
    assert np.abs(ref.deform_sparse(base, offsets, indices, values, weights) - got).max() <= 1e-5


def test_one_dimensional_weights_and_zero_frames():
    base, deltas, weights = _rig(20, 4, 1)
    assert native.deform(base, deltas, weights[0]).shape == (1, 20, 3)
    assert native.deform(base, deltas, np.zeros((0, 4), np.float32)).shape == (0, 20, 3)


def test_conversions_float64_and_non_contiguous():
    base, deltas, weights = _rig(30, 5, 2)
    expect = ref.deform_dense(base, deltas, weights)
    got = native.deform(base.astype(np.float64), deltas, np.asfortranarray(weights.astype(np.float64)))
    assert np.abs(got - expect).max() <= 1e-5
    wide = np.zeros((30, 6), np.float32)
    wide[:, ::2] = base
    assert np.abs(native.deform(wide[:, ::2], deltas, weights) - expect).max() <= 1e-5


@pytest.mark.parametrize("bad,match", [
    (dict(weights=np.full((1, 5), np.nan, np.float32)), "NaN or inf"),
    (dict(weights=np.full((1, 5), np.inf, np.float32)), "NaN or inf"),
    (dict(weights=np.zeros((1, 4), np.float32)), "dimension 1 must be 5"),
    (dict(base=np.zeros((30, 2), np.float32)), "dimension 1 must be 3"),
    (dict(base=np.zeros((31, 3), np.float32)), "dimension 1 must be 31"),
    (dict(deltas=np.zeros((5, 30), np.float32)), "3 dimensions"),
    (dict(weights=np.array([["a"] * 5])), "numeric"),
    (dict(base=np.full((30, 3), np.nan)), "NaN or inf"),
])
def test_bad_inputs_raise_value_error(bad, match):
    base, deltas, weights = _rig(30, 5, 1)
    args = dict(base=base, deltas=deltas, weights=weights)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        native.deform(args["base"], args["deltas"], args["weights"])


def test_raw_core_refuses_wrong_dtype_layout_and_bounds():
    base, deltas, weights = _rig(10, 2, 1)
    with pytest.raises(ValueError, match="dtype"):
        native._core.deform_dense(base.astype(np.float64), deltas, weights, 1)
    with pytest.raises(ValueError, match="contiguous"):
        native._core.deform_dense(np.asfortranarray(np.zeros((10, 3), np.float32)), deltas, weights, 1)
    with pytest.raises(ValueError, match=r"\[T, V, 3\]"):
        native._core.deform_dense(base, deltas[:, :5].copy(), weights, 1)
    offsets, indices, values = ref.dense_to_sparse(deltas)
    bad = indices.copy()
    bad[0] = 10  # == V: one past the end
    with pytest.raises(ValueError, match=r"\[0, V\)"):
        native.deform_sparse(base, offsets, bad, values, weights)
    with pytest.raises(ValueError, match="offsets"):
        native.deform_sparse(base, offsets[::-1].copy(), indices, values, weights)


def _cpu_flags() -> set:
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def test_kernel_clone_matches_the_cpu():
    """The ifunc-dispatched kernels run their AVX2/FMA clone exactly where the CPU has x86-64-v3."""
    isa = native._core.kernel_isa()
    assert isa in ("x86-64-v3", "baseline")
    if not native._core.MULTIVERSIONED:
        assert isa == "baseline"
        return
    flags = _cpu_flags()
    if not flags:
        machine_lacks("/proc/cpuinfo to compare with")
    v3 = {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave"} <= flags and ("abm" in flags or "lzcnt" in flags)
    assert isa == ("x86-64-v3" if v3 else "baseline")


@pytest.mark.parametrize("field,bad,match", [
    ("indices", lambda i: np.where(i == i.max(), 10, i).astype(np.int32), r"\[0, V\)"),
    ("offsets", lambda o: o[::-1].copy(), "offsets"),
    ("values", lambda v: v[:-1].copy(), r"values must be \[K, 3\]"),
    ("indices", lambda i: i.astype(np.int64), "dtype"),
])
def test_raw_renderer_and_deformer_share_the_csr_checks(field, bad, match):
    """Renderer, SparseDeformer and deform_sparse validate their CSR deltas with one check."""
    base, deltas, weights = _rig(10, 2, 1)
    csr = dict(zip(("offsets", "indices", "values"), ref.dense_to_sparse(deltas)))
    csr[field] = bad(csr[field])
    tris = np.array([[0, 1, 2]], np.int32)
    f3 = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=match):
        native._core.Renderer(base, tris, csr["offsets"], csr["indices"], csr["values"], None, None, None,
                              8, 8, 1, f3, 1.0, 0.2, 0.3, 0.7, 0.0, f3, 1)
    with pytest.raises(ValueError, match=match):
        native._core.SparseDeformer(base, csr["offsets"], csr["indices"], csr["values"])
    with pytest.raises(ValueError, match=match):
        native._core.deform_sparse(base, csr["offsets"], csr["indices"], csr["values"], weights, 1)
