"""Codebook updates on the GPU: batch KSOM and the paper's KSOM-EMA.

Mirrors of :func:`somvq.algorithms.batch_update` and :func:`somvq.algorithms.ema_update`
(which are NumPy on the CPU), in place on device arrays, plus the small element-wise
kernels the CUDA engine needs (dtype casts, a finiteness check, column statistics).
All of them are deterministic: the only reduction, the total EMA count of
``update="all"``, is a fixed-order tree in one block.
"""

from __future__ import annotations

import math
from functools import cache

from numba import cuda, float64

from . import cuda_config


@cuda.jit(device=True)
def block_tree_sum(partial, tid, size):
    """``partial[0] = sum(partial[:size])`` in a fixed tree (same bits every run).

    Called by every thread of one block after it wrote ``partial[tid]``; ``size`` (the
    block's threads) is a power of two.
    """
    cuda.syncthreads()
    half = size // 2
    while half > 0:
        if tid < half:
            partial[tid] += partial[tid + half]
        cuda.syncthreads()
        half //= 2


@cache
def _build(threads: int, reduce_threads: int):
    @cuda.jit
    def batch_kernel(codebook, counts, sums):
        e = cuda.grid(1)
        n_units, n_features = codebook.shape
        if e < n_units * n_features:
            k = e // n_features
            j = e - k * n_features
            if counts[k] > 0.0:
                codebook[k, j] = sums[k, j] / counts[k]

    @cuda.jit
    def ema_count_kernel(ema_count, counts, decay, eps, update_all):
        # One block: N <- decay N + (1 - decay) n, then (update="all") Laplace smoothing.
        tid = cuda.threadIdx.x
        partial = cuda.shared.array(reduce_threads, float64)
        n_units = ema_count.shape[0]
        total = 0.0
        for k in range(tid, n_units, reduce_threads):
            if update_all or counts[k] > 0.0:
                ema_count[k] = decay * ema_count[k] + (1.0 - decay) * counts[k]
            total += ema_count[k]
        if not update_all:
            return
        partial[tid] = total
        block_tree_sum(partial, tid, reduce_threads)
        total = partial[0]
        for k in range(tid, n_units, reduce_threads):
            ema_count[k] = (ema_count[k] + eps) / (total + n_units * eps) * total

    @cuda.jit
    def ema_sum_kernel(ema_count, ema_sum, codebook, counts, sums, decay, update_all):
        e = cuda.grid(1)
        n_units, n_features = codebook.shape
        if e < n_units * n_features:
            k = e // n_features
            j = e - k * n_features
            if update_all or counts[k] > 0.0:
                m = decay * ema_sum[k, j] + (1.0 - decay) * sums[k, j]
                ema_sum[k, j] = m
                codebook[k, j] = m / ema_count[k]

    @cuda.jit
    def cast_kernel(source, out):
        e = cuda.grid(1)
        n_rows, n_cols = out.shape
        if e < n_rows * n_cols:
            i = e // n_cols
            j = e - i * n_cols
            out[i, j] = source[i, j]

    @cuda.jit
    def zero_kernel(out):
        e = cuda.grid(1)
        n_rows, n_cols = out.shape
        if e < n_rows * n_cols:
            i = e // n_cols
            out[i, e - i * n_cols] = 0

    @cuda.jit
    def take_kernel(source, rows, out):
        e = cuda.grid(1)
        n_rows, n_cols = out.shape
        if e < n_rows * n_cols:
            i = e // n_cols
            j = e - i * n_cols
            out[i, j] = source[rows[i], j]

    @cuda.jit
    def finite_kernel(X, flag):
        e = cuda.grid(1)
        n_rows, n_cols = X.shape
        if e < n_rows * n_cols:
            i = e // n_cols
            j = e - i * n_cols
            if not math.isfinite(float64(X[i, j])):
                flag[0] = 1  # every writer writes the same value: no race on the result

    @cuda.jit
    def column_moments_kernel(X, out_mean, out_std):
        # One thread per feature, rows in order (deterministic): mean, then the
        # population standard deviation about it (two passes, as NumPy's std).
        j = cuda.grid(1)
        n_rows, n_cols = X.shape
        if j < n_cols:
            acc = 0.0
            for i in range(n_rows):
                acc += float64(X[i, j])
            mean = acc / n_rows
            acc = 0.0
            for i in range(n_rows):
                diff = float64(X[i, j]) - mean
                acc += diff * diff
            out_mean[j] = mean
            out_std[j] = math.sqrt(acc / n_rows)

    @cuda.jit
    def peaks_kernel(X, out):
        # Grid-stride over the elements in row-major order (coalesced on C-contiguous X):
        # each thread's max |x| (NaN, a missing entry, skipped), a tree max per block,
        # one value per block in out (the host takes the max of those).
        partial = cuda.shared.array(reduce_threads, float64)
        tid = cuda.threadIdx.x
        n_rows, n_cols = X.shape
        peak = 0.0
        for e in range(cuda.grid(1), n_rows * n_cols, cuda.gridsize(1)):
            i = e // n_cols
            value = abs(float64(X[i, e - i * n_cols]))
            if value > peak:  # False for NaN
                peak = value
        partial[tid] = peak
        cuda.syncthreads()
        half = reduce_threads // 2
        while half > 0:
            if tid < half and partial[tid + half] > partial[tid]:
                partial[tid] = partial[tid + half]
            cuda.syncthreads()
            half //= 2
        if tid == 0:
            out[cuda.blockIdx.x] = partial[0]

    return {
        "batch": batch_kernel,
        "ema_count": ema_count_kernel,
        "ema_sum": ema_sum_kernel,
        "cast": cast_kernel,
        "take": take_kernel,
        "zero": zero_kernel,
        "finite": finite_kernel,
        "moments": column_moments_kernel,
        "peaks": peaks_kernel,
    }


