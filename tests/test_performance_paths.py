"""Every fast path of the core equals the simple dense computation it replaces."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from somvq import algorithms
from somvq._kernels.cpu_bmu import best_matching_units
from somvq.grids import Grid
from somvq.neighbourhoods import (
    DenseSmoothing,
    IdentitySmoothing,
    Neighbourhood,
    SeparableSmoothing,
    smoothing_operator,
)
from somvq.schedules import Schedule


def _data(n, d, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    W = rng.normal(size=(k, d)).astype(dtype)
    return X, W


def _naive(X, W):
    sq = ((X[:, None, :].astype(np.float64) - W[None, :, :].astype(np.float64)) ** 2).sum(-1)
    bmu = sq.argmin(1)
    counts = np.bincount(bmu, minlength=W.shape[0]).astype(np.float64)
    sums = np.zeros(W.shape, dtype=np.float64)
    np.add.at(sums, bmu, X.astype(np.float64))
    return bmu, sq.min(1), counts, sums


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk_rows", [7, 64, 1024])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_blocked_search_equals_dense(dtype, chunk_rows, n_threads):
    X, W = _data(701, 9, 23, dtype)
    bmu = np.empty(X.shape[0], dtype=np.int64)
    sq = np.empty(X.shape[0])
    counts = np.zeros(W.shape[0])
    sums = np.zeros(W.shape)
    norms = np.einsum("ij,ij->i", W, W)
    best_matching_units(X, W, norms, bmu, sq, counts, sums, chunk_rows=chunk_rows, n_threads=n_threads)
    ref_bmu, ref_sq, ref_counts, ref_sums = _naive(X, W)
    np.testing.assert_array_equal(bmu, ref_bmu)
    np.testing.assert_allclose(sq, ref_sq, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-4)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_allclose(sums, ref_sums, rtol=1e-12, atol=1e-12)


def test_parallel_blocks_are_bitwise_serial_blocks():
    X, W = _data(5000, 16, 40, np.float32, seed=3)
    outs = []
    for n_threads in (1, 2):
        bmu = np.empty(X.shape[0], dtype=np.int64)
        sq = np.empty(X.shape[0])
        counts, sums = np.zeros(40), np.zeros((40, 16))
        best_matching_units(
            X, W, np.einsum("ij,ij->i", W, W), bmu, sq, counts, sums, chunk_rows=256, n_threads=n_threads
        )
        outs.append((bmu, sq, counts, sums))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_unit_statistics_same_bits_for_one_and_two_blas_threads():
    X, W = _data(6000, 12, 50, np.float32, seed=4)
    with threadpool_limits(1, user_api="blas"):
        one = algorithms.unit_statistics(X, W, chunk_rows=512)
    with threadpool_limits(2, user_api="blas"):
        two = algorithms.unit_statistics(X, W, chunk_rows=512)
    np.testing.assert_array_equal(one.counts, two.counts)
    np.testing.assert_array_equal(one.sums, two.sums)
    assert one.sq_error == two.sq_error


def test_non_contiguous_and_read_only_inputs():
    X, W = _data(300, 6, 11, np.float64)
    ref = algorithms.assign(X, W)
    read_only = X.copy()
    read_only.setflags(write=False)
    for variant in (np.asfortranarray(X), read_only):
        got = algorithms.assign(variant, W, chunk_rows=64)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-12)


GRIDS = [
    Grid((6, 9)),
    Grid((5, 4), periodic=(True, False)),
    Grid((4, 4), periodic=True),
    Grid((3, 4, 5)),
    Grid((7,)),
    Grid((4, 6), topology="hexagonal"),
]
KINDS = ["none", "hard", "gaussian", "exponential", "bubble", "triangle", "cut_gaussian"]


@pytest.mark.parametrize("grid", GRIDS, ids=repr)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("t", [0, 3, 40])
def test_smoothing_operator_equals_dense_matrix(grid, kind, t):
    nb = Neighbourhood(kind, Schedule("exponential", 3.0, 0.5, 0.1, 50.0), 0.1)
    dense = nb.weights(np.asarray(grid.distances), float(t))
    op = smoothing_operator(nb, grid, t)
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 5, grid.n_units).astype(np.float64)
    sums = rng.normal(size=(grid.n_units, 3))
    n, s = algorithms.smooth_statistics(op, counts, sums)
    np.testing.assert_allclose(n, dense @ counts, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s, dense @ sums, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.dense(), dense, rtol=1e-12, atol=1e-300)
    if kind == "none":
        assert isinstance(op, IdentitySmoothing)
    elif grid.topology == "rectangular" and (kind == "gaussian" or (kind == "hard" and grid.ndim <= 2)):
        assert isinstance(op, SeparableSmoothing)
    else:
        assert isinstance(op, DenseSmoothing)


@pytest.mark.parametrize("kind", KINDS)
def test_matrix_through_distinct_distances_is_exact(kind):
    grid = Grid((7, 5), periodic=(False, True))
    nb = Neighbourhood(kind, Schedule("inverse_time", 4.0, 0.5, 0.1, 10.0), 0.1)
    for t in (0, 5):
        expected = nb.weights(np.array(grid.distances), float(t))  # writable copy: direct path
        np.testing.assert_array_equal(nb.matrix(grid.distances, t), expected)
        np.testing.assert_array_equal(
            nb.matrix(grid.distances, t, dtype=np.float32), expected.astype(np.float32)
        )


# ------------------------------------------------------------------ fused mini-batch pass
def _simple_minibatch(X, order, W, N, m, nb, grid, t0, batch_size, decay, eps, update):
    """The step-by-step mini-batch KSOM with the dense H_t: the definition."""
    for step, start in enumerate(range(0, len(order), batch_size)):
        batch = X[order[start : start + batch_size]]
        stats = algorithms.unit_statistics(batch, W)
        H = nb.matrix(np.array(grid.distances), t0 + step)
        n, s = algorithms.smooth_statistics(H, stats.counts, stats.sums)
        N, m, W = algorithms.ema_update(N, m, W, n, s, decay=decay, eps=eps, update=update)
    return W, N, m


@pytest.mark.parametrize(
    "grid",
    [
        Grid((4, 5)),
        Grid((3, 4), periodic=True),
        Grid((7,)),
        Grid((2, 3, 2)),
        Grid((3, 4), topology="hexagonal"),
    ],
    ids=repr,
)
@pytest.mark.parametrize("kind", ["none", "hard", "gaussian", "exponential", "bubble"])
@pytest.mark.parametrize("update", ["all", "written"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_minibatch_pass_equals_step_by_step_definition(grid, kind, update, dtype):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(203, 5)).astype(dtype)
    W0 = rng.normal(size=(grid.n_units, 5)).astype(dtype)
    order = rng.permutation(X.shape[0])
    nb = Neighbourhood(kind, Schedule("exponential", 2.0, 0.5, 0.2, 20.0), 0.2)
    W, N, m = W0.copy(), np.full(grid.n_units, 1.0), W0.astype(np.float64)
    sq = algorithms.minibatch_pass_inplace(
        X, order, W, N, m, nb, grid, 3, batch_size=32, decay=0.9, eps=1e-3, update=update, chunk_rows=16
    )
    rW, rN, rm = _simple_minibatch(
        X,
        order,
        W0.copy(),
        np.full(grid.n_units, 1.0),
        W0.astype(np.float64),
        nb,
        grid,
        3,
        32,
        0.9,
        1e-3,
        update,
    )
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(N, rN, rtol=1e-10)
    np.testing.assert_allclose(m, rm, rtol=tol, atol=tol)
    np.testing.assert_allclose(W, rW, rtol=tol, atol=tol)
    assert W.dtype == dtype and np.isfinite(sq) and sq > 0


def test_minibatch_pass_gathers_in_several_blocks(monkeypatch):
    """Results do not depend on how many rows are gathered at once."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(500, 4))
    grid = Grid((3, 3))
    nb = Neighbourhood("hard", Schedule("inverse_time", 1.0, 0.5, 0.1, 10.0), 0.1)
    order = rng.permutation(500)
    outs = []
    for per_gather_bytes in (8 << 20, 1):
        W, N, m = X[:9].copy(), np.ones(9), X[:9].copy()
        monkeypatch.setattr(algorithms, "_GATHER_BYTES", per_gather_bytes)
        algorithms.minibatch_pass_inplace(X, order, W, N, m, nb, grid, 0, batch_size=64, decay=0.95, eps=1e-5)
        outs.append((W, N, m))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ online fast paths
