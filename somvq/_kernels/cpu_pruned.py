"""Exact pruned BMU search on the CPU (Hamerly, Yinyang, Elkan's ball) for batch KSOM and k-means.

Between two passes of a batch fit every row keeps

* ``bmu[i]``: its winner in the last search;
* ``lower[i, g]``: a lower bound on its distance (not squared) to every unit of group ``g``
  other than the winner, stored in float32 rounded down. The groups
  (:func:`unit_groups`: ``K / 10`` by default, :func:`default_groups`; one group is
  Hamerly's single bound) are a few Lloyd iterations on the units, as Yinyang k-means
  (Ding et al. 2015) groups its centres.

When the codebook moves from ``W_old`` to ``W``, unit ``k`` moves by ``delta_k`` (computed in
float64 and inflated): by the triangle inequality every unit of group ``g`` is still at
least ``lower[i, g] - max_{k in g} delta_k`` from row ``i`` (the group's largest move,
the winner's own included: conservative; this loop runs in float32, rounded down, see
:func:`check_rows`). The upper bound on the distance to the winner is not carried: every
row's squared distance to its old winner is computed directly in float64 (O(D), exactly
the same loop as :func:`somvq._kernels.cpu_bmu.rank_block` uses for the reported error),
so it is tight. With ``d' = sqrt(d2) (1 + 2 m)``, :func:`check_rows` sorts every row:

* every group's bound above ``d'``: the row provably keeps its winner; it skips the
  product and its reported squared distance is that ``d2``, the same bits the full
  search writes;
* the groups whose bound fails hold at most :data:`RECHECK_FRACTION` of the units: the
  row is re-checked directly, the float64 distance (the same loop) to the units of those
  groups but the ones whose own move leaves them beyond ``d'`` (Yinyang's local filter);
  the winner is the argmin of those and the old winner, lowest index on ties, and the
  failed groups' bounds are rebuilt from the same distances;
* with one group (a shrinking neighbourhood, whose moves defeat every carried bound):
  the *ball*. By Elkan's lemma (2003) a unit farther than ``2 d'`` from the old winner
  is farther from the row than the old winner itself, so when those within ``2 d'`` are
  all among the winner's :data:`BALL_FRACTION` K nearest units (:func:`unit_balls`, made
  for each codebook) their direct distances settle the row; the bound needs no history.
  Those units are first *screened*: their coordinates, laid out in vector lanes for each
  codebook (:func:`ball_table`), give distances in the rows' dtype in one vector pass
  (:mod:`somvq._kernels.cpu_lanes`, 3-4x the plain loop's speed at D = 16), bounded by
  :func:`~somvq._kernels.cpu_lanes.screen_error`; a unit whose screened value proves it
  farther than the old winner needs no direct distance, and late in a fit that is every
  unit of most rows. The others are compared by direct float64 distances, as before;
* otherwise the row is gathered, block by block, into the usual exact path
  (:func:`somvq._kernels.cpu_bmu.search_block`: GEMM in the codebook's frame, certified
  or re-ranked by direct float64 distances), then :func:`runner_up_block` reads the same
  products for new lower bounds: with ``e`` the expanded-form error bound of the row
  (:func:`somvq.distances.expanded_form_error`), every other unit ``k`` satisfies
  ``d_k^2 >= d_a^2 + (s_k - s_a - 2 e) / scale^2`` (the lowest score of each group, or, in
  a first pass, the runner-up's for every group). Each thread runs the gathered blocks
  in one compiled call, :func:`search_rows_pass`.

Why the result is bit-identical to the full search: the full search's winner is the
float64 direct-distance argmin, lowest index on ties (certified rows have a margin of
``2 e`` over every other unit; re-ranked rows are compared directly), a function of the row
and the codebook only, not of the block the row sits in; the bounds are deflated by a
relative margin ``m = 1e-9``, far above the float64 rounding of the distances
(``~(D + 3) 2^-53`` relative), so a skipped or re-checked row's winner is that argmin; its
squared distance is the same compiled loop over the same values. Statistics are added
over all rows in row order, as the full search adds them block after block.

Memory: O(N) extra for a fit (``bmu`` int64, the per-row squared distances float64, the
candidates' indices int64, and 4 bytes a row per group of units: ``24 + 4 G`` bytes a row,
28 with one group, 184 with the 40 groups of K = 400) plus one gathered block of
candidate rows per thread, O(K + G) scratch per part of the check and, with one group,
the nearest-unit lists (16 bytes per unit and listed unit: 320 KB for K = 400) and their
table in lanes (at most :data:`BALL_TABLE_BYTES`, 4 MiB: 1.4 MB at K = 400, D = 16).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numba import njit, types

from . import cpu_bmu
from ._signatures import FLOATS, array
from .config import BALL_FRACTION, BALL_TABLE_BYTES, CACHE, CHUNK_ROWS, FASTMATH, default_groups
from .cpu_bmu import RADIUS, SCALE, search_block, unscale_exponent, unscaled
from .cpu_lanes import LANES, lanes_beyond, screen_error
from .cpu_scores import lowest
from .cpu_sync import ABORT, CLAIMED, DONE, SYNC_SIZE, add_and_wake, atomic_add, atomic_load

_FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Relative margin of the bounds: far above the float64 rounding of a direct distance.
MARGIN = 1e-9

#: Groups of LANES units the ball's screen computes for every row it settles (more when the
#: ball reaches past them): a fixed count keeps the row's loop free of a branch on the
#: ball's size. Late in a fit the ball holds ~13 units (docs/performance.md, round 14).
SCREEN_GROUPS = 2

_CHECK_SIGNATURES = [
    types.UniTuple(types.int64, 3)(
        array(dtype, 2, "C", readonly=True),  # X
        array(dtype, 2, "C", readonly=True),  # codebook
        array(types.int64, 1, "C"),  # bmu (read; updated for the rows re-checked here)
        array(types.float32, 2, "C"),  # lower bounds per group (rows, G), updated in place
        array(types.float32, 1, "C"),  # largest move in each group, float32 rounded up
        array(types.int64, 1, "C"),  # the units, group after group
        array(types.int64, 1, "C"),  # where each group starts in them, and K
        array(types.int64, 1, "C"),  # group of each unit
        types.float64,  # scale of the direct distances (power of two)
        types.float64,  # margin
        types.int64,  # most units a row may re-check here (more: the row goes to the product)
        array(types.float64, 1, "C"),  # each unit's move (float64, inflated)
        array(types.int64, 2, "C", readonly=True),  # each unit's nearest units (K, M), nearest first
        array(types.float64, 2, "C", readonly=True),  # lower bounds on their distances (K, M)
        array(dtype, 1, "C", readonly=True),  # the listed units in lanes (ball_table), scaled
        types.int64,  # groups of LANES units per list in that table (0: none)
        types.UniTuple(types.float64, 3),  # screen_error: eps, delta, floor
        array(dtype, 1, "C"),  # scratch (LANES x groups): the screened distances
        array(dtype, 1, "C"),  # scratch (D,): the row times the scale (when not 1)
        array(types.float64, 1, "C"),  # scratch (K,): lower bounds on the re-checked units' distances
        array(types.int8, 1, "C"),  # scratch (G,): which groups' bounds failed
        array(types.float32, 1, "C"),  # scratch (G,): the groups' bounds before this pass
        array(types.float64, 1, "C"),  # out: squared distance of the rows not left to the product
        array(types.int64, 1, "C"),  # out: indices of the rows to search
    )
    for dtype in FLOATS
]


@njit(inline="always")
def _round_down(value):
    """A float32 no larger than the non-negative float64 ``value`` (0 for nan)."""
    if not value > 0.0:
        return np.float32(0.0)
    if value >= _FLOAT32_MAX:  # float64 distances beyond float32: the largest finite float32
        return np.float32(_FLOAT32_MAX)
    return np.float32(value * (1.0 - 2.0**-20))  # round to nearest moves it by < 2^-24


_NEAREST_SIGNATURES = [
    types.void(
        array(dtype, 2, "C", readonly=True),  # codebook
        types.float64,  # scale of the direct distances (power of two)
        types.float64,  # margin
        array(types.int64, 2, "C", readonly=True),  # units to offer first (K, S): last pass's lists
        types.int64,  # first unit of this part
        types.int64,  # end of this part
        array(types.int64, 2, "C"),  # out: each unit's M nearest other units (K, M), nearest first
        array(types.float64, 2, "C"),  # out: lower bounds on those distances (K, M)
        array(types.float64, 1, "C"),  # scratch (K,): one unit's squared distances
        array(types.int64, 1, "C"),  # scratch (K,): the last unit each unit was offered to (-1 first)
    )
    for dtype in FLOATS
]


@njit(_NEAREST_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def nearest_units(codebook, scale, margin, seed, first, stop, out_units, out_low, row, offered):
    """For each unit ``a`` in ``first:stop``, the ``M = out_units.shape[1]`` other units
    nearest to it, in increasing distance (lower index first on ties), and lower bounds on
    their distances: the direct float64 distance (scaled by the power of two ``scale``, as
    the rows' are) deflated by ``margin``, at most the largest finite float64 (inf where the
    square overflowed: :func:`unit_balls` then lists none).

    The list is the M least (distance, index) pairs, whatever order the candidates come
    in: each is inserted by that order into a sorted list of M. ``seed[a]`` (last pass's
    list of ``a``, or none) is offered first, then every unit by increasing index: the
    list fills with its final units at once and the rest are turned away by one compare
    (0.3 against 2.3 ms of insertions at K = 400). O(K^2 D) for the distances (``w_a -
    w_k`` and ``w_k - w_a`` square to the same bits); parts of the units run on threads."""
    n_units, n_features = codebook.shape
    n_listed = out_units.shape[1]
    n_seed = seed.shape[1]
    big = np.finfo(np.float64).max
    for a in range(first, stop):
        for k in range(n_units):
            acc = 0.0
            for j in range(n_features):
                diff = (np.float64(codebook[a, j]) - np.float64(codebook[k, j])) * scale
                acc += diff * diff
            row[k] = acc
        offered[a] = a  # (never its own neighbour)
        count = 0
        for s in range(n_seed + n_units):
            k = seed[a, s] if s < n_seed else s - n_seed
            if offered[k] == a:
                continue
            offered[k] = a
            acc = row[k]
            last = n_listed - 1
            if count == n_listed and not (
                acc < out_low[a, last] or (acc == out_low[a, last] and k < out_units[a, last])
            ):
                continue
            t = count if count < n_listed else last
            while t > 0 and (
                acc < out_low[a, t - 1] or (acc == out_low[a, t - 1] and k < out_units[a, t - 1])
            ):
                out_low[a, t] = out_low[a, t - 1]
                out_units[a, t] = out_units[a, t - 1]
                t -= 1
            out_low[a, t] = acc
            out_units[a, t] = k
            if count < n_listed:
                count += 1
        for t in range(n_listed):
            acc = out_low[a, t]
            low = math.sqrt(acc) / scale * (1.0 - margin)
            # beyond float64 only after the division: the distance itself is; an overflowed
            # square stays inf, and the caller then lists no units (no valid bound)
            out_low[a, t] = low if (low < big or acc == np.inf) else big


@njit(_CHECK_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def check_rows(
    X,
    codebook,
    bmu,
    lower,
    group_moves,
    members,
    starts,
    group_of,
    scale,
    margin,
    max_units,
    unit_moves,
    near_units,
    near_low,
    table,
    table_groups,
    screen,
    lanes,
    scaled_row,
    scratch,
    failing,
    old_low,
    out_sq_dist,
    out_candidates,
):
    """Update every row's group lower bounds for the moves; settle the rows they allow.

    ``lower[i, g] <- lower[i, g] - max_{k in g} delta_k`` (rounded down). With ``d`` the
    direct distance to the row's winner, inflated by ``1 + 2 m``:

    * every group's bound above ``d``: the row keeps its winner; ``out_sq_dist[i]`` gets its
      squared distance (computed as in ``rank_block``);
    * the groups whose bound fails hold at most ``max_units`` units: those units' direct
      float64 distances are computed here (the same loop), the winner is their argmin with
      the old winner's (lowest index on ties: every other unit is provably farther), and
      the failed groups' bounds are rebuilt from the same distances (Yinyang's local
      filtering, without a product);
    * otherwise, when the units within ``2 d`` of the old winner are all among its
      ``M = near_units.shape[1]`` nearest (:func:`nearest_units`; M = 0: no such test),
      only they can be nearer the row than the old winner (Elkan's lemma, see the
      comment there): their direct distances settle the row here (one group only). When
      the ball fits the lanes of ``table`` (:func:`ball_table`), they are screened first
      (:func:`~somvq._kernels.cpu_lanes.lanes_beyond`, bounded by ``screen``), and only
      the units the screen cannot rule out get their direct distance: none, when the old
      winner is nearer than every screened unit's lower bound (most rows late in a fit);
    * otherwise the row's index goes to ``out_candidates`` (increasing order) for the exact
      search.

    Returns (rows left to the product, rows re-checked here, rows of them that the
    screen settled without a direct distance).
    """
    n_rows, n_features = X.shape
    n_groups = lower.shape[1]
    exponent = unscale_exponent(scale)
    shrink = np.float32(1.0 - 2.0**-22)
    zero = np.float32(0.0)
    n = 0
    rechecked = 0
    screened_rows = 0
    n_units = codebook.shape[0]
    n_listed = near_units.shape[1] if n_groups == 1 else 0  # the ball test: one group
    threshold = np.empty(1, dtype=X.dtype)  # the screen's threshold, rounded to the dtype
    thr = threshold[0]
    for i in range(n_rows):
        winner = bmu[i]
        dist = 0.0
        for j in range(n_features):
            diff = (np.float64(X[i, j]) - np.float64(codebook[winner, j])) * scale
            dist += diff * diff
        d2 = unscaled(dist, exponent)
        # distances (not squares) from the scaled squares: sqrt(v / s^2) = sqrt(v) / s exactly
        # while v / s^2 is a normal float64, and without its underflow (data near 1e-160)
        # or overflow beyond it, which made the ball test miss units
        d_own = math.sqrt(dist) / scale
        reach = d_own * (1.0 + 2.0 * margin)
        units = 0
        for g in range(n_groups):
            # float32 and branch-free, so that the loop vectorises (with 40 groups it is
            # most of a pass): (l - move) rounded to nearest, then times (1 - 2^-22) rounded
            # to nearest, is below the exact l - move (two roundings of 2^-24 at most);
            # the moves are rounded up (group_moves32); inf (no unit but the winner) stays inf
            old_low[g] = lower[i, g]
            low = (lower[i, g] - group_moves[g]) * shrink
            low = low if low > zero else zero  # (nan, from inf - inf, counts as 0)
            lower[i, g] = low
            fails = not reach < np.float64(low)
            failing[g] = 1 if fails else 0
            units += (starts[g + 1] - starts[g]) if fails else 0
        if units == 0:
            out_sq_dist[i] = d2
            continue
        if units > max_units:
            if n_listed == 0:  # no ball test
                out_candidates[n] = i
                n += 1
                continue
            # The ball (Elkan's lemma, 2003): ||x - w_k|| >= ||w_a - w_k|| - ||x - w_a||, so
            # a unit k with ||w_a - w_k|| > 2 d (the reach) is farther from the row than
            # its old winner a, strictly: neither the winner nor tied with it. The others
            # are a prefix of a's nearest units (near_low: lower bounds, sorted), known
            # when a listed unit lies beyond 2 d. (Written here, not in a helper: through
            # a function, inlined or not, this path took 1.4-1.7x as long.)
            limit = 2.0 * reach
            # The screen (cpu_lanes) when the ball fits the table: the first SCREEN_GROUPS
            # groups of LANES listed units for every row (a fixed count: no branch on the
            # ball's size), more while the next group's first unit lies within 2 d; then
            # ``size`` covers the screened units, a superset of the ball (units beyond it
            # are farther than a, above: they change neither the winner nor the bounds).
            n_lanes = 0
            in_table = False
            if table_groups > 0:
                n_lanes = SCREEN_GROUPS if SCREEN_GROUPS < table_groups else table_groups
                while n_lanes < table_groups and near_low[winner, n_lanes * LANES] <= limit:
                    n_lanes += 1  # (n_lanes * LANES < n_listed: the table holds no more groups)
                size = min(n_lanes * LANES, n_listed)
                if size < n_listed:
                    in_table = near_low[winner, size] > limit
                else:
                    in_table = n_listed == n_units - 1 or near_low[winner, n_listed - 1] > limit
            if not in_table:
                size = 0
                for t in range(n_listed):  # branch-free: rows do not wait on a misprediction
                    size += 1 if near_low[winner, t] <= limit else 0
                if size == n_listed and n_listed < n_units - 1:
                    out_candidates[n] = i  # the ball reaches past the listed units
                    n += 1
                    continue
            edge = np.inf  # every unit is listed and considered
            if size < n_listed or n_listed < n_units - 1:
                # a lower bound for every unit after ``size``; with all listed units
                # considered (screened rows only), the last one's, for the unlisted units
                beyond = near_low[winner, size if size < n_listed else n_listed - 1]
                edge = (beyond - reach) - (beyond + reach) * margin  # (rounded down)
            # the winner: the direct distances' argmin over the ball and a, lowest index
            # on ties, as in the full search; closest: a lower bound on the direct distance
            # of every unit considered (scaled, squared)
            best = dist
            best_k = winner
            closest = np.inf
            # the screen: a unit whose screened value s_k is above ``thr`` is farther than
            # a, since s_k (1 - eps) - delta <= c_k above the floor (screen_error), and thr
            # is at least (dist + delta) / (1 - eps) and the floor, rounded up to the dtype
            # (the factor 1 + eps: far above the roundings of these two lines)
            n_direct = size
            if in_table:
                need = (dist + screen[1]) / (1.0 - screen[0])
                threshold[0] = max(need, screen[2]) * (1.0 + screen[0])
                thr = threshold[0]
                base = winner * table_groups * n_features * LANES
                if scale == 1.0:
                    all_beyond = lanes_beyond(X[i], table, base, n_lanes, thr, lanes)
                else:
                    for j in range(n_features):
                        scaled_row[j] = X[i, j] * scale  # (a power of two)
                    all_beyond = lanes_beyond(scaled_row, table, base, n_lanes, thr, lanes)
                closest = dist  # every unit the screen rules out is farther than a
                if all_beyond:
                    n_direct = 0  # a keeps the row: most rows late in a fit
                    screened_rows += 1
            for t in range(n_direct):
                if in_table and lanes[t] > thr:
                    continue  # (ruled out by the screen)
                k = near_units[winner, t]
                acc = 0.0
                for j in range(n_features):
                    diff = (np.float64(X[i, j]) - np.float64(codebook[k, j])) * scale
                    acc += diff * diff
                closest = acc if acc < closest else closest  # (a select: no branch)
                if acc < best or (acc == best and k < best_k):
                    best = acc
                    best_k = k
            # the new bound (one group): a unit outside the ball is at least edge away (and
            # the moved bound holds for every unit but a), one inside at least the ball's
            # closest distance (or the screen's bound below it); when the winner changed
            # (~1% of the rows late) that is at most the new winner's own, the least of
            # all, so a is covered too. (The exact runner-up,
            # a second compare in the loop, made the check ~12% slower, for a bound that
            # settles under 2% of the rows in the late passes.)
            low = np.float64(lower[i, 0])
            low = edge if edge > low else low
            if closest < np.inf:
                inside = math.sqrt(closest) / scale * (1.0 - margin)
                low = inside if inside < low else low
            lower[i, 0] = _round_down(low) if low < np.inf else np.inf
            bmu[i] = best_k
            out_sq_dist[i] = unscaled(best, exponent)
            rechecked += 1
            continue
        # local re-check: direct distances to the units of the failed groups, but those
        # whose own move leaves them provably beyond the old winner (Yinyang's local
        # filter: the group's bound before this pass minus the unit's own move)
        rechecked += 1
        best = dist
        best_k = winner
        for g in range(n_groups):
            if failing[g] == 0:
                continue
            old = np.float64(old_low[g])
            for t in range(starts[g], starts[g + 1]):
                k = members[t]
                if k == winner:
                    scratch[k] = np.inf  # never a bound of its group: it is the winner or was
                    continue
                dec = unit_moves[k]
                unit_low = (old - dec) - (old + dec) * margin
                if unit_low > reach:  # (nan: computed)
                    scratch[k] = unit_low
                    continue
                acc = 0.0
                for j in range(n_features):
                    diff = (np.float64(X[i, j]) - np.float64(codebook[k, j])) * scale
                    acc += diff * diff
                scratch[k] = math.sqrt(acc) / scale * (1.0 - margin)
                if acc < best or (acc == best and k < best_k):
                    best = acc
                    best_k = k
        for g in range(n_groups):
            if failing[g] == 0:
                if best_k != winner and group_of[winner] == g:
                    # the old winner is now one of the group's other units
                    own = _round_down(d_own * (1.0 - margin))
                    lower[i, g] = min(lower[i, g], own)
                continue
            nearest = np.inf
            for t in range(starts[g], starts[g + 1]):
                k = members[t]
                if k != best_k:
                    nearest = min(nearest, scratch[k])
            if best_k != winner and group_of[winner] == g:
                nearest = min(nearest, d_own * (1.0 - margin))  # the old winner
            lower[i, g] = _round_down(nearest) if nearest < np.inf else np.inf
        bmu[i] = best_k
        out_sq_dist[i] = unscaled(best, exponent)
    return n, rechecked, screened_rows


_RUNNER_SIGNATURES = [
    types.void(
        array(dtype, 2, "C"),  # framed rows (rows, D + 1), as the search left them
        array(dtype, 2, "C"),  # expanded-form scores (rows, K)
        array(types.int64, 1, "C"),  # winners
        array(types.float64, 1, "C"),  # squared distances to them
        types.float64,  # kappa
        types.float64,  # R
        types.float64,  # overflow limit
        types.float64,  # 4 eps of the dtype
        types.float64,  # the frame's scale
        types.float64,  # margin
        array(types.int64, 1, "C"),  # where each group starts (units listed group after group), and K
        array(types.int64, 1, "C"),  # group of each unit
        types.boolean,  # each group's own minimum (else the runner-up's bound for all)
        array(types.float32, 2, "C"),  # out: lower bounds (rows, G) on the distance to each group
    )
    for dtype in FLOATS
]


@njit(_RUNNER_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def runner_up_block(
    framed,
    products,
    bmu,
    sq_dist,
    kappa,
    radius,
    overflow,
    up,
    frame_scale,
    margin,
    starts,
    group_of,
    per_group,
    out_lower,
):
    """Lower bound on each row's distance to its runner-up, from the search's own scores.

    Scores are within ``e = kappa (R (2 ||x'|| + R) + u ||x'||^2)`` of the scaled squared
    distances minus a constant of the row, so for every unit ``k`` other than the winner
    ``a``: ``d_k^2 >= d_a^2 + (s_k - s_a - 2 e) / scale^2``. Rows where the scores may have
    overflowed get 0 (no pruning). Overwrites the winner's score in ``products``.
    """
    n_rows = products.shape[0]
    n_features = framed.shape[1] - 1
    n_units = products.shape[1]
    n_groups = out_lower.shape[1]
    # 1 / scale^2, at most the largest float64 (the bounds below stay lower bounds; the
    # product itself would be inf beyond scales of 2^-512, and inf * 0 a NaN)
    inv_scale2 = min(unscaled(1.0, unscale_exponent(frame_scale)), 1.7e308)
    lows = products[0, :n_groups].copy()  # per-group lowest scores of a row
    inf = products.dtype.type(np.inf)
    nan = products.dtype.type(np.nan)
    for i in range(n_rows):
        norm2 = 0.0
        for j in range(n_features):
            v = np.float64(framed[i, j])
            norm2 += v * v
        reach = radius * (2.0 * math.sqrt(norm2) + radius) + up * norm2
        a = bmu[i]
        own = np.float64(products[i, a])
        if not (reach <= overflow) or not (abs(own) <= 1.7e308):
            for g in range(n_groups):
                out_lower[i, g] = 0.0
            continue
        # The scores are finite here. The winner's is overwritten with a (positive) NaN,
        # which cpu_scores.lowest orders above every number and no comparison finds
        # below: the lowest score but the winner's is then one vectorised pass (a loop
        # around the winner or a select on k does not vectorise), and a NaN lowest score
        # means no unit but the winner.
        # Without per_group every group gets this bound (the runner-up's): the per-group
        # minima (a scatter of the K scores into their groups) make the call about 3x as
        # long (512 x 400 float32, Zen 3: 170-250 us against 60-76), worth it only for
        # the rows a later pass searches.
        products[i, a] = np.nan
        if per_group and n_groups > 1:
            # each score into its group's minimum, in unit order (a NaN, the winner, is
            # never below; a group with none but the winner stays inf and gets NaN)
            for g in range(n_groups):
                lows[g] = inf
            for k in range(n_units):
                g = group_of[k]
                value = products[i, k]
                lows[g] = value if value < lows[g] else lows[g]
            for g in range(n_groups):
                lows[g] = lows[g] if lows[g] < inf else nan
        else:
            low = lowest(products[i])
            for g in range(n_groups):
                lows[g] = low
        # branch-free over the groups, so that the square roots vectorise
        twice_e = 2.0 * kappa * reach
        base = sq_dist[i] * (1.0 - margin)
        for g in range(n_groups):
            second = np.float64(lows[g])
            gap = (second - own) - twice_e
            gap -= abs(gap) * margin
            gap = gap if gap > 0.0 else 0.0
            bound = _round_down(math.sqrt(base + gap * inv_scale2) * (1.0 - margin))
            # a NaN lowest score: no unit but the winner in the group, no pruning
            out_lower[i, g] = bound if second == second else np.float32(0.0)
        if starts[group_of[a] + 1] - starts[group_of[a]] == 1:
            out_lower[i, group_of[a]] = np.inf  # no unit but the winner in its group


# ------------------------------------------------------------------ the pass
#: A row whose failed groups hold at most this fraction of the units is re-checked by
#: direct distances to those units (:func:`check_rows`); more go to the product.
RECHECK_FRACTION = 0.25


def group_starts(n_units: int, n_groups: int | None = None) -> np.ndarray:
    """First unit of each of ``G`` near-equal groups of consecutive units, then ``K``."""
    if n_groups is None:
        n_groups = default_groups(n_units)
    n_groups = max(1, min(int(n_groups), n_units))
    return np.array([g * n_units // n_groups for g in range(n_groups + 1)], dtype=np.int64)


#: Lloyd iterations that group the units (:func:`unit_groups`).
GROUPING_ITERATIONS = 5


def unit_groups(codebook: np.ndarray, n_groups: int | None = None):
    """Groups of the units for the bounds: ``(members, starts, group_of)``.

    Yinyang k-means groups the initial centres by a k-means of their own, so that the units
    near a row fall in few groups and a failed bound re-checks few units. Here: a few Lloyd
    iterations (float64, :data:`GROUPING_ITERATIONS`) from the ``G`` near-equal runs of
    consecutive units of :func:`group_starts` (neighbours on a map), empty groups dropped.
    Deterministic (no random start); only the speed depends on the groups, never the
    results. ``members`` lists the units group after group (increasing index within a
    group), ``starts[g]`` where group ``g`` starts in it (and ``K`` last).
    """
    n_units = codebook.shape[0]
    first = group_starts(n_units, n_groups)
    n_groups = first.shape[0] - 1
    labels = np.repeat(np.arange(n_groups), np.diff(first))
    if n_groups > 1:
        W = codebook.astype(np.float64)
        if np.all(np.isfinite(W)):
            for _ in range(GROUPING_ITERATIONS):
                counts = np.bincount(labels, minlength=n_groups).astype(np.float64)
                centres = np.zeros((n_groups, W.shape[1]))
                np.add.at(centres, labels, W)
                used = counts > 0
                centres = centres[used] / counts[used, None]
                with np.errstate(over="ignore", invalid="ignore"):  # (only the speed depends on it)
                    d = (W**2).sum(1)[:, None] - 2.0 * W @ centres.T + (centres**2).sum(1)[None, :]
                new = np.argmin(d, axis=1)
                if np.array_equal(new, labels):
                    break
                labels = new
        _, labels = np.unique(labels, return_inverse=True)  # dense, empty groups dropped
    members = np.argsort(labels, kind="stable").astype(np.int64)
    sizes = np.bincount(labels)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return members, starts, labels.astype(np.int64)


def moves_of_units(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Move (distance, float64, inflated by the margin) of each unit."""
    diff = new.astype(np.float64) - old.astype(np.float64)
    return np.sqrt(np.einsum("kd,kd->k", diff, diff)) * (1.0 + 4.0 * MARGIN)


def group_moves32(moves: np.ndarray) -> np.ndarray:
    """The moves as float32, each rounded up (never below the float64 value)."""
    with np.errstate(over="ignore"):
        m32 = moves.astype(np.float32)
    low = m32.astype(np.float64) < moves
    m32[low] = np.nextafter(m32[low], np.float32(np.inf))
    return m32


class Bounds:
    """The per-row state of a pruned search for one data set: lives for one fit.

    Attributes: ``codebook`` (the codebook of the last search, a private copy), ``bmu``,
    ``lower`` (rows x groups, float32, rounded down); ``searched``: rows searched by the
    product in the last pass, ``rechecked``: rows settled by direct distances to the units
    of their failed groups or the ball, ``screened``: rows of those that the ball's screen
    settled without a direct distance (diagnostics). Memory: ``8 + 4 G`` bytes a row, plus the pass's
    squared distances and candidates (16 bytes a row).
    """

    def __init__(
        self,
        n_rows: int,
        n_groups: int | None = None,
        recheck: float | None = None,
        ball: float | None = None,
    ):
        self.n_groups = n_groups
        self.recheck = RECHECK_FRACTION if recheck is None else recheck
        self.ball = BALL_FRACTION if ball is None else ball
        self.codebook = None
        self.starts = None
        self.members = None
        self.group_of = None
        self.bmu = np.zeros(n_rows, dtype=np.int64)
        self.lower = None
        self.sq_dist = np.empty(n_rows, dtype=np.float64)
        self.candidates = np.empty(n_rows, dtype=np.int64)
        self.searched = n_rows
        self.rechecked = 0
        self.screened = 0
        self.near_units = None  # the ball's lists of the last pass (offered first in the next)

    def seed(self, winners: np.ndarray, codebook: np.ndarray) -> None:
        """Start from the winners of a full search of ``codebook`` (the same rows), with
        every lower bound 0: the next pass checks every row against its winner (the ball
        test, with one group) without a first pass that searches every row."""
        self.for_units(codebook)
        self.bmu[:] = winners
        self.lower[:] = 0.0
        self.codebook = np.array(codebook, copy=True)

    def for_units(self, codebook: np.ndarray) -> None:
        """Groups for this codebook's units (:func:`unit_groups`), when not made yet."""
        n_units = codebook.shape[0]
        if self.starts is None or self.starts[-1] != n_units:
            self.members, self.starts, self.group_of = unit_groups(codebook, self.n_groups)
            self.lower = np.zeros((self.bmu.shape[0], self.starts.shape[0] - 1), dtype=np.float32)
            self.codebook = None


#: Rows per part of the parallel check (parts are claimed by the threads in turn).
CHECK_PART_ROWS = 16384


def _listed(n_units: int, fraction: float) -> int:
    """How many nearest units each unit's list holds: ``fraction K``, at most K - 1."""
    return min(n_units - 1, int(fraction * n_units))


def unit_balls(codebook: np.ndarray, scale: float, fraction: float, seed: np.ndarray | None = None):
    """Each unit's ``M = fraction K`` nearest units and lower bounds on their distances
    (:func:`nearest_units`, parts of the units on the block pool's threads; ``seed``: last
    pass's lists, offered first, which changes only the time); ``(K, 0)`` arrays (no ball
    test) when M is 0 or a squared distance between units overflows."""
    n_units = codebook.shape[0]
    listed = _listed(n_units, fraction)
    units = np.empty((n_units, max(listed, 0)), dtype=np.int64)
    low = np.empty((n_units, max(listed, 0)))
    if listed > 0:
        if seed is None or seed.shape[0] != n_units:
            seed = units[:, :0]
        n_parts = max(1, min(cpu_bmu.blas_threads(), cpu_bmu._CPU_COUNT, n_units // 64))
        cuts = [p * n_units // n_parts for p in range(n_parts + 1)]

        def one(p):
            scratch = np.full(n_units, -1, dtype=np.int64)
            nearest_units(
                codebook, scale, MARGIN, seed, cuts[p], cuts[p + 1], units, low, np.empty(n_units), scratch
            )

        _run_parts(n_parts, one)
        if not np.isfinite(low).all():
            return units[:, :0].copy(), low[:, :0].copy()
    return units, low


#: The ball test runs from this many rows per unit on: below, making its lists each pass
#: costs more than it saves (digits, 1797 rows, K = 512, D = 64, forced "pruned": 14.7 ms an
#: epoch with the lists against 3.7 without; 1e4 x 16, K = 400: 8.7 against 5.4 ms).
BALL_MIN_ROWS_PER_UNIT = 32


def _ball_fraction(n_rows: int, n_units: int, fraction: float) -> float:
    """The ball's list length (a fraction of K) on ``n_rows`` rows: 0 below
    :data:`BALL_MIN_ROWS_PER_UNIT`, where its lists (O(K^2 D), one thread) would cost more
    than the pass (O(N K D)) saves."""
    return fraction if n_rows >= BALL_MIN_ROWS_PER_UNIT * n_units else 0.0


#: Rows sampled by :func:`ball_settled_fraction`.
BALL_SAMPLE_ROWS = 256


def ball_settled_fraction(
    X: np.ndarray, codebook: np.ndarray, bmu: np.ndarray, fraction: float, sample: int = BALL_SAMPLE_ROWS
) -> float:
    """About what fraction of the rows the ball test (:func:`check_rows`, one group) would
    settle with ``codebook``, given each row's last winner ``bmu``: from ``sample`` rows
    spread evenly over ``X``, the units within twice their distance to that winner (for
    choosing the search only; the results never depend on it). The distances between
    units are :func:`somvq.distances.squared_distances`, exact at any offset: the plain
    expanded form answered 0 instead of 0.98 for data at an offset of 1e9, where the
    ball itself, made of direct distances, works as well as near the origin."""
    from ..distances import squared_distances

    n_rows = X.shape[0]
    n_units = codebook.shape[0]
    listed = _listed(n_units, _ball_fraction(n_rows, n_units, fraction))
    if listed <= 0:
        return 0.0  # (the check makes no lists)
    rows = np.unique(np.linspace(0, n_rows - 1, min(n_rows, sample)).astype(np.int64))
    own = codebook[bmu[rows]]
    # (one BLAS thread: the BLAS's own threads spin after a call, and would take the
    # cores from the check that follows, 15.5 -> 21-29 ms a pass at 2e5 x 16)
    with np.errstate(over="ignore", invalid="ignore"), cpu_bmu.single_threaded_blas():
        diff = X[rows].astype(np.float64) - own
        reach2 = np.einsum("sd,sd->s", diff, diff)
        between = squared_distances(own, codebook)
        inside = (between <= 4.0 * reach2[:, None]).sum(1) - 1
    settled = inside <= listed if listed == n_units - 1 else inside < listed
    return float(np.mean(settled))


def ball_table(codebook: np.ndarray, near_units: np.ndarray, scale: float, max_bytes: int | None = None):
    """The listed units of every unit's ball in lanes, for :func:`check_rows`' screen:
    ``(table, groups)``, the layout of :mod:`somvq._kernels.cpu_lanes` (``groups`` of
    :data:`~somvq._kernels.cpu_lanes.LANES` units per list, the first ``LANES * groups``
    listed units, padded with inf), in the codebook's dtype, each coordinate times the
    power of two ``scale`` (as the rows' differences are; inf where that overflows: those
    rows are not screened). As many groups as fit ``max_bytes`` (default
    :data:`BALL_TABLE_BYTES`); ``groups == 0``: none."""
    if max_bytes is None:
        max_bytes = BALL_TABLE_BYTES
    n_units, n_features = codebook.shape
    listed = near_units.shape[1]
    per_group = n_units * LANES * n_features * codebook.itemsize
    groups = min(-(-listed // LANES), max_bytes // max(per_group, 1))
    if groups <= 0 or n_features == 0:
        return np.empty(0, dtype=codebook.dtype), 0
    table = np.empty(n_units * groups * n_features * LANES, dtype=codebook.dtype)
    fill_ball_table(codebook, near_units, scale, table)  # (0.33 ms at K = 400, D = 16; a NumPy gather 0.69)
    return table, groups


_TABLE_SIGNATURES = [
    types.void(
        array(dtype, 2, "C", readonly=True),  # codebook
        array(types.int64, 2, "C", readonly=True),  # each unit's listed units (K, M)
        types.float64,  # scale (power of two)
        array(dtype, 1, "C"),  # out: the table (K * groups * D * LANES)
    )
    for dtype in FLOATS
]


@njit(_TABLE_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def fill_ball_table(codebook, near_units, scale, table):
    """:func:`ball_table`'s layout: for unit ``a``, group ``g``, feature ``j`` and lane ``l``,
    ``table[((a G + g) D + j) LANES + l]`` is coordinate ``j`` of listed unit ``g LANES + l``
    times ``scale``, inf past the list."""
    n_units, n_features = codebook.shape
    n_listed = near_units.shape[1]
    per_unit = table.shape[0] // n_units
    groups = per_unit // (n_features * LANES)
    for a in range(n_units):
        for t in range(groups * LANES):
            start = a * per_unit + (t // LANES) * n_features * LANES + t % LANES
            if t < n_listed:
                k = near_units[a, t]
                for j in range(n_features):
                    table[start + j * LANES] = codebook[k, j] * scale
            else:
                for j in range(n_features):
                    table[start + j * LANES] = np.inf


def _check(X, codebook, bounds: Bounds, search) -> int:
    """:func:`check_rows` over parts of the rows on the block pool; the candidates (in
    increasing order) in ``bounds.candidates[:n]``; returns ``n``."""
    n = X.shape[0]
    n_units = codebook.shape[0]
    n_groups = bounds.starts.shape[0] - 1
    unit_moves = moves_of_units(bounds.codebook, codebook)
    moves = group_moves32(np.maximum.reduceat(unit_moves[bounds.members], bounds.starts[:-1]))
    max_units = int(bounds.recheck * n_units)
    # the ball test runs with one group only (check_rows): not for k-means' groups
    ball = _ball_fraction(n, n_units, bounds.ball) if n_groups == 1 else 0.0
    near_units, near_low = unit_balls(codebook, search.direct_scale, ball, bounds.near_units)
    bounds.near_units = near_units if near_units.shape[1] else None
    table, table_groups = ball_table(codebook, near_units, search.direct_scale)
    screen = screen_error(X.dtype, X.shape[1])
    parts = list(range(0, n, CHECK_PART_ROWS))
    found = [(0, 0, 0)] * len(parts)

    def one(p):
        lo = parts[p]
        hi = min(lo + CHECK_PART_ROWS, n)
        found[p] = check_rows(
            X[lo:hi],
            codebook,
            bounds.bmu[lo:hi],
            bounds.lower[lo:hi],
            moves,
            bounds.members,
            bounds.starts,
            bounds.group_of,
            search.direct_scale,
            MARGIN,
            max_units,
            unit_moves,
            near_units,
            near_low,
            table,
            table_groups,
            screen,
            np.empty(LANES * table_groups, dtype=X.dtype),
            np.empty(X.shape[1], dtype=X.dtype),
            np.empty(n_units),
            np.empty(n_groups, dtype=np.int8),
            np.empty(n_groups, dtype=np.float32),
            bounds.sq_dist[lo:hi],
            bounds.candidates[lo:hi],
        )

    _run_parts(len(parts), one)
    # gather the parts' candidates (indices within each part) into one increasing list
    total = 0
    for p, (count, _, _) in enumerate(found):
        lo = parts[p]
        if count:
            np.add(bounds.candidates[lo : lo + count], lo, out=bounds.candidates[total : total + count])
            total += count
    bounds.rechecked = sum(r for _, r, _ in found)
    bounds.screened = sum(s for _, _, s in found)
    return total


def _run_parts(n_parts: int, one) -> None:
    """``one(p)`` for every ``p < n_parts``, shared between the caller and the pool."""
    threads = min(cpu_bmu.blas_threads(), n_parts, cpu_bmu._CPU_COUNT)
    if threads <= 1:
        for p in range(n_parts):
            one(p)
        return
    claim = itertools.count()

    def drain():
        while True:
            i = next(claim)  # atomic under the GIL
            if i >= n_parts:
                return
            one(i)

    pool = cpu_bmu._pool(threads - 1)
    futures = [pool.submit(drain) for _ in range(threads - 1)]
    try:
        drain()
    finally:
        for _ in range(n_parts):
            next(claim)
        for future in futures:
            if not future.cancel():
                future.result()


def pruned_search(
    X: np.ndarray, codebook: np.ndarray, bounds: Bounds, counts=None, sums=None, chunk_rows: int = CHUNK_ROWS
) -> np.ndarray:
    """Winners of every row of ``X`` (in ``bounds.bmu``) and squared distances (returned).

    The same results, bit for bit, as :func:`somvq._kernels.cpu_bmu.best_matching_units`
    (winners, squared distances, and ``counts``/``sums`` added in row order) when
    ``bounds`` came from earlier calls on the same ``X``; updates ``bounds``.
    """
    n = X.shape[0]
    X = np.ascontiguousarray(X)  # the compiled passes read C rows (a fit's data already is)
    codebook = np.ascontiguousarray(codebook, dtype=X.dtype)
    search = cpu_bmu._search_setup(codebook, X.dtype)
    if not math.isfinite(search.radius):
        # A diverged codebook: the full search's own handling, and no bounds kept.
        cpu_bmu.best_matching_units(X, codebook, None, bounds.bmu, bounds.sq_dist, counts=counts, sums=sums)
        bounds.codebook = None
        bounds.searched = n
        return bounds.sq_dist
    bounds.for_units(codebook)
    bounds.rechecked = 0
    bounds.screened = 0
    if bounds.codebook is None:
        candidates = None
        n_search = n
    else:
        n_search = _check(X, codebook, bounds, search)
        candidates = None if n_search == n else bounds.candidates[:n_search]
    if n_search:
        # per-group minima only for the rows a later pass searches (the first pass: all rows)
        _search_rows(X, candidates, search, bounds, chunk_rows, per_group=candidates is not None)
    bounds.codebook = codebook.copy()
    bounds.searched = n_search
    if counts is not None:
        cpu_bmu.accumulate_statistics(X, bounds.bmu, counts, sums)
    return bounds.sq_dist


#: Where :func:`search_rows_pass` keeps its shared counts in ``sync`` (:mod:`cpu_sync`'s
#: layout): blocks claimed, blocks done.
BLOCKS_CLAIMED, BLOCKS_DONE = CLAIMED, DONE

_ROWS_PASS_SIGNATURES = [
    types.void(
        array(dtype, 2, "C", readonly=True),  # X
        array(types.int64, 1, "C", readonly=True),  # the rows to search, increasing; empty: all
        types.int64,  # rows per block
        array(dtype, 2, "C"),  # this thread's gathered rows (rows, D)
        array(dtype, 2, "C"),  # this thread's (rows, D + 1) buffer whose last column is 1
        array(dtype, 2, "C"),  # this thread's (rows, K) scores
        array(types.int64, 1, "C"),  # this thread's winners (rows,)
        array(types.float64, 1, "C"),  # this thread's squared distances (rows,)
        array(types.float32, 2, "C"),  # this thread's lower bounds (rows, G)
        array(dtype, 2, "C", readonly=True),  # codebook
        array(dtype, 2, "C", readonly=True),  # [-2 W' | ||w'||^2] (K, D + 1)
        array(dtype, 1, "C", readonly=True),  # centre of the frame
        array(types.float64, 1, "C"),  # frame: RADIUS, SCALE, CENTRED, FINITE
        types.float64,  # kappa
        types.float64,  # overflow
        types.float64,  # up
        types.float64,  # margin
        array(types.int64, 1, "C"),  # where each group starts, and K
        array(types.int64, 1, "C"),  # group of each unit
        types.boolean,  # each group's own minimum (else the runner-up's bound for all)
        array(types.int64, 1, "C"),  # out: winners of all rows
        array(types.float64, 1, "C"),  # out: squared distances of all rows
        array(types.float32, 2, "C"),  # out: lower bounds of all rows (n, G)
        array(types.int64, 1, "C"),  # sync (SYNC_SIZE), zero on entry
    )
    for dtype in FLOATS
]


@njit(_ROWS_PASS_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def search_rows_pass(
    X,
    candidates,
    chunk_rows,
    gathered,
    framed,
    products,
    bmu,
    sq_dist,
    low,
    codebook,
    aug,
    centre,
    frame,
    kappa,
    overflow,
    up,
    margin,
    starts,
    group_of,
    per_group,
    out_bmu,
    out_sq_dist,
    out_lower,
    sync,
):
    """One thread's share of the exact search of the rows ``candidates`` (every row when
    empty) and their new lower bounds: every thread of :func:`_search_rows` runs it on the
    same arguments but its own scratch buffers.

    The thread claims the next block from ``sync[BLOCKS_CLAIMED]`` until none is left:
    the block's rows (gathered into ``gathered``, or read in place when every row is
    searched) go through :func:`~somvq._kernels.cpu_bmu.search_block`, then
    :func:`runner_up_block` reads the same scores for the bounds, and the results go to
    the rows' places in the outputs. Blocks write disjoint rows, so nothing waits here;
    ``sync[BLOCKS_DONE]`` counts the blocks finished for the caller, and ``sync[ABORT]``
    (a thread failed) stops the loop.
    """
    n_features = X.shape[1]
    everything = candidates.shape[0] == 0
    n_search = X.shape[0] if everything else candidates.shape[0]
    n_blocks = (n_search + chunk_rows - 1) // chunk_rows
    radius = frame[RADIUS]
    frame_scale = frame[SCALE]
    while atomic_load(sync, ABORT) == 0:
        b = atomic_add(sync, BLOCKS_CLAIMED, 1)
        if b >= n_blocks:
            return
        start = b * chunk_rows
        stop = min(start + chunk_rows, n_search)
        rows = stop - start
        if everything:  # the block's rows in place, the results straight to theirs
            source, lo, hi = X, start, stop
            winners, distances, bounds = out_bmu, out_sq_dist, out_lower[start:stop]
        else:
            for r in range(rows):
                row = candidates[start + r]
                for j in range(n_features):
                    gathered[r, j] = X[row, j]
            source, lo, hi = gathered, 0, rows
            winners, distances, bounds = bmu, sq_dist, low[:rows]
        search_block(
            source,
            lo,
            hi,
            framed,
            products,
            codebook,
            aug,
            centre,
            frame,
            kappa,
            overflow,
            up,
            winners,
            distances,
            False,  # runner_up_block reads the GEMM's scores
        )
        runner_up_block(
            framed[:rows],
            products[:rows],
            winners[lo:hi],
            distances[lo:hi],
            kappa,
            radius,
            overflow,
            up,
            frame_scale,
            margin,
            starts,
            group_of,
            per_group,
            bounds,
        )
        if not everything:
            for r in range(rows):
                row = candidates[start + r]
                out_bmu[row] = bmu[r]
                out_sq_dist[row] = sq_dist[r]
                for g in range(out_lower.shape[1]):
                    out_lower[row, g] = low[r, g]
        add_and_wake(sync, BLOCKS_DONE, 1)


_EVERY_ROW = np.zeros(0, dtype=np.int64)


def _search_rows(X, candidates, search, bounds: Bounds, chunk_rows, per_group=True):
    """The exact search (and new lower bounds) of the rows ``candidates`` (all if None):
    :func:`search_rows_pass` on the calling thread and, with more than one BLAS thread and
    more than one block, on pool workers (one compiled call each, no GIL between blocks).
    The caller then waits for every block to be done; a failure on any thread sets
    ``sync[ABORT]`` and is raised here."""
    n_search = X.shape[0] if candidates is None else candidates.shape[0]
    chunk = cpu_bmu.balanced_chunk_rows(n_search, chunk_rows)
    n_blocks = -(-n_search // chunk)
    n_features = X.shape[1]
    n_units = search.aug.shape[0]
    n_groups = bounds.lower.shape[1]
    rows = _EVERY_ROW if candidates is None else np.ascontiguousarray(candidates, dtype=np.int64)
    sync = np.zeros(SYNC_SIZE, dtype=np.int64)

    def run():
        search_rows_pass(
            X,
            rows,
            chunk,
            np.empty((chunk, n_features), dtype=X.dtype),
            cpu_bmu._augmented_buffer(chunk, n_features, X.dtype),
            cpu_bmu._products_buffer(chunk, n_units, X.dtype),
            np.empty(chunk, dtype=np.int64),
            np.empty(chunk),
            np.empty((chunk, n_groups), dtype=np.float32),
            search.codebook,
            search.aug,
            search.shift,
            search.frame,
            search.kappa,
            search.overflow,
            search.up,
            MARGIN,
            bounds.starts,
            bounds.group_of,
            per_group,
            bounds.bmu,
            bounds.sq_dist,
            bounds.lower,
            sync,
        )

    threads = min(cpu_bmu.search_threads(), n_blocks, cpu_bmu._CPU_COUNT)
    with cpu_bmu.single_threaded_blas():
        if threads <= 1:
            run()
        else:
            cpu_bmu.run_on_threads(run, sync, threads, BLOCKS_DONE, n_blocks, "pruned_search")
