"""Per-column mean and standard deviation that stay right at any float64 magnitude.

``X.std()`` squares the values: beyond ~1e154 the squares overflow (the deviation is inf)
and for a spread below ~1e-154 they underflow (it is 0). Such columns are recomputed in
units of a power of two near their largest value, an exact scaling, so every other column
keeps the plain ``X.mean`` / ``X.std`` bits. Used by the random initialisation, the
regressor's target standardisation and the command line's ``--standardize``.
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
        if nan:
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
