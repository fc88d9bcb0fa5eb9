"""``somvq evaluate``: quality metrics of a saved map on data."""

from __future__ import annotations

import json
from typing import Any

import click

from ._errors import library_errors
from ._input import load_input
from ._model import load_model
from ._options import input_kwargs, input_options
from ._report import format_table, grid_text, map_metrics, metric_rows, suite_metrics


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("data", required=False, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@input_options
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@click.option(
    "--all",
    "suite",
    is_flag=True,
    help="Add the whole quality suite: distortion, topographic product, trustworthiness, neighbourhood preservation, combined error.",
)
@click.option(
    "--n-neighbors",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="k of trustworthiness and neighbourhood preservation (with --all).",
)
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    help="Query rows of trustworthiness and neighbourhood preservation (with --all) [default: all rows up to 5000, else 5000 drawn with seed 0].",
)
def evaluate(
    model: str,
    data: str | None,
    as_json: bool,
    suite: bool,
    n_neighbors: int,
    sample: int | None,
    **options: Any,
) -> None:
    """Quality of MODEL on DATA: a metrics table.

    \b
    quantization error      mean distance of each row to its BMU (and its square)
    topographic error       fraction of rows whose two best units are not grid neighbours
    used units              units that are the BMU of at least one row
    perplexity              exp(entropy) of the unit usage (K when all are used equally)
    neighbour/all distance  mean codebook distance between grid neighbours over the mean
                            between all units: about 1 without topology, << 1 when ordered

    \b
    --all adds (somvq.metrics, references in docs/analysis.md):
    distortion              SOM energy, Gaussian neighbourhood of radius 1
    topographic product     Bauer & Pawelzik: 0 ordered, < 0 map dimension too small
    trustworthiness         Venna & Kaski, on BMU grid positions (1 = best)
    neighbourhood pres.     Venna & Kaski continuity (1 = best)
    combined error          Kaski & Lagus: QE plus path length to the second BMU

    \b
    Examples:
      somvq evaluate model.somvq.npz test.csv
      somvq evaluate model.somvq.npz --dataset fashion-mnist --split test --json
      somvq evaluate model.somvq.npz --dataset digits --all
    """
    loaded = load_model(model)
    from ._supervised import supervised_info

    info = supervised_info(loaded)
    if info is not None:  # a map trained with --target: accuracy or R² on DATA's target column
        from ._supervised import load_features, predict_target, score

        X, labels, inputs = load_features(loaded, data, input_kwargs(options))
        if labels is None:
            raise click.UsageError(
                f"{inputs.source} has no column {info.get('target')!r}: evaluate needs the target."
            )
        metric, value = score(info, labels, predict_target(loaded, X))
        if as_json:
            click.echo(json.dumps({"model": model, "data": inputs.source, metric: value}, indent=2))
        else:
            click.echo(f"model  {model}: predicts {info.get('target')!r}")
            click.echo(f"data   {inputs.description or inputs.source}")
            click.echo(f"{metric} {value:.4f}")
        return
    inputs = load_input(data, missing=loaded.accepts_missing, **input_kwargs(options))
    X = loaded.prepare(inputs)
    with library_errors(inputs.source):
        values = map_metrics(loaded.som, X)
        if suite:
            values.update(suite_metrics(loaded.som, X, n_neighbors=n_neighbors, sample=sample))
    if as_json:
        values = {k: (None if isinstance(v, float) and v != v else v) for k, v in values.items()}
        click.echo(json.dumps({"model": model, "data": inputs.source, **values}, indent=2))
        return
    click.echo(f"model  {model}: {grid_text(loaded.som.grid_)}")
    click.echo(f"data   {inputs.description or inputs.source}")
    click.echo(format_table(metric_rows(values)))
