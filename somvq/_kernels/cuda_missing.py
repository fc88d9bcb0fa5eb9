"""Codebook updates of the masked (missing-value) path on the GPU (mirror of :mod:`cpu_missing`).

The definitions are :func:`somvq.missing.masked_batch_update` and
:func:`somvq.missing.masked_ema_update`; the masked BMU search and statistics are the
``masked=True`` builds of :mod:`cuda_bmu`, the masked online loop the ``masked=True``
build of :mod:`cuda_online`. The statistics arrive as one (K, 2 D) float64 array
``both = [sums | observed counts]`` (smoothed by the neighbourhood in one product, as the
CPU smooths ``hstack([sums, counts])``). Deterministic: the only reduction, the per-feature
total EMA count of ``update="all"``, is a fixed-order tree in one block per feature.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numba import cuda, float64

from . import cuda_config
from .cuda_update import _launch_1d, block_tree_sum


@cache
def _build(reduce_threads: int):
    @cuda.jit
    def masked_batch_kernel(codebook, both):
        # w_kj <- s_kj / n_kj where n_kj > 0; other entries keep w_kj.
        e = cuda.grid(1)
        n_units, n_features = codebook.shape
        if e < n_units * n_features:
            k = e // n_features
            j = e - k * n_features
            count = both[k, n_features + j]
            if count > 0.0:
                codebook[k, j] = both[k, j] / count

    @cuda.jit
    def masked_ema_count_kernel(ema_count, both, decay, eps, update_all, column_empty):
        # One block per feature j: N_kj <- decay N_kj + (1 - decay) n_kj, then (update="all")
        # Laplace smoothing over the units of column j; a column whose new total is 0 (decay 0,
        # feature j unobserved in the batch) keeps N, m and w (column_empty[j] = 1).
        j = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        partial = cuda.shared.array(reduce_threads, float64)
        n_units, n_features = ema_count.shape
        if not update_all:
            for k in range(tid, n_units, reduce_threads):
                count = both[k, n_features + j]
                if count > 0.0:
                    ema_count[k, j] = decay * ema_count[k, j] + (1.0 - decay) * count
            return
        total = 0.0
        for k in range(tid, n_units, reduce_threads):
            total += decay * ema_count[k, j] + (1.0 - decay) * both[k, n_features + j]
        partial[tid] = total
        block_tree_sum(partial, tid, reduce_threads)
        total = partial[0]
        if tid == 0:
            column_empty[j] = 1 if total == 0.0 else 0
        if total == 0.0:
            return
        for k in range(tid, n_units, reduce_threads):
            count = decay * ema_count[k, j] + (1.0 - decay) * both[k, n_features + j]
            ema_count[k, j] = (count + eps) / (total + n_units * eps) * total

    @cuda.jit
    def masked_ema_sum_kernel(ema_count, ema_sum, codebook, both, decay, update_all, column_empty):
        # m_kj <- decay m_kj + (1 - decay) s_kj, w_kj = m_kj / N_kj ("written": where n_kj > 0;
        # "all": not in a column without weight).
        e = cuda.grid(1)
        n_units, n_features = codebook.shape
        if e < n_units * n_features:
            k = e // n_features
            j = e - k * n_features
            if update_all and column_empty[j] != 0:
                return
            if update_all or both[k, n_features + j] > 0.0:
                m = decay * ema_sum[k, j] + (1.0 - decay) * both[k, j]
                ema_sum[k, j] = m
                codebook[k, j] = m / ema_count[k, j]

    return {
        "batch": masked_batch_kernel,
        "ema_count": masked_ema_count_kernel,
        "ema_sum": masked_ema_sum_kernel,
    }


def _kernels():
    return _build(cuda_config.REDUCE_THREADS)


def masked_batch_update_inplace(codebook, both):
    """``w_kj <- s_kj / n_kj`` in place where ``n_kj > 0``; ``both = [s | n]`` (K, 2 D) float64."""
    grid, block = _launch_1d(codebook.shape[0] * codebook.shape[1])
    _kernels()["batch"][grid, block](codebook, both)


def masked_ema_update_inplace(ema_count, ema_sum, codebook, both, *, decay, eps, update="all"):
    """KSOM-EMA per feature in place: ``ema_count`` and ``ema_sum`` (K, D), ``both = [s | n]``."""
    if update not in ("all", "written"):
        raise ValueError(f"update={update!r} is not one of ('all', 'written').")
    update_all = update == "all"
    kernels = _kernels()
    column_empty = cuda.device_array(codebook.shape[1], dtype=np.int8)
    kernels["ema_count"][codebook.shape[1], cuda_config.REDUCE_THREADS](
        ema_count, both, float(decay), float(eps), update_all, column_empty
    )
    grid, block = _launch_1d(codebook.shape[0] * codebook.shape[1])
    kernels["ema_sum"][grid, block](
        ema_count, ema_sum, codebook, both, float(decay), update_all, column_empty
    )
