"""The study: several quantiser variants x seeds, then a Markdown report with plots.

A variant is ``{neighbourhood}-n{init_count}-{update}``: neighbourhood ``none`` (EMA-VQ),
``hard`` or ``exponential`` (the paper's KSOM kernels), initial EMA count 0 or 1, update of
all codes or of the written ones only. :data:`ALL_VARIANTS` are the 12 combinations; every
one uses :class:`~somvq.integrations.torch.KohonenVectorQuantize`.

:func:`compare` trains every (variant, seed) with :func:`~.train.train` into
``output_dir/runs/<variant>/seed<k>/`` (resuming finished or interrupted runs), then
:func:`write_report` writes into ``report_dir``:

``report.md``        the table (mean +- sd over seeds) and the figures' list;
``runs.csv``         one row per run;
``validation_loss.png``, ``perplexity.png``, ``codebooks.png``, ``index_shift.png``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .data import ImageData, load_image_data
from .train import TrainConfig, build_model, load_checkpoint, train

__all__ = ["ALL_VARIANTS", "Variant", "parse_variants", "compare", "evaluate_run", "write_report", "SHIFT_OFFSETS"]

NEIGHBOURHOODS = ("none", "hard", "exponential")
SHIFT_OFFSETS = (1, 2, 3)
_LABEL = {"none": "EMA-VQ", "hard": "KSOM hard", "exponential": "KSOM exponential"}
_COLOUR = {"none": "tab:red", "hard": "tab:blue", "exponential": "tab:green"}


@dataclasses.dataclass(frozen=True)
class Variant:
    """One quantiser configuration of the study."""

    neighbourhood: str
    init_count: int
    update: str

    @property
    def name(self) -> str:
        return f"{self.neighbourhood}-n{self.init_count}-{self.update}"

    @property
    def label(self) -> str:
        return f"{_LABEL[self.neighbourhood]}, N0={self.init_count}, update {self.update}"

    @classmethod
    def parse(cls, name: str) -> "Variant":
        parts = name.strip().split("-")
        if len(parts) != 3 or parts[0] not in NEIGHBOURHOODS or parts[1] not in ("n0", "n1") or parts[2] not in ("all", "written"):
            raise ValueError(
                f"variant {name!r} is not of the form NEIGHBOURHOOD-nN0-UPDATE with NEIGHBOURHOOD in "
                f"{NEIGHBOURHOODS}, N0 in (0, 1), UPDATE in ('all', 'written'), e.g. 'hard-n1-all'."
            )
        return cls(parts[0], int(parts[1][1:]), parts[2])


ALL_VARIANTS = tuple(
    Variant(nb, n0, up) for nb in NEIGHBOURHOODS for n0 in (1, 0) for up in ("all", "written")
)


def parse_variants(spec: str | Sequence[str]) -> list[Variant]:
    """``"all"``, or names separated by commas (``"none-n1-all,hard-n1-all"``)."""
    names = [s for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if names == ["all"]:
        return list(ALL_VARIANTS)
    variants = [Variant.parse(n) for n in names]
    if not variants:
        raise ValueError("no variant given.")
    if len(set(variants)) != len(variants):
        raise ValueError(f"variants {spec!r} name one variant twice.")
    return variants


# ------------------------------------------------------------------ running
def _run_config(base: TrainConfig, variant: Variant, seed: int) -> TrainConfig:
    return dataclasses.replace(
        base, neighbourhood=variant.neighbourhood, init_count=float(variant.init_count), update=variant.update, seed=seed
    )


def _run_directory(output_dir: Path, variant: Variant, seed: int) -> Path:
    return output_dir / "runs" / variant.name / f"seed{seed}"


def _train_worker(config_dict: dict[str, Any], directory: str, threads: int | None) -> str:
    """One run in a worker process (single-threaded torch unless told otherwise)."""
    if threads is not None:
        torch.set_num_threads(threads)
    config_dict = dict(config_dict)
    grid = config_dict.pop("grid")
    config = TrainConfig(**config_dict, grid=None if grid is None else tuple(grid))
    train(config, directory, progress=False)
    return directory


def compare(
    base: TrainConfig,
    variants: Sequence[Variant],
    seeds: Sequence[int],
    output_dir: str | os.PathLike,
    report_dir: str | os.PathLike | None = None,
    *,
    jobs: int = 1,
    threads: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train every (variant, seed) and write the report; returns the report's summary.

    Parameters
    ----------
    base : TrainConfig
        Everything but neighbourhood, init_count, update and seed.
    variants, seeds
        The grid of runs (``len(variants) * len(seeds)`` trainings).
    output_dir : path
        Runs (checkpoints, logs) go to ``output_dir/runs/``; finished runs are not redone,
        interrupted ones resume.
    report_dir : path, optional
        Where report.md, runs.csv and the PNGs go (default ``output_dir``).
    jobs : int, default=1
        Runs trained at the same time, each in its own process (1: in this process).
    threads : int, optional
        torch threads per run (default: 1 when ``jobs > 1``, torch's default otherwise).
    command : str, optional
        The command line that made the study, quoted in the report.
    """
    output_dir = Path(output_dir)
    report_dir = Path(report_dir) if report_dir is not None else output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    report_dir.mkdir(parents=True, exist_ok=True)
    if not seeds:
        raise ValueError("no seed given.")
    runs = [(v, s) for v in variants for s in seeds]
    # Interleave variants so a time-limited study has every variant early.
    runs.sort(key=lambda run: (list(seeds).index(run[1]), list(variants).index(run[0])))
    pending = []
    for variant, seed in runs:
        directory = _run_directory(output_dir, variant, seed)
        if not _finished(directory, _run_config(base, variant, seed)):
            pending.append((_run_config(base, variant, seed), directory))
    bar = None
    if progress and pending:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pending), desc="runs", unit="run", dynamic_ncols=True)
    if jobs <= 1:
        old_threads = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            for config, directory in pending:
                train(config, directory, progress=progress)
                if bar is not None:
                    bar.update(1)
        finally:
            torch.set_num_threads(old_threads)
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = [pool.submit(_train_worker, c.to_dict(), str(d), threads or 1) for c, d in pending]
            for future in futures:
                future.result()
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    return write_report(base, variants, seeds, output_dir, report_dir, echo=echo, command=command)


