"""Best-matching units and distances are exact at any offset and scale (issue 11, section 1).

Every quantity is compared with a float64 brute force by direct differences
(tests/naive.py), on float32 data ``offset + scale * N(0, 1)`` with the offset drawn in
0 .. 1e6 and the scale in 1e-3 .. 1e6. Winners must equal the brute-force argmin except on
true near-ties (the two best squared distances closer than 1e-6 relative); quantization
error and transform must agree to 1e-5 relative. Before the fix (expanded form
``||w||^2 - 2 x.w`` in float32, no centring) these failed at offsets >= ~100.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from somvq import KSOM, algorithms, distances, metrics
from somvq._kernels import cpu_bmu

from .naive import brute_force_squared_distances, clear_rows

OFFSETS = st.one_of(st.just(0.0), st.floats(0.0, 6.0).map(lambda e: 10.0**e))
SCALES = st.floats(-3.0, 6.0).map(lambda e: 10.0**e)


def _data(seed, n, d, offset, scale, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centre = offset * np.where(np.arange(d) % 2, -1.0, 1.0)  # the same for data and codebook
    return (centre + scale * rng.normal(size=(n, d))).astype(dtype)


def _assert_winners(got, d, what):
    ok = clear_rows(d)
    ref = d.argmin(1)
    wrong = np.flatnonzero(ok & (got != ref))
    assert wrong.size == 0, (
        f"{what}: {wrong.size} of {ok.sum()} clear rows differ from the float64 argmin, "
        f"e.g. row {wrong[0]}: got {got[wrong[0]]}, exact {ref[wrong[0]]}"
    )


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 300),
    d=st.integers(1, 40),
    k=st.integers(1, 40),
    offset=OFFSETS,
    scale=SCALES,
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_kernel_and_distances_equal_brute_force(seed, n, d, k, offset, scale, dtype):
    """cpu_bmu (every path: serial, threaded blocks) and distances.squared_distances."""
    X = _data(seed, n, d, offset, scale, dtype)
    W = _data(seed + 1, k, d, offset, scale, dtype)
    ref = brute_force_squared_distances(X, W)
    for n_threads, chunk_rows in ((1, 512), (2, 37)):
        bmu = np.empty(n, dtype=np.int64)
        sq = np.empty(n)
        counts, sums = np.zeros(k), np.zeros((k, d))
        cpu_bmu.best_matching_units(
            X,
            W,
            np.einsum("ij,ij->i", W, W),
            bmu,
            sq,
            counts,
            sums,
            chunk_rows=chunk_rows,
            n_threads=n_threads,
        )
        _assert_winners(bmu, ref, f"cpu_bmu threads={n_threads}")
        np.testing.assert_allclose(sq, ref[np.arange(n), bmu], rtol=1e-12, atol=0)
        np.testing.assert_array_equal(counts, np.bincount(bmu, minlength=k))
    exact = distances.squared_distances(X, W)
    np.testing.assert_allclose(exact, ref, rtol=1e-7, atol=0)
    ref_bmu, ref_sq = distances.best_matching_units(X, W)
    _assert_winners(ref_bmu, ref, "distances.best_matching_units")


# Searches at offsets up to 1e6 x the spread: mini-batch's warning about such data is not under test.
@pytest.mark.filterwarnings("ignore:mini-batch KSOM smooths its counts")
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(20, 200),
    d=st.integers(1, 16),
    offset=OFFSETS,
    scale=SCALES,
    algorithm=st.sampled_from(["batch", "minibatch", "online"]),
)
def test_estimator_against_brute_force(seed, n, d, offset, scale, algorithm):
    """predict, transform, quantization_error, topographic_error (its two best units) and
    the fit's labels_, for batch, mini-batch and online fits."""
    X = _data(seed, n, d, offset, scale)
    som = KSOM(grid=(3, 4), algorithm=algorithm, n_epochs=2, batch_size=32, random_state=seed % 1000).fit(X)
    W = som.codebook_
    ref = brute_force_squared_distances(X, W)
    _assert_winners(som.labels_, ref, f"{algorithm} labels_")
    _assert_winners(som.predict(X), ref, "predict")
    np.testing.assert_allclose(som.transform(X), np.sqrt(ref), rtol=1e-5, atol=0)
    qe = np.sqrt(ref.min(1)).mean()
    assert som.quantization_error(X) == pytest.approx(qe, rel=1e-5, abs=0)
    assert som.quantization_error(X, squared=True) == pytest.approx(ref.min(1).mean(), rel=1e-5, abs=0)
    two = metrics.two_best_matching_units(X, W)
    order = np.argsort(ref, axis=1, kind="stable")[:, :2]
    ok = clear_rows(ref, places=2)
    np.testing.assert_array_equal(two[ok], order[ok])
    if ok.all():
        adjacent = som.grid_.adjacency[order[:, 0], order[:, 1]]
        assert som.topographic_error(X) == pytest.approx(1.0 - adjacent.mean(), abs=1e-12)


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 200),
    d=st.integers(1, 32),
    k=st.integers(3, 40),
    offset=OFFSETS,
    scale=SCALES,
    outlier=st.floats(2.0, 6.0).map(lambda e: 10.0**e),
)
def test_rows_near_a_tight_cluster_beside_an_outlier_unit(seed, n, d, k, offset, scale, outlier):
    """The case the error bound and the re-rank exist for: one unit ``outlier`` times
    further out than the others makes the expanded form's rounding (~u R^2) far larger
    than the gaps between the clustered units that the rows sit among; without the re-rank
    (kappa = 0) the float32 winners are wrong."""
    rng = np.random.default_rng(seed)
    W = _data(seed + 1, k, d, offset, scale)
    W[0] = (W[0].astype(np.float64) + outlier * scale * rng.normal(size=d)).astype(np.float32)
    X = W[rng.integers(1, k, n)].astype(np.float64) + 0.3 * scale * rng.normal(size=(n, d))
    X = X.astype(np.float32)
    ref = brute_force_squared_distances(X, W)
    bmu = np.empty(n, dtype=np.int64)
    sq = np.empty(n)
    cpu_bmu.best_matching_units(X, W, None, bmu, sq, chunk_rows=64, n_threads=1)
    _assert_winners(bmu, ref, "cpu_bmu")
    np.testing.assert_allclose(sq, ref[np.arange(n), bmu], rtol=1e-12, atol=0)
    _assert_winners(distances.best_matching_units(X, W)[0], ref, "distances")
    np.testing.assert_allclose(distances.squared_distances(X, W), ref, rtol=1e-7, atol=0)


