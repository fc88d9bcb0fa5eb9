"""Issue 11, section 6: memory limits up front.

Before the fix ``check_parameters()`` accepted ``grid=(100000, 100000)``, and the command
line's summary of a 120x120 map on 60 rows took 8.4 GB: the topographic error, the U-matrix
and the neighbour/all distance ratio each built K x K matrices (the grid distances, their
adjacency, all pairwise codebook distances). Now neighbour tests are O(K), and a fit that
still needs K x K matrices is refused up front, naming the grid, when the machine lacks
the memory.
"""

import itertools
import tracemalloc

import numpy as np
import pytest

from somvq import KSOM, metrics
from somvq.grids import Grid


def _peak_bytes(function):
    tracemalloc.start()
    try:
        result = function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, result


# ------------------------------------------------------------------ naive references
def _naive_distances(grid):
    """Every pair, one at a time, straight from the coordinates and the periods."""
    coords = grid.coordinates
    periods = np.asarray(grid.shape, dtype=float)
    if grid.topology == "hexagonal":
        periods[0] *= np.sqrt(3) / 2
    n = grid.n_units
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            best = np.inf
            shifts = [(-1, 0, 1) if wrap else (0,) for wrap in grid.periodic]
            for shift in itertools.product(*shifts):
                delta = coords[j] - coords[i] + np.asarray(shift) * periods
                best = min(best, float(np.sqrt((delta**2).sum())))
            out[i, j] = best
    return out


def _grids():
    for shape in [
        (1,),
        (2,),
        (5,),
        (1, 1),
        (1, 4),
        (2, 2),
        (3, 4),
        (4, 3),
        (2, 2, 2),
        (3, 1, 2),
        (3, 3, 3),
        (2, 3, 2, 2),
    ]:
        for periodic in itertools.product((False, True), repeat=len(shape)):
            yield Grid(shape, "rectangular", periodic)
    for shape in [(2, 2), (3, 4), (4, 6), (6, 5)]:
        for periodic in itertools.product((False, True), repeat=2):
            if periodic[0] and shape[0] % 2:
                continue
            yield Grid(shape, "hexagonal", periodic)


@pytest.mark.parametrize("grid", list(_grids()), ids=repr)
def test_neighbours_in_linear_memory_equal_the_naive_adjacency(grid):
    naive = _naive_distances(grid)
    adjacency = (naive > 1e-12) & (naive < 1.5)
    np.testing.assert_allclose(grid.distances, naive, rtol=0, atol=1e-12)
    rows, cols = grid.neighbour_pairs
    np.testing.assert_array_equal(rows, np.nonzero(adjacency)[0])
    np.testing.assert_array_equal(cols, np.nonzero(adjacency)[1])
    np.testing.assert_array_equal(grid.adjacency, adjacency)
    a, b = np.divmod(np.arange(grid.n_units**2), grid.n_units)
    np.testing.assert_array_equal(grid.are_neighbours(a, b), adjacency.ravel())
    np.testing.assert_allclose(grid.pair_distances(a, b), naive.ravel(), rtol=0, atol=1e-12)
    for unit in range(grid.n_units):
        np.testing.assert_array_equal(grid.neighbours(unit), np.flatnonzero(adjacency[unit]))


def test_metrics_equal_their_dense_definitions():
    rng = np.random.default_rng(0)
    for grid in (
        Grid((5, 7)),
        Grid((4, 6), "hexagonal", True),
        Grid((3, 3, 2), periodic=(True, False, False)),
    ):
        W = rng.normal(size=(grid.n_units, 3))
        X = rng.normal(size=(80, 3))
        pair = np.sqrt(((W[:, None, :] - W[None, :, :]) ** 2).sum(-1))
        adjacency = (_naive_distances(grid) > 1e-12) & (_naive_distances(grid) < 1.5)
        off = ~np.eye(grid.n_units, dtype=bool)
        ratio = pair[adjacency].mean() / pair[off].mean()
        assert metrics.neighbour_distance_ratio(W, grid) == pytest.approx(ratio, rel=1e-12)
        umatrix = (pair * adjacency).sum(1) / adjacency.sum(1)
        np.testing.assert_allclose(metrics.umatrix(W, grid).ravel(), umatrix, rtol=1e-12)
        d = ((X[:, None, :] - W[None, :, :]) ** 2).sum(-1)
        first, second = np.argsort(d, axis=1, kind="stable")[:, :2].T
        assert metrics.topographic_error(X, W, grid) == pytest.approx(1 - adjacency[first, second].mean())


