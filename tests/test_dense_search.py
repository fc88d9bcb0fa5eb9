"""The dense batch search's thread split: statistics by column ranges, same bits as one thread."""

import threading

import numpy as np
import pytest

from somvq._kernels import cpu_bmu, cpu_sync

from .threads import IdlePool, runtime_errors_in_thread, wait_for


def _data(n, d, k, dtype, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, d)) + offset).astype(dtype)
    W = (rng.normal(size=(k, d)) + offset).astype(dtype)
    return X, W


def _reference(X, W):
    """Winners (float64 brute force, lowest index on ties) and the statistics added one row
    at a time in row order: the additions the search must reproduce bit for bit."""
    sq = ((X[:, None, :].astype(np.float64) - W[None, :, :].astype(np.float64)) ** 2).sum(-1)
    bmu = sq.argmin(1)
    counts = np.zeros(W.shape[0])
    sums = np.zeros(W.shape, dtype=np.float64)
    for i, k in enumerate(bmu):
        counts[k] += 1.0
        sums[k] += X[i].astype(np.float64)
    return bmu, counts, sums


def _search(X, W, n_threads, chunk_rows=64):
    bmu = np.empty(X.shape[0], dtype=np.int64)
    sq = np.empty(X.shape[0])
    counts, sums = np.zeros(W.shape[0]), np.zeros(W.shape)
    cpu_bmu.best_matching_units(X, W, None, bmu, sq, counts, sums, chunk_rows=chunk_rows, n_threads=n_threads)
    return bmu, sq, counts, sums


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 3, 8, 17, 40])
@pytest.mark.parametrize("n_threads", [2, 3, 4])
def test_column_split_statistics_are_the_serial_bits(monkeypatch, dtype, d, n_threads):
    """2-4 threads (more than this machine's cores: the cap is lifted) give the winners,
    distances, counts and sums of one thread, bit for bit, and the row-order additions."""
    monkeypatch.setattr(cpu_bmu, "_CPU_COUNT", 8)
    X, W = _data(1000, d, 19, dtype, seed=d, offset=1e4 if d == 17 else 0.0)
    one = _search(X, W, 1)
    many = _search(X, W, n_threads)
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)
    ref_bmu, ref_counts, ref_sums = _reference(X, W)
    np.testing.assert_array_equal(many[0], ref_bmu)
    np.testing.assert_array_equal(many[2], ref_counts)
    np.testing.assert_array_equal(many[3], ref_sums)


@pytest.mark.parametrize("n", [700, 2500])
@pytest.mark.parametrize("layout", ["fortran", "strided"])
def test_rows_in_another_layout_give_the_same_bits(monkeypatch, n, layout):
    """Rows in another layout are copied ``COPY_BLOCKS`` blocks at a time (never the whole
    of X) and searched on two threads: the winners, distances and statistics of C rows,
    bit for bit, one part after the other (2500 rows in blocks of 63: three parts)."""
    X, W = _data(n, 9, 12, np.float64, seed=3)
    ref = _search(X, W, 1)
    other = np.asfortranarray(X) if layout == "fortran" else np.repeat(X, 2, axis=0)[::2]
    assert not other.flags.c_contiguous
    parts = []
    original = cpu_bmu._parallel_search
    monkeypatch.setattr(cpu_bmu, "_parallel_search", lambda X, *a: parts.append(len(X)) or original(X, *a))
    got = _search(other, W, 2)
    span = cpu_bmu.balanced_chunk_rows(n, 64) * cpu_bmu.COPY_BLOCKS
    assert parts == [min(n - s, span) for s in range(0, n, span)]
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)


def test_caller_does_every_block_and_column_range_when_the_worker_never_starts(monkeypatch):
    X, W = _data(900, 20, 15, np.float32, seed=5)
    ref = _search(X, W, 1)
    monkeypatch.setattr(cpu_bmu, "_pool", lambda n: IdlePool())
    got = _search(X, W, 2)
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)


