"""The dense search's scores for few features, fused with their ranking: rows in vector lanes.

The GEMM form of the search (:func:`somvq._kernels.cpu_bmu.search_block`) writes a block's
``rows x K`` scores and reads them back to rank them. With few features the product is
short (``D + 1`` multiply-adds a score), so that store and reload, and the ranking's
passes over every score, cost as much as the product itself (docs/performance.md,
round 22). Here the scores never reach memory. The block's rows, in the codebook's frame,
are laid out in tiles of :data:`VECTORS` vectors of rows, transposed::

    tiles[(t * D + j) * T + r] = feature j of row t * T + r   (T = VECTORS * lanes)

so that one vector holds one feature of eight float32 rows (four float64 ones). Per
group of :data:`UNITS` units, :func:`lowest_two` broadcasts each unit's coefficients
(``-2 w'_kj`` and ``||w'_k||^2``, the augmented codebook's row) and accumulates
``VECTORS x UNITS`` score vectors in registers; each score vector then updates, lane by
lane, the row's lowest score, its unit, and the second-lowest score (a multiset: a tie
for the lowest makes the second equal to it). No horizontal operation anywhere.

The lowest two are what the exact search needs: the winner is certified when the second
lowest score is above the limit ``m + 2 e + eta`` (:func:`~somvq._kernels.cpu_bmu.rank_limit`:
exactly one score within it); every other row
goes back to the GEMM form's ranking (its scores recomputed, then
:func:`~somvq._kernels.cpu_bmu.rank_block`). Winners and distances are therefore the
same bits as the GEMM form's: the scores only certify, and the bound
(:func:`somvq.distances.expanded_form_error`) holds for any order of summation, with or
without fused multiply-adds.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .config import CACHE, FASTMATH
from .cpu_lanes import splat
from .cpu_scores import EXACT_INDICES

#: Row vectors per tile (three: 24 float32 rows, 12 float64 ones) and units per group: 12
#: score vectors in registers, with three row vectors and one broadcast, the 16 of AVX2.
#: Measured against 2 x 4, 2 x 6, 1 x 8 and 2 x 3 (docs/performance.md, round 22).
VECTORS = 3
UNITS = 4

#: Rows per tile: :data:`VECTORS` 256-bit vectors of float32 rows (the float64 tile is
#: half as many rows; the scratch is sized for this one).
TILE_ROWS = VECTORS * 8

#: Most features for which the fused form is used: up to here it beat the GEMM form on
#: every K measured in float32 (round 22: 0.85-0.97x at D = 64-128, 0.99-1.03x from 200).
MAX_FEATURES = 128
#: float64 beyond :data:`MAX_FEATURES`: up to this many features, with at least
#: :data:`WIDE_MIN_UNITS` units, the fused form still wins (round 22, K = 256-512: 0.80-0.85x
#: at D = 256-1024, 0.91x at 2048); with fewer units it does not (D = 784: 1.00x at K = 100,
#: 1.11x at K = 16). float32's GEMM is twice float64's width, so it gains nothing there.
WIDE_MAX_FEATURES = 2048
WIDE_MIN_UNITS = 256

#: The flags of the vector arithmetic: :data:`~somvq._kernels.config.FASTMATH`'s.
_FLAGS = ("reassoc", "contract", "arcp", "nsz")


def lanes_of(dtype) -> int:
    """Rows per 256-bit vector of ``dtype`` (a Numba float type)."""
    return 8 if dtype == types.float32 else 4


def _vector_at(builder, vector, pointer, index):
    """A ``vector`` pointer to element ``index`` of ``pointer`` (scalars of its type)."""
    return builder.bitcast(builder.gep(pointer, [index]), vector.as_pointer())


@intrinsic
def lowest_two(typingctx, tiles, n_tiles, aug, low, second, index):
    """Per row of ``n_tiles`` tiles (the layout above): the lowest score over the units of
    ``aug`` (``[-2 W' | ||w'||^2]``, K x (D + 1), C-contiguous) into ``low``, the first
    unit scoring it into ``index`` (as a float of the dtype: exact below 2^24 units) and
    the second-lowest score into ``second``, at the row's place (``n_tiles * T`` entries
    each). Scores are ``||w'_k||^2 + sum_j (-2 w'_kj) x'_j``, summed in the dtype with
    multiply-adds. ``low`` and ``second`` are +inf for a row whose scores are all NaN; a
    NaN score is otherwise skipped (rows that can produce one, non-finite or beyond the
    overflow limit, are ranked by the caller's full comparison)."""
    arrays = (tiles, low, second, index)
    if not all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in arrays):
        return None
    dtype = tiles.dtype
    if dtype not in (types.float32, types.float64) or any(a.dtype != dtype for a in arrays):
        return None
    if not (isinstance(aug, types.Array) and aug.ndim == 2 and aug.layout == "C" and aug.dtype == dtype):
        return None
    if not isinstance(n_tiles, types.Integer):
        return None
    lanes = lanes_of(dtype)
    signature = types.void(tiles, types.int64, aug, low, second, index)

    def codegen(context, builder, sig, args):
        tiles_v, n_tiles_v, aug_v, low_v, second_v, index_v = args
        x = context.make_array(sig.args[0])(context, builder, tiles_v)
        a = context.make_array(sig.args[2])(context, builder, aug_v)
        outs = [context.make_array(sig.args[k])(context, builder, args[k]) for k in (3, 4, 5)]
        i64 = ir.IntType(64)
        scalar = context.get_value_type(dtype)
        vector = ir.VectorType(scalar, lanes)
        align = dtype.bitwidth // 8
        n_units = builder.extract_value(a.shape, 0)
        width = builder.extract_value(a.shape, 1)
        n_features = builder.sub(width, ir.Constant(i64, 1))
        tile = ir.Constant(i64, VECTORS * lanes)
        inf = ir.Constant(vector, [math.inf] * lanes)

        def constant(value):
            return ir.Constant(i64, value)

        def broadcast(value):
            return splat(builder, vector, value)

        def vector_at(pointer, offset):
            return _vector_at(builder, vector, pointer, offset)

        def coefficient(k, j):
            return broadcast(builder.load(builder.gep(a.data, [builder.add(builder.mul(k, width), j)])))

        # per row vector: lowest score, its unit, second-lowest score
        state = [[cgutils.alloca_once(builder, vector) for _ in range(3)] for _ in range(VECTORS)]
        sums = [[cgutils.alloca_once(builder, vector) for _ in range(VECTORS)] for _ in range(UNITS)]

        def rank(r, score, unit):
            low_p, index_p, second_p = state[r]
            lowest = builder.load(low_p)
            below = builder.fcmp_ordered("<", score, lowest)
            # the larger of the two is a candidate for second place (a tie included)
            other = builder.select(below, lowest, score)
            second = builder.load(second_p)
            builder.store(builder.select(builder.fcmp_ordered("<", other, second), other, second), second_p)
            builder.store(builder.select(below, score, lowest), low_p)
            builder.store(builder.select(below, unit, builder.load(index_p)), index_p)

        def group(base, first, count):
            """Scores of units first .. first + count - 1 for the tile at base, ranked in
            unit order (the lowest index keeps a tie)."""
            for u in range(count):
                bias = coefficient(builder.add(first, constant(u)), n_features)
                for r in range(VECTORS):
                    builder.store(bias, sums[u][r])
            with cgutils.for_range(builder, n_features) as feature:
                j = feature.index
                row = builder.add(base, builder.mul(j, tile))
                xs = [
                    builder.load(vector_at(x.data, builder.add(row, constant(r * lanes))), align=align)
                    for r in range(VECTORS)
                ]
                for u in range(count):
                    w = coefficient(builder.add(first, constant(u)), j)
                    for r in range(VECTORS):
                        product = builder.fmul(w, xs[r], flags=_FLAGS)
                        builder.store(
                            builder.fadd(builder.load(sums[u][r]), product, flags=_FLAGS), sums[u][r]
                        )
            for u in range(count):
                unit = broadcast(builder.sitofp(builder.add(first, constant(u)), scalar))
                for r in range(VECTORS):
                    rank(r, builder.load(sums[u][r]), unit)

        with cgutils.for_range(builder, n_tiles_v) as t:
            base = builder.mul(builder.mul(t.index, n_features), tile)
            for r in range(VECTORS):
                builder.store(inf, state[r][0])
                builder.store(ir.Constant(vector, [0.0] * lanes), state[r][1])
                builder.store(inf, state[r][2])
            n_groups = builder.udiv(n_units, constant(UNITS))
            with cgutils.for_range(builder, n_groups) as g:
                group(base, builder.mul(g.index, constant(UNITS)), UNITS)
            done = builder.mul(n_groups, constant(UNITS))
            with cgutils.for_range(builder, builder.sub(n_units, done)) as rest:
                group(base, builder.add(done, rest.index), 1)
            place = builder.mul(t.index, tile)
            for r in range(VECTORS):
                at = builder.add(place, constant(r * lanes))
                for out, value in zip(outs, (state[r][0], state[r][2], state[r][1])):
                    builder.store(builder.load(value), vector_at(out.data, at), align=align)
        return context.get_dummy_value()

    return signature, codegen


