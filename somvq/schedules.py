"""Schedules: how the neighbourhood radius and the learning rate change with the step t.

``t`` is the number of training updates already applied (starting at 0): samples for
online KSOM, epochs for batch KSOM, mini-batches for mini-batch KSOM.

=================  ==================================================  ==================
name               value at step t                                     uses
=================  ==================================================  ==================
``inverse_time``   ``start / (1 + shrink * t)``  (the paper's)          start, shrink
``exponential``    ``start * (end / start) ** (t / horizon)``           start, end, horizon
``linear``         ``start + (end - start) * t / horizon``              start, end, horizon
``constant``       ``start``                                           start
=================  ==================================================  ==================

``exponential`` and ``linear`` are ``end`` itself from ``t = horizon`` on (the power and
the sum would round: ``49 * (1 / 49) ** 1.0`` is 0.9999999999999999, and a "bubble"
radius 1 that misses by an ulp drops every neighbour at distance 1).

The functions accept a Python/NumPy scalar, a NumPy array or a torch tensor for ``t`` and
compute with that type's own operations, so the torch plugin evaluates the very same
definitions on the device without a host round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Schedule", "SCHEDULES", "SCHEDULE_CODES"]

SCHEDULES = ("inverse_time", "exponential", "linear", "constant")
#: Integer codes under which the Numba kernels receive a schedule.
SCHEDULE_CODES = {name: code for code, name in enumerate(SCHEDULES)}


def _progress(t: Any, horizon: float) -> Any:
    """``min(t / horizon, 1)`` for scalars, arrays and tensors alike."""
    ratio = t / horizon
    if hasattr(ratio, "clamp"):  # torch tensor
        return ratio.clamp(max=1.0)
    if hasattr(ratio, "__array__") and getattr(ratio, "ndim", 0):
        import numpy as np

        return np.minimum(ratio, 1.0)
    return ratio if ratio < 1.0 else 1.0


def _reach_end(progress: Any, value: Any, end: float) -> Any:
    """``value``, with ``end`` exactly where ``progress`` has reached 1."""
    if hasattr(progress, "clamp"):  # torch tensor
        import torch

        return torch.where(progress >= 1.0, torch.full_like(value, end), value)
    if hasattr(progress, "__array__") and getattr(progress, "ndim", 0):
        import numpy as np

        return np.where(progress >= 1.0, end, value)
    return end if progress >= 1.0 else value


@dataclass(frozen=True)
class Schedule:
    """A value that changes with the training step.

    Parameters
    ----------
    kind : {"inverse_time", "exponential", "linear", "constant"}
    start : float
        Value at ``t = 0``.
    end : float
        Value reached at ``t = horizon`` (``exponential`` and ``linear``; kept after).
    shrink : float
        The paper's tau, for ``inverse_time``.
    horizon : float
        Number of steps over which ``exponential`` and ``linear`` go from start to end.
    """

    kind: str
    start: float
    end: float = 1.0
    shrink: float = 0.1
    horizon: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"schedule {self.kind!r} is not one of {SCHEDULES}.")
        if self.kind == "exponential" and (self.start <= 0 or self.end <= 0):
            raise ValueError(
                f"an exponential schedule needs positive start and end, got "
                f"start={self.start!r}, end={self.end!r}."
            )
        if self.horizon <= 0:
            raise ValueError(f"schedule horizon must be > 0, got {self.horizon!r}.")

    @property
    def code(self) -> int:
        return SCHEDULE_CODES[self.kind]

    def __call__(self, t: Any) -> Any:
        """The value at step ``t``."""
        if self.kind == "inverse_time":
            return self.start / (1.0 + self.shrink * t)
        if self.kind == "exponential":
            progress = _progress(t, self.horizon)
            return _reach_end(progress, self.start * (self.end / self.start) ** progress, self.end)
        if self.kind == "linear":
            progress = _progress(t, self.horizon)
            return _reach_end(progress, self.start + (self.end - self.start) * progress, self.end)
        return self.start + 0.0 * t  # constant, in t's type
