"""The study's report: every finished run evaluated, a Markdown table and a CSV.

:func:`write_report` writes into ``report_dir``:

``report.md``        the table (mean +- sd over seeds) and the figures' list;
``runs.csv``         one row per run;
and the figures of :func:`~.figures.write_figures`.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data import load_image_data
from .evaluation import evaluate_run
from .figures import FIGURE_FILES, write_figures
from .runs import run_directory
from .train import TrainConfig, build_model, load_checkpoint, write_text_atomically
from .variants import Variant

__all__ = ["write_report", "REPORT_FILES"]

#: What :func:`write_report` writes into the report's directory.
REPORT_FILES = ("report.md", "runs.csv", *FIGURE_FILES)

_COLUMNS = (
    ("final_val_loss", "final val loss", "{:.4f}"),
    ("best_val_loss", "best val loss", "{:.4f}"),
    ("early_val_loss", "val loss at 10%", "{:.4f}"),
    ("steps_to_1.2x", "steps to 1.2x best", "{:.0f}"),
    ("steps_to_1.1x", "steps to 1.1x best", "{:.0f}"),
    ("early_perplexity", "perplexity, first 10%", "{:.1f}"),
    ("final_perplexity", "perplexity, last 10%", "{:.1f}"),
    ("used_codes", "used codes (val)", "{:.1f}"),
    ("topographic_error", "topographic error", "{:.3f}"),
    ("neighbour_ratio", "neighbour/all distance", "{:.3f}"),
    ("shift1_change", "change at shift 1", "{:.4f}"),
)


def _cell(values: Sequence[float], pattern: str) -> str:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return "n/a"
    mean = pattern.format(float(np.mean(values)))
    if len(values) == 1:
        return mean
    return f"{mean} ± {pattern.format(float(np.std(values, ddof=1)))}"


def write_report(
    base: TrainConfig,
    variants: Sequence[Variant],
    seeds: Sequence[int],
    output_dir: str | os.PathLike,
    report_dir: str | os.PathLike,
    *,
    echo: Callable[[str], None] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Evaluate every finished run and write report.md, runs.csv and the figures."""
    import csv

    output_dir, report_dir = Path(output_dir), Path(report_dir)
    data = load_image_data(
        base.dataset,
        validation_size=base.validation_size,
        split_seed=base.split_seed,
        n_samples=base.n_samples,
        data_dir=base.data_dir,
    )
    per_run: dict[tuple[str, int], dict[str, Any]] = {}
    logs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for variant in variants:
        for seed in seeds:
            directory = run_directory(output_dir, variant, seed)
            if (directory / "checkpoint.pt").exists():
                per_run[(variant.name, seed)] = evaluate_run(directory, data)
                logs[(variant.name, seed)] = load_checkpoint(directory / "checkpoint.pt")["records"]
    if not per_run:
        raise ValueError(f"no finished run under {str(output_dir)!r}.")
    keys = [
        "variant",
        "seed",
        *(c[0] for c in _COLUMNS),
        "shift2_change",
        "shift3_change",
        "steps",
        "seconds",
        "early_step",
    ]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    for key in sorted(per_run):
        writer.writerow(per_run[key])
    write_text_atomically(report_dir / "runs.csv", table.getvalue())
    lines = [
        "| variant | runs | " + " | ".join(c[1] for c in _COLUMNS) + " |",
        "|---|---|" + "---|" * len(_COLUMNS),
    ]
    table: dict[str, dict[str, Any]] = {}
    for variant in variants:
        rows = [per_run[(variant.name, s)] for s in seeds if (variant.name, s) in per_run]
        if not rows:
            continue
        table[variant.name] = {c[0]: float(np.mean([r[c[0]] for r in rows])) for c in _COLUMNS}
        cells = [_cell([r[c[0]] for r in rows], c[2]) for c in _COLUMNS]
        lines.append(f"| {variant.name} | {len(rows)} | " + " | ".join(cells) + " |")
    figures = write_figures(variants, seeds, output_dir, report_dir, logs, data)
    text = [
        "# VQ-VAE study: KSOM vs EMA-VQ codebooks",
        "",
        f"Data: {base.dataset}; model: {base.channels} channels, latent dim {base.latent_dim}; "
        f"K = {base.codebook_size} codes, grid {tuple(build_model(base, data.channels).quantizer.grid_shape)}; "
        f"batch {base.batch_size}, lr {base.lr}, {base.steps} steps"
        + (f" or {base.time_budget:g} s" if base.time_budget else "")
        + f" per run; seeds {', '.join(map(str, seeds))}; validation on {data.validation.shape[0]} held-out images "
        f"every {base.validation_interval} steps.",
        "",
        "Mean ± sd over seeds. Validation loss: reconstruction MSE (pixels in [-0.5, 0.5]). "
        "'val loss at 10%': at the first validation after 10% of the steps. Steps to 1.1x/1.2x: first "
        "validation where the run is within 1.1x/1.2x of its own best. Perplexity: of the training "
        "batches, averaged over the first/last 10% of steps. Topographic error (8-neighbourhood) and "
        "shift change measured on the encoder outputs of 2000 validation images; 'change at shift 1': "
        "mean squared change of the decoded images when every latent index moves one grid step.",
        "",
        *lines,
        "",
        *[f"![{name}]({name})" for name in figures],
        "",
    ]
    if command:
        text[1:1] = ["", f"Command: `{command}`"]
    write_text_atomically(report_dir / "report.md", "\n".join(text))
    if echo is not None:
        echo("\n".join(lines))
        echo(f"report: {report_dir / 'report.md'}")
    return {
        "table": table,
        "runs": per_run,
        "figures": [str(report_dir / f) for f in figures],
        "report": str(report_dir / "report.md"),
    }
