"""BMU search and per-unit statistics on the CPU.

The search is a GEMM plus an argmin: ``argmin_k ||w_k||^2 - 2 x.w_k`` (``||x||^2`` does not
change the winner), evaluated in the codebook's reference frame
(:func:`somvq.distances.reference_frame`: centred at the codebook mean when the codebook is
off the origin, scaled by a power of two when its squares would leave the dtype's range),
then made exact: every row whose two best scores are within twice the expanded form's
error bound (:func:`somvq.distances.expanded_form_error`) plus the rounding of the
float64 direct distances (:func:`rank_limit`) is re-ranked by direct float64
distances among the units within the bound, and the squared distance to the winner is
always computed directly, ``sum_j (x_j - w_j)^2`` in float64. Winners therefore equal the
float64 brute-force argmin (lowest index on ties) at any offset and scale, up to
float64 rounding. Rows are processed in fixed blocks of ``chunk_rows`` so a block's
``(rows x K)`` product is written and read back while it is in cache, and never an
``(N x K)`` matrix: extra memory is O(threads * chunk_rows * K).

Per call, one compiled call of two or three O(K D) passes over the codebook,
:func:`prepare_frame`, chooses the frame and builds the augmented codebook
``[-2 W' | ||w'||^2]`` in it (:func:`fill_augmented`; ``||w'||^2`` summed in float64,
rounded once; scaling by -2 is exact). Per block, one compiled call
that holds no GIL, :func:`search_block` (which the mini-batch step,
:mod:`somvq._kernels.cpu_minibatch_step`, calls too): the rows, copied (centred, scaled
when the frame says so) into a per-thread ``rows x (D + 1)`` buffer whose last column is
1, times the augmented codebook (``np.dot`` inside Numba, SciPy's single-threaded BLAS):
one product gives ``||w'||^2 - 2 x'.w'`` without a separate add pass over the
``rows x K`` scores; then :func:`rank_block`, per row while the row is in cache: the
lowest score, the number of scores within the bound of it and, when it is one, that unit
(two vectorised passes, :mod:`somvq._kernels.cpu_scores`), the re-rank where that number
exceeds one, and the direct squared distance to the winner. Up to
:data:`~somvq._kernels.cpu_fused.MAX_FEATURES` features (and float64 rows of up to 2048
features with 256 units or more) the dense searches (and the
mini-batch step) take :func:`search_block`'s fused form instead (:func:`search_fused`,
:mod:`somvq._kernels.cpu_fused`): the scores are accumulated with the rows in vector
lanes and never stored, each row keeps its lowest two, and a row they do not certify
goes through :func:`rank_block` on recomputed scores; the same winners and distances,
in 0.4-0.9x the time of the GEMM form. With more than one BLAS
thread and more than one block, blocks are shared by the calling thread and a small
thread pool (:func:`_parallel_search`), so the ranking runs in parallel too: each thread
runs one compiled :func:`search_pass` for the whole call, claiming blocks and waiting for
the others with :mod:`cpu_sync`'s atomics, never the GIL. See docs/performance.md for the
profiles behind these choices and what the exactness costs.

Counts and sums are added into caller-allocated float64 buffers, each element receiving
its rows in row order: on one thread block after block (:func:`accumulate_statistics`),
on several each thread adds its own range of columns of every searched block
(:func:`accumulate_columns`). The result is the same bits for any number of threads: the
winners do not depend on the products' rounding (exact search), and every sum sees the
same additions in the same order.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
from numba import njit, types

from .. import distances
from ._signatures import FLOATS, array
from .config import CACHE, CHUNK_ROWS, FASTMATH
from .cpu_fused import TILE_ROWS, frame_tiles, in_frame, lowest_two, scores_rows, scratch_size, tile_rows
from .cpu_fused import applies as fused_applies
from .cpu_scores import EXACT_INDICES, first_equal, lowest, sole_or_first, within
from .cpu_sync import (
    ABORT,
    ARRIVED,
    CLAIMED,
    COUNTER,
    DONE,
    SYNC_SIZE,
    add_and_wake,
    atomic_add,
    atomic_load,
    atomic_store,
    wait_until,
    wake,
)

#: Blocks reach the kernels C-contiguous (see :func:`_block`) and are only read: one
#: read-only signature per dtype (a writable array dispatches to it too) keeps the number of
#: cached overloads loaded at first use small (each costs a cache load: docs/performance.md).
_BLOCKS = [array(dtype, 2, "C", readonly=True) for dtype in FLOATS]

#: The sums are C-contiguous: with a layout-free ("A") signature the column loop does
#: not vectorise and the accumulation costs 2.3x as much (1.1 against 0.48 ms for 5000 x
#: 784 rows); the additions, one per element in row order, are the same.
_ACC_SIGNATURES = [
    types.void(block, array(types.int64, 1), array(types.float64, 1), array(types.float64, 2, "C"))
    for block in _BLOCKS
]


@njit(_ACC_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def accumulate_statistics(block, bmu, counts, sums):
    """counts[bmu[i]] += 1 and sums[bmu[i]] += block[i] for every row i, in order."""
    n_features = block.shape[1]
    for i in range(block.shape[0]):
        k = bmu[i]
        counts[k] += 1.0
        for j in range(n_features):
            sums[k, j] += block[i, j]


_COLUMN_SIGNATURES = [
    types.void(
        block,
        array(types.int64, 1),
        array(types.float64, 1),
        array(types.float64, 2, "C"),
        types.int64,
        types.int64,
        types.boolean,
    )
    for block in _BLOCKS
]


@njit(_COLUMN_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def accumulate_columns(block, bmu, counts, sums, first, stop, with_counts):
    """:func:`accumulate_statistics` restricted to the columns ``first:stop`` of ``sums``
    (and ``counts`` only when ``with_counts``).

    Each element still receives its rows' values in row order, the very additions of
    :func:`accumulate_statistics`: threads that take disjoint column ranges of the same
    rows produce the same bits as one thread adding every column.
    """
    if with_counts:
        for i in range(block.shape[0]):
            counts[bmu[i]] += 1.0
    width = stop - first
    for i in range(block.shape[0]):
        # row slices: a unit-stride loop of known length, which LLVM vectorises
        src = block[i, first:stop]
        dst = sums[bmu[i], first:stop]
        for j in range(width):
            dst[j] += src[j]


_RANK_SIGNATURES = [
    types.int64(
        block,  # the block's rows as given
        array(block.dtype, 2, "C"),  # the same rows in the frame, (rows, D + 1) (last column unused)
        array(block.dtype, 2, "C"),  # expanded-form scores (rows, K)
        array(types.int64, 1),  # out: winners
        array(block.dtype, 2, "C", readonly=True),  # the codebook as given
        types.float64,  # kappa of expanded_form_error
        types.float64,  # R: largest norm of a unit in the frame
        types.float64,  # overflow limit: larger R (2 ||x'|| + R) compares every unit directly
        types.float64,  # scale of the direct distances (power of two)
        types.float64,  # 4 eps of the dtype: moves a limit past its rounding to the dtype
        array(types.float64, 1),  # out: squared distance to the winner (if requested)
        types.boolean,  # write it
    )
    for block in _BLOCKS
]


#: :func:`somvq.distances.unscale_exponent` and :func:`~somvq.distances.power_of_two_scale`,
#: compiled (one definition for Python and the kernels).
unscale_exponent = njit(inline="always")(distances.unscale_exponent)
power_of_two_scale = njit(inline="always")(distances.power_of_two_scale)


@njit(inline="always")
def unscaled(value, exponent):
    """``value / scale^2`` (``exponent`` from :func:`unscale_exponent`): exact, overflowing
    to inf and underflowing as the true quotient rounds; ``value`` itself for scale 1."""
    return value if exponent == 0 else math.ldexp(value, exponent)


@njit(inline="always")
def rank_limit(best, kappa, reach, norm2, radius, n_features):
    """The limit ``m + 2 e + eta`` of a row's scores (lowest ``best``; float64) below
    which a unit may be the winner.

    ``2 e = 2 kappa reach`` covers the scores' rounding
    (:func:`somvq.distances.expanded_form_error`); ``eta`` the rounding of the float64
    direct distances, whose argmin (lowest index on ties) *is* the winner: each is within
    ``(D + 3) u64`` (relative) of a distance at most ``(||x'|| + R)^2``, so with
    ``eta = 2.5 (D + 4) u64 (||x'|| + R)^2`` (more than twice that) a unit alone below the
    limit has the smallest direct distance, and every unit whose direct distance could tie
    or beat the winner's is below it. Without ``eta``, a float64 row far from the codebook
    (``||x'|| >> R``) at a near tie could be certified to the exact nearest unit by one
    form of the scores and re-ranked by the direct distances (whose rounding then exceeds
    the gap) in another: the fused and the GEMM forms disagreed (round 22). In float32
    ``eta`` is far below ``2 e``.
    """
    far = math.sqrt(norm2) + radius
    return best + 2.0 * kappa * reach + 2.5 * (n_features + 4) * 1.1102230246251565e-16 * far * far


@njit(inline="always")
def direct_distance(block, i, codebook, k, scale):
    """``sum_j ((x_ij - w_kj) scale)^2`` in float64: the exact searches' distance."""
    acc = 0.0
    for j in range(block.shape[1]):
        diff = (np.float64(block[i, j]) - np.float64(codebook[k, j])) * scale
        acc += diff * diff
    return acc


@njit(_RANK_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def rank_block(
    block, framed, products, bmu, codebook, kappa, radius, overflow, scale, up, out_sq_dist, write_dist
):
    """Winner of each row: the scores' argmin, certified against the error bound or re-ranked.

    ``products`` holds the expanded-form scores ``||w'_k||^2 - 2 x'.w'_k`` of the rows
    ``framed`` (in the frame); each is within ``e = kappa (R (2 ||x'|| + R) + 8 u ||x'||^2)``
    of the exact (scaled) squared distance minus a constant of the row
    (:func:`somvq.distances.expanded_form_error`). Per row, while the row is in cache: the
    lowest score ``m``, then the number of scores ``<= m + 2 e + eta`` (:func:`rank_limit`) and, when it is one, which
    unit that is (the first index scoring ``m``, NumPy's argmin): two vectorised passes,
    :func:`~somvq._kernels.cpu_scores.lowest` and :func:`~somvq._kernels.cpu_scores.within`.
    With exactly one, no other unit can be
    closer; otherwise those units are compared by direct float64 distances
    ``sum_j ((x_j - w_j) scale)^2``, lowest index on ties (with two, found without another
    pass over the scores: the lowest score's first index, and the index sum less it; every unit when
    that reach exceeds ``overflow``, where scores may have overflowed, or ``m`` is not
    finite). Then
    ``out_sq_dist[i] = sum_j (x_j - w_bmu,j)^2`` in float64. Returns the number of
    re-ranked rows.
    """
    n_rows = block.shape[0]
    n_features = block.shape[1]
    n_units = products.shape[1]
    exponent = unscale_exponent(scale)
    indices = np.arange(n_units + 1).astype(products.dtype)  # within()'s unit indices
    limit = products[0, :1].copy()
    reranked = 0
    for i in range(n_rows):
        norm2 = 0.0
        for j in range(n_features):
            v = np.float64(framed[i, j])
            norm2 += v * v
        # R (2 ||x'|| + R), and u ||x'||^2 for the second-order terms of the centring
        reach = radius * (2.0 * math.sqrt(norm2) + radius) + up * norm2
        # 1. the lowest score (cpu_scores: two vectorised integer reductions)
        scores = products[i]
        best = lowest(scores)
        full = not (reach <= overflow) or not (abs(np.float64(best)) <= 1.7e308)
        lim = rank_limit(np.float64(best), kappa, reach, norm2, radius, n_features)
        limit[0] = lim + abs(lim) * up  # rounded to the dtype, still >= lim
        lim_t = limit[0]
        # 2. the scores within the bound: how many, and (when one) which: the argmin
        count, index = within(scores, lim_t, indices)
        if count != 1 or full:
            # 3. re-rank: direct float64 distances among the candidates, lowest index on ties
            reranked += 1
            dist = np.inf
            found = -1
            # two candidates (most re-ranked rows): the lowest score's first index is one,
            # the index sum less it the other; no scan of the K scores for them
            first = -1
            other = -1
            if not full and count == 2 and n_units < EXACT_INDICES:
                first = first_equal(scores, best)
                other = int(index) - first
                if not (0 <= other < n_units and other != first and products[i, other] <= lim_t):
                    first = -1  # (not two candidates after all: cannot happen; scan)
            pair = first >= 0
            low_k = min(first, other)
            for k in range(2 if pair else n_units):
                if pair:
                    k = low_k if k == 0 else first + other - low_k
                if pair or full or products[i, k] <= lim_t:
                    acc = direct_distance(block, i, codebook, k, scale)
                    if acc < dist or found < 0:
                        dist = acc
                        found = k
            winner = found
        else:
            winner = sole_or_first(scores, best, count, index)
            dist = direct_distance(block, i, codebook, winner, scale)
        bmu[i] = winner
        if write_dist:
            out_sq_dist[i] = unscaled(dist, exponent)
    return reranked


@njit(cache=CACHE, fastmath=FASTMATH, nogil=True)
def search_fused(
    block,
    framed,
    products,
    codebook,
    aug,
    centre,
    centred,
    scaled,
    factor,
    kappa,
    radius,
    overflow,
    scale,
    up,
    bmu,
    sq_dist,
):
    """:func:`search_block`'s fused form (:mod:`~somvq._kernels.cpu_fused`): the same
    winners and direct distances as :func:`rank_block` on the GEMM's scores.

    The rows go into tiles in the frame (``products``' memory holds the tiles, each row's
    lowest two scores and index, and one row of scores), :func:`~cpu_fused.lowest_two`
    ranks them, and a row is settled when its second-lowest score is above the limit
    ``m + 2 e + eta`` that :func:`rank_block` would use (exactly one score within it: the lowest
    one's unit). Any other row (a near tie, a row beyond the overflow limit, a non-finite
    lowest score) gets its scores recomputed by the GEMM form's product into one row of
    scores and goes through :func:`rank_block` itself. Returns the number of rows :func:`rank_block` re-ranked.
    """
    n, n_features = block.shape
    n_units = aug.shape[0]
    tile = tile_rows(block.itemsize)
    padded = (n + TILE_ROWS - 1) // TILE_ROWS * TILE_ROWS
    flat = products.reshape(products.size)
    tiles = flat[: padded * n_features]
    low = flat[padded * n_features : padded * (n_features + 1)]
    second = flat[padded * (n_features + 1) : padded * (n_features + 2)]
    index = flat[padded * (n_features + 2) : padded * (n_features + 3)]
    end = padded * (n_features + 3)
    scores = flat[end : end + n_units].reshape((1, n_units))
    n_tiles = frame_tiles(block, centre, factor, centred, scaled, tiles, tile, sq_dist)  # ||x'||^2
    lowest_two(tiles, n_tiles, aug, low, second, index)
    exponent = unscale_exponent(scale)
    limit = low[:1].copy()
    reranked = 0
    for i in range(n):
        norm2 = sq_dist[i]
        reach = radius * (2.0 * math.sqrt(norm2) + radius) + up * norm2
        best = np.float64(low[i])
        settled = reach <= overflow and abs(best) <= 1.7e308
        if settled:
            lim = rank_limit(best, kappa, reach, norm2, radius, n_features)
            limit[0] = lim + abs(lim) * up  # rounded to the dtype, still >= lim
            settled = second[i] > limit[0]
        if settled:
            winner = int(index[i])
            bmu[i] = winner
            sq_dist[i] = unscaled(direct_distance(block, i, codebook, winner, scale), exponent)
            continue
        base = (i // tile) * n_features * tile + i % tile
        for j in range(n_features):
            framed[0, j] = tiles[base + j * tile]
        np.dot(framed[:1], aug.T, scores)  # the GEMM form's product, for this row (last column 1)
        reranked += rank_block(
            block[i : i + 1],
            framed[:1],
            scores,
            bmu[i : i + 1],
            codebook,
            kappa,
            radius,
            overflow,
            scale,
            up,
            sq_dist[i : i + 1],
            True,
        )
    return reranked


#: :func:`codebook_summary` and :func:`fill_augmented` have no signatures of their own: they
#: are compiled into :func:`prepare_frame`, their one caller, so a process loads no cached
#: overloads for them (each costs a load at first use). ``mean_out`` is C-contiguous there:
#: with a layout-free ("A") output the per-column sums are a strided scalar loop (0.36 ms at
#: K x D = 512 x 784 against 0.024 ms vectorised).
@njit(cache=CACHE, fastmath=FASTMATH, nogil=True)
def codebook_summary(codebook, mean_out):
    """Mean of the units into ``mean_out`` (float64), in one pass.

    Returns the (max, mean) of ``||w_k||^2``: what the frame's choice needs
    (:func:`somvq.distances.choose_centre`, ``choose_scale``). The NumPy equivalent costs
    ~40 us a call, too much for every mini-batch step.
    """
    n_units, n_features = codebook.shape
    for j in range(n_features):
        mean_out[j] = 0.0
    max_norm2 = 0.0
    total = 0.0
    for k in range(n_units):
        acc = 0.0
        for j in range(n_features):
            v = np.float64(codebook[k, j])
            acc += v * v
            mean_out[j] += v
        total += acc
        if acc > max_norm2 or acc != acc:
            max_norm2 = acc
    for j in range(n_features):
        mean_out[j] /= max(n_units, 1)
    return max_norm2, total / max(n_units, 1)


@njit(cache=CACHE, fastmath=FASTMATH, nogil=True)
def fill_augmented(codebook, centre, scale, aug):
    """``aug = [-2 W' | ||w'||^2]`` with ``W' = (W - centre) * scale`` in the codebook's dtype.

    ``||w'_k||^2`` is summed in float64 and rounded once. Returns ``max_k ||w'_k||^2``
    (float64). A zero centre and a unit scale give W itself, bit for bit.
    """
    n_units, n_features = codebook.shape
    largest = 0.0
    for k in range(n_units):
        acc = 0.0
        for j in range(n_features):
            v = (codebook[k, j] - centre[j]) * scale
            aug[k, j] = -2.0 * v
            w = np.float64(v)
            acc += w * w
        aug[k, n_features] = acc
        if acc > largest or acc != acc:
            largest = acc
    return largest


#: Layout of the ``frame`` array that :func:`search_block` reads, made by
#: :func:`prepare_frame` (for a search call, :func:`_search_setup`; for each mini-batch step,
#: :mod:`somvq._kernels.cpu_minibatch_step`).
RADIUS, SCALE, CENTRED, FINITE = 0, 1, 2, 3

_FRAME_SIGNATURES = [
    types.void(
        array(dtype, 2, "C", readonly=True),  # codebook
        array(types.float64, 1, "C"),  # scratch: the codebook mean (D,)
        array(dtype, 1, "C"),  # out: centre (D,), zeros when not centred
        array(dtype, 2, "C"),  # out: [-2 W' | ||w'||^2] (K, D + 1)
        types.float64,  # limit of the unscaled range (distances._unscaled_limit)
        array(types.float64, 1, "C"),  # out: frame (RADIUS, SCALE, CENTRED, FINITE)
    )
    for dtype in FLOATS
]


@njit(_FRAME_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def prepare_frame(codebook, mean, centre, aug, limit, frame):
    """The codebook's reference frame and the augmented codebook in it: the compiled form of
    :func:`somvq.distances.reference_frame`, for every CPU search.

    The centre (:func:`~somvq.distances.choose_centre`) is the codebook mean rounded to the
    dtype when ``||mean||^2 > mean ||w||^2 - ||mean||^2`` (zeros otherwise); the scale
    (:func:`~somvq.distances.choose_scale`) a power of two when the radius ``max_k ||w'_k||``
    leaves ``[1 / limit, limit]``. ``aug`` gets ``[-2 W' | ||w'||^2]`` (:func:`fill_augmented`)
    and ``frame[RADIUS]`` the radius in the frame. When the norms overflow float64 (a float64
    codebook beyond ~1e154) or underflow to 0 (spread below ~1e-162), the radius is bounded
    by ``sqrt(D) max |w_kj - c_j|`` to choose the scale. ``frame[FINITE]`` is 0 when no finite radius exists (a codebook holding inf
    or NaN): its searches then take the plain argmin, and the mini-batch pass stops.
    """
    n_units, n_features = codebook.shape
    _, mean_norm2 = codebook_summary(codebook, mean)
    offset = 0.0
    for j in range(n_features):
        offset += mean[j] * mean[j]
    centred = math.isfinite(offset) and offset > mean_norm2 - offset
    for j in range(n_features):
        centre[j] = mean[j] if centred else 0.0
    radius = math.sqrt(fill_augmented(codebook, centre, 1.0, aug))
    frame[CENTRED] = 1.0 if centred else 0.0
    frame[SCALE] = 1.0
    if not math.isfinite(radius) or radius == 0.0:
        # norms beyond float64 (values > 1e154), a non-finite codebook, or norms that
        # underflow to 0 (a float64 codebook spread below ~1e-162; 0 for identical units)
        largest = 0.0
        for k in range(n_units):
            for j in range(n_features):
                v = abs(np.float64(codebook[k, j]) - np.float64(centre[j]))
                if v > largest or v != v:
                    largest = v
        radius = largest * math.sqrt(n_features)
    frame[RADIUS] = radius
    if not math.isfinite(radius):
        frame[FINITE] = 0.0
        return
    frame[FINITE] = 1.0
    if radius != 0.0 and not (1.0 / limit <= radius <= limit):
        scale = power_of_two_scale(radius)
        frame[SCALE] = scale
        frame[RADIUS] = math.sqrt(fill_augmented(codebook, centre, scale, aug))


_SEARCH_SIGNATURES = [
    types.int64(
        array(dtype, 2, "C", readonly=True),  # the rows (the data, or a mini-batch's)
        types.int64,  # first row of the block
        types.int64,  # end of the block
        array(dtype, 2, "C"),  # per-thread (rows, D + 1) buffer whose last column is 1
        array(dtype, 2, "C"),  # per-thread (rows, K) scores
        array(dtype, 2, "C", readonly=True),  # codebook
        array(dtype, 2, "C", readonly=True),  # [-2 W' | ||w'||^2] (K, D + 1)
        array(dtype, 1, "C", readonly=True),  # centre of the frame
        array(types.float64, 1, "C"),  # frame: RADIUS, SCALE, CENTRED, FINITE
        types.float64,  # kappa
        types.float64,  # overflow
        types.float64,  # up
        array(types.int64, 1, "C"),  # out: winners of the rows
        array(types.float64, 1, "C"),  # out: squared distances of the rows
        types.boolean,  # the fused form may be used (scratch from cpu_fused.scores_rows)
    )
    for dtype in FLOATS
]


@njit(_SEARCH_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def search_block(
    rows,
    start,
    stop,
    framed,
    products,
    codebook,
    aug,
    centre,
    frame,
    kappa,
    overflow,
    up,
    bmu,
    sq_dist,
    lanes,
):
    """Winners and direct squared distances of ``rows[start:stop]`` (one block).

    What :func:`_search_block` does for a finite frame: the rows into ``framed`` (minus the
    centre, times the scale, in the rows' dtype), one GEMM ``[x' | 1] . [-2 W' | ||w'||^2]^T``
    and :func:`rank_block`; or, with ``lanes`` and at most
    :data:`~somvq._kernels.cpu_fused.MAX_FEATURES` features (float64: more, with many units;
    :func:`~somvq._kernels.cpu_fused.applies`) when ``products`` holds the
    scratch (:func:`~somvq._kernels.cpu_fused.scores_rows`), the fused form
    (:func:`search_fused`: the same winners and distances, and no scores left in
    ``products``). Returns the number of re-ranked rows.
    """
    n = stop - start
    n_features = rows.shape[1]
    if n > framed.shape[0] or n > products.shape[0] or stop > bmu.shape[0] or stop > sq_dist.shape[0]:
        raise ValueError("search_block: the block does not fit the scratch buffers")
    centred = frame[CENTRED] != 0.0
    scale = frame[SCALE]
    scaled = scale != 1.0
    factor = rows[:1, :1].copy()
    factor[0, 0] = scale  # the scale in the rows' dtype (a power of two: exact)
    s = factor[0, 0]
    block = rows[start:stop]
    # float32 differences squared never overflow float64; float64 ones may beyond 1e154
    direct_scale = 1.0 if rows.itemsize == 4 else scale
    n_units = aug.shape[0]
    if (
        lanes
        and fused_applies(n_features, n_units, rows.itemsize)
        and products.size >= scratch_size(n, n_units, n_features)
    ):
        return search_fused(
            block,
            framed,
            products,
            codebook,
            aug,
            centre,
            centred,
            scaled,
            s,
            kappa,
            frame[RADIUS],
            overflow,
            direct_scale,
            up,
            bmu[start:stop],
            sq_dist[start:stop],
        )
    for i in range(n):
        for j in range(n_features):
            framed[i, j] = in_frame(block[i, j], centre[j], centred, scaled, s)
    out = products[:n]
    np.dot(framed[:n], aug.T, out)  # aug.T: Fortran order, as NumPy's matmul gets it
    return rank_block(
        block,
        framed[:n],
        out,
        bmu[start:stop],
        codebook,
        kappa,
        frame[RADIUS],
        overflow,
        direct_scale,
        up,
        sq_dist[start:stop],
        True,
    )


#: Where :func:`search_pass` keeps its shared counts in ``sync`` (:mod:`cpu_sync`'s
#: layout; the barrier and the user counter are not used by a search): blocks claimed,
#: blocks searched, column ranges claimed, column ranges added. The searched flag of
#: block ``b`` is ``sync[SYNC_SIZE + b]``.
BLOCKS_CLAIMED, BLOCKS_SEARCHED, PARTS_CLAIMED, PARTS_ADDED = CLAIMED, DONE, COUNTER, ARRIVED

_PASS_SIGNATURES = [
    types.void(
        array(dtype, 2, "C", readonly=True),  # the rows
        types.int64,  # rows per block
        array(dtype, 2, "C"),  # this thread's (rows, D + 1) buffer whose last column is 1
        array(dtype, 2, "C"),  # this thread's (rows, K) scores
        array(dtype, 2, "C", readonly=True),  # codebook
        array(dtype, 2, "C", readonly=True),  # [-2 W' | ||w'||^2] (K, D + 1)
        array(dtype, 1, "C", readonly=True),  # centre of the frame
        array(types.float64, 1, "C"),  # frame: RADIUS, SCALE, CENTRED, FINITE
        types.float64,  # kappa
        types.float64,  # overflow
        types.float64,  # up
        array(types.int64, 1, "C"),  # out: winners of the rows
        array(types.float64, 1, "C"),  # out: squared distances of the rows
        array(types.float64, 1, "C"),  # counts (added into)
        array(types.float64, 2, "C"),  # sums (added into)
        array(types.int64, 1, "C", readonly=True),  # column cuts of the ranges; [0] without statistics
        array(types.int64, 1, "C"),  # sync: SYNC_SIZE + blocks, zero on entry
    )
    for dtype in FLOATS
]


@njit(cache=CACHE, fastmath=FASTMATH, nogil=True)
def _add_searched(rows, chunk_rows, bmu, counts, sums, cuts, part, cursor, sync, wait):
    """Columns ``cuts[part]:cuts[part + 1]`` (and the counts for part 0) of the blocks from
    ``cursor`` on, up to the first block not yet searched, or (``wait``) to the last,
    waiting for each. Returns the next block to add."""
    n = rows.shape[0]
    n_blocks = (n + chunk_rows - 1) // chunk_rows
    while cursor < n_blocks:
        if atomic_load(sync, SYNC_SIZE + cursor) == 0:
            if not wait or not wait_until(sync, SYNC_SIZE + cursor, 1):
                break
        end = cursor + 1
        while end < n_blocks and atomic_load(sync, SYNC_SIZE + end) != 0:
            end += 1
        lo = cursor * chunk_rows
        hi = min(end * chunk_rows, n)
        accumulate_columns(rows[lo:hi], bmu[lo:hi], counts, sums, cuts[part], cuts[part + 1], part == 0)
        cursor = end
    return cursor


@njit(_PASS_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def search_pass(
    rows,
    chunk_rows,
    framed,
    products,
    codebook,
    aug,
    centre,
    frame,
    kappa,
    overflow,
    up,
    bmu,
    sq_dist,
    counts,
    sums,
    cuts,
    sync,
):
    """One thread's share of a whole search: every thread of :func:`_parallel_search`
    runs it on the same arguments but its own scratch buffers (``framed``, ``products``).

    The thread claims the next unsearched block from ``sync[BLOCKS_CLAIMED]`` until none
    is left, searching each in :func:`search_block` and flagging it searched. With
    statistics (``cuts`` of length ``n_parts + 1``) it first claims a column range from
    ``sync[PARTS_CLAIMED]``, and after each of its searches adds those columns of every
    block of the searched prefix (:func:`accumulate_columns`, while the rows are still in
    cache); when no block is left, it waits for the rest and adds them, then takes any
    column range no thread has claimed. Each sum receives its rows in row order, so the
    statistics are the same bits on any number of threads. ``sync[ABORT]`` (set when a
    thread failed) stops every loop and wait.
    """
    n = rows.shape[0]
    n_blocks = (n + chunk_rows - 1) // chunk_rows
    n_parts = cuts.shape[0] - 1
    own = atomic_add(sync, PARTS_CLAIMED, 1) if n_parts > 0 else 0
    cursor = 0
    while atomic_load(sync, ABORT) == 0:
        b = atomic_add(sync, BLOCKS_CLAIMED, 1)
        if b >= n_blocks:
            break
        start = b * chunk_rows
        stop = min(start + chunk_rows, n)
        search_block(
            rows,
            start,
            stop,
            framed,
            products,
            codebook,
            aug,
            centre,
            frame,
            kappa,
            overflow,
            up,
            bmu,
            sq_dist,
            True,
        )
        atomic_store(sync, SYNC_SIZE + b, 1)
        add_and_wake(sync, BLOCKS_SEARCHED, 1)
        if own < n_parts:
            cursor = _add_searched(rows, chunk_rows, bmu, counts, sums, cuts, own, cursor, sync, False)
    while own < n_parts and atomic_load(sync, ABORT) == 0:
        _add_searched(rows, chunk_rows, bmu, counts, sums, cuts, own, cursor, sync, True)
        add_and_wake(sync, PARTS_ADDED, 1)
        own = atomic_add(sync, PARTS_CLAIMED, 1)
        cursor = 0


# ------------------------------------------------------------------ threading helpers
_controller_lock = threading.Lock()
_blas_controller = None
_pools: dict[int, ThreadPoolExecutor] = {}
_local = threading.local()
_CPU_COUNT = os.cpu_count() or 1


def _blas():
    """threadpoolctl controller of the BLAS libraries (built once: it scans the process)."""
    global _blas_controller
    if _blas_controller is None:
        with _controller_lock:
            if _blas_controller is None:
                # np.dot inside Numba (the compiled block search) calls SciPy's BLAS:
                # load it before the scan so that the limits hold it too.
                import scipy.linalg.cython_blas  # noqa: F401
                from threadpoolctl import ThreadpoolController

                _blas_controller = ThreadpoolController().select(user_api="blas")
    return _blas_controller


def _current_blas_threads() -> int:
    try:
        counts = [lib.num_threads for lib in _blas().lib_controllers]
    except Exception:  # pragma: no cover - threadpoolctl failure: stay serial
        return 1
    return max([c for c in counts if c] or [1])


def blas_threads() -> int:
    """Number of threads the BLAS would use, had somvq not held it at one (1 if unknown)."""
    with _hold_lock:
        # (saved counts with no holder: a restore an interrupt cut short; the next search
        # must see the count from before, so that it holds the BLAS and puts it back)
        if _holders or _saved_counts is not None:
            return _threads_before_hold
    return _current_blas_threads()


# One hold of the BLAS at one thread for the whole process, counted: threadpoolctl's limit
# saves the thread count on entry and restores it on exit, so two threads' overlapping
# calls restored each other's 1 and left the BLAS at one thread for good (found by an
# adversarial pass). The first holder saves the counts, the last one restores them.
_hold_lock = threading.Lock()
_holders = 0
#: The BLAS libraries' thread counts to put back when the last hold ends: saved before
#: they are changed and cleared only once they are back, so that a hold whose setting or
#: restoring a Ctrl-C cut short (a KeyboardInterrupt raised inside threadpoolctl's calls)
#: is finished by the next hold instead of leaving every BLAS at one thread for good.
_saved_counts: list[int] | None = None
_threads_before_hold = 1


def _set_blas_threads(counts: Sequence[int]) -> None:
    """Set each BLAS library's thread count (``_blas().lib_controllers`` order)."""
    for library, count in zip(_blas().lib_controllers, counts):
        library.set_num_threads(count)


@contextlib.contextmanager
def blas_at_one_thread():
    """Hold every BLAS (SciPy's included) at one thread while any somvq search runs.

    Process-wide and reference-counted across threads. The BLAS thread count is a
    process-wide setting: a limit the user sets in another thread while a somvq call holds
    this one is replaced by the count saved on entry when the last hold ends.
    """
    global _holders, _saved_counts, _threads_before_hold
    entered = False
    try:
        with _hold_lock:
            _holders += 1
            entered = True  # (no call between the two: an interrupt cannot fall between them)
            if _holders == 1:
                if _saved_counts is None:  # else: an interrupted hold's counts, not yet back
                    _saved_counts = [library.num_threads for library in _blas().lib_controllers]
                    _threads_before_hold = max([c for c in _saved_counts if c] or [1])
                _set_blas_threads([1] * len(_saved_counts))
        yield
    finally:
        if entered:
            with _hold_lock:
                _holders -= 1
                if _holders == 0 and _saved_counts is not None:
                    _set_blas_threads(_saved_counts)
                    _saved_counts = None


@contextlib.contextmanager
def single_threaded_blas():
    """Hold the BLAS at one thread for a whole pass of many small searches.

    :func:`best_matching_units` limits the BLAS to one thread on every call; a mini-batch
    pass makes one call per batch, and setting the thread count back and forth each time
    costs more than a 1024-row product. Inside this context the calls skip it and still
    use the block pool sized by the BLAS thread count seen on entry. Re-entrant.
    """
    if getattr(_local, "outer_threads", None) is not None:
        yield
        return
    threads = blas_threads()
    limit = blas_at_one_thread() if threads > 1 else contextlib.nullcontext()
    with limit:
        _local.outer_threads = threads
        try:
            yield
        finally:
            _local.outer_threads = None


def search_threads() -> int:
    """Threads a search may use: the BLAS thread count seen by the outermost
    :func:`single_threaded_blas` (which holds the BLAS at one), else the BLAS's own."""
    outer = getattr(_local, "outer_threads", None)
    return blas_threads() if outer is None else outer


def _pool(n_threads: int) -> ThreadPoolExecutor:
    pool = _pools.get(n_threads)
    if pool is None:
        with _controller_lock:
            pool = _pools.get(n_threads)
            if pool is None:
                pool = _pools[n_threads] = ThreadPoolExecutor(n_threads, thread_name_prefix="somvq-bmu")
    return pool


def _products_buffer(rows: int, n_units: int, dtype, n_features: int = 0) -> np.ndarray:
    """A per-thread scratch (rows x K) buffer, reused between blocks and calls; with
    ``n_features``, enough rows for the fused search's scratch too (:func:`scores_rows`)."""
    if n_features:
        rows = scores_rows(rows, n_units, n_features, np.dtype(dtype).itemsize)
    buf = getattr(_local, "products", None)
    if buf is None or buf.dtype != dtype or buf.size < rows * n_units:
        buf = np.empty(rows * n_units, dtype=dtype)
        _local.products = buf
    return buf[: rows * n_units].reshape(rows, n_units)


def _augmented_buffer(rows: int, n_features: int, dtype) -> np.ndarray:
    """A per-thread scratch (rows x (D + 1)) buffer whose last column is 1."""
    buf = getattr(_local, "augmented", None)
    if buf is None or buf.dtype != dtype or buf.shape[1] != n_features + 1 or buf.shape[0] < rows:
        buf = np.empty((max(rows, 1), n_features + 1), dtype=dtype)
        buf[:, n_features] = 1.0
        _local.augmented = buf
    return buf[:rows]


def _block(X, start, stop):
    """Rows ``start:stop`` as a C-contiguous array (a copy only for other layouts)."""
    return np.ascontiguousarray(X[start:stop])


class _Search(NamedTuple):
    """What every block of one call needs: the frame, the augmented codebook, the bound."""

    scale: float  # power of two; 1.0 for none
    aug_codebook: np.ndarray  # [-2 W' | ||w'||^2]^T in the frame
    codebook: np.ndarray  # C-contiguous, as given (for the direct distances)
    kappa: float
    radius: float
    overflow: float
    direct_scale: float
    up: float
    aug: np.ndarray  # [-2 W' | ||w'||^2], (K, D + 1) C-contiguous (aug_codebook is its transpose)
    shift: np.ndarray  # the centre of the frame, zeros for the origin
    frame: np.ndarray  # RADIUS, SCALE, CENTRED, FINITE (:func:`prepare_frame`)


def _search_setup(codebook, dtype) -> _Search:
    """The frame and the augmented codebook in it (:func:`prepare_frame`, one compiled
    call of two or three O(K D) passes: every mini-batch step can afford it), and the
    constants of the error bound."""
    codebook = np.ascontiguousarray(codebook, dtype=dtype)
    n_units, n_features = codebook.shape
    constants = _constants(codebook.dtype, n_features)
    centre = np.empty(n_features, dtype=dtype)
    aug = np.empty((n_units, n_features + 1), dtype=dtype)
    frame = np.empty(4)
    prepare_frame(codebook, np.empty(n_features), centre, aug, constants.limit, frame)
    scale = float(frame[SCALE])
    return _Search(
        scale=scale,
        aug_codebook=aug.T,
        codebook=codebook,
        kappa=constants.kappa,
        radius=float(frame[RADIUS]),
        overflow=constants.overflow,
        # float32 differences squared never overflow float64; float64 ones may beyond 1e154
        direct_scale=1.0 if codebook.dtype == np.float32 else scale,
        up=constants.up,
        aug=aug,
        shift=centre,
        frame=frame,
    )


class _Constants(NamedTuple):
    kappa: float
    overflow: float
    up: float
    limit: float  # the unscaled range of :func:`somvq.distances.choose_scale`


@functools.lru_cache(maxsize=64)
def _constants(dtype, n_features: int) -> _Constants:
    finfo = np.finfo(dtype)
    return _Constants(
        kappa=distances.expanded_form_error(dtype, n_features),
        overflow=float(finfo.max) / 8.0,
        up=4.0 * float(finfo.eps),
        limit=distances._unscaled_limit(dtype),
    )


def _search_block(X, start, stop, search: _Search, out_bmu, out_sq_dist):
    """Winners (and distances) of the rows ``start:stop``: one compiled call
    (:func:`search_block`), the products left in this thread's scratch buffers
    (:func:`_products_buffer`, :func:`_augmented_buffer`: the pruned search reads them)."""
    if not math.isfinite(search.radius):
        # A non-finite codebook (a diverged fit, checked by the caller): no ranking is
        # meaningful; the plain argmin of the scores, and nan distances, without raising.
        with np.errstate(all="ignore"):
            prod = X[start:stop] @ search.aug_codebook[:-1] + search.aug_codebook[-1]
        np.argmin(prod, axis=1, out=out_bmu[start:stop])
        if out_sq_dist is not None:
            out_sq_dist[start:stop] = np.nan
        return
    rows = stop - start
    bmu = out_bmu[start:stop]
    sq = out_sq_dist[start:stop] if out_sq_dist is not None else None
    own_bmu = _writable(bmu, np.int64)
    own_sq = _writable(sq, np.float64)
    got_bmu = bmu if own_bmu else _scratch_vector("bmu", rows, np.int64)
    got_sq = sq if own_sq else _scratch_vector("sq_dist", rows, np.float64)
    framed = _augmented_buffer(rows, X.shape[1], X.dtype)
    prod = _products_buffer(rows, search.aug.shape[0], X.dtype, X.shape[1])
    search_block(
        _block(X, start, stop),
        0,
        rows,
        framed,
        prod,
        search.codebook,
        search.aug,
        search.shift,
        search.frame,
        search.kappa,
        search.overflow,
        search.up,
        got_bmu,
        got_sq,
        True,
    )
    if not own_bmu:
        bmu[:] = got_bmu
    if sq is not None and not own_sq:
        sq[:] = got_sq


def _writable(out, dtype) -> bool:
    """Whether the compiled search can write into ``out`` directly."""
    return (
        isinstance(out, np.ndarray) and out.dtype == dtype and out.flags.c_contiguous and out.flags.writeable
    )


def _scratch_vector(name: str, rows: int, dtype) -> np.ndarray:
    """A per-thread scratch vector (winners or distances nobody asked for)."""
    buf = getattr(_local, name, None)
    if buf is None or buf.shape[0] < rows:
        buf = np.empty(max(rows, CHUNK_ROWS), dtype=dtype)
        setattr(_local, name, buf)
    return buf[:rows]


def balanced_chunk_rows(n: int, chunk_rows: int) -> int:
    """Rows per block: at most ``chunk_rows``, an even number of near-equal blocks.

    Depends on ``n`` and ``chunk_rows`` only (never on the threads: determinism). With
    ``ceil(n / chunk_rows)`` blocks rounded up to an even count, two threads get the same
    work: digits (1797 rows) is 4 blocks of 450 instead of 512, 512, 512, 261, where one
    thread searched 1024 rows and the other 773.
    """
    chunk_rows = max(int(chunk_rows), 1)
    n_blocks = -(-n // chunk_rows)
    if n_blocks > 1 and n_blocks % 2:
        n_blocks += 1
    return max(1, -(-n // max(n_blocks, 1)))


def best_matching_units(
    X,
    codebook,
    codebook_sq_norms,
    out_bmu,
    out_sq_dist=None,
    counts=None,
    sums=None,
    chunk_rows=CHUNK_ROWS,
    n_threads=None,
):
    """Winners (and optionally squared distances and statistics) for every row of ``X``.

    Parameters
    ----------
    X : (n, D) float32 or float64 array
    codebook : (K, D) array of the same dtype
    codebook_sq_norms : ignored (pass None)
        The norms are computed here, in float64 and in the search's frame; the parameter
        stays so that existing callers keep working.
    out_bmu : (n,) int64 buffer, filled with the index of each row's BMU: the float64
        argmin of ``||x - w_k||^2``, lowest index on ties
    out_sq_dist : (n,) float64 buffer or None, filled with ``||x - w_bmu||^2`` computed
        directly in float64
    counts, sums : (K,) and (K, D) float64 buffers or None; hit counts and per-unit sums are
        *added* into them, in row order
    chunk_rows : int
        Most rows per block; the blocks are :func:`balanced_chunk_rows` of ``n`` and this
        number, so they (and the results) do not depend on the threads.
    n_threads : int or None
        Blocks searched at once; ``None``: the BLAS's current thread count.
    """
    n = X.shape[0]
    if n == 0:
        return
    chunk_rows = balanced_chunk_rows(n, chunk_rows)
    search = _search_setup(codebook, X.dtype)
    starts = range(0, n, chunk_rows)
    outer = getattr(_local, "outer_threads", None)
    threads = blas_threads() if outer is None else outer
    if n_threads is None:
        n_threads = threads
    n_threads = min(int(n_threads), len(starts), _CPU_COUNT)
    # BLAS runs single-threaded on every block, whatever the path: the blocks' products
    # are then the same bits on any thread count, and a small multi-threaded GEMM on a
    # busy machine waits a scheduler slice for its second thread (docs/performance.md).
    # Inside single_threaded_blas() the limit is already held.
    limit = blas_at_one_thread() if threads > 1 and outer is None else contextlib.nullcontext()
    with limit:
        if n_threads <= 1 or not math.isfinite(search.radius):
            # one thread (rows in another layout: each block copied, never X), and a
            # non-finite codebook (:func:`_search_block`'s fallback)
            for start in starts:
                stop = min(start + chunk_rows, n)
                _search_block(X, start, stop, search, out_bmu, out_sq_dist)
                if counts is not None:
                    accumulate_statistics(_block(X, start, stop), out_bmu[start:stop], counts, sums)
            return
        if X.flags.c_contiguous:
            _parallel_search(X, chunk_rows, search, out_bmu, out_sq_dist, counts, sums, n_threads)
            return
        # rows in another layout: copied COPY_BLOCKS blocks at a time (never the whole of X)
        # and searched in parallel; the parts follow one another, so every sum still gets
        # its rows in row order, and the blocks are those of the whole (a part's length is
        # a whole number of blocks)
        span = chunk_rows * COPY_BLOCKS
        for start in range(0, n, span):
            stop = min(start + span, n)
            _parallel_search(
                np.ascontiguousarray(X[start:stop]),
                chunk_rows,
                search,
                out_bmu[start:stop],
                None if out_sq_dist is None else out_sq_dist[start:stop],
                counts,
                sums,
                n_threads,
            )


#: Blocks of rows in another layout than C copied at once for a parallel search.
COPY_BLOCKS = 16


def _column_parts(n_features: int, n_parts: int) -> np.ndarray:
    """Cuts of ``n_parts`` column ranges of near-equal width covering ``0:n_features``
    (range ``p`` is ``cuts[p]:cuts[p + 1]``); inner boundaries on multiples of 8 columns
    (a 64-byte line of the float64 sums) when the rows are wide enough, so that two
    threads never write the same cache line."""
    align = 8 if n_features >= 8 * n_parts else 1
    cuts = [min(n_features, round(p * n_features / n_parts / align) * align) for p in range(n_parts + 1)]
    cuts[-1] = n_features
    return np.array(cuts, dtype=np.int64)


_NO_CUTS = np.zeros(1, dtype=np.int64)  # no column ranges: no statistics
_NO_COUNTS = np.zeros(0)
_NO_SUMS = np.zeros((0, 0))


def _parallel_search(X, chunk_rows, search, out_bmu, out_sq_dist, counts, sums, n_threads):
    """The blocks of one call shared by the caller and ``n_threads - 1`` pool workers.

    Every thread runs :func:`search_pass` once, on its own scratch buffers: blocks and
    column ranges of the statistics are claimed from shared counters, the searched
    blocks flagged, and the waits are compiled spins and futex sleeps (:mod:`cpu_sync`),
    so no thread takes the GIL between its first block and its last addition. Exactly
    ``n_threads`` threads work at most; a late or busy worker only means the caller does
    more (a worker that starts after the call has ended claims nothing). The caller then
    waits for every column range to be added (or every block searched). A failure on any
    thread sets ``sync[ABORT]``, which ends every loop and wait, and is raised here.
    """
    n, n_features = X.shape
    n_blocks = -(-n // chunk_rows)
    bmu = out_bmu if _writable(out_bmu, np.int64) else np.empty(n, dtype=np.int64)
    if out_sq_dist is not None and _writable(out_sq_dist, np.float64):
        sq = out_sq_dist
    else:
        sq = np.empty(n, dtype=np.float64)
    if counts is None:
        cuts, counts, sums = _NO_CUTS, _NO_COUNTS, _NO_SUMS
    else:
        cuts = _column_parts(n_features, n_threads)
    sync = np.zeros(SYNC_SIZE + n_blocks, dtype=np.int64)

    def run():
        search_pass(
            X,
            chunk_rows,
            _augmented_buffer(chunk_rows, n_features, X.dtype),
            _products_buffer(chunk_rows, search.aug.shape[0], X.dtype, n_features),
            search.codebook,
            search.aug,
            search.shift,
            search.frame,
            search.kappa,
            search.overflow,
            search.up,
            bmu,
            sq,
            counts,
            sums,
            cuts,
            sync,
        )

    n_parts = cuts.shape[0] - 1
    if n_parts:
        run_on_threads(run, sync, n_threads, PARTS_ADDED, n_parts, "best_matching_units")
    else:
        run_on_threads(run, sync, n_threads, BLOCKS_SEARCHED, n_blocks, "best_matching_units")
    if bmu is not out_bmu:
        out_bmu[:] = bmu
    if out_sq_dist is not None and sq is not out_sq_dist:
        out_sq_dist[:] = sq


def _abort(sync):
    """Stop every thread of a :func:`search_pass` (from Python, on a failure)."""
    sync[ABORT] = 1
    wake(sync)


def run_on_threads(
    run, sync, n_threads: int, index: int, target: int, what: str, *, stops: bool = False
) -> bool:
    """``run()`` on the calling thread and on ``n_threads - 1`` pool workers, then the
    caller waits (compiled, :func:`wait_until`) until ``sync[index]`` reaches ``target``.

    ``run`` is one compiled call that claims its work from ``sync`` and ends when none is
    left, so a late or busy worker only means the others do more, and one that starts
    after the wait has ended claims nothing (give each call its own ``sync``). A failure
    on any thread sets ``sync[ABORT]``, which ends every loop and wait, and is raised here
    (``what`` names the search in the error of a thread that stopped without one);
    futures still queued are cancelled. ``stops``: the work may end early by
    ``sync[STOP]`` (the mini-batch pass after a diverged step); returns whether it ran to
    ``target`` (always ``True`` without ``stops``).
    """
    errors = []

    def work():
        try:
            run()
        except BaseException as exc:  # re-raised by the caller
            errors.append(exc)
            _abort(sync)

    pool = _pool(n_threads - 1)
    futures = [pool.submit(work) for _ in range(n_threads - 1)]
    try:
        run()
        ended = wait_until(sync, index, target)
    except BaseException:
        _abort(sync)
        raise
    finally:
        for future in futures:  # one still queued (pool busy elsewhere) never runs
            future.cancel()
    if errors:
        raise errors[0]
    if not ended and (not stops or sync[ABORT] != 0):  # pragma: no cover
        # only a failed thread aborts, and it left its error
        raise RuntimeError(f"{what}: a search thread stopped without an error")
    return ended
