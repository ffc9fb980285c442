"""The encoder tuning's portable bundle (base weights + tokenised texts in one file) and the tuning run over
it: the bundle's inputs equal the live tokeniser's, a sweep trains, evaluates, selects and writes adapters the
build reads."""
from __future__ import annotations

import json

import numpy as np
import pytest

from emo3d.errors import InvalidInputError, ModelFileError
from emo3d.models import e5_build, e5_weights, tune_bundle
from support.assets import require_module
from support.e5_files import write_tiny_e5

torch = require_module("torch", "pip install 'emo3d[train]'")
require_module("sklearn", "pip install scikit-learn")
from emo3d.models import tune_encoder  # noqa: E402
from emo3d.models.e5_lora import LoraE5, LoraOptions, batch_inputs  # noqa: E402

K = len(tune_bundle.CLASSES)
WORDS = ["furious scowl", "happy", "sad abc", "je suis", "我很生气", "😡", "a b c", "query", "abc abc happy"]


def _onehot(i):
    v = np.zeros(K, np.float32)
    v[i % K] = 1.0
    return v


def _sets(n_train=42):
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 2)) for _ in range(n_train)]
    lab = np.stack([_onehot(i) for i in range(n_train)])
    lab[0] = 0.0
    lab[0, :2] = 0.5                                           # one mixed row: soft label
    plain = lambda t, y: (t, y, np.full(len(t), -1), ["en"] * len(t))     # noqa: E731
    par_t = ["happy", "je suis", "sad abc", "我很生气"]
    return {"goemotions_train": plain(texts, lab),
            "goemotions_dev": plain(texts[:21], lab[:21]),
            "parallel": (par_t, np.stack([_onehot(1)] * 2 + [_onehot(3)] * 2), np.array([0, 0, 1, 1]),
                         ["en", "fr", "en", "zh"]),
            "words": plain(["happy", "sad abc", "😡"], np.stack([_onehot(1), _onehot(3), np.zeros(K, np.float32)])),
            "calibration": plain(["a b c"], np.zeros((1, K), np.float32)),
            "eval_parallel": (["happy", "je suis"], np.stack([_onehot(1)] * 2), np.array([0, 0]), ["en", "fr"])}


@pytest.fixture()
def tiny(tmp_path):
    src = tmp_path / "tiny.bin"
    write_tiny_e5(src)
    w = e5_weights.load(src)
    b, arrays = tune_bundle.build(_sets(), w, max_tokens=12, progress=False)
    path = tune_bundle.save(arrays, tmp_path / "bundle.npz")
    return w, b, path


def test_the_bundle_feeds_the_encoder_what_the_live_tokeniser_does(tiny):
    w, b, path = tiny
    loaded = tune_bundle.load(path)
    assert set(loaded.sets) == set(_sets()) and len(loaded.sets["goemotions_train"]) == 42
    assert len(loaded.words) < w.config.vocab                # only the rows the texts use travel
    for name in ("l0.q.w", "l1.fo.w", "l1.oln.b", "emb.ln.w"):
        np.testing.assert_array_equal(loaded.tensors[name], w.tensors[name])      # 4-bit blocks kept exact
    s = loaded.sets["parallel"]
    emb, mask = (t.numpy() for t in tune_encoder._Inputs(loaded, torch.device("cpu"))(list(s.ids)))
    ref_emb, ref_mask = batch_inputs(w, list(s.texts))
    np.testing.assert_array_equal(mask, ref_mask)
    np.testing.assert_allclose(emb, ref_emb, atol=1e-6)
    assert s.texts == ("happy", "je suis", "sad abc", "我很生气") and s.group.tolist() == [0, 0, 1, 1]
    assert list(s.lang) == ["en", "fr", "en", "zh"]
    np.testing.assert_allclose(loaded.sets["goemotions_train"].labels[0, :2], [0.5, 0.5])
    assert loaded.sets["words"].labelled.tolist() == [True, True, False]


def test_broken_bundles_are_named(tmp_path, tiny):
    _, _, path = tiny
    with pytest.raises(ModelFileError, match="not readable"):
        tune_bundle.load(tmp_path / "missing.npz")
    z = dict(np.load(path))
    z["meta"] = np.frombuffer(json.dumps({"format": "other"}).encode(), np.uint8)
    np.savez(tmp_path / "bad.npz", **z)
    with pytest.raises(ModelFileError, match="format"):
        tune_bundle.load(tmp_path / "bad.npz")


