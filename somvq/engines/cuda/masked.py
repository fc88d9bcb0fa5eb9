"""``missing="ignore"`` on the CUDA engine: the definitions of :mod:`somvq.missing` on the device.

* :func:`validate_masked_training_data` - the rows are checked by the CPU's
  :func:`somvq.missing.check_missing` (same errors: inf, rows with no observed feature,
  ``max_missing``), which also says whether the masked path is needed at all;
* :func:`masked_assign` - the masked BMU search: the tiled kernel of :mod:`cuda_bmu`
  built with ``masked=True`` sums ``(x_j - w_j)^2`` over the observed features in the
  data's dtype (direct sums, no cancellation: no reference frame needed) and keeps each
  row's best and second-best; the finishing kernel certifies the winner with the dense
  path's bound (:func:`somvq._kernels.cuda_bmu.direct_form_error`; skipped terms are exact
  zeros, so D terms bound a sum of n_obs), re-ranks near ties by direct float64 distances
  scaled by ``D / n_obs`` (lowest index on ties), and reports the direct float64 distance
  ``D / n_obs * sum_{j observed} (x_j - w_j)^2``: winners and distances as
  :func:`somvq.missing.masked_assign`;
* :func:`masked_unit_statistics` - hits (K,) and ``[sums | observed counts]`` (K, 2 D) over
  observed entries (atomics, or the deterministic segmented reduction);
* :func:`run_masked_pass` - batch (``w_kj`` kept where ``n_kj = 0``), mini-batch (the EMA
  count N is (K, D)) and online (observed features only), as :func:`somvq.missing.masked_pass`.

Layered maps (``plan.layers``, a :class:`somvq.layers.ScaledLayers`): batch and mini-batch
search the scaled rows against the search codebook (tanimoto columns thresholded on the
host, as the dense CUDA layered path does) with the ``layers=`` build of the kernels,
kohonen's per-layer rule (:func:`somvq.layers.layered_masked_assign` is the definition);
the statistics and updates are the masked ones above. Online: the online kernel's
``layers=`` build (:func:`somvq.layers.layered_online_pass`'s rule). One layer of every
column without tanimoto is the plain masked path (as on the CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import missing
from ...parameters import TrainingPlan
from ...state import FittedState
from . import steps
from .device import DeviceData, _copy_to_host, _cuda, as_device_array, validate_training_data
from .resident import device_state

__all__ = [
    "DeviceMaskedStatistics",
    "masked_assign",
    "masked_unit_statistics",
    "run_masked_pass",
    "validate_masked_training_data",
]


def validate_masked_training_data(estimator, X, *, reset: bool, dtype=None) -> DeviceData:
    """Training data for ``missing="ignore"``: NaN allowed, the rows checked as on the CPU.

    Host inputs are validated exactly as the CPU engine does
    (:func:`somvq._validation.validate_rows`); device inputs are copied to the host once
    for :func:`somvq.missing.check_missing` (and, when they hold NaN, for the
    mean-filled initialisation), so the errors are the CPU's; device data without NaN
    stays device data, as with ``missing="error"``.
    """
    data = validate_training_data(estimator, X, reset=reset, dtype=dtype, allow_nan=True)
    host = data.host
    if host is None:
        host = _copy_to_host(data.device)
        missing.check_missing(host, estimator.max_missing)
    data.has_missing = missing.has_missing(host)
    if data.has_missing:
        data.host = host  # the mean-filled initialisation reads it (CudaEngine.init_rows)
    return data


@dataclass
class DeviceMaskedStatistics:
    """:class:`somvq.missing.MaskedStatistics` with device arrays.

    ``hits`` (K,) and ``both`` (K, 2 D) = ``[sums | observed counts]`` are float64 device
    arrays; ``error`` a (1,) float64 device array holding the summed masked squared
    distances.
    """

    hits: Any
    both: Any
    error: Any
    n_samples: int


def layer_groups(layers):
    """``(group, group_size)`` device arrays for the ``layers=`` kernels, or None.

    ``layers``: a :class:`somvq.layers.ScaledLayers` or None; None also when its masked
    distance is the plain one (one group of every column, ``plain_masked``).
    """
    if layers is None or layers.plain_masked:
        return None
    cuda = _cuda()
    group = layers.kernel_arrays(np.float64)[0]
    sizes = np.asarray([cols.size for cols in layers.groups], dtype=np.float64)
    return cuda.to_device(np.ascontiguousarray(group)), cuda.to_device(sizes)


def online_layer_arrays(layers, X, order):
    """The ``layers=`` arguments of the online kernel: ``(group, level, high, factor)`` on the device.

    ``layers``: a :class:`somvq.layers.ScaledLayers`; ``factor`` holds ``D_g / n_obs,g``
    of the sample ``X[order[s]]`` in row ``s`` (as :func:`somvq.layers.layered_online_pass`).
    """
    from ..._kernels import cuda_bmu

    cuda = _cuda()
    arrays = layers.kernel_arrays(X.dtype)
    group, level, high = (cuda.to_device(np.ascontiguousarray(a)) for a in arrays)
    sizes = cuda.to_device(np.asarray([cols.size for cols in layers.groups], dtype=np.float64))
    return group, level, high, cuda_bmu.layer_factors(as_device_array(X), order, group, sizes)


def masked_assign(X, codebook, *, rows=None, layers=None):
    """BMU (int64) and masked squared distance (float64) of every row, as device arrays.

    ``layers``: a layered map's :class:`somvq.layers.ScaledLayers` (``codebook`` is then
    its search codebook, ``X`` in its scaled units) or None.
    """
    from ..._kernels import cuda_bmu

    X = as_device_array(X)
    codebook = steps._codebook_for(X, codebook)
    rows = steps._rows(X.shape[0], rows)
    cuda = _cuda()
    bmu = cuda.device_array(rows.shape[0], dtype=np.int64)
    sq_dist = cuda.device_array(rows.shape[0], dtype=np.float64)
    cuda_bmu.best_matching_units(X, rows, codebook, bmu, sq_dist, masked=True, layers=layer_groups(layers))
    return bmu, sq_dist


def masked_unit_statistics(
    X, codebook, *, rows=None, error=None, out=None, groups=None
) -> DeviceMaskedStatistics:
    """Hits, per unit and feature sums and counts over observed entries of ``X[rows]``.

    ``error``: a (1,) float64 device array the masked squared distances are added into.
    ``out``: optional device buffers ``(hits, both, bmu, sq_dist)`` to reuse (zeroed here).
    ``groups``: :func:`layer_groups` of a layered map (the winners by its per-layer rule,
    ``codebook`` its search codebook) or None.
    """
    from ..._kernels import cuda_bmu, cuda_update

    X = as_device_array(X)
    codebook = steps._codebook_for(X, codebook)
    rows = steps._rows(X.shape[0], rows)
    n_units, n_features = codebook.shape
    n_rows = rows.shape[0]
    cuda = _cuda()
    if out is None:
        hits = cuda.device_array(n_units, dtype=np.float64)
        both = cuda.device_array((n_units, 2 * n_features), dtype=np.float64)
        bmu = cuda.device_array(n_rows, dtype=np.int64)
        sq_dist = cuda.device_array(n_rows, dtype=np.float64)
    else:
        hits, both, bmu, sq_dist = out
        bmu, sq_dist = bmu[:n_rows], sq_dist[:n_rows]
    cuda_update.zero(hits)
    cuda_update.zero(both)
    if error is None:
        error = steps._zeros(1)
    cuda_bmu.best_matching_units(
        X, rows, codebook, bmu, sq_dist, hits, both, error, masked=True, layers=groups
    )
    return DeviceMaskedStatistics(hits, both, error, int(n_rows))


def run_masked_pass(owner, X, order: np.ndarray, plan: TrainingPlan, state: FittedState) -> float:
    """One pass of ``plan.algorithm`` over ``X[order]`` with the masked definitions, on the device.

    The CUDA twin of :func:`somvq.missing.masked_pass`; updates ``state`` (copied back
    after the pass) and returns the summed masked squared distance of the rows to their
    winners (online: measured after the pass).
    """
    from ..._kernels import cuda_missing

    if plan.algorithm == "minibatch" and np.ndim(state.ema_count) == 1:
        # A (K,) count (a dense state) becomes (K, D), as somvq.missing.masked_ema_update does.
        state.ema_count = np.array(
            np.broadcast_to(
                np.asarray(state.ema_count, dtype=np.float64).reshape(-1, 1), np.shape(state.ema_sum)
            )
        )
    device = device_state(owner, state)
    Xd = as_device_array(X)
    cuda = _cuda()
    order_d = cuda.to_device(np.ascontiguousarray(order, dtype=np.int64))
    n = int(order_d.shape[0])
    error = steps._zeros(1)
    rows_buffers = device.step_buffers(n if plan.algorithm != "minibatch" else min(n, plan.batch_size))[2:]
    hits, both, smoothed_hits, smoothed_both = device.masked_buffers()
    buffers = (hits, both) + tuple(rows_buffers)
    nb = plan.neighbourhood
    if device.matrix is None and nb.kind != "none":
        device.matrix = cuda.device_array(device.distances.shape, dtype=np.float64)
    layers = getattr(plan, "layers", None)  # layered maps: somvq.layers.ScaledLayers
    groups = layer_groups(layers)
    if plan.algorithm in ("batch", "minibatch"):
        step = n if plan.algorithm == "batch" else plan.batch_size
        for start in range(0, n, step):
            rows = order_d[start : min(start + step, n)] if step < n else order_d
            search = device.codebook
            if plan.search is not None:
                # tanimoto layers: the thresholded search codebook (K x D) made on the host
                search = cuda.to_device(np.ascontiguousarray(plan.search(device.codebook.copy_to_host())))
            stats = masked_unit_statistics(Xd, search, rows=rows, error=error, out=buffers, groups=groups)
            H = steps.neighbourhood_matrix(nb, device.distances, state.n_steps, out=device.matrix)
            _, smoothed = steps.smooth_statistics(
                H, stats.hits, stats.both, out=(smoothed_hits, smoothed_both)
            )
            if plan.algorithm == "batch":
                cuda_missing.masked_batch_update_inplace(device.codebook, smoothed)
            else:
                cuda_missing.masked_ema_update_inplace(
                    device.ema_count,
                    device.ema_sum,
                    device.codebook,
                    smoothed,
                    decay=plan.decay,
                    eps=plan.eps,
                    update=plan.update,
                )
            state.n_steps += 1
    else:  # online
        layered = groups is not None or plan.search is not None  # not the plain masked search
        steps.online_pass_inplace(
            Xd,
            order_d,
            device.codebook,
            device.unit_counts,
            nb,
            device.distances,
            state.n_steps,
            learning_rate=plan.learning_rate,
            masked=True,
            layers=online_layer_arrays(layers, Xd, order_d) if layered else None,
        )
        state.n_steps += n
        search = device.codebook
        if plan.search is not None:
            search = cuda.to_device(np.ascontiguousarray(plan.search(device.codebook.copy_to_host())))
        masked_unit_statistics(Xd, search, rows=order_d, error=error, out=buffers, groups=groups)
    device.write_back(state)
    return float(error.copy_to_host()[0])
