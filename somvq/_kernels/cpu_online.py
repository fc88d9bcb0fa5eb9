"""The online (sample-by-sample) KSOM update loop on the CPU.

Truly sequential: each sample's winner is searched in the codebook as the previous sample
left it. For every sample x (in the given order), with winner k* and step t:

    w_k <- w_k + eta(t) * h_t(k*, k) * (x - w_k)   for every unit k with h_t(k*, k) != 0
    t   <- t + 1

The learning rate is either a schedule (code >= 0) or, with ``lr_code == INVERSE_COUNT``,
``1 / n_k*`` where ``n_k*`` counts the winner's hits (starting from ``unit_counts``):
with the "none" neighbourhood that is MacQueen's online k-means.
"""

import numpy as np
from numba import njit, types

from ._signatures import array, data_arrays
from .config import CACHE, FASTMATH
from .cpu_neighbourhood import kernel_value, schedule_value

INVERSE_COUNT = -1

_SIGNATURES = [
    types.void(
        data,
        array(data.dtype, 2, "C"),  # codebook, updated in place
        array(types.int64, 1),  # order of the samples
        array(types.float64, 2, "C", readonly=ro_dist),  # grid distances (K, K)
        types.int64,  # neighbourhood code
        types.int64,  # radius schedule code
        array(types.float64, 1),  # neighbourhood parameters
        types.int64,  # learning-rate schedule code (or INVERSE_COUNT)
        array(types.float64, 1),  # learning-rate parameters [start, end, shrink, horizon]
        array(types.float64, 1),  # per-unit hit counts (for INVERSE_COUNT), updated
        types.int64,  # step counter at the first sample
    )
    for data in data_arrays()
    for ro_dist in (False, True)
]


@njit(_SIGNATURES, cache=CACHE, fastmath=FASTMATH)
def online_pass(
    X, codebook, order, grid_distances, nb_code, radius_code, nb_params, lr_code, lr_params,
    unit_counts, t0,
):
    n_units, n_features = codebook.shape
    r_start, r_end, r_shrink, r_horizon, hard_shrink = (
        nb_params[0], nb_params[1], nb_params[2], nb_params[3], nb_params[4],
    )
    x = np.empty(n_features, dtype=np.float64)
    for step in range(order.shape[0]):
        i = order[step]
        t = float(t0 + step)
        for j in range(n_features):
            x[j] = X[i, j]
        # Winner: direct squared distances (exact, no cancellation), lowest index on ties.
        best = np.inf
        winner = 0
        for k in range(n_units):
            acc = 0.0
            for j in range(n_features):
                diff = x[j] - codebook[k, j]
                acc += diff * diff
            if acc < best:
                best = acc
                winner = k
        if lr_code == INVERSE_COUNT:
            unit_counts[winner] += 1.0
            rate = 1.0 / unit_counts[winner]
        else:
            rate = schedule_value(lr_code, lr_params[0], lr_params[1], lr_params[2], lr_params[3], t)
        radius = schedule_value(radius_code, r_start, r_end, r_shrink, r_horizon, t)
        hard_weight = 1.0 / (1.0 + hard_shrink * t)
        for k in range(n_units):
            h = kernel_value(nb_code, grid_distances[winner, k], radius, hard_weight)
            if h != 0.0:
                step_size = rate * h
                for j in range(n_features):
                    codebook[k, j] += step_size * (x[j] - codebook[k, j])
