"""eval.emo3d end to end on tiny data with injected predictor, renderer, judge and CLIP; the bank;
the offline judges' plumbing."""
import json

import numpy as np
import pytest

from emo3d import schema
from emo3d.errors import InvalidInputError
from eval import emo3d as cli
from eval.bank import BankOptions, PromptBank, bank_from_samples
from eval.judges import JudgeResult, RoundTripJudge, fer_to_emotions


class _S:   # duck-typed dataset.Sample
    def __init__(self, i, emo, text, bs=None):
        self.sample_id, self.emotions, self.texts = i, np.asarray(emo, float), (text, "alt")
        self.blendshapes = (bs, None, None, None)


def _samples(n_per=(5, 3, 4, 2, 3, 3, 2, 1)):
    out, i = [], 0
    rng = np.random.default_rng(0)
    for e, n in enumerate(n_per):
        for _ in range(n):
            emo = 0.1 * rng.random(8)
            emo[e] = 1.0
            bs = rng.random(52).astype(np.float32)
            out.append(_S(i, emo / emo.sum(), f"prompt {i} {schema.EMOTIONS[e]}", bs))
            i += 1
    return out


def test_bank_is_balanced_and_deterministic(tmp_path):
    b = bank_from_samples(_samples(), BankOptions(size=16))
    assert len(b) == 16
    mix = b.mix()
    assert all(v >= 1 for v in mix.values()) and max(mix.values()) <= 3
    assert mix["contempt"] == 1 and mix["neutral"] == 3    # contempt has only one sample: others fill
    b2 = bank_from_samples(_samples(), BankOptions(size=16))
    assert b.texts == b2.texts
    b.save(tmp_path / "b.json")
    b3 = PromptBank.load(tmp_path / "b.json")
    assert b3.texts == b.texts and np.allclose(b3.truth, b.truth)
    with pytest.raises(InvalidInputError):
        BankOptions(size=0)


class _Judge:
    """Injected judge: 'happiness' seen where the render is bright."""
    name = "bright"

    def __init__(self):
        self.calls = 0

    def evaluate(self, images, *, emotions, vectors):
        self.calls += 1
        v = np.array([im.mean() / 255.0 for im in images])
        return JudgeResult("bright", float(v.mean()), v, {"n": len(images)})


class _Clip:
    """Fake CLIP: text → one-hot of its emotion word; image → one-hot of the colour's channel."""
    name = "fake-clip"

    def encode_text(self, texts):
        out = np.zeros((len(texts), 8), np.float32)
        for i, t in enumerate(texts):
            out[i, schema.EMOTIONS.index(t.split()[-1])] = 1.0
        return out + 1e-3

    def encode_images(self, images):
        return np.stack([np.eye(8, dtype=np.float32)[int(im[0, 0, 0]) % 8] + 1e-3 for im in images])


def _predict_good(texts):
    # encodes the emotion index in the first score so the fake renderer can show it
    out = np.zeros((len(texts), 52), np.float32)
    for i, t in enumerate(texts):
        out[i, 1] = schema.EMOTIONS.index(t.split()[-1]) / 10.0
    return out


def _render(w):
    img = np.zeros((32, 32, 3), np.uint8)
    img[..., 0] = int(round(w[1] * 10))
    img[..., 1] = 200
    return img