def test_a_sweep_trains_selects_and_writes_adapters_the_build_reads(tiny, tmp_path):
    w, b, _ = tiny
    recipes = [tune_encoder.TuneOptions(name="small", rank=2, layers=1, epochs=3, batch=8, lr=5e-2),
               tune_encoder.TuneOptions(name="wide", rank=4, targets=("q", "v", "fo"), epochs=3, batch=8, lr=5e-2,
                                        consistency=0.0)]
    out = tmp_path / "tune"
    summary = tune_encoder.run(b, recipes, out, keep=2, eval_train=14, eval_dev=3)
    assert set(summary["recipes"]) == {"small", "wide"} and sorted(summary["order"]) == ["small", "wide"]
    for n in ("small", "wide"):
        r = summary["recipes"][n]
        assert 0.0 <= r["dev_balanced_accuracy"] <= 1.0 and 0.0 <= r["parallel_agreement_with_english"] <= 1.0
        deltas = e5_build.load_adapter(out / n / e5_build.ADAPTER_FILE, w.config)
        assert deltas and max(float(np.abs(d).max()) for d in deltas.values()) > 0      # it trained
        meta = json.loads((out / n / "encoder_adapter.json").read_text())
        assert meta["training"]["name"] == n and meta["dev"]["tuned"]["dev_balanced_accuracy"] == r["dev_balanced_accuracy"]
    langs = {n: json.loads((out / n / "encoder_adapter.json").read_text())["data"]["languages"] for n in ("small", "wide")}
    assert langs["small"].endswith("cross-entropy + consistency with the English sentence")   # what each one used
    assert langs["wide"].endswith(": cross-entropy")
    small = e5_build.load_adapter(out / "small" / e5_build.ADAPTER_FILE, w.config)
    assert sorted(small) == sorted(f"l1.{t}.w" for t in ("q", "k", "v", "ao", "fi", "fo"))     # top block only
    assert json.loads((out / "summary.json").read_text())["order"] == summary["order"]
    one = tune_encoder.run(b, recipes, tmp_path / "one", keep=1, eval_train=14, eval_dev=3)   # the best only
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == sorted([one["order"][0], "summary.json"])
    # a recipe can start from a written adapter (epochs 0: evaluate it as it is)
    again = tune_encoder.new_model(b, tune_encoder.TuneOptions(rank=2, layers=1, init=str(out / "small" /
                                                                                          e5_build.ADAPTER_FILE)),
                                   torch.device("cpu"))
    for k, d in again.deltas().items():
        np.testing.assert_allclose(d, small[k], atol=1e-3)
    with pytest.raises(InvalidInputError, match="match rank"):
        tune_encoder.new_model(b, tune_encoder.TuneOptions(rank=2, layers=2, init=str(out / "small" /
                                                                                      e5_build.ADAPTER_FILE)),
                               torch.device("cpu"))


def test_selection_prefers_accuracy_among_recipes_that_keep_the_languages():
    frozen = {"parallel_agreement_with_english": 0.8}
    res = {"a": {"dev_balanced_accuracy": 0.70, "parallel_agreement_with_english": 0.79},
           "b": {"dev_balanced_accuracy": 0.66, "parallel_agreement_with_english": 0.85},
           "c": {"dev_balanced_accuracy": 0.68, "parallel_agreement_with_english": 0.81}}
    assert tune_encoder.select(res, frozen) == ["c", "b", "a"]


def test_the_tuned_module_starts_equal_to_the_frozen_one(tiny):
    w, b, _ = tiny
    model = tune_encoder.new_model(b, tune_encoder.TuneOptions(rank=2, layers=1), torch.device("cpu"))
    assert list(model.lora_a) and all(k.startswith("l1_") for k in model.lora_a)
    ref = LoraE5(w.config, w.tensors, LoraOptions(rank=2))
    inputs = tune_encoder._Inputs(b, torch.device("cpu"))
    ids = list(b.sets["words"].ids)
    e, m = batch_inputs(w, list(b.sets["words"].texts))
    want = ref(torch.from_numpy(e), torch.from_numpy(m))["embedding"].detach().numpy()
    np.testing.assert_allclose(tune_encoder.embed(model, inputs, ids), want, atol=1e-5)


def test_tuning_recipes_are_validated():
    with pytest.raises(InvalidInputError, match="accepted"):
        tune_encoder.TuneOptions(targets=("q", "attn"))
    with pytest.raises(InvalidInputError, match="unknown"):
        tune_encoder.TuneOptions.from_mapping({"name": "x", "ranks": 4})
    assert tune_encoder.TuneOptions.from_mapping({"targets": "q,v"}).targets == ("q", "v")


