"""Exact pruned BMU search (bmu_search="pruned"): the same bits as the full search.

References: the full search (``bmu_search="full"``, the path every other test checks) and,
independently, a direct float64 NumPy argmin written here (lowest index on ties).
"""

import threading
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from somvq import KSOM, load, save
from somvq._kernels import cpu_bmu, cpu_pruned
from somvq.parameters import PRUNED_MIN_PASSES, PRUNED_MIN_ROWS, pruned_min_passes

from .threads import IdlePool, runtime_errors_in_thread, wait_for


def direct(X, W):
    """Squared distances in float64, (n, K), written out plainly."""
    X64 = X.astype(np.float64)
    W64 = W.astype(np.float64)
    return ((X64[:, None, :] - W64[None, :, :]) ** 2).sum(-1)


def gaussian_mixture(rng, n, d, k=12, offset=0.0, dtype=np.float64):
    centres = rng.normal(size=(k, d)) * 4.0
    return (centres[rng.integers(0, k, n)] + rng.normal(size=(n, d)) + offset).astype(dtype)


def assert_group_bounds(bounds, d):
    """Each group's bound is below the (direct float64) distance to every unit of the group
    but the winner."""
    n = d.shape[0]
    other = d.copy()
    other[np.arange(n), bounds.bmu] = np.inf
    for g in range(bounds.lower.shape[1]):
        units = np.flatnonzero(bounds.group_of == g)
        assert units.size and set(units) == set(bounds.members[bounds.starts[g] : bounds.starts[g + 1]])
        nearest = np.sqrt(other[:, units].min(axis=1))
        assert np.all(bounds.lower[:, g] <= nearest * (1 + 1e-12)), g


def fit_both(X, **params):
    fits = {}
    for mode in ("full", "pruned"):
        errors = []
        model = KSOM(bmu_search=mode, **params).fit(
            X, callback=lambda e, n, mse, cb, out=errors: out.append(mse)
        )
        fits[mode] = (model, errors)
    return fits


