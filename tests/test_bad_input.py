"""Bad input gets a clear error that names the problem and the value; nothing half-written."""

import warnings

import numpy as np
import pytest

import somvq
from somvq import KSOM, KSOMClassifier, KSOMRegressor
from somvq.exceptions import BackendUnavailableError, ModelFileError


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(30, 4))


@pytest.mark.parametrize("bad, match", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_nan_and_inf_rejected(X, bad, match):
    X = X.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match=match):
        KSOM(grid=(2, 2)).fit(X)
    som = KSOM(grid=(2, 2), n_epochs=1).fit(np.nan_to_num(X, posinf=0.0))
    with pytest.raises(ValueError, match=match):
        som.predict(X)


@pytest.mark.parametrize(
    "data, match",
    [
        (np.zeros(5), "Expected 2D array"),
        (np.zeros((2, 3, 4)), "dim 3"),
        (np.zeros((0, 3)), "0 sample"),
        (np.zeros((3, 0)), "0 feature"),
        ([["a", "b"], ["c", "d"]], "could not convert|dtype"),
        (np.array([[1 + 2j, 0]]), "[Cc]omplex"),
    ],
)
def test_malformed_arrays(data, match):
    with pytest.raises(ValueError, match=match):
        KSOM(grid=(2, 2)).fit(data)


def test_feature_count_mismatch_at_predict(X):
    som = KSOM(grid=(2, 2), n_epochs=1).fit(X)
    for method in (
        som.predict,
        som.transform,
        som.score,
        som.quantization_error,
        som.topographic_error,
        som.bmu_coordinates,
    ):
        with pytest.raises(ValueError, match="3 features, but KSOM is expecting 4"):
            method(X[:, :3])
    with pytest.raises(ValueError, match="3 features, but KSOM is expecting 4"):
        som.partial_fit(X[:, :3])


def test_unfitted_use_is_an_error(X):
    from sklearn.exceptions import NotFittedError

    for method in ("predict", "transform", "umatrix"):
        with pytest.raises(NotFittedError):
            getattr(KSOM(), method)(*([X] if method != "umatrix" else []))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"grid": (4, 0)}, r"positive"),
        ({"grid": 0}, r"'grid' parameter"),
        ({"grid": (2.5, 3)}, r"grid=\(2.5, 3\)"),
        ({"neighbourhood": "gauss"}, r"'neighbourhood' parameter.*Got 'gauss'"),
        ({"algorithm": "sgd"}, r"'algorithm' parameter.*Got 'sgd'"),
        ({"radius": -1.0}, r"'radius' parameter.*Got -1.0"),
        ({"decay": 1.0}, r"'decay' parameter.*Got 1.0"),
        ({"batch_size": 0}, r"'batch_size' parameter.*Got 0"),
        ({"n_epochs": 0}, r"'n_epochs' parameter.*Got 0"),
        ({"init": "kmeans++"}, r"'init' parameter.*Got 'kmeans\+\+'"),
        ({"update": "some"}, r"'update' parameter.*Got 'some'"),
        ({"topology": "hexagonal", "grid": (2, 2, 2)}, r"hexagonal grid must have 2 axes"),
        ({"periodic": (True, False, True)}, r"one bool per grid axis"),
        ({"neighbourhood": "mexican_hat"}, r"mexican_hat.*algorithm='online'"),
        ({"learning_rate": "inverse_count"}, r"inverse_count.*algorithm='batch'"),
        ({"radius_schedule": "exponential", "radius_final": 0.0}, r"'radius_final' parameter.*Got 0.0"),
        # the Laplace smoothing under- or overflows: a numba ZeroDivisionError before
        ({"algorithm": "minibatch", "batch_size": 10, "eps": 1e308}, r"eps=1e\+308 is outside"),
        ({"algorithm": "minibatch", "init_count": 0, "eps": 5e-324}, r"eps=5e-324 is outside"),
        # bool("False") is True: a torus from a string
        ({"periodic": ("False", "False")}, r"periodic=\('False', 'False'\) must be a bool"),
        ({"periodic": (0.5, 0)}, r"periodic=\(0.5, 0\) must be a bool"),
        ({"periodic": "yes"}, r"'periodic' parameter.*Got 'yes'"),
    ],
)
def test_invalid_parameters_echo_the_value(X, params, match):
    with pytest.raises(ValueError, match=match):
        KSOM(**params).fit(X)


