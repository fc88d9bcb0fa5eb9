"""Batch k-means (neighbourhood "none") skips the passes after its fixed point, bit for bit.

``CpuEngine.settled``: once a batch "none" pass leaves the codebook unchanged, every later
pass would too, so ``fit`` stops searching. Every test compares a fit with the skip
against the same fit with ``settled`` switched off (every pass run), and checks that the
skip happened at all, so that it can fail both ways.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from somvq import KSOM
from somvq.engines.cpu import CpuEngine


def _fit(params, X, monkeypatch, skip):
    calls = {"passes": 0}
    run_pass = CpuEngine.run_pass

    def counting(self, *args, **kwargs):
        calls["passes"] += 1
        return run_pass(self, *args, **kwargs)

    seen = []
    with monkeypatch.context() as m:
        m.setattr(CpuEngine, "run_pass", counting)
        if not skip:
            m.setattr(CpuEngine, "settled", lambda self, plan, before, state: False)
        som = KSOM(**params).fit(X, callback=lambda e, n, mse, w: seen.append((e, n, mse, w.copy())))
    return som, calls["passes"], seen


def _assert_same(a, b):
    som_a, _, seen_a = a
    som_b, _, seen_b = b
    np.testing.assert_array_equal(som_a.codebook_, som_b.codebook_)
    assert som_a.codebook_.dtype == som_b.codebook_.dtype
    np.testing.assert_array_equal(som_a.labels_, som_b.labels_)
    assert som_a.n_steps_ == som_b.n_steps_
    assert som_a.n_iter_ == som_b.n_iter_
    assert som_a.fitted_state().rng_state == som_b.fitted_state().rng_state
    assert len(seen_a) == len(seen_b)
    for (e1, n1, m1, w1), (e2, n2, m2, w2) in zip(seen_a, seen_b, strict=True):
        assert (e1, n1, m1) == (e2, n2, m2)
        np.testing.assert_array_equal(w1, w2)


@pytest.fixture(scope="module")
def digits():
    return load_digits().data


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_skips_passes_after_fixed_point(digits, dtype, seed, monkeypatch):
    X = (digits + 1000.0).astype(dtype)  # an offset, as users' data has
    params = dict(grid=(3, 4), neighbourhood="none", n_epochs=60, random_state=seed)
    skipped = _fit(params, X, monkeypatch, skip=True)
    full = _fit(params, X, monkeypatch, skip=False)
    _assert_same(skipped, full)
    assert full[1] == 60
    assert skipped[1] < 60  # the fixed point is reached well before 60 passes here


def test_continued_fit_after_fixed_point_is_unchanged(digits, monkeypatch):
    params = dict(grid=(2, 3), neighbourhood="none", n_epochs=40, random_state=3)
    skipped = _fit(params, digits, monkeypatch, skip=True)
    full = _fit(params, digits, monkeypatch, skip=False)
    assert skipped[1] < 40
    # a later partial_fit continues from the same state (step counter, codebook)
    a = skipped[0].partial_fit(digits[:500])
    b = full[0].partial_fit(digits[:500])
    np.testing.assert_array_equal(a.codebook_, b.codebook_)
    assert a.n_steps_ == b.n_steps_


def test_missing_values_kmeans_skips_too(digits, monkeypatch):
    rng = np.random.default_rng(0)
    X = digits.copy()
    X[rng.random(X.shape) < 0.1] = np.nan
    params = dict(grid=(3, 3), neighbourhood="none", n_epochs=50, random_state=0, missing="ignore")
    skipped = _fit(params, X, monkeypatch, skip=True)
    full = _fit(params, X, monkeypatch, skip=False)
    _assert_same(skipped, full)
    assert skipped[1] < 50


def test_pruned_search_kmeans_skips_too(monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 4)) + 10.0 * rng.integers(0, 6, size=(3000, 1))
    params = dict(grid=(3, 3), neighbourhood="none", n_epochs=40, random_state=0, bmu_search="pruned")
    skipped = _fit(params, X, monkeypatch, skip=True)
    full = _fit(params, X, monkeypatch, skip=False)
    _assert_same(skipped, full)
    assert skipped[1] < 40


@pytest.mark.parametrize(
    "params",
    [
        dict(neighbourhood="gaussian"),  # the radius changes the operator every epoch
        dict(neighbourhood="none", algorithm="minibatch", batch_size=256),
        dict(neighbourhood="none", algorithm="online"),
    ],
)
def test_other_fits_run_every_pass(digits, params, monkeypatch):
    som, passes, seen = _fit(
        dict(grid=(2, 3), n_epochs=12, random_state=0, **params), digits, monkeypatch, True
    )
    assert passes == 12
    assert len(seen) == 12


def test_settled_needs_an_unchanged_codebook(digits):
    som = KSOM(grid=(2, 2), neighbourhood="none", n_epochs=1, random_state=0).fit(digits)
    engine = CpuEngine(som)
    state = som.fitted_state()
    plan = type("Plan", (), {"algorithm": "batch", "neighbourhood": type("N", (), {"kind": "none"})()})()
    assert engine.settled(plan, state.codebook.copy(), state)
    moved = state.codebook.copy()
    moved[0, 0] = np.nextafter(moved[0, 0], np.inf)  # one ulp is a change
    assert not engine.settled(plan, moved, state)
    plan.neighbourhood.kind = "gaussian"
    assert not engine.settled(plan, state.codebook.copy(), state)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_labels_at_the_fixed_point_are_the_last_passes_winners(digits, dtype, monkeypatch):
    """At a fixed point the final codebook is the one the last pass searched: ``labels_``
    are that pass's winners, with no further search, and equal a fresh search's."""
    import somvq.algorithms as algorithms

    X = (digits + 1000.0).astype(dtype)
    params = dict(grid=(3, 4), neighbourhood="none", n_epochs=60, random_state=0, bmu_search="full")
    assigned = []
    assign = algorithms.assign
    monkeypatch.setattr(algorithms, "assign", lambda *a, **k: assigned.append(1) or assign(*a, **k))
    som = KSOM(**params).fit(X)
    assert not assigned  # the labels came from the last pass
    monkeypatch.setattr(algorithms, "assign", assign)
    np.testing.assert_array_equal(som.labels_, assign(X, som.codebook_)[0])
    np.testing.assert_array_equal(som.labels_, som.predict(X))
    # a fit stopped before its fixed point searches its final codebook again
    monkeypatch.setattr(algorithms, "assign", lambda *a, **k: assigned.append(1) or assign(*a, **k))
    early = KSOM(**{**params, "n_epochs": 2}).fit(X)
    assert assigned
    monkeypatch.setattr(algorithms, "assign", assign)
    np.testing.assert_array_equal(early.labels_, assign(X, early.codebook_)[0])
