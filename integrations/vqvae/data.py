"""Image data for the VQ-VAE study: Fashion-MNIST, scikit-learn digits, photo tiles.

Every set comes as float32 tensors ``(n, channels, height, width)`` with pixels scaled to
[-0.5, 0.5], split into a training part and a held-out validation part by a seeded
permutation (``split_seed``, independent of the training seed, so every run of a study is
validated on the same images).

* ``"fashion-mnist"``: the 60,000 training images, 28 x 28 (7 x 7 latents); read with
  :func:`somvq.datasets.load_idx_dataset` from the Debian package dataset-fashion-mnist or
  ``data_dir``.
* ``"digits"``: scikit-learn's 1,797 digits, 8 x 8 upsampled x2 (nearest) to 16 x 16
  (4 x 4 latents).
* ``"photos"``: 32 x 32 RGB tiles of scikit-learn's two sample photos, every 16 pixels
  (1,950 tiles, 8 x 8 latents).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["VQVAE_DATASETS", "ImageData", "load_image_data", "batch_indices"]

#: Names accepted by :func:`load_image_data`.
VQVAE_DATASETS = ("fashion-mnist", "digits", "photos")


@dataclass
class ImageData:
    """A training and a validation set of images, pixels in [-0.5, 0.5]."""

    name: str
    train: torch.Tensor  # (n_train, C, H, W) float32
    validation: torch.Tensor  # (n_validation, C, H, W) float32

    @property
    def channels(self) -> int:
        return int(self.train.shape[1])

    @property
    def image_shape(self) -> tuple[int, int]:
        return int(self.train.shape[2]), int(self.train.shape[3])


def _images(name: str, data_dir: str | os.PathLike | None) -> np.ndarray:
    """All images of a set as float32 (n, C, H, W) in [0, 1]."""
    from somvq import datasets

    if name == "fashion-mnist":
        images, _ = datasets.load_idx_dataset("fashion-mnist", "train", data_dir=data_dir)
        return images[:, None].astype(np.float32) / np.float32(255.0)
    if name == "digits":
        images = datasets.load_digits().X.reshape(-1, 1, 8, 8) / 16.0
        return np.repeat(np.repeat(images, 2, axis=2), 2, axis=3).astype(np.float32)
    if name == "photos":
        tiles = datasets.load_sample_image_tiles(32, stride=16)
        return tiles.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    raise ValueError(f"dataset={name!r} is not one of {VQVAE_DATASETS}.")


def load_image_data(
    name: str,
    *,
    validation_size: int | float = 0.1,
    split_seed: int = 0,
    n_samples: int | None = None,
    data_dir: str | os.PathLike | None = None,
) -> ImageData:
    """Load a data set and hold out a validation split.

    Parameters
    ----------
    name : {"fashion-mnist", "digits", "photos"}
    validation_size : int or float, default=0.1
        Number (int) or fraction (float) of the images held out for validation.
    split_seed : int, default=0
        Seed of the permutation that picks the validation images.
    n_samples : int, optional
        Use only this many images (taken after the permutation) in all.
    data_dir : path, optional
        Fashion-MNIST: directory of the IDX files.
    """
    images = _images(name, data_dir)
    order = np.random.default_rng(split_seed).permutation(images.shape[0])
    if n_samples is not None:
        if n_samples < 2:
            raise ValueError(f"n_samples={n_samples} must be >= 2.")
        order = order[:n_samples]
    n = order.size
    n_val = int(round(validation_size * n)) if isinstance(validation_size, float) else int(validation_size)
    if not 1 <= n_val < n:
        raise ValueError(
            f"validation_size={validation_size} leaves no training or no validation images out of {n}."
        )
    centred = torch.from_numpy(images[order] - np.float32(0.5))
    return ImageData(name, centred[n_val:].contiguous(), centred[:n_val].contiguous())


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Rows of the training batch at ``step``: epochs of seeded permutations.

    A pure function of ``(n, batch_size, step, seed)``, so a resumed run draws exactly the
    batches an uninterrupted one would. Each epoch is a fresh permutation (seeded by
    ``seed`` and the epoch number); a batch never straddles two epochs (the remainder
    ``n % batch_size`` of each permutation is skipped).
    """
    batch_size = min(batch_size, n)
    per_epoch = n // batch_size
    epoch, position = divmod(step, per_epoch)
    return _epoch_permutation(n, int(seed), epoch)[position * batch_size : (position + 1) * batch_size]


@functools.lru_cache(maxsize=2)
def _epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)
