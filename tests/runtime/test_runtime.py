"""Runtime engine, providers and the emo3d-run CLI, on tiny torch-free model folders."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from support.assets import machine_lacks

from emo3d.errors import InvalidInputError, ModelFileError, ProviderError
from emo3d.manifest import ModelManifest
from emo3d.schema import EMOTIONS, MEDIAPIPE_NAMES
from runtime import providers
from runtime.engine import Engine, EngineOptions, Prediction, TruncationWarning
from runtime.providers import ProviderFallbackWarning, check_session, select_providers
from support.tiny import make_tiny_model

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
GPU_WHEEL = [TRT, CUDA, CPU]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tiny_emotion(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny_emo") / "model", emotions=True)


@pytest.fixture(scope="module")
def engine(tiny) -> Engine:
    return Engine.create(EngineOptions(model=tiny, device="cpu"))


def _copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


# --- providers ------------------------------------------------------------------------------
def test_auto_on_gpu_wheel_without_gpu_runs_cpu():
    choice = select_providers("auto", available=GPU_WHEEL, gpu=False, tensorrt=True)
    assert choice.providers == [CPU]
    assert choice.device == "cpu"


def test_auto_prefers_tensorrt_then_cuda_when_a_gpu_exists():
    assert select_providers("auto", available=GPU_WHEEL, gpu=True, tensorrt=True).providers == [TRT, CUDA, CPU]
    assert select_providers("auto", available=GPU_WHEEL, gpu=True, tensorrt=False).providers == [CUDA, CPU]
    assert select_providers("auto", available=[CPU], gpu=True).providers == [CPU]


@pytest.mark.parametrize("device,avail,gpu", [("cuda", [CPU], False), ("cuda", GPU_WHEEL, False),
                                               ("tensorrt", [CPU], True), ("cuda", [CPU], True)])
def test_missing_requested_provider_falls_back_with_warning(device, avail, gpu):
    with pytest.warns(ProviderFallbackWarning, match=device):
        choice = select_providers(device, available=avail, gpu=gpu, tensorrt=False)
    assert choice.providers[-1] == CPU
    assert choice.providers[0] != providers.PROVIDER_NAMES[device]


def test_tensorrt_missing_falls_back_to_cuda():
    with pytest.warns(ProviderFallbackWarning):
        choice = select_providers("tensorrt", available=GPU_WHEEL, gpu=True, tensorrt=False)
    assert choice.providers == [CUDA, CPU]


@pytest.mark.parametrize("device,avail", [("cuda", [CPU]), ("cuda", GPU_WHEEL), ("tensorrt", GPU_WHEEL)])
def test_strict_device_raises(device, avail):
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # strict must not warn-and-continue
        with pytest.raises(ProviderError, match="strict"):
            select_providers(device, strict=True, available=avail, gpu=False)


def test_unknown_device_rejected():
    with pytest.raises(ProviderError, match="auto, cpu, cuda, tensorrt"):
        select_providers("metal", available=[CPU], gpu=False)
    with pytest.raises(InvalidInputError):
        EngineOptions(device="metal")


def test_gpu_probe_without_device_nodes_or_nvidia_smi(monkeypatch):
    providers.gpu_present.cache_clear()
    monkeypatch.setattr(providers.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(providers.shutil, "which", lambda name: None)
    monkeypatch.delenv("EMO3D_NO_GPU", raising=False)
    try:
        assert providers.gpu_present() is False
    finally:
        providers.gpu_present.cache_clear()


def test_gpu_probe_env_override(monkeypatch):
    providers.gpu_present.cache_clear()
    monkeypatch.setattr(providers.glob, "glob", lambda pattern: ["/dev/nvidia0"])
    monkeypatch.setenv("EMO3D_NO_GPU", "1")
    try:
        assert providers.gpu_present() is False
    finally:
        providers.gpu_present.cache_clear()


def test_session_that_did_not_initialise_the_gpu_is_reported():
    choice = providers.ProviderChoice("cuda", [CUDA, CPU])
    with pytest.warns(ProviderFallbackWarning, match="did not initialise"):
        assert check_session(choice, [CPU], strict=False) == CPU
    with pytest.raises(ProviderError):
        check_session(choice, [CPU], strict=True)
    assert check_session(choice, [CUDA, CPU], strict=True) == CUDA


def test_engine_cuda_request_without_gpu_falls_back_or_fails_strict(tiny, monkeypatch):
    monkeypatch.setattr(providers, "available_providers", lambda: list(GPU_WHEEL))
    monkeypatch.setattr(providers, "gpu_present", lambda: False)
    with pytest.warns(ProviderFallbackWarning):
        e = Engine.create(model=tiny, device="cuda")
    assert e.provider == CPU
    assert e.predict("happy smile").provider == CPU
    with pytest.raises(ProviderError):
        Engine.create(model=tiny, device="cuda", strict_device=True)


def test_gpu_provider_that_fails_to_initialise_falls_back(tiny, monkeypatch):
    """'GPU wheel, driver says GPU, CUDA init fails': the file is fine, so warn + CPU (or fail strict)."""
    import onnxruntime as ort
    real = ort.InferenceSession

    def fake(path, sess_options=None, providers=None, **kw):
        if providers and CUDA in providers:
            raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected")
        return real(path, sess_options=sess_options, providers=providers, **kw)

    monkeypatch.setattr(ort, "InferenceSession", fake)
    monkeypatch.setattr(providers, "available_providers", lambda: list(GPU_WHEEL))
    monkeypatch.setattr(providers, "gpu_present", lambda: True)
    monkeypatch.setattr(providers, "tensorrt_present", lambda: False)
    with pytest.warns(ProviderFallbackWarning, match="did not initialise"):
        e = Engine.create(model=tiny, device="cuda")
    assert e.provider == CPU and e.predict("calm").vector.shape == (52,)
    with pytest.raises(ProviderError):
        Engine.create(model=tiny, device="cuda", strict_device=True)


def test_engine_auto_logs_one_provider_line(tiny, caplog, monkeypatch):
    monkeypatch.setattr(providers, "available_providers", lambda: list(GPU_WHEEL))
    monkeypatch.setattr(providers, "gpu_present", lambda: False)
    with caplog.at_level("INFO", logger="emo3d.runtime"):
        e = Engine.create(model=tiny, device="auto")
    lines = [r.getMessage() for r in caplog.records if r.name == "emo3d.runtime"]
    assert len(lines) == 1 and CPU in lines[0]
    assert e.provider == CPU


@pytest.mark.gpu
def test_cuda_provider_runs_on_a_gpu(tiny):
    if not providers.gpu_present() or CUDA not in providers.available_providers():
        machine_lacks("an NVIDIA GPU with onnxruntime-gpu (CUDAExecutionProvider)")
    e = Engine.create(model=tiny, device="cuda", strict_device=True)
    cpu = Engine.create(model=tiny, device="cpu")
    assert e.provider == CUDA
    np.testing.assert_allclose(e.predict("furious scowl").vector, cpu.predict("furious scowl").vector, atol=1e-4)


# --- engine ---------------------------------------------------------------------------------
def test_predict_returns_52_named_scores(engine):
    p = engine.predict("furious scowl")
    assert isinstance(p, Prediction)
    assert list(p.scores) == list(MEDIAPIPE_NAMES)
    assert p.vector.shape == (52,) and p.vector.dtype == np.float32
    np.testing.assert_allclose(p.vector, [p.scores[n] for n in MEDIAPIPE_NAMES])
    assert p.scores["_neutral"] == 0.0
    assert 0 < p.vector[1:].min() and p.vector.max() < 1      # sigmoid outputs
    assert p.emotions is None and p.truncated is False and p.provider == CPU
    assert p.top(3)[0][1] == max(p.vector[1:])


def test_predict_matches_a_numpy_reference(tiny, engine):
    """The engine feeds the graph exactly [CLS] words [SEP] (no padding to 32 for one prompt)."""
    import onnx
    from onnx import numpy_helper
    from tokenizers import Tokenizer
    m = onnx.load(str(tiny / "model.onnx"))
    w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    tok = Tokenizer.from_file(str(tiny / "tokenizer.json"))
    assert tok.padding is not None          # the file pads, like the packaged MiniLM
    assert engine._tok.padding is None      # the engine disabled it
    ids = [2, tok.token_to_id("furious"), tok.token_to_id("scowl"), 3]
    ref = 1 / (1 + np.exp(-(w["emb"][ids].mean(0) @ w["w"] + w["b"])))
    np.testing.assert_allclose(engine.predict("Furious   scowl").vector[1:], ref, atol=1e-5)


def test_batch_equals_single(engine):
    texts = ["happy smile", "a very big sad frown and fear", "surprised gasp", "calm"]
    engine.clear_cache()
    batch = engine.predict(texts)
    engine.clear_cache()
    for t, b in zip(texts, batch):
        assert b.text == t
        np.testing.assert_allclose(b.vector, engine.predict(t).vector, atol=1e-6)


def test_emotion_model_reports_emotions(tiny_emotion):
    p = Engine.create(model=tiny_emotion, device="cpu").predict("angry scowl")
    assert list(p.emotions) == list(EMOTIONS)
    assert abs(sum(p.emotions.values()) - 1) < 1e-5


def test_cache_hits_and_lru_eviction(tiny):
    e = Engine.create(model=tiny, device="cpu", cache_size=2)
    a1 = e.predict("happy smile")
    a2 = e.predict("happy smile")
    assert not a1.cached and a2.cached
    np.testing.assert_array_equal(a1.vector, a2.vector)
    a2.vector[:] = 5          # callers get copies: the cache is not corrupted
    assert e.predict("happy smile").vector.max() < 1
    e.predict("sad frown")
    e.predict("surprised gasp")              # evicts "happy smile" (least recently used)
    info = e.cache_info()
    assert info["size"] == 2 and info["hits"] == 2
    assert not e.predict("happy smile").cached
    assert e.predict("surprised gasp").cached
    out = e.predict(["calm face", "calm face", "surprised gasp"])   # duplicates computed once
    assert [p.cached for p in out] == [False, False, True]
    np.testing.assert_array_equal(out[0].vector, out[1].vector)


def test_cache_disabled(tiny):
    e = Engine.create(model=tiny, device="cpu", cache_size=0)
    e.predict("calm")
    assert not e.predict("calm").cached and e.cache_info()["size"] == 0


@pytest.mark.parametrize("bad", ["", "   ", "\n\t "])
def test_empty_or_whitespace_text_is_rejected(engine, bad):
    with pytest.raises(InvalidInputError, match="empty"):
        engine.predict(bad)
    with pytest.raises(InvalidInputError, match="#1"):
        engine.predict(["ok", bad])


def test_non_text_input_is_rejected(engine):
    with pytest.raises(InvalidInputError):
        engine.predict(b"bytes")
    with pytest.raises(InvalidInputError):
        engine.predict(["fine", 3])
    with pytest.raises(InvalidInputError):
        engine.predict(42)


def test_over_long_text_truncated_with_one_warning(engine):
    engine.clear_cache()
    words = ("happy sad fear calm " * 20).split()           # 80 words; limit 16 tokens = 14 words
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        p = engine.predict(" ".join(words))
        batch = engine.predict([" ".join(words[1:]), " ".join(words[2:]), "calm"])
    trunc = [w for w in rec if issubclass(w.category, TruncationWarning)]
    assert len(trunc) == 2                               # one per call, not one per text
    assert "2 text(s)" in str(trunc[1].message)
    assert p.truncated and batch[0].truncated and not batch[2].truncated
    np.testing.assert_allclose(p.vector, engine.predict(" ".join(words[:14])).vector, atol=1e-6)


def test_missing_model_folder_names_it(tmp_path):
    with pytest.raises(ModelFileError, match="nowhere"):
        Engine.create(model=tmp_path / "nowhere")


def test_corrupt_onnx_names_the_file(tiny, tmp_path):
    m = _copy_model(tiny, tmp_path / "m")
    (m / "model.onnx").write_bytes(b"\x08\x07this is not protobuf" * 10)
    with pytest.raises(ModelFileError, match="model.onnx"):
        Engine.create(model=m, device="cpu")


def test_corrupt_tokenizer_names_the_file(tiny, tmp_path):
    m = _copy_model(tiny, tmp_path / "m")
    (m / "tokenizer.json").write_text("{ not json")
    with pytest.raises(ModelFileError, match="tokenizer.json"):
        Engine.create(model=m, device="cpu")


def test_missing_onnx_file_and_missing_manifest_entry(tiny, tmp_path):
    m = _copy_model(tiny, tmp_path / "m")
    (m / "model.onnx").unlink()
    with pytest.raises(ModelFileError, match="model.onnx"):
        Engine.create(model=m, device="cpu")
    m2 = _copy_model(tiny, tmp_path / "m2")
    man = ModelManifest.load(m2)
    del man.files["onnx"]
    man.save(m2)
    with pytest.raises(ModelFileError, match="'onnx'"):
        Engine.create(model=m2, device="cpu")
    with pytest.raises(ModelFileError, match="onnx_int8"):
        Engine.create(model=tiny, device="cpu", precision="int8")


def test_fast_load_maps_an_external_data_copy(tiny, engine, isolated_cache, monkeypatch):
    from runtime import engine as engine_mod
    monkeypatch.setattr(engine_mod, "MMAP_MIN_BYTES", 0)
    fast = Engine.create(model=tiny, device="cpu", fast_load=True)
    copies = list(isolated_cache.glob("runtime/mmap-*/model.onnx.data"))
    assert len(copies) == 1 and copies[0].stat().st_size > 0
    np.testing.assert_allclose(fast.predict("sad frown").vector, engine.predict("sad frown").vector, atol=1e-6)
    assert engine_mod.mmap_copy(fast.onnx_path) == copies[0].parent / "model.onnx"   # reused, not rewritten


def test_int8_precision_reads_onnx_int8(tiny, tmp_path, engine):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    m = _copy_model(tiny, tmp_path / "m")
    quantize_dynamic(str(m / "model.onnx"), str(m / "model.int8.onnx"), weight_type=QuantType.QInt8)
    man = ModelManifest.load(m)
    man.files["onnx_int8"] = "model.int8.onnx"
    man.save(m)
    e8 = Engine.create(model=m, device="cpu", precision="int8")
    assert e8.onnx_path.name == "model.int8.onnx"
    np.testing.assert_allclose(e8.predict("furious scowl").vector, engine.predict("furious scowl").vector, atol=0.05)


def test_factory_spellings_and_close(tiny):
    with Engine.create_from_model_path(tiny, device="cpu") as e:
        assert e.predict("calm").vector.shape == (52,)
    with pytest.raises(InvalidInputError, match="closed"):
        e.predict("sad")
    assert Engine.create_from_options(EngineOptions(model=tiny, device="cpu")).provider == CPU


def test_options_validated():
    for kw in ({"threads": -1}, {"cache_size": "x"}, {"model": ""}, {"precision": "fp16"}, {"batch_size": 0}):
        with pytest.raises(InvalidInputError):
            EngineOptions(**kw)


def test_runtime_imports_no_torch_and_is_lazy():
    code = ("import sys, runtime; assert 'onnxruntime' not in sys.modules; "
            "from runtime import Engine, AvatarLoop, LoopOptions, Frame, Prediction, EngineOptions; "
            "import runtime.cli, runtime.preview; assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# --- CLI ------------------------------------------------------------------------------------
def _run_cli(*args, stdin: bytes | None = None, cwd=None):
    env = dict(os.environ, EMO3D_NO_GPU="1")
    env.pop("DISPLAY", None)
    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], input=stdin, capture_output=True,
                          env=env, cwd=cwd, timeout=120)


def test_cli_json_prints_one_object_of_52_scores(tiny, engine):
    r = _run_cli("--json", "--model", str(tiny), "furious", "scowl")
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode().strip().splitlines()
    assert len(lines) == 1
    scores = json.loads(lines[0])
    assert list(scores) == list(MEDIAPIPE_NAMES)
    np.testing.assert_allclose([scores[n] for n in MEDIAPIPE_NAMES], engine.predict("furious scowl").vector, atol=1e-6)
    assert b"CPUExecutionProvider" in r.stderr        # the one provider line


def test_cli_stdin_skips_non_utf8_and_empty_lines(tiny):
    r = _run_cli("--json", "--stdin", "--model", str(tiny), stdin=b"happy smile\n\xff\xfe bad\n   \nsad frown\n")
    assert r.returncode == 0, r.stderr.decode()
    objs = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert len(objs) == 2
    err = r.stderr.decode()
    assert "line 2: not valid UTF-8" in err and "line 3: empty" in err


def test_cli_bad_inputs_fail_clearly(tiny, tmp_path):
    r = _run_cli("--json", "--model", str(tiny), "  ")
    assert r.returncode == 2 and b"empty" in r.stderr
    r = _run_cli("--json", "--model", str(tmp_path / "missing"), "happy")
    assert r.returncode == 1 and str(tmp_path / "missing").encode() in r.stderr
    assert r.stdout == b""


def test_cli_headless_writes_png_frames_and_gif(tiny, tmp_path, monkeypatch, capsys):
    from runtime import cli
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    out = tmp_path / "out"
    rc = cli.main(["--headless", "--model", str(tiny), "--out", str(out), "--transition-ms", "300",
                   "--hold-ms", "50", "--size", "96", "--fps", "60", "-q", "furious scowl"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "furious scowl" in text and "wrote" in text
    pngs = sorted((out / "000_furious_scowl").glob("frame_*.png"))
    assert len(pngs) >= 3                                   # ~0.35 s at 30 fps (fewer if the clock skipped)
    assert (out / "000_furious_scowl.gif").stat().st_size > 0
    from PIL import Image
    first, last = np.asarray(Image.open(pngs[0])), np.asarray(Image.open(pngs[-1]))
    assert first.shape[0] == 96 and not np.array_equal(first, last)   # the face moved


def test_cli_window_mode_reads_prompts_and_quits_on_q(tiny, monkeypatch, capsys):
    """The display branch with a stand-in window (no X server here): prompts from stdin reach the face."""
    import io
    from runtime import cli, preview

    class FakeWindow:
        shown: list = []

        def __init__(self, title, size, face=None):
            self.closed = False

        def show(self, frame, top_k=8):
            FakeWindow.shown.append(frame.text)
            return ord("q") if frame.text == "sad frown" else 0

        def close(self):
            pass

    monkeypatch.setattr(cli, "_has_display", lambda: True)
    monkeypatch.setattr(preview, "PreviewWindow", FakeWindow)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff\n\nsad frown\n")))
    rc = cli.main(["--model", str(tiny), "--stdin", "--duration", "20", "-q", "happy smile"])
    assert rc == 0
    assert FakeWindow.shown[-1] == "sad frown"
    out = capsys.readouterr()
    assert "'happy smile'" in out.out and "'sad frown'" in out.out and "not valid UTF-8" in out.err


@pytest.mark.slow
def test_default_model_end_to_end():
    """`emo3d-run --json "furious scowl"` on the shipped default (where models/default exists and builds)."""
    from emo3d import models
    head = models.default_model_dir()
    assert (head / "manifest.json").is_file(), f"the shipped default is missing from {head}"
    from export import ensure_default_model
    folder = ensure_default_model(progress=False)           # cached after the first build
    r = _run_cli("--json", "-q", "furious scowl")
    assert r.returncode == 0, r.stderr.decode()
    scores = json.loads(r.stdout.decode())
    assert list(scores) == list(MEDIAPIPE_NAMES) and all(0.0 <= v <= 1.0 for v in scores.values())
    e = Engine.create(model=folder, device="cpu")
    np.testing.assert_allclose([scores[n] for n in MEDIAPIPE_NAMES], e.predict("furious scowl").vector, atol=1e-5)
