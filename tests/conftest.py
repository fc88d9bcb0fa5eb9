"""Shared test configuration.

Hypothesis: Numba compiles on first call, which breaks per-example deadlines, so every
profile has deadline=None. HYPOTHESIS_PROFILE=thorough runs more examples.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=400,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def winner_margin(X, W):
    """Smallest gap between the best and second-best squared distance over the rows."""
    d = ((X[:, None, :].astype(float) - W[None, :, :].astype(float)) ** 2).sum(-1)
    if W.shape[0] < 2:
        return np.inf
    part = np.partition(d, 1, axis=1)
    return float((part[:, 1] - part[:, 0]).min())


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits

    return load_digits().data
