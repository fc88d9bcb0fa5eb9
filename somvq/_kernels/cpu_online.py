"""The online (sample-by-sample) KSOM update loop on the CPU.

Truly sequential: each sample's winner is searched in the codebook as the previous sample
left it. For every sample x (in the given order), with winner k* and step t:

    w_k <- w_k + eta(t) * h_t(k*, k) * (x - w_k)   for every unit k with h_t(k*, k) != 0
    t   <- t + 1

The learning rate is either a schedule (code >= 0) or, with ``lr_code == INVERSE_COUNT``,
``1 / n_k*`` where ``n_k*`` counts the winner's hits (starting from ``unit_counts``):
with the "none" neighbourhood that is MacQueen's online k-means.
"""

import math

import numpy as np
from numba import njit, types

from ._signatures import array
from .config import CACHE, FASTMATH
from .cpu_neighbourhood import kernel_value, schedule_value
from .neighbourhood_formulas import HARD, INVERSE_COUNT, NEIGHBOUR_RADIUS, NONE

#: The data is only read, one row a step (copied): one read-only signature of any layout
#: per dtype, which every array of that dtype dispatches to (see ``_signatures``), so one
#: cached overload per dtype is loaded at first use.
_DATA = [array(dtype, 2, "A", readonly=True) for dtype in (types.float32, types.float64)]

_SIGNATURES = [
    types.void(
        data,
        array(data.dtype, 2, "C"),  # codebook, updated in place
        array(types.int64, 1),  # order of the samples
        array(types.float64, 2, "C", readonly=True),  # grid distances (K, K)
        types.int64,  # neighbourhood code
        types.int64,  # radius schedule code
        array(types.float64, 1),  # neighbourhood parameters
        types.int64,  # learning-rate schedule code (or INVERSE_COUNT)
        array(types.float64, 1),  # learning-rate parameters [start, end, shrink, horizon]
        array(types.float64, 1),  # per-unit hit counts (for INVERSE_COUNT), updated
        types.int64,  # step counter at the first sample
    )
    for data in _DATA
]


@njit(cache=CACHE, fastmath=FASTMATH, nogil=True)
def step_rates(
    winner, t, radius_code, nb_params, lr_code, lr_params, unit_counts
):  # pragma: no cover - compiled
    """``(rate, radius, hard_weight)`` of the online step ``t`` whose winner is ``winner``.

    The learning rate: the schedule ``lr_code`` at t, or (``INVERSE_COUNT``) ``1 / n_k``
    after adding the winner's hit to ``unit_counts``; the radius schedule at t; the hard
    kernel's weight ``1 / (1 + shrink t)``. ``nb_params``: ``[start, end, shrink, horizon,
    hard_shrink]`` of :meth:`somvq.neighbourhoods.Neighbourhood.kernel_parameters`. One
    definition for every online kernel (this module's and ``cpu_missing``'s).
    """
    if lr_code == INVERSE_COUNT:
        unit_counts[winner] += 1.0
        rate = 1.0 / unit_counts[winner]
    else:
        rate = schedule_value(lr_code, lr_params[0], lr_params[1], lr_params[2], lr_params[3], t)
    radius = schedule_value(radius_code, nb_params[0], nb_params[1], nb_params[2], nb_params[3], t)
    hard_weight = 1.0 / (1.0 + nb_params[4] * t)
    return rate, radius, hard_weight


@njit(_SIGNATURES, cache=CACHE, fastmath=FASTMATH)
def online_pass(
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
):
    n_units, n_features = codebook.shape
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
        rate, radius, hard_weight = step_rates(
            winner, t, radius_code, nb_params, lr_code, lr_params, unit_counts
        )
        for k in range(n_units):
            h = kernel_value(nb_code, grid_distances[winner, k], radius, hard_weight)
            if h != 0.0:
                step_size = rate * h
                for j in range(n_features):
                    codebook[k, j] += step_size * (x[j] - codebook[k, j])


# --------------------------------------------------------------------------- fast paths
#: ``online_pass_grid`` modes: every unit (as online_pass), per-axis gaussian weights,
#: or only the units inside the kernel's finite support.
MODE_DENSE, MODE_SEPARABLE_GAUSSIAN, MODE_BOX = 0, 1, 2

_GRID_SIGNATURES = [
    types.void(
        array(dtype, 2, "C", readonly=True),  # X
        array(dtype, 2, "C"),  # codebook, updated in place
        array(types.int64, 1),  # order of the samples
        array(types.float64, 2, "C", readonly=True),  # grid distances (K, K)
        types.int64,  # neighbourhood code
        types.int64,  # radius schedule code
        array(types.float64, 1),  # neighbourhood parameters
        types.int64,  # learning-rate schedule code (or INVERSE_COUNT)
        array(types.float64, 1),  # learning-rate parameters
        array(types.float64, 1),  # per-unit hit counts, updated
        types.int64,  # step counter at the first sample
        types.int64,  # mode (MODE_*)
        array(types.int64, 1),  # grid shape (n0, n1); a 1-D grid is (1, n)
        array(types.int64, 1),  # periodic flags (0/1) per axis
    )
    for dtype in (types.float32, types.float64)
]


