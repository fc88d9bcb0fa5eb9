"""Multi-layer maps (R kohonen's ``supersom``): layers of columns, weights and distances.

A layered map splits the D columns into layers ``l`` (every column in exactly one layer),
each with a weight ``w_l >= 0`` and a distance ``d_l``; the distance of a row ``x`` to a
unit ``c`` is the weighted sum

    d(x, c) = sum_l w_l d_l(x_l, c_l)

with ``d_l`` one of

* ``"sqeuclidean"``: ``||x_l - c_l||^2``;
* ``"tanimoto"`` (kohonen's, for binary / one-hot columns, x in {0, 1}): the fraction of
  mismatching bits between ``x_l`` and the unit's vector thresholded at 0.5,
  ``b_l = (c_l > 0.5)``: ``(sum x_l + sum b_l - 2 x_l . b_l) / D_l``. On binary ``x`` and
  ``b`` this is ``||x_l - b_l||^2 / D_l``.

So both are squared Euclidean distances after a per-column scaling (``sqrt(w_l)``, or
``sqrt(w_l / D_l)`` for tanimoto) of the data and of the unit's *search vector* (the
codebook, tanimoto columns thresholded): :func:`column_scale` and :func:`search_codebook`.
The BMU search of every engine then runs unchanged, exactly, on the scaled copies
(:func:`layered_assign`); the updates are the usual means of the assigned rows.
:func:`layered_distances` is the definition, written directly (the tests hold the fast
path equal to it).

``"balanced"`` weights (kohonen's ``normalizeDataLayers`` idea: each layer contributes
equally): ``w_l = 1 / m_l`` with ``m_l`` the mean distance ``d_l`` of the training rows to
the layer's column means (tanimoto: to the means thresholded at 0.5); a layer whose
``m_l`` is 0 (constant columns) gets ``w_l = 1``. See :func:`resolve_layers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

__all__ = [
    "LAYER_DISTANCES",
    "Layers",
    "check_layers",
    "resolve_layers",
    "layered_distances",
    "column_scale",
    "search_codebook",
    "layered_assign",
]

LAYER_DISTANCES = ("sqeuclidean", "tanimoto")


@dataclass(frozen=True)
class Layers:
    """The resolved layers of a fitted map: column indices, weights and distances."""

    columns: tuple[np.ndarray, ...]
    weights: np.ndarray  # float64 (L,)
    distances: tuple[str, ...]
    n_features: int

    @property
    def has_tanimoto(self) -> bool:
        return "tanimoto" in self.distances

    def tanimoto_mask(self) -> np.ndarray:
        mask = np.zeros(self.n_features, dtype=bool)
        for cols, dist in zip(self.columns, self.distances):
            if dist == "tanimoto":
                mask[cols] = True
        return mask


def check_layers(layers: Any, layer_weights: Any, layer_distances: Any, n_features: int) -> tuple:
    """Validate the three parameters against ``n_features``; return (columns, weights, distances).

    ``weights`` is a float64 array, or the string ``"balanced"``. Raises ValueError naming
    the problem and the value.
    """
    if layers is None:
        if layer_weights is not None or layer_distances is not None:
            raise ValueError(
                f"layer_weights={layer_weights!r} / layer_distances={layer_distances!r} need "
                "layers (a list of column-index lists); got layers=None."
            )
        return None
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or len(layers) == 0:
        raise ValueError(f"layers={layers!r} must be a non-empty list of column-index lists.")
    columns = []
    owner = {}
    for i, layer in enumerate(layers):
        cols = np.asarray(layer)
        if cols.ndim != 1 or cols.size == 0 or not np.issubdtype(cols.dtype, np.integer):
            raise ValueError(f"layers[{i}]={layer!r} must be a non-empty list of column indices (ints).")
        for c in cols.tolist():
            if c < 0 or c >= n_features:
                raise ValueError(
                    f"layers[{i}] holds column {c}, outside 0..{n_features - 1} (the data has "
                    f"{n_features} columns)."
                )
            if c in owner:
                raise ValueError(
                    f"column {c} is in layers[{owner[c]}] and layers[{i}]: every column belongs to one layer."
                )
            owner[c] = i
        columns.append(cols.astype(np.int64))
    missing = sorted(set(range(n_features)) - set(owner))
    if missing:
        raise ValueError(
            f"column(s) {missing[:10]}{' ...' if len(missing) > 10 else ''} are in no layer: "
            "every column must belong to exactly one layer."
        )
    n_layers = len(columns)
    if layer_distances is None:
        distances = ("sqeuclidean",) * n_layers
    else:
        if isinstance(layer_distances, str) or len(layer_distances) != n_layers:
            raise ValueError(
                f"layer_distances={layer_distances!r} must be a list of {n_layers} names (one per layer)."
            )
        for i, d in enumerate(layer_distances):
            if d not in LAYER_DISTANCES:
                raise ValueError(f"layer_distances[{i}]={d!r} is not one of {list(LAYER_DISTANCES)}.")
        distances = tuple(layer_distances)
    if layer_weights is None:
        weights = np.ones(n_layers)
    elif isinstance(layer_weights, str):
        if layer_weights != "balanced":
            raise ValueError(f"layer_weights={layer_weights!r}: use a list of floats or 'balanced'.")
        weights = "balanced"
    else:
        if len(layer_weights) != n_layers:
            raise ValueError(
                f"layer_weights={layer_weights!r} has {len(layer_weights)} values for {n_layers} layers."
            )
        for i, w in enumerate(layer_weights):
            if (
                isinstance(w, bool)
                or not isinstance(w, (Real, np.floating, np.integer))
                or not np.isfinite(w)
                or w < 0
            ):
                raise ValueError(f"layer_weights[{i}]={w!r} must be a finite number >= 0.")
        weights = np.asarray(layer_weights, dtype=np.float64)
        if not np.any(weights > 0):
            raise ValueError(f"layer_weights={layer_weights!r}: at least one layer needs a positive weight.")
    return tuple(columns), weights, distances


def _check_binary(X: np.ndarray, columns, distances) -> None:
    for i, (cols, dist) in enumerate(zip(columns, distances)):
        if dist != "tanimoto":
            continue
        values = np.asarray(X[:, cols])
        bad = (values != 0) & (values != 1)
        if np.any(bad):
            row, j = np.argwhere(bad)[0]
            value = values[row, j].item()
            raise ValueError(
                f"layer {i} uses the tanimoto distance, which needs binary (0/1) values; it "
                f"holds {value!r} (row {row}, column {cols[j]}). One-hot encode categorical columns (OneHotEncoder)."
            )


def _layer_distance(Xl: np.ndarray, Cl: np.ndarray, dist: str) -> np.ndarray:
    """The per-layer distance matrix (n, K) of the definition (float64, written directly)."""
    Xl = np.asarray(Xl, dtype=np.float64)
    Cl = np.asarray(Cl, dtype=np.float64)
    if dist == "sqeuclidean":
        return ((Xl[:, None, :] - Cl[None, :, :]) ** 2).sum(axis=2)
    b = (Cl > 0.5).astype(np.float64)
    return (Xl[:, None, :] != b[None, :, :]).mean(axis=2)


def resolve_layers(layers, layer_weights, layer_distances, X: np.ndarray) -> Layers | None:
    """The :class:`Layers` of the parameters on training data ``X`` (weights resolved), or None."""
    n_features = X.shape[1]
    checked = check_layers(layers, layer_weights, layer_distances, n_features)
    if checked is None:
        return None
    columns, weights, distances = checked
    _check_binary(X, columns, distances)
    if isinstance(weights, str):  # balanced
        values = []
        for cols, dist in zip(columns, distances):
            Xl = np.asarray(X[:, cols], dtype=np.float64)
            centre = Xl.mean(axis=0)[None, :]
            m = float(_layer_distance(Xl, centre, dist).mean())
            values.append(1.0 / m if m > 0 else 1.0)
        weights = np.asarray(values)
    return Layers(columns, np.asarray(weights, dtype=np.float64), distances, n_features)


def with_weights(spec: Layers, weights: np.ndarray) -> Layers:
    return Layers(spec.columns, np.asarray(weights, dtype=np.float64), spec.distances, spec.n_features)


def select_layers(spec: Layers, which: Any) -> Layers:
    """``spec`` with the weights of the layers not in ``which`` (kohonen's whatmap) set to 0."""
    if which is None:
        return spec
    n_layers = len(spec.columns)
    keep = np.zeros(n_layers, dtype=bool)
    for i in which:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n_layers:
            raise ValueError(f"predict_layers={which!r} holds {i!r}, not a layer index in 0..{n_layers - 1}.")
        keep[i] = True
    weights = np.where(keep, spec.weights, 0.0)
    if not np.any(weights > 0):
        raise ValueError(f"predict_layers={which!r} selects only layers of weight 0: no distance is left.")
    return with_weights(spec, weights)


def layered_distances(X: np.ndarray, codebook: np.ndarray, spec: Layers) -> np.ndarray:
    """The definition: ``sum_l w_l d_l(x_l, c_l)`` for every row and unit, (n, K) float64."""
    total = np.zeros((X.shape[0], codebook.shape[0]))
    for cols, w, dist in zip(spec.columns, spec.weights, spec.distances):
        if w == 0:
            continue
        total += w * _layer_distance(X[:, cols], codebook[:, cols], dist)
    return total


def column_scale(spec: Layers) -> np.ndarray:
    """Per-column factor ``s`` with ``d(x, c) = ||s x - s c'||^2`` (``c'``: the search vector)."""
    scale = np.empty(spec.n_features, dtype=np.float64)
    for cols, w, dist in zip(spec.columns, spec.weights, spec.distances):
        scale[cols] = np.sqrt(w / cols.size) if dist == "tanimoto" else np.sqrt(w)
    return scale


def search_codebook(
    codebook: np.ndarray, spec: Layers, scale: np.ndarray | None = None, *, scaled: bool = False
) -> np.ndarray:
    """The codebook the BMU search compares the scaled rows with: scaled, tanimoto columns thresholded.

    ``scaled=True``: ``codebook`` is already in scaled units (a layered fit's working copy),
    where the threshold 0.5 becomes ``0.5 s``.
    """
    scale = column_scale(spec) if scale is None else scale
    out = codebook.astype(np.float64) if scaled else codebook.astype(np.float64) * scale
    if spec.has_tanimoto:
        mask = spec.tanimoto_mask()
        threshold = 0.5 * scale[mask]
        original = codebook[:, mask] > (threshold if scaled else 0.5)
        out[:, mask] = np.where(original, scale[mask], 0.0)
    return out.astype(codebook.dtype, copy=False)


def layered_assign(X: np.ndarray, codebook: np.ndarray, spec: Layers) -> tuple[np.ndarray, np.ndarray]:
    """BMU (int64) and layered distance (float64) of every row: the fast path of the definition.

    The rows and the search codebook are scaled per column once, then the exact BMU
    kernel of :func:`somvq.algorithms.assign` runs on them.
    """
    from . import algorithms

    scale = column_scale(spec)
    Xs = (X * scale.astype(X.dtype, copy=False)).astype(X.dtype, copy=False)
    return algorithms.assign(
        np.ascontiguousarray(Xs), np.ascontiguousarray(search_codebook(codebook, spec, scale))
    )
