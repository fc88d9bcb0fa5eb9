"""The device-resident copy of one estimator's state, kept between passes and calls.

The estimator's fitted attributes stay NumPy arrays (``codebook_`` and the EMA state are
copied back after every pass, O(K D)). The CUDA engine keeps a private device copy of the
codebook, the EMA state, the online hit counts and the grid distances per estimator, and
reuses it on the next ``partial_fit`` (or epoch) as long as the host state still holds the
values it last wrote; if they were changed (``set_params``, a user edit, ``load``), the
device copy is rebuilt from them.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from ...state import FittedState
from .device import _cuda

__all__ = ["device_codebook", "device_state"]


class _DeviceState:
    """Device copies of one estimator's state, with the host values they correspond to."""

    def __init__(self, state: FittedState):
        cuda = _cuda()
        self.grid = state.grid
        self.distances = cuda.to_device(np.ascontiguousarray(state.grid.distances, dtype=np.float64))
        self.matrix = None
        self.codebook = cuda.to_device(np.ascontiguousarray(state.codebook))
        self.ema_count = cuda.to_device(np.ascontiguousarray(state.ema_count, dtype=np.float64))
        self.ema_sum = cuda.to_device(np.ascontiguousarray(state.ema_sum, dtype=np.float64))
        self.unit_counts = cuda.to_device(np.ascontiguousarray(state.unit_counts, dtype=np.float64))
        # Scratch buffers reused by every step (no allocation or transfer per mini-batch).
        n_units, n_features = self.codebook.shape
        self.statistics = (
            cuda.device_array(n_units, dtype=np.float64),
            cuda.device_array((n_units, n_features), dtype=np.float64),
        )
        self.smoothed = (
            cuda.device_array(n_units, dtype=np.float64),
            cuda.device_array((n_units, n_features), dtype=np.float64),
        )
        self.rows_capacity = 0
        self.row_buffers = None
        self.snapshot(state)

    def step_buffers(self, n_rows: int):
        """``(counts, sums, bmu, sq_dist)`` scratch for steps of up to ``n_rows`` rows."""
        if n_rows > self.rows_capacity:
            cuda = _cuda()
            self.row_buffers = (
                cuda.device_array(n_rows, dtype=np.int64),
                cuda.device_array(n_rows, dtype=np.float64),
            )
            self.rows_capacity = n_rows
        return self.statistics + self.row_buffers

    def masked_buffers(self):
        """``(hits, both, smoothed hits, smoothed both)`` scratch of the masked path.

        ``both`` is (K, 2 D): ``[sums | observed counts]`` (``missing="ignore"``); made on
        the first masked step.
        """
        if getattr(self, "_masked", None) is None:
            cuda = _cuda()
            n_units, n_features = self.codebook.shape
            self._masked = tuple(
                cuda.device_array(shape, dtype=np.float64)
                for shape in (n_units, (n_units, 2 * n_features), n_units, (n_units, 2 * n_features))
            )
        return self._masked

    def snapshot(self, state: FittedState) -> None:
        self.host = {name: np.array(getattr(state, name), copy=True) for name in _SYNCED}

    def matches(self, state: FittedState) -> bool:
        if state.grid != self.grid:
            return False
        for name in _SYNCED:
            value = getattr(state, name)
            known = self.host[name]
            if not isinstance(value, np.ndarray) or value.dtype != known.dtype:
                return False
            if value.shape != known.shape or not np.array_equal(value, known):
                return False
        return True

    def write_back(self, state: FittedState) -> None:
        """Copy the device state into ``state`` (new host arrays) and remember it."""
        for name in _SYNCED:
            setattr(state, name, getattr(self, name).copy_to_host())
        self.snapshot(state)


_SYNCED = ("codebook", "ema_count", "ema_sum", "unit_counts")
_STATES: weakref.WeakKeyDictionary[Any, _DeviceState] = weakref.WeakKeyDictionary()


def device_state(owner, state: FittedState) -> _DeviceState:
    """The device copy of ``state`` kept for ``owner``, rebuilt if the host values changed."""
    cached = _STATES.get(owner)
    if cached is None or not cached.matches(state):
        cached = _STATES[owner] = _DeviceState(state)
    return cached


def device_codebook(owner):
    """The device codebook kept for ``owner`` (None before its first CUDA pass)."""
    cached = _STATES.get(owner)
    return None if cached is None else cached.codebook


def known_device_codebook(owner, codebook: np.ndarray):
    """The device copy of ``codebook`` kept for ``owner`` if it still holds those values, else None."""
    cached = _STATES.get(owner)
    if cached is not None and np.array_equal(cached.host["codebook"], codebook):
        return cached.codebook
    return None
