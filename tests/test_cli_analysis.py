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
    # a seed NumPy refuses: a usage error, not a failure after loading (exit 1 before)
    assert_error(run("cluster", model_file, "-k", 2, "--method", "kmeans", "--random-state", -1), 2, "-1")


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
    # k too large for the rows: the nan is explained (it was printed without a word)
    few = run("evaluate", model_file, csv_file, "--all", "--n-neighbors", 50)
    assert few.exit_code == 0 and "trustworthiness (k=50)" in few.output
    assert "need more than 2 x 50 rows (--n-neighbors 50); the data has 90" in few.output


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


def test_plot_writes_unit_labels_from_a_target_column(tmp_path, model_file, blobs, monkeypatch):
    pytest.importorskip("matplotlib")
    from somvq import plotting
    from somvq.cli._model import load_model

    centres = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 5.0, 5.0]])
    names = np.array(["north", "east", "west"])
    y = names[np.argmin(((blobs[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)]
    labelled = tmp_path / "labelled.csv"
    labelled.write_text(
        "\n".join(["a,species,b,c"] + [f"{r[0]},{s},{r[1]},{r[2]}" for r, s in zip(blobs, y)]) + "\n"
    )
    figures = []
    png = plotting._png  # every figure plot_map writes is rendered by it
    monkeypatch.setattr(
        plotting, "_png", lambda figure, *a, **k: figures.append(figure) or png(figure, *a, **k)
    )

    loaded = load_model(str(model_file))
    som = loaded.som
    bmus = som.predict(loaded.scaling.apply(blobs))
    cells = {tuple(np.round(c, 9)): u for u, c in enumerate(plotting.cell_centres(som.grid_))}

    result = run("plot", model_file, labelled, "--target", "species", "-k", "umatrix", "-d", tmp_path / "p")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p" / "umatrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = {cells[tuple(np.round(t.get_position(), 9))]: t.get_text() for t in figures[-1].axes[0].texts}
    expected = {}
    for unit in np.unique(bmus):
        won = sorted(y[bmus == unit])
        expected[int(unit)] = max(set(won), key=lambda s: (won.count(s), [-ord(ch) for ch in s]))
    assert drawn == expected  # only units that won rows, each with its majority label

    result = run(
        "plot", model_file, labelled, "--target", "2", "--fill-labels", "-k", "umatrix", "-d", tmp_path / "q"
    )
    assert result.exit_code == 0, result.output
    filled = [t.get_text() for t in figures[-1].axes[0].texts]
    assert len(filled) == som.grid_.n_units and set(filled) <= set(names)

    assert_error(
        run("plot", model_file, "--target", "species", "-d", tmp_path / "r"), 2, "--target needs DATA"
    )
    assert_error(run("plot", model_file, labelled, "--fill-labels", "-d", tmp_path / "r"), 2, "--target")
    assert_error(
        run("plot", model_file, labelled, "--target", "species", "-k", "hitmap", "-d", tmp_path / "r"),
        2,
        "-k umatrix",
    )
    assert_error(run("plot", model_file, labelled, "--target", "nope", "-d", tmp_path / "r"), 2, "nope")
