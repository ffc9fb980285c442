"""The CLIP path with a tiny random CLIP built in-test (transformers + ONNX export)."""
import numpy as np
import pytest
from support.assets import require_module

torch = require_module("torch", "pip install 'emo3d[train]'")
transformers = require_module("transformers", "pip install 'emo3d[train]'")

from emo3d.errors import AssetError  # noqa: E402
from eval.clip import (OnnxClip, Preprocess, TorchClip, export_onnx, load_clip,  # noqa: E402
                       preprocess_images)
from eval.metric import MetricOptions, emo3d_metric  # noqa: E402

WORDS = ["happy", "sad", "angry", "calm", "smile", "frown", "wide", "eyes", "a", "face", "with"]


def _tiny_clip(folder):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel,
                              PreTrainedTokenizerFast)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "[UNK]": 2}
    for w in WORDS:
        vocab[w] = len(vocab)
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", 0), ("<|endoftext|>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<|startoftext|>",
                                  eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                  unk_token="[UNK]")
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=16,
                         bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=2),
        projection_dim=16)
    model = CLIPModel(cfg).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    proc = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    proc.save_pretrained(folder)
    return model, tok, proc


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tinyclip")
    model, tok, proc = _tiny_clip(folder)
    return folder, model, tok, proc


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(40 + 3 * i, 52, 3), dtype=np.uint8) for i in range(n)]


def test_preprocessing_matches_clip_image_processor(tiny):
    folder, _, _, proc = tiny
    pre = Preprocess.from_folder(folder)
    assert pre.shortest_edge == 32 and pre.crop == (32, 32)
    ims = _images(3)
    ours = preprocess_images(ims, pre)
    for im, x in zip(ims, ours):
        ref = proc(images=im, return_tensors="np")["pixel_values"][0]
        np.testing.assert_allclose(x, ref, atol=1e-4)


def test_torch_clip_matches_model_and_scores(tiny):
    folder, model, tok, proc = tiny
    enc = load_clip(folder)
    assert isinstance(enc, TorchClip)
    texts = ["a happy face", "sad eyes", "angry frown with wide eyes", "calm"]
    t = enc.encode_text(texts)
    assert t.shape == (4, 16) and np.allclose(np.linalg.norm(t, axis=1), 1, atol=1e-5)
    inputs = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = model.get_text_features(**inputs)
    ref = getattr(ref, "pooler_output", ref).numpy()
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(t, ref, atol=1e-5)
    ims = _images(4, seed=1)
    i = enc.encode_images(ims)
    px = torch.from_numpy(proc(images=ims, return_tensors="np")["pixel_values"])
    with torch.no_grad():
        ref_i = model.get_image_features(pixel_values=px)
    ref_i = getattr(ref_i, "pooler_output", ref_i).numpy()
    ref_i /= np.linalg.norm(ref_i, axis=1, keepdims=True)
    np.testing.assert_allclose(i, ref_i, atol=1e-4)
    emo = np.eye(4, 8)
    r = emo3d_metric(i, t, emo, options=MetricOptions(k=2))
    assert 0.5 <= r.score < 1.0 and r.topk.shape == (4, 2)


def test_onnx_towers_match_torch(tiny, tmp_path):
    folder = tiny[0]
    out = export_onnx(folder, tmp_path / "onnx")
    enc = load_clip(out)
    assert isinstance(enc, OnnxClip)
    ref = TorchClip(folder)
    texts = ["a happy face", "frown", "calm eyes with a smile"]
    np.testing.assert_allclose(enc.encode_text(texts), ref.encode_text(texts), atol=1e-4)
    ims = _images(2, seed=2)
    np.testing.assert_allclose(enc.encode_images(ims), ref.encode_images(ims), atol=1e-4)


def test_offline_without_clip_fails_at_once_naming_options(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(AssetError) as e:
        load_clip(None)
    msg = str(e.value)
    assert "--clip" in msg and "--judge fer" in msg and "roundtrip" in msg
    with pytest.raises(AssetError, match="--clip"):
        load_clip(tmp_path)          # a folder that is no CLIP
