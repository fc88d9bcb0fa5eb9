"""``somvq info``: what a model file holds."""

from __future__ import annotations

import json
from typing import Any

import click

from ._errors import library_errors
from ._model import load_model
from ._report import format_table, grid_text


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the file's metadata as JSON.")
def info(model: str, as_json: bool) -> None:
    """Describe the model file MODEL: format, map, parameters, training state.

    The file is checked completely (as when it is used); a corrupted or foreign file is
    reported as such.

    \b
    Examples:
      somvq info somvq-output/model.somvq.npz
      somvq info model.somvq.npz --json
    """
    from somvq.io import read_metadata

    loaded = load_model(model)
    with library_errors():
        meta = read_metadata(model)
    som = loaded.som
    if as_json:
        meta = dict(meta)
        meta.pop("rng_state", None)
        click.echo(json.dumps(meta, indent=2, default=str))
        return
    params: dict[str, Any] = som.get_params()
    rows = [
        (
            "format",
            f"{meta['format']} v{meta['format_version']} (written by somvq {meta.get('somvq_version', '?')})",
        ),
        ("estimator", meta["estimator"]),
        ("grid", grid_text(som.grid_)),
        (
            "codebook",
            f"{som.codebook_.shape[0]} units x {som.codebook_.shape[1]} features, {som.codebook_.dtype}",
        ),
        ("algorithm", f"{params['algorithm']}, {params['neighbourhood']} neighbourhood"),
        ("trained", f"{getattr(som, 'n_iter_', 0)} epochs/calls, {getattr(som, 'n_steps_', 0)} updates"),
        ("input scaling", loaded.scaling.method),
    ]
    if "data" in loaded.extra:
        rows.append(("training data", str(loaded.extra["data"])))
    if loaded.image_shape:
        rows.append(("image shape", "x".join(str(s) for s in loaded.image_shape)))
    names = loaded.feature_names
    if names:
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
        rows.append(("features", shown))
    other = {k: v for k, v in params.items() if k not in ("algorithm", "neighbourhood", "grid")}
    rows.append(("parameters", ", ".join(f"{k}={_short(v)}" for k, v in sorted(other.items()))))
    rows.append(("arrays", ", ".join(meta.get("arrays", []))))
    click.echo(f"{model}")
    click.echo(format_table(rows))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"<{type(value).__name__}>"