def test_issue_example_offset_1000():
    """The issue's example: 28-39% of predict() were wrong, QE 2.23 against 2.29 exact."""
    X = (1000 + np.random.default_rng(0).normal(size=(5000, 8))).astype(np.float32)
    som = KSOM(grid=(4, 4), random_state=0).fit(X)
    ref = brute_force_squared_distances(X, som.codebook_)
    _assert_winners(som.predict(X), ref, "predict")
    _assert_winners(som.labels_, ref, "labels_")
    assert som.quantization_error(X) == pytest.approx(np.sqrt(ref.min(1)).mean(), rel=1e-6)
    np.testing.assert_allclose(som.transform(X), np.sqrt(ref), rtol=1e-6)


def test_digits_plus_1000(digits):
    """Raw pixels shifted by 1000 (18% of the winners were wrong)."""
    X = (np.asarray(digits, dtype=np.float64) + 1000).astype(np.float32)
    som = KSOM(grid=(8, 8), n_epochs=3, random_state=0).fit(X)
    ref = brute_force_squared_distances(X, som.codebook_)
    _assert_winners(som.predict(X), ref, "predict")
    _assert_winners(som.labels_, ref, "labels_")
    assert som.quantization_error(X) == pytest.approx(np.sqrt(ref.min(1)).mean(), rel=1e-6)
    # The same map shifted back: the winners do not move with the offset.
    moved = KSOM(grid=(8, 8), random_state=0)
    moved.__dict__.update(som.__dict__)
    moved.codebook_ = (som.codebook_.astype(np.float64) - 1000).astype(np.float32)
    X0 = (X.astype(np.float64) - 1000).astype(np.float32)
    ref0 = brute_force_squared_distances(X0, moved.codebook_)
    _assert_winners(moved.predict(X0), ref0, "predict at the origin")


