"""Explicit Numba signatures, so kernels compile once per dtype/layout and cache on disk."""

from numba import types


def array(dtype, ndim, layout="A", readonly=False):
    return types.Array(dtype, ndim, layout, readonly=readonly)


FLOATS = (types.float32, types.float64)


def data_arrays(ndim=2):
    """Input-data array types: float32/float64, any layout, writable or read-only."""
    return [
        array(dtype, ndim, layout, readonly)
        for dtype in FLOATS
        for layout in ("C", "A")
        for readonly in (False, True)
    ]
