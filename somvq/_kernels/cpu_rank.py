"""Compiled passes of the rank measures: trustworthiness and neighbourhood preservation.

:func:`somvq.metrics.trustworthiness` and :func:`somvq.metrics.neighbourhood_preservation`
rank all N rows around each query row in two spaces: the input space (distances between
rows) and the map (grid distances between the rows' BMUs). The map has only K distinct
positions, so its side is computed per unit from the rows grouped by BMU
(:func:`map_nearest_rows`, :func:`map_ranks`). The input side streams tiles of
``Xc[queries] @ Xc[columns]^T`` (one GEMM per tile, in the rows' reference frame) through
:func:`count_closer` or :func:`nearest_rows`; no N x N array is formed.

Exactness: an input-space distance is *defined* as the direct float64 sum
``sum_j ((x_ij - x_lj) * scale)^2`` (:func:`direct`, a function of the pair alone, so equal
pairs tie exactly). A tile entry ``s = ||x'_i||^2 + ||x'_l||^2 - 2 x'_i.x'_l`` only decides
a comparison when it is certain: within ``e = kappa (||x'_i|| + ||x'_l||)^2`` of the exact
value (the bound of :func:`somvq.distances.squared_distances`, doubled) and the direct sum
within a relative ``delta`` of it; otherwise the pair's direct distance is computed and
compared, ties broken by the lower row index. Results therefore do not depend on the
tiles, the BLAS or the thread count.

The passes are serial and release the GIL: the caller runs query blocks on a small thread
pool with single-threaded BLAS (a multi-threaded GEMM on a busy 2-core machine waited for
its second thread: 1.2-1.9 GFLOPS against 19-26 single-threaded, measured at load 10).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import CACHE


@njit(cache=CACHE, nogil=True)
def direct(X, i, l, scale):
    """``sum_j ((X[i, j] - X[l, j]) * scale)^2`` in float64, in a fixed order."""
    total = 0.0
    for j in range(X.shape[1]):
        diff = (X[i, j] - X[l, j]) * scale
        total += diff * diff
    return total


@njit(cache=CACHE, nogil=True)
def direct_pairs(X, rows, cols, scale, out):
    """``out[b, m] = direct(X, rows[b], cols[b, m], scale)``."""
    for b in range(cols.shape[0]):
        for m in range(cols.shape[1]):
            out[b, m] = direct(X, rows[b], cols[b, m], scale)


@njit(cache=CACHE, nogil=True)
def count_closer(dot, queries, col_start, x2, xn, X, scale, kappa, delta, xn_max, v, nbr, counts):
    """Add, per query b and threshold m, the columns l != queries[b] of this tile closer than nbr[b, m].

    "Closer": ``direct(l) < v[b, m]``, or equal with ``l < nbr[b, m]`` (``v[b, m]`` is
    ``direct(nbr[b, m])``). ``dot[b, c] = x'_{queries[b]} . x'_{col_start + c}``. ``v[b]``
    must be ascending (only the multiset of the counts matters to the measures).

    The common case has no unpredictable branch (a branchy version was 13x slower): ``p``,
    the number of thresholds at or below the tile entry ``s``, is a sum of comparisons,
    and the entry is added to ``hist[p]``: it is closer than every threshold from the p-th
    on. That is certain when no threshold lies within ``E`` of ``s``, ``E`` covering the
    entry's error bound and the direct sum's rounding; otherwise (rare), and for the query's
    own column, the entry is decided threshold by threshold, by the direct distance where
    uncertain.
    """
    n_queries, n_cols = dot.shape
    k = v.shape[1]
    vpad = np.empty(k + 2)
    hist = np.zeros(k + 1, dtype=np.int64)
    for b in range(n_queries):
        i = queries[b]
        xi2 = x2[i]
        e = kappa * (xn[i] + xn_max) ** 2
        vpad[0] = -np.inf
        vpad[1 : k + 1] = v[b]
        vpad[k + 1] = np.inf
        margin = 2.0 * e + 4.0 * delta * (v[b, k - 1] + e)
        hist[:] = 0
        own = i - col_start  # the query's own column, if in this tile
        for c in range(n_cols):
            s = x2[col_start + c] - 2.0 * dot[b, c] + xi2
            p = 0
            for m in range(k):
                p += vpad[m + 1] <= s
            if (s - vpad[p] <= margin) | (vpad[p + 1] - s <= margin) | (c == own):
                if c == own:
                    continue
                l = col_start + c
                d = -1.0
                for m in range(k):
                    vm = v[b, m]
                    if vm - s > margin:
                        counts[b, m] += 1
                    elif s - vm <= margin:
                        if d < 0.0:
                            d = direct(X, i, l, scale)
                        if d < vm or (d == vm and l < nbr[b, m]):
                            counts[b, m] += 1
                continue
            hist[p] += 1
        acc = 0
        for m in range(k):
            acc += hist[m]
            counts[b, m] += acc


@njit(cache=CACHE, nogil=True)
def nearest_rows(dot, queries, col_start, x2, xn, X, scale, kappa, delta, xn_max, best_d, best_j):
    """Merge this tile's columns into each query's k nearest rows by (direct distance, row).

    ``best_d[b]`` (ascending) and ``best_j[b]`` hold the k best so far (``inf`` and a row
    index past the data to start); the query's own row is never taken.
    """
    n_queries, n_cols = dot.shape
    k = best_d.shape[1]
    for b in range(n_queries):
        i = queries[b]
        xi2 = x2[i]
        e_max = kappa * (xn[i] + xn_max) ** 2
        for c in range(n_cols):
            l = col_start + c
            if l == i:
                continue
            kth = best_d[b, k - 1]
            s = x2[l] - 2.0 * dot[b, c] + xi2
            if (s - 2.0 * e_max) * (1.0 - 2.0 * delta) > kth:
                continue
            d = direct(X, i, l, scale)
            if d < kth or (d == kth and l < best_j[b, k - 1]):
                p = k - 1
                while p > 0 and (d < best_d[b, p - 1] or (d == best_d[b, p - 1] and l < best_j[b, p - 1])):
                    best_d[b, p] = best_d[b, p - 1]
                    best_j[b, p] = best_j[b, p - 1]
                    p -= 1
                best_d[b, p] = d
                best_j[b, p] = l


@njit(cache=CACHE, nogil=True)
def map_nearest_rows(g, order, unit_start, rows_by_unit, need, out):
    """The first ``need`` rows by (g[bmu(row)], row): a unit's nearest rows on the map.

    ``g`` holds the grid distance from one unit to every unit, ``order`` the units sorted
    by it; ``rows_by_unit[unit_start[w]:unit_start[w + 1]]`` are unit w's rows, ascending.
    """
    filled = 0
    p = 0
    n_units = order.shape[0]
    while filled < need and p < n_units:
        q = p
        level = g[order[p]]
        while q < n_units and g[order[q]] == level:
            q += 1
        want = need - filled
        buf = np.empty((q - p) * want, dtype=np.int64)
        n = 0
        for t in range(p, q):
            w = order[t]
            a = unit_start[w]
            z = min(unit_start[w + 1], a + want)
            for r in range(a, z):
                buf[n] = rows_by_unit[r]
                n += 1
        chosen = np.sort(buf[:n])
        take = min(n, want)
        out[filled : filled + take] = chosen[:take]
        filled += take
        p = q
    return filled


@njit(cache=CACHE, nogil=True)
def map_ranks(queries, g_rows, nbr, bmus, unit_start, rows_by_unit, out):
    """1-based rank of row nbr[b, m] around queries[b] on the map, by (grid distance, row), self excluded.

    ``g_rows[b]`` holds the grid distance from the query's BMU to every unit.
    """
    n_queries, k = nbr.shape
    n_units = g_rows.shape[1]
    for b in range(n_queries):
        i = queries[b]
        g = g_rows[b]
        gi = g[bmus[i]]
        for m in range(k):
            j = nbr[b, m]
            gj = g[bmus[j]]
            before = 0
            for w in range(n_units):
                gw = g[w]
                if gw < gj:
                    before += unit_start[w + 1] - unit_start[w]
                elif gw == gj:
                    before += np.searchsorted(rows_by_unit[unit_start[w] : unit_start[w + 1]], j)
            if gi < gj or (gi == gj and i < j):
                before -= 1  # the query itself
            out[b, m] = before + 1
