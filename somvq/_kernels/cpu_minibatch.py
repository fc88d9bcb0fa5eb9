"""Mini-batch KSOM step on the CPU: smoothing of the batch statistics and the EMA update.

One mini-batch step is a BMU search (:mod:`cpu_bmu`) followed by ``n = H c``, ``s = H S``
and the paper's EMA update (E1)-(E4). The search of a mini-batch is short (figures in
docs/performance.md), so the rest must cost little: these kernels write into buffers the
caller owns for the whole pass (no K x D temporaries per step) and update the EMA state
and the codebook in place.

* :func:`smooth_separable_2d` - ``H = scale (F0 kron F1) + (1 - scale) I`` on a 1-D or 2-D
  rectangular grid (units in C order), skipping zero factor entries: O(K D (n0 + n1)) for a
  dense factor (classic gaussian), O(6 K D) for the paper's hard kernel (3-wide boxes).
* :func:`ema_update_inplace` - (E1)-(E4), update "all" (with Laplace smoothing) or
  "written".

Both equal :class:`somvq.neighbourhoods.SeparableSmoothing` and
:func:`somvq.algorithms.ema_update` up to rounding (tests/test_performance_paths.py).

Both are compiled **without** fast-math flags: no contraction into FMA, no reciprocal for
a division, no reassociation. Their arithmetic per element is then what is written, in
the order written, wherever LLVM inlines them; the compiled mini-batch pass
(:mod:`cpu_minibatch_step`) runs them, and column ranges of them on two threads, inside
a larger function and must give the bits of the step-by-step loop, which calls them on
their own. With ``reassoc``/``contract`` the same source gave different last bits
inlined (measured: the EMA sums). The feature loops vectorise without the flags (they
are element-wise); only the K-long sum of the counts runs scalar.
"""

import numpy as np
from numba import njit, types

from ._signatures import FLOATS, array
from .config import CACHE

_F1 = array(types.float64, 1, "C")
_F2 = array(types.float64, 2, "C")
_F2_RO = array(types.float64, 2, "C", readonly=True)


@njit(cache=CACHE, fastmath=False, nogil=True)
def factor_bands(factor, first, stop):
    """``(first, stop)``: per row ``j`` of the square ``factor``, the first and one past the
    last column of its non-zero entries (``0, 0`` for a row of zeros), written into the
    given int64 arrays. A loop over a row may run over that band alone: the entries
    outside it are zeros, which the smoothing skips anyway, so the same terms are added
    in the same order (the hard kernel's 3-wide boxes: 3 entries a row instead of n)."""
    n = factor.shape[0]
    for j in range(n):
        lo = n
        hi = 0
        for b in range(n):
            if factor[j, b] != 0.0:
                if b < lo:
                    lo = b
                hi = b + 1
        first[j] = lo if lo < hi else 0
        stop[j] = hi
    return first, stop


@njit(
    [types.void(_F1, _F2, _F2_RO, _F2_RO, types.float64, _F1, _F2, _F2)],
    cache=CACHE,
    fastmath=False,  # IEEE order: the same bits wherever it is compiled (see above)
    nogil=True,
)
def smooth_separable_2d(counts, sums, f0, f1, scale, out_counts, out_sums, tmp):
    """out = H [sums | counts] with H = scale (f0 kron f1) + (1 - scale) I.

    ``counts`` (K,), ``sums`` (K, D); ``f0`` (n0, n0), ``f1`` (n1, n1) with n0 n1 = K;
    ``tmp`` is a (K, D + 1) scratch buffer. Writes ``out_counts`` (K,), ``out_sums`` (K, D).
    The loops over a factor row run over its non-zero band (:func:`factor_bands`).
    """
    n0 = f0.shape[0]
    n1 = f1.shape[0]
    n_features = sums.shape[1]
    first0, stop0 = factor_bands(f0, np.empty(n0, np.int64), np.empty(n0, np.int64))
    first1, stop1 = factor_bands(f1, np.empty(n1, np.int64), np.empty(n1, np.int64))
    # Along the last axis: tmp[a, j] = sum_b f1[j, b] [S | c][a, b]
    for a in range(n0):
        for j in range(n1):
            row = a * n1 + j
            for d in range(n_features + 1):
                tmp[row, d] = 0.0
            for b in range(first1[j], stop1[j]):
                w = f1[j, b]
                if w != 0.0:
                    src = a * n1 + b
                    for d in range(n_features):
                        tmp[row, d] += w * sums[src, d]
                    tmp[row, n_features] += w * counts[src]
    # Along the first axis: out[i, j] = sum_a f0[i, a] tmp[a, j]
    for i in range(n0):
        for j in range(n1):
            row = i * n1 + j
            for d in range(n_features):
                out_sums[row, d] = 0.0
            acc_count = 0.0
            for a in range(first0[i], stop0[i]):
                w = f0[i, a]
                if w != 0.0:
                    src = a * n1 + j
                    for d in range(n_features):
                        out_sums[row, d] += w * tmp[src, d]
                    acc_count += w * tmp[src, n_features]
            out_counts[row] = acc_count
    if scale != 1.0:
        rest = 1.0 - scale
        for k in range(n0 * n1):
            out_counts[k] = scale * out_counts[k] + rest * counts[k]
            for d in range(n_features):
                out_sums[k, d] = scale * out_sums[k, d] + rest * sums[k, d]


@njit(
    [
        types.void(_F1, _F2, array(dtype, 2, "C"), _F1, _F2, types.float64, types.float64, types.boolean)
        for dtype in FLOATS
    ],
    cache=CACHE,
    fastmath=False,  # IEEE order: the same bits wherever it is compiled (see above)
    nogil=True,
)
def ema_update_inplace(ema_count, ema_sum, codebook, counts, sums, decay, eps, update_all):
    """The paper's EMA update (E1)-(E4) in place on ``ema_count``, ``ema_sum``, ``codebook``.

    ``counts``/``sums`` are the batch's smoothed statistics. ``update_all``: decay every
    unit and apply the Laplace smoothing of the counts (the paper's); otherwise only units
    with ``counts > 0`` change (no smoothing).
    """
    n_units, n_features = ema_sum.shape
    keep = 1.0 - decay
    if update_all:
        total = 0.0
        for k in range(n_units):
            c = decay * ema_count[k] + keep * counts[k]
            ema_count[k] = c
            total += c
        denom = total + n_units * eps
        for k in range(n_units):
            ema_count[k] = (ema_count[k] + eps) / denom * total
        for k in range(n_units):
            c = ema_count[k]
            for d in range(n_features):
                m = decay * ema_sum[k, d] + keep * sums[k, d]
                ema_sum[k, d] = m
                codebook[k, d] = m / c
        return
    for k in range(n_units):
        if counts[k] > 0.0:
            c = decay * ema_count[k] + keep * counts[k]
            ema_count[k] = c
            for d in range(n_features):
                m = decay * ema_sum[k, d] + keep * sums[k, d]
                ema_sum[k, d] = m
                codebook[k, d] = m / c
