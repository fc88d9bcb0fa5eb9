"""Each CUDA kernel equals its CPU twin on small inputs (run under NUMBA_ENABLE_CUDASIM=1)."""

import numpy as np
import pytest
from numba import cuda

from somvq import algorithms
from somvq._kernels import (
    cpu_neighbourhood,
    cuda_bmu,
    cuda_config,
    cuda_neighbourhood,
    cuda_online,
    cuda_update,
)
from somvq._kernels.cpu_online import online_pass as cpu_online_pass
from somvq.engines import cuda as engine
from somvq.grids import Grid
from somvq.neighbourhoods import NEIGHBOURHOODS, Neighbourhood, smoothing_operator
from somvq.schedules import SCHEDULES, Schedule

from ..conftest import winner_margin


def _data(n, d, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    W = rng.normal(size=(k, d)).astype(dtype)
    return X, W


def test_config_check_rejects_non_power_of_two(monkeypatch):
    cuda_config.check()
    monkeypatch.setattr(cuda_config, "BMU_TILE_UNITS", 3)
    with pytest.raises(ValueError, match="BMU_TILE_UNITS=3"):
        cuda_config.check()


@cuda.jit
def _evaluate(kernel_codes, schedule_codes, distances, radii, out_kernel, out_schedule):
    i = cuda.grid(1)
    if i < distances.shape[0]:
        out_kernel[i] = cuda_neighbourhood.kernel_value(kernel_codes[i], distances[i], radii[i], 0.25)
        out_schedule[i] = cuda_neighbourhood.schedule_value(
            schedule_codes[i], 2.0, 0.5, 0.1, 7.0, distances[i] * 3.0
        )


def test_neighbourhood_device_functions_equal_cpu():
    rng = np.random.default_rng(1)
    n = 64
    kernel_codes = rng.integers(0, len(NEIGHBOURHOODS), n)
    schedule_codes = rng.integers(0, len(SCHEDULES), n)
    distances = np.round(rng.uniform(0, 4, n), 1)
    distances[:4] = 0.0
    radii = rng.uniform(0.5, 3, n)
    out_kernel, out_schedule = np.empty(n), np.empty(n)
    _evaluate[(n + 7) // 8, 8](kernel_codes, schedule_codes, distances, radii, out_kernel, out_schedule)
    for i in range(n):
        assert out_kernel[i] == pytest.approx(
            cpu_neighbourhood.kernel_value(kernel_codes[i], distances[i], radii[i], 0.25),
            rel=1e-12,
            abs=1e-15,
        )
        assert out_schedule[i] == pytest.approx(
            cpu_neighbourhood.schedule_value(schedule_codes[i], 2.0, 0.5, 0.1, 7.0, distances[i] * 3.0),
            rel=1e-12,
        )


@pytest.mark.parametrize("deterministic", [False, True], ids=["atomics", "segmented"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(13, 5, 7), (9, 1, 3), (6, 9, 1)])
def test_bmu_kernel_equals_cpu(dtype, shape, deterministic, monkeypatch):
    monkeypatch.setattr(cuda_config, "DETERMINISTIC_STATISTICS", deterministic)
    monkeypatch.setattr(cuda_config, "STATISTICS_CHUNK_ROWS", 3)
    n, d, k = shape
    X, W = _data(n, d, k, dtype)
    rows = np.random.default_rng(2).permutation(n)[: n - 2]
    counts = cuda.to_device(np.zeros(k))
    sums = cuda.to_device(np.zeros((k, d)))
    error = cuda.to_device(np.zeros(1))
    bmu = cuda.device_array(rows.shape[0], dtype=np.int64)
    sq = cuda.device_array(rows.shape[0], dtype=np.float64)
    cuda_bmu.best_matching_units(
        cuda.to_device(X), cuda.to_device(rows), cuda.to_device(W), bmu, sq, counts, sums, error
    )
    ref = algorithms.unit_statistics(X[rows], W)
    ref_bmu, ref_sq = algorithms.assign(X[rows], W)
    assert winner_margin(X[rows], W) > 1e-4
    np.testing.assert_array_equal(bmu.copy_to_host(), ref_bmu)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(sq.copy_to_host(), ref_sq, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(counts.copy_to_host(), ref.counts)
    if deterministic:  # rows added in row order, as the CPU does: the same bits
        np.testing.assert_array_equal(sums.copy_to_host(), ref.sums)
    else:
        np.testing.assert_allclose(sums.copy_to_host(), ref.sums, rtol=1e-12, atol=1e-12)
    assert error.copy_to_host()[0] == pytest.approx(ref.sq_error, rel=rtol)


def test_bmu_ties_take_the_lowest_index():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    W = np.array([[3.0, 3.0], [1.0, 1.0], [1.0, 1.0], [7.0, 7.0], [3.0, 3.0], [7.0, 7.0]])
    bmu, _ = engine.assign(X, W)
    np.testing.assert_array_equal(bmu.copy_to_host(), [1, 1, 0])
    np.testing.assert_array_equal(bmu.copy_to_host(), algorithms.assign(X, W)[0])


@pytest.mark.parametrize(
    "kind,topology,periodic",
    [
        ("hard", "rectangular", False),
        ("exponential", "hexagonal", False),
        ("gaussian", "rectangular", True),
        ("bubble", "rectangular", False),
        ("triangle", "hexagonal", True),
        ("cut_gaussian", "rectangular", False),
    ],
)
def test_smoothing_equals_cpu(kind, topology, periodic):
    grid = Grid((4, 3), topology, periodic)
    nb = Neighbourhood(kind, Schedule("inverse_time", 1.7, shrink=0.1), 0.1)
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 5, grid.n_units).astype(np.float64)
    sums = rng.normal(size=(grid.n_units, 3))
    H = engine.neighbourhood_matrix(nb, grid.distances, 4)
    np.testing.assert_allclose(H.copy_to_host(), nb.matrix(grid.distances, 4), rtol=1e-13, atol=1e-15)
    n, s = engine.smooth_statistics(H, cuda.to_device(counts), cuda.to_device(sums))
    ref_n, ref_s = smoothing_operator(nb, grid, 4).apply(counts, sums)
    np.testing.assert_allclose(n.copy_to_host(), ref_n, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.copy_to_host(), ref_s, rtol=1e-12, atol=1e-12)


def test_no_neighbourhood_is_the_identity():
    nb = Neighbourhood("none", Schedule("inverse_time", 1.0), 0.1)
    assert engine.neighbourhood_matrix(nb, Grid((2, 2)).distances, 0) is None
    c, s = object(), object()
    assert engine.smooth_statistics(None, c, s) == (c, s)


def _statistics(k, d, seed=4):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 4, k).astype(np.float64)
    counts[0] = 0.0
    sums = rng.normal(size=(k, d)) * np.maximum(counts, 1)[:, None]
    return counts, sums


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_update_equals_cpu(dtype):
    _, W = _data(1, 3, 7, dtype)
    counts, sums = _statistics(7, 3)
    device = cuda.to_device(W)
    cuda_update.batch_update_inplace(device, cuda.to_device(counts), cuda.to_device(sums))
    np.testing.assert_allclose(device.copy_to_host(), algorithms.batch_update(W, counts, sums), rtol=1e-6)
    assert device.copy_to_host()[0].tolist() == W[0].tolist()  # a unit without hits keeps w


@pytest.mark.parametrize("update", ["all", "written"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ema_update_equals_cpu(update, dtype):
    _, W = _data(1, 3, 7, dtype)
    counts, sums = _statistics(7, 3)
    ema_count = np.linspace(0.0, 2.0, 7)
    ema_sum = W.astype(np.float64) * 0.5
    ref = algorithms.ema_update(ema_count, ema_sum, W, counts, sums, decay=0.9, eps=1e-3, update=update)
    d_count, d_sum, d_w = cuda.to_device(ema_count), cuda.to_device(ema_sum), cuda.to_device(W)
    cuda_update.ema_update_inplace(
        d_count, d_sum, d_w, cuda.to_device(counts), cuda.to_device(sums), decay=0.9, eps=1e-3, update=update
    )
    np.testing.assert_allclose(d_count.copy_to_host(), ref[0], rtol=1e-13)
    np.testing.assert_allclose(d_sum.copy_to_host(), ref[1], rtol=1e-13)
    np.testing.assert_allclose(d_w.copy_to_host(), ref[2], rtol=1e-6 if dtype == np.float32 else 1e-12)
    with pytest.raises(ValueError, match="update='some'"):
        cuda_update.ema_update_inplace(
            d_count, d_sum, d_w, d_count, d_sum, decay=0.9, eps=1e-3, update="some"
        )


@pytest.mark.parametrize(
    "kind,lr",
    [
        ("gaussian", "exponential"),
        ("hard", "inverse_time"),
        ("none", "inverse_count"),
        ("mexican_hat", "linear"),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_online_kernel_equals_cpu(kind, lr, dtype):
    X, W = _data(21, 3, 6, dtype, seed=5)
    grid = Grid((2, 3))
    nb = Neighbourhood(kind, Schedule("exponential", 1.5, 0.5, 0.1, 30.0), 0.1)
    order = np.random.default_rng(6).permutation(21)
    counts = np.ones(6)
    lr_code, lr_params = (
        (cuda_online.INVERSE_COUNT, np.zeros(4))
        if lr == "inverse_count"
        else (SCHEDULES.index(lr), np.array([0.5, 0.01, 0.1, 30.0]))
    )
    ref_w, ref_counts = W.copy(), counts.copy()
    cpu_online_pass(
        X,
        ref_w,
        order,
        grid.distances,
        nb.code,
        nb.radius.code,
        nb.kernel_parameters(),
        lr_code,
        lr_params,
        ref_counts,
        3,
    )
    d_w, d_counts = cuda.to_device(W), cuda.to_device(counts)
    cuda_online.online_pass(
        cuda.to_device(X),
        d_w,
        cuda.to_device(order),
        cuda.to_device(grid.distances),
        nb.code,
        nb.radius.code,
        cuda.to_device(nb.kernel_parameters()),
        lr_code,
        cuda.to_device(lr_params),
        d_counts,
        3,
    )
    np.testing.assert_allclose(
        d_w.copy_to_host(), ref_w, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6
    )
    np.testing.assert_array_equal(d_counts.copy_to_host(), ref_counts)


def test_cast_take_finite_and_moments():
    X = np.arange(12, dtype=np.int32).reshape(4, 3)
    out = cuda.device_array((4, 3), dtype=np.float64)
    cuda_update.cast(cuda.to_device(X), out)
    np.testing.assert_array_equal(out.copy_to_host(), X.astype(np.float64))
    taken = cuda.device_array((2, 3), dtype=np.float64)
    cuda_update.take_rows(out, cuda.to_device(np.array([3, 1])), taken)
    np.testing.assert_array_equal(taken.copy_to_host(), X[[3, 1]])
    assert cuda_update.all_finite(out)
    counts = cuda.to_device(np.ones(5))
    cuda_update.zero(counts)
    cuda_update.zero(taken)
    assert not counts.copy_to_host().any() and not taken.copy_to_host().any()
    bad = X.astype(np.float64)
    bad[2, 1] = np.nan
    assert not cuda_update.all_finite(cuda.to_device(bad))
    mean, std = cuda_update.column_moments(out)
    np.testing.assert_allclose(mean, X.mean(0))
    np.testing.assert_allclose(std, X.std(0))


def test_kernels_compile_to_ptx():
    """The simulator does not type-check: compile every kernel for real, in a clean process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "tests.cuda.ptx_compile"], cwd=root, env=env, capture_output=True, text=True
    )
    if result.returncode == 3:
        # CI installs the toolkit wheels (scripts/test.sh): there a missing compiler is a failure.
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but the CUDA compiler is not usable: {result.stdout.strip()}")
        pytest.skip(result.stdout.strip())
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_largest_magnitude_equals_numpy(dtype):
    rng = np.random.default_rng(5)
    X = (rng.normal(size=(37, 5)) * 10.0 ** rng.integers(-3, 4, size=(37, 5))).astype(dtype)
    X[3, 1] = -1e6  # the largest is negative
    X[[0, 9], [2, 4]] = np.nan  # missing entries are skipped
    assert cuda_update.largest_magnitude(cuda.to_device(X)) == float(np.nanmax(np.abs(X)))
    strided = cuda.to_device(X)[:, 1:4]  # a column slice
    assert cuda_update.largest_magnitude(strided) == float(np.nanmax(np.abs(X[:, 1:4])))
    X[7, 0] = np.inf
    assert cuda_update.largest_magnitude(cuda.to_device(X)) == np.inf
    assert cuda_update.largest_magnitude(cuda.to_device(np.full((2, 3), np.nan, dtype=dtype))) == 0.0
