"""The HTML report without a browser: per-unit facts against NumPy references, cluster
boundaries on both geometries, bad input, the missing extra, the CLI command and
``somvq fit``'s report. What the page looks like in a browser: test_report_browser.py."""

import math
import subprocess
import sys
import zlib

import numpy as np
import pytest
from click.testing import CliRunner

from somvq import KSOM
from somvq.cli import main

from .test_cli import assert_error

bokeh = pytest.importorskip("bokeh", reason="the report needs bokeh: pip install somvq[report]")

from somvq import reporting  # noqa: E402
from somvq._atomic import OutputExistsError  # noqa: E402


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=4.0, size=(4, 9))
    y = rng.integers(0, 4, 200)
    return centres[y] + rng.normal(size=(200, 9)), y


def fitted(X, **params):
    return KSOM(grid=params.pop("grid", (4, 5)), n_epochs=2, random_state=0, **params).fit(X)


def naive_centres(rows, cols, hexagonal):
    """Plane centres written out unit by unit: row 0 on top, odd hexagon rows shifted right."""
    out = []
    for r in range(rows):
        for c in range(cols):
            if hexagonal:
                out.append((c + 0.5 * (r % 2), -r * math.sqrt(3) / 2))
            else:
                out.append((float(c), float(-r)))
    return np.array(out)


# ------------------------------------------------------------------- per-unit facts
@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
def test_unit_table_matches_a_naive_reference(data, topology):
    X, y = data
    som = fitted(X, topology=topology)
    table = reporting.unit_table(som, X, y)
    codebook = som.codebook_
    bmus = [int(np.argmin([np.sum((x - w) ** 2) for w in codebook])) for x in X]
    for unit in range(20):
        mine = [i for i, b in enumerate(bmus) if b == unit]
        assert table["hits"][unit] == len(mine)
        if mine:
            expected_qe = np.mean([np.sqrt(np.sum((X[i] - codebook[unit]) ** 2)) for i in mine])
            assert table["qe"][unit] == pytest.approx(expected_qe, rel=1e-9)
            counts = {}
            for i in mine:
                counts[y[i]] = counts.get(y[i], 0) + 1
            top = max(counts.values())
            assert int(table["label"][unit]) in [k for k, v in counts.items() if v == top]
            assert table["purity"][unit] == pytest.approx(top / len(mine))
            assert table["mix"][unit].startswith(f"{table['label'][unit]}: {top} ")
        else:
            assert np.isnan(table["qe"][unit])
            assert table["label"][unit] == "no hits" and table["mix"][unit] == ""
    centres = naive_centres(4, 5, topology == "hexagonal")
    np.testing.assert_allclose(np.column_stack([table["x"], table["y"]]), centres, atol=1e-12)
    assert list(table["row"]) == [u // 5 for u in range(20)] and list(table["col"]) == [
        u % 5 for u in range(20)
    ]
    np.testing.assert_allclose(table["umatrix"], np.ravel(som.umatrix()))  # (tested in test_grids)


def test_label_mix_lists_three_labels_then_the_rest():
    bmus = np.array([0] * 10)
    y = np.array(list("aaaabbbccd"))
    majority, purity, mix = reporting._label_mix(bmus, y, 2)
    assert majority == ["a", "no hits"] and purity[0] == 0.4
    assert mix[0] == "a: 4 (40%), b: 3 (30%), c: 2 (20%), other: 1"


def test_a_label_reading_no_hits_is_a_label(tmp_path):
    """Units whose majority label was the text "no hits" were drawn grey like empty units,
    and the header counted the units' majority labels instead of y's (found by an
    adversarial pass)."""
    X = np.random.default_rng(0).normal(size=(30, 4))
    som = KSOM(grid=(3, 3), n_epochs=1, random_state=0).fit(X)
    path = reporting.report(som, X, ["no hits"] * 15 + ["a"] * 15, tmp_path / "r.html")
    page = path.read_text()
    assert "2 labels" in page and "(no hits)" in page  # the empty units' key, apart from the label
    page = reporting.report(som, X, list("abcd") * 7 + ["a", "a"], tmp_path / "r4.html").read_text()
    assert "4 labels" in page


