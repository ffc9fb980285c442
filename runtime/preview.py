"""Pictures of the loop: the face plus the top blendshapes as bars, in a window or as PNG/GIF.

The face comes from ``avatar.render`` (the 3D rig through ``native.render.Renderer``); where that is
unavailable (no face assets yet, import error) a flat 2D sketch face drawn from the same weights
stands in, with one log line saying so.
"""
from __future__ import annotations

import logging
import math
import re
import threading
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from emo3d import avatar
from emo3d.errors import InvalidInputError
from emo3d.options import check_int
from emo3d.pose import to_degrees
from emo3d.io import atomic_path
from emo3d.schema import MEDIAPIPE_INDEX, MEDIAPIPE_NAMES, NEUTRAL

log = logging.getLogger("emo3d.runtime")

BAR_WIDTH = 220


class FaceView:
    """Renders a face for [52] weights (+ head pose, radians) at ``size`` x ``size``.

    ``backend``: ``auto`` (3D rig via ``avatar.render`` if it works, else the sketch), ``rig`` or ``sketch``.
    """

    def __init__(self, size: int = 256, *, backend: str = "auto", rig: Any = None) -> None:
        check_int(size, "face size", 32, 4096)
        if backend not in ("auto", "rig", "sketch"):
            raise InvalidInputError(f"backend {backend!r} is not one of auto, rig, sketch")
        self.size = size
        self.rig = rig
        self.requested = backend
        self.backend = backend
        self._render = None
        if backend in ("auto", "rig"):
            self._render = avatar.render

    def render(self, weights: np.ndarray, head: Sequence[float] = (0.0, 0.0, 0.0), extras=None) -> np.ndarray:
        """``extras``: channels beyond the 52 (a frame's ``extras``, e.g. tongueOut) for rigs that have them."""
        w = np.asarray(weights, np.float32).reshape(-1)
        if self._render is not None:
            pose = to_degrees(head)
            try:
                img = np.asarray(self._render(w, size=self.size, rig=self.rig, pose=pose, extras=extras or None),
                                 dtype=np.uint8)
                self.backend = "rig"
                return img
            except Exception as e:  # assets missing on this machine: degrade, do not die
                if self.requested == "rig":
                    raise
                log.warning("3D face render failed (%s: %s); drawing the 2D sketch face", type(e).__name__, e)
                self._render = None
                self.backend = "sketch"
        return sketch_face(w, self.size, head)


