"""Numbers of the shipped offline default (or any model folder): ``python -m emo3d.models.evaluate_default``.

* held-out split: MSE, and the share of prompts whose predicted face is closest (L2) to the FACS
  prototype (``emo3d.facs.prototype``, intensity 1) of the prompt's dominant emotion; the same share
  for the ground-truth targets is printed as the reference (``oracle``);
* 40 hand-written everyday prompts whose key words never occur in the training texts: the same share;
* paraphrases: distances within an emotion's paraphrases vs. across emotions;
* intensity words: "a hint of" / "slightly" < plain < "extremely" in expression magnitude (L2
  distance from the prediction for a neutral face).

``--write`` stores the numbers in the folder's ``manifest.json`` ``metrics`` and writes ``eval.png``.
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
from emo3d.schema import EMOTIONS, MEDIAPIPE_NAMES, MODEL_NAMES

from .probes import (INTENSITY_TEMPLATES, INTENSITY_WORDS, NEUTRAL_REFERENCE, OOV_PROMPTS, PARAPHRASES,
                     _article)

DEFAULT_DATA = "/work/data/offline-5k"
_MODEL_COLS = np.array([MEDIAPIPE_NAMES.index(n) for n in MODEL_NAMES])

@dataclass
class EvalOptions:
    model_dir: Optional[str] = None      # default: models/default
    data: Optional[str] = DEFAULT_DATA   # release for the held-out split and the training vocabulary
    split: str = "test"
    write: bool = False
    png: Optional[str] = None
    progress: bool = True

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

    def metrics(self) -> Dict[str, Any]:
        """Flat numbers for ``manifest.metrics``."""
        m = {f"heldout_{k}": v for k, v in self.heldout.items() if not isinstance(v, (list, dict))}
        m.update({f"oov_{k}": v for k, v in self.oov.items() if not isinstance(v, (list, dict))})
        m.update({f"paraphrase_{k}": v for k, v in self.paraphrase.items() if not isinstance(v, (list, dict))})
        m.update({f"intensity_{k}": v for k, v in self.intensity.items() if not isinstance(v, (list, dict))})
        return m


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


def prototypes() -> Tuple[np.ndarray, List[str]]:
    """[K,51] prototypes at intensity 1 and their emotion labels (contempt on either side)."""
    from emo3d import facs
    vecs, labels = [], []
    for e in EMOTIONS:
        sides = ("R", "L") if e == "contempt" else ("R",)
        for side in sides:
            vecs.append(facs.prototype(e, 1.0, side=side)[_MODEL_COLS])
            labels.append(e)
    return np.array(vecs, np.float32), labels


def nearest_emotion(pred: np.ndarray) -> List[str]:
    P, labels = prototypes()
    d = ((pred[:, None, :] - P[None]) ** 2).sum(-1)
    return [labels[i] for i in d.argmin(1)]


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


def evaluate(opts: EvalOptions) -> EvalReport:
    from . import DEFAULT_DIR
    folder = Path(opts.model_dir) if opts.model_dir else DEFAULT_DIR
    predict = Predictor(folder, progress=opts.progress)
    rep = EvalReport(model=str(folder), kind=predict.manifest.kind)

    vocab: Optional[set] = None
    if opts.data:
        from emo3d import data as dataset
        release = dataset.read_release(opts.data)
        vocab = train_vocabulary(release)
        options = predict.manifest.extra.get("options", {})
        if float(options.get("short_prompts", 0) or 0) > 0 or options.get("anchors"):
            from emo3d.data import lexicon
            from .prompts import SHORT_TEMPLATES
            for e in EMOTIONS:      # lexicon words it trained on count as training texts
                for adj in lexicon.adjectives(e):
                    for t in SHORT_TEMPLATES:
                        vocab.update(re.findall(r"[a-z][a-z'\-]*", t.format(adj=adj).lower()))
        if float(options.get("emolex_prompts", 0) or 0) > 0:
            from .prompts import emolex_texts
            for t in emolex_texts():    # EmoLex prompts it trained on count as training texts too
                vocab.update(re.findall(r"[a-z][a-z'\-]*", t.lower()))
        pairs = dataset.text_pairs(release.split(opts.split), target="scores")
        tgt = np.asarray(pairs.targets, np.float32)[:, _MODEL_COLS]
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
    if vocab is not None:
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

    itexts = [NEUTRAL_REFERENCE]
    for _, adj, noun in INTENSITY_WORDS:
        itexts += [_article(t.format(adj=adj, noun=noun)) for _, t in INTENSITY_TEMPLATES]
    ip = predict(itexts)
    mag = np.linalg.norm(ip[1:] - ip[0], axis=1).reshape(len(INTENSITY_WORDS), len(INTENSITY_TEMPLATES))
    names = [n for n, _ in INTENSITY_TEMPLATES]
    col = {n: mag[:, i] for i, n in enumerate(names)}
    checks = {"hint_lt_plain": col["a_hint_of"] < col["plain"], "slightly_lt_plain": col["slightly"] < col["plain"],
              "plain_lt_extremely": col["plain"] < col["extremely"]}
    rep.intensity = {"n_words": len(INTENSITY_WORDS), **{k: float(v.mean()) for k, v in checks.items()},
                     "all_ordered_share": float(np.mean(np.all(np.stack(list(checks.values())), 0))),
                     "mean_magnitude": {n: float(col[n].mean()) for n in names},
                     "magnitude_table": {adj: {n: round(float(mag[i, j]), 4) for j, n in enumerate(names)}
                                         for i, (_, adj, _) in enumerate(INTENSITY_WORDS)},
                     "mean_magnitude_" + "_".join(names): [round(float(col[n].mean()), 4) for n in names]}
    if opts.write:
        from emo3d.manifest import ModelManifest
        manifest = ModelManifest.load(folder)
        manifest.metrics.update(rep.metrics())
        manifest.extra["evaluation"] = {"oov_predicted": rep.oov["predicted"],
                                        "oov_per_emotion": rep.oov["per_emotion"],
                                        "intensity_magnitudes": rep.intensity["magnitude_table"],
                                        "command": "python -m emo3d.models.evaluate_default --write"}
        manifest.save(folder)
    png = opts.png or (str(folder / "eval.png") if opts.write else None)
    if png:
        plot_report(rep, png, pred, truth)
    return rep


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
              f"intensity ordered (all 3 checks) {rep.intensity['all_ordered_share']:.2f}"]
    ax[2].text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return Path(path)


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
    out.append(f"intensity ({i['n_words']} words): hint<plain {i['hint_lt_plain']:.2f}, slightly<plain "
               f"{i['slightly_lt_plain']:.2f}, plain<extremely {i['plain_lt_extremely']:.2f}, all "
               f"{i['all_ordered_share']:.2f}; mean magnitude " +
               ", ".join(f"{k}={v:.3f}" for k, v in i["mean_magnitude"].items()))
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emo3d.models.evaluate_default", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model folder (default: models/default)")
    ap.add_argument("--data", default=DEFAULT_DATA, help="release folder for the held-out split ('' to skip)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--write", action="store_true", help="store the numbers in the folder's manifest + eval.png")
    ap.add_argument("--png", default=None, help="also write the summary picture here")
    ap.add_argument("--json", action="store_true", help="print the full report as JSON")
    args = ap.parse_args(argv)
    data = args.data or None
    if data and not Path(data).exists():
        print(f"note: {data} not found; skipping the held-out split (pass --data DIR)", file=sys.stderr)
        data = None
    rep = evaluate(EvalOptions(model_dir=args.model, data=data, split=args.split, write=args.write, png=args.png))
    print(json.dumps(asdict(rep), indent=2) if args.json else format_report(rep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
