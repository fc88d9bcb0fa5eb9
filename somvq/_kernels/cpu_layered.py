"""Compiled online pass of layered maps (:mod:`somvq.layers`): tanimoto layers and/or NaN.

The definition is :func:`somvq.layers.layered_online_pass`'s docstring; this is its fast
form, tested against tests/naive.py's references through it. NaN marks a missing entry
(``x != x``; no fastmath, so the test is kept).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import CACHE
from .cpu_neighbourhood import kernel_value
from .cpu_online import step_rates


@njit(cache=CACHE, nogil=True)
def layered_online_pass(
    X,
    codebook,
    order,
    group,
    group_size,
    level,
    high,
    grid_distances,
    nb_code,
    radius_code,
    nb_params,
    lr_code,
    lr_params,
    unit_counts,
    t0,
):  # pragma: no cover - compiled
    """Online KSOM over ``X[order]`` (scaled units) with the layered search, in place.

    The winner minimises ``sum_g (group_size[g] / n_obs,g) sum_{j in g observed}
    (x_j - v_kj)^2`` where ``v_kj`` is ``codebook[k, j]``, or for a thresholded (tanimoto)
    column (``level[j]`` not NaN) ``high[j]`` if ``codebook[k, j] > level[j]`` else 0;
    columns with ``group[j] < 0`` (weight 0) take no part. The update is Kohonen's rule
    on the observed entries: ``w_kj += eta h (x_j - w_kj)`` (the schedules of
    :func:`somvq._kernels.cpu_online.online_pass`).
    """
    n_units, n_features = codebook.shape
    n_groups = group_size.shape[0]
    x = np.empty(n_features, dtype=np.float64)
    observed = np.empty(n_features, dtype=np.int64)
    n_obs_group = np.empty(n_groups, dtype=np.float64)
    factor = np.empty(n_features, dtype=np.float64)
    for step in range(order.shape[0]):
        i = order[step]
        t = float(t0 + step)
        n_obs = 0
        for g in range(n_groups):
            n_obs_group[g] = 0.0
        for j in range(n_features):
            value = X[i, j]
            if value == value:
                x[n_obs] = value
                observed[n_obs] = j
                n_obs += 1
                if group[j] >= 0:
                    n_obs_group[group[j]] += 1.0
        for a in range(n_obs):
            g = group[observed[a]]
            factor[a] = group_size[g] / n_obs_group[g] if g >= 0 else 0.0
        best = np.inf
        winner = 0
        for k in range(n_units):
            acc = 0.0
            for a in range(n_obs):
                j = observed[a]
                if group[j] < 0:
                    continue
                v = float(codebook[k, j])
                cut = level[j]
                if cut == cut:
                    v = high[j] if v > cut else 0.0
                diff = x[a] - v
                acc += factor[a] * (diff * diff)
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