def _failing_pass(caller: list, fail_on_worker: bool, claim_first: bool):
    """A :func:`cpu_bmu.search_pass` that fails on one thread, optionally after claiming
    a block it never flags; ``caller[0]`` is the thread that calls the search.

    When the worker fails, the order is fixed so that every run takes the same path:
    with ``claim_first`` the caller searches only after the worker's claim, and the
    worker fails once the caller sleeps waiting for the claimed block; without, the
    caller starts after the worker's failure (recorded before the abort flag is set).
    """
    original = cpu_bmu.search_pass

    def search_pass(*args):
        sync = args[-1]
        on_worker = threading.current_thread() is not caller[0]
        if on_worker != fail_on_worker:
            if fail_on_worker and claim_first:
                wait_for(lambda: sync[cpu_bmu.BLOCKS_CLAIMED] >= 1)
            elif fail_on_worker:
                wait_for(lambda: sync[cpu_bmu.ABORT] != 0)
            return original(*args)
        if claim_first:
            sync[cpu_bmu.BLOCKS_CLAIMED] += 1
            if fail_on_worker:
                wait_for(lambda: sync[cpu_sync.SLEEPERS] > 0)
        raise RuntimeError("block failed")

    return search_pass


@pytest.mark.parametrize("fail_on_worker", [True, False])
@pytest.mark.parametrize("claim_first", [True, False])
@pytest.mark.parametrize("statistics", [True, False])
def test_an_error_on_any_thread_reaches_the_caller(monkeypatch, fail_on_worker, claim_first, statistics):
    X, W = _data(900, 6, 10, np.float64, seed=6)
    caller_thread: list = []
    monkeypatch.setattr(cpu_bmu, "search_pass", _failing_pass(caller_thread, fail_on_worker, claim_first))
    bmu, sq = np.empty(900, dtype=np.int64), np.empty(900)
    counts, sums = (np.zeros(10), np.zeros((10, 6))) if statistics else (None, None)
    errors = runtime_errors_in_thread(
        lambda: cpu_bmu.best_matching_units(X, W, None, bmu, sq, counts, sums, chunk_rows=64, n_threads=2),
        caller_thread,
    )
    assert [str(e) for e in errors] == ["block failed"]


def test_outputs_in_other_layouts_and_dtypes_are_filled():
    """Winners into a strided view and distances into a float32 buffer:
    the pass writes into its own arrays and copies them out."""
    X, W = _data(900, 12, 14, np.float32, seed=8)
    ref = _search(X, W, 1)
    bmu_base = np.zeros((900, 2), dtype=np.int64)
    sq32 = np.zeros(900, dtype=np.float32)
    cpu_bmu.best_matching_units(X, W, None, bmu_base[:, 0], sq32, chunk_rows=64, n_threads=2)
    np.testing.assert_array_equal(bmu_base[:, 0], ref[0])
    assert not bmu_base[:, 1].any()
    np.testing.assert_array_equal(sq32, ref[1].astype(np.float32))


@pytest.mark.parametrize("d", [1, 2, 7, 8, 15, 16, 17, 64, 784])
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_column_parts_cover_the_columns(d, parts):
    cuts = cpu_bmu._column_parts(d, parts)
    assert cuts.dtype == np.int64 and len(cuts) == parts + 1
    assert cuts[0] == 0 and cuts[-1] == d
    assert (np.diff(cuts) >= 0).all()
    if d >= 8 * parts:
        assert (cuts[1:-1] % 8 == 0).all()  # inner boundaries on 64-byte lines of the float64 sums
    widths = np.diff(cuts)
    assert widths.max() - widths.min() <= (8 if d >= 8 * parts else 1)


def test_accumulate_columns_equals_accumulate_statistics():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 13)).astype(np.float32)
    bmu = rng.integers(0, 9, 300)
    c1, s1 = np.zeros(9), np.zeros((9, 13))
    cpu_bmu.accumulate_statistics(X, bmu, c1, s1)
    c2, s2 = np.zeros(9), np.zeros((9, 13))
    cpu_bmu.accumulate_columns(X, bmu, c2, s2, 0, 5, True)
    cpu_bmu.accumulate_columns(X, bmu, c2, s2, 5, 13, False)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(s1, s2)
