"""CUDA tests: run only in their own pytest process, under the simulator or on a GPU.

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda -q -p no:cacheprovider

The variable must be set before numba is imported, hence a separate process: the main
test run ignores this folder (nothing here is collected unless NUMBA_ENABLE_CUDASIM=1, or
SOMVQ_CUDA_TESTS=1 on a machine with a GPU). Under the simulator every CUDA thread is a
Python thread, so tiny launch sizes are patched in before any kernel is built.
"""

import os
import sys

import pytest

_SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
_GPU_REQUESTED = os.environ.get("SOMVQ_CUDA_TESTS") == "1"

if not (_SIMULATOR or _GPU_REQUESTED):
    collect_ignore_glob = ["test_*.py"]
else:
    from numba.core import config as _numba_config

    if _SIMULATOR and not _numba_config.ENABLE_CUDASIM:  # numba imported before the variable
        collect_ignore_glob = ["test_*.py"]
    elif _SIMULATOR:
        from somvq._kernels import cuda_config

        from .simulator import make_shared_arrays_thread_safe

        make_shared_arrays_thread_safe()  # the simulator's own race (see simulator.py)

        # Tiny launches: odd sizes against the tiles exercise every edge path.
        cuda_config.THREADS_PER_BLOCK = 8
        cuda_config.BMU_TILE_ROWS = 2
        cuda_config.BMU_TILE_UNITS = 4
        cuda_config.BMU_TILE_FEATURES = 4
        cuda_config.SMOOTH_TILE = 4
        cuda_config.ONLINE_THREADS = 4
        cuda_config.REDUCE_THREADS = 4
        cuda_config.ONLINE_CHUNK = 16

        @pytest.fixture(scope="session", autouse=True)
        def _short_switch_interval():
            # The simulator's block runner polls its threads while holding the GIL; with
            # the default 5 ms switch interval every barrier waits for it (3-4x slower).
            previous = sys.getswitchinterval()
            sys.setswitchinterval(5e-4)
            yield
            sys.setswitchinterval(previous)
