"""An interactive report of a fitted map: one self-contained HTML file.

:func:`report` writes a page that opens offline in any browser (every script and style
is inline, nothing is fetched): the U-matrix on the map's own geometry (hexagons for
hexagonal grids, squares for rectangular ones) with a colour bar and, given a per-unit
cluster array, the cluster boundaries; the hit counts; with labels the majority label
and label mix of each unit; a component plane with a selector over the features; a
tooltip per unit (index, grid position, hits, quantization error of its samples, label
mix and, for image data, the codebook vector drawn as an image); the model's parameters
and a metrics table. Documented in docs/report.md.

The page is drawn with Bokeh (``pip install somvq[report]``); without it :func:`report`
raises :class:`ReportUnavailableError`, an :class:`ImportError`.

>>> import somvq                                                  # doctest: +SKIP
>>> somvq.report(som, X, y, path="report.html")                  # doctest: +SKIP
PosixPath('report.html')
"""

from __future__ import annotations

import base64
import html
import math
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ._atomic import atomic_write
from ._drawing import HEX_RADIUS, require_module

__all__ = [
    "ReportUnavailableError",
    "require_bokeh",
    "report",
    "report_html",
    "unit_table",
    "boundary_segments",
]

#: Side of a map's drawing area, in screen pixels, along its longer axis.
MAP_PIXELS = 420
#: Maps with at most this many units print their hit counts on the hit map.
_ANNOTATE_UNITS = 256
#: Most distinct labels ``y`` may have: the label map needs a colour per label.
MAX_LABELS = 256
#: Labels listed in a unit's label mix (the rest are summed as "other").
_MIX_LABELS = 3
_HEX_SIZE = HEX_RADIUS  # a hexagonal cell: opposite sides 1 apart


class ReportUnavailableError(ImportError):
    """Bokeh, which draws the report, is not installed."""


def require_bokeh() -> Any:
    """Import bokeh (3.x) or raise :class:`ReportUnavailableError` saying how to get it."""
    return require_module(
        "bokeh", purpose="the HTML report", extra="report", error=ReportUnavailableError, min_major=3
    )


# ------------------------------------------------------------------------ geometry
def _plane_shape(grid: Any) -> tuple[int, int]:
    if grid.ndim == 1:
        return 1, grid.shape[0]
    if grid.ndim == 2:
        return grid.shape
    raise ValueError(f"the report draws grids of 1 or 2 axes, got shape {grid.shape}.")


def _centres(grid: Any) -> tuple[np.ndarray, np.ndarray]:
    """Screen-plane centres (x to the right, y up) of every unit: row 0 at the top.

    The grid's own :attr:`somvq.grids.Grid.coordinates` (rectangular cells at (col, -row);
    hexagons, pointy top and opposite sides 1 apart, at (col + (row % 2) / 2,
    -row * sqrt(3) / 2)); a 1-D grid is one row.
    """
    _plane_shape(grid)  # 1 or 2 axes
    coords = grid.coordinates
    if grid.ndim == 1:
        return coords[:, 0].copy(), np.zeros(coords.shape[0])
    return coords[:, 1].copy(), -coords[:, 0]


def _extent(grid: Any) -> tuple[float, float, float, float]:
    """``(x0, x1, y0, y1)``: the data range that shows the whole map with a small margin."""
    rows, cols = _plane_shape(grid)
    pad = 0.1
    if grid.topology == "hexagonal":
        right = cols - 0.5 + (0.5 if rows > 1 else 0.0)
        return -0.5 - pad, right + pad, -(rows - 1) * math.sqrt(3.0) / 2.0 - _HEX_SIZE - pad, _HEX_SIZE + pad
    return -0.5 - pad, cols - 0.5 + pad, -rows + 0.5 - pad, 0.5 + pad


