"""KSOM(missing="ignore", backend="cuda") (issue 13) equals the CPU's masked path.

The masked BMU kernel against tests/naive.py's loop reference (random masks, rows with one
observed feature, offsets, float32/float64, exact ties, both statistics modes); whole
batch / mini-batch / online fits against the CPU engine (same labels, codebooks and EMA
state to float tolerance); data without NaN against the dense path; inference with NaN on a
map fitted on the device; the CPU's errors for bad input.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import cuda

from somvq import KSOM
from somvq import missing as M
from somvq._kernels import cuda_bmu, cuda_config
from somvq.engines.cuda import assign, masked

from ..naive import clear_rows, masked_distances


def holes(X, fraction, seed):
    """``X`` (float) with ``fraction`` of its entries NaN; every row keeps an observed entry
    and row 0 keeps exactly one (when D > 1)."""
    rng = np.random.default_rng(seed)
    Xn = np.array(X, copy=True)
    Xn[rng.random(X.shape) < fraction] = np.nan
    empty = np.isnan(Xn).all(axis=1)
    Xn[empty, 0] = X[empty, 0]
    if X.shape[1] > 1:
        Xn[0, 1:] = np.nan
        Xn[0, 0] = X[0, 0]
    return Xn


def _statistics(X, W, rows):
    k, d = W.shape
    hits = cuda.to_device(np.zeros(k))
    both = cuda.to_device(np.zeros((k, 2 * d)))
    error = cuda.to_device(np.zeros(1))
    bmu = cuda.device_array(rows.shape[0], dtype=np.int64)
    sq = cuda.device_array(rows.shape[0], dtype=np.float64)
    cuda_bmu.best_matching_units(
        cuda.to_device(X), cuda.to_device(rows), cuda.to_device(W), bmu, sq, hits, both, error, masked=True
    )
    return (
        bmu.copy_to_host(),
        sq.copy_to_host(),
        hits.copy_to_host(),
        both.copy_to_host(),
        error.copy_to_host()[0],
    )


# ------------------------------------------------------------------ the masked search
@settings(max_examples=10)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 9),
    d=st.integers(1, 6),
    k=st.integers(1, 7),
    fraction=st.floats(0.0, 0.8),
    offset=st.sampled_from([0.0, 1e3, -5e4]),
    dtype=st.sampled_from([np.float32, np.float64]),
    deterministic=st.booleans(),
)
def test_masked_kernel_against_the_reference(seed, n, d, k, fraction, offset, dtype, deterministic):
    rng = np.random.default_rng(seed)
    X = holes((offset + rng.normal(size=(n, d))).astype(dtype), fraction, seed)
    W = (offset + rng.normal(size=(k, d))).astype(dtype)
    rows = rng.permutation(n).astype(np.int64)
    cuda_config.DETERMINISTIC_STATISTICS = deterministic
    try:
        bmu, sq, hits, both, error = _statistics(X, W, rows)
    finally:
        cuda_config.DETERMINISTIC_STATISTICS = False
    ref = masked_distances(X[rows], W)
    ok = clear_rows(ref, gap=1e-9)
    np.testing.assert_array_equal(bmu[ok], ref.argmin(1)[ok])
    np.testing.assert_allclose(sq, ref[np.arange(n), bmu], rtol=1e-12, atol=0)
    # the CPU's masked search: same winners and distances
    cpu_bmu, cpu_sq = M.masked_assign(X[rows], W)
    np.testing.assert_array_equal(bmu[ok], cpu_bmu[ok])
    np.testing.assert_allclose(sq, cpu_sq, rtol=1e-12, atol=0)
    # statistics over observed entries only, for the returned winners
    Xr = X[rows].astype(np.float64)
    observed = ~np.isnan(Xr)
    counts = np.zeros((k, d))
    sums = np.zeros((k, d))
    np.add.at(counts, bmu, observed.astype(float))
    np.add.at(sums, bmu, np.where(observed, Xr, 0.0))
    np.testing.assert_array_equal(hits, np.bincount(bmu, minlength=k))
    np.testing.assert_array_equal(both[:, d:], counts)
    np.testing.assert_allclose(both[:, :d], sums, rtol=1e-12, atol=1e-9 * (1 + abs(offset)))
    assert error == pytest.approx(sq.sum(), rel=1e-12)


def test_masked_kernel_exact_ties_and_one_observed_feature():
    """Duplicated units: the lowest index; a row observed on one feature ties units that
    share that coordinate: the lowest of them. Distances scaled by D / n_obs."""
    W = np.array([[0.0, 5.0, 1.0], [1.0, 1.0, 1.0], [0.0, -5.0, 7.0], [1.0, 1.0, 1.0]])
    X = np.array([[0.0, np.nan, np.nan], [1.0, 1.0, np.nan], [np.nan, np.nan, 7.0], [0.5, 0.5, 0.5]])
    for dtype in (np.float32, np.float64):
        bmu, sq, *_ = _statistics(X.astype(dtype), W.astype(dtype), np.arange(4, dtype=np.int64))
        np.testing.assert_array_equal(bmu, [0, 1, 2, 1])
        np.testing.assert_allclose(sq, [0.0, 0.0, 0.0, 0.75])
        got, _ = masked.masked_assign(X.astype(dtype), W.astype(dtype))
        np.testing.assert_array_equal(
            got.copy_to_host(), M.masked_assign(X.astype(dtype), W.astype(dtype))[0]
        )


def test_masked_kernel_without_nan_equals_the_dense_kernel():
    rng = np.random.default_rng(3)
    for dtype, offset in ((np.float32, 0.0), (np.float64, 1e3)):
        X = (offset + rng.normal(size=(11, 5))).astype(dtype)
        W = (offset + rng.normal(size=(6, 5))).astype(dtype)
        dense_bmu, dense_sq = (a.copy_to_host() for a in assign(X, W))
        bmu, sq = (a.copy_to_host() for a in masked.masked_assign(X, W))
        np.testing.assert_array_equal(bmu, dense_bmu)
        np.testing.assert_array_equal(sq, dense_sq)  # D / D = 1: the same direct float64 sums


# ------------------------------------------------------------------ whole fits
def _data(offset=0.0, dtype=np.float64, fraction=0.25, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(4, 3))
    X = offset + centres[rng.integers(0, 4, 28)] + rng.normal(size=(28, 3))
    return (holes(X, fraction, seed + 1) if fraction else X).astype(dtype)


def _fit_both(X, Xcuda=None, **params):
    # decay=0.5: decay="auto" is 0 on fits this short, and a mini-batch with a feature
    # observed in none of its rows then makes 0/0 on every engine (see the report of issue 13)
    params = {
        **dict(grid=(2, 3), n_epochs=2, batch_size=8, random_state=0, missing="ignore", decay=0.5),
        **params,
    }
    params.setdefault("max_missing", 0.7)
    cpu = KSOM(backend="cpu", **params).fit(X)
    gpu = KSOM(backend="cuda", **params).fit(X if Xcuda is None else Xcuda)
    return cpu, gpu


def _assert_same_fit(cpu, gpu, rtol):
    assert gpu.codebook_.dtype == cpu.codebook_.dtype
    np.testing.assert_array_equal(gpu.labels_, cpu.labels_)
    scale = 1.0 + np.abs(cpu.codebook_).max()
    np.testing.assert_allclose(gpu.codebook_, cpu.codebook_, rtol=rtol, atol=rtol * scale)
    assert np.shape(gpu.ema_count_) == np.shape(cpu.ema_count_)
    np.testing.assert_allclose(gpu.ema_count_, cpu.ema_count_, rtol=1e-10)
    np.testing.assert_allclose(gpu.ema_sum_, cpu.ema_sum_, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(gpu.unit_counts_, cpu.unit_counts_)
    assert gpu.n_steps_ == cpu.n_steps_ and gpu.n_iter_ == cpu.n_iter_


@pytest.mark.parametrize(
    "params",
    [
        dict(algorithm="batch", neighbourhood="gaussian"),
        dict(algorithm="batch", neighbourhood="none", init="sample"),
        dict(algorithm="minibatch", neighbourhood="hard", decay=0.5),
        dict(algorithm="minibatch", neighbourhood="exponential", update="written", init_count=0.0, decay=0.9),
        dict(algorithm="online", neighbourhood="gaussian"),
        dict(algorithm="online", neighbourhood="none", learning_rate="inverse_count"),
        dict(algorithm="batch", neighbourhood="bubble", topology="hexagonal", init="pca"),
    ],
    ids=lambda p: "-".join(str(v) for v in p.values()),
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_cuda_fit_equals_cpu_fit(params, dtype):
    cpu, gpu = _fit_both(_data(dtype=dtype), **params)
    _assert_same_fit(cpu, gpu, rtol=1e-5 if dtype == np.float32 else 1e-12)
    if params["algorithm"] == "minibatch":
        assert np.shape(gpu.ema_count_) == gpu.codebook_.shape  # N is (K, D) on the masked path


@pytest.mark.parametrize("algorithm", ["batch", "minibatch", "online"])
def test_masked_cuda_fit_far_from_the_origin(algorithm):
    cpu, gpu = _fit_both(_data(offset=1e3, seed=5), algorithm=algorithm)
    _assert_same_fit(cpu, gpu, rtol=1e-12)


def test_masked_deterministic_statistics_fit(monkeypatch):
    monkeypatch.setattr(cuda_config, "DETERMINISTIC_STATISTICS", True)
    monkeypatch.setattr(cuda_config, "STATISTICS_CHUNK_ROWS", 5)
    X = _data(dtype=np.float32)
    cpu, gpu = _fit_both(X, algorithm="minibatch", neighbourhood="hard")
    _assert_same_fit(cpu, gpu, rtol=1e-5)
    again = KSOM(
        backend="cuda", grid=(2, 3), n_epochs=2, batch_size=8, random_state=0, missing="ignore",
        max_missing=0.7, algorithm="minibatch", neighbourhood="hard", decay=0.5,
    ).fit(X)  # fmt: skip
    np.testing.assert_array_equal(again.codebook_, gpu.codebook_)
    np.testing.assert_array_equal(again.ema_sum_, gpu.ema_sum_)


def test_device_input_with_nan_equals_host_input():
    X = _data(dtype=np.float32)
    cpu, gpu = _fit_both(X, cuda.to_device(X), algorithm="minibatch", neighbourhood="hard", init="pca")
    _assert_same_fit(cpu, gpu, rtol=1e-5)


@pytest.mark.parametrize("algorithm", ["batch", "minibatch", "online"])
def test_ignore_without_nan_is_the_dense_fit(algorithm):
    """Data without NaN never takes the masked path: the same bits as missing="error"."""
    X = _data(fraction=0.0, dtype=np.float32)
    params = dict(grid=(2, 3), n_epochs=2, batch_size=8, random_state=0, algorithm=algorithm, backend="cuda")
    dense = KSOM(**params).fit(X)
    ignore = KSOM(missing="ignore", **params).fit(X)
    for name in ("codebook_", "ema_count_", "ema_sum_", "unit_counts_", "labels_"):
        np.testing.assert_array_equal(getattr(ignore, name), getattr(dense, name))
    if algorithm == "batch":  # device inputs too (init "random" reads the device moments)
        dense = KSOM(**params, init="random").fit(cuda.to_device(X))
        ignore = KSOM(missing="ignore", init="random", **params).fit(cuda.to_device(X))
        np.testing.assert_array_equal(ignore.codebook_, dense.codebook_)


def test_partial_fit_dense_then_nan_broadcasts_the_ema_count():
    X = _data()
    Xd = _data(fraction=0.0)
    params = dict(grid=(2, 3), batch_size=8, random_state=0, missing="ignore", max_missing=0.7, decay=0.5)
    cpu = KSOM(algorithm="minibatch", **params)
    gpu = KSOM(algorithm="minibatch", backend="cuda", **params)
    for part in (Xd[:14], X[14:], Xd[:14]):
        cpu.partial_fit(part)
        gpu.partial_fit(part)
    assert gpu.ema_count_.shape == gpu.codebook_.shape
    np.testing.assert_allclose(gpu.codebook_, cpu.codebook_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gpu.ema_count_, cpu.ema_count_, rtol=1e-12)


def test_inference_with_nan_on_a_map_fitted_on_the_device():
    X = _data()
    cpu, gpu = _fit_both(X, algorithm="batch")
    np.testing.assert_array_equal(gpu.predict(X), cpu.predict(X))
    np.testing.assert_array_equal(gpu.predict(X), gpu.labels_)
    np.testing.assert_allclose(gpu.transform(X), cpu.transform(X), rtol=1e-10)
    assert gpu.score(X) == pytest.approx(cpu.score(X), rel=1e-10)
    assert gpu.quantization_error(X, squared=True) == pytest.approx(
        masked_distances(X, gpu.codebook_).min(1).mean(), rel=1e-10
    )
    assert gpu.topographic_error(X) == cpu.topographic_error(X)
    np.testing.assert_array_equal(gpu.bmu_coordinates(X), cpu.bmu_coordinates(X))
    np.testing.assert_allclose(gpu.impute(X), cpu.impute(X), rtol=1e-10)


# ------------------------------------------------------------------ bad input
def _both_raise(X, match, **params):
    for backend in ("cpu", "cuda"):
        som = KSOM(grid=(2, 2), n_epochs=1, backend=backend, **params)
        with pytest.raises(ValueError, match=match):
            som.fit(X)
        assert not hasattr(som, "codebook_")


def test_bad_input_errors_are_the_cpus():
    X = np.random.default_rng(0).normal(size=(12, 4))
    empty = X.copy()
    empty[[5, 9]] = np.nan
    _both_raise(empty, r"2 row\(s\) with no observed feature.*rows 5, 9", missing="ignore", max_missing=1.0)
    over = X.copy()
    over[[3, 7], :3] = np.nan
    _both_raise(over, r"2 row\(s\) missing more than max_missing=0.5 .* rows 3, 7", missing="ignore")
    inf = X.copy()
    inf[2, 1] = np.inf
    _both_raise(inf, r"infinity in 1 row\(s\) \(rows 2\); inf is never a missing value", missing="ignore")
    nan = X.copy()
    nan[1, 1] = np.nan
    _both_raise(nan, "NaN", missing="error")
    # device inputs get the same row checks
    with pytest.raises(ValueError, match=r"2 row\(s\) missing more than max_missing=0.5 .* rows 3, 7"):
        KSOM(grid=(2, 2), backend="cuda", missing="ignore").fit(cuda.to_device(over))
    with pytest.raises(ValueError, match="NaN"):
        KSOM(grid=(2, 2), backend="cuda").fit(cuda.to_device(nan))


def test_minibatch_column_without_weight_keeps_its_state_as_on_the_cpu():
    # decay 0 and feature 0 unobserved in a whole batch: the CPU definition keeps N, m, w.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 3))
    X[4:, 0] = np.nan
    fits = [
        KSOM(
            grid=(2, 2),
            algorithm="minibatch",
            batch_size=4,
            missing="ignore",
            decay=0.0,
            random_state=0,
            backend=backend,
        ).partial_fit(X)
        for backend in ("cpu", "cuda")
    ]
    assert np.isfinite(fits[1].codebook_).all()
    np.testing.assert_allclose(fits[1].codebook_, fits[0].codebook_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fits[1].ema_count_, fits[0].ema_count_, rtol=1e-10, atol=1e-12)