def sketch_face(w: np.ndarray, size: int = 256, head: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """A flat cartoon face from [52] weights (brows, lids, gaze, mouth, jaw, cheeks); viewer faces
    the subject, so the subject's Left features are on the image's right."""
    from PIL import Image, ImageDraw
    g = lambda n: float(w[MEDIAPIPE_INDEX[n]])  # noqa: E731
    ss = 2
    S = size * ss
    img = Image.new("RGB", (S, S), (24, 26, 32))
    d = ImageDraw.Draw(img)
    yaw, pitch, roll = (float(h) for h in head)
    cx = S / 2 + math.sin(yaw) * S * 0.25
    cy = S / 2 + math.sin(pitch) * S * 0.25      # emo3d.pose's pitch; image rows grow downward
    u = S / 256.0
    jaw = g("jawOpen")
    d.ellipse([cx - 88 * u, cy - 108 * u, cx + 88 * u, cy + (104 + 22 * jaw) * u], fill=(232, 196, 168))
    for side, sx in (("Left", 1), ("Right", -1)):      # subject's left -> image right
        ex, ey = cx + sx * 36 * u, cy - 22 * u
        blink, wide, squint = g(f"eyeBlink{side}"), g(f"eyeWide{side}"), g(f"eyeSquint{side}")
        h = 12 * u * max(0.0, 1 - blink) * (1 + 0.6 * wide) * (1 - 0.45 * squint)
        d.ellipse([ex - 17 * u, ey - h, ex + 17 * u, ey + h], fill=(250, 250, 250))
        if h > 2 * u:
            gx = (g(f"eyeLookOut{side}") - g(f"eyeLookIn{side}")) * sx * 8 * u
            gy = (g(f"eyeLookDown{side}") - g(f"eyeLookUp{side}")) * 5 * u
            r = min(7 * u, h)
            d.ellipse([ex + gx - r, ey + gy - r, ex + gx + r, ey + gy + r], fill=(60, 40, 30))
        inner = g("browInnerUp") * 12 * u - g(f"browDown{side}") * 10 * u
        outer = g(f"browOuterUp{side}") * 12 * u - g(f"browDown{side}") * 4 * u
        by = ey - 24 * u
        d.line([ex - sx * 20 * u, by - inner, ex + sx * 20 * u, by - outer], fill=(70, 50, 40), width=int(5 * u))
        cheek = g(f"cheekSquint{side}") + g(f"mouthSmile{side}") * 0.5
        if cheek > 0.05:
            cxk = cx + sx * 52 * u
            d.ellipse([cxk - 14 * u, cy + 12 * u - 8 * u, cxk + 14 * u, cy + 12 * u + 8 * u],
                      fill=(int(232 - 20 * min(cheek, 1)), int(196 - 60 * min(cheek, 1)), 168))
        sneer = g(f"noseSneer{side}")
        d.line([cx + sx * 8 * u, cy + 20 * u - sneer * 4 * u, cx + sx * 14 * u, cy + 28 * u], fill=(180, 130, 110),
               width=int(3 * u))
    my = cy + 52 * u
    corners = []
    for side, sx in (("Left", 1), ("Right", -1)):
        up = g(f"mouthSmile{side}") * 14 - g(f"mouthFrown{side}") * 12 + g(f"mouthUpperUp{side}") * 2
        width = 30 + g(f"mouthStretch{side}") * 10 + g(f"mouthSmile{side}") * 6 - g("mouthPucker") * 12 - g("mouthFunnel") * 8
        shift = (g("mouthLeft") - g("mouthRight")) * 10 + (g("jawLeft") - g("jawRight")) * 6
        corners.append((cx + (sx * width + shift) * u, my - up * u))
    (lx, ly), (rx, ry) = corners[1], corners[0]          # image-left corner, image-right corner
    open_ = (jaw * 28 + (g("mouthLowerDownLeft") + g("mouthLowerDownRight")) * 4 + g("mouthFunnel") * 6) * u
    open_ *= max(0.0, 1 - g("mouthClose"))
    upper = my - (g("mouthUpperUpLeft") + g("mouthUpperUpRight")) * 3 * u - g("mouthShrugUpper") * 3 * u
    lower = my + open_ + g("mouthShrugLower") * -3 * u
    if open_ > 2 * u:
        d.polygon([(lx, ly), ((lx + rx) / 2, upper), (rx, ry), ((lx + rx) / 2, lower)], fill=(110, 30, 40))
    d.line([(lx, ly), ((lx + rx) / 2, upper), (rx, ry)], fill=(150, 60, 60), width=int(4 * u))
    d.line([(lx, ly), ((lx + rx) / 2, lower), (rx, ry)], fill=(150, 60, 60), width=int(4 * u))
    img = img.reduce(ss)
    if abs(roll) > 1e-3:
        img = img.rotate(math.degrees(roll), resample=Image.BILINEAR, center=(cx / ss, cy / ss),
                         fillcolor=(24, 26, 32))
    return np.asarray(img, dtype=np.uint8)


def top_blendshapes(weights: np.ndarray, k: int = 8) -> List[Tuple[str, float]]:
    """The ``k`` largest shapes as (name, value), ``_neutral`` excluded."""
    w = np.asarray(weights, np.float32).reshape(-1)
    order = [i for i in np.argsort(-w, kind="stable") if MEDIAPIPE_NAMES[i] != NEUTRAL]
    return [(MEDIAPIPE_NAMES[i], float(w[i])) for i in order[:k]]


def compose(face: np.ndarray, weights: np.ndarray, *, text: Optional[str] = None, top_k: int = 8) -> np.ndarray:
    """The face with a panel of the top blendshapes as bars on its right; uint8 [H, W + 220, 3]."""
    from PIL import Image, ImageDraw, ImageFont
    face = np.asarray(face, np.uint8)
    h, wd = face.shape[:2]
    img = Image.new("RGB", (wd + BAR_WIDTH, h), (16, 16, 20))
    img.paste(Image.fromarray(face), (0, 0))
    d = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1: bitmap font only
        font = ImageFont.load_default()
    y = 6
    if text:
        d.text((wd + 8, y), text[:34], fill=(240, 240, 240), font=font)
        y += 18
    row = max(12, min(22, (h - y - 4) // max(1, top_k)))
    for name, v in top_blendshapes(weights, top_k):
        d.text((wd + 8, y), name[:22], fill=(200, 200, 210), font=font)
        d.text((wd + BAR_WIDTH - 40, y), f"{v:.2f}", fill=(200, 200, 210), font=font)
        d.rectangle([wd + 8, y + row - 6, wd + 8 + int((BAR_WIDTH - 16) * max(0.0, min(1.0, v))), y + row - 3],
                    fill=(90, 170, 250))
        y += row
        if y > h - row:
            break
    return np.asarray(img, dtype=np.uint8)


def slug(text: str, n: int = 40) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return s[:n] or "prompt"


def gif_frames(images: Sequence[np.ndarray], colors: int = 255) -> list:
    """RGB frames -> palette images sharing ONE palette (median cut over a mosaic of up to 16 frames),
    each dithered (Floyd-Steinberg): smooth skin shading without bands, no palette flicker between frames."""
    from PIL import Image
    step = max(1, len(images) // 16)
    sample = [np.asarray(im, np.uint8) for im in images[::step]]
    mosaic = Image.fromarray(np.concatenate(sample, axis=0))
    palette = mosaic.quantize(colors, method=Image.Quantize.MEDIANCUT)
    return [Image.fromarray(np.asarray(im, np.uint8)).quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
            for im in images]


def write_clip(images: Sequence[np.ndarray], out_dir: str | Path, name: str, *, fps: float = 60.0,
               gif_fps: float = 30.0) -> Tuple[Path, Path]:
    """Write ``images`` as ``out_dir/name/frame_0000.png``... and ``out_dir/name.gif`` (atomic files)."""
    from PIL import Image
    if not images:
        raise InvalidInputError("write_clip: no frames to write")
    out_dir = Path(out_dir)
    frames_dir = out_dir / name
    frames_dir.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        with atomic_path(frames_dir / f"frame_{i:04d}.png") as tmp:
            Image.fromarray(np.asarray(im, np.uint8)).save(tmp, format="PNG", compress_level=1)
    stride = max(1, int(round(fps / gif_fps)))
    picked = list(images[::stride]) + ([images[-1]] if (len(images) - 1) % stride else [])
    sub = gif_frames(picked)
    gif = out_dir / f"{name}.gif"
    with atomic_path(gif) as tmp:
        sub[0].save(tmp, format="GIF", save_all=True, append_images=sub[1:],
                    duration=int(round(1000 * stride / fps)), loop=0)
    return frames_dir, gif


class Recorder:
    """A loop sink that captures frames for a while: ``done = rec.record(seconds)``; ``done.wait()``;
    ``rec.frames`` then holds them (the loop's own frames, rendered later by the caller)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: list = []
        self._until: Optional[float] = None
        self._start: Optional[float] = None
        self._done = threading.Event()
        self._done.set()

    def record(self, seconds: float) -> threading.Event:
        with self._lock:
            self._frames = []
            self._start, self._until = None, float(seconds)
            self._done = threading.Event()
            return self._done

    @property
    def frames(self) -> list:
        with self._lock:
            return list(self._frames)

    def send(self, frame) -> None:
        with self._lock:
            if self._until is None:
                return
            if self._start is None:
                self._start = frame.t
            self._frames.append(frame)
            if frame.t - self._start >= self._until:
                self._until = None
                self._done.set()

    def close(self) -> None:
        with self._lock:
            self._until = None
            self._done.set()


class PreviewWindow:
    """An OpenCV window showing the face and its top blendshapes; ``show`` returns the key pressed."""

    def __init__(self, title: str = "emo3d", size: int = 256, *, face: Optional[FaceView] = None) -> None:
        import cv2
        self._cv2 = cv2
        self.title = title
        self.face = face or FaceView(size)
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)

    def show(self, frame, top_k: int = 8) -> int:
        img = compose(self.face.render(frame.weights, frame.head, frame.extras), frame.weights, text=frame.text,
                      top_k=top_k)
        self._cv2.imshow(self.title, img[:, :, ::-1])
        return self._cv2.waitKey(1) & 0xFF

    @property
    def closed(self) -> bool:
        try:
            return self._cv2.getWindowProperty(self.title, self._cv2.WND_PROP_VISIBLE) < 1
        except Exception:
            return True

    def close(self) -> None:
        try:
            self._cv2.destroyWindow(self.title)
        except Exception:
            pass
