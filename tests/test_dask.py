"""somvq.integrations.dask: DaskKSOM equals the in-memory KSOM, on a real LocalCluster.

The cluster (2 worker processes, 1 thread each) is started once for the module and always
closed. Reference results come from the in-memory estimator fed the same data in the same
order: ``KSOM.fit(X)`` for batch, ``KSOM.partial_fit`` over the chunks for mini-batch.
"""

import contextlib
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import somvq  # noqa: E402
from somvq import KSOM  # noqa: E402
from somvq.integrations.dask import DaskKSOM  # noqa: E402
from tests.test_sklearn_compat import EXPECTED_FAILED_CHECKS  # noqa: E402

N_SAMPLES, N_FEATURES, CHUNK = 1200, 5, 150
GRID = (4, 5)


@pytest.fixture(scope="module")
def client():
    # A task whose worker dies is retried on another worker up to allowed-failures times;
    # the scheduler reads the value when it starts.
    with dask.config.set({"distributed.scheduler.allowed-failures": 4}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # No dashboard, and the scheduler's HTTP routes on a free port, not 8787.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        )
    try:
        with distributed.Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def make_data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(6, N_FEATURES))
    X = centres[rng.integers(0, 6, N_SAMPLES)] + rng.normal(size=(N_SAMPLES, N_FEATURES))
    return X.astype(dtype)


def initial_codebook(dtype, seed=1):
    return np.random.default_rng(seed).normal(size=(GRID[0] * GRID[1], N_FEATURES)).astype(dtype)


def tolerance(dtype):
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-9}


def assert_same_state(dask_som, memory_som, dtype):
    assert dask_som.codebook_.dtype == memory_som.codebook_.dtype == dtype
    np.testing.assert_allclose(dask_som.codebook_, memory_som.codebook_, **tolerance(dtype))
    np.testing.assert_allclose(dask_som.ema_count_, memory_som.ema_count_, **tolerance(dtype))
    np.testing.assert_allclose(dask_som.ema_sum_, memory_som.ema_sum_, **tolerance(dtype))
    assert dask_som.n_steps_ == memory_som.n_steps_
    assert dask_som.n_iter_ == memory_som.n_iter_
    assert dask_som._horizon == memory_som._horizon


# ---------------------------------------------------------------------- batch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("init", ["random", "sample", "pca", "array"])
def test_batch_fit_equals_in_memory_fit(client, dtype, init):
    X = make_data(dtype)
    init_value = initial_codebook(dtype) if init == "array" else init
    params = dict(grid=GRID, algorithm="batch", n_epochs=4, init=init_value, random_state=3)
    dask_som = DaskKSOM(**params).fit(da.from_array(X, chunks=(CHUNK, N_FEATURES)))
    memory_som = KSOM(**params).fit(X)
    assert_same_state(dask_som, memory_som, dtype)
    assert isinstance(dask_som.labels_, da.Array)
    np.testing.assert_array_equal(dask_som.labels_.compute(), memory_som.labels_)


def test_batch_fit_with_uneven_and_column_chunks(client):
    """Chunking changes nothing but the order of a float64 sum."""
    X = make_data(np.float64)
    Xd = da.from_array(X, chunks=((500, 0, 77, 623), (2, 3)))
    params = dict(grid=GRID, neighbourhood="hard", n_epochs=3, init=initial_codebook(np.float64))
    dask_som = DaskKSOM(**params).fit(Xd)
    assert_same_state(dask_som, KSOM(**params).fit(X), np.float64)


