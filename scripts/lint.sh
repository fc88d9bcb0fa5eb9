#!/usr/bin/env bash
# Static checks, run by scripts/test.sh (the README's test command, CI) before the tests:
#   ruff check           lint rules chosen in pyproject.toml [tool.ruff.lint]
#   ruff format --check  the code is formatted as `ruff format` would write it
#   mypy                 type check of the public API ([tool.mypy] in pyproject.toml)
# Each check runs even when an earlier one failed; the script fails if any did.
# Needs the "lint" extra: pip install -e ".[lint]".
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
status=0
run() {
    echo "lint.sh: $*"
    "$@" || status=1
}
run "$PYTHON" -m ruff check .
run "$PYTHON" -m ruff format --check .
run "$PYTHON" -m mypy
exit $status
