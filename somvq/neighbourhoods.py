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


def neighbourhood_weights(
    distances: Any, kind: str, radius: Any = 1.0, hard_weight: Any = 1.0
) -> Any:
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
