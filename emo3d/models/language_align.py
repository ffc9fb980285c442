"""Language alignment of the reader's embeddings: a translated text is moved to where its English original
would sit before the head reads it.

multilingual-e5 puts the same sentence in different languages at different places (a per-language offset
plus a language-specific linear distortion; Libovický et al. 2020, "On the language neutrality of pre-trained
multilingual representations"). A head trained mostly on English then reads some translations differently
from their originals. This step, fitted on the hand-written PARALLEL TRAINING sentences only
(``text_sets/multilingual_sentences*.json``, never the evaluation or development sets), maps each language
onto English:

* a language identifier: the script decides for Japanese (kana), Chinese (Han), Russian (Cyrillic), Persian
  (Arabic script with a Persian-only letter) and Arabic; Latin-script text gets a softmax over the Latin
  languages from a linear classifier on the embedding (fitted on the parallel sentences, the emotion words of
  ``data.lexicon.multilingual_words`` and English training rows; its logits divided by a temperature, 0.5 in
  the recipe: sharper); text without letters (emoji, numbers) is read as English, unchanged;
* one ridge map per language ``l``: ``x -> (x - mean_l) @ W_l + target_l`` (``W_l`` = argmin
  ``sum_i w_i ||(x_i - mean_l) W - (e_i - target_l)||^2 + ridge ||W - I||^2`` over the pairs (translation
  ``x_i``, its English original ``e_i``, weight ``w_i``); ``mean_l`` / ``target_l``: the pairs' weighted means
  of the two sides; ``target_l`` is the English mean ``mean_en`` when every pair is one of the hand-written
  sentences, whose English side all languages share);
* the aligned embedding ``p_en x + sum_l p_l ((x - mean_l) @ W_l + target_l)`` (``p``: the identifier's
  probabilities); English text is left as it is.

More pairs than the hand-written sentences (translated corpora read by :mod:`.parallel_corpora`, each language
its own English originals) enter only through the fit; a file without ``targets`` (fitted on the hand-written
sentences alone) maps onto ``mean_en``.

Runtime: numpy only (the file ``language_align.npz`` of a reader folder, named in its manifest). Fitting is
training-only code in :mod:`.language_align_fit` (torch for the identifier), which the runtime never imports.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError, ModelFileError

ALIGN_FILE = "language_align.npz"
ENGLISH = "en"
# (language, pattern): the first that matches decides; Persian before Arabic (its own letters)
SCRIPT_RULES: Tuple[Tuple[str, "re.Pattern[str]"], ...] = (
    ("ja", re.compile("[\u3040-\u30ff]")),                              # hiragana, katakana
    ("zh", re.compile("[\u4e00-\u9fff]")),                              # Han without kana
    ("ru", re.compile("[\u0400-\u04ff]")),                              # Cyrillic
    ("fa", re.compile("[\u067e\u0686\u0698\u06af\u06a9\u06cc]")),       # پ چ ژ گ ک ی
    ("ar", re.compile("[\u0600-\u06ff]")),                              # other Arabic script
)
LATIN_LANGUAGES = ("en", "fr", "es", "de", "it", "pt")
_LETTER = re.compile(r"[^\W\d_]")
MIN_PROB = 1e-4        # languages below this probability are not mapped (their share goes nowhere: renormalised)


@dataclass(frozen=True)
class LanguageAlignment:
    """A fitted alignment (see the module doc). ``languages[0]`` is English; ``lid_w`` [D,L], ``lid_b`` [L]:
    the identifier's logits; ``means`` [L,D]: each language's mean embedding on the parallel sentences;
    ``maps`` [L-1,D,D]: the ridge maps of ``languages[1:]``; ``ridge``: their regularisation; ``targets``
    [L-1,D]: where each map sends its language's mean (None: ``means[0]``, English's, for every language)."""
    languages: Tuple[str, ...]
    lid_w: np.ndarray
    lid_b: np.ndarray
    means: np.ndarray
    maps: np.ndarray
    ridge: float
    targets: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        L = len(self.languages)
        if L < 2 or self.languages[0] != ENGLISH or len(set(self.languages)) != L:
            raise ModelFileError(f"language alignment languages {list(self.languages)}: expected English ('en') "
                                 f"first and at least one other language, each once")
        D = self.means.shape[1] if self.means.ndim == 2 else -1
        shapes = {"lid_w": (D, L), "lid_b": (L,), "means": (L, D), "maps": (L - 1, D, D), "targets": (L - 1, D)}
        if self.targets is None:
            object.__setattr__(self, "targets", np.tile(self.means[:1], (L - 1, 1)) if self.means.ndim == 2 else np.zeros((0, 0)))
        for name, shape in shapes.items():
            got = getattr(self, name).shape
            if got != shape:
                raise ModelFileError(f"language alignment {name} has shape {got}, expected {shape} "
                                     f"({L} languages, {D}-d embeddings)")
            if not np.all(np.isfinite(getattr(self, name))):
                raise ModelFileError(f"language alignment {name} has non-finite values")

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def probs(self, texts: Sequence[str], emb: np.ndarray) -> np.ndarray:
        """[N,L] language probabilities (``languages`` order) of ``texts`` and their embeddings."""
        emb = np.asarray(emb, np.float32)
        if len(texts) != len(emb):
            raise InvalidInputError(f"LanguageAlignment: {len(texts)} texts but {len(emb)} embeddings")
        index = {l: i for i, l in enumerate(self.languages)}
        latin = np.array([index[l] for l in LATIN_LANGUAGES if l in index], np.int64)
        out = np.zeros((len(texts), len(self.languages)), np.float32)
        for i, text in enumerate(texts):
            lang = next((l for l, rx in SCRIPT_RULES if l in index and rx.search(text)), None)
            if lang is not None:
                out[i, index[lang]] = 1.0
            elif not _LETTER.search(text) or len(latin) < 2:
                out[i, 0] = 1.0
            else:
                z = emb[i] @ self.lid_w[:, latin] + self.lid_b[latin]
                z = np.exp(z - z.max())
                out[i, latin] = z / z.sum()
        return out

    def __call__(self, texts: Sequence[str], emb: np.ndarray) -> np.ndarray:
        """[N,D] aligned embeddings of ``texts`` (their encoder embeddings ``emb``)."""
        emb = np.asarray(emb, np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise InvalidInputError(f"LanguageAlignment: embeddings of shape {emb.shape}, expected [N,{self.dim}]")
        p = self.probs(texts, emb)
        p = np.where(p >= MIN_PROB, p, 0.0)
        p /= p.sum(1, keepdims=True)
        out = emb * p[:, :1]
        for k in range(1, len(self.languages)):
            rows = np.flatnonzero(p[:, k])
            if len(rows):
                out[rows] += p[rows, k:k + 1] * ((emb[rows] - self.means[k]) @ self.maps[k - 1] + self.targets[k - 1])
        return out.astype(np.float32)

    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` (maps as float16; :func:`fit` already rounds them so, so training and run time
        see the same numbers); complete or absent."""
        from emo3d.io import atomic_write_npz
        return atomic_write_npz(Path(path), languages=np.array(self.languages), lid_w=self.lid_w.astype(np.float32),
                                lid_b=self.lid_b.astype(np.float32), means=self.means.astype(np.float32),
                                maps=self.maps.astype(np.float16), ridge=np.float32(self.ridge),
                                targets=self.targets.astype(np.float32))

    @staticmethod
    def load(path: str | Path) -> "LanguageAlignment":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                return LanguageAlignment(tuple(str(x) for x in z["languages"]), z["lid_w"].astype(np.float32),
                                         z["lid_b"].astype(np.float32), z["means"].astype(np.float32),
                                         z["maps"].astype(np.float32), float(z["ridge"]),
                                         z["targets"].astype(np.float32) if "targets" in z.files else None)
        except (OSError, ValueError, KeyError) as e:
            raise ModelFileError(f"{path} is not a readable language alignment (expected the arrays languages, "
                                 f"lid_w, lid_b, means, maps, ridge written by emo3d.models.train_reader): {e}") from None


__all__ = ["LanguageAlignment", "ALIGN_FILE", "SCRIPT_RULES", "LATIN_LANGUAGES"]
