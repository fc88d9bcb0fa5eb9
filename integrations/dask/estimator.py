"""DaskKSOM: batch and mini-batch KSOM over dask arrays, on one machine or a cluster.

Only what is specific to dask arrays lives here: the ``shuffle_chunks`` parameter, the
choice of the dask engine for dask input (:mod:`.engine`: chunk validation, the passes
over chunks, where the statistics are computed) and inference over chunks. The training
loop is :class:`~somvq.KSOM`'s own ``fit`` / ``partial_fit``, so a fit over chunks equals
the in-memory fit (docs/distributed.md states the equivalences).
"""

from __future__ import annotations

import inspect
from typing import Any

import dask
import dask.array as da
import numpy as np

from somvq._sklearn import check_is_fitted
from somvq.estimator import KSOM
from somvq.parameters import DEFAULTS
from somvq.state import FittedState

from . import tasks
from .engine import DaskEngine, inference_arguments, predict_lazily, row_chunks, tree_reduce, validate_dask

__all__ = ["DaskKSOM"]


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
        ``backend="cuda"`` trains NumPy (and device) input on the GPU as KSOM does; on a
        dask array it raises a ValueError (the chunk statistics run on the workers' CPUs).
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
    #: Engines this class adds to KSOM's (see somvq.engines.engine_for).
    _engines = (DaskEngine,)

    def __init__(self, grid: Any = DEFAULTS["grid"], *, shuffle_chunks: bool = True, **params: Any) -> None:
        super().__init__(grid, **params)
        self.shuffle_chunks = shuffle_chunks

    # scikit-learn reads the parameters from the signature: KSOM's, plus shuffle_chunks.
    __init__.__signature__ = inspect.signature(KSOM.__init__).replace(  # type: ignore[attr-defined]
        parameters=[
            *inspect.signature(KSOM.__init__).parameters.values(),
            inspect.Parameter("shuffle_chunks", inspect.Parameter.KEYWORD_ONLY, default=True),
        ]
    )

    # ------------------------------------------------------------------ conversion
    def _as_ksom(self, state: FittedState) -> KSOM:
        """A plain KSOM with this estimator's parameters and the given state."""
        params = self.get_params(deep=False)
        params.pop("shuffle_chunks")
        model = KSOM(**params).set_fitted_state(state)
        if hasattr(self, "feature_names_in_"):
            model.feature_names_in_ = self.feature_names_in_.copy()
        return model

    def to_ksom(self) -> KSOM:
        """A plain :class:`~somvq.KSOM` with the same parameters and learned state.

        Use it to save (``somvq.save(som.to_ksom(), path)``) or to work in memory. A lazy
        ``labels_`` (dask array) is not carried over.
        """
        return self._as_ksom(self.fitted_state())

    @classmethod
    def from_ksom(cls, model: KSOM, *, shuffle_chunks: bool = True) -> DaskKSOM:
        """A DaskKSOM continuing from a fitted :class:`~somvq.KSOM` (e.g. ``somvq.load``)."""
        params = {k: v for k, v in model.get_params(deep=False).items() if k != "shuffle_chunks"}
        estimator = cls(**params, shuffle_chunks=shuffle_chunks).set_fitted_state(model.fitted_state())
        if hasattr(model, "feature_names_in_"):
            estimator.feature_names_in_ = model.feature_names_in_.copy()
        return estimator

    # ------------------------------------------------------------------ inference
    def _inference_input(self, X: da.Array) -> tuple[da.Array, object, object]:
        """The validated ``X``, then the arguments of every chunk task (the fitted model and
        the first row of each chunk: :func:`.engine.inference_arguments`)."""
        check_is_fitted(self, "codebook_")
        X = validate_dask(self, X, reset=False)
        return (X, *inference_arguments(X, self.to_ksom()))

    def predict(self, X: Any) -> Any:
        """BMU index of each row (int64); a dask array for dask input."""
        if not _is_dask_array(X):
            return super().predict(X)
        check_is_fitted(self, "codebook_")
        return predict_lazily(validate_dask(self, X, reset=False), self.to_ksom())

    def impute(self, X: Any) -> Any:
        """``X`` with each NaN filled from its row's BMU (``KSOM.impute``); a dask array, of
        the same row chunks (one column chunk), for dask input (computed chunk by chunk,
        not on the client)."""
        if not _is_dask_array(X):
            return super().impute(X)
        self._check_imputes()
        X, model, starts = self._inference_input(X)
        return X.map_blocks(tasks.impute_block, model, starts, dtype=X.dtype, meta=np.empty((0, 0), X.dtype))

    def transform(self, X: Any) -> Any:
        """Distances of each row to every unit, (n_samples, K); a dask array for dask input."""
        if not _is_dask_array(X):
            return super().transform(X)
        X, model, starts = self._inference_input(X)
        dtype = self.codebook_.dtype
        return X.map_blocks(
            tasks.transform_block,
            model,
            starts,
            chunks=(X.chunks[0], (self.codebook_.shape[0],)),
            dtype=dtype,
            meta=np.empty((0, 0), dtype),
        )

    def bmu_coordinates(self, X: Any) -> Any:
        """Grid position of each row's BMU; a dask array for dask input."""
        if not _is_dask_array(X):
            return super().bmu_coordinates(X)
        X, model, starts = self._inference_input(X)
        dtype = np.asarray(self.grid_.indices).dtype
        return X.map_blocks(
            tasks.bmu_coordinates_block,
            model,
            starts,
            chunks=(X.chunks[0], (self.grid_.ndim,)),
            dtype=dtype,
            meta=np.empty((0, 0), dtype),
        )

    def quantization_error(self, X: Any, *, squared: bool = False) -> float:
        """Mean distance of each row to its BMU; computed by chunks for dask input."""
        if not _is_dask_array(X):
            return super().quantization_error(X, squared=squared)
        X, model, starts = self._inference_input(X)
        parts = [
            dask.delayed(tasks.chunk_quantization_error, pure=True)(block, model, squared, index, starts)
            for index, block in row_chunks(X)
        ]
        n_rows, total = dask.compute(tree_reduce(parts, tasks.sum_weighted))[0]
        return float(total / n_rows)

    def topographic_error(self, X: Any) -> float:
        """Fraction of rows whose two best units are not grid neighbours (by chunks for dask)."""
        if not _is_dask_array(X):
            return super().topographic_error(X)
        X, model, starts = self._inference_input(X)
        parts = [
            dask.delayed(tasks.chunk_topographic_error, pure=True)(block, model, index, starts)
            for index, block in row_chunks(X)
        ]
        n_rows, total = dask.compute(tree_reduce(parts, tasks.sum_weighted))[0]
        return float(total / n_rows)


# ---------------------------------------------------------------------- helpers
_is_dask_array = DaskEngine.accepts
