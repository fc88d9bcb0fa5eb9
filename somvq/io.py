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

Loading reads the archive with ``zipfile``, each member with ``numpy.lib.format``
(``allow_pickle=False``; object arrays are refused from their header) and the metadata
with ``json``: nothing in a file can run code. Every field is checked (JSON types, member
names, each member's ``.npy`` header against the shapes the metadata implies *before* its
data is read, dtypes, finiteness, the stored grid against the parameters, feature names
against the feature count), so a corrupted, tampered or foreign file raises
:class:`~somvq.exceptions.ModelFileError` naming the problem, memory stays bounded by the
file's size, and an estimator is returned only when the whole file is sound.

Files are written atomically (temporary file, then rename): a failed save never leaves a
partial file, and an existing file is replaced only by a complete one. Only regular files
are replaced: a symbolic link is followed to its target, anything else (directory,
device, FIFO) is refused (:func:`somvq._atomic.writable_target`). A model whose state
holds NaN or inf, or whose parameters no longer describe its fitted grid, is not saved:
:func:`save` runs the checks :func:`load` runs (the same functions), so it never writes a
file that :func:`load` refuses.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import parameters
from ._atomic import atomic_write
from ._version import __version__
from .exceptions import ModelFileError

if TYPE_CHECKING:
    from .estimator import KSOM
    from .grids import Grid

__all__ = ["save", "load", "read_metadata", "read_extra", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "somvq-model"
FORMAT_VERSION = 1
_META_KEY = "__somvq__"
_ARRAY_STATE = ("codebook_", "ema_count_", "ema_sum_", "unit_counts_", "labels_", "layer_weights_")
_SCALAR_STATE = ("n_features_in_", "n_steps_", "n_iter_", "_horizon")
_MAX_META_BYTES = 16 * 1024 * 1024
#: Most bytes that decompressing (tampered) compressed members may add, all together.
_MAX_EXPANSION_BYTES = 16 * 1024 * 1024


def _json_param(name: str, value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_json_param(name, v) for v in value]}
    if isinstance(value, (list, range)):
        return [_json_param(name, v) for v in value]
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufU":  # e.g. layer_weights
        return [_json_param(name, v) for v in value.tolist()]  # read back as a list
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


