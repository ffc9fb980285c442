"""``emo3d render`` (avatar.cli): good inputs write PNGs; every bad input is a clear error."""
from __future__ import annotations

import json

import numpy as np
import pytest

from emo3d import schema
from emo3d.errors import InvalidInputError


@pytest.fixture(scope="module", autouse=True)
def _bundle(face_landmarker):
    """Every test here renders the default head: skip the module without the bundle."""


def _run(capsys, *argv):
    from emo3d.avatar.cli import main
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_inline_json_and_file(tmp_path, capsys):
    from PIL import Image
    out = tmp_path / "a.png"
    rc, so, se = _run(capsys, "--weights", '{"jawOpen": 1, "EyeBlink_L": 0.5}', "--out", str(out), "--size", "96")
    assert rc == 0, se
    assert Image.open(out).size == (96, 96)
    wf = tmp_path / "w.json"
    wf.write_text(json.dumps([0.0] * 51))
    rc, so, se = _run(capsys, "--weights", str(wf), "--out", str(tmp_path / "b.png"), "--size", "64")
    assert rc == 0, se
    a = np.asarray(Image.open(out))
    assert a.mean() > 5


def test_nan_is_an_error(tmp_path, capsys):
    out = tmp_path / "n.png"
    rc, _, se = _run(capsys, "--weights", '{"jawOpen": NaN}', "--out", str(out), "--size", "64")
    assert rc == 2 and "NaN" in se and not out.exists()
    rc, _, se = _run(capsys, "--weights", json.dumps([0.0] * 51).replace("0.0]", "Infinity]"),
                     "--out", str(out), "--size", "64")
    assert rc == 2 and "NaN or inf" in se and not out.exists()
    from emo3d.avatar.cli import parse_weights
    with pytest.raises(InvalidInputError):
        parse_weights('{"jawOpen": NaN}')


def test_unknown_name_lists_close_matches(tmp_path, capsys):
    rc, _, se = _run(capsys, "--weights", '{"jawOpn": 1}', "--out", str(tmp_path / "u.png"), "--size", "64")
    assert rc == 2 and "jawOpen" in se and "jawOpn" in se
    assert not (tmp_path / "u.png").exists()


def test_out_of_range_is_clamped_and_reported(tmp_path, capsys):
    from PIL import Image
    rc, _, se = _run(capsys, "--weights", '{"jawOpen": 1.7, "mouthSmileLeft": -0.5}', "--out",
                     str(tmp_path / "c.png"), "--size", "64")
    assert rc == 0 and "clamped" in se and "jawOpen" in se
    rc, _, _ = _run(capsys, "--weights", '{"jawOpen": 1.0}', "--out", str(tmp_path / "d.png"), "--size", "64")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c.png")), np.asarray(Image.open(tmp_path / "d.png")))


def test_missing_files_and_bad_shapes(tmp_path, capsys):
    rc, _, se = _run(capsys, "--weights", str(tmp_path / "absent.json"), "--out", str(tmp_path / "x.png"))
    assert rc == 2 and "neither inline JSON nor an existing file" in se
    rc, _, se = _run(capsys, "--rig", str(tmp_path / "absent.glb"), "--out", str(tmp_path / "x.png"))
    assert rc == 2 and "does not exist" in se
    rc, _, se = _run(capsys, "--weights", "[1, 2, 3]", "--out", str(tmp_path / "x.png"))
    assert rc == 2 and "52" in se
    rc, _, se = _run(capsys, "--weights", '{"jawOpen": "wide"}', "--out", str(tmp_path / "x.png"))
    assert rc == 2 and "number" in se
    rc, _, se = _run(capsys, "--weights", "{", "--out", str(tmp_path / "x.png"))
    assert rc == 2 and "not valid JSON" in se
    rc, _, se = _run(capsys, "--out", str(tmp_path / "x.jpg"))
    assert rc == 2 and ".png" in se
    rc, _, se = _run(capsys, "--size", "5", "--out", str(tmp_path / "x.png"))
    assert rc == 2 and "--size" in se
    assert not (tmp_path / "x.png").exists()


