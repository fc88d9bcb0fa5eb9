"""``somvq fit``: train a map on a file or a data set, save it, summarise it, plot it and
write its HTML report."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from somvq.parameters import ALGORITHMS, BACKENDS, DEFAULTS

from ._errors import DataError, library_errors
from ._input import load_input
from ._options import input_arguments, input_kwargs, input_options, parse_grid_option
from ._output import check_output
from ._report import format_table, grid_text, map_metrics, metric_rows

NEIGHBOURHOOD_CHOICES = (
    "none",
    "hard",
    "exponential",
    "gaussian",
    "bubble",
    "triangle",
    "mexican_hat",
    "cut_gaussian",
)
INIT_CHOICES = ("random", "normal", "sample", "pca")
MAIN_PLOTS = ("umatrix", "hitmap", "codebook")


def _default(name: str) -> str:
    """KSOM's default of a parameter as the help texts show it (from somvq.parameters)."""
    value = DEFAULTS[name]
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


class LearningRate(click.ParamType):
    """A positive float, or ``inverse_count``."""

    name = "FLOAT|inverse_count"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value == "inverse_count":
            return value
        try:
            rate = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a number nor 'inverse_count'.", param, ctx)
        if not rate > 0:
            self.fail(f"{value!r} must be > 0.", param, ctx)
        return rate


# Option name -> KSOM parameter; only options the user gives are passed, so every default
# is the estimator's own.
_PARAMETERS = {
    "grid": "grid",
    "topology": "topology",
    "periodic": "periodic",
    "neighbourhood": "neighbourhood",
    "algorithm": "algorithm",
    "epochs": "n_epochs",
    "batch_size": "batch_size",
    "radius": "radius",
    "shrink": "shrink",
    "learning_rate": "learning_rate",
    "decay": "decay",
    "init": "init",
    "seed": "random_state",
    "backend": "backend",
    "missing": "missing",
    "max_missing": "max_missing",
    "tol": "tol",
}


def given_parameters(options: dict[str, Any]) -> dict[str, Any]:
    """The estimator parameters of the options the user gave (the others keep the
    estimator's own defaults: KSOM's, or the supervised estimators')."""
    return {_PARAMETERS[name]: value for name, value in options.items() if value is not None}


def build_estimator(options: dict[str, Any]):
    """A KSOM from the given options; invalid parameters are usage errors (exit 2)."""
    from somvq import KSOM
    from somvq.exceptions import BackendUnavailableError

    som = KSOM(**given_parameters(options))
    try:
        # Check parameters before loading data or fitting: the same checks fit runs first.
        som.check_parameters()
    except BackendUnavailableError as exc:
        # Not a usage error: the same command works on a machine with the backend (exit 1).
        raise DataError(f"--backend {options.get('backend')}: {' '.join(str(exc).split())}") from None
    except (ValueError, TypeError) as exc:
        raise click.UsageError(str(exc).replace("\n", " ")) from None
    return som


class _Progress:
    """A progress bar on stderr fed by ``KSOM.fit(X, callback=...)``."""

    def __init__(self, n_epochs: int, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = (
            click.progressbar(
                length=n_epochs,
                label="fitting",
                file=sys.stderr,
                show_pos=True,
                item_show_func=lambda item: item,
            )
            if enabled
            else None
        )

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, epoch: int, n_epochs: int, mse: float, codebook: Any) -> None:
        if self.bar is not None:
            self.bar.update(1, f"squared QE {mse:.5g}")