@pytest.mark.parametrize("magnitude", [1e20, 1e30, 1e-20])
def test_values_whose_squares_leave_float32(magnitude):
    """float32 data ~1e20: squared norms overflow float32 (QE was nan and every BMU 0);
    ~1e-20: they underflow. Both now give the float64 answer."""
    X = (magnitude * np.random.default_rng(3).normal(size=(400, 4))).astype(np.float32)
    som = KSOM(grid=(3, 3), random_state=0).fit(X)
    assert np.isfinite(som.codebook_).all()
    ref = brute_force_squared_distances(X, som.codebook_)
    _assert_winners(som.predict(X), ref, "predict")
    assert len(np.unique(som.predict(X))) > 1
    qe = som.quantization_error(X)
    assert np.isfinite(qe)
    assert qe == pytest.approx(np.sqrt(ref.min(1)).mean(), rel=1e-6)
    np.testing.assert_allclose(som.transform(X), np.sqrt(ref), rtol=1e-6)


def test_rows_far_from_the_codebook_and_exact_ties():
    """Rows 1e7 codebook radii away (their scores may overflow: all units compared
    directly), duplicated units (exact ties: lowest index) and a single-unit codebook."""
    rng = np.random.default_rng(5)
    W = rng.normal(size=(6, 3)).astype(np.float32)
    W[4] = W[1]
    X = np.concatenate([rng.normal(size=(50, 3)), 1e7 * rng.normal(size=(5, 3)), W[[1, 4]]]).astype(
        np.float32
    )
    ref = brute_force_squared_distances(X, W)
    bmu = np.empty(X.shape[0], dtype=np.int64)
    sq = np.empty(X.shape[0])
    cpu_bmu.best_matching_units(X, W, None, bmu, sq)
    np.testing.assert_array_equal(bmu, ref.argmin(1))  # argmin: lowest index on ties
    assert not (bmu == 4).any()
    np.testing.assert_allclose(sq, ref.min(1), rtol=1e-12)
    one = np.empty(X.shape[0], dtype=np.int64)
    cpu_bmu.best_matching_units(X, W[:1], None, one, sq)
    assert (one == 0).all()
    np.testing.assert_allclose(sq, ref[:, 0], rtol=1e-12)


def test_reference_frame_keeps_centred_data_in_the_plain_frame():
    """Near the origin the kernel keeps the plain expanded form (the same bits as before);
    off the origin it centres; out of the dtype's range it scales by a power of two."""
    rng = np.random.default_rng(0)
    W = rng.normal(size=(20, 5)).astype(np.float32)
    assert distances.reference_frame(W).identity
    frame = distances.reference_frame(W + 100)
    assert frame.centre is not None and frame.scale == 1.0
    for factor in (1e20, 1e-20):
        scaled = W * np.float32(factor)
        frame = distances.reference_frame(scaled)
        radius = np.sqrt((scaled.astype(np.float64) ** 2).sum(1).max())
        assert frame.centre is None and 1.0 <= radius * frame.scale < 2.0
        assert np.log2(frame.scale) == int(np.log2(frame.scale))


def _compiled_frame(W):
    """(centre or None, scale, radius, finite) of ``cpu_bmu.prepare_frame``."""
    K, D = W.shape
    centre, aug, frame = np.empty(D, W.dtype), np.empty((K, D + 1), W.dtype), np.empty(4)
    cpu_bmu.prepare_frame(W, np.empty(D), centre, aug, distances._unscaled_limit(W.dtype), frame)
    return (
        centre if frame[cpu_bmu.CENTRED] else None,
        frame[cpu_bmu.SCALE],
        frame[cpu_bmu.RADIUS],
        bool(frame[cpu_bmu.FINITE]),
    )


_SPREADS = [1e-30, 1e-12, 1.0, 1e12, 1e30]


