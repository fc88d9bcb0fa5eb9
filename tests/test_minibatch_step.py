"""The compiled mini-batch step (somvq/_kernels/cpu_minibatch_step.py, issue 17 item 2).

It must give the same bits as the step-by-step loop of ``minibatch_pass_inplace`` (counts,
sums, EMA state, codebook, summed error) on every path it takes: one or several blocks per
step, one or two threads, the plain, centred and scaled frames of the exact search, the
separable and "none" smoothings, both update rules, float32/float64; it hands a diverged
codebook back to the loop; and whole fits match tests/naive.py's mini-batch reference.
"""

import math
import os

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from somvq import KSOM, algorithms
from somvq._kernels import cpu_bmu, cpu_minibatch_step
from somvq.grids import Grid
from somvq.neighbourhoods import Neighbourhood
from somvq.schedules import Schedule

from . import naive


@pytest.fixture
def compiled_calls(monkeypatch):
    """The passes that took the compiled path: the rows each did in compiled steps (the
    loop did the rest; None for a pass that raised)."""
    calls = []
    original = cpu_minibatch_step.minibatch_pass

    def recording(*args, **kwargs):
        calls.append(None)
        result = original(*args, **kwargs)
        calls[-1] = result[1]
        return result

    monkeypatch.setattr(cpu_minibatch_step, "minibatch_pass", recording)
    return calls


def _pass(compiled, X, W0, order, nb, grid, t0, batch_size, update, chunk_rows, monkeypatch):
    monkeypatch.setattr(algorithms, "_MINIBATCH_COMPILED", compiled)
    monkeypatch.setattr(algorithms, "_MIN_COMPILED_STEPS", 1)  # short passes compiled too
    W = W0.copy()
    N = np.linspace(0.5, 2.0, W0.shape[0])
    m = W0.astype(np.float64) * N[:, None]
    errors = []
    for t in (t0, t0 + 50):  # two passes: the second starts from the first's state
        errors.append(
            algorithms.minibatch_pass_inplace(
                X,
                order,
                W,
                N,
                m,
                nb,
                grid,
                t,
                batch_size=batch_size,
                decay=0.9,
                eps=1e-4,
                update=update,
                chunk_rows=chunk_rows,
            )
        )
    return W, N, m, errors


