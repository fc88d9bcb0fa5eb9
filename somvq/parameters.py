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
    "EarlyStopping",
    "resolve_decay",
    "schedule_settled",
    "som_toolbox_shape",
    "auto_grid",
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
#: bmu_search="auto" prunes k-means fits of at least this many batch passes (shrinking
#: neighbourhoods decide pass by pass, docs/performance.md round 14): the first passes build
#: the bounds at a cost, which short fits do not win back. This many on fewer than 100,000
#: rows of fewer than 64 features; fewer passes where a pass is more work
#: (:data:`PRUNED_MIN_PASSES_BY_SIZE`).
PRUNED_MIN_PASSES = 30
#: ``(features, rows, passes)``: from that many features and rows on, k-means fits of
#: ``passes`` passes are pruned (the first entry that applies; else
#: :data:`PRUNED_MIN_PASSES`). The bounds' set-up is O(N (D + G)) and a pass's product
#: O(N K D): the more features, the sooner it is won back. Whole fits pruned / full are
#: 1.0 at about 31 passes on 2e4 x 16 (K = 400), 21 on 5e4 x 32, 16 on 1e5 x 32 (K = 512),
#: 24-26 on 2e5 and 1e6 x 16, 12 on 2e4 x 64, 6 on 1e5 x 64, under 5 on 1e6 x 64 and 3
#: at D = 784 (docs/performance.md, rounds 16 and 22: the full search fused up to 128
#: features moved the break-evens below 64 features later); each entry lies at or a few
#: passes past its break-even.
PRUNED_MIN_PASSES_BY_SIZE = ((256, 0, 5), (64, 100_000, 8), (64, 0, 12), (32, 100_000, 16), (0, 100_000, 25))

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
    "decay": "auto",
    "init_count": 1.0,
    "eps": 1e-5,
    "update": "all",
    "init": "random",
    "backend": "cpu",
    "random_state": None,
    "verbose": False,
    "missing": "error",
    "max_missing": 0.5,
    "tol": None,
    "n_iter_no_change": None,
    "layers": None,
    "layer_weights": None,
    "layer_distances": None,
    "predict_layers": None,
    "bmu_search": "auto",
}

#: Radius reached at the end of the "exponential" and "linear" schedules (``radius_final=None``).
DEFAULT_RADIUS_FINAL = 0.5
#: The smallest ``radius`` / ``radius_final``: the kernels divide by the squared radius,
#: which underflows to 0 below ~1e-154 (and every non-winner weight is already exactly 0
#: from a radius of ~0.03). 1e-100 leaves the inverse-time schedule 1e54 steps of room.
MIN_RADIUS = 1e-100
#: Schedule of the online learning rate (``learning_rate_schedule=None``).
DEFAULT_LEARNING_RATE_SCHEDULE = "exponential"


# ---------------------------------------------------------------------- the grid
def som_toolbox_shape(n_samples: int, eigenvalues: Any, topology: str = "rectangular") -> tuple[int, int]:
    """The map shape of the SOM Toolbox's ``som_topol_struct`` (used by ``som_make``).

    ``munits = ceil(5 * n_samples ** 0.54321)`` units; side ratio
    ``ratio = sqrt(l1 / l2)`` of the two largest eigenvalues of the data's covariance (1
    with fewer than 2 features, ``l1 = 0``, or ``l2 * munits < l1``: the toolbox's
    square map for data stretched along one direction beyond ``munits``); ``cols = min(munits, round(sqrt(munits /
    ratio)))`` (``sqrt(munits / ratio * sqrt(0.75))`` on a hexagonal grid, whose rows are
    ``sqrt(0.75)`` apart), at least 1; ``rows = round(munits / cols)`` (MATLAB's round: half
    away from zero). Returns ``(rows, cols)``, rows the longer side; a 1-wide map is
    ``(1, n)``, as in the toolbox.

    References: J. Vesanto, J. Himberg, E. Alhoniemi, J. Parhankangas (2000), "SOM Toolbox
    for Matlab 5", Helsinki University of Technology, Report A57 (``som_topol_struct.m``).
    """
    munits = math.ceil(5.0 * float(n_samples) ** 0.54321)
    lam = sorted((float(v) for v in eigenvalues), reverse=True)
    stretched = len(lam) < 2 or lam[0] <= 0 or lam[1] * munits < lam[0]
    ratio = 1.0 if stretched else math.sqrt(lam[0] / lam[1])
    area = munits / ratio * (math.sqrt(0.75) if topology == "hexagonal" else 1.0)
    cols = max(1, min(munits, math.floor(math.sqrt(area) + 0.5)))
    rows = max(1, math.floor(munits / cols + 0.5))
    if min(rows, cols) == 1:
        return (1, max(rows, cols))
    return (rows, cols)


