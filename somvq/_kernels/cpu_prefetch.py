"""A software prefetch of one row of a 2-D array, for gathers of rows in a random order.

A gather of a mini-batch's rows (``rows[i] = data[order[i]]``) waits on memory: the
rows are scattered over the data, so the hardware prefetchers, which follow strides,
cannot foresee them, and the loop keeps few misses in flight. :func:`prefetch_row`
emits LLVM's ``llvm.prefetch`` (``prefetcht0`` on x86; nothing where the target has no
such hint) for every cache line of a row, so a gather can ask for the rows a few
iterations ahead. A hint only: it never faults and changes no value.

Measured on the Zen 3 machine (AVX2), one thread, 512 rows in a random order (median
of many blocks): 1e6 x 16 float32 28-36 us plainly, 18 us with each row asked for 16
rows ahead; 1e5 x 32 25-27 us, 15-18 us. In the mini-batch pass (two threads):
``bench_minibatch --old-rev``, 0.81-0.93x the epoch time (docs/performance.md, round 7).
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

#: Bytes of a cache line (every x86-64 and most AArch64 CPUs).
LINE_BYTES = 64

#: Rows a gather asks for ahead of the one it copies.
AHEAD = 16


@intrinsic
def _prefetch_element(typingctx, array, row, col):
    """Ask for the cache line of ``array[row, col]`` (``prefetcht0``; never faults)."""
    if not (isinstance(array, types.Array) and array.ndim == 2):
        return None
    if not (isinstance(row, types.Integer) and isinstance(col, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        arr = context.make_array(sig.args[0])(context, builder, args[0])
        stride0, stride1 = cgutils.unpack_tuple(builder, arr.strides, 2)
        i = context.cast(builder, args[1], sig.args[1], types.intp)
        j = context.cast(builder, args[2], sig.args[2], types.intp)
        byte = ir.IntType(8).as_pointer()
        offset = builder.add(builder.mul(i, stride0), builder.mul(j, stride1))
        address = builder.gep(builder.bitcast(arr.data, byte), [offset])
        fnty = ir.FunctionType(ir.VoidType(), [byte, ir.IntType(32), ir.IntType(32), ir.IntType(32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        read, keep, data_cache = (ir.Constant(ir.IntType(32), v) for v in (0, 3, 1))
        builder.call(fn, [address, read, keep, data_cache])
        return context.get_dummy_value()

    return types.void(array, row, col), codegen


@njit(inline="always")
def prefetch_row(array, row):
    """Ask for every cache line of ``array[row, :]`` (any layout; ``row`` in range)."""
    n = array.shape[1]
    if n == 0:
        return
    if array.strides[1] == array.itemsize:  # a contiguous row: one hint a line
        for j in range(0, n, max(LINE_BYTES // array.itemsize, 1)):
            _prefetch_element(array, row, j)
        _prefetch_element(array, row, n - 1)  # (a row that starts inside a line ends in one more)
    else:
        for j in range(n):
            _prefetch_element(array, row, j)