def test_cli_end_to_end_with_injected_pieces(tmp_path):
    bank = bank_from_samples(_samples(), BankOptions(size=16))
    opts = cli.EvalOptions(models=("good", "bad", "groundtruth"), data="tiny", out=str(tmp_path / "rep"),
                           judges=("clip",), k=3, bank_size=16, progress=False)
    judge = _Judge()
    preds = {"good": _predict_good, "bad": lambda t: np.full((len(t), 52), 0.7, np.float32)}
    res = cli.run(opts, bank=bank, predictors=preds, render=_render, judges={"bright": judge},
                  clip=_Clip())
    good, bad, truth = res.models
    assert truth.name == "groundtruth" and truth.mse == pytest.approx(0.0, abs=1e-12)
    assert good.name == "good" and bad.name == "bad"
    assert good.emo3d < bad.emo3d                  # the good model's faces retrieve their emotion
    assert good.recall_at_k > bad.recall_at_k
    assert 0.5 <= good.emo3d < 1.0
    cols = [schema.MEDIAPIPE_INDEX[n] for n in schema.MODEL_NAMES]
    p = _predict_good(bank.texts)
    assert good.mse == pytest.approx(float(np.mean((p[:, cols] - bank.truth[:, cols]) ** 2)), rel=1e-5)
    assert good.judges["bright"].extra["n"] == 16
    out = tmp_path / "rep"
    for f in ("report.md", "results.json", "bars.png", "contact_sheet.png", "bank.json"):
        assert (out / f).is_file() and (out / f).stat().st_size > 100, f
    md = (out / "report.md").read_text()
    assert "| Model | MSE | Emo3D | R@3 | bright |" in md
    # every number carries its bootstrap interval, which contains it
    for m in (good, bad):
        for col in ("mse", "emo3d", "recall_at_k", "bright"):
            iv = m.intervals[col]
            assert iv.lo <= iv.value <= iv.hi, (m.name, col)
        assert m.intervals["emo3d"].value == pytest.approx(m.emo3d, rel=1e-12)
        assert m.intervals["recall_at_k"].value == pytest.approx(m.recall_at_k)
        assert f"{m.emo3d:.3f} [{m.intervals['emo3d'].lo:.3f}, {m.intervals['emo3d'].hi:.3f}]" in md
    assert truth.intervals["mse"].hi == pytest.approx(0.0, abs=1e-12)
    assert "Beside the paper's Table 2" in md and "| BERT | 0.03 | 0.796 |" in md
    assert "| CLIP | 0.014 | 0.737 |" in md and "| k (prompts retrieved) |" in md and "| ε |" in md
    data = json.loads((out / "results.json").read_text())
    assert data["models"][0]["emo3d"] == pytest.approx(good.emo3d)
    assert data["intervals"]["good"]["emo3d"]["lo"] == pytest.approx(good.intervals["emo3d"].lo)
    assert data["paper_table2"][0] == {"model": "BERT", "mse": 0.03, "emo3d": 0.796}
    assert len(data["models"][0]["judges"]["clip"]["topk"]) == 16
    from PIL import Image
    assert Image.open(out / "contact_sheet.png").size[0] > 200

    # resumable: predictions, renders and embeddings come from the cache
    def boom(*a, **k):
        raise AssertionError("should have been cached")
    res2 = cli.run(opts, bank=bank, predictors={"good": boom, "bad": boom, "groundtruth": boom},
                   render=boom,
                   judges={"bright": judge}, clip=type("C", (_Clip,), {"encode_images": boom})())
    assert res2.models[0].emo3d == pytest.approx(good.emo3d)


def test_official_compat_in_cli(tmp_path):
    bank = bank_from_samples(_samples(), BankOptions(size=16))
    opts = cli.EvalOptions(models=("good",), data="tiny", out=str(tmp_path / "o"), judges=("clip",),
                           k=3, bank_size=16, compat="official", alpha=4.0, progress=False)
    res = cli.run(opts, bank=bank, predictors={"good": _predict_good}, render=_render, clip=_Clip())
    clip = res.models[0].judges["clip"]
    assert clip.extra["compat"] == "official" and clip.extra["alpha"] == 4.0
    assert res.models[0].mean_kl == pytest.approx(clip.values.sum() / (16 * 4.0))
    assert res.models[0].emo3d > 0.5
    report = (tmp_path / "o" / "report.md").read_text()
    assert "α = 4" in report and "| α |" in report
    with pytest.raises(InvalidInputError, match="needs alpha"):
        cli.EvalOptions(models=("good",), data="tiny", out="o", judges=("clip",), compat="official")


def test_bad_options_and_offline_clip_fail_fast(tmp_path, monkeypatch, capsys):
    with pytest.raises(InvalidInputError):
        cli.EvalOptions(models=("x",), data="d", out="o", judges=("nope",))
    with pytest.raises(InvalidInputError, match="larger than the bank"):
        cli.EvalOptions(models=("x",), data="d", out="o", k=20, bank_size=10)
    with pytest.raises(InvalidInputError):
        cli.EvalOptions(models=(), data="d", out="o")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    rc = cli.main(["--models", "default", "--data", str(tmp_path / "nodata"), "--out",
                   str(tmp_path / "r"), "--judge", "clip"])
    err = capsys.readouterr().err
    assert rc == 2 and "--clip" in err and "--judge fer" in err


def test_render_must_return_uint8_rgb(tmp_path):
    bank = bank_from_samples(_samples(), BankOptions(size=8))
    opts = cli.EvalOptions(models=("good",), data="tiny", out=str(tmp_path / "o"), judges=("fer",),
                           k=3, bank_size=8, progress=False)
    with pytest.raises(InvalidInputError, match="uint8"):
        cli.run(opts, bank=bank, predictors={"good": _predict_good},
                render=lambda w: np.zeros((8, 8), np.float32), judges={"fer": _Judge()})


