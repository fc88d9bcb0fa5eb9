"""The map behind a torch quantizer: its grid, and the neighbourhood matrix H_t as a tensor.

Nothing here re-implements a formula: the grid is :class:`somvq.grids.Grid`, the kernels
are :func:`somvq.neighbourhoods.neighbourhood_weights` through
:class:`somvq.neighbourhoods.Neighbourhood`, and the radius follows a
:class:`somvq.schedules.Schedule`; all three evaluate on torch tensors directly, so H_t is
built on the codebook's device from the step counter without a host round trip. The
default radius is the estimator's (:func:`somvq.parameters.default_radius`).

Defaults differ from :class:`somvq.KSOM` in one place only: a VQ-VAE has no known number
of steps, so every kernel's radius follows the paper's inverse-time schedule
``radius / (1 + shrink t)`` unless ``radius_schedule`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from somvq._validation import check_ema_settings
from somvq.grids import Grid
from somvq.neighbourhoods import NEIGHBOURHOODS, SIGNED_NEIGHBOURHOODS, Neighbourhood
from somvq.parameters import MIN_RADIUS, default_radius
from somvq.schedules import SCHEDULES, Schedule

__all__ = ["KohonenMap", "resolve_grid", "default_radius"]

#: Signature of a user-supplied neighbourhood: ``fn(grid_distances, t) -> weights``, where
#: ``grid_distances`` is the (K, K) tensor of grid distances and ``t`` a 0-d float tensor.
NeighbourhoodFunction = Callable[[Any, Any], Any]


def resolve_grid(
    codebook_size: int,
    grid: Grid | Sequence[int] | None,
    grid_dim: int,
) -> Grid:
    """The :class:`~somvq.grids.Grid` of a quantizer of ``codebook_size`` codes.

    ``None`` gives the reference implementation's automatic shape in ``grid_dim``
    dimensions (``512 -> (16, 32)``, the reference's ``[32, 16]`` unit for unit).
    """
    if isinstance(grid, Grid):
        resolved = grid
    elif grid is None:
        resolved = Grid.from_size(codebook_size, grid_dim)
    else:
        shape = np.atleast_1d(np.asarray(grid))
        if shape.ndim != 1 or shape.size == 0 or not np.issubdtype(shape.dtype, np.integer):
            raise ValueError(f"grid={grid!r} must be None, a tuple of positive ints or a somvq.Grid.")
        resolved = Grid(tuple(int(s) for s in shape))
    if resolved.n_units != codebook_size:
        raise ValueError(
            f"grid of shape {resolved.shape} has {resolved.n_units} units, but codebook_size={codebook_size}."
        )
    return resolved


class KohonenMap:
    """Grid plus neighbourhood of a quantizer; builds H_t as a tensor.

    Parameters
    ----------
    grid : Grid
    neighbourhood : str or callable
        A name from :data:`somvq.neighbourhoods.NEIGHBOURHOODS` (signed kernels excluded),
        or ``fn(grid_distances, t) -> weights`` evaluated in torch.
    shrink, radius, radius_schedule, radius_final, radius_horizon
        See :class:`somvq.integrations.torch.KohonenVectorQuantize`.
    """

    def __init__(
        self,
        grid: Grid,
        neighbourhood: str | NeighbourhoodFunction,
        *,
        shrink: float,
        radius: float | None,
        radius_schedule: str,
        radius_final: float,
        radius_horizon: float | None,
    ) -> None:
        if not callable(neighbourhood):
            if neighbourhood not in NEIGHBOURHOODS:
                raise ValueError(
                    f"neighbourhood={neighbourhood!r} is not one of {NEIGHBOURHOODS} "
                    "or a callable fn(grid_distances, t)."
                )
            if neighbourhood in SIGNED_NEIGHBOURHOODS:
                raise ValueError(
                    f"neighbourhood={neighbourhood!r} has negative weights, which make the "
                    "smoothed EMA counts meaningless; it is for online KSOM only."
                )
        _check_real("shrink", shrink, low=0.0)
        if radius is not None:
            _check_real("radius", radius, low=MIN_RADIUS)
        _check_real("radius_final", radius_final, low=MIN_RADIUS)
        if radius_schedule not in SCHEDULES:
            raise ValueError(f"radius_schedule={radius_schedule!r} is not one of {SCHEDULES}.")
        if radius_schedule in ("exponential", "linear") and radius_horizon is None:
            raise ValueError(
                f"radius_schedule={radius_schedule!r} needs radius_horizon, the number of "
                "steps over which the radius goes from radius to radius_final."
            )
        if radius_horizon is not None:
            _check_real("radius_horizon", radius_horizon, low=0.0, strict=True)
        self.grid = grid
        self.function = neighbourhood if callable(neighbourhood) else None
        self.kind = "callable" if callable(neighbourhood) else str(neighbourhood)
        kind_for_radius = "gaussian" if self.function is not None else self.kind
        self.radius = float(radius) if radius is not None else default_radius(kind_for_radius, grid)
        self.radius_schedule = radius_schedule
        self.radius_final = float(radius_final)
        self.radius_horizon = None if radius_horizon is None else float(radius_horizon)
        self.shrink = float(shrink)
        self.neighbourhood = None
        if self.function is None:
            self.neighbourhood = Neighbourhood(
                self.kind,
                Schedule(
                    radius_schedule,
                    self.radius,
                    self.radius_final,
                    self.shrink,
                    self.radius_horizon or 1.0,
                ),
                self.shrink,
            )

    @property
    def is_identity(self) -> bool:
        """True for "none": H_t = I and smoothing is skipped."""
        return self.kind == "none"

    def matrix(self, grid_distances: Any, t: Any) -> Any:
        """H_t as a dense (K, K) tensor in ``grid_distances``' dtype and device.

        ``t`` is a 0-d float tensor (the step counter), so nothing leaves the device.
        The diagonal is exactly 1, for a callable too.
        """
        if self.function is None:
            return self.neighbourhood.weights(grid_distances, t)
        import torch

        weights = torch.as_tensor(self.function(grid_distances, t))
        weights = weights.to(device=grid_distances.device, dtype=grid_distances.dtype)
        if weights.shape != grid_distances.shape:
            raise ValueError(
                f"the neighbourhood callable returned shape {tuple(weights.shape)}, expected "
                f"{tuple(grid_distances.shape)} (one weight per pair of units)."
            )
        return torch.where(grid_distances == 0, torch.ones_like(weights), weights)

    def estimator_parameters(self) -> dict[str, Any]:
        """The :class:`somvq.KSOM` parameters that define the same grid and neighbourhood."""
        if self.function is not None:
            raise ValueError(
                "a quantizer with a callable neighbourhood has no somvq.KSOM equivalent; "
                "use one of the named neighbourhoods to convert it."
            )
        return {
            "grid": self.grid.shape,
            "grid_dim": self.grid.ndim,
            "topology": self.grid.topology,
            "periodic": self.grid.periodic,
            "neighbourhood": self.kind,
            "radius": self.radius,
            "radius_final": self.radius_final,
            "radius_schedule": self.radius_schedule,
            "shrink": self.shrink,
        }


def _check_real(
    name: str,
    value: Any,
    *,
    low: float,
    high: float | None = None,
    strict: bool = False,
    high_open: bool = False,
) -> None:
    """Raise a ValueError quoting ``value`` unless it is a real number in range."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok:
        ok = value > low if strict else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lower = f"> {low}" if strict else f">= {low}"
        upper = "" if high is None else (f" and < {high}" if high_open else f" and <= {high}")
        raise ValueError(f"{name}={value!r} must be a real number {lower}{upper}.")


def check_ema_arguments(decay: Any, eps: Any, init_count: Any, update: Any, updates: Sequence[str]) -> None:
    """Validate a KSOM-EMA quantizer's decay, eps, init_count and update together.

    Each value is range-checked, then the combination: settings that divide by zero
    (``eps=0`` with ``init_count=0`` or ``decay=0`` under ``update="all"``) are rejected,
    with the same rule and message as :class:`somvq.KSOM`.
    """
    _check_real("decay", decay, low=0.0, high=1.0, high_open=True)
    _check_real("eps", eps, low=0.0)
    _check_real("init_count", init_count, low=0.0)
    if update not in updates:
        raise ValueError(f"update={update!r} is not one of {tuple(updates)}.")
    check_ema_settings(decay=float(decay), eps=float(eps), init_count=float(init_count), update=update)


def _check_int(name: str, value: Any, *, low: int) -> None:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}={value!r} must be an integer >= {low}.")