def auto_grid(
    X: Any, topology: str = "rectangular", periodic: Any = False, n_samples: int | None = None
) -> Grid:
    """The grid of ``grid="auto"``: :func:`som_toolbox_shape` of the rows ``X``.

    ``n_samples`` (default ``len(X)``) is the number of training rows, when ``X`` only
    stands for them (the dask engine's PCA surrogate). A hexagonal grid periodic along its
    rows gets one more row when the rule gives an odd number (such grids need an even one).
    """
    import numpy as np

    from ._moments import mean_and_covariance
    from .grids import Grid
    from .missing import check_observed_columns

    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] < 1:
        raise ValueError(f"grid='auto' needs 2-D data with at least one row, got shape {X.shape}.")
    n = X.shape[0] if n_samples is None else int(n_samples)
    if X.shape[1] >= 2 and X.shape[0] >= 2:
        covariance = mean_and_covariance(X)[1]  # (in blocks, scaled: only the ratios count)
        check_observed_columns(np.diag(covariance), "grid='auto'")
        eigenvalues = np.linalg.eigvalsh(covariance)
    else:
        eigenvalues = np.ones(1)
    rows, cols = som_toolbox_shape(n, eigenvalues, topology)
    periodic_t = periodic if not isinstance(periodic, (bool, np.bool_)) else (bool(periodic),) * 2
    if topology == "hexagonal" and len(periodic_t) == 2 and periodic_t[0] and rows % 2:
        rows += 1
    return Grid((rows, cols), topology, periodic)


def make_grid(
    grid: Any, grid_dim: int, topology: str, periodic: Any, data: Any = None, n_samples: int | None = None
) -> Grid:
    """The :class:`~somvq.grids.Grid` of KSOM's ``grid`` parameter (a shape, a unit count or "auto").

    ``grid="auto"`` is resolved from the training rows ``data`` (:func:`auto_grid`); it is a
    ValueError without them.
    """
    import numpy as np

    from ._validation import check_grid_value
    from .grids import Grid

    if isinstance(grid, str):
        if grid != "auto":
            raise ValueError(f"grid={grid!r} must be a tuple of positive ints, an int or 'auto'.")
        if data is None:
            raise ValueError("grid='auto' is chosen from the training data: it has no value before fit.")
        if grid_dim != 2:
            raise ValueError(f"grid='auto' makes 2-D maps (the SOM Toolbox rule), got grid_dim={grid_dim}.")
        return auto_grid(data, topology, periodic, n_samples)
    check_grid_value(grid)
    if isinstance(grid, (Integral, np.integer)):
        return Grid.from_size(int(grid), grid_dim, topology, periodic)
    shape = np.asarray(grid)
    if shape.ndim != 1 or shape.size == 0 or not np.issubdtype(shape.dtype, np.integer):
        raise ValueError(f"grid={grid!r} must be a tuple of positive ints or an int.")
    return Grid(tuple(int(s) for s in shape), topology, periodic)


def grid_of(params: Any, data: Any = None, n_samples: int | None = None) -> Grid:
    """:func:`make_grid` of an estimator's (or any object's) grid parameters.

    With ``grid="auto"`` and no ``data``: the fitted ``grid_`` when there is one (the
    choice made at fit), else a ValueError.
    """
    if isinstance(params.grid, str) and params.grid == "auto" and data is None and hasattr(params, "grid_"):
        grid: Grid = params.grid_
        return grid
    return make_grid(params.grid, params.grid_dim, params.topology, params.periodic, data, n_samples)


# ---------------------------------------------------------------------- neighbourhood
def _paper_or_none(kind: str) -> bool:
    from .neighbourhoods import PAPER_NEIGHBOURHOODS

    return kind in PAPER_NEIGHBOURHOODS or kind == "none"


def default_radius(kind: str, grid: Grid) -> float:
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
    grid: Grid,
    horizon: float,
    *,
    radius: float | None,
    radius_final: float | None,
    radius_schedule: str | None,
    shrink: float,
) -> Neighbourhood:
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
) -> Schedule | str:
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


# ---------------------------------------------------------------------- mini-batch decay
#: decay="auto": the EMA's horizon 1 / (1 - decay) is the fit's number of steps over this.
AUTO_DECAY_STEPS = 20.0


def resolve_decay(decay: Any, horizon_: float) -> float:
    """The EMA decay of mini-batch KSOM: a number as given, or ``"auto"`` from the fit's length.

    ``"auto"``: ``decay = max(0, 1 - 20 / S)`` with ``S = horizon + 1`` the fit's number of
    mini-batch steps (``n_epochs * ceil(N / batch_size)``), so that the EMA remembers
    ``S / 20`` steps (half an epoch with the default 10 epochs); ``S <= 20`` gives 0 (each
    step replaces the statistics, as batch KSOM does).
    """
    if isinstance(decay, str):
        if decay != "auto":
            raise ValueError(f"decay={decay!r} must be a number in [0, 1) or 'auto'.")
        return max(0.0, 1.0 - AUTO_DECAY_STEPS / (float(horizon_) + 1.0))
    return float(decay)


