"""Loading a model file for the commands that apply one, with its input scaling.

``somvq fit`` on a file with a header stores the column names in the model file (the
``feature_names`` entry of :func:`somvq.io.save`'s ``extra`` data); predict, transform,
evaluate and plot then match the input's columns by name (see :meth:`LoadedModel.prepare`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import DataError, library_errors
from ._scaling import Scaling


@dataclass
class LoadedModel:
    som: Any  # fitted somvq.KSOM
    path: str
    scaling: Scaling
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def accepts_missing(self) -> bool:
        """The map was fitted with ``missing="ignore"``: its input may hold NaN (empty/NA cells)."""
        return getattr(self.som, "missing", "error") == "ignore"

    @property
    def feature_names(self) -> list[str] | None:
        names = self.extra.get("feature_names")
        return [str(n) for n in names] if isinstance(names, list) else None

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        shape = self.extra.get("image_shape")
        return tuple(int(s) for s in shape) if isinstance(shape, list) else None

    def prepare(self, data: Any) -> Any:
        """``data.X`` (an InputData) in the model's column order, scaled as at fit time.

        When both the model and the input name their columns, the names decide: the same
        names in another order are reordered, other names are an error. Otherwise (a
        headerless file, or a model fitted without names) columns are taken by position,
        and only their number is checked.
        """
        X = self.columns_in_model_order(data)
        expected = int(self.som.n_features_in_)
        got = X.shape[1]
        if got != expected:
            raise DataError(
                f"feature-count mismatch: {self.path} was fitted on {expected} features, "
                f"{data.source} has {got}; select columns with --columns."
            )
        return self.scaling.apply(X)

    def columns_in_model_order(self, data: Any) -> Any:
        """``data.X`` with its columns matched to the model's feature names (see prepare)."""
        expected, got = self.feature_names, data.feature_names
        if expected is None or got is None or list(got) == expected:
            return data.X
        got = [str(name) for name in got]
        if sorted(got) == sorted(expected) and len(set(got)) == len(got):
            # The same columns in another order: put them back in the model's order.
            import numpy as np

            return np.ascontiguousarray(data.X[:, [got.index(name) for name in expected]])
        missing = [name for name in expected if name not in got]
        unexpected = [name for name in got if name not in expected]
        details = []
        if missing:
            details.append(f"missing {_names(missing)}")
        if unexpected:
            details.append(f"not in the model {_names(unexpected)}")
        if not details:  # same names, but repeated differently
            details.append(f"the header repeats names: {_names(got)}")
        hint = (
            f" select the model's columns with --columns {_columns_option(expected, got)}"
            if not missing and len(set(got)) == len(got)
            else " rename the columns to match the model (a file without a header is taken by position)"
        )
        raise DataError(
            f"column names differ: {self.path} was fitted on {len(expected)} features {_names(expected)}, "
            f"{data.source} has {len(got)} {_names(got)} ({'; '.join(details)});{hint}."
        )


def _columns_option(expected: list[str], got: list[str]) -> str:
    """The value of ``--columns`` that picks ``expected`` out of a header ``got``, as one
    shell word (pasted as it is): the names, or the 1-based positions where a name could
    not be written in the list (a comma, spaces around it, a number)."""
    import shlex

    plain = all("," not in name and name == name.strip() and not name.isdigit() for name in expected)
    value = ",".join(expected) if plain else ",".join(str(got.index(name) + 1) for name in expected)
    return shlex.quote(value)


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")
    return f"[{shown}]"


def load_model(path: str, unsupervised: str | None = None) -> LoadedModel:
    """Read a model file; a corrupted or foreign file is a data error (exit 1).

    ``unsupervised`` names a command that works on maps fitted without ``--target`` only
    (its codebook holds the target columns too): a supervised map is then a usage error.
    """
    from somvq.io import load, read_extra

    with library_errors():
        som = load(path)
        extra = read_extra(path)
        n_inputs = _input_width(som, extra, path)
        scaling = Scaling.from_extra(extra, n_inputs, path)
    names = extra.get("feature_names")
    if names is not None and (
        not isinstance(names, list)
        or not all(isinstance(name, str) for name in names)
        or len(names) != n_inputs
    ):
        raise DataError(f"{path}: the model file is corrupted: its feature names are not {n_inputs} strings.")
    shape = extra.get("image_shape")
    if shape is not None and not (
        isinstance(shape, list)
        and len(shape) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape)
        and shape[0] * shape[1] == n_inputs
    ):
        raise DataError(
            f"{path}: the model file is corrupted: its image shape {shape!r} is not two positive "
            f"ints with {n_inputs} pixels."
        )
    supervised = extra.get("supervised")
    if unsupervised is not None and supervised is not None:
        import click

        raise click.UsageError(
            f"{path} is a supervised map (fitted with --target {supervised.get('target')!r}); "
            f"{unsupervised} works on maps fitted without --target. Use somvq predict / evaluate."
        )
    return LoadedModel(som=som, path=path, scaling=scaling, extra=extra)


