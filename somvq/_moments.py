"""Per-column mean and standard deviation that stay right at any float64 magnitude.

``X.std()`` squares the values: beyond ~1e154 the squares overflow (the deviation is inf)
and for a spread below ~1e-154 they underflow (it is 0). Such columns are recomputed in
units of a power of two near their largest value, an exact scaling, so every other column
keeps the plain ``X.mean`` / ``X.std`` bits. Used by the random initialisation, the
regressor's target standardisation and the command line's ``--standardize``.

Large arrays are read in blocks of rows (:data:`BLOCK_BYTES` of float64 at a time): NumPy's
``X.std(axis=0, dtype=np.float64)`` makes a float64 copy of the whole of ``X`` (twice the
memory of float32 data, on top of the data; ``nanstd`` more), which made the default
initialisation the peak of a fit's memory. :func:`mean_and_covariance` (the PCA
initialisation, ``grid="auto"``) is blocked alike.
"""

from __future__ import annotations

import warnings

import numpy as np

from .distances import power_of_two_scale


def column_moments(X: np.ndarray, *, nan: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` of each column of a 2-D ``X`` in float64, over the observed (non-NaN)
    entries with ``nan``; finite for every finite column (an all-NaN column gives NaN).

    ``X`` may also be an engine's device data with ``mean`` / ``std`` methods (the CUDA
    engine's ``DeviceData``): its moments are then the plain ones (the CUDA engine refuses
    data at such magnitudes)."""
    with np.errstate(over="ignore", invalid="ignore", under="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice": NaN, as said
        if isinstance(X, np.ndarray) and X.ndim == 2 and _blocked(X):
            mean, std = _blocked_moments(X, nan)
        elif nan:
            mean = np.nanmean(X, axis=0, dtype=np.float64)
            std = np.nanstd(X, axis=0, dtype=np.float64)
        else:
            mean = X.mean(axis=0, dtype=np.float64)
            std = X.std(axis=0, dtype=np.float64)
    mean = np.array(mean, dtype=np.float64, ndmin=1)
    std = np.array(std, dtype=np.float64, ndmin=1)
    if not isinstance(X, np.ndarray):
        return mean, std
    suspect = np.flatnonzero(~np.isfinite(mean) | ~np.isfinite(std) | (std == 0.0))
    for j in suspect:
        column = np.asarray(X[:, j], dtype=np.float64)
        if nan:
            column = column[~np.isnan(column)]
        if column.size == 0 or not np.all(np.isfinite(column)) or column.min() == column.max():
            continue  # no entry, a non-finite one, or truly constant: the plain values stand
        scale = power_of_two_scale(float(np.max(np.abs(column))))
        scaled = column * scale
        mean[j] = scaled.mean() / scale
        std[j] = scaled.std() / scale
    return mean, std


#: Float64 bytes of the blocks of rows that :func:`column_moments` and
#: :func:`mean_and_covariance` read large arrays in (smaller arrays: NumPy's whole-array forms).
BLOCK_BYTES = 1 << 24


def _blocked(X: np.ndarray) -> bool:
    """Whether ``X`` is read in blocks: its float64 copy would exceed :data:`BLOCK_BYTES`."""
    return X.shape[0] * max(X.shape[1], 1) * 8 > BLOCK_BYTES


def _block_rows(n_features: int) -> int:
    return max(1, BLOCK_BYTES // (8 * max(n_features, 1)))


def _running_sum(acc: np.ndarray, buffer: np.ndarray, n: int) -> np.ndarray:
    """``acc`` plus the ``n`` rows ``buffer[1 : n + 1]``, added in row order after it (as
    NumPy adds the rows of a C-ordered array along axis 0: blocks so summed give the
    whole-array sum's bits wherever NumPy sums that way, i.e. for two or more columns)."""
    buffer[0] = acc
    return buffer[: n + 1].sum(axis=0)


def column_means(X: np.ndarray, *, nan: bool = False) -> np.ndarray:
    """``X.mean(axis=0)`` (``np.nanmean`` with ``nan``) in float64; large arrays in blocks of
    rows (no float64 copy of ``X``: the same bits wherever NumPy adds rows in order, i.e.
    for two or more columns). An all-NaN column gives NaN, without a warning."""
    X = np.asarray(X)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice"
        if X.ndim == 2 and _blocked(X):
            return _blocked_moments(X, nan, spread=False)[0]
        mean = np.nanmean(X, axis=0, dtype=np.float64) if nan else X.mean(axis=0, dtype=np.float64)
    return np.array(mean, dtype=np.float64, ndmin=1)


def _blocked_moments(X: np.ndarray, nan: bool, spread: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``X.mean`` and (``spread``) ``X.std`` over axis 0 (``nanmean`` / ``nanstd`` with
    ``nan``: the deviations in float64, where ``nanstd`` of float32 data takes them in
    float32) in float64, a block of rows at a time: O(block) memory."""
    n_rows, n_features = X.shape
    rows = _block_rows(n_features)
    buffer = np.empty((min(rows, n_rows) + 1, n_features))
    total = np.zeros(n_features)
    count = np.zeros(n_features, dtype=np.int64) if nan else None
    for start in range(0, n_rows, rows):
        block = X[start : start + rows]
        m = block.shape[0]
        part = buffer[1 : m + 1]
        part[...] = block
        if count is not None:
            missing = np.isnan(part)
            part[missing] = 0.0
            count += m - missing.sum(axis=0)
        total = _running_sum(total, buffer, m)
    mean = total / (count if count is not None else n_rows)
    if not spread:
        return mean, None
    squares = np.zeros(n_features)
    for start in range(0, n_rows, rows):
        block = X[start : start + rows]
        m = block.shape[0]
        part = buffer[1 : m + 1]
        np.subtract(block, mean, out=part)
        if count is not None:
            part[np.isnan(part)] = 0.0
        np.multiply(part, part, out=part)
        squares = _running_sum(squares, buffer, m)
    return mean, np.sqrt(squares / (count if count is not None else n_rows))


def mean_and_covariance(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Column means (float64), and the sample covariance (``ddof = 1``) of the rows of ``X``
    times ``s``: ``(mean, covariance, s)``.

    The covariance is ``sum_i (s (x_i - mean))^T (s (x_i - mean)) / (n - 1)`` over blocks
    of centred float64 rows, ``O(n D^2)`` time and ``O(D^2 + block)`` memory (``np.cov`` and
    an SVD of the centred rows copy the whole of ``X`` in float64, and more), with ``s``
    the power of two that brings the largest deviation from the mean into [1, 2): exact,
    and the products stay finite and normal at any magnitude (unscaled, data at 1e-200
    gave a covariance of 0, data near 1e153 an infinite one): the covariance of ``X`` is
    ``covariance / s^2`` where that is representable. Needs 2 rows.
    """
    X = np.asarray(X)
    n_rows, n_features = X.shape
    mean = column_means(X)
    with np.errstate(invalid="ignore", over="ignore"):
        spread = float(max(np.max(np.abs(X.max(axis=0) - mean)), np.max(np.abs(X.min(axis=0) - mean))))
    s = power_of_two_scale(spread) if 0.0 < spread < np.inf else 1.0
    covariance = np.zeros((n_features, n_features))
    rows = _block_rows(n_features)
    buffer = np.empty((min(rows, n_rows), n_features))
    for start in range(0, n_rows, rows):
        block = X[start : start + rows]
        centred = buffer[: block.shape[0]]
        np.subtract(block, mean, out=centred)
        centred *= s
        covariance += centred.T @ centred  # (symmetric: NumPy computes it as one)
    covariance /= n_rows - 1
    return mean, covariance, s
