"""The CUDA engine: the functions of :mod:`somvq.algorithms` on device arrays.

Imported only when ``backend="cuda"`` is used (never by ``import somvq`` or by the
estimator module), and it imports ``numba.cuda`` only inside its functions. Kernels live
in ``somvq/_kernels/cuda_*.py``, mirroring the CPU modules.

Inputs: NumPy arrays (copied to the device once per ``fit``/``partial_fit`` call) and any
object exposing ``__cuda_array_interface__`` (numba device arrays, CuPy arrays, torch CUDA
tensors), used in place through ``numba.cuda.as_cuda_array``: no copy, any strides.

State: the estimator's fitted attributes stay NumPy arrays (``codebook_`` and the EMA state
are copied back after every call, O(K D)). The engine keeps a private device copy of the
codebook, the EMA state, the online hit counts and the grid distances per estimator, and
reuses it on the next ``partial_fit`` (or epoch) as long as the host attributes still hold
the values it last wrote; if they were changed (``set_params``, a user edit, ``load``),
the device copy is rebuilt from them.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from .exceptions import BackendUnavailableError

__all__ = [
    "DeviceData",
    "DeviceUnitStatistics",
    "assign",
    "availability",
    "batch_update",
    "ema_update",
    "neighbourhood_matrix",
    "online_pass",
    "require_cuda",
    "run_pass",
    "smooth_statistics",
    "unit_statistics",
    "validate_training_data",
]


# ------------------------------------------------------------------ availability
def _cuda():
    from numba import cuda

    return cuda


def simulator_enabled() -> bool:
    """True when numba runs CUDA code in its simulator (NUMBA_ENABLE_CUDASIM=1)."""
    from numba.core import config

    return bool(getattr(config, "ENABLE_CUDASIM", 0))


def availability() -> str | None:
    """None when CUDA kernels can run here, else the reason they cannot."""
    try:
        cuda = _cuda()
    except Exception as exc:  # pragma: no cover - numba without a CUDA target
        return f"numba.cuda cannot be imported ({exc})"
    if simulator_enabled():
        return None
    try:
        if cuda.is_available():
            return None
    except Exception as exc:  # pragma: no cover - broken driver
        return f"the CUDA driver failed ({exc})"
    return "no CUDA GPU and driver were found (numba.cuda.is_available() is False)"


def require_cuda() -> None:
    """Raise :class:`BackendUnavailableError` unless a GPU (or the simulator) is usable."""
    reason = availability()
    if reason is not None:
        raise BackendUnavailableError(
            f"backend='cuda' was requested but cannot run here: {reason}. Use backend='cpu', "
            "or run on a machine with an NVIDIA GPU and the numba-cuda package "
            "(pip install 'somvq[cuda]'); NUMBA_ENABLE_CUDASIM=1 runs the simulator."
        )


# ------------------------------------------------------------------ device arrays
def _detached(X: Any) -> Any:
    """A torch tensor that requires grad, detached: torch refuses it the array interface."""
    if getattr(X, "requires_grad", False) and hasattr(X, "detach"):
        return X.detach()
    return X


def is_device_array(X: Any) -> bool:
    """True for numba device arrays and objects with ``__cuda_array_interface__``."""
    X = _detached(X)
    if hasattr(X, "__cuda_array_interface__"):
        return True
    cuda = _cuda()
    check = getattr(getattr(cuda, "devicearray", None), "is_cuda_ndarray", None)
    return bool(check(X)) if check is not None else False


def as_device_array(X: Any):
    """A numba device array for ``X``: the same memory for device inputs, a copy of host ones."""
    if isinstance(X, DeviceData):
        return X.device
    cuda = _cuda()
    check = getattr(getattr(cuda, "devicearray", None), "is_cuda_ndarray", None)
    if check is not None and check(X):
        return X
    X = _detached(X)
    if hasattr(X, "__cuda_array_interface__"):
        return cuda.as_cuda_array(X)
    return cuda.to_device(np.ascontiguousarray(X))


class DeviceData:
    """Validated training data on the device, as the estimator's fit loop sees it.

    Offers what :func:`somvq.initialisation.initial_codebook` reads from ``X``: ``shape``,
    ``dtype``, ``mean``/``std`` (computed on the device), row gathers (on the device, the
    ``K`` rows copied back), and ``__array__`` (a host copy; only ``init="pca"`` asks for
    it when the input lives on the device).
    """

    def __init__(self, device, host: np.ndarray | None = None):
        self.device = device
        self.host = host
        self._moments: tuple[np.ndarray, np.ndarray] | None = None

    shape = property(lambda self: tuple(self.device.shape))
    dtype = property(lambda self: np.dtype(self.device.dtype))
    ndim = property(lambda self: 2)

    def __len__(self) -> int:
        return self.shape[0]

    def _column_moments(self):
        if self._moments is None:
            from ._kernels import cuda_update

            self._moments = cuda_update.column_moments(self.device)
        return self._moments

    def mean(self, axis=0, dtype=None):
        if self.host is not None:
            return self.host.mean(axis=axis, dtype=dtype)
        if axis != 0:
            raise NotImplementedError("DeviceData.mean supports axis=0 only")
        return self._column_moments()[0].astype(dtype or np.float64, copy=False)

    def std(self, axis=0, dtype=None):
        if self.host is not None:
            return self.host.std(axis=axis, dtype=dtype)
        if axis != 0:
            raise NotImplementedError("DeviceData.std supports axis=0 only")
        return self._column_moments()[1].astype(dtype or np.float64, copy=False)

    def __getitem__(self, index):
        if self.host is not None:
            return self.host[index]
        rows = np.asarray(index)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise TypeError("DeviceData supports gathers of rows by an integer index array only")
        from ._kernels import cuda_update

        cuda = _cuda()
        out = cuda.device_array((rows.shape[0], self.shape[1]), dtype=self.dtype)
        cuda_update.take_rows(self.device, cuda.to_device(rows.astype(np.int64)), out)
        return out.copy_to_host()

    def __array__(self, dtype=None, copy=None):
        host = self.host if self.host is not None else _copy_to_host(self.device)
        return host if dtype is None else host.astype(dtype, copy=False)


def _copy_to_host(device) -> np.ndarray:
    cuda = _cuda()
    if device.is_c_contiguous():
        return device.copy_to_host()
    out = cuda.device_array(device.shape, dtype=device.dtype)
    from ._kernels import cuda_update

    cuda_update.cast(device, out)
    return out.copy_to_host()


def validate_training_data(estimator, X, *, reset: bool) -> DeviceData:
    """The CUDA twin of ``validate_data(estimator, X, dtype=[float64, float32], ...)``.

    Host inputs are validated by scikit-learn as on the CPU, then copied to the device
    once. Device inputs are checked on the device (2-D, non-empty, finite, feature count)
    and used in place; other dtypes than float32/float64 become a float64 device copy.
    With ``reset=False`` and a fitted codebook, the data takes the codebook's dtype.
    """
    require_cuda()
    fitted_dtype = None
    if not reset and hasattr(estimator, "codebook_"):
        fitted_dtype = np.dtype(estimator.codebook_.dtype)
    if not is_device_array(X):
        from ._sklearn import validate_data

        host = validate_data(estimator, X, dtype=[np.float64, np.float32], order="C", reset=reset)
        if fitted_dtype is not None and host.dtype != fitted_dtype:
            host = host.astype(fitted_dtype)
        return DeviceData(_cuda().to_device(host), host)

    from ._kernels import cuda_update

    device = as_device_array(X)
    if device.ndim != 2:
        raise ValueError(
            f"Expected a 2-D array, got a {device.ndim}-D device array of shape "
            f"{tuple(device.shape)}; reshape your data."
        )
    n_samples, n_features = device.shape
    if n_samples < 1 or n_features < 1:
        raise ValueError(
            f"Found array with shape {tuple(device.shape)} while at least 1 sample and 1 "
            "feature are required."
        )
    if not reset and hasattr(estimator, "n_features_in_") and n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    dtype = np.dtype(device.dtype)
    target = fitted_dtype or (dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64))
    if dtype != target:
        cast = _cuda().device_array(device.shape, dtype=target)
        cuda_update.cast(device, cast)
        device = cast
    if not cuda_update.all_finite(device):
        raise ValueError("Input X contains NaN or infinity.")
    if reset:
        estimator.n_features_in_ = n_features
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    return DeviceData(device)


# ------------------------------------------------------------------ algorithm layer
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
    from ._kernels import cuda_bmu

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
    from ._kernels import cuda_bmu, cuda_update

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
    from ._kernels import cuda_smoothing

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
    from ._kernels import cuda_smoothing

    if neighbourhood_matrix is None:
        return counts, sums
    if out is None:
        cuda = _cuda()
        out = (cuda.device_array(counts.shape, dtype=np.float64), cuda.device_array(sums.shape, dtype=np.float64))
    cuda_smoothing.smooth(as_device_array(neighbourhood_matrix), counts, sums, out[0], out[1])
    return out


def batch_update(codebook, counts, sums):
    """``w_k <- s_k / n_k`` in place on the device codebook (units with n_k <= 0 keep w_k)."""
    from ._kernels import cuda_update

    cuda_update.batch_update(codebook, counts, sums)
    return codebook


def ema_update(ema_count, ema_sum, codebook, counts, sums, *, decay, eps, update="all"):
    """The paper's KSOM-EMA update (E1)-(E4), in place on device arrays; returns them."""
    from ._kernels import cuda_update

    cuda_update.ema_update(ema_count, ema_sum, codebook, counts, sums, decay=decay, eps=eps, update=update)
    return ema_count, ema_sum, codebook


