#!/usr/bin/env bash
# Install everything the test suite needs, then run it. This is the README's test command
# and what CI (.ci/run) calls. Works on a fresh machine with Python >= 3.10 and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# torch: the pinned CPU build first. A looser requirement with no torch installed would
# pull a multi-GB CUDA build; the package itself only asks for a range.
"$PYTHON" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[test,torch,plot,dask,cuda,report,lint,docs]"
# The CUDA toolkit wheels (NVRTC, NVVM, about 430 MB installed): tests/cuda/ptx_compile.py
# compiles every kernel to PTX for sm_80 and sm_90 with the real compiler, no GPU needed.
"$PYTHON" -m pip install --quiet --disable-pip-version-check "numba-cuda[cu12]"

# Static checks first (seconds): lint, formatting, types; then the documentation site,
# warnings as errors (a broken reference or a stale name fails here).
PYTHON="$PYTHON" bash scripts/lint.sh
"$PYTHON" -m sphinx -W --keep-going -q -b html docs docs/_build/html

# The report's browser tests drive Debian's Chromium with Playwright (Playwright's own
# browser download is not used). Install it when missing and we may (root, apt-get);
# elsewhere those tests skip and say why.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) \
        || echo "test.sh: could not install chromium; the browser tests will skip" >&2
fi

# Passive OpenMP waits: spinning barriers cost a scheduler slice each on a 2-core machine.
export OMP_WAIT_POLICY=PASSIVE

"$PYTHON" -m pytest -q -p no:cacheprovider --ignore=tests/cuda "$@"

# The numba.cuda kernels, under the CUDA simulator, in their own process: numba reads
# NUMBA_ENABLE_CUDASIM when it is first imported.
NUMBA_ENABLE_CUDASIM=1 "$PYTHON" -m pytest -q -p no:cacheprovider tests/cuda
