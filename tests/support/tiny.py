"""A tiny runtime model folder built without torch (tests, demos, benchmarks of the loop).

``make_tiny_model(folder)`` writes ``model.onnx`` (embedding lookup -> masked mean -> linear ->
sigmoid = ``blendshapes`` [B,51], + softmax ``emotions`` [B,8] when asked), a WordLevel
``tokenizer.json`` and ``manifest.json`` - the same interface as the real exported models.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from emo3d.io import atomic_path
from emo3d.manifest import ModelManifest
from emo3d.schema import N_EMOTIONS, N_MODEL

WORDS = ("furious", "scowl", "happy", "smile", "sad", "frown", "surprised", "gasp", "angry", "disgust",
         "fear", "calm", "neutral", "very", "a", "the", "and", "big", "slight", "face")
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


def make_tokenizer_json(path: str | Path, words: Sequence[str] = WORDS) -> Path:
    """A lower-casing whitespace WordLevel tokenizer with ``[CLS] ... [SEP]`` and ``[PAD]`` = 0."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    vocab = {t: i for i, t in enumerate(SPECIAL)}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tok.enable_padding(pad_id=0, pad_token="[PAD]", length=32)   # like the packaged MiniLM: pads (runtime disables)
    path = Path(path)
    with atomic_path(path) as tmp:
        tok.save(str(tmp))
    return path


def make_tiny_onnx(path: str | Path, vocab_size: int, *, dim: int = 16, emotions: bool = False,
                   seed: int = 0, opset: int = 17) -> Path:
    """input_ids, attention_mask [B,S] int64 -> blendshapes [B,51] (+ emotions [B,8])."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    emb = rng.normal(0, 1.0, (vocab_size, dim)).astype(np.float32)
    w = rng.normal(0, 0.6, (dim, N_MODEL)).astype(np.float32)
    b = np.full((N_MODEL,), -1.0, np.float32)
    inits = [numpy_helper.from_array(emb, "emb"), numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array([1], np.int64), "ax1"),
             numpy_helper.from_array(np.array(1e-6, np.float32), "eps")]
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["tok"], axis=0),                # [B,S,D]
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),    # [B,S]
        helper.make_node("Unsqueeze", ["maskf", "ax2"], ["mask3"]),                        # [B,S,1]
        helper.make_node("Mul", ["tok", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "ax1"], ["summed"], keepdims=0),         # [B,D]
        helper.make_node("ReduceSum", ["mask3", "ax1"], ["count"], keepdims=0),           # [B,1]
        helper.make_node("Max", ["count", "eps"], ["count_safe"]),
        helper.make_node("Div", ["summed", "count_safe"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "w"], ["lin"]),
        helper.make_node("Add", ["lin", "b"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["blendshapes"]),
    ]
    inits.append(numpy_helper.from_array(np.array([2], np.int64), "ax2"))
    outputs = [helper.make_tensor_value_info("blendshapes", TensorProto.FLOAT, ["batch", N_MODEL])]
    if emotions:
        we = rng.normal(0, 1.0, (dim, N_EMOTIONS)).astype(np.float32)
        inits.append(numpy_helper.from_array(we, "we"))
        nodes += [helper.make_node("MatMul", ["pooled", "we"], ["elog"]),
                  helper.make_node("Softmax", ["elog"], ["emotions"], axis=-1)]
        outputs.append(helper.make_tensor_value_info("emotions", TensorProto.FLOAT, ["batch", N_EMOTIONS]))
    graph = helper.make_graph(
        nodes, "emo3d_tiny",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="emo3d-tiny")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return path


def make_tiny_model(folder: str | Path, *, emotions: bool = False, max_length: int = 16,
                    seed: int = 0) -> Path:
    """Write a complete tiny model folder (manifest + model.onnx + tokenizer.json); returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    make_tokenizer_json(folder / "tokenizer.json")
    make_tiny_onnx(folder / "model.onnx", len(SPECIAL) + len(WORDS), emotions=emotions, seed=seed)
    ModelManifest(
        kind="emotion" if emotions else "lm_mlp",
        backbone={"name": "tiny:wordlevel", "pooling": "mean", "normalize": False,
                  "max_length": max_length, "hidden_size": 16},
        files={"onnx": "model.onnx", "tokenizer": "tokenizer.json"},
        onnx={"opset": 17, "inputs": ["input_ids", "attention_mask"],
              "outputs": ["blendshapes"] + (["emotions"] if emotions else [])},
        name="tiny",
    ).save(folder)
    return folder
