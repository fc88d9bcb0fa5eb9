"""The command line: every command, every documented error, atomic outputs.

Errors must be one line on stderr, exit 2 for usage errors and 1 for data errors, never a
traceback. Maps are tiny (3x4, 2 epochs) so the whole file runs in seconds.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from somvq.cli import main
from somvq.cli._scaling import Scaling

from .test_datasets import make_idx_directory

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--grid", "3x4", "--epochs", "2", "--seed", "0", "-q"]


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def run_next_hint(result):
    """Run the "next" command a successful command printed, as a shell would split it."""
    import shlex

    assert result.exit_code == 0, result.output
    hint = next(line for line in result.output.splitlines() if line.startswith("next"))
    words = shlex.split(hint.split(None, 1)[1])
    assert words[0] == "somvq"
    evaluated = run(*words[1:])
    assert evaluated.exit_code == 0, evaluated.output
    return evaluated


def assert_error(result, exit_code, *fragments):
    """A one-line error on stderr with the given exit code and no traceback."""
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 5.0, 5.0]])
    return (centres[rng.integers(0, 3, 90)] + rng.normal(scale=0.3, size=(90, 3))).round(4)


@pytest.fixture
def csv_file(tmp_path, blobs):
    path = tmp_path / "data.csv"
    lines = ["a,b,c"] + [",".join(str(v) for v in row) for row in blobs]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def model_file(tmp_path, csv_file):
    path = tmp_path / "model.somvq.npz"
    result = run("fit", csv_file, "-o", path, *SMALL)
    assert result.exit_code == 0, result.output
    return path


# ------------------------------------------------------------------------- basics
def test_help_is_instant_and_imports_nothing_heavy():
    code = (
        "import sys; from somvq.cli import main; "
        "from click.testing import CliRunner; r = CliRunner().invoke(main, ['--help']); "
        "assert r.exit_code == 0; "
        "print([m for m in ('numpy', 'numba', 'sklearn', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version():
    from somvq import __version__

    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_every_command_has_help_and_is_documented():
    docs = (ROOT / "docs" / "cli.md").read_text()
    assert set(main.commands) >= {"fit", "predict", "transform", "evaluate", "plot", "info"}
    for name, command in main.commands.items():
        assert command.help and len(command.help.strip()) > 40, name
        result = run(name, "--help")
        assert result.exit_code == 0 and "Usage" in result.output
        assert f"somvq {name}" in docs, f"somvq {name} is not documented in docs/cli.md"
        for param in command.params:
            if isinstance(param, __import__("click").Option):
                assert param.help, f"{name} {param.opts} has no help"
                assert param.opts[-1] in docs, f"{name} {param.opts[-1]} is not documented"


def test_choices_mirror_the_library():
    from somvq.cli._options import DATASET_CHOICES
    from somvq.cli.fit import INIT_CHOICES, NEIGHBOURHOOD_CHOICES
    from somvq.datasets import DATASETS
    from somvq.initialisation import INIT_METHODS
    from somvq.neighbourhoods import NEIGHBOURHOODS

    assert set(NEIGHBOURHOOD_CHOICES) == set(NEIGHBOURHOODS)
    assert set(INIT_CHOICES) == set(INIT_METHODS)
    assert set(DATASET_CHOICES) == set(DATASETS)


# ---------------------------------------------------------------------------- fit
def test_main_job_on_digits(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    result = run("fit", "--grid", "6x8", "--epochs", "2", "--seed", "0")
    assert result.exit_code == 0, result.output
    for fragment in (
        "digits",
        "quantization error",
        "topographic error",
        "used units",
        "time",
        "somvq-output/umatrix.png",
        "somvq-output/hitmap.png",
    ):
        assert fragment in result.stdout
    out = tmp_path / "somvq-output"
    import importlib.util

    report = {"report.html"} if importlib.util.find_spec("bokeh") else set()  # somvq[report] installed
    assert {p.name for p in out.iterdir()} == {
        "model.somvq.npz",
        "umatrix.png",
        "hitmap.png",
        "codebook.png",
    } | report
    assert ("somvq-output/report.html" in result.stdout) == bool(report)
    assert (out / "umatrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A second run does not overwrite without --force, and leaves everything as it was.
    before = (out / "model.somvq.npz").read_bytes()
    assert_error(run("fit", "--grid", "6x8", "--epochs", "1"), 2, "already exists", "--force")
    assert (out / "model.somvq.npz").read_bytes() == before
    assert run("fit", "--grid", "6x8", "--epochs", "1", "--force", "-q").exit_code == 0


def test_fit_options_reach_the_estimator(tmp_path, csv_file):
    from somvq import load

    path = tmp_path / "m.somvq.npz"
    result = run(
        "fit",
        csv_file,
        "-o",
        path,
        "--grid",
        "4x6",
        "--topology",
        "hexagonal",
        "--periodic",
        "--neighbourhood",
        "hard",
        "--algorithm",
        "minibatch",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--shrink",
        "0.2",
        "--decay",
        "0.9",
        "--init",
        "sample",
        "--seed",
        "3",
        "--backend",
        "cpu",
        "-q",
    )
    assert result.exit_code == 0, result.output
    som = load(path)
    params = som.get_params()
    expected = dict(
        grid=(4, 6),
        topology="hexagonal",
        periodic=True,
        neighbourhood="hard",
        algorithm="minibatch",
        n_epochs=3,
        batch_size=16,
        shrink=0.2,
        decay=0.9,
        init="sample",
        random_state=3,
        backend="cpu",
    )
    assert {k: params[k] for k in expected} == expected
    assert not (tmp_path / "somvq-output").exists()  # -o given: no plots unless asked


def test_online_learning_rate_and_radius(tmp_path, csv_file):
    from somvq import load

    path = tmp_path / "m.npz"
    assert (
        run(
            "fit",
            csv_file,
            "-o",
            path,
            *SMALL,
            "--algorithm",
            "online",
            "--learning-rate",
            "0.3",
            "--radius",
            "2",
        ).exit_code
        == 0
    )
    assert load(path).get_params()["learning_rate"] == 0.3
    assert (
        run(
            "fit",
            csv_file,
            "-o",
            path,
            *SMALL,
            "--algorithm",
            "online",
            "--neighbourhood",
            "none",
            "--learning-rate",
            "inverse_count",
            "--force",
        ).exit_code
        == 0
    )


def test_same_seed_same_model(tmp_path, csv_file):
    from somvq import load

    for name in ("a.npz", "b.npz"):
        assert run("fit", csv_file, "-o", tmp_path / name, *SMALL).exit_code == 0
    np.testing.assert_array_equal(load(tmp_path / "a.npz").codebook_, load(tmp_path / "b.npz").codebook_)


@pytest.mark.parametrize("flag", ["--standardize", "--minmax"])
def test_scaling_is_stored_and_applied(tmp_path, csv_file, blobs, flag):
    from somvq import load
    from somvq.io import read_extra

    path = tmp_path / "m.npz"
    assert run("fit", csv_file, "-o", path, *SMALL, flag).exit_code == 0
    som = load(path)  # the plain loader still reads the file
    scaling = Scaling.from_extra(read_extra(path), 3, str(path))
    assert scaling.method == flag.strip("-")
    scaled = scaling.apply(blobs)
    if flag == "--standardize":
        np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-9)
    else:
        np.testing.assert_allclose([scaled.min(axis=0), scaled.max(axis=0)], [[0] * 3, [1] * 3], atol=1e-12)
    result = run("predict", path, csv_file, "--no-coordinates")
    labels = np.loadtxt(result.stdout.splitlines()[1:], dtype=np.int64)
    np.testing.assert_array_equal(labels, som.predict(scaled))


def test_scaling_of_values_whose_squares_overflow(tmp_path):
    """--standardize on values ~1e200 wrote a model no command could load (std overflowed
    to inf); --minmax on +-1e308 (a range beyond float64) said "Input X contains NaN"."""
    (tmp_path / "big.csv").write_text("a,b\n1e200,1\n-1e200,2\n3e200,3\n")
    model = tmp_path / "big.somvq.npz"
    assert (
        run(
            "fit", tmp_path / "big.csv", "--standardize", "--grid", "2x2", "--epochs", "1", "-o", model
        ).exit_code
        == 0
    )
    from somvq.io import read_extra

    scaling = Scaling.from_extra(read_extra(model), 2, str(model))
    assert scaling.offset[0] == pytest.approx(1e200)
    assert scaling.scale[0] == pytest.approx(1e200 * np.array([1.0, -1.0, 3.0]).std())
    assert run("predict", model, tmp_path / "big.csv").exit_code == 0
    (tmp_path / "wide.csv").write_text("a,b\n1e308,1\n-1e308,2\n0,3\n")
    result = run(
        "fit", tmp_path / "wide.csv", "--minmax", "--grid", "2x2", "--epochs", "1", "-o", tmp_path / "w.npz"
    )
    assert_error(result, 1, "--minmax: column 1 spans more than float64 holds", "use --standardize")
    assert not (tmp_path / "w.npz").exists()
    # the usual range: the same statistics, bit for bit, as X.mean / X.std
    X = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32) * 3 + 5
    plain = Scaling.fit("standardize", X)
    np.testing.assert_array_equal(plain.offset, X.mean(axis=0, dtype=np.float64))
    np.testing.assert_array_equal(plain.scale, X.std(axis=0, dtype=np.float64))


def test_fit_with_plots_and_progress(tmp_path, csv_file):
    pytest.importorskip("matplotlib")
    result = run(
        "fit",
        csv_file,
        "-o",
        tmp_path / "m.npz",
        "--plots",
        "-d",
        tmp_path / "pics",
        "--grid",
        "3x4",
        "--epochs",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert "fitting" in result.stderr
    assert {p.name for p in (tmp_path / "pics").iterdir()} == {"umatrix.png", "hitmap.png"}


def test_fits_next_hint_runs(tmp_path, blobs):
    """The printed "next somvq evaluate" dropped the input options: after a fit of
    --columns 1-3 on a file with a text column it failed (found by a docs audit)."""
    path = tmp_path / "with text.csv"
    lines = ["a;b;c;name"] + [";".join([*(str(v) for v in row), "x"]) for row in blobs]
    path.write_text("\n".join(lines) + "\n")
    model = tmp_path / "m.npz"
    result = run(
        "fit", path, "--columns", "1-3", "--delimiter", ";", "-o", model, "--grid", "3x4", "--epochs", "2"
    )
    assert "quantization error" in run_next_hint(result).output


# ----------------------------------------------------------------- input formats
def test_formats_give_the_same_model(tmp_path, blobs):
    from somvq import load

    np.save(tmp_path / "x.npy", blobs)
    np.savez(tmp_path / "x.npz", first=blobs, other=np.zeros(3))
    (tmp_path / "x.tsv").write_text("\n".join("\t".join(map(str, r)) for r in blobs))
    (tmp_path / "x.txt").write_text("# comment\n\n" + "\n".join(" ".join(map(str, r)) for r in blobs))
    (tmp_path / "noext").write_text("\n".join(";".join(map(str, r)) for r in blobs))
    stdin_text = "x,y,z\n" + "\n".join(",".join(map(str, r)) for r in blobs)
    runs = [
        ("x.npy",),
        ("x.npz", "--key", "first"),
        ("x.tsv",),
        ("x.txt",),
        ("noext",),
        ("-",),
    ]
    codebooks = []
    for i, args in enumerate(runs):
        data = args[0] if args[0] == "-" else tmp_path / args[0]
        result = run("fit", data, *args[1:], "-o", tmp_path / f"m{i}.npz", *SMALL, input=stdin_text)
        assert result.exit_code == 0, (args, result.output)
        codebooks.append(load(tmp_path / f"m{i}.npz").codebook_)
    for codebook in codebooks[1:]:
        np.testing.assert_allclose(codebook, codebooks[0])


def test_npy_from_stdin_and_images_are_flattened(tmp_path):
    import io

    images = np.random.default_rng(0).random((20, 4, 4)).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, images)
    result = CliRunner().invoke(
        main, ["fit", "-", "-o", str(tmp_path / "m.npz"), *SMALL], input=buffer.getvalue()
    )
    assert result.exit_code == 0, result.output
    from somvq import load

    som = load(tmp_path / "m.npz")
    assert som.codebook_.shape == (12, 16) and som.codebook_.dtype == np.float32


def test_columns_selection(tmp_path, csv_file, blobs):
    from somvq import load
    from somvq.io import read_extra

    path = tmp_path / "m.npz"
    assert run("fit", csv_file, "--columns", "a,c", "-o", path, *SMALL).exit_code == 0
    assert load(path).n_features_in_ == 2 and read_extra(path)["feature_names"] == ["a", "c"]
    assert run("fit", csv_file, "--columns", "2-3", "-o", path, *SMALL, "--force").exit_code == 0
    assert read_extra(path)["feature_names"] == ["b", "c"]
    assert_error(run("predict", path, csv_file), 1, "fitted on 2 features", "has 3")
    assert run("predict", path, csv_file, "--columns", "b,c").exit_code == 0
    assert_error(
        run("fit", csv_file, "--columns", "zz", "-o", tmp_path / "n.npz"), 2, "no column 'zz'", "a, b, c"
    )
    assert_error(run("fit", csv_file, "--columns", "2-9", "-o", tmp_path / "n.npz"), 2, "outside 1..3")


def test_non_numeric_columns_can_be_skipped(tmp_path):
    path = tmp_path / "iris.csv"
    path.write_text("x,y,species\n1.0,2.0,setosa\n1.5,2.5,versicolor\n3,1,setosa\n4,4,virginica\n")
    assert_error(
        run("fit", path, "-o", tmp_path / "m.npz", *SMALL),
        1,
        "non-numeric value 'setosa'",
        "line 2",
        "species",
    )
    assert (
        run(
            "fit", path, "--columns", "x,y", "-o", tmp_path / "m.npz", "--grid", "2x2", "--epochs", "1", "-q"
        ).exit_code
        == 0
    )


def test_idx_dataset_with_data_dir(tmp_path):
    (tmp_path / "fmnist").mkdir()
    make_idx_directory(tmp_path / "fmnist", n_train=30, n_test=10, shape=(4, 4))
    model = tmp_path / "m.npz"
    result = run("fit", "--dataset", "fashion-mnist", "--data-dir", tmp_path / "fmnist", "-o", model, *SMALL)
    assert result.exit_code == 0, result.output
    assert "30 images 4x4" in result.stdout
    result = run(
        "evaluate",
        model,
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        tmp_path / "fmnist",
        "--split",
        "test",
        "--json",
    )
    assert json.loads(result.stdout)["n_samples"] == 10


def test_missing_dataset_files_say_how_to_get_them(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run(
        "fit", "--dataset", "fashion-mnist", "--data-dir", tmp_path / "empty", "-o", tmp_path / "m.npz"
    )
    assert_error(result, 1, "apt-get install dataset-fashion-mnist")
    assert_error(run("fit", "--dataset", "mnist", "-o", tmp_path / "m.npz"), 1, "--data-dir")


# ------------------------------------------------------- predict / transform / evaluate / info / plot
def test_predict_to_stdout_csv_and_npy(tmp_path, model_file, csv_file, blobs):
    from somvq import load

    som = load(model_file)
    result = run("predict", model_file, csv_file, "--distance")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "bmu,row,col,distance" and len(lines) == 91
    table = np.loadtxt(lines[1:], delimiter=",")
    np.testing.assert_array_equal(table[:, 0], som.predict(blobs))
    np.testing.assert_array_equal(table[:, 1:3], som.bmu_coordinates(blobs))
    np.testing.assert_allclose(table[:, 3], som.transform(blobs).min(axis=1), rtol=1e-6)

    out = tmp_path / "bmus.npy"
    assert run("predict", model_file, csv_file, "-o", out).exit_code == 0
    saved = np.load(out)
    assert saved.dtype == np.int64 and saved.shape == (90, 3)
    assert run("predict", model_file, csv_file, "-o", tmp_path / "bmus.tsv").exit_code == 0
    assert (tmp_path / "bmus.tsv").read_text().startswith("bmu\trow\tcol\n")


def test_transform(tmp_path, model_file, csv_file, blobs):
    from somvq import load

    result = run("transform", model_file, "-", input=csv_file.read_text())
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split(",")[:2] == ["unit_0", "unit_1"] and len(lines[0].split(",")) == 12
    np.testing.assert_allclose(
        np.loadtxt(lines[1:], delimiter=","), load(model_file).transform(blobs), rtol=1e-6, atol=1e-9
    )
    out = tmp_path / "d.npy"
    assert run("transform", model_file, csv_file, "-o", out).exit_code == 0
    assert np.load(out).shape == (90, 12)


def test_evaluate_table_and_json(model_file, csv_file, blobs):
    from somvq import load

    result = run("evaluate", model_file, csv_file)
    assert result.exit_code == 0, result.output
    for fragment in ("quantization error", "topographic error", "perplexity", "used units", "neighbour/all"):
        assert fragment in result.stdout
    values = json.loads(run("evaluate", model_file, csv_file, "--json").stdout)
    som = load(model_file)
    assert values["quantization_error"] == pytest.approx(som.quantization_error(blobs))
    assert values["topographic_error"] == pytest.approx(som.topographic_error(blobs))
    assert 1 <= values["used_units"] <= 12 and values["n_samples"] == 90


def test_info(model_file):
    result = run("info", model_file)
    assert result.exit_code == 0, result.output
    for fragment in ("somvq-model", "3x4 rectangular", "12 units x 3 features", "a, b, c"):
        assert fragment in result.stdout
    meta = json.loads(run("info", model_file, "--json").stdout)
    assert meta["format"] == "somvq-model" and meta["extra"]["feature_names"] == ["a", "b", "c"]


@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
def test_plot(tmp_path, csv_file, topology):
    pytest.importorskip("matplotlib")
    model = tmp_path / "model.somvq.npz"
    assert run("fit", csv_file, "-o", model, *SMALL, "--topology", topology).exit_code == 0
    result = run("plot", model)
    assert result.exit_code == 0, result.output
    out = tmp_path / "model-plots"
    assert {p.name for p in out.iterdir()} == {"umatrix.png", "hitmap.png", "components.png"}
    result = run(
        "plot",
        model,
        csv_file,
        "-k",
        "hitmap",
        "-k",
        "codebook",
        "--image-shape",
        "1x3",
        "-d",
        tmp_path / "p",
        "--planes",
        "a",
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "p").iterdir()} == {"hitmap.png", "codebook.png"}
    assert_error(run("plot", model), 2, "already exists")
    assert run("plot", model, "--force").exit_code == 0
    assert_error(run("plot", model, "--image-shape", "2x2", "-d", tmp_path / "q"), 2, "4 pixels")
    assert_error(run("plot", model, "-k", "codebook", "-d", tmp_path / "q"), 2, "--image-shape")


def test_plot_without_matplotlib(tmp_path, model_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert_error(run("plot", model_file, "-d", tmp_path / "x"), 1, "pip install somvq[plot]")
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize("command", ["fit", "predict", "transform", "evaluate", "plot", "info"])
def test_missing_file_is_a_usage_error(tmp_path, command):
    args = [command, tmp_path / "absent.csv"] if command == "fit" else [command, tmp_path / "absent.npz"]
    if command in ("predict", "transform", "evaluate"):
        args.append(tmp_path / "absent.csv")
    assert_error(run(*args), 2, "does not exist")


def test_directory_as_data_is_a_usage_error(tmp_path):
    assert_error(run("fit", tmp_path, "-o", tmp_path / "m.npz"), 2, "is a directory")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path, csv_file):
    csv_file.chmod(0)
    assert_error(run("fit", csv_file, "-o", tmp_path / "m.npz"), 2, "not readable")


def test_unreadable_content_is_a_data_error(tmp_path, monkeypatch):
    path = tmp_path / "x.csv"
    path.write_text("1,2\n")

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert_error(run("fit", path, "-o", tmp_path / "m.npz"), 1, "cannot read", "permission denied")


@pytest.mark.parametrize(
    "content, fragments",
    [
        ("a,b\n1,2\n3\n5,6\n", ["malformed csv", "line 3", "1 fields, expected 2"]),
        ("1,2\n3,4,5\n", ["line 2", "3 fields, expected 2"]),
        ("a,b\n1,2\n3,x\n", ["non-numeric value 'x'", "line 3", "'b'"]),
        ("a,b\n1,2\n3,\n", ["empty field", "line 3"]),
        ("a,b\n1,2\n3,nan\n", ["nan or infinite", "line 3", "'b'", "or fit with --missing ignore"]),
        (
            "a,b\n1,inf\n",
            ["nan or infinite", "line 2", "impute them first."],
        ),  # no --missing hint: it refuses inf
        ("", ["empty"]),
        ("a,b\n", ["no data rows"]),
        ('a,b\n1,"2\n', ["malformed csv", "line 2"]),
        # a quoted field over two lines is one field: read as 12 before (found by a bug hunt)
        ('x,y\n"1\n2",3\n4,5\n', ["non-numeric value '1\\n2'", "line 2", "'x'"]),
        ('x,y\n1,2\n"3,4\n5,6\n', ["malformed csv at line 3", "unexpected end of data"]),
    ],
)
def test_malformed_csv_is_a_data_error(tmp_path, content, fragments):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert_error(run("fit", path, "-o", tmp_path / "m.npz"), 1, *fragments)
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize(
    "content", ["a,b,\n1,2,\n3,4,\n5,7,\n", "1,2,\n3,4,\n5,7,\n", "a;b;\n1;2;\n3;4;\n5;7;\n"]
)
def test_a_delimiter_ending_every_line_holds_no_column(tmp_path, content):
    """Some exporters end every line with the delimiter: it was read as a third, empty
    column ("an empty field at line 2, column ''")."""
    from cli._input import read_text_table

    table = read_text_table(content.encode(), "t.csv")
    np.testing.assert_array_equal(table.X, [[1, 2], [3, 4], [5, 7]])
    assert table.feature_names in (None, ["a", "b"])
    path = tmp_path / "t.txt"  # the delimiter sniffed, not taken from the extension
    path.write_text(content)
    assert run("fit", path, "--grid", "1x2", "-q", "-o", tmp_path / "m.npz").exit_code == 0
    path = tmp_path / "t.csv"
    path.write_text("a,b,\n1,2,\n3,4\n")  # not every line: the file is not rectangular
    assert_error(run("fit", path, "-o", tmp_path / "n.npz"), 1, "line 3", "2 fields, expected 3")


def test_records_after_a_field_over_two_lines_keep_their_line_numbers(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('x,y,note\n1,2,"two\nline note"\n3,4,ok\n5,oops,ok\n')
    result = run("fit", path, "--columns", "1-2", "-o", tmp_path / "m.npz")
    assert_error(result, 1, "non-numeric value 'oops'", "line 5")
    path.write_text('x,y,note\n1,2,"two\nline note"\n3,4,ok\n5,6,ok\n')
    assert (
        run("fit", path, "--columns", "1-2", "--grid", "1x2", "-q", "-o", tmp_path / "m.npz").exit_code == 0
    )


@pytest.mark.parametrize(
    "array, fragment",
    [
        (np.array([[1.0, np.nan], [2.0, 3.0]]), "row 0"),
        (np.array([[1.0, 2.0], [np.inf, 3.0]]), "row 1"),
        (np.arange(5.0), "shape (5,)"),
        (np.array(["a", "b"]).reshape(2, 1), "numbers"),
        (np.zeros((0, 3)), "no data rows"),
    ],
)
def test_bad_arrays_are_data_errors(tmp_path, array, fragment):
    np.save(tmp_path / "bad.npy", array)
    assert_error(run("fit", tmp_path / "bad.npy", "-o", tmp_path / "m.npz"), 1, fragment)


def test_binary_garbage_and_bad_npz(tmp_path):
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY garbage")
    assert_error(run("fit", tmp_path / "x.npy", "-o", tmp_path / "m.npz"), 1, "not a readable .npy")
    (tmp_path / "x.bin").write_bytes(bytes(range(256)))
    assert_error(run("fit", tmp_path / "x.bin", "-o", tmp_path / "m.npz"), 1, "not utf-8")
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 2)), b=np.zeros((3, 2)))
    assert_error(run("fit", tmp_path / "two.npz", "-o", tmp_path / "m.npz"), 2, "--key", "a, b")
    assert_error(run("fit", tmp_path / "two.npz", "--key", "c", "-o", tmp_path / "m.npz"), 2, "no array 'c'")


def test_feature_count_mismatch(tmp_path, model_file):
    path = tmp_path / "two.csv"
    path.write_text("1,2\n3,4\n")
    for command in ("predict", "transform", "evaluate"):
        assert_error(run(command, model_file, path), 1, "feature-count mismatch", "3 features", "has 2")


@pytest.mark.parametrize("grid", ["16y32", "axb", "0x4", "", "4x-2"])
def test_bad_grid_is_a_usage_error(tmp_path, csv_file, grid):
    assert_error(run("fit", csv_file, "--grid", grid, "-o", tmp_path / "m.npz"), 2, "--grid")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--epochs", "0"], "--epochs"),
        (["--decay", "1"], "--decay"),
        (["--neighbourhood", "round"], "--neighbourhood"),
        (["--learning-rate", "fast"], "inverse_count"),
        (["--learning-rate", "-1"], "> 0"),
        (["--topology", "hexagonal", "--grid", "3x4x5"], "hexagonal grid must have 2 axes"),
        (["--topology", "hexagonal", "--grid", "3x4", "--periodic"], "even number of rows"),
        (["--neighbourhood", "mexican_hat"], "algorithm='online'"),
        (["--standardize", "--minmax"], "exclude each other"),
        (["--dataset", "digits"], "not both"),
    ],
)
def test_invalid_parameters_are_usage_errors(tmp_path, csv_file, args, fragment):
    assert_error(run("fit", csv_file, "-o", tmp_path / "m.npz", *args), 2, fragment)


def test_unknown_option_and_command_are_one_line_usage_errors():
    assert_error(run("fit", "--colour", "red"), 2, "no such option")
    assert_error(run("fitt"), 2, "no such command")


def test_cuda_unavailable_is_a_data_error(tmp_path, csv_file):
    assert_error(run("fit", csv_file, "-o", tmp_path / "m.npz", "--backend", "cuda", "-q"), 1, "cuda")
    assert not (tmp_path / "m.npz").exists()


def test_too_few_samples_for_init_is_a_data_error(tmp_path):
    path = tmp_path / "few.csv"
    path.write_text("1,2\n3,4\n5,6\n")
    assert_error(run("fit", path, "--init", "sample", "--grid", "3x3", "-o", tmp_path / "m.npz", "-q"), 1)


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"", "not a somvq model file"),
        (b"hello, I am a text file", "not a somvq model file"),
        ("foreign", "no __somvq__ record"),
        ("truncated", ""),
        ("newer", "version 99"),
    ],
)
@pytest.mark.parametrize("command", ["predict", "info", "evaluate"])
def test_corrupted_or_foreign_model_is_a_data_error(
    tmp_path, model_file, csv_file, content, fragment, command
):
    bad = tmp_path / "bad.somvq.npz"
    if content == "foreign":
        np.savez(bad, weights=np.zeros((3, 3)))
    elif content == "truncated":
        bad.write_bytes(model_file.read_bytes()[:300])
    elif content == "newer":
        import json as _json

        with np.load(model_file) as archive:
            arrays = {k: archive[k] for k in archive.files}
        meta = _json.loads(arrays["__somvq__"].tobytes())
        meta["format_version"] = 99
        arrays["__somvq__"] = np.frombuffer(_json.dumps(meta).encode(), dtype=np.uint8)
        np.savez(bad, **arrays)
    else:
        bad.write_bytes(content)
    args = [command, bad] + ([csv_file] if command != "info" else [])
    assert_error(run(*args), 1, fragment)


def test_corrupted_scaling_in_model_is_a_data_error(tmp_path, csv_file):
    from somvq import load, save

    path = tmp_path / "m.npz"
    assert run("fit", csv_file, "-o", path, *SMALL).exit_code == 0
    save(
        load(path),
        path,
        extra={"scaling": "standardize", "scaling_offset": np.zeros(2), "scaling_scale": np.ones(2)},
    )
    assert_error(run("predict", path, csv_file), 1, "scaling does not match")


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ({"scaling_offset": {"x": 1}}, "input scaling is not one real number per feature (3)"),
        ({"scaling_offset": "abc"}, "input scaling is not one real number per feature"),
        ({"scaling_scale": np.array(["a", "b", "c"])}, "input scaling is not one real number per feature"),
        ({"scaling_offset": np.zeros(3, dtype=complex)}, "input scaling is not one real number per feature"),
        ({"scaling_offset": np.zeros(3, dtype="datetime64[s]")}, "input scaling is not one real number"),
        ({"scaling": ["x"]}, "unknown input scaling ['x']"),
        ({"image_shape": ["a", "b"]}, "image shape ['a', 'b'] is not two positive ints with 3 pixels"),
        ({"image_shape": [3]}, "image shape [3] is not two positive ints"),
        ({"image_shape": [1, 2]}, "image shape [1, 2] is not two positive ints with 3 pixels"),
    ],
)
@pytest.mark.parametrize("command", ["info", "predict", "plot"])
def test_damaged_command_line_extras_are_a_corrupted_model(tmp_path, csv_file, extra, fragment, command):
    """The command line's own entries of a model file were read unchecked: a damaged one
    gave "unexpected ValueError/IndexError/TypeError", or a conversion error naming no
    file (found by a bug hunt)."""
    from somvq import load, save

    path = tmp_path / "m.npz"
    assert run("fit", csv_file, "-o", path, "--standardize", *SMALL).exit_code == 0
    stored = {"scaling": "standardize", "scaling_offset": np.zeros(3), "scaling_scale": np.ones(3), **extra}
    save(load(path), path, extra=stored)
    args = {"info": [path], "predict": [path, csv_file], "plot": [path, "-d", tmp_path / "plots"]}[command]
    assert_error(run(command, *args), 1, f"{path}: the model file is corrupted: ", fragment)


# ------------------------------------------------------------ atomic outputs
def test_existing_output_needs_force(tmp_path, model_file, csv_file):
    out = tmp_path / "out.csv"
    out.write_text("keep me")
    assert_error(run("predict", model_file, csv_file, "-o", out), 2, "already exists", "--force")
    assert out.read_text() == "keep me"
    assert_error(run("fit", csv_file, "-o", model_file, *SMALL), 2, "already exists")
    assert run("predict", model_file, csv_file, "-o", out, "--force").exit_code == 0
    assert out.read_text().startswith("bmu,row,col")


def test_bad_output_paths(tmp_path, model_file, csv_file):
    assert_error(run("predict", model_file, csv_file, "-o", tmp_path / "x.json"), 2, "unknown extension")
    assert_error(run("predict", model_file, csv_file, "-o", tmp_path / "no" / "x.csv"), 2, "does not exist")


def test_failed_write_leaves_no_partial_file(tmp_path, model_file, csv_file, monkeypatch):
    import somvq.cli._output as output

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output, "_format_table", broken)
    out = tmp_path / "out.csv"
    assert_error(run("predict", model_file, csv_file, "-o", out), 1, "no space left")
    assert list(tmp_path.glob("*out.csv*")) == []


@pytest.mark.parametrize("name", ["m.npz", "umatrix.png", "report.html"])
def test_fit_keeps_a_file_that_appears_while_it_trains(tmp_path, csv_file, monkeypatch, name):
    """fit replaced, without --force, a file created at its output path during training:
    the check at the final rename was missing (the model, plots and report)."""
    pytest.importorskip("matplotlib")
    if name == "report.html":
        pytest.importorskip("bokeh")
    from somvq import KSOM

    fit = KSOM.fit

    def racing(self, *args, **kwargs):
        (tmp_path / name).write_text("keep me")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(KSOM, "fit", racing)
    args = ["fit", csv_file, "-o", tmp_path / "m.npz", "--output-dir", tmp_path, "--plots", "--report"]
    assert_error(run(*args, *SMALL), 2, "already exists", "--force")
    assert (tmp_path / name).read_text() == "keep me"
    monkeypatch.setattr(KSOM, "fit", fit)
    assert run(*args, *SMALL, "--force").exit_code == 0
    assert (tmp_path / name).read_bytes() != b"keep me"


def test_supervised_fit_keeps_a_file_that_appears_while_it_trains(tmp_path, csv_file, monkeypatch):
    from somvq import KSOM

    fit = KSOM.fit

    def racing(self, *args, **kwargs):
        (tmp_path / "m.npz").write_text("keep me")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(KSOM, "fit", racing)
    assert_error(run("fit", csv_file, "--target", "c", "-o", tmp_path / "m.npz", *SMALL), 2, "already exists")
    assert (tmp_path / "m.npz").read_text() == "keep me"
    assert run("fit", csv_file, "--target", "c", "-o", tmp_path / "m.npz", *SMALL, "--force").exit_code == 0


@pytest.mark.parametrize("command", ["predict", "transform"])
def test_a_failed_write_names_the_output_not_the_input(tmp_path, model_file, csv_file, monkeypatch, command):
    """A full disk while writing -o was reported as "Error: data.csv: No space left"."""
    import somvq.cli._output as output

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output, "_format_table", broken)
    out = tmp_path / "out.csv"
    line = assert_error(run(command, model_file, csv_file, "-o", out, "--force"), 1, "no space left")
    assert str(csv_file) not in line and str(out) in line


def test_fit_prints_the_epochs_run_with_tol(tmp_path, csv_file):
    """With --tol the map line printed the requested epochs, not those run (n_iter_)."""
    from somvq.io import load

    model = tmp_path / "m.npz"
    result = run(
        "fit", csv_file, "-o", model, "--grid", "3x4", "--epochs", "50", "--tol", "0.1", "--seed", "0"
    )
    assert result.exit_code == 0, result.output
    n_iter = load(model).n_iter_
    assert n_iter < 50
    assert f", {n_iter} epochs" in result.stdout and "50 epochs" not in result.stdout


def test_interrupted_fit_leaves_no_model(tmp_path, csv_file, monkeypatch):
    from somvq import KSOM

    def interrupted(self, X, y=None, callback=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(KSOM, "fit", interrupted)
    result = run("fit", csv_file, "-o", tmp_path / "m.npz", *SMALL)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert list(tmp_path.glob("m.npz*")) == [] and list(tmp_path.glob(".m.npz*")) == []


def test_atomic_write_no_clobber(tmp_path):
    from somvq._atomic import OutputExistsError, atomic_write

    target = tmp_path / "f.bin"
    atomic_write(target, lambda h: h.write(b"one"), overwrite=False)
    with pytest.raises(OutputExistsError):
        atomic_write(target, lambda h: h.write(b"two"), overwrite=False)
    assert target.read_bytes() == b"one"
    with pytest.raises(RuntimeError):
        atomic_write(
            target, lambda h: (h.write(b"half"), (_ for _ in ()).throw(RuntimeError())), overwrite=True
        )
    assert target.read_bytes() == b"one" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_unexpected_errors_are_one_line(tmp_path, csv_file, monkeypatch):
    import importlib

    fit_module = importlib.import_module("somvq.cli.fit")  # the module, not the command

    def bug(*args, **kwargs):
        raise ZeroDivisionError("oops\nsecond line")

    monkeypatch.setattr(fit_module, "map_metrics", bug)
    monkeypatch.delenv("SOMVQ_DEBUG", raising=False)
    assert_error(
        run("fit", csv_file, "-o", tmp_path / "m.npz", *SMALL),
        1,
        "unexpected ZeroDivisionError",
        "oops second line",
    )


# ---------------------------------------------------------- model file extra
def test_io_extra_round_trip_and_plain_load(tmp_path):
    from somvq import KSOM, load, save
    from somvq.io import read_extra

    X = np.random.default_rng(0).normal(size=(40, 2))
    som = KSOM(grid=(2, 3), n_epochs=1, random_state=0).fit(X)
    save(som, tmp_path / "plain.npz")
    assert read_extra(tmp_path / "plain.npz") == {}
    save(
        som,
        tmp_path / "extra.npz",
        extra={"scaling": "minmax", "scaling_scale": np.ones(2), "names": ["a", "b"]},
    )
    extra = read_extra(tmp_path / "extra.npz")
    assert extra["scaling"] == "minmax" and extra["names"] == ["a", "b"]
    np.testing.assert_array_equal(extra["scaling_scale"], np.ones(2))
    np.testing.assert_array_equal(load(tmp_path / "extra.npz").codebook_, som.codebook_)
    with pytest.raises(TypeError):
        save(som, tmp_path / "bad.npz", extra={"x": np.array([object()])})


def test_cli_module_is_the_cli_folder():
    import somvq.cli

    assert Path(somvq.cli.__file__).parent == ROOT / "cli"
    assert isinstance(somvq.cli.main, __import__("click").Group)


# ------------------------------------------------------------------ missing values (issue 13)
def _holes_csv(path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, 50.0]
    lines = ["a,b,c"]
    tokens = ["", "NA", "nan", "N/A"]
    holes = []
    for i, row in enumerate(X):
        fields = [repr(float(v)) for v in row]
        if i % 3 == 0:
            fields[i % 3 if i % 2 else 1] = tokens[i % 4]
            holes.append((i, i % 3 if i % 2 else 1))
        lines.append(",".join(fields))
    path.write_text("\n".join(lines) + "\n")
    return X, holes


def test_fit_missing_ignore_and_impute(tmp_path):
    data = tmp_path / "holes.csv"
    X, holes = _holes_csv(data)
    model = tmp_path / "m.somvq.npz"
    assert_error(run("fit", data, *SMALL, "-o", model), 1, "empty field", "--missing ignore")
    result = run("fit", data, *SMALL, "--missing", "ignore", "--standardize", "-o", model)
    assert result.exit_code == 0, result.output
    info = run("info", model, "--json")
    assert '"missing": "ignore"' in info.output and '"max_missing": 0.5' in info.output
    out = tmp_path / "filled.csv"
    result = run("impute", model, data, "-o", out)
    assert result.exit_code == 0, result.output
    filled = np.loadtxt(out, delimiter=",", skiprows=1)
    assert filled.shape == X.shape and np.isfinite(filled).all()
    mask = np.zeros(X.shape, dtype=bool)
    for i, j in holes:
        mask[i, j] = True
    np.testing.assert_array_equal(filled[~mask], X[~mask])  # observed entries unchanged, bit for bit
    # the filled values are the BMU's entries, in the data's units
    import somvq
    from somvq.io import read_extra

    som = somvq.load(model)
    scaling = Scaling.from_extra(read_extra(model), 3, str(model))
    Xn = np.where(mask, np.nan, X)
    expected = scaling.inverse(som.impute(scaling.apply(Xn)))
    np.testing.assert_allclose(filled[mask], expected[mask], rtol=1e-6)


def test_impute_keeps_the_input_columns_and_their_digits(tmp_path):
    """Found by an adversarial pass: DATA's columns in another order came back in the
    model's order under DATA's header, and observed values were rounded to 9 digits."""
    data = tmp_path / "m.csv"
    data.write_text("a,b,c\n0,100,1000\n1,,1001\n2,102,1002\n3,103,\n4,104,1004\n5,105,1005\n")
    model = tmp_path / "m.somvq.npz"
    assert (
        run("fit", data, "--grid", "2x2", "--epochs", "2", "--missing", "ignore", "-q", "-o", model).exit_code
        == 0
    )
    (tmp_path / "rev.csv").write_text("c,b,a\n1001,NA,1\n1234567890123,7,0.1\n")
    result = run("impute", model, tmp_path / "rev.csv")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "c,b,a"
    assert lines[1].startswith("1001,") and lines[1].endswith(",1")
    assert lines[2] == "1234567890123,7,0.1"
    assert "filled 1 missing value(s) in 1 row(s); wrote 2 rows x 3 columns to stdout" in result.output


def test_impute_npy_and_errors(tmp_path):
    X = np.random.default_rng(1).normal(size=(40, 3))
    X[::5, 2] = np.nan
    np.save(tmp_path / "h.npy", X)
    model = tmp_path / "m.somvq.npz"
    assert run("fit", tmp_path / "h.npy", *SMALL, "--missing", "ignore", "-o", model).exit_code == 0
    result = run("impute", model, tmp_path / "h.npy", "-o", tmp_path / "f.npy")
    assert result.exit_code == 0, result.output
    filled = np.load(tmp_path / "f.npy")
    assert not np.isnan(filled).any()
    dense = tmp_path / "dense.somvq.npz"
    assert run("fit", "--dataset", "wine", *SMALL, "-o", dense).exit_code == 0
    assert_error(run("impute", dense, tmp_path / "h.npy"), 1, "missing='error'", "--missing ignore")
    X[3, 0] = np.inf
    np.save(tmp_path / "inf.npy", X)
    assert_error(run("impute", model, tmp_path / "inf.npy"), 1, "infinite")
    X[3, 0] = 0.0
    X[7] = np.nan
    np.save(tmp_path / "empty.npy", X)
    assert_error(run("impute", model, tmp_path / "empty.npy"), 1, "no observed feature", "row 7 (0-based)")
    assert_error(
        run(
            "fit",
            tmp_path / "empty.npy",
            *SMALL,
            "--missing",
            "ignore",
            "--max-missing",
            "0.2",
            "-o",
            tmp_path / "x.somvq.npz",
        ),
        1,
        "no observed feature",
    )


def test_rows_with_too_many_holes_are_named_by_their_line(tmp_path):
    # The library names 0-based rows; in a text file the command line names the line (a
    # header and a comment before the data: row 3 is line 5).
    data = tmp_path / "holes.csv"
    data.write_text("a,b,c,d\n# measured\n1,2,3,4\n2,3,4,5\n3,,,\n4,5,6,7\n,,,\n")
    model = tmp_path / "m.somvq.npz"
    fit = ["fit", data, *SMALL, "--missing", "ignore", "-o", model]
    assert_error(
        run(*fit), 1, "holes.csv: 1 row(s) with no observed feature (all missing), the first at line 7"
    )
    data.write_text("a,b,c,d\n# measured\n1,2,3,4\n2,3,4,5\n3,,,\n4,5,6,7\n")
    assert_error(
        run(*fit, "--max-missing", "0.5"),
        1,
        "1 row(s) missing more than --max-missing 0.5 of their 4 features, the first at line 5",
        "raise --max-missing",
    )
    assert run(*fit, "--max-missing", "0.75").exit_code == 0  # 3 of 4 missing: exactly at the limit
    data.write_text("a,b,c,d\n1,2,3,4\n,,,\n")
    assert_error(
        run("predict", model, data), 1, "1 row(s) with no observed feature (all missing), the first at line 3"
    )


def test_predict_transform_evaluate_accept_missing_on_an_ignore_model(tmp_path):
    X = np.random.default_rng(2).normal(size=(40, 3))
    X[::4, 1] = np.nan
    np.save(tmp_path / "h.npy", X)
    model = tmp_path / "m.somvq.npz"
    assert run("fit", tmp_path / "h.npy", *SMALL, "--missing", "ignore", "-o", model).exit_code == 0
    import somvq

    som = somvq.load(model)
    result = run("predict", model, tmp_path / "h.npy", "--distance", "-o", tmp_path / "p.npy")
    assert result.exit_code == 0, result.output
    table = np.load(tmp_path / "p.npy")
    np.testing.assert_array_equal(table[:, 0], som.predict(X))
    np.testing.assert_allclose(table[:, -1], np.sqrt(somvq.missing.masked_assign(X, som.codebook_)[1]))
    assert run("transform", model, tmp_path / "h.npy", "-o", tmp_path / "t.npy").exit_code == 0
    np.testing.assert_allclose(np.load(tmp_path / "t.npy"), som.transform(X), rtol=1e-6)
    assert run("evaluate", model, tmp_path / "h.npy").exit_code == 0
    dense = tmp_path / "dense.somvq.npz"
    assert run("fit", "--dataset", "wine", "--columns", "1-3", *SMALL, "-o", dense).exit_code == 0
    assert_error(run("predict", dense, tmp_path / "h.npy"), 1, "nan")


def test_cluster_plot_report_and_evaluate_all_accept_missing_on_an_ignore_model(tmp_path):
    # They refused the holes that predict/transform/evaluate accept ("an empty field ...
    # --missing ignore"), and `evaluate --all` failed with "cannot reshape array".
    pytest.importorskip("matplotlib")
    X = np.random.default_rng(3).normal(size=(60, 3))
    X[::4, 1] = np.nan
    np.save(tmp_path / "h.npy", X)
    model = tmp_path / "m.somvq.npz"
    assert run("fit", tmp_path / "h.npy", *SMALL, "--missing", "ignore", "-o", model).exit_code == 0
    import somvq

    som = somvq.load(model)
    result = run("cluster", model, "-k", "2", tmp_path / "h.npy", "-o", tmp_path / "c.npy")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy")[:, 0], som.predict(X))
    result = run("plot", model, tmp_path / "h.npy", "-k", "hitmap", "-d", tmp_path / "pictures")
    assert result.exit_code == 0, result.output
    result = run("report", model, tmp_path / "h.npy", "-o", tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    result = run("evaluate", model, tmp_path / "h.npy", "--all")
    assert result.exit_code == 0, result.output
    assert "the 45 rows without missing values" in result.output
    X[1::4, 0] = np.nan
    X[2::4, 2] = np.nan
    X[3::4, 0] = np.nan
    np.save(tmp_path / "all.npy", X)
    assert_error(
        run("evaluate", model, tmp_path / "all.npy", "--all"), 1, "rows without missing values", "0 of 60"
    )


def test_written_names_with_commas_read_back_and_european_files_get_the_hint(tmp_path):
    """impute wrote a header name holding a comma unquoted (its own output did not read
    back); a semicolon file with decimal commas got no --delimiter hint; an empty .npz was
    a usage error (found by an adversarial pass)."""
    path = tmp_path / "names.csv"
    path.write_text('"x, cm",y,z\n1,2,3\n4,,6\n7,8,9\n2,3,4\n')
    model = tmp_path / "m.npz"
    result = run("fit", path, *"--missing ignore --grid 2x2 --epochs 2 -q".split(), "-o", model)
    assert result.exit_code == 0, result.output
    filled = tmp_path / "filled.csv"
    assert run("impute", model, path, "-o", filled).exit_code == 0
    assert filled.read_text().splitlines()[0] == '"x, cm",y,z'
    result = run("predict", model, filled)
    assert result.exit_code == 0, result.output
    euro = tmp_path / "euro.csv"
    euro.write_text("a;b;c\n1,5;2,0;3,1\n")
    assert_error(run("predict", model, euro), 1, "4 fields, expected 1", "--delimiter ';'")
    empty = tmp_path / "empty.npz"
    np.savez(empty)
    assert_error(run("predict", model, empty), 1, "no array in it")