def save(
    estimator: Any, path: str | os.PathLike, *, extra: dict[str, Any] | None = None, overwrite: bool = True
) -> Path:
    """Write a fitted :class:`~somvq.KSOM` to ``path`` (conventionally ``*.somvq.npz``).

    Parameters
    ----------
    estimator : KSOM
        A fitted estimator.
    path : str or path-like
        Destination. Written atomically; an existing regular file is replaced. A symbolic
        link is followed: the file it points to is replaced and the link kept. Anything
        else (a directory, a device such as ``/dev/null``, a FIFO, a socket) is refused
        with a ``ValueError``, so a save never replaces it.
    extra : dict, optional
        Data a front end keeps with the model (e.g. the command line's input scaling):
        str keys, values that are NumPy arrays (numeric) or JSON-serialisable. Ignored by
        :func:`load`; read back with :func:`read_extra`.
    overwrite : bool, default=True
        False: raise :class:`somvq._atomic.OutputExistsError` (a ``FileExistsError``) if
        ``path`` exists when the file is moved into place, checked atomically, so a file
        that appeared there while the model was being written is kept.

    Returns
    -------
    Path of the written file (a symbolic link's target).

    Raises
    ------
    ValueError
        The estimator is unfitted, its state holds NaN or inf, or its parameters or
        state would make :func:`load` refuse the file ("cannot save: ..." naming the
        parameter and its value); ``path`` is not a
        regular file (or a link to one, or a new name); an ``extra`` key is not a
        non-empty str without ``/``, ``\\`` or NUL, or its value a dict holding the key
        ``"__array__"`` (reserved).
    TypeError
        An ``extra`` value is neither a NumPy array (no object dtype) nor
        JSON-serialisable.
    """
    from .estimator import KSOM

    if not isinstance(estimator, KSOM):
        raise TypeError(f"save expects a somvq.KSOM, got {type(estimator).__name__}.")
    if hasattr(estimator, "to_ksom"):  # DaskKSOM: its own parameters, and lazy labels_
        raise TypeError(
            f"save expects a somvq.KSOM; save a {type(estimator).__name__}'s to_ksom() "
            "(DaskKSOM.from_ksom(load(path)) brings it back)."
        )
    if not hasattr(estimator, "codebook_"):
        raise ValueError("save expects a fitted KSOM; call fit or partial_fit first.")
    params = estimator.get_params(deep=False)
    arrays: dict[str, Any] = {}  # name -> np.ndarray (Any: np.savez(**arrays) type-checks)
    json_params = {}
    for name, value in params.items():
        if name == "init" and not isinstance(value, str):
            arrays[f"param__{name}"] = np.asarray(value)
            json_params[name] = {"__array__": f"param__{name}"}
        else:
            json_params[name] = _json_param(name, value)
    for name in _ARRAY_STATE:
        if hasattr(estimator, name):
            value = np.ascontiguousarray(getattr(estimator, name))
            if name == "labels_" and value.dtype.kind in "iu":  # e.g. int32 labels: stored as int64
                value = value.astype(np.int64, copy=False)
            arrays[name] = value
    state = {name: getattr(estimator, name) for name in _SCALAR_STATE if hasattr(estimator, name)}
    state = {
        k: (float(v) if isinstance(v, (float, np.floating)) else int(v) if isinstance(v, np.integer) else v)
        for k, v in state.items()
    }
    # What load will check, checked now, by the very functions load runs, on the values
    # it will read (the parameters after their JSON round trip): never write a file that
    # cannot be read back.
    try:
        _check_scalar_state(state)
    except ValueError as exc:
        raise ValueError(f"cannot save: {exc}.") from None
    n_features = state["n_features_in_"]
    try:
        _check_state_arrays(arrays, estimator.grid_.n_units, n_features)
    except ValueError as exc:
        raise ValueError(
            f"cannot save a model whose {exc}: it is not a usable model (refit it, e.g. with "
            "rescaled data or a smaller learning rate)."
        ) from None
    names = getattr(estimator, "feature_names_in_", None)
    names = None if names is None else [str(f) for f in names]
    try:
        stored_params, init_value = _parse_params(json.loads(json.dumps(json_params)), set(arrays))
        try:
            probe, described = _checked_estimator(stored_params, init_value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"invalid parameters ({exc})") from None
        grid_now = _described_grid(probe, described, estimator.grid_)
        if grid_now != estimator.grid_:
            raise ValueError(
                f"the parameters now describe {grid_now!r}, but the model was fitted on "
                f"{estimator.grid_!r} (set_params after fitting?); restore the grid parameters or refit"
            )
        if "param__init" in arrays:
            _check_init(arrays["param__init"], (estimator.grid_.n_units, n_features))
        estimator._fitted_layers()  # layers changed after fitting (load reads them as the fitted ones)
        checked = _check_layers(probe, n_features, "layer_weights_" in arrays)
        if checked is not None:
            _check_layer_weights(arrays["layer_weights_"], len(checked[0]))
        _check_rng_state(getattr(estimator, "_rng_state", None))
        _check_feature_names(names, n_features)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot save: {exc}.") from None
    grid = estimator.grid_
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "somvq_version": __version__,
        "estimator": "KSOM",
        "params": json_params,
        "state": state,
        "grid": {"shape": list(grid.shape), "topology": grid.topology, "periodic": list(grid.periodic)},
        "rng_state": getattr(estimator, "_rng_state", None),
        "feature_names_in": names,
        "arrays": sorted(arrays),
    }
    if extra:
        meta["extra"] = {}
        for name, value in extra.items():
            _check_extra(name, value)
            if isinstance(value, np.ndarray):
                arrays[f"extra__{name}"] = np.ascontiguousarray(value)
                meta["extra"][name] = {"__array__": f"extra__{name}"}
            else:
                meta["extra"][name] = value
        meta["arrays"] = sorted(arrays)
    arrays[_META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)

    # np.savez is looked up at call time (the tests replace it to simulate a failed write).
    return atomic_write(path, lambda handle: np.savez(handle, **arrays), overwrite=overwrite)