def test_fer_mapping_and_roundtrip_judge():
    p7 = np.array([0.1, 0.4, 0.0, 0.2, 0.0, 0.1, 0.2])   # angry disgust fear happy sad surprise neutral
    p8 = fer_to_emotions(p7)
    E = schema.EMOTIONS
    assert p8[E.index("anger")] == pytest.approx(0.1)
    assert p8[E.index("disgust")] == pytest.approx(0.2) and p8[E.index("contempt")] == pytest.approx(0.2)
    assert p8[E.index("happiness")] == pytest.approx(0.2) and p8.sum() == pytest.approx(1.0)
    assert fer_to_emotions(p7, 0.0)[E.index("contempt")] == 0.0
    req = np.zeros((3, 52))
    req[:, 5] = [0.2, 0.4, 0.6]
    answers = iter([req[0] + 0.1, None, req[2]])
    j = RoundTripJudge(scores_fn=lambda im: next(answers))
    r = j.evaluate([np.zeros((4, 4, 3), np.uint8)] * 3, vectors=req)
    assert r.extra["detect_rate"] == pytest.approx(2 / 3)
    assert np.isnan(r.values[1])
    assert r.values[0] == pytest.approx(0.01 * 51 / 51 * 51 / 51)
    assert r.score == pytest.approx(0.005)


def test_offline_judges_on_a_bank_smaller_than_k(tmp_path):
    # k (default 10) only matters for CLIP retrieval: a 6-prompt bank with --judge fer must run
    bank = bank_from_samples(_samples(), BankOptions(size=6))
    opts = cli.EvalOptions(models=("good",), data="tiny", out=str(tmp_path / "o"), judges=("fer",),
                           bank_size=6, progress=False, resamples=200)
    res = cli.run(opts, bank=bank, predictors={"good": _predict_good}, render=_render,
                  judges={"fer": _Judge()})
    assert len(res.models[0].judges["fer"].values) == 6
    assert res.models[0].intervals["fer"].lo <= res.models[0].intervals["fer"].hi
    with pytest.raises(InvalidInputError, match="larger than the bank"):
        cli.EvalOptions(models=("x",), data="d", out="o", judges=("clip",), bank_size=6)


def test_renders_on_worker_processes_are_byte_identical(tmp_path):
    bank = bank_from_samples(_samples(), BankOptions(size=8))
    pngs = {}
    for workers in (1, 2):
        opts = cli.EvalOptions(models=("good",), data="tiny", out=str(tmp_path / f"w{workers}"), judges=("fer",),
                               bank_size=8, size=64, progress=False, resamples=100, workers=workers)
        res = cli.run(opts, bank=bank, predictors={"good": _predict_good}, judges={"fer": _Judge()})
        files = sorted((tmp_path / f"w{workers}" / "cache").rglob("*.png"))
        assert len(files) == 8
        pngs[workers] = [f.read_bytes() for f in files]
        pngs[f"score{workers}"] = res.models[0].judges["fer"].score
    assert pngs[1] == pngs[2] and pngs["score1"] == pngs["score2"]
    with pytest.raises(InvalidInputError, match="--workers"):
        cli.EvalOptions(models=("x",), data="d", out="o", workers=0)


def test_clip_image_embeddings_on_workers_match_one_process(tmp_path):
    from support.tiny_clip import make_tiny_clip_folder
    clip = make_tiny_clip_folder(tmp_path / "clip", projection_dim=16)
    bank = bank_from_samples(_samples(), BankOptions(size=8))
    res = {}
    for workers in (1, 2):
        opts = cli.EvalOptions(models=("good",), data="tiny", out=str(tmp_path / f"w{workers}"), judges=("clip",),
                               clip=str(clip), k=3, bank_size=8, size=32, progress=False, resamples=100,
                               workers=workers)
        res[workers] = cli.run(opts, bank=bank, predictors={"good": _predict_good}, render=_render)
        emb = sorted((tmp_path / f"w{workers}" / "cache").rglob("clip_*.npy"))
        res[f"emb{workers}"] = np.load([e for e in emb if "clip_text" not in e.name][0])
    assert res["emb1"].shape == (8, 16)
    np.testing.assert_allclose(res["emb1"], res["emb2"], atol=1e-5)
    assert res[1].models[0].emo3d == pytest.approx(res[2].models[0].emo3d, abs=1e-6)
