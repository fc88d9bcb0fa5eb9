"""The engine layer: one training loop, the engine chosen in one place, one state value."""

import inspect

import numpy as np
import pytest

from somvq import KSOM, load, save
from somvq.engines import engine_for
from somvq.engines.cpu import CpuEngine
from somvq.parameters import DEFAULTS, horizon, training_plan
from somvq.state import FITTED_STATE, FittedState


def _data(n=120, d=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def test_constructor_defaults_are_the_parameters_module_defaults():
    signature = inspect.signature(KSOM.__init__).parameters
    assert {name: p.default for name, p in signature.items() if name != "self"} == DEFAULTS


def test_numpy_input_gets_the_cpu_engine():
    assert isinstance(engine_for(KSOM(), _data()), CpuEngine)


def test_fitted_state_round_trips_through_set_fitted_state():
    som = KSOM(grid=(3, 4), algorithm="minibatch", batch_size=16, n_epochs=2, random_state=0).fit(_data())
    state = som.fitted_state()
    assert state.n_steps == som.n_steps_ == 16 and state.horizon == som._horizon == 15.0
    state.codebook[0, 0] += 1.0  # a copy: the estimator is unchanged
    assert som.codebook_[0, 0] != state.codebook[0, 0]
    other = KSOM(grid=(3, 4), algorithm="minibatch", batch_size=16).set_fitted_state(state)
    for name in FITTED_STATE:
        if name not in ("codebook_", "grid_", "_rng_state"):
            np.testing.assert_array_equal(getattr(other, name), getattr(som, name))
    # Continuing from the copied state equals continuing the original.
    som.codebook_ = state.codebook.copy()
    X = _data(seed=1)
    np.testing.assert_array_equal(som.partial_fit(X).codebook_, other.partial_fit(X).codebook_)


def test_set_fitted_state_removes_what_the_new_state_lacks():
    som = KSOM(grid=(2, 2), n_epochs=1, random_state=0).fit(_data())
    assert hasattr(som, "labels_")
    state = som.fitted_state()
    state.labels = None
    som.set_fitted_state(state)
    assert not hasattr(som, "labels_")
    with pytest.raises(TypeError, match="FittedState"):
        som.set_fitted_state({"codebook_": som.codebook_})


def test_load_sets_the_state_of_the_saved_estimator(tmp_path):
    som = KSOM(grid=(3, 3), algorithm="online", n_epochs=2, random_state=0).fit(_data())
    loaded = load(save(som, tmp_path / "m.somvq.npz"))
    for name in (*FITTED_STATE, "labels_"):
        a, b = getattr(loaded, name), getattr(som, name)
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, name


def test_training_plan_resolves_defaults_once():
    som = KSOM(grid=(4, 6), neighbourhood="gaussian", algorithm="online", n_epochs=3)
    grid = som.check_parameters()
    plan = training_plan(som, grid, horizon(3, 50))
    assert plan.horizon == 149.0
    assert plan.neighbourhood.radius.kind == "exponential" and plan.neighbourhood.radius.start == 3.0
    assert plan.neighbourhood.radius.end == 0.5 and plan.learning_rate.kind == "exponential"
    paper = training_plan(KSOM(neighbourhood="exponential", algorithm="batch"), grid, 1.0)
    assert paper.neighbourhood.radius.kind == "inverse_time" and paper.neighbourhood.radius.start == 10.0
    assert paper.learning_rate is None


def test_the_state_the_engines_update_is_the_one_published():
    seen = []
    som = KSOM(grid=(2, 3), algorithm="batch", n_epochs=3, random_state=0)
    som.fit(_data(), callback=lambda epoch, n, mse, codebook: seen.append(codebook.copy()))
    np.testing.assert_array_equal(seen[-1], som.codebook_)
    assert isinstance(som.fitted_state(), FittedState)


def test_dask_estimator_defines_no_training_loop():
    pytest.importorskip("dask")
    from somvq.integrations.dask import DaskKSOM

    for name in ("fit", "partial_fit", "_one_pass", "_dask_pass"):
        assert name not in DaskKSOM.__dict__
    assert (
        inspect.signature(DaskKSOM).parameters.keys() - {"shuffle_chunks"}
        == inspect.signature(KSOM).parameters.keys()
    )


def test_dask_arrays_with_the_cuda_backend_are_a_clear_error():
    """Before: DaskKSOM(backend="cuda").fit(dask array) trained on the CPU without a word."""
    da = pytest.importorskip("dask.array")
    from somvq.integrations.dask import DaskKSOM

    X = da.from_array(_data(), chunks=(40, 3))
    som = DaskKSOM(grid=(2, 2), backend="cuda")
    for method in (som.fit, som.partial_fit):
        with pytest.raises(ValueError, match="backend='cuda' cannot train on a dask array"):
            method(X)
    assert not hasattr(som, "codebook_")


def test_dask_partial_fit_labels_are_the_call_rows():
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    from somvq.integrations.dask import DaskKSOM

    X = _data()
    with dask.config.set(scheduler="synchronous"):
        som = DaskKSOM(grid=(2, 2), algorithm="batch", random_state=0).partial_fit(
            da.from_array(X, chunks=(40, 3))
        )
        ref = KSOM(grid=(2, 2), algorithm="batch", random_state=0).partial_fit(X)
        np.testing.assert_array_equal(som.labels_.compute(), ref.labels_)


@pytest.mark.parametrize("update", ["all", "written"])
def test_ema_update_is_one_definition_for_numpy_and_torch(update):
    """The torch plugin's update is algorithms.ema_update on tensors: the same numbers."""
    torch = pytest.importorskip("torch")
    from somvq.algorithms import ema_update

    rng = np.random.default_rng(3)
    k, d = 7, 3
    counts = rng.integers(0, 3, k).astype(np.float64)
    counts[:2] = 0.0
    sums = rng.normal(size=(k, d)) * counts[:, None]
    args = (
        np.zeros(k) if update == "written" else rng.uniform(0.5, 2, k),
        rng.normal(size=(k, d)),
        rng.normal(size=(k, d)),
        counts,
        sums,
    )
    numpy_result = ema_update(*args, decay=0.9, eps=1e-3, update=update)
    torch_result = ema_update(*map(torch.as_tensor, args), decay=0.9, eps=1e-3, update=update)
    for a, b in zip(numpy_result, torch_result):
        np.testing.assert_allclose(b.numpy(), a, rtol=1e-15, atol=0)
    if update == "written":  # units without inputs keep N, m and w, also with N = 0
        np.testing.assert_array_equal(numpy_result[2][:2], args[2][:2])


@pytest.mark.parametrize("update", ["all", "written"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_ema_update_equals_the_definition(update, dtype):
    """The Numba fast path (in place) against algorithms.ema_update (new arrays)."""
    from somvq._kernels.cpu_minibatch import ema_update_inplace
    from somvq.algorithms import ema_update

    rng = np.random.default_rng(4)
    k, d = 9, 4
    counts = rng.integers(0, 3, k).astype(np.float64)
    counts[[0, 5]] = 0.0
    sums = rng.normal(size=(k, d)) * counts[:, None]
    ema_count = np.zeros(k) if update == "written" else rng.uniform(0.5, 2.0, k)
    ema_sum, codebook = rng.normal(size=(k, d)), rng.normal(size=(k, d)).astype(dtype)
    expected = ema_update(ema_count, ema_sum, codebook, counts, sums, decay=0.8, eps=1e-4, update=update)
    ema_update_inplace(ema_count, ema_sum, codebook, counts, sums, 0.8, 1e-4, update == "all")
    tol = 1e-6 if dtype == np.float32 else 1e-14
    for got, want in zip((ema_count, ema_sum, codebook), expected):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_dask_fit_memory_counts_no_rows_on_the_client():
    """The memory estimate of a fit counts the rows one process holds: none for dask."""
    da = pytest.importorskip("dask.array")
    from somvq.integrations.dask import DaskKSOM
    from somvq.integrations.dask.engine import DaskEngine

    X = da.zeros((10**12, 4), chunks=(10**10, 4))  # 100 chunks: a graph of 10^6 would take minutes
    engine = DaskEngine(DaskKSOM(grid=(2, 2)))
    assert engine.memory_shape(engine.prepare(X, reset=True)) == (0, 4)
    assert CpuEngine(KSOM()).memory_shape(_data()) == (120, 3)


@pytest.mark.parametrize("algorithm", ["batch", "online", "minibatch"])
def test_fit_epochs_draw_an_order_only_where_the_pass_reads_it(algorithm):
    """Batch KSOM reads every row at once: its epochs draw no permutation (the generator
    is where initialisation left it, whatever the epoch count); online and mini-batch draw
    a fresh one every epoch."""
    X = _data()
    engine = engine_for(KSOM(algorithm=algorithm), X)
    rng = np.random.default_rng(0)
    order = engine.epoch_order(rng, X)
    assert sorted(order.tolist()) == list(range(len(X)))
    assert (order.tolist() == list(range(len(X)))) == (algorithm == "batch")
    states = [
        KSOM(grid=(3, 3), algorithm=algorithm, batch_size=16, n_epochs=n, random_state=0).fit(X)._rng_state
        for n in (1, 3)
    ]
    assert (states[0] == states[1]) == (algorithm == "batch")
