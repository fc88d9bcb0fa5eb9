"""Explicit Numba signatures, so kernels compile once per dtype/layout and cache on disk."""

from numba import types


def array(dtype, ndim, layout="A", readonly=False):
    return types.Array(dtype, ndim, layout, readonly=readonly)


FLOATS = (types.float32, types.float64)

# One rule for every kernel's signature list: a parameter never has both a read-only "C"
# and a read-only "A" signature of the same dtype. Numba records each conversion it performs
# ("writable C -> read-only A" once any kernel has been called that way) in one global
# type manager; from then on a writable C array converts to both of those signatures at the
# same cost, and a kernel offering both raises "Ambiguous overloading" -- depending on which
# kernel happened to run first in the process. One read-only signature per dtype and layout
# family (C where the kernel's loops need contiguity, else A) cannot be ambiguous.
