"""Quality measures of a map (docs/algorithms.md §10).

All functions take plain arrays (data, codebook, :class:`~somvq.grids.Grid`), so the
estimator, the torch plugin and the benchmarks score codebooks with one shared definition.
Distances to the codebook are :func:`somvq.distances.squared_distances` (exact at any
offset and scale), computed block by block: memory is O(block * K), never O(N * K). For
float64 data so small that its squared distances would underflow (below ~1e-154), each
measure runs on the values scaled by a power of two and scales its result back
(:func:`somvq.distances.underflow_scaled`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._validation import finite_range_limit, largest_magnitude
from .distances import RECOMPUTE, power_of_two_scale, squared_distances, underflow_scaled
from .grids import Grid

__all__ = [
    "quantization_error",
    "topographic_error",
    "umatrix",
    "perplexity",
    "used_units",
    "neighbour_distance_ratio",
    "two_best_matching_units",
    "distortion",
    "topographic_product",
    "trustworthiness",
    "neighbourhood_preservation",
    "combined_error",
    "QUALITY_MEASURES",
    "quality_suite",
]

_BLOCK_ROWS = 1024


def _squared_distance_blocks(X: np.ndarray, codebook: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, sq)`` with ``sq`` the (rows x K) squared distances of a block.

    ``sq`` is :func:`somvq.distances.squared_distances` (float64, exact to ~1e-8 relative
    at any offset and scale).
    """
    for start in range(0, X.shape[0], _BLOCK_ROWS):
        block = X[start : start + _BLOCK_ROWS]
        yield start, start + block.shape[0], squared_distances(block, codebook)


def _check_data(name: str, X: Any, codebook: Any, grid: Grid | None = None) -> tuple[Any, np.ndarray]:
    """``(X, codebook)`` as arrays, refused with a ValueError naming ``name`` and the shapes
    unless the codebook is (K, D) with K >= 1, ``X`` (when not None) (n, D) with n >= 1,
    and ``grid`` (when given) has K units; and refused, naming the rows or units, unless
    every value is finite (:func:`_check_finite`)."""
    codebook = np.asarray(codebook)
    if codebook.ndim != 2 or codebook.shape[0] == 0 or codebook.shape[1] == 0:
        raise ValueError(f"{name} needs a 2-D codebook (K, D) with K, D >= 1, got shape {codebook.shape}.")
    if grid is not None and grid.n_units != codebook.shape[0]:
        raise ValueError(
            f"{name}: the codebook has {codebook.shape[0]} units but {grid!r} has {grid.n_units}."
        )
    _check_finite(name, "the codebook", codebook, "unit")
    if X is None:
        return None, codebook
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{name} needs a 2-D X with at least one row, got shape {X.shape}.")
    if X.shape[1] != codebook.shape[1]:
        raise ValueError(f"{name}: X has {X.shape[1]} features but the codebook has {codebook.shape[1]}.")
    _check_finite(name, "X", X, "row")
    return X, codebook


def _check_finite(name: str, what: str, values: np.ndarray, item: str) -> None:
    """Refuse NaN or inf in ``values`` (X or the codebook, ``what``), naming how many of
    its rows or units (``item``) hold one, the first few and the first such value.

    The measures are defined on complete, finite rows: a NaN would make them NaN or, in a
    BMU search, silently pick unit 0. One ``np.isfinite`` pass (integer data is finite).
    """
    if values.dtype.kind != "f":
        return
    finite = np.isfinite(values)
    if finite.all():
        return
    from .missing import _row_list

    bad = np.flatnonzero(~finite.all(axis=1))
    first = float(values[bad[0]][~finite[bad[0]]][0])
    hint = ""
    if what == "X" and np.isnan(values).any():
        hint = (
            " For rows with missing values (NaN), a KSOM(missing='ignore') scores them with "
            "its quantization_error / topographic_error (masked distances); or leave the rows out."
        )
    raise ValueError(
        f"{name} needs finite values: {item} {int(bad[0])} of {what} holds {first} "
        f"({bad.size} such {item}s: {_row_list(bad)}).{hint}"
    )


