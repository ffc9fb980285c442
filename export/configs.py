"""One ONNX export config per model kind (after optimum's ``OnnxConfig``): the graph's inputs and
outputs with their dynamic axes, the opset and the parity tolerance. Torch-free."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number
from emo3d.manifest import KINDS

OPSET = 17
FP32_ATOL = 1e-4
INT8_MAE_LIMIT = 0.01

_TEXT_INPUTS = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}


@dataclass(frozen=True)
class OnnxExportConfig:
    """What one exported graph looks like: ``inputs``/``outputs`` map name -> {axis: symbolic name}."""

    kind: str
    inputs: Dict[str, Dict[int, str]]
    outputs: Dict[str, Dict[int, str]]
    opset: int = OPSET
    atol: float = FP32_ATOL
    input_dtype: str = "int64"          # int64 token ids, or float32 for embedding/pixel inputs
    description: str = ""
    batch_sizes: Tuple[int, ...] = (1, 3, 8)
    seq_lengths: Tuple[int, ...] = (4, 7, 16, 33, 64)
    extra: Dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.inputs or not self.outputs:
            raise InvalidInputError(f"export config {self.kind!r} needs at least one input and one output")
        check_int(self.opset, f"OnnxExportConfig({self.kind!r}).opset", 11, 21)
        check_number(self.atol, f"OnnxExportConfig({self.kind!r}).atol", 0, lo_open=True)

    @property
    def input_names(self) -> Tuple[str, ...]:
        return tuple(self.inputs)

    @property
    def output_names(self) -> Tuple[str, ...]:
        return tuple(self.outputs)

    @property
    def dynamic_axes(self) -> Dict[str, Dict[int, str]]:
        """The ``dynamic_axes`` argument of ``torch.onnx.export``."""
        return {**self.inputs, **self.outputs}


_BLENDSHAPES = {"blendshapes": {0: "batch"}}
_EMOTIONS = {"emotions": {0: "batch"}}

CONFIGS: Dict[str, OnnxExportConfig] = {
    "lm_mlp": OnnxExportConfig(
        "lm_mlp", dict(_TEXT_INPUTS), dict(_BLENDSHAPES),
        description="text encoder -> pooling -> (L2 norm) -> MLP head -> 51 scores, one fused graph"),
    "emotion": OnnxExportConfig(
        "emotion", dict(_TEXT_INPUTS), {**_BLENDSHAPES, **_EMOTIONS},
        description="text encoder -> pooling -> head -> 51 scores + 8 emotions, one fused graph"),
    "clip_mlp": OnnxExportConfig(
        "clip_mlp", dict(_TEXT_INPUTS), dict(_BLENDSHAPES),
        description="CLIP text tower -> projection (-> L2 norm) -> MLP head -> 51 scores, one fused graph"),
    "vae_clip": OnnxExportConfig(
        "vae_clip", dict(_TEXT_INPUTS), dict(_BLENDSHAPES),
        description="CLIP text tower -> projection (-> L2 norm) -> VAE decoder -> 51 scores, one fused graph"),
    "clip_text": OnnxExportConfig(
        "clip_text", dict(_TEXT_INPUTS), {"text_embeds": {0: "batch"}},
        description="CLIP text tower with projection (for the Emo3D metric)"),
    "clip_image": OnnxExportConfig(
        "clip_image", {"pixel_values": {0: "batch"}}, {"image_embeds": {0: "batch"}}, input_dtype="float32",
        seq_lengths=(), description="CLIP image tower with projection (for the Emo3D metric)"),
}


def config_for(kind: str) -> OnnxExportConfig:
    """The export config of a model kind (``lm_mlp``, ``emotion``, ``clip_mlp``, ``vae_clip``, ``clip_text``, ``clip_image``)."""
    try:
        return CONFIGS[kind]
    except KeyError:
        raise InvalidInputError(f"no export config for kind {kind!r} (accepted: {', '.join(CONFIGS)})") from None


assert set(KINDS) <= set(CONFIGS)
