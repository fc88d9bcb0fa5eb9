"""KSOMClassifier / KSOMRegressor (issue 14): scikit-learn conformance, pipelines, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from somvq import KSOM, KSOMClassifier, KSOMRegressor

#: Expected failures, per instance (strict: each must fail). None so far.
EXPECTED_FAILED_CHECKS: dict = {}


@parametrize_with_checks(
    [
        KSOMClassifier(grid=(5, 5), random_state=0),
        KSOMRegressor(grid=(5, 5), random_state=0),
        KSOMClassifier(grid=(5, 5), random_state=0, missing="ignore", max_missing=1.0),
        KSOMRegressor(grid=(5, 5), random_state=0, missing="ignore", max_missing=1.0),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
    xfail_strict=True,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _naive_xyf_predict(X, codebook, n_x, classes):
    """Independent reference: nearest unit on the X columns (loops), argmax of its Y part."""
    out = []
    for x in X:
        d = [sum((x[j] - c[j]) ** 2 for j in range(n_x)) for c in codebook]
        out.append(classes[int(np.argmax(codebook[int(np.argmin(d)), n_x:]))])
    return np.array(out)


def test_classifier_predicts_from_the_bmu_on_x_alone():
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = KSOMClassifier(grid=(6, 6), random_state=0).fit(X, y)
    ref = _naive_xyf_predict(X[:40], clf.som_.codebook_, X.shape[1], clf.classes_)
    np.testing.assert_array_equal(clf.predict(X[:40]), ref)
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert (P >= 0).all()
    np.testing.assert_array_equal(clf.classes_[P.argmax(axis=1)], clf.predict(X))
    assert clf.score(X, y) > 0.9


def test_classifier_keeps_string_labels():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (50, 2)), rng.normal(6, 1, (50, 2))])
    y = np.array(["cat"] * 50 + ["dog"] * 50, dtype=object)
    clf = KSOMClassifier(grid=(4, 4), random_state=0).fit(X, y)
    assert list(clf.classes_) == ["cat", "dog"] and clf.score(X, y) == 1.0


def test_regressor_predicts_the_bmu_target_destandardized():
    X = np.linspace(0, 1, 300)[:, None]
    y = 3 + 2 * np.sin(6 * X[:, 0])
    reg = KSOMRegressor(grid=(25,), random_state=0).fit(X, y)
    cb = reg.som_.codebook_
    bmu = np.argmin((X - cb[None, :, 0]) ** 2, axis=1)
    np.testing.assert_allclose(reg.predict(X), cb[bmu, 1] * reg.y_scale_ + reg.y_mean_)
    assert reg.score(X, y) > 0.95


@pytest.mark.parametrize("scale", [2.0**600, 1e300, 1e-300, 3.0])
def test_regressor_targets_of_any_magnitude(scale):
    """y beyond ~1e154 used to overflow y.std() to inf: every prediction NaN. The map is
    the same for y and y * scale (bit for bit for a power of two), and the moments are
    y.mean() / y.std()'s bits."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=200)
    plain = KSOMRegressor(grid=(3, 3), n_epochs=2, random_state=0).fit(X, y)
    assert plain.y_mean_ == float(y.mean()) and plain.y_scale_ == float(y.std())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        scaled = KSOMRegressor(grid=(3, 3), n_epochs=2, random_state=0).fit(X, y * scale)
        predictions = scaled.predict(X)
    if scale == 2.0**600:  # exact: the same bits
        np.testing.assert_array_equal(scaled.som_.codebook_, plain.som_.codebook_)
    np.testing.assert_allclose(scaled.som_.codebook_, plain.som_.codebook_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(predictions / scale, plain.predict(X), rtol=1e-9)


def test_pipeline_and_grid_search():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), KSOMClassifier(random_state=0))
    search = GridSearchCV(
        pipe, {"ksomclassifier__grid": [(4, 4), (6, 6)], "ksomclassifier__y_weight": [0.5, 1.0]}, cv=3
    )
    search.fit(X, y)
    assert search.best_score_ > 0.85
    assert set(search.best_params_) == {"ksomclassifier__grid", "ksomclassifier__y_weight"}


def test_mixed_numeric_and_categorical_table_end_to_end():
    rng = np.random.default_rng(0)
    n = 400
    colour = rng.choice(["red", "green", "blue"], size=n)
    size = rng.normal(size=n)
    y = np.where(colour == "red", "a", np.where(size > 0, "b", "c"))
    # an object table (a DataFrame works the same with column names): 2 numeric, 1 categorical
    df = np.empty((n, 3), dtype=object)
    df[:, 0], df[:, 1], df[:, 2] = size, rng.normal(size=n), colour
    prep = ColumnTransformer(
        [("num", StandardScaler(), [0, 1]), ("cat", OneHotEncoder(sparse_output=False), [2])]
    )
    Z = prep.fit_transform(df)
    # the recipe of docs/supervised.md: numeric layer + one-hot columns as a tanimoto layer,
    # weighted so that the category organises the map
    som = KSOM(
        grid=(6, 6),
        random_state=0,
        layers=[[0, 1], [2, 3, 4]],
        layer_distances=["sqeuclidean", "tanimoto"],
        layer_weights=[1.0, 10.0],
    ).fit(Z)
    # units win the rows of one colour and carry that colour's bit
    hot = som.codebook_[som.labels_, 2:] > 0.5
    agree = (hot == Z[:, 2:].astype(bool)).all(axis=1).mean()
    assert agree >= 0.9  # measured 0.95 (the plain map: 0.825)
    Xtr, Xte, ytr, yte = train_test_split(df, y, random_state=0)
    model = make_pipeline(prep, KSOMClassifier(grid=(8, 8), random_state=0)).fit(Xtr, ytr)
    assert model.score(Xte, yte) > 0.85