# ---------------------------------------------------------------------- mini-batch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shuffle_chunks", [False, True])
def test_minibatch_fit_equals_partial_fit_over_the_same_chunks(client, dtype, shuffle_chunks):
    """Chunks are the mini-batches: row order, or a seeded permutation of chunks per epoch."""
    X = make_data(dtype)
    n_chunks, n_epochs, seed = N_SAMPLES // CHUNK, 3, 7
    params = dict(
        grid=GRID, algorithm="minibatch", n_epochs=n_epochs, init=initial_codebook(dtype), random_state=seed
    )
    Xd = da.from_array(X, chunks=(CHUNK, N_FEATURES))
    dask_som = DaskKSOM(**params, shuffle_chunks=shuffle_chunks).fit(Xd)

    memory_som = KSOM(**params, batch_size=CHUNK)
    rng = np.random.default_rng(seed)  # an array init draws nothing: chunk orders come first
    blocks = X.reshape(n_chunks, CHUNK, N_FEATURES)
    for _ in range(n_epochs):
        order = rng.permutation(n_chunks) if shuffle_chunks else np.arange(n_chunks)
        memory_som.partial_fit(np.concatenate(blocks[order]))
    assert dask_som.n_steps_ == n_epochs * n_chunks
    assert_same_state(dask_som, memory_som, dtype)


@pytest.mark.parametrize("update", ["all", "written"])
def test_minibatch_partial_fit_visits_chunks_in_row_order(client, update):
    """Uneven and empty chunks: one update per non-empty chunk, continuing the step counter."""
    X = make_data(np.float64)
    sizes = (400, 0, 250, 550)
    params = dict(
        grid=GRID,
        algorithm="minibatch",
        neighbourhood="hard",
        update=update,
        init=initial_codebook(np.float64),
        batch_size=1000,
        decay=0.99,  # a fixed decay: decay="auto" follows the horizon, which differs here
    )
    dask_som = DaskKSOM(**params)
    memory_som = KSOM(**params)
    Xd = da.from_array(X, chunks=(sizes, N_FEATURES))
    for _ in range(2):
        dask_som.partial_fit(Xd)
        start = 0
        for size in sizes:
            if size:
                memory_som.partial_fit(X[start : start + size])
            start += size
    assert dask_som.n_steps_ == memory_som.n_steps_ == 6
    # The horizon differs (one call of 3 chunks vs calls of one chunk), which "hard" and a
    # fixed decay ignore.
    np.testing.assert_allclose(dask_som.codebook_, memory_som.codebook_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dask_som.ema_sum_, memory_som.ema_sum_, rtol=1e-9, atol=1e-9)


def test_batch_partial_fit_equals_in_memory(client):
    X = make_data(np.float32)
    params = dict(grid=GRID, init=initial_codebook(np.float32), n_epochs=5)
    dask_som, memory_som = DaskKSOM(**params), KSOM(**params)
    for _ in range(2):
        dask_som.partial_fit(da.from_array(X, chunks=(CHUNK, N_FEATURES)))
        memory_som.partial_fit(X)
    assert_same_state(dask_som, memory_som, np.float32)


# ---------------------------------------------------------------------- inference
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inference_on_dask_arrays(client, dtype):
    X = make_data(dtype)
    Xd = da.from_array(X, chunks=(CHUNK, N_FEATURES))
    dask_som = DaskKSOM(grid=GRID, n_epochs=2, random_state=0).fit(Xd)
    memory_som = dask_som.to_ksom()

    labels = dask_som.predict(Xd)
    distances = dask_som.transform(Xd)
    coordinates = dask_som.bmu_coordinates(Xd)
    for result in (labels, distances, coordinates):
        assert isinstance(result, da.Array)
        assert result.chunks[0] == Xd.chunks[0]
    assert labels.dtype == np.int64 and distances.dtype == dtype
    np.testing.assert_array_equal(labels.compute(), memory_som.predict(X))
    np.testing.assert_allclose(distances.compute(), memory_som.transform(X), **tolerance(dtype))
    np.testing.assert_array_equal(coordinates.compute(), memory_som.bmu_coordinates(X))
    assert dask_som.quantization_error(Xd) == pytest.approx(memory_som.quantization_error(X))
    assert dask_som.quantization_error(Xd, squared=True) == pytest.approx(
        memory_som.quantization_error(X, squared=True)
    )
    assert dask_som.topographic_error(Xd) == pytest.approx(memory_som.topographic_error(X))
    assert dask_som.score(Xd) == pytest.approx(memory_som.score(X))
    # NumPy input: exactly KSOM's answers.
    np.testing.assert_array_equal(dask_som.predict(X), memory_som.predict(X))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"missing": "ignore"},
        {"layers": [[0, 1], [2, 3, 4]], "layer_weights": [2.0, 0.5]},
    ],
    ids=["dense", "missing", "layered"],
)
def test_inference_with_an_empty_row_chunk(params):
    """A row chunk of 0 rows (a boolean filter's, or uneven chunks) gets an empty block:
    the same answers as the in-memory model on the whole array, lazily."""
    X = make_data(np.float64)
    if params.get("missing"):
        X[::7, 1] = np.nan
    Xd = da.from_array(X, chunks=((500, 0, 77, 623), (N_FEATURES,)))
    with dask.config.set(scheduler="synchronous"):
        som = DaskKSOM(grid=GRID, n_epochs=2, random_state=0, **params).fit(Xd)
        memory_som = som.to_ksom()
        np.testing.assert_array_equal(som.labels_.compute(), memory_som.predict(X))
        np.testing.assert_array_equal(som.predict(Xd).compute(), memory_som.predict(X))
        np.testing.assert_array_equal(som.bmu_coordinates(Xd).compute(), memory_som.bmu_coordinates(X))
        distances = som.transform(Xd)
        assert distances.compute().dtype == distances.dtype
        np.testing.assert_allclose(distances.compute(), memory_som.transform(X), rtol=1e-12)


