"""BMU search and per-unit statistics on the CPU.

The search is a GEMM plus an argmin: ``argmin_k ||w_k||^2 - 2 x.w_k`` (``||x||^2`` does not
change the winner). Rows are processed in blocks of ``chunk_rows`` so the block's
``(rows x K)`` product is written and read back while it is in cache, and never an
``(N x K)`` matrix: extra memory is O(chunk_rows * K).

For each block the compiled kernel :func:`accumulate_statistics` adds the block's hit
counts and per-unit sums into caller-allocated float64 buffers, in row order, so the
result does not depend on the number of BLAS threads.
"""

import numpy as np
from numba import njit

from numba import types

from ._signatures import array, data_arrays
from .config import CACHE, FASTMATH

_ACC_SIGNATURES = [
    types.void(block, array(types.int64, 1), array(types.float64, 1), array(types.float64, 2))
    for block in data_arrays()
]


@njit(_ACC_SIGNATURES, cache=CACHE, fastmath=FASTMATH)
def accumulate_statistics(block, bmu, counts, sums):
    """counts[bmu[i]] += 1 and sums[bmu[i]] += block[i] for every row i, in order."""
    n_features = block.shape[1]
    for i in range(block.shape[0]):
        k = bmu[i]
        counts[k] += 1.0
        for j in range(n_features):
            sums[k, j] += block[i, j]


def best_matching_units(
    X, codebook, codebook_sq_norms, out_bmu, out_sq_dist=None, counts=None, sums=None,
    chunk_rows=1024,
):
    """Winners (and optionally squared distances and statistics) for every row of ``X``.

    Parameters
    ----------
    X : (n, D) float32 or float64 array
    codebook : (K, D) array of the same dtype
    codebook_sq_norms : (K,) array, ``(codebook ** 2).sum(1)`` in the same dtype
    out_bmu : (n,) int64 buffer, filled with the index of each row's BMU (lowest on ties)
    out_sq_dist : (n,) float64 buffer or None, filled with ``||x - w_bmu||^2`` (clipped at 0)
    counts, sums : (K,) and (K, D) float64 buffers or None; hit counts and per-unit sums are
        *added* into them
    chunk_rows : int
    """
    n = X.shape[0]
    if n == 0:
        return
    block_rows = min(chunk_rows, n)
    products = np.empty((block_rows, codebook.shape[0]), dtype=X.dtype)
    codebook_t = codebook.T
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        block = X[start:stop]
        rows = stop - start
        prod = products[:rows]
        np.matmul(block, codebook_t, out=prod)
        prod *= -2.0
        prod += codebook_sq_norms
        bmu = out_bmu[start:stop]
        np.argmin(prod, axis=1, out=bmu)
        if out_sq_dist is not None:
            best = np.take_along_axis(prod, bmu[:, None], axis=1)[:, 0].astype(np.float64)
            best += np.einsum("ij,ij->i", block, block, dtype=np.float64)
            np.maximum(best, 0.0, out=best)
            out_sq_dist[start:stop] = best
        if counts is not None:
            accumulate_statistics(block, bmu, counts, sums)
