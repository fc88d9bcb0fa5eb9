"""The masked (NaN-aware) BMU search of blocks of rows, compiled end to end.

:func:`somvq.missing.masked_assign` is the definition (kohonen's masked distance
``D / n_obs * sum_{j observed} (x_j - w_j)^2``, winner = float64 direct-distance argmin,
lowest index on ties); this module is its fast form, one compiled call per share of
blocks of rows (no GIL held), modelled on the dense search (:func:`somvq._kernels.cpu_bmu.rank_block`,
:func:`somvq._kernels.cpu_bmu.search_block`):

1. one loop over the raw rows fills a per-thread ``rows x (D + 1)`` buffer ``[x' | 1]`` in
   the codebook's frame (``x' = (x - centre) * scale`` in float64, 0 at the holes) and
   the row's masked ``||x'||^2`` (float64);
2. one GEMM (``np.dot`` inside Numba, BLAS held at one thread by the caller) against
   ``[-2 W' | ||w'||^2]^T``: the same product as the dense search, inner size ``D + 1``
   (float32 for float32 data where the frame keeps every square normal, as
   ``somvq.missing._MaskedFrame`` decides; else float64);
3. one ranking pass per row, in the product's dtype: the score of unit ``k`` is the
   product minus the row's missing part of ``||w'_k||^2``, ``c_k = sum_{j missing}
   w'_kj^2`` (summed apart from a ``(D, K)`` table of squares in the product's dtype, up
   to four squares a pass, then one subtraction), so that it equals the masked score
   ``sum_{j observed} (w'_kj^2 - 2 x'_j w'_kj)`` of the stacked formulation; then the
   lowest score, the number of scores within ``2 kappa (R (2 ||x'||_M + R) + 4 eps
   ||x'||_M^2) + kappa64 (||x'||_M + R)^2`` of it (the stacked product's constants,
   the dense search's reach, and the direct distances' rounding; below) and, when it is one, that unit (the first
   index of the lowest score, NumPy's argmin; :mod:`somvq._kernels.cpu_scores`), the
   direct float64 re-rank of those units when there is more than one (lowest index on
   ties), and the direct masked distance of the winner.

Why the bound still holds (``u`` the unit roundoff of the product's dtype, ``R`` the
frame's radius, ``a = ||x'||_M``; each term is at most its factor times ``u R (2 a + R)``,
which bounds ``2 a R + R^2``: no term grows with ``a^2``, so rows far from a contracted
codebook are not all re-ranked, as they were with the looser ``u (a + R)^2``: 8.6 s
instead of 0.34 s for the dense search of the same 70,000 x 784 rows):

* the GEMM of ``D + 1`` terms: ``gamma_{D+1} (2 a R + ||w'_k||^2)``, any summation order,
  with or without FMA: ``D + 1``;
* float32 only: the factors ``x'``, ``-2 w'`` and ``||w'||^2`` rounded once each from
  float64: ``3``;
* ``||w'_k||^2``: float64 squares summed with compensation (within ``2 u64 R^2``), then
  rounded once to the product's dtype: ``2`` in float64 (float32: inside the ``3``);
* ``c_k``: ``n_missing <= D - 1`` squares, each rounded to the dtype, summed in any order:
  ``gamma_{n_missing} R^2``: ``D - 1``;
* the one subtraction, rounded to the dtype: ``|result| <= 2 a R + R^2``: ``1``;
* the frame's rounding of ``x - centre`` and ``w - centre`` (float64): what differs
  between units is within ``2 u64 R (2 a + R)``, and the second-order terms within
  ``u64^2 (a + R)^2``, covered by the ``4 eps a^2`` added to the reach (as
  :func:`somvq.distances.expanded_form_error` has it for the dense search).

A unit alone within the limit is then the nearest in exact arithmetic; the definition's
winner is the argmin of the *rounded* float64 direct distances (lowest index on ties),
whose relative error is at most ``gamma_{D + 2}`` of a distance ``<= (a + R)^2``: so the
limit also adds ``kappa64 (a + R)^2`` (the float64 constant, ``1.25 (2 D + 8) u64``: more
than twice one distance's rounding, ``2 (D + 3) u64 (a + R)^2``), and a unit certified
alone cannot tie another in those distances. Without it, float64
rows 1e3 from a codebook of radius 3e-3 came out as unit 1 where the direct distances tie
units 0 and 1 (tests/test_missing.py). In float32 this term is far below the others.

In float64 that is at most ``(D + 1) + 2 + (D - 1) + 1 + 2 = 2 D + 5``, in float32
``(D + 1) + 3 + (D - 1) + 1 = 2 D + 4`` (plus float64 terms far below one), both within
the ``1.25 (2 D + 8)`` of the stacked product (``[M, M o x'] @ [[w'^2]^T; [-2 w']^T]``,
inner size ``2 D``), whose constants (``_MaskedFrame.kappa``, ``kappa32``) are used
unchanged. The limit is computed in float64 and moved up past its rounding to the dtype
(only ever widening the candidate set). NaN marks a missing entry (``x != x``: FASTMATH
keeps NaN semantics). The direct distances are summed in feature order by a function
compiled without fast-math (:func:`_direct`), so they are the same bits as before this
kernel (``masked_direct_distances``, which it replaces).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types

from ._signatures import array
from .config import CACHE, FASTMATH
from .cpu_scores import lowest, sole_or_first, within

_F8_1 = array(types.float64, 1, "C")
_F8_2 = array(types.float64, 2, "C")
_F4_2 = array(types.float32, 2, "C")
_F8_1_RO = array(types.float64, 1, "C", readonly=True)
_F8_2_RO = array(types.float64, 2, "C", readonly=True)
_F4_2_RO = array(types.float32, 2, "C", readonly=True)
_F4_1 = array(types.float32, 1, "C")
_I8_1 = array(types.int64, 1, "C")


@njit([types.void(_F8_2_RO, _F8_2, _F8_2, _F8_1)], cache=CACHE, nogil=True)
def frame_tables(WcT, aug, squares, comp):  # pragma: no cover - compiled
    """``aug = [-2 W' | ||w'||^2]`` (K, D + 1) and ``squares = (W' o W')^T`` (D, K), float64.

    ``WcT``: ``W'^T`` (D, K). ``||w'_k||^2`` is the compensated (Neumaier) sum of the
    rounded squares, within ``2 u ||w'_k||^2`` of the exact value (no fast-math here: the
    compensation must stay). The loops run over the units innermost, so they vectorise
    without reordering any unit's sum. ``comp``: scratch (K,).
    """
    n_features, n_units = WcT.shape
    for k in range(n_units):
        aug[k, n_features] = 0.0
        comp[k] = 0.0
    for j in range(n_features):
        for k in range(n_units):
            v = WcT[j, k]
            sq = v * v
            squares[j, k] = sq
            aug[k, j] = -2.0 * v
            total = aug[k, n_features]
            t = total + sq
            if abs(total) >= sq:
                comp[k] += (total - t) + sq
            else:
                comp[k] += (sq - t) + total
            aug[k, n_features] = t
    for k in range(n_units):
        aug[k, n_features] += comp[k]


@njit(cache=CACHE, nogil=True, fastmath=False)  # explicit: not inherited from the fast-math caller
def _direct(X, i, W, k):  # pragma: no cover - compiled
    """``D / n_obs * sum_{j observed} (X[i, j] - W[k, j])^2``, float64, in feature order.

    No fast-math (set explicitly: Numba lets a callee that sets nothing inherit its fast-math
    caller's flags, whose contraction into FMA changed the last bits): one sum in feature
    order, the definition's bits.
    """
    n_features = X.shape[1]
    total = 0.0
    observed = 0
    for j in range(n_features):
        x = X[i, j]
        seen = x == x
        d = float(x) - float(W[k, j])
        d = d if seen else 0.0  # a select, not a branch: adding +0.0 leaves the sum's bits
        total += d * d
        observed += 1 if seen else 0
    return n_features / observed * total


@njit(cache=CACHE, fastmath=FASTMATH, nogil=True)
def _rank_rows(
    X,
    start,
    n,
    W,
    products,
    squares,
    norms,
    bound_const,
    direct_const,
    radius,
    up,
    scores,
    corr,
    holes,
    bmu,
    sq,
):  # pragma: no cover - compiled
    """Step 3 of the module docstring for rows ``start : start + n`` of ``X``.

    Everything in the product's dtype (float32: 8 lanes an AVX2 vector): ``squares`` the
    (D, K) table, ``scores`` and ``corr`` (K,) scratch; ``holes`` (D,) int64 scratch;
    ``up``: 4 eps of the dtype, moves the limit past its rounding to the dtype (as
    :func:`somvq._kernels.cpu_bmu.rank_block`); ``bound_const``: kappa of the product's
    dtype, ``direct_const``: float64's (the direct distances' rounding). The lowest score
    and the units within the limit are found as ``rank_block`` finds them
    (:mod:`somvq._kernels.cpu_scores`).
    """
    n_features = X.shape[1]
    n_units = products.shape[1]
    indices = np.arange(n_units + 1).astype(scores.dtype)  # within()'s unit indices
    limit_t = scores[:1].copy()
    reranked = 0
    for i in range(n):
        r = start + i
        n_holes = 0
        for j in range(n_features):  # the row's missing columns, without a branch
            x = X[r, j]
            holes[n_holes] = j
            n_holes += 1 if x != x else 0
        if n_holes == 0:
            for k in range(n_units):
                scores[k] = products[i, k]
        else:
            # c_k: the row's missing part of ||w'_k||^2, summed apart, then one subtraction;
            # up to four squares a pass (one pass for most rows: fewer loads and stores)
            done = 0
            while n_holes - done > 4:
                a0, a1, a2, a3 = holes[done], holes[done + 1], holes[done + 2], holes[done + 3]
                if done == 0:
                    for k in range(n_units):
                        corr[k] = (squares[a0, k] + squares[a1, k]) + (squares[a2, k] + squares[a3, k])
                else:
                    for k in range(n_units):
                        corr[k] += (squares[a0, k] + squares[a1, k]) + (squares[a2, k] + squares[a3, k])
                done += 4
            left = n_holes - done
            a0 = holes[done]
            a1 = holes[done + 1] if left > 1 else a0
            a2 = holes[done + 2] if left > 2 else a0
            a3 = holes[done + 3] if left > 3 else a0
            if done == 0:
                if left == 1:
                    for k in range(n_units):
                        scores[k] = products[i, k] - squares[a0, k]
                elif left == 2:
                    for k in range(n_units):
                        scores[k] = products[i, k] - (squares[a0, k] + squares[a1, k])
                elif left == 3:
                    for k in range(n_units):
                        scores[k] = products[i, k] - ((squares[a0, k] + squares[a1, k]) + squares[a2, k])
                else:
                    for k in range(n_units):
                        c = (squares[a0, k] + squares[a1, k]) + (squares[a2, k] + squares[a3, k])
                        scores[k] = products[i, k] - c
            else:
                for m in range(done, n_holes):
                    h = holes[m]
                    for k in range(n_units):
                        corr[k] += squares[h, k]
                for k in range(n_units):
                    scores[k] = products[i, k] - corr[k]
        best = lowest(scores)
        # R (2 ||x'||_M + R), and 4 eps ||x'||_M^2 for the second-order terms of the centring
        # (the dense search's reach, cpu_bmu.rank_block)
        norm = math.sqrt(norms[i])
        reach = radius * (2.0 * norm + radius) + up * norms[i]
        # plus the float64 rounding of the direct distances that decide (the winner is their
        # argmin, lowest index on ties: a unit certified alone must not tie with another there)
        far = norm + radius
        lim = np.float64(best) + 2.0 * bound_const * reach + direct_const * far * far
        limit_t[0] = lim + abs(lim) * up  # rounded to the dtype, still >= lim
        limit = limit_t[0]
        count, index = within(scores, limit, indices)
        # the first lowest score: the only one within the limit, else (near ties, and
        # scores that are not finite) a scan
        first = sole_or_first(scores, best, count, index)
        if first == n_units or not radius < np.inf:
            # a non-finite codebook (a diverged fit): NumPy's argmin, the first NaN score if
            # any (then no re-rank, as the NumPy search did), else the first lowest
            for k in range(n_units):
                if scores[k] != scores[k]:
                    first = k
                    count = 0
                    break
            first = 0 if first == n_units else first
        winner = first
        if count > 1:
            reranked += 1
            dist = np.inf
            found = -1
            for k in range(n_units):
                if scores[k] <= limit:
                    d = _direct(X, r, W, k)
                    if d < dist or found < 0:
                        dist = d
                        found = k
            winner = found
        else:
            dist = _direct(X, r, W, winner)
        bmu[r] = winner
        sq[r] = dist
    return reranked


@njit(cache=CACHE, fastmath=FASTMATH, nogil=True)
def _search_block(
    X,
    start,
    n,
    W,
    centre,
    scale,
    aug64,
    aug32,
    squares64,
    squares32,
    radius,
    single,
    kappa,
    kappa32,
    scratch,
    bmu,
    sq,
):  # pragma: no cover - compiled
    """Steps 1-3 of the module docstring for rows ``start : start + n`` of ``X`` (one block)."""
    left64, left32, prod64, prod32, norms, row64, row32, holes = scratch
    n_features = X.shape[1]
    n_units = W.shape[0]
    largest = 0.0
    for i in range(n):
        acc = 0.0
        for j in range(n_features):
            x = X[start + i, j]
            v = (np.float64(x) - centre[j]) * scale
            v = v if x == x else 0.0  # a hole: 0 (a select, so the loop vectorises)
            left64[i, j] = v
            acc += v * v
        left64[i, n_features] = 1.0
        norms[i] = acc
        largest = max(largest, acc)
        if single:
            for j in range(n_features + 1):
                left32[i, j] = np.float32(left64[i, j])
    if single and 2.0**-100 <= largest <= 2.0**100:
        out32 = prod32[:n]
        np.dot(left32[:n], aug32.T, out32)  # aug32.T: Fortran order, as NumPy's matmul gets it
        scores, corr = row32[:n_units], row32[n_units : 2 * n_units]
        up = 4.0 * 1.1920928955078125e-07  # 4 eps of float32
        return _rank_rows(
            X, start, n, W, out32, squares32, norms, kappa32, kappa, radius, up, scores, corr,
            holes, bmu, sq,
        )  # fmt: skip
    out64 = prod64[:n]
    np.dot(left64[:n], aug64.T, out64)
    scores, corr = row64[:n_units], row64[n_units : 2 * n_units]
    up = 4.0 * 2.220446049250313e-16  # 4 eps of float64
    return _rank_rows(
        X, start, n, W, out64, squares64, norms, kappa, kappa, radius, up, scores, corr,
        holes, bmu, sq,
    )  # fmt: skip


_SEARCH_SIGNATURES = [
    types.int64(
        array(dtype, 2, "C", readonly=True),  # X: the rows as given (float32 or float64)
        types.int64,  # start
        types.int64,  # stop
        types.int64,  # rows per block
        _F8_2_RO,  # W64: the codebook in float64, as given (direct distances)
        _F8_1_RO,  # centre of the frame (float64; zeros for none)
        types.float64,  # scale of the frame (a power of two)
        _F8_2_RO,  # aug64: [-2 W' | ||w'||^2] (K, D + 1)
        _F4_2_RO,  # aug32: the same rounded to float32 (or (1, 1) when unused)
        _F8_2_RO,  # squares64: (W' o W')^T (D, K)
        _F4_2_RO,  # squares32: the same rounded to float32 (or (1, 1) when unused)
        types.float64,  # R: the frame's radius
        types.boolean,  # single: the float32 product is allowed (the frame's test)
        types.float64,  # kappa (float64 product)
        types.float64,  # kappa32 (float32 product)
        _F8_2,  # scratch: [x' | 1] (rows, D + 1), float64
        _F4_2,  # scratch: the same in float32 (rows, D + 1) (or (1, 1) when unused)
        _F8_2,  # scratch: float64 products (rows, K)
        _F4_2,  # scratch: float32 products (rows, K) (or (1, 1) when unused)
        _F8_1,  # scratch: rows' masked ||x'||^2 (rows,)
        _F8_1,  # scratch: (2 K,) float64
        _F4_1,  # scratch: (2 K,) float32 (or (1,) when unused)
        _I8_1,  # scratch: (D,)
        _I8_1,  # out: winners of all rows of X
        _F8_1,  # out: masked squared distances of all rows of X
    )
    for dtype in (types.float32, types.float64)
]


@njit(_SEARCH_SIGNATURES, cache=CACHE, fastmath=FASTMATH, nogil=True)
def masked_search_rows(
    X,
    start,
    stop,
    block_rows,
    W,
    centre,
    scale,
    aug64,
    aug32,
    squares64,
    squares32,
    radius,
    single,
    kappa,
    kappa32,
    left64,
    left32,
    prod64,
    prod32,
    norms,
    row64,
    row32,
    holes,
    bmu,
    sq,
):  # pragma: no cover - compiled
    """Winners (``bmu``) and masked squared distances (``sq``) of ``X[start:stop]``.

    Blocks of ``block_rows`` rows from ``start`` (one call covers many blocks: a call's
    dispatch costs ~20 us), each through the three steps of the module docstring.
    Returns the number of re-ranked rows. ``single``: the frame allows the float32
    product (radius within ``[2^-50, 2^50]``); a block then takes it when its largest
    masked ``||x'||^2`` lies within ``[2^-100, 2^100]`` (``somvq.missing._MaskedFrame.scored``'s
    test), else float64. The results do not depend on how the rows are split into calls
    as long as the blocks are the same (and they do not depend on the blocks either,
    except through which precision ranked them: the winners and distances are exact).
    """
    n_features = X.shape[1]
    n_units = W.shape[0]
    if (
        block_rows > left64.shape[0]
        or block_rows > prod64.shape[0]
        or stop > bmu.shape[0]
        or stop > sq.shape[0]
        or 2 * n_units > row64.shape[0]
        or n_features > holes.shape[0]
        or left64.shape[1] != n_features + 1
        or prod64.shape[1] != n_units
        or squares64.shape[0] != n_features
        or squares64.shape[1] != n_units
        or (
            single
            and (
                block_rows > left32.shape[0]
                or block_rows > prod32.shape[0]
                or 2 * n_units > row32.shape[0]
                or squares32.shape[0] != n_features
                or squares32.shape[1] != n_units
            )
        )
    ):
        raise ValueError("masked_search_rows: the blocks do not fit the scratch buffers")
    scratch = (left64, left32, prod64, prod32, norms, row64, row32, holes)
    reranked = 0
    for b in range(start, stop, block_rows):
        n = min(block_rows, stop - b)
        reranked += _search_block(
            X, b, n, W, centre, scale, aug64, aug32, squares64, squares32, radius, single, kappa, kappa32,
            scratch, bmu, sq,
        )  # fmt: skip
    return reranked
