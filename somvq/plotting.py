"""Pictures of a fitted map: U-matrix, hit map, component planes, codebook as images.

Every function draws on matplotlib's Agg canvas (no display, no pyplot global state) and
either returns the :class:`~matplotlib.figure.Figure` or writes a PNG atomically
(:func:`save_figure`, :func:`plot_map`). Units appear in grid order: row 0 at the top;
hexagonal grids are drawn as hexagons, odd rows shifted right by half a cell, as in
:class:`somvq.grids.Grid`. One- and two-axis grids can be drawn.

matplotlib is an optional dependency (``pip install somvq[plot]``); without it every
function raises :class:`PlottingUnavailableError` saying so.

>>> from somvq.plotting import plot_map                     # doctest: +SKIP
>>> plot_map(som, "plots/", X=X, image_shape=(8, 8))        # doctest: +SKIP
{'umatrix': PosixPath('plots/umatrix.png'), 'hitmap': ..., 'components': ..., 'codebook': ...}
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from ._atomic import OutputExistsError, atomic_write, writable_target
from ._drawing import HEX_RADIUS, require_module
from .grids import Grid

__all__ = [
    "PlottingUnavailableError",
    "PLOT_KINDS",
    "require_matplotlib",
    "cell_centres",
    "draw_grid_values",
    "unit_label_text",
    "umatrix_figure",
    "hitmap_figure",
    "component_planes_figure",
    "codebook_figure",
    "save_figure",
    "plot_map",
]

#: What :func:`plot_map` can draw, in the order it draws them.
PLOT_KINDS = ("umatrix", "hitmap", "components", "codebook")

_HEX_RADIUS = HEX_RADIUS  # a hexagonal cell: opposite sides 1 apart


class PlottingUnavailableError(ImportError):
    """matplotlib is not installed."""


def require_matplotlib() -> Any:
    """Import matplotlib (Agg backend) or raise :class:`PlottingUnavailableError`."""
    return require_module("matplotlib", purpose="plotting", extra="plot", error=PlottingUnavailableError)


def _new_figure(width: float, height: float):
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _fitting(figure: Any, title: str, fontsize: float = 12.0) -> str:
    """``title`` broken at spaces into lines that fit ``figure``'s width (about 0.62 em a
    character; titles are 12 pt). Constrained layout keeps a title inside the figure only
    when it fits: a longer one was cut off at both edges (a 3-inch codebook figure, a
    U-matrix with labels and clusters)."""
    import textwrap

    chars = max(12, int(figure.get_figwidth() * 72.0 / (0.62 * fontsize)))
    lines: list[str] = []
    for part in title.split("; "):  # whole clauses on a line where they fit
        if lines and len(lines[-1]) + 2 + len(part) <= chars:
            lines[-1] += "; " + part
        else:
            if lines:
                lines[-1] += ";"
            lines += textwrap.wrap(part, chars, break_long_words=False) or [part]
    return "\n".join(lines)


def _plane_shape(grid: Grid) -> tuple[int, int]:
    if grid.ndim == 1:
        return (1, grid.shape[0])
    if grid.ndim == 2:
        return grid.shape  # type: ignore[return-value]
    raise ValueError(f"plots need a grid of 1 or 2 axes, got shape {grid.shape}.")


def _figure_size(grid: Grid, panels: int = 1, columns: int = 1) -> tuple[float, float]:
    rows, cols = _plane_shape(grid)
    aspect = rows / cols * (math.sqrt(3.0) / 2.0 if grid.topology == "hexagonal" else 1.0)
    width = min(4.0 + 0.15 * cols, 9.0) if panels == 1 else 2.6 * columns
    panel_rows = math.ceil(panels / columns)
    height = max(width * aspect * panel_rows / columns + 0.6 * panel_rows, 2.0)
    return width + (1.2 if panels == 1 else 0.0), min(height, 30.0)


def cell_centres(grid: Grid) -> np.ndarray:
    """(K, 2) centre ``(x, y)`` of each unit's cell as :func:`draw_grid_values` draws it.

    Rectangular grids: ``(column, row)``; hexagonal: ``(col + (row % 2) / 2, row * sqrt(3)/2)``
    (:attr:`Grid.coordinates` swapped); the y axis points down (row 0 at the top).
    """
    if grid.topology == "hexagonal":
        return np.asarray(grid.coordinates, dtype=np.float64)[:, ::-1].copy()
    rows, cols = _plane_shape(grid)
    r, c = np.divmod(np.arange(grid.n_units), cols)
    return np.stack([c, r], axis=1).astype(np.float64)


def draw_grid_values(
    ax: Any,
    grid: Grid,
    values: np.ndarray,
    *,
    cmap: str = "viridis",
    label: str | None = None,
    colorbar: bool = True,
    annotate: bool = False,
    text: Sequence[str] | None = None,
    fontsize: float = 6.0,
):
    """Colour each unit of ``grid`` by ``values`` (one per unit) on the Axes ``ax``.

    Rectangular grids are drawn as square cells (``imshow``), hexagonal ones as hexagons
    (a PatchCollection of RegularPolygons); row 0 is at the top. Returns the mappable.
    ``annotate=True`` writes each unit's value in its cell; ``text`` (one string per
    unit, ``""`` for none) writes those strings instead. Written text is black on light
    cells and white on dark ones (by the cell colour's luminance).
    """
    require_matplotlib()
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.shape[0] != grid.n_units:
        raise ValueError(f"{values.shape[0]} values for a grid of {grid.n_units} units.")
    rows, cols = _plane_shape(grid)
    if grid.topology == "hexagonal":
        from matplotlib.collections import PatchCollection
        from matplotlib.patches import RegularPolygon

        centres = grid.coordinates  # (row * sqrt(3)/2, col + (row % 2) / 2)
        patches = [
            RegularPolygon((x, y), numVertices=6, radius=_HEX_RADIUS, orientation=0.0) for y, x in centres
        ]
        mappable = PatchCollection(patches, cmap=cmap, edgecolor="face", linewidth=0.3)
        mappable.set_array(values)
        ax.add_collection(mappable)
        ax.set_xlim(-0.6, cols + 0.1)
        ax.set_ylim(-0.7, centres[:, 0].max() + 0.7)
        ax.invert_yaxis()
        ax.set_aspect("equal")
    else:
        mappable = ax.imshow(values.reshape(rows, cols), cmap=cmap, interpolation="nearest", aspect="equal")
    if annotate and text is None:
        text = [f"{value:g}" for value in values]
    if text is not None:
        if len(text) != grid.n_units:
            raise ValueError(f"{len(text)} texts for a grid of {grid.n_units} units.")
        rgba = np.asarray(mappable.to_rgba(values))
        luminance = rgba[:, :3] @ np.array([0.299, 0.587, 0.114])
        for (x, y), words, light in zip(cell_centres(grid), text, luminance > 0.5):
            if words:
                ax.text(
                    x,
                    y,
                    words,
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="black" if light else "white",
                    parse_math=False,  # a user's text as given: "$" is no TeX
                )
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        bar = ax.figure.colorbar(mappable, ax=ax, shrink=0.8)
        if label:
            bar.set_label(label)
    return mappable


def _codebook(som: Any, codebook: np.ndarray | None) -> np.ndarray:
    if not hasattr(som, "codebook_"):
        raise ValueError("plots need a fitted KSOM; call fit first.")
    if codebook is None:
        return np.asarray(som.codebook_, dtype=np.float64)
    weights = np.asarray(codebook, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] != som.grid_.n_units:
        raise ValueError(
            f"codebook has shape {weights.shape}; the map has {som.grid_.n_units} units, so "
            f"({som.grid_.n_units}, n_features)."
        )
    return weights


def _whole_numbers(name: str, values: Any) -> list[int]:
    """``values`` as Python ints, refused (naming ``name``) unless each is a whole number."""
    out = []
    for value in np.asarray(values, dtype=object).ravel().tolist():
        if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, np.integer, float, np.floating)
        ):
            raise ValueError(f"{name} must hold whole numbers, got {value!r}.")
        if float(value) != int(value):
            raise ValueError(f"{name} must hold whole numbers, got {value!r}.")
        out.append(int(value))
    return out


def _title(som: Any) -> str:
    grid = som.grid_
    shape = "x".join(str(s) for s in grid.shape)
    periodic = ", periodic" if any(grid.periodic) else ""
    return f"{shape} {grid.topology}{periodic}"


def unit_label_text(labels: Any, n_units: int, names: Sequence[Any] | None = None) -> list[str]:
    """One string per unit from a (K,) label array, ``""`` for the units left blank.

    ``labels`` holds, per unit, an int (e.g. :func:`somvq.analysis.label_units`; ``-1``:
    no label) or any value written with ``str`` (``None``, ``""`` and NaN: no label).
    ``names`` maps int labels to what is written (``names[label]``, e.g. the classes of a
    ``LabelEncoder``).
    """
    values = np.asarray(labels, dtype=object).reshape(-1)
    if values.shape[0] != n_units:
        raise ValueError(
            f"labels has {values.shape[0]} entries for a map of {n_units} units; give one per unit."
        )
    out = []
    for value in values:
        if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
            out.append("")
        elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            if value < 0:
                out.append("")
            elif names is not None:
                if value >= len(names):
                    raise ValueError(f"label {value} has no name: names holds {len(names)}.")
                out.append(str(names[value]))
            else:
                out.append(str(value))
        else:
            out.append(str(value))
    return out


def _label_fontsize(grid: Grid, text: Sequence[str], width: float) -> float:
    """Points that fit the longest label in a cell of a ``width``-inch wide figure."""
    cols = _plane_shape(grid)[1]
    cell = 72.0 * max(width - 1.2, 1.0) / (cols + 0.5)
    longest = max((len(t) for t in text), default=1)
    return float(min(9.0, max(3.0, cell / max(1.0, 0.62 * longest))))


def umatrix_figure(
    som: Any,
    *,
    clusters: np.ndarray | None = None,
    labels: Any = None,
    label_names: Sequence[Any] | None = None,
):
    """The U-matrix: mean codebook distance of each unit to its grid neighbours.

    High values (dark) separate clusters; low values (light) lie inside them. With
    ``clusters`` (one int per unit, e.g. :func:`somvq.analysis.cluster_units`), the edges
    between adjacent cells of different clusters are drawn in red. With ``labels`` (one
    per unit, e.g. :func:`somvq.analysis.label_units`), each unit's label is written in
    its cell; ``-1`` (a unit that won no row), ``None`` and ``""`` are left blank, and
    ``label_names[label]`` is written for an int label when ``label_names`` is given (see
    :func:`unit_label_text`).
    """
    from . import metrics

    _codebook(som, None)
    text = None if labels is None else unit_label_text(labels, som.grid_.n_units, label_names)
    size = _figure_size(som.grid_)
    figure = _new_figure(*size)
    ax = figure.add_subplot()
    draw_grid_values(
        ax,
        som.grid_,
        metrics.umatrix(som.codebook_, som.grid_),
        cmap="bone_r",
        label="mean distance to neighbours",
        text=text,
        fontsize=_label_fontsize(som.grid_, text, size[0]) if text is not None else 6.0,
    )
    title = f"U-matrix ({_title(som)})"
    if text is not None:
        title += f"; labels of {sum(1 for t in text if t)}/{som.grid_.n_units} units"
    if clusters is not None:
        from matplotlib.collections import LineCollection

        from .reporting import boundary_segments

        # the report's plane has y = -row; here row grows downwards
        x0, y0, x1, y1 = boundary_segments(som.grid_, clusters)
        segments = np.stack([np.stack([x0, -y0], axis=1), np.stack([x1, -y1], axis=1)], axis=1)
        ax.add_collection(LineCollection(segments, colors="red", linewidths=1.5))
        title += f"; {len(np.unique(clusters))} clusters"
    ax.set_title(_fitting(figure, title))
    return figure


def hitmap_figure(som: Any, X: np.ndarray | None = None, *, labels: np.ndarray | None = None):
    """How many rows each unit wins: of ``X``, of the BMU ``labels`` given, or of the training data."""
    _codebook(som, None)
    if X is not None:
        labels = som.predict(X)
    elif labels is None:
        labels = getattr(som, "labels_", None)
        if labels is None:
            raise ValueError("a hit map needs data (X) or labels; this model has no training labels.")
    from .metrics import _check_labels

    units = np.asarray(_whole_numbers("labels", labels), dtype=np.int64)
    counts = np.bincount(
        _check_labels("hitmap_figure", units, som.grid_.n_units), minlength=som.grid_.n_units
    )
    figure = _new_figure(*_figure_size(som.grid_))
    ax = figure.add_subplot()
    draw_grid_values(ax, som.grid_, counts, cmap="Blues", label="hits", annotate=som.grid_.n_units <= 64)
    used = int(np.count_nonzero(counts))
    ax.set_title(_fitting(figure, f"hit map: {int(counts.sum())} rows on {used}/{som.grid_.n_units} units"))
    return figure


def component_planes_figure(
    som: Any,
    features: Sequence[int] | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    codebook: np.ndarray | None = None,
    max_planes: int = 16,
):
    """One panel per feature: that feature's value in every unit's codebook vector.

    ``features`` are 0-based feature indices (default: the first ``max_planes``);
    ``codebook`` replaces ``som.codebook_`` (e.g. the codebook mapped back to the
    original units of the data).
    """
    weights = _codebook(som, codebook)
    n_features = weights.shape[1]
    chosen = (
        list(range(min(n_features, max_planes))) if features is None else _whole_numbers("features", features)
    )
    if not chosen:
        raise ValueError("no features selected for the component planes.")
    for f in chosen:
        if not 0 <= f < n_features:
            raise ValueError(f"feature index {f} is outside 0..{n_features - 1}.")
    columns = min(len(chosen), 4)
    figure = _new_figure(*_figure_size(som.grid_, len(chosen), columns))
    axes = figure.subplots(math.ceil(len(chosen) / columns), columns, squeeze=False).ravel()
    for ax, f in zip(axes, chosen):
        draw_grid_values(ax, som.grid_, weights[:, f])
        name = feature_names[f] if feature_names is not None and f < len(feature_names) else f"feature {f}"
        ax.set_title(str(name), fontsize=9, parse_math=False)  # a feature name as given
    for ax in axes[len(chosen) :]:
        ax.set_visible(False)
    figure.suptitle(_fitting(figure, f"component planes ({_title(som)})"))
    return figure


def codebook_figure(
    som: Any, image_shape: Sequence[int], *, codebook: np.ndarray | None = None, cmap: str = "gray_r"
):
    """Every codebook vector drawn as a small image, tiled in grid order.

    Hexagonal grids shift odd rows right by half a tile, like their cells.
    """
    weights = _codebook(som, codebook)
    shape = _whole_numbers("image_shape", image_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(
            f"image_shape={tuple(image_shape)!r} must be (height, width), two positive integers."
        )
    height, width = shape
    if height * width != weights.shape[1]:
        raise ValueError(
            f"image shape {height}x{width} has {height * width} pixels, the codebook vectors {weights.shape[1]}."
        )
    rows, cols = _plane_shape(som.grid_)
    gap = 1
    shift = (width + gap) // 2 if som.grid_.topology == "hexagonal" else 0
    canvas = np.full((rows * (height + gap) - gap, cols * (width + gap) - gap + shift), np.nan)
    low, high = float(weights.min()), float(weights.max())
    for unit in range(som.grid_.n_units):
        r, c = divmod(unit, cols)
        top = r * (height + gap)
        left = c * (width + gap) + (shift if r % 2 else 0)
        canvas[top : top + height, left : left + width] = weights[unit].reshape(height, width)
    scale = max(3.0, min(10.0, canvas.shape[1] / 25.0))
    figure = _new_figure(scale, max(2.0, scale * canvas.shape[0] / canvas.shape[1]) + 0.4)
    ax = figure.add_subplot()
    import matplotlib

    colours = matplotlib.colormaps[cmap].with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(canvas), cmap=colours, vmin=low, vmax=high, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(_fitting(figure, f"codebook in grid order ({_title(som)})"))
    return figure


def _png(figure: Any, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_figure(figure: Any, path: str | os.PathLike, *, overwrite: bool = True, dpi: int = 100) -> Path:
    """Write ``figure`` as a PNG, atomically (a failure leaves no partial file)."""
    png = _png(figure, dpi)
    return atomic_write(path, lambda handle: handle.write(png), overwrite=overwrite)


def plot_map(
    som: Any,
    directory: str | os.PathLike,
    *,
    kinds: Sequence[str] | None = None,
    X: np.ndarray | None = None,
    image_shape: Sequence[int] | None = None,
    codebook: np.ndarray | None = None,
    features: Sequence[int] | None = None,
    feature_names: Sequence[str] | None = None,
    overwrite: bool = True,
    clusters: np.ndarray | None = None,
    labels: Any = None,
    label_names: Sequence[Any] | None = None,
) -> dict[str, Path]:
    """Write the PNGs of ``kinds`` (default: every applicable one) into ``directory``.

    Files are ``umatrix.png``, ``hitmap.png``, ``components.png`` and ``codebook.png``.
    The hit map uses ``X`` when given, else the training labels stored in the model; the
    codebook image needs ``image_shape``. ``codebook`` (e.g. in the data's original units)
    is used by the component planes and the codebook image. ``clusters`` (one per unit)
    draws the cluster boundaries on the U-matrix; ``labels`` (one per unit, e.g.
    :func:`somvq.analysis.label_units`, with ``label_names``) writes each unit's label on
    it (see :func:`umatrix_figure`).

    Returns
    -------
    dict mapping each kind drawn to the path written.
    """
    require_matplotlib()
    if kinds is None:
        kinds = [k for k in PLOT_KINDS if k != "codebook" or image_shape is not None]
    unknown = [k for k in kinds if k not in PLOT_KINDS]
    if unknown:
        raise ValueError(f"unknown plot kind(s) {unknown}; choose from {PLOT_KINDS}.")
    _plane_shape(som.grid_)
    if "codebook" in kinds and image_shape is None:
        raise ValueError("the codebook image needs image_shape, e.g. (8, 8).")
    directory = Path(directory)
    # Every figure drawn (its errors raised) and every target checked before any file or
    # the directory is written: an error leaves nothing behind.
    pngs: dict[str, bytes] = {}
    for kind in PLOT_KINDS:
        if kind not in kinds:
            continue
        if kind == "umatrix":
            figure = umatrix_figure(som, clusters=clusters, labels=labels, label_names=label_names)
        elif kind == "hitmap":
            figure = hitmap_figure(som, X)
        elif kind == "components":
            figure = component_planes_figure(som, features, feature_names=feature_names, codebook=codebook)
        else:
            figure = codebook_figure(som, cast(Sequence[int], image_shape), codebook=codebook)
        pngs[kind] = _png(figure)
    for kind in pngs:  # every target checked before any file (or the directory) is written
        path = directory / f"{kind}.png"
        if not overwrite and path.exists():
            raise OutputExistsError(f"{str(path)!r} already exists.")
        target = writable_target(path)  # a directory in its place: refused now, not half-way
        if target != path and not target.parent.is_dir():
            raise ValueError(f"{str(path)!r} links to {str(target)!r}, whose directory does not exist.")
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for kind, png in pngs.items():
        written[kind] = atomic_write(
            directory / f"{kind}.png", lambda handle, png=png: handle.write(png), overwrite=overwrite
        )
    return written
