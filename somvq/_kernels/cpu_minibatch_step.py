"""A mini-batch KSOM step compiled end to end: one compiled call per thread per phase.

The fused pass of :func:`somvq.algorithms.minibatch_pass_inplace` used to run each step
as Python around small kernels: the block search of :mod:`cpu_bmu` (Python glue, a NumPy
GEMM and :func:`~somvq._kernels.cpu_bmu.rank_block` per block, a thread-pool hand-off
with its Python on both threads fighting for the GIL), then the accumulation, the
smoothing operator, its kernel, the EMA update and the next step's frame as separate
calls. Per step it now makes:

* :func:`search_block` per block of rows, on the calling thread and on one persistent
  worker thread of the pass (no GIL held while it runs): the rows copied into the
  frame, the augmented GEMM (``np.dot`` inside Numba: the same BLAS product; see below)
  and :func:`~somvq._kernels.cpu_bmu.rank_block`, the very kernel of the full search;
* :func:`update_step` once, on the calling thread: counts and sums in row order
  (:func:`~somvq._kernels.cpu_bmu.accumulate_statistics`), the separable smoothing
  (:func:`~somvq._kernels.cpu_minibatch.smooth_separable_2d`) or none, the EMA update
  (:func:`~somvq._kernels.cpu_minibatch.ema_update_inplace`) and the frame of the next
  search (:func:`prepare_frame`: ``codebook_summary``, the centre and scale rules of
  :mod:`somvq.distances`, ``fill_augmented``).

Every float operation on the state is the one of the step-by-step pass, in the same
order, through the same compiled functions, so counts, sums, EMA state and codebook are
the same bits (tests/test_minibatch_step.py compares them). The products may differ in
their last bits from NumPy's (Numba calls SciPy's BLAS; on this machine the two OpenBLAS
builds give equal bits) and the frame's centre test sums ``||mean||^2`` in a loop rather
than NumPy's ``dot``; neither changes a winner or a distance: the search is exact for any
GEMM summation order and any centre (winners are the float64 direct-distance argmin,
lowest index on ties, distances are computed directly in float64), see
:mod:`somvq.distances`.
"""

from __future__ import annotations

import functools
import itertools
import math
import queue
import threading
from typing import NamedTuple

import numpy as np
from numba import njit, types

from ._signatures import FLOATS, array
from .config import CACHE, FASTMATH
from .cpu_bmu import accumulate_statistics, codebook_summary, fill_augmented, rank_block
from .cpu_minibatch import ema_update_inplace, smooth_separable_2d

_F1 = array(types.float64, 1, "C")
_F2 = array(types.float64, 2, "C")
_F2_RO = array(types.float64, 2, "C", readonly=True)
_I1 = array(types.int64, 1, "C")

#: ``frame`` holds what the search of the next step needs from :func:`prepare_frame`.
RADIUS, SCALE, CENTRED, FINITE = 0, 1, 2, 3


def _bits_type(dtype):
    return types.int32 if dtype == types.float32 else types.int64


