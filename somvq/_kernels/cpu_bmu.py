"""BMU search and per-unit statistics on the CPU.

The search is a GEMM plus an argmin: ``argmin_k ||w_k||^2 - 2 x.w_k`` (``||x||^2`` does not
change the winner). Rows are processed in fixed blocks of ``chunk_rows`` so a block's
``(rows x K)`` product is written and read back while it is in cache, and never an
``(N x K)`` matrix: extra memory is O(threads * chunk_rows * K).

Per block: one BLAS product of the block, gathered into a per-thread ``rows x (D + 1)``
buffer whose last column is 1, with the augmented codebook ``[-2 W | ||w||^2]`` (built once
per call; scaling by -2 is exact), which gives ``||w||^2 - 2 x.w`` without a separate add
pass over the ``rows x K`` products; then NumPy's SIMD argmin (lowest index on ties), and
one compiled pass (:func:`finish_block`) for the squared distances to the winners. The augmented product
may differ from "GEMM, then add" in the last bit of ~1% of the products, so a winner can
change only between units whose distances are equal to float rounding. With more than
one BLAS thread and more than one block, blocks run on a small thread pool with
single-threaded BLAS inside, so the argmin and the distance pass run in parallel too.
The profiles behind these choices are in docs/performance.md.

Counts and sums are accumulated by :func:`accumulate_statistics`, block after block in
row order, into caller-allocated float64 buffers: the result is the same bits for any
number of threads (each product is computed by the same single-threaded BLAS kernel on the
same fixed block, and the additions happen in one fixed order).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit, types

from ._signatures import FLOATS, array
from .config import CACHE, CHUNK_ROWS, FASTMATH

#: Blocks reach the kernels C-contiguous (see :func:`_block`) and are only read: one
#: read-only signature per dtype (a writable array dispatches to it too) keeps the number of
#: cached overloads loaded at first use small (each costs a cache load: docs/performance.md).
_BLOCKS = [array(dtype, 2, "C", readonly=True) for dtype in FLOATS]

_ACC_SIGNATURES = [
    types.void(block, array(types.int64, 1), array(types.float64, 1), array(types.float64, 2))
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


_FINISH_SIGNATURES = [
    types.void(block, array(block.dtype, 2, "C"), array(types.int64, 1), array(types.float64, 1))
    for block in _BLOCKS
]


@njit(_FINISH_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def finish_block(block, products, bmu, out_sq_dist):
    """out_sq_dist[i] = max(0, products[i, bmu[i]] + ||block[i]||^2), in float64.

    ``products`` holds ``||w_k||^2 - 2 x.w_k`` for the block's rows.
    """
    n_features = block.shape[1]
    for i in range(block.shape[0]):
        norm = 0.0
        for j in range(n_features):
            v = np.float64(block[i, j])
            norm += v * v
        best = np.float64(products[i, bmu[i]]) + norm
        out_sq_dist[i] = best if best > 0.0 else 0.0


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
                from threadpoolctl import ThreadpoolController

                _blas_controller = ThreadpoolController().select(user_api="blas")
    return _blas_controller


def blas_threads() -> int:
    """Number of threads the BLAS would use now (1 if unknown)."""
    try:
        counts = [lib.num_threads for lib in _blas().lib_controllers]
    except Exception:  # pragma: no cover - threadpoolctl failure: stay serial
        return 1
    return max([c for c in counts if c] or [1])


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
    limit = _blas().limit(limits=1) if threads > 1 else contextlib.nullcontext()
    with limit:
        _local.outer_threads = threads
        try:
            yield
        finally:
            _local.outer_threads = None


def _pool(n_threads: int) -> ThreadPoolExecutor:
    pool = _pools.get(n_threads)
    if pool is None:
        with _controller_lock:
            pool = _pools.get(n_threads)
            if pool is None:
                pool = _pools[n_threads] = ThreadPoolExecutor(n_threads, thread_name_prefix="somvq-bmu")
    return pool


def _products_buffer(rows: int, n_units: int, dtype) -> np.ndarray:
    """A per-thread scratch (rows x K) buffer, reused between blocks and calls."""
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


def augmented_codebook(codebook, codebook_sq_norms) -> np.ndarray:
    """``[-2 W | ||w||^2]^T``: a (D + 1) x K transposed view of a C-contiguous K x (D + 1) array.

    Built row-major (cheaper than a strided transposed copy, see docs/performance.md);
    the GEMM takes the transposed operand at the same speed and with the same bits.
    Scaling by -2 is exact.
    """
    n_units, n_features = codebook.shape
    aug = np.empty((n_units, n_features + 1), dtype=codebook.dtype)
    np.multiply(codebook, np.asarray(-2.0, dtype=codebook.dtype), out=aug[:, :n_features])
    aug[:, n_features] = codebook_sq_norms
    return aug.T


def _block(X, start, stop):
    """Rows ``start:stop`` as a C-contiguous array (a copy only for other layouts)."""
    return np.ascontiguousarray(X[start:stop])


def _search_block(X, start, stop, aug_codebook, out_bmu, out_sq_dist):
    n_features = X.shape[1]
    rows = _augmented_buffer(stop - start, n_features, X.dtype)
    rows[:, :n_features] = X[start:stop]
    prod = _products_buffer(stop - start, aug_codebook.shape[1], X.dtype)
    # [x | 1] . [-2 W | ||w||^2]^T = ||w||^2 - 2 x.w in one GEMM: no separate add pass.
    np.matmul(rows, aug_codebook, out=prod)
    bmu = out_bmu[start:stop]
    np.argmin(prod, axis=1, out=bmu)
    if out_sq_dist is not None:
        finish_block(_block(X, start, stop), prod, bmu, out_sq_dist[start:stop])


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
    X, codebook, codebook_sq_norms, out_bmu, out_sq_dist=None, counts=None, sums=None,
    chunk_rows=CHUNK_ROWS, n_threads=None,
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
    aug_codebook = augmented_codebook(codebook, np.asarray(codebook_sq_norms, dtype=X.dtype))
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
    limit = _blas().limit(limits=1) if threads > 1 and outer is None else contextlib.nullcontext()
    with limit:
        if n_threads <= 1:
            for start in starts:
                stop = min(start + chunk_rows, n)
                _search_block(X, start, stop, aug_codebook, out_bmu, out_sq_dist)
                if counts is not None:
                    accumulate_statistics(_block(X, start, stop), out_bmu[start:stop], counts, sums)
            return
        # Parallel over blocks, shared between the caller and n_threads - 1 pool workers
        # that each claim the next unsearched block (so exactly n_threads threads search:
        # no third thread on two cores, and a 4-block fit of 1797 rows ends after two
        # block-times). Between its own blocks the caller adds every finished block's
        # statistics in row order; the order of the additions never changes.
        n_blocks = len(starts)
        claim = itertools.count()
        done = [threading.Event() for _ in range(n_blocks)]
        errors = []

        def drain(first=None):
            while True:
                i = next(claim)  # atomic under the GIL
                if i >= n_blocks:
                    return
                start = starts[i]
                try:
                    _search_block(X, start, min(start + chunk_rows, n), aug_codebook, out_bmu,
                                  out_sq_dist)
                except BaseException as exc:  # re-raised by the caller
                    errors.append(exc)
                    done[i].set()
                    return
                done[i].set()
                if first is not None:
                    return

        pool = _pool(n_threads - 1)
        futures = [pool.submit(drain) for _ in range(n_threads - 1)]
        added = 0
        try:
            while added < n_blocks:
                if not done[added].is_set():
                    drain(first=True)  # the caller searches one more block, if any is left
                    if errors:
                        raise errors[0]
                    if not done[added].is_set():
                        done[added].wait()
                while added < n_blocks and done[added].is_set():
                    if errors:
                        raise errors[0]
                    if counts is not None:
                        start = starts[added]
                        stop = min(start + chunk_rows, n)
                        accumulate_statistics(_block(X, start, stop), out_bmu[start:stop], counts, sums)
                    added += 1
        finally:
            for _ in range(n_blocks):  # stop the workers claiming blocks
                next(claim)
            for future in futures:  # one still queued (pool busy elsewhere) never runs
                if not future.cancel():
                    future.exception()
