"""The official-release reader on a hand-written miniature of the release (exact values, every
malformed case named in the issue, --skip-bad report) and the mirror augmentation."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from emo3d import data as dataset
from emo3d.data import augment
from emo3d.data.cli import main as data_main
from emo3d import schema
from emo3d.errors import DataValidationError, InvalidInputError

HEADER = ("sample_id,prompt_type,text_1,text_2,text_3,neutral,happiness,surprise,sadness,anger,disgust,fear,"
          "contempt,img_1,img_2,img_3,img_4,blenshape_score_1,blenshape_score_2,blenshape_score_3,"
          "blenshape_score_4")


def vec(seed: int) -> list:
    """52 exact decimal strings (3 decimals, some 0 and 1) like the release's cells."""
    rng = np.random.default_rng(seed)
    vals = [f"{x:.3f}" for x in rng.uniform(0, 1, 52)]
    vals[0], vals[5], vals[7] = "0.", "1.", "0.000001"
    return vals


def cell(vals) -> str:
    """numpy-style cell: padded tokens and a line break, as numpy prints long arrays."""
    toks = [v.ljust(6) for v in vals]
    return '"[' + " ".join(toks[:26]) + "\n " + " ".join(toks[26:]) + ']"'


def expected(vals) -> np.ndarray:
    return np.array([float(v) for v in vals], dtype=np.float32)


def good_rows(start: int = 0):
    """(csv line, truth) for three good rows, incl. empty image/blendshape cells."""
    a, b, c = vec(start + 1), vec(start + 2), vec(start + 3)
    sid = start
    rows = [
        (f'{sid},prompt1,"The human face expresses happiness in a wide smile, left eye winking.",'
         f'The person has a cheerful visage.,The person has a broad grin,'
         f'0,1,0,0,0,0,0,0,prompt1_images_0_1000/{sid}_0.jpeg,,prompt1_images_0_1000/{sid}_2.jpeg,,'
         f'{cell(a)},,{cell(b)},',
         dict(sid=sid, emotions=[0, 1, 0, 0, 0, 0, 0, 0],
              images=(f"prompt1_images_0_1000/{sid}_0.jpeg", None, f"prompt1_images_0_1000/{sid}_2.jpeg", None),
              bs=(a, None, b, None), n_texts=3)),
        (f'{sid + 1},prompt2,"She had a round face with sunken cheeks, droopy eyelids.",,,'
         f'0.2,0,0,0.8,0,0,0,0,,,,,{cell(c)},,,',
         dict(sid=sid + 1, emotions=[0.2, 0, 0, 0.8, 0, 0, 0, 0], images=(None,) * 4, bs=(c, None, None, None),
              n_texts=1)),
        (f'{sid + 2},prompt3,Total confusion.,Bewilderment.,Wide eyes and furrowed brow.,'
         f'0.5,0,0.7,0.2,0,0,0.3,0,,,,,,,,',
         dict(sid=sid + 2, emotions=[0.5, 0, 0.7, 0.2, 0, 0, 0.3, 0], images=(None,) * 4, bs=(None,) * 4,
              n_texts=3)),
    ]
    return rows


def write_release(root, extra_train_lines=(), *, images=True):
    data = root / "data"
    data.mkdir(parents=True)
    truths = {}
    for k, split in enumerate(("train", "val", "test")):
        rows = good_rows(start=10 * k)
        lines = [HEADER] + [r for r, _ in rows] + (list(extra_train_lines) if split == "train" else [])
        (data / f"{split}_data.csv").write_text("\n".join(lines) + "\n")
        truths[split] = [t for _, t in rows]
        if images:
            for _, t in rows:
                for img in t["images"]:
                    if img:
                        (root / img).parent.mkdir(parents=True, exist_ok=True)
                        (root / img).write_bytes(b"\xff\xd8jpeg")
    return truths


def check_sample(s, t):
    assert s.sample_id == t["sid"]
    assert np.array_equal(s.emotions, np.array(t["emotions"], np.float32))
    assert s.images == t["images"]
    assert len(s.texts) == t["n_texts"]
    for got, want in zip(s.blendshapes, t["bs"]):
        if want is None:
            assert got is None
        else:
            assert got.dtype == np.float32 and got.shape == (52,)
            assert np.array_equal(got, expected(want))


def test_miniature_release_round_trips_exactly(tmp_path):
    truths = write_release(tmp_path)
    rel = dataset.read_release(tmp_path)
    assert [len(rel.split(s)) for s in ("train", "val", "test")] == [3, 3, 3]
    assert len(rel.samples) == 9   # no parquet: the splits in order
    for split in ("train", "val", "test"):
        for s, t in zip(rel.split(split), truths[split]):
            check_sample(s, t)
    s0 = rel.split("train")[0]
    assert s0.texts[0] == "The human face expresses happiness in a wide smile, left eye winking."
    assert s0.prompt_type == "prompt1" and s0.prior is None

    # write it back (CSV and parquet) and read again: the same values
    dataset.write_table(rel.samples, tmp_path / "data" / "emo3d_data.parquet", extras=False)
    rel2 = dataset.read_release(tmp_path)
    assert len(rel2.samples) == 9   # the parquet now is "all samples" (and agrees with every split row)
    for s, t in zip(rel2.samples, truths["train"]):
        check_sample(s, t)
        assert s.texts == next(x for x in rel.samples if x.sample_id == s.sample_id).texts


