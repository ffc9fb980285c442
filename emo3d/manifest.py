"""The JSON manifest of a saved model folder (``manifest.json``).

A model folder holds ``manifest.json`` plus the files it names. Training writes PyTorch weights
(``files.weights``), export adds ONNX graphs (``files.onnx``, ``files.onnx_int8``) and a
``tokenizer.json``; the runtime reads only the ONNX side. The manifest records the blendshape and
emotion orders so that a consumer can check them against :mod:`emo3d.schema` instead of assuming.

Every key is checked when a manifest is built or loaded: a wrong type, a missing key, a ``max_length``
outside 1..MAX_LENGTH, a ``format_version`` that is not an integer or a file path that leaves the model
folder (absolute, ``..``, or a symlink out) is an error naming the key and what is accepted
(``ModelFileError`` from :meth:`ModelManifest.load`, ``InvalidInputError`` from the constructor).
"""
from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import __version__
from .errors import InvalidInputError, ModelFileError
from .io import atomic_write_json
from .schema import EMOTIONS, MODEL_NAMES

MANIFEST_NAME = "manifest.json"
FORMAT = "emo3d-model"
FORMAT_VERSION = 1
KINDS = ("lm_mlp", "emotion", "clip_mlp", "vae_clip")
MAX_LENGTH = 4096          # backbone max_length (tokens), as emo3d.models.backbones accepts
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32             # JSON nesting of a manifest
REQUIRED_KEYS = ("kind", "backbone")
_DICT_KEYS = ("backbone", "files", "head", "onnx", "versions", "metrics", "extra")


def _depth(v, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of a JSON value (stops counting past ``limit``)."""
    stack, deepest = [(v, 1)], 0
    while stack:
        x, d = stack.pop()
        deepest = max(deepest, d)
        if d > limit:
            return d
        if isinstance(x, dict):
            stack.extend((y, d + 1) for y in x.values())
        elif isinstance(x, list):
            stack.extend((y, d + 1) for y in x)
    return deepest


def _bad(key: str, value, accepted: str) -> InvalidInputError:
    shown = repr(value)
    return InvalidInputError(f"key {key!r} is {shown[:80]}{'...' if len(shown) > 80 else ''} "
                             f"({type(value).__name__}); accepted: {accepted}")


def check_file_name(key: str, rel) -> str:
    """A ``files`` entry: a relative path that stays inside the model folder."""
    if not isinstance(rel, str) or not rel.strip():
        raise _bad(f"files.{key}", rel, "a file name inside the model folder, such as model.onnx")
    p = Path(rel)
    if p.is_absolute() or rel.startswith(("/", "\\")) or ".." in p.parts or ".." in rel.split("\\") \
            or (len(rel) > 1 and rel[1] == ":") or any(ord(c) < 32 for c in rel):
        raise _bad(f"files.{key}", rel, "a relative file name inside the model folder (no absolute path, "
                                        "no '..'), such as model.onnx")
    return rel


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
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise _bad("kind", self.kind, f"one of {', '.join(KINDS)}")
        for key in _DICT_KEYS:
            v = getattr(self, key)
            if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
                raise _bad(key, v, "a JSON object" + (" with at least a 'name'" if key == "backbone" else ""))
        for key in ("blendshape_order", "emotion_order"):
            v = getattr(self, key)
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise _bad(key, v, "a list of names")
        for k, rel in self.files.items():
            check_file_name(k, rel)
        if not isinstance(self.name, str):
            raise _bad("name", self.name, "a string")
        if self.data_hash is not None and not isinstance(self.data_hash, str):
            raise _bad("data_hash", self.data_hash, "a string or null")
        if not isinstance(self.format, str):
            raise _bad("format", self.format, repr(FORMAT))
        if isinstance(self.format_version, bool) or not isinstance(self.format_version, int) \
                or self.format_version < 1:
            raise _bad("format_version", self.format_version, f"an integer >= 1 (this emo3d writes {FORMAT_VERSION})")
        name = self.backbone.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _bad("backbone.name", name, "the backbone's name, a non-empty string")
        ml = self.backbone.get("max_length")
        if ml is not None and (isinstance(ml, bool) or not isinstance(ml, int) or not 1 <= ml <= MAX_LENGTH):
            raise _bad("backbone.max_length", ml, f"an integer in 1..{MAX_LENGTH} (tokens)")
        if list(self.blendshape_order) != list(MODEL_NAMES):
            raise ValueError("manifest blendshape_order differs from emo3d.schema.MODEL_NAMES "
                             "(51 MediaPipe names without _neutral); re-export the model")
        if list(self.emotion_order) != list(EMOTIONS):
            raise ValueError(f"manifest emotion_order must be {list(EMOTIONS)}")
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
            if path.stat().st_size > MAX_MANIFEST_BYTES:
                raise ModelFileError(f"{path} is {path.stat().st_size} bytes; a manifest is at most "
                                     f"{MAX_MANIFEST_BYTES} bytes")
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelFileError(f"{path} is not valid JSON: {e}") from None
        except RecursionError:
            raise ModelFileError(f"{path} is not valid JSON for a manifest: nested too deeply "
                                 f"(at most {MAX_DEPTH} levels)") from None
        except OSError as e:
            raise ModelFileError(f"{path} cannot be read: {e}") from None
        if not isinstance(data, dict):
            raise ModelFileError(f"{path} must hold a JSON object, got {type(data).__name__}")
        if _depth(data) > MAX_DEPTH:
            raise ModelFileError(f"{path}: JSON nested more than {MAX_DEPTH} levels deep; not a manifest")
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise ModelFileError(f"{path}: missing key {missing[0]!r} (a manifest needs {', '.join(REQUIRED_KEYS)}"
                                 f"; 'kind' is one of {', '.join(KINDS)}, 'backbone' an object with a 'name')")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in data if k not in known]
        if unknown:   # kept, uninterpreted, under 'extra'
            extra = data.get("extra", {})
            if not isinstance(extra, dict):
                raise ModelFileError(f"{path}: {_bad('extra', extra, 'a JSON object')}")
            data["extra"] = {**extra, **{k: data.pop(k) for k in unknown}}
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"{path}: {e}") from None

    def file(self, folder: str | Path, key: str) -> Path:
        """The path of the file this manifest names under ``key``; ``ModelFileError`` if absent."""
        if key not in self.files:
            raise ModelFileError(f"{Path(folder) / MANIFEST_NAME} names no '{key}' file "
                                 f"(it has: {', '.join(sorted(self.files)) or 'none'})")
        try:
            check_file_name(key, self.files[key])
        except InvalidInputError as e:
            raise ModelFileError(f"{Path(folder) / MANIFEST_NAME}: {e}") from None
        base = Path(folder).resolve()
        path = Path(folder) / self.files[key]
        if base not in path.resolve().parents:
            raise ModelFileError(f"{Path(folder) / MANIFEST_NAME}: files.{key} = {self.files[key]!r} leads outside "
                                 "the model folder (through a symlink); accepted: a file inside it")
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
