"""Plots of a fitted map: files are PNGs, hexagons are hexagons, errors are clear."""

import sys

import numpy as np
import pytest

from somvq import KSOM

pytest.importorskip("matplotlib")

from somvq import plotting  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.random((60, 16))


def fitted(images, **params):
    return KSOM(grid=params.pop("grid", (3, 4)), n_epochs=2, random_state=0, **params).fit(images)


@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
def test_plot_map_writes_every_kind(tmp_path, images, topology):
    som = fitted(images, topology=topology)
    written = plotting.plot_map(som, tmp_path / "out", X=images, image_shape=(4, 4))
    assert list(written) == list(plotting.PLOT_KINDS)
    for path in written.values():
        assert path.read_bytes()[:8] == PNG
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []


def test_codebook_image_is_optional(tmp_path, images):
    written = plotting.plot_map(fitted(images), tmp_path)
    assert set(written) == {"umatrix", "hitmap", "components"}


def test_hexagonal_grid_is_drawn_as_hexagons(images):
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import RegularPolygon

    som = fitted(images, topology="hexagonal")
    figure = plotting.umatrix_figure(som)
    collections = [c for c in figure.axes[0].collections if isinstance(c, PatchCollection)]
    assert len(collections) == 1
    assert len(collections[0].get_paths()) == som.grid_.n_units
    # Centres follow the grid coordinates: adjacent hexagons are 1 apart.
    ax = plotting._new_figure(3, 3).add_subplot()
    plotting.draw_grid_values(ax, som.grid_, np.arange(som.grid_.n_units), colorbar=False)
    assert ax.collections[0].get_array().shape == (12,)
    hexagon = RegularPolygon((0, 0), numVertices=6, radius=plotting._HEX_RADIUS)
    width = np.ptp(hexagon.get_verts()[:, 0])
    assert width == pytest.approx(1.0)  # flat sides 1 apart: neighbours touch


def test_rectangular_values_are_in_grid_order(images):
    som = fitted(images, grid=(2, 3))
    ax = plotting._new_figure(3, 3).add_subplot()
    plotting.draw_grid_values(ax, som.grid_, np.arange(6), colorbar=False)
    np.testing.assert_array_equal(ax.images[0].get_array(), [[0, 1, 2], [3, 4, 5]])


def test_hit_map_counts(images):
    som = fitted(images)
    figure = plotting.hitmap_figure(som, images)
    counts = np.asarray(figure.axes[0].images[0].get_array()).ravel()
    np.testing.assert_array_equal(counts, np.bincount(som.predict(images), minlength=12))
    assert counts.sum() == 60


def test_one_dimensional_grid(tmp_path, images):
    som = fitted(images, grid=(5,))
    assert set(plotting.plot_map(som, tmp_path, image_shape=(4, 4))) == set(plotting.PLOT_KINDS)


def test_component_planes_selection_and_names(images):
    som = fitted(images)
    figure = plotting.component_planes_figure(som, [0, 3], feature_names=[f"f{i}" for i in range(16)])
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible() and ax.get_title()]
    assert titles == ["f0", "f3"]
    with pytest.raises(ValueError, match="outside"):
        plotting.component_planes_figure(som, [16])


def test_names_and_labels_with_dollars_are_drawn_as_given(tmp_path, images):
    # matplotlib reads "$...$" as TeX: "cost ($) vs price ($)" became "cost ()vsprice()",
    # and "$\\frac$" failed the whole plot
    som = fitted(images)
    names = ["cost ($) vs price ($)", "$\\frac$"] + [f"f{i}" for i in range(2, 16)]
    figure = plotting.component_planes_figure(som, [0, 1], feature_names=names)
    figure.savefig(tmp_path / "planes.png")  # renders: no TeX parse
    texts = [t for ax in figure.axes if ax.get_visible() for t in [ax.title] if t.get_text()]
    assert [t.get_text() for t in texts] == names[:2]
    assert all(not t.get_parse_math() for t in texts)
    figure = plotting.umatrix_figure(som, labels=np.zeros(12, dtype=int), label_names=["$\\frac$"])
    figure.savefig(tmp_path / "umatrix.png")
    assert {t.get_text() for t in figure.axes[0].texts} == {"$\\frac$"}