def test_the_frozen_blocks_memo_gives_the_full_forward_and_runs_each_row_once(tiny):
    w, b, _ = tiny
    model = tune_encoder.new_model(b, tune_encoder.TuneOptions(rank=2, layers=1), torch.device("cpu"))
    with torch.no_grad():                                     # a non-zero adapter on the top block
        for p in model.lora_b.values():
            p.normal_(0.0, 0.3)
    inputs = tune_encoder._Inputs(b, torch.device("cpu"))
    ids = list(b.sets["goemotions_train"].ids)
    want = tune_encoder.embed(model, inputs, ids)
    hidden = tune_encoder._Hidden(model, inputs, tune_encoder.first_block(b, tune_encoder.TuneOptions(layers=1)))
    assert hidden.start == 1
    calls = []
    real = model.hidden
    model.hidden = lambda e, m, stop: calls.append(len(e)) or real(e, m, stop)
    got = tune_encoder.embed_rows(model, hidden, b, "goemotions_train", np.arange(len(ids)))
    np.testing.assert_allclose(got, want, atol=2e-3)          # float16 memo
    again = tune_encoder.embed_rows(model, hidden, b, "goemotions_train", [5, 3, 5])
    np.testing.assert_allclose(again, got[[5, 3, 5]], atol=1e-6)
    assert sum(calls) == len(ids) and len(hidden.memo["goemotions_train"]) == len(ids)   # each row once
    e, m = inputs(ids[:4])
    full = model(e, m)["embedding"]
    split = model(model.hidden(e, m, 1), m, start=1)["embedding"]
    np.testing.assert_allclose(split.detach().numpy(), full.detach().numpy(), atol=1e-6)
    with pytest.raises(InvalidInputError, match="frozen memo"):       # a memo above an adapted block
        tune_encoder.train(b, tune_encoder.TuneOptions(rank=2, layers=2, epochs=1, batch=8), torch.device("cpu"),
                           {"words": np.zeros((3, w.config.hidden), np.float32),
                            "calibration": np.zeros((1, w.config.hidden), np.float32)}, hidden)


def test_sampling_balance_and_length_sorted_batches():
    labels = np.zeros((1000, K), np.float32)
    labels[:900, 0] = 1.0
    labels[900:, 1] = 1.0
    for balance, share in ((1.0, 0.5), (0.0, 0.1), (0.5, 0.25)):
        draw = tune_encoder._balanced_sampler(labels, np.random.default_rng(0), balance)
        got = (draw(20000) >= 900).mean()
        assert abs(got - share) < 0.02, (balance, got)
    lengths = np.random.default_rng(1).integers(3, 60, 1000)
    draw = tune_encoder._balanced_sampler(labels, np.random.default_rng(0), 0.0)
    gen = tune_encoder._length_batches(draw, lengths, 16, np.random.default_rng(2))
    batches = [next(gen) for _ in range(80)]
    assert all(len(x) == 16 for x in batches)
    pad = np.mean([lengths[x].mean() / lengths[x].max() for x in batches])
    rnd = np.random.default_rng(3).integers(0, 1000, (80, 16))
    assert pad > 0.85 > np.mean([lengths[x].mean() / lengths[x].max() for x in rnd])      # less padding
    with pytest.raises(InvalidInputError, match="balance"):
        tune_encoder.TuneOptions(balance=1.5)


def test_eval_every_keeps_the_best_state_by_the_selection_rule(tiny):
    w, b, _ = tiny
    opts = tune_encoder.TuneOptions(rank=2, layers=1, epochs=4, batch=8, lr=5e-2, eval_every=3)   # 21 steps
    scripted = iter([(0.5, 0.9), (0.8, 0.9), (0.9, 0.1), (0.6, 0.9), (0.7, 0.9), (0.55, 0.9), (0.5, 0.9), (0.5, 0.9)])
    seen = []

    def evaluator(model):
        ba, agree = next(scripted)
        seen.append({k: v.detach().clone() for k, v in model.lora_b.items()})
        return {"dev_balanced_accuracy": ba, "dev_macro_f1": ba, "parallel_agreement_with_english": agree}
    frozen = {"words": np.zeros((3, w.config.hidden), np.float32),
              "calibration": np.zeros((1, w.config.hidden), np.float32)}
    res = tune_encoder.train(b, opts, torch.device("cpu"), frozen, evaluator=evaluator, floor=0.5)
    assert res["steps"] == 21 and [h["step"] for h in res["history"]] == [3, 6, 9, 12, 15, 18, 21]
    assert res["best_step"] == 6                      # step 9 reads better but loses the languages (0.1 < 0.5)
    for k, v in res["model"].lora_b.items():
        np.testing.assert_array_equal(v.detach().numpy(), seen[1][k].numpy())
        assert not np.array_equal(v.detach().numpy(), seen[-1][k].numpy())
