"""Initial codebooks.

``"random"``  Gaussian draws with the data's per-feature mean and standard deviation.
``"normal"``  standard normal N(0, I), independent of the data (the paper's VQ-VAE init).
``"sample"``  K rows of the data, drawn without replacement (needs n >= K; repeated rows can give equal units).
``"pca"``     the grid laid out on the plane (or space) of the leading principal
              components, spanning +-sqrt(eigenvalue) along each, largest grid axis on the
              first component (classic linear SOM initialisation; needs n >= 2).
"""

from __future__ import annotations

import numpy as np

from ._moments import column_moments, mean_and_covariance
from ._validation import check_training_range
from .grids import Grid
from .missing import check_observed_columns

__all__ = ["initial_codebook", "INIT_METHODS", "reads_data"]

INIT_METHODS = ("random", "normal", "sample", "pca")


def reads_data(method: str | np.ndarray) -> bool:
    """Whether :func:`initial_codebook` reads the rows' values for ``method`` (an init
    array and ``"normal"`` take only their shape and dtype): with holes, only then does an
    engine make the mean-filled copy of the data it initialises from."""
    return isinstance(method, str) and method != "normal"


def initial_codebook(
    method: str | np.ndarray, X: np.ndarray, grid: Grid, rng: np.random.Generator
) -> np.ndarray:
    """A ``(K, D)`` codebook in ``X``'s dtype, C-contiguous and writable."""
    n_samples, n_features = X.shape
    n_units = grid.n_units
    if not isinstance(method, str):
        codebook = np.asarray(method)
        if codebook.shape != (n_units, n_features):
            raise ValueError(
                f"init array has shape {codebook.shape}, expected (n_units, n_features) = "
                f"({n_units}, {n_features})."
            )
        if codebook.dtype.kind not in "biuf" or not np.all(np.isfinite(codebook)):
            raise ValueError(
                f"init array must hold finite real numbers (found NaN, inf, or dtype {codebook.dtype})."
            )
        with np.errstate(over="ignore"):
            cast = np.array(codebook, dtype=X.dtype, order="C", copy=True)
        if not np.all(np.isfinite(cast)):
            raise ValueError(
                f"init array holds values up to {float(np.max(np.abs(codebook))):.3g} in absolute "
                f"value, beyond the data's dtype {X.dtype} (its largest is {np.finfo(X.dtype).max:.3g})."
            )
        check_training_range(cast, "the init array", "Give an init array on the data's scale.")
        return cast
    if method == "normal":
        codebook = rng.standard_normal((n_units, n_features))
    elif method == "random":
        mean, std = column_moments(X)  # right at any magnitude (X.std underflows below 1e-154)
        codebook = mean + std * rng.standard_normal((n_units, n_features))
    elif method == "sample":
        if n_samples < n_units:
            raise ValueError(f"n_samples={n_samples} should be >= n_units={n_units} for init='sample'.")
        codebook = X[rng.choice(n_samples, size=n_units, replace=False)]
    elif method == "pca":
        check_observed_columns(X.mean(axis=0, dtype=np.float64), f"init={method!r}")
        codebook = _pca_codebook(X, grid)
    else:
        raise ValueError(f"init={method!r} is not one of {INIT_METHODS} or an array.")
    check_observed_columns(codebook, f"init={method!r}")
    return np.array(codebook, dtype=X.dtype, order="C", copy=True)


def _pca_codebook(X: np.ndarray, grid: Grid) -> np.ndarray:
    n_samples, n_features = X.shape
    if n_samples < 2:
        raise ValueError(f"n_samples={n_samples} should be >= 2 for init='pca'.")
    # The principal axes and their standard deviations from the D x D covariance, built
    # from blocks of rows (an SVD of the centred rows copied X in float64 and more: 1.27 GiB
    # and 7.8 s for Fashion-MNIST's 70,000 x 784, against 0.2 GiB of data).
    mean, covariance, s = mean_and_covariance(X)  # (the covariance of X s: any magnitude)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(-eigenvalues, kind="stable")[: min(n_samples, n_features)]
    components = eigenvectors.T[order]
    # Deterministic signs: the largest-magnitude entry of each component is positive.
    signs = np.sign(components[np.arange(components.shape[0]), np.abs(components).argmax(1)])
    signs[signs == 0] = 1.0
    components = components * signs[:, None]
    scale = np.sqrt(np.maximum(eigenvalues[order], 0.0)) / s

    coords = grid.coordinates
    span = coords.max(axis=0) - coords.min(axis=0)
    unit_coords = np.where(span > 0, (coords - coords.min(axis=0)) / np.where(span > 0, span, 1), 0.5)
    unit_coords = 2.0 * unit_coords - 1.0  # in [-1, 1]
    codebook = np.repeat(mean[None, :], grid.n_units, axis=0)
    # Largest grid axis along the first principal component, and so on.
    axis_order = np.argsort(-span, kind="stable")
    for rank, axis in enumerate(axis_order):
        if rank >= components.shape[0]:
            break
        codebook += np.outer(unit_coords[:, axis] * scale[rank], components[rank])
    return codebook
