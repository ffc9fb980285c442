"""``emo3d`` is the one console command: every subcommand resolves to its owner's entry point, ``emo3d run`` is
``emo3d-run``, and the package modules run from a checkout (the source tree shadows the installed packages,
whose compiled ``native._core`` the source tree lacks)."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from emo3d import cli

REPO = Path(__file__).resolve().parents[2]


def test_every_subcommand_resolves_to_a_callable():
    required = {"run", "render", "data", "train", "export", "eval", "calibrate", "webcam"}
    assert required <= set(cli.SUBCOMMANDS)
    for name, (target, help_) in cli.SUBCOMMANDS.items():
        module, _, func = target.partition(":")
        assert callable(getattr(importlib.import_module(module), func or "main")), name
        assert help_.strip(), name


@pytest.mark.parametrize("name,prog", [("run", "emo3d-run"), ("webcam", "emo3d webcam"), ("render", "emo3d render")])
def test_subcommand_help(name, prog, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([name, "--help"])
    assert e.value.code == 0 and f"usage: {prog}" in capsys.readouterr().out


def test_emo3d_run_is_emo3d_run(capsys):
    from runtime import cli as run_cli
    assert cli.SUBCOMMANDS["run"][0] == run_cli.__name__
    assert cli.main(["run", "--json"]) == 2                 # the same command: same checks, same message
    assert "emo3d-run: error: give a text" in capsys.readouterr().err


def test_modules_run_from_the_repository_root():
    """`python -m eval.emo3d` at the repository root: the checkout's packages load, the compiled core comes
    from wherever it was installed (native extends its path over every `native` folder on sys.path)."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-m", "eval.emo3d", "--help"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "usage: python -m eval.emo3d" in r.stdout, r.stderr[-2000:]
    r = subprocess.run([sys.executable, "-c", "import native; print(native.__file__); print(native._core.__file__)"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    init, core = (Path(line) for line in r.stdout.split())
    assert init.resolve() == (REPO / "native" / "__init__.py").resolve()     # the checkout's package ...
    assert core.suffix in (".so", ".pyd")                                     # ... with a compiled core


def test_a_checkout_without_the_compiled_core_still_runs(tmp_path):
    """The same from a checkout that never built in place: a copy of the source packages whose native/ holds
    no compiled _core (other packages linked), so the core must come from the installed package."""
    import shutil
    (tmp_path / "native").mkdir()
    for f in (REPO / "native").glob("*.py"):
        shutil.copy(f, tmp_path / "native" / f.name)
    for pkg in ("emo3d", "export", "runtime", "eval"):
        (tmp_path / pkg).symlink_to(REPO / pkg, target_is_directory=True)
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", "import native; print(native.__file__); print(native._core.__file__)"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    init, core = (Path(line) for line in r.stdout.split())
    assert init.parent == tmp_path / "native" and core.parent != tmp_path / "native" and core.suffix in (".so", ".pyd")
    r = subprocess.run([sys.executable, "-m", "eval.emo3d", "--help"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "usage: python -m eval.emo3d" in r.stdout, r.stderr[-2000:]
