"""The CUDA engine: the passes of the three algorithms on the GPU."""

from __future__ import annotations

import numpy as np

from ...initialisation import reads_data
from ...parameters import TrainingPlan
from ...state import FittedState
from ..base import Engine
from . import steps
from .device import DeviceData, _cuda, as_device_array, require_cuda, validate_training_data
from .resident import device_state, known_device_codebook

__all__ = ["CudaEngine"]


class CudaEngine(Engine):
    """Training on the GPU; the codebook stays on the device between passes and calls.

    The state is updated as the CPU engine updates it (``codebook``, the EMA state, the hit
    counts and ``n_steps``, copied back to the host after every pass), so the estimator's
    fitted attributes are NumPy arrays on every engine.
    """

    name = "cuda"

    def __init__(self, estimator) -> None:
        require_cuda()
        super().__init__(estimator)

    def prepare(self, X, *, reset, dtype=None) -> DeviceData:
        if getattr(self.estimator, "missing", "error") == "ignore":
            from .masked import validate_masked_training_data

            return validate_masked_training_data(self.estimator, X, reset=reset, dtype=dtype)
        return validate_training_data(self.estimator, X, reset=reset, dtype=dtype)

    def init_rows(self, data: DeviceData):
        # missing="ignore": the initialisation reads the rows with NaN replaced by the
        # column means (somvq.missing.mean_filled), as on the CPU, when it reads them.
        if getattr(data, "has_missing", False):
            return self.grid_rows(data) if reads_data(self.estimator.init) else data.host
        return data

    def grid_rows(self, data: DeviceData):
        if getattr(data, "has_missing", False):
            from ... import missing

            return missing.mean_filled(data.host)
        return data

    def scale_columns(self, data: DeviceData, scale: np.ndarray) -> DeviceData:
        """Layered maps: host inputs are scaled on the host and copied to the device once."""
        if data.host is None:
            raise ValueError(
                "layers on backend='cuda' need host (NumPy) input: the columns are scaled on "
                "the host before the copy; pass X as a NumPy array."
            )
        from ...layers import scale_rows

        host = scale_rows(data.host, scale)
        scaled = DeviceData(_cuda().to_device(host), host)
        scaled.has_missing = data.has_missing  # missing="ignore": the masked path stays chosen
        return scaled

    def run_pass(self, X, order: np.ndarray, plan: TrainingPlan, state: FittedState) -> float:
        self._layers = plan.layers  # layered maps: the labels' masked search reads it
        if getattr(X, "has_missing", False) or np.ndim(state.ema_count) == 2:
            # missing="ignore" with NaN (or a (K, D) EMA count): the masked path, as on the CPU
            from .masked import run_masked_pass

            return run_masked_pass(self.estimator, X, order, plan, state)
        device = device_state(self.estimator, state)
        Xd = as_device_array(X)
        cuda = _cuda()
        order_d = cuda.to_device(np.ascontiguousarray(order, dtype=np.int64))
        n = int(order_d.shape[0])
        error = steps._zeros(1)
        buffers = device.step_buffers(n if plan.algorithm != "minibatch" else min(n, plan.batch_size))
        nb = plan.neighbourhood
        if device.matrix is None and nb.kind != "none":
            device.matrix = cuda.device_array(device.distances.shape, dtype=np.float64)
        if plan.algorithm in ("batch", "minibatch"):
            step = n if plan.algorithm == "batch" else plan.batch_size
            for start in range(0, n, step):
                rows = order_d[start : min(start + step, n)] if step < n else order_d
                search = device.codebook
                if plan.search is not None:
                    # tanimoto layers: the thresholded search codebook (K x D) made on the host
                    search = cuda.to_device(np.ascontiguousarray(plan.search(device.codebook.copy_to_host())))
                stats = steps.unit_statistics(Xd, search, rows=rows, error=error, out=buffers)
                H = steps.neighbourhood_matrix(nb, device.distances, state.n_steps, out=device.matrix)
                counts, sums = steps.smooth_statistics(H, stats.counts, stats.sums, out=device.smoothed)
                if plan.algorithm == "batch":
                    steps.batch_update_inplace(device.codebook, counts, sums)
                else:
                    steps.ema_update_inplace(
                        device.ema_count,
                        device.ema_sum,
                        device.codebook,
                        counts,
                        sums,
                        decay=plan.decay,
                        eps=plan.eps,
                        update=plan.update,
                    )
                state.n_steps += 1
        else:  # online
            layered = None
            if plan.search is not None:  # tanimoto layers: the layered online search
                from .masked import online_layer_arrays

                layered = online_layer_arrays(plan.layers, Xd, order_d)
            steps.online_pass_inplace(
                Xd,
                order_d,
                device.codebook,
                device.unit_counts,
                nb,
                device.distances,
                state.n_steps,
                learning_rate=plan.learning_rate,
                layers=layered,
            )
            state.n_steps += n
            # As the CPU pass: the error is measured once, after the pass.
            search = device.codebook
            if plan.search is not None:
                search = cuda.to_device(np.ascontiguousarray(plan.search(device.codebook.copy_to_host())))
            steps.unit_statistics(Xd, search, rows=order_d, error=error, out=buffers)
        device.write_back(state)
        return float(error.copy_to_host()[0])

    def labels(self, X, state: FittedState) -> np.ndarray:
        codebook = known_device_codebook(self.estimator, state.codebook)
        if getattr(X, "has_missing", False):
            from .masked import masked_assign

            return masked_assign(
                X, state.codebook if codebook is None else codebook, layers=getattr(self, "_layers", None)
            )[0].copy_to_host()
        return steps.assign(X, state.codebook if codebook is None else codebook)[0].copy_to_host()