def assert_same_fit(fits):
    (full, err_full), (pruned, err_pruned) = fits["full"], fits["pruned"]
    np.testing.assert_array_equal(full.labels_, pruned.labels_)
    assert full.codebook_.tobytes() == pruned.codebook_.tobytes()
    assert err_full == err_pruned  # every epoch's error, bit for bit
    assert full.n_steps_ == pruned.n_steps_


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0.0, 1e4])
@pytest.mark.parametrize("neighbourhood", ["none", "gaussian", "bubble"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_identical_gaussian_mixture(dtype, offset, neighbourhood, seed):
    rng = np.random.default_rng(seed)
    X = gaussian_mixture(rng, 3000, 6, offset=offset, dtype=dtype)
    fits = fit_both(X, grid=(5, 6), neighbourhood=neighbourhood, n_epochs=8, random_state=seed, init="sample")
    assert_same_fit(fits)


@pytest.mark.parametrize(
    "grid_params",
    [
        {"grid": (20,), "grid_dim": 1},
        {"grid": (6, 7), "topology": "hexagonal"},
        {"grid": (3, 3, 4), "grid_dim": 3},
        {"grid": (8, 8), "periodic": True},
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_identical_digits_and_grids(digits, grid_params, dtype):
    X = digits.astype(dtype)
    for neighbourhood in ("none", "gaussian"):
        fits = fit_both(X, neighbourhood=neighbourhood, n_epochs=6, random_state=3, **grid_params)
        assert_same_fit(fits)


def test_pruning_happens_and_skipped_rows_are_right():
    """The bounds do skip rows late in a k-means fit (else the equality above is vacuous),
    and every skipped row's winner is the direct float64 argmin."""
    rng = np.random.default_rng(5)
    X = gaussian_mixture(rng, 4000, 5, k=8)
    W = X[rng.choice(len(X), 16, replace=False)].copy()
    bounds = cpu_pruned.Bounds(len(X))
    searched = []
    for _ in range(12):
        counts = np.zeros(16)
        sums = np.zeros((16, 5))
        sq = cpu_pruned.pruned_search(X, W, bounds, counts=counts, sums=sums).copy()
        searched.append(bounds.searched)
        d = direct(X, W)
        np.testing.assert_array_equal(bounds.bmu, np.argmin(d, axis=1))
        np.testing.assert_allclose(sq, d[np.arange(len(X)), bounds.bmu], rtol=1e-12)
        assert_group_bounds(bounds, d)
        # the k-means update written here
        for k in range(16):
            if counts[k]:
                W[k] = sums[k] / counts[k]
    assert searched[0] == len(X)
    assert searched[-1] < len(X) // 10, searched


def _compare_to_full(X, codebooks, n_groups=None, recheck=None, ball=None):
    """Pruned search against the full one on each codebook in turn; returns the rows
    re-checked by direct distances (without the product) over the passes."""
    bounds = cpu_pruned.Bounds(len(X), n_groups, recheck, ball)
    rechecked = 0
    for W in codebooks:
        assert_pass_equals_full(X, W, bounds)
        rechecked += bounds.rechecked
    return rechecked


def assert_pass_equals_full(X, W, bounds, unit=1.0):
    """One pass of the pruned search (``bounds`` updated) against the full search: the
    same winners, distances, counts and sums; the winners the NumPy argmin of the data
    divided by the power of two ``unit``; the bounds conservative (checked when ``unit``
    is 1: below the distance to every other unit, float64 direct, within rounding)."""
    K, D = W.shape
    counts_p, sums_p = np.zeros(K), np.zeros((K, D))
    sq_p = cpu_pruned.pruned_search(X, W, bounds, counts=counts_p, sums=sums_p).copy()
    bmu_f = np.empty(len(X), dtype=np.int64)
    sq_f = np.empty(len(X))
    counts_f, sums_f = np.zeros(K), np.zeros((K, D))
    cpu_bmu.best_matching_units(X, W, None, bmu_f, sq_f, counts=counts_f, sums=sums_f)
    np.testing.assert_array_equal(bounds.bmu, bmu_f)
    assert sq_p.tobytes() == sq_f.tobytes()
    assert counts_p.tobytes() == counts_f.tobytes()
    assert sums_p.tobytes() == sums_f.tobytes()
    d = direct(X / unit, W / unit)
    np.testing.assert_array_equal(bmu_f, np.argmin(d, axis=1))
    if unit == 1.0:
        assert_group_bounds(bounds, d)


def test_ties_and_duplicate_units():
    """Duplicate units and rows exactly between two units: lowest index, never skipped wrongly."""
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.0], [2.0, 2.0], [0.5, 0.0]] * 50)
    W0 = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 2.0]])
    W1 = W0.copy()  # no move: every certain row is skipped
    W2 = W0 + np.array([[0.0, 0.0], [1e-13, 0.0], [0.0, 0.0], [0.0, 0.0]])  # a tiny move breaks a tie
    W3 = W2.copy()
    W3[2] = [0.5, 0.0]  # a unit jumps onto rows
    for n_groups in (1, 2, 4):
        for recheck in (0.0, 1.0):  # rows re-checked by direct distances, or by the product
            _compare_to_full(X, [W0, W1, W2, W3, W3], n_groups, recheck)


def near_tie_data(offset, copies):
    """float32 rows around 6 centres at ``offset`` and ``copies`` units at each centre,
    closer to each other than float32 rounding; the units, and the units moved by 1e-6."""
    rng = np.random.default_rng(2)
    base = rng.normal(size=(6, 16)) + offset
    W = np.repeat(base, copies, axis=0)
    W += rng.normal(size=W.shape) * 1e-5 * (offset + 1)
    X = (base[rng.integers(0, 6, 3000)] + rng.normal(size=(3000, 16)) * 1e-2).astype(np.float32)
    return X, W.astype(np.float32), (W.astype(np.float32).astype(np.float64) + 1e-6).astype(np.float32)


@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_near_ties_float32(offset):
    """Units closer to each other than float32 GEMM rounding: the scores alone would
    overstate the runner-up's distance; the error bound keeps the lower bound below it."""
    X, W, moved = near_tie_data(offset, 3)
    _compare_to_full(X, [W, W, moved])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0.0, 1e3, 1e6])
