"""Text embedding on worker processes: the same embeddings as one process, cached the same way."""
import numpy as np
import pytest

from emo3d.errors import InvalidInputError
from emo3d.models.backbones import resolve_backbone
from emo3d.models.embeddings import embed_texts
from emo3d.models.encoders import load_encoder
from emo3d.models.train import TrainOptions
from emo3d.parallel import ParallelOptions
from support.tiny_clip import WORDS, make_tiny_clip_folder


def test_worker_embeddings_match_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("EMO3D_CACHE", str(tmp_path / "cache"))
    spec = resolve_backbone(str(make_tiny_clip_folder(tmp_path / "clip", projection_dim=16)))
    encoder, tokenizer = load_encoder(spec)
    texts = [f"{a} {b} face" for a in WORDS for b in WORDS[:5]]          # 70 distinct texts
    one = embed_texts(encoder, tokenizer, texts, spec, batch=8, progress=False, cache=False)
    two = embed_texts(encoder, tokenizer, texts, spec, batch=8, progress=False, cache=False,
                      parallel=ParallelOptions(workers=2))
    assert one.shape == (70, 16)
    np.testing.assert_allclose(one.numpy(), two.numpy(), atol=1e-5)
    cached = embed_texts(encoder, tokenizer, texts, spec, batch=8, progress=False, cache=True,
                         parallel=ParallelOptions(workers=2))
    np.testing.assert_allclose(cached.numpy(), one.numpy(), atol=1e-5)
    again = embed_texts(None, tokenizer, texts, spec, batch=8, progress=False, cache=True)   # all from the cache
    np.testing.assert_array_equal(again.numpy(), cached.numpy())
    with pytest.raises(InvalidInputError):
        TrainOptions(workers=0)