def test_without_data_the_training_hits_are_shown(data):
    X, _ = data
    som = fitted(X)
    table = reporting.unit_table(som)
    np.testing.assert_array_equal(table["hits"], np.bincount(som.predict(X), minlength=20))


def test_codebook_images_are_pngs_of_the_vectors():
    PIL = pytest.importorskip("PIL.Image")
    import base64
    import io

    codebook = np.arange(12.0).reshape(2, 6)  # two 2x3 "images", one scale for both
    uris = reporting._image_uris(codebook, (2, 3))
    pixels = [np.asarray(PIL.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1])))) for u in uris]
    expected = np.round(255 * (1 - np.arange(12.0) / 11)).astype(np.uint8).reshape(2, 2, 3)
    np.testing.assert_array_equal(np.stack(pixels), expected)
    assert zlib.crc32(b"") == 0  # (the PNG chunks' checksums use zlib's crc32)


# ----------------------------------------------------------------- cluster borders
def naive_borders(rows, cols, hexagonal, clusters):
    """Shared edges of differently clustered cells, from a double loop over the centres."""
    centres = naive_centres(rows, cols, hexagonal)
    half = 0.5 / math.sqrt(3) if hexagonal else 0.5  # half a hexagon side / half a square side
    edges = set()
    for a in range(len(centres)):
        for b in range(a + 1, len(centres)):
            d = centres[b] - centres[a]
            if abs(np.hypot(*d) - 1) < 1e-9 and clusters[a] != clusters[b]:
                m = (centres[a] + centres[b]) / 2
                n = np.array([-d[1], d[0]]) * half
                ends = sorted([tuple(np.round(m - n, 9)), tuple(np.round(m + n, 9))])
                edges.add(tuple(ends))
    return edges


@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
@pytest.mark.parametrize("periodic", [False, True])
def test_boundaries_are_the_shared_edges_of_different_clusters(topology, periodic):
    from somvq.grids import Grid

    grid = Grid((4, 6), topology, periodic)
    clusters = np.array([0, 0, 0, 1, 1, 1] * 2 + [2, 2, 1, 1, 1, 1] * 2)  # hand-made: 3 regions
    x0, y0, x1, y1 = reporting.boundary_segments(grid, clusters)
    mine = {
        tuple(sorted([(round(a, 9), round(b, 9)), (round(c, 9), round(d, 9))]))
        for a, b, c, d in zip(x0, y0, x1, y1)
    }
    expected = naive_borders(4, 6, topology == "hexagonal", clusters)
    assert mine == expected and len(x0) == len(expected) > 0
    if topology == "rectangular":  # the exact edges of the left block: x = 2.5, y in [-1.5, 0.5]
        assert ((2.5, -1.5), (2.5, -0.5)) in mine and ((2.5, -0.5), (2.5, 0.5)) in mine
    # One cluster: nothing to draw.
    assert len(reporting.boundary_segments(grid, np.zeros(24, int))[0]) == 0


# ----------------------------------------------------------------------- the page
@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
def test_the_page_is_self_contained(tmp_path, data, topology):
    X, y = data
    som = fitted(X, topology=topology, periodic=topology == "hexagonal")
    path = reporting.report(
        som,
        X,
        y,
        tmp_path / "r.html",
        image_shape=(3, 3),
        clusters=np.arange(20) % 2,
        feature_names=[f"<f{i}>" for i in range(9)],
        title="<b>mine</b>",
    )
    text = path.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html>")
    lowered = text.lower()
    assert "<script src" not in lowered and "<link" not in lowered and "@import" not in lowered
    assert "cdn.bokeh.org" not in lowered
    assert f"{topology} grid" in text
    assert ("periodic (a torus)" in text) == (topology == "hexagonal")
    assert "&lt;b&gt;mine&lt;/b&gt;" in text  # the heading is text, not markup
    assert "quantization error" in text and "topographic error" in text and "n_epochs" in text
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # atomic: no temporary left


def test_one_axis_grids_are_drawn_as_a_row(tmp_path, data):
    X, _ = data
    som = fitted(X, grid=(7,))
    assert reporting.report(som, X, path=tmp_path / "line.html").stat().st_size > 0