def test_moving_codebooks_against_full(dtype, offset):
    rng = np.random.default_rng(11)
    X = gaussian_mixture(rng, 2500, 7, offset=offset, dtype=dtype)
    W = X[rng.choice(len(X), 20, replace=False)].astype(np.float64)
    codebooks = []
    for step in range(10):
        W = W + rng.normal(size=W.shape) * (0.5 / (step + 1)) * (rng.random((20, 1)) < 0.5)
        codebooks.append(W.astype(dtype))
    codebooks.append(codebooks[-1].copy())
    _compare_to_full(X, codebooks)
    for n_groups in (4, 20):
        assert _compare_to_full(X, codebooks, n_groups, recheck=1.0) > 0  # the direct path ran
        _compare_to_full(X, codebooks, n_groups, recheck=0.0)


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 700),
    d=st.integers(1, 9),
    k=st.integers(1, 12),
    float32=st.booleans(),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    offset=st.sampled_from([0.0, 10.0, 1e5]),
    steps=st.integers(1, 5),
    n_groups=st.sampled_from([None, 1, 3, 100]),
    recheck=st.sampled_from([None, 0.0, 0.5, 1.0]),
    ball=st.sampled_from([None, 0.0, 0.3, 1.0]),
)
def test_property_pruned_equals_full(seed, n, d, k, float32, scale, offset, steps, n_groups, recheck, ball):
    rng = np.random.default_rng(seed)
    dtype = np.float32 if float32 else np.float64
    X = (rng.normal(size=(n, d)) * scale + offset).astype(dtype)
    if rng.random() < 0.3:  # repeated rows: exact ties between units placed on them
        X[: n // 2] = X[0]
    W = X[rng.integers(0, n, k)].astype(np.float64)
    codebooks = [W.astype(dtype)]
    for _ in range(steps):
        moving = rng.random((k, 1)) < rng.random()
        W = W + rng.normal(size=W.shape) * scale * rng.choice([0.0, 1e-9, 1e-3, 0.3]) * moving
        codebooks.append(W.astype(dtype))
    with mock.patch.object(cpu_pruned, "BALL_MIN_ROWS_PER_UNIT", 0):  # the ball on any data
        _compare_to_full(X, codebooks, n_groups, recheck, ball)


def _count_pruned_passes(monkeypatch) -> list[int]:
    """The rows of each pass a fit runs through the pruned search (filled as it runs)."""
    from somvq.engines import cpu

    calls: list[int] = []
    original = cpu.CpuEngine._pruned_statistics

    def spy(self, X, codebook, n_groups=None):
        calls.append(X.shape[0])
        return original(self, X, codebook, n_groups)

    monkeypatch.setattr(cpu.CpuEngine, "_pruned_statistics", spy)
    return calls


def test_auto_prunes_large_batch_only(monkeypatch):
    calls = _count_pruned_passes(monkeypatch)
    rng = np.random.default_rng(0)
    small = rng.normal(size=(200, 3))
    KSOM(grid=(3, 3), n_epochs=2, random_state=0).fit(small)
    assert calls == []
    KSOM(grid=(3, 3), n_epochs=2, random_state=0, bmu_search="pruned").fit(small)
    assert calls == [200, 200]
    calls.clear()
    large = rng.normal(size=(PRUNED_MIN_ROWS, 2)).astype(np.float32)
    KSOM(grid=(3, 3), n_epochs=2, random_state=0, neighbourhood="none").fit(large)
    assert calls == []  # "auto": too few passes to win back the bounds' set-up
    KSOM(grid=(3, 3), n_epochs=PRUNED_MIN_PASSES, random_state=0, neighbourhood="none").fit(large)
    assert calls == [PRUNED_MIN_ROWS] * PRUNED_MIN_PASSES
    calls.clear()
    KSOM(grid=(3, 3), n_epochs=2, random_state=0, neighbourhood="gaussian").fit(large)
    assert calls == []  # "auto", shrinking radius: a sample says the ball settles too few rows
    calls.clear()
    KSOM(grid=(3, 3), n_epochs=2, random_state=0, algorithm="minibatch", bmu_search="pruned").fit(small)
    assert calls == []  # mini-batch searches in full


def test_pruned_min_passes_falls_with_the_work_of_a_pass():
    """k-means passes from which "auto" prunes: 30 on small, low-dimensional data, fewer
    with more rows or features (the measured break-evens, docs/performance.md rounds 16
    and 22), never more with more of either."""
    assert pruned_min_passes(PRUNED_MIN_ROWS, 16) == PRUNED_MIN_PASSES == 30
    assert pruned_min_passes(99_999, 63) == 30
    assert pruned_min_passes(100_000, 16) == 25
    assert pruned_min_passes(1_000_000, 16) == 25  # the 30-pass k-means target case prunes
    assert pruned_min_passes(100_000, 32) == 16
    assert pruned_min_passes(20_000, 64) == 12
    assert pruned_min_passes(1_000_000, 64) == 8
    assert pruned_min_passes(70_000, 784) == 5
    sizes = [20_000, 50_000, 100_000, 200_000, 10**6, 10**7]
    widths = [1, 16, 32, 63, 64, 128, 255, 256, 784, 4096]
    table = np.array([[pruned_min_passes(n, d) for d in widths] for n in sizes])
    assert (np.diff(table, axis=0) <= 0).all() and (np.diff(table, axis=1) <= 0).all()


def test_auto_prunes_short_fits_of_wide_data(monkeypatch):
    """256 features: "auto" prunes a k-means fit of 5 passes, not one of 4."""
    calls = _count_pruned_passes(monkeypatch)
    X = gaussian_mixture(np.random.default_rng(2), PRUNED_MIN_ROWS, 256, k=6).astype(np.float32)
    params = {"grid": (3, 3), "neighbourhood": "none", "random_state": 0, "tol": None}
    KSOM(n_epochs=4, **params).fit(X)
    assert calls == []
    five = KSOM(n_epochs=5, **params).fit(X)
    assert calls == [PRUNED_MIN_ROWS] * 5
    full = KSOM(n_epochs=5, bmu_search="full", **params).fit(X)
    assert five.codebook_.tobytes() == full.codebook_.tobytes()


@pytest.mark.parametrize("algorithm", ["minibatch", "online"])
def test_other_algorithms_unchanged(algorithm):
    X = np.random.default_rng(4).normal(size=(400, 3))
    a = KSOM(grid=(4, 4), n_epochs=2, random_state=0, algorithm=algorithm, bmu_search="full").fit(X)
    b = KSOM(grid=(4, 4), n_epochs=2, random_state=0, algorithm=algorithm, bmu_search="pruned").fit(X)
    assert a.codebook_.tobytes() == b.codebook_.tobytes()


def test_partial_fit_and_model_file(tmp_path):
    X = np.random.default_rng(6).normal(size=(500, 4))
    a = KSOM(grid=(4, 4), random_state=0, bmu_search="full").partial_fit(X).partial_fit(X)
    b = KSOM(grid=(4, 4), random_state=0, bmu_search="pruned").partial_fit(X).partial_fit(X)
    assert a.codebook_.tobytes() == b.codebook_.tobytes()
    save(b, tmp_path / "m.somvq.npz")
    assert load(tmp_path / "m.somvq.npz").bmu_search == "pruned"


def test_bad_value_names_it():
    with pytest.raises(ValueError, match="bmu_search"):
        KSOM(bmu_search="elkan").fit(np.zeros((5, 2)))


@pytest.mark.parametrize("neighbourhood", ["none", "gaussian"])
def test_auto_backoff_same_bits(neighbourhood):
    """ "auto" switches between pruned and full passes (the bounds dropped and rebuilt):
    still the full search's bits."""
    rng = np.random.default_rng(8)
    X = gaussian_mixture(rng, PRUNED_MIN_ROWS, 8, k=6).astype(np.float32)
    params = {
        "grid": (6, 6),
        "neighbourhood": neighbourhood,
        "n_epochs": PRUNED_MIN_PASSES,
        "random_state": 0,
    }
    full = KSOM(bmu_search="full", **params).fit(X)
    auto = KSOM(bmu_search="auto", **params).fit(X)
    assert full.codebook_.tobytes() == auto.codebook_.tobytes()
    np.testing.assert_array_equal(full.labels_, auto.labels_)


def test_auto_backs_off_when_bounds_do_not_prune():
    from somvq.engines.cpu import CpuEngine
    from somvq.parameters import training_plan

    engine = CpuEngine(KSOM())
    som = KSOM(grid=(2, 2), neighbourhood="none")  # (a shrinking one asks the ball instead)
    plan = training_plan(som, som.check_parameters(), 10.0)
    X = np.random.default_rng(0).normal(size=(50, 2))
    W = X[:4].copy()
    engine._pruned_statistics(X, W)  # first pass: every row
    engine._after_pruned_pass(plan, 50)
    engine._bounds[1].searched = 50  # a second pass that pruned nothing: not judged yet
    engine._after_pruned_pass(plan, 50)
    assert engine._pruning_pays(plan, X, W)
    engine._bounds[1].searched = 50  # a third pass that pruned nothing
    engine._after_pruned_pass(plan, 50)
    assert [engine._pruning_pays(plan, X, W) for _ in range(2)] == [False, True]


# ------------------------------------------------------------------ the ball (one group)
@pytest.fixture
def ball_on_small_data(monkeypatch):
    """The ball test on data of any size (it normally needs 32 rows per unit)."""
    monkeypatch.setattr(cpu_pruned, "BALL_MIN_ROWS_PER_UNIT", 0)


def _shrinking_fit_codebooks(X, grid, epochs, seed=0):
    """The codebook of every epoch of a full gaussian batch fit (the radius shrinks), the
    last one twice (no move)."""
    codebooks = []
    KSOM(grid=grid, n_epochs=epochs, random_state=seed, bmu_search="full").fit(
        X, callback=lambda e, n, mse, cb: codebooks.append(cb.copy())
    )
    return codebooks + [codebooks[-1].copy()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0.0, 1e4, 1e6])
