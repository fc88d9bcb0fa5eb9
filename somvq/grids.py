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

import itertools
import math
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

__all__ = ["Grid", "auto_grid_shape", "reference_grid_factors", "parse_grid"]

TOPOLOGIES = ("rectangular", "hexagonal")

#: Two units are grid neighbours when 0 < d < NEIGHBOUR_RADIUS. On a rectangular grid this
#: is the 8-neighbourhood (diagonals at sqrt(2) included), as in the paper's hard
#: neighbourhood; on a hexagonal grid the 6 adjacent cells.
NEIGHBOUR_RADIUS = 1.5


#: The most units a grid may have (2^31 - 1).
MAX_UNITS = 2**31 - 1


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
    if n_units > MAX_UNITS:
        raise ValueError(f"the number of units must be at most {MAX_UNITS} (2^31 - 1), got {n_units}.")
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
        raise ValueError(f"grid={text!r} is not a grid shape; write it as ROWSxCOLS, e.g. '16x32'.") from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"grid={text!r} must have positive sizes, e.g. '16x32'.")
    return shape


def _is_flag(value: Any) -> bool:
    """True for a bool, or an integer 0 or 1 (NumPy's too): the values ``periodic`` takes."""
    if isinstance(value, (bool, np.bool_)):
        return True
    return isinstance(value, (int, np.integer)) and value in (0, 1)


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
        if math.prod(shape_t) > MAX_UNITS:
            raise ValueError(
                f"grid shape {shape_t} has {math.prod(shape_t)} units, more than the {MAX_UNITS} "
                "(2^31 - 1) a map may have."
            )
        if topology not in TOPOLOGIES:
            raise ValueError(f"topology={topology!r} is not one of {TOPOLOGIES}.")
        if topology == "hexagonal" and len(shape_t) != 2:
            raise ValueError(f"a hexagonal grid must have 2 axes, got shape {shape_t}.")
        if isinstance(periodic, (bool, np.bool_)):
            periodic_t = (bool(periodic),) * len(shape_t)
        else:
            entries = tuple(periodic) if isinstance(periodic, (tuple, list, np.ndarray)) else None
            if entries is None or not all(_is_flag(p) for p in entries):
                raise ValueError(
                    f"periodic={periodic!r} must be a bool or one bool per grid axis ({len(shape_t)} "
                    "axes): True/False (or 1/0), not strings or other values."
                )
            periodic_t = tuple(bool(p) for p in entries)
            if len(periodic_t) != len(shape_t):
                raise ValueError(
                    f"periodic={periodic!r} must be a bool or one bool per grid axis ({len(shape_t)} axes)."
                )
        if topology == "hexagonal" and periodic_t[0] and shape_t[0] % 2:
            raise ValueError(
                f"a hexagonal grid periodic along its rows needs an even number of rows, got shape {shape_t}."
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
    ) -> Grid:
        """A grid of ``n_units`` units with the reference's automatic shape."""
        return cls(auto_grid_shape(n_units, grid_dim), topology, periodic)

    # ------------------------------------------------------------------ basic facts
    @property
    def n_units(self) -> int:
        return math.prod(self.shape)

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
        col + (row % 2) / 2)``, so adjacent cells are 1 apart. These are for drawing and
        initialisation; grid distances are not taken from them (``sqrt(3)/2`` is rounded)
        but from the exact squared distances of :meth:`_lattice_distances`.
        """
        coords = self._lattice.copy()
        if self.topology == "hexagonal":
            coords[:, 0] *= math.sqrt(3.0) / 2.0
        coords.setflags(write=False)
        return coords

    @cached_property
    def _lattice(self) -> np.ndarray:
        """Unit positions with the rows 1 apart: the indices as floats, and on a hexagonal
        grid the columns of odd rows shifted by 1/2. Every entry and difference is exact."""
        lattice = self.indices.astype(np.float64)
        if self.topology == "hexagonal":
            lattice[:, 1] += 0.5 * (lattice[:, 0] % 2)
        lattice.setflags(write=False)
        return lattice

    # ------------------------------------------------------------------- distances
    def distances_from(self, unit: int) -> np.ndarray:
        """Grid distance from ``unit`` to every unit, shape ``(K,)``."""
        return self._distance_rows(np.asarray([unit]))[0]

    def pair_distances(self, a: Any, b: Any) -> np.ndarray:
        """Grid distance between units ``a[i]`` and ``b[i]`` (arrays of the same shape).

        O(len(a)) time and memory, with the arithmetic of :attr:`distances` (so the values
        are those of ``distances[a, b]``).
        """
        a = np.asarray(a, dtype=np.intp)
        b = np.asarray(b, dtype=np.intp)
        lattice = self._lattice
        return self._lattice_distances(lattice[a], lattice[b])

    def are_neighbours(self, a: Any, b: Any) -> np.ndarray:
        """Whether units ``a[i]`` and ``b[i]`` are grid neighbours (``adjacency[a, b]``), in O(len(a))."""
        d = self.pair_distances(a, b)
        return (d > 0) & (d < NEIGHBOUR_RADIUS)

    def _distance_rows(self, units: np.ndarray) -> np.ndarray:
        lattice = self._lattice
        return self._lattice_distances(lattice[units][:, None, :], lattice[None, :, :])

    def _lattice_distances(self, la: np.ndarray, lb: np.ndarray) -> np.ndarray:
        """Grid distance between :attr:`_lattice` positions ``la`` and ``lb`` (broadcast; last axis: ndim).

        The per-axis offsets (integers; half-integer columns on a hexagonal grid) are exact,
        wrapped to the nearest periodic image axis by axis, and so is the squared distance
        (``drow^2 + dcol^2``, or ``0.75 drow^2 + dcol^2`` with hexagonal rows ``sqrt(3)/2``
        apart): one correctly rounded sqrt gives exactly 1 between adjacent cells and
        exactly symmetric distances. A periodic hexagonal row axis has an even number of
        rows, so wrapping the rows keeps the column offset, and the axes wrap separately.
        """
        diff = np.abs(la - lb)
        for axis, wrap in enumerate(self.periodic):
            if wrap:
                diff[..., axis] = np.minimum(diff[..., axis], self.shape[axis] - diff[..., axis])
        if self.topology == "hexagonal":
            return np.sqrt(0.75 * diff[..., 0] ** 2 + diff[..., 1] ** 2)
        return np.sqrt((diff**2).sum(-1))

    @cached_property
    def distances(self) -> np.ndarray:
        """Pairwise grid distances, shape ``(K, K)``, symmetric, zero diagonal.

        O(K^2) memory (8 K^2 bytes, built in blocks of rows so that the peak stays close to
        that); the library builds it only where a kernel needs every pair (see
        :func:`somvq.neighbourhoods.smoothing_operator`).
        """
        n_units = self.n_units
        d = np.empty((n_units, n_units))
        block = max(1, _BLOCK_ELEMENTS // max(n_units * self.ndim, 1))
        for start in range(0, n_units, block):
            stop = min(start + block, n_units)
            d[start:stop] = self._distance_rows(np.arange(start, stop))
        d.setflags(write=False)
        return d

    @cached_property
    def neighbour_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """All ordered pairs of grid neighbours ``(rows, cols)``, sorted, in O(K) memory.

        The pairs where :attr:`adjacency` is True, in the order of
        ``np.nonzero(adjacency)``, found without any K x K array: neighbours
        (``0 < d < 1.5``) differ by at most one step along at most two axes (rectangular)
        or along both axes of a hexagonal grid, so only those offsets are tried, wrapped on
        periodic axes, and their exact distances kept when below 1.5.
        """
        n_units, ndim = self.n_units, self.ndim
        idx = self.indices
        shape = np.asarray(self.shape)
        units = np.arange(n_units)
        rows, cols = [], []
        for offset in _neighbour_offsets(ndim, self.topology):
            moved = idx + offset
            valid = np.ones(n_units, dtype=bool)
            for axis in range(ndim):
                if self.periodic[axis]:
                    moved[:, axis] %= shape[axis]
                else:
                    valid &= (moved[:, axis] >= 0) & (moved[:, axis] < shape[axis])
            rows.append(units[valid])
            cols.append(np.ravel_multi_index(tuple(moved[valid].T), self.shape))
        row = np.concatenate(rows) if rows else np.empty(0, dtype=np.intp)
        col = np.concatenate(cols) if cols else np.empty(0, dtype=np.intp)
        keep = self.are_neighbours(row, col) if row.size else np.zeros(0, dtype=bool)
        # Sort and drop duplicates (small periodic axes reach a unit by two offsets).
        key = np.unique(row[keep].astype(np.int64) * n_units + col[keep])
        pairs = (key // n_units).astype(np.intp), (key % n_units).astype(np.intp)
        for array in pairs:
            array.setflags(write=False)
        return pairs

    @cached_property
    def adjacency(self) -> np.ndarray:
        """Boolean ``(K, K)`` matrix of grid neighbours (``0 < d < 1.5``).

        8 neighbours (diagonals included) on a rectangular 2-D grid, 2 on a line, 6 on a
        hexagonal grid; periodic axes wrap around. K^2 bytes: for large maps use
        :attr:`neighbour_pairs`, :meth:`are_neighbours` or :meth:`neighbours` (O(K)).
        """
        adj = np.zeros((self.n_units, self.n_units), dtype=bool)
        rows, cols = self.neighbour_pairs
        adj[rows, cols] = True
        adj.setflags(write=False)
        return adj

    def neighbours(self, unit: int) -> np.ndarray:
        """Indices of the grid neighbours of ``unit``, ascending."""
        rows, cols = self.neighbour_pairs
        lo, hi = np.searchsorted(rows, [unit, unit + 1])
        return np.array(cols[lo:hi], dtype=np.int64)


#: Elements (rows x K x ndim) of the temporaries built at once by Grid.distances.
_BLOCK_ELEMENTS = 1 << 19


def _neighbour_offsets(ndim: int, topology: str) -> list[np.ndarray]:
    """Index offsets that can reach a grid neighbour (0 < d < 1.5).

    Rectangular: a step of -1/+1 along one or two axes (three unit steps are sqrt(3) >
    1.5 apart). Hexagonal (2-D): any step of -1/0/+1 along each axis.
    """
    if topology == "hexagonal":
        steps = [o for o in itertools.product((-1, 0, 1), repeat=ndim) if any(o)]
    else:
        steps = []
        for axes in itertools.chain(
            itertools.combinations(range(ndim), 1), itertools.combinations(range(ndim), 2)
        ):
            for signs in itertools.product((-1, 1), repeat=len(axes)):
                step = [0] * ndim
                for axis, sign in zip(axes, signs):
                    step[axis] = sign
                steps.append(tuple(step))
    return [np.asarray(step, dtype=np.intp) for step in steps]
