"""Bootstrap intervals: against a plain resampling loop, seeded, chunk-invariant, Pearson from moments."""
import numpy as np
import pytest

from eval.bootstrap import (BootstrapOptions, Interval, bootstrap, mean_interval, pearson_interval,
                            resample_counts, sigmoid_mean_interval)


def _loop(values, stat, options):
    """Reference: draw the same multinomial counts, expand to index lists, compute stat in Python."""
    out = []
    for counts in resample_counts(len(values), options):
        for c in counts:
            idx = np.repeat(np.arange(len(values)), c.astype(int))
            out.append(stat(values[idx]))
    tail = (1 - options.level) / 2
    return np.quantile(out, [tail, 1 - tail])


def test_mean_and_sigmoid_match_a_plain_loop():
    rng = np.random.default_rng(1)
    v = rng.gamma(2.0, 0.5, size=57)
    opt = BootstrapOptions(resamples=300, seed=7, chunk=64)
    iv = mean_interval(v, opt)
    lo, hi = _loop(v, np.mean, opt)
    assert iv.value == pytest.approx(v.mean(), rel=1e-12)
    assert (iv.lo, iv.hi) == pytest.approx((lo, hi), rel=1e-10)
    sg = sigmoid_mean_interval(v, 2.5, opt)
    lo2, hi2 = _loop(v, lambda x: 1 / (1 + np.exp(-x.mean() / 2.5)), opt)
    assert sg.value == pytest.approx(1 / (1 + np.exp(-v.mean() / 2.5)), rel=1e-12)
    assert (sg.lo, sg.hi) == pytest.approx((lo2, hi2), rel=1e-10)


def test_seeded_and_chunk_invariant_and_nan_items_left_out():
    rng = np.random.default_rng(2)
    v = rng.normal(size=100)
    a = mean_interval(v, BootstrapOptions(resamples=500, seed=3, chunk=500))
    b = mean_interval(v, BootstrapOptions(resamples=500, seed=3, chunk=37))
    c = mean_interval(v, BootstrapOptions(resamples=500, seed=4))
    assert (a.lo, a.hi) == (b.lo, b.hi)
    assert (a.lo, a.hi) != (c.lo, c.hi)
    w = v.copy()
    w[::10] = np.nan
    iv = mean_interval(w, BootstrapOptions(resamples=500))
    assert iv.value == pytest.approx(np.nanmean(w))
    assert iv.lo < iv.value < iv.hi


def test_interval_width_shrinks_like_one_over_sqrt_n_and_covers():
    rng = np.random.default_rng(5)
    small = mean_interval(rng.normal(size=100), BootstrapOptions(resamples=1000))
    large = mean_interval(rng.normal(size=1600), BootstrapOptions(resamples=1000))
    ratio = (small.hi - small.lo) / (large.hi - large.lo)
    assert 3.0 < ratio < 5.3                       # sqrt(16) = 4
    assert small.hi - small.lo == pytest.approx(2 * 1.96 / 10, rel=0.2)
    covered = sum(mean_interval(rng.normal(size=60), BootstrapOptions(resamples=400, seed=s)).lo < 0 <
                  mean_interval(rng.normal(size=60), BootstrapOptions(resamples=400, seed=s)).hi
                  for s in range(40))
    assert covered >= 30


def test_pearson_from_moments_equals_corrcoef():
    rng = np.random.default_rng(6)
    a = rng.random((30, 51))
    b = 0.6 * a + 0.4 * rng.random((30, 51))
    b[4] = np.nan                                   # an undetected face: the item drops out
    iv = pearson_interval(a, b, BootstrapOptions(resamples=300))
    ok = np.isfinite(b).all(1)
    assert iv.value == pytest.approx(np.corrcoef(a[ok].ravel(), b[ok].ravel())[0, 1], rel=1e-9)
    assert iv.lo < iv.value < iv.hi


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="resamples"):
        BootstrapOptions(resamples=1)
    with pytest.raises(ValueError, match="level"):
        BootstrapOptions(level=1.0)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap(np.array([1.0, np.nan]), lambda s: s[:, 0])
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap(np.zeros((0, 2)), lambda s: s[:, 0])
    assert np.isnan(mean_interval([np.nan, np.nan]).value)
    assert Interval(0.5, 0.4, 0.6).format(2) == "0.50 [0.40, 0.60]"