@pytest.mark.parametrize("seed", [0, 1])
def test_ball_settles_rows_of_a_shrinking_fit(dtype, offset, seed, ball_on_small_data):
    """Late in a gaussian fit the ball around each row's last winner settles most rows
    without the product (else the equality is vacuous), and every pass is the full
    search's bits: winners, squared distances, counts and sums."""
    rng = np.random.default_rng(seed)
    X = gaussian_mixture(rng, 3000, 6, k=10, offset=offset, dtype=dtype)
    codebooks = _shrinking_fit_codebooks(X, (6, 8), 12, seed)
    bounds = cpu_pruned.Bounds(len(X), 1, None, 0.25)
    settled = []
    for W in codebooks:
        K = W.shape[0]
        counts, sums = np.zeros(K), np.zeros((K, X.shape[1]))
        sq = cpu_pruned.pruned_search(X, W, bounds, counts=counts, sums=sums).copy()
        bmu_f, sq_f = np.empty(len(X), dtype=np.int64), np.empty(len(X))
        counts_f, sums_f = np.zeros(K), np.zeros((K, X.shape[1]))
        cpu_bmu.best_matching_units(X, W, None, bmu_f, sq_f, counts=counts_f, sums=sums_f)
        np.testing.assert_array_equal(bounds.bmu, bmu_f)
        assert sq.tobytes() == sq_f.tobytes()
        assert counts.tobytes() == counts_f.tobytes() and sums.tobytes() == sums_f.tobytes()
        d = direct(X, W)
        np.testing.assert_array_equal(bmu_f, np.argmin(d, axis=1))
        assert_group_bounds(bounds, d)
        settled.append(bounds.rechecked / len(X))
    assert max(settled[-4:]) > 0.5, settled


