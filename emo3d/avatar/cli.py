"""``emo3d render``: blendshape weights (or a text) -> a PNG face.

    emo3d render --weights '{"jawOpen": 1}' --out face.png
    emo3d render --weights weights.json --out face.png      # {name: v} or a 52/51-vector
    emo3d render --sheet --out sheet.png                    # every shape at 1.0 and the emotion faces, a neutral face per row
    emo3d render --turnaround --out turn.png                # the head from 8 sides (neutral and a smile)
    emo3d render --background 250,250,250 ...               # R,G,B behind the face (default studio grey)
    emo3d render --rig head.glb --weights ... --out f.png   # an external glTF rig
    emo3d render --text "furious scowl" --out f.png         # needs runtime.Engine
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np

from emo3d import schema
from emo3d.errors import Emo3DError, InvalidInputError
from emo3d.options import check_int
from emo3d.weights import Weights, normalize
from .framing import FRAMING_MODES
from .posing import posed_vertices, poses_bones

__all__ = ["main", "parse_weights", "parse_background", "contact_sheet", "sheet_rows", "sheet_tiles", "label_height"]


def parse_weights(spec: str) -> Weights:
    """Inline JSON ({name: v} or a list of 52/51) or a path to such a JSON file -> checked :class:`Weights`."""
    text = spec.strip()
    if not text.startswith(("{", "[")):
        p = Path(spec).expanduser()
        if not p.is_file():
            raise InvalidInputError(f"--weights: {spec!r} is neither inline JSON nor an existing file")
        text = p.read_text()
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"--weights: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); "
                                'expected {"jawOpen": 1} or a list of 52/51 numbers') from None
    if not isinstance(obj, (dict, list)):
        raise InvalidInputError(f"--weights: expected a JSON object or list, got {type(obj).__name__}")
    return normalize(obj, what="--weights")


TURNAROUND_YAWS = (0, 45, 90, 135, 180, 225, 270, 315)   # degrees, views of --turnaround
LABEL_PX = 14            # label font size of contact sheets (readable at 100 %)
STUDIO_GREY = (112, 116, 124)   # the default background of `emo3d render` (a soft studio grey, not black)


def parse_background(spec: str) -> tuple:
    """``--background R,G,B`` (0..255 each) -> a tuple of three ints."""
    parts = [p.strip() for p in str(spec).split(",")]
    if len(parts) != 3 or not all(p.lstrip("-").isdigit() for p in parts):
        raise InvalidInputError(f"--background must be three integers R,G,B (e.g. 112,116,124), got {spec!r}")
    return tuple(check_int(int(p), f"--background {c}", 0, 255) for p, c in zip(parts, "RGB"))


def label_height(lines: int = 2) -> int:
    """Pixels under each tile of :func:`contact_sheet` for ``lines`` label lines."""
    return lines * (LABEL_PX + 3) + 4


def contact_sheet(images: Sequence[np.ndarray], labels: Sequence[str], cols: int = 8) -> np.ndarray:
    """Labelled grid of same-size RGB images (up to two label lines of LABEL_PX px under each tile)."""
    from PIL import Image, ImageDraw, ImageFont
    h, w = images[0].shape[:2]
    lab_h = label_height()
    font = ImageFont.load_default(size=LABEL_PX)
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * w, rows * (h + lab_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, (im, lab) in enumerate(zip(images, labels)):
        r, c = divmod(k, cols)
        sheet.paste(Image.fromarray(np.asarray(im, np.uint8)), (c * w, r * (h + lab_h)))
        draw.multiline_text((c * w + 3, r * (h + lab_h) + h + 2), str(lab), fill=(0, 0, 0), font=font, spacing=3)
    return np.asarray(sheet)


def sheet_rows(names: Sequence[str], cols: int = 8) -> List[Optional[str]]:
    """Tile order of ``--sheet``: each row starts with the neutral face (None), then ``cols - 1`` shapes."""
    out: List[Optional[str]] = []
    for i in range(0, len(names), cols - 1):
        out += [None] + list(names[i:i + cols - 1])
    return out


def sheet_tiles(rig_names: Sequence[str], cols: int = 8) -> List[Optional[str]]:
    """Tile order of ``--sheet`` for a rig with ``rig_names``: its ARKit shapes (and tongueOut) in rows that
    each open with the neutral face, the last row padded with blanks (""), then one row per
    ``cols - 1`` emotion faces (``emo3d.facs`` prototypes of ``schema.EMOTIONS`` but neutral), also opened
    by the neutral face."""
    from emo3d.avatar.rig import EXTRA_TARGETS
    shapes = [n for n in schema.MODEL_NAMES if n in rig_names] + [n for n in EXTRA_TARGETS if n in rig_names]
    tiles = sheet_rows(shapes, cols)
    tiles += [""] * (-len(tiles) % cols)
    emotions = sheet_rows([e for e in schema.EMOTIONS if e != "neutral"], cols)
    return tiles + emotions + [""] * (-len(emotions) % cols)


def _sheet_images(rig, renderer, tiles: Sequence[Optional[str]], pose) -> np.ndarray:
    """One image per tile of :func:`sheet_tiles` (blank tiles are the background)."""
    from emo3d import facs
    from emo3d.avatar.rig import EXTRA_TARGETS
    verts, blank = [], []
    for n in tiles:
        w = np.zeros(schema.N_MEDIAPIPE, np.float32)
        extras = None
        if n in schema.MEDIAPIPE_INDEX:
            w[schema.MEDIAPIPE_INDEX[n]] = 1.0
            if n == "mouthClose" and "jawOpen" in rig.target_names:   # ARKit: lips closed over an open jaw
                w[schema.MEDIAPIPE_INDEX["jawOpen"]] = 1.0
        elif n in EXTRA_TARGETS:
            extras = {n: 1.0}
        elif n in schema.EMOTIONS:
            w = facs.prototype(n).astype(np.float32)
        blank.append(n == "")
        verts.append(rig.deform(w, extras=extras)[0])
    imgs = renderer.render_vertices(np.stack(verts), pose=pose)
    bg = np.asarray(renderer.options.background, np.uint8)
    imgs[np.asarray(blank)] = bg
    return imgs


def _save_png(img: np.ndarray, out: Path) -> None:
    from PIL import Image

    from emo3d.io import atomic_path
    with atomic_path(out) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")


def main(argv: Optional[List[str]] = None, *, text_weights: Optional[Callable[[str], np.ndarray]] = None) -> int:
    """``emo3d render``. ``text_weights`` (text -> [52]) serves ``--text``; the face sits below the text
    engine, so the CLI layer (``emo3d.cli``) passes it in."""
    ap = argparse.ArgumentParser(prog="emo3d render", description="render blendshape weights to a PNG face")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--weights", help='inline JSON ({"jawOpen": 1} or a 52/51 list) or a JSON file')
    src.add_argument("--text", help="an emotion description (uses runtime.Engine)")
    src.add_argument("--sheet", action="store_true",
                     help="every shape at 1.0 and the basic-emotion faces in a labelled grid")
    src.add_argument("--turnaround", action="store_true",
                     help="the whole head from 8 sides (yaw 0, 45, ... 315), neutral and smiling, framing the head")
    ap.add_argument("--out", required=True, help="output PNG")
    ap.add_argument("--rig", help="an external glTF 2.0 / VRM avatar (.glb/.gltf/.vrm) with ARKit-named "
                                  "morph targets (any vendor spelling) or VRM expression presets")
    ap.add_argument("--framing", default="auto", choices=FRAMING_MODES,
                    help="with --rig: what the camera frames (auto: the face when the model is a bust or a "
                         "full body, else all of it)")
    ap.add_argument("--texture", default="neutral",
                    help="default avatar texture: neutral (painted) | photo (neutralised astronaut photo)")
    ap.add_argument("--size", type=int, default=512, help="image width = height in pixels (64..2048)")
    ap.add_argument("--pose", type=float, nargs=3, default=(0.0, 0.0, 0.0), metavar=("YAW", "PITCH", "ROLL"),
                    help="head pose in DEGREES (the streams send radians)")
    ap.add_argument("--background", default=",".join(map(str, STUDIO_GREY)),
                    help="R,G,B behind the face (default: a studio grey)")
    a = ap.parse_args(argv)
    try:
        check_int(a.size, "--size", 64, 2048)
        background = parse_background(a.background)
        out = Path(a.out)
        if out.suffix.lower() != ".png":
            raise InvalidInputError(f"--out must name a .png file, got {a.out!r}")
        if a.rig:
            if not Path(a.rig).is_file():
                raise InvalidInputError(f"--rig: file {a.rig!r} does not exist")
            from .gltf import load_gltf
            with warnings.catch_warnings(record=True) as caught:   # unknown names, with close matches
                warnings.simplefilter("always")
                rig = load_gltf(a.rig, framing=a.framing)
            for w in caught:
                print(f"warning: {w.message}", file=sys.stderr)
            if rig.missing:
                print(f"rig {rig.name}: missing targets: {', '.join(rig.missing)}", file=sys.stderr)
        else:
            from .default import default_rig
            rig = default_rig(a.texture)
        from native.render import Renderer, RenderOptions
        renderer = Renderer(rig, RenderOptions(width=a.size, height=a.size, background=background))
        if a.turnaround:
            from .framing import with_framing
            turn = Renderer(with_framing(rig, "head"), RenderOptions(width=a.size, height=a.size,
                                                                   background=background))
            smile = {"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8, "cheekSquintLeft": 0.4, "cheekSquintRight": 0.4}
            views = [(w, float(y)) for w in ({}, smile) for y in TURNAROUND_YAWS]
            imgs = [turn.render(w, pose=(y, 0.0, 0.0)) for w, y in views]
            img = contact_sheet(imgs, [f"yaw {y:.0f}" + (" smile" if w else "") for w, y in views],
                                cols=len(TURNAROUND_YAWS))
        elif a.sheet:
            tiles = sheet_tiles(rig.target_names, cols=8)
            imgs = _sheet_images(rig, renderer, tiles, tuple(a.pose))
            img = contact_sheet(list(imgs), ["neutral" if n is None else n for n in tiles], cols=8)
        else:
            if a.text is not None:
                if text_weights is None:
                    raise InvalidInputError("--text needs the text engine: run `emo3d render --text ...`, "
                                            "or pass --weights")
                weights = text_weights(a.text)
            elif a.weights is not None:
                checked = parse_weights(a.weights)
                if checked.clamped:
                    print(f"warning: {checked.clamp_message()}", file=sys.stderr)
                weights = checked.vector
            else:
                weights = np.zeros(schema.N_MEDIAPIPE, np.float32)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if poses_bones(rig, tuple(a.pose)):   # eye bones turn by the gaze, a head bone by --pose
                    verts, rest = posed_vertices(rig, weights, tuple(a.pose))
                    img = renderer.render_vertices(verts, pose=rest)[0]
                else:
                    img = renderer.render(weights, pose=tuple(a.pose))
            for w in caught:
                print(f"warning: {w.message}", file=sys.stderr)
        _save_png(img, out)
    except (Emo3DError, ValueError, KeyError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"emo3d render: error: {msg}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({img.shape[1]}x{img.shape[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