def _finished(directory: Path, config: TrainConfig) -> bool:
    path = directory / "checkpoint.pt"
    if not path.exists():
        return False
    payload = load_checkpoint(path)
    records = payload["records"]
    if int(payload["step"]) >= config.steps:
        return True
    # stopped by the time budget: finished unless the budget has grown
    seconds = float(payload.get("seconds", 0.0))
    return config.time_budget is not None and seconds >= config.time_budget and bool(records)


# ------------------------------------------------------------------ evaluating one run
def _shift_indices(indices: torch.Tensor, grid_shape: Sequence[int], offset: int) -> torch.Tensor:
    """Move every index ``offset`` grid steps along the grid's last axis (reflected at the edge)."""
    columns = int(grid_shape[-1])
    column = indices % columns
    moved = column + offset
    period = 2 * (columns - 1) if columns > 1 else 1
    moved = moved % period
    moved = torch.where(moved > columns - 1, period - moved, moved) if columns > 1 else moved * 0
    return indices - column + moved


@torch.no_grad()
def evaluate_run(directory: str | os.PathLike, data: ImageData, n_images: int = 2000) -> dict[str, Any]:
    """Final model's codebook measures on (up to ``n_images``) validation images.

    Returns the log summary (final/best validation loss, steps to 1.1x and 1.2x of the
    best, early and final perplexity) and the codebook's topographic error (of the
    encoder outputs, via :meth:`KohonenVectorQuantize.to_estimator`), neighbour/all
    distance ratio, used codes and the reconstruction change under index shifts.
    """
    from somvq.metrics import neighbour_distance_ratio

    payload = load_checkpoint(Path(directory) / "checkpoint.pt")
    config_dict = dict(payload["config"])
    grid = config_dict.pop("grid")
    config = TrainConfig(**config_dict, grid=None if grid is None else tuple(grid))
    model = build_model(config, data.channels)
    model.load_state_dict(payload["model"])
    model.eval()
    records = payload["records"]
    summary = summarise_log(records)
    images = data.validation[:n_images]
    latents = torch.cat([model.encoder(images[i : i + 500]) for i in range(0, images.shape[0], 500)])
    rows = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).numpy().astype(np.float64)
    quantizer = model.quantizer
    som = quantizer.to_estimator()
    summary["topographic_error"] = float(som.topographic_error(rows))
    summary["neighbour_ratio"] = neighbour_distance_ratio(quantizer.codebook.numpy(), quantizer.grid)
    _, indices, _ = quantizer(latents)
    base_images = torch.cat([model.decode_indices(indices[i : i + 500]) for i in range(0, indices.shape[0], 500)])
    for offset in SHIFT_OFFSETS:
        shifted = _shift_indices(indices, quantizer.grid_shape, offset)
        decoded = torch.cat([model.decode_indices(shifted[i : i + 500]) for i in range(0, shifted.shape[0], 500)])
        summary[f"shift{offset}_change"] = float(((decoded - base_images) ** 2).mean())
    summary["variant"] = f"{config.neighbourhood}-n{config.init_count:g}-{config.update}"
    summary["seed"] = config.seed
    return summary


