#!/usr/bin/env bash
# The whole test suite: builds the environment if needed, then lint and tests.
# Extra arguments go to pytest (e.g. `bash tools/run_tests.sh -k layers`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/env/setup_env.sh
PY="${DYNCONV_VENV:-$ROOT/.venv}/bin/python"
SRC=(dynconv_mmdet tools tests projects configs)

echo '== lint (flake8, isort, yapf, codespell)'
"$PY" -m flake8 "${SRC[@]}"
"$PY" -m isort --check-only --diff "${SRC[@]}"
"$PY" -m yapf --diff --recursive "${SRC[@]}"
"$(dirname "$PY")/codespell" "${SRC[@]}" README.md

echo '== tests'
"$PY" -m pytest "$@"
