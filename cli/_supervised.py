"""Supervised maps on the command line (issue 14): ``somvq fit DATA --target COLUMN``.

``fit`` trains a :class:`somvq.KSOMClassifier` or :class:`somvq.KSOMRegressor` and saves
its map (a layered KSOM on ``[X, Y]``) with an ``extra["supervised"]`` entry: the task,
the target's name, the classes (as text) or the target's mean and scale, and the number of
input columns. ``predict`` then writes the predicted target, ``evaluate`` the accuracy or
R² when DATA holds the target column.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ._errors import DataError, library_errors

#: A numeric target with at most this many distinct integer values is a class label.
MAX_CLASS_LEVELS = 20


def choose_task(labels: Any, task: str | None) -> str:
    """ "classify" for text, or integer values with <= MAX_CLASS_LEVELS levels; else "regress"."""
    import numpy as np

    if task is not None:
        return task
    try:
        values = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError):
        return "classify"
    if (
        np.all(np.isfinite(values))
        and np.all(values == np.round(values))
        and np.unique(values).size <= MAX_CLASS_LEVELS
    ):
        return "classify"
    return "regress"


def fit_supervised(som_params: dict, X: Any, labels: Any, task: str) -> tuple[Any, dict]:
    """Train the supervised estimator; returns it and the model file's ``supervised`` entry."""
    import numpy as np

    from somvq import KSOMClassifier, KSOMRegressor

    # every option of somvq fit is a parameter of both supervised estimators (tested)
    taken = KSOMClassifier().get_params()
    params = {k: v for k, v in som_params.items() if k in taken}
    if task == "classify":
        est = KSOMClassifier(**params)
        est.fit(X, class_texts(labels))
        info = {"task": "classify", "classes": [str(c) for c in est.classes_]}
    else:
        try:
            y = np.asarray(labels, dtype=np.float64)
        except (TypeError, ValueError):
            bad = next(i for i, value in enumerate(labels.tolist()) if not _is_float(value))
            raise DataError(
                f"--task regress needs a numeric --target column; data row {bad + 1} holds "
                f"{str(labels[bad])!r}."
            ) from None
        est = KSOMRegressor(**params).fit(X, y)
        info = {"task": "regress", "y_mean": est.y_mean_, "y_scale": est.y_scale_}
    info["n_inputs"] = int(X.shape[1])
    return est, info


def class_texts(labels: Any) -> Any:
    """Class labels as the text the model keeps: an integer written as a float ("17.0",
    "1e1": a CSV of integers saved through floats) becomes the integer's text ("17"), so that
    files writing the same classes either way agree (evaluate scored 0.0 on "17.0" against a
    model fitted on "17"); any other text is kept as it is ("007" stays "007")."""
    import math

    import numpy as np

    def text(value: Any) -> str:
        raw = str(value).strip()
        if any(c in raw for c in ".eE") and _is_float(raw):
            number = float(raw)
            if math.isfinite(number) and number == int(number):
                return str(int(number))
        return str(value)

    return np.asarray([text(v) for v in np.asarray(labels, dtype=object).tolist()], dtype=object)


def _no_target(value: Any) -> bool:
    """A target cell that holds no target: empty, a missing-value token (NA, nan, N/A), or
    a number that is not finite (a classifier took "NA" as one more class of a numeric
    column, and NaN reached the estimator as "Input y contains NaN")."""
    import math

    from ._input import _is_missing_token

    text = str(value)
    if text.strip() == "" or _is_missing_token(text):
        return True
    return _is_float(text) and not math.isfinite(float(text))


