"""The functions of :mod:`somvq.algorithms` on device arrays (the CUDA fast paths).

Each has the CPU definition's arguments; those that change their arguments say so in their
names (``_inplace``). Arrays may be host or device ones (device results need device
outputs). The kernels are in ``somvq/_kernels/cuda_*.py``, mirroring the CPU modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...algorithms import learning_rate_parameters
from .device import _cuda, as_device_array

__all__ = [
    "DeviceUnitStatistics",
    "assign",
    "batch_update_inplace",
    "ema_update_inplace",
    "neighbourhood_matrix",
    "online_pass_inplace",
    "smooth_statistics",
    "unit_statistics",
]


@dataclass
class DeviceUnitStatistics:
    """:class:`somvq.algorithms.UnitStatistics` with device arrays.

    ``counts`` (K,) and ``sums`` (K, D) are float64 device arrays; ``error`` a (1,) float64
    device array holding the summed squared distances; reading :attr:`sq_error` copies
    that one number to the host.
    """

    counts: Any
    sums: Any
    error: Any
    n_samples: int

    @property
    def sq_error(self) -> float:
        return float(self.error.copy_to_host()[0])


def _zeros(shape, dtype=np.float64):
    return _cuda().to_device(np.zeros(shape, dtype=dtype))


def _rows(n: int, rows=None):
    if rows is not None:
        return as_device_array(np.asarray(rows, dtype=np.int64)) if isinstance(rows, np.ndarray) else rows
    return _cuda().to_device(np.arange(n, dtype=np.int64))


def _codebook_for(X, codebook):
    codebook = as_device_array(codebook)
    if np.dtype(codebook.dtype) != np.dtype(X.dtype):
        raise TypeError(f"codebook dtype {codebook.dtype} differs from the data's {X.dtype}")
    return codebook


def assign(X, codebook, *, rows=None):
    """BMU index (int64) and squared distance (float64) of every row, as device arrays."""
    from ..._kernels import cuda_bmu

    X = as_device_array(X)
    codebook = _codebook_for(X, codebook)
    rows = _rows(X.shape[0], rows)
    cuda = _cuda()
    bmu = cuda.device_array(rows.shape[0], dtype=np.int64)
    sq_dist = cuda.device_array(rows.shape[0], dtype=np.float64)
    cuda_bmu.best_matching_units(X, rows, codebook, bmu, sq_dist)
    return bmu, sq_dist


def unit_statistics(X, codebook, *, rows=None, error=None, out=None) -> DeviceUnitStatistics:
    """Hit counts ``c = E^T 1`` and sums ``S = E^T X`` of ``X[rows]`` against ``codebook``.

    ``error``: a (1,) float64 device array the squared distances are added into (so a
    pass can sum them over mini-batches without a host synchronisation); a fresh one by
    default. ``out``: optional device buffers ``(counts, sums, bmu, sq_dist)`` to reuse
    (zeroed here on the device; ``bmu``/``sq_dist`` at least as long as ``rows``).
    """
    from ..._kernels import cuda_bmu, cuda_update

    X = as_device_array(X)
    codebook = _codebook_for(X, codebook)
    rows = _rows(X.shape[0], rows)
    n_units, n_features = codebook.shape
    n_rows = rows.shape[0]
    cuda = _cuda()
    if out is None:
        counts = cuda.device_array(n_units, dtype=np.float64)
        sums = cuda.device_array((n_units, n_features), dtype=np.float64)
        bmu = cuda.device_array(n_rows, dtype=np.int64)
        sq_dist = cuda.device_array(n_rows, dtype=np.float64)
    else:
        counts, sums, bmu, sq_dist = out
        bmu, sq_dist = bmu[:n_rows], sq_dist[:n_rows]
    cuda_update.zero(counts)
    cuda_update.zero(sums)
    if error is None:
        error = cuda.device_array(1, dtype=np.float64)
        cuda_update.zero(error)
    cuda_bmu.best_matching_units(X, rows, codebook, bmu, sq_dist, counts, sums, error)
    return DeviceUnitStatistics(counts, sums, error, int(n_rows))


def neighbourhood_matrix(neighbourhood, distances, t: float, out=None):
    """Dense ``H_t`` on the device from device grid distances; None for "none" (H = I)."""
    from ..._kernels import cuda_smoothing

    if neighbourhood.kind == "none":
        return None
    distances = as_device_array(distances)
    if out is None:
        out = _cuda().device_array(distances.shape, dtype=np.float64)
    cuda_smoothing.neighbourhood_matrix(
        distances,
        neighbourhood.code,
        float(neighbourhood.radius(float(t))),
        float(neighbourhood.hard_weight(float(t))),
        out,
    )
    return out


def smooth_statistics(neighbourhood_matrix, counts, sums, *, out=None):
    """``n = H c``, ``s = H S`` on the device; ``None`` stands for ``H = I``.

    ``out``: optional ``(counts, sums)`` float64 device buffers for the results.
    """
    from ..._kernels import cuda_smoothing

    if neighbourhood_matrix is None:
        return counts, sums
    if out is None:
        cuda = _cuda()
        out = (
            cuda.device_array(counts.shape, dtype=np.float64),
            cuda.device_array(sums.shape, dtype=np.float64),
        )
    cuda_smoothing.smooth(as_device_array(neighbourhood_matrix), counts, sums, out[0], out[1])
    return out


def batch_update_inplace(codebook, counts, sums):
    """:func:`somvq.algorithms.batch_update` in place on the device codebook; returns it."""
    from ..._kernels import cuda_update

    cuda_update.batch_update_inplace(codebook, counts, sums)
    return codebook


def ema_update_inplace(ema_count, ema_sum, codebook, counts, sums, *, decay, eps, update="all"):
    """:func:`somvq.algorithms.ema_update` in place on device arrays; returns them."""
    from ..._kernels import cuda_update

    cuda_update.ema_update_inplace(
        ema_count, ema_sum, codebook, counts, sums, decay=decay, eps=eps, update=update
    )
    return ema_count, ema_sum, codebook


def online_pass_inplace(
    X,
    order,
    codebook,
    unit_counts,
    neighbourhood,
    grid_distances,
    t0,
    *,
    learning_rate,
    masked=False,
    layers=None,
):
    """:func:`somvq.algorithms.online_pass_inplace` on the device; ``codebook``/``unit_counts`` in place.

    ``grid_distances``: the (K, K) grid distances (host or device); ``codebook`` and
    ``unit_counts`` must be device arrays to see the result. ``masked``: the
    ``missing="ignore"`` pass (:func:`somvq.missing.masked_pass`'s online rule).
    ``layers``: a layered search's device arrays (:func:`somvq.engines.cuda.masked.online_layer_arrays`;
    :func:`somvq.layers.layered_online_pass`'s rule) or None.
    """
    from ..._kernels import cuda_online

    lr_code, lr_params = learning_rate_parameters(learning_rate)
    cuda = _cuda()
    cuda_online.online_pass(
        as_device_array(X),
        codebook,
        _rows(0, np.asarray(order, dtype=np.int64)) if isinstance(order, np.ndarray) else order,
        as_device_array(np.ascontiguousarray(grid_distances, dtype=np.float64))
        if isinstance(grid_distances, np.ndarray)
        else grid_distances,
        neighbourhood.code,
        neighbourhood.radius.code,
        cuda.to_device(neighbourhood.kernel_parameters()),
        lr_code,
        cuda.to_device(lr_params),
        unit_counts,
        int(t0),
        masked,
        layers,
    )
