"""Compiled loops of the masked (missing-value) path: one pass over the rows each.

The definitions are in :mod:`somvq.missing`; these kernels are their fast forms and are
tested against tests/naive.py's references through it. NaN marks a missing entry: the
kernels test ``x != x`` (no fastmath, so the test is kept).
"""

from __future__ import annotations

from numba import njit

from .config import CACHE


@njit(cache=CACHE, nogil=True)
def masked_direct_distances(X, W, bmu, out):  # pragma: no cover - compiled
    """``out[i] = D / n_obs(i) * sum_{j observed} (X[i, j] - W[bmu[i], j])^2`` in float64."""
    n_features = X.shape[1]
    for i in range(X.shape[0]):
        k = bmu[i]
        total = 0.0
        observed = 0
        for j in range(n_features):
            x = X[i, j]
            if x == x:
                d = float(x) - float(W[k, j])
                total += d * d
                observed += 1
        out[i] = n_features / observed * total


@njit(cache=CACHE, nogil=True)
def masked_accumulate(X, bmu, counts, sums, hits):  # pragma: no cover - compiled
    """``counts[k, j] += 1`` and ``sums[k, j] += X[i, j]`` for observed entries; ``hits[k] += 1``."""
    n_features = X.shape[1]
    for i in range(X.shape[0]):
        k = bmu[i]
        hits[k] += 1.0
        for j in range(n_features):
            x = X[i, j]
            if x == x:
                counts[k, j] += 1.0
                sums[k, j] += x