def _is_float(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def supervised_info(loaded: Any) -> dict | None:
    info = loaded.extra.get("supervised")
    return info if isinstance(info, dict) else None


@contextlib.contextmanager
def _stdin_as_file() -> Iterator[str]:
    """stdin, read once, as a file (named ``stdin`` in a temporary directory) that can be
    read more than once; the command line's errors name it ``stdin``."""
    import sys
    import tempfile

    from ._input import array_suffix

    content = sys.stdin.buffer.read()
    # named by its kind, as the readers tell NumPy files: a .npy or .npz has no text header
    suffix = array_suffix(content)
    with tempfile.TemporaryDirectory(prefix="somvq-") as directory:
        path = str(Path(directory) / f"stdin{suffix}")
        Path(path).write_bytes(content)
        try:
            yield path
        except click.ClickException as exc:
            exc.message = exc.message.replace(path, "stdin")
            raise


def load_features(loaded: Any, data: str | None, source: dict) -> tuple[Any, Any, Any]:
    """(scaled X, target labels or None, inputs) of DATA for a supervised model.

    When DATA's header names the model's target column, it is split off (and returned).
    DATA ``-`` (stdin) is read as a file.
    """
    from ._input import is_array_file, load_input

    if data == "-":
        with _stdin_as_file() as path:
            X, labels, inputs = load_features(loaded, path, source)
        inputs.source = "stdin"
        if inputs.description:
            inputs.description = inputs.description.replace(path, "stdin")
        return X, labels, inputs
    info = supervised_info(loaded)
    name = info.get("target")
    labels = None
    ignore = loaded.som.missing == "ignore"  # the map was trained with NaN in its inputs
    if data is not None and not is_array_file(data) and isinstance(name, str):
        from .report import _split_target, table_fields

        # DATA's first row split as the fit split its file (delimiter, comment lines)
        first = table_fields(data, source, first=True)[0][0]
        column = info.get("target_column")
        if name in first:  # the target's header name
            inputs, labels = _split_target(data, name, source, missing=ignore)
        elif isinstance(column, int) and len(first) == info["n_inputs"] + 1 and column < len(first):
            # the target's place in a file without its header name (a file without a header)
            inputs, labels = _split_target(data, str(column + 1), source, missing=ignore)
        else:
            inputs = load_input(data, missing=ignore, **source)
    else:
        inputs = load_input(data, missing=ignore, **source)
        if data is None and inputs.target is not None:  # a --dataset carries its classes
            labels = inputs.target
    X = loaded.columns_in_model_order(inputs)
    if X.shape[1] != info["n_inputs"]:
        raise DataError(
            f"feature-count mismatch: {loaded.path} predicts {name!r} from {info['n_inputs']} "
            f"features, {inputs.source} has {X.shape[1]}; select columns with --columns."
        )
    return loaded.scaling.apply(X), labels, inputs


def predict_target(loaded: Any, X: Any) -> Any:
    """The predicted target of each row: the BMU (found on the input columns) and its Y part."""
    import numpy as np

    from somvq.algorithms import assign

    info = supervised_info(loaded)
    n = int(info["n_inputs"])
    codebook = loaded.som.codebook_
    with library_errors():
        inputs = np.ascontiguousarray(codebook[:, :n])
        if loaded.som.missing == "ignore" and np.isnan(X).any():  # the BMU on the observed inputs
            from somvq import missing

            missing.check_missing(np.asarray(X, dtype=np.float64), 1.0)
            bmu = missing.masked_assign(np.asarray(X, dtype=np.float64), inputs)[0]
        else:
            bmu = assign(np.ascontiguousarray(X, dtype=codebook.dtype), inputs)[0]
    part = codebook[bmu, n:].astype(np.float64)
    if info["task"] == "classify":
        return np.asarray(info["classes"], dtype=object)[np.argmax(part, axis=1)]
    return part[:, 0] * float(info["y_scale"]) + float(info["y_mean"])


def score(info: dict, labels: Any, predicted: Any) -> tuple[str, float]:
    """("accuracy", value) or ("r2", value)."""
    import numpy as np

    if info["task"] == "classify":
        # both sides in one form: a model file of an older somvq may hold "17.0"
        return "accuracy", float(np.mean(class_texts(labels) == class_texts(predicted)))
    from sklearn.metrics import r2_score

    try:
        truth = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("the target column holds non-numeric values; the model is a regressor.") from None
    return "r2", float(r2_score(truth, predicted))


def write_predictions(values: Any, name: str, output: str | None, force: bool) -> None:
    """One column, headed by the target's name: CSV on stdout, or a .csv/.tsv/.txt file."""
    from somvq._atomic import atomic_write

    from ._output import check_output, csv_line

    # quoted where a label or the name holds a comma or a quote: the table reads back
    text = "".join(csv_line([field]) + "\n" for field in [name, *values.tolist()])
    if output is None or output == "-":
        click.echo(text, nl=False)
        return
    check_output(output, force, suffixes=(".csv", ".tsv", ".txt"))
    atomic_write(output, lambda handle: handle.write(text.encode("utf-8")), overwrite=force)
    click.echo(f"wrote {len(values)} predictions of {name} to {output}", err=True)


def fit_and_save(
    params: dict,
    data: str | None,
    target: str,
    task: str | None,
    source: dict,
    scaling_method: str,
    model_path: Path,
    output: str | None,
    output_dir: Path,
    quiet: bool,
    force: bool,
) -> None:
    """``somvq fit DATA --target COLUMN``: train, save, print the training score.

    ``params``: the map options given (the others keep the estimator's defaults).
    """
    import time

    from somvq.io import save

    from ._model import LoadedModel
    from ._options import input_arguments
    from ._scaling import Scaling
    from .report import split_target_column

    inputs, labels, column_name, column = split_target_column(
        data, target, source, missing=params.get("missing") == "ignore"
    )
    empty = [i for i, value in enumerate(labels.tolist()) if _no_target(value)]
    if empty:
        rows = ", ".join(str(i + 1) for i in empty[:5]) + (", ..." if len(empty) > 5 else "")
        raise DataError(
            f"{inputs.source}: the --target column {target!r} is empty, missing (NA, nan) or "
            f"infinite in {len(empty)} row(s) (data rows {rows}, the first holds "
            f"{str(labels[empty[0]])!r}); every row needs its target: fill or remove them."
        )
    task = choose_task(labels, task)
    scaling = Scaling.fit(scaling_method, inputs.X)
    X = scaling.apply(inputs.X)
    if not quiet:
        click.echo(f"data   {inputs.description or inputs.source}, target {target!r} ({task})", err=True)
    started = time.perf_counter()
    with library_errors(inputs.source):
        est, info = fit_supervised(params, X, labels, task)
    elapsed = time.perf_counter() - started
    # the target's header name (a number given for a file with a header names it too), and
    # its place, so that predict / evaluate find it in DATA however it was given
    info["target"] = column_name if column_name is not None else target
    if column is not None:
        info["target_column"] = column
    extra: dict[str, Any] = scaling.to_extra()
    extra["data"] = inputs.description or inputs.source
    extra["supervised"] = info
    if inputs.feature_names:
        extra["feature_names"] = list(inputs.feature_names)
    with library_errors():
        if output is None:
            output_dir.mkdir(parents=True, exist_ok=True)
        save(est.som_, model_path, extra=extra, overwrite=force)

    loaded = LoadedModel(som=est.som_, path=str(model_path), scaling=scaling, extra=extra)
    metric, value = score(info, labels, predict_target(loaded, X))
    click.echo(f"somvq fit: {inputs.description or inputs.source}, target {target!r}")
    click.echo(
        f"map      {'x'.join(map(str, est.som_.grid_.shape))}, {'classifier' if task == 'classify' else 'regressor'}"
        f"{'' if scaling.method == 'none' else ', ' + scaling.method}"
    )
    click.echo(f"training {metric} {value:.4f}   time {elapsed:.2f} s")
    click.echo(f"model    {model_path}")
    click.echo(f"next     somvq evaluate {shlex.quote(str(model_path))} {input_arguments(data, source)}")