def test_pairs_follow_the_paper(tmp_path):
    write_release(tmp_path)
    rel = dataset.read_release(tmp_path)
    tr = rel.split("train")
    tp = dataset.text_pairs(tr)
    # sample 0: 3 texts x 2 vectors; sample 1: 1 text x 1 vector; sample 2: no vectors
    assert len(tp) == 7 and tp.targets.shape == (7, 52) and tp.emotions.shape == (7, 8)
    assert list(tp.sample_ids) == [0] * 6 + [1]
    ip = dataset.image_pairs(tr, tmp_path)
    assert len(ip) == 2 and ip.paths[0] == tmp_path / "prompt1_images_0_1000/0_0.jpeg"
    assert not ip.flip.any()
    with pytest.raises(InvalidInputError, match="prior"):
        dataset.text_pairs(tr, target="prior")


def test_mirror_is_an_involution(tmp_path):
    t = "The LEFT brow rises; right eye closed. Left, then Right. Outright bright."
    assert augment.mirror_text(t) == "The RIGHT brow rises; left eye closed. Right, then Left. Outright bright."
    assert augment.mirror_text(augment.mirror_text(t)) == t
    img = np.arange(2 * 5 * 3, dtype=np.uint8).reshape(2, 5, 3)
    assert np.array_equal(augment.mirror_image(augment.mirror_image(img)), img)
    assert np.array_equal(augment.mirror_image(img)[:, 0], img[:, -1])

    write_release(tmp_path)
    tr = dataset.read_release(tmp_path).split("train")
    m = dataset.text_pairs(tr, mirror=True)
    n = len(m) // 2
    assert m.texts[n:] == [augment.mirror_text(x) for x in m.texts[:n]]
    assert "right eye winking" in m.texts[n]
    assert np.array_equal(m.targets[n:], schema.mirror(m.targets[:n]))
    assert np.array_equal(schema.mirror(m.targets[n:]), m.targets[:n])
    i = schema.MEDIAPIPE_INDEX
    assert m.targets[n, i["eyeBlinkLeft"]] == m.targets[0, i["eyeBlinkRight"]]
    ip = dataset.image_pairs(tr, tmp_path, mirror=True)
    assert list(ip.flip) == [False, False, True, True]
    assert np.array_equal(ip.targets[2:], schema.mirror(ip.targets[:2]))


def _bad(vals_or_cell, col: int = 1, *, emotions="0,0,1,0,0,0,0,0", img="", sid=99):
    """A train row with a bad blendshape cell in column blenshape_score_<col> (or bad emotions/image)."""
    bs = ["", "", "", ""]
    if vals_or_cell is not None:
        bs[col - 1] = vals_or_cell if isinstance(vals_or_cell, str) else cell(vals_or_cell)
    imgs = [img, "", "", ""]
    return f"{sid},prompt1,A text.,,,{emotions},{','.join(imgs)},{','.join(bs)}"


def _with(vals, i, tok):
    v = list(vals)
    v[i] = tok
    return v


BAD_CASES = [
    ("wrong value count", _bad(vec(5)[:51], 2), "blenshape_score_2", "expected 52"),
    ("too many values", _bad(vec(5) + ["0.5"], 1), "blenshape_score_1", "found 53"),
    ("non-numeric token", _bad(_with(vec(5), 3, "abc"), 3), "blenshape_score_3", "'abc'"),
    ("NaN value", _bad(_with(vec(5), 9, "nan"), 4), "blenshape_score_4", "NaN"),
    ("value above 1", _bad(_with(vec(5), 2, "1.5"), 1), "blenshape_score_1", "outside [0, 1]"),
    ("negative value", _bad(_with(vec(5), 2, "-0.2"), 2), "blenshape_score_2", "outside [0, 1]"),
    ("negative emotion", _bad(None, emotions="0,0,1,0,-0.3,0,0,0"), "anger", "negative"),
    ("NaN emotion", _bad(None, emotions="0,nan,1,0,0,0,0,0"), "happiness", "not finite"),
    ("non-numeric emotion", _bad(None, emotions="0,0,x,0,0,0,0,0"), "surprise", "not a number"),
    ("empty emotion", _bad(None, emotions="0,0,1,0,0,,0,0"), "disgust", "empty"),
    ("missing image file", _bad(None, img="prompt1_images_0_1000/missing.jpeg"), "img_1", "does not exist"),
    ("bad sample id", _bad(None, sid="x7"), "sample_id", "not an integer"),
    ("duplicate sample id", _bad(None, sid=0), "sample_id", "duplicate"),
    ("image outside the release", _bad(None, img="../../../../etc/hostname"), "img_1", "outside the release"),
    ("absolute image path", _bad(None, img="/etc/passwd"), "img_1", "outside the release"),
    ("torn row", "98,prompt1,A text.,,,0,0,1,0,0,0", "fear", "fields"),
    ("empty texts", _bad(None).replace("A text.", ""), "text_1", "empty"),
]