_SEARCH_SIGNATURES = [
    types.int64(
        array(dtype, 2, "C", readonly=True),  # the batch's rows
        types.int64,  # first row of the block
        types.int64,  # end of the block
        array(dtype, 2, "C"),  # per-thread (rows, D + 1) buffer whose last column is 1
        array(dtype, 2, "C"),  # per-thread (rows, K) scores
        array(_bits_type(dtype), 2, "C"),  # the same scores' bits (a view)
        array(dtype, 2, "C", readonly=True),  # codebook
        array(dtype, 2, "C", readonly=True),  # [-2 W' | ||w'||^2] (K, D + 1)
        array(dtype, 1, "C", readonly=True),  # centre of the frame
        _F1,  # frame (prepare_frame)
        types.float64,  # kappa
        types.float64,  # overflow
        types.float64,  # up
        _I1,  # out: winners of the batch
        _F1,  # out: squared distances of the batch
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
    bits,
    codebook,
    aug,
    centre,
    frame,
    kappa,
    overflow,
    up,
    bmu,
    sq_dist,
):
    """Winners and direct squared distances of ``rows[start:stop]`` (one block).

    What :func:`somvq._kernels.cpu_bmu._search_block` does for a finite frame: the rows
    into ``framed`` (minus the centre, times the scale, in the rows' dtype), one GEMM
    ``[x' | 1] . [-2 W' | ||w'||^2]^T`` and :func:`~somvq._kernels.cpu_bmu.rank_block`.
    Returns the number of re-ranked rows.
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
    for i in range(n):
        for j in range(n_features):
            v = block[i, j]
            if centred:
                v = v - centre[j]
            if scaled:
                v = v * s
            framed[i, j] = v
    out = products[:n]
    np.dot(framed[:n], aug.T, out)  # aug.T: Fortran order, as NumPy's matmul gets it
    # float32 differences squared never overflow float64; float64 ones may beyond 1e154
    direct_scale = 1.0 if rows.itemsize == 4 else scale
    return rank_block(
        block,
        framed[:n],
        out,
        bits[:n],
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


_FRAME_SIGNATURES = [
    types.void(
        array(dtype, 2, "C", readonly=True),  # codebook
        _F1,  # scratch: the codebook mean (D,)
        array(dtype, 1, "C"),  # out: centre (D,), zeros when not centred
        array(dtype, 2, "C"),  # out: [-2 W' | ||w'||^2] (K, D + 1)
        types.float64,  # limit of the unscaled range (distances._UNSCALED_RANGE)
        _F1,  # out: frame
    )
    for dtype in FLOATS
]


@njit(_FRAME_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def prepare_frame(codebook, mean, centre, aug, limit, frame):
    """The frame of :func:`somvq._kernels.cpu_bmu._search_setup`, compiled.

    :func:`somvq.distances.choose_centre` (centre = the codebook mean rounded to the
    dtype when ``||mean||^2 > mean ||w||^2 - ||mean||^2``) and ``choose_scale`` (a power
    of two when the radius leaves ``[1 / limit, limit]``), with the augmented codebook
    built by the same ``fill_augmented``. ``frame[FINITE]`` is 0 when the radius is not
    finite (a diverged codebook): the caller then searches the step's way.
    """
    n_features = codebook.shape[1]
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
    frame[RADIUS] = radius
    if not math.isfinite(radius):
        frame[FINITE] = 0.0
        return
    frame[FINITE] = 1.0
    if radius != 0.0 and not (1.0 / limit <= radius <= limit):
        scale = math.ldexp(1.0, 1 - math.frexp(radius)[1])
        frame[SCALE] = scale
        frame[RADIUS] = math.sqrt(fill_augmented(codebook, centre, scale, aug))


_UPDATE_SIGNATURES = [
    types.void(
        array(dtype, 2, "C", readonly=True),  # the batch's rows
        _I1,  # their winners
        _F1,  # scratch: counts (K,)
        _F2,  # scratch: sums (K, D)
        types.boolean,  # smooth (separable) or not (neighbourhood "none")
        _F2_RO,  # f0
        _F2_RO,  # f1
        types.float64,  # scale of the separable smoothing
        _F1,  # scratch: smoothed counts
        _F2,  # scratch: smoothed sums
        _F2,  # scratch: (K, D + 1)
        _F1,  # EMA counts (in place)
        _F2,  # EMA sums (in place)
        array(dtype, 2, "C"),  # codebook (in place)
        types.float64,  # decay
        types.float64,  # eps
        types.boolean,  # update "all"
        _F1,  # scratch: mean (D,)
        array(dtype, 1, "C"),  # out: centre
        array(dtype, 2, "C"),  # out: augmented codebook
        types.float64,  # limit of the unscaled range
        _F1,  # out: frame
    )
    for dtype in FLOATS
]


@njit(_UPDATE_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def update_step(
    rows,
    bmu,
    counts,
    sums,
    smooth,
    f0,
    f1,
    scale,
    out_counts,
    out_sums,
    tmp,
    ema_count,
    ema_sum,
    codebook,
    decay,
    eps,
    update_all,
    mean,
    centre,
    aug,
    limit,
    frame,
):
    """The serial part of a step in one call: statistics, smoothing, EMA, next frame.

    ``c = E^T 1`` and ``S = E^T X`` in row order, ``n = H c``, ``s = H S`` with the
    separable ``H = scale (f0 kron f1) + (1 - scale) I`` (or ``H = I``), the EMA update
    (E1)-(E4) in place, then :func:`prepare_frame` of the new codebook.
    """
    counts[:] = 0.0
    sums[:] = 0.0
    accumulate_statistics(rows, bmu, counts, sums)
    if smooth:
        smooth_separable_2d(counts, sums, f0, f1, scale, out_counts, out_sums, tmp)
        ema_update_inplace(ema_count, ema_sum, codebook, out_counts, out_sums, decay, eps, update_all)
    else:
        ema_update_inplace(ema_count, ema_sum, codebook, counts, sums, decay, eps, update_all)
    prepare_frame(codebook, mean, centre, aug, limit, frame)


# ---------------------------------------------------------------------------- the pass
@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl controller of every BLAS, SciPy's included (``np.dot`` inside Numba
    calls SciPy's BLAS), so that the pass can hold all of them at one thread."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS before the scan)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


class _Worker:
    """One thread kept for a whole pass; each step hands it one job (no pool, no futures)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="somvq-minibatch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except BaseException as exc:  # re-raised by the caller
                self._done.put(exc)
            else:
                self._done.put(None)

    def start(self, job) -> None:
        self._jobs.put(job)

    def wait(self) -> None:
        error = self._done.get()
        if error is not None:
            raise error

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join()


class _Scratch(NamedTuple):
    framed: np.ndarray  # (rows, D + 1), last column 1
    products: np.ndarray  # (rows, K)
    bits: np.ndarray  # the products' bits


def _scratch(rows: int, n_units: int, n_features: int, dtype) -> _Scratch:
    framed = np.empty((max(rows, 1), n_features + 1), dtype=dtype)
    framed[:, n_features] = 1.0
    products = np.empty((max(rows, 1), n_units), dtype=dtype)
    return _Scratch(framed, products, products.view(np.int32 if products.itemsize == 4 else np.int64))


_ONE_BY_ONE = np.ones((1, 1))


def minibatch_pass(
    X,
    order,
    codebook,
    ema_count,
    ema_sum,
    neighbourhood,
    grid,
    t0: int,
    *,
    batch_size: int,
    decay: float,
    eps: float,
    update_all: bool,
    chunk_rows: int,
    gather_rows: int,
) -> tuple[float, int]:
    """Mini-batch KSOM over ``X[order]``, each step compiled (module docstring).

    The arguments are those of :func:`somvq.algorithms.minibatch_pass_inplace`, checked
    there (``X`` in the codebook's dtype, ``order`` intp, state C-contiguous, a smoothing
    that is none or separable on a 1-D / 2-D grid: ``algorithms._compiled_step``).
    Returns the summed squared error and the number of rows done: all of them, unless a
    step left a codebook with no finite frame (a diverged fit), after which the caller
    runs the rest step by step. With more than one BLAS thread (the count seen on entry,
    as the full search reads it) and batches of more than one block, one worker thread
    searches blocks beside the calling thread; every BLAS is held at one thread meanwhile.
    """
    from .. import distances
    from ..neighbourhoods import IdentitySmoothing, smoothing_operator
    from .cpu_bmu import _CPU_COUNT, _constants, balanced_chunk_rows

    dtype = X.dtype
    n_rows = order.shape[0]
    n_units, n_features = codebook.shape
    rows_max = min(batch_size, n_rows)
    gathered = np.empty((min(gather_rows, n_rows), n_features), dtype=dtype)
    bmu = np.empty(rows_max, dtype=np.int64)
    sq_dist = np.empty(rows_max)
    counts = np.empty(n_units)
    sums = np.empty((n_units, n_features))
    out_counts = np.empty(n_units)
    out_sums = np.empty((n_units, n_features))
    tmp = np.empty((n_units, n_features + 1))
    mean = np.empty(n_features)
    centre = np.zeros(n_features, dtype=dtype)
    aug = np.empty((n_units, n_features + 1), dtype=dtype)
    frame = np.zeros(4)
    constants = _constants(dtype, n_features)
    limit = distances._UNSCALED_RANGE.get(np.dtype(dtype), 2.0**30)
    prepare_frame(codebook, mean, centre, aug, limit, frame)
    if frame[FINITE] == 0.0:
        return 0.0, 0
    # any batch's blocks (balanced_chunk_rows of its rows) have at most this many rows
    block_rows = min(rows_max, chunk_rows)
    own = _scratch(block_rows, n_units, n_features, dtype)
    constant_args = (codebook, aug, centre, frame, constants.kappa, constants.overflow, constants.up)

    controller = _blas_controller()
    threads = max([lib.num_threads or 1 for lib in controller.lib_controllers] or [1])
    n_threads = min(threads, _CPU_COUNT, -(-rows_max // block_rows))
    n_steps = -(-n_rows // batch_size)
    worker = None
    sq_error = 0.0
    done = 0
    t = int(t0)
    decay, eps = float(decay), float(eps)
    with controller.limit(limits=1):
        if n_threads > 1 and n_steps > 1:
            worker = _Worker()
            theirs = _scratch(block_rows, n_units, n_features, dtype)
        try:
            for g_start in range(0, n_rows, gather_rows):
                g_stop = min(g_start + gather_rows, n_rows)
                block = gathered[: g_stop - g_start]
                np.take(X, order[g_start:g_stop], axis=0, out=block)
                for start in range(0, block.shape[0], batch_size):
                    batch = block[start : start + batch_size]
                    n = batch.shape[0]
                    step_rows = balanced_chunk_rows(n, chunk_rows)
                    starts = range(0, n, step_rows)
                    if worker is None or len(starts) == 1:
                        for b in starts:
                            search_block(batch, b, min(b + step_rows, n), *own, *constant_args, bmu, sq_dist)
                    else:
                        # Blocks claimed from a shared counter by this thread and the worker;
                        # each search is one compiled call that holds no GIL.
                        claim = itertools.count()

                        def drain(scratch, batch=batch, n=n, step_rows=step_rows, starts=starts, claim=claim):
                            for i in iter(claim.__next__, None):
                                if i >= len(starts):
                                    return
                                b = starts[i]
                                search_block(
                                    batch, b, min(b + step_rows, n), *scratch, *constant_args, bmu, sq_dist
                                )

                        worker.start(functools.partial(drain, theirs))
                        try:
                            drain(own)
                        finally:
                            worker.wait()
                    sq_error += float(sq_dist[:n].sum())
                    op = smoothing_operator(neighbourhood, grid, t)
                    if isinstance(op, IdentitySmoothing):
                        smooth, f0, f1, scale = False, _ONE_BY_ONE, _ONE_BY_ONE, 1.0
                    else:
                        f0, f1 = op.factors if len(op.factors) == 2 else (_ONE_BY_ONE, op.factors[0])
                        smooth, scale = True, op.scale
                    update_step(
                        batch,
                        bmu[:n],
                        counts,
                        sums,
                        smooth,
                        np.ascontiguousarray(f0, dtype=np.float64),
                        np.ascontiguousarray(f1, dtype=np.float64),
                        scale,
                        out_counts,
                        out_sums,
                        tmp,
                        ema_count,
                        ema_sum,
                        codebook,
                        decay,
                        eps,
                        update_all,
                        mean,
                        centre,
                        aug,
                        limit,
                        frame,
                    )
                    t += 1
                    done += n
                    if frame[FINITE] == 0.0:
                        return sq_error, done
        finally:
            if worker is not None:
                worker.close()
    return sq_error, done
