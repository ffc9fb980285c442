"""``emo3d``: the tool CLI. Each subcommand lives in the package that owns it and is imported only
when used, so ``emo3d render`` never loads torch and ``emo3d train`` never loads the renderer.

A subcommand is ``"module"`` (its ``main(argv: list[str]) -> int``) or ``"module:function"`` (that function).
The CLI is the top layer: it may wire a lower layer to a higher one (``render --text`` gets the text engine).
"""
from __future__ import annotations

import importlib
import sys
from typing import Dict, List, Optional, Tuple

# name -> (module, one-line help)
SUBCOMMANDS: Dict[str, Tuple[str, str]] = {
    "run": ("runtime.cli", "the live face: text -> 52 scores -> preview/PNG frames and streams (emo3d-run is "
                           "the same command)"),
    "data": ("emo3d.data.cli", "read the official Emo3D release, or build Emo3D-format data offline"),
    "train": ("emo3d.models.cli", "train a baseline (lm_mlp, emotion, clip_mlp, vae_clip) into a model folder"),
    "export": ("export.cli", "export a model folder to ONNX with parity checks (optionally int8)"),
    "render": ("emo3d.cli:render", "render blendshape weights (or a text) to a PNG face"),
    "export-rig": ("emo3d.avatar.gltf_export", "write the default head as .glb with its 51 ARKit morph targets"),
    "import": ("emo3d.models.official", "turn the official Emo3D checkpoints (CLIP_Baseline.pth, VAE_CLIP.pt) "
                                         "into model folders: emo3d import official CKPT... --out DIR"),
    "calibrate": ("emo3d.avatar.calibrate", "calibrate the default avatar's blendshapes against MediaPipe's "
                                            "reading of its renders"),
    "webcam": ("runtime.webcam_cli", "track a video file with the webcam path; --png plots the shapes"),
    "eval": ("eval.emo3d", "the Emo3D metric over model folders (same as python -m eval.emo3d)"),
}


def text_weights(text: str):
    """[52] weights of ``text`` from the runtime's text engine (the shipped default model)."""
    import numpy as np

    from emo3d.errors import Emo3DError, InvalidInputError
    from runtime import Engine, EngineOptions
    try:
        return np.asarray(Engine.create(EngineOptions()).predict(text).vector, np.float32)
    except (Emo3DError, ValueError, OSError) as e:
        raise InvalidInputError(f"--text: the text engine failed: {e}") from None


def render(argv: List[str]) -> int:
    """``emo3d render``: the face's renderer CLI with ``--text`` served by the runtime's engine."""
    from emo3d.avatar import cli
    return cli.main(argv, text_weights=text_weights)


def _usage() -> str:
    width = max(len(n) for n in SUBCOMMANDS)
    rows = "\n".join(f"  {n:<{width}}  {h}" for n, (_, h) in SUBCOMMANDS.items())
    return (f"usage: emo3d <command> [options]\n\ncommands:\n{rows}\n\n"
            "`emo3d <command> --help` shows a command's options; `emo3d run \"text\"` (or its alias "
            "`emo3d-run \"text\"`) runs the live face.")


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from . import __version__
        print(f"emo3d {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"emo3d: unknown command {name!r} (accepted: {', '.join(SUBCOMMANDS)})\n\n{_usage()}",
              file=sys.stderr)
        return 2
    module, _, func = SUBCOMMANDS[name][0].partition(":")
    return int(getattr(importlib.import_module(module), func or "main")(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
