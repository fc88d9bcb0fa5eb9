"""Conversions between :class:`KohonenVectorQuantize` and the core's :class:`somvq.KSOM`.

A trained VQ-VAE codebook becomes a fitted mini-batch KSOM (metrics, U-matrix, plots,
``partial_fit`` that continues the very same update), and a fitted KSOM initialises a
quantizer. The estimator imports (numba, scikit-learn) happen here, on first use only.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from somvq import parameters
from somvq.grids import Grid
from somvq.state import FittedState

__all__ = ["quantizer_to_estimator", "quantizer_from_estimator"]


def quantizer_to_estimator(quantizer: Any, *, batch_size: int, random_state: Any):
    """See :meth:`KohonenVectorQuantize.to_estimator`."""
    from somvq import KSOM

    if getattr(quantizer, "cosine", False):
        raise ValueError(
            "to_estimator: distance='cosine' has no counterpart in somvq.KSOM (its partial_fit "
            "would not renormalise the codes); export the codebook (vq.codebook) instead."
        )
    params = quantizer.map.estimator_parameters()
    codebook = quantizer.codebook.detach().cpu().numpy()
    codebook = codebook.astype(np.float64 if codebook.dtype == np.float64 else np.float32)
    som = KSOM(
        **params,
        algorithm="minibatch",
        batch_size=batch_size,
        decay=quantizer.decay,
        eps=quantizer.eps,
        init_count=quantizer.init_count,
        update=quantizer.update,
        init=codebook.copy(),
        random_state=random_state,
    )
    n_steps = int(quantizer.step)
    n_units = quantizer.codebook_size
    rng = np.random.default_rng(random_state if not isinstance(random_state, np.random.RandomState) else None)
    return som.set_fitted_state(
        FittedState(
            codebook=codebook,
            grid=quantizer.grid,
            n_features_in=codebook.shape[1],  # codebook_dim: the estimator lives in the code space
            n_steps=n_steps,
            n_iter=n_steps,
            ema_count=quantizer.ema_count.detach().cpu().double().numpy().copy(),
            ema_sum=quantizer.ema_sum.detach().cpu().double().numpy().copy(),
            unit_counts=np.full(n_units, quantizer.init_count),
            # Only the "exponential" and "linear" radius schedules read the horizon.
            horizon=float(quantizer.map.radius_horizon or 1.0),
            rng_state=rng.bit_generator.state,
        )
    )


def quantizer_from_estimator(cls: type, som: Any, overrides: dict[str, Any]):
    """See :meth:`KohonenVectorQuantize.from_estimator`."""
    if not hasattr(som, "codebook_"):
        raise ValueError(
            f"{type(som).__name__} is not fitted: fit it (or partial_fit) before from_estimator."
        )
    codebook = np.asarray(som.codebook_)
    n_units, dim = codebook.shape
    grid: Grid = som.grid_
    minibatch = getattr(som, "algorithm", None) == "minibatch" and hasattr(som, "ema_count_")
    state = som.fitted_state()
    horizon = 1.0 if state.horizon is None else float(state.horizon)
    # The estimator's own resolution of its radius schedule (the defaults of somvq.parameters).
    radius = parameters.resolve_neighbourhood(
        som.neighbourhood,
        grid,
        horizon,
        radius=som.radius,
        radius_final=som.radius_final,
        radius_schedule=som.radius_schedule,
        shrink=som.shrink,
    ).radius
    kwargs: dict[str, Any] = {
        "dim": dim,
        "codebook_size": n_units,
        "grid": grid,
        "neighbourhood": som.neighbourhood,
        "shrink": float(som.shrink),
        "radius": None if som.radius is None else float(som.radius),
        "radius_schedule": radius.kind,
        "radius_final": radius.end,
        "radius_horizon": horizon,
        # a mini-batch map's own decay continues its EMA; a batch or online map's "auto"
        # (resolved from a fit that used no decay: 0 for 20 steps or fewer) would erase
        # the codebook at the first step: the quantizer's default, the paper's 0.99
        "decay": parameters.resolve_decay(som.decay, horizon)
        if minibatch or not isinstance(som.decay, str)
        else inspect.signature(cls).parameters["decay"].default,
        "eps": float(som.eps),
        "init_count": float(som.init_count),
        "update": som.update,
        "init": codebook.astype(np.float32),
    }
    kwargs.update(overrides)
    quantizer = cls(**kwargs)
    if codebook.dtype == np.float64 and "init" not in overrides:
        # a float64 map gives a float64 module: its codebook, not the float32 rounding
        # (at an offset of 1e8 that merged codes; KSOM -> torch -> KSOM lost the map)
        quantizer = quantizer.double()
        with torch.no_grad():
            quantizer.codebook.copy_(torch.as_tensor(codebook))
            quantizer.ema_sum.copy_(torch.as_tensor(codebook))  # m0 = w0, as the constructor's
    if minibatch and "init" not in overrides:
        with torch.no_grad():
            quantizer.ema_count.copy_(torch.as_tensor(np.asarray(som.ema_count_)))
            quantizer.ema_sum.copy_(torch.as_tensor(np.asarray(som.ema_sum_)))
            quantizer.step.fill_(int(som.n_steps_))
    return quantizer
