"""The fused form of the dense search (cpu_fused: rows in vector lanes, no scores written)
gives the GEMM form's winners and distances bit for bit, and the float64 brute-force ones."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from somvq._kernels import cpu_bmu, cpu_fused

from . import naive


def _search(X, W, lanes, rows_buffer=None):
    """search_block on all of X in one block: (winners, distances, re-ranked rows)."""
    s = cpu_bmu._search_setup(W, X.dtype)
    n, d = X.shape
    k = W.shape[0]
    framed = np.ones((max(n, 1), d + 1), dtype=X.dtype)
    rows = cpu_fused.scores_rows(max(n, 1), k, d, X.itemsize) if rows_buffer is None else rows_buffer
    products = np.empty((rows, k), dtype=X.dtype)
    bmu, sq = np.empty(n, dtype=np.int64), np.empty(n)
    reranked = cpu_bmu.search_block(
        X,
        0,
        n,
        framed,
        products,
        s.codebook,
        s.aug,
        s.shift,
        s.frame,
        s.kappa,
        s.overflow,
        s.up,
        bmu,
        sq,
        lanes,
    )
    return bmu, sq, reranked


def _assert_both_forms_exact(X, W):
    gemm = _search(X, W, False)
    fused = _search(X, W, True)
    np.testing.assert_array_equal(fused[0], gemm[0])
    np.testing.assert_array_equal(fused[1], gemm[1])  # the same bits, NaN where NaN
    finite = np.isfinite(X).all(1)
    np.testing.assert_array_equal(fused[0][finite], naive.bmu(X[finite], W))
    return fused


@settings(deadline=None, max_examples=150)
@given(
    n=st.integers(1, 80),
    d=st.integers(1, cpu_fused.MAX_FEATURES + 3),
    k=st.integers(1, 120),
    dtype=st.sampled_from([np.float32, np.float64]),
    offset=st.sampled_from([0.0, 3.0, 255.0, -1e4, 1e6, 1e-30, 1e30]),
    integers=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_fused_form_is_the_gemm_form(n, d, k, dtype, offset, integers, seed):
    """Random shapes (either side of MAX_FEATURES, partial tiles and unit groups), offsets
    far from the origin, and integer data whose ties the certificate must send to the
    re-rank (units repeated, rows equal to units)."""
    rng = np.random.default_rng(seed)
    if integers:
        W = rng.integers(-2, 3, size=(k, d)).astype(np.float64)
        X = rng.integers(-2, 3, size=(n, d)).astype(np.float64)
    else:
        W = rng.normal(size=(k, d))
        X = rng.normal(size=(n, d)) * 2.0
    W[k // 2] = W[0]
    X[: min(n, k)] = W[: min(n, k)]
    if dtype == np.float32 and abs(offset) > 1e20:
        offset = 1e20 * np.sign(offset)
    _assert_both_forms_exact((X + offset).astype(dtype), (W + offset).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_midpoints_go_to_the_rerank_and_keep_the_lowest_index(dtype):
    """Rows halfway between two units tie exactly: no certificate holds, the re-rank gives
    the lower index, as the float64 brute force does."""
    rng = np.random.default_rng(3)
    W = rng.integers(-4, 5, size=(40, 12)).astype(dtype) * 2
    pairs = rng.integers(0, 40, size=(200, 2))
    X = ((W[pairs[:, 0]].astype(float) + W[pairs[:, 1]]) / 2).astype(dtype)
    bmu, _, reranked = _assert_both_forms_exact(X, W)
    assert reranked > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_rows_match_the_gemm_form(dtype):
    """A row holding inf or NaN has no finite reach: both forms compare every unit."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 6)).astype(dtype)
    W = rng.normal(size=(9, 6)).astype(dtype)
    X[3, 2] = np.inf
    X[7, 0] = np.nan
    X[11] = -np.inf
    _assert_both_forms_exact(X, W)


