"""``somvq report``: one self-contained, interactive HTML page about a saved map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._errors import DataError, library_errors
from ._input import (
    _csv_records,
    _sniff_delimiter,
    first_row_is_header,
    is_array_file,
    load_input,
    parse_columns,
)
from ._model import default_output, load_drawable_model, read_drawing_data, unit_clusters
from ._options import input_kwargs, input_options
from ._output import check_output
from .plot import _image_shape


def default_report_path(model: str) -> Path:
    """``MODEL``'s name without ``.somvq.npz``, plus ``-report.html``, next to it."""
    return default_output(model, "-report.html")


def _split_target(
    data: str | None, target: str, source: dict[str, Any], *, missing: bool = False
) -> tuple[Any, Any]:
    """The --target column of DATA as labels (any text), the other columns as features.

    Returns ``(InputData of the feature columns, labels)``; :func:`split_target_column`
    says which column it was.
    """
    inputs, labels, _, _ = split_target_column(data, target, source, missing=missing)
    return inputs, labels


def table_fields(
    data: str, source: dict[str, Any], *, first: bool = False
) -> tuple[list[list[str]], str | None]:
    """DATA's rows (``first``: its first row only) split into stripped fields, as the
    feature reader splits them (comment and blank lines dropped, the same delimiter rules),
    and the delimiter (None: whitespace)."""
    try:
        text = Path(data).read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{data}: cannot read the --target column: {exc}.") from None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise DataError(f"{data}: no data (the file is empty).")
    suffix = Path(data).suffix.lower()
    delimiter = (
        source["delimiter"]
        or {".tsv": "\t", ".tab": "\t", ".csv": ","}.get(suffix)
        or _sniff_delimiter(lines[0])
    )
    if delimiter:  # the reader's records: a quoted field may span lines
        rows = [fields for _, fields in _csv_records(text, delimiter, data)]
    else:
        rows = [line.split() for line in lines]
    return (rows[:1] if first else rows), delimiter


def split_target_column(
    data: str | None, target: str, source: dict[str, Any], *, missing: bool = False
) -> tuple[Any, Any, str | None, int | None]:
    """:func:`_split_target`, plus the target column's header name (None without a header)
    and its 0-based index (None for a --dataset).

    The target is one column: a header name or a 1-based number. The file is split into
    fields as the feature reader does (:func:`table_fields`), then the features are read
    by that reader without the target column.
    """
    import numpy as np

    if data is None:  # --dataset: its own targets
        if target not in ("target", "label", "class"):
            raise click.BadParameter(
                f"{target!r}: a --dataset has one target; write --target target.", param_hint="--target"
            )
        inputs = load_input(None, **source)
        return inputs, np.asarray(inputs.target), None, None
    if data == "-" or is_array_file(data):
        raise click.UsageError(
            "--target needs a CSV/TSV file (not stdin or .npy/.npz) with the labels in a column."
        )
    rows, delimiter = table_fields(data, source)
    has_header = source["header"]
    if has_header is None:  # detected as the feature reader does, the label column aside
        if target.strip().isdigit():
            has_header = first_row_is_header(rows[0], missing=missing, skip=int(target.strip()) - 1)
        else:
            has_header = True  # a column name needs a header
    header = rows[0] if has_header else None
    width = len(rows[0])
    chosen = parse_columns(target, header, width, data, param_hint="--target")
    if len(chosen) != 1:
        raise click.BadParameter(
            f"{target!r} must name one column, not {len(chosen)}.", param_hint="--target"
        )
    index = chosen[0]
    if source["columns"]:
        if index in parse_columns(source["columns"], header, width, data):
            raise click.BadParameter(
                f"the --target column {target!r} is also in --columns.", param_hint="--target"
            )
        features = source["columns"]
    else:
        features = ",".join(str(i + 1) for i in range(width) if i != index)
        if not features:
            raise click.BadParameter(
                f"{target!r} is the only column of {data}; no features are left.", param_hint="--target"
            )
    body = rows[1:] if header is not None else rows
    # The feature reader checks every row's field count; rows too short for the target
    # are reported by it first.
    inputs = load_input(
        data,
        missing=missing,  # a supervised map with --missing ignore: NaN in the features
        **{**source, "columns": features, "header": has_header, "delimiter": delimiter},
    )
    labels = np.asarray([fields[index] for fields in body])
    if source["n_samples"] is not None:
        labels = labels[: source["n_samples"]]
    return inputs, labels, None if header is None else header[index], index


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("data", required=False, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@input_options
@click.option(
    "--target",
    metavar="COLUMN",
    help="Column of DATA holding a label per row (header name or 1-based number): majority label and label mix per unit; not a feature. With --dataset: --target target.",
)
@click.option(
    "--image-shape",
    callback=_image_shape,
    metavar="HxW",
    help="Draw each unit's codebook vector as an HxW image in its tooltip [default: as stored at fit, e.g. 8x8 for digits].",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="The HTML file [default: MODEL's name without .somvq.npz, plus -report.html].",
)
@click.option("--title", help="Heading of the page [default: somvq map report].")
@click.option("--force", is_flag=True, help="Overwrite an existing report.")
@click.option(
    "--clusters",
    "n_clusters",
    type=click.IntRange(min=1),
    help="Draw the boundaries of N clusters of units (somvq.cluster_units, agglomerative) on the map.",
)
def report(model: str, data: str | None, **options: Any) -> None:
    """Write an interactive HTML report of MODEL: one file that opens offline.

    The page shows the U-matrix on the map's geometry (hexagons for hexagonal grids),
    the hits of DATA (or --dataset; without either, of the training data when the model
    kept them), with --target the majority label and label mix of each unit, the
    component planes with a selector, the model's parameters and metrics. Hover a unit
    for its index, position, hits, quantization error and labels (and its codebook
    vector as an image for image data). Needs bokeh (pip install somvq[report]).

    \b
    Examples:
      somvq report somvq-output/model.somvq.npz --dataset digits --target target
      somvq report model.somvq.npz test.csv --target species -o report.html
      somvq report model.somvq.npz --image-shape 28x28 --force
      somvq report model.somvq.npz --dataset digits --target target --clusters 10
    """
    from somvq.reporting import require_bokeh

    source = input_kwargs(options)
    target, image_shape, title, force = (
        options.pop("target"),
        options.pop("image_shape"),
        options.pop("title"),
        options.pop("force"),
    )
    n_clusters = options.pop("n_clusters")
    output = Path(options.pop("output") or default_report_path(model))
    check_output(output, force, suffixes=(".html", ".htm"))
    with library_errors():
        require_bokeh()
    loaded, image_shape = load_drawable_model(model, image_shape, "the report draws", "somvq report")
    som = loaded.som
    X, y, inputs = read_drawing_data(loaded, data, source, target)
    description = None if inputs is None else inputs.description or inputs.source
    clusters = unit_clusters(som, n_clusters)
    from somvq.reporting import report as write_report

    with library_errors():
        written = write_report(
            som,
            X,
            y,
            output,
            feature_names=loaded.feature_names,
            image_shape=image_shape,
            codebook=loaded.scaling.inverse(som.codebook_),
            title=title,
            data_description=description,
            overwrite=force,
            clusters=clusters,
        )
    click.echo(f"report   {written}")
