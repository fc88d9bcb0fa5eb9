"""The simulator fix of conftest.py: every thread of a block gets the same shared array."""

import os
import time

import numpy as np
import pytest
from numba import cuda, float64

from .simulator import _locked_shared_array

pytestmark = pytest.mark.skipif(
    os.environ.get("NUMBA_ENABLE_CUDASIM") != "1", reason="a fix of the CUDA simulator"
)

_THREADS = 16


@cuda.jit
def _gather(out):
    tile = cuda.shared.array(_THREADS, float64)
    other = cuda.shared.array(_THREADS, float64)  # a second line: a second array
    t = cuda.threadIdx.x
    tile[t] = t
    other[t] = -1.0
    cuda.syncthreads()
    acc = 0.0
    for j in range(_THREADS):
        acc += tile[j]
    out[t] = acc


def test_the_fix_is_installed():
    from numba.cuda.simulator import kernelapi

    assert kernelapi.FakeCUDAShared.array is _locked_shared_array


def test_threads_that_allocate_together_share_the_array(monkeypatch):
    # A slow allocation holds the first thread inside the lookup while the others arrive:
    # the unlocked simulator gives them their own arrays, and each sums a partial tile.
    real_empty = np.empty

    def slow_empty(*args, **kwargs):
        time.sleep(0.002)
        return real_empty(*args, **kwargs)

    monkeypatch.setattr(np, "empty", slow_empty)
    out = real_empty(_THREADS)
    _gather[1, _THREADS](out)
    np.testing.assert_array_equal(out, np.full(_THREADS, _THREADS * (_THREADS - 1) / 2))
