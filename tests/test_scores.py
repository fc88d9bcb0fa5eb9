"""The row-ranking primitives of the exact searches (somvq/_kernels/cpu_scores.py).

``lowest`` must order IEEE values exactly as the signed-key form it replaced (-0.0 below
+0.0, a NaN with the sign bit below everything, a positive one above), on rows of any
length (the vector loops' tails) with infinities, subnormals and repeated values; ``within``
must count the entries at or below a limit and, when there is one, name it.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from somvq._kernels.cpu_scores import EXACT_INDICES, first_equal, lowest, sole_or_first, within

_UNSIGNED = {np.float32: np.uint32, np.float64: np.uint64}
_SIGNED = {np.float32: np.int32, np.float64: np.int64}


def _specials(dtype):
    """Patterns the ordering must get right, as values of ``dtype``."""
    info = np.finfo(dtype)
    unsigned = _UNSIGNED[dtype]
    bits = np.dtype(unsigned).itemsize * 8
    sign = unsigned(1) << unsigned(bits - 1)
    quiet_nan = np.array(np.nan, dtype=dtype).view(unsigned)
    values = np.array(
        [0.0, -0.0, np.inf, -np.inf, info.tiny, -info.tiny, info.smallest_subnormal, -info.smallest_subnormal,
         info.max, -info.max, 1.0, -1.0, 3.5, -3.5],
        dtype=dtype,
    )  # fmt: skip
    nans = np.array([quiet_nan, quiet_nan | sign, quiet_nan | unsigned(1)], dtype=unsigned).view(dtype)
    return np.concatenate([values, nans])


def _reference_lowest_bits(row):
    """The lowest pattern by the signed-key order ``b ^ ((b >> (w - 1)) & 0x7f..f)``."""
    dtype = row.dtype.type
    signed = row.view(_SIGNED[dtype]).astype(np.int64) if dtype is np.float32 else row.view(np.int64)
    mask = np.int64(0x7FFFFFFF) if dtype is np.float32 else np.int64(0x7FFFFFFFFFFFFFFF)
    keys = np.where(signed < 0, signed ^ mask, signed)
    low = keys.min()
    pattern = low ^ mask if low < 0 else low
    return np.array(pattern).astype(_SIGNED[dtype]).view(_UNSIGNED[dtype])


@st.composite
def _rows(draw, dtype):
    n = draw(st.integers(1, 70))
    specials = _specials(dtype)
    width = 32 if dtype is np.float32 else 64
    floats = st.floats(allow_nan=False, allow_infinity=False, width=width)
    picks = st.one_of(st.sampled_from(list(specials)), floats, st.sampled_from([0.0, -0.0, 2.0, -2.0]))
    row = np.array(draw(st.lists(picks, min_size=n, max_size=n)), dtype=dtype)
    return np.ascontiguousarray(row)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_lowest_orders_values_as_the_signed_key_form(dtype, data):
    row = data.draw(_rows(dtype))
    got = np.array(lowest(row), dtype=dtype).view(_UNSIGNED[dtype])
    assert got == _reference_lowest_bits(row), (row, got)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lowest_special_cases(dtype):
    unsigned = _UNSIGNED[dtype]
    neg_zero = np.array(-0.0, dtype=dtype).view(unsigned)
    row = np.array([3.0, 0.0, -0.0, 5.0], dtype=dtype)
    assert np.array(lowest(row), dtype=dtype).view(unsigned) == neg_zero  # -0.0 below +0.0
    row = np.array([3.0, -0.0, 5.0], dtype=dtype)  # -0.0 with positives only: still the lowest
    assert np.array(lowest(row), dtype=dtype).view(unsigned) == neg_zero
    row = np.array([3.0, 2.0, 7.0], dtype=dtype)
    assert lowest(row) == 2.0
    row = np.array([-3.0, -2.0, -7.0, 4.0], dtype=dtype)
    assert lowest(row) == -7.0
    row = np.array([1.0, np.nan, -np.inf], dtype=dtype)
    assert lowest(row) == -np.inf  # a positive NaN sits above everything
    negative_nan = -np.abs(np.array([np.nan], dtype=dtype))
    row = np.concatenate([np.array([1.0, -5.0], dtype=dtype), negative_nan])
    assert np.isnan(lowest(row))  # a NaN with the sign bit below everything: the caller sees it


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_within_counts_and_names_the_entries_at_or_below_the_limit(dtype, data):
    row = data.draw(_rows(dtype))
    finite = row[np.isfinite(row)]
    choices = list(finite) + [np.inf, -np.inf, np.nan] if finite.size else [np.inf, -np.inf, np.nan]
    limit = dtype(data.draw(st.sampled_from(choices)))
    indices = np.arange(row.shape[0] + 1).astype(dtype)
    count, index = within(row, limit, indices)
    near = np.flatnonzero(row <= limit)
    assert count == near.size
    if near.size == 1:
        assert int(index) == near[0]
        if not np.isnan(row).any() and limit >= row.min():
            assert int(index) == np.argmin(row)  # the sole unit is NumPy's argmin


def test_within_names_the_argmin_at_every_position():
    """The sole entry within the limit at every index of rows whose length leaves vector tails."""
    for n in (1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 400, 513):
        for dtype in (np.float32, np.float64):
            for k in range(n):
                row = np.full(n, 10.0, dtype=dtype)
                row[k] = 1.0
                count, index = within(row, dtype(1.5), np.arange(n + 1).astype(dtype))
                assert (count, int(index)) == (1, k)


def test_first_equal():
    row = np.array([4.0, 2.0, 2.0, np.nan], dtype=np.float32)
    assert first_equal(row, np.float32(2.0)) == 1
    assert first_equal(row, np.float32(np.nan)) == 4  # NaN equals nothing: len(row)


def test_sole_or_first_scans_when_float32_indices_are_inexact():
    # Past EXACT_INDICES (2^24) units float32 cannot hold every index: within's index sum
    # for the only entry at the limit is rounded, and sole_or_first must scan instead.
    n_units = EXACT_INDICES + 8
    winner = EXACT_INDICES + 5  # odd: not a float32
    row = np.ones(n_units, dtype=np.float32)
    row[winner] = 0.25
    indices = np.arange(n_units + 1).astype(np.float32)
    count, index = within(row, np.float32(0.5), indices)
    assert count == 1
    assert int(index) != winner  # the rounded sum: what the fallback is there for
    assert sole_or_first(row, np.float32(0.25), count, index) == winner
    # below the threshold the sum is taken as it is (no scan), exactly
    short = row[: EXACT_INDICES - 3].copy()
    short[EXACT_INDICES - 5] = 0.25
    count, index = within(short, np.float32(0.5), indices[: short.shape[0] + 1])
    assert sole_or_first(short, np.float32(0.25), count, index) == EXACT_INDICES - 5
