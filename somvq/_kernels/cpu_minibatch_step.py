"""The mini-batch KSOM pass compiled end to end: one compiled call per thread per chunk.

:func:`somvq.algorithms.minibatch_pass_inplace` runs here whenever the step's smoothing
is none or separable on a 1-D / 2-D rectangular grid. Rows are taken a chunk (~8 MB of
whole batches) at a time; every step of a chunk then runs inside one compiled call,
:func:`run_steps`, made by the calling thread and by one worker of the searches' pool
(``cpu_bmu.run_on_threads``: a thread kept for the process; no GIL, no Python per step).
The steps are a queue of tasks, claimed in order from a shared counter (:mod:`cpu_sync`:
LLVM atomics; a waiting thread spins, then sleeps on a futex):

* per block of the batch, a search task: its rows gathered from the data into the
  chunk's buffer (in parallel so: a serial ``np.take`` of the chunk before the call took
  9 ms of a 54 ms epoch on 1e5 x 32), then :func:`~somvq._kernels.cpu_bmu.search_block`,
  the full search's own block call: the rows into the frame, the augmented GEMM
  (``np.dot`` inside Numba: SciPy's BLAS, held at one thread) and
  :func:`~somvq._kernels.cpu_bmu.rank_block`;
* per column range (two with two threads), an update task: the batch's sums in row
  order, the separable smoothing and the EMA update of those columns
  (:func:`_accumulate_columns`, :func:`_smooth_columns`, :func:`_ema_columns`), with the
  counts, their smoothing and the new EMA counts computed by each thread that works on
  the step (K values);
* the frame, made by the thread that finishes the step's last update task: the EMA
  counts written, the step's error, :func:`~somvq._kernels.cpu_bmu.prepare_frame` of the
  new codebook (the frame every CPU search uses).

A task waits only until the tasks of the phases before it are done. The smoothing
factors of every step are computed before the call (:func:`_step_factors`, the values of
``smoothing_operator``).

Every float operation on the state is the one of the step-by-step loop, in the same
order: the update kernels here and the loop's (:mod:`cpu_minibatch`) are compiled
without fast-math flags, so each element gets the same IEEE operations wherever LLVM
inlines them; counts, sums, EMA state, codebook and the summed error are the same bits
(tests/test_minibatch_step.py). The products may differ in their last bits from
NumPy's (Numba calls SciPy's BLAS); that changes no winner or distance: the search is
exact for any GEMM summation order (winners are the float64 direct-distance argmin, lowest
index on ties, distances are computed directly in float64), see :mod:`somvq.distances`.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from numba import njit, types

from ._signatures import FLOATS, array
from .config import CACHE, FASTMATH
from .cpu_bmu import (
    FINITE,
    accumulate_columns,
    blas_at_one_thread,
    blas_threads,
    prepare_frame,
    run_on_threads,
    search_block,
)
from .cpu_fused import scores_rows
from .cpu_minibatch import factor_bands
from .cpu_prefetch import AHEAD, prefetch_row
from .cpu_sync import (
    ABORT,
    CLAIMED,
    COUNTER,
    DONE,
    STOP,
    SYNC_SIZE,
    add_and_wake,
    atomic_add,
    atomic_load,
    atomic_store,
    cycles,
    wait_until,
)

_F1 = array(types.float64, 1, "C")
_F2 = array(types.float64, 2, "C")
_F2_RO = array(types.float64, 2, "C", readonly=True)
_I1 = array(types.int64, 1, "C")
_I1_RO = array(types.int64, 1, "C", readonly=True)

# ------------------------------------------------------- the pass as one call per thread
_F3_RO = array(types.float64, 3, "C", readonly=True)
_F1_RO = array(types.float64, 1, "C", readonly=True)


@njit([types.float64(_F1, types.int64, types.int64)], cache=CACHE, fastmath=False, nogil=True)
def _pairwise_sum(a, lo, n):
    """``a[lo:lo + n].sum()`` as NumPy sums float64 (its pairwise summation, blocks of 128
    with 8 accumulators): the step's error has the bits of the loop's ``sq_dist.sum()``.
    Compiled without fast-math flags, so the order written here is the order run."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    if n <= 128:
        r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
        r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
        i = 8
        m = n - n % 8
        while i < m:
            r0 += a[lo + i]
            r1 += a[lo + i + 1]
            r2 += a[lo + i + 2]
            r3 += a[lo + i + 3]
            r4 += a[lo + i + 4]
            r5 += a[lo + i + 5]
            r6 += a[lo + i + 6]
            r7 += a[lo + i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[lo + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(a, lo, n2) + _pairwise_sum(a, lo + n2, n - n2)


# The kernels below split the update of the step-by-step loop by feature columns (and give
# each thread the counts' part). Like cpu_minibatch's kernels they are compiled without
# fast-math flags, explicitly (a callee without them inherits its caller's): per element
# they then do the very operations of the loop's kernels, in the same order, rounded the
# same way (IEEE, no contraction, no reassociation), wherever LLVM inlines them. Column
# indices are unsigned so that no negative-index wrap-around blocks the vector loops.


@njit(cache=CACHE, fastmath=False, nogil=True)
def _accumulate_columns(rows, start, stop, bmu, sums, c0, c1):
    """``sums[:, c0:c1] = E^T X[:, c0:c1]`` of rows ``start:stop``, rows in order: zeroed,
    then :func:`~somvq._kernels.cpu_bmu.accumulate_columns` (each element gets the
    additions of ``accumulate_statistics``, in the same order)."""
    for k in range(sums.shape[0]):
        for j in range(c0, c1):
            sums[k, j] = 0.0
    accumulate_columns(rows[start:stop], bmu[start:stop], sums[0], sums, c0, c1, False)


@njit(cache=CACHE, fastmath=False, nogil=True)
def _smooth_columns(sums, f0, f1, bands, scale, out_sums, tmp, c0, c1):
    """Columns ``c0:c1`` of :func:`~somvq._kernels.cpu_minibatch.smooth_separable_2d`'s
    ``out_sums``: the same loops with the feature loop cut to the range (and the factor
    loops to each row's non-zero band: ``bands``, :func:`_step_bands`)."""
    u0, u1 = np.uint64(c0), np.uint64(c1)
    n0 = f0.shape[0]
    n1 = f1.shape[0]
    first0, stop0, first1, stop1 = bands[0], bands[1], bands[2], bands[3]
    for a in range(n0):
        for j in range(n1):
            row = a * n1 + j
            for d in range(u0, u1):
                tmp[row, d] = 0.0
            for b in range(first1[j], stop1[j]):
                w = f1[j, b]
                if w != 0.0:
                    src = a * n1 + b
                    for d in range(u0, u1):
                        tmp[row, d] += w * sums[src, d]
    for i in range(n0):
        for j in range(n1):
            row = i * n1 + j
            for d in range(u0, u1):
                out_sums[row, d] = 0.0
            for a in range(first0[i], stop0[i]):
                w = f0[i, a]
                if w != 0.0:
                    src = a * n1 + j
                    for d in range(u0, u1):
                        out_sums[row, d] += w * tmp[src, d]
    if scale != 1.0:
        rest = 1.0 - scale
        for k in range(n0 * n1):
            for d in range(u0, u1):
                out_sums[k, d] = scale * out_sums[k, d] + rest * sums[k, d]


@njit(cache=CACHE, fastmath=False, nogil=True)
def _smooth_counts(counts, f0, f1, bands, scale, out_counts, tmp):
    """The counts of :func:`~somvq._kernels.cpu_minibatch.smooth_separable_2d` (its
    column ``D`` of ``tmp``, ``acc_count``), with a (K,) scratch ``tmp``."""
    n0 = f0.shape[0]
    n1 = f1.shape[0]
    first0, stop0, first1, stop1 = bands[0], bands[1], bands[2], bands[3]
    for a in range(n0):
        for j in range(n1):
            acc = 0.0
            for b in range(first1[j], stop1[j]):
                w = f1[j, b]
                if w != 0.0:
                    acc += w * counts[a * n1 + b]
            tmp[a * n1 + j] = acc
    for i in range(n0):
        for j in range(n1):
            acc = 0.0
            for a in range(first0[i], stop0[i]):
                w = f0[i, a]
                if w != 0.0:
                    acc += w * tmp[a * n1 + j]
            out_counts[i * n1 + j] = acc
    if scale != 1.0:
        rest = 1.0 - scale
        for k in range(n0 * n1):
            out_counts[k] = scale * out_counts[k] + rest * counts[k]


@njit(cache=CACHE, fastmath=False, nogil=True)
def _ema_counts(ema_count, counts, decay, eps, update_all, new_count):
    """The counts of :func:`~somvq._kernels.cpu_minibatch.ema_update_inplace`, written to
    ``new_count`` (``ema_count`` is only read)."""
    n_units = ema_count.shape[0]
    keep = 1.0 - decay
    if update_all:
        total = 0.0
        for k in range(n_units):
            c = decay * ema_count[k] + keep * counts[k]
            new_count[k] = c
            total += c
        denom = total + n_units * eps
        for k in range(n_units):
            new_count[k] = (new_count[k] + eps) / denom * total
        return
    for k in range(n_units):
        new_count[k] = decay * ema_count[k] + keep * counts[k] if counts[k] > 0.0 else ema_count[k]


@njit(cache=CACHE, fastmath=False, nogil=True)
def _ema_columns(ema_sum, codebook, counts, sums, new_count, decay, update_all, c0, c1):
    """Columns ``c0:c1`` of :func:`~somvq._kernels.cpu_minibatch.ema_update_inplace`'s
    sums and codebook, given its new counts ``new_count``."""
    u0, u1 = np.uint64(c0), np.uint64(c1)
    keep = 1.0 - decay
    for k in range(ema_sum.shape[0]):
        if update_all or counts[k] > 0.0:
            c = new_count[k]
            for d in range(u0, u1):
                m = decay * ema_sum[k, d] + keep * sums[k, d]
                ema_sum[k, d] = m
                codebook[k, d] = m / c


@njit(cache=CACHE, fastmath=False, nogil=True)
def _step_bands(f0, f1, bands):
    """The non-zero bands of a step's factors into ``bands`` (4, max(n0, n1)) int64: first
    and stop of ``f0``'s rows, then of ``f1``'s (:func:`cpu_minibatch.factor_bands`)."""
    factor_bands(f0, bands[0], bands[1])
    factor_bands(f1, bands[2], bands[3])


#: Phases of a step in a profile of :func:`run_steps` (the last entry counts the steps).
PHASES = ("search", "wait", "update", "frame")


@njit(cache=CACHE, nogil=True)
def _lap(profile, phase, since):
    now = cycles()
    profile[phase] += now - since
    return now


def _run_signature(dtype):
    return types.int64(
        types.int64,  # n_threads (1 or 2): column chunks of the update
        _I1,  # sync: shared int64 array (cpu_sync), zero on entry
        array(dtype, 2, "A", readonly=True),  # the data
        _I1_RO,  # rows of the data in the chunk, in order (in range: checked by the caller)
        array(dtype, 2, "C"),  # out: those rows, gathered by the search tasks
        types.int64,  # batch_size
        types.int64,  # chunk_rows
        array(dtype, 2, "C"),  # this thread's (rows, D + 1) buffer, last column 1
        array(dtype, 2, "C"),  # this thread's (rows, K) scores
        array(dtype, 2, "C"),  # codebook (in place)
        array(dtype, 2, "C"),  # augmented codebook
        array(dtype, 1, "C"),  # centre
        _F1,  # frame
        types.float64,  # kappa
        types.float64,  # overflow
        types.float64,  # up
        _I1,  # winners of the chunk's rows
        _F1,  # squared distances of the chunk's rows
        _F1,  # out: the error of each step
        _F2,  # shared sums (K, D)
        types.boolean,  # smooth (separable) or not (neighbourhood "none")
        _F3_RO,  # f0 of each step (n_steps or 1, n0, n0)
        _F3_RO,  # f1 of each step (n_steps or 1, n1, n1)
        _F1_RO,  # scale of each step (n_steps or 1,)
        _F2,  # shared smoothed sums (K, D)
        _F2,  # shared scratch (K, D)
        _F1,  # EMA counts (in place)
        _F2,  # EMA sums (in place)
        types.float64,  # decay
        types.float64,  # eps
        types.boolean,  # update "all"
        _F1,  # scratch: the codebook mean
        types.float64,  # limit of the unscaled range
        _F2,  # this thread's (4, K): counts, smoothed counts, new EMA counts, scratch
        _I1,  # column bounds of the update's tasks (n_tasks + 1,)
        _I1,  # this thread's profile: cycles per phase (PHASES), then frames done
    )


@njit(cache=CACHE, nogil=True)
def _blocks(n, chunk_rows):
    """``(rows per block, blocks)`` of a batch of ``n`` rows: ``balanced_chunk_rows``."""
    n_blocks = -(-n // chunk_rows)
    if n_blocks > 1 and n_blocks % 2:
        n_blocks += 1
    step_rows = max(1, -(-n // max(n_blocks, 1)))
    return step_rows, -(-n // step_rows)


@njit(cache=CACHE, nogil=True)
def _chunk_tasks(n_rows, batch_size, chunk_rows, n_chunks):
    """Tasks of :func:`run_steps` over ``n_rows`` rows: each step's search blocks
    (:func:`_blocks`) and its ``n_chunks`` update tasks."""
    total = 0
    for s in range(-(-n_rows // batch_size)):
        total += _blocks(min(batch_size, n_rows - s * batch_size), chunk_rows)[1] + n_chunks
    return total


@njit([_run_signature(dtype) for dtype in FLOATS], cache=CACHE, fastmath=FASTMATH, nogil=True)
def run_steps(
    n_threads,
    sync,
    data,
    index,
    rows,
    batch_size,
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
    step_errors,
    sums,
    smooth,
    f0s,
    f1s,
    scales,
    out_sums,
    tmp,
    ema_count,
    ema_sum,
    decay,
    eps,
    update_all,
    mean,
    limit,
    private,
    splits,
    profile,
):
    """Every step of a chunk of rows ``data[index]``, as tasks that any thread may run.

    Each thread of the pass (the calling thread and its worker) makes this same call. A
    step is ``n_blocks`` search tasks (one block of the batch: its rows gathered into
    ``rows``, in parallel so, then :func:`~somvq._kernels.cpu_bmu.search_block`),
    then one update task per column range ``splits[c]:splits[c + 1]`` (sums, smoothing,
    EMA sums and codebook of those columns); the thread that finishes the step's last
    update task then makes the frame (the EMA counts, the step's error,
    :func:`prepare_frame` of the new codebook) before that task counts as done. Tasks
    are numbered in that order through the chunk, claimed from ``sync[CLAIMED]`` and counted done in
    ``sync[DONE]``; a task waits (:func:`~somvq._kernels.cpu_sync.wait_until`) until
    every task of the phases before its own is done. A thread never waits for the other
    thread to *arrive*, only for a task the other thread holds: a thread the scheduler
    parks between tasks (a loaded machine) delays nothing; the one that runs claims the
    work. Each thread computes the counts, their smoothing and the new EMA counts itself
    (K values) for the steps it works on. Results do not depend on who runs what.

    Returns the number of steps done: all of them, or fewer when a step left no finite
    frame (``sync[STOP]``: the caller finishes step by step), or -1 when another thread
    aborted (``sync[ABORT]``). ``profile[p]`` gets the cycles spent in phase
    ``PHASES[p]``; its last entry counts the frames it made.
    """
    n_rows = rows.shape[0]
    n_steps = -(-n_rows // batch_size)
    n_chunks = splits.shape[0] - 1
    total = _chunk_tasks(n_rows, batch_size, chunk_rows, n_chunks)
    my_counts = private[0]
    my_smoothed = private[1]
    my_ema_count = private[2]
    my_tmp = private[3]
    counts_step = -1  # the step whose counts this thread has in my_counts ...
    # ... and the step whose factors' bands it has (the hard kernel's factors are one set)
    bands = np.empty((4, max(f0s.shape[1], f1s.shape[1])), dtype=np.int64)
    bands_step = -1
    step = 0
    base = 0  # first task of `step`
    start = 0
    stop = min(batch_size, n_rows)
    step_rows, n_blocks = _blocks(stop - start, chunk_rows)
    clock = cycles()
    while True:
        task = atomic_add(sync, CLAIMED, 1)
        if task >= total:
            break
        while task >= base + n_blocks + n_chunks:  # on to the task's step
            base += n_blocks + n_chunks
            step += 1
            start = step * batch_size
            stop = min(start + batch_size, n_rows)
            step_rows, n_blocks = _blocks(stop - start, chunk_rows)
        local = task - base
        # every task of the phases before this one done
        ready = base if local < n_blocks else base + n_blocks
        if not wait_until(sync, DONE, ready):
            break
        clock = _lap(profile, 1, clock)
        f0 = f0s[step if f0s.shape[0] > 1 else 0]
        f1 = f1s[step if f1s.shape[0] > 1 else 0]
        scale = scales[step if scales.shape[0] > 1 else 0]
        factors_step = step if f0s.shape[0] > 1 or f1s.shape[0] > 1 else 0
        if local >= n_blocks and smooth and bands_step != factors_step:
            _step_bands(f0, f1, bands)
            bands_step = factors_step
        if local >= n_blocks and counts_step != step:
            # ... the counts' path of this step (K values; cheaper than another phase)
            my_counts[:] = 0.0
            for i in range(start, stop):
                my_counts[bmu[i]] += 1.0
            if smooth:
                _smooth_counts(my_counts, f0, f1, bands, scale, my_smoothed, my_tmp)
                _ema_counts(ema_count, my_smoothed, decay, eps, update_all, my_ema_count)
            else:
                _ema_counts(ema_count, my_counts, decay, eps, update_all, my_ema_count)
            counts_step = step
        if local < n_blocks:
            lo = start + local * step_rows
            hi = min(lo + step_rows, stop)
            # the rows lie anywhere in the data: each asked for AHEAD rows early
            for i in range(lo, min(lo + AHEAD, hi)):
                prefetch_row(data, index[i])
            for i in range(lo, hi):
                if i + AHEAD < hi:
                    prefetch_row(data, index[i + AHEAD])
                r = index[i]
                for j in range(rows.shape[1]):
                    rows[i, j] = data[r, j]
            search_block(
                rows,
                lo,
                hi,
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
            clock = _lap(profile, 0, clock)
        else:
            c0 = splits[local - n_blocks]
            c1 = splits[local - n_blocks + 1]
            _accumulate_columns(rows, start, stop, bmu, sums, c0, c1)
            if smooth:
                _smooth_columns(sums, f0, f1, bands, scale, out_sums, tmp, c0, c1)
                _ema_columns(
                    ema_sum, codebook, my_smoothed, out_sums, my_ema_count, decay, update_all, c0, c1
                )
            else:
                _ema_columns(ema_sum, codebook, my_counts, sums, my_ema_count, decay, update_all, c0, c1)
            clock = _lap(profile, 2, clock)
            # the thread that finishes the step's last update task makes the frame (every
            # other update of the step is done: its count came first), before its task
            # counts as done, so the next step's searches wait for the frame too
            if atomic_add(sync, COUNTER, 1) + 1 == (step + 1) * n_chunks:
                for k in range(my_ema_count.shape[0]):
                    ema_count[k] = my_ema_count[k]
                step_errors[step] = _pairwise_sum(sq_dist, start, stop - start)
                prepare_frame(codebook, mean, centre, aug, limit, frame)
                profile[profile.shape[0] - 1] += 1
                if frame[FINITE] == 0.0:
                    atomic_store(sync, STOP, step + 1)  # no later task runs
                clock = _lap(profile, 3, clock)
        add_and_wake(sync, DONE, 1)
    wait_until(sync, DONE, total)  # the others' last tasks (returns at a stop or abort)
    _lap(profile, 1, clock)
    if atomic_load(sync, ABORT) != 0:
        return -1
    stopped = atomic_load(sync, STOP)
    return stopped if stopped != 0 else n_steps


# ---------------------------------------------------------------------------- the pass
class _Scratch(NamedTuple):
    framed: np.ndarray  # (rows, D + 1), last column 1
    products: np.ndarray  # (rows, K)


def _scratch(rows: int, n_units: int, n_features: int, dtype) -> _Scratch:
    framed = np.empty((max(rows, 1), n_features + 1), dtype=dtype)
    framed[:, n_features] = 1.0
    n_rows = scores_rows(max(rows, 1), n_units, n_features, np.dtype(dtype).itemsize)
    products = np.empty((n_rows, n_units), dtype=dtype)
    return _Scratch(framed, products)


_ONE_BY_ONE = np.ones((1, 1))

#: Threads of a pass at most: the calling thread and one worker (run_steps splits the
#: update in two column ranges). Tests set 1 to compare with the one-thread pass.
_MAX_THREADS = 2


def _step_factors(neighbourhood, grid, t0: int, n_steps: int, offsets):
    """``(smooth, f0s, f1s, scales)`` for steps ``t0 .. t0 + n_steps - 1``: the factors and
    scale of :func:`somvq.neighbourhoods.smoothing_operator` at each step, with the same
    values bit for bit (tests/test_minibatch_step.py), but with no per-step Python beyond a
    schedule value: the hard kernel's factors do not change (one copy, a scale per
    step), the gaussian's are one ``np.exp`` over every step's ``d^2 * (-0.5 / r^2)``.
    ``offsets``: the grid's per-axis offsets (``neighbourhoods._axis_offsets``)."""
    kind = neighbourhood.kind
    one = _ONE_BY_ONE[None]
    if kind == "none":
        return False, one, one, np.ones(1)
    if kind == "hard":
        factors = [(d <= 1.0).astype(np.float64)[None] for d in offsets]
        scales = np.array([float(neighbourhood.hard_weight(float(t))) for t in range(t0, t0 + n_steps)])
    else:  # gaussian
        coef = np.empty(n_steps)
        for s, t in enumerate(range(t0, t0 + n_steps)):
            radius = float(neighbourhood.radius(float(t)))
            coef[s] = -0.5 / (radius * radius)
        factors = [np.exp((d * d)[None] * coef[:, None, None]) for d in offsets]
        scales = np.ones(n_steps)
    f0s, f1s = factors if len(factors) == 2 else (one, factors[0])
    return True, np.ascontiguousarray(f0s), np.ascontiguousarray(f1s), scales


_LAST_PROFILE: list = []


@functools.lru_cache(maxsize=1)
def _cycles_per_second() -> float:
    import time

    from .cpu_sync import cycle_counter

    c0, t0 = cycle_counter(), time.perf_counter()
    time.sleep(0.05)
    c1, t1 = cycle_counter(), time.perf_counter()
    return (c1 - c0) / (t1 - t0)


def last_profile() -> dict:
    """Where the threads of the last compiled pass spent their time (for benchmarks).

    ``{"phases": PHASES, "seconds": (n_threads, 4) array, "steps": steps done}``, from
    cycle-counter reads inside :func:`run_steps` ("wait": waiting for tasks of the other
    thread, and claiming).
    """
    if not _LAST_PROFILE:
        return {"phases": PHASES, "seconds": np.zeros((0, len(PHASES))), "steps": 0}
    cycles = np.array([p[: len(PHASES)] for p in _LAST_PROFILE], dtype=np.float64)
    return {
        "phases": PHASES,
        "seconds": cycles / _cycles_per_second(),
        "steps": int(sum(p[-1] for p in _LAST_PROFILE)),
    }


def _aligned(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    raw = np.empty(size + 64, dtype=np.uint8)
    offset = -raw.__array_interface__["data"][0] % 64  # (ctypes.data: 3 us more)
    return raw[offset : offset + size].view(dtype).reshape(shape)


def _column_splits(n_features: int, n_threads: int, itemsize: int) -> np.ndarray:
    """Column bounds of the update's tasks: one range with one thread; with two, about
    halves, split on a cache line of every split array (64 bytes of the codebook's
    dtype, ``itemsize``, and so of the float64 statistics too). When no such split leaves
    both ranges some columns, one range (shared lines cost more than the split gains)."""
    step = 64 // itemsize
    half = (n_features // 2) // step * step
    if n_threads == 1 or half == 0:
        return np.array([0, n_features], dtype=np.int64)
    return np.array([0, half, n_features], dtype=np.int64)


def _run_chunk(args, n_threads: int, n_rows: int, batch_size: int, chunk_rows: int, splits) -> int:
    """:func:`run_steps` over one chunk of ``n_rows`` rows: on the calling thread, and with
    two threads on one worker of the search's pool too (``cpu_bmu.run_on_threads``: a
    worker kept for the process, not a thread started per pass, ~0.1 ms). ``args`` holds
    each thread's arguments after ``sync``; a thread takes the next unused set when it
    starts. Returns the steps done (fewer than the chunk's after a diverged step)."""
    sync = np.zeros(SYNC_SIZE, dtype=np.int64)  # per chunk: a late worker claims nothing
    if n_threads == 1:
        steps = run_steps(1, sync, *args[0])
        if steps < 0:  # pragma: no cover - one thread aborts only by raising
            raise RuntimeError("the mini-batch pass was aborted")
        return steps
    n_steps = -(-n_rows // batch_size)
    n_tasks = _chunk_tasks(n_rows, batch_size, chunk_rows, splits.shape[0] - 1)
    sets = iter(args)  # next() on it is one step under the GIL: each thread its own set
    run_on_threads(
        lambda: run_steps(n_threads, sync, *next(sets)), sync, n_threads, DONE, n_tasks,
        "minibatch_pass", stops=True,
    )  # fmt: skip
    stopped = int(sync[STOP])
    return stopped if stopped != 0 else n_steps


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
    """Mini-batch KSOM over ``X[order]``, one compiled call per thread per chunk of rows.

    The arguments are those of :func:`somvq.algorithms.minibatch_pass_inplace`, checked
    there (``X`` in the codebook's dtype, ``order`` intp, state C-contiguous, a smoothing
    that is none or separable on a 1-D / 2-D grid: ``algorithms._compiled_step``).
    Returns the summed squared error and the number of rows done: all of them, unless a
    step left a codebook with no finite frame (a diverged fit), after which the caller
    runs the rest step by step. Rows are taken a chunk at a time (``gather_rows``,
    whole batches; ``order`` follows ``np.take``'s rules, checked here); each chunk is one :func:`run_steps` call on the calling thread and,
    with more than one BLAS thread (the count seen on entry, as the full search reads it)
    and batches of more than one block, the same call on a worker of the searches' pool
    (:func:`_run_chunk`): the two share the chunk's tasks (search blocks, update column ranges, frames; see
    :func:`run_steps`). Every BLAS is held at one thread meanwhile.
    """
    from ..neighbourhoods import _axis_offsets
    from .cpu_bmu import _CPU_COUNT, _constants

    dtype = X.dtype
    n_rows = order.shape[0]
    if n_rows:  # np.take's rules: indices in [-len(X), len(X)), negative ones from the end
        low, high = int(order.min()), int(order.max())
        if low < -X.shape[0] or high >= X.shape[0]:
            bad = low if low < -X.shape[0] else high
            raise IndexError(f"index {bad} is out of bounds for axis 0 with size {X.shape[0]}")
        if low < 0:
            order = np.where(order < 0, order + X.shape[0], order)
    order = np.ascontiguousarray(order, dtype=np.int64)
    n_units, n_features = codebook.shape
    rows_max = min(batch_size, n_rows)
    chunk_max = min(gather_rows, n_rows)
    gathered = np.empty((chunk_max, n_features), dtype=dtype)
    bmu = np.empty(chunk_max, dtype=np.int64)
    sq_dist = np.empty(chunk_max)
    step_errors = np.empty(-(-chunk_max // batch_size))
    # the update's shared (K, D) arrays start on a cache line, so that the two threads'
    # column halves share no line when a row is a whole number of lines (false sharing
    # made the update 10x slower when both threads ran it at once)
    sums = _aligned((n_units, n_features), np.float64)
    out_sums = _aligned((n_units, n_features), np.float64)
    tmp = _aligned((n_units, n_features), np.float64)
    mean = np.empty(n_features)
    centre = np.zeros(n_features, dtype=dtype)
    aug = np.empty((n_units, n_features + 1), dtype=dtype)
    frame = np.zeros(4)
    constants = _constants(dtype, n_features)
    limit = constants.limit
    prepare_frame(codebook, mean, centre, aug, limit, frame)
    if frame[FINITE] == 0.0:
        return 0.0, 0
    offsets = [_axis_offsets(n, p) for n, p in zip(grid.shape, grid.periodic)]
    # any batch's blocks (balanced_chunk_rows of its rows) have at most this many rows
    block_rows = min(rows_max, chunk_rows)

    threads = blas_threads()
    n_threads = min(threads, _CPU_COUNT, -(-rows_max // block_rows), _MAX_THREADS)
    n_steps = -(-n_rows // batch_size)
    if n_steps <= 1:
        n_threads = 1
    splits = _column_splits(n_features, n_threads, codebook.itemsize)
    # per thread: search scratch, the counts' path, a profile
    per_thread = [
        (
            *_scratch(block_rows, n_units, n_features, dtype),
            np.zeros((4, n_units)),
            np.zeros(len(PHASES) + 1, dtype=np.int64),
        )
        for _ in range(n_threads)
    ]
    global _LAST_PROFILE
    _LAST_PROFILE = [thread[-1] for thread in per_thread]
    sq_error = 0.0
    done = 0
    t = int(t0)
    decay, eps = float(decay), float(eps)
    state = (codebook, ema_sum)
    if n_threads > 1:  # aligned working copies of the column-split state, copied back
        codebook, ema_sum = (_aligned(a.shape, a.dtype) for a in state)
        codebook[...], ema_sum[...] = state
    with blas_at_one_thread():
        try:
            for g_start in range(0, n_rows, gather_rows):
                g_stop = min(g_start + gather_rows, n_rows)
                block = gathered[: g_stop - g_start]  # gathered by run_steps' search tasks
                chunk_steps = -(-block.shape[0] // batch_size)
                smooth, f0s, f1s, scales = _step_factors(neighbourhood, grid, t, chunk_steps, offsets)
                args = [
                    (
                        X,
                        order[g_start:g_stop],
                        block,
                        batch_size,
                        chunk_rows,
                        framed,
                        products,
                        codebook,
                        aug,
                        centre,
                        frame,
                        constants.kappa,
                        constants.overflow,
                        constants.up,
                        bmu,
                        sq_dist,
                        step_errors,
                        sums,
                        smooth,
                        f0s,
                        f1s,
                        scales,
                        out_sums,
                        tmp,
                        ema_count,
                        ema_sum,
                        decay,
                        eps,
                        update_all,
                        mean,
                        limit,
                        private,
                        splits,
                        profile,
                    )  # fmt: skip
                    for framed, products, private, profile in per_thread
                ]
                steps = _run_chunk(args, n_threads, block.shape[0], batch_size, chunk_rows, splits)
                for s in range(steps):  # in step order, as the loop adds them
                    sq_error += float(step_errors[s])
                t += steps
                done += min(steps * batch_size, block.shape[0])
                if steps < chunk_steps:
                    return sq_error, done
        finally:
            if codebook is not state[0]:
                state[0][...], state[1][...] = codebook, ema_sum
    return sq_error, done
