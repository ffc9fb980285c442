"""Issue #17, the release reader and ``emo3d data check``: unreadable files are errors naming the file (never a
traceback), image paths stay inside the release, a key is in one split only, the split files agree with the
parquet, rows are keyed on (prompt_type, sample_id), all-zero emotions are warned and counted; a fuzz of
>= 2,000 malformed CSV and parquet files."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emo3d import data as dataset
from emo3d.data import reader
from emo3d.data.cli import main as data_main
from emo3d.errors import DataValidationError

from test_dataset_reader import HEADER, _bad, write_release


def _check(capsys, *argv):
    rc = data_main(["check", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def _with_parquet(root, mutate=None):
    (root / "data" / reader.PARQUET).unlink(missing_ok=True)
    rel = dataset.read_release(root, check_images=False)
    samples = list(rel.samples)
    if mutate:
        samples = mutate(samples)
    dataset.write_table(samples, root / "data" / reader.PARQUET, extras=False)
    return root / "data" / reader.PARQUET


# --- unreadable files ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["truncated", "empty", "garbage"])
def test_broken_parquet_is_an_error_naming_the_file(capsys, tmp_path, how):
    write_release(tmp_path)
    p = _with_parquet(tmp_path)
    data = p.read_bytes()
    p.write_bytes({"truncated": data[:len(data) // 2], "empty": b"", "garbage": b"PAR1" + b"\x00" * 50}[how])
    for extra in ([], ["--skip-bad"]):
        rc, out, err = _check(capsys, tmp_path, *extra)
        assert rc == 2 and "emo3d_data.parquet" in err and "not a readable parquet" in err


def test_non_utf8_csv_row_is_named_and_skippable(capsys, tmp_path):
    write_release(tmp_path)
    train = tmp_path / "data" / "train_data.csv"
    train.write_bytes(train.read_bytes() + _bad(None, sid=50).replace("A text.", "caf\udce9").encode(
        "utf-8", "surrogateescape") + b"\n")
    rc, out, err = _check(capsys, tmp_path)
    assert rc == 2 and "row 4" in err and "'text_1'" in err and "not valid UTF-8" in err and "0xe9" in err
    rc, out, err = _check(capsys, tmp_path, "--skip-bad", "--report", tmp_path / "r.csv")
    assert rc == 0 and "skipped 1" in out
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as f:
        assert [r["column"] for r in csv.DictReader(f)] == ["text_1"]


def test_huge_field_is_refused_not_a_csv_traceback(capsys, tmp_path):
    write_release(tmp_path, [_bad(None, sid=51).replace("A text.", "x" * 200_000)])
    rc, out, err = _check(capsys, tmp_path)
    assert rc == 2 and "'text_1'" in err and "200000 characters" in err
    rc, out, err = _check(capsys, tmp_path, "--skip-bad", "--report", tmp_path / "r.csv")
    assert rc == 0 and "skipped 1" in out


def test_unclosed_quote_is_named(capsys, tmp_path):
    write_release(tmp_path, ['52,prompt1,"never closed,,,0,0,1,0,0,0,0,0,,,,,,,,'])
    rc, out, err = _check(capsys, tmp_path)
    assert rc == 2 and "train_data.csv" in err


# --- paths, splits, parquet ------------------------------------------------------------------------------------
@pytest.mark.parametrize("img", ["../../../../etc/hostname", "/etc/passwd", "data/../../x.jpeg", "C:\\x.jpeg"])
def test_image_paths_outside_the_release_fail_even_without_image_checks(capsys, tmp_path, img):
    write_release(tmp_path, [_bad(None, img=img, sid=60)])
    for extra in ([], ["--no-check-images"]):
        rc, out, err = _check(capsys, tmp_path, *extra)
        assert rc == 2 and "outside the release folder" in err and "'img_1'" in err


def test_same_key_in_train_and_val_fails(capsys, tmp_path):
    write_release(tmp_path)
    val = tmp_path / "data" / "val_data.csv"
    val.write_text(val.read_text() + _bad(None, sid=0) + "\n")    # train already has (prompt1, 0)
    rc, out, err = _check(capsys, tmp_path)
    assert rc == 2 and "val_data.csv" in err and "in both train" in err and "('prompt1', 0)" in err
    rc, out, err = _check(capsys, tmp_path, "--skip-bad", "--report", tmp_path / "r.csv")
    assert rc == 0 and "val 3" in out and "skipped 1" in out


def test_parquet_disagreeing_with_its_csv_fails(capsys, tmp_path):
    write_release(tmp_path)

    def change(samples):
        samples[4].emotions = samples[4].emotions + 0.25      # val row 2 (prompt2, 11)
        return samples
    _with_parquet(tmp_path, change)
    rc, out, err = _check(capsys, tmp_path)
    assert rc == 2 and "val_data.csv" in err and "row 2" in err and "disagrees with emo3d_data.parquet" in err
    _with_parquet(tmp_path, lambda s: s[:-1])                  # the parquet lacks the last test row
    rc, out, err = _check(capsys, tmp_path)
    assert rc == 2 and "test_data.csv" in err and "not in emo3d_data.parquet" in err


def test_sample_id_restarting_per_prompt_type_is_read(capsys, tmp_path):
    """The official release numbers samples from 0 in each prompt type: (prompt_type, sample_id) is the key."""
    write_release(tmp_path, [_bad(None, sid=0).replace(",prompt1,", ",prompt2,"),
                             _bad(None, sid=0).replace(",prompt1,", ",prompt3,")])
    rel = dataset.read_release(tmp_path)
    assert [s.key for s in rel.split("train")][-2:] == [("prompt2", 0), ("prompt3", 0)]
    rc, out, err = _check(capsys, tmp_path, "--skip-bad", "--report", tmp_path / "r.csv")
    assert rc == 0 and "train 5" in out and "skipped 0" in out


def test_all_zero_emotions_are_warned_and_counted(capsys, tmp_path):
    write_release(tmp_path, [_bad(None, sid=70, emotions="0,0,0,0,0,0,0,0"),
                             _bad(None, sid=71, emotions="0,0,0,0,0,0,0,0")])
    with pytest.warns(reader.ZeroEmotionWarning, match="2 row"):
        rel = dataset.read_release(tmp_path)
    assert rel.zero_emotion_rows == 2 and rel.split("train")[-1].dominant == "neutral"
    rc, out, err = _check(capsys, tmp_path)
    assert rc == 0 and "2 with all-zero emotions" in out and "warning" in err


# --- fuzz ------------------------------------------------------------------------------------------------------
N_CSV, N_PARQUET = 1600, 500


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzzrel")
    write_release(root, images=False)
    csv_bytes = (root / "data" / "train_data.csv").read_bytes()
    pq = _with_parquet(root)
    return root, csv_bytes, pq.read_bytes()


_payload = st.one_of(st.binary(max_size=30), st.sampled_from([
    b"\xff\xfe", b'"', b"\n", b",", b",,,,,,,", b"\r\n", b"nan", b"-1", b"1e999", b"../../etc/passwd", b"/etc/passwd",
    b"[0.5 0.5]", b"\x00", b"x" * 70_000, b'"' + b"y" * 140_000, "é😠".encode(), b"prompt1", b"0"]))
_mutation = st.tuples(st.sampled_from(["insert", "replace", "truncate", "delete", "dup"]),
                      st.floats(0, 1), st.integers(0, 200), _payload)


def _mutate(data: bytes, muts) -> bytes:
    for kind, where, n, payload in muts:
        i = int(where * len(data))
        if kind == "insert":
            data = data[:i] + payload + data[i:]
        elif kind == "replace":
            data = data[:i] + payload + data[i + len(payload):]
        elif kind == "truncate":
            data = data[:i]
        elif kind == "delete":
            data = data[:i] + data[i + n:]
        else:
            data = data[:i] + data[i:i + n] * 2 + data[i + n:]
    return data


def _read_both_ways(path, root):
    try:
        out = reader.read_table(path, root=root, check_images=False)
        assert all(isinstance(s, reader.Sample) for s in out)
    except DataValidationError as e:
        assert e.file == str(path) and str(e)
    skipped: list = []
    try:
        reader.read_table(path, root=root, check_images=False, skip_bad=True, skipped=skipped)
    except DataValidationError as e:          # only a file that cannot be read at all
        assert e.file == str(path) and str(e)
    for s in skipped:
        assert s.error and s.row >= 1
        s.error.encode("utf-8")               # the report can be written


@settings(max_examples=N_CSV, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(muts=st.lists(_mutation, min_size=1, max_size=3))
def test_fuzz_malformed_csv_files(base, muts):
    root, csv_bytes, _ = base
    path = root / "data" / "fuzz_data.csv"
    path.write_bytes(_mutate(csv_bytes, muts))
    _read_both_ways(path, root)


@settings(max_examples=N_PARQUET, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(muts=st.lists(_mutation, min_size=1, max_size=2))
def test_fuzz_malformed_parquet_files(base, muts):
    root, _, pq_bytes = base
    path = root / "data" / "fuzz.parquet"
    path.write_bytes(_mutate(pq_bytes, muts))
    _read_both_ways(path, root)


def test_header_constant_is_the_release_header():
    assert tuple(next(csv.reader(io.StringIO(HEADER)))) == reader.REQUIRED
    assert np.isfinite(reader.MAX_CELL)
