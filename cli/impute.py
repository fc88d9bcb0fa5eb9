"""``somvq impute``: fill the missing values of DATA from a saved map."""

from __future__ import annotations

from typing import Any

import click

from ._errors import DataError, library_errors
from ._input import load_input
from ._model import load_model
from ._options import input_kwargs, input_options, output_options
from ._output import check_output, write_table

MODEL = click.Path(exists=True, dir_okay=False)
DATA = click.Path(exists=True, dir_okay=False, allow_dash=True)


@click.command()
@click.argument("model", type=MODEL)
@click.argument("data", required=False, type=DATA)
@input_options
@output_options
def impute(model: str, data: str | None, **options: Any) -> None:
    """Fill the missing values of DATA from MODEL (fitted with --missing ignore).

    Each missing entry (an empty field, NA or nan in CSV/TSV; NaN in .npy) is replaced
    by the corresponding entry of its row's best-matching unit, found over the row's
    observed features. Observed entries are written back unchanged, in the original
    units (the fit-time scaling is undone). inf is an error, as is a row with no observed
    value.

    \b
    Examples:
      somvq fit data.csv --missing ignore --standardize -o model.somvq.npz
      somvq impute model.somvq.npz data.csv -o filled.csv
      somvq impute model.somvq.npz holes.npy -o filled.npy
    """
    import numpy as np

    output, force = options.pop("output"), options.pop("force")
    check_output(output, force, suffixes=(".csv", ".tsv", ".txt", ".npy"))
    loaded = load_model(model, unsupervised="somvq impute")
    som = loaded.som
    if som.missing != "ignore":
        raise DataError(
            f"{model} was fitted with missing={som.missing!r}; impute needs a map fitted with "
            "--missing ignore (somvq fit --missing ignore)."
        )
    inputs = load_input(data, missing=True, **input_kwargs(options))
    X = loaded.prepare(inputs)
    with library_errors(inputs.source):
        filled = som.impute(X)
    original = loaded.columns_in_model_order(inputs).astype(np.float64)
    holes = np.isnan(original)
    table = np.where(holes, loaded.scaling.inverse(filled), original)
    names = inputs.feature_names
    model_names = loaded.feature_names
    if names is not None and model_names is not None and [str(n) for n in names] != model_names:
        # DATA's columns in another order: written back in DATA's order, under its header
        table = table[:, [model_names.index(str(name)) for name in names]]
    names = names or [f"x{j}" for j in range(table.shape[1])]
    with library_errors():
        # observed entries exactly as read (float64's shortest text), the holes filled
        write_table(table, names, output, force=force, exact=True)
    where = output if output is not None and output != "-" else "stdout"
    click.echo(
        f"filled {int(holes.sum())} missing value(s) in {int(holes.any(axis=1).sum())} row(s); "
        f"wrote {table.shape[0]} rows x {table.shape[1]} columns to {where}",
        err=True,
    )
