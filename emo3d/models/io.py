"""Save and load model folders: ``manifest.json`` + ``head.safetensors`` (+ ``encoder.safetensors``
after fine-tuning) + ``head.onnx`` (the head alone, input ``sentence_embedding`` [B,D])."""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np
import torch
from torch import nn

from emo3d.errors import ModelFileError
from emo3d.io import atomic_dir, atomic_path, atomic_write_bytes
from emo3d.manifest import ModelManifest

from .baselines import HeadConfig, HeadExport, TextModel, build_head
from .backbones import backbone_from_manifest
from .encoders import load_encoder

HEAD_FILE = "head.safetensors"
ENCODER_FILE = "encoder.safetensors"
HEAD_ONNX_FILE = "head.onnx"
ONNX_OPSET = 17


def _save_state(module: nn.Module, path: Path) -> None:
    from safetensors.torch import save
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    atomic_write_bytes(path, save(state))


def _load_state(module: nn.Module, path: Path) -> None:
    from safetensors.torch import load_file
    try:
        state = load_file(str(path))
    except Exception as e:  # noqa: BLE001 - any parse failure is a corrupt file
        raise ModelFileError(f"{path} is not a readable safetensors file: {e}") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"{path} does not match the architecture in manifest.json: "
                             f"{str(e).splitlines()[0]}") from None


def export_head_onnx(head: nn.Module, path: str | Path, *, check: bool = True) -> dict:
    """Export the head alone: input ``sentence_embedding`` float32 [B,D] -> ``blendshapes`` [B,51]
    (+ ``emotions`` [B,8]); opset 17, dynamic batch. Returns an info dict (with the parity error)."""
    cfg: HeadConfig = head.cfg
    outputs = ["blendshapes", "emotions"] if cfg.kind == "emotion" else ["blendshapes"]
    wrapper = HeadExport(head).eval()
    dummy = torch.randn(2, cfg.in_dim)
    axes = {"sentence_embedding": {0: "batch"}, **{o: {0: "batch"} for o in outputs}}
    was_training = head.training
    head.eval()
    import warnings
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # the TorchScript exporter is what the contract asks
        torch.onnx.export(wrapper, (dummy,), str(tmp), input_names=["sentence_embedding"], output_names=outputs,
                          dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False)
    info = {"opset": ONNX_OPSET, "inputs": {"sentence_embedding": ["batch", cfg.in_dim]},
            "outputs": {o: ["batch", 51 if o == "blendshapes" else 8] for o in outputs}}
    if check:
        import onnxruntime as ort
        x = torch.randn(5, cfg.in_dim)
        with torch.no_grad():
            ref = head(x)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(outputs, {"sentence_embedding": x.numpy()})
        info["parity_max_abs_diff"] = float(max(np.abs(g - ref[o].numpy()).max() for g, o in zip(got, outputs)))
    head.train(was_training)
    return info


def save_model(module: TextModel | nn.Module, manifest: ModelManifest, folder: str | Path, *,
               save_encoder: bool = False, onnx: bool = True) -> Path:
    """Write a model folder atomically (replacing ``folder`` as a whole).

    ``module``: a :class:`TextModel` or a bare head. ``save_encoder``: also write the (fine-tuned)
    encoder weights. ``onnx``: also write ``head.onnx``. Returns the folder.
    """
    head = module.head if isinstance(module, TextModel) else module
    if save_encoder and not isinstance(module, TextModel):
        raise ValueError("save_encoder=True needs a TextModel (encoder + head)")
    folder = Path(folder)
    manifest.head = head.cfg.to_dict()
    manifest.files = {k: v for k, v in manifest.files.items() if k not in ("head", "head_onnx", "encoder")}
    with atomic_dir(folder) as tmp:
        _save_state(head, tmp / HEAD_FILE)
        manifest.files["head"] = HEAD_FILE
        if save_encoder:
            _save_state(module.encoder.model, tmp / ENCODER_FILE)
            manifest.files["encoder"] = ENCODER_FILE
        if onnx:
            manifest.onnx["head"] = export_head_onnx(head, tmp / HEAD_ONNX_FILE)
            manifest.files["head_onnx"] = HEAD_ONNX_FILE
        manifest.save(tmp)
    return folder


def load_head(folder: str | Path) -> Tuple[nn.Module, ModelManifest]:
    """The head alone (no encoder, no tokenizer), in eval mode, plus the manifest."""
    folder = Path(folder)
    manifest = ModelManifest.load(folder)
    try:
        cfg = HeadConfig.from_dict(dict(manifest.head, kind=manifest.kind))
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{folder / 'manifest.json'}: bad 'head' section: {e}") from None
    head = build_head(cfg)
    _load_state(head, manifest.file(folder, "head"))
    return head.eval(), manifest


def load_model(folder: str | Path, *, allow_download: bool = True) -> Tuple[TextModel, ModelManifest, object]:
    """Load a model folder: ``(TextModel in eval mode, ModelManifest, tokenizer)``.

    The encoder is rebuilt from ``manifest.backbone`` (packaged MiniLM, hub id or local folder) and,
    where the folder has ``encoder.safetensors``, its fine-tuned weights are loaded on top.
    """
    head, manifest = load_head(folder)
    spec = backbone_from_manifest(manifest.backbone, allow_download=allow_download)
    encoder, tokenizer = load_encoder(spec)
    if "encoder" in manifest.files:
        _load_state(encoder.model, manifest.file(folder, "encoder"))
    if int(manifest.head.get("in_dim", encoder.out_dim)) != encoder.out_dim:
        raise ModelFileError(f"{Path(folder) / 'manifest.json'}: head expects {manifest.head.get('in_dim')}-d "
                             f"embeddings but backbone {spec.name!r} gives {encoder.out_dim}")
    return TextModel(encoder, head).eval(), manifest, tokenizer
