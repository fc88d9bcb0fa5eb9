"""`somvq cluster`, `somvq evaluate --all`, `--clusters` of plot and report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from somvq.analysis import cluster_units
from somvq.cli._scaling import Scaling  # noqa: F401  (the CLI package imports)

from .test_cli import assert_error, blobs, csv_file, model_file, run  # noqa: F401


def test_cluster_units_table(model_file):
    from somvq.io import load

    result = run("cluster", model_file, "-k", 3)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "unit,row,col,cluster"
    table = np.array([[int(v) for v in line.split(",")] for line in lines[1:]])
    som = load(model_file)
    np.testing.assert_array_equal(table[:, 0], np.arange(som.grid_.n_units))
    np.testing.assert_array_equal(table[:, 1:3], som.grid_.indices)
    np.testing.assert_array_equal(table[:, 3], cluster_units(som, 3))


@pytest.mark.parametrize("method", ["agglomerative", "kmeans", "umatrix"])
def test_cluster_rows_of_data(tmp_path, model_file, csv_file, blobs, method):
    out = tmp_path / "c.npy"
    result = run("cluster", model_file, "-k", 3, csv_file, "--method", method, "-o", out)
    assert result.exit_code == 0, result.output
    table = np.load(out)
    assert table.shape == (blobs.shape[0], 2)
    from sklearn.metrics import adjusted_rand_score

    truth = np.argmin(
        ((blobs[:, None, :] - np.array([[0, 0, 0], [5, 5, 0], [0, 5, 5]])[None]) ** 2).sum(-1), axis=1
    )
    assert adjusted_rand_score(truth, table[:, 1]) > 0.95


def test_cluster_errors(model_file):
    assert_error(run("cluster", model_file, "-k", 10000), 2, "10000", "units")
    assert run("cluster", model_file).exit_code == 2  # -k is required


def test_evaluate_all(model_file, csv_file):
    result = run("evaluate", model_file, csv_file, "--all", "--json")
    assert result.exit_code == 0, result.output
    values = json.loads(result.output)
    for name in [
        "distortion",
        "topographic_product",
        "trustworthiness",
        "neighbourhood_preservation",
        "combined_error",
    ]:
        assert name in values and np.isfinite(values[name])
    assert values["rank_sample"] == values["n_samples"] == 90
    text = run("evaluate", model_file, csv_file, "--all", "--sample", 20)
    assert text.exit_code == 0 and "trustworthiness (k=5)" in text.output and "20 sampled rows" in text.output
    plain = run("evaluate", model_file, csv_file)
    assert "trustworthiness" not in plain.output


def test_plot_and_report_draw_clusters(tmp_path, model_file):
    pytest.importorskip("matplotlib")
    result = run("plot", model_file, "-k", "umatrix", "--clusters", 3, "-d", tmp_path / "p")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p" / "umatrix.png").stat().st_size > 0
    assert_error(
        run("plot", model_file, "-k", "umatrix", "--clusters", 10000, "-d", tmp_path / "q"), 2, "--clusters"
    )
    pytest.importorskip("bokeh")
    result = run("report", model_file, "--clusters", 3, "-o", tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    assert "3 clusters" in (tmp_path / "r.html").read_text()
