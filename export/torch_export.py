"""Export a trained model folder (torch) to ONE fused ONNX graph with parity checks.

Text models follow the models contract ``forward(input_ids, attention_mask) -> dict(blendshapes=[B,51],
emotions=[B,8]?)`` (encoder -> pooling -> (L2 norm) -> head, CLIP-text kinds included), so the graph is
``input_ids``, ``attention_mask`` int64 [B,S] -> ``blendshapes`` (+ ``emotions``). The legacy exporter
(``dynamo=False``, opset 17) with eager attention is used: it is what works for MiniLM/XLM-R/CLIP here.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
from torch import nn

from emo3d.errors import InvalidInputError, ModelFileError
from emo3d.io import atomic_dir
from emo3d.manifest import ModelManifest

from .clip_export import export_clip_towers
from .configs import config_for
from .graph import export_onnx
from .parity import ParityReport, text_inputs
from .plots import save_report_png
from .quantize import QuantReport

log = logging.getLogger("emo3d.export")

MODEL_FILE, INT8_FILE, TOKENIZER_FILE = "model.onnx", "model.int8.onnx", "tokenizer.json"
REPORT_PNG = "export_report.png"


@dataclass
class ExportReport:
    """What ``export_model`` wrote and how well it matches PyTorch."""

    out_dir: Path
    kind: str
    onnx_path: Path
    parity: ParityReport
    int8: Optional[QuantReport] = None
    int8_path: Optional[Path] = None
    extra_files: Dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"exported {self.kind} -> {self.onnx_path} (picture: {self.out_dir / REPORT_PNG})",
                 self.parity.summary()]
        if self.int8 is not None:
            lines.append(self.int8.summary())
        return "\n".join(lines)


def export_text_model(module: nn.Module, path: str | Path, kind: str, *, vocab_size: int, pad_id: int = 0,
                      max_length: Optional[int] = None, low: int = 5) -> ParityReport:
    """Export a text model of ``kind`` (``forward(input_ids, attention_mask) -> dict``) as one fused graph."""
    cfg = config_for(kind)
    if cfg.input_names != ("input_ids", "attention_mask"):
        raise InvalidInputError(f"kind {kind!r} is not a text graph (inputs {cfg.input_names})")
    seqs = tuple(s for s in cfg.seq_lengths if max_length is None or s <= max_length)

    def make(b: int, s: int, rng: np.random.Generator) -> Dict[str, np.ndarray]:
        return text_inputs(b, s, rng, vocab_size=vocab_size, low=low, pad_id=pad_id)
    return export_onnx(module, path, cfg, make_inputs=make, seq_lengths=seqs)


def _vocab_and_pad(module: nn.Module, tokenizer: Any) -> tuple[int, int, Optional[int]]:
    vocab = getattr(tokenizer, "vocab_size", None) or len(tokenizer)
    for sub in module.modules():
        cfg = getattr(sub, "config", None)
        tcfg = getattr(cfg, "text_config", None) or cfg
        if tcfg is not None and getattr(tcfg, "vocab_size", None):
            vocab = min(int(vocab), int(tcfg.vocab_size))
            limit = getattr(tcfg, "max_position_embeddings", None)
            if getattr(tcfg, "model_type", "") in ("xlm-roberta", "roberta") and limit:
                limit = int(limit) - int(getattr(tcfg, "pad_token_id", 1) or 1) - 1
            break
    else:
        limit = None
    pad = getattr(tokenizer, "pad_token_id", None)
    return int(vocab), int(pad if pad is not None else 0), limit


def _save_tokenizer(tokenizer: Any, dst: Path, max_length: int) -> None:
    from .default_model import _write_tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        raise ModelFileError("the model's tokenizer is not a fast (tokenizers) tokenizer; the runtime needs tokenizer.json")
    raw = dst.with_name(".raw_tokenizer.json")
    backend.save(str(raw))
    try:
        _write_tokenizer(raw, dst, max_length)
    finally:
        raw.unlink(missing_ok=True)


def export_model(model_dir: str | Path, out_dir: str | Path, *, int8: bool = False,
                 allow_download: bool = True) -> ExportReport:
    """Export a trained model folder to ``out_dir``: ``model.onnx`` (one fused graph), ``tokenizer.json``,
    ``manifest.json`` (files ``onnx``, ``tokenizer`` (+ ``onnx_int8``), ``onnx.parity``); CLIP kinds
    also get ``clip_text.onnx``/``clip_image.onnx`` for the metric. Parity failures raise ``ParityError``."""
    from emo3d import models

    t0 = time.perf_counter()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    module, manifest, tokenizer = models.load_model(model_dir, allow_download=allow_download)
    kind = manifest.kind
    cfg = config_for(kind)
    vocab, pad, limit = _vocab_and_pad(module, tokenizer)
    max_len = int(manifest.backbone.get("max_length", 128))
    same = out_dir.resolve() == model_dir.resolve()
    new = ModelManifest.load(model_dir)
    if not same:
        new.files = {}
    with (_in_place(out_dir) if same else atomic_dir(out_dir)) as tmp:
        onnx_path = tmp / MODEL_FILE
        parity = export_text_model(module, onnx_path, kind, vocab_size=vocab, pad_id=pad,
                                   max_length=min(max_len, limit or max_len))
        log.info("%s", parity.summary())
        _save_tokenizer(tokenizer, tmp / TOKENIZER_FILE, max_len)
        new.files.update({"onnx": MODEL_FILE, "tokenizer": TOKENIZER_FILE})
        new.onnx.update({"opset": cfg.opset, "exporter": "torch.onnx legacy (dynamo=False), eager attention",
                         "inputs": {n: ["batch", "sequence"] for n in cfg.input_names},
                         "outputs": {n: ["batch", 51 if n == "blendshapes" else 8] for n in cfg.output_names},
                         "parity": parity.to_dict()})
        extra: Dict[str, str] = {}
        encoder = getattr(module, "encoder", None)
        clip = getattr(encoder, "model", None)
        if kind in ("clip_mlp", "vae_clip") and clip is not None and hasattr(clip, "get_image_features"):
            rep = export_clip_towers(clip, tmp, tokenizer=tokenizer)
            extra = {"clip_text": rep.text_path.name, "clip_image": rep.image_path.name}
            new.files.update(extra)
            new.onnx["clip"] = rep.to_dict()
        qrep, int8_path = None, None
        if int8:
            qrep, int8_path = _int8(tmp, new, max_len)
        new.save(tmp)
        save_report_png(tmp / REPORT_PNG, parity, qrep.scores if qrep is not None else None)
    final_int8 = (out_dir / INT8_FILE) if int8_path is not None else None
    return ExportReport(out_dir=out_dir, kind=kind, onnx_path=out_dir / MODEL_FILE, parity=parity, int8=qrep,
                        int8_path=final_int8, extra_files=extra, seconds=time.perf_counter() - t0)


class _in_place:
    """Context manager standing in for ``atomic_dir`` when exporting into the model folder itself."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __enter__(self) -> Path:
        return self.folder

    def __exit__(self, *exc) -> None:
        return None


def _int8(folder: Path, manifest: ModelManifest, max_len: int):
    from .quantize import quantize_best, tokenizer_encoder

    path = folder / INT8_FILE
    report = quantize_best(folder / MODEL_FILE, path, tokenizer_encoder(folder / TOKENIZER_FILE, max_length=max_len))
    log.info("%s", report.summary())
    manifest.onnx["int8"] = report.to_dict()
    if report.recommended:
        manifest.files["onnx_int8"] = INT8_FILE
        return report, path
    manifest.files.pop("onnx_int8", None)
    path.unlink(missing_ok=True)
    return report, None
