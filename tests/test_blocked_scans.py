"""Whole-data passes read large arrays in blocks of rows: the same results, O(block) memory.

The random and PCA initialisations, ``grid="auto"``, the mean-filled rows of data with
holes and the NaN / inf scans used to make whole-array float64 copies or masks: NumPy's
``X.std(dtype=float64)`` copies float32 data in float64, an SVD of the centred rows took
1.27 GiB and 7.8 s on Fashion-MNIST (0.2 GiB of data), ``mean_filled`` five times the data.
Here each is checked against NumPy's whole-array form (or an SVD: ``tests/naive.py``) with
blocks made small, and its peak memory against the data's size.
"""

import numpy as np
import pytest

from somvq import KSOM, _moments, missing
from somvq.grids import Grid
from somvq.initialisation import initial_codebook, reads_data
from somvq.parameters import auto_grid

from . import naive
from .test_adversarial_memory import _peak_bytes


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 64 KiB of float64 and scans of 4096 entries: small arrays take the blocked paths."""
    monkeypatch.setattr(_moments, "BLOCK_BYTES", 1 << 16)
    monkeypatch.setattr(missing, "_SCAN_ENTRIES", 1 << 12)


def _data(dtype, shape=(5000, 7), offset=1e4, holes=0.0, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal(shape) * np.linspace(0.5, 3.0, shape[1]) + offset).astype(dtype)
    if holes:
        X[rng.random(shape) < holes] = np.nan
    return X


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_blocked_moments_are_numpys_bits(small_blocks, dtype, offset):
    X = _data(dtype, offset=offset)
    assert _moments._blocked(X)
    mean, std = _moments.column_moments(X)
    np.testing.assert_array_equal(mean, X.mean(axis=0, dtype=np.float64))
    np.testing.assert_array_equal(std, X.std(axis=0, dtype=np.float64))
    np.testing.assert_array_equal(_moments.column_means(X), X.mean(axis=0, dtype=np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_moments_with_holes(small_blocks, dtype):
    X = _data(dtype, holes=0.2)
    X[:, 3] = np.nan  # a column with no observed value: NaN, no warning
    mean, std = _moments.column_moments(X, nan=True)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        ref_mean = np.nanmean(X.astype(np.float64), axis=0)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        ref_std = np.nanstd(X.astype(np.float64), axis=0)
    np.testing.assert_array_equal(mean, ref_mean)
    # the deviations in float64 (np.nanstd of float32 data takes them in float32)
    np.testing.assert_array_equal(std, ref_std)
    np.testing.assert_array_equal(_moments.column_means(X, nan=True), ref_mean)


def test_blocked_moments_keep_the_magnitude_fixes(small_blocks):
    X = _data(np.float64, offset=0.0) * 1e-170  # squares underflow: fixed per column
    mean, std = _moments.column_moments(X)
    reference = _data(np.float64, offset=0.0)
    np.testing.assert_allclose(std * 1e170, reference.std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(mean * 1e170, reference.mean(axis=0), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_covariance_in_blocks(small_blocks, dtype):
    X = _data(dtype, shape=(3000, 6), offset=1e4)
    mean, covariance, s = _moments.mean_and_covariance(X)
    reference = np.cov(X.astype(np.float64), rowvar=False)
    np.testing.assert_array_equal(mean, X.mean(axis=0, dtype=np.float64))
    assert s == 2.0 ** round(np.log2(s))  # a power of two: exact
    covariance = covariance / (s * s)
    np.testing.assert_allclose(covariance, reference, rtol=1e-10, atol=1e-12 * np.abs(reference).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 6), (3, 5, 2), (1, 9)])
def test_pca_init_equals_the_svd_construction(small_blocks, dtype, shape):
    rng = np.random.default_rng(3)
    mixing = rng.standard_normal((6, 6)) * np.array([6.0, 3.0, 1.5, 0.7, 0.3, 0.1])[:, None]
    X = (rng.standard_normal((2000, 6)) @ mixing + 1e3).astype(dtype)
    grid = Grid(shape)
    codebook = initial_codebook("pca", X, grid, rng)
    reference = naive.pca_codebook(X, grid.coordinates)
    assert codebook.dtype == dtype
    tolerance = 1e-3 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(codebook, reference, rtol=0, atol=tolerance * np.abs(reference - 1e3).max())


@pytest.mark.parametrize("factor", [2.0**-660, 2.0**-100, 2.0**508])
def test_pca_init_at_any_magnitude(factor):
    # the covariance is taken of the deviations scaled into [1, 2): unscaled, data at 1e-200
    # gave a covariance of 0 (every unit at the mean) and rows near 1e153 an infinite one
    rng = np.random.default_rng(6)
    X = rng.standard_normal((2000, 4)) * [3.0, 1.0, 0.5, 0.2] + [1.0, -2.0, 0.0, 4.0]
    grid = Grid((3, 4))
    codebook = initial_codebook("pca", X, grid, rng)
    np.testing.assert_array_equal(initial_codebook("pca", X * factor, grid, rng), codebook * factor)


def test_pca_init_with_fewer_rows_than_features():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((3, 10))
    grid = Grid((2, 3))
    np.testing.assert_allclose(
        initial_codebook("pca", X, grid, rng), naive.pca_codebook(X, grid.coordinates), atol=1e-12
    )


def test_auto_grid_in_blocks_is_the_whole_array_choice(small_blocks):
    rng = np.random.default_rng(5)
    for stretch in (1.0, 2.0, 4.0, 9.0):
        X = rng.standard_normal((4000, 3)) * [stretch, 1.0, 0.2] + 50.0
        eigenvalues = np.linalg.eigvalsh(np.cov(X, rowvar=False))
        from somvq.parameters import som_toolbox_shape

        assert auto_grid(X).shape == som_toolbox_shape(4000, eigenvalues)


def test_scans_for_holes_and_inf_in_blocks_name_the_right_rows(small_blocks):
    X = _data(np.float64, shape=(6000, 5))
    assert not missing.has_missing(X)
    X[5999, 4] = np.nan  # in the last block only
    assert missing.has_missing(X)
    X[4321, :] = np.nan
    X[10:20, :4] = np.nan
    empty, over = missing.unusable_rows(X, 0.5)
    assert empty.tolist() == [4321]
    assert over.tolist() == [*range(10, 20), 4321]
    with pytest.raises(ValueError, match=r"1 row\(s\) with no observed feature.*rows 4321"):
        missing.check_missing(X, 1.0)
    X[4321] = 1.0
    X[3333, 2] = np.inf
    with pytest.raises(ValueError, match=r"infinity in 1 row\(s\) \(rows 3333\)"):
        missing.check_missing(X, 1.0)


def test_mean_filled_rows(small_blocks):
    X = _data(np.float32, holes=0.1)
    out = missing.mean_filled(X)
    means = np.nanmean(X.astype(np.float64), axis=0).astype(np.float32)
    holes = np.isnan(X)
    assert out.dtype == X.dtype and not np.isnan(out).any()
    np.testing.assert_array_equal(out[~holes], X[~holes])
    np.testing.assert_array_equal(out[holes], np.broadcast_to(means, X.shape)[holes])


def test_initialisation_memory_is_not_a_copy_of_the_data(small_blocks):
    X = _data(np.float32, shape=(20000, 100))  # 8 MB; a float64 copy is 16 MB
    grid = Grid((4, 4))
    for method in ("random", "pca"):
        peak, _ = _peak_bytes(lambda m=method: initial_codebook(m, X, grid, np.random.default_rng(0)))
        assert peak < X.nbytes / 4, (method, peak)
    peak, _ = _peak_bytes(lambda: auto_grid(X))
    assert peak < X.nbytes / 4, peak


def test_a_fit_with_holes_copies_the_data_only_for_an_init_that_reads_it(small_blocks):
    X = _data(np.float32, shape=(20000, 100), holes=0.1)
    W0 = np.nan_to_num(X[:16])
    assert not reads_data(W0) and not reads_data("normal") and reads_data("random")

    def fit(init):
        return KSOM((4, 4), n_epochs=1, init=init, missing="ignore", max_missing=1.0).fit(X)

    fit(W0)  # (compiles)
    for init in (W0, "normal"):
        peak, _ = _peak_bytes(lambda i=init: fit(i))
        assert peak < X.nbytes / 4, (init if isinstance(init, str) else "array", peak)
    peak, _ = _peak_bytes(lambda: fit("random"))  # the mean-filled copy, in X's dtype
    assert X.nbytes < peak < 1.5 * X.nbytes, peak