def test_impute_is_lazy_on_dask_arrays():
    """It used to compute the whole array on the client and return NumPy."""
    X = make_data(np.float64)
    X[::7, 1] = np.nan
    Xd = da.from_array(X, chunks=((500, 0, 77, 623), (N_FEATURES,)))
    with dask.config.set(scheduler="synchronous"):
        som = DaskKSOM(grid=GRID, n_epochs=2, random_state=0, missing="ignore").fit(Xd)
        filled = som.impute(Xd)
        assert isinstance(filled, da.Array) and filled.chunks == Xd.chunks
        np.testing.assert_array_equal(filled.compute(), som.to_ksom().impute(X))
        dense = DaskKSOM(grid=GRID, n_epochs=1, random_state=0).fit(
            da.from_array(make_data(np.float64), chunks=CHUNK)
        )
        with pytest.raises(ValueError, match="impute needs a map built with missing='ignore'"):
            dense.impute(Xd)


def test_local_scheduler_without_a_cluster():
    """No Client needed: the same result on dask's synchronous scheduler."""
    X = make_data(np.float64)
    params = dict(grid=GRID, n_epochs=3, init=initial_codebook(np.float64))
    with dask.config.set(scheduler="synchronous"):
        dask_som = DaskKSOM(**params).fit(da.from_array(X, chunks=(CHUNK, N_FEATURES)))
    assert_same_state(dask_som, KSOM(**params).fit(X), np.float64)


# ---------------------------------------------------------------------- API
def test_numpy_input_is_plain_ksom():
    X = make_data(np.float64)
    for algorithm in ("batch", "minibatch", "online"):
        params = dict(grid=GRID, algorithm=algorithm, n_epochs=2, batch_size=64, random_state=0)
        dask_som, memory_som = DaskKSOM(**params).fit(X), KSOM(**params).fit(X)
        np.testing.assert_array_equal(dask_som.codebook_, memory_som.codebook_)
        assert isinstance(dask_som.labels_, np.ndarray)


