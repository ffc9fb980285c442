"""CLIP encoders for the Emo3D metric: transformers (torch) or ONNX towers (onnxruntime).

``load_clip(path=None)``:
* ``path`` a CLIP folder in :mod:`export.clip_layout`'s layout (``clip.json`` + ``clip_text.onnx`` +
  ``clip_image.onnx`` + ``clip_tokenizer.json``; made by ``emo3d export --clip`` or :func:`export_onnx`, both
  :mod:`export.clip_export`, the one CLIP exporter) → :class:`OnnxClip`;
* ``path`` a transformers CLIP folder (config.json + weights + tokenizer) → :class:`TorchClip`;
* ``None`` → ``openai/clip-vit-base-patch32`` from the local Hugging Face cache, else from the hub
  when it is reachable (checked with a 3 s connection test, so an offline machine fails at once).

Both encoders return L2-normalised float32 embeddings. Image preprocessing is CLIPProcessor's
(resize the shortest edge with bicubic, centre crop, /255, mean/std), done here in numpy/PIL so the
ONNX path needs no torch; it reads ``preprocessor_config.json`` where the folder has one.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from emo3d.errors import AssetError, InvalidInputError
from export.clip_layout import INFO_FILE, Preprocess, is_clip_folder, read_clip_folder

__all__ = ["DEFAULT_CLIP", "OFFLINE_HINT", "ClipEncoder", "Preprocess", "TorchClip", "OnnxClip",
           "load_clip", "export_onnx", "preprocess_images"]

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
OFFLINE_HINT = ("pass --clip PATH (a local transformers CLIP folder such as a saved "
                f"{DEFAULT_CLIP}, or its ONNX towers from `emo3d export --clip CLIP_DIR --out DIR`), "
                "or use an offline judge: --judge fer (facial-emotion classifier) or --judge roundtrip (MediaPipe "
                "round trip)")


class ClipEncoder(Protocol):
    name: str

    def encode_text(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray: ...


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
    """The two CLIP towers as ONNX (``clip_text.onnx``: input_ids, attention_mask → text_embeds;
    ``clip_image.onnx``: pixel_values → image_embeds) with the folder's ``clip_tokenizer.json``
    (:mod:`export.clip_layout`)."""

    def __init__(self, folder: str | Path, *, batch_size: int = 32, threads: int = 0):
        import onnxruntime as ort
        from tokenizers import Tokenizer
        folder = Path(folder)
        layout = read_clip_folder(folder)
        self.name = str(folder)
        self.batch_size = batch_size
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        prov = ["CPUExecutionProvider"]
        self.text = ort.InferenceSession(str(layout.text), so, providers=prov)
        self.image = ort.InferenceSession(str(layout.image), so, providers=prov)
        self.tok = Tokenizer.from_file(str(layout.tokenizer))
        self.max_length = layout.max_length
        self.pad_id = layout.pad_id
        self.pre = layout.preprocess

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
        if is_clip_folder(p):
            return OnnxClip(p, batch_size=batch_size)
        if (p / "config.json").is_file():
            return TorchClip(p, batch_size=batch_size)
        raise AssetError(f"--clip {p}: not a CLIP folder (expected config.json + weights + "
                         f"tokenizer, or {INFO_FILE} + ONNX towers from `emo3d export --clip`); {OFFLINE_HINT}")
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


def export_onnx(clip_dir: str | Path, out_dir: str | Path) -> Path:
    """Export a transformers CLIP folder's towers with parity checks (``export.clip_export``, the one CLIP
    exporter; the same as ``emo3d export --clip``) into ``out_dir``, a folder :func:`load_clip` then runs
    without torch. Returns ``out_dir``."""
    from export.clip_export import export_clip_folder
    export_clip_folder(clip_dir, out_dir)
    return Path(out_dir)
