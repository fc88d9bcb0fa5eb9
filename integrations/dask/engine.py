"""The dask engine: batch and mini-batch passes over the row chunks of a dask array.

One step, batch or mini-batch::

    client                              workers (one task per row chunk)
    codebook W (K x D) ----broadcast--> c_i = E_i^T 1, S_i = E_i^T X_i   (unit_statistics)
                        <--tree sum---- (K + K*D + 2 numbers per chunk)
    n = H c, s = H S; W <- update(W, n, s)   (batch_step / ema_step: the CPU definitions)

What runs on the workers is in :mod:`.tasks`; the update on the client is the core's
(:func:`somvq.engines.base.batch_step`, :func:`~somvq.engines.base.ema_step`), so a fit
over chunks equals the in-memory fit (docs/distributed.md states the equivalences).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import dask
import dask.array as da
import numpy as np

from somvq import missing
from somvq._validation import in_map_dtype
from somvq.algorithms import UnitStatistics
from somvq.engines.base import Engine, batch_step, ema_step
from somvq.missing import masked_batch_step, masked_ema_step
from somvq.parameters import TrainingPlan
from somvq.state import FittedState

from . import tasks

__all__ = ["DaskEngine", "DaskData", "validate_dask", "row_chunks", "row_starts", "tree_reduce"]

#: Partial results combined per reduction task: a tree of depth log_8(chunks).
REDUCTION_FAN_IN = 8


class DaskData:
    """A validated dask array and its non-empty row chunks (``(chunk index, delayed block)``)."""

    #: missing="ignore": whether any entry is not finite (NaN, or inf that the masked path
    #: reports by row); found by one scan per call (:meth:`DaskEngine.prepare`).
    has_missing = False

    def __init__(self, X: da.Array) -> None:
        self.X = X
        self.chunks = row_chunks(X)
        self.shape = X.shape
        self.dtype = X.dtype


class DaskEngine(Engine):
    """Training on a dask array: the statistics of each step are computed chunk by chunk.

    Batch KSOM: one update per pass from the statistics of every chunk. Mini-batch KSOM:
    one update per non-empty row chunk, in row order, or (``fit`` with the estimator's
    ``shuffle_chunks``) in a permutation of the chunks drawn every epoch. Online KSOM and
    ``backend="cuda"`` are not available (a clear error, never a silent CPU fit).
    """

    name = "dask"

    @staticmethod
    def accepts(X) -> bool:
        return isinstance(X, da.Array)

    def __init__(self, estimator) -> None:
        if estimator.backend != "cpu":
            raise ValueError(
                f"backend={estimator.backend!r} cannot train on a dask array: the dask engine "
                "computes the chunk statistics with the CPU kernels of the dask workers. Use "
                "backend='cpu' with a dask array, or fit a KSOM(backend='cuda') on an "
                "in-memory array (X.compute())."
            )
        super().__init__(estimator)

    def prepare(self, X, *, reset, dtype=None) -> DaskData:
        X = validate_dask(self.estimator, X, reset=reset)
        if dtype is not None and X.dtype != dtype:
            # chunk by chunk, as KSOM casts: rows beyond a float32 map are refused by value
            X = X.map_blocks(in_map_dtype, dtype, dtype=dtype)
        if reset:
            self.estimator.n_features_in_ = X.shape[1]
            if hasattr(self.estimator, "feature_names_in_"):
                del self.estimator.feature_names_in_
        data = DaskData(X)
        if self._ignore:
            # As the in-memory engine checks np.isnan(X).any() once per call: one cheap
            # reduction over the chunks (a bool per chunk comes back), so data without NaN
            # runs the dense path, bit for bit as missing="error". inf also routes to the
            # masked path, whose chunk check names the rows.
            data.has_missing = bool((~da.isfinite(X)).any().compute())
        return data

    def scale_columns(self, data: DaskData, scale: np.ndarray) -> DaskData:
        """Layered maps: the columns scaled lazily, chunk by chunk (NaN stays where it was)."""
        from somvq.layers import working_dtype

        dtype = working_dtype(data.X, scale)  # float64 for float32 data: exact winners
        scaled = DaskData(data.X.astype(dtype) * scale.astype(dtype))
        scaled.has_missing = data.has_missing
        return scaled

    def check_options(self) -> None:
        if self.estimator.algorithm == "online":
            raise ValueError(
                "algorithm='online' is not available on dask arrays: online KSOM updates the "
                "codebook after every row, which cannot be spread over chunks. Use "
                "algorithm='batch' or 'minibatch', or fit a KSOM on X.compute()."
            )

    def memory_shape(self, data: DaskData) -> tuple[int, int]:
        """The client holds no rows (the workers hold one chunk each): only the state counts."""
        return 0, int(data.shape[1])

    def init_rows(self, data: DaskData):
        """KSOM's init, with the data statistics it needs computed by dask.

        ``missing="ignore"``: the data with each NaN replaced by its column's mean over the
        observed entries (as the in-memory engine initialises), lazily.
        """
        init = self.estimator.init
        if isinstance(init, str) and init == "pca":
            return _pca_surrogate(self._init_data(data), lambda: self._check_chunks(data))
        return _LazyRows(self._init_data(data), lambda: self._check_chunks(data))

    def grid_rows(self, data: DaskData):
        """``grid="auto"``'s rows: the PCA surrogate (X's mean and covariance), whatever the init."""
        return _pca_surrogate(self._init_data(data), lambda: self._check_chunks(data))

    def _init_data(self, data: DaskData) -> da.Array:
        """The rows the init statistics read: no empty chunk (dask's std of 5+ chunks with
        an empty one is NaN); with missing="ignore", each NaN its column's observed mean."""
        X = _non_empty_chunks(data.X)
        if self._ignore and data.has_missing:
            means = da.nanmean(X.astype(np.float64), axis=0).compute()
            X = da.where(da.isnan(X), means.astype(X.dtype), X)
        return X

    def _check_chunks(self, data: DaskData) -> None:
        """The chunk tasks' own checks, on every chunk in turn: run when the init's
        statistics came out non-finite, so that the error names the chunk and the rows
        (NaN or inf with missing="error"; inf, empty rows with missing="ignore")."""
        starts = row_starts(data.X)
        for index, block in data.chunks:
            rows = np.asarray(block.compute())
            if self._ignore:
                missing.check_missing(rows, 1.0, row_offset=starts[index], where=tasks.chunk_where(index))
            else:
                tasks.check_chunk(rows, index)

    @property
    def _ignore(self) -> bool:
        return getattr(self.estimator, "missing", "error") == "ignore"

    def steps_per_pass(self, data: DaskData) -> int:
        return len(data.chunks) if self.estimator.algorithm == "minibatch" else 1

    def epoch_order(self, rng: np.random.Generator, data: DaskData) -> np.ndarray:
        if self.estimator.algorithm == "minibatch" and self.estimator.shuffle_chunks:
            return rng.permutation(len(data.chunks))
        return np.arange(len(data.chunks))

    def call_order(self, data: DaskData) -> np.ndarray:
        return np.arange(len(data.chunks))

    def run_pass(self, data: DaskData, order: np.ndarray, plan: TrainingPlan, state: FittedState) -> float:
        self._layers = plan.layers  # layered maps: labels read it
        if self._ignore and (data.has_missing or np.ndim(state.ema_count) == 2):
            # missing="ignore" on data with NaN (or a (K, D) EMA count), as the in-memory
            # engine decides: every chunk through the masked definitions.
            max_missing = float(self.estimator.max_missing)
            layers = plan.layers  # layered maps: each chunk through the per-layer rule
            if plan.algorithm == "batch":
                return masked_batch_step(
                    reduced_masked_statistics(data, data.chunks, state.codebook, max_missing, layers),
                    plan,
                    state,
                )
            sq_error = 0.0
            for position in order:
                stats = reduced_masked_statistics(
                    data, [data.chunks[position]], state.codebook, max_missing, layers
                )
                sq_error += masked_ema_step(stats, plan, state)
            return sq_error
        # Layered maps with tanimoto layers search the thresholded codebook (plan.search).
        search = (lambda codebook: codebook) if plan.search is None else plan.search
        if plan.algorithm == "batch":
            return batch_step(reduced_statistics(data.chunks, search(state.codebook)), plan, state)
        sq_error = 0.0
        for position in order:
            stats = reduced_statistics([data.chunks[position]], search(state.codebook))
            sq_error += ema_step(stats, plan, state)
        return sq_error

    def labels(self, data: DaskData, state: FittedState) -> da.Array:
        """BMU of every row, lazily (a dask array).

        Layered maps: ``data`` is the scaled working copy and ``state.codebook`` its search
        codebook, so the rows are labelled by a plain (unlayered) model of that state.
        """
        layers = getattr(self, "_layers", None)
        if layers is not None:
            codebook = dask.delayed(np.ascontiguousarray(state.codebook), pure=True, traverse=False)
            return data.X.map_blocks(
                tasks.layered_labels_block,
                codebook,
                layers.groups,
                drop_axis=1,
                dtype=np.int64,
                meta=np.empty((0,), np.int64),
            )
        return predict_lazily(data.X, self.estimator._as_ksom(state.copy()))