@pytest.mark.parametrize("offset", [0.0, 3.0, 1e4, 1e30])
@pytest.mark.parametrize(
    "dtype, spread",
    [(np.float32, s) for s in _SPREADS] + [(np.float64, s) for s in _SPREADS + [1e-200, 1e160, 1e300]],
)
def test_the_compiled_frame_is_reference_frame(dtype, offset, spread):
    """Every CPU search takes its frame from ``cpu_bmu.prepare_frame``: the centre and the
    power-of-two scale of :func:`somvq.distances.reference_frame`, including float64
    codebooks whose squared norms overflow (beyond ~1e154: the scale then comes from
    ``sqrt(D) max |w - c|``), and ``radius`` the largest norm of a unit in the frame."""
    rng = np.random.default_rng(5)
    W = (offset + spread * rng.normal(size=(30, 7))).astype(dtype)
    centre, scale, radius, finite = _compiled_frame(W)
    ref = distances.reference_frame(W)
    assert finite
    assert (centre is None) == (ref.centre is None)
    if centre is not None:
        np.testing.assert_allclose(centre, ref.centre, rtol=4 * np.finfo(dtype).eps)
    assert scale == ref.scale
    shift = np.zeros(7) if centre is None else centre.astype(np.float64)
    scaled = (W.astype(np.float64) - shift) * scale
    assert radius == pytest.approx(np.sqrt((scaled**2).sum(1).max()), rel=1e-6)
    limit = distances._unscaled_limit(dtype)
    assert radius == 0.0 or 1.0 / limit <= radius <= limit  # squares far from the dtype's ends


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_the_compiled_frame_of_a_non_finite_codebook(bad):
    W = np.ones((4, 3))
    W[2, 1] = bad
    assert not _compiled_frame(W)[3]


def test_winners_beyond_the_float64_squares():
    """A float64 codebook spread over 1e200: squared distances overflow, but the search
    ranks in its power-of-two frame, so the winners are the brute force's of the same data
    scaled by 2^-600 (exact), on every path; the distances are the float64 overflow."""
    rng = np.random.default_rng(3)
    W = rng.normal(size=(40, 6)) * 1e200
    X = W[rng.integers(0, 40, 500)] * (1.0 + 1e-3 * rng.normal(size=(500, 6)))
    small = 2.0**-600
    expected = brute_force_squared_distances(X * small, W * small).argmin(1)
    for n_threads, chunk_rows in ((1, 512), (2, 37)):
        bmu, sq = np.empty(500, dtype=np.int64), np.empty(500)
        cpu_bmu.best_matching_units(X, W, None, bmu, sq, chunk_rows=chunk_rows, n_threads=n_threads)
        np.testing.assert_array_equal(bmu, expected)
        assert np.isposinf(sq).all()
    # the pruned search in the same frame (a first pass, then a move)
    from somvq._kernels import cpu_pruned

    bounds = cpu_pruned.Bounds(500, n_groups=4)
    cpu_pruned.pruned_search(X, W, bounds)
    np.testing.assert_array_equal(bounds.bmu, expected)
    moved = W * (1.0 + 1e-9 * rng.normal(size=W.shape))
    sq = cpu_pruned.pruned_search(X, moved, bounds)
    full = np.empty(500, dtype=np.int64)
    cpu_bmu.best_matching_units(X, moved, None, full)
    np.testing.assert_array_equal(bounds.bmu, full)
    assert np.isposinf(sq).all()  # (bounds are float32 distances: here they prune nothing)


@pytest.mark.parametrize("offset", [0.0, 1e4, 1e8])
def test_neighbour_distance_ratio_far_from_the_origin(offset):
    """Pairwise unit distances (the uncentred float64 expanded form was off by ~100% at 1e8)."""
    W = _data(9, 12, 4, offset, 1.0, np.float64)
    grid = KSOM(grid=(3, 4)).fit(W).grid_
    pair = np.sqrt(brute_force_squared_distances(W, W))
    off = ~np.eye(12, dtype=bool)
    expected = pair[grid.adjacency].mean() / pair[off].mean()
    assert metrics.neighbour_distance_ratio(W, grid) == pytest.approx(expected, rel=1e-9)


def test_dask_far_from_the_origin():
    """DaskKSOM's statistics and inference go through the same exact search and distances."""
    da = pytest.importorskip("dask.array")
    from somvq.integrations.dask import DaskKSOM

    X = _data(11, 600, 6, 1000.0, 1.0)
    som = DaskKSOM(grid=(3, 4), n_epochs=2, random_state=0).fit(da.from_array(X, chunks=(200, 6)))
    ref = brute_force_squared_distances(X, som.codebook_)
    Xd = da.from_array(X, chunks=(150, 6))
    _assert_winners(np.asarray(som.predict(Xd)), ref, "dask predict")
    np.testing.assert_allclose(np.asarray(som.transform(Xd)), np.sqrt(ref), rtol=1e-6)
    assert som.quantization_error(Xd) == pytest.approx(np.sqrt(ref.min(1)).mean(), rel=1e-6)