def summarise_log(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Final and best validation loss, steps to 1.1x/1.2x of the best, perplexities."""
    validated = [r for r in records if r.get("val_loss") is not None]
    if not validated:
        raise ValueError("the run has no validation record.")
    losses = np.array([r["val_loss"] for r in validated])
    steps = np.array([r["step"] for r in validated])
    best = float(losses.min())
    total = int(records[-1]["step"])
    early = [r["perplexity"] for r in records if r["step"] <= max(1, total // 10)]
    late = [r["perplexity"] for r in records if r["step"] > total - max(1, total // 10)]
    early_val = validated[int(np.searchsorted(steps, max(1, total // 10)))] if steps[-1] >= total // 10 else validated[-1]
    return {
        "steps": total,
        "seconds": float(records[-1]["seconds"]),
        "final_val_loss": float(losses[-1]),
        "best_val_loss": best,
        "steps_to_1.2x": int(steps[np.argmax(losses <= 1.2 * best)]),
        "steps_to_1.1x": int(steps[np.argmax(losses <= 1.1 * best)]),
        "early_val_loss": float(early_val["val_loss"]),
        "early_step": int(early_val["step"]),
        "early_perplexity": float(np.mean(early)),
        "final_perplexity": float(np.mean(late)),
        "used_codes": int(validated[-1]["val_used_codes"]),
    }


# ------------------------------------------------------------------ the report
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


def _load_logs(directory: Path) -> list[dict[str, Any]]:
    return load_checkpoint(directory / "checkpoint.pt")["records"]


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
        base.dataset, validation_size=base.validation_size, split_seed=base.split_seed, n_samples=base.n_samples, data_dir=base.data_dir
    )
    per_run: dict[tuple[str, int], dict[str, Any]] = {}
    logs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for variant in variants:
        for seed in seeds:
            directory = _run_directory(output_dir, variant, seed)
            if (directory / "checkpoint.pt").exists():
                per_run[(variant.name, seed)] = evaluate_run(directory, data)
                logs[(variant.name, seed)] = _load_logs(directory)
    if not per_run:
        raise ValueError(f"no finished run under {str(output_dir)!r}.")
    keys = ["variant", "seed", *(c[0] for c in _COLUMNS), "shift2_change", "shift3_change", "steps", "seconds", "early_step"]
    with open(report_dir / "runs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        for key in sorted(per_run):
            writer.writerow(per_run[key])
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
    figures = _write_figures(base, variants, seeds, output_dir, report_dir, logs, data)
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
    (report_dir / "report.md").write_text("\n".join(text))
    if echo is not None:
        echo("\n".join(lines))
        echo(f"report: {report_dir / 'report.md'}")
    return {"table": table, "runs": per_run, "figures": [str(report_dir / f) for f in figures], "report": str(report_dir / "report.md")}


# ------------------------------------------------------------------ figures
def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1):
    from somvq.plotting import require_matplotlib

    require_matplotlib()
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    figure = Figure(figsize=(width, height))
    axes = figure.subplots(nrows, ncols, squeeze=False)
    return figure, axes


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    temporary = path.with_name(path.stem + ".tmp.png")
    figure.savefig(temporary, dpi=100)
    os.replace(temporary, path)


def _panels(variants: Sequence[Variant]) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    for v in variants:
        if (v.init_count, v.update) not in seen:
            seen.append((v.init_count, v.update))
    return seen


def _curve_figure(variants, seeds, logs, key: str, ylabel: str, path: Path, *, log_scale: bool, smooth: int = 1) -> None:
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
            length = min(len(c) for c in curves)
            steps = curves[0][:length, 0]
            values = np.stack([c[:length, 1] for c in curves])
            if smooth > 1 and length >= smooth:
                kernel = np.ones(smooth) / smooth
                values = np.stack([np.convolve(v, kernel, mode="valid") for v in values])
                steps = steps[smooth - 1 :]
            colour = _COLOUR[variant.neighbourhood]
            ax.plot(steps, values.mean(0), color=colour, lw=1.3, label=_LABEL[variant.neighbourhood])
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
        out[r * (height + gap) : r * (height + gap) + height, c * (width + gap) : c * (width + gap) + width] = image
    return out


def _showcase_runs(variants, seeds, output_dir) -> list[tuple[Variant, Path]]:
    """One run per neighbourhood (the paper's default N0=1, update all when present)."""
    chosen = []
    for neighbourhood in NEIGHBOURHOODS:
        candidates = [v for v in variants if v.neighbourhood == neighbourhood]
        if not candidates:
            continue
        preferred = [v for v in candidates if v.init_count == 1 and v.update == "all"] or candidates
        directory = _run_directory(output_dir, preferred[0], seeds[0])
        if (directory / "checkpoint.pt").exists():
            chosen.append((preferred[0], directory))
    return chosen


def _load_model(directory: Path, data: ImageData):
    payload = load_checkpoint(directory / "checkpoint.pt")
    config_dict = dict(payload["config"])
    grid = config_dict.pop("grid")
    config = TrainConfig(**config_dict, grid=None if grid is None else tuple(grid))
    model = build_model(config, data.channels)
    model.load_state_dict(payload["model"])
    return model.eval()


@torch.no_grad()
def _write_figures(base, variants, seeds, output_dir, report_dir, logs, data) -> list[str]:
    names = []
    _curve_figure(variants, seeds, logs, "val_loss", "validation loss (MSE)", report_dir / "validation_loss.png", log_scale=True)
    names.append("validation_loss.png")
    total = max(len(r) for r in logs.values())
    _curve_figure(
        variants, seeds, logs, "perplexity", "codebook perplexity (train batch)", report_dir / "perplexity.png",
        log_scale=False, smooth=max(1, total // 100),
    )
    names.append("perplexity.png")
    showcase = _showcase_runs(variants, seeds, output_dir)
    if not showcase:
        return names
    # The codebook decoded: code k fills a small latent map; tiles in grid order.
    grid_shape = _load_model(showcase[0][1], data).quantizer.grid_shape
    rows, columns = (grid_shape[0], int(np.prod(grid_shape[1:]))) if len(grid_shape) > 1 else (1, grid_shape[0])
    panel_width = 4.8 if columns >= rows else 3.2
    figure, axes = _figure(panel_width * len(showcase), panel_width * rows / columns + 0.4, 1, len(showcase))
    for ax, (variant, directory) in zip(axes[0], showcase):
        model = _load_model(directory, data)
        # a 3 x 3 map of one code: the code's texture without the image border dominating
        codes = torch.arange(model.quantizer.codebook_size)[:, None, None].expand(-1, 3, 3)
        decoded = _as_images(model.decode_indices(codes))
        ax.imshow(_mosaic(decoded, rows, columns), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{_LABEL[variant.neighbourhood]} ({variant.name}, seed {seeds[0]})", fontsize=8)
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
            shifted = _shift_indices(indices, model.quantizer.grid_shape, offset)
            columns.append(_as_images(model.decode_indices(shifted)))
        stacked = np.stack(columns, axis=1).reshape(-1, *columns[0].shape[1:])  # image-major rows
        ax.imshow(_mosaic(stacked, examples.shape[0], len(columns)), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{_LABEL[variant.neighbourhood]}\ninput | recon. | shift 1 | 2 | 3", fontsize=8)
        ax.axis("off")
    _save(figure, report_dir / "index_shift.png")
    names.append("index_shift.png")
    return names
