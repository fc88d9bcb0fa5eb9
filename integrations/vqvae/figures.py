"""The study's figures: learning curves, decoded codebooks and the index-shift experiment.

Written with matplotlib's object API (no pyplot, no global state); each file is written
under a temporary name and moved into place.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from somvq._atomic import atomic_write

from .data import ImageData
from .evaluation import SHIFT_OFFSETS, shift_indices
from .runs import load_run, run_directory
from .variants import LABELS, NEIGHBOURHOODS, Variant

__all__ = ["write_figures", "FIGURE_FILES"]

#: The figures :func:`write_figures` writes into the report's directory.
FIGURE_FILES = ("validation_loss.png", "perplexity.png", "codebooks.png", "index_shift.png")

_COLOUR = {"none": "tab:red", "hard": "tab:blue", "exponential": "tab:green"}


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1):
    from somvq.plotting import require_matplotlib

    require_matplotlib()
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    figure = Figure(figsize=(width, height))
    axes = figure.subplots(nrows, ncols, squeeze=False)
    return figure, axes


def _save(figure, path: Path) -> None:
    """The PNG, written whole or not at all (no temporary file left by a failure)."""
    figure.tight_layout()
    atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=100))


def _panels(variants: Sequence[Variant]) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    for v in variants:
        if (v.init_count, v.update) not in seen:
            seen.append((v.init_count, v.update))
    return seen


def _aligned(curves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The steps every seed's curve has, and each curve's value there (the last one logged
    at a step: a resumed run logs its old last step again). Seeds stopped at different
    steps (--time-budget) were paired by position: a value of one seed at step 130 was
    averaged with another's at 150."""
    tables = [{float(step): float(value) for step, value in curve} for curve in curves]
    steps = sorted(set.intersection(*(set(table) for table in tables)))
    values = np.array([[table[step] for step in steps] for table in tables], dtype=float)
    return np.array(steps, dtype=float), values.reshape(len(tables), len(steps))


