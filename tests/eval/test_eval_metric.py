"""Emo3D metric: hand-computed values on a 4-prompt bank (paper + official), kernels vs numpy."""
from math import exp, log

import numpy as np
import pytest

from eval import kernels as K
from eval.metric import (EPS_PAPER, MetricOptions, emo3d_from_topk, emo3d_metric, kl_divergence,
                         mse, normalize, recall_at_k)


def _e(i, c=8):
    v = np.zeros(c)
    v[i] = 1.0
    return v


# p0 neutral, p1 happiness, p2 half happiness/half surprise, p3 sadness
BANK = np.stack([_e(0), _e(1), 0.5 * _e(1) + 0.5 * _e(2), _e(3)])


def _sig(x):
    return 1.0 / (1.0 + exp(-x))


def test_paper_definition_hand_computed():
    topk = np.array([[0, 1], [1, 2], [2, 1], [3, 0]])
    r = emo3d_from_topk(topk, BANK, options=MetricOptions(k=2, eps=0.0))
    # ψ̄ = mean of the two retrieved rows
    expected = [log(1 / 0.5),                               # e0 vs [.5,.5]
                log(1 / 0.75),                              # e1 vs [0,.75,.25]
                0.5 * log(0.5 / 0.75) + 0.5 * log(0.5 / 0.25),
                log(1 / 0.5)]                               # e3 vs [.5,0,0,.5]
    np.testing.assert_allclose(r.kl, expected, rtol=1e-12)
    mean = sum(expected) / 4
    assert r.mean_kl == pytest.approx(mean, rel=1e-12)
    assert r.score == pytest.approx(_sig(mean), rel=1e-12)
    assert r.recall_at_k == 1.0
    assert r.score > 0.5


def test_paper_definition_eps_smoothing_hand_computed():
    eps = EPS_PAPER
    topk = np.array([[3, 0]] * 3 + [[0, 1]])   # image 3 misses its own prompt
    r = emo3d_from_topk(topk, BANK, options=MetricOptions(k=2))
    z = 1 + 8 * eps
    # image 3: φ = (e3+ε)/z, ψ̄ = ([.5,.5,0,0,...]+ε)/z ; the 5 untouched bins cancel
    kl3 = 2 * (eps / z) * log(eps / (0.5 + eps)) + ((1 + eps) / z) * log((1 + eps) / eps)
    assert r.kl[3] == pytest.approx(kl3, rel=1e-9)
    assert r.recall_at_k == pytest.approx(0.25)    # only image 0 finds itself in [3, 0]


def test_perfect_retrieval_gives_half():
    r = emo3d_from_topk(np.array([[0], [1], [2], [3]]), BANK, options=MetricOptions(k=1))
    assert r.score == pytest.approx(0.5)
    assert r.recall_at_k == 1.0


def test_official_definition_hand_computed():
    topk = np.array([[0, 1], [1, 2], [2, 1], [0, 1]])
    r = emo3d_from_topk(topk, BANK, options=MetricOptions(k=2, compat="official", alpha=1.0))
    e = 0.01
    # the two retrieved raw rows form ONE block divided by its sum (2): each row sums to 1/2
    expected = [log(1 / (0.5 + e)) + log(1 / (0 + e)),                 # φ=e0; block rows e0/2, e1/2
                log(1 / (0.5 + e)) + log(1 / (0.25 + e)),              # φ=e1; e1/2, [0,.25,.25]
                (0.5 * log(0.5 / (0.25 + e)) * 2)                      # φ=[0,.5,.5]; row [0,.25,.25]
                + 0.5 * log(0.5 / (0.5 + e)) + 0.5 * log(0.5 / (0 + e)),   # row [0,.5,0]
                2 * log(1 / (0 + e))]                                  # φ=e3; block has no sadness
    np.testing.assert_allclose(r.kl, expected, rtol=1e-12)
    assert r.mean_kl == pytest.approx(sum(expected) / (4 * 1.0), rel=1e-12)
    assert r.score == pytest.approx(_sig(sum(expected) / 4), rel=1e-12)
    assert r.recall_at_k == pytest.approx(0.75)
    r2 = emo3d_from_topk(topk, BANK, options=MetricOptions(k=2, compat="official", alpha=4.0))
    assert r2.mean_kl == pytest.approx(sum(expected) / (4 * 4.0), rel=1e-12)


def test_metric_from_embeddings_matches_topk_path():
    # images point exactly at prompts 0,1,2,3 → each retrieves itself first
    txt = np.eye(4, 6)
    img = txt + 0.01 * np.arange(6)[None, :]
    r = emo3d_metric(img, txt, BANK, options=MetricOptions(k=1))
    assert r.topk[:, 0].tolist() == [0, 1, 2, 3]
    assert r.score == pytest.approx(0.5)


