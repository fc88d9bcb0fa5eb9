"""The three algorithms against the NumPy references, and the zero-neighbourhood reductions.

Property tests draw data, codebooks, decays, init counts and batch sequences; a winner
whose distance ties (within 1e-6) with the runner-up is skipped with ``assume``, since
two correct implementations may then legitimately pick different winners.
"""

import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.cluster import KMeans

from somvq import KSOM

from . import naive
from .conftest import winner_margin

MARGIN = 1e-6


@st.composite
def data_and_codebook(draw, min_units=2, max_units=8, max_rows=40, max_features=4, codebook_from_data=False):
    n_units = draw(st.integers(min_units, max_units))
    n_features = draw(st.integers(1, max_features))
    n_rows = draw(st.integers(n_units if codebook_from_data else 1, max_rows))
    elements = st.floats(-10, 10, allow_nan=False, width=64)
    X = draw(arrays(np.float64, (n_rows, n_features), elements=elements))
    if codebook_from_data:
        # distinct rows by construction (a unique first column): distinct initial centres
        X[:, 0] = draw(arrays(np.float64, n_rows, elements=elements, unique=True))
        W0 = X[:n_units].copy()
    else:
        W0 = draw(arrays(np.float64, (n_units, n_features), elements=elements))
    return X, W0