def test_ball_ties_duplicates_and_jumps(ball_on_small_data):
    """Duplicate units (distance 0 between them), rows exactly between two units, a unit
    that jumps onto rows: the ball keeps the lowest index on ties and misses no unit."""
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.0], [2.0, 2.0], [0.5, 0.0], [3.0, 0.0]] * 40)
    W0 = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 2.0], [3.5, 0.0], [3.0, 0.0], [9.0, 9.0]])
    W1 = W0.copy()
    W2 = W0 + np.array([[0.0, 0.0], [1e-13, 0.0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0]])
    W3 = W2.copy()
    W3[2] = [0.5, 0.0]
    W4 = W3.copy()
    W4[4] = [3.0, 0.0]  # a tie with the rows' old winner 5: the lower index 4 takes them
    W5 = W4.copy()
    W5[6] = [3.0, 0.0]  # a far unit becomes a third duplicate, of a lower-index pair
    for dtype in (np.float64, np.float32):
        codebooks = [W.astype(dtype) for W in (W0, W1, W2, W3, W3, W4, W4, W5, W5)]
        for ball in (0.2, 0.5, 1.0):
            assert _compare_to_full(X.astype(dtype), codebooks, 1, 0.0, ball) > 0


@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_ball_near_ties_float32(offset, ball_on_small_data):
    """Units closer than float32 rounding, rows among them: the ball's distances are the
    full search's direct float64 ones, so its winners are too."""
    X, W, moved = near_tie_data(offset, 4)
    assert _compare_to_full(X, [W, W, moved, moved], 1, 0.0, 0.5) > 0


