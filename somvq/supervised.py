"""Supervised maps (R kohonen's ``xyf``): :class:`KSOMClassifier` and :class:`KSOMRegressor`.

One map is trained on two layers, the inputs X and the targets Y (one-hot classes, or the
standardized target), with the layered :class:`somvq.KSOM` (:mod:`somvq.layers`); the
prediction of a row is the Y part of its best-matching unit found on X alone (kohonen's
``whatmap = 1``). The layer weights are "balanced" (each layer's weight is 1 over the mean
squared distance of its rows to the layer's mean, so both contribute equally), then the
Y layer's is multiplied by ``y_weight``. See docs/supervised.md.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, cast

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from . import algorithms, missing
from ._moments import column_moments
from ._sklearn import Interval, StrOptions, _fit_context, check_is_fitted
from ._validation import in_map_dtype, restores_input_attributes, validate_rows
from .estimator import KSOM
from .grids import TOPOLOGIES
from .initialisation import INIT_METHODS
from .neighbourhoods import NEIGHBOURHOODS
from .parameters import ALGORITHMS, BACKENDS, MIN_RADIUS

__all__ = ["KSOMClassifier", "KSOMRegressor"]

#: KSOM parameters the supervised maps pass to their map unchanged (the others above are
#: their own: the map's layers, weights and predict_layers are set by the estimator).
_MAP_PARAMETERS = (
    "periodic",
    "radius_final",
    "radius_schedule",
    "shrink",
    "learning_rate",
    "batch_size",
    "decay",
    "tol",
)

_SHARED_DOC = """
    Parameters
    ----------
    grid : tuple of int, int or "auto", default="auto"
        Map shape, or number of units, or ``"auto"``: the SOM Toolbox's size rule from the
        training rows (``ceil(5 n^0.54321)`` units, the side ratio from the data's two
        main axes; see :class:`somvq.KSOM`). "auto" was more accurate than the fixed sizes
        tried on digits, wine and Fashion-MNIST (docs/supervised.md); the fit costs grow
        with the number of units (about 2,000 for 60,000 rows).
    topology : {"rectangular", "hexagonal"}, default="rectangular"
    neighbourhood : str, default="gaussian"
    radius : float, default=None
        Initial radius (``None``: half the longest grid side).
    algorithm : {"batch", "minibatch", "online"}, default="batch"
    n_epochs : int, default=20
    init : {"random", "normal", "sample", "pca"}, default="random"
    y_weight : float, default=1.0
        Weight of the target layer relative to the inputs' (after both are balanced:
        1 means equal contributions; 0 trains an unsupervised map on X whose units then
        carry the smoothed target means).
    backend : {"cpu", "cuda"}, default="cpu"
    random_state : int, RandomState instance or None, default=None
    missing : {"error", "ignore"}, default="error"
        ``"ignore"``: NaN in X marks missing inputs (y must still be complete). The map is
        trained with ``KSOM(missing="ignore")`` (kohonen's rule in the X layer: the distance
        over a row's observed inputs, scaled by ``n_inputs / n_observed``; updates from
        observed entries only), and a row is predicted from the BMU found on its observed
        inputs. CPU and CUDA backends. See docs/missing-values.md.
    max_missing : float in [0, 1], default=0.5
        With ``missing="ignore"``: training rows missing more than this fraction of their
        inputs are an error naming them.
    periodic, radius_final, radius_schedule, shrink, learning_rate, batch_size, decay, tol
        Passed to the map unchanged, with :class:`somvq.KSOM`'s defaults and meaning.

    Attributes
    ----------
    som_ : KSOM
        The trained map on ``[X, Y]`` (``layers=[X columns, Y columns]``,
        ``predict_layers=[0]``).
    n_features_in_ : int
