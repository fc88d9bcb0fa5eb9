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

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from . import distances

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

#: The tanimoto threshold: a unit's bit is 1 where its value is above 0.5. Compared with a
#: relative margin of 1e-12 so that a mean of bits equal to 1/2 (common with few rows per
#: unit), which the scaled working copy of a fit holds as ``0.5 s`` up to rounding, stays
#: at 1/2 (bit 0) in training, in ``predict`` and in the definition alike.
TANIMOTO_LEVEL = 0.5 * (1.0 + 1e-12)


def scaled_level(scale: np.ndarray, dtype: Any) -> np.ndarray:
    """:data:`TANIMOTO_LEVEL` in the scaled units of a fit's working copy, exactly.

    Per column, the largest value ``v`` of ``dtype`` whose quotient ``v / s`` (``s`` the
    column's scale in ``dtype``, divided in ``dtype``, as the fitted codebook is unscaled)
    is not above :data:`TANIMOTO_LEVEL`. So ``w > level`` in scaled units is the very test
    ``w / s > TANIMOTO_LEVEL`` that ``predict`` and the definition make on the fitted
    codebook: ``0.5 s`` in float64, rounded, was not (a float32 ``s`` rounded up put a unit
    of exactly 1/2 above it in training only).
    """
    dtype = np.dtype(dtype)
    s = np.asarray(scale).astype(dtype)
    level = (TANIMOTO_LEVEL * s.astype(np.float64)).astype(dtype)  # within an ulp or two
    down, up = np.asarray(-np.inf, dtype=dtype), np.asarray(np.inf, dtype=dtype)
    with np.errstate(divide="ignore", invalid="ignore"):  # s = 0: a weight-0 layer's
        for _ in range(64):
            above = (level / s > TANIMOTO_LEVEL) & (s > 0)
            if not above.any():
                break
            level = np.where(above, np.nextafter(level, down), level)
        for _ in range(64):
            nxt = np.nextafter(level, up)
            fits = (nxt / s <= TANIMOTO_LEVEL) & (s > 0)
            if not fits.any():
                break
            level = np.where(fits, nxt, level)
    return level


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


def layout(columns: Sequence[Any], distances: Sequence[str]) -> tuple:
    """The columns and distances of layers as one comparable value (a fitted map's
    ``_layer_layout``: :meth:`somvq.KSOM._fitted_layers` refuses parameters that describe
    other layers)."""
    return tuple(tuple(int(c) for c in cols) for cols in columns), tuple(distances)


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
        if (
            cols.ndim != 1
            or cols.size == 0
            or not np.issubdtype(cols.dtype, np.integer)
            or any(isinstance(c, (bool, np.bool_)) for c in layer)  # True would read as column 1
        ):
            raise ValueError(f"layers[{i}]={layer!r} must be a non-empty list of column indices (ints).")
        for c in cols.tolist():
            if c < 0 or c >= n_features:
                raise ValueError(
                    f"layers[{i}] holds column {c}, outside 0..{n_features - 1} (the data has "
                    f"{n_features} columns)."
                )
            if owner.get(c) == i:
                raise ValueError(f"layers[{i}] lists column {c} twice.")
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
        bad = (values != 0) & (values != 1) & ~np.isnan(values)  # NaN: missing (missing="ignore")
        if np.any(bad):
            row, j = np.argwhere(bad)[0]
            value = values[row, j].item()
            raise ValueError(
                f"layer {i} uses the tanimoto distance, which needs binary (0/1) values; it "
                f"holds {value!r} (row {row}, column {cols[j]}). One-hot encode categorical columns (OneHotEncoder)."
            )


def _check_search_binary(X: np.ndarray, spec: Layers) -> None:
    """The tanimoto layers that count in a search (weight > 0) hold 0/1 values."""
    counted = [d if w > 0 else "left out" for d, w in zip(spec.distances, spec.weights)]
    _check_binary(X, spec.columns, counted)


