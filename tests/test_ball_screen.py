"""The ball's screen (``somvq._kernels.cpu_lanes``): distances in vector lanes.

The screen's values are not the exact search's bits; :func:`cpu_lanes.screen_error` bounds
them, and the pruned search must stay the full search's bits whichever path a row takes:
settled by the screen alone, compared directly after it, or (no table, a table too small,
values below the floor, squares beyond float32) the direct loop over the ball. References:
a float64 NumPy distance written here, and the full search.
"""

import numpy as np
import pytest
from numba import njit

from somvq._kernels import cpu_bmu, cpu_lanes, cpu_pruned

from .test_pruned import (
    _shrinking_fit_codebooks,
    assert_pass_equals_full,
    ball_on_small_data,  # noqa: F401 (a fixture, used by name)
    gaussian_mixture,
    near_tie_data,
)


@njit
def _lanes_beyond(row, table, base, n_groups, threshold, out):
    return cpu_lanes.lanes_beyond(row, table, base, n_groups, threshold, out)


def _table(units, base_units=0):
    """The documented layout written plainly: ``units`` (G * LANES, D) after
    ``base_units`` groups of zeros; returns the flat table and the base index."""
    n, d = units.shape
    lanes = cpu_lanes.LANES
    table = np.zeros((base_units + n // lanes, d, lanes), dtype=units.dtype)
    for t in range(n):
        table[base_units + t // lanes, :, t % lanes] = units[t]
    return table.ravel(), base_units * d * lanes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 2, 3, 8, 16, 17, 33])
@pytest.mark.parametrize("groups", [1, 2, 3])
def test_lanes_within_the_documented_error(dtype, d, groups):
    """Each lane is the squared distance to its unit within screen_error's bounds; the
    answer is whether every lane is above the threshold; the base offset is honoured."""
    rng = np.random.default_rng(d * 10 + groups)
    units = (rng.normal(size=(groups * cpu_lanes.LANES, d)) * 3 + 100).astype(dtype)
    row = (rng.normal(size=d) + 100).astype(dtype)
    table, base = _table(units, base_units=2)
    out = np.full(groups * cpu_lanes.LANES, np.nan, dtype=dtype)
    exact = ((row.astype(np.float64) - units.astype(np.float64)) ** 2).sum(1)
    eps, delta, floor = cpu_lanes.screen_error(dtype, d)
    _lanes_beyond(row, table, base, groups, dtype(0), out)
    assert np.all(np.abs(out.astype(np.float64) - exact) <= eps * exact + delta)
    assert np.all(exact > floor)
    for threshold in (exact.min() * 0.5, np.median(exact), exact.max(), np.inf):
        expected = bool(np.all(out > dtype(threshold)))
        assert _lanes_beyond(row, table, base, groups, dtype(threshold), out) == expected
    assert _lanes_beyond(row, table, base, groups, dtype(exact.min() * 0.5), out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lanes_nan_is_never_beyond_and_inf_padding_is(dtype):
    units = np.ones((2 * cpu_lanes.LANES, 4), dtype=dtype)
    units[3:8] = np.inf  # padding lanes
    row = np.zeros(4, dtype=dtype)
    table, base = _table(units)
    out = np.empty(2 * cpu_lanes.LANES, dtype=dtype)
    assert _lanes_beyond(row, table, base, 2, dtype(3.5), out)
    assert np.all(out[3:8] == np.inf) and np.all(out[:3] == 4.0)
    units[9, 2] = np.nan
    table, base = _table(units)
    assert not _lanes_beyond(row, table, base, 2, dtype(-np.inf), out)


def test_ball_table_is_the_listed_units_in_lanes():
    rng = np.random.default_rng(3)
    W = rng.normal(size=(30, 5))
    units, low = cpu_pruned.unit_balls(W, 1.0, 0.4)  # 12 listed: two groups, 4 padding lanes
    table, groups = cpu_pruned.ball_table(W, units, 1.0)
    assert groups == 2
    block = groups * cpu_lanes.LANES * W.shape[1]
    out = np.empty(groups * cpu_lanes.LANES)
    for a in range(W.shape[0]):
        row = rng.normal(size=5)
        _lanes_beyond(row, table, a * block, groups, 0.0, out)
        expected = ((row - W[units[a]]) ** 2).sum(1)
        np.testing.assert_allclose(out[: units.shape[1]], expected, rtol=1e-12)
        assert np.all(out[units.shape[1] :] == np.inf)
    # scaled by the search's power of two; none within the byte limit
    table4, _ = cpu_pruned.ball_table(W, units, 4.0)
    np.testing.assert_array_equal(table4, table * 4.0)
    per_group = W.shape[0] * cpu_lanes.LANES * W.shape[1] * W.itemsize
    assert cpu_pruned.ball_table(W, units, 1.0, max_bytes=2 * per_group - 1)[1] == 1
    empty, none = cpu_pruned.ball_table(W, units, 1.0, max_bytes=0)
    assert none == 0 and empty.size == 0


def _passes(X, codebooks, ball=0.25, unit=1.0):
    """Every codebook through the pruned search (one group, the ball) against the full
    search (:func:`assert_pass_equals_full`); returns (rows re-checked without the
    product, rows the screen settled alone) over the passes."""
    bounds = cpu_pruned.Bounds(len(X), 1, 0.0, ball)
    rechecked = screened = 0
    for W in codebooks:
        assert_pass_equals_full(X, W, bounds, unit)
        rechecked += bounds.rechecked
        screened += bounds.screened
    return rechecked, screened


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_screen_settles_rows_and_keeps_the_bits(dtype, offset, ball_on_small_data):
    """Late in a shrinking fit the screen settles most ball rows alone, and the rest (a
    winner that changes, a unit the screen cannot rule out) are compared directly."""
    rng = np.random.default_rng(5)
    X = gaussian_mixture(rng, 3000, 6, k=10, offset=offset, dtype=dtype)
    codebooks = _shrinking_fit_codebooks(X, (6, 8), 12)
    rechecked, screened = _passes(X, codebooks)
    assert screened > 0.5 * rechecked > 0, (rechecked, screened)
    assert rechecked - screened > 0  # the direct comparisons after the screen ran too


@pytest.mark.parametrize("max_bytes", [0, "one group"])
def test_screen_without_a_table_or_with_too_small_a_one(max_bytes, monkeypatch, ball_on_small_data):
    """No table: the direct loop over the ball (nothing screened). A table of one group
    while balls hold more units: those rows take the direct loop; the bits are the same."""
    rng = np.random.default_rng(6)
    X = gaussian_mixture(rng, 3000, 6, k=10)
    codebooks = _shrinking_fit_codebooks(X, (6, 8), 12)
    W = codebooks[-1]
    limit = 0 if max_bytes == 0 else 48 * cpu_lanes.LANES * W.shape[1] * W.itemsize
    monkeypatch.setattr(cpu_pruned, "BALL_TABLE_BYTES", limit)
    _, groups = cpu_pruned.ball_table(W, cpu_pruned.unit_balls(W, 1.0, 0.5)[0], 1.0, limit)
    assert groups == (0 if max_bytes == 0 else 1)
    rechecked, screened = _passes(X, codebooks, ball=0.5)
    assert rechecked > 0
    assert (screened == 0) if max_bytes == 0 else (0 < screened < rechecked)


@pytest.mark.parametrize("power", [530, -560])
def test_screen_of_float64_data_scaled_by_the_search(power, ball_on_small_data):
    """float64 data whose squares overflow or underflow: the search scales the differences
    by a power of two, and the table and the row are scaled alike (the estimator refuses
    such data; the search itself takes it, as a codebook of a diverging fit may be)."""
    rng = np.random.default_rng(7)
    X = gaussian_mixture(rng, 2000, 5, k=8)
    codebooks = [W * 2.0**power for W in _shrinking_fit_codebooks(X, (5, 6), 10)]
    X = X * 2.0**power
    assert cpu_bmu._search_setup(codebooks[-1], X.dtype).direct_scale != 1.0
    rechecked, screened = _passes(X, codebooks, unit=2.0**power)
    assert screened > 0


@pytest.mark.parametrize("factor", [1e-21, 1e19])
def test_screen_below_its_floor_and_beyond_float32(factor, ball_on_small_data):
    """float32 rows whose squared distances lie below the screen's floor (subnormal
    squares) or beyond float32's range (inf lanes): not settled by the screen, or settled
    only where its bounds hold; the bits are the full search's."""
    rng = np.random.default_rng(8)
    X = (gaussian_mixture(rng, 2000, 5, k=8) * factor).astype(np.float32)
    codebooks = [W.astype(np.float32) for W in _shrinking_fit_codebooks(X.astype(np.float64), (5, 6), 10)]
    rechecked, screened = _passes(X, codebooks)
    assert rechecked > 0
    if factor < 1:
        assert screened == 0


def test_screen_near_ties_below_float32_rounding(ball_on_small_data):
    """Units closer to each other than the screen's float32 error: the screen cannot rule
    them out, and the direct float64 comparison decides, lowest index on ties."""
    X, W, moved = near_tie_data(0.0, 4)
    rechecked, _ = _passes(X, [W, W, moved, moved], ball=0.5)
    assert rechecked > 0