# ---------------------------------------------------------------------- validation
def validate_dask(estimator, X: da.Array, *, reset: bool) -> da.Array:
    """Shape, dtype and feature-count checks of a dask array, without reading it.

    NaN/inf are found by the chunk tasks (each checks its block), so validation does
    not cost a pass over the data.
    """
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D dask array, got {X.ndim}D with shape {X.shape}.")
    if any(np.isnan(size) for size in X.chunks[0]):
        X = X.compute_chunk_sizes()  # rows per chunk are needed for counts and order
    n_samples, n_features = X.shape
    if n_samples < 1 or n_features < 1:
        raise ValueError(f"Found array with shape {X.shape}; at least 1 sample and 1 feature are required.")
    if not X.dtype.isnative:  # big-endian float32 stays float32, as in memory
        X = X.astype(X.dtype.newbyteorder("="))
    if X.dtype not in (np.float32, np.float64):
        if X.dtype.kind not in "biuf":
            raise ValueError(f"dtype={X.dtype} is not numeric; X must hold numbers.")
        X = X.astype(np.float64)
    if not reset and n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})  # a row chunk must hold whole rows
    return X


# ---------------------------------------------------------------------- chunks
def row_chunks(X: da.Array) -> list[tuple[int, object]]:
    """``(chunk index, delayed block)`` of every non-empty row chunk, in row order."""
    blocks = X.to_delayed().ravel()
    return [(index, block) for index, (block, rows) in enumerate(zip(blocks, X.chunks[0])) if rows > 0]


