"""BMU search and per-unit statistics on the GPU (mirror of :mod:`cpu_bmu`).

One kernel does the whole E step for a tile of rows: the squared distances of
``BMU_TILE_ROWS`` rows to every unit, in shared-memory tiles of the rows and of the
codebook (``BMU_TILE_UNITS x BMU_TILE_FEATURES``), the argmin fused into it (each thread
keeps the best ``(distance, index)`` of the units it visits, then a tree reduction across
the block's unit lanes picks the lowest distance, the lowest index on ties), and,
optionally, the accumulation of the hit counts, the per-unit sums and the squared error.

Distances are direct sums of squared differences ``sum_j (x_j - w_j)^2`` in the data's
dtype (float32 stays float32): the same work as the dot product ``x.w`` of the CPU's
``||w||^2 - 2 x.w`` form, without its cancellation. Winners can differ from the CPU's
where two units are within rounding of each other.

Accumulation uses float64 atomic additions (``counts[k] += 1``, ``sums[k, j] += x_j``,
``error += d``). Counts are small integers, exact in float64 in any order, so they are
deterministic; sums and the error are added in the order the hardware schedules the
atomics, so they can differ between runs in the last bits of float64 (relative ~1e-16),
which reaches the float32 codebook only rarely. Rows are read through an index array
(``rows``), so a mini-batch of a permuted order needs no gather copy.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import cuda, float64, int64

from . import cuda_config


@lru_cache(maxsize=None)
def _build(tile_rows: int, tile_units: int, tile_features: int, dtype_name: str):
    from numba import from_dtype

    item = from_dtype(np.dtype(dtype_name))
    n_threads = tile_rows * tile_units
    pad = tile_features + 1  # +1 column: no shared-memory bank conflicts on unit rows

    @cuda.jit
    def bmu_kernel(X, rows, codebook, out_bmu, out_sq_dist, counts, sums, error, accumulate):
        tx = cuda.threadIdx.x  # unit lane
        ty = cuda.threadIdx.y  # row lane
        tid = ty * tile_units + tx
        first = cuda.blockIdx.x * tile_rows
        n_rows = rows.shape[0]
        n_units = codebook.shape[0]
        n_features = codebook.shape[1]
        x_tile = cuda.shared.array((tile_rows, pad), item)
        w_tile = cuda.shared.array((tile_units, pad), item)
        red_d = cuda.shared.array((tile_rows, tile_units), item)
        red_k = cuda.shared.array((tile_rows, tile_units), int64)

        best = item(math.inf)
        best_k = int64(-1)
        for u0 in range(0, n_units, tile_units):
            acc = item(0.0)
            for f0 in range(0, n_features, tile_features):
                for e in range(tid, tile_rows * tile_features, n_threads):
                    rr = e // tile_features
                    ff = e - rr * tile_features
                    gr = first + rr
                    gf = f0 + ff
                    if gr < n_rows and gf < n_features:
                        x_tile[rr, ff] = X[rows[gr], gf]
                    else:
                        x_tile[rr, ff] = item(0.0)
                for e in range(tid, tile_units * tile_features, n_threads):
                    uu = e // tile_features
                    ff = e - uu * tile_features
                    gu = u0 + uu
                    gf = f0 + ff
                    if gu < n_units and gf < n_features:
                        w_tile[uu, ff] = codebook[gu, gf]
                    else:
                        w_tile[uu, ff] = item(0.0)
                cuda.syncthreads()
                for ff in range(tile_features):
                    diff = x_tile[ty, ff] - w_tile[tx, ff]
                    acc += diff * diff
                cuda.syncthreads()
            k = u0 + tx
            # Units are visited in increasing order: a strict '<' keeps the lowest index.
            if k < n_units and (acc < best or best_k < 0):
                best = acc
                best_k = k
        red_d[ty, tx] = best
        red_k[ty, tx] = best_k
        cuda.syncthreads()
        step = tile_units // 2
        while step > 0:
            if tx < step:
                other_k = red_k[ty, tx + step]
                other_d = red_d[ty, tx + step]
                mine_k = red_k[ty, tx]
                mine_d = red_d[ty, tx]
                if other_k >= 0 and (
                    mine_k < 0 or other_d < mine_d or (other_d == mine_d and other_k < mine_k)
                ):
                    red_k[ty, tx] = other_k
                    red_d[ty, tx] = other_d
            cuda.syncthreads()
            step //= 2
        r = first + ty
        if r < n_rows:
            winner = red_k[ty, 0]
            if tx == 0:
                dist = float64(red_d[ty, 0])
                out_bmu[r] = winner
                out_sq_dist[r] = dist
                if accumulate:
                    cuda.atomic.add(counts, winner, 1.0)
                    cuda.atomic.add(error, 0, dist)
            if accumulate:
                src = rows[r]
                for j in range(tx, n_features, tile_units):
                    cuda.atomic.add(sums, (winner, j), float64(X[src, j]))

    return bmu_kernel


def best_matching_units(X, rows, codebook, out_bmu, out_sq_dist, counts=None, sums=None, error=None):
    """Winners of the rows ``X[rows]`` (device arrays), and optionally their statistics.

    Parameters
    ----------
    X : (n, D) float32 or float64 device array, any strides
    rows : (m,) int64 device array of row indices into ``X``
    codebook : (K, D) device array of ``X``'s dtype
    out_bmu : (m,) int64 device array, filled with the winner of ``X[rows[i]]``
    out_sq_dist : (m,) float64 device array, filled with its squared distance
    counts, sums, error : (K,), (K, D), (1,) float64 device arrays or None; hit counts,
        per-unit sums and the summed squared distance are *added* into them (atomics)
    """
    n_rows = rows.shape[0]
    if n_rows == 0:
        return
    cfg = cuda_config
    kernel = _build(cfg.BMU_TILE_ROWS, cfg.BMU_TILE_UNITS, cfg.BMU_TILE_FEATURES, np.dtype(X.dtype).name)
    accumulate = counts is not None
    if not accumulate:
        # Unused placeholders of the right types (the kernel skips the accumulation).
        counts = cuda.device_array(1, dtype=np.float64)
        sums = cuda.device_array((1, 1), dtype=np.float64)
        error = counts
    blocks = (n_rows + cfg.BMU_TILE_ROWS - 1) // cfg.BMU_TILE_ROWS
    kernel[blocks, (cfg.BMU_TILE_UNITS, cfg.BMU_TILE_ROWS)](
        X, rows, codebook, out_bmu, out_sq_dist, counts, sums, error, accumulate
    )
