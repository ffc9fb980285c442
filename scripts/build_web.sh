#!/usr/bin/env bash
# Build the browser viewer of `emo3d-run --web`: runtime/web/frontend (three.js, three-vrm, pinned by
# package-lock.json) -> runtime/web/static/ (bundled by esbuild; setup.py ships it). Needs Node.js and npm.
set -euo pipefail
cd "$(dirname "$0")/../runtime/web/frontend"
if ! command -v npm >/dev/null; then
  echo "build_web.sh: needs Node.js and npm (e.g. apt-get install nodejs npm)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error >/dev/null
npm run --silent build