def test_nearest_units_against_numpy():
    """Each unit's list: its nearest other units in increasing distance (lower index first
    on ties), with lower bounds at most the distance and within the margin of it."""
    rng = np.random.default_rng(3)
    W = np.round(rng.normal(size=(30, 3)) * 2)  # integer points: many equal distances
    W[7] = W[3]
    for dtype in (np.float64, np.float32):
        Wd = W.astype(dtype)
        units, low = cpu_pruned.unit_balls(Wd, 1.0, 0.5)
        assert units.shape == low.shape == (30, 15)
        d = np.sqrt(direct(Wd, Wd))
        for a in range(30):
            others = [k for k in range(30) if k != a]
            expected = sorted(others, key=lambda k: (d[a, k], k))[:15]
            np.testing.assert_array_equal(units[a], expected)
            assert np.all(low[a] <= d[a, expected])
            np.testing.assert_allclose(low[a], d[a, expected], rtol=1e-8)
        # the lists do not depend on what is offered first (last pass's lists, any
        # permutation, a list of another size), nor on the parts the units are cut in
        rng_seed = np.random.default_rng(4)
        seeds = [
            units,
            np.stack([rng_seed.permutation(30) for _ in range(30)]),
            units[:, :4].copy(),
            units[:5],
        ]
        for seed in seeds:
            again = cpu_pruned.unit_balls(Wd, 1.0, 0.5, np.ascontiguousarray(seed))
            assert again[0].tobytes() == units.tobytes() and again[1].tobytes() == low.tobytes()
    # enough units for parts on two threads (64 units a part at least)
    W = np.round(rng.normal(size=(200, 2)) * 3)
    units, _ = cpu_pruned.unit_balls(W, 1.0, 0.1)
    d = direct(W, W)
    for a in range(200):
        expected = sorted((k for k in range(200) if k != a), key=lambda k: (d[a, k], k))[:20]
        np.testing.assert_array_equal(units[a], expected)


def test_no_ball_on_few_rows_per_unit():
    """Fewer than BALL_MIN_ROWS_PER_UNIT rows a unit: the lists are not made (they would
    cost more than the pass) and no row is settled by the ball; the bits are the same."""
    rng = np.random.default_rng(5)
    X = gaussian_mixture(rng, 600, 4, k=6)
    codebooks = _shrinking_fit_codebooks(X, (4, 5), 8)
    assert len(X) < cpu_pruned.BALL_MIN_ROWS_PER_UNIT * 20
    assert _compare_to_full(X, codebooks[-3:], 1, 0.0, 1.0) == 0
    assert cpu_pruned.ball_settled_fraction(X, codebooks[-1], np.zeros(600, dtype=np.int64), 1.0) == 0.0


def test_no_ball_where_unit_distances_overflow():
    """Squared distances between units beyond float64 (no scale given): no ball lists, so
    no bound that is not one."""
    W = np.array([[1e200, 0.0], [-1e200, 0.0], [0.0, 1.0]])
    units, low = cpu_pruned.unit_balls(W, 1.0, 1.0)
    assert units.shape == (3, 0) and low.shape == (3, 0)


def test_ball_settled_fraction(ball_on_small_data):
    rng = np.random.default_rng(4)
    W = np.arange(64, dtype=np.float64).reshape(64, 1) * 10.0
    X = W[rng.integers(0, 64, 2000)] + rng.normal(size=(2000, 1)) * 0.1
    bmu = np.argmin(direct(X, W), axis=1)
    assert cpu_pruned.ball_settled_fraction(X, W, bmu, 1 / 16) == 1.0  # well inside their cells
    far = np.zeros(2000, dtype=np.int64)  # every row's last winner: unit 0, far away
    assert cpu_pruned.ball_settled_fraction(X, W, far, 1 / 16) < 0.1
    assert cpu_pruned.ball_settled_fraction(X, W[:8], bmu % 8, 1 / 16) == 0.0  # lists no unit