def _check_extra(name: Any, value: Any) -> None:
    """Refuse an ``extra`` entry that :func:`load` / :func:`read_extra` could not read back."""
    if not isinstance(name, str) or not name or any(c in name for c in "/\\\0"):
        raise ValueError(
            f"extra key {name!r} must be a non-empty str without '/', '\\' or NUL "
            "(array entries become archive members named after it)."
        )
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"extra[{name!r}] is an object array, which cannot be stored safely.")
        return
    if isinstance(value, dict) and "__array__" in value:
        raise ValueError(
            f"extra[{name!r}] is a dict with the key '__array__', which the file format reserves."
        )
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(
            f"extra[{name!r}] must be a NumPy array or JSON-serialisable, got {type(value).__name__} ({exc})."
        ) from None


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
        for name, value in stored.items():
            if isinstance(value, dict) and set(value) == {"__array__"}:
                member = value["__array__"]
                if member != f"extra__{name}" or member not in archive.files:
                    raise ModelFileError(f"{str(path)!r} is corrupted: extra array {name!r} is missing.")
                extra[name] = archive.read(member)  # any dtype but object (refused by the header check)
            else:
                extra[name] = value
    return extra


# ----------------------------------------------------------------------------- reading
#: What zipfile and NumPy raise on a damaged archive or member: besides BadZipFile, a
#: flipped flag bit reads as an encrypted member (RuntimeError), a damaged compression
#: method as NotImplementedError, damaged deflate data as zlib.error.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    zlib.error,
)


