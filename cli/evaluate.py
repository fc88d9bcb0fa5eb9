"""``somvq evaluate``: quality metrics of a saved map on data."""

from __future__ import annotations

import json
from typing import Any

import click

from ._errors import library_errors
from ._input import load_input
from ._model import load_model
from ._options import input_kwargs, input_options
from ._report import format_table, grid_text, map_metrics, metric_rows


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("data", required=False, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@input_options
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
def evaluate(model: str, data: str | None, as_json: bool, **options: Any) -> None:
    """Quality of MODEL on DATA: a metrics table.

    \b
    quantization error      mean distance of each row to its BMU (and its square)
    topographic error       fraction of rows whose two best units are not grid neighbours
    used units              units that are the BMU of at least one row
    perplexity              exp(entropy) of the unit usage (K when all are used equally)
    neighbour/all distance  mean codebook distance between grid neighbours over the mean
                            between all units: about 1 without topology, << 1 when ordered

    \b
    Examples:
      somvq evaluate model.somvq.npz test.csv
      somvq evaluate model.somvq.npz --dataset fashion-mnist --split test --json
    """
    loaded = load_model(model)
    from ._supervised import supervised_info

    info = supervised_info(loaded)
    if info is not None:  # a map trained with --target: accuracy or R² on DATA's target column
        from ._supervised import load_features, predict_target, score

        X, labels, inputs = load_features(loaded, data, input_kwargs(options))
        if labels is None:
            raise click.UsageError(f"{inputs.source} has no column {info.get('target')!r}: evaluate needs the target.")
        metric, value = score(info, labels, predict_target(loaded, X))
        if as_json:
            click.echo(json.dumps({"model": model, "data": inputs.source, metric: value}, indent=2))
        else:
            click.echo(f"model  {model}: predicts {info.get('target')!r}")
            click.echo(f"data   {inputs.description or inputs.source}")
            click.echo(f"{metric} {value:.4f}")
        return
    inputs = load_input(data, missing=loaded.som.missing == "ignore", **input_kwargs(options))
    X = loaded.prepare(inputs)
    with library_errors(inputs.source):
        values = map_metrics(loaded.som, X)
    if as_json:
        values = {k: (None if isinstance(v, float) and v != v else v) for k, v in values.items()}
        click.echo(json.dumps({"model": model, "data": inputs.source, **values}, indent=2))
        return
    click.echo(f"model  {model}: {grid_text(loaded.som.grid_)}")
    click.echo(f"data   {inputs.description or inputs.source}")
    click.echo(format_table(metric_rows(values)))
