"""A fix for the CUDA simulator's shared memory, installed by conftest.py before any launch.

numba-cuda's simulator (0.30.4, the newest) hands out ``cuda.shared.array`` through an
unlocked get-then-store on a dict keyed by the calling line: two threads of a block that
reach the line together can both miss, and each get its own array. They then share
nothing: one thread's tile loads never reach the others, which read uninitialised memory
(a wrong winner, or an index far out of bounds). CI hit it: one row of a layered masked
search lost its label layer (tests/cuda/test_cuda_layers.py,
``test_cuda_classifier_with_missing_inputs_trains_like_the_cpu``). That fit, repeated
under load, went wrong twice in about 240 runs, and in none of 404 with this fix. Real
hardware allocates shared memory once per block, so the kernels are not at fault; the
lookup is made atomic here.
"""

import sys
import threading
import traceback

import numpy as np

_LOCK = threading.Lock()


def _locked_shared_array(self, shape, dtype, alignment=None):
    # The simulator's FakeCUDAShared.array with the lookup and the store under one lock;
    # the key is the same (file, line) of the caller, so distinct arrays stay distinct.
    if alignment is not None or shape == 0 or not hasattr(self, "_allocations"):
        return _ORIGINAL(self, shape, dtype, alignment)  # its own errors, dynamic memory
    from numba.core import types
    from numba.np import numpy_support

    if isinstance(dtype, types.Type):
        dtype = numpy_support.as_dtype(dtype)
    caller = tuple(traceback.extract_stack(sys._getframe(1), limit=1)[0])[0:2]
    with _LOCK:
        res = self._allocations.get(caller)
        if res is None:
            res = self._allocations[caller] = np.empty(shape, dtype)
    return res


_ORIGINAL = None


def make_shared_arrays_thread_safe() -> None:
    """Replace the simulator's ``FakeCUDAShared.array`` by its locked twin (idempotent)."""
    global _ORIGINAL
    from numba.cuda.simulator import kernelapi

    if kernelapi.FakeCUDAShared.array is not _locked_shared_array:
        _ORIGINAL = kernelapi.FakeCUDAShared.array
        kernelapi.FakeCUDAShared.array = _locked_shared_array