class _Archive:
    """A model file's zip archive, read one checked ``.npy`` member at a time.

    Nothing is read before its ``.npy`` header has been checked: the dtype (no object
    arrays: no pickle), the shape against what the caller expects, and the data size
    against the bytes the member really holds in the file (no zip bombs). Memory is
    therefore bounded by the file's size and by the shapes the metadata implies.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.size = path.stat().st_size
            self.zip = zipfile.ZipFile(path)
        except _ZIP_ERRORS as exc:
            raise ModelFileError(
                f"{str(path)!r} is not a somvq model file (not a readable .npz: {exc})."
            ) from None
        names = self.zip.namelist()
        self.members = {}
        for info in self.zip.infolist():
            if not info.filename.endswith(".npy") or info.filename.count("/") or info.is_dir():
                self.close()
                raise ModelFileError(
                    f"{str(path)!r} is corrupted: unexpected archive member {info.filename!r}."
                )
            self.members[info.filename[: -len(".npy")]] = info
        if len(self.members) != len(names):
            self.close()
            raise ModelFileError(f"{str(path)!r} is corrupted: an archive member appears twice.")
        self.files = list(self.members)
        self.expanded = 0  # bytes added by decompression so far

    def __enter__(self) -> _Archive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.zip.close()

    def _fail(self, name: str, what: str) -> ModelFileError:
        return ModelFileError(f"{str(self.path)!r} is corrupted: {name} {what}.")

    def header(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """Shape and dtype declared by member ``name``'s ``.npy`` header (data unread)."""
        info = self.members[name]
        try:
            with self.zip.open(info) as handle:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
                else:
                    raise ValueError(f"unsupported .npy format version {version}")
                header_size = handle.tell()
        except (*_ZIP_ERRORS, SyntaxError, TypeError) as exc:
            raise self._fail(name, f"has an unreadable .npy header ({exc})") from None
        if dtype.hasobject:
            raise self._fail(name, "is an object array (refused: it would need pickle)")
        nbytes = math.prod(int(s) for s in shape) * dtype.itemsize
        # The sizes come from the central directory: a stored member holds exactly its
        # file_size bytes, and no member's bytes reach past the end of the file, so a
        # declared size is bounded by the file's (NumPy allocates before it reads).
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise self._fail(
                name,
                f"declares {info.file_size} bytes but stores {info.compress_size} (an uncompressed "
                "member holds exactly its size)",
            )
        if info.header_offset + info.compress_size > self.size:
            raise self._fail(
                name, f"holds {info.compress_size} bytes past the end of the {self.size}-byte file"
            )
        if nbytes + header_size != info.file_size:
            raise self._fail(
                name, f"declares {nbytes} bytes of data but holds {info.file_size - header_size}"
            )
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > info.compress_size:
            # The data must really be in the file: a compressed member may expand only a
            # little (somvq writes members uncompressed), so a 1 MB file never becomes a
            # 1 GB array.
            self.expanded += info.file_size - info.compress_size
            if self.expanded > _MAX_EXPANSION_BYTES:
                raise self._fail(
                    name,
                    f"expands from {info.compress_size} compressed bytes to {info.file_size} "
                    "(refused: somvq model files store their arrays uncompressed)",
                )
        return tuple(int(s) for s in shape), dtype

    def read(
        self,
        name: str,
        *,
        shape: tuple[int | None, ...] | None = None,
        dtypes: tuple[Any, ...] | None = None,
        numeric: bool = False,
        max_bytes: int | None = None,
    ) -> np.ndarray:
        """Member ``name`` as an array, after checking its header.

        ``shape``: the expected shape (``None`` entries: any length, still bounded by the
        member's stored size); ``dtypes``: allowed dtypes; ``numeric``: any bool, integer or
        float dtype; ``max_bytes``: an upper bound on the data size.
        """
        if name not in self.members:
            raise self._fail(name, "is missing")
        found_shape, dtype = self.header(name)
        if shape is not None and (
            len(found_shape) != len(shape)
            or any(e is not None and e != f for e, f in zip(shape, found_shape))
        ):
            want = "(" + ", ".join("n" if e is None else str(e) for e in shape) + ")"
            label = "codebook" if name == "codebook_" else name
            raise self._fail(
                label, f"shape {found_shape} does not match the expected {want} (from the metadata)"
            )
        if dtypes is not None and dtype not in [np.dtype(d) for d in dtypes]:
            raise self._fail(
                name, f"has dtype {dtype}, expected {' or '.join(str(np.dtype(d)) for d in dtypes)}"
            )
        if numeric and dtype.kind not in "biuf":
            raise self._fail(name, f"has dtype {dtype}, expected a numeric dtype")
        nbytes = math.prod(found_shape) * dtype.itemsize
        if max_bytes is not None and nbytes > max_bytes:
            raise self._fail(name, f"holds {nbytes} bytes, more than the {max_bytes} allowed")
        try:
            with self.zip.open(self.members[name]) as handle:
                return np.lib.format.read_array(handle, allow_pickle=False)
        except _ZIP_ERRORS as exc:
            raise self._fail(name, f"is unreadable ({exc})") from None


def _open(path: str | os.PathLike) -> _Archive:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist or is not a file.")
    return _Archive(path)


def _metadata(archive: _Archive, path: Any) -> dict:
    if _META_KEY not in archive.files:
        raise ModelFileError(f"{str(path)!r} is not a somvq model file (no {_META_KEY} record).")
    try:
        raw = archive.read(_META_KEY, shape=(None,), dtypes=(np.uint8,), max_bytes=_MAX_META_BYTES)
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except ModelFileError as exc:
        raise ModelFileError(f"{str(path)!r} has corrupted metadata: {exc}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{str(path)!r} has corrupted metadata: {exc}.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{str(path)!r} is not a somvq model file (format={meta.get('format') if isinstance(meta, dict) else None!r})."
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1 or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{str(path)!r} has model format version {version!r}; this somvq "
            f"({__version__}) reads versions 1..{FORMAT_VERSION}. Upgrade somvq to read it."
        )
    if meta.get("estimator") != "KSOM":
        raise ModelFileError(f"{str(path)!r} holds an unknown estimator {meta.get('estimator')!r}.")
    return meta