#: Blocks of the max |x| reduction (each strides over the data; the host reduces their maxima).
_PEAK_BLOCKS = 1024


def _kernels():
    return _build(cuda_config.THREADS_PER_BLOCK, cuda_config.REDUCE_THREADS)


def _launch_1d(n: int):
    threads = cuda_config.THREADS_PER_BLOCK
    return max((n + threads - 1) // threads, 1), threads


def batch_update_inplace(codebook, counts, sums):
    """``w_k <- s_k / n_k`` in place where ``n_k > 0`` (smoothed float64 statistics)."""
    grid, block = _launch_1d(codebook.shape[0] * codebook.shape[1])
    _kernels()["batch"][grid, block](codebook, counts, sums)


def ema_update_inplace(ema_count, ema_sum, codebook, counts, sums, *, decay, eps, update="all"):
    """(E1)-(E4) of the paper in place on device arrays; ``update`` "all" or "written"."""
    if update not in ("all", "written"):
        raise ValueError(f"update={update!r} is not one of ('all', 'written').")
    update_all = update == "all"
    kernels = _kernels()
    kernels["ema_count"][1, cuda_config.REDUCE_THREADS](
        ema_count, counts, float(decay), float(eps), update_all
    )
    grid, block = _launch_1d(codebook.shape[0] * codebook.shape[1])
    kernels["ema_sum"][grid, block](ema_count, ema_sum, codebook, counts, sums, float(decay), update_all)


def cast(source, out):
    """``out[...] = source`` element-wise (both 2-D device arrays, any dtypes/strides)."""
    grid, block = _launch_1d(out.shape[0] * out.shape[1])
    _kernels()["cast"][grid, block](source, out)


def zero(out):
    """``out[...] = 0`` for a contiguous 1-D or 2-D device array (no host transfer)."""
    if out.ndim == 1:
        out = out.reshape(out.shape[0], 1)
    grid, block = _launch_1d(out.shape[0] * out.shape[1])
    _kernels()["zero"][grid, block](out)


def take_rows(source, rows, out):
    """``out[i] = source[rows[i]]`` (device arrays; ``rows`` int64)."""
    grid, block = _launch_1d(out.shape[0] * out.shape[1])
    _kernels()["take"][grid, block](source, rows, out)


def all_finite(X) -> bool:
    """True when every element of the 2-D device array ``X`` is finite."""
    import numpy as np

    flag = cuda.to_device(np.zeros(1, dtype=np.int64))
    grid, block = _launch_1d(X.shape[0] * X.shape[1])
    _kernels()["finite"][grid, block](X, flag)
    return int(flag.copy_to_host()[0]) == 0


def column_moments(X):
    """Per-feature mean and population standard deviation (float64 host arrays)."""
    import numpy as np

    n_cols = X.shape[1]
    mean = cuda.device_array(n_cols, dtype=np.float64)
    std = cuda.device_array(n_cols, dtype=np.float64)
    grid, block = _launch_1d(n_cols)
    _kernels()["moments"][grid, block](X, mean, std)
    return mean.copy_to_host(), std.copy_to_host()


def largest_magnitude(X) -> float:
    """``max |x|`` of the 2-D device array ``X`` (NaN skipped; inf is inf), on the host."""
    import numpy as np

    threads = cuda_config.REDUCE_THREADS
    blocks = max(1, min(_PEAK_BLOCKS, (X.shape[0] * X.shape[1] + threads - 1) // threads))
    peaks = cuda.device_array(blocks, dtype=np.float64)
    _kernels()["peaks"][blocks, threads](X, peaks)
    return float(peaks.copy_to_host().max())
