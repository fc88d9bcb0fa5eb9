"""``SOMImputer``: a self-organising map as a scikit-learn imputer (docs/missing-values.md)."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin

from ._sklearn import check_is_fitted, validate_data
from .estimator import KSOM
from .parameters import DEFAULTS

__all__ = ["SOMImputer"]

#: KSOM's parameters that SOMImputer repeats (all but ``missing``, which is "ignore").
_KSOM_PARAMETERS = [
    p for p in inspect.signature(KSOM.__init__).parameters.values() if p.name not in ("self", "missing")
]


class SOMImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Fill missing values (NaN) from a self-organising map, in a scikit-learn Pipeline.

    ``fit(X)`` trains ``KSOM(missing="ignore", **params)`` on ``X`` (the map is
    ``som_``); ``transform(X)`` returns ``som_.impute(X)``: each NaN replaced by the
    corresponding entry of its row's best-matching unit, found over the row's observed
    features. Observed entries are unchanged.

    Parameters
    ----------
    grid, **params
        Every :class:`somvq.KSOM` parameter except ``missing`` (always ``"ignore"``), with
        KSOM's defaults; ``max_missing`` bounds the fraction of missing features per row.

    Attributes
    ----------
    som_ : KSOM
        The fitted map.
    n_features_in_ : int
    feature_names_in_ : ndarray of str (when fitted on a DataFrame with string columns)

    Examples
    --------
    >>> import numpy as np
    >>> from somvq import SOMImputer
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> X[::7, 1] = np.nan
    >>> filled = SOMImputer(grid=(3, 3), random_state=0).fit_transform(X)
    >>> bool(np.isnan(filled).any())
    False
    """

    _parameter_constraints: dict = {k: v for k, v in KSOM._parameter_constraints.items() if k != "missing"}

    def __init__(self, grid: Any = DEFAULTS["grid"], **params: Any) -> None:
        self.grid = grid
        for parameter in _KSOM_PARAMETERS[1:]:
            setattr(self, parameter.name, params.pop(parameter.name, parameter.default))
        if params:
            raise TypeError(f"SOMImputer got unexpected parameter(s) {sorted(params)}.")

    # scikit-learn reads the parameters from the signature: KSOM's, less ``missing``.
    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *_KSOM_PARAMETERS]
    )

    def fit(self, X: Any, y: Any = None) -> SOMImputer:
        """Train the map on ``X`` (NaN allowed) and return self."""
        self._validate_params()  # named as this estimator's, not the inner KSOM's
        self.som_: KSOM = KSOM(missing="ignore", **self.get_params()).fit(X)
        self.n_features_in_ = self.som_.n_features_in_
        if hasattr(self.som_, "feature_names_in_"):
            self.feature_names_in_ = self.som_.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``X`` with each NaN replaced from its row's best-matching unit (a new array)."""
        check_is_fitted(self, "som_")
        # the feature count and names checked as this estimator's (the map's messages say KSOM)
        if len(getattr(X, "shape", ())) == 2:  # arrays, frames (the rest: the map's checks)
            validate_data(self, X, reset=False, skip_check_array=True)
        with warnings.catch_warnings():  # said once, above, not again for the inner map
            warnings.filterwarnings("ignore", "X (does not have valid|has) feature names", UserWarning)
            return self.som_.impute(X)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
