"""The CPU engine: NumPy arrays in memory, the compiled kernels of :mod:`somvq._kernels`."""

from __future__ import annotations

import numpy as np

from .. import algorithms, missing
from .._validation import in_map_dtype, validate_rows
from ..initialisation import reads_data
from ..parameters import TrainingPlan, steps_per_pass, use_pruned_search
from ..state import FittedState
from .base import Engine, batch_step, ema_step

__all__ = ["CpuEngine"]


class CpuEngine(Engine):
    """Training on host arrays: batch, mini-batch (fused pass) and online KSOM."""

    name = "cpu"

    def prepare(self, X, *, reset, dtype=None) -> np.ndarray:
        X = validate_rows(
            self.estimator,
            X,
            max_missing=getattr(self.estimator, "max_missing", 1.0),
            dtype=[np.float64, np.float32],
            order="C",
            reset=reset,
        )
        return X if dtype is None else in_map_dtype(X, dtype)

    def init_rows(self, X: np.ndarray) -> np.ndarray:
        # missing="ignore": the initialisation reads the data with NaN replaced by the
        # column means (the dense data is read as it is); an init array or "normal" reads
        # only the shape, and gets no copy.
        if self._has_missing(X) and reads_data(self.estimator.init):
            return missing.mean_filled(X)
        return X

    def grid_rows(self, X: np.ndarray) -> np.ndarray:
        return missing.mean_filled(X) if self._has_missing(X) else X

    def _has_missing(self, X: np.ndarray) -> bool:
        """:func:`somvq.missing.has_missing`, scanned once per array a call trains on (an
        engine lives for one call, whose data does not change: every pass and the labels
        would scan it again, 2.4 ms a pass at 1e6 x 16)."""
        seen = getattr(self, "_nan_scan", None)
        if seen is None or seen[0] is not X:
            seen = self._nan_scan = (X, missing.has_missing(X))
        return seen[1]

    def prunes(self, plan: TrainingPlan, X: np.ndarray) -> bool:
        # Pruning keeps bounds on plain squared distances: not for thresholded (tanimoto)
        # searches, nor for the masked pass of data with NaN.
        return (
            plan.search is None
            and not self._has_missing(X)
            and use_pruned_search(plan, X.shape[0], X.shape[1])
        )

    def run_pass(self, X: np.ndarray, order: np.ndarray, plan: TrainingPlan, state: FittedState) -> float:
        self._layers = plan.layers  # layered maps: the labels' masked search reads it
        if self._has_missing(X) or np.ndim(state.ema_count) == 2:
            return missing.masked_pass(X, order, plan, state)
        if plan.search is not None and plan.algorithm != "batch":
            return self._thresholded_pass(X, order, plan, state)
        if plan.algorithm == "batch":
            search = state.codebook if plan.search is None else plan.search(state.codebook)
            if self.prunes(plan, X) and self._pruning_pays(plan, X, state.codebook):
                # Yinyang group bounds (config.default_groups) for k-means; one bound and
                # the ball around each row's last winner while a neighbourhood moves every
                # unit (docs/performance.md, pruned search)
                groups = None if plan.neighbourhood.kind == "none" else 1
                stats = self._pruned_statistics(X, state.codebook, groups)
                # the bounds now hold the newest winners; a full pass's would be stale (and
                # are read only when no bounds are kept: labels, _ball_pays)
                self._searched = None
                self._after_pruned_pass(plan, X.shape[0])
                return batch_step(stats, plan, state)
            n_units, n_features = search.shape
            self._searched = None  # (the last pass's winners: not kept beside this pass's)
            winners = np.empty(X.shape[0], dtype=np.int64)
            buffers = (np.zeros(n_units), np.zeros((n_units, n_features)), winners, np.empty(X.shape[0]))
            stats = algorithms.unit_statistics(X, search, buffers=buffers)
            self._searched = (X, search.copy(), winners)  # labels at a fixed point: these
            return batch_step(stats, plan, state)
        if plan.algorithm == "minibatch":
            # Fused pass, in place on private copies made here (the state's arrays may be
            # shared with a callback or the user's init): published only when it returns.
            codebook = np.array(state.codebook, order="C", copy=True)
            ema_count = np.array(state.ema_count, dtype=np.float64, order="C", copy=True)
            ema_sum = np.array(state.ema_sum, dtype=np.float64, order="C", copy=True)
            sq_error = algorithms.minibatch_pass_inplace(
                X,
                order,
                codebook,
                ema_count,
                ema_sum,
                plan.neighbourhood,
                plan.grid,
                state.n_steps,
                batch_size=plan.batch_size,
                decay=plan.decay,
                eps=plan.eps,
                update=plan.update,
            )
            state.codebook, state.ema_count, state.ema_sum = codebook, ema_count, ema_sum
            state.n_steps += steps_per_pass(plan.algorithm, order.shape[0], plan.batch_size)
            return sq_error
        # online
        codebook = np.ascontiguousarray(state.codebook).copy()
        algorithms.online_pass_inplace(
            X,
            order,
            codebook,
            state.unit_counts,
            plan.neighbourhood,
            plan.grid,
            state.n_steps,
            learning_rate=plan.learning_rate,
        )
        state.codebook = codebook
        state.n_steps += order.shape[0]
        return float(algorithms.assign(X, codebook)[1].sum())

    def settled(self, plan: TrainingPlan, before: np.ndarray, state: FittedState) -> bool:
        """Batch k-means (neighbourhood "none") at its fixed point: the pass left the codebook
        unchanged, bit for bit.

        A batch pass is a deterministic function of the codebook alone (the search is
        exact, the statistics are summed in row order whatever the order drawn, and the
        update keeps a unit nobody won), and with "none" the step's operator does not
        depend on t. So an unchanged codebook gives the same winners, the same error and
        the same codebook again at every later pass: ``fit`` skips them (Lloyd's "strict
        convergence", reached when no label changes). Other neighbourhoods change their
        operator every step until the schedule ends; they always run every pass.
        """
        return (
            plan.algorithm == "batch"
            and plan.neighbourhood.kind == "none"
            and before.shape == state.codebook.shape
            and before.dtype == state.codebook.dtype
            and bool(np.array_equal(before, state.codebook))
        )

    def _thresholded_pass(
        self, X: np.ndarray, order: np.ndarray, plan: TrainingPlan, state: FittedState
    ) -> float:
        """Mini-batch and online passes of tanimoto layers: the search codebook thresholded per step.

        Mini-batch: per batch, the statistics against ``plan.search(codebook)`` and one
        KSOM-EMA update of the codebook (:func:`somvq.engines.base.ema_step`, the NumPy
        definition, not the fused pass, whose search reads the codebook itself); online:
        :func:`somvq.layers.layered_online_pass`.
        """
        if plan.algorithm == "online":
            from ..layers import layered_online_pass

            return layered_online_pass(X, order, plan, state)
        sq_error = 0.0
        for start in range(0, order.shape[0], plan.batch_size):
            batch = X[order[start : start + plan.batch_size]]
            search = np.ascontiguousarray(plan.search(state.codebook))
            sq_error += ema_step(algorithms.unit_statistics(batch, search), plan, state)
        return sq_error

    def labels(self, X: np.ndarray, state: FittedState) -> np.ndarray:
        layers = getattr(self, "_layers", None)
        if self._has_missing(X) and layers is not None:
            from ..layers import layered_masked_assign

            return layered_masked_assign(X, state.codebook, layers.groups)[0]  # state: the search codebook
        if self._has_missing(X):
            return missing.masked_assign(X, state.codebook)[0]
        bounds = self._pruned_bounds(X)
        if bounds is not None:
            from .._kernels.cpu_pruned import pruned_search

            pruned_search(X, state.codebook, bounds)
            return bounds.bmu.copy()
        searched = getattr(self, "_searched", None)
        if (
            searched is not None
            and searched[0] is X
            and searched[1].dtype == state.codebook.dtype
            and np.array_equal(searched[1], state.codebook)
        ):
            # the last batch pass searched this very codebook (a k-means fit at its fixed
            # point, Engine.settled): the search is exact, so its winners are the labels
            return searched[2]
        return algorithms.assign(X, state.codebook)[0]

    # ------------------------------------------------------------------ pruned BMU search
    # The bounds live in the engine for one fit (an engine is made per call), never in the
    # fitted state: O(N) extra memory, released with the engine (docs/performance.md).
    def _pruned_bounds(self, X: np.ndarray, create: bool = False, n_groups: int | None = None):
        """The pruned search's bounds for ``X`` (the same array object as the last pass)."""
        bounds = getattr(self, "_bounds", None)
        if bounds is not None and bounds[0] is X:
            return bounds[1]
        if not create:
            return None
        from .._kernels.cpu_pruned import Bounds

        self._bounds = (X, Bounds(X.shape[0], n_groups))
        return self._bounds[1]

    #: bmu_search="auto": a pass that still searched more than this fraction of the rows
    #: by the product did not pay for its bounds (they cost ~15% of a full pass): the next
    #: passes search in full, 1, 2, 4, then 8 at a time, before the bounds are tried again.
    AUTO_MAX_SEARCHED = 0.75
    #: Passes of a set of bounds that are not judged: the first searches every row, and
    #: in k-means the second usually does too (the units' first moves are large; on the
    #: benchmark the third searched no row by the product).
    AUTO_UNJUDGED_PASSES = 2

    #: bmu_search="auto" under a shrinking neighbourhood: a pass runs the ball test when a
    #: sample of the rows says that at least this fraction of them would be settled by it
    #: (a settled row costs ~0.4x its share of a full search; one sent on to the product
    #: ~1.2x, with its new bound: docs/performance.md, round 14).
    AUTO_MIN_SETTLED = 0.6
    #: ... and runs it again without the sample after a ball pass that settled at least this
    #: fraction of the rows (the sample costs ~1.5 ms a pass at 1e6 x 16, 2-3% of a late
    #: pass; as the radius shrinks the ball settles more rows, not fewer).
    AUTO_KEEP_SETTLED = 0.9

    def _pruning_pays(self, plan: TrainingPlan, X: np.ndarray, codebook: np.ndarray) -> bool:
        if plan.bmu_search != "auto":
            return True
        if plan.neighbourhood.kind != "none":
            return self._ball_pays(X, codebook)
        if getattr(self, "_full_passes_left", 0) <= 0:
            return True
        self._full_passes_left -= 1
        self._bounds = None  # stale once a pass runs without them
        return False

    def _ball_pays(self, X: np.ndarray, codebook: np.ndarray) -> bool:
        """Under a shrinking neighbourhood the bounds carried from pass to pass do not
        prune (every unit moves by more than the runner-up gaps); what does, late in a fit,
        is the ball around each row's last winner, which needs only those winners. This
        pass runs it when a sample of the rows says it settles enough of them
        (:func:`~somvq._kernels.cpu_pruned.ball_settled_fraction`); bounds are seeded from
        the last full pass's winners, so that no pass pays for a first set of bounds."""
        from .._kernels import cpu_pruned

        X = algorithms._as_dtype(X, codebook.dtype)
        bounds = self._pruned_bounds(X)
        if bounds is not None and bounds.codebook is not None:
            if bounds.searched <= (1.0 - self.AUTO_KEEP_SETTLED) * X.shape[0]:
                return True
            winners = bounds.bmu
        else:
            searched = getattr(self, "_searched", None)
            if searched is None or searched[0] is not X:
                return False  # no winners yet: a full pass finds them
            winners = searched[2]
        settled = cpu_pruned.ball_settled_fraction(X, codebook, winners, cpu_pruned.BALL_FRACTION)
        if settled < self.AUTO_MIN_SETTLED:
            self._bounds = None  # stale once a pass runs without them
            return False
        if bounds is None or bounds.codebook is None:
            bounds = self._pruned_bounds(X, create=True, n_groups=1)
            bounds.seed(searched[2], searched[1])
        return True

    def _after_pruned_pass(self, plan: TrainingPlan, n_rows: int) -> None:
        if plan.bmu_search != "auto" or plan.neighbourhood.kind != "none":
            return
        searched = self._bounds[1].searched
        if searched > self.AUTO_MAX_SEARCHED * n_rows:
            # the first passes of a set of bounds search every row: judge the later ones
            if getattr(self, "_pruned_passes", 0) >= self.AUTO_UNJUDGED_PASSES:
                self._backoff = min(2 * getattr(self, "_backoff", 0) or 1, 8)
                self._full_passes_left = self._backoff
                self._pruned_passes = 0
                return
        else:
            self._backoff = 0
        self._pruned_passes = getattr(self, "_pruned_passes", 0) + 1

    def _pruned_statistics(
        self, X: np.ndarray, codebook: np.ndarray, n_groups: int | None = None
    ) -> algorithms.UnitStatistics:
        """:func:`somvq.algorithms.unit_statistics` through the pruned search: same bits."""
        from .._kernels.cpu_pruned import pruned_search

        X = algorithms._as_dtype(X, codebook.dtype)
        bounds = self._pruned_bounds(X, create=True, n_groups=n_groups)
        n_units, n_features = codebook.shape
        counts = np.zeros(n_units, dtype=np.float64)
        sums = np.zeros((n_units, n_features), dtype=np.float64)
        sq_dist = pruned_search(X, codebook, bounds, counts=counts, sums=sums)
        return algorithms.UnitStatistics(counts, sums, float(sq_dist.sum()), X.shape[0])
