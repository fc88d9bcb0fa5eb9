"""BMU search and per-unit statistics on the GPU (mirror of :mod:`cpu_bmu`).

One kernel does the whole E step for a tile of rows: the squared distances of
``BMU_TILE_ROWS`` rows to every unit, in shared-memory tiles of the rows and of the
codebook (``BMU_TILE_UNITS x BMU_TILE_FEATURES``), the argmin fused into it (each thread
keeps the best ``(distance, index)`` of the units it visits, then a tree reduction across
the block's unit lanes picks the lowest distance, the lowest index on ties), and,
optionally, the accumulation of the hit counts, the per-unit sums and the squared error.

Distances are direct sums of squared differences ``sum_j (x_j - w_j)^2`` in the data's
dtype (float32 stays float32): the same work as the dot product ``x.w`` of the CPU's
``||w||^2 - 2 x.w`` form, without its cancellation, so no reference frame is needed. Each
thread keeps its best *and second-best* distance, and a second kernel
(:func:`_build_finish`, one thread per row) makes the result exact, as on the CPU
(:mod:`somvq.distances`): the float32 sum is within ``kappa d`` of the exact distance
``d`` (``kappa = 1.25 (D + 4) u``), so a row whose two best are closer than that bound
allows, or whose best overflowed (values ~1e20 in float32), is re-ranked by direct
float64 distances over all units (lowest index on ties); and every row's reported squared
distance is computed directly in float64. Winners equal the float64 brute-force argmin, as
the CPU's do. The statistics are added after that correction (the finishing kernel's
atomics, or the deterministic reduction).

Accumulation uses float64 atomic additions (``counts[k] += 1``, ``sums[k, j] += x_j``,
``error += d``). Counts are small integers, exact in float64 in any order, so they are
deterministic; sums and the error are added in the order the hardware schedules the
atomics, so they can differ between runs in the last bits of float64 (relative ~1e-16),
which reaches the float32 codebook only rarely. With
``cuda_config.DETERMINISTIC_STATISTICS = True`` a deterministic segmented reduction is
used instead (:func:`segmented_statistics`): the rows are sorted stably by winner (a
chunked counting sort) and each unit's rows are summed in row order, which gives the same
bits on every run, and the bits of the CPU's in-order accumulation for the same winners.
Rows are read through an index array (``rows``), so a mini-batch of a permuted order
needs no gather copy.

``masked=True`` builds (``missing="ignore"``, :mod:`somvq.missing`): NaN entries add
nothing to a row's sums; the finishing kernel scales its float64 distances by D / n_obs
(also when re-ranking) and the statistics become hits (K,) and ``[sums | observed counts]``
(K, 2 D) over observed entries. The bound is unchanged (skipped terms are exact zeros).

``layers=(group, group_size)`` (layered maps with ``missing="ignore"``,
:func:`somvq.layers.layered_masked_assign` is the definition): columns belong to groups
(the layers of positive weight, ``group[j] = -1`` for the others) and a row's distance is
``sum_g (D_g / n_obs,g) sum_{j in g observed} (x_j - w_j)^2``. A first kernel
(:func:`_build_layer_factors`, one thread per row) writes the float64 factors
``D_g / n_obs,g`` (m, G); the tiled kernel adds ``f_j (x_j - w_j)^2`` with ``f_j`` the
factor of column j's group rounded to the data's dtype (two more roundings a term: the
bound is :func:`direct_form_error` of ``D + 2`` terms), and the finishing kernel re-ranks
and reports with the float64 factors, group by group in column order, as the CPU does.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from numba import cuda, float64, int64

from . import cuda_config
from .cuda_update import block_tree_sum


@cache
def _build(
    tile_rows: int,
    tile_units: int,
    tile_features: int,
    dtype_name: str,
    masked: bool = False,
    layered: bool = False,
):
    # masked (missing="ignore", somvq.missing): NaN entries of X add nothing to a row's
    # sums, which are then sum_{j observed} (x_j - w_j)^2 (the D / n_obs factor is the
    # same for every unit of a row: the finishing kernel applies it). layered (masked
    # too): each term weighted by its column's group factor, factor[r, group[j]] (0 for
    # group -1); group and factor are unused placeholders otherwise.
    from numba import from_dtype

    item = from_dtype(np.dtype(dtype_name))
    n_threads = tile_rows * tile_units
    pad = tile_features + 1  # +1 column: no shared-memory bank conflicts on unit rows

    @cuda.jit
    def bmu_kernel(X, rows, codebook, out_bmu, out_best, out_second, group, factor):
        tx = cuda.threadIdx.x  # unit lane
        ty = cuda.threadIdx.y  # row lane
        tid = ty * tile_units + tx
        first = cuda.blockIdx.x * tile_rows
        n_rows = rows.shape[0]
        n_units = codebook.shape[0]
        n_features = codebook.shape[1]
        x_tile = cuda.shared.array((tile_rows, pad), item)
        w_tile = cuda.shared.array((tile_units, pad), item)
        f_tile = cuda.shared.array((tile_rows, pad), item)
        red_d = cuda.shared.array((tile_rows, tile_units), item)
        red_s = cuda.shared.array((tile_rows, tile_units), item)
        red_k = cuda.shared.array((tile_rows, tile_units), int64)

        best = item(math.inf)
        second = item(math.inf)
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
                        if layered:
                            g = group[gf]
                            f_tile[rr, ff] = item(factor[gr, g]) if g >= 0 else item(0.0)
                    else:
                        x_tile[rr, ff] = item(0.0)
                        if layered:
                            f_tile[rr, ff] = item(0.0)
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
                    if layered:
                        if diff == diff:  # NaN in x: a missing entry
                            acc += f_tile[ty, ff] * (diff * diff)
                    elif masked:
                        if diff == diff:  # NaN in x: a missing entry
                            acc += diff * diff
                    else:
                        acc += diff * diff
                cuda.syncthreads()
            k = u0 + tx
            # Units are visited in increasing order: a strict '<' keeps the lowest index.
            if k < n_units:
                if acc < best or best_k < 0:
                    second = best
                    best = acc
                    best_k = k
                elif acc < second:
                    second = acc
        red_d[ty, tx] = best
        red_s[ty, tx] = second
        red_k[ty, tx] = best_k
        cuda.syncthreads()
        step = tile_units // 2
        while step > 0:
            if tx < step:
                other_k = red_k[ty, tx + step]
                other_d = red_d[ty, tx + step]
                other_s = red_s[ty, tx + step]
                mine_k = red_k[ty, tx]
                mine_d = red_d[ty, tx]
                mine_s = red_s[ty, tx]
                if other_k >= 0:
                    if mine_k < 0 or other_d < mine_d or (other_d == mine_d and other_k < mine_k):
                        # the other pair wins; the runner-up is the best of the rest
                        red_k[ty, tx] = other_k
                        red_d[ty, tx] = other_d
                        red_s[ty, tx] = min(mine_d, other_s)
                    else:
                        red_s[ty, tx] = min(mine_s, other_d)
            cuda.syncthreads()
            step //= 2
        r = first + ty
        if r < n_rows and tx == 0:
            out_bmu[r] = red_k[ty, 0]
            out_best[r] = float64(red_d[ty, 0])
            out_second[r] = float64(red_s[ty, 0])

    return bmu_kernel


@cache
def _build_finish(masked: bool = False, layered: bool = False):
    # masked (missing="ignore"): distances over the row's observed features scaled by
    # D / n_obs (somvq.missing's definition); the statistics are then the hits (K,) in
    # ``counts`` and [sums | observed counts] (K, 2 D) in ``sums``. layered (masked too):
    # distances sum_g factor[r, g] sum_{j in g observed} (x_j - w_j)^2 (somvq.layers).
    @cuda.jit(device=True)
    def layered_distance(X, src, codebook, k, group, factor, r):
        n_features = codebook.shape[1]
        total = 0.0
        for g in range(factor.shape[1]):
            acc = 0.0
            for j in range(n_features):
                if group[j] == g:
                    diff = float64(X[src, j]) - float64(codebook[k, j])
                    if diff == diff:
                        acc += diff * diff
            total += factor[r, g] * acc
        return total

    @cuda.jit
    def finish_kernel(
        X,
        rows,
        codebook,
        bmu,
        best,
        second,
        kappa,
        absolute,
        out_sq_dist,
        counts,
        sums,
        error,
        accumulate,
        group,
        factor,
    ):
        # One thread per row: certify or re-rank the winner, direct float64 distance, statistics.
        r = cuda.grid(1)
        if r >= rows.shape[0]:
            return
        src = rows[r]
        n_units = codebook.shape[0]
        n_features = codebook.shape[1]
        d1 = best[r]
        d2 = second[r]
        winner = bmu[r]
        scale = 1.0
        if masked and not layered:
            n_obs = 0
            for j in range(n_features):
                if X[src, j] == X[src, j]:
                    n_obs += 1
            scale = n_features / n_obs
        # |computed - exact| <= kappa exact + absolute (underflow) for every unit: a gap
        # larger than twice that proves the winner; a non-finite best proves nothing.
        certain = d1 <= 1.7e308 and (d2 - d1 > 2.0 * (kappa * d2 + absolute) or n_units == 1)
        if certain and layered:
            dist = layered_distance(X, src, codebook, winner, group, factor, r)
        elif certain:
            acc = 0.0
            for j in range(n_features):
                diff = float64(X[src, j]) - float64(codebook[winner, j])
                if masked:
                    if diff == diff:
                        acc += diff * diff
                else:
                    acc += diff * diff
            dist = scale * acc if masked else acc
        else:
            dist = math.inf
            winner = int64(-1)
            for k in range(n_units):
                acc = 0.0
                if layered:
                    acc = layered_distance(X, src, codebook, k, group, factor, r)
                else:
                    for j in range(n_features):
                        diff = float64(X[src, j]) - float64(codebook[k, j])
                        if masked:
                            if diff == diff:
                                acc += diff * diff
                        else:
                            acc += diff * diff
                if masked and not layered:
                    acc = scale * acc  # compared scaled, as somvq.missing re-ranks
                if acc < dist or winner < 0:
                    dist = acc
                    winner = k
            bmu[r] = winner
        out_sq_dist[r] = dist
        if accumulate:
            cuda.atomic.add(counts, winner, 1.0)
            cuda.atomic.add(error, 0, dist)
            for j in range(n_features):
                value = float64(X[src, j])
                if masked:
                    if value == value:
                        cuda.atomic.add(sums, (winner, j), value)
                        cuda.atomic.add(sums, (winner, n_features + j), 1.0)
                else:
                    cuda.atomic.add(sums, (winner, j), value)

    return finish_kernel


@cache
def _build_layer_factors():
    @cuda.jit
    def layer_factors(X, rows, group, group_size, factor):
        # One thread per row: factor[r, g] = D_g / n_obs,g over the row's observed columns of
        # group g (inf for a group with none: the fit's checks refuse such rows).
        r = cuda.grid(1)
        if r >= rows.shape[0]:
            return
        src = rows[r]
        n_features = X.shape[1]
        for g in range(factor.shape[1]):
            count = 0
            for j in range(n_features):
                if group[j] == g and X[src, j] == X[src, j]:
                    count += 1
            factor[r, g] = group_size[g] / float64(count) if count > 0 else math.inf

    return layer_factors


@cache
def _build_segmented(reduce_threads: int):
    @cuda.jit
    def chunk_histogram(bmu, chunk_rows, hist):
        # One thread per chunk of rows: hist[c, k] = rows of chunk c won by unit k.
        c = cuda.grid(1)
        if c < hist.shape[0]:
            stop = min((c + 1) * chunk_rows, bmu.shape[0])
            for i in range(c * chunk_rows, stop):
                hist[c, bmu[i]] += 1

    @cuda.jit
    def column_offsets(hist, unit_count):
        # One thread per unit: hist[c, k] <- rows of unit k in the chunks before c.
        k = cuda.grid(1)
        if k < hist.shape[1]:
            running = 0
            for c in range(hist.shape[0]):
                here = hist[c, k]
                hist[c, k] = running
                running += here
            unit_count[k] = running

    @cuda.jit
    def unit_starts(unit_count, unit_start):
        # One thread: exclusive prefix sum over the units (K serial additions).
        if cuda.grid(1) == 0:
            running = 0
            for k in range(unit_count.shape[0]):
                unit_start[k] = running
                running += unit_count[k]

    @cuda.jit
    def place(bmu, chunk_rows, hist, unit_start, perm):
        # One thread per chunk, rows in order: a stable counting sort by winner.
        c = cuda.grid(1)
        if c < hist.shape[0]:
            stop = min((c + 1) * chunk_rows, bmu.shape[0])
            for i in range(c * chunk_rows, stop):
                k = bmu[i]
                perm[unit_start[k] + hist[c, k]] = i
                hist[c, k] += 1

    @cuda.jit
    def segmented_sums(X, rows, perm, unit_start, unit_count, counts, sums):
        # x: feature (column n_features stands for the count), y: unit; rows in row order.
        j, k = cuda.grid(2)
        n_units = sums.shape[0]
        n_features = sums.shape[1]
        if k >= n_units or j > n_features:
            return
        start = unit_start[k]
        stop = start + unit_count[k]
        if j == n_features:
            acc = counts[k]
            for _ in range(start, stop):
                acc += 1.0
            counts[k] = acc
        else:
            acc = sums[k, j]
            for p in range(start, stop):
                acc += float64(X[rows[perm[p]], j])
            sums[k, j] = acc

    @cuda.jit
    def ordered_sum(values, out):
        # One block: fixed strided partials, then a fixed tree: out[0] += sum(values).
        tid = cuda.threadIdx.x
        partial = cuda.shared.array(reduce_threads, float64)
        acc = 0.0
        for i in range(tid, values.shape[0], reduce_threads):
            acc += values[i]
        partial[tid] = acc
        block_tree_sum(partial, tid, reduce_threads)
        if tid == 0:
            out[0] += partial[0]

    return chunk_histogram, column_offsets, unit_starts, place, segmented_sums, ordered_sum


@cache
def _build_segmented_masked():
    @cuda.jit
    def segmented_masked_sums(X, rows, perm, unit_start, unit_count, hits, both):
        # missing="ignore": x: column of [sums | observed counts] (column 2 D: the hits),
        # y: unit; NaN entries skipped; rows in row order (as cpu_missing.masked_accumulate).
        j, k = cuda.grid(2)
        n_units = both.shape[0]
        n_features = both.shape[1] // 2
        if k >= n_units or j > 2 * n_features:
            return
        start = unit_start[k]
        stop = start + unit_count[k]
        if j == 2 * n_features:
            acc = hits[k]
            for _ in range(start, stop):
                acc += 1.0
            hits[k] = acc
        elif j < n_features:
            acc = both[k, j]
            for p in range(start, stop):
                value = float64(X[rows[perm[p]], j])
                if value == value:
                    acc += value
            both[k, j] = acc
        else:
            acc = both[k, j]
            for p in range(start, stop):
                if X[rows[perm[p]], j - n_features] == X[rows[perm[p]], j - n_features]:
                    acc += 1.0
            both[k, j] = acc

    return segmented_masked_sums


def segmented_statistics(X, rows, bmu, sq_dist, counts, sums, error, masked=False):
    """Add counts, sums and the squared error of ``X[rows]`` (winners ``bmu``) in a fixed order.

    Deterministic: rows are sorted stably by winner with a chunked counting sort, then
    each ``sums[k, j]`` adds its unit's rows in row order (as the CPU's accumulation
    does), ``counts[k]`` its number of rows, and ``error`` the squared distances in a
    fixed-order block reduction. ``masked``: ``sums`` is the (K, 2 D) ``[sums | observed
    counts]`` of ``missing="ignore"`` (NaN entries skipped).
    """
    from . import cuda_update

    cfg = cuda_config
    chunk_histogram, column_offsets, unit_starts, place, segmented_sums, ordered_sum = _build_segmented(
        cfg.REDUCE_THREADS
    )
    n_rows = rows.shape[0]
    n_units, n_features = sums.shape
    chunk = cfg.STATISTICS_CHUNK_ROWS
    n_chunks = (n_rows + chunk - 1) // chunk
    threads = cfg.THREADS_PER_BLOCK
    hist = cuda.device_array((n_chunks, n_units), dtype=np.int64)
    cuda_update.zero(hist)
    unit_count = cuda.device_array(n_units, dtype=np.int64)
    unit_start = cuda.device_array(n_units, dtype=np.int64)
    perm = cuda.device_array(n_rows, dtype=np.int64)
    chunk_blocks = (n_chunks + threads - 1) // threads
    chunk_histogram[chunk_blocks, threads](bmu, chunk, hist)
    column_offsets[(n_units + threads - 1) // threads, threads](hist, unit_count)
    unit_starts[1, 1](unit_count, unit_start)
    place[chunk_blocks, threads](bmu, chunk, hist, unit_start, perm)
    tile = cfg.SMOOTH_TILE
    if masked:  # sums: [sums | observed counts] (K, 2 D); counts: the hits (K,)
        _build_segmented_masked()[((n_features + tile) // tile, (n_units + tile - 1) // tile), (tile, tile)](
            X, rows, perm, unit_start, unit_count, counts, sums
        )
    else:
        segmented_sums[((n_features + tile) // tile, (n_units + tile - 1) // tile), (tile, tile)](
            X, rows, perm, unit_start, unit_count, counts, sums
        )
    ordered_sum[1, cfg.REDUCE_THREADS](sq_dist, error)


def best_matching_units(
    X, rows, codebook, out_bmu, out_sq_dist, counts=None, sums=None, error=None, *, masked=False, layers=None
):
    """Winners of the rows ``X[rows]`` (device arrays), and optionally their statistics.

    Parameters
    ----------
    X : (n, D) float32 or float64 device array, any strides
    rows : (m,) int64 device array of row indices into ``X``
    codebook : (K, D) device array of ``X``'s dtype
    out_bmu : (m,) int64 device array, filled with the winner of ``X[rows[i]]``
    out_sq_dist : (m,) float64 device array, filled with its squared distance
    counts, sums, error : (K,), (K, D), (1,) float64 device arrays or None; hit counts,
        per-unit sums and the summed squared distance are *added* into them (atomics, or
        the deterministic segmented reduction, see ``cuda_config.DETERMINISTIC_STATISTICS``)
    masked : bool
        ``missing="ignore"`` (:mod:`somvq.missing`): NaN marks a missing entry; distances
        are ``D / n_obs * sum_{j observed} (x_j - w_j)^2`` (every row needs an observed
        feature), and ``sums`` is (K, 2 D): ``[sums | observed counts]`` per unit and
        feature, over observed entries only.
    layers : None or ``(group, group_size)`` device arrays, int64 (D,) and float64 (G,)
        Layered maps (``masked`` must be True): the column groups of
        :func:`somvq.layers.layered_masked_assign`; distances are
        ``sum_g (D_g / n_obs,g) sum_{j in g observed} (x_j - w_j)^2`` (every row needs an
        observed column in every group).
    """
    n_rows = rows.shape[0]
    if n_rows == 0:
        return
    cfg = cuda_config
    cfg.check()
    layered = layers is not None
    if layered and not masked:
        raise ValueError("layers= needs masked=True (the layered masked search)")
    kernel = _build(
        cfg.BMU_TILE_ROWS, cfg.BMU_TILE_UNITS, cfg.BMU_TILE_FEATURES, np.dtype(X.dtype).name, masked, layered
    )
    threads = cfg.THREADS_PER_BLOCK
    if layered:
        group, group_size = layers
        factor = layer_factors(X, rows, group, group_size)
    else:  # unused placeholders of the right types
        group = cuda.device_array(1, dtype=np.int64)
        factor = cuda.device_array((1, 1), dtype=np.float64)
    accumulate = counts is not None
    deterministic = accumulate and cfg.DETERMINISTIC_STATISTICS
    if deterministic:
        statistics = (counts, sums, error)
        accumulate = False
    if not accumulate:
        # Unused placeholders of the right types (the kernel skips the accumulation).
        counts = cuda.device_array(1, dtype=np.float64)
        sums = cuda.device_array((1, 1), dtype=np.float64)
        error = counts
    blocks = (n_rows + cfg.BMU_TILE_ROWS - 1) // cfg.BMU_TILE_ROWS
    second = cuda.device_array(n_rows, dtype=np.float64)
    kernel[blocks, (cfg.BMU_TILE_UNITS, cfg.BMU_TILE_ROWS)](
        X, rows, codebook, out_bmu, out_sq_dist, second, group, factor
    )
    # layered: each term also rounds its factor and the product (two more roundings)
    kappa, absolute = direct_form_error(X.dtype, codebook.shape[1] + (2 if layered else 0))
    _build_finish(masked, layered)[(n_rows + threads - 1) // threads, threads](
        X,
        rows,
        codebook,
        out_bmu,
        out_sq_dist,
        second,
        kappa,
        absolute,
        out_sq_dist,
        counts,
        sums,
        error,
        accumulate,
        group,
        factor,
    )
    if deterministic:
        segmented_statistics(X, rows, out_bmu, out_sq_dist, *statistics, masked=masked)


def layer_factors(X, rows, group, group_size):
    """``factor[r, g] = D_g / n_obs,g`` of the row ``X[rows[r]]`` (an (m, G) float64 device array).

    ``group`` (D,) int64 (-1: a column of no group) and ``group_size`` (G,) float64 device
    arrays; a group with no observed column in a row gets inf.
    """
    n_rows = rows.shape[0]
    factor = cuda.device_array((n_rows, group_size.shape[0]), dtype=np.float64)
    if n_rows:
        threads = cuda_config.THREADS_PER_BLOCK
        _build_layer_factors()[(n_rows + threads - 1) // threads, threads](X, rows, group, group_size, factor)
    return factor


def direct_form_error(dtype, n_features: int) -> tuple[float, float]:
    """``(kappa, absolute)``: a float sum ``sum_j (x_j - w_j)^2`` of D terms in ``dtype`` is
    within ``kappa d + absolute`` of the exact ``d`` (one rounding per difference and per
    square, ``gamma_D`` for the sum: ``(D + 3) u``, with a 1.25 margin; ``absolute`` bounds
    what underflow to subnormals loses)."""
    finfo = np.finfo(np.dtype(dtype))
    u = float(finfo.eps) / 2.0
    return 1.25 * (int(n_features) + 4) * u, 2.0 * (int(n_features) + 2) * float(finfo.smallest_subnormal)