def load(path: str | os.PathLike) -> KSOM:
    """Read a model file written by :func:`save` and return the fitted estimator.

    Every field is checked before anything is built: the archive holds exactly the
    members the metadata lists (and only known ones), each member's ``.npy`` header
    (dtype, shape implied by the metadata, size) is checked before its data is read, the
    arrays are finite, the scalar state has the right types and ranges, and the stored
    grid, feature count and feature names agree with the parameters and the codebook.

    Raises
    ------
    ModelFileError
        The file is missing, not a model file, corrupted or inconsistent, or of a newer
        format version.
    """
    with _open(path) as archive:
        meta = _metadata(archive, path)
        return _build(archive, meta, path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    """A finite int or float (not a bool); an int beyond float's range is not one."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # math.isfinite(10**400)
        return False


_RNG_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _build(archive: _Archive, meta: dict, path: Any) -> KSOM:
    """The estimator a checked metadata record and its archive describe, or ModelFileError."""
    from .estimator import KSOM
    from .state import FittedState

    def fail(what: str) -> ModelFileError:
        return ModelFileError(f"{str(path)!r} is corrupted: {what}.")

    # --- the JSON fields: types first (wrong JSON types must not escape as AttributeError)
    for key, kind in (("params", dict), ("state", dict), ("grid", dict), ("arrays", list)):
        if not isinstance(meta.get(key), kind):
            raise fail(f"the metadata field {key!r} is missing or not a {kind.__name__}")
    params_meta, state, grid_meta, listed = meta["params"], meta["state"], meta["grid"], meta["arrays"]
    extra = meta.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise fail("the metadata field 'extra' is not a mapping")

    # --- archive members: exactly those listed, and only known names
    allowed = set(_ARRAY_STATE) | {"param__init"} | {f"extra__{name}" for name in (extra or {})}
    if not all(isinstance(name, str) for name in listed) or len(set(listed)) != len(listed):
        raise fail("the metadata's list of arrays is malformed")
    unknown = sorted(set(listed) - allowed)
    if unknown:
        raise fail(f"unknown array member(s) {unknown}")
    members = set(archive.files) - {_META_KEY}
    if members != set(listed):
        extra_members = sorted(members - set(listed))
        missing = sorted(set(listed) - members)
        raise fail(
            f"the archive's members do not match its metadata"
            f"{f' (unlisted: {extra_members})' if extra_members else ''}"
            f"{f' (missing: {missing})' if missing else ''}"
        )

    # --- parameters, then the grid they imply against the stored one (the checks save runs)
    valid_names = set(KSOM().get_params(deep=False))
    unknown_params = sorted(set(params_meta) - valid_names)
    if unknown_params:
        raise fail(f"unknown parameter(s) {unknown_params}")
    try:
        params, init_value = _parse_params(params_meta, members)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if init_value != _STORED_INIT and "param__init" in members:
        raise fail("it holds an init array that no parameter uses")
    try:
        estimator, described = _checked_estimator(params, init_value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelFileError(f"{str(path)!r} is inconsistent: invalid parameters ({exc}).") from None
    stored_grid = _grid_from_meta(grid_meta, fail)
    try:
        grid = _described_grid(estimator, described, stored_grid)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if stored_grid != grid:
        raise fail(f"its stored grid {stored_grid!r} disagrees with the parameters' {grid!r}")

    # --- scalar state
    try:
        _check_scalar_state(state)
    except ValueError as exc:
        raise fail(str(exc)) from None
    n_features = state["n_features_in_"]

    # --- arrays: each header checked against the shapes the metadata implies, then read
    n_units = grid.n_units
    for name in ("codebook_", "ema_count_", "ema_sum_", "unit_counts_"):
        if name not in members:
            raise fail(f"the array {name!r} is missing")
    arrays = {
        "codebook_": archive.read("codebook_", shape=(n_units, n_features), dtypes=(np.float32, np.float64)),
        # (K,) for dense fits; (K, D) after a mini-batch fit on data with NaN (missing="ignore").
        "ema_count_": archive.read(
            "ema_count_",
            shape=(n_units, n_features) if len(archive.header("ema_count_")[0]) == 2 else (n_units,),
            dtypes=(np.float64,),
        ),
        "ema_sum_": archive.read("ema_sum_", shape=(n_units, n_features), dtypes=(np.float64,)),
        "unit_counts_": archive.read("unit_counts_", shape=(n_units,), dtypes=(np.float64,)),
    }
    if "labels_" in members:
        # One label per training row: their number is not in the metadata, but the data
        # must be stored in the file (checked by the header), so memory stays bounded.
        arrays["labels_"] = archive.read("labels_", shape=(None,), dtypes=(np.int64,))
    try:
        _check_state_arrays(arrays, n_units, n_features)
    except ValueError as exc:
        raise fail(str(exc)) from None
    layer_weights = layer_layout = None
    try:
        checked = _check_layers(estimator, n_features, "layer_weights_" in members)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if checked is not None:
        # Layered maps (somvq.layers): the fitted weights (resolved from "balanced" by
        # fit) one per layer; the stored parameters are the fitted ones.
        from .layers import layout

        layer_weights = archive.read("layer_weights_", shape=(len(checked[0]),), dtypes=(np.float64,))
        try:
            _check_layer_weights(layer_weights, len(checked[0]))
        except ValueError as exc:
            raise fail(str(exc)) from None
        layer_layout = layout(checked[0], checked[2])
    if init_value is not None:
        if init_value == _STORED_INIT:
            init = archive.read("param__init", shape=(n_units, n_features), numeric=True)
        else:  # a list written inline in the metadata (save never does): the same checks
            try:
                init = np.asarray(init_value)
            except (TypeError, ValueError, OverflowError, RecursionError):
                raise fail("the init array is malformed") from None
        try:
            _check_init(init, (n_units, n_features))
        except ValueError as exc:
            raise fail(str(exc)) from None
        estimator.set_params(init=init)

    # --- the rest of the metadata
    rng_state = meta.get("rng_state")
    names = meta.get("feature_names_in")
    try:
        _check_rng_state(rng_state)
        _check_feature_names(names, n_features)
    except ValueError as exc:
        raise fail(str(exc)) from None

    estimator.set_fitted_state(
        FittedState(
            codebook=arrays["codebook_"],
            grid=grid,
            n_features_in=state["n_features_in_"],
            ema_count=arrays["ema_count_"],
            ema_sum=arrays["ema_sum_"],
            unit_counts=arrays["unit_counts_"],
            n_steps=state["n_steps_"],
            n_iter=state["n_iter_"],
            horizon=float(state["_horizon"]),
            rng_state=rng_state,
            labels=arrays.get("labels_"),
            layer_weights=layer_weights,
            layer_layout=layer_layout,
        )
    )
    if names is not None:
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
    return estimator


def _grid_from_meta(grid_meta: dict, fail: Any) -> Grid:
    from .grids import Grid

    shape, topology, periodic = grid_meta.get("shape"), grid_meta.get("topology"), grid_meta.get("periodic")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(_is_int(s) and s >= 1 for s in shape)
        or not isinstance(topology, str)
        or not isinstance(periodic, list)
        or not all(isinstance(p, bool) for p in periodic)
    ):
        raise fail(f"the stored grid {grid_meta!r} is malformed")
    try:
        return Grid(tuple(shape), topology, tuple(periodic))
    except ValueError as exc:
        raise fail(f"the stored grid is invalid ({exc})") from None


# ---------------------------------------------------------------- checks save and load share
# Each raises ValueError naming the problem: load reports it as a ModelFileError
# ("<path> is corrupted: ..."), save as a ValueError ("cannot save: ..."), so save never
# writes a file that load refuses.

#: ``_parse_params``'s init value when the init is the stored ``param__init`` array.
_STORED_INIT = "param__init"
#: Step counters are int64 in the kernels.
_MAX_COUNTER = 2**63


def _parse_params(params_meta: dict, members: Any) -> tuple[dict[str, Any], Any]:
    """The parameters of a metadata record, and the init when it is an array.

    Returns ``(params, init)``: ``init`` is None when ``params`` holds it (a str, or a
    value the parameter checks refuse), :data:`_STORED_INIT` for the stored array, or a
    list written inline (checked by :func:`_check_init` like the stored array).
    """
    params: dict[str, Any] = {}
    init: Any = None
    for name, value in params_meta.items():
        if isinstance(value, dict) and "__array__" in value:
            if name != "init" or value != {"__array__": _STORED_INIT} or _STORED_INIT not in members:
                raise ValueError(f"parameter {name!r} refers to an array that is not the stored init")
            init = _STORED_INIT
        elif name == "init" and isinstance(value, list):
            init = value
        else:
            try:
                params[name] = _from_json_param(value)
            except (TypeError, AttributeError, RecursionError):
                raise ValueError(f"parameter {name!r} is malformed") from None
    return params, init


def _checked_estimator(params: dict[str, Any], init: Any) -> tuple[KSOM, Grid | None]:
    """An unfitted KSOM of ``params`` after the parameter checks; the grid they describe
    (None for grid="auto", chosen from the training data). An array ``init`` is left to
    :func:`_check_init` (the estimator holds "random" meanwhile)."""
    from .estimator import KSOM

    estimator = KSOM(**params)
    if init is not None:
        estimator.set_params(init="random")
    # check_parameters without its memory estimate: loading needs no training memory.
    estimator._validate_params()
    grid = None if isinstance(estimator.grid, str) else parameters.grid_of(estimator)
    # The backend is not checked: a GPU-trained model still loads for inspection on a CPU machine.
    parameters.check_options(estimator)
    return estimator, grid


def _described_grid(estimator: KSOM, described: Grid | None, stored: Grid) -> Grid:
    """The grid of a map fitted on ``stored`` whose parameters describe ``described``:
    for grid="auto" (None), ``stored`` when the other grid parameters could give it."""
    if described is not None:
        return described
    from .grids import Grid

    try:
        same = stored.ndim == 2 and Grid(stored.shape, estimator.topology, estimator.periodic) == stored
    except ValueError:
        same = False
    if not same:
        raise ValueError(
            f"its stored grid {stored!r} cannot come from grid='auto' with these parameters "
            f"(topology={estimator.topology!r}, periodic={estimator.periodic!r})"
        )
    return stored


def _check_scalar_state(state: dict) -> None:
    for name in _SCALAR_STATE:
        if name not in state:
            raise ValueError(f"the state field {name!r} is missing")
    unknown_state = sorted(set(state) - set(_SCALAR_STATE))
    if unknown_state:
        raise ValueError(f"unknown state field(s) {unknown_state}")
    n_features = state["n_features_in_"]
    if not _is_int(n_features) or n_features < 1:
        raise ValueError(f"n_features_in_={n_features!r} is not a positive integer")
    for name in ("n_steps_", "n_iter_"):
        value = state[name]
        if not _is_int(value) or value < 0:
            raise ValueError(f"{name}={value!r} is not a non-negative integer")
        if value >= _MAX_COUNTER:
            raise ValueError(f"{name}={value!r} is beyond the int64 counters of the kernels (< 2**63)")
    if not _is_real(state["_horizon"]) or state["_horizon"] <= 0:
        raise ValueError(f"the schedule horizon {state['_horizon']!r} is not a positive finite number")


def _check_array(name: str, value: Any, shapes: tuple, dtypes: tuple) -> None:
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name} is not a NumPy array")
    if value.shape not in shapes:
        raise ValueError(f"{name} shape {value.shape} does not match the expected {shapes[0]}")
    if value.dtype not in [np.dtype(d) for d in dtypes]:
        raise ValueError(
            f"{name} has dtype {value.dtype}, expected {' or '.join(str(np.dtype(d)) for d in dtypes)}"
        )


def _check_state_arrays(arrays: dict[str, Any], n_units: int, n_features: int) -> None:
    """The fitted state arrays: shapes, dtypes, finite, counts >= 0, labels in range."""
    for name in ("codebook_", "ema_count_", "ema_sum_", "unit_counts_"):
        if name not in arrays:
            raise ValueError(f"the array {name!r} is missing")
    k_by_d = (n_units, n_features)
    _check_array("codebook_", arrays["codebook_"], (k_by_d,), (np.float32, np.float64))
    # (K,) for dense fits; (K, D) after a mini-batch fit on data with NaN (missing="ignore").
    _check_array("ema_count_", arrays["ema_count_"], ((n_units,), k_by_d), (np.float64,))
    _check_array("ema_sum_", arrays["ema_sum_"], (k_by_d,), (np.float64,))
    _check_array("unit_counts_", arrays["unit_counts_"], ((n_units,),), (np.float64,))
    for name in ("codebook_", "ema_count_", "ema_sum_", "unit_counts_"):
        if not np.all(np.isfinite(arrays[name])):
            raise ValueError(f"{name} holds NaN or inf")
    for name in ("ema_count_", "unit_counts_"):
        if np.any(arrays[name] < 0):
            raise ValueError(f"{name} holds negative counts")
    labels = arrays.get("labels_")
    if labels is not None:
        if not isinstance(labels, np.ndarray) or labels.ndim != 1 or labels.dtype != np.int64:
            raise ValueError("labels_ is not a 1-D int64 array")
        if labels.size and (labels.min() < 0 or labels.max() >= n_units):
            raise ValueError("labels_ out of range")


def _check_init(init: np.ndarray, shape: tuple[int, int]) -> None:
    """An init array: numeric, (K, D), finite."""
    if init.dtype.kind not in "biuf":
        raise ValueError(f"the init array has dtype {init.dtype}, expected a numeric dtype")
    if init.shape != tuple(shape):
        raise ValueError(
            f"the init array has shape {init.shape}, expected (n_units, n_features) = {tuple(shape)}"
        )
    if not np.all(np.isfinite(init)):
        raise ValueError("the init array holds NaN or inf")


def _check_layers(estimator: KSOM, n_features: int, has_fitted_weights: bool) -> tuple | None:
    """The layer parameters against the width; they and the fitted ``layer_weights_``
    come together. Returns :func:`somvq.layers.check_layers`'s result (None: no layers)."""
    layers, weights, distances = estimator.layers, estimator.layer_weights, estimator.layer_distances
    if layers is None and weights is None and distances is None and not has_fitted_weights:
        return None
    from .layers import check_layers

    try:
        checked = check_layers(layers, weights, distances, n_features)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the layer parameters are invalid ({exc})") from None
    if checked is None or not has_fitted_weights:
        raise ValueError(
            f"layers and the fitted layer_weights_ must be stored together (layers={layers!r}, "
            f"layer_weights_ {'present' if has_fitted_weights else 'absent'})"
        )
    return checked


def _check_layer_weights(weights: Any, n_layers: int) -> None:
    """The fitted ``layer_weights_``: one float64 per layer, finite, >= 0, not all 0."""
    _check_array("layer_weights_", weights, ((n_layers,),), (np.float64,))
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not np.any(weights > 0):
        raise ValueError("layer_weights_ must be finite, >= 0, and not all 0")


def _check_feature_names(names: Any, n_features: int) -> None:
    if names is None:
        return
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("feature_names_in is not a list of strings")
    if len(names) != n_features:
        raise ValueError(f"it has {len(names)} feature names for {n_features} features")


def _check_rng_state(rng_state: Any) -> None:
    """The stored random generator state must be one NumPy accepts for its bit generator."""
    if rng_state is None:
        return
    name = rng_state.get("bit_generator") if isinstance(rng_state, dict) else None
    if name not in _RNG_BIT_GENERATORS:
        raise ValueError("the random generator state is malformed")
    try:
        getattr(np.random, name)().state = rng_state
    except (TypeError, ValueError, KeyError, OverflowError, IndexError, AttributeError):
        raise ValueError("the random generator state is malformed") from None
