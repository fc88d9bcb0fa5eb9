"""CUDA device data: availability, device arrays, and validated training data on the device.

Inputs: NumPy arrays (copied to the device once per ``fit``/``partial_fit`` call) and any
object exposing ``__cuda_array_interface__`` (numba device arrays, CuPy arrays, torch CUDA
tensors), used in place through ``numba.cuda.as_cuda_array``: no copy, any strides.
``numba.cuda`` is imported inside the functions only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..._validation import check_peak_in_map_dtype, check_training_peak, in_map_dtype, largest_magnitude
from ...exceptions import BackendUnavailableError

__all__ = [
    "DeviceData",
    "as_device_array",
    "availability",
    "is_device_array",
    "require_cuda",
    "simulator_enabled",
    "validate_training_data",
]


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

    #: True when the rows hold NaN (``missing="ignore"``: the masked path runs).
    has_missing = False

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
            from ..._kernels import cuda_update

            self._moments = cuda_update.column_moments(self.device)
        return self._moments

    def _moment(self, which: int, name: str, axis, dtype):
        if self.host is not None:
            return getattr(self.host, name)(axis=axis, dtype=dtype)
        if axis != 0:
            raise NotImplementedError(f"DeviceData.{name} supports axis=0 only")
        return self._column_moments()[which].astype(dtype or np.float64, copy=False)

    def mean(self, axis=0, dtype=None):
        return self._moment(0, "mean", axis, dtype)

    def std(self, axis=0, dtype=None):
        return self._moment(1, "std", axis, dtype)

    def __getitem__(self, index):
        if self.host is not None:
            return self.host[index]
        rows = np.asarray(index)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise TypeError("DeviceData supports gathers of rows by an integer index array only")
        from ..._kernels import cuda_update

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
    from ..._kernels import cuda_update

    cuda_update.cast(device, out)
    return out.copy_to_host()


#: The CUDA kernels rank units by direct float64 sums of squared differences (no frame):
#: with every value below ~1e-154 the squares underflow and every distance ties.
_SMALLEST_PEAK = 1e-140


def _check_device_range(peak: float, n_features: int) -> None:
    """Refuse float64 training data of largest magnitude ``peak`` that the CUDA kernels
    cannot rank: so large that squared distances overflow (the CPU's refusal,
    :func:`somvq._validation.check_training_peak`), or so small that they underflow (the
    CPU engine scales such data by a power of two and trains the same map)."""
    if not math.isfinite(peak):
        return  # inf: the finite and missing-value checks name it
    check_training_peak(peak, n_features)
    if 0.0 < peak < _SMALLEST_PEAK:
        raise ValueError(
            f"the training data's largest value is {peak:.3g}: backend='cuda' ranks units by "
            "direct float64 squared distances, which underflow below ~1e-154 and would all tie. "
            "Rescale the data (e.g. standardize it), or use backend='cpu', which trains the same "
            "map at any scale."
        )


def validate_training_data(estimator, X, *, reset: bool, dtype=None, allow_nan: bool = False) -> DeviceData:
    """The CUDA twin of ``validate_data(estimator, X, dtype=[float64, float32], ...)``.

    Host inputs are validated by scikit-learn as on the CPU, then copied to the device
    once. Device inputs are checked on the device (2-D, non-empty, finite, feature count)
    and used in place; other dtypes than float32/float64 become a float64 device copy.
    ``dtype`` (the fitted codebook's, when a fit continues): the dtype the data takes.
    ``allow_nan`` (``missing="ignore"``): NaN passes here; host rows are checked as on the
    CPU (:func:`somvq._validation.validate_rows`), device rows by the caller
    (:func:`somvq.engines.cuda.masked.validate_masked_training_data`).
    """
    require_cuda()
    fitted_dtype = None if dtype is None else np.dtype(dtype)
    if not is_device_array(X):
        from ..._sklearn import validate_data
        from ..._validation import validate_rows

        options = {"dtype": [np.float64, np.float32], "order": "C", "reset": reset}
        if allow_nan:  # the rows checked as on the CPU, inf and the rows' limits named
            host = validate_rows(estimator, X, max_missing=float(estimator.max_missing), **options)
        else:
            host = validate_data(estimator, X, ensure_all_finite=True, **options)
        if fitted_dtype is not None:
            host = in_map_dtype(host, fitted_dtype)  # refuses values beyond a float32 map
        if host.dtype == np.float64:
            _check_device_range(largest_magnitude(host), host.shape[1])
        return DeviceData(_cuda().to_device(host), host)

    from ..._kernels import cuda_update

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
        if dtype.kind == "f" and np.finfo(target).max < np.finfo(dtype).max:
            # a float32 map given float64 rows: refused beyond float32, as in_map_dtype does
            peak = cuda_update.largest_magnitude(device)
            if math.isfinite(peak):  # inf: the finite and missing-value checks name it
                check_peak_in_map_dtype(peak, target)
        cast = _cuda().device_array(device.shape, dtype=target)
        cuda_update.cast(device, cast)
        device = cast
    if not allow_nan and not cuda_update.all_finite(device):
        raise ValueError("Input X contains NaN or infinity.")
    if target == np.float64:
        _check_device_range(cuda_update.largest_magnitude(device), n_features)
    if reset:
        estimator.n_features_in_ = n_features
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    return DeviceData(device)
