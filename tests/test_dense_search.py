"""The dense batch search's thread split: statistics by column ranges, same bits as one thread."""

from concurrent.futures import Future

import numpy as np
import pytest

from somvq._kernels import cpu_bmu


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


def test_fortran_ordered_rows_in_parallel():
    X, W = _data(700, 9, 12, np.float64, seed=3)
    ref = _search(X, W, 1)
    got = _search(np.asfortranarray(X), W, 2)
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)


class _IdlePool:
    """A pool whose workers never start a job (busy elsewhere): the caller does all."""

    def submit(self, fn, *args):
        return Future()


def test_caller_does_every_block_and_column_range_when_the_worker_never_starts(monkeypatch):
    X, W = _data(900, 20, 15, np.float32, seed=5)
    ref = _search(X, W, 1)
    monkeypatch.setattr(cpu_bmu, "_pool", lambda n: _IdlePool())
    got = _search(X, W, 2)
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)


def test_an_error_in_a_block_reaches_the_caller(monkeypatch):
    X, W = _data(900, 6, 10, np.float64, seed=6)
    original = cpu_bmu._search_block

    def failing(X, start, stop, *args):
        if start >= 400:
            raise RuntimeError("block failed")
        return original(X, start, stop, *args)

    monkeypatch.setattr(cpu_bmu, "_search_block", failing)
    with pytest.raises(RuntimeError, match="block failed"):
        _search(X, W, 2)


@pytest.mark.parametrize("d", [1, 2, 7, 8, 15, 16, 17, 64, 784])
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_column_parts_cover_the_columns(d, parts):
    got = cpu_bmu._column_parts(d, parts)
    assert len(got) == parts
    assert got[0][0] == 0 and got[-1][1] == d
    for (a, b), (c, _) in zip(got, got[1:]):
        assert a <= b == c
        if d >= 8 * parts:
            assert b % 8 == 0  # inner boundaries on 64-byte lines of the float64 sums
    widths = [b - a for a, b in got]
    assert max(widths) - min(widths) <= (8 if d >= 8 * parts else 1)


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
