#!/usr/bin/env bash
# Install the runtime (CPU onnxruntime, no torch) into .venv and run the live face on the offline default model.
# Usage: bash scripts/demo.sh ["text"] [emo3d-run options]
set -euo pipefail
cd "$(dirname "$0")/.."
# the browser viewer (emo3d-run --web) is built where Node.js is present, before the install that ships it
if command -v npm >/dev/null; then bash scripts/build_web.sh; fi
VENV="$(bash scripts/setup_venv.sh cpu | tail -n 1)"
TEXT="${1:-furious scowl}"
shift || true
exec "$VENV/bin/emo3d-run" "$TEXT" "$@"
