"""Whole fits against the naive NumPy transcriptions, on 2-D, hexagonal and periodic grids.

Each test runs ``KSOM.fit`` from a given initial codebook (``init=array``) and replays the
same equations (docs/algorithms.md §5-§7) with tests/naive.py, whose grid distances come
from its own :func:`naive.grid_distances`. The sample order is the estimator's: a fresh
``np.random.default_rng(random_state).permutation(n)`` per epoch, drawn from one generator
(``init=array`` draws nothing). Schedules are written out from docs/algorithms.md §4.

The last tests check the documented equivalence batch = mini-batch (§8).
"""

import math

import numpy as np
import pytest

from somvq import KSOM

from . import naive

GRIDS = [
    pytest.param((3, 4), "rectangular", False, id="rectangular-3x4"),
    pytest.param((4, 3), "hexagonal", False, id="hexagonal-4x3"),
    pytest.param((4, 5), "rectangular", True, id="torus-4x5"),
    pytest.param((4, 4), "hexagonal", (True, False), id="hexagonal-periodic-rows-4x4"),
]

#: neighbourhood -> estimator parameters. hard and exponential: the paper's kernels with the
#: inverse-time radius r0 / (1 + shrink t); gaussian: the classic kernel, exponential
#: radius schedule from r0 to r1 over the horizon.
KINDS = {
    "hard": dict(neighbourhood="hard", shrink=0.3),
    "exponential": dict(neighbourhood="exponential", radius=2.0, shrink=0.3),
    "gaussian": dict(neighbourhood="gaussian", radius=1.5, radius_final=0.5, radius_schedule="exponential"),
}


def smoothing(kind, distances, t, horizon):
    """H_t of docs/algorithms.md §3-§4, from the naive kernels."""
    if kind == "hard":
        return naive.paper_hard(distances, t, 0.3)
    if kind == "exponential":
        return naive.paper_exponential(distances, t, 0.3, 2.0)
    radius = 1.5 * (0.5 / 1.5) ** min(t / horizon, 1.0)
    return naive.classic(distances, "gaussian", radius)


def data(shape, n=37, features=3, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features))
    W0 = rng.normal(scale=0.5, size=(math.prod(shape), features))
    return X, W0


