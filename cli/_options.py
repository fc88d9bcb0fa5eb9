"""Option groups shared by several commands (decorator factories, as in sqlite-utils).

Nothing heavy is imported here: ``somvq --help`` must stay instant. Choices that mirror
the library's (neighbourhoods, init methods, data sets) are checked against it in the tests.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

import click

DATASET_CHOICES = ("digits", "iris", "wine", "fashion-mnist", "mnist")


def parse_grid_option(ctx: click.Context, param: click.Parameter, value: str | None):
    """Click callback: ``--grid 16x32`` to a shape tuple (``auto``: "auto"); a bad shape is a usage error."""
    if value is None:
        return None
    if value.strip().lower() == "auto":
        return "auto"
    from somvq.grids import parse_grid

    try:
        return parse_grid(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def parse_delimiter_option(ctx: click.Context, param: click.Parameter, value: str | None):
    """Click callback: ``--delimiter`` is one character (``\\t`` or ``tab`` for a tab).

    Anything else (empty, several characters, a quote or a line break) is a usage error.
    """
    if value is None:
        return None
    if value in ("\\t", "tab"):
        return "\t"
    if len(value) != 1:
        raise click.BadParameter(f"{value!r} must be one character, e.g. ',' or ';' (or '\\t' for a tab).")
    if value in ('"', "\n", "\r"):
        raise click.BadParameter(f"{value!r} cannot separate fields (it quotes or ends them).")
    return value


def _apply(options: list[Callable]) -> Callable:
    def decorator(function: Callable) -> Callable:
        for option in reversed(options):
            function = option(function)
        return function

    return decorator


def input_options(function: Callable) -> Callable:
    """DATA-selection options: --dataset and friends, and how to read a file."""
    return _apply(
        [
            click.option(
                "--dataset",
                type=click.Choice(DATASET_CHOICES, case_sensitive=False),
                help="Use a known data set instead of DATA: scikit-learn's digits/iris/wine "
                "(bundled), or Fashion-MNIST/MNIST IDX files (see --data-dir).",
            ),
            click.option(
                "--data-dir",
                type=click.Path(exists=True, file_okay=False),
                help="Directory of the IDX files for --dataset fashion-mnist/mnist "
                "[default for fashion-mnist: /usr/share/datasets/fashion-mnist, from the Debian "
                "package dataset-fashion-mnist].",
            ),
            click.option(
                "--split",
                type=click.Choice(["train", "test", "all"]),
                default="train",
                show_default=True,
                help="Split of an IDX data set.",
            ),
            click.option("--n-samples", type=click.IntRange(min=1), help="Use only the first N rows."),
            click.option(
                "--columns",
                help="Columns to use: header names and/or 1-based numbers and ranges, "
                "comma-separated (e.g. '2-5,8' or 'height,width').",
            ),
            click.option("--key", help="Array to read from an .npz file holding several."),
            click.option(
                "--delimiter",
                callback=parse_delimiter_option,
                help="Field separator of text input [default: from the extension (.csv ',', "
                ".tsv tab) or sniffed: tab, comma, semicolon, else whitespace]; one character, "
                "'\\t' or 'tab' for a tab.",
            ),
            click.option(
                "--header/--no-header",
                default=None,
                help="Whether the first line of text input holds column names "
                "[default: detected: a first row that is not all numbers].",
            ),
        ]
    )(function)


def output_options(function: Callable) -> Callable:
    """-o and --force for commands writing a table."""
    return _apply(
        [
            click.option(
                "-o",
                "--output",
                type=click.Path(dir_okay=False, allow_dash=True),
                help="Output file: .csv, .tsv, .txt or .npy [default: CSV on stdout].",
            ),
            click.option("--force", is_flag=True, help="Overwrite an existing output file."),
        ]
    )(function)


def input_kwargs(kwargs: dict) -> dict:
    """Pop the input_options values from a command's kwargs, for ``load_input``."""
    names = ("dataset", "data_dir", "split", "n_samples", "columns", "key", "delimiter", "header")
    return {name: kwargs.pop(name) for name in names}


def input_arguments(data: str | None, source: dict) -> str:
    """DATA and the input options of :func:`input_kwargs` that were given, as shell words:
    another command reads the same rows with them (``somvq fit``'s "next" hint)."""
    words = [] if data is None else [data]
    for name, value in source.items():
        if value is None or (name == "split" and value == "train"):
            continue
        option = "--" + name.replace("_", "-")
        if name == "header":
            words.append(option if value else "--no-header")
        else:
            words += [option, "tab" if value == "\t" else str(value)]
    return " ".join(shlex.quote(word) for word in words)