def test_sheet_and_text(tmp_path, capsys):
    from PIL import Image
    rc, _, se = _run(capsys, "--sheet", "--out", str(tmp_path / "s.png"), "--size", "64")
    assert rc == 0, se
    from emo3d.avatar.cli import LABEL_PX, label_height, sheet_rows, sheet_tiles
    w, h = Image.open(tmp_path / "s.png").size
    tiles = sheet_rows(list(schema.MODEL_NAMES))
    assert len(tiles) == 8 * 8 - 5 and tiles[::8] == [None] * 8     # a neutral face opens each of the 8 rows
    assert sorted(t for t in tiles if t) == sorted(schema.MODEL_NAMES)
    # the default head's sheet: 51 shapes + tongueOut in 8 rows, then a row of the 7 emotion faces
    full = sheet_tiles(schema.MODEL_NAMES + ("tongueOut",))
    assert len(full) == 9 * 8 and full[::8] == [None] * 9
    assert full[-8:] == [None] + [e for e in schema.EMOTIONS if e != "neutral"]
    assert sorted(t for t in full[:-8] if t) == sorted(schema.MODEL_NAMES + ("tongueOut",))
    assert w == 8 * 64 and h == 9 * (64 + label_height()) and LABEL_PX >= 12
    import sys
    import types
    fake = types.ModuleType("runtime")

    class _Pred:
        vector = np.eye(52, dtype=np.float32)[24]      # jawOpen

    class Engine:
        @classmethod
        def create(cls, options):
            return cls()

        def predict(self, text):
            if not text.strip():
                raise InvalidInputError("empty text")
            return _Pred()

    fake.Engine, fake.EngineOptions = Engine, lambda **kw: None
    old = sys.modules.get("runtime")
    sys.modules["runtime"] = fake
    from emo3d.cli import main as emo3d_main
    try:     # `emo3d render --text`: the CLI layer wires the runtime's engine into the face's renderer CLI
        rc = emo3d_main(["render", "--text", "gasp", "--out", str(tmp_path / "t.png"), "--size", "64"])
        assert rc == 0, capsys.readouterr().err
        rc = emo3d_main(["render", "--text", " ", "--out", str(tmp_path / "e.png"), "--size", "64"])
        se = capsys.readouterr().err
        assert rc == 2 and "--text" in se and "empty text" in se
        # the face's own CLI has no text engine (it sits below the runtime): --text says where it works
        rc, _, se = _run(capsys, "--text", "gasp", "--out", str(tmp_path / "e.png"), "--size", "64")
        assert rc == 2 and "emo3d render --text" in se and not (tmp_path / "e.png").exists()
    finally:
        if old is not None:
            sys.modules["runtime"] = old
        else:
            sys.modules.pop("runtime", None)


def test_external_rig(ict_rig_path, tmp_path, capsys):
    from PIL import Image
    out = tmp_path / "ict.png"
    rc, _, se = _run(capsys, "--rig", str(ict_rig_path), "--weights", '{"jawOpen": 1}', "--out", str(out),
                     "--size", "64")
    assert rc == 0, se
    assert np.asarray(Image.open(out)).mean() > 5


def test_corrupt_rig_is_an_error(tmp_path, capsys):
    bad = tmp_path / "bad.glb"
    bad.write_bytes(b"glTF\x02\x00\x00\x00" + b"\x00" * 5)
    rc, _, se = _run(capsys, "--rig", str(bad), "--out", str(tmp_path / "x.png"), "--size", "64")
    assert rc == 2 and "error" in se and not (tmp_path / "x.png").exists()


def test_background_is_studio_grey_by_default_and_settable(tmp_path, capsys):
    from PIL import Image

    from emo3d.avatar.cli import STUDIO_GREY
    rc, _, se = _run(capsys, "--out", str(tmp_path / "g.png"), "--size", "64")
    assert rc == 0, se
    img = np.asarray(Image.open(tmp_path / "g.png"))
    assert tuple(img[1, 1]) == STUDIO_GREY and img[32, 32].sum() > 100       # grey corner, the face in the middle
    rc, _, se = _run(capsys, "--out", str(tmp_path / "w.png"), "--size", "64", "--background", "250,250,250")
    assert rc == 0, se
    assert tuple(np.asarray(Image.open(tmp_path / "w.png"))[1, 1]) == (250, 250, 250)
    for bad in ("1,2", "0,0,300", "a,b,c"):
        rc, _, se = _run(capsys, "--out", str(tmp_path / "x.png"), "--background", bad)
        assert rc == 2 and "--background" in se


def test_turnaround_shows_the_head_from_eight_sides(tmp_path, capsys):
    """--turnaround: 8 yaws x (neutral, smile), framing the whole head: the front view shows skin in the
    middle, the back view hair, and every view has the head in it (not the background)."""
    from PIL import Image
    from emo3d.avatar.cli import TURNAROUND_YAWS, label_height
    out = tmp_path / "t.png"
    rc, _, se = _run(capsys, "--turnaround", "--size", "64", "--out", str(out), "--background", "0,0,255")
    assert rc == 0, se
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    n = len(TURNAROUND_YAWS)
    assert img.shape == (2 * (64 + label_height()), n * 64, 3)
    tiles = [img[:64, k * 64:(k + 1) * 64] for k in range(n)]
    for t in tiles:
        assert ((t[..., 2] - t[..., 0]) < 100).mean() > 0.2          # the head covers a fifth of each view
    front, back = tiles[TURNAROUND_YAWS.index(0)], tiles[TURNAROUND_YAWS.index(180)]
    centre = (slice(24, 40), slice(24, 40))
    assert front[centre].mean() > back[centre].mean() + 40          # skin in front, dark hair behind