def epoch_orders(random_state, n, n_epochs):
    rng = np.random.default_rng(random_state)
    return [rng.permutation(n) for _ in range(n_epochs)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape, topology, periodic", GRIDS)
def test_batch_fit_equals_naive(shape, topology, periodic, kind):
    X, W0 = data(shape)
    n_epochs = 4
    distances = naive.grid_distances(shape, topology, periodic)
    horizon = max(n_epochs * 1 - 1, 1)  # one update per epoch
    W = W0.copy()
    for t, order in enumerate(epoch_orders(7, len(X), n_epochs)):
        W = naive.batch_ksom_step(X[order], W, smoothing(kind, distances, t, horizon))
    som = KSOM(
        grid=shape,
        topology=topology,
        periodic=periodic,
        n_epochs=n_epochs,
        init=W0,
        random_state=7,
        **KINDS[kind],
    )
    som.fit(X)
    np.testing.assert_allclose(som.codebook_, W, rtol=1e-10, atol=1e-12)
    assert som.n_steps_ == n_epochs
    assert not np.allclose(W, W0)  # the fit moved the map


@pytest.mark.parametrize("update", ["all", "written"])
@pytest.mark.parametrize("kind", ["hard", "gaussian"])
@pytest.mark.parametrize("shape, topology, periodic", GRIDS)
def test_minibatch_fit_equals_naive(shape, topology, periodic, kind, update):
    X, W0 = data(shape)
    n_epochs, batch_size, decay, eps = 3, 10, 0.8, 1e-5
    steps_per_epoch = math.ceil(len(X) / batch_size)
    horizon = max(n_epochs * steps_per_epoch - 1, 1)
    distances = naive.grid_distances(shape, topology, periodic)
    W, N, m = W0.copy(), np.ones(len(W0)), W0.copy()
    t = 0
    for order in epoch_orders(3, len(X), n_epochs):
        for start in range(0, len(X), batch_size):  # consecutive slices, the last one shorter
            H = smoothing(kind, distances, t, horizon)
            N, m, W = naive.minibatch_ksom_step(
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
        **KINDS[kind],
    )
    som.fit(X)
    np.testing.assert_allclose(som.ema_count_, N, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(som.ema_sum_, m, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(som.codebook_, W, rtol=1e-10, atol=1e-12)
    assert som.n_steps_ == t == n_epochs * steps_per_epoch


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape, topology, periodic", GRIDS)
def test_online_fit_equals_naive(shape, topology, periodic, kind):
    X, W0 = data(shape, n=25)
    n_epochs, lr0, lr1 = 2, 0.5, 0.05
    horizon = max(n_epochs * len(X) - 1, 1)  # one update per sample
    distances = naive.grid_distances(shape, topology, periodic)
    order = np.concatenate(epoch_orders(11, len(X), n_epochs))  # t runs on across epochs

    def h_row(t, winner):
        return smoothing(kind, distances, t, horizon)[winner]

    def rate(t, winner):  # exponential learning-rate schedule (the default)
        return lr0 * (lr1 / lr0) ** min(t / horizon, 1.0)

    expected = naive.online_ksom_pass(X, W0, order, h_row, rate)
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
        **KINDS[kind],
    )
    som.fit(X)
    np.testing.assert_allclose(som.codebook_, expected, rtol=1e-10, atol=1e-12)
    assert som.n_steps_ == n_epochs * len(X)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape, topology, periodic", GRIDS[1:2] + GRIDS[3:])
def test_online_partial_fit_keeps_the_given_order(shape, topology, periodic, kind):
    X, W0 = data(shape, n=25)
    horizon = max(3 * len(X) - 1, 1)  # n_epochs=3 calls of the first call's size
    distances = naive.grid_distances(shape, topology, periodic)
    expected = naive.online_ksom_pass(
        X,
        W0,
        range(len(X)),
        lambda t, k: smoothing(kind, distances, t, horizon)[k],
        lambda t, k: 0.5 * (0.05 / 0.5) ** min(t / horizon, 1.0),
    )
    som = KSOM(
        grid=shape,
        topology=topology,
        periodic=periodic,
        algorithm="online",
        learning_rate=0.5,
        learning_rate_final=0.05,
        n_epochs=3,
        init=W0,
        **KINDS[kind],
    )
    som.partial_fit(X)
    np.testing.assert_allclose(som.codebook_, expected, rtol=1e-10, atol=1e-12)


# ------------------------------------------------- batch = mini-batch (docs/algorithms.md §8)
@pytest.mark.parametrize("extra_rows", [0, 9])
@pytest.mark.parametrize("kind", ["gaussian", "hard", "exponential", "none"])
@pytest.mark.parametrize("shape, topology, periodic", GRIDS)
def test_minibatch_with_zero_decay_written_update_and_one_batch_is_batch(
    shape, topology, periodic, kind, extra_rows
):
    """decay=0, update="written", batch_size >= n: every epoch is exactly the batch update."""
    X, W0 = data(shape, n=50)
    common = dict(
        grid=shape,
        topology=topology,
        periodic=periodic,
        neighbourhood=kind,
        n_epochs=5,
        init=W0,
        random_state=0,
    )
    batch = KSOM(**common).fit(X)
    minibatch = KSOM(
        **common, algorithm="minibatch", decay=0.0, update="written", batch_size=len(X) + extra_rows
    ).fit(X)
    np.testing.assert_allclose(minibatch.codebook_, batch.codebook_, rtol=1e-12, atol=1e-12)
    assert minibatch.n_steps_ == batch.n_steps_ == 5


@pytest.mark.parametrize(
    "change, kind",
    [(dict(decay=0.5), "gaussian"), (dict(batch_size=49), "gaussian"), (dict(update="all"), "none")],
    ids=["decay", "batch_size", "update"],
)
def test_batch_equivalence_needs_each_condition(change, kind):
    """Drop any one condition and the two fits differ: the test above can fail.

    update="all" differs only where a unit receives no weight (it decays towards 0 instead
    of keeping its vector), hence no neighbourhood and a unit far from the data.
    """
    X, W0 = data((3, 4), n=50)
    W0[-1] = 100.0
    common = dict(grid=(3, 4), neighbourhood=kind, n_epochs=5, init=W0, random_state=0)
    batch = KSOM(**common).fit(X)
    settings = {**dict(decay=0.0, update="written", batch_size=50), **change}
    minibatch = KSOM(**common, algorithm="minibatch", **settings).fit(X)
    assert not np.allclose(minibatch.codebook_, batch.codebook_, rtol=1e-6, atol=1e-6)
