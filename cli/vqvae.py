"""``somvq vqvae train | compare``: the VQ-VAE study (KSOM vs EMA-VQ codebooks).

Thin layer over :mod:`somvq.integrations.vqvae`; torch is imported inside the commands.
Defaults are a small CPU-sized study; the paper's scale is a matter of options (see
docs/cli.md and docs/vqvae-study.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ._errors import library_errors
from ._options import parse_grid_option

VQVAE_DATASET_CHOICES = ("fashion-mnist", "digits", "photos")


def _seeds(ctx: click.Context, param: click.Parameter, value: str):
    try:
        seeds = [int(s) for s in value.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers.") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"{value!r} must name at least one seed, each once.")
    from somvq.integrations.vqvae.train import MAX_SEED

    for seed in seeds:
        if not 0 <= seed <= MAX_SEED:
            raise click.BadParameter(f"seed {seed} is not in 0..{MAX_SEED}.")
    return seeds


def _variants(ctx: click.Context, param: click.Parameter, value: str):
    from somvq.integrations.vqvae.variants import parse_variants

    try:
        return parse_variants(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _shared_options(function: Callable) -> Callable:
    """Options of both commands: data, model size, optimisation, budget, device."""
    options = [
        click.option(
            "--dataset",
            type=click.Choice(VQVAE_DATASET_CHOICES),
            default="fashion-mnist",
            show_default=True,
            help="Images: Fashion-MNIST 28x28 (Debian package dataset-fashion-mnist), scikit-learn's "
            "digits upsampled to 16x16, or 32x32 tiles of scikit-learn's sample photos.",
        ),
        click.option(
            "--data-dir",
            type=click.Path(exists=True, file_okay=False),
            help="Directory of the Fashion-MNIST IDX files [default: /usr/share/datasets/fashion-mnist].",
        ),
        click.option(
            "--n-samples", type=click.IntRange(min=2), help="Use only this many images (train + validation)."
        ),
        click.option(
            "--val-size",
            type=click.IntRange(min=1),
            help="Images held out for validation (seeded split, the same for every run) "
            "[default: 2000 of Fashion-MNIST; a fifth of digits' 1797 or photos' 1950].",
        ),
        click.option(
            "--steps",
            type=click.IntRange(min=1),
            default=3000,
            show_default=True,
            help="Training steps per run (the paper: 30000).",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=64,
            show_default=True,
            help="Images per step (the paper: 256).",
        ),
        click.option(
            "--codebook-size",
            type=click.IntRange(min=2),
            default=128,
            show_default=True,
            help="Number of codes K (the paper: 512).",
        ),
        click.option(
            "--grid",
            callback=parse_grid_option,
            help="Map shape such as 8x16 (C order: the last axis varies fastest) [default: the "
            "reference's automatic shape, 128 -> 8x16, 512 -> 16x32].",
        ),
        click.option(
            "--channels",
            type=click.IntRange(min=2),
            default=32,
            show_default=True,
            help="Width of encoder and decoder (the paper: 128).",
        ),
        click.option(
            "--latent-dim",
            type=click.IntRange(min=1),
            default=16,
            show_default=True,
            help="Size D of each latent/code vector (the paper: 64).",
        ),
        click.option(
            "--lr",
            type=click.FloatRange(min=0, min_open=True),
            default=1e-3,
            show_default=True,
            help="AdamW learning rate (gradients clipped at norm 1.0).",
        ),
        click.option(
            "--val-interval",
            type=click.IntRange(min=1),
            default=100,
            show_default=True,
            help="Validate every this many steps.",
        ),
        click.option(
            "--checkpoint-interval",
            type=click.IntRange(min=1),
            default=500,
            show_default=True,
            help="Write the checkpoint every this many steps (and at the end).",
        ),
        click.option(
            "--time-budget",
            type=click.FloatRange(min=0, min_open=True),
            help="Stop a run after this many seconds of training even before --steps.",
        ),
        click.option(
            "--device",
            type=click.Choice(["cpu", "cuda"]),
            default="cpu",
            show_default=True,
            help="Where to train; cuda fails with a clear error when no GPU is available.",
        ),
        click.option(
            "--threads",
            type=click.IntRange(min=1),
            help="torch CPU threads per run [default: torch's; compare with --jobs > 1: 1].",
        ),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _validation_size(val_size: int | None, dataset: str) -> int | float:
    """--val-size, or its default: 2000 images of Fashion-MNIST (70,000), a fraction (0.2)
    of the small sets (2000 is more than digits' 1797 images)."""
    if val_size is not None:
        return val_size
    return 2000 if dataset == "fashion-mnist" else 0.2


def _config(**options: Any):
    """The run's TrainConfig; inconsistent options are usage errors (exit 2), before any work."""
    from somvq.integrations.vqvae import TrainConfig

    config = TrainConfig(
        dataset=options["dataset"],
        data_dir=options["data_dir"],
        n_samples=options["n_samples"],
        validation_size=_validation_size(options["val_size"], options["dataset"]),
        steps=options["steps"],
        batch_size=options["batch_size"],
        codebook_size=options["codebook_size"],
        grid=options["grid"],
        channels=options["channels"],
        latent_dim=options["latent_dim"],
        lr=options["lr"],
        validation_interval=options["val_interval"],
        checkpoint_interval=options["checkpoint_interval"],
        time_budget=options["time_budget"],
        device=options["device"],
        neighbourhood=options.get("neighbourhood", "hard"),
        init_count=options.get("init_count", 1.0),
        update=options.get("update", "all"),
        seed=options.get("seed", 0),
    )
    try:
        config.check()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return config


@click.group()
def vqvae() -> None:
    """Train VQ-VAEs with Kohonen (KSOM) and EMA-VQ codebooks and compare them.

    `somvq vqvae train` trains one model; `somvq vqvae compare` runs the study of the
    paper (EMA-VQ and KSOM, initial counts 0 and 1, update of all or of the written codes,
    several seeds) and writes a Markdown report with plots. Needs PyTorch
    (pip install 'somvq[torch]'); documented in docs/cli.md and docs/vqvae-study.md.
    """


@vqvae.command("train")
@_shared_options
@click.option(
    "--neighbourhood",
    type=click.Choice(["hard", "exponential", "none"]),
    default="hard",
    show_default=True,
    help="Codebook update: the paper's KSOM kernels, or none (= EMA-VQ).",
)
@click.option(
    "--init-count",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Initial EMA count N0 of every code (the paper compares 0 and 1).",
)
@click.option(
    "--update",
    type=click.Choice(["all", "written"]),
    default="all",
    show_default=True,
    help="Decay every code each step (the paper's), or only the written ones.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the model's initialisation and the batches.",
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False),
    default="somvq-output/vqvae-train",
    show_default=True,
    help="Where config.json, log.csv, log.json and checkpoint.pt go; an existing checkpoint is resumed.",
)
@click.option(
    "--no-resume",
    is_flag=True,
    help="Start afresh even if OUTPUT_DIR holds a checkpoint (it is overwritten).",
)
def train_command(**options: Any) -> None:
    """Train one VQ-VAE and log train/validation loss, perplexity and used codes per step.

    Interrupted runs continue from OUTPUT_DIR/checkpoint.pt when rerun with the same
    options (bit-identical to an uninterrupted run on the same device and thread count).

    \b
    Examples:
      somvq vqvae train --steps 500 --neighbourhood none
      somvq vqvae train --dataset digits --steps 300 --codebook-size 64 --grid 8x8
      somvq vqvae train --device cuda --steps 30000 --batch-size 256 \\
          --codebook-size 512 --grid 16x32 --channels 128 --latent-dim 64
    """
    import time

    from ._output import check_writable
    from ._report import format_table

    check_writable(options["output_dir"], "--output-dir")
    config = _config(**options)
    with library_errors():  # (torch missing: a one-line error)
        import torch

        from somvq.integrations.vqvae.train import check_run_outputs

        try:  # before any work
            check_run_outputs(options["output_dir"])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--output-dir") from None

        from somvq.integrations.vqvae import train
        from somvq.integrations.vqvae.evaluation import summarise_log

        if options["threads"]:
            torch.set_num_threads(options["threads"])
        started = time.perf_counter()
        result = train(
            config, options["output_dir"], resume=not options["no_resume"], progress=not options["quiet"]
        )
        summary = summarise_log(result.records)
    rows = [
        ("steps", f"{summary['steps']}" + (" (time budget reached)" if result.stopped_by_time else "")),
        ("resumed from step", str(result.resumed_from)),
        ("final validation loss", f"{summary['final_val_loss']:.5f}"),
        ("best validation loss", f"{summary['best_val_loss']:.5f}"),
        ("perplexity (last 10%)", f"{summary['final_perplexity']:.1f}"),
        ("used codes (validation)", str(summary["used_codes"])),
        ("time", f"{time.perf_counter() - started:.1f} s"),
        ("output", options["output_dir"]),
    ]
    click.echo(format_table(rows))


