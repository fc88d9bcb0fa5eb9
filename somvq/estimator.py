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
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin

from . import algorithms, distances, metrics, parameters
from ._memory import check_fit_memory
from ._sklearn import Interval, StrOptions, _fit_context, check_is_fitted, validate_data
from ._validation import check_finite_codebook, check_training_range, restores_input_attributes
from .engines import Engine, check_backend, engine_for
from .grids import TOPOLOGIES, Grid
from .initialisation import INIT_METHODS, initial_codebook
from .neighbourhoods import NEIGHBOURHOODS
from .parameters import ALGORITHMS, BACKENDS, BMU_SEARCHES, UPDATES, TrainingPlan
from .schedules import SCHEDULES
from .state import FittedState

__all__ = ["KSOM"]


class KSOM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """Kohonen Self-Organising Map as a vector quantiser (online, batch, mini-batch).

    Parameters
    ----------
    grid : tuple of int or int, default=(16, 32)
        Map shape, e.g. ``(16, 32)``; or the number of units K, laid out with the
        reference implementation's automatic shape in ``grid_dim`` dimensions
        (``512 -> (16, 32)``). Units are numbered in C order (last axis fastest).
    grid_dim : int, default=2
        Number of grid axes when ``grid`` is an int.
    topology : {"rectangular", "hexagonal"}, default="rectangular"
    periodic : bool or tuple of bool, default=False
        Toroidal wrap-around, for every axis or per axis.
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
    decay : float, default=0.99
        EMA decay gamma of mini-batch KSOM.
    init_count : float, default=1.0
        Initial EMA count N0 of every unit (mini-batch; the paper uses 0 or 1), and initial
        hit count for ``learning_rate="inverse_count"``.
    eps : float, default=1e-5
        Laplace smoothing constant of the EMA counts.
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
    bmu_search : {"auto", "full", "pruned"}, default="auto"
        CPU batch fits (any neighbourhood; "none" is k-means): ``"pruned"`` keeps, for
        every row, its winner and a lower bound on its distance to every other unit, and
        skips the distance product for the rows whose winner provably cannot change
        (Hamerly's bounds, made conservative under rounding); ``"full"`` searches every
        row every pass; ``"auto"`` prunes neighbourhood "none" from
        :data:`somvq.parameters.PRUNED_MIN_ROWS` rows on, and returns to full passes
        while the bounds skip too few rows. Labels, codebooks and errors are
        the same bits either way; pruning costs O(n_samples) extra memory during ``fit``
        (28 bytes a row with the default single bound). Mini-batch, online and the CUDA backend always search in full.
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
        Mini-batch EMA state N (K,) and m (K, D), float64.
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

    _parameter_constraints: dict = {
        "grid": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "grid_dim": [Interval(Integral, 1, None, closed="left")],
        "topology": [StrOptions(set(TOPOLOGIES))],
        "periodic": ["boolean", "array-like"],
        "neighbourhood": [StrOptions(set(NEIGHBOURHOODS))],
        "radius": [Interval(Real, 0, None, closed="neither"), None],
        "radius_final": [Interval(Real, 0, None, closed="neither"), None],
        "radius_schedule": [StrOptions(set(SCHEDULES)), None],
        "shrink": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"inverse_count"})],
        "learning_rate_final": [Interval(Real, 0, None, closed="neither")],
        "learning_rate_schedule": [StrOptions(set(SCHEDULES)), None],
        "algorithm": [StrOptions(set(ALGORITHMS))],
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "decay": [Interval(Real, 0, 1, closed="left")],
        "init_count": [Interval(Real, 0, None, closed="left")],
        "eps": [Interval(Real, 0, None, closed="left")],
        "update": [StrOptions(set(UPDATES))],
        "init": [StrOptions(set(INIT_METHODS)), "array-like"],
        "backend": [StrOptions(set(BACKENDS))],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "bmu_search": [StrOptions(set(BMU_SEARCHES))],
    }

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
        bmu_search="auto",
    ):
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
        self.bmu_search = bmu_search

    # ------------------------------------------------------------------ resolution
    def check_parameters(self) -> Grid:
        """Validate the parameters without data, as ``fit`` does first; return the grid.

        Front ends call this to report a bad parameter before reading any data.

        Raises
        ------
        ValueError (sklearn's InvalidParameterError) naming the parameter and its value;
        BackendUnavailableError when the requested backend cannot run here.
        """
        self._validate_params()
        grid = parameters.grid_of(self)
        check_backend(self.backend)
        parameters.check_options(self)
        check_fit_memory(self, grid)
        return grid

    def _checked_grid(self, engine: Engine, data) -> Grid:
        """The checks of a training call once its data is validated; returns the grid."""
        engine.check_options()
        parameters.check_options(self)
        check_training_range(data)
        return parameters.grid_of(self)

    def _new_rng(self) -> np.random.Generator:
        seed = self.random_state
        if isinstance(seed, np.random.RandomState):
            seed = int(seed.randint(np.iinfo(np.int32).max))
        return np.random.default_rng(seed)

    def _start(self, engine: Engine, data, grid: Grid) -> tuple[TrainingPlan, FittedState, np.random.Generator]:
        """Plan, initial state and generator of a first training call on ``data``."""
        check_fit_memory(self, grid, engine.memory_shape(data))
        horizon = parameters.horizon(self.n_epochs, engine.steps_per_pass(data))
        plan = parameters.training_plan(self, grid, horizon)
        rng = self._new_rng()
        codebook = initial_codebook(self.init, engine.init_rows(data), grid, rng)
        return plan, FittedState.initial(codebook, grid, init_count=plan.init_count, horizon=horizon), rng

    # ------------------------------------------------------------------ fitting
    @restores_input_attributes
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, callback=None):
        """Train the map from a fresh initial codebook for ``n_epochs`` passes over ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; float32 stays float32, anything else becomes float64.
        y : ignored
        callback : callable, optional
            Called after every epoch as ``callback(epoch, n_epochs, mse, codebook)`` with
            the 1-based epoch, the mean squared distance of the rows to their winners met
            during the epoch, and the current codebook (read it, do not modify it). Used by
            the command line's progress bar. An exception raised by the callback (or a
            KeyboardInterrupt) abandons the fit and leaves the estimator as it was.

        Returns
        -------
        self
        """
        engine = engine_for(self, X)
        data = engine.prepare(X, reset=True)
        plan, state, rng = self._start(engine, data, self._checked_grid(engine, data))
        n_samples = engine.n_samples(data)
        for epoch in range(self.n_epochs):
            sq_error = engine.run_pass(data, engine.epoch_order(rng, data), plan, state)
            state.n_iter = epoch + 1
            self._report(epoch + 1, self.n_epochs, sq_error / n_samples, state.n_steps)
            if callback is not None:
                callback(epoch + 1, self.n_epochs, sq_error / n_samples, state.codebook)
        state.rng_state = rng.bit_generator.state
        check_finite_codebook(self, state.codebook, data)
        state.labels = engine.labels(data, state)
        self.set_fitted_state(state)
        return self

    @restores_input_attributes
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
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
        grid = self._checked_grid(engine, data)
        if first:
            plan, state, rng = self._start(engine, data, grid)
            state.rng_state = rng.bit_generator.state
        else:
            if grid != self.grid_:
                raise ValueError(
                    f"the grid changed since the first partial_fit: fitted {self.grid_!r}, "
                    f"now {grid!r}; call fit to start again."
                )
            state = self.fitted_state()
            plan = parameters.training_plan(self, grid, state.horizon)
        sq_error = engine.run_pass(data, engine.call_order(data), plan, state)
        state.n_iter += 1
        self._report(state.n_iter, None, sq_error / engine.n_samples(data), state.n_steps)
        check_finite_codebook(self, state.codebook, data)
        state.labels = engine.labels(data, state)
        self.set_fitted_state(state)
        return self

    # ------------------------------------------------------------------ state
    def fitted_state(self) -> FittedState:
        """A copy of the learned state (codebook, EMA state, counts, step counter, ...)."""
        check_is_fitted(self, "codebook_")
        return FittedState.of(self)

    def set_fitted_state(self, state: FittedState) -> "KSOM":
        """Make ``state`` the estimator's learned state, all attributes at once.

        The one way a state is given to an estimator: ``fit`` and ``partial_fit`` end with
        it, and :func:`somvq.load`, the torch plugin's ``to_estimator`` and the dask
        estimator's conversions use it. The arrays are taken as they are (not copied).
        """
        if not isinstance(state, FittedState):
            raise TypeError(f"set_fitted_state expects a somvq.state.FittedState, got {type(state).__name__}.")
        state.publish(self)
        return self

    def _report(self, epoch: int, n_epochs: int | None, mse: float, n_steps: int) -> None:
        if self.verbose:
            of = f"/{n_epochs}" if n_epochs else ""
            print(
                f"[KSOM {self.algorithm}] epoch {epoch}{of}  mean squared error {mse:.6g}  "
                f"steps {n_steps}",
                file=sys.stderr,
            )

    # ------------------------------------------------------------------ inference
    def _validate_for_inference(self, X) -> np.ndarray:
        check_is_fitted(self, "codebook_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return X if X.dtype == self.codebook_.dtype else X.astype(self.codebook_.dtype)

    @property
    def cluster_centers_(self) -> np.ndarray:
        """The codebook, under k-means' name (the very same array as ``codebook_``)."""
        check_is_fitted(self, "codebook_")
        return self.codebook_

    @property
    def _n_features_out(self) -> int:
        return self.codebook_.shape[0]

    def predict(self, X) -> np.ndarray:
        """Index of the best-matching unit of each row (int64; lowest index on ties)."""
        X = self._validate_for_inference(X)
        return algorithms.assign(X, self.codebook_)[0]

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit, then return the BMU of each training row (``labels_``)."""
        return self.fit(X).labels_

    def transform(self, X) -> np.ndarray:
        """Euclidean distance from each row to every unit, shape (n_samples, K)."""
        X = self._validate_for_inference(X)
        return np.sqrt(distances.squared_distances(X, self.codebook_)).astype(X.dtype, copy=False)

    def fit_transform(self, X, y=None) -> np.ndarray:
        """Fit, then return the distances of the training rows to every unit."""
        return self.fit(X).transform(X)

    def score(self, X, y=None) -> float:
        """Negative quantization error (higher is better)."""
        return -self.quantization_error(X)

    def quantization_error(self, X, *, squared: bool = False) -> float:
        """Mean distance of each row to its BMU (``squared=True``: mean squared distance)."""
        X = self._validate_for_inference(X)
        return metrics.quantization_error(X, self.codebook_, squared=squared)

    def topographic_error(self, X) -> float:
        """Fraction of rows whose two best units are not grid neighbours."""
        X = self._validate_for_inference(X)
        return metrics.topographic_error(X, self.codebook_, self.grid_)

    def umatrix(self) -> np.ndarray:
        """Mean distance of each unit's vector to its grid neighbours', in the grid's shape."""
        check_is_fitted(self, "codebook_")
        return metrics.umatrix(self.codebook_, self.grid_)

    def bmu_coordinates(self, X) -> np.ndarray:
        """Integer grid position (one column per grid axis) of each row's BMU."""
        return np.asarray(self.grid_.indices[self.predict(X)])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