def test_k_larger_than_bank_raises():
    with pytest.raises(ValueError, match="larger than the prompt bank"):
        emo3d_metric(np.eye(4), np.eye(4), BANK, options=MetricOptions(k=5))
    with pytest.raises(ValueError, match="larger than the prompt bank"):
        emo3d_from_topk(np.zeros((4, 5), dtype=int), BANK)


def test_nan_raises_everywhere():
    bad = BANK.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        emo3d_from_topk(np.array([[0], [1], [2], [3]]), bad, options=MetricOptions(k=1))
    with pytest.raises(ValueError, match="NaN"):
        normalize(bad)
    img = np.eye(4)
    img[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        emo3d_metric(img, np.eye(4), BANK, options=MetricOptions(k=1))
    with pytest.raises(ValueError, match="NaN"):
        mse([np.nan], [0.0])


def test_negative_and_bad_options_raise():
    neg = BANK.copy()
    neg[0, 0] = -0.1
    with pytest.raises(ValueError, match="negative"):
        normalize(neg)
    with pytest.raises(ValueError):
        MetricOptions(k=0)
    with pytest.raises(ValueError):
        MetricOptions(compat="nope")
    with pytest.raises(ValueError):
        MetricOptions(compat="official", alpha=0)


def test_zero_and_unnormalised_rows_normalised_with_eps():
    z = normalize(np.zeros(8))
    np.testing.assert_allclose(z, np.full((1, 8), 1 / 8))
    p = normalize([2.0, 2.0, 0, 0, 0, 0, 0, 0], eps=0.01)
    np.testing.assert_allclose(p[0, :3], np.array([0.51, 0.51, 0.01]) / 1.08)
    assert p.sum() == pytest.approx(1.0)
    topk = np.array([[0, 1], [1, 2], [2, 1], [3, 0]])
    for compat, alpha in (("paper", None), ("official", 1.0)):
        a = emo3d_from_topk(topk, BANK, options=MetricOptions(k=2, compat=compat, alpha=alpha))
        b = emo3d_from_topk(topk, 100 * BANK, options=MetricOptions(k=2, compat=compat, alpha=alpha))
        assert a.score == pytest.approx(b.score, rel=1e-12)
    zero_bank = BANK.copy()
    zero_bank[3] = 0.0          # an all-zero distribution is uniform, not NaN
    r = emo3d_from_topk(topk, zero_bank, options=MetricOptions(k=2))
    assert np.all(np.isfinite(r.kl))
    r = emo3d_from_topk(topk, zero_bank, options=MetricOptions(k=2, compat="official", alpha=1.0))
    assert np.all(np.isfinite(r.kl))
    assert kl_divergence(_e(2), _e(2))[0] == pytest.approx(0.0, abs=1e-12)


def test_mse_and_recall():
    assert mse([[0.0, 1.0]], [[1.0, 1.0]]) == pytest.approx(0.5)
    assert recall_at_k(np.array([[1, 2], [0, 3]]), np.array([2, 1])) == 0.5
    with pytest.raises(ValueError):
        mse([0.0, 1.0], [0.0])


@pytest.mark.parametrize("seed", [0, 1])
def test_kernels_match_numpy_random(seed):
    rng = np.random.default_rng(seed)
    n, m, d, k = 257, 83, 24, 9
    img = rng.normal(size=(n, d)).astype(np.float32)
    txt = rng.normal(size=(m, d)).astype(np.float32)
    i1, v1 = K.topk_similar(img, txt, k, block=50)
    i2, v2 = K.topk_similar_ref(img, txt, k)
    np.testing.assert_allclose(v1, v2, atol=1e-5)
    same = (i1 == i2).all(axis=1)
    assert same.mean() > 0.99           # the rest differ only in float near-ties
    phi = rng.dirichlet(np.ones(8), size=n)
    phi[::7, 3] = 0.0
    bank = rng.random((m, 8))
    bank[5] = 0.0
    dist = normalize(bank)
    np.testing.assert_allclose(K.kl_paper(phi, dist, i1), K.kl_paper_ref(phi, dist, i1), rtol=1e-10)
    np.testing.assert_allclose(K.kl_official(phi, bank, i1, 0.01),
                               K.kl_official_ref(phi, bank, i1, 0.01), rtol=1e-10)


def test_topk_exact_ties_break_to_lower_index():
    rng = np.random.default_rng(3)
    img = rng.integers(-2, 3, size=(60, 4)).astype(np.float32)
    txt = rng.integers(-2, 3, size=(40, 4)).astype(np.float32)
    txt[17] = txt[4]
    txt[30] = txt[4]                   # duplicated prompts: exact ties
    i1, v1 = K.topk_similar(img, txt, 6, block=7, normalize=False)
    i2, v2 = K.topk_similar_ref(img, txt, 6, normalize=False)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(v1, v2)
    one = K.topk_similar(np.ones((1, 2), np.float32), np.ones((5, 2), np.float32), 3,
                         normalize=False)[0]
    assert one.tolist() == [[0, 1, 2]]


def test_kernel_guards_reject_bad_shapes_and_indices():
    phi = np.full((3, 8), 1 / 8)
    bank = np.full((4, 8), 1 / 8)
    with pytest.raises(ValueError):
        K.kl_paper(phi, bank, np.zeros((2, 2), dtype=int))        # rows differ: no OOB read
    with pytest.raises(ValueError):
        K.kl_official(phi, bank, np.full((3, 2), 4), 0.01)        # index past the bank
    with pytest.raises(ValueError, match="prompt bank"):
        K.topk_similar(np.ones((2, 3)), np.ones((4, 3)), 5)


def test_official_needs_alpha_and_paper_refuses_it():
    with pytest.raises(ValueError, match="needs alpha"):
        MetricOptions(compat="official")
    with pytest.raises(ValueError, match="'official' only"):
        MetricOptions(alpha=2.0)
    assert MetricOptions().alpha is None
    assert MetricOptions(compat="official", alpha=30.0).alpha == 30.0


def _official_ref(topk, bank, targets, eps, alpha):
    """The official metric.py loop, per image, in float32 like its KL()."""
    total = 0.0
    for r, t in enumerate(targets):
        phi = bank[t] / bank[t].sum()
        block = bank[topk[r]].sum(axis=0)          # iloc[indices].sum(axis=0) ...
        blk = bank[topk[r]] / bank[topk[r]].sum()  # ... normalised as one block
        a = np.asarray(phi, np.float32)[None, :]
        b = np.asarray(blk, np.float32) + eps
        with np.errstate(divide="ignore", invalid="ignore"):
            total += float(np.sum(np.where(a != 0, a * np.log(a / b), 0)))
        assert block.shape == (8,)
    return total


def test_official_divides_by_images_not_prompts():
    # 6 images rendered from a 4-prompt bank (prompts 1 and 3 have two images each)
    targets = np.array([0, 1, 1, 2, 3, 3])
    topk = np.array([[0, 1], [1, 2], [2, 0], [2, 1], [3, 0], [0, 3]])
    alpha = 3.0
    r = emo3d_from_topk(topk, BANK, targets, MetricOptions(k=2, compat="official", alpha=alpha))
    ref = _official_ref(topk, BANK, targets, 0.01, alpha)
    assert r.n == 6
    assert r.kl.sum() == pytest.approx(ref, rel=1e-6)                 # float32 in the official KL
    assert r.mean_kl == pytest.approx(r.kl.sum() / (6 * alpha), rel=1e-12)
    assert r.mean_kl != pytest.approx(r.kl.sum() / (4 * alpha), rel=1e-3)
    np.testing.assert_array_equal(r.hits, [1, 1, 0, 1, 1, 1])
    assert r.recall_at_k == pytest.approx(5 / 6)


def test_official_alpha_one_saturates_and_warns():
    # a realistic bank: 40 one-hot-ish prompts, k=10, PERFECT retrieval (own prompt first)
    rng = np.random.default_rng(0)
    bank = rng.dirichlet(np.full(8, 0.3), size=40)
    sims = -np.abs(bank[:, None, :] - bank[None, :, :]).sum(-1)
    topk = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    from eval.metric import SaturationWarning
    with pytest.warns(SaturationWarning, match="raise alpha"):
        r1 = emo3d_from_topk(topk, bank, options=MetricOptions(k=10, compat="official", alpha=1.0))
    assert r1.saturated and r1.score > 0.999 and r1.mean_kl > 15
    rand = rng.integers(0, 40, size=(40, 10))
    with pytest.warns(SaturationWarning):
        r2 = emo3d_from_topk(rand, bank, options=MetricOptions(k=10, compat="official", alpha=1.0))
    assert f"{r1.score:.3f}" == f"{r2.score:.3f}" == "1.000"     # perfect == random at alpha=1
    big = r1.mean_kl
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", SaturationWarning)
        r3 = emo3d_from_topk(topk, bank, options=MetricOptions(k=10, compat="official", alpha=big))
        r4 = emo3d_from_topk(rand, bank, options=MetricOptions(k=10, compat="official", alpha=big))
    assert not r3.saturated and r3.score == pytest.approx(_sig(1.0))
    assert r4.score > r3.score                                    # random is worse once unsaturated
