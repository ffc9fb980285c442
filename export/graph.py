"""The generic torch -> ONNX step every exporter uses: the legacy exporter (``dynamo=False``) with eager
attention, written atomically, then a parity check against the same torch module.

``torch_export`` (model folders) and ``clip_export`` (the CLIP towers) both call :func:`export_onnx`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import torch
from torch import nn

from emo3d.errors import InvalidInputError
from emo3d.io import atomic_path

from .configs import OnnxExportConfig
from .parity import InputMaker, ParityReport, check_parity

__all__ = ["TRACE_SHAPE", "export_onnx", "torch_reference", "force_eager_attention"]

TRACE_SHAPE = (2, 12)     # batch, seq of the dummy input; parity runs at other shapes


class _TupleOutputs(nn.Module):
    """Dict-output module -> tuple in the config's output order (what the ONNX exporter wants)."""

    def __init__(self, module: nn.Module, output_names: Sequence[str]):
        super().__init__()
        self.module = module
        self.output_names = tuple(output_names)

    def forward(self, *args):
        out = self.module(*args)
        if isinstance(out, torch.Tensor):
            out = {self.output_names[0]: out}
        missing = [n for n in self.output_names if n not in out]
        if missing:
            raise InvalidInputError(f"model output lacks {missing} (it gives {sorted(out)})")
        res = tuple(out[n] for n in self.output_names)
        return res if len(res) > 1 else res[0]


def force_eager_attention(module: nn.Module) -> None:
    """Switch every transformers sub-model to eager attention (SDPA/flash do not export cleanly)."""
    for sub in module.modules():
        if hasattr(sub, "set_attn_implementation") and hasattr(sub, "config"):
            try:
                sub.set_attn_implementation("eager")
            except (ValueError, TypeError, AttributeError):
                sub.config._attn_implementation = "eager"


def _to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def torch_reference(module: nn.Module, input_names: Sequence[str], output_names: Sequence[str]
                    ) -> Callable[[Dict[str, np.ndarray]], Dict[str, np.ndarray]]:
    """A parity reference that runs ``module`` (dict or tuple outputs) on numpy feeds."""
    wrapped = _TupleOutputs(module, output_names).eval()

    def run(feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        with torch.no_grad():
            out = wrapped(*(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in input_names))
        out = out if isinstance(out, tuple) else (out,)
        return {n: _to_numpy(o) for n, o in zip(output_names, out)}
    return run


def export_onnx(module: nn.Module, path: str | Path, config: OnnxExportConfig, *, make_inputs: InputMaker,
                trace_shape: Sequence[int] = TRACE_SHAPE, parity: bool = True,
                batch_sizes: Optional[Sequence[int]] = None, seq_lengths: Optional[Sequence[int]] = None,
                seed: int = 0) -> ParityReport | None:
    """Export ``module`` (inputs/outputs named by ``config``) with the legacy exporter, write ``path``
    atomically, then check parity against the same module; raises ``ParityError`` on a mismatch."""
    module = module.eval()
    force_eager_attention(module)
    wrapped = _TupleOutputs(module, config.output_names).eval()
    feeds = make_inputs(int(trace_shape[0]), int(trace_shape[1]), np.random.default_rng(seed + 1))
    args = tuple(torch.from_numpy(feeds[n]) for n in config.input_names)
    path = Path(path)
    with atomic_path(path) as tmp, torch.no_grad():
        torch.onnx.export(wrapped, args, str(tmp), input_names=list(config.input_names),
                          output_names=list(config.output_names), dynamic_axes=config.dynamic_axes,
                          opset_version=config.opset, dynamo=False, do_constant_folding=True)
    if not parity:
        return None
    return check_parity(path, torch_reference(module, config.input_names, config.output_names), make_inputs,
                        batch_sizes=batch_sizes or config.batch_sizes,
                        seq_lengths=config.seq_lengths if seq_lengths is None else seq_lengths,
                        atol=config.atol, seed=seed, reference_name="torch")