def test_a_buffer_too_small_for_the_scratch_takes_the_gemm_form():
    """The fused form needs scores_rows rows; with only ``rows`` (K small against D) the
    search takes the GEMM form, with the same results."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(100, 60)).astype(np.float32)
    W = rng.normal(size=(4, 60)).astype(np.float32)
    assert cpu_fused.scores_rows(100, 4, 60, 4) > 100
    small = _search(X, W, True, rows_buffer=100)
    np.testing.assert_array_equal(small[0], naive.bmu(X, W))
    np.testing.assert_array_equal(small[1], _search(X, W, True)[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lowest_two_against_numpy(dtype):
    """lowest_two alone: the lowest and second-lowest scores and the lowest one's unit, for
    every row of whole and partial tiles and every group of units (K not a multiple of 4)."""
    rng = np.random.default_rng(6)
    n, d, k = 61, 7, 23
    X = rng.normal(size=(n, d)).astype(dtype)
    aug = rng.normal(size=(k, d + 1)).astype(dtype)
    tile = cpu_fused.tile_rows(np.dtype(dtype).itemsize)
    size = cpu_fused.scratch_size(n, k, d)
    flat = np.full(size, np.nan, dtype=dtype)
    padded = size - k
    padded //= d + 3
    tiles = flat[: padded * d]
    norms = np.empty(n)
    n_tiles = cpu_fused.frame_tiles(X, np.zeros(d, dtype), dtype(1.0), False, False, tiles, tile, norms)
    assert n_tiles == -(-n // tile)
    np.testing.assert_allclose(norms, (X.astype(float) ** 2).sum(1), rtol=1e-12)
    low, second, index = (np.empty(padded, dtype=dtype) for _ in range(3))
    _lowest_two(tiles, n_tiles, aug, low, second, index)
    scores = aug[:, d].astype(float) + X.astype(float) @ aug[:, :d].T.astype(float)
    ordered = np.sort(scores, axis=1)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(low[:n], ordered[:, 0], rtol=tol, atol=tol)
    np.testing.assert_allclose(second[:n], ordered[:, 1], rtol=tol, atol=tol)
    np.testing.assert_array_equal(index[:n].astype(int), scores.argmin(1))  # no near ties here


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features", [1, 3, 8, 13, 16, 37])
def test_frame_tiles_against_numpy(dtype, n_features):
    """frame_tiles: every row's framed values ((x - centre) * factor in the dtype, bit for
    bit: the vector transposes and the one-by-one remainder), at their place in the tile
    layout, padding rows 0, and the float64 norms; non-finite values and -0.0 kept."""
    rng = np.random.default_rng(n_features)
    tile = cpu_fused.tile_rows(np.dtype(dtype).itemsize)
    for n in (1, 8, 29, 2 * tile + 5):
        X = (rng.normal(size=(n, n_features)) * 300 + 1e4).astype(dtype)
        X[0, -1] = -0.0
        if n > 8:
            X[5, 0], X[7, n_features // 2] = np.nan, -np.inf
        centre = rng.normal(size=n_features).astype(dtype) * 1e4
        factor = dtype(2.0**-7)
        for centred, scaled in ((False, False), (True, False), (True, True), (False, True)):
            framed = X.copy()
            if centred:
                framed = framed - centre
            if scaled:
                framed = framed * factor
            n_tiles = -(-n // tile)
            tiles = np.full(n_tiles * tile * n_features, 5.0, dtype=dtype)
            norms = np.empty(n)
            assert cpu_fused.frame_tiles(X, centre, factor, centred, scaled, tiles, tile, norms) == n_tiles
            padded = np.zeros((n_tiles * tile, n_features), dtype=dtype)
            padded[:n] = framed
            expected = padded.reshape(n_tiles, tile, n_features).transpose(0, 2, 1).ravel()
            np.testing.assert_array_equal(
                tiles.view(f"u{tiles.itemsize}"), expected.view(f"u{tiles.itemsize}")
            )
            np.testing.assert_allclose(norms, (framed.astype(float) ** 2).sum(1), rtol=1e-13)


def test_frame_tiles_takes_only_whole_row_vectors_per_tile():
    """A tile must be whole vectors of rows (8 float32): one vector works, 12 rows raise
    rather than write another tile's places."""
    X = np.arange(90, dtype=np.float32).reshape(10, 9)
    tiles, norms = np.zeros(2 * 8 * 9, dtype=np.float32), np.empty(10)
    assert (
        cpu_fused.frame_tiles(X, np.zeros(9, np.float32), np.float32(1), False, False, tiles, 8, norms) == 2
    )
    np.testing.assert_array_equal(tiles[: 8 * 9].reshape(9, 8), X[:8].T)
    with pytest.raises(ValueError, match="whole number of row vectors"):
        cpu_fused.frame_tiles(X, np.zeros(9, np.float32), np.float32(1), False, False, tiles, 12, norms)


