"""scripts/test.sh hands its arguments to pytest: no argument runs the whole suite (``tests``), a named test path
runs only that path, options alone still run the whole suite. Run against a stand-in venv (stub python,
lint-imports and pytest that record their arguments) and a stub npm, so nothing is installed."""
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def _pytest_args(tmp_path: Path, *args: str) -> list:
    venv, stubs, log = tmp_path / "venv", tmp_path / "stubs", tmp_path / "pytest.args"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    stubs.mkdir(exist_ok=True)
    _stub(venv / "bin" / "python", "exit 0")
    _stub(venv / "bin" / "lint-imports", "exit 0")
    _stub(venv / "bin" / "pytest", f'printf "%s\\n" "$@" > "{log}"')
    _stub(stubs / "npm", "exit 0")
    env = {**os.environ, "EMO3D_VENV": str(venv), "PATH": f"{stubs}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(REPO / "scripts" / "test.sh"), *args], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return log.read_text().split("\n")[:-1]


def test_test_sh_runs_the_suite_or_the_named_paths(tmp_path):
    assert shutil.which("bash")
    base = ["-q", "-p", "no:cacheprovider", "--timeout=900"]
    assert _pytest_args(tmp_path) == [*base, "tests"]
    assert _pytest_args(tmp_path, "-x", "-q", "tests/emo3d/test_schema.py") == \
        [*base, "-x", "-q", "tests/emo3d/test_schema.py"]
    assert _pytest_args(tmp_path, "tests/emo3d/test_schema.py::test_orders") == \
        [*base, "tests/emo3d/test_schema.py::test_orders"]
    assert _pytest_args(tmp_path, "-k", "schema") == [*base, "tests", "-k", "schema"]
