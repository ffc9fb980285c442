"""--rig and --framing in `emo3d render`, on a full-body avatar built in-test."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from support.glb import face_rig
from support.rigs import body_rig, skin_share


@pytest.fixture(scope="module")
def body_glb(tmp_path_factory):
    return body_rig(tmp_path_factory.mktemp("rig") / "avatar.glb")


def test_render_rig_with_framing(body_glb, tmp_path, capsys):
    from emo3d.avatar.cli import main
    shares = {}
    for mode in ("auto", "face", "head", "full"):
        out = tmp_path / f"{mode}.png"
        rc = main(["--rig", str(body_glb), "--framing", mode, "--weights", '{"Jaw_Open": 1}', "--out", str(out),
                   "--size", "96"])
        assert rc == 0, capsys.readouterr().err
        shares[mode] = skin_share(np.asarray(Image.open(out)))
    assert shares["auto"] >= 0.3 and shares["face"] >= 0.3        # the default frames the face
    assert shares["full"] < 0.1 < shares["head"]                   # a full shot of a tall body
    with pytest.raises(SystemExit):                                  # argparse: not one of the choices
        main(["--rig", str(body_glb), "--framing", "torso", "--out", str(tmp_path / "x.png")])
    assert "invalid choice: 'torso'" in capsys.readouterr().err


def test_render_rig_reports_unknown_names_with_close_matches(tmp_path, capsys):
    from emo3d.avatar.cli import main
    p = face_rig(tmp_path / "u.glb", names={"jawOpen": "jawOpn"})
    rc = main(["--rig", str(p), "--out", str(tmp_path / "u.png"), "--size", "64"])
    err = capsys.readouterr().err
    assert rc == 0 and "jawOpn" in err and "close: jawOpen" in err


def test_render_rig_draco_is_a_clear_error(tmp_path, capsys):
    from emo3d.avatar.cli import main
    p = face_rig(tmp_path / "d.glb", extra_required=["KHR_draco_mesh_compression"])
    rc = main(["--rig", str(p), "--out", str(tmp_path / "d.png"), "--size", "64"])
    err = capsys.readouterr().err
    assert rc == 2 and "KHR_draco_mesh_compression" in err and not (tmp_path / "d.png").exists()