def _assert_same_bits(new, old):
    """Two ``_pass`` results: codebook, EMA counts and sums bit for bit (NaN where the
    other has NaN), the same errors."""
    for a, b in zip(new[:3], old[:3]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_equal(new[3], old[3])


def _neighbourhood(kind):
    schedule = Schedule("inverse_time", 3.0, 0.5, 0.1, 60.0)
    return Neighbourhood(kind, schedule, 0.2)


FRAMES = {
    "plain": (0.0, 1.0),  # centred data: no centre, no scale
    "centred": (1000.0, 1.0),  # off the origin: the frame's centre
    "scaled": (0.0, 1e-12),  # tiny radius: a power-of-two scale
    "far": (1e4, 3e-2),  # centre and float32 cancellation together (ulp 1e-3)
}


@pytest.mark.parametrize("frame", FRAMES)
@pytest.mark.parametrize("kind", ["hard", "gaussian", "none"])
@pytest.mark.parametrize("grid", [Grid((4, 5)), Grid((3, 4), periodic=(True, False)), Grid((9,))], ids=repr)
@pytest.mark.parametrize("update", ["all", "written"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_pass_is_the_step_by_step_loop_bit_for_bit(
    frame, kind, grid, update, dtype, compiled_calls, monkeypatch
):
    offset, spread = FRAMES[frame]
    rng = np.random.default_rng(11)
    X = (offset + spread * rng.normal(size=(613, 6))).astype(dtype)
    W0 = X[rng.choice(613, grid.n_units, replace=False)].copy()
    order = rng.permutation(613)
    nb = _neighbourhood(kind)
    # batch 100 in 32-row blocks: 4 blocks a step (claimed by two threads), last batch 13 rows
    new = _pass(True, X, W0, order, nb, grid, 2, 100, update, 32, monkeypatch)
    assert len(compiled_calls) == 2
    old = _pass(False, X, W0, order, nb, grid, 2, 100, update, 32, monkeypatch)
    assert len(compiled_calls) == 2
    _assert_same_bits(new, old)
    assert new[0].dtype == dtype and not np.array_equal(new[0], W0)


@pytest.mark.parametrize(
    "batch_size, n_rows",
    [(1, 301), (2, 301), (37, 3001), (512, 3001), (1024, 3001), (1500, 3001), (5000, 3001), (1100, 2500)],
)
def test_batch_sizes_and_blocks(batch_size, n_rows, compiled_calls, monkeypatch):
    """Batches of one row, one block, two blocks (1024 = 2 x 512), uneven and whole-pass;
    1100 of 2500 rows: 4 blocks of 275 rows, then a last batch of one 300-row block."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(n_rows, 8)).astype(np.float32)
    grid = Grid((6, 7))
    W0 = X[:42].copy()
    order = rng.permutation(X.shape[0])
    nb = _neighbourhood("hard")
    new = _pass(True, X, W0, order, nb, grid, 0, batch_size, "all", 512, monkeypatch)
    old = _pass(False, X, W0, order, nb, grid, 0, batch_size, "all", 512, monkeypatch)
    assert compiled_calls
    _assert_same_bits(new, old)


@pytest.mark.parametrize("layout", ["fortran", "strided", "readonly"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_are_gathered_from_any_layout(layout, dtype, compiled_calls, monkeypatch):
    """The search tasks gather the rows from the data as given (any strides, read-only),
    with repeated indices and np.take's negative ones: the loop's bits (it uses np.take)."""
    rng = np.random.default_rng(21)
    base = (50.0 + 3.0 * rng.normal(size=(1500, 20))).astype(dtype)
    X = {
        "fortran": np.asfortranarray(base),
        "strided": base[:, ::2],  # every other column: not contiguous
        "readonly": base.copy(),
    }[layout]
    X.flags.writeable = layout != "readonly"
    grid = Grid((5, 6))
    W0 = np.ascontiguousarray(X[rng.choice(X.shape[0], grid.n_units, replace=False)])
    order = rng.integers(-X.shape[0], X.shape[0], size=2600)  # repeats, negative from the end
    nb = _neighbourhood("gaussian")
    new = _pass(True, X, W0, order, nb, grid, 0, 256, "all", 128, monkeypatch)
    old = _pass(False, X, W0, order, nb, grid, 0, 256, "all", 128, monkeypatch)
    assert compiled_calls
    _assert_same_bits(new, old)


@pytest.mark.parametrize("bad", [1500, -1501, 10**12])
def test_an_index_out_of_range_raises_before_any_step(bad, compiled_calls, monkeypatch):
    monkeypatch.setattr(algorithms, "_MIN_COMPILED_STEPS", 1)
    rng = np.random.default_rng(22)
    X = rng.normal(size=(1500, 4)).astype(np.float32)
    grid = Grid((3, 4))
    W = X[:12].copy()
    N, m = np.ones(12), W.astype(np.float64)
    before = (W.copy(), N.copy(), m.copy())
    order = rng.permutation(1500)
    order[700] = bad
    with pytest.raises(IndexError, match=f"index {bad} is out of bounds for axis 0 with size 1500"):
        algorithms.minibatch_pass_inplace(
            X, order, W, N, m, _neighbourhood("gaussian"), grid, 0, batch_size=100, decay=0.9, eps=1e-4
        )
    assert compiled_calls  # the compiled pass's own check, not np.take's
    for a, b in zip((W, N, m), before):
        np.testing.assert_array_equal(a, b)


def test_one_and_two_threads_give_the_same_bits(monkeypatch):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(4000, 16)).astype(np.float32)
    grid = Grid((8, 8))
    W0 = X[:64].copy()
    order = rng.permutation(4000)
    nb = _neighbourhood("gaussian")
    two = _pass(True, X, W0, order, nb, grid, 0, 1024, "all", 128, monkeypatch)
    with threadpool_limits(limits=1, user_api="blas"):
        one = _pass(True, X, W0, order, nb, grid, 0, 1024, "all", 128, monkeypatch)
    _assert_same_bits(one, two)


def test_dense_smoothing_stays_step_by_step(compiled_calls, monkeypatch):
    """Hexagonal grids and non-separable kernels (dense H) take the loop, as before."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 4))
    for grid, kind in [(Grid((4, 4), topology="hexagonal"), "hard"), (Grid((4, 4)), "bubble")]:
        _pass(
            True,
            X,
            X[:16].copy(),
            rng.permutation(300),
            _neighbourhood(kind),
            grid,
            0,
            64,
            "all",
            512,
            monkeypatch,
        )
    assert not compiled_calls


def test_a_diverged_codebook_goes_back_to_the_loop(compiled_calls, monkeypatch):
    """A NaN unit (no finite frame): the rest of the pass runs step by step and
    gives what the loop gives, NaN for NaN."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 3))
    grid = Grid((3, 3))
    W0 = X[:9].copy()
    W0[4] = np.nan  # a diverged unit: no finite frame from the start
    order = rng.permutation(400)
    nb = _neighbourhood("hard")
    with np.errstate(all="ignore"):
        new = _pass(True, X, W0, order, nb, grid, 0, 64, "all", 512, monkeypatch)
        old = _pass(False, X, W0, order, nb, grid, 0, 64, "all", 512, monkeypatch)
    assert compiled_calls
    _assert_same_bits(new, old)


@pytest.mark.parametrize("lanes", [False, True], ids=["gemm", "fused"])
def test_the_search_is_exact_far_from_the_origin(lanes):
    """Winners of the compiled steps are the float64 brute-force ones (issue 11's case),
    in the GEMM form and the fused one."""
    rng = np.random.default_rng(7)
    X = (1000.0 + rng.normal(size=(1024, 4))).astype(np.float32)
    W = X[:16].copy()
    bmu = np.empty(1024, dtype=np.int64)
    sq = np.empty(1024)
    from somvq._kernels.cpu_bmu import _constants

    mean, centre = np.empty(4), np.zeros(4, np.float32)
    aug, frame = np.empty((16, 5), np.float32), np.zeros(4)
    cpu_bmu.prepare_frame(W, mean, centre, aug, 2.0**30, frame)
    assert frame[cpu_bmu.CENTRED] == 1.0
    scratch = cpu_minibatch_step._scratch(1024, 16, 4, np.float32)
    c = _constants(np.float32, 4)
    cpu_bmu.search_block(
        X, 0, 1024, *scratch, W, aug, centre, frame, c.kappa, c.overflow, c.up, bmu, sq, lanes
    )
    np.testing.assert_array_equal(bmu, naive.bmu(X, W))
    direct = ((X.astype(float) - W.astype(float)[bmu]) ** 2).sum(1)
    np.testing.assert_allclose(sq, direct, rtol=1e-12)


@pytest.mark.parametrize("update", ["all", "written"])
@pytest.mark.parametrize("shape, periodic", [((4, 5), False), ((3, 6), True), ((7,), False)])
def test_fit_equals_naive_reference(shape, periodic, update):
    """KSOM mini-batch fits (the compiled step: several blocks a step) against the naive
    transcription of docs/algorithms.md §7 with the paper's hard kernel."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(2500, 4))
    K = math.prod(shape)
    W0 = rng.normal(scale=0.5, size=(K, 4))
    n_epochs, batch_size, decay, eps, shrink = 2, 1100, 0.8, 1e-5, 0.3
    distances = naive.grid_distances(shape, "rectangular", periodic)
    W, N, m = W0.copy(), np.ones(K), W0.copy()
    t = 0
    orders = np.random.default_rng(3)
    for _ in range(n_epochs):
        order = orders.permutation(len(X))
        for start in range(0, len(X), batch_size):
            H = naive.paper_hard(distances, t, shrink)
            N, m, W = naive.minibatch_ksom_step(
                X[order[start : start + batch_size]], W, N, m, H, decay, eps, update
            )
            t += 1
    som = KSOM(
        grid=shape,
        periodic=periodic,
        algorithm="minibatch",
        neighbourhood="hard",
        shrink=shrink,
        batch_size=batch_size,
        decay=decay,
        eps=eps,
        update=update,
        n_epochs=n_epochs,
        init=W0,
        random_state=3,
    )
    som.fit(X)
    np.testing.assert_allclose(som.ema_count_, N, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(som.ema_sum_, m, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(som.codebook_, W, rtol=1e-10, atol=1e-12)
    assert som.n_steps_ == t


def _failing_pass(monkeypatch, failing_thread):
    """Runs two-thread passes whose ``run_steps`` raises on ``failing_thread`` before the
    other thread starts its work; returns the exception raised (or None), and whether the
    pass came back at all (a watchdog thread: a hang must fail the test, not block it).
    (A worker that fails after the caller has done every task alone changes nothing:
    ``cpu_bmu.run_on_threads`` does not wait for it.)"""
    import threading
    import time

    original = cpu_minibatch_step.run_steps

    def failing(*args):
        if threading.current_thread().name.startswith(failing_thread):
            raise RuntimeError("thread failed")
        time.sleep(0.01)  # the other thread fails first
        return original(*args)

    monkeypatch.setattr(cpu_minibatch_step, "run_steps", failing)
    rng = np.random.default_rng(9)
    X = rng.normal(size=(4096, 4)).astype(np.float32)
    outcome = {}

    def target():
        try:
            with threadpool_limits(limits=2, user_api="blas"):
                _pass(True, X, X[:9].copy(), rng.permutation(4096), _neighbourhood("hard"), Grid((3, 3)), 0,
                      1024, "all", 64, monkeypatch)  # fmt: skip
        except BaseException as exc:
            outcome["error"] = exc

    watchdog = threading.Thread(target=target, daemon=True, name="somvq-test-caller")
    watchdog.start()
    watchdog.join(timeout=120)
    return outcome.get("error"), not watchdog.is_alive()


@pytest.mark.parametrize("failing_thread", ["somvq-bmu", "somvq-test-caller"])
def test_an_error_on_either_thread_reaches_the_caller_without_a_hang(failing_thread, monkeypatch):
    """No hang and no leaked thread: the failing thread sets the abort flag, the other
    leaves its wait (or finishes the work alone), and the pass raises the error."""
    import threading

    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: the pass runs no worker thread")

    def threads(pool):  # the search pools' workers (kept for the process), or all others
        return {t for t in threading.enumerate() if t.name.startswith("somvq-bmu") == pool}

    before, workers = threads(False), threads(True)
    # the pass's worker (of the search pool), or its calling thread (the watchdog)
    error, returned = _failing_pass(monkeypatch, failing_thread)
    assert returned, "the pass hung after an error on one of its threads"
    assert isinstance(error, RuntimeError) and "thread failed" in str(error)
    assert threads(False) == before
    # at most the one worker of a two-thread pass's pool is new (other tests' pools,
    # of as many workers as their machine's cores, may already be there)
    assert len(threads(True) - workers) <= 1


@pytest.mark.parametrize("shape, n_features", [((1,), 3), ((1, 1), 1), ((2, 1), 1), ((3, 3), 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_unit_and_one_feature(shape, n_features, dtype, compiled_calls, monkeypatch):
    """K = 1 makes the augmented codebook's transpose both C- and F-contiguous; D = 1."""
    rng = np.random.default_rng(10)
    X = rng.normal(size=(1500, n_features)).astype(dtype)
    grid = Grid(shape)
    W0 = X[: grid.n_units].copy()
    order = rng.permutation(1500)
    nb = _neighbourhood("hard")
    new = _pass(True, X, W0, order, nb, grid, 0, 1100, "all", 512, monkeypatch)
    old = _pass(False, X, W0, order, nb, grid, 0, 1100, "all", 512, monkeypatch)
    assert compiled_calls
    _assert_same_bits(new, old)


@pytest.mark.parametrize(
    "n_features, loop_steps, compiled_steps",
    [(4, 2, 3), (algorithms._FEW_FEATURES, 2, 3), (algorithms._FEW_FEATURES + 1, 7, 8)],
)
def test_a_pass_of_few_steps_runs_step_by_step(n_features, loop_steps, compiled_steps, compiled_calls):
    # the compiled pass's set-up is not won back over fewer steps (more with many features)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(840, n_features))
    fits = []
    for steps in (loop_steps, compiled_steps):
        som = KSOM(grid=(3, 3), algorithm="minibatch", batch_size=840 // steps, n_epochs=1, random_state=0)
        fits.append(som.fit(X))
        assert len(compiled_calls) == (steps == compiled_steps)
    assert all(np.isfinite(som.codebook_).all() for som in fits)


# ------------------------------------------------ the pass as one compiled call per thread
def _thread_pass(n_threads, X, W0, order, nb, grid, batch_size, chunk_rows, update, monkeypatch):
    monkeypatch.setattr(cpu_minibatch_step, "_MAX_THREADS", n_threads)
    with threadpool_limits(limits=2, user_api="blas"):
        return _pass(True, X, W0, order, nb, grid, 3, batch_size, update, chunk_rows, monkeypatch)


@pytest.mark.parametrize("kind", ["hard", "gaussian", "none"])
@pytest.mark.parametrize(
    "grid", [Grid((5, 6)), Grid((4, 6), periodic=(True, True)), Grid((11,)), Grid((1, 7))], ids=repr
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features", [1, 5, 19, 40])
def test_two_threads_give_the_bits_of_one_and_of_the_loop(kind, grid, dtype, n_features, monkeypatch):
    """The update in two column ranges (split on a 64-byte line of the codebook's dtype:
    D = 19 at 8 in float64, one range in float32; D = 40 at 16) or one range (D = 1, 5),
    with two threads, against the one-thread pass and the loop."""
    rng = np.random.default_rng(12)
    X = (1e4 + rng.normal(size=(1500, n_features))).astype(dtype)  # offset 1e4: a centred frame
    W0 = X[rng.choice(1500, grid.n_units, replace=False)].copy()
    order = rng.permutation(1500)
    nb = _neighbourhood(kind)
    two = _thread_pass(2, X, W0, order, nb, grid, 300, 64, "all", monkeypatch)
    one = _thread_pass(1, X, W0, order, nb, grid, 300, 64, "all", monkeypatch)
    loop = _pass(False, X, W0, order, nb, grid, 3, 300, "all", 64, monkeypatch)
    for a, b, c in zip(two[:3], one[:3], loop[:3]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert two[3] == one[3] == loop[3]


@pytest.mark.parametrize(
    "batch_size, chunk_rows",
    [
        (1, 64),
        (7, 64),
        (64, 64),
        (65, 64),
        (128, 64),
        (200, 25),
        (256, 32),
        (333, 512),
        (2047, 512),
        (2500, 256),
    ],
)
@pytest.mark.parametrize("update", ["all", "written"])
def test_two_threads_batch_sizes_and_blocks_per_step(batch_size, chunk_rows, update, monkeypatch):
    """Batches of one row to the whole pass, 1 to 8 blocks a step (the blocks claimed by
    whichever thread is free), a last short batch."""
    rng = np.random.default_rng(13)
    X = rng.normal(size=(2500, 36)).astype(np.float32)  # two column ranges (at 16)
    grid = Grid((6, 7))
    W0 = X[:42].copy()
    order = rng.permutation(2500)
    nb = _neighbourhood("gaussian")
    two = _thread_pass(2, X, W0, order, nb, grid, batch_size, chunk_rows, update, monkeypatch)
    loop = _pass(False, X, W0, order, nb, grid, 3, batch_size, update, chunk_rows, monkeypatch)
    _assert_same_bits(two, loop)


def test_two_threads_hand_a_diverged_codebook_back_to_the_loop(compiled_calls, monkeypatch):
    """A step that leaves a non-finite unit (a NaN row: its unit's sums become NaN) stops
    both threads; the loop finishes the pass with the bits it would have had."""
    rng = np.random.default_rng(14)
    X = rng.normal(size=(3000, 3))
    X[1700] = np.nan  # the second step's winner of this row becomes NaN
    grid = Grid((3, 3))
    W0 = X[:9].copy()
    order = np.arange(3000)
    nb = _neighbourhood("hard")
    done = compiled_calls
    with np.errstate(all="ignore"):
        two = _thread_pass(2, X, W0, order, nb, grid, 1000, 256, "all", monkeypatch)
    assert done == [2000, 0]  # two steps compiled, then the loop; the second pass: the loop
    with np.errstate(all="ignore"):
        loop = _pass(False, X, W0, order, nb, grid, 3, 1000, "all", 256, monkeypatch)
    assert not np.isfinite(loop[0]).all()
    _assert_same_bits(two, loop)


@pytest.mark.parametrize("kind", ["hard", "gaussian", "none"])
@pytest.mark.parametrize("schedule", ["inverse_time", "exponential", "linear"])
@pytest.mark.parametrize("grid", [Grid((5, 6)), Grid((4, 7), periodic=(True, False)), Grid((9,))], ids=repr)
def test_precomputed_factors_are_the_smoothing_operators(kind, schedule, grid):
    """The factors and scale of every step, computed for a chunk of steps at once, have
    the bits of smoothing_operator at that step."""
    from somvq.neighbourhoods import IdentitySmoothing, _axis_offsets, smoothing_operator

    nb = Neighbourhood(kind, Schedule(schedule, 4.0, 0.3, 0.1, 150.0), 0.05)
    offsets = [_axis_offsets(n, p) for n, p in zip(grid.shape, grid.periodic)]
    t0, n_steps = 37, 130
    smooth, f0s, f1s, scales = cpu_minibatch_step._step_factors(nb, grid, t0, n_steps, offsets)
    for s in range(n_steps):
        op = smoothing_operator(nb, grid, t0 + s)
        if isinstance(op, IdentitySmoothing):
            assert not smooth
            continue
        factors = op.factors if len(op.factors) == 2 else [np.ones((1, 1)), op.factors[0]]
        np.testing.assert_array_equal(f0s[s if len(f0s) > 1 else 0], factors[0])
        np.testing.assert_array_equal(f1s[s if len(f1s) > 1 else 0], factors[1])
        assert scales[s if len(scales) > 1 else 0] == op.scale


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 255, 256, 1000, 1024, 4097, 20000])
def test_the_step_error_is_numpys_sum(n):
    """The compiled pairwise sum gives NumPy's ``sum`` bits (the loop sums each step's
    squared distances with NumPy)."""
    rng = np.random.default_rng(n)
    a = rng.exponential(size=n + 5) * 10.0 ** rng.integers(-8, 8, size=n + 5)
    assert cpu_minibatch_step._pairwise_sum(a, 3, n) == float(a[3 : 3 + n].sum())


def test_spin_barrier_and_atomics_on_two_threads():
    """Barriers keep two threads in step (each sees the other's writes), a late thread
    (past the spins: the yield path) is waited for, and the atomic counter loses no add."""
    import threading
    import time

    from numba import njit

    from somvq._kernels import cpu_sync

    @njit(nogil=True)
    def run(sync, tid, n, seen, counter):
        for g in range(1, n + 1):
            seen[tid] = g
            cpu_sync.atomic_add(counter, 0, 1)
            if not cpu_sync.barrier(sync, g, 2):
                return -1
            if seen[1 - tid] < g:
                return -2
        return n

    sync = np.zeros(cpu_sync.SYNC_SIZE, dtype=np.int64)
    seen, counter, out = np.zeros(2, dtype=np.int64), np.zeros(1, dtype=np.int64), [0, 0]
    run(np.zeros(cpu_sync.SYNC_SIZE, dtype=np.int64), 0, 0, seen, counter)  # compile

    def late(tid):
        if tid == 1:
            time.sleep(0.05)  # ~1000x the spin phase: the other thread yields meanwhile
        out[tid] = run(sync, tid, 20000, seen, counter)

    thread = threading.Thread(target=late, args=(1,))
    thread.start()
    late(0)
    thread.join(timeout=60)
    assert out == [20000, 20000] and counter[0] == 40000
    assert sync[cpu_sync.ARRIVED] == 40000


def test_an_abort_releases_a_waiting_thread():
    import threading

    from somvq._kernels import cpu_sync

    sync = np.zeros(cpu_sync.SYNC_SIZE, dtype=np.int64)
    out = []
    thread = threading.Thread(target=lambda: out.append(cpu_sync.barrier(sync, 1, 2)))
    thread.start()
    sync[cpu_sync.ABORT] = 1
    thread.join(timeout=60)
    assert out == [False]


def test_the_compiled_pass_loads_from_the_cache_in_a_fresh_process(tmp_path):
    """cache=True with the libc symbol (sched_yield) and the pause intrinsic: a fresh
    process loads run_steps and the barrier from the on-disk cache and runs them."""
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from somvq._kernels import cpu_minibatch_step as m, cpu_sync as s\n"
        "sync = np.zeros(s.SYNC_SIZE, dtype=np.int64)\n"
        "assert s.barrier(sync, 1, 1) and s.wait_until(sync, 0, 0)\n"
        "hits = sum(m.run_steps.stats.cache_hits.values()), sum(s.barrier.stats.cache_hits.values())\n"
        "misses = sum(m.run_steps.stats.cache_misses.values()), sum(s.barrier.stats.cache_misses.values())\n"
        "print(hits, misses)\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr
    assert runs[1].stdout.strip() == "(2, 1) (0, 0)", runs[1].stdout


def test_compiled_pass_beyond_the_float64_squares(compiled_calls, monkeypatch):
    """A float64 codebook spread over 1e200 has a finite frame (a power-of-two scale from
    ``sqrt(D) max |w - c|``): the compiled pass runs every step, with the loop's bits, and
    the squared errors are float64's overflow."""
    rng = np.random.default_rng(12)
    X = 1e200 * rng.normal(size=(400, 5))
    grid = Grid((3, 4))
    W0 = X[rng.choice(400, grid.n_units, replace=False)].copy()
    order = rng.permutation(400)
    new = _pass(True, X, W0, order, _neighbourhood("hard"), grid, 0, 64, "all", 32, monkeypatch)
    assert compiled_calls == [400, 400]  # every row of both passes in the compiled steps
    old = _pass(False, X, W0, order, _neighbourhood("hard"), grid, 0, 64, "all", 32, monkeypatch)
    _assert_same_bits(new, old)
    assert np.isposinf(new[3]).all() and np.isfinite(new[0]).all()


def _fork_child_fit(X):
    som = KSOM(grid=(8, 8), algorithm="minibatch", batch_size=1024, n_epochs=2, random_state=0).fit(X)
    return som.codebook_


@pytest.mark.skipif(not hasattr(os, "fork") or (os.cpu_count() or 1) < 2, reason="fork, two CPUs")
def test_a_forked_child_runs_the_pass_with_the_parents_pool_thread_gone():
    """The pass's second thread is the searches' pool worker, started in the parent: a
    child made by fork has the pool but not its thread. Its passes must neither hang nor
    change: the calling thread claims every task (cpu_bmu.run_on_threads)."""
    import multiprocessing

    X = np.random.default_rng(4).normal(size=(6000, 8)).astype(np.float32)
    parent = _fork_child_fit(X)  # starts the pool's thread here
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_fork_child_fit, (X,)).get(timeout=120)
    np.testing.assert_array_equal(child, parent)