def test_errors(tmp_path, images):
    som = fitted(images)
    with pytest.raises(ValueError, match="16 pixels|pixels"):
        plotting.codebook_figure(som, (3, 3))
    with pytest.raises(ValueError, match="1 or 2 axes"):
        plotting.plot_map(fitted(images, grid=(2, 2, 2)), tmp_path)
    with pytest.raises(ValueError, match="unknown plot kind"):
        plotting.plot_map(som, tmp_path, kinds=["pie"])
    with pytest.raises(ValueError, match="fitted"):
        plotting.umatrix_figure(KSOM())
    plotting.plot_map(som, tmp_path, kinds=["umatrix"])
    from somvq._atomic import OutputExistsError

    with pytest.raises(OutputExistsError):
        plotting.plot_map(som, tmp_path, kinds=["umatrix"], overwrite=False)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(plotting.PlottingUnavailableError, match=r"pip install somvq\[plot\]"):
        plotting.require_matplotlib()


def test_failed_render_leaves_no_file(tmp_path, images):
    figure = plotting.umatrix_figure(fitted(images))

    class Boom(Exception):
        pass

    def explode(*args, **kwargs):
        raise Boom

    figure.savefig = explode
    with pytest.raises(Boom):
        plotting.save_figure(figure, tmp_path / "u.png")
    assert list(tmp_path.iterdir()) == []


def naive_cell_centre(unit, shape, topology):
    """(x, y) of a unit's cell: column right, row down; hexagonal odd rows shifted by 1/2."""
    cols = shape[-1]
    row, col = unit // cols, unit % cols
    if topology == "hexagonal":
        return (col + 0.5 * (row % 2), row * 3**0.5 / 2)
    return (float(col), float(row))


@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
def test_umatrix_writes_each_units_label_in_its_cell(images, topology):
    som = fitted(images, topology=topology)
    labels = np.array([0, 1, 2, -1, 1, 0, -1, 2, 2, 0, 1, -1])
    names = ["cat", "dog", "eel"]
    figure = plotting.umatrix_figure(som, labels=labels, label_names=names)
    texts = figure.axes[0].texts
    assert len(texts) == 9  # the three -1 units are blank
    drawn = {tuple(np.round(t.get_position(), 9)): t.get_text() for t in texts}
    expected = {
        tuple(np.round(naive_cell_centre(u, (3, 4), topology), 9)): names[label]
        for u, label in enumerate(labels)
        if label >= 0
    }
    assert drawn == expected
    assert "labels of 9/12 units" in figure.axes[0].get_title()
    # plain ints without names, and labels beside cluster boundaries
    figure = plotting.umatrix_figure(som, labels=np.arange(12), clusters=np.arange(12) // 6)
    assert sorted(t.get_text() for t in figure.axes[0].texts) == sorted(str(i) for i in range(12))


def test_unit_label_text():
    text = plotting.unit_label_text(np.array([3, -1, 0]), 3)
    assert text == ["3", "", "0"]
    assert plotting.unit_label_text(["a", None, ""], 3) == ["a", "", ""]
    assert plotting.unit_label_text(np.array([1.5, np.nan]), 2) == ["1.5", ""]
    assert plotting.unit_label_text([1, -1], 2, names=["x", "y"]) == ["y", ""]
    with pytest.raises(ValueError, match="4 entries for a map of 3 units"):
        plotting.unit_label_text([0, 1, 2, 3], 3)
    with pytest.raises(ValueError, match="label 2 has no name"):
        plotting.unit_label_text([0, 2], 2, names=["x", "y"])


def test_label_units_then_plot_map(tmp_path, images):
    from somvq.analysis import label_units

    som = fitted(images)
    y = (images[:, 0] > 0.5).astype(int)
    labels = label_units(som, images, y, fill="neighbours")
    written = plotting.plot_map(som, tmp_path, kinds=["umatrix"], labels=labels, label_names=["low", "high"])
    assert written["umatrix"].read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="one per unit"):
        plotting.plot_map(som, tmp_path / "bad", kinds=["umatrix"], labels=labels[:5])


