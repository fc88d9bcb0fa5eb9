"""Real data sets, offline: scikit-learn's bundled sets and MNIST-style IDX files.

Nothing here downloads anything. Two sources are supported:

* scikit-learn's bundled sets (``"digits"``, ``"iris"``, ``"wine"``), always available;
* MNIST-style IDX files (``"fashion-mnist"``, ``"mnist"``, or any directory holding
  ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``). Fashion-MNIST is
  read from the Debian package ``dataset-fashion-mnist`` by default
  (:data:`DEFAULT_DIRECTORIES`); a missing file raises :class:`DatasetNotFoundError`
  saying how to obtain it.

>>> from somvq.datasets import load_idx_dataset, load_dataset   # doctest: +SKIP
>>> images, labels = load_idx_dataset("fashion-mnist", split="test")  # (10000, 28, 28) uint8
>>> data = load_dataset("digits")                                # data.X: (1797, 64)
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "Dataset",
    "DatasetNotFoundError",
    "IDXFormatError",
    "DATASETS",
    "IDX_DATASETS",
    "DEFAULT_DIRECTORIES",
    "SPLITS",
    "read_idx",
    "find_idx_files",
    "load_idx_dataset",
    "load_digits",
    "load_sample_image_tiles",
    "load_dataset",
    "write_idx",
]

#: Names accepted by :func:`load_dataset`.
DATASETS = ("digits", "iris", "wine", "fashion-mnist", "mnist")
#: The names among :data:`DATASETS` that are read from IDX files.
IDX_DATASETS = ("fashion-mnist", "mnist")
#: Where each IDX data set is looked for when no directory is given (``None``: nowhere).
DEFAULT_DIRECTORIES: dict[str, Path | None] = {
    "fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),
    "mnist": None,
}
SPLITS = ("train", "test", "all")

_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
_HOW_TO_GET = {
    "fashion-mnist": (
        "On Debian/Ubuntu install them with `sudo apt-get install dataset-fashion-mnist` "
        "(files in /usr/share/datasets/fashion-mnist); elsewhere download the four "
        "*-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist and pass "
        "their directory (data_dir=..., or --data-dir on the command line)."
    ),
    "mnist": (
        "Download the four *-ubyte.gz files of MNIST (e.g. from "
        "https://ossci-datasets.s3.amazonaws.com/mnist/) and pass their directory "
        "(data_dir=..., or --data-dir on the command line)."
    ),
    None: (
        "The directory must hold train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
        "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]."
    ),
}
# IDX type codes (third byte of the magic number) -> big-endian NumPy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are not where they were looked for; the message says how to get them."""


class IDXFormatError(ValueError):
    """A file is not a valid IDX file (bad magic number, truncated, inconsistent sizes)."""


@dataclass(frozen=True)
class Dataset:
    """A loaded data set: samples as rows, plus what is known about them.

    Attributes
    ----------
    name : str
    X : ndarray of shape (n_samples, n_features)
        float64 for scikit-learn's sets (their original values), float32 in [0, 1] for IDX
        images (pixel / 255).
    y : ndarray of shape (n_samples,)
        Class labels.
    image_shape : tuple of int or None
        ``(height, width)`` when each row is a flattened image.
    feature_names : list of str
    description : str
        One line: what the data is and where it came from.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    image_shape: tuple[int, ...] | None = None
    feature_names: list[str] = field(default_factory=list)
    description: str = ""


# ---------------------------------------------------------------------------- IDX files
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (``.gz``-compressed or raw) into an array in native byte order.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    IDXFormatError
        The file is not a valid IDX file.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            compressed = handle.read(2) == b"\x1f\x8b"
        opener = gzip.open if compressed else open
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise IDXFormatError(f"cannot read IDX file {str(path)!r}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise IDXFormatError(f"{str(path)!r} is not an IDX file (bad magic number {raw[:4].hex()!r}).")
    dtype = _IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(f"{str(path)!r} is truncated (incomplete IDX header).")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise IDXFormatError(
            f"{str(path)!r} holds {len(raw) - header} data bytes, but its header announces "
            f"shape {shape} of {dtype.name} ({expected} bytes)."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def _resolve_directory(
    name_or_dir: str | os.PathLike, data_dir: str | os.PathLike | None
) -> tuple[Path, str | None]:
    """The directory to read and the data set's name (None for a bare directory)."""
    name = str(name_or_dir).lower() if str(name_or_dir).lower() in IDX_DATASETS else None
    if data_dir is not None:
        return Path(data_dir), name
    if name is None:
        return Path(name_or_dir), None
    directory = DEFAULT_DIRECTORIES.get(name)
    if directory is None:
        raise DatasetNotFoundError(f"{name} has no default location. {_HOW_TO_GET[name]}")
    return directory, name


