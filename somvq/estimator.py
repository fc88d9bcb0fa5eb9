"""The KSOM estimator: scikit-learn API over the three KSOM algorithms.

This layer validates input and parameters, keeps the fitted state and the step counter,
and calls :mod:`somvq.algorithms` for the arithmetic. It never rewrites the user's
parameters: resolved defaults live in private attributes made in ``fit``.
"""

from __future__ import annotations

import math
import sys
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin

from . import algorithms, distances, metrics
from ._memory import check_fit_memory
from ._sklearn import Interval, StrOptions, _fit_context, check_is_fitted, validate_data
from ._validation import (
    check_ema_settings,
    check_finite_codebook,
    check_grid_value,
    check_training_range,
    restores_input_attributes,
)
from .exceptions import BackendUnavailableError
from .grids import TOPOLOGIES, Grid
from .initialisation import INIT_METHODS, initial_codebook
from .neighbourhoods import NEIGHBOURHOODS, PAPER_NEIGHBOURHOODS, SIGNED_NEIGHBOURHOODS, Neighbourhood
from .schedules import SCHEDULES, Schedule

__all__ = ["KSOM"]

ALGORITHMS = ("online", "batch", "minibatch")
BACKENDS = ("cpu", "cuda")

#: Fitted attributes that together are the estimator's learned state (what save/load keeps).
FITTED_STATE = (
    "codebook_",
    "grid_",
    "n_features_in_",
    "n_steps_",
    "n_iter_",
    "ema_count_",
    "ema_sum_",
    "unit_counts_",
    "_horizon",
    "_rng_state",
)


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
        "update": [StrOptions({"all", "written"})],
        "init": [StrOptions(set(INIT_METHODS)), "array-like"],
        "backend": [StrOptions(set(BACKENDS))],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
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
        grid = self._make_grid()
        self._check_options()
        check_fit_memory(self, grid)
        return grid

    def _make_grid(self) -> Grid:
        check_grid_value(self.grid)
        if isinstance(self.grid, (Integral, np.integer)):
            return Grid.from_size(int(self.grid), self.grid_dim, self.topology, self.periodic)
        shape = np.asarray(self.grid)
        if shape.ndim != 1 or shape.size == 0 or not np.issubdtype(shape.dtype, np.integer):
            raise ValueError(f"grid={self.grid!r} must be a tuple of positive ints or an int.")
        return Grid(tuple(int(s) for s in shape), self.topology, self.periodic)

    def _check_options(self) -> None:
        """Cross-parameter checks that the declarative constraints cannot express."""
        if self.backend == "cuda":
            # numba.cuda is imported here, only when the CUDA backend is asked for.
            from ._cuda_engine import require_cuda

            require_cuda()
        if self.neighbourhood in SIGNED_NEIGHBOURHOODS and self.algorithm != "online":
            raise ValueError(
                f"neighbourhood={self.neighbourhood!r} has negative weights, which make the "
                f"smoothed counts of algorithm={self.algorithm!r} meaningless; use "
                "algorithm='online'."
            )
        if self.learning_rate == "inverse_count" and self.algorithm != "online":
            raise ValueError(
                "learning_rate='inverse_count' applies to algorithm='online' only, got "
                f"algorithm={self.algorithm!r}."
            )
        if self.algorithm == "minibatch":
            check_ema_settings(decay=self.decay, eps=self.eps, init_count=self.init_count, update=self.update)

    def _resolve_neighbourhood(self, grid: Grid, horizon: float) -> Neighbourhood:
        kind = self.neighbourhood
        if self.radius is not None:
            radius = float(self.radius)
        elif kind == "exponential":
            radius = 10.0
        elif kind in PAPER_NEIGHBOURHOODS or kind == "none":
            radius = 1.0
        else:
            radius = max(max(grid.shape) / 2.0, 1.0)
        schedule = self.radius_schedule or (
            "inverse_time" if kind in PAPER_NEIGHBOURHOODS or kind == "none" else "exponential"
        )
        radius_final = 0.5 if self.radius_final is None else float(self.radius_final)
        return Neighbourhood(
            kind,
            Schedule(schedule, radius, radius_final, float(self.shrink), horizon),
            float(self.shrink),
        )

    def _resolve_learning_rate(self, horizon: float) -> Schedule | str:
        if isinstance(self.learning_rate, str):
            return self.learning_rate
        return Schedule(
            self.learning_rate_schedule or "exponential",
            float(self.learning_rate),
            float(self.learning_rate_final),
            float(self.shrink),
            horizon,
        )

    def _steps_per_pass(self, n_samples: int) -> int:
        if self.algorithm == "online":
            return n_samples
        if self.algorithm == "minibatch":
            return math.ceil(n_samples / self.batch_size)
        return 1

    def _new_rng(self) -> np.random.Generator:
        seed = self.random_state
        if isinstance(seed, np.random.RandomState):
            seed = int(seed.randint(np.iinfo(np.int32).max))
        return np.random.default_rng(seed)

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
        X = self._validate_training_data(X, reset=True)
        self._check_options()
        check_training_range(X)
        grid = self._make_grid()
        check_fit_memory(self, grid, X.shape)
        state = self._initial_state(X, grid)
        horizon = max(self.n_epochs * self._steps_per_pass(X.shape[0]) - 1, 1)
        state["_horizon"] = float(horizon)
        rng = state.pop("rng")
        for epoch in range(self.n_epochs):
            order = rng.permutation(X.shape[0])
            sq_error = self._one_pass(X, order, grid, state)
            state["n_iter_"] = epoch + 1
            self._report(epoch + 1, self.n_epochs, sq_error / X.shape[0], state["n_steps_"])
            if callback is not None:
                callback(epoch + 1, self.n_epochs, sq_error / X.shape[0], state["codebook_"])
        state["_rng_state"] = rng.bit_generator.state
        check_finite_codebook(self, state["codebook_"], X)
        state["labels_"] = self._labels(X, state["codebook_"])
        self._commit(state)
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

        Returns
        -------
        self
        """
        first = not hasattr(self, "codebook_")
        X = self._validate_training_data(X, reset=first)
        self._check_options()
        check_training_range(X)
        if first:
            grid = self._make_grid()
            check_fit_memory(self, grid, X.shape)
            state = self._initial_state(X, grid)
            state["_horizon"] = float(max(self.n_epochs * self._steps_per_pass(X.shape[0]) - 1, 1))
            rng = state.pop("rng")
            state["_rng_state"] = rng.bit_generator.state
        else:
            grid = self._make_grid()
            if grid != self.grid_:
                raise ValueError(
                    f"the grid changed since the first partial_fit: fitted {self.grid_!r}, "
                    f"now {grid!r}; call fit to start again."
                )
            state = {name: _copy(getattr(self, name)) for name in FITTED_STATE if hasattr(self, name)}
        X = X if X.dtype == state["codebook_"].dtype else X.astype(state["codebook_"].dtype)
        sq_error = self._one_pass(X, np.arange(X.shape[0]), grid, state)
        state["n_iter_"] = state.get("n_iter_", 0) + 1
        self._report(state["n_iter_"], None, sq_error / X.shape[0], state["n_steps_"])
        check_finite_codebook(self, state["codebook_"], X)
        # As MiniBatchKMeans.partial_fit: labels_ are this call's rows under the new codebook.
        state["labels_"] = self._labels(X, state["codebook_"])
        self._commit(state)
        return self

    def _initial_state(self, X: np.ndarray, grid: Grid) -> dict[str, Any]:
        rng = self._new_rng()
        codebook = initial_codebook(self.init, X, grid, rng)
        n_units = grid.n_units
        return {
            "rng": rng,
            "grid_": grid,
            "codebook_": codebook,
            "n_steps_": 0,
            "n_iter_": 0,
            # The paper's reference: m0 = w0 (whatever N0 is), N0 = init_count.
            "ema_count_": np.full(n_units, float(self.init_count)),
            "ema_sum_": codebook.astype(np.float64),
            "unit_counts_": np.full(n_units, float(self.init_count)),
        }

    def _one_pass(self, X: np.ndarray, order: np.ndarray, grid: Grid, state: dict) -> float:
        """One pass over ``X[order]`` of the configured algorithm; updates ``state``.

        Returns the sum of squared distances to the winners met during the pass (for
        online KSOM, measured once after the pass).
        """
        if self.backend == "cuda":
            return self._cuda_pass(X, order, grid, state)
        neighbourhood = self._resolve_neighbourhood(grid, state["_horizon"])
        if self.algorithm == "batch":
            stats = algorithms.unit_statistics(X, state["codebook_"])
            H = self._smoothing(neighbourhood, grid, state["n_steps_"])
            counts, sums = algorithms.smooth_statistics(H, stats.counts, stats.sums)
            state["codebook_"] = algorithms.batch_update(state["codebook_"], counts, sums)
            state["n_steps_"] += 1
            return stats.sq_error
        if self.algorithm == "minibatch":
            # Fused pass, in place on private copies made here (the state's arrays may be
            # shared with a callback or the user's init): published only when it returns.
            codebook = np.array(state["codebook_"], order="C", copy=True)
            ema_count = np.array(state["ema_count_"], dtype=np.float64, order="C", copy=True)
            ema_sum = np.array(state["ema_sum_"], dtype=np.float64, order="C", copy=True)
            sq_error = algorithms.minibatch_pass(
                X, order, codebook, ema_count, ema_sum, neighbourhood, grid, state["n_steps_"],
                batch_size=self.batch_size, decay=float(self.decay), eps=float(self.eps),
                update=self.update,
            )
            state["codebook_"], state["ema_count_"], state["ema_sum_"] = codebook, ema_count, ema_sum
            state["n_steps_"] += math.ceil(order.shape[0] / self.batch_size)
            return sq_error
        # online
        codebook = np.ascontiguousarray(state["codebook_"]).copy()
        algorithms.online_pass(
            X,
            codebook,
            order,
            None,  # grid distances: read from grid only by the kernels that need them
            neighbourhood,
            self._resolve_learning_rate(state["_horizon"]),
            state["unit_counts_"],
            state["n_steps_"],
            grid=grid,
        )
        state["codebook_"] = codebook
        state["n_steps_"] += order.shape[0]
        return float(algorithms.assign(X, codebook)[1].sum())

    # ------------------------------------------------------------------ backends
    def _engine(self):
        """The module doing the arithmetic: :mod:`somvq.algorithms`, or the CUDA engine."""
        if self.backend == "cuda":
            from . import _cuda_engine

            return _cuda_engine
        return algorithms

    def _validate_training_data(self, X, *, reset: bool):
        """``validate_data`` for fit/partial_fit; on "cuda", device inputs stay on the device."""
        if self.backend == "cuda":
            return self._engine().validate_training_data(self, X, reset=reset)
        return validate_data(self, X, dtype=[np.float64, np.float32], order="C", reset=reset)

    def _labels(self, X, codebook: np.ndarray) -> np.ndarray:
        """BMU of every row of ``X`` under ``codebook`` (host int64), on this backend."""
        if self.backend == "cuda":
            return self._engine().labels(self, X, codebook)
        return algorithms.assign(X, codebook)[0]

    def _cuda_pass(self, X, order: np.ndarray, grid: Grid, state: dict) -> float:
        """:meth:`_one_pass` on the GPU (the codebook stays on the device between calls)."""
        learning_rate = (
            self._resolve_learning_rate(state["_horizon"]) if self.algorithm == "online" else None
        )
        return self._engine().run_pass(
            self,
            X,
            order,
            grid,
            state,
            algorithm=self.algorithm,
            neighbourhood=self._resolve_neighbourhood(grid, state["_horizon"]),
            learning_rate=learning_rate,
            batch_size=int(self.batch_size),
            decay=float(self.decay),
            eps=float(self.eps),
            update=self.update,
        )

    @staticmethod
    def _smoothing(neighbourhood: Neighbourhood, grid: Grid, t: int):
        """``S -> H_t S`` of step t: separable, identity or dense, whichever is exact and cheapest."""
        return algorithms.neighbourhood_smoothing(neighbourhood, grid, t)

    def _commit(self, state: dict[str, Any]) -> None:
        """Publish the new fitted state at once: an interrupted fit leaves the old one."""
        for name, value in state.items():
            setattr(self, name, value)

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


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, (np.ndarray, dict)) else value
