"""Reading the command line's input: CSV/TSV, .npy, .npz, stdin, or a named data set.

Every reader returns an :class:`InputData` with a 2-D float array; every problem with the
content raises :class:`~._errors.DataError` naming the file and, for text, the line.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ._errors import DataError, library_errors

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class InputData:
    """Rows to fit or score, and what is known about them."""

    X: Any  # ndarray (n_samples, n_features), float32 or float64
    source: str  # how to name the input in messages ("data.csv", "stdin", "digits")
    feature_names: list[str] | None = None
    image_shape: tuple[int, ...] | None = None
    description: str = ""
    target: Any = None  # a --dataset's classes, one per row (None for files)
    line_numbers: list[int] | None = None  # a text file's line of each row (None: arrays)


# ------------------------------------------------------------------------- selection
def parse_columns(
    spec: str, header: Sequence[str] | None, n_columns: int, source: str, *, param_hint: str = "--columns"
) -> list[int]:
    """0-based indices of a ``--columns`` selection: names and 1-based numbers or ranges.

    ``"2-5,8"`` or ``"sepal_length,petal_width"`` (names need a header). ``param_hint``
    names the option in errors (``--planes`` for ``somvq plot``).
    """
    chosen: list[int] = []
    # a header name that itself holds a comma ("x, cm") is one column, not two names
    whole = spec.strip()
    tokens = [whole] if header is not None and "," in whole and whole in header else spec.split(",")
    for token in (t.strip() for t in tokens):
        if not token:
            continue
        if header is not None and token in header:
            if list(header).count(token) > 1:
                raise click.BadParameter(
                    f"{token!r} names {list(header).count(token)} columns of {source}; use their 1-based numbers.",
                    param_hint=param_hint,
                )
            named = list(header).index(token)
            if token.isdigit() and 1 <= int(token) <= n_columns and int(token) - 1 != named:
                # "2" would pick the column named 2 while "2-3" picks positions: refuse
                raise click.BadParameter(
                    f"{token!r} is the name of column {named + 1} and the number of column {token} of "
                    f"{source}; write a range of positions: {named + 1}-{named + 1} or {token}-{token}.",
                    param_hint=param_hint,
                )
            chosen.append(named)
            continue
        low, dash, high = token.partition("-")
        if low.isdigit() and (not dash or high.isdigit()):
            start, stop = int(low), int(high) if dash else int(low)
            if start < 1 or stop > n_columns or start > stop:
                raise click.BadParameter(
                    f"column range {token!r} is outside 1..{n_columns} of {source}.", param_hint=param_hint
                )
            chosen.extend(range(start - 1, stop))
            continue
        known = (
            f" (columns: {', '.join(header)})"
            if header is not None
            else " (the input has no header; use 1-based numbers)"
        )
        raise click.BadParameter(f"no column {token!r} in {source}{known}.", param_hint=param_hint)
    if not chosen:
        raise click.BadParameter("selects no column.", param_hint=param_hint)
    return chosen


# ------------------------------------------------------------------------------ text
#: Text fields read as a missing value (NaN) by commands that accept missing values
#: (``somvq fit --missing ignore``, ``somvq impute``); compared case-insensitively.
MISSING_TOKENS = ("", "na", "nan", "n/a")


def array_suffix(head: bytes) -> str:
    """``".npy"`` or ``".npz"`` when ``head`` (a file's first bytes) starts as one, else ``""``:
    NumPy files are told by their content, whatever their name."""
    return ".npy" if head.startswith(_NPY_MAGIC) else ".npz" if head.startswith(_ZIP_MAGIC) else ""


def is_array_file(path: str) -> bool:
    """Whether ``path`` holds a ``.npy`` / ``.npz`` (by content; by name when unreadable)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_NPY_MAGIC))
    except OSError:
        return Path(path).suffix.lower() in (".npy", ".npz")
    return array_suffix(head) != ""


def _is_missing_token(text: str) -> bool:
    return text.strip().lower() in MISSING_TOKENS


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def first_row_is_header(fields: Sequence[str], *, missing: bool = False, skip: int | None = None) -> bool:
    """The header rule of every reader: a first row that is not all numbers (with
    ``missing``, a missing-value token counts as a number: a first data row may have holes)
    is a header. ``skip``: a column left out of the test (a --target label column). An
    empty last field (a trailing delimiter, ``1,2,3,``) does not make a header: it took
    the first data row of such files as names."""
    if len(fields) > 1 and fields[-1] == "":
        fields = fields[:-1]
    return not all(
        _is_number(field) or (missing and _is_missing_token(field))
        for i, field in enumerate(fields)
        if i != skip
    )