def _transpose_stages(lanes):
    """The shuffles of an ``lanes x lanes`` transpose: per stage ``h`` (``lanes / 2`` down to
    1), the masks that make rows ``i`` and ``i + h`` (``i & h == 0``) of the two inputs
    ``a`` and ``b`` (indices ``lanes + p`` are ``b``'s) swap their off-diagonal ``h x h``
    blocks: after every stage each ``2h x 2h`` block is transposed."""
    stages = []
    h = lanes // 2
    while h >= 1:
        lo = [p if p & h == 0 else lanes + p - h for p in range(lanes)]
        hi = [p + h if p & h == 0 else lanes + p for p in range(lanes)]
        stages.append((h, lo, hi))
        h //= 2
    return stages


@intrinsic
def framed_lanes(typingctx, block, row0, offset, factor, tiles, base, tile):
    """Rows ``row0 .. row0 + L - 1`` of ``block`` (L the dtype's lanes: 8 float32, 4
    float64), each feature ``j < L * (D // L)`` framed as ``(x - offset_j) * factor`` in the
    dtype, into ``tiles[base + j * tile + r]`` (row ``row0 + r``): L rows are loaded L
    features at a time and transposed in registers (:func:`_transpose_stages`), so every
    load and store is a whole vector. ``block`` C-contiguous (N, D), ``offset`` (D,) and
    ``tiles`` C-contiguous of its dtype, ``factor`` a scalar of it; the caller checks the
    bounds and writes the last ``D % L`` features."""
    if not (isinstance(block, types.Array) and block.ndim == 2 and block.layout == "C"):
        return None
    dtype = block.dtype
    if dtype not in (types.float32, types.float64) or factor != dtype:
        return None
    for a in (offset, tiles):
        if not (isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" and a.dtype == dtype):
            return None
    if not all(isinstance(v, types.Integer) for v in (row0, base, tile)):
        return None
    lanes = lanes_of(dtype)
    signature = types.void(block, types.int64, offset, dtype, tiles, types.int64, types.int64)

    def codegen(context, builder, sig, args):
        block_v, row0_v, offset_v, factor_v, tiles_v, base_v, tile_v = args
        x = context.make_array(sig.args[0])(context, builder, block_v)
        off = context.make_array(sig.args[2])(context, builder, offset_v)
        out = context.make_array(sig.args[4])(context, builder, tiles_v)
        i32, i64 = ir.IntType(32), ir.IntType(64)
        vector = ir.VectorType(context.get_value_type(dtype), lanes)
        align = dtype.bitwidth // 8
        n_features = builder.extract_value(x.shape, 1)
        masks = [
            (h, ir.Constant(ir.VectorType(i32, lanes), lo), ir.Constant(ir.VectorType(i32, lanes), hi))
            for h, lo, hi in _transpose_stages(lanes)
        ]
        scale = splat(builder, vector, factor_v)

        def vector_at(pointer, index):
            return _vector_at(builder, vector, pointer, index)

        with cgutils.for_range(builder, builder.udiv(n_features, ir.Constant(i64, lanes))) as chunk:
            j0 = builder.mul(chunk.index, ir.Constant(i64, lanes))
            centre = builder.load(vector_at(off.data, j0), align=align)
            rows = []
            for r in range(lanes):
                at = builder.add(builder.mul(builder.add(row0_v, ir.Constant(i64, r)), n_features), j0)
                # IEEE subtract and multiply, as in_frame (a power-of-two factor: exact)
                rows.append(
                    builder.fmul(
                        builder.fsub(builder.load(vector_at(x.data, at), align=align), centre), scale
                    )
                )
            for h, lo, hi in masks:
                for i in range(lanes):
                    if i & h == 0:
                        a, b = rows[i], rows[i + h]
                        rows[i], rows[i + h] = (
                            builder.shuffle_vector(a, b, lo),
                            builder.shuffle_vector(a, b, hi),
                        )
            for q in range(lanes):
                at = builder.add(base_v, builder.mul(builder.add(j0, ir.Constant(i64, q)), tile_v))
                builder.store(rows[q], vector_at(out.data, at), align=align)
        return context.get_dummy_value()

    return signature, codegen


@njit(cache=CACHE, nogil=True)
def tile_rows(itemsize):
    """Rows per tile for a dtype of ``itemsize`` bytes (24 float32, 12 float64)."""
    return VECTORS * (32 // itemsize)


@njit(cache=CACHE, nogil=True)
def applies(n_features, n_units, itemsize):
    """Whether the dense search takes the fused form for ``n_features`` features, ``n_units``
    units and rows of ``itemsize`` bytes (where it measured faster than the GEMM form)."""
    if n_units <= 0 or n_units >= EXACT_INDICES:
        return False
    if n_features <= MAX_FEATURES:
        return True
    return itemsize == 8 and n_features <= WIDE_MAX_FEATURES and n_units >= WIDE_MIN_UNITS


@njit(cache=CACHE, nogil=True)
def scratch_size(rows, n_units, n_features):
    """Entries of scratch the fused search needs for a block of ``rows`` rows: the tiles,
    the lowest two scores and the index of each row (padded to whole tiles), and a row of
    scores."""
    padded = (rows + TILE_ROWS - 1) // TILE_ROWS * TILE_ROWS
    return padded * (n_features + 3) + n_units


def scores_rows(rows: int, n_units: int, n_features: int, itemsize: int) -> int:
    """Rows of a ``(rows, K)`` scores buffer of ``itemsize``-byte floats that also holds the
    fused search's scratch for a block of ``rows`` rows where the fused form
    :func:`applies` (more than ``rows`` only when K is small against D)."""
    if not applies(n_features, n_units, itemsize):
        return rows
    return max(rows, -(-int(scratch_size(rows, n_units, n_features)) // n_units))


@njit(inline="always")
def in_frame(value, centre, centred, scaled, factor):
    """One value in the codebook's frame, in its dtype: minus the centre when ``centred``,
    times ``factor`` (a power of two) when ``scaled``. Both forms of the search frame their
    rows with it, so they rank the same values."""
    if centred:
        value = value - centre
    if scaled:
        value = value * factor
    return value


@njit(cache=CACHE, fastmath=FASTMATH, nogil=True)
def frame_tiles(block, centre, factor, centred, scaled, tiles, tile, norms):
    """``block``'s rows in the frame (minus ``centre`` when ``centred``, times ``factor``
    when ``scaled``, in the rows' dtype: the GEMM form's values) into ``tiles`` (the layout
    above, ``tile`` rows a tile, padding rows 0), and each row's ``||x'||^2`` (float64)
    into ``norms``. Returns the number of tiles.

    Whole vectors of rows go through :func:`framed_lanes` (transposed in registers); the
    last ``D % L`` features and a last partial vector of rows are written one by one.
    The norms are summed row by row from the same framed values (vectorised across the
    features)."""
    n, n_features = block.shape
    n_tiles = (n + tile - 1) // tile
    lanes = 32 // block.itemsize  # framed_lanes' rows: one 256-bit vector of the dtype
    if tile % lanes != 0:
        raise ValueError("frame_tiles: a tile is not a whole number of row vectors")
    whole = n_features - n_features % lanes
    offset = centre[:n_features].copy()
    if not centred:
        offset[:] = 0.0
    one = tiles[:1].copy()
    one[0] = factor if scaled else 1.0
    for i in range(n):
        norm2 = 0.0
        for j in range(n_features):
            w = np.float64(in_frame(block[i, j], centre[j], centred, scaled, factor))
            norm2 += w * w
        norms[i] = norm2
    for t in range(n_tiles):
        base = t * n_features * tile
        for g in range(0, tile, lanes):
            row0 = t * tile + g
            first = 0
            if row0 + lanes <= n:
                framed_lanes(block, row0, offset, one[0], tiles, base + g, tile)
                first = whole
            for r in range(g, g + lanes):
                i = t * tile + r
                for j in range(first, n_features):
                    if i < n:
                        tiles[base + j * tile + r] = in_frame(block[i, j], centre[j], centred, scaled, factor)
                    else:
                        tiles[base + j * tile + r] = 0.0
    return n_tiles
