"""Saving and loading fitted estimators in a safe, versioned file format.

A model file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) holding

* ``__somvq__``: UTF-8 JSON metadata as a uint8 array: format name and version, the
  library version, the estimator class, its parameters and the non-array fitted state;
* one array per fitted array attribute (``codebook_``, ``ema_count_``, ...) and, when the
  ``init`` parameter is an array, ``param__init``;
* optionally, front ends' own data (``save(..., extra=...)``): small JSON values in the
  metadata's ``"extra"`` entry and arrays named ``extra__<name>``. The command line keeps
  its input scaling there. :func:`load` ignores it (older readers too, so the format
  version is unchanged); :func:`read_extra` returns it.

Loading uses ``numpy.load(allow_pickle=False)`` and ``json``: nothing in a file can run
code. Every field is checked (names, shapes, dtypes, finiteness) before an estimator is
built, so a corrupted or foreign file raises :class:`~somvq.exceptions.ModelFileError`
naming the problem, and an estimator is returned only when the whole file is sound.
Files are written atomically (temporary file, then rename): a failed save never leaves a
partial file, and an existing file is replaced only by a complete one.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_write
from ._version import __version__
from .exceptions import BackendUnavailableError, ModelFileError

__all__ = ["save", "load", "read_metadata", "read_extra", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "somvq-model"
FORMAT_VERSION = 1
_META_KEY = "__somvq__"
_ARRAY_STATE = ("codebook_", "ema_count_", "ema_sum_", "unit_counts_", "labels_")
_SCALAR_STATE = ("n_features_in_", "n_steps_", "n_iter_", "_horizon")
_MAX_META_BYTES = 16 * 1024 * 1024


def _json_param(name: str, value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_json_param(name, v) for v in value]}
    if isinstance(value, list):
        return [_json_param(name, v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"parameter {name}={value!r} cannot be stored in a model file; use an int, float, "
        "str, bool, tuple or None (e.g. an int random_state instead of a RandomState)."
    )


def _from_json_param(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"__tuple__"}:
        return tuple(_from_json_param(v) for v in value["__tuple__"])
    if isinstance(value, list):
        return [_from_json_param(v) for v in value]
    return value


def save(estimator: Any, path: str | os.PathLike, *, extra: dict[str, Any] | None = None) -> Path:
    """Write a fitted :class:`~somvq.KSOM` to ``path`` (conventionally ``*.somvq.npz``).

    Parameters
    ----------
    estimator : KSOM
        A fitted estimator.
    path : str or path-like
        Destination. Written atomically; an existing file is replaced.
    extra : dict, optional
        Data a front end keeps with the model (e.g. the command line's input scaling):
        str keys, values that are NumPy arrays (numeric) or JSON-serialisable. Ignored by
        :func:`load`; read back with :func:`read_extra`.

    Returns
    -------
    Path of the written file.
    """
    from .estimator import KSOM

    if not isinstance(estimator, KSOM):
        raise TypeError(f"save expects a somvq.KSOM, got {type(estimator).__name__}.")
    if not hasattr(estimator, "codebook_"):
        raise ValueError("save expects a fitted KSOM; call fit or partial_fit first.")
    params = estimator.get_params(deep=False)
    arrays: dict[str, np.ndarray] = {}
    json_params = {}
    for name, value in params.items():
        if isinstance(value, np.ndarray) or (name == "init" and not isinstance(value, str)):
            arrays[f"param__{name}"] = np.asarray(value)
            json_params[name] = {"__array__": f"param__{name}"}
        else:
            json_params[name] = _json_param(name, value)
    for name in _ARRAY_STATE:
        if hasattr(estimator, name):
            arrays[name] = np.ascontiguousarray(getattr(estimator, name))
    state = {name: getattr(estimator, name) for name in _SCALAR_STATE if hasattr(estimator, name)}
    state = {k: (float(v) if isinstance(v, (float, np.floating)) else int(v)) for k, v in state.items()}
    grid = estimator.grid_
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "somvq_version": __version__,
        "estimator": "KSOM",
        "params": json_params,
        "state": state,
        "grid": {"shape": list(grid.shape), "topology": grid.topology, "periodic": list(grid.periodic)},
        "rng_state": getattr(estimator, "_rng_state", None),
        "feature_names_in": (
            [str(f) for f in estimator.feature_names_in_]
            if hasattr(estimator, "feature_names_in_")
            else None
        ),
        "arrays": sorted(arrays),
    }
    if extra:
        meta["extra"] = {}
        for name, value in extra.items():
            if isinstance(value, np.ndarray):
                if value.dtype.hasobject:
                    raise TypeError(f"extra[{name!r}] is an object array, which cannot be stored safely.")
                arrays[f"extra__{name}"] = np.ascontiguousarray(value)
                meta["extra"][name] = {"__array__": f"extra__{name}"}
            else:
                meta["extra"][name] = value
        meta["arrays"] = sorted(arrays)
    arrays[_META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)

    # np.savez is looked up at call time (the tests replace it to simulate a failed write).
    return atomic_write(path, lambda handle: np.savez(handle, **arrays))


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata of a model file, checked for format and version."""
    with _open(path) as archive:
        return _metadata(archive, path)


def read_extra(path: str | os.PathLike) -> dict[str, Any]:
    """The ``extra`` data stored by ``save(..., extra=...)``; ``{}`` when there is none.

    Raises
    ------
    ModelFileError
        The file is not a somvq model file, or its extra data is inconsistent.
    """
    with _open(path) as archive:
        meta = _metadata(archive, path)
        stored = meta.get("extra") or {}
        if not isinstance(stored, dict):
            raise ModelFileError(f"{str(path)!r} is corrupted: its extra entry is not a mapping.")
        extra: dict[str, Any] = {}
        try:
            for name, value in stored.items():
                if isinstance(value, dict) and set(value) == {"__array__"}:
                    extra[name] = archive[value["__array__"]]
                else:
                    extra[name] = value
        except (KeyError, ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ModelFileError(f"{str(path)!r} is corrupted: extra data unreadable ({exc!r}).") from None
    return extra


def _open(path: str | os.PathLike):
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist or is not a file.")
    try:
        return np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelFileError(f"{str(path)!r} is not a somvq model file (not a readable .npz: {exc}).") from None


def _metadata(archive: Any, path: Any) -> dict:
    if _META_KEY not in archive.files:
        raise ModelFileError(f"{str(path)!r} is not a somvq model file (no {_META_KEY} record).")
    try:
        raw = archive[_META_KEY]
        if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > _MAX_META_BYTES:
            raise ValueError("metadata record has the wrong type")
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelFileError(f"{str(path)!r} has corrupted metadata: {exc}.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{str(path)!r} is not a somvq model file (format={meta.get('format') if isinstance(meta, dict) else None!r}).")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1 or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{str(path)!r} has model format version {version!r}; this somvq "
            f"({__version__}) reads versions 1..{FORMAT_VERSION}. Upgrade somvq to read it."
        )
    if meta.get("estimator") != "KSOM":
        raise ModelFileError(f"{str(path)!r} holds an unknown estimator {meta.get('estimator')!r}.")
    return meta


def load(path: str | os.PathLike):
    """Read a model file written by :func:`save` and return the fitted estimator.

    Raises
    ------
    ModelFileError
        The file is missing, not a model file, corrupted, or of a newer format version.
    """
    from .estimator import KSOM
    from .grids import Grid
    from .state import FittedState

    with _open(path) as archive:
        meta = _metadata(archive, path)
        try:
            arrays = {name: archive[name] for name in archive.files if name != _META_KEY}
        except (ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ModelFileError(f"{str(path)!r} is corrupted: {exc}.") from None
    try:
        params = {}
        for name, value in meta["params"].items():
            if isinstance(value, dict) and "__array__" in value:
                params[name] = arrays[value["__array__"]]
            else:
                params[name] = _from_json_param(value)
        estimator = KSOM(**params)
        try:
            estimator.check_parameters()
        except BackendUnavailableError:
            pass  # a model trained on a GPU still loads for inspection on a CPU machine
        grid_meta = meta["grid"]
        grid = Grid(tuple(grid_meta["shape"]), grid_meta["topology"], tuple(grid_meta["periodic"]))
        state = meta["state"]
        codebook = arrays["codebook_"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{str(path)!r} is incomplete or inconsistent: {exc!r}.") from None

    def check(condition: bool, what: str) -> None:
        if not condition:
            raise ModelFileError(f"{str(path)!r} is corrupted: {what}.")

    n_units = grid.n_units
    check(codebook.ndim == 2 and codebook.shape[0] == n_units, f"codebook shape {codebook.shape} does not match {n_units} grid units")
    check(codebook.dtype in (np.float32, np.float64), f"codebook dtype {codebook.dtype} is not float32/float64")
    check(bool(np.all(np.isfinite(codebook))), "the codebook holds NaN or inf")
    check(state.get("n_features_in_") == codebook.shape[1], "n_features_in_ does not match the codebook")
    for name, shape in (("ema_count_", (n_units,)), ("ema_sum_", codebook.shape), ("unit_counts_", (n_units,))):
        if name in arrays:
            check(arrays[name].shape == shape and arrays[name].dtype == np.float64, f"{name} has shape {arrays[name].shape}")
    if "labels_" in arrays:
        labels = arrays["labels_"]
        check(labels.ndim == 1 and labels.dtype == np.int64, "labels_ is not a 1-D int64 array")
        check(labels.size == 0 or (labels.min() >= 0 and labels.max() < n_units), "labels_ out of range")

    estimator.set_fitted_state(
        FittedState(
            codebook=codebook,
            grid=grid,
            n_features_in=state.get("n_features_in_"),
            ema_count=arrays.get("ema_count_"),
            ema_sum=arrays.get("ema_sum_"),
            unit_counts=arrays.get("unit_counts_"),
            n_steps=state.get("n_steps_", 0),
            n_iter=state.get("n_iter_", 0),
            horizon=state.get("_horizon"),
            rng_state=meta.get("rng_state"),
            labels=arrays.get("labels_"),
        )
    )
    if meta.get("feature_names_in") is not None:
        estimator.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
    return estimator
