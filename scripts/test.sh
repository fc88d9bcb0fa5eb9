#!/usr/bin/env bash
# Install everything the test suite needs, then run it. This is the README's test command
# and what CI (.ci/run) calls. Works on a fresh machine with Python >= 3.10 and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# torch: the pinned CPU build first. A looser requirement with no torch installed would
# pull a multi-GB CUDA build; the package itself only asks for a range.
"$PYTHON" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[test,torch,plot,dask,cuda]"

# Passive OpenMP waits: spinning barriers cost a scheduler slice each on a 2-core machine.
export OMP_WAIT_POLICY=PASSIVE

"$PYTHON" -m pytest -q -p no:cacheprovider --ignore=tests/cuda "$@"

# The numba.cuda kernels, under the CUDA simulator, in their own process: numba reads
# NUMBA_ENABLE_CUDASIM when it is first imported.
NUMBA_ENABLE_CUDASIM=1 "$PYTHON" -m pytest -q -p no:cacheprovider tests/cuda
