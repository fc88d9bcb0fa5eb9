"""Squared Euclidean distances that stay exact at any offset and scale.

The fast form of ``||x - w||^2`` is the expanded one, ``||x||^2 + ||w||^2 - 2 x.w``: one
GEMM. Its rounding error is relative to ``(||x|| + ||w||)^2``, not to the distance, so on
data far from the origin (sensor readings around 1000, prices, raw pixels) it cancels away
the digits that separate the units: in float32, ``X = 1000 + N(0, 1)`` gave a wrong winner
for 28-39% of the rows. Three things make it exact again, everywhere somvq computes
distances:

1. **A reference frame** (:func:`reference_frame`): distances do not change when the same
   point is subtracted from both sides, so data and codebook are expressed relative to the
   codebook mean (when the codebook is off the origin by more than its own radius), then
   scaled by a power of two (exact) when the codebook's radius would square out of the
   dtype's range (values ~1e20 in float32). The expanded form's error is then relative to
   ``(||x - c|| + max_k ||w_k - c||)^2``: the size of the map, not its offset.
2. **A proven error bound** (:func:`expanded_form_error`): ``kappa R (2 ||x'|| + R)``
   bounds how far the expanded-form scores of a row can misrank its units (GEMM rounding,
   rounding of the centred operands and of ``||w||^2``; ``R`` is the codebook's radius in
   the frame, ``x'`` the row in it). A row whose two best scores are further apart than twice
   the bound has a certain winner; the other rows are **re-ranked** by direct float64
   distances among the units within the bound of the best, lowest index on ties.
3. **Direct distances to the winner**: the reported squared distance (quantization error,
   the statistics' squared error) is ``sum_j (x_j - w_j)^2`` in float64, never the
   expanded form.

:func:`squared_distances` is the one definition of the full (n, K) matrix, used by
``KSOM.transform`` and :mod:`somvq.metrics` (and through them the dask integration). The
compiled CPU kernel (:mod:`somvq._kernels.cpu_bmu`), the CUDA kernel
(:mod:`somvq._kernels.cuda_bmu`) and the torch plugin
(:meth:`integrations.torch.base.GridQuantizer._best_matching_units`) are fast paths of
the same idea, each tested against a float64 brute force in
``tests/test_adversarial_exactness.py``, ``tests/cuda/`` and ``tests/torch/``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike

__all__ = [
    "Frame",
    "choose_centre",
    "choose_scale",
    "reference_frame",
    "expanded_form_error",
    "squared_distances",
    "best_matching_units",
]

#: Rows of X per block of :func:`squared_distances`: temporaries are O(block * K).
_BLOCK_ROWS = 1024

#: An expanded-form entry below RECOMPUTE * (its error bound) is recomputed directly, so
#: every entry of :func:`squared_distances` is within 1 / RECOMPUTE (relative) of the exact
#: value of the stored inputs.
RECOMPUTE = float(2**27)

#: Largest codebook radius (after centring) that is used unscaled, per dtype: squares and
#: their error bounds stay normal numbers, far from overflow, in between.
_UNSCALED_RANGE = {np.dtype(np.float32): 2.0**30, np.dtype(np.float64): 2.0**250}


def _unscaled_limit(dtype: DTypeLike) -> float:
    """:data:`_UNSCALED_RANGE` of ``dtype`` (float32's for any other)."""
    return _UNSCALED_RANGE.get(np.dtype(dtype), 2.0**30)


@dataclass(frozen=True)
class Frame:
    """Where the expanded form is evaluated: ``x' = (x - centre) * scale``.

    ``centre`` is None (the origin) or a (D,) vector of the codebook's dtype (so
    ``x - centre`` is one rounding in that dtype); ``scale`` is a power of two (exact).
    """

    centre: np.ndarray | None
    scale: float

    @property
    def identity(self) -> bool:
        return self.centre is None and self.scale == 1.0


def choose_centre(mean: np.ndarray, mean_norm2: float, dtype: DTypeLike) -> np.ndarray | None:
    """The frame's centre: ``mean`` rounded to ``dtype`` if the codebook is off the origin.

    ``mean`` is the codebook mean and ``mean_norm2`` the mean of ``||w_k||^2`` (float64).
    Off the origin means ``||mean||^2`` exceeds the codebook's mean squared radius around
    its mean (``mean_norm2 - ||mean||^2``); otherwise the origin is kept (None), so data
    near the origin keeps the plain expanded form's arithmetic and bits.
    """
    offset = float(np.dot(mean, mean))
    if math.isfinite(offset) and offset > mean_norm2 - offset:
        return np.asarray(mean).astype(dtype)
    return None


def choose_scale(radius: float, dtype: DTypeLike) -> float:
    """The frame's scale: ``2^-e`` with ``2^e <= radius < 2^(e+1)``, or 1.

    Only when the radius (the largest norm of a unit in the frame) lies outside ``[1 / r, r]``,
    ``r = 2^30`` for float32 and ``2^250`` for float64: then squares, products and their
    error bounds are finite and normal numbers. Powers of two scale exactly.
    """
    limit = _unscaled_limit(dtype)
    if not math.isfinite(radius) or radius == 0.0 or (1.0 / limit <= radius <= limit):
        return 1.0  # a non-finite codebook has no frame: its distances are nan/inf
    return power_of_two_scale(radius)


# The two helpers below use the ``math`` module only: the compiled kernels call the same
# functions, compiled (``numba.njit`` of them, in :mod:`somvq._kernels.cpu_bmu`).
def power_of_two_scale(magnitude: float) -> float:
    """The power of two that brings a finite, positive ``magnitude`` into [1, 2).

    ``2^(1 - e)`` for ``2^(e - 1) <= magnitude < 2^e``: multiplying by it changes only
    exponents, so it is exact wherever nothing is subnormal, and dividing by it undoes it.
    A subnormal ``magnitude`` (below 2^-1022) gets float64's largest power of two, 2^1023,
    which brings it as far up as float64 allows (2^(1 - e) itself would be inf).
    """
    return math.ldexp(1.0, min(1 - math.frexp(magnitude)[1], 1023))


def unscale_exponent(scale: float) -> int:
    """``e`` with ``value / scale^2 == ldexp(value, e)`` for a power-of-two ``scale``.

    Dividing by ``scale^2`` this way is exact, and overflows to inf or underflows as the
    true quotient rounds; ``scale * scale`` itself leaves float64 (0 or inf) for scales
    beyond ``2^-537`` and ``2^512``, which a float64 codebook spread over more than ~1e154
    (or less than ~1e-162) has.
    """
    return -2 * (math.frexp(scale)[1] - 1)


#: float64 data and codebooks whose largest magnitude lies below this are trained scaled
#: by :func:`underflow_scale`: squared differences below ~2^-512 lose bits to subnormals,
#: then underflow to 0 (every distance a tie).
TINY = 2.0**-256


def underflow_scale(X: np.ndarray, codebook: np.ndarray) -> float:
    """1, or for float64 ``X`` and ``codebook`` whose largest magnitude (NaN in ``X``
    ignored) lies below :data:`TINY` the :func:`power_of_two_scale` of it.

    For the passes that rank units by direct float64 distances without a reference frame
    (online, the layered masked search): run on ``X * s`` and ``codebook * s``, and divide
    by ``s`` after. Kohonen's updates commute with a power-of-two scaling, so where
    nothing is subnormal this gives the same bits; where the squares would underflow, the
    winners of the exact distances.
    """
    if X.dtype != np.float64 or X.size == 0 or codebook.size == 0:
        return 1.0
    with np.errstate(invalid="ignore"):  # max and min: no |X| temporary as large as X
        peak = max(float(np.nanmax(X)), -float(np.nanmin(X)), float(np.max(np.abs(codebook))))
    if not 0.0 < peak < TINY:  # (a NaN codebook has no frame: nothing to scale)
        return 1.0
    return power_of_two_scale(peak)


def underflow_scaled(X: np.ndarray, codebook: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``(X s, codebook s, s)`` with ``s`` the :func:`underflow_scale` of the two; the
    arrays as given and ``s = 1`` when nothing needs it (pass the codebook as ``X`` for
    a measure of the codebook alone).

    For the measures on distances: float64 values below :data:`TINY` have squared
    distances that lose bits to subnormals or underflow to 0 (every distance 0, every
    ranking a tie), though the distances themselves are representable. A power of two
    scales exactly, so a quantity of degree ``p`` in the distances computed on the scaled
    values, divided by ``s^p``, has the bits it has where nothing underflows.
    """
    s = underflow_scale(X, codebook)
    if s == 1.0:
        return X, codebook, 1.0
    return X * s, codebook * s, s


def reference_frame(codebook: np.ndarray) -> Frame:
    """The :class:`Frame` of this codebook: :func:`choose_centre`, then :func:`choose_scale`.

    Any centre is correct (distances are shift invariant and the error bound is measured
    from it); this one keeps the bound small. O(K D).
    """
    dtype = np.dtype(codebook.dtype)
    W = np.asarray(codebook, dtype=np.float64)
    if W.shape[0] == 0:
        return Frame(None, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        norm2 = np.einsum("ij,ij->i", W, W)
        centre = choose_centre(W.mean(axis=0), float(norm2.mean()), dtype)
        if centre is not None:
            Wc = W - centre.astype(np.float64)
            norm2 = np.einsum("ij,ij->i", Wc, Wc)
        radius = math.sqrt(float(norm2.max()))
    if not np.isfinite(radius) or radius == 0.0:
        # float64 codebooks beyond 1e154 (the norms overflow) or spread below ~1e-162 (they
        # underflow to 0; 0 also for identical units, which keep it): bound from max |w_kj|
        Wc = W if centre is None else W - centre.astype(np.float64)
        radius = float(np.max(np.abs(Wc))) * math.sqrt(W.shape[1])
    return Frame(centre, choose_scale(radius, dtype))


def expanded_form_error(dtype: DTypeLike, n_features: int) -> float:
    """kappa: expanded-form scores rank units to within ``kappa R (2 ||x'|| + R)``.

    For one row ``x`` evaluated in a :class:`Frame`, with ``x'``, ``w'_k`` the centred,
    scaled operands as stored in ``dtype`` (unit roundoff ``u``), ``D`` features and
    ``R = max_k ||w'_k||``, every computed score ``s_k = ||w'_k||^2 - 2 x'.w'_k`` is within
    ``e = kappa R (2 ||x'| + R)`` of ``||x - w_k||^2 (scaled) - c`` for one constant ``c``
    of the row (``||x'||^2`` and whatever the rounding of ``x - centre`` adds to every unit
    alike): so if exactly one score lies within ``2 e`` of the lowest, that unit is the
    exact winner. (The CPU searches define the winner as the argmin of the rounded float64
    direct distances, so their limit also adds those distances' rounding:
    :func:`somvq._kernels.cpu_bmu.rank_limit`.) The terms:

    * the GEMM of D + 1 terms: ``gamma_{D+1} (2 ||x'|| ||w'_k|| + ||w'_k||^2)``, any order
      of summation, with or without FMA;
    * ``||w'_k||^2`` summed in float64 and rounded once to ``dtype``: ``~u R^2``;
    * the rounding of ``x - centre`` (``||dx|| <= u ||x'||``) and of ``w_k - centre``: what
      differs between units is ``2 w'_k.dx`` and ``2 (x' - w'_k).dw_k``:
      ``<= 2 u R (2 ||x'|| + R)``;

    * second-order terms ``||dx - dw_k||^2 <= u^2 (||x'|| + R)^2``, covered by adding
      ``u ||x'||^2`` to ``R (2 ||x'|| + R)``;

    together ``<= (D + 4.1) u R (2 ||x'|| + R)`` for ``D u < 0.01``; kappa adds a 1.25
    margin, ``1.25 (D + 5) u`` (7.5e-6 for float32 at D = 32), which also covers the float64
    evaluation of the bound itself. The bound is proportional to the codebook's radius in
    the frame, not to the data's offset: that is what the frame is for.
    """
    u = float(np.finfo(np.dtype(dtype)).eps) / 2.0
    return 1.25 * (int(n_features) + 5) * u


def _direct(
    X64: np.ndarray, W64: np.ndarray, rows: np.ndarray, units: np.ndarray, scale: float
) -> np.ndarray:
    """``sum_j ((x_j - w_j) * scale)^2 / scale^2`` in float64 for the pairs (rows[i], units[i])."""
    out = np.empty(rows.shape[0])
    step = max(1, (1 << 20) // max(1, X64.shape[1]))
    for start in range(0, rows.shape[0], step):
        diff = X64[rows[start : start + step]] - W64[units[start : start + step]]
        if scale != 1.0:
            diff *= scale
        out[start : start + step] = np.einsum("ij,ij->i", diff, diff)
    unscale_squares(out, scale)
    return out


def unscale_squares(values: np.ndarray, scale: float) -> None:
    """``values /= scale^2`` in place for a power-of-two ``scale``, exactly
    (:func:`unscale_exponent`)."""
    if scale != 1.0:
        with np.errstate(over="ignore", under="ignore"):  # inf / 0: the true quotient, rounded
            np.ldexp(values, unscale_exponent(scale), out=values)


def squared_distances(X: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """``||x_i - w_k||^2`` for every row and unit, float64, shape (n, K).

    Exact to a relative ``1 / RECOMPUTE`` (7.5e-9) of each entry for the stored values
    of ``X`` and ``codebook`` (float32 or float64), at any offset and scale: the expanded
    form is evaluated in float64 in the codebook's :func:`reference_frame` (centred at the
    codebook mean, scaled by a power of two), and every entry smaller than ``RECOMPUTE``
    times its error bound is recomputed directly as ``sum_j (x_j - w_j)^2``. Memory:
    the output and O(1024 K) temporaries.
    """
    X = np.asarray(X)
    W = np.asarray(codebook)
    if X.ndim != 2 or W.ndim != 2 or X.shape[1] != W.shape[1]:
        raise ValueError(
            f"squared_distances needs X (n, D) and codebook (K, D), got shapes {X.shape} and {W.shape}."
        )
    n, n_features = X.shape
    W64 = W.astype(np.float64)
    out = np.empty((n, W.shape[0]))
    if n == 0 or W.shape[0] == 0:
        return out
    frame = reference_frame(W64)
    centre = frame.centre if frame.centre is not None else np.zeros(n_features)
    # float64 frame of the float64 values: one rounding per centred entry, as the bound says.
    Wc = (W64 - centre) * frame.scale
    w_norm2 = np.einsum("ij,ij->i", Wc, Wc)
    w_norm = np.sqrt(w_norm2)
    # Each entry ||x'||^2 + ||w'||^2 - 2 x'.w' (three float64 sums of D terms, three
    # additions, the rounding of the centred operands) is within (2 D + 8) u (||x'|| + R)^2
    # of the exact value; R is taken per unit, ||w'_k||.
    kappa = 1.25 * (2 * n_features + 8) * float(np.finfo(np.float64).eps) / 2.0
    for start in range(0, n, _BLOCK_ROWS):
        X64 = np.asarray(X[start : start + _BLOCK_ROWS], dtype=np.float64)
        Xc = (X64 - centre) * frame.scale
        x_norm2 = np.einsum("ij,ij->i", Xc, Xc)
        with np.errstate(over="ignore", invalid="ignore"):
            sq = Xc @ Wc.T
            sq *= -2.0
            sq += w_norm2
            sq += x_norm2[:, None]
            bound = np.sqrt(x_norm2)[:, None] + w_norm
            bound *= bound
            bound *= kappa * RECOMPUTE
            redo = ~(sq > bound)  # small entries, and any non-finite one
        rows, units = np.nonzero(redo)
        block = out[start : start + X64.shape[0]]
        unscale_squares(sq, frame.scale)
        block[...] = sq
        if rows.size:
            block[rows, units] = _direct(X64, W64, rows, units, frame.scale)
    return out


def best_matching_units(X: np.ndarray, codebook: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BMU (int64, lowest index on ties) and its squared distance (float64) of every row.

    The definition the compiled kernels are tested against: ``argmin`` of
    :func:`squared_distances`, block by block (memory O(1024 K)).
    """
    n = np.asarray(X).shape[0]
    bmu = np.empty(n, dtype=np.int64)
    sq = np.empty(n)
    for start in range(0, n, _BLOCK_ROWS):
        block = squared_distances(X[start : start + _BLOCK_ROWS], codebook)
        bmu[start : start + block.shape[0]] = np.argmin(block, axis=1)
        sq[start : start + block.shape[0]] = block[
            np.arange(block.shape[0]), bmu[start : start + block.shape[0]]
        ]
    return bmu, sq