# ------------------------------------------------------------------ no K x K where avoidable
def test_map_summaries_of_a_large_map_need_no_k_by_k_memory():
    X = np.random.default_rng(0).normal(size=(60, 4))
    som = KSOM(grid=(60, 60), n_epochs=2, random_state=0).fit(X)  # separable: no K x K
    k2_bytes = 8 * som.grid_.n_units**2  # 104 MB
    for function in (
        lambda: som.topographic_error(X),
        som.umatrix,
        lambda: metrics.neighbour_distance_ratio(som.codebook_, som.grid_),
        lambda: som.grid_.neighbours(100),
    ):
        peak, _ = _peak_bytes(function)
        assert peak < k2_bytes / 8, peak  # before: 5 x 8 K^2 (topographic error), 2 x (ratio)
    assert "distances" not in som.grid_.__dict__ and "adjacency" not in som.grid_.__dict__


CASES = (
    [
        (algorithm, kind, grid)
        for algorithm in ("batch", "minibatch", "online")
        for kind in ("none", "hard", "exponential", "gaussian", "bubble", "triangle", "cut_gaussian")
        for grid in ((5, 6), (7,), (3, 3, 2))
    ]
    + [(algorithm, "gaussian", "hex") for algorithm in ("batch", "minibatch", "online")]
    + [("online", "mexican_hat", (5, 6))]
)


@pytest.mark.parametrize("algorithm, kind, shape", CASES)
def test_the_memory_estimate_knows_which_fits_build_k_by_k_matrices(algorithm, kind, shape):
    from somvq._memory import needs_grid_distances

    topology = "hexagonal" if shape == "hex" else "rectangular"
    shape = (4, 6) if shape == "hex" else shape
    X = np.random.default_rng(1).normal(size=(40, 3))
    som = KSOM(
        grid=shape,
        topology=topology,
        algorithm=algorithm,
        neighbourhood=kind,
        batch_size=16,
        n_epochs=1,
        random_state=0,
    ).fit(X)
    built = "distances" in som.grid_.__dict__
    assert built == needs_grid_distances(algorithm, kind, som.grid_), (algorithm, kind, shape, built)


@pytest.mark.parametrize(
    "params",
    [
        {"topology": "hexagonal"},
        {"algorithm": "minibatch", "neighbourhood": "exponential", "batch_size": 20},
        {"algorithm": "online", "neighbourhood": "exponential"},
        {"grid": (10, 10, 10), "neighbourhood": "hard"},
        {"grid": (45, 50), "neighbourhood": "bubble"},  # K^2 above the distinct-distance cache
    ],
)
def test_the_memory_estimate_bounds_the_real_peak(params):
    from somvq._memory import estimate_fit_bytes

    params = {"grid": (30, 30), **params}
    X = np.random.default_rng(2).normal(size=(60, 4))
    som = KSOM(n_epochs=1, random_state=0, **params)
    peak, _ = _peak_bytes(lambda: som.fit(X))
    estimate, dense = estimate_fit_bytes(
        som.algorithm, som.neighbourhood, som.grid_, n_samples=60, n_features=4
    )
    assert dense
    assert peak <= estimate, (peak, estimate)
    assert estimate < 12 * peak  # an estimate, not a blanket refusal


# ------------------------------------------------------------------ refusing up front
def test_check_parameters_refuses_a_grid_larger_than_memory():
    with pytest.raises(
        ValueError, match=r"grid=40000x40000 \(1600000000 units\) needs about .* GiB .*available here"
    ):
        KSOM(grid=(40000, 40000)).check_parameters()
    KSOM(grid=(120, 120)).check_parameters()  # separable: fine
    # beyond 2^31 - 1 units the grid itself is refused (its unit count wrapped around int64)
    with pytest.raises(ValueError, match=r"10000000000 units, more than the 2147483647"):
        KSOM(grid=(100000, 100000)).check_parameters()


