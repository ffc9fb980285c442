"""docs/models/language_bound.py: the penalised read-out it sweeps and its picture, on tiny data built here."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from emo3d.schema import EMOTIONS

SCRIPT = Path(__file__).resolve().parents[3] / "docs" / "models" / "language_bound.py"


@pytest.fixture(scope="module")
def bound():
    spec = importlib.util.spec_from_file_location("language_bound", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _two_classes(n=200, seed=0):
    """Two emotions told apart along dimension 0 only; dimension 1 carries weaker, independent evidence."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.5, EMOTIONS.index("anger"), EMOTIONS.index("fear"))
    sign = np.where(y == EMOTIONS.index("anger"), 1.0, -1.0)
    X = np.stack([2.0 * sign + rng.normal(0, 0.5, n), 1.0 * sign + rng.normal(0, 1.0, n)], 1)
    return X, y


def test_unpenalised_readout_separates_and_a_residual_penalty_moves_weight_off_its_direction(bound):
    X, y = _two_classes()
    w = np.ones(len(y))
    none = np.zeros((2, 2))
    W0, b0 = bound.softmax_readout(X, y, w, none, 0.0)
    assert np.mean((X @ W0 + b0).argmax(1) == y) > 0.97
    # translations disturb dimension 0 only: penalising it moves the read-out onto dimension 1
    S = np.diag([1.0, 0.0])
    W1, _ = bound.softmax_readout(X, y, w, S, 100.0)
    a, f = EMOTIONS.index("anger"), EMOTIONS.index("fear")
    d0 = W0[:, a] - W0[:, f]
    d1 = W1[:, a] - W1[:, f]
    assert abs(d1[0]) < 0.1 * abs(d0[0]) and d1[1] > 0
    assert abs(d1[0]) / np.linalg.norm(d1) < abs(d0[0]) / np.linalg.norm(d0)


def test_plot_writes_the_picture(bound, tmp_path):
    bins = [{"lo": 0.0, "hi": 0.25, "n": 2, "agreement": 0.5}, {"lo": 0.25, "hi": 0.5, "n": 0, "agreement": None},
            {"lo": 0.5, "hi": 1.0, "n": 3, "agreement": 1.0}]
    result = {"margin_bins": {"multilingual_dev": {"agreement": 0.8, "bins": bins}},
              "frontier": [{"lam": lam, "goemotions_dev_balanced": 0.6 - lam / 10, "multilingual_dev": 0.8,
                            "multilingual_dev_large": 0.7 + lam / 100} for lam in (0.0, 1.0)],
              "shipped_head": {"goemotions_dev_balanced": 0.64, "multilingual_dev": 0.81, "multilingual_dev_large": 0.7}}
    out = tmp_path / "bound.png"
    bound.plot(result, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