def test_non_finite_codebook_does_not_raise_in_the_search():
    """A diverged codebook (nan/inf) is reported by the fit's own check, naming the cause;
    the search itself returns nan distances without raising or warning."""
    X = np.random.default_rng(0).normal(size=(50, 3))
    for bad in (np.nan, np.inf):
        W = np.random.default_rng(1).normal(size=(4, 3))
        W[2, 1] = bad
        bmu = np.empty(50, dtype=np.int64)
        sq = np.empty(50)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            cpu_bmu.best_matching_units(X, W, None, bmu, sq)
        assert np.isnan(sq).all() and ((bmu >= 0) & (bmu < 4)).all()


# ------------------------------------------------------------------ tiny float64 data
@pytest.mark.parametrize("algorithm", ["batch", "minibatch", "online"])
@pytest.mark.parametrize("case", ["dense", "holes", "layers with holes"])
def test_fits_below_1e_154_are_the_same_map_scaled(algorithm, case):
    """Found by adversarial passes: with every value below ~1e-162 the squared norms of the
    frame underflowed to 0 (radius 0, scale 1), every distance was 0 and every row went to
    unit 0. Layers with holes rank the units by direct distances summed layer by layer,
    with no frame: they underflowed too (batch, mini-batch, online and predict). Scaled by
    a power of two, a fit is now the very same map, bit for bit."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    if case != "dense":
        X[::5, 1] = np.nan
    W0 = np.nan_to_num(X[:9])
    params = dict(grid=(3, 3), n_epochs=2, random_state=0, algorithm=algorithm, batch_size=8)
    params.update(missing="ignore", max_missing=1.0)
    if case == "layers with holes":
        params.update(layers=[[0], [1, 2]])
    reference = KSOM(init=W0, **params).fit(X)
    for scale in (2.0**-600, 2.0**-1000):
        som = KSOM(init=W0 * scale, **params).fit(X * scale)
        np.testing.assert_array_equal(som.codebook_ / scale, reference.codebook_)
        np.testing.assert_array_equal(som.predict(X * scale), reference.predict(X))
        assert np.unique(som.labels_).size > 1


@pytest.mark.parametrize("scale_exponent", [-300, -600, -1000])
def test_measures_below_1e_154_are_the_measures_scaled(scale_exponent):
    """Found with the fits above: the fit of data at 1e-165 was the right map, but its
    quantization error, topographic error, transform and the other measures on distances
    came out 0 (every squared distance underflowed: every distance 0, every pair of best
    units a tie). Computed on the values scaled by a power of two, each is now the
    measure of the same data at a normal magnitude times the scale to its degree, bit
    for bit (2^-300: the squares are still normal numbers, the case where nothing underflowed)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 3))
    reference = KSOM(grid=(4, 4), n_epochs=3, random_state=0).fit(X)
    W = reference.codebook_
    grid = reference.grid_
    scale = 2.0**scale_exponent
    Xs, Ws = X * scale, W * scale
    som = KSOM(grid=(4, 4), n_epochs=3, random_state=0).fit(Xs)
    np.testing.assert_array_equal(som.codebook_ / scale, W)  # (the fit, as above)

    def same(got, expected, degree):
        # scaled by 2^(e * degree): the same bits unless that leaves float64's range
        if np.all(np.abs(expected) * scale**degree >= np.finfo(float).tiny):
            np.testing.assert_array_equal(got, expected * scale**degree)
        else:  # a squared measure below 1e-308: the correctly scaled (subnormal, or 0) value
            np.testing.assert_allclose(got, expected * scale**degree, rtol=1e-12, atol=5e-324)

    same(som.quantization_error(Xs), reference.quantization_error(X), 1)
    same(som.quantization_error(Xs, squared=True), reference.quantization_error(X, squared=True), 2)
    same(som.topographic_error(Xs), reference.topographic_error(X), 0)
    assert reference.topographic_error(X) > 0  # (so a tie at every row would show)
    same(som.transform(Xs), reference.transform(X), 1)
    same(metrics.two_best_matching_units(Xs, Ws), metrics.two_best_matching_units(X, W), 0)
    same(metrics.distortion(Xs, Ws, grid), metrics.distortion(X, W, grid), 2)
    same(metrics.combined_error(Xs, Ws, grid), metrics.combined_error(X, W, grid), 1)
    same(metrics.neighbour_distance_ratio(Ws, grid), metrics.neighbour_distance_ratio(W, grid), 0)
    # (a sum of logarithms of ratios: log(a s) - log(b s) may differ from log a - log b by an ulp)
    np.testing.assert_allclose(
        metrics.topographic_product(None, Ws, grid), metrics.topographic_product(None, W, grid), rtol=1e-12
    )
    same(metrics.umatrix(Ws, grid), metrics.umatrix(W, grid), 1)
    same(
        metrics.trustworthiness(Xs, Ws, grid, n_neighbors=5),
        metrics.trustworthiness(X, W, grid, n_neighbors=5),
        0,
    )

    # rows with holes: the masked distances of a missing="ignore" map
    X[::4, 1] = np.nan
    holes = KSOM(grid=(4, 4), n_epochs=3, random_state=0, missing="ignore").fit(X)
    holes_s = KSOM(grid=(4, 4), n_epochs=3, random_state=0, missing="ignore").fit(X * scale)
    np.testing.assert_array_equal(holes_s.codebook_ / scale, holes.codebook_)
    same(holes_s.quantization_error(X * scale), holes.quantization_error(X), 1)
    same(holes_s.quantization_error(X * scale, squared=True), holes.quantization_error(X, squared=True), 2)
    same(holes_s.topographic_error(X * scale), holes.topographic_error(X), 0)
    same(holes_s.transform(X * scale), holes.transform(X), 1)