def row_starts(X: da.Array) -> list[int]:
    """The first row (in the whole array) of every row chunk, by chunk index: what a chunk
    task adds to its row numbers so that its errors name the rows of ``X``."""
    return [0, *itertools.accumulate(int(rows) for rows in X.chunks[0][:-1])]


def tree_reduce(parts: list, combine, fan_in: int = REDUCTION_FAN_IN):
    """Combine delayed partial results in a tree of fixed shape (same bits on any cluster)."""
    while len(parts) > 1:
        parts = [
            dask.delayed(combine, pure=True)(*parts[start : start + fan_in])
            for start in range(0, len(parts), fan_in)
        ]
    return parts[0]


def reduced_statistics(chunks: list, codebook: np.ndarray) -> UnitStatistics:
    """Unit statistics of the given chunks against ``codebook``, summed over the chunks.

    The codebook becomes one task that every chunk task depends on: the scheduler sends it
    to each worker once (K x D), and only K + K x D numbers per chunk come back.
    """
    shared_codebook = dask.delayed(codebook, pure=True, traverse=False)
    parts = [
        dask.delayed(tasks.chunk_statistics, pure=True)(block, shared_codebook, index)
        for index, block in chunks
    ]
    return dask.compute(tree_reduce(parts, tasks.sum_statistics))[0]


