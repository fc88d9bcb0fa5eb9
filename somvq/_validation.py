"""Checks shared by the estimator, the torch quantizer and the model files.

Each check raises a ``ValueError`` that names the parameter or the cause and the value:

* :func:`check_ema_settings` - EMA settings (decay, eps, init_count, update) that would
  divide by zero, rejected before any training;
* :func:`check_grid_value` - ``grid=True`` and other bools where a grid size is expected
  (``bool`` is an ``Integral`` in Python);
* :func:`check_training_range` - float64 training data whose squared distances overflow;
* :func:`check_finite_codebook` - the codebook a training call produced, once per call;
* :func:`validate_rows` - scikit-learn's ``validate_data`` under the ``missing`` policy
  (with ``missing="ignore"``, inf and unusable rows refused naming the rows).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "check_ema_settings",
    "check_grid_value",
    "check_training_range",
    "finite_range_limit",
    "check_finite_codebook",
    "restores_input_attributes",
    "validate_rows",
]

#: What scikit-learn's validate_data(reset=True) writes on the estimator before training.
_INPUT_ATTRIBUTES = ("n_features_in_", "feature_names_in_")


def restores_input_attributes(method: Callable) -> Callable:
    """Decorate ``fit``/``partial_fit``: if the call raises, put back the input attributes.

    The fitted state is published only at the end of a training call, but validating the
    data already records ``n_features_in_`` (and ``feature_names_in_``); a failed call
    must not leave them describing data the codebook never saw.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        saved = {name: self.__dict__[name] for name in _INPUT_ATTRIBUTES if name in self.__dict__}
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            for name in _INPUT_ATTRIBUTES:
                if name in saved:
                    self.__dict__[name] = saved[name]
                else:
                    self.__dict__.pop(name, None)
            raise

    return wrapper


#: The positive ``eps`` values :func:`check_ema_settings` accepts.
EPS_RANGE = (1e-30, 1e30)


def check_ema_settings(*, decay: float, eps: float, init_count: float, update: str) -> None:
    """Reject KSOM-EMA settings under which ``w = m / N`` divides by zero.

    With ``update="all"`` every unit's count is ``N <- decay N + (1 - decay) n``, then
    Laplace-smoothed with ``eps``. A unit no input reached (``n = 0``) keeps ``N > 0`` only
    through ``eps > 0`` or ``decay * N0 > 0``: ``eps=0`` with ``init_count=0`` (or with
    ``decay=0``) gives ``N = 0`` and ``w = 0 / 0`` at the first step. ``update="written"``
    divides only where ``n > 0`` and is always safe.

    With ``update="all"`` a positive ``eps`` must lie in [:data:`EPS_RANGE`]: the smoothing ``(N_k + eps) /
    (N + K eps) N`` underflows to 0 below it (a subnormal eps) and ``K eps`` overflows
    above it, and either divides by zero too (in float32 statistics as well).
    """
    if update != "all":
        return  # no smoothing: eps is unused
    low, high = EPS_RANGE
    if eps > 0 and not low <= eps <= high:
        raise ValueError(
            f"eps={eps!r} is outside [{low:g}, {high:g}]: the Laplace smoothing of the EMA "
            "counts, (N_k + eps) / (N + K eps) N, under- or overflows there and divides by "
            "zero. The paper uses eps=1e-5."
        )
    if eps > 0:
        return
    if init_count == 0:
        raise ValueError(
            f"init_count={init_count!r} with eps={eps!r} divides by zero: a unit that no "
            "input reaches has an EMA count of 0 (update='all'). Use eps > 0 (e.g. 1e-5), "
            "init_count > 0, or update='written'."
        )
    if decay == 0:
        raise ValueError(
            f"decay={decay!r} with eps={eps!r} divides by zero: a unit that no input reaches "
            "in a batch has an EMA count of 0 (update='all'). Use eps > 0 (e.g. 1e-5), "
            "decay > 0, or update='written'."
        )


def check_grid_value(grid: Any) -> None:
    """Reject booleans given as a grid size or shape (``True`` is an ``Integral``)."""
    if isinstance(grid, (bool, np.bool_)):
        raise ValueError(f"grid={grid!r} must be a tuple of positive ints or an int, not a bool.")
    if isinstance(grid, np.ndarray) and grid.dtype == np.bool_:
        raise ValueError(f"grid={grid!r} must be a tuple of positive ints or an int, not bools.")
    if isinstance(grid, (tuple, list)) and any(isinstance(s, (bool, np.bool_)) for s in grid):
        raise ValueError(f"grid={grid!r} must be a tuple of positive ints or an int, not bools.")


def finite_range_limit(n_features: int) -> float:
    """Largest ``max |x|`` for which every squared distance of float64 data is finite.

    With ``|x|, |w| <= M`` in D features, ``||x - w||^2 <= 4 D M^2`` (and each term of the
    expanded form ``||x||^2 + ||w||^2 - 2 x.w`` is at most ``D M^2``).
    """
    return math.sqrt(np.finfo(np.float64).max / (4.0 * max(int(n_features), 1)))


def check_training_range(
    X: Any,
    what: str = "the training data",
    remedy: str = "Rescale the data (e.g. standardize it) or remove the outlying rows.",
) -> None:
    """Raise when float64 training data (or an initial codebook: ``what``) is so large that
    squared distances overflow.

    One pass over the data (``max |x|``); float32 data never overflows in float64
    statistics and is left to the distance kernels. Non-NumPy inputs (device arrays) are
    not checked here.
    """
    if not isinstance(X, np.ndarray) or X.dtype != np.float64 or X.size == 0:
        return
    check_training_peak(largest_magnitude(X), X.shape[1], what, remedy)