def _lowest_two(tiles, n_tiles, aug, low, second, index):
    from numba import njit

    @njit
    def call(tiles, n_tiles, aug, low, second, index):
        cpu_fused.lowest_two(tiles, n_tiles, aug, low, second, index)

    call(tiles, n_tiles, aug, low, second, index)


def _bisector_rows(dtype, n_features, distance, n, seed):
    """Rows ``distance`` away from the units w and -w, along their bisector, each nudged
    toward one of them so that the score gap sweeps across the certification limit: near
    ties far from the codebook, where the float64 direct distances round by more than
    the gap (the bug hunt of round 22)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n_features)
    W = np.stack([-w, w]).astype(dtype)
    s = cpu_bmu._search_setup(W, dtype)
    side = rng.standard_normal(n_features)
    side -= side.dot(w) / w.dot(w) * w
    side /= np.linalg.norm(side)
    e = s.kappa * (s.radius * (2 * distance + s.radius) + s.up * distance**2)
    nudge = rng.uniform(-3, 3, n) * 2 * e / (4 * np.linalg.norm(w))
    X = (distance * side[None, :] + nudge[:, None] * (w / np.linalg.norm(w))[None, :]).astype(dtype)
    return X, W


def test_a_far_float64_near_tie_gets_the_same_winner_in_both_forms():
    """The hunt's row: ~1e4 codebook radii out, two units 1e-10 apart in exact arithmetic
    and 3e-8 the other way in their float64 direct distances. One form's scores certified
    the exact nearest unit, the other's sent the row to the direct distances; the limit
    now covers their rounding (cpu_bmu.rank_limit), so both re-rank it."""
    W = np.array([[-0.5387192521094623, 2.5975215534155844], [0.5387192521094623, -2.5975215534155844]])
    X = np.array([[9791.630043720987, 2030.7587466020095]])
    fused, gemm = _search(X, W, True), _search(X, W, False)
    assert fused[0][0] == gemm[0][0] and fused[1][0] == gemm[1][0]
    direct = ((X - W) ** 2).sum(1)
    assert direct[fused[0][0]] == direct.min()  # the winner is the direct distances' argmin


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_features, distance", [(2, 1e4), (3, 1e6), (5, 1e8), (16, 1e6)])
def test_far_near_ties_agree_between_the_forms(dtype, n_features, distance):
    X, W = _bisector_rows(dtype, n_features, distance, 3000, seed=n_features)
    fused, gemm = _search(X, W, True), _search(X, W, False)
    np.testing.assert_array_equal(fused[0], gemm[0])
    np.testing.assert_array_equal(fused[1], gemm[1])
    assert 0 < fused[0].sum() < len(X)  # both units win some rows: the sweep crosses the tie


@pytest.mark.parametrize("n_features, n_units", [(300, 256), (129, 300), (300, 100)])
def test_wide_float64_rows_with_many_units(n_features, n_units):
    """float64 beyond MAX_FEATURES takes the fused form with WIDE_MIN_UNITS units or more
    (cpu_fused.applies); either way the bits are the GEMM form's, also far from the origin."""
    assert cpu_fused.applies(n_features, n_units, 8) == (n_units >= cpu_fused.WIDE_MIN_UNITS)
    assert not cpu_fused.applies(n_features, n_units, 4)
    rng = np.random.default_rng(n_features + n_units)
    W = rng.normal(size=(n_units, n_features)) + 1e4
    X = np.concatenate([rng.normal(size=(70, n_features)) * 2 + 1e4, W[:5]])
    _assert_both_forms_exact(X, W)