def test_a_dense_fit_beyond_memory_is_refused_before_allocating(monkeypatch):
    import somvq._memory

    monkeypatch.setattr(somvq._memory, "available_memory", lambda: 32 * 2**20)
    X = np.random.default_rng(3).normal(size=(60, 4))
    som = KSOM(grid=(40, 40), topology="hexagonal", random_state=0)
    with pytest.raises(
        ValueError, match=r"grid=40x40 \(1600 units\) needs about .*K x K.*hexagonal.*0.0312 GiB"
    ):
        som.check_parameters()
    peak, _ = _peak_bytes(lambda: pytest.raises(ValueError, som.fit, X))
    assert peak < 4 * 2**20  # refused before the 20 MB distance matrix existed
    with pytest.raises(ValueError, match="grid=40x40"):
        som.partial_fit(X)
    assert not hasattr(som, "codebook_")
    # The same map with the separable gaussian needs no K x K matrix: it trains.
    KSOM(grid=(40, 40), n_epochs=1, random_state=0).fit(X)


def test_loading_a_model_does_not_need_training_memory(monkeypatch, tmp_path):
    import somvq._memory

    X = np.random.default_rng(4).normal(size=(60, 3))
    path = somvq.save(
        KSOM(grid=(30, 30), topology="hexagonal", n_epochs=1, random_state=0).fit(X), tmp_path / "m.npz"
    )
    monkeypatch.setattr(somvq._memory, "available_memory", lambda: 1 * 2**20)
    som = somvq.load(path)
    assert som.predict(X).shape == (60,)


def test_cli_refuses_a_huge_grid_as_a_usage_error(tmp_path):
    from click.testing import CliRunner

    from somvq.cli import main

    data = tmp_path / "d.csv"
    np.savetxt(data, np.random.default_rng(5).normal(size=(60, 3)), delimiter=",")
    result = CliRunner().invoke(
        main, ["fit", str(data), "--grid", "40000x40000", "-q", "-o", str(tmp_path / "m.npz")]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "grid=40000x40000" in lines[-1] and "GiB" in lines[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_the_pruned_bounds_are_counted_only_for_fits_that_prune(monkeypatch):
    # "auto" prunes k-means from 20,000 rows and 5-30 passes on; a 1-epoch "auto" fit never
    # keeps the bounds (24 + 4 G bytes a row), so its estimate must not count them.
    import somvq._memory

    monkeypatch.setattr(somvq._memory, "available_memory", lambda: 20 * 2**20)
    X = np.random.default_rng(4).normal(size=(300_000, 2))
    params = {"grid": (20, 20), "neighbourhood": "none", "n_epochs": 1, "random_state": 0}
    full = KSOM(bmu_search="full", **params).fit(X)
    auto = KSOM(bmu_search="auto", **params).fit(X)
    np.testing.assert_array_equal(full.codebook_, auto.codebook_)
    with pytest.raises(ValueError, match=r"pruned BMU search's bounds for 300000 rows.*bmu_search='full'"):
        KSOM(bmu_search="pruned", **params).fit(X)
    # Data with NaN runs the masked pass, which keeps no bounds either.
    X[0, 0] = np.nan
    KSOM(bmu_search="pruned", missing="ignore", **params).fit(X)


def test_the_memory_estimate_counts_the_ball_of_a_pruned_fit():
    """A pruned fit under a shrinking neighbourhood keeps, besides its per-row bounds,
    the ball's nearest-unit lists (K / 8 units each, and last pass's as a seed) and their
    table in lanes: O(K^2), 805 MB at 128x128 units."""
    from somvq._kernels.config import BALL_TABLE_BYTES
    from somvq._memory import estimate_fit_bytes
    from somvq.grids import Grid

    grid = Grid((128, 128))
    n = 10**6
    sizes = {
        (kind, pruned): estimate_fit_bytes("batch", kind, grid, n_samples=n, n_features=16, pruned=pruned)[0]
        for kind in ("gaussian", "none")
        for pruned in (False, True)
    }
    K = grid.n_units
    lists = K * (K // 8) * 24 + BALL_TABLE_BYTES
    assert sizes["gaussian", True] - sizes["gaussian", False] == n * 28 + lists
    assert sizes["none", True] - sizes["none", False] == n * (24 + 4 * 64)  # group bounds, no ball