def test_map_analysis_and_report_below_1e_154():
    """The U-matrix clusters of a map of data at 2^-600 (every edge weight was 0: a tie,
    so clusters by unit index) and the report's per-unit mean distance (was 0) are those
    of the same data at a normal magnitude (the distances scaled back)."""
    from somvq import reporting
    from somvq.analysis import cluster_units

    X = np.random.default_rng(4).normal(size=(120, 3))
    X[:40] += 6.0
    scale = 2.0**-600
    som = KSOM(grid=(5, 5), n_epochs=5, random_state=0).fit(X)
    tiny = KSOM(grid=(5, 5), n_epochs=5, random_state=0).fit(X * scale)
    np.testing.assert_array_equal(tiny.codebook_ / scale, som.codebook_)
    for n_clusters in (2, 4):
        np.testing.assert_array_equal(
            cluster_units(tiny, n_clusters, method="umatrix"),
            cluster_units(som, n_clusters, method="umatrix"),
        )
    got = reporting.unit_table(tiny, X * scale)["qe"]
    expected = reporting.unit_table(som, X)["qe"]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(got[~np.isnan(got)], expected[~np.isnan(expected)] * scale)


@pytest.mark.parametrize("algorithm", ["batch", "minibatch", "online"])
def test_subnormal_data_trains(algorithm):
    """Data below 2^-1022 (subnormal): the power of two that brings it to [1, 2) is beyond
    float64, so the online pass raised OverflowError ("math range error") and a batch fit
    trained another map. The scale now stops at 2^1023. Such values carry ~14 bits here, so
    the map is the one of the same values at a normal magnitude up to those bits (mini-batch's
    EMA sums, subnormal themselves, lose a few more at every step)."""
    rng = np.random.default_rng(0)
    tiny = rng.normal(size=(60, 3)) * 2.0**-1060  # rounded to multiples of 2^-1074
    X = np.ldexp(tiny, 1060)  # the same values, exactly, at a normal magnitude
    params = dict(grid=(3, 3), n_epochs=2, random_state=0, algorithm=algorithm, batch_size=8)
    reference = KSOM(init=X[:9], **params).fit(X)
    som = KSOM(init=tiny[:9], **params).fit(tiny)
    if algorithm == "minibatch":  # its map drifts by 0.06 here (a fit of unit-variance data)
        np.testing.assert_allclose(np.ldexp(som.codebook_, 1060), reference.codebook_, atol=0.2)
        return
    np.testing.assert_array_equal(som.labels_, reference.labels_)
    np.testing.assert_allclose(np.ldexp(som.codebook_, 1060), reference.codebook_, atol=2e-3)