def _curve_figure(
    variants, seeds, logs, key: str, ylabel: str, path: Path, *, log_scale: bool, smooth: int = 1
) -> None:
    panels = _panels(variants)
    columns = min(2, len(panels))
    rows = (len(panels) + columns - 1) // columns
    figure, axes = _figure(4.2 * columns, 3.0 * rows, rows, columns)
    for index, (init_count, update) in enumerate(panels):
        ax = axes[index // columns][index % columns]
        for variant in variants:
            if (variant.init_count, variant.update) != (init_count, update):
                continue
            curves = []
            for seed in seeds:
                records = logs.get((variant.name, seed))
                if records:
                    points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
                    curves.append(np.array(points, dtype=float))
            if not curves:
                continue
            steps, values = _aligned(curves)
            length = steps.size
            if length == 0:
                continue
            if smooth > 1 and length >= smooth:
                kernel = np.ones(smooth) / smooth
                values = np.stack([np.convolve(v, kernel, mode="valid") for v in values])
                steps = steps[smooth - 1 :]
            colour = _COLOUR[variant.neighbourhood]
            ax.plot(steps, values.mean(0), color=colour, lw=1.3, label=LABELS[variant.neighbourhood])
            if values.shape[0] > 1:
                ax.fill_between(steps, values.min(0), values.max(0), color=colour, alpha=0.2, lw=0)
        ax.set_title(f"N0 = {init_count}, update {update}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        if log_scale:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    for index in range(len(panels), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    _save(figure, path)


def _as_images(x: torch.Tensor) -> np.ndarray:
    """(n, C, H, W) in [-0.5, 0.5] -> (n, H, W[, 3]) in [0, 1]."""
    images = (x + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return images[..., 0] if images.shape[-1] == 1 else images


def _mosaic(images: np.ndarray, rows: int, columns: int, gap: int = 1) -> np.ndarray:
    height, width = images.shape[1:3]
    shape = (rows * (height + gap) - gap, columns * (width + gap) - gap) + images.shape[3:]
    out = np.ones(shape, dtype=np.float32)
    for index, image in enumerate(images[: rows * columns]):
        r, c = divmod(index, columns)
        out[
            r * (height + gap) : r * (height + gap) + height, c * (width + gap) : c * (width + gap) + width
        ] = image
    return out


def _showcase_runs(variants, seeds, output_dir) -> list[tuple[Variant, Path]]:
    """One run per neighbourhood (the paper's default N0=1, update all when present)."""
    chosen = []
    for neighbourhood in NEIGHBOURHOODS:
        candidates = [v for v in variants if v.neighbourhood == neighbourhood]
        if not candidates:
            continue
        preferred = [v for v in candidates if v.init_count == 1 and v.update == "all"] or candidates
        directory = run_directory(output_dir, preferred[0], seeds[0])
        if (directory / "checkpoint.pt").exists():
            chosen.append((preferred[0], directory))
    return chosen


def _load_model(directory: Path, data: ImageData):
    return load_run(directory, data.channels)[1]


@torch.no_grad()
def write_figures(variants, seeds, output_dir, report_dir, logs, data) -> list[str]:
    """Draw the study's figures into ``report_dir``; returns their file names.

    ``validation_loss.png`` and ``perplexity.png`` (curves per variant from ``logs``, bands
    over seeds), and from one run per neighbourhood ``codebooks.png`` (the decoded
    codebook in grid order) and ``index_shift.png`` (reconstructions under index shifts).
    """
    names = []
    _curve_figure(
        variants,
        seeds,
        logs,
        "val_loss",
        "validation loss (MSE)",
        report_dir / "validation_loss.png",
        log_scale=True,
    )
    names.append("validation_loss.png")
    total = max(len(r) for r in logs.values())
    _curve_figure(
        variants,
        seeds,
        logs,
        "perplexity",
        "codebook perplexity (train batch)",
        report_dir / "perplexity.png",
        log_scale=False,
        smooth=max(1, total // 100),
    )
    names.append("perplexity.png")
    showcase = _showcase_runs(variants, seeds, output_dir)
    if not showcase:
        return names
    # The codebook decoded: code k fills a small latent map; tiles in grid order.
    grid_shape = _load_model(showcase[0][1], data).quantizer.grid_shape
    rows, columns = (
        (grid_shape[0], int(np.prod(grid_shape[1:]))) if len(grid_shape) > 1 else (1, grid_shape[0])
    )
    panel_width = 4.8 if columns >= rows else 3.2
    figure, axes = _figure(panel_width * len(showcase), panel_width * rows / columns + 0.4, 1, len(showcase))
    for ax, (variant, directory) in zip(axes[0], showcase):
        model = _load_model(directory, data)
        # a 3 x 3 map of one code: the code's texture without the image border dominating
        codes = torch.arange(model.quantizer.codebook_size)[:, None, None].expand(-1, 3, 3)
        decoded = _as_images(model.decode_indices(codes))
        ax.imshow(_mosaic(decoded, rows, columns), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{LABELS[variant.neighbourhood]} ({variant.name}, seed {seeds[0]})", fontsize=8)
        ax.axis("off")
    _save(figure, report_dir / "codebooks.png")
    names.append("codebooks.png")
    # Index shift: every latent index moved 1, 2, 3 grid steps along the last axis.
    examples = data.validation[:4]
    figure, axes = _figure(3.2 * len(showcase), 3.0, 1, len(showcase))
    for ax, (variant, directory) in zip(axes[0], showcase):
        model = _load_model(directory, data)
        _, indices, _ = model(examples)
        columns = [_as_images(examples), _as_images(model.decode_indices(indices))]
        for offset in SHIFT_OFFSETS:
            shifted = shift_indices(indices, model.quantizer.grid_shape, offset)
            columns.append(_as_images(model.decode_indices(shifted)))
        stacked = np.stack(columns, axis=1).reshape(-1, *columns[0].shape[1:])  # image-major rows
        ax.imshow(
            _mosaic(stacked, examples.shape[0], len(columns)),
            cmap="gray",
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        ax.set_title(f"{LABELS[variant.neighbourhood]}\ninput | recon. | shift 1 | 2 | 3", fontsize=8)
        ax.axis("off")
    _save(figure, report_dir / "index_shift.png")
    names.append("index_shift.png")
    return names
