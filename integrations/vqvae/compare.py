"""The study: several quantiser variants x seeds, then a Markdown report with plots.

:func:`compare` trains every (variant, seed) (:mod:`.variants`) with :func:`~.train.train`
into ``output_dir/runs/<variant>/seed<k>/``, resuming finished or interrupted runs
(:mod:`.runs`), then :func:`~.report.write_report` evaluates every run
(:mod:`.evaluation`) and writes into ``report_dir``:

``report.md``        the table (mean +- sd over seeds) and the figures' list;
``runs.csv``         one row per run;
``validation_loss.png``, ``perplexity.png``, ``codebooks.png``, ``index_shift.png``
(:mod:`.figures`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .report import REPORT_FILES, write_report
from .runs import run_directory, train_runs
from .train import TrainConfig, check_output_files, check_run_outputs
from .variants import Variant

__all__ = ["compare", "check_outputs"]


def check_outputs(
    variants: Sequence[Variant], seeds: Sequence[int], output_dir: Path, report_dir: Path
) -> None:
    """Before any work: every file the study writes (each run's, the report's) is a
    regular file or absent; ValueError naming the first that is not."""
    for variant in variants:
        for seed in seeds:
            check_run_outputs(run_directory(output_dir, variant, seed))
    check_output_files(report_dir, REPORT_FILES, "the report")


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
    check_outputs(variants, seeds, output_dir, report_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report_dir.mkdir(parents=True, exist_ok=True)
    train_runs(base, variants, seeds, output_dir, jobs=jobs, threads=threads, progress=progress)
    return write_report(base, variants, seeds, output_dir, report_dir, echo=echo, command=command)
