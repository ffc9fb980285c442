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
* one ridge map per language ``l``: ``x -> (x - mean_l) @ W_l + mean_en`` (``W_l`` = argmin
  ``||(X_l - mean_l) W - (X_en - mean_en)||^2 + ridge ||W - I||^2`` over the parallel pairs);
* the aligned embedding ``p_en x + sum_l p_l ((x - mean_l) @ W_l + mean_en)`` (``p``: the identifier's
  probabilities); English text is left as it is.

Runtime: numpy only (the file ``language_align.npz`` of a reader folder, named in its manifest). Fitting
(:func:`fit`) uses torch for the identifier.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple

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
    ``maps`` [L-1,D,D]: the ridge maps of ``languages[1:]``; ``ridge``: their regularisation."""
    languages: Tuple[str, ...]
    lid_w: np.ndarray
    lid_b: np.ndarray
    means: np.ndarray
    maps: np.ndarray
    ridge: float

    def __post_init__(self) -> None:
        L = len(self.languages)
        if L < 2 or self.languages[0] != ENGLISH or len(set(self.languages)) != L:
            raise ModelFileError(f"language alignment languages {list(self.languages)}: expected English ('en') "
                                 f"first and at least one other language, each once")
        D = self.means.shape[1] if self.means.ndim == 2 else -1
        shapes = {"lid_w": (D, L), "lid_b": (L,), "means": (L, D), "maps": (L - 1, D, D)}
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
                out[rows] += p[rows, k:k + 1] * ((emb[rows] - self.means[k]) @ self.maps[k - 1] + self.means[0])
        return out.astype(np.float32)

    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` (maps as float16; :func:`fit` already rounds them so, so training and run time
        see the same numbers); complete or absent."""
        from emo3d.io import atomic_path
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, languages=np.array(self.languages), lid_w=self.lid_w.astype(np.float32),
                         lid_b=self.lid_b.astype(np.float32), means=self.means.astype(np.float32),
                         maps=self.maps.astype(np.float16), ridge=np.float32(self.ridge))
        return path

    @staticmethod
    def load(path: str | Path) -> "LanguageAlignment":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                return LanguageAlignment(tuple(str(x) for x in z["languages"]), z["lid_w"].astype(np.float32),
                                         z["lid_b"].astype(np.float32), z["means"].astype(np.float32),
                                         z["maps"].astype(np.float32), float(z["ridge"]))
        except (OSError, ValueError, KeyError) as e:
            raise ModelFileError(f"{path} is not a readable language alignment (expected the arrays languages, "
                                 f"lid_w, lid_b, means, maps, ridge written by emo3d.models.train_reader): {e}") from None


def _fit_identifier(x: np.ndarray, y: np.ndarray, n_classes: int, *, seed: int, l2: float = 1e-3,
                    steps: int = 300) -> Tuple[np.ndarray, np.ndarray]:
    """Class-balanced multinomial logistic regression (LBFGS): [D,L] weights and [L] bias."""
    import torch
    torch.manual_seed(seed)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = (len(y) / (n_classes * np.maximum(counts, 1)))[y].astype(np.float32)
    xt, yt, wt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64)), torch.from_numpy(w)
    lin = torch.nn.Linear(x.shape[1], n_classes)
    opt = torch.optim.LBFGS(lin.parameters(), lr=0.5, max_iter=steps)

    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.cross_entropy(lin(xt), yt, reduction="none") * wt).mean() \
            + l2 * (lin.weight ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return lin.weight.detach().numpy().T.astype(np.float32).copy(), lin.bias.detach().numpy().astype(np.float32)


def ridge_map(src: np.ndarray, dst: np.ndarray, ridge: float) -> np.ndarray:
    """[D,D] ``W`` = argmin ``||src W - dst||^2 + ridge ||W - I||^2`` (``src``, ``dst``: centred [N,D])."""
    d = src.shape[1]
    eye = np.eye(d)
    return np.linalg.solve(src.T.astype(np.float64) @ src + ridge * eye,
                           src.T.astype(np.float64) @ dst + ridge * eye).astype(np.float32)


def fit(parallel: Mapping[str, np.ndarray], english: np.ndarray, words: Optional[Mapping[str, np.ndarray]] = None,
        *, ridge: float = 0.1, temperature: float = 1.0, seed: int = 0) -> LanguageAlignment:
    """Fit the alignment. ``parallel``: language -> [N,D] embeddings of the same N sentences (``"en"`` and
    the others, row i a translation of row i); ``english``: [M,D] more English embeddings (the identifier's
    English class); ``words``: language -> [K,D] embeddings of single words in that language (more identifier
    rows; optional). ``ridge`` > 0; ``temperature`` > 0: the identifier's logits are divided by it (stored so;
    below 1 sharpens its probabilities)."""
    if ENGLISH not in parallel or len(parallel) < 2:
        raise InvalidInputError(f"language alignment: the parallel sentences need English ('en') and at least one "
                                f"other language; got {sorted(parallel)}")
    if not ridge > 0:
        raise InvalidInputError(f"language alignment ridge is {ridge}; expected a number > 0")
    if not temperature > 0:
        raise InvalidInputError(f"language alignment temperature is {temperature}; expected a number > 0")
    langs = (ENGLISH,) + tuple(sorted(l for l in parallel if l != ENGLISH))
    n = len(parallel[ENGLISH])
    if any(len(parallel[l]) != n for l in langs) or n < 2:
        raise InvalidInputError(f"language alignment: every language needs the same >= 2 parallel sentences; got "
                                f"{ {l: len(parallel[l]) for l in langs} }")
    par = {l: np.asarray(parallel[l], np.float64) for l in langs}
    means = np.stack([par[l].mean(0) for l in langs]).astype(np.float32)
    maps = np.stack([ridge_map(par[l] - means[i], par[ENGLISH] - means[0], ridge)
                     for i, l in enumerate(langs) if i]).astype(np.float16).astype(np.float32)
    words = dict(words or {})
    xs = [np.asarray(english, np.float32), par[ENGLISH].astype(np.float32)]
    ys = [np.zeros(len(xs[0]), np.int64), np.zeros(n, np.int64)]
    for i, l in enumerate(langs[1:], 1):
        extra = np.asarray(words.get(l, np.zeros((0, means.shape[1]))), np.float32)
        xs.append(np.concatenate([par[l].astype(np.float32), extra]))
        ys.append(np.full(len(xs[-1]), i, np.int64))
    lid_w, lid_b = _fit_identifier(np.concatenate(xs), np.concatenate(ys), len(langs), seed=seed)
    return LanguageAlignment(langs, lid_w / np.float32(temperature), lid_b / np.float32(temperature), means, maps,
                             float(ridge))


__all__ = ["LanguageAlignment", "ALIGN_FILE", "SCRIPT_RULES", "LATIN_LANGUAGES", "fit", "ridge_map"]
