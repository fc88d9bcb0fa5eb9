"""The KSOM estimator: scikit-learn API over the three KSOM algorithms.

This layer holds the parameters, runs the one training loop (``fit`` / ``partial_fit``,
for every engine) and publishes the learned state. What a pass computes is the engine's
(:mod:`somvq.engines`); parameters are resolved by :mod:`somvq.parameters` into a
:class:`~somvq.parameters.TrainingPlan`; the learned state is one
:class:`~somvq.state.FittedState`, set only through :meth:`KSOM.set_fitted_state`. The
user's parameters are never rewritten. See docs/architecture.md.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from numbers import Integral, Real
from typing import Any, cast

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin

from . import algorithms, distances, layers, metrics, missing, parameters
from ._memory import check_fit_memory
from ._sklearn import Interval, StrOptions, _fit_context, check_is_fitted
from ._validation import (
    check_finite_codebook,
    check_training_range,
    in_map_dtype,
    restores_input_attributes,
    validate_rows,
)
from .engines import Engine, check_backend, engine_for
from .grids import TOPOLOGIES, Grid
from .initialisation import INIT_METHODS, initial_codebook
from .neighbourhoods import NEIGHBOURHOODS
from .parameters import ALGORITHMS, BACKENDS, BMU_SEARCHES, MIN_RADIUS, UPDATES, TrainingPlan
from .schedules import SCHEDULES
from .state import FittedState

__all__ = ["KSOM"]


def _host_array(data: Any) -> np.ndarray | None:
    """The training rows as a host NumPy array (CUDA's DeviceData: its host copy), or None."""
    if isinstance(data, np.ndarray):
        return data
    host = getattr(data, "host", None)  # CUDA's DeviceData
    return host if isinstance(host, np.ndarray) else None


def _host_rows(data: Any) -> Any:
    """The training rows as an array-like the layer checks can index (host, or lazy dask)."""
    host = _host_array(data)
    if host is not None:
        return host
    lazy = getattr(data, "X", None)  # dask's DaskData
    if lazy is not None:
        return lazy
    raise ValueError("layers need the training data as host (NumPy) or dask arrays, not device arrays.")


class KSOM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """Kohonen Self-Organising Map as a vector quantiser (online, batch, mini-batch).

    Parameters
    ----------
    grid : tuple of int or int, default=(16, 32)
        Map shape, e.g. ``(16, 32)``; or the number of units K, laid out with the
        reference implementation's automatic shape in ``grid_dim`` dimensions
        (``512 -> (16, 32)``). Units are numbered in C order (last axis fastest).
        ``"auto"``: chosen from the training data at fit by the SOM Toolbox rule
        (``ceil(5 N^0.54321)`` units, sides in the ratio of the square roots of the two
        largest PCA eigenvalues: :func:`somvq.parameters.som_toolbox_shape`); the shape
        chosen is in ``grid_``. 2-D only.
    grid_dim : int, default=2
        Number of grid axes when ``grid`` is an int.
    topology : {"rectangular", "hexagonal"}, default="rectangular"
    periodic : bool or tuple of bool, default=False
        Toroidal wrap-around, for every axis or per axis (True/False, or 1/0).
    neighbourhood : str, default="gaussian"
        ``"none"`` (k-means / EMA-VQ), the paper's ``"hard"`` and ``"exponential"``, or the
        classic ``"gaussian"``, ``"bubble"``, ``"triangle"``, ``"cut_gaussian"`` and
        ``"mexican_hat"`` (online only). See :mod:`somvq.neighbourhoods`.
    radius : float, default=None
        Initial radius r(0). ``None``: 10 for "exponential" (the paper's sigma), half the
        longest grid side for the classic kernels; unused by "none" and "hard".
    radius_final : float, default=None
        Radius reached at the end of ``fit`` by the "exponential" and "linear" schedules.
        ``None``: 0.5.
    radius_schedule : {"inverse_time", "exponential", "linear", "constant"}, default=None
        ``None``: "inverse_time" (``radius / (1 + shrink t)``, the paper's) for the paper's
        kernels, "exponential" for the classic ones.
    shrink : float, default=0.1
        The paper's tau: neighbour weight ``1 / (1 + shrink t)`` of "hard", and the rate of
        the inverse-time schedules. t counts updates (samples, epochs or mini-batches).
    learning_rate : float or "inverse_count", default=0.5
        Online KSOM only: initial learning rate, or ``"inverse_count"`` for ``1 / n_k*``
        (MacQueen's online k-means with ``neighbourhood="none"``); counts start at
        ``init_count``.
    learning_rate_final : float, default=0.01
        Online KSOM: learning rate reached at the end of ``fit`` (exponential/linear).
    learning_rate_schedule : str, default=None
        Online KSOM: schedule of the learning rate; ``None`` means "exponential".
    algorithm : {"online", "batch", "minibatch"}, default="batch"
        ``"batch"``: one update per epoch from the whole data set (k-means-like).
        ``"minibatch"``: the paper's KSOM-EMA, one update per mini-batch.
        ``"online"``: Kohonen's original rule, one update per sample.
    n_epochs : int, default=10
        Passes over the data in ``fit``.
    batch_size : int, default=256
        Mini-batch size (``algorithm="minibatch"``).
    decay : float or "auto", default="auto"
        EMA decay gamma of mini-batch KSOM. ``"auto"``: ``max(0, 1 - 20 / S)`` with S the
        fit's number of mini-batch steps (:func:`somvq.parameters.resolve_decay`). With
        ``update="all"``, a unit that no row reaches (a kernel that is exactly 0 beyond its
        radius: "none", "bubble", "triangle", "cut_gaussian") drifts to the origin once its
        count decays to the scale of ``eps``: at once with decay 0 (fits of at most 20
        steps), after ~0.6 S steps with "auto" (docs/analysis.md, "Mini-batch decay
        default"); give ``decay=0.99``, ``update="written"`` or a gaussian kernel.
    init_count : float, default=1.0
        Initial EMA count N0 of every unit (mini-batch; the paper uses 0 or 1), and initial
        hit count for ``learning_rate="inverse_count"``.
    eps : float, default=1e-5
        Laplace smoothing constant of the EMA counts: 0, or in [1e-30, 1e30] (beyond, the
        smoothing under- or overflows in float64; unused with ``update="written"``).
    update : {"all", "written"}, default="all"
        Mini-batch: decay every unit at every step (the paper's), or only units that
        received inputs (the ablation; no Laplace smoothing).
    init : {"random", "normal", "sample", "pca"} or array of shape (K, D), default="random"
        Initial codebook; see :mod:`somvq.initialisation`.
    backend : {"cpu", "cuda"}, default="cpu"
        Compute backend; never chosen silently.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the sample order.
    verbose : bool or int, default=False
        Print one line per epoch.
    missing : {"error", "ignore"}, default="error"
        NaN in the data: ``"error"`` (a ValueError), or ``"ignore"``: distances over the
        observed features only, scaled by D / n_observed (kohonen's rule), and updates
        from observed values only (per unit and per feature statistics; the mini-batch
        EMA count ``ema_count_`` becomes (K, D) once a batch held NaN). ``predict``,
        ``transform``, ``score``, the errors and :meth:`impute` then accept NaN too. inf
        is never missing (always an error), nor is a row with no observed feature. See
        docs/missing-values.md.
    max_missing : float in [0, 1], default=0.5
        With ``missing="ignore"``: training rows (``fit``, ``partial_fit``) missing more
        than this fraction of their features are an error that names them (layered maps:
        of any layer's columns, as kohonen's ``maxNA.fraction``); inference maps any row
        with an observed feature.
    tol : float or None, default=None
        Early stopping of ``fit`` (None: off, every one of the ``n_epochs`` runs). An epoch
        "does not change" the map when the neighbourhood schedule is in its late phase (the
        radius, or the "hard" neighbour weight, has made 90% of the change the full fit
        makes: :func:`somvq.parameters.schedule_settled`) and the epoch's mean squared error
        fell by less than ``tol`` times the previous epoch's; ``fit`` stops after
        ``n_iter_no_change`` such epochs in a row (:class:`somvq.parameters.EarlyStopping`).
        It never stops while the radius is still large. ``n_iter_`` says how many epochs
        ran. ``partial_fit`` ignores it.
    n_iter_no_change : int or None, default=None
        Consecutive epochs without change that stop ``fit`` (None: 2). Used only with ``tol``.
    layers : list of lists of int, default=None
        Multi-layer map (R kohonen's ``supersom``): the columns of each layer (every
        column in exactly one layer). ``None``: one layer of all columns (the plain map).
        See :mod:`somvq.layers` and docs/supervised.md. With ``missing="ignore"`` each
        layer's distance runs over the row's observed entries of that layer (kohonen's
        rule); a row needs one observed value in every layer (at ``predict``: in every
        layer ``predict_layers`` keeps).
    layer_weights : list of float or "balanced", default=None
        Weight ``w_l >= 0`` of each layer in the distance ``sum_l w_l d_l``; ``None``: all 1;
        ``"balanced"``: ``1 / (mean distance of the training rows to the layer's mean)``,
        so that layers contribute equally (the fitted values are ``layer_weights_``).
    layer_distances : list of {"sqeuclidean", "tanimoto"}, default=None
        Distance of each layer; ``None``: all "sqeuclidean". "tanimoto" (binary 0/1
        columns, e.g. one-hot categories): the fraction of mismatching bits between the row
        and the unit's vector thresholded at 0.5 (every algorithm on the CPU; batch and
        mini-batch on dask and CUDA).
    predict_layers : list of int, default=None
        Layers that decide the BMU in ``predict`` (kohonen's ``whatmap``); ``None``: all.
        Indices into ``layers`` (``[0]`` is the only one without ``layers``), checked with
        the other parameters, before any training. Training always uses every layer. A map
        trained on X and Y as two layers is queried with ``predict_layers=[0]`` (the rows
        must still have every column; the others are ignored, and may be NaN with
        ``missing="ignore"``).
    bmu_search : {"auto", "full", "pruned"}, default="auto"
        CPU batch fits (any neighbourhood; "none" is k-means): ``"pruned"`` keeps, for
        every row, its winner and a lower bound on its distance to every other unit, and
        skips the distance product for the rows whose winner provably cannot change
        (Hamerly's bounds, with Yinyang's groups of units for "none", made conservative
        under rounding); under a shrinking neighbourhood, where every unit moves, a row
        is instead settled by the few units within twice its distance to its last winner
        (Elkan's lemma; the "ball"); ``"full"`` searches every row every pass; ``"auto"``
        prunes from :data:`somvq.parameters.PRUNED_MIN_ROWS` rows on: neighbourhood
        "none" from :func:`somvq.parameters.pruned_min_passes` passes on (30 on small,
        low-dimensional data, down to 5 from 256 features), returning to
        full passes while the bounds skip too few rows; other neighbourhoods in the
        passes where a sample of the rows says the ball settles most of them (late in a
        fit). Labels, codebooks and errors are the same bits either way; pruning costs
        O(n_samples) extra memory during ``fit`` (24 + 4 G bytes a row with G = K / 10
        groups for "none", at most 64; 28 bytes with the single bound of other
        neighbourhoods). Mini-batch, online and the CUDA backend always search in full.
        See docs/performance.md.

    Attributes
    ----------
    codebook_ : ndarray of shape (K, D)
        Unit weight vectors, in the training data's dtype (float32 or float64).
    cluster_centers_ : ndarray of shape (K, D)
        The same array as ``codebook_``, for k-means users.
    grid_ : Grid
        The map geometry.
    labels_ : ndarray of shape (n_samples,)
        BMU of each row of the last ``fit`` (or ``partial_fit``) call, under the final
        codebook.
    n_steps_ : int
        Number of updates applied so far (t); ``partial_fit`` continues from it.
    n_iter_ : int
        Number of epochs (``fit``) or ``partial_fit`` calls run.
    ema_count_, ema_sum_ : ndarray
        Mini-batch EMA state N (K,) and m (K, D), float64. With ``missing="ignore"``, once
        a mini-batch held NaN, N is per unit and feature: (K, D).
    unit_counts_ : ndarray of shape (K,)
        Online hit counts (used by ``learning_rate="inverse_count"``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str (when fitted on a DataFrame with string columns)

    Examples
    --------
    >>> import numpy as np
    >>> from somvq import KSOM
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> som = KSOM(grid=(4, 5), random_state=0).fit(X)
    >>> som.codebook_.shape, som.predict(X[:3]).dtype
    ((20, 3), dtype('int64'))
    """

    # Fitted attributes (set by FittedState.publish); annotations only, no class values.
    codebook_: np.ndarray
    grid_: Grid
    labels_: np.ndarray

    _parameter_constraints: dict = {
        "grid": [Interval(Integral, 1, None, closed="left"), "array-like", StrOptions({"auto"})],
        "grid_dim": [Interval(Integral, 1, None, closed="left")],
        "topology": [StrOptions(set(TOPOLOGIES))],
        "periodic": ["boolean", "array-like"],
        "neighbourhood": [StrOptions(set(NEIGHBOURHOODS))],
        "radius": [Interval(Real, MIN_RADIUS, None, closed="left"), None],
        "radius_final": [Interval(Real, MIN_RADIUS, None, closed="left"), None],
        "radius_schedule": [StrOptions(set(SCHEDULES)), None],
        "shrink": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"inverse_count"})],
        "learning_rate_final": [Interval(Real, 0, None, closed="neither")],
        "learning_rate_schedule": [StrOptions(set(SCHEDULES)), None],
        "algorithm": [StrOptions(set(ALGORITHMS))],
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "decay": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
        "init_count": [Interval(Real, 0, None, closed="left")],
        "eps": [Interval(Real, 0, None, closed="left")],
        "update": [StrOptions(set(UPDATES))],
        "init": [StrOptions(set(INIT_METHODS)), "array-like"],
        "backend": [StrOptions(set(BACKENDS))],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "missing": [StrOptions({"error", "ignore"})],
        "max_missing": [Interval(Real, 0, 1, closed="both")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
        "layers": ["array-like", None],
        "layer_weights": ["array-like", StrOptions({"balanced"}), None],
        "layer_distances": ["array-like", None],
        "predict_layers": ["array-like", None],
        "bmu_search": [StrOptions(set(BMU_SEARCHES))],
    }

    def __init__(
        self,
        grid: Any = (16, 32),
        *,
        grid_dim: int = 2,
        topology: str = "rectangular",
        periodic: Any = False,
        neighbourhood: str = "gaussian",
        radius: float | None = None,
        radius_final: float | None = None,
        radius_schedule: str | None = None,
        shrink: float = 0.1,
        learning_rate: float | str = 0.5,
        learning_rate_final: float = 0.01,
        learning_rate_schedule: str | None = None,
        algorithm: str = "batch",
        n_epochs: int = 10,
        batch_size: int = 256,
        decay: float | str = "auto",
        init_count: float = 1.0,
        eps: float = 1e-5,
        update: str = "all",
        init: Any = "random",
        backend: str = "cpu",
        random_state: Any = None,
        verbose: bool | int = False,
        missing: str = "error",
        max_missing: float = 0.5,
        tol: float | None = None,
        n_iter_no_change: int | None = None,
        layers: Any = None,
        layer_weights: Any = None,
        layer_distances: Any = None,
        predict_layers: Any = None,
        bmu_search: str = "auto",
    ) -> None:
        self.grid = grid
        self.grid_dim = grid_dim
        self.topology = topology
        self.periodic = periodic
        self.neighbourhood = neighbourhood
        self.radius = radius
        self.radius_final = radius_final
        self.radius_schedule = radius_schedule
        self.shrink = shrink
        self.learning_rate = learning_rate
        self.learning_rate_final = learning_rate_final
        self.learning_rate_schedule = learning_rate_schedule
        self.algorithm = algorithm
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.decay = decay
        self.init_count = init_count
        self.eps = eps
        self.update = update
        self.init = init
        self.backend = backend
        self.random_state = random_state
        self.verbose = verbose
        self.missing = missing
        self.max_missing = max_missing
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.layers = layers
        self.layer_weights = layer_weights
        self.layer_distances = layer_distances
        self.predict_layers = predict_layers
        self.bmu_search = bmu_search

    # ------------------------------------------------------------------ resolution
    def check_parameters(self) -> Grid | None:
        """Validate the parameters without data, as ``fit`` does first; return the grid.

        ``grid="auto"`` returns None: the shape is chosen from the data at fit.

        Front ends call this to report a bad parameter before reading any data.

        Raises
        ------
        ValueError (sklearn's InvalidParameterError) naming the parameter and its value;
        BackendUnavailableError when the requested backend cannot run here.
        """
        self._validate_params()
        check_backend(self.backend)
        parameters.check_options(self)
        if isinstance(self.grid, str):  # "auto": chosen from the data at fit
            if self.grid_dim != 2:
                raise ValueError(
                    f"grid='auto' makes 2-D maps (the SOM Toolbox rule), got grid_dim={self.grid_dim}."
                )
            return None
        grid = parameters.grid_of(self)
        check_fit_memory(self, grid)
        return grid

    def _checked_grid(self, engine: Engine, data: Any, fresh: bool = True) -> Grid:
        """The checks of a training call once its data is validated; returns the grid.

        ``grid="auto"`` is chosen from ``data`` on a fresh start (``fit``, a first
        ``partial_fit``); later ``partial_fit`` calls keep the fitted ``grid_``.
        """
        engine.check_options()
        parameters.check_options(self)
        check_training_range(data)
        if isinstance(self.grid, str) and self.grid == "auto":
            if not fresh:
                return self.grid_
            return parameters.grid_of(self, engine.grid_rows(data), engine.n_samples(data))
        return parameters.grid_of(self)

    def _new_rng(self) -> np.random.Generator:
        seed = self.random_state
        if isinstance(seed, np.random.RandomState):
            seed = int(seed.randint(np.iinfo(np.int32).max))
        return np.random.default_rng(seed)

    def _start(
        self,
        engine: Engine,
        data: Any,
        grid: Grid,
        spec: layers.Layers | None = None,
        scale: np.ndarray | None = None,
    ) -> tuple[TrainingPlan, FittedState, np.random.Generator]:
        """Plan, initial state and generator of a first training call on ``data``.

        Layered maps (``spec``): ``data`` is already scaled by ``scale``; so is an init array.
        """
        horizon = parameters.horizon(self.n_epochs, engine.steps_per_pass(data))
        plan = self._plan(grid, horizon, spec, scale)
        shape = engine.memory_shape(data)
        check_fit_memory(self, grid, shape, pruned=engine.prunes(plan, data))
        host = _host_array(data)
        if host is not None:  # (device-only and dask rows are not sampled)
            parameters.check_smoothing_offset(plan, host)
        rng = self._new_rng()
        init = self.init
        if scale is not None and not isinstance(init, str):
            init = np.asarray(init)
            if init.ndim == 2 and init.shape[1] == scale.shape[0]:
                init = init * scale
        # in the data's dtype: an engine may give init rows of more precision (dask's PCA)
        codebook = initial_codebook(init, engine.init_rows(data), grid, rng).astype(
            np.dtype(data.dtype), copy=False
        )
        return plan, FittedState.initial(codebook, grid, init_count=plan.init_count, horizon=horizon), rng

    def _plan(
        self, grid: Grid, horizon: float, spec: layers.Layers | None, scale: np.ndarray | None
    ) -> TrainingPlan:
        plan = parameters.training_plan(self, grid, horizon)
        if spec is not None:
            plan = replace(plan, layers=layers.ScaledLayers(spec, cast(np.ndarray, scale)))
        if spec is not None and spec.has_tanimoto:
            from functools import partial

            from .layers import search_codebook

            plan = replace(plan, search=partial(search_codebook, spec=spec, scale=scale, scaled=True))
        return plan

    # ------------------------------------------------------------------ layers
    def _layers_for_training(self, engine: Engine, data: Any, first: bool) -> layers.Layers | None:
        """The resolved :class:`somvq.layers.Layers` of a training call, or None (no layers)."""
        if self.layers is None:
            if self.layer_weights is not None or self.layer_distances is not None:
                layers.check_layers(None, self.layer_weights, self.layer_distances, 0)
            return None
        if self.missing == "ignore":
            if engine.name in ("cpu", "cuda"):  # dask: each chunk is checked by its task
                columns = layers.check_layers(
                    self.layers, self.layer_weights, self.layer_distances, data.shape[1]
                )
                layers.check_layer_missing(_host_rows(data), columns[0], float(self.max_missing))
        spec = layers.resolve_layers(self.layers, self.layer_weights, self.layer_distances, _host_rows(data))
        assert spec is not None  # layers is set
        if not first:
            fitted = getattr(self, "layer_weights_", None)
            if fitted is None or len(fitted) != len(spec.columns) or not self._fitted_layout(spec):
                raise ValueError(
                    f"layers={self.layers!r} (layer_distances={self.layer_distances!r}) differ "
                    f"from the fitted map's; call fit to start again."
                )
            spec = layers.with_weights(spec, fitted)
        return spec

    def _fitted_layers(self) -> layers.Layers | None:
        """The layers of the fitted map (``layer_weights_`` as resolved by ``fit``), or None."""
        if self.layers is None:
            return None
        n_layers = len(self.layers) if hasattr(self.layers, "__len__") else -1
        weights = getattr(self, "layer_weights_", None)
        if weights is None or len(weights) != n_layers:
            raise ValueError(
                f"layers={self.layers!r} differ from the fitted map's (layer_weights_="
                f"{weights!r}); fit again after changing layers."
            )
        columns, _, distances = layers.check_layers(
            self.layers, list(weights), self.layer_distances, self.codebook_.shape[1]
        )
        spec = layers.Layers(
            columns, np.asarray(weights, dtype=np.float64), distances, self.codebook_.shape[1]
        )
        if not self._fitted_layout(spec):
            raise ValueError(
                f"layers={self.layers!r} (layer_distances={self.layer_distances!r}) differ from "
                "the fitted map's; fit again after changing layers."
            )
        return spec

    def _fitted_layout(self, spec: layers.Layers) -> bool:
        """Whether ``spec`` has the columns and distances the map was fitted with (True when
        they were not recorded: a map of an older somvq)."""
        fitted = getattr(self, "_layer_layout", None)
        return fitted is None or fitted == layers.layout(spec.columns, spec.distances)

    def _unscale(
        self, state: FittedState, spec: layers.Layers, scale: np.ndarray, plan: TrainingPlan, data: Any
    ) -> None:
        """Back to the data's units: divide by the scale; refill the columns of weight-0 layers.

        Weight-0 columns take no part in training (their scale is 0); they are refilled
        from the final BMUs as batch KSOM's update would: the neighbourhood-smoothed means
        of the rows (units with no smoothed count: the column mean).
        """
        positive = scale > 0
        codebook = np.array(state.codebook, copy=True)
        codebook[:, positive] = codebook[:, positive] / scale[positive].astype(codebook.dtype)
        if state.ema_sum is not None:
            ema_sum = np.array(state.ema_sum, dtype=np.float64, copy=True)
            ema_sum[:, positive] /= scale[positive]
        if not np.all(positive):
            from .neighbourhoods import smoothing_operator

            zero = np.flatnonzero(~positive)
            rows = np.asarray(_host_rows(data)[:, zero], dtype=np.float64)
            labels = np.asarray(state.labels)
            op = smoothing_operator(plan.neighbourhood, plan.grid, max(state.n_steps - 1, 0))
            if np.isnan(rows).any():  # missing="ignore": per-column means of the observed entries
                observed = ~np.isnan(rows)
                counts = np.zeros((codebook.shape[0], zero.size))
                sums = np.zeros((codebook.shape[0], zero.size))
                np.add.at(counts, labels, observed.astype(np.float64))
                np.add.at(sums, labels, np.where(observed, rows, 0.0))
                counts, sums = missing.smooth_masked_statistics(op, counts, sums)
                column_means = np.nanmean(rows, axis=0)
                means = np.where(counts > 0, sums / np.where(counts > 0, counts, 1), column_means)
            else:
                counts = np.bincount(labels, minlength=codebook.shape[0]).astype(np.float64)
                sums = np.zeros((codebook.shape[0], zero.size))
                np.add.at(sums, labels, rows)
                counts, sums = algorithms.smooth_statistics(op, counts, sums)
                means = np.where(
                    counts[:, None] > 0, sums / np.where(counts > 0, counts, 1)[:, None], rows.mean(axis=0)
                )
            codebook[:, zero] = means
            if state.ema_sum is not None and state.ema_count is not None:
                ema_count = np.reshape(state.ema_count, (codebook.shape[0], -1))
                ema_sum[:, zero] = means * (ema_count[:, zero] if ema_count.shape[1] > 1 else ema_count)
        state.codebook = codebook.astype(np.dtype(data.dtype), copy=False)  # the data's dtype again
        if state.ema_sum is not None:
            state.ema_sum = ema_sum

    # ------------------------------------------------------------------ fitting
    @restores_input_attributes
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, *, callback: Callable[..., Any] | None = None) -> KSOM:
        """Train the map from a fresh initial codebook for ``n_epochs`` passes over ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; float32 stays float32, anything else becomes float64.
        y : ignored
        callback : callable, optional
            Called after every epoch as ``callback(epoch, n_epochs, mse, codebook)`` with
            the 1-based epoch, the mean squared distance of the rows to their winners met
            during the epoch (online KSOM: after it), and the current codebook (read it, do not modify it). Used by
            the command line's progress bar. An exception raised by the callback (or a
            KeyboardInterrupt) abandons the fit and leaves the estimator as it was.

        Returns
        -------
        self
        """
        engine = engine_for(self, X)
        data = engine.prepare(X, reset=True)
        grid = self._checked_grid(engine, data)
        spec = self._layers_for_training(engine, data, first=True)
        original, scale = data, None
        if spec is not None:
            scale = layers.column_scale(spec)
            data = engine.scale_columns(data, scale)
        plan, state, rng = self._start(engine, data, grid, spec, scale)
        n_samples = engine.n_samples(data)
        stopper = None
        if self.tol is not None:
            t_end = self.n_epochs * engine.steps_per_pass(data)
            stopper = parameters.EarlyStopping(self.tol, self.n_iter_no_change, plan.neighbourhood, t_end)
        settled = False
        for epoch in range(self.n_epochs):
            order = engine.epoch_order(rng, data)
            if settled:
                # A fixed point (Engine.settled): this pass would give the same codebook
                # and error again, bit for bit; only the step counter moves.
                state.n_steps += engine.steps_per_pass(data)
            else:
                before = state.codebook
                sq_error = engine.run_pass(data, order, plan, state)
                settled = engine.settled(plan, before, state)
            state.n_iter = epoch + 1
            self._report(epoch + 1, self.n_epochs, sq_error / n_samples, state.n_steps)
            if callback is not None:
                callback(epoch + 1, self.n_epochs, sq_error / n_samples, state.codebook)
            if stopper is not None and stopper.stop(state.n_steps, float(sq_error) / n_samples):
                break
        state.rng_state = cast(dict, rng.bit_generator.state)
        check_finite_codebook(self, state.codebook, data)
        self._finish(engine, data, original, plan, state, spec, scale)
        return self

    def _finish(
        self,
        engine: Engine,
        data: Any,
        original: Any,
        plan: TrainingPlan,
        state: FittedState,
        spec: layers.Layers | None,
        scale: np.ndarray | None,
    ) -> None:
        """Labels, layered maps back in the data's units, then the state published."""
        if plan.algorithm != "minibatch":
            state.match_ema_to_codebook()
        if spec is not None and np.dtype(original.dtype) != np.dtype(data.dtype):
            # float32 data trained in float64 (layers.working_dtype): label the map it publishes
            state.codebook = layers.as_published(state.codebook, cast(np.ndarray, scale), original.dtype)
        search = state if plan.search is None else replace(state, codebook=plan.search(state.codebook))
        state.labels = engine.labels(data, search)
        if spec is not None:
            self._unscale(state, spec, cast(np.ndarray, scale), plan, original)  # scale is set with spec
        state.layer_weights = None if spec is None else spec.weights.copy()
        state.layer_layout = None if spec is None else layers.layout(spec.columns, spec.distances)
        self.set_fitted_state(state)

    @restores_input_attributes
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any = None) -> KSOM:
        """One pass of the chosen algorithm over ``X``, continuing the step counter.

        The first call initialises the codebook from ``X``. ``batch``: one batch update
        from all of ``X``; ``minibatch``: consecutive mini-batches of ``batch_size`` rows
        in the given order (one update when ``len(X) <= batch_size``); ``online``: one
        update per row, in the given order. The schedules' horizon (for "exponential" and
        "linear") is ``n_epochs`` calls of the first call's size, unless ``fit`` ran first.
        ``labels_`` are then this call's rows under the new codebook (as
        ``MiniBatchKMeans.partial_fit``).

        Returns
        -------
        self
        """
        first = not hasattr(self, "codebook_")
        engine = engine_for(self, X)
        data = engine.prepare(X, reset=first, dtype=None if first else self.codebook_.dtype)
        grid = self._checked_grid(engine, data, fresh=first)
        spec = self._layers_for_training(engine, data, first=first)
        original, scale = data, None
        if spec is not None:
            scale = layers.column_scale(spec)
            data = engine.scale_columns(data, scale)
        if first:
            plan, state, rng = self._start(engine, data, grid, spec, scale)
            state.rng_state = cast(dict, rng.bit_generator.state)
        else:
            if grid != self.grid_:
                raise ValueError(
                    f"the grid changed since the first partial_fit: fitted {self.grid_!r}, "
                    f"now {grid!r}; call fit to start again."
                )
            state = self.fitted_state()
            plan = self._plan(grid, cast(float, state.horizon), spec, scale)  # set by FittedState.initial
            if spec is not None:
                # in the working copy's dtype (float64 for float32 data: layers.working_dtype)
                state.codebook = (state.codebook * scale).astype(np.dtype(data.dtype))
                if state.ema_sum is not None:
                    state.ema_sum = state.ema_sum * scale
        sq_error = engine.run_pass(data, engine.call_order(data), plan, state)
        state.n_iter += 1
        self._report(state.n_iter, None, sq_error / engine.n_samples(data), state.n_steps)
        check_finite_codebook(self, state.codebook, data)
        self._finish(engine, data, original, plan, state, spec, scale)
        return self

    # ------------------------------------------------------------------ state
    def fitted_state(self) -> FittedState:
        """A copy of the learned state (codebook, EMA state, counts, step counter, ...)."""
        check_is_fitted(self, "codebook_")
        return FittedState.of(self)

    def set_fitted_state(self, state: FittedState) -> KSOM:
        """Make ``state`` the estimator's learned state, all attributes at once.

        The one way a state is given to an estimator: ``fit`` and ``partial_fit`` end with
        it, and :func:`somvq.load`, the torch plugin's ``to_estimator`` and the dask
        estimator's conversions use it. The arrays are taken as they are (not copied).
        """
        if not isinstance(state, FittedState):
            raise TypeError(
                f"set_fitted_state expects a somvq.state.FittedState, got {type(state).__name__}."
            )
        state.publish(self)
        return self

    def _report(self, epoch: int, n_epochs: int | None, mse: float, n_steps: int) -> None:
        if self.verbose:
            of = f"/{n_epochs}" if n_epochs else ""
            print(
                f"[KSOM {self.algorithm}] epoch {epoch}{of}  mean squared error {mse:.6g}  steps {n_steps}",
                file=sys.stderr,
            )

    # ------------------------------------------------------------------ inference
    def _validate_for_inference(self, X: Any) -> np.ndarray:
        """Checked rows in the map's dtype (:meth:`_checked_rows`, :meth:`_in_map_dtype`)."""
        return self._in_map_dtype(self._checked_rows(X))

    def _checked_rows(self, X: Any) -> np.ndarray:
        """``X`` validated for this fitted map, float32 kept (other types to float64)."""
        check_is_fitted(self, "codebook_")
        # missing="ignore": inf and all-NaN rows refused, naming them; any fraction maps
        X = validate_rows(self, X, dtype=[np.float64, np.float32], reset=False)
        return cast(np.ndarray, X)

    def _in_map_dtype(self, X: np.ndarray) -> np.ndarray:
        """Checked rows cast to the codebook's dtype; values beyond it are refused."""
        return in_map_dtype(X, self.codebook_.dtype)

    def _assign(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """BMU and squared distance of validated rows: masked when (and only when) X holds NaN."""
        if missing.has_missing(X):
            return missing.masked_assign(X, self.codebook_)
        return cast(tuple[np.ndarray, np.ndarray], algorithms.assign(X, self.codebook_))

    @property
    def cluster_centers_(self) -> np.ndarray:
        """The codebook, under k-means' name (the very same array as ``codebook_``)."""
        check_is_fitted(self, "codebook_")
        return self.codebook_

    @property
    def _n_features_out(self) -> int:
        return cast(int, self.codebook_.shape[0])

    def predict(self, X: Any) -> np.ndarray:
        """Index of the best-matching unit of each row (int64; lowest index on ties)."""
        X = self._validate_for_inference(X)
        spec = self._fitted_layers()
        if spec is not None:
            spec = layers.select_layers(spec, self.predict_layers)
            if missing.has_missing(X):  # missing="ignore" (validated): kohonen's rule per layer
                return layers.layered_predict_masked(X, self.codebook_, spec)[0]
            return layers.layered_assign(X, self.codebook_, spec)[0]
        return self._assign(X)[0]

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then return the BMU of each training row (``labels_``)."""
        return cast(np.ndarray, self.fit(X).labels_)

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distance from each row to every unit, shape (n_samples, K)."""
        X = self._validate_for_inference(X)
        X_in, codebook, s = distances.underflow_scaled(X, self.codebook_)  # (below ~1e-77)
        if missing.has_missing(X):
            dist: np.ndarray = np.sqrt(missing.masked_squared_distances(X_in, codebook))
        else:
            dist = np.sqrt(distances.squared_distances(X_in, codebook))
        if s != 1.0:
            dist /= s
        return dist.astype(X.dtype, copy=False)

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then return the distances of the training rows to every unit."""
        return cast(np.ndarray, self.fit(X).transform(X))

    def score(self, X: Any, y: Any = None) -> float:
        """Negative quantization error (higher is better)."""
        return -self.quantization_error(X)

    def quantization_error(self, X: Any, *, squared: bool = False) -> float:
        """Mean distance of each row to its BMU (``squared=True``: mean squared distance)."""
        X = self._validate_for_inference(X)
        if missing.has_missing(X):
            X_in, codebook, s = distances.underflow_scaled(X, self.codebook_)  # (below ~1e-77)
            sq = missing.masked_assign(X_in, codebook)[1]
            return float(np.mean(sq if squared else np.sqrt(sq))) / (s * s if squared else s)
        return metrics.quantization_error(X, self.codebook_, squared=squared)

    def topographic_error(self, X: Any) -> float:
        """Fraction of rows whose two best units are not grid neighbours."""
        X = self._validate_for_inference(X)
        if missing.has_missing(X):
            if self.grid_.n_units < 2:
                return 0.0
            X_in, codebook, _ = distances.underflow_scaled(X, self.codebook_)  # (below ~1e-77)
            two = np.argsort(missing.masked_squared_distances(X_in, codebook), axis=1, kind="stable")[:, :2]
            return float(1.0 - self.grid_.are_neighbours(two[:, 0], two[:, 1]).mean())
        return metrics.topographic_error(X, self.codebook_, self.grid_)

    def _check_imputes(self) -> None:
        if self.missing != "ignore":
            raise ValueError(
                "impute needs a map built with missing='ignore' (this one has "
                f"missing={self.missing!r}); refit with KSOM(missing='ignore')."
            )

    def impute(self, X: Any) -> np.ndarray:
        """``X`` with each NaN replaced by the corresponding entry of its row's BMU.

        The BMU is found with the masked distance over the row's observed features (layered
        maps: the BMU of ``predict``, each layer's rule). Needs ``missing="ignore"``. The
        result is float32 for float32 ``X``, else float64 (integers, and float16, whose
        range could not hold every code); observed entries, and rows without NaN, are
        returned unchanged (a copy), whatever the map's dtype.
        """
        self._check_imputes()
        out = np.array(self._checked_rows(X), copy=True)
        nan = np.isnan(out)
        rows = np.flatnonzero(nan.any(axis=1))
        if rows.size:
            spec = self._fitted_layers()
            if spec is not None:
                spec = layers.select_layers(spec, self.predict_layers)
                layers.check_layers_observed(out, spec)  # naming rows of X, not of out[rows]
            holed = self._in_map_dtype(out[rows])
            if spec is not None:  # layered maps: the BMU of predict (kohonen's rule per layer)
                bmu = layers.layered_predict_masked(holed, self.codebook_, spec)[0]
            else:
                bmu = missing.masked_assign(holed, self.codebook_)[0]
            filled = out[rows]
            filled[nan[rows]] = self.codebook_.astype(out.dtype)[bmu][nan[rows]]
            out[rows] = filled
        return out

    def umatrix(self) -> np.ndarray:
        """Mean distance of each unit's vector to its grid neighbours', in the grid's shape."""
        check_is_fitted(self, "codebook_")
        return metrics.umatrix(self.codebook_, self.grid_)

    def bmu_coordinates(self, X: Any) -> np.ndarray:
        """Integer grid position (one column per grid axis) of each row's BMU."""
        return np.asarray(self.grid_.indices[self.predict(X)])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.missing == "ignore"  # NaN are missing values then
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