def _input_width(som: Any, extra: dict[str, Any], path: str) -> int:
    """Columns the input has: the map's, or a supervised map's input columns (``--target``)."""
    supervised = extra.get("supervised")
    if supervised is None:
        return int(som.n_features_in_)
    n = supervised.get("n_inputs") if isinstance(supervised, dict) else None
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n < int(som.n_features_in_):
        raise DataError(f"{path}: the model file is corrupted: its supervised entry is malformed.")
    return n


# --------------------------------------------------------------------------------------
# What the commands that draw a map (plot, report) do before drawing: one place.
# --------------------------------------------------------------------------------------


def default_output(model: str, suffix: str) -> Path:
    """``MODEL``'s name without ``.somvq.npz`` (or its last suffix), plus ``suffix``, next to it."""
    name = Path(model).name
    stem = name[: -len(".somvq.npz")] if name.endswith(".somvq.npz") else Path(model).stem
    return Path(model).parent / f"{stem}{suffix}"


def load_drawable_model(
    model: str, image_shape: tuple[int, ...] | None, drawing: str, command: str
) -> tuple[LoadedModel, tuple[int, ...] | None]:
    """:func:`load_model`, a grid of 1 or 2 axes, and the image shape to draw the codebook with.

    ``image_shape`` is the option's value or, when None, the shape stored at fit; it must
    have as many pixels as the model has features. ``drawing`` completes the message of
    a 3-axis grid ("plots need", "the report draws"); ``command`` names the command for
    the refusal of a supervised map (:func:`load_model`).
    """
    import click

    loaded = load_model(model, unsupervised=command)
    som = loaded.som
    if som.grid_.ndim > 2:
        raise click.UsageError(f"{model} has a {som.grid_.ndim}-axis grid; {drawing} 1 or 2 axes.")
    image_shape = image_shape or loaded.image_shape
    if image_shape is not None and image_shape[0] * image_shape[1] != som.n_features_in_:
        raise click.BadParameter(
            f"{image_shape[0]}x{image_shape[1]} images have {image_shape[0] * image_shape[1]} pixels, "
            f"the model {som.n_features_in_} features.",
            param_hint="--image-shape",
        )
    return loaded, image_shape


def read_drawing_data(
    loaded: LoadedModel, data: str | None, source: dict[str, Any], target: str | None
) -> tuple[Any, Any, Any]:
    """``(X, labels, inputs)`` of DATA (or ``--dataset``) for plot and report; Nones without data.

    With ``target`` (a column of DATA, or ``target`` with ``--dataset``) the labels are
    that column as text and X the other columns; X is in the model's column order and
    scaling (:meth:`LoadedModel.prepare`).
    """
    import click

    from ._input import load_input

    have_data = data is not None or source["dataset"] is not None
    if target is not None and not have_data:
        raise click.UsageError("--target needs DATA or --dataset.")
    if not have_data:
        return None, None, None
    labels = None
    if target is not None:
        from .report import _split_target

        inputs, labels = _split_target(data, target, source, missing=loaded.accepts_missing)
    else:
        inputs = load_input(data, missing=loaded.accepts_missing, **source)
    return loaded.prepare(inputs), labels, inputs


def unit_clusters(som: Any, n_clusters: int | None) -> Any:
    """``--clusters N``: ``somvq.cluster_units(som, N)`` (agglomerative), or None without N."""
    if n_clusters is None:
        return None
    import click

    if n_clusters > som.grid_.n_units:
        raise click.BadParameter(
            f"{n_clusters} clusters is more than the map's {som.grid_.n_units} units.",
            param_hint="--clusters",
        )
    from somvq.analysis import cluster_units

    with library_errors():
        return cluster_units(som, n_clusters)