@vqvae.command("compare")
@_shared_options
@click.option(
    "--variants",
    default="all",
    show_default=True,
    callback=_variants,
    help="Comma-separated NEIGHBOURHOOD-nN0-UPDATE names (none = EMA-VQ, hard, exponential; "
    "n0/n1; all/written), e.g. 'none-n1-all,hard-n1-all', or 'all' for the 12 combinations.",
)
@click.option(
    "--seeds",
    default="0,1,2",
    show_default=True,
    callback=_seeds,
    help="Comma-separated seeds; every variant runs once per seed.",
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False),
    default="somvq-output/vqvae-compare",
    show_default=True,
    help="Where the runs (checkpoints, logs) go; finished runs are reused, interrupted ones resumed.",
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False),
    help="Where report.md, runs.csv and the PNG figures go [default: OUTPUT_DIR].",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Runs trained at the same time, each in its own process.",
)
def compare_command(**options: Any) -> None:
    """Train every quantiser variant over several seeds and write the comparison report.

    The report (report.md) holds a table of final and best validation loss, steps to
    reach 1.1x and 1.2x of each run's best, perplexity, used codes, topographic error and
    neighbour/all distance ratio of the codebook, and the figures: validation-loss and
    perplexity curves with seed bands, the decoded codebooks in grid order and the
    latent-index shift experiment.

    \b
    Examples:
      somvq vqvae compare --variants none-n1-all,hard-n1-all --seeds 0 --steps 300
      somvq vqvae compare --seeds 0,1,2 --jobs 2 --report-dir docs/figures/vqvae
      somvq vqvae compare --device cuda --steps 30000 --batch-size 256 \\
          --codebook-size 512 --grid 16x32 --channels 128 --latent-dim 64
    """
    import shlex
    import sys

    from ._output import check_writable

    check_writable(options["output_dir"], "--output-dir")
    if options["report_dir"] is not None:
        check_writable(options["report_dir"], "--report-dir")
    base = _config(**options)
    from pathlib import Path

    with library_errors():  # (torch missing: a one-line error)
        from somvq.integrations.vqvae.compare import check_outputs, compare

        try:  # before any work
            check_outputs(
                options["variants"],
                options["seeds"],
                Path(options["output_dir"]),
                Path(options["report_dir"] or options["output_dir"]),
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--output-dir / --report-dir") from None

        compare(
            base,
            options["variants"],
            options["seeds"],
            options["output_dir"],
            options["report_dir"],
            jobs=options["jobs"],
            threads=options["threads"],
            progress=not options["quiet"],
            echo=click.echo,
            command="somvq " + " ".join(shlex.quote(a) for a in sys.argv[1:])
            if sys.argv and "somvq" in sys.argv[0]
            else None,
        )
