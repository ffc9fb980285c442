"""``emo3d train --model NAME --data DIR --out DIR [--backbone ...]``."""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from emo3d.errors import Emo3DError

KIND_HELP = "lm_mlp (LM+MLP), emotion (Emotion-XLM), clip_mlp (CLIP+MLP), vae_clip (VAE-CLIP)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emo3d train", description="Train a baseline of the Emo3D paper into a "
                                "model folder (manifest.json + head.safetensors + head.onnx).")
    p.add_argument("--model", required=True, help=KIND_HELP)
    p.add_argument("--data", required=True, help="Emo3D release folder (official layout, data/*.csv)")
    p.add_argument("--out", required=True, help="output model folder (replaced atomically)")
    p.add_argument("--backbone", default=None,
                   help="hub id, local folder, or 'packaged' (offline all-MiniLM-L6-v2). Default: the paper's "
                        "(bert-base-uncased for lm_mlp, cis-lmu/glot500-base for emotion, "
                        "openai/clip-vit-base-patch32 for CLIP kinds)")
    p.add_argument("--target", choices=("scores", "prior"), default="scores",
                   help="regress the release's blendshape scores or the FACS prior column (offline builds)")
    p.add_argument("--preset", choices=("ours", "paper"), default="ours",
                   help="ours: AdamW lr 1e-3 batch 64, <=200 epochs, early stop (patience 15); paper: the official "
                        "notebooks (clip_mlp: Adam lr 1e-4; vae_clip: Adam lr 1e-3, lambda 0.004/0.002; batch 32, "
                        "50 epochs, best on validation). Explicit flags below win over the preset")
    p.add_argument("--vae-loss", choices=("paper", "official"), default="paper",
                   help="vae_clip: paper = eq. 2-4 (per-row cosine; text and image rows separately); official = "
                        "the notebook (cosine over the batch axis, on (text, image, scores) triples)")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (preset: 200 ours, 50 paper)")
    p.add_argument("--patience", type=int, default=None,
                   help="epochs without val improvement before stopping (preset: 15 ours; paper: no early stop)")
    p.add_argument("--batch-size", type=int, default=None, help="(preset: 64 ours, 32 paper)")
    p.add_argument("--lr", type=float, default=None, help="head learning rate (preset: 1e-3; paper clip_mlp 1e-4)")
    p.add_argument("--encoder-lr", type=float, default=2e-5, help="encoder learning rate (--finetune)")
    p.add_argument("--hidden", default="256", help="head hidden widths, comma separated (LM kinds)")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--finetune", action="store_true", help="train the encoder too (default: frozen, cached)")
    p.add_argument("--no-mirror", action="store_true", help="no left/right mirror augmentation")
    p.add_argument("--no-images", action="store_true", help="CLIP kinds: text embeddings only")
    p.add_argument("--short-prompts", type=float, default=0.0,
                   help="extra short lexicon prompts per training row (e.g. 1.0; helps terse prompts)")
    p.add_argument("--emolex-prompts", type=float, default=0.0,
                   help="extra short prompts per NRC EmoLex word (nrclex package) plus calm/contempt words, "
                        "FACS-prior targets (e.g. 1.5; broadens everyday vocabulary; 0: off). Key words of "
                        "the OOV evaluation prompts are excluded")
    p.add_argument("--anchors", action="store_true",
                   help="lm_mlp/emotion: add emotion-word anchor similarities (dataset lexicon) as features")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes embedding the texts (frozen encoder; default 1: this process)")
    p.add_argument("--ray", default=None, metavar="auto|ADDRESS", help="embed the texts as Ray tasks")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from .presets import preset_values
    from .train import TrainOptions, canonical_kind, train
    try:
        hidden = tuple(int(h) for h in str(args.hidden).split(",") if h.strip())
    except ValueError:
        print(f"emo3d train: --hidden must be comma-separated integers, got {args.hidden!r}", file=sys.stderr)
        return 2
    try:
        given = {k: v for k, v in (("epochs", args.epochs), ("patience", args.patience),
                                   ("batch_size", args.batch_size), ("lr", args.lr)) if v is not None}
        values = {**preset_values(args.preset, canonical_kind(args.model)), **given}
        opts = TrainOptions(model=args.model, data=args.data, out=args.out, backbone=args.backbone,
                            target=args.target, **values, preset=args.preset, vae_loss=args.vae_loss,
                            encoder_lr=args.encoder_lr, hidden=hidden,
                            dropout=args.dropout, finetune=args.finetune, mirror=not args.no_mirror,
                            use_images=not args.no_images, seed=args.seed, anchors=args.anchors,
                            short_prompts=args.short_prompts, emolex_prompts=args.emolex_prompts,
                            threads=args.threads, max_steps=args.max_steps, workers=args.workers, ray=args.ray,
                            progress=not args.quiet)
        result = train(opts)
    except (Emo3DError, ValueError, FileNotFoundError) as e:
        print(f"emo3d train: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"out": str(result.out), "kind": result.manifest.kind,
                      "backbone": result.manifest.backbone["name"], **result.metrics}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