def _check_labels(name: str, labels: Any, n_units: int) -> np.ndarray:
    """Labels as a flat int array, refused unless every one is a unit index in [0, n_units)."""
    flat: np.ndarray = np.asarray(labels).ravel()
    if flat.size == 0:  # no labels (an empty list reads as float64): none to check
        return flat.astype(np.int64)
    if not np.issubdtype(flat.dtype, np.integer):
        raise ValueError(f"{name}: labels must be integer unit indices, got dtype {flat.dtype}.")
    outside = flat[(flat < 0) | (flat >= n_units)]
    if outside.size:
        raise ValueError(f"{name}: labels must be unit indices in [0, {n_units}), found {outside[0].item()}.")
    return flat


def quantization_error(X: np.ndarray, codebook: np.ndarray, *, squared: bool = False) -> float:
    """Mean distance from each row to its best-matching unit.

    ``squared=False`` (default): mean of ``||x - w_bmu||`` (MiniSom's and most SOM tools'
    definition). ``squared=True``: mean of ``||x - w_bmu||^2`` (k-means inertia / N).
    """
    X, codebook = _check_data("quantization_error", X, codebook)
    X, codebook, s = underflow_scaled(X, codebook)
    total = 0.0
    for _, _, sq in _squared_distance_blocks(X, codebook):
        best = sq.min(axis=1)
        total += float(best.sum() if squared else np.sqrt(best).sum())
    return total / int(X.shape[0]) / (s * s if squared else s)