def find_idx_files(
    name_or_dir: str | os.PathLike, split: str = "train", *, data_dir: str | os.PathLike | None = None
) -> tuple[Path, Path]:
    """Paths of the images and labels files of one split (``"train"`` or ``"test"``).

    Accepts both ``train-images-idx3-ubyte`` and ``train-images.idx3-ubyte`` spellings,
    each with or without ``.gz``.

    Raises
    ------
    DatasetNotFoundError
        The directory or a file is missing; the message says how to obtain the files.
    """
    if split not in _SPLIT_PREFIX:
        raise ValueError(f"split={split!r} must be 'train' or 'test' here.")
    directory, name = _resolve_directory(name_or_dir, data_dir)
    label = name or "IDX data set"
    if not directory.is_dir():
        raise DatasetNotFoundError(
            f"{label}: directory {str(directory)!r} does not exist. {_HOW_TO_GET[name]}"
        )
    prefix = _SPLIT_PREFIX[split]
    found = []
    for kind, ndim in (("images", 3), ("labels", 1)):
        candidates = [
            directory / f"{prefix}-{kind}{sep}idx{ndim}-ubyte{gz}" for sep in ("-", ".") for gz in (".gz", "")
        ]
        existing = [c for c in candidates if c.is_file()]
        if not existing:
            raise DatasetNotFoundError(
                f"{label}: no {prefix}-{kind}-idx{ndim}-ubyte[.gz] in {str(directory)!r}. {_HOW_TO_GET[name]}"
            )
        found.append(existing[0])
    return found[0], found[1]


