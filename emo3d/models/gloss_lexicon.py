"""The gloss lexicon: what a dictionary says a rare word means, read once at build time, looked up at run time.

A short description often hangs on one word the encoder has seldom seen ("chuffed", "incensed", "snide",
"poker-faced"). A person who does not know it looks it up: WordNet defines "chuffed" as "very pleased" and
"snide" as "expressive of contempt", and those definitions the reader reads well. The lexicon holds, for each
WordNet lemma (single words and collocations such as ``pissed_off``, ``walking_on_air``), the emotion the
reader's word prior (:mod:`.word_prior`) reads in its senses: each sense's dictionary entry read on its own (its
words, the words it is similar to or a kind of, its definition: "chuffed, pleased: very pleased"; or the bare
definition), the senses weighted by 1 / (their rank within their part of speech) — WordNet lists the commoner
senses first; only rare lemmas are kept (the encoder knows the common ones, whose many senses read as noise).
Built by :mod:`.gloss_lexicon_fit` from the WordNet 3.0 database (Princeton; its licence ships beside the
file as ``WORDNET-LICENSE.txt``); no emotion labels are involved.

At run time (numpy only) a short description's words are matched against the lexicon — longest collocation
first (up to :data:`MAX_NGRAM` words), then single words with WordNet-style suffix rules ("bummed" -> "bum",
"sobbing" -> "sob"), English function words skipped — and the reader adds ``weight`` x the mean log
probability of the matched lemmas to the word prior's log probabilities before its face is mixed in
(:meth:`.reader.TextReader.word_prior_faces`; ``weight``: ``manifest.json`` -> ``extra.reader.`` :data:`WEIGHT_KEY`,
selected on the description development set by ``train_reader``'s rule).

File ``gloss_lexicon.npz`` (compressed, no pickles): ``words`` uint8 (the lemmas, lower case, ``_`` between the
words of a collocation, sorted, joined by newlines), ``probs`` uint8 [N,8] (probability x :data:`PROB_LEVELS`,
rounded; ``schema.EMOTIONS`` order; each row renormalised on load)::

    lex = GlossLexicon.load(folder / GLOSS_FILE)
    lex.match("totally chuffed")         # (("chuffed", array([...8 probabilities])),)
    lex.log_evidence("totally chuffed")  # [8] mean log probability, or None when no word matched
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import ModelFileError
from emo3d.io import atomic_write_npz
from emo3d.schema import EMOTIONS

GLOSS_FILE = "gloss_lexicon.npz"
WEIGHT_KEY = "gloss_lexicon_weight"       # manifest extra.reader.<key>: the lexicon's weight (0: off)
LICENSE_FILE = "WORDNET-LICENSE.txt"
MAX_NGRAM = 4
PROB_FLOOR = 1e-4                          # probabilities below this count as this in the log evidence
PROB_LEVELS = 255                          # the file's probability steps (uint8): 0.002 apart
_TOKEN = re.compile(r"[a-z][a-z'\-]*")
LEMMA_PATTERN = re.compile(r"[a-z][a-z'\-.]*(?:_[a-z][a-z'\-.]*)*")
# what breaks a lemma in newline-joined lemmas: a character outside the lemma alphabet, a line not starting
# with a letter, or "_" not followed by a letter (one pass over the whole list instead of one match a word)
_BAD_LEMMA = re.compile(r"[^a-z'\-._\n]|\n[^a-z]|_[^a-z]")
# English function words and a description's frame words ("feeling ...", "a ... look") never looked up on their
# own; they still count inside collocations ("up_in_arms", "on_edge", "poker_face")
FUNCTION_WORDS = frozenset("""
a an the this that these those my your his her its our their me him them us it i you he she we they
at to of on in into onto out over under up down off about above below by with without from for as than
and or but nor so yet if then when while because though although
is am are was were be been being do does did have has had will would can could shall should may might must
not no yes just very really so too quite rather totally completely absolutely utterly
feel feels felt feeling look looks looked looking face faces expression
""".split())
# WordNet's detachment rules (morphy), generic over parts of speech: (suffix, replacement)
_SUFFIXES: Tuple[Tuple[str, str], ...] = (
    ("ies", "y"), ("es", "e"), ("es", ""), ("s", ""), ("ied", "y"), ("ed", "e"), ("ed", ""), ("ing", "e"),
    ("ing", ""), ("ier", "y"), ("iest", "y"), ("er", ""), ("er", "e"), ("est", ""), ("est", "e"))
_DOUBLED = re.compile(r"(.*([bdfgklmnprtz]))\2(?:ed|ing|er|est)$")
MIN_STEM = 3


def word_forms(word: str) -> Tuple[str, ...]:
    """``word`` and the lemmas WordNet's suffix rules could derive it from, in that order ("bummed" ->
    bummed, bumme, bumm, bum); lemmas shorter than :data:`MIN_STEM` letters are not tried."""
    out = [word]
    for suffix, repl in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) + len(repl) >= MIN_STEM:
            out.append(word[:-len(suffix)] + repl)
    m = _DOUBLED.match(word)
    if m and len(m.group(1)) >= MIN_STEM:
        out.append(m.group(1))
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class GlossLexicon:
    """Lemmas and their emotion probabilities (see the module doc); kept sorted by lemma (looked up by
    bisection: loading builds no index)."""
    words: Tuple[str, ...]
    probs: np.ndarray

    def __post_init__(self) -> None:
        words = tuple(self.words)
        p = np.array(self.probs, np.float32)           # a copy: the caller's array stays writable
        if p.ndim != 2 or p.shape != (len(words), len(EMOTIONS)):
            raise ModelFileError(f"gloss lexicon probs have shape {p.shape}; expected [{len(words)} words, "
                                 f"{len(EMOTIONS)} emotions]")
        if not np.isfinite(p).all() or (p < 0).any() or (len(p) and np.abs(p.sum(1) - 1).max() > 1e-2):
            raise ModelFileError("gloss lexicon probs must be finite, non-negative and sum to 1 per word")
        joined = "\n".join(words)
        if words and (_BAD_LEMMA.search(joined) or not joined[0].isalpha() or joined.endswith(("_", "\n"))
                      or joined.count("\n") != len(words) - 1):
            bad = next((w for w in words if not LEMMA_PATTERN.fullmatch(w)), joined[:40])
            raise ModelFileError(f"gloss lexicon word {bad!r} is not a lower-case lemma (letters, ' - . and _ "
                                 f"between the words of a collocation)")
        if not all(map(str.__lt__, words, words[1:])):
            order = sorted(range(len(words)), key=words.__getitem__)
            words, p = tuple(words[i] for i in order), p[order]
            if any(a == b for a, b in zip(words, words[1:])):
                raise ModelFileError("gloss lexicon words must be unique")
        p.setflags(write=False)
        object.__setattr__(self, "words", words)
        object.__setattr__(self, "probs", p)

    def __len__(self) -> int:
        return len(self.words)

    def _find(self, lemma: str) -> Optional[int]:
        i = bisect.bisect_left(self.words, lemma)
        return i if i < len(self.words) and self.words[i] == lemma else None

    def __contains__(self, lemma: str) -> bool:
        return self._find(lemma) is not None

    def get(self, lemma: str) -> Optional[np.ndarray]:
        """A copy of ``lemma``'s [8] probabilities, or None."""
        i = self._find(lemma)
        return None if i is None else self.probs[i].copy()

    def _spans(self, tokens: Sequence[str]) -> Iterator[Tuple[int, int]]:
        used = [False] * len(tokens)
        for n in range(min(MAX_NGRAM, len(tokens)), 0, -1):
            for i in range(len(tokens) - n + 1):
                if any(used[i:i + n]) or (n == 1 and tokens[i] in FUNCTION_WORDS):
                    continue
                if n == 1:
                    cands = word_forms(tokens[i])
                else:   # a collocation: as written, then its first or last word as a lemma ("bummed_out" -> "bum_out")
                    cands = ("_".join(tokens[i:i + n]),) + tuple(
                        "_".join([f] + list(tokens[i + 1:i + n])) for f in word_forms(tokens[i])[1:]) + tuple(
                        "_".join(list(tokens[i:i + n - 1]) + [f]) for f in word_forms(tokens[i + n - 1])[1:])
                for c in cands:
                    j = self._find(c)
                    if j is not None:
                        used[i:i + n] = [True] * n
                        yield i, j
                        break

    def match(self, text: str) -> Tuple[Tuple[str, np.ndarray], ...]:
        """The lemmas found in ``text`` (lower-cased; longest collocations first) with copies of their
        probabilities, in the text's order."""
        tokens = _TOKEN.findall(text.lower())
        return tuple((self.words[j], self.probs[j].copy()) for _, j in sorted(self._spans(tokens)))

    def log_evidence(self, text: str) -> Optional[np.ndarray]:
        """[8] mean log probability (floored at :data:`PROB_FLOOR`) of the lemmas found in ``text``; None
        when none was found."""
        found = self.match(text)
        if not found:
            return None
        return np.mean([np.log(np.maximum(p, PROB_FLOOR)) for _, p in found], axis=0).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        return atomic_write_npz(Path(path), compressed=True,
                                words=np.frombuffer("\n".join(self.words).encode("utf-8"), np.uint8),
                                probs=np.rint(self.probs * PROB_LEVELS).astype(np.uint8))

    @staticmethod
    def load(path: str | Path) -> "GlossLexicon":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = {"words", "probs"} - set(z.files)
                if missing:
                    raise ModelFileError(f"{path} lacks {', '.join(sorted(missing))} (a gloss lexicon holds "
                                         f"words, probs)")
                raw = z["words"]
                if raw.dtype != np.uint8 or raw.ndim != 1:
                    raise ModelFileError(f"{path}: words must be a 1-d uint8 array (UTF-8 text), got "
                                         f"{raw.dtype} {raw.shape}")
                text = raw.tobytes().decode("utf-8")
                words = tuple(text.split("\n")) if text else ()
                q = z["probs"]
                if q.dtype != np.uint8:
                    raise ModelFileError(f"{path}: probs must be uint8 (probability x {PROB_LEVELS}), got {q.dtype}")
                p = q.astype(np.float32)
                p /= np.maximum(p.sum(1, keepdims=True), 1.0)
                return GlossLexicon(words, p)
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise ModelFileError(f"{path} is not a readable gloss lexicon (.npz): {e}") from None


__all__ = ["GlossLexicon", "LEMMA_PATTERN", "GLOSS_FILE", "WEIGHT_KEY", "LICENSE_FILE", "FUNCTION_WORDS", "MAX_NGRAM",
           "word_forms"]
