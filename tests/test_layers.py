"""Multi-layer maps (issue 14): the layered distance, its fast path, weights and validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from somvq import KSOM, layers, load, save
from somvq.layers import check_layers, layered_assign, layered_distances, resolve_layers

from . import naive


def _mixed(rng, n=40, d_num=3, d_bin=4):
    return np.hstack([rng.normal(size=(n, d_num)), (rng.random((n, d_bin)) < 0.4).astype(float)])


LAYERS = [[0, 1, 2], [3, 4, 5, 6]]


@pytest.mark.parametrize(
    "kinds", [("sqeuclidean", "sqeuclidean"), ("sqeuclidean", "tanimoto"), ("tanimoto", "tanimoto")]
)
@pytest.mark.parametrize("weights", [(1.0, 1.0), (0.3, 2.5), (0.0, 1.0)])
def test_layered_distances_and_fast_path_equal_the_naive_reference(kinds, weights):
    rng = np.random.default_rng(1)
    X = _mixed(rng)
    if kinds[0] == "tanimoto":
        X[:, :3] = X[:, :3] > 0
    codebook = rng.random((9, 7)) * 1.2 - 0.1
    spec = resolve_layers(LAYERS, list(weights), list(kinds), X)
    D = layered_distances(X, codebook, spec)
    ref = np.array([[naive.layered_distance(x, c, LAYERS, weights, kinds) for c in codebook] for x in X])
    np.testing.assert_allclose(D, ref, rtol=1e-12, atol=1e-12)
    bmu, dist = layered_assign(X, codebook, spec)
    ref_bmu, ref_dist = naive.layered_bmus(X, codebook, LAYERS, weights, kinds)
    # exact BMUs except at near-ties of the reference
    srt = np.sort(ref, axis=1)
    clear = srt[:, 1] - srt[:, 0] > 1e-9
    np.testing.assert_array_equal(bmu[clear], ref_bmu[clear])
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-9, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), algorithm=st.sampled_from(["batch", "minibatch", "online"]))
def test_one_layer_of_weight_one_is_todays_ksom_bit_for_bit(seed, algorithm):
    X = np.random.default_rng(seed).normal(size=(50, 4))
    params = dict(grid=(3, 3), n_epochs=2, algorithm=algorithm, batch_size=16, random_state=seed)
    plain = KSOM(**params).fit(X)
    layered = KSOM(**params, layers=[[0, 1, 2, 3]], layer_weights=[1.0]).fit(X)
    np.testing.assert_array_equal(plain.codebook_, layered.codebook_)
    np.testing.assert_array_equal(plain.labels_, layered.labels_)
    np.testing.assert_array_equal(plain.predict(X), layered.predict(X))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), c=st.sampled_from([0.25, 2.0, 4.0, 16.0]))
def test_scaling_all_weights_by_c_changes_no_bmu(seed, c):
    # powers of two: the per-column scale sqrt(c w) changes the floats exactly, so even
    # the training is the same; the BMUs at predict are compared on a fixed codebook too.
    rng = np.random.default_rng(seed)
    X = _mixed(rng)
    w = [0.5, 2.0]
    kinds = ["sqeuclidean", "tanimoto"]
    a = KSOM(
        grid=(3, 3), n_epochs=2, random_state=seed, layers=LAYERS, layer_weights=w, layer_distances=kinds
    ).fit(X)
    b = KSOM(
        grid=(3, 3),
        n_epochs=2,
        random_state=seed,
        layers=LAYERS,
        layer_weights=[c * v for v in w],
        layer_distances=kinds,
    ).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.codebook_, b.codebook_, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_a_layer_of_weight_zero_does_not_influence_bmus_at_predict(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 5))
    som = KSOM(
        grid=(3, 3), n_epochs=2, random_state=seed, layers=[[0, 1], [2, 3, 4]], layer_weights=[1.0, 0.0]
    ).fit(X)
    Z = X.copy()
    Z[:, 2:] = rng.normal(size=(60, 3)) * 100  # the weight-0 layer changed wildly
    np.testing.assert_array_equal(som.predict(X), som.predict(Z))
    # ... and equals the plain nearest unit on the first layer's columns
    ref = np.argmin(((X[:, None, :2] - som.codebook_[None, :, :2]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(som.predict(X), ref)
    # predict_layers=[0] on a map trained with both: the same rule (kohonen's whatmap)
    both = KSOM(
        grid=(3, 3), n_epochs=2, random_state=seed, layers=[[0, 1], [2, 3, 4]], predict_layers=[0]
    ).fit(X)
    ref = np.argmin(((X[:, None, :2] - both.codebook_[None, :, :2]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(both.predict(Z), ref)


def test_weight_zero_columns_hold_the_means_of_their_units_rows():
    X = np.random.default_rng(0).normal(size=(200, 3))
    som = KSOM(
        grid=(4,),
        neighbourhood="none",
        n_epochs=3,
        random_state=0,
        layers=[[0], [1, 2]],
        layer_weights=[1.0, 0.0],
    ).fit(X)
    for k in range(4):
        rows = X[som.labels_ == k]
        if len(rows):
            np.testing.assert_allclose(som.codebook_[k, 1:], rows[:, 1:].mean(axis=0), rtol=1e-12)


def test_tanimoto_training_uses_the_thresholded_codebook():
    # batch KSOM without neighbourhood = Lloyd under the layered distance: check one step
    rng = np.random.default_rng(3)
    X = _mixed(rng, n=80)
    init = np.vstack([X[:6]]) + 0.0
    init[:, 3:] = rng.random((6, 4))
    som = KSOM(
        grid=(6,),
        neighbourhood="none",
        n_epochs=1,
        init=init,
        layers=LAYERS,
        layer_distances=["sqeuclidean", "tanimoto"],
        random_state=0,
    ).fit(X)
    ref_bmu, _ = naive.layered_bmus(X, init, LAYERS, [1.0, 1.0], ["sqeuclidean", "tanimoto"])
    for k in range(6):
        rows = X[ref_bmu == k]
        expected = rows.mean(axis=0) if len(rows) else init[k]
        np.testing.assert_allclose(som.codebook_[k], expected, rtol=1e-12, atol=1e-12)


def test_balanced_weights_are_one_over_the_mean_distance_to_the_layer_mean():
    rng = np.random.default_rng(0)
    X = _mixed(rng, n=100)
    X[:, :3] *= 10
    som = KSOM(
        grid=(3, 3),
        n_epochs=1,
        random_state=0,
        layers=LAYERS,
        layer_weights="balanced",
        layer_distances=["sqeuclidean", "tanimoto"],
    ).fit(X)
    m0 = np.mean([np.sum((x[:3] - X[:, :3].mean(0)) ** 2) for x in X])
    b = X[:, 3:].mean(0) > 0.5
    m1 = np.mean([np.mean(x[3:] != b) for x in X])
    np.testing.assert_allclose(som.layer_weights_, [1 / m0, 1 / m1], rtol=1e-12)


def test_model_file_keeps_layers_and_fitted_weights(tmp_path):
    X = _mixed(np.random.default_rng(0), n=60)
    som = KSOM(
        grid=(3, 3),
        n_epochs=2,
        random_state=0,
        layers=LAYERS,
        layer_weights="balanced",
        layer_distances=["sqeuclidean", "tanimoto"],
        predict_layers=[1],
    ).fit(X)
    back = load(save(som, tmp_path / "m.npz"))
    assert back.get_params()["layers"] == LAYERS
    assert back.layer_distances == ["sqeuclidean", "tanimoto"] and back.predict_layers == [1]
    np.testing.assert_array_equal(back.layer_weights_, som.layer_weights_)
    np.testing.assert_array_equal(back.predict(X), som.predict(X))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(layers=[[0, 1], [1, 2, 3, 4, 5, 6]]), r"column 1 is in layers\[0\] and layers\[1\]"),
        (dict(layers=[[0, 1], [2, 3]]), r"column\(s\) \[4, 5, 6\] are in no layer"),
        (dict(layers=[[0, 1], [2, 3, 4, 5, 6, 9]]), "column 9, outside 0..6"),
        (dict(layers=LAYERS, layer_weights=[1.0]), r"has 1 values for 2 layers"),
        (
            dict(layers=LAYERS, layer_weights=[1.0, -2.0]),
            r"layer_weights\[1\]=-2.0 must be a finite number >= 0",
        ),
        (dict(layers=LAYERS, layer_weights=[0.0, 0.0]), "at least one layer needs a positive weight"),
        (
            dict(layers=LAYERS, layer_distances=["sqeuclidean", "cosine"]),
            r"layer_distances\[1\]='cosine' is not one of",
        ),
        (
            dict(layers=LAYERS, layer_distances=["tanimoto", "tanimoto"]),
            "tanimoto distance, which needs binary",
        ),
        (dict(layer_weights=[1.0]), "need layers"),
        (dict(layers=LAYERS, predict_layers=[2]), r"predict_layers=\[2\] holds 2"),
    ],
)
def test_bad_layer_parameters_are_clear_errors(kwargs, match):
    X = _mixed(np.random.default_rng(0))
    with pytest.raises(ValueError, match=match):
        KSOM(grid=(2, 2), n_epochs=1, **kwargs).fit(X).predict(X)


def test_non_binary_tanimoto_value_is_named():
    X = _mixed(np.random.default_rng(0))
    X[5, 4] = 0.5
    with pytest.raises(ValueError, match=r"layer 1 uses the tanimoto distance.*holds 0.5"):
        KSOM(grid=(2, 2), layers=LAYERS, layer_distances=["sqeuclidean", "tanimoto"]).fit(X)


def test_check_layers_rejects_strings_and_empty_layers():
    with pytest.raises(ValueError, match="non-empty list"):
        check_layers("abc", None, None, 3)
    with pytest.raises(ValueError, match=r"layers\[1\]=\[\] must be a non-empty list"):
        check_layers([[0, 1, 2], []], None, None, 3)
    # True read as column 1 ("column 1 is in layers[0] and layers[0]" before)
    with pytest.raises(
        ValueError, match=r"layers\[0\]=\[True, 1\] must be a non-empty list of column indices"
    ):
        check_layers([[True, 1], [2]], None, None, 3)
    with pytest.raises(ValueError, match=r"layers\[0\] lists column 1 twice"):
        check_layers([[1, 1], [0, 2]], None, None, 3)


def test_dask_engine_trains_a_layered_map_like_the_cpu():
    da = pytest.importorskip("dask.array")
    from integrations.dask import DaskKSOM

    X = np.random.default_rng(0).normal(size=(120, 4))
    params = dict(grid=(3, 3), n_epochs=3, random_state=0, layers=[[0, 1], [2, 3]], layer_weights=[4.0, 0.25])
    cpu = KSOM(**params).fit(X)
    dsk = DaskKSOM(**params, shuffle_chunks=False).fit(da.from_array(X, chunks=120))
    np.testing.assert_allclose(dsk.codebook_, cpu.codebook_, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(dsk.predict(X), cpu.predict(X))


def test_partial_fit_continues_with_the_fitted_weights_and_refuses_changed_layers():
    X = np.random.default_rng(0).normal(size=(80, 4))
    som = KSOM(
        grid=(3, 3), n_epochs=2, random_state=0, layers=[[0, 1], [2, 3]], layer_weights="balanced"
    ).fit(X)
    weights = som.layer_weights_.copy()
    som.partial_fit(X[:20] * 10)  # other data: the balanced weights are not re-estimated
    np.testing.assert_array_equal(som.layer_weights_, weights)
    plain = KSOM(grid=(3, 3), n_epochs=1, random_state=0).fit(X)
    plain.set_params(layers=[[0, 1], [2, 3]])
    with pytest.raises(ValueError, match="differ from the fitted map's"):
        plain.partial_fit(X)
    with pytest.raises(ValueError, match="differ from the fitted map's"):
        plain.predict(X)


def test_fitted_layer_weights_without_layers_are_not_saved(tmp_path):
    # load refuses such a file (tests/test_adversarial_models.py builds one by hand)
    X = np.random.default_rng(0).normal(size=(30, 4))
    som = KSOM(grid=(2, 2), n_epochs=1, random_state=0).fit(X)
    som.layer_weights_ = np.array([1.0])  # fitted layers claimed without the parameter
    with pytest.raises(
        ValueError, match="cannot save: layers and the fitted layer_weights_ must be stored together"
    ):
        save(som, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_dask_conversions_keep_the_fitted_layer_weights():
    pytest.importorskip("dask.array")
    from integrations.dask import DaskKSOM

    X = np.random.default_rng(0).normal(size=(60, 4))
    som = KSOM(
        grid=(3, 3), n_epochs=2, random_state=0, layers=[[0, 1], [2, 3]], layer_weights="balanced"
    ).fit(X)
    back = DaskKSOM.from_ksom(som).to_ksom()
    np.testing.assert_array_equal(back.layer_weights_, som.layer_weights_)
    np.testing.assert_array_equal(back.predict(X), som.predict(X))


@pytest.mark.parametrize("dtype, weight", [(np.float64, 1e307), (np.float32, 1e307)])
def test_weights_that_overflow_the_scaled_data_are_refused(dtype, weight):
    """Only the weights' ratios matter, but their size scales the working copy: beyond the
    training range its squares overflowed (a different map, with only RuntimeWarnings)."""
    X = np.random.default_rng(0).normal(size=(60, 4)).astype(dtype)
    som = KSOM(grid=(2, 2), n_epochs=1, layers=[[0, 1], [2, 3]], layer_weights=[weight, 1.0])
    with pytest.raises(ValueError, match="data scaled by the layer weights .* smaller layer_weights"):
        som.fit(X)
    with pytest.raises(ValueError, match="data scaled by the layer weights"):
        som.partial_fit(X)
    assert not hasattr(som, "codebook_")


def test_float32_data_is_scaled_in_float64_so_winners_stay_exact_at_an_offset():
    """x * s rounded to float32 lost the low bits that tell units apart: float32 data at
    1e4 + N(0, 1) with one layer of weight 0.3 got 11 of 4000 winners wrong in predict (up to
    0.2% farther), and two layers got wrong labels_ too (found by an adversarial pass). The
    working copy is float64 unless the scaling is exact; the map stays float32."""
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(4000, 6)) + 1e5).astype(np.float32)
    for weights in ([0.3], [0.3, 1.7], "balanced"):
        groups = [list(range(6))] if len(weights) == 1 else [[0, 1, 2], [3, 4, 5]]
        som = KSOM(grid=(8, 8), layers=groups, layer_weights=weights, random_state=0, n_epochs=3).fit(X)
        assert som.codebook_.dtype == np.float32
        scale = layers.column_scale(som._fitted_layers())
        diff = X.astype(np.float64)[:, None, :] - som.codebook_.astype(np.float64)[None, :, :]
        exact = ((diff * scale) ** 2).sum(axis=2)
        best = exact.min(axis=1, keepdims=True)
        for found in (som.predict(X), som.labels_):
            chosen = exact[np.arange(len(X)), found][:, None]
            np.testing.assert_allclose(chosen, best, rtol=1e-12, atol=0)
    # Centred rows lose nothing to x * s in float32: they stay float32 (speed), as do rows
    # scaled exactly (powers of two); dask rows are not looked at: float64.
    scale = np.full(6, np.sqrt(0.3))
    assert layers.working_dtype(X, scale) == np.float64
    assert layers.working_dtype(X - np.float32(1e5), scale) == np.float32
    assert layers.working_dtype(X, np.full(6, 0.5)) == np.float32
    # The weights' size no longer limits float32 data (only their ratios matter).
    small = KSOM(
        grid=(2, 2), n_epochs=2, random_state=0, layers=[[0, 1, 2], [3, 4, 5]], layer_weights=[3.0, 1.0]
    )
    large = KSOM(**{**small.get_params(), "layer_weights": [3e80, 1e80]})
    np.testing.assert_array_equal(small.fit(X[:200]).predict(X[:200]), large.fit(X[:200]).predict(X[:200]))


@pytest.mark.parametrize("algorithm", ["batch", "online", "minibatch"])
def test_float32_tanimoto_units_of_one_half_count_as_0_in_training_too(algorithm):
    """The scaled threshold was ``0.5 s`` in float64 while the float32 working copy holds
    ``0.5 float32(s)``: for a scale that rounds up in float32 (weight 5 on one column), a
    unit of bits averaging exactly 1/2 was bit 1 in training and bit 0 in predict and the
    definition, so labels_ disagreed with predict (found by an adversarial pass)."""
    x0 = np.r_[np.zeros(4), np.ones(4)]
    bits = np.r_[1, 1, 0, 0, 1, 1, 1, 1].astype(float)
    X = np.c_[x0, bits]
    init = np.array([[0.0, 0.5], [1.0, 1.0]])
    fits = {}
    for dtype in (np.float64, np.float32):
        som = KSOM(
            grid=(1, 2),
            neighbourhood="none",
            n_epochs=1,
            init=init.astype(dtype),
            algorithm=algorithm,
            batch_size=8,
            layers=[[0], [1]],
            layer_weights=[1.0, 5.0],
            layer_distances=["sqeuclidean", "tanimoto"],
        ).fit(X.astype(dtype))
        np.testing.assert_array_equal(som.labels_, som.predict(X.astype(dtype)))
        fits[dtype] = som
    np.testing.assert_array_equal(fits[np.float32].labels_, fits[np.float64].labels_)
    rng = np.random.default_rng(10)
    for seed in range(5):
        Xr = np.c_[rng.normal(size=(40, 2)), np.eye(3)[rng.integers(0, 3, 40)], rng.random(40) < 0.5]
        som = KSOM(
            grid=(3, 3),
            neighbourhood="none",
            n_epochs=5,
            random_state=seed,
            algorithm=algorithm,
            layers=[[0, 1], [2, 3, 4, 5]],
            layer_weights=[1.0, 5.0],
            layer_distances=["sqeuclidean", "tanimoto"],
        ).fit(Xr.astype(np.float32))
        np.testing.assert_array_equal(som.labels_, som.predict(Xr.astype(np.float32)))


def test_predict_refuses_non_binary_tanimoto_values():
    """fit refused them; predict answered, away from the definition (found by an
    adversarial pass). A layer left out by predict_layers is not checked."""
    X = _mixed(np.random.default_rng(0))
    som = KSOM(
        grid=(2, 2),
        n_epochs=2,
        random_state=0,
        layers=LAYERS,
        layer_distances=["sqeuclidean", "tanimoto"],
        missing="ignore",
    ).fit(X)
    Q = X.copy()
    Q[3, 4] = 0.25
    with pytest.raises(ValueError, match=r"layer 1 uses the tanimoto distance.*holds 0.25 \(row 3"):
        som.predict(Q)
    Q[5, 0] = np.nan
    with pytest.raises(ValueError, match=r"layer 1 uses the tanimoto distance.*holds 0.25"):
        som.predict(Q)
    som.set_params(predict_layers=[0])
    assert som.predict(Q).shape == (X.shape[0],)


def test_changed_layers_after_fit_are_refused(tmp_path):
    """Only a change in the number of layers was caught: other columns or distances were
    used with the fitted weights, by predict, partial_fit and save (found by an
    adversarial pass). The fitted layout is recorded, and kept by save / load."""
    X = _mixed(np.random.default_rng(0))
    som = KSOM(
        grid=(2, 2), n_epochs=2, random_state=0, layers=LAYERS, layer_distances=["sqeuclidean", "tanimoto"]
    ).fit(X)
    loaded = load(save(som, tmp_path / "m.npz"))
    for model in (som, loaded):
        for change in (dict(layers=[[0, 1, 2, 3], [4, 5, 6]]), dict(layer_distances=None)):
            old = model.get_params()
            model.set_params(**change)
            for call in (model.predict, model.partial_fit):
                with pytest.raises(ValueError, match=r"differ from the fitted map's"):
                    call(X)
            with pytest.raises(ValueError, match=r"cannot save: layers=.* differ from the fitted map's"):
                save(model, tmp_path / "other.npz")
            model.set_params(**{k: old[k] for k in change})
        np.testing.assert_array_equal(model.predict(X), som.predict(X))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(layers=LAYERS, predict_layers=[2]), r"predict_layers=\[2\] holds 2, not a layer index in 0..1"),
        (dict(layers=LAYERS, predict_layers=[-1]), r"holds -1"),
        (dict(layers=LAYERS, predict_layers=[True]), r"holds True"),
        (dict(layers=LAYERS, predict_layers=[]), r"predict_layers=\[\] selects no layer"),
        (dict(predict_layers=[1]), r"predict_layers=\[1\] holds 1, not a layer index in 0..0"),
        (
            dict(layers=LAYERS, layer_weights=[0.0, 1.0], predict_layers=[0]),
            r"selects only layers of weight 0 \(layer_weights=\[0.0, 1.0\]\)",
        ),
    ],
)
def test_bad_predict_layers_are_refused_before_any_training(kwargs, match, tmp_path):
    """predict_layers was checked only at predict: a bad value passed check_parameters, a
    whole fit, save and load, and was ignored without layers (found by a bug hunt). The
    number of layers is known without data, so every entry point refuses it."""
    X = _mixed(np.random.default_rng(0))
    som = KSOM(grid=(2, 2), n_epochs=1, **kwargs)
    with pytest.raises(ValueError, match=match):
        som.check_parameters()
    epochs = []
    with pytest.raises(ValueError, match=match):
        som.fit(X, callback=lambda *args: epochs.append(args))
    assert not epochs and not hasattr(som, "codebook_")
    with pytest.raises(ValueError, match=match):
        som.partial_fit(X)
    good = KSOM(grid=(2, 2), n_epochs=1, **{**kwargs, "predict_layers": None}).fit(X)
    good.set_params(predict_layers=kwargs["predict_layers"])
    with pytest.raises(ValueError, match=match):
        save(good, tmp_path / "bad.somvq")
    assert not any(tmp_path.iterdir())


def test_predict_layers_zero_without_layers_is_the_one_layer():
    X = _mixed(np.random.default_rng(0))
    plain = KSOM(grid=(2, 2), n_epochs=1, random_state=0).fit(X)
    whatmap = KSOM(grid=(2, 2), n_epochs=1, random_state=0, predict_layers=[0]).fit(X)
    np.testing.assert_array_equal(plain.predict(X), whatmap.predict(X))