def test_existing_file_is_kept_without_overwrite(tmp_path, data):
    X, _ = data
    target = tmp_path / "r.html"
    target.write_text("keep")
    with pytest.raises(OutputExistsError):
        reporting.report(fitted(X), X, path=target, overwrite=False)
    assert target.read_text() == "keep"


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        (dict(X=np.zeros((5, 4))), ["X has shape (5, 4)", "9 features"]),
        (dict(X="data", y=np.zeros(7)), ["y has shape (7,)", "one label per row of X (200)"]),
        (dict(y=np.zeros(200)), ["labels y need the samples X"]),
        (dict(image_shape=(2, 2)), ["image_shape=(2, 2)", "9 features"]),
        (dict(image_shape=(9,)), ["image_shape=(9,)"]),
        (dict(clusters=np.zeros(19)), ["clusters has shape (19,)", "20"]),
        (dict(feature_names=["a"]), ["1 feature names for 9 features"]),
        (dict(X=np.full((3, 9), np.nan)), ["NaN"]),
        (dict(X="data", y=np.r_[np.zeros(199), np.nan]), ["y holds NaN at row 199"]),
    ],
)
def test_bad_input_is_named(tmp_path, data, kwargs, fragments):
    X, _ = data
    if isinstance(kwargs.get("X"), str):
        kwargs = {**kwargs, "X": X}
    with pytest.raises(ValueError) as info:
        reporting.report(fitted(X), path=tmp_path / "r.html", **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert not (tmp_path / "r.html").exists()


def test_a_continuous_target_is_refused(tmp_path, data):
    X, _ = data
    som = fitted(X)
    X3 = np.concatenate([X, X])[:300]
    with pytest.raises(ValueError, match=r"y has 300 distinct values; .* at most 256"):
        reporting.report(som, X3, np.arange(300) / 7, path=tmp_path / "r.html")
    assert reporting.report(som, X3, np.arange(300) % 256, path=tmp_path / "r.html").exists()


def test_grids_of_three_axes_and_unfitted_maps_are_refused(tmp_path, data):
    X, _ = data
    with pytest.raises(ValueError, match="1 or 2 axes"):
        reporting.report(fitted(X, grid=(2, 2, 2)), path=tmp_path / "r.html")
    with pytest.raises(ValueError, match="fitted"):
        reporting.report(KSOM(grid=(2, 2)), path=tmp_path / "r.html")
    # A fitted supervised map is not "unfitted": the error says what to pass instead.
    from somvq import KSOMClassifier

    clf = KSOMClassifier(grid=(3, 3), n_epochs=2, random_state=0).fit(X, (X[:, 0] > 0).astype(int))
    with pytest.raises(ValueError, match=r"a KSOM\), got a fitted KSOMClassifier: supervised maps are not"):
        reporting.report(clf, X, path=tmp_path / "r.html")


def test_missing_bokeh_says_how_to_install_it(tmp_path, data, monkeypatch):
    X, _ = data
    som = fitted(X)
    monkeypatch.setitem(sys.modules, "bokeh", None)  # import bokeh -> ImportError
    with pytest.raises(ImportError, match=r"pip install somvq\[report\]") as info:
        reporting.report(som, X, path=tmp_path / "r.html")
    assert isinstance(info.value, reporting.ReportUnavailableError)
    result = CliRunner().invoke(main, ["report", str(tmp_path / "none.npz")], catch_exceptions=False)
    assert result.exit_code == 2  # the model is checked first (it does not exist)
    model = tmp_path / "m.somvq.npz"
    from somvq.io import save

    save(som, model)
    result = CliRunner().invoke(main, ["report", str(model)], catch_exceptions=False)
    assert_error(result, 1, "needs bokeh", "pip install somvq[report]")
    assert not list(tmp_path.glob("*.html"))


def test_report_is_a_lazy_top_level_name():
    import somvq

    assert somvq.report is reporting.report and "report" in dir(somvq)
    code = "import sys, somvq; assert 'bokeh' not in sys.modules and 'somvq.reporting' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- CLI
def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def labelled_csv(tmp_path, data):
    X, y = data
    path = tmp_path / "data.csv"
    names = [f"f{i}" for i in range(9)]
    lines = [",".join(names[:4] + ["kind"] + names[4:])]
    for row, label in zip(X.round(5), y):
        fields = [str(v) for v in row]
        lines.append(",".join(fields[:4] + [f"class-{label}"] + fields[4:]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_report_with_a_target_column(tmp_path, labelled_csv, data):
    X, y = data
    model = tmp_path / "m.somvq.npz"
    result = run(
        "fit",
        labelled_csv,
        "--columns",
        "1-4,6-10",
        "--grid",
        "4x5",
        "--epochs",
        "2",
        "--seed",
        "0",
        "-q",
        "-o",
        model,
    )
    assert result.exit_code == 0, result.output
    result = run("report", model, labelled_csv, "--target", "kind")
    assert result.exit_code == 0, result.output
    out = tmp_path / "m-report.html"
    assert result.output.strip() == f"report   {out}"
    text = out.read_text()
    assert "class-0" in text and "f8" in text  # the labels, and feature names for the planes
    # Each unit's label mix, as the library counts it from the same rows and labels.
    from somvq.io import load

    expected = reporting.unit_table(load(model), X.round(5), np.array([f"class-{v}" for v in y]))
    mixes = [mix for mix in expected["mix"] if mix]
    assert mixes and all(f'"{mix}"' in text for mix in mixes)
    # By number, into a named file; and the errors.
    assert run("report", model, labelled_csv, "--target", "5", "-o", tmp_path / "b.html").exit_code == 0
    assert_error(
        run("report", model, labelled_csv, "--target", "5", "-o", tmp_path / "b.html"), 2, "already exists"
    )
    assert_error(
        run("report", model, labelled_csv, "--target", "nope", "-o", tmp_path / "c.html"),
        2,
        "no column 'nope'",
    )
    assert_error(
        run("report", model, labelled_csv, "--target", "1-2", "-o", tmp_path / "c.html"), 2, "one column"
    )
    assert_error(
        run("report", model, "--target", "kind", "-o", tmp_path / "c.html"), 2, "--target needs DATA"
    )
    assert_error(
        run("report", model, labelled_csv, "-o", tmp_path / "c.html"), 1, "non-numeric value 'class-"
    )
    assert_error(run("report", model, "-o", tmp_path / "c.txt"), 2, "unknown extension")
    assert_error(
        run("report", model, "--image-shape", "4x4", "-o", tmp_path / "c.html"), 2, "16 pixels", "9 features"
    )
    assert_error(run("report", model, "--image-shape", "4x4x4", "-o", tmp_path / "c.html"), 2, "two sizes")
    assert not (tmp_path / "c.html").exists()


def test_cli_report_target_of_a_headerless_file(tmp_path):
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f} {b:.3f} {'left' if a < 0 else 'right'}" for a, b in rng.normal(size=(40, 2))]
    (tmp_path / "plain.txt").write_text("\n".join(rows) + "\n")
    model = tmp_path / "m.somvq.npz"
    assert (
        run(
            "fit",
            tmp_path / "plain.txt",
            "--columns",
            "1,2",
            "--grid",
            "2x3",
            "--epochs",
            "1",
            "-q",
            "-o",
            model,
        ).exit_code
        == 0
    )
    result = run("report", model, tmp_path / "plain.txt", "--target", "3")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "m-report.html").read_text()
    assert "40 rows x 2 features" in text and "right" in text  # no row taken for a header


def test_cli_report_wrong_feature_count_is_a_data_error(tmp_path, labelled_csv):
    model = tmp_path / "m.somvq.npz"
    assert (
        run(
            "fit", labelled_csv, "--columns", "1-4", "--grid", "2x2", "--epochs", "1", "-q", "-o", model
        ).exit_code
        == 0
    )
    (tmp_path / "plain.csv").write_text("1,2,3\n4,5,6\n")
    assert_error(
        run("report", model, tmp_path / "plain.csv", "-o", tmp_path / "r.html"), 1, "4 features", "has 3"
    )


def test_cli_report_on_digits_with_images(tmp_path):
    out = tmp_path / "out"
    result = run("fit", "--grid", "4x4", "--epochs", "1", "--seed", "0", "-q", "-d", out, "--no-plots")
    assert result.exit_code == 0, result.output
    assert f"report   {out / 'report.html'}" in result.output  # fit says where its report went
    assert "majority label" in (out / "report.html").read_text()  # a data set's classes are its labels
    result = run(
        "report", out / "model.somvq.npz", "--dataset", "digits", "--target", "target", "--n-samples", "300"
    )
    assert result.exit_code == 0, result.output
    text = (out / "model-report.html").read_text()
    assert text.count("data:image/png;base64,") >= 16 and "pixel_0_0" in text
    assert_error(
        run("report", out / "model.somvq.npz", "--dataset", "digits", "--target", "y", "--force"),
        2,
        "--target target",
    )


def test_fit_report_flag(tmp_path, labelled_csv, monkeypatch):
    model = tmp_path / "m.somvq.npz"
    args = [
        "fit",
        labelled_csv,
        "--columns",
        "1-4",
        "--grid",
        "2x2",
        "--epochs",
        "1",
        "-q",
        "-o",
        model,
        "-d",
        tmp_path,
    ]
    result = run(*args)
    assert (
        result.exit_code == 0 and "report   " not in result.output and not (tmp_path / "report.html").exists()
    )
    result = run(*args, "--report", "--force")
    assert result.exit_code == 0 and (tmp_path / "report.html").exists()
    assert "majority label" not in (tmp_path / "report.html").read_text()  # a file: no labels
    assert f"report   {tmp_path / 'report.html'}" in result.output
    import importlib

    fit_module = importlib.import_module("somvq.cli.fit")  # (somvq.cli.fit the name is the command)
    monkeypatch.setattr(fit_module, "_have_bokeh", lambda: False)
    assert_error(run(*args, "--report", "--force"), 1, "--report needs bokeh", "pip install somvq[report]")
    result = run(
        "fit", labelled_csv, "--columns", "1-4", "--grid", "2x2", "--epochs", "1", "-q", "-d", tmp_path / "d"
    )
    assert result.exit_code == 0 and not (tmp_path / "d" / "report.html").exists()
    assert "report skipped, bokeh is not installed" in result.stderr


def test_fit_on_a_three_axis_grid_skips_the_pictures(tmp_path, labelled_csv):
    args = [
        "fit",
        labelled_csv,
        "--columns",
        "1-4",
        "--grid",
        "2x2x2",
        "--epochs",
        "1",
        "-q",
        "-d",
        tmp_path / "o",
    ]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"model.somvq.npz"}
    assert "plots and report skipped, a 3-axis grid cannot be drawn" in result.stderr
    assert_error(run(*args, "--force", "--report"), 2, "--report draws grids of 1 or 2 axes", "3")


