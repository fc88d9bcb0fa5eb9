"""Compiled loops of the masked (missing-value) path: one pass over the rows each.

The definitions are in :mod:`somvq.missing`; these kernels are their fast forms and are
tested against tests/naive.py's references through it. NaN marks a missing entry: the
kernels test ``x != x`` (no fastmath, so the test is kept).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import CACHE
from .cpu_neighbourhood import kernel_value
from .cpu_online import step_rates


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


@njit(cache=CACHE, nogil=True)
def masked_online_pass(
    X,
    codebook,
    order,
    grid_distances,
    nb_code,
    radius_code,
    nb_params,
    lr_code,
    lr_params,
    unit_counts,
    t0,
):  # pragma: no cover - compiled
    """Online KSOM over ``X[order]`` on the observed features only, in place.

    As :func:`somvq._kernels.cpu_online.online_pass` (same arguments, same schedules),
    except that the winner minimises the squared distance over the row's observed
    features (the D / n_obs factor is the same for every unit of a row, so it does not
    change the winner) and ``w_kj += eta h (x_j - w_kj)`` touches observed ``j`` only.
    """
    n_units, n_features = codebook.shape
    x = np.empty(n_features, dtype=np.float64)
    observed = np.empty(n_features, dtype=np.int64)
    for step in range(order.shape[0]):
        i = order[step]
        t = float(t0 + step)
        n_obs = 0
        for j in range(n_features):
            value = X[i, j]
            if value == value:
                x[n_obs] = value
                observed[n_obs] = j
                n_obs += 1
        best = np.inf
        winner = 0
        for k in range(n_units):
            acc = 0.0
            for a in range(n_obs):
                diff = x[a] - codebook[k, observed[a]]
                acc += diff * diff
            if acc < best:
                best = acc
                winner = k
        rate, radius, hard_weight = step_rates(
            winner, t, radius_code, nb_params, lr_code, lr_params, unit_counts
        )
        for k in range(n_units):
            h = kernel_value(nb_code, grid_distances[winner, k], radius, hard_weight)
            if h != 0.0:
                step_size = rate * h
                for a in range(n_obs):
                    j = observed[a]
                    codebook[k, j] += step_size * (x[a] - codebook[k, j])
