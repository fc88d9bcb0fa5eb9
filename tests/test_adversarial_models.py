"""Issue 11, section 2: models that are not finite are never produced, saved or loaded.

Each case failed on the code before the fix: a fit on data holding 1e300 or with
``learning_rate=1e300`` returned (and the command line saved) a NaN codebook, EMA
settings that divide by zero gave a raw ZeroDivisionError in the estimator and a silent
inf/NaN codebook in the torch quantizer, and ``grid=True`` was a one-unit map.
"""

import warnings

import numpy as np
import pytest
from click.testing import CliRunner

import somvq
from somvq import KSOM

from .test_adversarial_files import _contents, _write


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(60, 3))


def _with_huge_row(X, value=1e300):
    X = X.copy()
    X[5] = value
    return X


# ------------------------------------------------------------------ training
@pytest.mark.parametrize("algorithm", ["batch", "minibatch", "online"])
def test_data_whose_squares_overflow_is_refused_up_front(X, algorithm):
    som = KSOM(grid=(4, 4), algorithm=algorithm, batch_size=16, random_state=0)
    with pytest.raises(ValueError, match=r"values up to 1e\+300.*overflow float64.*Rescale"):
        som.fit(_with_huge_row(X))
    assert not hasattr(som, "codebook_")
    with pytest.raises(ValueError, match=r"values up to 1e\+300"):
        som.partial_fit(_with_huge_row(X))
    assert not hasattr(som, "codebook_")


def test_the_range_limit_is_where_squared_distances_overflow(X):
    from somvq._validation import finite_range_limit

    limit = finite_range_limit(3)
    # Just below the limit, the largest possible squared distance (4 D M^2) is finite ...
    assert np.isfinite(4 * 3 * (np.float64(limit) * 0.999) ** 2)
    # ... and just above it, it is not: the limit is tight, not arbitrary.
    with np.errstate(over="ignore"):
        assert not np.isfinite(4 * 3 * (np.float64(limit) * 1.001) ** 2)
    ok = X.copy()
    ok[0] = limit / 2
    KSOM(grid=(2, 2), n_epochs=1, random_state=0).fit(ok)  # large but safe data trains
    with pytest.raises(ValueError, match="overflow"):
        KSOM(grid=(2, 2), n_epochs=1).fit(_with_huge_row(X, limit * 1.01))


@pytest.mark.parametrize("algorithm", ["batch", "minibatch", "online"])
def test_an_init_array_whose_squares_overflow_is_refused_up_front(X, algorithm):
    """An init array beyond the data's range limit, or beyond the data's dtype, is a clear
    ValueError (it raised a bare ZeroDivisionError in the search's frame)."""
    init = np.random.default_rng(1).normal(size=(4, 3)) * 1e200
    som = KSOM(grid=(2, 2), algorithm=algorithm, batch_size=16, init=init, random_state=0)
    with pytest.raises(ValueError, match=r"init array holds values up to 1.3e\+200.*overflow float64.*scale"):
        som.fit(X)
    assert not hasattr(som, "codebook_")
    som = KSOM(grid=(2, 2), algorithm=algorithm, init=init * 1e-160, random_state=0)
    with pytest.raises(ValueError, match=r"init array holds values up to 1.3e\+40.*dtype float32"):
        som.fit(X.astype(np.float32))


