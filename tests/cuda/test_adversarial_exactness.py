"""The CUDA BMU kernel is exact at any offset and scale (issue 11, section 1).

Winners against a float64 brute force by direct differences (tests/naive.py), except true
near-ties (two best closer than 1e-6 relative); squared distances computed directly in
float64; statistics added for the corrected winners. Before the fix the kernel reported
float32 sums (relative error ~1e-7) and, on float32 values ~1e20 whose squares overflow,
gave every row unit 0 with an infinite distance.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import cuda

from somvq import KSOM
from somvq._kernels import cuda_bmu, cuda_config
from somvq.engines import cuda as engine

from ..naive import brute_force_squared_distances, clear_rows


def _data(seed, n, d, offset, scale, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centre = offset * np.where(np.arange(d) % 2, -1.0, 1.0)  # the same for data and codebook
    return (centre + scale * rng.normal(size=(n, d))).astype(dtype)


def _search(X, W, rows):
    k, d = W.shape
    counts = cuda.to_device(np.zeros(k))
    sums = cuda.to_device(np.zeros((k, d)))
    error = cuda.to_device(np.zeros(1))
    bmu = cuda.device_array(rows.shape[0], dtype=np.int64)
    sq = cuda.device_array(rows.shape[0], dtype=np.float64)
    cuda_bmu.best_matching_units(
        cuda.to_device(X), cuda.to_device(rows), cuda.to_device(W), bmu, sq, counts, sums, error
    )
    return (
        bmu.copy_to_host(),
        sq.copy_to_host(),
        counts.copy_to_host(),
        sums.copy_to_host(),
        error.copy_to_host()[0],
    )


@settings(max_examples=12)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 12),
    d=st.integers(1, 9),
    k=st.integers(1, 9),
    offset=st.one_of(st.just(0.0), st.floats(0.0, 6.0).map(lambda e: 10.0**e)),
    scale=st.floats(-3.0, 6.0).map(lambda e: 10.0**e),
    dtype=st.sampled_from([np.float32, np.float64]),
    deterministic=st.booleans(),
)
def test_bmu_kernel_against_brute_force(seed, n, d, k, offset, scale, dtype, deterministic):
    cuda_config.DETERMINISTIC_STATISTICS = deterministic
    try:
        X = _data(seed, n, d, offset, scale, dtype)
        W = _data(seed + 1, k, d, offset, scale, dtype)
        rows = np.random.default_rng(seed).permutation(n).astype(np.int64)
        bmu, sq, counts, sums, error = _search(X, W, rows)
    finally:
        cuda_config.DETERMINISTIC_STATISTICS = False
    ref = brute_force_squared_distances(X[rows], W)
    ok = clear_rows(ref)
    np.testing.assert_array_equal(bmu[ok], ref.argmin(1)[ok])
    np.testing.assert_allclose(sq, ref[np.arange(rows.shape[0]), bmu], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(counts, np.bincount(bmu, minlength=k))
    expected = np.zeros((k, d))
    np.add.at(expected, bmu, X[rows].astype(np.float64))
    np.testing.assert_allclose(sums, expected, rtol=1e-12, atol=1e-300)
    assert error == pytest.approx(sq.sum(), rel=1e-12)


@pytest.mark.filterwarnings("ignore:overflow encountered")  # the simulator runs numpy scalars
def test_exact_ties_and_overflowing_squares():
    """Duplicated units: the lowest index. float32 values ~1e20 (squares overflow float32):
    the float64 winner and a finite distance, not unit 0 and inf."""
    rng = np.random.default_rng(4)
    W = (1e20 * rng.normal(size=(5, 3))).astype(np.float32)
    W[3] = W[1]
    X = np.concatenate([1e20 * rng.normal(size=(9, 3)), W[[3]]]).astype(np.float32)
    rows = np.arange(X.shape[0], dtype=np.int64)
    bmu, sq, counts, _, error = _search(X, W, rows)
    ref = brute_force_squared_distances(X, W)
    np.testing.assert_array_equal(bmu, ref.argmin(1))
    assert bmu[-1] == 1
    assert np.isfinite(sq).all() and np.isfinite(error)
    np.testing.assert_allclose(sq, ref.min(1), rtol=1e-12)
    got, got_sq = engine.assign(X, W)
    np.testing.assert_array_equal(got.copy_to_host(), ref.argmin(1))


def test_cuda_estimator_far_from_the_origin():
    """KSOM(backend="cuda") on data at offset 1000: labels_ and predict are the float64
    argmin, the quantization error the float64 one."""
    X = _data(7, 40, 3, 1000.0, 1.0)
    som = KSOM(backend="cuda", grid=(2, 3), n_epochs=2, batch_size=16, random_state=0).fit(X)
    ref = brute_force_squared_distances(X, som.codebook_)
    ok = clear_rows(ref)
    np.testing.assert_array_equal(som.labels_[ok], ref.argmin(1)[ok])
    np.testing.assert_array_equal(som.predict(X)[ok], ref.argmin(1)[ok])
    assert som.quantization_error(X) == pytest.approx(np.sqrt(ref.min(1)).mean(), rel=1e-6)


def test_data_whose_squares_overflow_is_refused_as_on_the_cpu():
    """float64 data beyond ~3.9e153 (3 features): the CPU refuses it; CUDA trained every
    row to unit 0 on infinite distances (found by an adversarial pass)."""
    X = _data(7, 40, 3, 0.0, 1.0, np.float64) * 1e160
    match = r"holds values up to .*e\+160 in absolute value; squared distances of 3 features overflow"
    with pytest.raises(ValueError, match=match):
        KSOM(grid=(2, 3), n_epochs=1, random_state=0).fit(X)
    for data in (X, cuda.to_device(X)):
        with pytest.raises(ValueError, match=match):
            KSOM(backend="cuda", grid=(2, 3), n_epochs=1, random_state=0).fit(data)


@pytest.mark.parametrize("missing", ["error", "ignore"])
def test_float64_rows_beyond_a_float32_map_are_refused_as_on_the_cpu(missing):
    """They were cast to inf: a "non-finite codebook", or "contains infinity" (no inf given)."""
    X = _data(7, 40, 3, 0.0, 1.0)
    big = X.astype(np.float64) * 1e39
    match = r"X holds values up to .*e\+39 in absolute value, beyond the map's float32"
    cpu = KSOM(grid=(2, 3), random_state=0, missing=missing).partial_fit(X)
    with pytest.raises(ValueError, match=match):
        cpu.partial_fit(big)
    for data in (big, cuda.to_device(big)):
        som = KSOM(backend="cuda", grid=(2, 3), random_state=0, missing=missing).partial_fit(X)
        before = som.codebook_.copy()
        with pytest.raises(ValueError, match=match):
            som.partial_fit(data)
        np.testing.assert_array_equal(som.codebook_, before)


def test_data_too_small_for_the_device_distances_is_refused():
    """Below ~1e-154 the kernels' float64 squares underflow: every row went to unit 0
    (found by an adversarial pass). The CPU trains such data exactly; CUDA refuses it."""
    X = _data(7, 40, 3, 0.0, 1.0, np.float64) * 1e-200
    for data in (X, cuda.to_device(X)):  # device input was not checked: all rows to unit 0
        with pytest.raises(
            ValueError, match=r"largest value is .*e-200: backend='cuda' ranks units by direct"
        ):
            KSOM(backend="cuda", grid=(2, 3), n_epochs=1, random_state=0).fit(data)
    # float32 data this small cannot exist; small float32 values are re-ranked in float64
    small = _data(7, 40, 3, 0.0, 1e-30)
    som = KSOM(backend="cuda", grid=(2, 3), n_epochs=1, random_state=0).fit(small)
    ref = brute_force_squared_distances(small, som.codebook_)
    np.testing.assert_array_equal(som.labels_[clear_rows(ref)], ref.argmin(1)[clear_rows(ref)])
