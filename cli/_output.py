"""Writing the command line's outputs: tables (CSV/TSV/.npy, or stdout), safely.

Files are written atomically (:func:`somvq._atomic.atomic_write`) and an existing file is
kept unless --force: the check runs before any long work and again at the final rename.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".npy")


def check_output(
    path: str | Path | None,
    force: bool,
    *,
    suffixes: Sequence[str] | None = None,
    param_hint: str = "-o",
    create_parent: bool = False,
) -> None:
    """Fail early (exit 2) if ``path`` exists without --force, its directory is missing
    (and will not be created: ``create_parent``) or cannot be written into, or its
    extension is not in ``suffixes``."""
    if path is None or str(path) == "-":
        return
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise click.BadParameter(
            f"{str(path)!r} has an unknown extension; use one of {', '.join(suffixes)}.",
            param_hint=param_hint,
        )
    from somvq._atomic import writable_target

    try:  # the one definition of what may be replaced (directories, devices, fifos may not)
        path = writable_target(path)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint) from None
    if path.exists() and not force:
        raise click.BadParameter(
            f"{str(path)!r} already exists; pass --force to overwrite it.", param_hint=param_hint
        )
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise click.BadParameter(f"{str(parent)!r} is not a directory.", param_hint=param_hint)
    if not create_parent and not parent.is_dir():
        raise click.BadParameter(f"directory {str(parent)!r} does not exist.", param_hint=param_hint)
    # The directory that will receive the file (or, when it is still to be created, its
    # nearest existing ancestor) must be writable: found now, not after the work.
    check_writable(parent, param_hint)


def check_writable(directory: str | Path, param_hint: str) -> None:
    """Exit 2 unless a file can be created in ``directory``, or, when it does not exist yet,
    in its nearest existing ancestor (tried: permissions, read-only file systems and
    root's privileges all count); the message names that directory."""
    existing = Path(directory)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise click.BadParameter(f"{str(existing)!r} is not a directory.", param_hint=param_hint)
    directory = existing
    try:
        fd, probe = tempfile.mkstemp(prefix=".somvq-write-test-", dir=directory)
    except OSError as exc:
        raise click.BadParameter(
            f"cannot write into directory {str(directory)!r}: {exc.strerror or exc}.", param_hint=param_hint
        ) from None
    os.close(fd)
    os.unlink(probe)


def axis_names(ndim: int) -> list[str]:
    """Column names of a grid position in the output tables (predict, cluster)."""
    if ndim == 1:
        return ["position"]
    if ndim == 2:
        return ["row", "col"]
    return [f"axis{i}" for i in range(ndim)]


def _shortest(value: float) -> str:
    """``repr(value)`` (the shortest text of the float64), without a trailing ``.0``."""
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def csv_line(fields: Sequence[Any], delimiter: str = ",") -> str:
    """One line of delimited text (no line end), fields quoted where they hold the
    delimiter, a quote or a line break, as the readers (Python's csv) read them back."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(fields)
    return buffer.getvalue()


def _format_table(
    array: Any, columns: Sequence[str], delimiter: str, header: bool, exact: bool = False
) -> str:
    import numpy as np

    if exact and not np.issubdtype(array.dtype, np.integer):
        # the shortest text that reads back as the same float64 (repr): nothing rounded
        lines = [csv_line(columns, delimiter)] if header else []
        lines += [delimiter.join(map(_shortest, row)) for row in np.asarray(array, dtype=np.float64).tolist()]
        return "".join(line + "\n" for line in lines)
    buffer = io.StringIO()
    fmt = "%d" if np.issubdtype(array.dtype, np.integer) else "%.9g"
    np.savetxt(
        buffer,
        array,
        fmt=fmt,
        delimiter=delimiter,
        header=csv_line(columns, delimiter) if header else "",
        comments="",
    )
    return buffer.getvalue()


def write_table(
    array: Any,
    columns: Sequence[str],
    output: str | None,
    *,
    force: bool,
    header: bool = True,
    exact: bool = False,
) -> str:
    """Write a 2-D array to ``output`` (None or ``"-"``: CSV on stdout); returns where.

    The format follows the extension: ``.csv``/``.txt`` comma-separated, ``.tsv`` tab-separated
    (both with a header line unless ``header=False``), ``.npy`` NumPy binary. Text holds
    floats to 9 significant digits, or with ``exact`` the shortest text of each float64
    that reads back as the same value.
    """
    import numpy as np

    from somvq._atomic import atomic_write

    if output is None or output == "-":
        stream = sys.stdout  # (click.get_text_stream is deprecated in recent click)
        # Stream in blocks: a large table never exists twice in memory as text.
        block = 4096
        for start in range(0, max(array.shape[0], 1), block):
            stream.write(
                _format_table(array[start : start + block], columns, ",", header and start == 0, exact)
            )
        stream.flush()
        return "stdout"
    check_output(output, force, suffixes=TABLE_SUFFIXES)
    suffix = Path(output).suffix.lower()
    if suffix == ".npy":
        atomic_write(
            output,
            lambda handle: np.save(handle, np.ascontiguousarray(array), allow_pickle=False),
            overwrite=force,
        )
    else:
        delimiter = "\t" if suffix == ".tsv" else ","
        text = _format_table(array, columns, delimiter, header, exact)
        atomic_write(output, lambda handle: handle.write(text.encode("utf-8")), overwrite=force)
    return output
