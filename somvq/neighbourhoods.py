"""Neighbourhood functions h_t(k, l): how much unit l learns when unit k wins.

Every function is 1 at distance 0 (the winner itself). ``d`` is the grid distance
(:attr:`somvq.grids.Grid.distances`), ``r`` the radius at step t from the radius
:class:`~somvq.schedules.Schedule`.

The paper's two neighbourhoods (Irie, Csordás, Schmidhuber 2023; reference code):

``"hard"``
    ``1 / (1 + shrink * t)`` for ``0 < d < 1.5`` (the 8 surrounding units on a 2-D grid,
    diagonals included), else 0. Does not use the radius.
``"exponential"``
    ``exp(-d / r)``, the kernel the paper calls "Gaussian". With the default inverse-time
    radius schedule, ``r = radius / (1 + shrink * t)``, this is exactly the paper's
    ``exp(-d (1 + shrink t) / sigma)`` with ``sigma = radius`` (10 in the paper).
    It uses ``d``, not ``d**2``: it is a Laplace kernel, hence its name here.

``"none"``
    winner only (H = I): batch KSOM becomes Lloyd's k-means, mini-batch KSOM becomes
    EMA-VQ, online KSOM becomes MacQueen's k-means.

Classic SOM neighbourhoods:

``"gaussian"``      ``exp(-d**2 / (2 r**2))``
``"bubble"``        ``1 if d <= r else 0``
``"triangle"``      ``max(0, 1 - d / r)``
``"mexican_hat"``   ``(1 - d**2 / r**2) exp(-d**2 / (2 r**2))`` (negative weights; online only)
``"cut_gaussian"``  ``gaussian * bubble``

The functions here work on NumPy arrays and on torch tensors with the same code, so the
core and the torch plugin share one definition. The Numba kernels (which cannot call
Python) receive the kind as an integer code from :data:`NEIGHBOURHOOD_CODES` and evaluate
a mirror of these formulas that the tests hold equal to this module.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from .grids import NEIGHBOUR_RADIUS
from .schedules import Schedule

__all__ = [
    "Neighbourhood",
    "NEIGHBOURHOODS",
    "NEIGHBOURHOOD_CODES",
    "PAPER_NEIGHBOURHOODS",
    "neighbourhood_weights",
    "smoothing_operator",
    "Smoothing",
]

NEIGHBOURHOODS = (
    "none",
    "hard",
    "exponential",
    "gaussian",
    "bubble",
    "triangle",
    "mexican_hat",
    "cut_gaussian",
)
NEIGHBOURHOOD_CODES = {name: code for code, name in enumerate(NEIGHBOURHOODS)}
#: Kernels defined by the paper; their radius defaults to the inverse-time schedule.
PAPER_NEIGHBOURHOODS = ("hard", "exponential")
#: Kernels with negative weights, meaningful only for online KSOM.
SIGNED_NEIGHBOURHOODS = ("mexican_hat",)


def _namespace(a: Any) -> Any:
    """The array module of ``a``: numpy, or torch for tensors (without importing torch here)."""
    if type(a).__module__.startswith("torch"):
        import torch

        return torch
    return np


def neighbourhood_weights(distances: Any, kind: str, radius: Any = 1.0, hard_weight: Any = 1.0) -> Any:
    """Evaluate the neighbourhood function ``kind`` on an array of grid distances.

    Parameters
    ----------
    distances : ndarray or torch.Tensor
        Grid distances (any shape, non-negative).
    kind : str
        One of :data:`NEIGHBOURHOODS`.
    radius : float or 0-d tensor
        Current radius ``r(t)`` (ignored by "none" and "hard").
    hard_weight : float or 0-d tensor
        Current neighbour weight of the "hard" kernel, ``1 / (1 + shrink t)``.

    Returns
    -------
    Array of the same shape and type; exactly 1 where ``distances == 0``.
    """
    xp = _namespace(distances)
    d = distances
    one = d * 0 + 1  # ones in d's dtype/device
    zero = d * 0
    if kind == "none":
        w = zero
    elif kind == "hard":
        w = xp.where(d < NEIGHBOUR_RADIUS, one * hard_weight, zero)
    elif kind == "exponential":
        w = xp.exp(d * (-1.0 / radius))
    elif kind == "gaussian":
        w = xp.exp(d * d * (-0.5 / (radius * radius)))
    elif kind == "bubble":
        w = xp.where(d <= radius, one, zero)
    elif kind == "triangle":
        w = 1.0 - d / radius
        w = xp.where(w > 0, w, zero)
    elif kind == "mexican_hat":
        q = d * d / (radius * radius)
        w = (1.0 - q) * xp.exp(-0.5 * q)
    elif kind == "cut_gaussian":
        w = xp.where(d <= radius, xp.exp(d * d * (-0.5 / (radius * radius))), zero)
    else:
        raise ValueError(f"neighbourhood={kind!r} is not one of {NEIGHBOURHOODS}.")
    return xp.where(d == 0, one, w)


@dataclass(frozen=True)
class Neighbourhood:
    """A neighbourhood kind together with its radius schedule and shrink rate.

    ``weights(distances, t)`` gives h_t for the given grid distances; ``matrix(grid, t)``
    the K x K matrix H_t.
    """

    kind: str
    radius: Schedule
    shrink: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in NEIGHBOURHOODS:
            raise ValueError(f"neighbourhood={self.kind!r} is not one of {NEIGHBOURHOODS}.")

    @property
    def code(self) -> int:
        return NEIGHBOURHOOD_CODES[self.kind]

    def hard_weight(self, t: Any) -> Any:
        """Neighbour weight of the paper's hard kernel at step t: ``1 / (1 + shrink t)``."""
        return 1.0 / (1.0 + self.shrink * t)

    def weights(self, distances: Any, t: Any) -> Any:
        return neighbourhood_weights(
            distances, self.kind, radius=self.radius(t), hard_weight=self.hard_weight(t)
        )

    def matrix(self, distances: np.ndarray, t: float, dtype: Any = np.float64) -> np.ndarray:
        """H_t as a dense ``(K, K)`` array of ``dtype`` from the grid distance matrix."""
        if self.kind == "none":
            return np.eye(distances.shape[0], dtype=dtype)
        lookup = _distinct_distances(distances)
        if lookup is not None:
            # Same values as below: the kernel is evaluated once per distinct distance
            # (a few hundred on a grid) and gathered, instead of K^2 times.
            values, inverse = lookup
            h = np.take(self.weights(values, float(t)), inverse)
            return h if h.dtype == dtype else h.astype(dtype)
        h = self.weights(np.asarray(distances, dtype=np.float64), float(t))
        return np.ascontiguousarray(h, dtype=dtype)

    def kernel_parameters(self) -> np.ndarray:
        """The float parameters the Numba kernels need, in a fixed order.

        ``[radius start, radius end, radius shrink, radius horizon, hard shrink]``; the
        integer codes travel separately (:attr:`code`, ``radius.code``).
        """
        return np.array(
            [self.radius.start, self.radius.end, self.radius.shrink, self.radius.horizon, self.shrink],
            dtype=np.float64,
        )


