"""Issue #17: a failed ``python -m eval.emo3d`` run leaves no empty ``--out`` folder behind (a folder that
existed before, or that holds anything, is kept)."""
from __future__ import annotations

from pathlib import Path

from emo3d.errors import InvalidInputError
from eval import emo3d as cli


def _failing_run(options, **kw):
    Path(options.out).mkdir(parents=True, exist_ok=True)     # what run() does before a late failure
    raise InvalidInputError("the judge could not be loaded")


def test_failed_run_removes_the_empty_out_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "run", _failing_run)
    argv = ["--models", "default", "--data", str(tmp_path / "d"), "--judge", "fer", "roundtrip"]
    out = tmp_path / "report"
    assert cli.main([*argv, "--out", str(out)]) == 2
    assert "could not be loaded" in capsys.readouterr().err
    assert not out.exists()
    kept = tmp_path / "existing"
    kept.mkdir()
    assert cli.main([*argv, "--out", str(kept)]) == 2 and kept.is_dir()
