"""Parallel text (a translation and its English original) from public corpora, for the language alignment
(:mod:`.language_align`): more pairs than the hand-written ``text_sets/multilingual_sentences*.json``.

Nothing is committed: each corpus is read from a path given on the command line (``train_reader
--parallel NAME=PATH``). The corpora this module reads, their licences and what is kept of them:

* ``tatoeba`` -- the Tatoeba test pairs of LASER (facebookresearch/LASER ``data/tatoeba/v1``: files
  ``tatoeba.<xxx>-eng.<xxx>`` and ``tatoeba.<xxx>-eng.eng``, line i a translation of line i; 1,000 pairs per
  language, each language its own English sentences). Sentences from tatoeba.org (CC-BY 2.0 FR), extracted
  2018-11-17 by the LASER authors (repository BSD). PATH: that folder.
* ``goemotions-<language>`` -- a translation of GoEmotions (Apache-2.0) whose rows carry the GoEmotions
  comment id. Only rows whose id is in GoEmotions' ``train`` or ``dev`` split are kept (ids of ``test``, and
  ids in no English split, are dropped), and the English side is the original English row of that id (read
  by :func:`.corpora.load_goemotions` from the GoEmotions folder); rows still in English (a translation equal
  to its original, or a non-Latin language without its script) are dropped. Two file layouts: TSV without a
  header (text, labels, id; aydakikio/goemotion_persian, CC-BY 4.0 + Apache-2.0) and CSV with a header
  naming ``<language>_text`` and ``id`` (searayeah/ru-goemotions, MIT). PATH: the file.

The language codes are the alignment's (:data:`emo3d.models.e5.LANGUAGES`): fr es de it pt ru zh ja ar fa.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from emo3d.errors import AssetError, InvalidInputError

from . import corpora

# the alignment's language codes -> Tatoeba's ISO 639-3 codes (Persian: Iranian Persian, Chinese: Mandarin)
TATOEBA_CODES: Dict[str, str] = {"fr": "fra", "es": "spa", "de": "deu", "it": "ita", "pt": "por", "ru": "rus",
                                 "zh": "cmn", "ja": "jpn", "ar": "ara", "fa": "pes"}
# a translation into one of these languages must contain its script (else it was left in English)
SCRIPTS: Dict[str, "re.Pattern[str]"] = {"ru": re.compile("[\u0400-\u04ff]"), "zh": re.compile("[\u4e00-\u9fff]"),
                                         "ja": re.compile("[\u3040-\u30ff\u4e00-\u9fff]"),
                                         "ar": re.compile("[\u0600-\u06ff]"), "fa": re.compile("[\u0600-\u06ff]")}
CORPORA = ("tatoeba", "goemotions-<language>")
CARDS = {
    "tatoeba": {"name": "Tatoeba test pairs (LASER)", "source": "facebookresearch/LASER data/tatoeba/v1",
                "licence": "CC-BY 2.0 FR (tatoeba.org sentences); repository BSD",
                "split": "one set (LASER's test pairs; not an emo3d evaluation set)"},
    "goemotions-fa": {"name": "GoEmotion Persian", "source": "aydakikio/goemotion_persian data/translated/*.tsv",
                      "licence": "CC-BY 4.0 and Apache-2.0 (GoEmotions: Apache-2.0)",
                      "split": "GoEmotions train/dev ids only (test ids dropped)"},
    "goemotions-ru": {"name": "Ru-GoEmotions", "source": "searayeah/ru-goemotions dataset/*.csv",
                      "licence": "MIT (GoEmotions: Apache-2.0)",
                      "split": "GoEmotions train/dev ids only (test ids dropped)"},
}


@dataclass(frozen=True)
class ParallelText:
    """Pairs of one language from one corpus: ``texts[i]`` translates ``english[i]``."""
    corpus: str
    language: str
    texts: Tuple[str, ...]
    english: Tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.english):
            raise InvalidInputError(f"{self.corpus}/{self.language}: {len(self.texts)} translations but "
                                    f"{len(self.english)} English originals")

    def __len__(self) -> int:
        return len(self.texts)


def _check_language(language: str, corpus: str) -> None:
    if language not in TATOEBA_CODES:
        raise InvalidInputError(f"parallel corpus {corpus!r}: language {language!r} is not one of the alignment's "
                                f"{', '.join(TATOEBA_CODES)}")


def _keep(language: str, text: str, english: str) -> bool:
    text, english = text.strip(), english.strip()
    if not text or not english or text == english:
        return False
    script = SCRIPTS.get(language)
    return script is None or bool(script.search(text))


def load_tatoeba(folder: str | Path, languages: Optional[Sequence[str]] = None) -> List[ParallelText]:
    """The LASER Tatoeba pairs of ``languages`` (default: every language whose two files are in ``folder``;
    a language asked for whose files are missing, or files of different lengths, raise
    :class:`emo3d.errors.AssetError`)."""
    folder = Path(folder)
    asked = list(languages) if languages is not None else [l for l, c in TATOEBA_CODES.items()
                                                          if (folder / f"tatoeba.{c}-eng.{c}").is_file()]
    out = []
    for lang in asked:
        _check_language(lang, "tatoeba")
        code = TATOEBA_CODES[lang]
        src, eng = folder / f"tatoeba.{code}-eng.{code}", folder / f"tatoeba.{code}-eng.eng"
        try:
            texts = src.read_text(encoding="utf-8").splitlines()
            english = eng.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise AssetError(f"tatoeba: cannot read {src.name} / {eng.name} in {folder} ({e}); expected LASER's "
                             f"data/tatoeba/v1 folder (tatoeba.<xxx>-eng.<xxx> + tatoeba.<xxx>-eng.eng)") from None
        if len(texts) != len(english):
            raise AssetError(f"tatoeba: {src} has {len(texts)} lines but {eng} has {len(english)}; line i of one "
                             f"must translate line i of the other")
        keep = [(t.strip(), e.strip()) for t, e in zip(texts, english) if _keep(lang, t, e)]
        out.append(ParallelText("tatoeba", lang, tuple(t for t, _ in keep), tuple(e for _, e in keep)))
    if not out:
        raise AssetError(f"tatoeba: no tatoeba.<xxx>-eng.<xxx> files of {', '.join(TATOEBA_CODES.values())} in "
                         f"{folder}")
    return out


def _read_translation(path: Path, language: str) -> List[Tuple[str, str]]:
    """(comment id, translated text) rows of a translated GoEmotions file (either layout)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as e:
        raise AssetError(f"goemotions-{language}: cannot read {path} ({e})") from None
    head = raw.split("\n", 1)[0]
    column = f"{language}_text"
    if column in head.split(",") and "id" in head.split(","):
        rows = csv.DictReader(raw.splitlines())
        return [(r["id"], r[column]) for r in rows]
    out = []
    for row in csv.reader(raw.splitlines(), delimiter="\t", quotechar='"'):
        if len(row) == 3:
            out.append((row[2].strip(), row[0]))
    if not out:
        raise AssetError(f"goemotions-{language}: {path} is neither a CSV with the columns {column!r} and 'id' nor "
                         f"a TSV of (text, labels, id) rows")
    return out


