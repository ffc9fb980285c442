"""eval.alpha_study: α = 1 saturates every retrieval; a larger α orders best < random < worst."""
import json

import numpy as np

from eval.alpha_study import alpha_study, main, retrievals
from eval.bootstrap import BootstrapOptions


def _bank(m=48, seed=0):
    return np.random.default_rng(seed).dirichlet(np.full(8, 0.3), size=m)


def test_retrievals_and_saturation():
    e = _bank()
    r = retrievals(e, 5)
    assert r["best"][:, 0].tolist() == list(range(48))          # each prompt first retrieves itself
    rows = {x.retrieval: x for x in alpha_study(e, k=5, alphas=(1.0, 20.0), options=BootstrapOptions(resamples=200))}
    assert all(f"{x.official[1.0].value:.3f}" == "1.000" for x in rows.values())
    assert rows["best"].official[20.0].hi < rows["random"].official[20.0].lo
    assert rows["random"].official[20.0].value < rows["worst"].official[20.0].value
    assert rows["best"].paper.value < rows["random"].paper.value < rows["worst"].paper.value
    assert rows["best"].argument.value > 6.9          # sigmoid >= 0.999 even for the best retrieval


def test_cli_prints_a_table(tmp_path, capsys):
    (tmp_path / "bank.json").write_text(json.dumps({"emotions": _bank(20).tolist()}))
    assert main(["--bank", str(tmp_path / "bank.json"), "--k", "4", "--alpha", "1", "10", "--resamples", "100"]) == 0
    out = capsys.readouterr().out
    assert "| best |" in out and "official α=10" in out and "k = 4, 20 prompts" in out
