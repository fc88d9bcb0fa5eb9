"""The command line against hostile or careless input (issue 11, section 7).

Each case was reproduced on the code before the fix: column names were ignored (a file
with its columns permuted or renamed gave other BMUs and exit 0), a bad --delimiter or a
missing GPU were "unexpected" errors, a closed pipe blamed the input file, an unwritable
output directory was found after training under a temporary name, and so on.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from somvq.cli import main

SMALL = ["--grid", "3x3", "--epochs", "2", "--seed", "0", "-q"]


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def assert_error(result, exit_code, *fragments):
    """A one-line, plain error on stderr with the given exit code and no traceback."""
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "unexpected" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def write_csv(path, X, names=None, delimiter=","):
    lines = [delimiter.join(names)] if names is not None else []
    lines += [delimiter.join(repr(float(v)) for v in row) for row in X]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    # columns on very different scales, so that a permutation changes the BMUs
    return (rng.normal(size=(80, 3)) * [10.0, 1.0, 0.1] + [0.0, 5.0, -3.0]).round(4)


@pytest.fixture
def model(tmp_path, data):
    path = tmp_path / "m.somvq.npz"
    result = run("fit", write_csv(tmp_path / "abc.csv", data, ["a", "b", "c"]), "-o", path, *SMALL)
    assert result.exit_code == 0, result.output
    return path


def bmus(result):
    assert result.exit_code == 0, result.output
    return [line.split(",")[0] for line in result.stdout.splitlines()[1:]]


# ------------------------------------------------------------------ column names
def test_permuted_header_is_reordered_by_name(tmp_path, model, data):
    reference = bmus(run("predict", model, tmp_path / "abc.csv"))
    permuted = write_csv(tmp_path / "cba.csv", data[:, ::-1], ["c", "b", "a"])
    assert bmus(run("predict", model, permuted)) == reference
    # transform and evaluate read the columns the same way
    assert run("transform", model, permuted).stdout == run("transform", model, tmp_path / "abc.csv").stdout
    assert run("evaluate", model, permuted, "--json").stdout.replace("cba.csv", "X") == run(
        "evaluate", model, tmp_path / "abc.csv", "--json"
    ).stdout.replace("abc.csv", "X")
    # a permutation that is not a reversal, and --columns selecting by name from a wider file
    wide = write_csv(
        tmp_path / "wide.csv",
        np.hstack([data[:, [1]], data[:, [2]], data[:, [0]], data[:, [0]] * 0]),
        ["b", "c", "a", "d"],
    )
    assert bmus(run("predict", model, wide, "--columns", "a,b,c")) == reference
    assert bmus(run("predict", model, wide, "--columns", "c,a,b")) == reference


def test_other_names_are_an_error(tmp_path, model, data):
    renamed = write_csv(tmp_path / "xyz.csv", data, ["x", "y", "z"])
    for command in ("predict", "transform", "evaluate"):
        assert_error(run(command, model, renamed), 1, "column names differ", "[a, b, c]", "[x, y, z]")
    partly = write_csv(tmp_path / "abd.csv", data, ["a", "b", "d"])
    assert_error(run("predict", model, partly), 1, "missing [c]", "not in the model [d]")
    wide = write_csv(tmp_path / "wide.csv", np.hstack([data, data[:, :1]]), ["a", "b", "c", "d"])
    assert_error(run("predict", model, wide), 1, "--columns a,b,c")
    repeated = write_csv(tmp_path / "aab.csv", data, ["a", "a", "b"])
    assert_error(run("predict", model, repeated), 1, "column names differ")


@pytest.mark.parametrize(
    "names, option",
    [
        (["sepal length (cm)", "petal width (cm)", "b"], "'sepal length (cm),petal width (cm),b'"),
        (["x, cm", "y", "z"], "4,2,3"),  # a name with a comma cannot be listed: positions
        (["10", "y", "z"], "4,2,3"),  # nor a number, which --columns reads as a position
    ],
)
def test_the_columns_hint_pastes_into_a_shell(tmp_path, data, names, option):
    """The hint of the column-name mismatch was the names joined by commas, unquoted: with
    "(cm)" in a name, pasting it was a shell syntax error (found by a bug hunt)."""
    import shlex

    fitted = write_csv(tmp_path / "fit.csv", data, [f'"{n}"' if "," in n else n for n in names])
    model = tmp_path / "m.somvq.npz"
    assert run("fit", fitted, "--grid", "2x2", "--seed", "0", "-q", "-o", model).exit_code == 0
    wide = np.hstack([data[:, :1] * 0, data[:, [1, 2, 0]]])
    header = ["other"] + [f'"{n}"' if "," in n else n for n in (names[1], names[2], names[0])]
    wide_file = write_csv(tmp_path / "wide.csv", wide, header)
    line = assert_error(run("predict", model, wide_file), 1, f"--columns {option}.")
    pasted = shlex.split(line.split("--columns ", 1)[1].rstrip("."))
    assert pasted == [option.strip("'")]
    reference = bmus(run("predict", model, fitted))
    assert bmus(run("predict", model, wide_file, "--columns", pasted[0])) == reference


def test_headerless_file_is_taken_by_position(tmp_path, model, data):
    reference = bmus(run("predict", model, tmp_path / "abc.csv"))
    assert bmus(run("predict", model, write_csv(tmp_path / "plain.csv", data))) == reference
    np.save(tmp_path / "plain.npy", data)
    assert bmus(run("predict", model, tmp_path / "plain.npy")) == reference


def test_a_model_fitted_without_names_takes_columns_by_position(tmp_path, data):
    np.save(tmp_path / "train.npy", data)
    path = tmp_path / "m.somvq.npz"
    assert run("fit", tmp_path / "train.npy", "-o", path, *SMALL).exit_code == 0
    reference = bmus(run("predict", path, tmp_path / "train.npy"))
    assert bmus(run("predict", path, write_csv(tmp_path / "xyz.csv", data, ["x", "y", "z"]))) == reference


def test_plot_reads_data_columns_by_name(tmp_path, model, data):
    pytest.importorskip("matplotlib")
    permuted = write_csv(tmp_path / "cba.csv", data[:, ::-1], ["c", "b", "a"])
    result = run("plot", model, permuted, "-k", "hitmap", "-d", tmp_path / "plots")
    assert result.exit_code == 0, result.output
    renamed = write_csv(tmp_path / "xyz.csv", data, ["x", "y", "z"])
    assert_error(run("plot", model, renamed, "-k", "hitmap", "-d", tmp_path / "p2"), 1, "column names differ")


def test_feature_names_of_the_wrong_length_are_a_corrupted_model(tmp_path, data):
    from somvq import KSOM
    from somvq.io import save

    som = KSOM(grid=(2, 2), n_epochs=1, random_state=0).fit(data)
    save(som, tmp_path / "m.somvq.npz", extra={"feature_names": ["a", "b"]})
    assert_error(
        run("predict", tmp_path / "m.somvq.npz", write_csv(tmp_path / "d.csv", data)), 1, "feature names"
    )


# ------------------------------------------------------------------ usage errors
@pytest.mark.parametrize("delimiter", ["", "ab", '"', "\n"])
def test_bad_delimiter_is_a_usage_error(model, tmp_path, delimiter):
    assert_error(run("predict", model, tmp_path / "abc.csv", "--delimiter", delimiter), 2, "--delimiter")


@pytest.mark.parametrize("spelling", ["\\t", "tab", "\t"])
def test_tab_delimiter_spellings(model, tmp_path, data, spelling):
    reference = bmus(run("predict", model, tmp_path / "abc.csv"))
    tabbed = write_csv(tmp_path / "abc.txt", data, ["a", "b", "c"], delimiter="\t")
    assert bmus(run("predict", model, tabbed, "--delimiter", spelling)) == reference


def test_plot_planes_errors_name_planes(model):
    pytest.importorskip("matplotlib")
    line = assert_error(run("plot", model, "--planes", "9"), 2, "--planes", "1..3")
    assert "--columns" not in line
    assert_error(run("plot", model, "--planes", "nope"), 2, "--planes", "a, b, c")


def test_semicolon_csv_hints_at_the_delimiter(tmp_path, model, data):
    semi = write_csv(tmp_path / "semi.csv", data, ["a", "b", "c"], delimiter=";")
    assert_error(run("predict", model, semi), 1, "--delimiter ';'")
    assert_error(run("fit", semi, "-o", tmp_path / "m2.npz", *SMALL), 1, "--delimiter ';'")
    assert bmus(run("predict", model, semi, "--delimiter", ";")) == bmus(
        run("predict", model, tmp_path / "abc.csv")
    )


# ------------------------------------------------------------------ plain messages
def test_cuda_backend_without_a_gpu_is_a_plain_error(tmp_path):
    from somvq import KSOM
    from somvq.exceptions import BackendUnavailableError

    try:
        KSOM(backend="cuda").check_parameters()
    except BackendUnavailableError:
        pass
    else:
        pytest.skip("a CUDA backend is available here")
    assert_error(
        run("fit", "--backend", "cuda", "-o", tmp_path / "m.npz", *SMALL),
        1,
        "--backend cuda",
        "cannot run here",
    )
    assert not (tmp_path / "m.npz").exists()


def test_truncated_archives_are_plain_errors(tmp_path, model, data):
    np.savez(tmp_path / "full.npz", X=data)
    raw = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "trunc.npy").write_bytes(raw[:100])
    assert_error(run("predict", model, tmp_path / "trunc.npy"), 1, "trunc.npy", "truncated or corrupted")
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    assert_error(run("predict", model, tmp_path / "trunc.npz"), 1, "trunc.npz", "truncated or corrupted")
    np.save(tmp_path / "full.npy", data)
    raw = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "half.npy").write_bytes(raw[: len(raw) // 2])
    assert_error(run("predict", model, tmp_path / "half.npy"), 1, "half.npy", "truncated or corrupted")
    # a complete .npz saved under a .npy name is read by its content
    (tmp_path / "archive.npy").write_bytes((tmp_path / "full.npz").read_bytes())
    assert bmus(run("predict", model, tmp_path / "archive.npy")) == bmus(
        run("predict", model, tmp_path / "abc.csv")
    )


def test_closed_pipe_exits_quietly(tmp_path, model):
    big = np.random.default_rng(1).normal(size=(200_000, 3))
    np.save(tmp_path / "big.npy", big)
    for command in ("predict", "transform"):
        producer = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from somvq.cli import main; main()",
                command,
                str(model),
                str(tmp_path / "big.npy"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        head = subprocess.run(["head", "-1"], stdin=producer.stdout, capture_output=True)
        producer.stdout.close()
        stderr = producer.stderr.read()
        producer.wait(timeout=120)
        assert head.stdout.decode().strip() in ("bmu,row,col", ",".join(f"unit_{k}" for k in range(9)))
        assert stderr == b"", stderr.decode()
        assert producer.returncode == 1


def _unwritable_directory(tmp_path):
    """A directory this process cannot create files in (chmod for a user, /sys for root)."""
    candidates = [tmp_path / "read-only", Path("/sys")]
    candidates[0].mkdir()
    candidates[0].chmod(0o555)
    for directory in candidates:
        try:
            fd, probe = tempfile.mkstemp(dir=directory)
        except OSError:
            return directory
        os.close(fd)
        os.unlink(probe)
    pytest.skip("no unwritable directory here")


@pytest.mark.parametrize("where", ["-o", "--output-dir"])
def test_unwritable_output_is_found_before_any_work(tmp_path, where):
    directory = _unwritable_directory(tmp_path)
    # invalid data: the directory is reported first, so it was checked before reading it
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,nan\n")
    target = directory / "m.somvq.npz" if where == "-o" else directory / "sub" / "plots"
    line = assert_error(
        run("fit", bad, where, target, "-q"), 2, f"cannot write into directory {str(directory)!r}"
    )
    assert ".tmp" not in line


def test_unwritable_predict_output(tmp_path, model):
    directory = _unwritable_directory(tmp_path)
    line = assert_error(
        run("predict", model, tmp_path / "abc.csv", "-o", directory / "out.csv"), 2, str(directory)
    )
    assert ".tmp" not in line


def test_atomic_write_names_the_destination(tmp_path):
    from somvq._atomic import atomic_write

    directory = _unwritable_directory(tmp_path)
    with pytest.raises(OSError, match=f"cannot write '{directory / 'x.bin'}'") as info:
        atomic_write(directory / "x.bin", lambda handle: handle.write(b"x"))
    assert ".tmp" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
def test_non_regular_output_is_refused_before_any_work(tmp_path, model):
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    assert_error(run("predict", model, tmp_path / "abc.csv", "-o", fifo, "--force"), 2, "not a regular file")
    model_fifo = tmp_path / "m2.somvq.npz"
    os.mkfifo(model_fifo)
    assert_error(
        run("fit", tmp_path / "abc.csv", "-o", model_fifo, "--force", *SMALL), 2, "not a regular file"
    )
    assert fifo.is_fifo() and model_fifo.is_fifo()


def test_vqvae_unwritable_output_dir_is_found_first(tmp_path):
    pytest.importorskip("torch")
    directory = _unwritable_directory(tmp_path)
    args = ["--dataset", "digits", "--n-samples", "100", "--val-size", "20", "--steps", "1", "-q"]
    assert_error(run("vqvae", "train", *args, "-o", directory / "run"), 2, "--output-dir", str(directory))
    assert_error(
        run(
            "vqvae",
            "compare",
            *args,
            "--variants",
            "none-n1-all",
            "--seeds",
            "0",
            "-o",
            tmp_path / "runs",
            "--report-dir",
            directory / "report",
        ),
        2,
        "--report-dir",
        str(directory),
    )
    assert not (tmp_path / "runs").exists()


def test_object_arrays_are_never_unpickled(tmp_path, model):
    np.save(tmp_path / "objects.npy", np.array([[{"a": 1}, 2, 3]], dtype=object), allow_pickle=True)
    assert_error(run("predict", model, tmp_path / "objects.npy"), 1, "objects.npy", "never unpickled")