def reduced_masked_statistics(
    data: DaskData, chunks: list, codebook: np.ndarray, max_missing: float, layers=None
):
    """:func:`reduced_statistics` of ``KSOM(missing="ignore")``: masked, per unit and feature.

    ``layers``: a layered map's :class:`somvq.layers.ScaledLayers` (per-layer checks and
    distance in each chunk), or None.
    """
    starts = row_starts(data.X)
    shared_codebook = dask.delayed(codebook, pure=True, traverse=False)
    parts = [
        dask.delayed(tasks.chunk_masked_statistics, pure=True)(
            block, shared_codebook, index, starts[index], max_missing, layers
        )
        for index, block in chunks
    ]
    return dask.compute(tree_reduce(parts, tasks.sum_statistics))[0]


def inference_arguments(X: da.Array, model) -> tuple[object, object]:
    """The fitted in-memory ``model`` and :func:`row_starts` of ``X``, each one small task
    that every chunk task of an inference depends on (sent once per worker, not per chunk)."""
    return (
        dask.delayed(model, pure=False, traverse=False),
        dask.delayed(row_starts(X), pure=True, traverse=False),
    )


def predict_lazily(X: da.Array, model) -> da.Array:
    """BMU index of each row of ``X`` under the fitted in-memory ``model``, as a dask array."""
    return X.map_blocks(
        tasks.predict_block,
        *inference_arguments(X, model),
        drop_axis=1,
        dtype=np.int64,
        meta=np.empty((0,), np.int64),
    )


# ---------------------------------------------------------------------- initialisation
class _LazyRows:
    """Stands for X in ``somvq.initialisation.initial_codebook`` on a dask array.

    It has X's shape and dtype; the per-feature mean and standard deviation (init
    "random") are computed by dask, and indexing (init "sample") gathers just those rows.
    """

    def __init__(self, X: da.Array, check: Callable[[], None]):
        self._X = X
        self._check = check  # raises the chunk's own error for non-finite data
        self.shape = X.shape
        self.dtype = X.dtype

    def mean(self, axis=None, dtype=None) -> np.ndarray:
        return self._finite(self._X.mean(axis=axis, dtype=dtype).compute())

    def std(self, axis=None, dtype=None) -> np.ndarray:
        return self._finite(self._X.std(axis=axis, dtype=dtype).compute())

    def _finite(self, value: np.ndarray) -> np.ndarray:
        if not np.all(np.isfinite(value)):
            self._check()
        return value

    def __getitem__(self, index) -> np.ndarray:
        return self._X[index].compute()


def _non_empty_chunks(X: da.Array) -> da.Array:
    """``X`` without its row chunks of 0 rows (the same rows)."""
    if all(rows > 0 for rows in X.chunks[0]):
        return X
    return da.concatenate([X.blocks[i] for i, rows in enumerate(X.chunks[0]) if rows > 0], axis=0)


def _pca_surrogate(X: da.Array, check: Callable[[], None]) -> np.ndarray:
    """2D rows with the mean and covariance of ``X``: its PCA init is that of ``X``.

    The core's PCA init takes the principal axes and sqrt(eigenvalues) of the sample
    covariance of the rows it is given. Rows ``mean +- c sqrt(lambda_j) v_j`` with
    ``c^2 = (2D - 1) / 2`` have exactly ``X``'s mean and covariance, so the core computes
    the same codebook from D x D statistics gathered by chunks instead of the whole of X.
    """
    if X.shape[0] < 2:
        return X.compute()  # the core raises its own error for n_samples < 2
    Xd = X.astype(np.float64)
    mean = Xd.mean(axis=0).compute()
    if not np.all(np.isfinite(mean)):
        check()  # the chunk's own error (NaN or inf), not eigh's "did not converge"
    centred = Xd - mean
    covariance = (centred.T @ centred).compute() / (X.shape[0] - 1)
    if not np.all(np.isfinite(covariance)):
        check()
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    n_features = X.shape[1]
    scale = np.sqrt((2 * n_features - 1) / 2.0)
    offsets = scale * np.sqrt(np.maximum(eigenvalues, 0.0))[:, None] * eigenvectors.T
    # in float64: float32 rows at 1e4 put a relative 3e-4 into the covariance and turned
    # the axes (the codebook takes the data's dtype in KSOM._start, as the core's does)
    return mean + np.concatenate([offsets, -offsets])
