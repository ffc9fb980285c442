"""Training presets: ``ours`` (this project's defaults) and ``paper`` (the official notebooks' settings).

``paper`` exists for the two kinds whose training code the official repository publishes
(``Emo3D/baselines/CLIP_Baseline.ipynb`` and ``VAE_CLIP.ipynb``):

=========  =========  ======  =====  ======  =========================  ===================
kind       optimiser  lr      batch  epochs  model kept                 λ_text / λ_image
=========  =========  ======  =====  ======  =========================  ===================
clip_mlp   Adam       1e-4    32     50      best validation MSE        —
vae_clip   Adam       1e-3    32     50      best validation loss       0.004 / 0.002
ours       AdamW      1e-3    64     ≤200    best val MSE, patience 15  0.004 / 0.002 (vae)
=========  =========  ======  =====  ======  =========================  ===================

(Adam without weight decay; every epoch runs — no early stop — and the best epoch on validation is
kept.) The BERT, XLM-R and Emotion-XLM notebooks are not in the repository, so ``paper`` is refused
for ``lm_mlp`` and ``emotion``. Values given explicitly (``--lr`` ...) win over the preset.
"""
from __future__ import annotations

from typing import Any, Dict

from emo3d.errors import InvalidInputError

__all__ = ["PRESETS", "preset_values"]

_OURS: Dict[str, Any] = {"optimizer": "adamw", "lr": 1e-3, "batch_size": 64, "epochs": 200, "patience": 15,
                         "weight_decay": 1e-4}
_PAPER_COMMON: Dict[str, Any] = {"optimizer": "adam", "batch_size": 32, "epochs": 50, "patience": 50,
                                 "weight_decay": 0.0}
PRESETS: Dict[str, Dict[str, Dict[str, Any]]] = {
    "ours": {k: dict(_OURS) for k in ("lm_mlp", "emotion", "clip_mlp", "vae_clip")},
    "paper": {"clip_mlp": {**_PAPER_COMMON, "lr": 1e-4},
              "vae_clip": {**_PAPER_COMMON, "lr": 1e-3, "lambda_text": 0.004, "lambda_image": 0.002}},
}


def preset_values(preset: str, kind: str) -> Dict[str, Any]:
    """The TrainOptions values a preset sets for a model kind."""
    if preset not in PRESETS:
        raise InvalidInputError(f"--preset {preset!r} is not one of {', '.join(PRESETS)}")
    table = PRESETS[preset]
    if kind not in table:
        raise InvalidInputError(f"--preset {preset} has no settings for {kind}: the official repository publishes "
                                f"training code for {', '.join(table)} only; use --preset ours")
    return dict(table[kind])
