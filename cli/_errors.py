"""How the command line reports failures: one line on stderr, exit 2 or 1, no traceback.

* exit 2, usage errors: click's UsageError/BadParameter (unknown option, bad --grid,
  invalid parameter value, missing input file, existing output without --force);
* exit 1, data errors: :class:`DataError` (the files' content: malformed CSV, NaN,
  feature-count or column-name mismatch, corrupted model file or checkpoint, an
  unavailable --backend/--device, ...).

A closed stdout (``somvq predict ... | head -1``) is not reported: the command stops
quietly with exit 1, as Unix tools do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click


class DataError(click.ClickException):
    """The input's content is unusable (exit code 1)."""

    exit_code = 1


@contextlib.contextmanager
def library_errors(what: str | None = None) -> Iterator[None]:
    """Turn the library's exceptions into the command line's one-line errors.

    ``what`` prefixes the message (e.g. the file being read).
    """
    import zipfile

    from somvq._atomic import OutputExistsError
    from somvq.exceptions import BackendUnavailableError, ModelFileError

    prefix = f"{what}: " if what else ""
    try:
        yield
    except click.ClickException:
        raise
    except BrokenPipeError:
        raise  # stdout closed by its reader: not the input's fault (see SomvqGroup)
    except OutputExistsError as exc:
        raise click.UsageError(f"{exc} Pass --force to overwrite it.") from None
    except (ModelFileError, BackendUnavailableError) as exc:
        raise DataError(f"{prefix}{_one_line(exc)}") from None
    except ImportError as exc:  # optional dependency missing (e.g. matplotlib)
        raise DataError(str(exc)) from None
    except MemoryError:
        raise DataError(f"{prefix}out of memory") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, FloatingPointError) as exc:
        # FloatingPointError: a training that diverged (the VQ-VAE's loss became inf)
        raise DataError(f"{prefix}{_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (its type when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__