@parametrize_with_checks(
    [DaskKSOM(grid=(3, 3), n_epochs=3, random_state=0)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_on_numpy_input(estimator, check):
    check(estimator)


def test_parameters_are_ksoms_plus_shuffle_chunks():
    from sklearn.base import clone

    expected = set(KSOM().get_params()) | {"shuffle_chunks"}
    assert set(DaskKSOM().get_params()) == expected
    som = clone(DaskKSOM(grid=(3, 3), shuffle_chunks=False))
    assert som.get_params()["shuffle_chunks"] is False
    with pytest.raises(ValueError, match="shuffle_chunks"):
        DaskKSOM(shuffle_chunks="yes").fit(da.zeros((10, 2), chunks=5))


def test_save_load_through_to_ksom(client, tmp_path):
    X = make_data(np.float32)
    Xd = da.from_array(X, chunks=(CHUNK, N_FEATURES))
    dask_som = DaskKSOM(grid=GRID, algorithm="minibatch", n_epochs=2, random_state=0).fit(Xd)
    path = somvq.save(dask_som.to_ksom(), tmp_path / "map.somvq.npz")
    loaded = somvq.load(path)
    assert type(loaded) is KSOM
    np.testing.assert_array_equal(loaded.codebook_, dask_som.codebook_)
    np.testing.assert_array_equal(loaded.predict(X), dask_som.predict(Xd).compute())

    # Continue training on the cluster from the saved state.
    resumed = DaskKSOM.from_ksom(loaded, shuffle_chunks=False).partial_fit(Xd)
    dask_som.partial_fit(Xd)
    np.testing.assert_array_equal(resumed.codebook_, dask_som.codebook_)
    assert resumed.n_steps_ == dask_som.n_steps_


def test_bad_input_on_dask_arrays(client):
    X = make_data(np.float64)
    with pytest.raises(ValueError, match="algorithm='online' is not available on dask arrays"):
        DaskKSOM(grid=GRID, algorithm="online").fit(da.from_array(X, chunks=CHUNK))
    with pytest.raises(ValueError, match="2D"):
        DaskKSOM(grid=GRID).fit(da.ones(10, chunks=5))
    with pytest.raises(ValueError, match="at least 1 sample"):
        DaskKSOM(grid=GRID).fit(da.ones((0, 3), chunks=5))
    bad = X.copy()
    bad[700, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity \(row chunk 4\)"):
        DaskKSOM(grid=GRID, init="normal").fit(da.from_array(bad, chunks=(CHUNK, N_FEATURES)))
    som = DaskKSOM(grid=GRID, n_epochs=1, random_state=0).fit(da.from_array(X, chunks=CHUNK))
    with pytest.raises(ValueError, match="X has 4 features, but DaskKSOM is expecting 5"):
        som.predict(da.ones((10, 4), chunks=5))


def test_interrupted_fit_leaves_the_estimator_as_it_was(client):
    X = da.from_array(make_data(np.float64), chunks=(CHUNK, N_FEATURES))

    def stop(epoch, n_epochs, mse, codebook):
        raise KeyboardInterrupt

    som = DaskKSOM(grid=GRID, n_epochs=3)
    with pytest.raises(KeyboardInterrupt):
        som.fit(X, callback=stop)
    assert not hasattr(som, "codebook_")


# ---------------------------------------------------------------------- fault tolerance
def _die_once(block, trigger):
    """Pass the block through; the first task to find ``trigger`` kills its worker process."""
    try:
        os.remove(trigger)
    except FileNotFoundError:
        return block
    os._exit(1)  # no cleanup, no reply: as a crashed or preempted machine


@pytest.mark.parametrize("algorithm", ["batch", "minibatch"])
def test_worker_killed_mid_fit_still_gives_the_right_result(client, tmp_path, algorithm):
    """A worker process dies while it runs a step's task; dask retries it elsewhere."""
    X = make_data(np.float64)
    trigger = tmp_path / "kill-a-worker"
    lazy = da.from_array(X, chunks=(CHUNK, N_FEATURES)).map_blocks(_die_once, str(trigger), dtype=X.dtype)
    params = dict(
        grid=GRID, algorithm=algorithm, n_epochs=3, init=initial_codebook(np.float64), shuffle_chunks=False
    )
    workers_before = set(client.scheduler_info()["workers"])

    def arm_after_first_epoch(epoch, n_epochs, mse, codebook):
        if epoch == 1:
            trigger.touch()  # the next step's first chunk task kills its worker

    dask_som = DaskKSOM(**params).fit(lazy, callback=arm_after_first_epoch)

    assert not trigger.exists(), "no worker was killed"
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the dead worker
    assert set(client.scheduler_info()["workers"]) != workers_before
    params.pop("shuffle_chunks")
    if algorithm == "batch":
        reference = KSOM(**params).fit(X)
    else:
        reference = KSOM(**params, batch_size=CHUNK)
        for _ in range(params["n_epochs"]):
            reference.partial_fit(X)
    np.testing.assert_allclose(dask_som.codebook_, reference.codebook_, rtol=1e-9, atol=1e-9)
    assert dask_som.n_steps_ == reference.n_steps_


def test_cluster_is_the_one_started_here(client):
    info = client.scheduler_info()
    assert len(info["workers"]) == 2
    assert all(w["nthreads"] == 1 for w in info["workers"].values())
    assert client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures) == 4


def test_documented_examples_run(tmp_path, monkeypatch):
    """docs/distributed.md: its ```python blocks run (```py blocks need a real cluster)."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "distributed.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.MULTILINE | re.DOTALL)
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs:distributed.md"}
    with dask.config.set(scheduler="threads"), contextlib.redirect_stdout(io.StringIO()):
        for number, source in enumerate(blocks, start=1):
            exec(compile(source, f"docs/distributed.md [python block {number}]", "exec"), namespace)


# ---------------------------------------------------------------------- missing values (issue 13)
def _with_holes(X, seed=5):
    """About 15 % NaN, every chunk holding some, every row keeping >= 3 of its 5 features."""
    rng = np.random.default_rng(seed)
    Xn = X.copy()
    holes = rng.random(X.shape) < 0.15
    holes[holes.sum(axis=1) > 2] = False
    Xn[holes] = np.nan
    return Xn


@pytest.mark.parametrize("init", ["random", "pca", "array"])
def test_missing_ignore_batch_fit_equals_in_memory(client, init):
    X = _with_holes(make_data(np.float64))
    init_value = initial_codebook(np.float64) if init == "array" else init
    params = dict(grid=GRID, n_epochs=3, init=init_value, random_state=3, missing="ignore")
    dask_som = DaskKSOM(**params).fit(da.from_array(X, chunks=(CHUNK, N_FEATURES)))
    memory_som = KSOM(**params).fit(X)
    np.testing.assert_allclose(dask_som.codebook_, memory_som.codebook_, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(dask_som.labels_.compute(), memory_som.labels_)
    np.testing.assert_array_equal(
        dask_som.predict(da.from_array(X, chunks=(CHUNK, N_FEATURES))).compute(), memory_som.predict(X)
    )


def test_missing_ignore_minibatch_equals_partial_fit_over_the_same_chunks(client):
    X = _with_holes(make_data(np.float64))
    n_epochs = 2
    params = dict(
        grid=GRID,
        algorithm="minibatch",
        n_epochs=n_epochs,
        init=initial_codebook(np.float64),
        random_state=7,
        missing="ignore",
    )
    dask_som = DaskKSOM(**params, shuffle_chunks=False).fit(da.from_array(X, chunks=(CHUNK, N_FEATURES)))
    memory_som = KSOM(**params, batch_size=CHUNK)
    for _ in range(n_epochs):
        memory_som.partial_fit(X)
    assert dask_som.ema_count_.shape == (GRID[0] * GRID[1], N_FEATURES)
    assert_same_state(dask_som, memory_som, np.float64)


def test_missing_ignore_bad_chunks_name_global_rows(client):
    X = make_data(np.float64)
    X[[CHUNK + 2, CHUNK + 9]] = np.nan
    with pytest.raises(
        ValueError,
        match=rf"2 row\(s\) \(row chunk 1\) with no observed feature.*rows {CHUNK + 2}, {CHUNK + 9}",
    ):
        DaskKSOM(grid=GRID, missing="ignore", n_epochs=1).fit(da.from_array(X, chunks=(CHUNK, N_FEATURES)))
    X = make_data(np.float64)
    X[3 * CHUNK + 1, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        DaskKSOM(grid=GRID, missing="ignore", n_epochs=1, init="normal").fit(
            da.from_array(X, chunks=(CHUNK, N_FEATURES))
        )


@pytest.mark.parametrize("algorithm", ["batch", "minibatch"])
def test_missing_ignore_without_nan_takes_the_dense_path(client, algorithm):
    """Data without NaN: one scan per call, then the dense chunk statistics, bit for bit as
    missing="error" (before: every chunk took the masked path and ema_count_ became (K, D))."""
    X = da.from_array(make_data(np.float64), chunks=(CHUNK, N_FEATURES))
    params = dict(grid=GRID, algorithm=algorithm, n_epochs=2, random_state=3, shuffle_chunks=False)
    dense = DaskKSOM(**params).fit(X)
    ignore = DaskKSOM(missing="ignore", **params).fit(X)
    assert ignore.ema_count_.shape == (GRID[0] * GRID[1],)
    for name in ("codebook_", "ema_count_", "ema_sum_"):
        np.testing.assert_array_equal(getattr(ignore, name), getattr(dense, name))
    np.testing.assert_array_equal(ignore.labels_.compute(), dense.labels_.compute())


# ------------------------------------------------------------ found by an adversarial pass
@pytest.mark.parametrize("init", ["random", "pca"])
def test_non_finite_data_is_named_by_its_chunk_whatever_the_init(init):
    """The init's statistics (random, pca) read the data before any chunk task checked it:
    one NaN gave "no observed value in column(s) [2] (all NaN)" (random) or numpy's
    "Eigenvalues did not converge" (pca)."""
    X = np.random.default_rng(0).normal(size=(2000, 5))
    X[1203, 2] = np.nan
    with pytest.raises(ValueError, match=r"contains NaN or infinity \(row chunk 2\)"):
        DaskKSOM(grid=(3, 3), n_epochs=1, init=init, random_state=0).fit(da.from_array(X, chunks=500))
    X[1203, 2] = np.inf
    with pytest.raises(ValueError, match=r"infinity in 1 row\(s\) \(row chunk 2\) \(rows 1203\)"):
        DaskKSOM(grid=(3, 3), n_epochs=1, init=init, missing="ignore", random_state=0).fit(
            da.from_array(X, chunks=500)
        )


def test_an_empty_chunk_among_five_and_grid_auto_with_the_default_init():
    """dask's own std of 5+ row chunks with an empty one is NaN: the default init failed
    ("all NaN"); grid="auto" failed for every init but pca ("setting an array element with
    a sequence")."""
    X = np.random.default_rng(0).normal(size=(2000, 5))
    chunked = da.from_array(X, chunks=500)
    Xd = da.from_array(X, chunks=((500, 500, 500, 0, 500), 5))
    params = dict(grid=(4, 5), n_epochs=2, random_state=0)
    np.testing.assert_allclose(
        DaskKSOM(**params).fit(Xd).codebook_, KSOM(**params).fit(X).codebook_, rtol=1e-9, atol=1e-9
    )
    for init in ("random", "sample", "pca"):
        som = DaskKSOM(grid="auto", n_epochs=1, init=init, random_state=0).fit(chunked)
        assert som.grid_.shape == KSOM(grid="auto", n_epochs=1, random_state=0).fit(X).grid_.shape


def test_range_checks_and_save(tmp_path):
    """float64 data whose squared distances overflow trained silently (KSOM refuses it);
    a float32 map's partial_fit said "NaN or infinity" for a row of 1e300; save wrote a
    DaskKSOM that load refused ("unknown parameter(s) ['shuffle_chunks']")."""
    X = np.random.default_rng(0).normal(size=(400, 5))
    with pytest.raises(ValueError, match=r"\(row chunk 0\) holds values up to .*e\+160"):
        DaskKSOM(grid=(3, 3), n_epochs=1).fit(da.from_array(X * 1e160, chunks=100))
    som = DaskKSOM(grid=(3, 3), n_epochs=1, random_state=0).fit(
        da.from_array(X.astype(np.float32), chunks=100)
    )
    big = X.copy()
    big[350, 1] = 1e300
    with pytest.raises(ValueError, match=r"X holds values up to 1e\+300 .* beyond the map's float32"):
        som.partial_fit(da.from_array(big, chunks=100))
    with pytest.raises(TypeError, match=r"save a DaskKSOM's to_ksom\(\)"):
        somvq.save(som, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
    back = DaskKSOM.from_ksom(somvq.load(somvq.save(som.to_ksom(), tmp_path / "m.npz")))
    np.testing.assert_array_equal(back.codebook_, som.codebook_)


@pytest.mark.parametrize(
    "row_chunks, chunk", [((32, 32, 32), 1), ((0, 32, 32, 32), 2)], ids=["even", "empty-first"]
)
def test_inference_errors_name_global_rows_and_the_chunk(row_chunks, chunk):
    """Every inference task checked its block on its own: an all-NaN row 40 was "rows 8"
    (its row in the chunk, no chunk named), where NumPy input says "rows 40" and the dask
    fit "(row chunk 1) ... rows 40"."""
    X = np.random.default_rng(5).normal(size=(96, N_FEATURES))
    with dask.config.set(scheduler="synchronous"):
        som = DaskKSOM(grid=(3, 3), missing="ignore", n_epochs=2, random_state=0).fit(
            da.from_array(X, chunks=(32, N_FEATURES))
        )
        X[40] = np.nan
        Xd = da.from_array(X, chunks=(row_chunks, (N_FEATURES,)))
        empty = rf"1 row\(s\) \(row chunk {chunk}\) with no observed feature \(all NaN\): rows 40;"
        for method in ("predict", "transform", "bmu_coordinates", "impute"):
            with pytest.raises(ValueError, match=empty):
                getattr(som, method)(Xd).compute()
        with pytest.raises(ValueError, match=empty):
            som.quantization_error(Xd)
        with pytest.raises(ValueError, match=empty):
            som.topographic_error(Xd)
        X[40], X[70, 1] = 0.0, np.inf
        with pytest.raises(
            ValueError, match=rf"infinity in 1 row\(s\) \(row chunk {chunk + 1}\) \(rows 70\)"
        ):
            som.predict(da.from_array(X, chunks=(row_chunks, (N_FEATURES,)))).compute()


def test_layered_inference_errors_name_global_rows_and_the_chunk():
    """A row with no observed value in a layer: the chunk and its row in the whole array;
    a layer that predict_layers leaves out may be all NaN."""
    X = np.random.default_rng(5).normal(size=(96, N_FEATURES))
    params = dict(grid=(3, 3), missing="ignore", layers=[[0, 1], [2, 3, 4]], layer_weights=[2.0, 0.5])
    with dask.config.set(scheduler="synchronous"):
        som = DaskKSOM(**params, n_epochs=2, random_state=0).fit(da.from_array(X, chunks=(32, N_FEATURES)))
        X[40, :2] = np.nan
        X[5, 3] = np.nan
        Xd = da.from_array(X, chunks=(32, N_FEATURES))
        for method in ("predict", "bmu_coordinates", "impute"):
            with pytest.raises(
                ValueError, match=r"1 row\(s\) \(row chunk 1\) with no observed value in layer 0.*rows 40\."
            ):
                getattr(som, method)(Xd).compute()
        som.set_params(predict_layers=[1])
        np.testing.assert_array_equal(som.predict(Xd).compute(), som.to_ksom().predict(X))


def test_pca_init_of_float32_rows_at_an_offset_is_the_in_memory_one():
    """The PCA surrogate rows were rounded to float32: at 1e4 that put a relative 3e-4 into
    the covariance and turned the axes (labels_ differed on 53 of 600 rows). Big-endian
    float32 trained a float64 map (found by an adversarial pass)."""
    rng = np.random.default_rng(0)
    Xn = (rng.normal(size=(600, 5)) + 1e4).astype(np.float32)
    params = dict(grid=(3, 4), init="pca", random_state=3, n_epochs=2)
    memory = somvq.KSOM(**params).fit(Xn)
    lazy = DaskKSOM(**params).fit(da.from_array(Xn, chunks=(600, 5)))
    np.testing.assert_array_equal(lazy.labels_.compute(), memory.labels_)
    np.testing.assert_allclose(lazy.codebook_, memory.codebook_, rtol=1e-6)
    swapped = DaskKSOM(**params).fit(da.from_array(Xn.astype(">f4"), chunks=(200, 5)))
    assert swapped.codebook_.dtype == np.float32
