"""A tiny reader folder and a deterministic spelling encoder for the text reader's tests (no training, no
torch, no encoder download)."""
import zlib

import numpy as np

from emo3d.schema import EMOTIONS


class Spelling:
    """A tiny deterministic encoder: character trigram counts hashed into 64 dims."""
    dim = 64

    def __call__(self, texts):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            s = f"  {t.lower()}  "
            for a in range(len(s) - 2):
                out[i, zlib.crc32(s[a:a + 3].encode()) % self.dim] += 1.0
        return out


def tiny_reader(folder, dim: int, seed: int = 1):
    """A reader folder with a random one-layer head over ``dim``-d embeddings (no training, no torch)."""
    from safetensors.numpy import save_file
    from emo3d.manifest import ModelManifest
    from emo3d.models.e5 import BACKBONE_NAME
    from emo3d.schema import N_MODEL
    rng = np.random.default_rng(seed)
    n = len(EMOTIONS)
    folder.mkdir(parents=True)
    save_file({"extractor.0.weight": rng.normal(0, 0.3, (n, dim)).astype(np.float32),
               "extractor.0.bias": np.zeros(n, np.float32),
               "regressor.0.weight": rng.normal(0, 0.3, (N_MODEL, dim + 2 * n)).astype(np.float32),
               "regressor.0.bias": np.zeros(N_MODEL, np.float32)}, str(folder / "head.safetensors"))
    ModelManifest(kind="emotion", backbone={"name": BACKBONE_NAME}, files={"head": "head.safetensors"}).save(folder)
    return folder
