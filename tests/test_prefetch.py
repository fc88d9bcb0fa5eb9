"""cpu_prefetch.prefetch_row: a hint that changes no value, for any layout of the rows."""

import numpy as np
import pytest
from numba import njit

from somvq._kernels.cpu_prefetch import prefetch_row


@njit
def _gather_with_hints(data, index, out):
    for i in range(index.shape[0]):
        if i + 3 < index.shape[0]:
            prefetch_row(data, index[i + 3])
        prefetch_row(data, index[i])
        for j in range(data.shape[1]):
            out[i, j] = data[index[i], j]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "F", "reversed columns", "every other row", "no columns", "wide"])
def test_gather_with_hints_is_a_gather(dtype, layout):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 37)).astype(dtype) + 50.0
    data = {
        "C": X,
        "F": np.asfortranarray(X),
        "reversed columns": X[:, ::-1],
        "every other row": X[::2],
        "no columns": X[:, :0],
        "wide": np.repeat(X, 40, axis=1),  # rows of many cache lines
    }[layout]
    index = rng.integers(0, data.shape[0], 200)
    out = np.empty((index.shape[0], data.shape[1]), dtype=dtype)
    _gather_with_hints(data, index, out)
    np.testing.assert_array_equal(out, data[index])