def test_a_codebook_whose_squares_overflow_still_predicts(X):
    """A model whose units lie beyond ~1e154 (a file written elsewhere): winners come from
    the search's power-of-two frame; the distances are float64's overflow, inf."""
    som = KSOM(grid=(2, 2), n_epochs=1, random_state=0).fit(X)
    rng = np.random.default_rng(2)
    som.codebook_ = rng.normal(size=(4, 3)) * 1e200
    rows = som.codebook_[[3, 0, 2, 1]] * (1 + 1e-6 * rng.normal(size=(4, 3)))
    np.testing.assert_array_equal(som.predict(rows), [3, 0, 2, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isposinf(som.transform(rows)).all()


def test_divergent_learning_rate_raises_naming_it(X):
    som = KSOM(grid=(3, 3), algorithm="online", learning_rate=1e300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match=r"non-finite codebook.*learning_rate=1e\+300"):
            som.fit(X)
    assert not hasattr(som, "codebook_")


def test_failed_fit_leaves_the_previous_model(X):
    som = KSOM(grid=(3, 3), algorithm="online", n_epochs=2, random_state=0).fit(X)
    before = {name: np.copy(getattr(som, name)) for name in ("codebook_", "labels_", "unit_counts_")}
    steps = som.n_steps_
    som.set_params(learning_rate=1e300, learning_rate_schedule="constant")
    with pytest.raises(ValueError, match="non-finite codebook"):
        som.fit(X)
    with pytest.raises(ValueError, match="non-finite codebook"):
        som.partial_fit(X)
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(som, name), value)
    assert som.n_steps_ == steps
    assert np.isfinite(som.quantization_error(X))


def test_save_refuses_a_non_finite_model(tmp_path, X):
    som = KSOM(grid=(2, 2), n_epochs=1, random_state=0).fit(X)
    for name in ("codebook_", "ema_sum_", "ema_count_", "unit_counts_"):
        broken = KSOM(grid=(2, 2), n_epochs=1, random_state=0).fit(X)
        value = getattr(broken, name).copy()
        value.flat[0] = np.inf if name != "codebook_" else np.nan
        setattr(broken, name, value)
        with pytest.raises(ValueError, match=f"{name} holds NaN or inf"):
            somvq.save(broken, tmp_path / "m.npz")
        assert list(tmp_path.iterdir()) == []
    somvq.save(som, tmp_path / "m.npz")  # the sound one is saved


# ------------------------------------------------------------------ the command line
def _cli(*args):
    from somvq.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _one_line_error(result, *fragments):
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_cli_fit_on_huge_values_writes_nothing(tmp_path, X):
    data = tmp_path / "h.csv"
    np.savetxt(data, _with_huge_row(X), delimiter=",")
    out = tmp_path / "out"
    result = _cli("fit", data, "--grid", "3x4", "--seed", "0", "-q", "-d", out)
    _one_line_error(result, "h.csv", "1e+300", "overflow")
    assert not out.exists()
    model = tmp_path / "m.somvq.npz"
    result = _cli("fit", data, "--grid", "3x4", "-q", "-o", model)
    _one_line_error(result, "overflow")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.csv"]


def test_cli_predict_distance_of_huge_rows_is_inf_without_warnings(tmp_path, X):
    """A trained map asked about rows beyond ~1e154: the winners are the search's (see
    test_a_codebook_whose_squares_overflow_still_predicts) and the distance overflows to
    inf, as transform gives; predict --distance printed numpy's RuntimeWarning and its
    source line on stderr (found by a bug hunt). The map's own scale-free ratio of
    neighbour distances stays finite for a codebook out there."""
    data, model = tmp_path / "d.csv", tmp_path / "m.somvq.npz"
    np.savetxt(data, X, delimiter=",")
    assert _cli("fit", data, "--grid", "3x3", "--seed", "0", "-q", "-o", model).exit_code == 0
    huge = tmp_path / "h.csv"
    np.savetxt(huge, _with_huge_row(X, -1e300), delimiter=",")
    result = _cli("predict", model, huge, "--distance")
    assert result.exit_code == 0 and result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "bmu,row,col,distance" and lines[6].endswith(",inf") and len(lines) == 61
    assert all(np.isfinite(float(line.split(",")[-1])) for i, line in enumerate(lines[1:]) if i != 5)
    from somvq import metrics

    som = KSOM(grid=(3, 3), n_epochs=2, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ratio = metrics.neighbour_distance_ratio(som.codebook_ * 1e300, som.grid_)
    assert ratio == pytest.approx(metrics.neighbour_distance_ratio(som.codebook_, som.grid_), rel=1e-12)


def test_cli_fit_with_divergent_learning_rate_writes_nothing(tmp_path, X):
    data = tmp_path / "d.csv"
    np.savetxt(data, X, delimiter=",")
    model = tmp_path / "m.somvq.npz"
    result = _cli(
        "fit", data, "--grid", "3x3", "--algorithm", "online", "--learning-rate", "1e300", "-q", "-o", model
    )
    _one_line_error(result, "non-finite codebook", "learning_rate=1e+300")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


# ------------------------------------------------------------------ parameter validation
@pytest.mark.parametrize(
    "params, match",
    [
        ({"init_count": 0.0, "eps": 0.0}, r"init_count=0.0 with eps=0.0 divides by zero"),
        ({"init_count": 0, "eps": 0}, r"init_count=0 with eps=0 divides by zero"),
        ({"decay": 0.0, "eps": 0.0}, r"decay=0.0 with eps=0.0 divides by zero"),
    ],
)
def test_ema_settings_that_divide_by_zero_are_rejected(X, params, match):
    som = KSOM(grid=(3, 3), algorithm="minibatch", neighbourhood="none", batch_size=8, **params)
    with pytest.raises(ValueError, match=match):
        som.check_parameters()
    with pytest.raises(ValueError, match=match):  # before: ZeroDivisionError from the kernel
        som.fit(X)
    assert not hasattr(som, "codebook_")


def test_safe_ema_settings_near_the_edge_still_train(X):
    for params in (
        {"init_count": 0.0, "eps": 1e-5},
        {"init_count": 1.0, "eps": 0.0},
        {"init_count": 0.0, "eps": 0.0, "update": "written"},
    ):
        som = KSOM(
            grid=(3, 3), algorithm="minibatch", neighbourhood="none", batch_size=8, random_state=0, **params
        )
        assert np.isfinite(som.fit(X).codebook_).all(), params
    # Batch and online KSOM have no EMA: the combination is harmless there.
    KSOM(grid=(3, 3), init_count=0.0, eps=0.0, n_epochs=1).fit(X)


@pytest.mark.parametrize("grid", [True, False, np.bool_(True), (True, 3), [2, False], np.array([True, True])])
def test_bool_grids_are_rejected(X, grid):
    # Before: True was a 1x1 map, (True, 3) a 1x3 map (bool is an Integral).
    with pytest.raises(ValueError, match=r"'?grid'?.*(not (a )?bools?|Got)"):
        KSOM(grid=grid).check_parameters()
    with pytest.raises(ValueError, match=r"'?grid'?.*(not (a )?bools?|Got)"):
        KSOM(grid=grid).fit(X)


def test_torch_quantizer_rejects_the_same_ema_settings():
    torch = pytest.importorskip("torch")
    from somvq.integrations.torch import KohonenVectorQuantize

    with pytest.raises(ValueError, match=r"init_count=0.0 with eps=0.0 divides by zero"):
        KohonenVectorQuantize(dim=3, codebook_size=16, neighbourhood="none", init_count=0.0, eps=0.0)
    with pytest.raises(ValueError, match=r"decay=0.0 with eps=0.0 divides by zero"):
        KohonenVectorQuantize(dim=3, codebook_size=16, decay=0.0, eps=0.0)
    # The safe neighbours of those settings train to a finite codebook.
    for kwargs in ({"init_count": 0.0}, {"eps": 0.0}, {"init_count": 0.0, "eps": 0.0, "update": "written"}):
        vq = KohonenVectorQuantize(dim=3, codebook_size=16, neighbourhood="none", **kwargs)
        vq.train()
        vq(torch.randn(8, 3))
        assert bool(torch.isfinite(vq.codebook).all()), kwargs


def test_a_failed_fit_on_other_data_keeps_the_input_attributes(X):
    """validate_data records n_features_in_ before training: a failed call must undo it."""
    som = KSOM(grid=(2, 2), n_epochs=1, random_state=0).fit(X)
    codebook = som.codebook_.copy()
    other = _with_huge_row(X[:, :2])
    for method in (som.fit, som.partial_fit):
        with pytest.raises(ValueError, match="overflow|2 features"):
            method(other)
        assert som.n_features_in_ == 3  # before: 2, and predict(X) refused X
        np.testing.assert_array_equal(som.codebook_, codebook)
        assert som.predict(X).shape == (60,)
    fresh = KSOM(grid=(2, 2))
    with pytest.raises(ValueError, match="overflow"):
        fresh.fit(other)
    assert not hasattr(fresh, "n_features_in_")


# ------------------------------------------------------------------ model files
# save runs the checks load runs (the same functions), so it never writes a file that
# load refuses; load refuses an inline init, lying member sizes and counters beyond int64.
def _layered(X):
    return KSOM(grid=(3, 4), layers=[[0], [1, 2]], n_epochs=2, random_state=0).fit(X)


def _fitted(X, **params):
    return KSOM(**{"grid": (3, 4), "n_epochs": 2, "random_state": 0, **params}).fit(X)


@pytest.mark.parametrize(
    "fit, change, match",
    [
        ({}, {"n_epochs": 0}, "n_epochs"),
        ({}, {"neighbourhood": "foo"}, "neighbourhood"),
        ({}, {"init": "foo"}, "init"),
        ({}, {"init": np.full((12, 3), np.nan)}, "init array holds NaN or inf"),
        ({}, {"init": np.zeros((12, 3), dtype=complex)}, "init array has dtype complex128"),
        ({}, {"init": np.full((12, 3), "a")}, "init array has dtype <U1"),
        (
            {"algorithm": "minibatch", "batch_size": 8},
            {"eps": 0, "init_count": 0},
            "init_count=0 with eps=0",
        ),
        ({}, {"random_state": 1.5}, "random_state"),
        ({}, {"max_missing": 2}, "max_missing"),
        ({}, {"tol": float("nan")}, "tol"),
        ({}, {"batch_size": 0}, "batch_size"),
        ({}, {"bmu_search": "x"}, "bmu_search"),
        ({"algorithm": "batch"}, {"learning_rate": "inverse_count"}, "learning_rate='inverse_count'"),
        ({"algorithm": "online", "neighbourhood": "mexican_hat"}, {"algorithm": "batch"}, "mexican_hat"),
        ({"layers": [[0], [1, 2]]}, {"layer_weights": [-1, 5]}, r"layer_weights\[0\]=-1"),
        ({}, {"layer_distances": ["sqeuclidean"]}, "layer_distances"),
        ({}, {"layer_distances": "euclidean"}, "layer_distances"),
        ({"layers": [[0], [1, 2]]}, {"layers": None}, "layers and the fitted layer_weights_"),
        ({"grid": "auto"}, {"topology": "hexagonal"}, "cannot come from grid='auto'"),
    ],
)
def test_save_refuses_what_load_would_refuse(tmp_path, X, fit, change, match):
    som = _fitted(X, **fit)
    somvq.load(somvq.save(som, tmp_path / "before.npz"))  # sound before the change
    som.set_params(**change)
    with pytest.raises(ValueError, match=rf"cannot save: .*{match}"):
        somvq.save(som, tmp_path / "m.npz")  # before: saved, and load raised ModelFileError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["before.npz"]


@pytest.mark.parametrize(
    "init, match",
    [
        ([[float("nan")] * 3] * 5, r"init array has shape \(5, 3\)"),
        ([[float("nan")] * 3] * 12, "init array holds NaN or inf"),
        ([["a"] * 3] * 12, "init array has dtype"),
        ([[1.0, 2.0], [3.0]], "init"),
        (3.5, "init"),
    ],
)
def test_load_checks_an_init_written_inline(tmp_path, X, init, match):
    from somvq.exceptions import ModelFileError

    meta, arrays = _contents(somvq.save(_fitted(X), tmp_path / "m.npz"))
    meta["params"]["init"] = init
    path = _write(tmp_path / "t.npz", meta, arrays)
    with pytest.raises(ModelFileError, match=match):  # before: loaded with a (5, 3) NaN init
        somvq.load(path)
    meta["params"]["init"] = np.arange(36.0).reshape(12, 3).tolist()  # a sound one is the init array
    som = somvq.load(_write(tmp_path / "ok.npz", meta, arrays))
    np.testing.assert_array_equal(som.init, np.arange(36.0).reshape(12, 3))


def _lying_member(tmp_path, X, name, rows, data_size):
    """A model file whose ``name`` member (stored) declares ``rows`` int64 values, with the
    central directory's file_size (and compress_size, with ``data_size="both"``) patched to
    match, though the file holds none of them."""
    import io
    import zipfile

    meta, arrays = _contents(somvq.save(_fitted(X), tmp_path / "m.npz"))
    if name == "labels_":
        arrays.pop("labels_")
    else:
        meta["extra"] = {"x": {"__array__": name}}
        meta["arrays"] = sorted([*meta["arrays"], name])
    path = _write(tmp_path / "lie.npz", meta, arrays)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<i8", "fortran_order": False, "shape": (rows,)})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(zipfile.ZipInfo(f"{name}.npy"), header.getvalue())
        info = archive.getinfo(f"{name}.npy")
        info.file_size = len(header.getvalue()) + 8 * rows
        if data_size == "both":
            info.compress_size = info.file_size
    assert path.stat().st_size < 10_000
    return path


@pytest.mark.parametrize("data_size", ["file_size", "both"])
@pytest.mark.parametrize("name", ["labels_", "extra__x"])
def test_stored_members_whose_sizes_lie_are_refused(tmp_path, X, name, data_size):
    from somvq.exceptions import ModelFileError

    path = _lying_member(tmp_path, X, name, 10**14, data_size)
    # before: numpy allocated the declared 728 TiB (MemoryError), not a ModelFileError
    with pytest.raises(ModelFileError, match=f"{name} (holds|declares)"):
        somvq.load(path) if name == "labels_" else somvq.io.read_extra(path)


@pytest.mark.parametrize(
    "field, value",
    [("n_steps_", 2**64), ("n_steps_", 2**63), ("n_iter_", 2**63), ("n_iter_", 10**30)],
)
def test_load_bounds_the_counters_to_int64(tmp_path, X, field, value):
    from somvq.exceptions import ModelFileError

    meta, arrays = _contents(somvq.save(_fitted(X, algorithm="online"), tmp_path / "m.npz"))
    meta["state"][field] = value
    with pytest.raises(ModelFileError, match=f"{field}={value}"):  # before: loaded; partial_fit overflowed
        somvq.load(_write(tmp_path / "t.npz", meta, arrays))
    meta["state"][field] = 2**62  # large but within int64 loads
    assert getattr(somvq.load(_write(tmp_path / "ok.npz", meta, arrays)), field) == 2**62


def test_load_still_refuses_fitted_layer_weights_without_layers(tmp_path, X):
    """save no longer writes such a file (above); load refuses one written by hand."""
    from somvq.exceptions import ModelFileError

    som = _layered(X)
    meta, arrays = _contents(somvq.save(som, tmp_path / "m.npz"))
    meta["params"].update(layers=None, layer_weights=None)
    with pytest.raises(ModelFileError, match="layers and the fitted layer_weights_ must be stored together"):
        somvq.load(_write(tmp_path / "t.npz", meta, arrays))
