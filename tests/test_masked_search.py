"""The compiled masked search (somvq/_kernels/cpu_masked_search.py) against tests/naive.py.

``somvq.missing.masked_assign`` runs the kernel; its winners must be the argmin of
naive.masked_distances (explicit loops, no code shared with somvq), lowest index on exact
ties, and its distances the direct masked sum in feature order, bit for bit (the
:func:`loop_distance` below, a plain Python loop). The data are chosen to be hard: offsets
far from the origin, raw pixel ranges and integer columns (exact ties), near ties one
float32 step apart, rows with one observed feature, K = 1. One test drops the error
bound (kappa = 0) and shows that the same data then yields wrong winners: the bound is
what makes the search exact.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from somvq import missing as M
from somvq._kernels import cpu_masked_search as S

from . import naive


def holes(X, fraction, rng, *, one_observed=True):
    """``X`` (float copy) with ``fraction`` of its entries NaN, each row keeping >= 1 entry;
    with ``one_observed``, row 0 keeps exactly one (its last)."""
    Xn = np.array(X, copy=True)
    Xn[rng.random(X.shape) < fraction] = np.nan
    empty = np.isnan(Xn).all(axis=1)
    Xn[empty, 0] = X[empty, 0]
    if one_observed and X.shape[1] > 1:
        Xn[0, :-1] = np.nan
        Xn[0, -1] = X[0, -1]
    return Xn


def loop_distance(x, w):
    """D / n_obs * sum over observed j of (x_j - w_j)^2, summed in feature order in float64."""
    total, observed = 0.0, 0
    for xj, wj in zip(x.tolist(), np.asarray(w, dtype=np.float64).tolist()):
        if xj == xj:
            d = float(xj) - wj
            total += d * d
            observed += 1
    return len(x) / observed * total


def check(Xn, W, *, exact_ties=False):
    """masked_assign(Xn, W) against the reference; returns its winners."""
    bmu, sq = M.masked_assign(Xn, W)
    expected = naive.masked_distances(Xn, W)
    n = Xn.shape[0]
    assert bmu.dtype == np.int64 and sq.dtype == np.float64
    got = expected[np.arange(n), bmu]
    best = expected.min(axis=1)
    assert np.all(got <= best * (1 + 1e-12) + 1e-300), "a unit farther than the best was returned"
    clear = naive.clear_rows(expected, gap=1e-9)
    np.testing.assert_array_equal(bmu[clear], expected.argmin(axis=1)[clear])
    if exact_ties:  # integer data: the reference's sums are exact, so are its ties
        np.testing.assert_array_equal(bmu, (expected == best[:, None]).argmax(axis=1))
    # the reported distance: the direct sum to the returned unit, the same bits as a loop
    np.testing.assert_array_equal(sq, [loop_distance(Xn[i], W[bmu[i]]) for i in range(n)])
    return bmu


@given(
    n=st.integers(1, 60),
    d=st.integers(1, 9),
    k=st.integers(1, 14),
    fraction=st.floats(0.0, 0.85),
    offset=st.sampled_from([0.0, 1e4, -3e3]),
    kind=st.sampled_from(["normal", "pixels", "integer columns"]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31 - 1),
)
def test_masked_search_equals_the_reference(n, d, k, fraction, offset, kind, dtype, seed):
    rng = np.random.default_rng(seed)
    if kind == "pixels":  # raw 0..255 values, units on the same lattice: exact ties abound
        X = rng.integers(0, 256, size=(n, d)).astype(dtype)
        W = rng.integers(0, 256, size=(k, d)).astype(dtype)
    else:
        X = (offset + rng.normal(size=(n, d))).astype(dtype)
        W = (offset + rng.normal(scale=0.7, size=(k, d))).astype(dtype)
        if kind == "integer columns":
            X[:, ::2] = np.round(X[:, ::2] * 3)
            W[:, ::2] = np.round(W[:, ::2] * 3)
    if k > 2:
        W[k - 1] = W[0]  # an exact duplicate: the lower index must win
    Xn = holes(X, fraction, rng)
    check(Xn, W, exact_ties=kind == "pixels")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_near_ties_one_step_apart(dtype, offset):
    rng = np.random.default_rng(7)
    W = (offset + rng.normal(size=(64, 12))).astype(dtype)
    W[1] = np.nextafter(W[0], dtype(np.inf))  # units 0 and 1 one step apart in every feature
    W[2] = W[0]  # and an exact duplicate of unit 0
    X = (offset + rng.normal(size=(900, 12))).astype(dtype)
    X[:300] = W[0] + (W[1] - W[0]) * rng.random((300, 1)).astype(dtype)  # between them
    Xn = holes(X, 0.3, rng)
    bmu = check(Xn, W)
    assert not np.any(bmu == 2), "a duplicate of unit 0 won over unit 0"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_unit_and_one_observed_feature(dtype):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 5)).astype(dtype)
    X[:, 1:] = np.nan  # every row observes feature 0 only
    W = rng.normal(size=(1, 5)).astype(dtype)
    assert np.all(check(X, W) == 0)
    check(X, rng.normal(size=(9, 5)).astype(dtype))


def test_empty_and_integer_input():
    W = np.arange(12.0).reshape(4, 3)
    bmu, sq = M.masked_assign(np.empty((0, 3)), W)
    assert bmu.shape == (0,) and sq.shape == (0,)
    X = np.array([[0, 1, 2], [9, 10, 12]])  # integers (no NaN): the same search in float64
    bmu, sq = M.masked_assign(X, W)
    np.testing.assert_array_equal(bmu, [0, 3])
    np.testing.assert_array_equal(sq, [0.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_threads_or_calls(dtype):
    rng = np.random.default_rng(3)
    X = holes((100 + rng.normal(size=(20_000, 16))).astype(dtype), 0.2, rng)
    W = (100 + rng.normal(size=(96, 16))).astype(dtype)
    bmu, sq = M.masked_assign(X, W)
    with threadpool_limits(1):  # one thread: the blocks one after the other, one call
        bmu1, sq1 = M.masked_assign(X, W)
    np.testing.assert_array_equal(bmu, bmu1)
    np.testing.assert_array_equal(sq, sq1)
    # the kernel over other splits of the same blocks
    frame = M._MaskedFrame(W, single=dtype == np.float32)
    rows = frame.search_rows
    scratch = M._search_scratch(rows, 16, 96, frame.single)
    bmu2, sq2 = np.empty_like(bmu), np.empty_like(sq)
    for start in range(0, X.shape[0], 3 * rows):
        stop = min(start + 3 * rows, X.shape[0])
        S.masked_search_rows(X, start, stop, rows, *frame.search_tables(), *scratch, bmu2, sq2)
    np.testing.assert_array_equal(bmu, bmu2)
    np.testing.assert_array_equal(sq, sq2)


def _search(X, W, *, drop_bound=False):
    """The kernel over all rows of X (as masked_assign runs it); kappa = 0 with drop_bound."""
    frame = M._MaskedFrame(W, single=X.dtype == np.float32 and W.dtype == np.float32)
    tables = list(frame.search_tables())
    if drop_bound:
        tables[-2:] = [0.0, 0.0]  # kappa, kappa32: only the lowest score's ties are re-ranked
    rows = frame.search_rows
    scratch = M._search_scratch(rows, X.shape[1], W.shape[0], frame.single)
    bmu, sq = np.empty(X.shape[0], dtype=np.int64), np.empty(X.shape[0])
    reranked = S.masked_search_rows(X, 0, X.shape[0], rows, *tables, *scratch, bmu, sq)
    return bmu, reranked


@pytest.mark.parametrize("dtype, far, spread", [(np.float32, 100.0, 1e-4), (np.float64, 1e5, 1e-6)])
def test_the_error_bound_is_what_makes_the_winners_exact(dtype, far, spread):
    # Units on both sides of the origin: the frame is not centred, so units 0 and 1 (at
    # +far, +-delta) have squares ~D far^2 whose GEMM rounding (~sqrt(D) ulps of them at
    # D = 128, more than the kernel's few-ulp slack) exceeds the gaps between the rows'
    # distances to them (~4 spread |delta|): the GEMM's order is wrong on many rows, and
    # only the bound sends them to the direct re-rank.
    rng = np.random.default_rng(5)
    c = np.full(128, far)
    delta = rng.normal(size=128)
    W = (-c + rng.normal(size=(12, 128))).astype(dtype)
    W[0], W[1] = c + delta, c - delta
    X = (c + spread * rng.normal(size=(2000, 128))).astype(dtype)
    Xn = holes(X, 0.2, rng)
    expected = naive.masked_distances(Xn, W)
    clear = naive.clear_rows(expected, gap=1e-9)
    assert clear.sum() > 1900
    truth = expected.argmin(axis=1)[clear]
    bmu, reranked = _search(Xn, W)
    np.testing.assert_array_equal(bmu[clear], truth)
    assert reranked > 0
    np.testing.assert_array_equal(M.masked_assign(Xn, W)[0], bmu)
    # without the bound the GEMM's order decides, and it is wrong on many of these rows
    dropped, _ = _search(Xn, W, drop_bound=True)
    assert np.sum(dropped[clear] != truth) > 50, "the data no longer exercises the bound"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_codebook_gives_numpys_argmin(dtype, bad):
    # A diverged codebook: no error; as NumPy's argmin of the scores, the first NaN score
    # wins (a unit holding NaN or inf scores NaN on every row: 0 * inf, inf - inf), and the
    # distance is the direct one (NaN / inf where the row observes that entry).
    rng = np.random.default_rng(2)
    X = holes(rng.normal(size=(300, 6)).astype(dtype), 0.3, rng)
    W = rng.normal(size=(9, 6)).astype(dtype)
    W[4, 2] = bad
    bmu, sq = M.masked_assign(X, W)
    assert np.all(bmu == 4)
    observed = ~np.isnan(X[:, 2])
    assert np.all(np.isnan(sq[observed]) if np.isnan(bad) else np.isinf(sq[observed]))
    np.testing.assert_array_equal(sq[~observed], [loop_distance(x, W[4]) for x in X[~observed]])
