"""Layered maps on the CUDA engine (issue 14): the scaled-columns trick, tanimoto layers, NaN.

Every combination is held equal to the CPU engine (the definition, itself tested against
tests/naive.py in tests/test_layers.py and tests/test_layers_missing.py); the layered
masked kernel also directly against somvq.layers.layered_masked_assign.
"""

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


def _binary(n=30):
    X = np.random.default_rng(0).normal(size=(n, 3))
    X[:, 1:] = X[:, 1:] > 0
    return X


TANIMOTO = dict(layers=[[0], [1, 2]], layer_distances=["sqeuclidean", "tanimoto"], layer_weights=[1.0, 2.0])


@pytest.mark.parametrize("algorithm", ["batch", "minibatch"])
def test_cuda_tanimoto_layers_train_like_the_cpu(algorithm):
    X = _binary()
    params = dict(grid=(2, 2), n_epochs=2, random_state=0, algorithm=algorithm, batch_size=10, **TANIMOTO)
    cpu = KSOM(**params).fit(X)
    gpu = KSOM(**params, backend="cuda").fit(X)
    np.testing.assert_allclose(gpu.codebook_, cpu.codebook_, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(gpu.labels_, cpu.labels_)


@pytest.mark.parametrize("weights", [[1.0, 2.0], [0.0, 1.0]])
def test_cuda_online_tanimoto_layers_train_like_the_cpu(weights):
    X = _binary(20)
    params = dict(grid=(2, 2), n_epochs=2, random_state=0, algorithm="online", **TANIMOTO)
    params["layer_weights"] = weights
    cpu = KSOM(**params).fit(X)
    gpu = KSOM(**params, backend="cuda").fit(X)
    np.testing.assert_array_equal(gpu.labels_, cpu.labels_)
    np.testing.assert_allclose(gpu.codebook_, cpu.codebook_, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ layers with missing="ignore"
MISSING_LAYERS = [[0, 1, 2], [3, 4]]


def _holes(seed, n=24, fraction=0.25, dtype=np.float64):
    """3 numeric columns and 2 bits with NaN; every row keeps a value in each layer."""
    rng = np.random.default_rng(seed)
    X = np.hstack([rng.normal(size=(n, 3)), (rng.random((n, 2)) < 0.5).astype(float)])
    Xn = X.copy()
    Xn[rng.random(X.shape) < fraction] = np.nan
    for cols in MISSING_LAYERS:
        empty = np.isnan(Xn[:, cols]).all(axis=1)
        Xn[empty, cols[0]] = X[empty, cols[0]]
    Xn[0, [1, 2, 4]] = np.nan  # row 0: one observed value in each layer
    Xn[0, [0, 3]] = X[0, [0, 3]]
    return Xn.astype(dtype)


@pytest.mark.parametrize("seed", [3, 8])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("deterministic", [False, True])
def test_layered_masked_kernel_equals_the_cpu_definition(seed, dtype, deterministic):
    """The layers= build against somvq.layers.layered_masked_assign (the CPU definition)."""
    from numba import cuda

    from somvq._kernels import cuda_bmu, cuda_config
    from somvq.layers import layered_masked_assign

    rng = np.random.default_rng(seed + 4)
    X = _holes(seed, n=13).astype(dtype)
    X[:, :3] += 50.0  # an offset: the float32 sums need the certification
    W = (rng.normal(size=(6, 5)) + np.array([50.0, 50.0, 50.0, 0.0, 0.0])).astype(dtype)
    W[:, 3:] = W[:, 3:] > 0  # a search codebook: tanimoto columns thresholded
    W[5] = W[4]  # an exact tie: the lowest index wins
    groups = [np.arange(3), np.arange(3, 5)]
    ref_bmu, ref_sq = layered_masked_assign(X, W, groups)
    rows = rng.permutation(X.shape[0]).astype(np.int64)
    k, d = W.shape
    hits, both, error = (cuda.to_device(np.zeros(s)) for s in (k, (k, 2 * d), 1))
    bmu = cuda.device_array(rows.size, dtype=np.int64)
    sq = cuda.device_array(rows.size, dtype=np.float64)
    layers = (cuda.to_device(np.array([0, 0, 0, 1, 1])), cuda.to_device(np.array([3.0, 2.0])))
    cuda_config.DETERMINISTIC_STATISTICS = deterministic
    try:
        cuda_bmu.best_matching_units(
            cuda.to_device(X), cuda.to_device(rows), cuda.to_device(W), bmu, sq, hits, both, error,
            masked=True, layers=layers,
        )  # fmt: skip
    finally:
        cuda_config.DETERMINISTIC_STATISTICS = False
    np.testing.assert_array_equal(bmu.copy_to_host(), ref_bmu[rows])
    np.testing.assert_allclose(sq.copy_to_host(), ref_sq[rows], rtol=1e-12)
    np.testing.assert_allclose(error.copy_to_host()[0], ref_sq.sum(), rtol=1e-12)
    hits_ref = np.bincount(ref_bmu, minlength=k)
    np.testing.assert_array_equal(hits.copy_to_host(), hits_ref)
    observed = ~np.isnan(X)
    sums_ref = np.zeros((k, d))
    counts_ref = np.zeros((k, d))
    for i, unit in enumerate(ref_bmu):  # a loop over rows: no code shared with the kernel
        sums_ref[unit] += np.where(observed[i], X[i].astype(np.float64), 0.0)
        counts_ref[unit] += observed[i]
    np.testing.assert_allclose(both.copy_to_host(), np.hstack([sums_ref, counts_ref]), rtol=1e-12)


@pytest.mark.parametrize(
    "algorithm, weights, distances",
    [
        ("batch", [0.5, 2.0], ["sqeuclidean", "tanimoto"]),
        ("batch", "balanced", ["sqeuclidean", "tanimoto"]),
        ("minibatch", [0.5, 2.0], ["sqeuclidean", "tanimoto"]),
        ("minibatch", "balanced", None),
        ("batch", [1.0, 0.0], None),  # a layer of weight 0: its columns take no part
    ],
)
def test_cuda_layers_with_missing_values_train_like_the_cpu(algorithm, weights, distances):
    X = _holes(1)
    params = dict(grid=(2, 2), n_epochs=2, random_state=0, algorithm=algorithm, batch_size=10)
    params.update(
        missing="ignore",
        max_missing=1.0,
        layers=MISSING_LAYERS,
        layer_weights=weights,
        layer_distances=distances,
    )
    cpu = KSOM(**params).fit(X)
    gpu = KSOM(**params, backend="cuda").fit(X)
    np.testing.assert_array_equal(gpu.labels_, cpu.labels_)
    np.testing.assert_allclose(gpu.codebook_, cpu.codebook_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(gpu.layer_weights_, cpu.layer_weights_, rtol=1e-12)
    np.testing.assert_array_equal(gpu.predict(X), cpu.predict(X))


def test_cuda_layers_with_missing_values_float32_train_like_the_cpu():
    X = _holes(2, dtype=np.float32)
    params = dict(
        grid=(2, 2), n_epochs=2, random_state=0, missing="ignore", max_missing=1.0, layers=MISSING_LAYERS
    )
    params.update(layer_weights=[0.5, 2.0], layer_distances=["sqeuclidean", "tanimoto"])
    cpu = KSOM(**params).fit(X)
    gpu = KSOM(**params, backend="cuda").fit(X)
    np.testing.assert_array_equal(gpu.labels_, cpu.labels_)
    np.testing.assert_allclose(gpu.codebook_, cpu.codebook_, rtol=1e-5, atol=1e-5)


def test_cuda_rows_with_an_unobserved_layer_are_the_cpus_error():
    X = _holes(1)
    X[5, 3:] = np.nan
    params = dict(grid=(2, 2), missing="ignore", max_missing=1.0, layers=MISSING_LAYERS)
    for backend in ("cpu", "cuda"):
        with pytest.raises(ValueError, match=r"1 row\(s\) with no observed value in layer 1"):
            KSOM(**params, backend=backend).fit(X)


@pytest.mark.parametrize(
    "layers, weights, distances",
    [
        (MISSING_LAYERS, [0.5, 2.0], ["sqeuclidean", "tanimoto"]),
        (MISSING_LAYERS, "balanced", None),
        ([[0, 1, 2, 3, 4]], [2.0], None),  # one layer of every column: the plain masked kernel
    ],
)
def test_cuda_online_layers_with_missing_values_train_like_the_cpu(layers, weights, distances):
    X = _holes(1)
    params = dict(
        grid=(2, 2), n_epochs=2, algorithm="online", missing="ignore", max_missing=1.0, random_state=0
    )
    params.update(layers=layers, layer_weights=weights, layer_distances=distances)
    cpu = KSOM(**params).fit(X)
    gpu = KSOM(**params, backend="cuda").fit(X)
    np.testing.assert_array_equal(gpu.labels_, cpu.labels_)
    np.testing.assert_allclose(gpu.codebook_, cpu.codebook_, rtol=1e-12, atol=1e-12)


def test_cuda_classifier_with_missing_inputs_trains_like_the_cpu():
    from somvq import KSOMClassifier

    rng = np.random.default_rng(4)
    X = rng.normal(size=(24, 3))
    y = (X[:, 0] > 0).astype(int)
    X[rng.random(X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.5
    params = dict(grid=(2, 2), n_epochs=2, random_state=0, missing="ignore", max_missing=1.0)
    cpu = KSOMClassifier(**params).fit(X, y)
    gpu = KSOMClassifier(**params, backend="cuda").fit(X, y)
    np.testing.assert_allclose(gpu.som_.codebook_, cpu.som_.codebook_, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(gpu.predict(X), cpu.predict(X))
