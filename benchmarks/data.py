"""Benchmark data sets and the shared initial codebook.

Every data set is float32 (all peers but MiniSom compute in float32). Fashion-MNIST is read
from the IDX gzip files of the Debian package ``dataset-fashion-mnist`` with a small local
reader, so the benchmark does not depend on any loader of the library under test.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

FASHION_DIRS = (
    os.environ.get("SOMVQ_FASHION_MNIST", ""),
    "/usr/share/datasets/fashion-mnist",
)


def read_idx(path: Path) -> np.ndarray:
    """Read one (optionally gzip-compressed) IDX file into an ndarray."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist() -> np.ndarray:
    """The 70 000 Fashion-MNIST images as (70000, 784) float32 in [0, 1]."""
    for folder in FASHION_DIRS:
        if folder and Path(folder, "train-images-idx3-ubyte.gz").exists():
            parts = [
                read_idx(Path(folder, name))
                for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")
            ]
            images = np.concatenate(parts).reshape(-1, 28 * 28)
            return images.astype(np.float32) / 255.0
    raise FileNotFoundError(
        "Fashion-MNIST IDX files not found; install them with "
        "`apt-get install dataset-fashion-mnist` or set SOMVQ_FASHION_MNIST to their folder."
    )


def digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float32)


def gaussian_mixture(n_samples: int, n_features: int, n_components: int = 32, seed: int = 0):
    """Isotropic Gaussian blobs with centres spread in a unit-variance cloud."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    X += centres[labels].astype(np.float32)
    return X


def load(name: str) -> np.ndarray:
    """``digits``, ``fashion``, or ``gauss-N-D`` (e.g. ``gauss-100000-32``)."""
    if name == "digits":
        return digits()
    if name == "fashion":
        return fashion_mnist()
    if name.startswith("gauss-"):
        _, n, d = name.split("-")
        return gaussian_mixture(int(float(n)), int(d))
    raise ValueError(f"unknown data set {name!r}")


def initial_codebook(X: np.ndarray, n_units: int, seed: int = 0) -> np.ndarray:
    """K distinct rows of X: the same initial codebook for every library."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(X.shape[0], size=n_units, replace=X.shape[0] < n_units)
    return np.ascontiguousarray(X[idx], dtype=np.float32)


def with_holes(X: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """A copy of ``X`` with ``fraction`` of its entries set to NaN, uniformly at random.

    Seeded (the same holes in every run); a row that would lose every entry keeps its
    first one, so no row is all-NaN.
    """
    rng = np.random.default_rng(seed)
    holes = rng.random(X.shape) < fraction
    holes[holes.all(axis=1), 0] = False
    out = np.array(X, copy=True)
    out[holes] = np.nan
    return out
