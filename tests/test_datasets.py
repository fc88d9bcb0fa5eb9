"""Data loaders: IDX files (made here, tiny), scikit-learn's sets, clear missing-file errors."""

import gzip

import numpy as np
import pytest

from somvq import datasets
from somvq.datasets import (
    DatasetNotFoundError,
    IDXFormatError,
    load_dataset,
    load_idx_dataset,
    read_idx,
    write_idx,
)


def make_idx_directory(directory, n_train=6, n_test=4, shape=(5, 3), compress=True, seed=0):
    """Four MNIST-style files with random pixels; returns the arrays written."""
    rng = np.random.default_rng(seed)
    gz = ".gz" if compress else ""
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte{gz}", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{gz}", labels)
        out[prefix] = (images, labels)
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, array)


def test_idx_reads_the_standard_big_endian_layout(tmp_path):
    # Hand-written header: magic 0x00000803, dims 2, 1, 2 (big-endian), then 4 bytes.
    raw = bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") + (1).to_bytes(4, "big") + (2).to_bytes(4, "big")
    (tmp_path / "x").write_bytes(raw + bytes([1, 2, 3, 4]))
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), [[[1, 2]], [[3, 4]]])


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"hello world", "bad magic"),
        (bytes([0, 0, 8, 3, 0, 0]), "truncated"),
        (bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + b"abc", "header announces"),
        (b"", "bad magic"),
    ],
)
def test_corrupted_idx_files_raise_idx_format_error(tmp_path, payload, match):
    (tmp_path / "bad").write_bytes(payload)
    with pytest.raises(IDXFormatError, match=match):
        read_idx(tmp_path / "bad")


def test_truncated_gzip_raises_idx_format_error(tmp_path):
    data = gzip.compress(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + bytes(100))
    (tmp_path / "bad.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(IDXFormatError):
        read_idx(tmp_path / "bad.gz")


@pytest.mark.parametrize("compress", [True, False])
def test_load_idx_dataset_from_a_directory(tmp_path, compress):
    written = make_idx_directory(tmp_path, compress=compress)
    images, labels = load_idx_dataset(tmp_path, "train")
    np.testing.assert_array_equal(images, written["train"][0])
    np.testing.assert_array_equal(labels, written["train"][1])
    images, labels = load_idx_dataset(tmp_path, "test")
    assert images.shape == (4, 5, 3) and images.dtype == np.uint8
    images, labels = load_idx_dataset(tmp_path, "all")
    assert images.shape == (10, 5, 3) and labels.shape == (10,)


def test_original_mnist_spelling_is_found(tmp_path):
    rng = np.random.default_rng(1)
    write_idx(tmp_path / "train-images.idx3-ubyte", rng.integers(0, 255, (3, 2, 2), dtype=np.uint8))
    write_idx(tmp_path / "train-labels.idx1-ubyte", np.arange(3, dtype=np.uint8))
    images, labels = load_idx_dataset("mnist", data_dir=tmp_path)
    assert images.shape == (3, 2, 2)


def test_named_dataset_with_data_dir_and_flattened_rows(tmp_path):
    written = make_idx_directory(tmp_path)
    data = load_dataset("fashion-mnist", data_dir=tmp_path, split="test")
    assert data.X.shape == (4, 15) and data.X.dtype == np.float32
    assert data.image_shape == (5, 3)
    assert 0.0 <= data.X.min() and data.X.max() <= 1.0
    np.testing.assert_allclose(data.X * 255, written["t10k"][0].reshape(4, -1))
    assert load_dataset(tmp_path, n_samples=2).X.shape == (2, 15)


def test_missing_files_say_how_to_get_them(tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_idx_dataset("fashion-mnist", data_dir=tmp_path)
    monkeypatch.setitem(datasets.DEFAULT_DIRECTORIES, "fashion-mnist", tmp_path / "absent")
    with pytest.raises(DatasetNotFoundError, match="does not exist.*dataset-fashion-mnist"):
        load_dataset("fashion-mnist")
    with pytest.raises(DatasetNotFoundError, match="MNIST"):
        load_dataset("mnist")


def test_images_and_labels_must_agree(tmp_path):
    make_idx_directory(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(2, dtype=np.uint8))
    with pytest.raises(IDXFormatError, match="labels for 6 images"):
        load_idx_dataset(tmp_path)


def test_bad_names_and_splits():
    with pytest.raises(ValueError, match="not one of"):
        load_dataset("no-such-set")
    with pytest.raises(ValueError, match="split"):
        load_idx_dataset("fashion-mnist", split="validation")


@pytest.mark.parametrize("name, shape", [("digits", (1797, 64)), ("iris", (150, 4)), ("wine", (178, 13))])
def test_scikit_learn_sets(name, shape):
    data = load_dataset(name)
    assert data.X.shape == shape and data.X.dtype == np.float64
    assert data.y.shape == (shape[0],)
    assert len(data.feature_names) == shape[1]
    assert (data.image_shape == (8, 8)) == (name == "digits")


def test_sample_image_tiles():
    tiles = datasets.load_sample_image_tiles(32)
    assert tiles.shape == (2 * 13 * 20, 32, 32, 3) and tiles.dtype == np.uint8
    from sklearn.datasets import load_sample_images

    np.testing.assert_array_equal(tiles[1], load_sample_images().images[0][:32, 32:64])
    assert datasets.load_sample_image_tiles(16, stride=8).shape[1:] == (16, 16, 3)
    with pytest.raises(ValueError, match="larger than the photos"):
        datasets.load_sample_image_tiles(1000)
