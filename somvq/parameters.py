"""Parameter resolution: the one place where user parameters become what the engines run.

Every face of the library resolves its parameters here, so their defaults cannot drift:
:class:`somvq.KSOM` and the dask estimator (through :func:`training_plan`), the torch
plugin (:func:`default_radius`, :func:`default_radius_schedule`,
:data:`DEFAULT_RADIUS_FINAL`) and the command line (:data:`DEFAULTS` in its help texts).

* :func:`make_grid` - the ``grid`` / ``grid_dim`` / ``topology`` / ``periodic`` parameters
  as a :class:`~somvq.grids.Grid`;
* :func:`default_radius`, :func:`default_radius_schedule` - r(0) and the radius schedule
  when the user gives none (docs/algorithms.md §3-§4);
* :func:`steps_per_pass`, :func:`horizon` - the number of updates t that one pass makes
  and the horizon of the "exponential" and "linear" schedules;
* :func:`check_options` - the cross-parameter checks that per-parameter constraints
  cannot express;
* :class:`TrainingPlan` / :func:`training_plan` - all of the above, resolved once per
  ``fit`` / ``partial_fit`` into one frozen value that the engines read.

Importing this module is light (no NumPy): the command line's ``--help`` reads
:data:`DEFAULTS`. The functions import what they need when called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .grids import Grid
    from .neighbourhoods import Neighbourhood
    from .schedules import Schedule

__all__ = [
    "ALGORITHMS",
    "BACKENDS",
    "UPDATES",
    "DEFAULTS",
    "DEFAULT_RADIUS_FINAL",
    "DEFAULT_LEARNING_RATE_SCHEDULE",
    "TrainingPlan",
    "check_options",
    "default_radius",
    "default_radius_schedule",
    "grid_of",
    "horizon",
    "make_grid",
    "resolve_learning_rate",
    "resolve_neighbourhood",
    "steps_per_pass",
    "training_plan",
]

ALGORITHMS = ("online", "batch", "minibatch")
BACKENDS = ("cpu", "cuda")
UPDATES = ("all", "written")
#: Values of KSOM's ``bmu_search`` (docs/performance.md, "Pruned BMU search").
BMU_SEARCHES = ("auto", "full", "pruned")
#: ``bmu_search="auto"`` prunes batch passes from this many rows on: below it the bounds'
#: O(N D) bookkeeping is not paid back by the products it saves (docs/performance.md).
PRUNED_MIN_ROWS = 20_000

#: :class:`somvq.KSOM`'s constructor defaults (a test holds its signature equal to this).
DEFAULTS: dict[str, Any] = {
    "grid": (16, 32),
    "grid_dim": 2,
    "topology": "rectangular",
    "periodic": False,
    "neighbourhood": "gaussian",
    "radius": None,
    "radius_final": None,
    "radius_schedule": None,
    "shrink": 0.1,
    "learning_rate": 0.5,
    "learning_rate_final": 0.01,
    "learning_rate_schedule": None,
    "algorithm": "batch",
    "n_epochs": 10,
    "batch_size": 256,
    "decay": 0.99,
    "init_count": 1.0,
    "eps": 1e-5,
    "update": "all",
    "init": "random",
    "backend": "cpu",
    "random_state": None,
    "verbose": False,
    "bmu_search": "auto",
}

#: Radius reached at the end of the "exponential" and "linear" schedules (``radius_final=None``).
DEFAULT_RADIUS_FINAL = 0.5
#: Schedule of the online learning rate (``learning_rate_schedule=None``).
DEFAULT_LEARNING_RATE_SCHEDULE = "exponential"


# ---------------------------------------------------------------------- the grid
def make_grid(grid: Any, grid_dim: int, topology: str, periodic: Any) -> "Grid":
    """The :class:`~somvq.grids.Grid` of KSOM's ``grid`` parameter (a shape or a unit count)."""
    import numpy as np

    from ._validation import check_grid_value
    from .grids import Grid

    check_grid_value(grid)
    if isinstance(grid, (Integral, np.integer)):
        return Grid.from_size(int(grid), grid_dim, topology, periodic)
    shape = np.asarray(grid)
    if shape.ndim != 1 or shape.size == 0 or not np.issubdtype(shape.dtype, np.integer):
        raise ValueError(f"grid={grid!r} must be a tuple of positive ints or an int.")
    return Grid(tuple(int(s) for s in shape), topology, periodic)


def grid_of(params: Any) -> "Grid":
    """:func:`make_grid` of an estimator's (or any object's) grid parameters."""
    return make_grid(params.grid, params.grid_dim, params.topology, params.periodic)


# ---------------------------------------------------------------------- neighbourhood
def _paper_or_none(kind: str) -> bool:
    from .neighbourhoods import PAPER_NEIGHBOURHOODS

    return kind in PAPER_NEIGHBOURHOODS or kind == "none"


def default_radius(kind: str, grid: "Grid") -> float:
    """r(0) when the user gives none.

    10 for the paper's "exponential" (its sigma), 1 for "hard" and "none" (which do not
    read it), half the longest grid side (at least 1) for the classic kernels.
    """
    if kind == "exponential":
        return 10.0
    if _paper_or_none(kind):
        return 1.0
    return max(max(grid.shape) / 2.0, 1.0)


def default_radius_schedule(kind: str) -> str:
    """The paper's "inverse_time" for its kernels (and "none"), "exponential" for the classic ones."""
    return "inverse_time" if _paper_or_none(kind) else "exponential"


