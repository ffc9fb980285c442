"""``emo3d export MODEL_DIR --out DIR [--int8]``, ``emo3d export --default [--int8]`` and
``emo3d export --clip CLIP_DIR --out DIR``."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from emo3d.errors import Emo3DError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="emo3d export",
        description="Export a trained model folder to ONE fused ONNX graph (text -> 51 scores [+ emotions]) "
                    "with a parity check against PyTorch (batch 1/3/8, sequence 4..64, atol 1e-4). "
                    "`--default` builds the shipped default without torch.")
    p.add_argument("model_dir", nargs="?", type=Path, help="model folder (manifest.json + head weights)")
    p.add_argument("--out", type=Path, help="output folder (may equal MODEL_DIR to add the ONNX files to it)")
    p.add_argument("--int8", action="store_true",
                   help="also write dynamic per-channel int8 (kept only where score MAE vs fp32 <= 0.01)")
    p.add_argument("--default", action="store_true",
                   help="build (or find in the cache) the runtime folder of the shipped default; prints its path")
    p.add_argument("--rebuild", action="store_true", help="with --default: ignore the cache")
    p.add_argument("--clip", type=Path, metavar="CLIP_DIR",
                   help="export a local CLIP folder's text and image towers (for the Emo3D metric) to --out")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="emo3d export: %(message)s")
    try:
        if args.default:
            if args.model_dir is not None:
                print("emo3d export: --default takes no MODEL_DIR", file=sys.stderr)
                return 2
            from .default_model import ensure_default_model
            folder = ensure_default_model(int8=args.int8, rebuild=args.rebuild)
            print(folder)
            return 0
        if args.clip is not None:
            if args.out is None:
                print("emo3d export: --clip needs --out DIR", file=sys.stderr)
                return 2
            from .clip_export import export_clip_folder
            print(export_clip_folder(args.clip, args.out).summary())
            return 0
        if args.model_dir is None or args.out is None:
            print("emo3d export: needs MODEL_DIR and --out DIR (or --default)", file=sys.stderr)
            return 2
        from .torch_export import export_model
        report = export_model(args.model_dir, args.out, int8=args.int8)
        print(report.summary())
        return 0
    except Emo3DError as e:
        print(f"emo3d export: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
