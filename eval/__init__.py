"""The Emo3D metric (paper Section 4.2) and ``python -m eval.emo3d``.

Public API (cheap to import; submodules load on first use)::

    from eval import MetricOptions, emo3d_metric, emo3d_from_topk, MetricResult
    from eval import load_clip, FerJudge, RoundTripJudge, build_bank, EvalOptions, run

See :mod:`eval.metric` for the paper and the official definitions.
"""
from __future__ import annotations

from emo3d.lazy import lazy_exports

_LAZY = {
    "MetricOptions": "metric", "MetricResult": "metric", "emo3d_metric": "metric",
    "emo3d_from_topk": "metric", "normalize": "metric", "kl_divergence": "metric", "mse": "metric",
    "recall_at_k": "metric", "EPS_PAPER": "metric", "EPS_OFFICIAL": "metric",
    "topk_similar": "kernels",
    "load_clip": "clip", "export_onnx": "clip", "TorchClip": "clip", "OnnxClip": "clip",
    "FerJudge": "judges", "FerOptions": "judges", "RoundTripJudge": "judges", "JudgeResult": "judges",
    "PromptBank": "bank", "BankOptions": "bank", "build_bank": "bank",
    "EvalOptions": "emo3d", "EvalResult": "emo3d", "ModelResult": "emo3d", "run": "emo3d",
    "main": "emo3d",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
