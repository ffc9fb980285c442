"""A torch-free BERT sentence encoder as ONNX: weights read with safetensors' numpy API, graph written
with ``onnx.helper``.

Graph: ``input_ids``, ``attention_mask`` int64 [B,S] -> embeddings (word + position + token type 0,
LayerNorm) -> N x (self-attention with the padding mask, residual, LayerNorm, FFN with erf-GELU,
residual, LayerNorm) -> mean pooling over the mask -> L2 normalisation -> ``sentence_embedding``
float32 [B,H]. :func:`reference_forward` is the same maths in numpy, used as the build-time parity
check of the torch-free path.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping

import numpy as np

from emo3d.errors import ModelFileError

OUTPUT_NAME = "sentence_embedding"
PREFIX = "emo3d_enc/"     # every name in the encoder graph; keeps the merge with a head collision-free


@dataclass(frozen=True)
class BertConfig:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ModelFileError(f"hidden_size {self.hidden_size} is not divisible by "
                                 f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in ("gelu", "gelu_new", "gelu_python"):
            raise ModelFileError(f"hidden_act {self.hidden_act!r} not supported (accepted: gelu)")

    @classmethod
    def from_dict(cls, d: Mapping) -> "BertConfig":
        if d.get("model_type", "bert") != "bert":
            raise ModelFileError(f"config model_type {d.get('model_type')!r}: the torch-free builder reads BERT only")
        pe = d.get("position_embedding_type", "absolute")
        if pe != "absolute":
            raise ModelFileError(f"position_embedding_type {pe!r} not supported (accepted: absolute)")
        try:
            return cls(hidden_size=int(d["hidden_size"]), num_hidden_layers=int(d["num_hidden_layers"]),
                       num_attention_heads=int(d["num_attention_heads"]),
                       intermediate_size=int(d["intermediate_size"]),
                       max_position_embeddings=int(d["max_position_embeddings"]),
                       layer_norm_eps=float(d.get("layer_norm_eps", 1e-12)),
                       hidden_act=str(d.get("hidden_act", "gelu")))
        except KeyError as e:
            raise ModelFileError(f"BERT config lacks {e.args[0]!r}") from None

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


def load_weights(folder: str | Path) -> tuple[BertConfig, Dict[str, np.ndarray]]:
    """Read ``config.json`` and ``model.safetensors`` of a BERT folder (no torch)."""
    folder = Path(folder)
    cfg_path, st_path = folder / "config.json", folder / "model.safetensors"
    for p in (cfg_path, st_path):
        if not p.is_file():
            raise ModelFileError(f"{p} is missing (a BERT folder needs config.json and model.safetensors)")
    try:
        cfg = BertConfig.from_dict(json.loads(cfg_path.read_text(encoding="utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{cfg_path} is not valid JSON: {e}") from None
    return cfg, load_weights_file(st_path)


def load_weights_file(path: str | Path) -> Dict[str, np.ndarray]:
    """The tensors of one BERT ``.safetensors`` file as numpy (keys without a ``bert.`` prefix)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFileError(f"{path} could not be read as safetensors: {e}") from None
    if not any(k.startswith("embeddings.") for k in weights):   # BertForX keys
        weights = {k[5:]: v for k, v in weights.items() if k.startswith("bert.")}
    return weights