"""


class _XYF(BaseEstimator):
    _parameter_constraints: dict = {
        "grid": [Interval(Integral, 1, None, closed="left"), "array-like", StrOptions({"auto"})],
        "topology": [StrOptions(set(TOPOLOGIES))],
        "neighbourhood": [StrOptions(set(NEIGHBOURHOODS))],
        "radius": [Interval(Real, MIN_RADIUS, None, closed="left"), None],
        "algorithm": [StrOptions(set(ALGORITHMS))],
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions(set(INIT_METHODS))],
        "y_weight": [Interval(Real, 0, None, closed="left")],
        "backend": [StrOptions(set(BACKENDS))],
        "random_state": ["random_state"],
        "missing": [StrOptions({"error", "ignore"})],
        "max_missing": [Interval(Real, 0, 1, closed="both")],
        # passed to the map as they are: KSOM's own constraints
        **{name: KSOM._parameter_constraints[name] for name in _MAP_PARAMETERS},
    }

    def __init__(
        self,
        grid: int | tuple[int, ...] | str = "auto",
        *,
        topology: str = "rectangular",
        neighbourhood: str = "gaussian",
        radius: float | None = None,
        algorithm: str = "batch",
        n_epochs: int = 20,
        init: str = "random",
        y_weight: float = 1.0,
        backend: str = "cpu",
        random_state: Any = None,
        missing: str = "error",
        max_missing: float = 0.5,
        periodic: Any = False,
        radius_final: float | None = None,
        radius_schedule: str | None = None,
        shrink: float = 0.1,
        learning_rate: float | str = 0.5,
        batch_size: int = 256,
        decay: float | str = "auto",
        tol: float | None = None,
    ) -> None:
        self.grid = grid
        self.topology = topology
        self.neighbourhood = neighbourhood
        self.radius = radius
        self.algorithm = algorithm
        self.n_epochs = n_epochs
        self.init = init
        self.y_weight = y_weight
        self.backend = backend
        self.random_state = random_state
        self.missing = missing
        self.max_missing = max_missing
        self.periodic = periodic
        self.radius_final = radius_final
        self.radius_schedule = radius_schedule
        self.shrink = shrink
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.decay = decay
        self.tol = tol

    def _validate_xy(self, X: Any, y: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        """``validate_data`` of ``fit``: NaN allowed in X (only) with ``missing="ignore"``."""
        X, y = validate_rows(
            self, X, y, max_missing=self.max_missing, dtype=[np.float64, np.float32], **kwargs
        )
        return X, y

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.missing == "ignore"
        return tags

    def _fit_map(self, X: np.ndarray, Y: np.ndarray) -> KSOM:
        """The map trained on ``[X, Y]``; nothing is written on the estimator (see ``_commit``)."""
        n_x, n_y = X.shape[1], Y.shape[1]
        weights = [_balanced(X), self.y_weight * _balanced(Y)]
        if weights[0] == 0 and weights[1] == 0:
            weights[0] = 1.0
        som = KSOM(
            self.grid,
            topology=self.topology,
            neighbourhood=self.neighbourhood,
            radius=self.radius,
            algorithm=self.algorithm,
            n_epochs=self.n_epochs,
            init=self.init,
            backend=self.backend,
            random_state=self.random_state,
            layers=[list(range(n_x)), list(range(n_x, n_x + n_y))],
            layer_weights=weights,
            predict_layers=[0],
            missing=self.missing,
            max_missing=self.max_missing,
            **{name: getattr(self, name) for name in _MAP_PARAMETERS},
        ).fit(np.hstack([X, Y.astype(X.dtype)]))
        return cast(KSOM, som)

    def _commit(self, som: KSOM, n_x: int, **fitted: Any) -> None:
        """Publish a fit's result, only once its map is trained: all attributes at once.

        ``fit`` computes everything it learns (``classes_``, ``y_mean_``, ...) into locals
        and writes nothing before the map's training succeeded, so an exception there (a
        ValueError, a KeyboardInterrupt) leaves the estimator as it was: fitted with the
        previous model, or unfitted. ``restores_input_attributes`` puts back what
        ``validate_data`` records first (``n_features_in_``, ``feature_names_in_``). One
        ``dict.update``: no interrupt can land between two of the attributes.
        """
        self.__dict__.update(fitted, som_=som, _n_x=n_x)

    def _target_part(self, X: Any) -> np.ndarray:
        """The Y part (float64) of each row's BMU, found on the X columns alone."""
        check_is_fitted(self, "som_")
        # missing="ignore": inf and rows with no observed input refused; any fraction maps
        X = validate_rows(self, X, dtype=[np.float64, np.float32], reset=False)
        codebook: np.ndarray = self.som_.codebook_
        inputs = np.ascontiguousarray(codebook[:, : self._n_x])
        if self.missing == "ignore" and missing.has_missing(X):  # (refused otherwise: no scan)
            bmu = missing.masked_assign(in_map_dtype(X, codebook.dtype), inputs)[0]
        else:
            bmu = algorithms.assign(in_map_dtype(X, codebook.dtype), inputs)[0]
        return codebook[bmu, self._n_x :].astype(np.float64)


