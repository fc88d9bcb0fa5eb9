"""The study's runs: one training per (variant, seed), where it lives, and reading it back.

Run ``(variant, seed)`` lives in ``output_dir/runs/<variant>/seed<k>/`` (checkpoint and
logs written by :func:`~.train.train`). :func:`train_runs` trains every run not yet
finished (resuming interrupted ones), in this process or in worker processes;
:func:`load_run` rebuilds a finished run's configuration and model from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from .model import VQVAE
from .train import (
    TrainConfig,
    build_model,
    check_same_settings,
    load_checkpoint,
    progress_bar,
    restore,
    train,
)
from .variants import Variant

__all__ = ["run_config", "run_directory", "config_from_dict", "train_runs", "load_run"]


def run_config(base: TrainConfig, variant: Variant, seed: int) -> TrainConfig:
    """``base`` with the variant's neighbourhood, initial count and update, and ``seed``."""
    return dataclasses.replace(
        base,
        neighbourhood=variant.neighbourhood,
        init_count=float(variant.init_count),
        update=variant.update,
        seed=seed,
    )


def run_directory(output_dir: Path, variant: Variant, seed: int) -> Path:
    """Where run ``(variant, seed)`` keeps its checkpoint and logs."""
    return Path(output_dir) / "runs" / variant.name / f"seed{seed}"


def config_from_dict(config_dict: dict[str, Any]) -> TrainConfig:
    """The inverse of :meth:`TrainConfig.to_dict` (the grid back to a tuple); ValueError
    naming settings this version does not know (a checkpoint of another version)."""
    config_dict = dict(config_dict)
    unknown = sorted(set(config_dict) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ValueError(f"settings this somvq does not know: {unknown}")
    grid = config_dict.pop("grid", None)
    return TrainConfig(**config_dict, grid=None if grid is None else tuple(grid))


def _train_worker(config_dict: dict[str, Any], directory: str, threads: int | None) -> str:
    """One run in a worker process (single-threaded torch unless told otherwise)."""
    if threads is not None:
        torch.set_num_threads(threads)
    train(config_from_dict(config_dict), directory, progress=False)
    return directory


def _finished(directory: Path, config: TrainConfig) -> bool:
    path = directory / "checkpoint.pt"
    if not path.exists():
        return False
    payload = load_checkpoint(path)
    check_same_settings(payload, config, path)  # another configuration's run is not this one
    records = payload["records"]
    if int(payload["step"]) >= config.steps:
        return True
    # stopped by the time budget: finished unless the budget has grown
    seconds = float(payload.get("seconds", 0.0))
    return config.time_budget is not None and seconds >= config.time_budget and bool(records)


def train_runs(
    base: TrainConfig,
    variants: Sequence[Variant],
    seeds: Sequence[int],
    output_dir: str | os.PathLike,
    *,
    jobs: int = 1,
    threads: int | None = None,
    progress: bool = True,
) -> None:
    """Train every (variant, seed) that is not finished yet; see :func:`~.compare.compare`."""
    output_dir = Path(output_dir)
    if not seeds:
        raise ValueError("no seed given.")
    runs = [(v, s) for v in variants for s in seeds]
    # Interleave variants so a time-limited study has every variant early.
    runs.sort(key=lambda run: (list(seeds).index(run[1]), list(variants).index(run[0])))
    pending = []
    for variant, seed in runs:
        directory = run_directory(output_dir, variant, seed)
        if not _finished(directory, run_config(base, variant, seed)):
            pending.append((run_config(base, variant, seed), directory))
    bar = progress_bar(total=len(pending), desc="runs", unit="run") if progress and pending else None
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


def load_run(
    directory: str | os.PathLike, in_channels: int
) -> tuple[TrainConfig, VQVAE, list[dict[str, Any]]]:
    """A finished run's configuration, its final model (in eval mode) and its log records."""
    from somvq.exceptions import CheckpointError

    path = Path(directory) / "checkpoint.pt"
    payload = load_checkpoint(path)
    try:
        config = config_from_dict(payload["config"])
        config.check()
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{str(path)!r} is corrupted: its configuration cannot be read ({exc}); remove it to rerun the run."
        ) from None
    model = build_model(config, in_channels)
    restore(path, payload, model)
    return config, model.eval(), payload["records"]