def test_old_bokeh_is_refused_with_the_extra_named(monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "bokeh", types.SimpleNamespace(__version__="2.4.3"))
    with pytest.raises(
        reporting.ReportUnavailableError, match=r"bokeh 3 or later, found 2\.4\.3.*somvq\[report\]"
    ):
        reporting.require_bokeh()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"title": 123}, "title=123 must be a str"),
        ({"feature_names": "abcd"}, "must be a list of names, not one string"),
        ({"image_shape": "2x2"}, r"image_shape='2x2' must be \(height, width\) as two integers"),
        ({"image_shape": (2.5, 1.6)}, "as two integers"),
        ({"clusters": np.full(4, np.nan)}, "clusters must be integer cluster numbers"),
        ({"y": [None] * 30}, "y holds None; labels must be text or integers"),
    ],
)
def test_bad_report_arguments_are_named(kwargs, match):
    """Found by an adversarial pass: these gave AttributeError / TypeError, or a page drawn
    from truncated or meaningless values."""
    X = np.random.default_rng(0).normal(size=(30, 4))
    som = KSOM(grid=(2, 2), n_epochs=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match=match):
        reporting.report_html(som, X, **kwargs)
    codebook = som.codebook_.copy()
    codebook[0, 0] = np.nan
    with pytest.raises(ValueError, match="codebook holds NaN or inf"):
        reporting.report_html(som, X, codebook=codebook)