def largest_magnitude(X: np.ndarray) -> float:
    """``max |x|`` of a non-empty NumPy array, NaN (missing values) ignored (NaN if all
    are); the host twin of ``somvq._kernels.cuda_update.largest_magnitude``."""
    # the largest and the smallest value: no |X| copy (as large as the data)
    return float(np.fmax(np.fmax.reduce(X, axis=None), -np.fmin.reduce(X, axis=None)))


def check_training_peak(
    largest: float,
    n_features: int,
    what: str = "the training data",
    remedy: str = "Rescale the data (e.g. standardize it) or remove the outlying rows.",
) -> None:
    """:func:`check_training_range` of float64 data whose ``max |x|`` is ``largest``
    (computed where the data is: the CUDA engine reduces device arrays on the device)."""
    limit = finite_range_limit(n_features)
    if largest > limit:
        raise ValueError(
            f"{what} holds values up to {largest:.3g} in absolute value; squared "
            f"distances of {n_features} features overflow float64 above about {limit:.3g}. {remedy}"
        )


def in_map_dtype(X: np.ndarray, dtype: Any) -> np.ndarray:
    """Checked rows (finite, NaN where missing) in a fitted map's ``dtype``: ``X`` itself
    when it has it, else a cast; values beyond ``dtype`` (float64 rows for a float32 map)
    are refused, naming the largest, not cast to inf with a RuntimeWarning."""
    dtype = np.dtype(dtype)
    if X.dtype == dtype:
        return X
    with np.errstate(over="ignore"):
        converted = X.astype(dtype)
    if np.isinf(converted).any():  # X itself is finite: the map's dtype cannot hold it
        check_peak_in_map_dtype(largest_magnitude(X), dtype)
    return converted


def check_peak_in_map_dtype(largest: float, dtype: Any) -> None:
    """:func:`in_map_dtype`'s refusal of rows whose ``max |x|`` is ``largest``."""
    dtype = np.dtype(dtype)
    if largest > float(np.finfo(dtype).max):  # compared in float64 (NEP 50 would cast to dtype)
        raise ValueError(
            f"X holds values up to {largest:.3g} in absolute value, beyond "
            f"the map's {dtype} (its largest is {np.finfo(dtype).max:.3g}); "
            "the map was fitted on float32 data: refit it on float64 data for such values."
        )


def check_finite_codebook(estimator: Any, codebook: Any, X: Any = None) -> None:
    """Raise when a training call produced a codebook holding NaN or inf.

    Called once at the end of ``fit`` / ``partial_fit``, before the new state is published
    (so the estimator keeps its previous state). The message names the likely cause: the
    data range, or a learning rate above 1 for online KSOM.
    """
    codebook = np.asarray(codebook)
    finite = np.isfinite(codebook)
    if finite.all():
        return
    bad_units = int(np.count_nonzero(~finite.all(axis=1))) if codebook.ndim == 2 else -1
    causes = []
    rate = getattr(estimator, "learning_rate", None)
    online = getattr(estimator, "algorithm", None) == "online"
    if online and not isinstance(rate, str) and rate is not None and rate > 1:
        causes.append(
            f"learning_rate={rate!r} is above 1, so every update overshoots and the codebook "
            "diverges (use a rate in (0, 1], e.g. 0.5)"
        )
    if online and getattr(estimator, "neighbourhood", None) == "mexican_hat":
        causes.append(
            "the negative weights of neighbourhood='mexican_hat' push units away without "
            "bound (lower learning_rate or radius)"
        )
    if not causes and isinstance(X, np.ndarray) and X.size:
        largest = float(np.max(np.abs(X)))
        causes.append(
            f"the data range: values up to {largest:.3g} in absolute value (rescale the data, "
            "e.g. standardize it, or remove the outlying rows)"
        )
    cause = "; ".join(causes) if causes else "the data range or the learning settings"
    raise ValueError(
        f"training produced a non-finite codebook ({bad_units} of {codebook.shape[0]} units "
        f"hold NaN or inf); the model was not kept. Likely cause: {cause}."
    )


def validate_rows(
    estimator: Any, X: Any, y: Any = "no_validation", *, max_missing: float = 1.0, **kwargs: Any
) -> Any:
    """scikit-learn's ``validate_data`` of ``X`` (and ``y``) under ``estimator.missing``.

    ``missing="error"``: NaN and inf are refused by scikit-learn's check. ``missing="ignore"``:
    scikit-learn's finiteness check is skipped and :func:`somvq.missing.check_missing` runs
    instead (one pass): NaN passes as missing, while inf, rows with no observed feature and
    rows missing more than ``max_missing`` of their features (1.0 where any fraction maps)
    are refused with messages that name the rows. Returns what ``validate_data`` returns.
    """
    from ._sklearn import validate_data
    from .missing import check_missing

    if isinstance(X, np.ndarray) and not X.dtype.isnative:
        X = X.astype(X.dtype.newbyteorder("="))  # big-endian float32 stays float32
    ignore = getattr(estimator, "missing", "error") == "ignore"
    out = validate_data(estimator, X, y, ensure_all_finite=not ignore, **kwargs)
    if ignore:
        only_x = y is None or (isinstance(y, str) and y == "no_validation")  # validate_data's rule
        check_missing(out if only_x else out[0], max_missing)
    return out