def load_idx_dataset(
    name_or_dir: str | os.PathLike,
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of an MNIST-style data set, as stored (uint8).

    Parameters
    ----------
    name_or_dir : {"fashion-mnist", "mnist"} or path
        A known data set (read from :data:`DEFAULT_DIRECTORIES` unless ``data_dir`` is
        given) or a directory holding the four IDX files.
    split : {"train", "test", "all"}, default="train"
        ``"all"`` is train followed by test (70,000 images for (Fashion-)MNIST).
    data_dir : path, optional
        Directory to read instead of the default one.

    Returns
    -------
    images : ndarray of shape (n, height, width), uint8
    labels : ndarray of shape (n,), uint8

    Raises
    ------
    DatasetNotFoundError
        Files are missing (the message says how to obtain them).
    IDXFormatError
        A file is corrupted, or images and labels disagree in number.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {SPLITS}.")
    if split == "all":
        parts = [load_idx_dataset(name_or_dir, s, data_dir=data_dir) for s in ("train", "test")]
        if parts[0][0].shape[1:] != parts[1][0].shape[1:]:
            raise IDXFormatError(
                f"train images {parts[0][0].shape[1:]} and test images {parts[1][0].shape[1:]} differ in shape."
            )
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    images_path, labels_path = find_idx_files(name_or_dir, split, data_dir=data_dir)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise IDXFormatError(
            f"{str(images_path)!r} holds a {images.ndim}-D array; images need 3 axes (n, h, w)."
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise IDXFormatError(
            f"{str(labels_path)!r} holds {labels.shape} labels for {images.shape[0]} images."
        )
    return images, labels


# ----------------------------------------------------------------------- all data sets
def load_digits() -> Dataset:
    """scikit-learn's bundled handwritten digits: 1797 images of 8x8 pixels, values 0..16."""
    from sklearn import datasets

    bunch = datasets.load_digits()
    return Dataset(
        name="digits",
        X=np.ascontiguousarray(bunch.data, dtype=np.float64),
        y=np.asarray(bunch.target),
        image_shape=(8, 8),
        feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
        description="scikit-learn digits: 1797 handwritten digits, 8x8 pixels, values 0..16",
    )


def load_sample_image_tiles(size: int = 32, stride: int | None = None) -> np.ndarray:
    """Square RGB tiles cut from the two photos bundled with scikit-learn.

    ``load_sample_images`` (china.jpg, flower.jpg, 427x640 each) is cut into
    ``size x size`` tiles every ``stride`` pixels (default ``size``: no overlap), row by
    row, photo by photo: 2 x 13 x 20 = 520 tiles of 32 x 32.

    Returns
    -------
    tiles : ndarray of shape (n, size, size, 3), uint8
    """
    from sklearn.datasets import load_sample_images

    stride = size if stride is None else stride
    if size < 1 or stride < 1:
        raise ValueError(f"size={size} and stride={stride} must be >= 1.")
    tiles = []
    for image in load_sample_images().images:
        height, width = image.shape[:2]
        for top in range(0, height - size + 1, stride):
            for left in range(0, width - size + 1, stride):
                tiles.append(image[top : top + size, left : left + size])
    if not tiles:
        raise ValueError(f"size={size} is larger than the photos (427 x 640).")
    return np.ascontiguousarray(np.stack(tiles), dtype=np.uint8)


def load_dataset(
    name: str,
    *,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    n_samples: int | None = None,
) -> Dataset:
    """Load a data set by name, flattened to rows.

    Parameters
    ----------
    name : {"digits", "iris", "wine", "fashion-mnist", "mnist"} or path
        A name from :data:`DATASETS`, or a directory of IDX files.
    split : {"train", "test", "all"}, default="train"
        IDX data sets only; scikit-learn's sets have a single split.
    data_dir : path, optional
        IDX data sets: directory to read instead of the default.
    n_samples : int, optional
        Keep only the first ``n_samples`` rows (quick experiments).

    Returns
    -------
    Dataset
        IDX images become float32 rows in [0, 1]; scikit-learn's sets keep their values
        as float64.
    """
    key = str(name).lower()
    if key == "digits":
        data = load_digits()
    elif key in ("iris", "wine"):
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{key}")()
        data = Dataset(
            name=key,
            X=np.ascontiguousarray(bunch.data, dtype=np.float64),
            y=np.asarray(bunch.target),
            feature_names=[str(f) for f in bunch.feature_names],
            description=f"scikit-learn {key}: {bunch.data.shape[0]} samples, {bunch.data.shape[1]} features",
        )
    elif key in IDX_DATASETS or data_dir is not None or Path(str(name)).is_dir():
        images, labels = load_idx_dataset(name, split, data_dir=data_dir)
        height, width = images.shape[1:]
        source = data_dir if data_dir is not None else (DEFAULT_DIRECTORIES.get(key) or name)
        data = Dataset(
            name=key if key in IDX_DATASETS else str(name),
            X=(images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0)),
            y=labels,
            image_shape=(int(height), int(width)),
            feature_names=[f"pixel_{r}_{c}" for r in range(height) for c in range(width)],
            description=f"{key} {split}: {images.shape[0]} images {height}x{width} from {source}, pixel/255",
        )
    else:
        raise ValueError(f"dataset={name!r} is not one of {DATASETS} nor a directory of IDX files.")
    if n_samples is not None:
        if n_samples < 1:
            raise ValueError(f"n_samples={n_samples} must be >= 1.")
        kept = min(n_samples, data.X.shape[0])
        data = Dataset(
            data.name,
            data.X[:n_samples],
            data.y[:n_samples],
            data.image_shape,
            data.feature_names,
            f"{data.description} (first {kept} rows)",
        )
    return data


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzip when ``compress`` or the name ends in ``.gz``).

    The inverse of :func:`read_idx`; used to make small test fixtures and subsets.
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(
            f"IDX cannot store dtype {array.dtype}; use one of uint8, int8, int16, int32, float32, float64."
        )
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    compress = path.suffix == ".gz" if compress is None else compress
    with gzip.open(path, "wb") if compress else open(path, "wb") as handle:
        handle.write(payload)
    return path
