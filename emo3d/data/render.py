"""The image step of the offline builder: render the default avatar with given weights, save a JPEG
atomically and label it with MediaPipe FaceLandmarker's 52 scores read from the saved file (as the
paper labelled its DALL-E images).

Uses ``emo3d.avatar.default.default_rig`` + ``native.render.Renderer`` + ``emo3d.avatar.scorer.FaceScorer``.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from emo3d.avatar.default import default_rig
from emo3d.avatar.scorer import FaceScorer
from emo3d.avatar.texture import TEXTURES
from emo3d.errors import AssetError
from emo3d.io import atomic_write_bytes
from native.render import RenderOptions, Renderer

__all__ = ["Imager", "available_textures"]


def available_textures() -> tuple:
    """Texture identities of the default avatar ("neutral", "photo" ...)."""
    return tuple(TEXTURES)


class Imager:
    """Render + save + score. ``render_and_score(weights52, path, pose=, light_dir=, texture=)``."""

    def __init__(self, size: int = 256, *, quality: int = 92, ssaa: int = 2, threads: int = 0):
        self.size = int(size)
        self.ssaa, self.threads = int(ssaa), int(threads)
        self.quality = int(quality)
        self._renderers: Dict[str, object] = {}
        try:
            self._scorer = FaceScorer("image")
        except AssetError as exc:
            raise AssetError(f"the image step needs MediaPipe's FaceLandmarker: {exc}; "
                             "build with --no-images instead") from exc

    def _renderer(self, texture: str):
        r = self._renderers.get(texture)
        if r is None:
            rig = default_rig(texture)
            r = Renderer(rig, RenderOptions(width=self.size, height=self.size, ssaa=self.ssaa,
                                             threads=self.threads))
            self._renderers[texture] = r
        return r

    def add_identity(self, name: str, rig) -> None:
        """Make another head (an ``avatar.rig.Rig``) renderable as ``texture=name``."""
        self._renderers[name] = Renderer(rig, RenderOptions(width=self.size, height=self.size, ssaa=self.ssaa,
                                                            threads=self.threads))

    def render(self, weights, *, pose=(0.0, 0.0, 0.0), light_dir=None, texture: str = "neutral") -> np.ndarray:
        """uint8 [H,W,3] of the default avatar (texture identity ``texture``) with ``weights``."""
        w = np.clip(np.asarray(weights, dtype=np.float32), 0.0, 1.0)
        return self._renderer(texture).render(w, pose=tuple(pose), light_dir=light_dir)

    def render_and_score(self, weights, path, *, pose=(0.0, 0.0, 0.0), light_dir=None,
                         texture: str = "neutral") -> Optional[np.ndarray]:
        """Render, write ``path`` (JPEG, atomically) and return FaceLandmarker's [52] scores of the
        saved image (None when MediaPipe finds no face)."""
        from PIL import Image
        rgb = self.render(weights, pose=pose, light_dir=light_dir, texture=texture)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=self.quality)
        data = buf.getvalue()
        atomic_write_bytes(Path(path), data)
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        return self._scorer.scores(decoded)

    def close(self) -> None:
        if self._scorer is not None:
            self._scorer.close()
            self._scorer = None
