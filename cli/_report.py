"""What the commands print: map quality metrics and aligned two-column tables."""

from __future__ import annotations

from typing import Any


def map_metrics(som: Any, X: Any) -> dict[str, Any]:
    """Quality of a fitted map on ``X`` (already scaled as the model expects)."""
    from somvq import metrics

    labels = som.predict(X)
    n_units = som.grid_.n_units
    return {
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "n_units": int(n_units),
        "quantization_error": float(som.quantization_error(X)),
        "quantization_error_squared": float(som.quantization_error(X, squared=True)),
        "topographic_error": float(som.topographic_error(X)),
        "perplexity": float(metrics.perplexity(labels, n_units)),
        "used_units": int(metrics.used_units(labels, n_units)),
        "neighbour_distance_ratio": (
            float(metrics.neighbour_distance_ratio(som.codebook_, som.grid_))
            if n_units >= 2
            else float("nan")
        ),
    }


#: Query rows of the rank measures of ``evaluate --all`` above which they are sampled.
SUITE_SAMPLE = 5000


def suite_metrics(som: Any, X: Any, *, n_neighbors: int = 5, sample: int | None = None) -> dict[str, Any]:
    """The measures of :func:`somvq.metrics.quality_suite` beyond :func:`map_metrics` (``evaluate --all``)."""
    import numpy as np

    from somvq import metrics

    from ._errors import DataError

    # The suite's measures compare complete rows (input-space ranks, kernel distances): rows
    # with holes (a missing="ignore" map) are left out, and the table says how many remain.
    complete = ~np.isnan(X).any(axis=1)
    n_complete = int(complete.sum())
    if n_complete < X.shape[0]:
        if n_complete <= n_neighbors:
            raise DataError(
                f"--all needs more than {n_neighbors} rows without missing values; the data has "
                f"{n_complete} of {X.shape[0]}."
            )
        X = X[complete]
    if sample is None and X.shape[0] > SUITE_SAMPLE:
        sample = SUITE_SAMPLE
    if X.shape[0] <= 2 * n_neighbors:
        import click

        click.echo(
            f"note: trustworthiness and neighbourhood preservation need more than 2 x {n_neighbors} "
            f"rows (--n-neighbors {n_neighbors}); the data has {X.shape[0]}: they are left out (nan).",
            err=True,
        )
    values = metrics.quality_suite(
        X, som.codebook_, som.grid_, n_neighbors=n_neighbors, sample=sample, random_state=0
    )
    out = {
        name: float(values[name])
        for name in metrics.QUALITY_MEASURES
        if name not in ("quantization_error", "topographic_error")
    }
    out["n_neighbors"] = int(n_neighbors)
    out["suite_rows"] = n_complete
    out["rank_sample"] = int(min(sample, X.shape[0])) if sample is not None else int(X.shape[0])
    return out


def metric_rows(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Human-readable rows of :func:`map_metrics` (and a ``time_s`` entry if present)."""
    rows = [
        ("quantization error", f"{values['quantization_error']:.6g}"),
        ("  squared (mean)", f"{values['quantization_error_squared']:.6g}"),
        ("topographic error", f"{values['topographic_error']:.4f}"),
        ("used units", f"{values['used_units']} / {values['n_units']}"),
        ("perplexity", f"{values['perplexity']:.2f}"),
        ("neighbour/all distance", f"{values['neighbour_distance_ratio']:.4f}"),
    ]
    if "distortion" in values:
        rows += [
            ("distortion (gaussian r=1)", f"{values['distortion']:.6g}"),
            ("topographic product", f"{values['topographic_product']:.4g}"),
            (f"trustworthiness (k={values['n_neighbors']})", f"{values['trustworthiness']:.4f}"),
            (
                f"neighbourhood preservation (k={values['n_neighbors']})",
                f"{values['neighbourhood_preservation']:.4f}",
            ),
            ("combined error", f"{values['combined_error']:.6g}"),
        ]
        if values["suite_rows"] < values["n_samples"]:
            rows.append(("  measured on", f"the {values['suite_rows']} rows without missing values"))
        if values["rank_sample"] < values["suite_rows"]:
            rows.append(("  rank measures over", f"{values['rank_sample']} sampled rows"))
    if "time_s" in values:
        rows.append(("time", f"{values['time_s']:.2f} s"))
    return rows


def format_table(rows: list[tuple[str, str]], indent: int = 2) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{' ' * indent}{name.ljust(width)}  {value}" for name, value in rows)


def grid_text(grid: Any) -> str:
    periodic = ""
    if all(grid.periodic):
        periodic = ", periodic"
    elif any(grid.periodic):
        periodic = f", periodic axes {[i for i, p in enumerate(grid.periodic) if p]}"
    return f"{'x'.join(str(s) for s in grid.shape)} {grid.topology}{periodic} ({grid.n_units} units)"
