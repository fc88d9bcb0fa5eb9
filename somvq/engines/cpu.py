"""The CPU engine: NumPy arrays in memory, the compiled kernels of :mod:`somvq._kernels`."""

from __future__ import annotations

import numpy as np

from .. import algorithms, missing
from .._sklearn import validate_data
from ..parameters import TrainingPlan, steps_per_pass
from ..state import FittedState
from .base import Engine, batch_step

__all__ = ["CpuEngine"]


class CpuEngine(Engine):
    """Training on host arrays: batch, mini-batch (fused pass) and online KSOM."""

    name = "cpu"

    def prepare(self, X, *, reset, dtype=None) -> np.ndarray:
        ignore = getattr(self.estimator, "missing", "error") == "ignore"
        X = validate_data(
            self.estimator, X, dtype=[np.float64, np.float32], order="C", reset=reset,
            ensure_all_finite="allow-nan" if ignore else True,
        )
        if ignore:
            missing.check_missing(X, self.estimator.max_missing)
        return X if dtype is None or X.dtype == dtype else X.astype(dtype)

    def init_rows(self, X: np.ndarray) -> np.ndarray:
        # missing="ignore": the initialisation reads the data with NaN replaced by the
        # column means (the dense data is read as it is).
        return missing.mean_filled(X) if missing.has_missing(X) else X

    def run_pass(self, X: np.ndarray, order: np.ndarray, plan: TrainingPlan, state: FittedState) -> float:
        if missing.has_missing(X) or np.ndim(state.ema_count) == 2:
            return missing.masked_pass(X, order, plan, state)
        if plan.algorithm == "batch":
            search = state.codebook if plan.search is None else plan.search(state.codebook)
            return batch_step(algorithms.unit_statistics(X, search), plan, state)
        if plan.algorithm == "minibatch":
            # Fused pass, in place on private copies made here (the state's arrays may be
            # shared with a callback or the user's init): published only when it returns.
            codebook = np.array(state.codebook, order="C", copy=True)
            ema_count = np.array(state.ema_count, dtype=np.float64, order="C", copy=True)
            ema_sum = np.array(state.ema_sum, dtype=np.float64, order="C", copy=True)
            sq_error = algorithms.minibatch_pass_inplace(
                X, order, codebook, ema_count, ema_sum, plan.neighbourhood, plan.grid, state.n_steps,
                batch_size=plan.batch_size, decay=plan.decay, eps=plan.eps, update=plan.update,
            )
            state.codebook, state.ema_count, state.ema_sum = codebook, ema_count, ema_sum
            state.n_steps += steps_per_pass(plan.algorithm, order.shape[0], plan.batch_size)
            return sq_error
        # online
        codebook = np.ascontiguousarray(state.codebook).copy()
        algorithms.online_pass_inplace(
            X, order, codebook, state.unit_counts, plan.neighbourhood, plan.grid, state.n_steps,
            learning_rate=plan.learning_rate,
        )
        state.codebook = codebook
        state.n_steps += order.shape[0]
        return float(algorithms.assign(X, codebook)[1].sum())

    def labels(self, X: np.ndarray, state: FittedState) -> np.ndarray:
        if missing.has_missing(X):
            return missing.masked_assign(X, state.codebook)[0]
        return algorithms.assign(X, state.codebook)[0]