def online_pass(X, codebook, order, grid_distances, neighbourhood, learning_rate, unit_counts, t0):
    """Online KSOM over ``X[order]`` on the device; ``codebook``/``unit_counts`` in place.

    Arguments as :func:`somvq.algorithms.online_pass`; arrays may be host or device ones
    (``codebook`` and ``unit_counts`` must be device arrays to see the result).
    """
    from ._kernels import cuda_online

    if isinstance(learning_rate, str):
        if learning_rate != "inverse_count":
            raise ValueError(f"learning_rate={learning_rate!r} is not a schedule or 'inverse_count'.")
        lr_code, lr_params = cuda_online.INVERSE_COUNT, np.zeros(4)
    else:
        lr_code = learning_rate.code
        lr_params = np.array(
            [learning_rate.start, learning_rate.end, learning_rate.shrink, learning_rate.horizon],
            dtype=np.float64,
        )
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
    )


# ------------------------------------------------------------------ device-resident state
class _DeviceState:
    """Device copies of one estimator's state, with the host values they correspond to."""

    def __init__(self, state: dict, grid):
        cuda = _cuda()
        self.grid = grid
        self.distances = cuda.to_device(np.ascontiguousarray(grid.distances, dtype=np.float64))
        self.matrix = None
        self.codebook = cuda.to_device(np.ascontiguousarray(state["codebook_"]))
        self.ema_count = cuda.to_device(np.ascontiguousarray(state["ema_count_"], dtype=np.float64))
        self.ema_sum = cuda.to_device(np.ascontiguousarray(state["ema_sum_"], dtype=np.float64))
        self.unit_counts = cuda.to_device(np.ascontiguousarray(state["unit_counts_"], dtype=np.float64))
        # Scratch buffers reused by every step (no allocation or transfer per mini-batch).
        n_units, n_features = self.codebook.shape
        self.statistics = (
            cuda.device_array(n_units, dtype=np.float64),
            cuda.device_array((n_units, n_features), dtype=np.float64),
        )
        self.smoothed = (
            cuda.device_array(n_units, dtype=np.float64),
            cuda.device_array((n_units, n_features), dtype=np.float64),
        )
        self.rows_capacity = 0
        self.row_buffers = None
        self.snapshot(state)

    def step_buffers(self, n_rows: int):
        """``(counts, sums, bmu, sq_dist)`` scratch for steps of up to ``n_rows`` rows."""
        if n_rows > self.rows_capacity:
            cuda = _cuda()
            self.row_buffers = (
                cuda.device_array(n_rows, dtype=np.int64),
                cuda.device_array(n_rows, dtype=np.float64),
            )
            self.rows_capacity = n_rows
        return self.statistics + self.row_buffers

    def snapshot(self, state: dict) -> None:
        self.host = {name: np.array(state[name], copy=True) for name in _SYNCED}

    def matches(self, state: dict, grid) -> bool:
        if grid != self.grid:
            return False
        for name in _SYNCED:
            value = state.get(name)
            known = self.host[name]
            if not isinstance(value, np.ndarray) or value.dtype != known.dtype:
                return False
            if value.shape != known.shape or not np.array_equal(value, known):
                return False
        return True

    def write_back(self, state: dict) -> None:
        state["codebook_"] = self.codebook.copy_to_host()
        state["ema_count_"] = self.ema_count.copy_to_host()
        state["ema_sum_"] = self.ema_sum.copy_to_host()
        state["unit_counts_"] = self.unit_counts.copy_to_host()
        self.snapshot(state)