@njit(_GRID_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def online_pass_grid(
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
    mode,
    shape,
    periodic,
):
    """:func:`online_pass` on a 1-D/2-D rectangular grid (units in C order), faster.

    ``MODE_SEPARABLE_GAUSSIAN``: the classic gaussian factorises per axis,
    ``exp(-(a^2 + b^2) / 2r^2) = exp(-a^2 / 2r^2) exp(-b^2 / 2r^2)``: n0 + n1 ``exp`` per
    sample instead of K (equal up to rounding). ``MODE_BOX``: kernels with finite support
    ("hard": d < 1.5; "bubble", "cut_gaussian": d <= r; "triangle": d < r) are zero outside
    the box of half-width ``floor(support)`` around the winner, so only units in the box are
    visited, with exactly the weights of :func:`online_pass` (same bits; the distances come
    from the index offsets, ``grid_distances`` is not read). ``MODE_DENSE``:
    every unit, as :func:`online_pass`.
    """
    n_units, n_features = codebook.shape
    n0, n1 = shape[0], shape[1]
    x = np.empty(n_features, dtype=np.float64)
    w0 = np.empty(n0, dtype=np.float64)
    w1 = np.empty(n1, dtype=np.float64)
    for step in range(order.shape[0]):
        i = order[step]
        t = float(t0 + step)
        for j in range(n_features):
            x[j] = X[i, j]
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
        rate, radius, hard_weight = step_rates(
            winner, t, radius_code, nb_params, lr_code, lr_params, unit_counts
        )
        a_win = winner // n1
        b_win = winner - a_win * n1
        if mode == MODE_SEPARABLE_GAUSSIAN:
            scale = -0.5 / (radius * radius)
            for a in range(n0):
                da = abs(a - a_win)
                if periodic[0] != 0 and n0 - da < da:
                    da = n0 - da
                w0[a] = 1.0 if da == 0 else math.exp(float(da * da) * scale)
            for b in range(n1):
                db = abs(b - b_win)
                if periodic[1] != 0 and n1 - db < db:
                    db = n1 - db
                w1[b] = 1.0 if db == 0 else math.exp(float(db * db) * scale)
            for a in range(n0):
                wa = rate * w0[a]
                if wa == 0.0:
                    continue
                for b in range(n1):
                    step_size = wa * w1[b]
                    if step_size != 0.0:
                        k = a * n1 + b
                        for j in range(n_features):
                            codebook[k, j] += step_size * (x[j] - codebook[k, j])
            continue
        if mode == MODE_BOX:
            support = NEIGHBOUR_RADIUS if nb_code == HARD else radius
            half = int(math.floor(support)) if support < n0 + n1 else n0 + n1
            if nb_code == NONE:
                half = 0
            lo0, hi0 = a_win - half, a_win + half
            lo1, hi1 = b_win - half, b_win + half
            if hi0 - lo0 + 1 >= n0:
                lo0, hi0 = 0, n0 - 1
            elif periodic[0] == 0:
                lo0, hi0 = max(lo0, 0), min(hi0, n0 - 1)
            if hi1 - lo1 + 1 >= n1:
                lo1, hi1 = 0, n1 - 1
            elif periodic[1] == 0:
                lo1, hi1 = max(lo1, 0), min(hi1, n1 - 1)
            for aa in range(lo0, hi0 + 1):
                a = aa % n0
                da = abs(a - a_win)
                if periodic[0] != 0 and n0 - da < da:
                    da = n0 - da
                for bb in range(lo1, hi1 + 1):
                    b = bb % n1
                    k = a * n1 + b
                    db = abs(b - b_win)
                    if periodic[1] != 0 and n1 - db < db:
                        db = n1 - db
                    # The grid distance from the index offsets: the same bits as
                    # Grid.distances (exact integers, one correctly rounded sqrt), so no
                    # K x K matrix is needed (grid_distances is not read in this mode).
                    h = kernel_value(nb_code, math.sqrt(float(da * da + db * db)), radius, hard_weight)
                    if h != 0.0:
                        step_size = rate * h
                        for j in range(n_features):
                            codebook[k, j] += step_size * (x[j] - codebook[k, j])
            continue
        for k in range(n_units):
            h = kernel_value(nb_code, grid_distances[winner, k], radius, hard_weight)
            if h != 0.0:
                step_size = rate * h
                for j in range(n_features):
                    codebook[k, j] += step_size * (x[j] - codebook[k, j])
