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
            float(metrics.neighbour_distance_ratio(som.codebook_, som.grid_)) if n_units >= 2 else float("nan")
        ),
    }


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
