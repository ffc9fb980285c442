"""emo3d-run --rig / --framing: the headless frames show the user's own avatar, framed on its face."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from support.rigs import body_rig, skin_share
from support.tiny import make_tiny_model


@pytest.fixture(scope="module")
def body_glb(tmp_path_factory):
    return body_rig(tmp_path_factory.mktemp("rig") / "avatar.glb")


def test_emo3d_run_headless_drives_the_rig(body_glb, tmp_path, monkeypatch, capsys):
    from runtime import cli
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    model = make_tiny_model(tmp_path / "model")
    out = tmp_path / "out"
    rc = cli.main(["--headless", "--model", str(model), "--rig", str(body_glb), "--out", str(out),
                   "--transition-ms", "200", "--hold-ms", "50", "--size", "96", "--no-idle", "-q", "furious scowl"])
    assert rc == 0, capsys.readouterr().err
    pngs = sorted((out / "000_furious_scowl").glob("frame_*.png"))
    assert pngs
    face = np.asarray(Image.open(pngs[-1]))[:, :96]          # the face; the bars panel is on its right
    assert skin_share(face) >= 0.3                                # the avatar's face, framed (not the default head)
    assert ((face[..., 2] > face[..., 0] + 60).sum()) >= 2   # its painted blue irises show


def test_emo3d_run_bad_rig_is_exit_2(tmp_path, capsys):
    from runtime import cli
    model = make_tiny_model(tmp_path / "model")
    rc = cli.main(["--headless", "--model", str(model), "--rig", str(tmp_path / "missing.glb"), "hi"])
    assert rc == 2 and "--rig" in capsys.readouterr().err