@pytest.mark.parametrize("offset", [1e6, 1e10, -1e12])
def test_ball_settled_fraction_far_from_the_origin(offset, ball_on_small_data):
    """The estimate sees the same balls far from the origin (float64 data at 1e10), where
    the ball's direct distances work as near it: the plain expanded form said 0 there."""
    rng = np.random.default_rng(5)
    W = rng.normal(size=(64, 3)) * 3.0
    X = W[rng.integers(0, 64, 2000)] + rng.normal(size=(2000, 3)) * 0.3
    bmu = np.argmin(direct(X, W), axis=1)
    near = cpu_pruned.ball_settled_fraction(X, W, bmu, 1 / 4)
    assert near > 0.5
    assert cpu_pruned.ball_settled_fraction(X + offset, W + offset, bmu, 1 / 4) == near


def test_auto_runs_the_ball_late_in_a_shrinking_fit(monkeypatch):
    """bmu_search="auto", gaussian: the late passes run the ball test (seeded from a full
    pass's winners), the early ones search in full; the fit is the full search's bits."""
    from somvq.engines import cpu

    passes = []
    original = cpu.CpuEngine._pruned_statistics

    def spy(self, X, codebook, n_groups=None):
        passes.append(n_groups)
        return original(self, X, codebook, n_groups)

    monkeypatch.setattr(cpu.CpuEngine, "_pruned_statistics", spy)
    rng = np.random.default_rng(9)
    X = gaussian_mixture(rng, PRUNED_MIN_ROWS, 4, k=12).astype(np.float32)
    params = {"grid": (16, 20), "n_epochs": 20, "random_state": 0}
    errors = {}
    fits = {}
    for mode in ("full", "auto"):
        errors[mode] = []
        fits[mode] = KSOM(bmu_search=mode, **params).fit(
            X, callback=lambda e, n, mse, cb, out=errors[mode]: out.append(mse)
        )
    assert 0 < len(passes) < params["n_epochs"] and set(passes) == {1}, passes
    assert fits["full"].codebook_.tobytes() == fits["auto"].codebook_.tobytes()
    np.testing.assert_array_equal(fits["full"].labels_, fits["auto"].labels_)
    assert errors["full"] == errors["auto"]


def test_auto_keeps_the_ball_without_its_sample_once_it_settles_the_rows(monkeypatch):
    """After a ball pass that settled AUTO_KEEP_SETTLED of the rows the next pass runs the
    ball without sampling: fewer samples than when every pass samples, the same fit."""
    from somvq.engines import cpu

    samples = []
    original = cpu_pruned.ball_settled_fraction

    def spy(*args, **kwargs):
        samples.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(cpu_pruned, "ball_settled_fraction", spy)
    rng = np.random.default_rng(9)
    X = gaussian_mixture(rng, PRUNED_MIN_ROWS, 4, k=12).astype(np.float32)
    counts, codebooks = [], []
    for keep in (2.0, cpu.CpuEngine.AUTO_KEEP_SETTLED):  # (2: never kept without a sample)
        monkeypatch.setattr(cpu.CpuEngine, "AUTO_KEEP_SETTLED", keep)
        samples.clear()
        codebooks.append(KSOM(grid=(16, 20), n_epochs=20, random_state=0).fit(X).codebook_)
        counts.append(len(samples))
    assert counts[1] < counts[0], counts
    assert codebooks[0].tobytes() == codebooks[1].tobytes()


@pytest.mark.parametrize("n_groups", [1, 4])
def test_distances_beyond_float32(n_groups):
    """float64 data whose distances exceed float32's range: the float32 bounds must not
    become inf (inf means "no other unit in the group")."""
    rng = np.random.default_rng(12)
    X = gaussian_mixture(rng, 1500, 4) * 1e40
    W = X[rng.choice(len(X), 12, replace=False)].copy()
    codebooks = [W]
    for step in range(6):
        W = W + rng.normal(size=W.shape) * 1e40 * (0.3 / (step + 1))
        codebooks.append(W.copy())
    _compare_to_full(X, codebooks, n_groups)
    _compare_to_full(X, codebooks, n_groups, recheck=1.0)


