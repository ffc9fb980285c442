"""CLIP encoders for the Emo3D metric: transformers (torch) or ONNX towers (onnxruntime).

``load_clip(path=None)``:
* ``path`` a folder with ``clip_onnx.json`` (made by :func:`export_onnx`) or the export package's
  ``clip.json`` + ``clip_text.onnx`` + ``clip_image.onnx`` + ``clip_tokenizer.json`` → :class:`OnnxClip`;
* ``path`` a transformers CLIP folder (config.json + weights + tokenizer) → :class:`TorchClip`;
* ``None`` → ``openai/clip-vit-base-patch32`` from the local Hugging Face cache, else from the hub
  when it is reachable (checked with a 3 s connection test, so an offline machine fails at once).

Both encoders return L2-normalised float32 embeddings. Image preprocessing is CLIPProcessor's
(resize the shortest edge with bicubic, centre crop, /255, mean/std), done here in numpy/PIL so the
ONNX path needs no torch; it reads ``preprocessor_config.json`` where the folder has one.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from emo3d.errors import AssetError, InvalidInputError
from emo3d.io import atomic_write_json

__all__ = ["DEFAULT_CLIP", "OFFLINE_HINT", "ClipEncoder", "Preprocess", "TorchClip", "OnnxClip",
           "load_clip", "export_onnx", "preprocess_images"]

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
OFFLINE_HINT = ("pass --clip PATH (a local transformers CLIP folder such as a saved "
                f"{DEFAULT_CLIP}, or a folder made by `eval.clip.export_onnx`), or use an offline "
                "judge: --judge fer (facial-emotion classifier) or --judge roundtrip (MediaPipe "
                "round trip)")
ONNX_MANIFEST = "clip_onnx.json"
_MEAN = (0.48145466, 0.4578275, 0.40821073)
_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipEncoder(Protocol):
    name: str

    def encode_text(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class Preprocess:
    """CLIPImageProcessor's settings (shortest edge, crop, mean, std)."""
    shortest_edge: int = 224
    crop: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = _MEAN
    std: tuple[float, float, float] = _STD

    def __post_init__(self):
        if self.shortest_edge < 1 or min(self.crop) < 1:
            raise InvalidInputError(f"bad CLIP preprocessing sizes {self.shortest_edge}, {self.crop}")

    @classmethod
    def from_folder(cls, folder: Path, image_size: int | None = None) -> "Preprocess":
        f = Path(folder) / "preprocessor_config.json"
        if not f.is_file():
            s = image_size or 224
            return cls(shortest_edge=s, crop=(s, s))
        cfg = json.loads(f.read_text())
        size = cfg.get("size", 224)
        edge = size.get("shortest_edge", size.get("height", 224)) if isinstance(size, dict) else int(size)
        crop = cfg.get("crop_size", edge)
        crop = (crop["height"], crop["width"]) if isinstance(crop, dict) else (int(crop), int(crop))
        return cls(shortest_edge=int(edge), crop=crop,
                   mean=tuple(cfg.get("image_mean", _MEAN)), std=tuple(cfg.get("image_std", _STD)))

    def to_dict(self) -> dict:
        return {"shortest_edge": self.shortest_edge, "crop": list(self.crop),
                "mean": list(self.mean), "std": list(self.std)}