#: The count smoothing's pull is worth a warning from ``eps * |mean| / spread`` above this:
#: iris (8x8 map, default eps) at an offset of 1e4 spreads trained as centred (QE 0.230),
#: at 1e5 20% worse (0.281), at 1e8 a map 137 away from the data (docs/analysis.md).
SMOOTHING_PULL_LIMIT = 0.2


#: Rows the smoothing check reads (evenly spaced): the moments of 10^6 x 16 rows cost
#: 116 ms (306 ms NaN-aware), a quarter of a mini-batch epoch; these, well under 1 ms.
SMOOTHING_CHECK_ROWS = 4096


def check_smoothing_offset(plan: TrainingPlan, X: Any) -> None:
    """Warn when KSOM-EMA's count smoothing (E2) would bias the map: data far from the origin.

    (E2) changes the counts N but not the sums m, so ``w = m / N`` moves toward the origin
    by about ``eps * |w| / N`` a step (at most ~``|w|``: a large eps flattens the counts):
    negligible near the origin (the paper's VQ-VAE latents), a bias once the data's
    distance from it is ~1 / eps of its spread. ``X``: the training rows (host array);
    their column moments are taken over :data:`SMOOTHING_CHECK_ROWS` evenly spaced rows
    (NaN, missing values, left out).
    """
    if plan.algorithm != "minibatch" or plan.update != "all" or plan.eps == 0.0:
        return
    import numpy as np

    from ._moments import column_moments

    sample = X[:: max(1, X.shape[0] // SMOOTHING_CHECK_ROWS)]
    mean, std = column_moments(sample, nan=True)
    offset = float(np.linalg.norm(mean))
    spread = float(np.linalg.norm(std))
    if not (np.isfinite(offset) and np.isfinite(spread)) or spread <= offset * 2.0**-40:
        return  # constant up to rounding: no spread to sit off
    # eps beyond the counts (eps >~ 1) flattens them to their mean: the pull saturates at ~|w|
    if min(plan.eps, 1.0) * offset / spread > SMOOTHING_PULL_LIMIT:
        import warnings

        from .exceptions import SomvqWarning

        warnings.warn(
            f"mini-batch KSOM smooths its counts (eps={plan.eps:g}, update='all'), which pulls "
            f"every unit toward the origin by about eps * |w| / N a step; these rows lie "
            f"{offset / spread:.3g} spreads from the origin, so the map will sit off the data. "
            "Centre the data first (StandardScaler(with_std=False) keeps its units), or lower eps.",
            SomvqWarning,
            stacklevel=6,
        )


# ---------------------------------------------------------------------- early stopping
#: Early stopping waits until the neighbourhood has done all but this fraction of its change.
LATE_PHASE = 0.1
#: ``n_iter_no_change`` when ``tol`` is given without it.
DEFAULT_N_ITER_NO_CHANGE = 2


def schedule_settled(neighbourhood: Neighbourhood, t: float, t_end: float) -> bool:
    """Whether step ``t`` is in the late phase of the neighbourhood schedule of a fit ending at ``t_end``.

    With ``v`` the radius (the neighbour weight ``1 / (1 + shrink t)`` for "hard"):
    ``|v(t) - v(t_end)| <= LATE_PHASE * |v(0) - v(t_end)|``, i.e. the neighbourhood has made
    at least 90% of the change the full fit would make, whatever the schedule
    (exponential, linear, inverse_time). "none" and a constant radius are always settled.
    """
    if neighbourhood.kind == "none":
        return True
    value = neighbourhood.hard_weight if neighbourhood.kind == "hard" else neighbourhood.radius
    start, now, end = float(value(0.0)), float(value(float(t))), float(value(float(t_end)))
    span = abs(start - end)
    return span == 0.0 or abs(now - end) <= LATE_PHASE * span


class EarlyStopping:
    """KSOM's early-stopping rule (``tol``, ``n_iter_no_change``), fed once per ``fit`` epoch.

    After each epoch, with ``m`` its mean squared error (measured during the pass) and
    ``m_prev`` the previous epoch's: the epoch counts as "no change" when the schedule is
    settled (:func:`schedule_settled` at the step reached) and ``m_prev - m < tol * m_prev``
    (or both are 0); any other epoch resets the count. The fit stops after ``n_iter_no_change`` consecutive
    "no change" epochs. So a fit never stops while the radius is still large.
    """

    def __init__(
        self, tol: float, n_iter_no_change: int | None, neighbourhood: Neighbourhood, t_end: float
    ) -> None:
        self.tol = float(tol)
        self.patience = DEFAULT_N_ITER_NO_CHANGE if n_iter_no_change is None else int(n_iter_no_change)
        self.neighbourhood = neighbourhood
        self.t_end = float(t_end)
        self.previous: float | None = None
        self.count = 0

    def stop(self, t: float, mse: float) -> bool:
        """Record an epoch that ended at step ``t`` with error ``mse``; True to stop now."""
        previous = self.previous
        # an error already 0 cannot fall by a fraction of itself: 0 after 0 is "no change"
        flat = previous is not None and (previous - mse < self.tol * previous or previous == mse == 0.0)
        if flat and schedule_settled(self.neighbourhood, t, self.t_end):
            self.count += 1
        else:
            self.count = 0
        self.previous = float(mse)
        return self.count >= self.patience


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
    from .layers import check_predict_layers

    check_predict_layers(params.predict_layers, params.layers, params.layer_weights)
    if params.algorithm == "minibatch":
        from ._validation import check_ema_settings

        # decay="auto" is known only with the fit's length: its value is checked in training_plan
        decay = 0.5 if isinstance(params.decay, str) else params.decay
        check_ema_settings(decay=decay, eps=params.eps, init_count=params.init_count, update=params.update)


# ---------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class TrainingPlan:
    """The resolved parameters of one ``fit`` / ``partial_fit``: what every engine reads.

    Built once per call by :func:`training_plan`; the learned state that changes during
    the call is a :class:`somvq.state.FittedState`.
    """

    algorithm: str
    grid: Grid
    neighbourhood: Neighbourhood
    #: Online KSOM's learning rate (a Schedule or "inverse_count"); None for the others.
    learning_rate: Schedule | str | None
    batch_size: int
    decay: float
    eps: float
    update: str
    init_count: float
    horizon: float
    #: Layered maps: the codebook the BMU search reads, from the (scaled) codebook
    #: (tanimoto layers thresholded, somvq.layers.search_codebook); None: the codebook.
    search: Any = None
    #: KSOM's ``bmu_search`` ("auto", "full" or "pruned"); see :func:`use_pruned_search`.
    bmu_search: str = "auto"
    #: Layered maps: :class:`somvq.layers.ScaledLayers` (the layers in the working copy's
    #: scaled units: search codebook, masked-distance groups); None: no layers.
    layers: Any = None


def training_plan(params: Any, grid: Grid, horizon_: float) -> TrainingPlan:
    """The :class:`TrainingPlan` of an estimator's parameters on ``grid`` with the given horizon."""
    learning_rate = None
    decay = resolve_decay(params.decay, horizon_)
    if params.algorithm == "minibatch" and isinstance(params.decay, str):
        from ._validation import check_ema_settings

        check_ema_settings(decay=decay, eps=params.eps, init_count=params.init_count, update=params.update)
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
        decay=decay,
        eps=float(params.eps),
        update=params.update,
        init_count=float(params.init_count),
        horizon=float(horizon_),
        bmu_search=getattr(params, "bmu_search", "auto"),
    )


def pruned_min_passes(n_rows: int, n_features: int) -> int:
    """Passes from which ``bmu_search="auto"`` prunes a k-means fit of ``n_rows`` x
    ``n_features`` (:data:`PRUNED_MIN_PASSES_BY_SIZE`, else :data:`PRUNED_MIN_PASSES`)."""
    for features, rows, passes in PRUNED_MIN_PASSES_BY_SIZE:
        if n_features >= features and n_rows >= rows:
            return passes
    return PRUNED_MIN_PASSES


def use_pruned_search(plan: TrainingPlan, n_rows: int, n_features: int) -> bool:
    """Whether a CPU fit with ``plan`` on ``n_rows`` x ``n_features`` runs the pruned BMU search.

    Only batch passes (any neighbourhood, "none" = k-means) keep bounds between passes;
    mini-batch and online always search in full. ``"auto"``: from :data:`PRUNED_MIN_ROWS`
    rows on; neighbourhood "none" from :func:`pruned_min_passes` passes on (30 on small,
    low-dimensional data, 5 at 256 features or more: a short fit does not win back the
    bounds' set-up); a shrinking neighbourhood in the passes where a sample of the rows
    says that the ball around their last winners settles most of them (the engine decides
    pass by pass; docs/performance.md). ``"pruned"``: always; ``"full"``: never. The
    results are the same bits either way.
    """
    if plan.algorithm != "batch" or plan.bmu_search == "full":
        return False
    if plan.bmu_search == "pruned":
        return True
    if n_rows < PRUNED_MIN_ROWS:
        return False
    return plan.neighbourhood.kind != "none" or plan.horizon + 1 >= pruned_min_passes(n_rows, n_features)
