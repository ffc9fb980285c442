"""Issue #17: ``emo3d render --texture photo`` runs without scikit-image (a test-only dependency): the
astronaut face crop ships in emo3d/avatar/data."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from emo3d.avatar import texture

BLOCK = "import sys; sys.modules['skimage'] = None\n"   # any `import skimage` now raises ImportError


def test_photo_is_shipped_and_public_domain_crop():
    im = np.asarray(Image.open(texture.PHOTO))
    assert im.shape == (256, 256, 3) and im.dtype == np.uint8 and 60 < im.mean() < 200


def test_render_photo_texture_without_scikit_image(tmp_path, face_landmarker):
    out = tmp_path / "photo.png"
    code = BLOCK + ("from emo3d.cli import main\n"
                    f"raise SystemExit(main(['render', '--texture', 'photo', '--size', '128', '--out', {str(out)!r}]))")
    env = {**os.environ, "EMO3D_FACE_LANDMARKER": str(face_landmarker)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "skimage" not in r.stderr
    img = np.asarray(Image.open(out).convert("RGB")).astype(float)
    assert img.shape == (128, 128, 3)
    skin = img[48:80, 48:80]                      # the middle of the face: photo skin, not the background
    assert skin.std() > 3 and 60 < skin.mean() < 230