# --------------------------------------------------------------------- fast smoothing
#: Largest K*K for which the distinct grid distances of a (read-only) distance matrix are
#: found once and cached; above it sorting K^2 values costs more than it saves.
_DISTINCT_MAX_SIZE = 2048 * 2048
_DISTINCT_CACHE: dict[int, tuple[Any, np.ndarray, np.ndarray]] = {}


def _distinct_distances(distances: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(values, inverse)`` with ``distances == values[inverse]``, or None.

    Only for read-only float64 NumPy matrices (such as ``Grid.distances``), which cannot
    change under the cache; entries die with their array.
    """
    if (
        not isinstance(distances, np.ndarray)
        or distances.dtype != np.float64
        or distances.flags.writeable
        or distances.size > _DISTINCT_MAX_SIZE
    ):
        return None
    key = id(distances)
    hit = _DISTINCT_CACHE.get(key)
    if hit is not None and hit[0]() is distances:
        return hit[1], hit[2]
    values, inverse = np.unique(distances, return_inverse=True)
    inverse = inverse.reshape(distances.shape).astype(np.intp, copy=False)
    if len(_DISTINCT_CACHE) >= 16:
        _DISTINCT_CACHE.clear()
    _DISTINCT_CACHE[key] = (
        weakref.ref(distances, lambda _, k=key: _DISTINCT_CACHE.pop(k, None)),
        values,
        inverse,
    )
    return values, inverse


class Smoothing:
    """The linear map ``S -> H_t S`` of one step, in the cheapest exact form available.

    :meth:`apply` returns ``(H c, H S)``; :meth:`dense` the ``(K, K)`` matrix itself (for
    tests and for callers that need it). Made by :func:`smoothing_operator`.
    """

    def apply(self, counts: np.ndarray, sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def dense(self) -> np.ndarray:
        raise NotImplementedError


class IdentitySmoothing(Smoothing):
    """``H = I`` (neighbourhood "none")."""

    def __init__(self, n_units: int):
        self.n_units = n_units

    def apply(self, counts, sums):
        return counts, sums

    def dense(self):
        return np.eye(self.n_units)


class DenseSmoothing(Smoothing):
    """A dense ``H``: O(K^2 D) per step; the fallback for every kernel and grid."""

    def __init__(self, matrix: np.ndarray):
        self.matrix = matrix

    def apply(self, counts, sums):
        return self.matrix @ counts, self.matrix @ sums

    def dense(self):
        return self.matrix


class SeparableSmoothing(Smoothing):
    """``H = scale * (F_0 kron F_1 kron ...) + (1 - scale) * I`` on a rectangular grid.

    Units are in C order (last axis fastest), so ``H S`` is one small matrix product along
    each grid axis of ``S`` viewed as ``(*shape, D)``: O(K D (n_0 + n_1 + ...)) instead of
    O(K^2 D). The classic gaussian factorises exactly, ``exp(-(a^2 + b^2) / 2r^2) =
    exp(-a^2 / 2r^2) exp(-b^2 / 2r^2)`` (scale 1); the paper's hard kernel on a 1-D or 2-D
    grid is a 3-wide box per axis (``d < 1.5`` iff every axis offset is at most 1), scaled
    by the neighbour weight, with the centre put back to 1.
    """

    def __init__(self, shape: tuple[int, ...], factors: list[np.ndarray], scale: float = 1.0):
        self.shape = tuple(shape)
        self.factors = factors
        self.scale = float(scale)

    def apply(self, counts, sums):
        n_units, n_features = sums.shape
        stacked = np.empty((n_units, n_features + 1), dtype=np.float64)
        stacked[:, :n_features] = sums
        stacked[:, n_features] = counts
        out = stacked.reshape(*self.shape, n_features + 1)
        for axis, factor in enumerate(self.factors):
            if factor.shape[0] == 1:
                continue
            out = np.moveaxis(np.tensordot(factor, out, axes=([1], [axis])), 0, axis)
        out = np.ascontiguousarray(out).reshape(n_units, n_features + 1)
        if self.scale != 1.0:
            out *= self.scale
            out += (1.0 - self.scale) * stacked
        return out[:, n_features].copy(), out[:, :n_features]

    def dense(self):
        matrix = np.ones((1, 1))
        for factor in self.factors:
            matrix = np.kron(matrix, factor)
        if self.scale != 1.0:
            matrix = self.scale * matrix + (1.0 - self.scale) * np.eye(matrix.shape[0])
        return matrix


def _axis_offsets(size: int, periodic: bool) -> np.ndarray:
    idx = np.arange(size, dtype=np.float64)
    diff = np.abs(idx[:, None] - idx[None, :])
    if periodic:
        diff = np.minimum(diff, size - diff)
    return diff


def smoothing_operator(neighbourhood: Neighbourhood, grid: Any, t: float) -> Smoothing:
    """The smoothing ``S -> H_t S`` of step ``t`` on ``grid``, fast where the kernel allows.

    Separable (O(K D sum(shape))): "gaussian" on any rectangular grid, periodic axes
    included, and "hard" on rectangular grids of 1 or 2 axes. "none" is the identity.
    Everything else (hexagonal grids, the other kernels) is the dense ``H_t`` of
    :meth:`Neighbourhood.matrix`. Every form equals the dense one up to rounding.
    """
    kind = neighbourhood.kind
    if kind == "none":
        return IdentitySmoothing(grid.n_units)
    if grid.topology == "rectangular":
        offsets = [_axis_offsets(n, p) for n, p in zip(grid.shape, grid.periodic)]
        if kind == "gaussian":
            radius = float(neighbourhood.radius(float(t)))
            factors = [np.exp(d * d * (-0.5 / (radius * radius))) for d in offsets]
            return SeparableSmoothing(grid.shape, factors)
        if kind == "hard" and grid.ndim <= 2:
            factors = [(d <= 1.0).astype(np.float64) for d in offsets]
            return SeparableSmoothing(grid.shape, factors, float(neighbourhood.hard_weight(float(t))))
    return DenseSmoothing(neighbourhood.matrix(grid.distances, t))
