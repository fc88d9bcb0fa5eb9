"""Squared distances from one row to units stored in vector lanes: the ball's screen.

Late in a batch fit the pruned search settles a row by the distances to the ~13 units
nearest its last winner (the ball, :func:`somvq._kernels.cpu_pruned.check_rows`). Written
as a loop per unit, each distance ends in a horizontal sum of its feature vector, and at
D = 16 costs ~5.7 ns whatever form the loop takes (docs/performance.md, rounds 14-15).
Here the units of each list are stored transposed, :data:`LANES` to a group::

    table[base + (g * D + j) * LANES + l] = coordinate j of the list's unit g * LANES + l

so one vector holds eight units' partial sums: per feature, a broadcast of the row's
value, a subtraction and a multiply-add, and no horizontal sum. Numba's vectoriser keeps
such sums in memory (a store and reload per feature, slower than the plain loop), so
:func:`lanes_beyond` writes the vector code itself (LLVM IR through ``@intrinsic``, as
:mod:`cpu_sync` does for atomics): two accumulators (even and odd features) to halve the
multiply-add chain. At D = 16, 2e5 rows and 13 units a row (one thread, a throwaway
script): 4.3 ms against 15.2 ms for the loop per unit; D = 32: 8.0 against 21.8; D = 64:
17.7 against 36.1.

The values are a *screen*: computed in the rows' dtype, summed in any order, so they are
not the bits of the exact searches' float64 distances. :func:`screen_error` bounds the
difference; the caller decides with those bounds and computes the exact distance of any
unit they cannot rule out.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Units per group of the transposed table: one 256-bit vector of float32 (two of float64).
LANES = 8

#: The flags of the vector arithmetic: :data:`~somvq._kernels.config.FASTMATH`'s (any
#: order, contraction into multiply-adds), never "nnan"/"ninf": the table pads with inf.
_FLAGS = ("reassoc", "contract", "arcp", "nsz")


def splat(builder, vector, value):
    """``value`` (a scalar of ``vector``'s element type) in every lane of ``vector``: an
    insert and a zero-mask shuffle, which LLVM lowers to one broadcast. The one definition
    for the IR written here and in :mod:`cpu_fused`."""
    i32 = ir.IntType(32)
    first = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(i32, 0))
    mask = ir.Constant(ir.VectorType(i32, vector.count), [0] * vector.count)
    return builder.shuffle_vector(first, ir.Constant(vector, ir.Undefined), mask)


@intrinsic
def lanes_beyond(typingctx, row, table, base, n_groups, threshold, out):
    """Squared distances from ``row`` (D,) to the ``LANES * n_groups`` units of the table
    from ``base`` on (the layout above), written to ``out[:LANES * n_groups]``; returns
    whether every one of them is above ``threshold`` (a NaN is not). ``row``, ``table`` and
    ``out`` are C-contiguous arrays of one float dtype, ``threshold`` a scalar of it; the
    caller checks the bounds. One test for the row, not a least value: a horizontal
    minimum of the lanes took longer than the distances (its chain of compares)."""
    arrays = (row, table, out)
    if not all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in arrays):
        return None
    dtype = row.dtype
    if dtype not in (types.float32, types.float64) or table.dtype != dtype or out.dtype != dtype:
        return None
    if not (isinstance(base, types.Integer) and isinstance(n_groups, types.Integer) and threshold == dtype):
        return None
    signature = types.boolean(row, table, types.int64, types.int64, dtype, out)

    def codegen(context, builder, sig, args):
        row_v, table_v, base_v, groups_v, threshold_v, out_v = args
        x = context.make_array(sig.args[0])(context, builder, row_v)
        t = context.make_array(sig.args[1])(context, builder, table_v)
        o = context.make_array(sig.args[5])(context, builder, out_v)
        i1, i64 = ir.IntType(1), ir.IntType(64)
        scalar = context.get_value_type(dtype)
        vector = ir.VectorType(scalar, LANES)
        lanes = ir.Constant(i64, LANES)
        zero = ir.Constant(vector, [0.0] * LANES)
        n_features = builder.extract_value(x.shape, 0)
        align = dtype.bitwidth // 8

        def broadcast(value):
            return splat(builder, vector, value)

        def square(start, j):
            """(x_j - table[start + j LANES : ... + LANES])^2 as a vector."""
            value = broadcast(builder.load(builder.gep(x.data, [j])))
            where = builder.gep(t.data, [builder.add(start, builder.mul(j, lanes))])
            units = builder.load(builder.bitcast(where, vector.as_pointer()), align=align)
            diff = builder.fsub(value, units, flags=_FLAGS)
            return builder.fmul(diff, diff, flags=_FLAGS)

        limit = broadcast(threshold_v)
        mask_type = ir.VectorType(i1, LANES)
        above = cgutils.alloca_once_value(builder, ir.Constant(mask_type, [1] * LANES))
        even = cgutils.alloca_once(builder, vector)
        odd = cgutils.alloca_once(builder, vector)
        one = ir.Constant(i64, 1)
        with cgutils.for_range(builder, groups_v) as group:
            start = builder.add(base_v, builder.mul(builder.mul(group.index, n_features), lanes))
            builder.store(zero, even)
            builder.store(zero, odd)
            # even and odd features in two chains of multiply-adds (half the latency)
            with cgutils.for_range(builder, builder.lshr(n_features, one)) as pair:
                j = builder.shl(pair.index, one)
                builder.store(builder.fadd(builder.load(even), square(start, j), flags=_FLAGS), even)
                j1 = builder.add(j, one)
                builder.store(builder.fadd(builder.load(odd), square(start, j1), flags=_FLAGS), odd)
            last_odd = builder.icmp_unsigned("!=", builder.and_(n_features, one), ir.Constant(i64, 0))
            with builder.if_then(last_odd):
                j = builder.sub(n_features, one)
                builder.store(builder.fadd(builder.load(even), square(start, j), flags=_FLAGS), even)
            total = builder.fadd(builder.load(even), builder.load(odd), flags=_FLAGS)
            where = builder.gep(o.data, [builder.mul(group.index, lanes)])
            builder.store(total, builder.bitcast(where, vector.as_pointer()), align=align)
            builder.store(builder.and_(builder.load(above), builder.fcmp_ordered(">", total, limit)), above)
        bits = builder.bitcast(builder.load(above), ir.IntType(LANES))
        return builder.icmp_unsigned("==", bits, ir.Constant(ir.IntType(LANES), (1 << LANES) - 1))

    return signature, codegen


def screen_error(dtype, n_features: int) -> tuple[float, float, float]:
    """``(eps, delta, floor)`` for :func:`lanes_beyond` in ``dtype`` on D features.

    With ``s`` a screened value of a row and a unit (the row's and the table's values
    already scaled by the same power of two as the exact search's differences), the exact
    search's float64 squared distance ``c`` of that pair satisfies

        s (1 - eps) - delta  <=  c  <=  s (1 + eps) + delta

    whenever ``floor < s < inf``. Why: with ``u`` the unit roundoff of ``dtype``, the
    screen rounds each difference, each square and each of the D - 1 additions (in any
    order; a fused multiply-add rounds less), so it is within ``(D + 2) u / (1 - (D + 2) u)``
    relative of the exact sum; the float64 distance is within ``(D + 2) 2^-53`` of it the
    other way; ``eps = 2 (D + 4) u`` covers both and the rounding of the bounds' own
    float64 arithmetic. Below float32's (or float64's) smallest normal ``tiny`` each
    operation may lose up to ``tiny`` more (gradual underflow, or a process that flushes
    subnormals to zero): ``delta = (3 D + 4) tiny``. A value at most ``floor = 2^20 delta``
    is not trusted (its differences may have been flushed relative to their size, beyond
    these bounds): the caller's threshold is never below the floor. An inf value (a sum
    beyond the dtype's range) means ``c`` is at least the dtype's largest finite value
    times ``1 - eps``: above any distance whose threshold, ``(c_a + delta) (1 + eps) /
    (1 - eps)``, is finite in the dtype.
    """
    info = np.finfo(dtype)
    unit = float(info.eps) / 2.0
    eps = 2.0 * (n_features + 4) * unit
    delta = (3 * n_features + 4) * float(info.tiny)
    return eps, delta, delta * 2.0**20