def _balanced(Y: np.ndarray) -> float:
    """1 / mean squared distance of the rows to their mean (1 when that is 0)."""
    Y = np.asarray(Y, dtype=np.float64)
    if np.isnan(Y).any():  # missing="ignore": kohonen's masked distance, D / n_obs times the observed sum
        observed = ~np.isnan(Y)
        squares = np.where(observed, Y - np.nanmean(Y, axis=0), 0.0) ** 2
        m = float((squares.sum(axis=1) * Y.shape[1] / observed.sum(axis=1)).mean())
        return 1.0 / m if m > 0 else 1.0
    m = float(((Y - Y.mean(axis=0)) ** 2).sum(axis=1).mean())
    return 1.0 / m if m > 0 else 1.0


class KSOMClassifier(ClassifierMixin, _XYF):
    __doc__ = (
        """Classification with a supervised SOM (kohonen's xyf): X and the one-hot classes as two layers.

    ``predict`` returns the class whose entry of the BMU's target vector is largest, the BMU
    found on X alone; ``predict_proba`` that vector clipped at 0 and renormalised.
    """
        + _SHARED_DOC
        + """    classes_ : ndarray of shape (n_classes,)

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from somvq import KSOMClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = KSOMClassifier(grid=(6, 6), random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """
    )

    @restores_input_attributes
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> KSOMClassifier:
        """Train the map on ``X`` and the one-hot ``y``; returns self."""
        X, y = self._validate_xy(X, y)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(
                f"KSOMClassifier needs at least two classes; y holds one class only "
                f"(1 class: {classes.tolist()!r})."
            )
        som = self._fit_map(X, np.eye(classes.size)[codes])
        self._commit(som, X.shape[1], classes_=classes)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """The BMU's class vector, clipped at 0 and renormalised (uniform when all 0)."""
        P = np.clip(self._target_part(X), 0.0, None)
        total = P.sum(axis=1, keepdims=True)
        uniform = np.full_like(P, 1.0 / P.shape[1])
        return cast(np.ndarray, np.where(total > 0, P / np.where(total > 0, total, 1.0), uniform))

    def predict(self, X: Any) -> np.ndarray:
        """The class of each row: argmax of its BMU's class vector (found on X alone)."""
        check_is_fitted(self, "som_")
        return cast(np.ndarray, self.classes_[np.argmax(self._target_part(X), axis=1)])


class KSOMRegressor(RegressorMixin, _XYF):
    __doc__ = (
        """Regression with a supervised SOM (kohonen's xyf): X and the standardized y as two layers.

    ``predict`` returns the BMU's target value (de-standardized), the BMU found on X alone.
    """
        + _SHARED_DOC
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from somvq import KSOMRegressor
    >>> X = np.linspace(0, 1, 200)[:, None]
    >>> reg = KSOMRegressor(grid=(20,), random_state=0).fit(X, np.sin(6 * X[:, 0]))
    >>> reg.score(X, np.sin(6 * X[:, 0])) > 0.9
    True
    """
    )

    @restores_input_attributes
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> KSOMRegressor:
        """Train the map on ``X`` and the standardized ``y``; returns self."""
        X, y = self._validate_xy(X, y, y_numeric=True)
        y = column_or_1d(y, warn=True).astype(np.float64)
        # y.mean() / y.std()'s bits in the usual range, and finite, non-zero moments for |y|
        # beyond ~1e154 (the variance overflowed: NaN predictions) or below ~1e-154 (it
        # underflowed: the target was ignored)
        mean, std = (float(v[0]) for v in column_moments(y[:, None]))
        scale = std if std > 0 else 1.0
        som = self._fit_map(X, ((y - mean) / scale)[:, None])
        self._commit(som, X.shape[1], y_mean_=mean, y_scale_=scale)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The BMU's target value (found on X alone), in y's units."""
        return cast(np.ndarray, self._target_part(X)[:, 0] * self.y_scale_ + self.y_mean_)