def _layer_distance(Xl: np.ndarray, Cl: np.ndarray, dist: str) -> np.ndarray:
    """The per-layer distance matrix (n, K) of the definition (float64, written directly).

    NaN in ``Xl`` (``missing="ignore"``): kohonen's rule, the sum over the row's observed
    entries scaled by ``D_l / n_obs`` (tanimoto: the mismatch fraction over the observed
    bits); see :func:`layered_masked_distances`.
    """
    Xl = np.asarray(Xl, dtype=np.float64)
    Cl = np.asarray(Cl, dtype=np.float64)
    observed = ~np.isnan(Xl)
    if observed.all():
        if dist == "sqeuclidean":
            return ((Xl[:, None, :] - Cl[None, :, :]) ** 2).sum(axis=2)
        b = (Cl > TANIMOTO_LEVEL).astype(np.float64)
        return (Xl[:, None, :] != b[None, :, :]).mean(axis=2)
    target = Cl if dist == "sqeuclidean" else (Cl > TANIMOTO_LEVEL).astype(np.float64)
    diff = np.where(observed[:, None, :], Xl[:, None, :] - target[None, :, :], 0.0)
    if dist == "sqeuclidean":
        return (diff**2).sum(axis=2) * (Xl.shape[1] / observed.sum(axis=1))[:, None]
    return (diff != 0).sum(axis=2) / observed.sum(axis=1)[:, None]


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
            centre = np.nanmean(Xl, axis=0)[None, :]
            m = float(_layer_distance(Xl, centre, dist).mean())
            values.append(1.0 / m if m > 0 else 1.0)
        weights = np.asarray(values)
    return Layers(columns, np.asarray(weights, dtype=np.float64), distances, n_features)


def with_weights(spec: Layers, weights: np.ndarray) -> Layers:
    return Layers(spec.columns, np.asarray(weights, dtype=np.float64), spec.distances, spec.n_features)


def _selected(which: Any, n_layers: int) -> np.ndarray:
    """The (n_layers,) mask of the layers ``predict_layers=which`` keeps; ValueError naming
    the value when it holds no layer index, or none at all."""
    keep = np.zeros(n_layers, dtype=bool)
    for i in which:
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) or not 0 <= i < n_layers:
            raise ValueError(f"predict_layers={which!r} holds {i!r}, not a layer index in 0..{n_layers - 1}.")
        keep[i] = True
    if not keep.any():
        raise ValueError(
            f"predict_layers={which!r} selects no layer: give at least one index in 0..{n_layers - 1}."
        )
    return keep


def check_predict_layers(which: Any, layers: Any, layer_weights: Any) -> None:
    """Validate ``predict_layers`` without data (``fit``, ``check_parameters``, ``load``).

    Without ``layers`` the map has one layer, index 0. Layers that ``layers`` itself gets
    wrong are left to :func:`check_layers`; given weights (not "balanced", which are all
    positive) must leave a positive one among the kept layers.
    """
    if which is None:
        return
    if layers is None:
        n_layers = 1
    elif isinstance(layers, Sequence) and not isinstance(layers, (str, bytes)) and len(layers):
        n_layers = len(layers)
    else:
        return
    keep = _selected(which, n_layers)
    if layers is None or layer_weights is None or isinstance(layer_weights, str):
        return
    try:
        weights = np.asarray(layer_weights, dtype=np.float64)
    except (TypeError, ValueError):
        return
    if weights.shape == (n_layers,) and not np.any(weights[keep] > 0):
        raise ValueError(
            f"predict_layers={which!r} selects only layers of weight 0 "
            f"(layer_weights={layer_weights!r}): no distance is left."
        )


def select_layers(spec: Layers, which: Any) -> Layers:
    """``spec`` with the weights of the layers not in ``which`` (kohonen's whatmap) set to 0."""
    if which is None:
        return spec
    weights = np.where(_selected(which, len(spec.columns)), spec.weights, 0.0)
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


#: Float32 rows are scaled in float64 where a column's largest |x| exceeds this many of its
#: standard deviations: x * s rounded to float32 is then coarse beside the spread.
FLOAT32_SCALING_RATIO = 16.0


