#!/usr/bin/env bash
# The whole test suite: builds the environment if needed, then lint and tests.
# Extra arguments go to pytest (e.g. `bash tools/run_tests.sh -k layers`);
# DYNCONV_TEST_WORKERS sets the number of pytest-xdist workers.
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
# one pytest-xdist worker per core (at most 4; DYNCONV_TEST_WORKERS=1 runs
# in one process), each test file on one worker so that its fixtures are
# built once
WORKERS="${DYNCONV_TEST_WORKERS:-$("$PY" -c 'import os; print(min(len(os.sched_getaffinity(0)), 4))')}"
if [ "$WORKERS" -gt 1 ]; then
    "$PY" -m pytest -n "$WORKERS" --dist loadfile "$@"
else
    "$PY" -m pytest "$@"
fi
