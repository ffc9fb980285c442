"""Render every test rig of tests/support/glb.py (and the ICT-FaceKit rig when ../shared has it):
neutral + three expressions, default framing, one strip per rig in docs/rigs/.

    python scripts/render_test_rigs.py [--out docs/rigs] [--size 192]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.glb import face_rig  # noqa: E402
from support.rigs import TEST_RIGS, EXPRESSIONS  # noqa: E402

from emo3d.avatar.gltf import load_gltf  # noqa: E402
from native.render import Renderer, RenderOptions  # noqa: E402


def strip(rig, size: int) -> np.ndarray:
    r = Renderer(rig, RenderOptions(width=size, height=size, background=(24, 24, 28)))
    frames = [r.render({})] + [r.render(w) for w in EXPRESSIONS.values()]
    return np.concatenate(frames, axis=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "rigs"))
    ap.add_argument("--size", type=int, default=192)
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jobs = [(name, face_rig(Path(tmp) / f"{name}.glb", **kw)) for name, kw in TEST_RIGS.items()]
        ict = Path(os.environ.get("EMO3D_SHARED", ROOT.parent / "shared")) / "rigs" / "ict_facekit_arkit.glb"
        if ict.is_file():
            jobs.append(("ict_facekit", ict))
        for name, path in jobs:
            img = strip(load_gltf(path), a.size)
            Image.fromarray(img).save(out / f"{name}.png")
            print(f"{out / name}.png  ({', '.join(['neutral'] + list(EXPRESSIONS))})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
