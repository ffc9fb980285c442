"""The JSON manifest of a saved model folder (``manifest.json``).

A model folder holds ``manifest.json`` plus the files it names. Training writes PyTorch weights
(``files.weights``), export adds ONNX graphs (``files.onnx``, ``files.onnx_int8``) and a
``tokenizer.json``; the runtime reads only the ONNX side. The manifest records the blendshape and
emotion orders so that a consumer can check them against :mod:`emo3d.schema` instead of assuming.
"""
from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import __version__
from .errors import ModelFileError
from .io import atomic_write_json
from .schema import EMOTIONS, MODEL_NAMES

MANIFEST_NAME = "manifest.json"
FORMAT = "emo3d-model"
FORMAT_VERSION = 1
KINDS = ("lm_mlp", "emotion", "clip_mlp", "vae_clip")


@dataclass
class ModelManifest:
    kind: str
    backbone: Dict[str, Any]                      # name, pooling, normalize, max_length, hidden_size ...
    files: Dict[str, str] = field(default_factory=dict)
    blendshape_order: List[str] = field(default_factory=lambda: list(MODEL_NAMES))
    emotion_order: List[str] = field(default_factory=lambda: list(EMOTIONS))
    head: Dict[str, Any] = field(default_factory=dict)     # architecture hyper-parameters
    onnx: Dict[str, Any] = field(default_factory=dict)     # opset, inputs, outputs, parity report
    versions: Dict[str, str] = field(default_factory=dict)
    metrics: Dict[str, Any] = field(default_factory=dict)
    data_hash: Optional[str] = None
    name: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"manifest kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if list(self.blendshape_order) != list(MODEL_NAMES):
            raise ValueError("manifest blendshape_order differs from emo3d.schema.MODEL_NAMES "
                             "(51 MediaPipe names without _neutral); re-export the model")
        if list(self.emotion_order) != list(EMOTIONS):
            raise ValueError(f"manifest emotion_order must be {list(EMOTIONS)}")
        if not isinstance(self.backbone, dict) or "name" not in self.backbone:
            raise ValueError("manifest backbone must be an object with at least a 'name'")
        if self.format != FORMAT:
            raise ValueError(f"manifest format {self.format!r} is not {FORMAT!r}")
        if self.format_version > FORMAT_VERSION:
            raise ValueError(f"manifest format_version {self.format_version} is newer than this emo3d "
                             f"understands ({FORMAT_VERSION}); upgrade emo3d")

    @property
    def has_emotions(self) -> bool:
        return self.kind == "emotion"

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, folder: str | Path) -> Path:
        if not self.versions:
            self.versions = default_versions()
        return atomic_write_json(Path(folder) / MANIFEST_NAME, self.to_dict())

    @classmethod
    def load(cls, folder: str | Path) -> "ModelManifest":
        folder = Path(folder)
        path = folder / MANIFEST_NAME
        if not folder.is_dir():
            raise ModelFileError(f"model folder {folder} does not exist (expected a folder with {MANIFEST_NAME})")
        if not path.is_file():
            raise ModelFileError(f"{path} is missing: a model folder needs {MANIFEST_NAME}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelFileError(f"{path} is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ModelFileError(f"{path} must hold a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            data.setdefault("extra", {}).update({k: data.pop(k) for k in unknown})
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"{path}: {e}") from None

    def file(self, folder: str | Path, key: str) -> Path:
        """The path of the file this manifest names under ``key``; ``ModelFileError`` if absent."""
        if key not in self.files:
            raise ModelFileError(f"{Path(folder) / MANIFEST_NAME} names no '{key}' file "
                                 f"(it has: {', '.join(sorted(self.files)) or 'none'})")
        path = Path(folder) / self.files[key]
        if not path.is_file():
            raise ModelFileError(f"{path} is missing (named by {MANIFEST_NAME} as '{key}')")
        return path


def default_versions() -> Dict[str, str]:
    versions = {"emo3d": __version__, "python": platform.python_version()}
    import importlib.metadata as md
    for pkg in ("numpy", "torch", "transformers", "onnx", "onnxruntime", "onnxruntime-gpu"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return versions