_SYNCED = ("codebook_", "ema_count_", "ema_sum_", "unit_counts_")
_STATES: "weakref.WeakKeyDictionary[Any, _DeviceState]" = weakref.WeakKeyDictionary()


def device_state(owner, state: dict, grid) -> _DeviceState:
    """The device copy of ``state`` kept for ``owner``, rebuilt if the host values changed."""
    cached = _STATES.get(owner)
    if cached is None or not cached.matches(state, grid):
        cached = _STATES[owner] = _DeviceState(state, grid)
    return cached


def device_codebook(owner):
    """The device codebook kept for ``owner`` (None before its first CUDA pass)."""
    cached = _STATES.get(owner)
    return None if cached is None else cached.codebook


def run_pass(
    owner, X, order, grid, state: dict, *, algorithm: str, neighbourhood, learning_rate,
    batch_size: int, decay: float, eps: float, update: str,
) -> float:
    """One pass of ``algorithm`` over ``X[order]`` on the device: the CUDA ``_one_pass``.

    Updates ``state`` as the CPU pass does (``codebook_``, the EMA state, the hit counts
    and ``n_steps_``, copied back to the host at the end) and returns the summed squared
    distances to the winners met during the pass.
    """
    device = device_state(owner, state, grid)
    Xd = as_device_array(X)
    cuda = _cuda()
    order_d = cuda.to_device(np.ascontiguousarray(order, dtype=np.int64))
    n = int(order_d.shape[0])
    error = _zeros(1)
    buffers = device.step_buffers(n if algorithm != "minibatch" else min(n, batch_size))
    if device.matrix is None and neighbourhood.kind != "none":
        device.matrix = cuda.device_array(device.distances.shape, dtype=np.float64)
    if algorithm == "batch":
        stats = unit_statistics(Xd, device.codebook, rows=order_d, error=error, out=buffers)
        H = neighbourhood_matrix(neighbourhood, device.distances, state["n_steps_"], out=device.matrix)
        counts, sums = smooth_statistics(H, stats.counts, stats.sums, out=device.smoothed)
        batch_update(device.codebook, counts, sums)
        state["n_steps_"] += 1
    elif algorithm == "minibatch":
        for start in range(0, n, batch_size):
            rows = order_d[start : min(start + batch_size, n)]
            stats = unit_statistics(Xd, device.codebook, rows=rows, error=error, out=buffers)
            H = neighbourhood_matrix(neighbourhood, device.distances, state["n_steps_"], out=device.matrix)
            counts, sums = smooth_statistics(H, stats.counts, stats.sums, out=device.smoothed)
            ema_update(
                device.ema_count, device.ema_sum, device.codebook, counts, sums,
                decay=decay, eps=eps, update=update,
            )
            state["n_steps_"] += 1
    elif algorithm == "online":
        online_pass(
            Xd, device.codebook, order_d, device.distances, neighbourhood, learning_rate,
            device.unit_counts, state["n_steps_"],
        )
        state["n_steps_"] += n
        # As the CPU pass: the error is measured once, after the pass.
        unit_statistics(Xd, device.codebook, rows=order_d, error=error, out=buffers)
    else:
        raise ValueError(f"algorithm={algorithm!r} is not one of ('online', 'batch', 'minibatch').")
    device.write_back(state)
    return float(error.copy_to_host()[0])


def labels(owner, X, codebook: np.ndarray) -> np.ndarray:
    """BMU of every row of ``X`` as a host int64 array (the estimator's ``labels_``)."""
    cached = _STATES.get(owner)
    if cached is not None and np.array_equal(cached.host["codebook_"], codebook):
        codebook = cached.codebook
    return assign(X, codebook)[0].copy_to_host()