def load_goemotions_translation(path: str | Path, language: str,
                                goemotions: Optional[str | Path] = None) -> ParallelText:
    """The rows of a translated GoEmotions file whose comment id is in the English ``train`` or ``dev`` split
    (``goemotions``: the GoEmotions folder, as :func:`.corpora.load_goemotions`), each with that English row;
    test ids and untranslated rows are dropped."""
    _check_language(language, f"goemotions-{language}")
    english: Dict[str, str] = {}
    for split in corpora.TRAINABLE_SPLITS:
        rows = corpora.load_goemotions(split, goemotions)
        english.update(zip(rows.ids, rows.texts))
    test = set(corpora.load_goemotions("test", goemotions).ids)      # only their ids: those rows are dropped
    texts, origs = [], []
    for cid, text in _read_translation(Path(path), language):
        if cid in test or cid not in english or not _keep(language, text, english[cid]):
            continue
        texts.append(" ".join(text.split()))
        origs.append(english[cid])
    return ParallelText(f"goemotions-{language}", language, tuple(texts), tuple(origs))


def parse_specs(specs: Sequence[str]) -> Dict[str, str]:
    """``NAME=PATH`` strings (``train_reader --parallel``) -> {name: path}; names: ``tatoeba`` or
    ``goemotions-<language>``."""
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        name = name.strip()
        ok = name == "tatoeba" or (name.startswith("goemotions-") and name[len("goemotions-"):] in TATOEBA_CODES)
        if not sep or not path.strip() or not ok:
            raise InvalidInputError(f"--parallel {spec!r}: expected NAME=PATH with NAME 'tatoeba' or "
                                    f"'goemotions-<language>' (language one of {', '.join(TATOEBA_CODES)})")
        out[name] = path.strip()
    return out


def load(specs: Mapping[str, str], goemotions: Optional[str | Path] = None) -> List[ParallelText]:
    """Every corpus of ``specs`` ({name: path}, as :func:`parse_specs`)."""
    out: List[ParallelText] = []
    for name, path in sorted(specs.items()):
        if name == "tatoeba":
            out += load_tatoeba(path)
        else:
            out.append(load_goemotions_translation(path, name[len("goemotions-"):], goemotions))
    return out


__all__ = ["ParallelText", "TATOEBA_CODES", "CARDS", "load_tatoeba", "load_goemotions_translation", "parse_specs",
           "load"]