@pytest.mark.parametrize(
    "grid",
    [
        Grid((5, 6)),
        Grid((4, 7), periodic=True),
        Grid((9,)),
        Grid((6,), periodic=True),
        Grid((3, 5), periodic=(False, True)),
    ],
    ids=repr,
)
@pytest.mark.parametrize("kind", ["none", "hard", "gaussian", "bubble", "triangle", "cut_gaussian"])
@pytest.mark.parametrize("radius", [0.7, 1.5, 2.5, 40.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_online_grid_paths_equal_general_kernel(grid, kind, radius, dtype):
    from somvq._kernels.cpu_online import online_pass as general

    rng = np.random.default_rng(7)
    X = rng.normal(size=(150, 3)).astype(dtype)
    W0 = rng.normal(size=(grid.n_units, 3)).astype(dtype)
    order = rng.permutation(150)
    nb = Neighbourhood(kind, Schedule("exponential", radius, radius / 4, 0.1, 149.0), 0.1)
    lr = Schedule("exponential", 0.5, 0.01, 0.1, 149.0)
    fast, slow = W0.copy(), W0.copy()
    c_fast, c_slow = np.ones(grid.n_units), np.ones(grid.n_units)
    algorithms.online_pass_inplace(
        X, order, fast, c_fast, nb, grid, 2, learning_rate=lr, grid_distances=grid.distances
    )
    general(
        X,
        slow,
        order.astype(np.int64),
        grid.distances,
        nb.code,
        nb.radius.code,
        nb.kernel_parameters(),
        lr.code,
        np.array([lr.start, lr.end, lr.shrink, lr.horizon]),
        c_slow,
        2,
    )
    if kind == "gaussian":  # per-axis products: equal up to rounding
        tol = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(fast, slow, rtol=tol, atol=tol)
    else:  # same weights on the visited units, zero elsewhere: same bits
        np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize(
    "grid", [Grid((4, 5)), Grid((3, 4), topology="hexagonal"), Grid((2, 2, 3))], ids=repr
)
@pytest.mark.parametrize("kind", ["gaussian", "hard", "exponential"])
def test_online_pass_without_distances_reads_them_from_the_grid(grid, kind):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(60, 3))
    W0 = rng.normal(size=(grid.n_units, 3))
    nb = Neighbourhood(kind, Schedule("exponential", 2.0, 0.5, 0.1, 59.0), 0.1)
    lr = Schedule("exponential", 0.5, 0.01, 0.1, 59.0)
    a, b = W0.copy(), W0.copy()
    algorithms.online_pass_inplace(
        X, np.arange(60), a, np.ones(grid.n_units), nb, Grid(grid.shape, grid.topology), 0, learning_rate=lr
    )
    algorithms.online_pass_inplace(
        X,
        np.arange(60),
        b,
        np.ones(grid.n_units),
        nb,
        grid,
        0,
        learning_rate=lr,
        grid_distances=grid.distances,
    )
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        algorithms.online_pass_inplace(
            X, np.arange(60), a, np.ones(grid.n_units), nb, None, 0, learning_rate=lr
        )


@pytest.mark.parametrize(
    "grid",
    [Grid((6, 9)), Grid((5, 4), periodic=(True, False)), Grid((7,)), Grid((6,), periodic=True)],
    ids=repr,
)
@pytest.mark.parametrize("kind", ["gaussian", "hard"])
def test_compiled_separable_smoothing_equals_numpy_apply(grid, kind):
    nb = Neighbourhood(kind, Schedule("exponential", 3.0, 0.5, 0.1, 50.0), 0.1)
    op = smoothing_operator(nb, grid, 4)
    assert isinstance(op, SeparableSmoothing)
    rng = np.random.default_rng(9)
    counts = rng.integers(0, 5, grid.n_units).astype(np.float64)
    sums = rng.normal(size=(grid.n_units, 3))
    n, s = algorithms.smooth_statistics(op, counts, sums)  # compiled for 1-D/2-D grids
    rn, rs = op.apply(counts, sums)  # numpy tensordot
    np.testing.assert_allclose(n, rn, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s, rs, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ augmented-GEMM search
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_search_ties_pick_the_lowest_index(dtype):
    """Duplicated units (exact ties in the augmented product) go to the first copy."""
    rng = np.random.default_rng(10)
    base = rng.normal(size=(6, 5)).astype(dtype)
    W = np.concatenate([base, base[::-1], base])  # every unit appears three times
    X = np.concatenate([base, rng.normal(size=(50, 5)).astype(dtype)])
    bmu, sq = algorithms.assign(X, W, chunk_rows=16)
    ref_bmu, ref_sq, _, _ = _naive(X, W)
    np.testing.assert_array_equal(bmu, ref_bmu)
    assert (bmu < 6).all()  # first copies are units 0..5
    np.testing.assert_allclose(sq, ref_sq, rtol=1e-4, atol=1e-4)


def test_search_scratch_buffers_follow_shape_and_dtype_changes():
    """The per-thread augmented buffer (with its column of ones) is rebuilt when D or the
    dtype changes, and is not left dirty between calls."""
    for d, dtype in [(3, np.float64), (7, np.float32), (3, np.float32), (7, np.float64), (3, np.float64)]:
        X, W = _data(97, d, 13, dtype, seed=d)
        for n_threads in (1, 2):
            bmu = np.empty(97, dtype=np.int64)
            sq = np.empty(97)
            best_matching_units(
                X, W, np.einsum("ij,ij->i", W, W), bmu, sq, chunk_rows=32, n_threads=n_threads
            )
            ref_bmu, ref_sq, _, _ = _naive(X, W)
            np.testing.assert_array_equal(bmu, ref_bmu)
            np.testing.assert_allclose(sq, ref_sq, rtol=1e-4, atol=1e-4)


def test_augmented_codebook_layout():
    """[-2 W' | ||w'||^2] with W' = (W - centre) * scale, norms summed in float64."""
    from somvq._kernels.cpu_bmu import fill_augmented

    W = np.arange(15, dtype=np.float32).reshape(5, 3)
    for centre, scale in ((np.zeros(3, np.float32), 1.0), (np.float32([1, 2, 3]), 0.25)):
        aug = np.empty((5, 4), dtype=np.float32)
        largest = fill_augmented(W, centre, scale, aug)
        framed = (W - centre) * np.float32(scale)
        np.testing.assert_array_equal(aug[:, :3], -2 * framed)
        np.testing.assert_array_equal(aug[:, 3], (framed.astype(np.float64) ** 2).sum(1).astype(np.float32))
        assert largest == (framed.astype(np.float64) ** 2).sum(1).max()


@pytest.mark.parametrize("n", [1, 5, 511, 512, 513, 1024, 1025, 1797, 10_000, 100_000])
@pytest.mark.parametrize("chunk_rows", [7, 256, 512])
def test_balanced_blocks(n, chunk_rows):
    """Blocks never exceed chunk_rows, cover the rows, and depend on n and chunk_rows only."""
    from somvq._kernels.cpu_bmu import balanced_chunk_rows

    rows = balanced_chunk_rows(n, chunk_rows)
    assert 1 <= rows <= min(chunk_rows, n) or (n == 0)
    n_blocks = -(-n // rows)
    assert n_blocks >= -(-n // chunk_rows)
    assert n_blocks <= -(-n // chunk_rows) + 2
    if n == 1797 and chunk_rows == 512:
        assert rows == 450  # digits: 4 equal blocks, 2 per thread


def test_concurrent_callers_share_the_block_pool():
    """Two Python threads searching at once (one pool worker between them) get the serial
    results: a block is searched by whoever claims it, never twice, never skipped."""
    from concurrent.futures import ThreadPoolExecutor

    X, W = _data(4000, 8, 30, np.float32, seed=11)
    norms = np.einsum("ij,ij->i", W, W)

    def run(n_threads):
        bmu = np.empty(X.shape[0], dtype=np.int64)
        sq = np.empty(X.shape[0])
        counts, sums = np.zeros(30), np.zeros((30, 8))
        best_matching_units(X, W, norms, bmu, sq, counts, sums, chunk_rows=128, n_threads=n_threads)
        return bmu, sq, counts, sums

    ref = run(1)
    with ThreadPoolExecutor(3) as callers:
        outs = list(callers.map(run, [2] * 12))
    for out in outs:
        for a, b in zip(out, ref):
            np.testing.assert_array_equal(a, b)


def _blas_counts():
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_concurrent_searches_leave_the_blas_thread_count_as_it_was():
    """threadpoolctl's limit saves and restores per call: overlapping searches in two Python
    threads restored each other's 1, and the BLAS stayed at one thread for good (found by
    an adversarial pass). One counted hold for the process now."""
    from concurrent.futures import ThreadPoolExecutor

    from somvq import KSOM

    before = _blas_counts()
    if max(before, default=1) < 2:
        pytest.skip("the BLAS runs one thread here: nothing to hold")
    X = np.random.default_rng(0).normal(size=(3000, 8))
    som = KSOM(grid=(8, 8), n_epochs=2, random_state=0).fit(X)
    expected = som.predict(X)
    for _ in range(5):
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(som.predict, [X] * 8))
            fits = list(
                pool.map(lambda s: KSOM(grid=(4, 4), n_epochs=2, random_state=s).fit(X).codebook_, range(4))
            )
        assert all(np.array_equal(r, expected) for r in results)
        assert all(
            np.array_equal(f, KSOM(grid=(4, 4), n_epochs=2, random_state=s).fit(X).codebook_)
            for s, f in enumerate(fits)
        )
        assert _blas_counts() == before


@pytest.mark.parametrize("last_out", ["first in", "second in"])
def test_the_blas_hold_is_counted_across_threads(last_out):
    """The race above, made deterministic: thread A holds, thread B holds, one leaves, then
    the other. The BLAS is back to its count after both, and searches inside read the count
    from before the hold (not 1: they ran serially). (What threadpoolctl reports inside
    depends on the thread asking with some OpenBLAS builds: not asserted.)"""
    import threading

    from somvq._kernels.cpu_bmu import blas_at_one_thread, blas_threads

    counts = _blas_counts
    before = counts()
    if max(before, default=1) < 2:
        pytest.skip("the BLAS runs one thread here: nothing to hold")
    entered = [threading.Event(), threading.Event()]
    leave = [threading.Event(), threading.Event()]
    seen = {}

    def hold(i):
        with blas_at_one_thread():
            entered[i].set()
            leave[i].wait(5)
            seen[i] = blas_threads()

    threads = [threading.Thread(target=hold, args=(i,)) for i in (0, 1)]
    threads[0].start()
    entered[0].wait(5)
    threads[1].start()
    entered[1].wait(5)
    order = (0, 1) if last_out == "second in" else (1, 0)
    for i in order:
        leave[i].set()
        threads[i].join(5)
    assert seen == {0: max(before), 1: max(before)}
    assert counts() == before


@pytest.mark.parametrize("where", ["setting", "restoring"])
def test_a_hold_cut_short_by_an_interrupt_is_finished_by_the_next(monkeypatch, where):
    """A Ctrl-C inside threadpoolctl's calls (setting the limit on entry, or putting the
    counts back on exit) left every BLAS at one thread for the rest of the process (found
    by a bug hunt: ~1 interrupted fit in 40). The counts are saved before they change and
    cleared only once back: an interrupted entry is undone on the way out, an interrupted
    restore by the next hold."""
    from somvq._kernels import cpu_bmu

    before = _blas_counts()
    if max(before, default=1) < 2:
        pytest.skip("the BLAS runs one thread here: nothing to hold")
    real = cpu_bmu._set_blas_threads
    calls = []

    def interrupted(counts):
        calls.append(list(counts))
        if where == "setting" and len(calls) == 1:  # the first call sets the limit
            real(counts[:1])  # one library at 1, then the interrupt
            raise KeyboardInterrupt
        if where == "restoring" and len(calls) == 2:  # the second puts the counts back
            raise KeyboardInterrupt
        real(counts)

    monkeypatch.setattr(cpu_bmu, "_set_blas_threads", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with cpu_bmu.blas_at_one_thread():
            pass
    monkeypatch.setattr(cpu_bmu, "_set_blas_threads", real)
    assert cpu_bmu._holders == 0
    if where == "restoring":
        assert max(_blas_counts()) == 1  # cut short; the next search still sees the count
        assert cpu_bmu.blas_threads() == max(before)  # from before, so it holds and restores
        with cpu_bmu.blas_at_one_thread():
            assert cpu_bmu.blas_threads() == max(before)
    assert _blas_counts() == before and cpu_bmu._saved_counts is None
    from somvq import KSOM

    X = np.random.default_rng(0).normal(size=(3000, 8)).astype(np.float32)
    KSOM(grid=(4, 4), n_epochs=2, random_state=0).fit(X)  # a whole fit leaves them as they were
    assert _blas_counts() == before
