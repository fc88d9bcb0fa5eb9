"""Missing values (NaN): kohonen's masked distance and the masked KSOM updates.

The definitions of ``KSOM(missing="ignore")`` (docs/missing-values.md), written once and
used by every engine that supports them (the CPU engine; the dask engine per chunk):

* :func:`check_missing` - validation of data that may hold NaN (inf is always an error, a
  row with no observed feature is always an error, rows missing more than
  ``max_missing`` of their features are an error naming them);
* :func:`masked_squared_distances` - ``d(x, w) = D / n_obs * sum_{j observed} (x_j - w_j)^2``
  for every row and unit, as two GEMMs ``M (w^2)^T - 2 (M o x) w^T + ||x||_M^2`` in the
  codebook's reference frame (:func:`somvq.distances.reference_frame`), block by block;
* :func:`masked_assign` - BMU (lowest index on ties) and its masked squared distance;
  rows whose best scores are within the GEMM's error bound are re-ranked by direct float64
  distances (as the dense path does); compiled per block of rows
  (:mod:`somvq._kernels.cpu_masked_search`);
* :func:`masked_unit_statistics` - per unit AND per feature counts ``n_kj`` and sums
  ``s_kj`` over observed entries (plus per-unit hit counts);
* :func:`smooth_masked_statistics` - ``H n``, ``H s`` (the (K, D) counts are smoothed
  exactly as the sums);
* :func:`masked_batch_update` - ``w_kj <- s_kj / n_kj`` (``w_kj`` kept where ``n_kj = 0``);
* :func:`masked_ema_update` - the KSOM-EMA update per feature: the EMA count ``N`` is
  (K, D) on the masked path (a dense fit keeps its (K,) ``ema_count_``).

Data without NaN never takes this path: the engines check ``np.isnan(X).any()`` once per
call and run the dense kernels, bit for bit as before.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np

from .distances import reference_frame

__all__ = [
    "MISSING_POLICIES",
    "MaskedStatistics",
    "check_missing",
    "has_missing",
    "masked_squared_distances",
    "masked_assign",
    "masked_unit_statistics",
    "smooth_masked_statistics",
    "masked_batch_update",
    "masked_ema_update",
    "masked_online_update_inplace",
    "masked_batch_step",
    "masked_ema_step",
    "masked_pass",
    "mean_filled",
    "check_observed_columns",
]

MISSING_POLICIES = ("error", "ignore")


#: Entries per block of rows of the scans below (their masks are O(block), not O(N D)).
_SCAN_ENTRIES = 1 << 20


def _row_blocks(X: np.ndarray):
    """``(start, X[start : start + rows])`` over a 2-D ``X``, ~:data:`_SCAN_ENTRIES` entries
    each (any other shape: the whole of it, once)."""
    if X.ndim != 2:
        yield 0, X
        return
    rows = max(1, _SCAN_ENTRIES // max(X.shape[1], 1))
    for start in range(0, X.shape[0], rows):
        yield start, X[start : start + rows]


def has_missing(X) -> bool:
    """Whether ``X`` (a NumPy array) holds a NaN: one pass, the check of every call (in
    blocks of rows: a whole-array mask is a quarter of float32 data's memory)."""
    if not (isinstance(X, np.ndarray) and X.dtype.kind == "f"):
        return False
    return any(bool(np.isnan(block).any()) for _, block in _row_blocks(X))


def _row_list(rows: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    return shown + (", ..." if rows.size > limit else "")


def _over_max_missing(n_missing: np.ndarray, n_columns: int, max_missing: float) -> np.ndarray:
    """Which rows miss more than the fraction ``max_missing`` of their ``n_columns`` entries.

    The fractions ``n_missing / n_columns`` (correctly rounded) are compared with
    ``max_missing`` itself: a row exactly at the limit (29 of 100 at ``max_missing=0.29``)
    is kept, which ``n_missing > max_missing * n_columns`` (28.999999999999996) would refuse.
    """
    return np.asarray(n_missing) / n_columns > max_missing


def unusable_rows(X: np.ndarray, max_missing: float) -> tuple[np.ndarray, np.ndarray]:
    """The 0-based rows of ``X`` with no observed feature (all NaN), and those missing more
    than ``max_missing`` of their features (which include the first): the rule of
    :func:`check_missing`, for callers that name rows their own way (the command line's
    line numbers)."""
    n_missing = np.empty(X.shape[0], dtype=np.int64)
    for start, block in _row_blocks(X):
        n_missing[start : start + block.shape[0]] = np.isnan(block).sum(axis=1)
    empty = np.flatnonzero(n_missing == X.shape[1])
    return empty, np.flatnonzero(_over_max_missing(n_missing, X.shape[1], max_missing))


def check_missing(X: np.ndarray, max_missing: float, *, row_offset: int = 0, where: str = "") -> None:
    """Raise a ValueError for data that ``missing="ignore"`` cannot use.

    inf (never "missing"), rows with no observed feature, and rows missing more than
    ``max_missing`` (a fraction) of their features; the message names how many rows and
    the first few indices (plus ``row_offset``: a chunk's first row; ``where`` is added to
    the message, e.g. the chunk).
    """
    if X.size == 0:
        return
    inf = np.concatenate([np.isinf(block).any(axis=1) for _, block in _row_blocks(X)])
    if inf.any():
        rows = np.flatnonzero(inf) + row_offset
        raise ValueError(
            f"Input X contains infinity in {rows.size} row(s){where} (rows {_row_list(rows)}); inf is "
            "never a missing value (use NaN for missing entries)."
        )
    empty, over = unusable_rows(X, max_missing)
    empty, over = empty + row_offset, over + row_offset
    if empty.size:
        raise ValueError(
            f"Input X has {empty.size} row(s){where} with no observed feature (all NaN): rows "
            f"{_row_list(empty)}; remove them."
        )
    if over.size:
        raise ValueError(
            f"Input X has {over.size} row(s){where} missing more than max_missing={max_missing!r} of "
            f"their {X.shape[1]} features: rows {_row_list(over)}; remove them or raise max_missing."
        )


_ONE32 = np.zeros((1, 1), dtype=np.float32)


class _MaskedFrame:
    """The codebook in its reference frame, stacked for the one GEMM of the masked scores.

    ``[M, M o x'] @ [[w'^2]^T; [-2 w']^T]`` gives, per row and unit, the masked score
    ``sum_j m_j (w'_j^2 - 2 x'_j w'_j)``; adding the row's ``sum_j m_j x'_j^2`` and scaling
    by ``D / n_obs`` (and by the frame's 1 / scale^2) gives the masked squared distance.
    Both terms are per row, so the BMU is the argmin of the score itself.

    :meth:`scores` computes it so (:func:`masked_squared_distances`, layered maps);
    :func:`masked_assign` computes the same scores as ``[x' | 1] @ [-2 W' | ||w'||^2]^T``
    less each row's ``sum_{j missing} w'_j^2`` (:meth:`search_tables`, the kernel
    :mod:`somvq._kernels.cpu_masked_search`), whose error stays within this product's bound.
    """

    def __init__(self, codebook: np.ndarray, single: bool = False) -> None:
        W64 = np.asarray(codebook, dtype=np.float64)
        self.W64 = W64
        self.n_features = W64.shape[1]
        frame = reference_frame(W64)
        self.scale = frame.scale
        self.centre = (
            frame.centre.astype(np.float64) if frame.centre is not None else np.zeros(self.n_features)
        )
        Wc = (W64 - self.centre) * frame.scale
        self.radius = float(np.sqrt(np.max(np.einsum("ij,ij->i", Wc, Wc)))) if W64.size else 0.0
        # Error of one score, with margin: (2 D + 8) u (||x'||_M + R)^2 where ||x'||_M^2 is added
        # to the scores (masked_squared_distances, layered maps); the search kernel, which
        # ranks the scores themselves, scales the same constant by R (2 ||x'||_M + R) + 4 eps
        # ||x'||_M^2 (somvq._kernels.cpu_masked_search).
        self.kappa = 1.25 * (2 * self.n_features + 8) * float(np.finfo(np.float64).eps) / 2.0
        self.block_rows = max(64, min(2048, (1 << 19) // max(W64.shape[0], 1)))  # <= 4 MB of scores
        # single=True (float32 data): the product in float32, at half the float64 cost. Both
        # factors are rounded to float32 once (relative error u each) and the GEMM adds
        # gamma_{2D} of sum |a_j b_j| <= (||x'||_M + R)^2, so the same formula holds with
        # float32's u; used where the frame keeps every square normal and finite (R and the
        # block's ||x'|| within [2^-50, 2^50]), else the block runs in float64.
        self.single = bool(single) and 2.0**-50 <= self.radius <= 2.0**50
        self.kappa32 = 1.25 * (2 * self.n_features + 8) * float(np.finfo(np.float32).eps) / 2.0
        self.Wc = Wc
        # masked_search_rows's blocks: 256 rows x K = 512 float32 scores are 512 KiB, half
        # a core's 1 MiB L2 (docs/missing-values.md has the measurements).
        self.search_rows = max(64, min(1024, (1 << 17) // max(W64.shape[0], 1)))

    @functools.cached_property
    def stacked(self) -> np.ndarray:
        """``[[w'^2]^T; [-2 w']^T]`` (2D, K), float64: the stacked product's right factor."""
        Wc = self.Wc
        return np.ascontiguousarray(np.vstack([(Wc * Wc).T, -2.0 * Wc.T]))

    @functools.cached_property
    def stacked32(self):
        """:attr:`stacked` rounded to float32 where the float32 product is allowed, else None."""
        return self.stacked.astype(np.float32) if self.single else None

    def search_tables(self):
        """The frame's arguments of :func:`somvq._kernels.cpu_masked_search.masked_search_rows`.

        ``[-2 W' | ||w'||^2]`` (float64, the norms compensated sums; and rounded to float32
        when the float32 product is allowed), the squares ``(W' o W')^T`` (D, K) whose
        missing part each row subtracts, and the bound's constants. With the product of
        inner size D + 1 and that subtraction, a score's error is within the stacked
        product's bound (the kernel module's docstring has the terms): ``kappa`` and
        ``kappa32`` are used unchanged.
        """
        from ._kernels.cpu_masked_search import frame_tables

        n_units, n_features = self.Wc.shape
        aug64 = np.empty((n_units, n_features + 1))
        squares = np.empty((n_features, n_units))
        frame_tables(np.ascontiguousarray(self.Wc.T), aug64, squares, np.empty(n_units))
        aug32 = aug64.astype(np.float32) if self.single else _ONE32
        squares32 = squares.astype(np.float32) if self.single else _ONE32
        centre = np.ascontiguousarray(self.centre, dtype=np.float64)
        return (
            np.ascontiguousarray(self.W64),
            centre,
            float(self.scale),
            aug64,
            aug32,
            squares,
            squares32,
            float(self.radius),
            self.single,
            float(self.kappa),
            float(self.kappa32),
        )

    def scores(self, X64: np.ndarray):
        """Masked scores (n, K), the rows' ``sum m x'^2``, their observed counts and the mask."""
        return self.scored(X64)[:4]

    def scored(self, X64: np.ndarray):
        """:meth:`scores` and the error constant ``kappa`` of the precision they were computed in."""
        mask = ~np.isnan(X64)
        D = self.n_features
        left = np.empty((X64.shape[0], 2 * D))
        left[:, :D] = mask
        xc = left[:, D:]
        np.subtract(X64, self.centre, out=xc)
        if self.scale != 1.0:
            xc *= self.scale
        xc[~mask] = 0.0
        x_norm2 = np.einsum("ij,ij->i", xc, xc)
        if self.single and x_norm2.size and 2.0**-100 <= x_norm2.max() <= 2.0**100:
            return left.astype(np.float32) @ self.stacked32, x_norm2, mask.sum(axis=1), mask, self.kappa32
        return left @ self.stacked, x_norm2, mask.sum(axis=1), mask, self.kappa


def masked_squared_distances(X: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """``D / n_obs(x) * sum_{j observed} (x_j - w_kj)^2``, float64, shape (n, K).

    One GEMM per block, in float64 in the codebook's reference frame (centre and scale
    from :func:`somvq.distances.reference_frame`, applied to data and codebook alike)::

        sum_j m_j (x_j - w_j)^2 = M (w^2)^T - 2 (M o x) w^T + sum_j m_j x_j^2

    (the two products as one GEMM of inner size 2 D). Rows without NaN give the dense
    squared distance (``n_obs = D``), to the expanded form's rounding.
    """
    X = np.asarray(X)
    frame = _MaskedFrame(codebook)
    n = X.shape[0]
    out = np.empty((n, frame.W64.shape[0]))
    for start in range(0, n, frame.block_rows):
        X64 = np.asarray(X[start : start + frame.block_rows], dtype=np.float64)
        block, x_norm2, n_obs, _ = frame.scores(X64)
        block += x_norm2[:, None]
        np.maximum(block, 0.0, out=block)
        block *= (frame.n_features / (frame.scale * frame.scale) / n_obs)[:, None]
        out[start : start + X64.shape[0]] = block
    return out


def masked_pair_distances(
    X64: np.ndarray, W64: np.ndarray, rows: np.ndarray, units: np.ndarray
) -> np.ndarray:
    """Masked squared distance of the pairs ``(X64[rows[i]], W64[units[i]])``, summed
    directly in float64 (rows without NaN: the plain squared distance, bit for bit)."""
    diff = X64[rows] - W64[units]
    observed = ~np.isnan(diff)
    diff = np.where(observed, diff, 0.0)
    return X64.shape[1] / observed.sum(axis=1) * np.einsum("ij,ij->i", diff, diff)


def masked_assign(X: np.ndarray, codebook: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BMU (int64, lowest index on ties) and masked squared distance (float64) of every row.

    The winner is the argmin of the direct float64 masked distances (lowest index on
    ties); the reported distance is always the direct one. Found per block of rows by one
    compiled call (:func:`somvq._kernels.cpu_masked_search.masked_search_rows`): the
    rows into the frame, one GEMM of inner size ``D + 1`` (the dense search's product)
    whose scores, less each row's missing part of ``||w'||^2``, are the masked scores of
    :class:`_MaskedFrame`; a row whose runner-up is within twice the frame's error bound
    of the best score is re-ranked among the units within that bound by direct float64
    distances (as the dense path re-ranks near ties). Blocks run on the CPU engine's
    block pool with a single-threaded BLAS (as :mod:`somvq._kernels.cpu_bmu` does).
    """
    from ._kernels.cpu_bmu import _pool, search_threads, single_threaded_blas

    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    X = np.ascontiguousarray(X)
    n = X.shape[0]
    # float32 data and codebook: the scores in float32 (their own error bound; the winner
    # and its distance are still settled in float64).
    frame = _MaskedFrame(codebook, single=X.dtype == np.float32 and np.asarray(codebook).dtype == np.float32)
    bmu = np.empty(n, dtype=np.int64)
    sq = np.empty(n)
    if n == 0:
        return bmu, sq
    search = frame.search_tables()
    rows = frame.search_rows
    threads = search_threads()
    # Calls of whole blocks (the results depend on the blocks only, never on the calls):
    # about _CALL_ROWS rows each, their number a multiple of the threads and the blocks
    # spread evenly, so that the calls' dispatch (~20 us each, under the GIL) stays small
    # and the threads finish together.
    n_blocks = -(-n // rows)
    n_calls = max(1, -(-n // _CALL_ROWS))
    if threads > 1:
        n_calls = -(-max(n_calls, threads) // threads) * threads
    n_calls = min(n_calls, n_blocks)
    bounds = [min(i * n_blocks // n_calls * rows, n) for i in range(n_calls + 1)]

    def call(i: int) -> None:
        scratch = _search_scratch(rows, frame.n_features, frame.W64.shape[0], frame.single)
        masked_search_rows(X, bounds[i], bounds[i + 1], rows, *search, *scratch, bmu, sq)

    from ._kernels.cpu_masked_search import masked_search_rows

    # BLAS single-threaded on every block, as the dense search: a one-block product on a
    # two-thread BLAS waited for its second thread (18-32 ms instead of ~1 ms on a busy
    # machine, digits 4x4), and the bits do not depend on the thread count. np.dot inside
    # Numba calls SciPy's BLAS: held at one thread too.
    with single_threaded_blas():
        if threads <= 1 or n_calls <= 1:
            for i in range(n_calls):
                call(i)
        else:
            list(_pool(threads).map(call, range(n_calls)))
    return bmu, sq


_scratch_local = threading.local()
_CALL_ROWS = 4096  # rows per call of masked_search_rows, about (masked_assign)


def _search_scratch(rows: int, n_features: int, n_units: int, single: bool):
    """Per-thread buffers of :func:`masked_search_rows`, reused between blocks and calls."""
    key = (rows, n_features, n_units, single)
    cached = getattr(_scratch_local, "buffers", None)
    if cached is None or cached[0] != key:
        small = (rows, n_features + 1) if single else (1, 1)
        wide = (rows, n_units) if single else (1, 1)
        buffers = (
            np.empty((rows, n_features + 1)),
            np.empty(small, dtype=np.float32),
            np.empty((rows, n_units)),
            np.empty(wide, dtype=np.float32),
            np.empty(rows),
            np.empty(2 * n_units),
            np.empty(2 * n_units if single else 1, dtype=np.float32),
            np.empty(n_features, dtype=np.int64),
        )
        cached = _scratch_local.buffers = (key, buffers)
    return cached[1]


@dataclass
class MaskedStatistics:
    """Per unit and per feature counts and sums over observed entries, and the error."""

    counts: np.ndarray  # (K, D) float64: observed entries of the rows won by unit k
    sums: np.ndarray  # (K, D) float64: their sum
    hits: np.ndarray  # (K,) float64: rows won by unit k
    sq_error: float  # sum over rows of the masked squared distance to the winner
    n_samples: int

    def __add__(self, other: MaskedStatistics) -> MaskedStatistics:
        return MaskedStatistics(
            self.counts + other.counts,
            self.sums + other.sums,
            self.hits + other.hits,
            self.sq_error + other.sq_error,
            self.n_samples + other.n_samples,
        )


def _masked_winners(X: np.ndarray, codebook: np.ndarray, layers=None) -> tuple[np.ndarray, np.ndarray]:
    """BMU and masked distance: :func:`masked_assign`, or a layered map's definition.

    ``layers``: a :class:`somvq.layers.ScaledLayers` (the rows and codebook in its scaled
    units) or None. Layered maps search the thresholded codebook and, with more than one
    layer, weigh each layer's observed entries by ``D_l / n_obs,l``
    (:func:`somvq.layers.layered_masked_assign`).
    """
    if layers is None:
        return masked_assign(X, codebook)
    from .layers import layered_masked_assign

    return layered_masked_assign(X, layers.search(codebook), layers.groups)


def masked_unit_statistics(X: np.ndarray, codebook: np.ndarray, layers=None) -> MaskedStatistics:
    """``n_kj = sum_{i: bmu(i)=k} m_ij``, ``s_kj = sum_{i: bmu(i)=k} m_ij x_ij`` (float64).

    One compiled pass over the rows (:func:`somvq._kernels.cpu_missing.masked_accumulate`)
    after :func:`masked_assign` (layered maps, ``layers``: after their masked search,
    :func:`_masked_winners`).
    """
    from ._kernels.cpu_missing import masked_accumulate

    n_units, n_features = codebook.shape
    X = np.ascontiguousarray(X)
    bmu, sq = _masked_winners(X, codebook, layers)
    counts = np.zeros((n_units, n_features))
    sums = np.zeros((n_units, n_features))
    hits = np.zeros(n_units)
    masked_accumulate(X, bmu, counts, sums, hits)
    return MaskedStatistics(counts, sums, hits, float(sq.sum()), X.shape[0])


def smooth_masked_statistics(op, counts: np.ndarray, sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``H n`` and ``H s`` for (K, D) counts and sums (the operator of the step, or None)."""
    from .algorithms import smooth_statistics

    if op is None:
        return counts, sums
    n_features = sums.shape[1]
    _, both = smooth_statistics(op, np.zeros(counts.shape[0]), np.hstack([sums, counts]))
    return np.ascontiguousarray(both[:, n_features:]), np.ascontiguousarray(both[:, :n_features])


def masked_batch_update(codebook: np.ndarray, counts: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """``w_kj <- s_kj / n_kj`` where ``n_kj > 0``; other entries keep ``w_kj``."""
    new = codebook.astype(np.float64, copy=True)
    hit = counts > 0
    new[hit] = sums[hit] / counts[hit]
    return new.astype(codebook.dtype, copy=False)


def masked_ema_update(
    ema_count, ema_sum, codebook, counts, sums, *, decay: float, eps: float, update: str = "all"
):
    """KSOM-EMA per feature: ``ema_count`` N, the statistics ``n``, ``s`` all (K, D).

    update="all": ``N <- decay N + (1 - decay) n``, Laplace smoothing per feature column
    (``N_kj <- (N_kj + eps) / (sum_k N_kj + K eps) * sum_k N_kj``), ``m <- decay m +
    (1 - decay) s``, ``w = m / N``; a column whose updated total ``sum_k N_kj`` is 0 (decay 0
    and no observed value of feature j in the batch) keeps its N, m and w. update="written":
    the EMA lines only where ``n_kj > 0``.
    A (K,) ``ema_count`` (a dense state) is broadcast to (K, D) first.
    """
    keep = 1.0 - decay
    ema_count = np.broadcast_to(
        np.asarray(ema_count, dtype=np.float64).reshape(counts.shape[0], -1), counts.shape
    )
    if update == "all":
        count = decay * ema_count + keep * counts
        total = count.sum(axis=0)
        count = (count + eps) / (total + count.shape[0] * eps) * total
        total_sum = decay * ema_sum + keep * sums
        # A column with no weight left (decay 0 and no observed value in this batch) has
        # nothing to average: it keeps N, m and w, as the batch update keeps w where n = 0.
        empty = total == 0
        if empty.any():
            count[:, empty] = ema_count[:, empty]
            total_sum[:, empty] = ema_sum[:, empty]
            with np.errstate(invalid="ignore", divide="ignore"):
                new = total_sum / count
            new[:, empty] = codebook[:, empty]
            return count, total_sum, new.astype(codebook.dtype, copy=False)
        return count, total_sum, (total_sum / count).astype(codebook.dtype, copy=False)
    if update == "written":
        written = counts > 0
        count = np.where(written, decay * ema_count + keep * counts, ema_count)
        total_sum = np.where(written, decay * ema_sum + keep * sums, ema_sum)
        new = np.where(written, total_sum / np.where(written, count, 1.0), codebook)
        return count, total_sum, new.astype(codebook.dtype, copy=False)
    raise ValueError(f"update={update!r} is not one of ('all', 'written').")


def check_observed_columns(values: np.ndarray, what: str) -> None:
    """Refuse NaN in what a data-driven choice (``what``: an initialisation, the automatic
    grid) computed from :func:`mean_filled` rows: there, a NaN is a column with no observed
    value at all. ``values`` is (D,) or (n, D)."""
    nan = np.isnan(values)
    if nan.any():
        columns = np.flatnonzero(nan.any(axis=0) if nan.ndim == 2 else nan)
        raise ValueError(
            f"Input X has no observed value in column(s) {columns.tolist()[:10]} (all NaN): "
            f"{what} has nothing to place the units by along them; remove the column(s), or "
            "give an init array and a grid shape."
        )


def mean_filled(X: np.ndarray) -> np.ndarray:
    """A copy of ``X`` with each NaN replaced by its column's mean over observed entries
    (NaN still in a column with none: the initialisation refuses it, naming the column).

    One copy of ``X`` in its own dtype and O(block) more: the means come from
    :func:`somvq._moments.column_moments` (in blocks of rows on large data) and the holes are
    filled block by block (the whole-array form took 5x the memory of float32 data and
    1.2 s on Fashion-MNIST with 10% holes).
    """
    from ._moments import column_means

    X = np.asarray(X)
    means = column_means(X, nan=True)
    out = np.array(X, copy=True)
    fill = means.astype(out.dtype)
    for _, block in _row_blocks(out):
        np.copyto(block, fill, where=np.isnan(block))
    return out


def masked_online_update_inplace(
    x: np.ndarray, codebook: np.ndarray, weights: np.ndarray, rate: float
) -> None:
    """Kohonen's rule on the observed features of ``x`` only: ``w_kj += rate h_k (x_j - w_kj)``."""
    observed = ~np.isnan(x)
    step = (rate * weights)[:, None]
    codebook[:, observed] += (step * (x[observed] - codebook[:, observed])).astype(codebook.dtype, copy=False)


def masked_batch_step(stats: MaskedStatistics, plan, state) -> float:
    """One batch-KSOM update of ``state`` from masked statistics of all rows; returns their error."""
    from .neighbourhoods import smoothing_operator

    op = smoothing_operator(plan.neighbourhood, plan.grid, state.n_steps)
    counts, sums = smooth_masked_statistics(op, stats.counts, stats.sums)
    state.codebook = masked_batch_update(state.codebook, counts, sums)
    state.n_steps += 1
    return stats.sq_error


def masked_ema_step(stats: MaskedStatistics, plan, state) -> float:
    """One KSOM-EMA update of ``state`` from the masked statistics of one mini-batch.

    ``state.ema_count`` becomes (K, D) (a (K,) count is broadcast first). Returns the
    batch's error.
    """
    from .neighbourhoods import smoothing_operator

    op = smoothing_operator(plan.neighbourhood, plan.grid, state.n_steps)
    counts, sums = smooth_masked_statistics(op, stats.counts, stats.sums)
    state.ema_count, state.ema_sum, state.codebook = masked_ema_update(
        state.ema_count,
        state.ema_sum,
        state.codebook,
        counts,
        sums,
        decay=plan.decay,
        eps=plan.eps,
        update=plan.update,
    )
    state.n_steps += 1
    return stats.sq_error


def masked_pass(X: np.ndarray, order: np.ndarray, plan, state) -> float:
    """One pass of ``plan.algorithm`` over ``X[order]`` with the masked definitions; updates ``state``.

    batch: one update from the masked statistics of all rows; minibatch: one KSOM-EMA
    update per batch (``state.ema_count`` becomes (K, D)); online: one update per row,
    compiled (:func:`somvq._kernels.cpu_missing.masked_online_pass`, whose step is
    :func:`masked_online_update_inplace`). Returns the summed masked
    squared distance of the rows to their winners (online: measured after the pass).
    """
    algorithm = plan.algorithm
    layers = getattr(plan, "layers", None)  # layered maps: somvq.layers.ScaledLayers
    if algorithm == "batch":
        return masked_batch_step(masked_unit_statistics(X, state.codebook, layers), plan, state)
    order = np.asarray(order, dtype=np.intp)
    if algorithm == "minibatch":
        from ._kernels.cpu_bmu import single_threaded_blas

        sq_error = 0.0
        with single_threaded_blas():  # set once for the pass, not once per batch
            for start in range(0, order.shape[0], plan.batch_size):
                batch = X[order[start : start + plan.batch_size]]
                sq_error += masked_ema_step(
                    masked_unit_statistics(batch, state.codebook, layers), plan, state
                )
        return sq_error
    if layers is not None and not (layers.plain_masked and not layers.spec.has_tanimoto):
        from .layers import layered_online_pass

        return layered_online_pass(X, order, plan, state)
    # online: the compiled loop (somvq/_kernels/cpu_missing.py), sample by sample
    from ._kernels.cpu_missing import masked_online_pass
    from .algorithms import online_kernel_arguments, run_online_scaled

    codebook = np.array(state.codebook, order="C", copy=True)
    args = online_kernel_arguments(
        plan.grid.distances, plan.neighbourhood, plan.learning_rate, state.unit_counts, state.n_steps
    )
    run_online_scaled(
        lambda Xs, Ws, _: masked_online_pass(np.ascontiguousarray(Xs), Ws, order.astype(np.int64), *args),
        X,
        codebook,
    )
    state.codebook = codebook
    state.n_steps += order.shape[0]
    return float(masked_assign(X, codebook)[1].sum())
