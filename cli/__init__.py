"""somvq's command line: ``somvq fit | predict | transform | evaluate | plot | report | info | impute | cluster``.

A thin click layer over the library: each command reads its input, calls library
functions and turns their errors into one line on stderr (exit 2 for usage errors, 1 for
data errors; see :mod:`._errors`). Heavy modules (numpy, numba, scikit-learn, matplotlib)
are imported inside the commands, so ``somvq --help`` is instant. Documented in
docs/cli.md.
"""

from __future__ import annotations

import os
from typing import Any

import click

from .apply import predict, transform
from .cluster import cluster
from .evaluate import evaluate
from .fit import fit
from .impute import impute
from .info import info
from .plot import plot
from .report import report
from .vqvae import vqvae

__all__ = ["main"]


def _version() -> str:
    from somvq._version import __version__

    return __version__


class SomvqGroup(click.Group):
    """A click group that never shows a traceback for an unexpected error.

    An error that is not one of the reported kinds (a bug) still prints one line and
    exits 1; set SOMVQ_DEBUG=1 to see the traceback. A closed output pipe is no error:
    the command stops quietly (exit 1, nothing on stderr; exit 0 when all of the output
    was in the pipe before the reader left).
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.ctx = None  # one line: no usage block, no "Try --help" hint
            raise
        except (
            click.ClickException,
            click.exceptions.Exit,
            click.exceptions.Abort,
            KeyboardInterrupt,
            SystemExit,
        ):
            raise
        except BrokenPipeError:
            # The reader of stdout went away (`somvq predict ... | head -1`): click's main
            # silences stdout/stderr and exits 1 without a message, as Unix tools do.
            raise
        except Exception as exc:
            if os.environ.get("SOMVQ_DEBUG"):
                raise
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {message} (set SOMVQ_DEBUG=1 for the traceback)"
            ) from None

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            exc.ctx = None
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        # In the order a user meets them, not alphabetically.
        return [
            name
            for name in ("fit", "predict", "transform", "evaluate", "plot", "report", "info")
            if name in self.commands
        ] + sorted(
            name
            for name in self.commands
            if name not in ("fit", "predict", "transform", "evaluate", "plot", "report", "info")
        )


@click.group(cls=SomvqGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=None, package_name="somvq", prog_name="somvq", message="%(prog)s %(version)s")
def main() -> None:
    """Kohonen self-organising maps and vector quantisation from the shell.

    Start with `somvq fit`: it trains a map on scikit-learn's bundled digits and writes
    the model and its pictures into ./somvq-output/. Every command has --help; the full
    reference is docs/cli.md.

    Exit codes: 0 success, 1 data error (file content, model file), 2 usage error.
    """


for _command in (fit, predict, transform, evaluate, plot, report, info):
    main.add_command(_command)
main.add_command(cluster)
main.add_command(vqvae)
main.add_command(impute)
