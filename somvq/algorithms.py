"""The three KSOM algorithms as functions on arrays (docs/algorithms.md §5-§7).

This layer sits between the kernels (loops only) and the engines (data, state, the pass
loop). Each function does one step of one algorithm, exactly as the equations are written;
these are the definitions, and the compiled kernels (CPU and CUDA) are fast paths that the
tests hold equal to them:

* :func:`unit_statistics` - the E step shared by batch and mini-batch KSOM:
  hit counts ``c = E^T 1`` and per-unit sums ``S = E^T X``.
* :func:`smooth_statistics` - ``n = H c``, ``s = H S`` (never O(N K^2)) with the
  :func:`~somvq.neighbourhoods.smoothing_operator` of the step.
* :func:`batch_update` - ``w_k <- s_k / n_k`` (units with ``n_k <= 0`` keep ``w_k``).
* :func:`ema_update` - the paper's KSOM-EMA update (E1)-(E4), "all" or "written"; on NumPy
  arrays and torch tensors alike (the torch plugin's update is this function).
* :func:`minibatch_pass_inplace` - a whole mini-batch pass, fused, in place.
* :func:`online_pass_inplace` - Kohonen's sequential rule, sample by sample, in place.

Functions that change their arguments say so in their names (``_inplace``); the passes
take ``(X, order, codebook, <state arrays>, neighbourhood, grid, t0, *, options)``.

Statistics (counts, sums, EMA state) are float64; the distance GEMM runs in the data's
dtype, so float32 data stays float32 in the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import distances
from ._kernels import config as kernel_config
from .neighbourhoods import (
    IdentitySmoothing,
    Neighbourhood,
    SeparableSmoothing,
    Smoothing,
    _namespace,
    smoothing_operator,
)
from .schedules import Schedule

__all__ = [
    "UnitStatistics",
    "unit_statistics",
    "smooth_statistics",
    "batch_update",
    "ema_update",
    "minibatch_pass_inplace",
    "online_pass_inplace",
    "learning_rate_parameters",
    "online_kernel_arguments",
    "assign",
]


@dataclass
class UnitStatistics:
    """Sufficient statistics of one pass: per-unit hit counts and sums, and the error."""

    counts: np.ndarray  # (K,) float64
    sums: np.ndarray  # (K, D) float64
    sq_error: float  # sum over rows of ||x - w_bmu||^2
    n_samples: int

    def __add__(self, other: UnitStatistics) -> UnitStatistics:
        return UnitStatistics(
            self.counts + other.counts,
            self.sums + other.sums,
            self.sq_error + other.sq_error,
            self.n_samples + other.n_samples,
        )


def assign(X: np.ndarray, codebook: np.ndarray, *, chunk_rows: int | None = None):
    """BMU index (int64) and squared distance to it (float64) for every row of ``X``."""
    from ._kernels.cpu_bmu import best_matching_units

    chunk_rows = chunk_rows or kernel_config.CHUNK_ROWS
    X = _as_dtype(X, codebook.dtype)
    bmu = np.empty(X.shape[0], dtype=np.int64)
    sq_dist = np.empty(X.shape[0], dtype=np.float64)
    best_matching_units(X, codebook, None, bmu, sq_dist, chunk_rows=chunk_rows)
    return bmu, sq_dist


def unit_statistics(
    X: np.ndarray, codebook: np.ndarray, *, chunk_rows: int | None = None, buffers=None
) -> UnitStatistics:
    """Hit counts ``c = E^T 1`` and sums ``S = E^T X`` of ``X`` against ``codebook``.

    ``buffers``: optional ``(counts (K,), sums (K, D), bmu (>= n,), sq_dist (>= n,))``
    float64/int64 arrays reused between calls (a mini-batch pass); the returned counts and
    sums are then those buffers, overwritten by the next call.
    """
    # The compiled kernels are imported on first use: importing this module (the torch
    # plugin does, for ema_update) loads no Numba code.
    from ._kernels.cpu_bmu import best_matching_units

    chunk_rows = chunk_rows or kernel_config.CHUNK_ROWS
    X = _as_dtype(X, codebook.dtype)
    n_units, n_features = codebook.shape
    if buffers is None:
        counts = np.zeros(n_units, dtype=np.float64)
        sums = np.zeros((n_units, n_features), dtype=np.float64)
        bmu = np.empty(X.shape[0], dtype=np.int64)
        sq_dist = np.empty(X.shape[0], dtype=np.float64)
    else:
        counts, sums, bmu, sq_dist = buffers
        counts.fill(0.0)
        sums.fill(0.0)
        bmu, sq_dist = bmu[: X.shape[0]], sq_dist[: X.shape[0]]
    best_matching_units(X, codebook, None, bmu, sq_dist, counts=counts, sums=sums, chunk_rows=chunk_rows)
    return UnitStatistics(counts, sums, float(sq_dist.sum()), X.shape[0])


def smooth_statistics(
    neighbourhood_matrix: np.ndarray | Smoothing | None, counts: np.ndarray, sums: np.ndarray, *, out=None
) -> tuple[np.ndarray, np.ndarray]:
    """``n = H c`` and ``s = H S``; ``None`` stands for ``H = I`` (no neighbourhood).

    ``neighbourhood_matrix`` is the dense ``H``, or the
    :class:`~somvq.neighbourhoods.Smoothing` of the step from
    :func:`~somvq.neighbourhoods.smoothing_operator` (the fast form of the same map).
    ``out``: optional float64 buffers ``(counts (K,), sums (K, D), scratch (K, D + 1))``
    that the separable form writes into (a mini-batch pass reuses them every step).
    """
    if neighbourhood_matrix is None:
        return counts, sums
    if isinstance(neighbourhood_matrix, SeparableSmoothing) and len(neighbourhood_matrix.factors) <= 2:
        # Compiled and single-threaded: numpy's tensordot calls a multi-threaded BLAS whose
        # threads fight the BMU block pool on a busy machine (docs/performance.md).
        return _smooth_separable(neighbourhood_matrix, counts, sums, out)
    if isinstance(neighbourhood_matrix, Smoothing):
        return neighbourhood_matrix.apply(counts, sums)
    return neighbourhood_matrix @ counts, neighbourhood_matrix @ sums


def _smooth_separable(op: SeparableSmoothing, counts: np.ndarray, sums: np.ndarray, out=None):
    """``op.apply(counts, sums)`` for 1-D/2-D grids through the compiled kernel.

    ``out``: optional ``(out_counts (K,), out_sums (K, D), scratch (K, D + 1))`` float64
    buffers reused between calls.
    """
    from ._kernels.cpu_minibatch import smooth_separable_2d

    n_units, n_features = sums.shape
    if out is None:
        out = (np.empty(n_units), np.empty((n_units, n_features)), np.empty((n_units, n_features + 1)))
    out_counts, out_sums, scratch = out
    f0, f1 = op.factors if len(op.factors) == 2 else (_ONE_BY_ONE, op.factors[0])
    smooth_separable_2d(
        np.ascontiguousarray(counts, dtype=np.float64),
        np.ascontiguousarray(sums, dtype=np.float64),
        np.ascontiguousarray(f0, dtype=np.float64),
        np.ascontiguousarray(f1, dtype=np.float64),
        op.scale,
        out_counts,
        out_sums,
        scratch,
    )
    return out_counts, out_sums


_ONE_BY_ONE = np.ones((1, 1))


def batch_update(codebook: np.ndarray, counts: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """Batch KSOM update ``w_k <- s_k / n_k``; units with ``n_k <= 0`` keep their vector.

    ``counts``/``sums`` are the smoothed statistics. Returns a new array in the codebook's
    dtype.
    """
    hit = counts > 0
    # Every row divided, then the rows without hits put back: the same values as dividing
    # only the hit rows (float32 -> float64 -> float32 is exact), without the boolean
    # gathers and scatters of (K, D) float64 rows (3.8 -> 0.2 ms at K x D = 512 x 784).
    with np.errstate(divide="ignore", invalid="ignore"):
        new = (sums / counts[:, None]).astype(codebook.dtype, copy=False)
    if not hit.all():
        new[~hit] = codebook[~hit]
    return new


def ema_update(ema_count, ema_sum, codebook, counts, sums, *, decay: float, eps: float, update: str = "all"):
    """The paper's mini-batch KSOM-EMA update, (E1)-(E4) of docs/algorithms.md §7.

    ``counts``/``sums`` are this batch's smoothed statistics ``n = H c``, ``s = H S``.
    NumPy arrays or torch tensors (the torch plugin calls it on the device: no host
    synchronisation); the EMA state and the statistics share one float dtype.

    update="all" (the paper's)::

        N <- decay N + (1 - decay) n
        N <- (N + eps) / (sum(N) + K eps) * sum(N)      (Laplace smoothing)
        m <- decay m + (1 - decay) s
        w <- m / N

    update="written": the three EMA lines only where ``n_k > 0``; no smoothing; the other
    units keep N, m and w.

    Returns new ``(ema_count, ema_sum, codebook)``, the codebook in ``codebook``'s dtype;
    the inputs are not modified. The compiled fast paths (``ema_update_inplace`` in
    ``somvq/_kernels/cpu_minibatch.py`` and ``cuda_update.py``) are tested against it.
    """
    keep = 1.0 - decay
    if update == "all":
        count = decay * ema_count + keep * counts  # (E1)
        total = count.sum()
        count = (count + eps) / (total + count.shape[0] * eps) * total  # (E2)
        total_sum = decay * ema_sum + keep * sums  # (E3)
        return count, total_sum, _cast_like(total_sum / count[:, None], codebook)  # (E4)
    if update == "written":
        xp = _namespace(counts)
        written = counts > 0
        count = xp.where(written, decay * ema_count + keep * counts, ema_count)
        total_sum = xp.where(written[:, None], decay * ema_sum + keep * sums, ema_sum)
        # Units not written keep w; dividing them by 1 instead of N avoids 0/0 when N0 = 0.
        divisor = xp.where(written, count, xp.ones_like(count))
        new_codebook = xp.where(written[:, None], total_sum / divisor[:, None], codebook)
        return count, total_sum, _cast_like(new_codebook, codebook)
    raise ValueError(f"update={update!r} is not one of ('all', 'written').")


def _cast_like(values, like):
    """``values`` in ``like``'s dtype (NumPy arrays and torch tensors)."""
    if isinstance(values, np.ndarray):
        return values.astype(like.dtype, copy=False)
    return values.to(like.dtype)


#: Bytes of rows that :func:`minibatch_pass_inplace` gathers (in the pass's order) at once.
_GATHER_BYTES = 8 << 20


def minibatch_pass_inplace(
    X: np.ndarray,
    order: np.ndarray,
    codebook: np.ndarray,
    ema_count: np.ndarray,
    ema_sum: np.ndarray,
    neighbourhood: Neighbourhood,
    grid,
    t0: int,
    *,
    batch_size: int,
    decay: float,
    eps: float,
    update: str = "all",
    chunk_rows: int | None = None,
) -> float:
    """Mini-batch KSOM over ``X[order]`` in batches of ``batch_size``, updating in place.

    The same arithmetic as, per batch at step ``t = t0, t0 + 1, ...``::

        stats = unit_statistics(batch, codebook)
        n, s = smooth_statistics(smoothing_operator(neighbourhood, grid, t), stats.counts, stats.sums)
        ema_count, ema_sum, codebook = ema_update(ema_count, ema_sum, codebook, n, s, ...)

    but with no per-step temporaries of size K x D: ``codebook`` (C-contiguous, the data's
    dtype), ``ema_count`` (K,) and ``ema_sum`` (K, D) (float64, C-contiguous) are updated
    in place, so pass private copies (the CPU engine does, and publishes them at the end).
    Rows are gathered in order into a contiguous buffer a few MB at a time, the BLAS stays
    single-threaded for the whole pass, and the smoothing and EMA update run compiled
    (:mod:`somvq._kernels.cpu_minibatch`). When the smoothing is none or separable on a
    1-D / 2-D rectangular grid, each step is one compiled search call per block (two
    threads, no GIL) and one compiled update call
    (:mod:`somvq._kernels.cpu_minibatch_step`), with the same bits as the loop here.
    Returns the sum over rows of the squared distance to the winner met at the row's step.
    """
    from ._kernels.cpu_bmu import single_threaded_blas
    from ._kernels.cpu_minibatch import ema_update_inplace

    if update not in ("all", "written"):
        raise ValueError(f"update={update!r} is not one of ('all', 'written').")
    chunk_rows = chunk_rows or kernel_config.CHUNK_ROWS
    X = _as_dtype(X, codebook.dtype)
    order = np.asarray(order, dtype=np.intp)
    n_rows = order.shape[0]
    n_units, n_features = codebook.shape
    batch_size = max(int(batch_size), 1)
    # Rows gathered at once: whole batches, about 8 MB (at least one batch).
    per_gather = max(1, _GATHER_BYTES // max(1, n_features * X.itemsize * batch_size)) * batch_size
    update_all = update == "all"
    sq_error = 0.0
    t = int(t0)
    n_steps = -(-n_rows // batch_size)
    min_steps = _MIN_COMPILED_STEPS
    if n_features <= _FEW_FEATURES:  # (a min: a lower _MIN_COMPILED_STEPS lowers both)
        min_steps = min(min_steps, _MIN_COMPILED_STEPS_FEW)
    if n_steps >= min_steps and _compiled_step(neighbourhood, grid, t, codebook, ema_count, ema_sum):
        # Each step compiled (somvq/_kernels/cpu_minibatch_step.py): the same bits as the
        # loop below, which runs only what the compiled pass leaves (a diverged codebook).
        from ._kernels import cpu_minibatch_step

        sq_error, done = cpu_minibatch_step.minibatch_pass(
            X,
            order,
            codebook,
            ema_count,
            ema_sum,
            neighbourhood,
            grid,
            t,
            batch_size=batch_size,
            decay=decay,
            eps=eps,
            update_all=update_all,
            chunk_rows=chunk_rows,
            gather_rows=per_gather,
        )
        if done == n_rows:
            return sq_error
        order = order[done:]
        n_rows = order.shape[0]
        t += -(-done // batch_size)
    gathered = np.empty((min(per_gather, n_rows), n_features), dtype=X.dtype)
    rows = min(batch_size, n_rows)
    counts = np.empty(n_units)
    sums = np.empty((n_units, n_features))
    bmu = np.empty(rows, dtype=np.int64)
    sq_dist = np.empty(rows)
    buffers = (counts, sums, bmu, sq_dist)
    smoothed = (np.empty(n_units), np.empty((n_units, n_features)), np.empty((n_units, n_features + 1)))
    with single_threaded_blas():
        for g_start in range(0, n_rows, per_gather):
            g_stop = min(g_start + per_gather, n_rows)
            block = gathered[: g_stop - g_start]
            np.take(X, order[g_start:g_stop], axis=0, out=block)
            for start in range(0, block.shape[0], batch_size):
                batch = block[start : start + batch_size]
                stats = unit_statistics(batch, codebook, chunk_rows=chunk_rows, buffers=buffers)
                sq_error += stats.sq_error
                op = smoothing_operator(neighbourhood, grid, t)
                n_t, s_t = smooth_statistics(op, counts, sums, out=smoothed)
                n_t = np.ascontiguousarray(n_t, dtype=np.float64)
                s_t = np.ascontiguousarray(s_t, dtype=np.float64)
                ema_update_inplace(
                    ema_count, ema_sum, codebook, n_t, s_t, float(decay), float(eps), update_all
                )
                t += 1
    return sq_error


def _compiled_step(neighbourhood, grid, t, codebook, ema_count, ema_sum) -> bool:
    """Whether :func:`minibatch_pass_inplace` can run each step compiled: a smoothing the
    compiled step has (none, separable on 1-D/2-D rectangular grids) and the state as the
    kernels take it (the CPU engine's private copies are)."""
    if not _MINIBATCH_COMPILED:
        return False
    op = smoothing_operator(neighbourhood, grid, t)
    return (
        codebook.dtype in (np.float32, np.float64)
        and codebook.flags.c_contiguous
        and codebook.flags.writeable
        and all(
            a.dtype == np.float64 and a.flags.c_contiguous and a.flags.writeable for a in (ema_count, ema_sum)
        )
        and (
            isinstance(op, IdentitySmoothing) or (isinstance(op, SeparableSmoothing) and len(op.factors) <= 2)
        )
    )


#: Run mini-batch steps compiled where :func:`_compiled_step` allows (tests switch it off
#: to compare with the step-by-step loop).
_MINIBATCH_COMPILED = True

#: Steps a pass needs before it runs compiled: the compiled pass sets up its frame and
#: buffers once per pass (~0.2 ms), which a pass of a few steps does not win back at many
#: features (digits, D = 64, batch 1024, 2 steps a pass: 1.0-1.4x the loop's time). With
#: at most ``_FEW_FEATURES`` features it pays from ``_MIN_COMPILED_STEPS_FEW`` steps (20x20,
#: batch 1024, 3000 / 5000 / 7000 rows: 0.88 / 0.79 / 0.77x the loop's epoch at D = 32,
#: 0.88 / 0.79 / 0.74x at D = 16; 2048 rows, 2 steps: 0.99x; docs/performance.md, round 19).
_MIN_COMPILED_STEPS = 8
_FEW_FEATURES = 32
_MIN_COMPILED_STEPS_FEW = 3


def learning_rate_parameters(learning_rate: Schedule | str) -> tuple[int, np.ndarray]:
    """``(code, [start, end, shrink, horizon])`` of an online learning rate, for the kernels.

    ``learning_rate`` is a :class:`Schedule`, or ``"inverse_count"`` (code
    ``INVERSE_COUNT``: ``1 / n_k*`` with the winner's hit count).
    """
    from ._kernels.neighbourhood_formulas import INVERSE_COUNT

    if isinstance(learning_rate, str):
        if learning_rate != "inverse_count":
            raise ValueError(f"learning_rate={learning_rate!r} is not a schedule or 'inverse_count'.")
        return INVERSE_COUNT, np.zeros(4)
    return learning_rate.code, np.array(
        [learning_rate.start, learning_rate.end, learning_rate.shrink, learning_rate.horizon],
        dtype=np.float64,
    )


def online_pass_inplace(
    X: np.ndarray,
    order: np.ndarray,
    codebook: np.ndarray,
    unit_counts: np.ndarray,
    neighbourhood: Neighbourhood,
    grid,
    t0: int,
    *,
    learning_rate: Schedule | str,
    grid_distances: np.ndarray | None = None,
) -> None:
    """Online KSOM over ``X[order]``, updating ``codebook`` and ``unit_counts`` in place.

    ``learning_rate`` is a :class:`Schedule`, or ``"inverse_count"`` for ``1 / n_k*`` with
    the winner's hit count (MacQueen's online k-means when the neighbourhood is "none").

    ``grid``: the :class:`~somvq.grids.Grid`, or None with ``grid_distances`` (a K x K
    matrix; the general kernel). On a 1-D or 2-D rectangular grid it enables the fast
    paths of :func:`somvq._kernels.cpu_online.online_pass_grid`: per-axis weights for
    "gaussian" (n0 + n1 ``exp`` per sample instead of K; equal up to rounding) and, for
    the kernels with finite support ("none", "hard", "bubble", "triangle",
    "cut_gaussian"), updates of the units inside the support only (same bits).
    ``grid_distances=None``: taken from the grid when needed (the fast modes never build
    the K x K matrix).
    """
    # Imported here, not at module import: loading the online kernels' cached overloads
    # costs first-use time that batch and mini-batch fits do not need.
    from ._kernels.cpu_online import online_pass as _online_pass_kernel

    if grid_distances is None:
        if grid is None:
            raise ValueError("online_pass_inplace needs grid_distances or grid.")
        if _online_mode(neighbourhood, grid, X, codebook, None) is None:
            grid_distances = grid.distances
    mode = _online_mode(neighbourhood, grid, X, codebook, grid_distances)
    if mode is not None and grid_distances is None:
        grid_distances = _NO_DISTANCES  # the fast modes never read them: K x K not built
    order = np.ascontiguousarray(order, dtype=np.int64)
    args = online_kernel_arguments(grid_distances, neighbourhood, learning_rate, unit_counts, t0)
    if mode is None:
        run_online_scaled(lambda Xs, Ws, _: _online_pass_kernel(Xs, Ws, order, *args), X, codebook)
        return
    from ._kernels.cpu_online import online_pass_grid

    shape = grid.shape if grid.ndim == 2 else (1, grid.shape[0])
    periodic = grid.periodic if grid.ndim == 2 else (False, grid.periodic[0])
    grid_args = (mode, np.asarray(shape, dtype=np.int64), np.asarray(periodic, dtype=np.int64))
    run_online_scaled(lambda Xs, Ws, _: online_pass_grid(Xs, Ws, order, *args, *grid_args), X, codebook)


def online_kernel_arguments(
    grid_distances: np.ndarray,
    neighbourhood: Neighbourhood,
    learning_rate: Schedule | str,
    unit_counts: np.ndarray,
    t0: int,
) -> tuple:
    """The arguments every compiled online pass takes after its own, in their order.

    ``(grid_distances, neighbourhood code, radius code, kernel parameters, learning-rate
    code, learning-rate parameters, unit_counts, t0)``: the plain, grid, masked and
    layered passes of ``somvq._kernels`` all end with these.
    """
    lr_code, lr_params = learning_rate_parameters(learning_rate)
    return (
        grid_distances,
        neighbourhood.code,
        neighbourhood.radius.code,
        neighbourhood.kernel_parameters(),
        lr_code,
        lr_params,
        unit_counts,
        int(t0),
    )


def run_online_scaled(run, X: np.ndarray, codebook: np.ndarray) -> None:
    """``run(X, codebook, scale)`` (an online pass updating ``codebook`` in place), on
    float64 data and codebook below :data:`somvq.distances.TINY` scaled by
    :func:`somvq.distances.underflow_scale` first (``scale``, a power of two; 1.0 when
    none is needed), the codebook scaled back after: the online passes rank units by
    direct float64 distances, whose squares would underflow. Kohonen's rule commutes with
    the scaling, so the pass over ``X * scale`` is the pass over ``X``, scaled."""
    scale = distances.underflow_scale(X, codebook)
    if scale == 1.0:
        run(X, codebook, 1.0)
        return
    scaled = codebook * scale
    run(X * scale, scaled, scale)
    codebook[:] = scaled / scale


_NO_DISTANCES = np.zeros((1, 1))
_NO_DISTANCES.setflags(write=False)

_BOX_KERNELS = ("none", "hard", "bubble", "triangle", "cut_gaussian")


def _online_mode(neighbourhood, grid, X, codebook, grid_distances):
    """The fast mode of ``online_pass_grid`` for this call, or None for the general kernel."""
    from ._kernels.cpu_online import MODE_BOX, MODE_SEPARABLE_GAUSSIAN

    if (
        grid is None
        or grid.topology != "rectangular"
        or grid.ndim > 2
        or not isinstance(X, np.ndarray)
        or not X.flags.c_contiguous
        or X.dtype != codebook.dtype
        or X.dtype not in (np.float32, np.float64)
        or not codebook.flags.c_contiguous
        or (grid_distances is not None and grid_distances is not grid.__dict__.get("distances"))
    ):
        return None
    if neighbourhood.kind == "gaussian":
        return MODE_SEPARABLE_GAUSSIAN
    if neighbourhood.kind in _BOX_KERNELS:
        return MODE_BOX
    return None


def _as_dtype(X: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return X if X.dtype == dtype else X.astype(dtype)