def two_best_matching_units(X: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Indices of the best and second-best unit for each row, shape ``(n, 2)``."""
    X, codebook = _check_data("two_best_matching_units", X, codebook)
    X, codebook, _ = underflow_scaled(X, codebook)
    return _two_best(X, codebook)[0]


#: Values of the differences :func:`_two_best` recomputes at once (32 MB of float64).
_PAIR_VALUES = 1 << 22


def _two_best(X: np.ndarray, codebook: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`two_best_matching_units` and the squared distance to the best, in one pass.

    Ranked by direct float64 distances, as ``predict`` ranks: the units whose
    :func:`squared_distances` entry may be within rounding of the runner-up's are
    recomputed as ``sum_j (x_j - w_j)^2`` (usually two a row), and on equal distances the
    lower index wins, for the runner-up too.
    """
    if codebook.shape[0] < 2:
        raise ValueError(f"two best units need a codebook of >= 2 units, got {codebook.shape[0]}.")
    out = np.empty((X.shape[0], 2), dtype=np.int64)
    best = np.empty(X.shape[0])
    W64 = np.asarray(codebook, dtype=np.float64)
    # an entry is within a relative 1 / RECOMPUTE of its exact value (squared_distances)
    slack = (1.0 + 1.0 / RECOMPUTE) / (1.0 - 1.0 / RECOMPUTE)
    for start, stop, sq in _squared_distance_blocks(X, codebook):
        runner_up = np.partition(sq, 1, axis=1)[:, 1]
        close = sq <= runner_up[:, None] * slack
        r, u = np.nonzero(close)
        sq[~close] = np.inf
        X64 = np.asarray(X[start:stop], dtype=np.float64)
        pairs = max(1, _PAIR_VALUES // codebook.shape[1])  # a map of equal units: every pair
        for first_pair in range(0, r.size, pairs):
            rr, uu = r[first_pair : first_pair + pairs], u[first_pair : first_pair + pairs]
            diff = X64[rr] - W64[uu]
            sq[rr, uu] = np.einsum("ij,ij->i", diff, diff)
        rows = np.arange(sq.shape[0])
        first = np.argmin(sq, axis=1)  # the first minimum: the lowest index on ties
        best[start:stop] = sq[rows, first]
        sq[rows, first] = np.inf
        out[start:stop, 0] = first
        out[start:stop, 1] = np.argmin(sq, axis=1)
    return out, best


def topographic_error(X: np.ndarray, codebook: np.ndarray, grid: Grid) -> float:
    """Fraction of rows whose best and second-best units are not grid neighbours.

    Neighbours are those of :attr:`Grid.adjacency`: the 8 surrounding units on a
    rectangular 2-D grid (diagonals included, as in the paper's hard neighbourhood and in
    MiniSom), 6 on a hexagonal grid, wrapping around periodic axes.
    """
    X, codebook = _check_data("topographic_error", X, codebook, grid)
    if grid.n_units < 2:
        return 0.0
    X, codebook, _ = underflow_scaled(X, codebook)
    two = _two_best(X, codebook)[0]
    adjacent = grid.are_neighbours(two[:, 0], two[:, 1])  # O(n), no K x K matrix
    return float(1.0 - adjacent.mean())


def umatrix(codebook: np.ndarray, grid: Grid) -> np.ndarray:
    """U-matrix: for each unit, the mean distance of its vector to its grid neighbours'.

    Returned in the grid's shape (``grid.shape``); units without neighbours get 0.
    """
    _, codebook = _check_data("umatrix", None, codebook, grid)
    w = codebook.astype(np.float64)
    out = np.zeros(grid.n_units)
    rows, cols = grid.neighbour_pairs  # O(K) pairs, no K x K matrix
    diff = w[rows] - w[cols]
    # the differences in units of a power of two near their largest: squares of a spread
    # below ~1e-154 underflowed (a U-matrix of zeros), beyond ~1e154 overflowed
    peak = float(np.max(np.abs(diff))) if diff.size else 0.0
    scale = power_of_two_scale(peak) if 0.0 < peak < np.inf else 1.0
    dist = np.linalg.norm(diff * scale, axis=1) / scale
    np.add.at(out, rows, dist)
    degree = np.bincount(rows, minlength=grid.n_units)
    np.divide(out, degree, out=out, where=degree > 0)
    return out.reshape(grid.shape)


def perplexity(labels: np.ndarray, n_units: int) -> float:
    """Codebook perplexity ``exp(-sum_k p_k log(p_k + 1e-10))`` of the usage frequencies."""
    labels = _check_labels("perplexity", labels, n_units)
    if labels.size == 0:
        raise ValueError("perplexity needs at least one label, got 0.")
    p = np.bincount(labels, minlength=n_units).astype(np.float64) / labels.size
    return float(np.exp(-np.sum(p * np.log(p + 1e-10))))


def used_units(labels: np.ndarray, n_units: int) -> int:
    """Number of distinct units that are the BMU of at least one row."""
    labels = _check_labels("used_units", labels, n_units)
    return int(np.count_nonzero(np.bincount(labels, minlength=n_units)))


def neighbour_distance_ratio(codebook: np.ndarray, grid: Grid) -> float:
    """Mean ``||w_k - w_l||`` over grid-neighbour pairs divided by the mean over all pairs.

    About 1 for a map without topology (e.g. EMA-VQ); well below 1 for an ordered map.
    """
    _, codebook = _check_data("neighbour_distance_ratio", None, codebook, grid)
    codebook = underflow_scaled(codebook, codebook)[1]  # (a ratio: the scale cancels)
    peak = largest_magnitude(codebook) if codebook.size else 0.0
    if peak > finite_range_limit(codebook.shape[1]):  # squares would overflow: brought to [1, 2)
        codebook = np.asarray(codebook, dtype=np.float64) * power_of_two_scale(peak)
    if grid.n_units < 2:
        raise ValueError("neighbour_distance_ratio needs at least 2 units.")
    rows, cols = grid.neighbour_pairs
    if rows.size == 0:
        return float("nan")
    # Mean over all pairs k < l (the distance is symmetric), a block of rows at a time
    # against the columns to their right: O(block K) memory, half the work of all pairs.
    # Distances are squared_distances (exact off the origin; ~5 block x K float64
    # temporaries, hence blocks of 2^17 / K rows).
    n_units = grid.n_units
    block = max(1, (1 << 17) // n_units)
    total_all = 0.0
    for start in range(0, n_units, block):
        stop = min(start + block, n_units)
        pair = np.sqrt(squared_distances(codebook[start:stop], codebook[start:]))
        rows_here = stop - start  # columns [start, stop) hold the diagonal tile: keep l > k
        total_all += float(pair[:, rows_here:].sum()) + float(np.triu(pair[:, :rows_here], k=1).sum())
    total_all *= 2.0
    mean_all = total_all / (n_units * (n_units - 1))
    if mean_all == 0:
        return float("nan")
    w = np.asarray(codebook, dtype=np.float64)
    neighbour = np.sqrt(((w[rows] - w[cols]) ** 2).sum(1))  # direct differences: exact
    return float(neighbour.mean() / mean_all)


# --------------------------------------------------------------------------------------
# The quality suite (issue 15): every measure takes (X, codebook, grid, ...).
# --------------------------------------------------------------------------------------


def _bmus(X: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """BMU of every row: the compiled search (:func:`somvq.algorithms.assign`).

    Its winners are the float64 argmin of the squared distances of the stored values,
    lowest index on ties, like ``squared_distances(...).argmin(axis=1)``, at a fraction of
    the cost; data and codebook of different or non-float dtypes are compared in float64.
    """
    from .algorithms import assign

    if X.dtype != codebook.dtype or X.dtype not in (np.float32, np.float64):
        X, codebook = X.astype(np.float64), codebook.astype(np.float64)
    bmu: np.ndarray = assign(np.ascontiguousarray(X), np.ascontiguousarray(codebook))[0]
    return bmu


def distortion(
    X: np.ndarray,
    codebook: np.ndarray,
    grid: Grid,
    *,
    radius: float = 1.0,
    neighbourhood: str = "gaussian",
    hard_weight: float = 1.0,
) -> float:
    """SOM distortion (energy) with a given neighbourhood: the cost the SOM descends.

    ``E = (1/N) sum_i sum_k h(d_grid(c_i, k); radius) ||x_i - w_k||^2`` with ``c_i`` the
    best-matching unit of ``x_i`` (nearest codebook vector) and ``h`` the neighbourhood
    function :func:`somvq.neighbourhoods.neighbourhood_weights` (``neighbourhood``,
    ``radius``, ``hard_weight``). With ``neighbourhood="none"`` it is the mean squared
    quantization error. Reference: Lampinen & Oja (1992), "Clustering properties of
    hierarchical self-organizing maps", J. Math. Imaging Vision 2; Heskes (1999), "Energy
    functions for self-organizing maps" (Heskes' variant picks ``c_i`` minimising the
    weighted sum; here ``c_i`` is the usual BMU, as in SOMperf's ``distortion``).

    Cost: O(N K D) time, O(block K) memory (blocks of 1024 rows).
    """
    from .neighbourhoods import neighbourhood_weights

    X, codebook = _check_data("distortion", X, codebook, grid)
    from .parameters import MIN_RADIUS

    if not (isinstance(radius, (int, float, np.integer, np.floating)) and MIN_RADIUS <= radius < math.inf):
        raise ValueError(f"distortion: radius={radius!r} must be a real number >= {MIN_RADIUS} (and finite).")
    X, codebook, s = underflow_scaled(X, codebook)
    total = 0.0
    for _, _, sq in _squared_distance_blocks(X, codebook):
        bmu = sq.argmin(axis=1)
        h = neighbourhood_weights(grid._distance_rows(bmu), neighbourhood, radius, hard_weight)
        total += float((h * sq).sum())
    return float(total / X.shape[0] / (s * s))


def _lex_rank_order(d: np.ndarray) -> np.ndarray:
    """Per row, column indices sorted by (value, column): a stable argsort."""
    return np.argsort(d, axis=1, kind="stable")


def topographic_product(X: Any, codebook: np.ndarray, grid: Grid) -> float:
    """Topographic product P of Bauer & Pawelzik (1992); 0 for a perfectly ordered map.

    For unit j let ``n_k^A(j)`` be its k-th nearest unit on the grid and ``n_k^V(j)`` its
    k-th nearest unit in input space (codebook distances), ties broken by the lower unit
    index in both spaces. With ``Q1(j,k) = d_V(w_j, w_{n_k^A}) / d_V(w_j, w_{n_k^V})`` and
    ``Q2(j,k) = d_A(j, n_k^A) / d_A(j, n_k^V)``,
    ``P = 1/(K(K-1)) sum_j sum_{k=1}^{K-1} log( prod_{l<=k} Q1(j,l) Q2(j,l) )^(1/(2k))``.
    P < 0: the map is too small a dimension for the data (folds); P > 0: too large.
    ``X`` is not used (accepted for the common ``(X, codebook, grid)`` signature; pass
    None). Duplicate codebook vectors make ``Q1`` infinite (P is then not finite).

    Reference: H.-U. Bauer & K. R. Pawelzik (1992), "Quantifying the neighborhood
    preservation of self-organizing feature maps", IEEE Trans. Neural Networks 3(4).

    Cost: O(K^2 (D + log K)) time, O(block K) memory (blocks of units).
    """
    _, codebook = _check_data("topographic_product", None, codebook, grid)
    codebook = codebook.astype(np.float64)
    codebook = underflow_scaled(codebook, codebook)[1]  # (ratios of distances)
    n_units = grid.n_units
    if n_units < 2:
        raise ValueError("topographic_product needs at least 2 units.")
    block = max(1, (1 << 18) // n_units)
    total = 0.0
    ks = np.arange(1, n_units, dtype=np.float64)
    for start in range(0, n_units, block):
        stop = min(start + block, n_units)
        units = np.arange(start, stop)
        dv = np.sqrt(np.maximum(squared_distances(codebook[start:stop], codebook), 0.0))
        da = grid._distance_rows(units)
        rows = np.arange(stop - start)[:, None]
        # self first in both orders (distance 0, and duplicates of the unit sort after it
        # only if they have a higher index): drop the self column explicitly
        for arr in (dv, da):
            arr[rows[:, 0], units] = -1.0
        order_a = _lex_rank_order(da)[:, 1:]
        order_v = _lex_rank_order(dv)[:, 1:]
        for arr in (dv, da):
            arr[rows[:, 0], units] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            log_q1 = np.log(dv[rows, order_a]) - np.log(dv[rows, order_v])
            log_q2 = np.log(da[rows, order_a]) - np.log(da[rows, order_v])
            log_p3 = np.cumsum(log_q1 + log_q2, axis=1) / (2.0 * ks)
        total += float(log_p3.sum())
    return total / (n_units * (n_units - 1))


#: Query rows and columns per tile of the rank measures: a (rows x columns) float64 GEMM
#: product (4 MiB) that the compiled pass reads while it is in cache.
_RANK_TILE = (256, 2048)


def _rank_error(
    X: Any,
    codebook: Any,
    grid: Grid,
    n_neighbors: int,
    sample: int | None,
    random_state: Any,
    name: str,
    swap: bool,
) -> float:
    """Venna & Kaski's measure (see trustworthiness); ``swap``: the input space is the "near" one.

    For each query row i: its k nearest rows in the near space (ties: lower row), their
    ranks in the far space (1 = nearest, ties: lower row), the sum of ``max(rank - k, 0)``.
    The map side works per unit (rows grouped by BMU: only K distinct positions); the
    input side streams GEMM tiles through the compiled passes of
    :mod:`somvq._kernels.cpu_rank` (exact comparisons, see there).
    """
    from ._kernels import cpu_rank
    from ._kernels.cpu_bmu import _pool, blas_threads, single_threaded_blas
    from .distances import reference_frame

    X, codebook = _check_data(name, X, codebook, grid)
    n = X.shape[0]
    k = n_neighbors
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < n / 2:
        raise ValueError(
            f"{name}: n_neighbors must be an int in [1, n_samples / 2) = [1, {n / 2}), got {k!r}."
        )
    k = int(k)
    if sample is not None and (
        isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1
    ):  # checked first: a float above n_samples passed before (found by a bug hunt)
        raise ValueError(f"{name}: sample must be None or a positive int, got {sample!r}.")
    if sample is None or sample >= n:
        queries = np.arange(n)
    else:
        queries = np.sort(np.random.default_rng(random_state).choice(n, size=int(sample), replace=False))
    bmus = _bmus(X, codebook)
    # Map side: the rows of each unit in ascending order.
    n_units = grid.n_units
    rows_by_unit = np.argsort(bmus, kind="stable")
    unit_start = np.zeros(n_units + 1, dtype=np.int64)
    np.cumsum(np.bincount(bmus, minlength=n_units), out=unit_start[1:])
    # Input side: the rows in their own reference frame (centred, scaled by a power of two).
    X64 = np.ascontiguousarray(X, dtype=np.float64)
    frame = reference_frame(X64)
    Xc = X64 - frame.centre if frame.centre is not None else X64.copy()
    if frame.scale != 1.0:
        Xc *= frame.scale
    x2 = np.einsum("ij,ij->i", Xc, Xc)
    xn = np.sqrt(x2)
    xn_max = float(xn.max())
    u = float(np.finfo(np.float64).eps) / 2.0
    kappa = 2.0 * 1.25 * (2 * X.shape[1] + 8) * u  # twice squared_distances' entry bound
    delta = 2.0 * (X.shape[1] + 4) * u  # relative error of the direct sum
    # The tiles' GEMM runs in float32 (twice the speed) when the rows' norms keep float32
    # products normal: rounding the operands and summing D products in float32 moves
    # 2 x'_i.x'_l by at most (D + 2.1) u32 (||x'_i|| + ||x'_l||)^2 / 2, added to the bound.
    if 2.0**-20 <= xn_max <= 2.0**20:
        Xg = Xc.astype(np.float32)
        kappa += (X.shape[1] + 3) * float(np.finfo(np.float32).eps) / 2.0
    else:
        Xg = Xc
    del Xc  # the tiles read Xg only
    if not swap:
        # the k nearest rows on the map of every query's unit (k + 1: the query may be one)
        units = np.unique(bmus[queries])
        first = np.empty((n_units, k + 1), dtype=np.int64)
        step = max(1, (1 << 20) // n_units)
        for start in range(0, units.size, step):
            block = units[start : start + step]
            g_rows = grid._distance_rows(block)
            for unit, g in zip(block, g_rows):
                order = np.argsort(g, kind="stable")
                cpu_rank.map_nearest_rows(g, order, unit_start, rows_by_unit, k + 1, first[unit])
    q_rows, c_cols = _RANK_TILE

    def block_total(q0: int) -> int:
        """Sum of max(rank - k, 0) over the queries of one block (runs on a pool thread)."""
        q = queries[q0 : q0 + q_rows]
        Xq = Xg[q]
        tile = np.empty((q.size, min(c_cols, n)), dtype=Xg.dtype)
        if swap:
            best_d = np.full((q.size, k), np.inf)
            best_j = np.full((q.size, k), n, dtype=np.int64)
        else:
            candidates = first[bmus[q]]
            keep = candidates != q[:, None]
            keep[keep.all(axis=1), k] = False  # the query is not among them: drop the (k+1)-th
            nbr = candidates[keep].reshape(q.size, k)
            v = np.empty((q.size, k))
            cpu_rank.direct_pairs(X64, q, nbr, frame.scale, v)
            ascending = np.argsort(v, axis=1, kind="stable")  # count_closer's order
            v = np.ascontiguousarray(np.take_along_axis(v, ascending, axis=1))
            nbr = np.ascontiguousarray(np.take_along_axis(nbr, ascending, axis=1))
            counts = np.zeros((q.size, k), dtype=np.int64)
        for c0 in range(0, n, c_cols):
            c1 = min(c0 + c_cols, n)
            dot = tile[:, : c1 - c0]
            np.matmul(Xq, Xg[c0:c1].T, out=dot)
            if swap:
                cpu_rank.nearest_rows(
                    dot, q, c0, x2, xn, X64, frame.scale, kappa, delta, xn_max, best_d, best_j
                )
            else:
                cpu_rank.count_closer(
                    dot, q, c0, x2, xn, X64, frame.scale, kappa, delta, xn_max, v, nbr, counts
                )
        if swap:
            ranks = np.empty((q.size, k), dtype=np.int64)
            cpu_rank.map_ranks(q, grid._distance_rows(bmus[q]), best_j, bmus, unit_start, rows_by_unit, ranks)
        else:
            ranks = counts + 1
        return int(np.maximum(ranks - k, 0).sum())

    threads = min(blas_threads(), os.cpu_count() or 1)
    q_rows = max(1, min(q_rows, -(-queries.size // threads)))  # at least one block per thread
    blocks = range(0, queries.size, q_rows)
    with single_threaded_blas():
        if threads <= 1 or len(blocks) == 1:
            total = sum(block_total(q0) for q0 in blocks)
        else:
            total = sum(_pool(threads).map(block_total, blocks))
    return float(1.0 - total * 2.0 / (queries.size * k * (2.0 * n - 3.0 * k - 1.0)))


def trustworthiness(
    X: np.ndarray,
    codebook: np.ndarray,
    grid: Grid,
    *,
    n_neighbors: int = 5,
    sample: int | None = None,
    random_state: Any = None,
) -> float:
    """Trustworthiness of the map's projection of X (row -> its BMU's grid position), in [0, 1].

    ``T(k) = 1 - 2 / (N k (2N - 3k - 1)) sum_i sum_{j in U_k(i)} (r(i, j) - k)``: ``U_k(i)``
    are the rows among the k nearest to row i on the map but not in input space, ``r(i, j)``
    the rank of j among i's neighbours in input space (1 = nearest). Distances on the map are
    grid distances between BMUs (:attr:`Grid.distances`: exact on hexagonal grids too,
    wrapping on periodic axes). Ties (rows sharing a BMU are at map distance 0, units at
    equal grid distances) are broken by the lower row index in both spaces, so where
    neither space has ties this equals
    ``sklearn.manifold.trustworthiness(X, grid.coordinates[bmus], n_neighbors=k)``.
    Input-space distances are compared as direct float64 sums ``sum_j (x_ij - x_lj)^2``
    (equal rows, and equal distances on small-integer data, tie exactly).

    Reference: J. Venna & S. Kaski (2001), "Neighborhood preservation in nonlinear
    projection methods: an experimental study", ICANN 2001, LNCS 2130.

    Parameters
    ----------
    n_neighbors : int
        k, with ``1 <= k < N / 2``.
    sample : int or None
        Evaluate the sum over ``sample`` query rows drawn without replacement (ranks are
        still taken among all N rows), an unbiased estimate of the sum over all rows.
    random_state : seed of ``sample``.

    Cost: O(S N (D + k)) time for S query rows (S = N without ``sample``): one GEMM of
    S x N x D in tiles of 256 x 2048 and a compiled pass over each tile; the map side is
    O(K) per unit. Memory: O(N D) (the rows in their frame) plus 4 MiB per thread, never
    O(N^2) (scikit-learn's is). About 0.4 ms of CPU per query row at N = 1e5, D = 64 on a
    random map (all 1e5 query rows: 39 s of CPU; docs/analysis.md).
    """
    return _rank_error(X, codebook, grid, n_neighbors, sample, random_state, "trustworthiness", swap=False)


def neighbourhood_preservation(
    X: np.ndarray,
    codebook: np.ndarray,
    grid: Grid,
    *,
    n_neighbors: int = 5,
    sample: int | None = None,
    random_state: Any = None,
) -> float:
    """Neighbourhood preservation (continuity) of the map's projection of X, in [0, 1].

    ``M(k) = 1 - 2 / (N k (2N - 3k - 1)) sum_i sum_{j in V_k(i)} (r^(i, j) - k)``:
    ``V_k(i)`` are the rows among the k nearest to row i in input space but not on the map,
    ``r^(i, j)`` the rank of j on the map (grid distance between BMUs). Ties broken by the
    lower row index, as in :func:`trustworthiness`; where neither space has ties this is
    ``sklearn.manifold.trustworthiness(grid.coordinates[bmus], X, n_neighbors=k)`` (the
    roles of the two spaces swapped).

    Reference: J. Venna & S. Kaski (2001), "Neighborhood preservation in nonlinear
    projection methods: an experimental study", ICANN 2001, LNCS 2130.

    Parameters and cost: as :func:`trustworthiness`.
    """
    return _rank_error(
        X, codebook, grid, n_neighbors, sample, random_state, "neighbourhood_preservation", swap=True
    )


def combined_error(X: np.ndarray, codebook: np.ndarray, grid: Grid) -> float:
    """Combined error of Kaski & Lagus (1996): quantization plus a topology penalty.

    For each row x with best unit c and second-best unit c' (in input space):
    ``||x - w_c|| + min over grid paths c = u_0, u_1, ..., u_P = c' of
    sum_p ||w_{u_p} - w_{u_{p+1}}||``, consecutive units being grid neighbours
    (:attr:`Grid.neighbour_pairs`); the mean over the rows. Shortest paths by Dijkstra on the
    grid graph weighted by codebook distances.

    Reference: S. Kaski & K. Lagus (1996), "Comparing self-organizing maps", ICANN 96,
    LNCS 1112, pp. 809-814.

    Cost: O(N K D) for the two best units (one blocked pass, O(block K) memory), plus Dijkstra from each
    distinct best unit: O(U K log K) time for U distinct BMUs, O(block K) memory.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import dijkstra

    X, codebook = _check_data("combined_error", X, codebook, grid)
    n_units = grid.n_units
    if n_units < 2:
        raise ValueError("combined_error needs at least 2 units.")
    X, codebook, s = underflow_scaled(X, codebook)
    w = np.asarray(codebook, dtype=np.float64)
    two, best = _two_best(X, codebook)  # one pass over the distances
    first = np.sqrt(np.maximum(best, 0.0))
    rows, cols = grid.neighbour_pairs
    weight = np.sqrt(((w[rows] - w[cols]) ** 2).sum(axis=1))
    # explicit zeros would be read as missing edges: the smallest positive float instead
    graph = sparse.csr_matrix(
        (np.maximum(weight, np.finfo(np.float64).tiny), (rows, cols)), shape=(n_units, n_units)
    )
    sources, inverse = np.unique(two[:, 0], return_inverse=True)
    path = np.empty(X.shape[0])
    block = max(1, (1 << 20) // n_units)
    for start in range(0, sources.size, block):
        dist = dijkstra(graph, directed=False, indices=sources[start : start + block])
        mine = (inverse >= start) & (inverse < start + block)
        path[mine] = dist[inverse[mine] - start, two[mine, 1]]
    return float((first + path).mean() / s)


#: The measures of :func:`quality_suite`, in its order.
QUALITY_MEASURES = (
    "quantization_error",
    "topographic_error",
    "distortion",
    "topographic_product",
    "trustworthiness",
    "neighbourhood_preservation",
    "combined_error",
)


def quality_suite(
    X: np.ndarray,
    codebook: np.ndarray,
    grid: Grid,
    *,
    n_neighbors: int = 5,
    radius: float = 1.0,
    sample: int | None = None,
    random_state: Any = None,
) -> dict[str, float]:
    """Every quality measure of this module on one map, as ``{name: float}`` (:data:`QUALITY_MEASURES`).

    ``radius`` is the Gaussian radius of :func:`distortion`; ``n_neighbors``, ``sample``,
    ``random_state`` go to :func:`trustworthiness` and :func:`neighbourhood_preservation`
    (skipped, NaN, when ``N < 2 n_neighbors + 1``).
    """
    X, codebook = _check_data("quality_suite", X, codebook, grid)
    out = {
        "quantization_error": quantization_error(X, codebook),
        "topographic_error": topographic_error(X, codebook, grid),
        "distortion": distortion(X, codebook, grid, radius=radius),
        "topographic_product": topographic_product(X, codebook, grid) if grid.n_units >= 2 else float("nan"),
    }
    enough = X.shape[0] > 2 * n_neighbors
    for name, fn in (
        ("trustworthiness", trustworthiness),
        ("neighbourhood_preservation", neighbourhood_preservation),
    ):
        out[name] = (
            fn(X, codebook, grid, n_neighbors=n_neighbors, sample=sample, random_state=random_state)
            if enough
            else float("nan")
        )
    out["combined_error"] = combined_error(X, codebook, grid) if grid.n_units >= 2 else float("nan")
    return out
