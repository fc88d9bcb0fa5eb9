"""Engines: how one backend runs the passes of the training loop (see docs/architecture.md).

:func:`engine_for` is the one place that chooses an engine:

* an engine that the estimator class adds for this kind of data (``_engines``: the dask
  estimator's engine for dask arrays), when one accepts ``X``;
* otherwise the engine of the ``backend`` parameter: :class:`~.cpu.CpuEngine` ("cpu") or
  :class:`~.cuda.CudaEngine` ("cuda", imported only then).

An engine that cannot run a combination (dask arrays with ``backend="cuda"``) raises a
clear error here; nothing falls back silently to another backend.
"""

from __future__ import annotations

from typing import Any

from .base import Engine

__all__ = ["Engine", "engine_for", "check_backend"]


def check_backend(backend: str) -> None:
    """Raise :class:`~somvq.exceptions.BackendUnavailableError` when ``backend`` cannot run here."""
    if backend == "cuda":
        # numba.cuda is imported here, only when the CUDA backend is asked for.
        from .cuda.device import require_cuda

        require_cuda()


def engine_for(estimator: Any, X: Any) -> Engine:
    """The engine that trains ``estimator`` on ``X``."""
    for engine_class in getattr(estimator, "_engines", ()):
        if engine_class.accepts(X):
            return engine_class(estimator)
    if estimator.backend == "cuda":
        from .cuda.engine import CudaEngine

        return CudaEngine(estimator)
    from .cpu import CpuEngine

    return CpuEngine(estimator)
