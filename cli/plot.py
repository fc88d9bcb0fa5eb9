"""``somvq plot``: PNG pictures of a saved map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._errors import library_errors
from ._input import parse_columns
from ._model import default_output, load_drawable_model, read_drawing_data, unit_clusters
from ._options import input_kwargs, input_options
from ._output import check_output

PLOT_KINDS = ("umatrix", "hitmap", "components", "codebook")


def _image_shape(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    from somvq.grids import parse_grid

    try:
        shape = parse_grid(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an image shape; write HEIGHTxWIDTH, e.g. 28x28."
        ) from None
    if len(shape) != 2:
        raise click.BadParameter(f"{value!r} must have two sizes, HEIGHTxWIDTH.")
    return shape


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("data", required=False, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@input_options
@click.option(
    "-d",
    "--output-dir",
    type=click.Path(file_okay=False),
    help="Directory for the PNGs [default: MODEL's name without .somvq.npz, plus -plots].",
)
@click.option(
    "-k",
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(PLOT_KINDS),
    help="What to draw (repeatable) [default: all that apply].",
)
@click.option(
    "--image-shape",
    callback=_image_shape,
    metavar="HxW",
    help="Draw the codebook as HxW images [default: as stored at fit, e.g. 8x8 for digits].",
)
@click.option(
    "--planes",
    help="Features for the component planes: names and/or 1-based numbers/ranges [default: the first 16].",
)
@click.option("--force", is_flag=True, help="Overwrite existing PNGs.")
@click.option(
    "--clusters",
    "n_clusters",
    type=click.IntRange(min=1),
    help="Draw the boundaries of N clusters of units (somvq.cluster_units, agglomerative) on the U-matrix.",
)
@click.option(
    "--target",
    metavar="COLUMN",
    help="Column of DATA holding a label per row (header name or 1-based number): each unit's majority label (somvq.label_units) is written on the U-matrix; not a feature. With --dataset: --target target.",
)
@click.option(
    "--fill-labels",
    is_flag=True,
    help="With --target: label the units that won no row from their grid neighbours (label_units fill='neighbours') instead of leaving them blank.",
)
def plot(model: str, data: str | None, **options: Any) -> None:
    """Draw MODEL: U-matrix, hit map, component planes, codebook images.

    The hit map counts the rows of DATA (or --dataset) per unit, or of the training data
    when none is given. For image data the codebook is tiled in grid order. Hexagonal
    grids are drawn as hexagons. Needs matplotlib (pip install somvq[plot]).

    \b
    Examples:
      somvq plot somvq-output/model.somvq.npz
      somvq plot model.somvq.npz test.csv -k hitmap -k components --planes 1-4
      somvq plot model.somvq.npz --image-shape 28x28 -d pictures/
      somvq plot model.somvq.npz -k umatrix --clusters 10
      somvq plot model.somvq.npz train.csv --target species -k umatrix
    """
    from somvq.plotting import require_matplotlib

    output_dir = options.pop("output_dir")
    kinds, image_shape, planes, force = (
        options.pop("kinds"),
        options.pop("image_shape"),
        options.pop("planes"),
        options.pop("force"),
    )
    n_clusters = options.pop("n_clusters")
    target, fill_labels = options.pop("target"), options.pop("fill_labels")
    with library_errors():
        require_matplotlib()
    loaded, image_shape = load_drawable_model(model, image_shape, "plots need", "somvq plot")
    som = loaded.som
    output_dir = Path(output_dir) if output_dir is not None else default_output(model, "-plots")
    if not kinds:
        kinds = [k for k in PLOT_KINDS if k != "codebook" or image_shape is not None]
    elif "codebook" in kinds and image_shape is None:
        raise click.UsageError(
            "-k codebook needs --image-shape (the model does not say its data were images)."
        )
    if target is not None and "umatrix" not in kinds:
        raise click.UsageError("--target writes the labels on the U-matrix: add -k umatrix.")
    features = None
    if planes:
        features = parse_columns(
            planes, loaded.feature_names, som.n_features_in_, f"the model {model}", param_hint="--planes"
        )
    for kind in kinds:
        check_output(output_dir / f"{kind}.png", force, param_hint="--output-dir", create_parent=True)
    if fill_labels and target is None:
        raise click.UsageError("--fill-labels needs --target COLUMN (the labels to fill).")
    X, y, _ = read_drawing_data(loaded, data, input_kwargs(options), target)
    clusters = unit_clusters(som, n_clusters)

    from somvq.plotting import plot_map

    unit_labels = label_names = None
    if y is not None:
        import numpy as np

        from somvq.analysis import label_units

        # any label text: encode as 0..C-1, label the units, write the text back
        label_names, codes = np.unique(np.asarray(y), return_inverse=True)
        with library_errors():
            unit_labels = label_units(som, X, codes.ravel(), fill="neighbours" if fill_labels else None)
    with library_errors():
        written = plot_map(
            som,
            output_dir,
            kinds=kinds,
            X=X,
            image_shape=image_shape,
            codebook=loaded.scaling.inverse(som.codebook_),
            features=features,
            feature_names=loaded.feature_names,
            overwrite=force,
            clusters=clusters,
            labels=unit_labels,
            label_names=None if label_names is None else [str(name) for name in label_names],
        )
    for kind, path in written.items():
        click.echo(f"{kind:<11} {path}")
