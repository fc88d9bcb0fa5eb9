"""Layers and missing values compose (issue 14): kohonen's per-layer rule, against tests/naive.py.

Also the tanimoto layers of mini-batch and online KSOM (and dask). The references
(naive.layered_masked_*) are loops over rows, units and columns, sharing no code with
somvq; grids, schedules and sample orders are those of tests/test_end_to_end.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from somvq import KSOM
from somvq.layers import layered_predict_masked, resolve_layers

from . import naive
from .test_end_to_end import GRIDS, KINDS, epoch_orders, smoothing

LAYERS = [[0, 1, 2], [3, 4, 5, 6]]
MIXED = ["sqeuclidean", "tanimoto"]


def mixed(seed, n=40, fraction=0.2, *, binary_second=True):
    """3 numeric columns and 4 bits, ``fraction`` NaN; every row keeps one value per layer,
    row 0 exactly one in each."""
    rng = np.random.default_rng(seed)
    second = (rng.random((n, 4)) < 0.4).astype(float) if binary_second else rng.normal(size=(n, 4))
    X = np.hstack([rng.normal(size=(n, 3)), second])
    Xn = X.copy()
    Xn[rng.random(X.shape) < fraction] = np.nan
    for cols in LAYERS:
        empty = np.isnan(Xn[:, cols]).all(axis=1)
        Xn[empty, cols[0]] = X[empty, cols[0]]
    Xn[0, [1, 2, 4, 5, 6]] = np.nan
    Xn[0, [0, 3]] = X[0, [0, 3]]
    return X, Xn


# ------------------------------------------------------------------ the distance and BMU
@pytest.mark.parametrize("kinds", [("sqeuclidean", "sqeuclidean"), tuple(MIXED), ("tanimoto", "tanimoto")])
@pytest.mark.parametrize("weights", [(1.0, 1.0), (0.3, 2.5), (0.0, 1.0)])
@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_masked_layered_predict_equals_the_naive_reference(kinds, weights, offset):
    rng = np.random.default_rng(3)
    _, X = mixed(4, binary_second=kinds[1] == "tanimoto")
    if kinds[0] == "tanimoto":
        X[:, :3] = np.where(np.isnan(X[:, :3]), np.nan, X[:, :3] > 0)
    elif offset:
        X[:, :3] += offset
    W = rng.random((9, 7)) * 1.2 - 0.1
    W[:, :3] += offset if kinds[0] == "sqeuclidean" else 0.0
    spec = resolve_layers(LAYERS, list(weights), list(kinds), np.nan_to_num(X))
    bmu, dist = layered_predict_masked(X, W, spec)
    ref = np.array([[naive.layered_masked_distance(x, c, LAYERS, weights, kinds) for c in W] for x in X])
    srt = np.sort(ref, axis=1)
    clear = srt[:, 1] - srt[:, 0] > 1e-9 * max(1.0, offset**2)
    assert clear.sum() >= len(X) // 4
    np.testing.assert_array_equal(bmu[clear], ref.argmin(1)[clear])
    # near-tied rows (tanimoto distances are discrete): the chosen unit is a nearest one
    np.testing.assert_allclose(ref[np.arange(len(X)), bmu], srt[:, 0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dist, ref[np.arange(len(X)), bmu], rtol=1e-9, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), w=st.sampled_from([(1.0, 1.0), (0.25, 3.0), (2.0, 0.5)]))
def test_without_nan_the_masked_layered_search_is_the_dense_one(seed, w):
    """Rows without NaN: the grouped masked search gives the dense layered BMUs and distances."""
    from somvq.layers import column_scale, layered_assign, layered_masked_assign, search_codebook

    X, _ = mixed(seed)
    W = np.random.default_rng(seed + 1).random((12, 7))
    spec = resolve_layers(LAYERS, list(w), MIXED, X)
    scale = column_scale(spec)
    dense_bmu, dense_dist = layered_assign(X, W, spec)
    bmu, dist = layered_masked_assign(
        X * scale, search_codebook(W, spec, scale), [np.arange(3), np.arange(3, 7)]
    )
    np.testing.assert_array_equal(bmu, dense_bmu)
    np.testing.assert_allclose(dist, dense_dist, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ whole fits
@pytest.mark.parametrize("algorithm", ["batch", "minibatch", "online"])
@pytest.mark.parametrize("kinds", [None, MIXED])
def test_without_nan_missing_ignore_is_the_dense_layered_fit_bit_for_bit(algorithm, kinds):
    X, _ = mixed(5)
    params = dict(grid=(3, 3), n_epochs=2, algorithm=algorithm, batch_size=16, random_state=1)
    params.update(layers=LAYERS, layer_weights=[0.5, 2.0], layer_distances=kinds)
    dense = KSOM(**params).fit(X)
    masked = KSOM(**params, missing="ignore").fit(X)
    np.testing.assert_array_equal(dense.codebook_, masked.codebook_)
    np.testing.assert_array_equal(dense.labels_, masked.labels_)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), algorithm=st.sampled_from(["batch", "minibatch", "online"]))
def test_one_layer_of_weight_one_with_nan_is_todays_missing_ignore_fit_bit_for_bit(seed, algorithm):
    _, X = mixed(seed, binary_second=False)
    params = dict(grid=(3, 3), n_epochs=2, algorithm=algorithm, batch_size=16, random_state=seed)
    params.update(missing="ignore", max_missing=1.0)
    plain = KSOM(**params).fit(X)
    layered = KSOM(**params, layers=[list(range(7))], layer_weights=[1.0]).fit(X)
    np.testing.assert_array_equal(plain.codebook_, layered.codebook_)
    np.testing.assert_array_equal(plain.labels_, layered.labels_)
    np.testing.assert_array_equal(plain.predict(X), layered.predict(X))


WEIGHTS = (0.5, 2.0)


def _reference_params(kinds):
    return dict(layers=LAYERS, layer_weights=list(WEIGHTS), layer_distances=list(kinds))


@pytest.mark.parametrize("kinds", [("sqeuclidean", "sqeuclidean"), tuple(MIXED)])
@pytest.mark.parametrize("kind", ["hard", "gaussian"])
@pytest.mark.parametrize("shape, topology, periodic", GRIDS[:2])
def test_masked_layered_batch_fit_equals_naive(shape, topology, periodic, kind, kinds):
    _, X = mixed(2, n=37, binary_second=kinds[1] == "tanimoto")
    W0 = np.random.default_rng(9).random((math.prod(shape), 7))
    n_epochs = 3
    horizon = max(n_epochs - 1, 1)
    distances = naive.grid_distances(shape, topology, periodic)
    W = W0.copy()
    for t, order in enumerate(epoch_orders(7, len(X), n_epochs)):
        H = smoothing(kind, distances, t, horizon)
        W = naive.layered_masked_batch_step(X[order], W, H, LAYERS, WEIGHTS, kinds)
    som = KSOM(
        grid=shape,
        topology=topology,
        periodic=periodic,
        n_epochs=n_epochs,
        init=W0,
        random_state=7,
        missing="ignore",
        max_missing=1.0,
        **_reference_params(kinds),
        **KINDS[kind],
    ).fit(X)
    np.testing.assert_allclose(som.codebook_, W, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(
        som.labels_, naive.layered_masked_bmus(X, som.codebook_, LAYERS, WEIGHTS, kinds)[0]
    )
    np.testing.assert_array_equal(som.predict(X), som.labels_)


# (dense sqeuclidean layers are today's online path: tests/test_layers.py)
@pytest.mark.parametrize(
    "kinds, with_nan",
    [(("sqeuclidean", "sqeuclidean"), True), (tuple(MIXED), True), (tuple(MIXED), False)],
)
def test_layered_online_fit_equals_naive(kinds, with_nan):
    shape, kind = (3, 4), "gaussian"
    dense, X = mixed(6, n=25, binary_second=kinds[1] == "tanimoto")
    if not with_nan:
        X = dense
    W0 = np.random.default_rng(10).random((math.prod(shape), 7))
    n_epochs, lr0, lr1 = 2, 0.5, 0.05
    horizon = max(n_epochs * len(X) - 1, 1)
    distances = naive.grid_distances(shape)
    order = np.concatenate(epoch_orders(11, len(X), n_epochs))
    expected = naive.layered_masked_online_pass(
        X,
        W0,
        order,
        lambda t, k: smoothing(kind, distances, t, horizon)[k],
        lambda t, k: lr0 * (lr1 / lr0) ** min(t / horizon, 1.0),
        LAYERS,
        WEIGHTS,
        kinds,
    )
    som = KSOM(
        grid=shape,
        algorithm="online",
        learning_rate=lr0,
        learning_rate_final=lr1,
        n_epochs=n_epochs,
        init=W0,
        random_state=11,
        missing="ignore",
        max_missing=1.0,
        **_reference_params(kinds),
        **KINDS[kind],
    ).fit(X)
    np.testing.assert_allclose(som.codebook_, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["hard", "gaussian"])
def test_masked_layered_minibatch_fit_equals_naive(kind):
    shape = (3, 4)
    _, X = mixed(8, n=37)
    W0 = np.random.default_rng(12).random((math.prod(shape), 7))
    n_epochs, batch_size, decay, eps = 2, 8, 0.9, 1e-3
    horizon = max(n_epochs * math.ceil(len(X) / batch_size) - 1, 1)
    distances = naive.grid_distances(shape)
    K, D = W0.shape
    N, m, W, t = np.full((K, D), 1.0), W0.copy(), W0.copy(), 0
    for order in epoch_orders(3, len(X), n_epochs):
        for start in range(0, len(X), batch_size):
            H = smoothing(kind, distances, t, horizon)
            Xb = X[order[start : start + batch_size]]
            n, s = naive.layered_masked_statistics(Xb, W, H, LAYERS, WEIGHTS, MIXED)
            N = decay * N + (1 - decay) * n
            for j in range(D):
                total = N[:, j].sum()
                N[:, j] = (N[:, j] + eps) / (total + K * eps) * total
            m = decay * m + (1 - decay) * s
            W = m / N
            t += 1
    som = KSOM(
        grid=shape,
        algorithm="minibatch",
        batch_size=batch_size,
        decay=decay,
        eps=eps,
        n_epochs=n_epochs,
        init=W0,
        random_state=3,
        missing="ignore",
        max_missing=1.0,
        **_reference_params(MIXED),
        **KINDS[kind],
    ).fit(X)
    np.testing.assert_allclose(som.ema_count_, N, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(som.codebook_, W, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["hard", "gaussian"])
def test_tanimoto_minibatch_fit_equals_naive(kind):
    """Dense tanimoto layers on mini-batch KSOM: the search thresholds the codebook every batch."""
    shape = (3, 4)
    X, _ = mixed(13, n=37)
    W0 = np.random.default_rng(14).random((math.prod(shape), 7))
    n_epochs, batch_size, decay, eps = 2, 8, 0.9, 1e-3
    horizon = max(n_epochs * math.ceil(len(X) / batch_size) - 1, 1)
    distances = naive.grid_distances(shape)
    K = W0.shape[0]
    N, m, W, t = np.full(K, 1.0), W0.copy(), W0.copy(), 0
    for order in epoch_orders(3, len(X), n_epochs):
        for start in range(0, len(X), batch_size):
            H = smoothing(kind, distances, t, horizon)
            N, m, W = naive.layered_ema_step(
                X[order[start : start + batch_size]], W, N, m, H, decay, eps, LAYERS, WEIGHTS, MIXED
            )
            t += 1
    som = KSOM(
        grid=shape,
        algorithm="minibatch",
        batch_size=batch_size,
        decay=decay,
        eps=eps,
        n_epochs=n_epochs,
        init=W0,
        random_state=3,
        **_reference_params(MIXED),
        **KINDS[kind],
    ).fit(X)
    np.testing.assert_allclose(som.ema_count_, N, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(som.codebook_, W, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(
        som.labels_, naive.layered_masked_bmus(X, som.codebook_, LAYERS, WEIGHTS, MIXED)[0]
    )


# ------------------------------------------------------------------ predict_layers and NaN
def test_a_map_of_x_and_y_is_queried_with_x_alone_and_y_missing():
    X, _ = mixed(15, n=80)
    som = KSOM(grid=(4, 4), n_epochs=5, random_state=0, **_reference_params(MIXED), missing="ignore").fit(X)
    som.set_params(predict_layers=[0])
    query = X.copy()
    query[:, 3:] = np.nan
    expected = naive.layered_masked_bmus(X, som.codebook_, LAYERS, (WEIGHTS[0], 0.0), MIXED)[0]
    np.testing.assert_array_equal(som.predict(query), expected)
    np.testing.assert_array_equal(som.predict(query), som.predict(X))  # the Y values do not count


def test_a_row_with_a_layer_entirely_missing_is_a_clear_error():
    X, Xn = mixed(16)
    Xn[[3, 7], 3:] = np.nan
    with pytest.raises(ValueError, match=r"2 row\(s\) with no observed value in layer 1 .*rows 3, 7"):
        KSOM(grid=(2, 2), **_reference_params(MIXED), missing="ignore", max_missing=1.0).fit(Xn)
    som = KSOM(grid=(2, 2), n_epochs=1, **_reference_params(MIXED), missing="ignore").fit(X)
    with pytest.raises(ValueError, match="no observed value in layer 1"):
        som.predict(Xn)
    # impute names the rows of X (it searches only the rows with NaN: it said "rows 0, 1")
    with pytest.raises(ValueError, match=r"no observed value in layer 1 .*rows 3, 7"):
        som.impute(Xn)
    som.set_params(predict_layers=[0])  # kohonen's whatmap: only the layers used are checked
    assert som.predict(Xn).shape == (len(Xn),)


def test_max_missing_applies_to_each_layer():
    X, _ = mixed(17)
    Xn = X.copy()
    Xn[5, [3, 4, 5]] = np.nan  # 3 of the 4 bits: 75% of layer 1, 3/7 = 43% of the row
    with pytest.raises(
        ValueError, match=r"missing more than max_missing=0.5 of the 4 columns of layer 1: rows 5"
    ):
        KSOM(grid=(2, 2), **_reference_params(MIXED), missing="ignore").fit(Xn)
    KSOM(grid=(2, 2), n_epochs=1, **_reference_params(MIXED), missing="ignore", max_missing=0.75).fit(Xn)


def test_weight_zero_columns_with_nan_hold_the_observed_means_of_their_units_rows():
    X, Xn = mixed(18, n=60, binary_second=False)
    som = KSOM(
        grid=(2, 2),
        n_epochs=3,
        neighbourhood="none",
        random_state=0,
        layers=LAYERS,
        layer_weights=[1.0, 0.0],
        missing="ignore",
        max_missing=1.0,
    ).fit(Xn)
    for k in range(4):
        rows = Xn[som.labels_ == k][:, 3:]
        np.testing.assert_allclose(som.codebook_[k, 3:], np.nanmean(rows, axis=0), rtol=1e-10)


def test_balanced_weights_with_nan_use_the_masked_layer_distances():
    _, X = mixed(19, n=50)
    spec = resolve_layers(LAYERS, "balanced", MIXED, X)
    centre = np.nanmean(X, axis=0)
    for index in range(len(LAYERS)):
        ws = [1.0 if i == index else 0.0 for i in range(2)]
        m = np.mean([naive.layered_masked_distance(x, centre, LAYERS, ws, MIXED) for x in X])
        assert spec.weights[index] == pytest.approx(1.0 / m, rel=1e-12)


# ------------------------------------------------------------------ engines
@pytest.mark.parametrize("algorithm", ["batch", "minibatch"])
def test_dask_trains_layers_with_missing_values_like_the_cpu(algorithm):
    pytest.importorskip("dask.array")
    import dask.array as da

    from integrations.dask import DaskKSOM

    _, X = mixed(20, n=60)
    params = dict(grid=(3, 3), algorithm=algorithm, batch_size=20, random_state=0, **_reference_params(MIXED))
    params.update(missing="ignore", max_missing=1.0)
    cpu = KSOM(**params)
    dsk = DaskKSOM(**params, shuffle_chunks=False)
    for _ in range(3):  # partial_fit: both take the rows in order, 20 at a time
        cpu.partial_fit(X)
        dsk.partial_fit(da.from_array(X, chunks=20))
    np.testing.assert_allclose(dsk.codebook_, cpu.codebook_, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(dsk.labels_), cpu.labels_)
    np.testing.assert_array_equal(dsk.predict(X), cpu.predict(X))
    bad = X.copy()
    bad[[25, 47], 3:] = np.nan
    # whichever chunk task fails first names its global row
    message = (
        r"\(row chunk [12]\) with no observed value in layer 1 \(columns \[3, 4, 5, 6\]\): rows (25|47)\."
    )
    with pytest.raises(ValueError, match=message):
        DaskKSOM(**params).fit(da.from_array(bad, chunks=20))


@pytest.mark.parametrize("algorithm", ["batch", "minibatch"])
def test_dask_trains_tanimoto_layers_like_the_cpu(algorithm):
    pytest.importorskip("dask.array")
    import dask.array as da

    from integrations.dask import DaskKSOM

    X, _ = mixed(21, n=60)
    params = dict(grid=(3, 3), algorithm=algorithm, batch_size=20, random_state=0, **_reference_params(MIXED))
    cpu = KSOM(**params)
    dsk = DaskKSOM(**params, shuffle_chunks=False)
    for _ in range(3):  # partial_fit: both take the rows in order, 20 at a time
        cpu.partial_fit(X)
        dsk.partial_fit(da.from_array(X, chunks=20))
    np.testing.assert_allclose(dsk.codebook_, cpu.codebook_, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(dsk.labels_), cpu.labels_)
    np.testing.assert_array_equal(dsk.predict(X), cpu.predict(X))


def test_impute_on_a_layered_map_fills_from_the_bmu_of_predict():
    _, X = mixed(22, n=60)
    params = dict(grid=(3, 3), n_epochs=3, random_state=0, missing="ignore", max_missing=1.0)
    som = KSOM(**params, **_reference_params(MIXED)).fit(X)
    filled = som.impute(X)
    bmu = som.predict(X)
    nan = np.isnan(X)
    np.testing.assert_array_equal(filled[nan], som.codebook_[bmu][nan])
    np.testing.assert_array_equal(filled[~nan], X[~nan])


def test_model_file_keeps_a_layered_map_with_missing_values(tmp_path):
    from somvq import load, save

    _, X = mixed(23, n=60)
    params = dict(grid=(3, 3), n_epochs=2, random_state=0, missing="ignore", max_missing=1.0)
    som = KSOM(**params, layers=LAYERS, layer_distances=MIXED, layer_weights="balanced").fit(X)
    back = load(save(som, tmp_path / "m.npz"))
    np.testing.assert_array_equal(back.layer_weights_, som.layer_weights_)
    np.testing.assert_array_equal(back.predict(X), som.predict(X))
    np.testing.assert_array_equal(back.impute(X), som.impute(X))