def test_eps_at_the_ends_of_its_range_trains(X):
    for eps in (1e-30, 1e30):
        som = KSOM(grid=(3, 3), algorithm="minibatch", batch_size=10, init_count=0, eps=eps, n_epochs=2)
        assert np.isfinite(som.fit(X).codebook_).all()
    # update="written" does no smoothing: eps is unused, any value is accepted
    som = KSOM(grid=(3, 3), algorithm="minibatch", batch_size=10, update="written", eps=1e-40, n_epochs=2)
    assert np.isfinite(som.fit(X).codebook_).all()


def test_periodic_takes_bools_and_zero_one(X):
    assert KSOM(grid=(2, 3), periodic=(1, np.int64(0)), n_epochs=1).fit(X).grid_.periodic == (True, False)
    assert KSOM(grid=(2, 3), periodic=np.array([False, True]), n_epochs=1).fit(X).grid_.periodic == (
        False,
        True,
    )


def test_init_array_of_wrong_shape_or_values(X):
    with pytest.raises(ValueError, match=r"init array has shape \(3, 4\), expected.*\(4, 4\)"):
        KSOM(grid=(2, 2), init=np.zeros((3, 4))).fit(X)
    bad = np.zeros((4, 4))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        KSOM(grid=(2, 2), init=bad).fit(X)
    # a complex array was accepted with only NumPy's ComplexWarning (imaginary parts dropped)
    with pytest.raises(ValueError, match="finite real numbers .* dtype complex128"):
        KSOM(grid=(2, 2), init=np.zeros((4, 4), dtype=complex)).fit(X)


def test_too_few_samples_for_init(X):
    with pytest.raises(ValueError, match=r"n_samples=30 should be >= n_units=36 for init='sample'"):
        KSOM(grid=(6, 6), init="sample").fit(X)
    with pytest.raises(ValueError, match=r"n_samples=1 should be >= 2 for init='pca'"):
        KSOM(grid=(2, 2), init="pca").fit(X[:1])


def test_cuda_requested_but_unavailable(X):
    with pytest.raises(BackendUnavailableError, match="backend='cuda'"):
        KSOM(grid=(2, 2), backend="cuda").fit(X)


def test_grid_change_between_partial_fits(X):
    som = KSOM(grid=(2, 2)).partial_fit(X)
    som.set_params(grid=(3, 3))
    with pytest.raises(ValueError, match="grid changed"):
        som.partial_fit(X)


# ------------------------------------------------------------------ model files
@pytest.fixture
def model_path(tmp_path, X):
    return somvq.save(KSOM(grid=(2, 2), n_epochs=1, random_state=0).fit(X), tmp_path / "m.somvq.npz")


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        somvq.load(tmp_path / "nope.npz")


