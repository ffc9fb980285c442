"""Run the Khronos glTF validator (npm gltf-validator, installed with the web viewer's node_modules)
on a file; skips the calling test where node or the package is missing."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from support.assets import missing_asset

FRONTEND = Path(__file__).resolve().parents[2] / "runtime" / "web" / "frontend"


def validate(path) -> dict:
    """The validator's report ({numErrors, numWarnings, numInfos, numHints, messages}) for ``path``."""
    node = shutil.which("node")
    if node is None:
        missing_asset("Node.js (node) to run the glTF validator", "apt-get install nodejs; .ci/run does")
    if not (FRONTEND / "node_modules" / "gltf-validator").is_dir():
        missing_asset(f"{FRONTEND}/node_modules/gltf-validator", f"cd {FRONTEND} && npm ci")
    r = subprocess.run([node, "validate-gltf.mjs", str(path)], cwd=FRONTEND, capture_output=True, text=True,
                       timeout=120)
    return json.loads(r.stdout.strip().splitlines()[-1])