# ----------------------------------------------------------------- batch = Lloyd
@given(data_and_codebook(codebook_from_data=True))
def test_batch_none_is_one_lloyd_step_of_sklearn_kmeans(case):
    X, W0 = case
    K = W0.shape[0]
    assume(len(np.unique(W0, axis=0)) == K)  # distinct centres: no empty cluster
    assume(winner_margin(X, W0) > MARGIN)
    som = KSOM(grid=(K,), neighbourhood="none", algorithm="batch", n_epochs=1, init=W0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's own ConvergenceWarning on duplicate points
        km = KMeans(n_clusters=K, init=W0, n_init=1, max_iter=1, algorithm="lloyd").fit(X)
    np.testing.assert_allclose(som.codebook_, km.cluster_centers_, rtol=1e-9, atol=1e-9)


def test_batch_none_keeps_empty_units_where_sklearn_relocates():
    X = np.array([[0.0], [0.2], [10.0], [10.4]])
    W0 = np.array([[0.0], [10.0], [100.0]])  # unit 2 wins nothing
    som = KSOM(grid=(3,), neighbourhood="none", n_epochs=1, init=W0).fit(X)
    np.testing.assert_allclose(som.codebook_, [[0.1], [10.2], [100.0]])


@given(
    data_and_codebook(max_units=6),
    st.integers(1, 4),
    st.sampled_from(["hard", "exponential", "gaussian", "bubble"]),
)
def test_batch_ksom_equals_reference(case, n_epochs, kind):
    X, W = case
    K = W.shape[0]
    distances = naive.grid_distances((K,))
    som = KSOM(
        grid=(K,),
        neighbourhood=kind,
        radius=2.0,
        shrink=0.3,
        radius_schedule="inverse_time",
        n_epochs=n_epochs,
        init=W,
    )
    for t in range(n_epochs):
        assume(winner_margin(X, W) > MARGIN)
        if kind == "hard":
            H = naive.paper_hard(distances, t, 0.3)
        elif kind == "exponential":
            H = naive.paper_exponential(distances, t, 0.3, 2.0)
        else:
            H = naive.classic(distances, kind, 2.0 / (1 + 0.3 * t))
        W = naive.batch_ksom_step(X, W, H)
    som.fit(X)
    np.testing.assert_allclose(som.codebook_, W, rtol=1e-9, atol=1e-9)
    assert som.n_steps_ == n_epochs


# ------------------------------------------------------------- mini-batch = EMA-VQ
@st.composite
def batch_sequences(draw):
    n_units = draw(st.integers(2, 6))
    n_features = draw(st.integers(1, 4))
    elements = st.floats(-5, 5, allow_nan=False, width=64)
    W0 = draw(arrays(np.float64, (n_units, n_features), elements=elements))
    n_batches = draw(st.integers(1, 5))
    batches = [
        draw(arrays(np.float64, (draw(st.integers(1, 12)), n_features), elements=elements))
        for _ in range(n_batches)
    ]
    return W0, batches


# The equations hold on any data; the warning about data far from the origin is not under test.
@pytest.mark.filterwarnings("ignore:mini-batch KSOM smooths its counts")
@given(
    batch_sequences(),
    st.floats(0.5, 0.999),
    st.sampled_from([0.0, 1.0]),
    st.sampled_from(["all", "written"]),
    st.sampled_from([1e-5, 1e-2]),
)
def test_minibatch_none_equals_ema_vq_step_for_step(seq, decay, init_count, update, eps):
    W0, batches = seq
    K = W0.shape[0]
    som = KSOM(
        grid=(K,),
        neighbourhood="none",
        algorithm="minibatch",
        batch_size=10_000,
        decay=decay,
        init_count=init_count,
        eps=eps,
        update=update,
        init=W0,
    )
    W, N, m = W0.copy(), np.full(K, init_count), W0.copy()
    for batch in batches:
        assume(winner_margin(batch, W) > MARGIN * (1 + np.abs(W).max() ** 2))
        N, m, W = naive.ema_vq_step(batch, W, N, m, decay, eps, update)
        assume(np.all(np.isfinite(W)) and np.abs(W).max() < 1e8)
        som.partial_fit(batch)
        np.testing.assert_allclose(som.ema_count_, N, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(som.ema_sum_, m, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(som.codebook_, W, rtol=1e-8, atol=1e-8)
    assert som.n_steps_ == len(batches)


# The equations hold on any data; the warning about data far from the origin is not under test.
@pytest.mark.filterwarnings("ignore:mini-batch KSOM smooths its counts")
@given(
    batch_sequences(),
    st.floats(0.5, 0.99),
    st.sampled_from([0.0, 1.0]),
    st.sampled_from(["all", "written"]),
    st.sampled_from(["hard", "exponential"]),
    st.sampled_from([(1,), (2,)]),
)
def test_minibatch_ksom_equals_reference(seq, decay, init_count, update, kind, grid_kind):
    W0, batches = seq
    K = W0.shape[0]
    shape = (K,) if grid_kind == (1,) or K % 2 else (2, K // 2)
    distances = naive.grid_distances(shape)
    som = KSOM(
        grid=shape,
        neighbourhood=kind,
        radius=3.0,
        shrink=0.5,
        algorithm="minibatch",
        batch_size=10_000,
        decay=decay,
        init_count=init_count,
        update=update,
        init=W0,
    )
    W, N, m = W0.copy(), np.full(K, init_count), W0.copy()
    for t, batch in enumerate(batches):
        assume(winner_margin(batch, W) > MARGIN * (1 + np.abs(W).max() ** 2))
        H = (
            naive.paper_hard(distances, t, 0.5)
            if kind == "hard"
            else naive.paper_exponential(distances, t, 0.5, 3.0)
        )
        N, m, W = naive.minibatch_ksom_step(batch, W, N, m, H, decay, 1e-5, update)
        assume(np.all(np.isfinite(W)) and np.abs(W).max() < 1e8)
        som.partial_fit(batch)
        np.testing.assert_allclose(som.codebook_, W, rtol=1e-8, atol=1e-8)


def test_minibatch_init_count_zero_makes_unused_units_jump():
    """N0 = 0: an unused unit jumps to about decay * w0 / eps after one step (the paper)."""
    W0 = np.array([[0.0], [1.0]])
    X = np.array([[0.1], [0.2]])  # both rows won by unit 0
    som = KSOM(
        grid=(2,), neighbourhood="none", algorithm="minibatch", init_count=0.0, decay=0.99, eps=1e-5, init=W0
    )
    som.partial_fit(X)
    # E1: N = 0.01 * (2, 0) = (0.02, 0); E2: N = (N + 1e-5) / (0.02 + 2e-5) * 0.02;
    # E3: m = 0.99 * (0, 1) + 0.01 * (0.3, 0) = (0.003, 0.99); E4: w = m / N.
    N = np.array([0.02001, 0.00001]) / 0.02002 * 0.02
    m = np.array([0.003, 0.99])
    np.testing.assert_allclose(som.ema_count_, N, rtol=1e-12)
    np.testing.assert_allclose(som.ema_sum_[:, 0], m, rtol=1e-12)
    np.testing.assert_allclose(som.codebook_[:, 0], m / N, rtol=1e-12)
    # unit 1: w = 0.99 / (1e-5 / 1.001) = 99099, about decay * w0 / eps = 99000
    assert som.codebook_[1, 0] == pytest.approx(99099.0, rel=1e-12)


def test_minibatch_fit_splits_epochs_into_shuffled_batches():
    X = np.random.default_rng(0).normal(size=(100, 3))
    som = KSOM(grid=(2, 3), algorithm="minibatch", batch_size=32, n_epochs=3, random_state=0).fit(X)
    assert som.n_steps_ == 3 * 4 and som.n_iter_ == 3


# ----------------------------------------------------------------- online KSOM
@given(data_and_codebook(max_units=6, max_rows=30), st.sampled_from([0.0, 1.0, 3.0]))
def test_online_none_with_inverse_count_is_macqueen(case, init_count):
    X, W0 = case
    K = W0.shape[0]
    W = W0.copy()
    counts = np.full(K, init_count)
    for x in X:  # check margins along the sequential path
        assume(winner_margin(x[None], W) > MARGIN)
        k = int(((x - W) ** 2).sum(1).argmin())
        counts[k] += 1
        W[k] += (x - W[k]) / counts[k]
    expected = naive.macqueen(X, W0, range(len(X)), init_count)
    som = KSOM(
        grid=(K,),
        neighbourhood="none",
        algorithm="online",
        learning_rate="inverse_count",
        init_count=init_count,
        init=W0,
    )
    som.partial_fit(X)
    np.testing.assert_allclose(som.codebook_, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(som.unit_counts_, counts)


@given(
    data_and_codebook(max_units=6, max_rows=25),
    st.sampled_from(["hard", "exponential", "gaussian", "triangle", "mexican_hat"]),
)
def test_online_ksom_equals_reference(case, kind):
    X, W0 = case
    K = W0.shape[0]
    distances = naive.grid_distances((K,))
    r0, shrink, lr0, lr1 = 2.0, 0.2, 0.5, 0.05
    horizon = 2 * len(X) - 1 if len(X) > 1 else 1  # n_epochs=2 calls of len(X)

    def radius(t):
        return r0 / (1 + shrink * t)

    def h_row(t, k):
        if kind == "hard":
            return naive.paper_hard(distances, t, shrink)[k]
        if kind == "exponential":
            return naive.paper_exponential(distances, t, shrink, r0)[k]
        return naive.classic(distances[k], kind, radius(t))

    def rate(t, k):
        return lr0 * (lr1 / lr0) ** min(t / horizon, 1.0)

    W = W0.copy()
    for t, x in enumerate(X):
        assume(winner_margin(x[None], W) > MARGIN)
        k = int(((x - W) ** 2).sum(1).argmin())
        W += rate(t, k) * h_row(t, k)[:, None] * (x - W)
    expected = naive.online_ksom_pass(X, W0, range(len(X)), h_row, rate)
    som = KSOM(
        grid=(K,),
        neighbourhood=kind,
        radius=r0,
        shrink=shrink,
        radius_schedule="inverse_time",
        algorithm="online",
        learning_rate=lr0,
        learning_rate_final=lr1,
        learning_rate_schedule="exponential",
        n_epochs=2,
        init=W0,
    )
    som.partial_fit(X)
    np.testing.assert_allclose(som.codebook_, expected, rtol=1e-9, atol=1e-9)
    assert som.n_steps_ == len(X)


def test_online_fit_is_sequential_and_seeded(digits):
    a = KSOM(grid=(4, 4), algorithm="online", n_epochs=2, random_state=3).fit(digits[:300])
    b = KSOM(grid=(4, 4), algorithm="online", n_epochs=2, random_state=3).fit(digits[:300])
    np.testing.assert_array_equal(a.codebook_, b.codebook_)
    assert a.n_steps_ == 600