def test_power_of_two_scale():
    """One definition for Python and the kernels: brings a magnitude into [1, 2) exactly;
    a subnormal one as far as float64 allows."""
    values = [1.0, 1.5, np.nextafter(2.0, 0.0), 3.0, 1e300, np.finfo(float).max, 2.0**-700]
    values += [np.finfo(float).tiny, 1e-320, 5e-324]
    for m in values:
        s = distances.power_of_two_scale(m)
        assert s == cpu_bmu.power_of_two_scale(m)
        assert np.frexp(s)[0] == 0.5  # a power of two
        if m >= np.finfo(float).tiny:
            assert 1.0 <= m * s < 2.0
        else:
            assert s == 2.0**1023
        e = distances.unscale_exponent(s)
        assert e == cpu_bmu.unscale_exponent(s)
        if 2.0**-500 < s < 2.0**500:  # where s * s is finite and normal
            assert np.ldexp(3.0, e) == 3.0 / (s * s)


def test_the_frame_of_a_codebook_below_1e_162():
    W = np.random.default_rng(1).normal(size=(20, 4)) * 2.0**-700
    frame = distances.reference_frame(W)
    assert frame.scale == 2.0**698  # the radius (~2^-698) brought to [1, 2)
    X = W[np.random.default_rng(2).integers(0, 20, 50)] + 2.0**-706
    np.testing.assert_array_equal(
        algorithms.assign(X, W)[0], brute_force_squared_distances(X * 2.0**700, W * 2.0**700).argmin(1)
    )


def test_the_default_initialisation_below_1e_154():
    """init="random" drew the units around X.std(), which underflowed to 0 below ~1e-154:
    every unit started at the mean (found by an adversarial pass)."""
    X = np.random.default_rng(0).normal(size=(60, 3))
    reference = KSOM(grid=(3, 3), n_epochs=2, random_state=0).fit(X)
    for scale in (2.0**-600, 2.0**-1000):
        som = KSOM(grid=(3, 3), n_epochs=2, random_state=0).fit(X * scale)
        np.testing.assert_array_equal(som.codebook_ / scale, reference.codebook_)


@pytest.mark.parametrize("offset", [0.0, 1e4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_two_candidates_within_the_bound_are_compared_directly(offset, dtype):
    """Pairs of units a few ulps apart (and one exact duplicate), far from every other unit:
    their scores lie within the error bound of each other, so each row has exactly two
    candidates (``rank_block``'s pair path: the lowest score's first index and the index
    sum less it, no scan). The winner must be the float64 argmin whichever of the two has
    the lower index or the lower score, the lower index on an exact tie."""
    rng = np.random.default_rng(11)
    d, k = 16, 40
    W = (offset + 50.0 * rng.normal(size=(k, d))).astype(dtype)
    pairs = [(3, 17), (17, 3), (0, 39), (25, 24), (8, 9)]
    rows = []
    for p, (a, b) in enumerate(pairs):
        x = (W[a].astype(np.float64) + 0.3 * rng.normal(size=d)).astype(dtype)
        W[b] = W[a]
        if p < len(pairs) - 1:  # the last pair: an exact tie
            toward = p % 2 == 0  # b a few ulps nearer to x, or farther
            direction = np.sign(x[0] - W[a, 0]) * (1.0 if toward else -1.0)
            # float64: 64 ulps, so the float64 brute force can tell the two apart
            ulps = 1 if dtype == np.float32 else 64
            W[b, 0] = W[a, 0] + direction * ulps * np.spacing(W[a, 0])
        rows.append(x)
    X = np.array(rows, dtype=dtype)
    ref = brute_force_squared_distances(X, W)
    bmu = np.empty(X.shape[0], dtype=np.int64)
    sq = np.empty(X.shape[0])
    cpu_bmu.best_matching_units(X, W, None, bmu, sq)
    np.testing.assert_array_equal(bmu, ref.argmin(1))  # argmin: lowest index on ties
    np.testing.assert_allclose(sq, ref.min(1), rtol=1e-12)
    assert {int(b) for b in bmu} & {17, 24}, "both orders of the pair are exercised"