def test_foreign_and_truncated_files(tmp_path, model_path):
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="not a somvq model file"):
        somvq.load(text)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.arange(3))
    with pytest.raises(ModelFileError, match="no __somvq__ record"):
        somvq.load(other)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(model_path.read_bytes()[: model_path.stat().st_size // 2])
    with pytest.raises(ModelFileError):
        somvq.load(truncated)


def _rewrite(path, out, **changes):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays.update(changes)
    np.savez(out, **arrays)
    return out


def test_inconsistent_model_contents(tmp_path, model_path):
    import json

    with pytest.raises(ModelFileError, match="codebook shape"):
        somvq.load(_rewrite(model_path, tmp_path / "a.npz", codebook_=np.zeros((5, 4))))
    with pytest.raises(ModelFileError, match="NaN or inf"):
        somvq.load(_rewrite(model_path, tmp_path / "b.npz", codebook_=np.full((4, 4), np.nan)))
    with np.load(model_path) as f:
        meta = json.loads(f["__somvq__"].tobytes())
    meta["format_version"] = 99
    newer = _rewrite(
        model_path, tmp_path / "c.npz", __somvq__=np.frombuffer(json.dumps(meta).encode(), np.uint8)
    )
    with pytest.raises(ModelFileError, match="format version 99"):
        somvq.load(newer)
    garbage = _rewrite(model_path, tmp_path / "d.npz", __somvq__=np.frombuffer(b"{not json", np.uint8))
    with pytest.raises(ModelFileError, match="corrupted metadata"):
        somvq.load(garbage)


def test_loading_never_unpickles(tmp_path):
    """An object array (which would need pickle) in a model file is refused, not executed."""
    path = tmp_path / "evil.npz"
    np.savez(path, __somvq__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelFileError):
        somvq.load(path)


def test_save_refuses_unfitted_and_leaves_no_partial_file(tmp_path, X, monkeypatch):
    with pytest.raises(ValueError, match="fitted"):
        somvq.save(KSOM(), tmp_path / "u.npz")
    som = KSOM(grid=(2, 2), n_epochs=1).fit(X)
    target = tmp_path / "m.npz"
    somvq.save(som, target)
    original = target.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        somvq.save(som, target)
    assert target.read_bytes() == original  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary left


def test_save_refuses_unstorable_parameters(tmp_path, X):
    som = KSOM(grid=(2, 2), n_epochs=1, random_state=np.random.RandomState(0)).fit(X)
    with pytest.raises(TypeError, match="random_state=RandomState"):
        somvq.save(som, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_check_parameters_without_data():
    assert KSOM(grid=(3, 4)).check_parameters().shape == (3, 4)
    with pytest.raises(ValueError, match="'radius' parameter"):
        KSOM(radius=0.0).check_parameters()
    # the squared radius underflowed to 0 below ~1e-154: a ZeroDivisionError in the kernels
    with pytest.raises(ValueError, match=r"'radius' parameter .* range \[1e-100, inf\).*Got 1e-200"):
        KSOM(radius=1e-200).check_parameters()
    with pytest.raises(ValueError, match=r"'radius_final' parameter .* range \[1e-100, inf\)"):
        KSOM(radius_final=1e-160).check_parameters()
    with pytest.raises(BackendUnavailableError):
        KSOM(backend="cuda").check_parameters()


def test_tampered_parameter_values_are_refused_at_load(tmp_path, model_path):
    import json

    with np.load(model_path) as f:
        meta = json.loads(f["__somvq__"].tobytes())
    meta["params"]["decay"] = 7.0
    tampered = _rewrite(
        model_path, tmp_path / "t.npz", __somvq__=np.frombuffer(json.dumps(meta).encode(), np.uint8)
    )
    with pytest.raises(ModelFileError, match="decay"):
        somvq.load(tampered)


def test_saved_model_files_have_normal_permissions(tmp_path, X):
    import os

    path = somvq.save(KSOM(grid=(2, 2), n_epochs=1).fit(X), tmp_path / "m.npz")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    # Saving over a file keeps its permissions, as open() would (it became world-readable)
    os.chmod(path, 0o600)
    somvq.save(KSOM(grid=(2, 2), n_epochs=1).fit(X), path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_float32_map_refuses_float64_rows_beyond_float32(X):
    """They were cast to inf with only a RuntimeWarning: every winner 0, score -inf."""
    som = KSOM(grid=(2, 2), n_epochs=1, random_state=0).fit(X.astype(np.float32))
    rows = np.zeros((2, X.shape[1]))
    rows[0, 0] = 1e39
    for method in (som.predict, som.transform, som.score):
        with pytest.raises(ValueError, match=r"X holds values up to 1e\+39 .* beyond the map's float32"):
            method(rows)
    assert som.predict(np.zeros((1, X.shape[1]))).shape == (1,)
    # partial_fit cast them with a RuntimeWarning, then said "non-finite codebook"; the
    # supervised maps answered (found by an adversarial pass)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"X holds values up to 1e\+39 .* beyond the map's float32"):
            som.partial_fit(rows)
        y = np.arange(X.shape[0]) % 2
        for model in (KSOMClassifier(grid=(2, 2), n_epochs=1), KSOMRegressor(grid=(2, 2), n_epochs=1)):
            model.fit(X.astype(np.float32), y)
            with pytest.raises(ValueError, match=r"X holds values up to 1e\+39 .* beyond the map's float32"):
                model.predict(rows)


def test_float32_data_near_its_largest_value_warns_of_nothing():
    """scikit-learn's fast finiteness check sums X: for finite float32 data near 3e38 the
    sum overflowed, "invalid value encountered in reduce" leaked out of fit (found by an
    adversarial pass)."""
    rng = np.random.default_rng(0)
    X = np.clip(rng.normal(size=(200, 3)) * 1e38, -3e38, 3e38).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        som = KSOM(grid=(3, 3), n_epochs=2, random_state=0).fit(X)
        som.predict(X)
    assert np.isfinite(som.codebook_).all()


def test_save_without_overwrite_keeps_an_existing_file(tmp_path, X):
    som = KSOM(grid=(2, 2), n_epochs=1, random_state=0).fit(X)
    path = tmp_path / "m.somvq.npz"
    path.write_text("precious")
    with pytest.raises(FileExistsError):
        somvq.save(som, path, overwrite=False)
    assert path.read_text() == "precious" and sorted(p.name for p in tmp_path.iterdir()) == ["m.somvq.npz"]
    somvq.load(somvq.save(som, tmp_path / "new.somvq.npz", overwrite=False))
