"""Conversions between :class:`KohonenVectorQuantize` and the core's :class:`somvq.KSOM`.

A trained VQ-VAE codebook becomes a fitted mini-batch KSOM (metrics, U-matrix, plots,
``partial_fit`` that continues the very same update), and a fitted KSOM initialises a
quantizer. The estimator imports (numba, scikit-learn) happen here, on first use only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from somvq.grids import Grid

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
    state = {
        "codebook_": codebook,
        "grid_": quantizer.grid,
        "n_features_in_": codebook.shape[1],  # codebook_dim: the estimator lives in the code space
        "n_steps_": n_steps,
        "n_iter_": n_steps,
        "ema_count_": quantizer.ema_count.detach().cpu().double().numpy().copy(),
        "ema_sum_": quantizer.ema_sum.detach().cpu().double().numpy().copy(),
        "unit_counts_": np.full(n_units, quantizer.init_count),
        # Only the "exponential" and "linear" radius schedules read the horizon.
        "_horizon": float(quantizer.map.radius_horizon or 1.0),
        "_rng_state": rng.bit_generator.state,
    }
    for name, value in state.items():
        setattr(som, name, value)
    return som


def quantizer_from_estimator(cls: type, som: Any, overrides: dict[str, Any]):
    """See :meth:`KohonenVectorQuantize.from_estimator`."""
    if not hasattr(som, "codebook_"):
        raise ValueError(
            f"{type(som).__name__} is not fitted: fit it (or partial_fit) before "
            "from_estimator."
        )
    codebook = np.asarray(som.codebook_)
    n_units, dim = codebook.shape
    grid: Grid = som.grid_
    minibatch = getattr(som, "algorithm", None) == "minibatch" and hasattr(som, "ema_count_")
    kind = som.neighbourhood
    radius_schedule = som.radius_schedule or (
        "inverse_time" if kind in ("none", "hard", "exponential") else "exponential"
    )
    kwargs: dict[str, Any] = {
        "dim": dim,
        "codebook_size": n_units,
        "grid": grid,
        "neighbourhood": kind,
        "shrink": float(som.shrink),
        "radius": None if som.radius is None else float(som.radius),
        "radius_schedule": radius_schedule,
        "radius_final": 0.5 if som.radius_final is None else float(som.radius_final),
        "radius_horizon": float(getattr(som, "_horizon", 1.0)),
        "decay": float(som.decay),
        "eps": float(som.eps),
        "init_count": float(som.init_count),
        "update": som.update,
        "init": codebook.astype(np.float32),
    }
    kwargs.update(overrides)
    quantizer = cls(**kwargs)
    if minibatch and "init" not in overrides:
        with torch.no_grad():
            quantizer.ema_count.copy_(torch.as_tensor(np.asarray(som.ema_count_)))
            quantizer.ema_sum.copy_(torch.as_tensor(np.asarray(som.ema_sum_)))
            quantizer.step.fill_(int(som.n_steps_))
    return quantizer