def test_unit_table_of_a_layered_map_with_holes_uses_the_bmus_of_predict():
    """One NaN in X sent every row to the plain masked search, not predict's layered one
    (found by an adversarial pass). The qe is kohonen's masked distance to that BMU."""
    rng = np.random.default_rng(8)
    X = np.hstack([rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) * 100])
    X[::3, 0] = np.nan
    som = KSOM(
        grid=(4, 4),
        random_state=0,
        n_epochs=5,
        missing="ignore",
        layers=[[0, 1], [2, 3]],
        layer_weights=[1.0, 1e-4],
    ).fit(X)
    table = reporting.unit_table(som, X)
    bmu = som.predict(X)
    np.testing.assert_array_equal(table["hits"], np.bincount(bmu, minlength=16))
    diff = X - som.codebook_[bmu]
    observed = ~np.isnan(diff)
    sq = 4 / observed.sum(axis=1) * ((np.where(observed, diff, 0.0) ** 2) @ np.ones(4))
    hits = np.bincount(bmu, minlength=16)
    with np.errstate(invalid="ignore"):
        expected = np.bincount(bmu, weights=np.sqrt(sq), minlength=16) / hits
    np.testing.assert_allclose(table["qe"], expected, rtol=1e-12)


def test_grid_description_of_rings_and_tori():
    from somvq.grids import Grid
    from somvq.reporting import _grid_description

    ring = _grid_description(Grid((8,), periodic=True))
    assert "periodic (a ring): the left end meets the right" in ring and "top" not in ring
    assert "periodic (a torus)" in _grid_description(Grid((4, 6), periodic=True))
    assert "periodic along columns (left meets right)" in _grid_description(
        Grid((4, 6), periodic=(False, True))
    )
    assert "periodic" not in _grid_description(Grid((8,)))


