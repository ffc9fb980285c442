"""emo3d models: the paper's baselines (LM+MLP, Emotion-XLM, CLIP+MLP, VAE-CLIP), training, and the
shipped offline default (``models/default``).

Importing ``models`` does not import torch: ``packaged_minilm_dir``, ``resolve_backbone`` and
``default_model_dir`` are torch-free; the rest loads torch on first use.
"""
from __future__ import annotations

from pathlib import Path

from emo3d.lazy import lazy_exports

from .backbones import PACKAGED_MINILM, BackboneSpec, packaged_minilm_dir, resolve_backbone

DEFAULT_DIR = Path(__file__).resolve().parent / "default"

_LAZY = {
    "load_model": "io", "load_head": "io", "save_model": "io", "export_head_onnx": "io",
    "TextModel": "baselines", "TextEncoder": "encoders", "ClipEncoder": "encoders", "HeadConfig": "baselines",
    "LmMlpHead": "baselines", "EmotionHead": "baselines", "ClipMlp": "baselines", "VaeClip": "baselines",
    "build_head": "baselines", "TrainOptions": "train", "TrainResult": "train",
    "train_from_pairs": "train",
}


def default_model_dir() -> Path:
    """The shipped offline default (manifest.json, head.safetensors, head.onnx)."""
    return DEFAULT_DIR


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = ["PACKAGED_MINILM", "BackboneSpec", "packaged_minilm_dir", "resolve_backbone", "default_model_dir",
           "DEFAULT_DIR", *_LAZY]