def working_dtype(X: Any, scale: np.ndarray) -> np.dtype:
    """The dtype of the rows ``X`` scaled by ``scale`` (a layered fit's working copy, the
    rows ``predict`` searches): X's, except float64 for float32 rows whose scaling would
    round them coarsely. ``x * s`` in float32 errs by up to ``2^-24 |x s|``: nothing beside
    the spread for centred data, but float32 rows at 1e4 + N(0, 1) with one layer of weight
    0.3 got 11 of 4000 winners wrong (up to 0.2% farther). So float32 rows stay float32
    when every factor is 0 or a power of two (exact), or when no column's largest |x| is
    more than :data:`FLOAT32_SCALING_RATIO` of its standard deviations (taken over 4096
    evenly spaced rows; a constant column counts as fine: its error is the same in every
    row); otherwise, and for rows that are not a NumPy array (dask), float64."""
    dtype = np.dtype(X.dtype)
    if dtype != np.float32 or np.all((scale == 0) | (np.frexp(scale)[0] == 0.5)):
        return dtype
    if not isinstance(X, np.ndarray) or X.size == 0:
        return np.dtype(np.float64)
    from ._moments import column_moments

    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no verdict
        peak = np.fmax(np.abs(np.nanmax(X, axis=0)), np.abs(np.nanmin(X, axis=0))).astype(np.float64)
    spread = column_moments(X[:: max(1, X.shape[0] // 4096)], nan=True)[1]
    coarse = (spread > 0) & (peak > FLOAT32_SCALING_RATIO * spread)
    return np.dtype(np.float64) if coarse.any() else dtype


def as_published(codebook: np.ndarray, scale: np.ndarray, dtype: Any) -> np.ndarray:
    """A working codebook (scaled units, :func:`working_dtype`) as the map will publish it:
    each weighted column back in the data's units, rounded to the data's ``dtype``, scaled
    again. The final labels are searched on it, so that they are ``predict``'s on the
    published map (columns of weight 0 are refilled later and left as they are)."""
    out = np.array(codebook, dtype=np.float64, copy=True)
    positive = scale > 0
    published = (out[:, positive] / scale[positive]).astype(dtype)
    out[:, positive] = published.astype(np.float64) * scale[positive]
    return out.astype(codebook.dtype, copy=False)


def scale_rows(X: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``X`` with column j times ``scale[j]`` (C-contiguous, in :func:`working_dtype`): a
    layered fit's working copy. Refused when the weights push it beyond what squared
    distances can hold (the data itself was checked before scaling; NaN, missing values,
    stay NaN)."""
    from ._validation import check_training_range

    dtype = working_dtype(X, scale)
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(X.astype(dtype, copy=False) * scale.astype(dtype, copy=False))
    remedy = "Give smaller layer_weights: only their ratios matter."
    if np.isinf(out).any():
        raise ValueError(
            f"the data scaled by the layer weights (largest factor {float(scale.max()):.3g}) "
            f"overflows {X.dtype}. {remedy}"
        )
    check_training_range(out, "the data scaled by the layer weights", remedy)
    return out


def search_codebook(
    codebook: np.ndarray,
    spec: Layers,
    scale: np.ndarray | None = None,
    *,
    scaled: bool = False,
    dtype: Any = None,
) -> np.ndarray:
    """The codebook the BMU search compares the scaled rows with: scaled, tanimoto columns thresholded.

    ``scaled=True``: ``codebook`` is already in scaled units (a layered fit's working copy),
    where the threshold 0.5 becomes :func:`scaled_level` (the same test, exactly).
    ``dtype``: of the result (default: the codebook's).
    """
    scale = column_scale(spec) if scale is None else scale
    out = codebook.astype(np.float64) if scaled else codebook.astype(np.float64) * scale
    if spec.has_tanimoto:
        mask = spec.tanimoto_mask()
        threshold = scaled_level(scale[mask], codebook.dtype) if scaled else TANIMOTO_LEVEL
        original = codebook[:, mask] > threshold
        out[:, mask] = np.where(original, scale[mask], 0.0)
    return out.astype(codebook.dtype if dtype is None else dtype, copy=False)


def layered_assign(X: np.ndarray, codebook: np.ndarray, spec: Layers) -> tuple[np.ndarray, np.ndarray]:
    """BMU (int64) and layered distance (float64) of every row: the fast path of the definition.

    The rows and the search codebook are scaled per column once, then the exact BMU
    kernel of :func:`somvq.algorithms.assign` runs on them. Tanimoto layers need 0/1
    values, as in training (the fast path is the definition only for bits).
    """
    from . import algorithms

    _check_search_binary(X, spec)
    scale = column_scale(spec)
    dtype = working_dtype(X, scale)  # as in training: exact winners at any offset
    Xs = X.astype(dtype, copy=False) * scale.astype(dtype, copy=False)
    search = search_codebook(codebook, spec, scale, dtype=dtype)
    return algorithms.assign(np.ascontiguousarray(Xs), np.ascontiguousarray(search))


# ---------------------------------------------------------------------- missing values
# Layers and ``missing="ignore"`` (R kohonen's definition, kohonen/src/distance-functions.cpp,
# ``SumOfSquaresDistanceNaN`` and ``TanimotoDistanceNaN``, summed with the layer weights in
# ``FindBestMatchingUnit``): in each layer the distance runs over the row's observed
# entries of that layer and is scaled by ``D_l / n_obs,l`` (tanimoto: the mismatch count
# over the observed bits divided by ``n_obs,l``), so a row with holes in one layer
# compares fairly with complete rows; the layers then combine as the weighted sum. A
# layer in which a row has no observed entry has no distance in kohonen (NA_REAL, so the
# row has no winner): its R code removes rows missing more than ``maxNA.fraction`` of any
# layer before training (kohonen/R/check.data.R, ``check.data.na``) and maps only the
# ``whatmap`` layers of new rows (kohonen/R/map.R). somvq follows it with errors instead
# of silent removal: :func:`check_layer_missing`.


def check_layer_missing(
    X: np.ndarray, columns, max_missing: float, *, row_offset: int = 0, where: str = ""
) -> None:
    """Per-layer missing-value check of ``missing="ignore"`` with layers (kohonen's ``maxNA.fraction``).

    A row with no observed entry in one of the layers ``columns`` (a list of column-index
    arrays), or missing more than ``max_missing`` of a layer's columns, is a ValueError
    naming the layer, how many rows and the first few (``row_offset`` added: a chunk's
    first row; ``where`` is added to the message).
    """
    from .missing import _over_max_missing, _row_list

    for index, cols in enumerate(columns):
        nan = np.isnan(np.asarray(X[:, cols]))
        n_missing = nan.sum(axis=1)
        empty = np.flatnonzero(n_missing == len(cols)) + row_offset
        if empty.size:
            raise ValueError(
                f"Input X has {empty.size} row(s){where} with no observed value in layer {index} "
                f"(columns {np.asarray(cols)[:10].tolist()}{' ...' if len(cols) > 10 else ''}): rows "
                f"{_row_list(empty)}. A layer's distance needs one observed value (kohonen's rule); "
                "remove the rows, or leave the layer out with predict_layers at predict time."
            )
        over = np.flatnonzero(_over_max_missing(n_missing, len(cols), max_missing)) + row_offset
        if over.size:
            raise ValueError(
                f"Input X has {over.size} row(s){where} missing more than max_missing={max_missing!r} "
                f"of the {len(cols)} columns of layer {index}: rows {_row_list(over)}; remove them or "
                "raise max_missing (with layers it applies to each layer, as kohonen's maxNA.fraction)."
            )


def layered_masked_distances(X: np.ndarray, codebook: np.ndarray, spec: Layers) -> np.ndarray:
    """The definition with NaN: ``sum_l w_l d_l`` over observed entries, (n, K) float64, direct.

    ``d_l`` is kohonen's masked layer distance (:func:`_layer_distance`); layers of weight
    0 are left out (their entries may all be missing).
    """
    total = np.zeros((X.shape[0], codebook.shape[0]))
    for cols, w, dist in zip(spec.columns, spec.weights, spec.distances):
        if w == 0:
            continue
        total += w * _layer_distance(X[:, cols], codebook[:, cols], dist)
    return total


@dataclass(frozen=True)
class ScaledLayers:
    """What a layered fit's passes need, in the scaled units of its working copy.

    ``spec`` and the per-column ``scale`` (:func:`column_scale`); the engines read the
    search codebook (:meth:`search`), the groups of the masked distance (:attr:`groups`:
    the columns of the layers of positive weight) and, for the compiled online pass, the
    per-column group index and threshold (:meth:`kernel_arrays`).
    """

    spec: Layers
    scale: np.ndarray

    def search(self, codebook: np.ndarray) -> np.ndarray:
        """The scaled codebook with tanimoto columns thresholded (:func:`search_codebook`)."""
        if not self.spec.has_tanimoto:
            return codebook
        return search_codebook(codebook, self.spec, self.scale, scaled=True)

    @property
    def groups(self) -> tuple[np.ndarray, ...]:
        return tuple(cols for cols, w in zip(self.spec.columns, self.spec.weights) if w > 0)

    @property
    def plain_masked(self) -> bool:
        """Whether the masked path of :mod:`somvq.missing` is the definition as it is.

        True for one layer of every column: its ``D / n_obs`` factor is the layer's, so
        today's unlayered code (and its bits) serve.
        """
        groups = self.groups
        return len(groups) == 1 and groups[0].size == self.spec.n_features

    def kernel_arrays(self, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``group`` (int64 (D,), -1: weight 0), ``level`` and ``high`` (float64 (D,)).

        A tanimoto column's search value is ``high`` where the codebook (of ``dtype``) is
        above ``level`` (:func:`scaled_level`, ~``0.5 s_j``), else 0; other columns have
        ``level = nan`` (no threshold).
        """
        group = np.full(self.spec.n_features, -1, dtype=np.int64)
        level = np.full(self.spec.n_features, np.nan)
        high = np.asarray(self.scale, dtype=np.float64).copy()
        g = 0
        for cols, w, dist in zip(self.spec.columns, self.spec.weights, self.spec.distances):
            if w > 0:
                group[cols] = g
                g += 1
            if dist == "tanimoto":
                level[cols] = scaled_level(self.scale[cols], dtype)
        return group, level, high


def _layered_direct(
    X64: np.ndarray, V: np.ndarray, rows: np.ndarray, units: np.ndarray, groups
) -> np.ndarray:
    """``sum_g D_g / n_obs,g sum_{j in g observed} (x_j - v_j)^2`` of the pairs (rows[i], units[i])."""
    total = np.zeros(rows.size)
    for cols in groups:
        diff = X64[rows][:, cols] - np.asarray(V, dtype=np.float64)[units][:, cols]
        observed = ~np.isnan(diff)
        diff = np.where(observed, diff, 0.0)
        total += cols.size / observed.sum(axis=1) * np.einsum("ij,ij->i", diff, diff)
    return total


def layered_masked_assign(X: np.ndarray, V: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray]:
    """BMU (int64, lowest index on ties) and distance of rows with NaN under grouped masks.

    ``X``: rows in scaled units (:func:`column_scale`), ``V``: the search codebook
    (:func:`search_codebook`), ``groups``: the column arrays of the layers that count. The
    distance is ``sum_g (D_g / n_obs,g) sum_{j in g observed} (x_j - v_j)^2``, which in
    scaled units is kohonen's ``sum_l w_l d_l`` (module docstring). One group of every
    column is :func:`somvq.missing.masked_assign` itself (same bits). Otherwise one GEMM
    per group and block (each in its own reference frame, as the masked path computes),
    summed with the per-row factors; rows whose runner-up is within twice the summed error
    bounds are re-ranked by direct float64 distances, and the reported distance is direct.
    """
    from .missing import _MaskedFrame, masked_assign

    X = np.asarray(X)
    groups = tuple(np.asarray(g, dtype=np.int64) for g in groups)
    if len(groups) == 1 and groups[0].size == X.shape[1]:
        return masked_assign(X, V)
    scale = distances.underflow_scale(X, np.asarray(V))
    if scale != 1.0:  # the direct distances below would underflow: the winners of X * scale
        bmu, sq = layered_masked_assign(X * scale, np.asarray(V) * scale, groups)
        distances.unscale_squares(sq, scale)
        return bmu, sq
    from ._kernels.cpu_bmu import _pool, search_threads, single_threaded_blas

    frames = [_MaskedFrame(np.ascontiguousarray(np.asarray(V)[:, cols])) for cols in groups]
    V64 = np.asarray(V, dtype=np.float64)
    n = X.shape[0]
    block_rows = min(frame.block_rows for frame in frames)
    bmu = np.empty(n, dtype=np.int64)
    sq = np.empty(n)
    starts = range(0, n, block_rows)

    def block(start: int) -> None:
        X64 = np.asarray(X[start : start + block_rows], dtype=np.float64)
        bmu[start : start + X64.shape[0]], sq[start : start + X64.shape[0]] = _layered_block(
            X64, V64, frames, groups
        )

    # as masked_assign: blocks on the CPU engine's pool, each with a single-threaded BLAS
    threads = search_threads()
    with single_threaded_blas():
        if threads <= 1 or len(starts) <= 1:
            for start in starts:
                block(start)
        else:
            list(_pool(threads).map(block, starts))
    return bmu, sq


def _layered_block(X64: np.ndarray, V64: np.ndarray, frames, groups) -> tuple[np.ndarray, np.ndarray]:
    """:func:`layered_masked_assign` of one block of rows (float64)."""
    total = np.zeros((X64.shape[0], V64.shape[0]))
    bound = np.zeros(X64.shape[0])
    for cols, frame in zip(groups, frames):
        scores, x_norm2, n_obs, _ = frame.scores(np.ascontiguousarray(X64[:, cols]))
        factor = cols.size / (frame.scale * frame.scale) / n_obs
        scores += x_norm2[:, None]
        total += scores * factor[:, None]
        bound += factor * frame.kappa * (np.sqrt(x_norm2) + frame.radius) ** 2
    rows = np.arange(X64.shape[0])
    best = np.argmin(total, axis=1)
    threshold = total[rows, best] + 2.0 * bound
    total[rows, best] = np.inf
    tied_rows = np.flatnonzero(total.min(axis=1) <= threshold)
    if tied_rows.size:
        close = total[tied_rows] <= threshold[tied_rows, None]
        close[np.arange(tied_rows.size), best[tied_rows]] = True
        r, u = np.nonzero(close)
        cand = np.full((tied_rows.size, V64.shape[0]), np.inf)
        cand[r, u] = _layered_direct(X64, V64, tied_rows[r], u, groups)
        best[tied_rows] = np.argmin(cand, axis=1)
    return best, _layered_direct(X64, V64, rows, best, groups)


def check_layers_observed(X: np.ndarray, spec: Layers, *, row_offset: int = 0, where: str = "") -> None:
    """Rows of ``X`` with no observed value in a layer of ``spec`` that has weight: a
    ValueError naming them (:func:`check_layer_missing` at any fraction missing, as
    ``predict`` maps; ``row_offset`` / ``where`` as there)."""
    groups = ScaledLayers(spec, column_scale(spec)).groups
    check_layer_missing(X, groups, 1.0, row_offset=row_offset, where=where)


def layered_predict_masked(
    X: np.ndarray, codebook: np.ndarray, spec: Layers
) -> tuple[np.ndarray, np.ndarray]:
    """BMU and layered masked distance of rows with NaN (data units; ``spec``: the weights used).

    Layers of weight 0 (``predict_layers`` leaves them out) are ignored, NaN included;
    every other layer needs one observed value per row (:func:`check_layer_missing`), and
    tanimoto layers 0/1 values.
    """
    _check_search_binary(X, spec)
    check_layers_observed(X, spec)
    scaled = ScaledLayers(spec, column_scale(spec))
    Xs = np.asarray(X, dtype=np.float64) * scaled.scale
    return layered_masked_assign(
        Xs, search_codebook(codebook, spec, scaled.scale).astype(np.float64), scaled.groups
    )


def layered_online_pass(X: np.ndarray, order: np.ndarray, plan: Any, state: Any) -> float:
    """One online-KSOM pass of a layered map whose search is not the plain one; updates ``state``.

    For tanimoto layers and/or NaN with more than one layer (``plan.layers``, a
    :class:`ScaledLayers`; ``X`` in its scaled units). Row by row: the winner is the unit
    of least layered distance (the thresholded search vector on tanimoto columns; with
    NaN, each layer's observed entries weighed by ``D_l / n_obs,l``), then Kohonen's rule
    ``w_kj += eta h(k*, k) (x_j - w_kj)`` on the row's observed entries of the continuous
    codebook (kohonen's online supersom updates the codes the same way). Compiled:
    :func:`somvq._kernels.cpu_layered.layered_online_pass`. Returns the summed layered
    distance of the rows to their winners, measured after the pass (as the plain path).
    """
    from . import algorithms
    from ._kernels.cpu_layered import layered_online_pass as kernel

    layers: ScaledLayers = plan.layers
    group, level, high = layers.kernel_arrays(state.codebook.dtype)
    group_size = np.asarray([cols.size for cols in layers.groups], dtype=np.float64)
    codebook = np.array(state.codebook, order="C", copy=True)
    args = algorithms.online_kernel_arguments(
        plan.grid.distances, plan.neighbourhood, plan.learning_rate, state.unit_counts, state.n_steps
    )
    # scaled below distances.TINY: the tanimoto thresholds scale with the data
    algorithms.run_online_scaled(
        lambda Xs, Ws, scale: kernel(
            np.ascontiguousarray(Xs),
            Ws,
            np.asarray(order, dtype=np.int64),
            group,
            group_size,
            level * scale,
            high * scale,
            *args,
        ),
        X,
        codebook,
    )
    state.codebook = codebook
    state.n_steps += len(order)
    search = layers.search(codebook)
    if np.isnan(X).any():
        return float(layered_masked_assign(X, search, layers.groups)[1].sum())
    return float(algorithms.assign(X, np.ascontiguousarray(search))[1].sum())
