"""``somvq fit --target``, then predict / evaluate (issue 14)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from somvq.cli import main
from somvq.io import load

from .test_cli import run_next_hint


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _write(path, X, target, name):
    with open(path, "w") as f:
        f.write(",".join([f"f{i}" for i in range(X.shape[1])] + [name]) + "\n")
        for row, t in zip(X, target):
            f.write(",".join(map(repr, row.tolist())) + f",{t}\n")


@pytest.fixture
def wine(tmp_path):
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    path = tmp_path / "wine.csv"
    _write(path, X, [f"kind_{v}" for v in y], "kind")
    return path, X, y


def test_text_target_trains_a_classifier_and_predict_outputs_labels(tmp_path, wine):
    path, X, y = wine
    model = tmp_path / "m.npz"
    res = run(
        "fit", path, "--target", "kind", "--standardize", "--grid", "5x5", "--seed", "0", "-o", model, "-q"
    )
    assert res.exit_code == 0, res.output
    assert "classifier" in res.output and "training accuracy" in res.output
    som = load(model)
    assert som.n_features_in_ == 13 + 3 and som.layers == [list(range(13)), [13, 14, 15]]
    out = tmp_path / "pred.csv"
    assert run("predict", model, path, "-o", out).exit_code == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "kind" and len(lines) == 179 and set(lines[1:]) <= {"kind_0", "kind_1", "kind_2"}
    acc = np.mean(np.array(lines[1:]) == np.array([f"kind_{v}" for v in y]))
    res = run("evaluate", model, path, "--json")
    assert json.loads(res.output)["accuracy"] == pytest.approx(acc)
    assert acc > 0.9


def test_integer_target_with_few_levels_is_a_class_and_many_levels_a_regression(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    _write(tmp_path / "c.csv", X, (X[:, 0] > 0).astype(int), "t")
    _write(tmp_path / "r.csv", X, 3 * X[:, 0] + 0.1 * rng.normal(size=120), "t")
    assert (
        "classifier" in run("fit", tmp_path / "c.csv", "--target", "t", "-o", tmp_path / "c.npz", "-q").output
    )
    assert (
        "regressor" in run("fit", tmp_path / "r.csv", "--target", "t", "-o", tmp_path / "r.npz", "-q").output
    )
    res = run(
        "fit", tmp_path / "c.csv", "--target", "t", "--task", "regress", "-o", tmp_path / "c2.npz", "-q"
    )
    assert "regressor" in res.output
    r2 = json.loads(run("evaluate", tmp_path / "r.npz", tmp_path / "r.csv", "--json").output)["r2"]
    assert r2 > 0.8


def test_evaluate_without_the_target_column_and_task_without_target_are_usage_errors(tmp_path, wine):
    path, X, _ = wine
    model = tmp_path / "m.npz"
    run("fit", path, "--target", "kind", "--grid", "3x3", "-o", model, "-q")
    plain = tmp_path / "x.csv"
    np.savetxt(plain, X, delimiter=",", header=",".join(f"f{i}" for i in range(13)), comments="")
    res = CliRunner().invoke(main, ["evaluate", str(model), str(plain)])
    assert res.exit_code == 2 and "no column 'kind'" in res.output
    assert run("predict", model, plain).output.splitlines()[0] == "kind"
    res = CliRunner().invoke(main, ["fit", str(path), "--task", "classify", "-o", str(tmp_path / "z.npz")])
    assert res.exit_code == 2 and "--task needs --target" in res.output


def test_dataset_target_fit_and_evaluate(tmp_path):
    model = tmp_path / "d.npz"
    res = run(
        "fit", "--dataset", "digits", "--target", "target", "--grid", "6x6", "--seed", "0", "-o", model, "-q"
    )
    assert "classifier" in res.output
    acc = json.loads(run("evaluate", model, "--dataset", "digits", "--json").output)["accuracy"]
    assert acc > 0.85


def test_missing_ignore_trains_predicts_and_evaluates_with_empty_fields(tmp_path, wine):
    """Before: --target with --missing ignore refused the first empty field (exit 1)."""
    _, X, y = wine
    holes = np.random.default_rng(0).random(X.shape) < 0.1
    path = tmp_path / "holes.csv"
    with open(path, "w") as f:
        f.write(",".join([f"f{i}" for i in range(13)] + ["kind"]) + "\n")
        for row, gaps, t in zip(X, holes, y):
            f.write(",".join("" if g else repr(v) for v, g in zip(row.tolist(), gaps)) + f",kind_{t}\n")
    model = tmp_path / "m.npz"
    args = ("fit", path, "--target", "kind", "--standardize", "--missing", "ignore", "--grid", "5x5")
    res = run(*args, "--seed", "0", "-o", model, "-q")
    assert res.exit_code == 0, res.output
    assert load(model).missing == "ignore"
    out = tmp_path / "pred.csv"
    assert run("predict", model, path, "-o", out).exit_code == 0
    predicted = np.array(out.read_text().splitlines()[1:])
    acc = json.loads(run("evaluate", model, path, "--json").output)["accuracy"]
    assert acc == pytest.approx(np.mean(predicted == np.array([f"kind_{v}" for v in y]))) and acc > 0.85
    default = run("fit", path, "--target", "kind", "-o", tmp_path / "e.npz", "-q")  # missing: error
    assert default.exit_code == 1


# ------------------------------------------------------------------ found by an adversarial pass
def _small(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    labels = np.where(X[:, 0] > 0, "red", "blue")
    return X, labels


@pytest.mark.parametrize(
    "name, text, target",
    [
        # the target by number in a file with a header: predict looked for a column "4"
        ("n.csv", lambda X, y: _table(X, y, ",", header=True), "4"),
        # semicolons, whitespace, a leading comment: predict split only "," / tab first lines
        ("s.txt", lambda X, y: _table(X, y, ";", header=True), "kind"),
        ("w.txt", lambda X, y: _table(X, y, " ", header=True), "kind"),
        ("c.csv", lambda X, y: "# made by hand\n\n" + _table(X, y, ",", header=True), "kind"),
        # no header: the target by its place (DATA has one column more than the inputs)
        ("h.csv", lambda X, y: _table(X, np.where(y == "red", 1, 0), ",", header=False), "4"),
    ],
)
def test_predict_and_evaluate_find_the_target_as_fit_did(tmp_path, name, text, target):
    X, labels = _small(tmp_path)
    path = tmp_path / name
    path.write_text(text(X, labels))
    model = tmp_path / "m.npz"
    res = run("fit", path, "--target", target, "--grid", "3x3", "--epochs", "2", "-q", "-o", model)
    assert res.exit_code == 0, res.output
    trained = float(res.output.split("training accuracy")[1].split()[0])
    res = run("evaluate", model, path, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["accuracy"] == pytest.approx(trained)
    res = run("predict", model, path)
    assert res.exit_code == 0, res.output
    assert len(res.output.splitlines()) == 41


def _table(X, y, delimiter, header):
    lines = [delimiter.join(["x1", "x2", "x3", "kind"])] if header else []
    lines += [delimiter.join([*(f"{v:.3f}" for v in row), str(t)]) for row, t in zip(X, y)]
    return "\n".join(lines) + "\n"


def test_every_map_option_reaches_the_supervised_map(tmp_path):
    """--periodic, --shrink, --learning-rate, --batch-size, --decay and --tol were dropped
    silently with --target: the supervised estimators did not take them."""
    from somvq import KSOMClassifier, KSOMRegressor
    from somvq.cli.fit import _PARAMETERS

    for estimator in (KSOMClassifier(), KSOMRegressor()):
        assert set(_PARAMETERS.values()) <= set(estimator.get_params())
    X, labels = _small(tmp_path)
    path = tmp_path / "d.csv"
    path.write_text(_table(X, labels, ",", header=True))
    model = tmp_path / "m.npz"
    args = [
        "--periodic",
        "--shrink",
        "0.9",
        "--algorithm",
        "minibatch",
        "--batch-size",
        "8",
        "--decay",
        "0.9",
    ]
    res = run("fit", path, "--target", "kind", "--grid", "4x4", "--epochs", "2", *args, "-q", "-o", model)
    assert res.exit_code == 0, res.output
    som = load(model)
    assert som.periodic is True and som.shrink == 0.9 and som.batch_size == 8 and som.decay == 0.9


def test_an_empty_target_field_is_named(tmp_path):
    X, _ = _small(tmp_path)
    y = [f"{v:.3f}" for v in 2 * X[:, 0]]
    y[3] = ""
    path = tmp_path / "r.csv"
    path.write_text(_table(X, np.array(y), ",", header=True))
    res = run("fit", path, "--target", "kind", "-q", "-o", tmp_path / "m.npz")
    assert res.exit_code == 1
    assert (
        "the --target column 'kind' is empty, missing (NA, nan) or infinite in 1 row(s) (data rows 4"
        in res.output
    )
    # NA and nan too: "NA" made a numeric column a 60-class classifier, "nan" reached the
    # estimator as "Input y contains NaN" (found by an adversarial pass)
    for token in ("NA", "nan", "inf"):
        y[3] = token
        path.write_text(_table(X, np.array(y), ",", header=True))
        res = run("fit", path, "--target", "kind", "-q", "-o", tmp_path / "m.npz")
        assert res.exit_code == 1 and f"(data rows 4, the first holds '{token}')" in res.output, res.output
    y[3] = "abc"
    path.write_text(_table(X, np.array(y), ",", header=True))
    res = run("fit", path, "--target", "kind", "--task", "regress", "-q", "-o", tmp_path / "m.npz")
    assert res.exit_code == 1 and "data row 4 holds 'abc'" in res.output


@pytest.mark.parametrize("command", ["plot", "report", "transform", "cluster", "impute"])
def test_commands_for_unsupervised_maps_refuse_a_supervised_one(tmp_path, command):
    X, labels = _small(tmp_path)
    path = tmp_path / "d.csv"
    path.write_text(_table(X, labels, ",", header=True))
    model = tmp_path / "m.npz"
    assert (
        run("fit", path, "--target", "kind", "--standardize", "--epochs", "2", "-q", "-o", model).exit_code
        == 0
    )
    args = {
        "plot": ["-d", tmp_path / "plots"],
        "report": ["-o", tmp_path / "r.html"],
        "transform": [path],
        "cluster": ["-k", "2", path],
        "impute": [path],
    }[command]
    res = run(command, model, *args)
    assert res.exit_code == 2
    assert f"is a supervised map (fitted with --target 'kind'); somvq {command} works on maps" in res.output


def test_predictions_are_text_and_the_extension_is_checked_first(tmp_path):
    X, labels = _small(tmp_path)
    path = tmp_path / "d.csv"
    path.write_text(_table(X, labels, ",", header=True))
    model = tmp_path / "m.npz"
    assert run("fit", path, "--target", "kind", "--epochs", "2", "-q", "-o", model).exit_code == 0
    res = run("predict", model, path, "-o", tmp_path / "p.npy")
    assert res.exit_code == 2 and "use one of .csv, .tsv, .txt" in res.output
    assert not (tmp_path / "p.npy").exists()


def test_files_found_by_an_adversarial_pass(tmp_path):
    """(1) A file without a header whose first row has a hole, `--target N --missing
    ignore`: the target reader took that row as the header (19 rows of 20). (2) Labels and
    names holding a comma were written unquoted, and a --target name with a comma was
    split in two by predict. (3) A name given twice as --target took the first silently."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3)).round(3)
    labels = np.where(X[:, 0] > 0, "A", "B")
    lines = [
        ",".join([*("" if (i == 0 and j == 1) else str(v) for j, v in enumerate(row)), lab])
        for i, (row, lab) in enumerate(zip(X, labels))
    ]
    path = tmp_path / "holes.csv"
    path.write_text("\n".join(lines) + "\n")
    model = tmp_path / "m1.npz"
    result = run(
        "fit", path, *"--target 4 --missing ignore --grid 3x3 --epochs 2 --seed 0 -q".split(), "-o", model
    )
    assert result.exit_code == 0, result.output
    assert "20 rows x 3 features" in result.output
    result = run("predict", model, path)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 21  # the target's name, then 20 labels

    names = ["u", "v", "colour, name"]
    text = (
        ",".join(f'"{n}"' for n in names)
        + "\n"
        + "".join(f'{a},{b},"{"red, dark" if a > 0 else "blue"}"\n' for a, b in X[:, :2])
    )
    path = tmp_path / "comma.csv"
    path.write_text(text)
    model = tmp_path / "m2.npz"
    result = run(
        "fit", path, "--target", "3", "--grid", "3x3", "--epochs", "2", "--seed", "0", "-q", "-o", model
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "pred.csv"
    result = run("predict", model, path, "-o", out)
    assert result.exit_code == 0, result.output
    import csv

    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows[0] == ["colour, name"] and all(len(r) == 1 for r in rows) and len(rows) == 21
    assert {r[0] for r in rows[1:]} <= {"red, dark", "blue"}
    assert run("evaluate", model, path).exit_code == 0

    path = tmp_path / "twice.csv"
    path.write_text("a,lab,lab\n" + "".join(f"{v},x,y\n" for v in X[:, 0]))
    result = run(
        "fit", path, "--target", "lab", "--grid", "2x2", "--epochs", "1", "-q", "-o", tmp_path / "m3.npz"
    )
    assert result.exit_code == 2 and "'lab' names 2 columns" in result.output


def test_supervised_fit_keeps_the_estimators_defaults(tmp_path):
    """Without map options the supervised map got KSOM's defaults (16x32, 10 epochs)
    instead of KSOMClassifier's (grid "auto", 20 epochs), unlike the API."""
    from somvq import KSOMClassifier

    X, labels = _small(tmp_path)
    path = tmp_path / "d.csv"
    path.write_text(_table(X, labels, ",", header=True))
    model = tmp_path / "m.npz"
    assert run("fit", path, "--target", "kind", "--seed", "0", "-q", "-o", model).exit_code == 0
    som = load(model)
    expected = KSOMClassifier(random_state=0).fit(np.round(X, 3), labels).som_
    assert som.n_epochs == 20 == expected.n_epochs
    assert som.grid_.shape == expected.grid_.shape != (16, 32)


def test_supervised_next_hint_runs(tmp_path):
    """The supervised "next" hint dropped --columns and the other input options, and did
    not quote paths with spaces."""

    X, labels = _small(tmp_path)
    path = tmp_path / "with space.csv"
    lines = ["x1;x2;x3;note;kind"] + [
        ";".join([*(f"{v:.3f}" for v in row), "n", str(t)]) for row, t in zip(X, labels)
    ]
    path.write_text("\n".join(lines) + "\n")
    model = tmp_path / "my model.npz"
    res = run(
        "fit", path, "--target", "kind", "--columns", "1-3", "--delimiter", ";", "--grid", "3x3", "-o", model
    )
    assert "accuracy" in run_next_hint(res).output


def test_stdin_with_the_target_column_works_as_a_file(tmp_path, wine):
    """`cat wine.csv | somvq predict m -` failed on the target column (non-numeric)."""
    path, _, _ = wine
    model = tmp_path / "m.npz"
    assert (
        run("fit", path, "--target", "kind", "--grid", "4x4", "--seed", "0", "-q", "-o", model).exit_code == 0
    )
    by_name = run("predict", model, path)
    assert by_name.exit_code == 0, by_name.output
    runner = CliRunner()
    piped = runner.invoke(main, ["predict", str(model), "-"], input=path.read_text(), catch_exceptions=False)
    assert piped.exit_code == 0, piped.output
    assert piped.stdout == by_name.stdout
    scored = runner.invoke(main, ["evaluate", str(model), "-", "--json"], input=path.read_text())
    assert scored.exit_code == 0, scored.output
    assert (
        json.loads(scored.stdout)["accuracy"]
        == json.loads(run("evaluate", model, path, "--json").stdout)["accuracy"]
    )
    # rows without the target column from stdin are predicted as before
    features = "\n".join(line.rsplit(",", 1)[0] for line in path.read_text().splitlines()) + "\n"
    piped = runner.invoke(main, ["predict", str(model), "-"], input=features)
    assert piped.exit_code == 0 and piped.stdout == by_name.stdout
    # a .npy on stdin is read as NumPy, not probed for a text header
    rows = np.loadtxt(features.splitlines()[1:], delimiter=",")
    np.save(tmp_path / "x.npy", rows)
    piped = runner.invoke(main, ["predict", str(model), "-"], input=(tmp_path / "x.npy").read_bytes())
    assert piped.exit_code == 0 and piped.stdout == by_name.stdout, piped.output
    # and so is a .npy under another name (the content decides, as for the other commands)
    (tmp_path / "x.bin").write_bytes((tmp_path / "x.npy").read_bytes())
    named = run("predict", model, tmp_path / "x.bin")
    assert named.exit_code == 0 and named.stdout == by_name.stdout, named.output


def test_integer_classes_written_as_floats_are_the_same_classes(tmp_path):
    """Labels 3/10/17 and the same labels written 3.0/10.0/17.0 (a CSV of integers saved
    through floats) were different texts: evaluate scored 0.0 (found by an adversarial pass)."""
    X, _ = _small(tmp_path)
    y = np.where(X[:, 0] > 0, 17, 3)
    ints, floats = tmp_path / "i.csv", tmp_path / "f.csv"
    ints.write_text(_table(X, y, ",", header=True))
    floats.write_text(_table(X, y.astype(float), ",", header=True))
    model = tmp_path / "m.npz"
    assert (
        run("fit", ints, "--target", "kind", "--grid", "3x3", "--seed", "0", "-q", "-o", model).exit_code == 0
    )
    scores = [
        json.loads(run("evaluate", model, path, "--json").stdout)["accuracy"] for path in (ints, floats)
    ]
    assert scores[0] == scores[1] > 0.5
    # a model fitted on the float-written labels names its classes as integers
    assert (
        run(
            "fit", floats, "--target", "kind", "--grid", "3x3", "--seed", "0", "-q", "-o", model, "--force"
        ).exit_code
        == 0
    )
    assert set(run("predict", model, ints).stdout.split()[1:]) <= {"3", "17"}


def test_target_rows_match_feature_rows_across_a_field_over_two_lines(tmp_path):
    """The target column is split by the feature reader's own records (one function): a
    quoted label over two lines is one row's label, kept as written (glued into "ab" by
    both readers before), and the rows of features and labels pair up."""
    from cli._input import read_text_table
    from cli.report import table_fields

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    labels = ["a" if x < 0 else "b" for x in X[:, 0]]
    path = tmp_path / "q.csv"
    lines = ["x,y,kind"] + [f"{r[0]!r},{r[1]!r},{t}" for r, t in zip(X.tolist(), labels)]
    lines[3] = lines[3].rsplit(",", 1)[0] + ',"a\nb"'
    path.write_text("\n".join(lines) + "\n")
    rows, delimiter = table_fields(str(path), {"delimiter": None})
    assert delimiter == "," and len(rows) == 41 and rows[3][2] == "a\nb"
    features = read_text_table(path.read_bytes(), "q.csv", columns="1-2")
    np.testing.assert_array_equal(features.X, X)
    assert features.line_numbers[2:4] == [4, 6]  # the record over lines 4-5, then line 6
    model = tmp_path / "m.npz"
    res = run("fit", path, "--target", "kind", "--grid", "3x3", "--seed", "0", "-q", "-o", model)
    assert res.exit_code == 0, res.output
    out = tmp_path / "p.csv"
    assert run("predict", model, path, "-o", out).exit_code == 0