def _w(weights: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    try:
        return np.ascontiguousarray(weights[key], dtype=np.float32)
    except KeyError:
        raise ModelFileError(f"BERT weights lack {key!r}") from None


def build_encoder(cfg: BertConfig, weights: Mapping[str, np.ndarray], *, opset: int = 17,
                  normalize: bool = True, output_name: str = OUTPUT_NAME):
    """The encoder + mean pooling (+ L2 norm) as an ``onnx.ModelProto``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: List = []
    inits: List = []
    n = [0]

    def name(s: str) -> str:
        return PREFIX + s

    def init(key: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name(key)))
        return name(key)

    def node(op: str, inputs: List[str], out: str | None = None, **attrs) -> str:
        n[0] += 1
        out = name(out or f"{op.lower()}_{n[0]}")
        nodes.append(helper.make_node(op, inputs, [out], name=f"{out}_node", **attrs))
        return out

    H, D, nh = cfg.hidden_size, cfg.head_dim, cfg.num_attention_heads
    i64 = lambda *v: np.array(v, dtype=np.int64)   # noqa: E731
    f32 = lambda v: np.array(v, dtype=np.float32)  # noqa: E731
    c_ax1 = init("const/axis1", i64(1))
    c_ax12 = init("const/axes12", i64(1, 2))
    c_ax2 = init("const/axis2", i64(2))
    c_heads = init("const/heads_shape", i64(0, 0, nh, D))
    c_merge = init("const/merge_shape", i64(0, 0, H))
    c_scale = init("const/scale", f32(1.0 / math.sqrt(D)))
    c_f_one, c_neg = init("const/one_f", f32(1.0)), init("const/neg", f32(-1e9))
    c_half, c_sqrt2 = init("const/half", f32(0.5)), init("const/sqrt2", f32(math.sqrt(2.0)))
    c_eps_pool, c_eps_norm = init("const/eps_pool", f32(1e-9)), init("const/eps_norm", f32(1e-12))

    def linear(x: str, prefix: str) -> str:
        wt = init(f"{prefix}.weight_t", _w(weights, f"{prefix}.weight").T)
        return node("Add", [node("MatMul", [x, wt]), init(f"{prefix}.bias", _w(weights, f"{prefix}.bias"))])

    def layer_norm(x: str, prefix: str) -> str:
        return node("LayerNormalization", [x, init(f"{prefix}.weight", _w(weights, f"{prefix}.weight")),
                                           init(f"{prefix}.bias", _w(weights, f"{prefix}.bias"))],
                    axis=-1, epsilon=cfg.layer_norm_eps)

    # embeddings: word + position[:S] + token_type[0], LayerNorm
    ids, mask = "input_ids", "attention_mask"
    seq1 = node("Shape", [ids], "seq_len_1d", start=1, end=2)
    pos = node("Slice", [init("embeddings.position_embeddings.weight",
                              _w(weights, "embeddings.position_embeddings.weight")),
                         init("const/zero_1d", i64(0)), seq1, init("const/axis0_1d", i64(0))], "positions")
    word = node("Gather", [init("embeddings.word_embeddings.weight",
                                _w(weights, "embeddings.word_embeddings.weight")), ids], "word_emb", axis=0)
    tok0 = _w(weights, "embeddings.token_type_embeddings.weight")[0]
    emb = node("Add", [node("Add", [word, pos]), init("embeddings.token_type0", tok0)])
    x = layer_norm(emb, "embeddings.LayerNorm")

    # additive attention mask [B,1,1,S]: 0 where attended, -1e9 on padding
    mask_f = node("Cast", [mask], "mask_f", to=TensorProto.FLOAT)
    add_mask = node("Mul", [node("Sub", [c_f_one, node("Unsqueeze", [mask_f, c_ax12])]), c_neg], "add_mask")

    for li in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{li}"

        def heads(t: str) -> str:   # [B,S,H] -> [B,nh,S,D]
            return node("Transpose", [node("Reshape", [t, c_heads])], perm=[0, 2, 1, 3])

        q = heads(linear(x, f"{p}.attention.self.query"))
        k = heads(linear(x, f"{p}.attention.self.key"))
        v = heads(linear(x, f"{p}.attention.self.value"))
        kt = node("Transpose", [k], perm=[0, 1, 3, 2])
        scores = node("Add", [node("Mul", [node("MatMul", [q, kt]), c_scale]), add_mask])
        probs = node("Softmax", [scores], axis=-1)
        ctx = node("Reshape", [node("Transpose", [node("MatMul", [probs, v])], perm=[0, 2, 1, 3]), c_merge])
        attn = linear(ctx, f"{p}.attention.output.dense")
        x = layer_norm(node("Add", [attn, x]), f"{p}.attention.output.LayerNorm")
        h = linear(x, f"{p}.intermediate.dense")
        # x * 0.5 * (1 + erf(x / sqrt 2)), written as torch traces it so ORT fuses it (BiasGelu)
        gelu = node("Mul", [node("Mul", [h, c_half]),
                            node("Add", [node("Erf", [node("Div", [h, c_sqrt2])]), c_f_one])])
        out = linear(gelu, f"{p}.output.dense")
        x = layer_norm(node("Add", [out, x]), f"{p}.output.LayerNorm")
        x = node("Identity", [x], f"layer{li}_out")

    # mean pooling over attended tokens
    m3 = node("Unsqueeze", [mask_f, c_ax2], "mask3")
    summed = node("ReduceSum", [node("Mul", [x, m3]), c_ax1], keepdims=0)
    count = node("Clip", [node("ReduceSum", [m3, c_ax1], keepdims=0), c_eps_pool])
    pooled = node("Div", [summed, count], "mean_pooled")
    if normalize:
        l2 = node("Sqrt", [node("ReduceSum", [node("Mul", [pooled, pooled]), c_ax1], keepdims=1)])
        pooled = node("Div", [pooled, node("Clip", [l2, c_eps_norm])], "normalized")
    nodes.append(helper.make_node("Identity", [pooled], [output_name], name=name("output")))

    graph = helper.make_graph(
        nodes, "emo3d_bert_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", H])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="emo3d.export.bert_numpy")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def reference_forward(cfg: BertConfig, weights: Mapping[str, np.ndarray], input_ids: np.ndarray,
                      attention_mask: np.ndarray, *, normalize: bool = True,
                      dtype=np.float32) -> np.ndarray:
    """The same encoder in numpy (the build-time parity reference of the torch-free path)."""
    W = lambda k: np.asarray(weights[k], dtype=dtype)  # noqa: E731

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + cfg.layer_norm_eps) * W(f"{p}.weight") + W(f"{p}.bias")

    def lin(x, p):   # 2-D matmul: numpy's batched 3-D path does not use BLAS
        w = np.ascontiguousarray(W(f"{p}.weight").T)
        return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[1]) + W(f"{p}.bias")

    B, S = input_ids.shape
    nh, D = cfg.num_attention_heads, cfg.head_dim
    x = (np.asarray(weights["embeddings.word_embeddings.weight"][input_ids], dtype=dtype)
         + np.asarray(weights["embeddings.position_embeddings.weight"][:S], dtype=dtype)
         + W("embeddings.token_type_embeddings.weight")[0])
    x = ln(x, "embeddings.LayerNorm")
    m = attention_mask.astype(dtype)
    add = (1.0 - m)[:, None, None, :] * -1e9
    for li in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{li}"
        sp = lambda t: t.reshape(B, S, nh, D).transpose(0, 2, 1, 3)  # noqa: E731
        q, k, v = (sp(lin(x, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D) + add
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(0, 2, 1, 3).reshape(B, S, nh * D)
        x = ln(lin(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
        h = lin(x, f"{p}.intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
        x = ln(lin(h, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
    pooled = (x * m[:, :, None]).sum(1) / np.clip(m.sum(1, keepdims=True), 1e-9, None)
    if normalize:
        pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return pooled


def _erf(x: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf
        return erf(x)
    except ImportError:   # Abramowitz & Stegun 7.1.26, |error| < 1.5e-7
        t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
        y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
                   + 0.254829592) * t * np.exp(-x * x)
        return np.sign(x) * y