@click.command()
@click.argument("data", required=False, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@input_options
@click.option(
    "--grid",
    callback=parse_grid_option,
    metavar="ROWSxCOLS",
    help=f"Map shape, e.g. 16x32 (any number of axes: 8x8x8), or auto (SOM Toolbox rule from the data) [default: {_default('grid')}].",
)
@click.option(
    "--topology",
    type=click.Choice(["rectangular", "hexagonal"]),
    help=f"Grid topology [default: {_default('topology')}].",
)
@click.option(
    "--periodic/--no-periodic", default=None, help="Toroidal wrap-around on every axis [default: no]."
)
@click.option(
    "--neighbourhood",
    type=click.Choice(NEIGHBOURHOOD_CHOICES),
    help=f"Neighbourhood kernel; 'none' is k-means / EMA-VQ [default: {_default('neighbourhood')}].",
)
@click.option(
    "--algorithm", type=click.Choice(ALGORITHMS), help=f"KSOM variant [default: {_default('algorithm')}]."
)
@click.option(
    "--epochs", type=click.IntRange(min=1), help=f"Passes over the data [default: {_default('n_epochs')}]."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help=f"Mini-batch size (--algorithm minibatch) [default: {_default('batch_size')}].",
)
@click.option(
    "--radius",
    type=click.FloatRange(min=0, min_open=True),
    help="Initial neighbourhood radius [default: by kernel].",
)
@click.option(
    "--shrink",
    type=click.FloatRange(min=0),
    help=f"The paper's tau: rate of the inverse-time schedules [default: {_default('shrink')}].",
)
@click.option(
    "--learning-rate",
    type=LearningRate(),
    help=f"Online KSOM: initial learning rate, or inverse_count [default: {_default('learning_rate')}].",
)
@click.option(
    "--decay",
    type=click.FloatRange(0, 1, max_open=True),
    help=f"EMA decay of mini-batch KSOM [default: {_default('decay')}].",
)
@click.option(
    "--init", type=click.Choice(INIT_CHOICES), help=f"Initial codebook [default: {_default('init')}]."
)
@click.option("--seed", type=int, help="Random seed: the same seed gives the same model [default: none].")
@click.option(
    "--backend", type=click.Choice(BACKENDS), help=f"Compute backend [default: {_default('backend')}]."
)
@click.option(
    "--tol",
    type=click.FloatRange(min=0),
    help="Early stopping: stop once the neighbourhood schedule is in its late phase and 2 epochs in a row improve the error by less than TOL (relative) [default: off].",
)
@click.option(
    "--standardize",
    is_flag=True,
    help="Scale each feature to mean 0, standard deviation 1 (stored in the model, applied by predict/transform/evaluate).",
)
@click.option("--minmax", is_flag=True, help="Scale each feature to [0, 1] (stored in the model).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Model file [default: OUTPUT_DIR/model.somvq.npz].",
)
@click.option(
    "-d",
    "--output-dir",
    type=click.Path(file_okay=False),
    default="somvq-output",
    show_default=True,
    help="Directory for the plots (and the model, without -o).",
)
@click.option(
    "--plots/--no-plots",
    default=None,
    help="Write the U-matrix, hit map (and codebook image for image data) PNGs [default: yes unless -o is given].",
)
@click.option(
    "--report/--no-report",
    default=None,
    help="Write OUTPUT_DIR/report.html, the interactive HTML report (see somvq report) [default: yes unless -o is given, when bokeh is installed].",
)
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--missing",
    type=click.Choice(["error", "ignore"]),
    help="Missing values (empty, NA, nan fields; NaN in .npy): an error, or ignore them (distances over the observed features, see docs/missing-values.md) [default: error].",
)
@click.option(
    "--max-missing",
    type=click.FloatRange(0, 1),
    help="With --missing ignore: rows missing more than this fraction of their features are an error [default: 0.5].",
)
@click.option(
    "--target",
    metavar="COLUMN",
    help="Train a supervised map predicting this column of DATA (header name or 1-based number; with --dataset: target): a classifier for text or integer columns with at most 20 levels, a regressor otherwise. See docs/supervised.md.",
)
@click.option(
    "--task",
    type=click.Choice(["classify", "regress"]),
    help="With --target: force a classifier or a regressor [default: from the column].",
)
def fit(data: str | None, **options: Any) -> None:
    """Train a self-organising map on DATA and save it.

    DATA is a CSV/TSV file (with or without header), .npy, .npz, or - for stdin.
    Without DATA (and without --dataset) the map is trained on scikit-learn's bundled
    digits: this is somvq's demonstration, writing the model, a U-matrix, a hit map and
    an interactive HTML report into ./somvq-output/.

    \b
    Examples:
      somvq fit
      somvq fit data.csv --grid 10x10 --standardize -o model.somvq.npz
      somvq fit --dataset fashion-mnist --grid 16x32 --algorithm minibatch --epochs 3
      cat data.tsv | somvq fit - --topology hexagonal --seed 0 -o model.somvq.npz
    """
    source = input_kwargs(options)
    target, task = options.pop("target"), options.pop("task")
    if task is not None and target is None:
        raise click.UsageError("--task needs --target COLUMN.")
    if target is not None:  # a supervised map: no pictures or report (they draw unsupervised maps)
        options["plots"], options["report"] = False, False
    force, quiet = options.pop("force"), options.pop("quiet")
    standardize, minmax = options.pop("standardize"), options.pop("minmax")
    output, output_dir, plots = options.pop("output"), Path(options.pop("output_dir")), options.pop("plots")
    if standardize and minmax:
        raise click.UsageError("--standardize and --minmax exclude each other.")
    scaling_method = "standardize" if standardize else "minmax" if minmax else "none"
    model_path = Path(output) if output else output_dir / "model.somvq.npz"
    plots = (output is None) if plots is None else plots
    report = options.pop("report")
    explicit_report = report is not None
    report = (output is None) if report is None else report
    explicit_plots = click.get_current_context().get_parameter_source("plots") == ParameterSource.COMMANDLINE
    check_output(
        model_path, force, param_hint="-o" if output else "--output-dir", create_parent=output is None
    )
    grid_axes = len(options["grid"]) if options.get("grid") and options["grid"] != "auto" else 2
    if grid_axes > 2 and (plots or report):
        # Pictures and the report draw 1- or 2-axis maps; a 3-axis map is still trained.
        if (explicit_plots and plots) or (explicit_report and report):
            flag = "--plots" if explicit_plots and plots else "--report"
            raise click.UsageError(f"{flag} draws grids of 1 or 2 axes; --grid has {grid_axes}.")
        plots = report = False
        click.echo(f"note: plots and report skipped, a {grid_axes}-axis grid cannot be drawn.", err=True)
    if plots:
        for kind in MAIN_PLOTS:
            check_output(output_dir / f"{kind}.png", force, param_hint="--output-dir", create_parent=True)
        if not _have_matplotlib():
            if explicit_plots:
                raise DataError("--plots needs matplotlib, which is not installed: pip install somvq[plot]")
            plots = False
            click.echo(
                "note: plots skipped, matplotlib is not installed (pip install somvq[plot]).", err=True
            )

    if report:
        check_output(output_dir / "report.html", force, param_hint="--output-dir", create_parent=True)
        if not _have_bokeh():
            if explicit_report:
                raise DataError("--report needs bokeh, which is not installed: pip install somvq[report]")
            report = False
            click.echo("note: report skipped, bokeh is not installed (pip install somvq[report]).", err=True)

    som = build_estimator(options)
    if target is not None:
        from ._supervised import fit_and_save

        fit_and_save(
            given_parameters(options),
            data,
            target,
            task,
            source,
            scaling_method,
            model_path,
            output,
            output_dir,
            quiet,
            force,
        )
        return
    inputs = load_input(
        data,
        default_dataset="digits",
        missing=som.missing == "ignore",
        max_missing=float(som.max_missing),
        **source,
    )

    from somvq.io import save

    from ._scaling import Scaling

    scaling = Scaling.fit(scaling_method, inputs.X)
    X = scaling.apply(inputs.X)
    if not quiet:
        click.echo(f"data   {inputs.description or inputs.source}", err=True)
    started = time.perf_counter()
    with library_errors(inputs.source), _Progress(som.n_epochs, enabled=not quiet) as progress:
        som.fit(X, callback=progress)
    elapsed = time.perf_counter() - started
    with library_errors(inputs.source):
        summary = map_metrics(som, X)
    summary["time_s"] = elapsed

    extra: dict[str, Any] = scaling.to_extra()
    extra["data"] = inputs.description or inputs.source
    if inputs.feature_names:
        extra["feature_names"] = list(inputs.feature_names)
    if inputs.image_shape:
        extra["image_shape"] = list(inputs.image_shape)
    with library_errors():
        if output is None or plots or report:
            output_dir.mkdir(parents=True, exist_ok=True)
        save(som, model_path, extra=extra, overwrite=force)
    written: dict[str, Path] = {}
    if plots:
        from somvq.plotting import plot_map

        kinds = [k for k in MAIN_PLOTS if k != "codebook" or inputs.image_shape]
        with library_errors():
            written = plot_map(
                som,
                output_dir,
                kinds=kinds,
                image_shape=inputs.image_shape,
                codebook=scaling.inverse(som.codebook_),
                overwrite=force,
            )
    report_path = None
    if report:
        from somvq.reporting import report as write_report

        # Rows with holes go in as they are: the report measures them over their observed
        # features, as `somvq evaluate` and `somvq report` do (missing="ignore").
        with library_errors():
            report_path = write_report(
                som,
                X,
                inputs.target,  # a --dataset's classes (digits: 0-9); None for files
                path=output_dir / "report.html",
                feature_names=inputs.feature_names,
                image_shape=inputs.image_shape,
                codebook=scaling.inverse(som.codebook_),
                data_description=inputs.description or inputs.source,
                overwrite=force,
            )

    click.echo(f"somvq fit: {inputs.description or inputs.source}")
    click.echo(
        f"map      {grid_text(som.grid_)}, {som.algorithm}, {som.neighbourhood} neighbourhood, "
        f"{som.n_iter_} epochs{'' if scaling.method == 'none' else ', ' + scaling.method}"
    )
    click.echo(format_table(metric_rows(summary)))
    click.echo(f"model    {model_path}")
    for i, (kind, path) in enumerate(written.items()):
        click.echo(f"{'plots' if i == 0 else '':<8} {path}  ({kind})")
    if report_path is not None:
        click.echo(f"report   {report_path}  (open it in a browser)")
    if data is None and source["dataset"] is None:  # the demonstration's digits
        source = {**source, "dataset": inputs.source}
    click.echo(f"next     somvq evaluate {shlex.quote(str(model_path))} {input_arguments(data, source)}")


def _have_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def _have_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None