def test_written_values_contrast_with_their_cell(images):
    # Blues: a unit with no hits is white, the busiest dark blue
    som = fitted(images)
    figure = plotting.hitmap_figure(som, images)
    counts = np.bincount(som.predict(images), minlength=12)
    colours = {t.get_text(): t.get_color() for t in figure.axes[0].texts}
    assert colours[str(counts.max())] == "white"
    figure = plotting.hitmap_figure(som, labels=np.zeros(5, dtype=int))  # 0 hits on 11 units
    assert {t.get_color() for t in figure.axes[0].texts if t.get_text() == "0"} == {"black"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kinds=["umatrix", "hitmap", "codebook"]), "needs image_shape"),
        (dict(image_shape=(3, 5)), "15 pixels, the codebook vectors 16"),
        (dict(kinds=["umatrix", "hitmap"], X=np.ones((3, 5))), "5 features"),
    ],
)
def test_plot_map_writes_nothing_when_a_kind_fails(tmp_path, images, kwargs, message):
    """The earlier kinds were written (and the directory made) before a later one failed
    (found by an adversarial pass)."""
    with pytest.raises(ValueError, match=message):
        plotting.plot_map(fitted(images), tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_plot_map_without_overwrite_checks_every_file_first(tmp_path, images):
    from somvq._atomic import OutputExistsError

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "hitmap.png").write_bytes(b"mine")
    with pytest.raises(OutputExistsError, match="hitmap.png"):
        plotting.plot_map(fitted(images), tmp_path / "out", X=images, overwrite=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["hitmap.png"]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda som: plotting.codebook_figure(som, (-4, -4)), r"two positive integers"),
        (lambda som: plotting.codebook_figure(som, (4, 4, 1)), r"two positive integers"),
        (lambda som: plotting.codebook_figure(som, (4.5, 4)), r"whole numbers, got 4.5"),
        (
            lambda som: plotting.codebook_figure(som, (4, 4), codebook=np.zeros((5, 16))),
            r"shape \(5, 16\); the map has 12",
        ),
        (lambda som: plotting.hitmap_figure(som, labels=[0, 1, 12]), r"in \[0, 12\), found 12"),
        (lambda som: plotting.hitmap_figure(som, labels=[0.5, 1.2]), r"whole numbers, got 0.5"),
        (lambda som: plotting.component_planes_figure(som, features=[1.7]), r"whole numbers, got 1.7"),
        (lambda som: plotting.component_planes_figure(som, features=["a"]), r"whole numbers, got 'a'"),
    ],
)
def test_figure_arguments_are_named(images, call, message):
    with pytest.raises(ValueError, match=message):
        call(fitted(images))


@pytest.mark.parametrize("grid", [(5, 5), (2, 3), (12,)])
def test_titles_stay_inside_the_figure(images, grid):
    """A title wider than its figure was cut at both edges: the 3-inch codebook figure's
    "codebook in grid order (5x5 rectangular)", the U-matrix's with labels and clusters
    (found by a bug hunt). Long titles are broken into lines, at "; " first."""
    som = fitted(images, grid=grid)
    n_units = som.grid_.n_units
    figures = [
        plotting.umatrix_figure(som, labels=np.arange(n_units) % 3, clusters=np.arange(n_units) % 2),
        plotting.codebook_figure(som, (4, 4)),
        plotting.hitmap_figure(som),
        plotting.component_planes_figure(som, features=[0]),
    ]
    for figure in figures:
        figure.canvas.draw()
        box = figure.bbox
        titles = [ax.title for ax in figure.axes if ax.title.get_text()]
        titles += [figure._suptitle] if figure._suptitle is not None else []
        for title in titles:
            extent = title.get_window_extent()
            assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and extent.y1 <= box.y1 + 2, title.get_text()


def test_plot_map_checks_every_target_before_writing(tmp_path, images):
    """A directory where a later PNG goes, or a link into a missing directory, failed after
    the earlier PNGs were written (found by a bug hunt): nothing is written now."""
    import os

    som = fitted(images)
    (tmp_path / "a" / "hitmap.png").mkdir(parents=True)
    with pytest.raises(ValueError, match="hitmap.png' is a directory"):
        plotting.plot_map(som, tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["hitmap.png"]
    (tmp_path / "b").mkdir()
    os.symlink(tmp_path / "missing" / "x.png", tmp_path / "b" / "hitmap.png")
    with pytest.raises(ValueError, match="whose directory does not exist"):
        plotting.plot_map(som, tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["hitmap.png"]
    os.symlink(tmp_path / "a" / "elsewhere.png", tmp_path / "b" / "umatrix.png")  # a link that works
    (tmp_path / "b" / "hitmap.png").unlink()
    written = plotting.plot_map(som, tmp_path / "b", kinds=["umatrix"])
    assert (tmp_path / "a" / "elsewhere.png").read_bytes()[:8] == PNG and written["umatrix"].exists()
