#!/usr/bin/env bash
# Install emo3d with its test extras into .venv (non-editable: tests run against the installed package and
# its compiled native core) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# the browser viewer is built (where Node.js is present) before the install that ships it: the browser tests need it
if command -v npm >/dev/null; then bash scripts/build_web.sh; fi
VENV="$(bash scripts/setup_venv.sh test | tail -n 1)"
# The layers and the torch-free runtime (.importlinter, docs/architecture.md), checked on the source tree.
"$VENV/bin/lint-imports" --no-cache
# The pytest script (not `python -m pytest`) keeps the source tree off sys.path, so tests import the installed
# packages; tests/conftest.py sits in tests/, not at the root, for the same reason.
# `bash scripts/test.sh` runs the whole suite; arguments are pytest's, and naming a test path runs only that
# (`bash scripts/test.sh -x -q tests/emo3d/test_schema.py`).
TARGET=(tests)
for arg in "$@"; do
  if [[ "$arg" != -* && -e "${arg%%::*}" ]]; then TARGET=(); break; fi
done
exec "$VENV/bin/pytest" -q -p no:cacheprovider --timeout=900 "${TARGET[@]}" "$@"
