"""The torch encoders built from a :class:`~emo3d.models.backbones.BackboneSpec`: a transformers text
backbone with pooling (:class:`TextEncoder`) or CLIP's text tower (:class:`ClipEncoder`), and
:func:`load_encoder` (encoder + tokenizer). Heads live in :mod:`emo3d.models.baselines`.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emo3d.errors import AssetError

from .backbones import BackboneSpec

__all__ = ["TextEncoder", "ClipEncoder", "load_encoder"]


def _pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return hidden[:, 0]


class TextEncoder(nn.Module):
    """A transformers text backbone + pooling (mean | cls | pooler) + optional L2 normalisation."""

    def __init__(self, model: nn.Module, spec: BackboneSpec):
        super().__init__()
        self.model = model
        self.pooling = spec.pooling
        self.normalize = spec.normalize
        self.out_dim = int(getattr(model.config, "hidden_size", spec.hidden_size))

    @classmethod
    def from_pretrained(cls, spec: BackboneSpec) -> "TextEncoder":
        from transformers import AutoModel
        return cls(AutoModel.from_pretrained(spec.path), spec)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        if self.pooling == "pooler" and getattr(out, "pooler_output", None) is not None:
            emb = out.pooler_output
        else:
            emb = _pool(out.last_hidden_state, attention_mask, self.pooling)
        return F.normalize(emb, p=2, dim=-1) if self.normalize else emb


def _features(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else x.pooler_output


class ClipEncoder(nn.Module):
    """CLIP: ``forward`` = text features (projection space); ``encode_image`` for image features."""

    def __init__(self, model: nn.Module, spec: BackboneSpec):
        super().__init__()
        self.model = model
        self.normalize = spec.normalize
        self.out_dim = int(model.config.projection_dim)

    @classmethod
    def from_pretrained(cls, spec: BackboneSpec) -> "ClipEncoder":
        from transformers import CLIPModel
        return cls(CLIPModel.from_pretrained(spec.path), spec)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        emb = _features(self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))
        return F.normalize(emb, dim=-1) if self.normalize else emb

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        emb = _features(self.model.get_image_features(pixel_values=pixel_values))
        return F.normalize(emb, dim=-1) if self.normalize else emb


def load_encoder(spec: BackboneSpec):
    """Build the torch encoder (:class:`TextEncoder` or :class:`ClipEncoder`) and its tokenizer."""
    from transformers import AutoTokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.path)
    except OSError as e:
        raise AssetError(f"could not load the tokenizer of backbone {spec.name!r} from {spec.path}: {e}. "
                         "Offline, use --backbone packaged or a local folder.") from None
    if spec.family == "clip":
        return ClipEncoder.from_pretrained(spec), tokenizer
    return TextEncoder.from_pretrained(spec), tokenizer
