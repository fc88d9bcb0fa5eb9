"""Missing values (issue 13): KSOM(missing="ignore") against tests/naive.py's masked references.

The references (naive.masked_*) share no code with somvq: explicit loops over rows and a
dense one-hot statistics form. Grids, schedules and sample orders are those of
tests/test_end_to_end.py.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import somvq
from somvq import KSOM
from somvq import missing as M

from . import naive
from .test_end_to_end import GRIDS, KINDS, epoch_orders, smoothing


def holes(X, fraction, seed, *, one_observed=True):
    """X with ``fraction`` of its entries set to NaN, every row keeping >= 1 observed entry;
    with ``one_observed``, row 0 keeps exactly one."""
    rng = np.random.default_rng(seed)
    Xn = np.array(X, dtype=float, copy=True)
    Xn[rng.random(X.shape) < fraction] = np.nan
    empty = np.isnan(Xn).all(axis=1)
    Xn[empty, 0] = X[empty, 0]
    if one_observed and X.shape[1] > 1:
        Xn[0, 1:] = np.nan
        Xn[0, 0] = X[0, 0]
    return Xn


def data(shape, n=37, features=4, seed=1, fraction=0.25):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features))
    W0 = rng.normal(scale=0.5, size=(math.prod(shape), features))
    return holes(X, fraction, seed + 1), W0


# ------------------------------------------------------------------ the distance and BMU
@given(
    n=st.integers(1, 40),
    d=st.integers(1, 7),
    k=st.integers(1, 12),
    fraction=st.floats(0.0, 0.8),
    offset=st.sampled_from([0.0, 1e3, -5e4]),
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_masked_distances_and_bmu_equal_the_reference(n, d, k, fraction, offset, seed, dtype):
    rng = np.random.default_rng(seed)
    X = (offset + rng.normal(size=(n, d))).astype(dtype)
    W = (offset + rng.normal(size=(k, d))).astype(dtype)
    Xn = holes(X, fraction, seed).astype(dtype)  # float32 rows take the float32 product
    expected = naive.masked_distances(Xn, W)
    got = M.masked_squared_distances(Xn, W)
    scale = 1.0 + (np.abs(Xn[~np.isnan(Xn)]).max() + np.abs(W).max()) ** 2
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * scale * d)
    bmu, sq = M.masked_assign(Xn, W)
    clear = naive.clear_rows(expected, gap=1e-9)
    np.testing.assert_array_equal(bmu[clear], expected.argmin(1)[clear])
    # the reported distance is the direct one, to the returned unit
    np.testing.assert_allclose(sq, expected[np.arange(n), bmu], rtol=1e-12, atol=0)
    assert np.all(expected[np.arange(n), bmu] <= expected.min(1) * (1 + 1e-9) + 1e-300)


@pytest.mark.parametrize("scale", [1e-30, 1e-16, 1e-3, 1.0, 1e12, 1e18])
@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_float32_masked_scores_keep_the_exact_winner(scale, offset):
    # float32 data: the masked product runs in float32 where its bound holds (and in float64
    # outside [2^-50, 2^50]); near-tied units (one float32 step apart) must still be ranked
    # as the float64 reference ranks them.
    rng = np.random.default_rng(int(scale * 7 + offset) % 1000)
    W = (offset + rng.normal(size=(40, 6))).astype(np.float32) * np.float32(scale)
    W[1] = np.nextafter(W[0], np.float32(np.inf))  # a near tie
    X = (offset + rng.normal(size=(600, 6))).astype(np.float32) * np.float32(scale)
    X[:50] = W[0] + (W[1] - W[0]) * 0.25  # rows next to the near tie
    Xn = holes(X, 0.3, 3).astype(np.float32)
    expected = naive.masked_distances(Xn, W)
    bmu, sq = M.masked_assign(Xn, W)
    truth = expected.min(1)
    got = expected[np.arange(len(bmu)), bmu]
    assert np.all(got <= truth), "a unit farther than the best was returned"
    ties = expected == truth[:, None]
    np.testing.assert_array_equal(bmu, ties.argmax(1))  # the lowest index among exact ties


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_far_from_a_contracted_codebook(dtype):
    # Rows ~1e3 from a codebook of radius 3e-3 (early in a fit, or data far out along
    # directions the map has not reached). The scores' error grows with R (2 ||x'|| + R),
    # not with ||x'||^2: in float32 the old (||x'|| + R)^2 bound (~1.8 here) exceeded the
    # winners' margins (~0.5-5) and re-ranked most rows; now the rows with a clear winner
    # are certified, and the winners are still the exact ones (a duplicated unit: the lower
    # index; units one step apart: as the float64 distances order them).
    from somvq._kernels.cpu_masked_search import masked_search_rows

    rng = np.random.default_rng(11)
    directions = rng.normal(size=(30, 8))
    W = (5.0 + 3e-3 * directions / np.linalg.norm(directions, axis=1, keepdims=True)).astype(dtype)
    W[1] = np.nextafter(W[0], dtype(np.inf))
    W[3] = W[2]
    directions = rng.normal(size=(800, 8))
    X = (5.0 + 1e3 * directions / np.linalg.norm(directions, axis=1, keepdims=True)).astype(dtype)
    Xn = holes(X, 0.25, 5).astype(dtype)
    expected = naive.masked_distances(Xn, W)
    bmu, sq = M.masked_assign(Xn, W)
    truth = expected.min(1)
    assert np.all(expected[np.arange(len(bmu)), bmu] <= truth)
    np.testing.assert_array_equal(bmu, (expected == truth[:, None]).argmax(1))
    np.testing.assert_allclose(sq, truth, rtol=1e-12)
    assert np.any(bmu == 2) and not np.any(bmu == 3)
    if dtype == np.float32:
        frame = M._MaskedFrame(W, single=True)
        scratch = M._search_scratch(frame.search_rows, 8, 30, frame.single)
        out_bmu, out_sq = np.empty(len(Xn), np.int64), np.empty(len(Xn))
        reranked = masked_search_rows(
            Xn, 0, len(Xn), frame.search_rows, *frame.search_tables(), *scratch, out_bmu, out_sq
        )
        np.testing.assert_array_equal(out_bmu, bmu)
        assert reranked < len(Xn) // 5, reranked


def test_float32_masked_scores_re_rank_what_float32_cannot_order():
    # A far unit makes the frame's radius R large, so float32 scores carry errors of about
    # u32 R^2 = 0.06 while units 0 and 1 differ by ~1e-3: the bound must send those rows
    # to the float64 re-rank (with float64's bound they come out wrong).
    rng = np.random.default_rng(5)
    W = rng.normal(size=(12, 6)).astype(np.float32)
    W[11] = 1000.0
    W[1] = W[0] + np.float32(3e-3) * rng.normal(size=6).astype(np.float32)
    X = (W[0] + np.float32(3e-3) * rng.normal(size=(400, 6))).astype(np.float32)
    Xn = holes(X, 0.2, 4).astype(np.float32)
    expected = naive.masked_distances(Xn, W)
    bmu, _ = M.masked_assign(Xn, W)
    clear = naive.clear_rows(expected, gap=1e-9)
    assert clear.sum() > 300
    np.testing.assert_array_equal(bmu[clear], expected.argmin(1)[clear])


def test_masked_bmu_equals_the_dense_one_without_nan():
    rng = np.random.default_rng(0)
    for offset in (0.0, 1e3):
        X = (offset + rng.normal(size=(2000, 8))).astype(np.float32)
        W = (offset + rng.normal(size=(64, 8))).astype(np.float32)
        np.testing.assert_array_equal(M.masked_assign(X, W)[0], somvq.algorithms.assign(X, W)[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_statistics_equal_the_dense_ones_without_nan(dtype):
    """The masked definitions on complete data: counts n_kj = c_k, the same sums and updates."""
    rng = np.random.default_rng(3)
    X = (50.0 + rng.normal(size=(500, 6))).astype(dtype)
    W = (50.0 + rng.normal(size=(12, 6))).astype(dtype)
    dense = somvq.algorithms.unit_statistics(X, W)
    masked = M.masked_unit_statistics(X, W)
    np.testing.assert_array_equal(masked.hits, dense.counts)
    np.testing.assert_array_equal(masked.counts, np.repeat(dense.counts[:, None], 6, axis=1))
    np.testing.assert_allclose(masked.sums, dense.sums, rtol=1e-12)
    np.testing.assert_allclose(
        M.masked_batch_update(W, masked.counts, masked.sums),
        somvq.algorithms.batch_update(W, dense.counts, dense.sums),
        rtol=1e-6 if dtype == np.float32 else 1e-12,
    )


# ------------------------------------------------------------------ whole fits
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape, topology, periodic", GRIDS)
def test_masked_batch_fit_equals_naive(shape, topology, periodic, kind):
    X, W0 = data(shape)
    n_epochs = 4
    horizon = max(n_epochs - 1, 1)
    distances = naive.grid_distances(shape, topology, periodic)
    W = W0.copy()
    for t, order in enumerate(epoch_orders(7, len(X), n_epochs)):
        W = naive.masked_batch_step(X[order], W, smoothing(kind, distances, t, horizon))
    som = KSOM(
        grid=shape,
        topology=topology,
        periodic=periodic,
        n_epochs=n_epochs,
        init=W0,
        random_state=7,
        missing="ignore",
        max_missing=1.0,
        **KINDS[kind],
    ).fit(X)
    np.testing.assert_allclose(som.codebook_, W, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(som.labels_, naive.masked_bmu(X, som.codebook_))


@pytest.mark.parametrize("update", ["all", "written"])
@pytest.mark.parametrize("kind", ["hard", "gaussian"])
@pytest.mark.parametrize("shape, topology, periodic", GRIDS[:3])
def test_masked_minibatch_fit_equals_naive(shape, topology, periodic, kind, update):
    X, W0 = data(shape)
    n_epochs, batch_size, decay, eps = 2, 8, 0.9, 1e-3
    steps_per_epoch = math.ceil(len(X) / batch_size)
    horizon = max(n_epochs * steps_per_epoch - 1, 1)
    distances = naive.grid_distances(shape, topology, periodic)
    K, D = W0.shape
    N, m, W, t = np.full((K, D), 1.0), W0.copy(), W0.copy(), 0
    for order in epoch_orders(3, len(X), n_epochs):
        for start in range(0, len(X), batch_size):
            H = smoothing(kind, distances, t, horizon)
            N, m, W = naive.masked_minibatch_step(
                X[order[start : start + batch_size]], W, N, m, H, decay, eps, update
            )
            t += 1
    som = KSOM(
        grid=shape,
        topology=topology,
        periodic=periodic,
        algorithm="minibatch",
        batch_size=batch_size,
        decay=decay,
        eps=eps,
        update=update,
        n_epochs=n_epochs,
        init=W0,
        random_state=3,
        missing="ignore",
        max_missing=1.0,
        **KINDS[kind],
    ).fit(X)
    assert som.ema_count_.shape == (K, D)
    np.testing.assert_allclose(som.ema_count_, N, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(som.ema_sum_, m, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(som.codebook_, W, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape, topology, periodic", GRIDS[:2])
def test_masked_online_fit_equals_naive(shape, topology, periodic, kind):
    X, W0 = data(shape, n=25)
    n_epochs, lr0, lr1 = 2, 0.5, 0.05
    horizon = max(n_epochs * len(X) - 1, 1)
    distances = naive.grid_distances(shape, topology, periodic)
    order = np.concatenate(epoch_orders(11, len(X), n_epochs))
    expected = naive.masked_online_pass(
        X,
        W0,
        order,
        lambda t, k: smoothing(kind, distances, t, horizon)[k],
        lambda t, k: lr0 * (lr1 / lr0) ** min(t / horizon, 1.0),
    )
    som = KSOM(
        grid=shape,
        topology=topology,
        periodic=periodic,
        algorithm="online",
        learning_rate=lr0,
        learning_rate_final=lr1,
        n_epochs=n_epochs,
        init=W0,
        random_state=11,
        missing="ignore",
        max_missing=1.0,
        **KINDS[kind],
    ).fit(X)
    np.testing.assert_allclose(som.codebook_, expected, rtol=1e-10, atol=1e-12)


def test_masked_online_inverse_count_equals_naive():
    """MacQueen's online k-means on observed features: rate 1 / n_k*, no neighbourhood."""
    X, W0 = data((2, 3), n=30)
    counts = np.full(6, 1.0)

    def rate(t, k):
        counts[k] += 1.0
        return 1.0 / counts[k]

    order = np.concatenate(epoch_orders(5, len(X), 2))
    expected = naive.masked_online_pass(X, W0, order, lambda t, k: np.eye(6)[k], rate)
    som = KSOM(
        grid=(2, 3),
        algorithm="online",
        learning_rate="inverse_count",
        neighbourhood="none",
        n_epochs=2,
        init=W0,
        random_state=5,
        missing="ignore",
        max_missing=1.0,
    ).fit(X)
    np.testing.assert_allclose(som.codebook_, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(som.unit_counts_, counts)


@given(
    seed=st.integers(0, 2**31 - 1),
    fraction=st.floats(0.0, 0.9),
    d=st.integers(1, 6),
    offset=st.sampled_from([0.0, 100.0]),
)
def test_masked_batch_step_property(seed, fraction, d, offset):
    rng = np.random.default_rng(seed)
    X = holes(offset + rng.normal(size=(30, d)), fraction, seed)
    W0 = offset + rng.normal(size=(6, d))
    stats = M.masked_unit_statistics(X, W0)
    expected_bmu = naive.masked_bmu(X, W0)
    clear = naive.clear_rows(naive.masked_distances(X, W0), gap=1e-9)
    if not clear.all():
        return  # near-tied rows: either winner is right; the statistics would differ
    n, s = naive.masked_statistics(X, W0, np.eye(6))
    np.testing.assert_allclose(stats.counts, n, rtol=0, atol=0)
    np.testing.assert_allclose(stats.sums, s, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(stats.hits, np.bincount(expected_bmu, minlength=6))
    np.testing.assert_allclose(
        M.masked_batch_update(W0, stats.counts, stats.sums),
        naive.masked_batch_step(X, W0, np.eye(6)),
        rtol=1e-12,
        atol=1e-12,
    )


@given(
    seed=st.integers(0, 2**31 - 1),
    fraction=st.floats(0.0, 0.9),
    d=st.integers(1, 5),
    update=st.sampled_from(["all", "written"]),
    decay=st.floats(0.0, 0.99),
    eps=st.sampled_from([1e-5, 0.1]),
)
def test_masked_ema_step_property(seed, fraction, d, update, decay, eps):
    rng = np.random.default_rng(seed)
    X = holes(rng.normal(size=(20, d)), fraction, seed)
    W0 = rng.normal(size=(5, d))
    N0 = rng.uniform(0.5, 2.0, size=(5, d))
    m0 = N0 * W0
    if not naive.clear_rows(naive.masked_distances(X, W0), gap=1e-9).all():
        return  # near-tied rows: either winner is right
    stats = M.masked_unit_statistics(X, W0)
    N, m, W = M.masked_ema_update(N0, m0, W0, stats.counts, stats.sums, decay=decay, eps=eps, update=update)
    eN, em, eW = naive.masked_minibatch_step(X, W0, N0, m0, np.eye(5), decay, eps, update)
    np.testing.assert_allclose(N, eN, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(m, em, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(W, eW, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("update", ["all", "written"])
def test_masked_ema_step_column_without_weight_keeps_its_state(update):
    # decay 0 and a feature never observed in the batch: sum_k N_kj = 0 (was 0/0 = NaN).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    X[:, 1] = np.nan
    W0 = rng.normal(size=(4, 3))
    N0 = rng.uniform(0.5, 2.0, size=(4, 3))
    m0 = N0 * W0
    stats = M.masked_unit_statistics(X, W0)
    N, m, W = M.masked_ema_update(N0, m0, W0, stats.counts, stats.sums, decay=0.0, eps=1e-5, update=update)
    eN, em, eW = naive.masked_minibatch_step(X, W0, N0, m0, np.eye(4), 0.0, 1e-5, update)
    assert np.isfinite(W).all()
    np.testing.assert_array_equal(W[:, 1], W0[:, 1])
    np.testing.assert_array_equal(N[:, 1], N0[:, 1])
    np.testing.assert_allclose(N, eN, rtol=1e-12)
    np.testing.assert_allclose(m, em, rtol=1e-12)
    np.testing.assert_allclose(W, eW, rtol=1e-10)


def test_minibatch_with_a_feature_missing_from_a_whole_batch():
    # decay="auto" is 0 for fits of <= 20 steps; the second batch never sees feature 0.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 3))
    X[4:, 0] = np.nan
    som = KSOM(grid=(2, 2), algorithm="minibatch", batch_size=4, missing="ignore", random_state=0)
    som.partial_fit(X)
    assert np.isfinite(som.codebook_).all()
    som = KSOM(grid=(2, 2), algorithm="minibatch", batch_size=4, missing="ignore", n_epochs=3, random_state=0)
    assert np.isfinite(som.fit(X).codebook_).all()


# ------------------------------------------------------------------ dense data: unchanged
@pytest.mark.parametrize("algorithm", ["batch", "minibatch", "online"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_missing_ignore_on_dense_data_is_bit_identical(algorithm, dtype):
    X = np.random.default_rng(0).normal(size=(300, 5)).astype(dtype)
    kw = dict(grid=(4, 5), algorithm=algorithm, n_epochs=3, batch_size=32, random_state=0)
    a = KSOM(**kw).fit(X)
    b = KSOM(missing="ignore", **kw).fit(X)
    np.testing.assert_array_equal(a.codebook_, b.codebook_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.ema_count_, b.ema_count_)
    assert b.ema_count_.shape == (20,)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.quantization_error(X) == b.quantization_error(X)


def test_masked_path_is_not_taken_without_nan(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("masked path taken on data without NaN")

    monkeypatch.setattr(M, "masked_pass", boom)
    monkeypatch.setattr(M, "masked_assign", boom)
    X = np.random.default_rng(0).normal(size=(100, 3))
    som = KSOM(grid=(3, 3), missing="ignore", n_epochs=2, random_state=0).fit(X)
    som.predict(X), som.score(X), som.impute(X)


# ------------------------------------------------------------------ inference and impute
def test_inference_accepts_nan_with_ignore():
    X, W0 = data((3, 4), n=60)
    som = KSOM(grid=(3, 4), init=W0, missing="ignore", max_missing=1.0, n_epochs=2, random_state=0).fit(X)
    ref = naive.masked_distances(X, som.codebook_)
    np.testing.assert_array_equal(som.predict(X), ref.argmin(1))
    np.testing.assert_allclose(som.transform(X), np.sqrt(ref), rtol=1e-9)
    np.testing.assert_allclose(som.quantization_error(X), np.sqrt(ref.min(1)).mean(), rtol=1e-12)
    np.testing.assert_allclose(som.quantization_error(X, squared=True), ref.min(1).mean(), rtol=1e-12)
    assert som.score(X) == -som.quantization_error(X)
    second = np.argsort(ref, axis=1, kind="stable")[:, :2]
    dist = naive.grid_distances((3, 4))
    expected_te = np.mean([not (0 < dist[a, b] < 1.5) for a, b in second])
    assert som.topographic_error(X) == pytest.approx(expected_te)
    np.testing.assert_array_equal(som.bmu_coordinates(X), som.grid_.indices[ref.argmin(1)])
    filled = som.impute(X)
    nan = np.isnan(X)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~nan], X[~nan])
    np.testing.assert_array_equal(filled[nan], som.codebook_[ref.argmin(1)][nan])
    assert np.isnan(X).sum() == nan.sum()  # input untouched


def test_impute_needs_ignore():
    X = np.random.default_rng(0).normal(size=(40, 3))
    som = KSOM(grid=(2, 2), n_epochs=1).fit(X)
    with pytest.raises(ValueError, match="missing='ignore'"):
        som.impute(X)


def test_imputer_pattern_in_a_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, _ = data((3, 3), n=80)
    som = KSOM(grid=(3, 3), missing="ignore", max_missing=1.0, n_epochs=3, random_state=0).fit(X)
    pipe = make_pipeline(FunctionTransformer(som.impute))
    assert not np.isnan(pipe.fit_transform(X)).any()


# ------------------------------------------------------------------ bad input
def _rows():
    return np.random.default_rng(0).normal(size=(30, 4))


def test_all_nan_row_is_an_error():
    X = _rows()
    X[[5, 9]] = np.nan
    with pytest.raises(ValueError, match=r"2 row\(s\) with no observed feature.*rows 5, 9"):
        KSOM(grid=(2, 2), missing="ignore", max_missing=1.0).fit(X)


@pytest.mark.parametrize("init", ["random", "pca", "sample"])
@pytest.mark.parametrize("grid", [(2, 2), "auto"])
def test_a_column_with_no_observed_value_is_named(init, grid):
    """Before: a NaN initial codebook, then "training produced a non-finite codebook ...
    values up to nan" (random), or LinAlgError (pca, grid="auto")."""
    X = _rows()
    X[:, 2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice" on the way
        with pytest.raises(ValueError, match=r"no observed value in column\(s\) \[2\] \(all NaN\)"):
            KSOM(grid=grid, init=init, missing="ignore", max_missing=1.0, n_epochs=1).fit(X)
    # units given: the column stays where they put it (nothing is observed to move it)
    W = np.zeros((4, X.shape[1]))
    som = KSOM(grid=(2, 2), init=W, missing="ignore", max_missing=1.0, n_epochs=1).fit(X)
    assert np.all(som.codebook_[:, 2] == 0.0) and np.all(np.isfinite(som.codebook_))


def test_max_missing_exceeded_names_the_rows():
    X = _rows()
    X[[3, 7, 8], :3] = np.nan
    with pytest.raises(ValueError, match=r"3 row\(s\) missing more than max_missing=0.5 .* rows 3, 7, 8"):
        KSOM(grid=(2, 2), missing="ignore").fit(X)
    KSOM(grid=(2, 2), missing="ignore", max_missing=0.75, n_epochs=1).fit(X)


def test_max_missing_keeps_rows_exactly_at_the_limit():
    """Rows missing exactly the fraction max_missing were refused when max_missing * D
    rounded below the count: 29 of 100 at max_missing=0.29 (0.29 * 100 = 28.999999999999996).
    The docs refuse rows missing *more than* that fraction: the fractions are compared."""
    X = np.random.default_rng(0).normal(size=(20, 100))
    X[0, :29] = np.nan
    KSOM(grid=(2, 2), missing="ignore", max_missing=0.29, n_epochs=1, random_state=0).fit(X)
    X[0, 29] = np.nan
    with pytest.raises(ValueError, match=r"1 row\(s\) missing more than max_missing=0.29 .* rows 0;"):
        KSOM(grid=(2, 2), missing="ignore", max_missing=0.29).fit(X)
    # every fraction k / D at its own limit passes, one more missing entry does not
    from somvq.layers import check_layer_missing

    for D in range(1, 61):
        for k in range(0, D):
            row = np.zeros((1, D))
            row[0, :k] = np.nan
            M.check_missing(row, k / D)
            check_layer_missing(row, [np.arange(D)], k / D)
            row[0, k] = np.nan
            if k + 1 < D:
                with pytest.raises(ValueError, match="missing more than"):
                    M.check_missing(row, k / D)
                with pytest.raises(ValueError, match="missing more than"):
                    check_layer_missing(row, [np.arange(D)], k / D)


def test_max_missing_keeps_a_layer_exactly_at_the_limit():
    X = np.random.default_rng(1).normal(size=(20, 200))
    X[3, :29] = np.nan  # 29 of layer 0's 100 columns (of the row's 200)
    layers = [list(range(100)), list(range(100, 200))]
    layered = dict(grid=(2, 2), layers=layers, missing="ignore", max_missing=0.29)
    KSOM(**layered, n_epochs=1, random_state=0).fit(X)
    X[3, 29] = np.nan
    with pytest.raises(ValueError, match=r"max_missing=0.29 of the 100 columns of layer 0: rows 3;"):
        KSOM(**layered).fit(X)


_INF_IN_ROW_17 = (
    r"Input X contains infinity in 1 row\(s\) \(rows 17\); inf is never a missing value "
    r"\(use NaN for missing entries\)"
)


def _rows_with_inf():
    X = np.random.default_rng(0).normal(size=(30, 3))
    X[5, 1] = np.nan
    X[17, 2] = np.inf
    return X


def test_inf_with_missing_ignore_names_the_row_in_memory():
    """With missing="ignore", fit, partial_fit, SOMImputer, predict and the supervised
    estimators raised scikit-learn's "Input X contains infinity or a value too large for
    dtype('float64')": no row, no hint (its check ran before check_missing's)."""
    from somvq import KSOMClassifier, KSOMRegressor, SOMImputer

    X = _rows_with_inf()
    clean = np.nan_to_num(X, posinf=0.0)
    y = np.arange(30) % 2
    params = dict(grid=(2, 2), n_epochs=1, random_state=0)
    som = KSOM(**params, missing="ignore").fit(clean)
    imputer = SOMImputer(**params).fit(clean)
    clf = somvq.KSOMClassifier(**params, missing="ignore").fit(clean, y)
    reg = KSOMRegressor(**params, missing="ignore").fit(clean, y.astype(float))
    calls = {
        "KSOM.fit": lambda: KSOM(**params, missing="ignore").fit(X),
        "KSOM.partial_fit": lambda: KSOM(**params, missing="ignore").partial_fit(X),
        "SOMImputer.fit": lambda: SOMImputer(**params).fit(X),
        "SOMImputer.transform": lambda: imputer.transform(X),
        "KSOM.predict": lambda: som.predict(X),
        "KSOM.transform": lambda: som.transform(X),
        "KSOM.impute": lambda: som.impute(X),
        "KSOM.quantization_error": lambda: som.quantization_error(X),
        "KSOMClassifier.fit": lambda: KSOMClassifier(**params, missing="ignore").fit(X, y),
        "KSOMClassifier.predict": lambda: clf.predict(X),
        "KSOMRegressor.predict": lambda: reg.predict(X),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=_INF_IN_ROW_17):
            call()
            pytest.fail(f"{name} accepted inf")
    # inf alone (no NaN) too; missing="error" keeps scikit-learn's message
    X[5, 1] = 0.0
    with pytest.raises(ValueError, match=_INF_IN_ROW_17):
        reg.predict(X)
    with pytest.raises(ValueError, match="Input X contains infinity"):
        KSOM(**params).fit(X)


@pytest.mark.parametrize("missing", ["error", "ignore"])
def test_inf_is_always_an_error(missing):
    X = _rows()
    X[2, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        KSOM(grid=(2, 2), missing=missing).fit(X)
    som = KSOM(grid=(2, 2), missing=missing, n_epochs=1).fit(_rows())
    with pytest.raises(ValueError, match="infinity"):
        som.predict(X)


def test_nan_with_missing_error_stays_a_valueerror():
    X = _rows()
    X[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        KSOM(grid=(2, 2)).fit(X)
    som = KSOM(grid=(2, 2), n_epochs=1).fit(_rows())
    for method in (
        som.predict,
        som.transform,
        som.score,
        som.quantization_error,
        som.topographic_error,
        som.bmu_coordinates,
    ):
        with pytest.raises(ValueError, match="NaN"):
            method(X)


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="missing"):
        KSOM(grid=(2, 2), missing="drop").fit(_rows())
    with pytest.raises(ValueError, match="max_missing"):
        KSOM(grid=(2, 2), missing="ignore", max_missing=1.5).fit(_rows())


def test_cuda_with_ignore_is_a_valid_combination():
    """missing="ignore" runs on the CUDA engine (tests/cuda/test_cuda_missing.py): not refused."""
    from somvq.parameters import check_options

    check_options(KSOM(grid=(2, 2), missing="ignore", backend="cuda"))


# ------------------------------------------------------------------ model files
@pytest.mark.parametrize("algorithm", ["batch", "minibatch"])
def test_model_files_keep_the_policy(tmp_path, algorithm):
    X, _ = data((3, 3), n=60)
    som = KSOM(
        grid=(3, 3),
        algorithm=algorithm,
        batch_size=16,
        missing="ignore",
        max_missing=0.8,
        n_epochs=2,
        random_state=0,
    ).fit(X)
    path = somvq.save(som, tmp_path / "m.somvq.npz")
    back = somvq.load(path)
    assert back.missing == "ignore" and back.max_missing == 0.8
    np.testing.assert_array_equal(back.codebook_, som.codebook_)
    np.testing.assert_array_equal(back.ema_count_, som.ema_count_)
    np.testing.assert_array_equal(back.impute(X), som.impute(X))
    back.partial_fit(X)  # a (K, D) EMA count continues on the masked path


# ------------------------------------------------------------------ the scikit-learn imputer
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from somvq import SOMImputer  # noqa: E402

#: SOMImputer checks expected to fail, with the reason (strict: an unexpected pass fails).
IMPUTER_EXPECTED_FAILURES = {}


def test_imputer_equals_the_map_it_fits():
    X, _ = data((3, 3), n=80)
    imputer = SOMImputer(grid=(3, 3), max_missing=1.0, n_epochs=3, random_state=0).fit(X)
    som = KSOM(grid=(3, 3), missing="ignore", max_missing=1.0, n_epochs=3, random_state=0).fit(X)
    np.testing.assert_array_equal(imputer.som_.codebook_, som.codebook_)
    np.testing.assert_array_equal(imputer.transform(X), som.impute(X))
    assert "missing" not in imputer.get_params()


def test_imputer_in_a_pipeline():
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    X, _ = data((3, 3), n=120)
    y = np.nan_to_num(X) @ np.arange(1.0, 5.0)
    model = make_pipeline(SOMImputer(grid=(3, 3), max_missing=1.0, random_state=0), Ridge()).fit(X, y)
    assert np.isfinite(model.predict(X)).all()


@parametrize_with_checks(
    [SOMImputer(grid=(2, 3), n_epochs=2, max_missing=1.0, random_state=0)],
    expected_failed_checks=lambda est: IMPUTER_EXPECTED_FAILURES,
    xfail_strict=True,
)
def test_imputer_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("layered", [False, True])
def test_impute_keeps_the_observed_values_of_another_dtype(layered):
    """A float32 map given float64 rows rounded every observed value to float32 and
    returned float32 (found by an adversarial pass): the docs say observed entries, and
    rows without NaN, come back unchanged. The holes get the BMU's values."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3)) * 1e3 + 1e6
    X[::5, 1] = np.nan
    params = dict(grid=(3, 3), n_epochs=2, random_state=0, missing="ignore")
    if layered:
        params.update(layers=[[0], [1, 2]])
    som = KSOM(**params).fit(X.astype(np.float32))
    out = som.impute(X)
    assert out.dtype == np.float64
    observed = ~np.isnan(X)
    np.testing.assert_array_equal(out[observed], X[observed])
    bmu = som.predict(X)
    np.testing.assert_array_equal(out[~observed], som.codebook_.astype(np.float64)[bmu][~observed])
    np.testing.assert_array_equal(som.impute(X[1:2]), X[1:2])
    assert som.impute(X.astype(np.float32)).dtype == np.float32
    # float16 comes back as float64, as documented (its range could not hold every code)
    small = (X - 1e6) / 1e3
    half = small.astype(np.float16)
    out = KSOM(**params).fit(small).impute(half)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[observed], half.astype(np.float64)[observed])


def test_imputer_errors_and_warnings_name_the_imputer():
    """Its errors named the inner map: "X has 3 features, but KSOM is expecting 4", "The
    'n_epochs' parameter of KSOM" (found by a bug hunt); a name mismatch warned twice."""
    from somvq import SOMImputer

    X = np.random.default_rng(0).normal(size=(50, 4))
    X[::3, 1] = np.nan
    with pytest.raises(ValueError, match="The 'n_epochs' parameter of SOMImputer must be"):
        SOMImputer(n_epochs=-1).fit(X)
    imputer = SOMImputer(grid=(2, 2), n_epochs=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but SOMImputer is expecting 4"):
        imputer.transform(X[:, :3])
    pd = pytest.importorskip("pandas")
    named = SOMImputer(grid=(2, 2), n_epochs=2, random_state=0).fit(pd.DataFrame(X, columns=list("abcd")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        named.transform(X)
    messages = [str(w.message) for w in caught]
    assert messages == ["X does not have valid feature names, but SOMImputer was fitted with feature names"]
