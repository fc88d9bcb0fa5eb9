"""The quality suite of somvq.metrics against naive, independently written references."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from somvq import metrics
from somvq.grids import Grid

from .naive import grid_distances

GRIDS = [Grid((4, 5)), Grid((3, 4), "hexagonal"), Grid((4, 4), periodic=True), Grid((9,))]


def naive_dists(grid):
    return grid_distances(grid.shape, grid.topology, grid.periodic)


def euclid(a, b):
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b)))


def naive_bmu(x, W):
    d = [euclid(x, w) for w in W]
    return int(np.argmin(d))


# ------------------------------------------------------------------------- distortion
def naive_distortion(X, W, G, radius):
    total = 0.0
    for x in X:
        c = naive_bmu(x, W)
        for k, w in enumerate(W):
            h = math.exp(-(G[c, k] ** 2) / (2 * radius**2))
            total += h * euclid(x, w) ** 2
    return total / len(X)


@pytest.mark.parametrize("grid", GRIDS, ids=repr)
@pytest.mark.parametrize("radius", [0.5, 1.0, 3.0])
def test_distortion_against_naive(grid, radius):
    rng = np.random.default_rng(0)
    X, W = rng.normal(size=(50, 3)), rng.normal(size=(grid.n_units, 3))
    got = metrics.distortion(X, W, grid, radius=radius)
    assert got == pytest.approx(naive_distortion(X, W, naive_dists(grid), radius), rel=1e-10)
    # neighbourhood "none": the mean squared quantization error
    assert metrics.distortion(X, W, grid, neighbourhood="none") == pytest.approx(
        metrics.quantization_error(X, W, squared=True)
    )


# ---------------------------------------------------------------- topographic product
def naive_topographic_product(W, G):
    K = len(W)
    DV = np.array([[euclid(a, b) for b in W] for a in W])
    total = 0.0
    for j in range(K):
        others = [u for u in range(K) if u != j]
        na = sorted(others, key=lambda u: (G[j, u], u))
        nv = sorted(others, key=lambda u: (DV[j, u], u))
        prod = 1.0
        for k in range(1, K):
            a, v = na[k - 1], nv[k - 1]
            prod *= (DV[j, a] / DV[j, v]) * (G[j, a] / G[j, v])
            total += math.log(prod ** (1.0 / (2 * k)))
    return total / (K * (K - 1))


@pytest.mark.parametrize("grid", GRIDS, ids=repr)
def test_topographic_product_against_naive(grid):
    W = np.random.default_rng(1).normal(size=(grid.n_units, 2))
    got = metrics.topographic_product(None, W, grid)
    assert got == pytest.approx(naive_topographic_product(W, naive_dists(grid)), rel=1e-9, abs=1e-12)


def test_topographic_product_known_values():
    grid = Grid((20,))
    chain = np.arange(20, dtype=float)[:, None] * 0.7 + 3.0  # perfectly ordered 1-D chain
    assert metrics.topographic_product(None, chain, grid) == pytest.approx(0.0, abs=1e-12)
    # Bauer & Pawelzik's sign: a 2-D data set on a 1-D chain (a snake folded over a 5 x 10
    # lattice: the map dimension is too small) gives P < 0; a 1-D data set on a 2-D map
    # (too large) gives P > 0; both clearly away from the ordered map's 0.
    snake = Grid((5, 10)).coordinates.copy()
    odd = snake[:, 0] % 2 == 1
    snake[odd, 1] = 9 - snake[odd, 1]
    assert metrics.topographic_product(None, snake, Grid((50,))) < -0.05
    assert metrics.topographic_product(None, np.arange(100.0)[:, None], Grid((10, 10))) > 0.05
    # a 2-D map whose codebook is its own grid (a linear embedding) is perfectly ordered too
    grid2 = Grid((5, 7))
    assert metrics.topographic_product(None, grid2.coordinates * 2.0 + 1.0, grid2) == pytest.approx(
        0.0, abs=1e-12
    )


# ---------------------------------------------------- trustworthiness / continuity
def naive_rank_measure(X, P, k, swap):
    """Venna & Kaski with ties by index; P the projected points."""
    n = len(X)
    DI = np.array([[euclid(a, b) for b in X] for a in X])
    DO = np.array([[euclid(a, b) for b in P] for a in P])
    near, far = (DI, DO) if swap else (DO, DI)
    total = 0
    for i in range(n):
        order_near = sorted((j for j in range(n) if j != i), key=lambda j: (near[i, j], j))
        order_far = sorted((j for j in range(n) if j != i), key=lambda j: (far[i, j], j))
        rank = {j: r + 1 for r, j in enumerate(order_far)}
        for j in order_near[:k]:
            total += max(rank[j] - k, 0)
    return 1 - 2.0 * total / (n * k * (2 * n - 3 * k - 1))


@pytest.mark.parametrize(
    "grid", [Grid((4, 5)), Grid((3, 4), "hexagonal"), Grid((5, 5), periodic=True)], ids=repr
)
@pytest.mark.parametrize("k", [1, 3, 7])
def test_rank_measures_against_naive_with_ties(grid, k):
    rng = np.random.default_rng(k)
    X, W = rng.normal(size=(30, 3)), rng.normal(size=(grid.n_units, 3))
    bmus = [naive_bmu(x, W) for x in X]
    P = grid.coordinates[bmus]
    # periodic map distances must wrap, and hexagonal coordinates carry a rounded sqrt(3)/2
    # (ties must be exact): use the naive grid distance table instead
    if grid.periodic[0] or grid.topology == "hexagonal":
        G = naive_dists(grid)
        P = None
    for swap, fn in [(False, metrics.trustworthiness), (True, metrics.neighbourhood_preservation)]:
        got = fn(X, W, grid, n_neighbors=k)
        if P is not None:
            ref = naive_rank_measure(X, P, k, swap)
        else:
            ref = naive_rank_measure_table(X, G, bmus, k, swap)
        assert got == pytest.approx(ref, abs=1e-12)


def naive_rank_measure_table(X, G, bmus, k, swap):
    n = len(X)
    DI = np.array([[euclid(a, b) for b in X] for a in X])
    DO = np.array([[G[bmus[a], bmus[b]] for b in range(n)] for a in range(n)])
    near, far = (DI, DO) if swap else (DO, DI)
    total = 0
    for i in range(n):
        order_near = sorted((j for j in range(n) if j != i), key=lambda j: (near[i, j], j))
        order_far = sorted((j for j in range(n) if j != i), key=lambda j: (far[i, j], j))
        rank = {j: r + 1 for r, j in enumerate(order_far)}
        total += sum(max(rank[j] - k, 0) for j in order_near[:k])
    return 1 - 2.0 * total / (n * k * (2 * n - 3 * k - 1))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rank_measures_equal_sklearn_where_there_are_no_ties(k):
    from sklearn.manifold import trustworthiness as sk_trust

    # rows mapped to units 2^i - 1 of a long chain: all map distances distinct
    n = 8
    grid = Grid((2**n,))
    rng = np.random.default_rng(k)
    X = rng.normal(size=(n, 4))
    W = np.full((grid.n_units, 4), 1e3) + rng.normal(size=(grid.n_units, 4))
    units = 2 ** np.arange(n) - 1
    W[units] = X
    P = grid.coordinates[units]
    assert metrics.trustworthiness(X, W, grid, n_neighbors=k) == pytest.approx(
        sk_trust(X, P, n_neighbors=k), abs=1e-12
    )
    assert metrics.neighbourhood_preservation(X, W, grid, n_neighbors=k) == pytest.approx(
        sk_trust(P, X, n_neighbors=k), abs=1e-12
    )


def test_rank_measures_blocks_and_sample(monkeypatch):
    grid = Grid((5, 6))
    rng = np.random.default_rng(3)
    X, W = rng.normal(size=(200, 3)), rng.normal(size=(30, 3))
    full = metrics.trustworthiness(X, W, grid, n_neighbors=4)
    monkeypatch.setattr(metrics, "_BLOCK_ROWS", 7)
    assert metrics.trustworthiness(X, W, grid, n_neighbors=4) == pytest.approx(full, abs=1e-12)
    assert metrics.trustworthiness(X, W, grid, n_neighbors=4, sample=500) == pytest.approx(full, abs=1e-12)
    est = metrics.trustworthiness(X, W, grid, n_neighbors=4, sample=100, random_state=0)
    assert abs(est - full) < 0.05
    with pytest.raises(ValueError, match="n_neighbors"):
        metrics.trustworthiness(X, W, grid, n_neighbors=100)
    with pytest.raises(ValueError, match="sample"):
        metrics.trustworthiness(X, W, grid, sample=0)
    # a float was refused only below n_samples (found by a bug hunt)
    for bad in (20.0, 1e9, True):
        with pytest.raises(ValueError, match=f"sample must be None or a positive int, got {bad!r}"):
            metrics.neighbourhood_preservation(X, W, grid, sample=bad)


def test_rank_measures_refuse_non_finite_values():
    grid = Grid((5, 6))
    rng = np.random.default_rng(3)
    X, W = rng.normal(size=(50, 3)), rng.normal(size=(30, 3))
    X[7, 1] = np.nan
    for fn in (metrics.trustworthiness, metrics.neighbourhood_preservation):
        with pytest.raises(ValueError, match=r"finite values: row 7 of X holds nan \(1 such rows: 7\)"):
            fn(X, W, grid)
    X[7, 1] = 0.0
    W[2, 0] = np.inf
    with pytest.raises(ValueError, match="unit 2 of the codebook holds inf"):
        metrics.neighbourhood_preservation(X, W, grid)


#: Every measure of the module that reads data and/or a codebook, called on (X, W, grid).
_MEASURES_OF_X = {
    "quantization_error": lambda X, W, g: metrics.quantization_error(X, W),
    "topographic_error": metrics.topographic_error,
    "two_best_matching_units": lambda X, W, g: metrics.two_best_matching_units(X, W),
    "distortion": metrics.distortion,
    "combined_error": metrics.combined_error,
    "trustworthiness": metrics.trustworthiness,
    "neighbourhood_preservation": metrics.neighbourhood_preservation,
    "quality_suite": metrics.quality_suite,
}
_MEASURES_OF_CODEBOOK = {
    **_MEASURES_OF_X,
    "umatrix": lambda X, W, g: metrics.umatrix(W, g),
    "neighbour_distance_ratio": lambda X, W, g: metrics.neighbour_distance_ratio(W, g),
    "topographic_product": lambda X, W, g: metrics.topographic_product(None, W, g),
}


@pytest.mark.parametrize("name", sorted(_MEASURES_OF_X))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_every_measure_refuses_non_finite_rows(name, bad):
    """Before: quantization_error, distortion gave nan, combined_error inf, topographic_error
    0.58 (NaN rows all matched unit 0 and 1), two_best_matching_units [0, 0] for NaN rows:
    silently. Now one check refuses them, naming the first rows."""
    grid = Grid((4, 4))
    rng = np.random.default_rng(5)
    X, W = rng.normal(size=(60, 3)), rng.normal(size=(16, 3))
    X[[4, 11, 12], 1] = bad
    with pytest.raises(
        ValueError, match=rf"{name} needs finite values: row 4 of X holds {bad} \(3 such rows: 4, 11, 12\)"
    ):
        _MEASURES_OF_X[name](X, W, grid)


@pytest.mark.parametrize("name", sorted(_MEASURES_OF_CODEBOOK))
def test_every_measure_refuses_a_non_finite_codebook(name):
    grid = Grid((4, 4))
    rng = np.random.default_rng(6)
    X, W = rng.normal(size=(60, 3)), rng.normal(size=(16, 3))
    W[9, 2], W[3, 0] = np.nan, np.inf
    with pytest.raises(
        ValueError,
        match=rf"{name} needs finite values: unit 3 of the codebook holds inf \(2 such units: 3, 9\)",
    ):
        _MEASURES_OF_CODEBOOK[name](X, W, grid)


def test_nan_rows_point_to_the_masked_scores_of_the_estimator():
    from somvq import KSOM

    rng = np.random.default_rng(13)
    X = rng.normal(size=(150, 5))
    X[rng.random(X.shape) < 0.1] = np.nan
    som = KSOM(grid=(4, 4), missing="ignore", max_missing=1.0, n_epochs=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"KSOM\(missing='ignore'\) scores them"):
        metrics.quantization_error(X, som.codebook_)
    # the estimator's masked paths are unaffected; complete rows score as before
    assert np.isfinite(som.quantization_error(X)) and 0.0 <= som.topographic_error(X) <= 1.0
    complete = X[~np.isnan(X).any(axis=1)]
    assert som.quantization_error(complete) == metrics.quantization_error(complete, som.codebook_)
    assert som.topographic_error(complete) == metrics.topographic_error(complete, som.codebook_, som.grid_)


# --------------------------------------------------------------------- combined error
def naive_combined_error(X, W, G):
    K = len(W)
    adjacent = (G > 0) & (G < 1.5)

    def shortest(a, b):
        best = {a: 0.0}
        heap = [(0.0, a)]
        while heap:
            d, u = heapq.heappop(heap)
            if u == b:
                return d
            if d > best[u]:
                continue
            for v in range(K):
                if adjacent[u, v]:
                    nd = d + euclid(W[u], W[v])
                    if nd < best.get(v, np.inf):
                        best[v] = nd
                        heapq.heappush(heap, (nd, v))
        return np.inf

    total = 0.0
    for x in X:
        d = [euclid(x, w) for w in W]
        c, c2 = sorted(range(K), key=lambda u: (d[u], u))[:2]
        total += d[c] + shortest(c, c2)
    return total / len(X)


@pytest.mark.parametrize("grid", GRIDS, ids=repr)
def test_combined_error_against_naive(grid):
    rng = np.random.default_rng(2)
    X, W = rng.normal(size=(40, 2)), rng.normal(size=(grid.n_units, 2))
    got = metrics.combined_error(X, W, grid)
    assert got == pytest.approx(naive_combined_error(X, W, naive_dists(grid)), rel=1e-10)
    assert got >= metrics.quantization_error(X, W)


def test_quality_suite_has_every_measure():
    grid = Grid((4, 4))
    rng = np.random.default_rng(0)
    X, W = rng.normal(size=(60, 2)), rng.normal(size=(16, 2))
    suite = metrics.quality_suite(X, W, grid)
    assert tuple(suite) == metrics.QUALITY_MEASURES
    assert suite["trustworthiness"] == metrics.trustworthiness(X, W, grid)
    assert all(np.isfinite(v) for v in suite.values())


@pytest.mark.parametrize("grid", [Grid((4, 5)), Grid((3, 4), "hexagonal")], ids=repr)
@pytest.mark.parametrize("k", [2, 5])
def test_rank_measures_with_ties_in_input_space(grid, k, monkeypatch):
    # small-integer rows: many equal distances and duplicate rows; the codebook's noise
    # keeps the BMUs unique. Ties in both spaces go to the lower row index.
    rng = np.random.default_rng(5)
    X = rng.integers(0, 3, size=(120, 3)).astype(float)
    W = rng.integers(0, 3, size=(grid.n_units, 3)) + rng.normal(scale=0.01, size=(grid.n_units, 3))
    bmus = [naive_bmu(x, W) for x in X]
    G = naive_dists(grid)
    for swap, fn in [(False, metrics.trustworthiness), (True, metrics.neighbourhood_preservation)]:
        ref = naive_rank_measure_table(X, G, bmus, k, swap)
        assert fn(X, W, grid, n_neighbors=k) == pytest.approx(ref, abs=1e-12)
        # the same with tiny tiles (many query blocks and column blocks) and offset data
        monkeypatch.setattr(metrics, "_RANK_TILE", (7, 13))
        assert fn(X + 1e6, W + 1e6, grid, n_neighbors=k) == pytest.approx(ref, abs=1e-12)
        monkeypatch.undo()


@pytest.mark.parametrize("k", [1, 4])
def test_rank_measures_when_distances_are_tiny_beside_the_norms(k):
    # two clusters 200 apart, rows within a cluster 1e-5 apart with ties: the GEMM tiles
    # cannot tell these distances apart, the exact comparisons must
    grid = Grid((3, 4), "hexagonal")
    rng = np.random.default_rng(7)
    side = rng.choice([-100.0, 100.0], size=(100, 1))
    X = np.hstack([side, np.zeros((100, 2))]) + rng.integers(0, 3, size=(100, 3)) * 1e-5
    W = np.hstack([rng.choice([-100.0, 100.0], size=(12, 1)), np.zeros((12, 2))])
    W = W + rng.normal(scale=1e-5, size=(12, 3))
    bmus = [naive_bmu(x, W) for x in X]
    G = naive_dists(grid)
    for swap, fn in [(False, metrics.trustworthiness), (True, metrics.neighbourhood_preservation)]:
        assert fn(X, W, grid, n_neighbors=k) == pytest.approx(
            naive_rank_measure_table(X, G, bmus, k, swap), abs=1e-12
        )


@pytest.mark.parametrize(
    "call, match",
    [
        # a codebook that does not fit the grid: IndexError, or a silent answer, before
        (
            lambda X, W: metrics.topographic_error(X, W, Grid((2, 2))),
            r"codebook has 6 units but Grid\(shape=\(2, 2\)",
        ),
        (lambda X, W: metrics.topographic_error(X, W, Grid((3, 3))), "has 9"),
        (lambda X, W: metrics.umatrix(W, Grid((2, 2))), "umatrix: the codebook has 6 units"),
        (lambda X, W: metrics.umatrix(W, Grid((3, 3))), "has 9"),
        (lambda X, W: metrics.neighbour_distance_ratio(W, Grid((7,))), "has 7"),
        (lambda X, W: metrics.distortion(X, W, Grid((7,))), "distortion: the codebook has 6"),
        (lambda X, W: metrics.quality_suite(X, W, Grid((7,))), "quality_suite: the codebook has 6"),
        (lambda X, W: metrics.trustworthiness(X, W, Grid((7,))), "has 7"),
        # empty or 1-D codebooks: NumPy's reduction / axis errors before
        (lambda X, W: metrics.quantization_error(X, W[:0]), r"2-D codebook \(K, D\) .* got shape \(0, 3\)"),
        (lambda X, W: metrics.umatrix(W[:, 0], Grid((2, 3))), r"got shape \(6,\)"),
        (lambda X, W: metrics.quantization_error(X[:, :2], W), "X has 2 features but the codebook has 3"),
        # labels beyond the map: counted silently before
        (lambda X, W: metrics.used_units([0, 9], n_units=6), r"unit indices in \[0, 6\), found 9"),
        (lambda X, W: metrics.perplexity([-1, 2], 6), "found -1"),
        (lambda X, W: metrics.perplexity([0.5, 1.0], 6), "integer unit indices, got dtype float64"),
    ],
)
def test_inconsistent_arguments_are_named(call, match):
    X = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(ValueError, match=match):
        call(X, X[:6].copy())


@pytest.mark.parametrize("radius", [0.0, -1.0, 1e-300, float("nan"), float("inf")])
def test_distortion_refuses_a_radius_the_map_would_refuse(radius):
    """0 or 1e-300 raised ZeroDivisionError; -1 was accepted (growing weights)."""
    X = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.raises(ValueError, match=r"distortion: radius=.* must be a real number >= 1e-100"):
        metrics.distortion(X, X[:4].copy(), Grid((2, 2)), radius=radius)


@pytest.mark.parametrize("scale", [1e-170, 1e-300, 1e170])
def test_umatrix_at_any_scale(scale):
    """Squares of a spread below ~1e-154 underflowed: a U-matrix of zeros (found by an
    adversarial pass). Scaling the codebook by a power of two scales the U-matrix exactly."""
    grid = Grid((3, 4))
    W = np.random.default_rng(0).normal(size=(12, 3))
    factor = 2.0 ** round(np.log2(scale))
    np.testing.assert_array_equal(metrics.umatrix(W * factor, grid) / factor, metrics.umatrix(W, grid))


def test_no_labels_use_no_units():
    """An empty list reads as float64: used_units([]) raised numpy's casting TypeError
    (found by a bug hunt); perplexity keeps its own "needs at least one label" error."""
    assert metrics.used_units([], 12) == 0
    assert metrics.used_units(np.array([], np.int64), 12) == 0
