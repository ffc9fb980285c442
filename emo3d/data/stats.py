"""Per-emotion text statistics in the style of the Emo3D paper's Table 3, and the paper's own numbers.

``text_statistics`` counts, for each emotion class (a description's class is its sample's dominant
emotion, as in the paper's Figure 9): descriptions, words, unique words, mean word length (characters
per word) and mean sentence length (words per description), twice: over all words, and over content
words (English function words, ``vocabulary.STOPWORDS``, removed). The paper does not say how it
tokenised, but its numbers fit content words: a mean word length of 6.2-7.3 characters is far above
running English text (about 4.7, which is what all words give here) and its most frequent words
(Table 4: "emotion", "expression", "one", "hint") are what is left once function words are dropped.
So the card compares the paper with our content-word columns and shows the all-word ones beside them.

Words are lower-cased runs of letters, with inner hyphens and apostrophes kept ("wide-open", "brow's").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.schema import EMOTIONS

from .vocabulary import STOPWORDS

__all__ = ["PAPER_TABLE3", "PAPER_TABLE3_SOURCE", "PaperRow", "EmotionTextStats", "TextStats", "words",
           "content_words", "text_statistics", "sample_texts"]

PAPER_TABLE3_SOURCE = ("Dehghani et al., \"Emo3D: Metric and Benchmarking Dataset for 3D Facial Expression "
                       "Generation from Emotion Description\", Appendix A.2, Table 3 (Dataset Statistics by "
                       "emotion Category)")


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's Table 3 (as printed there)."""
    words: int
    unique_words: int
    avg_word_len: float
    avg_sentence_len: float

    @property
    def descriptions(self) -> int:
        """Descriptions implied by the row (words / mean sentence length): the paper does not print it."""
        return int(round(self.words / self.avg_sentence_len))


PAPER_TABLE3: Mapping[str, PaperRow] = {
    "neutral": PaperRow(14805, 1684, 7.277609, 13.555218),
    "happiness": PaperRow(31405, 1519, 6.687916, 12.375832),
    "surprise": PaperRow(33690, 1559, 6.576492, 12.152983),
    "sadness": PaperRow(32878, 2220, 6.816656, 12.633311),
    "anger": PaperRow(16097, 1288, 6.419271, 11.838541),
    "disgust": PaperRow(19917, 1306, 6.766280, 12.532560),
    "fear": PaperRow(15120, 1245, 6.161111, 11.322222),
    "contempt": PaperRow(7535, 958, 6.982349, 12.964698),
}

_WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*")


def words(text: str) -> list:
    """The words of ``text``: lower-cased letter runs, inner hyphens/apostrophes kept."""
    return _WORD.findall(str(text).lower())


def content_words(text: str) -> list:
    """``words(text)`` without English function words (``vocabulary.STOPWORDS``)."""
    return [w for w in words(text) if w not in STOPWORDS]


@dataclass(frozen=True)
class EmotionTextStats:
    """Table-3 statistics of one emotion class. ``words``/``unique_words``/``avg_word_len``/
    ``avg_sentence_len`` count content words (the paper's way, see the module docstring); the ``all_*``
    fields count every word. ``unique_at_paper_size`` is the number of unique content words among the
    first ``PAPER_TABLE3[emotion].words`` content words (None when the class has fewer): the paper's
    unique-word count at the paper's size."""
    emotion: str
    descriptions: int
    words: int
    unique_words: int
    avg_word_len: float
    avg_sentence_len: float
    all_words: int
    all_unique_words: int
    all_avg_word_len: float
    all_avg_sentence_len: float
    unique_at_paper_size: Optional[int]


@dataclass(frozen=True)
class TextStats:
    """Statistics of every emotion class, in ``schema.EMOTIONS`` order."""
    rows: Tuple[EmotionTextStats, ...]

    def __getitem__(self, emotion: str) -> EmotionTextStats:
        for r in self.rows:
            if r.emotion == emotion:
                return r
        raise InvalidInputError(f"unknown emotion {emotion!r} (accepted: {', '.join(EMOTIONS)})")

    def as_dict(self) -> Dict[str, dict]:
        from dataclasses import asdict
        return {r.emotion: asdict(r) for r in self.rows}


def _mean_len(ws: Sequence[str]) -> float:
    return float(sum(map(len, ws)) / len(ws)) if ws else 0.0


def text_statistics(items: Iterable[Tuple[str, str]]) -> TextStats:
    """Per-emotion statistics of ``(text, emotion)`` pairs (emotion: one of ``schema.EMOTIONS``); an
    emotion without texts gets zeros."""
    by: Dict[str, list] = {e: [] for e in EMOTIONS}
    for text, emotion in items:
        if emotion not in by:
            raise InvalidInputError(f"text_statistics: unknown emotion {emotion!r} for {str(text)[:40]!r} "
                                    f"(accepted: {', '.join(EMOTIONS)})")
        by[emotion].append(str(text))
    rows = []
    for e in EMOTIONS:
        texts = by[e]
        all_w = [w for t in texts for w in words(t)]
        con = [w for w in all_w if w not in STOPWORDS]
        n_paper = PAPER_TABLE3[e].words
        n = len(texts)
        rows.append(EmotionTextStats(
            emotion=e, descriptions=n, words=len(con), unique_words=len(set(con)),
            avg_word_len=_mean_len(con), avg_sentence_len=len(con) / n if n else 0.0,
            all_words=len(all_w), all_unique_words=len(set(all_w)), all_avg_word_len=_mean_len(all_w),
            all_avg_sentence_len=len(all_w) / n if n else 0.0,
            unique_at_paper_size=len(set(con[:n_paper])) if len(con) >= n_paper else None))
    return TextStats(tuple(rows))


def sample_texts(samples) -> list:
    """``(text, dominant emotion)`` of every text of ``samples`` (``reader.Sample``), in sample order."""
    return [(t, EMOTIONS[int(np.argmax(s.emotions))]) for s in samples for t in s.texts]
