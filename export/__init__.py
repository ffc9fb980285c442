"""emo3d export: model folders to ONNX with parity checks, int8, CLIP towers, and the torch-free
builder of the shipped default.

``import export`` and :func:`ensure_default_model` do not import torch; :func:`export_model` and the
CLIP exporters load torch on first use.
"""
from __future__ import annotations

from emo3d.lazy import lazy_exports

from .configs import CONFIGS, OnnxExportConfig, config_for
from .default_model import add_int8, ensure_default_model
from .parity import ParityError, ParityReport, check_parity
from .quantize import QuantReport, compare_int8, quantize_best, quantize_int8, varied_prompts

_LAZY = {
    "export_model": "torch_export", "export_text_model": "torch_export", "ExportReport": "torch_export",
    "export_clip_towers": "clip_export", "ClipExportReport": "clip_export",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = ["CONFIGS", "OnnxExportConfig", "config_for", "ensure_default_model", "add_int8", "ParityError",
           "ParityReport", "check_parity", "QuantReport", "compare_int8", "quantize_best", "quantize_int8", "varied_prompts",
           *_LAZY]