def boundary_segments(
    grid: Any, clusters: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The edges between adjacent units of different clusters, as line segments.

    Two units are adjacent when their cells share an edge (4 neighbours on a
    rectangular grid, 6 on a hexagonal one). On periodic axes the pairs that meet only
    across the wrap-around are not drawn (they would cross the whole map).

    Returns
    -------
    x0, y0, x1, y1 : ndarray
        Segment end points in the report's plane coordinates (see :func:`unit_table`).
    """
    unit_clusters = np.asarray(clusters).reshape(-1)
    if unit_clusters.shape[0] != grid.n_units:
        raise ValueError(f"clusters has {unit_clusters.shape[0]} entries, the map {grid.n_units} units.")
    x, y = _centres(grid)
    a, b = grid.neighbour_pairs
    keep = (a < b) & (unit_clusters[a] != unit_clusters[b])
    a, b = a[keep], b[keep]
    dx, dy = x[b] - x[a], y[b] - y[a]
    length = np.hypot(dx, dy)
    side = np.abs(length - 1.0) < 1e-9  # edge-sharing, not diagonal, not wrapped
    a, b, dx, dy = a[side], b[side], dx[side], dy[side]
    half = 0.5 if grid.topology != "hexagonal" else _HEX_SIZE / 2.0
    mx, my = (x[a] + x[b]) / 2.0, (y[a] + y[b]) / 2.0
    # The shared edge is perpendicular to the centre-to-centre vector (length 1).
    px, py = -dy * half, dx * half
    return mx - px, my - py, mx + px, my + py


# ------------------------------------------------------------------ per-unit facts
def _png_gray(image: np.ndarray) -> bytes:
    """A greyscale 8-bit PNG of a 2-D uint8 array (no imaging library needed)."""
    height, width = image.shape
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _image_uris(codebook: np.ndarray, image_shape: Sequence[int]) -> list[str]:
    """Each codebook vector as a PNG data URI: high values dark, one scale for all units."""
    low, high = float(np.min(codebook)), float(np.max(codebook))
    scaled = (codebook - low) / (high - low) if high > low else np.zeros_like(codebook)
    pixels = np.round(255.0 * (1.0 - scaled)).astype(np.uint8).reshape(-1, *image_shape)
    return ["data:image/png;base64," + base64.b64encode(_png_gray(p)).decode("ascii") for p in pixels]


def _label_mix(bmus: np.ndarray, y: np.ndarray, n_units: int) -> tuple[list[str], np.ndarray, list[str]]:
    """Per unit: the majority label, its share of the unit's samples, the label mix text."""
    classes, codes = np.unique(y, return_inverse=True)
    counts = np.zeros((n_units, classes.shape[0]), dtype=np.int64)
    np.add.at(counts, (bmus, codes), 1)
    totals = counts.sum(axis=1)
    majority, purity, mix = [], np.zeros(n_units), []
    for unit in range(n_units):
        if totals[unit] == 0:
            majority.append("no hits")
            mix.append("")
            continue
        order = np.argsort(-counts[unit], kind="stable")
        majority.append(str(classes[order[0]]))
        purity[unit] = counts[unit, order[0]] / totals[unit]
        parts = [
            f"{classes[c]}: {counts[unit, c]} ({100.0 * counts[unit, c] / totals[unit]:.0f}%)"
            for c in order[:_MIX_LABELS]
            if counts[unit, c]
        ]
        rest = totals[unit] - sum(counts[unit, c] for c in order[:_MIX_LABELS])
        if rest:
            parts.append(f"other: {rest}")
        mix.append(", ".join(parts))
    return majority, purity, mix


def _bmu_distances(som: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best-matching unit of every row of ``X`` (``predict``'s: layered maps weigh their
    layers) and the row's distance to its vector (rows with NaN, a ``missing="ignore"``
    map: kohonen's masked distance, ``D / n_obs`` times the observed squares)."""
    from .distances import underflow_scale
    from .missing import masked_pair_distances

    bmus = np.asarray(som.predict(X), dtype=np.int64)
    centres = np.asarray(som.codebook_, dtype=np.float64)
    # in units of a power of two where the squares would underflow (below ~1e-154)
    scale = underflow_scale(np.asarray(X), centres)
    centres = centres * scale
    distances = np.empty(X.shape[0])
    for start in range(0, X.shape[0], 8192):  # rows at a time: no (n, d) temporary
        block = np.asarray(X[start : start + 8192], dtype=np.float64) * scale
        rows = np.arange(block.shape[0])
        sq = masked_pair_distances(block, centres, rows, bmus[start : start + 8192])
        distances[start : start + 8192] = np.sqrt(sq) / scale
    return bmus, distances


def _label_colour_key(table: dict) -> tuple[list, str]:
    """The labels map's colour key: ``table["label_key"]``, each unit's majority label, or
    for an empty unit a key that is no label's text (empty units are told by their hits,
    not by their label: a real label may read "no hits"). Returns the labels of units
    with hits, sorted, and the empty units' key."""
    real = {label for label, h in zip(table["label"], table["hits"]) if h}
    empty_key = "no hits"
    while empty_key in real:
        empty_key = f"({empty_key})"
    table["label_key"] = [label if h else empty_key for label, h in zip(table["label"], table["hits"])]
    return sorted(real, key=_natural_key), empty_key


def unit_table(
    som: Any,
    X: np.ndarray | None = None,
    y: Sequence[Any] | None = None,
    *,
    image_shape: Sequence[int] | None = None,
    codebook: np.ndarray | None = None,
    _matches: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """What the report shows for each unit, one entry per unit in every column.

    Columns: ``unit``, ``row``, ``col``, ``x``, ``y`` (plane centre), ``umatrix``,
    ``hits`` (samples of ``X`` won, or of the training data when ``X`` is None and the
    model kept its training labels), ``qe`` (mean distance of those samples to the
    unit's codebook vector, NaN for units without hits); with ``y``: ``label`` (majority
    label, ``"no hits"`` for empty units), ``purity`` (its share) and ``mix``; with
    ``image_shape``: ``image`` (a PNG data URI of the unit's vector in ``codebook``).
    """
    grid = som.grid_
    n_units = grid.n_units
    rows, cols = _plane_shape(grid)
    x, yc = _centres(grid)
    row, col = np.divmod(np.arange(n_units), cols)
    table: dict[str, Any] = {
        "unit": np.arange(n_units),
        "row": row,
        "col": col,
        "x": x,
        "y": yc,
        "umatrix": np.asarray(som.umatrix(), dtype=np.float64).reshape(-1),
    }
    bmus = None
    if X is not None:
        bmus, distances = _matches if _matches is not None else _bmu_distances(som, X)
        hits = np.bincount(bmus, minlength=n_units)
        with np.errstate(invalid="ignore", divide="ignore"):
            table["qe"] = np.bincount(bmus, weights=distances, minlength=n_units) / hits
    elif getattr(som, "labels_", None) is not None:
        hits = np.bincount(np.asarray(som.labels_, dtype=np.int64), minlength=n_units)
        table["qe"] = np.full(n_units, np.nan)
    else:
        hits = np.zeros(n_units, dtype=np.int64)
        table["qe"] = np.full(n_units, np.nan)
    table["hits"] = hits
    if y is not None and bmus is not None:
        table["label"], table["purity"], table["mix"] = _label_mix(bmus, np.asarray(y), n_units)
    if image_shape is not None:
        shown = np.asarray(som.codebook_ if codebook is None else codebook, dtype=np.float64)
        table["image"] = _image_uris(shown, image_shape)
    return table


def _metrics(som: Any, X: np.ndarray | None, hits: np.ndarray, matches: Any) -> list[tuple[str, str]]:
    from . import metrics

    grid = som.grid_
    rows: list[tuple[str, str]] = []
    if X is not None:
        bmus, distances = matches  # the quantization errors from the distances to the BMUs
        qe, squared_qe = distances.mean(), np.mean(distances**2)
        if getattr(som, "layers", None) is not None:
            # predict's units weigh the layers; the quantization error is the plain one of
            # som.quantization_error and `somvq evaluate`, beside the plain topographic error
            qe, squared_qe = som.quantization_error(X), som.quantization_error(X, squared=True)
        rows += [
            ("samples", f"{X.shape[0]}"),
            ("quantization error", f"{qe:.6g}"),
            ("squared quantization error (mean)", f"{squared_qe:.6g}"),
            ("topographic error", f"{som.topographic_error(X):.4f}" if grid.n_units >= 2 else "n/a"),
            ("used units", f"{metrics.used_units(bmus, grid.n_units)} / {grid.n_units}"),
            ("perplexity", f"{metrics.perplexity(bmus, grid.n_units):.2f}"),
        ]
    elif hits.any():
        rows.append(("used units (training data)", f"{int(np.count_nonzero(hits))} / {grid.n_units}"))
    if grid.n_units >= 2:
        rows.append(
            ("neighbour / all distance", f"{metrics.neighbour_distance_ratio(som.codebook_, grid):.4f}")
        )
    umatrix = np.asarray(som.umatrix())
    rows.append(
        ("U-matrix mean (min-max)", f"{umatrix.mean():.4g} ({umatrix.min():.4g}-{umatrix.max():.4g})")
    )
    return rows


# ----------------------------------------------------------------------- checking
def _check_inputs(som, X, y, image_shape, clusters, codebook, feature_names):
    if not hasattr(som, "codebook_"):
        if hasattr(som, "som_"):
            raise ValueError(
                f"the report draws a map fitted without targets (a KSOM), got a fitted "
                f"{type(som).__name__}: supervised maps are not supported."
            )
        raise ValueError("the report needs a fitted map; call fit first.")
    n_features = int(som.codebook_.shape[1])
    n_units = som.grid_.n_units
    _plane_shape(som.grid_)
    if X is not None:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != n_features:
            raise ValueError(
                f"X has shape {X.shape}; the map was fitted on {n_features} features, so X must be "
                f"(n_samples, {n_features})."
            )
        if X.shape[0] == 0:
            raise ValueError("X has no rows.")
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X must hold numbers, got dtype {X.dtype}.")
        if getattr(som, "missing", "error") == "ignore":
            from .missing import check_missing

            check_missing(X, 1.0)  # inf and all-NaN rows; holes are missing values
        elif not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinity.")
    if y is not None:
        if X is None:
            raise ValueError("labels y need the samples X they belong to.")
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y has shape {y.shape}; it needs one label per row of X ({X.shape[0]}).")
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError(
                f"y holds NaN at row {int(np.flatnonzero(np.isnan(y))[0])}; every row needs a label."
            )
        if y.dtype == object and not all(isinstance(v, (str, int, np.integer)) for v in y.tolist()):
            bad = next(v for v in y.tolist() if not isinstance(v, (str, int, np.integer)))
            raise ValueError(
                f"y holds {bad!r}; labels must be text or integers (None and floats are not labels)."
            )
        if y.dtype == object and len({type(v) is str for v in y.tolist()}) > 1:
            raise ValueError("y mixes text and integer labels; give one kind (e.g. all as text).")
        n_labels = np.unique(y).shape[0]
        if n_labels > MAX_LABELS:
            raise ValueError(
                f"y has {n_labels} distinct values; the report shows class labels, at most {MAX_LABELS} "
                "(bin a continuous target first)."
            )
    if image_shape is not None:
        if isinstance(image_shape, str) or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in image_shape
        ):
            raise ValueError(f"image_shape={image_shape!r} must be (height, width) as two integers.")
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 2 or min(image_shape) < 1 or image_shape[0] * image_shape[1] != n_features:
            raise ValueError(
                f"image_shape={image_shape} does not fit the map's {n_features} features; give "
                f"(height, width) with height * width = {n_features}."
            )
    if clusters is not None:
        clusters = np.asarray(clusters)
        if clusters.shape != (n_units,):
            raise ValueError(
                f"clusters has shape {clusters.shape}; it needs one cluster per unit ({n_units})."
            )
        if clusters.dtype.kind not in "iu":
            raise ValueError(
                f"clusters must be integer cluster numbers (somvq.cluster_units), got dtype {clusters.dtype}."
            )
    if codebook is not None:
        codebook = np.asarray(codebook, dtype=np.float64)
        if codebook.shape != som.codebook_.shape:
            raise ValueError(f"codebook has shape {codebook.shape}, the map's is {som.codebook_.shape}.")
        if not np.isfinite(codebook).all():
            raise ValueError("codebook holds NaN or inf; the report draws finite unit vectors.")
    if feature_names is not None:
        if isinstance(feature_names, str):
            raise ValueError(f"feature_names={feature_names!r} must be a list of names, not one string.")
        feature_names = [str(name) for name in feature_names]
        if len(feature_names) != n_features:
            raise ValueError(f"{len(feature_names)} feature names for {n_features} features.")
    return X, y, image_shape, clusters, codebook, feature_names


# ------------------------------------------------------------------------- drawing
def _grid_description(grid: Any) -> str:
    shape = "x".join(str(s) for s in grid.shape)
    text = f"{shape} {grid.topology} grid, {grid.n_units} units"
    if grid.ndim == 1 and grid.periodic[0]:  # drawn as one row
        text += "; periodic (a ring): the left end meets the right"
    elif all(grid.periodic):
        text += "; periodic (a torus): the left edge meets the right, the top meets the bottom"
    elif any(grid.periodic):
        axes = [
            "rows (top meets bottom)" if i == 0 else "columns (left meets right)"
            for i, p in enumerate(grid.periodic)
            if p
        ]
        text += f"; periodic along {', '.join(axes)}"
    return text


def _html_table(rows: Sequence[tuple[str, str]], caption: str) -> str:
    body = "".join(
        f"<tr><th style='text-align:left;padding:1px 12px 1px 0;font-weight:normal;color:#555'>{html.escape(k)}</th>"
        f"<td style='font-family:monospace'>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table class='somvq-{caption.split()[0].lower()}'><caption style='text-align:left;font-weight:bold'>{html.escape(caption)}</caption>{body}</table>"


def _tooltip(table: dict[str, Any], plane: bool) -> str:
    lines = [
        "<b>unit @unit</b> (row @row, col @col)",
        "hits: @hits",
        "QE of its samples: @qe_text",
        "U-matrix: @umatrix{0.000}",
    ]
    if plane:
        lines.append("@plane_name: @plane{0.000}")
    if "mix" in table:
        lines.append("labels: @mix")
    text = "".join(f"<div>{line}</div>" for line in lines)
    if "image" in table:
        text += (
            "<img src='@image{safe}' width='72' height='72' "
            "style='image-rendering:pixelated;border:1px solid #ccc;margin-top:3px'>"
        )
    return f"<div class='somvq-tooltip' style='font-size:12px'>{text}</div>"


def report_html(
    som: Any,
    X: np.ndarray | None = None,
    y: Sequence[Any] | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    image_shape: Sequence[int] | None = None,
    clusters: Sequence[int] | None = None,
    codebook: np.ndarray | None = None,
    title: str | None = None,
    data_description: str | None = None,
) -> str:
    """The report of :func:`report` as an HTML string (see there for the parameters)."""
    require_bokeh()
    for name, text in (("title", title), ("data_description", data_description)):
        if text is not None and not isinstance(text, str):
            raise ValueError(f"{name}={text!r} must be a str.")
    X, y, image_shape, clusters, codebook, feature_names = _check_inputs(
        som, X, y, image_shape, clusters, codebook, feature_names
    )
    from bokeh.embed import file_html
    from bokeh.layouts import column, row
    from bokeh.models import (
        BasicTicker,
        CategoricalColorMapper,
        ColorBar,
        ColumnDataSource,
        CustomJS,
        Div,
        HoverTool,
        LinearColorMapper,
        Range1d,
        Select,
    )
    from bokeh.palettes import Blues256, Category10_10, Category20_20, Greys256, Turbo256, Viridis256
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    grid = som.grid_
    n_units = grid.n_units
    shown = np.asarray(som.codebook_ if codebook is None else codebook, dtype=np.float64)
    n_features = shown.shape[1]
    names = feature_names or [f"feature {i + 1}" for i in range(n_features)]
    matches = _bmu_distances(som, X) if X is not None else None
    table = unit_table(som, X, y, image_shape=image_shape, codebook=shown, _matches=matches)
    table["qe_text"] = ["-" if not np.isfinite(v) else f"{v:.4g}" for v in table["qe"]]
    table["hits_text"] = [str(int(h)) if h else "" for h in table["hits"]]
    if "label" in table:
        labels, empty_key = _label_colour_key(table)
    hexagonal = grid.topology == "hexagonal"
    if hexagonal:  # axial coordinates of bokeh's hex tiles (pointy top)
        table["q"] = table["col"] - (table["row"] - (table["row"] & 1)) // 2
        table["r"] = table["row"]

    # Component planes: 8 bits per unit and feature (the colours have 256 levels anyway),
    # rescaled in the browser to the plane's range; the page stays small for wide data.
    lows, highs = shown.min(axis=0), shown.max(axis=0)
    spans = np.where(highs > lows, highs - lows, 1.0)
    levels = np.round((shown - lows) / spans * 255.0).astype(np.uint8)
    planes = ColumnDataSource({f"p{i}": levels[:, i].copy() for i in range(n_features)})
    first = int(np.argmax(highs - lows))  # open on the plane that varies most
    table["plane"] = shown[:, first].copy()
    table["plane_name"] = [names[first]] * n_units
    source = ColumnDataSource(table)

    x0, x1, y0, y1 = _extent(grid)
    scale = MAP_PIXELS / max(x1 - x0, y1 - y0)
    frame_width, frame_height = max(int(round((x1 - x0) * scale)), 60), max(int(round((y1 - y0) * scale)), 30)
    x_range, y_range = Range1d(x0, x1, bounds=(x0, x1)), Range1d(y0, y1, bounds=(y0, y1))
    hover = _tooltip(table, plane=True)

    def map_figure(name: str, heading: str):
        fig = figure(
            name=name,
            title=heading,
            frame_width=frame_width,
            frame_height=frame_height,
            x_range=x_range,
            y_range=y_range,
            tools="pan,wheel_zoom,reset,save",
            toolbar_location="above",
            min_border=8,
            match_aspect=True,
        )
        fig.axis.visible = False
        fig.grid.visible = False
        fig.outline_line_color = None
        return fig

    def tiles(fig, **fill):
        if hexagonal:
            renderer = fig.hex_tile(
                q="q",
                r="r",
                size=_HEX_SIZE,
                orientation="pointytop",
                source=source,
                line_color="white",
                line_width=0.3,
                **fill,
            )
        else:
            renderer = fig.rect(
                x="x", y="y", width=1.0, height=1.0, source=source, line_color="white", line_width=0.3, **fill
            )
        fig.add_tools(HoverTool(renderers=[renderer], tooltips=hover))
        return renderer

    def colour_bar(fig, mapper, label):
        fig.add_layout(
            ColorBar(
                color_mapper=mapper,
                ticker=BasicTicker(desired_num_ticks=6),
                title=label,
                width=12,
                label_standoff=6,
            ),
            "right",
        )

    figures = []
    # U-matrix, with the cluster boundaries on top.
    umatrix = np.asarray(table["umatrix"])
    # The lightest colours of the ramps are a little darker than the page: every unit shows.
    mapper = LinearColorMapper(
        palette=list(reversed(Greys256[:236])), low=float(umatrix.min()), high=float(umatrix.max())
    )
    fig = map_figure("umatrix", "U-matrix (mean distance to neighbours)")
    tiles(fig, fill_color={"field": "umatrix", "transform": mapper})
    colour_bar(fig, mapper, "distance")
    if clusters is not None:
        bx0, by0, bx1, by1 = boundary_segments(grid, clusters)
        fig.segment(x0=bx0, y0=by0, x1=bx1, y1=by1, line_color="#e6194b", line_width=2.5, name="boundaries")
        fig.title.text += f"; {len(np.unique(clusters))} clusters"
    figures.append(fig)

    # Hits.
    hits = np.asarray(table["hits"])
    mapper = LinearColorMapper(palette=list(reversed(Blues256[:240])), low=0, high=max(int(hits.max()), 1))
    heading = "hits" + ("" if X is not None else " (training data)" if hits.any() else " (no data given)")
    fig = map_figure("hits", heading)
    tiles(fig, fill_color={"field": "hits", "transform": mapper})
    if n_units <= _ANNOTATE_UNITS and hits.any():
        fig.text(
            x="x",
            y="y",
            text="hits_text",
            source=source,
            text_align="center",
            text_baseline="middle",
            text_font_size="8pt",
            text_color="#333",
        )
    colour_bar(fig, mapper, "samples")
    figures.append(fig)

    # Labels.
    if "label" in table:
        if len(labels) <= 10:
            palette = list(Category10_10[: len(labels)])
        elif len(labels) <= 20:
            palette = list(Category20_20[: len(labels)])
        else:
            palette = [Turbo256[int(i)] for i in np.linspace(0, 255, len(labels))]
        label_mapper = CategoricalColorMapper(factors=labels + [empty_key], palette=palette + ["#eeeeee"])
        table_alpha = np.where(np.asarray(table["purity"]) > 0, 0.3 + 0.7 * np.asarray(table["purity"]), 1.0)
        source.data["alpha"] = table_alpha
        fig = map_figure("labels", "majority label (paler: mixed units)")
        tiles(fig, fill_color={"field": "label_key", "transform": label_mapper}, fill_alpha="alpha")
        fig.add_layout(ColorBar(color_mapper=label_mapper, title="label", width=12), "right")
        figures.append(fig)

    # Component planes with a selector.
    mapper = LinearColorMapper(
        palette=Viridis256,
        low=float(lows[first]),
        high=float(highs[first] if highs[first] > lows[first] else lows[first] + 1),
    )
    fig = map_figure("plane", f"component plane: {names[first]}")
    tiles(fig, fill_color={"field": "plane", "transform": mapper})
    colour_bar(fig, mapper, "value")
    select = Select(
        title="component plane",
        value=str(first),
        options=[(str(i), n) for i, n in enumerate(names)],
        width=min(frame_width, 300),
        name="plane_select",
    )
    select.js_on_change(
        "value",
        CustomJS(
            args=dict(
                source=source,
                planes=planes,
                mapper=mapper,
                title=fig.title,
                lows=[float(v) for v in lows],
                highs=[float(v) for v in highs],
                names=list(names),
            ),
            code="""
const i = Number(cb_obj.value);
const q = planes.data["p" + i];
const lo = lows[i], hi = highs[i], span = hi > lo ? hi - lo : 1.0;
const n = q.length;
const values = new Float64Array(n);
for (let k = 0; k < n; k++) values[k] = lo + q[k] * span / 255;
const data = Object.assign({}, source.data);
data.plane = values;
data.plane_name = new Array(n).fill(names[i]);
source.data = data;
mapper.low = lo;
mapper.high = hi > lo ? hi : lo + 1;
title.text = "component plane: " + names[i];
""",
        ),
    )
    plane_column = column(select, fig)

    # Header and tables.
    heading = html.escape(title or "somvq map report")
    description = [html.escape(_grid_description(grid))]
    if data_description:
        description.append(html.escape(data_description))
    elif X is not None:
        description.append(f"{X.shape[0]} samples x {X.shape[1]} features")
    if y is not None:
        description.append(f"{len(set(map(str, np.asarray(y).tolist())))} labels")  # y's, not the winners
    header = Div(
        text=f"<h1 style='margin:0 0 4px 0;font-size:22px'>{heading}</h1>"
        f"<div class='somvq-grid'>{' &middot; '.join(description)}</div>"
        "<div style='color:#666;font-size:12px'>Hover a unit for its details; drag to pan, scroll to zoom "
        "(all maps move together).</div>",
        width=900,
        name="header",
    )
    params = [(k, repr(v) if isinstance(v, str) else str(v)) for k, v in sorted(som.get_params().items())]
    tables = Div(
        text="<div style='display:flex;gap:40px;align-items:flex-start;font-size:13px'>"
        + _html_table(params, "Parameters")
        + _html_table(_metrics(som, X, hits, matches), "Metrics")
        + "</div>",
        width=900,
        name="tables",
    )
    maps = figures + [plane_column]
    layout = column(header, row(maps[:2]), row(maps[2:]), tables, name="report")
    return file_html(layout, resources=INLINE, title=title or "somvq map report")


def _natural_key(text: str) -> tuple:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def report(
    som: Any,
    X: np.ndarray | None = None,
    y: Sequence[Any] | None = None,
    path: str | os.PathLike = "report.html",
    *,
    feature_names: Sequence[str] | None = None,
    image_shape: Sequence[int] | None = None,
    clusters: Sequence[int] | None = None,
    codebook: np.ndarray | None = None,
    title: str | None = None,
    data_description: str | None = None,
    overwrite: bool = True,
) -> Path:
    """Write an interactive HTML report of a fitted map; returns its path.

    The file is self-contained (Bokeh's scripts inline, no network access when opened)
    and written atomically.

    Parameters
    ----------
    som : KSOM
        A fitted map with a grid of 1 or 2 axes.
    X : array-like of shape (n_samples, n_features), optional
        Samples in the map's space (scaled as at fit time): hits, per-unit quantization
        error and the metrics table. Without ``X`` the hits are the training data's when
        the model kept them (``labels_``).
    y : array-like of shape (n_samples,), optional
        A label per row of ``X``: majority label and label mix per unit.
    path : path-like, default="report.html"
        Where to write the page.
    feature_names : sequence of str, optional
        Names for the component-plane selector [default: feature 1, feature 2, ...].
    image_shape : (height, width), optional
        Draw each unit's codebook vector as an image in its tooltip.
    clusters : array-like of shape (n_units,), optional
        A cluster per unit; the edges between adjacent units of different clusters are
        drawn on the U-matrix.
    codebook : ndarray of shape (n_units, n_features), optional
        The codebook in the data's own units (e.g. before standardisation) for the
        component planes and images [default: ``som.codebook_``].
    title, data_description : str, optional
        The page's heading and a line saying what the data are.
    overwrite : bool, default=True
        ``False``: raise :class:`somvq._atomic.OutputExistsError` if ``path`` exists.

    Raises
    ------
    ReportUnavailableError
        Bokeh is not installed (``pip install somvq[report]``).
    ValueError
        ``X`` does not have the map's feature count, ``y`` not one label per row of
        ``X``, ``image_shape`` does not multiply to the feature count, ``clusters`` not
        one entry per unit, or the grid has more than 2 axes.
    """
    text = report_html(
        som,
        X,
        y,
        feature_names=feature_names,
        image_shape=image_shape,
        clusters=clusters,
        codebook=codebook,
        title=title,
        data_description=data_description,
    )
    data = text.encode("utf-8")

    def write(handle: BinaryIO) -> None:
        handle.write(data)

    return atomic_write(path, write, overwrite=overwrite)