@pytest.mark.parametrize("Est", [KSOMClassifier, KSOMRegressor])
def test_y_with_nan_is_refused(Est):
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = np.arange(20.0) % 2
    y[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Est(grid=(2, 2)).fit(X, y)


def test_one_class_only_is_refused():
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=r"one class only \(1 class: \[7\]\)"):
        KSOMClassifier(grid=(2, 2)).fit(X, np.full(20, 7))


# ------------------------------------------------------------------ missing inputs (issue 14)
def _iris_with_holes(fraction=0.2, seed=0):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(seed)
    Xn = X.copy()
    Xn[rng.random(X.shape) < fraction] = np.nan
    empty = np.isnan(Xn).all(axis=1)
    Xn[empty, 0] = X[empty, 0]
    return X, Xn, y


@pytest.mark.parametrize("Est", [KSOMClassifier, KSOMRegressor])
def test_missing_ignore_without_nan_is_the_plain_fit(Est):
    X, _, y = _iris_with_holes()
    a = Est(grid=(4, 4), n_epochs=5, random_state=0).fit(X, y)
    b = Est(grid=(4, 4), n_epochs=5, random_state=0, missing="ignore").fit(X, y)
    np.testing.assert_array_equal(a.som_.codebook_, b.som_.codebook_)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_classifier_with_missing_inputs_predicts_from_the_bmu_on_observed_inputs():
    from . import naive

    X, Xn, y = _iris_with_holes()
    clf = KSOMClassifier(grid=(5, 5), n_epochs=10, random_state=0, missing="ignore", max_missing=1.0).fit(
        Xn, y
    )
    codebook = clf.som_.codebook_
    bmu = naive.masked_bmu(Xn, codebook[:, :4])
    np.testing.assert_array_equal(clf.predict(Xn), clf.classes_[np.argmax(codebook[bmu, 4:], axis=1)])
    assert clf.score(Xn, y) > 0.85  # 20% of the inputs missing, in training and at predict
    assert clf.score(X, y) > 0.85


def test_regressor_with_missing_inputs_learns():
    X = np.linspace(0, 1, 300)[:, None] * np.ones((1, 3))
    y = np.sin(6 * X[:, 0])
    Xn = X.copy()
    Xn[np.random.default_rng(1).random(X.shape) < 0.3] = np.nan
    Xn[np.isnan(Xn).all(axis=1), 0] = X[np.isnan(Xn).all(axis=1), 0]
    reg = KSOMRegressor(grid=(20,), random_state=0, missing="ignore", max_missing=1.0).fit(Xn, y)
    assert reg.score(Xn, y) > 0.9