def preprocess_images(images: Sequence[np.ndarray], pre: Preprocess = Preprocess()) -> np.ndarray:
    """uint8 [H,W,3] images → float32 [N,3,crop_h,crop_w] exactly as CLIPImageProcessor does."""
    from PIL import Image
    out = []
    for im in images:
        a = np.asarray(im)
        if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
            raise InvalidInputError(f"images must be uint8 [H,W,3]; got {a.dtype} {a.shape}")
        h, w = a.shape[:2]
        s = pre.shortest_edge
        nh, nw = (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
        img = Image.fromarray(a[..., :3]).resize((nw, nh), resample=Image.BICUBIC)
        x = np.asarray(img, dtype=np.float32)
        ch, cw = pre.crop
        top, left = (nh - ch) // 2, (nw - cw) // 2
        x = x[max(top, 0):max(top, 0) + ch, max(left, 0):max(left, 0) + cw]
        x = x / 255.0
        x = (x - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
        out.append(x.transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class TorchClip:
    """transformers ``CLIPModel`` + tokenizer from a folder (or the hub id)."""

    def __init__(self, source: str | Path, *, batch_size: int = 32, local_files_only: bool = True):
        import torch
        from transformers import AutoTokenizer, CLIPModel
        self.name = str(source)
        self.batch_size = batch_size
        self.model = CLIPModel.from_pretrained(source, local_files_only=local_files_only).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
        folder = Path(source) if Path(source).is_dir() else None
        size = self.model.config.vision_config.image_size
        self.pre = Preprocess.from_folder(folder, size) if folder else Preprocess()
        self.max_length = int(self.model.config.text_config.max_position_embeddings)
        self._torch = torch

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        outs = []
        for b in range(0, len(texts), self.batch_size):
            tok = self.tokenizer(list(texts[b:b + self.batch_size]), padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
            with torch.no_grad():
                f = self.model.get_text_features(input_ids=tok["input_ids"],
                                                 attention_mask=tok["attention_mask"])
            outs.append(_as_np(f))
        return _unit(np.concatenate(outs))

    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        torch = self._torch
        outs = []
        for b in range(0, len(images), self.batch_size):
            px = torch.from_numpy(preprocess_images(images[b:b + self.batch_size], self.pre))
            with torch.no_grad():
                outs.append(_as_np(self.model.get_image_features(pixel_values=px)))
        return _unit(np.concatenate(outs))


def _as_np(f) -> np.ndarray:
    if hasattr(f, "pooler_output") and not hasattr(f, "numpy"):   # newer transformers outputs
        f = f.pooler_output
    return f.detach().cpu().numpy()


class OnnxClip:
    """The two CLIP towers as ONNX (``text.onnx``: input_ids, attention_mask → text_embeds;
    ``image.onnx``: pixel_values → image_embeds) with the folder's tokenizer (``tokenizer.json``)."""

    def __init__(self, folder: str | Path, *, batch_size: int = 32, threads: int = 0):
        import onnxruntime as ort
        from tokenizers import Tokenizer
        folder = Path(folder)
        meta = _onnx_meta(folder)
        self.name = str(folder)
        self.batch_size = batch_size
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        prov = ["CPUExecutionProvider"]
        self.text = ort.InferenceSession(str(folder / meta["text"]), so, providers=prov)
        self.image = ort.InferenceSession(str(folder / meta["image"]), so, providers=prov)
        self.tok = Tokenizer.from_file(str(folder / meta["tokenizer"]))
        self.max_length = int(meta["max_length"])
        self.pad_id = int(meta["pad_id"])
        p = meta["preprocess"]
        self.pre = Preprocess(p["shortest_edge"], tuple(p["crop"]), tuple(p["mean"]), tuple(p["std"]))

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        outs = []
        for b in range(0, len(texts), self.batch_size):
            enc = self.tok.encode_batch(list(texts[b:b + self.batch_size]))
            ids = [e.ids[:self.max_length] for e in enc]
            n = max(len(i) for i in ids)
            input_ids = np.full((len(ids), n), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(ids), n), dtype=np.int64)
            for r, i in enumerate(ids):
                input_ids[r, :len(i)] = i
                mask[r, :len(i)] = 1
            outs.append(self.text.run(None, {"input_ids": input_ids, "attention_mask": mask})[0])
        return _unit(np.concatenate(outs))

    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        outs = []
        for b in range(0, len(images), self.batch_size):
            px = preprocess_images(images[b:b + self.batch_size], self.pre)
            outs.append(self.image.run(None, {"pixel_values": px})[0])
        return _unit(np.concatenate(outs))


def _onnx_meta(folder: Path) -> dict:
    """Our ``clip_onnx.json``, or the export package's layout (``clip.json``, ``clip_text.onnx``,
    ``clip_image.onnx``, ``clip_tokenizer.json``; export.clip_export)."""
    if (folder / ONNX_MANIFEST).is_file():
        return json.loads((folder / ONNX_MANIFEST).read_text())
    info = json.loads((folder / "clip.json").read_text())
    tok = folder / "clip_tokenizer.json"
    if not tok.is_file():
        raise AssetError(f"{folder}: clip_tokenizer.json is missing (export the towers with the tokenizer)")
    from tokenizers import Tokenizer
    t = Tokenizer.from_file(str(tok))
    pad = t.token_to_id("<|endoftext|>")
    size = int(info.get("image_size", 224))
    return {"text": "clip_text.onnx", "image": "clip_image.onnx", "tokenizer": tok.name,
            "max_length": int(info.get("max_length", 77)), "pad_id": int(pad or 0),
            "preprocess": Preprocess(size, (size, size)).to_dict()}


def _is_onnx_folder(p: Path) -> bool:
    return (p / ONNX_MANIFEST).is_file() or ((p / "clip.json").is_file() and (p / "clip_text.onnx").is_file())


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def _hf_cached(repo: str) -> bool:
    """Whether the Hugging Face cache holds ``repo`` (checked without importing transformers)."""
    roots = [os.environ.get("HF_HUB_CACHE"), os.environ.get("TRANSFORMERS_CACHE"),
             os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None,
             os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                          "huggingface", "hub")]
    name = "models--" + repo.replace("/", "--")
    return any(r and (Path(r) / name / "snapshots").is_dir() for r in roots)


def load_clip(path: str | Path | None = None, *, batch_size: int = 32) -> ClipEncoder:
    """Resolve a CLIP encoder (see module doc). Raises AssetError naming ``--clip`` and the
    offline judges when none can be had."""
    if path is not None:
        p = Path(path)
        if _is_onnx_folder(p):
            return OnnxClip(p, batch_size=batch_size)
        if (p / "config.json").is_file():
            return TorchClip(p, batch_size=batch_size)
        raise AssetError(f"--clip {p}: not a CLIP folder (expected config.json + weights + "
                         f"tokenizer, or {ONNX_MANIFEST} from export_onnx); {OFFLINE_HINT}")
    if _hf_cached(DEFAULT_CLIP):
        try:
            return TorchClip(DEFAULT_CLIP, batch_size=batch_size, local_files_only=True)
        except (OSError, ValueError):
            pass
    if not _hub_reachable():
        raise AssetError(f"CLIP {DEFAULT_CLIP} is not in the local Hugging Face cache and the hub "
                         f"cannot be reached; {OFFLINE_HINT}")
    try:
        return TorchClip(DEFAULT_CLIP, batch_size=batch_size, local_files_only=False)
    except OSError as e:
        raise AssetError(f"could not download {DEFAULT_CLIP} ({e}); {OFFLINE_HINT}") from e


def export_onnx(clip_dir: str | Path, out_dir: str | Path, *, opset: int = 17) -> Path:
    """Export a transformers CLIP folder's towers to ONNX (``text.onnx``, ``image.onnx``) plus
    ``tokenizer.json`` and ``clip_onnx.json`` — a folder :func:`load_clip` then runs without torch."""
    import torch
    from emo3d.io import atomic_path
    src = TorchClip(clip_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = src.model

    class _Text(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, attention_mask):
            f = self.m.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            return f.pooler_output if hasattr(f, "pooler_output") else f

    class _Image(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, pixel_values):
            f = self.m.get_image_features(pixel_values=pixel_values)
            return f.pooler_output if hasattr(f, "pooler_output") else f

    import warnings
    with warnings.catch_warnings():       # tracer chatter of the legacy exporter
        warnings.simplefilter("ignore")
        ids = torch.ones((2, 7), dtype=torch.long)
        mask = torch.ones((2, 7), dtype=torch.long)
        px = torch.zeros((2, 3, *src.pre.crop), dtype=torch.float32)
        with atomic_path(out / "text.onnx") as tmp:
            torch.onnx.export(_Text(), (ids, mask), str(tmp), input_names=["input_ids", "attention_mask"],
                              output_names=["text_embeds"], opset_version=opset, dynamo=False,
                              dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"},
                                            "text_embeds": {0: "b"}})
        with atomic_path(out / "image.onnx") as tmp:
            torch.onnx.export(_Image(), (px,), str(tmp), input_names=["pixel_values"],
                              output_names=["image_embeds"], opset_version=opset, dynamo=False,
                              dynamic_axes={"pixel_values": {0: "b"}, "image_embeds": {0: "b"}})
    tok = src.tokenizer
    if not getattr(tok, "is_fast", False):
        raise AssetError(f"{clip_dir}: export needs a fast tokenizer (tokenizer.json)")
    with atomic_path(out / "tokenizer.json") as tmp:
        tok.backend_tokenizer.save(str(tmp))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    atomic_write_json(out / ONNX_MANIFEST, {
        "source": str(clip_dir), "text": "text.onnx", "image": "image.onnx",
        "tokenizer": "tokenizer.json", "max_length": src.max_length, "pad_id": int(pad),
        "preprocess": src.pre.to_dict()})
    return out
