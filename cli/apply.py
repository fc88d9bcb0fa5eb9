"""``somvq predict`` and ``somvq transform``: apply a saved map to data."""

from __future__ import annotations

from typing import Any

import click

from ._errors import library_errors
from ._input import load_input
from ._model import load_model
from ._options import input_kwargs, input_options, output_options
from ._output import axis_names, check_output, write_table

MODEL = click.Path(exists=True, dir_okay=False)
DATA = click.Path(exists=True, dir_okay=False, allow_dash=True)


@click.command()
@click.argument("model", type=MODEL)
@click.argument("data", required=False, type=DATA)
@input_options
@output_options
@click.option(
    "--coordinates/--no-coordinates",
    default=True,
    show_default=True,
    help="Add the BMU's grid position (row, col).",
)
@click.option("--distance", is_flag=True, help="Add the distance from each row to its BMU.")
def predict(model: str, data: str | None, **options: Any) -> None:
    """Best-matching unit of each row of DATA under MODEL.

    One output row per input row: the BMU index (0-based, C order), its grid position
    and, with --distance, the distance to it. DATA is scaled as at fit time.

    \b
    Examples:
      somvq predict model.somvq.npz data.csv
      somvq predict model.somvq.npz data.csv --distance -o bmus.csv
      somvq predict model.somvq.npz --dataset digits -o bmus.npy
    """
    import numpy as np

    output, force = options.pop("output"), options.pop("force")
    check_output(output, force, suffixes=(".csv", ".tsv", ".txt", ".npy"))
    loaded = load_model(model)
    from ._supervised import supervised_info

    if supervised_info(loaded) is not None:  # a map trained with --target: the predicted target
        from ._supervised import load_features, predict_target, write_predictions

        if output is not None and output != "-":  # before any work: the predictions are text
            check_output(output, force, suffixes=(".csv", ".tsv", ".txt"))
        X, _, _ = load_features(loaded, data, input_kwargs(options))
        write_predictions(predict_target(loaded, X), str(supervised_info(loaded)["target"]), output, force)
        return
    # A map fitted with --missing ignore maps rows with missing values too.
    inputs = load_input(data, missing=loaded.accepts_missing, **input_kwargs(options))
    X = loaded.prepare(inputs)
    som = loaded.som
    with library_errors(inputs.source):
        bmus = som.predict(X)
        parts, names = [bmus[:, None]], ["bmu"]
        if options["coordinates"]:
            parts.append(np.asarray(som.grid_.indices[bmus]))
            names += axis_names(som.grid_.ndim)
        if options["distance"]:
            if np.isnan(X).any():  # the masked distance over the observed features
                from somvq.missing import masked_assign

                parts.append(np.sqrt(masked_assign(X, som.codebook_)[1])[:, None])
            else:  # beyond ~1e154 the squares overflow: inf, as transform gives, not a warning
                with np.errstate(over="ignore"):
                    squared = ((X - som.codebook_[bmus]) ** 2).sum(axis=1, dtype=np.float64)
                parts.append(np.sqrt(np.maximum(squared, 0))[:, None])
            names.append("distance")
        table = np.hstack(parts) if options["distance"] else np.hstack(parts).astype(np.int64)
    with library_errors(output):  # a failed write is the output's, not the input's
        write_table(table, names, output, force=force)
    _report(output, table)


@click.command()
@click.argument("model", type=MODEL)
@click.argument("data", required=False, type=DATA)
@input_options
@output_options
def transform(model: str, data: str | None, **options: Any) -> None:
    """Distance from each row of DATA to every unit of MODEL.

    One output row per input row and one column per unit (unit_0 ... unit_K-1, C order):
    a soft, K-dimensional code of the row. DATA is scaled as at fit time.

    \b
    Examples:
      somvq transform model.somvq.npz data.csv -o distances.npy
      somvq transform model.somvq.npz - < data.csv > distances.csv
    """
    output, force = options.pop("output"), options.pop("force")
    check_output(output, force, suffixes=(".csv", ".tsv", ".txt", ".npy"))
    loaded = load_model(model, unsupervised="somvq transform")
    # A map fitted with --missing ignore maps rows with missing values too.
    inputs = load_input(data, missing=loaded.accepts_missing, **input_kwargs(options))
    X = loaded.prepare(inputs)
    with library_errors(inputs.source):
        distances = loaded.som.transform(X)
    with library_errors(output):
        write_table(distances, [f"unit_{k}" for k in range(distances.shape[1])], output, force=force)
    _report(output, distances)


def _report(output: str | None, table: Any) -> None:
    if output is not None and output != "-":
        click.echo(f"wrote {table.shape[0]} rows x {table.shape[1]} columns to {output}", err=True)
