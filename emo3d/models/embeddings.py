"""Embedding cache of the training side: each distinct text is embedded once by a (frozen) torch encoder
and kept on disk under ``cache_dir("embeddings", <backbone key>)``; CLIP image embeddings alongside.

Used by :mod:`.train` and :mod:`.evaluate_default`; imports torch.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from emo3d.io import atomic_path, cache_dir
from emo3d.parallel import ParallelOptions, run_tasks

from .backbones import BackboneSpec

log = logging.getLogger("emo3d.models.embeddings")


def _spec_key(spec: BackboneSpec) -> str:
    h = hashlib.sha256(repr((spec.name, spec.pooling, spec.normalize, spec.max_length)).encode())
    folder = Path(spec.path)
    if folder.is_dir():
        for f in sorted(folder.glob("*")):
            if f.is_file() and f.suffix in (".json", ".safetensors", ".bin"):
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


class EmbeddingStore:
    """Per-text embedding cache of one backbone: ``cache_dir("embeddings", spec_key)/chunk-*.npz``.

    Each chunk holds ``texts`` and ``emb``; a rebuilt dataset only embeds the texts it has not seen.
    """

    def __init__(self, spec: BackboneSpec):
        self.folder = cache_dir("embeddings", _spec_key(spec))
        self.table: Dict[str, np.ndarray] = {}
        for f in sorted(self.folder.glob("chunk-*.npz")):
            try:
                with np.load(f, allow_pickle=False) as z:
                    for t, e in zip(z["texts"].tolist(), z["emb"]):
                        self.table[t] = e
            except (OSError, ValueError, KeyError):
                log.warning("ignoring unreadable embedding cache file %s", f)

    def add(self, texts: Sequence[str], emb: np.ndarray) -> None:
        if not len(texts):
            return
        key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:20]
        with atomic_path(self.folder / f"chunk-{key}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, texts=np.array(list(texts)), emb=emb.astype(np.float32))
        self.table.update(zip(texts, emb))


@torch.no_grad()
def _embed_batches(encoder, tokenizer, texts: Sequence[str], spec: BackboneSpec, batch: int) -> np.ndarray:
    out = []
    for i in range(0, len(texts), batch):
        tok = tokenizer(list(texts[i:i + batch]), padding=True, truncation=True, max_length=spec.max_length,
                        return_tensors="pt")
        out.append(encoder(tok["input_ids"], tok["attention_mask"]).float().cpu().numpy())
    return np.concatenate(out, axis=0)


_WORKER_ENCODERS: Dict[BackboneSpec, tuple] = {}     # per worker process: the encoder it loaded


@torch.no_grad()
def _embed_chunk(task) -> np.ndarray:
    """Worker task: (spec, texts, batch) -> [N,D]; the worker loads the spec's encoder once."""
    spec, texts, batch = task
    if spec not in _WORKER_ENCODERS:
        from .encoders import load_encoder
        encoder, tokenizer = load_encoder(spec)
        _WORKER_ENCODERS[spec] = (encoder.eval(), tokenizer)
    encoder, tokenizer = _WORKER_ENCODERS[spec]
    return _embed_batches(encoder, tokenizer, texts, spec, batch)


@torch.no_grad()
def embed_texts(encoder, tokenizer, texts: Sequence[str], spec: BackboneSpec, *, batch: int = 128,
                progress: bool = True, cache: bool = True,
                parallel: Optional[ParallelOptions] = None) -> torch.Tensor:
    """Embed texts with a (frozen) encoder: each distinct text once; cached per text on disk.
    ``parallel`` (worker processes or Ray): chunks of the texts go to workers that load ``spec``'s
    encoder themselves — only for an encoder built from ``spec`` (not a fine-tuned one)."""
    from tqdm.auto import tqdm
    store = EmbeddingStore(spec) if cache else None
    known = store.table if store else {}
    todo = sorted({t for t in texts if t not in known}, key=len)   # similar lengths: less padding
    fresh: Dict[str, np.ndarray] = {}
    if todo and parallel is not None and parallel.backend != "inline" and len(todo) > batch:
        chunks: List[List[str]] = [todo[i:i + batch * 4] for i in range(0, len(todo), batch * 4)]
        with tqdm(total=len(todo), desc="embedding texts", unit="text", disable=not progress, leave=False) as bar:
            def done(i, emb):
                bar.update(len(chunks[i]))
                if store is not None:
                    store.add(chunks[i], emb)           # saved as it goes
                else:
                    fresh.update(zip(chunks[i], emb))
            run_tasks(_embed_chunk, [(spec, c, batch) for c in chunks], parallel, on_done=done)
        known = store.table if store else fresh
        todo = []
    if todo:
        encoder.eval()
        for i in tqdm(range(0, len(todo), batch), desc="embedding texts", unit="batch", disable=not progress,
                      leave=False):
            chunk = todo[i:i + batch]
            tok = tokenizer(chunk, padding=True, truncation=True, max_length=spec.max_length, return_tensors="pt")
            emb = encoder(tok["input_ids"], tok["attention_mask"]).float().cpu().numpy()
            fresh.update(zip(chunk, emb))
            if store is not None and (len(fresh) >= 2048 or i + batch >= len(todo)):
                store.add(list(fresh), np.stack(list(fresh.values())))   # saved as it goes
                fresh = {}
        known = store.table if store else fresh
    if not texts:
        return torch.zeros((0, encoder.out_dim))
    return torch.from_numpy(np.stack([known[t] for t in texts]).astype(np.float32))


@torch.no_grad()
def embed_images(encoder, spec: BackboneSpec, paths: Sequence[Path], flips: Sequence[bool], *,
                 batch: int = 32, progress: bool = True) -> torch.Tensor:
    """CLIP image embeddings (flipped where asked: mirror augmentation)."""
    from PIL import Image, ImageOps
    from tqdm.auto import tqdm
    from transformers import AutoImageProcessor
    proc = AutoImageProcessor.from_pretrained(spec.path)
    encoder.eval()
    out = []
    for i in tqdm(range(0, len(paths), batch), desc="embedding images", unit="batch", disable=not progress,
                  leave=False):
        imgs = []
        for p, fl in zip(paths[i:i + batch], flips[i:i + batch]):
            im = Image.open(p).convert("RGB")
            imgs.append(ImageOps.mirror(im) if fl else im)
        pix = proc(images=imgs, return_tensors="pt")["pixel_values"]
        out.append(encoder.encode_image(pix).float())
    return torch.cat(out, 0)