@pytest.mark.parametrize("Est", [KSOMClassifier, KSOMRegressor])
def test_missing_inputs_need_missing_ignore_and_y_stays_complete(Est):
    _, Xn, y = _iris_with_holes()
    with pytest.raises(ValueError, match="NaN"):
        Est(grid=(2, 2)).fit(Xn, y)
    yn = y.astype(float)
    yn[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Est(grid=(2, 2), missing="ignore").fit(Xn, yn)
    clf = Est(grid=(2, 2), n_epochs=1).fit(np.nan_to_num(Xn), y)
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(Xn)
    with pytest.raises(ValueError, match="max_missing=0.5"):
        bad = Xn.copy()
        bad[0, :3] = np.nan
        bad[0, 3] = 1.0
        Est(grid=(2, 2), missing="ignore").fit(bad, y)


def test_grid_auto_takes_the_som_toolbox_size_of_the_training_table():
    from sklearn.datasets import load_wine

    from somvq.parameters import som_toolbox_shape

    X, y = load_wine(return_X_y=True)
    assert KSOMClassifier().grid == "auto" and KSOMRegressor().grid == "auto"  # the default
    clf = KSOMClassifier(grid="auto", n_epochs=2, random_state=0).fit(X, y)
    Z = np.hstack([X, np.eye(3)[y]])  # the map's training table: X and the one-hot classes
    expected = som_toolbox_shape(len(X), np.linalg.eigvalsh(np.cov(Z, rowvar=False)))
    assert clf.som_.grid_.shape == expected
    assert (
        KSOMRegressor(grid="auto", n_epochs=2, random_state=0).fit(X, y.astype(float)).som_.grid_.n_units > 1
    )


# ------------------------------------------------------------------ failed fits (SPEC "Bad input")
def _refit_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    return X, (X[:, 0] > 0).astype(int)


def _fitted(Est):
    X, y = _refit_data()
    est = Est(grid=(3, 3), n_epochs=2, random_state=0)
    return est.fit(X, y if Est is KSOMClassifier else X[:, 0] * 10.0)


def _snapshot(est):
    """Everything a fit writes, and what the estimator answers, as bytes to compare."""
    X, _ = _refit_data()
    out = {
        "n_features_in_": est.n_features_in_,
        "codebook": est.som_.codebook_.tobytes(),
        "predict": est.predict(X).tobytes(),
        "som_": est.som_,
        "_n_x": est._n_x,
    }
    if isinstance(est, KSOMClassifier):
        out["classes_"] = est.classes_.tobytes()
        out["classes_dtype"] = est.classes_.dtype
        out["predict_proba"] = est.predict_proba(X).tobytes()
    else:
        out["y_mean_"] = est.y_mean_
        out["y_scale_"] = est.y_scale_
    return out


def _bad_refits(Est):
    """Refits that fail: (X, y, exception) - after validation, in the map's training."""
    huge4, huge3 = np.full((10, 4), 1e200), np.full((10, 3), 1e200)  # squared distances overflow
    if Est is KSOMClassifier:
        y_new = np.array(list("abcde") * 2)
        return [
            (huge4, y_new, ValueError),
            (huge3, y_new, ValueError),  # another feature count
            (np.ones((10, 3)), np.full(10, 7), ValueError),  # one class only, another feature count
        ]
    y_new = np.arange(10.0) * 1000
    return [(huge4, y_new, ValueError), (huge3, y_new, ValueError)]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # _balanced of 1e200 rows
@pytest.mark.parametrize("Est", [KSOMClassifier, KSOMRegressor])
def test_a_failed_refit_leaves_the_fitted_estimator_as_it_was(Est):
    est = _fitted(Est)
    before = _snapshot(est)
    for X_bad, y_bad, error in _bad_refits(Est):
        with pytest.raises(error):
            est.fit(X_bad, y_bad)
        after = _snapshot(est)
        assert after.pop("som_") is before["som_"]
        assert after == {k: v for k, v in before.items() if k != "som_"}
    # and it still refits normally afterwards, to the same model as a fresh fit
    X, y = _refit_data()
    y = y if Est is KSOMClassifier else X[:, 0] * 10.0
    fresh = Est(grid=(3, 3), n_epochs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(est.fit(X, y).som_.codebook_, fresh.som_.codebook_)


@pytest.mark.parametrize("Est", [KSOMClassifier, KSOMRegressor])
def test_an_interrupt_inside_the_maps_training_leaves_the_estimator_as_it_was(Est, monkeypatch):
    est = _fitted(Est)
    before = _snapshot(est)
    calls = []

    def interrupt(self, *args, **kwargs):  # KSOM.fit reports after every epoch
        calls.append(args)
        raise KeyboardInterrupt

    monkeypatch.setattr(KSOM, "_report", interrupt)
    rng = np.random.default_rng(1)
    X_new = rng.normal(size=(30, 3))  # another feature count, classes and target scale
    y_new = np.array(list("xyz") * 10) if Est is KSOMClassifier else rng.normal(size=30) * 1e6
    with pytest.raises(KeyboardInterrupt):
        est.fit(X_new, y_new)
    assert calls, "the interrupt was not raised inside the map's training"
    monkeypatch.undo()
    after = _snapshot(est)
    assert after.pop("som_") is before["som_"]
    assert after == {k: v for k, v in before.items() if k != "som_"}


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # _balanced of 1e200 rows
@pytest.mark.parametrize("Est", [KSOMClassifier, KSOMRegressor])
@pytest.mark.parametrize("interrupt", [False, True])
def test_a_failed_first_fit_leaves_the_estimator_unfitted(Est, interrupt, monkeypatch):
    from sklearn.exceptions import NotFittedError

    if interrupt:

        def raise_interrupt(self, *args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(KSOM, "_report", raise_interrupt)
        X_bad = np.random.default_rng(0).normal(size=(10, 4))
        error = KeyboardInterrupt
    else:
        X_bad, error = np.full((10, 4), 1e200), ValueError
    y_bad = np.array(list("abcde") * 2) if Est is KSOMClassifier else np.arange(10.0)
    est = Est(grid=(3, 3), n_epochs=2, random_state=0)
    with pytest.raises(error):
        est.fit(X_bad, y_bad)
    monkeypatch.undo()
    fitted = [name for name in vars(est) if name.endswith("_") and not name.startswith("__")]
    assert fitted == [] and not hasattr(est, "_n_x")
    with pytest.raises(NotFittedError):
        est.predict(np.zeros((2, 4)))
    if Est is KSOMClassifier:
        with pytest.raises(NotFittedError):
            est.predict_proba(np.zeros((2, 4)))
