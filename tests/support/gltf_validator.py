"""Run the Khronos glTF validator (npm gltf-validator, installed with the web viewer's node_modules)
on a file; skips the calling test where node or the package is missing."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parents[2] / "runtime" / "web" / "frontend"


def validate(path) -> dict:
    """The validator's report ({numErrors, numWarnings, numInfos, numHints, messages}) for ``path``."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs node (Node.js) to run the glTF validator")
    if not (FRONTEND / "node_modules" / "gltf-validator").is_dir():
        pytest.skip(f"needs {FRONTEND}/node_modules/gltf-validator (cd {FRONTEND} && npm ci)")
    r = subprocess.run([node, "validate-gltf.mjs", str(path)], cwd=FRONTEND, capture_output=True, text=True,
                       timeout=120)
    return json.loads(r.stdout.strip().splitlines()[-1])