def test_metrics_of_a_layered_map_are_the_estimators():
    # the table showed the distance to predict's layered unit beside a plain topographic
    # error; its quantization error is now som.quantization_error's, as `somvq evaluate`
    from somvq.reporting import _bmu_distances, _metrics

    X = np.random.default_rng(3).normal(size=(120, 4))
    som = KSOM(grid=(3, 3), n_epochs=3, random_state=0, layers=[[0, 1], [2, 3]], layer_weights=[1, 5]).fit(X)
    matches = _bmu_distances(som, X)
    rows = dict(_metrics(som, X, np.bincount(matches[0], minlength=9), matches))
    assert rows["quantization error"] == f"{som.quantization_error(X):.6g}"
    assert rows["squared quantization error (mean)"] == f"{som.quantization_error(X, squared=True):.6g}"
    assert rows["quantization error"] != f"{matches[1].mean():.6g}"  # predict's units differ here


def test_fit_report_of_rows_with_holes_shows_the_masked_figures(tmp_path):
    """`fit --missing ignore --report` filled the holes before the report measured the rows:
    its QE and TE disagreed with fit's summary, `evaluate` and `somvq report` on the same
    model and data (0.2747 against 0.2866 on iris with 10% holes)."""
    import html
    import re

    from sklearn.datasets import load_iris

    X = load_iris().data
    holes = np.random.default_rng(1).random(X.shape) < 0.1
    holes[holes.sum(axis=1) > 2] = False
    rows = [
        ",".join("" if hole else repr(float(v)) for v, hole in zip(row, mask)) for row, mask in zip(X, holes)
    ]
    data = tmp_path / "holes.csv"
    data.write_text("a,b,c,d\n" + "\n".join(rows) + "\n")
    model = tmp_path / "m.somvq.npz"
    fitted = run(
        "fit",
        data,
        "--missing",
        "ignore",
        "--grid",
        "5x6",
        "--seed",
        "0",
        "-o",
        model,
        "-d",
        tmp_path,
        "--report",
    )
    assert fitted.exit_code == 0, fitted.output
    assert run("report", model, data, "-o", tmp_path / "again.html").exit_code == 0

    def metrics(path):
        text = html.unescape(path.read_text())
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text[text.index("Metrics") :]))[:200]

    shown = metrics(tmp_path / "report.html")
    assert shown == metrics(tmp_path / "again.html")
    qe = re.search(r"quantization error ([0-9.]+)", shown).group(1)
    assert re.search(rf"quantization error\s+{qe}\b", fitted.output)
