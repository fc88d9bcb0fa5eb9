"""KSOM(tol, n_iter_no_change): early stopping that waits for the neighbourhood schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from somvq import KSOM
from somvq.parameters import LATE_PHASE


def first_settled_epoch(radius_at, n_epochs, steps):
    """Naive: the first epoch e whose end step t = e * steps has |r(t) - r(T)| <= 0.1 |r(0) - r(T)|."""
    end = radius_at(n_epochs * steps)
    span = abs(radius_at(0) - end)
    for e in range(1, n_epochs + 1):
        if abs(radius_at(e * steps) - end) <= LATE_PHASE * span:
            return e
    raise AssertionError


@pytest.mark.parametrize("schedule", ["linear", "exponential"])
@pytest.mark.parametrize("patience", [1, 2, 3])
def test_never_stops_before_the_schedule_allows(digits, schedule, patience):
    X = digits[:300]
    n_epochs, T = 12, 11.0  # batch: one step per epoch; horizon = last step

    def radius_at(t):
        p = min(t / T, 1.0)
        return 8.0 + (1.0 - 8.0) * p if schedule == "linear" else 8.0 * (1.0 / 8.0) ** p

    settled = first_settled_epoch(radius_at, n_epochs, 1)
    # tol so large that every epoch counts as "no change": the stop is set by the schedule alone
    som = KSOM(
        grid=(6, 6),
        radius=8.0,
        radius_final=1.0,
        radius_schedule=schedule,
        n_epochs=n_epochs,
        tol=10.0,
        n_iter_no_change=patience,
        random_state=0,
    ).fit(X)
    expected = min(max(settled, 2) + patience - 1, n_epochs)
    assert som.n_iter_ == expected
    assert expected > 1 and radius_at(som.n_iter_) <= 1.0 + LATE_PHASE * 7.0 + 1e-12


@pytest.mark.parametrize("algorithm", ["minibatch", "online"])
def test_inverse_time_and_hard_kernels_wait_for_the_late_phase(digits, algorithm):
    X = digits[:256]
    steps = {"minibatch": math.ceil(256 / 64), "online": 256}[algorithm]
    n_epochs, shrink = 8, 0.01
    for kind in ("exponential", "hard"):

        def value(t, kind=kind):
            return (10.0 if kind == "exponential" else 1.0) / (1.0 + shrink * t)

        settled = first_settled_epoch(value, n_epochs, steps)
        som = KSOM(
            grid=(4, 4),
            algorithm=algorithm,
            neighbourhood=kind,
            shrink=shrink,
            batch_size=64,
            n_epochs=n_epochs,
            tol=10.0,
            n_iter_no_change=1,
            random_state=0,
        ).fit(X)
        assert som.n_iter_ == min(max(settled, 2), n_epochs), kind


def test_no_tol_runs_every_epoch_and_partial_fit_ignores_it(digits):
    assert KSOM(grid=(4, 4), n_epochs=5, random_state=0).fit(digits).n_iter_ == 5
    som = KSOM(grid=(4, 4), tol=10.0, n_iter_no_change=1)
    for _ in range(4):
        som.partial_fit(digits[:100])
    assert som.n_iter_ == 4


@pytest.mark.parametrize("name", ["digits", "wine"])
@pytest.mark.parametrize("algorithm", ["batch", "minibatch", "online"])
def test_early_stopped_fit_is_not_much_worse(name, algorithm):
    from sklearn.datasets import load_digits, load_wine
    from sklearn.preprocessing import StandardScaler

    X = load_digits().data if name == "digits" else StandardScaler().fit_transform(load_wine().data)
    params = dict(grid=(8, 8), algorithm=algorithm, n_epochs=20, random_state=0)
    full = KSOM(**params).fit(X)
    early = KSOM(**params, tol=1e-3).fit(X)
    assert early.n_iter_ <= full.n_iter_
    assert early.quantization_error(X) <= 1.1 * full.quantization_error(X)


def test_bad_values():
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match="tol"):
        KSOM(tol=-1.0).fit(X)
    with pytest.raises(ValueError, match="n_iter_no_change"):
        KSOM(tol=0.1, n_iter_no_change=0).fit(X)


# ------------------------------------------------------------------ decay="auto" (opt-in)
@pytest.mark.parametrize("name", ["digits", "wine"])
def test_auto_decay_follows_the_rule_and_lands_near_batch(name):
    from sklearn.datasets import load_digits, load_wine
    from sklearn.preprocessing import StandardScaler

    from somvq.parameters import resolve_decay

    X = load_digits().data if name == "digits" else StandardScaler().fit_transform(load_wine().data)
    steps = 10 * math.ceil(len(X) / 256)
    assert resolve_decay("auto", steps - 1) == max(0.0, 1.0 - 20.0 / steps)
    assert resolve_decay(0.99, steps - 1) == 0.99
    batch = KSOM(random_state=0).fit(X).quantization_error(X)
    auto = KSOM(algorithm="minibatch", decay="auto", random_state=0).fit(X)
    same = KSOM(algorithm="minibatch", decay=max(0.0, 1.0 - 20.0 / steps), random_state=0).fit(X)
    np.testing.assert_array_equal(auto.codebook_, same.codebook_)
    assert auto.quantization_error(X) <= 1.1 * batch
    with pytest.raises(ValueError, match="decay"):
        KSOM(algorithm="minibatch", decay="fast").fit(X)


@pytest.mark.parametrize("algorithm", ["batch", "online"])
def test_an_error_of_exactly_zero_counts_as_no_change(algorithm):
    """m_prev - m < tol * m_prev is 0 < 0 when both are 0: fits that reached a zero error
    ran every epoch (found by an adversarial pass)."""
    X = np.repeat(np.eye(3), 10, axis=0)
    som = KSOM(grid=(1, 3), neighbourhood="none", init=np.eye(3), algorithm=algorithm, n_epochs=50, tol=1e-3)
    som.set_params(n_iter_no_change=2).fit(X)
    assert som.n_iter_ == 3
