"""DaskKSOM: batch and mini-batch KSOM over dask arrays, on one machine or a cluster.

The estimator layer only: validation, the step loop on the client, the fitted state. What
runs on the workers is in :mod:`.tasks`; the arithmetic is the core's
(:mod:`somvq.algorithms`), called exactly as :class:`~somvq.KSOM` calls it, so a fit over
chunks equals the in-memory fit (docs/distributed.md states the equivalences).

One step, batch or mini-batch::

    client                              workers (one task per row chunk)
    codebook W (K x D) ----broadcast--> c_i = E_i^T 1, S_i = E_i^T X_i   (unit_statistics)
                        <--tree sum---- (K + K*D + 2 numbers per chunk)
    n = H c, s = H S; W <- update(W, n, s)   (smooth_statistics, batch_update / ema_update)
"""

from __future__ import annotations

import numpy as np

import dask
import dask.array as da
from somvq import algorithms
from somvq._sklearn import _fit_context, check_is_fitted
from somvq.estimator import FITTED_STATE, KSOM
from somvq.grids import Grid

from . import tasks

__all__ = ["DaskKSOM"]

#: Partial results combined per reduction task: a tree of depth log_8(chunks).
REDUCTION_FAN_IN = 8


class DaskKSOM(KSOM):
    """KSOM over dask arrays: batch and mini-batch KSOM whose passes run chunk by chunk.

    The same parameters, attributes and methods as :class:`somvq.KSOM`, plus
    ``shuffle_chunks``. Methods accept dask arrays (and NumPy arrays, for which the
    estimator behaves exactly as :class:`~somvq.KSOM`). Work runs on dask's active
    scheduler: a ``dask.distributed.Client`` when one exists, the local threads otherwise.

    ``algorithm="batch"``
        One update per epoch from the statistics of every chunk, reduced in a tree: equal
        (to float rounding of the summation order) to ``KSOM(...).fit(X.compute())``.
    ``algorithm="minibatch"``
        Each non-empty row chunk is one mini-batch (``batch_size`` is not used on dask
        arrays: rechunk ``X`` to choose the batch size, e.g. ``X.rechunk({0: 4096})``).
        ``fit`` visits the chunks once per epoch, in row order, or in a permutation of the
        chunks drawn from ``random_state`` every epoch when ``shuffle_chunks=True``;
        ``partial_fit`` visits them in row order. This equals ``KSOM.partial_fit`` fed
        the same chunks in the same order.
    ``algorithm="online"``
        Not available on dask arrays (one update per row cannot be spread over chunks).

    Parameters
    ----------
    grid, grid_dim, topology, periodic, neighbourhood, radius, radius_final,
    radius_schedule, shrink, learning_rate, learning_rate_final, learning_rate_schedule,
    algorithm, n_epochs, batch_size, decay, init_count, eps, update, init, backend,
    random_state, verbose
        As in :class:`somvq.KSOM`. ``init="pca"`` on a dask array computes the mean and
        the D x D covariance by chunks (two passes); ``"random"`` the mean and standard
        deviation; ``"sample"`` gathers K rows.
    shuffle_chunks : bool, default=True
        Mini-batch ``fit`` on a dask array: visit the row chunks in a fresh seeded
        permutation every epoch (the chunk-level analogue of KSOM's shuffled rows), or in
        row order (``False``).

    Attributes
    ----------
    codebook_, cluster_centers_, grid_, n_steps_, n_iter_, ema_count_, ema_sum_,
    unit_counts_, n_features_in_
        As in :class:`somvq.KSOM`; all small (K or K x D) NumPy arrays.
    labels_ : dask array of shape (n_samples,)
        After ``fit`` on a dask array: the BMU of every training row, lazily (a NumPy
        array after ``fit`` on a NumPy array).

    Examples
    --------
    >>> import dask.array as da                                          # doctest: +SKIP
    >>> from somvq.integrations.dask import DaskKSOM                     # doctest: +SKIP
    >>> X = da.random.default_rng(0).standard_normal((10**6, 16), chunks=(10**5, 16))  # doctest: +SKIP
    >>> som = DaskKSOM(grid=(8, 8), random_state=0).fit(X)              # doctest: +SKIP
    >>> som.predict(X)                                                   # doctest: +SKIP
    dask.array<predict_block, shape=(1000000,), dtype=int64, chunksize=(100000,), ...>
    >>> somvq.save(som.to_ksom(), "map.somvq.npz")                       # doctest: +SKIP
    """

    _parameter_constraints: dict = {**KSOM._parameter_constraints, "shuffle_chunks": ["boolean"]}

    def __init__(
        self,
        grid=(16, 32),
        *,
        grid_dim=2,
        topology="rectangular",
        periodic=False,
        neighbourhood="gaussian",
        radius=None,
        radius_final=None,
        radius_schedule=None,
        shrink=0.1,
        learning_rate=0.5,
        learning_rate_final=0.01,
        learning_rate_schedule=None,
        algorithm="batch",
        n_epochs=10,
        batch_size=256,
        decay=0.99,
        init_count=1.0,
        eps=1e-5,
        update="all",
        init="random",
        backend="cpu",
        random_state=None,
        verbose=False,
        shuffle_chunks=True,
    ):
        super().__init__(
            grid,
            grid_dim=grid_dim,
            topology=topology,
            periodic=periodic,
            neighbourhood=neighbourhood,
            radius=radius,
            radius_final=radius_final,
            radius_schedule=radius_schedule,
            shrink=shrink,
            learning_rate=learning_rate,
            learning_rate_final=learning_rate_final,
            learning_rate_schedule=learning_rate_schedule,
            algorithm=algorithm,
            n_epochs=n_epochs,
            batch_size=batch_size,
            decay=decay,
            init_count=init_count,
            eps=eps,
            update=update,
            init=init,
            backend=backend,
            random_state=random_state,
            verbose=verbose,
        )
        self.shuffle_chunks = shuffle_chunks

    # ------------------------------------------------------------------ conversion
    def to_ksom(self) -> KSOM:
        """A plain :class:`~somvq.KSOM` with the same parameters and learned state.

        Use it to save (``somvq.save(som.to_ksom(), path)``) or to work in memory. A lazy
        ``labels_`` (dask array) is not carried over.
        """
        check_is_fitted(self, "codebook_")
        params = self.get_params(deep=False)
        params.pop("shuffle_chunks")
        model = KSOM(**params)
        _copy_state(self, model)
        return model

    @classmethod
    def from_ksom(cls, model: KSOM, *, shuffle_chunks: bool = True) -> "DaskKSOM":
        """A DaskKSOM continuing from a fitted :class:`~somvq.KSOM` (e.g. ``somvq.load``)."""
        check_is_fitted(model, "codebook_")
        params = {k: v for k, v in model.get_params(deep=False).items() if k != "shuffle_chunks"}
        estimator = cls(**params, shuffle_chunks=shuffle_chunks)
        _copy_state(model, estimator)
        return estimator

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, callback=None):
        """Train from a fresh initial codebook for ``n_epochs`` passes over the chunks of ``X``.

        Parameters
        ----------
        X : dask array or array-like of shape (n_samples, n_features)
            A dask array is trained on chunk by chunk; anything else as by ``KSOM.fit``.
        y : ignored
        callback : callable, optional
            ``callback(epoch, n_epochs, mse, codebook)`` after every epoch, as in
            ``KSOM.fit``; an exception raised by it abandons the fit and leaves the
            estimator as it was.

        Returns
        -------
        self
        """
        if not _is_dask_array(X):
            return super().fit(X, y, callback=callback)
        X = self._validate_dask(X, reset=True)
        self._check_dask_options()
        grid = self._make_grid()
        chunks = _row_chunks(X)
        state = self._initial_state_from_dask(X, grid)
        state["_horizon"] = float(max(self.n_epochs * self._steps_per_dask_pass(chunks) - 1, 1))
        rng = state.pop("rng")
        n_samples = X.shape[0]
        for epoch in range(self.n_epochs):
            if self.algorithm == "minibatch" and self.shuffle_chunks:
                order = rng.permutation(len(chunks))
            else:
                order = np.arange(len(chunks))
            sq_error = self._dask_pass(chunks, order, grid, state)
            state["n_iter_"] = epoch + 1
            self._report(epoch + 1, self.n_epochs, sq_error / n_samples, state["n_steps_"])
            if callback is not None:
                callback(epoch + 1, self.n_epochs, sq_error / n_samples, state["codebook_"])
        state["_rng_state"] = rng.bit_generator.state
        state["n_features_in_"] = X.shape[1]
        self._commit(state)
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.labels_ = self.predict(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """One pass over the chunks of ``X``, continuing the step counter.

        ``batch``: one update from all chunks; ``minibatch``: one update per non-empty
        chunk, in row order. The first call initialises the codebook from ``X``; the
        schedules' horizon is ``n_epochs`` passes of the first call's size (as in KSOM).
        NumPy input is handled by ``KSOM.partial_fit``.

        Returns
        -------
        self
        """
        if not _is_dask_array(X):
            return super().partial_fit(X, y)
        first = not hasattr(self, "codebook_")
        X = self._validate_dask(X, reset=first)
        self._check_dask_options()
        grid = self._make_grid()
        chunks = _row_chunks(X)
        if first:
            state = self._initial_state_from_dask(X, grid)
            state["_horizon"] = float(max(self.n_epochs * self._steps_per_dask_pass(chunks) - 1, 1))
            state["_rng_state"] = state.pop("rng").bit_generator.state
            state["n_features_in_"] = X.shape[1]
        else:
            if grid != self.grid_:
                raise ValueError(
                    f"the grid changed since the first partial_fit: fitted {self.grid_!r}, "
                    f"now {grid!r}; call fit to start again."
                )
            state = {name: _copy(getattr(self, name)) for name in FITTED_STATE if hasattr(self, name)}
            if X.dtype != state["codebook_"].dtype:
                X = X.astype(state["codebook_"].dtype)
                chunks = _row_chunks(X)
        sq_error = self._dask_pass(chunks, np.arange(len(chunks)), grid, state)
        state["n_iter_"] = state.get("n_iter_", 0) + 1
        self._report(state["n_iter_"], None, sq_error / X.shape[0], state["n_steps_"])
        self._commit(state)
        if first and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def _check_dask_options(self) -> None:
        if self.algorithm == "online":
            raise ValueError(
                "algorithm='online' is not available on dask arrays: online KSOM updates the "
                "codebook after every row, which cannot be spread over chunks. Use "
                "algorithm='batch' or 'minibatch', or fit a KSOM on X.compute()."
            )
        self._check_options()

    def _steps_per_dask_pass(self, chunks: list) -> int:
        return len(chunks) if self.algorithm == "minibatch" else 1

    def _initial_state_from_dask(self, X: da.Array, grid: Grid) -> dict:
        """KSOM's initial state, with the data statistics the init needs computed by dask."""
        if isinstance(self.init, str) and self.init == "pca":
            rows = _pca_surrogate(X)
        else:
            rows = _LazyRows(X)
        return self._initial_state(rows, grid)

    def _dask_pass(self, chunks: list, order: np.ndarray, grid: Grid, state: dict) -> float:
        """One pass over ``chunks`` (``order`` for mini-batch); updates ``state`` like
        ``KSOM._one_pass``. Returns the summed squared distance to the winners."""
        neighbourhood = self._resolve_neighbourhood(grid, state["_horizon"])
        if self.algorithm == "batch":
            stats = _reduced_statistics(chunks, state["codebook_"])
            H = self._smoothing(neighbourhood, grid, state["n_steps_"])
            counts, sums = algorithms.smooth_statistics(H, stats.counts, stats.sums)
            state["codebook_"] = algorithms.batch_update(state["codebook_"], counts, sums)
            state["n_steps_"] += 1
            return stats.sq_error
        sq_error = 0.0
        for position in order:
            stats = _reduced_statistics([chunks[position]], state["codebook_"])
            H = self._smoothing(neighbourhood, grid, state["n_steps_"])
            counts, sums = algorithms.smooth_statistics(H, stats.counts, stats.sums)
            state["ema_count_"], state["ema_sum_"], state["codebook_"] = algorithms.ema_update(
                state["ema_count_"],
                state["ema_sum_"],
                state["codebook_"],
                counts,
                sums,
                decay=float(self.decay),
                eps=float(self.eps),
                update=self.update,
            )
            state["n_steps_"] += 1
            sq_error += stats.sq_error
        return sq_error

    # ------------------------------------------------------------------ validation
    def _validate_dask(self, X: da.Array, *, reset: bool) -> da.Array:
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
            raise ValueError(
                f"Found array with shape {X.shape}; at least 1 sample and 1 feature are required."
            )
        if X.dtype not in (np.float32, np.float64):
            if X.dtype.kind not in "biuf":
                raise ValueError(f"dtype={X.dtype} is not numeric; X must hold numbers.")
            X = X.astype(np.float64)
        if not reset and n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        if X.numblocks[1] > 1:
            X = X.rechunk({1: -1})  # a row chunk must hold whole rows
        return X

    # ------------------------------------------------------------------ inference
    def _inference_input(self, X: da.Array) -> tuple[da.Array, object]:
        check_is_fitted(self, "codebook_")
        X = self._validate_dask(X, reset=False)
        # The fitted model travels once per worker as one small task, not once per chunk.
        return X, dask.delayed(self.to_ksom(), pure=False, traverse=False)

    def predict(self, X):
        """BMU index of each row (int64); a dask array for dask input."""
        if not _is_dask_array(X):
            return super().predict(X)
        X, model = self._inference_input(X)
        return X.map_blocks(
            tasks.predict_block, model, drop_axis=1, dtype=np.int64, meta=np.empty((0,), np.int64)
        )

    def transform(self, X):
        """Distances of each row to every unit, (n_samples, K); a dask array for dask input."""
        if not _is_dask_array(X):
            return super().transform(X)
        X, model = self._inference_input(X)
        dtype = self.codebook_.dtype
        return X.map_blocks(
            tasks.transform_block,
            model,
            chunks=(X.chunks[0], (self.codebook_.shape[0],)),
            dtype=dtype,
            meta=np.empty((0, 0), dtype),
        )

    def bmu_coordinates(self, X):
        """Grid position of each row's BMU; a dask array for dask input."""
        if not _is_dask_array(X):
            return super().bmu_coordinates(X)
        X, model = self._inference_input(X)
        dtype = np.asarray(self.grid_.indices).dtype
        return X.map_blocks(
            tasks.bmu_coordinates_block,
            model,
            chunks=(X.chunks[0], (self.grid_.ndim,)),
            dtype=dtype,
            meta=np.empty((0, 0), dtype),
        )

    def quantization_error(self, X, *, squared: bool = False) -> float:
        """Mean distance of each row to its BMU; computed by chunks for dask input."""
        if not _is_dask_array(X):
            return super().quantization_error(X, squared=squared)
        X, model = self._inference_input(X)
        parts = [
            dask.delayed(tasks.chunk_quantization_error, pure=True)(block, model, squared)
            for _, block in _row_chunks(X)
        ]
        n_rows, total = dask.compute(_tree_reduce(parts, tasks.sum_weighted))[0]
        return float(total / n_rows)

    def topographic_error(self, X) -> float:
        """Fraction of rows whose two best units are not grid neighbours (by chunks for dask)."""
        if not _is_dask_array(X):
            return super().topographic_error(X)
        X, model = self._inference_input(X)
        parts = [
            dask.delayed(tasks.chunk_topographic_error, pure=True)(block, model)
            for _, block in _row_chunks(X)
        ]
        n_rows, total = dask.compute(_tree_reduce(parts, tasks.sum_weighted))[0]
        return float(total / n_rows)


# ---------------------------------------------------------------------- helpers
def _is_dask_array(X) -> bool:
    return isinstance(X, da.Array)


def _row_chunks(X: da.Array) -> list[tuple[int, object]]:
    """``(chunk index, delayed block)`` of every non-empty row chunk, in row order."""
    blocks = X.to_delayed().ravel()
    return [(index, block) for index, (block, rows) in enumerate(zip(blocks, X.chunks[0])) if rows > 0]


def _tree_reduce(parts: list, combine, fan_in: int = REDUCTION_FAN_IN):
    """Combine delayed partial results in a tree of fixed shape (same bits on any cluster)."""
    while len(parts) > 1:
        parts = [
            dask.delayed(combine, pure=True)(*parts[start : start + fan_in])
            for start in range(0, len(parts), fan_in)
        ]
    return parts[0]


def _reduced_statistics(chunks: list, codebook: np.ndarray) -> algorithms.UnitStatistics:
    """Unit statistics of the given chunks against ``codebook``, summed over the chunks.

    The codebook becomes one task that every chunk task depends on: the scheduler sends it
    to each worker once (K x D), and only K + K x D numbers per chunk come back.
    """
    shared_codebook = dask.delayed(codebook, pure=True, traverse=False)
    parts = [
        dask.delayed(tasks.chunk_statistics, pure=True)(block, shared_codebook, index)
        for index, block in chunks
    ]
    return dask.compute(_tree_reduce(parts, tasks.sum_statistics))[0]


class _LazyRows:
    """Stands for X in ``somvq.initialisation.initial_codebook`` on a dask array.

    It has X's shape and dtype; the per-feature mean and standard deviation (init
    "random") are computed by dask, and indexing (init "sample") gathers just those rows.
    """

    def __init__(self, X: da.Array):
        self._X = X
        self.shape = X.shape
        self.dtype = X.dtype

    def mean(self, axis=None, dtype=None) -> np.ndarray:
        return self._X.mean(axis=axis, dtype=dtype).compute()

    def std(self, axis=None, dtype=None) -> np.ndarray:
        return self._X.std(axis=axis, dtype=dtype).compute()

    def __getitem__(self, index) -> np.ndarray:
        return self._X[index].compute()


def _pca_surrogate(X: da.Array) -> np.ndarray:
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
    centred = Xd - mean
    covariance = (centred.T @ centred).compute() / (X.shape[0] - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    n_features = X.shape[1]
    scale = np.sqrt((2 * n_features - 1) / 2.0)
    offsets = scale * np.sqrt(np.maximum(eigenvalues, 0.0))[:, None] * eigenvectors.T
    return (mean + np.concatenate([offsets, -offsets])).astype(X.dtype)


def _copy(value):
    return value.copy() if isinstance(value, (np.ndarray, dict)) else value


def _copy_state(source: KSOM, target: KSOM) -> None:
    for name in (*FITTED_STATE, "feature_names_in_"):
        if hasattr(source, name):
            setattr(target, name, _copy(getattr(source, name)))
    labels = getattr(source, "labels_", None)
    if isinstance(labels, np.ndarray):
        target.labels_ = labels.copy()
