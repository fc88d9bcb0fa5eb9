"""Map grids: where each unit sits, and how far apart two units are.

A :class:`Grid` is the fixed geometry of a self-organising map. Units are numbered
``0 .. K-1`` in **C order** (row-major): the *last* axis varies fastest, so a codebook of
shape ``(K, D)`` reshapes to ``(*grid.shape, D)`` with NumPy's default order.

The paper's reference code numbers units with the *first* axis fastest. The two orders give
the same neighbourhood structure once the shape is reversed: the reference's automatic
shape ``[32, 16]`` for ``K = 512`` is somvq's ``(16, 32)``, unit for unit (see
:func:`auto_grid_shape` and :meth:`Grid.from_size`).

Topologies
----------
``"rectangular"``
    any number of axes; unit coordinates are the integer grid indices.
``"hexagonal"``
    two axes ``(rows, cols)``; odd rows are shifted right by half a unit and rows are
    ``sqrt(3)/2`` apart, so each inner unit has six neighbours at distance exactly 1.

Either topology may be periodic (toroidal) along any axis. A periodic hexagonal row axis
needs an even number of rows, so that the row offsets line up across the seam.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Sequence

import numpy as np

__all__ = ["Grid", "auto_grid_shape", "reference_grid_factors", "parse_grid"]

TOPOLOGIES = ("rectangular", "hexagonal")

#: Two units are grid neighbours when 0 < d < NEIGHBOUR_RADIUS. On a rectangular grid this
#: is the 8-neighbourhood (diagonals at sqrt(2) included), as in the paper's hard
#: neighbourhood; on a hexagonal grid the 6 adjacent cells.
NEIGHBOUR_RADIUS = 1.5


def reference_grid_factors(n_units: int, grid_dim: int) -> list[int]:
    """The reference implementation's automatic factorisation of ``n_units``.

    Recursively, the last factor is the largest divisor of ``n_units`` not above
    ``ceil(n_units ** (1 / grid_dim))``. The list is in the reference's order (first axis
    fastest): ``reference_grid_factors(512, 2) == [32, 16]``.
    """
    n_units = int(n_units)
    grid_dim = int(grid_dim)
    if n_units < 1:
        raise ValueError(f"the number of units must be >= 1, got {n_units}.")
    if grid_dim < 1:
        raise ValueError(f"grid_dim must be >= 1, got {grid_dim}.")
    if grid_dim == 1:
        return [n_units]
    h = math.ceil(n_units ** (1.0 / grid_dim))
    # Guard against floating-point error in the root (e.g. 125 ** (1/3) = 4.999...).
    while (h - 1) ** grid_dim >= n_units and h > 1:
        h -= 1
    while h**grid_dim < n_units:
        h += 1
    for i in range(h, 0, -1):
        if n_units % i == 0:
            return reference_grid_factors(n_units // i, grid_dim - 1) + [i]
    raise AssertionError("unreachable: 1 divides every integer")


def auto_grid_shape(n_units: int, grid_dim: int = 2) -> tuple[int, ...]:
    """somvq's (C-order) grid shape for ``n_units`` units, matching the reference's.

    This is :func:`reference_grid_factors` reversed, so that unit ``i`` has the same
    neighbours as unit ``i`` of the reference implementation: ``auto_grid_shape(512)`` is
    ``(16, 32)``.
    """
    return tuple(reversed(reference_grid_factors(n_units, grid_dim)))


def parse_grid(text: str) -> tuple[int, ...]:
    """Parse a grid written as ``"16x32"`` (or ``"16,32"``, ``"512"``) into a shape tuple."""
    raw = str(text).strip().lower().replace("×", "x").replace(",", "x")
    parts = [p.strip() for p in raw.split("x")]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"grid={text!r} is not a grid shape; write it as ROWSxCOLS, e.g. '16x32'."
        ) from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"grid={text!r} must have positive sizes, e.g. '16x32'.")
    return shape


class Grid:
    """The geometry of a map: shape, topology and periodic axes.

    Parameters
    ----------
    shape : sequence of int
        Number of units along each axis; ``K = prod(shape)``.
    topology : {"rectangular", "hexagonal"}
        Hexagonal grids must be two-dimensional.
    periodic : bool or sequence of bool
        Wrap-around (toroidal) boundary, for all axes or per axis.

    Examples
    --------
    >>> g = Grid((2, 3))
    >>> g.n_units, g.coordinates[4].tolist()
    (6, [1.0, 1.0])
    >>> g.index_of((1, 2))
    5
    """

    def __init__(
        self,
        shape: Sequence[int],
        topology: str = "rectangular",
        periodic: bool | Sequence[bool] = False,
    ) -> None:
        shape_t = tuple(int(s) for s in np.atleast_1d(np.asarray(shape)))
        if len(shape_t) == 0 or any(s < 1 for s in shape_t):
            raise ValueError(f"grid shape must be a non-empty tuple of positive ints, got {shape!r}.")
        if topology not in TOPOLOGIES:
            raise ValueError(f"topology={topology!r} is not one of {TOPOLOGIES}.")
        if topology == "hexagonal" and len(shape_t) != 2:
            raise ValueError(f"a hexagonal grid must have 2 axes, got shape {shape_t}.")
        if isinstance(periodic, (bool, np.bool_)):
            periodic_t = (bool(periodic),) * len(shape_t)
        else:
            periodic_t = tuple(bool(p) for p in periodic)
            if len(periodic_t) != len(shape_t):
                raise ValueError(
                    f"periodic={periodic!r} must be a bool or one bool per grid axis "
                    f"({len(shape_t)} axes)."
                )
        if topology == "hexagonal" and periodic_t[0] and shape_t[0] % 2:
            raise ValueError(
                f"a hexagonal grid periodic along its rows needs an even number of rows, "
                f"got shape {shape_t}."
            )
        self.shape = shape_t
        self.topology = topology
        self.periodic = periodic_t

    @classmethod
    def from_size(
        cls,
        n_units: int,
        grid_dim: int = 2,
        topology: str = "rectangular",
        periodic: bool | Sequence[bool] = False,
    ) -> "Grid":
        """A grid of ``n_units`` units with the reference's automatic shape."""
        return cls(auto_grid_shape(n_units, grid_dim), topology, periodic)

    # ------------------------------------------------------------------ basic facts
    @property
    def n_units(self) -> int:
        return int(np.prod(self.shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"Grid(shape={self.shape}, topology={self.topology!r}, periodic={self.periodic})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Grid)
            and self.shape == other.shape
            and self.topology == other.topology
            and self.periodic == other.periodic
        )

    def __hash__(self) -> int:
        return hash((self.shape, self.topology, self.periodic))

    # ------------------------------------------------------------ index <-> position
    @cached_property
    def indices(self) -> np.ndarray:
        """Integer grid index of every unit, shape ``(K, ndim)``, C order."""
        idx = np.indices(self.shape).reshape(self.ndim, -1).T
        idx.setflags(write=False)
        return idx

    def index_of(self, position: Sequence[int]) -> int:
        """Unit number of the integer grid position ``position``."""
        pos = tuple(int(p) for p in position)
        if len(pos) != self.ndim or any(not 0 <= p < s for p, s in zip(pos, self.shape)):
            raise ValueError(f"position {pos} is outside the grid of shape {self.shape}.")
        return int(np.ravel_multi_index(pos, self.shape))

    @cached_property
    def coordinates(self) -> np.ndarray:
        """Position of every unit in the plane/space where distances are measured.

        Rectangular: the integer indices as floats. Hexagonal: ``(row * sqrt(3)/2,
        col + (row % 2) / 2)``, so adjacent cells are exactly 1 apart.
        """
        coords = self.indices.astype(np.float64)
        if self.topology == "hexagonal":
            rows = coords[:, 0].copy()
            coords[:, 0] = rows * (math.sqrt(3.0) / 2.0)
            coords[:, 1] = coords[:, 1] + 0.5 * (rows % 2)
        coords.setflags(write=False)
        return coords

    def _periods(self) -> np.ndarray:
        """Length of each axis in coordinate space (the wrap-around period)."""
        periods = np.asarray(self.shape, dtype=np.float64)
        if self.topology == "hexagonal":
            periods[0] *= math.sqrt(3.0) / 2.0
        return periods

    # ------------------------------------------------------------------- distances
    def distances_from(self, unit: int) -> np.ndarray:
        """Grid distance from ``unit`` to every unit, shape ``(K,)``."""
        return self._distance_rows(np.asarray([unit]))[0]

    def _distance_rows(self, units: np.ndarray) -> np.ndarray:
        coords = self.coordinates
        diff = np.abs(coords[units][:, None, :] - coords[None, :, :])
        if not any(self.periodic):
            return np.sqrt((diff**2).sum(-1))
        periods = self._periods()
        if self.topology == "rectangular":
            for axis, wrap in enumerate(self.periodic):
                if wrap:
                    diff[..., axis] = np.minimum(diff[..., axis], periods[axis] - diff[..., axis])
            return np.sqrt((diff**2).sum(-1))
        # Hexagonal: the offset of odd rows couples the axes, so take the nearest of the
        # periodic images (shifts by -1, 0, +1 period along each wrapped axis).
        signed = coords[None, :, :] - coords[units][:, None, :]
        best = np.full(signed.shape[:2], np.inf)
        shifts = [(-1, 0, 1) if wrap else (0,) for wrap in self.periodic]
        for s0 in shifts[0]:
            for s1 in shifts[1]:
                shifted = signed + np.array([s0 * periods[0], s1 * periods[1]])
                best = np.minimum(best, (shifted**2).sum(-1))
        return np.sqrt(best)

    @cached_property
    def distances(self) -> np.ndarray:
        """Pairwise grid distances, shape ``(K, K)``, symmetric, zero diagonal."""
        d = self._distance_rows(np.arange(self.n_units))
        # Exact symmetry and exact small-integer values on the rectangular lattice.
        d = np.minimum(d, d.T)
        np.fill_diagonal(d, 0.0)
        d.setflags(write=False)
        return d

    @cached_property
    def adjacency(self) -> np.ndarray:
        """Boolean ``(K, K)`` matrix of grid neighbours (``0 < d < 1.5``).

        8 neighbours (diagonals included) on a rectangular 2-D grid, 2 on a line, 6 on a
        hexagonal grid; periodic axes wrap around.
        """
        d = self.distances
        adj = (d > 0) & (d < NEIGHBOUR_RADIUS)
        adj.setflags(write=False)
        return adj

    def neighbours(self, unit: int) -> np.ndarray:
        """Indices of the grid neighbours of ``unit``."""
        return np.flatnonzero(self.adjacency[unit])