@pytest.mark.parametrize("power", [-560, -600])
def test_ball_on_data_whose_squares_underflow(power):
    """float64 data near 1e-169: squared distances are below float64's normal range, the
    search scales the differences by a power of two, and the ball's reach must come from
    those scaled squares (from the underflowed ones it was ~0: the ball held no unit and
    16,934 of 20,000 labels differed from the full search's)."""
    rng = np.random.default_rng(7)
    X = gaussian_mixture(rng, 6000, 5, k=8) * 2.0**power
    fits = {
        m: KSOM(grid=(5, 6), n_epochs=15, random_state=0, bmu_search=m).fit(X) for m in ("full", "pruned")
    }
    assert fits["pruned"].codebook_.tobytes() == fits["full"].codebook_.tobytes()
    np.testing.assert_array_equal(fits["pruned"].labels_, fits["full"].labels_)


# ------------------------------------------------------------------ the threads of a pass
def _two_passes(X, W, moved, chunk_rows):
    """A first pass (every row searched) and a second after a move (some rows gathered)."""
    bounds = cpu_pruned.Bounds(len(X), n_groups=5)
    out = []
    for codebook in (W, moved):
        sq = cpu_pruned.pruned_search(X, codebook, bounds, chunk_rows=chunk_rows).copy()
        out += [bounds.bmu.copy(), sq, bounds.lower.copy()]
    return out, bounds.searched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_search_threads_give_the_bits_of_one(monkeypatch, dtype):
    """1, 2 and 4 threads (the core cap lifted), and a pool whose worker never starts,
    give the same winners, distances and bounds, block by block of 64 rows."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(8)
    X = gaussian_mixture(rng, 1500, 5, offset=100.0, dtype=dtype)
    W = X[rng.choice(1500, 30, replace=False)].copy()
    moved = (W + rng.normal(size=W.shape) * 0.05 * (rng.random((30, 1)) < 0.3)).astype(dtype)
    monkeypatch.setattr(cpu_bmu, "_CPU_COUNT", 8)
    runs = {}
    for threads in (1, 2, 4):
        with threadpool_limits(limits=threads):
            runs[threads], searched = _two_passes(X, W, moved, 64)
            assert 64 < searched < 1500  # the second pass gathered rows into several blocks
    monkeypatch.setattr(cpu_bmu, "_pool", lambda n: IdlePool())
    with threadpool_limits(limits=2):
        runs["idle"], _ = _two_passes(X, W, moved, 64)
    for name, run in runs.items():
        for a, b in zip(runs[1], run):
            assert a.tobytes() == b.tobytes(), name


@pytest.mark.parametrize("fail_on_worker", [True, False])
def test_an_error_on_a_search_thread_reaches_the_caller(monkeypatch, fail_on_worker):
    """A thread that fails after claiming a block (which it never finishes) ends the pass
    with its error; the caller does not wait for that block for ever."""
    from somvq._kernels import cpu_sync

    rng = np.random.default_rng(9)
    X = gaussian_mixture(rng, 900, 4)
    W = X[:12].copy()
    original = cpu_pruned.search_rows_pass
    caller: list = []

    def search_rows_pass(*args):
        sync = args[-1]
        if (threading.current_thread() is not caller[0]) != fail_on_worker:
            if fail_on_worker:  # the caller searches after the worker's claim
                wait_for(lambda: sync[cpu_pruned.BLOCKS_CLAIMED] >= 1)
            return original(*args)
        sync[cpu_pruned.BLOCKS_CLAIMED] += 1  # a claimed block that is never done
        if fail_on_worker:
            wait_for(lambda: sync[cpu_sync.SLEEPERS] > 0)  # the caller asleep on it
        raise RuntimeError("block failed")

    monkeypatch.setattr(cpu_pruned, "search_rows_pass", search_rows_pass)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2):
        errors = runtime_errors_in_thread(
            lambda: cpu_pruned.pruned_search(X, W, cpu_pruned.Bounds(900), chunk_rows=64), caller
        )
    assert [str(e) for e in errors] == ["block failed"]
