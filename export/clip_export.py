"""CLIP text and image towers as ONNX (with their projections) for the Emo3D metric: the one CLIP exporter.

It writes the folder layout of :mod:`export.clip_layout` (``clip_text.onnx``: ``input_ids``,
``attention_mask`` int64 [B,S] -> ``text_embeds`` [B,P]; ``clip_image.onnx``: ``pixel_values`` float32
[B,3,H,W] -> ``image_embeds`` [B,P]; ``clip_tokenizer.json``; ``clip.json``), which ``eval.clip.load_clip``
runs without torch. Embeddings are the raw projections (not L2-normalised; the metric normalises). Parity is
checked like every export.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn

from emo3d.errors import ModelFileError
from emo3d.io import atomic_path, atomic_write_json

from .clip_layout import IMAGE_FILE, INFO_FILE, TEXT_FILE, TOKENIZER_FILE, Preprocess
from .configs import config_for
from .parity import ParityReport, float_inputs, text_inputs
from .graph import export_onnx

__all__ = ["ClipTextTower", "ClipImageTower", "ClipExportReport", "export_clip_towers", "export_clip_folder"]


def _features(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else x.pooler_output


class ClipTextTower(nn.Module):
    def __init__(self, clip: nn.Module):
        super().__init__()
        self.clip = clip

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"text_embeds": _features(self.clip.get_text_features(input_ids=input_ids,
                                                                     attention_mask=attention_mask))}


class ClipImageTower(nn.Module):
    def __init__(self, clip: nn.Module):
        super().__init__()
        self.clip = clip

    def forward(self, pixel_values: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"image_embeds": _features(self.clip.get_image_features(pixel_values=pixel_values))}


@dataclass
class ClipExportReport:
    text_path: Path
    image_path: Path
    text_parity: ParityReport
    image_parity: ParityReport
    projection_dim: int
    image_size: int
    max_length: int = 77
    pad_id: int = 0
    preprocess: Optional[Preprocess] = None
    tokenizer_path: Optional[Path] = None

    def to_dict(self) -> dict:
        pre = self.preprocess or Preprocess(self.image_size, (self.image_size, self.image_size))
        out = {"text": self.text_path.name, "image": self.image_path.name,
               "projection_dim": self.projection_dim, "image_size": self.image_size,
               "max_length": self.max_length, "pad_id": self.pad_id, "preprocess": pre.to_dict(),
               "text_parity": self.text_parity.to_dict(), "image_parity": self.image_parity.to_dict()}
        if self.tokenizer_path is not None:
            out["tokenizer"] = self.tokenizer_path.name
        return out

    def summary(self) -> str:
        return f"CLIP text: {self.text_parity.summary()}\nCLIP image: {self.image_parity.summary()}"


def export_clip_towers(clip: nn.Module, out_dir: str | Path, *, tokenizer: Optional[Any] = None,
                       preprocess: Optional[Preprocess] = None, write_info: bool = True) -> ClipExportReport:
    """Export both towers of a transformers ``CLIPModel`` into ``out_dir`` with parity checks
    (``ParityError`` on a mismatch); ``tokenizer`` (fast) is saved as ``clip_tokenizer.json`` when given;
    ``preprocess`` (default: a square crop of the vision tower's image size) goes into ``clip.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clip = clip.eval()
    tcfg, vcfg = clip.config.text_config, clip.config.vision_config
    vocab, max_pos = int(tcfg.vocab_size), int(tcfg.max_position_embeddings)
    pad = int(getattr(tcfg, "pad_token_id", 0) or 0)
    text_cfg, image_cfg = config_for("clip_text"), config_for("clip_image")

    def make_text(b: int, s: int, rng: np.random.Generator) -> Dict[str, np.ndarray]:
        return text_inputs(b, s, rng, vocab_size=vocab, low=min(5, vocab - 1), pad_id=pad)

    size = int(vcfg.image_size)
    text_parity = export_onnx(ClipTextTower(clip), out_dir / TEXT_FILE, text_cfg, make_inputs=make_text,
                              seq_lengths=tuple(s for s in text_cfg.seq_lengths if s <= max_pos))
    image_parity = export_onnx(ClipImageTower(clip), out_dir / IMAGE_FILE, image_cfg,
                               make_inputs=float_inputs("pixel_values", (3, size, size)), trace_shape=(2, 0))
    tok_pad = getattr(tokenizer, "pad_token_id", None)
    report = ClipExportReport(out_dir / TEXT_FILE, out_dir / IMAGE_FILE, text_parity, image_parity,
                              int(clip.config.projection_dim), size, max_pos,
                              pad_id=int(tok_pad if tok_pad is not None else pad),
                              preprocess=preprocess or Preprocess(size, (size, size)))
    if tokenizer is not None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:
            with atomic_path(out_dir / TOKENIZER_FILE) as tmp:
                backend.save(str(tmp))
            report.tokenizer_path = out_dir / TOKENIZER_FILE
    if write_info:
        atomic_write_json(out_dir / INFO_FILE, report.to_dict())
    return report


def export_clip_folder(clip_dir: str | Path, out_dir: str | Path) -> ClipExportReport:
    """Export a local transformers CLIP folder (config, weights, fast tokenizer, preprocessor config) into the
    folder layout ``eval.clip.load_clip`` runs without torch."""
    from transformers import AutoTokenizer, CLIPModel

    clip_dir = Path(clip_dir)
    if not (clip_dir / "config.json").is_file():
        raise ModelFileError(f"{clip_dir / 'config.json'} is missing (a CLIP folder saved with save_pretrained)")
    try:
        clip = CLIPModel.from_pretrained(str(clip_dir))
        tokenizer = AutoTokenizer.from_pretrained(str(clip_dir))
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{clip_dir}: could not load CLIP: {e}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelFileError(f"{clip_dir}: the CLIP export needs a fast tokenizer (tokenizer.json)")
    pre = Preprocess.from_folder(clip_dir, int(clip.config.vision_config.image_size))
    return export_clip_towers(clip, out_dir, tokenizer=tokenizer, preprocess=pre)
