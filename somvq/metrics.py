"""Quality measures of a map (docs/algorithms.md §10).

All functions take plain arrays (data, codebook, :class:`~somvq.grids.Grid`), so the
estimator, the torch plugin and the benchmarks score codebooks with one shared definition.
Distances to the codebook are :func:`somvq.distances.squared_distances` (exact at any
offset and scale), computed block by block: memory is O(block * K), never O(N * K).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .distances import squared_distances
from .grids import Grid

__all__ = [
    "quantization_error",
    "topographic_error",
    "umatrix",
    "perplexity",
    "used_units",
    "neighbour_distance_ratio",
    "two_best_matching_units",
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


def quantization_error(X: np.ndarray, codebook: np.ndarray, *, squared: bool = False) -> float:
    """Mean distance from each row to its best-matching unit.

    ``squared=False`` (default): mean of ``||x - w_bmu||`` (MiniSom's and most SOM tools'
    definition). ``squared=True``: mean of ``||x - w_bmu||^2`` (k-means inertia / N).
    """
    if X.shape[0] == 0:
        raise ValueError("quantization_error needs at least one sample, got 0.")
    total = 0.0
    for _, _, sq in _squared_distance_blocks(X, codebook):
        best = sq.min(axis=1)
        total += float(best.sum() if squared else np.sqrt(best).sum())
    return total / int(X.shape[0])


def two_best_matching_units(X: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Indices of the best and second-best unit for each row, shape ``(n, 2)``."""
    if codebook.shape[0] < 2:
        raise ValueError(f"two best units need a codebook of >= 2 units, got {codebook.shape[0]}.")
    out = np.empty((X.shape[0], 2), dtype=np.int64)
    for start, stop, sq in _squared_distance_blocks(X, codebook):
        two = np.argpartition(sq, 1, axis=1)[:, :2]
        d = np.take_along_axis(sq, two, axis=1)
        # order the pair; on equal distances the lower index is the winner
        swap = (d[:, 1] < d[:, 0]) | ((d[:, 1] == d[:, 0]) & (two[:, 1] < two[:, 0]))
        two[swap] = two[swap][:, ::-1]
        out[start:stop] = two
    return out


def topographic_error(X: np.ndarray, codebook: np.ndarray, grid: Grid) -> float:
    """Fraction of rows whose best and second-best units are not grid neighbours.

    Neighbours are those of :attr:`Grid.adjacency`: the 8 surrounding units on a
    rectangular 2-D grid (diagonals included, as in the paper's hard neighbourhood and in
    MiniSom), 6 on a hexagonal grid, wrapping around periodic axes.
    """
    if X.shape[0] == 0:
        raise ValueError("topographic_error needs at least one sample, got 0.")
    if grid.n_units < 2:
        return 0.0
    two = two_best_matching_units(X, codebook)
    adjacent = grid.are_neighbours(two[:, 0], two[:, 1])  # O(n), no K x K matrix
    return float(1.0 - adjacent.mean())


def umatrix(codebook: np.ndarray, grid: Grid) -> np.ndarray:
    """U-matrix: for each unit, the mean distance of its vector to its grid neighbours'.

    Returned in the grid's shape (``grid.shape``); units without neighbours get 0.
    """
    w = codebook.astype(np.float64)
    out = np.zeros(grid.n_units)
    rows, cols = grid.neighbour_pairs  # O(K) pairs, no K x K matrix
    dist = np.linalg.norm(w[rows] - w[cols], axis=1)
    np.add.at(out, rows, dist)
    degree = np.bincount(rows, minlength=grid.n_units)
    np.divide(out, degree, out=out, where=degree > 0)
    return out.reshape(grid.shape)


def perplexity(labels: np.ndarray, n_units: int) -> float:
    """Codebook perplexity ``exp(-sum_k p_k log(p_k + 1e-10))`` of the usage frequencies."""
    labels = np.asarray(labels).ravel()
    if labels.size == 0:
        raise ValueError("perplexity needs at least one label, got 0.")
    p = np.bincount(labels, minlength=n_units).astype(np.float64) / labels.size
    return float(np.exp(-np.sum(p * np.log(p + 1e-10))))


def used_units(labels: np.ndarray, n_units: int) -> int:
    """Number of distinct units that are the BMU of at least one row."""
    return int(np.count_nonzero(np.bincount(np.asarray(labels).ravel(), minlength=n_units)))


def neighbour_distance_ratio(codebook: np.ndarray, grid: Grid) -> float:
    """Mean ``||w_k - w_l||`` over grid-neighbour pairs divided by the mean over all pairs.

    About 1 for a map without topology (e.g. EMA-VQ); well below 1 for an ordered map.
    """
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
