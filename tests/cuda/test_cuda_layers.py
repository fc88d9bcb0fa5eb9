"""Layered maps on the CUDA engine (issue 14): the scaled-columns trick, and tanimoto refused."""

import numpy as np
import pytest

from somvq import KSOM


def test_cuda_layered_batch_fit_matches_the_cpu():
    X = np.random.default_rng(0).normal(size=(40, 3))
    params = dict(grid=(2, 3), n_epochs=2, random_state=0, layers=[[0], [1, 2]], layer_weights=[4.0, 0.25])
    cpu = KSOM(**params).fit(X)
    gpu = KSOM(**params, backend="cuda").fit(X)
    np.testing.assert_allclose(gpu.codebook_, cpu.codebook_, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(gpu.labels_, cpu.labels_)


def test_cuda_tanimoto_layer_is_a_clear_error():
    X = np.random.default_rng(0).normal(size=(20, 3))
    X[:, 1:] = X[:, 1:] > 0
    som = KSOM(grid=(2, 2), backend="cuda", layers=[[0], [1, 2]], layer_distances=["sqeuclidean", "tanimoto"])
    with pytest.raises(
        ValueError, match="tanimoto layers train with algorithm='batch' on the CPU engine only"
    ):
        som.fit(X)