_DELIMITER_NAMES = {"\t": "tabs", ",": "commas", ";": "semicolons"}


def _sniff_delimiter(line: str) -> str | None:
    for delimiter in ("\t", ",", ";"):
        if delimiter in line:
            return delimiter
    return None  # whitespace


def _delimiter_hint(line: str, delimiter: str | None) -> str:
    """A hint when the first line is not split by ``delimiter`` but by another one
    (a European ``.csv`` separated by semicolons), else ``""``."""
    if delimiter is None or delimiter in line:
        return ""
    other = _sniff_delimiter(line)
    if other is None or other == delimiter:
        return ""
    shown = "'\\t'" if other == "\t" else repr(other)
    return f" The first line holds {_DELIMITER_NAMES[other]}, not {_DELIMITER_NAMES.get(delimiter, repr(delimiter))}: pass --delimiter {shown}."


def _csv_records(text: str, delimiter: str, source: str) -> list[tuple[int, list[str]]]:
    """``(line number, stripped fields)`` of each CSV record, blank and ``#`` lines skipped.

    The reader gets the lines with their line breaks, so a quoted field may span lines
    (``"1\n2"`` is one field, an error if read as a number, not the number 12) and each
    record is numbered by the line it starts on. A delimiter that ends every line (header
    included) is dropped: it holds no column.
    """
    taken: list[int] = []  # numbers of the lines handed to the reader so far

    def kept_lines() -> Iterator[str]:
        for number, line in enumerate(text.splitlines(keepends=True), start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                taken.append(number)
                yield line

    records = []
    start = 0
    try:
        for fields in csv.reader(kept_lines(), delimiter=delimiter, strict=True):
            records.append((taken[start], [field.strip() for field in fields]))
            start = len(taken)  # the reader asks for a line only when it needs one
    except csv.Error as exc:
        line = taken[start] if start < len(taken) else 1  # where the broken record starts
        raise DataError(f"{source}: malformed CSV at line {line}: {exc}.") from None
    if records and all(len(fields) > 1 and fields[-1] == "" for _, fields in records):
        # a delimiter at the end of every line (some exporters write one): no column
        records = [(number, fields[:-1]) for number, fields in records]
    return records


def read_text_table(
    raw: bytes,
    source: str,
    *,
    delimiter: str | None = None,
    header: bool | None = None,
    columns: str | None = None,
    missing: bool = False,
) -> InputData:
    """Parse CSV/TSV/whitespace-separated text. Blank lines and ``#`` comments are skipped.

    ``header=None`` detects a header: a first row that is not all numbers.
    ``missing``: empty fields and NA / nan / N/A (any case) are read as NaN (missing values);
    inf stays an error.
    """
    import numpy as np

    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{source}: not UTF-8 text (byte {exc.start}); is it a binary file?") from None
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise DataError(f"{source}: no data (the file is empty).")
    if delimiter is None:
        delimiter = _sniff_delimiter(lines[0][1])
    if delimiter is None:
        rows = [(number, line.split()) for number, line in lines]
    else:
        rows = _csv_records(text, delimiter, source)
    names: list[str] | None = None
    if header is None:
        header = first_row_is_header(rows[0][1], missing=missing)
    if header:
        names = rows[0][1]
        rows = rows[1:]
        if not rows:
            raise DataError(f"{source}: a header but no data rows.")
    width = len(names) if names is not None else len(rows[0][1])
    for number, fields in rows:
        if len(fields) != width:
            raise DataError(
                f"{source}: malformed CSV at line {number}: {len(fields)} fields, expected {width}"
                f"{' (as in the header)' if names is not None else ' (as in the first row)'}."
                f"{_delimiter_hint(lines[0][1], delimiter)}"
            )
    selected = parse_columns(columns, names, width, source) if columns else list(range(width))
    if missing:
        rows = [(number, ["nan" if _is_missing_token(f) else f for f in fields]) for number, fields in rows]
    try:
        X = np.array([[fields[i] for i in selected] for _, fields in rows], dtype=np.float64)
    except ValueError:
        for number, fields in rows:
            for i in selected:
                if not _is_number(fields[i]):
                    column = f"{names[i]!r} (column {i + 1})" if names is not None else f"{i + 1}"
                    what = "an empty field" if fields[i] == "" else f"non-numeric value {fields[i]!r}"
                    raise DataError(
                        f"{source}: {what} at line {number}, column {column}; select numeric "
                        f"columns with --columns"
                        + (
                            " (missing values: somvq fit --missing ignore)"
                            if _is_missing_token(fields[i])
                            else ""
                        )
                        + f".{_delimiter_hint(lines[0][1], delimiter)}"
                    ) from None
        raise  # pragma: no cover - np.array failed on fields that all parse
    X = X.reshape(len(rows), len(selected))
    feature_names = [names[i] for i in selected] if names is not None else None
    line_numbers = [number for number, _ in rows]
    _check_finite(X, source, feature_names, line_numbers, missing=missing)
    return InputData(X=X, source=source, feature_names=feature_names, line_numbers=line_numbers)


# ----------------------------------------------------------------------------- arrays
def _array_input(array: Any, source: str, columns: str | None, missing: bool = False) -> InputData:
    import numpy as np

    if array.dtype.kind not in "biuf":
        raise DataError(f"{source}: holds {array.dtype} values; somvq needs numbers.")
    image_shape = None
    if array.ndim >= 3:
        # (n, H, W): grey images, drawn as such; (n, H, W, C) and beyond: features only
        image_shape = tuple(int(s) for s in array.shape[1:]) if array.ndim == 3 else None
        array = array.reshape(array.shape[0], math.prod(array.shape[1:]))  # -1 fails at 0 rows
    elif array.ndim != 2:
        raise DataError(
            f"{source}: holds an array of shape {array.shape}; somvq needs (n_samples, n_features) "
            "(reshape a single feature to (n, 1))."
        )
    if columns:
        array = array[:, parse_columns(columns, None, array.shape[1], source)]
        image_shape = None
    dtype = np.float32 if array.dtype == np.float32 else np.float64
    X = np.ascontiguousarray(array, dtype=dtype)
    _check_finite(X, source, None, None, missing=missing)
    return InputData(X=X, source=source, image_shape=image_shape)


def _load_problem(exc: BaseException) -> str:
    """Why ``np.load`` failed, on one line."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if "allow_pickle" in detail:
        return "it holds Python objects, which are never unpickled"
    return f"truncated or corrupted: {detail}"


def read_npy(raw: bytes, source: str, columns: str | None, missing: bool = False) -> InputData:
    import numpy as np

    try:
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise DataError(f"{source}: not a readable .npy file ({_load_problem(exc)}).") from None
    if not isinstance(array, np.ndarray):  # pragma: no cover - read_data_file sends archives to read_npz
        raise DataError(f"{source}: not a .npy array.")
    return _array_input(array, source, columns, missing)


def read_npz(
    raw: bytes, source: str, key: str | None, columns: str | None, missing: bool = False
) -> InputData:
    import zipfile

    import numpy as np

    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            keys = list(archive.files)
            if not keys:
                raise DataError(f"{source}: an .npz archive with no array in it.")
            if key is None:
                if len(keys) != 1:
                    raise click.BadParameter(
                        f"{source} holds {len(keys)} arrays ({', '.join(keys) or 'none'}); choose one with --key.",
                        param_hint="--key",
                    )
                key = keys[0]
            elif key not in keys:
                raise click.BadParameter(
                    f"{source} has no array {key!r} (arrays: {', '.join(keys)}).", param_hint="--key"
                )
            array = archive[key]
    except (ValueError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(f"{source}: not a readable .npz archive ({_load_problem(exc)}).") from None
    return _array_input(array, f"{source}[{key}]", columns, missing)


def _check_finite(
    X: Any, source: str, names: list[str] | None, line_numbers: list[int] | None, *, missing: bool = False
) -> None:
    import numpy as np

    if X.shape[0] == 0:
        raise DataError(f"{source}: no data rows.")
    if X.shape[1] == 0:
        raise DataError(f"{source}: no feature columns.")
    bad = np.isinf(X) if missing else ~np.isfinite(X)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        where = _where(row, line_numbers)
        col = f"{names[column]!r}" if names is not None else f"{column + 1}"
        raise DataError(
            f"{source}: {int(bad.sum())} {'infinite' if missing else 'NaN or infinite'} value(s), the "
            f"first ({X[row, column]}) at {where}, column {col}; "
            + (
                "inf is never a missing value."
                if missing
                else "remove or impute them first"
                # --missing ignore takes NaN, never inf: suggest it only when no inf is there
                + ("." if np.isinf(X).any() else " (or fit with --missing ignore).")
            )
        )


def _where(row: int, line_numbers: list[int] | None) -> str:
    """Where row ``row`` is: its line in a text file, its 0-based index in an array."""
    return f"line {line_numbers[row]}" if line_numbers is not None else f"row {row} (0-based)"


def _check_usable_rows(data: InputData, max_missing: float) -> None:
    """``missing="ignore"``'s row rule (:func:`somvq.missing.unusable_rows`), naming the
    first such row by its line (by its 0-based index in an array)."""
    from somvq.missing import unusable_rows

    X = data.X
    empty, over = unusable_rows(X, max_missing)
    for rows, what, remedy in (
        (empty, "with no observed feature (all missing)", "remove them"),
        (
            over,
            f"missing more than --max-missing {max_missing:g} of their {X.shape[1]} features",
            "remove them or raise --max-missing",
        ),
    ):
        if rows.size:
            row = int(rows[0])
            where = _where(row, data.line_numbers)
            raise DataError(f"{data.source}: {rows.size} row(s) {what}, the first at {where}; {remedy}.")


# ----------------------------------------------------------------------- dispatching
def read_data_file(
    path: str,
    *,
    columns: str | None = None,
    key: str | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    missing: bool = False,
) -> InputData:
    """Read ``path`` (``"-"``: stdin) by extension, or by content when it has none.

    ``missing``: NaN (and, in text, empty / NA / nan fields) are kept as missing values.
    """
    if path == "-":
        source = "stdin"
        raw = sys.stdin.buffer.read()  # (click.get_binary_stream is deprecated in recent click)
        suffix = ""
    else:
        source = path
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot read: {exc.strerror or exc}.") from None
        suffix = Path(path).suffix.lower()
    # A binary format is recognised by its content first (an .npz saved as .npy, a
    # truncated archive of either name), then by the extension.
    if raw.startswith(_NPY_MAGIC):
        return read_npy(raw, source, columns, missing)
    if raw.startswith(_ZIP_MAGIC):
        return read_npz(raw, source, key, columns, missing)
    if suffix == ".npy":
        return read_npy(raw, source, columns, missing)
    if suffix == ".npz":
        return read_npz(raw, source, key, columns, missing)
    if delimiter is None and suffix in (".tsv", ".tab"):
        delimiter = "\t"
    elif delimiter is None and suffix == ".csv":
        delimiter = ","
    return read_text_table(raw, source, delimiter=delimiter, header=header, columns=columns, missing=missing)


def load_input(
    data: str | None,
    *,
    dataset: str | None,
    data_dir: str | None = None,
    split: str = "train",
    n_samples: int | None = None,
    columns: str | None = None,
    key: str | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    default_dataset: str | None = None,
    missing: bool = False,
    max_missing: float = 1.0,
) -> InputData:
    """The rows a command works on: DATA, or --dataset, or ``default_dataset``.

    ``missing``: keep NaN (missing values) in DATA instead of refusing them; rows with no
    observed value, or missing more than ``max_missing`` of their features (``fit``'s
    --max-missing; 1.0 where any fraction maps), are refused naming their line.
    """
    if data is not None and dataset is not None:
        raise click.UsageError("give either DATA or --dataset, not both.")
    if data is None and dataset is None:
        if default_dataset is None:
            raise click.UsageError("missing input: give DATA (a file, or - for stdin) or --dataset.")
        dataset = default_dataset
    if dataset is not None:
        from somvq.datasets import load_dataset

        with library_errors():
            loaded = load_dataset(dataset, split=split, data_dir=data_dir, n_samples=n_samples)
        result = InputData(
            X=loaded.X,
            source=loaded.name,
            feature_names=list(loaded.feature_names) or None,
            image_shape=loaded.image_shape,
            description=loaded.description,
            target=loaded.y,
        )
        if columns:
            selected = parse_columns(columns, result.feature_names, result.X.shape[1], result.source)
            result.X = result.X[:, selected]
            result.feature_names = (
                [result.feature_names[i] for i in selected] if result.feature_names else None
            )
            result.image_shape = None
        return result
    result = read_data_file(
        data, columns=columns, key=key, delimiter=delimiter, header=header, missing=missing
    )
    if n_samples is not None:
        result.X = result.X[:n_samples]
        if result.line_numbers is not None:
            result.line_numbers = result.line_numbers[:n_samples]
    if missing:
        _check_usable_rows(result, max_missing)
    n, d = result.X.shape
    result.description = f"{result.source}: {n} rows x {d} features"
    return result
