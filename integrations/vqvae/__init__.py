"""The VQ-VAE study: KSOM and EMA-VQ codebooks in a small VQ-VAE (docs/vqvae-study.md).

>>> from somvq.integrations.vqvae import TrainConfig, train          # doctest: +SKIP
>>> result = train(TrainConfig(dataset="digits", steps=200, channels=16,
...                            latent_dim=8, codebook_size=64), "runs/hard")  # doctest: +SKIP

``model``    the paper's VQ-VAE (encoder, KohonenVectorQuantize, decoder), sized by options;
``data``     Fashion-MNIST, scikit-learn digits and photo tiles with a validation split;
``train``    one run: AdamW, clipping, validation, CSV/JSON logs, checkpoint and resume;
``compare``  the study: quantiser variants x seeds, a Markdown report with plots, built from
             ``variants`` (the names), ``runs`` (training and reading back each run),
             ``evaluation`` (measures of one run), ``report`` (table, CSV) and ``figures``.

The command line is ``somvq vqvae train`` and ``somvq vqvae compare``; the reduced-scale
study is docs/vqvae-study.md.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("somvq.integrations.vqvae needs PyTorch: pip install 'somvq[torch]'.") from error

from .data import VQVAE_DATASETS, ImageData, load_image_data
from .model import VQVAE
from .train import TrainConfig, TrainResult, train

__all__ = ["VQVAE", "VQVAE_DATASETS", "ImageData", "load_image_data", "TrainConfig", "TrainResult", "train"]
