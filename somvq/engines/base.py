"""The engine interface: what the one training loop of :class:`somvq.KSOM` asks a backend.

``KSOM.fit`` and ``KSOM.partial_fit`` are written once, for every engine::

    engine = engine_for(estimator, X)               # somvq.engines: the one place that chooses
    data = engine.prepare(X, reset=..., dtype=...)   # validation; the data as the engine keeps it
    engine.check_options()                           # what this engine cannot run: a clear error
    plan = training_plan(estimator, grid, horizon(n_epochs, engine.steps_per_pass(data)))
    codebook = initial_codebook(init, engine.init_rows(data), grid, rng)
    for each epoch:                                  # partial_fit: one pass in engine.call_order(data)
        sq_error = engine.run_pass(data, engine.epoch_order(rng, data), plan, state)
    state.labels = engine.labels(data, state)

An engine is made per call for one estimator (it reads the estimator's parameters and,
for validation, sets ``n_features_in_`` as scikit-learn's ``validate_data`` does). It
never keeps the learned state: that is the :class:`~somvq.state.FittedState` it is given.

:func:`batch_step` and :func:`ema_step` are one batch-KSOM update and one KSOM-EMA update
of a :class:`~somvq.state.FittedState` from unit statistics, with the NumPy definitions of
:mod:`somvq.algorithms`; the CPU and dask engines share them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import algorithms
from ..neighbourhoods import smoothing_operator
from ..parameters import TrainingPlan, steps_per_pass
from ..state import FittedState

__all__ = ["Engine", "batch_step", "ema_step"]


class Engine:
    """Base class of the engines; the defaults are those of data held as rows in memory."""

    #: Name used in error messages.
    name = "engine"

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    # ------------------------------------------------------------------ data
    def prepare(self, X: Any, *, reset: bool, dtype: Any = None) -> Any:
        """Validate ``X`` for training and return it as this engine keeps it.

        ``reset``: a fresh fit (sets ``n_features_in_``); otherwise the feature count is
        checked against the fitted one. ``dtype``: the fitted codebook's dtype, which the
        data takes when it continues a fit.
        """
        raise NotImplementedError

    def check_options(self) -> None:
        """Raise a clear error for parameters this engine cannot run (default: none)."""

    def n_samples(self, data: Any) -> int:
        return int(data.shape[0])

    def memory_shape(self, data: Any) -> tuple[int, int]:
        """``(rows, features)`` of the data a fit holds in this process (the memory estimate)."""
        return tuple(data.shape)

    def scale_columns(self, data: Any, scale: np.ndarray) -> Any:
        """``data`` with column j multiplied by ``scale[j]`` (layered maps, :mod:`somvq.layers`)."""
        from ..layers import scale_rows

        return scale_rows(data, scale)

    def init_rows(self, data: Any) -> Any:
        """What :func:`somvq.initialisation.initial_codebook` reads as X (default: the data)."""
        return data

    def grid_rows(self, data: Any) -> Any:
        """Rows with the data's covariance, for ``grid="auto"`` (default: :meth:`init_rows`)."""
        return self.init_rows(data)

    # ------------------------------------------------------------------ passes
    def steps_per_pass(self, data: Any) -> int:
        """Updates t that one pass over ``data`` makes (for the schedules' horizon)."""
        estimator = self.estimator
        return steps_per_pass(estimator.algorithm, self.n_samples(data), estimator.batch_size)

    def epoch_order(self, rng: np.random.Generator, data: Any) -> np.ndarray:
        """Order of one ``fit`` epoch: a fresh permutation of the rows for online and
        mini-batch KSOM; the rows as given for batch KSOM, whose update reads every row at
        once (no permutation is drawn: 55 ms an epoch at 10^6 rows, a fifth of a pruned
        k-means fit; docs/performance.md, round 7)."""
        if self.estimator.algorithm == "batch":
            # one array for the whole fit (np.arange(10^6) is 0.9 ms an epoch); no pass
            # writes to its order
            n = self.n_samples(data)
            identity = getattr(self, "_identity", None)
            if identity is None or identity.shape[0] != n:
                identity = self._identity = self.call_order(data)
            return identity
        return rng.permutation(self.n_samples(data))

    def call_order(self, data: Any) -> np.ndarray:
        """Order of a ``partial_fit`` pass: as given."""
        return np.arange(self.n_samples(data))

    def run_pass(self, data: Any, order: np.ndarray, plan: TrainingPlan, state: FittedState) -> float:
        """One pass of ``plan.algorithm`` over ``data`` in ``order``, updating ``state``.

        Returns the summed squared distance of the rows to the winners met during the
        pass (online KSOM: measured once, after the pass).
        """
        raise NotImplementedError

    def prunes(self, plan: TrainingPlan, data: Any) -> bool:
        """Whether this engine's passes of ``plan`` over ``data`` keep the pruned search's
        per-row bounds (for the memory estimate; default: no engine but the CPU one does)."""
        return False

    def settled(self, plan: TrainingPlan, before: np.ndarray, state: FittedState) -> bool:
        """Whether every further ``fit`` pass would leave ``state`` as it is, bit for bit.

        ``before``: the codebook the pass just run started from. Default: never (an engine
        says so only where its passes are deterministic functions of the codebook).
        """
        return False

    def labels(self, data: Any, state: FittedState) -> Any:
        """BMU of every row of ``data`` under ``state.codebook`` (the estimator's ``labels_``)."""
        raise NotImplementedError


def batch_step(stats: algorithms.UnitStatistics, plan: TrainingPlan, state: FittedState) -> float:
    """One batch-KSOM update of ``state`` from the statistics of all rows; returns their error."""
    op = smoothing_operator(plan.neighbourhood, plan.grid, state.n_steps)
    counts, sums = algorithms.smooth_statistics(op, stats.counts, stats.sums)
    state.codebook = algorithms.batch_update(state.codebook, counts, sums)
    state.n_steps += 1
    return stats.sq_error


def ema_step(stats: algorithms.UnitStatistics, plan: TrainingPlan, state: FittedState) -> float:
    """One KSOM-EMA update of ``state`` from the statistics of one mini-batch; returns their error."""
    op = smoothing_operator(plan.neighbourhood, plan.grid, state.n_steps)
    counts, sums = algorithms.smooth_statistics(op, stats.counts, stats.sums)
    state.ema_count, state.ema_sum, state.codebook = algorithms.ema_update(
        state.ema_count,
        state.ema_sum,
        state.codebook,
        counts,
        sums,
        decay=plan.decay,
        eps=plan.eps,
        update=plan.update,
    )
    state.n_steps += 1
    return stats.sq_error