def resolve_neighbourhood(
    kind: str,
    grid: "Grid",
    horizon: float,
    *,
    radius: float | None,
    radius_final: float | None,
    radius_schedule: str | None,
    shrink: float,
) -> "Neighbourhood":
    """The :class:`~somvq.neighbourhoods.Neighbourhood` of the parameters, defaults filled in."""
    from .neighbourhoods import Neighbourhood
    from .schedules import Schedule

    start = float(radius) if radius is not None else default_radius(kind, grid)
    end = DEFAULT_RADIUS_FINAL if radius_final is None else float(radius_final)
    schedule = radius_schedule or default_radius_schedule(kind)
    return Neighbourhood(kind, Schedule(schedule, start, end, float(shrink), horizon), float(shrink))


def resolve_learning_rate(
    learning_rate: float | str,
    learning_rate_final: float,
    learning_rate_schedule: str | None,
    shrink: float,
    horizon: float,
) -> "Schedule | str":
    """Online KSOM's learning rate: a :class:`~somvq.schedules.Schedule`, or "inverse_count"."""
    from .schedules import Schedule

    if isinstance(learning_rate, str):
        return learning_rate
    return Schedule(
        learning_rate_schedule or DEFAULT_LEARNING_RATE_SCHEDULE,
        float(learning_rate),
        float(learning_rate_final),
        float(shrink),
        horizon,
    )


# ---------------------------------------------------------------------- steps and horizon
def steps_per_pass(algorithm: str, n_samples: int, batch_size: int) -> int:
    """Updates t made by one pass over ``n_samples`` rows held in memory."""
    if algorithm == "online":
        return n_samples
    if algorithm == "minibatch":
        return math.ceil(n_samples / batch_size)
    return 1


def horizon(n_epochs: int, steps: int) -> float:
    """Horizon of the "exponential" and "linear" schedules: the last step of ``n_epochs`` passes."""
    return float(max(n_epochs * steps - 1, 1))


# ---------------------------------------------------------------------- checks
def check_options(params: Any) -> None:
    """Cross-parameter checks that the per-parameter constraints cannot express.

    ``params``: an estimator (or any object) with KSOM's parameters as attributes.
    """
    from .neighbourhoods import SIGNED_NEIGHBOURHOODS

    if params.neighbourhood in SIGNED_NEIGHBOURHOODS and params.algorithm != "online":
        raise ValueError(
            f"neighbourhood={params.neighbourhood!r} has negative weights, which make the "
            f"smoothed counts of algorithm={params.algorithm!r} meaningless; use "
            "algorithm='online'."
        )
    if params.learning_rate == "inverse_count" and params.algorithm != "online":
        raise ValueError(
            "learning_rate='inverse_count' applies to algorithm='online' only, got "
            f"algorithm={params.algorithm!r}."
        )
    if params.algorithm == "minibatch":
        from ._validation import check_ema_settings

        check_ema_settings(decay=params.decay, eps=params.eps, init_count=params.init_count, update=params.update)


# ---------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class TrainingPlan:
    """The resolved parameters of one ``fit`` / ``partial_fit``: what every engine reads.

    Built once per call by :func:`training_plan`; the learned state that changes during
    the call is a :class:`somvq.state.FittedState`.
    """

    algorithm: str
    grid: "Grid"
    neighbourhood: "Neighbourhood"
    #: Online KSOM's learning rate (a Schedule or "inverse_count"); None for the others.
    learning_rate: "Schedule | str | None"
    batch_size: int
    decay: float
    eps: float
    update: str
    init_count: float
    horizon: float
    #: KSOM's ``bmu_search`` ("auto", "full" or "pruned"); see :func:`use_pruned_search`.
    bmu_search: str = "auto"


def training_plan(params: Any, grid: "Grid", horizon_: float) -> TrainingPlan:
    """The :class:`TrainingPlan` of an estimator's parameters on ``grid`` with the given horizon."""
    learning_rate = None
    if params.algorithm == "online":
        learning_rate = resolve_learning_rate(
            params.learning_rate,
            params.learning_rate_final,
            params.learning_rate_schedule,
            params.shrink,
            horizon_,
        )
    return TrainingPlan(
        algorithm=params.algorithm,
        grid=grid,
        neighbourhood=resolve_neighbourhood(
            params.neighbourhood,
            grid,
            horizon_,
            radius=params.radius,
            radius_final=params.radius_final,
            radius_schedule=params.radius_schedule,
            shrink=params.shrink,
        ),
        learning_rate=learning_rate,
        batch_size=int(params.batch_size),
        decay=float(params.decay),
        eps=float(params.eps),
        update=params.update,
        init_count=float(params.init_count),
        horizon=float(horizon_),
        bmu_search=getattr(params, "bmu_search", "auto"),
    )


def use_pruned_search(plan: TrainingPlan, n_rows: int) -> bool:
    """Whether a CPU fit with ``plan`` on ``n_rows`` rows runs the pruned BMU search.

    Only batch passes (any neighbourhood, "none" = k-means) keep bounds between passes;
    mini-batch and online always search in full. ``"auto"``: neighbourhood "none" from
    :data:`PRUNED_MIN_ROWS` rows on (a shrinking neighbourhood moves every unit every
    epoch: the bounds did not prune on the benchmark, docs/performance.md);
    ``"pruned"``: always; ``"full"``: never. The results are the same bits either way.
    """
    if plan.algorithm != "batch" or plan.bmu_search == "full":
        return False
    if plan.bmu_search == "pruned":
        return True
    return plan.neighbourhood.kind == "none" and n_rows >= PRUNED_MIN_ROWS
