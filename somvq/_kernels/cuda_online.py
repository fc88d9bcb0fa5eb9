"""The online (sample-by-sample) KSOM update loop on the GPU (mirror of :mod:`cpu_online`).

Online KSOM is sequential: each sample's winner is searched in the codebook as the
previous sample left it. One block runs the loop over the samples; within a sample its
threads search the units in parallel (each thread visits units ``tid, tid + T, ...``, a
tree reduction picks the lowest distance, the lowest index on ties), thread 0 updates the
winner's hit count and the rates, and all threads update the ``K x D`` elements in
parallel. Block barriers separate the phases, so every sample sees the previous update;
a grid-wide synchronisation per sample would cost more than it gains for the map sizes
SOMs use. Samples go in launches of ``ONLINE_CHUNK`` (the order of the updates does not
depend on it).

Arithmetic follows the CPU twin: distances and updates in float64, the codebook stored in
its own dtype, ``h`` and the rates from :mod:`cuda_neighbourhood` (mirrors of
:mod:`cpu_neighbourhood`). The loop is deterministic (no atomics).

``layers=`` (layered maps with tanimoto layers and/or NaN over several layers; the mirror
of :func:`somvq._kernels.cpu_layered.layered_online_pass`): the winner minimises
``sum_j f_j (x_j - v_kj)^2`` over the sample's observed columns of positive-weight layers,
``v_kj`` the codebook thresholded on tanimoto columns, ``f_j`` the float64 factor
``D_g / n_obs,g`` of the column's group (precomputed per sample by
:func:`somvq._kernels.cuda_bmu.layer_factors`), summed in column order as the CPU kernel;
the update is the masked one (observed entries of the continuous codebook).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from numba import cuda, float64, int64

from . import cuda_config
from .cuda_neighbourhood import kernel_value, schedule_value
from .neighbourhood_formulas import INVERSE_COUNT


@cache
def _build(threads: int, masked: bool = False, layered: bool = False):
    # masked (missing="ignore", mirror of cpu_missing.masked_online_pass): the winner
    # minimises the squared distance over the sample's observed features (the D / n_obs
    # factor is the same for every unit) and the update touches observed features only.
    # layered: group, level, high and factor are read (unused placeholders otherwise).
    @cuda.jit
    def online_kernel(
        X,
        codebook,
        order,
        start,
        stop,
        grid_distances,
        nb_code,
        radius_code,
        nb_params,
        lr_code,
        lr_params,
        unit_counts,
        t0,
        group,
        level,
        high,
        factor,
    ):
        tid = cuda.threadIdx.x
        red_d = cuda.shared.array(threads, float64)
        red_k = cuda.shared.array(threads, int64)
        scalars = cuda.shared.array(3, float64)  # rate, radius, hard weight
        n_units = codebook.shape[0]
        n_features = codebook.shape[1]
        size = n_units * n_features
        for step in range(start, stop):
            i = order[step]
            t = float64(t0 + step)
            best = math.inf
            best_k = int64(-1)
            for k in range(tid, n_units, threads):
                acc = 0.0
                for j in range(n_features):
                    if layered:
                        g = group[j]
                        value = float64(X[i, j])
                        if g >= 0 and value == value:
                            v = float64(codebook[k, j])
                            cut = level[j]
                            if cut == cut:  # a tanimoto column: the thresholded search value
                                v = high[j] if v > cut else 0.0
                            diff = value - v
                            acc += factor[step, g] * (diff * diff)
                        continue
                    diff = float64(X[i, j]) - float64(codebook[k, j])
                    if masked:
                        if diff == diff:  # NaN in x: a missing entry
                            acc += diff * diff
                    else:
                        acc += diff * diff
                if acc < best or best_k < 0:
                    best = acc
                    best_k = k
            red_d[tid] = best
            red_k[tid] = best_k
            cuda.syncthreads()
            half = threads // 2
            while half > 0:
                if tid < half:
                    other_k = red_k[tid + half]
                    other_d = red_d[tid + half]
                    if other_k >= 0 and (
                        red_k[tid] < 0
                        or other_d < red_d[tid]
                        or (other_d == red_d[tid] and other_k < red_k[tid])
                    ):
                        red_k[tid] = other_k
                        red_d[tid] = other_d
                cuda.syncthreads()
                half //= 2
            if tid == 0:
                winner = red_k[0]
                if lr_code == INVERSE_COUNT:
                    unit_counts[winner] += 1.0
                    scalars[0] = 1.0 / unit_counts[winner]
                else:
                    scalars[0] = schedule_value(
                        lr_code, lr_params[0], lr_params[1], lr_params[2], lr_params[3], t
                    )
                scalars[1] = schedule_value(
                    radius_code, nb_params[0], nb_params[1], nb_params[2], nb_params[3], t
                )
                scalars[2] = 1.0 / (1.0 + nb_params[4] * t)
            cuda.syncthreads()
            winner = red_k[0]
            rate = scalars[0]
            radius = scalars[1]
            hard_weight = scalars[2]
            for e in range(tid, size, threads):
                k = e // n_features
                j = e - k * n_features
                h = kernel_value(nb_code, grid_distances[winner, k], radius, hard_weight)
                if h != 0.0:
                    if masked or layered:
                        value = float64(X[i, j])
                        if value == value:
                            codebook[k, j] += rate * h * (value - float64(codebook[k, j]))
                    else:
                        codebook[k, j] += rate * h * (float64(X[i, j]) - float64(codebook[k, j]))
            cuda.syncthreads()

    return online_kernel


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
    masked=False,
    layers=None,
):
    """Online KSOM over ``X[order]`` on device arrays; ``codebook``/``unit_counts`` in place.

    Same arguments as :func:`somvq._kernels.cpu_online.online_pass`, as device arrays
    (``order`` int64, ``grid_distances`` (K, K) float64, parameter vectors float64).
    ``masked``: ``missing="ignore"``, as :func:`somvq._kernels.cpu_missing.masked_online_pass`
    (NaN marks a missing entry). ``layers``: None, or the device arrays ``(group, level,
    high, factor)`` of a layered search (:meth:`somvq.layers.ScaledLayers.kernel_arrays`,
    and ``factor`` (n, G) float64: row ``s`` for the sample ``order[s]``).
    """
    cfg = cuda_config
    cfg.check()
    kernel = _build(cfg.ONLINE_THREADS, masked, layers is not None)
    if layers is None:  # unused placeholders of the right types
        none = cuda.device_array(1, dtype=np.float64)
        layers = (
            cuda.device_array(1, dtype=np.int64),
            none,
            none,
            cuda.device_array((1, 1), dtype=np.float64),
        )
    n = order.shape[0]
    for start in range(0, n, cfg.ONLINE_CHUNK):
        stop = min(start + cfg.ONLINE_CHUNK, n)
        kernel[1, cfg.ONLINE_THREADS](
            X,
            codebook,
            order,
            start,
            stop,
            grid_distances,
            int(nb_code),
            int(radius_code),
            nb_params,
            int(lr_code),
            lr_params,
            unit_counts,
            int(t0),
            *layers,
        )
