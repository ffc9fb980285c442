"""The one folder layout of CLIP's ONNX towers (written by :mod:`export.clip_export`, read by ``eval.clip``).
Torch-free, so the metric's ONNX path runs without torch.

A CLIP folder holds::

    clip_text.onnx        input_ids, attention_mask int64 [B,S] -> text_embeds [B,P]
    clip_image.onnx       pixel_values float32 [B,3,H,W] -> image_embeds [B,P]
    clip_tokenizer.json   the fast tokenizer (``tokenizers``)
    clip.json             projection_dim, image_size, max_length, pad_id, preprocess, parity reports

``preprocess`` is CLIPImageProcessor's settings (shortest edge, centre crop, mean, std); a ``clip.json``
written before it carried ``pad_id``/``preprocess`` reads with the tokenizer's ``<|endoftext|>`` id and a
square crop of ``image_size``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from emo3d.errors import AssetError, InvalidInputError
from emo3d.options import check_int, check_number

__all__ = ["TEXT_FILE", "IMAGE_FILE", "TOKENIZER_FILE", "INFO_FILE", "Preprocess", "ClipFolder",
           "is_clip_folder", "read_clip_folder"]

TEXT_FILE, IMAGE_FILE, TOKENIZER_FILE, INFO_FILE = "clip_text.onnx", "clip_image.onnx", "clip_tokenizer.json", \
    "clip.json"
_MEAN = (0.48145466, 0.4578275, 0.40821073)
_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Preprocess:
    """CLIPImageProcessor's settings (shortest edge, crop, mean, std)."""
    shortest_edge: int = 224
    crop: Tuple[int, int] = (224, 224)
    mean: Tuple[float, float, float] = _MEAN
    std: Tuple[float, float, float] = _STD

    def __post_init__(self):
        check_int(self.shortest_edge, "Preprocess.shortest_edge", 1)
        if len(self.crop) != 2:
            raise InvalidInputError(f"Preprocess.crop must be (height, width), got {self.crop!r}")
        for i, c in enumerate(self.crop):
            check_int(c, f"Preprocess.crop[{i}]", 1)
        for i, s in enumerate(self.std):
            check_number(s, f"Preprocess.std[{i}]", 0, lo_open=True)

    @classmethod
    def from_folder(cls, folder: Optional[Path], image_size: Optional[int] = None) -> "Preprocess":
        """A transformers folder's ``preprocessor_config.json``, else a square ``image_size`` (224)."""
        f = Path(folder) / "preprocessor_config.json" if folder is not None else None
        if f is None or not f.is_file():
            s = int(image_size or 224)
            return cls(shortest_edge=s, crop=(s, s))
        cfg = json.loads(f.read_text())
        size = cfg.get("size", 224)
        edge = size.get("shortest_edge", size.get("height", 224)) if isinstance(size, dict) else int(size)
        crop = cfg.get("crop_size", edge)
        crop = (crop["height"], crop["width"]) if isinstance(crop, dict) else (int(crop), int(crop))
        return cls(shortest_edge=int(edge), crop=(int(crop[0]), int(crop[1])),
                   mean=tuple(cfg.get("image_mean", _MEAN)), std=tuple(cfg.get("image_std", _STD)))

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocess":
        return cls(int(d["shortest_edge"]), (int(d["crop"][0]), int(d["crop"][1])), tuple(d["mean"]),
                   tuple(d["std"]))

    def to_dict(self) -> dict:
        return {"shortest_edge": self.shortest_edge, "crop": list(self.crop),
                "mean": list(self.mean), "std": list(self.std)}


@dataclass(frozen=True)
class ClipFolder:
    """What a CLIP folder holds, resolved to paths."""
    text: Path
    image: Path
    tokenizer: Path
    max_length: int
    pad_id: int
    preprocess: Preprocess


def is_clip_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / INFO_FILE).is_file() and (folder / TEXT_FILE).is_file()


def read_clip_folder(folder: str | Path) -> ClipFolder:
    """The towers, tokenizer and settings of a CLIP folder; ``AssetError`` naming the missing file."""
    folder = Path(folder)
    for name in (INFO_FILE, TEXT_FILE, IMAGE_FILE, TOKENIZER_FILE):
        if not (folder / name).is_file():
            raise AssetError(f"{folder}: {name} is missing (a CLIP folder from `emo3d export --clip CLIP_DIR "
                             f"--out DIR` holds {TEXT_FILE}, {IMAGE_FILE}, {TOKENIZER_FILE} and {INFO_FILE})")
    info = json.loads((folder / INFO_FILE).read_text())
    pad = info.get("pad_id")
    if pad is None:
        from tokenizers import Tokenizer
        pad = Tokenizer.from_file(str(folder / TOKENIZER_FILE)).token_to_id("<|endoftext|>")
    size = int(info.get("image_size", 224))
    pre = Preprocess.from_dict(info["preprocess"]) if "preprocess" in info else Preprocess(size, (size, size))
    return ClipFolder(folder / TEXT_FILE, folder / IMAGE_FILE, folder / TOKENIZER_FILE,
                      int(info.get("max_length", 77)), int(pad or 0), pre)