@pytest.mark.parametrize("name,line,column,needle", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_malformed_row_names_file_row_and_column(tmp_path, name, line, column, needle):
    write_release(tmp_path, [line])
    with pytest.raises(DataValidationError) as ei:
        dataset.read_release(tmp_path)
    e = ei.value
    assert e.file.endswith("train_data.csv") and e.row == 4 and e.column == column
    msg = str(e)
    assert "train_data.csv" in msg and "row 4" in msg and repr(column) in msg and needle in msg


def test_skip_bad_reports_every_skipped_row(tmp_path):
    lines = [c[1] for c in BAD_CASES if c[0] != "duplicate sample id"]
    lines = [ln.replace("99,", f"{100 + k},", 1) if ln.startswith("99,") else ln for k, ln in enumerate(lines)]
    write_release(tmp_path, lines)
    report = tmp_path / "out" / "skipped.csv"
    rel = dataset.read_release(tmp_path, skip_bad=True, report_path=report)
    assert [s.sample_id for s in rel.split("train")] == [0, 1, 2]
    with open(report, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(lines) == len(rel.skipped)
    assert [int(r["row"]) for r in rows] == list(range(4, 4 + len(lines)))
    want_cols = [c[2] for c in BAD_CASES if c[0] != "duplicate sample id"]
    assert [r["column"] for r in rows] == want_cols
    assert all(r["file"].endswith("train_data.csv") for r in rows)
    # the CLI: error without --skip-bad (exit 2), success with it
    assert data_main(["check", str(tmp_path)]) == 2
    assert data_main(["check", str(tmp_path), "--skip-bad", "--report", str(tmp_path / "r2.csv")]) == 0
    assert (tmp_path / "r2.csv").is_file()


def test_missing_columns_and_folders(tmp_path):
    with pytest.raises(DataValidationError, match="no Emo3D release"):
        dataset.read_release(tmp_path / "nowhere")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train_data.csv").write_text("sample_id,text_1\n1,hi\n")
    with pytest.raises(DataValidationError) as ei:
        dataset.read_release(tmp_path)
    assert ei.value.column == "prompt_type" and "missing columns" in str(ei.value)


def test_no_check_images_reads_a_csv_only_copy(tmp_path):
    write_release(tmp_path, images=False)
    with pytest.raises(DataValidationError, match="does not exist"):
        dataset.read_release(tmp_path)
    rel = dataset.read_release(tmp_path, check_images=False)
    assert rel.split("train")[0].images[0] == "prompt1_images_0_1000/0_0.jpeg"


def test_format_round_trip_is_exact():
    from emo3d.data.validate import format_vector, parse_vector, quantize
    v = quantize(np.random.default_rng(0).uniform(0, 1, 52) ** 3)
    back = parse_vector(format_vector(v), file="f", row=1, column="c")
    assert np.array_equal(back, v)
    assert format_vector(np.zeros(52)).startswith("[0. 0. ")
    assert math.isclose(float(format_vector(np.full(52, 0.25))[1:5]), 0.25)


def test_zipped_image_folders_like_the_official_release(tmp_path):
    """The hub release ships image folders as data/<folder>.zip: the error says so, extraction fixes it."""
    import shutil
    import zipfile
    write_release(tmp_path)
    folder = tmp_path / "prompt1_images_0_1000"
    with zipfile.ZipFile(tmp_path / "data" / "prompt1_images_0_1000.zip", "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, f"prompt1_images_0_1000/{p.name}")
    shutil.rmtree(folder)
    with pytest.raises(DataValidationError, match="still zipped") as ei:
        dataset.read_release(tmp_path)
    assert ei.value.column == "img_1"
    from emo3d.data.hf import fetch_release
    assert fetch_release(source="local", path=tmp_path) == tmp_path
    assert (tmp_path / "data" / "prompt1_images_0_1000" / "0_0.jpeg").is_file()
    rel = dataset.read_release(tmp_path)
    ip = dataset.image_pairs(rel.split("train"), rel.root)
    assert ip.paths[0] == tmp_path / "data" / "prompt1_images_0_1000" / "0_0.jpeg" and ip.paths[0].is_file()
    assert fetch_release(source="local", path=tmp_path) == tmp_path   # second time: nothing to do
