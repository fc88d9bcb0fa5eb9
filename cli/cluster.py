"""``somvq cluster``: clusters of a saved map's units, and of the rows of data through their BMU."""

from __future__ import annotations

from typing import Any

import click

from ._errors import library_errors
from ._input import load_input
from ._model import load_model
from ._options import input_kwargs, input_options, output_options
from ._output import axis_names, check_output, write_table

METHODS = ("agglomerative", "kmeans", "umatrix")


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("data", required=False, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("-k", "--n-clusters", required=True, type=click.IntRange(min=1), help="Number of clusters.")
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default="agglomerative",
    show_default=True,
    help="How to cluster the units (see somvq.cluster_units).",
)
@click.option(
    "--random-state",
    type=click.IntRange(0, 2**32 - 1),
    default=0,
    show_default=True,
    help="Seed of --method kmeans.",
)
@input_options
@output_options
def cluster(
    model: str, data: str | None, n_clusters: int, method: str, random_state: int, **options: Any
) -> None:
    """Cluster the units of MODEL; with DATA (or --dataset), the cluster of each row.

    Without DATA: one row per unit: unit index, grid position and cluster. With DATA:
    one row per input row: its BMU and the BMU's cluster. Units are clustered with
    somvq.cluster_units: "agglomerative" (Ward on the codebook, merging only grid
    neighbours: clusters are connected regions of the map), "kmeans" (on the codebook,
    ignoring the grid), "umatrix" (single linkage along the lowest U-matrix boundaries).
    Units that won nothing get a cluster too.

    \b
    Examples:
      somvq cluster model.somvq.npz -k 10
      somvq cluster model.somvq.npz -k 10 data.csv -o clusters.csv
      somvq cluster model.somvq.npz -k 10 --dataset digits --method umatrix
    """
    import numpy as np

    from somvq.analysis import cluster_units

    output, force = options.pop("output"), options.pop("force")
    check_output(output, force, suffixes=(".csv", ".tsv", ".txt", ".npy"))
    loaded = load_model(model, unsupervised="somvq cluster")
    som = loaded.som
    with library_errors(model):
        if n_clusters > som.grid_.n_units:
            raise click.UsageError(f"-k {n_clusters} is more than the map's {som.grid_.n_units} units.")
        clusters = cluster_units(som, n_clusters, method=method, random_state=random_state)
    kwargs = input_kwargs(options)
    if data is None and kwargs["dataset"] is None:
        positions = np.asarray(som.grid_.indices)
        names = ["unit"] + axis_names(som.grid_.ndim) + ["cluster"]
        table = np.hstack([np.arange(som.grid_.n_units)[:, None], positions, clusters[:, None]]).astype(
            np.int64
        )
    else:
        inputs = load_input(data, missing=loaded.accepts_missing, **kwargs)
        X = loaded.prepare(inputs)
        with library_errors(inputs.source):
            bmus = som.predict(X)
        table = np.stack([bmus, clusters[bmus]], axis=1).astype(np.int64)
        names = ["bmu", "cluster"]
    write_table(table, names, output, force=force)
    if output is not None and output != "-":
        click.echo(f"wrote {table.shape[0]} rows x {table.shape[1]} columns to {output}", err=True)
