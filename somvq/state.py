"""The learned state of a map, as one value.

A :class:`FittedState` is what an engine updates during a pass and what
:meth:`somvq.KSOM.set_fitted_state` publishes as the estimator's fitted attributes, all at
once (an interrupted fit leaves the old state). Everything that gives an estimator a state
goes through that one method: ``fit`` and ``partial_fit``, :func:`somvq.load`, the torch
plugin's ``to_estimator`` and the dask estimator's conversions.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from .grids import Grid

__all__ = ["FittedState", "FITTED_STATE", "ATTRIBUTE_NAMES"]

#: Field of :class:`FittedState` -> the estimator attribute that holds it.
ATTRIBUTE_NAMES = {
    "codebook": "codebook_",
    "grid": "grid_",
    "n_features_in": "n_features_in_",
    "n_steps": "n_steps_",
    "n_iter": "n_iter_",
    "ema_count": "ema_count_",
    "ema_sum": "ema_sum_",
    "unit_counts": "unit_counts_",
    "horizon": "_horizon",
    "rng_state": "_rng_state",
    "labels": "labels_",
    "layer_weights": "layer_weights_",
    "layer_layout": "_layer_layout",
}

#: Fitted attributes that together are the estimator's learned state (what save/load keeps);
#: ``layer_weights_`` (layered maps only) is kept too but is absent from other maps.
FITTED_STATE = tuple(
    name
    for field, name in ATTRIBUTE_NAMES.items()
    if field not in ("labels", "layer_weights", "layer_layout")
)


@dataclass
class FittedState:
    """Codebook, EMA state, hit counts and step counter of a map, and what they depend on.

    Attributes
    ----------
    codebook : ndarray (K, D), the data's dtype (``codebook_``)
    grid : Grid (``grid_``)
    n_features_in : int (``n_features_in_``)
    ema_count, ema_sum : float64 ndarrays (K,), (K, D): mini-batch EMA state N, m
        (N is (K, D) after a masked mini-batch step, ``missing="ignore"``)
    unit_counts : float64 ndarray (K,): online hit counts
    n_steps : int, updates applied so far (t); n_iter : int, epochs or calls run
    horizon : float, of the "exponential" and "linear" schedules (``_horizon``)
    rng_state : dict, the generator's state after the last ``fit`` (``_rng_state``)
    labels : BMU of the rows of the last call, or None (``labels_``)
    layer_weights : float64 ndarray (L,): a layered map's resolved layer weights, or None
        (``layer_weights_``; see :mod:`somvq.layers`)
    layer_layout : the columns and distances of those layers (:func:`somvq.layers.layout`),
        or None (``_layer_layout``)

    A field that is None is not part of the state: the attribute is removed.
    """

    codebook: np.ndarray
    grid: Grid
    n_features_in: int | None = None
    ema_count: np.ndarray | None = None
    ema_sum: np.ndarray | None = None
    unit_counts: np.ndarray | None = None
    n_steps: int = 0
    n_iter: int = 0
    horizon: float | None = None
    rng_state: dict | None = None
    labels: Any = None
    layer_weights: np.ndarray | None = None
    layer_layout: tuple | None = None

    @classmethod
    def initial(cls, codebook: np.ndarray, grid: Grid, *, init_count: float, horizon: float) -> FittedState:
        """The state before the first update: the paper's ``m0 = w0`` (whatever N0 is), ``N0 = init_count``."""
        n_units = grid.n_units
        return cls(
            codebook=codebook,
            grid=grid,
            n_features_in=int(codebook.shape[1]),
            ema_count=np.full(n_units, float(init_count)),
            ema_sum=codebook.astype(np.float64),
            unit_counts=np.full(n_units, float(init_count)),
            horizon=float(horizon),
        )

    def match_ema_to_codebook(self) -> None:
        """Set ``ema_sum = ema_count * codebook`` (the paper's ``m = N w``, which (E4) keeps).

        Batch and online passes move the codebook without touching the EMA state; without
        this, a later mini-batch ``partial_fit`` would continue from the initial codebook's
        ``m`` and pull the map back toward it.
        """
        if self.ema_count is None:
            return
        count = np.reshape(self.ema_count, (self.codebook.shape[0], -1))  # (K, 1) or (K, D)
        self.ema_sum = count * np.asarray(self.codebook, dtype=np.float64)

    @classmethod
    def of(cls, estimator: Any) -> FittedState:
        """A copy of ``estimator``'s fitted state (arrays copied; a non-NumPy ``labels_`` left out)."""
        values = {}
        for field, name in ATTRIBUTE_NAMES.items():
            value = getattr(estimator, name, None)
            if field == "labels" and not isinstance(value, np.ndarray):
                value = None
            if value is not None:  # absent: the field's default
                values[field] = _copy(value)
        return cls(**values)

    def publish(self, estimator: Any) -> None:
        """Set the attributes of ``estimator`` (see :meth:`somvq.KSOM.set_fitted_state`)."""
        for field in fields(self):
            name = ATTRIBUTE_NAMES[field.name]
            value = getattr(self, field.name)
            if value is not None:
                setattr(estimator, name, value)
            elif name in vars(estimator):
                delattr(estimator, name)

    def copy(self) -> FittedState:
        return replace(self, **{f.name: _copy(getattr(self, f.name)) for f in fields(self)})


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, (np.ndarray, dict)) else value
