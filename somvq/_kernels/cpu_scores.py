"""Ranking one row of expanded-form scores: its lowest value, and who lies within a limit.

The exact searches (:func:`somvq._kernels.cpu_bmu.rank_block`, the masked search's
``_rank_rows``) need, per row of K scores, the lowest score ``m`` and the units whose
score is at most a limit ``m + 2 e``: with exactly one, it is the winner; with more, they
are re-ranked by direct distances. Both passes here are branch-free loops that LLVM
vectorises on AVX2 as well as AVX-512, in the scores' own width (8 float32 lanes a
256-bit vector):

* :func:`lowest` reads the scores as unsigned integers. IEEE-754 patterns order the
  non-negative values as the integers do, and the negative ones (sign bit set, so above
  every non-negative pattern) in reverse. So the largest pattern is the lowest value when
  it has the sign bit (some score is negative, or -0.0), and otherwise the smallest pattern
  is. Two integer reductions (``vpmaxud``/``vpminud``). A float ``min`` does not vectorise
  in Numba (its NaN handling), and the signed-key form used before (``b ^ ((b >> 31) &
  0x7fff...)``) is promoted to 64-bit integers by Numba's typing, whose ``min`` AVX2 can
  only emulate (4 lanes, compare and blend): 1.5x slower on K = 512, float32. Order is the
  same as that form's: -0.0 below +0.0, a negative NaN below everything (the caller
  treats a non-finite lowest score as "compare every unit"), a positive NaN above.
* :func:`within` counts the scores ``<= limit`` and sums their indices, both in the
  scores' dtype (a float add reduction vectorises under ``reassoc``; an integer index
  select did not: 2.9x slower). The count is exact below ``2^24`` units in float32; when
  it is one, the sum has one non-zero term, so it *is* that unit's index. When the count
  is one the unit is also the first index of the lowest score (the lowest score is
  within any limit above it), i.e. NumPy's ``argmin``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload

from .config import CACHE, FASTMATH

#: :func:`within` returns exact indices below this many units (float32's 2^24).
EXACT_INDICES = 1 << 24


def _unsigned(row):  # pragma: no cover - replaced by the overload inside compiled code
    raise NotImplementedError


@overload(_unsigned)
def _unsigned_overload(row):
    """``row.view(uint32)`` for float32 rows, ``row.view(uint64)`` for float64 ones."""
    target = np.uint32 if row.dtype.bitwidth == 32 else np.uint64

    def impl(row):
        return row.view(target)

    return impl


@intrinsic
def _as_float(typingctx, pattern):
    """The float whose IEEE-754 pattern is ``pattern`` (uint32 -> float32, uint64 -> float64)."""
    if pattern not in (types.uint32, types.uint64):
        return None
    result = types.float32 if pattern.bitwidth == 32 else types.float64

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(result))

    return result(pattern), codegen


@njit(cache=CACHE, fastmath=FASTMATH, nogil=True)
def lowest(row):
    """The lowest value of ``row`` (float32 or float64, C-contiguous, non-empty).

    -0.0 counts below +0.0 and a NaN with the sign bit below every value; the caller
    checks the result for finiteness (see the module docstring).
    """
    bits = _unsigned(row)
    hi = bits[0]
    lo = bits[0]
    for k in range(bits.shape[0]):
        b = bits[k]
        hi = max(hi, b)
        lo = min(lo, b)
    top = _as_float(hi)
    if np.signbit(top):
        return top
    return _as_float(lo)


@njit(cache=CACHE, fastmath=FASTMATH, nogil=True)
def within(row, limit, indices):
    """(count, index sum) of the entries of ``row`` that are ``<= limit``, in ``row``'s dtype.

    ``indices`` holds ``0, 1, ..., len(row)`` in ``row``'s dtype. The index sum is the
    index of the only such entry when the count is one (exact below
    :data:`EXACT_INDICES` units).
    """
    zero = indices[0]
    one = indices[1]
    count = zero
    total = zero
    for k in range(row.shape[0]):
        near = row[k] <= limit
        count += one if near else zero
        total += indices[k] if near else zero
    return count, total


@njit(cache=CACHE, fastmath=FASTMATH, nogil=True)
def sole_or_first(row, best, count, index):
    """The first index of ``row`` equal to ``best``: :func:`within`'s ``index`` when its
    ``count`` is one (below :data:`EXACT_INDICES` units), else a scan (:func:`first_equal`)."""
    if count == 1 and row.shape[0] < EXACT_INDICES:
        return int(index)
    return first_equal(row, best)


@njit(cache=CACHE, fastmath=FASTMATH, nogil=True)
def first_equal(row, value):
    """The first index of ``row`` equal to ``value``, ``len(row)`` when none is (a NaN)."""
    for k in range(row.shape[0]):
        if row[k] == value:
            return k
    return row.shape[0]
